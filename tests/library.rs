//! The on-disk library with the real model and the real daily digests: incremental ingest,
//! identity across digests, HNSW against exact search, corruption and crash safety.

use crate::common;

use std::collections::HashSet;

use papersim::digest::{self, ParseOptions};
use papersim::library::{Library, SearchMode, WriteLock};
use papersim::paper::normalize_title;

use crate::common::ingest;

fn hf_digests() -> Vec<digest::Digest> {
    digest::read_path(&common::fixture("digests/hf"), &ParseOptions::default()).unwrap()
}

fn exact_top10(lib: &Library, row: usize) -> Vec<String> {
    lib.search(&lib.vector(row), 11, SearchMode::Exact)
        .unwrap()
        .into_iter()
        .map(|h| lib.papers().unwrap()[h.row].id.clone())
        .collect()
}

fn lexical_top10(lib: &Library, row: usize) -> Vec<(String, f32)> {
    let lex = lib.lexical().unwrap();
    lex.search(&lex.query(&lib.lexical_text(row).unwrap()), 10)
        .unwrap()
        .into_iter()
        .map(|h| (lib.papers().unwrap()[h.row].id.clone(), h.score))
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
    let seen: usize = inc.papers().unwrap().iter().map(|p| p.seen_in.len()).sum();
    assert_eq!(seen, total, "every sighting remembered");
    let repeated = inc
        .papers()
        .unwrap()
        .iter()
        .filter(|p| p.seen_in.len() > 1)
        .count();
    assert!(repeated > 0);
    for p in inc.papers().unwrap().iter().filter(|p| p.seen_in.len() > 1) {
        assert!(p.first_seen() <= p.last_seen());
    }

    // Re-ingesting everything adds nothing.
    let again = ingest(&one_by_one, &digests);
    assert_eq!(again.added, 0);

    // Incremental equals rebuilt: the same exact top-10 for every paper.
    for row in 0..one.len() {
        let id = &one.papers().unwrap()[row].id;
        let inc_row = inc.row_of_id(id).unwrap().unwrap();
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
            .search(&inc.vector(row), 10, SearchMode::Exact)
            .unwrap()
            .iter()
            .map(|h| h.row)
            .collect();
        let approx: HashSet<usize> = inc
            .search(&inc.vector(row), 10, SearchMode::Hnsw)
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
        msg.contains("papers.1.jsonl") && msg.contains("truncated or replaced"),
        "{msg}"
    );
    // A library written before manifests recorded checksums reads the file as it is: the
    // reader says what is wrong with it.
    let mut unchecked = manifest.clone();
    unchecked.as_object_mut().unwrap().remove("checksums");
    std::fs::write(
        root.join("manifest.json"),
        serde_json::to_vec(&unchecked).unwrap(),
    )
    .unwrap();
    let msg = Library::open(&root).err().unwrap().to_string();
    assert!(
        msg.contains("papers.1.jsonl.zst") && msg.contains("not a zstd stream of records"),
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
    let files = papersim::encode::model::load_dir("other", &other, "test").unwrap();
    let lib = Library::open(&root).unwrap();
    let info = papersim::pipeline::model_info(&files).unwrap();
    let msg = lib.check_model(&info).unwrap_err().to_string();
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

/// Name → (length, modification time) of the library's generation files.
fn files_of(
    root: &std::path::Path,
) -> std::collections::BTreeMap<String, (u64, std::time::SystemTime)> {
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().to_string(),
                (m.len(), m.modified().unwrap()),
            )
        })
        .collect()
}

