//! The reader's stored feedback: liked papers (per tag), disliked papers and papers seen, kept
//! in an append-only log beside the library's files (`<library>/feedback.jsonl`, see
//! docs/feedback.md for why a log).
//!
//! Each line is one [`Record`] (`like`, `dislike`, `forget` or `seen`, with the paper's id and
//! title and the time); the reader's state ([`Feedback`]) is the records folded in order. The
//! log names papers by id (stable across re-ingests, compaction and rebuilds, which never
//! touch the log) and keeps their titles, so a paper stays in the profile even when another
//! library is asked about it. Appends go through [`crate::directory::append_lines`]: locked,
//! fsynced, a torn tail left by a killed appender cut before the next write; reading ignores
//! such a tail (it was never acknowledged) and refuses any other malformed line, naming it.
//!
//! The reader's reference library is read for `papersim import` by [`import`] (BibTeX, CSL
//! JSON, a Zotero database), and liked papers are written out by [`export`].
//!
//! May import: `crate::directory`, `crate::paper`, `crate::error`. Never the library: the
//! caller resolves what a reader named to ids and titles, and the log stores those.

pub mod export;
pub mod import;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::directory::append_lines;
use crate::paper::normalize_title;
use crate::{Error, Result};

/// The log's name in the library directory.
pub const LOG: &str = "feedback.jsonl";
/// The tag of likes given without `--tag`.
pub const DEFAULT_TAG: &str = "default";
/// Longest tag name, in characters: a tag is a short label shown in tables.
pub const MAX_TAG_CHARS: usize = 64;

/// What a record says about its paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Liked, under `tag`.
    Like,
    /// Disliked (its likes are dropped).
    Dislike,
    /// Everything said of it dropped (with a tag: only that tag's like).
    Forget,
    /// Shown to the reader (`seen`, or `triage` marking what it showed).
    Seen,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// UTC time, RFC 3339 (`2026-12-05T10:00:00Z`).
    pub at: String,
    pub op: Op,
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl Record {
    /// A record of now.
    pub fn now(op: Op, id: &str, title: &str, tag: Option<&str>) -> Record {
        Record {
            at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            op,
            id: id.to_string(),
            title: title.to_string(),
            tag: tag.map(str::to_string),
        }
    }
}

/// Refuses a tag name that would not read back or show as given, saying why.
pub fn check_tag(tag: &str) -> Result<()> {
    let chars = tag.chars().count();
    let why = if tag.trim().is_empty() {
        "is empty"
    } else if tag.trim() != tag {
        "starts or ends with spaces"
    } else if chars > MAX_TAG_CHARS {
        "is longer than 64 characters (a tag is a short label)"
    } else if tag.chars().any(char::is_control) {
        "holds a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidInput(format!(
        "tag `{}` {why}",
        tag.escape_debug()
    )))
}

/// A paper the reader said something about: its id, title and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub id: String,
    pub title: String,
    /// When it was said (the latest record that set it).
    pub at: String,
}

/// What the reader thinks of one paper, folded from its records.
#[derive(Debug, Clone, Default)]
struct PaperState {
    title: String,
    /// Tag → when liked under it.
    liked: BTreeMap<String, String>,
    disliked: Option<String>,
    seen: Option<String>,
    /// Order of first mention, so that listings are stable.
    order: usize,
}

/// The reader's feedback: the log's records folded in order.
#[derive(Debug, Clone, Default)]
pub struct Feedback {
    papers: HashMap<String, PaperState>,
    records: usize,
}

impl Feedback {
    /// Folds records, oldest first.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Feedback {
        let mut f = Feedback::default();
        for r in records {
            f.apply(r);
        }
        f
    }

    fn apply(&mut self, r: &Record) {
        self.records += 1;
        let order = self.papers.len();
        if r.op == Op::Forget {
            match &r.tag {
                Some(tag) => {
                    if let Some(p) = self.papers.get_mut(&r.id) {
                        p.liked.remove(tag);
                    }
                }
                None => {
                    self.papers.remove(&r.id);
                }
            }
            return;
        }
        let p = self
            .papers
            .entry(r.id.clone())
            .or_insert_with(|| PaperState {
                order,
                ..PaperState::default()
            });
        p.title = r.title.clone();
        // Saying anything of a paper means it was seen.
        p.seen = Some(r.at.clone());
        match r.op {
            Op::Like => {
                p.disliked = None;
                p.liked.insert(
                    r.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_string()),
                    r.at.clone(),
                );
            }
            Op::Dislike => {
                p.liked.clear();
                p.disliked = Some(r.at.clone());
            }
            Op::Seen | Op::Forget => {}
        }
    }

    /// How many records were folded.
    pub fn records(&self) -> usize {
        self.records
    }

    fn sorted(&self) -> Vec<(&String, &PaperState)> {
        let mut v: Vec<_> = self.papers.iter().collect();
        v.sort_by_key(|(_, p)| p.order);
        v
    }

    /// Tag → its liked papers, in the order first mentioned; tags sorted by name.
    pub fn likes(&self) -> BTreeMap<String, Vec<Mark>> {
        let mut out: BTreeMap<String, Vec<Mark>> = BTreeMap::new();
        for (id, p) in self.sorted() {
            for (tag, at) in &p.liked {
                out.entry(tag.clone()).or_default().push(Mark {
                    id: id.clone(),
                    title: p.title.clone(),
                    at: at.clone(),
                });
            }
        }
        out
    }

    /// The disliked papers, in the order first mentioned.
    pub fn dislikes(&self) -> Vec<Mark> {
        self.sorted()
            .into_iter()
            .filter_map(|(id, p)| {
                p.disliked.as_ref().map(|at| Mark {
                    id: id.clone(),
                    title: p.title.clone(),
                    at: at.clone(),
                })
            })
            .collect()
    }

    /// Whether the reader has seen (or liked, or disliked) a paper of this id, or of this
    /// title (compared normalised, so that a copy under another id counts too).
    pub fn is_seen(&self, id: &str, title: &str) -> bool {
        if self.papers.get(id).is_some_and(|p| p.seen.is_some()) {
            return true;
        }
        let title = normalize_title(title);
        !title.is_empty()
            && self
                .papers
                .values()
                .any(|p| p.seen.is_some() && normalize_title(&p.title) == title)
    }

    /// The set of normalised titles of seen papers (for checking many papers at once).
    pub fn seen_titles(&self) -> std::collections::HashSet<String> {
        self.papers
            .values()
            .filter(|p| p.seen.is_some())
            .map(|p| normalize_title(&p.title))
            .collect()
    }

    /// Whether a paper of this id was seen.
    pub fn seen_id(&self, id: &str) -> bool {
        self.papers.get(id).is_some_and(|p| p.seen.is_some())
    }

    /// How many papers were seen.
    pub fn seen_count(&self) -> usize {
        self.papers.values().filter(|p| p.seen.is_some()).count()
    }
}

