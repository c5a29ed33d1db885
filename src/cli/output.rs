//! Rendering results for people (a table that fits the terminal, Markdown) and machines
//! (stable JSON).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

// The JSON documents are the library's (`papersim::report`), shared with `papersim serve`.
pub use papersim::report::{library_rows, ExplainTarget, Report};
// Counts in messages ("1 paper"), also the library's own errors'.
pub use papersim::paper::papers;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// `text` from a digest, a library or a file name, made safe to show on a terminal: every
/// control character (C0, tab and newline included, DEL, C1), the bidirectional controls
/// that reorder what follows them, and the line and paragraph separators are shown as
/// `\u{..}` escapes, so that a title cannot recolour, retitle or rearrange the terminal, nor
/// break a table row. JSON output is not passed through this: serde escapes what JSON must.
pub fn printable(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
            )
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A message of several lines (an error, a warning) through [`printable`] line by line, its
/// newlines kept.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    if !text.contains('\n') {
        return printable(text);
    }
    Cow::Owned(
        text.split('\n')
            .map(printable)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Width available for the table.
fn terminal_width() -> usize {
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
        return w as usize;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(if std::io::stdout().is_terminal() {
            80
        } else {
            160
        })
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn print_report(
    out: &mut dyn Write,
    report: &Report,
    format: Format,
    heading: &str,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)
        }
        Format::Markdown => {
            writeln!(out, "### {}\n", printable(heading))?;
            for r in &report.results {
                let title = match &r.url {
                    Some(u) => format!("[{}]({})", printable(&r.title), printable(u)),
                    None => printable(&r.title).into_owned(),
                };
                let date = r
                    .date
                    .as_deref()
                    .map(|d| format!(", {}", printable(d)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}. {title} — `{}`{date}, score {:.3}",
                    r.rank,
                    printable(&r.id),
                    r.score
                )?;
                if let Some(c) = &r.closest_like {
                    writeln!(out, "   - closest liked: {}", printable(&c.title))?;
                }
                if let Some(e) = &r.explanation {
                    writeln!(out, "   - > {}", printable(e))?;
                }
            }
            Ok(())
        }
        Format::Table => {
            if report.results.is_empty() {
                return writeln!(out, "no results");
            }
            let width = terminal_width().max(60);
            let id_w = report
                .results
                .iter()
                .map(|r| printable(&r.id).chars().count())
                .max()
                .unwrap_or(2)
                .max(2);
            let fixed = 4 + 1 + 6 + 1 + id_w + 1 + 1 + 10;
            let title_w = width.saturating_sub(fixed + 2).max(20);
            writeln!(
                out,
                "{:>4} {:>6} {:<id_w$}  {:<title_w$} {:<10}",
                "rank", "score", "id", "title", "date"
            )?;
            for r in &report.results {
                writeln!(
                    out,
                    "{:>4} {:>6.3} {:<id_w$}  {:<title_w$} {:<10}",
                    r.rank,
                    r.score,
                    printable(&r.id),
                    truncate(&printable(&r.title), title_w),
                    printable(r.date.as_deref().unwrap_or(""))
                )?;
                if let Some(c) = &r.closest_like {
                    writeln!(
                        out,
                        "{:>12} ↳ like: {}",
                        "",
                        truncate(&printable(&c.title), width.saturating_sub(22))
                    )?;
                }
                if let Some(e) = &r.explanation {
                    writeln!(
                        out,
                        "{:>12} “{}”",
                        "",
                        truncate(&printable(e), width.saturating_sub(16))
                    )?;
                }
            }
            Ok(())
        }
    }
}
