use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::store::{Metric, Run, RunId, RunMeta, StoredRecord};

fn run(id: i64, kind: &str, commit: &str, started_at: &str) -> Arc<Run> {
    Arc::new(Run {
        id: RunId(id),
        stored_at: started_at.into(),
        n_records: 0,
        meta: RunMeta {
            kind: kind.into(),
            source: "benchkit".into(),
            label: None,
            started_at: started_at.into(),
            benchkit_version: Some("0.1.0".into()),
            build_commit: commit.into(),
            build_number: 1,
            machine: "Test CPU <8 cores> & co".into(),
            host: None,
            status: "ok".into(),
            error: None,
            provenance: serde_json::Value::Null,
        },
    })
}

fn record(kind: &str, name: &str, params: &[(&str, &str)], metrics: Vec<(&str, Metric)>) -> StoredRecord {
    StoredRecord::new(kind, name, "gemma3 270M Q4_K - Medium", params.iter().copied(), metrics)
}

fn entry(id: i64, run: &Arc<Run>, record: StoredRecord) -> Entry {
    Entry { id, seq: id, run: run.clone(), record }
}

fn ts(base: f64) -> Metric {
    Metric::from_samples("t/s", true, vec![base, base * 1.02, base * 0.98, base * 1.01])
}

/// Bench over threads and batch sizes at three commits, replays at three rates, placement
/// arms, energy.
fn sample() -> Vec<Entry> {
    let mut out = Vec::new();
    let mut id = 0;
    let mut push = |run: &Arc<Run>, r: StoredRecord| {
        id += 1;
        out.push(entry(id, run, r));
    };
    for (i, commit) in ["aaaaaaa1111", "bbbbbbb2222", "ccccccc3333"].iter().enumerate() {
        let r = run(i as i64 + 1, "bench", commit, &format!("2026-01-0{}T00:00:00Z", i + 1));
        for test in ["pp512", "tg128"] {
            let base = if test == "pp512" { 500.0 } else { 50.0 } * (1.0 + i as f64 * 0.1);
            for t in ["1", "2"] {
                let f = if t == "2" { 1.8 } else { 1.0 };
                let mut rec =
                    record("bench", test, &[("n_threads", t), ("n_batch", "2048")], vec![("ts", ts(base * f))]);
                rec.metrics.insert("j_per_token".into(), Metric::summary("J/token", false, 0.5 / f, None, 1));
                push(&r, rec);
            }
            for b in ["256", "512"] {
                let f: f64 = b.parse::<f64>().unwrap() / 2048.0;
                push(
                    &r,
                    record("bench", test, &[("n_threads", "2"), ("n_batch", b)], vec![("ts", ts(base * (1.0 + f)))]),
                );
            }
        }
    }
    let rr = run(10, "replay", "ccccccc3333", "2026-01-04T00:00:00Z");
    for (i, rate) in ["1", "2", "4"].iter().enumerate() {
        let k = 1.0 + i as f64;
        let mut rec = record(
            "replay",
            "replay",
            &[("request_rate", rate), ("backend", "inproc")],
            vec![
                ("ttft", Metric::from_samples("ms", false, (1..=50).map(|j| 10.0 * k + j as f64).collect())),
                ("itl", Metric::summary("ms", false, 5.0 * k, None, 50)),
                ("e2el", Metric::summary("ms", false, 200.0 * k, None, 50)),
                ("output_throughput", Metric::summary("tok/s", true, 100.0 * k, None, 50)),
            ],
        );
        rec.result = serde_json::json!({
            "percentiles_itl_ms": [[50.0, 4.0 * k], [90.0, 6.0 * k], [99.0, 9.0 * k]],
            "percentiles_e2el_ms": [[50.0, 180.0 * k], [99.0, 300.0 * k]],
        });
        push(&rr, rec);
    }
    let pr = run(11, "placement", "ccccccc3333", "2026-01-05T00:00:00Z");
    for (arm, f) in [("default", 1.0), ("pinned", 1.1)] {
        push(
            &pr,
            record(
                "placement",
                "pp512",
                &[("arm", arm), ("baseline", "default")],
                vec![("ts", Metric::from_samples("t/s", true, vec![400.0 * f, 410.0 * f, 395.0 * f]))],
            ),
        );
    }
    out
}

