//! Approximate search with an HNSW graph: the one adapter module that imports `hnsw_rs`
//! (with its child [`walk`], which searches a flat copy of the graph's links).
//!
//! Quirks of `hnsw_rs` 0.3.5 handled here, so that nothing else needs to know them:
//!
//! - A reloaded `Hnsw` borrows the `HnswIo` it was loaded from; [`HnswIndex`] owns both in a
//!   `self_cell`, so one type serves built and reloaded graphs.
//! - `DistDot` asserts `dot <= 1` and panics on rounding when a query equals a stored vector;
//!   we use our own `ClampedDot`. `DistCosine` returns 0 for a zero vector; zero and
//!   non-finite vectors are rejected at the boundary by [`validate_vectors`].
//! - A dump never overwrites files in use and may pick a random basename instead; [`HnswIndex::save`]
//!   therefore only writes into a fresh, empty directory and records the basename actually
//!   written in `index.json`.
//! - The loader asserts, panics and even calls `process::exit` on damaged files, and trusts
//!   lengths it reads; [`HnswIndex::load`] therefore checks each file's size and SHA-256 against
//!   `index.json` before `hnsw_rs` sees it, and catches any panic that still escapes.
//! - Dumps only work with 16 layers (`NB_LAYER_MAX`); `max_nb_connection` must fit in a `u8`.

use std::fs::{self, File};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{best_first, dot, normalized_query, validate_vectors, Hit, VectorIndex};
use walk::Links;

mod walk;
use crate::directory::{sync_dir, write_new};
use crate::{Error, Result};

/// HNSW construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Maximum connections per node and layer (the base layer keeps twice this). Default 16.
    /// Higher gives better recall and robustness on hard data, at the cost of memory, build
    /// time and per-query time. Allowed range [`M_RANGE`].
    pub m: usize,
    /// Candidate-list size while inserting. Default 200. Higher builds a better graph (higher
    /// recall at any `ef_search`) but makes every insertion slower; it does not affect memory.
    /// Fixed when the graph is built. At most [`MAX_EF_CONSTRUCTION`].
    pub ef_construction: usize,
    /// Candidate-list size while searching (raised to k when k is larger). Default 128: on
    /// 100,000 realistic vectors (`benches/index.rs`) it gives recall@10 0.99 against exact
    /// search for new papers' vectors in under 1 ms, where 64 gives 0.96. Higher gives better
    /// recall at proportionally slower queries; can change between searches. At most
    /// [`MAX_EF_SEARCH`].
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 128,
        }
    }
}

/// Bounds of [`HnswParams::m`]: hnsw_rs stores a node's connection count in a byte (and
/// keeps twice `m` on the base layer), and fewer than 2 connections cannot form a graph.
pub const M_RANGE: std::ops::RangeInclusive<usize> = 2..=255;
/// Largest [`HnswParams::ef_construction`]: every insertion explores this many candidates, so
/// the build time grows in proportion, while recall stops improving a few hundred in.
pub const MAX_EF_CONSTRUCTION: usize = 10_000;
/// Largest [`HnswParams::ef_search`]: hnsw_rs allocates its candidate lists in proportion to
/// it on every search (10^12 asks for terabytes), and recall is 0.99 at the default 128;
/// `--exact` is the way to exact results.
pub const MAX_EF_SEARCH: usize = 10_000;

/// One HNSW parameter outside its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfBounds {
    /// The parameter as the manifest names it (`ef_search`).
    pub name: &'static str,
    /// The `papersim index rebuild` option that sets it (`--ef-search`).
    pub option: &'static str,
    pub value: usize,
    pub range: std::ops::RangeInclusive<usize>,
    /// Why the bound is there.
    pub why: &'static str,
}

impl std::fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HNSW {} must be between {} and {}, got {}: {}",
            self.name,
            self.range.start(),
            self.range.end(),
            self.value,
            self.why
        )
    }
}

impl HnswParams {
    /// The first parameter outside its bounds ([`M_RANGE`], [`MAX_EF_CONSTRUCTION`],
    /// [`MAX_EF_SEARCH`]), if any.
    pub fn out_of_bounds(&self) -> Option<OutOfBounds> {
        let checks = [
            (
                "m",
                "--m",
                self.m,
                M_RANGE,
                "hnsw_rs keeps a node's connections in a byte, and each one costs memory on \
                 every node",
            ),
            (
                "ef_construction",
                "--ef-construction",
                self.ef_construction,
                1..=MAX_EF_CONSTRUCTION,
                "each insertion explores that many candidates, so the build slows in \
                 proportion, and recall stops improving long before",
            ),
            (
                "ef_search",
                "--ef-search",
                self.ef_search,
                1..=MAX_EF_SEARCH,
                "each search allocates memory in proportion to it and recall gains nothing \
                 beyond; use --exact for exact results",
            ),
        ];
        checks
            .into_iter()
            .find(|(_, _, value, range, _)| !range.contains(value))
            .map(|(name, option, value, range, why)| OutOfBounds {
                name,
                option,
                value,
                range,
                why,
            })
    }

    /// Refuses parameters outside their bounds ([`HnswParams::out_of_bounds`]).
    pub fn validate(&self) -> Result<()> {
        match self.out_of_bounds() {
            Some(o) => Err(Error::InvalidInput(o.to_string())),
            None => Ok(()),
        }
    }
}

/// Cosine distance for unit vectors, `1 - dot` clamped to `[0, 2]`, so rounding (a query equal
/// to a stored vector gives a dot slightly above 1) never yields a negative distance or a panic.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ClampedDot;

impl Distance<f32> for ClampedDot {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).clamp(0.0, 2.0)
    }
}

/// Number of layers; `hnsw_rs` refuses to dump any other value.
const MAX_LAYER: usize = 16;
/// Basename asked of `hnsw_rs` for the graph files.
const BASENAME: &str = "hnsw";
/// The description file written next to the graph files.
pub const META_FILE: &str = "index.json";
/// Version of the `index.json` layout.
const FORMAT: u32 = 1;
/// Batches at least this large are inserted with rayon.
const PARALLEL_INSERT: usize = 64;

