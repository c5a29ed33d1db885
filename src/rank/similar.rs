//! `similar`: papers like a paper of the library.

use super::candidates::{count, gather};
use super::finish::{finish, sort_ranked};
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
    let seed = lib.vector(row);
    let seed_title = normalize_title(&lib.papers()[row].title);
    let want = count(lib, opts, 10);
    let c = gather(
        lib,
        &lib.lexical_text(row),
        Some(seed),
        opts,
        retrieval,
        want,
    )?;
    let scores = retrieval.fuse(&c.dense, &c.lexical, false);
    let mut ranked: Vec<Ranked> = c
        .rows
        .into_iter()
        .zip(scores)
        .filter(|&(r, _)| {
            r != row
                && dot(seed, lib.vector(r)) < DUPLICATE_COSINE
                && normalize_title(&lib.papers()[r].title) != seed_title
        })
        .map(|(row, score)| Ranked {
            row,
            score,
            closest_like: None,
        })
        .collect();
    sort_ranked(&mut ranked);
    Ok(finish(lib, ranked, opts))
}
