//! The search of an HNSW graph over a flat copy of its links, made once per graph: the
//! same walk as `hnsw_rs`'s `search` (a greedy step down each upper layer from the entry
//! point, then a best-first search of layer 0 that keeps the `ef` nearest), on plain arrays.
//!
//! Why: `hnsw_rs` walks its graph through a read lock per point, an `Arc` clone and an
//! allocation per candidate, and a SipHash map of the points visited. At 100,000 papers that
//! bookkeeping cost as much as the distances (a profile of the server: `search_layer` 15% of
//! its time, the distances 16%). Here the links are rows in one array, the points visited a
//! stamp per row, and the candidates two heaps of (distance, row); the distances are the
//! graph's own ([`ClampedDot`] over the vectors the graph holds), so the walk visits what
//! `hnsw_rs` would and ranks alike (ties between equal distances aside).

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use hnsw_rs::hnsw::Point;
use hnsw_rs::prelude::Distance;

use super::{ClampedDot, Graph};

/// The links of every point of a graph, by row (the graph's data id).
pub(super) struct Links<'io> {
    /// Each row's point, which holds its vector: kept so that `vectors` stay valid.
    points: Vec<Arc<Point<'io, f32>>>,
    /// Where each row's vector starts (in its point), `dim` floats.
    vectors: Vec<*const f32>,
    dim: usize,
    /// Row `r`'s neighbours on layer 0 are `layer0[starts[r]..starts[r + 1]]`.
    starts: Vec<u32>,
    layer0: Vec<u32>,
    /// The neighbours of the points above layer 0, layer by layer (index 0: layer 1).
    upper: HashMap<u32, Vec<Vec<u32>>>,
    /// Where every search starts: a point of the top layer.
    entry: u32,
    top: usize,
}

/// A distance to the query and a row, ordered by distance (then row, so that the walk is the
/// same on every run).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near(f32, u32);

impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

thread_local! {
    /// Per thread: a stamp per row, equal to `.1` for the rows the current walk has visited.
    static VISITED: RefCell<(Vec<u32>, u32)> = const { RefCell::new((Vec::new(), 0)) };
}

