//! The arXiv API (https://info.arxiv.org/help/api/user-manual.html): `GET
//! {endpoint}?search_query=cat:cs.CL+OR+cat:cs.LG&sortBy=submittedDate&sortOrder=descending
//! &start=N&max_results=M` answers an Atom feed: `opensearch:totalResults`, `startIndex` and
//! `itemsPerPage`, then one `entry` a paper (`id` http://arxiv.org/abs/XXXX.XXXXXvN,
//! `published`, `updated`, `title`, `summary`, `author/name`, `arxiv:primary_category`,
//! `category@term`, `link`s). A query the API refuses is a feed with one entry
//! whose id is `http://arxiv.org/api/errors#...` and whose summary says why.
//!
//! Newest first, page by page; the caller gets each page as it arrives (to ingest it and
//! record where to resume) and the paging stops at `--max` papers, at the first paper older
//! than `--since`, or at the end of the results.

use chrono::NaiveDate;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::http::{fetch_error, Client};
use super::{arxiv_url, clean_text, Fetched};
use crate::error::Result;
use crate::paper::DigestPaper;

/// The public API.
pub const DEFAULT_ENDPOINT: &str = "https://export.arxiv.org/api/query";
/// arXiv's rate limit for API clients: one request every three seconds.
pub const POLITE_INTERVAL_MS: u64 = 3_000;
/// The most results arXiv returns in one request.
pub const MAX_PAGE_SIZE: usize = 2_000;

/// What an arXiv fetch asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub categories: Vec<String>,
    pub since: Option<NaiveDate>,
    /// Papers wanted at most.
    pub max: usize,
    pub page_size: usize,
}

impl Query {
    /// The `search_query` parameter: the categories joined by OR.
    pub fn search(&self) -> String {
        self.categories
            .iter()
            .map(|c| format!("cat:{c}"))
            .collect::<Vec<_>>()
            .join("+OR+")
    }

    /// A key naming this query in the resume state: two runs of the same query resume one
    /// another; another query starts afresh.
    pub fn key(&self) -> String {
        format!(
            "{}|since={}|max={}|page={}",
            self.search(),
            self.since.map(|d| d.to_string()).unwrap_or_default(),
            self.max,
            self.page_size
        )
    }

    pub fn page_url(&self, endpoint: &str, start: usize) -> String {
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        format!(
            "{endpoint}{sep}search_query={}&sortBy=submittedDate&sortOrder=descending&start={start}&max_results={}",
            self.search(),
            self.page_size.min(self.max.saturating_sub(start).max(1))
        )
    }
}

/// One parsed page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub total_results: Option<usize>,
    pub papers: Vec<DigestPaper>,
}

/// Where a fetch stands after a page: the next `start`, and whether it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub next_start: usize,
    pub done: bool,
}

/// Fetches `query` from result `start` on, handing each page to `on_page` with the cursor
/// after it, until the query is done.
pub fn fetch(
    client: &mut Client,
    endpoint: &str,
    query: &Query,
    mut start: usize,
    mut on_page: impl FnMut(Fetched, Cursor) -> Result<()>,
) -> Result<()> {
    while start < query.max {
        let url = query.page_url(endpoint, start);
        let body = client.get(&url)?;
        let page = parse(&url, &body)?;
        let got = page.papers.len();
        let mut papers = page.papers;
        let before = papers.len();
        if let Some(since) = query.since {
            let since = since.to_string();
            // Newest first: the first paper older than --since ends the fetch.
            papers.retain(|p| p.date.as_deref().is_none_or(|d| d >= since.as_str()));
        }
        papers.truncate(query.max - start);
        let next_start = start + got;
        let done = got == 0
            || papers.len() < before
            || next_start >= query.max
            || page.total_results.is_some_and(|t| next_start >= t);
        on_page(
            Fetched {
                source: format!("arxiv-{}", query.categories.join("+")),
                url,
                date: None,
                papers,
                upvotes: Vec::new(),
                skipped: Vec::new(),
            },
            Cursor { next_start, done },
        )?;
        if done {
            break;
        }
        start = next_start;
    }
    Ok(())
}

#[derive(Default)]
struct EntryBuilder {
    id: String,
    title: String,
    summary: String,
    published: String,
    authors: Vec<String>,
    author_name: String,
    primary: Option<String>,
    categories: Vec<String>,
}

