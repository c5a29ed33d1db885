//! `manifest.json`, the library's commit point: the format version, the model the vectors
//! came from, the index parameters, the base generation's files and the segments written
//! since, and the digests ingested.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::index::HnswParams;
use crate::{Error, Result};

/// The manifest's file name in the library directory.
pub const MANIFEST: &str = "manifest.json";

/// Version of the on-disk format papersim writes; a library of a version it cannot read is
/// refused, not guessed at. Version 2 added segments; version 1 libraries (a base generation
/// only) are read as they are and written as version 2 by the next commit.
pub const FORMAT_VERSION: u32 = 2;
/// Format versions this papersim reads.
pub const READABLE_FORMAT_VERSIONS: [u32; 2] = [1, 2];

/// The model a library was embedded with: what a model must match to add or query vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    /// SHA-256 over the model's weights and configuration (see
    /// `encode::model::ModelFiles::fingerprint`).
    pub fingerprint: String,
    pub dim: usize,
    /// Pooling as sentence-transformers names it (`mean`, `cls`, `max`).
    pub pooling: String,
    pub max_seq_length: usize,
}

/// One ingested digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestRecord {
    pub source: String,
    pub date: Option<String>,
    pub papers: usize,
    pub added: usize,
}

/// The files of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationFiles {
    pub papers: String,
    pub embeddings: String,
    pub graph: String,
    /// The lexical index; absent in libraries written before papersim had one, which build it
    /// from their papers on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical: Option<String>,
}

/// What one commit after the base generation wrote: papers it added (appended as the next
/// rows, in order) and records of papers it updated (new sightings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub generation: u64,
    /// `papers.<gen>.jsonl`: the `added` new papers, then the `updated` changed records, which
    /// replace the stored papers of the same id.
    pub papers: String,
    /// `embeddings.<gen>.npy`: the added papers' vectors; absent when it added none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<String>,
    pub added: usize,
    pub updated: usize,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Counts commits: the base generation and every segment have their own number.
    pub generation: u64,
    pub model: ModelInfo,
    pub index: HnswParams,
    /// All papers: the base generation's and the segments'.
    pub papers: usize,
    /// The base generation: the last full write.
    pub files: GenerationFiles,
    /// Commits since the base generation, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    pub digests: Vec<DigestRecord>,
    pub updated: String,
}

impl Manifest {
    /// Reads `<root>/manifest.json` as it is (no version check: see `Library::open`). A
    /// missing manifest is "no library here", naming `root`.
    pub fn read(root: &Path) -> Result<Manifest> {
        let path = root.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Library {
                path: root.to_path_buf(),
                reason: "no library here (no manifest.json); create one with `papersim ingest`"
                    .into(),
            },
            _ => Error::io(&path, e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Library {
            path,
            reason: format!("corrupt manifest: {e}"),
        })
    }

    /// Every file (or directory) name the manifest refers to.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        let f = &self.files;
        [f.papers.as_str(), f.embeddings.as_str(), f.graph.as_str()]
            .into_iter()
            .chain(f.lexical.as_deref())
            .chain(
                self.segments.iter().flat_map(|s| {
                    std::iter::once(s.papers.as_str()).chain(s.embeddings.as_deref())
                }),
            )
    }
}

/// The generation number in a generation file name (`papers.7.jsonl` → 7).
pub(crate) fn generation_of(name: &str) -> Option<u64> {
    let mut parts = name.split('.');
    let kind = parts.next()?;
    if !matches!(kind, "papers" | "embeddings" | "graph" | "lexical") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Now, as the manifest records times (UTC, seconds).
pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