type Graph<'io> = Hnsw<'io, f32, ClampedDot>;

/// A graph, and the flat copy of its links that searches walk ([`walk`]), made on the first
/// search after a change.
struct Held<'io> {
    graph: Graph<'io>,
    links: OnceLock<Option<Links<'io>>>,
}

impl<'io> Held<'io> {
    fn new(graph: Graph<'io>) -> Held<'io> {
        Held {
            graph,
            links: OnceLock::new(),
        }
    }

    /// The flat links of the graph's `len` points, made now if not yet: `None` if its
    /// points are not rows `0..len` ([`Links::of`]).
    fn links(&self) -> Option<&Links<'io>> {
        let len = self.graph.get_nb_point();
        self.links
            .get_or_init(|| Links::of(&self.graph, len))
            .as_ref()
    }
}

self_cell::self_cell!(
    /// A graph together with what it borrows: nothing for a graph built in memory, its `HnswIo`
    /// for a reloaded one.
    struct GraphCell {
        owner: Option<HnswIo>,
        #[not_covariant]
        dependent: Held,
    }
);

/// One file of a saved graph, as recorded in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileMeta {
    name: String,
    bytes: u64,
    sha256: String,
}

/// Contents of `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    format: u32,
    /// Basename `hnsw_rs` actually wrote (`None` for an empty index, which has no graph files).
    basename: Option<String>,
    dim: usize,
    len: usize,
    /// Parameters the graph was built with.
    params: HnswParams,
    /// Type name of the distance, which `hnsw_rs` checks on reload.
    distance: String,
    files: Vec<FileMeta>,
}

/// An approximate nearest-neighbour index: an HNSW graph over unit vectors, with data id = row.
pub struct HnswIndex {
    dim: usize,
    params: HnswParams,
    len: usize,
    graph: GraphCell,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("dim", &self.dim)
            .field("params", &self.params)
            .field("len", &self.len)
            .field("reloaded", &self.graph.borrow_owner().is_some())
            .finish()
    }
}

impl HnswIndex {
    /// An empty index of `dim`-dimensional vectors. `capacity_hint` (expected row count) only
    /// sizes the layer tables up front.
    pub fn new(dim: usize, params: HnswParams, capacity_hint: usize) -> Result<Self> {
        params.validate()?;
        if dim == 0 {
            return Err(Error::InvalidInput(
                "HNSW index dimension must be at least 1".into(),
            ));
        }
        let graph = GraphCell::new(None, |_| {
            Held::new(Hnsw::new(
                params.m,
                capacity_hint,
                MAX_LAYER,
                params.ef_construction,
                ClampedDot,
            ))
        });
        Ok(HnswIndex {
            dim,
            params,
            len: 0,
            graph,
        })
    }

    /// Makes the flat copy of the graph's links that searches walk (a few bytes a link), so
    /// that the first search does not: for a process that holds the graph for many searches.
    pub fn prepare_search(&self) {
        self.graph.with_dependent(|_, held| {
            held.links();
        });
    }

    /// Parameters in use (`m` and `ef_construction` are those the graph was built with).
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Changes the search candidate-list size for later searches.
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.params.ef_search = ef_search.clamp(1, MAX_EF_SEARCH);
    }

    /// Writes the index into `dir`, which it creates and which must not exist (not even as a
    /// symlink, so that nothing is written outside the place asked for): the graph files
    /// (`hnsw.hnsw.graph`, `hnsw.hnsw.data`) and `index.json` describing them, each fsynced,
    /// then the directory itself. Making the directory visible atomically (rename, or a
    /// manifest that names it) is the caller's job.
    pub fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => index_err(
                dir,
                "already exists; an index is saved only into a directory it creates",
            ),
            _ => Error::io(dir, e),
        })?;
        let (basename, files) = if self.len == 0 {
            // hnsw_rs cannot dump a graph without an entry point; index.json alone describes it.
            (None, Vec::new())
        } else {
            let dumped = catch_unwind(AssertUnwindSafe(|| {
                self.graph
                    .with_dependent(|_, held| held.graph.file_dump(dir, BASENAME))
            }));
            let basename = match dumped {
                Ok(Ok(name)) => name,
                Ok(Err(e)) => return Err(index_err(dir, format!("writing HNSW graph: {e:#}"))),
                Err(panic) => {
                    return Err(index_err(
                        dir,
                        format!("writing HNSW graph panicked: {}", panic_message(&panic)),
                    ))
                }
            };
            let mut files = Vec::new();
            for name in graph_file_names(&basename) {
                files.push(seal_file(&dir.join(&name), name)?);
            }
            (Some(basename), files)
        };
        let meta = Meta {
            format: FORMAT,
            basename,
            dim: self.dim,
            len: self.len,
            params: self.params,
            distance: std::any::type_name::<ClampedDot>().to_string(),
            files,
        };
        let meta_path = dir.join(META_FILE);
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| index_err(&meta_path, format!("serialising: {e}")))?;
        write_new(&meta_path, &json)?;
        sync_dir(dir)
    }

    /// Reloads an index written by [`save`](Self::save). `m` and `ef_construction` come from the
    /// saved graph; `params.ef_search` is used for searching. Missing, truncated or corrupt
    /// files give [`Error::Index`] naming the file.
    pub fn load(dir: &Path, params: HnswParams) -> Result<Self> {
        if !dir.is_dir() {
            return Err(index_err(dir, "index directory not found"));
        }
        let meta_path = dir.join(META_FILE);
        let meta = read_meta(&meta_path)?;
        let built = HnswParams {
            ef_search: params.ef_search,
            ..meta.params
        };
        let bad_meta = |reason: String| index_err(&meta_path, reason);
        built.validate().map_err(|e| bad_meta(e.to_string()))?;
        if meta.dim == 0 {
            return Err(bad_meta("dimension 0".into()));
        }
        let distance = std::any::type_name::<ClampedDot>();
        if meta.distance != distance {
            return Err(bad_meta(format!(
                "graph was built with distance {}, this papersim uses {distance}",
                meta.distance
            )));
        }
        let Some(basename) = meta.basename.as_deref() else {
            if meta.len != 0 || !meta.files.is_empty() {
                return Err(bad_meta("no graph basename for a non-empty index".into()));
            }
            return Self::new(meta.dim, built, 0);
        };
        if basename.is_empty() || basename.contains(['/', '\\']) || basename.starts_with('.') {
            return Err(bad_meta(format!("invalid graph basename {basename:?}")));
        }
        let names = graph_file_names(basename);
        for name in &names {
            let recorded = meta
                .files
                .iter()
                .find(|f| &f.name == name)
                .ok_or_else(|| bad_meta(format!("no size and checksum recorded for {name}")))?;
            check_file(&dir.join(name), recorded)?;
        }
        let data_path = dir.join(&names[1]);
        check_data_header(&data_path, meta.dim, meta.len, &meta.files)?;
        let graph_path = dir.join(&names[0]);
        check_dump_structure(&graph_path, &data_path, &meta)?;

        let io = HnswIo::new(dir, basename);
        let loaded = catch_unwind(AssertUnwindSafe(|| {
            GraphCell::try_new(Some(io), |io| match io {
                Some(io) => io
                    .load_hnsw_with_dist::<f32, ClampedDot>(ClampedDot)
                    .map(Held::new),
                None => Err(anyhow::anyhow!("no loader")),
            })
        }));
        let mut graph = match loaded {
            Ok(Ok(graph)) => graph,
            Ok(Err(e)) => return Err(index_err(&graph_path, format!("loading HNSW graph: {e:#}"))),
            Err(panic) => {
                return Err(index_err(
                    &graph_path,
                    format!("corrupt HNSW graph: {}", panic_message(&panic)),
                ))
            }
        };
        let (points, dim) = graph.with_dependent(|_, held| {
            (
                held.graph.get_nb_point(),
                held.graph.get_point_indexation().get_data_dimension(),
            )
        });
        if points != meta.len || dim != meta.dim {
            return Err(index_err(
                &graph_path,
                format!(
                    "graph holds {points} vectors of dimension {dim}, {META_FILE} says {} of dimension {}",
                    meta.len, meta.dim
                ),
            ));
        }
        // Reloaded graphs default to extending candidates; behave like a freshly built one.
        graph.with_dependent_mut(|_, held| held.graph.set_extend_candidates(false));
        Ok(HnswIndex {
            dim: meta.dim,
            params: built,
            len: meta.len,
            graph,
        })
    }
}

