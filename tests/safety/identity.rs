//! Item 2 of #17, papers dropped without a word: a paper is matched to a stored one by id and
//! title, and every case that is not plain (another version under another id, another paper
//! reusing an id, a cut-off abstract completed) is stored and reported, never discarded, and
//! never refuses the ingest. The corpus is real: papers of the arXiv fixture, with journal
//! versions made from them (another id; the abstract rewritten or extended).

use std::path::{Path, PathBuf};

use papersim::library::{Library, SearchMode};
use serde_json::Value;

use crate::common::{self, json, run_in, stderr, stdout};
use crate::reliability::{day, library_copy, snapshot, write};

/// The first `n` papers of the arXiv fixture, as JSON objects.
fn arxiv_papers(n: usize) -> Vec<Value> {
    let text =
        std::fs::read_to_string(common::fixture("digests/arxiv-cs-30.jsonl")).expect("fixture");
    text.lines()
        .take(n)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn with(paper: &Value, id: &str, abstract_text: String) -> Value {
    let mut p = paper.clone();
    p["id"] = id.into();
    p["abstract"] = abstract_text.into();
    p
}

fn abstract_of(p: &Value) -> &str {
    p["abstract"].as_str().unwrap()
}

fn id_of(p: &Value) -> &str {
    p["id"].as_str().unwrap()
}

fn title_of(p: &Value) -> &str {
    p["title"].as_str().unwrap()
}

/// The journal version of a conference paper: another id, the abstract rewritten (a new first
/// sentence, then the conference abstract's sentences in reverse order).
fn rewritten_version(p: &Value, id: &str) -> Value {
    let sentences: Vec<&str> = abstract_of(p).split(". ").collect();
    let body = sentences.into_iter().rev().collect::<Vec<_>>().join(". ");
    with(
        p,
        id,
        format!("This article extends our conference paper with new experiments. {body}"),
    )
}

/// A later version whose abstract is the conference one, extended.
fn extended_version(p: &Value, id: &str) -> Value {
    with(
        p,
        id,
        format!(
            "{} In this extended version we add an ablation study and release the code.",
            abstract_of(p)
        ),
    )
}

fn write_jsonl(path: &Path, papers: &[Value]) -> PathBuf {
    let lines: Vec<String> = papers.iter().map(Value::to_string).collect();
    write(path, lines.join("\n") + "\n")
}

/// `papersim ingest FILES --format json`, which must succeed: its report.
fn ingest(lib: &Path, files: &[&Path]) -> Value {
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    json(lib, &args)
}

/// The report's identity notes with this outcome.
fn notes<'a>(report: &'a Value, outcome: &str) -> Vec<&'a Value> {
    report["identity"]
        .as_array()
        .unwrap_or_else(|| panic!("no identity notes in {report:#}"))
        .iter()
        .filter(|n| n["outcome"] == outcome)
        .collect()
}

/// `similar REFERENCE --format json`, which must succeed with results: (the id of the paper
/// it resolved to, the result ids).
fn similar(lib: &Path, reference: &str) -> (String, Vec<String>) {
    let v = json(lib, &["similar", reference, "-k", "5"]);
    let results: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!results.is_empty(), "similar {reference}: no results");
    (v["query"]["id"].as_str().unwrap().to_string(), results)
}

fn papers_in(lib: &Path) -> u64 {
    json(lib, &["info"])["papers"].as_u64().unwrap()
}

/// The duplicate-title corpus: six conference papers, then three later versions of the first
/// three under other ids: one rewritten (kept apart), one extended (merged; the longer abstract
/// kept), one identical (merged).
struct Corpus {
    conference: Vec<Value>,
    later: Vec<Value>,
}

fn corpus() -> Corpus {
    let conference = arxiv_papers(6);
    let later = vec![
        rewritten_version(&conference[0], "2509.00001"),
        extended_version(&conference[1], "2509.00002"),
        with(
            &conference[2],
            "2509.00003",
            abstract_of(&conference[2]).into(),
        ),
    ];
    Corpus { conference, later }
}

