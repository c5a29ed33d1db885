//! The library directory: a versioned manifest, the papers, their embeddings (float32 `.npy`,
//! row-aligned with the papers) and the HNSW graph, written atomically as a new generation of
//! files with the manifest renamed into place last.
//!
//! Layout of `<library>/`:
//! - `manifest.json` — the commit point: format version, model, index parameters, counts, and
//!   the names of the current generation's files.
//! - `papers.<gen>.jsonl`, `embeddings.<gen>.npy`, `graph.<gen>/`, `lexical.<gen>.bin` (the
//!   BM25 index, see [`crate::lexical`]) — one generation.
//! - `lock` — held by the one writer.
//!
//! A writer builds generation g+1 beside g, fsyncs it, then renames `manifest.json.tmp` over
//! `manifest.json`. A crash before that rename leaves generation g in force (the stray files
//! are removed by the next writer); after it, g+1. Readers open whatever the manifest names;
//! generation g is kept until the commit after next, so a reader that read the old manifest
//! still finds its files.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::embedder::Embedder;
use crate::index::{
    validate_vectors, ExactIndex, Hit, HnswIndex, HnswParams, VectorIndex, EXACT_THRESHOLD,
};
use crate::lexical::{paper_text, LexicalIndex};
use crate::model::ModelFiles;
use crate::paper::{embedding_text, normalize_title};
use crate::pooling::Pooling;
use crate::progress::Progress;
use crate::provision::sync_dir;
use crate::{npy, Error, Result};

/// Version of the on-disk format; a library of another version is refused, not guessed at.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
const LOCK: &str = "lock";

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

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub generation: u64,
    pub model: ModelInfo,
    pub index: HnswParams,
    pub papers: usize,
    pub files: GenerationFiles,
    pub digests: Vec<DigestRecord>,
    pub updated: String,
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
    hnsw: OnceLock<HnswIndex>,
    /// A graph changed in memory, to be written by the next commit.
    hnsw_dirty: Option<HnswIndex>,
    lexical: OnceLock<LexicalIndex>,
    /// A lexical index changed in memory, to be written by the next commit.
    lexical_dirty: Option<LexicalIndex>,
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

impl Library {
    /// Whether `root` holds a library.
    pub fn exists(root: &Path) -> bool {
        root.join(MANIFEST).is_file()
    }

