//! `keys.<g>.bin`: a base generation's index of its papers file, so that a reader finds a
//! paper by id or title and reads its one record without parsing the others. Opening a
//! library then costs the same at a million papers as at a thousand (see [`super::lazy`]).
//!
//! Layout, every number a little-endian u64:
//! - magic `PSKEYS` + format byte + 0, then `rows`, `ids` (ids and aliases), `titles`, and in
//!   format 2 `frames`;
//! - `rows + 1` byte offsets: record `r` is bytes `offsets[r]..offsets[r+1]` of the records
//!   (its line, newline included);
//! - format 2 only (a compressed papers file, see [`super::blocks`]): `frames + 1` offsets
//!   where each frame starts in the file, then `frames + 1` offsets where it starts in the
//!   records, each list ending with the end;
//! - `ids` pairs (FNV-1a hash of the id, row), sorted; then `titles` pairs (hash of the
//!   normalised title, row), sorted.
//!
//! Hashes only narrow the search: a reader confirms every candidate against its record, so a
//! collision costs one more record read, never a wrong answer.

use std::path::{Path, PathBuf};

use super::blocks::FrameStart;
use super::record::Paper;
use crate::paper::normalize_title;
use crate::{Error, Result};

/// Format 1: the records lie in the papers file as they are.
const MAGIC: &[u8; 8] = b"PSKEYS\x01\x00";
/// Format 2: the papers file is compressed in frames, and the keys say where each starts.
const MAGIC_FRAMED: &[u8; 8] = b"PSKEYS\x02\x00";

/// FNV-1a, 64-bit: stable across platforms and versions (unlike std's hasher), which a file
/// format needs.
pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Encodes the index of `papers`, whose records are the lines of `jsonl` in order, stored as
/// they are or, given `frames`, compressed in those frames.
pub(crate) fn encode(jsonl: &[u8], papers: &[&Paper], frames: Option<&[FrameStart]>) -> Vec<u8> {
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
    let frame_words = frames.map_or(0, |f| 1 + 2 * f.len());
    let words = 4 + offsets.len() + frame_words + 2 * (ids.len() + titles.len());
    let mut out = Vec::with_capacity(words * 8);
    out.extend_from_slice(if frames.is_some() {
        MAGIC_FRAMED
    } else {
        MAGIC
    });
    let mut counts = vec![papers.len(), ids.len(), titles.len()];
    counts.extend(frames.map(|f| f.len() - 1));
    for n in counts {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    for f in frames.unwrap_or_default() {
        out.extend_from_slice(&f.compressed.to_le_bytes());
    }
    for f in frames.unwrap_or_default() {
        out.extend_from_slice(&f.records.to_le_bytes());
    }
    for (h, r) in ids.into_iter().chain(titles) {
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&r.to_le_bytes());
    }
    out
}

/// One frame of a compressed papers file: its bytes in the file and the records it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub index: usize,
    pub compressed: std::ops::Range<usize>,
    pub records: std::ops::Range<usize>,
}

