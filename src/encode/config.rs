//! The model's configuration files: `config.json`'s BERT hyper-parameters, read and checked
//! once ([`BertConfig::read`]), with the feed-forward [`Activation`] that every forward pass
//! runs; and the JSON reading the other sentence-transformers files share ([`read_json`]).

use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// The non-linearity between the two feed-forward matrices, from `config.json`'s `hidden_act`
/// (`gelu` when absent, as in transformers' `BertConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum Activation {
    /// 0.5·x·(1 + erf(x/√2)): BERT's `gelu`.
    #[default]
    GeluErf,
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): `gelu_new` and `gelu_pytorch_tanh`.
    GeluTanh,
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(name: &str) -> std::result::Result<Self, String> {
        match name {
            "gelu" => Ok(Activation::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            other => Err(format!(
                "hidden_act `{other}` is not supported (gelu, gelu_new or gelu_pytorch_tanh)"
            )),
        }
    }
}

impl TryFrom<String> for Activation {
    type Error = String;
    fn try_from(name: String) -> std::result::Result<Self, String> {
        name.parse()
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Activation::GeluErf => "gelu (erf)",
            Activation::GeluTanh => "gelu (tanh approximation)",
        })
    }
}

/// The encoder families papersim's forward passes run, from `config.json`'s `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Architecture {
    /// BERT: absolute position embeddings from 0, token type embeddings.
    #[default]
    Bert,
    /// MPNet: BERT's layers plus a relative position bias (T5-style buckets, shared by all
    /// layers and added to every head's attention scores), absolute positions counted from
    /// `pad_token_id + 1`, no token type embeddings.
    Mpnet,
}

/// The BERT-family hyper-parameters papersim needs from `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    /// Which family's layout the weights follow (set from `model_type` by [`BertConfig::read`]).
    #[serde(skip)]
    pub architecture: Architecture,
    /// MPNet's number of relative position buckets (32 in every released MPNet).
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default)]
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_buckets() -> usize {
    32
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// The fields that say which architecture a `config.json` describes, read before the rest so
/// that a model of another family is reported as such rather than by its first odd setting.
#[derive(Deserialize)]
struct Family {
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
}

/// The architecture `config.json`'s `model_type` (or first `architectures` entry) names, if
/// papersim runs it (RoBERTa's position offsets, for one, differ from both).
fn architecture_of(model_type: &str) -> Option<Architecture> {
    if model_type.eq_ignore_ascii_case("bert") || model_type.starts_with("Bert") {
        Some(Architecture::Bert)
    } else if model_type.eq_ignore_ascii_case("mpnet") || model_type.starts_with("MPNet") {
        Some(Architecture::Mpnet)
    } else {
        None
    }
}

impl BertConfig {
    /// Reads `config.json` at `path` and checks that papersim can run it: a BERT or MPNet
    /// architecture, a supported `hidden_act`, and a hidden size that the heads divide.
    pub fn read(path: &Path) -> Result<BertConfig> {
        let value: serde_json::Value = read_json(path)?;
        let bad = |reason: String| Error::ModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let family = Family::deserialize(&value).map_err(|e| bad(e.to_string()))?;
        let model_type = family
            .model_type
            .or_else(|| family.architectures.into_iter().next())
            .unwrap_or_default();
        let Some(architecture) = architecture_of(&model_type) else {
            return Err(Error::UnsupportedModel {
                path: path.to_path_buf(),
                architecture: if model_type.is_empty() {
                    "(none given)".into()
                } else {
                    model_type
                },
            });
        };
        let mut config = BertConfig::deserialize(&value).map_err(|e| bad(e.to_string()))?;
        config.architecture = architecture;
        if architecture == Architecture::Mpnet
            && !(1..=1024).contains(&config.relative_attention_num_buckets)
        {
            return Err(bad(format!(
                "relative_attention_num_buckets {} is outside 1..=1024",
                config.relative_attention_num_buckets
            )));
        }
        if config.hidden_size == 0
            || config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            )));
        }
        Ok(config)
    }
}

/// Reads and parses a JSON file of the model directory; a missing or malformed file is an
/// error naming it.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::ModelFile {
            path: path.to_path_buf(),
            reason: "missing".into(),
        },
        _ => Error::io(path, e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::ModelFile {
        path: path.to_path_buf(),
        reason: format!("invalid JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
                "num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":4{extra}}}"#
            ),
        )
        .unwrap();
        (dir, path)
    }

    #[test]
    fn hidden_act_names_one_activation() {
        for (extra, want) in [
            ("", Activation::GeluErf),
            (r#","hidden_act":"gelu""#, Activation::GeluErf),
            (r#","hidden_act":"gelu_new""#, Activation::GeluTanh),
            (r#","hidden_act":"gelu_pytorch_tanh""#, Activation::GeluTanh),
        ] {
            let (_dir, path) = config(extra);
            assert_eq!(BertConfig::read(&path).unwrap().hidden_act, want, "{extra}");
        }
    }

    #[test]
    fn an_unknown_activation_is_an_error_naming_config_json() {
        let (_dir, path) = config(r#","hidden_act":"relu""#);
        let msg = BertConfig::read(&path).unwrap_err().to_string();
        assert!(
            msg.contains("config.json") && msg.contains("hidden_act `relu` is not supported"),
            "{msg}"
        );
    }

    #[test]
    fn mpnet_is_read_with_its_buckets_and_they_are_bounded() {
        let (_dir, path) = config("");
        assert_eq!(
            BertConfig::read(&path).unwrap().architecture,
            Architecture::Bert
        );
        let mpnet = |extra: &str| {
            std::fs::write(
                &path,
                format!(
                    r#"{{"model_type":"mpnet","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
                    "num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":4{extra}}}"#
                ),
            )
            .unwrap();
            BertConfig::read(&path)
        };
        let c = mpnet("").unwrap();
        assert_eq!(c.architecture, Architecture::Mpnet);
        assert_eq!(
            c.relative_attention_num_buckets, 32,
            "transformers' default"
        );
        assert_eq!(
            mpnet(r#","relative_attention_num_buckets":64"#)
                .unwrap()
                .relative_attention_num_buckets,
            64
        );
        let msg = mpnet(r#","relative_attention_num_buckets":0"#)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("config.json") && msg.contains("relative_attention_num_buckets 0"),
            "{msg}"
        );
    }

    #[test]
    fn another_architecture_is_reported_before_its_settings() {
        let (_dir, path) = config(r#","hidden_act":"relu","architectures":["GPT2LMHeadModel"]"#);
        std::fs::write(
            &path,
            std::fs::read_to_string(&path)
                .unwrap()
                .replace(r#""model_type":"bert","#, ""),
        )
        .unwrap();
        let msg = BertConfig::read(&path).unwrap_err().to_string();
        assert!(msg.contains("GPT2LMHeadModel"), "{msg}");
    }
}
