//! The Qdrant store: a library whose papers (as payload) and vectors live in a Qdrant
//! collection, sharded and replicated by the cluster; the directory keeps the manifest (the
//! model, the engine) and the reader's feedback log.
//!
//! papersim talks to Qdrant's REST API through ureq (the blocking client already in the tree,
//! rustls for https), not gRPC: see docs/qdrant.md for why. Every request goes to the first
//! node that answers, in the order the manifest lists them, and is retried across the nodes a
//! few times with backoff: a node down (the collection replicated) leaves the others to answer.
//! Every write waits for Qdrant's acknowledgement (`wait=true`, status `completed`); anything
//! else is an error, so a write is never reported done before the cluster has applied it.
//!
//! A paper is one point: its id is a UUID derived from the paper's id ([`point_id`]), so
//! writing the same paper again replaces it (re-runs converge); its payload is the paper's
//! record as the local library keeps it, plus three fields to search by: `ids` (its id and
//! aliases), `title_norm` (the normalised title) and `days` (the dates it was seen, as
//! `YYYYMMDD` integers, for date-window range filters).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Need, Store, View};
use crate::checksum::sha256_hex;
use crate::library::{Engine, Library, Manifest, Paper};
use crate::paper::{normalize_title, strip_arxiv_version};
use crate::progress::Progress;
use crate::{Error, Result};

/// The engine's name in the manifest.
pub const KIND: &str = "qdrant";
/// The collection a library uses unless `--collection` names another.
pub const DEFAULT_COLLECTION: &str = "papersim";
/// Where the API key comes from when `--api-key` is not given.
pub const API_KEY_ENV: &str = "PAPERSIM_QDRANT_API_KEY";
/// At most this many shards: more than a few per node only adds overhead, and a typo such as
/// 1000 would create a thousand shards on every node.
pub const MAX_SHARDS: u32 = 64;
/// At most this many copies of each shard: beyond the number of nodes a replica cannot be
/// placed, and a cluster of more than 16 nodes is past what this was tested on.
pub const MAX_REPLICAS: u32 = 16;
/// The most neighbours one ranking asks for around one vector. A ranking that wants every
/// paper (a date window, diversity) is given the nearest this many (within the window):
/// enough for any k papersim allows, and a bound on what one command moves over the network.
pub const MAX_PER_QUERY: usize = 10_000;
/// Points per write: about 1 MiB of JSON at 384 dimensions.
pub const WRITE_BATCH: usize = 256;
/// Sets the points per write (1 to [`MAX_WRITE_BATCH`]): smaller batches for a cluster that
/// times out on large ones, or to make an ingest last (the tests kill a node during one).
pub const WRITE_BATCH_ENV: &str = "PAPERSIM_QDRANT_WRITE_BATCH";
/// Qdrant's default request limit is 32 MiB; 4096 points of 384 floats stay well under it.
pub const MAX_WRITE_BATCH: usize = 4096;
/// Points per page when reading many.
const PAGE: usize = 512;
/// Values per `match any` condition.
const MATCH_CHUNK: usize = 512;
/// Rounds over the nodes before a request fails, with the backoff between them.
const ROUNDS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Largest response read: a page of 512 points with vectors and records is a few MiB.
const MAX_BODY_BYTES: u64 = 256 << 20;

