//! `papersim bench`: encoding throughput, latency and agreement per device, dtype and batch
//! size, printed as a table or JSON and drawn as an SVG chart. The measuring is
//! [`papersim::bench`]'s; this file parses the flags and renders the report.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use plotters::prelude::*;

use papersim::encode::device::{DeviceRequest, Precision};
use papersim::encode::speed::{BenchConfig, BenchReport, BenchTexts, Run};

use super::{printable_lines, progress, Global};

#[derive(ClapArgs, Debug, Clone)]
pub struct BenchArgs {
    /// Devices, comma-separated: cpu, cuda, cuda:N. A device this build or machine cannot use
    /// is reported with the reason, never replaced.
    #[arg(long, default_value = "cpu,cuda", value_delimiter = ',')]
    devices: Vec<String>,
    /// Texts per batch, comma-separated.
    #[arg(long, default_value = "1,8,32,128", value_delimiter = ',')]
    batch_sizes: Vec<usize>,
    /// Precisions, comma-separated: f32, f16, bf16 (half precision runs on CUDA only).
    #[arg(long, default_value = "f32,f16,bf16", value_delimiter = ',')]
    dtypes: Vec<String>,
    /// A digest (any format papersim reads) or a text file of one text per line
    /// [default: the bundled sample digest, 79 papers].
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Number of texts to encode: the texts are repeated (or cut) to this count.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Untimed warm-up batches before each batch size's timed batches.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed passes over all texts for each batch size.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Distinct texts whose vectors are compared (each is also embedded alone on every run).
    #[arg(long, default_value_t = 256)]
    agreement_texts: usize,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    format: BenchFormat,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw throughput against batch size, one line per device and dtype, into this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the encoded texts, one JSON string per line, for other encoders to run the same.
    #[arg(long)]
    save_texts: Option<PathBuf>,
    /// Render a saved JSON report (table, --json, --plot) instead of running: e.g. the report
    /// of a GPU machine, drawn here.
    #[arg(long, conflicts_with_all = ["texts", "save_texts"])]
    report: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BenchFormat {
    Table,
    Json,
}

pub fn bench(g: &Global, args: &BenchArgs) -> Result<()> {
    let report = match &args.report {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            serde_json::from_str::<BenchReport>(&text)
                .with_context(|| format!("{}: not a papersim bench report", path.display()))?
        }
        None => measure(g, args)?,
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        papersim::directory::write_report(path, (text + "\n").as_bytes())?;
    }
    if let Some(path) = &args.plot {
        plot(&report, path)?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        BenchFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        BenchFormat::Table => {
            // A report read back (--report) is a file like any other: its names are shown
            // escaped, never as terminal controls.
            let mut text = Vec::new();
            table(&mut text, &report)?;
            out.write_all(printable_lines(&String::from_utf8_lossy(&text)).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Runs the benchmark the flags describe.
fn measure(g: &Global, args: &BenchArgs) -> Result<BenchReport> {
    let config = BenchConfig {
        model: g
            .model
            .clone()
            .unwrap_or_else(|| papersim::encode::model::DEFAULT_MODEL.to_string()),
        devices: parse_list::<DeviceRequest>(&args.devices, "--devices")?,
        precisions: parse_list::<Precision>(&args.dtypes, "--dtypes")?,
        batch_sizes: args.batch_sizes.clone(),
        warmup: args.warmup,
        repeat: args.repeat,
        agreement_texts: args.agreement_texts,
        ..BenchConfig::default()
    };
    papersim::encode::speed::validate(&config)?;
    let texts = match &args.texts {
        Some(path) => BenchTexts::from_path(path, args.limit)?,
        None => BenchTexts::sample(args.limit)?,
    };
    if let Some(path) = &args.save_texts {
        let mut out = Vec::new();
        for t in texts.all() {
            serde_json::to_writer(&mut out, t)?;
            out.push(b'\n');
        }
        papersim::directory::write_report(path, &out)?;
    }
    if !g.quiet && cfg!(debug_assertions) {
        eprintln!("papersim: warning: this is a debug build; its figures are not meaningful (use --release)");
    }
    let bar = progress::Bar::new(g.quiet);
    Ok(papersim::encode::speed::run(&config, &texts, &bar)?)
}

fn parse_list<T>(items: &[String], flag: &str) -> Result<Vec<T>>
where
    T: std::str::FromStr<Err = papersim::Error> + PartialEq,
{
    let mut out: Vec<T> = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let v = item
            .parse::<T>()
            .with_context(|| format!("{flag}: `{item}`"))?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        bail!("{flag} is empty");
    }
    Ok(out)
}

/// 1 − cosine in a short scientific form; exact zero stays `0`.
fn sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:.1e}")
    }
}

