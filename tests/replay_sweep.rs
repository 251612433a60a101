//! Rate sweeps with the real `benchkit` binary: a max-rate search under an SLO against
//! llama-server (gemma, 2 threads) that brackets the boundary and prints the curve, and a
//! list of rates against the loopback mock.

#[path = "support/mock_openai.rs"]
mod mock_openai;

use benchkit::replay::sweep::{Conclusion, SweepPlan, SweepResult};
use benchkit::replay::{ReplayResult, RequestRate};
use mock_openai::MockServer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

fn replay(base_url: &str, tokenizer: &Path, flags: &str) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_benchkit"))
        .args(["replay", "--target", "http", "--base-url", base_url, "--model", "gemma", "-m"])
        .arg(tokenizer)
        .args(flags.split_whitespace())
        .env_remove("BENCHKIT_STORE")
        .output()
        .unwrap();
    out
}

fn ok(out: Output, what: &str) -> (String, String) {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} exited {:?}:\n{stderr}", out.status);
    (stdout.into_owned(), stderr.into_owned())
}

fn rate(r: RequestRate) -> f64 {
    match r {
        RequestRate::PerSecond(r) => r,
        RequestRate::Inf(_) => f64::INFINITY,
    }
}

#[test]
fn a_max_rate_search_against_llama_server_brackets_the_slo_and_prints_the_curve() {
    let model = benchkit_suite::test_model();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        Command::new(benchkit_suite::llama_server())
            .args(["-m", model.to_str().unwrap(), "-c", "4096", "-np", "2", "-t", "2"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !healthy(port) {
        assert!(Instant::now() < deadline, "llama-server did not become healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    let url = format!("http://127.0.0.1:{port}");
    // The client's self-check is not under test: on a machine whose cores the server and
    // compilers share, it flags most runs, and the store keeps flagged runs out of charts.
    let workload = "--dataset synthetic --synthetic-input 32 --synthetic-output 8 --seed 3 --no-server-metrics \
                    --max-schedule-lag-ms 60000 --max-client-cpu 4";

    // The SLO and the range come from this machine's own speed, so that the boundary falls
    // inside the range: one request alone takes L; two slots serve about C = 1.5 / L req/s.
    // Well below C, the median latency from the scheduled arrival stays near L; far above it,
    // the 16 requests queue and the median waits about 8 / C = 5 L. The median, not the p99:
    // one stall of a busy machine must not decide. A machine whose speed changes severalfold
    // between the calibration and the search (compilers sharing its 2 cores) can still move
    // the boundary out of the range: then the search says so, and a second calibration and
    // search must find it.
    let dir = tempfile::tempdir().unwrap();
    let round = |r: f64| (r * 1e4).round() / 1e4;
    let tolerance = 0.25;
    let mut attempts = Vec::new();
    let (sweep, stdout, min, max, capacity, json_csv_store) = loop {
        let (alone, _) = ok(
            replay(&url, &model, &format!("{workload} --num-prompts 6 --request-rate inf --max-concurrency 1")),
            "calibration",
        );
        let alone: ReplayResult = serde_json::from_str(&alone).unwrap();
        assert_eq!(alone.summary.completed, 6);
        let l_ms = alone.summary.e2el.median_ms;
        let capacity = 1.5e3 / l_ms;
        // Rounded as the flags carry them.
        let (min, max) = (round(0.5 * capacity), round(16.0 * capacity));
        let at = dir.path().join(format!("attempt{}", attempts.len()));
        std::fs::create_dir(&at).unwrap();
        let (json, csv, store) = (at.join("sweep.json"), at.join("sweep.csv"), at.join("s.db"));
        let flags = format!(
            "{workload} --num-prompts 16 --constant-rate --slo e2el_from_scheduled:p50:{:.1}ms,tpot:p99:10s \
             --search max-rate --search-min {min:.4} --search-max {max:.4} --search-tolerance {tolerance} \
             --save-result {} --sweep-csv {} --store {}",
            3.0 * l_ms,
            json.display(),
            csv.display(),
            store.display()
        );
        let (stdout, stderr) = ok(replay(&url, &model, &flags), "max-rate search");
        println!("{stdout}");
        let sweep: SweepResult = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let Conclusion::MaxRate(answer) = &sweep.conclusion else { panic!("{:?}", sweep.conclusion) };
        if answer.max_rate.is_some() && answer.failing_rate.is_some() {
            break (sweep, stdout, min, max, capacity, (json, csv, store));
        }
        attempts.push(format!("L = {l_ms} ms: {answer:?}\n{stdout}\n{stderr}"));
        assert!(attempts.len() < 2, "no bracket in 2 attempts:\n{}", attempts.join("\n"));
    };
    let (_json, csv, store) = json_csv_store;
    assert!(matches!(sweep.sweep.plan, SweepPlan::MaxRate(_)));
    let Conclusion::MaxRate(answer) = &sweep.conclusion else { unreachable!() };
    let (Some(pass), Some(fail)) = (answer.max_rate, answer.failing_rate) else { unreachable!() };
    assert!(min <= pass && pass < fail && fail <= max * (1.0 + 1e-9), "{min} {pass} {fail} {max}");
    assert!(fail / pass <= 1.0 + tolerance + 1e-9, "bracket {pass}..{fail} wider than {tolerance}");
    assert_eq!((answer.tolerance, answer.range), (tolerance, [min, max]));
    let at = |r: f64| sweep.points.iter().find(|p| (rate(p.offered) - r).abs() <= 1e-9 * r).unwrap();
    assert_eq!(at(pass).meets_slo, Some(true), "the max rate met the SLOs");
    assert_eq!(at(fail).meets_slo, Some(false), "the next rate failed them");
    assert!(sweep.points.iter().all(|p| { !(pass < rate(p.offered) && rate(p.offered) < fail) }));
    // Bracketing by doubling over 32x, then bisecting a factor of 2 to 25 %.
    let n = sweep.points.len();
    assert!((2..=8).contains(&n), "{n} runs");
    for p in &sweep.points {
        assert_eq!(p.result.summary.completed + p.result.summary.failed, 16);
        assert_eq!(p.objectives.len(), 2);
        assert_eq!(p.result.provenance.seeds.get("workload"), Some(&3));
    }
    assert!(sweep.provenance.settings.contains_key("sweep"));

    // The curve: a header and a row per point on stdout, then the answer; the same in CSV.
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("offered_rps") && lines[0].contains("meets_slo"), "{stdout}");
    assert_eq!(lines.len(), n + 2, "{stdout}");
    for (line, p) in lines[1..=n].iter().zip(&sweep.points) {
        assert!(line.trim_start().starts_with(&p.offered.to_string()), "{line}");
        assert!(line.contains(if p.meets_slo == Some(true) { " yes " } else { " no " }), "{line}");
    }
    assert!(lines[n + 1].contains("max rate meeting the SLOs") && lines[n + 1].contains("tolerance 25 %"), "{stdout}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), n + 1);
    assert!(csv.starts_with("offered_rps,achieved_rps,output_tok_s"));

    // One store run with a replay record per point: the report charts latency against rate.
    let svg = dir.path().join("rate.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_benchkit"))
        .args(["report", "--store"])
        .arg(&store)
        .args(["--chart", "latency-rate", "-o"])
        .arg(&svg)
        .output()
        .unwrap();
    ok(out, "report");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("TTFT against request rate") && svg.contains("request rate (req/s)"), "{svg}");

    // Saturation from half the capacity: by 4x the server serves what it served at 2x.
    let sat = dir.path().join("saturation.json");
    let flags = format!(
        "{workload} --num-prompts 12 --constant-rate --sweep saturation --sweep-start {:.4} --sweep-max-steps 6 \
         --save-result {}",
        0.5 * capacity,
        sat.display()
    );
    let (stdout, _) = ok(replay(&url, &model, &flags), "saturation sweep");
    println!("{stdout}");
    let sweep: SweepResult = serde_json::from_slice(&std::fs::read(&sat).unwrap()).unwrap();
    let Conclusion::Saturation(s) = &sweep.conclusion else { panic!("{:?}", sweep.conclusion) };
    assert!(s.saturated, "{s:?}\n{stdout}");
    let best = sweep.points.iter().max_by(|a, b| a.achieved_rps.total_cmp(&b.achieved_rps)).unwrap();
    assert_eq!((s.rate, s.achieved), (rate(best.offered), best.achieved_rps));
    assert!((2..=6).contains(&sweep.points.len()));
    let offered: Vec<f64> = sweep.points.iter().map(|p| rate(p.offered)).collect();
    assert!(offered.windows(2).all(|w| (w[1] / w[0] - 2.0).abs() < 1e-9), "{offered:?}");
    assert!(stdout.lines().last().unwrap().starts_with("saturation at "), "{stdout}");
}

#[test]
fn a_list_of_rates_runs_each_in_turn_and_one_rate_stays_a_single_run() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start());
    let url = server.base_url();
    let tokenizer = benchkit::synth::default_model(&benchkit::Backend::init().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (json, csv) = (dir.path().join("list.json"), dir.path().join("list.csv"));
    let workload = "--dataset synthetic --synthetic-input 16 --synthetic-output 4 --num-prompts 6 --seed 5 \
                    --no-server-metrics";
    let flags =
        format!("{workload} --request-rate 20,40 --save-result {} --sweep-csv {}", json.display(), csv.display());
    let (stdout, stderr) = ok(replay(&url, &tokenizer, &flags), "rate list");
    let sweep: SweepResult = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(sweep.conclusion, Conclusion::Rates);
    let offered: Vec<RequestRate> = sweep.points.iter().map(|p| p.offered).collect();
    assert_eq!(offered, [RequestRate::PerSecond(20.0), RequestRate::PerSecond(40.0)]);
    for p in &sweep.points {
        assert_eq!((p.completed, p.failed, p.meets_slo), (6, 0, None));
        assert_eq!(p.result.request_rate, p.offered);
        assert!(p.achieved_rps > 0.0 && p.output_tps > 0.0);
    }
    // The same requests at each rate: the same tokens sent.
    let inputs: Vec<u64> = sweep.points.iter().map(|p| p.result.summary.total_input_tokens).collect();
    assert_eq!(inputs[0], inputs[1]);
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert_eq!(stderr.matches("request rate ").count(), 2, "{stderr}");
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 3);

    let (single, _) = ok(replay(&url, &tokenizer, &format!("{workload} --request-rate 20")), "one rate");
    let single: ReplayResult = serde_json::from_str(&single).unwrap();
    assert_eq!((single.request_rate, single.summary.completed), (RequestRate::PerSecond(20.0), 6));

    let out = replay(&url, &tokenizer, &format!("{workload} --search max-rate"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--slo"), "{}", String::from_utf8_lossy(&out.stderr));
    drop(server);
}
