//! Issue #19: a library kept in a Qdrant collection, tested against a real cluster.
//!
//! These tests need a running Qdrant cluster: `PAPERSIM_QDRANT_URL` names its nodes' REST URLs
//! (comma-separated), `PAPERSIM_QDRANT_CLUSTER` the directory `scripts/qdrant-cluster.sh start
//! DIR` made (to kill and restart a node), `PAPERSIM_QDRANT_SHARDS` and
//! `PAPERSIM_QDRANT_REPLICAS` the collections' layout (2 and 2 by default). `.ci/run` starts a
//! three-node cluster and sets them. Without them each test fails saying what to start; the
//! plain suite leaves them out with `cargo test --test tests -- --skip qdrant::` (README,
//! "Development"). One test at a time: one of them kills a node.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, papersim, ranked, seed_library, stderr, stdout, DMD};

/// The tests share one cluster, and one of them takes a node down: they run one at a time.
static CLUSTER: Mutex<()> = Mutex::new(());

const HOW: &str = "start a three-node cluster with `scripts/qdrant-cluster.sh start DIR` \
    (it needs a Qdrant server: QDRANT_BIN, ../shared/bin/qdrant or `qdrant` on PATH; see docs/qdrant.md), \
    then set PAPERSIM_QDRANT_URL to the URLs it prints and PAPERSIM_QDRANT_CLUSTER=DIR; \
    or run the suite without the Qdrant tests: cargo test --test tests -- --skip qdrant::";

fn urls() -> String {
    std::env::var("PAPERSIM_QDRANT_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| panic!("PAPERSIM_QDRANT_URL is not set: {HOW}"))
}

fn cluster_dir() -> PathBuf {
    std::env::var_os("PAPERSIM_QDRANT_CLUSTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("PAPERSIM_QDRANT_CLUSTER is not set: {HOW}"))
}

fn layout() -> (String, String) {
    let get = |k: &str| std::env::var(k).unwrap_or_else(|_| "2".into());
    (
        get("PAPERSIM_QDRANT_SHARDS"),
        get("PAPERSIM_QDRANT_REPLICAS"),
    )
}

/// A collection name of its own for each test and run.
fn collection(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t_{name}_{}_{nanos}", std::process::id())
}

fn run(lib: &Path, args: &[&str]) -> Output {
    papersim()
        .env_remove("PAPERSIM_QDRANT_API_KEY")
        .arg("--library")
        .arg(lib)
        .arg("--quiet")
        .args(args)
        .output()
        .unwrap()
}

fn ok(lib: &Path, args: &[&str]) -> String {
    let o = run(lib, args);
    assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
    stdout(&o)
}

fn json(lib: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&ok(lib, &all)).unwrap()
}

/// `papersim init --engine qdrant` of a new library at `lib` in collection `name`.
fn init(lib: &Path, name: &str) {
    let (shards, replicas) = layout();
    ok(
        lib,
        &[
            "init",
            "--engine",
            "qdrant",
            "--url",
            &urls(),
            "--collection",
            name,
            "--shards",
            &shards,
            "--replicas",
            &replicas,
        ],
    );
}

fn papers(lib: &Path) -> u64 {
    json(lib, &["info"])["papers"].as_u64().unwrap()
}

/// The same papers in the same order, each score within 1e-4.
fn assert_same(local: &Value, remote: &Value) {
    let (l, r) = (ranked(local), ranked(remote));
    assert!(!l.is_empty(), "an empty ranking proves nothing: {local}");
    let ids = |v: &[(String, f64)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&l), ids(&r), "local {l:?}\nqdrant {r:?}");
    for ((id, a), (_, b)) in l.iter().zip(&r) {
        assert!((a - b).abs() <= 1e-4, "{id}: local {a}, qdrant {b}");
    }
}

/// The seed digest ingested into a Qdrant library (embedded by the real `ingest`).
fn seeded(tmp: &Path) -> PathBuf {
    let lib = tmp.join("q");
    init(&lib, &collection("seed"));
    let seed = common::fixture("digests/hf-trending-mar-11.txt");
    let report = json(&lib, &["ingest", seed.to_str().unwrap()]);
    assert_eq!(report["added"], 79, "{report}");
    assert_eq!(report["papers_total"], 79, "{report}");
    lib
}