/// The feedback log of the library in `root`.
#[derive(Debug, Clone)]
pub struct Log {
    path: PathBuf,
}

impl Log {
    pub fn of_library(root: &Path) -> Log {
        Log {
            path: root.join(LOG),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record, oldest first (none when there is no log yet). A last line without its
    /// `\n` is a write that was killed before it was acknowledged, and is ignored; any other
    /// line that is not a record is an error naming the file and line.
    pub fn read(&self) -> Result<Vec<Record>> {
        let bytes = match std::fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
            Ok(m) if !m.file_type().is_file() => {
                return Err(Error::Library {
                    path: self.path.clone(),
                    reason: format!(
                        "is a {}, not papersim's feedback log",
                        crate::directory::file_kind(&m.file_type())
                    ),
                })
            }
            Ok(_) => std::fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?,
        };
        let whole = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => &bytes[..=i],
            None => &[][..],
        };
        let mut out = Vec::new();
        for (i, line) in whole.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record: Record = serde_json::from_slice(line).map_err(|e| Error::Library {
                path: self.path.clone(),
                reason: format!(
                    "line {} is not a feedback record ({e}); papersim only appends whole records, so the file was edited or damaged: fix or remove that line",
                    i + 1
                ),
            })?;
            if let Some(tag) = &record.tag {
                check_tag(tag).map_err(|e| Error::Library {
                    path: self.path.clone(),
                    reason: format!("line {}: {e}", i + 1),
                })?;
            }
            out.push(record);
        }
        Ok(out)
    }

    /// The reader's feedback as the log says.
    pub fn feedback(&self) -> Result<Feedback> {
        Ok(Feedback::from_records(&self.read()?))
    }

    /// Appends records, durably, in one write: when this returns they survive a crash.
    pub fn append(&self, records: &[Record]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for r in records {
            if let Some(tag) = &r.tag {
                check_tag(tag)?;
            }
            serde_json::to_writer(&mut bytes, r).map_err(|e| Error::io(&self.path, e.into()))?;
            bytes.push(b'\n');
        }
        append_lines(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(op: Op, id: &str, tag: Option<&str>) -> Record {
        Record {
            at: "2026-01-01T00:00:00Z".into(),
            op,
            id: id.into(),
            title: format!("Title {id}"),
            tag: tag.map(str::to_string),
        }
    }

    #[test]
    fn records_fold_in_order() {
        let f = Feedback::from_records(&[
            rec(Op::Like, "a", Some("x")),
            rec(Op::Like, "a", Some("y")),
            rec(Op::Like, "b", None),
            rec(Op::Dislike, "b", None),
            rec(Op::Forget, "a", Some("x")),
            rec(Op::Seen, "c", None),
            rec(Op::Like, "d", None),
            rec(Op::Forget, "d", None),
        ]);
        let likes = f.likes();
        assert_eq!(likes.keys().collect::<Vec<_>>(), ["y"]);
        assert_eq!(likes["y"][0].id, "a");
        assert_eq!(f.dislikes()[0].id, "b");
        assert!(f.is_seen("c", "whatever") && f.is_seen("zz", "Title c"));
        assert!(!f.is_seen("d", "Title d"), "forgotten entirely");
    }

    #[test]
    fn tags_are_checked() {
        assert!(check_tag("diffusion").is_ok());
        for bad in ["", " x", "a\u{1b}b", &"t".repeat(65)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_torn_tail_is_ignored_and_cut_by_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::of_library(dir.path());
        log.append(&[rec(Op::Like, "a", None)]).unwrap();
        let mut bytes = std::fs::read(log.path()).unwrap();
        bytes.extend_from_slice(b"{\"at\":\"2026");
        std::fs::write(log.path(), &bytes).unwrap();
        assert_eq!(log.read().unwrap().len(), 1);
        log.append(&[rec(Op::Like, "b", None)]).unwrap();
        let ids: Vec<String> = log.read().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
