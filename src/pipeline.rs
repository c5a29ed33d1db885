//! The stages composed: the work that needs both the encoder and the library — an ingest
//! (planned by the library, embedded here, applied and committed by the library under its
//! lock), a re-embedding, and checking that a model fits a library. The binary calls these,
//! and so will any other front end (a server), so that the write protocol lives in one place.
//!
//! May import: `crate::encode`, `crate::library`, `crate::index`, `crate::digest`,
//! `crate::progress`, `crate::error`. Never `crate::rank`.

use std::path::Path;

use crate::digest::Digest;
use crate::encode::model::ModelFiles;
use crate::encode::Embedder;
use crate::feedback::{Log, Op, Record};
use crate::index::{HnswParams, VectorDtype};
use crate::library::{export, IngestPlan, IngestReport, Library, ModelInfo};
use crate::progress::Progress;
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
    crate::library::Manifest::read(dir)?;
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
