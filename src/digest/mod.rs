//! Digest parsing: turns a digest file (plain text, JSON or JSON Lines, possibly gzipped),
//! a directory of them, or stdin into [`DigestPaper`] records.
//!
//! This module owns the public API, input handling (gzip, BOM, binary and UTF-8 checks),
//! format detection and the digest's date. The formats themselves live in [`text`] and
//! [`json`]. Everything here is total over arbitrary bytes: malformed input yields an
//! [`Error::Digest`], never a panic, and problems that do not stop the import are returned
//! instead of being printed: entries that could not be read as papers as [`Digest::skipped`],
//! problems with papers that were read as [`Digest::warnings`].
//!
//! May import: `crate::error` and `crate::paper` only: the first stage of the pipeline knows
//! nothing of models, indexes or the library.

mod json;
mod text;

use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use regex::Regex;

use crate::error::{Error, Result};
use crate::paper::DigestPaper;

/// The `source` of a digest read from standard input.
pub const STDIN_SOURCE: &str = "<stdin>";

/// Decompressed digests larger than this are refused, so a gzip bomb cannot exhaust memory.
const MAX_DIGEST_BYTES: u64 = 1 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Which parser reads a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Chosen from the content (see [`parse_bytes`]).
    #[default]
    Auto,
    /// The trending-papers text digest: title, blank line, abstract, blank line, ...
    Text,
    /// A JSON array of paper objects (or a single object).
    Json,
    /// One JSON paper object per line.
    Jsonl,
}

impl FromStr for InputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(InputFormat::Auto),
            "text" | "txt" => Ok(InputFormat::Text),
            "json" => Ok(InputFormat::Json),
            "jsonl" | "ndjson" => Ok(InputFormat::Jsonl),
            _ => Err(Error::InvalidInput(format!(
                "unknown digest format `{s}`; expected one of: auto, text, json, jsonl"
            ))),
        }
    }
}

/// How to read digests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Parser to use; [`InputFormat::Auto`] detects it.
    pub format: InputFormat,
    /// The digest's date. When given it replaces whatever the file name or header says.
    pub date: Option<NaiveDate>,
}

/// One parsed digest file.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// The file path as given, or `<stdin>`.
    pub source: String,
    /// The digest's date, when the options, header or file name tell it.
    pub date: Option<NaiveDate>,
    pub papers: Vec<DigestPaper>,
    /// Entries of the file that are not among `papers` (a title without its abstract), each
    /// prefixed with `source:line:` and saying why.
    pub skipped: Vec<String>,
    /// Problems with papers that are among `papers` (a date that is not a date, ignored),
    /// each prefixed with `source:line:`.
    pub warnings: Vec<String>,
}

/// Reads a digest file, every digest in a directory, or stdin when `path` is `-`.
///
/// A directory yields one [`Digest`] per regular file directly inside it, sorted by file name;
/// hidden files (names starting with `.`) and subdirectories are skipped. Any file that fails
/// to parse fails the whole call, so a caller never imports half a directory by accident.
pub fn read_path(path: &Path, opts: &ParseOptions) -> Result<Vec<Digest>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(STDIN_SOURCE, e))?;
        return Ok(vec![parse_bytes(STDIN_SOURCE, &bytes, opts)?]);
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        return Ok(vec![parse_bytes(
            &path.display().to_string(),
            &bytes,
            opts,
        )?]);
    }
    let files = digest_files_in(path)?;
    if files.is_empty() {
        return Err(digest_error(
            path.display().to_string(),
            "directory contains no digest files",
        ));
    }
    files
        .iter()
        .map(|file| {
            let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
            parse_bytes(&file.display().to_string(), &bytes, opts)
        })
        .collect()
}

