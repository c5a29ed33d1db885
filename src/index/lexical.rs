//! The lexical index: Okapi BM25 over each paper's title and abstract, kept beside the dense
//! (embedding) index so that exact terms — a method's name, a dataset, "RTL" — find their papers
//! even where a sentence embedding blurs them.
//!
//! An own compact index rather than a search-engine crate: a library holds thousands to tens of
//! thousands of abstracts, which fit in a few MB of postings that load in milliseconds, while a
//! full engine (segments, merges, its own directory of files) would be most of papersim's
//! build and on-disk footprint for no gain at this size.
//!
//! - **Tokens**: lower case; split on every character that is not a letter or digit
//!   ("GPT-4o" → `gpt`, `4o`); tokens of one character, numbers without letters and a small
//!   English stopword list are dropped; a light plural stemmer ("LLMs" → `llm`,
//!   "strategies" → `strategy`) joins singular and plural.
//! - **Scores**: BM25 with k1 = 1.2, b = 0.75 and idf = ln(1 + (N − df + 0.5) / (df + 0.5)).
//!   A query term counts as often as it occurs in the query, so a whole paper can be the query
//!   (as in `similar`). [`LexicalIndex::similarity`] divides a paper's score by the query's score
//!   against itself (the query read as one more document), which puts scores of different
//!   queries on one scale, about [0, 1], for `--min-score`, fusion and reader profiles.
//! - **Rows** are the library's rows: [`LexicalIndex::add`] appends documents in the order the
//!   library appends papers, so an index built incrementally is identical to one built at once.
//! - **File** (`lexical.<gen>.bin`, written by the library with each generation):
//!   magic `PSLEX1\n\0`; u64 documents, terms, postings, total tokens (little-endian); each
//!   document's length (LEB128); each term in first-seen order as its UTF-8 bytes, its posting
//!   count and its postings (row delta, term frequency; LEB128); then the SHA-256 of all of the
//!   above. [`LexicalIndex::from_bytes`] checks the checksum and every count, so a truncated or
//!   damaged file is an error, never a wrong answer or a panic.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use crate::index::{Hit, TopK};

/// BM25 term-frequency saturation.
pub const K1: f32 = 1.2;
/// BM25 document-length normalisation.
pub const B: f32 = 0.75;

const MAGIC: &[u8; 8] = b"PSLEX1\n\0";

/// Words too common in English to say anything about a paper.
const STOPWORDS: &[&str] = &[
    "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are",
    "as", "at", "be", "been", "before", "being", "below", "between", "both", "but", "by", "can",
    "could", "did", "do", "does", "doing", "down", "during", "each", "either", "et", "etc", "few",
    "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him",
    "his", "how", "however", "i", "if", "in", "into", "is", "it", "its", "itself", "may", "me",
    "might", "more", "most", "must", "my", "no", "nor", "not", "of", "off", "on", "once", "only",
    "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they",
    "this", "those", "through", "thus", "to", "too", "under", "until", "up", "upon", "us", "very",
    "via", "was", "we", "were", "what", "when", "where", "whether", "which", "while", "who",
    "whom", "whose", "why", "will", "with", "within", "without", "would", "yet", "you", "your",
    "yours",
];

fn is_stopword(token: &str) -> bool {
    STOPWORDS.binary_search(&token).is_ok()
}

/// A light plural stemmer (Harman's "S" stemmer): `-ies` → `-y` (but not `-eies`, `-aies`),
/// otherwise a final `-s` is dropped (`-es` → `-e`), leaving `-ss`, `-us`, `-is` and words of
/// up to three letters alone.
fn stem(token: &mut String) {
    if token.len() <= 3 || !token.ends_with('s') {
        return;
    }
    if token.ends_with("ies") && !token.ends_with("eies") && !token.ends_with("aies") {
        token.truncate(token.len() - 3);
        token.push('y');
    } else if !(token.ends_with("ss") || token.ends_with("us") || token.ends_with("is")) {
        // Harman's `-es` → `-e` and `-s` → `` both drop the final `s` (an `-es` word never
        // ends in `ss`, `us` or `is`), so one branch serves both.
        token.pop();
    }
}

