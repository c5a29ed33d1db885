//! What papersim writes and prints: `embed -o` never destroys what stands at or beside its
//! output (item 3), every numeric option has a bound that a manifest cannot slip past
//! (item 7), text from files reaches the terminal with its control characters escaped
//! (item 8), and the smaller misreadings of item 10.

use std::ffi::OsStr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, papersim as bin, stderr, stdout, DMD};
use crate::reliability::{cmd, is_root, library_copy, os, refused, run, snapshot, write};

/// A digest of `n` real papers (arXiv JSON Lines, with ids).
fn small_digest(dir: &Path, name: &str, n: usize) -> PathBuf {
    let all = std::fs::read_to_string(common::fixture("digests/arxiv-cs-30.jsonl")).unwrap();
    let lines: String = all.lines().take(n).map(|l| format!("{l}\n")).collect();
    write(&dir.join(name), lines)
}

/// `papersim --quiet ARGS...` with no library involved.
fn papersim(args: &[&OsStr]) -> Output {
    bin().arg("--quiet").args(args).output().unwrap()
}

/// Asserts a refusal: exit 1, one `papersim: error:` line naming every needle, no panic.
fn assert_refused(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("papersim: error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    }
    err
}

/// The names in `dir`, sorted: what a command left there.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

// ---------------------------------------------------------------------------------------------
// Item 3: `embed -o`

#[test]
fn item3_embed_never_replaces_a_device_node_fifo_symlink_or_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let digest = small_digest(dir, "day.jsonl", 2);
    let victim = write(&dir.join("victim.txt"), "not papersim's\n");

    mkfifo(&dir.join("fifo.npy"));
    std::os::unix::fs::symlink(&victim, dir.join("link.npy")).unwrap();
    std::fs::create_dir(dir.join("dir.npy")).unwrap();
    // The sidecar's path is judged as strictly as the matrix's.
    mkfifo(&dir.join("side.rows.jsonl"));
    std::os::unix::fs::symlink(&victim, dir.join("sidelink.rows.jsonl")).unwrap();
    let mut cases = vec![
        ("fifo.npy", "fifo.npy", "a FIFO"),
        ("link.npy", "link.npy", "a symbolic link"),
        ("dir.npy", "dir.npy", "a directory"),
        ("side.npy", "side.rows.jsonl", "a FIFO"),
        ("sidelink.npy", "sidelink.rows.jsonl", "a symbolic link"),
    ];
    // The issue's case: as root, `-o /dev/full` replaced the device node. Here a node of the
    // same kind (1, 7) is made in the test's own directory; only root may make one.
    if is_root() {
        let ok = Command::new("mknod")
            .arg(dir.join("full.npy"))
            .args(["c", "1", "7"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mknod as root");
        cases.push(("full.npy", "full.npy", "a character device"));
    }
    let before = names(dir);
    for (output, named, kind) in cases {
        let out = bin()
            .current_dir(dir)
            .args(["--quiet", "embed"])
            .arg(&digest)
            .args(["-o", output])
            .output()
            .unwrap();
        assert_refused(&out, &[named, kind]);
        assert_eq!(names(dir), before, "-o {output} left or removed files");
    }
    let kind = |name: &str| {
        std::fs::symlink_metadata(dir.join(name))
            .unwrap()
            .file_type()
    };
    assert!(kind("fifo.npy").is_fifo() && kind("side.rows.jsonl").is_fifo());
    assert!(kind("link.npy").is_symlink() && kind("sidelink.rows.jsonl").is_symlink());
    assert!(kind("dir.npy").is_dir());
    if is_root() {
        assert!(kind("full.npy").is_char_device());
    }
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "not papersim's\n"
    );
}

#[test]
fn item3_embed_sidecar_never_overwrites_an_input_or_the_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // `embed day.jsonl -o day.npy` once wrote its sidecar over day.jsonl, the input.
    let digest = small_digest(dir, "day.jsonl", 3);
    let original = std::fs::read(&digest).unwrap();
    let o = papersim(&[
        os("embed"),
        digest.as_os_str(),
        os("-o"),
        dir.join("day.npy").as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&digest).unwrap(),
        original,
        "the input changed"
    );
    let (_, rows, cols) =
        papersim::library::npy::decode_f32(&std::fs::read(dir.join("day.npy")).unwrap()).unwrap();
    assert_eq!((rows, cols), (3, 384));
    let sidecar = papersim::library::export::sidecar_path(&dir.join("day.npy")).unwrap();
    assert_eq!(sidecar, dir.join("day.rows.jsonl"));
    let side = std::fs::read_to_string(&sidecar).unwrap();
    // A header naming the model (issue #13 item 4), then one line per row.
    let header: Value = serde_json::from_str(side.lines().next().unwrap()).unwrap();
    assert_eq!(header["rows"].as_u64(), Some(3));
    let first: Value = serde_json::from_str(side.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        (first["row"].as_u64(), first["id"].as_str()),
        (Some(0), Some("1812.06145"))
    );
    assert_eq!(side.lines().count(), 1 + 3);
    assert!(stdout(&o).contains("rows named in"), "{}", stdout(&o));

    // `-o v.jsonl` once lost the matrix under its own sidecar: a matrix is a .npy file.
    let before = names(dir);
    let o = papersim(&[
        os("embed"),
        digest.as_os_str(),
        os("-o"),
        dir.join("v.jsonl").as_os_str(),
    ]);
    assert_refused(&o, &["v.jsonl", "ends in .npy"]);
    assert_eq!(names(dir), before);

    // A digest that happens to bear the sidecar's name is an input, whatever its contents.
    let named_like = write(&dir.join("w.rows.jsonl"), &original);
    for input in [named_like.clone(), dir.join("alias.jsonl")] {
        if input != named_like {
            std::fs::hard_link(&named_like, &input).unwrap();
        }
        let o = papersim(&[
            os("embed"),
            input.as_os_str(),
            os("-o"),
            dir.join("w.npy").as_os_str(),
        ]);
        assert_refused(&o, &["w.rows.jsonl", "one of the files being embedded"]);
        assert_eq!(std::fs::read(&named_like).unwrap(), original);
        assert!(!dir.join("w.npy").exists());
    }
}

