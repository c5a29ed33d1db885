//! Committing a library: writing a segment or a full generation, then switching the manifest
//! to it (the commit point), then removing the files no manifest in use names. The choice
//! between segment and full generation is [`super::merge_policy`]'s; every write goes
//! through [`crate::directory`].
//!
//! The library owns exactly the files it writes: `manifest.json` (and its `.tmp`), and
//! `papers.<g>.jsonl` (a segment's records), `papers.<g>.jsonl.zst` (a full generation's),
//! `embeddings.<g>.npy`, `lexical.<g>.bin`, `keys.<g>.bin` and, when it stores its graph, the
//! directory `graph.<g>/` holding the files [`crate::index::hnsw::saved_file_names`] lists. Files are created new,
//! never opened where something already is, so no write follows a symlink; only regular
//! files (and graph directories) of exactly those names are ever removed, and anything else
//! in the directory is left as it is.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::format::papers_jsonl;
use super::manifest::{
    generation_of, now, Engine, FileSum, GenerationFiles, Manifest, ModelInfo, Segment,
    FORMAT_VERSION, MANIFEST,
};
use super::record::Paper;
use super::{blocks, keys, npy};
use super::{lib_err, Library};
use crate::directory::{file_kind, remove_leftover, write_atomically, write_new, WriteLock};
use crate::index::hnsw::saved_file_names;
use crate::index::{HnswParams, VectorIndex};
use crate::Result;

impl Library {
    /// Writes the changes and switches the manifest to them. The caller must hold the write
    /// lock ([`WriteLock`]).
    ///
    /// Usually that is a small segment (the new papers, their vectors, and the records of
    /// papers seen again), so that an ingest writes what it adds, not the whole library. When
    /// the papers outside the base generation pass [`COMPACT_FRACTION`] of it, or there are
    /// [`MAX_SEGMENTS`] segments, or the model or index changed, it writes a full generation
    /// instead: the new papers are inserted into the graph and everything is written afresh.
    pub fn commit(&mut self, _lock: &WriteLock) -> Result<()> {
        self.writable("commit")?;
        if !self.dirty {
            return Ok(());
        }
        if let Some(engine) = self.manifest.engine.as_ref().filter(|_| !self.is_empty()) {
            // Its papers live in the engine: files here would be a second, diverging copy.
            return Err(lib_err(
                &self.root,
                format!(
                    "keeps its papers in the {} collection `{}`, not in this directory; \
                     this command cannot write to it",
                    engine.kind, engine.collection
                ),
            ));
        }
        if self.manifest.generation == 0 {
            self.write_empty_manifest()?;
        }
        let generation = self.manifest.generation + 1;
        let full = self.commit_is_full(0);
        // Leftovers of a writer killed at this same generation are removed (they are papersim's
        // own names and no manifest names them), never reused; anything else there is refused.
        let names = generation_names(generation);
        for name in names.files() {
            remove_leftover(&self.root.join(name))?;
        }
        let graph_dir = self.root.join(&names.graph);
        remove_graph_dir(&graph_dir)?;
        let written = if full {
            self.write_generation(generation)
        } else {
            self.write_segment(generation)
        };
        let manifest = match written.and_then(|m| self.switch_manifest(m, generation)) {
            Ok(manifest) => manifest,
            Err(e) => {
                // A failed write (disk full, I/O error) leaves the library as it was: the
                // manifest still names generation g, and g+1's partial files are removed so
                // that they do not fill the disk further (a failed manifest switch removes its
                // own temporary file).
                // They are the files this commit created: no name was taken when it started.
                for name in names.files() {
                    let _ = remove_leftover(&self.root.join(name));
                }
                let _ = remove_graph_dir(&graph_dir);
                return Err(e);
            }
        };

        let previous = std::mem::replace(&mut self.manifest, manifest);
        if full {
            self.base_rows = self.len();
            self.full_rewrite = false;
        }
        self.committed_rows = self.len();
        self.changed.clear();
        self.dirty = false;
        self.remove_stale_files(&previous);
        Ok(())
    }

