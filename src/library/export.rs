//! An embedding matrix exported with the names of its rows, as `papersim embed` writes it: a
//! float32 `.npy` file and beside it a JSON Lines *sidecar* at [`sidecar_path`] (`v.npy` →
//! `v.rows.jsonl`, never a name the matrix can take): a [`SidecarHeader`] line naming the
//! model the matrix came from ([`ModelInfo`]: id, fingerprint, dimension, pooling, sequence
//! length) and its number of rows, then one [`SidecarRow`] per matrix row, each saying what
//! was embedded there (for a paper: its id and the SHA-256 of the exact text embedded).
//!
//! Writing never destroys what papersim did not write: the matrix replaces only a regular
//! `.npy` file and the sidecar only a regular file that is a sidecar; a symlink, FIFO, device
//! node or directory at either path, another file, or one of the files being embedded is
//! refused with an error naming the path. Each file is written through
//! [`crate::directory::write_new_or_replace`] (exclusive temporary file, fsync, rename).
//!
//! Reading one back ([`read`], for `ingest --embeddings`) checks everything before a vector is
//! used: the header (a sidecar written before papersim recorded the model is refused), every
//! row, the matrix's type and shape against the header, and every vector (finite, unit
//! length). [`Exported::check_model`] refuses a library of another model, and
//! [`Exported::vectors_for`] gives each paper an ingest adds the row with its id and the hash
//! of the very text the library would embed, or refuses the import.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ingest::IngestPlan;
use super::manifest::ModelInfo;
use super::{npy, Library};
use crate::digest::Digest;
use crate::directory::{file_kind, write_new_or_replace};
use crate::index::validate_vectors;
use crate::paper::text_sha256;
use crate::{Error, Result};

/// What replaces a matrix file's `.npy` extension to name its sidecar.
pub const SIDECAR_EXTENSION: &str = "rows.jsonl";

/// The first bytes of every `.npy` file.
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// How much of an existing sidecar is read to judge it, and the longest line a sidecar may
/// have: a row (a title of at most 2,000 bytes, a digest path, a hash) or the header fits.
const SIDECAR_HEAD_BYTES: u64 = 64 * 1024;

/// The sidecar format this papersim writes and reads (the header's `papersim_sidecar`).
pub const SIDECAR_FORMAT: u32 = 1;

/// How many ids of papers without a row an import's error lists.
const MISSING_LISTED: usize = 5;

/// The first line of a sidecar: what the matrix is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarHeader {
    /// The sidecar format ([`SIDECAR_FORMAT`]); also what marks the file as a sidecar.
    pub papersim_sidecar: u32,
    /// The model the matrix was embedded with, as a library records its own.
    pub model: ModelInfo,
    /// The matrix's rows, one sidecar line each after this one.
    pub rows: usize,
}

/// Just the mark of a sidecar header, of any format version.
#[derive(Deserialize)]
struct HeaderMark {
    #[allow(dead_code)] // its presence is the mark
    papersim_sidecar: u32,
}

/// One line of a sidecar after the header: the matrix row it names and what was embedded
/// there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarRow {
    pub row: usize,
    #[serde(flatten)]
    pub source: RowSource,
}

/// What a matrix row was embedded from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RowSource {
    /// A paper of a digest: its id, its title, the digest it was read from, and the SHA-256
    /// of the text embedded ([`crate::paper::text_sha256`] of
    /// [`crate::paper::embedding_text`]), absent in sidecars written before papersim recorded
    /// it.
    Paper {
        id: String,
        title: String,
        digest: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text_sha256: Option<String>,
    },
    /// A line of text (`embed --lines`).
    Line { text: String },
}