fn assert_svg(svg: &str, labels: &[&str]) {
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..svg.len().min(200)]);
    for l in labels {
        assert!(svg.contains(l), "no {l:?} in the SVG");
    }
    // Every drawn chart parses as SVG.
    let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default());
    assert!(tree.is_ok(), "{:?}", tree.err());
}

#[test]
fn every_chart_renders_svg_with_its_labels() {
    let e = sample();
    let cases: [(Chart, &[&str]); 8] = [
        (Chart::Threads, &["pp512: t/s against threads", "n_threads", "n_batch=2048", "<polyline"]),
        (Chart::Batch, &["tg128: t/s against batch size", "2048", "n_threads=2", "<polyline"]),
        (Chart::Commits, &["t/s by commit", "aaaaaaa", "bbbbbbb", "ccccccc", "<polyline"]),
        (Chart::LatencyCdf, &["TTFT CDF", "ITL CDF", "E2EL CDF", "request_rate=4", "<polyline"]),
        (Chart::LatencyRate, &["TTFT against request rate", "mean", "p99", "<polyline"]),
        (Chart::ThroughputLatency, &["output throughput against mean E2EL", "<polyline"]),
        (Chart::Placement, &["by placement arm", "default", "pinned", "<rect"]),
        (Chart::Energy, &["energy per token", "J/token", "pp512", "<rect"]),
    ];
    for (chart, labels) in cases {
        let svg = chart_svg(chart, &e).unwrap_or_else(|err| panic!("{chart}: {err}"));
        assert_svg(&svg, labels);
    }
}

#[test]
fn charts_without_data_say_so() {
    let bench_only: Vec<Entry> = sample().into_iter().filter(|e| e.record.kind == "bench").collect();
    for c in [Chart::LatencyCdf, Chart::LatencyRate, Chart::ThroughputLatency, Chart::Placement] {
        assert!(matches!(chart_svg(c, &bench_only), Err(ReportError::NoData { chart, .. }) if chart == c), "{c}");
    }
    let html = Report::from_entries(&bench_only, &ReportOptions::default()).html();
    assert!(html.contains("id=\"note-placement\""), "placement left out with a note");
    assert!(!html.contains("id=\"chart-placement\""), "and no empty frame");
    assert!(html.contains("id=\"chart-threads\""));
    assert!(matches!(chart_svg(Chart::Threads, &[]), Err(ReportError::NoData { .. })));
}

