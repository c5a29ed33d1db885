//! Durable file I/O and the library's write lock: the one module that fsyncs, renames into
//! place and takes OS file locks, for every part of papersim that writes (the library's
//! generations, the HNSW graph files, provisioned models, `embed -o`).
//!
//! May import: `crate::error` only.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `bytes` to `path` and fsyncs it. For files no reader sees until a later rename (of
/// a manifest or a directory) makes them part of something.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// Writes `bytes` to a temporary sibling of `path`, fsyncs it, renames it over `path` and
/// syncs the directory, so that a crash leaves either the old file or the new one, never half.
/// A failed write or rename (a full disk) removes the temporary file again.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary_sibling(path);
    let written = write_durably(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = sync_dir(parent);
    }
    Ok(())
}

/// Where [`write_atomically`] writes before the rename: `path` with `.tmp` appended (a
/// library's `manifest.json.tmp`).
fn temporary_sibling(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Makes a directory's entries (creations, renames) durable. Unix only: other platforms
/// cannot open a directory to sync it, and there it does nothing.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A directory's write lock: one writer at a time, released when dropped (or when the process
/// dies, since it is an OS file lock). The lock file holds the writer's process id.
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// The name of the lock file inside the locked directory.
    pub const FILE: &'static str = "lock";

    /// Takes the lock of `root` (created if missing); with `wait`, blocks until the other
    /// writer is done, else fails at once with [`Error::LibraryBusy`].
    pub fn acquire(root: &Path, wait: bool) -> Result<WriteLock> {
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let path = root.join(Self::FILE);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if wait {
            file.lock().map_err(|e| Error::io(&path, e))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::LibraryBusy {
                        path: root.to_path_buf(),
                    })
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(WriteLock { _file: file })
    }
}
