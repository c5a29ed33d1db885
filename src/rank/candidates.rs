//! Candidates: the papers worth scoring for a query, from the indexes the [`Retrieval`] mode
//! uses, each with its evidence. More are taken than k, so that filters and re-ranking have
//! room.

use std::collections::HashSet;

use super::finish::sort_ranked;
use super::{RankOptions, Ranked, Retrieval};
use crate::index::lexical::top_hits;
use crate::index::{dot, Hit};
use crate::library::Library;
use crate::{Error, Result};

/// How many candidates each index gives: all when a date window, a filter, recency or
/// diversity needs room,
/// else at least 4k and 50 (`extra` more for papers the caller will drop, such as the liked
/// ones).
pub fn count(lib: &Library, opts: &RankOptions, extra: usize) -> usize {
    candidate_count(lib.len(), opts, extra)
}

/// [`count`] for a library of `total` papers: what a ranking asks a store for around each
/// vector it searches (`crate::store::Need::per_query`).
pub fn candidate_count(total: usize, opts: &RankOptions, extra: usize) -> usize {
    let want = if opts.needs_every_paper() {
        total
    } else {
        (opts.k.saturating_add(extra))
            .max(opts.k.saturating_mul(4))
            .max(50)
    };
    want.min(total)
}

/// Candidates of one query with their evidence, index for index.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    pub rows: Vec<usize>,
    /// Cosine to the query vector (empty in lexical mode).
    pub dense: Vec<f32>,
    /// BM25 similarity to the query text (empty in dense mode).
    pub lexical: Vec<f32>,
}

impl Candidates {
    /// The candidates ranked by their fused evidence ([`Retrieval::fuse`]), best first.
    /// `text`: the query is free text rather than a paper.
    pub fn fused(self, retrieval: Retrieval, text: bool) -> Vec<Ranked> {
        let scores = retrieval.fuse(&self.dense, &self.lexical, text);
        let mut ranked: Vec<Ranked> = self
            .rows
            .into_iter()
            .zip(scores)
            .map(|(row, score)| Ranked {
                row,
                score,
                closest_like: None,
            })
            .collect();
        sort_ranked(&mut ranked);
        ranked
    }
}

/// The `want` best papers for a query by each index `retrieval` uses: its `text` (for the
/// lexical index, queried by at most `lexical_terms` of its terms, see
/// [`LexicalIndex::query_top_terms`](crate::index::lexical::LexicalIndex::query_top_terms))
/// and its unit `vector` (for the dense one; needed unless lexical).
/// Dense and lexical candidates carry their index's score; hybrid ones both measures, the
/// cosine recomputed against the stored vector so that candidates from either index compare.
pub fn gather(
    lib: &Library,
    text: &str,
    vector: Option<&[f32]>,
    opts: &RankOptions,
    retrieval: Retrieval,
    want: usize,
    lexical_terms: usize,
) -> Result<Candidates> {
    let vector =
        || vector.ok_or_else(|| Error::InvalidInput(format!("{retrieval} ranking needs a vector")));
    let from_hits = |hits: Vec<Hit>| -> (Vec<usize>, Vec<f32>) {
        hits.into_iter().map(|h| (h.row, h.score)).unzip()
    };
    match retrieval {
        Retrieval::Dense => {
            let (rows, dense) = from_hits(lib.search(vector()?, want, opts.mode)?);
            Ok(Candidates {
                rows,
                dense,
                lexical: Vec::new(),
            })
        }
        Retrieval::Lexical => {
            let lex = lib.lexical()?;
            let (rows, lexical) =
                from_hits(lex.search(&lex.query_top_terms(text, lexical_terms), want)?);
            Ok(Candidates {
                rows,
                dense: Vec::new(),
                lexical,
            })
        }
        Retrieval::Hybrid(_) => {
            let v = vector()?;
            // The two indexes at once: at a million papers each takes about half of a one-shot
            // `similar` (the vector scan waits on memory, BM25 on the postings it decodes);
            // one after the other within `on_this_thread`.
            let (dense, similarities) = super::join(
                || lib.search(v, want, opts.mode),
                || -> Result<Vec<f32>> {
                    let lex = lib.lexical()?;
                    lex.similarities(&lex.query_top_terms(text, lexical_terms))
                },
            );
            let similarities = similarities?;
            let mut rows = Vec::new();
            let mut seen = HashSet::new();
            for h in dense?.into_iter().chain(top_hits(&similarities, want)) {
                if seen.insert(h.row) {
                    rows.push(h.row);
                }
            }
            Ok(Candidates {
                dense: rows.iter().map(|&r| dot(v, &lib.vector(r))).collect(),
                lexical: rows.iter().map(|&r| similarities[r]).collect(),
                rows,
            })
        }
    }
}

/// The union of every liked paper's neighbourhood in each index `retrieval` uses, so that
/// every interest is represented. `like_similarities`: per liked paper, its lexical
/// similarity to every library paper (empty unless lexical evidence is used).
pub fn around_likes(
    lib: &Library,
    likes: &[usize],
    like_similarities: &[Vec<f32>],
    opts: &RankOptions,
    retrieval: Retrieval,
    want: usize,
) -> Result<Vec<usize>> {
    let mut pool = Vec::new();
    let mut seen = HashSet::new();
    for (i, &like) in likes.iter().enumerate() {
        let dense = if retrieval.uses_dense() {
            lib.search(&lib.vector(like), want, opts.mode)?
        } else {
            Vec::new()
        };
        let lexical = match like_similarities.get(i) {
            Some(s) if retrieval.uses_lexical() => top_hits(s, want),
            _ => Vec::new(),
        };
        for h in dense.into_iter().chain(lexical) {
            if seen.insert(h.row) {
                pool.push(h.row);
            }
        }
    }
    Ok(pool)
}
