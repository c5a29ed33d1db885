//! A CPU-only BERT forward pass on plain `f32` buffers; it runs MPNet too (BERT's layers under
//! other weight names, a relative position bias added to the scaled attention scores, positions
//! from `pad_token_id + 1`, no token types).
//!
//! Boundary: [`CpuBert::load`] copies the weights once, straight out of the mapped safetensors
//! file (through a candle `VarBuilder` for tensors that are not f32), matrix weights transposed
//! to `[in, out]` and Q/K/V fused into one matrix; [`CpuBert::forward`] takes
//! token ids, type ids and the attention mask as slices and returns the hidden states, row-major
//! `[batch, len, hidden]`, with zeros at padded positions. Nothing outside this module sees its
//! buffers: its [`Forward`] implementation puts it behind the same tensor interface as the
//! candle path. It runs f32 on the CPU only; CUDA and half precision stay on the
//! candle-tensor path ([`crate::encode::forward::candle`]), and the upstream `BertModel` stays
//! the reference.
//!
//! [`Forward`]: crate::encode::forward::Forward
//!
//! Where the time goes and why this is faster than the same model as candle tensors:
//! - Padding is never computed. Real tokens are packed into one `[tokens, hidden]` matrix, so the
//!   dense layers see only real rows, and attention runs per sequence over its real length, which
//!   makes the additive mask unnecessary.
//! - Matrix products go straight to the `gemm` crate (the kernels candle uses, AVX-512 included,
//!   chosen at run time), one single-threaded call per block of rows, with the bias and the
//!   residual loaded into the destination first so the product accumulates onto them.
//! - Element-wise work is done on each block right after the product that made it, while it is
//!   still in cache: bias + GELU, scale + softmax, residual + layer norm.
//! - Attention reads Q, K and V as strided views of the fused QKV matrix: no copies, no
//!   materialised transposes.
//! - Element-wise kernels are written so the compiler vectorises them, and run under
//!   `pulp`'s run-time CPU dispatch, so one binary uses AVX-512 where the CPU has it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::Tensor;
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::stages::{FfnLabels, StageTimes};
use super::{relative_bucket, Backend, Forward};
use crate::encode::config::{Activation, Architecture, BertConfig};
use crate::{Error, Result};

/// A dense layer: `y = x · w + b` with `w` stored `[inputs, outputs]` row-major.
struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

struct Layer {
    qkv: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    ffn_in: Dense,
    ffn_out: Dense,
    out_norm: Norm,
}

/// BERT weights laid out for the CPU kernels below.
pub struct CpuBert {
    hidden: usize,
    heads: usize,
    head_dim: usize,
    intermediate: usize,
    activation: Activation,
    ffn: FfnLabels,
    vocab: usize,
    max_positions: usize,
    type_vocab: usize,
    word: WordTable,
    position: Vec<f32>,
    /// BERT's token type table; MPNet has none.
    token_type: Option<Vec<f32>>,
    /// The position id of the first token: 0 for BERT, `pad_token_id + 1` for MPNet.
    first_position: usize,
    /// MPNet's relative position bias by head and distance: `[heads, 2·max_positions − 1]`,
    /// entry `max_positions − 1 + (key − query)`, so attention looks it up without bucketing.
    relative: Option<Vec<f32>>,
    embed_norm: Norm,
    layers: Vec<Layer>,
}

/// One sequence's real tokens inside the packed token matrix.
#[derive(Debug, Clone, Copy)]
struct Seq {
    /// First packed row.
    start: usize,
    /// Number of real tokens.
    len: usize,
}

fn tensor_data(t: &candle_core::Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Where the weights come from: a `VarBuilder` (its prefix names the tensors), and the mapped
/// safetensors file when there is one. f32 tensors are read from the file straight into their
/// buffers, one copy; through candle they were copied into a tensor and again out of it, which
/// was most of a one-query command's time (loading the model dominates `papersim query`).
#[derive(Clone)]
pub struct Weights<'a> {
    vb: VarBuilder<'a>,
    file: Option<&'a candle_core::safetensors::MmapedSafetensors>,
}

impl<'a> Weights<'a> {
    pub fn new(
        vb: VarBuilder<'a>,
        file: Option<&'a candle_core::safetensors::MmapedSafetensors>,
    ) -> Self {
        Weights { vb, file }
    }

