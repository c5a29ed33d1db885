//! Adding papers, in two phases, so that the library never embeds: [`Library::plan_ingest`]
//! merges the digests against the stored papers and says which new papers need vectors; the
//! caller embeds those texts (or reuses vectors it already has) and hands them to
//! [`Library::apply_ingest`], which adds the papers and the sightings. Nothing is written
//! until [`Library::commit`].

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::manifest::{DigestRecord, ModelInfo};
use super::record::{Paper, SeenIn};
use super::{lib_err, Library};
use crate::digest::Digest;
use crate::index::lexical::paper_text;
use crate::index::{validate_vectors, ExactIndex, HnswParams, VectorIndex};
use crate::paper::normalize_title;
use crate::{Error, Result};

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub read: usize,
    pub added: usize,
    pub already_present: usize,
    /// Entries of the digests that were not read as papers, each saying why.
    pub skipped: Vec<String>,
    /// Problems with papers that were read (and added or merged all the same).
    pub warnings: Vec<String>,
    pub digests: Vec<DigestRecord>,
    pub papers_total: usize,
}

/// A paper of the digests that the library does not hold yet.
#[derive(Debug, Clone)]
pub struct NewPaper {
    /// The record it will be stored as (its sightings in these digests included).
    pub paper: Paper,
    /// Where it was first read: (index into the planned digests, index into that digest's
    /// papers), so that a caller holding vectors of the digests' papers can reuse them.
    pub source: (usize, usize),
}

/// A new sighting of a stored paper, with what the digest may add to its record.
#[derive(Debug, Clone)]
struct Sighting {
    row: usize,
    seen: SeenIn,
    url: Option<String>,
    categories: Vec<String>,
}

/// The first phase of an ingest: what the digests add to the library, computed without
/// changing it. The new papers need vectors, in the order of [`IngestPlan::new_papers`].
#[derive(Debug, Clone)]
pub struct IngestPlan {
    new: Vec<NewPaper>,
    sightings: Vec<Sighting>,
    /// What the ingest does, its digests' records included (`papers_total` is filled in when
    /// applied).
    report: IngestReport,
    /// The library's size and generation when planned: a plan applies to that state only.
    planned_at: (usize, u64),
}

impl IngestPlan {
    /// The papers to add, each needing one vector.
    pub fn new_papers(&self) -> &[NewPaper] {
        &self.new
    }

    /// The texts to embed for the new papers, in order.
    pub fn texts(&self) -> Vec<String> {
        self.new.iter().map(|n| n.paper.text()).collect()
    }

    /// What the ingest will have done once applied (`papers_total` is filled in then).
    pub fn report(&self) -> &IngestReport {
        &self.report
    }
}

/// A digest's display name: its file name (or `<stdin>`).
fn digest_name(source: &str) -> String {
    Path::new(source)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| source.to_string())
}

/// Which paper a digest's paper is: a stored row or one planned earlier in the same ingest.
#[derive(Clone, Copy)]
enum Target {
    Stored(usize),
    New(usize),
}