/// The point id of a paper: the first 16 bytes of the SHA-256 of its id, as a UUID, so that
/// every run derives the same one.
pub fn point_id(paper_id: &str) -> String {
    let h = sha256_hex(paper_id.as_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Checks a comma-separated list of node URLs (http or https, REST port); returns them
/// without trailing slashes.
pub fn parse_urls(list: &str) -> Result<Vec<String>> {
    let urls: Vec<String> = list
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Err(Error::InvalidInput(
            "--url: give the URL of a Qdrant node (e.g. http://localhost:6333), or several separated by commas".into(),
        ));
    }
    for u in &urls {
        let rest = u
            .strip_prefix("http://")
            .or_else(|| u.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(Error::InvalidInput(format!(
                "--url {u}: not an http:// or https:// URL of a Qdrant node"
            )));
        }
    }
    if urls.len() > 64 {
        return Err(Error::InvalidInput(format!(
            "--url: {} URLs; at most 64 nodes are tried",
            urls.len()
        )));
    }
    Ok(urls)
}

/// Checks a collection name: it goes into URL paths, so letters, digits, `_` and `-` only.
pub fn check_collection(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "--collection `{name}`: use 1 to 255 letters, digits, `_` or `-`"
        )))
    }
}

/// Checks the shard and replica counts against [`MAX_SHARDS`] and [`MAX_REPLICAS`].
pub fn check_layout(shards: u32, replicas: u32) -> Result<()> {
    if !(1..=MAX_SHARDS).contains(&shards) {
        return Err(Error::InvalidInput(format!(
            "--shards {shards}: give 1 to {MAX_SHARDS} (more than a few shards per node only adds overhead)"
        )));
    }
    if !(1..=MAX_REPLICAS).contains(&replicas) {
        return Err(Error::InvalidInput(format!(
            "--replicas {replicas}: give 1 to {MAX_REPLICAS} (a replica needs a node of its own; 2 keeps reads and writes working with one node down)"
        )));
    }
    Ok(())
}

/// A date (`YYYY-MM-DD…`) as the integer `YYYYMMDD` the `days` payload holds.
pub(crate) fn day_number(date: &str) -> Option<i64> {
    let d = date.get(..10)?;
    let digits: String = d.chars().filter(|c| *c != '-').collect();
    (digits.len() == 8).then(|| digits.parse().ok()).flatten()
}

/// The payload of a paper's point: its record and the fields searched by.
fn payload(p: &Paper) -> Result<Value> {
    let mut v = serde_json::to_value(p).map_err(|e| Error::InvalidInput(e.to_string()))?;
    let ids: Vec<&String> = std::iter::once(&p.id).chain(&p.aliases).collect();
    let mut days: Vec<i64> = p.dates().filter_map(day_number).collect();
    days.sort_unstable();
    days.dedup();
    v["ids"] = json!(ids);
    v["title_norm"] = json!(normalize_title(&p.title));
    v["days"] = json!(days);
    Ok(v)
}

/// A blocking REST client over the nodes of one cluster.
struct Client {
    agent: ureq::Agent,
    urls: Vec<String>,
    api_key: Option<String>,
}

