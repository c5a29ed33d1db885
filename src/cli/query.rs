//! `papersim query`: papers matching free text.

use anyhow::{bail, Result};
use serde_json::json;

use super::output::{library_rows, ExplainTarget, Report};
use super::{
    check_mode, library_embedder, open_store, print, progress, view_for, FeedbackArgs, Global,
    RankArgs,
};
use papersim::rank::{self, Ranked, Retrieval};

pub fn query(g: &Global, text: &str, rank: &RankArgs, feedback: &FeedbackArgs) -> Result<()> {
    let mut opts = super::args::rank_options(rank)?;
    opts.feedback = feedback.feedback(rank.mode)?;
    if text.trim().is_empty() {
        bail!("the query is empty: give some words to search for");
    }
    let store = open_store(g)?;
    let mode: Retrieval = rank.mode.into();
    check_mode(&*store, mode)?;
    // The library as far as the model check needs it (its manifest): nothing is fetched yet.
    let manifest_only = view_for(&*store, &opts, Vec::new(), Vec::new(), Vec::new(), 0)?;
    // Lexical ranking needs no model (unless sentences are to be explained).
    let embedded = if mode.uses_dense() || rank.explain {
        let embedder = library_embedder(g, &manifest_only, &progress::Bar::new(g.quiet))?;
        let vector = embedder.embed_queries(&[text])?;
        Some((embedder, vector))
    } else {
        None
    };
    drop(manifest_only);
    let vector = embedded.as_ref().map(|(_, v)| v.row(0));
    let queries = vector.map(|v| vec![v.to_vec()]).unwrap_or_default();
    let lib = view_for(&*store, &opts, Vec::new(), Vec::new(), queries, 0)?;
    let ranked = rank::query(&lib, text, vector, &opts, mode)?;
    let target = |_: &Ranked| vector.map(<[f32]>::to_vec).unwrap_or_default();
    let rows = library_rows(
        &lib,
        &ranked,
        embedded
            .as_ref()
            .filter(|_| rank.explain)
            .map(|(e, _)| (e, &target as ExplainTarget)),
    )?;
    let report = Report {
        query: json!({"kind": "query", "text": text}),
        results: rows,
    };
    print(&report, rank.format, &format!("Papers matching “{text}”"))
}
