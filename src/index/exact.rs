//! Exact (brute-force) search: every query scores every stored row, stored as f32 or as f16
//! ([`VectorDtype`]).

use std::borrow::Cow;
use std::sync::Arc;

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

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
/// [`SharedRows`] stored as f16 (a library created with `--vector-dtype f16`).
pub type SharedHalfRows = Arc<dyn AsRef<[f16]> + Send + Sync>;

/// Shared rows of either precision.
#[derive(Clone)]
pub enum SharedVectors {
    F32(SharedRows),
    F16(SharedHalfRows),
}

impl SharedVectors {
    /// The number of values (rows × dimension).
    fn values(&self) -> usize {
        match self {
            SharedVectors::F32(s) => (**s).as_ref().len(),
            SharedVectors::F16(s) => (**s).as_ref().len(),
        }
    }

    /// Values `range`, as f32: borrowed, or converted from f16 (exactly: every f16 is an f32).
    fn f32s(&self, range: std::ops::Range<usize>) -> Cow<'_, [f32]> {
        match self {
            SharedVectors::F32(s) => Cow::Borrowed(&(**s).as_ref()[range]),
            SharedVectors::F16(s) => Cow::Owned((**s).as_ref()[range].to_f32_vec()),
        }
    }
}

/// The precision a library stores its vectors at, on disk and in an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorDtype {
    /// 32-bit floats: the vectors as the model gives them.
    #[default]
    F32,
    /// IEEE half precision: half the bytes to store, map and scan. Each value is rounded to
    /// the nearest f16 (11 significant bits, relative error at most 2^-11), which moves a
    /// cosine by about 1e-4.
    F16,
}

impl VectorDtype {
    pub fn is_f32(&self) -> bool {
        *self == VectorDtype::F32
    }

    /// As `--vector-dtype` and the manifest spell it.
    pub fn name(self) -> &'static str {
        match self {
            VectorDtype::F32 => "f32",
            VectorDtype::F16 => "f16",
        }
    }

    /// Bytes a value takes.
    pub fn bytes(self) -> usize {
        match self {
            VectorDtype::F32 => 4,
            VectorDtype::F16 => 2,
        }
    }

    /// Rounds `values` to this precision in place (nothing to do for f32), so that vectors
    /// held in memory equal what a commit writes and a reader maps.
    pub fn round(self, values: &mut [f32]) {
        if self == VectorDtype::F16 {
            for x in values {
                *x = f16::from_f32(*x).to_f32();
            }
        }
    }
}

impl std::fmt::Display for VectorDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for VectorDtype {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(VectorDtype::F32),
            "f16" => Ok(VectorDtype::F16),
            other => Err(format!(
                "`{other}` is not a vector dtype papersim stores: f32 (the default) or f16"
            )),
        }
    }
}

/// A flat, row-major array of unit vectors searched exhaustively. Exact, with O(len·dim) work
/// per query. The first rows may be [`SharedVectors`] (a library's base generation, mapped,
/// f32 or f16); the rest, and every row once one is replaced, live in the index's own memory
/// as f32, rounded to the index's [`VectorDtype`].
#[derive(Clone)]
pub struct ExactIndex {
    dim: usize,
    dtype: VectorDtype,
    shared: Option<SharedVectors>,
    data: Vec<f32>,
}