/// An opened keys file (mapped, or read when small).
pub(crate) struct Keys {
    path: PathBuf,
    bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
    /// Bytes before the offsets.
    header: usize,
    rows: usize,
    ids: usize,
    titles: usize,
    /// Frames of a compressed papers file; `None` for one stored as it is.
    frames: Option<usize>,
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
        let framed = match b.get(..8) {
            Some(m) if m == MAGIC => false,
            Some(m) if m == MAGIC_FRAMED => true,
            _ => return Err(bad("is not a papersim keys file (bad magic)".into())),
        };
        let header = if framed { 40 } else { 32 };
        if b.len() < header {
            return Err(bad(format!(
                "is {} bytes long, shorter than its header",
                b.len()
            )));
        }
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let (n, ids, titles) = (word(8), word(16), word(24));
        let frames = framed.then(|| word(32));
        let frame_words = frames.map_or(0, |f| 2 * (f as u128 + 1));
        let expected =
            (n as u128 + 1 + frame_words + 2 * (ids as u128 + titles as u128)) * 8 + header as u128;
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
            header,
            rows,
            ids: ids as usize,
            titles: titles as usize,
            frames: frames.map(|f| f as usize),
            bytes,
        };
        let records_end = keys.offset(rows);
        let file_end = match keys.frames {
            Some(f) => {
                let (first, last) = (keys.frame_start(0), keys.frame_start(f));
                if first
                    != (FrameStart {
                        compressed: 0,
                        records: 0,
                    })
                    || last.records != records_end
                {
                    return Err(bad(format!(
                        "its frames cover records {}..{} of the papers file, not 0..{records_end}",
                        first.records, last.records
                    )));
                }
                last.compressed
            }
            None => records_end,
        };
        if file_end != papers_len {
            return Err(bad(format!(
                "ends at byte {file_end} of the papers file, which has {papers_len}"
            )));
        }
        Ok(keys)
    }

    fn word(&self, index: usize) -> u64 {
        let at = self.header + index * 8;
        let b = &(*self.bytes).as_ref()[at..at + 8];
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    }

    fn offset(&self, row: usize) -> u64 {
        self.word(row)
    }

    /// Where frame `i` (`0..=frames`, the last one the end) starts; framed keys only.
    fn frame_start(&self, i: usize) -> FrameStart {
        let frames = self.frames.expect("framed keys") + 1;
        FrameStart {
            compressed: self.word(self.rows + 1 + i),
            records: self.word(self.rows + 1 + frames + i),
        }
    }

    /// Word index of the first (hash, row) pair.
    fn pairs(&self) -> usize {
        self.rows + 1 + self.frames.map_or(0, |f| 2 * (f + 1))
    }

    fn damaged(&self, reason: String) -> Error {
        Error::Library {
            path: self.path.clone(),
            reason: format!("{reason}; {}", super::format::REBUILD),
        }
    }

    /// The byte range of record `row` in the records (the papers file, or what its frames
    /// decompress to).
    pub fn record_span(&self, row: usize) -> Result<std::ops::Range<usize>> {
        let (start, end) = (self.offset(row), self.offset(row + 1));
        if start > end {
            return Err(self.damaged(format!("record {} has a negative length", row + 1)));
        }
        Ok(start as usize..end as usize)
    }

    /// The number of frames of a compressed papers file (`None`: stored as it is).
    pub fn frames(&self) -> Option<usize> {
        self.frames
    }

    /// Frame `index` of a compressed papers file.
    pub fn frame(&self, index: usize) -> Result<Frame> {
        let (a, b) = (self.frame_start(index), self.frame_start(index + 1));
        if a.compressed > b.compressed || a.records > b.records {
            return Err(self.damaged(format!("frame {index} has a negative length")));
        }
        Ok(Frame {
            index,
            compressed: a.compressed as usize..b.compressed as usize,
            records: a.records as usize..b.records as usize,
        })
    }

    /// The frame holding the record that starts at byte `record_start` of the records.
    pub fn frame_of(&self, record_start: usize) -> Result<Frame> {
        let frames = self.frames.expect("framed keys");
        // The last frame whose records start at or before `record_start`.
        let (mut lo, mut hi) = (0, frames);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.frame_start(mid).records as usize <= record_start {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let frame = self.frame(lo)?;
        if !frame.records.contains(&record_start) {
            return Err(self.damaged(format!("no frame holds byte {record_start} of the records")));
        }
        Ok(frame)
    }

    /// Rows whose id (or an alias) may be `id`.
    pub fn id_candidates(&self, id: &str) -> Vec<usize> {
        self.candidates(self.pairs(), self.ids, fnv1a(id))
    }

    /// Rows whose normalised title may be `title` (already normalised).
    pub fn title_candidates(&self, title: &str) -> Vec<usize> {
        self.candidates(self.pairs() + 2 * self.ids, self.titles, fnv1a(title))
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
        let bytes = encode(&jsonl, &refs, None);
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

    #[test]
    fn framed_keys_find_each_record_in_its_frame() {
        let papers: Vec<Paper> = (0..3000)
            .map(|i| paper(&format!("2401.{i}"), &format!("Paper number {i}"), &[]))
            .collect();
        let refs: Vec<&Paper> = papers.iter().collect();
        let jsonl = super::super::format::papers_jsonl(&refs).unwrap();
        let framed = super::super::blocks::compress(&jsonl).unwrap();
        assert!(framed.starts.len() > 3);
        let bytes = encode(&jsonl, &refs, Some(&framed.starts));
        let file_len = framed.bytes.len() as u64;
        let keys = Keys::new(Path::new("k"), Box::new(bytes.clone()), 3000, file_len).unwrap();
        assert_eq!(keys.frames(), Some(framed.starts.len() - 1));
        for row in [0, 1, 1234, 2999] {
            let span = keys.record_span(row).unwrap();
            let frame = keys.frame_of(span.start).unwrap();
            assert!(frame.records.start <= span.start && span.end <= frame.records.end);
            let data = super::super::blocks::decompress_frame(
                &framed.bytes[frame.compressed.clone()],
                frame.records.len(),
            )
            .unwrap();
            let at = frame.records.start;
            let p: Paper = serde_json::from_slice(&data[span.start - at..span.end - at]).unwrap();
            assert_eq!(p.id, format!("2401.{row}"));
        }
        assert_eq!(keys.id_candidates("2401.77"), vec![77]);
        assert_eq!(
            keys.title_candidates(&normalize_title("paper NUMBER 5")),
            vec![5]
        );
        // Keys for another compressed file (or the records' plain length) are refused.
        assert!(Keys::new(
            Path::new("k"),
            Box::new(bytes.clone()),
            3000,
            jsonl.len() as u64
        )
        .is_err());
        assert!(Keys::new(Path::new("k"), Box::new(bytes), 3000, file_len + 1).is_err());
    }
}
