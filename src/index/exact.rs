//! Exact (brute-force) search: every query scores every stored row.

use std::borrow::Cow;
use std::sync::Arc;

use rayon::prelude::*;

use super::{dot, normalized_query, validate_vectors, Hit, TopK, VectorIndex};
use crate::Result;

/// Above this many rows a search is split across rayon's threads.
const PARALLEL_ROWS: usize = 20_000;
/// Rows per parallel work item.
const ROWS_PER_CHUNK: usize = 4_096;

/// Rows kept outside the index's own memory, read-only: a memory-mapped file of the library,
/// so that opening a library costs nothing per paper. Whoever hands them over vouches that
/// they were checked ([`validate_vectors`]) when written.
pub type SharedRows = Arc<dyn AsRef<[f32]> + Send + Sync>;

/// A flat, row-major array of unit vectors searched exhaustively. Exact, with O(len·dim) work
/// per query. The first rows may be [`SharedRows`] (a library's base generation, mapped); the
/// rest, and every row once one is replaced, live in the index's own memory.
#[derive(Clone)]
pub struct ExactIndex {
    dim: usize,
    shared: Option<SharedRows>,
    data: Vec<f32>,
}

impl std::fmt::Debug for ExactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactIndex")
            .field("dim", &self.dim)
            .field("shared_rows", &self.shared_rows())
            .field("own_rows", &(self.data.len() / self.dim.max(1)))
            .finish()
    }
}

impl PartialEq for ExactIndex {
    fn eq(&self, other: &Self) -> bool {
        self.dim == other.dim && self.vectors() == other.vectors()
    }
}

impl ExactIndex {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        ExactIndex {
            dim,
            shared: None,
            data: Vec::new(),
        }
    }

    /// An index holding `vectors` (row-major) as rows 0.., after [`validate_vectors`].
    pub fn from_vectors(dim: usize, vectors: Vec<f32>) -> Result<Self> {
        validate_vectors(&vectors, dim, 0)?;
        Ok(ExactIndex {
            dim,
            shared: None,
            data: vectors,
        })
    }

    /// An index whose rows 0.. are `rows`, used where they are (not copied, not re-checked:
    /// at a million papers checking every vector would cost what mapping them saves). Only
    /// their shape is checked.
    pub fn from_shared(dim: usize, rows: SharedRows) -> Result<Self> {
        let len = (*rows).as_ref().len();
        if dim == 0 || !len.is_multiple_of(dim) {
            return Err(crate::Error::InvalidVector {
                row: 0,
                reason: format!("{len} values are not whole vectors of dimension {dim}"),
            });
        }
        Ok(ExactIndex {
            dim,
            shared: Some(rows),
            data: Vec::new(),
        })
    }

    fn shared_slice(&self) -> &[f32] {
        self.shared.as_ref().map_or(&[], |s| (**s).as_ref())
    }

    fn shared_rows(&self) -> usize {
        self.shared_slice().len() / self.dim.max(1)
    }

    /// All stored vectors, row-major: borrowed when they lie in one place, else copied.
    pub fn vectors(&self) -> Cow<'_, [f32]> {
        self.rows_from(0)
    }

    /// The vectors of rows `first_row..`, row-major (borrowed when they lie in one place).
    pub fn rows_from(&self, first_row: usize) -> Cow<'_, [f32]> {
        let shared = self.shared_slice();
        let start = (first_row * self.dim).min(shared.len() + self.data.len());
        if start >= shared.len() {
            Cow::Borrowed(&self.data[start - shared.len()..])
        } else if self.data.is_empty() {
            Cow::Borrowed(&shared[start..])
        } else {
            Cow::Owned([&shared[start..], &self.data[..]].concat())
        }
    }

    /// The vector stored at row `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        let shared = self.shared_rows();
        if i < shared {
            &self.shared_slice()[i * self.dim..(i + 1) * self.dim]
        } else {
            let i = i - shared;
            &self.data[i * self.dim..(i + 1) * self.dim]
        }
    }

    /// Replaces the vector of row `i` (a paper whose text changed), after [`validate_vectors`].
    pub fn set_row(&mut self, i: usize, vector: &[f32]) -> Result<()> {
        validate_vectors(vector, self.dim, i)?;
        if vector.len() != self.dim || i >= self.len() {
            return Err(crate::Error::InvalidVector {
                row: i,
                reason: format!(
                    "cannot replace row {i} of {} with {} values (dimension {})",
                    self.len(),
                    vector.len(),
                    self.dim
                ),
            });
        }
        if i < self.shared_rows() {
            // Shared rows are read-only: the index takes its own copy of every row first.
            self.data = self.vectors().into_owned();
            self.shared = None;
        }
        let i = i - self.shared_rows();
        self.data[i * self.dim..(i + 1) * self.dim].copy_from_slice(vector);
        Ok(())
    }

    /// The k best of rows `first_row..len()` (as [`VectorIndex::search`] over all rows when
    /// `first_row` is 0): the exact part of a search whose other rows another index answers.
    pub fn search_from(&self, query: &[f32], k: usize, first_row: usize) -> Result<Vec<Hit>> {
        let query = normalized_query(query, self.dim)?;
        let first_row = first_row.min(self.len());
        let k = k.min(self.len() - first_row);
        if k == 0 {
            return Ok(Vec::new());
        }
        let shared = self.shared_slice();
        let split = self.shared_rows();
        let mut top = TopK::new(k);
        if first_row < split {
            top = top.merge(self.scan_rows(&query, &shared[first_row * self.dim..], first_row, k));
        }
        let own_first = first_row.max(split);
        let own = &self.data[(own_first - split) * self.dim..];
        if !own.is_empty() {
            top = top.merge(self.scan_rows(&query, own, own_first, k));
        }
        Ok(top.into_sorted())
    }

    /// Top-k of the contiguous rows `rows`, whose first row is `first_row`: in parallel when
    /// there are many.
    fn scan_rows(&self, query: &[f32], rows: &[f32], first_row: usize, k: usize) -> TopK {
        if rows.len() / self.dim > PARALLEL_ROWS {
            rows.par_chunks(ROWS_PER_CHUNK * self.dim)
                .enumerate()
                .map(|(c, chunk)| self.scan(query, chunk, first_row + c * ROWS_PER_CHUNK, k))
                .reduce(|| TopK::new(k), TopK::merge)
        } else {
            self.scan(query, rows, first_row, k)
        }
    }

    /// Top-k of the rows in `chunk`, whose first row is `first_row`, compiled for the best
    /// vector extension this CPU has (see [`Scan`]).
    fn scan(&self, query: &[f32], chunk: &[f32], first_row: usize, k: usize) -> TopK {
        pulp::Arch::new().dispatch(Scan {
            query,
            chunk,
            dim: self.dim,
            first_row,
            k,
        })
    }
}

