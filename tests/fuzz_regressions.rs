//! Replays the fuzz corpora and crash reproducers (`fuzz/corpus/<target>.tar.gz`,
//! `fuzz/regressions/<target>/`) through the same harnesses the cargo-fuzz targets run, on
//! stable Rust, so that every input the fuzzers kept stays fixed. See `scripts/fuzz.sh` and
//! `docs/reliability.md`.

use crate::harness;

use std::path::{Path, PathBuf};

use papersim::digest::InputFormat;

/// The inputs kept for `target`: its minimised corpus, packed as `fuzz/corpus/<target>.tar.gz`
/// (`scripts/fuzz.sh` unpacks it to fuzz and packs it again after minimising), and the crash
/// reproducers in `fuzz/regressions/<target>/`.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    let pack = root.join("corpus").join(format!("{target}.tar.gz"));
    if pack.is_file() {
        inputs.extend(untar_gz(&pack));
    }
    if let Ok(entries) = std::fs::read_dir(root.join("regressions").join(target)) {
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.is_file()) {
            inputs.push((f.display().to_string(), std::fs::read(&f).unwrap()));
        }
    }
    inputs
}

/// The regular files of a gzipped ustar archive, as (name, content).
fn untar_gz(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let text = |field: &[u8]| {
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        String::from_utf8_lossy(&field[..end]).trim().to_string()
    };
    let mut files = Vec::new();
    let mut pos = 0;
    while pos + 512 <= bytes.len() {
        let header = &bytes[pos..pos + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let name = text(&header[..100]);
        let size = usize::from_str_radix(&text(&header[124..136]), 8).unwrap();
        pos += 512;
        if matches!(header[156], b'0' | 0) {
            files.push((
                format!("{}:{name}", path.display()),
                bytes[pos..pos + size].to_vec(),
            ));
        }
        pos += size.div_ceil(512) * 512;
    }
    files
}

thread_local! {
    /// Panics on this thread since the last input, caught or not.
    static PANICS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs every input kept for `target`. Like libFuzzer's harness, any panic fails the input,
/// even one that papersim catches (the HNSW loader catches those of `hnsw_rs`, but they still
/// print a backtrace at the user).
fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.borrow_mut().push(info.to_string()));
            default(info);
        }));
    });
    let inputs = inputs(target);
    for (name, data) in &inputs {
        PANICS.with(|p| p.borrow_mut().clear());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(data)));
        let panics = PANICS.with(|p| p.take());
        assert!(panics.is_empty(), "{name}: panicked: {panics:?}");
    }
    eprintln!("{target}: replayed {} inputs", inputs.len());
    inputs.len()
}

#[test]
fn digest_auto_corpus() {
    assert!(replay("digest_auto", |d| harness::digest(InputFormat::Auto, d)) > 0);
}

#[test]
fn digest_text_corpus() {
    assert!(replay("digest_text", |d| harness::digest(InputFormat::Text, d)) > 0);
}

#[test]
fn digest_json_corpus() {
    assert!(replay("digest_json", |d| harness::digest(InputFormat::Json, d)) > 0);
}

#[test]
fn digest_jsonl_corpus() {
    assert!(replay("digest_jsonl", |d| harness::digest(InputFormat::Jsonl, d)) > 0);
}

#[test]
fn library_open_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let outcomes = std::cell::RefCell::new(std::collections::BTreeMap::new());
    let n = replay("library_open", |d| {
        let dir = tmp
            .path()
            .join(outcomes.borrow().values().sum::<usize>().to_string());
        let outcome = harness::library_in(&dir, d);
        *outcomes.borrow_mut().entry(outcome).or_insert(0usize) += 1;
    });
    eprintln!("library_open outcomes: {:?}", outcomes.borrow());
    assert!(n > 0);
    // The corpus reaches every stage: refused, opened, and searched through a loaded graph.
    assert_eq!(outcomes.borrow().len(), 3, "{:?}", outcomes.borrow());
}

/// The seeds the library fuzzer starts from are valid libraries that open and search.
#[test]
fn library_seeds_open() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, data) in harness::library_seeds() {
        let outcome = harness::library_in(&tmp.path().join(&name), &data);
        let want = if name.starts_with("seed-0x") {
            harness::Outcome::Opened // no papers, nothing to search
        } else {
            harness::Outcome::Searched
        };
        assert_eq!(outcome, want, "{name}");
    }
}
