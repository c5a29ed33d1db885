//! papersim: turn research-paper digests into a local semantic library and find related papers.
//!
//! Pipeline stages, one module each: digest parsing ([`digest`]), model resolution
//! ([`model`]) and provisioning ([`provision`]), tokenisation and batching ([`tokenize`]), the
//! BERT forward pass ([`bert`], with its CPU fast path [`bert_cpu`]), pooling and normalisation
//! ([`pooling`]), the encoder that ties them together ([`embedder`]), devices ([`device`]), the
//! encoding benchmark ([`bench`]), the vector index ([`index`]), the on-disk library ([`store`])
//! with its lexical (BM25) index ([`lexical`]), the recommender ([`recommend`]) and its dense,
//! lexical and hybrid ranking modes ([`hybrid`]).

pub mod bench;
pub mod bert;
pub mod bert_cpu;
pub mod device;
pub mod digest;
pub mod embedder;
pub mod error;
pub mod hybrid;
pub mod index;
pub mod lexical;
pub mod model;
pub mod npy;
pub mod paper;
pub mod pooling;
pub mod progress;
pub mod provision;
pub mod recommend;
pub mod store;
pub mod tokenize;

pub use embedder::{Embedder, EmbedderConfig, Embeddings};
pub use error::{Error, Result};
