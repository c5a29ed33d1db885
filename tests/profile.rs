//! The reader's stored profile (issue #14), through the real binary on real digests: like,
//! dislike, forget and seen persist across processes, re-ingests and index rebuilds;
//! `recommend` and `triage` use the stored profile (one interest per tag); `triage` hides what
//! it showed; `--half-life`, `--must`, `--exclude` and `--category` change results as
//! documented; `profile eval` beats a random ranking; SIGKILLs during feedback writes lose
//! nothing acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use papersim::index::lexical::{paper_text, tokens};
use papersim::library::Library;
use serde_json::Value;

use crate::common::{self, result_ids, stderr, CODERL, DMD};
use crate::reliability::{cmd, day, library_copy, os, refused, run, snapshot, write};

/// `papersim --library LIB --quiet ARGS...`, which must succeed; its stdout.
fn ok(lib: &Path, args: &[&str]) -> String {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(os).collect();
    let o = run(lib, &args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `ARGS... --format json`, parsed.
fn json(lib: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&ok(lib, &all)).unwrap()
}

/// The stored profile: tag → liked ids, and the disliked ids.
fn profile(lib: &Path) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let v = json(lib, &["profile"]);
    let ids = |a: &Value| -> Vec<String> {
        a.as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let likes = v["likes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, a)| (t.clone(), ids(a)))
        .collect();
    (likes, ids(&v["dislikes"]))
}

const DISTILLATION: [&str; 6] = [
    DMD,
    "Multi-student Diffusion Distillation for Better One-step Generators",
    "SCott: Accelerating Diffusion Models with Stochastic Consistency Distillation",
    "MLCM: Multistep Consistency Distillation of Latent Diffusion Model",
    "Distribution Backtracking Builds A Faster Convergence Trajectory for One-step Diffusion Distillation",
    "Improved Techniques for Training Consistency Models",
];
const CODE: [&str; 3] = [
    CODERL,
    "ITERTL: An Iterative Framework for Fine-tuning LLMs for RTL Code Generation",
    "Training LLMs to Better Self-Debug and Explain Code",
];

fn id_of(lib: &Path, title: &str) -> String {
    let l = Library::open_for_reading(lib).unwrap();
    let row = l.resolve(title).unwrap();
    let id = l.paper(row).unwrap().id.clone();
    id
}

#[test]
fn profile_feedback_persists_across_processes_reingests_and_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    ok(
        &lib,
        &[
            "like",
            DISTILLATION[0],
            DISTILLATION[1],
            "--tag",
            "distillation",
        ],
    );
    ok(&lib, &["like", CODE[0], CODE[1], "--tag", "code"]);
    ok(&lib, &["dislike", "Qwen2.5 Technical Report"]);
    ok(&lib, &["seen", "Demystifying CLIP Data"]);
    ok(&lib, &["forget", CODE[1]]);
    let expected = (
        BTreeMap::from([
            ("code".to_string(), vec![id_of(&lib, CODE[0])]),
            (
                "distillation".to_string(),
                vec![id_of(&lib, DISTILLATION[0]), id_of(&lib, DISTILLATION[1])],
            ),
        ]),
        vec![id_of(&lib, "Qwen2.5 Technical Report")],
    );
    assert_eq!(profile(&lib), expected);
    let text = ok(&lib, &["profile"]);
    assert!(
        text.contains("like, tag distillation (2)") && text.contains("dislike (1)"),
        "{text}"
    );
    // Dated: each line starts with the day it was said.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(text.contains(&format!("  {today}  ")), "{text}");
    let seen = json(&lib, &["profile"])["seen"].as_u64().unwrap();
    assert_eq!(seen, 5, "4 liked or disliked (one forgotten) and 1 seen");

    // Re-ingests (segments, then a full generation) and a rebuild leave it as it was.
    let before_recommend = result_ids(&json(&lib, &["recommend", "-k", "5"]));
    for d in ["03-01", "03-02", "03-03"] {
        ok(&lib, &["ingest", day(d).to_str().unwrap()]);
    }
    ok(&lib, &["index", "rebuild"]);
    assert_eq!(profile(&lib), expected);
    let v = json(&lib, &["recommend", "-k", "5"]);
    assert_eq!(v["query"]["profile"]["from"], "stored");
    let likes: BTreeSet<String> = v["query"]["like"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert_eq!(likes, expected.0.values().flatten().cloned().collect());
    assert_eq!(v["query"]["unlike"][0], expected.1[0].as_str());
    assert!(!before_recommend.is_empty());
}

#[test]
fn profile_tag_narrows_recommendations_to_that_interest() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    ok(
        &lib,
        &[
            "like",
            DISTILLATION[0],
            DISTILLATION[1],
            "--tag",
            "distillation",
        ],
    );
    ok(&lib, &["like", CODE[0], CODE[1], "--tag", "code"]);
    let closest = |v: &Value| -> BTreeSet<String> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["closest_like"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let code: BTreeSet<String> = CODE[..2].iter().map(|t| id_of(&lib, t)).collect();
    let distillation: BTreeSet<String> = DISTILLATION[..2].iter().map(|t| id_of(&lib, t)).collect();
    let all = json(&lib, &["recommend", "-k", "6"]);
    let both = closest(&all);
    assert!(
        !both.is_disjoint(&code) && !both.is_disjoint(&distillation),
        "{both:?}"
    );
    // One interest per tag: the round-robin alternates the tags, not the liked papers.
    let tags_in_order: Vec<bool> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| code.contains(r["closest_like"]["id"].as_str().unwrap()))
        .collect();
    assert!(
        tags_in_order.windows(2).all(|w| w[0] != w[1]),
        "tags alternate: {tags_in_order:?}"
    );
    let only_code = json(&lib, &["recommend", "-k", "6", "--tag", "code"]);
    assert!(closest(&only_code).is_subset(&code), "{only_code}");
    assert_eq!(
        only_code["query"]["profile"]["tags"],
        serde_json::json!(["code"])
    );
    let titles = common::titles(&only_code);
    assert!(
        titles.iter().any(|t| t.contains("Self-Debug")),
        "{titles:?}"
    );
    assert!(
        !titles.iter().any(|t| t.contains("Distillation")),
        "{titles:?}"
    );
    // Explicit likes override the stored profile.
    let flags = json(&lib, &["recommend", "-k", "3", "--like", CODE[2]]);
    assert_eq!(flags["query"]["profile"]["from"], "flags");
    assert_eq!(
        flags["query"]["like"],
        serde_json::json!([id_of(&lib, CODE[2])])
    );
    refused(
        &lib,
        &[os("recommend"), os("--tag"), os("nope")],
        &["no liked papers under tag `nope`", "code, distillation"],
    );
    refused(
        &lib,
        &[
            os("recommend"),
            os("--tag"),
            os("code"),
            os("--like"),
            os(DMD),
        ],
        &["--tag selects stored likes"],
    );
}

#[test]
fn profile_triage_twice_shows_nothing_the_second_time_unless_include_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    ok(&lib, &["like", DMD, CODERL]);
    let digest = day("03-04");
    let d = digest.to_str().unwrap();
    let first = json(&lib, &["triage", d, "-k", "50"]);
    let shown = result_ids(&first);
    assert_eq!(
        shown.len(),
        first["query"]["papers"].as_u64().unwrap() as usize
    );
    assert!(shown.len() >= 5);
    let second = json(&lib, &["triage", d, "-k", "50"]);
    assert!(result_ids(&second).is_empty(), "{second}");
    assert_eq!(
        second["query"]["hidden_as_seen"].as_u64(),
        Some(shown.len() as u64)
    );
    let again = json(&lib, &["triage", d, "-k", "50", "--include-seen"]);
    assert_eq!(result_ids(&again).len(), shown.len());

    // --no-mark: shown, not marked; and only the k shown are marked.
    let lib2 = library_copy(&tmp.path().join("second"));
    ok(&lib2, &["like", DMD, CODERL]);
    let before = snapshot(&lib2);
    let top2 = result_ids(&json(&lib2, &["triage", d, "-k", "2", "--no-mark"]));
    assert_eq!(snapshot(&lib2), before, "--no-mark writes nothing");
    assert_eq!(result_ids(&json(&lib2, &["triage", d, "-k", "2"])), top2);
    let rest = result_ids(&json(&lib2, &["triage", d, "-k", "50"]));
    assert_eq!(rest.len(), shown.len() - 2);
    assert!(rest.iter().all(|id| !top2.contains(id)));
    // `seen` hides a paper from triage too, by id or by title.
    let lib3 = library_copy(&tmp.path().join("third"));
    ok(&lib3, &["like", DMD]);
    ok(&lib3, &["ingest", d]);
    let first_of_day = &shown[0];
    ok(&lib3, &["seen", first_of_day]);
    let v = json(&lib3, &["triage", d, "-k", "50"]);
    assert!(!result_ids(&v).contains(first_of_day));
    assert_eq!(v["query"]["hidden_as_seen"], 1);
}