/// The sidecar of the matrix at `matrix`: the same path with `.npy` replaced by
/// `.rows.jsonl`. A matrix path must end in `.npy` (any case), so that the two can never be
/// the same file and the sidecar is always found from the matrix alone.
pub fn sidecar_path(matrix: &Path) -> Result<PathBuf> {
    let is_npy = matrix
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if !is_npy {
        return Err(Error::Output {
            path: matrix.to_path_buf(),
            reason: "an embedding matrix is a NumPy file whose name ends in .npy (its rows are \
                     named beside it, in <name>.rows.jsonl); choose a path ending in .npy"
                .into(),
        });
    }
    Ok(matrix.with_extension(SIDECAR_EXTENSION))
}

/// Checks, before anything is embedded, that `matrix` and its sidecar may be written: each
/// is missing, or a regular file papersim wrote (a `.npy` file; a sidecar), and neither is
/// one of `inputs` (the files the rows are read from, compared as files, not as names).
/// Returns the sidecar's path.
pub fn check_outputs(matrix: &Path, inputs: &[PathBuf]) -> Result<PathBuf> {
    let sidecar = sidecar_path(matrix)?;
    check_target(matrix, Target::Matrix, inputs)?;
    check_target(&sidecar, Target::Sidecar, inputs)?;
    Ok(sidecar)
}

/// Writes the `rows × dim` matrix `data`, embedded with `model`, to `matrix`, and the header
/// and `names` (one per row) to its sidecar, each judged by [`check_outputs`]'s rules again
/// just before it is renamed into place. Returns the sidecar's path.
pub fn write(
    matrix: &Path,
    data: &[f32],
    model: &ModelInfo,
    names: &[SidecarRow],
    inputs: &[PathBuf],
) -> Result<PathBuf> {
    let (rows, dim) = (names.len(), model.dim);
    if data.len() != rows * dim {
        return Err(Error::InvalidInput(format!(
            "{} values do not make {rows} rows of dimension {dim}",
            data.len()
        )));
    }
    let sidecar = check_outputs(matrix, inputs)?;
    let header = SidecarHeader {
        papersim_sidecar: SIDECAR_FORMAT,
        model: model.clone(),
        rows,
    };
    let mut lines = Vec::new();
    push_line(&mut lines, &header, &sidecar)?;
    for name in names {
        push_line(&mut lines, name, &sidecar)?;
    }
    write_new_or_replace(matrix, &npy::encode_f32(data, rows, dim), || {
        check_target(matrix, Target::Matrix, inputs)
    })?;
    write_new_or_replace(&sidecar, &lines, || {
        check_target(&sidecar, Target::Sidecar, inputs)
    })?;
    Ok(sidecar)
}

/// A matrix `papersim embed` wrote, read back with its sidecar and checked ([`read`]): what
/// `ingest --embeddings` adds papers from without loading a model.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The `.npy` file.
    pub matrix: PathBuf,
    /// Its sidecar.
    pub sidecar: PathBuf,
    /// The model the matrix was embedded with.
    pub model: ModelInfo,
    /// One per matrix row, in row order.
    pub rows: Vec<SidecarRow>,
    /// The matrix, row-major: `rows.len()` unit vectors of dimension `model.dim`.
    data: Vec<f32>,
}

