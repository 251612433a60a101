use std::path::Path;

use super::template::{parse, Piece};
use super::{Experiment, ExperimentError};

fn parse_file(text: &str) -> Result<Experiment, ExperimentError> {
    Experiment::parse(text, Path::new("exp.toml"))
}

const BASE: &str = r#"
name = "px"
command = "replay"
args = ["--base-url", "http://127.0.0.1:{port}", "--dataset", "synthetic"]
[[factors]]
name = "parallel"
levels = [1, 2]
[[factors]]
name = "rate"
levels = [1, 2.5]
flag = "--request-rate"
[setup]
spawn = ["server", "--parallel", "{parallel}", "--port", "{port}", "--log", "/tmp/{treatment}.log"]
wait_http = "http://127.0.0.1:{port}/health"
wait_timeout_s = 30
[teardown]
run = [["echo", "{{done}} {experiment}"]]
"#;

fn invalid_key(e: ExperimentError) -> String {
    match e {
        ExperimentError::Invalid { key, .. } => key,
        other => panic!("not Invalid: {other}"),
    }
}

#[test]
fn full_factorial_expands_every_combination_in_file_order() {
    let x = parse_file(BASE).unwrap();
    let ids: Vec<&str> = x.treatments.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["parallel=1+rate=1", "parallel=1+rate=2.5", "parallel=2+rate=1", "parallel=2+rate=2.5"]);
    assert_eq!(x.treatments[1].level("rate"), Some("2.5"));
    assert_eq!(x.setup.wait_timeout.as_secs(), 30);
    assert_eq!(x.hash.len(), 12);
}

#[test]
fn placeholders_flags_store_and_label_fill_the_plan() {
    let x = parse_file(BASE).unwrap();
    let p = x.plan(&x.treatments[3], 4321, "s.db");
    assert_eq!(
        p.command,
        [
            "replay",
            "--base-url",
            "http://127.0.0.1:4321",
            "--dataset",
            "synthetic",
            "--store",
            "s.db",
            "--label",
            &format!("exp:px/parallel=2+rate=2.5@{}", x.hash),
            "--request-rate",
            "2.5"
        ]
    );
    assert_eq!(
        p.spawn.unwrap(),
        ["server", "--parallel", "2", "--port", "4321", "--log", "/tmp/parallel=2+rate=2.5.log"]
    );
    assert_eq!(p.wait_http.unwrap(), "http://127.0.0.1:4321/health");
    assert_eq!(p.teardown_run, [["echo", "{done} px"]]);
    assert_eq!(super::parse_label("px", &p.label), Some(("parallel=2+rate=2.5", x.hash.as_str())));
}

#[test]
fn store_and_label_go_before_a_placement_workload() {
    let text = r#"
name = "pl"
command = "placement"
args = ["--arm", "default", "--", "bench", "-p", "16"]
[[factors]]
name = "threads"
levels = [1]
flag = "-t"
"#;
    let x = parse_file(text).unwrap();
    let p = x.plan(&x.treatments[0], 1, "s.db");
    assert_eq!(&p.command[..7], ["placement", "--arm", "default", "--store", "s.db", "--label", &p.label]);
    assert_eq!(&p.command[7..], ["--", "bench", "-p", "16", "-t", "1"]);
}

#[test]
fn explicit_treatments_run_as_listed() {
    let text = BASE.replace(
        "[[factors]]\nname = \"parallel\"",
        "treatments = [{ parallel = 2, rate = 1 }, { rate = 2.5, parallel = 1 }]\n[[factors]]\nname = \"parallel\"",
    );
    let x = parse_file(&text).unwrap();
    let ids: Vec<&str> = x.treatments.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["parallel=2+rate=1", "parallel=1+rate=2.5"]);

    let missing = BASE.replace(
        "[[factors]]\nname = \"parallel\"",
        "treatments = [{ parallel = 2 }]\n[[factors]]\nname = \"parallel\"",
    );
    assert_eq!(invalid_key(parse_file(&missing).unwrap_err()), "treatments[0].rate");
    let unknown = BASE.replace(
        "[[factors]]\nname = \"parallel\"",
        "treatments = [{ parallel = 2, rate = 1, ctx = 3 }]\n[[factors]]\nname = \"parallel\"",
    );
    assert_eq!(invalid_key(parse_file(&unknown).unwrap_err()), "treatments[0].ctx");
    let not_a_level = BASE.replace(
        "[[factors]]\nname = \"parallel\"",
        "treatments = [{ parallel = 3, rate = 1 }]\n[[factors]]\nname = \"parallel\"",
    );
    assert_eq!(invalid_key(parse_file(&not_a_level).unwrap_err()), "treatments[0].parallel");
    let design = BASE
        .replace("[[factors]]\nname = \"parallel\"", "treatments = \"latin-square\"\n[[factors]]\nname = \"parallel\"");
    assert_eq!(invalid_key(parse_file(&design).unwrap_err()), "treatments");
}

