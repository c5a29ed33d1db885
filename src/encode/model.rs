//! Model resolution and loading: turns `--model <repo id | directory>` into a checked set of
//! sentence-transformers files (config, tokenizer, weights, pooling, max length).
//!
//! Resolution order: a directory given as a path; `<models dir>/<repo id>/`; the Hugging Face
//! cache and a Hub download; the package-registry fallbacks listed in `models/known.json`
//! ([`crate::encode::known`], fetched by [`crate::encode::provision`]). When nothing works, one
//! error lists every attempt.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::checksum::hex;
use crate::encode::config::{read_json, BertConfig};
use crate::encode::known::known_model;
use crate::encode::pooling::Pooling;
use crate::encode::provision::provision;
use crate::progress::Progress;
use crate::{Error, Result};

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Where provisioned models live: `$PAPERSIM_MODELS`, else the project's `models/` when running
/// from a checkout, else the platform data directory.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PAPERSIM_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    if project.join("known.json").is_file() {
        return project;
    }
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("papersim")
        .join("models")
}

/// A resolved, checked model directory.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The id the user asked for (or the directory, when given as a path).
    pub id: String,
    pub dir: PathBuf,
    /// Where the files came from, in words (shown by `info` and `--verbose`).
    pub origin: String,
    pub config: BertConfig,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
    /// sentence-transformers' truncation length (`sentence_bert_config.json`).
    pub max_seq_length: usize,
    pub pooling: Pooling,
    /// Whether the model's pipeline ends in a Normalize module (`modules.json`).
    pub normalize: bool,
}

impl ModelFiles {
    /// A fingerprint of the model that a library records: SHA-256 over `config.json`,
    /// `tokenizer.json`, the safetensors header (names, shapes, offsets) and the weights' size.
    /// Cheap enough for every open, and it changes when the model does.
    pub fn fingerprint(&self) -> Result<String> {
        let mut hasher = Sha256::new();
        for path in [self.dir.join("config.json"), self.tokenizer.clone()] {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            hasher.update(&bytes);
        }
        let (header, size) = safetensors_header(&self.weights)?;
        hasher.update(&header);
        hasher.update(size.to_le_bytes());
        Ok(hex(&hasher.finalize()))
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }
}

/// Reads and checks a safetensors file's header; returns it with the file's size.
fn safetensors_header(path: &Path) -> Result<(Vec<u8>, u64)> {
    use std::io::Read;
    let bad = |reason: String| Error::ModelFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("truncated: shorter than a safetensors header".into()))?;
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 || 8 + len > size {
        return Err(bad(format!(
            "corrupt or truncated safetensors: header of {len} bytes in a file of {size} bytes"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(format!("reading header: {e}")))?;
    let parsed: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("corrupt safetensors header: {e}")))?;
    // Every tensor must lie inside the file: a truncated download fails here, not in the mmap.
    let data_len = size - 8 - len;
    if let Some(map) = parsed.as_object() {
        for (name, info) in map {
            if name == "__metadata__" {
                continue;
            }
            let end = info
                .get("data_offsets")
                .and_then(|o| o.get(1))
                .and_then(|v| v.as_u64())
                .ok_or_else(|| bad(format!("tensor `{name}` has no data_offsets")))?;
            if end > data_len {
                return Err(bad(format!(
                    "truncated: tensor `{name}` ends at byte {end} but the file holds {data_len} data bytes"
                )));
            }
        }
    }
    Ok((header, size))
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// Whether a directory looks like a model (has the three files every model needs).
fn has_model_files(dir: &Path) -> bool {
    ["config.json", "tokenizer.json", "model.safetensors"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// Reads and checks the sentence-transformers layout in `dir`.
pub fn load_dir(id: &str, dir: &Path, origin: &str) -> Result<ModelFiles> {
    let config = BertConfig::read(&dir.join("config.json"))?;

    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(Error::ModelFile {
            path: tokenizer,
            reason: "missing (the model directory needs tokenizer.json)".into(),
        });
    }
    let weights = dir.join("model.safetensors");
    if !weights.is_file() {
        return Err(Error::ModelFile {
            path: weights,
            reason: "missing (papersim reads safetensors weights only)".into(),
        });
    }
    safetensors_header(&weights)?;

    // sentence-transformers truncates at max_seq_length, not at the tokenizer's own setting.
    let st_path = dir.join("sentence_bert_config.json");
    let max_seq_length = if st_path.is_file() {
        read_json::<SentenceBertConfig>(&st_path)?.max_seq_length
    } else {
        None
    }
    .unwrap_or(config.max_position_embeddings)
    .min(config.max_position_embeddings);

    let modules_path = dir.join("modules.json");
    let modules: Vec<ModuleEntry> = if modules_path.is_file() {
        read_json(&modules_path)?
    } else {
        Vec::new()
    };
    let normalize = modules.iter().any(|m| m.kind.ends_with(".Normalize"));
    let pooling_dir = modules
        .iter()
        .find(|m| m.kind.ends_with(".Pooling"))
        .map(|m| dir.join(&m.path))
        .unwrap_or_else(|| dir.join("1_Pooling"));
    let pooling_path = pooling_dir.join("config.json");
    let pooling = if pooling_path.is_file() {
        Pooling::from_config(&pooling_path, &read_json(&pooling_path)?)?
    } else {
        // sentence-transformers' default for a plain transformer is mean pooling.
        Pooling::Mean
    };

    Ok(ModelFiles {
        id: id.to_string(),
        dir: dir.to_path_buf(),
        origin: origin.to_string(),
        config,
        tokenizer,
        weights,
        max_seq_length,
        pooling,
        normalize,
    })
}

/// How to look for a model.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Where provisioned models live (default [`models_dir`]).
    pub models_dir: PathBuf,
    /// Try the Hugging Face Hub (cache and download).
    pub use_hub: bool,
    /// Try the registry fallbacks of `models/known.json`.
    pub use_fallbacks: bool,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            models_dir: models_dir(),
            use_hub: true,
            use_fallbacks: true,
        }
    }
}