#[test]
fn html_is_self_contained_and_escaped() {
    let mut e = sample();
    let evil = "<script>alert('x')</script> & \"q\"";
    let r = run(99, "bench", "<img src=x>", "2026-02-01T00:00:00Z");
    let mut rec = e[0].record.clone();
    rec.model = evil.into();
    e.push(entry(1000, &r, rec));
    let report = Report::from_entries(&e, &ReportOptions::default().title("t <1> & 2").subtitle(evil));
    let html = report.html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no scripts, and injected ones are escaped");
    assert!(!html.contains("<img"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
    assert!(html.contains("<title>t &lt;1&gt; &amp; 2</title>"));
    assert!(html.contains("Test CPU &lt;8 cores&gt; &amp; co"));
    for bad in ["http://", "https://", "<link", "@import", "url(", " src="] {
        assert!(!html.contains(bad), "the page references {bad}");
    }
    assert_eq!(html.matches("<svg").count(), 8, "every chart inline");
    assert_eq!(report.runs.len(), 6);
    assert_eq!(report.runs[0].commit, "aaaaaaa1111");
    assert_eq!(report.runs[0].records, 8);
}

#[test]
fn chart_names_parse_and_round_trip() {
    for c in Chart::ALL {
        assert_eq!(c.name().parse::<Chart>().unwrap(), c);
    }
    assert_eq!("Latency_CDF".parse::<Chart>().unwrap(), Chart::LatencyCdf);
    let err = "pie".parse::<Chart>().unwrap_err().to_string();
    assert!(err.contains("pie") && err.contains("throughput-latency"), "{err}");
}

#[test]
fn escape_covers_markup_and_quotes() {
    assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    assert_eq!(escape("plain 1.5 t/s"), "plain 1.5 t/s");
}

/// The attributes of every `<tag ...>` in an SVG, as plotters writes them (`name="value"`).
fn elements(svg: &str, tag: &str) -> Vec<BTreeMap<String, String>> {
    let open = format!("<{tag} ");
    svg.match_indices(&open)
        .map(|(at, _)| {
            let body = &svg[at + open.len()..];
            let body = &body[..body.find('>').unwrap()];
            let mut attrs = BTreeMap::new();
            let mut rest = body;
            while let Some(eq) = rest.find("=\"") {
                let name = rest[..eq].trim().to_string();
                let v = &rest[eq + 2..];
                let end = v.find('"').unwrap();
                attrs.insert(name, v[..end].to_string());
                rest = &v[end + 1..];
            }
            attrs
        })
        .collect()
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02X}{:02X}{:02X}", c[0], c[1], c[2])
}

/// Data markers (radius 3) of palette colour `i`: (cx, cy).
fn markers(svg: &str, i: usize) -> Vec<(f64, f64)> {
    let colour = hex(palette()[i]);
    elements(svg, "circle")
        .into_iter()
        .filter(|a| a["r"] == "3" && a["fill"] == colour)
        .map(|a| (a["cx"].parse().unwrap(), a["cy"].parse().unwrap()))
        .collect()
}

/// A polyline's stroke colour, stroke width and points.
type Polyline = (String, String, Vec<(f64, f64)>);

/// Every polyline.
fn polylines(svg: &str) -> Vec<Polyline> {
    elements(svg, "polyline")
        .into_iter()
        .map(|a| {
            let pts = a["points"]
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            (a["stroke"].clone(), a["stroke-width"].clone(), pts)
        })
        .collect()
}

/// Error-bar stems: vertical one-pixel lines of two points.
fn whiskers(svg: &str, colour: &str) -> usize {
    polylines(svg)
        .iter()
        .filter(|(c, w, p)| c == colour && w == "1" && p.len() == 2 && p[0].0 == p[1].0 && p[0].1 != p[1].1)
        .count()
}

/// A text element's content as plotters writes it.
fn text(label: &str) -> String {
    format!(">\n{label}\n</text>")
}

/// The x of a text element's label.
fn text_x(svg: &str, label: &str) -> f64 {
    let at = svg.find(&text(label)).unwrap_or_else(|| panic!("no text {label:?}"));
    let open = svg[..at].rfind("<text ").unwrap();
    elements(&svg[open..], "text")[0]["x"].parse().unwrap()
}

fn bench_grid(run: &Arc<Run>, first_id: i64, tests: &[&str], threads: &[&str], batches: &[&str]) -> Vec<Entry> {
    let mut out = Vec::new();
    for test in tests {
        for t in threads {
            for b in batches {
                let base = if *test == "pp512" { 300.0 } else { 30.0 };
                let v = base * t.parse::<f64>().unwrap().sqrt() * (1.0 + b.parse::<f64>().unwrap().log2() / 20.0);
                let id = first_id + out.len() as i64;
                out.push(entry(
                    id,
                    run,
                    record("bench", test, &[("n_threads", t), ("n_batch", b)], vec![("ts", ts(v))]),
                ));
            }
        }
    }
    out
}

#[test]
fn threads_has_a_panel_per_test_a_point_per_thread_count_and_whiskers() {
    let r = run(1, "bench", "abc", "2026-01-01T00:00:00Z");
    let e = bench_grid(&r, 1, &["pp512", "tg128"], &["1", "2", "4"], &["2048"]);
    let fig = chart_figure(Chart::Threads, &e).unwrap();
    assert!(fig.is_wide(), "two panels");
    let svg = &fig.svg;
    assert_svg(svg, &["pp512: t/s against threads", "tg128: t/s against threads", "n_threads", "t/s (mean, 95% CI)"]);
    // One series a panel (nothing else varies, so no legend): 3 markers each, in the first colour.
    let pts = markers(svg, 0);
    assert_eq!(pts.len(), 6, "{pts:?}");
    assert!(markers(svg, 1).is_empty(), "no second series");
    // More threads, more t/s: within each panel the rightmost point is the highest (smallest y).
    for panel in pts.chunks(3) {
        let right = panel.iter().max_by(|a, b| a.0.total_cmp(&b.0)).unwrap();
        assert!(panel.iter().all(|p| p.1 >= right.1), "{panel:?}");
    }
    // Four samples a point: every point has its CI.
    assert_eq!(whiskers(svg, &hex(palette()[0])), 6);
    // Thread counts are whole: ticks 1, 2, 4 and no fractional ones.
    for t in ["1", "2", "4"] {
        text_x(svg, t);
    }
    assert!(!svg.contains(&text("1.50")) && !svg.contains(&text("2.00")), "fractional thread ticks");
}

#[test]
fn batch_is_on_a_log2_axis_with_a_series_per_other_setting() {
    let r = run(1, "bench", "abc", "2026-01-01T00:00:00Z");
    let e = bench_grid(&r, 1, &["pp512"], &["2", "4"], &["256", "512", "1024", "2048"]);
    let svg = chart_svg(Chart::Batch, &e).unwrap();
    assert_svg(&svg, &["pp512: t/s against batch size", "n_threads=2", "n_threads=4"]);
    let (a, b) = (markers(&svg, 0), markers(&svg, 1));
    assert_eq!((a.len(), b.len()), (4 + 1, 4 + 1), "two series of four batch sizes, and their legend markers");
    // Powers of two equally spaced (the legend's marker is left of the plot).
    let mut xs: Vec<f64> = a.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.remove(0);
    xs.sort_by(f64::total_cmp);
    let gaps: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| (g - gaps[0]).abs() < 1.5), "{gaps:?}");
    for label in ["256", "512", "1024", "2048"] {
        assert!(
            (text_x(&svg, label) - xs[["256", "512", "1024", "2048"].iter().position(|l| *l == label).unwrap()]).abs()
                < 2.0
        );
    }
}

