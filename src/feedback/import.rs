//! Reading a reader's reference library for `papersim import`: BibTeX (`.bib`, through typst's
//! `biblatex` parser, which decodes LaTeX accents and braces), CSL JSON (Zotero's "Export
//! Library… → CSL JSON") and a Zotero database (`zotero.sqlite`, opened read-only and
//! immutable, so that a running Zotero's lock does not block it).
//!
//! Each file becomes [`ImportEntry`]s (title, abstract, arXiv id, DOI, collections) and one
//! warning per entry that cannot be read, naming where it is; the rest are read. Matching the
//! entries to library papers and liking them is the caller's.

use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

/// One reference of the reader's library.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportEntry {
    /// Where it is, for messages: `file:line` (BibTeX), `file: item N` (CSL JSON, Zotero).
    pub origin: String,
    pub title: String,
    pub abstract_text: Option<String>,
    /// Without a version.
    pub arxiv_id: Option<String>,
    /// Lower case, without a resolver prefix.
    pub doi: Option<String>,
    pub url: Option<String>,
    /// YYYY-MM-DD, when the entry gives a whole date.
    pub date: Option<String>,
    pub authors: Vec<String>,
    /// Zotero collections (the tags it is liked under, unless `--tag` says otherwise).
    pub collections: Vec<String>,
}

/// What a file holds: its entries, and a warning for each entry left out.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub format: &'static str,
    pub entries: Vec<ImportEntry>,
    pub warnings: Vec<String>,
}

/// The arXiv id (new style, without version) in `text`: `arXiv:2405.14867v2`,
/// `arxiv.org/abs/2405.14867`, the arXiv DOI `10.48550/arXiv.2405.14867`, or a bare id where
/// the field holds nothing else (an `eprint` field).
pub fn arxiv_in(text: &str) -> Option<String> {
    use std::sync::OnceLock;
    static ID: OnceLock<regex::Regex> = OnceLock::new();
    let re = ID.get_or_init(|| {
        regex::Regex::new(
            r"(?i)(?:arxiv[:.\s/]*|arxiv\.org/(?:abs|pdf)/|^\s*)(\d{4}\.\d{4,5})(?:v\d+)?\b",
        )
        .expect("valid regex")
    });
    re.captures(text).map(|c| c[1].to_string())
}

fn clean_doi(doi: &str) -> Option<String> {
    let d = doi.trim().to_lowercase();
    let d = d
        .trim_start_matches("https://doi.org/")
        .trim_start_matches("http://dx.doi.org/")
        .trim_start_matches("doi:")
        .trim();
    d.starts_with("10.").then(|| d.to_string())
}

/// A whole ISO date at the start of `s` (`2024-05-23`, `2024-05-23T…`).
fn iso_date(s: &str) -> Option<String> {
    let d = s.trim().get(..10)?;
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .ok()
        .map(|_| d.to_string())
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
}

/// Fills the ids an entry's other fields imply (an arXiv DOI or URL gives the arXiv id).
fn complete(mut e: ImportEntry, extra: &[&str]) -> ImportEntry {
    if e.arxiv_id.is_none() {
        e.arxiv_id = e
            .doi
            .iter()
            .chain(e.url.iter())
            .map(String::as_str)
            .chain(extra.iter().copied())
            .find_map(|t| {
                let lower = t.to_lowercase();
                (lower.contains("arxiv") || lower.contains("10.48550"))
                    .then(|| arxiv_in(t))
                    .flatten()
            });
    }
    e
}

/// Reads `path`, detecting its format from its content: SQLite's header (a Zotero database),
/// JSON (CSL JSON), else BibTeX.
pub fn read(path: &Path) -> Result<Imported> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.starts_with(b"SQLite format 3\0") {
        return read_zotero(path);
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| Error::References {
        path: path.to_path_buf(),
        reason: format!("is neither a Zotero database nor UTF-8 text (BibTeX or CSL JSON): {e}"),
    })?;
    match text.trim_start().chars().next() {
        Some('[') | Some('{') => read_csl_json(path, text),
        Some(_) if text.contains('@') => Ok(read_bibtex(path, text)),
        _ => Err(Error::References {
            path: path.to_path_buf(),
            reason: "holds no references: expected BibTeX (@article{…}), CSL JSON ([{…}]) or a zotero.sqlite".into(),
        }),
    }
}

