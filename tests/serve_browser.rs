//! The page of `papersim serve` (#16) in real headless Chromium, driven through WebDriver
//! (chromedriver) from Rust: load it, search, open similar papers, read an abstract from the
//! keyboard, like a paper and see it in the profile. A screenshot of the results is written
//! under the target directory and its path printed.
//!
//! It needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them): without them
//! it fails saying so, rather than passing without having looked at the page.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::DMD;
use crate::reliability::library_copy;
use crate::serve::Server;

/// The first of `names` found on PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(chromedriver: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "chromedriver did not listen on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, port }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Presses `key` as a keyboard does (down, up), on whatever has the focus.
async fn press(c: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.unwrap();
}

/// Waits until `script` (a JavaScript expression) is true on the page.
async fn until(c: &Client, what: &str, script: &str) {
    let start = Instant::now();
    loop {
        let v = c
            .execute(&format!("return Boolean({script});"), vec![])
            .await
            .unwrap();
        if v == json!(true) {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let status = c
                .execute(
                    "return document.getElementById('status').textContent;",
                    vec![],
                )
                .await
                .unwrap();
            panic!("waited 60 s for {what} ({script}); the page's status line says {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

#[test]
fn the_page_searches_finds_similar_papers_and_keeps_a_like_in_chromium() {
    let missing = "the browser test needs Debian's chromium and chromium-driver: \
                   `apt-get update && apt-get install -y chromium chromium-driver` (.ci/run \
                   installs them)";
    let chromedriver =
        on_path(&["chromedriver"]).unwrap_or_else(|| panic!("no chromedriver on PATH; {missing}"));
    let chromium = on_path(&["chromium", "chromium-browser"])
        .unwrap_or_else(|| panic!("no chromium on PATH; {missing}"));

    let tmp = tempfile::tempdir().unwrap();
    let lib = library_copy(tmp.path());
    let server = Server::start(&lib, "127.0.0.1:0", &[]);
    let driver = start_driver(&chromedriver);
    let profile_dir = tmp.path().join("chromium-profile");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile_dir.display()),
            ],
        },
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shot = runtime.block_on(async {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let c = ClientBuilder::new(connector)
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start chromium ({}): {e}", chromium.display()));

        // Load: the status line shows what the library holds.
        c.goto(&server.url()).await.unwrap();
        until(&c, "the library's size", "document.getElementById('status').textContent.includes('79 papers')").await;

        // Search, from the keyboard: / focuses the box, Enter submits.
        press(&c, '/').await;
        let active = c.execute("return document.activeElement.id;", vec![]).await.unwrap();
        assert_eq!(active, json!("q"), "/ focuses the search box");
        c.find(Locator::Id("q")).await.unwrap().send_keys("distribution matching distillation\n").await.unwrap();
        until(&c, "search results", "document.querySelectorAll('#results .card').length > 0").await;
        let titles = texts(&c, "#results .card .title").await;
        assert!(titles.iter().any(|t| t == DMD), "{titles:?}");
        let heading = c.find(Locator::Id("heading")).await.unwrap().text().await.unwrap();
        assert!(heading.contains("distribution matching distillation"), "{heading}");
        let png = c.screenshot().await.unwrap();
        let shot = target_dir().join("serve-results.png");
        std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
        std::fs::write(&shot, &png).unwrap();

        // Keyboard: j moves the selection, Enter opens the abstract of the selected card.
        press(&c, 'j').await;
        until(&c, "the second card selected", "document.querySelectorAll('#results .card')[1].classList.contains('selected')").await;
        press(&c, '\u{E007}').await; // WebDriver's Enter key
        until(&c, "an abstract", "(() => { const a = document.querySelectorAll('#results .card')[1].querySelector('.abstract'); return !a.hidden && a.textContent.length > 100; })()").await;

        // Similar papers of the DMD card.
        let cards = c.find_all(Locator::Css("#results .card")).await.unwrap();
        let mut dmd_card = None;
        for card in cards {
            if card.find(Locator::Css(".title")).await.unwrap().text().await.unwrap() == DMD {
                dmd_card = Some(card);
            }
        }
        let dmd_card = dmd_card.unwrap();
        dmd_card.find(Locator::Css(".similar")).await.unwrap().click().await.unwrap();
        until(&c, "similar papers", "document.getElementById('heading').textContent.startsWith('Papers like')").await;
        until(&c, "similar cards", "document.querySelectorAll('#results .card').length > 0").await;
        let similar = texts(&c, "#results .card .title").await;
        assert!(!similar.contains(&DMD.to_string()), "a paper is not similar to itself: {similar:?}");

        // Like the first similar paper with its button; the profile lists it.
        let first = c.find(Locator::Css("#results .card")).await.unwrap();
        first.find(Locator::Css(".like")).await.unwrap().click().await.unwrap();
        until(&c, "the like recorded", "document.getElementById('status').textContent.startsWith('Liked')").await;
        assert_eq!(first.find(Locator::Css(".like")).await.unwrap().attr("aria-pressed").await.unwrap().as_deref(), Some("true"));
        press(&c, 'p').await;
        until(&c, "the profile", "document.querySelectorAll('#profile .liked li').length > 0").await;
        let liked = texts(&c, "#profile .liked li").await;
        assert_eq!(liked, vec![similar[0].clone()]);
        until(&c, "recommendations", "document.querySelectorAll('#recommended .card').length > 0").await;
        c.close().await.unwrap();
        shot
    });
    println!("screenshot of the results page: {}", shot.display());
    // The like went through the API into the library's feedback log.
    let profile = crate::common::json(&lib, &["profile"]);
    assert_eq!(
        profile["likes"]["default"].as_array().unwrap().len(),
        1,
        "{profile}"
    );
}
