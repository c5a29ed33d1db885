//! `similar`: papers like a paper of the library.

use super::candidates::{count, gather};
use super::feedback::expand;
use super::finish::finish;
use super::{same_title_rows, RankOptions, Ranked, Retrieval, DUPLICATE_COSINE};
use crate::index::dot;
use crate::library::Library;
use crate::Result;

/// How many of a paper's terms (those of the highest count × idf) the lexical index is
/// queried with when `similar` is hybrid. A whole abstract is about a hundred terms, and the
/// common ones cost the most (their postings are the longest): at 100,000 papers the full
/// query took 8 of the 11 ms of a server's hybrid `similar` search. On the open evaluation
/// (docs/hybrid.md) 25 terms left hybrid precision@10 within noise (0.5893 → 0.5878, paired
/// s.e. 0.0038); lexical mode alone lost more (0.520 → 0.493), so it keeps every term.
pub const SIMILAR_LEXICAL_TERMS: usize = 25;

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
    let same_title = same_title_rows(lib, &[row])?;
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
        match retrieval {
            Retrieval::Hybrid(_) => SIMILAR_LEXICAL_TERMS,
            _ => usize::MAX,
        },
    )?;
    let mut ranked = Vec::new();
    for r in c.fused(retrieval, false) {
        if r.row != row
            && dot(seed, &lib.vector(r.row)) < DUPLICATE_COSINE
            && !same_title.contains(&r.row)
        {
            ranked.push(r);
        }
    }
    finish(lib, ranked, opts)
}
