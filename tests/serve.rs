//! `papersim serve` (#16), through the real binary on an ephemeral loopback port: every
//! endpoint against the command line's own JSON, each error's status, the token rule, the
//! Host and Origin checks, a library changed by a concurrent `papersim ingest`, text queries
//! embedded together answering as alone, and a graceful stop. The page in a real browser is `serve_browser.rs`'s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, fixture, papersim, DMD};
use crate::reliability::{library_copy, snapshot};

/// A `papersim serve` child on `--addr`, stopped with SIGTERM when dropped.
pub(crate) struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// What it printed on stdout before serving (the address line, a new token).
    pub banner: String,
}

impl Server {
    pub(crate) fn start(lib: &Path, addr: &str, extra: &[&str]) -> Server {
        let mut child = papersim()
            .arg("--library")
            .arg(lib)
            .args(["serve", "--addr", addr])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let mut line = String::new();
        // The address line comes first; a token banner follows it in the same write.
        out.read_line(&mut line).unwrap();
        if line.is_empty() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("papersim serve did not start: {err}");
        }
        banner.push_str(&line);
        let url = line
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim()
            .trim_end_matches('/');
        let mut addr: SocketAddr = url.parse().unwrap();
        let beyond_loopback = !addr.ip().is_loopback();
        if addr.ip().is_unspecified() {
            addr.set_ip([127, 0, 0, 1].into());
        }
        if beyond_loopback {
            // Bound beyond loopback: read the rest of the banner (token lines).
            let mut rest = String::new();
            loop {
                rest.clear();
                if out.read_line(&mut rest).unwrap() == 0 || rest.contains("Bearer") {
                    banner.push_str(&rest);
                    break;
                }
                banner.push_str(&rest);
            }
        }
        Server {
            child,
            addr,
            banner,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it with SIGTERM and returns its exit status, waiting at most `limit`.
    fn stop(mut self, limit: Duration) -> std::process::ExitStatus {
        terminate(&self.child);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "serve did not stop within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn terminate(child: &Child) {
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for yet.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            terminate(&self.child);
            let _ = self.child.wait();
        }
    }
}

/// A response: status and parsed JSON body (`Value::Null` when it is not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Value,
}

/// One HTTP/1.1 request over a new connection, with `headers` as given (a `Host` of the
/// server's address unless one is given).
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    // A refused request may be answered before the whole body is sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&raw)));
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    let mut content = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        content = dechunk(&content);
    }
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&content).unwrap_or(Value::Null),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
}

fn get(server: &Server, target: &str) -> Answer {
    request(server.addr, "GET", target, &[], b"")
}

fn post_json(server: &Server, target: &str, body: Value) -> Answer {
    request(
        server.addr,
        "POST",
        target,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// Asserts a JSON error with `status` whose message holds every needle.
fn error(a: &Answer, status: u16, needles: &[&str]) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.body["status"], status, "{a:?}");
    let message = a.body["error"].as_str().unwrap_or_else(|| panic!("{a:?}"));
    for n in needles {
        assert!(message.contains(n), "{n:?} not in {message:?}");
    }
}

fn ok(a: Answer) -> Value {
    assert_eq!(a.status, 200, "{a:?}");
    a.body
}

/// `papersim ARGS --format json` on `lib`.
fn cli(lib: &Path, args: &[&str]) -> Value {
    common::json(lib, args)
}

fn ids(v: &Value) -> Vec<String> {
    common::result_ids(v)
}

fn lib_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    (tmp, lib)
}

