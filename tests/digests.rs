//! Digest parsing against real digests (copied into `tests/fixtures/digests/`) and malformed
//! variants built from them. Needs nothing outside the repository.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use papersim::digest::{parse_bytes, read_path, Digest, InputFormat, ParseOptions};
use papersim::Error;

const SEED_FIRST_TITLE: &str =
    "Learning Math Reasoning from Self-Sampled Correct and Partially-Correct Solutions";
const TULU_TITLE: &str = "TÜLU 3: Pushing Frontiers in Open Language Model Post-Training";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/digests")
}

fn seed_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("hf-trending-mar-11.txt")).unwrap()
}

fn seed_text() -> String {
    String::from_utf8(seed_bytes()).unwrap()
}

fn parse(source: &str, bytes: &[u8]) -> papersim::Result<Digest> {
    parse_bytes(source, bytes, &ParseOptions::default())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The `reason` of an `Error::Digest`, with its `path`.
fn digest_err(result: papersim::Result<Digest>) -> (String, String) {
    match result {
        Err(Error::Digest { path, reason }) => (path, reason),
        Err(other) => panic!("expected Error::Digest, got {other:?}"),
        Ok(d) => panic!("expected an error, got {} papers", d.papers.len()),
    }
}

/// Title and abstract of every paper, for comparing variants of one digest.
fn texts(digest: &Digest) -> Vec<(String, String)> {
    digest
        .papers
        .iter()
        .map(|p| (p.title.clone(), p.abstract_text.clone()))
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn assert_well_formed(digest: &Digest) {
    assert!(!digest.papers.is_empty(), "{}: no papers", digest.source);
    assert!(
        digest.warnings.is_empty() && digest.skipped.is_empty(),
        "{}: {:?} {:?}",
        digest.source,
        digest.warnings,
        digest.skipped
    );
    for paper in &digest.papers {
        assert!(!paper.title.trim().is_empty(), "{}", digest.source);
        assert!(
            paper.abstract_text.chars().count() >= 100,
            "{}:{}: short abstract",
            digest.source,
            paper.line
        );
        assert_ne!(paper.title, paper.abstract_text, "{}", digest.source);
        assert!(
            !digest.papers.iter().any(|p| p.abstract_text == paper.title),
            "{}:{}: a title is also an abstract",
            digest.source,
            paper.line
        );
    }
}

// ---- real digests -------------------------------------------------------------------------

#[test]
fn seed_digest_has_79_papers() {
    let digest = parse("hf-trending-mar-11.txt", &seed_bytes()).unwrap();
    assert_eq!(digest.papers.len(), 79);
    assert_eq!(digest.source, "hf-trending-mar-11.txt");
    assert_well_formed(&digest);
    let first = &digest.papers[0];
    assert_eq!(first.title, SEED_FIRST_TITLE);
    assert!(first
        .abstract_text
        .starts_with("Pretrained language models have shown"));
    assert_eq!(first.line, 11);
    assert_eq!(first.arxiv_id, None);
    assert!(digest.papers.iter().all(|p| p.arxiv_id.is_none()));
    // `Mar 11` without a year in the file name or options: the date is unknown.
    assert_eq!(digest.date, None);
    assert!(digest.papers.iter().all(|p| p.date.is_none()));
}

#[test]
fn seed_digest_date_from_options() {
    let opts = ParseOptions {
        date: Some(date(2026, 3, 11)),
        ..ParseOptions::default()
    };
    let digest = parse_bytes("hf-trending-mar-11.txt", &seed_bytes(), &opts).unwrap();
    assert_eq!(digest.date, Some(date(2026, 3, 11)));
    assert!(digest
        .papers
        .iter()
        .all(|p| p.date.as_deref() == Some("2026-03-11")));
    // The options override the header and the file name entirely.
    let opts = ParseOptions {
        date: Some(date(2024, 1, 2)),
        ..ParseOptions::default()
    };
    let digest = parse_bytes("hf_2026-03-11.txt", &seed_bytes(), &opts).unwrap();
    assert_eq!(digest.date, Some(date(2024, 1, 2)));
}

#[test]
fn seed_date_year_from_file_name() {
    let digest = parse("digests/hf_2026-03-11.txt", &seed_bytes()).unwrap();
    assert_eq!(digest.date, Some(date(2026, 3, 11)));
    assert_eq!(digest.papers[5].date.as_deref(), Some("2026-03-11"));
}

#[test]
fn non_ascii_title_is_kept_verbatim() {
    let digest = parse("seed.txt", &seed_bytes()).unwrap();
    let tulu = digest
        .papers
        .iter()
        .find(|p| p.title.starts_with("T\u{dc}LU"))
        .unwrap();
    assert_eq!(tulu.title, TULU_TITLE);
    assert_eq!(tulu.line, 79);
}

#[test]
fn hf_directory_gives_68_dated_digests() {
    let dir = fixtures().join("hf");
    let digests = read_path(&dir, &ParseOptions::default()).unwrap();
    assert_eq!(digests.len(), 68);
    let names: Vec<String> = digests
        .iter()
        .map(|d| {
            Path::new(&d.source)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for (digest, name) in digests.iter().zip(&names) {
        assert_well_formed(digest);
        assert!(digest.source.starts_with(dir.to_str().unwrap()));
        let expected = NaiveDate::parse_from_str(&name[3..13], "%Y-%m-%d").unwrap();
        assert_eq!(digest.date, Some(expected), "{name}");
        let iso = expected.to_string();
        assert!(digest
            .papers
            .iter()
            .all(|p| p.date.as_deref() == Some(&iso)));
    }
}

#[test]
fn arxiv_digests_parse() {
    let digests = read_path(&fixtures().join("arxiv"), &ParseOptions::default()).unwrap();
    assert_eq!(digests.len(), 3);
    let dates: Vec<_> = digests.iter().map(|d| d.date).collect();
    assert_eq!(
        dates,
        [
            Some(date(2025, 3, 18)),
            Some(date(2025, 4, 28)),
            Some(date(2026, 3, 1))
        ]
    );
    for digest in &digests {
        assert_well_formed(digest);
        assert!(digest.papers.len() >= 10, "{}", digest.source);
    }
}

#[test]
fn single_file_through_read_path() {
    let path = fixtures().join("hf/hf_2026-03-01.txt");
    let digests = read_path(&path, &ParseOptions::default()).unwrap();
    assert_eq!(digests.len(), 1);
    assert_eq!(digests[0].source, path.display().to_string());
    assert_eq!(digests[0].date, Some(date(2026, 3, 1)));
    assert_eq!(
        digests[0].papers[0].title,
        "The Trinity of Consistency as a Defining Principle for General World Models"
    );
}

// ---- malformed text variants --------------------------------------------------------------

#[test]
fn crlf_line_endings() {
    let seed = parse("seed.txt", &seed_bytes()).unwrap();
    let crlf = seed_text().replace('\n', "\r\n");
    let digest = parse("seed.txt", crlf.as_bytes()).unwrap();
    assert_eq!(digest.papers, seed.papers);
    assert!(digest.warnings.is_empty() && digest.skipped.is_empty());
}

#[test]
fn trailing_spaces_and_bom() {
    let seed = parse("seed.txt", &seed_bytes()).unwrap();
    let spaced: String = seed_text()
        .lines()
        .map(|line| format!("{line}  \t\n"))
        .collect();
    let digest = parse("seed.txt", format!("\u{feff}{spaced}").as_bytes()).unwrap();
    assert_eq!(digest.papers, seed.papers);
}

#[test]
fn runs_of_blank_lines() {
    let seed = parse("seed.txt", &seed_bytes()).unwrap();
    let airy = format!("\n\n{}\n\n\n", seed_text().replace("\n\n", "\n\n \n\n\n"));
    let digest = parse("seed.txt", airy.as_bytes()).unwrap();
    assert_eq!(texts(&digest), texts(&seed));
    assert!(digest.warnings.is_empty() && digest.skipped.is_empty());
}

#[test]
fn title_without_abstract_is_skipped_with_warning() {
    // Drop the abstract of the TÜLU paper (line 79; its abstract is on line 81).
    let text: String = seed_text()
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| *i + 1 != 81 && *i + 1 != 82)
        .map(|(_, line)| line)
        .collect();
    let digest = parse("data/seed.txt", text.as_bytes()).unwrap();
    assert_eq!(digest.papers.len(), 78);
    assert!(digest.papers.iter().all(|p| p.title != TULU_TITLE));
    assert_eq!(
        digest.skipped,
        [format!(
            "data/seed.txt:79: title `{TULU_TITLE}` has no abstract; skipped"
        )]
    );
    assert!(digest.warnings.is_empty());
    // The paper after it keeps its own abstract and line.
    let seed = parse("data/seed.txt", &seed_bytes()).unwrap();
    assert_eq!(digest.papers[17].title, seed.papers[18].title);
    assert_eq!(
        digest.papers[17].abstract_text,
        seed.papers[18].abstract_text
    );
}

#[test]
fn dangling_title_at_end() {
    // The blank line matters: without it the line would continue the last abstract.
    let text = format!("{}\n\nA Title That Never Got Its Abstract\n", seed_text());
    let digest = parse("seed.txt", text.as_bytes()).unwrap();
    assert_eq!(digest.papers.len(), 79);
    assert_eq!(digest.skipped.len(), 1);
    assert!(digest.skipped[0].starts_with("seed.txt:"));
    assert!(digest.skipped[0]
        .ends_with("`A Title That Never Got Its Abstract` has no abstract; skipped"));
}

#[test]
fn header_only_is_an_error() {
    let header: String = seed_text()
        .lines()
        .take(9)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(header.contains("Mar 11"));
    let (path, reason) = digest_err(parse("seed.txt", header.as_bytes()));
    assert_eq!(path, "seed.txt");
    assert_eq!(reason, "no papers found (only header lines)");
}

#[test]
fn paragraphs_that_never_pair_are_an_error() {
    // Without blank lines the whole digest is one paragraph, which has no title.
    let squashed = seed_text().replace("\n\n", "\n");
    let (_, reason) = digest_err(parse("seed.txt", squashed.as_bytes()));
    assert!(
        reason.starts_with("no papers found: none of the 1 paragraphs"),
        "{reason}"
    );
}

#[test]
fn empty_digest_is_an_error() {
    for input in ["", "   \n\n\t\r\n", "\u{feff}", "\u{feff}\n \n"] {
        let (_, reason) = digest_err(parse("e.txt", input.as_bytes()));
        assert_eq!(reason, "empty digest: no papers found", "{input:?}");
    }
}

#[test]
fn binary_garbage_is_an_error() {
    // A deterministic pseudo-random byte stream, like a stray image or archive.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let (_, reason) = digest_err(parse("x.bin", &garbage));
    assert_eq!(reason, "not a text digest (binary data)");
    let mut with_nul = seed_bytes();
    with_nul.insert(500, 0);
    let (_, reason) = digest_err(parse("x.txt", &with_nul));
    assert_eq!(reason, "not a text digest (binary data)");
}

#[test]
fn invalid_utf8_names_offset_and_line() {
    let mut bytes = seed_bytes();
    let offset = seed_text().find(SEED_FIRST_TITLE).unwrap();
    bytes[offset] = 0xff;
    let (_, reason) = digest_err(parse("seed.txt", &bytes));
    assert_eq!(reason, format!("invalid UTF-8 at byte {offset} (line 11)"));
}

#[test]
fn gzipped_seed_is_read_by_magic_bytes() {
    let seed = parse("seed.txt", &seed_bytes()).unwrap();
    // No `.gz` in the name: detection is by content.
    let digest = parse("seed.txt", &gzip(&seed_bytes())).unwrap();
    assert_eq!(digest.papers.len(), 79);
    assert_eq!(digest.papers, seed.papers);
    let (_, reason) = digest_err(parse("seed.txt.gz", &gzip(&seed_bytes())[..200]));
    assert!(reason.starts_with("corrupt gzip data"), "{reason}");
}

#[test]
fn forcing_a_format_overrides_detection() {
    let json = |format| ParseOptions {
        format,
        ..ParseOptions::default()
    };
    let (_, reason) = digest_err(parse_bytes(
        "seed.txt",
        &seed_bytes(),
        &json(InputFormat::Json),
    ));
    assert!(reason.starts_with("invalid JSON"), "{reason}");
    let jsonl = std::fs::read(fixtures().join("arxiv-cs-30.jsonl")).unwrap();
    let as_text = digest_err(parse_bytes("a.jsonl", &jsonl, &json(InputFormat::Text))).1;
    assert!(as_text.contains("no papers found"), "{as_text}");
    let forced = parse_bytes("a.jsonl", &jsonl, &json(InputFormat::Jsonl)).unwrap();
    assert_eq!(forced.papers.len(), 30);
}

#[test]
fn mutated_inputs_never_panic() {
    let seed = seed_bytes();
    let json = std::fs::read(fixtures().join("arxiv-cs-5.json")).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    for round in 0..400 {
        let base = if round % 2 == 0 { &seed } else { &json };
        let mut bytes = base[..next(base.len())].to_vec();
        for _ in 0..next(4) {
            if !bytes.is_empty() {
                let at = next(bytes.len());
                bytes[at] = next(256) as u8;
            }
        }
        let _ = parse("fuzz.txt", &bytes);
        let _ = parse("fuzz.txt", &gzip(&bytes));
    }
}

// ---- JSON and JSON Lines ------------------------------------------------------------------

#[test]
fn jsonl_fixture_plain_and_gzipped() {
    let plain = read_path(
        &fixtures().join("arxiv-cs-30.jsonl"),
        &ParseOptions::default(),
    )
    .unwrap()
    .remove(0);
    let gz = read_path(
        &fixtures().join("arxiv-cs-30.jsonl.gz"),
        &ParseOptions::default(),
    )
    .unwrap()
    .remove(0);
    assert_eq!(plain.papers.len(), 30);
    assert_eq!(plain.papers, gz.papers);
    assert_eq!(plain.date, None);
    assert_well_formed(&plain);
    let first = &plain.papers[0];
    assert_eq!(first.arxiv_id.as_deref(), Some("1812.06145"));
    assert_eq!(first.id(), "1812.06145");
    assert_eq!(first.date.as_deref(), Some("2025-10-13"));
    assert_eq!(first.categories[0], "cs.CV");
    assert_eq!(first.line, 1);
    assert_eq!(plain.papers[29].line, 30);
}

#[test]
fn json_array_fixture() {
    let digest = read_path(
        &fixtures().join("arxiv-cs-5.json"),
        &ParseOptions::default(),
    )
    .unwrap()
    .remove(0);
    assert_eq!(digest.papers.len(), 5);
    assert_well_formed(&digest);
    let [a, b, c, ..] = &digest.papers[..] else {
        unreachable!()
    };
    assert_eq!(a.authors, ["Ada Lovelace", "Alan Turing", "Grace Hopper"]);
    assert_eq!(b.authors, ["Ada Lovelace", "Alan Turing"]);
    assert_eq!(a.date.as_deref(), Some("2025-10-13"));
    assert_eq!(a.categories[0], "cs.CV");
    assert!(a.categories.len() > 1);
    assert_eq!(
        c.url.as_deref(),
        Some(format!("https://arxiv.org/abs/{}", c.arxiv_id.as_deref().unwrap()).as_str())
    );
    assert_eq!(a.line, 2);
}

#[test]
fn jsonl_line_without_title_fails_the_file() {
    let text = std::fs::read_to_string(fixtures().join("arxiv-cs-30.jsonl")).unwrap();
    let broken: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i + 1 == 7 {
                line.replacen("\"title\"", "\"headline\"", 1) + "\n"
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let (path, reason) = digest_err(parse("c.jsonl", broken.as_bytes()));
    assert_eq!(path, "c.jsonl:7");
    assert_eq!(reason, "missing required field `title`");
    assert_eq!(
        digest_err(parse("c.jsonl", &gzip(broken.as_bytes()))).0,
        "c.jsonl:7"
    );
}

#[test]
fn json_wrong_types_fail_the_file() {
    let text = std::fs::read_to_string(fixtures().join("arxiv-cs-5.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value[3]["title"] = serde_json::json!(5);
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    // The error points at the line where element 3 (the fourth `{`) opens.
    let line = pretty
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "  {")
        .nth(3)
        .map(|(i, _)| i + 1)
        .unwrap();
    let err = parse("w.json", pretty.as_bytes()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("w.json:{line}: element 3: field `title` must be a string, found a number")
    );
    let (_, reason) = digest_err(parse(
        "w.jsonl",
        br#"{"title": "T", "abstract": ["not", "a", "string"]}"#,
    ));
    assert_eq!(reason, "field `abstract` must be a string, found an array");
}

#[test]
fn single_pretty_printed_object() {
    let text = "\n{\n  \"title\": \"One Paper\",\n  \"abstract\": \"Its abstract.\",\n  \"id\": \"2401.00001v3\"\n}\n";
    let digest = parse("one_2026-01-05.json", text.as_bytes()).unwrap();
    assert_eq!(digest.papers.len(), 1);
    assert_eq!(digest.papers[0].line, 2);
    assert_eq!(digest.papers[0].id(), "2401.00001");
    // Without a date of its own the paper takes the digest's, here from the file name.
    assert_eq!(digest.date, Some(date(2026, 1, 5)));
    assert_eq!(digest.papers[0].date.as_deref(), Some("2026-01-05"));
}

// ---- directories --------------------------------------------------------------------------

#[test]
fn directory_skips_hidden_files_and_subdirectories() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed_bytes();
    std::fs::write(dir.path().join("b_2026-03-12.txt"), &seed).unwrap();
    std::fs::write(dir.path().join("a_2026-03-11.txt.gz"), gzip(&seed)).unwrap();
    std::fs::write(dir.path().join(".hidden.txt"), b"\0not a digest").unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    std::fs::write(dir.path().join("nested/c.txt"), b"\0not a digest").unwrap();
    let digests = read_path(dir.path(), &ParseOptions::default()).unwrap();
    assert_eq!(digests.len(), 2);
    assert!(digests[0].source.ends_with("a_2026-03-11.txt.gz"));
    assert!(digests[1].source.ends_with("b_2026-03-12.txt"));
    // The header says Mar 11; it wins over the file name's day.
    assert_eq!(digests[1].date, Some(date(2026, 3, 11)));
    assert!(digests.iter().all(|d| d.papers.len() == 79));
}

#[test]
fn directory_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, reason) =
        digest_err(read_path(dir.path(), &ParseOptions::default()).map(|mut v| v.remove(0)));
    assert_eq!(path, dir.path().display().to_string());
    assert_eq!(reason, "directory contains no digest files");
    std::fs::write(dir.path().join("bad.txt"), b"").unwrap();
    let err = read_path(dir.path(), &ParseOptions::default()).unwrap_err();
    assert!(err.to_string().contains("bad.txt"), "{err}");
    let missing = read_path(&dir.path().join("missing.txt"), &ParseOptions::default());
    assert!(matches!(missing, Err(Error::Io { .. })));
}
