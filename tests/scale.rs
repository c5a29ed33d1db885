//! Opening a library at scale (#13): the previous format still opens and answers as it did; a
//! library opened for reading (vectors mapped, records read as asked for through the keys
//! file) answers exactly as the same library opened whole.

use std::path::Path;

use papersim::digest::{self, ParseOptions};
use papersim::library::{Library, Manifest, SearchMode};
use serde_json::Value;

use crate::common::{copy_dir, fixture, ingest, json, result_ids, run_in, stderr};

/// A private copy of `tests/fixtures/library-v2`: 152 papers written by papersim's format
/// version 2 (a base generation and a segment), before keys files existed.
fn v2_copy(tmp: &Path) -> std::path::PathBuf {
    let lib = tmp.join("lib");
    copy_dir(&fixture("library-v2"), &lib);
    lib
}

/// The top-10 ids each command gave on the v2 library, recorded with the papersim that wrote it.
fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("library-v2.expected.json")).unwrap())
        .unwrap()
}

/// Asserts that `similar` and `query` through the real binary give the recorded top 10.
fn answers_as_recorded(lib: &Path) {
    let want = expected();
    for (seed, top) in want["similar"].as_object().unwrap() {
        let got = result_ids(&json(lib, &["similar", seed, "-k", "10"]));
        assert_eq!(&serde_json::json!(got), top, "similar {seed}");
    }
    for (text, top) in want["query"].as_object().unwrap() {
        let got = result_ids(&json(lib, &["query", text, "-k", "10"]));
        assert_eq!(&serde_json::json!(got), top, "query {text}");
    }
}

fn manifest(lib: &Path) -> Manifest {
    Manifest::read(lib).unwrap()
}

