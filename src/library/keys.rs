//! `keys.<g>.bin`: a base generation's index of its papers file, so that a reader finds a
//! paper by id or title and reads its one record without parsing the others. Opening a
//! library then costs the same at a million papers as at a thousand (see [`super::lazy`]).
//!
//! Layout, every number a little-endian u64:
//! - magic `PSKEYS` + format byte + 0, then `rows`, `ids` (ids and aliases), `titles`;
//! - `rows + 1` byte offsets: record `r` is bytes `offsets[r]..offsets[r+1]` of the papers
//!   file (its line, newline included);
//! - `ids` pairs (FNV-1a hash of the id, row), sorted; then `titles` pairs (hash of the
//!   normalised title, row), sorted.
//!
//! Hashes only narrow the search: a reader confirms every candidate against its record, so a
//! collision costs one more record read, never a wrong answer.

use std::path::{Path, PathBuf};

use super::record::Paper;
use crate::paper::normalize_title;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"PSKEYS\x01\x00";
const HEADER: usize = 32;

/// FNV-1a, 64-bit: stable across platforms and versions (unlike std's hasher), which a file
/// format needs.
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Encodes the index of `papers`, whose records are the lines of `jsonl` in order.
pub(crate) fn encode(jsonl: &[u8], papers: &[&Paper]) -> Vec<u8> {
    let mut offsets = Vec::with_capacity(papers.len() + 1);
    offsets.push(0u64);
    offsets.extend(
        jsonl
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i as u64 + 1),
    );
    let mut ids: Vec<(u64, u64)> = Vec::with_capacity(papers.len());
    let mut titles: Vec<(u64, u64)> = Vec::with_capacity(papers.len());
    for (row, p) in papers.iter().enumerate() {
        let row = row as u64;
        ids.push((fnv1a(&p.id), row));
        ids.extend(p.aliases.iter().map(|a| (fnv1a(a), row)));
        titles.push((fnv1a(&normalize_title(&p.title)), row));
    }
    ids.sort_unstable();
    titles.sort_unstable();
    let words = 4 + offsets.len() + 2 * (ids.len() + titles.len());
    let mut out = Vec::with_capacity(words * 8);
    out.extend_from_slice(MAGIC);
    for n in [papers.len(), ids.len(), titles.len()] {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    for (h, r) in ids.into_iter().chain(titles) {
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&r.to_le_bytes());
    }
    out
}

/// An opened keys file (mapped, or read when small).
pub(crate) struct Keys {
    path: PathBuf,
    bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
    rows: usize,
    ids: usize,
    titles: usize,
}

impl Keys {
    /// Checks the header and size of `bytes`, the keys file at `path`, which must index
    /// `rows` papers in a papers file of `papers_len` bytes.
    pub fn new(
        path: &Path,
        bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
        rows: usize,
        papers_len: u64,
    ) -> Result<Keys> {
        let bad = |reason: String| Error::Library {
            path: path.to_path_buf(),
            reason: format!("{reason}; {}", super::format::REBUILD),
        };
        let b = (*bytes).as_ref();
        if b.len() < HEADER || &b[..8] != MAGIC {
            return Err(bad("is not a papersim keys file (bad magic)".into()));
        }
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let (n, ids, titles) = (word(8), word(16), word(24));
        let expected = (n as u128 + 1 + 2 * (ids as u128 + titles as u128)) * 8 + HEADER as u128;
        if expected != b.len() as u128 {
            return Err(bad(format!(
                "is {} bytes long, but its header describes {expected}",
                b.len()
            )));
        }
        if n != rows as u64 || titles != n || ids < n {
            return Err(bad(format!(
                "indexes {n} papers ({ids} ids, {titles} titles), but the library's base generation has {rows}"
            )));
        }
        let keys = Keys {
            path: path.to_path_buf(),
            rows,
            ids: ids as usize,
            titles: titles as usize,
            bytes,
        };
        if keys.offset(rows) != papers_len {
            return Err(bad(format!(
                "ends at byte {} of the papers file, which has {papers_len}",
                keys.offset(rows)
            )));
        }
        Ok(keys)
    }