#[test]
fn commits_follow_build_numbers_else_start_times() {
    // Run in bisect order: the newest build first.
    let mut e = Vec::new();
    for (id, commit, build, day) in [(1, "ccccccc3", 303, 1), (2, "aaaaaaa1", 301, 2), (3, "bbbbbbb2", 302, 3)] {
        let mut r = (*run(id, "bench", commit, &format!("2026-01-0{day}T00:00:00Z"))).clone();
        r.meta.build_number = build;
        let r = Arc::new(r);
        e.extend(bench_grid(&r, id * 100, &["pp512"], &["4"], &["2048"]));
    }
    let svg = chart_svg(Chart::Commits, &e).unwrap();
    assert_svg(&svg, &["pp512: t/s by commit", "runs by build number"]);
    let (a, b, c) = (text_x(&svg, "aaaaaaa"), text_x(&svg, "bbbbbbb"), text_x(&svg, "ccccccc"));
    assert!(a < b && b < c, "history order: {a} {b} {c}");
    assert_eq!(markers(&svg, 0).len(), 3);
    assert_eq!(whiskers(&svg, &hex(palette()[0])), 3, "a CI per run");
    // A run without a build number: start-time order.
    let mut r = (*e[0].run).clone();
    r.meta.build_number = 0;
    e[0].run = Arc::new(r);
    let svg = chart_svg(Chart::Commits, &e).unwrap();
    assert_svg(&svg, &["runs by start time"]);
    assert!(text_x(&svg, "ccccccc") < text_x(&svg, "aaaaaaa"));
}

#[test]
fn commits_leave_out_settings_measured_in_one_run() {
    let r1 = run(1, "bench", "aaaaaaa1", "2026-01-01T00:00:00Z");
    let r2 = run(2, "bench", "bbbbbbb2", "2026-01-02T00:00:00Z");
    let mut e = bench_grid(&r1, 1, &["pp512"], &["4"], &["2048"]);
    e.extend(bench_grid(&r2, 10, &["pp512"], &["1", "4"], &["2048"]));
    let svg = chart_svg(Chart::Commits, &e).unwrap();
    assert_eq!(markers(&svg, 0).len(), 2 + 1, "the n_threads=4 history, and its legend marker");
    assert!(markers(&svg, 1).is_empty(), "no second series");
    assert!(svg.contains("n_threads=4") && !svg.contains("n_threads=1"), "the one-run setting is left out");
}

