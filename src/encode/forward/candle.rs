//! papersim's BERT forward over candle tensors: the path CUDA and half precision run. It also
//! runs MPNet, which is BERT's layers under other weight names plus a relative position bias
//! ([`super::relative_bucket`]) added to every layer's attention scores, positions counted from
//! `pad_token_id + 1` and no token type embeddings.
//!
//! It differs from candle-transformers' `BertModel` ([`super::upstream`]) in two ways: the
//! additive attention mask uses a finite negative (the upstream one is built from `f32::MIN`,
//! which overflows to -inf in f16/bf16 and turns padded rows into NaN), and the Q/K/V
//! projections are fused into one matrix product, which saves time on the CPU.

use std::time::Instant;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

use super::stages::{FfnLabels, StageTimes};
use super::{relative_bucket, Backend, Forward};
use crate::encode::config::{Activation, Architecture, BertConfig};
use crate::Result;

/// papersim's BERT over candle tensors.
pub struct CandleBert {
    word: Embedding,
    position: Embedding,
    /// BERT's token type embeddings; MPNet has none.
    token_type: Option<Embedding>,
    /// The position id of the first token: 0 for BERT, `pad_token_id + 1` for MPNet.
    first_position: u32,
    /// MPNet's relative position bias table, `[buckets, heads]`, shared by all layers.
    relative: Option<(Embedding, usize)>,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    activation: Activation,
    ffn: FfnLabels,
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

impl CandleBert {
    /// Loads the weights under `vb` (already pointed at the BERT root) as `c` describes them.
    pub fn load(vb: VarBuilder, c: &BertConfig) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        let mpnet = c.architecture == Architecture::Mpnet;
        let emb = vb.pp("embeddings");
        let word = embedding(c.vocab_size, h, emb.pp("word_embeddings"))?;
        let position = embedding(c.max_position_embeddings, h, emb.pp("position_embeddings"))?;
        let token_type = if mpnet {
            None
        } else {
            Some(embedding(
                c.type_vocab_size,
                h,
                emb.pp("token_type_embeddings"),
            )?)
        };
        let relative = if mpnet {
            let buckets = c.relative_attention_num_buckets;
            Some((
                embedding(
                    buckets,
                    c.num_attention_heads,
                    vb.pp("encoder").pp("relative_attention_bias"),
                )?,
                buckets,
            ))
        } else {
            None
        };
        let embed_norm = layer_norm(h, c.layer_norm_eps, emb.pp("LayerNorm"))?;
        let names = WeightNames::of(c.architecture);
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let lv = vb.pp(format!("encoder.layer.{i}"));
            let att = lv.pp("attention");
            let sa = att.pp(names.attention);
            let parts: Vec<Linear> = names
                .qkv
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
            let (attn_out, attn_norm) = if mpnet {
                (linear(h, h, sa.pp("o"))?, att.pp("LayerNorm"))
            } else {
                (
                    linear(h, h, att.pp("output").pp("dense"))?,
                    att.pp("output").pp("LayerNorm"),
                )
            };
            layers.push(Layer {
                qkv: Linear::new(weight, Some(bias)),
                attn_out,
                attn_norm: layer_norm(h, c.layer_norm_eps, attn_norm)?,
                intermediate: linear(h, c.intermediate_size, lv.pp("intermediate").pp("dense"))?,
                output: linear(c.intermediate_size, h, lv.pp("output").pp("dense"))?,
                out_norm: layer_norm(h, c.layer_norm_eps, lv.pp("output").pp("LayerNorm"))?,
            });
        }
        Ok(CandleBert {
            word,
            position,
            token_type,
            first_position: if mpnet { c.pad_token_id as u32 + 1 } else { 0 },
            relative,
            embed_norm,
            layers,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            activation: c.hidden_act,
            ffn: FfnLabels::new(h, c.intermediate_size),
            dtype: vb.dtype(),
        })
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
        stages: &mut Option<&mut StageTimes>,
    ) -> Result<Tensor> {
        let hidden = self.heads * self.head_dim;
        let qkv = layer.qkv.forward(x)?;
        clock.lap(stages, "QKV projection + bias")?;
        let qkv = qkv
            .reshape((b, l, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?; // [3, b, heads, l, head_dim]
        let q = (qkv.get(0)?.contiguous()? * scale)?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        clock.lap(stages, "split heads (copies) + scale Q")?;
        let scores = q.matmul(&k.t()?)?;
        clock.lap(stages, "attention: Q·Kᵀ")?;
        let scores = scores.broadcast_add(additive)?;
        clock.lap(stages, "attention: mask add")?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        clock.lap(stages, "attention: softmax")?;
        let context = probs.matmul(&v)?;
        clock.lap(stages, "attention: P·V")?;
        let context = context.transpose(1, 2)?.reshape((b, l, hidden))?;
        clock.lap(stages, "merge heads (copy)")?;
        let attended = (layer.attn_out.forward(&context)? + x)?;
        clock.lap(stages, "attention output + bias + residual")?;
        let attended = layer.attn_norm.forward(&attended)?;
        clock.lap(stages, "attention layer norm")?;
        let inner = layer.intermediate.forward(&attended)?;
        clock.lap(stages, &self.ffn.input)?;
        let inner = match self.activation {
            Activation::GeluErf => inner.gelu_erf()?,
            // candle's `gelu` is the tanh approximation.
            Activation::GeluTanh => inner.gelu()?,
        };
        clock.lap(stages, "GELU")?;
        let out = (layer.output.forward(&inner)? + attended)?;
        clock.lap(stages, &self.ffn.output)?;
        let out = layer.out_norm.forward(&out)?;
        clock.lap(stages, "FFN layer norm")?;
        Ok(out)
    }
}

impl Forward for CandleBert {
    fn backend(&self) -> Backend {
        Backend::Papersim
    }

    fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        mut stages: Option<&mut StageTimes>,
    ) -> Result<Tensor> {
        let mut clock = StageClock::new(ids.device(), stages.is_some())?;
        let (b, l) = ids.dims2()?;
        // Padding is on the right, so a real token's position is its index (from
        // `first_position`) in both families; padded positions are masked out.
        let positions = Tensor::arange(
            self.first_position,
            self.first_position + l as u32,
            ids.device(),
        )?;
        let mut x = self.word.forward(ids)?;
        if let Some(token_type) = &self.token_type {
            x = x.add(&token_type.forward(type_ids)?)?;
        }
        let x = x.broadcast_add(&self.position.forward(&positions)?)?;
        let mut x = self.embed_norm.forward(&x)?;
        // [b, 1, 1, l]: 0 for real tokens, MASK_NEGATIVE for padding.
        let mut additive = ((mask.to_dtype(DType::F32)? - 1.0)? * -MASK_NEGATIVE)?
            .to_dtype(self.dtype)?
            .reshape((b, 1, 1, l))?;
        if let Some((table, buckets)) = &self.relative {
            // [1, heads, l, l], added once to the mask: every layer adds the same bias.
            let ids: Vec<u32> = (0..l)
                .flat_map(|q| (0..l).map(move |k| relative_bucket(k as i64 - q as i64, *buckets)))
                .collect();
            let ids = Tensor::from_vec(ids, (l, l), x.device())?;
            let bias = table.forward(&ids)?.permute((2, 0, 1))?.unsqueeze(0)?;
            additive = additive.broadcast_add(&bias)?.contiguous()?;
        }
        clock.lap(&mut stages, "embeddings + norm + mask")?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            x = self.layer(layer, &x, &additive, scale, b, l, &mut clock, &mut stages)?;
        }
        Ok(x)
    }
}

/// The weight names of one layer's attention, which differ between the families.
struct WeightNames {
    attention: &'static str,
    qkv: [&'static str; 3],
}

impl WeightNames {
    fn of(architecture: Architecture) -> Self {
        match architecture {
            Architecture::Bert => WeightNames {
                attention: "self",
                qkv: ["query", "key", "value"],
            },
            Architecture::Mpnet => WeightNames {
                attention: "attn",
                qkv: ["q", "k", "v"],
            },
        }
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

    fn lap(&mut self, stages: &mut Option<&mut StageTimes>, stage: &str) -> Result<()> {
        if let (Some(last), Some(p)) = (self.last.as_mut(), stages.as_deref_mut()) {
            self.device.synchronize()?;
            let now = Instant::now();
            p.add(stage, now - *last);
            *last = now;
        }
        Ok(())
    }
}
