//! Command-line interface: argument definitions and one function per subcommand. The only
//! part of papersim that imports clap or prints.

mod bench;
mod output;
mod progress;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Parser, Subcommand};
use serde_json::json;

use output::{Closest, Format, Report, ResultRow};
use papersim::digest::{self, InputFormat, ParseOptions};
use papersim::encode::device::{DeviceRequest, Precision};
use papersim::encode::tokenize::BatchLimits;
use papersim::index::HnswParams;
use papersim::library::{self, IngestReport, Library, ModelInfo, SearchMode, WriteLock};
use papersim::rank::hybrid::{self, Retrieval};
use papersim::rank::{self, Profile, RankOptions, Ranked};
use papersim::{Embedder, EmbedderConfig};

/// Find related research papers from your paper digests, locally.
#[derive(Parser, Debug)]
#[command(name = "papersim", version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(ClapArgs, Debug, Clone)]
struct Global {
    /// Library directory.
    #[arg(long, global = true, env = "PAPERSIM_LIBRARY")]
    library: Option<PathBuf>,
    /// Model: a Hugging Face repo id or a directory [default: the library's model, else
    /// sentence-transformers/all-MiniLM-L6-v2].
    #[arg(long, global = true, env = "PAPERSIM_MODEL")]
    model: Option<String>,
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, global = true, default_value = "auto")]
    device: String,
    /// Precision on CUDA: f32, f16 or bf16.
    #[arg(long, global = true, default_value = "f32")]
    dtype: String,
    /// CPU threads [default: RAYON_NUM_THREADS, else all cores].
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Texts per forward batch.
    #[arg(long, global = true, default_value_t = 32)]
    batch_size: usize,
    /// No progress bars or notes on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(ClapArgs, Debug, Clone)]
