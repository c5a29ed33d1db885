//! `recommend`: library papers for a reader's liked and disliked papers.

use super::candidates::{around_likes, count};
use super::profile::{exclusions, finish_profile, require_likes, ProfileEvidence};
use super::{RankOptions, Ranked, Retrieval, DUPLICATE_COSINE};
use crate::index::dot;
use crate::library::Library;
use crate::Result;

/// Library papers for a reader who liked `likes` and disliked `unlikes` (rows), by
/// `retrieval`. The liked and disliked papers, their copies and near-duplicates of a liked
/// paper never appear.
pub fn recommend(
    lib: &Library,
    likes: &[usize],
    unlikes: &[usize],
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<Ranked>> {
    opts.validate()?;
    require_likes(likes)?;
    if !opts.interests.is_empty() && opts.interests.len() != likes.len() {
        return Err(crate::Error::InvalidInput(format!(
            "{} liked papers but {} interests: give one interest per liked paper",
            likes.len(),
            opts.interests.len()
        )));
    }
    // Lexical similarity of every library paper to each liked and disliked paper.
    let lexical = |rows: &[usize]| -> Result<Vec<Vec<f32>>> {
        if !retrieval.uses_lexical() {
            return Ok(Vec::new());
        }
        let lex = lib.lexical()?;
        rows.iter()
            .map(|&r| lex.similarities(&lex.query(&lib.lexical_text(r)?)))
            .collect()
    };
    let like_sims = lexical(likes)?;
    let unlike_sims = lexical(unlikes)?;
    let (excluded, same_title) = exclusions(lib, likes, unlikes)?;

    let want = count(lib, opts, excluded.len());
    let pool = around_likes(lib, likes, &like_sims, opts, retrieval, want)?;
    let mut kept = Vec::with_capacity(pool.len());
    for r in pool {
        if !excluded.contains(&r)
            && likes
                .iter()
                .all(|&l| dot(&lib.vector(r), &lib.vector(l)) < DUPLICATE_COSINE)
            && !same_title.contains(&r)
        {
            kept.push(r);
        }
    }
    let pool = kept;

    let mut evidence = ProfileEvidence::default();
    for &r in &pool {
        let v = &lib.vector(r);
        let cosines =
            |rows: &[usize]| -> Vec<f32> { rows.iter().map(|&o| dot(v, &lib.vector(o))).collect() };
        let (like_cos, unlike_cos) = (cosines(likes), cosines(unlikes));
        let at = |sims: &[Vec<f32>]| -> Vec<f32> { sims.iter().map(|s| s[r]).collect() };
        let (like_lex, unlike_lex) = (at(&like_sims), at(&unlike_sims));
        evidence.push(
            retrieval,
            Some((&like_cos, &unlike_cos)),
            retrieval
                .uses_lexical()
                .then_some((like_lex.as_slice(), unlike_lex.as_slice())),
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
    finish_profile(lib, likes, scored, opts)
}
