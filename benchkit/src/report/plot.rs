//! Drawing: line and point series with error bars, and bar charts, on plotters' SVG backend.
//! The chart modules only say what to draw (panels of series); everything visual is here, so
//! every chart looks alike.

use plotters::coord::Shift;
use plotters::prelude::*;

/// Series colours, distinct at a glance (and in the screenshot test).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// Bars' error bars: dark, and not the axes' black, so they are told apart.
pub(crate) const WHISKER: [u8; 3] = [60, 60, 60];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// One point; `ci` is drawn as an error bar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
    pub ci: Option<[f64; 2]>,
}

impl Point {
    pub fn new(x: f64, y: f64, ci: Option<[f64; 2]>) -> Self {
        Point { x, y, ci }
    }
}

/// A named series; `line` joins its points (in x order), otherwise they are markers only.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub name: String,
    pub points: Vec<Point>,
    pub line: bool,
    /// Dashed: a second statistic of another series (p99 next to the mean).
    pub dashed: bool,
}

impl Series {
    pub fn line(name: impl Into<String>, mut points: Vec<Point>) -> Self {
        points.sort_by(|a, b| a.x.total_cmp(&b.x));
        Series { name: name.into(), points, line: true, dashed: false }
    }
}

/// The x axis.
#[derive(Debug, Clone)]
pub(crate) enum XAxis {
    Linear,
    /// Whole numbers (thread counts): ticks only at integers, labelled without decimals.
    Integer,
    /// Powers of two apart (batch sizes): drawn at log2(x), labelled with x.
    Log2,
    /// Points at 0, 1, 2, ... with these labels.
    Categories(Vec<String>),
}

/// What a panel draws.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Lines(Vec<Series>),
    /// Bars (category index on a [`XAxis::Categories`] axis, value, ci, colour index) and the
    /// legend's names by colour index.
    Bars {
        bars: Vec<(usize, f64, Option<[f64; 2]>, usize)>,
        legend: Vec<String>,
    },
}

/// One plot area.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x: XAxis,
    /// Fixed y range (a CDF's 0-100); otherwise from 0 (or the data's minimum) to the top.
    pub y_range: Option<(f64, f64)>,
    pub body: Body,
}

