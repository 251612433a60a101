//! Reports of the results store: one self-contained HTML page (inline SVG charts, inline CSS,
//! no scripts, nothing fetched: it opens offline) and single charts as SVG or PNG.
//!
//! ```no_run
//! use benchkit::report::{Chart, Report, ReportOptions};
//! use benchkit::store::{Filter, Store};
//! let entries = Store::open_read_only("results.db")?.entries(&Filter::all())?;
//! std::fs::write("report.html", Report::from_entries(&entries, &ReportOptions::default()).html())?;
//! let svg = benchkit::report::chart_svg(Chart::Threads, &entries)?;
//! std::fs::write("threads.png", benchkit::report::svg_to_png(&svg)?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The chart families live in their own modules: [`bench`] (throughput against threads and
//! batch size, commit history), [`replay`] (latency CDFs, latency against request rate,
//! throughput against latency) and [`bars`] (placement arms, energy per token); `plot` draws
//! them and `html` assembles the page.

mod bars;
mod bench;
mod html;
mod plot;
mod replay;

use std::fmt;
use std::str::FromStr;

use crate::store::Entry;

pub use html::escape;

/// What can go wrong making a report or a chart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A chart name that is not one of [`Chart::ALL`].
    #[error("unknown chart {0:?}; charts: {names}", names = Chart::names().join(", "))]
    UnknownChart(String),
    /// The entries hold nothing the chart draws.
    #[error("{chart}: no data ({why})")]
    NoData {
        /// The chart.
        chart: Chart,
        /// What it needs.
        why: &'static str,
    },
    /// Plotting failed.
    #[error("drawing {chart}: {reason}")]
    Draw {
        /// The chart.
        chart: Chart,
        /// Why.
        reason: String,
    },
    /// The SVG could not be parsed for rasterising.
    #[error("cannot read the SVG: {0}")]
    Svg(String),
    /// PNG export needs a font for the charts' text and the system has none.
    #[error("no system fonts found for PNG export (install one, e.g. fonts-dejavu-core), or export SVG")]
    NoFonts,
    /// Rasterising or encoding the PNG failed.
    #[error("cannot write the PNG: {0}")]
    Png(String),
}

/// The charts a report has, in the page's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Chart {
    /// Bench t/s against `n_threads`, a series per test (and model).
    Threads,
    /// Bench t/s against `n_batch`.
    Batch,
    /// Bench t/s per run in `started_at` order, labelled by commit, with 95% CIs.
    Commits,
    /// Replay TTFT, ITL and E2EL cumulative distributions.
    LatencyCdf,
    /// Replay TTFT and ITL against the request rate.
    LatencyRate,
    /// Replay output throughput against mean end-to-end latency.
    ThroughputLatency,
    /// Placement arms' throughput with 95% CIs.
    Placement,
    /// Energy per token.
    Energy,
}

impl Chart {
    /// Every chart, in the report's order.
    pub const ALL: [Chart; 8] = [
        Chart::Threads,
        Chart::Batch,
        Chart::Commits,
        Chart::LatencyCdf,
        Chart::LatencyRate,
        Chart::ThroughputLatency,
        Chart::Placement,
        Chart::Energy,
    ];

    /// The name `--chart` takes.
    pub fn name(self) -> &'static str {
        match self {
            Chart::Threads => "threads",
            Chart::Batch => "batch",
            Chart::Commits => "commits",
            Chart::LatencyCdf => "latency-cdf",
            Chart::LatencyRate => "latency-rate",
            Chart::ThroughputLatency => "throughput-latency",
            Chart::Placement => "placement",
            Chart::Energy => "energy",
        }
    }

    /// Every chart's name.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|c| c.name()).collect()
    }

    /// The chart's heading.
    pub fn title(self) -> &'static str {
        match self {
            Chart::Threads => "Throughput against threads",
            Chart::Batch => "Throughput against batch size",
            Chart::Commits => "Throughput by commit",
            Chart::LatencyCdf => "Replay latency distributions",
            Chart::LatencyRate => "Replay latency against request rate",
            Chart::ThroughputLatency => "Replay throughput against latency",
            Chart::Placement => "Placement arms",
            Chart::Energy => "Energy per token",
        }
    }

    /// Its size in pixels for `panels` side by side: wide (two grid columns of the page) for
    /// several panels, and for the commit history, whose runs need the room.
    fn size(self, panels: usize) -> (u32, u32) {
        if panels > 1 || self == Chart::Commits {
            (WIDE, HEIGHT)
        } else {
            (NARROW, HEIGHT)
        }
    }
}