#[test]
fn latency_cdfs_draw_a_curve_per_replay_from_samples_or_percentiles() {
    let e: Vec<Entry> = sample().into_iter().filter(|e| e.record.kind == "replay").collect();
    let fig = chart_figure(Chart::LatencyCdf, &e).unwrap();
    assert!(fig.is_wide());
    assert_svg(&fig.svg, &["TTFT CDF", "ITL CDF", "E2EL CDF", "request_rate=1", "request_rate=4", "percentile"]);
    // TTFT from 50 samples, ITL and E2EL from the result's percentiles: 3 panels x 3 replays.
    let curves: Vec<_> =
        polylines(&fig.svg).into_iter().filter(|(_, w, p)| w == "2" && p.len() >= 2 && p[0].0 != p[1].0).collect();
    let data = curves.iter().filter(|(_, _, p)| p.len() > 2 || p[1].0 - p[0].0 != 18.0).count();
    assert_eq!(data, 9, "{curves:?}");
    // The TTFT curve has a point per sample (50 <= 200), and rises to 100%.
    assert!(curves.iter().any(|(_, _, p)| p.len() == 50));
}

#[test]
fn latency_against_rate_has_means_with_cis_and_dashed_p99() {
    let mut e: Vec<Entry> = sample().into_iter().filter(|e| e.record.kind == "replay").collect();
    // vLLM's own key for TTFT's p99.
    for (i, x) in e.iter_mut().enumerate() {
        x.record.result["p99_ttft_ms"] = serde_json::json!(100.0 + 50.0 * i as f64);
    }
    let svg = chart_svg(Chart::LatencyRate, &e).unwrap();
    assert_svg(&svg, &["TTFT against request rate", "ITL against request rate", "request rate (req/s)", "mean", "p99"]);
    // Means in the first colour, 3 rates x 2 panels (+ a legend marker each), p99 in the second.
    assert_eq!(markers(&svg, 0).len(), 3 * 2 + 2);
    assert_eq!(markers(&svg, 1).len(), 3 * 2 + 2);
    // TTFT has samples (CIs); ITL only a mean.
    assert_eq!(whiskers(&svg, &hex(palette()[0])), 3);
    // Dashes: many short segments in the p99 colour.
    let dashes = polylines(&svg).iter().filter(|(c, w, p)| *c == hex(palette()[1]) && w == "2" && p.len() == 2).count();
    assert!(dashes > 10, "{dashes} dash segments");
}

#[test]
fn placement_bars_have_median_cis_and_no_redundant_legend() {
    let e: Vec<Entry> = sample().into_iter().filter(|e| e.record.kind == "placement").collect();
    let svg = chart_svg(Chart::Placement, &e).unwrap();
    assert_svg(&svg, &["ts by placement arm (pp512)", "t/s (median, 95% CI)"]);
    let bars = |i: usize| elements(&svg, "rect").iter().filter(|a| a["fill"] == hex(palette()[i])).count();
    assert_eq!((bars(0), bars(1)), (1, 1), "a bar per arm, coloured by arm");
    assert_eq!(whiskers(&svg, &hex(plot::WHISKER)), 2, "a CI per arm");
    assert_eq!(svg.matches(&text("pinned")).count(), 1, "arms named once, on the axis");
}

#[test]
fn energy_bars_per_test_coloured_by_kind() {
    let mut e = sample();
    let replay = e.iter_mut().find(|x| x.record.kind == "replay").unwrap();
    replay.record.metrics.insert("j_per_token".into(), Metric::summary("J/token", false, 2.0, None, 1));
    let svg = chart_svg(Chart::Energy, &e).unwrap();
    assert_svg(&svg, &["energy per token", "J/token (mean, 95% CI)", &text("bench"), &text("replay")]);
    let bars = |i: usize| elements(&svg, "rect").iter().filter(|a| a["fill"] == hex(palette()[i])).count();
    // pp512 and tg128 (bench) plus the legend swatch; replay plus its swatch.
    assert_eq!((bars(0), bars(1)), (3, 2));
    assert_eq!(whiskers(&svg, &hex(plot::WHISKER)), 2, "CIs where several readings pool");
}

