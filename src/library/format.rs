//! The formats of a generation's data files: papers as JSON lines, vectors as float32 `.npy`
//! (see [`super::npy`]). Reading checks what the manifest promises; writing is done by
//! [`super::writer`] through [`crate::directory`].

use std::fs;
use std::path::Path;

use rayon::prelude::*;

use super::npy;
use super::record::Paper;
use crate::{Error, Result};

/// Reads a papers file: one JSON record a line.
pub(crate) fn read_papers(path: &Path) -> Result<Vec<Paper>> {
    let text = fs::read(path).map_err(|e| Error::io(path, e))?;
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
pub(crate) fn read_vectors(path: &Path, rows: usize, dim: usize, what: &str) -> Result<Vec<f32>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
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