fn table(out: &mut impl Write, r: &BenchReport) -> Result<()> {
    let m = &r.machine;
    let features = if m.build.features.is_empty() {
        "none".to_string()
    } else {
        m.build.features.join(",")
    };
    writeln!(
        out,
        "model    {} (dimension {}, max {} tokens, weights {})",
        r.model.id, r.model.dim, r.model.max_seq_length, r.model.weights_dtype
    )?;
    let load = m
        .load_average
        .map(|l| format!(", load average {l:.2}"))
        .unwrap_or_default();
    writeln!(
        out,
        "machine  {}, {} threads ({} logical cores{load}), {} {}; {} build, features: {}",
        m.cpu_model, m.cpu_threads, m.logical_cores, m.os, m.arch, m.build.profile, features
    )?;
    for gpu in &m.gpus {
        writeln!(out, "gpu      {}: {}", gpu.device, gpu.name)?;
    }
    writeln!(
        out,
        "texts    {} texts ({} distinct, {} from {}), mean {:.1} tokens, max {}, {} truncated",
        r.texts.count,
        r.texts.distinct,
        r.texts.kind,
        r.texts.source,
        r.texts.mean_tokens,
        r.texts.max_tokens,
        r.texts.truncated
    )?;
    writeln!(
        out,
        "timing   {} warm-up batches, then {} timed pass(es) per batch size; a timed batch is tokenise + forward + vectors back on the host",
        r.settings.warmup_batches, r.settings.repeat
    )?;
    for run in r.runs.iter().filter(|run| run.status == "ok") {
        writeln!(
            out,
            "load     {} {}: device start {:.3} s, model load {:.3} s (not in the rates)",
            run.device,
            run.dtype,
            run.device_init_s.unwrap_or(0.0),
            run.load_s.unwrap_or(0.0)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<8} {:<5} {:>5} {:>9} {:>10} {:>7} {:>9} {:>9}  {:>17}  {:>17}",
        "device",
        "dtype",
        "batch",
        "texts/s",
        "tokens/s",
        "padded",
        "p50 ms",
        "p95 ms",
        "1-cos vs cpu f32",
        "batched vs single"
    )?;
    for run in &r.runs {
        if run.status != "ok" {
            writeln!(
                out,
                "{:<8} {:<5} {}: {}",
                run.device,
                run.dtype,
                run.status,
                run.reason.as_deref().unwrap_or("")
            )?;
            continue;
        }
        for b in &run.results {
            writeln!(
                out,
                "{:<8} {:<5} {:>5} {:>9.1} {:>10.0} {:>6.1}% {:>9.1} {:>9.1}  {:>17}  {:>17}",
                run.device,
                run.dtype,
                b.batch_size,
                b.texts_per_s,
                b.real_tokens_per_s,
                b.padded_share * 100.0,
                b.latency_ms.p50,
                b.latency_ms.p95,
                format!("{} / {}", sci(b.vs_cpu_f32.mean), sci(b.vs_cpu_f32.max)),
                format!(
                    "{} / {}",
                    sci(b.batched_vs_single.mean),
                    sci(b.batched_vs_single.max)
                ),
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "agreement: 1 - cosine, mean / max; reference: {}",
        r.reference
    )?;
    for run in r.runs.iter().filter(|run| run.status == "ok") {
        if let (Some(a), Some(b)) = (run.vs_cpu_f32, run.batched_vs_single) {
            writeln!(
                out,
                "  {} {}: one at a time vs cpu f32 {} / {}; batched vs one at a time {} / {} ({} vectors)",
                run.device,
                run.dtype,
                sci(a.mean),
                sci(a.max),
                sci(b.mean),
                sci(b.max),
                b.compared
            )?;
        }
    }
    Ok(())
}

/// Throughput (texts/s, log scale) against batch size (log scale), one line per run.
fn plot(r: &BenchReport, path: &Path) -> Result<()> {
    let runs: Vec<&Run> = r
        .runs
        .iter()
        .filter(|run| run.status == "ok" && !run.results.is_empty())
        .collect();
    let points = runs.iter().flat_map(|run| run.results.iter());
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    let (mut bmin, mut bmax) = (usize::MAX, 1usize);
    for b in points {
        lo = lo.min(b.texts_per_s);
        hi = hi.max(b.texts_per_s);
        bmin = bmin.min(b.batch_size);
        bmax = bmax.max(b.batch_size);
    }
    if runs.is_empty() || !lo.is_finite() || hi <= 0.0 {
        return nothing_ran(r, path);
    }
    // Whole decades on the y axis, so that it always carries labels; the x axis is log2 of the
    // batch size on a linear scale, so that its ticks fall on the powers of two.
    let lo = 10f64.powf(lo.max(1e-3).log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    let (xmin, xmax) = ((bmin as f64).log2() - 0.3, (bmax as f64).log2() + 0.3);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 580)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        // The chart above, a line naming the runs that did not run below.
        let (upper, lower) = root.split_vertically(555);
        let title = format!(
            "papersim encoding throughput: {} texts, {}",
            r.texts.count, r.model.id
        );
        let mut chart = ChartBuilder::on(&upper)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(xmin..xmax, (lo..hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("batch size (texts)")
            .y_desc("texts per second")
            .x_labels(((xmax - xmin).ceil() as usize + 1).max(2))
            .x_label_formatter(&|x| format!("{:.0}", 2f64.powf(*x)))
            .y_label_formatter(&|y| format!("{y}"))
            .light_line_style(WHITE)
            .draw()
            .map_err(plot_err)?;
        for (i, run) in runs.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let series: Vec<(f64, f64)> = run
                .results
                .iter()
                .map(|b| ((b.batch_size as f64).log2(), b.texts_per_s))
                .collect();
            chart
                .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
                .map_err(plot_err)?
                .label(format!("{} {}", run.device, run.dtype))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    series
                        .into_iter()
                        .map(|p| Circle::new(p, 4, color.filled())),
                )
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        let skipped: Vec<String> = r
            .runs
            .iter()
            .filter(|run| run.status != "ok")
            .map(|run| format!("{} {}", run.device, run.dtype))
            .collect();
        if !skipped.is_empty() {
            lower
                .draw_text(
                    &format!("not run (see the report for why): {}", skipped.join(", ")),
                    &("sans-serif", 12).into_font().color(&BLACK),
                    (90, 6),
                )
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    papersim::directory::write_report(path, svg.as_bytes())?;
    Ok(())
}

/// A chart that says why there is no line to draw, so `--plot` always leaves its file.
fn nothing_ran(r: &BenchReport, path: &Path) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 200)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let font = ("sans-serif", 14).into_font().color(&BLACK);
        root.draw_text("papersim bench: no device and dtype ran", &font, (20, 20))
            .map_err(plot_err)?;
        for (i, run) in r.runs.iter().enumerate() {
            let line = format!(
                "{} {}: {}: {}",
                run.device,
                run.dtype,
                run.status,
                run.reason.as_deref().unwrap_or("")
            );
            root.draw_text(
                &line,
                &("sans-serif", 11).into_font().color(&BLACK),
                (20, 50 + 18 * i as i32),
            )
            .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    papersim::directory::write_report(path, svg.as_bytes())?;
    Ok(())
}

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e}")
}
