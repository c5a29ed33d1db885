//! `papersim profile export`: the liked papers as BibTeX or CSL JSON (what Zotero, JabRef and
//! `papersim import` read), each with the tags it is liked under as keywords.

use serde_json::{json, Value};

/// A liked paper to export, as the caller found it (in the library, or only in the log).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportEntry {
    /// papersim's id: an arXiv id, or `t:` and a title hash.
    pub id: String,
    pub title: String,
    pub abstract_text: Option<String>,
    pub authors: Vec<String>,
    /// YYYY-MM-DD.
    pub date: Option<String>,
    pub url: Option<String>,
    pub tags: Vec<String>,
}

impl ExportEntry {
    fn arxiv(&self) -> Option<&str> {
        (!self.id.starts_with("t:")).then_some(self.id.as_str())
    }
}

/// A BibTeX field value: braces and backslashes escaped, so that a title's own braces cannot
/// end the field early, and `&`, `%`, `#`, `$`, `_` made literal for LaTeX.
fn bib_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '{' | '}' | '&' | '%' | '#' | '$' | '_' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The entries as BibTeX: `@misc` for arXiv papers (with `eprint` and `archivePrefix`, as
/// arXiv's own export), `@article` otherwise; keys from the id, unique.
pub fn to_bibtex(entries: &[ExportEntry]) -> String {
    let mut out = String::new();
    let mut keys = std::collections::HashSet::new();
    for e in entries {
        let base: String = match e.arxiv() {
            Some(a) => format!("arxiv{a}"),
            None => e.id.trim_start_matches("t:").to_string(),
        }
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
        let mut key = base.clone();
        let mut n = 1;
        while !keys.insert(key.clone()) {
            n += 1;
            key = format!("{base}_{n}");
        }
        let kind = if e.arxiv().is_some() {
            "misc"
        } else {
            "article"
        };
        out.push_str(&format!("@{kind}{{{key},\n"));
        let mut field = |name: &str, value: &str| {
            out.push_str(&format!("  {name} = {{{}}},\n", bib_escape(value)));
        };
        field("title", &e.title);
        if !e.authors.is_empty() {
            field("author", &e.authors.join(" and "));
        }
        if let Some(d) = &e.date {
            field("date", d);
            field("year", &d[..4.min(d.len())]);
        }
        if let Some(a) = e.arxiv() {
            field("eprint", a);
            field("archivePrefix", "arXiv");
        }
        if let Some(u) = &e.url {
            field("url", u);
        }
        if let Some(a) = &e.abstract_text {
            field("abstract", a);
        }
        if !e.tags.is_empty() {
            field("keywords", &e.tags.join(", "));
        }
        out.push_str("}\n\n");
    }
    out
}

/// The entries as CSL JSON (an array of items; tags in `keyword`, the arXiv id in `number`
/// as Zotero writes preprints).
pub fn to_csl_json(entries: &[ExportEntry]) -> Value {
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut item = json!({
                "id": e.id,
                "type": if e.arxiv().is_some() { "article" } else { "article-journal" },
                "title": e.title,
            });
            let obj = item.as_object_mut().expect("an object");
            if let Some(a) = &e.abstract_text {
                obj.insert("abstract".into(), json!(a));
            }
            if !e.authors.is_empty() {
                let authors: Vec<Value> = e.authors.iter().map(|a| json!({"literal": a})).collect();
                obj.insert("author".into(), json!(authors));
            }
            if let Some(d) = &e.date {
                let parts: Vec<i64> = d.split('-').filter_map(|p| p.parse().ok()).collect();
                obj.insert("issued".into(), json!({"date-parts": [parts]}));
            }
            if let Some(u) = &e.url {
                obj.insert("URL".into(), json!(u));
            }
            if let Some(a) = e.arxiv() {
                obj.insert("number".into(), json!(format!("arXiv:{a}")));
            }
            if !e.tags.is_empty() {
                obj.insert("keyword".into(), json!(e.tags.join(", ")));
            }
            item
        })
        .collect();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bibtex_escapes_what_would_break_a_field() {
        let e = ExportEntry {
            id: "2405.14867".into(),
            title: "A {braced} 50% & more_".into(),
            tags: vec!["distillation".into()],
            ..ExportEntry::default()
        };
        let bib = to_bibtex(&[e]);
        assert!(
            bib.contains("title = {A \\{braced\\} 50\\% \\& more\\_}"),
            "{bib}"
        );
        assert!(bib.starts_with("@misc{arxiv2405_14867,"), "{bib}");
        assert!(bib.contains("eprint = {2405.14867}"));
    }
}
