//! Adding papers, in two phases, so that the library never embeds: [`Library::plan_ingest`]
//! merges the digests against the stored papers and says which papers need vectors; the
//! caller embeds those texts (or reuses vectors it already has) and hands them to
//! [`Library::apply_ingest`], which adds the papers, the sightings, the aliases and the
//! corrected abstracts. Nothing is written until [`Library::commit`].
//!
//! **Identity.** A digest's paper is the stored paper (or one read earlier in the same ingest)
//! with its id and title; else the one with its title whose abstract agrees (the same words,
//! case, punctuation and spacing aside, or one a cut-off copy of the other), its id becoming an
//! alias; else a paper of its own. Nothing is dropped and nothing refuses the ingest (short of
//! [`MAX_PAPERS_PER_TITLE`]): each case that is not plain is an [`IdentityNote`] of the report.
//! - Same id, same title: the same paper. An abstract that extends the stored one (which was
//!   cut off) replaces it and is re-embedded; another abstract under an arXiv id is noted and
//!   the stored one kept (an arXiv id names one paper); under a title-derived id (`t:…`, which
//!   says no more than the title) it is another version, as below.
//! - Same id, another title: a different paper reusing the id, kept apart under the next free
//!   derived id `<id>#2`, `<id>#3`, ….
//! - Another id, same title: merged when the abstracts agree, else kept apart (the conference
//!   and journal versions of a paper), both found by their ids.
//! - A paper held under a title-derived id (`t:…`, read from a digest without ids) that arrives
//!   with an arXiv id (from `papersim fetch`, a JSON digest) is merged as above and **takes the
//!   arXiv id**: its record is renamed, the `t:` id becomes an alias (so feedback and anything
//!   else that named it still finds it), and it gains the URL when it had none. It is counted
//!   in [`IngestReport::upgraded`].
//!
//! The same rules hold within one digest, across the digests of one ingest and across ingests,
//! and an ingest repeated finds every paper where the first one put it.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

use super::manifest::{DigestRecord, ModelInfo};
use super::record::{Paper, SeenIn};
use super::{lib_err, Library};
use crate::digest::Digest;
use crate::index::lexical::{paper_text, LexicalIndex};
use crate::index::{validate_vectors, ExactIndex, HnswIndex, HnswParams, VectorDtype, VectorIndex};
use crate::paper::{normalize_title, DigestPaper};
use crate::{Error, Result};

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub read: usize,
    pub added: usize,
    pub already_present: usize,
    /// Entries of the digests that were not read as papers, each saying why.
    pub skipped: Vec<String>,
    /// Papers whose identity needed a decision: merged into a paper stored under another id,
    /// kept apart from one sharing their id or title, or a stored abstract corrected or kept.
    pub identity: Vec<IdentityNote>,
    /// Problems with papers that were read (and added or merged all the same).
    pub warnings: Vec<String>,
    pub digests: Vec<DigestRecord>,
    pub papers_total: usize,
    /// Papers held under a title-derived id that took the arXiv id they arrived with (the old
    /// id an alias); each is also a `merged` note of `identity`.
    pub upgraded: usize,
}

/// What an ingest decided about a paper whose identity was not plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityOutcome {
    /// The same paper under another id (same title, abstracts that agree): one record, the
    /// digest's id an alias of it.
    Merged,
    /// Another paper sharing the id (another title) or the title (another abstract): stored
    /// as a paper of its own.
    KeptApart,
    /// The same paper with a longer abstract: the stored one was cut off, and is replaced and
    /// re-embedded.
    Corrected,
    /// The same arXiv id and title with another abstract: the stored abstract is kept.
    KeptStoredAbstract,
}

/// One identity decision of an ingest, naming both papers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityNote {
    pub outcome: IdentityOutcome,
    /// The digest's paper: its id, its title and where it was read (`digest:line`).
    pub id: String,
    pub title: String,
    pub at: String,
    /// The id it is stored under now (its own, a derived one, or the paper it merged into).
    pub stored_as: String,
    /// The paper it was compared with: stored, or read earlier in this ingest.
    pub other_id: String,
    pub other_title: String,
    /// Where that paper was read (`digest:line` in this ingest, else the first digest that
    /// listed it, as the library records it).
    pub other_at: String,
    /// Why, in words.
    pub reason: String,
}

