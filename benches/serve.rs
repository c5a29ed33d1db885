//! `papersim serve` under load (issue #16): 16 concurrent clients for 30 s against the
//! release binary serving a generated library of 100,000 papers on loopback, with one
//! `papersim ingest` (another process) committing a new generation during the run.
//!
//! The library is the scale benchmark's (`benches/scale.rs` generates N papers from the real
//! model's embeddings and caches the library under `<target>/bench-cache/scale-<N>-...`): run
//! that first for the size wanted, then this one, which serves a private copy of it.
//!
//! ```text
//! PAPERSIM_SCALE_SIZES=100000 PAPERSIM_SCALE_DTYPES=f32 PAPERSIM_SCALE_RUNS=2 cargo bench --bench scale
//! PAPERSIM_SERVE_PAPERS=100000 cargo bench --bench serve
//! PAPERSIM_SERVE_GRAPH=stored PAPERSIM_SERVE_PAPERS=100000 cargo bench --bench serve
//! PAPERSIM_SERVE_CLIENTS=2 PAPERSIM_SERVE_GRAPH=stored cargo bench --bench serve
//! PAPERSIM_SERVE_ARGS="--query-batch 1" PAPERSIM_SERVE_GRAPH=stored cargo bench --bench serve
//! PAPERSIM_BIN=/path/to/other/papersim PAPERSIM_SERVE_GRAPH=stored cargo bench --bench serve
//! ```
//!
//! With `PAPERSIM_SERVE_GRAPH=stored` the server holds a stored HNSW graph: the first such run
//! stores one (`index rebuild --graph stored`, timed) in a copy kept beside the scale
//! benchmark's library (`...-graph`), and every run serves a copy of that, so that runs
//! compared back to back search the same graph. `PAPERSIM_SERVE_ARGS` adds options to `serve`;
//! `PAPERSIM_BIN` serves with another build (an older one, to compare).
//! `PAPERSIM_SERVE_MIX=text` makes every request a dense `query` (the encoder under load).
//!
//! Each client keeps one connection (an agent) and cycles through the endpoints: `similar` of
//! a random paper, `papers/{id}`, `info`, a lexical `query` of a title's words, and one dense
//! `query` (which embeds its text) in every ten requests. It prints p50 and p99 latency per
//! endpoint, requests per second and errors (any status but 200), with the CPU and its flags,
//! and writes the same as JSON to `<target>/bench-serve.json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

mod common;
use common::{cache_dir, quantile, target_dir};

/// Concurrent clients by default (the issue's figure); `PAPERSIM_SERVE_CLIENTS` sets another
/// count, within [`CLIENT_RANGE`], to see how latency grows with the queue.
const CLIENTS: usize = 16;
/// At least one client; at most 256, past which the benchmark measures its own threads more
/// than the server.
const CLIENT_RANGE: std::ops::RangeInclusive<usize> = 1..=256;
const SECONDS: u64 = 30;
/// When the concurrent ingest starts, after the clients.
const INGEST_AFTER: Duration = Duration::from_secs(5);

fn binary() -> Result<PathBuf> {
    let bin = std::env::var_os("PAPERSIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_papersim")));
    ensure!(bin.is_file(), "no papersim binary at {}", bin.display());
    Ok(bin)
}

/// The scale benchmark's cached f32 library of `n` papers.
fn cached_library(n: usize) -> Result<PathBuf> {
    let prefix = format!("scale-{n}-v");
    let cache = cache_dir();
    let found = std::fs::read_dir(&cache)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|name| {
            name.starts_with(&prefix) && name.ends_with(".ingest.json") && !name.contains("-f16")
        })
        .map(|name| cache.join(name.trim_end_matches(".ingest.json")))
        .find(|lib| lib.join("manifest.json").is_file());
    match found {
        Some(lib) => Ok(lib),
        None => bail!(
            "no library of {n} papers in {}: build it first with \
             `PAPERSIM_SCALE_SIZES={n} PAPERSIM_SCALE_DTYPES=f32 PAPERSIM_SCALE_RUNS=2 cargo bench --bench scale`",
            cache.display()
        ),
    }
}

