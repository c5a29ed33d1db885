//! Opening a library at scale (#13): the previous format still opens and answers as it did; a
//! library opened for reading (vectors mapped, records read as asked for through the keys
//! file) answers exactly as the same library opened whole.

use std::path::Path;

use papersim::digest::{self, ParseOptions};
use papersim::library::{Library, Manifest, SearchMode};
use serde_json::Value;

use crate::common::{copy_dir, fixture, ingest, json, run_in, stderr};

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

fn ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts that `similar` and `query` through the real binary give the recorded top 10.
fn answers_as_recorded(lib: &Path) {
    let want = expected();
    for (seed, top) in want["similar"].as_object().unwrap() {
        let got = ids(&json(lib, &["similar", seed, "-k", "10"]));
        assert_eq!(&serde_json::json!(got), top, "similar {seed}");
    }
    for (text, top) in want["query"].as_object().unwrap() {
        let got = ids(&json(lib, &["query", text, "-k", "10"]));
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
    answers_as_recorded(&lib);
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
