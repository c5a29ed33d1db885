//! `papersim similar`: papers like a paper of the library.

use anyhow::Result;
use serde_json::json;

use super::output::{library_rows, ExplainTarget, Report};
use super::{library_embedder, open_library, print, progress, FeedbackArgs, Global, RankArgs};
use papersim::rank::{self, Ranked};

pub fn similar(g: &Global, paper: &str, rank: &RankArgs, feedback: &FeedbackArgs) -> Result<()> {
    let mut opts = super::args::rank_options(rank)?;
    opts.feedback = feedback.feedback(rank.mode)?;
    let lib = open_library(g)?;
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
