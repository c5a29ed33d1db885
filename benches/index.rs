//! Library benchmark at scale: exact search against HNSW on 100,000 realistic vectors, and the
//! cost of ingesting a 10-paper digest into a large library against an empty one.
//!
//! The data (see `common`): the real model's embeddings of the real papers in
//! `tests/fixtures/`, a tenth held out as queries the index has never seen, the rest the
//! *bases*. The `PAPERSIM_BENCH_N` stored vectors (default 100,000) are every base once, then
//! variants of random bases: by default (`PAPERSIM_BENCH_MIX=topic`) a base mixed with two of
//! its nearest real papers plus a little noise, i.e. new papers within a real topic;
//! `PAPERSIM_BENCH_MIX=isotropic` makes tight clusters of noisy near-copies instead (see
//! [`Mix`]). The report prints how close the held-out papers' neighbours are in the real set
//! and in the generated one, so the two can be compared.
//!
//! Before the criterion groups run, a one-off report on stderr gives: HNSW build time; search
//! latency p50/p95 and recall@10 against exact search at several `ef_search` values, for the
//! held-out real papers and for perturbed library vectors; and, end to end through the store
//! (open, embed with the real model, add, commit), the time to ingest a 10-paper digest into
//! the large library (a segment) and into an empty one, and the cost of the commit that folds
//! a tenth of the library's size in segments into a new base generation.
//!
//! ```text
//! cargo bench --bench index                            # 100,000 vectors
//! PAPERSIM_BENCH_N=20000 cargo bench --bench index -- --quick
//! ```

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use criterion::Criterion;
use papersim::digest::{self, Digest, ParseOptions};
use papersim::index::{ExactIndex, HnswIndex, HnswParams, VectorIndex};
use papersim::library::{Library, Paper, SeenIn, WriteLock};
use papersim::progress::NoProgress;

mod common;
use common::{perturb, quantile, timed, Mix, RealSet, Variants};

const K: usize = 10;
const QUERIES: usize = 1000;
const EF_SEARCH: [usize; 4] = [16, 32, 64, 128];

struct Fixture {
    mix: Mix,
    /// The real papers, their vectors, bases and held-out queries.
    real: RealSet,
    /// The bases alone: the real papers' vectors.
    real_index: ExactIndex,
    /// For each stored vector, the base it came from.
    origin: Vec<usize>,
    /// The stored vectors, searched exactly.
    exact: ExactIndex,
    hnsw: HnswIndex,
    build: Duration,
    /// Queries of each kind: held-out real papers, perturbed stored vectors.
    real_queries: Vec<Vec<f32>>,
    perturbed_queries: Vec<Vec<f32>>,
}

impl Fixture {
    fn build() -> Result<Self> {
        let n: usize = std::env::var("PAPERSIM_BENCH_N")
            .ok()
            .and_then(|s| s.replace('_', "").parse().ok())
            .unwrap_or(100_000);
        let mix = match std::env::var("PAPERSIM_BENCH_MIX").as_deref() {
            Ok("isotropic") => Mix::Isotropic,
            Ok("topic") | Err(_) => Mix::Topic,
            Ok(other) => anyhow::bail!("PAPERSIM_BENCH_MIX={other}: expected topic or isotropic"),
        };
        let real = RealSet::load()?;
        let dim = real.dim;
        let real_index = real.base_index()?;

        let mut variants = Variants::new(&real, &real_index, mix, 2024)?;
        let mut data = Vec::with_capacity(n * dim);
        let mut origin = Vec::with_capacity(n);
        for _ in 0..n {
            let (base, v) = variants.next_vector();
            origin.push(base);
            data.extend(v);
        }
        let mut rng = variants.into_rng();
        let real_queries: Vec<Vec<f32>> = real
            .held_out
            .iter()
            .map(|&i| real.row(i).to_vec())
            .collect();
        let perturbed_queries = (0..QUERIES)
            .map(|_| {
                let r = rng.below(n);
                perturb(&mut rng, &data[r * dim..(r + 1) * dim], 0.3)
            })
            .collect();

        let mut hnsw = HnswIndex::new(dim, HnswParams::default(), n)?;
        let (added, build) = timed(|| hnsw.add(&data));
        added?;
        let exact = ExactIndex::from_vectors(dim, data)?;
        Ok(Fixture {
            mix,
            real,
            real_index,
            origin,
            exact,
            hnsw,
            build,
            real_queries,
            perturbed_queries,
        })
    }

    fn n(&self) -> usize {
        self.origin.len()
    }

    /// Sorted per-query latencies and the rows found, over `queries`.
    fn run(
        index: &dyn VectorIndex,
        queries: &[Vec<f32>],
    ) -> Result<(Vec<Duration>, Vec<Vec<usize>>)> {
        let mut latencies = Vec::with_capacity(queries.len());
        let mut results = Vec::with_capacity(queries.len());
        for q in queries {
            let (hits, t) = timed(|| index.search(q, K));
            latencies.push(t);
            results.push(hits?.iter().map(|h| h.row).collect());
        }
        latencies.sort();
        Ok((latencies, results))
    }

