//! Encoding: from text to unit vectors.
//!
//! Owns the model's configuration ([`config`]: BERT or MPNet hyper-parameters and the one activation
//! every forward runs), model resolution ([`model`]), the cached digest of a model's weights
//! behind its fingerprint ([`fingerprint`]), the catalogue of registry fallbacks
//! ([`known`]) and provisioning from it ([`provision`]), tokenisation and batching
//! ([`tokenize`]), the forward passes behind one small interface with one file per
//! implementation ([`forward`]), pooling and normalisation ([`pooling`]), devices
//! ([`device`]), the [`Embedder`] that ties them together, and the speed and agreement
//! measurement behind `papersim bench` ([`speed`]).
//!
//! May import: `crate::error`, `crate::progress`, `crate::directory`, `crate::checksum`, and
//! `crate::digest` (the speed measurement reads digests as its texts). Never `library`,
//! `index` or `rank`: a vector knows nothing of where it will be stored.

pub mod config;
pub mod device;
pub mod embedder;
pub mod fingerprint;
pub mod forward;
pub mod known;
pub mod model;
pub mod pooling;
pub mod provision;
pub mod speed;
pub mod tokenize;

pub use embedder::{Embedder, EmbedderConfig, Embeddings};
