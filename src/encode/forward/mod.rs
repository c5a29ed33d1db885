//! The BERT forward pass: token ids in, contextual token states out.
//!
//! papersim runs its own forward over candle tensors rather than candle-transformers'
//! `BertModel`, for two reasons: the upstream additive attention mask is built from `f32::MIN`,
//! which overflows to -inf in f16/bf16 and turns padded rows into NaN, and fusing the Q/K/V
//! projections into one matrix product saves time on the CPU. The upstream model stays
//! available as [`Backend::Upstream`] so tests can check the two agree.
//!
//! On the CPU in f32 the default is a third implementation, [`crate::bert_cpu`], which runs on
//! plain buffers instead of candle tensors and is several times faster there
//! ([`Backend::CpuFast`]).

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

use crate::encode::config::Activation;
use crate::encode::model::ModelFiles;
use crate::{Error, Result};

pub mod cpu;

use cpu::CpuBert;

/// Which implementation of the forward pass to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// [`Backend::CpuFast`] on the CPU in f32, [`Backend::Papersim`] everywhere else.
    #[default]
    Auto,
    /// papersim's forward over candle tensors (fused QKV, half-precision-safe mask); serves
    /// CUDA and half precision.
    Papersim,
    /// papersim's CPU forward on plain f32 buffers ([`crate::bert_cpu`]); CPU and f32 only.
    CpuFast,
    /// candle-transformers' `BertModel`, kept for checking (f32 only).
    Upstream,
}

impl Backend {
    /// The backend that will actually run on `device` in `dtype`.
    pub fn resolve(self, device: &Device, dtype: DType) -> Backend {
        match self {
            Backend::Auto if device.is_cpu() && dtype == DType::F32 => Backend::CpuFast,
            Backend::Auto => Backend::Papersim,
            other => other,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::Papersim => "papersim",
            Backend::CpuFast => "cpu-fast",
            Backend::Upstream => "upstream",
        })
    }
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "papersim" | "candle" => Ok(Backend::Papersim),
            "cpu-fast" | "fast" => Ok(Backend::CpuFast),
            "upstream" => Ok(Backend::Upstream),
            other => Err(Error::InvalidInput(format!(
                "unknown backend `{other}`: use auto, cpu-fast, papersim or upstream"
            ))),
        }
    }
}

/// Time spent in each stage of forward passes, in the order stages first ran. Filled by
/// [`Encoder::forward_profiled`]; stages of several calls add up.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    stages: Vec<(&'static str, Duration)>,
}

