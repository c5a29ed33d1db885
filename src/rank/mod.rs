//! The recommender: ranks library papers for a seed paper, a query vector, or a reader's
//! liked and disliked papers, and triages a new digest against that profile.
//!
//! Profile scoring ("max-sim with per-interest round-robin"): a candidate's relevance is its
//! cosine to the *closest* liked paper, minus `DISLIKE_WEIGHT` times how far its cosine to the
//! closest disliked paper rises above `DISLIKE_FLOOR` (unrelated papers in one field already
//! share a cosine of 0.2-0.4 under MiniLM, so only real neighbours of a disliked paper lose).
//! Taking the maximum instead of the mean vector keeps separate interests separate (the mean
//! of a diffusion paper and a code-generation paper is close to neither). The ranked list is
//! then interleaved round-robin across the liked papers each candidate is closest to, so one
//! dense interest cannot crowd the others out of the top k.

pub mod hybrid;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::index::Hit;
use crate::library::{Library, SearchMode};
use crate::paper::normalize_title;
use crate::{Error, Result};

/// How much a disliked paper's similarity (above the floor) pulls a candidate down.
pub const DISLIKE_WEIGHT: f32 = 0.75;
/// Cosine to a disliked paper below which no penalty applies.
pub const DISLIKE_FLOOR: f32 = 0.3;
/// Cosine above which two papers count as duplicates of each other.
pub const DUPLICATE_COSINE: f32 = 0.995;

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
    pub mode: SearchMode,
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

/// Finds the one paper that `reference` names: an id, an exact title (case-insensitive), or a
/// fragment of exactly one title. Ambiguous and unknown references are errors that list the
/// candidates or the closest titles.
pub fn resolve_paper(lib: &Library, reference: &str) -> Result<usize> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(Error::PaperLookup("empty paper reference".into()));
    }
    if let Some(row) = lib
        .row_of_id(reference)
        .or_else(|| lib.row_of_id(crate::paper::strip_arxiv_version(reference)))
    {
        return Ok(row);
    }
    if let Some(row) = lib.row_of_title(reference) {
        return Ok(row);
    }
    let needle = normalize_title(reference);
    let matches: Vec<usize> = lib
        .papers()
        .iter()
        .enumerate()
        .filter(|(_, p)| !needle.is_empty() && normalize_title(&p.title).contains(&needle))
        .map(|(row, _)| row)
        .collect();
    match matches.len() {
        1 => Ok(matches[0]),
        0 => {
            let suggestions = closest_titles(lib, reference, 3);
            Err(Error::PaperLookup(format!(
                "no paper matches `{reference}` in the library ({} papers).{}",
                lib.len(),
                if suggestions.is_empty() {
                    String::new()
                } else {
                    format!(" Closest titles:\n{}", list(lib, &suggestions))
                }
            )))
        }
        n => Err(Error::PaperLookup(format!(
            "`{reference}` matches {n} papers; give an id or a longer part of the title:\n{}",
            list(lib, &matches[..n.min(10)])
        ))),
    }
}