#[test]
fn profile_bad_feedback_commands_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    ok(&lib, &["like", DMD]);
    // One unknown paper among known ones: nothing written.
    refused(
        &lib,
        &[os("like"), os(CODERL), os("no such paper at all")],
        &["no paper matches `no such paper at all`"],
    );
    refused(
        &lib,
        &[os("like"), os(CODERL), os("--tag"), os("")],
        &["tag `` is empty"],
    );
    let long = "x".repeat(65);
    refused(
        &lib,
        &[os("like"), os(CODERL), os("--tag"), os(&long)],
        &["longer than 64"],
    );
    refused(
        &lib,
        &[os("like"), os(CODERL), os("--tag"), os("a\x1bb")],
        &["control character"],
    );
    // A line edited into garbage in the middle of the log: an error naming file and line.
    let log = lib.join("feedback.jsonl");
    let good = std::fs::read(&log).unwrap();
    let mut bad = b"{not a record}\n".to_vec();
    bad.extend_from_slice(&good);
    write(&log, &bad);
    refused(
        &lib,
        &[os("profile")],
        &["feedback.jsonl", "line 1 is not a feedback record"],
    );
    refused(&lib, &[os("recommend")], &["feedback.jsonl", "line 1"]);
    write(&log, &good);
    // A symlink planted at the log's name is never written through.
    let target = write(&tmp.path().join("elsewhere.txt"), "mine\n");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&target, &log).unwrap();
    refused(
        &lib,
        &[os("like"), os(CODERL)],
        &["feedback.jsonl", "symbolic link"],
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine\n");
}

