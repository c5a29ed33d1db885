//! `papersim init --engine qdrant` and `papersim export --engine qdrant`: a library whose
//! papers live in a Qdrant collection (docs/qdrant.md).

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use clap::Args as ClapArgs;

use super::{library_dir, load_embedder, progress, Global, InfoFormat};
use papersim::library::Engine;
use papersim::store::qdrant::{self, check_collection, check_layout, parse_urls};

/// The engine that keeps the papers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Qdrant,
}

/// Where and how a Qdrant library is kept.
#[derive(ClapArgs, Debug, Clone)]
pub struct EngineArgs {
    #[arg(long, value_enum)]
    pub engine: EngineKind,
    /// The REST URL of a Qdrant node (http://HOST:6333, or https://), or several separated by
    /// commas: each command tries them in order, so one node down leaves the others.
    #[arg(long, required = true)]
    pub url: String,
    /// The collection (letters, digits, `_`, `-`).
    #[arg(long, default_value = qdrant::DEFAULT_COLLECTION)]
    pub collection: String,
    /// Shards of a new collection (1 to 64).
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Copies of each shard on distinct nodes (1 to 16); 2 keeps reads and writes working
    /// with one node down.
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// The cluster's API key; never stored in the library (later commands read
    /// PAPERSIM_QDRANT_API_KEY).
    #[arg(long, env = "PAPERSIM_QDRANT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Wait for another writer of the library directory instead of failing.
    #[arg(long)]
    pub wait: bool,
}

impl EngineArgs {
    /// The engine as the manifest records it, every value checked.
    fn engine(&self) -> Result<Engine> {
        let urls = parse_urls(&self.url)?;
        check_collection(&self.collection)?;
        check_layout(self.shards, self.replicas)?;
        Ok(Engine {
            kind: qdrant::KIND.to_string(),
            urls,
            collection: self.collection.clone(),
            shards: self.shards,
            replicas: self.replicas,
        })
    }
}

/// `papersim init`: a new library kept in a Qdrant collection, for the model given (or the
/// default).
pub fn init(g: &Global, args: &EngineArgs) -> Result<()> {
    let engine = args.engine()?;
    let dir = library_dir(g);
    let bar = progress::Bar::new(g.quiet);
    let embedder = load_embedder(g, None, &bar)?;
    let model = papersim::pipeline::model_info(embedder.files())?;
    papersim::pipeline::init_remote(
        &dir,
        model.clone(),
        engine.clone(),
        args.api_key.as_deref(),
        args.wait,
    )?;
    super::feedback::say(&format!(
        "created library {} in Qdrant collection `{}` at {} ({} shard(s), {} replica(s)); model {}",
        dir.display(),
        engine.collection,
        engine.urls.join(", "),
        engine.shards,
        engine.replicas,
        model.id
    ))
}

/// `papersim export`: the local library into a Qdrant library at `to`.
pub fn export(g: &Global, args: &EngineArgs, to: &Path, format: InfoFormat) -> Result<()> {
    let engine = args.engine()?;
    let bar = progress::Bar::new(g.quiet);
    let report = papersim::pipeline::export_to_qdrant(
        &library_dir(g),
        to,
        engine.clone(),
        args.api_key.as_deref(),
        args.wait,
        &bar,
    )?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        InfoFormat::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({
                    "library": to,
                    "collection": engine.collection,
                    "papers": report.papers,
                    "written": report.written,
                    "already_there": report.papers - report.written,
                    "collection_papers": report.collection_papers,
                }),
            )?;
            writeln!(out)?;
        }
        InfoFormat::Table => writeln!(
            out,
            "exported {} to Qdrant collection `{}` ({} written, {} already there); library {} now holds {}",
            super::output::papers(report.papers),
            engine.collection,
            report.written,
            report.papers - report.written,
            to.display(),
            super::output::papers(report.collection_papers)
        )?,
    }
    Ok(())
}