impl fmt::Display for IdentityNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Titles are quoted with escapes: a title is the digest's text, not the terminal's.
        let (id, title, at) = (&self.id, &self.title, &self.at);
        let (other, other_title, other_at) = (&self.other_id, &self.other_title, &self.other_at);
        match self.outcome {
            IdentityOutcome::Merged => write!(
                f,
                "merged: {id} {title:?} ({at}) into {other} {other_title:?} ({other_at}): {}",
                self.reason
            ),
            IdentityOutcome::KeptApart => write!(
                f,
                "kept apart: {id} {title:?} ({at}), stored as {}, and {other} {other_title:?} ({other_at}): {}",
                self.stored_as, self.reason
            ),
            IdentityOutcome::Corrected => write!(
                f,
                "corrected: {other} {other_title:?} ({other_at}) by {at}: {}",
                self.reason
            ),
            IdentityOutcome::KeptStoredAbstract => write!(
                f,
                "kept the stored abstract: {other} {other_title:?} ({other_at}) and {at}: {}",
                self.reason
            ),
        }
    }
}

/// A paper of the digests that needs a vector: a paper the library does not hold yet, or a
/// stored one whose abstract is corrected ([`NewPaper::corrects`]).
#[derive(Debug, Clone)]
pub struct NewPaper {
    /// The record it will be stored as (its sightings in these digests included); for a
    /// correction, the stored record with the corrected abstract.
    pub paper: Paper,
    /// Where its text was read: (index into the planned digests, index into that digest's
    /// papers), so that a caller holding vectors of the digests' papers can reuse them.
    pub source: (usize, usize),
    /// The stored row whose abstract (and vector) this replaces; `None` for a paper to add.
    pub corrects: Option<usize>,
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
/// changing it. The papers of [`IngestPlan::new_papers`] need vectors, in that order.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    new: Vec<NewPaper>,
    sightings: Vec<Sighting>,
    /// Ids the digests add to stored papers as aliases: (row, id).
    aliases: Vec<(usize, String)>,
    /// Stored papers under a title-derived id that take an arXiv id: (row, arXiv id).
    upgrades: Vec<(usize, String)>,
    /// What the ingest does, its digests' records included (`papers_total` is filled in when
    /// applied).
    report: IngestReport,
    /// The library's size and generation when planned: a plan applies to that state only.
    planned_at: (usize, u64),
}

impl IngestPlan {
    /// The papers that need a vector: those to add, and stored ones whose abstract is
    /// corrected.
    pub fn new_papers(&self) -> &[NewPaper] {
        &self.new
    }

    /// The texts to embed for [`IngestPlan::new_papers`], in order.
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

/// Which paper a digest's paper is compared with: a stored row or one planned earlier in the
/// same ingest (an index into the plan's papers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Stored(usize),
    New(usize),
}

/// How a digest's abstract relates to the one held for its paper (both [`folded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agreement {
    Same,
    /// The new one continues the held one, which was cut off (or is empty).
    Extends,
    /// The new one is a cut-off copy of the held one.
    Shorter,
    Differs,
}

/// An abstract as two abstracts are compared: case, punctuation and spacing folded as titles
/// are, so that two digests' typesetting of one text (`preservation .` and `preservation.`, an
/// ellipsis marking a cut) agree.
fn folded(abstract_text: &str) -> String {
    normalize_title(abstract_text)
}

/// How the folded abstract `new` relates to the folded `held`.
fn compare_abstracts(held: &str, new: &str) -> Agreement {
    if held == new {
        Agreement::Same
    } else if new.starts_with(held) {
        Agreement::Extends
    } else if held.starts_with(new) {
        Agreement::Shorter
    } else {
        Agreement::Differs
    }
}