#[test]
fn profile_a_torn_last_line_is_ignored_and_cut_by_the_next_write() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    ok(&lib, &["like", DMD]);
    let log = lib.join("feedback.jsonl");
    // What a writer killed inside its write() leaves: a line without its newline.
    let mut bytes = std::fs::read(&log).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(br#"{"at":"2026-12-04T00:00:00Z","op":"like","id":"t:3203"#);
    write(&log, &bytes);
    assert_eq!(profile(&lib).0["default"], [id_of(&lib, DMD)]);
    ok(&lib, &["like", CODERL]);
    let after = std::fs::read(&log).unwrap();
    assert_eq!(&after[..whole], &bytes[..whole]);
    assert!(after.ends_with(b"\n"));
    assert_eq!(
        profile(&lib).0["default"],
        [id_of(&lib, DMD), id_of(&lib, CODERL)]
    );
    assert_eq!(String::from_utf8(after).unwrap().lines().count(), 2);
}

/// SIGKILLs at random points of feedback writes: every write a command acknowledged (exit 0)
/// is there afterwards, a killed one is there whole, in part (whole records) or not at all,
/// and the log always reads.
#[test]
fn profile_sigkills_during_feedback_writes_lose_nothing_acknowledged() {
    const KILLS: usize = 40;
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let ids: Vec<String> = Library::open_for_reading(&lib)
        .unwrap()
        .papers()
        .unwrap()
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let mut rng = 0x5eed_f00d_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    // Each command likes a batch of papers under its own tag: tag → the batch.
    let mut acknowledged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut killed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut typical = Duration::from_millis(50);
    let (mut kills, mut landed_after_write, mut runs) = (0, 0, 0);
    let started = Instant::now();
    while kills < KILLS {
        runs += 1;
        let tag = format!("k{runs}");
        let start = next(ids.len() as u64) as usize;
        let batch: Vec<String> = ids.iter().cycle().skip(start).take(20).cloned().collect();
        let mut c = cmd(&lib, &[os("like"), os("--tag"), os(&tag)]);
        c.args(&batch)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let t0 = Instant::now();
        let mut child = c.spawn().unwrap();
        let uncut = runs % 4 == 0;
        if !uncut {
            std::thread::sleep(Duration::from_micros(next(typical.as_micros() as u64 + 1)));
        }
        let exited = if uncut {
            Some(child.wait().unwrap())
        } else {
            child.try_wait().unwrap()
        };
        match exited {
            Some(status) => {
                assert!(status.success(), "like failed on its own: {status}");
                typical = (typical * 3 + t0.elapsed()) / 4;
                acknowledged.insert(tag.clone(), batch);
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                killed.insert(tag.clone(), batch);
            }
        }
        // The log reads after every run, killed or not.
        let (likes, _) = profile(&lib);
        let set = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<String>>();
        for (t, batch) in &acknowledged {
            assert_eq!(
                likes.get(t).map(set),
                Some(set(batch)),
                "acknowledged tag {t} lost or changed"
            );
        }
        if let Some(got) = likes.get(&tag) {
            if killed.contains_key(&tag) {
                landed_after_write += 1;
                // Whole records of the batch, nothing else.
                assert!(set(got).is_subset(&set(&killed[&tag])), "{got:?}");
            }
        }
        assert!(likes
            .keys()
            .all(|t| acknowledged.contains_key(t) || killed.contains_key(t)));
    }
    // A write after the kills: the log ends in a whole line and holds every acknowledged write.
    ok(&lib, &["like", DMD, "--tag", "last"]);
    let bytes = std::fs::read(lib.join("feedback.jsonl")).unwrap();
    assert!(bytes.ends_with(b"\n"));
    let (likes, _) = profile(&lib);
    for (t, batch) in &acknowledged {
        let got: BTreeSet<&String> = likes[t].iter().collect();
        assert_eq!(got, batch.iter().collect());
    }
    eprintln!(
        "feedback kill test: {kills} SIGKILLs over {runs} writes ({} acknowledged, {landed_after_write} \
         killed after their write reached the log), 0 acknowledged writes lost, typical write \
         {typical:.1?}, {:.0?} in all",
        acknowledged.len(),
        started.elapsed()
    );
    assert!(acknowledged.len() >= 10);
}

