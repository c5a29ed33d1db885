//! `papersim recommend`: papers for a reader's liked (and disliked) papers.

use anyhow::Result;
use serde_json::json;

use super::feedback::Reader;
use super::output::{library_rows, ExplainTarget, Report};
use super::{
    check_mode, library_embedder, open_store, print, progress, view_for, Global, ProfileArgs,
    RankArgs,
};
use papersim::library::Library;
use papersim::rank::{self, Ranked};

/// The ids of library rows, for the JSON report.
pub(super) fn ids(lib: &Library, rows: &[usize]) -> papersim::Result<Vec<String>> {
    rows.iter().map(|&r| Ok(lib.paper(r)?.id.clone())).collect()
}

pub fn recommend(g: &Global, reader: &ProfileArgs, rank: &RankArgs) -> Result<()> {
    let mut opts = super::args::rank_options(rank)?;
    let store = open_store(g)?;
    check_mode(&*store, rank.mode.into())?;
    let (liked, disliked) = super::feedback::reader_references(g, reader)?;
    let extra = liked.len() + disliked.len();
    let references = liked.iter().chain(&disliked).cloned().collect();
    let lib = view_for(&*store, &opts, references, liked, Vec::new(), extra)?;
    let Reader {
        likes: like_rows,
        unlikes: unlike_rows,
        interests,
        source,
    } = super::feedback::reader(g, reader, &lib)?;
    opts.interests = interests;
    let ranked = rank::recommend(&lib, &like_rows, &unlike_rows, &opts, rank.mode.into())?;
    let embedder = if rank.explain {
        Some(library_embedder(g, &lib, &progress::Bar::new(g.quiet))?)
    } else {
        None
    };
    // A recommendation is explained by the liked paper it is closest to.
    let target = |r: &Ranked| lib.vector(r.closest_like.unwrap_or(r.row)).to_vec();
    let rows = library_rows(
        &lib,
        &ranked,
        embedder.as_ref().map(|e| (e, &target as ExplainTarget)),
    )?;
    let report = Report {
        query: json!({"kind": "recommend", "like": ids(&lib, &like_rows)?, "unlike": ids(&lib, &unlike_rows)?, "profile": source}),
        results: rows,
    };
    print(&report, rank.format, "Recommended papers")
}
