//! A library opened for reading ([`Library::open_for_reading`]): its base generation's papers
//! file is mapped and indexed by its keys file ([`super::keys`]), so that a command resolves
//! the papers it names and reads the records of the results it prints, not every record. The
//! segments' records (a tenth of the base at most, see [`super::merge_policy`]) are read whole.
//!
//! A library written before keys files existed (format version 2 and older) has none: it is
//! opened whole, as [`Library::open`] does, until its next full commit or `index rebuild`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use super::format::{map_checked, REBUILD, RESTORE};
use super::keys::{Frame, Keys};
use super::record::Paper;
use super::{lib_err, Library};
use crate::paper::normalize_title;
use crate::{Error, Result};

/// The base generation's records, read one at a time, and the segments' records.
pub(crate) struct LazyRecords {
    path: PathBuf,
    records: Box<dyn AsRef<[u8]> + Send + Sync>,
    keys: Keys,
    base_rows: usize,
    /// Base rows whose records a segment replaced (new sightings, aliases).
    updated: HashMap<usize, Paper>,
    /// Rows `base_rows..`, added by segments.
    tail: Vec<Paper>,
    /// Ids and aliases of the segments' records (added and updated) → row.
    tail_ids: HashMap<String, usize>,
    /// Normalised titles of the added records → rows.
    tail_titles: HashMap<String, Vec<usize>>,
    /// Every record, parsed on first need (a title fragment to search, a full listing).
    all: OnceLock<Vec<Paper>>,
    /// The frames of a compressed papers file read last, within the most decompressed bytes
    /// they may hold.
    frames: Mutex<FrameCache>,
}

/// Decompressed bytes a reader keeps by default: a ranking reads the records of its few dozen
/// candidates, often several from one frame (64 KiB each, so this is 8 frames).
const DEFAULT_RECORD_CACHE: usize = 8 * super::blocks::FRAME_BYTES;

/// Decompressed frames within a budget of bytes, the least recently used dropped first. A
/// server's budget holds thousands of frames and every record read looks one up, so both a
/// lookup and a drop cost a map access, not a pass over the frames.
struct FrameCache {
    /// Frame index → (its last use, its bytes).
    frames: HashMap<usize, (u64, Arc<Vec<u8>>)>,
    /// Last use → frame index, the oldest first.
    by_use: BTreeMap<u64, usize>,
    uses: u64,
    bytes: usize,
    budget: usize,
}

impl FrameCache {
    fn new(budget: usize) -> FrameCache {
        FrameCache {
            frames: HashMap::new(),
            by_use: BTreeMap::new(),
            uses: 0,
            bytes: 0,
            budget,
        }
    }

    fn get(&mut self, index: usize) -> Option<Arc<Vec<u8>>> {
        let (used, data) = self.frames.get_mut(&index)?;
        self.by_use.remove(used);
        self.uses += 1;
        *used = self.uses;
        self.by_use.insert(self.uses, index);
        Some(data.clone())
    }

    fn put(&mut self, index: usize, data: Arc<Vec<u8>>) {
        if self.frames.contains_key(&index) {
            return;
        }
        self.uses += 1;
        self.bytes += data.len();
        self.frames.insert(index, (self.uses, data));
        self.by_use.insert(self.uses, index);
        self.shrink();
    }

    /// Drops the least recently used frames past the budget (always keeping the newest).
    fn shrink(&mut self) {
        while self.bytes > self.budget && self.frames.len() > 1 {
            let Some((_, index)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((_, old)) = self.frames.remove(&index) {
                self.bytes -= old.len();
            }
        }
    }
}

impl LazyRecords {
    /// Maps the base papers file `path` (of `base_rows` records, `sum` its checksum) with its
    /// keys file `keys_path`.
    pub fn open(
        path: &Path,
        sum: Option<&super::FileSum>,
        keys_path: &Path,
        keys_sum: Option<&super::FileSum>,
        base_rows: usize,
    ) -> Result<LazyRecords> {
        let records = map_checked(path, sum, RESTORE)?;
        let papers_len = (*records).as_ref().len() as u64;
        // The keys are derived from the papers file: a damaged one is rebuilt, not restored.
        let keys = map_checked(keys_path, keys_sum, REBUILD)?;
        let keys = Keys::new(keys_path, keys, base_rows, papers_len)?;
        Ok(LazyRecords {
            path: path.to_path_buf(),
            records,
            keys,
            base_rows,
            updated: HashMap::new(),
            tail: Vec::new(),
            tail_ids: HashMap::new(),
            tail_titles: HashMap::new(),
            all: OnceLock::new(),
            frames: Mutex::new(FrameCache::new(DEFAULT_RECORD_CACHE)),
        })
    }

