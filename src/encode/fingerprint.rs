//! The SHA-256 of a model's weights, which the fingerprint a library records is built on,
//! computed once per weights file and cached.
//!
//! Hashing every byte of the weights is what makes a library refuse a model whose weights
//! were changed in place (permuted rows keep the safetensors header and the size), but it
//! reads the whole file (≈ 90 MB for the default model), and every command that opens a
//! library checks its model. So the digest is kept in a small JSON file in the user's cache
//! directory (`<cache dir>/papersim/fingerprints.json`, never inside the model directory,
//! which may be read-only or shared), keyed by the weights' canonical path and what the file
//! system says of them: size, modification and change time (ns), device and inode. Any write
//! to the file changes its change time, which no user can set back, so a stale entry is never
//! used; and a file changed less than [`SETTLED`] ago is not cached at all, since a second
//! write within the file system's timestamp granularity could leave every stamp as it was
//! (git's "racily clean" problem). The cache is an optimisation only: a missing, corrupt or unwritable cache means the
//! digest is computed again, never an error.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::checksum::hex;
use crate::directory::write_new_or_replace;
use crate::{Error, Result};

/// The cache file's format; another version is ignored (and replaced on the next write).
const CACHE_VERSION: u32 = 1;
/// How many weights files the cache remembers; the least recently computed go first.
const CACHE_ENTRIES: usize = 32;
/// A cache file larger than this is not papersim's (32 entries take about 10 KB): ignored.
const CACHE_MAX_BYTES: u64 = 1 << 20;
/// How long a file must have been left alone for its digest to be cached: far above any file
/// system's timestamp granularity (a kernel tick, or 2 s on FAT).
pub const SETTLED: Duration = Duration::from_secs(3);

/// Where the digests are cached: `<user cache dir>/papersim/fingerprints.json`, or nowhere
/// when the platform names no cache directory.
pub fn cache_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("papersim").join("fingerprints.json"))
}

/// The lower-case hex SHA-256 of every byte of `weights`, from `cache` when it holds an entry
/// for this very file, else computed (and then recorded in `cache`, if it can be).
pub fn weights_sha256(weights: &Path, cache: Option<&Path>) -> Result<String> {
    weights_sha256_settled(weights, cache, SETTLED)
}

/// [`weights_sha256`], caching only files unchanged for `settled`.
fn weights_sha256_settled(
    weights: &Path,
    cache: Option<&Path>,
    settled: Duration,
) -> Result<String> {
    let canonical = fs::canonicalize(weights).map_err(|e| Error::io(weights, e))?;
    let before = Stamp::of(&canonical)?;
    if let Some(cache) = cache {
        if let Some(hit) = read_cache(cache)
            .entries
            .into_iter()
            .find(|e| e.path == canonical && e.stamp == before)
        {
            return Ok(hit.sha256);
        }
    }
    let digest = sha256_of_file(&canonical)?;
    // A file written while it was read is not cached: its digest may be of neither version.
    if let (Some(cache), Ok(after)) = (cache, Stamp::of(&canonical)) {
        if after == before && before.unchanged_for(settled) {
            record(cache, canonical, before, &digest);
        }
    }
    Ok(digest)
}

/// Hashes a file in 1 MiB reads.
fn sha256_of_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// What the file system says of a file that changes whenever its content does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    /// Modification time: seconds and nanoseconds since the epoch.
    modified: (i64, i64),
    /// Change time (Unix): set by the kernel on every write, and not settable by `touch`.
    #[serde(default)]
    changed: Option<(i64, i64)>,
    /// Device and inode (Unix): another file moved to the same path is another file.
    #[serde(default)]
    inode: Option<(u64, u64)>,
}

impl Stamp {
    /// Whether the file's last change (or modification, where change times are unknown) is at
    /// least `settled` in the past.
    fn unchanged_for(&self, settled: Duration) -> bool {
        let (secs, nanos) = self.changed.unwrap_or(self.modified).max(self.modified);
        let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
            return false;
        };
        let last = Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32);
        now.checked_sub(last).is_some_and(|age| age >= settled)
    }

    fn of(path: &Path) -> Result<Stamp> {
        let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(Stamp {
                size: meta.len(),
                modified: (meta.mtime(), meta.mtime_nsec()),
                changed: Some((meta.ctime(), meta.ctime_nsec())),
                inode: Some((meta.dev(), meta.ino())),
            })
        }
        #[cfg(not(unix))]
        {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| (d.as_secs() as i64, i64::from(d.subsec_nanos())))
                .unwrap_or((0, 0));
            Ok(Stamp {
                size: meta.len(),
                modified,
                changed: None,
                inode: None,
            })
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    path: PathBuf,
    stamp: Stamp,
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    version: u32,
    entries: Vec<Entry>,
}