impl Client {
    fn new(urls: Vec<String>, api_key: Option<String>) -> Client {
        let config = ureq::Agent::config_builder()
            .user_agent(concat!("papersim/", env!("CARGO_PKG_VERSION")))
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(3)))
            // A write waits until every replica applied it: allow a slow cluster its time.
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .build();
        Client {
            agent: config.into(),
            urls,
            api_key,
        }
    }

    fn all_urls(&self) -> String {
        self.urls.join(", ")
    }

    /// Sends `body` to `path` on the first node that answers; Qdrant's `result` on success.
    /// Connection failures and 5xx answers (a node down, a shard moving) move on to the next
    /// node and, after a round over all of them, wait and try again; a 4xx answer is the
    /// request's fault and fails at once with Qdrant's message.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let body = body.map(|b| b.to_string());
        // Each node's last failure, for the error when none answers.
        let mut last: Vec<String> = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        for round in 0..ROUNDS {
            if round > 0 {
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            last.clear();
            for base in &self.urls {
                let url = format!("{base}{path}");
                match self.send(method, &url, body.as_deref()) {
                    Ok((status, text)) if (200..300).contains(&status) => {
                        let v: Value = serde_json::from_str(&text).map_err(|e| Error::Qdrant {
                            url: base.clone(),
                            reason: format!(
                                "{method} {path}: an answer that is not Qdrant's JSON: {e}"
                            ),
                        })?;
                        return Ok(v.get("result").cloned().unwrap_or(Value::Null));
                    }
                    Ok((status, text)) if status >= 500 || status == 429 => {
                        last.push(format!("{base}: HTTP {status}: {}", message(&text)));
                    }
                    Ok((status, text)) => {
                        return Err(Error::Qdrant {
                            url: base.clone(),
                            reason: format!(
                                "{method} {path}: HTTP {status}: {}{}",
                                message(&text),
                                hint(status)
                            ),
                        })
                    }
                    Err(e) => last.push(format!("{base}: {e}{}", grpc_hint(base))),
                }
            }
        }
        Err(Error::Qdrant {
            url: self.all_urls(),
            reason: format!(
                "no node answered {method} {path} after {ROUNDS} rounds (is the cluster running, and the URL its REST port?); last answers: {}",
                last.join("; ")
            ),
        })
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> std::result::Result<(u16, String), String> {
        let key = self.api_key.as_deref();
        let response = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(url);
                if let Some(k) = key {
                    r = r.header("api-key", k);
                }
                r.call()
            }
            (m, b) => {
                let mut r = match m {
                    "PUT" => self.agent.put(url),
                    "DELETE" => {
                        let mut r = self.agent.delete(url);
                        if let Some(k) = key {
                            r = r.header("api-key", k);
                        }
                        return read(r.call());
                    }
                    _ => self.agent.post(url),
                };
                if let Some(k) = key {
                    r = r.header("api-key", k);
                }
                r.header("content-type", "application/json")
                    .send(b.unwrap_or("{}").as_bytes())
            }
        };
        read(response)
    }
}

fn read(
    response: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> std::result::Result<(u16, String), String> {
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok((status, text))
}

/// Qdrant's error message in an error answer, else the answer's start.
fn message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["status"]["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (give the cluster's API key with --api-key or PAPERSIM_QDRANT_API_KEY)",
        _ => "",
    }
}

fn grpc_hint(base: &str) -> &'static str {
    if base.ends_with(":6334") {
        " (papersim uses Qdrant's REST API, port 6333 by default; 6334 is its gRPC port)"
    } else {
        ""
    }
}

/// A paper and its vector from a point of an answer.
fn from_point(url: &str, point: &Value) -> Result<(String, Paper, Vec<f32>)> {
    let bad = |what: &str| Error::Qdrant {
        url: url.to_string(),
        reason: format!("a point without {what}: is this collection papersim's?"),
    };
    let id = match &point["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad("an id")),
    };
    let paper: Paper =
        serde_json::from_value(point["payload"].clone()).map_err(|e| Error::Qdrant {
            url: url.to_string(),
            reason: format!("point {id}: its payload is not a papersim paper record: {e}"),
        })?;
    let vector: Vec<f32> = point["vector"]
        .as_array()
        .ok_or_else(|| bad("a vector"))?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("a numeric vector"))?;
    Ok((id, paper, vector))
}

/// A library kept in a Qdrant collection.
pub struct QdrantStore {
    root: PathBuf,
    write_batch: usize,
    manifest: Manifest,
    engine: Engine,
    client: Client,
}

/// The papers an ingest may touch, in a library held in memory, with the point id of each
/// row read from the collection (rows after them are new).
pub struct Staging {
    pub lib: Library,
    pub points: Vec<String>,
}

