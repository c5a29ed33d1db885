//! `papersim info`: what the library holds.

use std::io::Write;

use anyhow::Result;

use super::output::printable;
use super::{library_dir, Global, InfoFormat};
use papersim::library::Library;

/// Reads the manifest only, so that `info` costs the same at any library size.
pub fn info(g: &Global, format: InfoFormat) -> Result<()> {
    let mut lib = Library::summary(&library_dir(g))?;
    // A Qdrant library's papers are counted in its collection (one request).
    if lib.manifest.engine.is_some() {
        lib.manifest.papers = papersim::store::open(&lib.root, None)?.len()?;
    }
    let m = &lib.manifest;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        InfoFormat::Json => {
            let mut doc = papersim::report::info(&lib);
            if let Some(e) = &m.engine {
                doc["engine"] = serde_json::to_value(e)?;
            }
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        InfoFormat::Table => {
            writeln!(
                out,
                "library     {}",
                printable(&lib.root.display().to_string())
            )?;
            writeln!(out, "papers      {}", m.papers)?;
            if let Some(e) = &m.engine {
                writeln!(
                    out,
                    "engine      {} collection `{}` at {} ({} shard(s), {} replica(s))",
                    printable(&e.kind),
                    printable(&e.collection),
                    printable(&e.urls.join(", ")),
                    e.shards,
                    e.replicas
                )?;
            }
            writeln!(out, "digests     {}", m.digests.len())?;
            writeln!(
                out,
                "model       {} (dimension {}, {} pooling, max {} tokens)",
                printable(&m.model.id),
                m.model.dim,
                printable(&capitalized(&m.model.pooling)),
                m.model.max_seq_length
            )?;
            writeln!(out, "fingerprint {}", printable(&m.model.fingerprint))?;
            writeln!(out, "vectors     {}", m.vector_dtype)?;
            writeln!(
                out,
                "index       HNSW m={} ef_construction={} ef_search={}, graph {} (commands scan the vectors exactly)",
                m.index.m,
                m.index.ef_construction,
                m.index.ef_search,
                if m.files.graph.is_some() {
                    "stored"
                } else {
                    "not stored (built by a process that needs it)"
                }
            )?;
            writeln!(
                out,
                "size        {:.1} MiB on disk (generation {}{})",
                lib.size_on_disk as f64 / 1048576.0,
                m.generation,
                match m.segments.len() {
                    0 => String::new(),
                    1 => ", 1 segment".to_string(),
                    n => format!(", {n} segments"),
                }
            )?;
            writeln!(out, "updated     {}", printable(&m.updated))?;
            if let (Some(first), Some(last)) = (
                m.digests.iter().filter_map(|d| d.date.as_deref()).min(),
                m.digests.iter().filter_map(|d| d.date.as_deref()).max(),
            ) {
                writeln!(
                    out,
                    "dates       {} .. {}",
                    printable(first),
                    printable(last)
                )?;
            }
        }
    }
    Ok(())
}

/// `mean` → `Mean`.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
