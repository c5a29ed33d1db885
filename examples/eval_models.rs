//! Compares models on the open evaluation (README "Choosing a model"); run it with
//! `scripts/eval-models.sh [--every N] [--models A,B]`.
//!
//! For each model: precision@10 and nDCG@20 of every ranking mode (dense, hybrid as
//! `papersim query` runs it, and each with pseudo-relevance feedback), on the category
//! relevance of `../shared/data/arxiv-cs/eval-category` (as `examples/eval.rs`); lexical BM25
//! once, since it uses no model. Then each model's CPU speed: texts a second over the first
//! 64 corpus texts (after a warm-up), and the latency of one query (embed the text and rank
//! the library, dense), p50 of 20. The CPU's model name and SIMD flags are printed with them.
//!
//! `--every N` keeps every N-th query and every N-th corpus paper (N = 1: the whole
//! evaluation), for machines where embedding 6,800 abstracts with a large model takes hours.
//! Embeddings are cached under `target/eval-models/<model>-every<N>/`, keyed by the model's
//! fingerprint.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

use papersim::encode::device::DeviceRequest;
use papersim::index::lexical::paper_text;
use papersim::index::HnswParams;
use papersim::library::npy;
use papersim::library::{Library, Paper, WriteLock};
use papersim::paper::embedding_text;
use papersim::progress::NoProgress;
use papersim::rank::{self, Fusion, RankOptions, Retrieval};
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

fn read_docs(path: &Path, every: usize) -> Vec<Doc> {
    read_gz(path)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .step_by(every)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn texts(docs: &[Doc]) -> Vec<String> {
    docs.iter()
        .map(|d| embedding_text(&d.title, &d.abstract_text))
        .collect()
}

/// The embeddings of `docs` (as papers), from the cache when it holds them for this model.
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
    let texts = texts(docs);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let start = Instant::now();
    let mut data = Vec::with_capacity(refs.len() * embedder.dim());
    for (i, chunk) in refs.chunks(128).enumerate() {
        data.extend(embedder.embed(chunk).unwrap().data);
        let done = (i * 128 + chunk.len()) as f64;
        eprintln!(
            "  {name}: {done}/{} texts ({:.1}/s)",
            refs.len(),
            done / start.elapsed().as_secs_f64()
        );
    }
    std::fs::write(&path, npy::encode_f32(&data, refs.len(), embedder.dim())).unwrap();
    std::fs::write(&stamp, &fp).unwrap();
    data
}

fn library(dir: &Path, embedder: &Embedder, corpus: &[Doc], vectors: &[f32]) -> Library {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    let lock = WriteLock::acquire(dir, false).unwrap();
    let mut lib = Library::create(
        dir,
        papersim::pipeline::model_info(embedder.files()).unwrap(),
        HnswParams::default(),
    )
    .unwrap();
    let papers = corpus
        .iter()
        .map(|d| Paper {
            id: d.id.clone(),
            title: d.title.clone(),
            abstract_text: d.abstract_text.clone(),
            date: None,
            url: None,
            authors: Vec::new(),
            categories: d.categories.clone(),
            seen_in: Vec::new(),
            aliases: Vec::new(),
        })
        .collect();
    lib.add_embedded(papers, vectors).unwrap();
    lib.commit(&lock).unwrap();
    drop(lock);
    Library::open(dir).unwrap()
}

fn dcg_ideal(n: usize) -> f64 {
    (0..n).map(|i| 1.0 / ((i + 2) as f64).log2()).sum()
}

/// Mean precision@10 and nDCG@20 of `retrieval`, the query vectors expanded by feedback over
/// `prf` papers (0: none).
fn evaluate(
    lib: &Library,
    queries: &[Doc],
    qvecs: &[f32],
    qrels: &HashMap<String, HashSet<String>>,
    retrieval: Retrieval,
    prf: (usize, f32),
) -> (f64, f64) {
    let dim = lib.dim();
    let papers = lib.papers().unwrap();
    let (mut p10, mut ndcg) = (0.0, 0.0);
    for (i, q) in queries.iter().enumerate() {
        let relevant = &qrels[&q.id];
        let mut vector = qvecs[i * dim..(i + 1) * dim].to_vec();
        if prf.0 > 0 {
            vector = rank::expand(lib, &vector, prf.0, prf.1, &[]).unwrap();
        }
        let opts = RankOptions {
            k: 20,
            ..RankOptions::default()
        };
        let ranked = rank::query(
            lib,
            &paper_text(&q.title, &q.abstract_text),
            Some(&vector),
            &opts,
            retrieval,
        )
        .unwrap();
        let hit: Vec<bool> = ranked
            .iter()
            .map(|r| relevant.contains(&papers[r.row].id))
            .collect();
        p10 += hit.iter().take(10).filter(|&&h| h).count() as f64 / 10.0;
        let dcg: f64 = hit
            .iter()
            .take(20)
            .enumerate()
            .filter(|(_, &h)| h)
            .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
            .sum();
        ndcg += dcg / dcg_ideal(relevant.len().min(20));
    }
    let n = queries.len() as f64;
    (p10 / n, ndcg / n)
}

