//! The encoder against sentence-transformers' own vectors, and its invariants.

use crate::common::{candle_embedder, cosine, embedder, reference};
use papersim::encode::device::DeviceRequest;
use papersim::encode::forward::Backend;
use papersim::encode::tokenize::BatchLimits;
use papersim::{Embedder, EmbedderConfig};

/// Checks an embedder against sentence-transformers' vectors for the 83 reference texts.
fn assert_parity(embedder: &Embedder) {
    let refs = reference();
    assert_eq!(refs.len(), 83);
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let out = embedder.embed(&texts).unwrap();
    assert_eq!(out.dim, 384);
    let mut worst = 1.0f32;
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(out.tokens[i], r.tokens, "token count of text {i}");
        let c = cosine(out.row(i), &r.embedding);
        worst = worst.min(c);
        assert!(
            c >= 0.9999,
            "{} backend, text {i}: cosine {c} < 0.9999",
            embedder.backend()
        );
    }
    eprintln!(
        "{} backend: worst cosine against sentence-transformers {worst}",
        embedder.backend()
    );
}

#[test]
fn the_cpu_default_is_the_fast_path() {
    assert_eq!(embedder().backend(), Backend::CpuFast);
    assert_eq!(candle_embedder().backend(), Backend::Papersim);
}

#[test]
fn parity_with_sentence_transformers_on_83_texts() {
    assert_parity(embedder());
}

#[test]
fn candle_path_parity_with_sentence_transformers_on_83_texts() {
    assert_parity(candle_embedder());
}

#[test]
fn fast_and_candle_paths_agree() {
    let refs = reference();
    let mut texts: Vec<String> = refs.iter().map(|r| r.text.clone()).collect();
    // Also cut texts to varied lengths, so that batches pad and the fast path's packing of real
    // tokens is exercised against the candle path's additive mask.
    texts.extend(refs.iter().enumerate().map(|(i, r)| {
        let words: Vec<&str> = r.text.split_whitespace().collect();
        words[..(3 + i * 7) % (words.len() + 1)].join(" ")
    }));
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let fast = embedder().embed(&texts).unwrap();
    let slow = candle_embedder().embed(&texts).unwrap();
    assert_eq!(fast.tokens, slow.tokens);
    let mut worst = 1.0f32;
    for i in 0..texts.len() {
        let c = cosine(fast.row(i), slow.row(i));
        worst = worst.min(c);
        assert!(c >= 0.99999, "text {i}: fast vs candle cosine {c}");
    }
    eprintln!("worst cosine, cpu-fast against the candle path: {worst}");
}

#[test]
fn vectors_have_unit_norm() {
    let out = embedder()
        .embed(&["a short text", "", "Mixture of experts for speech."])
        .unwrap();
    for i in 0..out.len() {
        let norm: f32 = out.row(i).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "row {i} norm {norm}");
    }
}

#[test]
fn batched_equals_single_and_order_is_kept() {
    let refs = reference();
    let texts: Vec<&str> = refs.iter().take(12).map(|r| r.text.as_str()).collect();
    let mut varied: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    // Varied lengths so that batches really pad.
    for (i, t) in varied.iter_mut().enumerate() {
        let words: Vec<&str> = t.split_whitespace().take(5 + i * 17).collect();
        *t = words.join(" ");
    }
    let varied: Vec<&str> = varied.iter().map(String::as_str).collect();
    let batched = embedder().embed(&varied).unwrap();
    for (i, text) in varied.iter().enumerate() {
        let single = embedder().embed(&[text]).unwrap();
        let c = cosine(batched.row(i), single.row(0));
        assert!(c >= 0.99999, "text {i}: batched vs single cosine {c}");
    }
    let reversed: Vec<&str> = varied.iter().rev().copied().collect();
    let back = embedder().embed(&reversed).unwrap();
    for i in 0..varied.len() {
        let c = cosine(batched.row(i), back.row(varied.len() - 1 - i));
        assert!(c >= 0.99999, "order not kept for text {i}");
    }
}

#[test]
fn empty_string_and_long_text_as_sentence_transformers_does() {
    let refs = reference();
    // The fixture holds the empty string (2 tokens: [CLS] [SEP]).
    let empty = refs
        .iter()
        .find(|r| r.text.is_empty())
        .expect("fixture has the empty string");
    let out = embedder().embed(&[""]).unwrap();
    assert_eq!(out.tokens[0], 2);
    assert!(cosine(out.row(0), &empty.embedding) >= 0.9999);

    // 600 words are truncated at max_seq_length (256), not at the tokenizer file's 128.
    let long = "graph neural networks learn representations ".repeat(150);
    let out = embedder().embed(&[&long]).unwrap();
    assert_eq!(out.tokens[0], 256);
    let truncated = embedder().embed(&[&long[..long.len() / 2]]).unwrap();
    assert_eq!(truncated.tokens[0], 256);
    assert!(cosine(out.row(0), truncated.row(0)) > 0.9999);
}

#[test]
fn token_budget_batches_give_the_same_vectors() {
    let refs = reference();
    let texts: Vec<&str> = refs.iter().take(10).map(|r| r.text.as_str()).collect();
    let mut small = Embedder::from_files(
        embedder().files().clone(),
        &EmbedderConfig {
            device: DeviceRequest::Cpu,
            ..EmbedderConfig::default()
        },
    )
    .unwrap();
    small.set_batch_limits(BatchLimits {
        max_texts: 64,
        max_tokens: 600,
    });
    let a = small.embed(&texts).unwrap();
    let b = embedder().embed(&texts).unwrap();
    for i in 0..texts.len() {
        assert!(cosine(a.row(i), b.row(i)) >= 0.99999);
    }
}