fn list(lib: &Library, rows: &[usize]) -> String {
    rows.iter()
        .map(|&r| format!("  {}  {}", lib.papers()[r].id, lib.papers()[r].title))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Titles sharing the most words with `reference` (a cheap "did you mean").
fn closest_titles(lib: &Library, reference: &str, n: usize) -> Vec<usize> {
    let words: HashSet<String> = normalize_title(reference)
        .split(' ')
        .map(str::to_string)
        .collect();
    let mut scored: Vec<(usize, usize)> = lib
        .papers()
        .iter()
        .enumerate()
        .map(|(row, p)| {
            let overlap = normalize_title(&p.title)
                .split(' ')
                .filter(|w| words.contains(*w))
                .count();
            (row, overlap)
        })
        .filter(|(_, o)| *o > 0)
        .collect();
    scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(n).map(|(r, _)| r).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Whether a paper passes the date window.
fn in_window(lib: &Library, row: usize, opts: &RankOptions) -> bool {
    if opts.since.is_none() && opts.until.is_none() {
        return true;
    }
    let paper = &lib.papers()[row];
    paper.dates().any(|d| {
        let d = &d[..d.len().min(10)];
        opts.since.as_deref().is_none_or(|s| d >= s) && opts.until.as_deref().is_none_or(|u| d <= u)
    })
}

/// Candidates for a query vector: more than k, so that filters and re-ranking have room.
fn candidates(lib: &Library, query: &[f32], opts: &RankOptions, extra: usize) -> Result<Vec<Hit>> {
    let filtered = opts.since.is_some() || opts.until.is_some();
    let want = if filtered || opts.diversity.is_some() {
        lib.len()
    } else {
        (opts.k + extra).max(opts.k * 4).max(50)
    };
    lib.search(query, want.min(lib.len()), opts.mode)
}

/// Papers like the paper in `row`; it and its duplicates never appear.
pub fn similar(lib: &Library, row: usize, opts: &RankOptions) -> Result<Vec<Ranked>> {
    let seed = lib.vector(row).to_vec();
    let seed_title = normalize_title(&lib.papers()[row].title);
    let hits = candidates(lib, &seed, opts, 10)?;
    let ranked = hits
        .into_iter()
        .filter(|h| {
            h.row != row
                && h.score < DUPLICATE_COSINE
                && normalize_title(&lib.papers()[h.row].title) != seed_title
        })
        .map(|h| Ranked {
            row: h.row,
            score: h.score,
            closest_like: None,
        })
        .collect();
    Ok(finish(lib, ranked, opts))
}

/// Papers matching a (unit-norm) query vector.
pub fn query(lib: &Library, vector: &[f32], opts: &RankOptions) -> Result<Vec<Ranked>> {
    let hits = candidates(lib, vector, opts, 0)?;
    let ranked = hits
        .into_iter()
        .map(|h| Ranked {
            row: h.row,
            score: h.score,
            closest_like: None,
        })
        .collect();
    Ok(finish(lib, ranked, opts))
}

/// Scores one vector against a profile: (score, index of the closest liked vector).
pub fn profile_score(vector: &[f32], likes: &[&[f32]], unlikes: &[&[f32]]) -> (f32, usize) {
    let (best, sim) = likes
        .iter()
        .enumerate()
        .map(|(i, l)| (i, dot(vector, l)))
        .fold(
            (0, f32::NEG_INFINITY),
            |acc, x| if x.1 > acc.1 { x } else { acc },
        );
    let dislike = unlikes
        .iter()
        .map(|u| dot(vector, u) - DISLIKE_FLOOR)
        .fold(0f32, f32::max);
    (sim - DISLIKE_WEIGHT * dislike, best)
}

/// Library papers for a reader who liked `likes` and disliked `unlikes` (rows).
pub fn recommend(
    lib: &Library,
    likes: &[usize],
    unlikes: &[usize],
    opts: &RankOptions,
) -> Result<Vec<Ranked>> {
    if likes.is_empty() {
        return Err(Error::InvalidInput(
            "a profile needs at least one liked paper".into(),
        ));
    }
    let like_vecs: Vec<&[f32]> = likes.iter().map(|&r| lib.vector(r)).collect();
    let unlike_vecs: Vec<&[f32]> = unlikes.iter().map(|&r| lib.vector(r)).collect();
    let (excluded, seed_titles) = profile_exclusions(lib, likes, unlikes);

    // Candidates: each liked paper's own neighbourhood, so every interest is represented.
    let mut pool: HashSet<usize> = HashSet::new();
    for v in &like_vecs {
        for h in candidates(lib, v, opts, excluded.len())? {
            pool.insert(h.row);
        }
    }
    let scored: Vec<Ranked> = pool
        .into_iter()
        .filter(|r| {
            !excluded.contains(r)
                && !seed_titles.contains(&normalize_title(&lib.papers()[*r].title))
        })
        .filter(|&r| {
            like_vecs
                .iter()
                .all(|l| dot(lib.vector(r), l) < DUPLICATE_COSINE)
        })
        .map(|r| {
            let (score, best) = profile_score(lib.vector(r), &like_vecs, &unlike_vecs);
            Ranked {
                row: r,
                score,
                closest_like: Some(likes[best]),
            }
        })
        .collect();
    Ok(finish_profile(lib, scored, opts))
}

/// What a profile ranking leaves out: the liked and disliked papers' rows, and their
/// normalised titles, so that copies of them under another id are left out too.
pub(crate) fn profile_exclusions(
    lib: &Library,
    likes: &[usize],
    unlikes: &[usize],
) -> (HashSet<usize>, HashSet<String>) {
    let excluded: HashSet<usize> = likes.iter().chain(unlikes).copied().collect();
    let titles = excluded
        .iter()
        .map(|&r| normalize_title(&lib.papers()[r].title))
        .collect();
    (excluded, titles)
}

/// The end of every profile ranking: best first, the filters of `opts` over the whole list,
/// then interleaved across the liked papers so that each interest keeps a place in the top k.
pub(crate) fn finish_profile(
    lib: &Library,
    mut scored: Vec<Ranked>,
    opts: &RankOptions,
) -> Vec<Ranked> {
    sort_ranked(&mut scored);
    let scored = finish(
        lib,
        scored,
        &RankOptions {
            k: usize::MAX,
            ..opts.clone()
        },
    );
    round_robin(scored, opts.k)
}

/// Interleaves a score-sorted list across the liked papers the items are closest to.
pub(crate) fn round_robin(sorted: Vec<Ranked>, k: usize) -> Vec<Ranked> {
    let mut queues: Vec<(usize, std::collections::VecDeque<Ranked>)> = Vec::new();
    let mut slot: HashMap<Option<usize>, usize> = HashMap::new();
    for r in sorted {
        let i = *slot.entry(r.closest_like).or_insert_with(|| {
            queues.push((0, Default::default()));
            queues.len() - 1
        });
        queues[i].1.push_back(r);
    }
    let mut out = Vec::new();
    while out.len() < k && queues.iter().any(|q| !q.1.is_empty()) {
        // Each round takes the best remaining item of every interest, best first.
        let mut round: Vec<Ranked> = queues.iter_mut().filter_map(|q| q.1.pop_front()).collect();
        sort_ranked(&mut round);
        out.extend(round);
    }
    out.truncate(k);
    out
}

pub(crate) fn sort_ranked(v: &mut [Ranked]) {
    v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
}

/// Applies the date window, the minimum score, diversity and k.
pub(crate) fn finish(lib: &Library, ranked: Vec<Ranked>, opts: &RankOptions) -> Vec<Ranked> {
    let kept: Vec<Ranked> = ranked
        .into_iter()
        .filter(|r| opts.min_score.is_none_or(|m| r.score >= m))
        .filter(|r| in_window(lib, r.row, opts))
        .collect();
    match opts.diversity {
        Some(lambda) if lambda > 0.0 => mmr(kept, opts.k, lambda, |a, b| {
            dot(lib.vector(a), lib.vector(b))
        }),
        _ => kept.into_iter().take(opts.k).collect(),
    }
}

/// Maximal marginal relevance: repeatedly takes the candidate with the best
/// `(1 - λ)·score − λ·(max similarity to those already taken)`.
pub fn mmr<F: Fn(usize, usize) -> f32>(
    pool: Vec<Ranked>,
    k: usize,
    lambda: f32,
    sim: F,
) -> Vec<Ranked> {
    let lambda = lambda.clamp(0.0, 1.0);
    let mut pool: Vec<Ranked> = pool
        .into_iter()
        .take(k.saturating_mul(10).max(100))
        .collect();
    let mut chosen: Vec<Ranked> = Vec::new();
    let mut max_sim: Vec<f32> = vec![f32::NEG_INFINITY; pool.len()];
    while chosen.len() < k && !pool.is_empty() {
        let (best, _) = pool
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let penalty = if chosen.is_empty() { 0.0 } else { max_sim[i] };
                (i, (1.0 - lambda) * r.score - lambda * penalty)
            })
            .fold(
                (0, f32::NEG_INFINITY),
                |acc, x| if x.1 > acc.1 { x } else { acc },
            );
        let picked = pool.swap_remove(best);
        max_sim.swap_remove(best);
        for (i, r) in pool.iter().enumerate() {
            max_sim[i] = max_sim[i].max(sim(r.row, picked.row));
        }
        chosen.push(picked);
    }
    chosen
}