/// The index terms of `text`, in order, repeats kept.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let mut token = word.to_lowercase();
        if token.chars().nth(1).is_none()
            || token.chars().all(|c| c.is_numeric())
            || is_stopword(&token)
        {
            continue;
        }
        stem(&mut token);
        if !is_stopword(&token) {
            out.push(token);
        }
    }
    out
}

/// The text a paper is indexed by: its title and its abstract.
pub fn paper_text(title: &str, abstract_text: &str) -> String {
    format!("{title}\n{abstract_text}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Posting {
    row: u32,
    tf: u32,
}

/// A BM25 index over documents numbered 0.. in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct LexicalIndex {
    vocab: HashMap<String, u32>,
    terms: Vec<String>,
    postings: Vec<Vec<Posting>>,
    doc_len: Vec<u32>,
    total_len: u64,
    /// Per document: k1·(1 − b + b·len/avglen), refreshed after every change.
    norm: Vec<f32>,
}

/// A parsed query: its terms that the index knows, with their counts in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct LexQuery {
    terms: Vec<(u32, f32)>,
    self_score: f32,
}

impl LexQuery {
    /// Whether no term of the query occurs in the index (nothing can match).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
    /// The query's BM25 score against itself read as a document: the scale of
    /// [`LexicalIndex::similarity`].
    pub fn self_score(&self) -> f32 {
        self.self_score
    }
}

/// A document that is not in the index (a new digest's paper), ready to be scored against it.
#[derive(Debug, Clone)]
pub struct ForeignDoc {
    counts: HashMap<u32, u32>,
    len: u32,
}

