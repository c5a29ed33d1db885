//! Reliability, tested by trying to break the real binary: a table of bad inputs (each refused
//! with a clear message and exit code 1, leaving the library byte-for-byte unchanged), SIGKILL
//! at 100 points of running ingests, concurrent writers and readers, and a full or read-only
//! filesystem. The guarantees and the figures these tests report are in docs/reliability.md.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use papersim::digest::{self, ParseOptions};
use papersim::library::{Library, SearchMode, WriteLock};
use papersim::paper::normalize_title;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::common::{copy_dir, papersim as bin, seed_library, stderr, DMD};

// ---------------------------------------------------------------------------------------------
// Helpers

pub(crate) fn cmd(lib: &Path, args: &[&OsStr]) -> Command {
    let mut c = bin();
    c.arg("--library").arg(lib).arg("--quiet").args(args);
    c
}

pub(crate) fn run(lib: &Path, args: &[&OsStr]) -> Output {
    cmd(lib, args).output().unwrap()
}

pub(crate) fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

pub(crate) fn seed_digest() -> PathBuf {
    common::fixture("digests/hf-trending-mar-11.txt")
}

pub(crate) fn day(name: &str) -> PathBuf {
    common::fixture(&format!("digests/hf/hf_2026-{name}.txt"))
}

/// A private copy of the seed library.
pub(crate) fn library_copy(tmp: &Path) -> PathBuf {
    let lib = tmp.join("lib");
    copy_dir(seed_library(), &lib);
    lib
}

/// Every file under `dir` (relative path → SHA-256 of its content).
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let kind = e.file_type().unwrap();
            if kind.is_symlink() {
                // Recorded as the link, never followed: its target is not the library's.
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else if kind.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                walk(base, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(rel, format!("{:x}", Sha256::digest(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Runs a command that must be refused: exit code 1, `papersim: error:` and every needle on
/// stderr, no panic, and the library byte-for-byte as it was (its lock file included).
pub(crate) fn refused(lib: &Path, args: &[&OsStr], needles: &[&str]) -> String {
    refused_by(cmd(lib, args), lib, needles)
}

pub(crate) fn refused_by(mut command: Command, lib: &Path, needles: &[&str]) -> String {
    let before = snapshot(lib);
    let o = command.output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{command:?}: {err}");
    assert!(err.starts_with("papersim: error: "), "{err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "{command:?}: `{needle}` not in: {err}"
        );
    }
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(snapshot(lib), before, "{command:?} changed the library");
    eprintln!("refused: {}", err.lines().next().unwrap_or_default());
    err
}

pub(crate) fn write(path: &Path, bytes: impl AsRef<[u8]>) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A copy of the model directory, big files linked, for damaging one file.
pub(crate) fn model_copy(tmp: &Path) -> PathBuf {
    let src = &common::embedder().files().dir;
    let dst = tmp.join("model");
    for e in walkdir(src) {
        let rel = e.strip_prefix(src).unwrap();
        let target = dst.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        if std::fs::metadata(&e).unwrap().len() > 1 << 20 {
            std::os::unix::fs::symlink(std::fs::canonicalize(&e).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(&e, &target).unwrap();
        }
    }
    dst
}

pub(crate) fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if std::fs::metadata(&path).unwrap().is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Normalised titles of the papers in these digests.
fn titles_of(paths: &[PathBuf]) -> BTreeSet<String> {
    paths
        .iter()
        .flat_map(|p| digest::read_path(p, &ParseOptions::default()).unwrap())
        .flat_map(|d| d.papers)
        .map(|p| normalize_title(&p.title))
        .collect()
}

fn library_titles(lib: &Library) -> BTreeSet<String> {
    lib.papers()
        .unwrap()
        .iter()
        .map(|p| normalize_title(&p.title))
        .collect()
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ---------------------------------------------------------------------------------------------
// The bad-input table: one test each, all through the binary.

#[test]
fn bad_input_empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let f = write(&tmp.path().join("empty.txt"), "");
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["empty.txt", "empty digest: no papers found"],
    );
    // Whitespace only is empty too.
    let f = write(&tmp.path().join("blank.txt"), "\n \r\n\t\n");
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["blank.txt", "empty digest"],
    );
}

#[test]
fn bad_input_header_only_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let f = write(
        &tmp.path().join("header.txt"),
        "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nMar 11\n",
    );
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["header.txt", "no papers found (only header lines)"],
    );
}

#[test]
fn bad_input_binary_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let mut rng = Rng::new(7);
    let garbage: Vec<u8> = (0..65_536).map(|_| rng.next() as u8).collect();
    let f = write(&tmp.path().join("garbage.bin"), &garbage);
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["garbage.bin", "not a text digest (binary data)"],
    );
    // Corrupt gzip is named as such, not as binary.
    let mut gz = vec![0x1f, 0x8b, 0x08, 0x00];
    gz.extend_from_slice(&garbage[..1000]);
    let f = write(&tmp.path().join("digest.txt.gz"), &gz);
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["digest.txt.gz", "corrupt gzip data"],
    );
}

