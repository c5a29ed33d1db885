//! The library at scale, through the real binary: for libraries of 10,000, 100,000 and
//! 1,000,000 papers, what a user pays for each command run as a fresh process (issue #13).
//!
//! For each size N the benchmark
//! 1. generates N papers from the real model's embeddings of the real papers in
//!    `tests/fixtures/` (see `common`: every real paper once, then *topic* variants: a paper
//!    mixed with two of its nearest real neighbours plus a little noise). Each paper has a
//!    unique id (arXiv-shaped, `99XX.NNNNN`) and title (its base's title + ` [variant i]`), and
//!    its base's abstract, authors and categories, so records have realistic length;
//! 2. writes them as JSON Lines digests, the vectors as a `.npy` matrix and its `embed` sidecar
//!    naming each row, and builds the library with `papersim ingest --embeddings` (timed). The
//!    library is cached under `<target>/bench-cache/scale-<N>-v<generator>-f<format>-<data>/`,
//!    keyed on N, this generator's version, the library format the binary writes and the
//!    embedded fixtures, so a rerun skips the build unless one of them changed;
//! 3. runs `info`, `similar <id>`, `query "<title of a held-out paper>"` and `recommend --like
//!    <id> --like <id>` `PAPERSIM_SCALE_RUNS` times each (default 20), each run a fresh
//!    process with another paper or query, after one untimed warm-up run: p50 and p95 wall
//!    time (spawn to exit) and peak RSS (the child's `ru_maxrss` from `wait4`, max over runs;
//!    a small spawner process starts each run, see [`spawner`], so the figure is papersim's
//!    own, measured against the floor `true` shows started the same way). The page
//!    cache is warm: these are cold *processes*, not a cold disk;
//! 4. runs `similar` and `query` again with `--exact` on the same papers and queries: recall@10
//!    of the default search against the exact f32 scan (both in the default hybrid ranking);
//! 5. measures bytes on disk per paper (the library directory's files / N), and per file;
//! 6. times `embed --lines` of one line without a library (loading the model and embedding one
//!    text): the part of `query` that `similar` does not pay;
//! 7. builds the same papers again as an f16 library (`ingest --embeddings ... --vector-dtype
//!    f16`, cached as `scale-<N>-...-f16/`) and measures it the same way, its recall@10 taken
//!    against the exact f32 scan of the f32 library (the same papers and queries).
//!    `PAPERSIM_SCALE_DTYPES` picks the variants (default `f32,f16`; f16 is measured only
//!    beside f32).
//!
//! It prints a markdown table, the CPU and its SIMD flags and the date, marks each figure
//! against the issue's goals (met / missed), and writes the same as JSON to
//! `<target>/bench-scale.json`.
//!
//! ```text
//! scripts/bench-scale.sh 10000 100000                  # builds the release binary, then runs
//! PAPERSIM_SCALE_SIZES=10_000 PAPERSIM_SCALE_RUNS=5 cargo bench --bench scale
//! ```
//!
//! The binary is the release build cargo makes for this benchmark (`<target>/release/papersim`,
//! the same as `cargo build --release`), or `PAPERSIM_BIN`. The default model must be
//! provisioned (`PAPERSIM_MODELS`): the benchmark embeds the fixtures with it once, and `query`
//! embeds its text. Building a 1,000,000-paper library writes about 3 GB of inputs and takes
//! long on a small machine (the HNSW build); it is done once per format.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use papersim::digest::{self, ParseOptions};
use papersim::library::export::{self, RowSource, SidecarHeader, SidecarRow, SIDECAR_FORMAT};
use papersim::library::manifest::ModelInfo;
use papersim::library::{npy, VectorDtype};
use papersim::paper::text_sha256;
use serde::Serialize;
use serde_json::Value;

mod common;
use common::{quantile, Mix, RealSet, Rng, Variants};

/// Bump when the generated papers or vectors change, so cached libraries are rebuilt.
const GENERATOR_VERSION: u32 = 1;
/// The seed of the generated vectors.
const SEED: u64 = 2024;
const K: usize = 10;
const K_ARG: &str = "10";
/// Papers per digest file: a digest is read whole (papersim refuses one over 1 GiB).
const SHARD: usize = 50_000;
const SIZES: std::ops::RangeInclusive<usize> = 10..=2_000_000;
const RUNS: std::ops::RangeInclusive<usize> = 2..=1000;

/// The issue's goals on this machine.
const INFO_MS: f64 = 20.0;
const SIMILAR_MS_100K: f64 = 50.0;
const SIMILAR_MS_1M: f64 = 250.0;
const MIN_RECALL: f64 = 0.98;
const QUERY_OVER_SIMILAR_MS: f64 = 100.0;
/// 2.5 KiB.
const BYTES_PER_PAPER: f64 = 2560.0;

