//! What each fuzz target runs, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and the
//! stable regression tests (`tests/fuzz_regressions.rs`, which include this file by path), so
//! that a saved input replays exactly what the fuzzer ran.
//!
//! Every harness takes arbitrary bytes, must never panic, and checks the invariants that the
//! rest of papersim relies on when a call succeeds.

use std::fs;
use std::path::Path;

use papersim::digest::{self, InputFormat, ParseOptions};
use papersim::index::{HnswIndex, HnswParams, VectorIndex};
use papersim::library::{Library, SearchMode};
use papersim::rank::{self, RankOptions, Retrieval};

/// The name the fuzzed digest is parsed under: its date meets header dates such as `Dec 31`.
pub const DIGEST_SOURCE: &str = "fuzz/hf_2026-01-01.txt";

/// Parses `data` as a digest with the given parser and checks what comes back.
pub fn digest(format: InputFormat, data: &[u8]) {
    let opts = ParseOptions { format, date: None };
    match digest::parse_bytes(DIGEST_SOURCE, data, &opts) {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(DIGEST_SOURCE),
                "error does not name the file: {msg}"
            );
        }
        Ok(d) => {
            assert!(!d.papers.is_empty(), "a digest without papers is an error");
            assert_eq!(d.source, DIGEST_SOURCE);
            for p in &d.papers {
                assert!(!p.title.trim().is_empty(), "empty title: {p:?}");
                assert!(!p.abstract_text.trim().is_empty(), "empty abstract: {p:?}");
                assert!(!p.title.contains('\n'), "multi-line title: {p:?}");
                assert!(p.line >= 1);
                if let Some(date) = &p.date {
                    assert!(
                        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
                        "bad date {date:?}"
                    );
                }
                // What ingest does with every paper.
                let id = p.id();
                assert!(!id.is_empty());
                let _ = papersim::paper::normalize_title(&p.title);
                assert!(!p.embedding_text().trim().is_empty());
                let line = serde_json::to_string(p).expect("a paper serialises");
                let back: papersim::paper::DigestPaper =
                    serde_json::from_str(&line).expect("and reads back");
                assert_eq!(&back, p);
            }
        }
    }
}

/// Separates the files of a library fuzz input.
pub const SECTION: &[u8] = b"\n\0papersim-file\0\n";

/// The files of a library, in the order a fuzz input lists them; the graph is generation 1's.
pub const LIBRARY_FILES: [&str; 6] = [
    "manifest.json",
    "papers.1.jsonl",
    "embeddings.1.npy",
    "graph.1/index.json",
    "graph.1/hnsw.hnsw.graph",
    "graph.1/hnsw.hnsw.data",
];

/// Flag (first input byte): rewrite `index.json`'s sizes and SHA-256 sums to match the fuzzed
/// graph files, so that damaged graphs get past the checksums to the structural checks.
pub const RESEAL: u8 = 1;

/// Encodes library files as a fuzz input.
pub fn library_input(flags: u8, files: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![flags];
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SECTION);
        }
        out.extend_from_slice(f);
    }
    out
}

fn split_sections(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while let Some(pos) = data.windows(SECTION.len()).position(|w| w == SECTION) {
        parts.push(&data[..pos]);
        data = &data[pos + SECTION.len()..];
    }
    parts.push(data);
    parts
}

/// Writes the library that `data` describes into the empty directory `root`: byte 0 holds
/// flags, the rest is up to six files (see [`LIBRARY_FILES`]) separated by [`SECTION`]; files
/// not given are absent.
pub fn write_library(root: &Path, data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    fs::create_dir_all(root.join("graph.1")).unwrap();
    let parts = split_sections(rest);
    for (name, bytes) in LIBRARY_FILES.iter().zip(&parts) {
        fs::write(root.join(name), bytes).unwrap();
    }
    if flags & RESEAL != 0 {
        reseal(&root.join("graph.1"));
    }
}

fn reseal(dir: &Path) {
    use sha2::{Digest, Sha256};
    let meta_path = dir.join("index.json");
    let Ok(bytes) = fs::read(&meta_path) else {
        return;
    };
    let Ok(mut meta) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return;
    };
    let Some(files) = meta.get_mut("files").and_then(|f| f.as_array_mut()) else {
        return;
    };
    for f in files.iter_mut() {
        let Some(name) = f.get("name").and_then(|n| n.as_str()) else {
            continue;
        };
        if name.contains(['/', '\\']) || name.starts_with('.') {
            continue;
        }
        let Ok(content) = fs::read(dir.join(name)) else {
            continue;
        };
        f["bytes"] = (content.len() as u64).into();
        f["sha256"] = format!("{:x}", Sha256::digest(&content)).into();
    }
    fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
}

/// How far a library input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// `Library::open` refused it.
    Refused,
    /// It opened; its HNSW graph was refused (or it has no papers).
    Opened,
    /// It opened and its HNSW graph loaded and answered.
    Searched,
}

