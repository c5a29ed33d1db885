//! Ranking modes: dense (the sentence embeddings' cosine, [`crate::recommend`]), lexical (BM25,
//! [`crate::lexical`]) and hybrid (both, fused), for `similar`, `query`, `recommend` and
//! `triage`. Dense mode is exactly [`crate::recommend`]'s ranking; this module adds the others.
//!
//! Lexical scores are [`LexicalIndex::similarities`]: a paper's BM25 score divided by the
//! query's score against itself, about [0, 1].
//!
//! Hybrid takes candidates from each index (as many as dense ranking alone takes), scores every
//! candidate of the union by both measures (the exact cosine to the stored vector and the BM25
//! similarity), and fuses the two ([`Fusion`]):
//! - [`Fusion::ScoreMix`]: each measure min-max normalised over the candidates, then
//!   `w·dense + (1 − w)·lexical`;
//! - [`Fusion::Rrf`]: reciprocal-rank fusion, `Σ 1/(k + rank)` over the candidates ranked by
//!   each measure (a candidate sharing no term with the query gets no lexical share), divided
//!   by its maximum `2/(k + 1)` so that scores lie in [0, 1] like the others.
//!
//! The default, [`Fusion::Auto`], depends on what the query is, and both halves were chosen on
//! the open evaluation only (figures and the script that produces them: `docs/hybrid.md`):
//! - a paper (`similar`, `recommend`, `triage`): [`PAPER_FUSION`], the score mix with dense
//!   weight 0.7, the best precision@10 on the evaluation's paper-to-paper task;
//! - free text (`query`): [`TEXT_FUSION`], RRF with k = 30, the best precision@10 among the
//!   settings that also rank a paper first when it is looked up by a word only it uses. Score
//!   mixes with dense weight ≥ 0.5 lose such exact terms: a one-word query's only lexical match
//!   cannot outweigh the dense favourites once both measures are min-max scaled.
//!
//! Reader profiles (`recommend`, `triage`) score a candidate by each measure as
//! [`crate::recommend`] does — its similarity to the closest liked paper, less a penalty for
//! being close to a disliked one — and fuse the two profile scores over the candidates.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use crate::index::lexical::{top_hits, LexQuery};
use crate::index::{dot, Hit};
use crate::library::Library;
use crate::paper::normalize_title;
use crate::rank::{
    finish, finish_profile, profile_exclusions, profile_score, sort_ranked, RankOptions, Ranked,
    DISLIKE_WEIGHT, DUPLICATE_COSINE,
};
use crate::{Error, Result};

/// Lexical similarity to a disliked paper below which no penalty applies: papers of one field
/// that share only its common words score 0.02-0.1 (the analogue of
/// [`crate::rank::DISLIKE_FLOOR`] for cosines).
pub const LEXICAL_DISLIKE_FLOOR: f32 = 0.1;

/// How hybrid ranking combines the two measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Min-max normalised scores mixed with this weight on the dense one.
    ScoreMix { dense_weight: f32 },
    /// Reciprocal-rank fusion with this rank offset (60 in the literature).
    Rrf { k: f32 },
    /// [`PAPER_FUSION`] when the query is a paper, [`TEXT_FUSION`] when it is free text.
    Auto,
}

/// Hybrid fusion when the query is a paper (`similar`, `recommend`, `triage`): of score mixes
/// with dense weights 0.1-0.9 and RRF with k = 10, 30, 60, the best precision@10 on the open
/// evaluation (docs/hybrid.md).
pub const PAPER_FUSION: Fusion = Fusion::ScoreMix { dense_weight: 0.7 };

/// Hybrid fusion for free-text queries (`query`): of the same settings, the best precision@10
/// on the open evaluation among those that rank a paper first, when it is looked up by a word
/// that only it uses, at least 95% of the time (docs/hybrid.md).
pub const TEXT_FUSION: Fusion = Fusion::Rrf { k: 30.0 };

impl Fusion {
    /// The concrete fusion for a query that is free text (`text`) or a paper.
    pub fn resolve(self, text: bool) -> Fusion {
        match self {
            Fusion::Auto if text => TEXT_FUSION,
            Fusion::Auto => PAPER_FUSION,
            other => other,
        }
    }

    /// The weight of the dense measure when one is needed per pair (RRF: even).
    fn dense_weight(self) -> f32 {
        match self.resolve(false) {
            Fusion::ScoreMix { dense_weight } => dense_weight,
            _ => 0.5,
        }
    }