/// A count from the environment: digits with optional `_`, within `range`.
fn parse_count(
    var: &str,
    raw: &str,
    range: &std::ops::RangeInclusive<usize>,
    why: &str,
) -> Result<usize> {
    let n: usize = raw.trim().replace('_', "").parse().with_context(|| {
        format!("{var}: `{raw}` is not a whole number (digits, `_` allowed between them)")
    })?;
    if !range.contains(&n) {
        bail!(
            "{var}: {n} is outside {}..={}: {why}",
            range.start(),
            range.end()
        );
    }
    Ok(n)
}

fn sizes_from_env() -> Result<Vec<usize>> {
    let var = "PAPERSIM_SCALE_SIZES";
    let raw = std::env::var(var).unwrap_or_else(|_| "10000,100000,1000000".into());
    let sizes = raw
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            parse_count(
                var,
                s,
                &SIZES,
                "recall@10 needs at least 10 papers, and beyond 2,000,000 the import's matrix \
                 (1.5 GB per million papers) and the graph build outgrow a small machine",
            )
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(
        !sizes.is_empty(),
        "{var}: no sizes given (e.g. 10000,100000)"
    );
    Ok(sizes)
}

/// Whether to measure f16 libraries beside the f32 ones (`PAPERSIM_SCALE_DTYPES`).
fn f16_from_env() -> Result<bool> {
    let var = "PAPERSIM_SCALE_DTYPES";
    let raw = std::env::var(var).unwrap_or_else(|_| "f32,f16".into());
    let mut f16 = false;
    for d in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match d.parse::<VectorDtype>() {
            Ok(VectorDtype::F16) => f16 = true,
            Ok(VectorDtype::F32) => {}
            Err(e) => bail!("{var}: {e}"),
        }
    }
    Ok(f16)
}

fn runs_from_env() -> Result<usize> {
    let var = "PAPERSIM_SCALE_RUNS";
    match std::env::var(var) {
        Err(_) => Ok(20),
        Ok(raw) => parse_count(
            var,
            &raw,
            &RUNS,
            "a p95 needs at least 2 runs, and over 1,000 cold processes per command take hours \
             at a million papers",
        ),
    }
}

/// The papersim binary under test.
fn binary() -> Result<PathBuf> {
    let bin = std::env::var_os("PAPERSIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_papersim")));
    ensure!(
        bin.is_file(),
        "no papersim binary at {}: build it with `cargo build --release` (or run \
         scripts/bench-scale.sh), or point PAPERSIM_BIN at one",
        bin.display()
    );
    Ok(bin)
}

/// The id of generated paper `i`: shaped like a new-style arXiv id (so that ids take the room
/// real ones do), in months no arXiv paper has.
fn paper_id(i: usize) -> String {
    format!("99{:02}.{:05}", i / 100_000, i % 100_000)
}

/// One finished run of the binary.
struct Ran {
    stdout: String,
    /// From spawn to exit.
    wall: Duration,
    /// The child's peak resident set, in KiB.
    max_rss_kib: u64,
}

/// Waits for child `pid` and returns its wait status and resource usage.
fn wait4(pid: u32) -> std::io::Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data, for which all zeros is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types.
        let got = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if got == pid as libc::pid_t {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Set for the benchmark re-executed as [`spawner`].
const SPAWNER_ENV: &str = "PAPERSIM_SCALE_SPAWNER";
/// Starts the spawner's report: the last line of the stderr a run returns.
const SPAWNER_MARK: &str = "papersim-scale-spawner:";

/// The spawner: runs its arguments (a binary and its arguments) with this process's stdio,
/// reaps it with `wait4` and appends `<mark> <wall ns> <ru_maxrss KiB> <wait status>` to
/// stderr.
///
/// Why a process in between: Linux carries the peak RSS of the memory a process had before
/// `execve` into its `ru_maxrss` (at `fork` the copy holds the parent's resident pages), so a
/// papersim started by this benchmark (the model and the real vectors loaded: hundreds of MiB)
/// would report at least that. Started by this small process, it reports its own peak (plus
/// the few MiB the spawner holds).
fn spawner() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let bin = args.next().context("the spawner needs a binary to run")?;
    let start = Instant::now();
    let child = Command::new(&bin)
        .args(args)
        .env_remove(SPAWNER_ENV)
        .spawn()
        .with_context(|| format!("starting {}", bin.to_string_lossy()))?;
    let (status, usage) = wait4(child.id()).context("waiting for papersim")?;
    let wall = start.elapsed();
    eprintln!(
        "\n{SPAWNER_MARK} {} {} {status}",
        wall.as_nanos(),
        usage.ru_maxrss
    );
    Ok(())
}

