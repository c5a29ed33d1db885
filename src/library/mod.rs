//! The library directory: a versioned manifest, the papers, their embeddings (float32 `.npy`,
//! or float16 in a library created with `--vector-dtype f16`, row-aligned with the papers), the
//! lexical index and, when the library stores one, the HNSW graph, written atomically with the
//! manifest renamed into place last.
//!
//! Layout of `<library>/`:
//! - `manifest.json` — the commit point: format version, model, index parameters, counts, the
//!   base generation's files and the segments written since.
//! - The **base generation** (the last full write): `papers.<gen>.jsonl.zst` (the records in
//!   zstd frames, see [`blocks`]), `embeddings.<gen>.npy`, `keys.<gen>.bin`,
//!   `lexical.<gen>.bin` (the BM25 index, see [`crate::lexical`]) and, only when
//!   [`Manifest::store_graph`], `graph.<gen>/`.
//! - **Segments**, one per commit since: `papers.<gen>.jsonl` (the papers it added, then the
//!   updated records of papers seen again) and `embeddings.<gen>.npy` (the added papers'
//!   vectors). An ingest thus writes what it adds, not the whole library. Readers scan the
//!   vectors (or search a graph the process holds, and the rows it does not cover exactly),
//!   and index the segments' text lexically when they load; once the segments pass
//!   [`COMPACT_FRACTION`] of the base (or [`MAX_SEGMENTS`] of them), a commit writes a new base
//!   generation (inserting the new papers into a stored graph).
//! - Nothing else is papersim's but the reader's feedback log (`crate::feedback`): the one
//!   writer holds an OS lock on the directory itself ([`WriteLock`]), and other files in the
//!   directory are never touched.
//!
//! A writer writes generation g+1's files (a base or a segment) beside g's, fsyncs them, then
//! renames `manifest.json.tmp` over `manifest.json`. A crash before that rename leaves g in
//! force (the stray files are removed by the next writer); after it, g+1. Readers open whatever
//! the manifest names; the files of the previous manifest are kept until the commit after
//! next, so a reader that read the old manifest still finds its files.
//!
//! Owns the manifest and format ([`manifest`], [`format`], [`npy`]), the paper records
//! ([`record`]), the id and title maps, two-phase ingest ([`ingest`]), committing
//! ([`writer`]) under the merge policy ([`merge_policy`]), and searching its papers through
//! [`crate::index`]. Durable I/O and the write lock are [`crate::directory`]'s. Matrices
//! exported with their row names (`embed -o`) are [`export`]'s.
//!
//! May import: `crate::index`, `crate::digest`, `crate::paper`, `crate::directory`,
//! `crate::error`. Never `crate::encode`: the library stores vectors it is given and never
//! embeds (an ingest is planned here, embedded by the caller, and applied here), nor
//! `crate::rank`.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use crate::directory::WriteLock;
use crate::index::lexical::{paper_text, LexicalIndex};
pub use crate::index::VectorDtype;
use crate::index::{
    prefer_graph_in_memory, search_layered, ExactIndex, Hit, HnswIndex, HnswParams, VectorIndex,
};
use crate::paper::normalize_title;
use crate::{Error, Result};

mod blocks;
pub mod export;
pub mod format;
pub mod ingest;
mod keys;
mod lazy;
pub mod lookup;
pub mod manifest;
pub mod merge_policy;
pub mod npy;
pub mod record;
mod writer;

use format::{map_vectors, read_papers, read_vectors, Unverified};
pub use ingest::{
    IdentityNote, IdentityOutcome, IngestPlan, IngestReport, NewPaper, MAX_PAPERS_PER_TITLE,
};
use manifest::now;
use manifest::FileSum;
pub use manifest::{
    DigestRecord, Engine, GenerationFiles, Manifest, ModelInfo, Segment, FORMAT_VERSION, MANIFEST,
    READABLE_FORMAT_VERSIONS,
};
pub use merge_policy::{CommitShape, MergePolicy, COMPACT_FRACTION, MAX_SEGMENTS};
pub use record::{Paper, SeenIn};

/// How a search picks its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    /// By cost ([`prefer_graph_in_memory`]): the HNSW graph when the process already holds it
    /// and the library is large, else the exact scan of the mapped vectors, since loading the
    /// graph costs far more than the few scans a command makes.
    #[default]
    Auto,
    Exact,
    Hnsw,
}