impl QdrantStore {
    /// The store of the library in `root` (whose manifest names the engine). Nothing is sent
    /// until it is used.
    pub fn open(root: &Path, manifest: Manifest, api_key: Option<&str>) -> Result<QdrantStore> {
        let engine = manifest.engine.clone().ok_or_else(|| Error::Library {
            path: root.to_path_buf(),
            reason: "is a local library, not a Qdrant one".into(),
        })?;
        let api_key = api_key
            .map(str::to_string)
            .or_else(|| std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty()));
        let write_batch = match std::env::var(WRITE_BATCH_ENV) {
            Ok(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_WRITE_BATCH).contains(n))
                .ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "{WRITE_BATCH_ENV}={v}: give a number of points per write from 1 to {MAX_WRITE_BATCH}"
                    ))
                })?,
            Err(_) => WRITE_BATCH,
        };
        Ok(QdrantStore {
            root: root.to_path_buf(),
            write_batch,
            client: Client::new(engine.urls.clone(), api_key),
            engine,
            manifest,
        })
    }

    pub fn engine_config(&self) -> &Engine {
        &self.engine
    }

    fn path(&self, rest: &str) -> String {
        format!("/collections/{}{rest}", self.engine.collection)
    }

    fn err(&self, reason: String) -> Error {
        Error::Qdrant {
            url: self.client.all_urls(),
            reason,
        }
    }

    /// Creates the collection for vectors of `dim` dimensions (cosine), with the engine's
    /// shards and replicas and the payload indexes papersim searches by; an existing
    /// collection is taken if its vectors fit (a resumed export, a second library directory).
    pub fn create_collection(&self, dim: usize) -> Result<()> {
        let c = &self.engine.collection;
        let existing = self.client.call("GET", "/collections", None)?;
        let exists = existing["collections"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["name"] == json!(c)));
        if exists {
            let info = self.client.call("GET", &self.path(""), None)?;
            let vectors = &info["config"]["params"]["vectors"];
            let (size, distance) = (vectors["size"].as_u64(), vectors["distance"].as_str());
            if size != Some(dim as u64) || distance != Some("Cosine") {
                return Err(self.err(format!(
                    "collection `{c}` exists with vectors {vectors}, but this library's model gives {dim}-dimensional vectors compared by cosine; choose another --collection"
                )));
            }
        } else {
            self.client.call(
                "PUT",
                &self.path(""),
                Some(&json!({
                    "vectors": {"size": dim, "distance": "Cosine"},
                    "shard_number": self.engine.shards,
                    "replication_factor": self.engine.replicas,
                    // A write is acknowledged once one replica of each shard has it, so that
                    // writes go on with a node down; the others catch up.
                    "write_consistency_factor": 1,
                })),
            )?;
        }
        for (field, schema) in [
            ("ids", "keyword"),
            ("title_norm", "keyword"),
            ("days", "integer"),
        ] {
            self.client.call(
                "PUT",
                &self.path("/index?wait=true"),
                Some(&json!({"field_name": field, "field_schema": schema})),
            )?;
        }
        Ok(())
    }

    /// How many papers the collection holds (exact count).
    pub fn count(&self) -> Result<usize> {
        let r = self.client.call(
            "POST",
            &self.path("/points/count"),
            Some(&json!({"exact": true})),
        )?;
        r["count"]
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| self.err("a count answer without a count".into()))
    }

    /// Every point matching `filter`, with payload and vector, page by page (`limit` at most).
    fn scroll(&self, filter: &Value, limit: usize) -> Result<Vec<(String, Paper, Vec<f32>)>> {
        let mut out = Vec::new();
        let mut offset = Value::Null;
        loop {
            let page = PAGE.min(limit - out.len());
            let mut body =
                json!({"filter": filter, "limit": page, "with_payload": true, "with_vector": true});
            if !offset.is_null() {
                body["offset"] = offset.clone();
            }
            let r = self
                .client
                .call("POST", &self.path("/points/scroll"), Some(&body))?;
            for p in r["points"].as_array().into_iter().flatten() {
                out.push(from_point(&self.client.all_urls(), p)?);
            }
            offset = r["next_page_offset"].clone();
            if offset.is_null() || out.len() >= limit {
                return Ok(out);
            }
        }
    }

    /// The `limit` nearest points to `vector` passing `filter`.
    fn nearest(
        &self,
        vector: &[f32],
        limit: usize,
        filter: Option<&Value>,
    ) -> Result<Vec<(String, Paper, Vec<f32>)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut body = json!({
            "query": vector,
            "limit": limit,
            "with_payload": true,
            "with_vector": true,
            // The graph's breadth at least the number asked for, as the local HNSW search does.
            "params": {"hnsw_ef": limit.max(128)},
        });
        if let Some(f) = filter {
            body["filter"] = f.clone();
        }
        let r = self
            .client
            .call("POST", &self.path("/points/query"), Some(&body))?;
        r["points"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| from_point(&self.client.all_urls(), p))
            .collect()
    }

    /// The points a reference may name, looked for in the order `Library::resolve` takes: by
    /// id or alias (with and without an arXiv version), else by exact normalised title, else
    /// by a fragment of a title (the one lookup that scans every payload); enough of them for
    /// `Library::resolve` to call an ambiguous reference ambiguous.
    fn named(&self, reference: &str) -> Result<Vec<(String, Paper, Vec<f32>)>> {
        let r = reference.trim();
        let by_id =
            json!({"must": [{"key": "ids", "match": {"any": [r, strip_arxiv_version(r)]}}]});
        let found = self.scroll(&by_id, 11)?;
        let norm = normalize_title(r);
        if !found.is_empty() || norm.is_empty() {
            return Ok(found);
        }
        let by_title = json!({"must": [{"key": "title_norm", "match": {"value": norm}}]});
        let found = self.scroll(&by_title, 11)?;
        if !found.is_empty() {
            return Ok(found);
        }
        self.scroll(
            &json!({"must": [{"key": "title_norm", "match": {"text": norm}}]}),
            11,
        )
    }

    /// Writes `rows` of `lib` as points (`point_of(row)` naming each), [`WRITE_BATCH`] (or
    /// `$PAPERSIM_QDRANT_WRITE_BATCH`) at a
    /// time, each batch acknowledged before the next; `skip_existing` leaves out points the
    /// collection already holds (a resumed export). Returns how many were written.
    pub fn write_rows(
        &self,
        lib: &Library,
        rows: &[usize],
        point_of: &dyn Fn(usize) -> Result<String>,
        skip_existing: bool,
        progress: &dyn Progress,
    ) -> Result<usize> {
        progress.start("Writing to Qdrant", rows.len() as u64);
        let mut written = 0;
        for chunk in rows.chunks(self.write_batch) {
            let ids = chunk
                .iter()
                .map(|&r| point_of(r))
                .collect::<Result<Vec<_>>>()?;
            let present = if skip_existing {
                self.existing(&ids)?
            } else {
                HashSet::new()
            };
            let mut points = Vec::with_capacity(chunk.len());
            for (&row, id) in chunk.iter().zip(&ids) {
                if present.contains(id) {
                    continue;
                }
                let paper = lib.paper(row)?;
                points.push(
                    json!({"id": id, "vector": &*lib.vector(row), "payload": payload(&paper)?}),
                );
            }
            if !points.is_empty() {
                let n = points.len();
                let r = self.client.call(
                    "PUT",
                    &self.path("/points?wait=true"),
                    Some(&json!({"points": points})),
                )?;
                if r["status"].as_str() != Some("completed") {
                    return Err(self.err(format!(
                        "the write of {n} papers was not acknowledged as completed (status {}); nothing is reported written",
                        r["status"]
                    )));
                }
                written += n;
            }
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        Ok(written)
    }

    /// Which of `ids` the collection holds.
    fn existing(&self, ids: &[String]) -> Result<HashSet<String>> {
        let r = self.client.call(
            "POST",
            &self.path("/points"),
            Some(&json!({"ids": ids, "with_payload": false, "with_vector": false})),
        )?;
        Ok(r.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_string))
            .collect())
    }

    /// The stored papers an ingest of papers with these `ids` and normalised `titles` may
    /// merge with or update, in a library held in memory, for the ingest to be planned on as
    /// on a local library.
    pub fn staging(&self, ids: &[String], titles: &[String]) -> Result<Staging> {
        let mut found: Vec<(String, Paper, Vec<f32>)> = Vec::new();
        let mut seen = HashSet::new();
        let chunks = ids.len().max(titles.len()).div_ceil(MATCH_CHUNK);
        for i in 0..chunks {
            let part = |v: &[String]| -> Vec<String> {
                v.iter()
                    .skip(i * MATCH_CHUNK)
                    .take(MATCH_CHUNK)
                    .cloned()
                    .collect()
            };
            let filter = json!({"should": [
                {"key": "ids", "match": {"any": part(ids)}},
                {"key": "title_norm", "match": {"any": part(titles)}},
            ]});
            for point in self.scroll(&filter, usize::MAX)? {
                if seen.insert(point.0.clone()) {
                    found.push(point);
                }
            }
        }
        let (points, lib) = self.assemble(found)?;
        Ok(Staging { lib, points })
    }

    /// A library in memory of these points.
    fn assemble(&self, found: Vec<(String, Paper, Vec<f32>)>) -> Result<(Vec<String>, Library)> {
        let dim = self.manifest.model.dim;
        let mut points = Vec::with_capacity(found.len());
        let mut papers = Vec::with_capacity(found.len());
        let mut vectors = Vec::with_capacity(found.len() * dim);
        for (id, paper, vector) in found {
            if vector.len() != dim {
                return Err(self.err(format!(
                    "point {id} has a {}-dimensional vector; this library's model gives {dim}",
                    vector.len()
                )));
            }
            points.push(id);
            papers.push(paper);
            vectors.extend(vector);
        }
        let lib = Library::in_memory(&self.root, self.manifest.clone(), papers, &vectors)?;
        Ok((points, lib))
    }

    /// The payload filter of a date window: any date of the paper inside it.
    fn window(need: &Need) -> Option<Value> {
        let since = need.since.as_deref().and_then(day_number);
        let until = need.until.as_deref().and_then(day_number);
        if since.is_none() && until.is_none() {
            return None;
        }
        let mut range = serde_json::Map::new();
        if let Some(s) = since {
            range.insert("gte".into(), json!(s));
        }
        if let Some(u) = until {
            range.insert("lte".into(), json!(u));
        }
        Some(json!({"must": [{"key": "days", "range": range}]}))
    }
}