/// Runs `bin args` as a fresh process (started by [`spawner`], for its own peak RSS). A
/// failure is an error quoting the command and its stderr.
fn run(bin: &Path, args: &[&str]) -> Result<Ran> {
    let shown = || format!("papersim {}", args.join(" "));
    let output = Command::new(std::env::current_exe()?)
        .arg(bin)
        .args(args)
        .env(SPAWNER_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", shown()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (stderr, report) = stderr
        .rsplit_once(SPAWNER_MARK)
        .with_context(|| format!("`{}`: the spawner failed: {stderr}", shown()))?;
    let fields: Vec<i64> = report
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("the spawner's report `{}`", report.trim()))?;
    let &[wall_ns, max_rss_kib, status] = fields.as_slice() else {
        bail!("the spawner's report `{}` is not 3 numbers", report.trim());
    };
    let status = status as i32;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let how = if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exit code {}", libc::WEXITSTATUS(status))
        };
        bail!("`{}` failed ({how}):\n{}", shown(), stderr.trim_end());
    }
    Ok(Ran {
        stdout: String::from_utf8(output.stdout)
            .with_context(|| format!("`{}` printed invalid UTF-8", shown()))?,
        wall: Duration::from_nanos(wall_ns as u64),
        max_rss_kib: max_rss_kib.max(0) as u64,
    })
}

/// The peak RSS, in MiB, of `true` started as papersim is.
fn rss_floor() -> Result<f64> {
    let ran = run(Path::new("/bin/true"), &[])?;
    Ok(ran.max_rss_kib as f64 / 1024.0)
}