struct RankArgs {
    /// Number of results.
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Drop results scoring below this (dense: cosine; lexical: BM25 share of the query's own
    /// score; hybrid: fused score; each about 0-1).
    #[arg(long)]
    min_score: Option<f32>,
    /// Only papers from digests dated on or after this day (YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Only papers from digests dated on or before this day (YYYY-MM-DD).
    #[arg(long)]
    until: Option<String>,
    /// Re-rank by maximal marginal relevance; 0 = relevance only, 1 = diversity only.
    #[arg(long)]
    diversity: Option<f32>,
    /// Show the sentence of each abstract that best matches.
    #[arg(long)]
    explain: bool,
    /// Search every vector instead of the HNSW graph.
    #[arg(long)]
    exact: bool,
    /// Evidence to rank by: dense (sentence embeddings), lexical (BM25 over titles and
    /// abstracts: exact terms) or hybrid (both, fused).
    #[arg(long, value_enum, default_value = "hybrid")]
    mode: ModeArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Embed a digest's papers (or lines of text) into a .npy matrix.
    Embed {
        /// Digest file, directory, or - for stdin.
        path: PathBuf,
        /// Treat every non-empty line as one text instead of parsing a digest.
        #[arg(long)]
        lines: bool,
        /// Where to write the matrix (a JSONL sidecar naming each row goes beside it).
        #[arg(short, long, default_value = "embeddings.npy")]
        output: PathBuf,
        /// npy: a file and its sidecar; jsonl: one JSON object per row on stdout.
        #[arg(long, value_enum, default_value = "npy")]
        format: EmbedFormat,
        #[arg(long, default_value = "auto")]
        input_format: String,
    },
    /// Add digests to the library, embedding only papers it does not have yet.
    Ingest {
        /// Digest files or directories (- for stdin).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Digest format: auto, text, json or jsonl.
        #[arg(long, default_value = "auto")]
        input_format: String,
        /// The digests' date (YYYY-MM-DD), when neither header nor file name says it.
        #[arg(long)]
        date: Option<String>,
        /// Wait for another writer instead of failing.
        #[arg(long)]
        wait: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: InfoFormat,
    },
    /// Show what the library holds.
    Info {
        #[arg(long, value_enum, default_value = "table")]
        format: InfoFormat,
    },
    /// Manage the nearest-neighbour index.
    Index {
        #[command(subcommand)]
        action: IndexAction,
    },
    /// Papers like a paper of the library (an id, a title, or part of one title).
    Similar {
        paper: String,
        #[command(flatten)]
        rank: RankArgs,
    },
    /// Papers matching free text.
    Query {
        #[arg(required = true)]
        text: Vec<String>,
        #[command(flatten)]
        rank: RankArgs,
    },
    /// Papers for a reader's liked (and disliked) papers.
    Recommend {
        /// Liked papers (ids or titles).
        #[arg(long, num_args = 1..)]
        like: Vec<String>,
        /// Disliked papers (ids or titles).
        #[arg(long, num_args = 1..)]
        unlike: Vec<String>,
        /// Profile file {"like": [...], "unlike": [...]} [default: <library>/profile.json].
        #[arg(long)]
        profile: Option<PathBuf>,
        #[command(flatten)]
        rank: RankArgs,
    },
    /// Measure encoding speed and agreement per device, dtype and batch size.
    Bench(bench::BenchArgs),
    /// Rank a new digest's papers for the reader, without ingesting it first.
    Triage {
        digest: PathBuf,
        #[arg(long, num_args = 1..)]
        like: Vec<String>,
        #[arg(long, num_args = 1..)]
        unlike: Vec<String>,
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Add the digest to the library afterwards.
        #[arg(long)]
        ingest: bool,
        #[arg(long, default_value = "auto")]
        input_format: String,
        #[command(flatten)]
        rank: RankArgs,
    },
}

#[derive(Subcommand, Debug)]
enum IndexAction {
    /// Rebuild the HNSW graph from the stored vectors.
    Rebuild {
        /// Max connections per node.
        #[arg(long)]
        m: Option<usize>,
        #[arg(long)]
        ef_construction: Option<usize>,
        #[arg(long)]
        ef_search: Option<usize>,
        /// Re-embed every paper with --model first (to switch models).
        #[arg(long)]
        reembed: bool,
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ModeArg {
    Dense,
    Lexical,
    Hybrid,
}

impl From<ModeArg> for Retrieval {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Dense => Retrieval::Dense,
            ModeArg::Lexical => Retrieval::Lexical,
            ModeArg::Hybrid => Retrieval::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EmbedFormat {
    Npy,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InfoFormat {
    Table,
    Json,
}

/// Whether an error is a closed stdout (`papersim ... | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Exit codes: 1 for errors of input, model or library; 2 is clap's for bad usage.
pub fn exit_code(_err: &anyhow::Error) -> u8 {
    1
}

pub fn run(args: Args) -> Result<()> {
    let g = &args.global;
    if let Some(n) = g.threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        // candle reads RAYON_NUM_THREADS for its matrix kernels; set it before any work starts.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    match &args.command {
        Command::Embed {
            path,
            lines,
            output,
            format,
            input_format,
        } => embed(g, path, *lines, output, *format, input_format),
        Command::Ingest {
            paths,
            input_format,
            date,
            wait,
            format,
        } => ingest(g, paths, input_format, date.as_deref(), *wait, *format),
        Command::Info { format } => info(g, *format),
        Command::Bench(a) => bench::bench(g, a),
        Command::Index {
            action:
                IndexAction::Rebuild {
                    m,
                    ef_construction,
                    ef_search,
                    reembed,
                    wait,
                },
        } => rebuild(g, *m, *ef_construction, *ef_search, *reembed, *wait),
        Command::Similar { paper, rank } => similar(g, paper, rank),
        Command::Query { text, rank } => query(g, &text.join(" "), rank),
        Command::Recommend {
            like,
            unlike,
            profile,
            rank,
        } => recommend_cmd(g, like, unlike, profile.as_deref(), rank),
        Command::Triage {
            digest,
            like,
            unlike,
            profile,
            ingest,
            input_format,
            rank,
        } => triage(
            g,
            digest,
            like,
            unlike,
            profile.as_deref(),
            *ingest,
            input_format,
            rank,
        ),
    }
}

fn library_dir(g: &Global) -> PathBuf {
    g.library
        .clone()
        .unwrap_or_else(library::default_library_dir)
}

fn note(g: &Global, msg: &str) {
    if !g.quiet {
        eprintln!("{msg}");
    }
}

/// Loads the encoder: the model named by --model, else the library's, else the default.
fn load_embedder(g: &Global, library_model: Option<&str>, bar: &progress::Bar) -> Result<Embedder> {
    let model = g
        .model
        .clone()
        .or_else(|| library_model.map(str::to_string))
        .unwrap_or_else(|| papersim::encode::model::DEFAULT_MODEL.to_string());
    let config = EmbedderConfig {
        model,
        device: g.device.parse::<DeviceRequest>()?,
        precision: g.dtype.parse::<Precision>()?,
        batch: BatchLimits {
            max_texts: g.batch_size.max(1),
            ..BatchLimits::default()
        },
        normalize: Some(true),
        ..EmbedderConfig::default()
    };
    Ok(Embedder::new(&config, bar)?)
}

/// Says which model and device a bulk embedding runs on.
fn announce(g: &Global, embedder: &Embedder, texts: usize) {
    note(
        g,
        &format!(
            "papersim: embedding {texts} texts with {} on {}",
            embedder.files().id,
            embedder.device_note()
        ),
    );
}

fn open_library(g: &Global) -> Result<Library> {
    let dir = library_dir(g);
    Ok(Library::open(&dir)?)
}

fn parse_opts(input_format: &str, date: Option<&str>) -> Result<ParseOptions> {
    let date = date
        .map(|d| {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .with_context(|| format!("--date `{d}` is not YYYY-MM-DD"))
        })
        .transpose()?;
    Ok(ParseOptions {
        format: input_format.parse::<InputFormat>()?,
        date,
    })
}

fn read_digests(paths: &[PathBuf], opts: &ParseOptions) -> Result<Vec<digest::Digest>> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(digest::read_path(p, opts)?);
    }
    Ok(all)
}

fn embed(
    g: &Global,
    path: &Path,
    lines: bool,
    output: &Path,
    format: EmbedFormat,
    input_format: &str,
) -> Result<()> {
    let bar = progress::Bar::new(g.quiet);
    // Each row: (name for the sidecar, text to embed).
    let rows: Vec<(serde_json::Value, String)> = if lines {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading stdin")?
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read as UTF-8 text", path.display()))?
        };
        text.lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| (json!({"row": i, "text": l}), l.to_string()))
            .collect()
    } else {
        let digests = read_digests(&[path.to_path_buf()], &parse_opts(input_format, None)?)?;
        for d in &digests {
            for w in &d.warnings {
                note(g, &format!("warning: {w}"));
            }
        }
        digests
            .iter()
            .flat_map(|d| d.papers.iter().map(move |p| (d, p)))
            .enumerate()
            .map(|(i, (d, p))| {
                (
                    json!({"row": i, "id": p.id(), "title": p.title, "digest": d.source}),
                    p.embedding_text(),
                )
            })
            .collect()
    };
    if rows.is_empty() {
        bail!("{}: nothing to embed", path.display());
    }
    let embedder = {
        let mut g = g.clone();
        g.model = g
            .model
            .or_else(|| Some(papersim::encode::model::DEFAULT_MODEL.to_string()));
        load_embedder(&g, None, &bar)?
    };
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    announce(g, &embedder, texts.len());
    let (vectors, _) = embedder.embed_with(&texts, &bar)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        EmbedFormat::Jsonl => {
            for (i, (name, _)) in rows.iter().enumerate() {
                let mut obj = name.clone();
                obj["embedding"] = json!(vectors.row(i));
                serde_json::to_writer(&mut out, &obj)?;
                writeln!(out)?;
            }
        }
        EmbedFormat::Npy => {
            let bytes =
                papersim::library::npy::encode_f32(&vectors.data, vectors.len(), vectors.dim);
            papersim::directory::write_atomically(output, &bytes)?;
            let sidecar = output.with_extension("jsonl");
            let mut side = Vec::new();
            for (name, _) in &rows {
                serde_json::to_writer(&mut side, name)?;
                side.push(b'\n');
            }
            papersim::directory::write_atomically(&sidecar, &side)?;
            writeln!(
                out,
                "wrote {} vectors of dimension {} to {} (rows named in {})",
                vectors.len(),
                vectors.dim,
                output.display(),
                sidecar.display()
            )?;
        }
    }
    Ok(())
}

