//! papersim: turn research-paper digests into a local semantic library and find related papers.
//!
//! The pipeline, one folder a stage: digests are parsed ([`digest`]), encoded into unit vectors
//! ([`encode`]), stored and searched in the library ([`library`], over the indexes in
//! [`index`]), and ranked for a paper, free text or a reader ([`rank`]).

pub mod checksum;
pub mod digest;
pub mod directory;
pub mod encode;
pub mod error;
pub mod index;
pub mod library;
pub mod paper;
pub mod progress;
pub mod rank;

pub use encode::{Embedder, EmbedderConfig, Embeddings};
pub use error::{Error, Result};
