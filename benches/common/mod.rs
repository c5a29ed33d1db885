//! What the benchmarks share: the real papers of the test fixtures, their vectors from the
//! real default model (embedded once, cached under `<target>/bench-cache/`), and the
//! generator that makes realistic stored vectors from them.
//!
//! Realistic vectors: random unit vectors make recall meaningless (every point is about as far
//! from every other), so the data starts from the real model's embeddings of the real papers
//! in `tests/fixtures/` (about 2,700 papers). A tenth of those papers are held out as queries
//! the library has never seen; the rest are the *bases*. The stored vectors are every base
//! once, then variants of random bases ([`Variants`], mixed as [`Mix`] says).

// Each benchmark uses its own part of this module (index.rs both mixes, scale.rs the topic
// mix and the cache key), and of the unit tests' random-data helpers.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use papersim::digest::{self, ParseOptions};
use papersim::index::{ExactIndex, VectorIndex};
use papersim::library::npy;
use papersim::paper::DigestPaper;
use papersim::progress::NoProgress;
use papersim::{Embedder, EmbedderConfig};
use sha2::{Digest as _, Sha256};

// The unit tests' reproducible random data (xorshift, Box–Muller, perturbation), shared by path.
#[path = "../../src/index/testutil.rs"]
mod testutil;
pub use testutil::{normalize, perturb, Rng};

/// One paper in `HELD_OUT_EVERY` is a query, never stored.
pub const HELD_OUT_EVERY: usize = 10;
/// Variants of a base mix in two of its `NEIGHBOURS` nearest real papers.
pub const NEIGHBOURS: usize = 20;

/// Runs `f` once and returns its result with the wall time it took.
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// The `p`-quantile of sorted durations.
pub fn quantile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The target directory this benchmark was built in (`CARGO_TARGET_DIR`, else `./target`):
/// cargo runs a benchmark as `<target>/release/deps/<name>-<hash>`.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let deps = exe.parent()?;
            (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(Path::to_path_buf))?
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Where the benchmarks keep what is slow to make: embeddings, generated libraries.
pub fn cache_dir() -> PathBuf {
    target_dir().join("bench-cache")
}

/// The real papers of the test fixtures, once each, in a fixed order: the daily and arXiv
/// digests and 2,000 arXiv CS papers (every 25th of `../shared`'s 50,000-paper corpus, CC0).
pub fn real_papers() -> Result<Vec<DigestPaper>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut papers = Vec::new();
    let mut seen = HashSet::new();
    for path in [
        "digests/hf",
        "digests/arxiv",
        "digests/hf-trending-mar-11.txt",
        "bench/arxiv-cs-2000.jsonl.gz",
    ] {
        for d in digest::read_path(&fixtures.join(path), &ParseOptions::default())? {
            for p in d.papers {
                if seen.insert(p.id()) {
                    papers.push(p);
                }
            }
        }
    }
    Ok(papers)
}

/// The real model's vectors of `texts`, cached in [`cache_dir`] by model and texts, and that
/// cache key (16 hex digits).
pub fn embed_cached(embedder: &Embedder, texts: &[String]) -> Result<(Vec<f32>, String)> {
    let mut hash = Sha256::new();
    hash.update(embedder.files().fingerprint()?.as_bytes());
    for t in texts {
        hash.update(t.as_bytes());
        hash.update([0]);
    }
    let key: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache_dir();
    let path = dir.join(format!("real-{key}.npy"));
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok((data, rows, _)) = npy::decode_f32(&bytes) {
            if rows == texts.len() {
                return Ok((data, key));
            }
        }
    }
    eprintln!(
        "embedding {} real papers with {} (once; cached in {})",
        texts.len(),
        embedder.files().id,
        path.display()
    );
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embedded = embedder.embed(&refs)?;
    std::fs::create_dir_all(&dir)?;
    papersim::directory::write_atomically(
        &path,
        &npy::encode_f32(&embedded.data, embedded.len(), embedded.dim),
    )?;
    Ok((embedded.data, key))
}

/// The real papers with their vectors, split into bases and held-out queries.
pub struct RealSet {
    pub embedder: Embedder,
    pub dim: usize,
    pub papers: Vec<DigestPaper>,
    /// Row-major, one per paper.
    pub vectors: Vec<f32>,
    /// Rows of `papers` that are stored (bases) and held out (queries).
    pub bases: Vec<usize>,
    pub held_out: Vec<usize>,
    /// Names the model and the texts embedded ([`embed_cached`]'s key).
    pub key: String,
}

