//! Exact (brute-force) search: every query scores every stored row.

use rayon::prelude::*;

use super::{dot, normalized_query, validate_vectors, Hit, TopK, VectorIndex};
use crate::Result;

/// Above this many rows a search is split across rayon's threads.
const PARALLEL_ROWS: usize = 20_000;
/// Rows per parallel work item.
const ROWS_PER_CHUNK: usize = 4_096;

/// A flat, row-major array of unit vectors searched exhaustively. Exact, with O(len·dim) work
/// per query.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactIndex {
    dim: usize,
    data: Vec<f32>,
}

impl ExactIndex {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        ExactIndex {
            dim,
            data: Vec::new(),
        }
    }

    /// An index holding `vectors` (row-major) as rows 0.., after [`validate_vectors`].
    pub fn from_vectors(dim: usize, vectors: Vec<f32>) -> Result<Self> {
        validate_vectors(&vectors, dim, 0)?;
        Ok(ExactIndex { dim, data: vectors })
    }

    /// All stored vectors, row-major.
    pub fn vectors(&self) -> &[f32] {
        &self.data
    }

    /// The vector stored at row `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
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
        let rows = &self.data[first_row * self.dim..];
        let top = if rows.len() / self.dim > PARALLEL_ROWS {
            rows.par_chunks(ROWS_PER_CHUNK * self.dim)
                .enumerate()
                .map(|(c, chunk)| self.scan(&query, chunk, first_row + c * ROWS_PER_CHUNK, k))
                .reduce(|| TopK::new(k), TopK::merge)
        } else {
            self.scan(&query, rows, first_row, k)
        };
        Ok(top.into_sorted())
    }

    /// Top-k of the rows in `chunk`, whose first row is `first_row`.
    fn scan(&self, query: &[f32], chunk: &[f32], first_row: usize, k: usize) -> TopK {
        let mut top = TopK::new(k);
        for (i, v) in chunk.chunks_exact(self.dim).enumerate() {
            top.push(Hit {
                row: first_row + i,
                score: dot(query, v).clamp(-1.0, 1.0),
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
        self.data.len().checked_div(self.dim).unwrap_or(0)
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
    fn parallel_path_matches_serial() {
        let dim = 8;
        let n = PARALLEL_ROWS + 3 * ROWS_PER_CHUNK + 17;
        let data = testutil::clustered(5, n, dim, 20, 1.0);
        let index = ExactIndex::from_vectors(dim, data).unwrap();
        let q = index.row(12_345).to_vec();
        let got = index.search(&q, 25).unwrap();
        let want = index.scan(&q, index.vectors(), 0, 25).into_sorted();
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
