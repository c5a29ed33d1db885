//! The end of every ranking: recency, the date window, the reader's filters, the minimum
//! score, diversity and k.

use super::filters::{decay, paper_day, Filters};
use super::{argmax, RankOptions, Ranked};
use crate::index::dot;
use crate::library::Library;
use crate::Result;

/// Best first; ties by lower row, so that rankings are reproducible.
pub(crate) fn sort_ranked(v: &mut [Ranked]) {
    v.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
}

/// Whether a paper passes the date window.
fn in_window(lib: &Library, row: usize, opts: &RankOptions) -> Result<bool> {
    if opts.since.is_none() && opts.until.is_none() {
        return Ok(true);
    }
    let paper = lib.paper(row)?;
    let inside = paper.dates().any(|d| {
        let d = &d[..d.len().min(10)];
        opts.since.as_deref().is_none_or(|s| d >= s) && opts.until.as_deref().is_none_or(|u| d <= u)
    });
    Ok(inside)
}

/// Applies recency (`--half-life`, then sorted again), the date window, the filters, the
/// minimum score (of the decayed score), diversity and k to a best-first list.
pub(crate) fn finish(
    lib: &Library,
    mut ranked: Vec<Ranked>,
    opts: &RankOptions,
) -> Result<Vec<Ranked>> {
    if let Some(half_life) = opts.half_life {
        let days = ranked
            .iter()
            .map(|r| Ok(paper_day(&*lib.paper(r.row)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut scores: Vec<f32> = ranked.iter().map(|r| r.score).collect();
        decay(&mut scores, &days, half_life);
        for (r, s) in ranked.iter_mut().zip(scores) {
            r.score = s;
        }
        sort_ranked(&mut ranked);
    }
    let filters = Filters::for_library(lib, opts)?;
    let mut kept: Vec<Ranked> = Vec::new();
    for r in ranked {
        if opts.min_score.is_none_or(|m| r.score >= m)
            && in_window(lib, r.row, opts)?
            && (filters.is_empty() || filters.keeps_row(lib, r.row)?)
        {
            kept.push(r);
        }
    }
    Ok(match opts.diversity {
        Some(lambda) if lambda > 0.0 => mmr(kept, opts.k, lambda, |a, b| {
            dot(&lib.vector(a), &lib.vector(b))
        }),
        _ => kept.into_iter().take(opts.k).collect(),
    })
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
        let (best, _) = argmax(pool.iter().enumerate().map(|(i, r)| {
            let penalty = if chosen.is_empty() { 0.0 } else { max_sim[i] };
            (1.0 - lambda) * r.score - lambda * penalty
        }));
        let picked = pool.swap_remove(best);
        max_sim.swap_remove(best);
        for (i, r) in pool.iter().enumerate() {
            max_sim[i] = max_sim[i].max(sim(r.row, picked.row));
        }
        chosen.push(picked);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmr_prefers_diverse_items() {
        // Items 0 and 1 are near-duplicates; 2 is different but slightly less relevant.
        let mk = |row, score| Ranked {
            row,
            score,
            closest_like: None,
        };
        let pool = vec![mk(0, 0.9), mk(1, 0.89), mk(2, 0.8)];
        let sim = |a: usize, b: usize| if (a < 2) == (b < 2) { 0.99 } else { 0.1 };
        let rows: Vec<usize> = mmr(pool.clone(), 2, 0.5, sim)
            .iter()
            .map(|r| r.row)
            .collect();
        assert_eq!(rows, vec![0, 2]);
        let rows: Vec<usize> = mmr(pool, 2, 0.0, sim).iter().map(|r| r.row).collect();
        assert_eq!(rows, vec![0, 1]);
    }
}