/// An open library.
pub struct Library {
    root: PathBuf,
    manifest: Manifest,
    papers: Vec<Paper>,
    vectors: ExactIndex,
    /// Every id a paper is known by (its own and its aliases) → its row.
    by_id: HashMap<String, usize>,
    /// Normalised title → the rows of the papers with that title, in row order (two versions
    /// of a paper with different abstracts are kept apart under one title).
    by_title: HashMap<String, Vec<usize>>,
    /// Rows of the base generation: its graph and lexical files cover exactly these.
    base_rows: usize,
    /// Rows on disk (base and segments) as the manifest names them; later rows are new.
    committed_rows: usize,
    /// Committed rows whose records changed since the library was opened (new sightings).
    changed: BTreeSet<usize>,
    /// The base vectors' mapping while its CRC-32 is unchecked (a large library opened for
    /// reading, see [`format::VERIFY_ON_OPEN_BYTES`]): checked before anything is derived
    /// from it.
    unverified: Option<Unverified>,
    /// The HNSW graph of rows `0..graph.len()`, loaded on first use; rows after it are searched
    /// exactly until a full commit inserts them.
    graph: OnceLock<HnswIndex>,
    /// The lexical index of every row, loaded (or built) on first use and kept up to date.
    lexical: OnceLock<LexicalIndex>,
    /// The next commit must write a full generation (new model, vectors or index parameters).
    full_rewrite: bool,
    dirty: bool,
    /// When a commit folds the segments into a full generation.
    policy: MergePolicy,
    /// The records, read as asked for, of a library opened for reading; `papers`, `by_id` and
    /// `by_title` are then empty.
    lazy: Option<Box<lazy::LazyRecords>>,
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

/// Refuses to make a library in a directory that holds anything: a directory without
/// `manifest.json` is a new library only when it is empty, so that neither a folder of the
/// user's nor a library whose manifest was lost is ever written over. (A `lock` file, which
/// papersim wrote before it locked the directory itself, is not counted.)
fn refuse_foreign_directory(root: &Path) -> Result<()> {
    let entries = fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "lock")
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let library_files = names.iter().any(|n| manifest::generation_of(n).is_some());
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 3 {
        format!(" and {} more", names.len() - 3)
    } else {
        String::new()
    };
    Err(lib_err(
        root,
        if library_files {
            format!(
                "has no manifest.json but holds library files ({shown}{more}): its manifest was lost or removed. \
                 papersim will not write over it; restore manifest.json from a backup, or give another directory with --library"
            )
        } else {
            format!(
                "is not a papersim library (no manifest.json) and is not empty ({shown}{more}); \
                 papersim creates a library only in a new or empty directory, so give another one with --library"
            )
        },
    ))
}