impl LexicalIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of `texts`, as rows 0...
    pub fn build<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> Self {
        let mut index = Self::new();
        index.add(texts);
        index
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.doc_len.len()
    }
    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }
    /// Number of distinct terms.
    pub fn terms(&self) -> usize {
        self.terms.len()
    }

    /// Appends `texts` as rows len()...
    pub fn add<S: AsRef<str>>(&mut self, texts: impl IntoIterator<Item = S>) {
        for text in texts {
            let row = self.doc_len.len() as u32;
            let tokens = tokens(text.as_ref());
            // Term ids in first-seen order within the document, so that ids (and the file)
            // depend only on the order of the documents.
            let mut counts: Vec<(u32, u32)> = Vec::new();
            let mut slot: HashMap<u32, usize> = HashMap::new();
            for token in &tokens {
                let id = match self.vocab.get(token.as_str()) {
                    Some(&id) => id,
                    None => {
                        let id = self.terms.len() as u32;
                        self.vocab.insert(token.clone(), id);
                        self.terms.push(token.clone());
                        self.postings.push(Vec::new());
                        id
                    }
                };
                match slot.get(&id) {
                    Some(&i) => counts[i].1 += 1,
                    None => {
                        slot.insert(id, counts.len());
                        counts.push((id, 1));
                    }
                }
            }
            for (id, tf) in counts {
                self.postings[id as usize].push(Posting { row, tf });
            }
            self.doc_len.push(tokens.len() as u32);
            self.total_len += tokens.len() as u64;
        }
        self.refresh_norms();
    }

    fn refresh_norms(&mut self) {
        let avg = self.avg_len();
        self.norm = self
            .doc_len
            .iter()
            .map(|&l| K1 * (1.0 - B + B * l as f32 / avg))
            .collect();
    }

    fn avg_len(&self) -> f32 {
        if self.doc_len.is_empty() || self.total_len == 0 {
            1.0
        } else {
            self.total_len as f32 / self.doc_len.len() as f32
        }
    }

    fn idf(&self, df: usize) -> f32 {
        let n = self.len() as f32;
        let df = df as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    fn weight(tf: f32, norm: f32) -> f32 {
        tf * (K1 + 1.0) / (tf + norm)
    }

    /// Parses `text` as a query.
    pub fn query(&self, text: &str) -> LexQuery {
        let tokens = tokens(text);
        let mut terms: Vec<(u32, f32)> = Vec::new();
        let mut slot: HashMap<u32, usize> = HashMap::new();
        for t in &tokens {
            if let Some(&id) = self.vocab.get(t.as_str()) {
                match slot.get(&id) {
                    Some(&i) => terms[i].1 += 1.0,
                    None => {
                        slot.insert(id, terms.len());
                        terms.push((id, 1.0));
                    }
                }
            }
        }
        let norm = K1 * (1.0 - B + B * tokens.len() as f32 / self.avg_len());
        let self_score = terms
            .iter()
            .map(|&(id, qtf)| {
                qtf * self.idf(self.postings[id as usize].len()) * Self::weight(qtf, norm)
            })
            .sum();
        LexQuery { terms, self_score }
    }

    /// BM25 scores of every document for `query` (0 for documents sharing no term).
    pub fn scores(&self, query: &LexQuery) -> Vec<f32> {
        let mut acc = vec![0f32; self.len()];
        for &(id, qtf) in &query.terms {
            let postings = &self.postings[id as usize];
            let w = qtf * self.idf(postings.len());
            for p in postings {
                let r = p.row as usize;
                acc[r] += w * Self::weight(p.tf as f32, self.norm[r]);
            }
        }
        acc
    }

    /// Scores as similarities: BM25 divided by the query's score against itself.
    pub fn similarities(&self, query: &LexQuery) -> Vec<f32> {
        let mut s = self.scores(query);
        let scale = if query.self_score > 0.0 {
            1.0 / query.self_score
        } else {
            0.0
        };
        s.iter_mut().for_each(|x| *x *= scale);
        s
    }

    /// The k documents with the highest positive similarity, best first (ties: lower row).
    pub fn search(&self, query: &LexQuery, k: usize) -> Vec<Hit> {
        top_hits(&self.similarities(query), k)
    }

    /// Reads a document that is not in the index, for [`LexicalIndex::similarity_foreign`].
    pub fn foreign(&self, text: &str) -> ForeignDoc {
        let tokens = tokens(text);
        let mut counts = HashMap::new();
        for t in &tokens {
            if let Some(&id) = self.vocab.get(t.as_str()) {
                *counts.entry(id).or_insert(0) += 1;
            }
        }
        ForeignDoc {
            counts,
            len: tokens.len() as u32,
        }
    }

    /// The similarity of a document outside the index to `query`, with the index's statistics
    /// (as if it were one more document that changes no idf).
    pub fn similarity_foreign(&self, query: &LexQuery, doc: &ForeignDoc) -> f32 {
        if query.self_score <= 0.0 {
            return 0.0;
        }
        let norm = K1 * (1.0 - B + B * doc.len as f32 / self.avg_len());
        let score: f32 = query
            .terms
            .iter()
            .filter_map(|&(id, qtf)| {
                let tf = *doc.counts.get(&id)? as f32;
                Some(qtf * self.idf(self.postings[id as usize].len()) * Self::weight(tf, norm))
            })
            .sum();
        score / query.self_score
    }

    /// The file form (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let postings: usize = self.postings.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(64 + postings * 3 + self.terms.len() * 12);
        out.extend_from_slice(MAGIC);
        for n in [
            self.doc_len.len() as u64,
            self.terms.len() as u64,
            postings as u64,
            self.total_len,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for &l in &self.doc_len {
            put_varint(&mut out, l as u64);
        }
        for (term, list) in self.terms.iter().zip(&self.postings) {
            put_varint(&mut out, term.len() as u64);
            out.extend_from_slice(term.as_bytes());
            put_varint(&mut out, list.len() as u64);
            let mut prev = 0u32;
            for (i, p) in list.iter().enumerate() {
                put_varint(&mut out, if i == 0 { p.row } else { p.row - prev } as u64);
                put_varint(&mut out, p.tf as u64);
                prev = p.row;
            }
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// Reads the file form, checking it throughout; the error says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < MAGIC.len() + 32 + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(if bytes.starts_with(MAGIC) {
                "truncated lexical index".into()
            } else {
                "not a papersim lexical index (bad magic)".into()
            });
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err("checksum mismatch: the lexical index is truncated or damaged".into());
        }
        let mut r = Reader {
            bytes: body,
            at: MAGIC.len(),
        };
        let docs = r.u64()? as usize;
        let n_terms = r.u64()? as usize;
        let n_postings = r.u64()? as usize;
        let total_len = r.u64()?;
        // Every count is bounded by the bytes that must hold it, so a bad header cannot make
        // us allocate without limit.
        if docs > body.len() || n_terms > body.len() || n_postings > body.len() {
            return Err("header counts exceed the file size".into());
        }
        let mut doc_len = Vec::with_capacity(docs);
        for _ in 0..docs {
            doc_len.push(r.u32()?);
        }
        let mut seen = vec![0u64; docs];
        let mut vocab = HashMap::with_capacity(n_terms);
        let mut terms = Vec::with_capacity(n_terms);
        let mut postings = Vec::with_capacity(n_terms);
        let mut total_postings = 0usize;
        for t in 0..n_terms {
            let len = r.varint()? as usize;
            let term = std::str::from_utf8(r.take(len)?)
                .map_err(|_| format!("term {t} is not UTF-8"))?
                .to_string();
            if term.is_empty() || vocab.insert(term.clone(), t as u32).is_some() {
                return Err(format!("term {t} (`{term}`) is empty or repeated"));
            }
            let count = r.varint()? as usize;
            if count == 0 || count > docs {
                return Err(format!(
                    "term `{term}` has {count} postings for {docs} documents"
                ));
            }
            let mut list = Vec::with_capacity(count);
            let mut row = 0u64;
            for i in 0..count {
                let delta = r.varint()?;
                if i > 0 && delta == 0 {
                    return Err(format!("term `{term}`: rows out of order"));
                }
                row += delta;
                let tf = r.u32()?;
                if row >= docs as u64 || tf == 0 {
                    return Err(format!("term `{term}`: bad posting (row {row}, tf {tf})"));
                }
                seen[row as usize] += tf as u64;
                list.push(Posting {
                    row: row as u32,
                    tf,
                });
            }
            total_postings += count;
            terms.push(term);
            postings.push(list);
        }
        if r.at != body.len() {
            return Err(format!(
                "{} unexpected bytes after the postings",
                body.len() - r.at
            ));
        }
        if total_postings != n_postings {
            return Err(format!(
                "holds {total_postings} postings, header says {n_postings}"
            ));
        }
        if let Some(d) = (0..docs).find(|&d| seen[d] != doc_len[d] as u64) {
            return Err(format!(
                "document {d} has length {} but {} indexed tokens",
                doc_len[d], seen[d]
            ));
        }
        if doc_len.iter().map(|&l| l as u64).sum::<u64>() != total_len {
            return Err("total length disagrees with the document lengths".into());
        }
        let mut index = LexicalIndex {
            vocab,
            terms,
            postings,
            doc_len,
            total_len,
            norm: Vec::new(),
        };
        index.refresh_norms();
        Ok(index)
    }
}

