//! Model resolution and loading: turns `--model <repo id | directory>` into a checked set of
//! sentence-transformers files (config, tokenizer, weights, pooling, max length).
//!
//! A model is a **directory** when it is given as an explicit path: absolute, or starting with
//! `./` or `../` (its absolute, canonical path is what a library records). Anything else is a
//! **repo id** (`owner/name` or `name`, checked by [`check_repo_id`]: no `..`, no absolute
//! paths), looked up in order in `<models dir>/<repo id>/`, the Hugging Face cache and a Hub
//! download, and the package-registry fallbacks listed in `models/known.json`
//! ([`crate::encode::known`], fetched by [`crate::encode::provision`]); never relative to the
//! working directory. When nothing works, one error lists every attempt. Paths read from the
//! model's own files (`modules.json`) are confined to its directory.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::checksum::hex;
use crate::encode::config::{read_json, BertConfig};
use crate::encode::fingerprint::{cache_path, weights_sha256};
use crate::encode::known::known_model;
use crate::encode::pooling::Pooling;
use crate::encode::provision::provision;
use crate::progress::Progress;
use crate::{Error, Result};

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Where provisioned models live: `$PAPERSIM_MODELS`, else `<user cache dir>/papersim/models`
/// (`~/.cache/papersim/models` on Linux); `None` when neither is known. Never a path compiled
/// into the binary, nor one relative to the working directory.
pub fn models_dir() -> Option<PathBuf> {
    models_dir_from(
        std::env::var_os("PAPERSIM_MODELS").filter(|d| !d.is_empty()),
        dirs::cache_dir(),
    )
}

fn models_dir_from(env: Option<std::ffi::OsString>, cache_dir: Option<PathBuf>) -> Option<PathBuf> {
    match env {
        Some(dir) => Some(PathBuf::from(dir)),
        None => cache_dir.map(|c| c.join("papersim").join("models")),
    }
}

/// Whether `--model` names a directory: an absolute path, or one starting with `./` or `../`.
/// Everything else is a repo id, so that which model loads never depends on the directory
/// papersim is run from.
pub fn is_directory_name(name: &str) -> bool {
    let path = Path::new(name);
    path.is_absolute()
        || matches!(
            path.components().next(),
            Some(Component::CurDir | Component::ParentDir)
        )
}

/// Checks a Hugging Face repo id: `owner/name` or `name`, each of ASCII letters, digits, `-`,
/// `_` and `.`, at most 96 characters, neither starting nor ending with `-` or `.`, and no
/// `..` (the Hub's own rules). A repo id is joined to the models directory, so this is what
/// keeps `owner/../../elsewhere` inside it.
pub fn check_repo_id(id: &str) -> Result<()> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 96
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !s.contains("..")
            && !s.starts_with(['-', '.'])
            && !s.ends_with(['-', '.'])
    };
    let segments: Vec<&str> = id.split('/').collect();
    if segments.len() <= 2 && segments.iter().all(|s| segment_ok(s)) {
        return Ok(());
    }
    let mut reason = format!(
        "model `{id}` is not a Hugging Face repo id (`owner/name` or `name`: letters, digits, \
         `-`, `_` and `.`, no `..`); give a model directory as a path starting with `/`, `./` \
         or `../`"
    );
    if Path::new(id).is_dir() {
        reason.push_str(&format!(" (here: `./{id}`)"));
    }
    Err(Error::InvalidInput(reason))
}

