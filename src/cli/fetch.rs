//! `papersim fetch hf|arxiv`: new papers from their sources (`papersim::fetch`), then the
//! ordinary ingest (`papersim::pipeline::ingest`: only new papers embedded, with progress), or
//! a JSONL digest (`-o`), or a list of what would be added (`--dry-run`).

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use clap::{Args as ClapArgs, Subcommand};
use serde::Serialize;

use papersim::digest::Digest;
use papersim::fetch::{self, arxiv, hf, Client, Fetched};
use papersim::library::{IngestReport, Library};

use super::args::InfoFormat;
use super::output::printable_lines;
use super::{library_dir, load_embedder, note, progress, Global};

/// The most `--category` options: arXiv's query string grows with each, and a reader follows
/// a handful of categories.
const MAX_CATEGORIES: usize = 20;

#[derive(Subcommand, Debug)]
pub enum Source {
    /// Hugging Face daily papers (the listing behind huggingface.co/papers and the
    /// trending-papers email): arXiv ids, titles, abstracts, authors, dates, upvotes.
    Hf {
        /// The day to fetch (YYYY-MM-DD) [default: today, UTC].
        #[arg(long, conflicts_with = "since")]
        date: Option<String>,
        /// Every day from this one (YYYY-MM-DD) to today, one request a day (at most 366 days).
        #[arg(long)]
        since: Option<String>,
        /// The API to ask (a mirror, or a test server).
        #[arg(long, env = "PAPERSIM_HF_ENDPOINT", default_value = hf::DEFAULT_ENDPOINT)]
        endpoint: String,
        #[command(flatten)]
        common: FetchArgs,
    },
    /// The arXiv API, newest submissions first, one request every 3 seconds (arXiv's limit);
    /// a stopped fetch into the library resumes where it stopped.
    Arxiv {
        /// An arXiv category (cs.CL, cs.LG, stat.ML, ...); repeat for several (at most 20).
        #[arg(long = "category", required = true, value_name = "CATEGORY")]
        categories: Vec<String>,
        /// Only papers first published on or after this day (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// The most papers to fetch (1 to 100000).
        #[arg(long, default_value_t = 200)]
        max: usize,
        /// Papers per request (1 to 2000, arXiv's largest page).
        #[arg(long, default_value_t = 100)]
        page_size: usize,
        /// The API to ask (a mirror, or a test server).
        #[arg(long, env = "PAPERSIM_ARXIV_ENDPOINT", default_value = arxiv::DEFAULT_ENDPOINT)]
        endpoint: String,
        #[command(flatten)]
        common: FetchArgs,
    },
}

#[derive(ClapArgs, Debug)]
pub struct FetchArgs {
    /// Write the papers to this JSONL digest (a new file) instead of ingesting them.
    #[arg(short, long, value_name = "FILE", conflicts_with = "dry_run")]
    output: Option<PathBuf>,
    /// List what an ingest would add; the library is not changed.
    #[arg(long)]
    dry_run: bool,
    /// Seconds allowed to connect (0.1 to 600).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    connect_timeout: f64,
    /// Seconds a server may stay silent while answering (0.1 to 600).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    read_timeout: f64,
    /// Retries of a request answered 429 or 5xx, with backoff or the server's Retry-After
    /// (0 to 10).
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// Wait for another writer of the library instead of failing.
    #[arg(long)]
    wait: bool,
    #[arg(long, value_enum, default_value = "table")]
    format: InfoFormat,
}

/// What a fetch did, as printed (and as `--format json` gives it).
#[derive(Serialize, Default)]
struct Summary {
    source: &'static str,
    /// `ingest`, `output` or `dry-run`.
    mode: &'static str,
    requests: usize,
    fetched: usize,
    /// Ingest and dry run: papers new to the library, papers it holds already, and papers it
    /// held under a title-derived id that take their arXiv id.
    added: usize,
    already_present: usize,
    upgraded: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    papers_total: Option<usize>,
    /// arXiv: the result the fetch resumed at, when a stopped fetch was resumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    resumed_at: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<PathBuf>,
    /// Dry run: the papers that would be added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    new_papers: Vec<Listed>,
    identity: Vec<String>,
    /// Entries of the answers left out, each saying which and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<String>,
}

