//! candle-transformers' `BertModel`, kept as the reference the other forwards are checked
//! against (f32 only: its additive mask is built from `f32::MIN`). It reads `config.json`
//! itself, with candle-transformers' own `Config`, and is timed as one stage.

use std::path::Path;
use std::time::Instant;

use candle_core::Tensor;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use super::stages::StageTimes;
use super::{Backend, Forward};
use crate::encode::config::read_json;
use crate::Result;

/// candle-transformers' reading of the `config.json` at `path`.
pub fn read_config(path: &Path) -> Result<Config> {
    read_json(path)
}

/// The upstream model.
pub struct UpstreamBert {
    model: BertModel,
}

impl UpstreamBert {
    /// Loads the weights under `vb` (already pointed at the BERT root) as `config` describes
    /// them.
    pub fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        Ok(UpstreamBert {
            model: BertModel::load(vb, config)?,
        })
    }
}

impl Forward for UpstreamBert {
    fn backend(&self) -> Backend {
        Backend::Upstream
    }

    /// Token states `[batch, len, hidden]`; `stages`, when given, receives the time of the
    /// whole model as one stage.
    fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
        stages: Option<&mut StageTimes>,
    ) -> Result<Tensor> {
        let start = Instant::now();
        let out = self.model.forward(ids, type_ids, Some(mask))?;
        if let Some(s) = stages {
            s.add("upstream BertModel", start.elapsed());
        }
        Ok(out)
    }
}