impl Library {
    /// Phase one of an ingest: merges `digests` against the stored papers (by id, else by
    /// normalised title) without changing the library. A paper seen again gets a sighting;
    /// a new one is listed with the text to embed.
    ///
    /// When the commit after this ingest will write a full generation, the stored graph and
    /// lexical index are read here, before the (slow) embedding, so that a damaged file fails
    /// fast.
    pub fn plan_ingest(&self, digests: &[Digest]) -> Result<IngestPlan> {
        let mut report = IngestReport::default();
        let mut new: Vec<NewPaper> = Vec::new();
        let mut new_by_id: HashMap<String, usize> = HashMap::new();
        let mut new_by_title: HashMap<String, usize> = HashMap::new();
        let mut sightings = Vec::new();
        for (d, digest) in digests.iter().enumerate() {
            report.skipped.extend(digest.skipped.iter().cloned());
            report.warnings.extend(digest.warnings.iter().cloned());
            let date = digest.date.map(|d| d.format("%Y-%m-%d").to_string());
            let mut record = DigestRecord {
                source: digest_name(&digest.source),
                date: date.clone(),
                papers: digest.papers.len(),
                added: 0,
            };
            for (i, dp) in digest.papers.iter().enumerate() {
                report.read += 1;
                let id = dp.id();
                let title = normalize_title(&dp.title);
                let seen = SeenIn {
                    digest: record.source.clone(),
                    date: date.clone(),
                };
                let target = self
                    .by_id
                    .get(&id)
                    .map(|&r| Target::Stored(r))
                    .or_else(|| new_by_id.get(&id).map(|&n| Target::New(n)))
                    .or_else(|| self.by_title.get(&title).map(|&r| Target::Stored(r)))
                    .or_else(|| new_by_title.get(&title).map(|&n| Target::New(n)));
                match target {
                    Some(Target::Stored(row)) => {
                        report.already_present += 1;
                        sightings.push(Sighting {
                            row,
                            seen,
                            url: dp.url.clone(),
                            categories: dp.categories.clone(),
                        });
                    }
                    Some(Target::New(n)) => {
                        report.already_present += 1;
                        merge_sighting(&mut new[n].paper, seen, &dp.url, &dp.categories);
                    }
                    None => {
                        let n = new.len();
                        new_by_id.insert(id.clone(), n);
                        new_by_title.entry(title).or_insert(n);
                        new.push(NewPaper {
                            paper: Paper {
                                id,
                                title: dp.title.clone(),
                                abstract_text: dp.abstract_text.clone(),
                                date: dp.date.clone().or_else(|| date.clone()),
                                url: dp.url.clone(),
                                authors: dp.authors.clone(),
                                categories: dp.categories.clone(),
                                seen_in: vec![seen],
                            },
                            source: (d, i),
                        });
                        record.added += 1;
                    }
                }
            }
            report.digests.push(record);
        }
        report.added = new.len();
        if !new.is_empty() && self.commit_is_full(new.len()) {
            self.hnsw()?;
            self.lexical()?;
        }
        Ok(IngestPlan {
            new,
            sightings,
            report,
            planned_at: (self.len(), self.manifest.generation),
        })
    }

    /// Phase two: adds the plan's new papers with their `vectors` (one unit vector per new
    /// paper, in [`IngestPlan::new_papers`] order, row-major, from this library's model) and
    /// its sightings. Nothing is written until [`Library::commit`].
    pub fn apply_ingest(&mut self, plan: IngestPlan, vectors: &[f32]) -> Result<IngestReport> {
        if plan.planned_at != (self.len(), self.manifest.generation) {
            return Err(lib_err(
                &self.root,
                "changed since the ingest was planned; plan it again",
            ));
        }
        let dim = self.dim();
        if vectors.len() != plan.new.len() * dim {
            return Err(Error::InvalidInput(format!(
                "{} new papers need {} vector values (dimension {dim}), got {}",
                plan.new.len(),
                plan.new.len() * dim,
                vectors.len()
            )));
        }
        validate_vectors(vectors, dim, self.len())?;
        for s in plan.sightings {
            let p = &mut self.papers[s.row];
            if merge_sighting(p, s.seen, &s.url, &s.categories) {
                self.dirty = true;
                if s.row < self.committed_rows {
                    self.changed.insert(s.row);
                }
            }
        }
        for record in plan.report.digests.iter().cloned() {
            if let Some(old) = self
                .manifest
                .digests
                .iter_mut()
                .find(|d| d.source == record.source)
            {
                if old.papers != record.papers || record.added > 0 {
                    old.papers = record.papers;
                    old.added += record.added;
                    self.dirty = true;
                }
            } else {
                self.manifest.digests.push(record);
                self.dirty = true;
            }
        }
        let first = self.len();
        for n in plan.new {
            self.push_paper(n.paper);
        }
        if self.len() > first {
            self.append_vectors(first, vectors)?;
        }
        let mut report = plan.report;
        report.papers_total = self.papers.len();
        Ok(report)
    }