/// Checks a model id that a library recorded before it is resolved: a repo id, or the absolute
/// path of a model directory (what papersim records for a model given as a directory). A
/// relative path (recorded by papersim before it made them absolute) is refused rather than
/// resolved against the working directory, and a recorded directory that is gone is named.
pub fn check_recorded(id: &str) -> Result<()> {
    let path = Path::new(id);
    if path.is_absolute() {
        if path.is_dir() {
            return Ok(());
        }
        return Err(Error::ModelNotFound {
            model: id.to_string(),
            tried: vec![format!(
                "directory {id} (the library's model, as it recorded it): gone; pass the same \
                 model with --model, or re-embed with `papersim index rebuild --reembed --model M`"
            )],
        });
    }
    if is_directory_name(id) {
        return Err(Error::InvalidInput(format!(
            "the library records its model as the relative path `{id}`, which papersim does not \
             resolve against the working directory; pass the model with --model (as `/…`, \
             `./…` or a repo id)"
        )));
    }
    check_repo_id(id)
}

/// A resolved, checked model directory.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The repo id (canonical, for a known model's alias), or the directory's absolute,
    /// canonical path when the model was given as a directory.
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
    /// The texts put before queries and before papers (`config_sentence_transformers.json`).
    pub prompts: Prompts,
}

/// The instructions an asymmetric model (BGE, E5, ...) expects before a text, from the
/// `prompts` of `config_sentence_transformers.json`, as sentence-transformers' `encode_query`
/// and `encode_document` choose them: `query` for queries; `document`, `passage` or `corpus`
/// for papers; else the `default_prompt_name`'s prompt; else nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompts {
    pub query: String,
    pub document: String,
}

#[derive(Deserialize, Default)]
struct StModelConfig {
    #[serde(default)]
    prompts: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    default_prompt_name: Option<String>,
}

impl Prompts {
    /// Reads the prompts of `config_sentence_transformers.json` at `path` (none when absent).
    fn read(path: &Path) -> Result<Prompts> {
        if !path.is_file() {
            return Ok(Prompts::default());
        }
        let config: StModelConfig = read_json(path)?;
        let default = match &config.default_prompt_name {
            Some(name) => config
                .prompts
                .get(name)
                .cloned()
                .ok_or_else(|| Error::ModelFile {
                    path: path.to_path_buf(),
                    reason: format!("default_prompt_name `{name}` is not one of its prompts"),
                })?,
            None => String::new(),
        };
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| config.prompts.get(*n).cloned())
                .unwrap_or_else(|| default.clone())
        };
        Ok(Prompts {
            query: first(&["query"]),
            document: first(&["document", "passage", "corpus"]),
        })
    }
}

impl ModelFiles {
    /// The fingerprint a library records of the model its vectors came from: SHA-256 over
    /// everything that decides the vectors — `config.json`, `tokenizer.json`, every byte of
    /// the weights, and the pooling, normalisation and truncation length read from
    /// `modules.json`, the pooling config and `sentence_bert_config.json`. The weights' digest
    /// is cached per file in the user's cache directory ([`crate::encode::fingerprint`]), so
    /// that only the first use of a weights file reads all of it.
    pub fn fingerprint(&self) -> Result<String> {
        self.fingerprint_cached_in(cache_path().as_deref())
    }