    fn pp(&self, name: impl ToString) -> Weights<'a> {
        Weights {
            vb: self.vb.pp(name),
            file: self.file,
        }
    }

    /// The full name of the tensor `path` (joined with dots) under this prefix.
    fn mapped_name(&self, path: &[&str]) -> Option<String> {
        self.file?;
        let prefix = self.vb.prefix();
        let mut parts: Vec<&str> = if prefix.is_empty() {
            vec![]
        } else {
            vec![&prefix]
        };
        parts.extend_from_slice(path);
        Some(parts.join("."))
    }

    /// The tensor `name` of shape `shape`, row-major.
    fn get(&self, shape: &[usize], name: &str) -> candle_core::Result<Vec<f32>> {
        if let Some(file) = self.file {
            let prefix = self.vb.prefix();
            let full = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            };
            if let Ok(view) = file.get(&full) {
                if view.dtype() == safetensors::Dtype::F32 && view.shape() == shape {
                    return Ok(view
                        .data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect());
                }
            }
        }
        tensor_data(&self.vb.get(shape, name)?)
    }
}

/// The word-embedding table. Read where it lies in the mapped weights file when it can be:
/// it is half of MiniLM's weights (47 MB), and a command that embeds one query reads a few
/// dozen of its rows, so copying it was a fifth of such a command's time.
enum WordTable {
    Owned(Vec<f32>),
    /// The tensor `name` of `file`, checked at load to be f32 of the right shape.
    Mapped {
        file: Arc<MmapedSafetensors>,
        name: String,
    },
}

/// A [`WordTable`]'s rows, borrowed for one forward pass.
enum WordRows<'a> {
    F32(&'a [f32]),
    /// Little-endian f32 bytes, not necessarily aligned.
    Le(&'a [u8]),
}

impl WordTable {
    fn rows(&self) -> WordRows<'_> {
        match self {
            WordTable::Owned(v) => WordRows::F32(v),
            WordTable::Mapped { file, name } => match file.get(name) {
                Ok(view) => WordRows::Le(view.data()),
                // Checked when the model was loaded, and the mapping does not change.
                Err(_) => unreachable!("tensor {name} was found when the model was loaded"),
            },
        }
    }
}

impl WordRows<'_> {
    /// Writes row `id` (of `h` values) into `out`.
    fn copy_row(&self, id: usize, out: &mut [f32]) {
        let h = out.len();
        match self {
            WordRows::F32(v) => out.copy_from_slice(&v[id * h..][..h]),
            WordRows::Le(b) => {
                for (o, c) in out.iter_mut().zip(b[id * h * 4..][..h * 4].chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
        }
    }
}

/// A row-major `[rows, cols]` matrix as `[cols, rows]`.
fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let mut dst = vec![0f32; rows * cols];
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
    dst
}

impl Dense {
    /// Loads a PyTorch `Linear` (`weight` [out, in]) and transposes it once.
    fn load(vb: &Weights, inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        let w = vb.get(&[outputs, inputs], "weight")?;
        Ok(Dense {
            w: transpose(&w, outputs, inputs),
            b: vb.get(&[outputs], "bias")?,
            inputs,
            outputs,
        })
    }

    /// Q, K and V (weights named `names`) as one layer with outputs [q | k | v].
    fn load_qkv(vb: &Weights, hidden: usize, names: [&str; 3]) -> candle_core::Result<Self> {
        let parts = names
            .iter()
            .map(|n| Dense::load(&vb.pp(n), hidden, hidden))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let outputs = 3 * hidden;
        let mut w = vec![0f32; hidden * outputs];
        for (p, part) in parts.iter().enumerate() {
            for (row, src) in w.chunks_exact_mut(outputs).zip(part.w.chunks_exact(hidden)) {
                row[p * hidden..(p + 1) * hidden].copy_from_slice(src);
            }
        }
        Ok(Dense {
            w,
            b: parts.iter().flat_map(|p| p.b.iter().copied()).collect(),
            inputs: hidden,
            outputs,
        })
    }
}

impl Norm {
    fn load(vb: &Weights, size: usize, eps: f64) -> candle_core::Result<Self> {
        Ok(Norm {
            gamma: vb.get(&[size], "weight")?,
            beta: vb.get(&[size], "bias")?,
            eps: eps as f32,
        })
    }
}

