//! Reader profiles: scoring a candidate against a reader's liked and disliked papers.
//!
//! "Max-sim with per-interest round-robin": a candidate's relevance by one measure is its
//! similarity to the *closest* liked paper, minus [`DISLIKE_WEIGHT`] times how far its
//! similarity to the closest disliked paper rises above a floor ([`DISLIKE_FLOOR`] for
//! cosines: unrelated papers in one field already share a cosine of 0.2-0.4 under MiniLM, so
//! only real neighbours of a disliked paper lose; [`LEXICAL_DISLIKE_FLOOR`] for BM25).
//! Taking the maximum instead of the mean vector keeps separate interests separate (the mean
//! of a diffusion paper and a code-generation paper is close to neither). The profile scores
//! of each measure are then fused as any candidates' are ([`super::fusion`]), and the ranked
//! list is interleaved round-robin across the liked papers each candidate is closest to
//! ([`round_robin`]), so one dense interest cannot crowd the others out of the top k.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::finish::{finish, sort_ranked};
use super::{argmax, same_title_rows, RankOptions, Ranked, Retrieval};
use crate::index::dot;
use crate::library::Library;
use crate::{Error, Result};

/// How much a disliked paper's similarity (above the floor) pulls a candidate down.
pub const DISLIKE_WEIGHT: f32 = 0.75;
/// Cosine to a disliked paper below which no penalty applies.
pub const DISLIKE_FLOOR: f32 = 0.3;
/// Lexical similarity to a disliked paper below which no penalty applies: papers of one field
/// that share only its common words score 0.02-0.1 (the analogue of [`DISLIKE_FLOOR`] for
/// cosines).
pub const LEXICAL_DISLIKE_FLOOR: f32 = 0.1;

/// A reader's liked and disliked papers, as stored in a profile file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    #[serde(default)]
    pub like: Vec<String>,
    #[serde(default)]
    pub unlike: Vec<String>,
}

impl Profile {
    pub fn read(path: &std::path::Path) -> Result<Profile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::InvalidInput(format!(
                "{}: not a profile ({e}); expected {{\"like\": [ids...], \"unlike\": [ids...]}}",
                path.display()
            ))
        })
    }
}

/// Every reader ranking needs something the reader likes.
pub(crate) fn require_likes(likes: &[usize]) -> Result<()> {
    if likes.is_empty() {
        return Err(Error::InvalidInput(
            "a profile needs at least one liked paper".into(),
        ));
    }
    Ok(())
}

/// A profile score from similarities to the liked and disliked papers: the closest like, less
/// the penalty above `floor` for the closest dislike. Returns (score, index of that like).
pub(crate) fn profile_from(likes: &[f32], unlikes: &[f32], floor: f32) -> (f32, usize) {
    let (best, sim) = argmax(likes.iter().copied());
    let dislike = unlikes.iter().map(|u| u - floor).fold(0f32, f32::max);
    (sim - DISLIKE_WEIGHT * dislike, best)
}

/// Scores one vector against a profile by cosine: (score, index of the closest liked vector).
pub fn profile_score(vector: &[f32], likes: &[&[f32]], unlikes: &[&[f32]]) -> (f32, usize) {
    let sims = |vs: &[&[f32]]| -> Vec<f32> { vs.iter().map(|v| dot(vector, v)).collect() };
    profile_from(&sims(likes), &sims(unlikes), DISLIKE_FLOOR)
}

/// Per-candidate profile evidence of each measure, to be fused into scores and closest likes.
#[derive(Debug, Default)]
pub(crate) struct ProfileEvidence {
    /// (dense profile score, closest like).
    pub dense: Vec<(f32, usize)>,
    /// (lexical profile score, closest like), when lexical evidence is used.
    pub lexical: Vec<(f32, usize)>,
    /// Per candidate, per like: w·cosine + (1 − w)·lexical similarity (hybrid only).
    pub pair: Vec<Vec<f32>>,
}

impl ProfileEvidence {
    /// Adds one candidate: its cosines to the liked and disliked papers (when dense evidence
    /// is at hand) and its lexical similarities to them (when lexical evidence is used).
    pub fn push(
        &mut self,
        retrieval: Retrieval,
        dense: Option<(&[f32], &[f32])>,
        lexical: Option<(&[f32], &[f32])>,
    ) {
        if let Some((likes, unlikes)) = dense {
            self.dense.push(profile_from(likes, unlikes, DISLIKE_FLOOR));
        }
        if let Some((likes, unlikes)) = lexical {
            self.lexical
                .push(profile_from(likes, unlikes, LEXICAL_DISLIKE_FLOOR));
            let w = retrieval.dense_weight();
            self.pair.push(match dense {
                Some((cosines, _)) => cosines
                    .iter()
                    .zip(likes)
                    .map(|(c, s)| w * c + (1.0 - w) * s)
                    .collect(),
                None => likes.to_vec(),
            });
        }
    }