fn ingest(
    g: &Global,
    paths: &[PathBuf],
    input_format: &str,
    date: Option<&str>,
    wait: bool,
    format: InfoFormat,
) -> Result<()> {
    let bar = progress::Bar::new(g.quiet);
    let digests = read_digests(paths, &parse_opts(input_format, date)?)?;
    let report = ingest_digests(g, &digests, wait, &bar, &HashMap::new())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        InfoFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        InfoFormat::Table => {
            writeln!(
                out,
                "read {} papers from {} digest(s): {} added, {} already present, {} skipped; library now holds {} papers",
                report.read,
                report.digests.len(),
                report.added,
                report.already_present,
                report.skipped.len(),
                report.papers_total
            )?;
            for s in &report.skipped {
                writeln!(out, "  skipped: {s}")?;
            }
        }
    }
    Ok(())
}

fn ingest_digests(
    g: &Global,
    digests: &[digest::Digest],
    wait: bool,
    bar: &progress::Bar,
    known: &HashMap<String, Vec<f32>>,
) -> Result<IngestReport> {
    let dir = library_dir(g);
    // Everything that can fail without writing (the library, the model, whether they match)
    // is checked before the write lock is taken, so such a failure leaves the library
    // directory, the lock file included, exactly as it was.
    let mut lib = if Library::exists(&dir) {
        Some(Library::open(&dir)?)
    } else {
        None
    };
    let embedder = load_embedder(g, lib.as_ref().map(|l| l.manifest().model.id.as_str()), bar)?;
    if let Some(l) = &lib {
        l.check_model(embedder.files())?;
    }
    let lock = WriteLock::acquire(&dir, wait)?;
    // Another writer may have committed while we loaded the model or waited for the lock.
    if Library::exists(&dir) {
        let current = std::fs::read(dir.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<library::Manifest>(&b).ok());
        if lib.is_none() || current.as_ref() != lib.as_ref().map(|l| l.manifest()) {
            lib = Some(Library::open(&dir)?);
        }
    }
    let mut lib = match lib.take() {
        Some(l) => l,
        None => Library::create(
            &dir,
            ModelInfo::of(embedder.files())?,
            HnswParams::default(),
        )?,
    };
    let report = lib.ingest_reusing(digests, &embedder, bar, known)?;
    lib.commit(&lock)?;
    Ok(report)
}