/// A library with dates and categories: 30 arXiv papers (2025-03 .. 2026-06).
fn arxiv_library(tmp: &Path) -> PathBuf {
    let lib = tmp.join("arxiv");
    let digest = common::fixture("digests/arxiv-cs-30.jsonl");
    ok(&lib, &["ingest", digest.to_str().unwrap()]);
    lib
}

fn holds(lib: &Library, id: &str, term: &str) -> bool {
    let row = lib.row_of_id(id).unwrap().unwrap();
    let p = lib.paper(row).unwrap();
    let have: BTreeSet<String> = tokens(&paper_text(&p.title, &p.abstract_text))
        .into_iter()
        .collect();
    tokens(term).iter().all(|t| have.contains(t))
}

#[test]
fn profile_must_exclude_category_and_half_life_change_results_as_documented() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = library_copy(tmp.path());
    let l = Library::open_for_reading(&seed).unwrap();
    let base = result_ids(&json(&seed, &["recommend", "--like", DMD, "-k", "10"]));
    // --must: every result holds the term (each of its words).
    let must = |t: &str| {
        result_ids(&json(
            &seed,
            &["recommend", "--like", DMD, "-k", "10", "--must", t],
        ))
    };
    let one_step = must("one-step");
    assert!(one_step.len() >= 3 && one_step.iter().all(|id| holds(&l, id, "one step")));
    assert!(
        base.iter().any(|id| !holds(&l, id, "one step")),
        "the filter changed the results"
    );
    // Stemmed and case-blind as the index: "Models" and "model" are one term.
    assert_eq!(must("Models"), must("model"));
    // --exclude: none holds it; without it some did.
    let excl = result_ids(&json(
        &seed,
        &[
            "recommend",
            "--like",
            DMD,
            "-k",
            "10",
            "--exclude",
            "Consistency",
        ],
    ));
    assert!(base.iter().any(|id| holds(&l, id, "consistency")));
    assert!(excl.len() == 10 && excl.iter().all(|id| !holds(&l, id, "consistency")));
    // Triage filters the digest's papers the same way.
    let d = day("03-03");
    let t = json(
        &seed,
        &[
            "triage",
            d.to_str().unwrap(),
            "--like",
            DMD,
            "-k",
            "50",
            "--no-mark",
            "--must",
            "reasoning",
        ],
    );
    let all = json(
        &seed,
        &[
            "triage",
            d.to_str().unwrap(),
            "--like",
            DMD,
            "-k",
            "50",
            "--no-mark",
        ],
    );
    assert!(result_ids(&t).len() < result_ids(&all).len() && !result_ids(&t).is_empty());
    // --category where papers have none: an error saying so.
    refused(
        &seed,
        &[
            os("recommend"),
            os("--like"),
            os(DMD),
            os("--category"),
            os("cs.CL"),
        ],
        &["--category: no paper in the library", "lists a category"],
    );

    let lib = arxiv_library(tmp.path());
    let a = Library::open_for_reading(&lib).unwrap();
    let like = "2311.03426"; // GQKVA, cs.LG cs.AI cs.CL cs.CV
    let base = result_ids(&json(&lib, &["recommend", "--like", like, "-k", "10"]));
    let cats = |id: &str| {
        let row = a.row_of_id(id).unwrap().unwrap();
        a.paper(row).unwrap().categories.clone()
    };
    let cl = result_ids(&json(
        &lib,
        &[
            "recommend",
            "--like",
            like,
            "-k",
            "10",
            "--category",
            "cs.CL",
        ],
    ));
    assert!(!cl.is_empty() && cl.iter().all(|id| cats(id).iter().any(|c| c == "cs.CL")));
    assert!(base.iter().any(|id| !cats(id).iter().any(|c| c == "cs.CL")));
    // An archive matches its categories: `eess` keeps eess.IV.
    let eess = result_ids(&json(
        &lib,
        &[
            "recommend",
            "--like",
            like,
            "-k",
            "10",
            "--category",
            "eess",
        ],
    ));
    assert!(
        !eess.is_empty()
            && eess
                .iter()
                .all(|id| cats(id).iter().any(|c| c.starts_with("eess.")))
    );
    // --half-life: a short one brings the newest papers up.
    let date = |id: &str| {
        let row = a.row_of_id(id).unwrap().unwrap();
        a.paper(row).unwrap().date.clone().unwrap()
    };
    let mean_date = |ids: &[String]| -> f64 {
        ids.iter()
            .map(|id| {
                let d = chrono::NaiveDate::parse_from_str(&date(id), "%Y-%m-%d").unwrap();
                d.signed_duration_since(chrono::NaiveDate::default())
                    .num_days() as f64
            })
            .sum::<f64>()
            / ids.len() as f64
    };
    let recent = result_ids(&json(
        &lib,
        &["recommend", "--like", like, "-k", "5", "--half-life", "30"],
    ));
    let plain = &base[..5];
    assert!(
        mean_date(&recent) > mean_date(plain) + 60.0,
        "half-life 30 brings newer papers: {} vs {}",
        mean_date(&recent),
        mean_date(plain)
    );
    assert_ne!(recent, plain);
    // Bounds, each with why.
    for bad in ["0", "0.5", "5000", "NaN"] {
        refused(
            &lib,
            &[
                os("recommend"),
                os("--like"),
                os(like),
                os("--half-life"),
                os(bad),
            ],
            &["--half-life must be between 1 and 3650 days"],
        );
    }
    refused(
        &lib,
        &[
            os("recommend"),
            os("--like"),
            os(like),
            os("--must"),
            os("the 42"),
        ],
        &["--must `the 42` has no word the lexical index holds"],
    );
}

