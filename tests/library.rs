//! The on-disk library with the real model and the real daily digests: incremental ingest,
//! identity across digests, HNSW against exact search, corruption and crash safety.

mod common;

use std::collections::HashSet;

use papersim::digest::{self, ParseOptions};
use papersim::paper::normalize_title;
use papersim::store::{Library, SearchMode, WriteLock};

use common::ingest;

fn hf_digests() -> Vec<digest::Digest> {
    digest::read_path(&common::fixture("digests/hf"), &ParseOptions::default()).unwrap()
}

fn exact_top10(lib: &Library, row: usize) -> Vec<String> {
    lib.search(lib.vector(row), 11, SearchMode::Exact)
        .unwrap()
        .into_iter()
        .map(|h| lib.papers()[h.row].id.clone())
        .collect()
}

fn lexical_top10(lib: &Library, row: usize) -> Vec<(String, f32)> {
    let lex = lib.lexical().unwrap();
    lex.search(&lex.query(&lib.lexical_text(row)), 10)
        .into_iter()
        .map(|h| (lib.papers()[h.row].id.clone(), h.score))
        .collect()
}

/// One test builds both libraries, since embedding 515 papers twice is the expensive part.
#[test]
fn incremental_equals_one_go_and_every_paper_is_stored_once() {
    let digests = hf_digests();
    assert_eq!(digests.len(), 68);
    let unique: HashSet<String> = digests
        .iter()
        .flat_map(|d| d.papers.iter().map(|p| normalize_title(&p.title)))
        .collect();
    let total: usize = digests.iter().map(|d| d.papers.len()).sum();
    assert!(total > unique.len(), "the daily digests repeat papers");

    let tmp = tempfile::tempdir().unwrap();
    let one_by_one = tmp.path().join("incremental");
    for d in &digests {
        ingest(&one_by_one, std::slice::from_ref(d));
    }
    let together = tmp.path().join("together");
    let report = ingest(&together, &digests);
    assert_eq!(report.read, total);
    assert_eq!(report.added, unique.len());

    let inc = Library::open(&one_by_one).unwrap();
    let one = Library::open(&together).unwrap();
    assert_eq!(inc.len(), unique.len(), "each paper stored once");
    assert_eq!(inc.manifest().digests.len(), 68);
    let seen: usize = inc.papers().iter().map(|p| p.seen_in.len()).sum();
    assert_eq!(seen, total, "every sighting remembered");
    let repeated = inc.papers().iter().filter(|p| p.seen_in.len() > 1).count();
    assert!(repeated > 0);
    for p in inc.papers().iter().filter(|p| p.seen_in.len() > 1) {
        assert!(p.first_seen() <= p.last_seen());
    }

    // Re-ingesting everything adds nothing.
    let again = ingest(&one_by_one, &digests);
    assert_eq!(again.added, 0);

    // Incremental equals rebuilt: the same exact top-10 for every paper.
    for row in 0..one.len() {
        let id = &one.papers()[row].id;
        let inc_row = inc.row_of_id(id).unwrap();
        assert_eq!(
            exact_top10(&inc, inc_row),
            exact_top10(&one, row),
            "top-10 of {id}"
        );
        assert_eq!(
            lexical_top10(&inc, inc_row),
            lexical_top10(&one, row),
            "lexical top-10 of {id}"
        );
    }

    // HNSW (incrementally built over 68 commits) against exact: recall@10.
    let mut found = 0;
    let mut wanted = 0;
    for row in 0..inc.len() {
        let exact: HashSet<usize> = inc
            .search(inc.vector(row), 10, SearchMode::Exact)
            .unwrap()
            .iter()
            .map(|h| h.row)
            .collect();
        let approx: HashSet<usize> = inc
            .search(inc.vector(row), 10, SearchMode::Hnsw)
            .unwrap()
            .iter()
            .map(|h| h.row)
            .collect();
        found += exact.intersection(&approx).count();
        wanted += exact.len();
    }
    let recall = found as f64 / wanted as f64;
    eprintln!(
        "HNSW recall@10 against exact on {} papers: {recall:.4}",
        inc.len()
    );
    assert!(recall >= 0.98, "recall {recall}");
}

#[test]
fn corrupt_files_are_clear_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lib");
    let seed = digest::read_path(
        &common::fixture("digests/hf-trending-mar-11.txt"),
        &ParseOptions::default(),
    )
    .unwrap();
    ingest(&root, &seed);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let emb = root.join(manifest["files"]["embeddings"].as_str().unwrap());
    let papers = root.join(manifest["files"]["papers"].as_str().unwrap());

    let original = std::fs::read(&emb).unwrap();
    std::fs::write(&emb, &original[..original.len() - 100]).unwrap();
    let msg = Library::open(&root).err().unwrap().to_string();
    assert!(
        msg.contains("embeddings.1.npy") && msg.contains("truncated"),
        "{msg}"
    );
    std::fs::write(&emb, &original).unwrap();

    let original = std::fs::read(&papers).unwrap();
    std::fs::write(&papers, b"{\"id\": 5}\n").unwrap();
    let msg = Library::open(&root).err().unwrap().to_string();
    assert!(
        msg.contains("papers.1.jsonl") && msg.contains("line 1"),
        "{msg}"
    );
    std::fs::write(&papers, &original).unwrap();

    std::fs::write(root.join("manifest.json"), b"{ broken").unwrap();
    let msg = Library::open(&root).err().unwrap().to_string();
    assert!(
        msg.contains("manifest.json") && msg.contains("corrupt"),
        "{msg}"
    );
}

#[test]
fn a_library_refuses_another_model() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lib");
    let seed = digest::read_path(
        &common::fixture("digests/hf-trending-mar-11.txt"),
        &ParseOptions::default(),
    )
    .unwrap();
    ingest(&root, &seed);
    // The same weights with another config file make another model as far as the library knows.
    let other = tmp.path().join("other-model");
    let src = &common::embedder().files().dir;
    std::fs::create_dir_all(other.join("1_Pooling")).unwrap();
    for f in [
        "tokenizer.json",
        "model.safetensors",
        "sentence_bert_config.json",
        "modules.json",
        "1_Pooling/config.json",
    ] {
        std::fs::copy(src.join(f), other.join(f)).unwrap();
    }
    let config = std::fs::read_to_string(src.join("config.json")).unwrap();
    std::fs::write(
        other.join("config.json"),
        config.replace("\"gelu\"", "\"gelu\" "),
    )
    .unwrap();
    let files = papersim::model::load_dir("other", &other, "test").unwrap();
    let lib = Library::open(&root).unwrap();
    let msg = lib.check_model(&files).unwrap_err().to_string();
    assert!(
        msg.contains("was embedded with model") && msg.contains("index rebuild --reembed"),
        "{msg}"
    );
}

#[test]
fn a_second_writer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let _held = WriteLock::acquire(tmp.path(), false).unwrap();
    let err = WriteLock::acquire(tmp.path(), false).err().unwrap();
    assert!(
        err.to_string()
            .contains("being written by another papersim process"),
        "{err}"
    );
}

// SIGKILL crash consistency (100 kills over parse, embed and commit) lives in
// tests/reliability.rs, with the other reliability tests.
