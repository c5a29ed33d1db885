//! `papersim serve`: an HTTP API and a web page over one library, loaded once and kept open.
//!
//! The API answers with the JSON documents of the command line (`crate::report`); the page is
//! three files embedded in the binary (`assets/`). Rankings run on tokio's blocking threads
//! over the library opened for reading; a new generation written by another process (an
//! ingest) is noticed per request from the manifest's file identity and opened beside the old
//! one, then swapped in whole ([`state`]). Every request passes [`guard`]: the token, the
//! Host and Origin checks, the query size, and a time limit.
//!
//! May import: `crate::error`, `crate::library`, `crate::rank`, `crate::report`,
//! `crate::encode`, `crate::pipeline`, `crate::feedback`, `crate::digest`, `crate::directory`,
//! `crate::progress`, `crate::paper`, `crate::index`. No printing: the binary prints the address and token
//! that [`Bound`] returns.

mod api;
mod assets;
mod batcher;
mod guard;
mod state;
mod token;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::encode::Embedder;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::{Error, Result};

pub use batcher::{DEFAULT_QUERY_BATCH, ENCODER_NICE, QUERY_BATCH_RANGE};
pub use token::TOKEN_FILE;

/// Loads the encoder for the library's model (its id given): the binary's model options.
pub type LoadEmbedder = Arc<dyn Fn(&str) -> Result<Embedder> + Send + Sync>;

/// Bounds of `--max-body` in bytes: a digest of a few papers fits in the least; the most is
/// what one request may hold in memory while it is parsed.
pub const MAX_BODY_RANGE: std::ops::RangeInclusive<usize> = 1024..=(256 << 20);
/// Bounds of `--timeout` in seconds: an ingest of a large digest embeds every new paper
/// inside one request.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=3600;
/// Bounds of `--record-cache` in MiB. Every answer lists papers, whose records a library
/// keeps in 64 KiB zstd frames; decompressing them was a fifth of a `similar`'s time at
/// 100,000 papers with a cache of 64 MiB. 0 keeps only the last few frames read; the most,
/// 64 GiB, holds the records of some 40 million papers (1.6 KB each), past any library one
/// machine serves.
pub const RECORD_CACHE_MIB_RANGE: std::ops::RangeInclusive<usize> = 0..=65536;
/// The default `--record-cache`: the records of about 160,000 papers whole, and a larger
/// library's most read ones. It is held per generation served (two at once while requests
/// on an older one finish).
pub const DEFAULT_RECORD_CACHE_MIB: usize = 256;
/// The longest query string accepted (bytes): a query text, its filters and a token.
pub const MAX_QUERY_BYTES: usize = 8192;
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What `papersim serve` was asked for.
pub struct Config {
    pub root: PathBuf,
    pub addr: SocketAddr,
    /// The largest request body, in bytes (see [`MAX_BODY_RANGE`]).
    pub max_body: usize,
    /// The longest a request may take, from its headers to its answer.
    pub timeout: Duration,
    /// The most query texts embedded in one pass (see [`QUERY_BATCH_RANGE`]).
    pub query_batch: usize,
    /// Decompressed paper records kept in memory, in MiB (see [`RECORD_CACHE_MIB_RANGE`]).
    pub record_cache_mib: usize,
    pub load_embedder: LoadEmbedder,
}

