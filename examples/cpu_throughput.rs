//! papersim's side of `scripts/vs_sentence_transformers.py`: encoding throughput on the CPU.
//!
//! `cpu_throughput texts DIGEST OUT_DIR` writes the benchmark texts (one per line):
//! `full.txt`, the digest's papers as title + ". " + abstract repeated to 320 texts, and
//! `varied.txt`, the same texts cut to a random number of words (fixed seed).
//!
//! `cpu_throughput run TEXTS --threads N [--backend B] [--repeat R] [--vectors OUT.npy]`
//! embeds the texts R times after one warm-up batch and prints one JSON line with the time of
//! each run; sentence-transformers' side is `scripts/st_side.py throughput`, with the same
//! output.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use papersim::digest::{self, ParseOptions};
use papersim::encode::device::DeviceRequest;
use papersim::encode::forward::Backend;
use papersim::{Embedder, EmbedderConfig};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes full.txt and varied.txt from a digest.
    Texts {
        digest: PathBuf,
        out_dir: PathBuf,
        #[arg(long, default_value_t = 320)]
        count: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Times embedding the lines of a file.
    Run {
        texts: PathBuf,
        #[arg(long)]
        threads: usize,
        /// auto, cpu-fast, papersim or upstream.
        #[arg(long, default_value = "auto")]
        backend: String,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Model directory or repo id.
        #[arg(long, default_value = papersim::encode::model::DEFAULT_MODEL)]
        model: String,
        /// Writes the vectors of the last run here (.npy, rows in input order).
        #[arg(long)]
        vectors: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    match Args::parse().command {
        Command::Texts {
            digest,
            out_dir,
            count,
            seed,
        } => write_texts(&digest, &out_dir, count, seed),
        Command::Run {
            texts,
            threads,
            backend,
            repeat,
            batch_size,
            model,
            vectors,
        } => run(
            &texts,
            threads,
            backend.parse()?,
            repeat,
            batch_size,
            model,
            vectors,
        ),
    }
}

fn write_texts(digest_path: &Path, out_dir: &Path, count: usize, seed: u64) -> Result<()> {
    let digests = digest::read_path(digest_path, &ParseOptions::default())?;
    let papers: Vec<String> = digests
        .iter()
        .flat_map(|d| &d.papers)
        .map(|p| {
            p.embedding_text()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|t| !t.is_empty())
        .collect();
    if papers.is_empty() {
        bail!("{}: no papers", digest_path.display());
    }
    let full: Vec<&str> = papers
        .iter()
        .cycle()
        .take(count)
        .map(String::as_str)
        .collect();
    // A 64-bit LCG: the same seed gives the same cuts on every machine.
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let varied: Vec<String> = full
        .iter()
        .map(|t| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let words: Vec<&str> = t.split_whitespace().collect();
            let keep = 4 + (state >> 33) as usize % words.len().max(1);
            words[..keep.min(words.len())].join(" ")
        })
        .collect();
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(out_dir.join("full.txt"), full.join("\n") + "\n")?;
    std::fs::write(out_dir.join("varied.txt"), varied.join("\n") + "\n")?;
    Ok(())
}

fn run(
    path: &Path,
    threads: usize,
    backend: Backend,
    repeat: usize,
    batch_size: usize,
    model: String,
    vectors: Option<PathBuf>,
) -> Result<()> {
    // candle's kernels read RAYON_NUM_THREADS; papersim's own run in rayon's global pool.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()?;
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let texts: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let mut config = EmbedderConfig {
        model,
        device: DeviceRequest::Cpu,
        backend,
        ..EmbedderConfig::default()
    };
    config.batch.max_texts = batch_size;
    let embedder = Embedder::new(&config, &papersim::progress::NoProgress)?;
    embedder.embed(&texts[..texts.len().min(batch_size)])?;
    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let out = embedder.embed(&texts)?;
        runs.push(start.elapsed().as_secs_f64());
        last = Some(out);
    }
    let out = last.expect("at least one run");
    if let Some(file) = vectors {
        std::fs::write(
            &file,
            papersim::library::npy::encode_f32(&out.data, out.len(), out.dim),
        )?;
    }
    let best = runs.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{}",
        serde_json::json!({
            "side": "papersim",
            "backend": embedder.backend().to_string(),
            "threads": threads,
            "texts": texts.len(),
            "tokens": out.tokens.iter().sum::<usize>(),
            "runs_s": runs,
            "texts_per_s": texts.len() as f64 / best,
        })
    );
    Ok(())
}
