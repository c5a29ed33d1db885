//! `papersim like | dislike | forget | seen` and `papersim profile [eval]`: the reader's stored
//! feedback, and the reader that `recommend` and `triage` rank for.

use anyhow::{bail, Result};
use serde_json::json;

use super::args::{InfoFormat, ProfileArgs, RankArgs};
use super::output::Format;
use super::{library_dir, note, open_library, printable_lines, Global};
use papersim::feedback::{check_tag, Log, Op, DEFAULT_TAG};
use papersim::library::Library;
use papersim::rank::{self, Profile, Retrieval};

/// Writes `text` and a newline to stdout, returning the error of a closed pipe (which `main`
/// ends quietly on) instead of panicking as `println!` does.
pub(super) fn say(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// Who a ranking is for: liked and disliked rows, each like's interest, and where they came
/// from (for the JSON report).
pub(super) struct Reader {
    pub likes: Vec<usize>,
    pub unlikes: Vec<usize>,
    /// Per like, its interest (a tag); empty when each liked paper is its own interest.
    pub interests: Vec<usize>,
    pub source: serde_json::Value,
}

/// The row of a stored paper: by its id, else its title; `None` (with a note) when this
/// library does not hold it.
fn stored_row(g: &Global, lib: &Library, id: &str, title: &str) -> Result<Option<usize>> {
    if let Some(row) = lib.row_of_id(id)? {
        return Ok(Some(row));
    }
    if let Some(&row) = lib.rows_of_title(title)?.first() {
        return Ok(Some(row));
    }
    note(
        g,
        &format!("papersim: note: {id} ({title}) of your profile is not in this library; left out"),
    );
    Ok(None)
}

/// The stored likes, tag by tag (only `tag` when given), as rows.
fn stored_likes(
    g: &Global,
    lib: &Library,
    log: &Log,
    tag: Option<&str>,
) -> Result<Vec<(String, Vec<usize>)>> {
    let mut likes = log.feedback()?.likes();
    if let Some(t) = tag {
        check_tag(t)?;
        if !likes.contains_key(t) {
            let known: Vec<&String> = likes.keys().collect();
            bail!(
                "no liked papers under tag `{t}` in {}; tags: {}",
                log.path().display(),
                if known.is_empty() {
                    "none yet (`papersim like PAPER --tag NAME`)".to_string()
                } else {
                    known
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
        likes.retain(|k, _| k == t);
    }
    let mut out = Vec::new();
    for (tag, marks) in likes {
        let mut rows = Vec::new();
        for m in marks {
            if let Some(row) = stored_row(g, lib, &m.id, &m.title)? {
                if !rows.contains(&row) {
                    rows.push(row);
                }
            }
        }
        if !rows.is_empty() {
            out.push((tag, rows));
        }
    }
    Ok(out)
}

/// The reader of a `recommend` or `triage`: `--like` (with `--unlike` and `--profile`) when
/// given; else `--profile FILE`; else the stored profile (`--tag` narrows it to one interest;
/// each tag is one interest), with `--unlike` added to its dislikes; else
/// `<library>/profile.json`.
pub(super) fn reader(g: &Global, args: &ProfileArgs, lib: &Library) -> Result<Reader> {
    if args.tag.is_some() && (!args.like.is_empty() || args.profile.is_some()) {
        bail!("--tag selects stored likes (`papersim like`); it cannot be combined with --like or --profile, which name the liked papers themselves");
    }
    let mut unlikes = lib.resolve_all(&args.unlike)?;
    let file = |path: &std::path::Path, likes: &mut Vec<usize>, unlikes: &mut Vec<usize>| {
        let prof = Profile::read(path)?;
        likes.extend(lib.resolve_all(&prof.like)?);
        unlikes.extend(lib.resolve_all(&prof.unlike)?);
        anyhow::Ok(())
    };
    if !args.like.is_empty() {
        let mut likes = lib.resolve_all(&args.like)?;
        if let Some(p) = &args.profile {
            file(p, &mut likes, &mut unlikes)?;
        }
        return Ok(Reader {
            likes,
            unlikes,
            interests: Vec::new(),
            source: json!({"from": "flags", "profile": args.profile}),
        });
    }
    if let Some(p) = &args.profile {
        let mut likes = Vec::new();
        file(p, &mut likes, &mut unlikes)?;
        return Ok(Reader {
            likes,
            unlikes,
            interests: Vec::new(),
            source: json!({"from": "file", "profile": p}),
        });
    }
    let log = Log::of_library(&library_dir(g));
    let tags = stored_likes(g, lib, &log, args.tag.as_deref())?;
    if !tags.is_empty() {
        let mut likes = Vec::new();
        let mut interests = Vec::new();
        for (i, (_, rows)) in tags.iter().enumerate() {
            for &r in rows {
                if !likes.contains(&r) {
                    likes.push(r);
                    interests.push(i);
                }
            }
        }
        for m in log.feedback()?.dislikes() {
            if let Some(row) = stored_row(g, lib, &m.id, &m.title)? {
                unlikes.push(row);
            }
        }
        let names: Vec<&String> = tags.iter().map(|(t, _)| t).collect();
        return Ok(Reader {
            likes,
            unlikes,
            interests,
            source: json!({"from": "stored", "tags": names}),
        });
    }
    let default = library_dir(g).join("profile.json");
    if default.is_file() {
        let mut likes = Vec::new();
        file(&default, &mut likes, &mut unlikes)?;
        if !likes.is_empty() {
            return Ok(Reader {
                likes,
                unlikes,
                interests: Vec::new(),
                source: json!({"from": "file", "profile": default}),
            });
        }
    }
    bail!(
        "no liked papers: like some with `papersim like ID_OR_TITLE... [--tag NAME]`, pass --like ID_OR_TITLE..., or write a profile {{\"like\": [...], \"unlike\": [...]}} to {} (or --profile FILE)",
        default.display()
    )
}

/// The papers a reader's likes and dislikes name, unresolved (ids, titles), from the same
/// sources [`reader`] reads: the flags and profile file, else the stored feedback (its ids
/// and titles), else `<library>/profile.json`. A store that fetches papers as asked (a Qdrant
/// library) fetches these, then [`reader`] resolves them in what it fetched.
pub(super) fn reader_references(
    g: &Global,
    args: &ProfileArgs,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut likes = args.like.clone();
    let mut unlikes = args.unlike.clone();
    let file = |path: &std::path::Path,
                likes: &mut Vec<String>,
                unlikes: &mut Vec<String>|
     -> Result<()> {
        let prof = Profile::read(path)?;
        likes.extend(prof.like);
        unlikes.extend(prof.unlike);
        Ok(())
    };
    if let Some(p) = &args.profile {
        file(p, &mut likes, &mut unlikes)?;
    }
    if !args.like.is_empty() || args.profile.is_some() {
        return Ok((likes, unlikes));
    }
    let log = Log::of_library(&library_dir(g));
    let fb = log.feedback()?;
    for (tag, marks) in fb.likes() {
        if args.tag.as_deref().is_none_or(|t| t == tag) {
            for m in marks {
                likes.push(m.id);
                likes.push(m.title);
            }
        }
    }
    for m in fb.dislikes() {
        unlikes.push(m.id);
        unlikes.push(m.title);
    }
    let default = library_dir(g).join("profile.json");
    if likes.is_empty() && default.is_file() {
        file(&default, &mut likes, &mut unlikes)?;
    }
    Ok((likes, unlikes))
}

/// `like`, `dislike`, `forget`, `seen`: every paper is resolved before anything is written, so
/// one unknown paper writes nothing; then one durable append.
pub fn mark(g: &Global, op: Op, papers: &[String], tag: Option<&str>) -> Result<()> {
    if let Some(t) = tag {
        check_tag(t)?;
    }
    let tag = match op {
        Op::Like => Some(tag.unwrap_or(DEFAULT_TAG)),
        _ => tag,
    };
    let store = super::open_store(g)?;
    let lib = store.view(&papersim::store::Need {
        references: papers.to_vec(),
        ..Default::default()
    })?;
    let log = Log::of_library(&library_dir(g));
    let records = papersim::pipeline::feedback_records(&lib, &log, op, papers, tag)?;
    log.append(&records)?;
    let verb = match op {
        Op::Like => "liked",
        Op::Dislike => "disliked",
        Op::Forget => "forgot",
        Op::Seen => "marked as seen",
    };
    let under = tag.map(|t| format!(" (tag {t})")).unwrap_or_default();
    say(&printable_lines(&format!(
        "{verb} {} paper(s){under}:",
        records.len()
    )))?;
    for r in &records {
        say(&format!(
            "  {}  {}",
            printable_lines(&r.id),
            printable_lines(&r.title)
        ))?;
    }
    Ok(())
}

/// `papersim profile`: likes per tag and dislikes, with their dates.
pub fn show(g: &Global, tag: Option<&str>, format: InfoFormat) -> Result<()> {
    let log = Log::of_library(&library_dir(g));
    let fb = log.feedback()?;
    let mut likes = fb.likes();
    if let Some(t) = tag {
        if !likes.contains_key(t) {
            let known: Vec<&str> = likes.keys().map(String::as_str).collect();
            bail!(
                "no liked papers under tag `{t}`; tags: {}",
                if known.is_empty() {
                    "none yet".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        likes.retain(|k, _| k == t);
    }
    let dislikes = fb.dislikes();
    if format == InfoFormat::Json {
        let v = papersim::report::profile(log.path(), &likes, &fb);
        say(&serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    if likes.is_empty() && dislikes.is_empty() {
        say("no likes or dislikes yet: `papersim like ID_OR_TITLE... [--tag NAME]`")?;
    }
    let line = |at: &str, id: &str, title: &str| {
        printable_lines(&format!("  {}  {id:<14}  {title}", &at[..at.len().min(10)])).to_string()
    };
    for (tag, marks) in &likes {
        say(&printable_lines(&format!(
            "like, tag {tag} ({})",
            marks.len()
        )))?;
        for m in marks {
            say(&line(&m.at, &m.id, &m.title))?;
        }
    }
    if !dislikes.is_empty() {
        say(&format!("dislike ({})", dislikes.len()))?;
        for m in &dislikes {
            say(&line(&m.at, &m.id, &m.title))?;
        }
    }
    say(&format!("seen: {}", super::output::papers(fb.seen_count())))?;
    Ok(())
}

/// `papersim profile eval`: leave-one-out figures per tag, beside lexical and random rankings.
pub fn eval(g: &Global, tag: Option<&str>, rank_args: &RankArgs) -> Result<()> {
    let opts = super::args::rank_options(rank_args)?;
    let json_out = rank_args.format == Format::Json;
    let lib = open_library(g)?;
    let log = Log::of_library(&library_dir(g));
    let tags = stored_likes(g, &lib, &log, tag)?;
    if tags.is_empty() {
        bail!(
            "no liked papers to evaluate: like some with `papersim like ID_OR_TITLE... --tag NAME`"
        );
    }
    let mut unlikes = Vec::new();
    for m in log.feedback()?.dislikes() {
        if let Some(row) = stored_row(g, &lib, &m.id, &m.title)? {
            unlikes.push(row);
        }
    }
    let retrieval: Retrieval = rank_args.mode.into();
    let evals = rank::eval::leave_one_out(&lib, &tags, &unlikes, &opts, retrieval)?;
    if json_out {
        let v = json!({"mode": retrieval.to_string(), "tags": evals});
        say(&serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let width = evals
        .iter()
        .map(|e| e.tag.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    say(&format!(
        "{:<width$}  {:>8}  {:>10}  {:<8}  {:>9}  {:>9}  {:>11}",
        "tag", "held out", "candidates", "ranking", "recall@10", "recall@50", "median rank"
    ))?;
    for e in &evals {
        let rows = [
            (retrieval.to_string(), &e.model),
            ("lexical".to_string(), &e.lexical),
            ("random".to_string(), &e.random),
        ];
        for (i, (name, f)) in rows.iter().enumerate() {
            let (tag, held, cands) = if i == 0 {
                (
                    printable_lines(&e.tag).to_string(),
                    e.held_out.to_string(),
                    e.candidates.to_string(),
                )
            } else {
                (String::new(), String::new(), String::new())
            };
            say(&format!(
                "{tag:<width$}  {held:>8}  {cands:>10}  {name:<8}  {:>9.2}  {:>9.2}  {:>11.1}",
                f.recall_at_10, f.recall_at_50, f.median_rank
            ))?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Bibtex,
    Json,
}

/// `papersim profile export`: the liked papers (of `tag`, or all) as BibTeX or CSL JSON, on
/// stdout or into `output` (a new file, or over a regular file).
pub fn export(
    g: &Global,
    tag: Option<&str>,
    format: ExportFormat,
    output: Option<&std::path::Path>,
) -> Result<()> {
    use papersim::feedback::export::{to_bibtex, to_csl_json, ExportEntry};
    let root = library_dir(g);
    let fb = Log::of_library(&root).feedback()?;
    let lib = if Library::exists(&root) {
        Some(open_library(g)?)
    } else {
        None
    };
    // One entry per paper, with every tag it is liked under.
    let mut entries: Vec<ExportEntry> = Vec::new();
    for (t, marks) in fb.likes() {
        if tag.is_some_and(|want| want != t) {
            continue;
        }
        for m in marks {
            if let Some(e) = entries.iter_mut().find(|e| e.id == m.id) {
                e.tags.push(t.clone());
                continue;
            }
            let mut e = ExportEntry {
                id: m.id.clone(),
                title: m.title.clone(),
                tags: vec![t.clone()],
                ..ExportEntry::default()
            };
            let row = match &lib {
                Some(lib) => match lib.row_of_id(&m.id)? {
                    Some(r) => Some(r),
                    None => lib.rows_of_title(&m.title)?.first().copied(),
                },
                None => None,
            };
            if let (Some(lib), Some(row)) = (&lib, row) {
                let p = lib.paper(row)?;
                e.abstract_text = Some(p.abstract_text.clone());
                e.authors = p.authors.clone();
                e.date = p
                    .date
                    .clone()
                    .or_else(|| p.first_seen().map(str::to_string));
                e.url = p.url.clone();
            }
            entries.push(e);
        }
    }
    if entries.is_empty() {
        bail!(
            "no liked papers{} to export: like some with `papersim like ID_OR_TITLE... [--tag NAME]`",
            tag.map(|t| format!(" under tag `{t}`")).unwrap_or_default()
        );
    }
    let text = match format {
        ExportFormat::Bibtex => to_bibtex(&entries),
        ExportFormat::Json => serde_json::to_string_pretty(&to_csl_json(&entries))? + "\n",
    };
    match output {
        Some(path) => {
            papersim::directory::write_report(path, text.as_bytes())?;
            note(
                g,
                &format!("wrote {} liked papers to {}", entries.len(), path.display()),
            );
        }
        None => {
            use std::io::Write;
            std::io::stdout().lock().write_all(text.as_bytes())?;
        }
    }
    Ok(())
}
