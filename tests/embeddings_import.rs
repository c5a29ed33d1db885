//! `papersim ingest --embeddings FILE.npy` (issue #13 item 4): papers added with vectors that
//! `papersim embed` computed elsewhere, through the real binary. The import must equal
//! embedding the same texts, load no model, and refuse — naming the file and what is wrong,
//! leaving the library byte-for-byte unchanged — a matrix of another model, rows whose text
//! no longer matches the digest, missing rows, a damaged matrix, and an older sidecar.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use papersim::library::{npy, Library};
use serde_json::Value;

use crate::common::{self, stderr, stdout};
use crate::reliability::{day, library_copy, os, refused, refused_by, run, write};

/// A directory holding copies of the digests of `days` (`03-01` …), under their own names.
fn digests_dir(tmp: &Path, name: &str, days: &[&str]) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for d in days {
        let src = day(d);
        std::fs::copy(&src, dir.join(src.file_name().unwrap())).unwrap();
    }
    dir
}

/// The digest files of a [`digests_dir`], in name order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `papersim embed SRC -o OUT`, which must succeed.
fn embed(src: &Path, out: &Path) {
    let o = common::papersim()
        .args(["--quiet", "embed"])
        .arg(src)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "embed failed: {}", stderr(&o));
}

/// `papersim --library LIB ingest PATHS... [--embeddings MATRIX] --format json`, which must
/// succeed; the report.
fn ingest(lib: &Path, paths: &[PathBuf], matrix: Option<&Path>) -> Value {
    let o = run(lib, &ingest_args(paths, matrix));
    assert!(o.status.success(), "ingest failed: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn ingest_args<'a>(paths: &'a [PathBuf], matrix: Option<&'a Path>) -> Vec<&'a OsStr> {
    let mut args = vec![os("ingest")];
    args.extend(paths.iter().map(|p| p.as_os_str()));
    if let Some(m) = matrix {
        args.extend([os("--embeddings"), m.as_os_str()]);
    }
    args.extend([os("--format"), os("json")]);
    args
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Asserts that two libraries hold the same papers in the same order, each pair of vectors
/// with cosine ≥ 0.9999, under the same model; returns the ids.
fn assert_same_library(imported: &Path, embedded: &Path) -> Vec<String> {
    let a = Library::open(imported).unwrap();
    let b = Library::open(embedded).unwrap();
    assert_eq!(a.manifest().model, b.manifest().model);
    let ids = |l: &Library| {
        l.papers()
            .unwrap()
            .iter()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b), "ids or their order differ");
    let mut lowest = 1.0f32;
    for row in 0..a.len() {
        let c = cosine(&a.vector(row), &b.vector(row));
        assert!(
            c >= 0.9999,
            "row {row} ({}): cosine {c}",
            a.papers().unwrap()[row].id
        );
        lowest = lowest.min(c);
    }
    eprintln!("{} papers, lowest cosine {lowest}", a.len());
    ids(&a)
}

/// The ids of `similar ID -k 10` in `lib`, best first.
fn top10(lib: &Path, id: &str) -> Vec<String> {
    let report = common::json(lib, &["similar", id, "-k", "10", "--exact"]);
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The sidecar's lines.
fn sidecar_lines(matrix: &Path) -> Vec<String> {
    let sidecar = papersim::library::export::sidecar_path(matrix).unwrap();
    std::fs::read_to_string(sidecar)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn write_sidecar(matrix: &Path, lines: &[String]) {
    let sidecar = papersim::library::export::sidecar_path(matrix).unwrap();
    write(&sidecar, lines.join("\n") + "\n");
}

#[test]
fn item4_import_equals_embedding_the_same_texts() {
    let tmp = tempfile::tempdir().unwrap();
    let days = digests_dir(tmp.path(), "days", &["03-01", "03-02"]);
    let matrix = tmp.path().join("days.npy");
    embed(&days, &matrix);

    // The sidecar records the model the matrix came from and, per row, the text embedded.
    let lines = sidecar_lines(&matrix);
    let header: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(header["papersim_sidecar"], 1);
    assert_eq!(header["rows"].as_u64().unwrap() as usize, lines.len() - 1);
    let row: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(row["text_sha256"].as_str().unwrap().len(), 64);

    let digests = files(&days);
    let embedded = tmp.path().join("embedded");
    let imported = tmp.path().join("imported");
    let by_embedding = ingest(&embedded, &digests, None);
    let by_import = ingest(&imported, &digests, Some(&matrix));
    assert_eq!(by_import["added"], by_embedding["added"]);
    assert_eq!(
        by_import["added"].as_u64().unwrap() as usize,
        lines.len() - 1
    );
    assert_eq!(by_import["papers_total"], by_embedding["papers_total"]);

    // A new library takes the matrix's model, as recorded by `embed`.
    let lib = Library::open(&imported).unwrap();
    assert_eq!(
        serde_json::to_value(&lib.manifest().model).unwrap(),
        header["model"]
    );
    let ids = assert_same_library(&imported, &embedded);
    for id in ids.iter().step_by(7) {
        assert_eq!(top10(&imported, id), top10(&embedded, id), "similar {id}");
    }
}

#[test]
fn item4_import_into_an_existing_library_adds_only_new_papers() {
    let tmp = tempfile::tempdir().unwrap();
    // The matrix covers three days; the libraries get the first day, then two of them.
    let days = digests_dir(tmp.path(), "days", &["03-01", "03-02", "03-03"]);
    let matrix = tmp.path().join("days.npy");
    embed(&days, &matrix);
    let digests = files(&days);

    let imported = tmp.path().join("imported");
    let embedded = tmp.path().join("embedded");
    std::fs::create_dir_all(&imported).unwrap();
    common::copy_dir(&library_copy(tmp.path()), &embedded);
    common::copy_dir(&embedded, &imported);
    let seed_papers = Library::open(&imported).unwrap().len();

    let first = [digests[0].clone()];
    let a = ingest(&imported, &first, Some(&matrix));
    let b = ingest(&embedded, &first, None);
    assert_eq!(a["added"], b["added"]);
    let added_first = a["added"].as_u64().unwrap() as usize;
    assert!(added_first > 0);

    let two = [digests[0].clone(), digests[2].clone()];
    let a = ingest(&imported, &two, Some(&matrix));
    let b = ingest(&embedded, &two, None);
    assert_eq!(a["added"], b["added"]);
    assert_eq!(a["already_present"], b["already_present"]);
    assert!(a["already_present"].as_u64().unwrap() as usize >= added_first);
    let added_second = a["added"].as_u64().unwrap() as usize;
    assert!(added_second > 0);
    assert_eq!(
        Library::open(&imported).unwrap().len(),
        seed_papers + added_first + added_second
    );
    assert_same_library(&imported, &embedded);
}

#[test]
fn item4_a_mismatched_model_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let days = digests_dir(tmp.path(), "days", &["03-01"]);
    let matrix = tmp.path().join("days.npy");
    embed(&days, &matrix);
    let lib = library_copy(tmp.path());
    let recorded = Library::open(&lib).unwrap().manifest().model.clone();

    // The same matrix, said to come from another model (as another copy of the weights gives).
    let mut lines = sidecar_lines(&matrix);
    let mut header: Value = serde_json::from_str(&lines[0]).unwrap();
    let other = "0123456789ab".repeat(5) + "cdef";
    header["model"]["fingerprint"] = Value::from(other.clone());
    header["model"]["id"] = Value::from("someone/other-model");
    lines[0] = header.to_string();
    write_sidecar(&matrix, &lines);
    let digests = files(&days);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &[
            "days.npy",
            "someone/other-model",
            &other[..12],
            &recorded.id,
            &recorded.fingerprint[..12],
            "nothing was imported",
        ],
    );

    // Another dimension: the matrix is not of the model its sidecar names.
    header["model"]["fingerprint"] = Value::from(recorded.fingerprint.clone());
    header["model"]["dim"] = Value::from(768);
    lines[0] = header.to_string();
    write_sidecar(&matrix, &lines);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.npy", "holds a 10×384 matrix", "dimension 768"],
    );
}