/// The most papers one title, or one id, may stand for: versions kept apart under one title
/// (or papers reusing one id) are compared with each paper that comes under it, so a digest
/// repeating one title without end would take quadratic time. Real titles are shared by a
/// handful of papers at most ("Preface", "Editorial").
pub const MAX_PAPERS_PER_TITLE: usize = 1_000;

/// What a digest's paper is.
#[derive(Debug)]
enum Identity {
    /// The paper `target`; `merged` when found by title under another id, `alias` the id to
    /// add to it (none when that id names another paper).
    Same {
        target: Target,
        agreement: Agreement,
        merged: bool,
        alias: Option<String>,
    },
    /// A paper of its own, stored as `id`; `apart_from` the paper sharing its id or title,
    /// and why they are two.
    New {
        id: String,
        apart_from: Option<(Target, String)>,
    },
}

/// An ingest being planned: the stored papers seen through the changes planned so far.
struct Planner<'a> {
    lib: &'a Library,
    digests: &'a [Digest],
    new: Vec<NewPaper>,
    /// Where each of `new` was first read (`digest:line`).
    read_at: Vec<String>,
    /// The folded abstracts of the papers compared so far: `Stored(row)` for a stored one
    /// as stored, `New(n)` for `new[n]` (a correction of a stored one included).
    folded: RefCell<HashMap<Target, String>>,
    /// Ids planned so far (new papers' and the aliases they add) → their paper.
    ids: HashMap<String, Target>,
    /// Normalised title → the planned new papers (indices into `new`) with it.
    titles: HashMap<String, Vec<usize>>,
    /// Stored row → the index into `new` of its correction.
    corrections: HashMap<usize, usize>,
    aliases: Vec<(usize, String)>,
    upgrades: Vec<(usize, String)>,
    sightings: Vec<Sighting>,
    report: IngestReport,
}

impl<'a> Planner<'a> {
    fn paper(&self, t: Target) -> &Paper {
        match t {
            Target::Stored(row) => match self.corrections.get(&row) {
                Some(&n) => &self.new[n].paper,
                None => &self.lib.papers[row],
            },
            Target::New(n) => &self.new[n].paper,
        }
    }

    fn read_at(&self, t: Target) -> String {
        match t {
            Target::Stored(row) => match self.lib.papers[row].seen_in.first() {
                Some(s) => format!("stored, first seen in {}", s.digest),
                None => "stored".to_string(),
            },
            Target::New(n) => self.read_at[n].clone(),
        }
    }

    /// How the folded abstract `new` relates to the one held for `t`.
    fn agreement(&self, t: Target, new: &str) -> Agreement {
        let key = match t {
            Target::Stored(row) => self.corrections.get(&row).map_or(t, |&n| Target::New(n)),
            Target::New(_) => t,
        };
        let mut cache = self.folded.borrow_mut();
        let held = cache.entry(key).or_insert_with(|| {
            folded(match key {
                Target::Stored(row) => &self.lib.papers[row].abstract_text,
                Target::New(n) => &self.new[n].paper.abstract_text,
            })
        });
        compare_abstracts(held, new)
    }

    fn lookup_id(&self, id: &str) -> Option<Target> {
        self.ids
            .get(id)
            .copied()
            .or_else(|| self.lib.by_id.get(id).map(|&r| Target::Stored(r)))
    }

    /// Every paper with this normalised title: stored ones, then planned ones.
    fn with_title(&self, title: &str) -> Vec<Target> {
        let stored = self.lib.by_title.get(title).into_iter().flatten();
        let planned = self.titles.get(title).into_iter().flatten();
        stored
            .map(|&r| Target::Stored(r))
            .chain(planned.map(|&n| Target::New(n)))
            .collect()
    }

