//! `triage`: a new digest's papers, not in the library, ranked for a reader.

use super::profile::{require_likes, ProfileEvidence};
use super::{RankOptions, Retrieval};
use crate::index::dot;
use crate::index::lexical::LexQuery;
use crate::library::Library;
use crate::{Error, Result};

/// One triaged paper.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triaged {
    /// Index into the texts given to [`triage`].
    pub index: usize,
    pub score: f32,
    /// The liked paper (row) it is closest to.
    pub closest_like: usize,
}

/// Scores papers that are not in the library (a new digest's) for a reader: `texts` are their
/// titles and abstracts (see `index::lexical::paper_text`), `vectors` their unit vectors,
/// row-major (needed unless `retrieval` is lexical). Returns them best first, without those
/// below `opts.min_score`; every paper is scored, `opts.k` is the caller's to apply.
pub fn triage(
    lib: &Library,
    texts: &[String],
    vectors: Option<&[f32]>,
    likes: &[usize],
    unlikes: &[usize],
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<Triaged>> {
    opts.validate()?;
    require_likes(likes)?;
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
    let queries = if retrieval.uses_lexical() {
        let lex = lib.lexical()?;
        let queries = |rows: &[usize]| -> Result<Vec<LexQuery>> {
            rows.iter()
                .map(|&r| Ok(lex.query(&lib.lexical_text(r)?)))
                .collect()
        };
        Some((lex, queries(likes)?, queries(unlikes)?))
    } else {
        None
    };

    let mut evidence = ProfileEvidence::default();
    for (i, text) in texts.iter().enumerate() {
        let cosines = vectors.map(|v| {
            let v = &v[i * dim..(i + 1) * dim];
            let to = |rows: &[usize]| -> Vec<f32> {
                rows.iter().map(|&r| dot(v, &lib.vector(r))).collect()
            };
            (to(likes), to(unlikes))
        });
        let similarities = queries.as_ref().map(|(lex, like_q, unlike_q)| {
            let doc = lex.foreign(text);
            let sim = |q: &LexQuery| lex.similarity_foreign(q, &doc);
            (
                like_q.iter().map(sim).collect::<Vec<f32>>(),
                unlike_q.iter().map(sim).collect::<Vec<f32>>(),
            )
        });
        evidence.push(
            retrieval,
            cosines.as_ref().map(|(l, u)| (l.as_slice(), u.as_slice())),
            similarities
                .as_ref()
                .map(|(l, u)| (l.as_slice(), u.as_slice())),
        );
    }
    let mut scored: Vec<Triaged> = evidence
        .scores(retrieval)
        .into_iter()
        .enumerate()
        .map(|(index, (score, best))| Triaged {
            index,
            score,
            closest_like: likes[best],
        })
        .filter(|t| opts.min_score.is_none_or(|m| t.score >= m))
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    Ok(scored)
}