#[test]
fn bad_input_invalid_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let mut bytes = std::fs::read(day("03-01")).unwrap();
    let at = bytes.len() / 2;
    bytes.insert(at, 0xff);
    let f = write(&tmp.path().join("latin1.txt"), &bytes);
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["latin1.txt", &format!("invalid UTF-8 at byte {at}")],
    );
}

#[test]
fn bad_input_five_megabyte_abstract() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let mut text = String::from("A Paper With an Enormous Abstract\n\n");
    while text.len() < 5_000_000 {
        text.push_str("This sentence repeats until the abstract is five megabytes long. ");
    }
    text.push('\n');
    let f = write(&tmp.path().join("huge.txt"), &text);
    let start = Instant::now();
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["huge.txt:1", "the abstract of", "5.0 MB", "up to 100.0 KB"],
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn bad_input_hundred_thousand_line_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    // A log file given by mistake: 100,000 lines, no paper structure.
    let mut text = String::new();
    for i in 0..100_000 {
        text.push_str(&format!(
            "2026-03-01T12:{:02}:{:02}Z INFO request {i} served in {} ms\n",
            i / 60 % 60,
            i % 60,
            i % 97
        ));
    }
    let f = write(&tmp.path().join("server.log"), &text);
    let start = Instant::now();
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["server.log", "no papers found"],
    );
    // The same lines as 100,000 one-line paragraphs: every one a title without an abstract.
    let f = write(&tmp.path().join("titles.txt"), text.replace('\n', "\n\n"));
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["titles.txt", "no papers found"],
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn bad_input_json_with_wrong_types() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let f = write(
        &tmp.path().join("wrong.json"),
        r#"[{"title": "Fine", "abstract": "Fine abstract."},
 {"title": 42, "abstract": "A number is not a title."}]"#,
    );
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &[
            "wrong.json:2",
            "element 1",
            "field `title` must be a string, found a number",
        ],
    );
    let f = write(
        &tmp.path().join("wrong.jsonl"),
        "{\"title\": \"T\", \"abstract\": [\"not\", \"a string\"]}\n",
    );
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &[
            "wrong.jsonl:1",
            "field `abstract` must be a string, found an array",
        ],
    );
    let f = write(&tmp.path().join("object.json"), r#"{"papers": 3}"#);
    refused(
        &lib,
        &[os("ingest"), f.as_os_str()],
        &["object.json", "missing required field `title`"],
    );
}

