//! `benchkit report` end to end: a store with data for every chart, the `benchkit` binary
//! writing the page, and headless Chromium (Debian's `chromium`, found through
//! `BENCHKIT_CHROMIUM`, which `eval "$(scripts/test-services.sh)"` exports) loading it: no
//! console messages, every chart's SVG in the DOM, and a screenshot whose chart areas are drawn
//! in the charts' colours. Single charts through the binary, as SVG and PNG, too.
//!
//! `BENCHKIT_REPORT_SCREENSHOT=docs/img/report.png` keeps the screenshot (the docs' one).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use benchkit::report::{palette, Raster};
use benchkit::store::{Metric, RunMeta, Store, StoredRecord};

const WIDTH: u32 = 1400;
const CHARTS: [&str; 8] =
    ["threads", "batch", "commits", "latency-cdf", "latency-rate", "throughput-latency", "placement", "energy"];

fn chromium() -> String {
    match std::env::var("BENCHKIT_CHROMIUM") {
        Ok(c) if !c.trim().is_empty() => c,
        _ => panic!(
            "BENCHKIT_CHROMIUM is not set: this test renders the report in headless Chromium; \
             run `eval \"$(scripts/test-services.sh)\"` first (it installs Debian's chromium and exports it)"
        ),
    }
}

fn benchkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_benchkit"))
}

fn run_ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn meta(kind: &str, commit: &str, build: u64, started_at: &str) -> RunMeta {
    let mut m = RunMeta::from_provenance(kind, &benchkit::Provenance::now());
    m.build_commit = commit.into();
    m.build_number = build;
    m.started_at = started_at.into();
    m.machine = "AMD EPYC 7B13 (test)".into();
    m
}

fn record(kind: &str, name: &str, params: &[(&str, String)], metrics: Vec<(&str, Metric)>) -> StoredRecord {
    StoredRecord::new(kind, name, "gemma3 270M Q4_K - Medium", params.iter().map(|(k, v)| (*k, v.clone())), metrics)
}

/// Five repetitions around `ts`, as llama-bench's `samples_ts`.
fn ts(ts: f64) -> Metric {
    Metric::from_samples("t/s", true, [1.0, 1.03, 0.97, 1.01, 0.99].iter().map(|f| ts * f).collect())
}

/// A deterministic spread: `n` values from `lo` rising with a long tail.
fn latencies(n: usize, lo: f64, spread: f64) -> Vec<f64> {
    (0..n).map(|i| lo + spread * (i as f64 / n as f64).powi(3) + (i * 37 % 11) as f64 * 0.1).collect()
}

