//! The loading, offload and fit flags from grid to record to every output format: each grid
//! value reaches its point, its record field, and the md column / csv cell / json value / sql
//! value llama-bench writes for it.

use super::output::{to_string, OutputFormat};
use super::params::{Grid, RunConfig};
use super::record::{BenchRecord, LLAMA_BENCH_FIELDS};
use super::runner::new_record;
use crate::model::{DeviceSelection, LazyMode, LoadMode, TensorBuftOverride};

/// A grid sweeping every one of those flags, one test, one model.
fn grid() -> Grid {
    Grid {
        n_prompt: vec![16],
        n_gen: vec![0],
        repack: vec![false, true],
        no_host: vec![true],
        no_op_offload: vec![true],
        n_cpu_moe: vec![2],
        load_mode: vec![LoadMode::MmapMlock],
        lazy_mode: vec![LazyMode::Off],
        devices: vec![DeviceSelection::None],
        tensor_buft_overrides: vec![vec![
            TensorBuftOverride::new(r"blk\.0\.", "CPU"),
            TensorBuftOverride::new("exps", "CPU"),
        ]],
        fit_target: vec![512],
        fit_min_ctx: vec![4096],
        ..Grid::new("m.gguf")
    }
}

fn records(g: &Grid) -> Vec<BenchRecord> {
    crate::Backend::init().unwrap();
    let settings = RunConfig::default();
    let base = crate::provenance::test_provenance();
    g.points().unwrap().iter().map(|p| new_record(p, &settings, &base)).collect()
}

/// (field, value as text formats write it) of the first record of [`grid`] (repack 0).
const EXPECTED: &[(&str, &str)] = &[
    ("n_cpu_moe", "2"),
    ("devices", "none"),
    ("tensor_buft_overrides", r"blk\.0\.=CPU;exps=CPU"),
    ("load_mode", "mmap+mlock"),
    ("lazy_mode", "off"),
    ("no_op_offload", "1"),
    ("no_host", "1"),
    ("repack", "0"),
    ("fit_target", "512"),
    ("fit_min_ctx", "4096"),
];

#[test]
fn grid_values_reach_points_in_llama_bench_order() {
    let g = Grid {
        fit_target: vec![0, 256],
        n_cpu_moe: vec![0, 1],
        repack: vec![true, false],
        no_op_offload: vec![false, true],
        n_threads: vec![1],
        ..Grid::new("m.gguf")
    };
    let pts = g.points().unwrap();
    assert_eq!(pts.len(), 2 * 2 * 2 * 2 * 2, "4 flags x 2 values x (pp512, tg128)");
    let key = |i: usize| {
        let p = &pts[i];
        (p.model_params.fit_target_mib, p.model_params.n_cpu_moe, p.model_params.repack, p.no_op_offload, p.test.name())
    };
    // fit target outermost, then ncmoe, then repack (model level), then nopo (context level), then the tests
    assert_eq!(key(0), (0, 0, true, false, "pp512".into()));
    assert_eq!(key(1), (0, 0, true, false, "tg128".into()));
    assert_eq!(key(2), (0, 0, true, true, "pp512".into()));
    assert_eq!(key(4), (0, 0, false, false, "pp512".into()));
    assert_eq!(key(8), (0, 1, true, false, "pp512".into()));
    assert_eq!(key(16), (256, 0, true, false, "pp512".into()));
    // defaults are llama-bench's
    let d = Grid::new("m.gguf").points().unwrap().remove(0);
    assert_eq!(d.model_params, crate::ModelParams::default());
    assert!(d.model_params.repack && !d.model_params.no_host && !d.no_op_offload);
    assert!(matches!(Grid { repack: vec![], ..Grid::new("m") }.points(), Err(super::ParamError::Empty(_))));
    // points go to workers as JSON
    let json = serde_json::to_string(&pts[7]).unwrap();
    assert_eq!(serde_json::from_str::<super::Point>(&json).unwrap(), pts[7]);
}

#[test]
fn records_carry_the_point_values() {
    let rs = records(&grid());
    assert_eq!(rs.len(), 2);
    for (field, want) in EXPECTED {
        assert_eq!(rs[0].value_str(field).as_deref(), Some(*want), "{field}");
    }
    assert_eq!(rs[1].value_str("repack").as_deref(), Some("1"));
    let d = &records(&Grid { n_prompt: vec![16], n_gen: vec![0], ..Grid::new("m.gguf") })[0];
    for (field, want) in [
        ("n_cpu_moe", "0"),
        ("devices", "auto"),
        ("tensor_buft_overrides", "none"),
        ("load_mode", "auto"),
        ("lazy_mode", "auto"),
        ("no_op_offload", "0"),
        ("no_host", "0"),
        ("repack", "1"),
        ("fit_target", "0"),
        ("fit_min_ctx", "0"),
    ] {
        assert_eq!(d.value_str(field).as_deref(), Some(want), "default {field}");
    }
}

