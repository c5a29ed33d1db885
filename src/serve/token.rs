//! The token a server bound beyond loopback requires: 32 random bytes from the operating
//! system, as hex, in `<library>/serve-token` (a file papersim creates new with owner-only
//! permissions and never overwrites). Made on the first such start and kept, so that a
//! restart does not log every client out.

use std::fs;
use std::path::Path;

use super::Access;
use crate::directory::write_new_private;
use crate::{Error, Result};

/// The token's file name in the library directory.
pub const TOKEN_FILE: &str = "serve-token";

/// Hex digits of a token (32 bytes).
const TOKEN_HEX: usize = 64;

/// The stored token of the library in `root`, or a new one stored there.
pub fn read_or_create(root: &Path) -> Result<Access> {
    let path = root.join(TOKEN_FILE);
    // Two servers starting at once: the one whose create fails reads the other's.
    for _ in 0..2 {
        if let Some(token) = read(&path)? {
            return Ok(Access::Token {
                path,
                token,
                new: false,
            });
        }
        let mut bytes = [0u8; TOKEN_HEX / 2];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::InvalidInput(format!(
                "cannot draw a random token from the operating system: {e}"
            ))
        })?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match write_new_private(&path, format!("{token}\n").as_bytes()) {
            Ok(()) => {
                return Ok(Access::Token {
                    path,
                    token,
                    new: true,
                })
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                continue
            }
            Err(e) => return Err(e),
        }
    }
    Err(token_err(
        &path,
        "appeared and vanished while being read; start again",
    ))
}

/// The token in `path`, `None` when there is none. Only a regular file that papersim would
/// have written is read: a link, a file others may read, or other content is refused.
fn read(path: &Path) -> Result<Option<String>> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) => m,
    };
    if !meta.file_type().is_file() {
        return Err(token_err(
            path,
            &format!(
                "is a {}, not the token file papersim writes; move it away",
                crate::directory::file_kind(&meta.file_type())
            ),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(token_err(
                path,
                &format!(
                    "is readable or writable by others (mode {mode:o}); a token others can read \
                     is no secret: `chmod 600` it, or delete it to get a new one"
                ),
            ));
        }
    }
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let token = text.trim_end_matches('\n');
    if token.len() != TOKEN_HEX || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(token_err(
            path,
            &format!("does not hold a token ({TOKEN_HEX} hex digits); delete it to get a new one"),
        ));
    }
    Ok(Some(token.to_string()))
}

fn token_err(path: &Path, reason: &str) -> Error {
    Error::Library {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}