    /// Which paper `dp` (id `id`, normalised title `title`) is; see the module header. `at`
    /// names it in the error when its title or id stands for [`MAX_PAPERS_PER_TITLE`] papers
    /// already.
    fn identify(&self, dp: &DigestPaper, id: &str, title: &str, at: &str) -> Result<Identity> {
        // Folded only when there is a paper to compare it with: most papers are new.
        let folded_once = OnceCell::new();
        let abstract_text = || {
            folded_once
                .get_or_init(|| folded(&dp.abstract_text))
                .as_str()
        };
        let too_many = |what: String| Error::Digest {
            path: at.to_string(),
            reason: format!(
                "{what} stands for {MAX_PAPERS_PER_TITLE} papers already; papersim keeps at most \
                 {MAX_PAPERS_PER_TITLE} papers under one title or id (is this a digest of papers?)"
            ),
        };
        // An arXiv id names one paper; a title-derived id says no more than the title.
        let own_id = dp.arxiv_id.as_deref().is_some_and(|a| !a.trim().is_empty());
        let mut id_holder = None;
        let mut other_version = None;
        let mut candidate = id.to_string();
        let mut n = 1;
        let free = loop {
            let Some(t) = self.lookup_id(&candidate) else {
                break candidate;
            };
            if normalize_title(&self.paper(t).title) == title {
                let agreement = self.agreement(t, abstract_text());
                if agreement != Agreement::Differs || own_id {
                    return Ok(Identity::Same {
                        target: t,
                        agreement,
                        merged: false,
                        alias: None,
                    });
                }
                other_version.get_or_insert(t);
            } else {
                id_holder.get_or_insert(t);
            }
            if n >= MAX_PAPERS_PER_TITLE {
                // A title-derived id stands for its title.
                return Err(too_many(if own_id {
                    format!("id {id}")
                } else {
                    format!("title `{}`", dp.title)
                }));
            }
            n += 1;
            candidate = format!("{id}#{n}");
        };
        let same_title = self.with_title(title);
        for &t in &same_title {
            let agreement = self.agreement(t, abstract_text());
            if agreement != Agreement::Differs {
                return Ok(Identity::Same {
                    target: t,
                    agreement,
                    merged: true,
                    alias: (free == id).then(|| id.to_string()),
                });
            }
        }
        if same_title.len() >= MAX_PAPERS_PER_TITLE {
            return Err(too_many(format!("title `{}`", dp.title)));
        }
        let apart_from = match (id_holder, other_version.or(same_title.first().copied())) {
            (Some(t), _) => Some((
                t,
                format!("id {id} already names the other paper, whose title differs"),
            )),
            (None, Some(t)) => Some((t, "same title, different abstracts".to_string())),
            (None, None) => None,
        };
        Ok(Identity::New {
            id: free,
            apart_from,
        })
    }