impl VectorIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.len
    }

    fn add(&mut self, vectors: &[f32]) -> Result<()> {
        validate_vectors(vectors, self.dim, self.len)?;
        let first = self.len;
        let items: Vec<(&[f32], usize)> = vectors
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, v)| (v, first + i))
            .collect();
        self.graph.with_dependent_mut(|_, held| {
            // New points, and new links among the old ones.
            held.links = OnceLock::new();
            let graph = &held.graph;
            if items.len() >= PARALLEL_INSERT {
                graph.parallel_insert_slice(&items);
            } else {
                for &item in &items {
                    graph.insert_slice(item);
                }
            }
        });
        self.len += items.len();
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let query = normalized_query(query, self.dim)?;
        let k = k.min(self.len);
        if k == 0 {
            return Ok(Vec::new());
        }
        let ef = self.params.ef_search.max(k);
        let neighbours = self.graph.with_dependent(|_, held| match held.links() {
            Some(links) => links.search(&query, k, ef),
            None => held
                .graph
                .search(&query, k, ef)
                .iter()
                .map(|n| (n.d_id, n.distance))
                .collect(),
        });
        let mut hits: Vec<Hit> = neighbours
            .into_iter()
            .map(|(row, distance)| Hit {
                row,
                score: 1.0 - distance,
            })
            .collect();
        hits.sort_by(best_first);
        hits.truncate(k);
        Ok(hits)
    }
}

fn index_err(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
    Error::Index {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The graph and data file names `hnsw_rs` uses for `basename`, in that order.
/// Every file name [`HnswIndex::save`] may write into its directory: what a library may remove
/// when it removes a graph it wrote, and nothing else.
pub fn saved_file_names() -> [String; 3] {
    let [graph, data] = graph_file_names(BASENAME);
    [META_FILE.to_string(), graph, data]
}

fn graph_file_names(basename: &str) -> [String; 2] {
    [
        format!("{basename}.hnsw.graph"),
        format!("{basename}.hnsw.data"),
    ]
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Size and SHA-256 of a file.
fn digest_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, format!("{:x}", hasher.finalize())))
}

/// Fsyncs a freshly written file and records its size and checksum.
fn seal_file(path: &Path, name: String) -> Result<FileMeta> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))?;
    let (bytes, sha256) = digest_file(path)?;
    Ok(FileMeta {
        name,
        bytes,
        sha256,
    })
}

/// Checks a graph file against its record in `index.json`.
fn check_file(path: &Path, recorded: &FileMeta) -> Result<()> {
    let size = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(index_err(path, "missing graph file"))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if size != recorded.bytes {
        let what = if size < recorded.bytes {
            "truncated"
        } else {
            "wrong size"
        };
        return Err(index_err(
            path,
            format!("{what}: {size} bytes, expected {}", recorded.bytes),
        ));
    }
    let (_, sha256) = digest_file(path)?;
    if sha256 != recorded.sha256 {
        return Err(index_err(
            path,
            "corrupt: checksum does not match index.json",
        ));
    }
    Ok(())
}

