//! `papersim fetch` against a loopback HTTP server started by each test (a thread on
//! 127.0.0.1:0 answering scripted responses and recording when each request came and what it
//! carried), serving the real shapes of the Hugging Face daily-papers JSON and the arXiv Atom
//! API (tests/fixtures/fetch/README.md says where each shape came from). Every failure must be
//! a clear error naming the URL, and leave the library byte-for-byte as it was.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use papersim::digest::{self, ParseOptions};
use papersim::library::Library;
use serde_json::{json, Value};

use crate::common::{self, fixture, papersim, stderr, stdout};
use crate::reliability::{library_copy, refused_by, seed_digest, snapshot};

// ---------------------------------------------------------------------------------------------
// The test server

/// One scripted answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// A Content-Length larger than the body sent (then the connection closes): a truncated
    /// response.
    claimed_len: Option<usize>,
    /// Send nothing for this long after reading the request (a stalled server).
    stall: Option<Duration>,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
            claimed_len: None,
            stall: None,
        }
    }
    fn status(status: u16) -> Reply {
        Reply {
            body: format!("HTTP {status}").into_bytes(),
            status,
            ..Reply::ok("")
        }
    }
    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    /// The request target (`/api/daily_papers?date=2026-03-01`).
    target: String,
    /// Header lines, names lower-cased.
    headers: Vec<(String, String)>,
}

struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Answers each connection with the next reply; once they are spent, with 404.
    fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut replies = replies.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let reply = replies.next().unwrap_or_else(|| Reply::status(404));
                // One thread a connection, so a stalled answer does not hold up the next.
                let log = Arc::clone(&log);
                std::thread::spawn(move || answer(stream, reply, &log));
            }
        });
        Server { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(mut stream: TcpStream, reply: Reply, log: &Mutex<Vec<Seen>>) {
    if !read_request(&mut stream, log) {
        return;
    }
    // Asked to be a proxy: open the tunnel, then answer the request that comes through it.
    if log
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .target
        .starts_with("CONNECT ")
    {
        let _ = stream.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        if !read_request(&mut stream, log) {
            return;
        }
    }
    if let Some(stall) = reply.stall {
        std::thread::sleep(stall);
        return;
    }
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.claimed_len.unwrap_or(reply.body.len())
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}

/// Reads one request's head and records it (a CONNECT's target as `CONNECT host:port`).
fn read_request(stream: &mut TcpStream, log: &Mutex<Vec<Seen>>) -> bool {
    let mut request = Vec::new();
    let mut buf = [0u8; 1];
    // Byte by byte: nothing past the head is consumed (a tunnelled request follows a CONNECT).
    while !request.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(_) => request.push(buf[0]),
        }
    }
    let at = Instant::now();
    let text = String::from_utf8_lossy(&request).to_string();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut words = first.split(' ');
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default();
    let target = if method == "CONNECT" {
        format!("CONNECT {target}")
    } else {
        target.to_string()
    };
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    log.lock().unwrap().push(Seen {
        at,
        target,
        headers,
    });
    true
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn fetch_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("fetch/{name}"))).unwrap()
}

fn hf_day() -> Vec<u8> {
    fetch_fixture("hf-2026-03-01.json")
}

fn arxiv_page(n: usize) -> Vec<u8> {
    fetch_fixture(&format!("arxiv-cs.CL-page{n}.xml"))
}

/// `papersim --library LIB fetch ARGS... --quiet`, without proxies from the caller's
/// environment and with the arXiv interval shortened (the politeness test sets it back).
fn fetch_cmd(lib: &Path, args: &[&str]) -> Command {
    let mut c = papersim();
    c.arg("--library")
        .arg(lib)
        .arg("--quiet")
        .arg("fetch")
        .args(args);
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "PAPERSIM_HF_ENDPOINT",
        "PAPERSIM_ARXIV_ENDPOINT",
    ] {
        c.env_remove(var);
    }
    c.env("PAPERSIM_ARXIV_INTERVAL_MS", "0");
    c
}