#[test]
fn item4_a_digest_edited_after_embedding_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let days = digests_dir(tmp.path(), "days", &["03-01"]);
    let matrix = tmp.path().join("days.npy");
    embed(&days, &matrix);
    let digest = files(&days).remove(0);
    let text = std::fs::read_to_string(&digest).unwrap();
    let edited = text.replacen(
        "Modal Consistency as the semantic interface",
        "Modal Consistency as the edited semantic interface",
        1,
    );
    assert_ne!(edited, text, "the fixture changed: edit another sentence");
    write(&digest, edited);
    let lib = library_copy(tmp.path());
    refused(
        &lib,
        &ingest_args(&[digest], Some(&matrix)),
        &[
            "days.rows.jsonl",
            "row 0",
            "another text",
            "hf_2026-03-01.txt:",
            "re-run `papersim embed`",
        ],
    );
}

#[test]
fn item4_papers_without_a_row_are_listed_not_embedded() {
    let tmp = tempfile::tempdir().unwrap();
    let one = digests_dir(tmp.path(), "one", &["03-01"]);
    let matrix = tmp.path().join("one.npy");
    embed(&one, &matrix);
    let both = [day("03-01"), day("03-02")];
    let new_lib = tmp.path().join("new");
    std::fs::create_dir_all(&new_lib).unwrap();
    let err = refused(
        &new_lib,
        &ingest_args(&both, Some(&matrix)),
        &[
            "one.npy",
            "holds no vector for 10 of the 20 papers",
            "first: ",
            ", …",
        ],
    );
    // The first ids listed are those of the day the matrix lacks.
    let day2 = papersim::digest::read_path(&day("03-02"), &Default::default()).unwrap();
    let first_missing = day2[0].papers[0].id();
    assert!(err.contains(&format!("first: {first_missing}")), "{err}");
    assert_eq!(std::fs::read_dir(&new_lib).unwrap().count(), 0);

    // `embed --lines` rows name no papers: said so.
    let lines = write(&tmp.path().join("lines.txt"), "a text\nanother\n");
    let lines_matrix = tmp.path().join("lines.npy");
    let o = common::papersim()
        .args(["--quiet", "embed", "--lines"])
        .arg(&lines)
        .arg("-o")
        .arg(&lines_matrix)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    refused(
        &new_lib,
        &ingest_args(&[day("03-01")], Some(&lines_matrix)),
        &["lines.npy", "lines of text"],
    );
}

