//! `benchkit report`: a self-contained HTML report of the store, or one chart as SVG or PNG.
//!
//! ```text
//! benchkit report --store results.db --filter model=gemma3 -o report.html
//! benchkit report --store results.db --chart threads -o threads.png
//! ```

use std::path::{Path, PathBuf};

use clap::Parser;

use super::results::StoreArg;
use super::CliError;
use crate::report::Chart;
use crate::store::Filter;

fn parse_chart(s: &str) -> Result<Chart, String> {
    s.parse().map_err(|e: crate::report::ReportError| e.to_string())
}

/// `benchkit report`'s flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "benchkit report",
    about = "A self-contained HTML report of the store (inline SVG charts, opens offline), or one chart as SVG or PNG",
    after_help = "Charts (--chart): threads (bench t/s against n_threads), batch (against n_batch), commits \
                  (t/s per run by commit, 95% CI), latency-cdf (replay TTFT/ITL/E2EL CDFs), latency-rate \
                  (TTFT and ITL against request rate), throughput-latency (output tok/s against mean E2EL), \
                  placement (arms, median and 95% CI), energy (J/token). A chart without data is left out \
                  of the page with a note."
)]
pub struct ReportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// Only records where every `key=value` holds (`model=...`, `n_threads=2|4`, `commit!=abc`);
    /// repeatable.
    #[arg(long = "filter", value_name = "K=V[,K=V...]")]
    pub filter: Vec<String>,
    /// One chart instead of the page: threads, batch, commits, latency-cdf, latency-rate,
    /// throughput-latency, placement, energy. Written as SVG, or PNG when -o ends in .png.
    #[arg(long = "chart", value_name = "NAME", value_parser = parse_chart)]
    pub chart: Option<Chart>,
    /// The output file (`-`: stdout, HTML or SVG only).
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "report.html")]
    pub output: PathBuf,
    /// The page's title.
    #[arg(long = "title", default_value = "benchkit report")]
    pub title: String,
}

/// What `-o` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputKind {
    /// The HTML page.
    Html,
    /// One chart as SVG.
    Svg,
    /// One chart as PNG.
    Png,
}

fn is_ext(p: &Path, ext: &str) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// What `benchkit report` writes, and the charts the page left out.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rendered {
    /// The HTML page, SVG or PNG.
    pub bytes: Vec<u8>,
    /// Why each chart the page leaves out is left out (empty for a single chart).
    pub left_out: Vec<String>,
}

impl ReportArgs {
    /// Parses `argv`, the program name first.
    ///
    /// # Errors
    /// clap's error, for the caller to print (`e.exit()`).
    pub fn try_parse_argv(argv: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        Self::try_parse_from(argv)
    }

    /// The page, or the chart, of `entries` as `kind` (from [`ReportArgs::output_kind`]).
    ///
    /// # Errors
    /// [`ReportError::NoData`](crate::report::ReportError::NoData) when the one chart asked for
    /// has nothing to draw; drawing and PNG errors.
    pub fn render(
        &self,
        kind: OutputKind,
        entries: &[crate::store::Entry],
    ) -> Result<Rendered, crate::report::ReportError> {
        let chart = |c: Option<Chart>| c.ok_or_else(|| crate::report::ReportError::Svg("no --chart given".into()));
        Ok(match kind {
            OutputKind::Html => {
                let report = crate::report::Report::from_entries(entries, &self.options());
                let left_out =
                    report.charts.iter().filter_map(|(_, r)| r.as_ref().err().map(ToString::to_string)).collect();
                Rendered { bytes: report.html().into_bytes(), left_out }
            }
            OutputKind::Svg => Rendered {
                bytes: crate::report::chart_svg(chart(self.chart)?, entries)?.into_bytes(),
                left_out: Vec::new(),
            },
            OutputKind::Png => {
                let svg = crate::report::chart_svg(chart(self.chart)?, entries)?;
                Rendered { bytes: crate::report::svg_to_png(&svg)?, left_out: Vec::new() }
            }
        })
    }

    /// The filter of every `--filter`.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a filter that does not parse.
    pub fn filter(&self) -> Result<Filter, CliError> {
        super::results::filter(&self.filter)
    }

    /// What to write: the page without `--chart`, the chart as PNG for `-o *.png`, else SVG.
    ///
    /// # Errors
    /// [`CliError::Invalid`] for a page written to `.svg`/`.png`, or PNG to stdout.
    pub fn output_kind(&self) -> Result<OutputKind, CliError> {
        let o = &self.output;
        match self.chart {
            None if is_ext(o, "svg") || is_ext(o, "png") => {
                Err(CliError::invalid("-o", "an SVG or PNG file holds one chart: add --chart NAME"))
            }
            None => Ok(OutputKind::Html),
            Some(_) if is_ext(o, "png") => Ok(OutputKind::Png),
            Some(_) if is_ext(o, "html") || is_ext(o, "htm") => {
                Err(CliError::invalid("-o", "a single chart is written as .svg or .png"))
            }
            Some(_) => Ok(OutputKind::Svg),
        }
    }

    /// The page's options: the title, and the filters as its subtitle.
    pub fn options(&self) -> crate::report::ReportOptions {
        let mut o = crate::report::ReportOptions::default().title(self.title.clone());
        if !self.filter.is_empty() {
            o = o.subtitle(format!("filter: {}", self.filter.join(" and ")));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ReportArgs, clap::Error> {
        ReportArgs::try_parse_from(std::iter::once("benchkit report").chain(args.iter().copied()))
    }

    #[test]
    fn output_kinds_follow_chart_and_extension() {
        let a = parse(&["--store", "s.db"]).unwrap();
        assert_eq!(a.output_kind().unwrap(), OutputKind::Html);
        assert_eq!(a.output, PathBuf::from("report.html"));
        let a = parse(&["--chart", "threads", "-o", "t.PNG"]).unwrap();
        assert_eq!((a.chart, a.output_kind().unwrap()), (Some(Chart::Threads), OutputKind::Png));
        assert_eq!(parse(&["--chart", "energy", "-o", "e.svg"]).unwrap().output_kind().unwrap(), OutputKind::Svg);
        assert!(parse(&["-o", "x.png"]).unwrap().output_kind().is_err());
        assert!(parse(&["--chart", "energy", "-o", "x.html"]).unwrap().output_kind().is_err());
    }

    #[test]
    fn unknown_charts_and_bad_filters_are_errors() {
        let e = parse(&["--chart", "pie"]).unwrap_err().to_string();
        assert!(e.contains("latency-cdf"), "{e}");
        let a = parse(&["--filter", "model=a", "--filter", "n_threads=2|4"]).unwrap();
        assert!(a.filter().is_ok());
        assert_eq!(a.options().subtitle.as_deref(), Some("filter: model=a and n_threads=2|4"));
        assert!(parse(&["--filter", "nokey"]).unwrap().filter().is_err());
    }
}