    /// Fused scores of candidates whose dense and lexical scores are given, index for index
    /// ([`Fusion::Auto`] fuses as for a paper).
    pub fn fuse(self, dense: &[f32], lexical: &[f32]) -> Vec<f32> {
        assert_eq!(dense.len(), lexical.len());
        match self.resolve(false) {
            Fusion::ScoreMix { dense_weight: w } => {
                let d = min_max(dense);
                let l = min_max(lexical);
                d.iter()
                    .zip(&l)
                    .map(|(d, l)| w * d + (1.0 - w) * l)
                    .collect()
            }
            Fusion::Rrf { k } => {
                let mut fused = vec![0f32; dense.len()];
                for (scores, only_positive) in [(dense, false), (lexical, true)] {
                    let mut order: Vec<usize> = (0..scores.len())
                        .filter(|&i| !only_positive || scores[i] > 0.0)
                        .collect();
                    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
                    for (rank, &i) in order.iter().enumerate() {
                        fused[i] += 1.0 / (k + rank as f32 + 1.0);
                    }
                }
                let max = 2.0 / (k + 1.0);
                fused.iter_mut().for_each(|x| *x /= max);
                fused
            }
            Fusion::Auto => unreachable!("resolved above"),
        }
    }
}

/// Scales to [0, 1] over the slice; a constant slice maps to 1 if positive, else 0.
fn min_max(v: &[f32]) -> Vec<f32> {
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if hi > lo {
        v.iter().map(|x| (x - lo) / (hi - lo)).collect()
    } else {
        v.iter().map(|&x| if x > 0.0 { 1.0 } else { 0.0 }).collect()
    }
}

/// Which evidence ranks papers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retrieval {
    /// Sentence-embedding cosine only.
    Dense,
    /// BM25 over titles and abstracts only.
    Lexical,
    /// Both, fused.
    Hybrid(Fusion),
}

impl Default for Retrieval {
    /// Hybrid, which measured better than either alone (docs/hybrid.md).
    fn default() -> Self {
        Retrieval::Hybrid(Fusion::Auto)
    }
}

impl Retrieval {
    /// Whether this mode needs vectors (an encoder, for text from outside the library).
    pub fn uses_dense(self) -> bool {
        !matches!(self, Retrieval::Lexical)
    }
    pub fn uses_lexical(self) -> bool {
        !matches!(self, Retrieval::Dense)
    }
}

impl FromStr for Retrieval {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "dense" => Ok(Retrieval::Dense),
            "lexical" => Ok(Retrieval::Lexical),
            "hybrid" => Ok(Retrieval::default()),
            other => Err(Error::InvalidInput(format!(
                "unknown mode `{other}`: use dense, lexical or hybrid"
            ))),
        }
    }
}

impl fmt::Display for Retrieval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retrieval::Dense => write!(f, "dense"),
            Retrieval::Lexical => write!(f, "lexical"),
            Retrieval::Hybrid(Fusion::ScoreMix { dense_weight }) => {
                write!(f, "hybrid (score mix, dense weight {dense_weight})")
            }
            Retrieval::Hybrid(Fusion::Rrf { k }) => write!(f, "hybrid (RRF, k={k})"),
            Retrieval::Hybrid(Fusion::Auto) => write!(f, "hybrid"),
        }
    }
}

/// Candidates per index: as many as dense ranking takes (all when filters or diversity need
/// room).
fn candidate_count(lib: &Library, opts: &RankOptions, extra: usize) -> usize {
    let want = if opts.since.is_some() || opts.until.is_some() || opts.diversity.is_some() {
        lib.len()
    } else {
        (opts.k.saturating_add(extra))
            .max(opts.k.saturating_mul(4))
            .max(50)
    };
    want.min(lib.len())
}