#[test]
fn every_endpoint_answers_with_the_command_lines_json() {
    let (_tmp, lib) = lib_copy();
    let server = Server::start(&lib, "127.0.0.1:0", &[]);
    assert!(server.addr.port() != 0 && server.addr.ip().is_loopback());

    // info: the same document as `papersim info --format json`.
    assert_eq!(ok(get(&server, "/api/info")), cli(&lib, &["info"]));

    // papers/{id}: the record; by title too, as every command resolves papers.
    let dmd_id = ids(&cli(&lib, &["query", DMD, "-k", "1", "--mode", "lexical"]))[0].clone();
    let p = ok(get(&server, &format!("/api/papers/{dmd_id}")));
    assert_eq!(p["title"], DMD);
    assert!(p["abstract"].as_str().unwrap().len() > 100, "{p}");

    // similar and query: byte-for-byte the CLI's JSON.
    let similar = ok(get(&server, &format!("/api/similar/{dmd_id}?k=5")));
    assert_eq!(similar, cli(&lib, &["similar", &dmd_id, "-k", "5"]));
    assert_eq!(similar["results"].as_array().unwrap().len(), 5);
    let query = ok(get(
        &server,
        "/api/query?q=one-step%20diffusion%20distillation&k=7&mode=dense",
    ));
    assert_eq!(
        query,
        cli(
            &lib,
            &[
                "query",
                "one-step diffusion distillation",
                "-k",
                "7",
                "--mode",
                "dense"
            ]
        )
    );
    let filtered = ok(get(
        &server,
        "/api/query?q=diffusion&mode=lexical&must=distillation&must=one-step&k=20",
    ));
    assert_eq!(
        filtered,
        cli(
            &lib,
            &[
                "query",
                "diffusion",
                "--mode",
                "lexical",
                "--must",
                "distillation",
                "--must",
                "one-step",
                "-k",
                "20"
            ]
        )
    );

    // like, then the profile and a recommendation for it, as the CLI sees them.
    let liked = ok(post_json(
        &server,
        "/api/like",
        json!({"papers": [dmd_id], "tag": "gen"}),
    ));
    assert_eq!(liked["op"], "like");
    assert_eq!(liked["papers"][0]["title"], DMD);
    let profile = ok(get(&server, "/api/profile"));
    assert_eq!(profile, cli(&lib, &["profile"]));
    assert_eq!(profile["likes"]["gen"][0]["id"], dmd_id.as_str());
    let rec = ok(post_json(&server, "/api/recommend", json!({"k": 5})));
    let cli_rec = cli(&lib, &["recommend", "-k", "5"]);
    assert_eq!(rec["results"], cli_rec["results"]);
    assert_eq!(
        rec["query"]["profile"],
        json!({"from": "stored", "tags": ["gen"]})
    );
    let by_request = ok(post_json(
        &server,
        "/api/recommend",
        json!({"like": [dmd_id], "k": 5}),
    ));
    assert_eq!(
        by_request["results"],
        cli(&lib, &["recommend", "--like", &dmd_id, "-k", "5"])["results"]
    );

    // triage: a digest in the body, ranked as `papersim triage` ranks the same file.
    let digest = fixture("digests/arxiv-cs-5.json");
    let cli_triage = cli(
        &lib,
        &["triage", digest.to_str().unwrap(), "--no-mark", "-k", "3"],
    );
    let triage = ok(request(
        server.addr,
        "POST",
        "/api/triage?name=arxiv-cs-5.json&no_mark=1&k=3",
        &[],
        &std::fs::read(&digest).unwrap(),
    ));
    assert_eq!(triage["results"], cli_triage["results"]);
    assert_eq!(triage["query"]["papers"], 5);
    let seen_before = ok(get(&server, "/api/profile"))["seen"].as_u64().unwrap();
    // Without no_mark the papers shown are marked seen, and hidden the next time.
    ok(request(
        server.addr,
        "POST",
        "/api/triage?name=arxiv-cs-5.json&k=2",
        &[],
        &std::fs::read(&digest).unwrap(),
    ));
    let again = ok(request(
        server.addr,
        "POST",
        "/api/triage?name=arxiv-cs-5.json&k=5",
        &[],
        &std::fs::read(&digest).unwrap(),
    ));
    assert_eq!(again["query"]["hidden_as_seen"], 2, "{again}");
    let seen = ok(get(&server, "/api/profile"))["seen"].as_u64().unwrap();
    assert_eq!(
        seen,
        seen_before + 5,
        "2 marked by the first triage, the 3 left by the second"
    );

    // dislike, seen, forget: the stored profile changes as with the CLI's commands.
    let other = ids(&similar)[0].clone();
    ok(post_json(
        &server,
        "/api/dislike",
        json!({"papers": [other]}),
    ));
    assert_eq!(
        ok(get(&server, "/api/profile"))["dislikes"][0]["id"],
        other.as_str()
    );
    ok(post_json(&server, "/api/seen", json!({"papers": [other]})));
    ok(post_json(
        &server,
        "/api/forget",
        json!({"papers": [other]}),
    ));
    assert_eq!(ok(get(&server, "/api/profile"))["dislikes"], json!([]));
    assert_eq!(cli(&lib, &["profile"]), ok(get(&server, "/api/profile")));

    // ingest: a digest in the body, the same report as `papersim ingest --format json`.
    let day = crate::reliability::day("03-02");
    let report = ok(request(
        server.addr,
        "POST",
        "/api/ingest?name=hf_2026-03-02.txt",
        &[],
        &std::fs::read(&day).unwrap(),
    ));
    assert!(report["added"].as_u64().unwrap() > 0, "{report}");
    let info = ok(get(&server, "/api/info"));
    assert_eq!(info["papers"], report["papers_total"]);
    assert_eq!(info, cli(&lib, &["info"]));

    // The page and its two files, embedded.
    let page = get(&server, "/");
    assert_eq!(page.status, 200);
    assert!(page.headers.contains("text/html"), "{}", page.headers);
    assert!(page
        .headers
        .to_ascii_lowercase()
        .contains("content-security-policy"));
    for asset in ["/app.js", "/app.css"] {
        assert_eq!(get(&server, asset).status, 200, "{asset}");
    }
}