fn rebuild(lib: &Path) {
    let o = run_in(lib, &["index", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_previous_format_library_opens_and_answers_the_same_top_10() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = v2_copy(tmp.path());
    let before = manifest(&lib);
    assert_eq!(before.format_version, 2);
    assert!(before.files.keys.is_none() && !before.segments.is_empty());
    let old_graph = lib.join(before.files.graph.clone().expect("v2 stored its graph"));
    assert!(old_graph.is_dir());

    // Read as it is: the same answers, and reading writes nothing.
    answers_as_recorded(&lib);
    assert_eq!(manifest(&lib), before);

    // Upgraded by `index rebuild`: the current format, with a keys file, and the same answers.
    rebuild(&lib);
    let after = manifest(&lib);
    assert_eq!(after.format_version, papersim::library::FORMAT_VERSION);
    let keys = after
        .files
        .keys
        .clone()
        .expect("a full commit writes a keys file");
    assert!(lib.join(&keys).is_file());
    assert!(
        after.checksums.contains_key(&keys),
        "the keys file is checksummed"
    );
    // The vectors are stored once now: the graph's copy of them is gone once no manifest a
    // reader may still hold names it (the previous one does, until the next commit).
    assert_eq!(after.files.graph, None);
    answers_as_recorded(&lib);
    rebuild(&lib);
    assert!(!old_graph.exists());
}

/// Every directory entry of `lib` whose name starts with `graph.`.
fn graph_dirs(lib: &Path) -> Vec<String> {
    let names = std::fs::read_dir(lib).unwrap().flatten();
    names
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("graph."))
        .collect()
}

#[test]
fn the_graph_is_stored_only_when_asked_and_answers_do_not_change() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let seed = fixture("digests/hf-trending-mar-11.txt");
    let o = run_in(&lib, &["ingest", seed.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let query = |lib: &Path| result_ids(&json(lib, &["query", "speculative decoding", "-k", "10"]));
    let seed_paper = query(&lib)[0].clone();
    let similar = |lib: &Path| result_ids(&json(lib, &["similar", &seed_paper, "-k", "10"]));
    let want = (similar(&lib), query(&lib));
    let stored = |lib: &Path| json(lib, &["info"])["graph_stored"].clone();

    // A new library stores its vectors once: in the .npy, with no graph beside it.
    assert_eq!(manifest(&lib).files.graph, None);
    assert!(graph_dirs(&lib).is_empty(), "{:?}", graph_dirs(&lib));
    assert_eq!(stored(&lib), Value::Bool(false));

    // Asked for, the graph is stored (and kept by later commits), and nothing else changes.
    let o = run_in(&lib, &["index", "rebuild", "--graph", "stored"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("graph stored"));
    let m = manifest(&lib);
    assert!(m.store_graph);
    assert_eq!(graph_dirs(&lib), vec![m.files.graph.clone().unwrap()]);
    assert_eq!(stored(&lib), Value::Bool(true));
    assert_eq!((similar(&lib), query(&lib)), want);
    // Each full commit stores it afresh; the previous manifest's stays for readers holding it.
    rebuild(&lib);
    let mut both = vec![manifest(&lib).files.graph.unwrap(), m.files.graph.unwrap()];
    both.sort();
    let mut dirs = graph_dirs(&lib);
    dirs.sort();
    assert_eq!(dirs, both);

    // And dropped again: no manifest names a graph once the one before it is gone too.
    let o = run_in(&lib, &["index", "rebuild", "--graph", "memory"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!manifest(&lib).store_graph);
    assert_eq!(manifest(&lib).files.graph, None);
    rebuild(&lib);
    assert!(graph_dirs(&lib).is_empty(), "{:?}", graph_dirs(&lib));
    assert_eq!((similar(&lib), query(&lib)), want);
}

#[test]
fn a_library_opened_for_reading_answers_as_one_opened_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = v2_copy(tmp.path());
    rebuild(&lib);
    // Segments on top of the keyed base: new papers, and sightings of stored ones (their
    // records are replaced by the segment's).
    let day = |name: &str| {
        digest::read_path(
            &fixture(&format!("digests/hf/hf_2026-{name}.txt")),
            &ParseOptions::default(),
        )
        .unwrap()
    };
    assert!(ingest(&lib, &day("03-11")).added > 0);
    // The same papers in a digest of another name: new sightings only.
    let again = tmp.path().join("hf_2026-03-02-resent.txt");
    std::fs::copy(fixture("digests/hf/hf_2026-03-02.txt"), &again).unwrap();
    let again = digest::read_path(&again, &ParseOptions::default()).unwrap();
    assert_eq!(ingest(&lib, &again).added, 0);
    let m = manifest(&lib);
    assert!(m.files.keys.is_some());
    assert!(m.segments.len() >= 2, "{:?}", m.segments);
    assert!(m.segments.iter().any(|s| s.updated > 0));

    let whole = Library::open(&lib).unwrap();
    let read = Library::open_for_reading(&lib).unwrap();
    assert_eq!(read.len(), whole.len());
    for row in 0..whole.len() {
        let p = whole.paper(row).unwrap();
        assert_eq!(read.paper(row).unwrap(), p, "row {row}");
        for id in std::iter::once(&p.id).chain(&p.aliases) {
            assert_eq!(read.row_of_id(id).unwrap(), Some(row), "id {id}");
        }
        assert_eq!(
            read.rows_of_title(&p.title.to_uppercase()).unwrap(),
            whole.rows_of_title(&p.title).unwrap()
        );
        assert_eq!(read.vector(row), whole.vector(row));
    }
    assert_eq!(read.row_of_id("2401.99999").unwrap(), None);
    assert!(read.rows_of_title("no such title").unwrap().is_empty());
    for row in [0, whole.len() / 2, whole.len() - 1] {
        let q = &whole.vector(row);
        assert_eq!(
            read.search(q, 10, SearchMode::Auto).unwrap(),
            whole.search(q, 10, SearchMode::Exact).unwrap()
        );
    }
    assert_eq!(read.papers().unwrap(), whole.papers().unwrap());
    // Resolving a title fragment reads every record; it finds what the whole library finds.
    let title = &whole.paper(7).unwrap().title;
    let fragment = &title[..title.len() * 2 / 3];
    assert_eq!(
        read.resolve(fragment).ok(),
        whole.resolve(fragment).ok(),
        "{fragment}"
    );

    // A library opened for reading refuses to change.
    let err = read.plan_ingest(&day("03-12")).err().unwrap().to_string();
    assert!(err.contains("opened for reading"), "{err}");
}

#[test]
fn a_damaged_keys_file_is_a_clear_error_that_index_rebuild_mends() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = v2_copy(tmp.path());
    rebuild(&lib);
    let keys = lib.join(manifest(&lib).files.keys.unwrap());
    let mut bytes = std::fs::read(&keys).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::remove_file(&keys).unwrap();
    std::fs::write(&keys, &bytes).unwrap();

    let seed = expected()["similar"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let o = run_in(&lib, &["similar", &seed]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(keys.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("CRC-32"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The keys are derived from the papers file: a rebuild writes them afresh.
    rebuild(&lib);
    answers_as_recorded(&lib);
}

#[test]
fn base_records_are_compressed_and_a_damaged_frame_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = v2_copy(tmp.path());
    let plain: u64 = ["papers.1.jsonl", "papers.2.jsonl"]
        .iter()
        .map(|n| std::fs::metadata(lib.join(n)).unwrap().len())
        .sum();
    rebuild(&lib);
    let m = manifest(&lib);
    let name = m.files.papers.clone();
    assert!(name.ends_with(".jsonl.zst"), "{name}");
    let path = lib.join(&name);
    let compressed = std::fs::read(&path).unwrap();
    // The same records, in a third of the bytes; read back by any zstd decoder.
    assert!(
        (compressed.len() as u64) * 2 < plain,
        "{} bytes against {plain}",
        compressed.len()
    );
    let records = zstd::stream::decode_all(&compressed[..]).unwrap();
    assert_eq!(records.split(|&b| b == b'\n').count() - 1, m.papers);
    answers_as_recorded(&lib);

    // A file too large to be checked whole on open (here: a manifest without checksums) is
    // read frame by frame, and each frame carries its own checksum: damage is an error naming
    // the file and the frame, never another record.
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(lib.join("manifest.json")).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("checksums");
    std::fs::write(
        lib.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let mut damaged = compressed.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x20;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &damaged).unwrap();
    let mut refused = 0;
    for seed in expected()["similar"].as_object().unwrap().keys() {
        let o = run_in(&lib, &["similar", seed]);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{err}");
        if !o.status.success() {
            assert_eq!(o.status.code(), Some(1), "{err}");
            assert!(err.contains(&name) && err.contains("frame"), "{err}");
            refused += 1;
        }
    }
    assert!(refused > 0, "no command read the damaged frame");
}