/// After the whole corpus is in: seven papers, every id (the aliases too) works with `similar`
/// and names the paper it belongs to, and the merged paper keeps the longer abstract.
fn check_corpus_library(lib: &Path, c: &Corpus) {
    assert_eq!(
        papers_in(lib),
        7,
        "six conference papers and one kept apart"
    );
    for p in &c.conference {
        let (seed, results) = similar(lib, id_of(p));
        assert_eq!(seed, id_of(p));
        assert!(!results.contains(&seed));
    }
    let (journal, _) = similar(lib, "2509.00001");
    assert_eq!(
        journal, "2509.00001",
        "the rewritten version is its own paper"
    );
    for (alias, paper) in [
        ("2509.00002", &c.conference[1]),
        ("2509.00003", &c.conference[2]),
    ] {
        let (seed, _) = similar(lib, alias);
        assert_eq!(
            seed,
            id_of(paper),
            "{alias} resolves to the paper it merged into"
        );
    }
    let opened = Library::open(lib).unwrap();
    let merged = &opened.papers().unwrap()[opened.row_of_id("2509.00002").unwrap().unwrap()];
    assert_eq!(merged.abstract_text, abstract_of(&c.later[1]));
    assert_eq!(merged.aliases, vec!["2509.00002".to_string()]);
    // Both versions of one title are stored; the title alone is ambiguous, and says so.
    let o = run_in(lib, &["similar", title_of(&c.conference[0])]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("is the title of 2 papers")
            && err.contains(id_of(&c.conference[0]))
            && err.contains("2509.00001"),
        "{err}"
    );
}

/// The notes the corpus's later versions get, wherever they are read.
fn check_corpus_notes(report: &Value, c: &Corpus, later_at: &str, conference_at: &str) {
    let apart = notes(report, "kept_apart");
    assert_eq!(apart.len(), 1, "{report:#}");
    assert_eq!(apart[0]["id"], "2509.00001");
    assert_eq!(apart[0]["stored_as"], "2509.00001");
    assert_eq!(apart[0]["other_id"], id_of(&c.conference[0]));
    assert_eq!(apart[0]["title"], title_of(&c.conference[0]));
    assert!(
        apart[0]["at"].as_str().unwrap().ends_with(later_at),
        "{report:#}"
    );
    assert!(
        apart[0]["other_at"]
            .as_str()
            .unwrap()
            .contains(conference_at),
        "{report:#}"
    );
    let merged = notes(report, "merged");
    let merged: Vec<(&str, &str)> = merged
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["stored_as"].as_str().unwrap()))
        .collect();
    assert_eq!(
        merged,
        vec![
            ("2509.00002", id_of(&c.conference[1])),
            ("2509.00003", id_of(&c.conference[2]))
        ],
        "{report:#}"
    );
    let corrected = notes(report, "corrected");
    assert_eq!(corrected.len(), 1, "{report:#}");
    assert_eq!(corrected[0]["stored_as"], id_of(&c.conference[1]));
}

#[test]
fn item2_duplicate_title_corpus_in_one_file_ingests_completely() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let c = corpus();
    let all: Vec<Value> = c.conference.iter().chain(&c.later).cloned().collect();
    let file = write_jsonl(&tmp.path().join("corpus.jsonl"), &all);
    let report = ingest(&lib, &[&file]);
    assert_eq!(report["read"], 9);
    assert_eq!(report["added"], 7);
    assert_eq!(report["already_present"], 2);
    check_corpus_notes(&report, &c, "corpus.jsonl:7", "corpus.jsonl:1");
    check_corpus_library(&lib, &c);
}

#[test]
fn item2_duplicate_title_corpus_across_files_of_one_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let c = corpus();
    let conference = write_jsonl(&tmp.path().join("conference.jsonl"), &c.conference);
    let journal = write_jsonl(&tmp.path().join("journal.jsonl"), &c.later);
    let o = run_in(
        &lib,
        &[
            "ingest",
            conference.to_str().unwrap(),
            journal.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("7 added, 2 already present"), "{text}");
    // The table output names both papers of each decision.
    for needle in [
        "kept apart: 2509.00001",
        &format!("stored as 2509.00001, and {}", id_of(&c.conference[0])),
        &format!("merged: 2509.00002 {:?}", title_of(&c.conference[1])),
        &format!("into {}", id_of(&c.conference[1])),
        "journal.jsonl:3",
    ] {
        assert!(text.contains(needle), "`{needle}` not in:\n{text}");
    }
    check_corpus_library(&lib, &c);
    // The same two files in one JSON ingest into a fresh library report the same.
    let fresh = tmp.path().join("fresh");
    let report = ingest(&fresh, &[&conference, &journal]);
    check_corpus_notes(&report, &c, "journal.jsonl:1", "conference.jsonl:1");
}