    fn recall(want: &[Vec<usize>], got: &[Vec<usize>]) -> f64 {
        let found: usize = want
            .iter()
            .zip(got)
            .map(|(w, g)| g.iter().filter(|r| w.contains(r)).count())
            .sum();
        found as f64 / (K * want.len()) as f64
    }

    fn report_search(&mut self) -> Result<()> {
        eprintln!(
            "--- papersim index: {} vectors (from {} real papers' embeddings, {:?} mix), dim {}, k = {K} ---",
            self.n(),
            self.real.bases.len(),
            self.mix,
            self.real.dim
        );
        // How close a new real paper's neighbours are, among the real papers and in the
        // generated library: the generated set should be denser, not of another shape.
        for (name, index) in [
            ("the real papers", &self.real_index),
            ("the generated library", &self.exact),
        ] {
            let (mut first, mut tenth) = (0.0, 0.0);
            for q in &self.real_queries {
                let hits = index.search(q, K)?;
                first += hits[0].score as f64;
                tenth += hits[K - 1].score as f64;
            }
            let n = self.real_queries.len() as f64;
            eprintln!(
                "held-out real papers' neighbours in {name}: mean cosine of the 1st {:.3}, of the 10th {:.3}",
                first / n,
                tenth / n
            );
        }
        let p = HnswParams::default();
        eprintln!(
            "HNSW build (m {}, ef_construction {}): {:.2?} ({:.0} µs/vector, {} threads)",
            p.m,
            p.ef_construction,
            self.build,
            self.build.as_secs_f64() * 1e6 / self.n() as f64,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        for (kind, queries) in [
            ("held-out real papers", &self.real_queries),
            ("perturbed library vectors", &self.perturbed_queries),
        ] {
            let (exact_lat, exact_res) = Self::run(&self.exact, queries)?;
            eprintln!(
                "{kind} ({} queries): exact search p50 {:.2?} p95 {:.2?}",
                queries.len(),
                quantile(&exact_lat, 0.5),
                quantile(&exact_lat, 0.95)
            );
            for ef in EF_SEARCH {
                self.hnsw.set_ef_search(ef);
                let (lat, res) = Self::run(&self.hnsw, queries)?;
                eprintln!(
                    "  HNSW ef_search {ef:>3}: p50 {:>9.2?} p95 {:>9.2?}  recall@{K} {:.4}  speed-up over exact (p50) {:.0}x",
                    quantile(&lat, 0.5),
                    quantile(&lat, 0.95),
                    Self::recall(&exact_res, &res),
                    quantile(&exact_lat, 0.5).as_secs_f64() / quantile(&lat, 0.5).as_secs_f64()
                );
            }
        }
        self.hnsw.set_ef_search(p.ef_search);
        Ok(())
    }

    /// Papers for the stored vectors: each carries its base paper's text, so the lexical index
    /// the store keeps beside the vectors has realistic size too.
    fn library_papers(&self) -> Vec<Paper> {
        (0..self.n())
            .map(|i| {
                let base = &self.real.papers[self.origin[i]];
                Paper {
                    id: format!("bench:{i}"),
                    title: format!("{} [{i}]", base.title),
                    abstract_text: base.abstract_text.clone(),
                    date: None,
                    url: None,
                    authors: Vec::new(),
                    categories: Vec::new(),
                    seen_in: vec![SeenIn {
                        digest: "bench".into(),
                        date: None,
                    }],
                    aliases: Vec::new(),
                }
            })
            .collect()
    }

    /// A digest of 10 held-out real papers (so they are new to any library built here).
    fn ten_paper_digest(&self, round: usize) -> Result<Digest> {
        let mut text = String::new();
        for k in 0..10 {
            let p =
                &self.real.papers[self.real.held_out[(round * 10 + k) % self.real.held_out.len()]];
            text.push_str(&format!("{}\n\n{}\n\n", p.title, p.abstract_text));
        }
        Ok(digest::parse_bytes(
            &format!("bench_2026-03-{:02}.txt", 1 + round % 28),
            text.as_bytes(),
            &ParseOptions::default(),
        )?)
    }

    /// One ingest as `papersim ingest` does it: lock, open, embed and add, commit. Returns the
    /// time of each step.
    fn ingest_once(&self, root: &Path, digest: &Digest) -> Result<[Duration; 4]> {
        let start = Instant::now();
        let lock = WriteLock::acquire(root, false)?;
        let mut lib = if Library::exists(root) {
            Library::open(root)?
        } else {
            Library::create(
                root,
                papersim::pipeline::model_info(self.real.embedder.files())?,
                HnswParams::default(),
            )?
        };
        let opened = start.elapsed();
        let report = papersim::pipeline::ingest_into(
            &mut lib,
            std::slice::from_ref(digest),
            &self.real.embedder,
            &NoProgress,
        )?;
        anyhow::ensure!(report.added == 10, "expected 10 new papers, got {report:?}");
        let added = start.elapsed();
        lib.commit(&lock)?;
        let committed = start.elapsed();
        Ok([opened, added - opened, committed - added, committed])
    }

    fn report_ingest(&self) -> Result<()> {
        let scratch = tempfile::Builder::new()
            .prefix("papersim-bench-")
            .tempdir_in(common::target_dir())?;
        let large = scratch.path().join("large");
        let (built, t) = timed(|| -> Result<u64> {
            let lock = WriteLock::acquire(&large, false)?;
            let mut lib = Library::create(
                &large,
                papersim::pipeline::model_info(self.real.embedder.files())?,
                HnswParams::default(),
            )?;
            lib.add_embedded(self.library_papers(), &self.exact.vectors())?;
            lib.commit(&lock)?;
            Ok(lib.size_on_disk())
        });
        let size = built?;
        eprintln!(
            "library of {} papers written in {t:.1?}: {:.0} MiB on disk",
            self.n(),
            size as f64 / (1 << 20) as f64
        );

        // Warm the model and the page cache for both cases alike.
        let _ = self.real.embedder.embed(&["warm-up"])?;
        let rounds = 3;
        let mut into_large = Vec::new();
        let mut into_empty = Vec::new();
        for round in 0..rounds {
            let digest = self.ten_paper_digest(round)?;
            into_large.push(self.ingest_once(&large, &digest)?);
            let empty = scratch.path().join(format!("empty-{round}"));
            into_empty.push(self.ingest_once(&empty, &digest)?);
        }
        let median = |runs: &[[Duration; 4]], step: usize| {
            let mut v: Vec<Duration> = runs.iter().map(|r| r[step]).collect();
            v.sort();
            v[v.len() / 2]
        };
        for (name, runs) in [
            (format!("into a {}-paper library", self.n()), &into_large),
            ("into an empty library".to_string(), &into_empty),
        ] {
            eprintln!(
                "ingest a 10-paper digest {name}: {:.2?} (open {:.2?}, embed and add {:.2?}, commit {:.2?}; median of {rounds})",
                median(runs, 3),
                median(runs, 0),
                median(runs, 1),
                median(runs, 2)
            );
        }
        eprintln!(
            "ratio large/empty: {:.1}x",
            median(&into_large, 3).as_secs_f64() / median(&into_empty, 3).as_secs_f64()
        );
        let lib = Library::open(&large)?;
        let segments = &lib.manifest().segments;
        eprintln!(
            "the large library's {} ingests wrote {} segments of {:.0} KiB each (the base: {:.0} MiB)",
            rounds,
            segments.len(),
            (lib.size_on_disk() - size) as f64 / segments.len().max(1) as f64 / 1024.0,
            size as f64 / (1 << 20) as f64
        );
        drop(lib);
        self.report_fold(&large)?;
        eprintln!("---");
        Ok(())
    }

    /// The commit that folds the segments into a new base generation once they pass a tenth of
    /// it: what the library pays once per that many papers, instead of at every ingest.
    fn report_fold(&self, root: &Path) -> Result<()> {
        let lock = WriteLock::acquire(root, false)?;
        let mut lib = Library::open(root)?;
        let fold = (lib.len() as f64 * papersim::library::COMPACT_FRACTION) as usize + 1;
        let dim = lib.dim();
        let papers: Vec<Paper> = self
            .library_papers()
            .into_iter()
            .take(fold)
            .map(|mut p| {
                p.id = format!("fold:{}", p.id);
                p.title = format!("{} (folded)", p.title);
                p
            })
            .collect();
        let vectors = &self.exact.vectors()[..papers.len() * dim];
        lib.add_embedded(papers, vectors)?;
        let (committed, t) = timed(|| lib.commit(&lock));
        committed?;
        anyhow::ensure!(
            lib.manifest().segments.is_empty(),
            "the commit did not fold the segments"
        );
        eprintln!(
            "folding {} papers outside the base into a new base of {} (graph inserts included): {t:.2?}, \
             i.e. {:.1} ms per folded paper",
            fold,
            lib.len(),
            t.as_secs_f64() * 1e3 / fold as f64
        );
        Ok(())
    }
}

fn bench_search(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group(format!("search_k{K}_n{}", f.n()));
    let queries = &f.real_queries;
    let mut i = 0;
    group.bench_function("exact", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(f.exact.search(&queries[i], K).expect("valid query"))
        })
    });
    group.bench_function("hnsw", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(f.hnsw.search(&queries[i], K).expect("valid query"))
        })
    });
    group.finish();
}

fn main() -> Result<()> {
    let mut criterion = Criterion::default().configure_from_args();
    let mut fixture = Fixture::build()?;
    fixture.report_search()?;
    fixture.report_ingest()?;
    bench_search(&mut criterion, &fixture);
    criterion.final_summary();
    Ok(())
}
