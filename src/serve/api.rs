//! The routes: the JSON API (the command line's questions, answered with its JSON documents)
//! and the embedded page. Handlers run the synchronous library code on tokio's blocking
//! threads; errors are JSON `{"error": ..., "status": ...}` with a status that fits.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::guard::{self, query_token, TOKEN_COOKIE};
use super::state::Shared;
use super::{assets, ApiError};
use crate::digest::{self, Digest, InputFormat, ParseOptions};
use crate::feedback::{check_tag, Log, Op, Record, DEFAULT_TAG};
use crate::index::lexical::paper_text;
use crate::library::{Library, SearchMode};
use crate::paper::normalize_title;
use crate::pipeline;
use crate::rank::feedback::DEFAULT_FEEDBACK_WEIGHT;
use crate::rank::{self, Feedback, RankOptions, Ranked, Retrieval, TriagePaper};
use crate::report::{self, library_rows, ExplainTarget, Report};

/// A JSON document, written as the command line writes it (so that an `f32` score reads the
/// same), or an error.
type Answer = Result<Vec<u8>, ApiError>;

pub fn router(shared: Arc<Shared>, timeout: Duration, max_body: usize) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", assets::JS) }),
        )
        .route("/app.css", get(|| async { asset("text/css", assets::CSS) }))
        .route("/api/info", get(info))
        .route("/api/papers/{*id}", get(paper))
        .route("/api/similar/{*id}", get(similar))
        .route("/api/query", get(query))
        .route("/api/recommend", post(recommend))
        .route("/api/triage", post(triage))
        .route("/api/ingest", post(ingest))
        .route("/api/like", post(|s, b| mark(s, b, Op::Like)))
        .route("/api/dislike", post(|s, b| mark(s, b, Op::Dislike)))
        .route("/api/seen", post(|s, b| mark(s, b, Op::Seen)))
        .route("/api/forget", post(|s, b| mark(s, b, Op::Forget)))
        .route("/api/profile", get(profile))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such page or API endpoint".into())
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            (shared.clone(), timeout),
            guard::check,
        ))
        .with_state(shared)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The page; opened as `/?token=...` (a server bound beyond loopback), it keeps the token in
/// a cookie that only this site's requests carry, and that scripts cannot read.
async fn page(State(s): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let mut response = asset("text/html; charset=utf-8", assets::HTML);
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    let needed = s.rules.token.is_some();
    if let Some(token) = query.as_deref().and_then(query_token).filter(|_| needed) {
        // The guard let the request in, so this is the server's token.
        if let Ok(v) = header::HeaderValue::from_str(&format!(
            "{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
        )) {
            headers.insert(header::SET_COOKIE, v);
        }
    }
    response
}

/// Requests of this process whose work is running on a blocking thread.
static WORKING: AtomicUsize = AtomicUsize::new(0);

/// Counts a request's work in [`WORKING`] while it runs.
struct Working(usize);

impl Working {
    fn start() -> Working {
        Working(WORKING.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        WORKING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `work` on a blocking thread and answers its JSON. While more requests are working
/// than there are cores, each ranks on its own thread ([`crate::rank::on_this_thread`]):
/// a ranking split across the cores then only adds hand-offs, since the cores have other
/// requests to run (measured at 100,000 papers under 16 clients: `similar` p50 8.8 → 6.6 ms);
/// alone, the split answers sooner.
async fn blocking(work: impl FnOnce() -> Answer + Send + 'static) -> Response {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let run = move || {
        let working = Working::start();
        if working.0 > cores {
            crate::rank::on_this_thread(work)
        } else {
            work()
        }
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(Ok(v)) => ([(header::CONTENT_TYPE, "application/json")], v).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's work failed: {e}"),
        )
        .into_response(),
    }
}

fn to_value(v: impl serde::Serialize) -> Answer {
    serde_json::to_vec(&v).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write JSON: {e}"),
        )
    })
}

async fn info(State(s): State<Arc<Shared>>) -> Response {
    blocking(move || to_value(report::info(&Library::summary(&s.root)?))).await
}

async fn paper(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    blocking(move || {
        let opened = s.library()?;
        let lib = &opened.lib;
        let p = lib.paper(lib.resolve(&id)?)?;
        to_value(&*p)
    })
    .await
}