fn info(g: &Global, format: InfoFormat) -> Result<()> {
    let lib = open_library(g)?;
    let m = lib.manifest();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        InfoFormat::Json => {
            let doc = json!({
                "library": lib.root(),
                "format_version": m.format_version,
                "generation": m.generation,
                "segments": m.segments.len(),
                "papers": lib.len(),
                "model": m.model,
                "index": m.index,
                "digests": m.digests,
                "size_bytes": lib.size_on_disk(),
                "updated": m.updated,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        InfoFormat::Table => {
            writeln!(out, "library     {}", lib.root().display())?;
            writeln!(out, "papers      {}", lib.len())?;
            writeln!(out, "digests     {}", m.digests.len())?;
            writeln!(
                out,
                "model       {} (dimension {}, {:?} pooling, max {} tokens)",
                m.model.id, m.model.dim, m.model.pooling, m.model.max_seq_length
            )?;
            writeln!(out, "fingerprint {}", m.model.fingerprint)?;
            writeln!(
                out,
                "index       HNSW m={} ef_construction={} ef_search={}; exact search below {} papers",
                m.index.m,
                m.index.ef_construction,
                m.index.ef_search,
                papersim::index::EXACT_THRESHOLD
            )?;
            writeln!(
                out,
                "size        {:.1} MiB on disk (generation {}{})",
                lib.size_on_disk() as f64 / 1048576.0,
                m.generation,
                match m.segments.len() {
                    0 => String::new(),
                    1 => ", 1 segment".to_string(),
                    n => format!(", {n} segments"),
                }
            )?;
            writeln!(out, "updated     {}", m.updated)?;
            if let (Some(first), Some(last)) = (
                m.digests.iter().filter_map(|d| d.date.as_deref()).min(),
                m.digests.iter().filter_map(|d| d.date.as_deref()).max(),
            ) {
                writeln!(out, "dates       {first} .. {last}")?;
            }
        }
    }
    Ok(())
}

fn rebuild(
    g: &Global,
    m: Option<usize>,
    efc: Option<usize>,
    efs: Option<usize>,
    reembed: bool,
    wait: bool,
) -> Result<()> {
    let dir = library_dir(g);
    let lock = WriteLock::acquire(&dir, wait)?;
    let mut lib = Library::open(&dir)?;
    let mut params = lib.manifest().index;
    if let Some(m) = m {
        params.m = m;
    }
    if let Some(e) = efc {
        params.ef_construction = e;
    }
    if let Some(e) = efs {
        params.ef_search = e;
    }
    if reembed {
        let bar = progress::Bar::new(g.quiet);
        let embedder = load_embedder(g, None, &bar)?;
        lib.reembed(&embedder, &bar)?;
    }
    lib.rebuild_index(params)?;
    lib.commit(&lock)?;
    println!(
        "rebuilt the index of {} papers (m={}, ef_construction={}, ef_search={})",
        lib.len(),
        params.m,
        params.ef_construction,
        params.ef_search
    );
    Ok(())
}

fn rank_options(rank: &RankArgs) -> Result<RankOptions> {
    if rank.k == 0 {
        bail!("-k must be at least 1");
    }
    for d in [&rank.since, &rank.until].into_iter().flatten() {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .with_context(|| format!("date `{d}` is not YYYY-MM-DD"))?;
    }
    if let Some(l) = rank.diversity {
        if !(0.0..=1.0).contains(&l) {
            bail!("--diversity must be between 0 and 1");
        }
    }
    Ok(RankOptions {
        k: rank.k,
        min_score: rank.min_score,
        since: rank.since.clone(),
        until: rank.until.clone(),
        diversity: rank.diversity,
        mode: if rank.exact {
            SearchMode::Exact
        } else {
            SearchMode::Auto
        },
    })
}

/// Builds result rows for library papers, with explanations when asked.
fn library_rows(
    lib: &Library,
    ranked: &[Ranked],
    explain_with: Option<(&Embedder, &[f32])>,
) -> Result<Vec<ResultRow>> {
    ranked
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = &lib.papers()[r.row];
            Ok(ResultRow {
                rank: i + 1,
                id: p.id.clone(),
                title: p.title.clone(),
                score: r.score,
                date: p.first_seen().map(str::to_string),
                digests: p.seen_in.iter().map(|s| s.digest.clone()).collect(),
                url: p.url.clone(),
                closest_like: r.closest_like.map(|c| Closest {
                    id: lib.papers()[c].id.clone(),
                    title: lib.papers()[c].title.clone(),
                }),
                explanation: match explain_with {
                    Some((e, v)) => Some(best_sentence(e, &p.abstract_text, v)?),
                    None => None,
                },
            })
        })
        .collect()
}

