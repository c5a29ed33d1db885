//! The formats of a generation's data files: papers as JSON lines (a base generation's in
//! zstd frames, see [`super::blocks`]), vectors as float32 (or, in a library created with
//! `--vector-dtype f16`, float16) `.npy` (see [`super::npy`]). Reading checks what the manifest
//! promises; writing is done by [`super::writer`] through [`crate::directory`].

use std::fs;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use super::manifest::FileSum;
use super::npy;
use super::record::Paper;
use crate::index::{validate_vectors, SharedVectors, VectorDtype};
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
        check_len(path, bytes.len() as u64, sum, remedy)?;
        check_crc(path, &bytes, sum, remedy)?;
    }
    Ok(bytes)
}

/// Refuses a file whose length is not the one papersim wrote.
fn check_len(path: &Path, len: u64, sum: &FileSum, remedy: &str) -> Result<()> {
    if len != sum.len {
        return Err(Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "is {len} bytes long, but papersim wrote {} (manifest.json records its length): the file was truncated or replaced; {remedy}",
                sum.len
            ),
        });
    }
    Ok(())
}

/// Refuses a file whose bytes do not have the CRC-32 papersim wrote.
pub(crate) fn check_crc(path: &Path, bytes: &[u8], sum: &FileSum, remedy: &str) -> Result<()> {
    let crc32 = crc32fast::hash(bytes);
    if crc32 != sum.crc32 {
        return Err(Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "is damaged: its CRC-32 is {crc32:08x}, but papersim wrote {:08x} (manifest.json records it); {remedy}",
                sum.crc32
            ),
        });
    }
    Ok(())
}

/// Reads a papers file: one JSON record a line, compressed when its name ends in `.zst`
/// (see [`super::blocks`]).
pub(crate) fn read_papers(path: &Path, sum: Option<&FileSum>) -> Result<Vec<Paper>> {
    let mut text = read_checked(path, sum, RESTORE)?;
    if path.extension().is_some_and(|e| e == "zst") {
        text = super::blocks::decompress_all(&text).map_err(|reason| Error::Library {
            path: path.to_path_buf(),
            reason: format!("{reason}; {RESTORE}"),
        })?;
    }
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

/// Reads an embeddings file that must hold `rows` vectors of dimension `dim`, stored as
/// `dtype` (the manifest's); f16 values are returned as the f32 values they are.
pub(crate) fn read_vectors(
    path: &Path,
    sum: Option<&FileSum>,
    rows: usize,
    dim: usize,
    dtype: VectorDtype,
    what: &str,
) -> Result<Vec<f32>> {
    let bytes = read_checked(path, sum, RESTORE)?;
    let (data, got_rows, cols, got) =
        npy::decode_vectors(&bytes).map_err(|reason| Error::Library {
            path: path.to_path_buf(),
            reason,
        })?;
    check_dtype(path, got, dtype)?;
    check_shape(path, (got_rows, cols), rows, dim, what)?;
    Ok(data)
}

/// Refuses a vectors file of another dtype than the manifest records.
fn check_dtype(path: &Path, got: VectorDtype, want: VectorDtype) -> Result<()> {
    if got != want {
        return Err(Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "holds {got} vectors, but manifest.json says the library stores {want}; {RESTORE}"
            ),
        });
    }
    Ok(())
}

/// Library files up to this size are checked against their CRC-32 when a library is opened
/// (measured here at about 0.6 ms a MiB with the page faults of a first touch: at most about
/// 5 ms, a library of some 5,000 papers). Larger ones are opened by their header and length
/// alone, so that opening a million papers costs no more than opening a thousand; a full
/// read (`Library::open`, which every writer uses) checks them whole, and the base vectors'
/// CRC-32 is checked before anything is derived from them (a full commit, an index rebuild:
/// see [`MappedVectors::unverified`]), so damage is never sealed under a fresh checksum.
pub(crate) const VERIFY_ON_OPEN_BYTES: u64 = 8 << 20;

/// Whether a file of `len` bytes is checked against its CRC-32 when it is opened.
fn checked_on_open(len: u64) -> bool {
    len <= VERIFY_ON_OPEN_BYTES
}

/// A vectors file opened in place ([`npy::MappedF32`] or [`npy::MappedF16`]), or read when it
/// cannot be mapped.
pub(crate) struct MappedVectors {
    pub rows: SharedVectors,
    /// The mapping, while its CRC-32 has not been checked.
    pub unverified: Option<Unverified>,
}

/// A mapped vectors file whose CRC-32 was not checked when it was opened (it is larger than
/// [`VERIFY_ON_OPEN_BYTES`]).
pub(crate) struct Unverified {
    path: PathBuf,
    sum: FileSum,
    map: MappedFile,
}

/// A mapped vectors file of either dtype.
#[derive(Clone)]
enum MappedFile {
    F32(Arc<npy::MappedF32>),
    F16(Arc<npy::MappedF16>),
}

impl MappedFile {
    fn map(file: &fs::File, dtype: VectorDtype) -> std::result::Result<MappedFile, String> {
        Ok(match dtype {
            VectorDtype::F32 => MappedFile::F32(Arc::new(npy::MappedF32::map(file)?)),
            VectorDtype::F16 => MappedFile::F16(Arc::new(npy::MappedF16::map(file)?)),
        })
    }