fn import_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Import {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the matrix at `matrix` and its sidecar ([`sidecar_path`]) and checks them: the
/// header (format, model), each row (numbered in order; a paper row with the hash of its
/// text), the matrix (a 2-D little-endian float32 `.npy` of as many rows as the sidecar names
/// and the model's dimension), and every vector (finite, unit length). Each error names the
/// file, and the line or row, at fault.
pub fn read(matrix: &Path) -> Result<Exported> {
    let sidecar = sidecar_path(matrix).map_err(|_| {
        import_err(
            matrix,
            "is not a matrix `papersim embed -o` wrote: give the .npy file (its rows are named \
             beside it, in <name>.rows.jsonl)",
        )
    })?;
    if fs::symlink_metadata(&sidecar).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(import_err(
            matrix,
            format!(
                "its sidecar {}, which names the rows and the model, is missing: copy it along \
                 with the matrix (`papersim embed -o` writes both)",
                sidecar.display()
            ),
        ));
    }
    let (header, rows) = read_sidecar(&sidecar)?;
    let dim = header.model.dim;
    let file = open_regular(matrix)?;
    let len = file.metadata().map_err(|e| Error::io(matrix, e))?.len();
    let (data, got_rows, cols) =
        npy::read_f32(BufReader::new(file), len).map_err(|r| import_err(matrix, r))?;
    if got_rows != rows.len() || cols != dim {
        return Err(import_err(
            matrix,
            format!(
                "holds a {got_rows}×{cols} matrix, but its sidecar {} names {} rows of model `{}` \
                 (dimension {dim}): the two files are not from one `papersim embed` run",
                sidecar.display(),
                rows.len(),
                header.model.id
            ),
        ));
    }
    validate_vectors(&data, dim, 0).map_err(|e| match e {
        Error::InvalidVector { row, reason } => import_err(matrix, format!("row {row}: {reason}")),
        other => other,
    })?;
    Ok(Exported {
        matrix: matrix.to_path_buf(),
        sidecar,
        model: header.model,
        rows,
        data,
    })
}

/// Opens `path` for reading if it is a regular file (a FIFO would block, a directory fail
/// later with a worse message).
fn open_regular(path: &Path) -> Result<File> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(import_err(
            path,
            format!("is a {}, not a regular file", file_kind(&meta.file_type())),
        ));
    }
    File::open(path).map_err(|e| Error::io(path, e))
}