/// The ranking options of a request, and the reader's (recommend, triage). From a query
/// string (every value a string, repeated for lists) or a JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    k: Option<usize>,
    min_score: Option<f32>,
    since: Option<String>,
    until: Option<String>,
    diversity: Option<f32>,
    half_life: Option<f32>,
    prf: Option<usize>,
    prf_weight: Option<f32>,
    exact: Option<bool>,
    explain: Option<bool>,
    mode: Option<String>,
    #[serde(default)]
    must: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    category: Vec<String>,
    #[serde(default)]
    like: Vec<String>,
    #[serde(default)]
    unlike: Vec<String>,
    tag: Option<String>,
}

/// Parameters of a query string besides [`Ask`]'s, per endpoint.
type Extra = BTreeMap<String, String>;

/// Reads a query string into an [`Ask`] and the `extra` parameters the endpoint takes; any
/// other parameter is refused, so that a misspelt one is not silently ignored.
fn ask_of_query(query: Option<&str>, extra: &[&str]) -> Result<(Ask, Extra), ApiError> {
    let mut ask = Ask::default();
    let mut rest = Extra::new();
    let num = |k: &str, v: &str| -> Result<f32, ApiError> {
        v.parse::<f32>()
            .map_err(|_| ApiError::bad(format!("parameter `{k}` must be a number, got `{v}`")))
    };
    let flag = |k: &str, v: &str| -> Result<bool, ApiError> {
        match v {
            "" | "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(ApiError::bad(format!(
                "parameter `{k}` must be true or false, got `{v}`"
            ))),
        }
    };
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let v = v.into_owned();
        match &*k {
            "k" => {
                ask.k = Some(v.parse().map_err(|_| {
                    ApiError::bad(format!("parameter `k` must be a whole number, got `{v}`"))
                })?)
            }
            "min_score" => ask.min_score = Some(num(&k, &v)?),
            "diversity" => ask.diversity = Some(num(&k, &v)?),
            "half_life" => ask.half_life = Some(num(&k, &v)?),
            "prf" => {
                ask.prf = Some(v.parse().map_err(|_| {
                    ApiError::bad(format!("parameter `prf` must be a whole number, got `{v}`"))
                })?)
            }
            "prf_weight" => ask.prf_weight = Some(num(&k, &v)?),
            "since" => ask.since = Some(v),
            "until" => ask.until = Some(v),
            "exact" => ask.exact = Some(flag(&k, &v)?),
            "explain" => ask.explain = Some(flag(&k, &v)?),
            "mode" => ask.mode = Some(v),
            "must" => ask.must.push(v),
            "exclude" => ask.exclude.push(v),
            "category" => ask.category.push(v),
            "like" => ask.like.push(v),
            "unlike" => ask.unlike.push(v),
            "tag" => ask.tag = Some(v),
            // The page's token, checked by the guard already.
            "token" => {}
            other if extra.contains(&other) => {
                rest.insert(other.to_string(), v);
            }
            other => {
                return Err(ApiError::bad(format!(
                    "unknown parameter `{}`; this endpoint takes: k, min_score, since, until, \
                     diversity, half_life, prf, prf_weight, exact, explain, mode, must, exclude, \
                     category{}",
                    other.escape_debug(),
                    extra.iter().map(|e| format!(", {e}")).collect::<String>()
                )))
            }
        }
    }
    Ok((ask, rest))
}

impl Ask {
    fn options(&self) -> Result<(RankOptions, Retrieval), ApiError> {
        for d in [&self.since, &self.until].into_iter().flatten() {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| ApiError::bad(format!("date `{d}` is not YYYY-MM-DD")))?;
        }
        let retrieval = match self.mode.as_deref() {
            None | Some("hybrid") => Retrieval::default(),
            Some("dense") => Retrieval::Dense,
            Some("lexical") => Retrieval::Lexical,
            Some(other) => {
                return Err(ApiError::bad(format!(
                    "mode `{}` is not one of dense, lexical, hybrid",
                    other.escape_debug()
                )))
            }
        };
        let opts = RankOptions {
            k: self.k.unwrap_or(10),
            min_score: self.min_score,
            since: self.since.clone(),
            until: self.until.clone(),
            diversity: self.diversity,
            mode: if self.exact == Some(true) {
                SearchMode::Exact
            } else {
                SearchMode::Auto
            },
            half_life: self.half_life,
            must: self.must.clone(),
            exclude: self.exclude.clone(),
            categories: self.category.clone(),
            interests: Vec::new(),
            feedback: self.feedback(&retrieval)?,
        };
        opts.validate()?;
        Ok((opts, retrieval))
    }

    /// Pseudo-relevance feedback as `--prf K --prf-weight W` asks it of the CLI.
    fn feedback(&self, retrieval: &Retrieval) -> Result<Option<Feedback>, ApiError> {
        let Some(papers) = self.prf else {
            if self.prf_weight.is_some() {
                return Err(ApiError::bad("parameter `prf_weight` needs `prf`"));
            }
            return Ok(None);
        };
        if matches!(retrieval, Retrieval::Lexical) {
            return Err(ApiError::bad(
                "`prf` moves the dense query vector, and mode lexical uses none: use mode dense \
                 or hybrid",
            ));
        }
        let feedback = Feedback {
            papers,
            weight: self.prf_weight.unwrap_or(DEFAULT_FEEDBACK_WEIGHT),
        };
        rank::feedback::validate(&feedback)?;
        Ok(Some(feedback))
    }

    fn explain(&self) -> bool {
        self.explain == Some(true)
    }
}

