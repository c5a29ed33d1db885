//! `papersim embed`: a digest's papers (or lines of text) into a `.npy` matrix and a JSONL
//! sidecar naming its rows, or JSON lines on stdout.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::{
    announce, load_embedder, note, parse_opts, progress, read_digests, EmbedFormat, Global,
};
use papersim::encode::model::DEFAULT_MODEL;

pub fn embed(
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