#[derive(Serialize)]
struct Listed {
    id: String,
    title: String,
    date: Option<String>,
}

pub fn fetch(g: &Global, source: &Source) -> Result<()> {
    let (Source::Hf { common, .. } | Source::Arxiv { common, .. }) = source;
    if let Some(path) = &common.output {
        // Before any request: a fetch that cannot be written is not sent.
        refuse_existing(path)?;
    }
    match source {
        Source::Hf {
            date,
            since,
            endpoint,
            common,
        } => {
            check_endpoint(endpoint)?;
            let days = fetch::hf_days(
                day_arg("--date", date)?,
                day_arg("--since", since)?,
                chrono::Utc::now().date_naive(),
            )?;
            let mut client = client(common, fetch::HF_INTERVAL_MS)?;
            let mut summary = Summary {
                source: "hf",
                ..Summary::default()
            };
            let mut fetched = Vec::new();
            for day in days {
                let mut one = hf::fetch(&mut client, endpoint, &[day])?;
                let got = one.first().map_or(0, |f| f.papers.len());
                note(
                    g,
                    &format!("papersim: {} listed for {day}", super::output::papers(got)),
                );
                fetched.append(&mut one);
            }
            summary.requests = client.requests;
            deliver(g, common, fetched, &mut summary)?;
            print(common.format, &summary)
        }
        Source::Arxiv {
            categories,
            since,
            max,
            page_size,
            endpoint,
            common,
        } => {
            check_endpoint(endpoint)?;
            let query = arxiv_query(categories, day_arg("--since", since)?, *max, *page_size)?;
            let mut client = client(common, fetch::arxiv_interval_ms()?)?;
            let mut summary = Summary {
                source: "arxiv",
                ..Summary::default()
            };
            if common.output.is_some() || common.dry_run {
                let mut fetched = Vec::new();
                arxiv::fetch(&mut client, endpoint, &query, 0, |page, _| {
                    note(
                        g,
                        &format!(
                            "papersim: {} from {}",
                            super::output::papers(page.papers.len()),
                            page.url
                        ),
                    );
                    fetched.push(page);
                    Ok(())
                })?;
                summary.requests = client.requests;
                deliver(g, common, fetched, &mut summary)?;
            } else {
                arxiv_into_library(g, common, &query, endpoint, &mut client, &mut summary)?;
            }
            print(common.format, &summary)
        }
    }
}

/// Ingests each page as it arrives and records where the fetch stands, so that a fetch that
/// stops (offline, killed) resumes at the next page when run again with the same options.
fn arxiv_into_library(
    g: &Global,
    common: &FetchArgs,
    query: &arxiv::Query,
    endpoint: &str,
    client: &mut Client,
    summary: &mut Summary,
) -> Result<()> {
    let dir = library_dir(g);
    let key = query.key();
    let start = if Library::exists(&dir) {
        fetch::load_cursor(&dir, &key)?.unwrap_or(0)
    } else {
        0
    };
    if start > 0 {
        summary.resumed_at = Some(start);
        note(
            g,
            &format!(
                "papersim: resuming a stopped fetch at result {start} ({})",
                dir.join(fetch::STATE_FILE).display()
            ),
        );
    }
    summary.mode = "ingest";
    arxiv::fetch(client, endpoint, query, start, |page, cursor| {
        note(
            g,
            &format!(
                "papersim: {} from {}",
                super::output::papers(page.papers.len()),
                page.url
            ),
        );
        summary.fetched += page.papers.len();
        if !page.papers.is_empty() {
            let report = ingest(g, common, vec![page.into_digest()?])?;
            add_report(summary, &report);
        }
        if Library::exists(&dir) {
            if cursor.done {
                fetch::clear_cursor(&dir)?;
            } else {
                fetch::save_cursor(&dir, &key, cursor.next_start)?;
            }
        }
        Ok(())
    })
    .map_err(|e| {
        let resume =
            Library::exists(&dir) && fetch::load_cursor(&dir, &key).ok().flatten().is_some();
        let e = anyhow::Error::from(e);
        if resume {
            e.context("the pages fetched so far are ingested; run the same command again to resume")
        } else {
            e
        }
    })?;
    summary.requests = client.requests;
    Ok(())
}