impl std::fmt::Debug for ExactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactIndex")
            .field("dim", &self.dim)
            .field("dtype", &self.dtype)
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
            dtype: VectorDtype::F32,
            shared: None,
            data: Vec::new(),
        }
    }

    /// An index holding `vectors` (row-major) as rows 0.., after [`validate_vectors`].
    pub fn from_vectors(dim: usize, vectors: Vec<f32>) -> Result<Self> {
        validate_vectors(&vectors, dim, 0)?;
        Ok(ExactIndex {
            dim,
            dtype: VectorDtype::F32,
            shared: None,
            data: vectors,
        })
    }

    /// An index whose rows 0.. are `rows`, used where they are (not copied, not re-checked:
    /// at a million papers checking every vector would cost what mapping them saves). Only
    /// their shape is checked.
    pub fn from_shared(dim: usize, rows: SharedRows) -> Result<Self> {
        Self::from_shared_vectors(dim, SharedVectors::F32(rows))
    }

    /// As [`ExactIndex::from_shared`], for rows of either precision: the index takes their
    /// [`VectorDtype`], and rows added later are rounded to it.
    pub fn from_shared_vectors(dim: usize, rows: SharedVectors) -> Result<Self> {
        let len = rows.values();
        if dim == 0 || !len.is_multiple_of(dim) {
            return Err(crate::Error::InvalidVector {
                row: 0,
                reason: format!("{len} values are not whole vectors of dimension {dim}"),
            });
        }
        let dtype = match rows {
            SharedVectors::F32(_) => VectorDtype::F32,
            SharedVectors::F16(_) => VectorDtype::F16,
        };
        Ok(ExactIndex {
            dim,
            dtype,
            shared: Some(rows),
            data: Vec::new(),
        })
    }

    /// The precision rows are kept at.
    pub fn dtype(&self) -> VectorDtype {
        self.dtype
    }

    /// Keeps every row at `dtype` from now on: shared rows are copied into the index's own
    /// memory, and each value is rounded to `dtype` (f32 to f16 rounds; f16 to f32 is exact).
    pub fn convert(&mut self, dtype: VectorDtype) {
        if dtype == self.dtype {
            return;
        }
        if self.shared.is_some() {
            self.data = self.vectors().into_owned();
            self.shared = None;
        }
        dtype.round(&mut self.data);
        self.dtype = dtype;
    }

    /// `self` converted to `dtype` (see [`ExactIndex::convert`]).
    pub fn with_dtype(mut self, dtype: VectorDtype) -> Self {
        self.convert(dtype);
        self
    }

    fn shared_values(&self) -> usize {
        self.shared.as_ref().map_or(0, SharedVectors::values)
    }

    fn shared_rows(&self) -> usize {
        self.shared_values() / self.dim.max(1)
    }

    /// All stored vectors, row-major: borrowed when they lie in one place, else copied.
    pub fn vectors(&self) -> Cow<'_, [f32]> {
        self.rows_from(0)
    }

    /// The vectors of rows `first_row..`, row-major (borrowed when they lie in one place).
    pub fn rows_from(&self, first_row: usize) -> Cow<'_, [f32]> {
        let shared_len = self.shared_values();
        let start = (first_row * self.dim).min(shared_len + self.data.len());
        match &self.shared {
            Some(shared) if start < shared_len => {
                let rows = shared.f32s(start..shared_len);
                if self.data.is_empty() {
                    rows
                } else {
                    Cow::Owned([&rows[..], &self.data[..]].concat())
                }
            }
            _ => Cow::Borrowed(&self.data[start - shared_len..]),
        }
    }

    /// The vector stored at row `i`: borrowed, or converted to f32 from a shared f16 row.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn row(&self, i: usize) -> Cow<'_, [f32]> {
        let shared = self.shared_rows();
        match &self.shared {
            Some(rows) if i < shared => rows.f32s(i * self.dim..(i + 1) * self.dim),
            _ => {
                let i = i - shared;
                Cow::Borrowed(&self.data[i * self.dim..(i + 1) * self.dim])
            }
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
        let row = &mut self.data[i * self.dim..(i + 1) * self.dim];
        row.copy_from_slice(vector);
        self.dtype.round(row);
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
        let split = self.shared_rows();
        let mut top = TopK::new(k);
        let from = first_row * self.dim;
        match &self.shared {
            Some(SharedVectors::F32(rows)) if first_row < split => {
                let rows = &(**rows).as_ref()[from..];
                top = top.merge(self.scan_rows(&query, rows, first_row, k));
            }
            Some(SharedVectors::F16(rows)) if first_row < split => {
                let rows = &(**rows).as_ref()[from..];
                top = top.merge(self.scan_half_rows(&query, rows, first_row, k));
            }
            _ => {}
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

    /// [`ExactIndex::scan_rows`] of f16 rows.
    fn scan_half_rows(&self, query: &[f32], rows: &[f16], first_row: usize, k: usize) -> TopK {
        let scan = |chunk: &[f16], first_row: usize| {
            pulp::Arch::new().dispatch(HalfScan {
                query,
                chunk,
                dim: self.dim,
                first_row,
                k,
            })
        };
        if rows.len() / self.dim > PARALLEL_ROWS {
            rows.par_chunks(ROWS_PER_CHUNK * self.dim)
                .enumerate()
                .map(|(c, chunk)| scan(chunk, first_row + c * ROWS_PER_CHUNK))
                .reduce(|| TopK::new(k), TopK::merge)
        } else {
            scan(rows, first_row)
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
        push_scores(&mut top, self.query, self.chunk, self.dim, self.first_row);
        top
    }
}

/// Scores each row of `rows` (contiguous, `dim` values each, the first being row `first_row`)
/// against `query` into `top`: the loop both scans share, inlined into their dispatched code.
#[inline(always)]
fn push_scores(top: &mut TopK, query: &[f32], rows: &[f32], dim: usize, first_row: usize) {
    for (i, v) in rows.chunks_exact(dim).enumerate() {
        top.push(Hit {
            row: first_row + i,
            score: dot(query, v).clamp(-1.0, 1.0),
        });
    }
}

/// Rows of f16 converted to f32 at a time by [`HalfScan`]: 16 rows of 384 dimensions are
/// 24 KiB, which stay in the L1 cache between their conversion and their dot products.
const HALF_BLOCK_ROWS: usize = 16;

/// [`Scan`] of f16 rows: each block of rows is converted to f32 (`half`'s slice conversion,
/// F16C instructions where the CPU has them), then scored by the same [`dot`] as f32 rows,
/// so a score is exactly the f32 scan's score of the row as f16 holds it.
struct HalfScan<'a> {
    query: &'a [f32],
    chunk: &'a [f16],
    dim: usize,
    first_row: usize,
    k: usize,
}

impl pulp::WithSimd for HalfScan<'_> {
    type Output = TopK;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> TopK {
        let mut top = TopK::new(self.k);
        let block = HALF_BLOCK_ROWS * self.dim;
        let mut buffer = vec![0.0f32; block];
        for (b, rows) in self.chunk.chunks(block).enumerate() {
            let converted = &mut buffer[..rows.len()];
            rows.convert_to_f32_slice(converted);
            let first_row = self.first_row + b * HALF_BLOCK_ROWS;
            push_scores(&mut top, self.query, converted, self.dim, first_row);
        }
        top
    }
}