#[test]
fn similar_top5_for_dmd2_equals_the_local_library() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let q = seeded(tmp.path());
    assert_eq!(papers(&q), 79);
    let args = ["similar", DMD, "-k", "5", "--mode", "dense"];
    let local = json(seed_library(), &args);
    let remote = json(&q, &args);
    assert_eq!(ranked(&local).len(), 5);
    assert_same(&local, &remote);
    // The paper itself, named by its title, in the same JSON report.
    assert_eq!(local["query"], remote["query"]);
    // Nothing of the papers is kept in the directory: the manifest (and nothing else).
    let files: Vec<String> = std::fs::read_dir(&q)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != ".lock" && !n.ends_with(".lock"))
        .collect();
    assert_eq!(files, vec!["manifest.json".to_string()], "{files:?}");
    // A command that works on local files only says so, instead of answering from an empty
    // directory.
    for args in [
        &["index", "rebuild"][..],
        &["query", "diffusion", "--mode", "lexical"],
    ] {
        let o = run(&q, args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with("papersim: error: "), "{err}");
        assert!(err.contains("qdrant"), "{args:?}: {err}");
    }
}

#[test]
fn recommend_with_a_like_and_a_dislike_equals_the_local_ranking() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let q = seeded(tmp.path());
    let near = json(
        seed_library(),
        &["similar", DMD, "-k", "3", "--mode", "dense"],
    );
    let like = near["query"]["id"].as_str().unwrap().to_string();
    let dislike = ranked(&near)[0].0.clone();
    for mode in ["dense", "hybrid"] {
        let args = [
            "recommend",
            "--like",
            &like,
            "--unlike",
            &dislike,
            "-k",
            "10",
            "--mode",
            mode,
        ];
        let local = json(seed_library(), &args);
        let remote = json(&q, &args);
        let (l, r) = (ranked(&local), ranked(&remote));
        assert!(!l.iter().any(|(id, _)| *id == like || *id == dislike));
        if mode == "dense" {
            assert_same(&local, &remote);
        } else {
            // Hybrid's BM25 statistics come from the fetched candidates on Qdrant
            // (docs/qdrant.md): the same papers lead, scores may differ.
            let top =
                |v: &[(String, f64)]| v.iter().take(3).map(|x| x.0.clone()).collect::<Vec<_>>();
            let shared = top(&l).iter().filter(|id| top(&r).contains(id)).count();
            assert!(shared >= 2, "hybrid top 3: local {l:?}\nqdrant {r:?}");
        }
    }
    // Stored feedback works the same way: a like and a dislike in the library's log.
    ok(&q, &["like", &like]);
    ok(&q, &["dislike", &dislike]);
    let stored = json(&q, &["recommend", "-k", "10", "--mode", "dense"]);
    let flags = json(
        seed_library(),
        &[
            "recommend",
            "--like",
            &like,
            "--unlike",
            &dislike,
            "-k",
            "10",
            "--mode",
            "dense",
        ],
    );
    assert_eq!(ranked(&stored).len(), 10);
    let ids = |v: &Value| ranked(v).into_iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(ids(&stored), ids(&flags));
}

#[test]
fn a_date_window_filters_as_on_the_local_library() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let days: Vec<PathBuf> = ["03-01", "03-02", "03-03"]
        .iter()
        .map(|d| common::fixture(&format!("digests/hf/hf_2026-{d}.txt")))
        .collect();
    let day_args: Vec<&str> = days.iter().map(|p| p.to_str().unwrap()).collect();
    let local = tmp.path().join("local");
    let q = tmp.path().join("q");
    init(&q, &collection("dates"));
    for lib in [&local, &q] {
        let mut args = vec!["ingest"];
        args.extend(&day_args);
        ok(lib, &args);
    }
    assert_eq!(papers(&q), papers(&local));
    let window = [
        "query",
        "diffusion models for images",
        "-k",
        "50",
        "--mode",
        "dense",
        "--since",
        "2026-03-02",
        "--until",
        "2026-03-02",
    ];
    let l = json(&local, &window);
    let r = json(&q, &window);
    assert_same(&l, &r);
    let all = json(
        &q,
        &[
            "query",
            "diffusion models for images",
            "-k",
            "50",
            "--mode",
            "dense",
        ],
    );
    // The window keeps some papers and leaves out others.
    assert!(!ranked(&r).is_empty());
    assert!(ranked(&r).len() < ranked(&all).len(), "{r}\n{all}");
    // Every paper kept was in the digest of that day (it may have been seen earlier too).
    let that_day: Vec<String> = papersim::digest::read_path(&days[1], &Default::default())
        .unwrap()
        .iter()
        .flat_map(|d| d.papers.iter().map(|p| p.id()))
        .collect();
    for (id, _) in ranked(&r) {
        assert!(
            that_day.contains(&id),
            "{id} was not in the digest of 2026-03-02"
        );
    }
}

