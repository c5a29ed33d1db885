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
//!   (as in `similar`); [`LexicalIndex::query_top_terms`] keeps only its terms of the highest
//!   count × idf, as Lucene's MoreLikeThis does. [`LexicalIndex::similarity`] divides a paper's score by the query's score
//!   against itself (the query read as one more document), which puts scores of different
//!   queries on one scale, about [0, 1], for `--min-score`, fusion and reader profiles.
//! - **Rows** are the library's rows: [`LexicalIndex::add`] appends documents in the order the
//!   library appends papers, so an index built incrementally is identical to one built at once.
//! - **File** (`lexical.<gen>.bin`, written by the library with each generation), made to be
//!   used where it lies ([`LexicalIndex::open`]), so that a query at a million papers reads
//!   the postings of its own terms, not the whole index: magic `PSLEX2\n\0`; u64 documents,
//!   terms, term bytes, postings bytes, total tokens (little-endian); each document's length
//!   (u32); a table of 24-byte entries, one per term in byte order (where its bytes end, where
//!   its postings start, its posting count: u64 each), searched by bisection; the terms'
//!   bytes; the postings (row delta, term frequency; LEB128); the CRC-32 of all of the above.
//!   Opening checks the header, the table and the lengths; a term's postings are checked as a
//!   query reads them, so a damaged file is an error, never a wrong answer or a panic.
//!   Libraries written before (format version 2) hold `PSLEX1` files (terms in first-seen
//!   order, SHA-256 sealed), read whole into memory until their next full commit.
//! - Rows added after a file's (a library's segments) are indexed in memory beside it: the
//!   statistics (document frequencies, average length) span both, so scores are those of one
//!   index built at once.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sha2::{Digest as _, Sha256};

use crate::index::{Hit, TopK};
use crate::{Error, Result};

/// BM25 term-frequency saturation.
pub const K1: f32 = 1.2;
/// BM25 document-length normalisation.
pub const B: f32 = 0.75;

const MAGIC: &[u8; 8] = b"PSLEX1\n\0";
/// The current file form: terms sorted, postings found by a table, used where it lies.
const MAGIC2: &[u8; 8] = b"PSLEX2\n\0";
/// Magic and five counts.
const HEADER2: usize = 48;

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

/// A BM25 index over documents numbered 0.. in the order they were added: a [`Frozen`] file
/// used where it lies (a library's base generation; rows 0..) and, after it, the rows added in
/// memory.
#[derive(Debug, Clone, Default)]
pub struct LexicalIndex {
    frozen: Option<Arc<Frozen>>,
    /// The in-memory part: its terms, and their postings (global row numbers, after the
    /// frozen rows).
    vocab: HashMap<String, u32>,
    terms: Vec<String>,
    postings: Vec<Vec<Posting>>,
    /// Token counts of the in-memory rows.
    doc_len: Vec<u32>,
    /// Token count of every row, frozen ones included.
    total_len: u64,
    /// Every row's BM25 length norm ([`LexicalIndex::norm`]), made on the first query after
    /// a change: a query reads one per posting, and working it out there from the row's
    /// length was a fifth of the scoring.
    norms: OnceLock<Vec<f32>>,
}

/// A term as the index knows it: its place in the frozen file and in memory (either may be
/// missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TermRef {
    frozen: Option<u32>,
    mem: Option<u32>,
}