impl Profile {
    pub fn stages(&self) -> &[(&'static str, Duration)] {
        &self.stages
    }

    pub fn total(&self) -> Duration {
        self.stages.iter().map(|(_, d)| *d).sum()
    }

    pub fn add(&mut self, stage: &'static str, time: Duration) {
        match self.stages.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, d)) => *d += time,
            None => self.stages.push((stage, time)),
        }
    }

    /// Shares the wall time of a parallel region among its stages in proportion to the
    /// thread time each took, since the stages overlap across threads.
    pub fn add_split(&mut self, wall: Duration, parts: &[(&'static str, Duration)]) {
        let threads: Duration = parts.iter().map(|(_, d)| *d).sum();
        for &(stage, d) in parts {
            let share = if threads.is_zero() {
                Duration::ZERO
            } else {
                wall.mul_f64(d.as_secs_f64() / threads.as_secs_f64())
            };
            self.add(stage, share);
        }
    }
}

/// A loaded encoder.
pub enum Encoder {
    Papersim(Bert),
    CpuFast(Box<CpuBert>),
    Upstream(Box<candle_transformers::models::bert::BertModel>),
}

impl Encoder {
    pub fn load(
        files: &ModelFiles,
        backend: Backend,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        // SAFETY: the weights file is memory-mapped read-only; papersim never writes to model
        // files, and the header was checked against the file size when the model was resolved.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&files.weights], dtype, device) }
            .map_err(|e| Error::ModelFile {
            path: files.weights.clone(),
            reason: e.to_string(),
        })?;
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            vb
        } else {
            vb.pp("bert")
        };
        let wrap = |e: candle_core::Error| Error::ModelFile {
            path: files.weights.clone(),
            reason: format!("weights do not match config.json: {e}"),
        };
        match backend.resolve(device, dtype) {
            Backend::Papersim | Backend::Auto => {
                Ok(Encoder::Papersim(Bert::load(vb, files).map_err(wrap)?))
            }
            Backend::CpuFast => {
                if !device.is_cpu() || dtype != DType::F32 {
                    return Err(Error::InvalidInput(
                        "the cpu-fast BERT backend runs on the CPU in f32 only".into(),
                    ));
                }
                Ok(Encoder::CpuFast(Box::new(
                    CpuBert::load(vb, &files.config).map_err(wrap)?,
                )))
            }
            Backend::Upstream => {
                let config_path = files.dir.join("config.json");
                let text = std::fs::read_to_string(&config_path)
                    .map_err(|e| Error::io(&config_path, e))?;
                let config: candle_transformers::models::bert::Config = serde_json::from_str(&text)
                    .map_err(|e| Error::ModelFile {
                        path: config_path.clone(),
                        reason: e.to_string(),
                    })?;
                let model = candle_transformers::models::bert::BertModel::load(vb, &config)
                    .map_err(wrap)?;
                Ok(Encoder::Upstream(Box::new(model)))
            }
        }
    }

    /// The backend this encoder runs.
    pub fn backend(&self) -> Backend {
        match self {
            Encoder::Papersim(_) => Backend::Papersim,
            Encoder::CpuFast(_) => Backend::CpuFast,
            Encoder::Upstream(_) => Backend::Upstream,
        }
    }

    /// Token states [batch, len, hidden] for ids, type ids and mask, each [batch, len] u32.
    /// Only real (mask 1) positions are meaningful; padded ones may differ between backends.
    pub fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        self.forward_profiled(ids, type_ids, mask, None)
    }

    /// [`Encoder::forward`], adding each stage's time to `profile` when given (the upstream
    /// model is timed as one stage).
    pub fn forward_profiled(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        profile: Option<&mut Profile>,
    ) -> Result<Tensor> {
        match self {
            Encoder::Papersim(m) => m.forward(ids, type_ids, mask, profile),
            Encoder::CpuFast(m) => {
                let (b, l) = ids.dims2()?;
                let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<u32>();
                let out = m.forward(&flat(ids)?, &flat(type_ids)?, &flat(mask)?, b, l, profile)?;
                Ok(Tensor::from_vec(
                    out,
                    (b, l, m.hidden_size()),
                    ids.device(),
                )?)
            }
            Encoder::Upstream(m) => {
                let start = Instant::now();
                let out = m.forward(ids, type_ids, Some(mask))?;
                if let Some(p) = profile {
                    p.add("upstream BertModel", start.elapsed());
                }
                Ok(out)
            }
        }
    }
}

/// papersim's BERT.
pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    activation: Activation,
    dtype: DType,
}

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    out_norm: LayerNorm,
}

/// A finite "minus infinity" for the additive mask: exp(-10000) is 0 in every float type, and
/// -10000 is representable in f16 and bf16, unlike `f32::MIN`.
const MASK_NEGATIVE: f64 = -10_000.0;