#[test]
fn legends_go_where_the_data_is_not() {
    use plot::{Body, Panel, Point, Series, XAxis};
    let rising = |name: &str| Series::line(name, (0..10).map(|i| Point::new(i as f64, (i * i) as f64, None)).collect());
    let p = Panel {
        title: String::new(),
        x_label: String::new(),
        y_label: String::new(),
        x: XAxis::Linear,
        y_range: None,
        body: Body::Lines(vec![rising("a"), rising("b")]),
    };
    // A convex rise fills the lower right and upper right: the legend goes upper left.
    let corner = plot::legend_corner(&p, (0.0, 9.0), (0.0, 81.0), (500, 300));
    assert!(matches!(corner, plotters::prelude::SeriesLabelPosition::UpperLeft), "{corner:?}");
}

#[test]
fn png_export_has_the_figure_size_and_draws_the_data() {
    let r = run(1, "bench", "abc", "2026-01-01T00:00:00Z");
    let fig = chart_figure(Chart::Threads, &bench_grid(&r, 1, &["pp512"], &["1", "2", "4"], &["512", "2048"])).unwrap();
    assert_eq!(fig.size, (640, 420), "one test, one panel");
    let png = match svg_to_png(&fig.svg) {
        Ok(png) => png,
        Err(ReportError::NoFonts) => panic!("no system fonts: install fonts-dejavu-core"),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let img = Raster::from_png(&png).unwrap();
    assert_eq!((img.width, img.height), fig.size);
    let pal = palette();
    let (mut ink, mut series) = (0, [0usize; 2]);
    for y in 0..img.height {
        for x in 0..img.width {
            let c = img.rgb(x, y).unwrap();
            ink += usize::from(c.iter().any(|&v| v < 235));
            for (i, n) in series.iter_mut().enumerate() {
                *n += usize::from(c == pal[i]);
            }
        }
    }
    let share = ink as f64 / f64::from(img.width * img.height);
    assert!((0.015..0.5).contains(&share), "{:.1}% drawn", share * 100.0);
    assert!(series.iter().all(|&n| n > 50), "both series' colours drawn: {series:?}");
    assert!(matches!(svg_to_png("not svg"), Err(ReportError::Svg(_))));
    assert!(matches!(Raster::from_png(b"not png"), Err(ReportError::Png(_))));
}

#[test]
fn threads_leave_out_another_sweeps_single_points() {
    let r = run(1, "bench", "abc", "2026-01-01T00:00:00Z");
    let mut e = bench_grid(&r, 1, &["pp512"], &["1", "2", "4"], &["2048"]);
    e.extend(bench_grid(&r, 100, &["pp512"], &["4"], &["256", "512"]));
    let svg = chart_svg(Chart::Threads, &e).unwrap();
    assert_eq!(markers(&svg, 0).len(), 3 + 1, "the n_batch=2048 sweep and its legend marker");
    assert!(markers(&svg, 1).is_empty() && !svg.contains("n_batch=256"), "the batch sweep's points are left out");
}

#[test]
fn replays_the_client_flagged_are_charted_as_their_own_series() {
    let mut e: Vec<Entry> = sample().into_iter().filter(|e| e.record.kind == "replay").collect();
    e[2].record.status = "invalid".into();
    e[2].record.error = Some("client saturated: schedule-lag p99 4.000 ms > 1 ms".into());
    let svg = chart_svg(Chart::ThroughputLatency, &e).unwrap();
    assert_svg(&svg, &["(invalid)"]);
    e[2].record.status = "failed".into();
    let svg = chart_svg(Chart::ThroughputLatency, &e).unwrap();
    assert!(!svg.contains("(invalid)"), "failed replays stay out");
}