#[test]
fn errors_are_json_with_a_fitting_status() {
    let (_tmp, lib) = lib_copy();
    let server = Server::start(&lib, "127.0.0.1:0", &["--max-body", "4096"]);
    let before = snapshot(&lib);
    error(
        &get(&server, "/api/papers/no-such-paper"),
        404,
        &["no paper matches `no-such-paper`"],
    );
    error(
        &get(&server, "/api/similar/no-such-paper"),
        404,
        &["no paper matches"],
    );
    error(
        &get(&server, "/api/query?q=x&k=0"),
        400,
        &["-k must be at least 1 and at most 10000"],
    );
    error(
        &get(&server, "/api/query?q=x&k=many"),
        400,
        &["`k` must be a whole number"],
    );
    error(
        &get(&server, "/api/query?q=x&mode=fuzzy"),
        400,
        &["mode `fuzzy`"],
    );
    error(
        &get(&server, "/api/query?q=x&sine=2025-01-01"),
        400,
        &["unknown parameter `sine`"],
    );
    error(
        &get(&server, "/api/query?q=x&since=yesterday"),
        400,
        &["date `yesterday` is not YYYY-MM-DD"],
    );
    error(
        &get(&server, "/api/query?q=%20"),
        400,
        &["the query is empty"],
    );
    error(
        &get(&server, "/api/query?q=x&diversity=2"),
        400,
        &["diversity"],
    );
    error(
        &get(&server, "/api/nothing-here"),
        404,
        &["no such page or API endpoint"],
    );
    error(&get(&server, "/etc/passwd"), 404, &["no such page"]);
    error(&get(&server, "/../Cargo.toml"), 404, &[]);
    let long = format!("/api/query?q={}", "a".repeat(10_000));
    error(&get(&server, &long), 414, &["at most 8192"]);
    error(
        &post_json(&server, "/api/like", json!({"papers": ["no-such-paper"]})),
        404,
        &["no-such-paper"],
    );
    error(
        &post_json(&server, "/api/like", json!({"papers": []})),
        400,
        &["`papers` is empty"],
    );
    error(
        &post_json(&server, "/api/like", json!({"paper": "x"})),
        400,
        &["unknown field `paper`"],
    );
    error(
        &request(server.addr, "POST", "/api/like", &[], b"{not json"),
        400,
        &["the request body"],
    );
    error(
        &post_json(&server, "/api/recommend", json!({"k": 3})),
        400,
        &["no liked papers"],
    );
    error(
        &request(server.addr, "POST", "/api/triage", &[], b"\x1f\x8b\x08\x00"),
        400,
        &["gzip"],
    );
    error(
        &request(
            server.addr,
            "POST",
            "/api/ingest?name=a/b",
            &[],
            b"Title\n\nAbstract text.\n",
        ),
        400,
        &["`name` must be a file name"],
    );
    error(
        &request(server.addr, "POST", "/api/ingest", &[], b"\x00\x01binary"),
        400,
        &[],
    );
    let big = vec![b'a'; 5000];
    error(
        &request(server.addr, "POST", "/api/ingest", &[], &big),
        413,
        &["--max-body"],
    );
    error(
        &request(server.addr, "POST", "/api/triage", &[], &big),
        413,
        &["--max-body"],
    );
    // Nothing refused changed the library or the profile.
    assert_eq!(snapshot(&lib), before);

    // Another writer holds the library: an ingest is a 409, not a wait.
    let lock = papersim::WriteLock::acquire(&lib, false).unwrap();
    let small =
        b"A Paper Nobody Has Seen\n\nAn abstract long enough to be a paper of its own, about locks.\n";
    error(
        &request(
            server.addr,
            "POST",
            "/api/ingest?name=locks.txt",
            &[],
            small,
        ),
        409,
        &["being written by another papersim process"],
    );
    drop(lock);
    assert_eq!(snapshot(&lib), before);
}

