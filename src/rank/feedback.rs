//! Pseudo-relevance feedback (Rocchio): a query vector moved towards the mean of its nearest
//! library papers, on the assumption that the top few results are relevant. Used by `query`
//! and `similar` when asked (`--prf K`), and measured in `examples/eval_models.rs`.

use super::{query, Feedback, RankOptions, Retrieval};
use crate::library::Library;
use crate::{Error, Result};

/// Most neighbours feedback may average: past a few dozen the mean drifts to the library's
/// centre and the expanded query stops being about anything.
pub const MAX_FEEDBACK_PAPERS: usize = 50;
/// The weight `--prf` uses when none is given (the CLI's and the HTTP API's default).
pub const DEFAULT_FEEDBACK_WEIGHT: f32 = 0.5;

/// Bounds of the feedback weight: 0 leaves the query as it is; beyond 4 the neighbours'
/// mean outweighs the query several times over.
pub const FEEDBACK_WEIGHT_RANGE: std::ops::RangeInclusive<f32> = 0.0..=4.0;

/// Checks `feedback` against [`MAX_FEEDBACK_PAPERS`] and [`FEEDBACK_WEIGHT_RANGE`], saying why.
pub fn validate(feedback: &Feedback) -> Result<()> {
    let Feedback { papers: k, weight } = *feedback;
    if !(1..=MAX_FEEDBACK_PAPERS).contains(&k) {
        return Err(Error::InvalidInput(format!(
            "--prf {k}: the number of feedback papers must be 1 to {MAX_FEEDBACK_PAPERS} (more \
             drifts the query towards the whole library)"
        )));
    }
    if !FEEDBACK_WEIGHT_RANGE.contains(&weight) {
        return Err(Error::InvalidInput(format!(
            "--prf-weight {weight}: must be within {} to {} (0 keeps the query, more than {} \
             lets the neighbours outweigh it)",
            FEEDBACK_WEIGHT_RANGE.start(),
            FEEDBACK_WEIGHT_RANGE.end(),
            FEEDBACK_WEIGHT_RANGE.end()
        )));
    }
    Ok(())
}

/// `normalize(vector + weight · mean(v_1..v_k))` over the `k` papers nearest to `vector` by
/// cosine, skipping the rows in `skip` (the query paper itself, for `similar`).
pub fn expand(
    lib: &Library,
    vector: &[f32],
    k: usize,
    weight: f32,
    skip: &[usize],
) -> Result<Vec<f32>> {
    validate(&Feedback { papers: k, weight })?;
    let opts = RankOptions {
        k: k + skip.len(),
        ..RankOptions::default()
    };
    let neighbours: Vec<usize> = query(lib, "", Some(vector), &opts, Retrieval::Dense)?
        .into_iter()
        .map(|r| r.row)
        .filter(|r| !skip.contains(r))
        .take(k)
        .collect();
    let mut out = vector.to_vec();
    if neighbours.is_empty() {
        return Ok(out);
    }
    let share = weight / neighbours.len() as f32;
    for &row in &neighbours {
        for (o, v) in out.iter_mut().zip(lib.vector(row).iter()) {
            *o += share * v;
        }
    }
    let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        out.iter_mut().for_each(|x| *x /= norm);
    }
    Ok(out)
}
