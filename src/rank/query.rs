//! `query`: papers matching free text.

use super::candidates::{count, gather};
use super::feedback::expand;
use super::finish::finish;
use super::{RankOptions, Ranked, Retrieval};
use crate::library::Library;
use crate::{Error, Result};

/// Papers matching free text: by its (unit-norm) vector, its words, or both. `vector` may be
/// `None` in lexical mode.
pub fn query(
    lib: &Library,
    text: &str,
    vector: Option<&[f32]>,
    opts: &RankOptions,
    retrieval: Retrieval,
) -> Result<Vec<Ranked>> {
    opts.validate()?;
    if retrieval == Retrieval::Lexical && lib.lexical()?.query(text).is_empty() {
        return Err(Error::InvalidInput(format!(
            "no word of `{text}` occurs in the library's papers (common words and single letters are not indexed)"
        )));
    }
    let expanded = match (opts.feedback, vector) {
        (Some(f), Some(v)) if retrieval.uses_dense() => {
            Some(expand(lib, v, f.papers, f.weight, &[])?)
        }
        _ => None,
    };
    let vector = expanded.as_deref().or(vector);
    // Free text keeps every term: a few words, or a pasted abstract that the reader chose.
    let c = gather(
        lib,
        text,
        vector,
        opts,
        retrieval,
        count(lib, opts, 0),
        usize::MAX,
    )?;
    let ranked = c.fused(retrieval, true);
    finish(lib, ranked, opts)
}