#[test]
fn item2_duplicate_title_corpus_across_ingests() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let seed = papers_in(&lib);
    let c = corpus();
    let conference = write_jsonl(&tmp.path().join("conference.jsonl"), &c.conference);
    let journal = write_jsonl(&tmp.path().join("journal.jsonl"), &c.later);
    assert_eq!(ingest(&lib, &[&conference])["added"], 6);
    let report = ingest(&lib, &[&journal]);
    assert_eq!(report["added"], 1);
    check_corpus_notes(&report, &c, "journal.jsonl:1", "conference.jsonl");
    assert_eq!(papers_in(&lib), seed + 7);
    // Read again, every paper is found where the first ingests put it: nothing added, nothing
    // merged or kept apart a second time.
    let again = ingest(&lib, &[&conference, &journal]);
    assert_eq!(again["added"], 0, "{again:#}");
    assert_eq!(again["already_present"], 9);
    assert!(notes(&again, "kept_apart").is_empty() && notes(&again, "merged").is_empty());
    assert_eq!(papers_in(&lib), seed + 7);
    let (journal_seed, _) = similar(&lib, "2509.00001");
    assert_eq!(journal_seed, "2509.00001");
    let (alias_seed, _) = similar(&lib, "2509.00003");
    assert_eq!(alias_seed, id_of(&c.conference[2]));
}

#[test]
fn item2_a_different_paper_reusing_a_stored_id_is_kept_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let papers = arxiv_papers(4);
    let first = write_jsonl(&tmp.path().join("first.jsonl"), &papers[..3]);
    ingest(&lib, &[&first]);
    // Another paper (the fixture's fourth) under the first paper's id.
    let reused = id_of(&papers[0]);
    let other = with(&papers[3], reused, abstract_of(&papers[3]).into());
    let second = write_jsonl(&tmp.path().join("second.jsonl"), &[other]);
    let report = ingest(&lib, &[&second]);
    assert_eq!(report["added"], 1, "{report:#}");
    let derived = format!("{reused}#2");
    let apart = notes(&report, "kept_apart");
    assert_eq!(apart.len(), 1, "{report:#}");
    assert_eq!(apart[0]["id"], reused);
    assert_eq!(apart[0]["stored_as"], derived.as_str());
    assert_eq!(apart[0]["title"], title_of(&papers[3]));
    assert_eq!(apart[0]["other_title"], title_of(&papers[0]));
    assert_eq!(papers_in(&lib), 4);
    // Found by its derived id and by its title; the id still names the first paper.
    let v = json(&lib, &["similar", &derived, "-k", "3"]);
    assert_eq!(v["query"]["title"], title_of(&papers[3]));
    let (by_title, _) = similar(&lib, title_of(&papers[3]));
    assert_eq!(by_title, derived);
    let v = json(&lib, &["similar", reused, "-k", "3"]);
    assert_eq!(v["query"]["title"], title_of(&papers[0]));
    // Read again, it is the paper stored under the derived id: no third copy.
    let again = ingest(&lib, &[&second]);
    assert_eq!(again["added"], 0, "{again:#}");
    assert!(notes(&again, "kept_apart").is_empty(), "{again:#}");
    assert_eq!(papers_in(&lib), 4);
}

