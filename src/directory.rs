//! Durable file I/O and the library's write lock: the one module that fsyncs, renames into
//! place and takes OS file locks, for every part of papersim that writes (the library's
//! generations, the HNSW graph files, provisioned models, `embed -o`, and the appends of the
//! feedback log).
//!
//! May import: `crate::error` only.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Creates `path` as a new file, writes `bytes` and fsyncs it. It never opens what is already
/// there: an existing file, or a symlink planted at that name (even a dangling one), is an
/// error, so a write cannot land outside the directory or on a file papersim did not create.
/// For files no reader sees until a later rename (of a manifest or a directory) makes them
/// part of something.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Library {
                path: path.to_path_buf(),
                reason: "already exists; papersim writes only new files and never replaces one it did not create".into(),
            },
            _ => Error::io(path, e),
        })?;
    fill_new(file, path, bytes)
}

/// Writes `bytes` into `file`, just created at `path` by the caller, and fsyncs it; on failure
/// removes it (created by this call, so ours to remove: a full disk keeps no half file).
fn fill_new(mut file: File, path: &Path, bytes: &[u8]) -> Result<()> {
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, e));
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// [`write_new`] for a secret (`papersim serve`'s token): the file is created readable and
/// writable by its owner only (0600 on Unix) before a byte is written, and the directory is
/// synced so that the name survives a crash.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    fill_new(file, path, bytes)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = sync_dir(parent);
    }
    Ok(())
}

/// Removes `path` if it is a regular file — one of papersim's own names, left by a writer that
/// was killed. Returns whether it removed one. Anything else at that name (a symlink, a
/// directory, a device) is not papersim's: it is left alone and reported.
pub fn remove_leftover(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
        Ok(m) if m.file_type().is_file() => {
            fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            Ok(true)
        }
        Ok(m) => Err(Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "is a {} where papersim writes its own file; papersim never replaces what it did not create, so move it away",
                file_kind(&m.file_type())
            ),
        }),
    }
}

/// What a directory entry is, in words, without an article (`symbolic link`, `FIFO (named
/// pipe)`, `character device`, ...): every one takes "a".
pub fn file_kind(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    if t.is_symlink() {
        "symbolic link"
    } else if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// Writes `bytes` to a temporary sibling of `path` (created new, see [`write_new`]), fsyncs it,
/// renames it over `path` and syncs the directory, so that a crash leaves either the old file
/// or the new one, never half. The rename replaces the directory entry itself: a symlink at
/// `path` is replaced, never written through. A failed write or rename (a full disk) removes
/// the temporary file again; one left by a killed writer is removed first.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary_sibling(path);
    remove_leftover(&tmp)?;
    write_new(&tmp, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = sync_dir(parent);
    }
    Ok(())
}