/// Checks the data file's header dimension and its size against `dim` and `len`: the loader
/// trusts both, so a mismatch must be caught here.
fn check_data_header(path: &Path, dim: usize, len: usize, files: &[FileMeta]) -> Result<()> {
    const WORD: usize = std::mem::size_of::<usize>();
    let mut header = [0u8; 4 + WORD];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| index_err(path, format!("reading header: {e}")))?;
    let mut word = [0u8; WORD];
    word.copy_from_slice(&header[4..]);
    let stored_dim = usize::from_ne_bytes(word);
    if stored_dim != dim {
        return Err(index_err(
            path,
            format!("vectors have dimension {stored_dim}, {META_FILE} says {dim}"),
        ));
    }
    // Header, then per point: magic u32, id u64, byte length u64, the f32 values.
    let expected = (dim as u64)
        .checked_mul(4)
        .and_then(|v| v.checked_add(4 + 8 + 8))
        .and_then(|p| p.checked_mul(len as u64))
        .and_then(|p| p.checked_add((4 + WORD) as u64));
    let actual = files
        .iter()
        .find(|f| path.file_name().is_some_and(|n| n == f.name.as_str()))
        .map_or(0, |f| f.bytes);
    if Some(actual) != expected {
        let expected = expected.map_or("more than 2^64".to_string(), |e| e.to_string());
        return Err(index_err(
            path,
            format!(
                "{actual} bytes cannot hold {len} vectors of dimension {dim} ({expected} expected)"
            ),
        ));
    }
    Ok(())
}

/// Magic numbers of the `hnsw_rs` 0.3 dump format.
const MAGIC_DESCR_3: u32 = 0x002a_6771;
const MAGIC_DESCR_4: u32 = 0x002a_6779;
const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_POINT: u32 = 0x000a_678f;
const MAGIC_DATA: u32 = 0xa67f_0000;

/// Reads native-endian fields from a file, knowing how many bytes are left, so that no count
/// read from the file can make us allocate or read past its end.
struct DumpReader {
    path: PathBuf,
    inner: std::io::BufReader<File>,
    offset: u64,
    size: u64,
}

impl DumpReader {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(DumpReader {
            path: path.to_path_buf(),
            inner: std::io::BufReader::new(file),
            offset: 0,
            size,
        })
    }

    /// `corrupt: <reason>`, naming this file.
    fn fail(&self, reason: impl Into<String>) -> Error {
        index_err(&self.path, format!("corrupt: {}", reason.into()))
    }

    fn remaining(&self) -> u64 {
        self.size - self.offset
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        if self.remaining() < N as u64 {
            return Err(self.fail(format!("ends early, at byte {}", self.size)));
        }
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| self.fail(format!("reading at byte {}: {e}", self.offset)))?;
        self.offset += N as u64;
        Ok(buf)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        self.bytes().map(u32::from_ne_bytes)
    }
    fn i32(&mut self) -> Result<i32> {
        self.bytes().map(i32::from_ne_bytes)
    }
    fn u64(&mut self) -> Result<u64> {
        self.bytes().map(u64::from_ne_bytes)
    }
    fn usize(&mut self) -> Result<usize> {
        self.bytes().map(usize::from_ne_bytes)
    }
    fn f32(&mut self) -> Result<f32> {
        self.bytes().map(f32::from_ne_bytes)
    }
    fn f64(&mut self) -> Result<f64> {
        self.bytes().map(f64::from_ne_bytes)
    }

    /// A count of items of `item_bytes` each that must still fit in the file.
    fn count(&mut self, item_bytes: u64, what: &str) -> Result<usize> {
        let at = self.offset;
        let n = self.usize()?;
        if (n as u64).saturating_mul(item_bytes) > self.remaining() {
            return Err(self.fail(format!(
                "{what} count {n} at byte {at} does not fit in the file"
            )));
        }
        Ok(n)
    }

    fn expect_u32(&mut self, want: u32, what: &str) -> Result<()> {
        let at = self.offset;
        let got = self.u32()?;
        if got != want {
            return Err(self.fail(format!("bad {what} magic {got:#x} at byte {at}")));
        }
        Ok(())
    }

    fn expect_end(&self) -> Result<()> {
        if self.offset != self.size {
            return Err(self.fail(format!(
                "{} unexpected bytes after the end of the dump",
                self.size - self.offset
            )));
        }
        Ok(())
    }
}

