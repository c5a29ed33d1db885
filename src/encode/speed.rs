//! Encoding benchmark: throughput, latency and agreement of the encoder on each device,
//! precision and batch size, on the same texts.
//!
//! [`measure`] is the one place that reads the clock: it runs warm-up steps first and
//! synchronises the device before every clock read, so queued GPU work is never counted in
//! the wrong step or not at all. Model loading and device start-up are timed apart from the
//! encoding rates. Agreement compares vectors with CPU float32 vectors of the same texts, each
//! text embedded alone (no padding), and batched vectors with one-at-a-time vectors on the
//! same device and precision.
//!
//! Devices that cannot run are reported with the reason, never replaced by the CPU.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::digest::{self, ParseOptions};
use crate::encode::device::{self, DeviceRequest, Precision};
use crate::encode::model::{self, ModelFiles, ResolveOptions};
use crate::encode::tokenize::{plan_batches, BatchLimits, Encoded, MAX_BATCH_TEXTS};
use crate::progress::{NoProgress, Progress};
use crate::{Embedder, EmbedderConfig, Error, Result};

/// Version of the JSON report; bump when a field changes meaning or disappears.
pub const SCHEMA: &str = "papersim-bench/1";

/// The bundled sample digest (79 papers from one trending-papers digest).
pub const SAMPLE_DIGEST: &str = include_str!("../../data/sample/hf-trending-mar-11.txt");
/// How the bundled sample is named in reports.
pub const SAMPLE_NAME: &str = "bundled sample (data/sample/hf-trending-mar-11.txt)";

/// Most texts a benchmark encodes (`--limit`).
pub const MAX_BENCH_TEXTS: usize = 100_000;
/// Most untimed warm-up batches (`--warmup`).
pub const MAX_WARMUP: usize = 100;
/// Most timed passes (`--repeat`).
pub const MAX_REPEAT: usize = 100;
/// Most texts compared for agreement (`--agreement-texts`).
pub const MAX_AGREEMENT_TEXTS: usize = 10_000;

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// A Hugging Face repo id or a model directory.
    pub model: String,
    pub resolve: ResolveOptions,
    /// `Auto` is not accepted: a benchmark names its devices.
    pub devices: Vec<DeviceRequest>,
    pub precisions: Vec<Precision>,
    pub batch_sizes: Vec<usize>,
    /// Untimed batches run before the timed ones of each batch size.
    pub warmup: usize,
    /// Timed passes over all texts for each batch size.
    pub repeat: usize,
    /// Agreement is measured on at most this many distinct texts, since every one of them is
    /// also embedded alone on every device and precision.
    pub agreement_texts: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            model: model::DEFAULT_MODEL.to_string(),
            resolve: ResolveOptions::default(),
            devices: vec![DeviceRequest::Cpu, DeviceRequest::Cuda(0)],
            precisions: vec![Precision::F32, Precision::F16, Precision::Bf16],
            batch_sizes: vec![1, 8, 32, 128],
            warmup: 2,
            repeat: 1,
            agreement_texts: 256,
        }
    }
}

/// The texts a benchmark encodes: distinct texts, cycled up to the requested count.
#[derive(Debug, Clone)]
pub struct BenchTexts {
    /// Where the texts came from, in words.
    pub source: String,
    /// `digest` (title and abstract of each paper) or `lines` (one text per non-empty line).
    pub kind: String,
    pub distinct: Vec<String>,
    /// How many texts are encoded: `distinct` repeated (or cut) to this count.
    pub count: usize,
}

impl BenchTexts {
    /// Text `i` of the benchmark and the index of its distinct text.
    pub fn get(&self, i: usize) -> (usize, &str) {
        let d = i % self.distinct.len();
        (d, self.distinct[d].as_str())
    }

    pub fn all(&self) -> Vec<&str> {
        (0..self.count).map(|i| self.get(i).1).collect()
    }