/// A parsed query: its terms that the index knows, with their counts in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct LexQuery {
    terms: Vec<(TermRef, f32)>,
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
    counts: HashMap<TermRef, u32>,
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
        self.frozen_rows() + self.doc_len.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct terms.
    pub fn terms(&self) -> usize {
        let frozen = self.frozen.as_ref();
        frozen.map_or(0, |f| f.terms)
            + self
                .terms
                .iter()
                .filter(|t| frozen.and_then(|f| f.find(t.as_bytes())).is_none())
                .count()
    }

    fn frozen_rows(&self) -> usize {
        self.frozen.as_ref().map_or(0, |f| f.docs)
    }

    /// Token count of row `row`.
    fn doc_len(&self, row: usize) -> u32 {
        match &self.frozen {
            Some(f) if row < f.docs => f.doc_len(row),
            _ => self.doc_len[row - self.frozen_rows()],
        }
    }

    /// The index's reference to `token`, if it knows it.
    fn lookup(&self, token: &str) -> Option<TermRef> {
        let r = TermRef {
            frozen: self.frozen.as_ref().and_then(|f| f.find(token.as_bytes())),
            mem: self.vocab.get(token).copied(),
        };
        (r.frozen.is_some() || r.mem.is_some()).then_some(r)
    }

    /// Documents holding the term.
    fn df(&self, t: TermRef) -> usize {
        t.frozen.map_or(0, |i| {
            self.frozen
                .as_ref()
                .filter(|f| (i as usize) < f.terms)
                .map_or(0, |f| f.count(i as usize))
        }) + t
            .mem
            .map_or(0, |i| self.postings.get(i as usize).map_or(0, Vec::len))
    }

    /// Calls `f(row, tf)` for each posting of `t`, in row order.
    fn for_each_posting(&self, t: TermRef, mut f: impl FnMut(usize, u32)) -> Result<()> {
        if let (Some(i), Some(frozen)) = (t.frozen, &self.frozen) {
            if (i as usize) < frozen.terms {
                frozen.postings(i as usize, &mut f)?;
            }
        }
        // A query holds the term numbers of the index that parsed it; another index's yield
        // nothing here rather than a panic.
        if let Some(list) = t.mem.and_then(|i| self.postings.get(i as usize)) {
            for p in list {
                f(p.row as usize, p.tf);
            }
        }
        Ok(())
    }

    fn norm(&self, len: u32) -> f32 {
        K1 * (1.0 - B + B * len as f32 / self.avg_len())
    }

    /// Appends `texts` as rows len()...
    pub fn add<S: AsRef<str>>(&mut self, texts: impl IntoIterator<Item = S>) {
        // New rows, and a new average length.
        self.norms = OnceLock::new();
        for text in texts {
            let row = self.len() as u32;
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
    }

    fn avg_len(&self) -> f32 {
        if self.is_empty() || self.total_len == 0 {
            1.0
        } else {
            self.total_len as f32 / self.len() as f32
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
        self.query_top_terms(text, usize::MAX)
    }

    /// Parses `text` as a query of at most `max_terms` distinct terms: those of the highest
    /// count × idf (ties: the term met first). The words every abstract uses carry little
    /// idf but the longest postings, so a whole paper queried by its most telling terms costs
    /// a fraction of its full query.
    pub fn query_top_terms(&self, text: &str, max_terms: usize) -> LexQuery {
        let tokens = tokens(text);
        let mut terms: Vec<(TermRef, f32)> = Vec::new();
        let mut slot: HashMap<TermRef, usize> = HashMap::new();
        for t in &tokens {
            if let Some(r) = self.lookup(t) {
                match slot.get(&r) {
                    Some(&i) => terms[i].1 += 1.0,
                    None => {
                        slot.insert(r, terms.len());
                        terms.push((r, 1.0));
                    }
                }
            }
        }
        if terms.len() > max_terms {
            let weight = |&(r, qtf): &(TermRef, f32)| qtf * self.idf(self.df(r));
            // A stable sort: among equal weights the term met first stays.
            terms.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
            terms.truncate(max_terms);
        }
        let norm = self.norm(tokens.len() as u32);
        let self_score = terms
            .iter()
            .map(|&(r, qtf)| qtf * self.idf(self.df(r)) * Self::weight(qtf, norm))
            .sum();
        LexQuery { terms, self_score }
    }

    /// BM25 scores of every document for `query` (0 for documents sharing no term). Fails
    /// only on a damaged frozen file (its postings are checked as they are read).
    pub fn scores(&self, query: &LexQuery) -> Result<Vec<f32>> {
        let mut acc = vec![0f32; self.len()];
        let norms = self.norms();
        for &(r, qtf) in &query.terms {
            let w = qtf * self.idf(self.df(r));
            self.for_each_posting(r, |row, tf| {
                acc[row] += w * Self::weight(tf as f32, norms[row]);
            })?;
        }
        Ok(acc)
    }

    /// [`LexicalIndex::norm`] of every row.
    fn norms(&self) -> &[f32] {
        self.norms.get_or_init(|| {
            (0..self.len())
                .map(|row| self.norm(self.doc_len(row)))
                .collect()
        })
    }

    /// Scores as similarities: BM25 divided by the query's score against itself.
    pub fn similarities(&self, query: &LexQuery) -> Result<Vec<f32>> {
        let mut s = self.scores(query)?;
        let scale = if query.self_score > 0.0 {
            1.0 / query.self_score
        } else {
            0.0
        };
        s.iter_mut().for_each(|x| *x *= scale);
        Ok(s)
    }

    /// The k documents with the highest positive similarity, best first (ties: lower row).
    pub fn search(&self, query: &LexQuery, k: usize) -> Result<Vec<Hit>> {
        Ok(top_hits(&self.similarities(query)?, k))
    }

    /// Reads a document that is not in the index, for [`LexicalIndex::similarity_foreign`].
    pub fn foreign(&self, text: &str) -> ForeignDoc {
        let tokens = tokens(text);
        let mut counts = HashMap::new();
        for t in &tokens {
            if let Some(r) = self.lookup(t) {
                *counts.entry(r).or_insert(0) += 1;
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
        let norm = self.norm(doc.len);
        let score: f32 = query
            .terms
            .iter()
            .filter_map(|&(r, qtf)| {
                let tf = *doc.counts.get(&r)? as f32;
                Some(qtf * self.idf(self.df(r)) * Self::weight(tf, norm))
            })
            .sum();
        score / query.self_score
    }

    /// The file form (see the module documentation): terms in byte order, each with its
    /// postings, so that [`LexicalIndex::open`] can use it where it lies.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // Every term of both parts, in byte order, with where each part holds it.
        let mut all: std::collections::BTreeMap<&[u8], TermRef> = Default::default();
        if let Some(f) = &self.frozen {
            for i in 0..f.terms {
                all.entry(f.term(i))
                    .or_insert(TermRef {
                        frozen: None,
                        mem: None,
                    })
                    .frozen = Some(i as u32);
            }
        }
        for (i, term) in self.terms.iter().enumerate() {
            all.entry(term.as_bytes())
                .or_insert(TermRef {
                    frozen: None,
                    mem: None,
                })
                .mem = Some(i as u32);
        }
        let docs = self.len();
        let mut table = Vec::with_capacity(all.len() * 24);
        let mut strings = Vec::new();
        let mut postings = Vec::new();
        for (term, r) in &all {
            let start = postings.len() as u64;
            let mut count = 0u64;
            let mut prev = None;
            self.for_each_posting(*r, |row, tf| {
                let delta = match prev {
                    None => row,
                    Some(p) => row - p,
                };
                put_varint(&mut postings, delta as u64);
                put_varint(&mut postings, tf as u64);
                prev = Some(row);
                count += 1;
            })?;
            strings.extend_from_slice(term);
            for n in [strings.len() as u64, start, count] {
                table.extend_from_slice(&n.to_le_bytes());
            }
        }
        let mut out = Vec::with_capacity(
            HEADER2 + 4 * docs + table.len() + strings.len() + postings.len() + 4,
        );
        out.extend_from_slice(MAGIC2);
        for n in [
            docs as u64,
            all.len() as u64,
            strings.len() as u64,
            postings.len() as u64,
            self.total_len,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for row in 0..docs {
            out.extend_from_slice(&self.doc_len(row).to_le_bytes());
        }
        out.extend_from_slice(&table);
        out.extend_from_slice(&strings);
        out.extend_from_slice(&postings);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Uses a file of the current form (`PSLEX2`) where it lies: the header, the term table
    /// and the document lengths are checked now (in time linear in terms and documents, not
    /// in postings), each term's postings when a query reads them; with `verify`, the whole
    /// file's CRC-32 too. `path` names the file in errors.
    pub fn open(
        path: &Path,
        bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
        verify: bool,
    ) -> std::result::Result<Self, String> {
        if !(*bytes).as_ref().starts_with(MAGIC2) {
            return Self::from_v1((*bytes).as_ref());
        }
        let frozen = Frozen::open(path, bytes, verify)?;
        Ok(LexicalIndex {
            total_len: frozen.total_len,
            frozen: Some(Arc::new(frozen)),
            ..Self::default()
        })
    }

    /// Reads a file of either form, checking it whole; the error says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        Self::open(Path::new("lexical index"), Box::new(bytes.to_vec()), true)
    }

    /// Reads the first file form (`PSLEX1`: terms in first-seen order, SHA-256 sealed),
    /// which libraries of format version 2 hold, checking it throughout.
    fn from_v1(bytes: &[u8]) -> std::result::Result<Self, String> {
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
        Ok(LexicalIndex {
            frozen: None,
            vocab,
            terms,
            postings,
            doc_len,
            total_len,
            norms: OnceLock::new(),
        })
    }
}

/// The k best positive scores as hits, best first, ties broken by lower row.
pub fn top_hits(scores: &[f32], k: usize) -> Vec<Hit> {
    // Scores are read in blocks, and a block whose best is no better than what a hit must beat
    // is passed over whole: its maximum is a vector instruction or two, where offering each
    // score cost a branch (a third of a server's BM25 time at 100,000 papers). Rows come in
    // order, so a later row that only ties the floor would lose the tie: passing over it is
    // exact.
    const BLOCK: usize = 16;
    let mut top = TopK::new(k);
    let mut floor = 0.0f32;
    for (b, block) in scores.chunks(BLOCK).enumerate() {
        let best = block
            .iter()
            .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
        if best <= floor {
            continue;
        }
        for (i, &score) in block.iter().enumerate() {
            if score > floor {
                top.push(Hit {
                    row: b * BLOCK + i,
                    score,
                });
            }
        }
        floor = top.floor().map_or(0.0, |f| f.max(0.0));
    }
    top.into_sorted()
}

/// A `PSLEX2` file used where it lies (see [`LexicalIndex::open`]).
struct Frozen {
    path: PathBuf,
    bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
    docs: usize,
    terms: usize,
    total_len: u64,
    table_at: usize,
    strings_at: usize,
    postings_at: usize,
    postings_len: usize,
}

impl std::fmt::Debug for Frozen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frozen")
            .field("path", &self.path)
            .field("docs", &self.docs)
            .field("terms", &self.terms)
            .finish()
    }
}

impl Frozen {
    fn open(
        path: &Path,
        bytes: Box<dyn AsRef<[u8]> + Send + Sync>,
        verify: bool,
    ) -> std::result::Result<Frozen, String> {
        let b = (*bytes).as_ref();
        if b.len() < HEADER2 + 4 {
            return Err("truncated lexical index".into());
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if verify && crc32fast::hash(body).to_le_bytes() != crc {
            return Err("checksum mismatch: the lexical index is truncated or damaged".into());
        }
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let (docs, terms, strings, postings, total_len) =
            (word(8), word(16), word(24), word(32), word(40));
        let expected = HEADER2 as u128
            + 4 * docs as u128
            + 24 * terms as u128
            + strings as u128
            + postings as u128
            + 4;
        if expected != b.len() as u128 {
            return Err(format!(
                "truncated or damaged lexical index: its header describes {expected} bytes, the file has {}",
                b.len()
            ));
        }
        let (docs, terms) = (docs as usize, terms as usize);
        let table_at = HEADER2 + 4 * docs;
        let strings_at = table_at + 24 * terms;
        let postings_at = strings_at + strings as usize;
        let frozen = Frozen {
            path: path.to_path_buf(),
            docs,
            terms,
            total_len,
            table_at,
            strings_at,
            postings_at,
            postings_len: postings as usize,
            bytes,
        };
        frozen.check(strings as usize)?;
        Ok(frozen)
    }

    /// The checks that make every later read stay inside the file: lengths add up, the
    /// term table's offsets grow, terms are in strictly increasing byte order (so that a
    /// binary search finds them), and counts fit the documents.
    fn check(&self, strings: usize) -> std::result::Result<(), String> {
        let sum: u64 = (0..self.docs).map(|r| u64::from(self.doc_len(r))).sum();
        if sum != self.total_len {
            return Err("total length disagrees with the document lengths".into());
        }
        let (mut string_end, mut postings_start) = (0u64, 0u64);
        let mut previous: Option<&[u8]> = None;
        for i in 0..self.terms {
            let (end, start, count) = self.entry(i);
            if end <= string_end || end > strings as u64 {
                return Err(format!("term {i}: bad term bytes"));
            }
            if (i == 0 && start != 0) || (i > 0 && start <= postings_start) {
                return Err(format!("term {i}: postings out of order"));
            }
            if start >= self.postings_len as u64 || count == 0 || count > self.docs as u64 {
                return Err(format!(
                    "term {i}: {count} postings at byte {start} for {} documents",
                    self.docs
                ));
            }
            let term = self.term(i);
            if previous.is_some_and(|p| p >= term) {
                return Err(format!("term {i}: terms out of order"));
            }
            previous = Some(term);
            string_end = end;
            postings_start = start;
        }
        if string_end != strings as u64 {
            return Err("term bytes left over".into());
        }
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    fn word(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes()[at..at + 8].try_into().expect("8 bytes"))
    }

    fn doc_len(&self, row: usize) -> u32 {
        let at = HEADER2 + 4 * row;
        u32::from_le_bytes(self.bytes()[at..at + 4].try_into().expect("4 bytes"))
    }

    /// Term `i`'s table entry: where its bytes end, where its postings start, its count.
    fn entry(&self, i: usize) -> (u64, u64, u64) {
        let at = self.table_at + 24 * i;
        (self.word(at), self.word(at + 8), self.word(at + 16))
    }

    fn term(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.entry(i - 1).0 } as usize;
        let end = self.entry(i).0 as usize;
        &self.bytes()[self.strings_at + start..self.strings_at + end]
    }

    fn count(&self, i: usize) -> usize {
        self.entry(i).2 as usize
    }

    fn find(&self, term: &[u8]) -> Option<u32> {
        let (mut lo, mut hi) = (0, self.terms);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.term(mid).cmp(term) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    /// Decodes term `i`'s postings, checking them, and calls `f(row, tf)` for each.
    fn postings(&self, i: usize, f: &mut impl FnMut(usize, u32)) -> Result<()> {
        let (_, start, count) = self.entry(i);
        let end = if i + 1 < self.terms {
            self.entry(i + 1).1
        } else {
            self.postings_len as u64
        };
        let bad = |reason: String| Error::Index {
            path: self.path.clone(),
            reason: format!(
                "term `{}`: {reason}; run `papersim index rebuild` to rebuild it",
                String::from_utf8_lossy(self.term(i))
            ),
        };
        let mut r = Reader {
            bytes: &self.bytes()
                [self.postings_at + start as usize..self.postings_at + end as usize],
            at: 0,
        };
        let mut row = 0u64;
        for n in 0..count {
            let delta = r.varint().map_err(bad)?;
            if n > 0 && delta == 0 {
                return Err(bad("rows out of order".into()));
            }
            row += delta;
            let tf = r.u32().map_err(bad)?;
            if row >= self.docs as u64 || tf == 0 {
                return Err(bad(format!("bad posting (row {row}, tf {tf})")));
            }
            f(row as usize, tf);
        }
        if r.at != r.bytes.len() {
            return Err(bad("postings left over".into()));
        }
        Ok(())
    }
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
        // Postings are read a number at a time, millions per query at a million papers; most
        // numbers (row gaps, term counts) fit one byte.
        if let Some(&b) = self.bytes.get(self.at) {
            if b & 0x80 == 0 {
                self.at += 1;
                return Ok(b as u64);
            }
        }
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at).ok_or("truncated lexical index")?;
            self.at += 1;
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
        let hits = index.search(&index.query("RTL"), 5).unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].row, 0);
        let hits = index
            .search(&index.query("speculative decoding"), 5)
            .unwrap();
        assert_eq!(hits[0].row, 1);
        assert!(index.search(&index.query("giraffe"), 5).unwrap().is_empty());
        assert!(index.query("the of and").is_empty());
    }

    #[test]
    fn a_long_query_keeps_its_most_telling_terms() {
        // Document i holds words 0..=i: word 0 is in every document, word 39 in one.
        let words: Vec<String> = (0..40).map(|i| format!("word{i}x")).collect();
        let docs: Vec<String> = (0..40).map(|i| words[..=i].join(" ")).collect();
        let index = LexicalIndex::build(&docs);
        const MAX: usize = 25;
        let q = index.query_top_terms(&words.join(" "), MAX);
        assert_eq!(q.terms.len(), MAX);
        let s = index.similarities(&q).unwrap();
        // The 15 commonest words were dropped: a document of only those shares no term.
        let last_dropped = 40 - MAX - 1;
        assert_eq!(s[last_dropped], 0.0, "{s:?}");
        assert!(s[last_dropped + 1] > 0.0, "{s:?}");
        assert!((s[39] - top_hits(&s, 1)[0].score).abs() < 1e-6);
        // A short query keeps every term, and the full query every one of its 40.
        let short = index.query_top_terms("word0x word1x word39x", MAX);
        assert_eq!(short.terms.len(), 3);
        assert_eq!(index.query(&words.join(" ")).terms.len(), 40);
    }

    #[test]
    fn top_hits_passes_over_blocks_exactly() {
        // Scores with many ties, zeros, negatives and a NaN, in an order that makes the floor
        // rise late: the blockwise pass must keep what offering every score keeps.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [0usize, 1, 15, 16, 17, 100, 1000, 4099] {
            let mut scores: Vec<f32> = (0..n)
                .map(|i| match next() % 5 {
                    0 => 0.0,
                    1 => -((next() % 7) as f32),
                    _ => ((next() % 40) as f32) / 8.0 + (i as f32) * 1e-4 * ((i % 3) as f32),
                })
                .collect();
            if n > 5 {
                scores[5] = f32::NAN;
            }
            for k in [0usize, 1, 3, 10, 50, n + 1] {
                let mut naive: Vec<Hit> = scores
                    .iter()
                    .enumerate()
                    .filter(|(_, &s)| s > 0.0)
                    .map(|(row, &score)| Hit { row, score })
                    .collect();
                naive.sort_by(crate::index::best_first);
                naive.truncate(k);
                assert_eq!(top_hits(&scores, k), naive, "n {n}, k {k}");
            }
        }
    }

    #[test]
    fn a_document_is_most_similar_to_itself_and_scores_about_one() {
        let index = LexicalIndex::build(DOCS);
        for (row, text) in DOCS.iter().enumerate() {
            let q = index.query(text);
            let s = index.similarities(&q).unwrap();
            assert!((s[row] - 1.0).abs() < 1e-5, "row {row}: {}", s[row]);
            let best = top_hits(&s, 1)[0].row;
            assert_eq!(best, row);
        }
        // The distillation papers are each other's nearest neighbours.
        let hits = index.search(&index.query(DOCS[2]), 2).unwrap();
        assert_eq!(hits[1].row, 3);
    }

    #[test]
    fn a_foreign_document_scores_as_if_it_were_indexed() {
        let index = LexicalIndex::build(&DOCS[..4]);
        let q = index.query(DOCS[2]);
        let foreign = index.foreign(DOCS[3]);
        let inside = index.similarities(&q).unwrap()[3];
        assert!((index.similarity_foreign(&q, &foreign) - inside).abs() < 1e-6);
    }

    #[test]
    fn incremental_equals_one_go() {
        let once = LexicalIndex::build(DOCS);
        let mut inc = LexicalIndex::new();
        let q = once.query("distillation code");
        inc.add(&DOCS[..2]);
        // Scored between additions: the length norms it keeps must follow the new rows and
        // the new average length.
        assert!(!inc
            .scores(&inc.query("distillation code"))
            .unwrap()
            .is_empty());
        inc.add(&DOCS[2..3]);
        assert!(!inc
            .scores(&inc.query("distillation code"))
            .unwrap()
            .is_empty());
        inc.add(&DOCS[3..]);
        assert_eq!(inc.to_bytes().unwrap(), once.to_bytes().unwrap());
        assert_eq!(inc.search(&q, 5).unwrap(), once.search(&q, 5).unwrap());
        assert_eq!(inc.scores(&q).unwrap(), once.scores(&q).unwrap());
    }

    #[test]
    fn file_round_trips() {
        let index = LexicalIndex::build(DOCS);
        let bytes = index.to_bytes().unwrap();
        let back = LexicalIndex::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes().unwrap(), bytes);
        assert_eq!(back.len(), DOCS.len());
        let q = "diffusion distillation";
        assert_eq!(
            back.search(&back.query(q), 5).unwrap(),
            index.search(&index.query(q), 5).unwrap()
        );
        let empty = LexicalIndex::new();
        assert_eq!(
            LexicalIndex::from_bytes(&empty.to_bytes().unwrap())
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        let bytes = LexicalIndex::build(DOCS).to_bytes().unwrap();
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
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            body
        };
        let bytes = LexicalIndex::build(DOCS).to_bytes().unwrap();
        let body = bytes[..bytes.len() - 4].to_vec();
        assert!(LexicalIndex::from_bytes(&seal(body.clone())).is_ok());
        let mut lie = body.clone();
        lie[8] += 1; // one more document than there are
        assert!(LexicalIndex::from_bytes(&seal(lie)).is_err());
        let mut lie = body.clone();
        lie[32] += 1; // more postings bytes than there are
        assert!(LexicalIndex::from_bytes(&seal(lie)).is_err());
        let mut huge = body.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(LexicalIndex::from_bytes(&seal(huge)).is_err());
        // Postings are checked when a query reads them: a file opened unchecked gives an
        // error, not a wrong score, for a damaged posting list.
        let mut bad = body;
        let last = bad.len() - 1;
        bad[last] = 0; // the last posting's tf
        let index =
            LexicalIndex::open(Path::new("lexical.9.bin"), Box::new(seal(bad)), true).unwrap();
        let err = (0..DOCS.len())
            .find_map(|r| index.search(&index.query(DOCS[r]), 5).err())
            .expect("a query reads the damaged list");
        assert!(err.to_string().contains("lexical.9.bin"), "{err}");
    }

    #[test]
    fn a_frozen_index_with_rows_added_in_memory_equals_one_built_at_once() {
        let once = LexicalIndex::build(DOCS);
        let frozen = LexicalIndex::build(&DOCS[..3]).to_bytes().unwrap();
        let mut grown =
            LexicalIndex::open(Path::new("lexical.1.bin"), Box::new(frozen), true).unwrap();
        grown.add(&DOCS[3..]);
        assert_eq!(grown.len(), DOCS.len());
        assert_eq!(grown.to_bytes().unwrap(), once.to_bytes().unwrap());
        for text in DOCS
            .iter()
            .chain(["distillation code", "RTL Verilog"].iter())
        {
            let (a, b) = (grown.query(text), once.query(text));
            assert_eq!(a.self_score(), b.self_score());
            assert_eq!(
                grown.similarities(&a).unwrap(),
                once.similarities(&b).unwrap()
            );
            let doc = grown.foreign(DOCS[1]);
            assert_eq!(
                grown.similarity_foreign(&a, &doc),
                once.similarity_foreign(&b, &once.foreign(DOCS[1]))
            );
        }
    }
}