async fn similar(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    blocking(move || {
        let (ask, _) = ask_of_query(q.as_deref(), &[])?;
        let (opts, retrieval) = ask.options()?;
        let opened = s.library()?;
        let lib = &opened.lib;
        let row = lib.resolve(&id)?;
        let ranked = rank::similar(lib, row, &opts, retrieval)?;
        let embedder = ask.explain().then(|| s.embedder(lib)).transpose()?;
        let seed = |_: &Ranked| lib.vector(row).to_vec();
        let rows = library_rows(
            lib,
            &ranked,
            embedder.as_deref().map(|e| (e, &seed as ExplainTarget)),
        )?;
        let p = lib.paper(row)?;
        to_value(Report {
            query: json!({"kind": "similar", "id": p.id, "title": p.title}),
            results: rows,
        })
    })
    .await
}

async fn query(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    blocking(move || {
        let (ask, extra) = ask_of_query(q.as_deref(), &["q"])?;
        let text = extra
            .get("q")
            .map(String::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        if text.is_empty() {
            return Err(ApiError::bad(
                "the query is empty: give some words to search for as `q`",
            ));
        }
        let (opts, retrieval) = ask.options()?;
        let opened = s.library()?;
        let lib = &opened.lib;
        let embedder = (retrieval.uses_dense() || ask.explain())
            .then(|| s.embedder(lib))
            .transpose()?;
        let vector = match embedder.as_ref().filter(|_| retrieval.uses_dense()) {
            Some(e) => Some(s.embed_query(e, &text)?),
            None => None,
        };
        let ranked = rank::query(lib, &text, vector.as_deref(), &opts, retrieval)?;
        let target = |_: &Ranked| vector.clone().unwrap_or_default();
        let rows = library_rows(
            lib,
            &ranked,
            embedder
                .as_deref()
                .filter(|_| ask.explain() && vector.is_some())
                .map(|e| (e, &target as ExplainTarget)),
        )?;
        to_value(Report {
            query: json!({"kind": "query", "text": text}),
            results: rows,
        })
    })
    .await
}

/// A JSON body of an [`Ask`] (an empty body is the default ask).
fn ask_of_body(body: &[u8]) -> Result<Ask, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Ask::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("the request body: {e}")))
}

/// Who a ranking is for.
struct Reader {
    likes: Vec<usize>,
    unlikes: Vec<usize>,
    interests: Vec<usize>,
    source: Value,
}

