//! `papersim triage`: a new digest's papers ranked for the reader, without ingesting it first
//! (or, with `--ingest`, ingesting it afterwards with the vectors it was ranked with).

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::json;

use super::feedback::Reader;
use super::output::Report;
use super::recommend::ids;
use super::{
    announce, library_dir, library_embedder, load_embedder, note, parse_opts, print, progress,
    read_digests, Global, ProfileArgs, RankArgs,
};
use papersim::feedback::{Log, Op, Record};
use papersim::index::lexical::paper_text;
use papersim::rank::{self, Retrieval, TriagePaper};

/// What `triage` does besides ranking: ingest the digest, mark what it showed as seen, show
/// papers already seen.
pub struct Marking {
    pub ingest: bool,
    pub mark: bool,
    pub include_seen: bool,
}

pub fn triage(
    g: &Global,
    digest_path: &Path,
    reader: &ProfileArgs,
    marking: Marking,
    input_format: &str,
    rank: &RankArgs,
) -> Result<()> {
    let ingest = marking.ingest;
    let opts = super::args::rank_options(rank)?;
    let digests = read_digests(
        &[digest_path.to_path_buf()],
        &parse_opts(input_format, None)?,
    )?;
    let store = super::open_store(g)?;
    super::check_mode(&*store, rank.mode.into())?;
    // Triage ranks the digest's papers: of the library it needs the reader's papers only.
    let (liked, disliked) = super::feedback::reader_references(g, reader)?;
    let lib = super::view_for(
        &*store,
        &opts,
        liked.iter().chain(&disliked).cloned().collect(),
        Vec::new(),
        Vec::new(),
        0,
    )?;
    let Reader {
        likes: like_rows,
        unlikes: unlike_rows,
        source,
        ..
    } = super::feedback::reader(g, reader, &lib)?;
    let log = Log::of_library(&library_dir(g));
    let feedback = log.feedback()?;
    let seen_titles = feedback.seen_titles();
    let bar = progress::Bar::new(g.quiet);
    let mode: Retrieval = rank.mode.into();
    // Lexical ranking needs no model (unless sentences are to be explained).
    let embedder = if mode.uses_dense() || rank.explain {
        Some(library_embedder(g, &lib, &bar)?)
    } else {
        None
    };
    let all: Vec<_> = digests
        .iter()
        .flat_map(|d| d.papers.iter().map(move |p| (d, p)))
        .collect();
    if all.is_empty() {
        bail!("{}: no papers to triage", digest_path.display());
    }
    // Papers the reader has seen (or liked, or disliked) are not shown again, nor embedded.
    let keep: Vec<usize> = (0..all.len())
        .filter(|&i| {
            let p = all[i].1;
            marking.include_seen
                || !(feedback.seen_id(&p.id())
                    || seen_titles.contains(&papersim::paper::normalize_title(&p.title)))
        })
        .collect();
    let papers: Vec<_> = keep.iter().map(|&i| all[i]).collect();
    let hidden = all.len() - papers.len();
    if hidden > 0 {
        note(
            g,
            &format!(
                "papersim: {hidden} of {} already seen, not shown (--include-seen shows them)",
                super::output::papers(all.len())
            ),
        );
    }
    // An ingest afterwards reuses the vectors of every paper of the digest, shown or not.
    let embedded = if ingest { &all } else { &papers };
    let vectors = match embedder
        .as_ref()
        .filter(|_| mode.uses_dense() && !embedded.is_empty())
    {
        Some(embedder) => {
            let texts: Vec<String> = embedded.iter().map(|(_, p)| p.embedding_text()).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            announce(g, embedder, refs.len());
            Some(embedder.embed_with(&refs, &bar)?.0)
        }
        None => None,
    };
    let dim = lib.dim();
    let shown_vectors: Option<Vec<f32>> = vectors.as_ref().map(|v| {
        if ingest {
            keep.iter()
                .flat_map(|&i| v.data[i * dim..(i + 1) * dim].iter().copied())
                .collect()
        } else {
            v.data.clone()
        }
    });
    let inputs: Vec<TriagePaper> = papers
        .iter()
        .map(|(d, p)| TriagePaper {
            text: paper_text(&p.title, &p.abstract_text),
            date: p.date.clone().or_else(|| d.date.map(|x| x.to_string())),
            categories: p.categories.clone(),
        })
        .collect();
    let scored = if papers.is_empty() {
        Vec::new()
    } else {
        rank::triage(
            &lib,
            &inputs,
            shown_vectors.as_deref(),
            &like_rows,
            &unlike_rows,
            &opts,
            mode,
        )?
    };
    let mut rows = Vec::new();
    for (rank_i, t) in scored.iter().take(opts.k).enumerate() {
        let (d, p) = papers[t.index];
        let explanation = match embedder.as_ref().filter(|_| rank.explain) {
            Some(embedder) => Some(rank::best_sentence(
                embedder,
                &p.abstract_text,
                &lib.vector(t.closest_like),
            )?),
            None => None,
        };
        rows.push(papersim::report::triage_row(
            &lib,
            rank_i + 1,
            d,
            p,
            t,
            explanation,
        )?);
    }
    let report = Report {
        query: json!({"kind": "triage", "digest": digest_path, "papers": all.len(), "hidden_as_seen": hidden, "like": ids(&lib, &like_rows)?, "unlike": ids(&lib, &unlike_rows)?, "profile": source}),
        results: rows,
    };
    print(
        &report,
        rank.format,
        &format!("Triage of {}", digest_path.display()),
    )?;
    if marking.mark {
        // After printing: a paper is marked seen only once it was shown.
        let shown: Vec<Record> = scored
            .iter()
            .take(opts.k)
            .map(|t| {
                let p = papers[t.index].1;
                Record::now(Op::Seen, &p.id(), &p.title, None)
            })
            .collect();
        log.append(&shown)?;
    }
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
                "ingested: {} added, {} already present; library now holds {}",
                report.added,
                report.already_present,
                super::output::papers(report.papers_total)
            ),
        );
        for n in &report.identity {
            note(g, &format!("  {n}"));
        }
    }
    Ok(())
}