    /// (score, index of the closest like) per candidate: each measure's profile score fused
    /// as [`Retrieval::fuse`] fuses candidates; the closest like is that measure's, or in
    /// hybrid mode the like with the best mix of both.
    pub fn scores(&self, retrieval: Retrieval) -> Vec<(f32, usize)> {
        let d: Vec<f32> = self.dense.iter().map(|x| x.0).collect();
        let l: Vec<f32> = self.lexical.iter().map(|x| x.0).collect();
        let fused = retrieval.fuse(&d, &l, false);
        let closest: Vec<usize> = match retrieval {
            Retrieval::Dense => self.dense.iter().map(|x| x.1).collect(),
            Retrieval::Lexical => self.lexical.iter().map(|x| x.1).collect(),
            Retrieval::Hybrid(_) => self
                .pair
                .iter()
                .map(|per_like| argmax(per_like.iter().copied()).0)
                .collect(),
        };
        fused.into_iter().zip(closest).collect()
    }
}

/// What a profile ranking leaves out: the liked and disliked papers' rows, and the rows of
/// every paper of the same title ([`same_title_rows`]), so that copies of them under another
/// id are left out too.
pub(crate) fn exclusions(
    lib: &Library,
    likes: &[usize],
    unlikes: &[usize],
) -> Result<(HashSet<usize>, HashSet<usize>)> {
    let excluded: HashSet<usize> = likes.iter().chain(unlikes).copied().collect();
    let rows: Vec<usize> = excluded.iter().copied().collect();
    Ok((excluded, same_title_rows(lib, &rows)?))
}

/// The end of every profile ranking of library papers: best first, the filters of `opts`
/// over the whole list, then interleaved across the interests (`opts.interests`, else one per
/// liked paper) so that each keeps a place in the top k.
pub(crate) fn finish_profile(
    lib: &Library,
    likes: &[usize],
    mut scored: Vec<Ranked>,
    opts: &RankOptions,
) -> Result<Vec<Ranked>> {
    let interest: HashMap<usize, usize> = likes
        .iter()
        .zip(&opts.interests)
        .map(|(&row, &i)| (row, i))
        .collect();
    sort_ranked(&mut scored);
    let scored = finish(
        lib,
        scored,
        &RankOptions {
            k: usize::MAX,
            ..opts.clone()
        },
    )?;
    // Either every liked paper has an interest or none has (`recommend` checks), so the keys
    // are all interests or all rows.
    Ok(round_robin(scored, opts.k, |r| {
        r.closest_like
            .map(|like| interest.get(&like).copied().unwrap_or(like))
    }))
}

/// Interleaves a score-sorted list across interests: `interest` names each item's (by
/// default, the liked paper it is closest to).
pub(crate) fn round_robin(
    sorted: Vec<Ranked>,
    k: usize,
    interest: impl Fn(&Ranked) -> Option<usize>,
) -> Vec<Ranked> {
    let mut queues: Vec<VecDeque<Ranked>> = Vec::new();
    let mut slot: HashMap<Option<usize>, usize> = HashMap::new();
    for r in sorted {
        let i = *slot.entry(interest(&r)).or_insert_with(|| {
            queues.push(VecDeque::new());
            queues.len() - 1
        });
        queues[i].push_back(r);
    }
    let mut out = Vec::new();
    while out.len() < k && queues.iter().any(|q| !q.is_empty()) {
        // Each round takes the best remaining item of every interest, best first.
        let mut round: Vec<Ranked> = queues.iter_mut().filter_map(|q| q.pop_front()).collect();
        sort_ranked(&mut round);
        out.extend(round);
    }
    out.truncate(k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_keeps_every_interest() {
        let mk = |row, score, like| Ranked {
            row,
            score,
            closest_like: Some(like),
        };
        let sorted = vec![
            mk(1, 0.9, 100),
            mk(2, 0.88, 100),
            mk(3, 0.87, 100),
            mk(4, 0.5, 200),
        ];
        let rows: Vec<usize> = round_robin(sorted, 2, |r| r.closest_like)
            .iter()
            .map(|r| r.row)
            .collect();
        assert_eq!(rows, vec![1, 4]);
    }

    #[test]
    fn profile_score_uses_the_closest_like_and_dislikes() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        let (s, best) = profile_score(&[0.0, 1.0], &[&a, &b], &[]);
        assert_eq!((s, best), (1.0, 1));
        let (s, _) = profile_score(&[0.0, 1.0], &[&a, &b], &[&b]);
        assert!((s - (1.0 - DISLIKE_WEIGHT * (1.0 - DISLIKE_FLOOR))).abs() < 1e-6);
        let (s, _) = profile_score(&[0.0, 1.0], &[&b], &[&a]);
        assert_eq!(s, 1.0, "an unrelated disliked paper costs nothing");
    }

    #[test]
    fn profile_from_takes_the_closest_like_and_penalises_dislikes() {
        assert_eq!(profile_from(&[0.2, 0.6], &[], 0.1), (0.6, 1));
        let (s, _) = profile_from(&[0.6], &[0.5], 0.1);
        assert!((s - (0.6 - DISLIKE_WEIGHT * 0.4)).abs() < 1e-6);
        assert_eq!(profile_from(&[0.6], &[0.05], 0.1).0, 0.6);
    }
}
