//! Argument types shared by several commands, and their conversion into the library's
//! options (with the bounds each numeric option must respect).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;

use papersim::encode::tokenize::{BatchLimits, MAX_BATCH_TEXTS};
use papersim::library::SearchMode;
use papersim::rank::{RankOptions, Retrieval};

use super::output::Format;

#[derive(ClapArgs, Debug, Clone)]
pub struct Global {
    /// Library directory.
    #[arg(long, global = true, env = "PAPERSIM_LIBRARY")]
    pub library: Option<PathBuf>,
    /// Model: a Hugging Face repo id (looked up in $PAPERSIM_MODELS, default
    /// <user cache dir>/papersim/models, then the Hugging Face cache and Hub) or a directory
    /// given as a path starting with /, ./ or ../ [default: the library's model, else
    /// sentence-transformers/all-MiniLM-L6-v2].
    #[arg(long, global = true, env = "PAPERSIM_MODEL")]
    pub model: Option<String>,
    /// Device: cpu, cuda, cuda:N or auto.
    #[arg(long, global = true, default_value = "auto")]
    pub device: String,
    /// Precision on CUDA: f32, f16 or bf16.
    #[arg(long, global = true, default_value = "f32")]
    pub dtype: String,
    /// CPU threads, at most the machine's logical cores [default: RAYON_NUM_THREADS, else all
    /// cores].
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Texts per forward batch (1 to 1024).
    #[arg(long, global = true, default_value_t = 32)]
    pub batch_size: usize,
    /// No progress bars or notes on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(ClapArgs, Debug, Clone)]
pub struct RankArgs {
    /// Number of results (1 to 10000).
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// Drop results scoring below this (dense: cosine; lexical: BM25 share of the query's own
    /// score; hybrid: fused score; each about 0-1; between -1 and 1).
    #[arg(long)]
    pub min_score: Option<f32>,
    /// Only papers from digests dated on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Only papers from digests dated on or before this day (YYYY-MM-DD).
    #[arg(long)]
    pub until: Option<String>,
    /// Re-rank by maximal marginal relevance; 0 = relevance only, 1 = diversity only.
    #[arg(long)]
    pub diversity: Option<f32>,
    /// Show the sentence of each abstract that best matches.
    #[arg(long)]
    pub explain: bool,
    /// Search every vector instead of the HNSW graph.
    #[arg(long)]
    pub exact: bool,
    /// Recency: a score halves for every DAYS a paper is older than the newest one ranked
    /// (1 to 3650).
    #[arg(long, value_name = "DAYS")]
    pub half_life: Option<f32>,
    /// Only papers whose title or abstract holds TERM (every word of it; compared as the
    /// lexical index reads text: case-blind, plurals stemmed). Repeatable.
    #[arg(long, value_name = "TERM")]
    pub must: Vec<String>,
    /// No paper whose title or abstract holds TERM (every word of it). Repeatable.
    #[arg(long, value_name = "TERM")]
    pub exclude: Vec<String>,
    /// Only papers listing this category (cs.CL; or an archive: cs). Repeatable: any of them.
    #[arg(long, value_name = "CATEGORY")]
    pub category: Vec<String>,
    /// Evidence to rank by: dense (sentence embeddings), lexical (BM25 over titles and
    /// abstracts: exact terms) or hybrid (both, fused).
    #[arg(long, value_enum, default_value = "hybrid")]
    pub mode: ModeArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Pseudo-relevance feedback (`similar`, `query`).
#[derive(ClapArgs, Debug, Clone)]
pub struct FeedbackArgs {
    /// Pseudo-relevance feedback: move the dense query vector towards the mean of its K
    /// nearest papers before ranking (Rocchio; 1 to 50). Off by default (see README,
    /// "Choosing a model").
    #[arg(long, value_name = "K")]
    pub prf: Option<usize>,
    /// Weight of the K papers' mean against the query (0 to 4).
    #[arg(long, value_name = "W", requires = "prf", default_value_t = papersim::rank::feedback::DEFAULT_FEEDBACK_WEIGHT)]
    pub prf_weight: f32,
}

impl FeedbackArgs {
    /// The feedback to rank with, checked; refused in lexical mode, which has no vector to move.
    pub fn feedback(&self, mode: ModeArg) -> Result<Option<papersim::rank::Feedback>> {
        let Some(papers) = self.prf else {
            return Ok(None);
        };
        if matches!(mode, ModeArg::Lexical) {
            anyhow::bail!(
                "--prf moves the dense query vector, and --mode lexical uses none: use --mode \
                 dense or hybrid"
            );
        }
        let feedback = papersim::rank::Feedback {
            papers,
            weight: self.prf_weight,
        };
        papersim::rank::feedback::validate(&feedback)?;
        Ok(Some(feedback))
    }
}

/// The reader's liked and disliked papers (`recommend`, `triage`).
#[derive(ClapArgs, Debug, Clone)]
pub struct ProfileArgs {
    /// Liked papers (ids or titles).
    #[arg(long, num_args = 1..)]
    pub like: Vec<String>,
    /// Disliked papers (ids or titles).
    #[arg(long, num_args = 1..)]
    pub unlike: Vec<String>,
    /// Profile file {"like": [...], "unlike": [...]} [default: the stored profile (`papersim
    /// like`), else <library>/profile.json].
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Only the stored likes of this tag (one interest).
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
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
pub enum EmbedFormat {
    Npy,
    Jsonl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InfoFormat {
    Table,
    Json,
}

/// The ranking options of `rank`, checked (`RankOptions::validate` holds the bounds).
pub fn rank_options(rank: &RankArgs) -> Result<RankOptions> {
    for d in [&rank.since, &rank.until].into_iter().flatten() {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .with_context(|| format!("date `{d}` is not YYYY-MM-DD"))?;
    }
    let opts = RankOptions {
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
        half_life: rank.half_life,
        must: rank.must.clone(),
        exclude: rank.exclude.clone(),
        categories: rank.category.clone(),
        interests: Vec::new(),
        feedback: None,
    };
    opts.validate()?;
    Ok(opts)
}

impl Global {
    /// Refuses global options outside their bounds, saying why.
    pub fn check(&self) -> Result<()> {
        if let Some(n) = self.threads {
            // Where the core count cannot be read, one thread per core of a large machine.
            let cores = std::thread::available_parallelism().map_or(256, |n| n.get());
            if !(1..=cores).contains(&n) {
                bail!(
                    "--threads must be at least 1 and at most {cores} (the logical cores of this \
                     machine), got {n}: more threads than cores only compete for them"
                );
            }
        }
        if !(1..=MAX_BATCH_TEXTS).contains(&self.batch_size) {
            bail!(
                "--batch-size must be at least 1 and at most {MAX_BATCH_TEXTS}, got {}: a batch \
                 is held in memory at once, and {} padded tokens per batch cap it anyway",
                self.batch_size,
                BatchLimits::default().max_tokens
            );
        }
        Ok(())
    }
}