/// One scan of contiguous rows. `pulp` runs it in a function compiled with the detected target
/// features (AVX-512, AVX2, …), with [`dot`] inlined there: the scan is most of a one-shot
/// `similar`, and baseline x86-64 code runs it at half the speed. The sums are the same
/// operations in the same order, so scores do not change with the CPU.
struct Scan<'a> {
    query: &'a [f32],
    chunk: &'a [f32],
    dim: usize,
    first_row: usize,
    k: usize,
}

impl pulp::WithSimd for Scan<'_> {
    type Output = TopK;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> TopK {
        let mut top = TopK::new(self.k);
        for (i, v) in self.chunk.chunks_exact(self.dim).enumerate() {
            top.push(Hit {
                row: self.first_row + i,
                score: dot(self.query, v).clamp(-1.0, 1.0),
            });
        }
        top
    }
}

impl VectorIndex for ExactIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        (self.shared_slice().len() + self.data.len())
            .checked_div(self.dim)
            .unwrap_or(0)
    }

    fn add(&mut self, vectors: &[f32]) -> Result<()> {
        validate_vectors(vectors, self.dim, self.len())?;
        self.data.extend_from_slice(vectors);
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.search_from(query, k, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{best_first, testutil};
    use super::*;
    use crate::Error;

    fn brute_force(index: &ExactIndex, q: &[f32], k: usize) -> Vec<Hit> {
        let mut all: Vec<Hit> = (0..index.len())
            .map(|row| Hit {
                row,
                score: index.row(row).iter().zip(q).map(|(a, b)| a * b).sum(),
            })
            .collect();
        all.sort_by(best_first);
        all.truncate(k);
        all
    }

    #[test]
    fn top_k_matches_brute_force() {
        let dim = 16;
        let data = testutil::clustered(3, 500, dim, 10, 1.0);
        let index = ExactIndex::from_vectors(dim, data.clone()).unwrap();
        assert_eq!(index.len(), 500);
        assert_eq!(index.vectors(), &data[..]);
        let mut rng = testutil::Rng::new(4);
        for _ in 0..20 {
            let q = testutil::random_unit(&mut rng, dim);
            let got = index.search(&q, 10).unwrap();
            let want = brute_force(&index, &q, 10);
            assert_eq!(got.len(), 10);
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.row, w.row);
                assert!((g.score - w.score).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn shared_rows_then_own_rows_search_as_one_array() {
        let dim = 16;
        let n = PARALLEL_ROWS + 2 * ROWS_PER_CHUNK + 5;
        let data = testutil::clustered(7, n + 300, dim, 12, 1.0);
        let whole = ExactIndex::from_vectors(dim, data.clone()).unwrap();
        let shared: SharedRows = Arc::new(data[..n * dim].to_vec());
        let mut split = ExactIndex::from_shared(dim, shared).unwrap();
        split.add(&data[n * dim..]).unwrap();
        assert_eq!(split.len(), whole.len());
        assert_eq!(split, whole);
        assert_eq!(split.row(n - 1), whole.row(n - 1));
        assert_eq!(split.row(n), whole.row(n));
        assert_eq!(&*split.rows_from(n - 2), &data[(n - 2) * dim..]);
        let mut rng = testutil::Rng::new(9);
        for first in [0, n - 3, n, n + 299] {
            let q = testutil::random_unit(&mut rng, dim);
            assert_eq!(
                split.search_from(&q, 10, first).unwrap(),
                whole.search_from(&q, 10, first).unwrap(),
                "from row {first}"
            );
        }
        // Replacing a shared row copies the rows into the index's own memory first.
        let v = whole.row(3).to_vec();
        split.set_row(0, &v).unwrap();
        assert_eq!(split.row(0), &v[..]);
        assert_eq!(split.row(1), whole.row(1));
        assert!(ExactIndex::from_shared(dim, Arc::new(vec![0.0; dim + 1])).is_err());
    }

    #[test]
    fn parallel_path_matches_serial() {
        let dim = 8;
        let n = PARALLEL_ROWS + 3 * ROWS_PER_CHUNK + 17;
        let data = testutil::clustered(5, n, dim, 20, 1.0);
        let index = ExactIndex::from_vectors(dim, data).unwrap();
        let q = index.row(12_345).to_vec();
        let got = index.search(&q, 25).unwrap();
        let want = index.scan(&q, &index.vectors(), 0, 25).into_sorted();
        assert_eq!(got, want);
        assert_eq!(got[0].row, 12_345);
    }

    #[test]
    fn k_larger_than_len_returns_all() {
        let index = ExactIndex::from_vectors(2, vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8]).unwrap();
        let hits = index.search(&[1.0, 0.0], 100).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.row).collect::<Vec<_>>(),
            vec![0, 2, 1]
        );
        assert!(index.search(&[1.0, 0.0], 0).unwrap().is_empty());
        assert!(ExactIndex::new(2)
            .search(&[1.0, 0.0], 5)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn ties_broken_by_lower_row() {
        let mut index = ExactIndex::new(2);
        index.add(&[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]).unwrap();
        index.add(&[1.0, 0.0]).unwrap();
        let hits = index.search(&[1.0, 0.0], 2).unwrap();
        assert_eq!(hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![1, 2]);
        let hits = index.search(&[1.0, 0.0], 4).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.row).collect::<Vec<_>>(),
            vec![1, 2, 3, 0]
        );
    }

    #[test]
    fn rejects_bad_input() {
        let mut index = ExactIndex::new(2);
        assert!(matches!(
            index.add(&[1.0, 0.0, 0.0, 0.0]),
            Err(Error::InvalidVector { row: 1, .. })
        ));
        assert!(index.is_empty(), "a rejected batch adds nothing");
        index.add(&[1.0, 0.0]).unwrap();
        assert!(index.search(&[0.0, 0.0], 1).is_err());
        assert!(index.search(&[f32::NAN, 1.0], 1).is_err());
        assert!(index.search(&[1.0, 0.0, 0.0], 1).is_err());
        assert!(ExactIndex::from_vectors(2, vec![1.0, 0.0, 1.0]).is_err());
        // A non-unit query is normalised: the score is a cosine.
        let hit = index.search(&[2.0, 0.0], 1).unwrap()[0];
        assert!((hit.score - 1.0).abs() < 1e-6);
    }
}
