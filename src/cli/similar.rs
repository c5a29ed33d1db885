//! `papersim similar`: papers like a paper of the library.

use anyhow::Result;
use serde_json::json;

use super::output::{library_rows, ExplainTarget, Report};
use super::{
    check_mode, library_embedder, open_store, print, progress, view_for, FeedbackArgs, Global,
    RankArgs,
};
use papersim::rank::{self, Ranked};

pub fn similar(g: &Global, paper: &str, rank: &RankArgs, feedback: &FeedbackArgs) -> Result<()> {
    let mut opts = super::args::rank_options(rank)?;
    opts.feedback = feedback.feedback(rank.mode)?;
    let store = open_store(g)?;
    check_mode(&*store, rank.mode.into())?;
    let reference = vec![paper.to_string()];
    let lib = view_for(&*store, &opts, reference.clone(), reference, Vec::new(), 10)?;
    let row = lib.resolve(paper)?;
    let ranked = rank::similar(&lib, row, &opts, rank.mode.into())?;
    let embedder = if rank.explain {
        Some(library_embedder(g, &lib, &progress::Bar::new(g.quiet))?)
    } else {
        None
    };
    let seed = |_: &Ranked| lib.vector(row).to_vec();
    let rows = library_rows(
        &lib,
        &ranked,
        embedder.as_ref().map(|e| (e, &seed as ExplainTarget)),
    )?;
    let p = lib.paper(row)?;
    let report = Report {
        query: json!({"kind": "similar", "id": p.id, "title": p.title}),
        results: rows,
    };
    print(&report, rank.format, &format!("Papers like “{}”", p.title))
}
