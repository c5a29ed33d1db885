//! papersim: turn research-paper digests into a local semantic library and find related papers.
//!
//! The pipeline, one folder a stage: digests are parsed ([`digest`]), encoded into unit vectors
//! ([`encode`]), stored and searched in the library ([`library`], over the indexes in
//! [`index`]), and ranked for a paper, free text or a reader ([`rank`]). [`pipeline`]
//! composes the stages where one step needs two of them (an ingest embeds what the library
//! plans). The reader's likes, dislikes and seen papers are [`feedback`]'s; [`fetch`] brings
//! new papers from arXiv and Hugging Face as digests. [`report`] holds the JSON documents the
//! command line prints and [`serve`] answers over HTTP. Shared leaves:
//! [`paper`] (a paper's identity), [`directory`] (durable writes and
//! the lock), [`checksum`], [`progress`], [`error`].

pub mod checksum;
pub mod digest;
pub mod directory;
pub mod encode;
pub mod error;
pub mod feedback;
pub mod fetch;
pub mod index;
pub mod library;
pub mod paper;
pub mod pipeline;
pub mod progress;
pub mod rank;
pub mod report;
pub mod serve;
pub mod store;

// What a Rust user of the crate needs, in one place: read digests, embed, keep a library,
// rank. The modules stay public for the rest (model resolution, the indexes, the formats).
pub use digest::{read_path, Digest, InputFormat, ParseOptions};
pub use encode::{Embedder, EmbedderConfig, Embeddings};
pub use error::{Error, Result};
pub use library::{IngestPlan, IngestReport, Library, Paper, SearchMode, WriteLock};
pub use pipeline::{ingest, ingest_into};
pub use rank::{
    query, recommend, similar, triage, Fusion, Profile, RankOptions, Ranked, Retrieval, Triaged,
};