/// Chart widths: one grid column of the page, or both (with the gap between them).
const NARROW: u32 = 640;
const WIDE: u32 = 1300;
const HEIGHT: u32 = 420;

impl fmt::Display for Chart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Chart {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL.into_iter().find(|c| c.name() == s).ok_or(ReportError::UnknownChart(s))
    }
}

/// How a report is made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReportOptions {
    /// The page's title.
    pub title: String,
    /// What the entries were selected by (shown under the title), e.g. the filter.
    pub subtitle: Option<String>,
    /// The bootstrap's seed: the same store gives the same page.
    pub seed: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions { title: "benchkit report".into(), subtitle: None, seed: 0x5eed }
    }
}

impl ReportOptions {
    /// With a title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// With a subtitle.
    pub fn subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = Some(subtitle.into());
        self
    }
}

/// One run of the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// The run's id.
    pub run: i64,
    /// Its llama.cpp commit.
    pub commit: String,
    /// Its machine.
    pub machine: String,
    /// `bench`, `replay`, ...
    pub kind: String,
    /// When it started.
    pub started_at: String,
    /// Records of it among the entries.
    pub records: usize,
}

/// One drawn chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The standalone SVG document.
    pub svg: String,
    /// Its width and height in pixels (the PNG's size).
    pub size: (u32, u32),
}

impl Figure {
    /// Whether it takes both columns of the page.
    pub fn is_wide(&self) -> bool {
        self.size.0 > NARROW
    }
}

/// A rendered report: each chart's SVG or why it is left out, and the runs.
#[derive(Debug)]
pub struct Report {
    /// The options it was made with.
    pub options: ReportOptions,
    /// Every chart in order: its figure, or why there is none.
    pub charts: Vec<(Chart, Result<Figure, ReportError>)>,
    /// The runs of the entries, in `started_at` order.
    pub runs: Vec<RunRow>,
}

impl Report {
    /// Draws every chart of `entries`; charts without data keep their reason.
    pub fn from_entries(entries: &[Entry], options: &ReportOptions) -> Report {
        let charts = Chart::ALL.into_iter().map(|c| (c, render(c, entries, options.seed))).collect();
        let mut runs: Vec<RunRow> = Vec::new();
        for e in entries {
            match runs.iter_mut().find(|r| r.run == e.run.id.0) {
                Some(r) => r.records += 1,
                None => runs.push(RunRow {
                    run: e.run.id.0,
                    commit: e.run.meta.build_commit.clone(),
                    machine: e.run.meta.machine.clone(),
                    kind: e.run.meta.kind.clone(),
                    started_at: e.run.meta.started_at.clone(),
                    records: 1,
                }),
            }
        }
        runs.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.run.cmp(&b.run)));
        Report { options: options.clone(), charts, runs }
    }

    /// The page: self-contained HTML5 (inline CSS and SVG, no scripts, no external
    /// references), every text escaped.
    pub fn html(&self) -> String {
        html::page(self)
    }
}

/// One chart of `entries` as a standalone SVG document.
///
/// # Errors
/// [`ReportError::NoData`] when the entries have nothing it draws, [`ReportError::Draw`].
pub fn chart_svg(chart: Chart, entries: &[Entry]) -> Result<String, ReportError> {
    chart_figure(chart, entries).map(|f| f.svg)
}

/// One chart of `entries` with its size.
///
/// # Errors
/// As [`chart_svg`].
pub fn chart_figure(chart: Chart, entries: &[Entry]) -> Result<Figure, ReportError> {
    render(chart, entries, ReportOptions::default().seed)
}

fn render(chart: Chart, entries: &[Entry], seed: u64) -> Result<Figure, ReportError> {
    let panels = match chart {
        Chart::Threads => bench::threads(entries, seed),
        Chart::Batch => bench::batch(entries, seed),
        Chart::Commits => bench::commits(entries, seed),
        Chart::LatencyCdf => replay::latency_cdf(entries),
        Chart::LatencyRate => replay::latency_rate(entries, seed),
        Chart::ThroughputLatency => replay::throughput_latency(entries),
        Chart::Placement => bars::placement(entries, seed),
        Chart::Energy => bars::energy(entries, seed),
    }
    .ok_or(ReportError::NoData { chart, why: no_data(chart) })?;
    let size = chart.size(panels.len());
    let svg = plot::svg(size, &panels).map_err(|reason| ReportError::Draw { chart, reason })?;
    Ok(Figure { svg, size })
}

