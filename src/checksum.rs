//! Checksums as papersim writes them: lower-case hex of SHA-256. One definition for model
//! fingerprints, pinned downloads, title-hash ids and index files.
//!
//! May import: nothing of papersim's.

use sha2::{Digest as _, Sha256};

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}