#[test]
fn profile_eval_beats_the_random_ranking_for_distillation_and_code() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let mut args = vec!["like", "--tag", "distillation"];
    args.extend(DISTILLATION);
    ok(&lib, &args);
    let mut args = vec!["like", "--tag", "code-generation"];
    args.extend(CODE);
    ok(&lib, &args);
    let v = json(&lib, &["profile", "eval"]);
    let tags = v["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2);
    for t in tags {
        let r10 = |k: &str| t[k]["recall_at_10"].as_f64().unwrap();
        let candidates = t["candidates"].as_u64().unwrap();
        assert_eq!(
            candidates,
            79 - (t["held_out"].as_u64().unwrap() - 1),
            "{t}"
        );
        assert!(r10("model") > r10("random"), "{t}");
        assert!(
            t["model"]["median_rank"].as_f64() < t["random"]["median_rank"].as_f64(),
            "{t}"
        );
        eprintln!("profile eval: {t}");
    }
    let table = ok(&lib, &["profile", "eval"]);
    assert!(table.contains("recall@10") && table.contains("random") && table.contains("lexical"));
    eprintln!("{table}");
    // A tag of one liked paper cannot be evaluated: the error says what to do.
    ok(
        &lib,
        &["like", "--tag", "lonely", "Qwen2.5 Technical Report"],
    );
    refused(
        &lib,
        &[os("profile"), os("eval"), os("--tag"), os("lonely")],
        &["tag `lonely` has 1 liked paper", "at least two"],
    );
}