    /// The bundled sample digest, repeated to `count` texts.
    pub fn sample(count: usize) -> Result<Self> {
        let digest = digest::parse_bytes(
            "hf-trending-mar-11.txt",
            SAMPLE_DIGEST.as_bytes(),
            &ParseOptions::default(),
        )?;
        let distinct = digest.papers.iter().map(|p| p.embedding_text()).collect();
        Self::new(SAMPLE_NAME.to_string(), "digest", distinct, count)
    }

    /// A digest file (any format papersim reads), or else a text file of one text per line.
    pub fn from_path(path: &Path, count: usize) -> Result<Self> {
        let as_digest = digest::read_path(path, &ParseOptions::default()).map(|digests| {
            digests
                .iter()
                .flat_map(|d| d.papers.iter().map(|p| p.embedding_text()))
                .collect::<Vec<_>>()
        });
        match as_digest {
            Ok(texts) if !texts.is_empty() => {
                Self::new(path.display().to_string(), "digest", texts, count)
            }
            _ => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                let lines = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                Self::new(path.display().to_string(), "lines", lines, count)
            }
        }
    }

    pub fn new(source: String, kind: &str, distinct: Vec<String>, count: usize) -> Result<Self> {
        if distinct.is_empty() {
            return Err(Error::InvalidInput(format!("{source}: no texts to encode")));
        }
        if !(1..=MAX_BENCH_TEXTS).contains(&count) {
            return Err(Error::InvalidInput(format!(
                "--limit must be at least 1 and at most {MAX_BENCH_TEXTS}, got {count}: the \
                 benchmark encodes that many texts per batch size, device and dtype, and its \
                 rates settle within a few thousand"
            )));
        }
        Ok(BenchTexts {
            source,
            kind: kind.to_string(),
            distinct,
            count,
        })
    }
}

/// Wall-clock durations of the timed steps of [`measure`].
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub steps: Vec<Duration>,
}

impl Measured {
    pub fn total(&self) -> Duration {
        self.steps.iter().sum()
    }
}

/// Runs `step(i, false)` for `i` in `0..warmup` untimed (the same work as the first timed
/// steps, so caches, kernels and allocators are warm), then times `step(i, true)` for `i` in
/// `0..runs`. The device is synchronised before each clock read: GPU work is queued, and a
/// clock read without it would time the queueing, not the work.
pub fn measure(
    device: &Device,
    warmup: usize,
    runs: usize,
    mut step: impl FnMut(usize, bool) -> Result<()>,
) -> Result<Measured> {
    for i in 0..warmup {
        step(i % runs.max(1), false)?;
    }
    device::synchronize(device)?;
    let mut steps = Vec::with_capacity(runs);
    for i in 0..runs {
        let start = Instant::now();
        step(i, true)?;
        device::synchronize(device)?;
        steps.push(start.elapsed());
    }
    Ok(Measured { steps })
}

