//! Vector index benchmark: exact scan vs HNSW on clustered, embedding-like unit vectors.
//!
//! `PAPERSIM_BENCH_N` sets the number of stored vectors (default 100 000). Before the criterion
//! groups run, a one-off block on stderr reports HNSW build time, per-query latency p50/p95 for
//! both indexes over 1000 queries, HNSW recall@10 against exact search, the exact/HNSW speed
//! ratio, and the cost of adding a 10-vector batch to a large vs an empty HNSW index.
//!
//! ```text
//! PAPERSIM_BENCH_N=20000 cargo bench --bench index -- --quick
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use papersim::index::{ExactIndex, HnswIndex, HnswParams, VectorIndex};

const DIM: usize = 384;
const CLUSTERS: usize = 200;
const QUERIES: usize = 1000;
const K: usize = 10;

/// Runs `f` once and returns its result with the wall time it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// xorshift64* with Box–Muller normals: reproducible data without extra crates.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn gaussian(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// `v` plus isotropic noise of total size `noise`, renormalised (cosine to `v` ≈ 1/sqrt(1+noise²)).
fn perturb(rng: &mut Rng, v: &[f32], noise: f32) -> Vec<f32> {
    let sigma = noise / (v.len() as f32).sqrt();
    let mut p: Vec<f32> = v.iter().map(|x| x + sigma * rng.gaussian()).collect();
    normalize(&mut p);
    p
}

/// `n` unit vectors around random unit centres; intra-cluster cosine ≈ 0.6.
fn clustered(rng: &mut Rng, n: usize) -> Vec<f32> {
    let centres: Vec<Vec<f32>> = (0..CLUSTERS)
        .map(|_| {
            let mut c: Vec<f32> = (0..DIM).map(|_| rng.gaussian()).collect();
            normalize(&mut c);
            c
        })
        .collect();
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let c = &centres[rng.below(CLUSTERS)];
        out.extend(perturb(rng, c, 0.8));
    }
    out
}

struct Fixture {
    n: usize,
    exact: ExactIndex,
    hnsw: HnswIndex,
    queries: Vec<Vec<f32>>,
    build: Duration,
}

impl Fixture {
    fn build() -> Self {
        let n = std::env::var("PAPERSIM_BENCH_N")
            .ok()
            .and_then(|s| s.replace('_', "").parse().ok())
            .unwrap_or(100_000usize);
        let mut rng = Rng::new(2024);
        let data = clustered(&mut rng, n);
        let queries = (0..QUERIES)
            .map(|_| {
                let row = rng.below(n);
                perturb(&mut rng, &data[row * DIM..(row + 1) * DIM], 0.3)
            })
            .collect();
        let mut hnsw = HnswIndex::new(DIM, HnswParams::default(), n).expect("params");
        let ((), build) = timed(|| hnsw.add(&data).expect("valid vectors"));
        let exact = ExactIndex::from_vectors(DIM, data).expect("valid vectors");
        Fixture {
            n,
            exact,
            hnsw,
            queries,
            build,
        }
    }

    /// Per-query latencies (sorted) and results of `index` over all queries.
    fn run(&self, index: &dyn VectorIndex) -> (Vec<Duration>, Vec<Vec<usize>>) {
        let mut latencies = Vec::with_capacity(self.queries.len());
        let mut results = Vec::with_capacity(self.queries.len());
        for q in &self.queries {
            let (hits, t) = timed(|| index.search(q, K).expect("valid query"));
            latencies.push(t);
            results.push(hits.iter().map(|h| h.row).collect());
        }
        latencies.sort();
        (latencies, results)
    }

    /// Mean time to add a 10-vector batch, over `reps` batches.
    fn add_batch(index: &mut HnswIndex, rng: &mut Rng, reps: u32) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..reps {
            let mut batch = Vec::with_capacity(10 * DIM);
            for _ in 0..10 {
                let mut v: Vec<f32> = (0..DIM).map(|_| rng.gaussian()).collect();
                normalize(&mut v);
                batch.extend(v);
            }
            total += timed(|| index.add(&batch).expect("valid vectors")).1;
        }
        total / reps
    }

    fn report(&mut self) {
        let pct = |l: &[Duration], p: f64| l[((l.len() - 1) as f64 * p).round() as usize];
        let (exact_lat, exact_res) = self.run(&self.exact);
        let (hnsw_lat, hnsw_res) = self.run(&self.hnsw);
        let found: usize = exact_res
            .iter()
            .zip(&hnsw_res)
            .map(|(want, got)| got.iter().filter(|r| want.contains(r)).count())
            .sum();
        let recall = found as f64 / (K * self.queries.len()) as f64;
        let mean = |l: &[Duration]| l.iter().sum::<Duration>() / l.len() as u32;

        let mut rng = Rng::new(99);
        let reps = 20;
        let large = Self::add_batch(&mut self.hnsw, &mut rng, reps);
        let small = {
            let mut total = Duration::ZERO;
            for _ in 0..reps {
                let mut empty = HnswIndex::new(DIM, HnswParams::default(), 16).expect("params");
                total += Self::add_batch(&mut empty, &mut rng, 1);
            }
            total / reps
        };

        eprintln!(
            "--- papersim index: {} vectors, dim {DIM}, {CLUSTERS} clusters, k = {K} ---",
            self.n
        );
        eprintln!(
            "HNSW build (m 16, ef_construction 200): {:.2?} ({:.1} µs/vector)",
            self.build,
            self.build.as_secs_f64() * 1e6 / self.n as f64
        );
        eprintln!(
            "exact search: p50 {:.1?}  p95 {:.1?}  mean {:.1?}",
            pct(&exact_lat, 0.5),
            pct(&exact_lat, 0.95),
            mean(&exact_lat)
        );
        eprintln!(
            "HNSW search (ef_search 64): p50 {:.1?}  p95 {:.1?}  mean {:.1?}",
            pct(&hnsw_lat, 0.5),
            pct(&hnsw_lat, 0.95),
            mean(&hnsw_lat)
        );
        eprintln!("HNSW recall@{K} vs exact over {QUERIES} queries: {recall:.4}");
        eprintln!(
            "speed ratio exact/HNSW: p50 {:.1}x  mean {:.1}x",
            pct(&exact_lat, 0.5).as_secs_f64() / pct(&hnsw_lat, 0.5).as_secs_f64(),
            mean(&exact_lat).as_secs_f64() / mean(&hnsw_lat).as_secs_f64()
        );
        eprintln!(
            "add 10-vector batch: to {}-vector index {large:.1?}, to empty index {small:.1?}",
            self.n
        );
        eprintln!("---");
    }
}

fn bench_search(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group(format!("search_k{K}_n{}", f.n));
    let mut i = 0;
    group.bench_function("exact", |b| {
        b.iter(|| {
            i = (i + 1) % f.queries.len();
            black_box(f.exact.search(&f.queries[i], K).expect("valid query"))
        })
    });
    group.bench_function("hnsw", |b| {
        b.iter(|| {
            i = (i + 1) % f.queries.len();
            black_box(f.hnsw.search(&f.queries[i], K).expect("valid query"))
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut fixture = Fixture::build();
    fixture.report();
    bench_search(&mut criterion, &fixture);
    criterion.final_summary();
}