    /// Plans the `i`th paper of digest `d`.
    fn plan(&mut self, d: usize, i: usize, seen: SeenIn, date: &Option<String>) -> Result<bool> {
        let digest = &self.digests[d];
        let dp = &digest.papers[i];
        let at = format!("{}:{}", digest.source, dp.line);
        let id = dp.id();
        let title = normalize_title(&dp.title);
        let note = |outcome, stored_as: &str, other: &Paper, other_at: String, reason: String| {
            IdentityNote {
                outcome,
                id: id.clone(),
                title: dp.title.clone(),
                at: at.clone(),
                stored_as: stored_as.to_string(),
                other_id: other.id.clone(),
                other_title: other.title.clone(),
                other_at,
                reason,
            }
        };
        Ok(match self.identify(dp, &id, &title, &at)? {
            Identity::Same {
                target,
                agreement,
                merged,
                alias,
            } => {
                self.report.already_present += 1;
                let other = self.paper(target);
                let other_at = self.read_at(target);
                // A title-derived id gives way to the arXiv id the paper arrives with.
                let upgrade = alias.is_some()
                    && dp.arxiv_id.as_deref().is_some_and(|a| !a.trim().is_empty())
                    && other.id.starts_with("t:");
                let mut notes = Vec::new();
                if merged {
                    let how = match agreement {
                        Agreement::Extends => "same title; its abstract extends the held one",
                        Agreement::Shorter => {
                            "same title; its abstract is the start of the held one"
                        }
                        _ => "same title and abstract",
                    };
                    let alias_note = match &alias {
                        Some(a) if upgrade => format!(
                            "it now has arXiv id {a}, and its old id {} stays an alias",
                            other.id
                        ),
                        Some(a) => format!("{a} now names {}", other.id),
                        None => format!("id {id} names another paper, so it is not an alias"),
                    };
                    notes.push(note(
                        IdentityOutcome::Merged,
                        &other.id,
                        other,
                        other_at.clone(),
                        format!("{how}; {alias_note}"),
                    ));
                }
                match agreement {
                    Agreement::Extends => notes.push(note(
                        IdentityOutcome::Corrected,
                        &other.id,
                        other,
                        other_at,
                        "the held abstract is the start of this one (cut off); the longer one replaces it and is re-embedded"
                            .to_string(),
                    )),
                    Agreement::Differs => notes.push(note(
                        IdentityOutcome::KeptStoredAbstract,
                        &other.id,
                        other,
                        other_at,
                        "same arXiv id and title, another abstract (a revised version?); the held abstract is kept"
                            .to_string(),
                    )),
                    Agreement::Same | Agreement::Shorter => {}
                }
                self.report.identity.extend(notes);
                if agreement == Agreement::Extends {
                    self.correct(target, dp.abstract_text.clone(), (d, i));
                }
                if upgrade {
                    self.report.upgraded += 1;
                }
                match target {
                    Target::Stored(row) => {
                        if let Some(alias) = alias {
                            self.ids.insert(alias.clone(), target);
                            if upgrade {
                                self.upgrades.push((row, alias));
                            } else {
                                self.aliases.push((row, alias));
                            }
                        }
                        self.sightings.push(Sighting {
                            row,
                            seen,
                            url: dp.url.clone(),
                            categories: dp.categories.clone(),
                        });
                    }
                    Target::New(n) => {
                        let paper = &mut self.new[n].paper;
                        if let Some(alias) = alias {
                            if upgrade {
                                let old = std::mem::replace(&mut paper.id, alias.clone());
                                paper.aliases.push(old);
                            } else {
                                paper.aliases.push(alias.clone());
                            }
                            self.ids.insert(alias, target);
                        }
                        merge_sighting(paper, seen, &dp.url, &dp.categories);
                    }
                }
                false
            }
            Identity::New { id, apart_from } => {
                if let Some((t, reason)) = apart_from {
                    let n = note(
                        IdentityOutcome::KeptApart,
                        &id,
                        self.paper(t),
                        self.read_at(t),
                        reason,
                    );
                    self.report.identity.push(n);
                }
                let n = self.new.len();
                self.ids.insert(id.clone(), Target::New(n));
                self.titles.entry(title).or_default().push(n);
                self.read_at.push(at);
                self.new.push(NewPaper {
                    paper: Paper {
                        id,
                        title: dp.title.clone(),
                        abstract_text: dp.abstract_text.clone(),
                        date: dp.date.clone().or_else(|| date.clone()),
                        url: dp.url.clone(),
                        authors: dp.authors.clone(),
                        categories: dp.categories.clone(),
                        seen_in: vec![seen],
                        aliases: Vec::new(),
                    },
                    source: (d, i),
                    corrects: None,
                });
                true
            }
        })
    }

    /// Replaces the abstract held for `target` with `abstract_text`, read at `source`.
    fn correct(&mut self, target: Target, abstract_text: String, source: (usize, usize)) {
        let n = match target {
            Target::New(n) => n,
            Target::Stored(row) => match self.corrections.get(&row) {
                Some(&n) => n,
                None => {
                    let n = self.new.len();
                    self.corrections.insert(row, n);
                    self.read_at.push(String::new());
                    self.new.push(NewPaper {
                        paper: self.lib.papers[row].clone(),
                        source,
                        corrects: Some(row),
                    });
                    n
                }
            },
        };
        self.new[n].paper.abstract_text = abstract_text;
        self.folded.get_mut().remove(&Target::New(n));
        self.new[n].source = source;
    }
}