/// Candidates for a text (and, in hybrid mode, its vector), best first, before filters.
/// `is_text`: the text is a free-text query rather than a paper's (for [`Fusion::Auto`]).
fn rank_text(
    lib: &Library,
    text: &str,
    is_text: bool,
    vector: Option<&[f32]>,
    opts: &RankOptions,
    retrieval: Retrieval,
    extra: usize,
) -> Result<Vec<Ranked>> {
    let want = candidate_count(lib, opts, extra);
    let lex = lib.lexical()?;
    let query = lex.query(text);
    let ranked = |hits: Vec<Hit>| -> Vec<Ranked> {
        hits.into_iter()
            .map(|h| Ranked {
                row: h.row,
                score: h.score,
                closest_like: None,
            })
            .collect()
    };
    match retrieval {
        Retrieval::Dense => {
            let v =
                vector.ok_or_else(|| Error::InvalidInput("dense ranking needs a vector".into()))?;
            Ok(ranked(lib.search(v, want, opts.mode)?))
        }
        Retrieval::Lexical => Ok(ranked(lex.search(&query, want))),
        Retrieval::Hybrid(fusion) => {
            let v = vector
                .ok_or_else(|| Error::InvalidInput("hybrid ranking needs a vector".into()))?;
            let lexical = lex.similarities(&query);
            let mut rows: Vec<usize> = Vec::new();
            let mut seen = HashSet::new();
            for h in lib
                .search(v, want, opts.mode)?
                .into_iter()
                .chain(top_hits(&lexical, want))
            {
                if seen.insert(h.row) {
                    rows.push(h.row);
                }
            }
            let dense: Vec<f32> = rows.iter().map(|&r| dot(v, lib.vector(r))).collect();
            let lex_scores: Vec<f32> = rows.iter().map(|&r| lexical[r]).collect();
            let fused = fusion.resolve(is_text).fuse(&dense, &lex_scores);
            let mut out: Vec<Ranked> = rows
                .iter()
                .zip(fused)
                .map(|(&row, score)| Ranked {
                    row,
                    score,
                    closest_like: None,
                })
                .collect();
            sort_ranked(&mut out);
            Ok(out)
        }
    }
}