/// `count` unit vectors of `dim` values, the same on every run (xorshift).
fn unit_vectors(count: usize, dim: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(count * dim);
    for _ in 0..count {
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        out.extend(v.iter().map(|x| x / norm));
    }
    out
}

/// The 2,000-paper arXiv digest of the fixtures with a matrix and sidecar for
/// `ingest --embeddings` (vectors made up: what is tested is the writing, not the ranking).
fn large_digest(tmp: &Path) -> (PathBuf, PathBuf) {
    use papersim::digest::{self, ParseOptions};
    use papersim::library::export::{self, RowSource, SidecarRow};
    let digest = common::fixture("bench/arxiv-cs-2000.jsonl.gz");
    let papers: Vec<_> = digest::read_path(&digest, &ParseOptions::default())
        .unwrap()
        .into_iter()
        .flat_map(|d| {
            let source = d.source.clone();
            d.papers.into_iter().map(move |p| (source.clone(), p))
        })
        .collect();
    let model = papersim::pipeline::model_info(common::embedder().files()).unwrap();
    let names: Vec<SidecarRow> = papers
        .iter()
        .enumerate()
        .map(|(row, (source, p))| SidecarRow {
            row,
            source: RowSource::Paper {
                id: p.id(),
                title: p.title.clone(),
                digest: source.clone(),
                text_sha256: Some(papersim::paper::text_sha256(&p.embedding_text())),
            },
        })
        .collect();
    let matrix = tmp.join("arxiv.npy");
    let data = unit_vectors(names.len(), model.dim);
    export::write(&matrix, &data, &model, &names, &[]).unwrap();
    (digest, matrix)
}

/// The points in collection `name`, asked of the first node directly (a poll much faster than
/// a `papersim info` process).
fn count(name: &str) -> u64 {
    let first = urls().split(',').next().unwrap().trim().to_string();
    let mut r = ureq::post(format!("{first}/collections/{name}/points/count"))
        .header("content-type", "application/json")
        .send(&b"{\"exact\": true}"[..])
        .unwrap();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    v["result"]["count"].as_u64().unwrap()
}

#[test]
fn a_node_killed_mid_ingest_then_a_rerun_converges() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    cluster_dir();
    let (digest, matrix) = large_digest(tmp.path());
    let q = tmp.path().join("q");
    let name = collection("kill");
    init(&q, &name);
    let ingest = |lib: &Path| {
        let mut c = papersim();
        c.env_remove("PAPERSIM_QDRANT_API_KEY");
        c.arg("--library")
            .arg(lib)
            .arg("--quiet")
            .args(["ingest", "--format", "json", "--embeddings"])
            .arg(&matrix)
            .arg(&digest)
            // Small acknowledged batches, so that the ingest lasts long enough to kill a node in.
            .env("PAPERSIM_QDRANT_WRITE_BATCH", "4");
        c
    };
    let child = ingest(&q)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first batches are in, node 3 goes down as a crash would (SIGKILL, at once).
    let start = Instant::now();
    while count(&name) < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the ingest wrote nothing in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = std::fs::read_to_string(cluster_dir().join("node3/pid")).unwrap();
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The node comes back even when an assertion below fails, for the tests after this one.
    let restart = scopeguard(|| {
        // No assertion here: a panic while unwinding would abort the test binary.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/qdrant-cluster.sh");
        let back = Command::new(script)
            .args([
                "start-node".as_ref(),
                cluster_dir().as_os_str(),
                "3".as_ref(),
            ])
            .status();
        if !back.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("qdrant: node 3 did not come back: {back:?}");
        }
    });
    let killed_at = papers(&q);
    assert!(
        killed_at < 2000,
        "the ingest ended before the node was killed"
    );
    let first = child.wait_with_output().unwrap();
    if first.status.success() {
        // Replication 2: every shard kept a live copy, and the writes went on.
        let report: Value = serde_json::from_slice(&first.stdout).unwrap();
        assert_eq!(report["papers_total"], 2000, "{report}");
    } else {
        let err = stderr(&first);
        assert!(err.starts_with("papersim: error: Qdrant at "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    eprintln!(
        "node killed at {killed_at} papers; the ingest {}",
        if first.status.success() {
            "completed"
        } else {
            "failed clearly"
        }
    );
    // Reads go on with the node down.
    assert!(papers(&q) >= killed_at);
    drop(restart);
    // A re-run converges: every paper once, nothing added twice.
    let again = ingest(&q).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["papers_total"], 2000, "{report}");
    assert_eq!(papers(&q), 2000);
    let third: Value = serde_json::from_slice(&ingest(&q).output().unwrap().stdout).unwrap();
    assert_eq!(third["added"], 0, "{third}");
    assert_eq!(third["papers_total"], 2000, "{third}");
}

/// Runs `f` when dropped (the node comes back even when an assertion fails).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

#[test]
fn export_moves_a_local_library_and_resumes() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let q = tmp.path().join("q");
    let name = collection("export");
    let (shards, replicas) = layout();
    let export = [
        "export",
        "--engine",
        "qdrant",
        "--url",
        &urls(),
        "--collection",
        &name,
        "--shards",
        &shards,
        "--replicas",
        &replicas,
        "--to",
        q.to_str().unwrap(),
    ];
    let first = json(seed_library(), &export);
    assert_eq!(first["written"], 79, "{first}");
    let second = json(seed_library(), &export);
    assert_eq!(second["written"], 0, "{second}");
    assert_eq!(second["collection_papers"], 79, "{second}");
    let args = ["similar", DMD, "-k", "5", "--mode", "dense"];
    assert_same(&json(seed_library(), &args), &json(&q, &args));
}

