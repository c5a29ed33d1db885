//! The sentence encoder: texts in, one vector per text out, in the caller's order.
//! Ties together model resolution, tokenisation and batching, the forward pass, pooling and
//! normalisation, with the configuration a caller can set.

use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::encode::device::{self, DeviceRequest, Precision};
use crate::encode::forward::{self, Backend, Forward, StageTimes};
use crate::encode::model::{self, ModelFiles, ResolveOptions};
use crate::encode::pooling::{l2_normalize, Pooling};
use crate::encode::tokenize::{pad_batch, plan_batches, BatchLimits, Encoded, TextTokenizer};
use crate::progress::{NoProgress, Progress};
use crate::{Error, Result};

/// How to build an [`Embedder`].
#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    /// A Hugging Face repo id or a model directory.
    pub model: String,
    pub device: DeviceRequest,
    pub precision: Precision,
    pub batch: BatchLimits,
    /// Force L2 normalisation on or off; `None` follows the model's `modules.json`.
    pub normalize: Option<bool>,
    pub backend: Backend,
    pub resolve: ResolveOptions,
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        EmbedderConfig {
            model: model::DEFAULT_MODEL.to_string(),
            device: DeviceRequest::Auto,
            precision: Precision::F32,
            batch: BatchLimits::default(),
            normalize: None,
            backend: Backend::Auto,
            resolve: ResolveOptions::default(),
        }
    }
}

/// Vectors for a list of texts, row-major, with each text's token count.
#[derive(Debug, Clone)]
pub struct Embeddings {
    pub dim: usize,
    pub data: Vec<f32>,
    pub tokens: Vec<usize>,
}

impl Embeddings {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Timing-free statistics of one `embed` call, for benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchStats {
    pub batches: usize,
    pub real_tokens: usize,
    pub padded_tokens: usize,
}

/// A loaded sentence encoder.
pub struct Embedder {
    files: ModelFiles,
    tokenizer: TextTokenizer,
    encoder: Box<dyn Forward>,
    device: device::Selected,
    precision: Precision,
    batch: BatchLimits,
    pooling: Pooling,
    normalize: bool,
    pad_id: u32,
}

impl Embedder {
    /// Resolves the model (provisioning it if needed) and loads it.
    pub fn new(config: &EmbedderConfig, progress: &dyn Progress) -> Result<Self> {
        let files = model::resolve(&config.model, &config.resolve, progress)?;
        Self::from_files(files, config)
    }

    /// Loads an already resolved model.
    pub fn from_files(files: ModelFiles, config: &EmbedderConfig) -> Result<Self> {
        let device = device::select(config.device)?;
        device::check_precision(&device.device, config.precision)?;
        if config.backend == Backend::Upstream && config.precision != Precision::F32 {
            return Err(Error::InvalidInput(
                "the upstream BERT backend is for f32 checks only".into(),
            ));
        }
        let tokenizer = TextTokenizer::load(&files.tokenizer, files.max_seq_length)?;
        let encoder = forward::load(
            &files,
            config.backend,
            &device.device,
            config.precision.dtype(),
        )?;
        Ok(Embedder {
            pooling: files.pooling,
            normalize: config.normalize.unwrap_or(files.normalize),
            pad_id: files.config.pad_token_id as u32,
            files,
            tokenizer,
            encoder,
            device,
            precision: config.precision,
            batch: config.batch,
        })
    }

    pub fn files(&self) -> &ModelFiles {
        &self.files
    }
    pub fn dim(&self) -> usize {
        self.files.dim()
    }
    pub fn device(&self) -> &Device {
        &self.device.device
    }
    /// The device in words, with why it was chosen.
    pub fn device_note(&self) -> &str {
        &self.device.note
    }
    pub fn device_name(&self) -> &str {
        &self.device.name
    }
    /// The forward implementation in use ([`Backend::Auto`] resolved).
    pub fn backend(&self) -> Backend {
        self.encoder.backend()
    }
    pub fn precision(&self) -> Precision {
        self.precision
    }
    pub fn normalizes(&self) -> bool {
        self.normalize
    }
    pub fn max_seq_length(&self) -> usize {
        self.tokenizer.max_len()
    }
    pub fn set_batch_limits(&mut self, batch: BatchLimits) {
        self.batch = batch;
    }

    /// Tokenises texts (papers, or any text that is not a query) as the encoder will see
    /// them: after the model's document prompt, if it has one.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoded>> {
        self.tokenize_after(&self.files.prompts.document, texts)
    }

