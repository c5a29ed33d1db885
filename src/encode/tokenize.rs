//! Tokenisation and batching: texts become token ids truncated to the model's
//! `max_seq_length`, sorted by length and cut into batches by count and by a padded-token
//! budget, so each batch pads only to its own longest text.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::{Error, Result};

/// One tokenised text.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A tokenizer configured as sentence-transformers runs it.
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and replaces its own truncation and padding: the file of
    /// all-MiniLM-L6-v2 truncates at 128 and pads to a fixed 128, while sentence-transformers
    /// truncates at `max_seq_length` (256) and pads per batch.
    pub fn load(path: &Path, max_len: usize) -> Result<Self> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| Error::ModelFile {
            path: path.to_path_buf(),
            reason: format!("not a valid tokenizer: {e}"),
        })?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        Ok(TextTokenizer { inner, max_len })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Tokenises texts (with `[CLS]`/`[SEP]`), in the caller's order.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Encoded>> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| Encoded {
                ids: e.get_ids().to_vec(),
                type_ids: e.get_type_ids().to_vec(),
            })
            .collect())
    }
}

/// Most texts one forward batch may hold (`--batch-size`, `bench --batch-sizes`): a batch's
/// activations are held at once (texts × tokens × hidden size, per layer), and throughput
/// stops growing long before.
pub const MAX_BATCH_TEXTS: usize = 1024;

/// Limits on one forward batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many texts per batch.
    pub max_texts: usize,
    /// At most this many padded tokens (texts × longest) per batch; bounds memory for long texts.
    pub max_tokens: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_texts: 32,
            max_tokens: 16_384,
        }
    }
}

/// Orders texts longest first and groups them into batches; returns indices into `encoded`.
/// Sorting by length means each batch pads to a length close to all of its texts.
pub fn plan_batches(encoded: &[Encoded], limits: BatchLimits) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by(|&a, &b| encoded[b].len().cmp(&encoded[a].len()).then(a.cmp(&b)));
    let max_texts = limits.max_texts.max(1);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0;
    for i in order {
        let len = encoded[i].len().max(1);
        let new_longest = longest.max(len);
        let would_pad = new_longest * (current.len() + 1);
        if !current.is_empty() && (current.len() >= max_texts || would_pad > limits.max_tokens) {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// A batch padded to its longest text: ids, type ids and attention mask, row-major.
#[derive(Debug, Clone)]
pub struct PaddedBatch {
    pub rows: usize,
    pub len: usize,
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub mask: Vec<u32>,
    /// Number of real (non-padding) tokens.
    pub real_tokens: usize,
}

/// Pads the texts `indices` of `encoded` to the longest of them.
pub fn pad_batch(encoded: &[Encoded], indices: &[usize], pad_id: u32) -> PaddedBatch {
    let len = indices
        .iter()
        .map(|&i| encoded[i].len())
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = indices.len();
    let mut ids = vec![pad_id; rows * len];
    let mut type_ids = vec![0u32; rows * len];
    let mut mask = vec![0u32; rows * len];
    let mut real_tokens = 0;
    for (r, &i) in indices.iter().enumerate() {
        let e = &encoded[i];
        let base = r * len;
        ids[base..base + e.len()].copy_from_slice(&e.ids);
        type_ids[base..base + e.len()].copy_from_slice(&e.type_ids);
        mask[base..base + e.len()].fill(1);
        real_tokens += e.len();
    }
    PaddedBatch {
        rows,
        len,
        ids,
        type_ids,
        mask,
        real_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(n: usize) -> Encoded {
        Encoded {
            ids: vec![1; n],
            type_ids: vec![0; n],
        }
    }

    #[test]
    fn batches_sort_by_length_and_respect_limits() {
        let encoded: Vec<Encoded> = [5, 100, 7, 100, 3, 50].iter().map(|&n| enc(n)).collect();
        let limits = BatchLimits {
            max_texts: 2,
            max_tokens: 10_000,
        };
        let batches = plan_batches(&encoded, limits);
        assert_eq!(batches, vec![vec![1, 3], vec![5, 2], vec![0, 4]]);
        let tight = BatchLimits {
            max_texts: 10,
            max_tokens: 150,
        };
        for b in plan_batches(&encoded, tight) {
            let longest = b.iter().map(|&i| encoded[i].len()).max().unwrap();
            assert!(longest * b.len() <= 150 || b.len() == 1);
        }
        let all: usize = plan_batches(&encoded, tight).iter().map(Vec::len).sum();
        assert_eq!(all, encoded.len());
    }

    #[test]
    fn padding_masks_only_real_tokens() {
        let encoded = vec![enc(3), enc(1)];
        let b = pad_batch(&encoded, &[0, 1], 0);
        assert_eq!((b.rows, b.len, b.real_tokens), (2, 3, 4));
        assert_eq!(b.mask, vec![1, 1, 1, 1, 0, 0]);
        assert_eq!(b.ids, vec![1, 1, 1, 1, 0, 0]);
    }
}