#[test]
fn out_of_bounds_options_are_refused_at_start() {
    let (_tmp, lib) = lib_copy();
    for (args, needle) in [
        (
            vec!["--max-body", "10"],
            "--max-body must be between 1024 and 268435456 bytes, got 10",
        ),
        (
            vec!["--timeout", "0"],
            "--timeout must be between 1 and 3600 seconds, got 0",
        ),
        (
            vec!["--query-batch", "0"],
            "--query-batch must be between 1 and 256 texts, got 0",
        ),
        (
            vec!["--query-batch", "257"],
            "--query-batch must be between 1 and 256 texts, got 257",
        ),
        (
            vec!["--record-cache", "65537"],
            "--record-cache must be between 0 and 65536 MiB, got 65537",
        ),
    ] {
        let o = papersim()
            .arg("--library")
            .arg(&lib)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(
            common::stderr(&o).contains(needle),
            "{}",
            common::stderr(&o)
        );
    }
    let empty = tempfile::tempdir().unwrap();
    let o = papersim()
        .arg("--library")
        .arg(empty.path())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("holds no library"),
        "{}",
        common::stderr(&o)
    );
}

#[test]
fn beyond_loopback_every_request_needs_the_token() {
    let (_tmp, lib) = lib_copy();
    let server = Server::start(&lib, "0.0.0.0:0", &[]);
    let token_file = lib.join("serve-token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(token.len(), 64);
    assert!(
        server.banner.contains(&token),
        "the new token is shown once: {}",
        server.banner
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let bearer = format!("Bearer {token}");
    let wrong = format!("Bearer {}", "0".repeat(64));
    for target in [
        "/api/info",
        "/",
        "/app.js",
        "/api/query?q=x",
        "/api/profile",
    ] {
        error(&get(&server, target), 401, &["needs its token"]);
        error(
            &request(
                server.addr,
                "GET",
                target,
                &[("Authorization", &wrong)],
                b"",
            ),
            401,
            &[],
        );
    }
    error(
        &post_json(&server, "/api/like", json!({"papers": [DMD]})),
        401,
        &[],
    );
    assert_eq!(
        ok(request(
            server.addr,
            "GET",
            "/api/info",
            &[("Authorization", &bearer)],
            b""
        ))["papers"],
        79
    );
    // The page takes it once as ?token= and keeps it in an HttpOnly cookie.
    let page = get(&server, &format!("/?token={token}"));
    assert_eq!(page.status, 200);
    assert!(
        page.headers.contains(&format!(
            "papersim_token={token}; HttpOnly; SameSite=Strict"
        )),
        "{}",
        page.headers
    );
    let cookie = format!("papersim_token={token}");
    assert_eq!(
        request(server.addr, "GET", "/api/info", &[("Cookie", &cookie)], b"").status,
        200
    );
    drop(server);

    // A restart keeps the token and does not show it again.
    let again = Server::start(&lib, "0.0.0.0:0", &[]);
    assert!(!again.banner.contains(&token), "{}", again.banner);
    assert!(again.banner.contains("serve-token"), "{}", again.banner);
    assert_eq!(
        request(
            again.addr,
            "GET",
            "/api/info",
            &[("Authorization", &bearer)],
            b""
        )
        .status,
        200
    );
    drop(again);

    // A token file others can read is no secret: refused, not used.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = papersim()
            .arg("--library")
            .arg(&lib)
            .args(["serve", "--addr", "0.0.0.0:0"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(
            common::stderr(&o).contains("readable or writable by others"),
            "{}",
            common::stderr(&o)
        );
    }
    // On loopback no token is asked for.
    let local = Server::start(&lib, "127.0.0.1:0", &[]);
    assert_eq!(get(&local, "/api/info").status, 200);
}

#[test]
fn cross_site_writes_and_foreign_hosts_are_refused() {
    let (_tmp, lib) = lib_copy();
    let server = Server::start(&lib, "127.0.0.1:0", &[]);
    let before = snapshot(&lib);
    let like = json!({"papers": [DMD]}).to_string();
    let post = |headers: &[(&str, &str)]| {
        request(server.addr, "POST", "/api/like", headers, like.as_bytes())
    };
    error(
        &post(&[("Origin", "http://evil.example")]),
        403,
        &["Origin `http://evil.example`"],
    );
    error(&post(&[("Origin", "null")]), 403, &["Origin"]);
    let other_port = format!("http://127.0.0.1:{}", server.addr.port() + 1);
    error(&post(&[("Origin", &other_port)]), 403, &["Origin"]);
    error(
        &post(&[("Sec-Fetch-Site", "cross-site")]),
        403,
        &["cross-site"],
    );
    // DNS rebinding: a page of another name resolved to 127.0.0.1 sends its own Host.
    for host in [
        "evil.example",
        "evil.example:80",
        &format!("evil.example:{}", server.addr.port()),
    ] {
        error(
            &request(server.addr, "GET", "/api/info", &[("Host", host)], b""),
            403,
            &["is not this server's"],
        );
        error(
            &request(
                server.addr,
                "POST",
                "/api/like",
                &[("Host", host)],
                like.as_bytes(),
            ),
            403,
            &[],
        );
    }
    assert_eq!(snapshot(&lib), before, "a refused write changed something");
    // The server's own page (same origin, by any loopback name) and clients that are no
    // browser (no Origin) may write.
    let port = server.addr.port();
    let own = format!("http://{}", server.addr);
    assert_eq!(post(&[("Origin", &own)]).status, 200);
    let localhost = format!("localhost:{port}");
    let origin = format!("http://localhost:{port}");
    assert_eq!(
        request(
            server.addr,
            "POST",
            "/api/like",
            &[("Host", &localhost), ("Origin", &origin)],
            like.as_bytes()
        )
        .status,
        200
    );
    assert_eq!(post(&[]).status, 200);
    assert_eq!(
        ok(get(&server, "/api/profile"))["likes"]["default"][0]["title"],
        DMD
    );
}

#[test]
fn text_queries_sent_together_answer_as_each_alone() {
    // The server embeds the texts of queries that wait together in one pass of the encoder
    // (`--query-batch`): each must get the ranking it gets alone, which is the command line's.
    let (_tmp, lib) = lib_copy();
    let server = Server::start(&lib, "127.0.0.1:0", &[]);
    let texts = [
        "one-step diffusion distillation",
        "video generation with world models",
        "reinforcement learning from human feedback for language models",
        "mixture of experts routing",
        "hand gesture recognition",
        "a benchmark for multimodal reasoning over charts and tables",
        "speculative decoding",
        "3D Gaussian splatting from a single image",
    ];
    let target = |t: &str| format!("/api/query?q={}&k=5&mode=dense", t.replace(' ', "%20"));
    let alone: Vec<Value> = texts.iter().map(|t| ok(get(&server, &target(t)))).collect();
    assert_eq!(
        alone[0],
        cli(&lib, &["query", texts[0], "-k", "5", "--mode", "dense"])
    );
    let addr = server.addr;
    // Every text sent by several clients at the same instant, three times over.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2 * texts.len()));
    let clients: Vec<_> = (0..2 * texts.len())
        .map(|c| {
            let barrier = barrier.clone();
            let path = target(texts[c % texts.len()]);
            std::thread::spawn(move || {
                (0..3)
                    .map(|_| {
                        barrier.wait();
                        request(addr, "GET", &path, &[], b"")
                    })
                    .collect::<Vec<Answer>>()
            })
        })
        .collect();
    for (c, client) in clients.into_iter().enumerate() {
        let want = &alone[c % texts.len()]["results"];
        for a in client.join().unwrap() {
            assert_eq!(a.status, 200, "{a:?}");
            let got = a.body["results"].as_array().unwrap();
            assert_eq!(got.len(), 5, "{a:?}");
            for (g, w) in got.iter().zip(want.as_array().unwrap()) {
                assert_eq!(
                    g["id"],
                    w["id"],
                    "{}: {got:?} against {want:?}",
                    texts[c % texts.len()]
                );
                let (g, w) = (g["score"].as_f64().unwrap(), w["score"].as_f64().unwrap());
                // A batch pads each text to the longest; the padding is masked, so the
                // vectors agree to rounding.
                assert!(
                    (g - w).abs() < 1e-5,
                    "{}: {g} against {w}",
                    texts[c % texts.len()]
                );
            }
        }
    }
    #[cfg(target_os = "linux")]
    encoder_threads_yield_to_requests(server.child.id());
}

/// The encoder's threads run below the request threads (`papersim::serve::ENCODER_NICE`,
/// Linux's batch policy), so that a flood of text queries leaves lookups fast; the request
/// threads (tokio's, and rayon's that their rankings use, named after them) and the main one
/// keep the normal priority.
#[cfg(target_os = "linux")]
fn encoder_threads_yield_to_requests(pid: u32) {
    const SCHED_BATCH: i64 = 3;
    let mut encoder = 0;
    let mut others = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue; // a thread that ended meanwhile
        };
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        // Fields after the name (which may hold spaces): state is field 3, nice 19, policy 41.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let nice: i64 = fields[19 - 3].parse().unwrap();
        let policy: i64 = fields[41 - 3].parse().unwrap();
        if name.starts_with("papersim-encode") || name.starts_with("papersim-embed") {
            encoder += 1;
            assert_eq!(
                (nice, policy),
                (i64::from(papersim::serve::ENCODER_NICE), SCHED_BATCH),
                "{name}"
            );
        } else if name.starts_with("tokio-rt-worker") || name.trim() == "papersim" {
            others += 1;
            assert_eq!((nice, policy), (0, 0), "{name}");
        }
        // Other threads (candle's own) are started by the encoder's and inherit its priority.
    }
    // Two embedding threads a core and the encoder's pool of one a core, besides the server's.
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(encoder, 3 * cores, "encoder threads");
    assert!(others >= 2, "the main thread and tokio's");
}

#[test]
fn a_concurrent_ingest_becomes_visible_without_a_restart() {
    let (_tmp, lib) = lib_copy();
    let server = Server::start(&lib, "127.0.0.1:0", &[]);
    assert_eq!(ok(get(&server, "/api/info"))["papers"], 79);
    let unknown = ok(get(
        &server,
        "/api/query?q=hand%20gesture%20recognition&mode=lexical&k=1",
    ));
    // Readers hammer the server while another process ingests: every answer is a whole
    // generation (79 papers, or all of them), never an error.
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = std::collections::BTreeSet::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let a = request(
                        addr,
                        "GET",
                        "/api/query?q=diffusion&mode=lexical&k=3",
                        &[],
                        b"",
                    );
                    assert_eq!(a.status, 200, "{a:?}");
                    seen.insert(a.body["results"].as_array().unwrap().len());
                    let info = request(addr, "GET", "/api/info", &[], b"");
                    assert_eq!(info.status, 200, "{info:?}");
                }
                seen
            })
        })
        .collect();
    let digest = fixture("digests/arxiv-cs-5.json");
    let o = common::run_in(&lib, &["ingest", digest.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(ok(get(&server, "/api/info"))["papers"], 84);
    let found = ok(get(
        &server,
        "/api/query?q=hand%20gesture%20recognition&mode=lexical&k=1",
    ));
    assert_ne!(ids(&found), ids(&unknown));
    let new_id = ids(&found)[0].clone();
    assert_eq!(new_id, "1812.06145");
    assert_eq!(
        ok(get(&server, &format!("/api/papers/{new_id}")))["id"],
        "1812.06145"
    );
    assert_eq!(
        ok(get(&server, &format!("/api/similar/{new_id}?k=4"))),
        cli(&lib, &["similar", &new_id, "-k", "4"])
    );
}

#[test]
fn sigterm_stops_it_after_the_request_in_flight() {
    let (_tmp, lib) = lib_copy();
    let server = Server::start(&lib, "127.0.0.1:0", &[]);
    let addr = server.addr;
    // An ingest in flight when the signal comes: it finishes and commits.
    let day = std::fs::read(crate::reliability::day("03-04")).unwrap();
    let inflight = std::thread::spawn(move || {
        request(
            addr,
            "POST",
            "/api/ingest?name=hf_2026-03-04.txt",
            &[],
            &day,
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let status = server.stop(Duration::from_secs(120));
    assert!(status.success(), "{status:?}");
    let answer = inflight.join().unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let info = cli(&lib, &["info"]);
    assert_eq!(info["papers"], answer.body["papers_total"]);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after SIGTERM"
    );
}