/// Parses one Atom page; `url` names it in errors.
pub fn parse(url: &str, body: &str) -> Result<Page> {
    let malformed = |reason: String| fetch_error(url, format!("malformed Atom XML: {reason}"));
    let mut reader = Reader::from_str(body);
    let mut path: Vec<String> = Vec::new();
    let mut total = None;
    let mut saw_feed = false;
    let mut entry: Option<EntryBuilder> = None;
    let mut papers = Vec::new();
    let mut text = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(format!("{e} at byte {}", reader.error_position())))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if path.is_empty() {
                    if name != "feed" {
                        return Err(malformed(format!(
                            "the document is a <{name}>, not an Atom <feed>"
                        )));
                    }
                    saw_feed = true;
                }
                if name == "entry" && path.len() == 1 {
                    entry = Some(EntryBuilder::default());
                }
                attributes(&e, &name, entry.as_mut());
                path.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                attributes(&e, &name, entry.as_mut());
            }
            Event::Text(t) => text.push_str(&t),
            Event::CData(t) => text.push_str(&t),
            Event::GeneralRef(r) => {
                let name = r.to_string();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&name)
                        .map(str::to_string)
                        .ok_or_else(|| malformed(format!("unknown entity &{name};")))?,
                    Err(e) => return Err(malformed(format!("&{name};: {e}"))),
                };
                text.push_str(&resolved);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let parent = path.last().map(String::as_str).unwrap_or("");
                match (parent, name.as_str(), entry.as_mut()) {
                    ("feed", "totalResults", _) => {
                        total = Some(text.trim().parse::<usize>().map_err(|_| {
                            malformed(format!("totalResults `{}` is not a count", text.trim()))
                        })?);
                    }
                    ("feed", "entry", Some(_)) => {
                        let b = entry.take().expect("inside an entry");
                        papers.push(finish(url, b, papers.len() + 1)?);
                    }
                    ("entry", "id", Some(b)) => b.id = text.trim().to_string(),
                    ("entry", "title", Some(b)) => b.title = text.clone(),
                    ("entry", "summary", Some(b)) => b.summary = text.clone(),
                    ("entry", "published", Some(b)) => b.published = text.trim().to_string(),
                    ("author", "name", Some(b)) => b.author_name = text.clone(),
                    ("entry", "author", Some(b)) => {
                        let n = clean_text(&std::mem::take(&mut b.author_name));
                        if !n.is_empty() {
                            b.authors.push(n);
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(malformed(format!(
            "the document ends inside <{}> (a truncated response?)",
            path.join("><")
        )));
    }
    if !saw_feed {
        return Err(malformed(
            "no <feed> element (an empty or non-XML response?)".into(),
        ));
    }
    Ok(Page {
        total_results: total,
        papers,
    })
}

fn attributes(e: &quick_xml::events::BytesStart<'_>, name: &str, entry: Option<&mut EntryBuilder>) {
    let Some(b) = entry else { return };
    let attr = |key: &str| -> Option<String> {
        e.attributes().flatten().find_map(|a| {
            (a.key.local_name().as_ref() == key).then(|| {
                let raw = a.value.to_string();
                quick_xml::escape::unescape(&raw)
                    .map(|s| s.to_string())
                    .unwrap_or(raw)
            })
        })
    };
    match name {
        "primary_category" => b.primary = attr("term"),
        "category" => {
            if let Some(t) = attr("term") {
                if !b.categories.contains(&t) {
                    b.categories.push(t);
                }
            }
        }
        _ => {}
    }
}

fn finish(url: &str, b: EntryBuilder, n: usize) -> Result<DigestPaper> {
    if b.id.contains("/api/errors") {
        return Err(fetch_error(
            url,
            format!("arXiv refused the query: {}", clean_text(&b.summary)),
        ));
    }
    let id =
        b.id.rsplit_once("/abs/")
            .map(|(_, id)| id.to_string())
            .unwrap_or_default();
    if !super::is_arxiv_id(crate::paper::strip_arxiv_version(&id)) {
        return Err(fetch_error(
            url,
            format!("entry {n} has id `{}`, not an arXiv abstract URL", b.id),
        ));
    }
    let title = clean_text(&b.title);
    if title.is_empty() {
        return Err(fetch_error(url, format!("entry {n} ({id}) has no title")));
    }
    let mut categories = b.categories;
    if let Some(p) = b.primary {
        categories.retain(|c| *c != p);
        categories.insert(0, p);
    }
    let date = b
        .published
        .get(..10)
        .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
        .map(str::to_string);
    let bare = crate::paper::strip_arxiv_version(&id).to_string();
    Ok(DigestPaper {
        title,
        abstract_text: clean_text(&b.summary),
        // The versionless abstract page, as `fetch hf` gives (the feed's links name a version).
        url: Some(arxiv_url(&bare)),
        arxiv_id: Some(id),
        date,
        authors: b.authors,
        categories,
        line: n,
    })
}