/// Commits into a library of some size write a segment holding only what they add; readers see
/// base and segments as one library (the same results as a library built in one go); once the
/// segments pass a tenth of the base, a commit folds them into a new base generation.
#[test]
fn an_ingest_writes_a_segment_of_what_it_adds_not_the_library() {
    let digests = hf_digests();
    let seed = digest::read_path(
        &common::fixture("digests/hf-trending-mar-11.txt"),
        &ParseOptions::default(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lib");
    // A base of the seed and the first 16 days (~230 papers): a 10-paper day is a segment.
    let mut base = seed.clone();
    base.extend(digests[..16].iter().cloned());
    ingest(&root, &base);
    let base_lib = Library::open(&root).unwrap();
    let base_len = base_lib.len();
    assert!(base_lib.manifest().segments.is_empty());
    drop(base_lib);

    let before = files_of(&root);
    let base_bytes: u64 = before.values().map(|(len, _)| len).sum();
    let day = &digests[16];
    let report = ingest(&root, std::slice::from_ref(day));
    assert!(
        report.added > 0 && report.added * 10 <= base_len,
        "{report:?}"
    );
    let after = files_of(&root);
    // Nothing of the base was rewritten; the new files are the segment and the manifest.
    for (name, meta) in &before {
        if name != "manifest.json" && name != "lock" {
            assert_eq!(after.get(name), Some(meta), "{name} was rewritten");
        }
    }
    let new: Vec<&String> = after.keys().filter(|n| !before.contains_key(*n)).collect();
    let lib = Library::open(&root).unwrap();
    let m = lib.manifest();
    assert_eq!(m.segments.len(), 1);
    let segment = &m.segments[0];
    assert_eq!(segment.added, report.added);
    assert_eq!(segment.generation, m.generation);
    let mut want = vec![&segment.papers, segment.embeddings.as_ref().unwrap()];
    want.sort();
    assert_eq!(new, want);
    let segment_bytes: u64 = new.iter().map(|n| after[*n].0).sum();
    assert!(
        segment_bytes * 10 < base_bytes,
        "a {}-paper segment took {segment_bytes} bytes against the base's {base_bytes}",
        report.added
    );
    assert_eq!(lib.len(), base_len + report.added);
    // The new papers are found by every index: the graph's search covers them exactly.
    for row in base_len..lib.len() {
        for mode in [SearchMode::Exact, SearchMode::Hnsw] {
            let top = lib.search(&lib.vector(row), 1, mode).unwrap();
            assert_eq!(top[0].row, row, "{mode:?}");
        }
        assert_eq!(lexical_top10(&lib, row)[0].0, lib.papers().unwrap()[row].id);
    }
    drop(lib);

    // A digest of papers already stored writes only their new sightings.
    let again = digests[..16]
        .iter()
        .find(|d| d.papers.len() >= 3)
        .cloned()
        .map(|mut d| {
            d.source = format!("{}-again.txt", d.source.trim_end_matches(".txt"));
            d
        })
        .unwrap();
    let report = ingest(&root, std::slice::from_ref(&again));
    assert_eq!(report.added, 0);
    let lib = Library::open(&root).unwrap();
    let segment = lib.manifest().segments.last().unwrap();
    assert_eq!(
        (segment.added, segment.updated, segment.embeddings.as_ref()),
        (0, again.papers.len(), None)
    );
    for p in &again.papers {
        let row = lib.row_of_title(&p.title).unwrap().unwrap();
        assert_eq!(lib.papers().unwrap()[row].seen_in.len(), 2, "{}", p.title);
    }
    drop(lib);

    // More days, one at a time, until a commit writes a new base; then the library equals one
    // built in one go.
    let mut all = base.clone();
    all.push(day.clone());
    all.push(again.clone());
    let mut folded = false;
    for d in &digests[17..30] {
        ingest(&root, std::slice::from_ref(d));
        all.push(d.clone());
        let lib = Library::open(&root).unwrap();
        let m = lib.manifest();
        if m.segments.is_empty() {
            folded = true;
            // The vectors are stored once: no graph (with its copy of them) unless asked for.
            assert_eq!(m.files.graph, None);
            let dirs = std::fs::read_dir(&root).unwrap().flatten();
            assert!(dirs.filter(|e| e.path().is_dir()).count() == 0);
            break;
        }
        let outside: usize = m.segments.iter().map(|s| s.added).sum();
        assert!(outside as f64 <= (lib.len() - outside) as f64 * 0.1);
    }
    assert!(folded, "the segments were never folded into a new base");
    let inc = Library::open(&root).unwrap();
    let one_dir = tmp.path().join("one");
    ingest(&one_dir, &all);
    let one = Library::open(&one_dir).unwrap();
    assert_eq!(inc.len(), one.len());
    for row in 0..one.len() {
        let id = &one.papers().unwrap()[row].id;
        let inc_row = inc.row_of_id(id).unwrap().unwrap();
        assert_eq!(
            inc.papers().unwrap()[inc_row],
            one.papers().unwrap()[row],
            "{id}"
        );
        assert_eq!(exact_top10(&inc, inc_row), exact_top10(&one, row), "{id}");
        assert_eq!(
            lexical_top10(&inc, inc_row),
            lexical_top10(&one, row),
            "{id}"
        );
    }
}
