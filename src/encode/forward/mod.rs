//! The BERT and MPNet forward pass: token ids in, contextual token states out, behind one small
//! interface ([`Forward`]) with one file per implementation:
//!
//! - [`candle`]: papersim's own forward over candle tensors (fused Q/K/V, a mask that is safe
//!   in f16/bf16); serves CUDA and half precision ([`Backend::Papersim`]).
//! - [`cpu`]: a CPU forward on plain f32 buffers, several times faster there; the default on
//!   the CPU in f32 ([`Backend::CpuFast`]).
//! - [`upstream`]: candle-transformers' `BertModel`, kept so tests can check the others agree
//!   with it ([`Backend::Upstream`]).
//!
//! MPNet's relative position buckets ([`relative_bucket`]), which both of papersim's forwards
//! use, live here. Each implementation's file implements [`Forward`] for it; [`load`] picks the implementation
//! for a [`Backend`], device and precision. The stage timer the implementations share lives in
//! the leaf [`stages`]. The implementation files use this module's trait and `Backend` (a
//! child using its parent); they never import each other.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::encode::config::Architecture;
use crate::encode::model::ModelFiles;
use crate::{Error, Result};

pub mod candle;
pub mod cpu;
pub mod stages;
pub mod upstream;

use self::candle::CandleBert;
use cpu::CpuBert;
pub use stages::StageTimes;
use upstream::UpstreamBert;

/// A loaded forward pass.
pub trait Forward: Send + Sync {
    /// The implementation this is ([`Backend::Auto`] never).
    fn backend(&self) -> Backend;

    /// Token states `[batch, len, hidden]` for ids, type ids and mask, each `[batch, len]` u32.
    /// Only real (mask 1) positions are meaningful; padded ones may differ between backends.
    /// `stages`, when given, receives the time of each stage (the upstream model is timed as
    /// one stage).
    fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        stages: Option<&mut StageTimes>,
    ) -> Result<Tensor>;
}

/// Which implementation of the forward pass to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// [`Backend::CpuFast`] on the CPU in f32, [`Backend::Papersim`] everywhere else.
    #[default]
    Auto,
    /// papersim's forward over candle tensors ([`candle`]: fused QKV, half-precision-safe
    /// mask); serves CUDA and half precision.
    Papersim,
    /// papersim's CPU forward on plain f32 buffers ([`cpu`]); CPU and f32 only.
    CpuFast,
    /// candle-transformers' `BertModel` ([`upstream`]), kept for checking (f32 only).
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

/// Loads the model in `files` with the implementation `backend` resolves to on `device` in
/// `dtype`.
pub fn load(
    files: &ModelFiles,
    backend: Backend,
    device: &Device,
    dtype: DType,
) -> Result<Box<dyn Forward>> {
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
    Ok(match backend.resolve(device, dtype) {
        Backend::Papersim | Backend::Auto => {
            Box::new(CandleBert::load(vb, &files.config).map_err(wrap)?)
        }
        Backend::CpuFast => {
            if !device.is_cpu() || dtype != DType::F32 {
                return Err(Error::InvalidInput(
                    "the cpu-fast BERT backend runs on the CPU in f32 only".into(),
                ));
            }
            // SAFETY: as for the VarBuilder above (a second read-only mapping, kept for the
            // word-embedding table, which is read where it lies).
            let file = unsafe { candle_core::safetensors::MmapedSafetensors::new(&files.weights) }
                .ok()
                .map(std::sync::Arc::new);
            let weights = cpu::Weights::new(vb, file.as_deref());
            Box::new(CpuBert::load(weights, file.clone(), &files.config).map_err(wrap)?)
        }
        Backend::Upstream if files.config.architecture == Architecture::Mpnet => {
            return Err(Error::InvalidInput(
                "the upstream backend (candle-transformers' BertModel) runs BERT models only; \
                 MPNet runs on the papersim and cpu-fast backends"
                    .into(),
            ))
        }
        Backend::Upstream => {
            let config = upstream::read_config(&files.dir.join("config.json"))?;
            Box::new(UpstreamBert::load(vb, &config).map_err(wrap)?)
        }
    })
}

/// MPNet's bucket (of `buckets`, T5's scheme with a maximum distance of 128) for a key at
/// `relative` = key position − query position: half the buckets for keys before the query,
/// half for keys after; within each half, exact distances up to a quarter of the buckets,
/// then logarithmically wider buckets up to 128 and one last bucket beyond.
pub fn relative_bucket(relative: i64, buckets: usize) -> u32 {
    const MAX_DISTANCE: f64 = 128.0;
    let half = (buckets / 2) as i64;
    let mut bucket = if relative > 0 { half } else { 0 };
    let n = relative.abs();
    let max_exact = half / 2;
    bucket += if n < max_exact {
        n
    } else {
        // transformers computes this in f32 and truncates; where the exact value is an integer
        // (n = 16, 32, 64 for 32 buckets) rounding could land just below it, so a margin far
        // smaller than the gap to any other n's value keeps the exact result.
        let exact = (n as f64 / max_exact as f64).ln() / (MAX_DISTANCE / max_exact as f64).ln()
            * (half - max_exact) as f64;
        (max_exact + (exact + 1e-6) as i64).min(half - 1)
    };
    bucket as u32
}

#[cfg(test)]
mod tests {
    use super::relative_bucket;

    #[test]
    fn relative_buckets_match_transformers() {
        // The first distance of each logarithmic bucket, from transformers'
        // MPNetEncoder.relative_position_bucket (32 buckets, max distance 128).
        let starts = [
            (8, 8),
            (9, 12),
            (10, 16),
            (11, 23),
            (12, 32),
            (13, 46),
            (14, 64),
            (15, 91),
        ];
        for n in 0..600i64 {
            let want = if n < 8 {
                n as u32
            } else {
                starts.iter().rev().find(|(_, s)| n >= *s).unwrap().0
            };
            assert_eq!(relative_bucket(-n, 32), want, "key {n} before the query");
            if n > 0 {
                assert_eq!(relative_bucket(n, 32), want + 16, "key {n} after the query");
            }
        }
    }
}