impl Config {
    /// Refuses options outside their bounds, saying why.
    pub fn check(&self) -> Result<()> {
        if !MAX_BODY_RANGE.contains(&self.max_body) {
            return Err(Error::InvalidInput(format!(
                "--max-body must be between {} and {} bytes, got {}: below that no digest \
                 fits, above it one request could hold too much memory while it is parsed",
                MAX_BODY_RANGE.start(),
                MAX_BODY_RANGE.end(),
                self.max_body
            )));
        }
        if !TIMEOUT_RANGE.contains(&self.timeout.as_secs()) {
            return Err(Error::InvalidInput(format!(
                "--timeout must be between {} and {} seconds, got {}: a request needs at \
                 least a second, and a client held for more than an hour is a stuck one",
                TIMEOUT_RANGE.start(),
                TIMEOUT_RANGE.end(),
                self.timeout.as_secs()
            )));
        }
        if !QUERY_BATCH_RANGE.contains(&self.query_batch) {
            return Err(Error::InvalidInput(format!(
                "--query-batch must be between {} and {} texts, got {}: 1 embeds each query \
                 alone, and past {} a pass pads every text to the longest for no further saving",
                QUERY_BATCH_RANGE.start(),
                QUERY_BATCH_RANGE.end(),
                self.query_batch,
                QUERY_BATCH_RANGE.end()
            )));
        }
        if !RECORD_CACHE_MIB_RANGE.contains(&self.record_cache_mib) {
            return Err(Error::InvalidInput(format!(
                "--record-cache must be between {} and {} MiB, got {}: past that it would \
                 hold more records than a machine's library has",
                RECORD_CACHE_MIB_RANGE.start(),
                RECORD_CACHE_MIB_RANGE.end(),
                self.record_cache_mib
            )));
        }
        Ok(())
    }
}

/// The token rule of a bound server.
#[derive(Debug, Clone)]
pub enum Access {
    /// Bound to a loopback address: no token (the Host check keeps other sites' pages out).
    Loopback,
    /// Bound elsewhere: every request needs the token stored in `path`; `new` when this start
    /// generated it (the binary shows it once).
    Token {
        path: PathBuf,
        token: String,
        new: bool,
    },
}

/// A server whose socket is bound and whose library is open, not yet answering.
pub struct Bound {
    listener: TcpListener,
    shared: Arc<state::Shared>,
    timeout: Duration,
    max_body: usize,
    pub addr: SocketAddr,
    pub access: Access,
}

/// Opens the library in `config.root`, binds `config.addr` and, bound beyond loopback,
/// reads (or makes) the token.
pub fn bind(config: Config) -> Result<Bound> {
    config.check()?;
    let shared = state::Shared::open(&config)?;
    let listener = TcpListener::bind(config.addr)
        .map_err(|e| Error::InvalidInput(format!("cannot listen on {}: {e}", config.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::InvalidInput(format!("cannot listen on {}: {e}", config.addr)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::InvalidInput(format!("cannot listen on {addr}: {e}")))?;
    let access = if addr.ip().is_loopback() {
        Access::Loopback
    } else {
        token::read_or_create(&config.root)?
    };
    let shared = Arc::new(shared.with_access(addr, &access));
    Ok(Bound {
        listener,
        shared,
        timeout: config.timeout,
        max_body: config.max_body,
        addr,
        access,
    })
}

impl Bound {
    /// Answers requests until SIGINT or SIGTERM; then stops accepting, lets the requests in
    /// flight finish (each is bounded by the request time limit) and returns.
    pub fn run(self) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::InvalidInput(format!("cannot start the server's runtime: {e}")))?;
        runtime.block_on(serve(self))
    }

    pub fn root(&self) -> &Path {
        &self.shared.root
    }
}

async fn serve(bound: Bound) -> Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let addr = bound.addr;
    let listener = tokio::net::TcpListener::from_std(bound.listener)
        .map_err(|e| Error::InvalidInput(format!("cannot listen on {addr}: {e}")))?;
    let app = api::router(bound.shared.clone(), bound.timeout, bound.max_body);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // the listener itself is fine; wait a moment rather than spin.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = watched.await;
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    // Requests in flight finish (an ingest commits or leaves the previous generation); idle
    // keep-alive connections are closed. Each request is bounded by the time limit already.
    let _ = tokio::time::timeout(bound.timeout + HEADER_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// An error answered as JSON with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: String) -> ApiError {
        ApiError { status, message }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message.into())
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match &e {
            Error::PaperLookup(_) => StatusCode::NOT_FOUND,
            Error::InvalidInput(_) | Error::Digest { .. } => StatusCode::BAD_REQUEST,
            Error::LibraryBusy { .. } => StatusCode::CONFLICT,
            Error::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> ApiError {
        let status = r.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is larger than the server accepts (--max-body)".to_string()
        } else {
            r.body_text()
        };
        ApiError::new(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.message, "status": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}
