//! llama-bench's loading, offload and fit flags on the real model: each swept value is measured
//! with its own model load and shows up in its record and output rows.

use benchkit::bench::output::{to_string, OutputFormat};
use benchkit::bench::{parse_bool_list, parse_tensor_overrides, Grid, RunConfig, Status, Sweep};
use benchkit::{Backend, DeviceSelection, LazyMode, LoadMode};

fn quick() -> RunConfig {
    RunConfig { repetitions: 1, no_warmup: true, ..RunConfig::default() }
}

/// A tiny pp test on one thread over the real model.
fn tiny() -> Grid {
    Grid {
        n_prompt: vec![8],
        n_gen: vec![0],
        n_batch: vec![8],
        n_ubatch: vec![8],
        n_threads: vec![1],
        ..Grid::new(benchkit_suite::test_model())
    }
}

#[test]
fn repack_sweep_and_no_op_offload_are_measured_and_recorded() {
    let backend = Backend::init().unwrap();
    let grid = Grid { repack: parse_bool_list("--repack", "0,1").unwrap(), no_op_offload: vec![true], ..tiny() };
    let records: Vec<_> = Sweep::new(&backend, &grid, quick()).unwrap().collect();
    assert_eq!(records.len(), 2);
    for (r, repack) in records.iter().zip([false, true]) {
        assert_eq!(r.status, Status::Ok, "{:?}", r.error);
        assert!(r.avg_ts > 0.0);
        assert_eq!(r.repack, repack);
        assert_eq!(r.no_op_offload, 1);
        assert_eq!(r.test, "pp8");
    }
    let csv = to_string(&records, OutputFormat::Csv);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |f: &str| header.iter().position(|h| *h == f).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.trim_matches('"').split("\",\"").collect()).collect();
    assert_eq!([rows[0][col("repack")], rows[1][col("repack")]], ["0", "1"]);
    assert_eq!(rows[0][col("no_op_offload")], "1");
    let md = to_string(&records, OutputFormat::Md);
    assert!(md.lines().next().unwrap().contains("rpk") && md.contains("nopo"), "{md}");
}

#[test]
fn load_modes_devices_overrides_and_fit_load_the_real_model() {
    let backend = Backend::init().unwrap();
    let grid = Grid {
        load_mode: vec![LoadMode::None, LoadMode::Mmap],
        lazy_mode: vec![LazyMode::Off],
        devices: vec![DeviceSelection::None],
        // gemma-3 is dense: -ncmoe's expert patterns match nothing, the override moves the
        // first block's tensors to the CPU buffer type they already use.
        n_cpu_moe: vec![1],
        tensor_buft_overrides: parse_tensor_overrides(r"blk\.0\.=CPU").unwrap(),
        no_host: vec![true],
        ..tiny()
    };
    let records: Vec<_> = Sweep::new(&backend, &grid, quick()).unwrap().collect();
    assert_eq!(records.len(), 2);
    for (r, lm) in records.iter().zip(["none", "mmap"]) {
        assert_eq!(r.status, Status::Ok, "{:?}", r.error);
        assert_eq!(r.load_mode, lm);
        assert_eq!(r.lazy_mode, "off");
        assert_eq!(r.devices, "none");
        assert_eq!(r.n_cpu_moe, 1);
        assert_eq!(r.tensor_buft_overrides, r"blk\.0\.=CPU");
        assert!(r.no_host);
    }
    // On a build without offload devices a fit has nothing to distribute: measured, recorded.
    if backend
        .devices()
        .iter()
        .all(|d| !matches!(d.kind, benchkit::DeviceType::Gpu | benchkit::DeviceType::IntegratedGpu))
    {
        let grid = Grid { fit_target: vec![1024], fit_min_ctx: vec![4096], ..tiny() };
        let r = Sweep::new(&backend, &grid, quick()).unwrap().next().unwrap();
        assert_eq!(r.status, Status::Ok, "{:?}", r.error);
        assert_eq!((r.fit_target, r.fit_min_ctx), (1024, 4096));
    }
    // A bad buffer type is a failed point with its reason; the sweep goes on.
    let grid = Grid { tensor_buft_overrides: parse_tensor_overrides("x=NoSuchBuft,").unwrap(), ..tiny() };
    let records: Vec<_> = Sweep::new(&backend, &grid, quick()).unwrap().collect();
    assert_eq!(records[0].status, Status::Failed);
    assert!(records[0].error.as_deref().unwrap().contains("NoSuchBuft"), "{:?}", records[0].error);
    assert_eq!(records[1].status, Status::Ok, "{:?}", records[1].error);
    assert_eq!(records[1].tensor_buft_overrides, "none");
}
