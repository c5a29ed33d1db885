//! `--explain`: the sentence of an abstract that best matches what it was ranked for.

use super::argmax;
use crate::encode::Embedder;
use crate::index::dot;
use crate::Result;

/// Splits an abstract into sentences.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '?' | '!') {
            let next = bytes.get(i + 1).copied();
            let after = bytes.get(i + 2).copied();
            // A sentence ends at punctuation followed by a space and a capital letter or digit,
            // which skips "e.g. the" and "3.5 points".
            if next == Some(b' ')
                && after.is_some_and(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                let s = text[start..=i].trim();
                if !s.is_empty() {
                    out.push(s);
                }
                start = i + 1;
            }
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The sentence of `text` whose embedding is closest to `target` (a unit vector of the same
/// model); empty when the text has none.
pub fn best_sentence(embedder: &Embedder, text: &str, target: &[f32]) -> Result<String> {
    let sentences = sentences(text);
    if sentences.is_empty() {
        return Ok(String::new());
    }
    let vectors = embedder.embed(&sentences)?;
    let (best, _) = argmax((0..sentences.len()).map(|i| dot(vectors.row(i), target)));
    Ok(sentences[best].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_real_boundaries() {
        let s = sentences("We propose X, e.g. a model. It improves 3.5 points! Does it? Yes.");
        assert_eq!(
            s,
            vec![
                "We propose X, e.g. a model.",
                "It improves 3.5 points!",
                "Does it?",
                "Yes."
            ]
        );
    }
}
