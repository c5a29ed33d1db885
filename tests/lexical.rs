//! The lexical (BM25) index in the library and the `--mode` ranking modes, with the real model
//! and the real binary: exact terms, incremental ingest, old libraries, damaged files.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::{copy_dir, ingest, json, run_in, seed_library, stderr, titles, CODERL, DMD};

use papersim::digest::{self, ParseOptions};
use papersim::library::Library;
use papersim::rank::RankOptions;
use papersim::rank::{self, Retrieval};
use serde_json::Value;

const ITERTL: &str = "ITERTL: An Iterative Framework for Fine-tuning LLMs for RTL Code Generation";

#[test]
fn a_rare_exact_term_finds_its_paper_first_in_lexical_and_hybrid_modes() {
    let lib = seed_library();
    for query in ["RTL", "ITERTL", "fine-tuning LLMs for RTL"] {
        for mode in [&["--mode", "lexical"][..], &["--mode", "hybrid"], &[]] {
            let mut args = vec!["query", query, "-k", "3"];
            args.extend(mode);
            let v = json(lib, &args);
            assert_eq!(titles(&v)[0], ITERTL, "{args:?}");
        }
    }
    // Lexical scores are shares of the query's own score: the match scores about 1.
    let v = json(lib, &["query", "RTL", "--mode", "lexical"]);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "only one paper mentions RTL");
    assert!(results[0]["score"].as_f64().unwrap() > 0.5);
}

#[test]
fn every_command_takes_every_mode() {
    let lib = seed_library();
    let expected = [
        "Multi-student Diffusion Distillation for Better One-step Generators",
        "SCott: Accelerating Diffusion Models with Stochastic Consistency Distillation",
        "Distribution Backtracking Builds A Faster Convergence Trajectory for One-step Diffusion Distillation",
        "MLCM: Multistep Consistency Distillation of Latent Diffusion Model",
        "Improved Techniques for Training Consistency Models",
    ];
    let digest = common::fixture("digests/hf/hf_2026-03-02.txt");
    for mode in ["dense", "lexical", "hybrid"] {
        let top = titles(&json(lib, &["similar", DMD, "-k", "5", "--mode", mode]));
        let hits = top
            .iter()
            .filter(|t| expected.contains(&t.as_str()))
            .count();
        assert!(hits >= 3, "{mode}: {hits} of the expected in {top:?}");
        assert!(!top.iter().any(|t| t == DMD), "{mode}: the seed itself");

        let v = json(
            lib,
            &[
                "query",
                "speculative decoding to speed up LLM inference",
                "--mode",
                mode,
            ],
        );
        assert_eq!(
            titles(&v)[0],
            "Towards Optimal Multi-draft Speculative Decoding",
            "{mode}"
        );

        let v = json(lib, &["recommend", "--like", DMD, CODERL, "--mode", mode]);
        let top = titles(&v);
        assert_eq!(top.len(), 10, "{mode}");
        let diffusion = top
            .iter()
            .filter(|t| t.contains("Diffusion") || t.contains("Consistency"))
            .count();
        let code = top.iter().filter(|t| t.contains("Code")).count();
        assert!(diffusion >= 2 && code >= 2, "{mode}: {top:?}");
        for r in v["results"].as_array().unwrap() {
            let closest = r["closest_like"]["title"].as_str().unwrap();
            assert!(closest == DMD || closest == CODERL, "{mode}");
        }
        let scores: Vec<f64> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["score"].as_f64().unwrap())
            .collect();
        assert!(scores.iter().all(|s| s.is_finite()));

        let v = json(
            lib,
            &[
                "triage",
                digest.to_str().unwrap(),
                "--like",
                DMD,
                CODERL,
                "-k",
                "5",
                "--mode",
                mode,
                // The shared seed library stays as it is: triage marks what it shows as seen.
                "--no-mark",
            ],
        );
        assert_eq!(v["results"].as_array().unwrap().len(), 5, "{mode}");
    }
    // A disliked paper's lexical neighbours lose score in lexical mode too.
    let scott = "SCott: Accelerating Diffusion Models with Stochastic Consistency Distillation";
    let mlcm = "MLCM: Multistep Consistency Distillation of Latent Diffusion Model";
    let score_of = |v: &Value, title: &str| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["title"] == title)
            .map(|r| r["score"].as_f64().unwrap())
    };
    let args = ["recommend", "--like", DMD, "-k", "78", "--mode", "lexical"];
    let before = json(lib, &args);
    let mut with_unlike = args.to_vec();
    with_unlike.extend(["--unlike", scott]);
    let after = json(lib, &with_unlike);
    assert!(score_of(&after, mlcm).unwrap() < score_of(&before, mlcm).unwrap());
    assert!(score_of(&after, scott).is_none());
}

