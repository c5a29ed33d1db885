//! The library directory (#17 items 1, 4, 5, 6 and the damaged-index hints of 10): it owns
//! exactly the files its manifests name, never writes through a symlink, keeps its lock while
//! files around it are deleted, and refuses data files that changed since it wrote them.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use papersim::library::{Library, WriteLock};
use serde_json::Value;

use crate::common::{self, stderr, stdout, DMD};
use crate::reliability::{cmd, day, library_copy, os, refused, run, seed_digest, snapshot, write};

fn manifest(lib: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(lib.join("manifest.json")).unwrap()).unwrap()
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o)
}

/// Files a user keeps beside (and named like) the library's own: papersim must never touch
/// them. Returns (path, content) pairs to check afterwards.
fn plant_user_files(lib: &Path) -> Vec<(PathBuf, String)> {
    let mut planted = Vec::new();
    for (name, content) in [
        ("papers.2024.pdf", "%PDF my paper"),
        ("graph.1.png", "a plot"),
        ("embeddings.3.npy.bak", "my backup"),
        ("lexical.7.bin.old", "old"),
        ("keys.12.bin.bak", "not a keys file"),
        ("papers.2025/thesis.tex", "\\documentclass{thesis}"),
        (
            "graph.99/notes.txt",
            "a directory named like a graph, with my notes",
        ),
    ] {
        let path = lib.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        planted.push((write(&path, content), content.to_string()));
    }
    planted
}

fn assert_untouched(planted: &[(PathBuf, String)]) {
    for (path, content) in planted {
        assert_eq!(
            std::fs::read_to_string(path).ok().as_deref(),
            Some(content.as_str()),
            "{} was changed or removed",
            path.display()
        );
    }
}

#[test]
fn item1_commits_never_remove_files_the_library_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let planted = plant_user_files(&lib);
    // A segment commit, then a full one (index rebuild), each followed by the stale-file sweep.
    ok(&run(&lib, &[os("ingest"), day("03-12").as_os_str()]));
    assert_untouched(&planted);
    ok(&run(&lib, &[os("index"), os("rebuild")]));
    assert_untouched(&planted);
    ok(&run(&lib, &[os("ingest"), day("03-13").as_os_str()]));
    assert_untouched(&planted);
    // The sweep still removes papersim's own superseded files.
    assert!(manifest(&lib)["generation"].as_u64().unwrap() >= 4);
    assert!(!lib.join("papers.1.jsonl").exists() && !lib.join("graph.1").exists());
    let o = run(&lib, &[os("similar"), os(DMD), os("-k"), os("3")]);
    ok(&o);
}

#[test]
fn item1_a_library_without_its_manifest_is_never_written_over() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    std::fs::remove_file(lib.join("manifest.json")).unwrap();
    refused(
        &lib,
        &[os("ingest"), day("03-12").as_os_str()],
        &[
            "no manifest.json but holds library files",
            "restore manifest.json",
        ],
    );
    // A folder of the user's that is not a library is not made one.
    let folder = tmp.path().join("folder");
    write(
        &{
            std::fs::create_dir_all(&folder).unwrap();
            folder.join("notes.txt")
        },
        "my notes",
    );
    refused(
        &folder,
        &[os("ingest"), day("03-12").as_os_str()],
        &["is not a papersim library", "not empty", "notes.txt"],
    );
    refused(&folder, &[os("index"), os("rebuild")], &["no library here"]);
    // A missing directory, or an empty one, becomes a library.
    let fresh = tmp.path().join("new/library");
    let out = ok(&run(&fresh, &[os("ingest"), day("03-12").as_os_str()]));
    assert!(out.contains("added"), "{out}");
}

