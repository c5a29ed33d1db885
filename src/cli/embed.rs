//! `papersim embed`: a digest's papers (or lines of text) into a `.npy` matrix and a JSONL
//! sidecar naming its rows (`papersim::library::export`), or JSON lines on stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::output::printable;
use super::{
    announce, load_embedder, note, parse_opts, progress, read_digests, EmbedFormat, Global,
};
use papersim::encode::model::DEFAULT_MODEL;
use papersim::library::export::{self, RowSource, SidecarRow};

pub fn embed(
    g: &Global,
    path: &Path,
    lines: bool,
    output: &Path,
    format: EmbedFormat,
    input_format: &str,
) -> Result<()> {
    let bar = progress::Bar::new(g.quiet);
    // The files the rows are read from: the matrix and its sidecar may be none of them.
    let mut inputs: Vec<PathBuf> = Vec::new();
    if path.as_os_str() != "-" {
        inputs.push(path.to_path_buf());
    }
    // Each row: (its name in the sidecar, text to embed).
    let rows: Vec<(SidecarRow, String)> = if lines {
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
            .map(|(row, l)| {
                let text = l.to_string();
                (
                    SidecarRow {
                        row,
                        source: RowSource::Line { text: text.clone() },
                    },
                    text,
                )
            })
            .collect()
    } else {
        let digests = read_digests(&[path.to_path_buf()], &parse_opts(input_format, None)?)?;
        for d in &digests {
            for s in &d.skipped {
                note(g, &format!("skipped: {s}"));
            }
            for w in &d.warnings {
                note(g, &format!("warning: {w}"));
            }
            if d.source != papersim::digest::STDIN_SOURCE {
                inputs.push(PathBuf::from(&d.source));
            }
        }
        digests
            .iter()
            .flat_map(|d| d.papers.iter().map(move |p| (d, p)))
            .enumerate()
            .map(|(row, (d, p))| {
                let text = p.embedding_text();
                let source = RowSource::Paper {
                    id: p.id(),
                    title: p.title.clone(),
                    digest: d.source.clone(),
                    text_sha256: Some(papersim::paper::text_sha256(&text)),
                };
                (SidecarRow { row, source }, text)
            })
            .collect()
    };
    if rows.is_empty() {
        bail!("{}: nothing to embed", path.display());
    }
    // Refused before the model loads: a bad -o should not cost an embedding run.
    if format == EmbedFormat::Npy {
        export::check_outputs(output, &inputs)?;
    }
    let embedder = {
        let mut g = g.clone();
        g.model = g.model.or_else(|| Some(DEFAULT_MODEL.to_string()));
        load_embedder(&g, None, &bar)?
    };
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    announce(g, &embedder, texts.len());
    let (vectors, _) = embedder.embed_with(&texts, &bar)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        EmbedFormat::Jsonl => {
            /// A sidecar row with its vector: one line of `--format jsonl`.
            #[derive(serde::Serialize)]
            struct Embedded<'a> {
                #[serde(flatten)]
                name: &'a SidecarRow,
                embedding: &'a [f32],
            }
            for (i, (name, _)) in rows.iter().enumerate() {
                let embedding = vectors.row(i);
                serde_json::to_writer(&mut out, &Embedded { name, embedding })?;
                writeln!(out)?;
            }
        }
        EmbedFormat::Npy => {
            let names: Vec<SidecarRow> = rows.into_iter().map(|(name, _)| name).collect();
            let model = papersim::pipeline::model_info(embedder.files())?;
            let sidecar = export::write(output, &vectors.data, &model, &names, &inputs)?;
            writeln!(
                out,
                "wrote {} vectors of dimension {} to {} (rows named in {})",
                vectors.len(),
                vectors.dim,
                printable(&output.display().to_string()),
                printable(&sidecar.display().to_string())
            )?;
        }
    }
    Ok(())
}