    /// Creates the library of a new directory `root` whose papers and vectors live in `engine`
    /// (`papersim init --engine qdrant`): its manifest, of generation 0 and naming no file,
    /// records the model and the engine. Refused where a library (or anything not papersim's)
    /// already is.
    pub fn create_remote(root: &Path, model: ModelInfo, engine: Engine, wait: bool) -> Result<()> {
        let (_lock, existing) = Library::lock(root, wait, None)?;
        if existing.is_some() {
            return Err(lib_err(
                root,
                "is a library already; `papersim init` creates a new one in a new or empty directory",
            ));
        }
        let mut lib = Library::create(root, model, HnswParams::default())?;
        lib.manifest.engine = Some(engine);
        lib.write_empty_manifest()
    }

    /// Writes generation `generation` as a full one: every paper, vector, the lexical index,
    /// and the graph (with the papers added since the base generation inserted) when the
    /// library stores one. Returns the manifest that names it.
    fn write_generation(&mut self, generation: u64) -> Result<Manifest> {
        self.verify_vectors()?;
        let names = generation_names(generation);
        let files = GenerationFiles {
            papers: names.compressed_papers,
            embeddings: names.embeddings,
            graph: self.manifest.store_graph.then_some(names.graph),
            lexical: Some(names.lexical),
            keys: Some(names.keys),
        };
        let mut manifest = self.manifest.clone();
        manifest.checksums.clear();
        let all: Vec<&Paper> = self.papers.iter().collect();
        let root = &self.root;
        let mut write =
            |name: &str, bytes: &[u8]| write_data_file(root, &mut manifest, name, bytes);
        let jsonl = papers_jsonl(&all)?;
        let framed =
            blocks::compress(&jsonl).map_err(|e| crate::Error::io(root.join(&files.papers), e))?;
        write(&files.papers, &framed.bytes)?;
        if let Some(name) = &files.keys {
            write(name, &keys::encode(&jsonl, &all, Some(&framed.starts)))?;
        }
        drop((jsonl, framed));
        write(
            &files.embeddings,
            &npy::encode(
                self.vector_dtype(),
                &self.vectors.vectors(),
                self.len(),
                self.dim(),
            ),
        )?;
        let lexical = self.lexical()?.to_bytes()?;
        if let Some(name) = &files.lexical {
            write(name, &lexical)?;
        }
        if let Some(name) = &files.graph {
            let mut graph = match self.graph.take() {
                Some(g) => g,
                None => self.load_graph()?,
            };
            let covered = graph.len();
            let saved = graph
                .add(&self.vectors.rows_from(covered))
                .and_then(|()| graph.save(&self.root.join(name)));
            // Kept whether or not the write worked: the graph is only ever extended, and
            // search covers whatever rows it does not hold exactly.
            let _ = self.graph.set(graph);
            saved?;
        }

        manifest.files = files;
        manifest.segments.clear();
        Ok(manifest)
    }

    /// Writes generation `generation` as a segment on top of the current manifest: the papers
    /// added since the last commit (and their vectors), then the records of committed papers
    /// that changed.
    fn write_segment(&self, generation: u64) -> Result<Manifest> {
        let added: Vec<&Paper> = self.papers[self.committed_rows..].iter().collect();
        let mut records = added.clone();
        records.extend(self.changed.iter().map(|&r| &self.papers[r]));
        let GenerationNames {
            papers, embeddings, ..
        } = generation_names(generation);
        let mut manifest = self.manifest.clone();
        let root = &self.root;
        let mut write =
            |name: &str, bytes: &[u8]| write_data_file(root, &mut manifest, name, bytes);
        write(&papers, &papers_jsonl(&records)?)?;
        let embeddings = if added.is_empty() {
            None
        } else {
            let data = self.vectors.rows_from(self.committed_rows);
            write(
                &embeddings,
                &npy::encode(self.vector_dtype(), &data, added.len(), self.dim()),
            )?;
            Some(embeddings)
        };
        manifest.segments.push(Segment {
            generation,
            papers,
            embeddings,
            added: added.len(),
            updated: self.changed.len(),
        });
        Ok(manifest)
    }

    /// Stamps `manifest` as generation `generation` and renames it into place: the commit point.
    fn switch_manifest(&self, mut manifest: Manifest, generation: u64) -> Result<Manifest> {
        manifest.format_version = FORMAT_VERSION;
        manifest.generation = generation;
        manifest.papers = self.papers.len();
        manifest.updated = now();
        let named: BTreeSet<String> = manifest.file_names().map(str::to_string).collect();
        manifest.checksums.retain(|name, _| named.contains(name));
        // The commit point: the new manifest replaces the old one whole, or not at all.
        self.write_manifest(&manifest)?;
        Ok(manifest)
    }

