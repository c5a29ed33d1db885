//! `manifest.json`, the library's commit point: the format version, the model the vectors
//! came from, the index parameters, the base generation's files and the segments written
//! since, and the digests ingested.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::index::{HnswParams, VectorDtype};
use crate::{Error, Result};

/// The manifest's file name in the library directory.
pub const MANIFEST: &str = "manifest.json";

/// Version of the on-disk format papersim writes; a library of a version it cannot read is
/// refused, not guessed at. Version 2 added segments; version 3 the keys file, which lets a
/// reader open the papers file without parsing it; version 4 made the HNSW graph optional (no
/// graph is stored unless [`Manifest::store_graph`]), so that the vectors are stored once, and
/// compressed the base generation's records (`papers.<g>.jsonl.zst`, see `library::blocks`).
/// Older libraries are read as they are and written as version 4 by the next commit (their
/// keys file by the next full one, which also drops a graph nobody asked to keep).
pub const FORMAT_VERSION: u32 = 4;
/// Format versions this papersim reads.
pub const READABLE_FORMAT_VERSIONS: [u32; 4] = [1, 2, 3, 4];

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
    /// The HNSW graph's directory, when the library keeps one ([`Manifest::store_graph`]);
    /// always present before format version 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<String>,
    /// The lexical index; absent in libraries written before papersim had one, which build it
    /// from their papers on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical: Option<String>,
    /// The papers file's keys (see `library::keys`): absent before format version 3, whose
    /// libraries are then opened whole until their next full commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
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
    /// Whether full commits store the HNSW graph (`papersim index rebuild --graph stored`).
    /// Off by default: hnsw_rs saves a copy of every vector beside its graph (about 1.5 KB a
    /// paper at 384 dimensions, doubling the vectors on disk), and a one-shot command never
    /// loads a graph (see `index::prefer_graph_in_memory`). A long-lived process over a large
    /// library turns it on so that it loads the graph instead of building it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub store_graph: bool,
    /// How the vectors files store each value: f32, or f16 for a library created with
    /// `--vector-dtype f16` (or converted by `index rebuild --vector-dtype`). Absent for f32,
    /// so that f32 libraries are written exactly as before it existed.
    #[serde(default, skip_serializing_if = "VectorDtype::is_f32")]
    pub vector_dtype: VectorDtype,
    /// All papers: the base generation's and the segments'.
    pub papers: usize,
    /// The base generation: the last full write.
    pub files: GenerationFiles,
    /// Commits since the base generation, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    pub digests: Vec<DigestRecord>,
    pub updated: String,
    /// The length and CRC-32 of each data file the manifest names (papers, embeddings,
    /// lexical), checked whenever one is read, so that a damaged or edited file is refused
    /// instead of read as data. The graph directory seals its own files (`index.json`). Absent
    /// in libraries written before papersim recorded them: those files are read unchecked
    /// until the next full commit writes them afresh with their checksums.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, FileSum>,
    /// Where the papers and vectors live when not in this directory: a Qdrant collection
    /// (`papersim init --engine qdrant`). Absent for a local library, whose manifest is
    /// written exactly as before engines existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
}

/// A remote engine holding a library's papers (as payload) and vectors; the directory keeps
/// the manifest (model, this) and the reader's feedback log. The API key is never stored
/// here: it comes from `PAPERSIM_QDRANT_API_KEY` (or `--api-key`) on every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engine {
    /// `qdrant`, the one kind so far.
    pub kind: String,
    /// The nodes' REST URLs (`http://host:6333`, or https), tried in order: one node down
    /// leaves the others to answer.
    pub urls: Vec<String>,
    pub collection: String,
    pub shards: u32,
    pub replicas: u32,
}

/// A file's length and CRC-32 (IEEE), as [`Manifest::checksums`] records them. CRC-32 rather
/// than a cryptographic hash because it is verified on every open: it runs at several GB/s
/// (a 100,000-paper library's files in tens of milliseconds), and it catches the damage it is
/// there for — flipped bits, torn or truncated writes, a file swapped for another — while an
/// attacker who can write the library directory can rewrite the manifest as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub len: u64,
    pub crc32: u32,
}

impl FileSum {
    pub fn of(bytes: &[u8]) -> FileSum {
        FileSum {
            len: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        }
    }
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
        [f.papers.as_str(), f.embeddings.as_str()]
            .into_iter()
            .chain(f.graph.as_deref())
            .chain(f.lexical.as_deref())
            .chain(f.keys.as_deref())
            .chain(
                self.segments.iter().flat_map(|s| {
                    std::iter::once(s.papers.as_str()).chain(s.embeddings.as_deref())
                }),
            )
    }
}

/// The kinds of file a library writes, each `<kind>.<generation><suffix>`; `graph` is a
/// directory.
const GENERATION_FILES: [(&str, &str); 6] = [
    ("papers", ".jsonl"),
    ("papers", ".jsonl.zst"),
    ("embeddings", ".npy"),
    ("lexical", ".bin"),
    ("keys", ".bin"),
    ("graph", ""),
];

/// The generation number in the name of a file a library writes (`papers.7.jsonl` → 7), and
/// whether it names the graph directory. Only these exact names are papersim's: a user's
/// `papers.2024.pdf` or `graph.1.png` beside the library is not, and is never touched.
pub(crate) fn generation_of(name: &str) -> Option<(u64, bool)> {
    GENERATION_FILES.iter().find_map(|(kind, suffix)| {
        let number = name
            .strip_prefix(kind)?
            .strip_prefix('.')?
            .strip_suffix(suffix)?;
        // Digits only, as papersim writes them: no sign, no leading zero.
        let canonical = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && (number == "0" || !number.starts_with('0'));
        canonical
            .then(|| number.parse().ok())
            .flatten()
            .map(|g| (g, *kind == "graph"))
    })
}

/// Now, as the manifest records times (UTC, seconds).
pub(crate) fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