fn ok(mut c: Command) -> Output {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?} failed: {}", stderr(&o));
    o
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn gaps(seen: &[Seen]) -> Vec<Duration> {
    seen.windows(2).map(|w| w[1].at - w[0].at).collect()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Hugging Face daily papers

#[test]
fn hf_day_is_ingested_with_arxiv_ids_and_not_duplicated_when_fetched_again() {
    let t = tmp();
    let lib = t.path().join("lib");
    let server = Server::start(vec![Reply::ok(hf_day()), Reply::ok(hf_day())]);
    let endpoint = server.url("/api/daily_papers");
    let args = ["hf", "--date", "2026-03-01", "--endpoint", &endpoint];
    let first = ok(fetch_cmd(&lib, &args));
    assert!(
        stdout(&first).contains("3 added, 0 already present"),
        "{}",
        stdout(&first)
    );
    let again = ok(fetch_cmd(
        &lib,
        &[&args[..], &["--format", "json"]].concat(),
    ));
    let summary: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["fetched"], 3);
    assert_eq!(summary["added"], 0);
    assert_eq!(summary["already_present"], 3);
    assert_eq!(summary["papers_total"], 3);

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].target, "/api/daily_papers?date=2026-03-01");
    let ua = &seen[0]
        .headers
        .iter()
        .find(|(k, _)| k == "user-agent")
        .unwrap()
        .1;
    assert!(
        ua.starts_with("papersim/") && ua.contains("+https://"),
        "{ua}"
    );

    let lib = Library::open(&lib).unwrap();
    let papers = lib.papers().unwrap();
    let ids: Vec<&str> = papers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["2602.23100", "2602.23107", "2602.23114"]);
    let p = &papers[1];
    assert_eq!(p.url.as_deref(), Some("https://arxiv.org/abs/2602.23107"));
    assert_eq!(p.authors, ["Hongrui Jia", "Chaoya Jiang", "Wei Ye"]);
    assert_eq!(p.date.as_deref(), Some("2026-02-26"));
    // Line breaks of the API's summary folded to spaces.
    assert!(!p.abstract_text.contains('\n') && p.abstract_text.starts_with("As Large Multimodal"));
}

#[test]
fn hf_entry_without_an_arxiv_id_is_left_out_and_named_and_the_day_ingested() {
    // One entry of the day's listing under an id that is not arXiv's, between real ones: the
    // day still ingests; the entry is named in the summary (JSON and table), never dropped
    // silently.
    let t = tmp();
    let lib = t.path().join("lib");
    let mut day: Vec<Value> = serde_json::from_slice(&hf_day()).unwrap();
    day.insert(
        1,
        json!({"paper": {"id": "hf-only-7", "title": "A Paper Hugging Face Lists Alone",
                         "summary": "Not on arXiv.", "authors": []}}),
    );
    let body = serde_json::to_vec(&day).unwrap();
    let server = Server::start(vec![Reply::ok(body.clone()), Reply::ok(body)]);
    let endpoint = server.url("/api/daily_papers");
    let args = ["hf", "--date", "2026-03-01", "--endpoint", &endpoint];
    let o = ok(fetch_cmd(
        &lib,
        &[&args[..], &["--format", "json"]].concat(),
    ));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["fetched"], 3, "{summary}");
    assert_eq!(summary["added"], 3, "{summary}");
    let skipped = summary["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{summary}");
    let why = skipped[0].as_str().unwrap();
    let url = format!("{endpoint}?date=2026-03-01");
    for needle in [
        url.as_str(),
        "entry 2 (`A Paper Hugging Face Lists Alone`)",
        "`hf-only-7`, which is not an arXiv id",
    ] {
        assert!(why.contains(needle), "{needle:?} not in {why:?}");
    }
    let again = ok(fetch_cmd(&lib, &args));
    assert!(
        stdout(&again).contains("skipped: ") && stdout(&again).contains("`hf-only-7`"),
        "{}",
        stdout(&again)
    );
    let lib = Library::open(&lib).unwrap();
    let ids: Vec<String> = lib.papers().unwrap().iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids, ["2602.23100", "2602.23107", "2602.23114"]);
}

