//! `papersim bench`: the report's schema, honest CUDA rows, and agreement on the CPU.
//! Small runs (a dozen texts): these check what the benchmark reports, not how fast it is.

use crate::common;

use crate::common::papersim;

use papersim::encode::device::{self, DeviceRequest, Precision};
use papersim::encode::speed::{self, BenchConfig, BenchTexts, SCHEMA};
use serde_json::Value;

fn small_config() -> BenchConfig {
    BenchConfig {
        devices: vec![DeviceRequest::Cpu, DeviceRequest::Cuda(0)],
        precisions: vec![Precision::F32, Precision::F16],
        batch_sizes: vec![1, 5],
        warmup: 1,
        repeat: 2,
        agreement_texts: 8,
        ..BenchConfig::default()
    }
}

/// Twelve texts of 5 to 137 words, so that batches really pad.
fn varied_texts() -> BenchTexts {
    let sample = BenchTexts::sample(12).unwrap();
    let varied = sample.distinct[..12]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let words: Vec<&str> = t.split_whitespace().take(5 + i * 12).collect();
            words.join(" ")
        })
        .collect();
    BenchTexts::new("varied".into(), "lines", varied, 12).unwrap()
}

fn run_small() -> Value {
    common::embedder(); // provisions the model once, under its lock
    let texts = varied_texts();
    let report = speed::run(&small_config(), &texts, &papersim::progress::NoProgress).unwrap();
    serde_json::to_value(&report).unwrap()
}

fn run<'a>(report: &'a Value, device: &str, dtype: &str) -> &'a Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device"] == device && r["dtype"] == dtype)
        .unwrap_or_else(|| panic!("no run for {device} {dtype}"))
}

