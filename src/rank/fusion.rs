//! Fusion: the candidates' evidence into one score per candidate. [`Retrieval`] says which
//! evidence ranks: dense (the sentence embeddings' cosine) and lexical (BM25) take their one
//! measure as it is — the two edge cases — and hybrid fuses both ([`Fusion`]).
//!
//! Lexical scores are `LexicalIndex::similarities`: a paper's BM25 score divided by the
//! query's score against itself, about [0, 1].
//!
//! Hybrid scores every candidate by both measures and fuses the two:
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

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

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
    pub(crate) fn dense_weight(self) -> f32 {
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

    /// One score per candidate from its dense and lexical evidence (index for index; the
    /// measure a mode does not use may be empty). `text`: the query is free text rather
    /// than a paper (for [`Fusion::Auto`]).
    pub fn fuse(self, dense: &[f32], lexical: &[f32], text: bool) -> Vec<f32> {
        match self {
            Retrieval::Dense => dense.to_vec(),
            Retrieval::Lexical => lexical.to_vec(),
            Retrieval::Hybrid(fusion) => fusion.resolve(text).fuse(dense, lexical),
        }
    }

    /// The weight of the dense measure in a per-pair mix: 1 for dense, 0 for lexical.
    pub(crate) fn dense_weight(self) -> f32 {
        match self {
            Retrieval::Dense => 1.0,
            Retrieval::Lexical => 0.0,
            Retrieval::Hybrid(f) => f.dense_weight(),
        }
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
    fn dense_and_lexical_are_the_edge_cases_of_fusion() {
        let dense = [0.9, 0.5, 0.7];
        let lexical = [0.0, 0.4, 0.2];
        assert_eq!(Retrieval::Dense.fuse(&dense, &lexical, false), dense);
        assert_eq!(Retrieval::Lexical.fuse(&dense, &lexical, true), lexical);
        assert_eq!(
            Retrieval::default().fuse(&dense, &lexical, false),
            PAPER_FUSION.fuse(&dense, &lexical)
        );
        assert_eq!(
            Retrieval::default().fuse(&dense, &lexical, true),
            TEXT_FUSION.fuse(&dense, &lexical)
        );
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
}