/// The header and rows of the sidecar at `path`, checked.
fn read_sidecar(path: &Path) -> Result<(SidecarHeader, Vec<SidecarRow>)> {
    let mut reader = BufReader::new(open_regular(path)?);
    let mut line = Vec::new();
    let mut next_line = |n: usize, line: &mut Vec<u8>| -> Result<bool> {
        line.clear();
        let got = (&mut reader)
            .take(SIDECAR_HEAD_BYTES + 1)
            .read_until(b'\n', line)
            .map_err(|e| Error::io(path, e))?;
        if got > SIDECAR_HEAD_BYTES as usize {
            return Err(import_err(
                path,
                format!("line {n} is longer than {SIDECAR_HEAD_BYTES} bytes: not a sidecar"),
            ));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        Ok(got > 0)
    };
    if !next_line(1, &mut line)? {
        return Err(import_err(
            path,
            "is empty: not a sidecar `papersim embed` wrote",
        ));
    }
    let header = match serde_json::from_slice::<SidecarHeader>(&line) {
        Ok(h) => h,
        Err(e) => {
            let reason = if serde_json::from_slice::<SidecarRow>(&line).is_ok() {
                "was written by an older papersim, which did not record the model the matrix \
                 came from, so the vectors cannot be checked against a library: re-run \
                 `papersim embed` with this version"
                    .to_string()
            } else if let Ok(mark) = serde_json::from_slice::<serde_json::Value>(&line) {
                match mark.get("papersim_sidecar") {
                    Some(v) if v.as_u64() != Some(SIDECAR_FORMAT.into()) => format!(
                        "is sidecar format {v}; this papersim reads format {SIDECAR_FORMAT}: \
                         re-run `papersim embed` with this version"
                    ),
                    _ => format!("line 1 is not a sidecar header: {e}"),
                }
            } else {
                format!("line 1 is not a sidecar header: {e}")
            };
            return Err(import_err(path, reason));
        }
    };
    if header.papersim_sidecar != SIDECAR_FORMAT {
        return Err(import_err(
            path,
            format!(
                "is sidecar format {}; this papersim reads format {SIDECAR_FORMAT}: re-run \
                 `papersim embed` with this version",
                header.papersim_sidecar
            ),
        ));
    }
    if header.model.dim == 0 {
        return Err(import_err(path, "line 1: the model's dimension is 0"));
    }
    let mut rows = Vec::new();
    while next_line(rows.len() + 2, &mut line)? {
        let n = rows.len() + 2;
        let row: SidecarRow = serde_json::from_slice(&line)
            .map_err(|e| import_err(path, format!("line {n}: not a sidecar row: {e}")))?;
        if row.row != rows.len() {
            return Err(import_err(
                path,
                format!(
                    "line {n} names row {}, expected row {}",
                    row.row,
                    rows.len()
                ),
            ));
        }
        if let RowSource::Paper { text_sha256, .. } = &row.source {
            let is_hash = text_sha256
                .as_deref()
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_hash {
                return Err(import_err(
                    path,
                    format!(
                        "line {n}: row {} has no `text_sha256` (the SHA-256 of the text \
                         embedded, 64 hex digits)",
                        row.row
                    ),
                ));
            }
        }
        rows.push(row);
    }
    if rows.len() != header.rows {
        return Err(import_err(
            path,
            format!(
                "names {} rows, but its header says {}: the file is cut off or was edited",
                rows.len(),
                header.rows
            ),
        ));
    }
    Ok((header, rows))
}

/// The first 12 hex digits of a fingerprint, for messages.
fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

impl Exported {
    /// The vector of row `row`.
    pub fn row(&self, row: usize) -> &[f32] {
        let dim = self.model.dim;
        &self.data[row * dim..(row + 1) * dim]
    }

    /// Refuses a library whose vectors come from another model than the matrix's (another
    /// fingerprint, dimension, pooling or sequence length): naming the matrix, both models and
    /// their short fingerprints.
    pub fn check_model(&self, lib: &Library) -> Result<()> {
        let (ours, theirs) = (&self.model, &lib.manifest().model);
        let same = ours.fingerprint == theirs.fingerprint
            && ours.dim == theirs.dim
            && ours.pooling == theirs.pooling
            && ours.max_seq_length == theirs.max_seq_length;
        if same {
            return Ok(());
        }
        // A library written before the fingerprint covered the weights records an older kind
        // of fingerprint, which only the model files can confirm: say how to upgrade it.
        let legacy_hint = if ours.id == theirs.id
            && ours.dim == theirs.dim
            && ours.pooling == theirs.pooling
            && ours.max_seq_length == theirs.max_seq_length
        {
            ". If the library was written by a papersim whose model fingerprint did not yet \
             cover the weights, run `papersim ingest` once with its model (any digest) to record \
             the current fingerprint, then import again"
        } else {
            ""
        };
        Err(import_err(
            &self.matrix,
            format!(
                "was embedded with model `{}` (dimension {}, {} pooling, max {} tokens, \
                 fingerprint {}), but library {} holds vectors of model `{}` (dimension {}, {} \
                 pooling, max {} tokens, fingerprint {}); nothing was imported. Embed the digests \
                 with the library's model (`papersim embed --model {}`), or import into a new \
                 library{legacy_hint}",
                ours.id,
                ours.dim,
                ours.pooling,
                ours.max_seq_length,
                short(&ours.fingerprint),
                lib.root().display(),
                theirs.id,
                theirs.dim,
                theirs.pooling,
                theirs.max_seq_length,
                short(&theirs.fingerprint),
                theirs.id
            ),
        ))
    }

    /// The vectors of `plan`'s new papers (planned from `digests`), in order, row-major: for
    /// each, the row whose paper id is the digest paper's and whose text hash is that of the
    /// text the library would embed for it. Refuses the import, naming the sidecar and row,
    /// when a row of the paper holds another text (the digest was edited after embedding), and
    /// lists how many papers, and the first few, when some have no row at all.
    pub fn vectors_for(&self, plan: &IngestPlan, digests: &[Digest]) -> Result<Vec<f32>> {
        let mut by_id: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
        for r in &self.rows {
            if let RowSource::Paper {
                id,
                text_sha256: Some(hash),
                ..
            } = &r.source
            {
                by_id.entry(id).or_default().push((r.row, hash));
            }
        }
        let mut vectors = Vec::with_capacity(plan.new_papers().len() * self.model.dim);
        let mut missing = Vec::new();
        for n in plan.new_papers() {
            let (d, i) = n.source;
            let digest = &digests[d];
            let paper = &digest.papers[i];
            let id = paper.id();
            let Some(rows) = by_id.get(id.as_str()) else {
                missing.push(id);
                continue;
            };
            let text = n.paper.text();
            let hash = text_sha256(&text);
            if let Some(&(row, _)) = rows.iter().find(|(_, h)| *h == hash) {
                vectors.extend_from_slice(self.row(row));
                continue;
            }
            let row = rows[0].0;
            let digest_hash = text_sha256(&paper.embedding_text());
            let reason = if rows.iter().any(|(_, h)| *h == digest_hash) {
                // The matrix holds the digest's text, but the library embeds another one: the
                // paper completes a cut-off abstract stored under a differently written title.
                format!(
                    "row {row}: paper {id} ({}:{}) completes the abstract of a stored paper whose \
                     title is written differently; the library embeds its own title with the new \
                     abstract, a text this matrix does not hold: ingest this digest without \
                     --embeddings",
                    digest.source, paper.line
                )
            } else {
                format!(
                    "row {row}: paper {id} was embedded from another text than {}:{} gives it \
                     now (the digest was edited after `papersim embed`, or is another version \
                     of it); nothing was imported: re-run `papersim embed` on the digests",
                    digest.source, paper.line
                )
            };
            return Err(import_err(&self.sidecar, reason));
        }
        if !missing.is_empty() {
            let lines_only = !self
                .rows
                .iter()
                .any(|r| matches!(r.source, RowSource::Paper { .. }));
            let listed: Vec<&str> = missing
                .iter()
                .take(MISSING_LISTED)
                .map(String::as_str)
                .collect();
            return Err(import_err(
                &self.matrix,
                format!(
                    "holds no vector for {} of the {} papers this ingest adds (first: {}{}){}; \
                     nothing was imported: embed the digests being ingested with `papersim \
                     embed` and import that matrix",
                    missing.len(),
                    plan.new_papers().len(),
                    listed.join(", "),
                    if missing.len() > listed.len() {
                        ", …"
                    } else {
                        ""
                    },
                    if lines_only {
                        "; its rows are lines of text (`embed --lines`), not papers"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(vectors)
    }
}

/// Appends `value` as one JSON line.
fn push_line(lines: &mut Vec<u8>, value: &impl Serialize, sidecar: &Path) -> Result<()> {
    serde_json::to_writer(&mut *lines, value).map_err(|e| Error::Output {
        path: sidecar.to_path_buf(),
        reason: e.to_string(),
    })?;
    lines.push(b'\n');
    Ok(())
}

#[derive(Clone, Copy)]
enum Target {
    Matrix,
    Sidecar,
}

fn refuse(path: &Path, reason: String) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        reason,
    }
}

/// Whether `path` (not followed if a link) may be written as `target`.
fn check_target(path: &Path, target: Target, inputs: &[PathBuf]) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(refuse(
            path,
            "is a symbolic link; papersim does not write through links (it would replace the \
             link, or the file it points to): give the real path or another one"
                .into(),
        ));
    }
    if !kind.is_file() {
        return Err(refuse(
            path,
            format!(
                "is a {}, not a regular file; papersim writes its output only as a new file or \
                 over its own earlier output: choose another path",
                file_kind(&kind)
            ),
        ));
    }
    for input in inputs {
        if fs::metadata(input).is_ok_and(|i| same_file(&meta, &i, path, input)) {
            return Err(refuse(
                path,
                format!(
                    "is one of the files being embedded (`{}`); choose another path",
                    input.display()
                ),
            ));
        }
    }
    let head = read_head(path)?;
    let (ours, what) = match target {
        Target::Matrix => (head.starts_with(NPY_MAGIC), "a .npy file"),
        Target::Sidecar => (
            is_sidecar(&head),
            "a sidecar papersim wrote (rows of a matrix)",
        ),
    };
    if !ours {
        return Err(refuse(
            path,
            format!(
                "exists and is not {what}; papersim overwrites only its own earlier output: \
                 remove the file if it is yours to lose, or choose another path"
            ),
        ));
    }
    Ok(())
}

/// The first bytes of a regular file.
fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    File::open(path)
        .and_then(|f| f.take(SIDECAR_HEAD_BYTES).read_to_end(&mut head))
        .map_err(|e| Error::io(path, e))?;
    Ok(head)
}

/// Whether the first line of `head` is a sidecar header (of any format version) or, in a
/// sidecar written before papersim recorded the model, a [`SidecarRow`].
fn is_sidecar(head: &[u8]) -> bool {
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<HeaderMark>(first).is_ok()
        || serde_json::from_slice::<SidecarRow>(first).is_ok()
}

/// Whether two metadata describe one file (hard links and other names of it included).
fn same_file(a: &Metadata, b: &Metadata, a_path: &Path, b_path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = (a_path, b_path);
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        matches!(
            (fs::canonicalize(a_path), fs::canonicalize(b_path)),
            (Ok(x), Ok(y)) if x == y
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_names_never_meet_the_matrix() {
        let p = |s: &str| sidecar_path(Path::new(s)).map_err(|e| e.to_string());
        assert_eq!(p("v.npy").unwrap(), Path::new("v.rows.jsonl"));
        assert_eq!(p("out/day.NPY").unwrap(), Path::new("out/day.rows.jsonl"));
        assert_eq!(p("a.b.npy").unwrap(), Path::new("a.b.rows.jsonl"));
        for bad in ["v.jsonl", "v", ".npy", "v.npy/..", "v.rows.jsonl"] {
            let err = p(bad).unwrap_err();
            assert!(err.contains("ends in .npy"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_refused_replacement_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.npy");
        std::fs::write(&path, b"old").unwrap();
        let refused = write_new_or_replace(&path, b"new", || {
            Err(Error::InvalidInput("changed meanwhile".into()))
        });
        assert!(refused.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["v.npy"]);
        write_new_or_replace(&path, b"new", || Ok(())).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn sidecar_rows_round_trip_and_are_told_apart() {
        let rows = [
            SidecarRow {
                row: 0,
                source: RowSource::Paper {
                    id: "2401.00001".into(),
                    title: "T".into(),
                    digest: "d.txt".into(),
                    text_sha256: Some(crate::paper::text_sha256("T")),
                },
            },
            SidecarRow {
                row: 1,
                source: RowSource::Line { text: "x".into() },
            },
        ];
        for row in &rows {
            let line = serde_json::to_string(row).unwrap();
            assert_eq!(&serde_json::from_str::<SidecarRow>(&line).unwrap(), row);
            assert!(is_sidecar(format!("{line}\nmore").as_bytes()));
        }
        let header = SidecarHeader {
            papersim_sidecar: SIDECAR_FORMAT,
            model: ModelInfo {
                id: "m".into(),
                fingerprint: "f".repeat(64),
                dim: 4,
                pooling: "mean".into(),
                max_seq_length: 8,
            },
            rows: 2,
        };
        let line = serde_json::to_string(&header).unwrap();
        assert!(is_sidecar(format!("{line}\n").as_bytes()));
        assert!(is_sidecar(b"{\"papersim_sidecar\": 7, \"future\": true}\n"));
        assert!(serde_json::from_str::<SidecarRow>(&line).is_err());
        for other in [
            &b""[..],
            b"{\"title\": \"T\", \"abstract\": \"A\"}\n",
            b"{\"row\": -1, \"text\": \"x\"}",
            b"\x93NUMPY",
        ] {
            assert!(!is_sidecar(other), "{other:?}");
        }
    }
}