/// The sentence of `text` closest to `target`.
fn best_sentence(embedder: &Embedder, text: &str, target: &[f32]) -> Result<String> {
    let sentences = rank::sentences(text);
    if sentences.is_empty() {
        return Ok(String::new());
    }
    let vectors = embedder.embed(&sentences)?;
    let best = (0..sentences.len())
        .map(|i| {
            (
                i,
                vectors
                    .row(i)
                    .iter()
                    .zip(target)
                    .map(|(a, b)| a * b)
                    .sum::<f32>(),
            )
        })
        .fold(
            (0, f32::NEG_INFINITY),
            |acc, x| if x.1 > acc.1 { x } else { acc },
        );
    Ok(sentences[best.0].to_string())
}

fn print(report: &Report, format: Format, heading: &str) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    output::print_report(&mut out, report, format, heading)?;
    out.flush()?;
    Ok(())
}

fn library_embedder(g: &Global, lib: &Library, bar: &progress::Bar) -> Result<Embedder> {
    let embedder = load_embedder(g, Some(&lib.manifest().model.id), bar)?;
    lib.check_model(embedder.files())?;
    Ok(embedder)
}

fn similar(g: &Global, paper: &str, rank: &RankArgs) -> Result<()> {
    let opts = rank_options(rank)?;
    let lib = open_library(g)?;
    let row = rank::resolve_paper(&lib, paper)?;
    let ranked = hybrid::similar(&lib, row, &opts, rank.mode.into())?;
    let embedder = if rank.explain {
        Some(library_embedder(g, &lib, &progress::Bar::new(g.quiet))?)
    } else {
        None
    };
    let seed = lib.vector(row).to_vec();
    let rows = library_rows(
        &lib,
        &ranked,
        embedder.as_ref().map(|e| (e, seed.as_slice())),
    )?;
    let p = &lib.papers()[row];
    let report = Report {
        query: json!({"kind": "similar", "id": p.id, "title": p.title}),
        results: rows,
    };
    print(&report, rank.format, &format!("Papers like “{}”", p.title))
}

