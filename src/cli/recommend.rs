//! `papersim recommend`: papers for a reader's liked (and disliked) papers.

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::json;

use super::output::{library_rows, ExplainTarget, Report};
use super::{
    library_dir, library_embedder, open_library, print, progress, Global, ProfileArgs, RankArgs,
};
use papersim::library::Library;
use papersim::rank::{self, Profile, Ranked};

/// The liked and disliked references from flags and the profile file (`--profile`, else
/// `<library>/profile.json` when no `--like` is given), and the profile file used.
pub(super) fn profile_refs(
    g: &Global,
    reader: &ProfileArgs,
) -> Result<(Vec<String>, Vec<String>, Option<PathBuf>)> {
    let (like, unlike, profile) = (&reader.like, &reader.unlike, reader.profile.as_deref());
    let default = library_dir(g).join("profile.json");
    let path = match profile {
        Some(p) => Some(p.to_path_buf()),
        None if like.is_empty() && default.is_file() => Some(default),
        None => None,
    };
    let mut likes = like.to_vec();
    let mut unlikes = unlike.to_vec();
    if let Some(p) = &path {
        let prof = Profile::read(p)?;
        likes.extend(prof.like);
        unlikes.extend(prof.unlike);
    }
    if likes.is_empty() {
        bail!(
            "no liked papers: pass --like ID_OR_TITLE..., or write a profile {{\"like\": [...], \"unlike\": [...]}} to {} (or --profile FILE)",
            library_dir(g).join("profile.json").display()
        );
    }
    Ok((likes, unlikes, path))
}

/// The ids of library rows, for the JSON report.
pub(super) fn ids(lib: &Library, rows: &[usize]) -> papersim::Result<Vec<String>> {
    rows.iter().map(|&r| Ok(lib.paper(r)?.id.clone())).collect()
}

pub fn recommend(g: &Global, reader: &ProfileArgs, rank: &RankArgs) -> Result<()> {
    let opts = super::args::rank_options(rank)?;
    let (likes, unlikes, profile_path) = profile_refs(g, reader)?;
    let lib = open_library(g)?;
    let like_rows = lib.resolve_all(&likes)?;
    let unlike_rows = lib.resolve_all(&unlikes)?;
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
        query: json!({"kind": "recommend", "like": ids(&lib, &like_rows)?, "unlike": ids(&lib, &unlike_rows)?, "profile": profile_path}),
        results: rows,
    };
    print(&report, rank.format, "Recommended papers")
}
