//! Finding the one paper a reader means: an id, an exact title, or a fragment of one title.

use std::collections::HashSet;

use super::Library;
use crate::paper::{normalize_title, papers, strip_arxiv_version};
use crate::{Error, Result};

impl Library {
    /// The row of the one paper that `reference` names: an id (with or without an arXiv
    /// version) or one of its aliases, an exact title (case-insensitive) of one paper, or a
    /// fragment of exactly one title.
    /// Ambiguous and unknown references are errors that list the candidates or the closest
    /// titles.
    pub fn resolve(&self, reference: &str) -> Result<usize> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(Error::PaperLookup("empty paper reference".into()));
        }
        if let Some(row) = self.row_of_id(reference)? {
            return Ok(row);
        }
        if let Some(row) = self.row_of_id(strip_arxiv_version(reference))? {
            return Ok(row);
        }
        match self.rows_of_title(reference)?[..] {
            [] => {}
            [row] => return Ok(row),
            ref rows => {
                return Err(Error::PaperLookup(format!(
                    "`{reference}` is the title of {} papers (versions whose abstracts differ, kept apart); give an id:\n{}",
                    rows.len(),
                    self.list(&rows[..rows.len().min(10)])?
                )))
            }
        }
        let needle = normalize_title(reference);
        // A fragment of a title is looked for in every title: the one lookup that reads every
        // record.
        let matches: Vec<usize> = self
            .papers()?
            .iter()
            .enumerate()
            .filter(|(_, p)| !needle.is_empty() && normalize_title(&p.title).contains(&needle))
            .map(|(row, _)| row)
            .collect();
        match matches.len() {
            1 => Ok(matches[0]),
            0 => {
                let suggestions = self.closest_titles(reference, 3)?;
                Err(Error::PaperLookup(format!(
                    "no paper matches `{reference}` in the library ({}).{}",
                    papers(self.len()),
                    if suggestions.is_empty() {
                        String::new()
                    } else {
                        format!(" Closest titles:\n{}", self.list(&suggestions)?)
                    }
                )))
            }
            n => Err(Error::PaperLookup(format!(
                "`{reference}` matches {n} papers; give an id or a longer part of the title:\n{}",
                self.list(&matches[..n.min(10)])?
            ))),
        }
    }

    /// Rows for references, each resolved as [`Library::resolve`] does.
    pub fn resolve_all(&self, references: &[String]) -> Result<Vec<usize>> {
        references.iter().map(|r| self.resolve(r)).collect()
    }

    fn list(&self, rows: &[usize]) -> Result<String> {
        let lines = rows
            .iter()
            .map(|&r| {
                let p = self.paper(r)?;
                Ok(format!("  {}  {}", p.id, p.title))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(lines.join("\n"))
    }

    /// Titles sharing the most words with `reference` (a cheap "did you mean").
    fn closest_titles(&self, reference: &str, n: usize) -> Result<Vec<usize>> {
        let words: HashSet<String> = normalize_title(reference)
            .split(' ')
            .map(str::to_string)
            .collect();
        let mut scored: Vec<(usize, usize)> = self
            .papers()?
            .iter()
            .enumerate()
            .map(|(row, p)| {
                let overlap = normalize_title(&p.title)
                    .split(' ')
                    .filter(|w| words.contains(*w))
                    .count();
                (row, overlap)
            })
            .filter(|(_, o)| *o > 0)
            .collect();
        scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(scored.into_iter().take(n).map(|(r, _)| r).collect())
    }
}
