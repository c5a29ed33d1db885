//! The reader's filters and recency: `--must TERM` and `--exclude TERM` (tokenised and stemmed
//! as the lexical index reads titles and abstracts: lower case, stop words dropped, plurals
//! stemmed, so `--must distillation` keeps "Distillations" too; a term of several words needs
//! all of them), `--category` (a category a paper lists, or its archive: `cs` keeps `cs.CL`),
//! and `--half-life DAYS` (a score halves for every that many days a paper is older than the
//! newest paper ranked).

use std::collections::HashSet;

use super::RankOptions;
use crate::index::lexical::tokens;
use crate::library::{Library, Paper};
use crate::{Error, Result};

/// Bounds of `--half-life` in days: dates are days, so a half-life under one cannot tell
/// papers of one day apart from the next; past ten years every paper a digest brings is
/// "recent" and the option changes nothing.
pub const HALF_LIFE_DAYS: std::ops::RangeInclusive<f32> = 1.0..=3650.0;

/// The index terms of a `--must` or `--exclude` term, or an error saying why it has none.
pub(crate) fn term_tokens(option: &str, term: &str) -> Result<Vec<String>> {
    let t = tokens(term);
    if t.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{option} `{}` has no word the lexical index holds (stop words, single letters \
             and numbers are not indexed), so it would {}",
            term.escape_debug(),
            if option == "--must" {
                "keep nothing"
            } else {
                "exclude nothing"
            }
        )));
    }
    Ok(t)
}

/// The filters of one ranking, prepared once.
pub(crate) struct Filters {
    /// Per `--must` term, its index terms (all must occur).
    must: Vec<Vec<String>>,
    /// Per `--exclude` term, its index terms (a paper holding all of one is dropped).
    exclude: Vec<Vec<String>>,
    categories: Vec<String>,
    /// Library rows holding every `--must` term (None: no `--must`).
    must_rows: Option<HashSet<usize>>,
    /// Library rows holding an `--exclude` term.
    exclude_rows: HashSet<usize>,
}

/// Library rows holding every one of `terms` (index terms).
fn rows_with_all(lib: &Library, terms: &[String]) -> Result<HashSet<usize>> {
    let lex = lib.lexical()?;
    let mut rows: Option<HashSet<usize>> = None;
    for t in terms {
        let has: HashSet<usize> = lex
            .scores(&lex.query(t))?
            .iter()
            .enumerate()
            .filter(|(_, &s)| s > 0.0)
            .map(|(r, _)| r)
            .collect();
        rows = Some(match rows {
            None => has,
            Some(r) => r.intersection(&has).copied().collect(),
        });
    }
    Ok(rows.unwrap_or_default())
}

impl Filters {
    /// The filters of `opts`, without looking at any library.
    pub fn parse(opts: &RankOptions) -> Result<Filters> {
        let parse = |option: &str, terms: &[String]| -> Result<Vec<Vec<String>>> {
            terms.iter().map(|t| term_tokens(option, t)).collect()
        };
        Ok(Filters {
            must: parse("--must", &opts.must)?,
            exclude: parse("--exclude", &opts.exclude)?,
            categories: opts.categories.iter().map(|c| c.to_lowercase()).collect(),
            must_rows: None,
            exclude_rows: HashSet::new(),
        })
    }