#[test]
fn papersim_forward_matches_upstream_bert() {
    let refs = reference();
    let texts: Vec<&str> = refs.iter().take(8).map(|r| r.text.as_str()).collect();
    let upstream = Embedder::from_files(
        embedder().files().clone(),
        &EmbedderConfig {
            device: DeviceRequest::Cpu,
            backend: Backend::Upstream,
            ..EmbedderConfig::default()
        },
    )
    .unwrap();
    let a = upstream.embed(&texts).unwrap();
    for ours in [embedder(), candle_embedder()] {
        let b = ours.embed(&texts).unwrap();
        for i in 0..texts.len() {
            let c = cosine(a.row(i), b.row(i));
            assert!(c >= 0.99999, "{} backend, text {i}: {c}", ours.backend());
        }
    }
}

#[test]
fn the_fast_path_refuses_what_it_cannot_run() {
    let err = Embedder::from_files(
        embedder().files().clone(),
        &EmbedderConfig {
            device: DeviceRequest::Cpu,
            precision: papersim::encode::device::Precision::F16,
            backend: Backend::CpuFast,
            ..EmbedderConfig::default()
        },
    )
    .err()
    .expect("f16 on the CPU is refused");
    assert!(err.to_string().contains("f32"), "{err}");
}

/// Cosine similarity in f64, so that agreement tighter than f32 rounding can be measured.
fn cosine64(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The default model copied to `dir` with config.json's `hidden_act` set to `hidden_act`
/// (same weights), and its candle-tensor and fast CPU forwards, on the CPU in f32.
fn both_forwards_with_activation(dir: &std::path::Path, hidden_act: &str) -> [Embedder; 2] {
    crate::common::copy_dir(&embedder().files().dir, dir);
    let config_path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["hidden_act"] = hidden_act.into();
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let files = papersim::encode::model::load_dir(hidden_act, dir, "test").unwrap();
    [Backend::Papersim, Backend::CpuFast].map(|backend| {
        let e = Embedder::from_files(
            files.clone(),
            &EmbedderConfig {
                device: DeviceRequest::Cpu,
                backend,
                ..EmbedderConfig::default()
            },
        )
        .unwrap();
        assert_eq!(e.backend(), backend);
        e
    })
}

/// Both forwards run the activation config.json names: with `gelu_new` (tanh GELU) the
/// candle-tensor path once ran erf GELU while the fast CPU path ran tanh, so the same model
/// gave different vectors on CUDA and on the CPU.
///
/// The two GELUs are close, so that mismatch moved vectors by only 1 − cos ≈ 1e-6 (worst
/// 2.2e-6, on the long text; an f32 cosine of 0.999998, which passes any f32 threshold the
/// other tests use). Running the same activation, the two forwards agree to 1 − cos ≈ 1e-12
/// (f64; relative distance ≈ 1e-6, i.e. f32 rounding). The bound 1 − cos ≤ 1e-9 (relative
/// distance ≈ 4.5e-5) sits between the two with room for other CPUs' summation orders.
#[test]
fn both_forwards_run_the_configured_activation() {
    let refs = reference();
    let mut texts: Vec<String> = refs.iter().map(|r| r.text.clone()).collect();
    // One long real text: several abstracts together, cut at the 256-token window.
    let long: Vec<&str> = refs
        .iter()
        .filter(|r| r.tokens > 100)
        .map(|r| r.text.as_str())
        .take(6)
        .collect();
    texts.push(long.join(" "));
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();

    let tmp = tempfile::tempdir().unwrap();
    let [candle, fast] = both_forwards_with_activation(&tmp.path().join("gelu_new"), "gelu_new");
    // The shared embedders load the unchanged model, whose config.json says `gelu` (erf): the
    // same-activation baseline the bound is set from.
    assert_eq!(
        embedder().files().config.hidden_act,
        papersim::encode::config::Activation::GeluErf
    );
    for (config, candle, fast) in [
        ("gelu", candle_embedder(), embedder()),
        ("gelu_new", &candle, &fast),
    ] {
        let a = candle.embed(&texts).unwrap();
        let b = fast.embed(&texts).unwrap();
        assert_eq!(a.tokens, b.tokens);
        assert_eq!(
            a.tokens[texts.len() - 1],
            256,
            "the long text fills the window"
        );
        let mut worst = 0f64;
        for i in 0..texts.len() {
            let c = cosine(a.row(i), b.row(i));
            assert!(
                c >= 0.9999,
                "{config}, text {i}: candle vs cpu-fast cosine {c}"
            );
            let gap = 1.0 - cosine64(a.row(i), b.row(i));
            worst = worst.max(gap);
            assert!(
                gap <= 1e-9,
                "{config}, text {i} ({} tokens): candle vs cpu-fast 1 - cosine {gap:.3e} > 1e-9: \
                 the two forwards do not run the same activation",
                a.tokens[i]
            );
        }
        eprintln!("{config}: worst 1 - cosine, candle vs cpu-fast: {worst:.3e}");
    }
}
