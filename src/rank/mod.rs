//! Ranking: one implementation of each command — [`similar`] (a library paper), [`query`]
//! (free text), [`recommend`] (a reader's liked and disliked papers) and [`triage`] (a new
//! digest's papers for a reader) — each the same four stages:
//!
//! 1. **candidates** ([`candidates`]): from the dense index, the lexical index or both, as the
//!    [`Retrieval`] mode says, with each candidate's evidence (its cosine, its BM25 share);
//! 2. **fusion** ([`fusion`]): the evidence into one score. Dense and lexical ranking are the
//!    fusion's two edge cases (one measure taken as it is), hybrid mixes both;
//! 3. **profile** ([`profile`], reader rankings only): a candidate's evidence against the
//!    closest liked paper, less a penalty for being close to a disliked one;
//! 4. **finish** ([`finish`]): date window, minimum score, diversity (MMR), k, and for
//!    reader rankings the per-interest round-robin.
//!
//! `--explain` sentences are scored here too ([`explain`]), the reader's filters and recency
//! applied ([`filters`]), a profile measured by leave-one-out ([`eval`]), and a query vector
//! expanded by pseudo-relevance feedback ([`feedback`]).
//!
//! May import: `crate::library`, `crate::index`, `crate::paper`, `crate::error`, and
//! `crate::encode` for [`explain`] alone (it embeds an abstract's sentences). Never
//! `crate::digest`: what it ranks arrives as library rows or as texts and vectors.

pub mod candidates;
pub mod eval;
pub mod explain;
pub mod feedback;
pub mod filters;
pub mod finish;
pub mod fusion;
pub mod profile;
mod query;
mod recommend;
mod similar;
mod triage;

use std::collections::HashSet;

use crate::library::{Library, SearchMode};
use crate::{Error, Result};

pub use candidates::candidate_count;
pub use explain::{best_sentence, sentences};
pub use feedback::{expand, FEEDBACK_WEIGHT_RANGE, MAX_FEEDBACK_PAPERS};
pub use filters::HALF_LIFE_DAYS;
pub use finish::mmr;
pub use fusion::{Fusion, Retrieval, PAPER_FUSION, TEXT_FUSION};
pub use profile::{profile_score, Profile, DISLIKE_FLOOR, DISLIKE_WEIGHT, LEXICAL_DISLIKE_FLOOR};
pub use query::query;
pub use recommend::recommend;
pub use similar::{similar, SIMILAR_LEXICAL_TERMS};
pub use triage::{triage, TriagePaper, Triaged};