#[test]
fn item3_embed_overwrites_only_its_own_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    small_digest(dir, "day.jsonl", 2);
    let embed = || {
        bin()
            .current_dir(dir)
            .args(["--quiet", "embed", "day.jsonl", "-o", "out.npy"])
            .output()
            .unwrap()
    };

    // Someone's file at the matrix path, then at the sidecar path: neither is replaced.
    write(&dir.join("out.npy"), "my notes, not a matrix\n");
    assert_refused(
        &embed(),
        &["out.npy", "is not a .npy file", "remove the file"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out.npy")).unwrap(),
        "my notes, not a matrix\n"
    );
    std::fs::remove_file(dir.join("out.npy")).unwrap();
    write(&dir.join("out.rows.jsonl"), "{\"my\": \"data\"}\n");
    assert_refused(&embed(), &["out.rows.jsonl", "is not a sidecar"]);
    assert_eq!(names(dir), ["day.jsonl", "out.rows.jsonl"]);
    std::fs::remove_file(dir.join("out.rows.jsonl")).unwrap();

    // Its own earlier output is replaced, again and again, and nothing else is left behind.
    for _ in 0..2 {
        let o = embed();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(names(dir), ["day.jsonl", "out.npy", "out.rows.jsonl"]);
    }
}

#[test]
fn item3_embed_temporary_file_never_follows_a_planted_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let digest = small_digest(dir, "day.jsonl", 2);
    let victim = write(&dir.join("victim.txt"), "keep me\n");
    // The name the old code wrote its temporary file under, planted as a link to the victim.
    for planted in ["out.npy.tmp", "out.rows.jsonl.tmp"] {
        std::os::unix::fs::symlink(&victim, dir.join(planted)).unwrap();
    }
    let o = papersim(&[
        os("embed"),
        digest.as_os_str(),
        os("-o"),
        dir.join("out.npy").as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"keep me\n",
        "the victim was written"
    );
    for planted in ["out.npy.tmp", "out.rows.jsonl.tmp"] {
        let meta = std::fs::symlink_metadata(dir.join(planted)).unwrap();
        assert!(meta.file_type().is_symlink(), "{planted} was replaced");
    }
    assert!(std::fs::read(dir.join("out.npy"))
        .unwrap()
        .starts_with(b"\x93NUMPY"));
}

// ---------------------------------------------------------------------------------------------
// Item 7: bounds on every numeric setting