#[test]
fn item2_a_cut_off_digest_is_corrected_by_the_full_one() {
    let tmp = tempfile::tempdir().unwrap();
    let full = day("03-01");
    let digest =
        papersim::digest::read_path(&full, &papersim::digest::ParseOptions::default()).unwrap();
    let last = digest[0].papers.last().unwrap();
    // The digest as an interrupted download leaves it: cut in the middle of the last abstract.
    let bytes = std::fs::read(&full).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let opening: String = last.abstract_text.chars().take(80).collect();
    let start = text
        .rfind(&opening)
        .expect("the last abstract's opening in the file");
    let mut cut = start + last.abstract_text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    std::fs::create_dir_all(tmp.path().join("cut")).unwrap();
    std::fs::create_dir_all(tmp.path().join("whole")).unwrap();
    let cut_digest = write(&tmp.path().join("cut/hf_2026-03-01.txt"), &bytes[..cut]);
    let full_digest = write(&tmp.path().join("whole/hf_2026-03-01.txt"), &bytes);

    let lib = library_copy(tmp.path());
    let first = ingest(&lib, &[&cut_digest]);
    let n = papers_in(&lib);
    let stored = |lib: &Path| {
        let l = Library::open(lib).unwrap();
        let row = l.resolve(&last.title).unwrap();
        l.papers().unwrap()[row].abstract_text.clone()
    };
    let truncated = stored(&lib);
    assert!(
        truncated.len() < last.abstract_text.len() && last.abstract_text.starts_with(&truncated),
        "the cut digest stores a cut abstract: {truncated}"
    );
    let before = json(&lib, &["similar", &last.title, "-k", "10"]);

    let report = ingest(&lib, &[&full_digest]);
    assert_eq!(report["added"], 0, "{report:#}");
    let corrected = notes(&report, "corrected");
    assert_eq!(corrected.len(), 1, "{report:#}");
    assert_eq!(corrected[0]["title"], last.title.as_str());
    assert!(corrected[0]["at"]
        .as_str()
        .unwrap()
        .ends_with(&format!("whole/hf_2026-03-01.txt:{}", last.line)));
    assert_eq!(papers_in(&lib), n, "corrected, not added: {first:#}");
    assert_eq!(stored(&lib), last.abstract_text);

    // `similar` now ranks as a library that read the full digest only: the vector changed.
    let reference = library_copy(&tmp.path().join("reference"));
    ingest(&reference, &[&full_digest]);
    let after = json(&lib, &["similar", &last.title, "-k", "10"]);
    let expected = json(&reference, &["similar", &last.title, "-k", "10"]);
    let close = |a: &[(String, f64)], b: &[(String, f64)]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-4)
    };
    assert!(
        close(&common::ranked(&after), &common::ranked(&expected)),
        "after: {after:#}\nexpected: {expected:#}"
    );
    assert!(
        !close(&common::ranked(&before), &common::ranked(&expected)),
        "the cut abstract ranked as the full one: the test shows nothing"
    );

    // The commit wrote a full generation whose graph holds the new vector (hnsw_rs cannot
    // move a point, so a graph merely extended would still hold the cut abstract's).
    let opened = Library::open(&lib).unwrap();
    assert!(opened.manifest().segments.is_empty(), "a full generation");
    let row = opened.resolve(&last.title).unwrap();
    let hits = opened
        .search(&opened.vector(row), 3, SearchMode::Hnsw)
        .unwrap();
    assert_eq!(hits[0].row, row);
    assert!(
        hits[0].score > 0.9999,
        "the graph's point is stale: {hits:?}"
    );
    // The lexical index holds the full text too: the same as the reference library's, whose
    // papers are the same, in the same order.
    let reference_lib = Library::open(&reference).unwrap();
    assert_eq!(
        opened.lexical().unwrap().to_bytes().unwrap(),
        reference_lib.lexical().unwrap().to_bytes().unwrap(),
        "the lexical index still holds the cut abstract"
    );
    let o = run_in(&lib, &["index", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn item2_a_title_repeated_without_end_is_refused_in_bounded_time() {
    // Each version kept apart under one title is compared with each later paper of that title:
    // a bound keeps a hostile digest from taking quadratic time, and the error says why.
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let n = papersim::library::MAX_PAPERS_PER_TITLE + 1;
    let lines: Vec<String> = (0..n)
        .map(|i| {
            serde_json::json!({"title": "Preface", "abstract": format!("Version {i} of a preface.")})
                .to_string()
        })
        .collect();
    let f = write(&tmp.path().join("prefaces.jsonl"), lines.join("\n") + "\n");
    let before = snapshot(&lib);
    let started = std::time::Instant::now();
    let o = run_in(&lib, &["ingest", f.to_str().unwrap()]);
    let elapsed = started.elapsed();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for needle in [
        format!("prefaces.jsonl:{n}"),
        "title `Preface` stands for 1000 papers already".to_string(),
    ] {
        assert!(err.contains(&needle), "`{needle}` not in: {err}");
    }
    // Refused after the write lock was taken: the lock file records its last holder.
    let unchanged = |mut files: std::collections::BTreeMap<String, String>| {
        files.remove("lock");
        files
    };
    assert_eq!(unchanged(snapshot(&lib)), unchanged(before));
    assert!(elapsed.as_secs() < 60, "{elapsed:?}");
}