/// The regular, non-hidden files directly inside `dir`, sorted by file name.
fn digest_files_in(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let file = entry.path();
        // `fs::metadata` follows symlinks, so a link to a digest counts as a digest.
        let meta = std::fs::metadata(&file).map_err(|e| Error::io(&file, e))?;
        if meta.is_file() {
            files.push(file);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Parses one digest held in memory. `source` names it in messages and may carry a
/// `YYYY-MM-DD` date in its file name.
///
/// Gzip is recognised by its magic bytes, not the extension. With [`InputFormat::Auto`], after
/// gunzip and BOM removal, a first non-blank `[` means a JSON array, `{` a single JSON object
/// or JSON Lines, anything else the text format.
pub fn parse_bytes(source: &str, bytes: &[u8], opts: &ParseOptions) -> Result<Digest> {
    let decompressed;
    let bytes = if bytes.starts_with(&GZIP_MAGIC) {
        decompressed = gunzip(source, bytes)?;
        decompressed.as_slice()
    } else {
        bytes
    };
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let text = decode_text(source, bytes)?;
    let text = lone_cr_to_lf(text);
    let text = text.as_ref();
    if text.trim().is_empty() {
        return Err(digest_error(source, "empty digest: no papers found"));
    }
    let format = match opts.format {
        InputFormat::Auto => detect_format(text),
        forced => forced,
    };
    let parsed = match format {
        InputFormat::Text => text::parse(source, text)?,
        InputFormat::Json => json::parse_json(source, text)?,
        InputFormat::Auto | InputFormat::Jsonl => {
            // A lone (perhaps pretty-printed) object is a one-paper JSON digest; anything
            // else that starts with `{` is JSON Lines.
            if opts.format == InputFormat::Auto && json::is_single_object(text) {
                json::parse_json(source, text)?
            } else {
                json::parse_jsonl(source, text)?
            }
        }
    };
    let date = opts
        .date
        .or_else(|| resolve_date(parsed.header_date, date_in_file_name(source)));
    let mut papers = parsed.papers;
    check_papers(source, &papers)?;
    if let Some(date) = date {
        let iso = date.format("%Y-%m-%d").to_string();
        for paper in papers.iter_mut().filter(|p| p.date.is_none()) {
            paper.date = Some(iso.clone());
        }
    }
    Ok(Digest {
        source: source.to_string(),
        date,
        papers,
        skipped: parsed.skipped,
        warnings: parsed.warnings,
    })
}

/// Longest title papersim accepts, in bytes. Real titles stay under 300 characters.
pub const MAX_TITLE_BYTES: usize = 2_000;
/// Longest abstract papersim accepts, in bytes. arXiv caps abstracts at 1,920 characters; a
/// paragraph fifty times that is not an abstract (a paper's full text, a log file) and would be
/// stored, and rewritten with every library generation, for nothing: the encoder reads only
/// the first few hundred tokens.
pub const MAX_ABSTRACT_BYTES: usize = 100_000;

/// Refuses papers no digest should hold: oversized titles or abstracts. A title given twice
/// is not refused: which papers are one is the library's decision (an alias or two papers),
/// and it reports it.
fn check_papers(source: &str, papers: &[DigestPaper]) -> Result<()> {
    for p in papers {
        let at = format!("{source}:{}", p.line);
        if p.title.len() > MAX_TITLE_BYTES {
            return Err(digest_error(
                at,
                format!(
                    "title `{}` is {}; papersim accepts titles up to {}",
                    excerpt(&p.title, 60),
                    human_bytes(p.title.len()),
                    human_bytes(MAX_TITLE_BYTES)
                ),
            ));
        }
        if p.abstract_text.len() > MAX_ABSTRACT_BYTES {
            return Err(digest_error(
                at,
                format!(
                    "the abstract of `{}` is {}; papersim accepts abstracts up to {} (is this file a paper digest?)",
                    excerpt(&p.title, 60),
                    human_bytes(p.abstract_text.len()),
                    human_bytes(MAX_ABSTRACT_BYTES)
                ),
            ));
        }
    }
    Ok(())
}

/// `1234567` → `1.2 MB`, for sizes in messages.
fn human_bytes(n: usize) -> String {
    match n {
        0..1_000 => format!("{n} bytes"),
        1_000..1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// What a format parser hands back; the date is completed here, where the file name is known.
pub(crate) struct Parsed {
    pub papers: Vec<DigestPaper>,
    /// See [`Digest::skipped`].
    pub skipped: Vec<String>,
    /// See [`Digest::warnings`].
    pub warnings: Vec<String>,
    /// Month and day from a header line such as `Mar 11`.
    pub header_date: Option<MonthDay>,
}

/// A date as digest headers print it, usually without its year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MonthDay {
    /// Present only when the header spells it out (`Mar 11, 2026`).
    pub year: Option<i32>,
    pub month: u32,
    pub day: u32,
}

pub(crate) fn digest_error(path: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Digest {
        path: path.into(),
        reason: reason.into(),
    }
}

fn detect_format(text: &str) -> InputFormat {
    match text.trim_start().chars().next() {
        Some('[') => InputFormat::Json,
        Some('{') => InputFormat::Jsonl,
        _ => InputFormat::Text,
    }
}

fn gunzip(source: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // MultiGzDecoder because `cat a.gz b.gz` is a valid gzip file too.
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(MAX_DIGEST_BYTES + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| digest_error(source, format!("corrupt gzip data: {e}")))?;
    if out.len() as u64 > MAX_DIGEST_BYTES {
        return Err(digest_error(
            source,
            format!("decompressed digest is larger than {MAX_DIGEST_BYTES} bytes"),
        ));
    }
    Ok(out)
}

/// Checks that `bytes` are text and decodes them. Binary data is told apart from a stray bad
/// byte so the message says which: "this is not a digest" versus "fix byte N".
fn decode_text<'a>(source: &str, bytes: &'a [u8]) -> Result<&'a str> {
    let mut suspicious = 0usize;
    for chunk in bytes.utf8_chunks() {
        suspicious += chunk.invalid().len();
        suspicious += chunk
            .valid()
            .bytes()
            .filter(|b| b.is_ascii_control() && !matches!(b, b'\t' | b'\n' | b'\r' | b'\x0c'))
            .count();
    }
    // One in ten bytes being control or invalid is far beyond any real digest.
    if bytes.contains(&0) || suspicious * 10 > bytes.len() {
        return Err(digest_error(source, "not a text digest (binary data)"));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        digest_error(
            source,
            format!("invalid UTF-8 at byte {offset} (line {line})"),
        )
    })
}