    /// Adds papers that were embedded elsewhere with this library's model (`vectors`: one unit
    /// vector per paper, row-major), skipping those already stored, as an ingest does. For
    /// tools that keep their own embeddings, such as the evaluation in `examples/eval.rs`.
    /// Returns how many were added; nothing is written until [`Library::commit`].
    pub fn add_embedded(&mut self, papers: Vec<Paper>, vectors: &[f32]) -> Result<usize> {
        let dim = self.dim();
        if vectors.len() != papers.len() * dim {
            return Err(Error::InvalidInput(format!(
                "{} papers need {} floats of vectors, got {}",
                papers.len(),
                papers.len() * dim,
                vectors.len()
            )));
        }
        validate_vectors(vectors, dim, self.len())?;
        let first = self.len();
        let mut data = Vec::new();
        for (i, paper) in papers.into_iter().enumerate() {
            if self.by_id.contains_key(&paper.id)
                || self.by_title.contains_key(&normalize_title(&paper.title))
            {
                continue;
            }
            self.push_paper(paper);
            data.extend_from_slice(&vectors[i * dim..(i + 1) * dim]);
        }
        let added = self.len() - first;
        if added > 0 {
            self.append_vectors(first, &data)?;
        }
        Ok(added)
    }

    /// The texts to embed to replace every vector (phase one of a re-embedding with another
    /// model), in row order.
    pub fn texts(&self) -> Vec<String> {
        self.papers.iter().map(Paper::text).collect()
    }

    /// Replaces every vector with `vectors` (one per paper, in row order) from the model
    /// `model`, then rebuilds the graph with `params`: phase two of a re-embedding.
    pub fn replace_vectors(
        &mut self,
        model: ModelInfo,
        vectors: Vec<f32>,
        params: HnswParams,
    ) -> Result<()> {
        if vectors.len() != self.len() * model.dim {
            return Err(Error::InvalidInput(format!(
                "{} papers need {} vector values (dimension {}), got {}",
                self.len(),
                self.len() * model.dim,
                model.dim,
                vectors.len()
            )));
        }
        validate_vectors(&vectors, model.dim, 0)?;
        self.vectors = ExactIndex::from_vectors(model.dim, vectors)?;
        self.manifest.model = model;
        self.rebuild_index(params)
    }

    /// Appends a paper record as the next row (its vector comes with
    /// [`Library::append_vectors`]).
    fn push_paper(&mut self, paper: Paper) {
        let row = self.papers.len();
        self.by_id.insert(paper.id.clone(), row);
        self.by_title
            .entry(normalize_title(&paper.title))
            .or_insert(row);
        self.papers.push(paper);
    }

    /// Appends the vectors of the papers pushed from row `first` on; its callers have checked
    /// them with `validate_vectors` before changing anything. The graph is left as it is
    /// (search covers the new rows exactly until a full commit inserts them); a lexical index
    /// already in memory takes their text.
    fn append_vectors(&mut self, first: usize, data: &[f32]) -> Result<()> {
        if self.vectors.len() != first || first + data.len() / self.dim() != self.len() {
            return Err(lib_err(
                &self.root,
                format!(
                    "{} vectors for papers {first}.. do not match the {} papers",
                    data.len() / self.dim(),
                    self.len()
                ),
            ));
        }
        self.vectors.add(data)?;
        // A lexical index loaded after the papers were pushed holds them already.
        if let Some(l) = self.lexical.get_mut() {
            let from = l.len();
            l.add(
                self.papers[from..]
                    .iter()
                    .map(|p| paper_text(&p.title, &p.abstract_text)),
            );
        }
        self.manifest.papers = self.papers.len();
        self.dirty = true;
        Ok(())
    }
}

/// Records a sighting on a paper, and what a later source may know more of (an arXiv listing
/// after a text digest: its URL and categories). Returns whether the record changed.
fn merge_sighting(
    paper: &mut Paper,
    seen: SeenIn,
    url: &Option<String>,
    categories: &[String],
) -> bool {
    let mut changed = false;
    if !paper.seen_in.contains(&seen) {
        paper.seen_in.push(seen);
        changed = true;
    }
    if paper.url.is_none() && url.is_some() {
        paper.url = url.clone();
        changed = true;
    }
    if paper.categories.is_empty() && !categories.is_empty() {
        paper.categories = categories.to_vec();
        changed = true;
    }
    changed
}