/// `papersim info --format json` of `lib`.
fn info_json(bin: &Path, lib: &Path) -> Result<Value> {
    let ran = run(
        bin,
        &[
            "-q",
            "--library",
            path_str(lib)?,
            "info",
            "--format",
            "json",
        ],
    )?;
    serde_json::from_str(&ran.stdout).context("`papersim info --format json` printed no JSON")
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// What `papersim ingest --embeddings` reads: digests, and a matrix with its sidecar.
struct Inputs {
    digests: Vec<PathBuf>,
    matrix: PathBuf,
}

/// Writes `n` generated papers into `dir` (which must not exist) as digests of [`SHARD`]
/// papers, their vectors as `vectors.npy` and its sidecar. Streams: at most one digest's
/// papers are held at once, whatever `n`.
fn write_inputs(real: &RealSet, model: &ModelInfo, n: usize, dir: &Path) -> Result<Inputs> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let base_index = real.base_index()?;
    let mut variants = Variants::new(real, &base_index, Mix::Topic, SEED)?;
    let matrix = dir.join("vectors.npy");
    let sidecar = export::sidecar_path(&matrix)?;
    let create = |path: &Path| -> Result<BufWriter<File>> {
        Ok(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    let mut vectors = create(&matrix)?;
    // The header alone: the matrix's rows are streamed after it.
    vectors.write_all(&npy::encode_f32(&[], n, real.dim))?;
    let mut rows = create(&sidecar)?;
    let header = SidecarHeader {
        papersim_sidecar: SIDECAR_FORMAT,
        model: model.clone(),
        rows: n,
    };
    serde_json::to_writer(&mut rows, &header)?;
    rows.write_all(b"\n")?;

    let mut digests = Vec::new();
    let mut row = 0;
    for (shard, start) in (0..n).step_by(SHARD).enumerate() {
        let path = dir.join(format!("digest-{shard:03}.jsonl"));
        let mut out = create(&path)?;
        for i in start..n.min(start + SHARD) {
            let (base, v) = variants.next_vector();
            for x in &v {
                vectors.write_all(&x.to_le_bytes())?;
            }
            let p = &real.papers[base];
            let line = serde_json::json!({
                "id": paper_id(i),
                "title": format!("{} [variant {i}]", p.title),
                "abstract": p.abstract_text,
                "date": p.date,
                "url": p.url,
                "authors": p.authors,
                "categories": p.categories,
            });
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        drop(out);
        // Each row named as `papersim embed` names it: from the digest as papersim reads it.
        for d in digest::read_path(&path, &ParseOptions::default())? {
            for p in &d.papers {
                ensure!(
                    p.id() == paper_id(row),
                    "{}: paper {} reads back as id {}",
                    d.source,
                    paper_id(row),
                    p.id()
                );
                let name = SidecarRow {
                    row,
                    source: RowSource::Paper {
                        id: p.id(),
                        title: p.title.clone(),
                        digest: d.source.clone(),
                        text_sha256: Some(text_sha256(&p.embedding_text())),
                    },
                };
                serde_json::to_writer(&mut rows, &name)?;
                rows.write_all(b"\n")?;
                row += 1;
            }
        }
        digests.push(path);
    }
    ensure!(row == n, "the digests read back {row} papers, {n} written");
    vectors
        .flush()
        .with_context(|| format!("writing {}", matrix.display()))?;
    rows.flush()
        .with_context(|| format!("writing {}", sidecar.display()))?;
    Ok(Inputs { digests, matrix })
}

/// How long `papersim ingest --embeddings` took to build a library, as recorded beside it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct IngestStats {
    papers: usize,
    seconds: f64,
    peak_rss_mib: f64,
    /// Whether this run found the library built by an earlier one.
    #[serde(default)]
    cached: bool,
}

/// Ingests `inputs` into a new library at `lib` through the binary, its vectors stored as
/// `dtype`; checks every paper was added.
fn ingest(
    bin: &Path,
    lib: &Path,
    inputs: &Inputs,
    n: usize,
    dtype: VectorDtype,
) -> Result<IngestStats> {
    let mut args = vec!["-q", "--library", path_str(lib)?, "ingest"];
    for d in &inputs.digests {
        args.push(path_str(d)?);
    }
    args.extend([
        "--embeddings",
        path_str(&inputs.matrix)?,
        "--format",
        "json",
    ]);
    if dtype == VectorDtype::F16 {
        args.extend(["--vector-dtype", "f16"]);
    }
    let ran = run(bin, &args)?;
    let report: Value = serde_json::from_str(&ran.stdout)
        .context("`papersim ingest --format json` printed no JSON")?;
    ensure!(
        report["added"] == n && report["papers_total"] == n,
        "the ingest of {n} generated papers did not add each once: {report}"
    );
    Ok(IngestStats {
        papers: n,
        seconds: ran.wall.as_secs_f64(),
        peak_rss_mib: ran.max_rss_kib as f64 / 1024.0,
        cached: false,
    })
}

/// The library format version the binary writes: read from a 10-paper library built for the
/// purpose (which also tries the whole build path before a large build).
fn probe_format_version(bin: &Path, real: &RealSet, model: &ModelInfo) -> Result<u64> {
    let scratch = tempfile::Builder::new()
        .prefix("scale-probe-")
        .tempdir_in(common::cache_dir())?;
    let inputs = write_inputs(real, model, 10, &scratch.path().join("input"))?;
    let lib = scratch.path().join("library");
    ingest(bin, &lib, &inputs, 10, VectorDtype::F32)?;
    info_json(bin, &lib)?["format_version"]
        .as_u64()
        .context("`papersim info --format json` gives no format_version")
}

/// The library of `n` generated papers, its vectors stored as `dtype`: the cached one when it
/// was built by this generator in this format, else built now. Returns its directory and how
/// its ingest went.
fn library(
    bin: &Path,
    real: &RealSet,
    model: &ModelInfo,
    n: usize,
    format_version: u64,
    dtype: VectorDtype,
) -> Result<(PathBuf, IngestStats)> {
    let name = format!(
        "scale-{n}-v{GENERATOR_VERSION}-f{format_version}-{}{}",
        &real.key[..8],
        if dtype == VectorDtype::F16 {
            "-f16"
        } else {
            ""
        }
    );
    let cache = common::cache_dir();
    let lib = cache.join(&name);
    // Written last: a library without it is a build that did not finish.
    let marker = cache.join(format!("{name}.ingest.json"));
    let stats: Option<IngestStats> = fs::read(&marker)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(mut stats) = stats {
        let info = info_json(bin, &lib).ok();
        if info.as_ref().is_some_and(|i| {
            i["papers"] == n && i["format_version"].as_u64() == Some(format_version)
        }) {
            eprintln!(
                "{n} papers: using the library built earlier in {}",
                lib.display()
            );
            stats.cached = true;
            return Ok((lib, stats));
        }
    }
    for stale in [&lib, &cache.join(format!("{name}.input"))] {
        if stale.exists() {
            fs::remove_dir_all(stale).with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    let _ = fs::remove_file(&marker);
    let input_dir = cache.join(format!("{name}.input"));
    eprintln!(
        "{n} papers: generating digests and vectors in {}",
        input_dir.display()
    );
    let start = Instant::now();
    let inputs = write_inputs(real, model, n, &input_dir)?;
    eprintln!(
        "{n} papers: generated in {:.1?}; ingesting into {}",
        start.elapsed(),
        lib.display()
    );
    let stats = ingest(bin, &lib, &inputs, n, dtype)?;
    eprintln!(
        "{n} papers: ingested in {:.1} s (peak RSS {:.0} MiB)",
        stats.seconds, stats.peak_rss_mib
    );
    // `PAPERSIM_SCALE_KEEP_INPUTS=1` keeps the digests and matrix for another store to ingest
    // the same papers (scripts/bench-qdrant.sh).
    if std::env::var_os("PAPERSIM_SCALE_KEEP_INPUTS").is_none() {
        fs::remove_dir_all(&input_dir)
            .with_context(|| format!("removing {}", input_dir.display()))?;
    }
    papersim::directory::write_atomically(&marker, &serde_json::to_vec_pretty(&stats)?)?;
    Ok((lib, stats))
}

/// Bytes per paper of each entry of the library directory (a file, or a directory's files),
/// largest first: where the bytes go, whatever the format names its files.
fn bytes_per_entry(lib: &Path, n: usize) -> Result<Vec<(String, f64)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(lib).with_context(|| format!("reading {}", lib.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let bytes = if meta.is_dir() {
            size_on_disk(&entry.path())?
        } else {
            meta.len()
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        entries.push((name, bytes as f64 / n as f64));
    }
    entries.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(entries)
}

/// Bytes of the regular files under `dir`.
fn size_on_disk(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += size_on_disk(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Latencies of one command over its runs.
#[derive(Debug, Clone, Serialize)]
struct Timing {
    runs: usize,
    p50_ms: f64,
    p95_ms: f64,
    peak_rss_mib: f64,
}

impl Timing {
    fn of(runs: &[Ran]) -> Timing {
        let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        walls.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Timing {
            runs: runs.len(),
            p50_ms: ms(quantile(&walls, 0.5)),
            p95_ms: ms(quantile(&walls, 0.95)),
            peak_rss_mib: runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        }
    }
}

/// The ids of a `--format json` ranking.
fn result_ids(ran: &Ran) -> Result<Vec<String>> {
    let doc: Value = serde_json::from_str(&ran.stdout).context("a ranking printed no JSON")?;
    Ok(doc["results"]
        .as_array()
        .context("a ranking's JSON has no `results`")?
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect())
}

/// The share of `exact`'s results that `got` found too.
fn recall(got: &[String], exact: &[String]) -> f64 {
    if exact.is_empty() {
        return 1.0;
    }
    exact.iter().filter(|id| got.contains(id)).count() as f64 / exact.len() as f64
}

/// A goal checked: `None` where the issue sets none at this size.
#[derive(Debug, Clone, Serialize)]
struct Goal {
    goal: String,
    met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
struct SizeResult {
    papers: usize,
    /// How the library stores its vectors (`f32` or `f16`).
    vector_dtype: String,
    library: PathBuf,
    bytes_on_disk: u64,
    bytes_per_paper: f64,
    /// Each entry of the library directory, in bytes per paper, largest first.
    bytes_per_paper_by_entry: Vec<(String, f64)>,
    ingest: IngestStats,
    info: Timing,
    similar: Timing,
    similar_exact: Timing,
    query: Timing,
    query_exact: Timing,
    recommend: Timing,
    /// `embed --lines` of one line, without a library: what loading the model and embedding a
    /// query costs a fresh process (the part of `query` that `similar` does not pay).
    embed_one_line: Timing,
    /// Of the default search against `--exact` (of the f32 library, for an f16 one), averaged
    /// over the runs.
    similar_recall_at_10: f64,
    query_recall_at_10: f64,
    goals: Goals,
    /// The `--exact` top 10 of each run: the reference an f16 library's recall is taken
    /// against.
    #[serde(skip)]
    exact_ids: ExactIds,
}

/// The `--exact` top-10 ids of each timed run of `similar` and `query`.
#[derive(Debug, Clone, Default)]
struct ExactIds {
    similar: Vec<Vec<String>>,
    query: Vec<Vec<String>>,
}

/// What the goals are checked on.
struct Measured<'a> {
    papers: usize,
    info: &'a Timing,
    similar: &'a Timing,
    query: &'a Timing,
    similar_recall_at_10: f64,
    bytes_per_paper: f64,
}

#[derive(Debug, Clone, Serialize)]
struct Goals {
    info: Goal,
    similar: Goal,
    similar_recall: Goal,
    query: Goal,
    bytes_per_paper: Goal,
}

impl Goals {
    fn check(r: &Measured) -> Goals {
        let similar_ms = if r.papers <= 100_000 {
            Some(SIMILAR_MS_100K)
        } else if r.papers <= 1_000_000 {
            Some(SIMILAR_MS_1M)
        } else {
            None
        };
        Goals {
            info: Goal {
                goal: format!("info p50 <= {INFO_MS} ms"),
                met: Some(r.info.p50_ms <= INFO_MS),
            },
            similar: match similar_ms {
                Some(ms) => Goal {
                    goal: format!("similar p50 <= {ms} ms"),
                    met: Some(r.similar.p50_ms <= ms),
                },
                None => Goal {
                    goal: "none set above 1,000,000 papers".into(),
                    met: None,
                },
            },
            similar_recall: Goal {
                goal: format!("similar recall@10 >= {MIN_RECALL}"),
                met: Some(r.similar_recall_at_10 >= MIN_RECALL),
            },
            query: Goal {
                goal: format!("query p50 <= similar p50 + {QUERY_OVER_SIMILAR_MS} ms"),
                met: Some(r.query.p50_ms <= r.similar.p50_ms + QUERY_OVER_SIMILAR_MS),
            },
            bytes_per_paper: Goal {
                goal: format!("<= {BYTES_PER_PAPER} bytes (2.5 KiB) per paper"),
                met: Some(r.bytes_per_paper <= BYTES_PER_PAPER),
            },
        }
    }
}

/// `papersim embed --lines` of a one-line file (a held-out title) into a scratch matrix,
/// `runs` times after a warm-up run.
fn embed_one_line(bin: &Path, real: &RealSet, runs: usize) -> Result<Vec<Ran>> {
    let scratch = tempfile::Builder::new()
        .prefix("scale-embed-")
        .tempdir_in(common::cache_dir())?;
    let text = scratch.path().join("query.txt");
    fs::write(&text, format!("{}\n", real.papers[real.held_out[0]].title))?;
    let matrix = scratch.path().join("query.npy");
    let args = [
        "-q",
        "embed",
        "--lines",
        path_str(&text)?,
        "-o",
        path_str(&matrix)?,
    ];
    run(bin, &args)?;
    (0..runs).map(|_| run(bin, &args)).collect()
}

/// Runs every command `runs` times against the library of `n` papers at `lib`, whose vectors
/// are stored as `dtype`. Recall is taken against `reference` (the f32 library's exact top
/// 10s, the same papers and queries) when given, else against this library's `--exact`.
#[allow(clippy::too_many_arguments)]
fn measure(
    bin: &Path,
    real: &RealSet,
    n: usize,
    lib: &Path,
    dtype: VectorDtype,
    ingest: IngestStats,
    runs: usize,
    reference: Option<&ExactIds>,
) -> Result<SizeResult> {
    let library = path_str(lib)?;
    let base = ["-q", "--library", library];
    let with =
        |args: &[&str]| -> Vec<String> { base.iter().chain(args).map(|s| s.to_string()).collect() };
    let go = |args: &[String]| -> Result<Ran> {
        run(bin, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let mut rng = Rng::new(SEED + n as u64);
    let mut id = || paper_id(rng.below(n));
    // Run 0 is the untimed warm-up; each run takes another paper or query.
    let similar_ids: Vec<String> = (0..=runs).map(|_| id()).collect();
    let liked: Vec<(String, String)> = (0..=runs).map(|_| (id(), id())).collect();
    let offset = rng.below(real.held_out.len());
    let queries: Vec<&str> = (0..=runs)
        .map(|r| {
            real.papers[real.held_out[(offset + r) % real.held_out.len()]]
                .title
                .as_str()
        })
        .collect();

    eprintln!("{n} papers, {dtype}: {runs} runs of each command (after a warm-up run)");
    let timed = |make: &dyn Fn(usize) -> Vec<String>| -> Result<Vec<Ran>> {
        go(&make(0))?;
        (1..=runs).map(|r| go(&make(r))).collect()
    };
    let info = timed(&|_| with(&["info"]))?;
    let recommend = timed(&|r| {
        let (a, b) = &liked[r];
        with(&[
            "recommend",
            "--like",
            a,
            "--like",
            b,
            "-k",
            K_ARG,
            "--format",
            "json",
        ])
    })?;
    // Each search, default then exact, on the same paper or text; recall against `against`'s
    // exact top 10 of the same run when given.
    type Paired = (Vec<Ran>, Vec<Ran>, f64, Vec<Vec<String>>);
    let paired = |make: &dyn Fn(usize, bool) -> Vec<String>,
                  against: Option<&Vec<Vec<String>>>|
     -> Result<Paired> {
        go(&make(0, false))?;
        go(&make(0, true))?;
        let (mut fast, mut exact, mut found, mut ids) = (Vec::new(), Vec::new(), 0.0, Vec::new());
        for r in 1..=runs {
            let f = go(&make(r, false))?;
            let e = go(&make(r, true))?;
            let e_ids = result_ids(&e)?;
            let want = match against {
                Some(reference) => reference
                    .get(r - 1)
                    .context("the f32 reference has fewer runs")?,
                None => &e_ids,
            };
            found += recall(&result_ids(&f)?, want);
            ids.push(e_ids);
            fast.push(f);
            exact.push(e);
        }
        Ok((fast, exact, found / runs as f64, ids))
    };
    let (similar, similar_exact, similar_recall, similar_ids_exact) = paired(
        &|r, exact| {
            let mut args = with(&["similar", &similar_ids[r], "-k", K_ARG, "--format", "json"]);
            if exact {
                args.push("--exact".into());
            }
            args
        },
        reference.map(|x| &x.similar),
    )?;
    let (query, query_exact, query_recall, query_ids_exact) = paired(
        &|r, exact| {
            let mut args = with(&["query", queries[r], "-k", K_ARG, "--format", "json"]);
            if exact {
                args.push("--exact".into());
            }
            args
        },
        reference.map(|x| &x.query),
    )?;
    let embed = embed_one_line(bin, real, runs)?;
    let bytes_on_disk = size_on_disk(lib)?;
    let bytes_per_paper = bytes_on_disk as f64 / n as f64;
    let (info, similar, query) = (Timing::of(&info), Timing::of(&similar), Timing::of(&query));
    let goals = Goals::check(&Measured {
        papers: n,
        info: &info,
        similar: &similar,
        query: &query,
        similar_recall_at_10: similar_recall,
        bytes_per_paper,
    });
    Ok(SizeResult {
        papers: n,
        vector_dtype: dtype.to_string(),
        library: lib.to_path_buf(),
        bytes_on_disk,
        bytes_per_paper,
        bytes_per_paper_by_entry: bytes_per_entry(lib, n)?,
        ingest,
        info,
        similar,
        similar_exact: Timing::of(&similar_exact),
        query,
        query_exact: Timing::of(&query_exact),
        recommend: Timing::of(&recommend),
        embed_one_line: Timing::of(&embed),
        similar_recall_at_10: similar_recall,
        query_recall_at_10: query_recall,
        goals,
        exact_ids: ExactIds {
            similar: similar_ids_exact,
            query: query_ids_exact,
        },
    })
}

/// The machine: CPU model, the SIMD extensions it has, logical cores.
#[derive(Debug, Clone, Serialize)]
struct Machine {
    cpu: String,
    simd_flags: Vec<String>,
    logical_cores: usize,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let flags = field("flags").unwrap_or_default();
        let have: Vec<&str> = flags.split_whitespace().collect();
        let simd_flags = [
            "sse4_2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512dq",
            "avx512bw",
            "avx512vl",
            "avx512_vnni",
            "avx512_bf16",
            "avx512_fp16",
            "amx_tile",
        ]
        .iter()
        .filter(|f| have.contains(f))
        .map(|f| f.to_string())
        .collect();
        Machine {
            cpu: field("model name").unwrap_or_else(|| "unknown CPU".into()),
            simd_flags,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    date: String,
    machine: Machine,
    binary: PathBuf,
    library_format_version: u64,
    /// The peak RSS `true` reports when started as papersim is: what the method adds.
    rss_floor_mib: f64,
    runs_per_command: usize,
    page_cache: &'static str,
    k: usize,
    sizes: Vec<SizeResult>,
}

fn ms(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn mark(goal: &Goal) -> &'static str {
    match goal.met {
        Some(true) => " (met)",
        Some(false) => " (missed)",
        None => "",
    }
}

fn table(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(
        "| papers | vectors | info p50 / p95 | similar p50 / p95 | query p50 / p95 | recommend p50 / p95 \
         | peak RSS | bytes/paper | recall@10 similar / query | ingest |\n",
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &report.sizes {
        let t = |t: &Timing| format!("{} / {} ms", ms(t.p50_ms), ms(t.p95_ms));
        let (peak_cmd, peak) = [
            ("info", &r.info),
            ("similar", &r.similar),
            ("query", &r.query),
            ("recommend", &r.recommend),
        ]
        .into_iter()
        .map(|(name, t)| (name, t.peak_rss_mib))
        .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
        out.push_str(&format!(
            "| {} | {} | {}{} | {}{} | {}{} | {} | {peak:.0} MiB ({peak_cmd}) | {:.0}{} | {:.3}{} / {:.3} | {:.1} s{} |\n",
            r.papers,
            r.vector_dtype,
            t(&r.info),
            mark(&r.goals.info),
            t(&r.similar),
            mark(&r.goals.similar),
            t(&r.query),
            mark(&r.goals.query),
            t(&r.recommend),
            r.bytes_per_paper,
            mark(&r.goals.bytes_per_paper),
            r.similar_recall_at_10,
            mark(&r.goals.similar_recall),
            r.query_recall_at_10,
            r.ingest.seconds,
            if r.ingest.cached { " (earlier run)" } else { "" },
        ));
    }
    out.push('\n');
    out.push_str(&format!(
        "Each figure: {} cold processes of the release binary per command (one fresh process \
         per run, another paper or query each time, after an untimed warm-up run), wall time \
         from spawn to exit; the page cache is warm (cold processes, not a cold disk). Peak \
         RSS: the largest `ru_maxrss` of any run, and the command it came from (`true` \
         started the same way shows {:.1} MiB). Recall@{}: \
         the default search's top {} against `--exact` (the f32 scan; for an f16 library, \
         the f32 library's), same papers and \
         queries, default (hybrid) ranking. Ingest: `papersim ingest --embeddings` of the \
         whole library, one process.\n",
        report.runs_per_command, report.rss_floor_mib, report.k, report.k
    ));
    out.push_str(&format!(
        "Goals (issue #13): info p50 <= {INFO_MS} ms; similar p50 <= {SIMILAR_MS_100K} ms up to \
         100,000 papers and <= {SIMILAR_MS_1M} ms up to 1,000,000 with recall@10 >= \
         {MIN_RECALL}; query p50 within {QUERY_OVER_SIMILAR_MS} ms of similar's; <= 2.5 KiB \
         ({BYTES_PER_PAPER} bytes) per paper on disk.\n"
    ));
    for r in &report.sizes {
        let entries: Vec<String> = r
            .bytes_per_paper_by_entry
            .iter()
            .map(|(name, b)| format!("{name} {b:.0}"))
            .collect();
        out.push_str(&format!(
            "{} papers, {}: `--exact` p50 similar {} ms, query {} ms; `embed` of one line (model \
             load and one text, no library) p50 {} ms; {:.1} MiB on disk, bytes per paper by \
             file: {}; ingest peak RSS {:.0} MiB.\n",
            r.papers,
            r.vector_dtype,
            ms(r.similar_exact.p50_ms),
            ms(r.query_exact.p50_ms),
            ms(r.embed_one_line.p50_ms),
            r.bytes_on_disk as f64 / 1048576.0,
            entries.join(", "),
            r.ingest.peak_rss_mib
        ));
    }
    let m = &report.machine;
    out.push_str(&format!(
        "\nCPU: {} ({} logical cores); flags: {}\nDate: {}; library format {}; binary {}\n",
        m.cpu,
        m.logical_cores,
        m.simd_flags.join(" "),
        report.date,
        report.library_format_version,
        report.binary.display()
    ));
    out
}

fn main() -> Result<()> {
    if std::env::var_os(SPAWNER_ENV).is_some() {
        return spawner();
    }
    let sizes = sizes_from_env()?;
    let runs = runs_from_env()?;
    let f16 = f16_from_env()?;
    let bin = binary()?;
    let real = RealSet::load()?;
    let model = papersim::pipeline::model_info(real.embedder.files())?;
    fs::create_dir_all(common::cache_dir())?;
    let format_version = probe_format_version(&bin, &real, &model)?;
    let mut results = Vec::new();
    for &n in &sizes {
        let f32 = VectorDtype::F32;
        let (lib, ingest) = library(&bin, &real, &model, n, format_version, f32)?;
        let measured = measure(&bin, &real, n, &lib, f32, ingest, runs, None)?;
        if f16 {
            let f16 = VectorDtype::F16;
            let (lib, ingest) = library(&bin, &real, &model, n, format_version, f16)?;
            let reference = Some(&measured.exact_ids);
            let halves = measure(&bin, &real, n, &lib, f16, ingest, runs, reference)?;
            results.push(measured);
            results.push(halves);
        } else {
            results.push(measured);
        }
    }
    let report = Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: Machine::read(),
        binary: bin,
        library_format_version: format_version,
        rss_floor_mib: rss_floor()?,
        runs_per_command: runs,
        page_cache: "warm",
        k: K,
        sizes: results,
    };
    print!("{}", table(&report));
    let json = common::target_dir().join("bench-scale.json");
    papersim::directory::write_atomically(&json, &serde_json::to_vec_pretty(&report)?)?;
    println!("(also written to {})", json.display());
    Ok(())
}