    fn word(&self, index: usize) -> u64 {
        let at = HEADER + index * 8;
        let b = &(*self.bytes).as_ref()[at..at + 8];
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    }

    fn offset(&self, row: usize) -> u64 {
        self.word(row)
    }

    /// The byte range of record `row` in the papers file.
    pub fn record_span(&self, row: usize) -> Result<std::ops::Range<usize>> {
        let (start, end) = (self.offset(row), self.offset(row + 1));
        if start > end {
            return Err(Error::Library {
                path: self.path.clone(),
                reason: format!(
                    "record {} has a negative length; {}",
                    row + 1,
                    super::format::REBUILD
                ),
            });
        }
        Ok(start as usize..end as usize)
    }

    /// Rows whose id (or an alias) may be `id`.
    pub fn id_candidates(&self, id: &str) -> Vec<usize> {
        self.candidates(self.rows + 1, self.ids, fnv1a(id))
    }

    /// Rows whose normalised title may be `title` (already normalised).
    pub fn title_candidates(&self, title: &str) -> Vec<usize> {
        self.candidates(self.rows + 1 + 2 * self.ids, self.titles, fnv1a(title))
    }

    /// The rows paired with `hash` in the sorted pair table of `len` pairs at word `first`.
    fn candidates(&self, first: usize, len: usize, hash: u64) -> Vec<usize> {
        let hash_at = |i: usize| self.word(first + 2 * i);
        let (mut lo, mut hi) = (0, len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if hash_at(mid) < hash {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..len)
            .take_while(|&i| hash_at(i) == hash)
            .map(|i| self.word(first + 2 * i + 1) as usize)
            .filter(|&r| r < self.rows)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(id: &str, title: &str, aliases: &[&str]) -> Paper {
        let mut p: Paper = serde_json::from_value(serde_json::json!({
            "id": id, "title": title, "abstract": "a", "seen_in": []
        }))
        .unwrap();
        p.aliases = aliases.iter().map(|a| a.to_string()).collect();
        p
    }

    #[test]
    fn finds_rows_by_id_alias_and_title() {
        let papers = [
            paper("2401.1", "Attention Is All", &[]),
            paper("2401.2", "Diffusion, Again", &["doi:x"]),
            paper("2401.3", "attention is all", &[]),
        ];
        let refs: Vec<&Paper> = papers.iter().collect();
        let jsonl = super::super::format::papers_jsonl(&refs).unwrap();
        let bytes = encode(&jsonl, &refs);
        let keys = Keys::new(
            Path::new("k"),
            Box::new(bytes.clone()),
            3,
            jsonl.len() as u64,
        )
        .unwrap();
        assert_eq!(keys.id_candidates("2401.2"), vec![1]);
        assert_eq!(keys.id_candidates("doi:x"), vec![1]);
        assert!(keys.id_candidates("nope").is_empty());
        let mut both = keys.title_candidates(&normalize_title("ATTENTION is all"));
        both.sort();
        assert_eq!(both, vec![0, 2]);
        let span = keys.record_span(1).unwrap();
        let line: Paper = serde_json::from_slice(&jsonl[span]).unwrap();
        assert_eq!(line.id, "2401.2");
        // A keys file for another papers file or row count is refused, not trusted.
        assert!(Keys::new(
            Path::new("k"),
            Box::new(bytes.clone()),
            2,
            jsonl.len() as u64
        )
        .is_err());
        assert!(Keys::new(Path::new("k"), Box::new(bytes.clone()), 3, 7).is_err());
        assert!(Keys::new(Path::new("k"), Box::new(bytes[..40].to_vec()), 3, 7).is_err());
    }
}