/// Papers like the paper in `row`, by `retrieval`; it and its duplicates never appear.
pub fn similar(
    lib: &Library,
    row: usize,
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<Ranked>> {
    if retrieval == Retrieval::Dense {
        return super::similar(lib, row, opts);
    }
    let seed = lib.vector(row);
    let seed_title = normalize_title(&lib.papers()[row].title);
    let text = lib.lexical_text(row);
    let ranked = rank_text(lib, &text, false, Some(seed), opts, retrieval, 10)?
        .into_iter()
        .filter(|r| {
            r.row != row
                && dot(seed, lib.vector(r.row)) < DUPLICATE_COSINE
                && normalize_title(&lib.papers()[r.row].title) != seed_title
        })
        .collect();
    Ok(finish(lib, ranked, opts))
}

/// Papers matching free text: by its (unit-norm) vector, its words, or both. `vector` may be
/// `None` in lexical mode.
pub fn query(
    lib: &Library,
    text: &str,
    vector: Option<&[f32]>,
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<Ranked>> {
    if retrieval == Retrieval::Lexical && lib.lexical()?.query(text).is_empty() {
        return Err(Error::InvalidInput(format!(
            "no word of `{text}` occurs in the library's papers (common words and single letters are not indexed)"
        )));
    }
    let ranked = match (retrieval, vector) {
        (Retrieval::Dense, Some(v)) => return super::query(lib, v, opts),
        _ => rank_text(lib, text, true, vector, opts, retrieval, 0)?,
    };
    Ok(finish(lib, ranked, opts))
}

/// A profile score from similarities to the liked and disliked papers: the closest like, less
/// the penalty above `floor` for the closest dislike. Returns (score, index of that like).
fn profile_from(likes: &[f32], unlikes: &[f32], floor: f32) -> (f32, usize) {
    let (best, sim) = likes
        .iter()
        .copied()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |acc, x| if x.1 > acc.1 { x } else { acc },
        );
    let dislike = unlikes.iter().map(|u| u - floor).fold(0f32, f32::max);
    (sim - DISLIKE_WEIGHT * dislike, best)
}

/// Per-candidate profile evidence, fused into scores and closest likes.
struct ProfileEvidence {
    /// (dense profile score, closest like), when dense is used.
    dense: Vec<(f32, usize)>,
    /// (lexical profile score, closest like), when lexical is used.
    lexical: Vec<(f32, usize)>,
    /// Per candidate, per like: w·cosine + (1 − w)·lexical similarity (hybrid only).
    pair: Vec<Vec<f32>>,
}

impl ProfileEvidence {
    fn scores(&self, retrieval: Retrieval) -> Vec<(f32, usize)> {
        match retrieval {
            Retrieval::Dense => self.dense.clone(),
            Retrieval::Lexical => self.lexical.clone(),
            Retrieval::Hybrid(fusion) => {
                let d: Vec<f32> = self.dense.iter().map(|x| x.0).collect();
                let l: Vec<f32> = self.lexical.iter().map(|x| x.0).collect();
                fusion
                    .fuse(&d, &l)
                    .into_iter()
                    .zip(&self.pair)
                    .map(|(score, per_like)| {
                        let best = per_like.iter().copied().enumerate().fold(
                            (0, f32::NEG_INFINITY),
                            |acc, x| if x.1 > acc.1 { x } else { acc },
                        );
                        (score, best.0)
                    })
                    .collect()
            }
        }
    }
}

/// Library papers for a reader who liked `likes` and disliked `unlikes` (rows), by `retrieval`.
pub fn recommend(
    lib: &Library,
    likes: &[usize],
    unlikes: &[usize],
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<Ranked>> {
    if retrieval == Retrieval::Dense {
        return super::recommend(lib, likes, unlikes, opts);
    }
    if likes.is_empty() {
        return Err(Error::InvalidInput(
            "a profile needs at least one liked paper".into(),
        ));
    }
    let lex = lib.lexical()?;
    let sims = |rows: &[usize]| -> Vec<Vec<f32>> {
        rows.iter()
            .map(|&r| lex.similarities(&lex.query(&lib.lexical_text(r))))
            .collect()
    };
    let like_sims = sims(likes);
    let unlike_sims = sims(unlikes);
    let like_vecs: Vec<&[f32]> = likes.iter().map(|&r| lib.vector(r)).collect();
    let unlike_vecs: Vec<&[f32]> = unlikes.iter().map(|&r| lib.vector(r)).collect();
    let (excluded, seed_titles) = profile_exclusions(lib, likes, unlikes);

    // Candidates: each liked paper's neighbourhood in each index used.
    let want = candidate_count(lib, opts, excluded.len());
    let mut pool: Vec<usize> = Vec::new();
    let mut seen = HashSet::new();
    for (i, v) in like_vecs.iter().enumerate() {
        let dense = if retrieval.uses_dense() {
            lib.search(v, want, opts.mode)?
        } else {
            Vec::new()
        };
        for h in dense.into_iter().chain(top_hits(&like_sims[i], want)) {
            if seen.insert(h.row) {
                pool.push(h.row);
            }
        }
    }
    pool.retain(|&r| {
        !excluded.contains(&r)
            && !seed_titles.contains(&normalize_title(&lib.papers()[r].title))
            && like_vecs
                .iter()
                .all(|l| dot(lib.vector(r), l) < DUPLICATE_COSINE)
    });

    let w = match retrieval {
        Retrieval::Hybrid(f) => f.dense_weight(),
        _ => 0.0,
    };
    let mut evidence = ProfileEvidence {
        dense: Vec::new(),
        lexical: Vec::new(),
        pair: Vec::new(),
    };
    for &r in &pool {
        let v = lib.vector(r);
        let lex_likes: Vec<f32> = like_sims.iter().map(|s| s[r]).collect();
        let lex_unlikes: Vec<f32> = unlike_sims.iter().map(|s| s[r]).collect();
        evidence
            .dense
            .push(profile_score(v, &like_vecs, &unlike_vecs));
        evidence.lexical.push(profile_from(
            &lex_likes,
            &lex_unlikes,
            LEXICAL_DISLIKE_FLOOR,
        ));
        evidence.pair.push(
            like_vecs
                .iter()
                .zip(&lex_likes)
                .map(|(l, s)| w * dot(v, l) + (1.0 - w) * s)
                .collect(),
        );
    }
    let scored: Vec<Ranked> = pool
        .iter()
        .zip(evidence.scores(retrieval))
        .map(|(&row, (score, best))| Ranked {
            row,
            score,
            closest_like: Some(likes[best]),
        })
        .collect();
    Ok(finish_profile(lib, scored, opts))
}

/// Scores papers that are not in the library (a new digest's) for a reader: `texts` are their
/// titles and abstracts (see [`crate::index::lexical::paper_text`]), `vectors` their unit vectors,
/// row-major (needed unless `retrieval` is lexical). Returns (paper index, score, index into
/// `likes` of the closest liked paper), best first, without those below `opts.min_score`.
pub fn triage(
    lib: &Library,
    texts: &[String],
    vectors: Option<&[f32]>,
    likes: &[usize],
    unlikes: &[usize],
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<(usize, f32, usize)>> {
    if likes.is_empty() {
        return Err(Error::InvalidInput(
            "a profile needs at least one liked paper".into(),
        ));
    }
    let n = texts.len();
    let dim = lib.dim();
    let vectors = match vectors {
        Some(v) if v.len() == n * dim => Some(v),
        Some(v) => {
            return Err(Error::InvalidInput(format!(
                "{n} papers to triage but {} vector values (dimension {dim})",
                v.len()
            )))
        }
        None if retrieval.uses_dense() => {
            return Err(Error::InvalidInput(format!(
                "{retrieval} ranking needs the papers' vectors"
            )))
        }
        None => None,
    };
    let like_vecs: Vec<&[f32]> = likes.iter().map(|&r| lib.vector(r)).collect();
    let unlike_vecs: Vec<&[f32]> = unlikes.iter().map(|&r| lib.vector(r)).collect();
    let row = |i: usize| vectors.map(|v| &v[i * dim..(i + 1) * dim]);

    let mut evidence = ProfileEvidence {
        dense: Vec::new(),
        lexical: Vec::new(),
        pair: Vec::new(),
    };
    if let Some(v) = vectors {
        evidence.dense = (0..n)
            .map(|i| profile_score(&v[i * dim..(i + 1) * dim], &like_vecs, &unlike_vecs))
            .collect();
    }
    if retrieval.uses_lexical() {
        let lex = lib.lexical()?;
        let queries = |rows: &[usize]| -> Vec<LexQuery> {
            rows.iter()
                .map(|&r| lex.query(&lib.lexical_text(r)))
                .collect()
        };
        let (like_q, unlike_q) = (queries(likes), queries(unlikes));
        let w = match retrieval {
            Retrieval::Hybrid(f) => f.dense_weight(),
            _ => 0.0,
        };
        for (i, text) in texts.iter().enumerate() {
            let doc = lex.foreign(text);
            let sim = |q: &LexQuery| lex.similarity_foreign(q, &doc);
            let l: Vec<f32> = like_q.iter().map(sim).collect();
            let u: Vec<f32> = unlike_q.iter().map(sim).collect();
            evidence
                .lexical
                .push(profile_from(&l, &u, LEXICAL_DISLIKE_FLOOR));
            evidence.pair.push(match row(i) {
                Some(v) => like_vecs
                    .iter()
                    .zip(&l)
                    .map(|(lv, s)| w * dot(v, lv) + (1.0 - w) * s)
                    .collect(),
                None => l,
            });
        }
    }
    let mut scored: Vec<(usize, f32, usize)> = evidence
        .scores(retrieval)
        .into_iter()
        .enumerate()
        .map(|(i, (s, best))| (i, s, best))
        .filter(|(_, s, _)| opts.min_score.is_none_or(|m| *s >= m))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(scored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_mix_normalises_each_measure() {
        let dense = [0.9, 0.5, 0.7];
        let lexical = [0.0, 0.4, 0.2];
        let f = Fusion::ScoreMix { dense_weight: 0.5 }.fuse(&dense, &lexical);
        assert_eq!(f, vec![0.5, 0.5, 0.5]);
        let f = Fusion::ScoreMix { dense_weight: 1.0 }.fuse(&dense, &lexical);
        assert_eq!(f, vec![1.0, 0.0, 0.5]);
        // No lexical evidence at all leaves the dense order.
        let f = Fusion::ScoreMix { dense_weight: 0.5 }.fuse(&dense, &[0.0; 3]);
        assert!(f[0] > f[2] && f[2] > f[1]);
    }

    #[test]
    fn rrf_sums_reciprocal_ranks_and_ignores_zero_lexical_scores() {
        let dense = [0.9, 0.5, 0.7];
        let lexical = [0.0, 0.4, 0.2];
        let f = Fusion::Rrf { k: 60.0 }.fuse(&dense, &lexical);
        let max = 2.0 / 61.0;
        let expect = [
            (1.0 / 61.0) / max,
            (1.0 / 63.0 + 1.0 / 61.0) / max,
            (1.0 / 62.0 + 1.0 / 62.0) / max,
        ];
        for (a, b) in f.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{f:?}");
        }
        let top = Fusion::Rrf { k: 60.0 }.fuse(&[1.0], &[1.0]);
        assert!((top[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn modes_parse_and_print() {
        assert_eq!("dense".parse::<Retrieval>().unwrap(), Retrieval::Dense);
        assert_eq!("LEXICAL".parse::<Retrieval>().unwrap(), Retrieval::Lexical);
        assert_eq!(
            "hybrid".parse::<Retrieval>().unwrap(),
            Retrieval::Hybrid(Fusion::Auto)
        );
        assert_eq!(Fusion::Auto.resolve(true), TEXT_FUSION);
        assert_eq!(Fusion::Auto.resolve(false), PAPER_FUSION);
        assert!("sparse".parse::<Retrieval>().is_err());
        assert!(Retrieval::Hybrid(Fusion::Rrf { k: 60.0 })
            .to_string()
            .contains("RRF"));
    }

    #[test]
    fn profile_from_takes_the_closest_like_and_penalises_dislikes() {
        assert_eq!(profile_from(&[0.2, 0.6], &[], 0.1), (0.6, 1));
        let (s, _) = profile_from(&[0.6], &[0.5], 0.1);
        assert!((s - (0.6 - DISLIKE_WEIGHT * 0.4)).abs() < 1e-6);
        assert_eq!(profile_from(&[0.6], &[0.05], 0.1).0, 0.6);
    }
}