impl Store for QdrantStore {
    fn engine(&self) -> &'static str {
        KIND
    }
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    fn len(&self) -> Result<usize> {
        self.count()
    }

    /// The named papers, then the nearest neighbours of each paper searched around and of
    /// each query vector (within the date window, as a payload range filter).
    fn view(&self, need: &Need) -> Result<View<'_>> {
        let mut found: Vec<(String, Paper, Vec<f32>)> = Vec::new();
        let mut seen = HashSet::new();
        let mut vectors_of: HashMap<String, Vec<Vec<f32>>> = HashMap::new();
        for r in &need.references {
            let named = self.named(r)?;
            vectors_of.insert(r.clone(), named.iter().map(|p| p.2.clone()).collect());
            for p in named {
                if seen.insert(p.0.clone()) {
                    found.push(p);
                }
            }
        }
        let filter = Self::window(need);
        let per_query = need.per_query.min(MAX_PER_QUERY);
        let around = need
            .around
            .iter()
            .flat_map(|r| vectors_of.get(r).cloned().unwrap_or_default())
            .chain(need.queries.iter().cloned());
        for v in around {
            for p in self.nearest(&v, per_query, filter.as_ref())? {
                if seen.insert(p.0.clone()) {
                    found.push(p);
                }
            }
        }
        let (_, lib) = self.assemble(found)?;
        Ok(View::Part(Box::new(lib)))
    }
}