/// Walks the whole graph and data dump and checks everything the `hnsw_rs` loader trusts: the
/// description against `index.json`, every count against the bytes left, every point's place,
/// every neighbour reference, and every stored vector (finite, unit length, in a row below
/// `len` that no other point holds). The loader asserts, indexes, allocates and reads raw
/// memory by these values, so a dump that fails here must never reach it; with the checksums
/// in `index.json` this stops accidental damage, and it stops a forged but checksum-consistent
/// dump as well.
fn check_dump_structure(graph_path: &Path, data_path: &Path, meta: &Meta) -> Result<()> {
    let mut graph = DumpReader::open(graph_path)?;
    let mut data = DumpReader::open(data_path)?;
    if meta.len == 0 {
        return Err(graph.fail("graph files for an empty index"));
    }

    // The description.
    let version = match graph.u32()? {
        MAGIC_DESCR_3 => 3,
        MAGIC_DESCR_4 => 4,
        other => return Err(graph.fail(format!("unknown dump magic {other:#x}"))),
    };
    let mismatch = |graph: &DumpReader, what: &str, got: String, want: String| {
        graph.fail(format!("{what} is {got}, {META_FILE} says {want}"))
    };
    if graph.u8()? != 1 {
        return Err(graph.fail("not a full dump"));
    }
    let m = graph.u8()? as usize;
    if m != meta.params.m {
        return Err(mismatch(
            &graph,
            "max connections",
            m.to_string(),
            meta.params.m.to_string(),
        ));
    }
    if version == 4 {
        let scale = graph.f64()?;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(graph.fail(format!("level scale {scale}")));
        }
    }
    let layers = graph.u8()? as usize;
    if layers != MAX_LAYER {
        return Err(mismatch(
            &graph,
            "layer count",
            layers.to_string(),
            MAX_LAYER.to_string(),
        ));
    }
    let ef = graph.usize()?;
    if ef != meta.params.ef_construction {
        return Err(mismatch(
            &graph,
            "ef_construction",
            ef.to_string(),
            meta.params.ef_construction.to_string(),
        ));
    }
    let points = graph.usize()?;
    if points != meta.len {
        return Err(mismatch(
            &graph,
            "point count",
            points.to_string(),
            meta.len.to_string(),
        ));
    }
    let dim = graph.usize()?;
    if dim != meta.dim {
        return Err(mismatch(
            &graph,
            "dimension",
            dim.to_string(),
            meta.dim.to_string(),
        ));
    }
    for (what, want) in [
        ("distance", std::any::type_name::<ClampedDot>()),
        ("value type", std::any::type_name::<f32>()),
    ] {
        let len = graph.count(1, what)?;
        if len != want.len() {
            return Err(graph.fail(format!("{what} name of {len} bytes")));
        }
        let mut name = vec![0u8; len];
        for b in name.iter_mut() {
            *b = graph.u8()?;
        }
        if name != want.as_bytes() {
            return Err(graph.fail(format!(
                "{what} is {:?}, expected {want}",
                String::from_utf8_lossy(&name)
            )));
        }
    }

    // The data file's header (its dimension was checked against index.json already).
    data.expect_u32(MAGIC_DATA, "data")?;
    data.usize()?;

    // The layers, their points and the points' vectors.
    let point_layers = graph.u8()? as usize;
    if point_layers > MAX_LAYER {
        return Err(graph.fail(format!("{point_layers} layers")));
    }
    let mut origin_of: Vec<Vec<usize>> = Vec::with_capacity(point_layers);
    // Neighbour references are checked once every layer's size is known.
    let mut max_rank_referenced = [None::<usize>; 256];
    let mut seen = vec![false; meta.len];
    let mut loaded = 0usize;
    let mut vector = vec![0f32; dim];
    let vector_bytes = 4 * dim as u64;
    // Magic, origin id, layer and rank: the smallest a point can be.
    const POINT_HEADER: u64 = 4 + 8 + 1 + 4;
    const NEIGHBOUR: u64 = 8 + 1 + 4 + 4;
    for layer in 0..point_layers {
        graph.expect_u32(MAGIC_LAYER, "layer")?;
        let n = graph.count(POINT_HEADER, "point")?;
        if n > meta.len - loaded {
            return Err(graph.fail(format!(
                "layer {layer} holds {n} points, more than the {} left",
                meta.len - loaded
            )));
        }
        let mut origins = Vec::with_capacity(n);
        for rank in 0..n {
            graph.expect_u32(MAGIC_POINT, "point")?;
            let origin = graph.usize()?;
            let (l, r) = (graph.u8()?, graph.i32()?);
            if l as usize != layer || usize::try_from(r).ok() != Some(rank) {
                return Err(graph.fail(format!(
                    "point ({l}, {r}) stored at layer {layer}, rank {rank}"
                )));
            }
            if origin >= meta.len || std::mem::replace(&mut seen[origin], true) {
                return Err(graph.fail(format!(
                    "point for row {origin} is out of range or repeated"
                )));
            }
            for _ in 0..layers {
                let count = graph.count(NEIGHBOUR, "neighbour")?;
                for _ in 0..count {
                    graph.usize()?;
                    let (nl, nr) = (graph.u8()?, graph.i32()?);
                    let distance = graph.f32()?;
                    let Ok(nr) = usize::try_from(nr) else {
                        return Err(graph.fail(format!("neighbour rank {nr}")));
                    };
                    if distance.is_nan() {
                        return Err(graph.fail("neighbour distance is NaN"));
                    }
                    let slot = &mut max_rank_referenced[nl as usize];
                    *slot = Some(slot.map_or(nr, |m| m.max(nr)));
                }
            }
            // The point's vector in the data file.
            data.expect_u32(MAGIC_DATA, "point data")?;
            let data_origin = data.u64()?;
            if data_origin != origin as u64 {
                return Err(data.fail(format!(
                    "vector of row {data_origin} where the graph has row {origin}"
                )));
            }
            let len = data.u64()?;
            if len != vector_bytes {
                return Err(data.fail(format!("vector of {len} bytes, expected {vector_bytes}")));
            }
            for x in vector.iter_mut() {
                *x = data.f32()?;
            }
            validate_vectors(&vector, dim, origin).map_err(|e| data.fail(e.to_string()))?;
            origins.push(origin);
        }
        loaded += n;
        origin_of.push(origins);
    }
    if loaded != meta.len {
        return Err(graph.fail(format!(
            "holds {loaded} points, {META_FILE} says {}",
            meta.len
        )));
    }
    for (layer, max_rank) in max_rank_referenced.iter().enumerate() {
        if let Some(r) = max_rank {
            if origin_of.get(layer).is_none_or(|o| *r >= o.len()) {
                return Err(graph.fail(format!(
                    "a neighbour refers to point {r} of layer {layer}, which does not exist"
                )));
            }
        }
    }

    // The entry point.
    let origin = graph.usize()?;
    let (l, r) = (graph.u8()?, graph.i32()?);
    let entry = usize::try_from(r)
        .ok()
        .and_then(|r| origin_of.get(l as usize)?.get(r));
    if entry != Some(&origin) {
        return Err(graph.fail(format!(
            "entry point (row {origin}, layer {l}, rank {r}) is not a stored point"
        )));
    }
    graph.expect_end()?;
    data.expect_end()?;
    Ok(())
}