/// The id the scale benchmark gives generated paper `i` (`benches/scale.rs`, `paper_id`).
fn paper_id(i: usize) -> String {
    format!("99{:02}.{:05}", i / 100_000, i % 100_000)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// `copy_dir` of a library with its folders (a stored graph is one).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    copy_dir(from, to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// A tiny xorshift, so that clients pick papers without a dependency.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[derive(Default)]
struct Tally {
    times: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

const ENDPOINTS: [&str; 5] = ["similar", "paper", "info", "query lexical", "query dense"];

fn cpu() -> (String, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |k: &str| {
        info.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let flags: Vec<String> = field("flags")
        .split(' ')
        .filter(|f| ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl"].contains(f))
        .map(str::to_string)
        .collect();
    (field("model name"), flags.join(" "))
}

fn main() -> Result<()> {
    // `cargo test --benches` runs benches once in test mode: nothing to do there.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return Ok(());
    }
    let n: usize = std::env::var("PAPERSIM_SERVE_PAPERS")
        .unwrap_or_else(|_| "100000".into())
        .replace('_', "")
        .parse()
        .context("PAPERSIM_SERVE_PAPERS must be a number of papers")?;
    ensure!(
        (10..=2_000_000).contains(&n),
        "PAPERSIM_SERVE_PAPERS must be 10 to 2,000,000"
    );
    let client_count: usize = match std::env::var("PAPERSIM_SERVE_CLIENTS") {
        Ok(v) => v
            .parse()
            .context("PAPERSIM_SERVE_CLIENTS must be a number of clients")?,
        Err(_) => CLIENTS,
    };
    ensure!(
        CLIENT_RANGE.contains(&client_count),
        "PAPERSIM_SERVE_CLIENTS must be {} to {}",
        CLIENT_RANGE.start(),
        CLIENT_RANGE.end()
    );
    let bin = binary()?;
    let source = cached_library(n)?;
    let tmp = tempfile::Builder::new()
        .prefix("serve-bench-")
        .tempdir_in(cache_dir())?;
    let lib = tmp.path().join("library");
    // PAPERSIM_SERVE_GRAPH=stored: the copy stores its HNSW graph, which the server then holds.
    // The library with its graph is kept beside the scale benchmark's, so that runs compared
    // back to back (another binary, other server options) serve the same graph.
    let graph = std::env::var("PAPERSIM_SERVE_GRAPH").unwrap_or_default() == "stored";
    if graph {
        let with_graph = PathBuf::from(format!("{}-graph", source.display()));
        if !with_graph.join("manifest.json").is_file() {
            let building = PathBuf::from(format!("{}-graph.partial", source.display()));
            let _ = std::fs::remove_dir_all(&building);
            copy_dir(&source, &building)?;
            let t0 = Instant::now();
            let o = Command::new(&bin)
                .args([
                    "--library",
                    building.to_str().context("library path")?,
                    "-q",
                    "index",
                    "rebuild",
                    "--graph",
                    "stored",
                ])
                .output()?;
            ensure!(
                o.status.success(),
                "index rebuild failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            eprintln!(
                "stored the HNSW graph in {:.1} s (kept in {})",
                t0.elapsed().as_secs_f64(),
                with_graph.display()
            );
            std::fs::rename(&building, &with_graph)?;
        }
        copy_tree(&with_graph, &lib)?;
    } else {
        copy_dir(&source, &lib)?;
    }
    // PAPERSIM_SERVE_ARGS: more options for `papersim serve` (such as `--query-batch 1`),
    // separated by spaces.
    let serve_args: Vec<String> = std::env::var("PAPERSIM_SERVE_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();

    let mut server = Command::new(&bin)
        .args([
            "--library",
            lib.to_str().context("library path")?,
            "-q",
            "serve",
            "--addr",
            "127.0.0.1:0",
        ])
        .args(&serve_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr = line
        .split("http://")
        .nth(1)
        .with_context(|| format!("no address in {line:?}"))?
        .trim()
        .trim_end_matches('/')
        .to_string();
    let base = format!("http://{addr}");
    let agent = || {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        )
    };
    // Warm-up: the encoder loads on the first dense query.
    let warm = agent()
        .get(&format!("{base}/api/query?q=warm%20up&k=10"))
        .call()?;
    ensure!(
        warm.status() == 200,
        "warm-up query failed: {}",
        warm.status()
    );
    let title_words: Vec<String> = {
        let mut a = agent()
            .get(&format!("{base}/api/papers/{}", paper_id(0)))
            .call()?;
        let v: Value = serde_json::from_str(&a.body_mut().read_to_string()?)?;
        let title = v["title"]
            .as_str()
            .context("paper 0 has no title")?
            .to_string();
        // Words the lexical index holds (no stop words such as "The", which it refuses).
        let words: Vec<String> = title
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 4)
            .take(4)
            .map(str::to_string)
            .collect();
        ensure!(
            !words.is_empty(),
            "paper 0's title {title:?} has no word to search for"
        );
        words
    };

    // PAPERSIM_SERVE_MIX=text: every request a dense `query` (readers searching at once).
    let text_only = match std::env::var("PAPERSIM_SERVE_MIX").as_deref() {
        Ok("text") => true,
        Ok("mixed") | Err(_) => false,
        Ok(other) => {
            bail!("PAPERSIM_SERVE_MIX must be `mixed` (the default) or `text`, got {other:?}")
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..client_count)
        .map(|c| {
            let stop = stop.clone();
            let base = base.clone();
            let agent = agent();
            let words = title_words.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((c as u64 + 1) * 0x1000_0001));
                let mut tallies: Vec<Tally> =
                    (0..ENDPOINTS.len()).map(|_| Tally::default()).collect();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let which = if text_only || i % 10 == 9 {
                        4
                    } else {
                        [0, 0, 1, 2, 3][i % 5]
                    };
                    i += 1;
                    let url = match which {
                        0 => format!("{base}/api/similar/{}?k=10", paper_id(rng.below(n))),
                        1 => format!("{base}/api/papers/{}", paper_id(rng.below(n))),
                        2 => format!("{base}/api/info"),
                        3 => format!(
                            "{base}/api/query?mode=lexical&k=10&q={}",
                            words[..1 + rng.below(words.len())].join("%20")
                        ),
                        _ => format!(
                            "{base}/api/query?k=10&q={}%20{}",
                            words[rng.below(words.len())],
                            rng.below(1000)
                        ),
                    };
                    let t0 = Instant::now();
                    let result = agent.get(&url).call();
                    let elapsed = t0.elapsed();
                    let tally = &mut tallies[which];
                    match result {
                        Ok(mut r) if r.status() == 200 => {
                            let _ = r.body_mut().read_to_vec();
                            tally.times.push(elapsed);
                        }
                        Ok(mut r) => {
                            tally.errors += 1;
                            let body = r.body_mut().read_to_string().unwrap_or_default();
                            tally
                                .first_error
                                .get_or_insert(format!("{url}: {} {body}", r.status()));
                        }
                        Err(e) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert(format!("{url}: {e}"));
                        }
                    }
                }
                tallies
            })
        })
        .collect();

    // One ingest by another process while the clients run: a digest of a few new papers.
    std::thread::sleep(INGEST_AFTER);
    let digest = tmp.path().join("hf_2026-12-04.txt");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/digests/hf/hf_2026-03-02.txt");
    std::fs::copy(&fixture, &digest)?;
    let ingest_start = started.elapsed();
    let ingest = Command::new(&bin)
        .args([
            "--library",
            lib.to_str().context("library path")?,
            "-q",
            "ingest",
            digest.to_str().context("digest")?,
            "--wait",
            "--format",
            "json",
        ])
        .output()?;
    let ingest_end = started.elapsed();
    ensure!(
        ingest.status.success(),
        "the concurrent ingest failed: {}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    let report: Value = serde_json::from_slice(&ingest.stdout)?;

    let rest = Duration::from_secs(SECONDS).saturating_sub(started.elapsed());
    std::thread::sleep(rest);
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Tally> = (0..ENDPOINTS.len()).map(|_| Tally::default()).collect();
    for c in clients {
        for (i, t) in c.join().expect("a client panicked").into_iter().enumerate() {
            all[i].times.extend(t.times);
            all[i].errors += t.errors;
            if all[i].first_error.is_none() {
                all[i].first_error = t.first_error;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let info: Value = serde_json::from_str(
        &agent()
            .get(&format!("{base}/api/info"))
            .call()?
            .body_mut()
            .read_to_string()?,
    )?;
    // SAFETY: kill(2) on our own child, not yet waited for.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let status = server.wait()?;

    let (model, flags) = cpu();
    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!(
        "\n## papersim serve under load: {n} papers, {client_count} clients, {wall:.0} s, graph {}\n",
        if graph {
            "stored (held by the server)"
        } else {
            "not stored (exact scans)"
        }
    );
    println!(
        "binary {}; serve options: {serve_args:?}; requests: {}",
        bin.display(),
        if text_only {
            "dense `query` only"
        } else {
            "the mix"
        }
    );
    println!("CPU: {model} ({cores} logical cores; flags: {flags})\n");
    println!("| endpoint | requests | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    let (mut total, mut errors) = (0, 0);
    for (i, t) in all.iter_mut().enumerate() {
        t.times.sort();
        let (p50, p99) = if t.times.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (
                quantile(&t.times, 0.5).as_secs_f64() * 1e3,
                quantile(&t.times, 0.99).as_secs_f64() * 1e3,
            )
        };
        total += t.times.len() + t.errors;
        errors += t.errors;
        println!(
            "| {} | {} | {p50:.1} | {p99:.1} | {} |",
            ENDPOINTS[i],
            t.times.len() + t.errors,
            t.errors
        );
        if let Some(e) = &t.first_error {
            println!("|  first error: {e} | | | | |");
        }
        rows.push(json!({"endpoint": ENDPOINTS[i], "requests": t.times.len() + t.errors, "p50_ms": p50, "p99_ms": p99, "errors": t.errors}));
    }
    println!(
        "\n{total} requests, {:.0} requests/s, {errors} errors; the concurrent ingest ran from {:.1} s to {:.1} s and added {} papers (generation {} served at the end, {} papers); server exit: {status}",
        total as f64 / wall,
        ingest_start.as_secs_f64(),
        ingest_end.as_secs_f64(),
        report["added"],
        info["generation"],
        info["papers"],
    );
    let out = json!({"papers": n, "clients": client_count, "binary": bin.display().to_string(), "serve_args": serve_args, "mix": if text_only { "text" } else { "mixed" }, "seconds": wall, "requests": total, "requests_per_s": total as f64 / wall, "errors": errors, "endpoints": rows, "cpu": model, "flags": flags, "cores": cores, "ingest": {"start_s": ingest_start.as_secs_f64(), "end_s": ingest_end.as_secs_f64(), "added": report["added"]}, "papers_after": info["papers"]});
    let path = target_dir().join("bench-serve.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&out)?)?;
    println!("wrote {}", path.display());
    ensure!(
        info["papers"].as_u64() > Some(n as u64),
        "the server did not pick up the ingest"
    );
    Ok(())
}