/// Ingests, writes or lists what was fetched, filling in `summary`.
fn deliver(
    g: &Global,
    common: &FetchArgs,
    fetched: Vec<Fetched>,
    summary: &mut Summary,
) -> Result<()> {
    summary.fetched = fetched.iter().map(|f| f.papers.len()).sum();
    summary.skipped = fetched.iter().flat_map(|f| f.skipped.clone()).collect();
    if let Some(path) = &common.output {
        summary.mode = "output";
        write_jsonl(path, &fetched)?;
        summary.output = Some(path.clone());
        return Ok(());
    }
    let digests = fetched
        .into_iter()
        .filter(|f| !f.papers.is_empty())
        .map(Fetched::into_digest)
        .collect::<papersim::Result<Vec<_>>>()?;
    if common.dry_run {
        summary.mode = "dry-run";
        return dry_run(g, &digests, summary);
    }
    summary.mode = "ingest";
    if !digests.is_empty() {
        let report = ingest(g, common, digests)?;
        add_report(summary, &report);
    }
    Ok(())
}

fn ingest(g: &Global, common: &FetchArgs, digests: Vec<Digest>) -> papersim::Result<IngestReport> {
    let bar = progress::Bar::new(g.quiet);
    papersim::pipeline::ingest(
        &library_dir(g),
        &digests,
        common.wait,
        None,
        None,
        |model| load_embedder(g, model, &bar),
        &bar,
    )
}

fn add_report(summary: &mut Summary, report: &IngestReport) {
    summary.added += report.added;
    summary.already_present += report.already_present;
    summary.upgraded += report.upgraded;
    summary.papers_total = Some(report.papers_total);
    summary
        .identity
        .extend(report.identity.iter().map(|n| n.to_string()));
}

/// What an ingest would add, planned against the library without changing it.
fn dry_run(g: &Global, digests: &[Digest], summary: &mut Summary) -> Result<()> {
    let dir = library_dir(g);
    let papers: Vec<_> = digests.iter().flat_map(|d| &d.papers).collect();
    if !Library::exists(&dir) {
        let mut seen = HashSet::new();
        for p in papers {
            if seen.insert(p.id()) {
                summary.new_papers.push(Listed {
                    id: p.id(),
                    title: p.title.clone(),
                    date: p.date.clone(),
                });
            }
        }
        summary.added = summary.new_papers.len();
        summary.already_present = summary.fetched - summary.added;
        return Ok(());
    }
    let lib = Library::open(&dir)?;
    let plan = lib.plan_ingest(digests)?;
    let report = plan.report();
    for n in plan.new_papers().iter().filter(|n| n.corrects.is_none()) {
        summary.new_papers.push(Listed {
            id: n.paper.id.clone(),
            title: n.paper.title.clone(),
            date: n.paper.date.clone(),
        });
    }
    summary.added = report.added;
    summary.already_present = report.already_present;
    summary.upgraded = report.upgraded;
    summary.papers_total = Some(lib.len());
    summary
        .identity
        .extend(report.identity.iter().map(|n| n.to_string()));
    Ok(())
}

/// Refuses an `-o` path where anything stands: papersim never replaces a file it did not
/// create.
fn refuse_existing(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        bail!(
            "{}: exists; `fetch -o` writes a new file only (remove it or name another)",
            path.display()
        );
    }
    Ok(())
}

/// The fetched papers as a JSONL digest (one paper a line, the fields `papersim ingest` reads,
/// and Hugging Face's upvotes), written to a new file only.
fn write_jsonl(path: &Path, fetched: &[Fetched]) -> Result<()> {
    refuse_existing(path)?;
    let mut bytes = Vec::new();
    for f in fetched {
        // The checks an ingest makes (sizes), so that the file ingests later.
        f.clone().into_digest()?;
        for (i, p) in f.papers.iter().enumerate() {
            let mut line = serde_json::json!({
                "id": p.arxiv_id,
                "title": p.title,
                "abstract": p.abstract_text,
                "date": p.date,
                "url": p.url,
                "authors": p.authors,
                "categories": p.categories,
            });
            if let Some(Some(n)) = f.upvotes.get(i) {
                line["upvotes"] = (*n).into();
            }
            serde_json::to_writer(&mut bytes, &line)?;
            bytes.push(b'\n');
        }
    }
    let exists = || match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(_) => Err(papersim::Error::Output {
            path: path.to_path_buf(),
            reason: "appeared while the fetch ran; `fetch -o` writes a new file only".into(),
        }),
    };
    papersim::directory::write_new_or_replace(path, &bytes, exists)?;
    Ok(())
}

