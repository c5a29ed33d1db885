//! The library directory: a versioned manifest, the papers, their embeddings (float32 `.npy`,
//! row-aligned with the papers), the HNSW graph and the lexical index, written atomically with
//! the manifest renamed into place last.
//!
//! Layout of `<library>/`:
//! - `manifest.json` — the commit point: format version, model, index parameters, counts, the
//!   base generation's files and the segments written since.
//! - The **base generation** (the last full write): `papers.<gen>.jsonl`,
//!   `embeddings.<gen>.npy`, `graph.<gen>/` and `lexical.<gen>.bin` (the BM25 index, see
//!   [`crate::lexical`]).
//! - **Segments**, one per commit since: `papers.<gen>.jsonl` (the papers it added, then the
//!   updated records of papers seen again) and `embeddings.<gen>.npy` (the added papers'
//!   vectors). An ingest thus writes what it adds, not the whole library. Readers search the
//!   graph for the base rows and the segments' rows exactly, and index the segments' text
//!   lexically when they load; once the segments pass [`COMPACT_FRACTION`] of the base (or
//!   [`MAX_SEGMENTS`] of them), a commit writes a new base generation with the new papers
//!   inserted into the graph.
//! - `lock` — held by the one writer.
//!
//! A writer writes generation g+1's files (a base or a segment) beside g's, fsyncs them, then
//! renames `manifest.json.tmp` over `manifest.json`. A crash before that rename leaves g in
//! force (the stray files are removed by the next writer); after it, g+1. Readers open whatever
//! the manifest names; the files of the previous manifest are kept until the commit after
//! next, so a reader that read the old manifest still finds its files.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
pub use crate::directory::WriteLock;
use crate::directory::{sync_dir, write_durably};
use crate::encode::embedder::Embedder;
use crate::encode::model::ModelFiles;
use crate::encode::pooling::Pooling;
use crate::index::lexical::{paper_text, LexicalIndex};
use crate::index::{
    search_layered, validate_vectors, ExactIndex, Hit, HnswIndex, HnswParams, VectorIndex,
    EXACT_THRESHOLD,
};
use crate::paper::{embedding_text, normalize_title};
use crate::progress::Progress;
use crate::{Error, Result};

pub mod npy;

/// Version of the on-disk format papersim writes; a library of a version it cannot read is
/// refused, not guessed at. Version 2 added segments; version 1 libraries (a base generation
/// only) are read as they are and written as version 2 by the next commit.
pub const FORMAT_VERSION: u32 = 2;
const READABLE_FORMAT_VERSIONS: [u32; 2] = [1, 2];
/// A commit writes a full generation, not a segment, once the papers outside the base
/// generation would pass this fraction of it: they are searched exactly, and every reader
/// parses their segments, so they are folded into the graph before they cost much. Each
/// paper is thus rewritten about 1/COMPACT_FRACTION times over the library's life, however
/// it grows, instead of at every ingest.
pub const COMPACT_FRACTION: f64 = 0.10;
/// A commit writes a full generation when the manifest already lists this many segments
/// (sightings-only ingests add segments without adding papers).
pub const MAX_SEGMENTS: usize = 32;
const MANIFEST: &str = "manifest.json";

/// The model a library was embedded with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    /// See [`ModelFiles::fingerprint`].
    pub fingerprint: String,
    pub dim: usize,
    pub pooling: Pooling,
    pub max_seq_length: usize,
}

impl ModelInfo {
    pub fn of(files: &ModelFiles) -> Result<Self> {
        Ok(ModelInfo {
            id: files.id.clone(),
            fingerprint: files.fingerprint()?,
            dim: files.dim(),
            pooling: files.pooling,
            max_seq_length: files.max_seq_length,
        })
    }
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

/// Where a paper was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenIn {
    pub digest: String,
    pub date: Option<String>,
}

/// A paper as the library keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paper {
    pub id: String,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    pub date: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    pub seen_in: Vec<SeenIn>,
}

