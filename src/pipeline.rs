//! The stages composed: the work that needs both the encoder and the library — an ingest
//! (planned by the library, embedded here, applied and committed by the library under its
//! lock), a re-embedding, and checking that a model fits a library. The binary calls these,
//! and so will any other front end (a server), so that the write protocol lives in one place.
//!
//! A library whose papers live in a Qdrant collection (`crate::store`) is ingested into the
//! same way: the papers the digests may touch are read from the collection into a library in
//! memory, the ingest is planned and applied there by the same identity rules, and the papers
//! it added or changed are written back, acknowledged batch by batch ([`init_remote`],
//! [`export_to_qdrant`]).
//!
//! May import: `crate::encode`, `crate::library`, `crate::index`, `crate::digest`,
//! `crate::progress`, `crate::error`, `crate::store`, `crate::feedback`, `crate::directory`.
//! Never `crate::rank`.

use std::path::Path;

use crate::digest::Digest;
use crate::encode::model::ModelFiles;
use crate::encode::Embedder;
use crate::feedback::{Log, Op, Record};
use crate::index::{HnswParams, VectorDtype};
use crate::library::{export, Engine, IngestPlan, IngestReport, Library, Manifest, ModelInfo};
use crate::progress::Progress;
use crate::store::qdrant::{point_id, QdrantStore};
use crate::{Error, Result};

/// What a library records of the model its vectors came from.
pub fn model_info(files: &ModelFiles) -> Result<ModelInfo> {
    Ok(ModelInfo {
        id: files.id.clone(),
        fingerprint: files.fingerprint()?,
        dim: files.dim(),
        pooling: files.pooling.name().to_string(),
        max_seq_length: files.max_seq_length,
    })
}

/// Refuses an embedder whose vectors the library cannot take or compare with its own.
pub fn check_model(lib: &Library, embedder: &Embedder) -> Result<()> {
    fits(lib, embedder.files(), &model_info(embedder.files())?).map(|_| ())
}

/// Checks that `model` (the [`model_info`] of `files`) is the library's model. A library
/// written before the fingerprint covered the weights records the legacy fingerprint
/// ([`ModelFiles::legacy_fingerprint`]); the same model is accepted for it, and `Ok(true)`
/// says that the caller should record the full fingerprint at its next commit
/// ([`Library::record_model_fingerprint`]).
fn fits(lib: &Library, files: &ModelFiles, model: &ModelInfo) -> Result<bool> {
    let recorded = &lib.manifest().model.fingerprint;
    if *recorded != model.fingerprint && *recorded == files.legacy_fingerprint()? {
        lib.check_model(&ModelInfo {
            fingerprint: recorded.clone(),
            ..model.clone()
        })?;
        return Ok(true);
    }
    lib.check_model(model)?;
    Ok(false)
}

/// [`fits`], and when the library records the legacy fingerprint, the full one in its place
/// (written by the commit that follows).
fn fit_and_upgrade(lib: &mut Library, files: &ModelFiles, model: &ModelInfo) -> Result<()> {
    if fits(lib, files, model)? {
        lib.record_model_fingerprint(model.fingerprint.clone());
    }
    Ok(())
}