/// The whole report, as `papersim bench --format json` writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub schema: String,
    pub machine: Machine,
    pub model: ModelSummary,
    pub texts: TextsSummary,
    pub settings: Settings,
    /// What agreement is measured against.
    pub reference: String,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    /// Threads candle and rayon use for the CPU encoder.
    pub cpu_threads: usize,
    /// Logical cores the operating system offers this process.
    pub logical_cores: usize,
    pub os: String,
    pub arch: String,
    /// The 1-minute load average as the run began (Linux): on a shared machine, other
    /// processes' work lowers every CPU figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<f64>,
    /// GPUs of the requested CUDA ordinals that could be opened.
    pub gpus: Vec<Gpu>,
    pub build: Build,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gpu {
    pub device: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    pub papersim_version: String,
    /// Cargo features compiled in (`cuda` or none).
    pub features: Vec<String>,
    /// `release` or `debug`: debug builds are many times slower and their figures meaningless.
    pub profile: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSummary {
    pub id: String,
    pub dir: String,
    pub dim: usize,
    pub max_seq_length: usize,
    /// Element type of the weights file (F32, F16, ...): a half-precision copy loads as the
    /// same numbers on every device, so agreement stays comparable.
    pub weights_dtype: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextsSummary {
    pub source: String,
    pub kind: String,
    pub distinct: usize,
    pub count: usize,
    pub mean_tokens: f64,
    pub max_tokens: usize,
    /// Texts cut at the model's `max_seq_length`.
    pub truncated: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub devices: Vec<String>,
    pub dtypes: Vec<String>,
    pub batch_sizes: Vec<usize>,
    pub warmup_batches: usize,
    pub repeat: usize,
    pub agreement_texts: usize,
    /// Whether the timed steps include tokenisation (they do: each step is `embed` of a batch
    /// of raw texts, as a caller would run it).
    pub includes_tokenization: bool,
}

/// One device and precision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub device: String,
    pub dtype: String,
    /// `ok`, `skipped` (cannot run here: see `reason`) or `failed` (started and broke).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Opening the device (a CUDA context), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_init_s: Option<f64>,
    /// Loading the weights onto the device, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_s: Option<f64>,
    /// One-at-a-time vectors against CPU float32 one-at-a-time vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_cpu_f32: Option<Agreement>,
    /// Batched vectors (all batch sizes) against one-at-a-time vectors of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batched_vs_single: Option<Agreement>,
    pub results: Vec<BatchResult>,
}

/// One batch size of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchResult {
    pub batch_size: usize,
    /// Batches in one pass over the texts.
    pub batches: usize,
    pub texts: usize,
    pub seconds: f64,
    pub texts_per_s: f64,
    /// Tokens of the texts themselves, padding excluded.
    pub real_tokens_per_s: f64,
    /// Share of the computed tokens that are padding.
    pub padded_share: f64,
    pub latency_ms: Latency,
    /// Batched vectors against CPU float32 one-at-a-time vectors.
    pub vs_cpu_f32: Agreement,
    /// Batched vectors against one-at-a-time vectors on this device and precision.
    pub batched_vs_single: Agreement,
}

/// Per-batch latency.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub mean: f64,
}

/// 1 − cosine over compared vectors.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
pub struct Agreement {
    pub mean: f64,
    pub max: f64,
    pub compared: usize,
}

impl Agreement {
    fn of(pairs: impl Iterator<Item = f64>) -> Self {
        let (mut sum, mut max, mut n) = (0.0, 0.0f64, 0usize);
        for d in pairs {
            sum += d;
            max = max.max(d);
            n += 1;
        }
        Agreement {
            mean: if n == 0 { 0.0 } else { sum / n as f64 },
            max,
            compared: n,
        }
    }

    fn merge(all: &[Agreement]) -> Self {
        let n: usize = all.iter().map(|a| a.compared).sum();
        Agreement {
            mean: if n == 0 {
                0.0
            } else {
                all.iter().map(|a| a.mean * a.compared as f64).sum::<f64>() / n as f64
            },
            max: all.iter().map(|a| a.max).fold(0.0, f64::max),
            compared: n,
        }
    }
}

/// 1 − cosine of two vectors, in f64 so the figure reflects the vectors, not the sum.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    // Identical vectors report exactly 0, not the rounding of the sums below.
    if a == b {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    (1.0 - dot / (na.sqrt() * nb.sqrt())).max(0.0)
}

/// Nearest-rank percentile of durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

fn latency(steps: &[Duration]) -> Latency {
    let mut sorted = steps.to_vec();
    sorted.sort();
    let mean = if steps.is_empty() {
        0.0
    } else {
        steps.iter().sum::<Duration>().as_secs_f64() * 1e3 / steps.len() as f64
    };
    Latency {
        p50: percentile_ms(&sorted, 50.0),
        p95: percentile_ms(&sorted, 95.0),
        mean,
    }
}

