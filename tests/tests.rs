//! papersim's integration tests: one binary, one module per area, so that the suite compiles
//! and links once. Each module tests its area through the public API or the real binary, on
//! the real model and real digests.

mod common;

#[allow(dead_code)] // the fuzz-only entry points
#[path = "../fuzz/src/harness.rs"]
mod harness;

mod bench;
mod cli;
mod digests;
mod embeddings_import;
mod encoder;
mod fetch;
mod fuzz_regressions;
mod lexical;
mod library;
mod model;
mod mpnet;
mod profile;
mod qdrant;
mod reliability;
mod safety;
mod scale;
mod serve;
mod serve_browser;
mod vector_dtype;