/// Where [`write_atomically`] writes before the rename: `path` with `.tmp` appended (a
/// library's `manifest.json.tmp`).
pub fn temporary_sibling(path: &Path) -> PathBuf {
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

/// Writes a report file the user named (`bench --json`, `--plot`, `--save-texts`): a new file,
/// or in place of a regular file there, through [`write_new_or_replace`]. A symlink, FIFO,
/// device node or directory at `path` is refused, naming it: the rename would replace it, and
/// a plain write would follow it.
pub fn write_report(path: &Path, bytes: &[u8]) -> Result<()> {
    let check = || match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => Err(Error::Output {
            path: path.to_path_buf(),
            reason: format!(
                "is a {}; papersim writes a report only as a new file or over a regular file",
                file_kind(&m.file_type())
            ),
        }),
    };
    check()?;
    write_new_or_replace(path, bytes, check)
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
/// dies, since it is an OS lock). On Unix it is an advisory lock (`flock`) on the directory
/// itself, not on a file in it: a lock file could be deleted while held, letting a second
/// writer in beside the first, but the directory cannot be unlinked while it holds a library.
pub struct WriteLock {
    _dir: File,
}

impl WriteLock {
    /// Takes the lock of `root` (created if missing); with `wait`, blocks until the other
    /// writer is done, else fails after a brief grace ([`BUSY_GRACE`]) with [`Error::LibraryBusy`]. A directory this process
    /// may not write (a read-only filesystem) fails here, before any work is done.
    pub fn acquire(root: &Path, wait: bool) -> Result<WriteLock> {
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let dir = open_for_lock(root)?;
        if wait {
            dir.lock().map_err(|e| Error::io(root, e))?;
        } else {
            try_lock_briefly(&dir, root)?;
        }
        check_writable(root)?;
        Ok(WriteLock { _dir: dir })
    }
}

/// How long a non-waiting writer retries before reporting [`Error::LibraryBusy`]. A lock can
/// look held for a moment after its writer let go: a process that forks (any thread spawning a
/// child) shares the lock's open file with the child until the child's `exec` closes it. A
/// real second writer holds it for seconds; this grace only absorbs that window.
const BUSY_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

fn try_lock_briefly(dir: &File, root: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        match dir.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < BUSY_GRACE => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::LibraryBusy {
                    path: root.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(root, e)),
        }
    }
}

#[cfg(unix)]
fn open_for_lock(root: &Path) -> Result<File> {
    File::open(root).map_err(|e| Error::io(root, e))
}

/// Elsewhere a directory cannot be opened as a file: the lock is a file in it.
#[cfg(not(unix))]
fn open_for_lock(root: &Path) -> Result<File> {
    let path = root.join("lock");
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))
}

/// Fails when `dir` cannot be written (a read-only mount, no permission), naming it.
fn check_writable(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| Error::Library {
            path: dir.to_path_buf(),
            reason: "path holds a NUL byte".into(),
        })?;
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            return Err(Error::io(dir, std::io::Error::last_os_error()));
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Appends `bytes` (whole lines, each ending in `\n`) to the log at `path`, created if missing,
/// and fsyncs it before returning: what this returns `Ok` for survives a crash. For
/// append-only logs papersim owns (a library's `feedback.jsonl`).
///
/// - Never through a link: the file is opened with `O_NOFOLLOW`, and anything but a regular
///   file at `path` is refused, naming it.
/// - One appender at a time: an exclusive OS lock on the log itself, held for the write (a
///   few microseconds), so concurrent appenders queue rather than interleave, and a library's
///   write lock (held through a whole ingest) is not needed.
/// - A torn tail is cut first: a writer killed mid-append may leave a last line without its
///   `\n`. It was never acknowledged (its appender died before the fsync returned), so it is
///   truncated away before the new lines are written, and the log stays a sequence of whole
///   lines.
pub fn append_lines(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut options = fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let existed = fs::symlink_metadata(path).is_ok();
    let mut file = options.open(path).map_err(|e| match fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "is a {}, not papersim's log; papersim never writes through what it did not create, so move it away",
                file_kind(&m.file_type())
            ),
        },
        _ => Error::io(path, e),
    })?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "is a {}, not papersim's log; move it away",
                file_kind(&meta.file_type())
            ),
        });
    }
    file.lock().map_err(|e| Error::io(path, e))?;
    let io = |e| Error::io(path, e);
    // The length under the lock: another appender may have written since the open.
    let len = file.metadata().map_err(io)?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1)).map_err(io)?;
        file.read_exact(&mut last).map_err(io)?;
        if last[0] != b'\n' {
            let keep = last_line_end(&mut file, len).map_err(io)?;
            file.set_len(keep).map_err(io)?;
        }
    }
    file.write_all(bytes)
        .and_then(|()| file.sync_data())
        .map_err(io)?;
    if !existed {
        // The new file's directory entry, so that the log itself survives a crash.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// The length of `file` up to and including its last `\n` before `len` (0 when none).
fn last_line_end(file: &mut File, len: u64) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    const CHUNK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}