#[test]
fn item7_index_rebuild_refuses_unbounded_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    for (option, value, needle) in [
        (
            "--ef-search",
            "1000000000000",
            "ef_search must be between 1 and 10000",
        ),
        ("--ef-search", "0", "ef_search must be between 1 and 10000"),
        (
            "--ef-construction",
            "1000000000000",
            "ef_construction must be between 1 and 10000",
        ),
        ("--m", "1000", "m must be between 2 and 255"),
    ] {
        let err = refused(
            &lib,
            &[os("index"), os("rebuild"), os(option), os(value)],
            &[option, needle, value],
        );
        // The error says why the bound is there.
        assert!(err.contains("got") && err.contains(": "), "{err}");
    }
}

#[test]
fn item7_a_manifest_out_of_bounds_is_refused_with_the_way_to_mend_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let manifest = lib.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["index"]["ef_search"] = Value::from(1_000_000_000_000u64);
    std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    for args in [
        vec!["query", "diffusion", "--mode", "lexical"],
        vec!["similar", DMD],
        vec!["info"],
    ] {
        let args: Vec<&OsStr> = args.iter().map(os).collect();
        refused(
            &lib,
            &args,
            &[
                "manifest.json",
                "ef_search must be between 1 and 10000",
                "papersim index rebuild --ef-search N",
            ],
        );
    }
    // A rebuild without the fix is refused the same way (after taking the write lock, which
    // records its pid: the one file it may touch); with the fix, the library is mended.
    let without_lock = |lib: &Path| {
        let mut files = snapshot(lib);
        files.remove("lock");
        files
    };
    let before = without_lock(&lib);
    let o = run(&lib, &[os("index"), os("rebuild")]);
    assert_refused(&o, &["manifest.json", "--ef-search N"]);
    assert_eq!(without_lock(&lib), before);
    let o = run(
        &lib,
        &[os("index"), os("rebuild"), os("--ef-search"), os("64")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ef_search=64"), "{}", stdout(&o));
    let o = run(&lib, &[os("similar"), os(DMD), os("-k"), os("3")]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn item7_every_numeric_option_is_bounded_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    // `--threads 100000` once never finished: it must be refused, and at once.
    let started = Instant::now();
    let mut child = cmd(&lib, &[os("--threads"), os("100000"), os("info")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("--threads 100000 ran for a minute instead of being refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_refused(
        &child.wait_with_output().unwrap(),
        &["--threads", "at most", "logical cores"],
    );
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--threads", "0", "info"],
            vec!["--threads must be at least 1"],
        ),
        // 0 once became 1 without a word.
        (
            vec!["--batch-size", "0", "info"],
            vec!["--batch-size must be at least 1", "1024"],
        ),
        (
            vec!["--batch-size", "100000", "info"],
            vec!["--batch-size", "at most 1024"],
        ),
        (
            vec!["similar", DMD, "-k", "1000000"],
            vec!["-k must be at least 1 and at most 10000"],
        ),
        (
            vec!["query", "x", "--diversity", "NaN"],
            vec!["--diversity must be between 0 and 1"],
        ),
        (
            vec!["bench", "--limit", "100000000"],
            vec!["--limit", "at most 100000"],
        ),
        (
            vec!["bench", "--limit", "0"],
            vec!["--limit must be at least 1"],
        ),
        (
            vec!["bench", "--batch-sizes", "1,100000"],
            vec!["--batch-sizes", "100000"],
        ),
        (
            vec!["bench", "--batch-sizes", "0"],
            vec!["--batch-sizes", "at least 1"],
        ),
        (
            vec!["bench", "--warmup", "100000"],
            vec!["--warmup must be at most 100"],
        ),
        (
            vec!["bench", "--repeat", "0"],
            vec!["--repeat must be at least 1"],
        ),
        (
            vec!["bench", "--repeat", "100000"],
            vec!["--repeat", "at most 100"],
        ),
        (
            vec!["bench", "--agreement-texts", "0"],
            vec!["--agreement-texts", "at least 1"],
        ),
        (
            vec!["bench", "--agreement-texts", "10000000"],
            vec!["--agreement-texts", "at most 10000"],
        ),
    ];
    for (args, needles) in cases {
        let args: Vec<&OsStr> = args.iter().map(os).collect();
        let err = refused(&lib, &args, &needles);
        // Each message gives the reason for its bound after the value.
        assert!(err.contains("got") && err.contains(": "), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Item 8: terminal escape sequences

/// Bytes that must never reach a terminal from a file: ESC (colours, titles, cursor), BEL
/// (ends an OSC sequence), the C1 CSI, and a right-to-left override.
const CONTROLS: [&str; 4] = ["\u{1b}", "\u{7}", "\u{9b}", "\u{202e}"];

fn assert_no_controls(text: &str, what: &str) {
    for c in CONTROLS {
        assert!(!text.contains(c), "{what} holds {c:?}: {text:?}");
    }
}

#[test]
fn item8_titles_with_escape_sequences_reach_the_terminal_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let red = "Red \u{1b}[31mAlert\u{1b}[0m: Diffusion Models Reconsidered";
    let osc = "Retitled \u{1b}]0;pwned\u{7} Terminals for Vision Transformers";
    let bidi = "Bidi \u{202e}desrever\u{202c} and \u{9b}31m C1 Controls in Sparse Attention";
    let abs = |topic: &str| {
        format!(
            "We study {topic} with a new method and report consistent gains on standard \
             benchmarks across many settings, with ablations."
        )
    };
    let papers = [
        (red, abs("diffusion models")),
        (osc, abs("vision transformers")),
        (bidi, abs("sparse attention")),
    ];
    let digest: Vec<Value> = papers
        .iter()
        .map(|(t, a)| serde_json::json!({"title": t, "abstract": a, "date": "\u{1b}[2J2026-03-01"}))
        .collect();
    let digest = write(
        &tmp.path().join("evil.json"),
        serde_json::to_vec(&digest).unwrap(),
    );
    let o = run(&lib, &[os("ingest"), digest.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The bad dates' warnings quote them: escaped too.
    assert_no_controls(&stdout(&o), "ingest report");
    assert!(stdout(&o).contains("\\u{1b}[2J"), "{}", stdout(&o));

    let outputs = [
        vec!["query", "diffusion models", "-k", "3"],
        vec![
            "query",
            "vision transformers",
            "-k",
            "3",
            "--format",
            "markdown",
        ],
        vec!["similar", "Red", "-k", "2", "--format", "markdown"],
        vec!["recommend", "--like", "Retitled", "-k", "2"],
        vec!["info"],
    ];
    for args in outputs {
        let o = run(&lib, &args.iter().map(os).collect::<Vec<_>>());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_no_controls(&stdout(&o), &format!("{args:?}"));
        assert!(
            args[0] == "info" || stdout(&o).contains("\\u{1b}"),
            "{args:?}: {}",
            stdout(&o)
        );
    }
    let o = run(
        &lib,
        &[os("query"), os("sparse attention"), os("-k"), os("3")],
    );
    assert!(
        stdout(&o).contains("Bidi \\u{202e}desrever\\u{202c}"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("\\u{9b}31m"), "{}", stdout(&o));

    // An error that quotes titles (the closest to a reference that matches none).
    let o = run(
        &lib,
        &[
            os("similar"),
            os("Retitled Terminals for Vision Transfomers"),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_no_controls(&stderr(&o), "error");

    // JSON stays exact: the title as the digest gave it.
    let o = run(
        &lib,
        &[
            os("query"),
            os("diffusion models"),
            os("-k"),
            os("3"),
            os("--format"),
            os("json"),
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let titles = common::titles(&v);
    assert!(titles.iter().any(|t| t == red), "{titles:?}");
}

// ---------------------------------------------------------------------------------------------
// Item 10: the smaller misreadings

#[test]
fn item10_min_score_that_is_not_a_score_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    for value in ["NaN", "inf", "-inf", "1.5", "-3"] {
        refused(
            &lib,
            &[os("similar"), os(DMD), os(&format!("--min-score={value}"))],
            &[
                "--min-score must be a number between -1 and 1",
                "scores are",
            ],
        );
    }
    let o = run(&lib, &[os("similar"), os(DMD), os("--min-score=-1")]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn item10_a_lone_cr_digest_reads_like_its_lf_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let lf = std::fs::read_to_string(crate::reliability::day("03-01")).unwrap();
    let cr = write(
        &tmp.path().join("mac_2026-03-01.txt"),
        lf.replace('\n', "\r"),
    );
    let lib = tmp.path().join("lib");
    let o = cmd(
        &lib,
        &[os("ingest"), cr.as_os_str(), os("--format"), os("json")],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let lf_papers = papersim::digest::parse_bytes("x.txt", lf.as_bytes(), &Default::default())
        .unwrap()
        .papers
        .len();
    assert_eq!(report["read"], lf_papers);
    assert_eq!(report["added"], lf_papers);
    assert_eq!(report["skipped"], serde_json::json!([]));
}

#[test]
fn item10_a_null_abstract_is_called_null() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let digest = write(
        &tmp.path().join("null.json"),
        r#"[{"title": "A Paper Whose Abstract Is Null", "abstract": null}]"#,
    );
    let err = refused(
        &lib,
        &[os("ingest"), digest.as_os_str()],
        &["null.json:1", "`abstract` is null"],
    );
    assert!(!err.contains("missing"), "{err}");
}

#[test]
fn item10_an_invalid_date_is_a_warning_not_a_skipped_paper() {
    let tmp = tempfile::tempdir().unwrap();
    let all = std::fs::read_to_string(common::fixture("digests/arxiv-cs-30.jsonl")).unwrap();
    let mut lines: Vec<Value> = all
        .lines()
        .take(2)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[1]["date"] = Value::from("yesterday");
    let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    let digest = write(&tmp.path().join("dated.jsonl"), text);
    let lib = tmp.path().join("lib");
    let o = run(
        &lib,
        &[os("ingest"), digest.as_os_str(), os("--format"), os("json")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (report["read"].as_u64(), report["added"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(report["skipped"], serde_json::json!([]));
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(warnings[0].as_str().unwrap().contains("date `yesterday`"));

    // The table says the same: nothing skipped, one warning.
    let lib2 = tmp.path().join("lib2");
    let o = run(&lib2, &[os("ingest"), digest.as_os_str()]);
    let out = stdout(&o);
    assert!(
        out.contains("2 added") && out.contains("0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("warning: ") && out.contains("yesterday"),
        "{out}"
    );
    assert!(!out.contains("skipped: "), "{out}");
}

#[test]
fn item10_caused_by_lines_only_add_to_the_message() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.txt");
    let o = papersim(&[os("embed"), missing.as_os_str()]);
    let err = assert_refused(&o, &["missing.txt", "No such file"]);
    let first = err.lines().next().unwrap();
    for cause in err.lines().filter_map(|l| l.strip_prefix("  caused by: ")) {
        assert!(!first.contains(cause), "repeats the message: {err}");
    }
    // A cause that says something new is still shown.
    let digest = small_digest(tmp.path(), "d.jsonl", 1);
    let lib = tmp.path().join("lib");
    let o = run(
        &lib,
        &[os("ingest"), digest.as_os_str(), os("--date"), os("March")],
    );
    let err = assert_refused(&o, &["--date `March` is not YYYY-MM-DD"]);
    assert!(err.contains("\n  caused by: "), "{err}");
    assert!(snapshot(tmp.path()).keys().all(|k| !k.starts_with("lib/")));
}

/// The same rule as `embed -o` for the files `bench` writes where the user says
/// (`--json`, `--plot`): a new file or a regular file is written, a symlink is never followed
/// nor replaced, a FIFO never opened.
#[test]
fn item3_bench_reports_never_follow_a_symlink_or_replace_a_fifo() {
    common::embedder();
    let tmp = tempfile::tempdir().unwrap();
    let saved = tmp.path().join("report.json");
    let o = bin()
        .args(["bench", "--devices", "cpu", "--dtypes", "f32"])
        .args([
            "--batch-sizes",
            "2",
            "--limit",
            "3",
            "--warmup",
            "0",
            "--quiet",
            "--json",
        ])
        .arg(&saved)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert!(report.is_object());

    let victim = write(&tmp.path().join("victim.txt"), "precious");
    let link = tmp.path().join("link.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let fifo = tmp.path().join("fifo.svg");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (flag, target, kind) in [
        ("--json", &link, "symbolic link"),
        ("--plot", &link, "symbolic link"),
        ("--json", &fifo, "FIFO"),
    ] {
        let o = bin()
            .args(["bench", "--quiet", "--report"])
            .arg(&saved)
            .arg(flag)
            .arg(target)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{flag} {}: {err}",
            target.display()
        );
        assert!(
            err.contains(kind) && err.contains(target.to_str().unwrap()),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // A regular file is replaced, and no temporary file is left beside it.
    let o = bin()
        .args(["bench", "--quiet", "--report"])
        .arg(&saved)
        .arg("--json")
        .arg(&saved)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}
