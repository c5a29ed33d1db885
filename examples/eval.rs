//! Measures dense, lexical and hybrid ranking (docs/hybrid.md); run it with `scripts/eval.sh`.
//!
//! Needs `../shared/data/arxiv-cs/` beside the checkout (the open evaluation and the arXiv
//! corpus) and the default model. Three parts:
//!
//! 1. **Open evaluation** (`eval-category/`): a library of the 6,400 corpus papers; each of the
//!    400 query papers (title and abstract, with its own embedding) is ranked against it as
//!    `papersim query` does, and precision@10 / nDCG@20 count the papers of its primary
//!    category. Fusion weights are chosen here and nowhere else.
//! 2. **Seed digest** (`tests/fixtures/digests/hf-trending-mar-11.txt`): the topic neighbours the
//!    CLI tests expect, per mode.
//! 3. **Latency** on a library of 12,000 papers: the 6,400 above with their real embeddings,
//!    plus 5,600 further arXiv papers with real titles and abstracts (so BM25 sees real text)
//!    whose vectors are NOT model embeddings but perturbed copies of real ones (cosine ≈ 0.9 to
//!    the copied vector), to spare 12 minutes of embedding; p50/p95 per mode.
//!
//! Embeddings and libraries are cached under `target/eval-lib/` (embedding 6,800 abstracts
//! takes 15-40 minutes on a laptop CPU; everything after that takes about a minute).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use papersim::digest::{self, ParseOptions};
use papersim::encode::device::DeviceRequest;
use papersim::index::lexical::{paper_text, tokens};
use papersim::index::HnswParams;
use papersim::library::npy;
use papersim::library::{Library, Paper, WriteLock};
use papersim::paper::embedding_text;
use papersim::progress::{NoProgress, Progress};
use papersim::rank::RankOptions;
use papersim::rank::{self, Fusion, Retrieval};
use papersim::{Embedder, EmbedderConfig};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
struct Doc {
    #[serde(alias = "query_id")]
    id: String,
    title: String,
    #[serde(rename = "abstract")]
    abstract_text: String,
    #[serde(default)]
    categories: Vec<String>,
}

impl Doc {
    fn paper(&self) -> Paper {
        Paper {
            id: self.id.clone(),
            title: self.title.clone(),
            abstract_text: self.abstract_text.clone(),
            date: None,
            url: None,
            authors: Vec::new(),
            categories: self.categories.clone(),
            seen_in: Vec::new(),
            aliases: Vec::new(),
        }
    }
}