#[test]
fn bad_input_duplicate_titles_with_different_abstracts_are_both_kept() {
    // One title twice with different abstracts (two versions of a paper) once refused the whole
    // ingest; both are now stored, kept apart, and the report says so.
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let before = Library::open(&lib).unwrap().len();
    let f = write(
        &tmp.path().join("dup.txt"),
        "Sparse Attention for Everyone\n\nWe show that sparse attention works for everyone, \
         everywhere, at every scale we could afford to try.\n\n\
         Sparse attention for everyone!\n\nA different abstract: sparse attention fails \
         for most people at most scales, as we show with many experiments.\n",
    );
    let o = run(&lib, &[os("ingest"), f.as_os_str()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("2 added"), "{out}");
    assert!(
        out.contains("kept apart:") && out.contains("dup.txt:5"),
        "{out}"
    );
    let opened = Library::open(&lib).unwrap();
    assert_eq!(opened.len(), before + 2);
    let rows = opened
        .rows_of_title("Sparse Attention for Everyone")
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(opened.papers().unwrap()[rows[1]].id.ends_with("#2"));
    // The same paper twice with the same abstract is one paper.
    let same = "Sparse Attention for Everyone\n\nWe show that sparse attention works for \
                everyone, everywhere, at every scale we could afford to try.\n\n";
    let f = write(&tmp.path().join("twice.txt"), same.repeat(2));
    let d = digest::read_path(&f, &ParseOptions::default()).unwrap();
    assert_eq!(d[0].papers.len(), 2);
    let o = run(&lib, &[os("ingest"), f.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(Library::open(&lib).unwrap().len(), before + 2);
}

#[test]
fn bad_input_nonexistent_path() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let missing = tmp.path().join("no/such/digest.txt");
    refused(
        &lib,
        &[os("ingest"), day("03-01").as_os_str(), missing.as_os_str()],
        &["no/such/digest.txt", "No such file or directory"],
    );
    // A library path that does not exist is an error for readers, and creates nothing.
    let nowhere = tmp.path().join("nowhere");
    let o = run(&nowhere, &[os("info")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no library here"), "{}", stderr(&o));
    assert!(!nowhere.exists());
}

#[test]
fn bad_input_directory_with_unreadable_files() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let dir = tmp.path().join("digests");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(day("03-01"), dir.join("a_2026-03-01.txt")).unwrap();
    let secret = write(
        &dir.join("b_2026-03-02.txt"),
        std::fs::read(day("03-02")).unwrap(),
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut command = cmd(&lib, &[os("ingest"), dir.as_os_str()]);
    if is_root() {
        // Permission bits do not stop root: read as `nobody`, which can reach the files.
        use std::os::unix::process::CommandExt;
        for p in [tmp.path(), &dir] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        command.uid(65534).gid(65534);
    }
    refused_by(command, &lib, &["b_2026-03-02.txt", "Permission denied"]);
}

#[test]
fn bad_input_k_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    for args in [
        vec!["query", "diffusion", "-k", "0"],
        vec!["similar", DMD, "-k", "0"],
        vec!["recommend", "--like", DMD, "-k", "0"],
    ] {
        let args: Vec<&OsStr> = args.iter().map(os).collect();
        refused(&lib, &args, &["-k must be at least 1"]);
    }
    // -k larger than the library is not an error: every paper comes back.
    let o = run(
        &lib,
        &[
            os("query"),
            os("diffusion"),
            os("-k"),
            os("1000"),
            os("--format"),
            os("json"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 79);
}

#[test]
fn bad_input_whitespace_query() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    for q in ["   ", "\t\n", " \u{a0} "] {
        refused(&lib, &[os("query"), os(q)], &["the query is empty"]);
    }
    refused(
        &lib,
        &[os("query"), os(" "), os("  ")],
        &["the query is empty"],
    );
}

#[test]
fn bad_input_model_without_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let model = model_copy(tmp.path());
    std::fs::remove_file(model.join("tokenizer.json")).unwrap();
    for args in [
        vec![
            os("--model"),
            model.as_os_str(),
            os("ingest"),
            day("03-01").as_os_str(),
        ],
        vec![
            os("--model"),
            model.as_os_str(),
            os("query"),
            os("diffusion"),
        ],
    ] {
        refused(&lib, &args, &["tokenizer.json", "missing"]);
    }
    // Into a new library: nothing is created.
    let fresh = tmp.path().join("fresh");
    let o = run(
        &fresh,
        &[
            os("--model"),
            model.as_os_str(),
            os("ingest"),
            day("03-01").as_os_str(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !fresh.exists(),
        "a failed first ingest created {}",
        fresh.display()
    );
}

#[test]
fn bad_input_truncated_safetensors() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let model = model_copy(tmp.path());
    let weights = model.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::remove_file(&weights).unwrap();
    for (cut, name) in [(bytes.len() / 2, "half"), (5, "five-bytes")] {
        std::fs::write(&weights, &bytes[..cut]).unwrap();
        for args in [
            vec![
                os("--model"),
                model.as_os_str(),
                os("ingest"),
                day("03-01").as_os_str(),
            ],
            vec![
                os("--model"),
                model.as_os_str(),
                os("query"),
                os("diffusion"),
            ],
        ] {
            let err = refused(&lib, &args, &["model.safetensors", "truncated"]);
            eprintln!("{name}: {err}");
        }
    }
}

#[test]
fn bad_input_library_of_another_model() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    // The same weights with another config: another model as far as the library can tell.
    let model = model_copy(tmp.path());
    let config = std::fs::read_to_string(model.join("config.json")).unwrap();
    std::fs::write(
        model.join("config.json"),
        config.replace("\"gelu\"", "\"gelu\" "),
    )
    .unwrap();
    for args in [
        vec![
            os("--model"),
            model.as_os_str(),
            os("ingest"),
            day("03-01").as_os_str(),
        ],
        vec![
            os("--model"),
            model.as_os_str(),
            os("query"),
            os("diffusion"),
        ],
        vec![
            os("--model"),
            model.as_os_str(),
            os("similar"),
            os(DMD),
            os("--explain"),
        ],
    ] {
        refused(
            &lib,
            &args,
            &["was embedded with model", "index rebuild --reembed"],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Crash consistency: SIGKILL at 100 points of running ingests.

/// Checks that the library opens and that `info`, the manifest, the papers, the embeddings
/// and the graph on disk agree; returns its papers' normalised titles.
fn check_consistent(root: &Path, rng: &mut Rng) -> BTreeSet<String> {
    let o = run(root, &[os("info"), os("--format"), os("json")]);
    assert!(o.status.success(), "info: {}", stderr(&o));
    let info: Value = serde_json::from_slice(&o.stdout).unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let n = manifest["papers"].as_u64().unwrap() as usize;
    assert_eq!(info["papers"].as_u64(), Some(n as u64));
    assert_eq!(info["generation"], manifest["generation"]);
    // The base generation holds the papers that no segment added; the graph covers them.
    let segments = manifest["segments"].as_array().cloned().unwrap_or_default();
    let count = |v: &Value| v.as_u64().unwrap() as usize;
    let base = n - segments.iter().map(|s| count(&s["added"])).sum::<usize>();
    let files = &manifest["files"];
    let name = files["papers"].as_str().unwrap();
    let mut papers = std::fs::read(root.join(name)).unwrap();
    if name.ends_with(".zst") {
        papers = zstd::stream::decode_all(&papers[..]).unwrap();
    }
    assert_eq!(
        papers.split(|&b| b == b'\n').count() - 1,
        base,
        "papers file"
    );
    let npy = std::fs::read(root.join(files["embeddings"].as_str().unwrap())).unwrap();
    let (_, rows, cols) = papersim::library::npy::decode_f32(&npy).unwrap();
    assert_eq!((rows, cols), (base, 384), "embeddings file");
    // The graph is stored when the library keeps it, and then covers the base generation.
    let stores = manifest["store_graph"].as_bool().unwrap_or(false);
    assert_eq!(files["graph"].is_string(), stores, "graph stored as asked");
    if let Some(name) = files["graph"].as_str() {
        let graph: Value =
            serde_json::from_slice(&std::fs::read(root.join(name).join("index.json")).unwrap())
                .unwrap();
        assert_eq!(graph["len"].as_u64(), Some(base as u64), "graph");
    }
    for s in &segments {
        let records = std::fs::read_to_string(root.join(s["papers"].as_str().unwrap())).unwrap();
        assert_eq!(
            records.lines().count(),
            count(&s["added"]) + count(&s["updated"]),
            "segment {s}"
        );
        if let Some(name) = s["embeddings"].as_str() {
            let (_, rows, _) =
                papersim::library::npy::decode_f32(&std::fs::read(root.join(name)).unwrap())
                    .unwrap();
            assert_eq!(rows, count(&s["added"]), "segment {s}");
        } else {
            assert_eq!(count(&s["added"]), 0, "segment {s}");
        }
    }
    // Every paper ever added is counted once by the digest records.
    let added: u64 = manifest["digests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["added"].as_u64().unwrap())
        .sum();
    assert_eq!(added, n as u64, "digest records");

    let lib = Library::open(root).unwrap();
    assert_eq!(lib.len(), n);
    // The graph agrees with the vectors, and a vector with its paper.
    for row in [0, n - 1, rng.below(n as u64) as usize] {
        let hit = lib.search(&lib.vector(row), 1, SearchMode::Hnsw).unwrap();
        assert_eq!(hit[0].row, row, "graph and vectors disagree at row {row}");
    }
    // The lexical index agrees with the papers too: same count, and a paper's own text finds it.
    let lex = lib.lexical().unwrap();
    assert_eq!(lex.len(), n, "lexical index");
    let last = n - 1;
    let top = lex
        .search(&lex.query(&lib.lexical_text(last).unwrap()), 1)
        .unwrap();
    assert_eq!(top[0].row, last, "lexical index disagrees with the papers");
    let row = rng.below(n as u64) as usize;
    let fresh = common::embedder()
        .embed(&[lib.papers().unwrap()[row].text().as_str()])
        .unwrap();
    let cos = common::cosine(fresh.row(0), &lib.vector(row));
    assert!(
        cos > 0.999,
        "row {row}: stored vector is not its paper's ({cos})"
    );
    library_titles(&lib)
}

/// Where a killed ingest was: before writing anything, while writing generation g+1, or
/// after its manifest was renamed into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Parsing, loading the model, embedding.
    Preparing,
    Writing,
    Committed,
}

fn manifest_of(root: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap()
}

fn generation(root: &Path) -> u64 {
    manifest_of(root)["generation"].as_u64().unwrap()
}

/// The file names a manifest refers to: its base generation's and its segments'.
fn manifest_files(m: &Value) -> BTreeSet<String> {
    let f = &m["files"];
    let mut names: BTreeSet<String> = ["papers", "embeddings", "graph", "lexical", "keys"]
        .iter()
        .filter_map(|k| f[*k].as_str().map(str::to_string))
        .collect();
    for s in m["segments"].as_array().into_iter().flatten() {
        names.extend(
            ["papers", "embeddings"]
                .iter()
                .filter_map(|k| s[*k].as_str().map(str::to_string)),
        );
    }
    names
}

/// Whether a writer started on generation `before + 1` since `since` (a killed writer's
/// leftovers of that generation are older).
fn commit_started(root: &Path, before: u64, since: std::time::SystemTime) -> bool {
    let next = before + 1;
    [
        format!("papers.{next}.jsonl"),
        "manifest.json.tmp".to_string(),
    ]
    .iter()
    .any(|name| {
        std::fs::metadata(root.join(name))
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since)
    })
}

fn phase(root: &Path, before: u64, since: std::time::SystemTime) -> Phase {
    if generation(root) > before {
        Phase::Committed
    } else if commit_started(root, before, since) {
        Phase::Writing
    } else {
        Phase::Preparing
    }
}

fn spawn_ingest(root: &Path, digests: &[PathBuf]) -> Child {
    cmd(root, &[os("ingest"), os("--wait")])
        .args(digests)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The daily digests cut in halves of about five papers, alternately as text and as JSON
/// Lines, so that one ingest takes about a second and there are enough of them for 100 kills.
fn half_digests(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut days: Vec<PathBuf> = std::fs::read_dir(common::fixture("digests/hf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    days.sort();
    let mut out = Vec::new();
    for day in days {
        let d = digest::read_path(&day, &ParseOptions::default())
            .unwrap()
            .remove(0);
        let stem = day.file_stem().unwrap().to_string_lossy().to_string();
        let (a, b) = d.papers.split_at(d.papers.len() / 2);
        let mut text = String::new();
        for p in a {
            text.push_str(&format!("{}\n\n{}\n\n", p.title, p.abstract_text));
        }
        out.push(write(&dir.join(format!("{stem}-a.txt")), text));
        let mut jsonl = String::new();
        for p in b {
            let line = serde_json::json!({"title": p.title, "abstract": p.abstract_text});
            jsonl.push_str(&format!("{line}\n"));
        }
        out.push(write(&dir.join(format!("{stem}-b.jsonl")), jsonl));
    }
    out
}

/// SIGKILL `ingest` at 100 points spread over parsing, model loading, embedding and the
/// commit; after each kill the library opens and agrees with itself on disk, holds either
/// none or all of the ingest's papers, and a re-run completes the ingest.
#[test]
fn a_hundred_kills_never_corrupt_the_library() {
    const KILLS: usize = 100;
    // A batch killed this many times in a row is then run to completion.
    const KILLS_PER_BATCH: usize = 5;
    let seed = std::env::var("PAPERSIM_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0fc0_ffee_u64);
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let root = library_copy(tmp.path());
    let halves = half_digests(&tmp.path().join("digests"));
    // Mostly one digest per ingest; every fourth ingest reads two.
    let mut batches: Vec<Vec<PathBuf>> = Vec::new();
    let mut rest = &halves[..];
    while !rest.is_empty() {
        let n = if batches.len() % 4 == 3 { 2 } else { 1 }.min(rest.len());
        batches.push(rest[..n].to_vec());
        rest = &rest[n..];
    }

    let started = Instant::now();
    let mut state = check_consistent(&root, &mut rng);
    // The first batch, not killed: how long an ingest takes here.
    let t0 = Instant::now();
    let o = cmd(&root, &[os("ingest")])
        .args(&batches[0])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut typical = t0.elapsed();
    state = state.union(&titles_of(&batches[0])).cloned().collect();
    assert_eq!(check_consistent(&root, &mut rng), state);

    let mut kills = 0;
    // Commits that wrote a segment, and those that wrote a full generation.
    let (mut segments_seen, mut bases_seen) = (0, 0);
    let mut phases: BTreeMap<Phase, usize> = BTreeMap::new();
    let mut reruns_completed = 0;
    let mut batch = 1;
    let mut killed_in_a_row = 0;
    let mut ingests = 1;
    let mut graph_stored = false;
    while kills < KILLS {
        if !graph_stored && kills >= KILLS / 2 {
            // The second half stores the HNSW graph, so that kills land in its writes too.
            let rebuild = [os("index"), os("rebuild"), os("--graph"), os("stored")];
            let o = cmd(&root, &rebuild).output().unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            graph_stored = true;
            assert_eq!(check_consistent(&root, &mut rng), state);
            assert!(manifest_of(&root)["files"]["graph"].is_string());
        }
        assert!(
            batch < batches.len(),
            "ran out of digests after {kills} kills"
        );
        let digests = &batches[batch];
        let after: BTreeSet<String> = state.union(&titles_of(digests)).cloned().collect();
        let gen_before = generation(&root);
        let t0 = Instant::now();
        // File times come from a coarse clock: allow for it (the last attempt ended long before).
        let since = std::time::SystemTime::now() - Duration::from_millis(20);
        let mut child = spawn_ingest(&root, digests);
        // After a kill that left the ingest undone, one re-run in three goes uncut (and always
        // the one after KILLS_PER_BATCH kills in a row): it must complete the ingest.
        let rerun =
            killed_in_a_row == KILLS_PER_BATCH || (killed_in_a_row > 0 && rng.below(3) == 0);
        if rerun {
            // The re-run: not killed.
        } else if rng.below(2) == 0 {
            // Half the kills wait for the commit to start, then up to 2 ms (a segment's commit
            // takes a few: some fsyncs of small files) or 30 ms (a full generation's).
            while !commit_started(&root, gen_before, since) && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_micros(200));
            }
            let window = if rng.below(2) == 0 { 2_000 } else { 30_000 };
            std::thread::sleep(Duration::from_micros(rng.below(window)));
        } else {
            // The others fall anywhere in a typical run, start to end.
            std::thread::sleep(Duration::from_micros(rng.below(typical.as_micros() as u64)));
        }
        let killed = if rerun {
            let status = child.wait().unwrap();
            assert!(status.success(), "the re-run failed: {status}");
            false
        } else if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "ingest failed on its own: {status}");
            false
        } else {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            *phases.entry(phase(&root, gen_before, since)).or_default() += 1;
            true
        };
        let now = check_consistent(&root, &mut rng);
        let m = manifest_of(&root);
        if m["generation"].as_u64() != Some(gen_before) {
            let last_segment = m["segments"]
                .as_array()
                .and_then(|s| s.last())
                .and_then(|s| s["generation"].as_u64());
            if last_segment == m["generation"].as_u64() {
                segments_seen += 1;
            } else {
                bases_seen += 1;
            }
        }
        assert!(
            now == state || now == after,
            "after {kills} kills: {} papers, neither {} (before) nor {} (after): half-added",
            now.len(),
            state.len(),
            after.len()
        );
        if !killed {
            assert_eq!(now, after, "a finished ingest added everything");
            typical = (typical * 3 + t0.elapsed()) / 4;
            if killed_in_a_row > 0 {
                reruns_completed += 1;
            }
        }
        if now == after {
            batch += 1;
            ingests += 1;
            killed_in_a_row = 0;
        } else {
            killed_in_a_row += 1;
        }
        state = now;
    }
    // The last interrupted ingest completes when run again (or the next one runs, so that the
    // last thing to touch the library is a whole commit).
    let previous = manifest_of(&root);
    let o = cmd(&root, &[os("ingest")])
        .args(&batches[batch])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    state = state.union(&titles_of(&batches[batch])).cloned().collect();
    if killed_in_a_row > 0 {
        reruns_completed += 1;
    }
    ingests += 1;
    assert_eq!(check_consistent(&root, &mut rng), state);
    // Only the files of the current and the previous manifest remain: killed writers'
    // leftovers and older generations are gone.
    let current = manifest_of(&root);
    assert!(current["generation"].as_u64() > previous["generation"].as_u64());
    let named: BTreeSet<String> = manifest_files(&current)
        .union(&manifest_files(&previous))
        .cloned()
        .collect();
    let stale: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| {
            n.split('.')
                .nth(1)
                .is_some_and(|g| g.parse::<u64>().is_ok())
        })
        .filter(|n| !named.contains(n))
        .collect();
    assert!(stale.is_empty(), "stale files left: {stale:?}");
    assert!(
        segments_seen > 0 && bases_seen > 0,
        "both kinds of commit ran: {segments_seen} segments, {bases_seen} full generations"
    );
    eprintln!(
        "crash test (seed {seed:#x}): {kills} SIGKILLs survived ({phases:?}), {reruns_completed} \
         re-runs completed a killed ingest, {ingests} ingests ({segments_seen} segments and \
         {bases_seen} full generations committed), {} papers, 0 corruptions, \
         typical ingest {typical:.1?}, {:.0?} in all",
        state.len(),
        started.elapsed()
    );
    assert!(
        phases.get(&Phase::Writing).copied().unwrap_or(0) >= 10,
        "too few kills landed inside the commit: {phases:?}"
    );
    assert!(phases.get(&Phase::Preparing).copied().unwrap_or(0) >= 25);
    assert!(reruns_completed >= 10);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

#[test]
fn a_second_writer_is_refused_or_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let held = WriteLock::acquire(&lib, false).unwrap();
    // Without --wait: refused at once, clearly, and nothing changes.
    refused(
        &lib,
        &[os("ingest"), day("03-01").as_os_str()],
        &["is being written by another papersim process", "--wait"],
    );
    // With --wait: it blocks until the lock is free, then completes.
    let mut waiting = cmd(
        &lib,
        &[os("ingest"), os("--wait"), day("03-01").as_os_str()],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the second writer did not wait"
    );
    assert_eq!(Library::open(&lib).unwrap().len(), 79);
    drop(held);
    let o = waiting.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: BTreeSet<String> = titles_of(&[seed_digest(), day("03-01")]);
    assert_eq!(library_titles(&Library::open(&lib).unwrap()), expected);
}

#[test]
fn two_ingests_at_once_never_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(3);
    // With --wait both complete, one after the other.
    let lib = library_copy(tmp.path());
    let (a, b) = (day("03-02"), day("03-03"));
    let children: Vec<Child> = [&a, &b]
        .iter()
        .map(|d| {
            cmd(&lib, &[os("ingest"), os("--wait"), d.as_os_str()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let titles = check_consistent(&lib, &mut rng);
    assert_eq!(titles, titles_of(&[seed_digest(), a.clone(), b.clone()]));

    // Without --wait: each one completes or is refused with the message; nothing is lost.
    let lib2 = tmp.path().join("lib2");
    copy_dir(seed_library(), &lib2);
    let children: Vec<(PathBuf, Child)> = [a.clone(), b.clone()]
        .into_iter()
        .map(|d| {
            let c = cmd(&lib2, &[os("ingest"), d.as_os_str()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (d, c)
        })
        .collect();
    let mut expected = vec![seed_digest()];
    let mut refusals = 0;
    for (d, c) in children {
        let o = c.wait_with_output().unwrap();
        if o.status.success() {
            expected.push(d);
        } else {
            assert_eq!(o.status.code(), Some(1));
            assert!(
                stderr(&o).contains("is being written by another papersim process"),
                "{}",
                stderr(&o)
            );
            refusals += 1;
        }
    }
    assert!(refusals <= 1, "at least one of two writers gets the lock");
    assert_eq!(check_consistent(&lib2, &mut rng), titles_of(&expected));
    eprintln!("two writers without --wait: {refusals} refused");
}

/// Readers running during ingests (the binary's `info` and `query`, and `Library::open` in
/// this process) each see one whole library: the one before an ingest or the one after.
#[test]
fn readers_during_ingests_see_the_old_or_the_new_library() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let batches: Vec<Vec<PathBuf>> = vec![
        vec![day("03-04")],
        vec![day("03-05"), day("03-06")],
        vec![day("03-07")],
        vec![day("03-08"), day("03-09")],
    ];
    // Every state the library passes through, by size (each ingest adds papers).
    let mut states = vec![titles_of(&[seed_digest()])];
    for b in &batches {
        let next: BTreeSet<String> = states
            .last()
            .unwrap()
            .union(&titles_of(b))
            .cloned()
            .collect();
        assert!(next.len() > states.last().unwrap().len());
        states.push(next);
    }
    let by_size: BTreeMap<usize, &BTreeSet<String>> = states.iter().map(|s| (s.len(), s)).collect();
    assert_eq!(by_size.len(), states.len());

    let writer = {
        let lib = lib.clone();
        let batches = batches.clone();
        std::thread::spawn(move || {
            for b in &batches {
                let o = cmd(&lib, &[os("ingest")]).args(b).output().unwrap();
                assert!(o.status.success(), "{}", stderr(&o));
            }
        })
    };
    let (mut opens, mut infos, mut queries) = (0, 0, 0);
    let mut seen_sizes = BTreeSet::new();
    while !writer.is_finished() {
        // In-process: open and search.
        let l = Library::open(&lib).unwrap();
        let titles = library_titles(&l);
        let state = by_size
            .get(&titles.len())
            .unwrap_or_else(|| panic!("a library of {} papers never existed", titles.len()));
        assert_eq!(&titles, *state, "a mix of two libraries");
        let row = l.len() - 1;
        assert_eq!(
            l.search(&l.vector(row), 1, SearchMode::Hnsw).unwrap()[0].row,
            row
        );
        seen_sizes.insert(l.len());
        opens += 1;
        // The binary: info, and a query that returns every paper.
        let o = run(&lib, &[os("info"), os("--format"), os("json")]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let n = v["papers"].as_u64().unwrap() as usize;
        assert!(by_size.contains_key(&n), "info saw {n} papers");
        infos += 1;
        if opens % 4 == 1 {
            let o = run(
                &lib,
                &[
                    os("query"),
                    os("diffusion models"),
                    os("-k"),
                    os("10000"),
                    os("--format"),
                    os("json"),
                ],
            );
            assert!(o.status.success(), "{}", stderr(&o));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            let got: BTreeSet<String> = v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| normalize_title(r["title"].as_str().unwrap()))
                .collect();
            let state = by_size
                .get(&got.len())
                .unwrap_or_else(|| panic!("a query saw {} papers", got.len()));
            assert_eq!(&got, *state, "a query saw a mix of two libraries");
            queries += 1;
        }
    }
    writer.join().unwrap();
    assert_eq!(
        Library::open(&lib).unwrap().len(),
        states.last().unwrap().len()
    );
    eprintln!(
        "readers during {} ingests: {opens} opens, {infos} info, {queries} queries; library sizes seen {seen_sizes:?}",
        batches.len()
    );
    assert!(
        seen_sizes.len() >= 2,
        "the readers never saw an ingest land"
    );
}

// ---------------------------------------------------------------------------------------------
// Full and read-only filesystems

/// A tmpfs mounted for one test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// Mounts a tmpfs of `size` at `dir`, or says why it cannot.
    fn tmpfs(dir: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(dir).unwrap();
        if !is_root() {
            return Err("mounting a tmpfs needs root".into());
        }
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(Mount(dir.to_path_buf()))
    }

    fn remount(&self, opts: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Only a non-root run may skip a tmpfs test: as root the mount must work, so a failure there
/// is a failed test, never a silent pass (CI runs as root).
pub(crate) fn skip(test: &str, why: &str) {
    assert!(
        !is_root(),
        "{test}: {why}; running as root, so the tmpfs mount this test needs should have worked"
    );
    eprintln!("SKIPPED {test}: {why}; this test needs a tmpfs mount (run as root)");
}

/// Fills the filesystem holding `dir`, then frees `free` bytes.
fn fill_leaving(dir: &Path, free: u64) {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling: {e}"),
        }
    }
    // Single bytes for the last partial chunk.
    while f.write(&[0]).is_ok_and(|n| n == 1) {}
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(free)).unwrap();
    f.sync_all().unwrap();
}

/// The library's files without the lock file, whose content is the pid of the last process
/// that took the write lock (not library data: an ingest that fails after taking it changes it).
fn data_snapshot(lib: &Path) -> BTreeMap<String, String> {
    let mut s = snapshot(lib);
    s.remove("lock");
    s
}

#[test]
fn ingest_on_a_full_disk_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let mount = match Mount::tmpfs(&mnt, "8m") {
        Ok(m) => m,
        Err(why) => return skip("ingest_on_a_full_disk_fails_cleanly", &why),
    };
    let lib = mnt.join("lib");
    let digests = [day("03-10"), day("03-11")];
    let mut rng = Rng::new(11);
    let mut failures = BTreeMap::<String, usize>::new();
    let mut successes = 0;
    // Generation 2 of this ingest is a full one. Its files' sizes, measured by the same
    // ingest on a roomy disk, in the order a full commit writes them, give free space from
    // none to enough, half-way into each file, so that the disk runs out in each.
    let reference = tmp.path().join("reference");
    copy_dir(seed_library(), &reference);
    let o = cmd(&reference, &[os("ingest")])
        .args(&digests)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let files = manifest_of(&reference)["files"].clone();
    let page = |len: u64| len.div_ceil(4096) * 4096;
    let mut free = vec![0u64];
    let mut written = 0;
    for kind in ["papers", "keys", "embeddings", "lexical"] {
        let name = files[kind].as_str().unwrap();
        let len = std::fs::metadata(reference.join(name)).unwrap().len();
        free.push(written + len / 2);
        written += page(len);
    }
    free.push(written + 256 * 1024);
    for free_bytes in free {
        let free_kib = free_bytes / 1024;
        let _ = std::fs::remove_dir_all(&lib);
        let _ = std::fs::remove_file(mnt.join("filler"));
        copy_dir(seed_library(), &lib);
        fill_leaving(&mnt, free_kib * 1024);
        let before = data_snapshot(&lib);
        let o = cmd(&lib, &[os("ingest")]).args(&digests).output().unwrap();
        let err = stderr(&o);
        if o.status.success() {
            successes += 1;
            check_consistent(&lib, &mut rng);
            continue;
        }
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("No space left on device"),
            "{free_kib} KiB free: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            data_snapshot(&lib),
            before,
            "{free_kib} KiB free: the failed ingest changed the library"
        );
        check_consistent(&lib, &mut rng);
        // Which file the disk ran out on.
        let file = err
            .split_whitespace()
            .find(|w| w.contains(lib.to_str().unwrap()))
            .map(|w| {
                Path::new(w.trim_end_matches(':'))
                    .strip_prefix(&lib)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        *failures.entry(file).or_default() += 1;
    }
    // Once there is room again, the same ingest succeeds on the library a failure left.
    let _ = std::fs::remove_dir_all(&lib);
    copy_dir(seed_library(), &lib);
    fill_leaving(&mnt, 0);
    let o = cmd(&lib, &[os("ingest")]).args(&digests).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let o = cmd(&lib, &[os("ingest")]).args(&digests).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        check_consistent(&lib, &mut rng),
        titles_of(&[seed_digest(), digests[0].clone(), digests[1].clone()])
    );
    drop(mount);
    eprintln!("full disk: failures by file {failures:?}, {successes} levels had room enough");
    assert!(failures.values().sum::<usize>() >= 5, "{failures:?}");
    assert!(
        failures.len() >= 2,
        "the disk ran out in only one place: {failures:?}"
    );
}

#[test]
fn ingest_on_a_read_only_filesystem_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let mount = match Mount::tmpfs(&mnt, "16m") {
        Ok(m) => m,
        Err(why) => return skip("ingest_on_a_read_only_filesystem_fails_cleanly", &why),
    };
    let lib = mnt.join("lib");
    copy_dir(seed_library(), &lib);
    mount.remount("ro");
    // Refused as the write lock is taken, before any embedding, naming the directory.
    refused(
        &lib,
        &[os("ingest"), day("03-12").as_os_str()],
        &[lib.to_str().unwrap(), "Read-only file system"],
    );
    refused(
        &lib,
        &[os("index"), os("rebuild")],
        &["Read-only file system"],
    );
    // Readers work on a read-only library.
    let o = run(&lib, &[os("info")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(
        &lib,
        &[os("query"), os("speculative decoding"), os("-k"), os("3")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&lib, &[os("similar"), os(DMD), os("-k"), os("3")]);
    assert!(o.status.success(), "{}", stderr(&o));
    drop(mount);
}