/// Adds `digests` to the library in `dir` (creating it on first use), embedding only the
/// papers it does not hold yet.
///
/// `vector_dtype` is how a new library stores its vectors (f32 when `None`); an existing
/// library that holds papers keeps its own, and one of another dtype than a `Some` given is
/// refused before anything is written ([`Library::set_vector_dtype`]).
///
/// `load_embedder` is given the library's model id (`None` for a new library) and returns the
/// encoder; everything that can fail without writing — the library, the model, whether they
/// match — is checked before the write lock is taken, so such a failure leaves the directory
/// as it was. With `wait`, a busy library is waited for instead of
/// refused. `reuse`: vectors the caller already has for every paper of `digests`, row-major in
/// digest order (as `triage --ingest` has after ranking them), taken instead of embedding.
#[allow(clippy::too_many_arguments)]
pub fn ingest(
    dir: &Path,
    digests: &[Digest],
    wait: bool,
    vector_dtype: Option<VectorDtype>,
    reuse: Option<&[f32]>,
    load_embedder: impl FnOnce(Option<&str>) -> Result<Embedder>,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let opened = if Library::exists(dir) {
        let mut lib = Library::open(dir)?;
        take_dtype(&mut lib, vector_dtype)?;
        Some(lib)
    } else {
        None
    };
    let embedder = load_embedder(opened.as_ref().map(|l| l.manifest().model.id.as_str()))?;
    let model = model_info(embedder.files())?;
    if let Some(lib) = &opened {
        fits(lib, embedder.files(), &model)?;
        if lib.manifest().engine.is_some() {
            return ingest_remote(lib, digests, wait, progress, |plan, staged| {
                vectors_for(plan, digests, staged.dim(), reuse, &embedder, progress)
            });
        }
    }
    let (lock, lib) = Library::lock(dir, wait, opened)?;
    let mut lib = match lib {
        Some(mut lib) => {
            // Another writer may have created or re-embedded it while we waited.
            fit_and_upgrade(&mut lib, embedder.files(), &model)?;
            lib
        }
        None => Library::create(dir, model, HnswParams::default())?,
    };
    // Again under the lock: another writer may have created the library meanwhile.
    take_dtype(&mut lib, vector_dtype)?;
    let plan = lib.plan_ingest(digests)?;
    let vectors = vectors_for(&plan, digests, lib.dim(), reuse, &embedder, progress)?;
    let report = lib.apply_ingest(plan, &vectors)?;
    lib.commit(&lock)?;
    Ok(report)
}

/// Adds `digests` to the library in `dir` with vectors embedded elsewhere: those of the matrix
/// at `matrix` that `papersim embed -o` wrote (its sidecar found by
/// [`export::sidecar_path`]). No model is loaded: a GPU machine embeds, a laptop serves.
///
/// A new library is created with the matrix's model; an existing one must have been embedded
/// with the same model ([`export::Exported::check_model`]: fingerprint, dimension, pooling,
/// sequence length). Every paper the ingest adds takes the row with its id and the hash of its
/// text ([`export::Exported::vectors_for`]); a paper without one refuses the import (papersim
/// does not fall back to embedding). All of this, and the matrix itself, is checked before the
/// write lock is taken, so a refused import leaves the directory as it was; under the lock it
/// is checked again if another writer committed meanwhile.
///
/// `vector_dtype` is as for [`ingest`].
pub fn ingest_embedded(
    dir: &Path,
    digests: &[Digest],
    wait: bool,
    vector_dtype: Option<VectorDtype>,
    matrix: &Path,
) -> Result<IngestReport> {
    let exported = export::read(matrix)?;
    let mut lib = if Library::exists(dir) {
        let lib = Library::open(dir)?;
        exported.check_model(&lib)?;
        if lib.manifest().engine.is_some() {
            return ingest_remote(
                &lib,
                digests,
                wait,
                &crate::progress::NoProgress,
                |plan, _| exported.vectors_for(plan, digests),
            );
        }
        lib
    } else {
        Library::create(dir, exported.model.clone(), HnswParams::default())?
    };
    take_dtype(&mut lib, vector_dtype)?;
    let plan = lib.plan_ingest(digests)?;
    let vectors = exported.vectors_for(&plan, digests)?;
    let planned = lib.manifest().clone();
    let (lock, locked) = Library::lock(dir, wait, Some(lib))?;
    let mut lib = locked.ok_or_else(|| Error::Library {
        path: dir.to_path_buf(),
        reason: "disappeared while the import waited for the write lock".into(),
    })?;
    take_dtype(&mut lib, vector_dtype)?;
    let (plan, vectors) = if *lib.manifest() == planned {
        (plan, vectors)
    } else {
        // Another writer committed (or created the library) meanwhile.
        exported.check_model(&lib)?;
        let plan = lib.plan_ingest(digests)?;
        let vectors = exported.vectors_for(&plan, digests)?;
        (plan, vectors)
    };
    let report = lib.apply_ingest(plan, &vectors)?;
    lib.commit(&lock)?;
    Ok(report)
}

