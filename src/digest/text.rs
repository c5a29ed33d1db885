//! The trending-papers text digest: optional header lines (`new`, `Subscribe`, a date such as
//! `Mar 11`, ...) and then paragraphs, separated by blank lines, that alternate between a
//! one-line title and its abstract.
//!
//! Titles and abstracts are stored verbatim apart from line-ending whitespace; a multi-line
//! abstract is joined with single spaces. Text digests carry no arXiv ids.

use super::{digest_error, excerpt, parse_month_day, MonthDay, Parsed};
use crate::error::Result;
use crate::paper::DigestPaper;

/// Lines the trending-papers page puts above the list; compared case-insensitively.
const HEADER_LINES: [&str; 4] = [
    "new",
    "get trending papers in your email inbox!",
    "subscribe",
    "byak and the research community",
];

/// A paragraph this long is an abstract: real titles stay well below it (the longest in the
/// sample digests is 173 characters; the shortest abstract 244).
const ABSTRACT_MIN_CHARS: usize = 200;
/// A shorter paragraph still reads as an abstract when it is a sentence of at least this many
/// words. Titles reach 25 words but do not end with a full stop.
const ABSTRACT_MIN_WORDS: usize = 20;
/// A short sentence between two titles is taken as a (very short) abstract from this many
/// words on, rather than as a title that lost its abstract.
const SHORT_ABSTRACT_MIN_WORDS: usize = 5;

/// A run of consecutive non-blank lines.
struct Block<'a> {
    /// 1-based line number of the first line.
    line: usize,
    lines: Vec<&'a str>,
}

impl Block<'_> {
    fn text(&self) -> String {
        let mut out = String::from(self.lines.first().copied().unwrap_or_default());
        for line in self.lines.iter().skip(1) {
            out.push(' ');
            out.push_str(line.trim_start());
        }
        out
    }

    fn is_abstract(&self) -> bool {
        if self.lines.len() > 1 {
            return true;
        }
        let text = self.lines.first().copied().unwrap_or_default();
        text.chars().count() >= ABSTRACT_MIN_CHARS
            || (ends_like_sentence(text) && text.split_whitespace().count() >= ABSTRACT_MIN_WORDS)
    }

    fn is_title(&self) -> bool {
        self.lines.len() == 1 && !self.is_abstract()
    }

    fn is_short_abstract(&self) -> bool {
        self.lines.first().is_some_and(|text| {
            ends_like_sentence(text) && text.split_whitespace().count() >= SHORT_ABSTRACT_MIN_WORDS
        })
    }
}

/// Ends with `.` or `!`, allowing closing quotes and brackets. `?` does not count: titles
/// often are questions, abstracts rarely end with one.
fn ends_like_sentence(text: &str) -> bool {
    text.trim_end_matches(['"', '\'', ')', ']', '”', '’'])
        .ends_with(['.', '!'])
}

fn is_header_line(line: &str) -> bool {
    let line = line.trim();
    HEADER_LINES.iter().any(|h| h.eq_ignore_ascii_case(line))
}

pub(super) fn parse(source: &str, text: &str) -> Result<Parsed> {
    let (header_date, saw_header, blocks) = split_blocks(text);
    if blocks.is_empty() {
        let reason = if saw_header {
            "no papers found (only header lines)"
        } else {
            "empty digest: no papers found"
        };
        return Err(digest_error(source, reason));
    }

    let mut papers = Vec::new();
    let mut skipped = Vec::new();
    let mut i = 0;
    while let Some(block) = blocks.get(i) {
        if !block.is_title() {
            skipped.push(format!(
                "{source}:{}: paragraph `{}` has no title; skipped",
                block.line,
                excerpt(&block.text(), 60)
            ));
            i += 1;
            continue;
        }
        let title = block.lines.first().copied().unwrap_or_default();
        let next = blocks.get(i + 1);
        // A short paragraph followed by an abstract is the next paper's title, so this title
        // lost its abstract; otherwise a short sentence is accepted as a terse abstract.
        let has_abstract = next.is_some_and(|next| {
            next.is_abstract()
                || (next.is_short_abstract() && !blocks.get(i + 2).is_some_and(Block::is_abstract))
        });
        match next {
            Some(next) if has_abstract => {
                papers.push(DigestPaper {
                    title: title.to_string(),
                    abstract_text: next.text(),
                    arxiv_id: None,
                    date: None,
                    url: None,
                    authors: Vec::new(),
                    categories: Vec::new(),
                    line: block.line,
                });
                i += 2;
            }
            _ => {
                skipped.push(format!(
                    "{source}:{}: title `{}` has no abstract; skipped",
                    block.line,
                    excerpt(title, 120)
                ));
                i += 1;
            }
        }
    }

    if papers.is_empty() {
        return Err(digest_error(
            source,
            format!(
                "no papers found: none of the {} paragraphs is a one-line title followed by a \
                 blank line and its abstract",
                blocks.len()
            ),
        ));
    }
    Ok(Parsed {
        papers,
        skipped,
        warnings: Vec::new(),
        header_date,
    })
}