#[test]
fn an_unreachable_cluster_is_a_clear_error_naming_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("q");
    // Port 9 (discard) on loopback: nothing listens there.
    let url = "http://127.0.0.1:9";
    let o = run(&lib, &["init", "--engine", "qdrant", "--url", url]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("papersim: error: Qdrant at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!lib.join("manifest.json").exists(), "a library was created");
    // Bounds are checked before anything is sent.
    let o = run(
        &lib,
        &["init", "--engine", "qdrant", "--url", url, "--shards", "0"],
    );
    assert!(
        stderr(&o).contains("--shards 0: give 1 to 64"),
        "{}",
        stderr(&o)
    );
    let o = run(
        &lib,
        &["init", "--engine", "qdrant", "--url", "localhost:6333"],
    );
    assert!(
        stderr(&o).contains("not an http:// or https:// URL"),
        "{}",
        stderr(&o)
    );
}

/// A single Qdrant node of its own that requires an API key, killed when dropped.
struct KeyedNode(std::process::Child);

impl Drop for KeyedNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_api_key_is_sent_from_the_flag_or_the_environment() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let bin = std::env::var_os("QDRANT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bin/qdrant"));
    assert!(
        bin.is_file(),
        "no Qdrant server at {}: {HOW}",
        bin.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let key = "papersim-test-key";
    let url = "http://127.0.0.1:17533";
    let _node = KeyedNode(
        Command::new(&bin)
            .current_dir(tmp.path())
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", "17533")
            .env("QDRANT__SERVICE__GRPC_PORT", "17534")
            .env("QDRANT__SERVICE__API_KEY", key)
            .env("QDRANT__STORAGE__STORAGE_PATH", tmp.path().join("storage"))
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while ureq::get(format!("{url}/readyz")).call().is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the keyed node did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lib = tmp.path().join("q");
    let init = |extra: &[&str]| {
        let mut args = vec!["init", "--engine", "qdrant", "--url", url];
        args.extend(extra);
        run(&lib, &args)
    };
    // Without the key: refused by the server, said clearly, nothing created.
    let o = init(&[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!("papersim: error: Qdrant at {url}")),
        "{err}"
    );
    assert!(
        err.contains("HTTP 401") && err.contains("--api-key"),
        "{err}"
    );
    assert!(!lib.join("manifest.json").exists());
    // With the flag: created; the key is not stored in the library.
    ok(
        &lib,
        &["init", "--engine", "qdrant", "--url", url, "--api-key", key],
    );
    let manifest = std::fs::read_to_string(lib.join("manifest.json")).unwrap();
    assert!(
        !manifest.contains(key),
        "the API key was stored: {manifest}"
    );
    // Later commands take it from the environment.
    let info = |with_key: bool| {
        let mut c = papersim();
        c.env_remove("PAPERSIM_QDRANT_API_KEY");
        c.arg("--library")
            .arg(&lib)
            .args(["info", "--format", "json"]);
        if with_key {
            c.env("PAPERSIM_QDRANT_API_KEY", key);
        }
        c.output().unwrap()
    };
    let o = info(true);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["papers"], 0);
    let o = info(false);
    assert!(stderr(&o).contains("HTTP 401"), "{}", stderr(&o));
}