/// The seed library plus two arXiv papers: one under its arXiv id, one (without id) whose URL
/// is a DOI. Returns the library and those two papers' titles.
fn import_library(tmp: &Path) -> (PathBuf, String, String) {
    let lib = library_copy(tmp);
    let arxiv = std::fs::read_to_string(common::fixture("digests/arxiv-cs-30.jsonl")).unwrap();
    let papers: Vec<Value> = arxiv
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id = |id: &str| papers.iter().find(|p| p["id"] == id).unwrap().clone();
    let (gqkva, glen) = (by_id("2311.03426"), by_id("2311.03057"));
    let digest = serde_json::json!([
        {"id": "2311.03426", "title": gqkva["title"], "abstract": gqkva["abstract"]},
        {"title": glen["title"], "abstract": glen["abstract"], "url": "https://doi.org/10.1145/3583780.3614988"},
    ]);
    let path = write(&tmp.join("two.json"), digest.to_string());
    ok(&lib, &["ingest", path.to_str().unwrap()]);
    (
        lib,
        gqkva["title"].as_str().unwrap().to_string(),
        glen["title"].as_str().unwrap().to_string(),
    )
}

fn run_import(lib: &Path, file: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec![os("import"), file.as_os_str()];
    args.extend(extra.iter().map(os));
    let o = run(lib, &args);
    assert!(o.status.success(), "import failed: {}", stderr(&o));
    (String::from_utf8_lossy(&o.stdout).to_string(), stderr(&o))
}