fn read_meta(path: &Path) -> Result<Meta> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(index_err(path, "missing; not an index directory"))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let meta: Meta =
        serde_json::from_slice(&bytes).map_err(|e| index_err(path, format!("corrupt: {e}")))?;
    if meta.format != FORMAT {
        return Err(index_err(
            path,
            format!(
                "index format {} is not supported (expected {FORMAT})",
                meta.format
            ),
        ));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::super::{testutil, ExactIndex};
    use super::*;

    const DIM: usize = 384;
    const N: usize = 10_000;

    /// Clustered data shared by the expensive tests: built once.
    struct Fixture {
        data: Vec<f32>,
        exact: ExactIndex,
        hnsw: HnswIndex,
    }

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            // noise 0.8: point–centre cosine ≈ 0.78, intra-cluster cosine ≈ 0.6.
            let data = testutil::clustered(42, N, DIM, 200, 0.8);
            let exact = ExactIndex::from_vectors(DIM, data.clone()).unwrap();
            let mut hnsw = HnswIndex::new(DIM, HnswParams::default(), N).unwrap();
            hnsw.add(&data).unwrap();
            Fixture { data, exact, hnsw }
        })
    }

    fn small(seed: u64, n: usize, dim: usize) -> (Vec<f32>, HnswIndex) {
        let data = testutil::clustered(seed, n, dim, 10, 0.8);
        let mut index = HnswIndex::new(dim, HnswParams::default(), n).unwrap();
        index.add(&data).unwrap();
        (data, index)
    }

    fn rows(hits: &[Hit]) -> Vec<usize> {
        hits.iter().map(|h| h.row).collect()
    }

    fn index_path(err: Error) -> PathBuf {
        match err {
            Error::Index { path, .. } => path,
            other => panic!("expected Error::Index, got {other:?}"),
        }
    }

    #[test]
    fn walk_over_flat_links_finds_what_hnsw_rs_finds() {
        // The same graph searched both ways: the flat walk must visit what `hnsw_rs` visits,
        // so the rows and distances agree (random vectors: no equal distances to order).
        let f = fixture();
        let mut rng = testutil::Rng::new(11);
        let (mut same, queries) = (0, 200);
        for i in 0..queries {
            let row = rng.below(N);
            let q = testutil::perturb(&mut rng, &f.data[row * DIM..(row + 1) * DIM], 0.3);
            let q = normalized_query(&q, DIM).unwrap();
            let (k, ef) = (1 + i % 50, [1, 16, 128][i % 3]);
            let (theirs, ours) = f.hnsw.graph.with_dependent(|_, held| {
                let theirs: Vec<(usize, f32)> = held
                    .graph
                    .search(&q, k, ef)
                    .iter()
                    .map(|n| (n.d_id, n.distance))
                    .collect();
                (theirs, held.links().expect("rows 0..N").search(&q, k, ef))
            });
            assert_eq!(ours.len(), theirs.len(), "k {k}, ef {ef}");
            assert!(ours.windows(2).all(|w| w[0].1 <= w[1].1), "nearest first");
            same += usize::from(ours == theirs);
        }
        // The entry point is the first point of the top layer, which is `hnsw_rs`'s own in
        // all but a race of its parallel insertion.
        assert_eq!(
            same,
            queries,
            "{} of {queries} searches differ",
            queries - same
        );
    }

    #[test]
    fn links_follow_points_added_after_a_search() {
        let (data, mut index) = small(5, 300, 16);
        let before = index.search(&data[..16], 5).unwrap();
        assert_eq!(before[0].row, 0);
        let more = testutil::clustered(6, 40, 16, 4, 0.8);
        index.add(&more).unwrap();
        // A search after the addition walks links that hold the new points.
        let hits = index.search(&more[16 * 7..16 * 8], 3).unwrap();
        assert_eq!(hits[0].row, 307);
        assert!((hits[0].score - 1.0).abs() < 1e-5);
    }

    #[test]
    fn recall_at_10_against_exact() {
        let f = fixture();
        assert_eq!(f.hnsw.len(), N);
        let mut rng = testutil::Rng::new(7);
        let queries = 200;
        let mut found = 0;
        for _ in 0..queries {
            let row = rng.below(N);
            let q = testutil::perturb(&mut rng, &f.data[row * DIM..(row + 1) * DIM], 0.3);
            let want = rows(&f.exact.search(&q, 10).unwrap());
            let got = f.hnsw.search(&q, 10).unwrap();
            assert_eq!(got.len(), 10);
            assert!(got.windows(2).all(|w| best_first(&w[0], &w[1]).is_lt()));
            found += got.iter().filter(|h| want.contains(&h.row)).count();
        }
        let recall = found as f64 / (10 * queries) as f64;
        eprintln!("HNSW recall@10 on {N} clustered vectors: {recall:.4}");
        assert!(recall >= 0.98, "recall@10 = {recall}");
    }

    #[test]
    fn query_equal_to_stored_vector() {
        let f = fixture();
        for row in [0, 1, 4_321, N - 1] {
            let q = &f.data[row * DIM..(row + 1) * DIM];
            let hits = f.hnsw.search(q, 5).unwrap();
            assert_eq!(hits[0].row, row);
            assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
            assert!(hits.iter().all(|h| (-1.0..=1.0).contains(&h.score)));
        }
    }

    #[test]
    fn distance_never_negative_or_panics() {
        let v = testutil::random_unit(&mut testutil::Rng::new(9), DIM);
        let d = ClampedDot.eval(&v, &v);
        assert!((0.0..1e-5).contains(&d));
        let neg: Vec<f32> = v.iter().map(|x| -x).collect();
        assert!((ClampedDot.eval(&v, &neg) - 2.0).abs() < 1e-5);
        let scaled: Vec<f32> = v.iter().map(|x| x * 1.001).collect();
        assert_eq!(ClampedDot.eval(&v, &scaled), 0.0);
    }

    #[test]
    fn small_index_k_and_validation() {
        let mut index = HnswIndex::new(16, HnswParams::default(), 0).unwrap();
        assert!(index.is_empty());
        assert!(index.search(&[1.0; 16], 3).unwrap().is_empty());
        let data = testutil::clustered(1, 30, 16, 3, 0.8);
        index.add(&data[..16]).unwrap(); // a single point first
        index.add(&data[16..]).unwrap();
        assert_eq!(index.len(), 30);
        let hits = index.search(&data[..16], 100).unwrap();
        assert_eq!(hits.len(), 30, "k > len returns all");
        assert_eq!(hits[0].row, 0);
        assert!(index.search(&data[..16], 0).unwrap().is_empty());
        // Bad vectors and queries are rejected and add nothing.
        let mut bad = data[..32].to_vec();
        bad[20] = f32::NAN;
        assert!(matches!(
            index.add(&bad),
            Err(Error::InvalidVector { row: 31, .. })
        ));
        assert!(matches!(
            index.add(&[0.0; 16]),
            Err(Error::InvalidVector { row: 30, .. })
        ));
        assert_eq!(index.len(), 30);
        assert!(index.search(&[0.0; 16], 1).is_err());
        assert!(index.search(&[1.0; 15], 1).is_err());
        // Parameters hnsw_rs would exit or misbehave on are refused.
        for m in [0, 1, 256, 1000] {
            let params = HnswParams {
                m,
                ..HnswParams::default()
            };
            assert!(HnswIndex::new(16, params, 0).is_err(), "m = {m}");
        }
        assert!(HnswIndex::new(0, HnswParams::default(), 0).is_err());
    }

    #[test]
    fn save_load_gives_same_results() {
        let dim = 32;
        let (data, index) = small(11, 2_000, dim);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("idx");
        index.save(&dir).unwrap();
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["hnsw.hnsw.data", "hnsw.hnsw.graph", "index.json"]);
        let loaded = HnswIndex::load(&dir, HnswParams::default()).unwrap();
        assert_eq!((loaded.len(), loaded.dim()), (2_000, dim));
        assert_eq!(loaded.params(), index.params());
        let mut rng = testutil::Rng::new(12);
        for _ in 0..50 {
            let row = rng.below(2_000);
            let q = testutil::perturb(&mut rng, &data[row * dim..(row + 1) * dim], 0.3);
            let a = index.search(&q, 10).unwrap();
            let b = loaded.search(&q, 10).unwrap();
            assert_eq!(rows(&a), rows(&b));
            for (x, y) in a.iter().zip(&b) {
                assert!((x.score - y.score).abs() < 1e-6);
            }
        }
        // A saved directory is never reused.
        assert!(index_path(index.save(&dir).unwrap_err()) == dir);
    }

    #[test]
    fn incremental_add_after_reload() {
        let dim = 32;
        let (data, index) = small(21, 1_500, dim);
        let tmp = tempfile::tempdir().unwrap();
        let first = tmp.path().join("v1");
        index.save(&first).unwrap();
        let mut reloaded = HnswIndex::load(&first, HnswParams::default()).unwrap();
        let more = testutil::clustered(22, 500, dim, 10, 0.8);
        reloaded.add(&more[..3 * dim]).unwrap(); // serial path
        reloaded.add(&more[3 * dim..]).unwrap(); // parallel path
        assert_eq!(reloaded.len(), 2_000);
        let second = tmp.path().join("v2");
        reloaded.save(&second).unwrap();
        let again = HnswIndex::load(&second, HnswParams::default()).unwrap();
        assert_eq!(again.len(), 2_000);
        let all: Vec<f32> = data.iter().chain(&more).copied().collect();
        let exact = ExactIndex::from_vectors(dim, all.clone()).unwrap();
        for row in [0, 777, 1_499, 1_500, 1_502, 1_503, 1_999] {
            let q = &all[row * dim..(row + 1) * dim];
            for idx in [&reloaded, &again] {
                let hits = idx.search(q, 10).unwrap();
                assert_eq!(hits[0].row, row);
                assert!((hits[0].score - 1.0).abs() < 1e-4);
                let want = rows(&exact.search(q, 10).unwrap());
                let overlap = hits.iter().filter(|h| want.contains(&h.row)).count();
                assert!(overlap >= 9, "row {row}: {overlap}/10");
            }
        }
        // The first save is untouched by the second.
        assert_eq!(
            HnswIndex::load(&first, HnswParams::default())
                .unwrap()
                .len(),
            1_500
        );
    }

    #[test]
    fn empty_index_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("empty");
        HnswIndex::new(8, HnswParams::default(), 0)
            .unwrap()
            .save(&dir)
            .unwrap();
        let mut loaded = HnswIndex::load(&dir, HnswParams::default()).unwrap();
        assert!(loaded.is_empty());
        assert_eq!(loaded.dim(), 8);
        let mut v = vec![0.0; 8];
        v[3] = 1.0;
        loaded.add(&v).unwrap();
        assert_eq!(loaded.search(&v, 1).unwrap()[0].row, 0);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let dim = 16;
        let (_, index) = small(31, 300, dim);
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good");
        index.save(&good).unwrap();
        let copy = |name: &str| {
            let dir = tmp.path().join(name);
            fs::create_dir(&dir).unwrap();
            for e in fs::read_dir(&good).unwrap() {
                let e = e.unwrap();
                fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
            dir
        };
        let load = |dir: &Path| HnswIndex::load(dir, HnswParams::default()).unwrap_err();

        // Truncated data and graph files.
        for name in ["hnsw.hnsw.data", "hnsw.hnsw.graph"] {
            let dir = copy(&format!("trunc-{name}"));
            let file = dir.join(name);
            let len = fs::metadata(&file).unwrap().len();
            File::options()
                .write(true)
                .open(&file)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
            let err = load(&dir);
            assert!(err.to_string().contains("truncated"), "{err}");
            assert_eq!(index_path(err), file);
        }
        // A flipped byte in the middle of each file.
        for name in ["hnsw.hnsw.data", "hnsw.hnsw.graph"] {
            let dir = copy(&format!("flip-{name}"));
            let file = dir.join(name);
            let mut bytes = fs::read(&file).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x5a;
            fs::write(&file, bytes).unwrap();
            let err = load(&dir);
            assert!(err.to_string().contains("corrupt"), "{err}");
            assert_eq!(index_path(err), file);
        }
        // A missing graph file.
        let dir = copy("missing-graph");
        fs::remove_file(dir.join("hnsw.hnsw.graph")).unwrap();
        assert_eq!(index_path(load(&dir)), dir.join("hnsw.hnsw.graph"));
        // Missing, garbled or inconsistent index.json.
        let dir = copy("no-meta");
        fs::remove_file(dir.join(META_FILE)).unwrap();
        assert_eq!(index_path(load(&dir)), dir.join(META_FILE));
        let dir = copy("bad-meta");
        fs::write(dir.join(META_FILE), b"{\"format\": 1, \"dim\":").unwrap();
        assert_eq!(index_path(load(&dir)), dir.join(META_FILE));
        let dir = copy("wrong-dim");
        let meta = fs::read_to_string(dir.join(META_FILE)).unwrap();
        fs::write(
            dir.join(META_FILE),
            meta.replace("\"dim\": 16", "\"dim\": 17"),
        )
        .unwrap();
        assert_eq!(index_path(load(&dir)), dir.join("hnsw.hnsw.data"));
        // A graph file replaced by garbage with a matching record still cannot panic.
        let dir = copy("garbage");
        let file = dir.join("hnsw.hnsw.graph");
        let len = fs::metadata(&file).unwrap().len() as usize;
        fs::write(&file, vec![0xabu8; len]).unwrap();
        let record = seal_file(&file, "hnsw.hnsw.graph".into()).unwrap();
        let mut meta: Meta =
            serde_json::from_slice(&fs::read(dir.join(META_FILE)).unwrap()).unwrap();
        meta.files.retain(|f| f.name != record.name);
        meta.files.push(record);
        fs::write(dir.join(META_FILE), serde_json::to_vec(&meta).unwrap()).unwrap();
        assert_eq!(index_path(load(&dir)), file);
        // A missing directory.
        let missing = tmp.path().join("nope");
        assert_eq!(index_path(load(&missing)), missing);
    }

    /// Dumps that are damaged on purpose and resealed (sizes and checksums in `index.json`
    /// made to match) are refused by the structural check before `hnsw_rs` reads them: no
    /// panic, no abort on a huge allocation, no out-of-bounds read.
    #[test]
    fn forged_dumps_with_matching_checksums_are_errors() {
        let dim = 8;
        let (_, index) = small(41, 50, dim);
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good");
        index.save(&good).unwrap();
        const W: usize = std::mem::size_of::<usize>();
        // Description: magic, mode, m, scale, layers, ef, points, dim, two names.
        let names = 8 + std::any::type_name::<ClampedDot>().len() + 8 + 3;
        let descr = 4 + 1 + 1 + 8 + 1 + W * 3 + names;
        let layer0_count = descr + 1 + 4;
        let point0 = layer0_count + W;
        let origin0 = point0 + 4;
        let neighbours0 = origin0 + W + 1 + 4;
        let data_len0 = 4 + W + 4 + 8;
        let data_value0 = data_len0 + 8;
        let cases: Vec<(&str, &str, usize, Vec<u8>)> = vec![
            (
                "graph",
                "huge point count",
                layer0_count,
                usize::MAX.to_ne_bytes().to_vec(),
            ),
            (
                "graph",
                "row out of range",
                origin0,
                50usize.to_ne_bytes().to_vec(),
            ),
            (
                "graph",
                "huge neighbour count",
                neighbours0,
                (1usize << 60).to_ne_bytes().to_vec(),
            ),
            ("graph", "value type", descr - 3, b"f64".to_vec()),
            ("graph", "not full", 4, vec![0]),
            (
                "graph",
                "entry point",
                usize::MAX,
                (-1i32).to_ne_bytes().to_vec(),
            ),
            (
                "data",
                "vector length",
                data_len0,
                4u64.to_ne_bytes().to_vec(),
            ),
            (
                "data",
                "NaN value",
                data_value0,
                f32::NAN.to_ne_bytes().to_vec(),
            ),
        ];
        for (file, what, at, bytes) in cases {
            let dir = tmp.path().join(what.replace(' ', "-"));
            fs::create_dir(&dir).unwrap();
            for e in fs::read_dir(&good).unwrap() {
                let e = e.unwrap();
                fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
            let name = format!("hnsw.hnsw.{file}");
            let path = dir.join(&name);
            let mut content = fs::read(&path).unwrap();
            // usize::MAX stands for "the entry point's rank, the last four bytes".
            let at = if at == usize::MAX {
                content.len() - 4
            } else {
                at
            };
            content[at..at + bytes.len()].copy_from_slice(&bytes);
            fs::write(&path, &content).unwrap();
            let record = seal_file(&path, name.clone()).unwrap();
            let mut meta: Meta =
                serde_json::from_slice(&fs::read(dir.join(META_FILE)).unwrap()).unwrap();
            meta.files.retain(|f| f.name != name);
            meta.files.push(record);
            fs::write(dir.join(META_FILE), serde_json::to_vec(&meta).unwrap()).unwrap();
            let err = HnswIndex::load(&dir, HnswParams::default()).unwrap_err();
            assert!(err.to_string().contains("corrupt"), "{what}: {err}");
            assert_eq!(index_path(err), path, "{what}");
        }
    }

    #[test]
    fn distance_type_name_is_stable() {
        // Saved graphs record this name and hnsw_rs refuses to reload under any other:
        // moving or renaming `ClampedDot` makes existing libraries unreadable.
        assert_eq!(
            std::any::type_name::<ClampedDot>(),
            "papersim::index::hnsw::ClampedDot"
        );
    }

    #[test]
    fn index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<HnswIndex>();
        check::<ExactIndex>();
    }

    #[test]
    fn params_serde_and_defaults() {
        let p = HnswParams::default();
        assert_eq!((p.m, p.ef_construction, p.ef_search), (16, 200, 128));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<HnswParams>(&json).unwrap(), p);
    }
}