/// Writes the library described by `data` into the empty directory `root`, opens it and uses
/// it as the commands do.
pub fn library_in(root: &Path, data: &[u8]) -> Outcome {
    write_library(root, data);
    let lib = match Library::open(root) {
        Ok(lib) => lib,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return Outcome::Refused;
        }
    };
    let mut outcome = Outcome::Opened;
    let n = lib.len();
    assert_eq!(lib.manifest().papers, n);
    for (row, p) in lib.papers().unwrap().iter().enumerate() {
        assert_eq!(lib.vector(row).len(), lib.dim());
        assert_eq!(lib.row_of_id(&p.id).unwrap(), Some(row));
        assert!(lib.row_of_title(&p.title).unwrap().is_some());
        let _ = (p.first_seen(), p.last_seen(), p.text());
    }
    let _ = lib.size_on_disk();
    if n > 0 {
        let query = lib.vector(0).to_vec();
        let exact = lib
            .search(&query, 5, SearchMode::Exact)
            .expect("exact search over validated vectors");
        assert_eq!(exact.len(), n.min(5));
        assert!(exact.iter().all(|h| h.row < n));
        // The graph loads or fails cleanly; either way every hit names a stored paper.
        if let Ok(hits) = lib.search(&query, 5, SearchMode::Hnsw) {
            assert!(hits.iter().all(|h| h.row < n), "{hits:?}");
            outcome = Outcome::Searched;
        }
        for mode in [SearchMode::Exact, SearchMode::Hnsw] {
            let opts = RankOptions {
                k: 3,
                diversity: Some(0.5),
                mode,
                ..RankOptions::default()
            };
            if let Ok(ranked) = rank::similar(&lib, 0, &opts, Retrieval::Dense) {
                assert!(ranked.iter().all(|r| r.row < n && r.row != 0));
            }
            if let Ok(ranked) = rank::recommend(&lib, &[0], &[n - 1], &opts, Retrieval::Dense) {
                assert!(ranked.iter().all(|r| r.row < n));
            }
        }
    }
    outcome
}

/// [`library_in`] in a scratch directory reused across calls (on tmpfs when there is one).
pub fn library(data: &[u8]) -> Outcome {
    use std::sync::OnceLock;
    static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();
    let scratch = SCRATCH.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            if let Ok(dir) = tempfile::Builder::new()
                .prefix("papersim-fuzz")
                .tempdir_in(shm)
            {
                return dir;
            }
        }
        tempfile::tempdir().unwrap()
    });
    let root = scratch.path().join("lib");
    if root.exists() {
        fs::remove_dir_all(&root).unwrap();
    }
    library_in(&root, data)
}

/// Valid libraries to start fuzzing from: empty, one paper, and 24 papers (a graph with more
/// than one layer), each also with the reseal flag.
pub fn library_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (n, dim) in [(0usize, 4usize), (1, 4), (7, 8), (24, 4)] {
        let files = synthetic_library(n, dim);
        for flags in [0, RESEAL] {
            seeds.push((
                format!("seed-{n}x{dim}-flags{flags}"),
                library_input(flags, &files),
            ));
        }
    }
    seeds
}

/// Small graph parameters keep the seeds (and so the corpus) small; with `m = 4` a quarter
/// of the points reach layer 1, so the 24-paper seed has several layers.
const SEED_PARAMS: HnswParams = HnswParams {
    m: 4,
    ef_construction: 16,
    ef_search: 16,
};

/// The six files of a valid library of `n` papers with deterministic `dim`-dimensional unit
/// vectors, built with papersim's own writers.
pub fn synthetic_library(n: usize, dim: usize) -> Vec<Vec<u8>> {
    let mut state = 0x2545f4914f6cdd1du64 ^ (n as u64 * 31 + dim as u64);
    let mut vectors = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        vectors.extend(v.iter().map(|x| x / norm));
    }
    let mut papers = Vec::new();
    for i in 0..n {
        let paper = serde_json::json!({
            "id": format!("2401.{:05}", i),
            "title": format!("Paper {i}"),
            "abstract": format!("Problem {i}."),
            "date": "2026-01-01",
            "url": null,
            "authors": ["A. Author"],
            "categories": ["cs.LG"],
            "seen_in": [{"digest": "hf_2026-01-01.txt", "date": "2026-01-01"}],
        });
        papers.extend_from_slice(serde_json::to_string(&paper).unwrap().as_bytes());
        papers.push(b'\n');
    }
    let manifest = serde_json::json!({
        "format_version": papersim::library::FORMAT_VERSION,
        "generation": 1,
        "model": {
            "id": "fuzz/model",
            "fingerprint": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "dim": dim,
            "pooling": "mean",
            "max_seq_length": 256,
        },
        "index": SEED_PARAMS,
        "papers": n,
        "files": {"papers": "papers.1.jsonl", "embeddings": "embeddings.1.npy", "graph": "graph.1"},
        "digests": [{"source": "hf_2026-01-01.txt", "date": "2026-01-01", "papers": n, "added": n}],
        "updated": "2026-01-01T00:00:00Z",
    });
    let tmp = tempfile::tempdir().unwrap();
    let graph_dir = tmp.path().join("graph");
    let mut graph = HnswIndex::new(dim, SEED_PARAMS, n.max(1)).unwrap();
    graph.add(&vectors).unwrap();
    graph.save(&graph_dir).unwrap();
    let read = |name: &str| fs::read(graph_dir.join(name)).unwrap_or_default();
    vec![
        serde_json::to_vec_pretty(&manifest).unwrap(),
        papers,
        papersim::library::npy::encode_f32(&vectors, n, dim),
        read("index.json"),
        read("hnsw.hnsw.graph"),
        read("hnsw.hnsw.data"),
    ]
}