#[test]
fn profile_import_bibtex_matches_by_arxiv_id_doi_and_title_adds_abstracts_and_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib, gqkva, glen) = import_library(tmp.path());
    let bib = write(
        &tmp.path().join("refs.bib"),
        r#"% exported from a reference manager
@string{neurips = "Advances in Neural Information Processing Systems"}

@misc{gqkva2023,
  title = {{GQKVA}: a title the library spells differently},
  author = {Javadi, Farnoosh and others},
  eprint = {2311.03426v2},
  archivePrefix = {arXiv},
  year = 2023,
}

@inproceedings{glen,
  title = {Retrieval, by its {DOI}},
  doi = {10.1145/3583780.3614988},
}

@inproceedings{dmd2,
  title = {Improved Distribution Matching Distillation for Fast Image {S}ynthesis},
  booktitle = neurips,
}

@article{accents,
  title = {Caf{\'e} {\"U}ber-Distillation: Teaching One-Step Students with Na{\"i}ve Teachers},
  abstract = {We distill a diffusion model into a one-step generator by matching the teacher's distribution, and show that na\"ive teachers suffice for fast image synthesis.},
  date = {2024-05-23},
}

@article{nowhere,
  title = {A Paper This Library Has Never Seen},
  year = 2020,
}

@article{broken,
  title = {An entry whose braces never close,
  year = 2021,

@article{untitled,
  author = {Nobody, A.},
}
"#,
    );
    let (out, err) = run_import(&lib, &bib, &["--tag", "mine"]);
    assert!(out.contains("3 matched library papers, 1 added"), "{out}");
    // One clear warning per entry left out, naming where it is.
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("papersim: warning:"))
        .collect();
    assert_eq!(warnings.len(), 3, "{err}");
    assert!(
        err.contains("refs.bib:28:") && err.contains("A Paper This Library Has Never Seen"),
        "{err}"
    );
    assert!(
        err.contains("refs.bib:33:") && err.contains("not a well-formed BibTeX entry"),
        "{err}"
    );
    assert!(
        err.contains("refs.bib:37:") && err.contains("has no title"),
        "{err}"
    );
    let l = Library::open_for_reading(&lib).unwrap();
    let added = l
        .rows_of_title("Café Über-Distillation: Teaching One-Step Students with Naïve Teachers")
        .unwrap();
    assert_eq!(added.len(), 1, "the LaTeX accents are decoded");
    let liked: BTreeSet<String> = profile(&lib).0["mine"].iter().cloned().collect();
    let want: BTreeSet<String> = [
        "2311.03426".to_string(),
        id_of(&lib, &glen),
        id_of(&lib, DMD),
        l.paper(added[0]).unwrap().id.clone(),
    ]
    .into();
    assert_eq!(liked, want);
    assert_eq!(id_of(&lib, &gqkva), "2311.03426");
    // Importing again adds nothing and likes the same papers.
    let (out, _) = run_import(&lib, &bib, &["--tag", "mine"]);
    assert!(out.contains("4 matched library papers, 0 added"), "{out}");
    assert_eq!(profile(&lib).0["mine"].len(), 4);
}

#[test]
fn profile_import_csl_json_and_export_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib, _, glen) = import_library(tmp.path());
    let csl = write(
        &tmp.path().join("zotero.json"),
        serde_json::json!([
            {"id": "http://zotero.org/users/1/items/AAAA", "type": "article", "title": "GQKVA (as Zotero has it)",
             "DOI": "10.48550/arXiv.2311.03426", "number": "arXiv:2311.03426"},
            {"id": "b", "type": "paper-conference", "title": CODERL.to_uppercase()},
            {"id": "c", "type": "article-journal", "title": "whatever", "DOI": "https://doi.org/10.1145/3583780.3614988"},
            42,
            {"id": "e", "type": "article", "abstract": "no title here"},
            {"id": "f", "type": "article", "title": "Unknown and Abstract-less"}
        ])
        .to_string(),
    );
    let (out, err) = run_import(&lib, &csl, &[]);
    assert!(
        out.contains("3 matched library papers, 0 added, 1 not imported"),
        "{out}"
    );
    assert!(err.contains("zotero.json: item 4: not an object"), "{err}");
    assert!(err.contains("zotero.json: item 5: has no `title`"), "{err}");
    assert!(
        err.contains("zotero.json: item 6:") && err.contains("no abstract"),
        "{err}"
    );
    let (likes, _) = profile(&lib);
    let got: BTreeSet<String> = likes["default"].iter().cloned().collect();
    let want: BTreeSet<String> = [
        "2311.03426".to_string(),
        id_of(&lib, CODERL),
        id_of(&lib, &glen),
    ]
    .into();
    assert_eq!(got, want);

    // Export, then import into a library that has no profile: the same likes.
    ok(&lib, &["like", DMD, "--tag", "distillation"]);
    let bib = tmp.path().join("liked.bib");
    ok(
        &lib,
        &[
            "profile",
            "export",
            "--format",
            "bibtex",
            "-o",
            bib.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&bib).unwrap();
    assert!(
        text.contains("eprint = {2311.03426}") && text.contains("keywords = {distillation}"),
        "{text}"
    );
    let json_out = ok(
        &lib,
        &[
            "profile",
            "export",
            "--format",
            "json",
            "--tag",
            "distillation",
        ],
    );
    let items: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["title"], DMD);
    assert!(items[0]["abstract"].as_str().unwrap().contains("DMD"));

    let (other, _, _) = import_library(&tmp.path().join("other"));
    let (out, err) = run_import(&other, &bib, &["--tag", "back"]);
    assert!(
        out.contains("4 matched library papers, 0 added"),
        "{out} {err}"
    );
    let back: BTreeSet<String> = profile(&other).0["back"].iter().cloned().collect();
    let all: BTreeSet<String> = profile(&lib).0.values().flatten().cloned().collect();
    assert_eq!(back, all);
}

/// A zotero.sqlite with the tables of Zotero's schema that papersim reads.
fn zotero_db(path: &Path, glen: &str) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE itemTypes (itemTypeID INTEGER PRIMARY KEY, typeName TEXT, templateItemTypeID INT, display INT DEFAULT 1);
         CREATE TABLE items (itemID INTEGER PRIMARY KEY, itemTypeID INT NOT NULL, dateAdded TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, dateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, clientDateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, libraryID INT NOT NULL, key TEXT NOT NULL, version INT NOT NULL DEFAULT 0, synced INT NOT NULL DEFAULT 0, UNIQUE (libraryID, key));
         CREATE TABLE fields (fieldID INTEGER PRIMARY KEY, fieldName TEXT, fieldFormatID INT);
         CREATE TABLE itemDataValues (valueID INTEGER PRIMARY KEY, value UNIQUE);
         CREATE TABLE itemData (itemID INT, fieldID INT, valueID, PRIMARY KEY (itemID, fieldID));
         CREATE TABLE collections (collectionID INTEGER PRIMARY KEY, collectionName TEXT NOT NULL, parentCollectionID INT DEFAULT NULL, clientDateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, libraryID INT NOT NULL, key TEXT NOT NULL, version INT NOT NULL DEFAULT 0, synced INT NOT NULL DEFAULT 0, UNIQUE (libraryID, key));
         CREATE TABLE collectionItems (collectionID INT NOT NULL, itemID INT NOT NULL, orderIndex INT NOT NULL DEFAULT 0, PRIMARY KEY (collectionID, itemID));
         CREATE TABLE deletedItems (itemID INTEGER PRIMARY KEY, dateDeleted DEFAULT CURRENT_TIMESTAMP NOT NULL);
         INSERT INTO itemTypes VALUES (2, 'attachment', NULL, 0), (11, 'journalArticle', NULL, 1), (31, 'preprint', NULL, 1), (28, 'note', NULL, 0);
         INSERT INTO fields VALUES (1, 'title', NULL), (2, 'abstractNote', NULL), (13, 'url', NULL), (14, 'date', NULL), (16, 'extra', NULL), (59, 'DOI', NULL), (123, 'archiveID', NULL);
         INSERT INTO collections (collectionID, collectionName, libraryID, key) VALUES (1, 'transformers', 1, 'C1'), (2, 'code', 1, 'C2');",
    )
    .unwrap();
    let mut value_id = 0;
    let mut item = |id: i64, kind: i64, fields: &[(i64, &str)]| {
        db.execute(
            "INSERT INTO items (itemID, itemTypeID, libraryID, key) VALUES (?1, ?2, 1, ?3)",
            rusqlite::params![id, kind, format!("K{id}")],
        )
        .unwrap();
        for (field, value) in fields {
            value_id += 1;
            db.execute(
                "INSERT INTO itemDataValues VALUES (?1, ?2)",
                rusqlite::params![value_id, value],
            )
            .unwrap();
            db.execute(
                "INSERT INTO itemData VALUES (?1, ?2, ?3)",
                rusqlite::params![id, field, value_id],
            )
            .unwrap();
        }
    };
    item(
        1,
        31,
        &[
            (1, "GQKVA in Zotero"),
            (123, "arXiv:2311.03426"),
            (13, "http://arxiv.org/abs/2311.03426v1"),
        ],
    );
    item(2, 11, &[(1, CODERL), (14, "2022-07-05")]);
    item(3, 11, &[(1, glen), (59, "10.1145/3583780.3614988")]);
    item(4, 2, &[(1, "Full Text PDF")]);
    item(5, 11, &[(1, "Deleted paper, in the trash")]);
    item(6, 11, &[(2, "an abstract without a title")]);
    db.execute_batch(
        "INSERT INTO collectionItems VALUES (1, 1, 0), (2, 2, 0), (1, 3, 1), (2, 3, 2);
         INSERT INTO deletedItems (itemID) VALUES (5);",
    )
    .unwrap();
}