#[test]
fn item4_a_damaged_matrix_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let days = digests_dir(tmp.path(), "days", &["03-01"]);
    let matrix = tmp.path().join("days.npy");
    embed(&days, &matrix);
    let digests = files(&days);
    let lib = library_copy(tmp.path());
    let (data, rows, cols) = npy::decode_f32(&std::fs::read(&matrix).unwrap()).unwrap();
    let good = std::fs::read(&matrix).unwrap();

    let mut nan = data.clone();
    nan[3 * cols + 5] = f32::NAN;
    write(&matrix, npy::encode_f32(&nan, rows, cols));
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.npy", "row 3", "element 5", "not finite"],
    );

    let mut scaled = data.clone();
    scaled[2 * cols..3 * cols]
        .iter_mut()
        .for_each(|x| *x *= 2.0);
    write(&matrix, npy::encode_f32(&scaled, rows, cols));
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.npy", "row 2", "not unit length"],
    );

    write(&matrix, npy::encode_f32(&data[cols..], rows - 1, cols));
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.npy", "holds a 9×384 matrix", "names 10 rows"],
    );

    write(
        &matrix,
        npy::encode_f32(&data[..rows * (cols - 4)], rows, cols - 4),
    );
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.npy", "holds a 10×380 matrix", "dimension 384"],
    );

    let f64_header = {
        let mut bytes = good.clone();
        let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[at..at + 3].copy_from_slice(b"<f8");
        bytes
    };
    write(&matrix, f64_header);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.npy", "little-endian float32"],
    );

    write(&matrix, &good[..good.len() - 7]);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.npy", "truncated"],
    );

    // A matrix path that is not a .npy, and a matrix without its sidecar.
    write(&matrix, &good);
    let renamed = tmp.path().join("elsewhere.npy");
    std::fs::copy(&matrix, &renamed).unwrap();
    refused(
        &lib,
        &ingest_args(&digests, Some(&renamed)),
        &["elsewhere.npy", "elsewhere.rows.jsonl", "is missing"],
    );
    let sidecar = papersim::library::export::sidecar_path(&matrix).unwrap();
    refused(
        &lib,
        &ingest_args(&digests, Some(&sidecar)),
        &["days.rows.jsonl", "give the .npy file"],
    );

    // A sidecar cut off after its header says how many rows it names.
    let lines = sidecar_lines(&matrix);
    write_sidecar(&matrix, &lines[..lines.len() - 1]);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.rows.jsonl", "names 9 rows, but its header says 10"],
    );
}

