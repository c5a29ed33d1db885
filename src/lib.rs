//! papersim: turn research-paper digests into a local semantic library and find related papers.
//!
//! Pipeline stages, one module each: digest parsing ([`digest`]), model resolution and
//! provisioning ([`model`]), tokenisation and batching ([`tokenize`]), the BERT forward pass
//! ([`bert`]), pooling and normalisation ([`pooling`]), the encoder that ties them together
//! ([`embedder`]), the vector index ([`index`]), the on-disk library ([`store`]) and the
//! recommender ([`recommend`]).

pub mod error;
pub mod index;
pub mod paper;

pub use error::{Error, Result};