/// An ingest into the library `lib` (opened from its directory: the manifest) whose papers
/// live in a Qdrant collection. Under the directory's write lock (one papersim writer per
/// library directory), the stored papers that `digests` may merge with — by id, alias or
/// normalised title — are read into a library in memory, the ingest is planned and applied
/// there as on a local library, `vectors` gives the new papers' vectors (embedded, reused or
/// imported), and the papers added or changed are written, each batch acknowledged. A
/// re-run after a failure converges: point ids are derived from paper ids, so a paper written
/// twice is one point.
fn ingest_remote(
    lib: &Library,
    digests: &[Digest],
    wait: bool,
    progress: &dyn Progress,
    vectors: impl FnOnce(&IngestPlan, &Library) -> Result<Vec<f32>>,
) -> Result<IngestReport> {
    let store = QdrantStore::open(lib.root(), lib.manifest().clone(), None)?;
    let _lock = crate::directory::WriteLock::acquire(lib.root(), wait)?;
    let mut ids = Vec::new();
    let mut titles = Vec::new();
    for p in digests.iter().flat_map(|d| &d.papers) {
        let id = p.id();
        let bare = crate::paper::strip_arxiv_version(&id).to_string();
        if bare != id {
            ids.push(bare);
        }
        ids.push(id);
        titles.push(crate::paper::normalize_title(&p.title));
    }
    let mut staged = store.staging(&ids, &titles)?;
    let plan = staged.lib.plan_ingest(digests)?;
    let vectors = vectors(&plan, &staged.lib)?;
    let mut report = staged.lib.apply_ingest(plan, &vectors)?;
    let rows = staged.lib.touched_rows();
    let (points, staged_lib) = (&staged.points, &staged.lib);
    let point_of = |row: usize| -> Result<String> {
        match points.get(row) {
            Some(p) => Ok(p.clone()),
            None => Ok(point_id(&staged_lib.paper(row)?.id)),
        }
    };
    store.write_rows(staged_lib, &rows, &point_of, false, progress)?;
    report.papers_total = store.count()?;
    Ok(report)
}

/// Creates the library of a new directory `dir` whose papers and vectors live in the Qdrant
/// collection `engine` names (`papersim init --engine qdrant`): the collection is created
/// first (or an existing one of the model's dimension taken), so that an unreachable cluster
/// or a refused key leaves the directory untouched; then the manifest records the model and
/// the engine.
pub fn init_remote(
    dir: &Path,
    model: ModelInfo,
    engine: Engine,
    api_key: Option<&str>,
    wait: bool,
) -> Result<()> {
    if Library::exists(dir) {
        return Err(Error::Library {
            path: dir.to_path_buf(),
            reason: "is a library already; `papersim init` creates a new one in a new or empty directory".into(),
        });
    }
    let manifest = Library::create(dir, model.clone(), HnswParams::default())?
        .manifest()
        .clone();
    let store = QdrantStore::open(
        dir,
        Manifest {
            engine: Some(engine.clone()),
            ..manifest
        },
        api_key,
    )?;
    store.create_collection(model.dim)?;
    Library::create_remote(dir, model, engine, wait)
}

/// What [`export_to_qdrant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Papers of the local library.
    pub papers: usize,
    /// Papers written now (the others were in the collection already: a resumed export).
    pub written: usize,
    /// Papers in the collection afterwards.
    pub collection_papers: usize,
}

