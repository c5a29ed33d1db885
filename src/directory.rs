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

/// Writes `bytes` to `path`, a file papersim writes outside a library (`embed -o`), as a new
/// file or in place of the one there: into a temporary sibling created exclusively (so never
/// an existing file, nor through a link planted under its name), fsynced, then renamed over
/// `path`. `check` judges what stands at `path` just before the rename (the caller's rules
/// of what may be replaced), as late as it can be judged. A failure removes the temporary
/// file, and only it.
pub fn write_new_or_replace(
    path: &Path,
    bytes: &[u8],
    check: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let (tmp, mut file) = create_exclusive_sibling(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&tmp, e))
        .and_then(|()| check())
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = sync_dir(parent);
    }
    Ok(())
}

/// A new, empty file beside `path` (`.<name>.<pid>.<n>.tmp`), created with `O_EXCL`: it fails
/// rather than open anything that exists, a symlink included, and another name is tried.
fn create_exclusive_sibling(path: &Path) -> Result<(PathBuf, File)> {
    let name = path.file_name().ok_or_else(|| Error::Output {
        path: path.to_path_buf(),
        reason: "names no file".into(),
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut last = None;
    for attempt in 0..100 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{attempt}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(Error::io(&tmp, e)),
        }
    }
    let (tmp, e) = last.expect("the loop ran");
    Err(Error::io(tmp, e))
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
