//! `papersim import FILE`: a reader's references (BibTeX, CSL JSON, zotero.sqlite) as liked
//! papers. Each entry is matched to a library paper by arXiv id, DOI or normalised title; an
//! unknown one that carries an abstract is ingested (embedded) first; one without is a warning.
//! Then every matched or added paper is liked under `--tag`, else its Zotero collections, else
//! the default tag.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use super::feedback::say;
use super::{library_dir, load_embedder, note, printable_lines, progress, Global};
use papersim::digest::Digest;
use papersim::feedback::import::{self, ImportEntry};
use papersim::feedback::{check_tag, Log, Op, Record, DEFAULT_TAG};
use papersim::library::Library;
use papersim::paper::{paper_id, strip_arxiv_version, DigestPaper};

/// The row of the library paper an entry names: by arXiv id, DOI (in a paper's URL), else
/// normalised title.
fn matching_row(
    lib: &Library,
    by_doi: &HashMap<String, usize>,
    e: &ImportEntry,
) -> Result<Option<usize>> {
    if let Some(a) = &e.arxiv_id {
        if let Some(row) = lib.row_of_id(strip_arxiv_version(a))? {
            return Ok(Some(row));
        }
    }
    if let Some(row) = e.doi.as_ref().and_then(|d| by_doi.get(d)) {
        return Ok(Some(*row));
    }
    Ok(lib.rows_of_title(&e.title)?.first().copied())
}

/// Library papers by the DOI their URL carries (`https://doi.org/10…`).
fn dois(lib: &Library) -> Result<HashMap<String, usize>> {
    let mut out = HashMap::new();
    for (row, p) in lib.papers()?.iter().enumerate() {
        if let Some(u) = &p.url {
            let lower = u.to_lowercase();
            if let Some(i) = lower.find("doi.org/") {
                out.insert(lower[i + "doi.org/".len()..].trim().to_string(), row);
            }
        }
    }
    Ok(out)
}

pub fn import(g: &Global, path: &Path, tag: Option<&str>) -> Result<()> {
    if let Some(t) = tag {
        check_tag(t)?;
    }
    let imported = import::read(path)?;
    // Warnings are part of the answer: shown even with --quiet.
    for w in &imported.warnings {
        eprintln!("papersim: warning: {}", printable_lines(w));
    }
    let root = library_dir(g);
    let opened = if Library::exists(&root) {
        // Matching by DOI reads every local record: a Qdrant library is refused, clearly.
        Some(super::open_library(g)?)
    } else {
        None
    };
    let by_doi = match &opened {
        Some(lib) => dois(lib)?,
        None => HashMap::new(),
    };
    // Per entry: the id it is liked under, once known.
    let mut ids: Vec<Option<String>> = Vec::new();
    let mut to_add = Vec::new();
    let (mut matched, mut unmatched) = (0, 0);
    for e in &imported.entries {
        let row = match &opened {
            Some(lib) => matching_row(lib, &by_doi, e)?,
            None => None,
        };
        match (row, &e.abstract_text) {
            (Some(row), _) => {
                matched += 1;
                ids.push(Some(
                    opened.as_ref().expect("matched").paper(row)?.id.clone(),
                ));
            }
            (None, Some(abstract_text)) => {
                ids.push(Some(paper_id(e.arxiv_id.as_deref(), &e.title)));
                to_add.push(DigestPaper {
                    title: e.title.clone(),
                    abstract_text: abstract_text.clone(),
                    arxiv_id: e.arxiv_id.clone(),
                    date: e.date.clone(),
                    url: e.url.clone(),
                    authors: e.authors.clone(),
                    categories: Vec::new(),
                    line: 0,
                });
            }
            (None, None) => {
                unmatched += 1;
                ids.push(None);
                eprintln!(
                    "papersim: warning: {}: `{}` matches no paper of the library and has no abstract to embed; not imported",
                    printable_lines(&e.origin),
                    printable_lines(&e.title)
                );
            }
        }
    }
    drop(opened);
    let added = to_add.len();
    if !to_add.is_empty() {
        let digest = Digest {
            source: path.display().to_string(),
            date: None,
            papers: to_add,
            skipped: Vec::new(),
            warnings: Vec::new(),
        };
        let bar = progress::Bar::new(g.quiet);
        let report = papersim::pipeline::ingest(
            &root,
            &[digest],
            false,
            None,
            None,
            |model| load_embedder(g, model, &bar),
            &bar,
        )?;
        for n in &report.identity {
            note(g, &format!("  {n}"));
        }
    }
    // The ids of added papers as the library now knows them (an ingest may merge a paper into
    // one it already held under another id).
    let lib = Library::open_for_reading(&root)?;
    let mut records = Vec::new();
    for (e, id) in imported.entries.iter().zip(&ids) {
        let Some(id) = id else { continue };
        let row = match lib.row_of_id(id)? {
            Some(r) => Some(r),
            None => lib.rows_of_title(&e.title)?.first().copied(),
        };
        let Some(row) = row else {
            eprintln!(
                "papersim: warning: {}: `{}` was not found after the ingest; not liked",
                printable_lines(&e.origin),
                printable_lines(&e.title)
            );
            continue;
        };
        let p = lib.paper(row)?;
        let tags: Vec<&str> = match tag {
            Some(t) => vec![t],
            None if !e.collections.is_empty() => e.collections.iter().map(String::as_str).collect(),
            None => vec![DEFAULT_TAG],
        };
        for t in tags {
            if let Err(err) = check_tag(t) {
                eprintln!(
                    "papersim: warning: {}: collection {err}; liked under `{DEFAULT_TAG}` instead",
                    printable_lines(&e.origin)
                );
                records.push(Record::now(Op::Like, &p.id, &p.title, Some(DEFAULT_TAG)));
            } else {
                records.push(Record::now(Op::Like, &p.id, &p.title, Some(t)));
            }
        }
    }
    Log::of_library(&root).append(&records)?;
    say(&printable_lines(&format!(
        "imported {} of {} entries from {} ({}): {matched} matched library papers, {added} added, {unmatched} not imported, {} warning(s); {} likes recorded",
        matched + added,
        imported.entries.len() + imported.warnings.len(),
        path.display(),
        imported.format,
        imported.warnings.len() + unmatched,
        records.len()
    )))?;
    Ok(())
}