    /// [`ModelFiles::fingerprint`] with the weights' digest cached in `cache` (none: computed).
    pub fn fingerprint_cached_in(&self, cache: Option<&Path>) -> Result<String> {
        let mut hasher = Sha256::new();
        // Domain-separated from the legacy fingerprint, and every part length-prefixed, so
        // that no two different models can feed the hash the same bytes.
        hasher.update(b"papersim model fingerprint v2\n");
        let mut part = |name: &str, bytes: &[u8]| {
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        for path in [self.dir.join("config.json"), self.tokenizer.clone()] {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            part(
                &path.file_name().unwrap_or_default().to_string_lossy(),
                &bytes,
            );
        }
        part(
            "model.safetensors sha256",
            weights_sha256(&self.weights, cache)?.as_bytes(),
        );
        part("pooling", self.pooling.name().as_bytes());
        part("normalize", if self.normalize { b"true" } else { b"false" });
        part(
            "max_seq_length",
            &(self.max_seq_length as u64).to_le_bytes(),
        );
        // Papers' vectors depend on their prompt; only a model with one hashes it, so that the
        // fingerprints of models without (every library written before prompts) stay as they were.
        if !self.prompts.document.is_empty() {
            part("document prompt", self.prompts.document.as_bytes());
        }
        Ok(hex(&hasher.finalize()))
    }

    /// The fingerprint papersim recorded before it covered the weights: SHA-256 over
    /// `config.json`, `tokenizer.json`, the safetensors header and the weights' size. Only for
    /// recognising the libraries it wrote (their next commit records [`ModelFiles::fingerprint`]).
    pub fn legacy_fingerprint(&self) -> Result<String> {
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
    let pooling_dir = match modules.iter().find(|m| m.kind.ends_with(".Pooling")) {
        Some(m) => inside(dir, &m.path, &modules_path)?,
        None => dir.join("1_Pooling"),
    };
    let pooling_path = pooling_dir.join("config.json");
    let pooling = if pooling_path.is_file() {
        Pooling::from_config(&pooling_path, &read_json(&pooling_path)?)?
    } else {
        // sentence-transformers' default for a plain transformer is mean pooling.
        Pooling::Mean
    };

    let prompts = Prompts::read(&dir.join("config_sentence_transformers.json"))?;

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
        prompts,
    })
}

/// `dir/relative` for a path read from the model file `source`, refused unless it stays in
/// `dir`: no absolute path, no `..`, and no symbolic link that leads out of the directory
/// (the files inside may be links, as in the Hugging Face cache; the folder named may not).
fn inside(dir: &Path, relative: &str, source: &Path) -> Result<PathBuf> {
    let bad = |reason: String| Error::ModelFile {
        path: source.to_path_buf(),
        reason,
    };
    let rel = Path::new(relative);
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad(format!(
            "path `{relative}` leaves the model directory (absolute or with `..`)"
        )));
    }
    let joined = dir.join(rel);
    if let (Ok(base), Ok(target)) = (std::fs::canonicalize(dir), std::fs::canonicalize(&joined)) {
        if !target.starts_with(&base) {
            return Err(bad(format!(
                "path `{relative}` leads out of the model directory (to {})",
                target.display()
            )));
        }
    }
    Ok(joined)
}