/// The cache as stored, or an empty one when it is missing, too large, of another version or
/// unreadable in any way.
fn read_cache(path: &Path) -> Cache {
    let read = || -> Option<Cache> {
        let file = File::open(path).ok()?;
        if file.metadata().ok()?.len() > CACHE_MAX_BYTES {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(CACHE_MAX_BYTES).read_to_end(&mut bytes).ok()?;
        let cache: Cache = serde_json::from_slice(&bytes).ok()?;
        (cache.version == CACHE_VERSION).then_some(cache)
    };
    let mut cache = read().unwrap_or_default();
    cache.version = CACHE_VERSION;
    // An entry whose digest is not a SHA-256 in hex is damage, not a digest.
    cache
        .entries
        .retain(|e| e.sha256.len() == 64 && e.sha256.bytes().all(|b| b.is_ascii_hexdigit()));
    cache
}

/// Records a digest in the cache: best effort, since the digest can always be computed again.
/// Written to a temporary file of this process's own and renamed into place, so that
/// concurrent papersim processes never interleave their writes (the last rename wins whole).
fn record(path: &Path, canonical: PathBuf, stamp: Stamp, sha256: &str) {
    let mut cache = read_cache(path);
    cache.entries.retain(|e| e.path != canonical);
    cache.entries.push(Entry {
        path: canonical,
        stamp,
        sha256: sha256.to_string(),
    });
    let excess = cache.entries.len().saturating_sub(CACHE_ENTRIES);
    cache.entries.drain(..excess);
    let Ok(bytes) = serde_json::to_vec_pretty(&cache) else {
        return;
    };
    let Some(dir) = path.parent() else {
        return;
    };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    // A temporary file of this process's own (created exclusively), renamed into place; a
    // failure removes only that file and is ignored.
    let _ = write_new_or_replace(path, &bytes, || Ok(()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("model.safetensors");
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn the_digest_is_of_every_byte_and_is_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let w = weights(tmp.path(), b"some weights");
        let cache = tmp.path().join("cache/papersim/fingerprints.json");
        // Just written: hashed, but not cached, since a second write in the same timestamp
        // tick could go unnoticed.
        let digest = weights_sha256(&w, Some(&cache)).unwrap();
        assert_eq!(digest, crate::checksum::sha256_hex(b"some weights"));
        assert!(!cache.exists());
        let digest = weights_sha256_settled(&w, Some(&cache), Duration::ZERO).unwrap();
        let stored = read_cache(&cache);
        assert_eq!(stored.entries.len(), 1);
        assert_eq!(stored.entries[0].path, fs::canonicalize(&w).unwrap());

        // A hit is taken from the cache: a doctored entry for the same stamp is believed...
        let doctored = fs::read_to_string(&cache)
            .unwrap()
            .replace(&digest, &"a".repeat(64));
        fs::write(&cache, doctored).unwrap();
        assert_eq!(weights_sha256(&w, Some(&cache)).unwrap(), "a".repeat(64));
        // ...but not once the file changed, even to the same size (past a timestamp tick).
        std::thread::sleep(Duration::from_millis(50));
        fs::write(&w, b"other weight").unwrap();
        assert_eq!(
            weights_sha256(&w, Some(&cache)).unwrap(),
            crate::checksum::sha256_hex(b"other weight")
        );
    }

    #[test]
    fn a_corrupt_or_unwritable_cache_is_no_error() {
        let tmp = tempfile::tempdir().unwrap();
        let w = weights(tmp.path(), b"weights");
        let expected = crate::checksum::sha256_hex(b"weights");

        for junk in [&b"{ not json"[..], b"", b"\xff\xfe", br#"{"version":1,"entries":[{"path":"/x","stamp":{"size":1,"modified":[0,0]},"sha256":"zz"}]}"#] {
            let cache = tmp.path().join("corrupt.json");
            fs::write(&cache, junk).unwrap();
            let got = weights_sha256_settled(&w, Some(&cache), Duration::ZERO).unwrap();
            assert_eq!(got, expected);
            // Rewritten as a valid cache that now holds the digest.
            assert_eq!(read_cache(&cache).entries.len(), 1);
        }

        // A cache whose directory cannot exist (a regular file stands in its way).
        let blocker = tmp.path().join("blocker");
        fs::write(&blocker, b"").unwrap();
        let cache = blocker.join("papersim/fingerprints.json");
        for _ in 0..2 {
            let got = weights_sha256_settled(&w, Some(&cache), Duration::ZERO).unwrap();
            assert_eq!(got, expected);
        }

        // A cache that is a directory.
        let cache = tmp.path().join("dir.json");
        fs::create_dir(&cache).unwrap();
        let got = weights_sha256_settled(&w, Some(&cache), Duration::ZERO).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_cache_keeps_a_bounded_number_of_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("fingerprints.json");
        for i in 0..CACHE_ENTRIES + 5 {
            let dir = tmp.path().join(format!("m{i}"));
            fs::create_dir(&dir).unwrap();
            let w = weights(&dir, format!("w{i}").as_bytes());
            weights_sha256_settled(&w, Some(&cache), Duration::ZERO).unwrap();
        }
        let entries = read_cache(&cache).entries;
        assert_eq!(entries.len(), CACHE_ENTRIES);
        // The newest stays.
        assert!(entries
            .last()
            .unwrap()
            .path
            .ends_with(format!("m{}/model.safetensors", CACHE_ENTRIES + 4)));
    }

    #[test]
    fn a_missing_weights_file_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("model.safetensors");
        let err = weights_sha256(&missing, None).unwrap_err().to_string();
        assert!(err.contains("model.safetensors"), "{err}");
    }
}
