//! #17 items 6 and 9: the model a library is checked against is the model's weights, not
//! its header; and which model loads never depends on the working directory, a `..` in a
//! model id, a path in the model's own files, or the checkout the binary was built from.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::common::{self, stderr, stdout, DMD};
use crate::reliability::{cmd, day, library_copy, model_copy, os, refused, refused_by, run};

/// The shared test model's directory.
fn model_dir() -> PathBuf {
    common::embedder().files().dir.clone()
}

fn manifest(lib: &Path) -> Value {
    serde_json::from_slice(&fs::read(lib.join("manifest.json")).unwrap()).unwrap()
}

fn set_recorded_model(lib: &Path, key: &str, value: &str) {
    let mut m = manifest(lib);
    m["model"][key] = value.into();
    fs::write(
        lib.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

/// The safetensors header's length and JSON.
fn safetensors_header(bytes: &[u8]) -> (usize, Value) {
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (len, serde_json::from_slice(&bytes[8..8 + len]).unwrap())
}

/// The fingerprint papersim recorded before #17, computed here as it was then (SHA-256 over
/// config.json, tokenizer.json, the safetensors header and the weights' size), so that this
/// test pins what libraries written by older binaries hold, whatever the code computes now.
fn legacy_fingerprint(dir: &Path) -> String {
    let mut h = Sha256::new();
    h.update(fs::read(dir.join("config.json")).unwrap());
    h.update(fs::read(dir.join("tokenizer.json")).unwrap());
    let weights = fs::read(dir.join("model.safetensors")).unwrap();
    let (len, _) = safetensors_header(&weights);
    h.update(&weights[8..8 + len]);
    h.update((weights.len() as u64).to_le_bytes());
    format!("{:x}", h.finalize())
}

/// Arguments `--model <dir> <command...>`.
fn with_model<'a>(model: &'a Path, args: &[&'a OsStr]) -> Vec<&'a OsStr> {
    let mut all = vec![os("--model"), model.as_os_str()];
    all.extend_from_slice(args);
    all
}

/// The three commands of the issue that run the model: ingest (of `day`), query, and
/// similar with --explain (without it, `similar` ranks stored vectors and loads no model).
fn model_commands(day: &Path) -> Vec<Vec<&OsStr>> {
    vec![
        vec![os("ingest"), day.as_os_str()],
        vec![os("query"), os("diffusion distillation")],
        vec![os("similar"), os(DMD), os("--explain")],
    ]
}

// ---------------------------------------------------------------------------------------------
// Item 6: the fingerprint covers the weights.

#[test]
fn item6_a_model_with_permuted_word_embeddings_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    // A real copy of every file: the weights are changed below, in place.
    let model = tmp.path().join("model");
    common::copy_dir(&model_dir(), &model);

    // The untouched copy is the same model, wherever it lies.
    let o = run(
        &lib,
        &with_model(&model, &[os("query"), os("diffusion distillation")]),
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // Swap 5,000 pairs of word-embedding rows: same header, same size, another model.
    let weights = model.join("model.safetensors");
    let mut bytes = fs::read(&weights).unwrap();
    let (len, header) = safetensors_header(&bytes);
    let table = &header["embeddings.word_embeddings.weight"];
    let [vocab, dim] = [0, 1].map(|i| table["shape"][i].as_u64().unwrap() as usize);
    let start = 8 + len + table["data_offsets"][0].as_u64().unwrap() as usize;
    let row = dim * 4;
    assert!(vocab > 12_001);
    for r in (2_000..12_000).step_by(2) {
        let (a, b) = (start + r * row, start + (r + 1) * row);
        let first = bytes[a..a + row].to_vec();
        bytes.copy_within(b..b + row, a);
        bytes[b..b + row].copy_from_slice(&first);
    }
    fs::write(&weights, &bytes).unwrap();
    assert_eq!(legacy_fingerprint(&model), legacy_fingerprint(&model_dir()));

    let day = day("03-01");
    for args in model_commands(&day) {
        refused(
            &lib,
            &with_model(&model, &args),
            &["was embedded with model", "index rebuild --reembed"],
        );
    }
}

#[test]
fn item6_a_legacy_library_opens_is_upgraded_and_other_fingerprints_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let current = manifest(&lib)["model"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let legacy = legacy_fingerprint(&model_dir());
    assert_ne!(
        current, legacy,
        "the seed library records the full fingerprint"
    );
    set_recorded_model(&lib, "fingerprint", &legacy);

    // Reads answer, say nothing of fingerprints, and write nothing.
    let before = crate::reliability::snapshot(&lib);
    for args in [
        vec![os("query"), os("diffusion distillation")],
        vec![os("similar"), os(DMD), os("--explain")],
    ] {
        let o = common::papersim()
            .arg("--library")
            .arg(&lib)
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(!stdout(&o).trim().is_empty());
        assert!(!stderr(&o).contains("fingerprint"), "{}", stderr(&o));
    }
    assert_eq!(crate::reliability::snapshot(&lib), before);

    // The next ingest records the full fingerprint, even one that adds nothing (the seed
    // digest again), so that imports, which load no model, can check it.
    let o = run(
        &lib,
        &[os("ingest"), crate::reliability::seed_digest().as_os_str()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("0 added"), "{}", stdout(&o));
    assert_eq!(manifest(&lib)["model"]["fingerprint"], current.as_str());
    let o = run(&lib, &[os("ingest"), day("03-01").as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(manifest(&lib)["model"]["fingerprint"], current.as_str());
    let o = run(&lib, &[os("similar"), os(DMD), os("--explain")]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A fingerprint that is neither the model's nor its legacy one is another model.
    set_recorded_model(&lib, "fingerprint", &"0".repeat(64));
    let day = day("03-02");
    for args in model_commands(&day) {
        refused(&lib, &args, &["was embedded with model", "--reembed"]);
    }
}

/// Every file named `fingerprints.json` under `dir`.
fn caches_under(dir: &Path) -> Vec<PathBuf> {
    crate::reliability::walkdir(dir)
        .into_iter()
        .filter(|p| p.file_name() == Some(OsStr::new("fingerprints.json")))
        .collect()
}

#[test]
fn item6_the_weights_digest_is_cached_and_a_broken_cache_is_no_error() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let home = tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    let query = |home: &Path| {
        let mut c = cmd(&lib, &[os("query"), os("diffusion distillation")]);
        c.env("HOME", home)
            .env("XDG_CACHE_HOME", home.join(".cache"));
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let answer = query(&home);
    let caches = caches_under(&home);
    assert_eq!(caches.len(), 1, "{caches:?}");
    let weights = fs::canonicalize(model_dir().join("model.safetensors")).unwrap();
    let cache = fs::read_to_string(&caches[0]).unwrap();
    assert!(cache.contains(weights.to_str().unwrap()), "{cache}");

    // A corrupt cache: the digest is computed again, and the cache rewritten.
    fs::write(&caches[0], b"{\"version\": 1, \"entries\": [ garbage").unwrap();
    assert_eq!(query(&home), answer);
    let cache = fs::read_to_string(&caches[0]).unwrap();
    assert!(cache.contains(weights.to_str().unwrap()), "{cache}");

    // A cache that cannot be written (a file where its directory should be; root or not).
    let dir = caches[0].parent().unwrap();
    fs::remove_dir_all(dir).unwrap();
    fs::write(dir, b"not a directory").unwrap();
    assert_eq!(query(&home), answer);
    assert_eq!(fs::read(dir).unwrap(), b"not a directory");
}

// ---------------------------------------------------------------------------------------------
// Item 9: model paths are confined.

#[test]
fn item9_a_model_id_with_dot_dot_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    // A model outside the models directory, which `x/../../model` reaches from it.
    model_copy(tmp.path());
    let models = tmp.path().join("models");
    fs::create_dir(&models).unwrap();
    for id in ["x/../../model", "../model", "a/b/c", ".hidden/x", "x/.."] {
        let mut c = cmd(&lib, &[os("--model"), os(id), os("query"), os("diffusion")]);
        c.env("PAPERSIM_MODELS", &models).env("HF_HUB_OFFLINE", "1");
        let needle = if id.starts_with("../") {
            "does not exist"
        } else {
            "not a Hugging Face repo id"
        };
        refused_by(c, &lib, &[id, needle]);
    }
}

#[test]
fn item9_pooling_paths_are_confined_to_the_model_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let model = model_copy(tmp.path());
    // A CLS pooling config outside the model directory.
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let pooling = fs::read_to_string(model.join("1_Pooling/config.json")).unwrap();
    let mut cls: Value = serde_json::from_str(&pooling).unwrap();
    cls["pooling_mode_mean_tokens"] = false.into();
    cls["pooling_mode_cls_token"] = true.into();
    fs::write(outside.join("config.json"), cls.to_string()).unwrap();
    std::os::unix::fs::symlink(&outside, model.join("linked_pooling")).unwrap();

    let modules_path = model.join("modules.json");
    let modules = fs::read_to_string(&modules_path).unwrap();
    for (path, needle) in [
        ("../outside", "leaves the model directory"),
        (outside.to_str().unwrap(), "leaves the model directory"),
        ("1_Pooling/../../outside", "leaves the model directory"),
        ("linked_pooling", "leads out of the model directory"),
    ] {
        let pointed = modules.replace("\"1_Pooling\"", &format!("{:?}", path));
        assert_ne!(pointed, modules);
        fs::write(&modules_path, pointed).unwrap();
        refused(
            &lib,
            &with_model(&model, &[os("query"), os("diffusion")]),
            &["modules.json", path, needle],
        );
    }
    // Inside the directory, a pooling folder of another name is fine.
    fs::rename(model.join("1_Pooling"), model.join("pool")).unwrap();
    fs::write(
        &modules_path,
        modules.replace("\"1_Pooling\"", "\"./pool\""),
    )
    .unwrap();
    let o = run(&lib, &with_model(&model, &[os("query"), os("diffusion")]));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn item9_a_library_model_id_is_never_resolved_against_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let id = manifest(&lib)["model"]["id"].as_str().unwrap().to_string();
    // A directory named like the library's model id, holding a broken model, in the working
    // directory of the commands below.
    let cwd = tmp.path().join("cwd");
    let planted = cwd.join(&id);
    common::copy_dir(&model_dir(), &planted);
    fs::write(planted.join("config.json"), "{ not a model").unwrap();

    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let answer = |dir: &Path, args: &[&str]| {
        let o = cmd(&lib, &args.iter().map(os).collect::<Vec<_>>())
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?} in {}: {}",
            dir.display(),
            stderr(&o)
        );
        stdout(&o)
    };
    for args in [
        &["query", "diffusion distillation", "--mode", "dense"][..],
        &["similar", DMD, "--explain"][..],
    ] {
        assert_eq!(answer(&cwd, args), answer(&elsewhere, args));
    }
    let o = cmd(&lib, &[os("ingest"), day("03-01").as_os_str()])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn item9_a_model_given_as_a_directory_is_recorded_by_its_absolute_path() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_copy(tmp.path());
    let lib = tmp.path().join("new-lib");
    let at = |dir: &Path, args: &[&OsStr]| -> Command {
        let mut c = cmd(&lib, args);
        c.current_dir(dir);
        c
    };
    let o = at(
        tmp.path(),
        &[
            os("--model"),
            os("./model"),
            os("ingest"),
            day("03-01").as_os_str(),
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let recorded = fs::canonicalize(&model).unwrap();
    assert_eq!(manifest(&lib)["model"]["id"], recorded.to_str().unwrap());

    // From anywhere, without --model, that directory is the model.
    let o = at(Path::new("/"), &[os("query"), os("diffusion")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // A relative directory without `./` is a repo id, not a path; the error says how to name it.
    let mut c = at(
        tmp.path(),
        &[os("--model"), os("model/"), os("query"), os("x")],
    );
    c.env("HF_HUB_OFFLINE", "1");
    refused_by(c, &lib, &["not a Hugging Face repo id", "./"]);

    // A recorded relative path (as older papersim recorded `--model ./model`) is refused,
    // whatever the working directory holds.
    let good = manifest(&lib);
    set_recorded_model(&lib, "id", "./model");
    refused_by(
        at(tmp.path(), &[os("query"), os("diffusion")]),
        &lib,
        &["relative path `./model`", "--model"],
    );
    fs::write(
        lib.join("manifest.json"),
        serde_json::to_vec_pretty(&good).unwrap(),
    )
    .unwrap();

    // The recorded directory gone: named, with what to do.
    fs::rename(&model, tmp.path().join("moved")).unwrap();
    refused_by(
        at(tmp.path(), &[os("query"), os("diffusion")]),
        &lib,
        &[recorded.to_str().unwrap(), "gone", "--model"],
    );
    // Given again with --model, it is the same model (the fingerprint is of its content).
    let o = at(
        tmp.path(),
        &[os("--model"), os("./moved"), os("query"), os("diffusion")],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn item9_without_papersim_models_models_are_looked_for_in_the_user_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs::create_dir(&home).unwrap();
    let texts = crate::reliability::write(&tmp.path().join("texts.txt"), "a text\n");
    let mut c = common::papersim();
    c.env_remove("PAPERSIM_MODELS")
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("HF_HOME", tmp.path().join("hf"))
        .env("HF_HUB_OFFLINE", "1")
        .args([
            "--quiet",
            "--model",
            "nobody/no-such-model",
            "embed",
            "--lines",
        ])
        .arg(&texts)
        .arg("-o")
        .arg(tmp.path().join("out.npy"));
    let o = c.output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let expected = dirs_cache(&home).join("papersim/models/nobody/no-such-model");
    assert!(
        err.contains(&format!(
            "models directory {}: not there",
            expected.display()
        )),
        "{err}"
    );
    assert!(!err.contains(env!("CARGO_MANIFEST_DIR")), "{err}");
    assert!(!tmp.path().join("out.npy").exists());
}

/// The user cache directory for `home`, as the binary (the `dirs` crate) finds it when `HOME`
/// and `XDG_CACHE_HOME` are set as above.
fn dirs_cache(home: &Path) -> PathBuf {
    if cfg!(target_os = "macos") {
        home.join("Library/Caches")
    } else {
        home.join(".cache")
    }
}
