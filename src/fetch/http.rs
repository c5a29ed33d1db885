//! The one HTTP client of the fetchers: blocking (ureq, rustls), a descriptive User-Agent,
//! proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read by
//! ureq), connect and per-read timeouts, a bounded number of redirects, a politeness interval
//! between any two requests, and retries of 429 and 5xx answers with exponential backoff or
//! the server's `Retry-After`. Every error names the URL that failed.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What papersim says it is: arXiv asks API clients to identify themselves.
pub const USER_AGENT: &str = concat!(
    "papersim/",
    env!("CARGO_PKG_VERSION"),
    " (paper digest tool; +https://github.com/papersim/papersim)"
);

/// Largest response body read, in bytes: a listing page of 2,000 arXiv entries is about 5 MB.
pub const MAX_BODY_BYTES: u64 = 64 << 20;
/// Redirects followed before giving up (a mirror behind one or two is normal; a loop is not).
pub const MAX_REDIRECTS: u32 = 5;
/// The longest `Retry-After` papersim waits; a server asking for more is reported instead.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The first backoff after a 429 or 5xx without `Retry-After`; it doubles on each retry.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// How a [`Client`] talks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time allowed to resolve the host and connect (TLS included).
    pub connect_timeout: Duration,
    /// Time allowed for each read: a server that sends nothing for this long has stalled.
    pub read_timeout: Duration,
    /// The least time between the starts of two requests (arXiv asks for 3 s).
    pub interval: Duration,
    /// How many times a 429 or 5xx answer is retried before the fetch fails.
    pub retries: u32,
}

/// A blocking client that keeps its politeness interval across every request it sends.
pub struct Client {
    agent: ureq::Agent,
    settings: HttpSettings,
    last_request: Option<Instant>,
    /// Requests sent, retries included.
    pub requests: usize,
}

impl Client {
    pub fn new(settings: HttpSettings) -> Client {
        let config = ureq::Agent::config_builder()
            .user_agent(USER_AGENT)
            // Statuses are judged here: a 429 or 503 carries a Retry-After to read.
            .http_status_as_error(false)
            .max_redirects(MAX_REDIRECTS)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_per_read(Some(settings.read_timeout))
            .timeout_recv_response(Some(settings.read_timeout))
            .build();
        Client {
            agent: config.new_agent(),
            settings,
            last_request: None,
            requests: 0,
        }
    }

    /// The body of `url` as text, after waiting out the politeness interval and retrying
    /// 429 and 5xx answers.
    pub fn get(&mut self, url: &str) -> Result<String> {
        let mut attempt = 0u32;
        let mut delay = Duration::ZERO;
        loop {
            self.wait(delay);
            self.requests += 1;
            let response = self.agent.get(url).call();
            // The interval runs from the end of an exchange, not its start: however long the
            // request took to reach the server, the next one reaches it an interval later.
            self.last_request = Some(Instant::now());
            let response =
                response.map_err(|e| fetch_error(url, transport_reason(&e, &self.settings)))?;
            let status = response.status().as_u16();
            if status == 200 {
                let body = read_body(url, response, &self.settings);
                self.last_request = Some(Instant::now());
                return body;
            }
            let retryable = status == 429 || (500..600).contains(&status);
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if !retryable {
                return Err(fetch_error(
                    url,
                    format!("the server answered HTTP {status}"),
                ));
            }
            if attempt >= self.settings.retries {
                return Err(fetch_error(
                    url,
                    format!(
                        "the server answered HTTP {status} {} time(s) in a row; gave up after {} retries (try again later)",
                        attempt + 1,
                        self.settings.retries
                    ),
                ));
            }
            delay = match retry_after.as_deref().map(parse_retry_after) {
                Some(Some(d)) if d > MAX_RETRY_AFTER => {
                    return Err(fetch_error(
                        url,
                        format!(
                            "the server answered HTTP {status} and asks to wait {} s (Retry-After); papersim waits at most {} s, so try again later",
                            d.as_secs(),
                            MAX_RETRY_AFTER.as_secs()
                        ),
                    ))
                }
                Some(Some(d)) => d,
                // No Retry-After, or one that is neither seconds nor an HTTP date.
                _ => FIRST_BACKOFF * 2u32.saturating_pow(attempt),
            };
            attempt += 1;
        }
    }

    /// Sleeps until `delay` has passed since the last exchange ended, and the politeness
    /// interval.
    fn wait(&self, delay: Duration) {
        if let Some(last) = self.last_request {
            let due = last + self.settings.interval.max(delay);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
}

fn read_body(
    url: &str,
    response: ureq::http::Response<ureq::Body>,
    settings: &HttpSettings,
) -> Result<String> {
    let mut bytes = Vec::new();
    let mut reader = response
        .into_body()
        .into_with_config()
        .limit(MAX_BODY_BYTES + 1)
        .reader();
    reader.read_to_end(&mut bytes).map_err(|e| {
        fetch_error(
            url,
            format!(
                "reading the response failed after {} bytes: {}",
                bytes.len(),
                io_reason(&e, settings)
            ),
        )
    })?;
    if bytes.len() as u64 > MAX_BODY_BYTES {
        return Err(fetch_error(
            url,
            format!(
                "the response is larger than {MAX_BODY_BYTES} bytes; papersim reads at most that"
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|e| fetch_error(url, format!("the response is not UTF-8 text: {e}")))
}

/// Seconds (`120`) or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`), as RFC 9110 allows.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

fn transport_reason(e: &ureq::Error, settings: &HttpSettings) -> String {
    match e {
        ureq::Error::Timeout(what) => format!(
            "timed out ({what}; connect timeout {} s, read timeout {} s)",
            settings.connect_timeout.as_secs_f64(),
            settings.read_timeout.as_secs_f64()
        ),
        ureq::Error::TooManyRedirects => {
            format!("more than {MAX_REDIRECTS} redirects (a redirect loop?)")
        }
        ureq::Error::Io(io) => io_reason(io, settings),
        ureq::Error::HostNotFound => {
            "the host name does not resolve (offline, or a proxy or DNS problem?)".to_string()
        }
        ureq::Error::ConnectionFailed => {
            "could not connect (offline, or the server is down?)".to_string()
        }
        other => format!("{other} (offline, or the server is down?)"),
    }
}

fn io_reason(e: &std::io::Error, settings: &HttpSettings) -> String {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => format!(
            "the server sent nothing for {} s (read timeout)",
            settings.read_timeout.as_secs_f64()
        ),
        std::io::ErrorKind::ConnectionRefused => {
            "connection refused (offline, or the server is down?)".to_string()
        }
        std::io::ErrorKind::UnexpectedEof => {
            "the connection closed before the whole response arrived (truncated)".to_string()
        }
        _ => {
            // ureq wraps its own errors (a timeout, a body shorter than its Content-Length) in
            // io errors of kind Other; its message says which.
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            {
                Some(inner) => transport_reason(inner, settings),
                None => e.to_string(),
            }
        }
    }
}

pub(crate) fn fetch_error(url: &str, reason: impl Into<String>) -> Error {
    Error::Fetch {
        url: url.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