/// Checks a configuration before anything is loaded.
pub fn validate(config: &BenchConfig) -> Result<()> {
    let bad = |m: &str| Err(Error::InvalidInput(m.to_string()));
    if let Some(&b) = config
        .batch_sizes
        .iter()
        .find(|b| !(1..=MAX_BATCH_TEXTS).contains(*b))
    {
        return Err(Error::InvalidInput(format!(
            "--batch-sizes: each must be at least 1 and at most {MAX_BATCH_TEXTS}, got {b}: a \
             batch's activations are held in memory at once"
        )));
    }
    if config.warmup > MAX_WARMUP {
        return Err(Error::InvalidInput(format!(
            "--warmup must be at most {MAX_WARMUP}, got {}: a few batches warm the caches and \
             kernels; more only lengthen the run",
            config.warmup
        )));
    }
    if !(1..=MAX_REPEAT).contains(&config.repeat) {
        return Err(Error::InvalidInput(format!(
            "--repeat must be at least 1 and at most {MAX_REPEAT}, got {}: each repeat is a \
             full timed pass over every text, for every batch size, device and dtype",
            config.repeat
        )));
    }
    if !(1..=MAX_AGREEMENT_TEXTS).contains(&config.agreement_texts) {
        return Err(Error::InvalidInput(format!(
            "--agreement-texts must be at least 1 and at most {MAX_AGREEMENT_TEXTS}, got {}: \
             each is embedded alone on every device and dtype",
            config.agreement_texts
        )));
    }
    if config.devices.is_empty() {
        return bad("no devices to benchmark");
    }
    if config.devices.contains(&DeviceRequest::Auto) {
        return bad(
            "name the devices to benchmark (cpu, cuda, cuda:N): `auto` would hide which one ran",
        );
    }
    if config.precisions.is_empty() {
        return bad("no dtypes to benchmark");
    }
    if config.batch_sizes.is_empty() {
        return bad("no batch sizes to benchmark");
    }
    Ok(())
}

/// Runs the benchmark. Progress is reported per timed configuration.
pub fn run(
    config: &BenchConfig,
    texts: &BenchTexts,
    progress: &dyn Progress,
) -> Result<BenchReport> {
    validate(config)?;
    let load_before = load_average();
    let files = model::resolve(&config.model, &config.resolve, progress)?;

    // The reference encoder: CPU float32, also the tokenizer for the text statistics.
    let reference_config = EmbedderConfig {
        model: config.model.clone(),
        device: DeviceRequest::Cpu,
        precision: Precision::F32,
        normalize: Some(true),
        resolve: config.resolve.clone(),
        ..EmbedderConfig::default()
    };
    let reference_encoder = Embedder::from_files(files.clone(), &reference_config)?;
    let max_len = reference_encoder.max_seq_length();
    let all = texts.all();
    let encoded = reference_encoder.tokenize(&all)?;
    let lengths: Vec<usize> = encoded.iter().map(|e| e.len()).collect();

    let agreement_n = texts
        .distinct
        .len()
        .min(texts.count)
        .min(config.agreement_texts.max(1));
    let agreement_texts: Vec<&str> = texts.distinct[..agreement_n]
        .iter()
        .map(String::as_str)
        .collect();
    let reference = embed_one_at_a_time(&reference_encoder, &agreement_texts)?;
    drop(reference_encoder);

    let mut runs = Vec::new();
    let mut gpus = Vec::new();
    for &request in &config.devices {
        let name = request.to_string();
        if let DeviceRequest::Cuda(n) = request {
            if let Some(reason) = device::cuda_unavailable_reason(n) {
                for &p in &config.precisions {
                    runs.push(Run::not_run(&name, p, "skipped", reason.clone()));
                }
                continue;
            }
            gpus.push(Gpu {
                device: name.clone(),
                name: device::gpu_name(n).unwrap_or_else(|| "unknown".into()),
            });
        }
        for &precision in &config.precisions {
            let job = RunJob {
                config,
                files: &files,
                request,
                precision,
                texts,
                encoded: &encoded,
                max_len,
                agreement_texts: &agreement_texts,
                reference: &reference,
            };
            runs.push(match job.run(progress) {
                Ok(run) => run,
                Err(Error::Device { reason, .. }) => {
                    Run::not_run(&name, precision, "skipped", reason)
                }
                Err(e) => Run::not_run(&name, precision, "failed", e.to_string()),
            });
        }
    }

    Ok(BenchReport {
        schema: SCHEMA.to_string(),
        machine: Machine::describe(gpus, load_before),
        model: ModelSummary {
            id: files.id.clone(),
            dir: files.dir.display().to_string(),
            dim: files.dim(),
            max_seq_length: max_len,
            weights_dtype: weights_dtype(&files),
        },
        texts: TextsSummary {
            source: texts.source.clone(),
            kind: texts.kind.clone(),
            distinct: texts.distinct.len(),
            count: texts.count,
            mean_tokens: lengths.iter().sum::<usize>() as f64 / lengths.len() as f64,
            max_tokens: lengths.iter().copied().max().unwrap_or(0),
            truncated: lengths.iter().filter(|&&l| l >= max_len).count(),
        },
        settings: Settings {
            devices: config.devices.iter().map(|d| d.to_string()).collect(),
            dtypes: config.precisions.iter().map(|p| p.to_string()).collect(),
            batch_sizes: config.batch_sizes.clone(),
            warmup_batches: config.warmup,
            repeat: config.repeat,
            agreement_texts: agreement_n,
            includes_tokenization: true,
        },
        reference: format!(
            "cpu f32, each of the first {agreement_n} distinct texts embedded alone (no padding)"
        ),
        runs,
    })
}