#[test]
fn hf_empty_day_adds_nothing_and_leaves_the_library_as_it_was() {
    let t = tmp();
    let lib = library_copy(t.path());
    let before = snapshot(&lib);
    let server = Server::start(vec![Reply::ok("[]")]);
    let o = ok(fetch_cmd(
        &lib,
        &[
            "hf",
            "--date",
            "2026-03-07",
            "--endpoint",
            &server.url("/api/daily_papers"),
        ],
    ));
    assert!(
        stdout(&o).contains("fetched 0 papers") && stdout(&o).contains("library is unchanged"),
        "{}",
        stdout(&o)
    );
    assert_eq!(snapshot(&lib), before);
}

#[test]
fn hf_429_is_retried_after_a_backoff_and_then_succeeds() {
    let t = tmp();
    let out = t.path().join("day.jsonl");
    let server = Server::start(vec![Reply::status(429), Reply::ok(hf_day())]);
    ok(fetch_cmd(
        &t.path().join("lib"),
        &[
            "hf",
            "--date",
            "2026-03-01",
            "--endpoint",
            &server.url("/api/daily_papers"),
            "-o",
            out.to_str().unwrap(),
        ],
    ));
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], "2602.23100");
    assert_eq!(rows[0]["upvotes"], 87);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    // No Retry-After: the first backoff, one second.
    assert!(
        gaps(&seen)[0] >= Duration::from_millis(950),
        "{:?}",
        gaps(&seen)
    );
    // -o writes a digest and creates no library.
    assert!(!t.path().join("lib").exists());
    // The digest reads back as a digest.
    let digests = digest::read_path(&out, &ParseOptions::default()).unwrap();
    assert_eq!(digests[0].papers.len(), 3);
    assert_eq!(digests[0].papers[2].arxiv_id.as_deref(), Some("2602.23114"));
}

#[test]
fn hf_503_with_retry_after_waits_as_asked() {
    let t = tmp();
    let out = t.path().join("day.jsonl");
    let server = Server::start(vec![
        Reply::status(503).header("Retry-After", "2"),
        Reply::ok(hf_day()),
    ]);
    ok(fetch_cmd(
        t.path(),
        &[
            "hf",
            "--date",
            "2026-03-01",
            "--endpoint",
            &server.url("/api/daily_papers"),
            "-o",
            out.to_str().unwrap(),
        ],
    ));
    assert_eq!(jsonl(&out).len(), 3);
    let g = gaps(&server.seen());
    assert!(g[0] >= Duration::from_millis(1950), "{g:?}");
}

