//! Where the encoder's time goes, stage by stage, on the CPU.
//!
//! `cpu_profile TEXTS --threads N [--backend B] [--texts-count 64]` embeds the first texts of a
//! file (one per line; `cpu_throughput texts` writes them) once to warm up, then again with
//! every stage timed, and prints a Markdown table: milliseconds per batch and share of the
//! total. Stages inside a parallel region share its wall time in proportion to their thread
//! time (see `papersim::encode::forward::StageTimes::add_split`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use papersim::encode::device::DeviceRequest;
use papersim::encode::forward::{Backend, StageTimes};
use papersim::{Embedder, EmbedderConfig};

#[derive(Parser)]
struct Args {
    texts: PathBuf,
    #[arg(long)]
    threads: usize,
    /// auto, cpu-fast, papersim or upstream.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// How many texts to time (in batches of 32).
    #[arg(long, default_value_t = 64)]
    texts_count: usize,
    /// Timed repetitions; the profile is their sum.
    #[arg(long, default_value_t = 2)]
    repeat: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()?;
    let text =
        std::fs::read_to_string(&args.texts).with_context(|| args.texts.display().to_string())?;
    let texts: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty())
        .take(args.texts_count)
        .collect();
    let backend: Backend = args.backend.parse()?;
    let embedder = Embedder::new(
        &EmbedderConfig {
            device: DeviceRequest::Cpu,
            backend,
            ..EmbedderConfig::default()
        },
        &papersim::progress::NoProgress,
    )?;
    let tokens: usize = embedder.tokenize(&texts)?.iter().map(|e| e.len()).sum();
    embedder.embed(&texts)?;
    let mut profile = StageTimes::default();
    for _ in 0..args.repeat.max(1) {
        embedder.embed_profiled(&texts, &mut profile)?;
    }
    print_table(
        &profile,
        &format!(
            "backend {}, {} threads, {} texts ({} tokens), batch 32",
            embedder.backend(),
            args.threads,
            texts.len(),
            tokens
        ),
        args.repeat.max(1),
        texts.len(),
    );
    Ok(())
}

/// The one place that turns timings into the report.
fn print_table(profile: &StageTimes, title: &str, repeat: usize, texts: usize) {
    let total = profile.total();
    let batches = (repeat * texts.div_ceil(32)) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / batches;
    println!("{title}\n");
    println!("| stage | ms per batch | share |");
    println!("|---|---:|---:|");
    for (stage, d) in profile.stages() {
        println!(
            "| {stage} | {:.1} | {:.1}% |",
            ms(*d),
            100.0 * d.as_secs_f64() / total.as_secs_f64()
        );
    }
    println!("| **total** | **{:.1}** | |", ms(total));
    println!(
        "\n{:.1} texts/s while profiling",
        (repeat * texts) as f64 / total.as_secs_f64()
    );
}