#[test]
fn md_shows_a_column_per_changed_flag() {
    let out = to_string(&records(&grid()), OutputFormat::Md);
    let header: Vec<&str> = out.lines().next().unwrap().split('|').map(str::trim).collect();
    for name in ["n_cpu_moe", "dev", "ot", "lm", "lazy_mode", "nopo", "noh", "rpk", "fitt", "fitc"] {
        assert!(header.contains(&name), "{name} missing from {header:?}");
    }
    let row = |i: usize| -> Vec<String> {
        out.lines().nth(2 + i).unwrap().split(" | ").map(|c| c.trim().to_string()).collect()
    };
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap() - 1;
    assert_eq!(row(0)[col("rpk")], "0");
    assert_eq!(row(1)[col("rpk")], "1");
    assert_eq!(row(0)[col("ot")], r"blk\.0\.=CPU;exps=CPU");
    assert_eq!(row(0)[col("lm")], "mmap+mlock");
    assert_eq!(row(0)[col("fitt")], "512");
    // at their defaults none of them is shown
    let plain =
        to_string(&records(&Grid { n_prompt: vec![16], n_gen: vec![0], ..Grid::new("m.gguf") }), OutputFormat::Md);
    let plain_header = plain.lines().next().unwrap();
    for name in ["n_cpu_moe", " dev ", " ot ", " lm ", "lazy_mode", "nopo", "noh", "rpk", "fitt", "fitc"] {
        assert!(!plain_header.contains(name), "{name} shown at its default: {plain_header}");
    }
}

#[test]
fn csv_and_sql_carry_the_values_in_llama_bench_columns() {
    let rs = records(&grid());
    let csv = to_string(&rs, OutputFormat::Csv);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<String> = csv.lines().nth(1).unwrap().trim_matches('"').split("\",\"").map(str::to_string).collect();
    assert_eq!(row.len(), LLAMA_BENCH_FIELDS.len());
    for (field, want) in EXPECTED {
        let i = header.iter().position(|h| h == field).unwrap();
        assert_eq!(row[i], *want, "csv {field}");
    }
    let sql = to_string(&rs, OutputFormat::Sql);
    for (field, ty) in [
        ("n_cpu_moe", "INTEGER"),
        ("tensor_buft_overrides", "TEXT"),
        ("load_mode", "TEXT"),
        ("repack", "INTEGER"),
        ("fit_target", "INTEGER"),
    ] {
        assert!(sql.contains(&format!("  {field} {ty}")), "sql column {field} {ty}");
    }
    let insert = sql.lines().find(|l| l.starts_with("INSERT")).unwrap();
    let (cols, vals) = insert.split_once(" VALUES (").unwrap();
    let cols: Vec<&str> =
        cols.trim_start_matches("INSERT INTO llama_bench (").trim_end_matches(')').split(", ").collect();
    let vals = sql_values(vals.trim_end_matches(");"));
    assert_eq!(vals.len(), cols.len());
    for (field, want) in EXPECTED {
        let i = cols.iter().position(|c| c == field).unwrap();
        assert_eq!(vals[i], *want, "sql {field}");
    }
}

/// The quoted values of an INSERT's `VALUES (...)`, `''` unescaped (values may hold ", ").
fn sql_values(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue; // the ", " between values
        }
        let mut v = String::new();
        loop {
            match chars.next().expect("unterminated sql value") {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    v.push('\'');
                }
                '\'' => break,
                c => v.push(c),
            }
        }
        out.push(v);
    }
    out
}

#[test]
fn json_and_jsonl_type_the_values_as_llama_bench() {
    let rs = records(&grid());
    let json: serde_json::Value = serde_json::from_str(&to_string(&rs, OutputFormat::Json)).unwrap();
    let jsonl = to_string(&rs, OutputFormat::Jsonl);
    let first_line: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    for v in [&json[0], &first_line] {
        assert_eq!(v["n_cpu_moe"], 2);
        assert_eq!(v["devices"], "none");
        assert_eq!(v["tensor_buft_overrides"], r"blk\.0\.=CPU;exps=CPU");
        assert_eq!(v["load_mode"], "mmap+mlock");
        assert_eq!(v["lazy_mode"], "off");
        assert_eq!(v["no_op_offload"], 1, "an integer, as llama-bench types it");
        assert_eq!(v["no_host"], true);
        assert_eq!(v["repack"], false);
        assert_eq!(v["fit_target"], 512);
        assert_eq!(v["fit_min_ctx"], 4096);
    }
    assert_eq!(json[1]["repack"], true);
}

#[test]
fn field_types_follow_llama_benchs_and_unknown_names_are_none() {
    use super::{field_type, FieldType, FIELDS, LLAMA_BENCH_FIELDS};
    // llama-bench's typing (test_params::get_field_type), checked against the table that the
    // record's Rust types generate.
    let ints = [
        "build_number",
        "n_batch",
        "n_ubatch",
        "n_threads",
        "poll",
        "model_size",
        "model_n_params",
        "n_gpu_layers",
        "main_gpu",
        "n_prompt",
        "n_gen",
        "n_depth",
        "avg_ns",
        "stddev_ns",
        "no_op_offload",
        "n_cpu_moe",
        "fit_target",
        "fit_min_ctx",
        "flash_attn",
    ];
    let bools = ["no_kv_offload", "cpu_strict", "embeddings", "no_host", "repack"];
    for f in FIELDS {
        let want = if ints.contains(&f.name) {
            FieldType::Int
        } else if bools.contains(&f.name) {
            FieldType::Bool
        } else if ["avg_ts", "stddev_ts"].contains(&f.name) {
            FieldType::Float
        } else {
            FieldType::String
        };
        assert_eq!(f.ty, want, "{}", f.name);
    }
    assert_eq!(FIELDS.iter().map(|f| f.name).collect::<Vec<_>>(), LLAMA_BENCH_FIELDS);
    assert_eq!(field_type("n_treads"), None);
    assert_eq!(records(&grid())[0].value_str("n_treads"), None);
}
