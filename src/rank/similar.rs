//! `similar`: papers like a paper of the library.

use super::candidates::{count, gather};
use super::feedback::expand;
use super::finish::finish;
use super::{RankOptions, Ranked, Retrieval, DUPLICATE_COSINE};
use crate::index::dot;
use crate::library::Library;
use crate::paper::normalize_title;
use crate::Result;

/// Papers like the paper in `row`, by `retrieval`; it and its duplicates (the same normalised
/// title, or a cosine of at least [`DUPLICATE_COSINE`]) never appear.
pub fn similar(
    lib: &Library,
    row: usize,
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<Ranked>> {
    opts.validate()?;
    let seed = &lib.vector(row);
    let seed_title = normalize_title(&lib.paper(row)?.title);
    let want = count(lib, opts, 10);
    // Feedback moves the search vector only; duplicates are still judged against the paper.
    let expanded = match opts.feedback {
        Some(f) if retrieval.uses_dense() => Some(expand(lib, seed, f.papers, f.weight, &[row])?),
        _ => None,
    };
    let c = gather(
        lib,
        &lib.lexical_text(row)?,
        Some(expanded.as_deref().unwrap_or(seed)),
        opts,
        retrieval,
        want,
    )?;
    let mut ranked = Vec::new();
    for r in c.fused(retrieval, false) {
        if r.row != row
            && dot(seed, &lib.vector(r.row)) < DUPLICATE_COSINE
            && normalize_title(&lib.paper(r.row)?.title) != seed_title
        {
            ranked.push(r);
        }
    }
    finish(lib, ranked, opts)
}