/// The CPU's model name and the SIMD flags that decide the speed of the forward pass.
fn cpu_flags() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let flags = field("flags");
    let simd: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| {
            [
                "avx",
                "avx2",
                "fma",
                "f16c",
                "avx512f",
                "avx512bw",
                "avx512vl",
                "avx512_vnni",
                "avx512_bf16",
                "amx_bf16",
            ]
            .contains(f)
        })
        .collect();
    format!(
        "{} — {} logical CPUs, {} threads used — flags: {}",
        field("model name"),
        info.lines().filter(|l| l.starts_with("processor")).count(),
        rayon::current_num_threads(),
        simd.join(" ")
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let every: usize = arg("--every").map(|v| v.parse().unwrap()).unwrap_or(1);
    let models: Vec<String> = arg("--models")
        .unwrap_or_else(|| {
            "sentence-transformers/all-MiniLM-L6-v2,sentence-transformers/all-mpnet-base-v2".into()
        })
        .split(',')
        .map(str::to_string)
        .collect();
    let prf = (
        arg("--prf").map(|v| v.parse().unwrap()).unwrap_or(3),
        arg("--prf-weight")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0.5f32),
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("../shared/data/arxiv-cs/eval-category");
    let corpus = read_docs(&data.join("corpus.jsonl.gz"), every);
    let queries = read_docs(&data.join("queries.jsonl.gz"), every);
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
    // Relevance restricted to the papers kept, so that a subsample's ideal DCG is reachable.
    let kept: HashSet<&str> = corpus.iter().map(|d| d.id.as_str()).collect();
    for rel in qrels.values_mut() {
        rel.retain(|id| kept.contains(id.as_str()));
    }

    println!("CPU: {}", cpu_flags());
    println!(
        "Open evaluation: {} queries against {} papers (every {every}), relevance = same primary \
         category; pseudo-relevance feedback (PRF): {} nearest papers, weight {}",
        queries.len(),
        corpus.len(),
        prf.0,
        prf.1
    );
    println!();
    println!("| model | mode | precision@10 | nDCG@20 | CPU texts/s | one-query latency |");
    println!("|---|---|---|---|---|---|");
    let mut lexical_done = false;
    for model in &models {
        let embedder = Embedder::new(
            &EmbedderConfig {
                model: model.clone(),
                device: DeviceRequest::Cpu,
                normalize: Some(true),
                ..EmbedderConfig::default()
            },
            &NoProgress,
        )
        .unwrap();
        let short = model.rsplit('/').next().unwrap();
        let cache = root.join(format!("target/eval-models/{short}-every{every}"));
        std::fs::create_dir_all(&cache).unwrap();
        let qvecs = embed_cached(&cache, "queries", &queries, &embedder);
        let cvecs = embed_cached(&cache, "corpus", &corpus, &embedder);
        let lib = library(&cache.join("lib"), &embedder, &corpus, &cvecs);

        // Speed: the first 64 corpus texts, after a warm-up batch.
        let sample = texts(&corpus[..64.min(corpus.len())]);
        let sample: Vec<&str> = sample.iter().map(String::as_str).collect();
        embedder.embed(&sample[..8.min(sample.len())]).unwrap();
        let start = Instant::now();
        embedder.embed(&sample).unwrap();
        let per_s = sample.len() as f64 / start.elapsed().as_secs_f64();
        let mut latency: Vec<f64> = (0..20)
            .map(|i| {
                let text = &queries[i % queries.len()].title;
                let start = Instant::now();
                let v = embedder.embed_queries(&[text]).unwrap();
                let opts = RankOptions {
                    k: 10,
                    ..RankOptions::default()
                };
                rank::query(&lib, text, Some(v.row(0)), &opts, Retrieval::Dense).unwrap();
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        latency.sort_by(f64::total_cmp);
        let speed = format!("{per_s:.1} | {:.0} ms", latency[latency.len() / 2]);

        let hybrid = Retrieval::Hybrid(Fusion::Auto);
        let mut rows = vec![
            ("dense", Retrieval::Dense, (0, 0.0)),
            ("dense + PRF", Retrieval::Dense, prf),
            ("hybrid (default)", hybrid, (0, 0.0)),
            ("hybrid + PRF", hybrid, prf),
        ];
        if !lexical_done {
            rows.push(("lexical (BM25, no model)", Retrieval::Lexical, (0, 0.0)));
            lexical_done = true;
        }
        for (mode, retrieval, feedback) in rows {
            let (p10, ndcg) = evaluate(&lib, &queries, &qvecs, &qrels, retrieval, feedback);
            let speed = if retrieval == Retrieval::Lexical {
                "— | —"
            } else {
                &speed
            };
            println!("| {short} | {mode} | {p10:.4} | {ndcg:.4} | {speed} |");
        }
    }
}