impl Run {
    fn not_run(device: &str, precision: Precision, status: &str, reason: String) -> Self {
        Run {
            device: device.to_string(),
            dtype: precision.to_string(),
            status: status.to_string(),
            reason: Some(reason),
            device_init_s: None,
            load_s: None,
            vs_cpu_f32: None,
            batched_vs_single: None,
            results: Vec::new(),
        }
    }
}

/// Everything one device and precision needs.
struct RunJob<'a> {
    config: &'a BenchConfig,
    files: &'a ModelFiles,
    request: DeviceRequest,
    precision: Precision,
    texts: &'a BenchTexts,
    /// The texts tokenised once, to plan the batches as the encoder will cut them.
    encoded: &'a [Encoded],
    max_len: usize,
    agreement_texts: &'a [&'a str],
    reference: &'a [Vec<f32>],
}

impl RunJob<'_> {
    fn run(&self, progress: &dyn Progress) -> Result<Run> {
        // Checked before opening the device, so a CPU half-precision row costs nothing.
        if self.request == DeviceRequest::Cpu {
            device::check_precision(&Device::Cpu, self.precision)?;
        }
        let mut selected = None;
        let init = measure(&Device::Cpu, 0, 1, |_, _| {
            selected = Some(device::select(self.request)?);
            Ok(())
        })?;
        let device = selected
            .map(|s| s.device)
            .ok_or_else(|| Error::InvalidInput("device selection did not run".into()))?;
        device::check_precision(&device, self.precision)?;

        let embedder_config = EmbedderConfig {
            model: self.config.model.clone(),
            device: self.request,
            precision: self.precision,
            normalize: Some(true),
            resolve: self.config.resolve.clone(),
            ..EmbedderConfig::default()
        };
        let mut loaded = None;
        let load = measure(&device, 0, 1, |_, _| {
            loaded = Some(Embedder::from_files(self.files.clone(), &embedder_config)?);
            Ok(())
        })?;
        let mut embedder =
            loaded.ok_or_else(|| Error::InvalidInput("model loading did not run".into()))?;

        let singles = if self.request == DeviceRequest::Cpu && self.precision == Precision::F32 {
            self.reference.to_vec()
        } else {
            embed_one_at_a_time(&embedder, self.agreement_texts)?
        };
        let vs_cpu_single = Agreement::of(
            singles
                .iter()
                .zip(self.reference)
                .map(|(a, b)| cosine_distance(a, b)),
        );

        let mut results = Vec::new();
        for &batch_size in &self.config.batch_sizes {
            progress.start(
                &format!("{} {} b={batch_size}", self.request, self.precision),
                (self.texts.count * self.config.repeat) as u64,
            );
            let result = self.batch_size(&mut embedder, batch_size, &singles, progress);
            progress.finish();
            results.push(result?);
        }
        let batched: Vec<Agreement> = results.iter().map(|r| r.batched_vs_single).collect();
        Ok(Run {
            device: self.request.to_string(),
            dtype: self.precision.to_string(),
            status: "ok".into(),
            reason: None,
            device_init_s: Some(init.total().as_secs_f64()),
            load_s: Some(load.total().as_secs_f64()),
            vs_cpu_f32: Some(vs_cpu_single),
            batched_vs_single: Some(Agreement::merge(&batched)),
            results,
        })
    }

    fn batch_size(
        &self,
        embedder: &mut Embedder,
        batch_size: usize,
        singles: &[Vec<f32>],
        progress: &dyn Progress,
    ) -> Result<BatchResult> {
        // Only the count limits a batch here: the token budget would split large batches of
        // long texts and the row would not be the batch size it says.
        let limits = BatchLimits {
            max_texts: batch_size,
            max_tokens: batch_size * self.max_len.max(1),
        };
        embedder.set_batch_limits(limits);
        let plan = plan_batches(self.encoded, limits);
        let batch_texts: Vec<Vec<&str>> = plan
            .iter()
            .map(|b| b.iter().map(|&i| self.texts.get(i).1).collect())
            .collect();
        let (mut real, mut padded) = (0usize, 0usize);
        let dim = embedder.dim();
        let mut last_pass = vec![0f32; self.texts.count * dim];
        let steps = plan.len() * self.config.repeat;
        let last_pass_from = plan.len() * (self.config.repeat - 1);
        let measured = measure(embedder.device(), self.config.warmup, steps, |i, timed| {
            let b = i % plan.len();
            let (vectors, stats) = embedder.embed_with(&batch_texts[b], &NoProgress)?;
            if timed {
                progress.advance(batch_texts[b].len() as u64);
                if i < plan.len() {
                    real += stats.real_tokens;
                    padded += stats.padded_tokens;
                }
                if i >= last_pass_from {
                    for (row, &t) in plan[b].iter().enumerate() {
                        last_pass[t * dim..(t + 1) * dim].copy_from_slice(vectors.row(row));
                    }
                }
            }
            Ok(())
        })?;

        let compare = |against: &[Vec<f32>]| {
            Agreement::of((0..self.texts.count).filter_map(|t| {
                let (d, _) = self.texts.get(t);
                against
                    .get(d)
                    .map(|v| cosine_distance(&last_pass[t * dim..(t + 1) * dim], v))
            }))
        };
        let seconds = measured.total().as_secs_f64();
        let texts = self.texts.count * self.config.repeat;
        Ok(BatchResult {
            batch_size,
            batches: plan.len(),
            texts,
            seconds,
            texts_per_s: texts as f64 / seconds,
            real_tokens_per_s: (real * self.config.repeat) as f64 / seconds,
            padded_share: if padded == 0 {
                0.0
            } else {
                (padded - real) as f64 / padded as f64
            },
            latency_ms: latency(&measured.steps),
            vs_cpu_f32: compare(self.reference),
            batched_vs_single: compare(singles),
        })
    }
}