/// Splits an abstract into sentences (for `--explain`).
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '?' | '!') {
            let next = bytes.get(i + 1).copied();
            let after = bytes.get(i + 2).copied();
            // A sentence ends at punctuation followed by a space and a capital letter or digit,
            // which skips "e.g. the" and "3.5 points".
            if next == Some(b' ')
                && after.is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                let s = text[start..=i].trim();
                if !s.is_empty() {
                    out.push(s);
                }
                start = i + 1;
            }
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_real_boundaries() {
        let s = sentences("We propose X, e.g. a model. It improves 3.5 points! Does it? Yes.");
        assert_eq!(
            s,
            vec![
                "We propose X, e.g. a model.",
                "It improves 3.5 points!",
                "Does it?",
                "Yes."
            ]
        );
    }

    #[test]
    fn mmr_prefers_diverse_items() {
        // Items 0 and 1 are near-duplicates; 2 is different but slightly less relevant.
        let pool = vec![
            Ranked {
                row: 0,
                score: 0.9,
                closest_like: None,
            },
            Ranked {
                row: 1,
                score: 0.89,
                closest_like: None,
            },
            Ranked {
                row: 2,
                score: 0.8,
                closest_like: None,
            },
        ];
        let sim = |a: usize, b: usize| if (a < 2) == (b < 2) { 0.99 } else { 0.1 };
        let rows: Vec<usize> = mmr(pool.clone(), 2, 0.5, sim)
            .iter()
            .map(|r| r.row)
            .collect();
        assert_eq!(rows, vec![0, 2]);
        let rows: Vec<usize> = mmr(pool, 2, 0.0, sim).iter().map(|r| r.row).collect();
        assert_eq!(rows, vec![0, 1]);
    }

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
        let rows: Vec<usize> = round_robin(sorted, 2).iter().map(|r| r.row).collect();
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
}