    fn file_bytes(&self) -> &[u8] {
        match self {
            MappedFile::F32(m) => m.file_bytes(),
            MappedFile::F16(m) => m.file_bytes(),
        }
    }

    fn shape(&self) -> (usize, usize) {
        match self {
            MappedFile::F32(m) => m.shape(),
            MappedFile::F16(m) => m.shape(),
        }
    }

    /// The values as f32: borrowed, or converted from f16 (for checking a small file).
    fn f32s(&self) -> std::borrow::Cow<'_, [f32]> {
        match self {
            MappedFile::F32(m) => std::borrow::Cow::Borrowed((**m).as_ref()),
            // The slice conversion (F16C where the CPU has it): element by element is several
            // times slower, and a small library converts every value when it is opened.
            MappedFile::F16(m) => std::borrow::Cow::Owned((**m).as_ref().to_f32_vec()),
        }
    }

    fn rows(self) -> SharedVectors {
        match self {
            MappedFile::F32(m) => SharedVectors::F32(m),
            MappedFile::F16(m) => SharedVectors::F16(m),
        }
    }
}

impl Unverified {
    /// Checks the file's CRC-32 against the one papersim wrote.
    pub fn verify(&self) -> Result<()> {
        check_crc(&self.path, self.map.file_bytes(), &self.sum, RESTORE)
    }
}

/// Opens a library file, checking its length against `sum`; returns it with its length.
fn open_sized(path: &Path, sum: Option<&FileSum>, remedy: &str) -> Result<(fs::File, u64)> {
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if let Some(sum) = sum {
        check_len(path, len, sum, remedy)?;
    }
    Ok((file, len))
}

/// Opens an embeddings file that must hold `rows` vectors of dimension `dim`, stored as
/// `dtype`, where it lies (see [`npy::Mapped`]); its length is checked now, its CRC-32 now
/// when it is small (see [`VERIFY_ON_OPEN_BYTES`]). Falls back to [`read_vectors`] when the
/// file cannot be used in place.
pub(crate) fn map_vectors(
    path: &Path,
    sum: Option<&FileSum>,
    rows: usize,
    dim: usize,
    dtype: VectorDtype,
    what: &str,
) -> Result<MappedVectors> {
    let (file, len) = open_sized(path, sum, RESTORE)?;
    let invalid = |e: Error| Error::Library {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let Ok(map) = MappedFile::map(&file, dtype) else {
        // The reader names what is wrong with the file (or reads one that is merely unaligned).
        let data = read_vectors(path, sum, rows, dim, dtype, what)?;
        validate_vectors(&data, dim, 0).map_err(invalid)?;
        let rows = match dtype {
            VectorDtype::F32 => SharedVectors::F32(Arc::new(data)),
            VectorDtype::F16 => SharedVectors::F16(Arc::new(
                data.iter()
                    .map(|&x| half::f16::from_f32(x))
                    .collect::<Vec<_>>(),
            )),
        };
        return Ok(MappedVectors {
            rows,
            unverified: None,
        });
    };
    check_shape(path, map.shape(), rows, dim, what)?;
    // A small file is checked as a whole file was before mapping: its checksum, and every
    // vector (finite, unit length); so is one of a library too old to have checksums.
    let unverified = match sum {
        Some(sum) if !checked_on_open(len) => Some(Unverified {
            path: path.to_path_buf(),
            sum: *sum,
            map: map.clone(),
        }),
        _ => {
            if let Some(sum) = sum {
                check_crc(path, map.file_bytes(), sum, RESTORE)?;
            }
            validate_vectors(&map.f32s(), dim, 0).map_err(invalid)?;
            None
        }
    };
    Ok(MappedVectors {
        rows: map.rows(),
        unverified,
    })
}

/// Opens a library file where it lies (memory-mapped; read when empty), checking its length
/// against `sum`.
pub(crate) fn map_bytes(
    path: &Path,
    sum: Option<&FileSum>,
    remedy: &str,
) -> Result<Box<dyn AsRef<[u8]> + Send + Sync>> {
    let (file, len) = open_sized(path, sum, remedy)?;
    if len == 0 {
        return Ok(Box::new(Vec::<u8>::new()));
    }
    // SAFETY: as for `npy::Mapped::map`: papersim never writes a file a manifest names.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Box::new(map))
}

fn check_shape(
    path: &Path,
    shape: (usize, usize),
    rows: usize,
    dim: usize,
    what: &str,
) -> Result<()> {
    let (got_rows, cols) = shape;
    if got_rows != rows || cols != dim {
        return Err(Error::Library {
            path: path.to_path_buf(),
            reason: format!(
                "holds {got_rows}×{cols} vectors, but {what} {rows} papers of dimension {dim}"
            ),
        });
    }
    Ok(())
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

/// Maps (or reads, when small or unmappable) a library file, checking its length and, when it
/// is at most [`VERIFY_ON_OPEN_BYTES`], its CRC-32.
pub(crate) fn map_checked(
    path: &Path,
    sum: Option<&FileSum>,
    remedy: &str,
) -> Result<Box<dyn AsRef<[u8]> + Send + Sync>> {
    let bytes = map_bytes(path, sum, remedy)?;
    if let Some(sum) = sum.filter(|s| checked_on_open(s.len)) {
        check_crc(path, (*bytes).as_ref(), sum, remedy)?;
    }
    Ok(bytes)
}