    /// Adds a segment's records: `added` new papers (the next rows), then `updated` records
    /// of stored papers. `segment` names the file in errors.
    pub fn add_segment(&mut self, segment: &Path, records: Vec<Paper>, added: usize) -> Result<()> {
        let seg_err = |reason: String| Error::Library {
            path: segment.to_path_buf(),
            reason,
        };
        let mut records = records.into_iter();
        for p in records.by_ref().take(added) {
            if self.row_of_id(&p.id)?.is_some() {
                return Err(seg_err(format!("adds paper {} a second time", p.id)));
            }
            let row = self.len();
            self.index_tail(row, &p);
            self.tail_titles
                .entry(normalize_title(&p.title))
                .or_default()
                .push(row);
            self.tail.push(p);
        }
        for p in records {
            // A paper that took an arXiv id is found by its old id, now an alias.
            let mut row = None;
            for id in std::iter::once(&p.id).chain(&p.aliases) {
                row = self.row_of_id(id)?;
                if row.is_some() {
                    break;
                }
            }
            let row =
                row.ok_or_else(|| seg_err(format!("updates paper {}, which is not stored", p.id)))?;
            self.index_tail(row, &p);
            if row < self.base_rows {
                self.updated.insert(row, p);
            } else {
                self.tail[row - self.base_rows] = p;
            }
        }
        Ok(())
    }

    fn index_tail(&mut self, row: usize, p: &Paper) {
        for id in std::iter::once(&p.id).chain(&p.aliases) {
            self.tail_ids.insert(id.clone(), row);
        }
    }

    pub fn len(&self) -> usize {
        self.base_rows + self.tail.len()
    }

    /// The record of `row`.
    pub fn paper(&self, row: usize) -> Result<Cow<'_, Paper>> {
        if let Some(all) = self.all.get() {
            return Ok(Cow::Borrowed(&all[row]));
        }
        if row >= self.base_rows {
            return Ok(Cow::Borrowed(&self.tail[row - self.base_rows]));
        }
        if let Some(p) = self.updated.get(&row) {
            return Ok(Cow::Borrowed(p));
        }
        self.parse_record(row, &|frame| self.cached_frame(frame))
            .map(Cow::Owned)
    }

    /// Parses the base record of `row`, reading a compressed papers file's frames through
    /// `frame_bytes`.
    fn parse_record(
        &self,
        row: usize,
        frame_bytes: &dyn Fn(&Frame) -> Result<Arc<Vec<u8>>>,
    ) -> Result<Paper> {
        let span = self.keys.record_span(row)?;
        let file = (*self.records).as_ref();
        let parsed = match self.keys.frames() {
            None => {
                let bytes = file
                    .get(span)
                    .ok_or_else(|| self.damaged(row, "lies outside the file".into()))?;
                serde_json::from_slice(bytes)
            }
            Some(_) => {
                let frame = self.keys.frame_of(span.start)?;
                if span.end > frame.records.end {
                    return Err(self.damaged(row, "runs past the end of its frame".into()));
                }
                let data = frame_bytes(&frame)?;
                let at = frame.records.start;
                serde_json::from_slice(&data[span.start - at..span.end - at])
            }
        };
        parsed.map_err(|e| self.damaged(row, e.to_string()))
    }

    /// Decompresses frame `frame` of the papers file.
    fn decompress(&self, frame: &Frame) -> Result<Vec<u8>> {
        let bytes = (*self.records)
            .as_ref()
            .get(frame.compressed.clone())
            .ok_or_else(|| self.damaged_frame(frame, "lies outside the file".into()))?;
        super::blocks::decompress_frame(bytes, frame.records.len())
            .map_err(|reason| self.damaged_frame(frame, reason))
    }

    /// Frame `frame`, decompressed or from the cache.
    fn cached_frame(&self, frame: &Frame) -> Result<Arc<Vec<u8>>> {
        let cache = || self.frames.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(data) = cache().get(frame.index) {
            return Ok(data);
        }
        // Decompressed outside the lock: other readers' hits need not wait for it.
        let data = Arc::new(self.decompress(frame)?);
        cache().put(frame.index, data.clone());
        Ok(data)
    }