impl RealSet {
    /// Loads the default model and the fixtures' papers, and embeds them (or reads the cache).
    pub fn load() -> Result<Self> {
        let embedder = Embedder::new(&EmbedderConfig::default(), &NoProgress)
            .context("loading the default model")?;
        let dim = embedder.dim();
        let papers = real_papers()?;
        let texts: Vec<String> = papers.iter().map(|p| p.embedding_text()).collect();
        let (vectors, key) = embed_cached(&embedder, &texts)?;
        let (held_out, bases) =
            (0..papers.len()).partition(|i| i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1);
        Ok(RealSet {
            embedder,
            dim,
            papers,
            vectors,
            bases,
            held_out,
            key,
        })
    }

    /// The vector of paper `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// The bases alone, searched exactly (row `k` is `bases[k]`).
    pub fn base_index(&self) -> Result<ExactIndex> {
        let data: Vec<f32> = self
            .bases
            .iter()
            .flat_map(|&b| self.row(b).to_vec())
            .collect();
        Ok(ExactIndex::from_vectors(self.dim, data)?)
    }
}

/// How the stored vectors are made from the real ones.
#[derive(Debug, Clone, Copy)]
pub enum Mix {
    /// A base plus up to 0.6 of each of two of its 20 nearest real papers, then noise of
    /// cosine ≈ 0.97: new papers within a topic, in the region real embeddings occupy.
    Topic,
    /// A base, mixed with an unrelated base in 30% of cases (weight 0.2-0.4), then isotropic
    /// noise of cosine ≈ 0.9: tight clusters of ~40 near-copies per base, with noise in every
    /// direction (harder for HNSW than real data).
    Isotropic,
}

/// The stored vectors, one at a time (a million of them need not be held at once): every base
/// once as it is, then mixed and perturbed variants of random bases.
pub struct Variants<'a> {
    real: &'a RealSet,
    mix: Mix,
    /// Each base's nearest real neighbours (as rows of `real.papers`): variants are mixed
    /// only within a topic, so they stay in the region real embeddings occupy instead of
    /// between unrelated topics.
    neighbours: Vec<Vec<usize>>,
    rng: Rng,
    made: usize,
}

impl<'a> Variants<'a> {
    /// `base_index` is [`RealSet::base_index`]; `seed` fixes the sequence.
    pub fn new(real: &'a RealSet, base_index: &ExactIndex, mix: Mix, seed: u64) -> Result<Self> {
        let neighbours = real
            .bases
            .iter()
            .map(|&b| {
                Ok(base_index
                    .search(real.row(b), NEIGHBOURS + 1)?
                    .iter()
                    .map(|h| real.bases[h.row])
                    .filter(|&r| r != b)
                    .collect())
            })
            .collect::<Result<_>>()?;
        Ok(Variants {
            real,
            mix,
            neighbours,
            rng: Rng::new(seed),
            made: 0,
        })
    }

    /// The next stored vector (unit length) and the row of `real.papers` it came from.
    pub fn next_vector(&mut self) -> (usize, Vec<f32>) {
        let (real, rng) = (self.real, &mut self.rng);
        let bases = &real.bases;
        let i = self.made;
        self.made += 1;
        if i < bases.len() {
            return (bases[i], real.row(bases[i]).to_vec());
        }
        let k = rng.below(bases.len());
        let a = bases[k];
        let mut v = real.row(a).to_vec();
        let v = match self.mix {
            Mix::Topic => {
                for _ in 0..2 {
                    let b = self.neighbours[k][rng.below(self.neighbours[k].len())];
                    let w = 0.6 * rng.uniform() as f32;
                    v.iter_mut().zip(real.row(b)).for_each(|(x, y)| *x += w * y);
                }
                normalize(&mut v);
                perturb(rng, &v, 0.25)
            }
            Mix::Isotropic => {
                if rng.uniform() < 0.3 {
                    let b = bases[rng.below(bases.len())];
                    let w = 0.2 + 0.2 * rng.uniform() as f32;
                    v.iter_mut()
                        .zip(real.row(b))
                        .for_each(|(x, y)| *x = (1.0 - w) * *x + w * y);
                    normalize(&mut v);
                }
                perturb(rng, &v, 0.5)
            }
        };
        (a, v)
    }

    /// The generator's random state, to go on drawing from the same sequence afterwards.
    pub fn into_rng(self) -> Rng {
        self.rng
    }
}
