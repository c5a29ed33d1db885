//! The vector index: owns the one interface the rest of papersim uses to store embeddings and
//! answer nearest-neighbour queries.
//!
//! Vectors are L2-normalised `f32` embeddings, so similarity is the dot product (cosine) and
//! higher is better. Two implementations sit behind [`VectorIndex`]:
//!
//! - [`ExactIndex`]: a flat array scanned in full on every query. Exact, no build cost, and the
//!   right choice for small libraries (see [`EXACT_THRESHOLD`]).
//! - [`HnswIndex`]: an approximate HNSW graph (the `hnsw_rs` crate, wrapped in [`hnsw`], the only
//!   module that may import it), for large libraries where a full scan is too slow.
//!
//! Callers program against [`VectorIndex`] only: the library will later move to a distributed
//! vector engine behind the same interface, so nothing outside this module should depend on
//! which implementation answers. [`lexical`] is the text index (BM25) beside the vector ones.
//!
//! May import: `crate::error`, `crate::directory` (the graph's files are written durably) and
//! `crate::checksum`. Never the library, the encoder or the ranking: an index stores rows and
//! vectors, not papers.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::{Error, Result};

pub mod exact;
pub mod hnsw;
pub mod lexical;

pub use exact::{ExactIndex, SharedHalfRows, SharedRows, SharedVectors, VectorDtype};
pub use hnsw::{HnswIndex, HnswParams};

/// Row count below which callers should prefer [`ExactIndex`] over [`HnswIndex`] even when
/// the graph is already in memory.
///
/// Below a few thousand rows a full scan of 384-dimensional vectors takes well under a
/// millisecond, is exact, and needs no graph; above it HNSW's sub-linear search is faster.
pub const EXACT_THRESHOLD: usize = 5_000;

/// Whether a process that holds a `rows`-row graph in memory should search it rather than scan.
///
/// A graph on disk is never loaded for that (see `library::SearchMode::Auto`): hnsw_rs reads
/// its graph whole, and measured on this project's 2-core machine at 100,000 papers, loading
/// it costs about 0.9 s (9 µs a row) against about 25 ms (0.25 µs a row) for an exact scan of
/// the memory-mapped vectors. The graph repays its load only after some forty searches, at any
/// size: in a long-lived process, or one that has just built it, not in a one-shot command.
pub fn prefer_graph_in_memory(rows: usize) -> bool {
    rows >= EXACT_THRESHOLD
}

/// Largest allowed deviation of a stored vector's L2 norm from 1.
pub const UNIT_NORM_TOLERANCE: f32 = 1e-3;

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row number of the stored vector (the order in which it was added, from 0).
    pub row: usize,
    /// Cosine similarity to the query (dot product of unit vectors), in `[-1, 1]`; higher is better.
    pub score: f32,
}

/// A store of unit vectors that answers k-nearest-neighbour queries by cosine similarity.
pub trait VectorIndex {
    /// Dimension of every vector in the index.
    fn dim(&self) -> usize;
    /// Number of rows stored.
    fn len(&self) -> usize;
    /// Whether no rows are stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends vectors (row-major, n*dim floats) as rows len()..len()+n.
    ///
    /// The batch is checked with [`validate_vectors`] first; on error nothing is added.
    fn add(&mut self, vectors: &[f32]) -> Result<()>;
    /// The k best rows by score, best first, ties broken by lower row. k larger than len() returns all.
    ///
    /// The query must have the index's dimension, be finite and non-zero; it is normalised to
    /// unit length before scoring, so scores are cosine similarities.
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>>;
}

/// The k nearest of all rows of `all` when `approximate` indexes only its first
/// `approximate.len()` rows: those are searched there, the rest (rows added since the
/// approximate index was last built) exactly, and the two lists merged. This is how a library
/// searches papers that arrived after its HNSW graph was last written.
pub fn search_layered(
    approximate: &dyn VectorIndex,
    all: &ExactIndex,
    query: &[f32],
    k: usize,
) -> Result<Vec<Hit>> {
    let mut hits = approximate.search(query, k)?;
    if approximate.len() < all.len() {
        let mut top = TopK::new(k);
        for hit in hits
            .into_iter()
            .chain(all.search_from(query, k, approximate.len())?)
        {
            top.push(hit);
        }
        hits = top.into_sorted();
    }
    Ok(hits)
}

