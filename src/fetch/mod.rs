//! Fetching new papers from their sources: the Hugging Face daily-papers API ([`hf`]) and the
//! arXiv API ([`arxiv`]), over one small HTTP client ([`http`]: User-Agent, proxies from the
//! environment, timeouts, redirects, a politeness interval, retries with backoff and
//! `Retry-After`). A fetch yields [`Digest`]s, the same records a digest file gives, so the
//! caller ingests them through the ordinary pipeline (embedding only new papers), writes them
//! out as a JSONL digest, or lists them. Nothing else in papersim touches the network for
//! papers.
//!
//! A long arXiv fetch can be resumed: the caller records the [`arxiv::Cursor`] after each page
//! it ingested in the library's `fetch-state.json` ([`save_cursor`]), and the next run of the
//! same query starts there ([`load_cursor`]); a finished fetch removes the file.
//!
//! May import: `crate::error`, `crate::paper`, `crate::digest` (the records and their size
//! limits) and `crate::directory` (the state file's atomic write). Never `crate::library` or
//! `crate::rank`: a fetch produces digests and knows nothing of where they are stored.

pub mod arxiv;
pub mod hf;
pub mod http;

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, MAX_ABSTRACT_BYTES, MAX_TITLE_BYTES};
use crate::error::{Error, Result};
use crate::paper::DigestPaper;

pub use http::{Client, HttpSettings};

/// The environment variable that shortens the arXiv politeness interval, for tests against a
/// local server only (see docs/fetch.md); arXiv itself asks for 3,000 ms.
pub const ARXIV_INTERVAL_ENV: &str = "PAPERSIM_ARXIV_INTERVAL_MS";
/// The interval between two requests to the Hugging Face API, which publishes no limit: one a
/// second keeps a `--since` fetch of a month under a minute without hammering it.
pub const HF_INTERVAL_MS: u64 = 1_000;
/// The longest interval it may set: a minute between requests already makes a fetch of a
/// few pages take many minutes.
pub const MAX_INTERVAL_MS: u64 = 60_000;
/// Bounds of `--connect-timeout` and `--read-timeout`, in seconds: under a second fails on any
/// real network; over ten minutes a stalled server holds a daily job for no use.
pub const MIN_TIMEOUT_SECS: f64 = 0.1;
pub const MAX_TIMEOUT_SECS: f64 = 600.0;
/// The most retries of one request: with doubling backoff, ten already wait over 17 minutes.
pub const MAX_RETRIES: u32 = 10;
/// The most papers one arXiv fetch asks for: 50 pages of the API's largest size; arXiv asks
/// bulk harvesters to use OAI-PMH instead.
pub const MAX_ARXIV_PAPERS: usize = 100_000;
/// The most days one `fetch hf --since` covers (one request a day).
pub const MAX_HF_DAYS: i64 = 366;
/// The resume state's file name in the library directory.
pub const STATE_FILE: &str = "fetch-state.json";

/// What one request gave: its papers and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// The digest name the papers are recorded under (`hf-daily-2026-03-11`).
    pub source: String,
    pub url: String,
    pub date: Option<NaiveDate>,
    pub papers: Vec<DigestPaper>,
    /// Hugging Face: each paper's upvotes, beside `papers` (the library record has no field
    /// for them; `-o` writes them). Empty for arXiv.
    pub upvotes: Vec<Option<u64>>,
    /// Entries of the answer left out, each saying which and why (see [`hf::Day::skipped`]).
    pub skipped: Vec<String>,
}

impl Fetched {
    /// As a digest for the ingest pipeline, after the checks a digest file gets (sizes).
    pub fn into_digest(self) -> Result<Digest> {
        for p in &self.papers {
            if p.title.len() > MAX_TITLE_BYTES || p.abstract_text.len() > MAX_ABSTRACT_BYTES {
                return Err(http::fetch_error(
                    &self.url,
                    format!(
                        "paper {} has a title or abstract over papersim's limits ({MAX_TITLE_BYTES} and {MAX_ABSTRACT_BYTES} bytes)",
                        p.arxiv_id.as_deref().unwrap_or(&p.title)
                    ),
                ));
            }
        }
        Ok(Digest {
            source: self.source,
            date: self.date,
            papers: self.papers,
            skipped: self.skipped,
            warnings: Vec::new(),
        })
    }
}

/// The client settings, checked against their bounds (each error says why the bound).
pub fn settings(
    connect_timeout_secs: f64,
    read_timeout_secs: f64,
    retries: u32,
    interval_ms: u64,
) -> Result<HttpSettings> {
    let timeout = |name: &str, v: f64| -> Result<Duration> {
        if !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&v) {
            return Err(Error::InvalidInput(format!(
                "{name} {v} is out of range: between {MIN_TIMEOUT_SECS} and {MAX_TIMEOUT_SECS} seconds (shorter fails on a real network; longer holds a stalled fetch for no use)"
            )));
        }
        Ok(Duration::from_secs_f64(v))
    };
    if retries > MAX_RETRIES {
        return Err(Error::InvalidInput(format!(
            "--retries {retries} is out of range: at most {MAX_RETRIES} (with doubling backoff, {MAX_RETRIES} retries already wait over 17 minutes)"
        )));
    }
    if interval_ms > MAX_INTERVAL_MS {
        return Err(Error::InvalidInput(format!(
            "{ARXIV_INTERVAL_ENV}={interval_ms} is out of range: at most {MAX_INTERVAL_MS} ms"
        )));
    }
    Ok(HttpSettings {
        connect_timeout: timeout("--connect-timeout", connect_timeout_secs)?,
        read_timeout: timeout("--read-timeout", read_timeout_secs)?,
        interval: Duration::from_millis(interval_ms),
        retries,
    })
}