#[test]
fn failed_fetches_are_clear_errors_naming_the_url_and_change_nothing() {
    let t = tmp();
    let lib = library_copy(t.path());
    let hf = |server: &Server, extra: &[&str]| {
        let endpoint = server.url("/api/daily_papers");
        let mut args = vec!["hf", "--date", "2026-03-01", "--endpoint", &endpoint];
        args.extend_from_slice(extra);
        let c = fetch_cmd(&lib, &args);
        (c, format!("{endpoint}?date=2026-03-01"))
    };

    // Cut off after 200 of the 8,000 bytes it announced.
    let mut cut = Reply::ok(hf_day()[..200].to_vec());
    cut.claimed_len = Some(hf_day().len());
    let server = Server::start(vec![cut]);
    let (c, url) = hf(&server, &[]);
    refused_by(c, &lib, &[&url, "truncated"]);

    // A complete response whose JSON stops early.
    let server = Server::start(vec![Reply::ok(hf_day()[..200].to_vec())]);
    let (c, url) = hf(&server, &[]);
    refused_by(c, &lib, &[&url, "JSON ends early"]);

    let server = Server::start(vec![Reply::ok("<html>Service unavailable</html>")]);
    let (c, url) = hf(&server, &[]);
    refused_by(c, &lib, &[&url, "malformed JSON"]);

    // Stalls for 5 s; the read timeout is 1 s.
    let mut stall = Reply::ok(hf_day());
    stall.stall = Some(Duration::from_secs(5));
    let server = Server::start(vec![stall]);
    let (c, url) = hf(&server, &["--read-timeout", "1"]);
    let started = Instant::now();
    refused_by(c, &lib, &[&url, "timed out"]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // 500s until the retries are spent.
    let server = Server::start(vec![Reply::status(500), Reply::status(500)]);
    let (c, url) = hf(&server, &["--retries", "1"]);
    refused_by(c, &lib, &[&url, "HTTP 500 2 time(s) in a row"]);

    // A Retry-After beyond what papersim waits.
    let server = Server::start(vec![Reply::status(429).header("Retry-After", "3600")]);
    let (c, url) = hf(&server, &[]);
    refused_by(c, &lib, &[&url, "asks to wait 3600 s"]);

    let server = Server::start(vec![Reply::status(404)]);
    let (c, url) = hf(&server, &[]);
    refused_by(c, &lib, &[&url, "HTTP 404"]);

    // Offline: nothing listens on the port.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}/api/daily_papers");
    refused_by(
        fetch_cmd(
            &lib,
            &["hf", "--date", "2026-03-01", "--endpoint", &endpoint],
        ),
        &lib,
        &[&format!("fetching {endpoint}?date=2026-03-01"), "offline"],
    );

    // Malformed and truncated Atom.
    let arxiv = |server: &Server| {
        let endpoint = server.url("/api/query");
        let c = fetch_cmd(
            &lib,
            &[
                "arxiv",
                "--category",
                "cs.CL",
                "--max",
                "2",
                "--page-size",
                "2",
                "--endpoint",
                &endpoint,
            ],
        );
        (c, endpoint)
    };
    let page = String::from_utf8(arxiv_page(1)).unwrap();
    let server = Server::start(vec![Reply::ok(
        page.replace("</title>\n    <summary>", "</titel>\n    <summary>"),
    )]);
    let (c, url) = arxiv(&server);
    refused_by(c, &lib, &[&url, "malformed Atom XML"]);
    let server = Server::start(vec![Reply::ok(page[..page.len() / 2].to_string())]);
    let (c, url) = arxiv(&server);
    refused_by(c, &lib, &[&url, "ends inside <feed><entry>", "truncated"]);
    let server = Server::start(vec![Reply::ok("{\"not\": \"xml\"}")]);
    let (c, url) = arxiv(&server);
    refused_by(c, &lib, &[&url, "malformed Atom XML"]);
    // arXiv's own error feed.
    let error_feed = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.12345</id><title>Error</title><summary>incorrect id format for 1234.12345</summary></entry></feed>"#;
    let server = Server::start(vec![Reply::ok(error_feed)]);
    let (c, url) = arxiv(&server);
    refused_by(
        c,
        &lib,
        &[&url, "arXiv refused the query: incorrect id format"],
    );
    assert!(!lib.join("fetch-state.json").exists());
}

#[test]
fn a_redirect_is_followed() {
    let t = tmp();
    let out = t.path().join("day.jsonl");
    let server = Server::start(vec![
        Reply::status(301).header("Location", "/mirror/api/daily_papers?date=2026-03-01"),
        Reply::ok(hf_day()),
    ]);
    ok(fetch_cmd(
        t.path(),
        &[
            "hf",
            "--date",
            "2026-03-01",
            "--endpoint",
            &server.url("/api/daily_papers"),
            "-o",
            out.to_str().unwrap(),
        ],
    ));
    assert_eq!(jsonl(&out).len(), 3);
    let targets: Vec<String> = server.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        [
            "/api/daily_papers?date=2026-03-01",
            "/mirror/api/daily_papers?date=2026-03-01"
        ]
    );
    // -o never replaces a file.
    let c = fetch_cmd(
        t.path(),
        &[
            "hf",
            "--date",
            "2026-03-01",
            "--endpoint",
            &server.url("/x"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let o = { c }.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("exists; `fetch -o` writes a new file only"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        server.seen().len(),
        2,
        "a fetch that cannot be written was sent"
    );
}

// ---------------------------------------------------------------------------------------------
// arXiv

#[test]
fn arxiv_pages_until_max_and_dry_run_lists_without_writing() {
    let t = tmp();
    let lib = library_copy(t.path());
    let before = snapshot(&lib);
    let server = Server::start(vec![
        Reply::ok(arxiv_page(1)),
        Reply::ok(arxiv_page(2)),
        Reply::ok(arxiv_page(3)),
    ]);
    let o = ok(fetch_cmd(
        &lib,
        &[
            "arxiv",
            "--category",
            "cs.CL",
            "--max",
            "5",
            "--page-size",
            "2",
            "--endpoint",
            &server.url("/api/query"),
            "--dry-run",
            "--format",
            "json",
        ],
    ));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mode"], "dry-run");
    assert_eq!(v["fetched"], 5);
    assert_eq!(v["requests"], 3);
    assert_eq!(v["added"], 5);
    let ids: Vec<&str> = v["new_papers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "2603.01021",
            "2603.01018",
            "2603.01015",
            "2603.01012",
            "2603.01009"
        ]
    );
    let targets: Vec<String> = server.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        [
            "/api/query?search_query=cat:cs.CL&sortBy=submittedDate&sortOrder=descending&start=0&max_results=2",
            "/api/query?search_query=cat:cs.CL&sortBy=submittedDate&sortOrder=descending&start=2&max_results=2",
            "/api/query?search_query=cat:cs.CL&sortBy=submittedDate&sortOrder=descending&start=4&max_results=1",
        ]
    );
    assert_eq!(snapshot(&lib), before, "a dry run changed the library");

    // --since stops at the first older paper (pages are newest first): the 2026-03-03 and -02
    // papers of pages 1 and 2, and page 3's first paper (of 03-01) ends it.
    let server = Server::start(vec![
        Reply::ok(arxiv_page(1)),
        Reply::ok(arxiv_page(2)),
        Reply::ok(arxiv_page(3)),
    ]);
    let out = t.path().join("cl.jsonl");
    ok(fetch_cmd(
        &lib,
        &[
            "arxiv",
            "--category",
            "cs.CL",
            "--since",
            "2026-03-02",
            "--max",
            "5",
            "--page-size",
            "2",
            "--endpoint",
            &server.url("/api/query"),
            "-o",
            out.to_str().unwrap(),
        ],
    ));
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(server.seen().len(), 3);
    assert_eq!(rows[0]["categories"], json!(["cs.CL", "cs.AI"]));
    assert_eq!(rows[0]["authors"], json!(["Author 0 One", "Author 0 Two"]));
    assert_eq!(rows[0]["url"], "https://arxiv.org/abs/2603.01021");
    assert_eq!(
        rows[0]["title"],
        "Decoder-based Sense Knowledge Distillation"
    );
}

#[test]
fn a_stopped_arxiv_fetch_resumes_where_it_stopped() {
    let t = tmp();
    let lib = t.path().join("lib");
    let args = |server: &Server| {
        vec![
            "arxiv".to_string(),
            "--category".into(),
            "cs.CL".into(),
            "--max".into(),
            "5".into(),
            "--page-size".into(),
            "2".into(),
            "--retries".into(),
            "0".into(),
            "--endpoint".into(),
            server.url("/api/query"),
        ]
    };
    // Page 2 fails: page 1 is ingested and the cursor recorded.
    let server = Server::start(vec![Reply::ok(arxiv_page(1)), Reply::status(502)]);
    let a = args(&server);
    let o = fetch_cmd(&lib, &a.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("run the same command again to resume"),
        "{}",
        stderr(&o)
    );
    assert_eq!(Library::open(&lib).unwrap().len(), 2);
    assert!(lib.join("fetch-state.json").exists());

    let server = Server::start(vec![Reply::ok(arxiv_page(2)), Reply::ok(arxiv_page(3))]);
    let a = args(&server);
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    a.extend(["--format", "json"]);
    let o = ok(fetch_cmd(&lib, &a));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["resumed_at"], 2);
    assert_eq!(v["added"], 3);
    assert_eq!(v["papers_total"], 5);
    assert!(
        server.seen()[0].target.contains("&start=2&"),
        "{:?}",
        server.seen()
    );
    assert!(
        !lib.join("fetch-state.json").exists(),
        "a finished fetch keeps its state"
    );
}

