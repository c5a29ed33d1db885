//! The paper record the library keeps, and where it was seen.

use serde::{Deserialize, Serialize};

use crate::paper::embedding_text;

/// Where a paper was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenIn {
    pub digest: String,
    pub date: Option<String>,
}

/// A paper as the library keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paper {
    pub id: String,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    pub date: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    pub seen_in: Vec<SeenIn>,
    /// Other ids this paper was read under (another version's id, merged into it because the
    /// title and abstract agree); they resolve to it. Absent in libraries written before
    /// papersim kept aliases, and in records without any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl Paper {
    pub fn text(&self) -> String {
        embedding_text(&self.title, &self.abstract_text)
    }
    /// Dates of the digests this paper appeared in, plus its own date.
    pub fn dates(&self) -> impl Iterator<Item = &str> {
        self.seen_in
            .iter()
            .filter_map(|s| s.date.as_deref())
            .chain(self.date.as_deref())
    }
    pub fn first_seen(&self) -> Option<&str> {
        self.dates().min()
    }
    pub fn last_seen(&self) -> Option<&str> {
        self.dates().max()
    }
}