#[test]
fn item4_an_older_sidecar_without_the_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let days = digests_dir(tmp.path(), "days", &["03-01"]);
    let matrix = tmp.path().join("days.npy");
    embed(&days, &matrix);
    // As papersim wrote it before: no header, and rows without the text's hash.
    let old: Vec<String> = sidecar_lines(&matrix)[1..]
        .iter()
        .map(|l| {
            let mut row: Value = serde_json::from_str(l).unwrap();
            row.as_object_mut().unwrap().remove("text_sha256");
            row.to_string()
        })
        .collect();
    write_sidecar(&matrix, &old);
    let lib = library_copy(tmp.path());
    refused(
        &lib,
        &ingest_args(&files(&days), Some(&matrix)),
        &[
            "days.rows.jsonl",
            "older papersim",
            "re-run `papersim embed` with this version",
        ],
    );
    // `embed` still replaces such a sidecar: it is papersim's own earlier output.
    embed(&days, &matrix);
    assert!(sidecar_lines(&matrix)[0].contains("papersim_sidecar"));
}

#[test]
fn item4_the_import_loads_no_model() {
    let tmp = tempfile::tempdir().unwrap();
    let days = digests_dir(tmp.path(), "days", &["03-01", "03-02"]);
    let matrix = tmp.path().join("days.npy");
    embed(&days, &matrix);
    let digests = files(&days);

    // No model anywhere: the models directory is a plain file (so nothing can be provisioned
    // into it), an empty Hugging Face cache that may not download, an empty user cache.
    let no_models = write(&tmp.path().join("no-models"), "not a directory");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let laptop = |lib: &Path, args: &[&OsStr]| {
        let mut c = common::papersim();
        c.env("PAPERSIM_MODELS", &no_models)
            .env("HF_HOME", &empty)
            .env("HF_HUB_OFFLINE", "1")
            .env("XDG_CACHE_HOME", &empty)
            .arg("--library")
            .arg(lib)
            .arg("--quiet")
            .args(args);
        c
    };
    // Embedding cannot happen here: a plain ingest fails for want of the model...
    let control = tmp.path().join("control");
    std::fs::create_dir_all(&control).unwrap();
    refused_by(
        laptop(&control, &ingest_args(&digests, None)),
        &control,
        &["could not find model"],
    );
    // ...and the import succeeds, into a new library and then into the same one again.
    let lib = tmp.path().join("laptop");
    for expect_added in [20, 0] {
        let o = laptop(&lib, &ingest_args(&digests, Some(&matrix)))
            .output()
            .unwrap();
        assert!(o.status.success(), "import failed: {}", stderr(&o));
        let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(report["added"], expect_added, "{report}");
    }
    assert_eq!(Library::open(&lib).unwrap().len(), 20);

    // --model does not apply: the sidecar says which model the vectors came from.
    let mut with_model = ingest_args(&digests, Some(&matrix));
    with_model.extend([os("--model"), os("sentence-transformers/all-MiniLM-L6-v2")]);
    refused_by(
        laptop(&lib, &with_model),
        &lib,
        &["--model", "does not apply to --embeddings"],
    );
}

/// A matrix made unusable by editing its sidecar: an unreadable header.
#[test]
fn item4_a_sidecar_that_is_not_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let days = digests_dir(tmp.path(), "days", &["03-01"]);
    let matrix = tmp.path().join("days.npy");
    embed(&days, &matrix);
    let lib = library_copy(tmp.path());
    let digests = files(&days);
    let mut lines = sidecar_lines(&matrix);
    let good = lines.clone();

    lines[0] = lines[0].replace("\"papersim_sidecar\":1", "\"papersim_sidecar\":2");
    write_sidecar(&matrix, &lines);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.rows.jsonl", "sidecar format 2", "reads format 1"],
    );

    let mut lines = good.clone();
    lines.swap(1, 2);
    write_sidecar(&matrix, &lines);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.rows.jsonl", "line 2 names row 1, expected row 0"],
    );

    let mut lines = good.clone();
    lines[3] = "x".repeat(70_000);
    write_sidecar(&matrix, &lines);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.rows.jsonl", "line 4 is longer than"],
    );

    write_sidecar(&matrix, &["{\"my\": \"data\"}".to_string()]);
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.rows.jsonl", "line 1 is not a sidecar header"],
    );

    // A FIFO in place of the sidecar is refused, not waited on.
    let sidecar = papersim::library::export::sidecar_path(&matrix).unwrap();
    std::fs::remove_file(&sidecar).unwrap();
    let status = Command::new("mkfifo").arg(&sidecar).status().unwrap();
    assert!(status.success());
    refused(
        &lib,
        &ingest_args(&digests, Some(&matrix)),
        &["days.rows.jsonl", "a FIFO", "not a regular file"],
    );
}