    fn tokenize_after(&self, prompt: &str, texts: &[&str]) -> Result<Vec<Encoded>> {
        if prompt.is_empty() {
            return self.tokenizer.encode(texts);
        }
        let prompted: Vec<String> = texts.iter().map(|t| format!("{prompt}{t}")).collect();
        let refs: Vec<&str> = prompted.iter().map(String::as_str).collect();
        self.tokenizer.encode(&refs)
    }

    /// Embeds texts (papers, or any text that is not a query); row i of the result belongs to
    /// `texts[i]`.
    pub fn embed(&self, texts: &[&str]) -> Result<Embeddings> {
        self.embed_with(texts, &NoProgress).map(|(e, _)| e)
    }

    /// Embeds search queries: after the model's query prompt (an asymmetric model's
    /// instruction, such as BGE's), if it has one; else exactly as [`Embedder::embed`].
    pub fn embed_queries(&self, texts: &[&str]) -> Result<Embeddings> {
        let encoded = self.tokenize_after(&self.files.prompts.query, texts)?;
        self.embed_encoded(&encoded, &NoProgress).map(|(e, _)| e)
    }

    /// Embeds texts, reporting progress in texts, and returns batch statistics.
    pub fn embed_with(
        &self,
        texts: &[&str],
        progress: &dyn Progress,
    ) -> Result<(Embeddings, BatchStats)> {
        let encoded = self.tokenize(texts)?;
        self.embed_encoded(&encoded, progress)
    }

    /// Embeds texts like [`Embedder::embed`], adding the time of each stage (tokenising, each
    /// stage of the forward pass, pooling) to `profile`.
    pub fn embed_profiled(&self, texts: &[&str], profile: &mut StageTimes) -> Result<Embeddings> {
        let start = Instant::now();
        let encoded = self.tokenize(texts)?;
        profile.add("tokenize", start.elapsed());
        self.embed_batches(&encoded, &NoProgress, Some(profile))
            .map(|(e, _)| e)
    }

    /// Embeds already tokenised texts.
    pub fn embed_encoded(
        &self,
        encoded: &[Encoded],
        progress: &dyn Progress,
    ) -> Result<(Embeddings, BatchStats)> {
        self.embed_batches(encoded, progress, None)
    }

    fn embed_batches(
        &self,
        encoded: &[Encoded],
        progress: &dyn Progress,
        mut profile: Option<&mut StageTimes>,
    ) -> Result<(Embeddings, BatchStats)> {
        let dim = self.dim();
        let mut data = vec![0f32; encoded.len() * dim];
        let mut stats = BatchStats::default();
        progress.start("embedding", encoded.len() as u64);
        for indices in plan_batches(encoded, self.batch) {
            let vectors =
                self.forward_batch(encoded, &indices, &mut stats, profile.as_deref_mut())?;
            for (row, &i) in indices.iter().enumerate() {
                data[i * dim..(i + 1) * dim].copy_from_slice(&vectors[row * dim..(row + 1) * dim]);
            }
            progress.advance(indices.len() as u64);
        }
        progress.finish();
        Ok((
            Embeddings {
                dim,
                data,
                tokens: encoded.iter().map(Encoded::len).collect(),
            },
            stats,
        ))
    }

    /// Runs one padded batch and returns its pooled (and maybe normalised) vectors, row-major.
    fn forward_batch(
        &self,
        encoded: &[Encoded],
        indices: &[usize],
        stats: &mut BatchStats,
        mut profile: Option<&mut StageTimes>,
    ) -> Result<Vec<f32>> {
        let start = Instant::now();
        let batch = pad_batch(encoded, indices, self.pad_id);
        stats.batches += 1;
        stats.real_tokens += batch.real_tokens;
        stats.padded_tokens += batch.rows * batch.len;
        let dev = &self.device.device;
        let shape = (batch.rows, batch.len);
        let ids = Tensor::from_vec(batch.ids, shape, dev)?;
        let type_ids = Tensor::from_vec(batch.type_ids, shape, dev)?;
        let mask = Tensor::from_vec(batch.mask, shape, dev)?;
        if let Some(p) = profile.as_deref_mut() {
            p.add("pad batch", start.elapsed());
        }
        let hidden = self
            .encoder
            .forward(&ids, &type_ids, &mask, profile.as_deref_mut())?;
        let start = Instant::now();
        let mut pooled = self.pooling.apply(&hidden, &mask)?;
        if self.normalize {
            pooled = l2_normalize(&pooled)?;
        }
        let out = pooled
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if let Some(p) = profile {
            p.add("pooling + normalise", start.elapsed());
        }
        if let Some(bad) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidVector {
                row: indices[bad / self.dim()],
                reason: format!(
                    "the model produced a non-finite value in {}",
                    self.precision
                ),
            });
        }
        Ok(out)
    }
}
