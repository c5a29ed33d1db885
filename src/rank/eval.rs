//! `profile eval`: how well a reader's profile finds their own liked papers. Each liked paper
//! of a tag is held out in turn, the library is ranked for the rest of that tag (as `recommend
//! --tag` ranks it, with the reader's dislikes), and the held-out paper's rank is recorded:
//! recall@10, recall@50 and the median rank per tag, for the ranking asked for, a lexical-only
//! ranking and a random one (its expectation, exact: the held-out paper is equally likely at
//! every place among the candidates).

use super::{recommend, RankOptions, Retrieval, MAX_K};
use crate::library::Library;
use crate::{Error, Result};

/// One ranking's figures for one tag.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figures {
    pub recall_at_10: f64,
    pub recall_at_50: f64,
    pub median_rank: f64,
}

/// A tag's figures under each ranking.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TagEval {
    pub tag: String,
    /// Liked papers held out (every liked paper of the tag).
    pub held_out: usize,
    /// Papers each held-out paper was ranked among.
    pub candidates: usize,
    /// The ranking asked for (`retrieval`).
    pub model: Figures,
    pub lexical: Figures,
    pub random: Figures,
}

/// The median of ranks (sorted here).
fn median(mut ranks: Vec<f64>) -> f64 {
    ranks.sort_by(f64::total_cmp);
    let n = ranks.len();
    if n % 2 == 1 {
        ranks[n / 2]
    } else {
        (ranks[n / 2 - 1] + ranks[n / 2]) / 2.0
    }
}

fn figures(ranks: &[usize]) -> Figures {
    let n = ranks.len() as f64;
    let within = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
    Figures {
        recall_at_10: within(10),
        recall_at_50: within(50),
        median_rank: median(ranks.iter().map(|&r| r as f64).collect()),
    }
}

/// Where `held` ranks (1-based) when the library is ranked for `rest` by `retrieval`; a paper
/// the ranking leaves out (past [`MAX_K`], or dropped as a near-copy of a liked paper) counts
/// as last of the `candidates`.
fn rank_of(
    lib: &Library,
    held: usize,
    rest: &[usize],
    unlikes: &[usize],
    opts: &RankOptions,
    retrieval: Retrieval,
    candidates: usize,
) -> Result<usize> {
    let opts = RankOptions {
        k: candidates.clamp(1, MAX_K),
        interests: vec![0; rest.len()],
        ..opts.clone()
    };
    let ranked = recommend(lib, rest, unlikes, &opts, retrieval)?;
    Ok(ranked
        .iter()
        .position(|r| r.row == held)
        .map_or(candidates, |i| i + 1))
}

/// Leave-one-out figures of each tag (`tags`: name and liked rows) with `unlikes`, for
/// `retrieval`, a lexical ranking and a random one. A tag needs two liked papers (one to hold
/// out, one to rank with); `opts` filters and `k` are not used beyond their recency and
/// filters, which apply as in `recommend`.
pub fn leave_one_out(
    lib: &Library,
    tags: &[(String, Vec<usize>)],
    unlikes: &[usize],
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<TagEval>> {
    let mut out = Vec::new();
    for (tag, likes) in tags {
        if likes.len() < 2 {
            return Err(Error::InvalidInput(format!(
                "tag `{tag}` has {} liked paper{}: leave-one-out needs at least two (one held \
                 out, one to rank with); like more papers under it, or pass --tag for another",
                likes.len(),
                if likes.len() == 1 { "" } else { "s" }
            )));
        }
        // Every paper but the liked ones ranked with and the disliked ones.
        let candidates = lib.len().saturating_sub(likes.len() - 1 + unlikes.len());
        let mut model = Vec::new();
        let mut lexical = Vec::new();
        for (i, &held) in likes.iter().enumerate() {
            let rest: Vec<usize> = likes
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &r)| r)
                .collect();
            model.push(rank_of(
                lib, held, &rest, unlikes, opts, retrieval, candidates,
            )?);
            lexical.push(rank_of(
                lib,
                held,
                &rest,
                unlikes,
                opts,
                Retrieval::Lexical,
                candidates,
            )?);
        }
        let m = candidates.max(1) as f64;
        out.push(TagEval {
            tag: tag.clone(),
            held_out: likes.len(),
            candidates,
            model: figures(&model),
            lexical: figures(&lexical),
            random: Figures {
                recall_at_10: (10.0 / m).min(1.0),
                recall_at_50: (50.0 / m).min(1.0),
                median_rank: (m + 1.0) / 2.0,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_count_ranks_within_k_and_the_median() {
        let f = figures(&[1, 12, 60, 3]);
        assert_eq!(f.recall_at_10, 0.5);
        assert_eq!(f.recall_at_50, 0.75);
        assert_eq!(f.median_rank, 7.5);
    }
}