/// A store as a week of real use leaves it: thread and batch sweeps, a commit sweep with its
/// commits run out of history order, replays at four request rates, a placement comparison
/// and energy readings.
fn build_store(path: &Path) {
    let store = Store::open(path.to_str().unwrap()).unwrap();
    let commits = [("c3c3c3c3c3", 4203, 3), ("a1a1a1a1a1", 4201, 1), ("d4d4d4d4d4", 4204, 4), ("b2b2b2b2b2", 4202, 2)];
    for (commit, build, day) in commits {
        let run = store.insert_run(&meta("bench", commit, build, &format!("2026-03-0{day}T10:00:00Z"))).unwrap();
        let speedup = 1.0 + 0.05 * (build - 4201) as f64;
        for (test, base) in [("pp512", 180.0), ("tg128", 22.0)] {
            let (n_prompt, n_gen) = if test == "pp512" { ("512", "0") } else { ("0", "128") };
            for t in [1u32, 2, 4, 8] {
                let scale = f64::from(t).powf(0.8);
                let mut rec = record(
                    "bench",
                    test,
                    &[
                        ("n_threads", t.to_string()),
                        ("n_batch", "2048".into()),
                        ("n_prompt", n_prompt.into()),
                        ("n_gen", n_gen.into()),
                    ],
                    vec![("ts", ts(base * scale * speedup))],
                );
                if build == 4204 {
                    rec.metrics.insert("j_per_token".into(), Metric::summary("J/token", false, 0.9 / scale, None, 1));
                }
                store.insert_record(run, &rec).unwrap();
            }
            if build == 4204 {
                // The newest build is swept further: threads at a second batch size, and batch
                // sizes at 8 threads.
                for t in [1u32, 2, 4] {
                    let rec = record(
                        "bench",
                        test,
                        &[
                            ("n_threads", t.to_string()),
                            ("n_batch", "512".into()),
                            ("n_prompt", n_prompt.into()),
                            ("n_gen", n_gen.into()),
                        ],
                        vec![("ts", ts(base * f64::from(t).powf(0.8) * speedup * 0.94))],
                    );
                    store.insert_record(run, &rec).unwrap();
                }
                for b in [128u32, 256, 512, 1024] {
                    let f = 1.0 - 0.4 / f64::from(b).log2();
                    let rec = record(
                        "bench",
                        test,
                        &[
                            ("n_threads", "8".into()),
                            ("n_batch", b.to_string()),
                            ("n_prompt", n_prompt.into()),
                            ("n_gen", n_gen.into()),
                        ],
                        vec![("ts", ts(base * 8f64.powf(0.8) * speedup * f))],
                    );
                    store.insert_record(run, &rec).unwrap();
                }
            }
        }
    }
    let run = store.insert_run(&meta("replay", "d4d4d4d4d4", 4204, "2026-03-05T10:00:00Z")).unwrap();
    for (i, rate) in [1.0, 2.0, 4.0, 8.0].into_iter().enumerate() {
        let load = 1.0 + (i * i) as f64 * 0.4;
        let ttft = latencies(64, 40.0 * load, 120.0 * load);
        let itl = latencies(600, 18.0 * load, 25.0 * load);
        let e2el = latencies(64, 1500.0 * load, 900.0 * load);
        let p99 = |v: &[f64]| {
            let mut s = v.to_vec();
            s.sort_by(f64::total_cmp);
            s[(s.len() * 99 / 100).min(s.len() - 1)]
        };
        let mut rec = record(
            "replay",
            "replay",
            &[("backend", "inproc".into()), ("num_prompts", "64".into()), ("request_rate", rate.to_string())],
            vec![
                ("ttft", Metric::from_samples("ms", false, ttft.clone())),
                ("itl", Metric::from_samples("ms", false, itl.clone())),
                ("e2el", Metric::from_samples("ms", false, e2el.clone())),
                ("output_throughput", Metric::summary("tok/s", true, 40.0 * rate / load.sqrt(), None, 64)),
                ("rps", Metric::summary("req/s", true, rate * 0.95, None, 64)),
                ("j_per_token", Metric::summary("J/token", false, 1.4 / load.sqrt(), None, 1)),
            ],
        );
        rec.result = serde_json::json!({
            "request_rate": rate,
            "percentiles_ttft_ms": [[99.0, p99(&ttft)]],
            "percentiles_itl_ms": [[99.0, p99(&itl)]],
        });
        store.insert_record(run, &rec).unwrap();
    }
    let run = store.insert_run(&meta("placement", "d4d4d4d4d4", 4204, "2026-03-06T10:00:00Z")).unwrap();
    for (arm, f) in [("default", 1.0), ("pinned", 1.12), ("interleave", 0.93)] {
        let rec = record(
            "placement",
            "pp512",
            &[("arm", arm.into()), ("baseline", "default".into()), ("rounds", "6".into())],
            vec![(
                "ts",
                Metric::from_samples(
                    "t/s",
                    true,
                    [1.0, 1.04, 0.98, 1.02, 0.97, 1.01].iter().map(|x| 900.0 * f * x).collect(),
                ),
            )],
        );
        store.insert_record(run, &rec).unwrap();
    }
}

/// Runs Chromium headless on `page` with a fresh profile, killing it after 90 s. Its output
/// goes to files: a DOM dump fills a pipe long before Chromium exits.
fn chromium_run(dir: &Path, args: &[String], page: &Path) -> Output {
    let profile = tempfile::tempdir_in(dir).unwrap();
    let (out_path, err_path) = (profile.path().join("stdout"), profile.path().join("stderr"));
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&out_path).unwrap())
    .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{c:?} still running after 90 s:\n{}", std::fs::read_to_string(&err_path).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = Output { status, stdout: std::fs::read(&out_path).unwrap(), stderr: std::fs::read(&err_path).unwrap() };
    assert!(out.status.success(), "{c:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

/// The page's console messages as Chromium logs them (`...:INFO:CONSOLE:1] "msg", source:
/// ...`): every level is logged at INFO, so any message counts. A page without scripts has
/// none unless the browser objects to it (an SVG attribute it cannot parse, for one).
fn console_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr).lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect()
}