/// Checks a batch before it enters any index: dim divides, every vector finite, non-zero norm, and (within 1e-3) unit norm — papersim only stores normalised vectors. Error::InvalidVector names the row (offset by `first_row`).
pub fn validate_vectors(vectors: &[f32], dim: usize, first_row: usize) -> Result<()> {
    if dim == 0 {
        return Err(Error::InvalidVector {
            row: first_row,
            reason: "index dimension is 0".into(),
        });
    }
    if !vectors.len().is_multiple_of(dim) {
        let row = first_row + vectors.len() / dim;
        return Err(Error::InvalidVector {
            row,
            reason: format!(
                "batch of {} floats is not a whole number of {dim}-dimensional vectors (last row has {} values)",
                vectors.len(),
                vectors.len() % dim
            ),
        });
    }
    for (i, v) in vectors.chunks_exact(dim).enumerate() {
        let row = first_row + i;
        let norm = checked_norm(v).map_err(|reason| Error::InvalidVector { row, reason })?;
        if (norm - 1.0).abs() > UNIT_NORM_TOLERANCE {
            return Err(Error::InvalidVector {
                row,
                reason: format!(
                    "not unit length (L2 norm {norm}); papersim stores normalised vectors only"
                ),
            });
        }
    }
    Ok(())
}

/// Checks a query (dimension, finite, non-zero) and returns it scaled to unit length.
pub(crate) fn normalized_query(query: &[f32], dim: usize) -> Result<Vec<f32>> {
    let invalid = |reason: String| Error::InvalidVector {
        row: 0,
        reason: format!("query: {reason}"),
    };
    if query.len() != dim {
        return Err(invalid(format!(
            "has {} values, the index has dimension {dim}",
            query.len()
        )));
    }
    let norm = checked_norm(query).map_err(invalid)?;
    Ok(query.iter().map(|x| x / norm).collect())
}

/// L2 norm of a finite, non-zero vector; otherwise why not.
fn checked_norm(v: &[f32]) -> std::result::Result<f32, String> {
    if let Some((j, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(format!("element {j} is {x} (not finite)"));
    }
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt() as f32;
    if norm == 0.0 || !norm.is_finite() {
        return Err(format!(
            "L2 norm is {norm}; zero or overflowing vectors have no direction"
        ));
    }
    Ok(norm)
}

/// Dot product over the common length of `a` and `b`.
///
/// Eight independent accumulators over whole 8-float chunks: the optimiser makes them one
/// vector register (inlined into [`exact`]'s scan, compiled for the CPU's widest extension),
/// and in unoptimised (test) builds there are no per-element iterator calls, which otherwise
/// dominate HNSW construction time. (`#[inline]`, not `always`: measured, forcing it into every
/// caller made the million-paper scan 15% slower.)
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    // Eight independent sums over whole chunks (no bounds checks): the compiler makes them one
    // vector register, and the order of operations stays fixed whatever the CPU.
    let mut s = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            s[j] += x[j] * y[j];
        }
    }
    for (x, y) in ra.iter().zip(rb) {
        s[0] += x * y;
    }
    ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
}

/// Orders hits best first: higher score, then lower row.
pub(crate) fn best_first(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.row.cmp(&b.row))
}

/// A hit ordered so that the *worst* hit is the greatest, for a bounded max-heap.
#[derive(Debug, Clone, Copy)]
struct WorstFirst(Hit);

impl PartialEq for WorstFirst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for WorstFirst {}
impl PartialOrd for WorstFirst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WorstFirst {
    fn cmp(&self, other: &Self) -> Ordering {
        best_first(&self.0, &other.0)
    }
}