impl<'io> Links<'io> {
    /// The links of `graph` holding rows `0..len`, or `None` when its points are not exactly
    /// those rows (the caller then searches with `hnsw_rs` itself).
    pub(super) fn of(graph: &Graph<'io>, len: usize) -> Option<Links<'io>> {
        if len == 0 || len > u32::MAX as usize {
            return None;
        }
        let mut points: Vec<Option<Arc<Point<'io, f32>>>> = vec![None; len];
        let mut neighbours: Vec<Vec<Vec<u32>>> = vec![Vec::new(); len];
        let top = graph.get_max_level_observed() as usize;
        let mut entry = None;
        for point in graph.get_point_indexation() {
            let row = point.get_origin_id();
            let slot = points.get_mut(row)?;
            if slot.is_some() {
                return None;
            }
            if entry.is_none() && point.get_point_id().0 as usize == top {
                entry = Some(row as u32);
            }
            neighbours[row] = point
                .get_neighborhood_id()
                .into_iter()
                .map(|layer| layer.into_iter().map(|n| n.d_id as u32).collect())
                .collect();
            *slot = Some(point);
        }
        let points: Vec<Arc<Point<'io, f32>>> = points.into_iter().collect::<Option<_>>()?;
        let dim = points[0].get_v().len();
        if points.iter().any(|p| p.get_v().len() != dim) {
            return None;
        }
        let vectors = points.iter().map(|p| p.get_v().as_ptr()).collect();
        let mut starts = Vec::with_capacity(len + 1);
        let mut layer0 = Vec::new();
        let mut upper = HashMap::new();
        for (row, mut layers) in neighbours.into_iter().enumerate() {
            starts.push(u32::try_from(layer0.len()).ok()?);
            if layers.is_empty() {
                continue;
            }
            let rest = layers.split_off(1);
            let own = layers.pop().unwrap_or_default();
            if own
                .iter()
                .chain(rest.iter().flatten())
                .any(|&n| n as usize >= len)
            {
                return None;
            }
            layer0.extend(own);
            if rest.iter().any(|l| !l.is_empty()) {
                upper.insert(row as u32, rest);
            }
        }
        starts.push(u32::try_from(layer0.len()).ok()?);
        Some(Links {
            points,
            vectors,
            dim,
            starts,
            layer0,
            upper,
            entry: entry?,
            top,
        })
    }

    fn vector(&self, row: u32) -> &[f32] {
        // SAFETY: the pointer is the start of the `dim` floats of row's point, which
        // `self.points` keeps alive; a point's vector is never changed or moved after its
        // insertion (the graph only ever reads it).
        unsafe { std::slice::from_raw_parts(self.vectors[row as usize], self.dim) }
    }

    fn distance(&self, query: &[f32], row: u32) -> f32 {
        ClampedDot.eval(query, self.vector(row))
    }

    /// Asks the CPU for the start of `row`'s vector ahead of its distance.
    #[inline]
    fn prefetch(&self, row: u32) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults, whatever the address.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch(self.vectors[row as usize] as *const i8, _MM_HINT_T0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = row;
    }

    fn layer0(&self, row: u32) -> &[u32] {
        &self.layer0[self.starts[row as usize] as usize..self.starts[row as usize + 1] as usize]
    }

    /// The `k` nearest rows to `query` found with a search `ef` wide, nearest first, with
    /// their distances (as `hnsw_rs`'s `search(query, k, ef)`).
    pub(super) fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        let ef = ef.max(k).max(1);
        // Down the upper layers: on each, the nearest of the current point's neighbours, if
        // nearer than it.
        let mut pivot = Near(self.distance(query, self.entry), self.entry);
        for layer in (1..=self.top).rev() {
            let links = self
                .upper
                .get(&pivot.1)
                .and_then(|layers| layers.get(layer - 1));
            let mut best = pivot;
            for &n in links.into_iter().flatten() {
                let d = self.distance(query, n);
                if d < best.0 {
                    best = Near(d, n);
                }
            }
            pivot = best;
        }
        VISITED.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (stamps, stamp) = &mut *guard;
            if stamps.len() < self.points.len() {
                stamps.resize(self.points.len(), 0);
            }
            *stamp = stamp.wrapping_add(1);
            if *stamp == 0 {
                // A stamp left from 4 billion walks ago must not read as visited.
                stamps.iter_mut().for_each(|s| *s = 0);
                *stamp = 1;
            }
            let stamp = *stamp;
            stamps[pivot.1 as usize] = stamp;
            let mut candidates = BinaryHeap::with_capacity(ef);
            let mut found: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
            candidates.push(Reverse(pivot));
            found.push(pivot);
            while let Some(Reverse(c)) = candidates.pop() {
                let farthest = found.peek().map_or(f32::INFINITY, |f| f.0);
                if c.0 > farthest {
                    break;
                }
                let links = self.layer0(c.1);
                for &n in links {
                    if stamps[n as usize] != stamp {
                        self.prefetch(n);
                    }
                }
                for &n in links {
                    let seen = &mut stamps[n as usize];
                    if *seen == stamp {
                        continue;
                    }
                    *seen = stamp;
                    let d = self.distance(query, n);
                    let farthest = found.peek().map_or(f32::INFINITY, |f| f.0);
                    if d < farthest || found.len() < ef {
                        candidates.push(Reverse(Near(d, n)));
                        found.push(Near(d, n));
                        if found.len() > ef {
                            found.pop();
                        }
                    }
                }
            }
            let mut nearest = found.into_sorted_vec();
            nearest.truncate(k);
            nearest
                .into_iter()
                .map(|Near(d, row)| (row as usize, d))
                .collect()
        })
    }
}

// SAFETY: the raw pointers in `vectors` point into the points that `points` holds, which are
// `Send + Sync` themselves (`Arc<Point>` is shared across threads by the graph); the links
// only ever read through them.
unsafe impl Send for Links<'_> {}
unsafe impl Sync for Links<'_> {}