impl Paper {
    pub fn text(&self) -> String {
        embedding_text(&self.title, &self.abstract_text)
    }
    /// Dates of the digests this paper appeared in, plus its own date.
    pub fn dates(&self) -> impl Iterator<Item = &str> {
        self.seen_in
            .iter()
            .filter_map(|s| s.date.as_deref())
            .chain(self.date.as_deref())
    }
    pub fn first_seen(&self) -> Option<&str> {
        self.dates().min()
    }
    pub fn last_seen(&self) -> Option<&str> {
        self.dates().max()
    }
}

/// How a search picks its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    /// Exact below [`EXACT_THRESHOLD`] papers, HNSW above.
    #[default]
    Auto,
    Exact,
    Hnsw,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub read: usize,
    pub added: usize,
    pub already_present: usize,
    pub skipped: Vec<String>,
    pub digests: Vec<DigestRecord>,
    pub papers_total: usize,
}

/// An open library.
pub struct Library {
    root: PathBuf,
    manifest: Manifest,
    papers: Vec<Paper>,
    vectors: ExactIndex,
    by_id: HashMap<String, usize>,
    by_title: HashMap<String, usize>,
    /// Rows of the base generation: its graph and lexical files cover exactly these.
    base_rows: usize,
    /// Rows on disk (base and segments) as the manifest names them; later rows are new.
    committed_rows: usize,
    /// Committed rows whose records changed since the library was opened (new sightings).
    changed: BTreeSet<usize>,
    /// The HNSW graph of rows `0..graph.len()`, loaded on first use; rows after it are searched
    /// exactly until a full commit inserts them.
    graph: OnceLock<HnswIndex>,
    /// The lexical index of every row, loaded (or built) on first use and kept up to date.
    lexical: OnceLock<LexicalIndex>,
    /// The next commit must write a full generation (new model, vectors or index parameters).
    full_rewrite: bool,
    dirty: bool,
}

/// The default library directory: `$PAPERSIM_LIBRARY`, else the platform's data directory.
pub fn default_library_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("papersim")
        .join("library")
}

fn lib_err(root: &Path, reason: impl Into<String>) -> Error {
    Error::Library {
        path: root.to_path_buf(),
        reason: reason.into(),
    }
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reads a papers file: one JSON record a line.
fn read_papers(path: &Path) -> Result<Vec<Paper>> {
    let text = fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(text).map_err(|_| Error::Library {
        path: path.to_path_buf(),
        reason: "not UTF-8".into(),
    })?;
    // Parsed in parallel: at 100,000 papers this is most of what opening a library costs.
    let lines: Vec<&str> = text.lines().collect();
    lines
        .par_iter()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| Error::Library {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// Reads an embeddings file that must hold `rows` vectors of dimension `dim`.
fn read_vectors(path: &Path, rows: usize, dim: usize, what: &str) -> Result<Vec<f32>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let (data, got_rows, cols) = npy::decode_f32(&bytes).map_err(|reason| Error::Library {
        path: path.to_path_buf(),
        reason,
    })?;
    if got_rows != rows || cols != dim {
        return Err(Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "holds {got_rows}×{cols} vectors, but {what} {rows} papers of dimension {dim}"
            ),
        });
    }
    Ok(data)
}

fn papers_jsonl(papers: &[&Paper]) -> Result<Vec<u8>> {
    let mut jsonl = Vec::new();
    for p in papers {
        serde_json::to_writer(&mut jsonl, p)
            .map_err(|e| Error::InvalidInput(format!("paper {}: {e}", p.id)))?;
        jsonl.push(b'\n');
    }
    Ok(jsonl)
}

impl Library {
    /// Whether `root` holds a library.
    pub fn exists(root: &Path) -> bool {
        root.join(MANIFEST).is_file()
    }

    /// Opens an existing library for reading.
    pub fn open(root: &Path) -> Result<Library> {
        // A writer may replace the generation between our reading the manifest and its files;
        // the files of the previous manifest are kept, but retry once more to be safe.
        let mut last = None;
        for _ in 0..3 {
            match Self::open_once(root) {
                Err(e @ Error::Io { .. }) if is_not_found(&e) && Self::exists(root) => {
                    last = Some(e)
                }
                other => return other,
            }
        }
        Err(lib_err(
            root,
            format!(
                "a file that manifest.json names is missing: {}",
                last.map(|e| e.to_string()).unwrap_or_default()
            ),
        ))
    }