/// The panels side by side in one SVG document of `size`.
pub(crate) fn svg(size: (u32, u32), panels: &[Panel]) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (p, area) in panels.iter().zip(&areas) {
            draw(area, p).map_err(|e| format!("{}: {e}", p.title))?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn tx(axis: &XAxis, x: f64) -> f64 {
    match axis {
        XAxis::Log2 => x.max(f64::MIN_POSITIVE).log2(),
        _ => x,
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if (hi - lo).abs() < 1e-12 {
        let d = if lo.abs() > 1e-12 { lo.abs() * 0.1 } else { 1.0 };
        (lo - d, hi + d)
    } else {
        let d = (hi - lo) * 0.06;
        (lo - d, hi + d)
    }
}

fn ranges(p: &Panel) -> ((f64, f64), (f64, f64)) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    match &p.body {
        Body::Lines(series) => {
            for pt in series.iter().flat_map(|s| &s.points) {
                xs.push(tx(&p.x, pt.x));
                ys.push(pt.y);
                ys.extend(pt.ci.iter().flatten());
            }
        }
        Body::Bars { bars, .. } => {
            for (_, v, ci, _) in bars {
                ys.push(*v);
                ys.extend(ci.iter().flatten());
            }
        }
    }
    let x = match &p.x {
        XAxis::Categories(l) => (-0.6, l.len().max(1) as f64 - 0.4),
        _ => {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() {
                padded(lo, hi)
            } else {
                (0.0, 1.0)
            }
        }
    };
    let y = p.y_range.unwrap_or_else(|| {
        let lo = ys.iter().copied().fold(0.0, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if hi.is_finite() && hi > lo {
            (lo, hi + (hi - lo) * headroom(p))
        } else {
            (lo, lo + 1.0)
        }
    });
    (x, y)
}

/// Room above the data, as a fraction of its span: a bar chart's legend sits above the bars,
/// so it gets a band of its own (about a tenth of the plot per legend line).
fn headroom(p: &Panel) -> f64 {
    match &p.body {
        Body::Bars { legend, .. } if legend.iter().any(|n| !n.is_empty()) => {
            let band = (0.06 + 0.075 * legend.len() as f64).min(0.6);
            // The data then fills 1 - band of the axis.
            band / (1.0 - band)
        }
        _ => 0.12,
    }
}

/// The legend's corner for line charts: the one whose legend-sized box covers the fewest
/// drawn points (lines sampled between their points), so the legend hides as little as it can.
pub(super) fn legend_corner(p: &Panel, x: (f64, f64), y: (f64, f64), plot_px: (u32, u32)) -> SeriesLabelPosition {
    let Body::Lines(series) = &p.body else { return SeriesLabelPosition::UpperRight };
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).filter(|n| !n.is_empty()).collect();
    // Legend size in plot fractions: about 7 px a character plus the swatch, 17 px a line.
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as f64;
    let w = ((longest * 7.0 + 50.0) / f64::from(plot_px.0.max(1))).min(1.0);
    let h = ((names.len() as f64 * 17.0 + 16.0) / f64::from(plot_px.1.max(1))).min(1.0);
    let mut pts: Vec<(f64, f64)> = Vec::new();
    for s in series {
        let norm: Vec<(f64, f64)> =
            s.points.iter().map(|pt| ((tx(&p.x, pt.x) - x.0) / (x.1 - x.0), (pt.y - y.0) / (y.1 - y.0))).collect();
        pts.extend(&norm);
        if s.line {
            for ab in norm.windows(2) {
                pts.extend((1..8).map(|k| {
                    let t = f64::from(k) / 8.0;
                    (ab[0].0 + (ab[1].0 - ab[0].0) * t, ab[0].1 + (ab[1].1 - ab[0].1) * t)
                }));
            }
        }
    }
    let covered = |left: bool, top: bool| {
        pts.iter()
            .filter(|(px, py)| {
                let in_x = if left { *px <= w } else { *px >= 1.0 - w };
                let in_y = if top { *py >= 1.0 - h } else { *py <= h };
                in_x && in_y
            })
            .count()
    };
    [
        (SeriesLabelPosition::UpperLeft, true, true),
        (SeriesLabelPosition::UpperRight, false, true),
        (SeriesLabelPosition::LowerRight, false, false),
        (SeriesLabelPosition::LowerLeft, true, false),
    ]
    .into_iter()
    .min_by_key(|(_, left, top)| covered(*left, *top))
    .map_or(SeriesLabelPosition::UpperLeft, |c| c.0)
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    // Ticks at whole values read as such: 20, not 20.0.
    if a >= 100.0 || a == 0.0 || (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let ((x0, x1), (y0, y1)) = ranges(p);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 21))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let axis = p.x.clone();
    let x_fmt = move |v: &f64| match &axis {
        XAxis::Linear => fmt_num(*v),
        XAxis::Integer => {
            let r = v.round();
            if (v - r).abs() < 1e-6 {
                format!("{r:.0}")
            } else {
                String::new()
            }
        }
        XAxis::Log2 => {
            let r = v.round();
            if (v - r).abs() < 1e-6 {
                format!("{}", 2f64.powf(r))
            } else {
                String::new()
            }
        }
        XAxis::Categories(labels) => {
            let r = v.round();
            if (v - r).abs() < 1e-6 && r >= 0.0 {
                labels.get(r as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
    };
    // Plotters picks at most this many ticks at round steps: the number of whole values in
    // the range makes the step 1 (every category, every power of two) where they fit.
    let n_x_labels = match &p.x {
        XAxis::Categories(l) => l.len().clamp(1, 24),
        XAxis::Log2 | XAxis::Integer => ((x1 - x0).ceil() as usize + 1).clamp(2, 16),
        XAxis::Linear => 8,
    };
    let plot_px = chart.plotting_area().dim_in_pixel();
    chart
        .configure_mesh()
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .x_labels(n_x_labels)
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| fmt_num(*v))
        // One grid line a tick: the finer ones added clutter, and size to the screenshot.
        .max_light_lines(0)
        .bold_line_style(RGBColor(215, 215, 215))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;
    let mut legend = false;
    match &p.body {
        Body::Lines(series) => {
            for (i, s) in series.iter().enumerate() {
                let c = color(i);
                let pts: Vec<(f64, f64)> = s.points.iter().map(|pt| (tx(&p.x, pt.x), pt.y)).collect();
                let style = ShapeStyle { color: c.to_rgba(), filled: false, stroke_width: 2 };
                let anno = if s.line && s.dashed {
                    chart.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))?
                } else if s.line {
                    chart.draw_series(LineSeries::new(pts.clone(), style))?
                } else {
                    chart.draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?
                };
                if !s.name.is_empty() {
                    legend = true;
                    anno.label(&s.name).legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (18, 0)], c.stroke_width(2))
                            + Circle::new((9, 0), 3, c.filled())
                    });
                }
                // Markers where points are few; a CDF of hundreds is a line.
                if pts.len() <= 40 || !s.line {
                    chart.draw_series(pts.iter().map(|&xy| Circle::new(xy, 3, c.filled())))?;
                }
                for (pt, &(x, _)) in s.points.iter().zip(&pts) {
                    if let Some([lo, hi]) = pt.ci {
                        error_bar(&mut chart, x, lo, hi, c)?;
                    }
                }
            }
        }
        Body::Bars { bars, legend: names } => {
            for (ci, name) in names.iter().enumerate() {
                let c = color(ci);
                let rects = bars
                    .iter()
                    .filter(|b| b.3 == ci)
                    .map(|&(i, v, _, _)| Rectangle::new([(i as f64 - 0.32, 0.0), (i as f64 + 0.32, v)], c.filled()));
                let anno = chart.draw_series(rects)?;
                if !name.is_empty() {
                    legend = true;
                    anno.label(name).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
                }
            }
            for &(i, _, ci, _) in bars {
                if let Some([lo, hi]) = ci {
                    error_bar(&mut chart, i as f64, lo, hi, RGBColor(WHISKER[0], WHISKER[1], WHISKER[2]))?;
                }
            }
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(legend_corner(p, (x0, x1), (y0, y1), plot_px))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font(("sans-serif", 15))
            .draw()?;
    }
    Ok(())
}

fn error_bar<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    x: f64,
    lo: f64,
    hi: f64,
    c: RGBColor,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = c.stroke_width(1);
    chart.draw_series(std::iter::once(PathElement::new(vec![(x, lo), (x, hi)], style)))?;
    for y in [lo, hi] {
        chart
            .draw_series(std::iter::once(EmptyElement::at((x, y)) + PathElement::new(vec![(-5, 0), (5, 0)], style)))?;
    }
    Ok(())
}