fn query(g: &Global, text: &str, rank: &RankArgs) -> Result<()> {
    let opts = rank_options(rank)?;
    if text.trim().is_empty() {
        bail!("the query is empty: give some words to search for");
    }
    let lib = open_library(g)?;
    let mode: Retrieval = rank.mode.into();
    // Lexical ranking needs no model (unless sentences are to be explained).
    let embedded = if mode.uses_dense() || rank.explain {
        let embedder = library_embedder(g, &lib, &progress::Bar::new(g.quiet))?;
        let vector = embedder.embed(&[text])?;
        Some((embedder, vector))
    } else {
        None
    };
    let vector = embedded.as_ref().map(|(_, v)| v.row(0));
    let ranked = hybrid::query(&lib, text, vector, &opts, mode)?;
    let rows = library_rows(
        &lib,
        &ranked,
        embedded
            .as_ref()
            .filter(|_| rank.explain)
            .map(|(e, v)| (e, v.row(0))),
    )?;
    let report = Report {
        query: json!({"kind": "query", "text": text}),
        results: rows,
    };
    print(&report, rank.format, &format!("Papers matching “{text}”"))
}

/// The liked and disliked references from flags and the profile file.
fn profile_refs(
    g: &Global,
    like: &[String],
    unlike: &[String],
    profile: Option<&Path>,
) -> Result<(Vec<String>, Vec<String>, Option<PathBuf>)> {
    let default = library_dir(g).join("profile.json");
    let path = match profile {
        Some(p) => Some(p.to_path_buf()),
        None if like.is_empty() && default.is_file() => Some(default),
        None => None,
    };
    let mut likes = like.to_vec();
    let mut unlikes = unlike.to_vec();
    if let Some(p) = &path {
        let prof = Profile::read(p)?;
        likes.extend(prof.like);
        unlikes.extend(prof.unlike);
    }
    if likes.is_empty() {
        bail!(
            "no liked papers: pass --like ID_OR_TITLE..., or write a profile {{\"like\": [...], \"unlike\": [...]}} to {} (or --profile FILE)",
            library_dir(g).join("profile.json").display()
        );
    }
    Ok((likes, unlikes, path))
}

fn resolve_all(lib: &Library, refs: &[String]) -> Result<Vec<usize>> {
    refs.iter()
        .map(|r| Ok(rank::resolve_paper(lib, r)?))
        .collect()
}

fn recommend_cmd(
    g: &Global,
    like: &[String],
    unlike: &[String],
    profile: Option<&Path>,
    rank: &RankArgs,
) -> Result<()> {
    let opts = rank_options(rank)?;
    let (likes, unlikes, profile_path) = profile_refs(g, like, unlike, profile)?;
    let lib = open_library(g)?;
    let like_rows = resolve_all(&lib, &likes)?;
    let unlike_rows = resolve_all(&lib, &unlikes)?;
    let ranked = hybrid::recommend(&lib, &like_rows, &unlike_rows, &opts, rank.mode.into())?;
    let embedder = if rank.explain {
        Some(library_embedder(g, &lib, &progress::Bar::new(g.quiet))?)
    } else {
        None
    };
    let mut rows = library_rows(&lib, &ranked, None)?;
    if let Some(e) = &embedder {
        for (row, r) in rows.iter_mut().zip(&ranked) {
            let target = lib.vector(r.closest_like.unwrap_or(r.row)).to_vec();
            row.explanation = Some(best_sentence(
                e,
                &lib.papers()[r.row].abstract_text,
                &target,
            )?);
        }
    }
    let ids = |rows: &[usize]| {
        rows.iter()
            .map(|&r| lib.papers()[r].id.clone())
            .collect::<Vec<_>>()
    };
    let report = Report {
        query: json!({"kind": "recommend", "like": ids(&like_rows), "unlike": ids(&unlike_rows), "profile": profile_path}),
        results: rows,
    };
    print(&report, rank.format, "Recommended papers")
}

