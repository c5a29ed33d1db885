//! An embedding matrix exported with the names of its rows, as `papersim embed` writes it: a
//! float32 `.npy` file and beside it a JSON Lines *sidecar*, one [`SidecarRow`] per matrix
//! row, at [`sidecar_path`] (`v.npy` → `v.rows.jsonl`, never a name the matrix can take).
//!
//! Writing never destroys what papersim did not write: the matrix replaces only a regular
//! `.npy` file and the sidecar only a regular file that is a sidecar; a symlink, FIFO, device
//! node or directory at either path, another file, or one of the files being embedded is
//! refused with an error naming the path. Each file is written through
//! [`crate::directory::write_new_or_replace`] (exclusive temporary file, fsync, rename).

use std::fs::{self, File, FileType, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::npy;
use crate::directory::write_new_or_replace;
use crate::{Error, Result};

/// What replaces a matrix file's `.npy` extension to name its sidecar.
pub const SIDECAR_EXTENSION: &str = "rows.jsonl";

/// The first bytes of every `.npy` file.
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// How much of an existing sidecar is read to judge it: its first line (a title of at most
/// 2,000 bytes, a digest path) fits.
const SIDECAR_HEAD_BYTES: u64 = 64 * 1024;

/// One line of a sidecar: the matrix row it names and what was embedded there.
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
    /// A paper of a digest: its id, its title and the digest it was read from.
    Paper {
        id: String,
        title: String,
        digest: String,
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

/// Writes the `rows × dim` matrix `data` to `matrix` and `names` (one per row) to its
/// sidecar, each judged by [`check_outputs`]'s rules again just before it is renamed into
/// place. Returns the sidecar's path.
pub fn write(
    matrix: &Path,
    data: &[f32],
    dim: usize,
    names: &[SidecarRow],
    inputs: &[PathBuf],
) -> Result<PathBuf> {
    let rows = names.len();
    if data.len() != rows * dim {
        return Err(Error::InvalidInput(format!(
            "{} values do not make {rows} rows of dimension {dim}",
            data.len()
        )));
    }
    let sidecar = check_outputs(matrix, inputs)?;
    let mut lines = Vec::new();
    for name in names {
        serde_json::to_writer(&mut lines, name).map_err(|e| Error::Output {
            path: sidecar.clone(),
            reason: e.to_string(),
        })?;
        lines.push(b'\n');
    }
    write_new_or_replace(matrix, &npy::encode_f32(data, rows, dim), || {
        check_target(matrix, Target::Matrix, inputs)
    })?;
    write_new_or_replace(&sidecar, &lines, || {
        check_target(&sidecar, Target::Sidecar, inputs)
    })?;
    Ok(sidecar)
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
                "is {}, not a regular file; papersim writes its output only as a new file or \
                 over its own earlier output: choose another path",
                describe(kind)
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

/// Whether the first line of `head` is a [`SidecarRow`].
fn is_sidecar(head: &[u8]) -> bool {
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<SidecarRow>(first).is_ok()
}

/// A file type in words, for messages.
fn describe(kind: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
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