impl Bert {
    fn load(vb: VarBuilder, files: &ModelFiles) -> candle_core::Result<Self> {
        let c = &files.config;
        let h = c.hidden_size;
        let emb = vb.pp("embeddings");
        let word = embedding(c.vocab_size, h, emb.pp("word_embeddings"))?;
        let position = embedding(c.max_position_embeddings, h, emb.pp("position_embeddings"))?;
        let token_type = embedding(c.type_vocab_size, h, emb.pp("token_type_embeddings"))?;
        let embed_norm = layer_norm(h, c.layer_norm_eps, emb.pp("LayerNorm"))?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let lv = vb.pp(format!("encoder.layer.{i}"));
            let att = lv.pp("attention");
            let sa = att.pp("self");
            let parts: Vec<Linear> = ["query", "key", "value"]
                .iter()
                .map(|n| linear(h, h, sa.pp(n)))
                .collect::<candle_core::Result<_>>()?;
            let weight = Tensor::cat(
                &parts.iter().map(|l| l.weight().clone()).collect::<Vec<_>>(),
                0,
            )?;
            let bias = Tensor::cat(
                &parts
                    .iter()
                    .filter_map(|l| l.bias().cloned())
                    .collect::<Vec<_>>(),
                0,
            )?;
            layers.push(Layer {
                qkv: Linear::new(weight, Some(bias)),
                attn_out: linear(h, h, att.pp("output").pp("dense"))?,
                attn_norm: layer_norm(h, c.layer_norm_eps, att.pp("output").pp("LayerNorm"))?,
                intermediate: linear(h, c.intermediate_size, lv.pp("intermediate").pp("dense"))?,
                output: linear(c.intermediate_size, h, lv.pp("output").pp("dense"))?,
                out_norm: layer_norm(h, c.layer_norm_eps, lv.pp("output").pp("LayerNorm"))?,
            });
        }
        Ok(Bert {
            word,
            position,
            token_type,
            embed_norm,
            layers,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            activation: c.hidden_act,
            dtype: vb.dtype(),
        })
    }

    fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        mut profile: Option<&mut Profile>,
    ) -> Result<Tensor> {
        let mut clock = StageClock::new(ids.device(), profile.is_some())?;
        let (b, l) = ids.dims2()?;
        let positions = Tensor::arange(0u32, l as u32, ids.device())?;
        let x = self
            .word
            .forward(ids)?
            .add(&self.token_type.forward(type_ids)?)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        let mut x = self.embed_norm.forward(&x)?;
        // [b, 1, 1, l]: 0 for real tokens, MASK_NEGATIVE for padding.
        let additive = ((mask.to_dtype(DType::F32)? - 1.0)? * -MASK_NEGATIVE)?
            .to_dtype(self.dtype)?
            .reshape((b, 1, 1, l))?;
        clock.lap(&mut profile, "embeddings + norm + mask")?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            x = self.layer(layer, &x, &additive, scale, b, l, &mut clock, &mut profile)?;
        }
        Ok(x)
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        additive: &Tensor,
        scale: f64,
        b: usize,
        l: usize,
        clock: &mut StageClock,
        profile: &mut Option<&mut Profile>,
    ) -> Result<Tensor> {
        let hidden = self.heads * self.head_dim;
        let qkv = layer.qkv.forward(x)?;
        clock.lap(profile, "QKV projection + bias")?;
        let qkv = qkv
            .reshape((b, l, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?; // [3, b, heads, l, head_dim]
        let q = (qkv.get(0)?.contiguous()? * scale)?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        clock.lap(profile, "split heads (copies) + scale Q")?;
        let scores = q.matmul(&k.t()?)?;
        clock.lap(profile, "attention: Q·Kᵀ")?;
        let scores = scores.broadcast_add(additive)?;
        clock.lap(profile, "attention: mask add")?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        clock.lap(profile, "attention: softmax")?;
        let context = probs.matmul(&v)?;
        clock.lap(profile, "attention: P·V")?;
        let context = context.transpose(1, 2)?.reshape((b, l, hidden))?;
        clock.lap(profile, "merge heads (copy)")?;
        let attended = (layer.attn_out.forward(&context)? + x)?;
        clock.lap(profile, "attention output + bias + residual")?;
        let attended = layer.attn_norm.forward(&attended)?;
        clock.lap(profile, "attention layer norm")?;
        let inner = layer.intermediate.forward(&attended)?;
        clock.lap(profile, "FFN in (384→1536) + bias")?;
        let inner = match self.activation {
            Activation::GeluErf => inner.gelu_erf()?,
            // candle's `gelu` is the tanh approximation.
            Activation::GeluTanh => inner.gelu()?,
        };
        clock.lap(profile, "GELU")?;
        let out = (layer.output.forward(&inner)? + attended)?;
        clock.lap(profile, "FFN out (1536→384) + bias + residual")?;
        let out = layer.out_norm.forward(&out)?;
        clock.lap(profile, "FFN layer norm")?;
        Ok(out)
    }
}

/// Stage timer for the candle path: waits for the device before each reading so that queued
/// CUDA work is charged to the stage that queued it; does nothing when not profiling.
struct StageClock {
    device: Device,
    last: Option<Instant>,
}

impl StageClock {
    fn new(device: &Device, on: bool) -> Result<Self> {
        if on {
            device.synchronize()?;
        }
        Ok(StageClock {
            device: device.clone(),
            last: on.then(Instant::now),
        })
    }

    fn lap(&mut self, profile: &mut Option<&mut Profile>, stage: &'static str) -> Result<()> {
        if let (Some(last), Some(p)) = (self.last.as_mut(), profile.as_deref_mut()) {
            self.device.synchronize()?;
            let now = Instant::now();
            p.add(stage, now - *last);
            *last = now;
        }
        Ok(())
    }
}