fn print(format: InfoFormat, s: &Summary) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        InfoFormat::Json => {
            serde_json::to_writer_pretty(&mut out, s)?;
            writeln!(out)?;
        }
        InfoFormat::Table => {
            write!(
                out,
                "fetched {} from {} ({} request(s))",
                super::output::papers(s.fetched),
                if s.source == "hf" {
                    "Hugging Face daily papers"
                } else {
                    "arXiv"
                },
                s.requests
            )?;
            match s.mode {
                "output" => writeln!(
                    out,
                    ": written to {}",
                    s.output.as_deref().unwrap_or(Path::new("?")).display()
                )?,
                "dry-run" => {
                    writeln!(
                        out,
                        ": would add {}, {} already present, {} would take their arXiv id (dry run: nothing written)",
                        s.added, s.already_present, s.upgraded
                    )?;
                    for p in &s.new_papers {
                        writeln!(
                            out,
                            "  + {}  {}  {}",
                            p.id,
                            p.date.as_deref().unwrap_or("          "),
                            printable_lines(&p.title)
                        )?;
                    }
                }
                _ => match s.papers_total {
                    Some(total) => writeln!(
                        out,
                        ": {} added, {} already present, {} took their arXiv id; library now holds {}",
                        s.added,
                        s.already_present,
                        s.upgraded,
                        super::output::papers(total)
                    )?,
                    None => writeln!(out, ": nothing to add; the library is unchanged")?,
                },
            }
            for n in &s.identity {
                writeln!(out, "  {}", printable_lines(n))?;
            }
            for k in &s.skipped {
                writeln!(out, "  skipped: {}", printable_lines(k))?;
            }
        }
    }
    Ok(())
}

fn client(common: &FetchArgs, interval_ms: u64) -> Result<Client> {
    Ok(Client::new(fetch::settings(
        common.connect_timeout,
        common.read_timeout,
        common.retries,
        interval_ms,
    )?))
}

fn day_arg(name: &str, value: &Option<String>) -> Result<Option<NaiveDate>> {
    value
        .as_deref()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .with_context(|| format!("{name} `{d}` is not a date (YYYY-MM-DD)"))
        })
        .transpose()
}

fn check_endpoint(endpoint: &str) -> Result<()> {
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        bail!("--endpoint `{endpoint}` is not an http:// or https:// URL");
    }
    Ok(())
}

fn arxiv_query(
    categories: &[String],
    since: Option<NaiveDate>,
    max: usize,
    page_size: usize,
) -> Result<arxiv::Query> {
    if categories.len() > MAX_CATEGORIES {
        bail!(
            "{} categories given; at most {MAX_CATEGORIES} (arXiv's query string grows with each: fetch in several runs)",
            categories.len()
        );
    }
    for c in categories {
        let valid = !c.is_empty()
            && c.len() <= 32
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
        if !valid {
            bail!("--category `{c}` is not an arXiv category such as cs.CL, stat.ML or hep-th");
        }
    }
    if !(1..=fetch::MAX_ARXIV_PAPERS).contains(&max) {
        bail!(
            "--max {max} is out of range: 1 to {} (arXiv asks bulk harvesters to use OAI-PMH instead)",
            fetch::MAX_ARXIV_PAPERS
        );
    }
    if !(1..=arxiv::MAX_PAGE_SIZE).contains(&page_size) {
        bail!(
            "--page-size {page_size} is out of range: 1 to {} (the most arXiv returns in one request)",
            arxiv::MAX_PAGE_SIZE
        );
    }
    Ok(arxiv::Query {
        categories: categories.to_vec(),
        since,
        max,
        page_size,
    })
}
