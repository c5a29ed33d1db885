//! papersim: turn research-paper digests into a local semantic library and find related papers.
//!
//! The pipeline, one folder a stage: digests are parsed ([`digest`]), encoded into unit vectors
//! ([`encode`]), stored and searched in the library ([`library`], over the indexes in
//! [`index`]), and ranked for a paper, free text or a reader ([`rank`]). [`pipeline`]
//! composes the stages where one step needs two of them (an ingest embeds what the library
//! plans). Shared leaves: [`paper`] (a paper's identity), [`directory`] (durable writes and
//! the lock), [`checksum`], [`progress`], [`error`].

pub mod checksum;
pub mod digest;
pub mod directory;
pub mod encode;
pub mod error;
pub mod index;
pub mod library;
pub mod paper;
pub mod pipeline;
pub mod progress;
pub mod rank;

pub use encode::{Embedder, EmbedderConfig, Embeddings};
pub use error::{Error, Result};