/// Checks what a manifest promises before any file it names is read: a format this papersim
/// reads, file names inside the library, index parameters within their bounds, segments that
/// add no more papers than the library holds. Returns the rows its segments add.
fn check_manifest(root: &Path, manifest: &Manifest) -> Result<usize> {
    let manifest_path = root.join(MANIFEST);
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
    if manifest.generation == 0 {
        // A new library's first commit had not finished: the empty library it started.
        if manifest.papers != 0 || !manifest.segments.is_empty() {
            return Err(bad(
                "generation 0 (a new, empty library) cannot hold papers".into(),
            ));
        }
        return Ok(0);
    }
    if let Some(name) = manifest
        .file_names()
        .find(|n| n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.'))
    {
        return Err(bad(format!("file name `{name}` escapes the library")));
    }
    // Every search would use these: refused here, with the way to mend them.
    if let Some(o) = manifest.index.out_of_bounds() {
        return Err(bad(format!(
            "{o}; set it with `papersim index rebuild {} N`",
            o.option
        )));
    }
    manifest
        .segments
        .iter()
        .try_fold(0usize, |sum, s| sum.checked_add(s.added))
        .filter(|&rows| rows <= manifest.papers)
        .ok_or_else(|| {
            bad(format!(
                "its segments add more papers than the library's {}",
                manifest.papers
            ))
        })
}

/// Bytes on disk of the files `manifest` names in `root`, and the manifest itself.
fn size_on_disk(root: &Path, manifest: &Manifest) -> u64 {
    let mut total = 0;
    for name in std::iter::once(MANIFEST).chain(manifest.file_names()) {
        let path = root.join(name);
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

/// The base generation's vectors, mapped (see [`format::map_vectors`]), and the mapping if
/// its checksum is still to be checked.
fn open_base_vectors(
    root: &Path,
    manifest: &Manifest,
    base_rows: usize,
) -> Result<(ExactIndex, Option<Unverified>)> {
    let name = &manifest.files.embeddings;
    let path = root.join(name);
    let dim = manifest.model.dim;
    let mapped = map_vectors(
        &path,
        manifest.checksums.get(name),
        base_rows,
        dim,
        manifest.vector_dtype,
        "the library has",
    )?;
    let vectors =
        ExactIndex::from_shared_vectors(dim, mapped.rows).map_err(|e| Error::Library {
            path,
            reason: e.to_string(),
        })?;
    Ok((vectors, mapped.unverified))
}

/// A segment's records (its added papers, then its updated ones; their count checked) and the
/// vectors of the papers it added, with the files they came from.
#[allow(clippy::type_complexity)]
fn read_segment(
    root: &Path,
    manifest: &Manifest,
    segment: &Segment,
) -> Result<(PathBuf, Vec<Paper>, Option<(PathBuf, Vec<f32>)>)> {
    let sum = |name: &str| manifest.checksums.get(name);
    let path = root.join(&segment.papers);
    let records = read_papers(&path, sum(&segment.papers))?;
    if records.len() != segment.added + segment.updated {
        return Err(lib_err(
            &path,
            format!(
                "holds {} records, but the manifest says {} added and {} updated",
                records.len(),
                segment.added,
                segment.updated
            ),
        ));
    }
    let vectors = match &segment.embeddings {
        Some(name) => {
            let vectors_path = root.join(name);
            let data = read_vectors(
                &vectors_path,
                sum(name),
                segment.added,
                manifest.model.dim,
                manifest.vector_dtype,
                "its segment adds",
            )?;
            Some((vectors_path, data))
        }
        None if segment.added == 0 => None,
        None => {
            return Err(lib_err(
                &path,
                format!("adds {} papers but names no embeddings file", segment.added),
            ))
        }
    };
    Ok((path, records, vectors))
}

/// Appends a segment's vectors (read from `path`) to the library's.
fn add_segment_vectors(vectors: &mut ExactIndex, path: PathBuf, data: &[f32]) -> Result<()> {
    vectors.add(data).map_err(|e| Error::Library {
        path,
        reason: e.to_string(),
    })
}

/// What a library is, read from its manifest alone (for `info`): its cost does not grow with
/// the papers it holds.
#[derive(Debug, Clone)]
pub struct Summary {
    pub root: PathBuf,
    pub manifest: Manifest,
    /// Bytes on disk of the files the manifest names, and the manifest itself.
    pub size_on_disk: u64,
}

impl Library {
    /// Reads and checks the manifest of the library in `root`, and nothing else: the papers,
    /// vectors and indexes are not read (nor checked; `open` does that).
    pub fn summary(root: &Path) -> Result<Summary> {
        let manifest = Manifest::read(root)?;
        check_manifest(root, &manifest)?;
        Ok(Summary {
            root: root.to_path_buf(),
            size_on_disk: size_on_disk(root, &manifest),
            manifest,
        })
    }

    /// Whether `root` holds a library.
    pub fn exists(root: &Path) -> bool {
        root.join(MANIFEST).is_file()
    }

    /// Takes the write lock of `root` (waiting for another writer with `wait`) and returns the
    /// library as it is under the lock: `opened`, read before locking so that the model could
    /// be checked before anything was written, if no other writer committed since; else the
    /// library read again. `None` when there is no library yet.
    pub fn lock(
        root: &Path,
        wait: bool,
        opened: Option<Library>,
    ) -> Result<(WriteLock, Option<Library>)> {
        let lock = WriteLock::acquire(root, wait)?;
        if !Self::exists(root) {
            refuse_foreign_directory(root)?;
            return Ok((lock, opened));
        }
        let current = Manifest::read(root).ok();
        // A library opened for reading is opened again whole: writing needs every record.
        let unchanged = matches!((&opened, &current), (Some(l), Some(m)) if l.manifest() == m && l.lazy.is_none());
        let lib = if unchanged {
            opened
        } else {
            Some(Library::open(root)?)
        };
        Ok((lock, lib))
    }

    /// Opens an existing library for reading.
    pub fn open(root: &Path) -> Result<Library> {
        Self::open_to_reindex(root, |params| params)
    }

    /// Opens a library whose index parameters `index rebuild` is about to set: `change`
    /// applies to the manifest's before they are checked, so that a manifest holding
    /// parameters out of bounds, which [`Library::open`] refuses, can be mended.
    pub fn open_to_reindex(
        root: &Path,
        change: impl Fn(HnswParams) -> HnswParams,
    ) -> Result<Library> {
        Self::retrying(root, || Self::open_once(root, &change))
    }

    /// Runs `open`, again when a file the manifest named vanished: a writer may replace the
    /// generation between our reading the manifest and its files. The files of the previous
    /// manifest are kept, so one retry should do; three are allowed.
    fn retrying(root: &Path, open: impl Fn() -> Result<Library>) -> Result<Library> {
        let mut last = None;
        for _ in 0..3 {
            match open() {
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

    /// [`Library::open_for_reading`] of a library with a keys file.
    fn open_lazily(root: &Path) -> Result<Library> {
        Self::retrying(root, || {
            let manifest = Manifest::read(root)?;
            let Some(keys) = manifest
                .files
                .keys
                .clone()
                .filter(|_| manifest.generation > 0)
            else {
                return Self::open_whole(root, manifest);
            };
            let segment_rows = check_manifest(root, &manifest)?;
            let base_rows = manifest.papers - segment_rows;
            let sum = |name: &str| manifest.checksums.get(name);
            let mut records = lazy::LazyRecords::open(
                &root.join(&manifest.files.papers),
                sum(&manifest.files.papers),
                &root.join(&keys),
                sum(&keys),
                base_rows,
            )?;
            let (mut vectors, unverified) = open_base_vectors(root, &manifest, base_rows)?;
            for segment in &manifest.segments {
                let (path, segment_records, data) = read_segment(root, &manifest, segment)?;
                records.add_segment(&path, segment_records, segment.added)?;
                if let Some((path, data)) = data {
                    add_segment_vectors(&mut vectors, path, &data)?;
                }
            }
            let mut lib = Library::opened(root, manifest, vectors, base_rows, unverified);
            lib.lazy = Some(Box::new(records));
            Ok(lib)
        })
    }

    fn open_once(root: &Path, change: &dyn Fn(HnswParams) -> HnswParams) -> Result<Library> {
        let mut manifest = Manifest::read(root)?;
        manifest.index = change(manifest.index);
        Self::open_whole(root, manifest)
    }

    /// Opens the library that `manifest` (just read) describes, reading every record.
    fn open_whole(root: &Path, manifest: Manifest) -> Result<Library> {
        let segment_rows = check_manifest(root, &manifest)?;
        if manifest.generation == 0 {
            // A new library's first commit had not finished: the empty library it started.
            let mut lib = Library::create(root, manifest.model.clone(), manifest.index)?;
            lib.vectors.convert(manifest.vector_dtype);
            lib.manifest = manifest;
            lib.dirty = false;
            return Ok(lib);
        }
        let base_rows = manifest.papers - segment_rows;
        let checksums = manifest.checksums.clone();
        let sum = |name: &str| checksums.get(name);

        let papers_path = root.join(&manifest.files.papers);
        let mut papers = read_papers(&papers_path, sum(&manifest.files.papers))?;
        if papers.len() != base_rows {
            return Err(Error::Library {
                path: papers_path,
                reason: format!(
                    "holds {} papers, but the manifest says {base_rows}",
                    papers.len()
                ),
            });
        }
        let (mut vectors, unverified) = open_base_vectors(root, &manifest, base_rows)?;
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
            let (path, records, data) = read_segment(root, &manifest, segment)?;
            let seg_err = |reason: String| Error::Library {
                path: path.clone(),
                reason,
            };
            let mut records = records.into_iter();
            for p in records.by_ref().take(segment.added) {
                if by_id.insert(p.id.clone(), papers.len()).is_some() {
                    return Err(seg_err(format!("adds paper {} a second time", p.id)));
                }
                papers.push(p);
            }
            for p in records {
                // A paper that took an arXiv id in place of its title-derived one is found
                // by the old id, now its alias.
                let row = *std::iter::once(&p.id)
                    .chain(&p.aliases)
                    .find_map(|id| by_id.get(id))
                    .ok_or_else(|| {
                        seg_err(format!("updates paper {}, which is not stored", p.id))
                    })?;
                if let Some(other) = by_id.insert(p.id.clone(), row).filter(|&o| o != row) {
                    return Err(seg_err(format!(
                        "renames paper {} to {}, which names paper {}",
                        papers[row].id, p.id, papers[other].id
                    )));
                }
                papers[row] = p;
            }
            if let Some((path, data)) = data {
                add_segment_vectors(&mut vectors, path, &data)?;
            }
        }
        for (row, p) in papers.iter().enumerate() {
            for alias in &p.aliases {
                // Papers are found by their aliases: one id naming two papers is damage.
                // (An old id of the paper itself, from before it took an arXiv id, is fine.)
                if let Some(other) = by_id.insert(alias.clone(), row).filter(|&o| o != row) {
                    return Err(lib_err(
                        root,
                        format!(
                            "is damaged: id {alias} names paper {} and is also an alias of paper {}",
                            papers[other].id, p.id
                        ),
                    ));
                }
            }
        }
        let mut by_title: HashMap<String, Vec<usize>> = HashMap::with_capacity(papers.len());
        for (row, p) in papers.iter().enumerate() {
            by_title
                .entry(normalize_title(&p.title))
                .or_default()
                .push(row);
        }
        let mut lib = Library::opened(root, manifest, vectors, base_rows, unverified);
        lib.papers = papers;
        lib.by_id = by_id;
        lib.by_title = by_title;
        Ok(lib)
    }

    /// A library as opened from `manifest`, with its vectors and no records yet (the caller
    /// adds them, whole or lazily).
    fn opened(
        root: &Path,
        manifest: Manifest,
        vectors: ExactIndex,
        base_rows: usize,
        unverified: Option<Unverified>,
    ) -> Library {
        Library {
            root: root.to_path_buf(),
            committed_rows: manifest.papers,
            manifest,
            papers: Vec::new(),
            vectors,
            by_id: HashMap::new(),
            by_title: HashMap::new(),
            base_rows,
            changed: BTreeSet::new(),
            unverified,
            graph: OnceLock::new(),
            lexical: OnceLock::new(),
            full_rewrite: false,
            dirty: false,
            policy: MergePolicy::default(),
            lazy: None,
        }
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
                store_graph: false,
                vector_dtype: VectorDtype::F32,
                papers: 0,
                files: GenerationFiles {
                    papers: String::new(),
                    embeddings: String::new(),
                    graph: None,
                    lexical: None,
                    keys: None,
                },
                segments: Vec::new(),
                digests: Vec::new(),
                updated: now(),
                checksums: Default::default(),
                engine: None,
            },
            papers: Vec::new(),
            vectors: ExactIndex::new(dim),
            by_id: HashMap::new(),
            by_title: HashMap::new(),
            base_rows: 0,
            committed_rows: 0,
            changed: BTreeSet::new(),
            unverified: None,
            graph: OnceLock::new(),
            lexical: OnceLock::new(),
            full_rewrite: true,
            dirty: true,
            policy: MergePolicy::default(),
            lazy: None,
        })
    }

    /// A library held in memory only, of `papers` and their `vectors` (row-major, unit norm)
    /// under `manifest`: the papers a remote engine returned for one command (see
    /// `crate::store`), ranked here as any library is. Every row counts as committed, so that
    /// an ingest planned on it reports what it changed ([`Library::touched_rows`]); it is never
    /// committed. A paper whose id (or alias) an earlier one holds is skipped.
    pub fn in_memory(
        root: &Path,
        manifest: Manifest,
        papers: Vec<Paper>,
        vectors: &[f32],
    ) -> Result<Library> {
        let dim = manifest.model.dim;
        if vectors.len() != papers.len() * dim {
            return Err(lib_err(
                root,
                format!(
                    "{} papers came with {} vector values (dimension {dim})",
                    papers.len(),
                    vectors.len()
                ),
            ));
        }
        crate::index::validate_vectors(vectors, dim, 0)?;
        let mut lib = Library::create(root, manifest.model.clone(), manifest.index)?;
        let mut kept = Vec::with_capacity(vectors.len());
        for (i, paper) in papers.into_iter().enumerate() {
            let known = std::iter::once(&paper.id)
                .chain(&paper.aliases)
                .any(|id| lib.by_id.contains_key(id));
            if !known {
                lib.push_paper(paper);
                kept.extend_from_slice(&vectors[i * dim..(i + 1) * dim]);
            }
        }
        lib.vectors.add(&kept)?;
        lib.manifest = Manifest {
            papers: lib.papers.len(),
            generation: 0,
            ..manifest
        };
        lib.base_rows = lib.papers.len();
        lib.committed_rows = lib.papers.len();
        lib.full_rewrite = false;
        lib.dirty = false;
        Ok(lib)
    }

    /// Rows added or changed since the library was opened (or made [`Library::in_memory`]),
    /// in row order: what an ingest must write.
    pub fn touched_rows(&self) -> Vec<usize> {
        self.changed
            .iter()
            .copied()
            .chain(self.committed_rows..self.len())
            .collect()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Every paper, in row order. A library opened for reading parses them all here (once).
    pub fn papers(&self) -> Result<&[Paper]> {
        match &self.lazy {
            Some(lazy) => lazy.all(),
            None => Ok(&self.papers),
        }
    }
    /// Keeps up to `bytes` of decompressed records in memory for later reads (a library
    /// opened for reading decompresses a 64 KiB frame to read one record): for a long-lived
    /// reader such as the server, which reads the records of every answer. Nothing to do for
    /// a library whose records are all in memory.
    pub fn set_record_cache(&self, bytes: usize) {
        if let Some(lazy) = &self.lazy {
            lazy.set_record_cache(bytes);
        }
    }
    /// The paper of row `row`; a library opened for reading parses its record here.
    ///
    /// # Panics
    /// If `row >= len()`.
    pub fn paper(&self, row: usize) -> Result<Cow<'_, Paper>> {
        match &self.lazy {
            Some(lazy) => lazy.paper(row),
            None => Ok(Cow::Borrowed(&self.papers[row])),
        }
    }
    pub fn len(&self) -> usize {
        match &self.lazy {
            Some(lazy) => lazy.len(),
            None => self.papers.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn dim(&self) -> usize {
        self.manifest.model.dim
    }
    /// The stored, unit-norm vector of row `row`: borrowed from an f32 library, converted
    /// from an f16 one.
    pub fn vector(&self, row: usize) -> Cow<'_, [f32]> {
        self.vectors.row(row)
    }
    /// How the library stores its vectors.
    pub fn vector_dtype(&self) -> VectorDtype {
        self.manifest.vector_dtype
    }
    /// Sets how a new library stores its vectors. A library that holds papers keeps its dtype
    /// here (a clear error naming it); [`Library::convert_vectors`] converts one.
    pub fn set_vector_dtype(&mut self, dtype: VectorDtype) -> Result<()> {
        if dtype == self.vector_dtype() {
            return Ok(());
        }
        if !self.is_empty() {
            return Err(lib_err(
                &self.root,
                format!(
                    "stores its vectors as {}; `--vector-dtype {dtype}` applies when a library is created. \
                     Convert it with `papersim index rebuild --vector-dtype {dtype}`, or leave out --vector-dtype",
                    self.vector_dtype()
                ),
            ));
        }
        self.writable("change its vector dtype")?;
        self.vectors.convert(dtype);
        self.manifest.vector_dtype = dtype;
        self.full_rewrite = true;
        self.dirty = true;
        Ok(())
    }
    /// The row of the paper with this id or alias.
    pub fn row_of_id(&self, id: &str) -> Result<Option<usize>> {
        match &self.lazy {
            Some(lazy) => lazy.row_of_id(id),
            None => Ok(self.by_id.get(id).copied()),
        }
    }
    /// The row of the first paper with this title (compared normalised).
    pub fn row_of_title(&self, title: &str) -> Result<Option<usize>> {
        Ok(self.rows_of_title(title)?.first().copied())
    }
    /// The rows of every paper with this title (compared normalised), in row order: more than
    /// one when versions of a paper with different abstracts were kept apart.
    pub fn rows_of_title(&self, title: &str) -> Result<Vec<usize>> {
        let title = normalize_title(title);
        match &self.lazy {
            Some(lazy) => lazy.rows_of_title(&title),
            None => Ok(self.by_title.get(&title).cloned().unwrap_or_default()),
        }
    }

    /// Refuses vectors of a model other than the one the library was embedded with.
    pub fn check_model(&self, model: &ModelInfo) -> Result<()> {
        let m = &self.manifest.model;
        if m.fingerprint != model.fingerprint || m.dim != model.dim {
            return Err(lib_err(
                &self.root,
                format!(
                    "was embedded with model `{}` (dimension {}, fingerprint {}), but the model in use is `{}` (dimension {}, fingerprint {}). \
                     Use `--model {}`, or re-embed the library with `papersim index rebuild --reembed --model {}`",
                    m.id,
                    m.dim,
                    &m.fingerprint[..12.min(m.fingerprint.len())],
                    model.id,
                    model.dim,
                    &model.fingerprint[..12.min(model.fingerprint.len())],
                    m.id,
                    model.id
                ),
            ));
        }
        Ok(())
    }

    /// Replaces the recorded fingerprint of the library's model with `fingerprint`, written by
    /// the next commit — even one that adds nothing else, so that one `ingest` with the model
    /// upgrades the library (an `--embeddings` import, which loads no model, needs the current
    /// fingerprint recorded). For a caller that has established that the model in use is the
    /// recorded one under an older fingerprint scheme (the library cannot tell: it knows
    /// nothing of models).
    pub fn record_model_fingerprint(&mut self, fingerprint: String) {
        if self.manifest.model.fingerprint != fingerprint {
            self.manifest.model.fingerprint = fingerprint;
            self.dirty = true;
        }
    }

    /// The HNSW graph to start from: the base generation's as stored, or, when the library
    /// stores none, one built here from every vector (an empty one for a new library).
    fn load_graph(&self) -> Result<HnswIndex> {
        let stored = match &self.manifest.files.graph {
            Some(name) if self.manifest.generation > 0 => name,
            _ => return self.build_graph(self.manifest.index),
        };
        let path = self.root.join(stored);
        let loaded = HnswIndex::load(&path, self.manifest.index).map_err(|e| match e {
            // The graph is derived data: say how to get it back.
            Error::Index { path, reason } => Error::Index {
                path,
                reason: format!("{reason}; {}", format::REBUILD),
            },
            other => other,
        })?;
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

    /// A graph of every vector, built in memory with `params`.
    fn build_graph(&self, params: HnswParams) -> Result<HnswIndex> {
        let mut graph = HnswIndex::new(self.dim(), params, self.len().max(1024))?;
        if !self.is_empty() {
            graph.add(&self.vectors.vectors())?;
        }
        Ok(graph)
    }

    /// Whether full commits store the HNSW graph (see [`Manifest::store_graph`]).
    pub fn stores_graph(&self) -> bool {
        self.manifest.store_graph
    }

    /// The HNSW graph, loaded from disk (or built, see [`Library::load_graph`]) on first use.
    fn hnsw(&self) -> Result<&HnswIndex> {
        if let Some(g) = self.graph.get() {
            return Ok(g);
        }
        let loaded = self.load_graph()?;
        Ok(self.graph.get_or_init(|| loaded))
    }

    /// Loads the HNSW graph now (or builds it, for a library that does not store one), so that
    /// [`Library::search`] in [`SearchMode::Auto`] uses it from then on: for a long-lived
    /// process (`papersim serve`) whose many searches repay the load.
    pub fn hold_graph(&self) -> Result<()> {
        self.hnsw().map(HnswIndex::prepare_search)
    }

    /// The k nearest papers to a unit-norm query.
    pub fn search(&self, query: &[f32], k: usize, mode: SearchMode) -> Result<Vec<Hit>> {
        let use_hnsw = match mode {
            SearchMode::Exact => false,
            SearchMode::Hnsw => true,
            SearchMode::Auto => self.graph.get().is_some() && prefer_graph_in_memory(self.len()),
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
        let texts = (index.len()..self.len())
            .map(|r| self.lexical_text(r))
            .collect::<Result<Vec<_>>>()?;
        index.add(texts);
        Ok(self.lexical.get_or_init(|| index))
    }

    /// The text the lexical index holds for row `row`.
    pub fn lexical_text(&self, row: usize) -> Result<String> {
        let p = self.paper(row)?;
        Ok(paper_text(&p.title, &p.abstract_text))
    }

    /// The base generation's lexical index, which covers its papers.
    fn load_lexical(&self) -> Result<LexicalIndex> {
        let name = match &self.manifest.files.lexical {
            Some(name) if self.manifest.generation > 0 => name,
            _ => {
                let texts = (0..self.base_rows)
                    .map(|r| self.lexical_text(r))
                    .collect::<Result<Vec<_>>>()?;
                return Ok(LexicalIndex::build(texts));
            }
        };
        let path = self.root.join(name);
        let bytes = format::map_checked(&path, self.manifest.checksums.get(name), format::REBUILD)?;
        // Used where it lies: its CRC-32 was checked above when small; its structure is checked
        // as far as opening needs, its postings as queries read them.
        let index = LexicalIndex::open(&path, bytes, false).map_err(|reason| Error::Library {
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

    /// What the merge policy looks at, were `extra` more papers added.
    fn commit_shape(&self, extra: usize) -> CommitShape {
        CommitShape {
            base_rows: self.base_rows,
            tail_rows: self.len() + extra - self.base_rows,
            segments: self.manifest.segments.len(),
            first_commit: self.manifest.generation == 0,
            rewrite: self.full_rewrite,
        }
    }

    /// Whether the next commit writes a full generation rather than a segment, once `extra`
    /// more papers are added.
    fn commit_is_full(&self, extra: usize) -> bool {
        self.policy.full_commit(self.commit_shape(extra))
    }

    /// Checks the CRC-32 of base vectors that were opened unchecked, before anything is derived
    /// from them (a full generation, a graph): damage is refused, never sealed under a fresh
    /// checksum.
    pub(crate) fn verify_vectors(&mut self) -> Result<()> {
        // Forgotten only once it passed: a failed check is made again by the next writer call.
        if let Some(unverified) = &self.unverified {
            unverified.verify()?;
        }
        self.unverified = None;
        Ok(())
    }

    /// Rebuilds the derived indexes from the stored papers and vectors, with new graph
    /// parameters, and sets whether full commits store the graph: the graph is built now only
    /// when it is to be stored (a process that wants one without storing it builds it when it
    /// first searches).
    pub fn rebuild_index(&mut self, params: HnswParams, store_graph: bool) -> Result<()> {
        self.writable("rebuild its index")?;
        self.verify_vectors()?;
        self.manifest.index = params;
        self.manifest.store_graph = store_graph;
        self.graph = OnceLock::new();
        if store_graph {
            let graph = self.build_graph(params)?;
            let _ = self.graph.set(graph);
        }
        self.lexical = OnceLock::new();
        let texts = (0..self.len())
            .map(|r| self.lexical_text(r))
            .collect::<Result<Vec<_>>>()?;
        let _ = self.lexical.set(LexicalIndex::build(texts));
        self.full_rewrite = true;
        self.dirty = true;
        Ok(())
    }

    /// Stores every vector as `dtype` from the next commit on (a full generation: f32 to f16
    /// rounds each value to the nearest f16, f16 to f32 is exact), and rebuilds the graph from
    /// the converted vectors with `params`.
    pub fn convert_vectors(
        &mut self,
        dtype: VectorDtype,
        params: HnswParams,
        store_graph: bool,
    ) -> Result<()> {
        self.writable("convert its vectors")?;
        self.verify_vectors()?;
        self.vectors.convert(dtype);
        if self.manifest.vector_dtype != dtype {
            self.manifest.vector_dtype = dtype;
            self.dirty = true;
        }
        self.rebuild_index(params, store_graph)
    }

    /// Whether there are changes to write.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Bytes on disk of the files the manifest names, and the manifest itself.
    pub fn size_on_disk(&self) -> u64 {
        size_on_disk(&self.root, &self.manifest)
    }
}