/// The reader of a request: its `like` (and `unlike`) papers when given, else the stored
/// profile (each tag one interest; `tag` narrows it to one), with `unlike` added to its
/// dislikes. Stored papers this library does not hold are left out.
fn reader(s: &Shared, lib: &Library, ask: &Ask) -> Result<Reader, ApiError> {
    if ask.tag.is_some() && !ask.like.is_empty() {
        return Err(ApiError::bad(
            "`tag` selects stored likes; it cannot be combined with `like`, which names the liked papers",
        ));
    }
    let mut unlikes = lib.resolve_all(&ask.unlike)?;
    if !ask.like.is_empty() {
        return Ok(Reader {
            likes: lib.resolve_all(&ask.like)?,
            unlikes,
            interests: Vec::new(),
            source: json!({"from": "request"}),
        });
    }
    let stored_row = |id: &str, title: &str| -> crate::Result<Option<usize>> {
        Ok(match lib.row_of_id(id)? {
            Some(r) => Some(r),
            None => lib.rows_of_title(title)?.first().copied(),
        })
    };
    let fb = Log::of_library(&s.root).feedback()?;
    let mut tags = fb.likes();
    if let Some(t) = &ask.tag {
        check_tag(t)?;
        if !tags.contains_key(t) {
            return Err(ApiError::bad(format!("no liked papers under tag `{t}`")));
        }
        tags.retain(|k, _| k == t);
    }
    let (mut likes, mut interests, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for (tag, marks) in &tags {
        let before = likes.len();
        for m in marks {
            if let Some(r) = stored_row(&m.id, &m.title)? {
                if !likes.contains(&r) {
                    likes.push(r);
                    interests.push(names.len());
                }
            }
        }
        if likes.len() > before {
            names.push(tag.clone());
        }
    }
    if likes.is_empty() {
        return Err(ApiError::bad(
            "no liked papers: like some (POST /api/like, or `papersim like`), or send `like`",
        ));
    }
    for m in fb.dislikes() {
        if let Some(r) = stored_row(&m.id, &m.title)? {
            unlikes.push(r);
        }
    }
    Ok(Reader {
        likes,
        unlikes,
        interests,
        source: json!({"from": "stored", "tags": names}),
    })
}

fn ids(lib: &Library, rows: &[usize]) -> crate::Result<Vec<String>> {
    rows.iter().map(|&r| Ok(lib.paper(r)?.id.clone())).collect()
}

async fn recommend(State(s): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    blocking(move || {
        let ask = ask_of_body(&body?)?;
        let (mut opts, retrieval) = ask.options()?;
        let opened = s.library()?;
        let lib = &opened.lib;
        let r = reader(&s, lib, &ask)?;
        opts.interests = r.interests;
        let ranked = rank::recommend(lib, &r.likes, &r.unlikes, &opts, retrieval)?;
        let embedder = ask.explain().then(|| s.embedder(lib)).transpose()?;
        let target = |x: &Ranked| lib.vector(x.closest_like.unwrap_or(x.row)).to_vec();
        let rows = library_rows(
            lib,
            &ranked,
            embedder.as_deref().map(|e| (e, &target as ExplainTarget)),
        )?;
        to_value(Report {
            query: json!({"kind": "recommend", "like": ids(lib, &r.likes)?, "unlike": ids(lib, &r.unlikes)?, "profile": r.source}),
            results: rows,
        })
    })
    .await
}

/// The digest in a request body: `name` names it (a file name, which may carry its date),
/// `format` and `date` as for `papersim ingest`. Gzip is refused: a small body could expand
/// far past the body limit.
fn digest_of_body(body: &[u8], extra: &Extra) -> Result<Digest, ApiError> {
    if body.starts_with(&[0x1f, 0x8b]) {
        return Err(ApiError::bad(
            "the body is gzip-compressed; send the digest uncompressed (the body limit bounds what is read)",
        ));
    }
    let name = extra.get("name").map(String::as_str).unwrap_or("request");
    if name.is_empty()
        || name.len() > 200
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::bad(
            "`name` must be a file name (1 to 200 characters, no slash or control character)",
        ));
    }
    let date = extra
        .get("date")
        .map(|d| {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| ApiError::bad(format!("date `{d}` is not YYYY-MM-DD")))
        })
        .transpose()?;
    let opts = ParseOptions {
        format: extra
            .get("format")
            .map(|f| f.parse::<InputFormat>())
            .transpose()?
            .unwrap_or_default(),
        date,
    };
    Ok(digest::parse_bytes(name, body, &opts)?)
}