#[test]
fn levels_become_safe_ids_and_clashing_ids_are_refused() {
    let text = r#"
name = "m"
command = "bench"
[[factors]]
name = "model"
levels = ["/models/a b.gguf", "/models/a?b.gguf"]
flag = "-m"
"#;
    let e = parse_file(text).unwrap_err();
    assert_eq!(invalid_key(e), "treatments[1]");
    let x = parse_file(&text.replace("a?b", "c")).unwrap();
    assert_eq!(x.treatments[0].id, "model=_models_a_b.gguf");
    assert_eq!(x.treatments[0].level("model"), Some("/models/a b.gguf"));
}

#[test]
fn bad_placeholders_name_the_key() {
    let unknown = BASE.replace("\"--port\", \"{port}\", \"--log\"", "\"--port\", \"{prot}\", \"--log\"");
    let e = parse_file(&unknown).unwrap_err();
    assert!(e.to_string().contains("exp.toml: setup.spawn[4]: unknown placeholder {prot}"), "{e}");
    let unset = BASE.replace("\"server\"", "\"{env:BENCHKIT_TEST_SURELY_UNSET_VAR}\"");
    let e = parse_file(&unset).unwrap_err();
    assert!(e.to_string().contains("setup.spawn[0]: {env:BENCHKIT_TEST_SURELY_UNSET_VAR}"), "{e}");
    let unclosed = BASE.replace("\"--dataset\"", "\"--data{set\"");
    assert_eq!(invalid_key(parse_file(&unclosed).unwrap_err()), "args[2]");
    std::env::set_var("BENCHKIT_TEST_EXPERIMENT_VAR", "llama-server");
    let set = BASE.replace("\"server\"", "\"{env:BENCHKIT_TEST_EXPERIMENT_VAR}\"");
    let x = parse_file(&set).unwrap();
    assert_eq!(x.plan(&x.treatments[0], 1, "s").spawn.unwrap()[0], "llama-server");
}

#[test]
fn template_pieces() {
    assert_eq!(
        parse("a{b}c{env:X}{{d}}").unwrap(),
        [Piece::Text("a".into()), Piece::Var("b"), Piece::Text("c".into()), Piece::Env("X"), Piece::Text("{d}".into())]
    );
    for bad in ["{", "}", "{}", "{env:}", "a{b"] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn malformed_files_are_typed_errors() {
    match parse_file("name = \"x\"\ncommand = \"replay\"\nargs = [1, 2]\n").unwrap_err() {
        ExperimentError::Toml { line, .. } => assert_eq!(line, 3),
        e => panic!("{e}"),
    }
    match parse_file("name = \"x\"\ncommand = \"replay\"\nbogus = 1\n").unwrap_err() {
        ExperimentError::Toml { line, message, .. } => {
            assert!(line == 3 && message.contains("bogus"), "{line} {message}")
        }
        e => panic!("{e}"),
    }
    let cases = [
        (BASE.replace("command = \"replay\"", "command = \"serve\""), "command"),
        (BASE.replace("name = \"px\"", "name = \"p/x\""), "name"),
        (BASE.replace("\"synthetic\"]", "\"synthetic\", \"--store=x\"]"), "args[4]"),
        (BASE.replace("levels = [1, 2]", "levels = []"), "factors[0].levels"),
        (BASE.replace("levels = [1, 2]", "levels = [1, 1]"), "factors[0].levels[1]"),
        (BASE.replace("levels = [1, 2]", "levels = [[1]]"), "factors[0].levels[0]"),
        (BASE.replace("name = \"rate\"", "name = \"port\""), "factors[1].name"),
        (BASE.replace("flag = \"--request-rate\"", "flag = \"request-rate\""), "factors[1].flag"),
        (BASE.replace("\"--parallel\", \"{parallel}\", ", ""), "factors[0]"),
        (BASE.replace("wait_timeout_s = 30", "wait_timeout_s = -1"), "setup.wait_timeout_s"),
        (BASE.replace("http://127.0.0.1:{port}/health", "https://x/health"), "setup.wait_http"),
        (BASE.replace("run = [[\"echo\", \"{{done}} {experiment}\"]]", "run = [[]]"), "teardown.run[0]"),
    ];
    for (text, key) in cases {
        assert_eq!(invalid_key(parse_file(&text).unwrap_err()), key, "{text}");
    }
}

#[test]
fn the_hash_follows_what_makes_a_result() {
    let a = parse_file(BASE).unwrap().hash;
    assert_eq!(parse_file(&BASE.replace("wait_timeout_s = 30", "wait_timeout_s = 40")).unwrap().hash, a);
    assert_eq!(parse_file(&BASE.replace("{{done}}", "{{finished}}")).unwrap().hash, a);
    assert_ne!(parse_file(&BASE.replace("\"synthetic\"", "\"sharegpt\"")).unwrap().hash, a);
    assert_ne!(parse_file(&BASE.replace("\"--parallel\"", "\"-np\"")).unwrap().hash, a);
}

#[test]
fn a_design_too_large_is_refused_before_it_is_built() {
    let mut text = String::from("name = \"big\"\ncommand = \"bench\"\nargs = []\n");
    for i in 0..12 {
        text.push_str(&format!(
            "[[factors]]\nname = \"f{i}\"\nlevels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\nflag = \"-x{i}\"\n"
        ));
    }
    let e = parse_file(&text).unwrap_err().to_string();
    assert!(e.contains("1000000000000 treatments; at most 10000"), "{e}");
}