/// Moves the local library in `source` into the Qdrant collection `engine` names, as the
/// Qdrant library `target` (created on first use, with the source's model, and the reader's
/// feedback log copied when the target has none). Papers are written in acknowledged batches
/// with progress; points the collection already holds are skipped, so an interrupted export
/// resumes where it stopped. The source is only read.
pub fn export_to_qdrant(
    source: &Path,
    target: &Path,
    engine: Engine,
    api_key: Option<&str>,
    wait: bool,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    let lib = Library::open_for_reading(source)?;
    if let Some(e) = &lib.manifest().engine {
        return Err(Error::Library {
            path: source.to_path_buf(),
            reason: format!(
                "keeps its papers in the {} collection `{}` already; export moves a local library",
                e.kind, e.collection
            ),
        });
    }
    if Library::exists(target) {
        let existing = Manifest::read(target)?;
        let same = existing
            .engine
            .as_ref()
            .is_some_and(|e| e.kind == engine.kind && e.collection == engine.collection);
        if !same {
            return Err(Error::Library {
                path: target.to_path_buf(),
                reason: format!(
                    "is a library already, not one kept in the {} collection `{}`; export into a new directory (or the one a previous export of this collection made, to resume it)",
                    engine.kind, engine.collection
                ),
            });
        }
        Library::open(target)?.check_model(&lib.manifest().model)?;
    } else {
        init_remote(
            target,
            lib.manifest().model.clone(),
            engine.clone(),
            api_key,
            wait,
        )?;
    }
    let manifest = Manifest::read(target)?;
    let store = QdrantStore::open(target, manifest, api_key)?;
    // A resumed export may find the collection gone or never made (a failed init).
    store.create_collection(lib.dim())?;
    let log = source.join(crate::feedback::LOG);
    let copy = target.join(crate::feedback::LOG);
    if log.is_file() && !copy.exists() {
        let bytes = std::fs::read(&log).map_err(|e| Error::io(&log, e))?;
        crate::directory::write_new(&copy, &bytes)?;
    }
    let _lock = crate::directory::WriteLock::acquire(target, wait)?;
    let rows: Vec<usize> = (0..lib.len()).collect();
    let point_of = |row: usize| -> Result<String> { Ok(point_id(&lib.paper(row)?.id)) };
    let written = store.write_rows(&lib, &rows, &point_of, true, progress)?;
    Ok(ExportReport {
        papers: lib.len(),
        written,
        collection_papers: store.count()?,
    })
}

/// Gives a new library the vector dtype asked for; refuses one that holds papers of another.
fn take_dtype(lib: &mut Library, dtype: Option<VectorDtype>) -> Result<()> {
    match dtype {
        Some(dtype) => lib.set_vector_dtype(dtype),
        None => Ok(()),
    }
}

/// Adds `digests` to an open library, embedding its new papers with `embedder` (checked
/// against the library first). Nothing is written until `Library::commit`: for tools and
/// tests that hold the library (and its lock) themselves.
pub fn ingest_into(
    lib: &mut Library,
    digests: &[Digest],
    embedder: &Embedder,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    fit_and_upgrade(lib, embedder.files(), &model_info(embedder.files())?)?;
    let plan = lib.plan_ingest(digests)?;
    let vectors = vectors_for(&plan, digests, lib.dim(), None, embedder, progress)?;
    lib.apply_ingest(plan, &vectors)
}

/// The vectors of a plan's new papers: taken from `reuse` (one per paper of `digests`, in
/// digest order) when given, else embedded.
fn vectors_for(
    plan: &IngestPlan,
    digests: &[Digest],
    dim: usize,
    reuse: Option<&[f32]>,
    embedder: &Embedder,
    progress: &dyn Progress,
) -> Result<Vec<f32>> {
    match reuse {
        Some(all) => {
            let offsets: Vec<usize> = digests
                .iter()
                .scan(0, |at, d| {
                    let first = *at;
                    *at += d.papers.len();
                    Some(first)
                })
                .collect();
            let total = digests.iter().map(|d| d.papers.len()).sum::<usize>();
            if all.len() != total * dim {
                return Err(Error::InvalidInput(format!(
                    "{total} digest papers but {} vector values to reuse (dimension {dim})",
                    all.len()
                )));
            }
            let mut picked = Vec::with_capacity(plan.new_papers().len() * dim);
            for n in plan.new_papers() {
                let i = offsets[n.source.0] + n.source.1;
                picked.extend_from_slice(&all[i * dim..(i + 1) * dim]);
            }
            Ok(picked)
        }
        None if plan.new_papers().is_empty() => Ok(Vec::new()),
        None => {
            let texts = plan.texts();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Ok(embedder.embed_with(&refs, progress)?.0.data)
        }
    }
}

