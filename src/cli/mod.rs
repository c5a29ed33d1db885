//! The command line: argument definitions, one file per command, and output. The only part
//! of papersim that imports clap or prints. Each command parses, calls the library (the
//! write protocol and the embedding of an ingest are `papersim::pipeline`'s, rankings are
//! `papersim::rank`'s) and prints; it never reads library files itself.

mod args;
mod bench;
mod embed;
mod engine;
mod feedback;
mod fetch;
mod import;
mod index;
mod info;
mod ingest;
mod output;
mod progress;
mod query;
mod recommend;
mod serve;
mod similar;
mod triage;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use args::{EmbedFormat, FeedbackArgs, Global, InfoFormat, ProfileArgs, RankArgs};
pub use output::printable_lines;
use output::{Format, Report};
use papersim::digest::{self, InputFormat, ParseOptions};
use papersim::encode::device::{DeviceRequest, Precision};
use papersim::encode::model::{self, DEFAULT_MODEL};
use papersim::encode::tokenize::BatchLimits;
use papersim::feedback::Op;
use papersim::library::{self, Library};
use papersim::pipeline::IndexChange;
use papersim::rank::{RankOptions, Retrieval};
use papersim::store::{Need, Store, View};
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

#[derive(Subcommand, Debug)]
enum Command {
    /// Embed a digest's papers (or lines of text) into a .npy matrix.
    Embed {
        /// Digest file, directory, or - for stdin.
        path: PathBuf,
        /// Treat every non-empty line as one text instead of parsing a digest.
        #[arg(long)]
        lines: bool,
        /// Where to write the matrix: a path ending in .npy. Its rows are named beside it in
        /// <name>.rows.jsonl. Only a new file or papersim's own earlier output there is
        /// replaced; anything else (another file, a link, a device, an input) is refused.
        #[arg(short, long, default_value = "embeddings.npy")]
        output: PathBuf,
        /// npy: the matrix file and its .rows.jsonl sidecar; jsonl: one JSON object per row on
        /// stdout.
        #[arg(long, value_enum, default_value = "npy")]
        format: EmbedFormat,
        #[arg(long, default_value = "auto")]
        input_format: String,
    },
    /// Add digests to the library, embedding only papers it does not have yet (or taking their
    /// vectors from a matrix `papersim embed` wrote, with --embeddings).
    Ingest {
        /// Digest files or directories (- for stdin).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Take the new papers' vectors from this matrix, written by `papersim embed PATH -o
        /// FILE.npy` (its rows named in FILE.rows.jsonl), instead of embedding: no model is
        /// loaded. The matrix's model must be the library's (a new library takes it); every
        /// paper added must have its row, embedded from the same text, or nothing is imported.
        #[arg(long, value_name = "FILE.npy")]
        embeddings: Option<PathBuf>,
        /// How a new library stores its vectors: f32, or f16 (half the bytes on disk and per
        /// scan; scores move by about 1e-4). An existing library keeps its own: another value
        /// is refused (convert with `index rebuild --vector-dtype`).
        #[arg(long, value_name = "f32|f16")]
        vector_dtype: Option<papersim::library::VectorDtype>,
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
    /// Create a library kept in a Qdrant collection (--engine qdrant --url URL): the directory
    /// keeps the manifest and your feedback, the collection the papers and vectors.
    Init {
        #[command(flatten)]
        engine: engine::EngineArgs,
    },
    /// Move the local library into a Qdrant collection, as the Qdrant library --to DIR:
    /// batched, acknowledged writes; a re-run resumes (papers already there are skipped).
    Export {
        #[command(flatten)]
        engine: engine::EngineArgs,
        /// The directory of the Qdrant library (created, or the one an earlier export made).
        #[arg(long, required = true)]
        to: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: InfoFormat,
    },
    /// Fetch new papers from Hugging Face daily papers or arXiv, and ingest them (embedding
    /// only new ones), write them as a JSONL digest (-o), or list them (--dry-run).
    Fetch {
        #[command(subcommand)]
        source: fetch::Source,
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
        #[command(flatten)]
        feedback: FeedbackArgs,
    },
    /// Papers matching free text.
    Query {
        #[arg(required = true)]
        text: Vec<String>,
        #[command(flatten)]
        rank: RankArgs,
        #[command(flatten)]
        feedback: FeedbackArgs,
    },
    /// Papers for a reader's liked (and disliked) papers.
    Recommend {
        #[command(flatten)]
        reader: ProfileArgs,
        #[command(flatten)]
        rank: RankArgs,
    },
    /// Measure encoding speed and agreement per device, dtype and batch size.
    Bench(bench::BenchArgs),
    /// Rank a new digest's papers for the reader, without ingesting it first.
    Triage {
        digest: PathBuf,
        #[command(flatten)]
        reader: ProfileArgs,
        /// Add the digest to the library afterwards.
        #[arg(long)]
        ingest: bool,
        /// Do not mark the papers shown as seen.
        #[arg(long)]
        no_mark: bool,
        /// Show papers already seen too (by default they are hidden).
        #[arg(long)]
        include_seen: bool,
        #[arg(long, default_value = "auto")]
        input_format: String,
        #[command(flatten)]
        rank: RankArgs,
    },
    /// Like papers of the library (ids or titles), under a tag (one interest each).
    Like {
        #[arg(required = true)]
        papers: Vec<String>,
        /// The interest they belong to [default: default].
        #[arg(long)]
        tag: Option<String>,
    },
    /// Dislike papers: rankings keep away from their neighbours (their likes are dropped).
    Dislike {
        #[arg(required = true)]
        papers: Vec<String>,
    },
    /// Drop what you said of papers (with --tag, only their like under that tag).
    Forget {
        #[arg(required = true)]
        papers: Vec<String>,
        #[arg(long)]
        tag: Option<String>,
    },
    /// Mark papers as seen: `triage` hides them.
    Seen {
        #[arg(required = true)]
        papers: Vec<String>,
    },
    /// Like the papers of your reference manager: a BibTeX file, a CSL JSON export or a
    /// zotero.sqlite (read-only; Zotero may be running). Entries are matched to library papers
    /// by arXiv id, DOI or title; unknown ones with an abstract are added (embedded); the rest
    /// are warnings.
    Import {
        file: PathBuf,
        /// Like them under this tag [default: each entry's Zotero collections, else default].
        #[arg(long)]
        tag: Option<String>,
    },
    /// Serve the library: a web page and an HTTP API (docs/serve.md), until Ctrl-C.
    Serve {
        /// Where to listen. Beyond loopback every request needs the token stored in
        /// <library>/serve-token (made on the first such start and shown once).
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: std::net::SocketAddr,
        /// The largest request body in bytes (1024 to 268435456): a digest to triage or ingest.
        #[arg(long, default_value_t = 16 << 20)]
        max_body: usize,
        /// The longest a request may take, in seconds (1 to 3600); an ingest embeds its new
        /// papers within it.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// The most text queries embedded in one pass of the encoder (1 to 256; 1: each
        /// alone). Queries arriving together share a pass, which costs little more than one.
        #[arg(long, default_value_t = papersim::serve::DEFAULT_QUERY_BATCH)]
        query_batch: usize,
        /// Decompressed paper records kept in memory, in MiB (0 to 65536): every answer reads
        /// the records of the papers it lists, and a record not kept costs a decompression.
        #[arg(long, value_name = "MIB", default_value_t = papersim::serve::DEFAULT_RECORD_CACHE_MIB)]
        record_cache: usize,
    },
    /// Your stored profile: likes per tag and dislikes, with their dates.
    Profile {
        #[command(subcommand)]
        action: Option<ProfileAction>,
        /// Only this tag.
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: InfoFormat,
    },
}

#[derive(Subcommand, Debug)]
enum ProfileAction {
    /// How well the profile finds your own likes: each liked paper held out in turn, ranked
    /// with the rest of its tag; recall@10, recall@50 and median rank per tag, beside a
    /// lexical-only and a random ranking.
    Eval {
        /// Only this tag.
        #[arg(long)]
        tag: Option<String>,
        #[command(flatten)]
        rank: RankArgs,
    },
    /// Your liked papers as BibTeX or CSL JSON (for Zotero, JabRef, or another library).
    Export {
        #[arg(long, value_enum)]
        format: feedback::ExportFormat,
        /// Only this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Write here (a new file, or over a regular file) instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// Where the HNSW graph lives (`index rebuild --graph`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum GraphStorage {
    Stored,
    Memory,
}

#[derive(Subcommand, Debug)]
enum IndexAction {
    /// Rebuild the derived indexes (lexical, keys, and the HNSW graph when it is stored).
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
        /// Whether the library keeps its HNSW graph on disk: `stored` for a long-lived
        /// process over a large library (it loads the graph instead of building it; costs
        /// about 2 KB a paper, a second copy of the vectors), `memory` to build it only in a
        /// process that wants it (one-shot commands scan the vectors and never need it)
        /// [default: as the library is; new libraries: memory].
        #[arg(long, value_enum)]
        graph: Option<GraphStorage>,
        /// Store the vectors as f32 or f16 from now on, converting them (f32 to f16 rounds
        /// each value; f16 to f32 gives back the f16 values, not the original ones).
        #[arg(long, value_name = "f32|f16")]
        vector_dtype: Option<papersim::library::VectorDtype>,
        #[arg(long)]
        wait: bool,
    },
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
    g.check()?;
    if let Some(n) = g.threads {
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
        } => embed::embed(g, path, *lines, output, *format, input_format),
        Command::Ingest {
            paths,
            embeddings,
            vector_dtype,
            input_format,
            date,
            wait,
            format,
        } => ingest::ingest(
            g,
            paths,
            embeddings.as_deref(),
            *vector_dtype,
            input_format,
            date.as_deref(),
            *wait,
            *format,
        ),
        Command::Init { engine } => engine::init(g, engine),
        Command::Export { engine, to, format } => engine::export(g, engine, to, *format),
        Command::Fetch { source } => fetch::fetch(g, source),
        Command::Info { format } => info::info(g, *format),
        Command::Bench(a) => bench::bench(g, a),
        Command::Index {
            action:
                IndexAction::Rebuild {
                    m,
                    ef_construction,
                    ef_search,
                    reembed,
                    graph,
                    vector_dtype,
                    wait,
                },
        } => {
            let change = IndexChange {
                m: *m,
                ef_construction: *ef_construction,
                ef_search: *ef_search,
                store_graph: graph.map(|g| g == GraphStorage::Stored),
                vector_dtype: *vector_dtype,
            };
            index::rebuild(g, change, *reembed, *wait)
        }
        Command::Similar {
            paper,
            rank,
            feedback,
        } => similar::similar(g, paper, rank, feedback),
        Command::Query {
            text,
            rank,
            feedback,
        } => query::query(g, &text.join(" "), rank, feedback),
        Command::Recommend { reader, rank } => recommend::recommend(g, reader, rank),
        Command::Triage {
            digest,
            reader,
            ingest,
            no_mark,
            include_seen,
            input_format,
            rank,
        } => triage::triage(
            g,
            digest,
            reader,
            triage::Marking {
                ingest: *ingest,
                mark: !no_mark,
                include_seen: *include_seen,
            },
            input_format,
            rank,
        ),
        Command::Like { papers, tag } => feedback::mark(g, Op::Like, papers, tag.as_deref()),
        Command::Dislike { papers } => feedback::mark(g, Op::Dislike, papers, None),
        Command::Forget { papers, tag } => feedback::mark(g, Op::Forget, papers, tag.as_deref()),
        Command::Seen { papers } => feedback::mark(g, Op::Seen, papers, None),
        Command::Serve {
            addr,
            max_body,
            timeout,
            query_batch,
            record_cache,
        } => serve::serve(g, *addr, *max_body, *timeout, *query_batch, *record_cache),
        Command::Import { file, tag } => import::import(g, file, tag.as_deref()),
        Command::Profile {
            action:
                Some(ProfileAction::Export {
                    format,
                    tag,
                    output,
                }),
            tag: outer,
            ..
        } => feedback::export(
            g,
            tag.as_deref().or(outer.as_deref()),
            *format,
            output.as_deref(),
        ),
        Command::Profile {
            action: None,
            tag,
            format,
        } => feedback::show(g, tag.as_deref(), *format),
        Command::Profile {
            action: Some(ProfileAction::Eval { tag, rank }),
            tag: outer,
            ..
        } => feedback::eval(g, tag.as_deref().or(outer.as_deref()), rank),
    }
}