impl VectorIndex for ExactIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        (self.shared_values() + self.data.len())
            .checked_div(self.dim)
            .unwrap_or(0)
    }

    fn add(&mut self, vectors: &[f32]) -> Result<()> {
        validate_vectors(vectors, self.dim, self.len())?;
        let at = self.data.len();
        self.data.extend_from_slice(vectors);
        self.dtype.round(&mut self.data[at..]);
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
    fn f16_rows_score_as_their_f32_values_and_near_the_f32_originals() {
        let dim = 24;
        // Past the parallel threshold, with a partial block and chunk at the end.
        let n = PARALLEL_ROWS + ROWS_PER_CHUNK + 2 * HALF_BLOCK_ROWS + 3;
        let data = testutil::clustered(11, n + 40, dim, 30, 1.0);
        let (base, tail) = data.split_at(n * dim);
        let halves: Vec<f16> = base.iter().map(|&x| f16::from_f32(x)).collect();
        let mut half =
            ExactIndex::from_shared_vectors(dim, SharedVectors::F16(Arc::new(halves))).unwrap();
        half.add(tail).unwrap();
        assert_eq!(half.dtype(), VectorDtype::F16);
        let mut rounded = data.clone();
        VectorDtype::F16.round(&mut rounded);
        assert_ne!(rounded, data, "rounding to f16 changes values");
        // The f32 scan of the rows as f16 holds them: bit-identical scores.
        let reference = ExactIndex::from_vectors(dim, rounded.clone()).unwrap();
        let original = ExactIndex::from_vectors(dim, data.clone()).unwrap();
        assert_eq!(half, reference);
        assert_eq!(&*half.row(5), &rounded[5 * dim..6 * dim]);
        assert_eq!(&*half.row(n + 1), &rounded[(n + 1) * dim..(n + 2) * dim]);
        assert_eq!(&*half.rows_from(n - 1), &rounded[(n - 1) * dim..]);
        let mut rng = testutil::Rng::new(12);
        for first in [0, 17, n - 5, n + 3] {
            let q = testutil::random_unit(&mut rng, dim);
            let got = half.search_from(&q, 10, first).unwrap();
            assert_eq!(got, reference.search_from(&q, 10, first).unwrap());
            // Against the unrounded vectors: the same neighbours, scores within 1e-3.
            let want = original.search_from(&q, 10, first).unwrap();
            let shared = got
                .iter()
                .filter(|g| want.iter().any(|w| w.row == g.row))
                .count();
            assert!(shared >= 9, "from row {first}: {got:?} vs {want:?}");
            for g in &got {
                let exact = dot(&q, original.row(g.row).as_ref());
                assert!((g.score - exact).abs() < 1e-3, "row {}", g.row);
            }
        }
        // Converting to f16 rounds; converting back is exact.
        let mut converted = original.clone().with_dtype(VectorDtype::F16);
        assert_eq!(converted, reference);
        converted.convert(VectorDtype::F32);
        assert_eq!(converted, reference);
        assert_eq!(converted.dtype(), VectorDtype::F32);
        // A replaced row is rounded too.
        half.set_row(2, &data[..dim]).unwrap();
        assert_eq!(&*half.row(2), &rounded[..dim]);
        assert_eq!("f16".parse::<VectorDtype>(), Ok(VectorDtype::F16));
        assert!("f8".parse::<VectorDtype>().unwrap_err().contains("f32"));
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