/// Each text embedded alone, so no padding is involved: the agreement reference.
fn embed_one_at_a_time(embedder: &Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    texts
        .iter()
        .map(|t| Ok(embedder.embed(&[t])?.row(0).to_vec()))
        .collect()
}

/// The element type of the first tensor of the weights file, from its header.
fn weights_dtype(files: &ModelFiles) -> String {
    let read = || -> Option<String> {
        use std::io::Read;
        let mut f = std::fs::File::open(&files.weights).ok()?;
        let mut len = [0u8; 8];
        f.read_exact(&mut len).ok()?;
        let len = u64::from_le_bytes(len).min(100_000_000) as usize;
        let mut header = vec![0u8; len];
        f.read_exact(&mut header).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
        v.as_object()?
            .iter()
            .find(|(k, _)| k.as_str() != "__metadata__")
            .and_then(|(_, t)| t.get("dtype")?.as_str().map(str::to_string))
    };
    read().unwrap_or_else(|| "unknown".into())
}

impl Machine {
    /// This machine, the build, and the GPUs that were opened.
    pub fn describe(gpus: Vec<Gpu>, load_average: Option<f64>) -> Self {
        Machine {
            cpu_model: cpu_model(),
            cpu_threads: device::cpu_threads(),
            logical_cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            load_average,
            gpus,
            build: Build {
                papersim_version: env!("CARGO_PKG_VERSION").to_string(),
                features: if device::cuda_built() {
                    vec!["cuda".to_string()]
                } else {
                    Vec::new()
                },
                profile: if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
                .to_string(),
            },
        }
    }
}