    /// Opens an existing library for reading.
    pub fn open(root: &Path) -> Result<Library> {
        // A writer may replace the generation between our reading the manifest and its files;
        // the files of the previous generation are kept, but retry once more to be safe.
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
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::Library {
                path: manifest_path,
                reason: format!(
                    "format version {} is not supported by this papersim (version {FORMAT_VERSION})",
                    manifest.format_version
                ),
            });
        }
        for name in [
            &manifest.files.papers,
            &manifest.files.embeddings,
            &manifest.files.graph,
        ] {
            if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                return Err(Error::Library {
                    path: manifest_path,
                    reason: format!("file name `{name}` escapes the library"),
                });
            }
        }
        if let Some(name) = &manifest.files.lexical {
            if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                return Err(Error::Library {
                    path: manifest_path,
                    reason: format!("file name `{name}` escapes the library"),
                });
            }
        }

        let papers_path = root.join(&manifest.files.papers);
        let text = fs::read(&papers_path).map_err(|e| Error::io(&papers_path, e))?;
        let text = String::from_utf8(text).map_err(|_| Error::Library {
            path: papers_path.clone(),
            reason: "not UTF-8".into(),
        })?;
        let papers: Vec<Paper> = text
            .lines()
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| Error::Library {
                    path: papers_path.clone(),
                    reason: format!("line {}: {e}", i + 1),
                })
            })
            .collect::<Result<_>>()?;

        let emb_path = root.join(&manifest.files.embeddings);
        let bytes = fs::read(&emb_path).map_err(|e| Error::io(&emb_path, e))?;
        let (data, rows, cols) = npy::decode_f32(&bytes).map_err(|reason| Error::Library {
            path: emb_path.clone(),
            reason,
        })?;
        if rows != papers.len() || rows != manifest.papers || cols != manifest.model.dim {
            return Err(Error::Library {
                path: emb_path,
                reason: format!(
                    "holds {rows}×{cols} vectors, but the library has {} papers (manifest: {}) of dimension {}",
                    papers.len(),
                    manifest.papers,
                    manifest.model.dim
                ),
            });
        }
        let vectors = ExactIndex::from_vectors(cols, data).map_err(|e| Error::Library {
            path: emb_path.clone(),
            reason: e.to_string(),
        })?;
        let mut lib = Library {
            root: root.to_path_buf(),
            manifest,
            papers,
            vectors,
            by_id: HashMap::new(),
            by_title: HashMap::new(),
            hnsw: OnceLock::new(),
            hnsw_dirty: None,
            lexical: OnceLock::new(),
            lexical_dirty: None,
            dirty: false,
        };
        lib.reindex_maps()?;
        Ok(lib)
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
                digests: Vec::new(),
                updated: now(),
            },
            papers: Vec::new(),
            vectors: ExactIndex::new(dim),
            by_id: HashMap::new(),
            by_title: HashMap::new(),
            hnsw: OnceLock::new(),
            hnsw_dirty: Some(HnswIndex::new(dim, index, 1024)?),
            lexical: OnceLock::new(),
            lexical_dirty: Some(LexicalIndex::new()),
            dirty: true,
        })
    }

    fn reindex_maps(&mut self) -> Result<()> {
        self.by_id.clear();
        self.by_title.clear();
        for (row, p) in self.papers.iter().enumerate() {
            if self.by_id.insert(p.id.clone(), row).is_some() {
                return Err(lib_err(
                    &self.root,
                    format!("paper id {} is stored twice", p.id),
                ));
            }
            self.by_title
                .entry(normalize_title(&p.title))
                .or_insert(row);
        }
        Ok(())
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

    /// The HNSW graph, loaded from disk on first use.
    fn hnsw(&self) -> Result<&HnswIndex> {
        if let Some(h) = &self.hnsw_dirty {
            return Ok(h);
        }
        if let Some(h) = self.hnsw.get() {
            return Ok(h);
        }
        let loaded = HnswIndex::load(
            &self.root.join(&self.manifest.files.graph),
            self.manifest.index,
        )?;
        if loaded.len() != self.len() {
            return Err(Error::Index {
                path: self.root.join(&self.manifest.files.graph),
                reason: format!(
                    "holds {} points but the library has {} papers; run `papersim index rebuild`",
                    loaded.len(),
                    self.len()
                ),
            });
        }
        Ok(self.hnsw.get_or_init(|| loaded))
    }

    /// The k nearest papers to a unit-norm query.
    pub fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<Hit>> {
        let use_hnsw = match mode {
            SearchMode::Exact => false,
            SearchMode::Hnsw => true,
            SearchMode::Auto => self.len() >= EXACT_THRESHOLD,
        };
        if use_hnsw {
            self.hnsw()?.search(query, k)
        } else {
            self.vectors.search(query, k)
        }
    }

    /// The lexical (BM25) index of the papers' titles and abstracts, loaded on first use; a
    /// library written before papersim had one gets it built from its papers.
    pub fn lexical(&self) -> Result<&LexicalIndex> {
        if let Some(l) = &self.lexical_dirty {
            return Ok(l);
        }
        if let Some(l) = self.lexical.get() {
            return Ok(l);
        }
        let loaded = self.load_lexical(self.len())?;
        Ok(self.lexical.get_or_init(|| loaded))
    }

    /// The text the lexical index holds for row `row`.
    pub fn lexical_text(&self, row: usize) -> String {
        let p = &self.papers[row];
        paper_text(&p.title, &p.abstract_text)
    }

    /// The committed lexical index, which must cover the first `rows` papers.
    fn load_lexical(&self, rows: usize) -> Result<LexicalIndex> {
        let name = match &self.manifest.files.lexical {
            Some(name) if self.manifest.generation > 0 => name,
            _ => return Ok(LexicalIndex::build((0..rows).map(|r| self.lexical_text(r)))),
        };
        let path = self.root.join(name);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let index = LexicalIndex::from_bytes(&bytes).map_err(|reason| Error::Library {
            path: path.clone(),
            reason: format!("{reason}; run `papersim index rebuild` to rebuild it"),
        })?;
        if index.len() != rows {
            return Err(Error::Library {
                path,
                reason: format!(
                    "indexes {} papers but the library has {rows}; run `papersim index rebuild`",
                    index.len()
                ),
            });
        }
        Ok(index)
    }

    /// Appends the papers from row `first` on to the lexical index.
    fn append_lexical(&mut self, first: usize) -> Result<()> {
        let mut index = match self.lexical_dirty.take() {
            Some(l) => l,
            None => match self.lexical.take() {
                Some(l) => l,
                None => self.load_lexical(first)?,
            },
        };
        if index.len() != first {
            return Err(lib_err(
                &self.root,
                format!(
                    "the lexical index holds {} papers, expected {first}",
                    index.len()
                ),
            ));
        }
        index.add((first..self.len()).map(|r| self.lexical_text(r)));
        self.lexical_dirty = Some(index);
        self.dirty = true;
        Ok(())
    }

    /// Adds the papers of `digests` that are not yet stored, embedding only those, and merges
    /// the sightings of those already there. Nothing is written until [`Library::commit`].
    pub fn ingest(
        &mut self,
        digests: &[Digest],
        embedder: &Embedder,
        progress: &dyn Progress,
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
                        if !p.seen_in.contains(&seen) {
                            p.seen_in.push(seen);
                            self.dirty = true;
                        }
                        // A later source may know more (an arXiv listing after a text digest).
                        if p.url.is_none() && dp.url.is_some() {
                            p.url = dp.url.clone();
                        }
                        if p.categories.is_empty() && !dp.categories.is_empty() {
                            p.categories = dp.categories.clone();
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
        if let Some(&first) = new_rows.first() {
            // Before the (slow) embedding, so that a damaged lexical file fails fast.
            self.append_lexical(first)?;
        }
        if !new_rows.is_empty() {
            let texts: Vec<String> = new_rows.iter().map(|&r| self.papers[r].text()).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let (embedded, _) = embedder.embed_with(&refs, progress)?;
            self.append_vectors(&embedded.data)?;
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
            self.append_lexical(first)?;
            self.append_vectors(&data)?;
        }
        Ok(added)
    }

    /// Appends vectors for the papers pushed last, to the exact store and the graph.
    fn append_vectors(&mut self, data: &[f32]) -> Result<()> {
        validate_vectors(data, self.dim(), self.vectors.len())?;
        self.vectors.add(data)?;
        let mut graph = match self.hnsw_dirty.take() {
            Some(g) => g,
            None => match self.hnsw.take() {
                Some(g) => g,
                None if self.manifest.generation == 0 => {
                    HnswIndex::new(self.dim(), self.manifest.index, 1024)?
                }
                None => HnswIndex::load(
                    &self.root.join(&self.manifest.files.graph),
                    self.manifest.index,
                )?,
            },
        };
        graph.add(data)?;
        self.hnsw_dirty = Some(graph);
        self.manifest.papers = self.papers.len();
        self.dirty = true;
        Ok(())
    }

    /// Rebuilds the HNSW graph from the stored vectors (with new parameters if given).
    pub fn rebuild_index(&mut self, params: HnswParams) -> Result<()> {
        let mut graph = HnswIndex::new(self.dim(), params, self.len().max(1024))?;
        graph.add(self.vectors.vectors())?;
        self.manifest.index = params;
        self.hnsw = OnceLock::new();
        self.hnsw_dirty = Some(graph);
        self.lexical = OnceLock::new();
        self.lexical_dirty = Some(LexicalIndex::build(
            (0..self.len()).map(|r| self.lexical_text(r)),
        ));
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

    /// Writes a new generation and switches the manifest to it. The caller must hold the
    /// write lock ([`WriteLock`]).
    pub fn commit(&mut self, _lock: &WriteLock) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let generation = self.manifest.generation + 1;
        let files = GenerationFiles {
            papers: format!("papers.{generation}.jsonl"),
            embeddings: format!("embeddings.{generation}.npy"),
            graph: format!("graph.{generation}"),
            lexical: Some(format!("lexical.{generation}.bin")),
        };
        // Leftovers of a writer killed at this same generation are replaced, never reused.
        let graph_dir = self.root.join(&files.graph);
        if graph_dir.exists() {
            fs::remove_dir_all(&graph_dir).map_err(|e| Error::io(&graph_dir, e))?;
        }
        let manifest = match self.write_generation(generation, files) {
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

        self.manifest = manifest;
        if let Some(graph) = self.hnsw_dirty.take() {
            self.hnsw = OnceLock::new();
            let _ = self.hnsw.set(graph);
        }
        if let Some(l) = self.lexical_dirty.take() {
            self.lexical = OnceLock::new();
            let _ = self.lexical.set(l);
        }
        self.dirty = false;
        self.remove_stale_generations();
        Ok(())
    }

    /// Writes generation `generation`'s files and renames its manifest into place.
    fn write_generation(&self, generation: u64, files: GenerationFiles) -> Result<Manifest> {
        let graph_dir = self.root.join(&files.graph);

        let mut jsonl = Vec::new();
        for p in &self.papers {
            serde_json::to_writer(&mut jsonl, p).map_err(|e| lib_err(&self.root, e.to_string()))?;
            jsonl.push(b'\n');
        }
        write_durably(&self.root.join(&files.papers), &jsonl)?;
        write_durably(
            &self.root.join(&files.embeddings),
            &npy::encode_f32(self.vectors.vectors(), self.len(), self.dim()),
        )?;
        let lexical = match &self.lexical_dirty {
            Some(l) => l.to_bytes(),
            None => self.lexical()?.to_bytes(),
        };
        if let Some(name) = &files.lexical {
            write_durably(&self.root.join(name), &lexical)?;
        }
        match &self.hnsw_dirty {
            Some(graph) => graph.save(&graph_dir)?,
            None => {
                // Unchanged graph: a fresh copy under the new generation's name keeps each
                // generation self-contained.
                let old = self.root.join(&self.manifest.files.graph);
                copy_dir_durably(&old, &graph_dir)?;
            }
        }

        let mut manifest = self.manifest.clone();
        manifest.generation = generation;
        manifest.files = files;
        manifest.papers = self.papers.len();
        manifest.updated = now();
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| lib_err(&self.root, e.to_string()))?;
        let tmp = self.root.join("manifest.json.tmp");
        write_durably(&tmp, &bytes)?;
        let target = self.root.join(MANIFEST);
        fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
        sync_dir(&self.root);
        Ok(manifest)
    }

    /// Removes files of generations older than the previous one (kept for readers that opened
    /// the old manifest) and leftovers of killed writers. Failures here lose nothing.
    fn remove_stale_generations(&self) {
        let current = self.manifest.generation;
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(generation) = generation_of(&name) else {
                continue;
            };
            if generation + 1 < current || generation > current {
                let path = entry.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }

    /// Bytes on disk of the current generation and the manifest.
    pub fn size_on_disk(&self) -> u64 {
        let f = &self.manifest.files;
        let mut total = 0;
        for name in [MANIFEST, &f.papers, &f.embeddings]
            .into_iter()
            .chain(f.lexical.as_deref())
        {
            total += fs::metadata(self.root.join(name))
                .map(|m| m.len())
                .unwrap_or(0);
        }
        if let Ok(entries) = fs::read_dir(self.root.join(&f.graph)) {
            total += entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
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

/// Writes `bytes` to `path` and fsyncs it.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

fn copy_dir_durably(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let bytes = fs::read(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        write_durably(&to.join(entry.file_name()), &bytes)?;
    }
    sync_dir(to);
    Ok(())
}

/// The library's write lock: one writer at a time, released when dropped (or when the
/// process dies, since it is an OS file lock).
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Takes the lock; with `wait`, blocks until the other writer is done.
    pub fn acquire(root: &Path, wait: bool) -> Result<WriteLock> {
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let path = root.join(LOCK);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if wait {
            file.lock().map_err(|e| Error::io(&path, e))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::LibraryBusy {
                        path: root.to_path_buf(),
                    })
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(WriteLock { _file: file })
    }
}