impl Library {
    /// Phase one of an ingest: merges `digests` against the stored papers without changing
    /// the library (see the module header for how a paper is identified). A paper seen again
    /// gets a sighting; a new one, and a stored one whose cut-off abstract the digests
    /// complete, is listed with the text to embed.
    ///
    /// When the commit after this ingest will write a full generation, the stored graph and
    /// lexical index are read here, before the (slow) embedding, so that a damaged file fails
    /// fast (unless a correction has them rebuilt anyway).
    pub fn plan_ingest(&self, digests: &[Digest]) -> Result<IngestPlan> {
        self.writable("plan an ingest")?;
        let mut planner = Planner {
            lib: self,
            digests,
            new: Vec::new(),
            read_at: Vec::new(),
            folded: RefCell::new(HashMap::new()),
            ids: HashMap::new(),
            titles: HashMap::new(),
            corrections: HashMap::new(),
            aliases: Vec::new(),
            upgrades: Vec::new(),
            sightings: Vec::new(),
            report: IngestReport::default(),
        };
        for (d, digest) in digests.iter().enumerate() {
            planner
                .report
                .skipped
                .extend(digest.skipped.iter().cloned());
            planner
                .report
                .warnings
                .extend(digest.warnings.iter().cloned());
            let date = digest.date.map(|d| d.format("%Y-%m-%d").to_string());
            let mut record = DigestRecord {
                source: digest_name(&digest.source),
                date: date.clone(),
                papers: digest.papers.len(),
                added: 0,
            };
            for i in 0..digest.papers.len() {
                planner.report.read += 1;
                let seen = SeenIn {
                    digest: record.source.clone(),
                    date: date.clone(),
                };
                if planner.plan(d, i, seen, &date)? {
                    record.added += 1;
                }
            }
            planner.report.digests.push(record);
        }
        let Planner {
            new,
            sightings,
            aliases,
            upgrades,
            corrections,
            mut report,
            ..
        } = planner;
        report.added = new.len() - corrections.len();
        if corrections.is_empty() && report.added > 0 && self.commit_is_full(report.added) {
            if self.manifest.store_graph && self.manifest.files.graph.is_some() {
                self.hnsw()?;
            }
            self.lexical()?;
        }
        Ok(IngestPlan {
            new,
            sightings,
            aliases,
            upgrades,
            report,
            planned_at: (self.len(), self.manifest.generation),
        })
    }