async fn triage(
    State(s): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    blocking(move || {
        let (ask, extra) = ask_of_query(
            q.as_deref(),
            &["name", "format", "no_mark", "include_seen"],
        )?;
        let flag = |k: &str| extra.get(k).is_some_and(|v| v != "0" && v != "false");
        let digest = digest_of_body(&body?, &extra)?;
        let (opts, retrieval) = ask.options()?;
        let opened = s.library()?;
        let lib = &opened.lib;
        let r = reader(&s, lib, &ask)?;
        let log = Log::of_library(&s.root);
        let feedback = log.feedback()?;
        let seen_titles = feedback.seen_titles();
        if digest.papers.is_empty() {
            return Err(ApiError::bad("the digest holds no papers to triage"));
        }
        let papers: Vec<_> = digest
            .papers
            .iter()
            .filter(|p| {
                flag("include_seen")
                    || !(feedback.seen_id(&p.id())
                        || seen_titles.contains(&normalize_title(&p.title)))
            })
            .collect();
        let hidden = digest.papers.len() - papers.len();
        let embedder = (retrieval.uses_dense() || ask.explain())
            .then(|| s.embedder(lib))
            .transpose()?;
        let vectors = match embedder.as_ref().filter(|_| retrieval.uses_dense() && !papers.is_empty()) {
            Some(e) => {
                let texts: Vec<String> = papers.iter().map(|p| p.embedding_text()).collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                Some(e.embed(&refs)?.data)
            }
            None => None,
        };
        let inputs: Vec<TriagePaper> = papers
            .iter()
            .map(|p| TriagePaper {
                text: paper_text(&p.title, &p.abstract_text),
                date: p.date.clone().or_else(|| digest.date.map(|x| x.to_string())),
                categories: p.categories.clone(),
            })
            .collect();
        let scored = if papers.is_empty() {
            Vec::new()
        } else {
            rank::triage(lib, &inputs, vectors.as_deref(), &r.likes, &r.unlikes, &opts, retrieval)?
        };
        let mut rows = Vec::new();
        for (i, t) in scored.iter().take(opts.k).enumerate() {
            let p = papers[t.index];
            let explanation = match embedder.as_deref().filter(|_| ask.explain()) {
                Some(e) => Some(rank::best_sentence(e, &p.abstract_text, &lib.vector(t.closest_like))?),
                None => None,
            };
            rows.push(report::triage_row(lib, i + 1, &digest, p, t, explanation)?);
        }
        if !flag("no_mark") {
            let shown: Vec<Record> = scored
                .iter()
                .take(opts.k)
                .map(|t| Record::now(Op::Seen, &papers[t.index].id(), &papers[t.index].title, None))
                .collect();
            log.append(&shown)?;
        }
        to_value(Report {
            query: json!({"kind": "triage", "digest": digest.source, "papers": digest.papers.len(), "hidden_as_seen": hidden, "like": ids(lib, &r.likes)?, "unlike": ids(lib, &r.unlikes)?, "profile": r.source}),
            results: rows,
        })
    })
    .await
}

async fn ingest(
    State(s): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    blocking(move || {
        let (_, extra) = ask_of_query(q.as_deref(), &["name", "format", "date"])?;
        let digest = digest_of_body(&body?, &extra)?;
        // Never waits: a busy library is a 409, and the client decides when to try again.
        // On the encoder's threads, whose lower priority keeps lookups fast meanwhile.
        let report = s.in_background(|| {
            crate::pipeline::ingest(
                &s.root,
                std::slice::from_ref(&digest),
                false,
                None,
                None,
                |model| s.load_embedder(model),
                &crate::progress::NoProgress,
            )
        })?;
        to_value(report)
    })
    .await
}

/// The body of `like`, `dislike`, `seen` and `forget`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Marks {
    papers: Vec<String>,
    tag: Option<String>,
}

/// Every paper is resolved before anything is written, so one unknown paper writes nothing;
/// then one durable append, as `papersim like` does.
async fn mark(
    State(s): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
    op: Op,
) -> Response {
    blocking(move || {
        let body = body?;
        let marks: Marks = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad(format!("the request body: {e}")))?;
        if marks.papers.is_empty() {
            return Err(ApiError::bad("`papers` is empty: name at least one paper"));
        }
        if let Some(t) = &marks.tag {
            check_tag(t)?;
        }
        let tag = match op {
            Op::Like => Some(marks.tag.as_deref().unwrap_or(DEFAULT_TAG)),
            _ => marks.tag.as_deref(),
        };
        let opened = s.library()?;
        let lib = &opened.lib;
        let log = Log::of_library(&s.root);
        let records = pipeline::feedback_records(lib, &log, op, &marks.papers, tag)?;
        log.append(&records)?;
        let papers: Vec<Value> = records
            .iter()
            .map(|r| json!({"id": r.id, "title": r.title}))
            .collect();
        to_value(json!({"op": op_name(op), "tag": tag, "papers": papers}))
    })
    .await
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Like => "like",
        Op::Dislike => "dislike",
        Op::Forget => "forget",
        Op::Seen => "seen",
    }
}

async fn profile(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    blocking(move || {
        let (ask, _) = ask_of_query(q.as_deref(), &[])?;
        let log = Log::of_library(&s.root);
        let fb = log.feedback()?;
        let mut likes = fb.likes();
        if let Some(t) = &ask.tag {
            check_tag(t)?;
            if !likes.contains_key(t) {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no liked papers under tag `{t}`"),
                ));
            }
            likes.retain(|k, _| k == t);
        }
        to_value(report::profile(log.path(), &likes, &fb))
    })
    .await
}