/// A text whose lines end in a lone CR (classic Mac OS), with LF endings instead, so that it
/// reads line by line like any other; text with LF (or CRLF) endings is returned as it is, a
/// stray CR in one of its lines included.
fn lone_cr_to_lf(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') && !text.contains('\n') {
        std::borrow::Cow::Owned(text.replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The first valid `YYYY-MM-DD` in the file-name part of `source`.
fn date_in_file_name(source: &str) -> Option<NaiveDate> {
    static DATE: OnceLock<Regex> = OnceLock::new();
    let re = DATE.get_or_init(|| Regex::new(r"(\d{4})-(\d{2})-(\d{2})").expect("valid regex"));
    let name = Path::new(source).file_name()?.to_str()?;
    re.captures_iter(name).find_map(|c| {
        NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?)
    })
}

/// Combines a header's month and day with the file name's date. The header wins on month and
/// day; the year is the one that puts the header date closest to the file name's date, so a
/// `Dec 31` digest saved as `..._2026-01-01` lands in 2025.
fn resolve_date(header: Option<MonthDay>, from_name: Option<NaiveDate>) -> Option<NaiveDate> {
    let Some(header) = header else {
        return from_name;
    };
    if let Some(year) = header.year {
        return NaiveDate::from_ymd_opt(year, header.month, header.day);
    }
    let from_name = from_name?;
    let year = from_name.year();
    [year, year - 1, year + 1]
        .into_iter()
        .filter_map(|y| NaiveDate::from_ymd_opt(y, header.month, header.day))
        .min_by_key(|d| (*d - from_name).num_days().abs())
}

/// Parses a header date line: a month name or abbreviation and a day (`Mar 11`, `March 11`,
/// `Sept. 3`), optionally followed by a year (`Mar 11, 2026`).
pub(crate) fn parse_month_day(line: &str) -> Option<MonthDay> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let mut words = line.split_whitespace();
    let month_word = words.next()?.trim_end_matches('.').to_lowercase();
    let day_word = words.next()?.trim_end_matches(',');
    let year = match words.next() {
        None => None,
        Some(year) if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) => {
            Some(year.parse().ok()?)
        }
        Some(_) => return None,
    };
    if words.next().is_some() || day_word.is_empty() || day_word.len() > 2 {
        return None;
    }
    let day: u32 = day_word.parse().ok()?;
    let month = MONTHS.iter().position(|full| {
        *full == month_word
            || ((3..=4).contains(&month_word.len()) && full.starts_with(month_word.as_str()))
    })?;
    let month = month as u32 + 1;
    // Without a year, check against a leap year so that Feb 29 passes.
    NaiveDate::from_ymd_opt(year.unwrap_or(2024), month, day)?;
    Some(MonthDay { year, month, day })
}

