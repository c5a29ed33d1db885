//! Committing a library: writing a segment or a full generation, then switching the manifest
//! to it (the commit point), then removing the files no manifest in use names. The choice
//! between segment and full generation is [`super::merge_policy`]'s; every write goes
//! through [`crate::directory`].

use std::collections::BTreeSet;
use std::fs;

use super::format::papers_jsonl;
use super::manifest::{
    generation_of, now, GenerationFiles, Manifest, Segment, FORMAT_VERSION, MANIFEST,
};
use super::npy;
use super::record::Paper;
use super::{lib_err, Library};
use crate::directory::{write_atomically, write_durably, WriteLock};
use crate::index::VectorIndex;
use crate::Error;
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
        if !self.dirty {
            return Ok(());
        }
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let generation = self.manifest.generation + 1;
        let full = self.commit_is_full(0);
        // Leftovers of a writer killed at this same generation are replaced, never reused.
        let graph_dir = self.root.join(format!("graph.{generation}"));
        if graph_dir.exists() {
            fs::remove_dir_all(&graph_dir).map_err(|e| Error::io(&graph_dir, e))?;
        }
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
                for name in [
                    format!("papers.{generation}.jsonl"),
                    format!("embeddings.{generation}.npy"),
                    format!("lexical.{generation}.bin"),
                ] {
                    let _ = fs::remove_file(self.root.join(name));
                }
                let _ = fs::remove_dir_all(&graph_dir);
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

    /// Writes generation `generation` as a full one: every paper, vector, the graph (with the
    /// papers added since the base generation inserted) and the lexical index. Returns the
    /// manifest that names it.
    fn write_generation(&mut self, generation: u64) -> Result<Manifest> {
        let files = GenerationFiles {
            papers: format!("papers.{generation}.jsonl"),
            embeddings: format!("embeddings.{generation}.npy"),
            graph: format!("graph.{generation}"),
            lexical: Some(format!("lexical.{generation}.bin")),
        };
        let all: Vec<&Paper> = self.papers.iter().collect();
        write_durably(&self.root.join(&files.papers), &papers_jsonl(&all)?)?;
        write_durably(
            &self.root.join(&files.embeddings),
            &npy::encode_f32(self.vectors.vectors(), self.len(), self.dim()),
        )?;
        let lexical = self.lexical()?.to_bytes();
        if let Some(name) = &files.lexical {
            write_durably(&self.root.join(name), &lexical)?;
        }
        let mut graph = match self.graph.take() {
            Some(g) => g,
            None => self.load_graph()?,
        };
        let covered = graph.len() * self.dim();
        let saved = graph
            .add(&self.vectors.vectors()[covered..])
            .and_then(|()| graph.save(&self.root.join(&files.graph)));
        // Kept whether or not the write worked: the graph is only ever extended, and search
        // covers whatever rows it does not hold exactly.
        let _ = self.graph.set(graph);
        saved?;

        let mut manifest = self.manifest.clone();
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
        let papers = format!("papers.{generation}.jsonl");
        write_durably(&self.root.join(&papers), &papers_jsonl(&records)?)?;
        let embeddings = if added.is_empty() {
            None
        } else {
            let name = format!("embeddings.{generation}.npy");
            let data = &self.vectors.vectors()[self.committed_rows * self.dim()..];
            write_durably(
                &self.root.join(&name),
                &npy::encode_f32(data, added.len(), self.dim()),
            )?;
            Some(name)
        };
        let mut manifest = self.manifest.clone();
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
        let bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| lib_err(&self.root, e.to_string()))?;
        // The commit point: the new manifest replaces the old one whole, or not at all.
        write_atomically(&self.root.join(MANIFEST), &bytes)?;
        Ok(manifest)
    }

    /// Removes generation files that neither the current manifest nor `previous` names (the
    /// previous manifest's are kept for readers that opened it), among them the leftovers of
    /// killed writers. Failures here lose nothing.
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
            if generation_of(&name).is_none() || keep.contains(name.as_str()) {
                continue;
            }
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}
