//! `triage`: a new digest's papers, not in the library, ranked for a reader.

use super::filters::{decay, text_day, Filters};
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

/// A paper outside the library, as [`triage`] reads it.
#[derive(Debug, Clone, Default)]
pub struct TriagePaper {
    /// Its title and abstract (see `index::lexical::paper_text`).
    pub text: String,
    /// Its date (YYYY-MM-DD), for `--half-life`.
    pub date: Option<String>,
    /// Its categories, for `--category`.
    pub categories: Vec<String>,
}

/// Scores papers that are not in the library (a new digest's) for a reader: `papers` their
/// texts, dates and categories, `vectors` their unit vectors, row-major (needed unless
/// `retrieval` is lexical). Returns them best first, decayed by `opts.half_life`, without
/// those the filters of `opts` drop or below `opts.min_score`; every paper is scored, `opts.k`
/// is the caller's to apply.
pub fn triage(
    lib: &Library,
    papers: &[TriagePaper],
    vectors: Option<&[f32]>,
    likes: &[usize],
    unlikes: &[usize],
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<Triaged>> {
    opts.validate()?;
    require_likes(likes)?;
    let filters = Filters::parse(opts)?;
    let n = papers.len();
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
    for (i, paper) in papers.iter().enumerate() {
        let text = &paper.text;
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
    let (mut scores, closest): (Vec<f32>, Vec<usize>) =
        evidence.scores(retrieval).into_iter().unzip();
    if let Some(half_life) = opts.half_life {
        let days: Vec<Option<i64>> = papers.iter().map(|p| text_day(p.date.as_deref())).collect();
        decay(&mut scores, &days, half_life);
    }
    let mut scored: Vec<Triaged> = scores
        .into_iter()
        .zip(closest)
        .enumerate()
        .filter(|&(i, _)| filters.keeps_text(&papers[i].text, &papers[i].categories))
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