    /// Renames `manifest` into place as `manifest.json` (see [`write_atomically`]).
    fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(manifest).map_err(|e| lib_err(&self.root, e.to_string()))?;
        write_atomically(&self.root.join(MANIFEST), &bytes)
    }

    /// Writes the manifest of an empty library (generation 0) before a new library's first
    /// commit writes anything else. From then on the directory is a library: a first ingest
    /// killed halfway leaves an empty library whose leftovers the next writer removes, and
    /// a directory that holds files but no manifest is never taken for a new library (see
    /// [`Library::lock`]).
    fn write_empty_manifest(&self) -> Result<()> {
        if Library::exists(&self.root) {
            return Ok(());
        }
        let mut manifest = self.manifest.clone();
        manifest.papers = 0;
        manifest.digests.clear();
        manifest.segments.clear();
        manifest.checksums.clear();
        manifest.format_version = FORMAT_VERSION;
        manifest.updated = now();
        self.write_manifest(&manifest)
    }

    /// Removes generation files that neither the current manifest nor `previous` names (the
    /// previous manifest's are kept for readers that opened it), among them the leftovers of
    /// killed writers: regular files and graph directories of papersim's exact names only.
    /// Failures here lose nothing.
    fn remove_stale_files(&self, previous: &Manifest) {
        let keep: BTreeSet<&str> = self
            .manifest
            .file_names()
            .chain(previous.file_names())
            .collect();
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some((_, is_graph)) = generation_of(&name) else {
                continue;
            };
            if keep.contains(name.as_str()) {
                continue;
            }
            let path = entry.path();
            let _ = if is_graph {
                remove_graph_dir(&path)
            } else {
                remove_leftover(&path).map(|_| ())
            };
        }
    }
}

/// Creates the data file `name` of a generation (never over anything, see
/// [`write_new`]) and records its length and CRC-32 in `manifest`, which will name it.
fn write_data_file(root: &Path, manifest: &mut Manifest, name: &str, bytes: &[u8]) -> Result<()> {
    write_new(&root.join(name), bytes)?;
    manifest
        .checksums
        .insert(name.to_string(), FileSum::of(bytes));
    Ok(())
}

/// The names generation `generation` may write.
struct GenerationNames {
    /// A segment's records.
    papers: String,
    /// A full generation's records (see [`blocks`]).
    compressed_papers: String,
    embeddings: String,
    lexical: String,
    keys: String,
    /// A directory.
    graph: String,
}

impl GenerationNames {
    /// The regular files' names.
    fn files(&self) -> [&String; 5] {
        [
            &self.papers,
            &self.compressed_papers,
            &self.embeddings,
            &self.lexical,
            &self.keys,
        ]
    }
}

fn generation_names(generation: u64) -> GenerationNames {
    GenerationNames {
        papers: format!("papers.{generation}.jsonl"),
        compressed_papers: format!("papers.{generation}.jsonl.zst"),
        embeddings: format!("embeddings.{generation}.npy"),
        lexical: format!("lexical.{generation}.bin"),
        keys: format!("keys.{generation}.bin"),
        graph: format!("graph.{generation}"),
    }
}

/// Removes a graph directory papersim wrote: the files an index saves, then the directory,
/// which must then be empty. A symlink, a file, or a directory holding anything else is not
/// papersim's and is refused (nothing in it is removed but papersim's own file names).
fn remove_graph_dir(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::io(path, e)),
        Ok(m) if m.file_type().is_dir() => {
            for name in saved_file_names() {
                remove_leftover(&path.join(name))?;
            }
            fs::remove_dir(path).map_err(|e| {
                lib_err(
                    path,
                    format!("holds files papersim did not write ({e}); move them away"),
                )
            })
        }
        Ok(m) => Err(lib_err(
            path,
            format!(
                "is a {} where papersim writes a graph directory; papersim never replaces what it did not create, so move it away",
                file_kind(&m.file_type())
            ),
        )),
    }
}
