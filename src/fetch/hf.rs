//! Hugging Face daily papers: `GET {endpoint}?date=YYYY-MM-DD` answers a JSON array with one
//! object per paper of that day: `{"paper": {"id": "2603.01234", "title", "summary",
//! "authors": [{"name"}], "publishedAt", "upvotes", ...}, "title", "publishedAt", ...}` (the
//! listing behind huggingface.co/papers and the trending-papers email; public, no key).
//! An empty day is an empty array.

use chrono::NaiveDate;
use serde::Deserialize;

use super::http::{fetch_error, Client};
use super::{arxiv_url, clean_text, Fetched};
use crate::error::Result;
use crate::paper::DigestPaper;

/// The public API.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co/api/daily_papers";

#[derive(Deserialize)]
struct Entry {
    paper: Option<PaperJson>,
    title: Option<String>,
    summary: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaperJson {
    id: String,
    title: Option<String>,
    summary: Option<String>,
    #[serde(default)]
    authors: Vec<Author>,
    published_at: Option<String>,
    upvotes: Option<u64>,
}

#[derive(Deserialize)]
struct Author {
    name: Option<String>,
}

/// The papers of each day in `days`, one request a day, in order.
pub fn fetch(client: &mut Client, endpoint: &str, days: &[NaiveDate]) -> Result<Vec<Fetched>> {
    let mut out = Vec::new();
    for day in days {
        let url = day_url(endpoint, *day);
        let body = client.get(&url)?;
        let parsed = parse(&url, &body)?;
        out.push(Fetched {
            source: format!("hf-daily-{day}"),
            url: url.clone(),
            date: Some(*day),
            papers: parsed.papers,
            upvotes: parsed.upvotes,
            skipped: parsed.skipped,
        });
    }
    Ok(out)
}

/// The listing of one day.
pub fn day_url(endpoint: &str, day: NaiveDate) -> String {
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}date={day}")
}

/// One day's listing, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub papers: Vec<DigestPaper>,
    /// Each paper's upvotes, beside `papers`.
    pub upvotes: Vec<Option<u64>>,
    /// Entries left out, each saying which and why: an id that is not arXiv's (papersim keys
    /// Hugging Face's papers by their arXiv id; one such entry must not cost the whole day).
    pub skipped: Vec<String>,
}

/// Parses one day's answer: its papers and their upvotes; `url` names it in errors. A listing
/// that is not one (malformed, an entry without a paper or a title) is an error; an entry
/// whose id is not an arXiv id is left out and named in [`Day::skipped`].
pub fn parse(url: &str, body: &str) -> Result<Day> {
    let entries: Vec<Entry> = serde_json::from_str(body).map_err(|e| {
        let what = if e.is_eof() {
            "the JSON ends early (a truncated response?)"
        } else {
            "malformed JSON, not a daily-papers listing"
        };
        fetch_error(url, format!("{what}: {e}"))
    })?;
    let mut papers = Vec::with_capacity(entries.len());
    let mut upvotes = Vec::with_capacity(entries.len());
    let mut skipped = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let Some(p) = entry.paper else {
            return Err(fetch_error(
                url,
                format!("entry {} has no `paper` object", i + 1),
            ));
        };
        let title = clean_text(p.title.as_deref().or(entry.title.as_deref()).unwrap_or(""));
        if title.is_empty() {
            return Err(fetch_error(
                url,
                format!("entry {} (paper {}) has no title", i + 1, p.id),
            ));
        }
        let id = p.id.trim().to_string();
        if !super::is_arxiv_id(&id) {
            skipped.push(format!(
                "{url}: entry {} (`{title}`) has id `{id}`, which is not an arXiv id",
                i + 1
            ));
            continue;
        }
        let summary = clean_text(
            p.summary
                .as_deref()
                .or(entry.summary.as_deref())
                .unwrap_or(""),
        );
        let date = p
            .published_at
            .as_deref()
            .and_then(|d| d.get(..10))
            .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
            .map(str::to_string);
        upvotes.push(p.upvotes);
        papers.push(DigestPaper {
            title,
            abstract_text: summary,
            url: Some(arxiv_url(&id)),
            arxiv_id: Some(id),
            date,
            authors: p
                .authors
                .into_iter()
                .filter_map(|a| a.name)
                .map(|n| clean_text(&n))
                .filter(|n| !n.is_empty())
                .collect(),
            categories: Vec::new(),
            line: i + 1,
        });
    }
    Ok(Day {
        papers,
        upvotes,
        skipped,
    })
}
