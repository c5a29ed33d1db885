//! Where a library's papers and vectors live, behind one small trait: the local directory
//! (the default, [`local`]) or a Qdrant collection ([`qdrant`]), chosen when the library is
//! created and recorded in its manifest ([`crate::library::Engine`]).
//!
//! The seam is the [`View`]: a ranking asks the store for the papers it needs — the papers
//! the reader named, and the nearest neighbours of the vectors it searches around — and gets
//! a [`Library`] to rank over. The local store answers with the whole library (nothing is
//! copied, nothing changes in speed or behaviour); Qdrant answers with a library held in
//! memory of just those papers, fetched with their vectors and records, so that the ranking
//! itself (`crate::rank`) stays papersim's and gives the same scores. The model and the
//! encoder stay papersim's too: a store keeps the vectors it is given.
//!
//! Owns opening a library's store and the Qdrant client (REST over ureq: collections, points,
//! nearest-neighbour queries with payload filters, acknowledged writes).
//!
//! May import: `crate::library`, `crate::index`, `crate::paper`, `crate::checksum`,
//! `crate::progress`, `crate::error`. Never `crate::encode` or `crate::rank`: a store keeps and
//! finds vectors, it neither embeds nor ranks.

pub mod local;
pub mod qdrant;

use std::ops::Deref;
use std::path::Path;

use crate::library::{Library, Manifest};
use crate::{Error, Result};

pub use local::LocalStore;
pub use qdrant::QdrantStore;

/// What one ranking needs from a store.
#[derive(Debug, Clone, Default)]
pub struct Need {
    /// Papers the reader named (ids, titles or title fragments, as `Library::resolve` takes
    /// them): the paper of `similar`, the liked and disliked papers.
    pub references: Vec<String>,
    /// Those of `references` whose neighbourhoods the ranking searches (the paper of
    /// `similar`, the liked papers).
    pub around: Vec<String>,
    /// Other vectors whose neighbourhoods it searches (an embedded query).
    pub queries: Vec<Vec<f32>>,
    /// How many neighbours of each: the ranking's candidate count for a library of
    /// [`Store::len`] papers (`rank::candidate_count`).
    pub per_query: usize,
    /// The date window (`YYYY-MM-DD`, inclusive) the ranking keeps; a store may leave out
    /// neighbours outside it, never papers inside it.
    pub since: Option<String>,
    pub until: Option<String>,
}

/// The library a ranking runs over: the whole local one, or the part a remote engine returned.
pub enum View<'a> {
    Whole(&'a Library),
    Part(Box<Library>),
}

impl Deref for View<'_> {
    type Target = Library;
    fn deref(&self) -> &Library {
        match self {
            View::Whole(lib) => lib,
            View::Part(lib) => lib,
        }
    }
}

/// A library's papers and vectors, wherever they are kept.
pub trait Store {
    /// The engine's name as the manifest records it (`local`, `qdrant`).
    fn engine(&self) -> &'static str;
    /// The library's manifest (model, engine).
    fn manifest(&self) -> &Manifest;
    /// How many papers the library holds.
    fn len(&self) -> Result<usize>;
    /// Whether it holds none.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// The papers a ranking over `need` needs, as a library.
    fn view(&self, need: &Need) -> Result<View<'_>>;
}

/// Opens the store of the library in `root` as its manifest says: the local directory
/// (opened for reading, see `Library::open_for_reading`) or its Qdrant collection. The API key
/// of a Qdrant cluster is `api_key`, else `$PAPERSIM_QDRANT_API_KEY`.
pub fn open(root: &Path, api_key: Option<&str>) -> Result<Box<dyn Store>> {
    let manifest = Manifest::read(root)?;
    match &manifest.engine {
        None => Ok(Box::new(LocalStore::open(root)?)),
        Some(engine) if engine.kind == qdrant::KIND => Ok(Box::new(QdrantStore::open(
            root,
            manifest.clone(),
            api_key,
        )?)),
        Some(engine) => Err(Error::Library {
            path: root.to_path_buf(),
            reason: format!(
                "keeps its papers in a `{}` engine, which this papersim does not know (it knows `qdrant`)",
                engine.kind
            ),
        }),
    }
}

// The Qdrant store's checks that need no cluster (named so that `--skip qdrant::` keeps them).
#[cfg(test)]
mod tests {
    use super::qdrant::*;

    #[test]
    fn qdrant_point_ids_are_stable_uuids() {
        let a = point_id("2401.00001");
        assert_eq!(a, point_id("2401.00001"));
        assert_ne!(a, point_id("2401.00002"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn qdrant_bounds_are_checked() {
        assert!(check_layout(0, 1).is_err());
        assert!(check_layout(1, 0).is_err());
        assert!(check_layout(MAX_SHARDS + 1, 1).is_err());
        assert!(check_layout(2, 2).is_ok());
        assert!(parse_urls("ftp://x").is_err());
        assert!(parse_urls(" , ").is_err());
        assert_eq!(
            parse_urls("http://a:6333/, https://b:6333").unwrap(),
            vec!["http://a:6333", "https://b:6333"]
        );
        assert!(check_collection("a/b").is_err());
        assert_eq!(day_number("2024-03-11T00:00:00Z"), Some(20240311));
    }
}