/// arXiv asks for one request every three seconds: measured at the server over three pages,
/// with the real default (the other tests shorten it with PAPERSIM_ARXIV_INTERVAL_MS=0).
#[test]
fn arxiv_requests_are_three_seconds_apart() {
    let t = tmp();
    let server = Server::start(vec![
        Reply::ok(arxiv_page(1)),
        Reply::status(503),
        Reply::ok(arxiv_page(2)),
        Reply::ok(arxiv_page(3)),
    ]);
    let out = t.path().join("cl.jsonl");
    let mut c = fetch_cmd(
        t.path(),
        &[
            "arxiv",
            "--category",
            "cs.CL",
            "--max",
            "5",
            "--page-size",
            "2",
            "--endpoint",
            &server.url("/api/query"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    c.env_remove("PAPERSIM_ARXIV_INTERVAL_MS");
    ok(c);
    assert_eq!(jsonl(&out).len(), 5);
    let seen = server.seen();
    assert_eq!(seen.len(), 4, "three pages and one retry");
    let g = gaps(&seen);
    eprintln!("arXiv request gaps: {g:?}");
    // A retry (backoff 1 s) waits out the interval too.
    assert!(g.iter().all(|g| *g >= Duration::from_secs(3)), "{g:?}");
}

#[test]
fn fetch_options_are_bounded_and_say_why() {
    let t = tmp();
    let lib = library_copy(t.path());
    let e = "http://127.0.0.1:9/api";
    let cases: &[(&[&str], &str)] = &[
        (
            &["arxiv", "--category", "cs.CL", "--max", "0"],
            "--max 0 is out of range: 1 to 100000",
        ),
        (
            &["arxiv", "--category", "cs.CL", "--page-size", "5000"],
            "the most arXiv returns in one request",
        ),
        (
            &["arxiv", "--category", "cs CL"],
            "is not an arXiv category",
        ),
        (
            &["hf", "--read-timeout", "0"],
            "--read-timeout 0 is out of range",
        ),
        (
            &["hf", "--connect-timeout", "9999"],
            "--connect-timeout 9999 is out of range",
        ),
        (
            &["hf", "--retries", "99"],
            "--retries 99 is out of range: at most 10",
        ),
        (&["hf", "--since", "2020-01-01"], "at most 366 days"),
        (&["hf", "--date", "2026-02-30"], "is not a date"),
        (
            &["hf", "--endpoint", "ftp://x"],
            "is not an http:// or https:// URL",
        ),
    ];
    for (args, needle) in cases {
        let mut a = args.to_vec();
        if !a.contains(&"--endpoint") {
            a.extend(["--endpoint", e]);
        }
        refused_by(fetch_cmd(&lib, &a), &lib, &[needle]);
    }
    let mut c = fetch_cmd(&lib, &["arxiv", "--category", "cs.CL", "--endpoint", e]);
    c.env("PAPERSIM_ARXIV_INTERVAL_MS", "999999");
    refused_by(
        c,
        &lib,
        &["PAPERSIM_ARXIV_INTERVAL_MS=999999 is out of range"],
    );
}

// ---------------------------------------------------------------------------------------------
// The identity upgrade

/// The seed digest's papers as a Hugging Face daily-papers answer (the real shape, see
/// tests/fixtures/fetch/README.md), with made-up arXiv ids, and summaries typeset as the API
/// sends them (line breaks; no space before commas, which the email's text has).
fn seed_as_hf() -> (Vec<u8>, Vec<(String, String)>) {
    let seed = digest::read_path(&seed_digest(), &ParseOptions::default()).unwrap();
    let mut entries = Vec::new();
    let mut ids = Vec::new();
    for (n, p) in seed[0].papers.iter().enumerate() {
        let id = format!("2603.{:05}", 10_000 + n * 13);
        let summary = p
            .abstract_text
            .replace(" ,", ",")
            .replace(" .", ".")
            .replace(". ", ".\n");
        entries.push(json!({
            "paper": {
                "id": id,
                "authors": [{"_id": "1", "name": "A. Author", "hidden": false}],
                "publishedAt": "2026-03-10T17:00:00.000Z",
                "title": p.title,
                "summary": summary,
                "upvotes": 10 + n,
            },
            "publishedAt": "2026-03-11T01:00:00.000Z",
            "title": p.title,
            "numComments": 0,
        }));
        ids.push((p.id(), id));
    }
    (serde_json::to_vec(&entries).unwrap(), ids)
}

#[test]
fn papers_stored_under_title_ids_take_their_arxiv_ids_and_keep_their_feedback() {
    let t = tmp();
    let lib = library_copy(t.path());
    let (body, ids) = seed_as_hf();
    let before = Library::open(&lib).unwrap();
    let n = before.len();
    assert!(before
        .papers()
        .unwrap()
        .iter()
        .all(|p| p.id.starts_with("t:")));
    drop(before);
    let (liked_old, liked_new) = ids[3].clone();
    let like = common::run_in(&lib, &["like", &liked_old, "--tag", "agents"]);
    assert!(like.status.success(), "{}", stderr(&like));

    let server = Server::start(vec![Reply::ok(body)]);
    let o = ok(fetch_cmd(
        &lib,
        &[
            "hf",
            "--date",
            "2026-03-11",
            "--endpoint",
            &server.url("/api/daily_papers"),
            "--format",
            "json",
        ],
    ));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["added"], 0, "{v}");
    assert_eq!(v["upgraded"], n, "{v}");
    assert_eq!(v["papers_total"], n);

    // Reopened from disk (a segment renames the records): every paper has its arXiv id, URL
    // and its old id as an alias; nothing is duplicated.
    for open in [
        Library::open(&lib).unwrap(),
        Library::open_for_reading(&lib).unwrap(),
    ] {
        assert_eq!(open.len(), n);
        for (old, new) in &ids {
            let row = open
                .row_of_id(new)
                .unwrap()
                .unwrap_or_else(|| panic!("{new} not found"));
            assert_eq!(
                open.row_of_id(old).unwrap(),
                Some(row),
                "{old} no longer resolves"
            );
            let p = open.paper(row).unwrap();
            assert_eq!(&p.id, new);
            assert!(p.aliases.contains(old));
            assert_eq!(
                p.url.as_deref(),
                Some(format!("https://arxiv.org/abs/{new}").as_str())
            );
        }
    }

    // The like (recorded under the old id) still names the paper: a recommendation uses it.
    let rec = papersim()
        .args([
            "--library",
            lib.to_str().unwrap(),
            "recommend",
            "--tag",
            "agents",
            "-k",
            "3",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(rec.status.success(), "{}", stderr(&rec));
    assert!(
        !stderr(&rec).contains("not in this library"),
        "{}",
        stderr(&rec)
    );
    let similar = common::json(&lib, &["similar", &liked_old, "-k", "1"]);
    assert!(!common::result_ids(&similar).contains(&liked_new));

    // Fetching again changes nothing more.
    let server = Server::start(vec![Reply::ok(seed_as_hf().0)]);
    let o = ok(fetch_cmd(
        &lib,
        &[
            "hf",
            "--date",
            "2026-03-11",
            "--endpoint",
            &server.url("/api/daily_papers"),
            "--format",
            "json",
        ],
    ));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["added"].as_u64(), v["upgraded"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );
    assert_eq!(Library::open(&lib).unwrap().len(), n);
}

#[test]
fn proxies_from_the_environment_are_honoured() {
    let t = tmp();
    let out = t.path().join("day.jsonl");
    // The test server plays the proxy: the request for a host that does not exist reaches it.
    let proxy = Server::start(vec![Reply::ok(hf_day())]);
    let endpoint = "http://daily-papers.invalid/api/daily_papers";
    let mut c = fetch_cmd(
        t.path(),
        &[
            "hf",
            "--date",
            "2026-03-01",
            "--endpoint",
            endpoint,
            "-o",
            out.to_str().unwrap(),
        ],
    );
    c.env("HTTPS_PROXY", proxy.url(""))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    ok(c);
    assert_eq!(jsonl(&out).len(), 3);
    let targets: Vec<String> = proxy.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        [
            "CONNECT daily-papers.invalid:80",
            "/api/daily_papers?date=2026-03-01"
        ]
    );

    // NO_PROXY names the host: papersim goes direct, and the name does not resolve.
    let proxy = Server::start(vec![Reply::ok(hf_day())]);
    let mut c = fetch_cmd(
        t.path(),
        &["hf", "--date", "2026-03-01", "--endpoint", endpoint],
    );
    c.env("HTTPS_PROXY", proxy.url(""))
        .env("NO_PROXY", "daily-papers.invalid");
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("fetching {endpoint}?date=2026-03-01")),
        "{}",
        stderr(&o)
    );
    assert!(proxy.seen().is_empty());
}
