//! The BERT forward pass: token ids in, contextual token states out.
//!
//! papersim runs its own forward over candle tensors rather than candle-transformers'
//! `BertModel`, for two reasons: the upstream additive attention mask is built from `f32::MIN`,
//! which overflows to -inf in f16/bf16 and turns padded rows into NaN, and fusing the Q/K/V
//! projections into one matrix product saves time on the CPU. The upstream model stays
//! available as [`Backend::Upstream`] so tests can check the two agree.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

use crate::model::ModelFiles;
use crate::{Error, Result};

/// Which implementation of the forward pass to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// papersim's forward (fused QKV, half-precision-safe mask).
    #[default]
    Papersim,
    /// candle-transformers' `BertModel`, kept for checking (f32 only).
    Upstream,
}

/// A loaded encoder.
pub enum Encoder {
    Papersim(Bert),
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
        match backend {
            Backend::Papersim => Ok(Encoder::Papersim(Bert::load(vb, files).map_err(wrap)?)),
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

    /// Token states [batch, len, hidden] for ids, type ids and mask, each [batch, len] u32.
    pub fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        match self {
            Encoder::Papersim(m) => m.forward(ids, type_ids, mask),
            Encoder::Upstream(m) => Ok(m.forward(ids, type_ids, Some(mask))?),
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
        if c.hidden_act != "gelu"
            && c.hidden_act != "gelu_new"
            && c.hidden_act != "gelu_pytorch_tanh"
        {
            candle_core::bail!("hidden_act `{}` is not supported (gelu)", c.hidden_act);
        }
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
            dtype: vb.dtype(),
        })
    }

    fn forward(&self, ids: &Tensor, type_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
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
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            x = self.layer(layer, &x, &additive, scale, b, l)?;
        }
        Ok(x)
    }

    fn layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        additive: &Tensor,
        scale: f64,
        b: usize,
        l: usize,
    ) -> Result<Tensor> {
        let hidden = self.heads * self.head_dim;
        let qkv = layer
            .qkv
            .forward(x)?
            .reshape((b, l, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?; // [3, b, heads, l, head_dim]
        let q = (qkv.get(0)?.contiguous()? * scale)?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(additive)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, hidden))?;
        let attended = layer
            .attn_norm
            .forward(&(layer.attn_out.forward(&context)? + x)?)?;
        let inner = layer.intermediate.forward(&attended)?.gelu_erf()?;
        let out = layer.output.forward(&inner)?;
        Ok(layer.out_norm.forward(&(out + attended)?)?)
    }
}