/// Changes to the HNSW parameters and to whether the graph is stored; `None` keeps the
/// library's.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexChange {
    pub m: Option<usize>,
    pub ef_construction: Option<usize>,
    pub ef_search: Option<usize>,
    pub store_graph: Option<bool>,
    /// Store the vectors as this dtype from now on (converting them).
    pub vector_dtype: Option<VectorDtype>,
}

impl IndexChange {
    /// `params` with the parameters this change sets replaced.
    pub fn apply(&self, params: HnswParams) -> HnswParams {
        HnswParams {
            m: self.m.unwrap_or(params.m),
            ef_construction: self.ef_construction.unwrap_or(params.ef_construction),
            ef_search: self.ef_search.unwrap_or(params.ef_search),
        }
    }
}

/// Rebuilds the indexes of the library in `dir` with `change` applied to its parameters, after
/// re-embedding every paper with the encoder `reembed` returns, if given (to switch models).
/// Returns the number of papers, the parameters now in force and whether the graph is stored.
pub fn rebuild_index(
    dir: &Path,
    wait: bool,
    change: IndexChange,
    reembed: Option<impl FnOnce() -> Result<Embedder>>,
    progress: &dyn Progress,
) -> Result<(usize, HnswParams, bool)> {
    // The values asked for, checked before anything is locked, read or re-embedded; and a
    // directory without a library is refused before the lock would create it.
    if let Some(o) = change.apply(HnswParams::default()).out_of_bounds() {
        return Err(Error::InvalidInput(format!("{}: {o}", o.option)));
    }
    if let Some(e) = Manifest::read(dir)?.engine {
        // Its index is the collection's (Qdrant builds its own graphs): nothing here to rebuild.
        return Err(Error::Library {
            path: dir.to_path_buf(),
            reason: format!(
                "keeps its papers in the {} collection `{}`, which indexes them itself; `index rebuild` works on local libraries",
                e.kind, e.collection
            ),
        });
    }
    let lock = crate::directory::WriteLock::acquire(dir, wait)?;
    let mut lib = Library::open_to_reindex(dir, |params| change.apply(params))?;
    let params = lib.manifest().index;
    let store_graph = change.store_graph.unwrap_or(lib.stores_graph());
    match reembed {
        Some(load) => {
            let embedder = load()?;
            let texts = lib.texts();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let (embedded, _) = embedder.embed_with(&refs, progress)?;
            let model = model_info(embedder.files())?;
            // Stored as asked from the start, so the indexes are rebuilt once.
            let dtype = change.vector_dtype.unwrap_or(lib.vector_dtype());
            lib.replace_vectors(model, embedded.data, dtype, params, store_graph)?;
        }
        None => match change.vector_dtype {
            Some(dtype) => lib.convert_vectors(dtype, params, store_graph)?,
            None => lib.rebuild_index(params, store_graph)?,
        },
    }
    lib.commit(&lock)?;
    Ok((lib.len(), params, store_graph))
}

/// The records that `op` on `references` appends to the reader's feedback log: each reference
/// resolved in the library to its paper's id and title, all of them before anything is written
/// (one unknown paper writes nothing). A paper of the profile that this library does not hold
/// (liked in another library, or imported without an abstract) can still be forgotten by its id.
pub fn feedback_records(
    lib: &Library,
    log: &Log,
    op: Op,
    references: &[String],
    tag: Option<&str>,
) -> Result<Vec<Record>> {
    let mut records = Vec::with_capacity(references.len());
    for reference in references {
        let record = match lib.resolve(reference) {
            Ok(row) => {
                let p = lib.paper(row)?;
                Record::now(op, &p.id, &p.title, tag)
            }
            Err(e) if op == Op::Forget => {
                let fb = log.feedback()?;
                let known = fb
                    .likes()
                    .into_values()
                    .flatten()
                    .chain(fb.dislikes())
                    .find(|m| m.id == *reference);
                match known {
                    Some(m) => Record::now(op, &m.id, &m.title, tag),
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        records.push(record);
    }
    Ok(records)
}
