//! The JSON documents papersim answers with: what the ranking commands print with
//! `--format json`, what `info --format json` and `profile --format json` print, and what
//! `papersim serve` returns for the same questions. One definition, so that the command line
//! and the HTTP API cannot drift apart.
//!
//! May import: `crate::error`, `crate::library`, `crate::rank`, `crate::encode`,
//! `crate::feedback`, `crate::digest`, `crate::paper`.

use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

use crate::digest::Digest;
use crate::encode::Embedder;
use crate::feedback::{Feedback, Mark};
use crate::library::{Library, Summary};
use crate::paper::DigestPaper;
use crate::rank::{Ranked, Triaged};
use crate::Result;

/// One result row, whatever produced it.
#[derive(Debug, Clone, Serialize)]
pub struct ResultRow {
    pub rank: usize,
    pub id: String,
    pub title: String,
    pub score: f32,
    pub date: Option<String>,
    pub digests: Vec<String>,
    pub url: Option<String>,
    /// Triage and recommend: the liked paper this one is closest to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closest_like: Option<Closest>,
    /// With --explain: the abstract's sentence that best matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Closest {
    pub id: String,
    pub title: String,
}

/// The JSON document every ranking command prints with `--format json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub query: Value,
    pub results: Vec<ResultRow>,
}

/// The vector a ranked paper's sentences are explained against.
pub type ExplainTarget<'a> = &'a dyn Fn(&Ranked) -> Vec<f32>;

/// Result rows for ranked library papers; with `explain_with` (an encoder and the vector each
/// row was ranked against), the abstract sentence that best matches.
pub fn library_rows(
    lib: &Library,
    ranked: &[Ranked],
    explain_with: Option<(&Embedder, ExplainTarget<'_>)>,
) -> Result<Vec<ResultRow>> {
    ranked
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = lib.paper(r.row)?;
            Ok(ResultRow {
                rank: i + 1,
                id: p.id.clone(),
                title: p.title.clone(),
                score: r.score,
                date: p.first_seen().map(str::to_string),
                digests: p.seen_in.iter().map(|s| s.digest.clone()).collect(),
                url: p.url.clone(),
                closest_like: match r.closest_like {
                    Some(c) => {
                        let liked = lib.paper(c)?;
                        Some(Closest {
                            id: liked.id.clone(),
                            title: liked.title.clone(),
                        })
                    }
                    None => None,
                },
                explanation: match explain_with {
                    Some((embedder, target)) => Some(crate::rank::best_sentence(
                        embedder,
                        &p.abstract_text,
                        &target(r),
                    )?),
                    None => None,
                },
            })
        })
        .collect()
}

/// The result row of a digest paper that `triage` ranked (`rank` counts from 1), with the
/// liked paper it is closest to and, given, its best-matching sentence.
pub fn triage_row(
    lib: &Library,
    rank: usize,
    digest: &Digest,
    paper: &DigestPaper,
    triaged: &Triaged,
    explanation: Option<String>,
) -> Result<ResultRow> {
    let liked = lib.paper(triaged.closest_like)?;
    Ok(ResultRow {
        rank,
        id: paper.id(),
        title: paper.title.clone(),
        score: triaged.score,
        date: paper
            .date
            .clone()
            .or_else(|| digest.date.map(|x| x.to_string())),
        digests: vec![Path::new(&digest.source)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()],
        url: paper.url.clone(),
        closest_like: Some(Closest {
            id: liked.id.clone(),
            title: liked.title.clone(),
        }),
        explanation,
    })
}

/// `info --format json`: what a library is, from its manifest alone.
pub fn info(summary: &Summary) -> Value {
    let m = &summary.manifest;
    json!({
        "library": summary.root,
        "format_version": m.format_version,
        "generation": m.generation,
        "segments": m.segments.len(),
        "papers": m.papers,
        "model": m.model,
        "index": m.index,
        "graph_stored": m.files.graph.is_some(),
        "vector_dtype": m.vector_dtype,
        "digests": m.digests,
        "size_bytes": summary.size_on_disk,
        "updated": m.updated,
    })
}

/// `profile --format json`: the likes per tag (`likes`, possibly narrowed to one tag), the
/// dislikes and how many papers were seen, with the log they were read from.
pub fn profile(
    log: &Path,
    likes: &std::collections::BTreeMap<String, Vec<Mark>>,
    feedback: &Feedback,
) -> Value {
    json!({"log": log, "likes": likes, "dislikes": feedback.dislikes(), "seen": feedback.seen_count()})
}