/// Splits the text into paragraphs after skipping the header lines at the top. Returns the
/// header's date, whether any header line was seen, and the paragraphs.
fn split_blocks(text: &str) -> (Option<MonthDay>, bool, Vec<Block<'_>>) {
    let mut header_date = None;
    let mut saw_header = false;
    let mut in_header = true;
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    // `lines` also strips the `\r` of CRLF; `trim_end` takes trailing spaces and stray `\r`s.
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.is_empty() {
            blocks.extend(current.take());
            continue;
        }
        if in_header {
            if is_header_line(line) {
                saw_header = true;
                continue;
            }
            if header_date.is_none() {
                if let Some(date) = parse_month_day(line) {
                    header_date = Some(date);
                    saw_header = true;
                    continue;
                }
            }
            in_header = false;
        }
        match current.as_mut() {
            Some(block) => block.lines.push(line),
            None => {
                current = Some(Block {
                    line: index + 1,
                    lines: vec![line],
                })
            }
        }
    }
    blocks.extend(current);
    (header_date, saw_header, blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_abstract(topic: &str) -> String {
        format!(
            "We study {topic} in depth. {}This establishes a new baseline for {topic}.",
            "Our experiments cover many settings and show consistent gains across tasks. "
                .repeat(3)
        )
    }

    fn titles(parsed: &Parsed) -> Vec<&str> {
        parsed.papers.iter().map(|p| p.title.as_str()).collect()
    }

    #[test]
    fn header_date_and_pairs() {
        let text = format!(
            "new\n\nSubscribe\n\nMar 11\n\nFirst Paper\n\n{}\n\nSecond Paper\n\n{}\n",
            long_abstract("a"),
            long_abstract("b")
        );
        let parsed = parse("d.txt", &text).unwrap();
        assert_eq!(titles(&parsed), ["First Paper", "Second Paper"]);
        assert_eq!(parsed.papers[0].line, 7);
        assert_eq!(parsed.papers[1].line, 11);
        assert_eq!(
            parsed.header_date,
            Some(MonthDay {
                year: None,
                month: 3,
                day: 11
            })
        );
        assert!(parsed.skipped.is_empty());
    }

    #[test]
    fn header_lines_without_blank_lines_between() {
        let text = format!(
            "new\nGet trending papers in your email inbox!\nMar 11\n\nOnly Paper\n\n{}",
            long_abstract("a")
        );
        let parsed = parse("d.txt", &text).unwrap();
        assert_eq!(titles(&parsed), ["Only Paper"]);
        assert_eq!(parsed.papers[0].line, 5);
    }

    #[test]
    fn multi_line_abstract_is_joined() {
        let text = "A Title\n\nFirst line of the abstract\n  second line.\nthird line.\n\nNext\n\nAnother abstract\nspread over lines.\n";
        let parsed = parse("d.txt", text).unwrap();
        assert_eq!(titles(&parsed), ["A Title", "Next"]);
        assert_eq!(
            parsed.papers[0].abstract_text,
            "First line of the abstract second line. third line."
        );
    }

    #[test]
    fn title_without_abstract_before_another_title() {
        let text = format!(
            "Lonely Title\n\nReal Title\n\n{}\n\nLast Title\n",
            long_abstract("a")
        );
        let parsed = parse("d.txt", &text).unwrap();
        assert_eq!(titles(&parsed), ["Real Title"]);
        assert_eq!(
            parsed.skipped,
            [
                "d.txt:1: title `Lonely Title` has no abstract; skipped",
                "d.txt:7: title `Last Title` has no abstract; skipped"
            ]
        );
    }

    #[test]
    fn short_sentence_is_a_terse_abstract() {
        let text = "Tiny Paper\n\nWe show that small things matter a lot.\n\nOther Paper\n\nAnother short but complete abstract here.\n";
        let parsed = parse("d.txt", text).unwrap();
        assert_eq!(titles(&parsed), ["Tiny Paper", "Other Paper"]);
        assert!(parsed.skipped.is_empty());
    }

    #[test]
    fn paragraph_without_title_is_skipped() {
        let text = format!(
            "T1\n\n{}\n\n{}\n\nT2\n\n{}",
            long_abstract("a"),
            long_abstract("orphan"),
            long_abstract("b")
        );
        let parsed = parse("d.txt", &text).unwrap();
        assert_eq!(titles(&parsed), ["T1", "T2"]);
        assert_eq!(parsed.skipped.len(), 1);
        assert!(parsed.skipped[0].starts_with("d.txt:5: paragraph `We study orphan"));
    }

    #[test]
    fn only_titles_is_an_error() {
        let err = parse("d.txt", "One\n\nTwo\n\nThree\n").err().unwrap();
        assert!(err.to_string().contains("no papers found"), "{err}");
        let err = parse("d.txt", "new\n\nSubscribe\n\nMar 11\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("only header lines"), "{err}");
    }

    #[test]
    fn long_question_title_is_still_a_title() {
        let title = "CiteAudit: You Cited It, But Did You Read It? A Benchmark for Verifying Scientific References in the LLM Era?";
        let text = format!("{title}\n\n{}", long_abstract("a"));
        let parsed = parse("d.txt", &text).unwrap();
        assert_eq!(titles(&parsed), [title]);
    }
}