#[test]
fn a_lexical_query_of_unknown_or_common_words_is_a_clear_error() {
    let o = run_in(
        seed_library(),
        &["query", "the of and", "--mode", "lexical"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no word of"), "{}", stderr(&o));
    let o = run_in(seed_library(), &["query", "x", "--mode", "sparse"]);
    assert_eq!(o.status.code(), Some(2), "clap rejects an unknown mode");
}

fn lexical_top(lib: &Library, row: usize) -> Vec<(String, f32)> {
    let lex = lib.lexical().unwrap();
    lex.search(&lex.query(&lib.lexical_text(row).unwrap()), 10)
        .unwrap()
        .into_iter()
        .map(|h| (lib.papers().unwrap()[h.row].id.clone(), h.score))
        .collect()
}

fn lexical_file(root: &Path) -> PathBuf {
    let m: Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    root.join(m["files"]["lexical"].as_str().unwrap())
}

/// Four daily digests, ingested one at a time and in one go (built once: embedding is the
/// expensive part).
fn two_libraries() -> &'static (tempfile::TempDir, PathBuf, PathBuf) {
    static LIBS: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    LIBS.get_or_init(|| {
        let digests: Vec<digest::Digest> = [
            "hf_2026-03-01.txt",
            "hf_2026-03-02.txt",
            "hf_2026-03-03.txt",
            "hf_2026-03-04.txt",
        ]
        .iter()
        .flat_map(|d| {
            digest::read_path(
                &common::fixture(&format!("digests/hf/{d}")),
                &ParseOptions::default(),
            )
            .unwrap()
        })
        .collect();
        let tmp = tempfile::tempdir().unwrap();
        let inc = tmp.path().join("incremental");
        for d in &digests {
            ingest(&inc, std::slice::from_ref(d));
        }
        let once = tmp.path().join("together");
        ingest(&once, &digests);
        (tmp, inc, once)
    })
}

#[test]
fn incremental_ingest_gives_the_same_lexical_results_as_one_go() {
    let (_, inc_dir, once_dir) = two_libraries();
    let inc = Library::open(inc_dir).unwrap();
    let once = Library::open(once_dir).unwrap();
    assert_eq!(inc.len(), once.len());
    assert!(inc.len() > 20);
    assert_eq!(inc.manifest().generation, 4, "one generation per digest");
    assert_eq!(inc.lexical().unwrap().len(), inc.len());
    for row in 0..once.len() {
        let id = &once.papers().unwrap()[row].id;
        let inc_row = inc.row_of_id(id).unwrap().unwrap();
        assert_eq!(lexical_top(&inc, inc_row), lexical_top(&once, row), "{id}");
        assert_eq!(
            lexical_top(&once, row)[0].0,
            *id,
            "a paper's best match is itself"
        );
    }
    // Papers enter in the same order either way, so the files are identical.
    assert_eq!(
        std::fs::read(lexical_file(inc_dir)).unwrap(),
        std::fs::read(lexical_file(once_dir)).unwrap()
    );
    // Earlier generations' files are cleaned up like the others.
    let stale: Vec<String> = std::fs::read_dir(inc_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("lexical."))
        .collect();
    assert!(stale.len() <= 2, "{stale:?}");
}

#[test]
fn a_damaged_lexical_file_is_a_clear_error_and_index_rebuild_repairs_it() {
    let (tmp, _, once_dir) = two_libraries();
    let root = tmp.path().join("damaged");
    copy_dir(once_dir, &root);
    let file = lexical_file(&root);
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let original = std::fs::read(&file).unwrap();
    let good = {
        let lib = Library::open(&root).unwrap();
        lexical_top(&lib, 3)
    };

    for damaged in [
        original[..original.len() / 2].to_vec(),
        {
            let mut b = original.clone();
            b[original.len() / 3] ^= 0x40;
            b
        },
        b"not an index".to_vec(),
    ] {
        std::fs::write(&file, &damaged).unwrap();
        // Dense search never reads the file; lexical use names it.
        let lib = Library::open(&root).unwrap();
        let msg = lib.lexical().err().unwrap().to_string();
        assert!(
            msg.contains(&name) && msg.contains("index rebuild"),
            "{msg}"
        );
        let o = run_in(&root, &["query", "diffusion", "--mode", "lexical"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(&name), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }

    // A lexical file that disagrees with the papers is refused too.
    let other = papersim::index::lexical::LexicalIndex::build(["just one paper about diffusion"]);
    std::fs::write(&file, other.to_bytes().unwrap()).unwrap();
    let msg = Library::open(&root)
        .unwrap()
        .lexical()
        .err()
        .unwrap()
        .to_string();
    // The manifest's checksum catches it first (it was not the file papersim wrote), and
    // says how to mend it.
    assert!(
        msg.contains("truncated or replaced") && msg.contains("papersim index rebuild"),
        "{msg}"
    );

    let o = run_in(&root, &["index", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lib = Library::open(&root).unwrap();
    assert_eq!(lexical_top(&lib, 3), good);
}

#[test]
fn a_library_without_a_lexical_file_builds_it_from_its_papers() {
    let (tmp, _, once_dir) = two_libraries();
    let root = tmp.path().join("old");
    copy_dir(once_dir, &root);
    let good = lexical_top(&Library::open(&root).unwrap(), 0);
    // What papersim wrote before it had a lexical index.
    let file = lexical_file(&root);
    std::fs::remove_file(&file).unwrap();
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    m["files"].as_object_mut().unwrap().remove("lexical");
    std::fs::write(root.join("manifest.json"), m.to_string()).unwrap();

    let lib = Library::open(&root).unwrap();
    assert_eq!(lexical_top(&lib, 0), good);
    let ranked = rank::similar(&lib, 0, &RankOptions::default(), Retrieval::Lexical).unwrap();
    assert_eq!(ranked.len(), 10);
    drop(lib);

    // The next write adds the file.
    let digest = digest::read_path(
        &common::fixture("digests/hf/hf_2026-03-05.txt"),
        &ParseOptions::default(),
    )
    .unwrap();
    ingest(&root, &digest);
    let lib = Library::open(&root).unwrap();
    assert!(lexical_file(&root).is_file());
    assert_eq!(lib.lexical().unwrap().len(), lib.len());
}