    fn open_once(root: &Path) -> Result<Library> {
        let manifest_path = root.join(MANIFEST);
        let bytes = fs::read(&manifest_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => lib_err(
                root,
                "no library here (no manifest.json); create one with `papersim ingest`",
            ),
            _ => Error::io(&manifest_path, e),
        })?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Library {
            path: manifest_path.clone(),
            reason: format!("corrupt manifest: {e}"),
        })?;
        let bad = |reason: String| Error::Library {
            path: manifest_path.clone(),
            reason,
        };
        if !READABLE_FORMAT_VERSIONS.contains(&manifest.format_version) {
            return Err(bad(format!(
                "format version {} is not supported by this papersim (version {FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        if let Some(name) = manifest
            .file_names()
            .find(|n| n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.'))
        {
            return Err(bad(format!("file name `{name}` escapes the library")));
        }
        let segment_rows = manifest
            .segments
            .iter()
            .try_fold(0usize, |sum, s| sum.checked_add(s.added))
            .filter(|&rows| rows <= manifest.papers)
            .ok_or_else(|| {
                bad(format!(
                    "its segments add more papers than the library's {}",
                    manifest.papers
                ))
            })?;
        let base_rows = manifest.papers - segment_rows;
        let dim = manifest.model.dim;

        let papers_path = root.join(&manifest.files.papers);
        let mut papers = read_papers(&papers_path)?;
        let emb_path = root.join(&manifest.files.embeddings);
        if papers.len() != base_rows {
            return Err(Error::Library {
                path: papers_path,
                reason: format!(
                    "holds {} papers, but the manifest says {base_rows}",
                    papers.len()
                ),
            });
        }
        let mut vectors = ExactIndex::from_vectors(
            dim,
            read_vectors(&emb_path, base_rows, dim, "the library has")?,
        )
        .map_err(|e| Error::Library {
            path: emb_path.clone(),
            reason: e.to_string(),
        })?;
        let mut by_id: HashMap<String, usize> = HashMap::with_capacity(manifest.papers);
        for (row, p) in papers.iter().enumerate() {
            if by_id.insert(p.id.clone(), row).is_some() {
                return Err(Error::Library {
                    path: papers_path,
                    reason: format!("paper id {} is stored twice", p.id),
                });
            }
        }
        for segment in &manifest.segments {
            let path = root.join(&segment.papers);
            let records = read_papers(&path)?;
            let seg_err = |reason: String| Error::Library {
                path: path.clone(),
                reason,
            };
            if records.len() != segment.added + segment.updated {
                return Err(seg_err(format!(
                    "holds {} records, but the manifest says {} added and {} updated",
                    records.len(),
                    segment.added,
                    segment.updated
                )));
            }
            let mut records = records.into_iter();
            for p in records.by_ref().take(segment.added) {
                if by_id.insert(p.id.clone(), papers.len()).is_some() {
                    return Err(seg_err(format!("adds paper {} a second time", p.id)));
                }
                papers.push(p);
            }
            for p in records {
                let row = *by_id.get(&p.id).ok_or_else(|| {
                    seg_err(format!("updates paper {}, which is not stored", p.id))
                })?;
                papers[row] = p;
            }
            match &segment.embeddings {
                Some(name) => {
                    let path = root.join(name);
                    let data = read_vectors(&path, segment.added, dim, "its segment adds")?;
                    vectors.add(&data).map_err(|e| Error::Library {
                        path,
                        reason: e.to_string(),
                    })?;
                }
                None if segment.added == 0 => {}
                None => {
                    return Err(seg_err(format!(
                        "adds {} papers but names no embeddings file",
                        segment.added
                    )))
                }
            }
        }
        let mut by_title = HashMap::with_capacity(papers.len());
        for (row, p) in papers.iter().enumerate() {
            by_title.entry(normalize_title(&p.title)).or_insert(row);
        }
        Ok(Library {
            root: root.to_path_buf(),
            committed_rows: papers.len(),
            manifest,
            papers,
            vectors,
            by_id,
            by_title,
            base_rows,
            changed: BTreeSet::new(),
            graph: OnceLock::new(),
            lexical: OnceLock::new(),
            full_rewrite: false,
            dirty: false,
        })
    }

    /// A new, empty library in memory; nothing is written until [`Library::commit`].
    pub fn create(root: &Path, model: ModelInfo, index: HnswParams) -> Result<Library> {
        let dim = model.dim;
        Ok(Library {
            root: root.to_path_buf(),
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                generation: 0,
                model,
                index,
                papers: 0,
                files: GenerationFiles {
                    papers: String::new(),
                    embeddings: String::new(),
                    graph: String::new(),
                    lexical: None,
                },
                segments: Vec::new(),
                digests: Vec::new(),
                updated: now(),
            },
            papers: Vec::new(),
            vectors: ExactIndex::new(dim),
            by_id: HashMap::new(),
            by_title: HashMap::new(),
            base_rows: 0,
            committed_rows: 0,
            changed: BTreeSet::new(),
            graph: OnceLock::new(),
            lexical: OnceLock::new(),
            full_rewrite: true,
            dirty: true,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn papers(&self) -> &[Paper] {
        &self.papers
    }
    pub fn len(&self) -> usize {
        self.papers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.papers.is_empty()
    }
    pub fn dim(&self) -> usize {
        self.manifest.model.dim
    }
    /// The stored, unit-norm vector of row `row`.
    pub fn vector(&self, row: usize) -> &[f32] {
        self.vectors.row(row)
    }
    pub fn row_of_id(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }
    /// The row of a paper with this title (compared normalised).
    pub fn row_of_title(&self, title: &str) -> Option<usize> {
        self.by_title.get(&normalize_title(title)).copied()
    }

    /// Refuses a model other than the one the library was embedded with.
    pub fn check_model(&self, files: &ModelFiles) -> Result<()> {
        let m = &self.manifest.model;
        let fingerprint = files.fingerprint()?;
        if m.fingerprint != fingerprint || m.dim != files.dim() {
            return Err(lib_err(
                &self.root,
                format!(
                    "was embedded with model `{}` (dimension {}, fingerprint {}), but the model in use is `{}` (dimension {}, fingerprint {}). \
                     Use `--model {}`, or re-embed the library with `papersim index rebuild --reembed --model {}`",
                    m.id,
                    m.dim,
                    &m.fingerprint[..12.min(m.fingerprint.len())],
                    files.id,
                    files.dim(),
                    &fingerprint[..12],
                    m.id,
                    files.id
                ),
            ));
        }
        Ok(())
    }

    /// The base generation's HNSW graph as stored (an empty one for a new library).
    fn load_graph(&self) -> Result<HnswIndex> {
        if self.manifest.generation == 0 {
            return HnswIndex::new(self.dim(), self.manifest.index, 1024);
        }
        let path = self.root.join(&self.manifest.files.graph);
        let loaded = HnswIndex::load(&path, self.manifest.index)?;
        if loaded.len() != self.base_rows {
            return Err(Error::Index {
                path,
                reason: format!(
                    "holds {} points but the library's base generation has {} papers; run `papersim index rebuild`",
                    loaded.len(),
                    self.base_rows
                ),
            });
        }
        Ok(loaded)
    }

    /// The HNSW graph, loaded from disk on first use.
    fn hnsw(&self) -> Result<&HnswIndex> {
        if let Some(g) = self.graph.get() {
            return Ok(g);
        }
        let loaded = self.load_graph()?;
        Ok(self.graph.get_or_init(|| loaded))
    }

    /// The k nearest papers to a unit-norm query.
    pub fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<Hit>> {
        let use_hnsw = match mode {
            SearchMode::Exact => false,
            SearchMode::Hnsw => true,
            SearchMode::Auto => self.len() >= EXACT_THRESHOLD,
        };
        if use_hnsw {
            search_layered(self.hnsw()?, &self.vectors, query, k)
        } else {
            self.vectors.search(query, k)
        }
    }

    /// The lexical (BM25) index of the papers' titles and abstracts, loaded on first use; a
    /// library written before papersim had one gets it built from its papers.
    pub fn lexical(&self) -> Result<&LexicalIndex> {
        if let Some(l) = self.lexical.get() {
            return Ok(l);
        }
        let mut index = self.load_lexical()?;
        // Papers of later segments (and new ones) are indexed here: cheap, and it keeps the
        // segments free of lexical files.
        index.add((index.len()..self.len()).map(|r| self.lexical_text(r)));
        Ok(self.lexical.get_or_init(|| index))
    }

    /// The text the lexical index holds for row `row`.
    pub fn lexical_text(&self, row: usize) -> String {
        let p = &self.papers[row];
        paper_text(&p.title, &p.abstract_text)
    }

    /// The base generation's lexical index, which covers its papers.
    fn load_lexical(&self) -> Result<LexicalIndex> {
        let name = match &self.manifest.files.lexical {
            Some(name) if self.manifest.generation > 0 => name,
            _ => {
                return Ok(LexicalIndex::build(
                    (0..self.base_rows).map(|r| self.lexical_text(r)),
                ))
            }
        };
        let path = self.root.join(name);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let index = LexicalIndex::from_bytes(&bytes).map_err(|reason| Error::Library {
            path: path.clone(),
            reason: format!("{reason}; run `papersim index rebuild` to rebuild it"),
        })?;
        if index.len() != self.base_rows {
            return Err(Error::Library {
                path,
                reason: format!(
                    "indexes {} papers but the library's base generation has {}; run `papersim index rebuild`",
                    index.len(),
                    self.base_rows
                ),
            });
        }
        Ok(index)
    }

    /// Whether the next commit writes a full generation rather than a segment.
    fn commit_is_full(&self) -> bool {
        let tail = self.len() - self.base_rows;
        self.full_rewrite
            || self.manifest.generation == 0
            || self.manifest.segments.len() >= MAX_SEGMENTS
            || tail as f64 > self.base_rows as f64 * COMPACT_FRACTION
    }

    /// Adds the papers of `digests` that are not yet stored, embedding only those, and merges
    /// the sightings of those already there. Nothing is written until [`Library::commit`].
    pub fn ingest(
        &mut self,
        digests: &[Digest],
        embedder: &Embedder,
        progress: &dyn Progress,
    ) -> Result<IngestReport> {
        self.ingest_reusing(digests, embedder, progress, &HashMap::new())
    }

    /// [`Library::ingest`], taking the vectors of texts in `known` (embedding text → unit
    /// vector from `embedder`) instead of embedding them again: `triage --ingest` has just
    /// embedded the digest to rank it.
    pub fn ingest_reusing(
        &mut self,
        digests: &[Digest],
        embedder: &Embedder,
        progress: &dyn Progress,
        known: &HashMap<String, Vec<f32>>,
    ) -> Result<IngestReport> {
        self.check_model(embedder.files())?;
        let mut report = IngestReport::default();
        let mut new_rows: Vec<usize> = Vec::new();
        for digest in digests {
            report.skipped.extend(digest.warnings.iter().cloned());
            let date = digest.date.map(|d| d.format("%Y-%m-%d").to_string());
            let mut record = DigestRecord {
                source: digest_name(&digest.source),
                date: date.clone(),
                papers: digest.papers.len(),
                added: 0,
            };
            for dp in &digest.papers {
                report.read += 1;
                let id = dp.id();
                let seen = SeenIn {
                    digest: record.source.clone(),
                    date: date.clone(),
                };
                let existing = self
                    .by_id
                    .get(&id)
                    .or_else(|| self.by_title.get(&normalize_title(&dp.title)))
                    .copied();
                match existing {
                    Some(row) => {
                        report.already_present += 1;
                        let p = &mut self.papers[row];
                        let mut changed = false;
                        if !p.seen_in.contains(&seen) {
                            p.seen_in.push(seen);
                            changed = true;
                        }
                        // A later source may know more (an arXiv listing after a text digest).
                        if p.url.is_none() && dp.url.is_some() {
                            p.url = dp.url.clone();
                            changed = true;
                        }
                        if p.categories.is_empty() && !dp.categories.is_empty() {
                            p.categories = dp.categories.clone();
                            changed = true;
                        }
                        if changed {
                            self.dirty = true;
                            if row < self.committed_rows {
                                self.changed.insert(row);
                            }
                        }
                    }
                    None => {
                        let row = self.papers.len();
                        self.papers.push(Paper {
                            id: id.clone(),
                            title: dp.title.clone(),
                            abstract_text: dp.abstract_text.clone(),
                            date: dp.date.clone().or_else(|| date.clone()),
                            url: dp.url.clone(),
                            authors: dp.authors.clone(),
                            categories: dp.categories.clone(),
                            seen_in: vec![seen],
                        });
                        self.by_id.insert(id, row);
                        self.by_title
                            .entry(normalize_title(&dp.title))
                            .or_insert(row);
                        new_rows.push(row);
                        record.added += 1;
                    }
                }
            }
            report.digests.push(record.clone());
            if let Some(old) = self
                .manifest
                .digests
                .iter_mut()
                .find(|d| d.source == record.source)
            {
                if old.papers != record.papers || record.added > 0 {
                    old.papers = record.papers;
                    old.added += record.added;
                    self.dirty = true;
                }
            } else {
                self.manifest.digests.push(record);
                self.dirty = true;
            }
        }
        report.added = new_rows.len();
        if !new_rows.is_empty() {
            // A commit that writes a full generation reads the stored graph and lexical index:
            // read them before the (slow) embedding, so that a damaged file fails fast.
            if self.commit_is_full() {
                self.hnsw()?;
                self.lexical()?;
            }
            let texts: Vec<String> = new_rows.iter().map(|&r| self.papers[r].text()).collect();
            let missing: Vec<&str> = texts
                .iter()
                .filter(|t| !known.contains_key(t.as_str()))
                .map(String::as_str)
                .collect();
            let embedded = if missing.is_empty() {
                Vec::new()
            } else {
                embedder.embed_with(&missing, progress)?.0.data
            };
            let dim = self.dim();
            let mut fresh = embedded.chunks_exact(dim);
            let mut data = Vec::with_capacity(texts.len() * dim);
            for text in &texts {
                match known.get(text.as_str()) {
                    Some(v) => data.extend_from_slice(v),
                    None => data.extend_from_slice(fresh.next().unwrap_or_default()),
                }
            }
            self.append_vectors(new_rows[0], &data)?;
        }
        report.papers_total = self.papers.len();
        Ok(report)
    }

    /// Adds papers that were embedded elsewhere with this library's model (`vectors`: one unit
    /// vector per paper, row-major), skipping those already stored, as [`Library::ingest`] does
    /// after embedding. For tools that keep their own embeddings, such as the evaluation in
    /// `examples/eval.rs`. Returns how many were added; nothing is written until
    /// [`Library::commit`].
    pub fn add_embedded(&mut self, papers: Vec<Paper>, vectors: &[f32]) -> Result<usize> {
        let dim = self.dim();
        if vectors.len() != papers.len() * dim {
            return Err(Error::InvalidInput(format!(
                "{} papers need {} floats of vectors, got {}",
                papers.len(),
                papers.len() * dim,
                vectors.len()
            )));
        }
        validate_vectors(vectors, dim, self.len())?;
        let first = self.len();
        let mut data = Vec::new();
        for (i, paper) in papers.into_iter().enumerate() {
            if self.by_id.contains_key(&paper.id)
                || self.by_title.contains_key(&normalize_title(&paper.title))
            {
                continue;
            }
            let row = self.papers.len();
            self.by_id.insert(paper.id.clone(), row);
            self.by_title
                .entry(normalize_title(&paper.title))
                .or_insert(row);
            self.papers.push(paper);
            data.extend_from_slice(&vectors[i * dim..(i + 1) * dim]);
        }
        let added = self.len() - first;
        if added > 0 {
            self.append_vectors(first, &data)?;
        }
        Ok(added)
    }

    /// Appends the vectors of the papers pushed from row `first` on. The graph is left as it
    /// is (search covers the new rows exactly until a full commit inserts them); a lexical
    /// index already in memory takes their text.
    fn append_vectors(&mut self, first: usize, data: &[f32]) -> Result<()> {
        validate_vectors(data, self.dim(), self.vectors.len())?;
        if self.vectors.len() != first || first + data.len() / self.dim() != self.len() {
            return Err(lib_err(
                &self.root,
                format!(
                    "{} vectors for papers {first}.. do not match the {} papers",
                    data.len() / self.dim(),
                    self.len()
                ),
            ));
        }
        self.vectors.add(data)?;
        // A lexical index loaded after the papers were pushed holds them already.
        if let Some(l) = self.lexical.get_mut() {
            let from = l.len();
            l.add(
                self.papers[from..]
                    .iter()
                    .map(|p| paper_text(&p.title, &p.abstract_text)),
            );
        }
        self.manifest.papers = self.papers.len();
        self.dirty = true;
        Ok(())
    }

    /// Rebuilds the HNSW graph from the stored vectors (with new parameters if given).
    pub fn rebuild_index(&mut self, params: HnswParams) -> Result<()> {
        let mut graph = HnswIndex::new(self.dim(), params, self.len().max(1024))?;
        graph.add(self.vectors.vectors())?;
        self.manifest.index = params;
        self.graph = OnceLock::new();
        let _ = self.graph.set(graph);
        self.lexical = OnceLock::new();
        let _ = self.lexical.set(LexicalIndex::build(
            (0..self.len()).map(|r| self.lexical_text(r)),
        ));
        self.full_rewrite = true;
        self.dirty = true;
        Ok(())
    }

    /// Re-embeds every paper with `embedder` (another model), then rebuilds the graph.
    pub fn reembed(&mut self, embedder: &Embedder, progress: &dyn Progress) -> Result<()> {
        let texts: Vec<String> = self.papers.iter().map(Paper::text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (embedded, _) = embedder.embed_with(&refs, progress)?;
        validate_vectors(&embedded.data, embedded.dim, 0)?;
        self.manifest.model = ModelInfo::of(embedder.files())?;
        self.vectors = ExactIndex::from_vectors(embedded.dim, embedded.data)?;
        self.rebuild_index(self.manifest.index)
    }

    /// Whether there are changes to write.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the changes and switches the manifest to them. The caller must hold the write
    /// lock ([`WriteLock`]).
    ///
    /// Usually that is a small segment (the new papers, their vectors, and the records of
    /// papers seen again), so that an ingest writes what it adds, not the whole library. When
    /// the papers outside the base generation pass [`COMPACT_FRACTION`] of it, or there are
    /// [`MAX_SEGMENTS`] segments, or the model or index changed, it writes a full generation
    /// instead: the new papers are inserted into the graph and everything is written afresh.
    pub fn commit(&mut self, _lock: &WriteLock) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let generation = self.manifest.generation + 1;
        let full = self.commit_is_full();
        // Leftovers of a writer killed at this same generation are replaced, never reused.
        let graph_dir = self.root.join(format!("graph.{generation}"));
        if graph_dir.exists() {
            fs::remove_dir_all(&graph_dir).map_err(|e| Error::io(&graph_dir, e))?;
        }
        let written = if full {
            self.write_generation(generation)
        } else {
            self.write_segment(generation)
        };
        let manifest = match written.and_then(|m| self.switch_manifest(m, generation)) {
            Ok(manifest) => manifest,
            Err(e) => {
                // A failed write (disk full, I/O error) leaves the library as it was: the
                // manifest still names generation g, and g+1's partial files are removed so
                // that they do not fill the disk further.
                for name in [
                    format!("papers.{generation}.jsonl"),
                    format!("embeddings.{generation}.npy"),
                    format!("lexical.{generation}.bin"),
                    "manifest.json.tmp".to_string(),
                ] {
                    let _ = fs::remove_file(self.root.join(name));
                }
                let _ = fs::remove_dir_all(&graph_dir);
                return Err(e);
            }
        };

        let previous = std::mem::replace(&mut self.manifest, manifest);
        if full {
            self.base_rows = self.len();
            self.full_rewrite = false;
        }
        self.committed_rows = self.len();
        self.changed.clear();
        self.dirty = false;
        self.remove_stale_files(&previous);
        Ok(())
    }

    /// Writes generation `generation` as a full one: every paper, vector, the graph (with the
    /// papers added since the base generation inserted) and the lexical index. Returns the
    /// manifest that names it.
    fn write_generation(&mut self, generation: u64) -> Result<Manifest> {
        let files = GenerationFiles {
            papers: format!("papers.{generation}.jsonl"),
            embeddings: format!("embeddings.{generation}.npy"),
            graph: format!("graph.{generation}"),
            lexical: Some(format!("lexical.{generation}.bin")),
        };
        let all: Vec<&Paper> = self.papers.iter().collect();
        write_durably(&self.root.join(&files.papers), &papers_jsonl(&all)?)?;
        write_durably(
            &self.root.join(&files.embeddings),
            &npy::encode_f32(self.vectors.vectors(), self.len(), self.dim()),
        )?;
        let lexical = self.lexical()?.to_bytes();
        if let Some(name) = &files.lexical {
            write_durably(&self.root.join(name), &lexical)?;
        }
        let mut graph = match self.graph.take() {
            Some(g) => g,
            None => self.load_graph()?,
        };
        let covered = graph.len() * self.dim();
        let saved = graph
            .add(&self.vectors.vectors()[covered..])
            .and_then(|()| graph.save(&self.root.join(&files.graph)));
        // Kept whether or not the write worked: the graph is only ever extended, and search
        // covers whatever rows it does not hold exactly.
        let _ = self.graph.set(graph);
        saved?;

        let mut manifest = self.manifest.clone();
        manifest.files = files;
        manifest.segments.clear();
        Ok(manifest)
    }

    /// Writes generation `generation` as a segment on top of the current manifest: the papers
    /// added since the last commit (and their vectors), then the records of committed papers
    /// that changed.
    fn write_segment(&self, generation: u64) -> Result<Manifest> {
        let added: Vec<&Paper> = self.papers[self.committed_rows..].iter().collect();
        let mut records = added.clone();
        records.extend(self.changed.iter().map(|&r| &self.papers[r]));
        let papers = format!("papers.{generation}.jsonl");
        write_durably(&self.root.join(&papers), &papers_jsonl(&records)?)?;
        let embeddings = if added.is_empty() {
            None
        } else {
            let name = format!("embeddings.{generation}.npy");
            let data = &self.vectors.vectors()[self.committed_rows * self.dim()..];
            write_durably(
                &self.root.join(&name),
                &npy::encode_f32(data, added.len(), self.dim()),
            )?;
            Some(name)
        };
        let mut manifest = self.manifest.clone();
        manifest.segments.push(Segment {
            generation,
            papers,
            embeddings,
            added: added.len(),
            updated: self.changed.len(),
        });
        Ok(manifest)
    }

    /// Stamps `manifest` as generation `generation` and renames it into place: the commit point.
    fn switch_manifest(&self, mut manifest: Manifest, generation: u64) -> Result<Manifest> {
        manifest.format_version = FORMAT_VERSION;
        manifest.generation = generation;
        manifest.papers = self.papers.len();
        manifest.updated = now();
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| lib_err(&self.root, e.to_string()))?;
        let tmp = self.root.join("manifest.json.tmp");
        write_durably(&tmp, &bytes)?;
        let target = self.root.join(MANIFEST);
        fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
        let _ = sync_dir(&self.root);
        Ok(manifest)
    }

    /// Removes generation files that neither the current manifest nor `previous` names (the
    /// previous manifest's are kept for readers that opened it), among them the leftovers of
    /// killed writers. Failures here lose nothing.
    fn remove_stale_files(&self, previous: &Manifest) {
        let keep: BTreeSet<&str> = self
            .manifest
            .file_names()
            .chain(previous.file_names())
            .collect();
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if generation_of(&name).is_none() || keep.contains(name.as_str()) {
                continue;
            }
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }

    /// Bytes on disk of the files the manifest names, and the manifest itself.
    pub fn size_on_disk(&self) -> u64 {
        let mut total = 0;
        for name in std::iter::once(MANIFEST).chain(self.manifest.file_names()) {
            let path = self.root.join(name);
            total += match fs::read_dir(&path) {
                Ok(entries) => entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum::<u64>(),
                Err(_) => fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            };
        }
        total
    }
}

/// The generation number in a generation file name (`papers.7.jsonl` → 7).
fn generation_of(name: &str) -> Option<u64> {
    let mut parts = name.split('.');
    let kind = parts.next()?;
    if !matches!(kind, "papers" | "embeddings" | "graph" | "lexical") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// A digest's display name: its file name (or `<stdin>`).
fn digest_name(source: &str) -> String {
    Path::new(source)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| source.to_string())
}