#[test]
fn profile_import_zotero_sqlite_while_zotero_holds_it_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib, _, glen) = import_library(tmp.path());
    let db_path = tmp.path().join("zotero.sqlite");
    zotero_db(&db_path, &glen);
    // Read before the lock is taken: closing any descriptor of the file would release this
    // process's POSIX locks on it.
    let before = std::fs::read(&db_path).unwrap();
    // Zotero, running, holds its database with an exclusive lock.
    let zotero = rusqlite::Connection::open(&db_path).unwrap();
    zotero
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .unwrap();
    let t0 = Instant::now();
    let (out, err) = run_import(&lib, &db_path, &[]);
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(
        out.contains("3 matched library papers, 0 added"),
        "{out} {err}"
    );
    assert!(err.contains("zotero.sqlite: item 6: has no title"), "{err}");
    assert!(!err.contains("Deleted paper") && !out.contains("Full Text PDF"));
    // Each collection is a tag.
    let (likes, _) = profile(&lib);
    assert_eq!(
        likes["transformers"]
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        ["2311.03426".to_string(), id_of(&lib, &glen)].into()
    );
    assert_eq!(
        likes["code"].iter().cloned().collect::<BTreeSet<_>>(),
        [id_of(&lib, CODERL), id_of(&lib, &glen)].into()
    );
    drop(zotero);
    assert!(
        std::fs::read(&db_path).unwrap() == before,
        "the database is only read"
    );
    // Not a Zotero database: a clear error naming it.
    let other = tmp.path().join("other.sqlite");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INT); INSERT INTO t VALUES (1);")
        .unwrap();
    refused(
        &lib,
        &[os("import"), other.as_os_str()],
        &["other.sqlite", "not a Zotero database"],
    );
}
