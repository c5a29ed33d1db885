//! `papersim ingest`: digests into the library.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::output::printable_lines;
use super::{library_dir, load_embedder, parse_opts, progress, read_digests, Global, InfoFormat};

#[allow(clippy::too_many_arguments)]
pub fn ingest(
    g: &Global,
    paths: &[PathBuf],
    embeddings: Option<&Path>,
    vector_dtype: Option<papersim::library::VectorDtype>,
    input_format: &str,
    date: Option<&str>,
    wait: bool,
    format: InfoFormat,
) -> Result<()> {
    let bar = progress::Bar::new(g.quiet);
    if embeddings.is_some() && g.model.is_some() {
        bail!(
            "--model (or PAPERSIM_MODEL) does not apply to --embeddings: the matrix's sidecar \
             records the model its vectors came from, and no model is loaded"
        );
    }
    let digests = read_digests(paths, &parse_opts(input_format, date)?)?;
    let report = match embeddings {
        Some(matrix) => papersim::pipeline::ingest_embedded(
            &library_dir(g),
            &digests,
            wait,
            vector_dtype,
            matrix,
        )?,
        None => papersim::pipeline::ingest(
            &library_dir(g),
            &digests,
            wait,
            vector_dtype,
            None,
            |model| load_embedder(g, model, &bar),
            &bar,
        )?,
    };
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
                "read {} from {} digest(s): {} added, {} already present, {} skipped; library now holds {}",
                super::output::papers(report.read),
                report.digests.len(),
                report.added,
                report.already_present,
                report.skipped.len(),
                super::output::papers(report.papers_total)
            )?;
            for s in &report.skipped {
                writeln!(out, "  skipped: {}", printable_lines(s))?;
            }
            for w in &report.warnings {
                writeln!(out, "  warning: {}", printable_lines(w))?;
            }
            for n in &report.identity {
                writeln!(out, "  {}", printable_lines(&n.to_string()))?;
            }
        }
    }
    Ok(())
}
