//! JSON digests: an array of paper objects (or a single object), and JSON Lines with one paper
//! object per line, as in the arXiv corpus dumps.
//!
//! `title` and `abstract` are required; `id`, `date`, `url`, `authors`, `categories` and
//! `primary_category` are optional; other fields are ignored. A record that is not valid fails
//! the whole file, so an import never stops half-way through a digest.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::{digest_error, excerpt, Parsed};
use crate::error::{Error, Result};
use crate::paper::DigestPaper;

/// Whether the whole text is one JSON object (possibly pretty-printed over many lines).
pub(super) fn is_single_object(text: &str) -> bool {
    serde_json::from_str::<Map<String, Value>>(text).is_ok()
}

/// Parses a JSON array of paper objects, or a single paper object.
pub(super) fn parse_json(source: &str, text: &str) -> Result<Parsed> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let hint = if e.to_string().contains("trailing characters") {
            " (one object per line is JSON Lines: use format `jsonl`)"
        } else {
            ""
        };
        digest_error(source, format!("invalid JSON: {e}{hint}"))
    })?;
    let mut warnings = Vec::new();
    let papers = match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(digest_error(
                    source,
                    "empty digest: no papers found (empty JSON array)",
                ));
            }
            let lines = array_element_lines(text);
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    let line = lines.get(index).copied().unwrap_or(1);
                    let record = Record {
                        location: format!("{source}:{line}"),
                        context: format!("element {index}: "),
                        line,
                    };
                    record.paper(item, &mut warnings)
                })
                .collect::<Result<Vec<_>>>()?
        }
        Value::Object(_) => {
            let line = array_element_lines(&format!("[{text}]"))
                .first()
                .copied()
                .unwrap_or(1);
            let record = Record {
                location: format!("{source}:{line}"),
                context: String::new(),
                line,
            };
            vec![record.paper(&value, &mut warnings)?]
        }
        other => {
            return Err(digest_error(
                source,
                format!(
                    "expected a JSON array of paper objects, found {}",
                    kind(&other)
                ),
            ))
        }
    };
    Ok(Parsed {
        papers,
        skipped: Vec::new(),
        warnings,
        header_date: None,
    })
}

/// Parses JSON Lines: one paper object per line, blank lines ignored.
pub(super) fn parse_jsonl(source: &str, text: &str) -> Result<Parsed> {
    let mut papers = Vec::new();
    let mut warnings = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let line = index + 1;
        let record = Record {
            location: format!("{source}:{line}"),
            context: String::new(),
            line,
        };
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| digest_error(&record.location, format!("invalid JSON: {e}")))?;
        papers.push(record.paper(&value, &mut warnings)?);
    }
    if papers.is_empty() {
        return Err(digest_error(source, "empty digest: no papers found"));
    }
    Ok(Parsed {
        papers,
        skipped: Vec::new(),
        warnings,
        header_date: None,
    })
}

/// Where one paper object sits, for its `DigestPaper::line` and for messages.
struct Record {
    /// `file:line`, the prefix of errors and warnings.
    location: String,
    /// `element N: ` inside a JSON array, where the line alone may be ambiguous.
    context: String,
    line: usize,
}

impl Record {
    fn error(&self, reason: impl std::fmt::Display) -> Error {
        digest_error(&self.location, format!("{}{reason}", self.context))
    }

    fn paper(&self, value: &Value, warnings: &mut Vec<String>) -> Result<DigestPaper> {
        let Value::Object(object) = value else {
            return Err(self.error(format!("expected a paper object, found {}", kind(value))));
        };
        // A title is one line wherever it came from; arXiv metadata wraps long ones.
        let title = self
            .required_text(object, "title")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let abstract_text = self.required_text(object, "abstract")?.trim().to_string();
        let date = self.optional_text(object, "date")?.and_then(|raw| {
            let date = raw
                .get(..10)
                .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
            if date.is_none() {
                warnings.push(format!(
                    "{}: {}date `{}` is not YYYY-MM-DD; ignored",
                    self.location,
                    self.context,
                    excerpt(&raw, 40)
                ));
            }
            date.map(str::to_string)
        });
        let mut categories = self.string_list(object, "categories", split_categories)?;
        if let Some(primary) = self.optional_text(object, "primary_category")? {
            if !categories.contains(&primary) {
                categories.insert(0, primary);
            }
        }
        Ok(DigestPaper {
            title,
            abstract_text,
            arxiv_id: self.optional_text(object, "id")?,
            date,
            url: self.optional_text(object, "url")?,
            authors: self.string_list(object, "authors", split_authors)?,
            categories,
            line: self.line,
        })
    }

    fn required_text<'v>(&self, object: &'v Map<String, Value>, field: &str) -> Result<&'v str> {
        match object.get(field) {
            None => Err(self.error(format!("missing required field `{field}`"))),
            Some(Value::Null) => Err(self.error(format!(
                "required field `{field}` is null; it must be a string"
            ))),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(self.error(format!("field `{field}` is empty")))
            }
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.error(format!(
                "field `{field}` must be a string, found {}",
                kind(other)
            ))),
        }
    }

    /// A trimmed string field; absent, null and blank all mean "not given".
    fn optional_text(&self, object: &Map<String, Value>, field: &str) -> Result<Option<String>> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(other) => Err(self.error(format!(
                "field `{field}` must be a string, found {}",
                kind(other)
            ))),
        }
    }

    /// An array of strings, or one string that `split` breaks into items.
    fn string_list(
        &self,
        object: &Map<String, Value>,
        field: &str,
        split: fn(&str) -> Vec<String>,
    ) -> Result<Vec<String>> {
        let wrong_type = |found: &Value| {
            self.error(format!(
                "field `{field}` must be an array of strings or a string, found {}",
                kind(found)
            ))
        };
        match object.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(split(s)),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| match item {
                    Value::String(s) if s.trim().is_empty() => None,
                    Value::String(s) => Some(Ok(s.trim().to_string())),
                    other => Some(Err(wrong_type(other))),
                })
                .collect(),
            Some(other) => Err(wrong_type(other)),
        }
    }
}