/// The 1-minute load average from /proc/loadavg (Linux).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}

/// The CPU's model name from /proc/cpuinfo (Linux), else the architecture.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let steps: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        let l = latency(&steps);
        assert_eq!(l.p50, 10.0);
        assert_eq!(l.p95, 19.0);
        assert!((l.mean - 10.5).abs() < 1e-9);
        assert_eq!(latency(&[]).p95, 0.0);
    }

    #[test]
    fn cosine_distance_is_zero_for_parallel_vectors() {
        assert!(cosine_distance(&[1.0, 2.0], &[2.0, 4.0]) < 1e-12);
        assert!((cosine_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        assert_eq!(cosine_distance(&[0.0, 0.0], &[1.0, 0.0]), 1.0);
    }

    #[test]
    fn agreement_merges_weighted_by_count() {
        let a = Agreement::of([0.0, 0.2].into_iter());
        let b = Agreement::of([0.4].into_iter());
        let m = Agreement::merge(&[a, b]);
        assert_eq!(m.compared, 3);
        assert!((m.mean - 0.2).abs() < 1e-12);
        assert_eq!(m.max, 0.4);
    }

    #[test]
    fn texts_cycle_to_the_count() {
        let t = BenchTexts::new("x".into(), "lines", vec!["a".into(), "b".into()], 5).unwrap();
        assert_eq!(t.all(), vec!["a", "b", "a", "b", "a"]);
        assert_eq!(t.get(3), (1, "b"));
        assert!(BenchTexts::new("x".into(), "lines", vec![], 5).is_err());
        assert!(BenchTexts::new("x".into(), "lines", vec!["a".into()], 0).is_err());
    }

    #[test]
    fn the_sample_digest_has_79_papers() {
        let t = BenchTexts::sample(1000).unwrap();
        assert_eq!(t.distinct.len(), 79);
        assert_eq!(t.count, 1000);
        assert_eq!(t.kind, "digest");
    }

    #[test]
    fn measure_warms_up_then_times_each_step() {
        let mut calls = Vec::new();
        let m = measure(&Device::Cpu, 3, 2, |i, timed| {
            calls.push((i, timed));
            Ok(())
        })
        .unwrap();
        assert_eq!(m.steps.len(), 2);
        assert_eq!(
            calls,
            vec![(0, false), (1, false), (0, false), (0, true), (1, true)]
        );
    }

    #[test]
    fn auto_and_empty_settings_are_refused() {
        let mut c = BenchConfig {
            devices: vec![DeviceRequest::Auto],
            ..BenchConfig::default()
        };
        assert!(validate(&c).is_err());
        c.devices = vec![DeviceRequest::Cpu];
        c.batch_sizes = vec![0];
        assert!(validate(&c).is_err());
        c.batch_sizes = vec![1];
        assert!(validate(&c).is_ok());
    }
}