#[allow(clippy::too_many_arguments)]
fn triage(
    g: &Global,
    digest_path: &Path,
    like: &[String],
    unlike: &[String],
    profile: Option<&Path>,
    ingest: bool,
    input_format: &str,
    rank: &RankArgs,
) -> Result<()> {
    let opts = rank_options(rank)?;
    let (likes, unlikes, profile_path) = profile_refs(g, like, unlike, profile)?;
    let digests = read_digests(
        &[digest_path.to_path_buf()],
        &parse_opts(input_format, None)?,
    )?;
    let lib = open_library(g)?;
    let like_rows = resolve_all(&lib, &likes)?;
    let unlike_rows = resolve_all(&lib, &unlikes)?;
    let bar = progress::Bar::new(g.quiet);
    let mode: Retrieval = rank.mode.into();
    // Lexical ranking needs no model (unless sentences are to be explained).
    let embedder = if mode.uses_dense() || rank.explain {
        Some(library_embedder(g, &lib, &bar)?)
    } else {
        None
    };
    let papers: Vec<_> = digests
        .iter()
        .flat_map(|d| d.papers.iter().map(move |p| (d, p)))
        .collect();
    if papers.is_empty() {
        bail!("{}: no papers to triage", digest_path.display());
    }
    let vectors = match embedder.as_ref().filter(|_| mode.uses_dense()) {
        Some(embedder) => {
            let texts: Vec<String> = papers.iter().map(|(_, p)| p.embedding_text()).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            announce(g, embedder, refs.len());
            Some(embedder.embed_with(&refs, &bar)?.0)
        }
        None => None,
    };
    let texts: Vec<String> = papers
        .iter()
        .map(|(_, p)| papersim::index::lexical::paper_text(&p.title, &p.abstract_text))
        .collect();
    let scored = hybrid::triage(
        &lib,
        &texts,
        vectors.as_ref().map(|v| v.data.as_slice()),
        &like_rows,
        &unlike_rows,
        &opts,
        mode,
    )?;
    let mut rows = Vec::new();
    for (rank_i, &(i, score, best)) in scored.iter().take(opts.k).enumerate() {
        let (d, p) = papers[i];
        let liked = &lib.papers()[like_rows[best]];
        rows.push(ResultRow {
            rank: rank_i + 1,
            id: p.id(),
            title: p.title.clone(),
            score,
            date: p.date.clone().or_else(|| d.date.map(|x| x.to_string())),
            digests: vec![Path::new(&d.source)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()],
            url: p.url.clone(),
            closest_like: Some(Closest {
                id: liked.id.clone(),
                title: liked.title.clone(),
            }),
            explanation: if let Some(embedder) = embedder.as_ref().filter(|_| rank.explain) {
                Some(best_sentence(
                    embedder,
                    &p.abstract_text,
                    lib.vector(like_rows[best]),
                )?)
            } else {
                None
            },
        });
    }
    let ids = |rows: &[usize]| {
        rows.iter()
            .map(|&r| lib.papers()[r].id.clone())
            .collect::<Vec<_>>()
    };
    let report = Report {
        query: json!({"kind": "triage", "digest": digest_path, "papers": papers.len(), "like": ids(&like_rows), "unlike": ids(&unlike_rows), "profile": profile_path}),
        results: rows,
    };
    print(
        &report,
        rank.format,
        &format!("Triage of {}", digest_path.display()),
    )?;
    if ingest {
        drop(lib);
        // The digest was just embedded to rank it (dense and hybrid modes): reuse its vectors.
        let known: HashMap<String, Vec<f32>> = match &vectors {
            Some(v) => papers
                .iter()
                .enumerate()
                .map(|(i, (_, p))| (p.embedding_text(), v.row(i).to_vec()))
                .collect(),
            None => HashMap::new(),
        };
        let report = ingest_digests(g, &digests, false, &bar, &known)?;
        note(
            g,
            &format!(
                "ingested: {} added, {} already present; library now holds {} papers",
                report.added, report.already_present, report.papers_total
            ),
        );
    }
    Ok(())
}