/// Resolves a model name or directory to checked files, provisioning it if needed.
pub fn resolve(name: &str, opts: &ResolveOptions, progress: &dyn Progress) -> Result<ModelFiles> {
    let mut tried = Vec::new();

    let as_path = Path::new(name);
    if as_path.is_dir() {
        return load_dir(name, as_path, &format!("directory {}", as_path.display()));
    }
    if name.starts_with('.') || name.starts_with('/') || name.ends_with('/') {
        tried.push(format!("directory {name}: does not exist"));
        return Err(Error::ModelNotFound {
            model: name.to_string(),
            tried,
        });
    }

    let canonical = known_model(name)
        .map(|m| m.id)
        .unwrap_or_else(|| name.to_string());
    let local = opts.models_dir.join(&canonical);
    if has_model_files(&local) {
        return load_dir(
            &canonical,
            &local,
            &format!("models directory {}", local.display()),
        );
    }
    tried.push(format!("models directory {}: not there", local.display()));

    if opts.use_hub {
        match from_hub(&canonical) {
            Ok((dir, origin)) => return load_dir(&canonical, &dir, &origin),
            Err(reason) => tried.push(reason),
        }
    } else {
        tried.push("Hugging Face Hub: not asked (disabled)".into());
    }

    if opts.use_fallbacks {
        match known_model(&canonical) {
            Some(model) => {
                for fallback in &model.fallbacks {
                    match provision(&canonical, fallback, &local, progress) {
                        Ok(origin) => return load_dir(&canonical, &local, &origin),
                        Err(e) => tried.push(e.to_string()),
                    }
                }
            }
            None => tried.push(format!(
                "package registries: `{canonical}` has no known package (models/known.json)"
            )),
        }
    }
    Err(Error::ModelNotFound {
        model: canonical,
        tried,
    })
}

/// The files of a sentence-transformers model directory that papersim reads (the first three
/// are the ones a Hugging Face cache must hold for the model to count as cached).
pub const MODEL_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
];

/// The hf-hub cache (honouring `HF_HOME`), then a download unless `HF_HUB_OFFLINE` is set.
fn from_hub(id: &str) -> std::result::Result<(PathBuf, String), String> {
    let cache = hf_hub::Cache::from_env();
    let cached = cache.model(id.to_string());
    if let Some(config) = cached.get("config.json") {
        if MODEL_FILES[..3].iter().all(|f| cached.get(f).is_some()) {
            let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
            return Ok((
                dir,
                format!("Hugging Face cache {}", cache.path().display()),
            ));
        }
    }
    let offline = std::env::var("HF_HUB_OFFLINE")
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false);
    if offline {
        return Err(format!(
            "Hugging Face cache {}: not there (HF_HUB_OFFLINE set, no download)",
            cache.path().display()
        ));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| format!("Hugging Face Hub: {e}"))?;
    let repo = api.model(id.to_string());
    let mut dir = None;
    for file in MODEL_FILES {
        match repo.get(file) {
            Ok(path) => {
                if *file == "config.json" {
                    dir = path.parent().map(Path::to_path_buf);
                }
            }
            Err(e) if MODEL_FILES[..3].contains(file) => {
                return Err(format!("Hugging Face Hub download of {id}/{file}: {e}"))
            }
            Err(_) => {} // optional sentence-transformers files
        }
    }
    let dir = dir.ok_or_else(|| format!("Hugging Face Hub: no config.json for {id}"))?;
    Ok((dir, "Hugging Face Hub".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_parses_and_knows_the_default_model() {
        let m = known_model(DEFAULT_MODEL).expect("default model is known");
        assert_eq!(known_model("all-MiniLM-L6-v2").unwrap().id, m.id);
        assert!(!m.fallbacks.is_empty());
        let crate::encode::known::Fallback::PypiWheel { sha256, .. } = &m.fallbacks[0];
        assert_eq!(sha256.len(), 64);
    }
}