/// How to look for a model.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// Where provisioned models live (default [`models_dir`]); `None`: nowhere (no models
    /// directory is looked in or provisioned into).
    pub models_dir: Option<PathBuf>,
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

    if is_directory_name(name) {
        let dir = Path::new(name);
        if !dir.is_dir() {
            tried.push(format!("directory {name}: does not exist"));
            return Err(Error::ModelNotFound {
                model: name.to_string(),
                tried,
            });
        }
        // Recorded by a library as its model: absolute, so that it means the same directory
        // wherever papersim runs next.
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let id = dir.to_str().ok_or_else(|| {
            Error::InvalidInput(format!(
                "model directory {}: the path is not valid UTF-8",
                dir.display()
            ))
        })?;
        return load_dir(id, &dir, &format!("directory {id}"));
    }
    check_repo_id(name)?;

    let canonical = known_model(name)
        .map(|m| m.id)
        .unwrap_or_else(|| name.to_string());
    let local = opts.models_dir.as_ref().map(|d| d.join(&canonical));
    match &local {
        Some(local) if has_model_files(local) => {
            return load_dir(
                &canonical,
                local,
                &format!("models directory {}", local.display()),
            )
        }
        Some(local) => tried.push(format!("models directory {}: not there", local.display())),
        None => tried.push(
            "models directory: none (set PAPERSIM_MODELS; no user cache directory is known)".into(),
        ),
    }

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
            Some(model) => match &local {
                Some(local) => {
                    for fallback in &model.fallbacks {
                        match provision(&canonical, fallback, local, progress) {
                            Ok(origin) => return load_dir(&canonical, local, &origin),
                            Err(e) => tried.push(e.to_string()),
                        }
                    }
                }
                None => tried.push("package registries: no models directory to unpack into".into()),
            },
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
        let crate::encode::known::Fallback::PypiWheel { sha256, .. } = &m.fallbacks[0] else {
            panic!("the default model comes as one wheel");
        };
        assert_eq!(sha256.len(), 64);
        let mpnet = known_model("all-mpnet-base-v2").expect("MPNet is known by its alias");
        assert_eq!(mpnet.id, "sentence-transformers/all-mpnet-base-v2");
        let crate::encode::known::Fallback::PypiSplitZip { parts, sha256, .. } =
            &mpnet.fallbacks[0]
        else {
            panic!("MPNet comes as a split zip");
        };
        assert_eq!(parts.len(), 5);
        assert!(parts.iter().all(|p| p.sha256.len() == 64) && sha256.len() == 64);
    }

    #[test]
    fn repo_ids_are_checked_and_directories_are_explicit_paths() {
        for id in [
            DEFAULT_MODEL,
            "all-MiniLM-L6-v2",
            "BAAI/bge-small-en-v1.5",
            "a_b/c.d",
        ] {
            assert!(!is_directory_name(id), "{id}");
            check_repo_id(id).unwrap();
        }
        for id in [
            "x/../../elsewhere",
            "..",
            "a/b/c",
            "owner/",
            "/abs",
            ".hidden/x",
            "owner/name.",
            "-owner/name",
            "owner/na me",
            "owner\\name",
            "",
        ] {
            let err = check_repo_id(id).unwrap_err().to_string();
            assert!(err.contains("not a Hugging Face repo id"), "{id}: {err}");
        }
        check_repo_id(&"a".repeat(97)).unwrap_err();
        for dir in ["/abs/model", "./model", "../model", ".", ".."] {
            assert!(is_directory_name(dir), "{dir}");
        }
    }

    #[test]
    fn recorded_ids_are_repo_ids_or_absolute_directories() {
        check_recorded(DEFAULT_MODEL).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        check_recorded(tmp.path().to_str().unwrap()).unwrap();
        let gone = tmp.path().join("gone");
        let err = check_recorded(gone.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("gone"), "{err}");
        for relative in ["./model", "../model"] {
            let err = check_recorded(relative).unwrap_err().to_string();
            assert!(err.contains("relative path"), "{err}");
        }
        check_recorded("x/../y").unwrap_err();
    }

    #[test]
    fn the_models_dir_is_the_variable_else_the_user_cache() {
        let cache = Some(PathBuf::from("/home/u/.cache"));
        assert_eq!(
            models_dir_from(None, cache.clone()),
            Some(PathBuf::from("/home/u/.cache/papersim/models"))
        );
        assert_eq!(
            models_dir_from(Some("/m".into()), cache),
            Some(PathBuf::from("/m"))
        );
        assert_eq!(models_dir_from(None, None), None);
    }

    #[test]
    fn paths_from_model_files_stay_inside_the_model_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("model");
        std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
        let source = dir.join("modules.json");
        assert_eq!(
            inside(&dir, "1_Pooling", &source).unwrap(),
            dir.join("1_Pooling")
        );
        inside(&dir, "./1_Pooling", &source).unwrap();
        inside(&dir, "not-there-yet", &source).unwrap();
        for bad in ["../x", "/etc", "1_Pooling/../../x", ".."] {
            let err = inside(&dir, bad, &source).unwrap_err().to_string();
            assert!(err.contains("modules.json") && err.contains(bad), "{err}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(tmp.path(), dir.join("out")).unwrap();
            let err = inside(&dir, "out", &source).unwrap_err().to_string();
            assert!(err.contains("leads out"), "{err}");
            std::os::unix::fs::symlink(dir.join("1_Pooling"), dir.join("in")).unwrap();
            inside(&dir, "in", &source).unwrap();
        }
    }
}