fn library_dir(g: &Global) -> PathBuf {
    g.library
        .clone()
        .unwrap_or_else(library::default_library_dir)
}

fn note(g: &Global, msg: &str) {
    if !g.quiet {
        eprintln!("{}", printable_lines(msg));
    }
}

/// Loads the encoder: the model named by --model, else the library's, else the default.
fn load_embedder(
    g: &Global,
    library_model: Option<&str>,
    bar: &progress::Bar,
) -> papersim::Result<Embedder> {
    let model = match (&g.model, library_model) {
        (Some(given), _) => given.clone(),
        (None, Some(recorded)) => {
            model::check_recorded(recorded)?;
            recorded.to_string()
        }
        (None, None) => DEFAULT_MODEL.to_string(),
    };
    let config = EmbedderConfig {
        model,
        device: g.device.parse::<DeviceRequest>()?,
        precision: g.dtype.parse::<Precision>()?,
        batch: BatchLimits {
            max_texts: g.batch_size,
            ..BatchLimits::default()
        },
        normalize: Some(true),
        ..EmbedderConfig::default()
    };
    Embedder::new(&config, bar)
}

/// The encoder for a library's vectors: its model (or --model), checked against it.
fn library_embedder(g: &Global, lib: &Library, bar: &progress::Bar) -> Result<Embedder> {
    let embedder = load_embedder(g, Some(&lib.manifest().model.id), bar)?;
    papersim::pipeline::check_model(lib, &embedder)?;
    Ok(embedder)
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

/// Opens the library for a command that only reads it: records are read as needed. A library
/// kept in Qdrant is refused here, naming the commands that work on one: this command reads
/// the local files, and would find none.
fn open_library(g: &Global) -> Result<Library> {
    let lib = Library::open_for_reading(&library_dir(g))?;
    if let Some(e) = &lib.manifest().engine {
        anyhow::bail!(
            "library {} keeps its papers in the {} collection `{}`; this command works on local libraries only \
             (on a Qdrant library: ingest, info, similar, query, recommend, triage, like, dislike, forget, seen; see docs/qdrant.md)",
            library_dir(g).display(),
            e.kind,
            e.collection
        );
    }
    Ok(lib)
}

/// The library's store: its own directory, or the Qdrant collection its manifest names.
fn open_store(g: &Global) -> Result<Box<dyn Store>> {
    Ok(papersim::store::open(&library_dir(g), None)?)
}

/// What a ranking over `store` needs: the papers `references` name, and the nearest neighbours
/// of those in `around` and of `queries`, as many as the ranking takes as candidates (`extra`
/// more for papers it drops) in the date window of `opts`. The whole library for a local one.
fn view_for<'a>(
    store: &'a dyn Store,
    opts: &RankOptions,
    references: Vec<String>,
    around: Vec<String>,
    queries: Vec<Vec<f32>>,
    extra: usize,
) -> Result<View<'a>> {
    let per_query = if around.is_empty() && queries.is_empty() {
        0
    } else {
        papersim::rank::candidate_count(store.len()?, opts, extra)
    };
    Ok(store.view(&Need {
        references,
        around,
        queries,
        per_query,
        since: opts.since.clone(),
        until: opts.until.clone(),
    })?)
}

/// Refuses lexical-only ranking on a store without papersim's lexical index (Qdrant): it would
/// rank nothing. Hybrid works there on the dense candidates (docs/qdrant.md).
fn check_mode(store: &dyn Store, mode: Retrieval) -> Result<()> {
    if store.engine() != "local" && mode == Retrieval::Lexical {
        anyhow::bail!(
            "--mode lexical needs papersim's lexical (BM25) index, which a {} library does not have; \
             use --mode dense, or hybrid (BM25 over the dense candidates; docs/qdrant.md)",
            store.engine()
        );
    }
    Ok(())
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

fn print(report: &Report, format: Format, heading: &str) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    output::print_report(&mut out, report, format, heading)?;
    out.flush()?;
    Ok(())
}