impl Forward for CpuBert {
    fn backend(&self) -> Backend {
        Backend::CpuFast
    }

    /// Copies the tensors into slices for [`CpuBert::forward`] and its output back.
    fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        stages: Option<&mut StageTimes>,
    ) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<u32>();
        let out = CpuBert::forward(
            self,
            &flat(ids)?,
            &flat(type_ids)?,
            &flat(mask)?,
            b,
            l,
            stages,
        )?;
        Ok(Tensor::from_vec(
            out,
            (b, l, self.hidden_size()),
            ids.device(),
        )?)
    }
}

impl CpuBert {
    /// Copies the weights under `vb` (already pointed at the BERT root) into CPU buffers, but
    /// for the word-embedding table, which is read from `file` (the mapped weights) where it
    /// lies when it is stored as f32.
    pub fn load(
        vb: Weights,
        file: Option<Arc<MmapedSafetensors>>,
        c: &BertConfig,
    ) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        if c.num_attention_heads == 0 || !h.is_multiple_of(c.num_attention_heads) {
            candle_core::bail!(
                "hidden_size {h} is not a multiple of num_attention_heads {}",
                c.num_attention_heads
            );
        }
        let emb = vb.pp("embeddings");
        let table = |name: &str, rows: usize| -> candle_core::Result<Vec<f32>> {
            emb.pp(name).get(&[rows, h], "weight")
        };
        let mpnet = c.architecture == Architecture::Mpnet;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let lv = vb.pp(format!("encoder.layer.{i}"));
            let att = lv.pp("attention");
            // MPNet names the same weights differently: attn.{q,k,v,o} and attention.LayerNorm.
            let (qkv, attn_out, attn_norm) = if mpnet {
                let a = att.pp("attn");
                (
                    Dense::load_qkv(&a, h, ["q", "k", "v"])?,
                    Dense::load(&a.pp("o"), h, h)?,
                    Norm::load(&att.pp("LayerNorm"), h, c.layer_norm_eps)?,
                )
            } else {
                (
                    Dense::load_qkv(&att.pp("self"), h, ["query", "key", "value"])?,
                    Dense::load(&att.pp("output").pp("dense"), h, h)?,
                    Norm::load(&att.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
                )
            };
            layers.push(Layer {
                qkv,
                attn_out,
                attn_norm,
                ffn_in: Dense::load(&lv.pp("intermediate").pp("dense"), h, c.intermediate_size)?,
                ffn_out: Dense::load(&lv.pp("output").pp("dense"), c.intermediate_size, h)?,
                out_norm: Norm::load(&lv.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        Ok(CpuBert {
            hidden: h,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            intermediate: c.intermediate_size,
            activation: c.hidden_act,
            ffn: FfnLabels::new(h, c.intermediate_size),
            vocab: c.vocab_size,
            max_positions: c.max_position_embeddings,
            type_vocab: c.type_vocab_size,
            word: match file.zip(vb.mapped_name(&["embeddings", "word_embeddings", "weight"])) {
                Some((file, name))
                    if file.get(&name).is_ok_and(|v| {
                        v.dtype() == safetensors::Dtype::F32 && v.shape() == [c.vocab_size, h]
                    }) =>
                {
                    WordTable::Mapped { file, name }
                }
                _ => WordTable::Owned(table("word_embeddings", c.vocab_size)?),
            },
            position: table("position_embeddings", c.max_position_embeddings)?,
            token_type: if mpnet {
                None
            } else {
                Some(table("token_type_embeddings", c.type_vocab_size)?)
            },
            first_position: if mpnet { c.pad_token_id + 1 } else { 0 },
            relative: if mpnet {
                Some(relative_by_distance(
                    &vb.pp("encoder").pp("relative_attention_bias").get(
                        &[c.relative_attention_num_buckets, c.num_attention_heads],
                        "weight",
                    )?,
                    c,
                ))
            } else {
                None
            },
            embed_norm: Norm::load(&emb.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Hidden states `[batch, len, hidden]` for `ids`, `type_ids` and `mask`, each
    /// `[batch, len]` row-major (mask: non-zero for real tokens). Padded positions come back
    /// as zeros. `stages`, when given, receives the time of each stage.
    pub fn forward(
        &self,
        ids: &[u32],
        type_ids: &[u32],
        mask: &[u32],
        batch: usize,
        len: usize,
        mut stages: Option<&mut StageTimes>,
    ) -> Result<Vec<f32>> {
        let cells = batch * len;
        if ids.len() != cells || type_ids.len() != cells || mask.len() != cells {
            return Err(Error::InvalidInput(format!(
                "forward: ids, type ids and mask must each hold {batch}×{len} values"
            )));
        }
        if len + self.first_position > self.max_positions {
            return Err(Error::InvalidInput(format!(
                "{len} tokens exceed the model's {} positions",
                self.max_positions
            )));
        }
        // Packed row -> padded cell, and each sequence's packed rows.
        let mut cells_of_rows = Vec::with_capacity(cells);
        let mut seqs = Vec::with_capacity(batch);
        for r in 0..batch {
            let start = cells_of_rows.len();
            cells_of_rows.extend((r * len..(r + 1) * len).filter(|&c| mask[c] != 0));
            seqs.push(Seq {
                start,
                len: cells_of_rows.len() - start,
            });
        }
        for &c in &cells_of_rows {
            let bad_type = self.token_type.is_some() && type_ids[c] as usize >= self.type_vocab;
            if ids[c] as usize >= self.vocab || bad_type {
                return Err(Error::InvalidInput(format!(
                    "token id {} or type id {} is outside the model's vocabulary",
                    ids[c], type_ids[c]
                )));
            }
        }
        let h = self.hidden;
        let tokens = cells_of_rows.len();
        let mut x = vec![0f32; tokens * h];
        let mut qkv = vec![0f32; tokens * 3 * h];
        let mut ctx = vec![0f32; tokens * h];
        let block = row_block(tokens);

        let start = Instant::now();
        self.embed(&mut x, &cells_of_rows, ids, type_ids, len, block);
        if let Some(p) = stages.as_deref_mut() {
            p.add("embeddings + norm", start.elapsed());
        }
        for layer in &self.layers {
            self.layer(
                layer,
                &mut x,
                &mut qkv,
                &mut ctx,
                &seqs,
                block,
                stages.as_deref_mut(),
            );
        }

        let start = Instant::now();
        let mut out = vec![0f32; cells * h];
        for (row, &c) in x.chunks_exact(h).zip(&cells_of_rows) {
            out[c * h..(c + 1) * h].copy_from_slice(row);
        }
        if let Some(p) = stages {
            p.add("unpack to [batch, len, hidden]", start.elapsed());
        }
        Ok(out)
    }

    fn embed(
        &self,
        x: &mut [f32],
        cells_of_rows: &[usize],
        ids: &[u32],
        type_ids: &[u32],
        len: usize,
        block: usize,
    ) {
        let h = self.hidden;
        let words = self.word.rows();
        x.par_chunks_mut(block * h)
            .zip(cells_of_rows.par_chunks(block))
            .for_each(|(xb, cells)| {
                for (row, &c) in xb.chunks_exact_mut(h).zip(cells) {
                    words.copy_row(ids[c] as usize, row);
                    let pos = &self.position[(self.first_position + c % len) * h..][..h];
                    match &self.token_type {
                        Some(types) => {
                            let typ = &types[type_ids[c] as usize * h..][..h];
                            // (word + position) + type, as before the table was mapped.
                            for ((o, p), t) in row.iter_mut().zip(pos).zip(typ) {
                                *o = *o + p + t;
                            }
                        }
                        None => {
                            for (o, p) in row.iter_mut().zip(pos) {
                                *o += p;
                            }
                        }
                    }
                }
                run(Kernel::LayerNorm {
                    x: xb,
                    norm: &self.embed_norm,
                });
            });
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        l: &Layer,
        x: &mut [f32],
        qkv: &mut [f32],
        ctx: &mut [f32],
        seqs: &[Seq],
        block: usize,
        mut stages: Option<&mut StageTimes>,
    ) {
        let h = self.hidden;
        let timing = stages.is_some();

        // Q, K, V for every token: qkv = x · Wqkv + b.
        let start = Instant::now();
        qkv.par_chunks_mut(block * 3 * h)
            .zip(x.par_chunks(block * h))
            .for_each(|(out, xb)| {
                run(Kernel::FillRows { out, row: &l.qkv.b });
                dense_acc(out, xb, &l.qkv);
            });
        if let Some(p) = stages.as_deref_mut() {
            p.add("QKV projection + bias", start.elapsed());
        }

        // Attention, one task per sequence, each writing its own rows of ctx.
        let start = Instant::now();
        let mut parts = Vec::with_capacity(seqs.len());
        let mut rest = &mut ctx[..];
        for s in seqs {
            let (mine, tail) = rest.split_at_mut(s.len * h);
            parts.push(mine);
            rest = tail;
        }
        let qkv = &*qkv;
        let threads = parts
            .into_par_iter()
            .zip(seqs.par_iter())
            .map_init(Vec::new, |scores, (out, s)| {
                self.attend(qkv, *s, out, scores, timing)
            })
            .reduce(|| [Duration::ZERO; 3], add_times);
        if let Some(p) = stages.as_deref_mut() {
            p.add_split(
                start.elapsed(),
                &[
                    ("attention: Q·Kᵀ", threads[0]),
                    ("attention: scale + softmax", threads[1]),
                    ("attention: P·V", threads[2]),
                ],
            );
        }

        // x = norm(x + ctx · Wo + bo)
        let start = Instant::now();
        let threads = x
            .par_chunks_mut(block * h)
            .zip(ctx.par_chunks(block * h))
            .map(|(xb, cb)| {
                let mut clock = Clock::new(timing);
                run(Kernel::AddRows {
                    out: xb,
                    row: &l.attn_out.b,
                });
                dense_acc(xb, cb, &l.attn_out);
                let product = clock.lap();
                run(Kernel::LayerNorm {
                    x: xb,
                    norm: &l.attn_norm,
                });
                [product, clock.lap(), Duration::ZERO]
            })
            .reduce(|| [Duration::ZERO; 3], add_times);
        if let Some(p) = stages.as_deref_mut() {
            p.add_split(
                start.elapsed(),
                &[
                    ("attention output + bias + residual", threads[0]),
                    ("attention layer norm", threads[1]),
                ],
            );
        }

        // x = norm(x + gelu(x · W1 + b1) · W2 + b2), one block of rows at a time so the
        // intermediate activations stay in cache.
        let start = Instant::now();
        let inner = self.intermediate;
        let threads = x
            .par_chunks_mut(block * h)
            .map_init(Vec::new, |scratch: &mut Vec<f32>, xb| {
                let mut clock = Clock::new(timing);
                let rows = xb.len() / h;
                scratch.resize(rows * inner, 0.0);
                let mid = &mut scratch[..];
                run(Kernel::FillRows {
                    out: mid,
                    row: &l.ffn_in.b,
                });
                dense_acc(mid, xb, &l.ffn_in);
                let first = clock.lap();
                run(Kernel::Activation {
                    x: mid,
                    activation: self.activation,
                });
                let gelu = clock.lap();
                run(Kernel::AddRows {
                    out: xb,
                    row: &l.ffn_out.b,
                });
                dense_acc(xb, mid, &l.ffn_out);
                let second = clock.lap();
                run(Kernel::LayerNorm {
                    x: xb,
                    norm: &l.out_norm,
                });
                [first, gelu, second, clock.lap()]
            })
            .reduce(|| [Duration::ZERO; 4], add_times);
        if let Some(p) = stages {
            p.add_split(
                start.elapsed(),
                &[
                    (&self.ffn.input, threads[0]),
                    ("GELU", threads[1]),
                    (&self.ffn.output, threads[2]),
                    ("FFN layer norm", threads[3]),
                ],
            );
        }
    }

    /// Self-attention of one sequence: `out` [len, hidden] receives the context of every head.
    fn attend(
        &self,
        qkv: &[f32],
        s: Seq,
        out: &mut [f32],
        scores: &mut Vec<f32>,
        timing: bool,
    ) -> [Duration; 3] {
        let (h, d, n) = (self.hidden, self.head_dim, s.len);
        let mut times = [Duration::ZERO; 3];
        if n == 0 {
            return times;
        }
        let mut clock = Clock::new(timing);
        let stride = 3 * h;
        let rows = &qkv[s.start * stride..(s.start + n) * stride];
        let scale = 1.0 / (d as f32).sqrt();
        scores.resize(n * n, 0.0);
        for head in 0..self.heads {
            let q = MatRef::new(&rows[head * d..], n, d, stride, 1);
            // Kᵀ as a view: element (i, j) is K[j][i].
            let kt = MatRef::new(&rows[h + head * d..], d, n, 1, stride);
            let v = MatRef::new(&rows[2 * h + head * d..], n, d, stride, 1);
            matmul(MatMut::new(scores, n, n, n), q, kt, false);
            times[0] += clock.lap();
            let scale = match &self.relative {
                // MPNet: scores · scale + the bias of each key's distance from the query, in
                // place; the softmax then scales by 1.
                Some(relative) => {
                    let span = 2 * self.max_positions - 1;
                    let by_distance = &relative[head * span..(head + 1) * span];
                    for (i, row) in scores.chunks_exact_mut(n).enumerate() {
                        // Key j's entry is max_positions − 1 + j − i.
                        let bias = &by_distance[self.max_positions - 1 - i..][..n];
                        for (s, b) in row.iter_mut().zip(bias) {
                            *s = *s * scale + b;
                        }
                    }
                    1.0
                }
                None => scale,
            };
            run(Kernel::Softmax {
                s: scores,
                n,
                scale,
            });
            times[1] += clock.lap();
            let p = MatRef::new(scores, n, n, n, 1);
            matmul(MatMut::new(&mut out[head * d..], n, d, h), p, v, false);
            times[2] += clock.lap();
        }
        times
    }
}

/// MPNet's relative bias table `[buckets, heads]` spread out by distance: `[heads, span]` with
/// span = 2·max_positions − 1 and entry `max_positions − 1 + (key − query)`.
fn relative_by_distance(table: &[f32], c: &BertConfig) -> Vec<f32> {
    let (p, heads) = (c.max_position_embeddings as i64, c.num_attention_heads);
    let span = (2 * p - 1) as usize;
    let mut out = vec![0f32; heads * span];
    for (k, relative) in (-(p - 1)..p).enumerate() {
        let bucket = relative_bucket(relative, c.relative_attention_num_buckets) as usize;
        for head in 0..heads {
            out[head * span + k] = table[bucket * heads + head];
        }
    }
    out
}

/// Rows per task for the row-parallel stages: big enough for the matrix kernels to run at
/// full speed, small enough that the FFN intermediate of one block stays in cache and that
/// every thread gets several blocks.
fn row_block(tokens: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (tokens.div_ceil(threads * 4)).clamp(32, 256)
}

fn add_times<const N: usize>(a: [Duration; N], b: [Duration; N]) -> [Duration; N] {
    std::array::from_fn(|i| a[i] + b[i])
}

/// Lap timer that costs nothing when profiling is off.
struct Clock(Option<Instant>);

impl Clock {
    fn new(on: bool) -> Self {
        Clock(on.then(Instant::now))
    }
    fn lap(&mut self) -> Duration {
        match &mut self.0 {
            Some(last) => {
                let now = Instant::now();
                let d = now - *last;
                *last = now;
                d
            }
            None => Duration::ZERO,
        }
    }
}

/// The element-wise kernels, as data, so that [`run`] can compile them for the best vector
/// extension the CPU has.
enum Kernel<'a> {
    /// Copies `row` into every row of `out`.
    FillRows { out: &'a mut [f32], row: &'a [f32] },
    /// Adds `row` to every row of `out`.
    AddRows { out: &'a mut [f32], row: &'a [f32] },
    /// Layer norm of every row of `x`, in place.
    LayerNorm { x: &'a mut [f32], norm: &'a Norm },
    /// softmax(scale · row) of every `n`-wide row of `s`, in place.
    Softmax {
        s: &'a mut [f32],
        n: usize,
        scale: f32,
    },
    /// The feed-forward non-linearity on every element of `x`.
    Activation {
        x: &'a mut [f32],
        activation: Activation,
    },
}

impl pulp::WithSimd for Kernel<'_> {
    type Output = ();

    // `pulp` calls this from a function compiled with the detected target features (AVX-512,
    // AVX2 + FMA, …); everything below is `#[inline(always)]` so that it is compiled there
    // too. (A closure would not do: the compiler may decline to inline a large one, and it
    // then runs as baseline x86-64 code, with `mul_add` as a library call.)
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        match self {
            Kernel::FillRows { out, row } => fill_rows(out, row),
            Kernel::AddRows { out, row } => add_rows(out, row),
            Kernel::LayerNorm { x, norm } => layer_norm_rows(x, norm),
            Kernel::Softmax { s, n, scale } => softmax_rows(s, n, scale),
            Kernel::Activation { x, activation } => match activation {
                Activation::GeluErf => x.iter_mut().for_each(|v| *v = gelu_erf(*v)),
                Activation::GeluTanh => x.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
            },
        }
    }
}

/// Runs a kernel compiled for the best vector extension this CPU has.
fn run(kernel: Kernel) {
    pulp::Arch::new().dispatch(kernel)
}

// ---------------------------------------------------------------------------------------------
// Matrix products.

/// A read-only strided matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A writable row-major view with row stride `rs` (≥ cols, so rows never overlap).
struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
}

/// The highest index a strided view touches, plus one.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

impl<'a> MatRef<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            extent(rows, cols, rs, cs) <= data.len(),
            "matrix view out of bounds"
        );
        MatRef {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
}

impl<'a> MatMut<'a> {
    fn new(data: &'a mut [f32], rows: usize, cols: usize, rs: usize) -> Self {
        assert!(rs >= cols, "rows of a writable view must not overlap");
        assert!(
            extent(rows, cols, rs, 1) <= data.len(),
            "matrix view out of bounds"
        );
        MatMut {
            data,
            rows,
            cols,
            rs,
        }
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, single-threaded (callers
/// parallelise over blocks).
fn matmul(dst: MatMut, lhs: MatRef, rhs: MatRef, accumulate: bool) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(
        lhs.rows == m && rhs.rows == k && rhs.cols == n,
        "matmul shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in dst.data.chunks_mut(dst.rs).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the constructors checked that every element each view addresses lies inside
    // its slice, and that the destination's rows do not overlap; `dst` is borrowed mutably, so
    // it cannot alias `lhs` or `rhs`. The gemm crate reads and writes only those elements, on
    // this thread (Parallelism::None).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `out += x · dense.w` for a block of rows (`out` [rows, outputs], `x` [rows, inputs]).
fn dense_acc(out: &mut [f32], x: &[f32], dense: &Dense) {
    let rows = x.len() / dense.inputs;
    matmul(
        MatMut::new(out, rows, dense.outputs, dense.outputs),
        MatRef::new(x, rows, dense.inputs, dense.inputs, 1),
        MatRef::new(&dense.w, dense.inputs, dense.outputs, dense.outputs, 1),
        true,
    );
}

// ---------------------------------------------------------------------------------------------
// Element-wise kernels. Each is written as straight-line arithmetic over slices, with sums and
// maxima kept in LANES independent accumulators, so that the compiler can vectorise it.

const LANES: usize = 16;

/// Copies `v` into every row of `out`.
#[inline(always)]
fn fill_rows(out: &mut [f32], v: &[f32]) {
    for row in out.chunks_exact_mut(v.len()) {
        row.copy_from_slice(v);
    }
}

/// Adds `v` to every row of `out`.
#[inline(always)]
fn add_rows(out: &mut [f32], v: &[f32]) {
    for row in out.chunks_exact_mut(v.len()) {
        for (o, a) in row.iter_mut().zip(v) {
            *o += a;
        }
    }
}

#[inline(always)]
fn lane_sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a = a.max(*v);
        }
    }
    acc.iter()
        .chain(chunks.remainder())
        .fold(f32::NEG_INFINITY, |m, v| m.max(*v))
}

/// Layer norm of each row of `x` in place (two passes: mean, then variance of the deviations,
/// as PyTorch computes it).
#[inline(always)]
fn layer_norm_rows(x: &mut [f32], norm: &Norm) {
    let h = norm.gamma.len();
    let inv_h = 1.0 / h as f32;
    for row in x.chunks_exact_mut(h) {
        let mean = lane_sum(row) * inv_h;
        let mut acc = [0f32; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for (a, v) in acc.iter_mut().zip(c) {
                let dv = v - mean;
                *a += dv * dv;
            }
        }
        let tail: f32 = chunks
            .remainder()
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum();
        let var = (acc.iter().sum::<f32>() + tail) * inv_h;
        let rstd = 1.0 / (var + norm.eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
            *v = (*v - mean) * rstd * g + b;
        }
    }
}

/// softmax(scale · row) for each row of the `n`-wide matrix `s`, in place.
#[inline(always)]
fn softmax_rows(s: &mut [f32], n: usize, scale: f32) {
    for row in s.chunks_exact_mut(n) {
        let max = lane_max(row);
        for v in row.iter_mut() {
            *v = exp((*v - max) * scale);
        }
        let inv = 1.0 / lane_sum(row);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// e^x for x ≤ 0 (relative error ~1e-7), branch-free so that it vectorises: x = n·ln2 + r with
/// |r| ≤ ln2/2, e^r from Cephes' degree-6 polynomial, 2^n built in the exponent bits.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add(LOG2E, SHIFTER);
    let n = t - SHIFTER;
    let k = t.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let r = n.mul_add(-LN2_HI, x);
    let r = n.mul_add(-LN2_LO, r);
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let er = p.mul_add(r * r, r) + 1.0;
    er * f32::from_bits(((k + 127) as u32) << 23)
}

/// erf(x) as a rational function of x (Eigen's float erf): absolute error below 5e-7 (a few
/// f32 ulps of 1) over the whole line, exactly ±1 beyond ±4.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142e-10_f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_024e-6);
    p = p.mul_add(x2, -5.692_506_4e-5);
    p = p.mul_add(x2, -7.349_906_3e-4);
    p = p.mul_add(x2, -2.954_6e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5f32;
    q = q.mul_add(x2, -2.133_740_6e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329e-3);
    q = q.mul_add(x2, -1.426_474e-2);
    x * p / q
}

#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), with tanh(u) = 1 − 2/(e^{2u} + 1).
#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    // e^{2u} with 2u clamped to where exp() is accurate; tanh is ±1 to f32 precision there.
    let e = exp((2.0 * u).clamp(-30.0, 30.0));
    let tanh = 1.0 - 2.0 / (e + 1.0);
    0.5 * x * (1.0 + tanh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_where_softmax_uses_it() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 87.0 * i as f32 / 200_000.0;
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_is_accurate() {
        let mut worst = 0f64;
        for i in -100_000..=100_000 {
            let x = i as f32 * 6.0 / 100_000.0;
            let want = libm::erf(x as f64);
            worst = worst.max((erf(x) as f64 - want).abs());
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
    }

    #[test]
    fn gelu_tanh_matches_its_formula() {
        for i in -1000..=1000 {
            let x = i as f64 / 100.0;
            let want = 0.5
                * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
            assert!((gelu_tanh(x as f32) as f64 - want).abs() < 1e-6, "x = {x}");
        }
    }

    #[test]
    fn strided_matmul_matches_naive() {
        // lhs 3×4 read through a stride of 5, rhs 4×2 read transposed.
        let a: Vec<f32> = (0..15).map(|v| v as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..8).map(|v| v as f32 - 2.5).collect();
        let mut c = vec![1f32; 3 * 3];
        matmul(
            MatMut::new(&mut c, 3, 2, 3),
            MatRef::new(&a, 3, 4, 5, 1),
            MatRef::new(&b, 4, 2, 1, 4),
            true,
        );
        for i in 0..3 {
            for j in 0..2 {
                let want: f32 = 1.0 + (0..4).map(|k| a[i * 5 + k] * b[j * 4 + k]).sum::<f32>();
                assert!((c[i * 3 + j] - want).abs() < 1e-4);
            }
            assert_eq!(c[i * 3 + 2], 1.0, "the column past the view is untouched");
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn views_past_the_slice_are_refused() {
        let a = vec![0f32; 10];
        let _ = MatRef::new(&a, 3, 4, 3, 1); // exactly fits: last element is a[9]
        let _ = MatRef::new(&a, 3, 4, 4, 1);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut s: Vec<f32> = (0..3 * 37).map(|v| (v % 11) as f32 - 5.0).collect();
        run(Kernel::Softmax {
            s: &mut s,
            n: 37,
            scale: 0.3,
        });
        for row in s.chunks_exact(37) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }
}