/// `"A, B and C"` and `"A, B, and C"` → `[A, B, C]`.
fn split_authors(s: &str) -> Vec<String> {
    s.split(", ")
        .flat_map(|part| part.split(" and "))
        .map(|name| name.trim())
        .map(|name| name.strip_prefix("and ").unwrap_or(name).trim())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

fn split_categories(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The 1-based line on which each element of a top-level JSON array starts. Called only on
/// text that already parsed as JSON, so a simple scan of strings and nesting is exact.
fn array_element_lines(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut line = 1;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut expecting_element = false;
    for byte in text.bytes() {
        if byte == b'\n' {
            line += 1;
        }
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if depth == 1 && expecting_element && !byte.is_ascii_whitespace() && byte != b']' {
            starts.push(line);
            expecting_element = false;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                expecting_element = depth == 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expecting_element = true,
            _ => {}
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABSTRACT: &str = "We propose a method.";

    #[test]
    fn element_lines_skip_strings_and_nesting() {
        let text =
            "[\n  {\"title\": \"a, [b]\", \"x\": [1, 2]},\n\n  {\"title\": \"\\\"q\\\"\"}\n, 3]";
        assert_eq!(array_element_lines(text), [2, 4, 5]);
        assert_eq!(array_element_lines("[]"), Vec::<usize>::new());
    }

    #[test]
    fn optional_fields_and_their_shapes() {
        let text = r#"{"title": "  Wrapped\n   Title ", "abstract": " Body. ", "id": "2405.14867v2", "date": "2025-10-13T08:00:00Z",
            "url": "https://arxiv.org/abs/2405.14867", "authors": "Ada Lovelace, Alan Turing, and Grace Hopper",
            "categories": "cs.LG stat.ML", "primary_category": "cs.CL", "extra": {"ignored": true}}"#;
        let parsed = parse_json("p.json", text).unwrap();
        let paper = &parsed.papers[0];
        assert_eq!(paper.title, "Wrapped Title");
        assert_eq!(paper.abstract_text, "Body.");
        assert_eq!(paper.arxiv_id.as_deref(), Some("2405.14867v2"));
        assert_eq!(paper.date.as_deref(), Some("2025-10-13"));
        assert_eq!(
            paper.authors,
            ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
        );
        assert_eq!(paper.categories, ["cs.CL", "cs.LG", "stat.ML"]);
        assert_eq!(paper.line, 1);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn primary_category_is_not_duplicated() {
        let text = format!(
            r#"{{"title": "T", "abstract": "{ABSTRACT}", "categories": ["cs.CV", "cs.AI"], "primary_category": "cs.AI", "authors": ["A", " ", "B"]}}"#
        );
        let paper = &parse_jsonl("p.jsonl", &text).unwrap().papers[0];
        assert_eq!(paper.categories, ["cs.CV", "cs.AI"]);
        assert_eq!(paper.authors, ["A", "B"]);
    }

    #[test]
    fn bad_date_is_a_warning() {
        let text = format!(r#"{{"title": "T", "abstract": "{ABSTRACT}", "date": "yesterday"}}"#);
        let parsed = parse_jsonl("p.jsonl", &text).unwrap();
        assert_eq!(parsed.papers[0].date, None);
        assert_eq!(
            parsed.warnings,
            ["p.jsonl:1: date `yesterday` is not YYYY-MM-DD; ignored"]
        );
    }

    #[test]
    fn errors_name_line_element_and_field() {
        let text = format!(
            "[\n{{\"title\": \"T\", \"abstract\": \"{ABSTRACT}\"}},\n{{\"title\": \"U\", \"abstract\": \"{ABSTRACT}\", \"authors\": [1]}}\n]"
        );
        let err = parse_json("p.json", &text).err().unwrap().to_string();
        assert_eq!(
            err,
            "p.json:3: element 1: field `authors` must be an array of strings or a string, found a number"
        );
        let text = format!("{{\"title\": \"T\", \"abstract\": \"{ABSTRACT}\"}}\n\n{{\"abstract\": \"{ABSTRACT}\"}}\n");
        let err = parse_jsonl("p.jsonl", &text).err().unwrap().to_string();
        assert_eq!(err, "p.jsonl:3: missing required field `title`");
        let err = parse_jsonl("p.jsonl", "{\"title\": \"T\", \"abstract\": \"  \"}")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "p.jsonl:1: field `abstract` is empty");
        let err = parse_jsonl("p.jsonl", "{\"title\": \"T\", \"abstract\": null}")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "p.jsonl:1: required field `abstract` is null; it must be a string"
        );
        let err = parse_jsonl("p.jsonl", "[1]").err().unwrap().to_string();
        assert_eq!(err, "p.jsonl:1: expected a paper object, found an array");
        let err = parse_json("p.json", "{\"a\":1}\n{\"b\":2}")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("use format `jsonl`"), "{err}");
        let err = parse_json("p.json", "[]").err().unwrap().to_string();
        assert!(err.contains("no papers found"), "{err}");
    }
}