/// The top-level `@…` blocks of a BibTeX file, each with its 1-based starting line. A block
/// starts at an `@` outside braces, or at one that begins a line (so that an entry whose
/// braces never close ends where the next entry begins).
fn bibtex_blocks(text: &str) -> Vec<(usize, &str)> {
    let mut blocks = Vec::new();
    let mut start: Option<usize> = None;
    let mut depth = 0i32;
    let mut line = 1;
    let mut start_line = 1;
    let mut line_start = true;
    for (i, c) in text.char_indices() {
        let at_line_start = line_start;
        line_start = c == '\n' || (line_start && c.is_whitespace());
        match c {
            '\n' => line += 1,
            '@' if depth <= 0 || at_line_start => {
                if let Some(s) = start {
                    blocks.push((start_line, &text[s..i]));
                }
                start = Some(i);
                start_line = line;
                depth = 0;
            }
            '{' if start.is_some() => depth += 1,
            '}' if start.is_some() => depth -= 1,
            _ => {}
        }
    }
    if let Some(s) = start {
        blocks.push((start_line, &text[s..]));
    }
    blocks
}

/// BibTeX: each `@type{…}` block parsed alone (with the file's `@string` abbreviations), so
/// that one malformed entry is one warning and the others are read.
fn read_bibtex(path: &Path, text: &str) -> Imported {
    use biblatex::{Bibliography, ChunksExt};
    let mut out = Imported {
        format: "BibTeX",
        ..Imported::default()
    };
    let blocks = bibtex_blocks(text);
    let kind = |b: &str| {
        b[1..]
            .split(|c: char| c == '{' || c == '(' || c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_lowercase()
    };
    let strings: String = blocks
        .iter()
        .filter(|(_, b)| kind(b) == "string")
        .map(|(_, b)| *b)
        .collect::<Vec<_>>()
        .join("\n");
    for (line, block) in blocks {
        if matches!(kind(block).as_str(), "string" | "comment" | "preamble") {
            continue;
        }
        let origin = format!("{}:{line}", path.display());
        let source = format!("{strings}\n{block}");
        let bib = match Bibliography::parse(&source) {
            Ok(b) => b,
            Err(e) => {
                out.warnings.push(format!(
                    "{origin}: not a well-formed BibTeX entry ({:?}); skipped",
                    e.kind
                ));
                continue;
            }
        };
        for entry in bib.iter() {
            let field = |name: &str| non_empty(entry.fields.get(name).map(|c| c.format_verbatim()));
            let Some(title) = field("title") else {
                out.warnings.push(format!(
                    "{origin}: entry `{}` has no title; skipped",
                    entry.key
                ));
                continue;
            };
            let eprint = field("eprint");
            let archive = field("archiveprefix")
                .or_else(|| field("eprinttype"))
                .unwrap_or_default()
                .to_lowercase();
            let arxiv_id = eprint
                .as_deref()
                .filter(|_| archive.is_empty() || archive == "arxiv")
                .and_then(arxiv_in);
            let date = field("date").as_deref().and_then(iso_date);
            let authors = field("author")
                .map(|a| a.split(" and ").map(|s| s.trim().to_string()).collect())
                .unwrap_or_default();
            let e = ImportEntry {
                origin: origin.clone(),
                title,
                abstract_text: field("abstract"),
                arxiv_id,
                doi: field("doi").as_deref().and_then(clean_doi),
                url: field("url"),
                date,
                authors,
                collections: Vec::new(),
            };
            let extra = [
                field("journal").unwrap_or_default(),
                field("note").unwrap_or_default(),
            ];
            let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
            out.entries.push(complete(e, &refs));
        }
    }
    out
}

/// CSL JSON: an array of items (`title`, `abstract`, `DOI`, `URL`, `issued`, `author`, and an
/// arXiv id in `number`, `note` or `archive_location` as Zotero writes them).
fn read_csl_json(path: &Path, text: &str) -> Result<Imported> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::References {
        path: path.to_path_buf(),
        reason: format!("is not valid JSON ({e}); CSL JSON is an array of items"),
    })?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(_) => vec![value],
        _ => {
            return Err(Error::References {
                path: path.to_path_buf(),
                reason: "is JSON but not CSL JSON: expected an array of items".into(),
            })
        }
    };
    let mut out = Imported {
        format: "CSL JSON",
        ..Imported::default()
    };
    for (i, item) in items.iter().enumerate() {
        let origin = format!("{}: item {}", path.display(), i + 1);
        let Some(obj) = item.as_object() else {
            out.warnings
                .push(format!("{origin}: not an object; skipped"));
            continue;
        };
        let s = |k: &str| non_empty(obj.get(k).and_then(Value::as_str).map(str::to_string));
        let Some(title) = s("title") else {
            out.warnings
                .push(format!("{origin}: has no `title` string; skipped"));
            continue;
        };
        let date = obj
            .get("issued")
            .and_then(|d| d.get("date-parts"))
            .and_then(|p| p.get(0))
            .and_then(Value::as_array)
            .and_then(|p| {
                let n: Vec<i64> = p
                    .iter()
                    .filter_map(|x| x.as_i64().or_else(|| x.as_str()?.parse().ok()))
                    .collect();
                (n.len() == 3).then(|| format!("{:04}-{:02}-{:02}", n[0], n[1], n[2]))
            })
            .as_deref()
            .and_then(iso_date);
        let authors = obj
            .get("author")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        let part = |k: &str| p.get(k).and_then(Value::as_str);
                        part("literal").map(str::to_string).or_else(|| {
                            Some(
                                [part("given"), part("family")]
                                    .into_iter()
                                    .flatten()
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            )
                            .filter(|n| !n.is_empty())
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let e = ImportEntry {
            origin,
            title,
            abstract_text: s("abstract"),
            arxiv_id: None,
            doi: s("DOI").as_deref().and_then(clean_doi),
            url: s("URL"),
            date,
            authors,
            collections: Vec::new(),
        };
        let extra: Vec<String> = ["number", "note", "archive_location", "id"]
            .iter()
            .filter_map(|k| s(k))
            .collect();
        let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        out.entries.push(complete(e, &refs));
    }
    Ok(out)
}

/// A path as an SQLite URI (`file:` with `?`, `#` and `%` escaped).
fn sqlite_uri(path: &Path) -> Result<String> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let s = abs.to_str().ok_or_else(|| Error::References {
        path: path.to_path_buf(),
        reason: "path is not UTF-8".into(),
    })?;
    let mut uri = String::from("file:");
    for c in s.chars() {
        match c {
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            '%' => uri.push_str("%25"),
            c => uri.push(c),
        }
    }
    // Read-only and immutable: no lock is taken and none is waited for, so a running Zotero
    // (which holds its database locked) does not block the import, and nothing is written.
    uri.push_str("?mode=ro&immutable=1");
    Ok(uri)
}