fn number(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

/// Every field a consumer of `--format json` may rely on, with its type.
fn assert_schema(r: &Value) {
    assert_eq!(r["schema"], SCHEMA);
    let m = &r["machine"];
    assert!(m["cpu_model"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(m["cpu_threads"].as_u64().unwrap() >= 1);
    assert!(m["logical_cores"].as_u64().unwrap() >= 1);
    assert!(m["os"].is_string() && m["arch"].is_string());
    assert!(m["gpus"].is_array());
    assert!(m["build"]["papersim_version"].is_string());
    assert!(m["build"]["features"].is_array());
    assert!(["debug", "release"].contains(&m["build"]["profile"].as_str().unwrap()));
    let model = &r["model"];
    assert_eq!(model["id"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(model["dim"], 384);
    assert_eq!(model["max_seq_length"], 256);
    assert!(model["weights_dtype"].is_string());
    let t = &r["texts"];
    assert!(t["distinct"].as_u64().unwrap() >= 1);
    assert!(t["count"].as_u64().unwrap() >= 1);
    assert!(t["source"].is_string());
    assert!(["digest", "lines"].contains(&t["kind"].as_str().unwrap()));
    assert!(number(&t["mean_tokens"], "mean_tokens") > 10.0);
    assert!(t["max_tokens"].as_u64().unwrap() <= 256);
    assert!(t["truncated"].is_u64());
    let s = &r["settings"];
    for key in ["devices", "dtypes", "batch_sizes"] {
        assert!(s[key].is_array(), "settings.{key}");
    }
    for key in ["warmup_batches", "repeat", "agreement_texts"] {
        assert!(s[key].is_u64(), "settings.{key}");
    }
    assert_eq!(s["includes_tokenization"], true);
    assert!(r["reference"].is_string());
    for run in r["runs"].as_array().unwrap() {
        assert!(run["device"].is_string() && run["dtype"].is_string());
        match run["status"].as_str().unwrap() {
            "ok" => {
                assert!(run.get("reason").is_none());
                number(&run["device_init_s"], "device_init_s");
                assert!(number(&run["load_s"], "load_s") > 0.0);
                for key in ["vs_cpu_f32", "batched_vs_single"] {
                    number(&run[key]["mean"], key);
                    number(&run[key]["max"], key);
                    assert!(run[key]["compared"].as_u64().unwrap() > 0);
                }
                let results = run["results"].as_array().unwrap();
                assert_eq!(results.len(), s["batch_sizes"].as_array().unwrap().len());
                for b in results {
                    assert!(b["batch_size"].as_u64().unwrap() >= 1);
                    assert!(b["batches"].as_u64().unwrap() >= 1);
                    assert!(b["texts"].as_u64().unwrap() >= 1);
                    assert!(number(&b["seconds"], "seconds") > 0.0);
                    assert!(number(&b["texts_per_s"], "texts_per_s") > 0.0);
                    assert!(number(&b["real_tokens_per_s"], "tokens/s") > 0.0);
                    let share = number(&b["padded_share"], "padded_share");
                    assert!((0.0..1.0).contains(&share), "padded share {share}");
                    let (p50, p95) = (
                        number(&b["latency_ms"]["p50"], "p50"),
                        number(&b["latency_ms"]["p95"], "p95"),
                    );
                    assert!(0.0 < p50 && p50 <= p95, "p50 {p50} p95 {p95}");
                    number(&b["latency_ms"]["mean"], "mean latency");
                    for key in ["vs_cpu_f32", "batched_vs_single"] {
                        number(&b[key]["mean"], key);
                        number(&b[key]["max"], key);
                    }
                }
            }
            "skipped" | "failed" => {
                assert!(run["reason"].as_str().is_some_and(|s| !s.is_empty()));
                assert!(run["results"].as_array().unwrap().is_empty());
            }
            other => panic!("unknown status {other}"),
        }
    }
}

#[test]
fn report_follows_the_schema_and_cpu_vectors_agree() {
    let r = run_small();
    assert_schema(&r);
    assert_eq!(r["texts"]["count"], 12);
    assert_eq!(r["settings"]["agreement_texts"], 8);

    let cpu = run(&r, "cpu", "f32");
    assert_eq!(cpu["status"], "ok");
    // CPU f32 one at a time is the reference itself.
    assert_eq!(cpu["vs_cpu_f32"]["max"], 0.0);
    let batched = number(&cpu["batched_vs_single"]["max"], "batched max");
    assert!(
        batched <= 1e-5,
        "batched against single on the CPU: {batched}"
    );
    let results = cpu["results"].as_array().unwrap();
    // Batch size 1 has no padding and reproduces the reference exactly.
    assert_eq!(results[0]["batch_size"], 1);
    assert_eq!(results[0]["padded_share"], 0.0);
    assert_eq!(results[0]["batched_vs_single"]["max"], 0.0);
    // 12 texts at batch 5: 3 batches a pass, 2 passes.
    assert_eq!(results[1]["batches"], 3);
    assert_eq!(results[1]["texts"], 24);
    assert!(number(&results[1]["padded_share"], "padding") > 0.0);
    assert!(number(&results[1]["vs_cpu_f32"]["max"], "vs cpu") <= 1e-5);

    // Half precision is for CUDA only: the CPU row says so instead of running f32.
    let half = run(&r, "cpu", "f16");
    assert_eq!(half["status"], "skipped");
    assert!(
        half["reason"].as_str().unwrap().contains("CUDA only"),
        "{half}"
    );
}

#[test]
fn cuda_rows_say_why_they_are_missing() {
    if device::cuda_unavailable_reason(0).is_none() {
        eprintln!("a GPU is present: this test is for machines without one");
        return;
    }
    let r = run_small();
    for dtype in ["f32", "f16"] {
        let row = run(&r, "cuda:0", dtype);
        assert_eq!(row["status"], "skipped", "{row}");
        let reason = row["reason"].as_str().unwrap();
        if !device::cuda_built() {
            assert!(reason.contains("built without CUDA"), "{reason}");
            assert!(reason.contains("--features cuda"), "{reason}");
        }
    }
    assert!(r["machine"]["gpus"].as_array().unwrap().is_empty());
    if !device::cuda_built() {
        assert!(r["machine"]["build"]["features"]
            .as_array()
            .unwrap()
            .is_empty());
    }
}

#[test]
fn auto_is_not_a_benchmark_device() {
    let config = BenchConfig {
        devices: vec![DeviceRequest::Auto],
        ..BenchConfig::default()
    };
    let texts = BenchTexts::sample(2).unwrap();
    let err = speed::run(&config, &texts, &papersim::progress::NoProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("auto"), "{err}");
}

#[test]
fn cli_writes_json_table_svg_and_texts() {
    common::embedder();
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("chart.svg");
    let json = dir.path().join("report.json");
    let saved = dir.path().join("texts.jsonl");
    let out = papersim()
        .args([
            "bench",
            "--devices",
            "cpu,cuda",
            "--dtypes",
            "f32,bf16",
            "--batch-sizes",
            "1,4",
            "--limit",
            "8",
            "--warmup",
            "1",
            "--agreement-texts",
            "4",
            "--quiet",
        ])
        .arg("--plot")
        .arg(&svg)
        .arg("--json")
        .arg(&json)
        .arg("--save-texts")
        .arg(&saved)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The table: a header, the load line, a row per batch size, and the rows that did not run.
    assert!(stdout.contains("texts/s"), "{stdout}");
    assert!(
        stdout.contains("load     cpu f32: device start"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cpu      bf16  skipped: half precision"),
        "{stdout}"
    );
    if device::cuda_unavailable_reason(0).is_some() {
        assert!(stdout.contains("cuda:0   f32   skipped: "), "{stdout}");
    }
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_schema(&report);
    assert_eq!(report["texts"]["count"], 8);
    assert_eq!(report["texts"]["distinct"], 79);
    assert_eq!(report["texts"]["kind"], "digest");

    // A saved report renders again without running: the same JSON comes back.
    let again = papersim()
        .args(["bench", "--format", "json", "--report"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(again.status.success());
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again, report);

    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.contains("<svg"), "not an SVG");
    assert!(chart.contains("cpu f32"), "the legend names the run");
    assert!(chart.contains("batch size"), "the x axis is labelled");

    let lines: Vec<String> = std::fs::read_to_string(&saved)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<String>(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    assert!(lines[0].starts_with("Learning Math Reasoning"));
}

#[test]
fn cli_json_goes_to_stdout_and_bad_flags_fail() {
    common::embedder();
    let out = papersim()
        .args([
            "bench",
            "--devices",
            "cpu",
            "--dtypes",
            "f32",
            "--batch-sizes",
            "2",
            "--limit",
            "3",
            "--warmup",
            "0",
            "--format",
            "json",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema(&report);

    // Nothing can run (half precision on the CPU): the table still says why, and the chart too.
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("none.svg");
    let out = papersim()
        .args([
            "bench",
            "--devices",
            "cpu",
            "--dtypes",
            "f16",
            "--limit",
            "1",
            "--quiet",
        ])
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cpu      f16   skipped"));
    assert!(std::fs::read_to_string(&svg)
        .unwrap()
        .contains("half precision"));

    for bad in [
        ["--devices", "tpu"],
        ["--dtypes", "f8"],
        ["--batch-sizes", "0"],
    ] {
        let out = papersim()
            .args(["bench", "--limit", "1", "--quiet"])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(!out.stderr.is_empty());
    }
}