#[test]
fn item1_a_first_ingest_killed_before_its_commit_leaves_an_empty_library() {
    // What a first ingest killed after writing its files but before its manifest leaves: the
    // empty library's manifest (generation 0) and generation 1's files, named by no manifest.
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let out = ok(&run(&lib, &[os("ingest"), seed_digest().as_os_str()]));
    assert!(out.contains("79 added"), "{out}");
    let mut m = manifest(&lib);
    assert_eq!(m["generation"], 1);
    m["generation"] = 0.into();
    m["papers"] = 0.into();
    m["digests"] = Value::Array(vec![]);
    m["files"] = serde_json::json!({"papers": "", "embeddings": "", "graph": ""});
    m.as_object_mut().unwrap().remove("checksums");
    write(
        &lib.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    );
    // Readers see an empty library.
    let o = run(&lib, &[os("info"), os("--format"), os("json")]);
    let info: Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(info["papers"], 0, "{info}");
    // The next ingest replaces the leftovers and completes.
    let out = ok(&run(&lib, &[os("ingest"), seed_digest().as_os_str()]));
    assert!(out.contains("79 added"), "{out}");
    ok(&run(&lib, &[os("similar"), os(DMD), os("-k"), os("3")]));
}

#[test]
fn item4_writes_never_follow_symlinks_out_of_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let next = manifest(&lib)["generation"].as_u64().unwrap() + 1;
    let victim = write(&tmp.path().join("victim.txt"), "precious");
    let outside_dir = tmp.path().join("outside");
    std::fs::create_dir(&outside_dir).unwrap();

    // Each name the next commit writes, planted as a symlink: refused, nothing written through.
    for name in [
        format!("papers.{next}.jsonl"),
        format!("embeddings.{next}.npy"),
        "manifest.json.tmp".to_string(),
    ] {
        symlink(&victim, lib.join(&name)).unwrap();
        refused(
            &lib,
            &[os("ingest"), day("03-12").as_os_str()],
            &[&name, "symbolic link", "move it away"],
        );
        std::fs::remove_file(lib.join(&name)).unwrap();
    }
    // A full commit's graph directory and lexical file.
    symlink(&outside_dir, lib.join(format!("graph.{next}"))).unwrap();
    refused(
        &lib,
        &[os("index"), os("rebuild")],
        &[&format!("graph.{next}"), "symbolic link"],
    );
    std::fs::remove_file(lib.join(format!("graph.{next}"))).unwrap();
    symlink(&victim, lib.join(format!("lexical.{next}.bin"))).unwrap();
    refused(
        &lib,
        &[os("index"), os("rebuild")],
        &[&format!("lexical.{next}.bin"), "symbolic link"],
    );
    std::fs::remove_file(lib.join(format!("lexical.{next}.bin"))).unwrap();
    // The lock is not a file any more: a symlinked `lock` is never opened for writing.
    symlink(&victim, lib.join("lock")).unwrap();
    ok(&run(&lib, &[os("ingest"), day("03-12").as_os_str()]));
    ok(&run(&lib, &[os("index"), os("rebuild")]));

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(std::fs::read_dir(&outside_dir).unwrap().count(), 0);
    assert!(std::fs::symlink_metadata(lib.join("lock"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn item5_the_write_lock_survives_deleting_files() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    // An old papersim's lock file, as the busy message used to name it.
    write(&lib.join("lock"), "12345\n");
    let held = WriteLock::acquire(&lib, false).unwrap();
    std::fs::remove_file(lib.join("lock")).unwrap();
    let err = refused(
        &lib,
        &[os("ingest"), day("03-12").as_os_str()],
        &["is being written by another papersim process", "--wait"],
    );
    assert!(!err.contains("/lock"), "{err}");
    // Deleting every file that is not library data changes nothing either.
    for e in std::fs::read_dir(&lib).unwrap() {
        let name = e.unwrap().file_name();
        if name.to_string_lossy().starts_with("manifest.json.") {
            std::fs::remove_file(lib.join(name)).unwrap();
        }
    }
    refused(
        &lib,
        &[os("index"), os("rebuild")],
        &["is being written by another papersim process"],
    );
    // A writer that waits runs once the lock is released, and commits on top.
    let before = manifest(&lib)["generation"].as_u64().unwrap();
    let mut waiting = cmd(
        &lib,
        &[os("ingest"), os("--wait"), day("03-12").as_os_str()],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        assert!(
            waiting.try_wait().unwrap().is_none(),
            "the waiting writer ran while the lock was held"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(manifest(&lib)["generation"].as_u64().unwrap(), before);
    drop(held);
    let o = waiting.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(manifest(&lib)["generation"].as_u64().unwrap(), before + 1);
    Library::open(&lib).unwrap();
}

/// Flips one byte of `path` at `at` (from the end when negative) to another value that keeps
/// the file well-formed for its parser: a digit or letter inside a JSON string or a float.
fn flip(path: &Path, at: i64) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = if at < 0 {
        (bytes.len() as i64 + at) as usize
    } else {
        at as usize
    };
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn item6_library_files_changed_since_written_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    // Five papers: a segment on top of the seed library's 79.
    let five = common::fixture("digests/arxiv-cs-5.json");
    ok(&run(&lib, &[os("ingest"), five.as_os_str()]));
    let m = manifest(&lib);
    let segment = &m["segments"][0];
    let seg_vectors = lib.join(segment["embeddings"].as_str().unwrap());
    let seg_papers = lib.join(segment["papers"].as_str().unwrap());
    let base_vectors = lib.join(m["files"]["embeddings"].as_str().unwrap());
    let base_papers = lib.join(m["files"]["papers"].as_str().unwrap());
    let similar = [os("similar"), os(DMD), os("-k"), os("3")];

    // One low bit of one float in the middle of a segment's vectors: still a valid .npy with
    // plausible values, so only the checksum can tell.
    let clean = snapshot(&lib);
    for (path, at) in [
        (&seg_vectors, -1001),
        (&base_vectors, -4097),
        // Inside the last record's JSON text (a letter of its abstract or title).
        (&seg_papers, -40),
        (&base_papers, -40),
    ] {
        let original = std::fs::read(path).unwrap();
        flip(path, at);
        let name = path.file_name().unwrap().to_str().unwrap();
        let err = refused(&lib, &similar, &[name, "is damaged", "CRC-32"]);
        assert!(err.contains("restore it from a backup"), "{err}");
        std::fs::write(path, original).unwrap();
    }
    // A truncated file is named as such.
    let original = std::fs::read(&seg_vectors).unwrap();
    std::fs::write(&seg_vectors, &original[..original.len() - 1536]).unwrap();
    refused(&lib, &similar, &["truncated or replaced"]);
    std::fs::write(&seg_vectors, &original).unwrap();
    assert_eq!(snapshot(&lib), clean);
    ok(&run(&lib, &similar));
}

#[test]
fn item10_damaged_graph_or_lexical_index_says_to_rebuild_and_rebuild_mends_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let m = manifest(&lib);
    let lexical = lib.join(m["files"]["lexical"].as_str().unwrap());
    assert!(
        m["files"].get("graph").is_none(),
        "a graph nobody asked for"
    );
    let query = [os("query"), os("speculative decoding"), os("-k"), os("3")];
    flip(&lexical, -100);
    refused(&lib, &query, &["lexical", "papersim index rebuild"]);
    // Kept from here on: a library that stores its graph has one more derived file to damage.
    ok(&run(
        &lib,
        &[os("index"), os("rebuild"), os("--graph"), os("stored")],
    ));
    ok(&run(&lib, &query));

    let m = manifest(&lib);
    let graph_dir = lib.join(m["files"]["graph"].as_str().unwrap());
    flip(&graph_dir.join("hnsw.hnsw.data"), -7);
    // The graph is read when a commit inserts papers into it: an ingest of more than a tenth
    // of the library writes a full generation.
    let digest = day("03-12");
    let ingest = [os("ingest"), digest.as_os_str()];
    refused(&lib, &ingest, &["hnsw.hnsw.data", "papersim index rebuild"]);
    ok(&run(&lib, &[os("index"), os("rebuild")]));
    ok(&run(&lib, &ingest));
    ok(&run(&lib, &[os("similar"), os(DMD), os("-k"), os("3")]));
}