/// The arXiv politeness interval: 3,000 ms, or [`ARXIV_INTERVAL_ENV`] when set (tests).
pub fn arxiv_interval_ms() -> Result<u64> {
    match std::env::var(ARXIV_INTERVAL_ENV) {
        Err(_) => Ok(arxiv::POLITE_INTERVAL_MS),
        Ok(v) => v.trim().parse::<u64>().map_err(|_| {
            Error::InvalidInput(format!(
                "{ARXIV_INTERVAL_ENV}=`{v}` is not a number of milliseconds (0 to {MAX_INTERVAL_MS})"
            ))
        }),
    }
}

/// The days `fetch hf` asks for: `date`, or every day from `since` to `today`, or today.
pub fn hf_days(
    date: Option<NaiveDate>,
    since: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<Vec<NaiveDate>> {
    match (date, since) {
        (Some(_), Some(_)) => Err(Error::InvalidInput(
            "--date and --since exclude each other: one day, or every day since one".into(),
        )),
        (Some(d), None) => Ok(vec![d]),
        (None, None) => Ok(vec![today]),
        (None, Some(s)) => {
            let days = (today - s).num_days() + 1;
            if days < 1 {
                return Err(Error::InvalidInput(format!(
                    "--since {s} is after today ({today})"
                )));
            }
            if days > MAX_HF_DAYS {
                return Err(Error::InvalidInput(format!(
                    "--since {s} covers {days} days; papersim fetches at most {MAX_HF_DAYS} days at once (one request a day): fetch older days in parts with --date or a later --since"
                )));
            }
            Ok(s.iter_days().take(days as usize).collect())
        }
    }
}

/// The abstract page of an arXiv id.
pub fn arxiv_url(id: &str) -> String {
    format!("https://arxiv.org/abs/{id}")
}

/// New-style (`2603.01234`, optionally `v2`) or old-style (`cs/0112017`) arXiv ids.
pub fn is_arxiv_id(id: &str) -> bool {
    let id = crate::paper::strip_arxiv_version(id);
    let new_style = id.split_once('.').is_some_and(|(a, b)| {
        a.len() == 4
            && a.bytes().all(|c| c.is_ascii_digit())
            && (4..=5).contains(&b.len())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    let old_style = id.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty()
            && a.bytes()
                .all(|c| c.is_ascii_alphabetic() || c == b'-' || c == b'.')
            && b.len() == 7
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    new_style || old_style
}

/// Whitespace (the API's line breaks inside titles and abstracts) folded to single spaces.
pub fn clean_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Serialize, Deserialize)]
struct State {
    /// The query ([`arxiv::Query::key`]) the cursor belongs to.
    arxiv_query: String,
    /// The first result not yet fetched.
    next_start: usize,
}

/// Where a stopped fetch of `key` should resume in the library at `dir`, if one stopped.
pub fn load_cursor(dir: &Path, key: &str) -> Result<Option<usize>> {
    let path = dir.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let state: State = serde_json::from_slice(&bytes).map_err(|e| Error::Library {
        path: path.clone(),
        reason: format!(
            "the fetch resume state is not valid ({e}); remove the file to start the fetch afresh"
        ),
    })?;
    Ok((state.arxiv_query == key).then_some(state.next_start))
}

/// Records that the fetch of `key` should resume at `next_start` (new file, fsync, rename).
pub fn save_cursor(dir: &Path, key: &str, next_start: usize) -> Result<()> {
    let state = State {
        arxiv_query: key.to_string(),
        next_start,
    };
    let bytes = serde_json::to_vec_pretty(&state).expect("the state serialises");
    crate::directory::write_atomically(&dir.join(STATE_FILE), &bytes)
}

/// Removes the resume state once a fetch is complete (papersim's own file, by its name only).
pub fn clear_cursor(dir: &Path) -> Result<()> {
    let path = dir.join(STATE_FILE);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() => {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            let _ = crate::directory::sync_dir(dir);
            Ok(())
        }
        // Not papersim's: left alone.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arxiv_ids_are_recognised() {
        assert!(is_arxiv_id("2603.01234"));
        assert!(is_arxiv_id("2603.01234v2"));
        assert!(is_arxiv_id("1501.0001"));
        assert!(is_arxiv_id("cs/0112017v1"));
        assert!(!is_arxiv_id("t:0123456789ab"));
        assert!(!is_arxiv_id("2603.x"));
        assert!(!is_arxiv_id(""));
    }

    #[test]
    fn hf_days_are_bounded() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let today = d("2026-03-11");
        assert_eq!(
            hf_days(None, Some(d("2026-03-09")), today).unwrap().len(),
            3
        );
        assert_eq!(hf_days(Some(today), None, today).unwrap(), vec![today]);
        assert!(hf_days(None, Some(d("2026-03-12")), today).is_err());
        assert!(hf_days(None, Some(d("2024-01-01")), today).is_err());
    }
}