/// Each chart's box on the page (CSS px = screenshot px at scale 1) and the page's height, as
/// the page lays them out in Chromium: a copy of the page with a script that writes them into
/// the DOM, read back with --dump-dom. The script also logs a console error, which the console
/// check must see: that proves the check can fail.
struct Layout {
    boxes: Vec<(String, [u32; 4])>,
    height: u32,
}

fn layout(dir: &Path, html: &str) -> Layout {
    let probe = dir.join("probe.html");
    let script = r#"<script>
        const parts = [...document.querySelectorAll('figure.chart')].map(f => {
          const r = f.querySelector('svg').getBoundingClientRect();
          return f.id + ':' + [r.left, r.top + window.scrollY, r.width, r.height].map(Math.round).join(',');
        });
        document.body.setAttribute('data-layout', parts.join(';'));
        document.body.setAttribute('data-height', document.documentElement.scrollHeight);
        console.error('benchkit-probe-error');
      </script></body>"#;
    std::fs::write(&probe, html.replace("</body>", script)).unwrap();
    let out = chromium_run(dir, &[format!("--window-size={WIDTH},1000"), "--dump-dom".into()], &probe);
    let console = console_lines(&out.stderr);
    assert!(
        console.iter().any(|l| l.contains("benchkit-probe-error")),
        "the console check does not see an injected console.error: {console:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let attr = |name: &str| {
        let start =
            dom.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in the probe's DOM")) + name.len() + 2;
        dom[start..start + dom[start..].find('"').unwrap()].to_string()
    };
    let boxes = attr("data-layout")
        .split(';')
        .map(|part| {
            let (id, nums) = part.split_once(':').unwrap();
            let v: Vec<u32> = nums.split(',').map(|n| n.parse::<i64>().unwrap().max(0) as u32).collect();
            (id.trim_start_matches("chart-").to_string(), [v[0], v[1], v[2], v[3]])
        })
        .collect();
    Layout { boxes, height: attr("data-height").parse().unwrap() }
}

/// What a chart's area of the screenshot holds: the share of pixels that are not background,
/// and which palette colours appear (a colour counts from 20 pixels of it).
fn inspect(shot: &Raster, [x, y, w, h]: [u32; 4]) -> (f64, Vec<usize>) {
    let pal = palette();
    let mut counts = vec![0usize; pal.len()];
    let (mut ink, mut total) = (0usize, 0usize);
    for py in y..(y + h).min(shot.height) {
        for px in x..(x + w).min(shot.width) {
            let c = shot.rgb(px, py).unwrap();
            total += 1;
            if c.iter().any(|&v| v < 235) {
                ink += 1;
            }
            if let Some(i) = pal.iter().position(|p| p.iter().zip(&c).all(|(a, b)| a.abs_diff(*b) <= 6)) {
                counts[i] += 1;
            }
        }
    }
    let colours = counts.iter().enumerate().filter(|(_, n)| **n >= 20).map(|(i, _)| i).collect();
    (ink as f64 / total.max(1) as f64, colours)
}