    /// Keeps up to `bytes` of decompressed records for later reads (at least the frame read
    /// last), rather than [`DEFAULT_RECORD_CACHE`].
    pub fn set_record_cache(&self, bytes: usize) {
        let mut cache = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        cache.budget = bytes;
        cache.shrink();
    }

    fn damaged_frame(&self, frame: &Frame, reason: String) -> Error {
        Error::Library {
            path: self.path.clone(),
            reason: format!(
                "frame {} (bytes {}..{}): {reason}; {RESTORE}",
                frame.index, frame.compressed.start, frame.compressed.end
            ),
        }
    }

    fn damaged(&self, row: usize, reason: String) -> Error {
        Error::Library {
            path: self.path.clone(),
            reason: format!("record {} (line {}): {reason}; {RESTORE}", row, row + 1),
        }
    }

    /// The row of the paper with this id or alias.
    pub fn row_of_id(&self, id: &str) -> Result<Option<usize>> {
        if let Some(&row) = self.tail_ids.get(id) {
            return Ok(Some(row));
        }
        for row in self.keys.id_candidates(id) {
            let p = self.paper(row)?;
            if p.id == id || p.aliases.iter().any(|a| a == id) {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// The rows of the papers with this normalised title, in row order.
    pub fn rows_of_title(&self, title: &str) -> Result<Vec<usize>> {
        let mut rows = Vec::new();
        for row in self.keys.title_candidates(title) {
            if normalize_title(&self.paper(row)?.title) == title {
                rows.push(row);
            }
        }
        rows.sort_unstable();
        rows.extend(self.tail_titles.get(title).into_iter().flatten());
        Ok(rows)
    }

    /// Every record, in row order (parsed once, on both cores).
    pub fn all(&self) -> Result<&[Paper]> {
        if let Some(all) = self.all.get() {
            return Ok(all);
        }
        // A compressed file is decompressed whole first (every frame once, on both cores).
        let frames: Vec<Arc<Vec<u8>>> = match self.keys.frames() {
            Some(n) => (0..n)
                .into_par_iter()
                .map(|i| Ok(Arc::new(self.decompress(&self.keys.frame(i)?)?)))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let mut all: Vec<Paper> = (0..self.base_rows)
            .into_par_iter()
            .map(|row| match self.updated.get(&row) {
                Some(p) => Ok(p.clone()),
                None => self.parse_record(row, &|f| Ok(frames[f.index].clone())),
            })
            .collect::<Result<_>>()?;
        all.extend(self.tail.iter().cloned());
        Ok(self.all.get_or_init(|| all))
    }
}

impl Library {
    /// Opens a library for reading (a search, a recommendation): the vectors and the papers
    /// file are mapped, not read, and records are parsed when asked for, so opening costs the
    /// same at any size. Writing needs [`Library::open`] (a library opened for reading is
    /// refused by every method that changes it).
    pub fn open_for_reading(root: &Path) -> Result<Library> {
        Library::open_lazily(root)
    }

    /// Fails for a library opened with [`Library::open_for_reading`]: `what` would change it.
    pub(crate) fn writable(&self, what: &str) -> Result<()> {
        if self.lazy.is_some() {
            return Err(lib_err(
                &self.root,
                format!("was opened for reading, so it cannot {what}; open it with Library::open"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: usize) -> Arc<Vec<u8>> {
        Arc::new(vec![0; bytes])
    }

    #[test]
    fn frame_cache_drops_the_least_recently_used_past_its_budget() {
        let mut cache = FrameCache::new(30);
        for index in 0..3 {
            cache.put(index, frame(10));
        }
        // A read makes frame 0 the most recent, so frame 1 is the first to go.
        assert!(cache.get(0).is_some());
        cache.put(3, frame(10));
        assert!(cache.get(1).is_none());
        assert!(cache.get(0).is_some() && cache.get(2).is_some() && cache.get(3).is_some());
        assert_eq!(cache.bytes, 30);
        // A frame already kept is not counted twice.
        cache.put(3, frame(10));
        assert_eq!(cache.bytes, 30);
        // A frame larger than the whole budget is still kept, alone, as the newest.
        cache.put(9, frame(100));
        assert_eq!((cache.frames.len(), cache.bytes), (1, 100));
        assert!(cache.get(9).is_some());
        // A smaller budget drops the oldest at once; 0 keeps only the newest.
        cache.put(10, frame(10));
        cache.budget = 0;
        cache.shrink();
        assert_eq!((cache.frames.len(), cache.bytes), (1, 10));
        assert!(cache.get(10).is_some());
        assert_eq!(cache.by_use.len(), cache.frames.len());
    }
}