fn read_gz(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the evaluation needs ../shared/data/arxiv-cs beside the checkout)",
            path.display()
        )
    });
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn read_docs(path: &Path) -> Vec<Doc> {
    read_gz(path)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

struct Counter {
    done: AtomicU64,
    total: AtomicU64,
    start: Instant,
}

impl Progress for Counter {
    fn start(&self, label: &str, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        eprintln!("{label}: {total}");
    }
    fn advance(&self, n: u64) {
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        if (before + n) / 200 != before / 200 {
            let done = before + n;
            let rate = done as f64 / self.start.elapsed().as_secs_f64();
            eprintln!(
                "  {done}/{} texts ({rate:.1}/s)",
                self.total.load(Ordering::Relaxed)
            );
        }
    }
}

/// The embeddings of `docs`, from the cache when it holds them for this model.
fn embed_cached(dir: &Path, name: &str, docs: &[Doc], embedder: &Embedder) -> Vec<f32> {
    let path = dir.join(format!("{name}.npy"));
    let fp = embedder.files().fingerprint().unwrap();
    let stamp = dir.join(format!("{name}.fingerprint"));
    if let (Ok(bytes), Ok(s)) = (std::fs::read(&path), std::fs::read_to_string(&stamp)) {
        let (data, rows, _) = npy::decode_f32(&bytes).unwrap();
        if rows == docs.len() && s.trim() == fp {
            return data;
        }
    }
    let texts: Vec<String> = docs
        .iter()
        .map(|d| embedding_text(&d.title, &d.abstract_text))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let counter = Counter {
        done: AtomicU64::new(0),
        total: AtomicU64::new(0),
        start: Instant::now(),
    };
    let (emb, _) = embedder.embed_with(&refs, &counter).unwrap();
    std::fs::write(&path, npy::encode_f32(&emb.data, emb.len(), emb.dim)).unwrap();
    std::fs::write(&stamp, &fp).unwrap();
    emb.data
}

/// A library of `papers` with the given vectors, built once and cached at `dir`.
fn cached_library(
    dir: &Path,
    embedder: &Embedder,
    papers: impl FnOnce() -> (Vec<Paper>, Vec<f32>),
    expect: usize,
) -> Library {
    if Library::exists(dir) {
        let lib = Library::open(dir).unwrap();
        if lib.len() == expect && papersim::pipeline::check_model(&lib, embedder).is_ok() {
            return lib;
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
    let (papers, vectors) = papers();
    let lock = WriteLock::acquire(dir, false).unwrap();
    let mut lib = Library::create(
        dir,
        papersim::pipeline::model_info(embedder.files()).unwrap(),
        HnswParams::default(),
    )
    .unwrap();
    let t = Instant::now();
    lib.add_embedded(papers, &vectors).unwrap();
    lib.commit(&lock).unwrap();
    eprintln!(
        "built {} ({} papers) in {:.1}s",
        dir.display(),
        lib.len(),
        t.elapsed().as_secs_f64()
    );
    drop(lock);
    Library::open(dir).unwrap()
}

fn opts(k: usize) -> RankOptions {
    RankOptions {
        k,
        ..RankOptions::default()
    }
}

fn dcg_ideal(n: usize) -> f64 {
    (0..n).map(|i| 1.0 / ((i + 2) as f64).log2()).sum()
}

/// Per query, precision@10 and nDCG@20 of `retrieval`.
fn evaluate(
    lib: &Library,
    queries: &[Doc],
    qvecs: &[f32],
    qrels: &HashMap<String, HashSet<String>>,
    retrieval: Retrieval,
) -> Vec<(f64, f64)> {
    let dim = lib.dim();
    let mut per_query = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let relevant = &qrels[&q.id];
        let ranked = rank::query(
            lib,
            &paper_text(&q.title, &q.abstract_text),
            Some(&qvecs[i * dim..(i + 1) * dim]),
            &opts(20),
            retrieval,
        )
        .unwrap();
        let hit: Vec<bool> = ranked
            .iter()
            .map(|r| relevant.contains(&lib.papers().unwrap()[r.row].id))
            .collect();
        let p10 = hit.iter().take(10).filter(|&&h| h).count() as f64 / 10.0;
        let dcg: f64 = hit
            .iter()
            .take(20)
            .enumerate()
            .filter(|(_, &h)| h)
            .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
            .sum();
        per_query.push((p10, dcg / dcg_ideal(relevant.len().min(20))));
    }
    per_query
}

/// Per query, precision@10 of `retrieval` with the query paper's lexical query cut to its
/// `terms` most telling terms, as a hybrid `similar` queries ([`rank::SIMILAR_LEXICAL_TERMS`]).
fn evaluate_top_terms(
    lib: &Library,
    queries: &[Doc],
    qvecs: &[f32],
    qrels: &HashMap<String, HashSet<String>>,
    retrieval: Retrieval,
    terms: usize,
) -> Vec<f64> {
    let dim = lib.dim();
    let opts = opts(10);
    queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let c = rank::candidates::gather(
                lib,
                &paper_text(&q.title, &q.abstract_text),
                Some(&qvecs[i * dim..(i + 1) * dim]),
                &opts,
                retrieval,
                rank::candidates::count(lib, &opts, 0),
                terms,
            )
            .unwrap();
            let hits = c
                .fused(retrieval, false)
                .iter()
                .take(10)
                .filter(|r| qrels[&q.id].contains(&lib.papers().unwrap()[r.row].id))
                .count();
            hits as f64 / 10.0
        })
        .collect()
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean and standard error of the per-query differences `a - b`.
fn paired(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len() as f64;
    let m = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// p50 and p95 in milliseconds of `f` over `n` runs (after two warm-up runs).
fn time_ms(n: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    f(0);
    f(1);
    let mut times: Vec<f64> = (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

/// xorshift64*, for reproducible sampling and perturbation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn gaussian(&mut self) -> f32 {
        let u1 = ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let u2 = ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

fn label(r: Retrieval) -> String {
    match r {
        Retrieval::Dense => "dense (MiniLM cosine)".into(),
        Retrieval::Lexical => "lexical (BM25)".into(),
        Retrieval::Hybrid(Fusion::ScoreMix { dense_weight }) => {
            format!("hybrid, min-max score mix, dense weight {dense_weight:.1}")
        }
        Retrieval::Hybrid(Fusion::Rrf { k }) => format!("hybrid, RRF k={k}"),
        Retrieval::Hybrid(Fusion::Auto) => {
            "**hybrid (default)**: score mix 0.7 for papers, RRF k=30 for text".into()
        }
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/data/arxiv-cs");
    let data = shared.join("eval-category");
    let cache = root.join("target/eval-lib");
    std::fs::create_dir_all(&cache).unwrap();
    let embedder = Embedder::new(
        &EmbedderConfig {
            device: DeviceRequest::Cpu,
            normalize: Some(true),
            ..EmbedderConfig::default()
        },
        &NoProgress,
    )
    .unwrap();
    let dim = embedder.dim();
    let mut report = String::new();
    let mut out = |line: String| {
        println!("{line}");
        report.push_str(&line);
        report.push('\n');
    };

    // 1. The open evaluation.
    let corpus = read_docs(&data.join("corpus.jsonl.gz"));
    let queries = read_docs(&data.join("queries.jsonl.gz"));
    let mut qrels: HashMap<String, HashSet<String>> = HashMap::new();
    for line in read_gz(&data.join("qrels.tsv.gz")).lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 3 && f[2].trim() != "0" {
            qrels
                .entry(f[0].to_string())
                .or_default()
                .insert(f[1].to_string());
        }
    }
    let qvecs = embed_cached(&cache, "queries", &queries, &embedder);
    let cvecs = embed_cached(&cache, "corpus", &corpus, &embedder);
    let lib = cached_library(
        &cache.join("corpus-lib"),
        &embedder,
        || (corpus.iter().map(Doc::paper).collect(), cvecs.clone()),
        corpus.len(),
    );
    let mut modes = vec![Retrieval::Dense, Retrieval::Lexical];
    for w in 1..10 {
        modes.push(Retrieval::Hybrid(Fusion::ScoreMix {
            dense_weight: w as f32 / 10.0,
        }));
    }
    for k in [10.0, 30.0, 60.0] {
        modes.push(Retrieval::Hybrid(Fusion::Rrf { k }));
    }

    // Exact terms: 200 corpus papers, each looked up by the first word of its abstract that no
    // other paper uses (a method's or a dataset's name, typically), as the whole query.
    let mut df: HashMap<String, usize> = HashMap::new();
    for d in &corpus {
        let mut seen: HashSet<String> = HashSet::new();
        for t in tokens(&paper_text(&d.title, &d.abstract_text)) {
            if seen.insert(t.clone()) {
                *df.entry(t).or_default() += 1;
            }
        }
    }
    let mut rng = Rng(7);
    let mut lookups: Vec<(usize, String)> = Vec::new();
    while lookups.len() < 200 {
        let row = rng.below(corpus.len());
        let word = corpus[row]
            .abstract_text
            .split(|c: char| !c.is_alphanumeric())
            .find(|w| {
                let t = tokens(w);
                t.len() == 1 && t[0].len() >= 5 && df.get(&t[0]) == Some(&1)
            });
        if let Some(w) = word {
            if !lookups.iter().any(|(r, _)| *r == row) {
                lookups.push((row, w.to_string()));
            }
        }
    }
    let words: Vec<&str> = lookups.iter().map(|(_, w)| w.as_str()).collect();
    let word_vecs = embedder.embed(&words).unwrap();
    let exact_terms = |mode: Retrieval| -> (f64, f64) {
        let (mut first, mut top10) = (0, 0);
        for (i, (row, word)) in lookups.iter().enumerate() {
            let ranked = rank::query(&lib, word, Some(word_vecs.row(i)), &opts(10), mode).unwrap();
            let id = &corpus[*row].id;
            let pos = ranked
                .iter()
                .position(|r| &lib.papers().unwrap()[r.row].id == id);
            first += usize::from(pos == Some(0));
            top10 += usize::from(pos.is_some());
        }
        let n = lookups.len() as f64;
        (first as f64 / n, top10 as f64 / n)
    };

    out(format!(
        "### Open evaluation: {} query papers against {} papers\n",
        queries.len(),
        lib.len()
    ));
    out("Topics: each query paper's title and abstract ranked as `papersim query` ranks them; relevant = the same primary category. Exact terms: 200 of the papers, each looked up by the first word of its abstract that no other paper uses (e.g. ".to_string()
        + &words.iter().take(4).map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
        + ").\n");
    out("| mode | precision@10 | nDCG@20 | precision@10 − dense (± 1 s.e., paired) | exact term: paper first | exact term: in top 10 |".into());
    out("|---|---|---|---|---|---|".into());
    let mut for_papers: Option<(f64, Retrieval)> = None;
    let mut for_text: Option<(f64, Retrieval)> = None;
    let mut dense_p10: Vec<f64> = Vec::new();
    for &mode in &modes {
        let per_query = evaluate(&lib, &queries, &qvecs, &qrels, mode);
        let p10s: Vec<f64> = per_query.iter().map(|x| x.0).collect();
        let (p10, ndcg) = (
            mean(p10s.iter().copied()),
            mean(per_query.iter().map(|x| x.1)),
        );
        if mode == Retrieval::Dense {
            dense_p10 = p10s.clone();
        }
        let (delta, se) = paired(&p10s, &dense_p10);
        let (first, top10) = exact_terms(mode);
        let default = if mode == Retrieval::Hybrid(rank::PAPER_FUSION) {
            " **(default for similar, recommend, triage)**"
        } else if mode == Retrieval::Hybrid(rank::TEXT_FUSION) {
            " **(default for query)**"
        } else {
            ""
        };
        out(format!(
            "| {}{default} | {p10:.4} | {ndcg:.4} | {delta:+.4} ± {se:.4} | {:.1}% | {:.1}% |",
            label(mode),
            100.0 * first,
            100.0 * top10
        ));
        if matches!(mode, Retrieval::Hybrid(_)) {
            if for_papers.is_none_or(|(b, _)| p10 > b) {
                for_papers = Some((p10, mode));
            }
            if first >= 0.95 && for_text.is_none_or(|(b, _)| p10 > b) {
                for_text = Some((p10, mode));
            }
        }
    }
    let check = |chosen: Option<(f64, Retrieval)>, compiled: Fusion, name: &str| match chosen {
        Some((_, mode)) if mode == Retrieval::Hybrid(compiled) => {
            format!("{}, which is `rank::{name}`", label(mode))
        }
        Some((_, mode)) => format!(
            "{} — NOT `rank::{name}`, which should be updated",
            label(mode)
        ),
        None => "none".into(),
    };
    out(format!(
        "\nChoice of hybrid fusion (hybrid is the default mode). When the query is a paper (`similar`, `recommend`, `triage`): the best precision@10: {}. For free text (`query`): the best precision@10 among settings that rank the exact-term paper first at least 95% of the time: {}.",
        check(for_papers, rank::PAPER_FUSION, "PAPER_FUSION"),
        check(for_text, rank::TEXT_FUSION, "TEXT_FUSION")
    ));
    let terms = rank::SIMILAR_LEXICAL_TERMS;
    out(format!(
        "\nA paper queried by its {terms} most telling terms (count × idf), as a hybrid `similar` queries the lexical index (`rank::SIMILAR_LEXICAL_TERMS`), against every term:\n"
    ));
    out(format!("| mode | precision@10, every term | precision@10, {terms} terms | difference (± 1 s.e., paired) | lexical leg p50, every term | lexical leg p50, {terms} terms |"));
    out("|---|---|---|---|---|---|".into());
    for mode in [Retrieval::Lexical, Retrieval::Hybrid(rank::PAPER_FUSION)] {
        let all = evaluate_top_terms(&lib, &queries, &qvecs, &qrels, mode, usize::MAX);
        let top = evaluate_top_terms(&lib, &queries, &qvecs, &qrels, mode, terms);
        let (delta, se) = paired(&top, &all);
        let lex = lib.lexical().unwrap();
        let leg = |n: usize| {
            time_ms(queries.len(), |i| {
                let q = &queries[i % queries.len()];
                let text = paper_text(&q.title, &q.abstract_text);
                std::hint::black_box(lex.similarities(&lex.query_top_terms(&text, n)).unwrap());
            })
            .0
        };
        out(format!(
            "| {} | {:.4} | {:.4} | {delta:+.4} ± {se:.4} | {:.2} ms | {:.2} ms |",
            label(mode),
            mean(all.iter().copied()),
            mean(top.iter().copied()),
            leg(usize::MAX),
            leg(terms)
        ));
    }
    drop(lib);

    // 2. The seed digest's topic neighbours.
    let seed_dir = cache.join("seed-lib");
    if !Library::exists(&seed_dir) {
        let digests = digest::read_path(
            &root.join("tests/fixtures/digests/hf-trending-mar-11.txt"),
            &ParseOptions::default(),
        )
        .unwrap();
        let lock = WriteLock::acquire(&seed_dir, false).unwrap();
        let mut lib = Library::create(
            &seed_dir,
            papersim::pipeline::model_info(embedder.files()).unwrap(),
            HnswParams::default(),
        )
        .unwrap();
        papersim::pipeline::ingest_into(&mut lib, &digests, &embedder, &NoProgress).unwrap();
        lib.commit(&lock).unwrap();
    }
    let seed = Library::open(&seed_dir).unwrap();
    let dmd = "Improved Distribution Matching Distillation for Fast Image Synthesis";
    let dmd_expected = [
        "Multi-student Diffusion Distillation for Better One-step Generators",
        "SCott: Accelerating Diffusion Models with Stochastic Consistency Distillation",
        "Distribution Backtracking Builds A Faster Convergence Trajectory for One-step Diffusion Distillation",
        "MLCM: Multistep Consistency Distillation of Latent Diffusion Model",
        "Improved Techniques for Training Consistency Models",
    ];
    let spec = "speculative decoding to speed up LLM inference";
    let spec_expected = "Towards Optimal Multi-draft Speculative Decoding";
    let rtl_expected =
        "ITERTL: An Iterative Framework for Fine-tuning LLMs for RTL Code Generation";
    let dmd_row = seed.resolve(dmd).unwrap();
    let spec_vec = embedder.embed(&[spec]).unwrap();
    let rtl_vec = embedder.embed(&["RTL"]).unwrap();
    out(format!(
        "\n### Seed digest ({} papers): topic neighbours per mode\n",
        seed.len()
    ));
    out("| mode | expected distillation papers in `similar` top 5 (of 5) | `query \"speculative decoding to speed up LLM inference\"`: multi-draft paper first | `query RTL`: ITERTL first |".into());
    out("|---|---|---|---|".into());
    let seed_modes = [
        Retrieval::Dense,
        Retrieval::Lexical,
        Retrieval::default(),
        Retrieval::Hybrid(Fusion::ScoreMix { dense_weight: 0.7 }),
        Retrieval::Hybrid(Fusion::Rrf { k: 30.0 }),
        Retrieval::Hybrid(Fusion::ScoreMix { dense_weight: 0.5 }),
    ];
    for &mode in &seed_modes {
        let top5 = rank::similar(&seed, dmd_row, &opts(5), mode).unwrap();
        let hits = top5
            .iter()
            .filter(|r| dmd_expected.contains(&seed.papers().unwrap()[r.row].title.as_str()))
            .count();
        let first = |text: &str, v: &[f32]| {
            let r = rank::query(&seed, text, Some(v), &opts(1), mode).unwrap();
            seed.papers().unwrap()[r[0].row].title.clone()
        };
        let spec_first = first(spec, spec_vec.row(0));
        let rtl_first = first("RTL", rtl_vec.row(0));
        let yes_no = |got: &str, want: &str| {
            if got == want {
                "yes".to_string()
            } else {
                format!("no ({got})")
            }
        };
        out(format!(
            "| {} | {hits} | {} | {} |",
            label(mode),
            yes_no(&spec_first, spec_expected),
            yes_no(&rtl_first, rtl_expected)
        ));
    }
    // Lexical similarities between the seed papers, for the dislike floor.
    let lex = seed.lexical().unwrap();
    let mut pairs: Vec<f64> = Vec::new();
    for row in 0..seed.len() {
        let s = lex
            .similarities(&lex.query(&seed.lexical_text(row).unwrap()))
            .unwrap();
        pairs.extend(
            s.iter()
                .enumerate()
                .filter(|&(r, _)| r != row)
                .map(|(_, &x)| x as f64),
        );
    }
    pairs.sort_by(f64::total_cmp);
    out(format!(
        "\nLexical similarity between two seed papers: median {:.3}, p90 {:.3}, p99 {:.3} (dislike floor {}).",
        percentile(&pairs, 0.5),
        percentile(&pairs, 0.9),
        percentile(&pairs, 0.99),
        rank::LEXICAL_DISLIKE_FLOOR
    ));

    // 3. Latency on 12,000 papers.
    let target = 12_000;
    let lat_dir = cache.join("latency-lib");
    let lib = cached_library(
        &lat_dir,
        &embedder,
        || {
            let mut papers: Vec<Paper> = corpus.iter().map(Doc::paper).collect();
            let mut vectors = cvecs.clone();
            let mut ids: HashSet<String> = corpus.iter().map(|d| d.id.clone()).collect();
            ids.extend(queries.iter().map(|d| d.id.clone()));
            let mut titles: HashSet<String> = corpus
                .iter()
                .map(|d| papersim::paper::normalize_title(&d.title))
                .collect();
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("corpus"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            'files: for f in files {
                for doc in read_docs(&f) {
                    if papers.len() == target {
                        break 'files;
                    }
                    if doc.abstract_text.trim().is_empty()
                        || !ids.insert(doc.id.clone())
                        || !titles.insert(papersim::paper::normalize_title(&doc.title))
                    {
                        continue;
                    }
                    // Not a model embedding: a real corpus vector, perturbed.
                    let src = rng.below(corpus.len());
                    let sigma = 0.5 / (dim as f32).sqrt();
                    let mut v: Vec<f32> = cvecs[src * dim..(src + 1) * dim]
                        .iter()
                        .map(|x| x + sigma * rng.gaussian())
                        .collect();
                    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                    v.iter_mut().for_each(|x| *x /= n);
                    vectors.extend(v);
                    papers.push(doc.paper());
                }
            }
            (papers, vectors)
        },
        target,
    );
    drop(lib);
    let t = Instant::now();
    let lib = Library::open(&lat_dir).unwrap();
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let terms = lib.lexical().unwrap().terms();
    let lex_ms = t.elapsed().as_secs_f64() * 1000.0;
    let lex_bytes = std::fs::metadata(lat_dir.join(lib.manifest().files.lexical.as_ref().unwrap()))
        .unwrap()
        .len();
    let emb_bytes = std::fs::metadata(lat_dir.join(&lib.manifest().files.embeddings))
        .unwrap()
        .len();
    let _ = lib.search(&lib.vector(0), 1, papersim::library::SearchMode::Auto); // loads the graph
    let mut rng = Rng(42);
    let rows: Vec<usize> = (0..200).map(|_| rng.below(lib.len())).collect();
    let texts: Vec<String> = rows
        .iter()
        .map(|&r| lib.papers().unwrap()[r].title.clone())
        .collect();
    out(format!(
        "\n### Latency: library of {} papers ({} with real embeddings; {} with real titles and abstracts but perturbed copies of real vectors, not model embeddings)\n",
        lib.len(),
        corpus.len(),
        lib.len() - corpus.len()
    ));
    out(format!(
        "Opening the library: {open_ms:.0} ms; loading the lexical index on first use: {lex_ms:.0} ms ({terms} terms, {:.1} MB on disk beside {:.1} MB of embeddings).\n",
        lex_bytes as f64 / 1e6,
        emb_bytes as f64 / 1e6
    ));
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let text_vecs = embedder.embed(&text_refs).unwrap();
    out(
        "| mode | `similar` p50 | `similar` p95 | `query` ranking p50 | `query` ranking p95 |"
            .into(),
    );
    out("|---|---|---|---|---|".into());
    for &mode in &seed_modes {
        let (s50, s95) = time_ms(rows.len(), |i| {
            rank::similar(&lib, rows[i], &opts(10), mode).unwrap();
        });
        let (q50, q95) = time_ms(texts.len(), |i| {
            let v = mode.uses_dense().then(|| text_vecs.row(i));
            rank::query(&lib, &texts[i], v, &opts(10), mode).unwrap();
        });
        out(format!(
            "| {} | {s50:.2} ms | {s95:.2} ms | {q50:.2} ms | {q95:.2} ms |",
            label(mode)
        ));
    }
    let (e50, e95) = time_ms(texts.len(), |i| {
        embedder.embed(&[texts[i].as_str()]).unwrap();
    });
    out(format!(
        "\nDense and hybrid `query` also embed the query text first: for these titles, p50 {e50:.2} ms, p95 {e95:.2} ms on the CPU. Lexical `query` needs no model, so the CLI does not load one."
    ));
    std::fs::write(cache.join("report.md"), &report).unwrap();
    eprintln!("wrote {}", cache.join("report.md").display());
}
