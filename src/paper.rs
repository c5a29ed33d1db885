//! Papers and their identity: the record a digest yields, the record the library keeps,
//! and the rule that decides when two records are the same paper.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::checksum::hex;

/// `n` papers in words, for messages: "1 paper", "3 papers".
pub fn papers(n: usize) -> String {
    if n == 1 {
        "1 paper".to_string()
    } else {
        format!("{n} papers")
    }
}

/// One paper as read from a digest, before it enters the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestPaper {
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    /// arXiv id as given (a version suffix is allowed here; `paper_id` strips it).
    pub arxiv_id: Option<String>,
    /// ISO date (YYYY-MM-DD) of the paper itself, when the source gives one.
    pub date: Option<String>,
    pub url: Option<String>,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    /// 1-based line in the source file where this paper starts (for messages).
    pub line: usize,
}

impl DigestPaper {
    /// The library id of this paper (see [`paper_id`]).
    pub fn id(&self) -> String {
        paper_id(self.arxiv_id.as_deref(), &self.title)
    }

    /// The text the encoder sees: title and abstract, as sentence-transformers users embed papers.
    pub fn embedding_text(&self) -> String {
        embedding_text(&self.title, &self.abstract_text)
    }
}

/// The text that is embedded for a paper. One definition so that library papers,
/// triaged digests and `embed` agree.
pub fn embedding_text(title: &str, abstract_text: &str) -> String {
    let title = title.trim();
    let abstract_text = abstract_text.trim();
    if abstract_text.is_empty() {
        return title.to_string();
    }
    if title.ends_with(['.', '?', '!']) {
        format!("{title} {abstract_text}")
    } else {
        format!("{title}. {abstract_text}")
    }
}

/// The SHA-256 (lower-case hex) of a text that was embedded, as an exported matrix records it
/// for each row, so that an import takes a vector only for the very text it was computed from.
pub fn text_sha256(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// A paper's stable id: its arXiv id without version when known (`2405.14867v2` → `2405.14867`),
/// otherwise `t:` and 12 hex digits of the SHA-256 of its normalised title (lower case,
/// alphanumerics only, single spaces), so the same title from two digests gets the same id.
pub fn paper_id(arxiv_id: Option<&str>, title: &str) -> String {
    if let Some(id) = arxiv_id.map(str::trim).filter(|s| !s.is_empty()) {
        return strip_arxiv_version(id).to_string();
    }
    let hash = Sha256::digest(normalize_title(title).as_bytes());
    format!("t:{}", hex(&hash[..6]))
}

/// Removes a trailing `vN` version from an arXiv id.
pub fn strip_arxiv_version(id: &str) -> &str {
    if let Some(pos) = id.rfind('v') {
        let (head, tail) = id.split_at(pos);
        if tail.len() > 1 && tail[1..].bytes().all(|b| b.is_ascii_digit()) && !head.is_empty() {
            return head;
        }
    }
    id
}

/// Lower case, alphanumerics kept, every other run of characters folded to one space.
pub fn normalize_title(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    let mut pending_space = false;
    for c in title.chars() {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(c.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arxiv_version_is_stripped() {
        assert_eq!(paper_id(Some("2405.14867v2"), "x"), "2405.14867");
        assert_eq!(paper_id(Some("2405.14867"), "x"), "2405.14867");
        assert_eq!(strip_arxiv_version("cs/0112017v1"), "cs/0112017");
    }

    #[test]
    fn title_ids_ignore_case_and_punctuation() {
        let a = paper_id(None, "TÜLU 3: Pushing  Frontiers");
        let b = paper_id(None, "tülu 3 pushing frontiers ");
        assert_eq!(a, b);
        assert!(a.starts_with("t:") && a.len() == 14);
        assert_ne!(a, paper_id(None, "TÜLU 2: Pushing Frontiers"));
    }

    #[test]
    fn embedding_text_joins_title_and_abstract() {
        assert_eq!(embedding_text("A title", "Body."), "A title. Body.");
        assert_eq!(embedding_text("A title?", "Body."), "A title? Body.");
        assert_eq!(embedding_text("A title", ""), "A title");
    }
}