    /// The filters of `opts` over library rows: the rows each term keeps or drops are read
    /// from the lexical index once. `--category` on a library where no paper lists a category
    /// is an error rather than an empty ranking.
    pub fn for_library(lib: &Library, opts: &RankOptions) -> Result<Filters> {
        let mut f = Filters::parse(opts)?;
        if !f.must.is_empty() {
            let mut rows: Option<HashSet<usize>> = None;
            for term in &f.must {
                let has = rows_with_all(lib, term)?;
                rows = Some(match rows {
                    None => has,
                    Some(r) => r.intersection(&has).copied().collect(),
                });
            }
            f.must_rows = rows;
        }
        for term in &f.exclude {
            f.exclude_rows.extend(rows_with_all(lib, term)?);
        }
        if !f.categories.is_empty() && !lib.papers()?.iter().any(|p| !p.categories.is_empty()) {
            return Err(Error::InvalidInput(format!(
                "--category: no paper in the library at {} lists a category (digests in the \
                 arXiv metadata shape carry `categories`; the trending-papers text format does \
                 not)",
                lib.root().display()
            )));
        }
        Ok(f)
    }

    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.exclude.is_empty() && self.categories.is_empty()
    }

    fn category_ok(&self, categories: &[String]) -> bool {
        self.categories.is_empty()
            || categories.iter().any(|c| {
                let c = c.to_lowercase();
                self.categories.iter().any(|want| {
                    c == *want || (c.starts_with(want.as_str()) && c[want.len()..].starts_with('.'))
                })
            })
    }

    /// Whether library row `row` passes.
    pub fn keeps_row(&self, lib: &Library, row: usize) -> Result<bool> {
        if self.must_rows.as_ref().is_some_and(|r| !r.contains(&row))
            || self.exclude_rows.contains(&row)
        {
            return Ok(false);
        }
        if self.categories.is_empty() {
            return Ok(true);
        }
        Ok(self.category_ok(&lib.paper(row)?.categories))
    }

    /// Whether a paper outside the library (its title and abstract, its categories) passes.
    pub fn keeps_text(&self, text: &str, categories: &[String]) -> bool {
        let have: HashSet<String> = tokens(text).into_iter().collect();
        let holds = |terms: &Vec<String>| terms.iter().all(|t| have.contains(t));
        self.must.iter().all(holds)
            && !self.exclude.iter().any(holds)
            && self.category_ok(categories)
    }
}

/// Days since the epoch of a `YYYY-MM-DD…` date (None when it is not one).
fn day_number(date: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    Some(
        d.signed_duration_since(chrono::NaiveDate::default())
            .num_days(),
    )
}

/// A library paper's date for recency: its own date, else the first digest it came in.
pub(crate) fn paper_day(p: &Paper) -> Option<i64> {
    p.date
        .as_deref()
        .and_then(day_number)
        .or_else(|| p.dates().filter_map(day_number).min())
}

/// A foreign paper's day, from its own date string.
pub(crate) fn text_day(date: Option<&str>) -> Option<i64> {
    date.and_then(day_number)
}

/// Decays `scores` in place by the age of each item (`days`, None when undated) with
/// `half_life` days: age is counted from the newest dated item, so a library not updated for
/// a month is not all old; an undated item counts as old as the oldest dated one. A positive
/// score is multiplied by 0.5^(age / half_life); a negative one (a paper close to a dislike)
/// is left as it is, so decay never lifts it.
pub(crate) fn decay(scores: &mut [f32], days: &[Option<i64>], half_life: f32) {
    let newest = days.iter().flatten().max().copied();
    let oldest = days.iter().flatten().min().copied();
    let Some(newest) = newest else { return };
    for (s, d) in scores.iter_mut().zip(days) {
        let day = d.or(oldest).unwrap_or(newest);
        let age = (newest - day).max(0) as f32;
        if *s > 0.0 {
            *s *= 0.5f32.powf(age / half_life);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_halves_per_half_life_from_the_newest() {
        let mut s = [1.0, 1.0, 1.0, -0.5];
        decay(&mut s, &[Some(10), Some(0), None, Some(0)], 10.0);
        assert_eq!(s[0], 1.0);
        assert!((s[1] - 0.5).abs() < 1e-6);
        assert!((s[2] - 0.5).abs() < 1e-6, "undated = as old as the oldest");
        assert_eq!(s[3], -0.5, "a negative score is not lifted");
    }

    #[test]
    fn text_filters_stem_like_the_index() {
        let opts = RankOptions {
            must: vec!["diffusion models".into()],
            exclude: vec!["distillation".into()],
            categories: vec!["cs".into()],
            ..RankOptions::default()
        };
        let f = Filters::parse(&opts).unwrap();
        let cs = ["cs.CV".to_string()];
        assert!(f.keeps_text("Diffusion Model sampling", &cs));
        assert!(!f.keeps_text("Diffusion Models distillations", &cs));
        assert!(!f.keeps_text("Diffusion Models", &["math.NA".to_string()]));
        assert!(!f.keeps_text("Models only", &cs));
        assert!(term_tokens("--must", "the a 42").is_err());
    }
}