thread_local! {
    /// Set by [`on_this_thread`]: rankings keep their work on the calling thread.
    static ON_THIS_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` with every ranking it makes done on the calling thread, one stage after
/// another, instead of the hybrid modes searching both indexes at once on rayon's threads.
/// For a server whose cores are all taken by other requests: a split there only adds
/// hand-offs between threads, and the request waits for a rayon thread to be free.
pub fn on_this_thread<R>(work: impl FnOnce() -> R) -> R {
    /// Restores the flag as it was, also when `work` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ON_THIS_THREAD.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(ON_THIS_THREAD.with(|f| f.replace(true)));
    work()
}

/// Both closures' results: side by side on rayon's threads, or one after the other within
/// [`on_this_thread`].
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if ON_THIS_THREAD.with(|f| f.get()) {
        (a(), b())
    } else {
        rayon::join(a, b)
    }
}

/// Cosine above which two papers count as duplicates of each other.
pub const DUPLICATE_COSINE: f32 = 0.995;

/// Most results a ranking returns (`-k`): a ranking is read from its top, and each result
/// costs at least four candidates searched, scored and sorted.
pub const MAX_K: usize = 10_000;
/// Bounds of `--min-score`: every score is a cosine (−1 to 1), a BM25 share (0 to 1) or a mix
/// of them, so a bound outside keeps or drops everything.
pub const MIN_SCORE_RANGE: std::ops::RangeInclusive<f32> = -1.0..=1.0;

/// Options shared by every ranking.
#[derive(Debug, Clone)]
pub struct RankOptions {
    pub k: usize,
    pub min_score: Option<f32>,
    /// Inclusive ISO dates (YYYY-MM-DD) on the dates of the digests a paper came from.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Maximal-marginal-relevance weight in [0, 1]: 0 ranks by relevance alone.
    pub diversity: Option<f32>,
    /// How the dense index is searched.
    pub mode: SearchMode,
    /// Recency: a score halves for every this many days a paper is older than the newest
    /// ranked (within [`HALF_LIFE_DAYS`]; see [`filters::decay`]).
    pub half_life: Option<f32>,
    /// Terms every result must hold, tokenised and stemmed as the lexical index reads text.
    pub must: Vec<String>,
    /// Terms no result may hold (a term of several words: all of them).
    pub exclude: Vec<String>,
    /// Categories a result must list one of (`cs` for every `cs.*`), compared case-blind.
    pub categories: Vec<String>,
    /// Reader rankings: per liked paper, in the order given, the interest (a tag) it belongs
    /// to; the round-robin interleaves interests. Empty: each liked paper is an interest.
    pub interests: Vec<usize>,
    /// Pseudo-relevance feedback for `query` and `similar` ([`feedback::expand`]): the dense
    /// query vector moved towards its nearest papers before ranking. `None`: off.
    pub feedback: Option<Feedback>,
}

/// How much pseudo-relevance feedback to apply: the `papers` nearest to the query, with the
/// mean of their vectors added at `weight` ([`feedback::expand`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    pub papers: usize,
    pub weight: f32,
}

impl RankOptions {
    /// Whether a filter or re-weighting looks at every paper, so that candidates must be all
    /// papers rather than the nearest few.
    pub fn needs_every_paper(&self) -> bool {
        self.since.is_some()
            || self.until.is_some()
            || self.diversity.is_some()
            || self.half_life.is_some()
            || !self.must.is_empty()
            || !self.exclude.is_empty()
            || !self.categories.is_empty()
    }

    /// Refuses options outside their bounds, saying why ([`MAX_K`], [`MIN_SCORE_RANGE`],
    /// diversity in [0, 1]); not a number (NaN) is outside every bound.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        if !(1..=MAX_K).contains(&self.k) {
            return bad(format!(
                "-k must be at least 1 and at most {MAX_K}, got {}: a ranking is read from \
                 its top, and every result costs four candidates searched and scored",
                self.k
            ));
        }
        if let Some(m) = self.min_score {
            if !MIN_SCORE_RANGE.contains(&m) {
                return bad(format!(
                    "--min-score must be a number between {} and {}, got {m}: scores are \
                     cosines, BM25 shares or mixes of them, all within that range",
                    MIN_SCORE_RANGE.start(),
                    MIN_SCORE_RANGE.end()
                ));
            }
        }
        if let Some(h) = self.half_life {
            if !HALF_LIFE_DAYS.contains(&h) {
                return bad(format!(
                    "--half-life must be between {} and {} days, got {h}: dates are days, so \
                     under one day cannot tell one day from the next, and past ten years every \
                     paper counts as recent",
                    HALF_LIFE_DAYS.start(),
                    HALF_LIFE_DAYS.end()
                ));
            }
        }
        filters::Filters::parse(self)?;
        if let Some(l) = self.diversity {
            if !(0.0..=1.0).contains(&l) {
                return bad(format!(
                    "--diversity must be between 0 and 1, got {l}: it weighs diversity \
                     against relevance (0 = relevance only, 1 = diversity only)"
                ));
            }
        }
        Ok(())
    }
}

impl Default for RankOptions {
    fn default() -> Self {
        RankOptions {
            k: 10,
            min_score: None,
            since: None,
            until: None,
            diversity: None,
            mode: SearchMode::Auto,
            half_life: None,
            must: Vec::new(),
            exclude: Vec::new(),
            categories: Vec::new(),
            interests: Vec::new(),
            feedback: None,
        }
    }
}

/// One ranked library paper.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub row: usize,
    pub score: f32,
    /// For profile rankings: the liked paper (row) this one is closest to.
    pub closest_like: Option<usize>,
}

/// The rows of every paper whose (normalised) title is that of one of `rows`, `rows`
/// included: copies of a paper under another id. Found through the title keys, which reads a
/// few records rather than every candidate's.
pub(crate) fn same_title_rows(lib: &Library, rows: &[usize]) -> Result<HashSet<usize>> {
    let mut same = HashSet::new();
    for &r in rows {
        same.extend(lib.rows_of_title(&lib.paper(r)?.title)?);
    }
    Ok(same)
}

/// The index and value of the first largest element (`(0, -inf)` when empty).
pub(crate) fn argmax(values: impl IntoIterator<Item = f32>) -> (usize, f32) {
    values.into_iter().enumerate().fold(
        (0, f32::NEG_INFINITY),
        |acc, x| if x.1 > acc.1 { x } else { acc },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_this_thread_keeps_both_halves_here_and_restores_the_split() {
        let here = std::thread::current().id();
        let (a, b) = on_this_thread(|| {
            join(
                || std::thread::current().id(),
                || std::thread::current().id(),
            )
        });
        assert_eq!((a, b), (here, here));
        // Outside it, joins go to rayon's threads again, also after a panic inside it.
        let caught = std::panic::catch_unwind(|| on_this_thread(|| panic!("inside")));
        assert!(caught.is_err());
        let (a, b) = join(
            || std::thread::current().id(),
            || std::thread::current().id(),
        );
        assert!(
            a != here && b != here,
            "a join outside runs on rayon's threads"
        );
    }
}
