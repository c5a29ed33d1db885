//! The formats of a generation's data files: papers as JSON lines, vectors as float32 `.npy`
//! (see [`super::npy`]). Reading checks what the manifest promises; writing is done by
//! [`super::writer`] through [`crate::directory`].

use std::fs;
use std::path::Path;

use rayon::prelude::*;

use super::manifest::FileSum;
use super::npy;
use super::record::Paper;
use crate::{Error, Result};

/// What to do about a damaged papers or embeddings file: they hold the library's data, which
/// only a backup (or ingesting the digests again into a new library) gives back.
pub(crate) const RESTORE: &str =
    "restore it from a backup, or ingest the digests again into a new library";
/// What to do about a damaged graph or lexical index: both are derived from the papers and
/// vectors, so papersim can write them afresh.
pub(crate) const REBUILD: &str =
    "run `papersim index rebuild` to rebuild it from the stored papers and vectors";

/// Reads a library file whole, checking it against the length and CRC-32 the manifest
/// recorded for it when it was written (`None` for files of libraries written before papersim
/// recorded them). `remedy` ends the error: how to get a good file back.
pub(crate) fn read_checked(path: &Path, sum: Option<&FileSum>, remedy: &str) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    if let Some(sum) = sum {
        let got = FileSum::of(&bytes);
        if got.len != sum.len {
            return Err(Error::Library {
                path: path.to_path_buf(),
                reason: format!(
                    "is {} bytes long, but papersim wrote {} (manifest.json records its length): the file was truncated or replaced; {remedy}",
                    got.len, sum.len
                ),
            });
        }
        if got.crc32 != sum.crc32 {
            return Err(Error::Library {
                path: path.to_path_buf(),
                reason: format!(
                    "is damaged: its CRC-32 is {:08x}, but papersim wrote {:08x} (manifest.json records it); {remedy}",
                    got.crc32, sum.crc32
                ),
            });
        }
    }
    Ok(bytes)
}

/// Reads a papers file: one JSON record a line.
pub(crate) fn read_papers(path: &Path, sum: Option<&FileSum>) -> Result<Vec<Paper>> {
    let text = read_checked(path, sum, RESTORE)?;
    let text = String::from_utf8(text).map_err(|_| Error::Library {
        path: path.to_path_buf(),
        reason: "not UTF-8".into(),
    })?;
    // Parsed in parallel: at 100,000 papers this is most of what opening a library costs.
    let lines: Vec<&str> = text.lines().collect();
    lines
        .par_iter()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| Error::Library {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// Reads an embeddings file that must hold `rows` vectors of dimension `dim`.
pub(crate) fn read_vectors(
    path: &Path,
    sum: Option<&FileSum>,
    rows: usize,
    dim: usize,
    what: &str,
) -> Result<Vec<f32>> {
    let bytes = read_checked(path, sum, RESTORE)?;
    let (data, got_rows, cols) = npy::decode_f32(&bytes).map_err(|reason| Error::Library {
        path: path.to_path_buf(),
        reason,
    })?;
    if got_rows != rows || cols != dim {
        return Err(Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "holds {got_rows}×{cols} vectors, but {what} {rows} papers of dimension {dim}"
            ),
        });
    }
    Ok(data)
}

pub(crate) fn papers_jsonl(papers: &[&Paper]) -> Result<Vec<u8>> {
    let mut jsonl = Vec::new();
    for p in papers {
        serde_json::to_writer(&mut jsonl, p)
            .map_err(|e| Error::InvalidInput(format!("paper {}: {e}", p.id)))?;
        jsonl.push(b'\n');
    }
    Ok(jsonl)
}
