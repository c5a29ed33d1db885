//! Pooling token states into one sentence vector (mean, CLS or max, as the model's
//! `1_Pooling/config.json` says) and L2 normalisation.

use std::path::Path;

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How token vectors become a sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Average of the non-padding tokens (all-MiniLM-L6-v2).
    Mean,
    /// The first (`[CLS]`) token.
    Cls,
    /// Element-wise maximum over the non-padding tokens.
    Max,
}

impl Pooling {
    /// The name sentence-transformers gives it (and the library's manifest records).
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
        }
    }

    /// Reads sentence-transformers' pooling configuration.
    pub fn from_config(path: &Path, config: &serde_json::Value) -> Result<Pooling> {
        let flag = |key: &str| config.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
        let modes = [
            (flag("pooling_mode_mean_tokens"), Pooling::Mean),
            (flag("pooling_mode_cls_token"), Pooling::Cls),
            (flag("pooling_mode_max_tokens"), Pooling::Max),
        ];
        let chosen: Vec<Pooling> = modes
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, p)| *p)
            .collect();
        let unsupported = [
            "pooling_mode_mean_sqrt_len_tokens",
            "pooling_mode_weightedmean_tokens",
            "pooling_mode_lasttoken",
        ]
        .into_iter()
        .find(|k| flag(k));
        match (chosen.as_slice(), unsupported) {
            ([one], None) => Ok(*one),
            (_, Some(mode)) => Err(Error::ModelFile {
                path: path.to_path_buf(),
                reason: format!("pooling mode `{mode}` is not supported (mean, cls or max)"),
            }),
            _ => Err(Error::ModelFile {
                path: path.to_path_buf(),
                reason: "exactly one of mean, cls or max pooling must be enabled".into(),
            }),
        }
    }

    /// Pools `hidden` [batch, len, dim] under `mask` [batch, len] (1 for real tokens) into
    /// [batch, dim], in f32 whatever the model's dtype, so that half-precision sums stay exact.
    pub fn apply(self, hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let hidden = hidden.to_dtype(DType::F32)?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [b, len, 1]
        let pooled = match self {
            Pooling::Mean => {
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
                summed.broadcast_div(&counts)?
            }
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Max => {
                // Padding positions get a large negative value so they never win.
                let penalty = ((mask.ones_like()? - &mask)? * -1e9)?;
                hidden.broadcast_add(&penalty)?.max(1)?
            }
        };
        Ok(pooled)
    }
}

/// Divides each row of `x` [batch, dim] by its L2 norm (a zero row stays zero).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norms = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    Ok(x.broadcast_div(&norms)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names_the_manifest_records() {
        for p in [Pooling::Mean, Pooling::Cls, Pooling::Max] {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
    }
}