/// A Zotero database: every regular item (not an attachment, note or annotation, not in the
/// trash) with its fields and the collections it is in.
fn read_zotero(path: &Path) -> Result<Imported> {
    use rusqlite::{Connection, OpenFlags};
    let err = |reason: String| Error::References {
        path: path.to_path_buf(),
        reason,
    };
    let db = Connection::open_with_flags(
        sqlite_uri(path)?,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| err(format!("cannot be opened as a Zotero database: {e}")))?;
    let sql_err = |e: rusqlite::Error| {
        err(format!(
            "is an SQLite file but not a Zotero database this papersim reads ({e}); expected Zotero's items, itemData, fields and collections tables"
        ))
    };
    let mut fields = db
        .prepare(
            "SELECT i.itemID, f.fieldName, v.value
             FROM items i
             JOIN itemTypes t ON t.itemTypeID = i.itemTypeID
             JOIN itemData d ON d.itemID = i.itemID
             JOIN fields f ON f.fieldID = d.fieldID
             JOIN itemDataValues v ON v.valueID = d.valueID
             WHERE t.typeName NOT IN ('attachment', 'note', 'annotation')
               AND i.itemID NOT IN (SELECT itemID FROM deletedItems)
             ORDER BY i.itemID",
        )
        .map_err(sql_err)?;
    let mut items: std::collections::BTreeMap<i64, std::collections::HashMap<String, String>> =
        Default::default();
    let rows = fields
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, rusqlite::types::Value>(2)?,
            ))
        })
        .map_err(sql_err)?;
    for row in rows {
        let (id, field, value) = row.map_err(sql_err)?;
        let value = match value {
            rusqlite::types::Value::Text(t) => t,
            rusqlite::types::Value::Integer(n) => n.to_string(),
            rusqlite::types::Value::Real(x) => x.to_string(),
            _ => continue,
        };
        items.entry(id).or_default().insert(field, value);
    }
    let mut collections: std::collections::HashMap<i64, Vec<String>> = Default::default();
    let mut stmt = db
        .prepare(
            "SELECT ci.itemID, c.collectionName FROM collectionItems ci
             JOIN collections c ON c.collectionID = ci.collectionID
             ORDER BY ci.itemID, c.collectionName",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql_err)?;
    for row in rows {
        let (id, name) = row.map_err(sql_err)?;
        collections.entry(id).or_default().push(name);
    }
    let mut out = Imported {
        format: "Zotero database",
        ..Imported::default()
    };
    for (id, f) in items {
        let origin = format!("{}: item {id}", path.display());
        let get = |k: &str| non_empty(f.get(k).cloned());
        let Some(title) = get("title") else {
            out.warnings
                .push(format!("{origin}: has no title; skipped"));
            continue;
        };
        let e = ImportEntry {
            origin,
            title,
            abstract_text: get("abstractNote"),
            arxiv_id: None,
            doi: get("DOI").as_deref().and_then(clean_doi),
            url: get("url"),
            date: get("date").as_deref().and_then(iso_date),
            authors: Vec::new(),
            collections: collections.remove(&id).unwrap_or_default(),
        };
        let extra: Vec<String> = ["archiveID", "extra", "number", "reportNumber"]
            .iter()
            .filter_map(|k| get(k))
            .collect();
        let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        out.entries.push(complete(e, &refs));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arxiv_ids_are_found_where_references_keep_them() {
        for (text, id) in [
            ("arXiv:2405.14867v2", "2405.14867"),
            ("https://arxiv.org/abs/2405.14867", "2405.14867"),
            ("10.48550/arXiv.2405.14867", "2405.14867"),
            ("2207.01780", "2207.01780"),
        ] {
            assert_eq!(arxiv_in(text).as_deref(), Some(id), "{text}");
        }
        assert_eq!(arxiv_in("10.1145/3292500.3330701"), None);
    }

    #[test]
    fn one_malformed_bibtex_entry_is_one_warning() {
        let text = "@article{a, title={Good {One}}, eprint={2405.14867}}\n\
                    @article{b, title={Broken\n\
                    @article{c, title={Caf\\'e au lait}, doi={10.1000/XYZ}}\n";
        let got = read_bibtex(Path::new("x.bib"), text);
        let titles: Vec<&str> = got.entries.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(titles, ["Good One", "Café au lait"], "{:?}", got.warnings);
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
        assert!(
            got.warnings[0].starts_with("x.bib:2:"),
            "{:?}",
            got.warnings
        );
        assert_eq!(got.entries[0].arxiv_id.as_deref(), Some("2405.14867"));
        assert_eq!(got.entries[1].doi.as_deref(), Some("10.1000/xyz"));
    }
}
