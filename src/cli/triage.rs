//! `papersim triage`: a new digest's papers ranked for the reader, without ingesting it first
//! (or, with `--ingest`, ingesting it afterwards with the vectors it was ranked with).

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::json;

use super::output::{Closest, Report, ResultRow};
use super::recommend::{ids, profile_refs};
use super::{
    announce, library_dir, library_embedder, load_embedder, note, open_library, parse_opts, print,
    progress, read_digests, Global, ProfileArgs, RankArgs,
};
use papersim::index::lexical::paper_text;
use papersim::rank::{self, Retrieval};

pub fn triage(
    g: &Global,
    digest_path: &Path,
    reader: &ProfileArgs,
    ingest: bool,
    input_format: &str,
    rank: &RankArgs,
) -> Result<()> {
    let opts = super::args::rank_options(rank)?;
    let (likes, unlikes, profile_path) = profile_refs(g, reader)?;
    let digests = read_digests(
        &[digest_path.to_path_buf()],
        &parse_opts(input_format, None)?,
    )?;
    let lib = open_library(g)?;
    let like_rows = lib.resolve_all(&likes)?;
    let unlike_rows = lib.resolve_all(&unlikes)?;
    let bar = progress::Bar::new(g.quiet);
    let mode: Retrieval = rank.mode.into();
    // Lexical ranking needs no model (unless sentences are to be explained).
    let embedder = if mode.uses_dense() || rank.explain {
        Some(library_embedder(g, &lib, &bar)?)
    } else {
        None
    };
    let papers: Vec<_> = digests
        .iter()
        .flat_map(|d| d.papers.iter().map(move |p| (d, p)))
        .collect();
    if papers.is_empty() {
        bail!("{}: no papers to triage", digest_path.display());
    }
    let vectors = match embedder.as_ref().filter(|_| mode.uses_dense()) {
        Some(embedder) => {
            let texts: Vec<String> = papers.iter().map(|(_, p)| p.embedding_text()).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            announce(g, embedder, refs.len());
            Some(embedder.embed_with(&refs, &bar)?.0)
        }
        None => None,
    };
    let texts: Vec<String> = papers
        .iter()
        .map(|(_, p)| paper_text(&p.title, &p.abstract_text))
        .collect();
    let scored = rank::triage(
        &lib,
        &texts,
        vectors.as_ref().map(|v| v.data.as_slice()),
        &like_rows,
        &unlike_rows,
        &opts,
        mode,
    )?;
    let mut rows = Vec::new();
    for (rank_i, t) in scored.iter().take(opts.k).enumerate() {
        let (d, p) = papers[t.index];
        let liked = lib.paper(t.closest_like)?;
        rows.push(ResultRow {
            rank: rank_i + 1,
            id: p.id(),
            title: p.title.clone(),
            score: t.score,
            date: p.date.clone().or_else(|| d.date.map(|x| x.to_string())),
            digests: vec![Path::new(&d.source)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()],
            url: p.url.clone(),
            closest_like: Some(Closest {
                id: liked.id.clone(),
                title: liked.title.clone(),
            }),
            explanation: match embedder.as_ref().filter(|_| rank.explain) {
                Some(embedder) => Some(rank::best_sentence(
                    embedder,
                    &p.abstract_text,
                    &lib.vector(t.closest_like),
                )?),
                None => None,
            },
        });
    }
    let report = Report {
        query: json!({"kind": "triage", "digest": digest_path, "papers": papers.len(), "like": ids(&lib, &like_rows)?, "unlike": ids(&lib, &unlike_rows)?, "profile": profile_path}),
        results: rows,
    };
    print(
        &report,
        rank.format,
        &format!("Triage of {}", digest_path.display()),
    )?;
    if ingest {
        drop(lib);
        // The digest was just embedded to rank it (dense and hybrid modes): the ingest reuses
        // those vectors for the papers it adds instead of embedding them again.
        let report = papersim::pipeline::ingest(
            &library_dir(g),
            &digests,
            false,
            None,
            vectors.as_ref().map(|v| v.data.as_slice()),
            |model| load_embedder(g, model, &bar),
            &bar,
        )?;
        note(
            g,
            &format!(
                "ingested: {} added, {} already present; library now holds {} papers",
                report.added, report.already_present, report.papers_total
            ),
        );
        for n in &report.identity {
            note(g, &format!("  {n}"));
        }
    }
    Ok(())
}
