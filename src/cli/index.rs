//! `papersim index rebuild`: the derived indexes rebuilt, optionally after re-embedding.

use anyhow::Result;

use super::{library_dir, load_embedder, progress, Global};
use papersim::pipeline::{self, IndexChange};

pub fn rebuild(g: &Global, change: IndexChange, reembed: bool, wait: bool) -> Result<()> {
    let bar = progress::Bar::new(g.quiet);
    // Re-embedding uses --model (or the default model), not the library's: it switches models.
    let load = reembed.then_some(|| load_embedder(g, None, &bar));
    let (papers, params, stored) =
        pipeline::rebuild_index(&library_dir(g), wait, change, load, &bar)?;
    println!(
        "rebuilt the index of {} (HNSW m={}, ef_construction={}, ef_search={}; graph {})",
        super::output::papers(papers),
        params.m,
        params.ef_construction,
        params.ef_search,
        if stored {
            "stored"
        } else {
            "built in memory when a process needs it"
        }
    );
    if let Some(dtype) = change.vector_dtype {
        println!("vectors stored as {dtype}");
    }
    Ok(())
}