fn no_data(chart: Chart) -> &'static str {
    match chart {
        Chart::Threads => "no bench records with a ts metric at two or more n_threads values",
        Chart::Batch => "no bench records with a ts metric at two or more n_batch values",
        Chart::Commits => "no bench records with a ts metric",
        Chart::LatencyCdf => "no replay records with latency percentiles or samples",
        Chart::LatencyRate => "no replay records with a finite request_rate and ttft or itl",
        Chart::ThroughputLatency => "no replay records with output_throughput and e2el or ttft",
        Chart::Placement => "no placement records",
        Chart::Energy => "no records with a j_per_token metric",
    }
}

/// Rasterises an SVG (as [`chart_svg`] writes it) to PNG at its own size, with the system's
/// fonts for its text.
///
/// # Errors
/// [`ReportError::NoFonts`] when the system has no fonts, [`ReportError::Svg`] for a document
/// that does not parse, [`ReportError::Png`] when rendering or encoding fails.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, ReportError> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    if db.is_empty() {
        return Err(ReportError::NoFonts);
    }
    // The charts ask for `sans-serif`, which fontdb maps to Arial by default: map it to a
    // sans face this system has, so the text is drawn rather than dropped.
    let families: Vec<String> = db.faces().flat_map(|f| f.families.iter().map(|(n, _)| n.clone())).collect();
    let pick = ["DejaVu Sans", "Liberation Sans", "Arial", "Noto Sans", "FreeSans"]
        .into_iter()
        .find(|want| families.iter().any(|f| f == want))
        .map(str::to_string)
        .or_else(|| families.iter().find(|f| f.contains("Sans") && !f.contains("Mono")).cloned())
        .or_else(|| families.first().cloned());
    if let Some(family) = pick {
        db.set_sans_serif_family(family.clone());
        opt.font_family = family;
    }
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| ReportError::Svg(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| ReportError::Png(format!("bad size {}x{}", size.width(), size.height())))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| ReportError::Png(e.to_string()))
}

/// A decoded PNG: what [`svg_to_png`] wrote, or a screenshot of the page, for checking what
/// was drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA, 4 bytes a pixel, row by row (colours premultiplied by alpha: opaque images are
    /// unchanged).
    pub rgba: Vec<u8>,
}

impl Raster {
    /// Decodes a PNG.
    ///
    /// # Errors
    /// [`ReportError::Png`] for bytes that are not a PNG it reads.
    pub fn from_png(png: &[u8]) -> Result<Raster, ReportError> {
        let p = resvg::tiny_skia::Pixmap::decode_png(png).map_err(|e| ReportError::Png(e.to_string()))?;
        Ok(Raster { width: p.width(), height: p.height(), rgba: p.data().to_vec() })
    }

    /// The pixel at (x, y) as RGB; `None` outside.
    pub fn rgb(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = 4 * (y as usize * self.width as usize + x as usize);
        Some([self.rgba[i], self.rgba[i + 1], self.rgba[i + 2]])
    }
}

/// The series colours charts use, in order, as RGB.
pub fn palette() -> Vec<[u8; 3]> {
    plot::PALETTE.iter().map(|c| [c.0, c.1, c.2]).collect()
}

/// The 95% bootstrap interval of the mean of `values`; none for fewer than two.
fn mean_ci(values: &[f64], seed: u64) -> Option<[f64; 2]> {
    // Resampling a few thousand values ten thousand times is slow and changes nothing visible.
    const MAX: usize = 2000;
    if values.len() < 2 {
        return None;
    }
    let step = values.len().div_ceil(MAX);
    let thinned: Vec<f64> = values.iter().step_by(step).copied().collect();
    crate::stats::bootstrap_mean_ci(&thinned, seed)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// A parameter as a finite number.
fn num_param(e: &Entry, key: &str) -> Option<f64> {
    e.record.params.get(key)?.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A metric's values: its raw samples, or its mean alone.
fn metric_values(e: &Entry, metric: &str) -> Option<Vec<f64>> {
    let m = e.record.metrics.get(metric)?;
    let v: Vec<f64> = if m.samples.is_empty() { m.mean.into_iter().collect() } else { m.samples.clone() };
    let v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests;