    /// Phase two: adds the plan's papers with their `vectors` (one unit vector per paper of
    /// [`IngestPlan::new_papers`], in that order, row-major, from this library's model), its
    /// sightings and aliases, and replaces the corrected abstracts and their vectors. Nothing
    /// is written until [`Library::commit`].
    pub fn apply_ingest(&mut self, plan: IngestPlan, vectors: &[f32]) -> Result<IngestReport> {
        self.writable("ingest")?;
        if plan.planned_at != (self.len(), self.manifest.generation) {
            return Err(lib_err(
                &self.root,
                "changed since the ingest was planned; plan it again",
            ));
        }
        let dim = self.dim();
        if vectors.len() != plan.new.len() * dim {
            return Err(Error::InvalidInput(format!(
                "{} papers need {} vector values (dimension {dim}), got {}",
                plan.new.len(),
                plan.new.len() * dim,
                vectors.len()
            )));
        }
        validate_vectors(vectors, dim, self.len())?;
        // hnsw_rs cannot move a point: a corrected vector means a graph rebuilt from every
        // vector. A stored one is rebuilt by the next commit (into a full generation) from
        // this empty one; one held only in memory is dropped, to be built again when needed.
        let corrected = plan.new.iter().any(|n| n.corrects.is_some());
        let rebuilt_graph = if corrected {
            self.verify_vectors()?;
            let store = self.manifest.store_graph;
            store
                .then(|| HnswIndex::new(dim, self.manifest.index, self.len().max(1024)))
                .transpose()?
        } else {
            None
        };
        for s in plan.sightings {
            let p = &mut self.papers[s.row];
            if merge_sighting(p, s.seen, &s.url, &s.categories) {
                self.record_changed(s.row);
            }
        }
        for (row, alias) in plan.aliases {
            if !self.papers[row].aliases.contains(&alias) {
                self.by_id.insert(alias.clone(), row);
                self.papers[row].aliases.push(alias);
                self.record_changed(row);
            }
        }
        for (row, arxiv_id) in plan.upgrades {
            let p = &mut self.papers[row];
            if p.id.starts_with("t:") {
                // The old id stays in `by_id`, now as an alias.
                let old = std::mem::replace(&mut p.id, arxiv_id.clone());
                p.aliases.retain(|a| *a != arxiv_id);
                p.aliases.push(old);
                self.by_id.insert(arxiv_id, row);
                self.record_changed(row);
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
        let mut added = Vec::new();
        for (n, vector) in plan.new.into_iter().zip(vectors.chunks_exact(dim)) {
            match n.corrects {
                Some(row) => {
                    self.vectors.set_row(row, vector)?;
                    self.papers[row].abstract_text = n.paper.abstract_text;
                    self.record_changed(row);
                }
                None => {
                    self.push_paper(n.paper);
                    added.extend_from_slice(vector);
                }
            }
        }
        if self.len() > first {
            self.append_vectors(first, &added)?;
        }
        if corrected {
            self.graph = rebuilt_graph.map(OnceLock::from).unwrap_or_default();
            let texts = (0..self.len())
                .map(|r| self.lexical_text(r))
                .collect::<Result<Vec<_>>>()?;
            self.lexical = OnceLock::from(LexicalIndex::build(texts));
            self.full_rewrite = true;
        }
        let mut report = plan.report;
        report.papers_total = self.papers.len();
        Ok(report)
    }

    /// Notes that the record of `row` changed (a committed one is rewritten at the next commit).
    fn record_changed(&mut self, row: usize) {
        self.dirty = true;
        if row < self.committed_rows {
            self.changed.insert(row);
        }
    }

    /// Adds papers that were embedded elsewhere with this library's model (`vectors`: one unit
    /// vector per paper, row-major), skipping those already stored, as an ingest does. For
    /// tools that keep their own embeddings, such as the evaluation in `examples/eval.rs`.
    /// Returns how many were added; nothing is written until [`Library::commit`].
    pub fn add_embedded(&mut self, papers: Vec<Paper>, vectors: &[f32]) -> Result<usize> {
        self.writable("add papers")?;
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
    /// `model`, stored as `dtype` from now on, then rebuilds the derived indexes with `params`:
    /// phase two of a re-embedding.
    pub fn replace_vectors(
        &mut self,
        model: ModelInfo,
        vectors: Vec<f32>,
        dtype: VectorDtype,
        params: HnswParams,
        store_graph: bool,
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
        self.writable("replace its vectors")?;
        validate_vectors(&vectors, model.dim, 0)?;
        self.vectors = ExactIndex::from_vectors(model.dim, vectors)?.with_dtype(dtype);
        self.manifest.vector_dtype = dtype;
        self.manifest.model = model;
        self.rebuild_index(params, store_graph)
    }

    /// Appends a paper record as the next row (its vector comes with
    /// [`Library::append_vectors`]).
    pub(super) fn push_paper(&mut self, paper: Paper) {
        let row = self.papers.len();
        self.by_id.insert(paper.id.clone(), row);
        for alias in &paper.aliases {
            self.by_id.insert(alias.clone(), row);
        }
        self.by_title
            .entry(normalize_title(&paper.title))
            .or_default()
            .push(row);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstracts_agree_whatever_their_typesetting_or_cut() {
        let full = folded("We propose PixelSmile, a diffusion framework. Code is released.");
        let agree = |held: &str| compare_abstracts(&folded(held), &full);
        assert_eq!(
            agree("We propose  PixelSmile , a diffusion framework . Code is released"),
            Agreement::Same
        );
        assert_eq!(agree("We propose PixelSmile, a diffu"), Agreement::Extends);
        assert_eq!(agree("We propose PixelSmile, a diffu…"), Agreement::Extends);
        assert_eq!(agree(""), Agreement::Extends);
        assert_eq!(
            compare_abstracts(&full, &folded("We propose PixelSmile")),
            Agreement::Shorter
        );
        assert_eq!(
            agree("PixelSmile is a diffusion framework we propose."),
            Agreement::Differs
        );
    }
}