/// The first `max` characters of `s`, with `…` when cut, for quoting user text in messages.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(month: u32, day: u32) -> Option<MonthDay> {
        Some(MonthDay {
            year: None,
            month,
            day,
        })
    }

    #[test]
    fn month_day_lines() {
        assert_eq!(parse_month_day("Mar 11"), md(3, 11));
        assert_eq!(parse_month_day("March 1"), md(3, 1));
        assert_eq!(parse_month_day("sept. 03"), md(9, 3));
        let with_year = parse_month_day("Dec 31, 2025");
        assert_eq!(with_year.and_then(|d| d.year), Some(2025));
        assert_eq!(parse_month_day("Feb 29, 2025"), None);
        assert_eq!(parse_month_day("Feb 29"), md(2, 29));
        assert_eq!(parse_month_day("Feb 30"), None);
        assert_eq!(parse_month_day("Mar 111"), None);
        assert_eq!(parse_month_day("Marching 11"), None);
        assert_eq!(parse_month_day("May the force"), None);
        assert_eq!(parse_month_day("Ma 1"), None);
    }

    #[test]
    fn file_name_dates() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        assert_eq!(date_in_file_name("data/hf_2026-03-01.txt"), d(2026, 3, 1));
        assert_eq!(
            date_in_file_name("arxiv_2025-03-18_cs.CV.txt.gz"),
            d(2025, 3, 18)
        );
        // The directory part does not date the file.
        assert_eq!(date_in_file_name("2026-03-01/digest.txt"), None);
        assert_eq!(date_in_file_name("x_2026-13-01.txt"), None);
        assert_eq!(date_in_file_name(STDIN_SOURCE), None);
    }

    #[test]
    fn header_date_takes_nearest_year() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        assert_eq!(resolve_date(md(3, 11), d(2026, 3, 11)), d(2026, 3, 11));
        assert_eq!(resolve_date(md(12, 31), d(2026, 1, 1)), d(2025, 12, 31));
        assert_eq!(resolve_date(md(1, 2), d(2025, 12, 30)), d(2026, 1, 2));
        assert_eq!(resolve_date(md(3, 11), None), None);
        assert_eq!(
            resolve_date(parse_month_day("Mar 11, 2024"), d(2026, 1, 1)),
            d(2024, 3, 11)
        );
        assert_eq!(resolve_date(None, d(2026, 3, 1)), d(2026, 3, 1));
        // Feb 29 needs a leap year near the file date.
        assert_eq!(resolve_date(md(2, 29), d(2025, 3, 1)), d(2024, 2, 29));
    }

    #[test]
    fn format_names() {
        assert_eq!("auto".parse::<InputFormat>().unwrap(), InputFormat::Auto);
        assert_eq!("TEXT".parse::<InputFormat>().unwrap(), InputFormat::Text);
        assert_eq!("json".parse::<InputFormat>().unwrap(), InputFormat::Json);
        assert_eq!("jsonl".parse::<InputFormat>().unwrap(), InputFormat::Jsonl);
        let err = "yaml".parse::<InputFormat>().unwrap_err().to_string();
        assert!(
            err.contains("yaml") && err.contains("auto, text, json, jsonl"),
            "{err}"
        );
    }

    #[test]
    fn binary_and_bad_utf8_are_told_apart() {
        let err = decode_text("f", b"abc\0def").unwrap_err().to_string();
        assert!(err.contains("binary"), "{err}");
        let err = decode_text("f", &[0xff, 0xfe, 0x01, 0x80])
            .unwrap_err()
            .to_string();
        assert!(err.contains("binary"), "{err}");
        let mut bytes = b"Title\n\nAbstract text that is long enough\n".repeat(5);
        bytes.push(0xc3);
        bytes.extend_from_slice(b"(\nmore\n");
        let err = decode_text("f", &bytes).unwrap_err().to_string();
        assert!(err.contains("invalid UTF-8 at byte 205 (line 16)"), "{err}");
    }

    #[test]
    fn detection_and_gzip_errors_do_not_panic() {
        let opts = ParseOptions::default();
        for input in [
            &b""[..],
            b"\x1f",
            b"\x1f\x8b",
            b"\x1f\x8b\x08\x00garbage",
            b"\xef\xbb\xbf",
            b"[",
            b"{",
            b"{}",
            b"[{}]",
            b"\n\n\r\n",
            b"\xef\xbb",
        ] {
            assert!(parse_bytes("f", input, &opts).is_err(), "{input:?}");
        }
    }

    #[test]
    fn oversized_papers_are_refused_and_repeated_titles_are_not() {
        let opts = ParseOptions::default();
        let abs = "We study a problem and report what we found in twenty words or so here.";
        let err = |text: String| {
            parse_bytes("d.txt", text.as_bytes(), &opts)
                .unwrap_err()
                .to_string()
        };
        let huge = format!("Title\n\n{}\n", "x ".repeat(MAX_ABSTRACT_BYTES));
        let msg = err(huge);
        assert!(
            msg.contains("d.txt:1") && msg.contains("up to 100.0 KB"),
            "{msg}"
        );
        let long_title = format!(
            r#"[{{"title": "{}", "abstract": "{abs}"}}]"#,
            "t".repeat(MAX_TITLE_BYTES + 1)
        );
        assert!(err(long_title).contains("accepts titles up to"));
        // One title twice, with the same or another abstract, is read as two papers: which
        // papers are one is the library's decision.
        for second in [abs.replace(' ', "  "), format!("{abs} Changed.")] {
            let twice = format!("A Title\n\n{abs}\n\nA title!\n\n{second}\n");
            let papers = parse_bytes("d.txt", twice.as_bytes(), &opts)
                .unwrap()
                .papers;
            assert_eq!(papers.len(), 2);
            assert_eq!(papers[1].abstract_text, second);
        }
    }

    #[test]
    fn lone_cr_line_endings_read_as_lines() {
        let abs = "We study a problem and report what we found in twenty words or so here.";
        let lf = format!("Mar 11\n\nA Title\n\n{abs}\n\nAnother Title\n\n{abs} Again.\n");
        let cr = lf.replace('\n', "\r");
        let opts = ParseOptions::default();
        let (a, b) = (
            parse_bytes("d.txt", lf.as_bytes(), &opts).unwrap(),
            parse_bytes("d.txt", cr.as_bytes(), &opts).unwrap(),
        );
        assert_eq!(a.papers, b.papers);
        assert_eq!(b.papers.len(), 2);
        assert_eq!(b.papers[1].line, 7);
        // CRLF and a stray CR inside an LF file are left to the line reader.
        assert_eq!(lone_cr_to_lf("a\r\nb\rc\n"), "a\r\nb\rc\n");
    }

    #[test]
    fn excerpt_respects_char_boundaries() {
        assert_eq!(excerpt("TÜLU 3", 2), "TÜ…");
        assert_eq!(excerpt("abc", 3), "abc");
    }
}
