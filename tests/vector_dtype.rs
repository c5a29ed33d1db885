//! f16 vector storage (`--vector-dtype f16`, #13), through the real binary: an f16 library
//! answers as the f32 library of the same papers does (top 10 overlapping in at least 9,
//! scores within 1e-3); its vectors files are `.npy` float16 (`<f2`), 64-byte aligned; an
//! ingest asking an existing library for another dtype is refused, and `index rebuild
//! --vector-dtype` converts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use papersim::library::{Library, Manifest, VectorDtype};

use crate::common::{self, copy_dir, json, ranked, run_in, seed_library, stderr, stdout};
use crate::reliability::{day, os, refused, seed_digest};

fn ingest(lib: &Path, args: &[&str]) {
    let mut all = vec!["ingest"];
    all.extend(args);
    let o = run_in(lib, &all);
    assert!(o.status.success(), "{all:?}: {}", stderr(&o));
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts that two top-10s share at least 9 papers, and that each shared paper's score
/// differs by less than 1e-3.
fn agree(what: &str, f16: &[(String, f64)], f32: &[(String, f64)]) {
    assert_eq!(f16.len(), 10, "{what}: {f16:?}");
    assert_eq!(f32.len(), 10, "{what}: {f32:?}");
    let want: HashMap<&str, f64> = f32.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    let mut shared = 0;
    for (id, score) in f16 {
        if let Some(s) = want.get(id.as_str()) {
            shared += 1;
            assert!(
                (score - s).abs() < 1e-3,
                "{what}: {id} scores {score} in f16, {s} in f32"
            );
        }
    }
    assert!(
        shared >= 9,
        "{what}: only {shared} of 10 shared\n{f16:?}\n{f32:?}"
    );
}

/// The `.npy` header dictionary of `file`, after checking that the data starts on a 64-byte
/// boundary and that the body holds `rows × dim` values of `bytes` bytes each.
fn npy_header(file: &Path, rows: usize, dim: usize, bytes: usize) -> String {
    let data = std::fs::read(file).unwrap();
    assert_eq!(&data[..8], b"\x93NUMPY\x01\x00", "{}", file.display());
    let header_len = u16::from_le_bytes([data[8], data[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0, "{}", file.display());
    assert_eq!(
        data.len() - 10 - header_len,
        rows * dim * bytes,
        "{}",
        file.display()
    );
    String::from_utf8(data[10..10 + header_len].to_vec()).unwrap()
}

/// Every vectors file `lib`'s manifest names, with the rows it holds.
fn vectors_files(lib: &Path) -> Vec<(PathBuf, usize)> {
    let m = Manifest::read(lib).unwrap();
    let segment_rows: usize = m.segments.iter().map(|s| s.added).sum();
    let mut files = vec![(lib.join(&m.files.embeddings), m.papers - segment_rows)];
    for s in &m.segments {
        if let Some(name) = &s.embeddings {
            files.push((lib.join(name), s.added));
        }
    }
    files
}

/// Asserts that every vectors file of `lib` is stored as `descr` (`<f2` or `<f4`).
fn stored_as(lib: &Path, dtype: VectorDtype) {
    let m = Manifest::read(lib).unwrap();
    assert_eq!(m.vector_dtype, dtype);
    let (descr, bytes) = match dtype {
        VectorDtype::F32 => ("'descr': '<f4'", 4),
        VectorDtype::F16 => ("'descr': '<f2'", 2),
    };
    for (file, rows) in vectors_files(lib) {
        let header = npy_header(&file, rows, m.model.dim, bytes);
        assert!(header.contains(descr), "{}: {header}", file.display());
    }
    let manifest = std::fs::read_to_string(lib.join("manifest.json")).unwrap();
    // An f32 library's manifest is written as before the option existed.
    assert_eq!(
        manifest.contains("vector_dtype"),
        dtype == VectorDtype::F16,
        "{manifest}"
    );
}

/// Top-10s of `similar` for some papers and of `query` for some texts.
fn answers(lib: &Path, seeds: &[String]) -> Vec<(String, Vec<(String, f64)>)> {
    let mut out = Vec::new();
    for seed in seeds {
        let v = json(lib, &["similar", seed, "-k", "10"]);
        out.push((format!("similar {seed}"), ranked(&v)));
    }
    for text in [
        "speculative decoding for faster language model inference",
        "diffusion models distillation",
        "code generation with reinforcement learning",
    ] {
        let v = json(lib, &["query", text, "-k", "10"]);
        out.push((format!("query {text}"), ranked(&v)));
    }
    out
}

/// Ids of some of `lib`'s papers, spread over its rows.
fn some_ids(lib: &Path) -> Vec<String> {
    let l = Library::open(lib).unwrap();
    (0..l.len())
        .step_by(l.len() / 6)
        .map(|r| l.paper(r).unwrap().id.clone())
        .collect()
}

#[test]
fn an_f16_library_answers_as_the_f32_library_with_half_the_vector_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let f32_lib = tmp.path().join("f32");
    copy_dir(seed_library(), &f32_lib);
    let f16_lib = tmp.path().join("f16");
    ingest(&f16_lib, &[path(&seed_digest()), "--vector-dtype", "f16"]);
    stored_as(&f16_lib, VectorDtype::F16);
    stored_as(&f32_lib, VectorDtype::F32);
    assert_eq!(json(&f16_lib, &["info"])["vector_dtype"], "f16");
    assert_eq!(json(&f32_lib, &["info"])["vector_dtype"], "f32");

    // A later ingest without --vector-dtype keeps the library's: its segment (three new
    // papers, under a tenth of the library) is f16 too.
    let next = tmp.path().join("three.jsonl");
    let papers =
        &papersim::digest::read_path(&day("03-11"), &Default::default()).unwrap()[0].papers;
    let lines: Vec<String> = papers
        .iter()
        .filter(|p| {
            Library::open(&f32_lib)
                .unwrap()
                .row_of_id(&p.id())
                .unwrap()
                .is_none()
        })
        .take(3)
        .map(|p| {
            serde_json::json!({"id": p.id(), "title": p.title, "abstract": p.abstract_text})
                .to_string()
        })
        .collect();
    assert_eq!(lines.len(), 3);
    std::fs::write(&next, lines.join("\n") + "\n").unwrap();
    ingest(&f16_lib, &[path(&next)]);
    ingest(&f32_lib, &[path(&next)]);
    assert!(!Manifest::read(&f16_lib).unwrap().segments.is_empty());
    stored_as(&f16_lib, VectorDtype::F16);
    let (v16, v32): (u64, u64) = [&f16_lib, &f32_lib]
        .map(|lib| {
            vectors_files(lib)
                .iter()
                .map(|(f, _)| std::fs::metadata(f).unwrap().len())
                .sum()
        })
        .into();
    assert!(v16 * 10 < v32 * 6, "f16 {v16} bytes, f32 {v32}");

    // The vectors are the f32 ones to f16 precision.
    let (a, b) = (
        Library::open(&f16_lib).unwrap(),
        Library::open(&f32_lib).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for row in 0..a.len() {
        assert_eq!(a.paper(row).unwrap().id, b.paper(row).unwrap().id);
        let c = common::cosine(&a.vector(row), &b.vector(row));
        assert!(c >= 0.9999, "row {row}: cosine {c}");
    }

    let seeds = some_ids(&f32_lib);
    let (got, want) = (answers(&f16_lib, &seeds), answers(&f32_lib, &seeds));
    for ((what, f16), (_, f32)) in got.iter().zip(&want) {
        agree(what, f16, f32);
    }
    // recommend converts liked papers' vectors too.
    let like = [
        "recommend",
        "--like",
        &seeds[0],
        "--like",
        &seeds[3],
        "-k",
        "10",
    ];
    agree(
        "recommend",
        &ranked(&json(&f16_lib, &like)),
        &ranked(&json(&f32_lib, &like)),
    );
}

#[test]
fn another_vector_dtype_on_a_later_ingest_is_refused_and_index_rebuild_converts() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    copy_dir(seed_library(), &lib);
    let seed = seed_digest();
    let next = day("03-12");

    // Refused before anything is written, naming the library and the way to convert.
    let args = [os("ingest"), os(&next), os("--vector-dtype"), os("f16")];
    let err = refused(
        &lib,
        &args,
        &[
            path(&lib),
            "stores its vectors as f32",
            "index rebuild --vector-dtype f16",
        ],
    );
    assert!(!err.contains("panicked"), "{err}");
    // The library's own dtype, given explicitly, is accepted.
    ingest(&lib, &[path(&seed), "--vector-dtype", "f32"]);
    stored_as(&lib, VectorDtype::F32);
    // A value papersim does not store is a usage error naming the choices.
    let o = run_in(&lib, &["ingest", path(&seed), "--vector-dtype", "f8"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("f32 (the default) or f16"),
        "{}",
        stderr(&o)
    );

    // `index rebuild --vector-dtype f16` converts: f16 files, the same answers.
    let seeds = some_ids(&lib);
    let before = answers(&lib, &seeds);
    let o = run_in(&lib, &["index", "rebuild", "--vector-dtype", "f16"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("vectors stored as f16"),
        "{}",
        stdout(&o)
    );
    stored_as(&lib, VectorDtype::F16);
    for ((what, f16), (_, f32)) in answers(&lib, &seeds).iter().zip(&before) {
        agree(what, f16, f32);
    }
    // Now f16 is the library's: an ingest asking for f16 adds, as f16.
    ingest(&lib, &[path(&next), "--vector-dtype", "f16"]);
    stored_as(&lib, VectorDtype::F16);
    let halves = Library::open(&lib).unwrap();
    // And back to f32: the f16 values, exactly, in f32 files.
    let o = run_in(&lib, &["index", "rebuild", "--vector-dtype", "f32"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stored_as(&lib, VectorDtype::F32);
    let back = Library::open(&lib).unwrap();
    assert_eq!(back.len(), halves.len());
    for row in 0..back.len() {
        assert_eq!(back.vector(row), halves.vector(row), "row {row}");
    }
}

#[test]
fn reembedding_stores_the_vectors_as_asked_or_as_the_library_does() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    copy_dir(seed_library(), &lib);
    let seeds = some_ids(&lib);
    let before = answers(&lib, &seeds);

    // Re-embedded and stored as f16 in one rebuild.
    let args = ["index", "rebuild", "--reembed", "--vector-dtype", "f16"];
    let o = run_in(&lib, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    stored_as(&lib, VectorDtype::F16);
    for ((what, f16), (_, f32)) in answers(&lib, &seeds).iter().zip(&before) {
        agree(what, f16, f32);
    }
    // Re-embedded again without --vector-dtype: the library keeps f16.
    let o = run_in(&lib, &["index", "rebuild", "--reembed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stored_as(&lib, VectorDtype::F16);
    for ((what, f16), (_, f32)) in answers(&lib, &seeds).iter().zip(&before) {
        agree(what, f16, f32);
    }
}
