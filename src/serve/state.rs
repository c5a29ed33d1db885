//! The server's shared state: the library of the newest generation, and the encoder.
//!
//! A reader opened with [`Library::open_for_reading`] sees the generation its manifest named
//! when it was opened. Each request first compares the manifest file's identity (inode,
//! length, modification time: a commit renames a new manifest into place, so any commit
//! changes it) with the one the open library was read from; on a change, one request opens
//! the new generation beside the old, loads its lexical index (and its graph, where the
//! library stores one), and only then swaps it in. Requests already running keep the old one
//! (an `Arc`) until they finish. Its files may be removed by the writer's cleanup meanwhile:
//! what the old library reads is already mapped or in memory (the papers and keys files and
//! the vectors are mapped, segments read whole, the lexical index loaded before the swap),
//! and a mapping outlives the file's name.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::batcher::QueryBatcher;
use super::{Access, Config, LoadEmbedder};
use crate::encode::Embedder;
use crate::library::{Library, ModelInfo, MANIFEST};
use crate::{Error, Result};

/// Who may ask what: the token (bound beyond loopback) and the Host names accepted.
pub struct Rules {
    pub token: Option<String>,
    pub port: u16,
    /// Bound to a loopback address: the Host must name loopback (DNS-rebinding defence);
    /// bound elsewhere the token is what keeps other sites out.
    pub loopback_only: bool,
    pub bound_ip: std::net::IpAddr,
}

pub struct Shared {
    pub root: PathBuf,
    current: ArcSwap<Opened>,
    /// Held by the one request that opens a new generation.
    reopening: Mutex<()>,
    /// The encoder, and the library model it was checked against (checking hashes the
    /// model's files, so it is done once per model, not per request).
    embedder: Mutex<Option<(Arc<Embedder>, ModelInfo)>>,
    load_embedder: LoadEmbedder,
    /// Embeds dense queries' texts, several in one pass.
    queries: QueryBatcher,
    /// Decompressed records each open generation keeps, in bytes (`--record-cache`).
    record_cache: usize,
    pub rules: Rules,
}

/// A library and the identity of the manifest it was opened from.
pub struct Opened {
    pub lib: Library,
    stamp: Stamp,
}

/// What changes when a commit renames a new manifest into place.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Shared {
    pub fn open(config: &Config) -> Result<Shared> {
        let root = config.root.clone();
        if !Library::exists(&root) {
            return Err(Error::Library {
                path: root,
                reason: "holds no library (no manifest.json): ingest a digest first \
                         (`papersim ingest DIGEST`)"
                    .into(),
            });
        }
        let record_cache = config.record_cache_mib << 20;
        let opened = open_ready(&root, record_cache)?;
        Ok(Shared {
            root,
            current: ArcSwap::from_pointee(opened),
            reopening: Mutex::new(()),
            embedder: Mutex::new(None),
            load_embedder: config.load_embedder.clone(),
            queries: QueryBatcher::start(config.query_batch)?,
            record_cache,
            rules: Rules {
                token: None,
                port: 0,
                loopback_only: true,
                bound_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            },
        })
    }

    pub fn with_access(mut self, addr: SocketAddr, access: &Access) -> Shared {
        self.rules = Rules {
            token: match access {
                Access::Loopback => None,
                Access::Token { token, .. } => Some(token.clone()),
            },
            port: addr.port(),
            loopback_only: matches!(access, Access::Loopback),
            bound_ip: addr.ip(),
        };
        self
    }

    /// The library of the newest committed generation.
    pub fn library(&self) -> Result<Arc<Opened>> {
        let current = self.current.load_full();
        let now = stamp(&self.root)?;
        if now == current.stamp {
            return Ok(current);
        }
        let _one = self.reopening.lock().unwrap_or_else(|e| e.into_inner());
        // Another request may have swapped it in while this one waited.
        let current = self.current.load_full();
        if stamp(&self.root)? == current.stamp {
            return Ok(current);
        }
        let opened = Arc::new(open_ready(&self.root, self.record_cache)?);
        self.current.store(opened.clone());
        Ok(opened)
    }

    /// The encoder of the library's model, loaded on first need and checked against `lib`.
    pub fn embedder(&self, lib: &Library) -> Result<Arc<Embedder>> {
        let mut slot = self.embedder.lock().unwrap_or_else(|e| e.into_inner());
        let recorded = &lib.manifest().model;
        if let Some((e, checked)) = slot.as_ref() {
            // A re-embedded library (another model) needs another encoder.
            if checked == recorded {
                return Ok(e.clone());
            }
        }
        let loaded = (self.load_embedder)(&recorded.id)?;
        crate::pipeline::check_model(lib, &loaded)?;
        let loaded = Arc::new(loaded);
        *slot = Some((loaded.clone(), recorded.clone()));
        Ok(loaded)
    }

    /// The vector of the query `text` by `embedder`, embedded with the other queries waiting
    /// for the encoder ([`QueryBatcher`]).
    pub fn embed_query(&self, embedder: &Arc<Embedder>, text: &str) -> Result<Vec<f32>> {
        self.queries.embed(embedder, text)
    }

    /// Runs `work` (an ingest) on the encoder's threads, below the lookups' priority.
    pub fn in_background<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        self.queries.background(work)
    }

    /// A fresh encoder for an ingest (the pipeline takes one by value).
    pub fn load_embedder(&self, model: Option<&str>) -> Result<Embedder> {
        let model = model.unwrap_or(crate::encode::model::DEFAULT_MODEL);
        (self.load_embedder)(model)
    }
}

/// Opens the library in `root` for reading and loads what a later cleanup could take away
/// before it is first used: the lexical index, and the stored graph.
fn open_ready(root: &std::path::Path, record_cache: usize) -> Result<Opened> {
    let mut last = None;
    // A commit between reading the stamp and opening: open again (the library's own open
    // retries a file removed under it; this covers the stamp).
    for _ in 0..3 {
        let before = stamp(root)?;
        let lib = Library::open_for_reading(root)?;
        lib.set_record_cache(record_cache);
        let ready = lib.lexical().map(|_| ()).and_then(|()| {
            if lib.stores_graph() {
                lib.hold_graph()
            } else {
                Ok(())
            }
        });
        match ready {
            Ok(()) if stamp(root)? == before => return Ok(Opened { lib, stamp: before }),
            Ok(()) => {}
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Library {
        path: root.to_path_buf(),
        reason: "changed three times while being opened; try again".into(),
    }))
}

fn stamp(root: &std::path::Path) -> Result<Stamp> {
    let path = root.join(MANIFEST);
    let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        inode,
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}