/// The k best positive scores as hits, best first, ties broken by lower row.
pub fn top_hits(scores: &[f32], k: usize) -> Vec<Hit> {
    let mut top = TopK::new(k);
    for (row, &score) in scores.iter().enumerate() {
        if score > 0.0 {
            top.push(Hit { row, score });
        }
    }
    top.into_sorted()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("truncated lexical index")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.take(1)?.first().unwrap();
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("malformed number".into())
    }
    fn u32(&mut self) -> Result<u32, String> {
        u32::try_from(self.varint()?).map_err(|_| "number out of range".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS: &[&str] = &[
        "ITERTL: An Iterative Framework for Fine-tuning LLMs for RTL Code Generation\nWe fine-tune LLMs to write RTL code in Verilog.",
        "Towards Optimal Multi-draft Speculative Decoding\nSpeculative decoding speeds up LLM inference with draft models.",
        "Improved Distribution Matching Distillation\nDistillation of diffusion models into one-step generators.",
        "Multi-student Diffusion Distillation\nDistilling a diffusion model into several students.",
        "CodeRL: Mastering Code Generation\nPretrained models and deep reinforcement learning for program synthesis.",
    ];

    #[test]
    fn stopword_list_is_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tokens_lowercase_split_stem_and_drop_noise() {
        assert_eq!(
            tokens("LLMs for RTL: GPT-4o, 3 strategies and the 2024 classes of U.S. data"),
            vec!["llm", "rtl", "gpt", "4o", "strategy", "classe", "data"]
        );
        assert_eq!(
            tokens("Diffusion models' process is"),
            vec!["diffusion", "model", "process"]
        );
        assert!(tokens("a an the of 42 — .").is_empty());
    }

    #[test]
    fn a_rare_term_finds_its_document_first() {
        let index = LexicalIndex::build(DOCS);
        let hits = index.search(&index.query("RTL"), 5);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].row, 0);
        let hits = index.search(&index.query("speculative decoding"), 5);
        assert_eq!(hits[0].row, 1);
        assert!(index.search(&index.query("giraffe"), 5).is_empty());
        assert!(index.query("the of and").is_empty());
    }

    #[test]
    fn a_document_is_most_similar_to_itself_and_scores_about_one() {
        let index = LexicalIndex::build(DOCS);
        for (row, text) in DOCS.iter().enumerate() {
            let q = index.query(text);
            let s = index.similarities(&q);
            assert!((s[row] - 1.0).abs() < 1e-5, "row {row}: {}", s[row]);
            let best = top_hits(&s, 1)[0].row;
            assert_eq!(best, row);
        }
        // The distillation papers are each other's nearest neighbours.
        let hits = index.search(&index.query(DOCS[2]), 2);
        assert_eq!(hits[1].row, 3);
    }

    #[test]
    fn a_foreign_document_scores_as_if_it_were_indexed() {
        let index = LexicalIndex::build(&DOCS[..4]);
        let q = index.query(DOCS[2]);
        let foreign = index.foreign(DOCS[3]);
        let inside = index.similarities(&q)[3];
        assert!((index.similarity_foreign(&q, &foreign) - inside).abs() < 1e-6);
    }

    #[test]
    fn incremental_equals_one_go() {
        let once = LexicalIndex::build(DOCS);
        let mut inc = LexicalIndex::new();
        inc.add(&DOCS[..2]);
        inc.add(&DOCS[2..3]);
        inc.add(&DOCS[3..]);
        assert_eq!(inc.to_bytes(), once.to_bytes());
        let q = once.query("distillation code");
        assert_eq!(inc.search(&q, 5), once.search(&q, 5));
    }

    #[test]
    fn file_round_trips() {
        let index = LexicalIndex::build(DOCS);
        let bytes = index.to_bytes();
        let back = LexicalIndex::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.len(), DOCS.len());
        let q = index.query("diffusion distillation");
        assert_eq!(back.search(&q, 5), index.search(&q, 5));
        let empty = LexicalIndex::new();
        assert_eq!(
            LexicalIndex::from_bytes(&empty.to_bytes()).unwrap().len(),
            0
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        let bytes = LexicalIndex::build(DOCS).to_bytes();
        for cut in [0, 7, 8, 40, bytes.len() / 2, bytes.len() - 1] {
            let err = LexicalIndex::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                err.contains("truncated") || err.contains("magic") || err.contains("checksum"),
                "cut {cut}: {err}"
            );
        }
        for at in [3, 9, 50, bytes.len() / 2, bytes.len() - 40, bytes.len() - 3] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x5a;
            assert!(LexicalIndex::from_bytes(&bad).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn damaged_bodies_with_valid_checksums_are_caught() {
        // Re-seal a body whose counts lie, to exercise the structural checks.
        let seal = |mut body: Vec<u8>| {
            let d = Sha256::digest(&body);
            body.extend_from_slice(&d);
            body
        };
        let bytes = LexicalIndex::build(DOCS).to_bytes();
        let body = bytes[..bytes.len() - 32].to_vec();
        let mut lie = body.clone();
        lie[8] += 1; // one more document than there are
        assert!(LexicalIndex::from_bytes(&seal(lie)).is_err());
        let mut lie = body.clone();
        lie[8 + 16] += 1; // more postings than there are
        assert!(LexicalIndex::from_bytes(&seal(lie)).is_err());
        let mut huge = body;
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(LexicalIndex::from_bytes(&seal(huge)).is_err());
    }
}