#[test]
fn the_report_renders_in_chromium_with_every_chart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let db = dir.join("results.db");
    build_store(&db);
    let page = dir.join("report.html");
    let out = run_ok(
        benchkit().args(["report", "--store"]).arg(&db).arg("-o").arg(&page).args(["--title", "benchkit test report"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("left out"), "every chart has data: {stderr}");
    let html = std::fs::read_to_string(&page).unwrap();
    for bad in ["<script", "http://", "https://", " src=", "<link", "url("] {
        assert!(!html.contains(bad), "the page must open offline, and it has {bad:?}");
    }

    // Loaded: no console messages, and every chart's SVG in the DOM.
    let dump = chromium_run(&dir, &[format!("--window-size={WIDTH},1000"), "--dump-dom".into()], &page);
    let console = console_lines(&dump.stderr);
    assert!(console.is_empty(), "console messages on the report page: {console:#?}");
    let dom = String::from_utf8_lossy(&dump.stdout);
    for c in CHARTS {
        let at = dom.find(&format!("id=\"chart-{c}\"")).unwrap_or_else(|| panic!("no chart {c} in the DOM"));
        assert!(dom[at..].find("<svg").is_some_and(|i| i < 300), "chart {c} has no <svg> in the DOM");
    }
    assert_eq!(dom.matches("<svg").count(), CHARTS.len());

    // The screenshot, the whole page tall.
    let layout = layout(&dir, &html);
    assert_eq!(layout.boxes.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), CHARTS);
    let height = layout.height.clamp(600, 8000);
    let shot_path = dir.join("report.png");
    let shot = chromium_run(
        &dir,
        &[format!("--window-size={WIDTH},{height}"), format!("--screenshot={}", shot_path.display())],
        &page,
    );
    let console = console_lines(&shot.stderr);
    assert!(console.is_empty(), "console messages while taking the screenshot: {console:#?}");
    let png = std::fs::read(&shot_path).unwrap();
    if let Ok(keep) = std::env::var("BENCHKIT_REPORT_SCREENSHOT") {
        std::fs::write(&keep, &png).unwrap();
    }
    let shot = Raster::from_png(&png).unwrap();
    assert_eq!((shot.width, shot.height), (WIDTH, height));

    // Each chart's area is drawn: axes, text and data take a good share of it, in as many
    // palette colours as it has series (or arms, or record kinds).
    let want_colours = [
        ("threads", 2),
        ("batch", 2),
        ("commits", 2),
        ("latency-cdf", 4),
        ("latency-rate", 2),
        ("throughput-latency", 1),
        ("placement", 3),
        ("energy", 2),
    ];
    for ((name, bx), (want_name, colours)) in layout.boxes.iter().zip(want_colours) {
        assert_eq!(name, want_name);
        assert!(bx[2] >= 400 && bx[3] >= 250, "{name} is drawn {}x{} px", bx[2], bx[3]);
        assert!(bx[1] + bx[3] <= shot.height, "{name} is below the screenshot");
        let (ink, seen) = inspect(&shot, *bx);
        assert!((0.015..0.6).contains(&ink), "{name}: {:.1}% of its area drawn", ink * 100.0);
        assert!(seen.len() >= colours, "{name}: palette colours {seen:?}, want at least {colours}");
    }
    // And outside the charts the page is mostly background: a blank or garbled screenshot fails.
    let (page_ink, _) = inspect(&shot, [0, 0, WIDTH, height]);
    assert!(page_ink < 0.5, "{:.1}% of the page drawn", page_ink * 100.0);
}

#[test]
fn single_charts_export_as_svg_and_png() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("results.db");
    build_store(&db);
    let report = |args: &[&str]| {
        let mut c = benchkit();
        c.args(["report", "--store"]).arg(&db).args(args);
        c
    };

    let svg_path: PathBuf = dir.join("threads.svg");
    run_ok(&mut report(&["--chart", "threads", "-o", svg_path.to_str().unwrap()]));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("t/s against threads") && svg.contains("n_threads"));
    let stdout = run_ok(&mut report(&["--chart", "threads", "-o", "-"])).stdout;
    assert_eq!(String::from_utf8(stdout).unwrap(), svg, "-o - writes the same SVG to stdout");

    let png_path = dir.join("threads.png");
    run_ok(&mut report(&["--chart", "threads", "-o", png_path.to_str().unwrap()]));
    let png = Raster::from_png(&std::fs::read(&png_path).unwrap()).unwrap();
    // A panel per test, pp512 and tg128, side by side.
    assert_eq!((png.width, png.height), (1300, 420));
    let (ink, colours) = inspect(&png, [0, 0, png.width, png.height]);
    assert!(ink > 0.015, "{:.1}% drawn", ink * 100.0);
    assert!(colours.len() >= 2, "both series' colours: {colours:?}");

    // The filter leaves the chart no data: an error that says so, and no file.
    let empty = dir.join("empty.svg");
    let out =
        report(&["--chart", "placement", "--filter", "kind=bench", "-o", empty.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no placement records"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!empty.exists());
    // A page needs .html (or stdout), a chart .svg or .png.
    let out = report(&["-o", dir.join("page.png").to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--chart"));
}