/// Keeps the k best hits seen so far (by [`best_first`]) in O(log k) per offer.
#[derive(Debug)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<WorstFirst>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    pub(crate) fn push(&mut self, hit: Hit) {
        if self.heap.len() < self.k {
            self.heap.push(WorstFirst(hit));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if best_first(&hit, &worst.0) == Ordering::Less {
                *worst = WorstFirst(hit);
            }
        }
    }

    /// The score a hit must beat to be kept, once k are kept (a hit of equal score is kept
    /// only if its row is lower); `None` while fewer are kept.
    pub(crate) fn floor(&self) -> Option<f32> {
        (self.heap.len() >= self.k)
            .then(|| self.heap.peek().map(|w| w.0.score))
            .flatten()
    }

    pub(crate) fn merge(mut self, other: TopK) -> TopK {
        for h in other.heap {
            self.push(h.0);
        }
        self
    }

    /// The kept hits, best first.
    pub(crate) fn into_sorted(self) -> Vec<Hit> {
        // `into_sorted_vec` is ascending by `WorstFirst`'s order, i.e. best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.0)
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(dim: usize, at: usize) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        v[at] = 1.0;
        v
    }

    fn row_of(err: Error) -> usize {
        match err {
            Error::InvalidVector { row, .. } => row,
            other => panic!("expected InvalidVector, got {other:?}"),
        }
    }

    #[test]
    fn validate_accepts_unit_vectors() {
        let mut v = unit(4, 0);
        v.extend(unit(4, 3));
        validate_vectors(&v, 4, 0).unwrap();
        validate_vectors(&[], 4, 0).unwrap();
        // Within tolerance.
        validate_vectors(&[1.0005, 0.0], 2, 0).unwrap();
    }

    #[test]
    fn validate_rejects_bad_rows_and_names_them() {
        let good = unit(4, 1);
        let cases: Vec<(Vec<f32>, &str)> = vec![
            (vec![0.0; 4], "norm"),
            (vec![f32::NAN, 1.0, 0.0, 0.0], "NaN"),
            (vec![f32::INFINITY, 0.0, 0.0, 0.0], "inf"),
            (vec![0.5, 0.5, 0.0, 0.0], "unit"),
            (vec![2.0, 0.0, 0.0, 0.0], "unit"),
        ];
        for (bad, word) in cases {
            let mut batch = good.clone();
            batch.extend(&bad);
            batch.extend(&good);
            let err = validate_vectors(&batch, 4, 10).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(word), "{msg:?} should mention {word}");
            assert!(msg.contains("row 11"), "{msg}");
            assert_eq!(row_of(err), 11);
        }
    }

    #[test]
    fn validate_rejects_wrong_dims() {
        let mut batch = unit(4, 0);
        batch.extend([1.0, 0.0]);
        let err = validate_vectors(&batch, 4, 7).unwrap_err();
        assert_eq!(row_of(err), 8);
        assert!(validate_vectors(&[1.0], 0, 0).is_err());
    }

    #[test]
    fn query_checks() {
        assert!(normalized_query(&[0.0, 0.0], 2).is_err());
        assert!(normalized_query(&[f32::NAN, 1.0], 2).is_err());
        assert!(normalized_query(&[1.0], 2).is_err());
        let q = normalized_query(&[3.0, 4.0], 2).unwrap();
        assert!((q[0] - 0.6).abs() < 1e-6 && (q[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn dot_matches_naive() {
        let mut rng = testutil::Rng::new(1);
        for len in [0, 1, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..len).map(|_| rng.gaussian()).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.gaussian()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-3, "len {len}");
        }
    }

    #[test]
    fn topk_keeps_best_with_row_ties() {
        let mut t = TopK::new(3);
        for (row, score) in [(5, 0.5), (1, 0.9), (4, 0.5), (2, 0.1), (3, 0.5), (0, 0.9)] {
            t.push(Hit { row, score });
        }
        let rows: Vec<usize> = t.into_sorted().iter().map(|h| h.row).collect();
        assert_eq!(rows, vec![0, 1, 3]);
        assert!(TopK::new(0).into_sorted().is_empty());
    }
}
