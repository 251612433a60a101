//! The store's behaviour, written once and run against both backends: SQLite (a file in a
//! temporary directory) and PostgreSQL (a fresh schema per test in the database named by
//! `BENCHKIT_TEST_POSTGRES`, so tests running in parallel never see each other's rows).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::import::{export, import_file, import_text, ExportFormat, ImportError, ImportFormat};
use super::rankings::{self, RankBy, RankMetric};
use super::*;

/// The variable that names the PostgreSQL test database.
const PG_ENV: &str = "BENCHKIT_TEST_POSTGRES";

/// Set in the child process of the interrupted-writer test: the store it writes to.
const CHILD_ENV: &str = "BENCHKIT_STORE_TEST_CHILD_SPEC";

/// One test's database; dropping it removes it.
struct TestDb {
    spec: String,
    postgres: bool,
    _dir: Option<tempfile::TempDir>,
    #[cfg(feature = "postgres")]
    schema: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        #[cfg(feature = "postgres")]
        if let Some((admin, schema)) = &self.schema {
            // Best effort: a leftover schema costs disk space, not correctness (names are unique).
            if let Ok(mut c) = ::postgres::Client::connect(admin, ::postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        }
    }
}

fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("sub").join("results.db").to_string_lossy().into_owned();
    TestDb {
        spec,
        postgres: false,
        _dir: Some(dir),
        #[cfg(feature = "postgres")]
        schema: None,
    }
}

#[cfg(feature = "postgres")]
fn postgres_url() -> String {
    postgres_url_from(std::env::var(PG_ENV).ok())
}

/// The test database's URL, or a failure that says how to get one: never a silent skip.
fn postgres_url_from(value: Option<String>) -> String {
    match value {
        Some(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{PG_ENV} is not set: the PostgreSQL store tests need a server. Run `eval \"$(scripts/test-services.sh)\"` \
             in the repository root (it starts PostgreSQL on loopback and exports {PG_ENV}), then run the tests again"
        ),
    }
}

#[cfg(feature = "postgres")]
fn postgres_db(test: &str) -> TestDb {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let admin = postgres_url();
    let mut schema =
        format!("bk_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), test.to_ascii_lowercase());
    schema.truncate(63);
    let mut c = ::postgres::Client::connect(&admin, ::postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {PG_ENV}={}: {e}", redact_url(&admin)));
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\"")).unwrap();
    let sep = if admin.contains('?') { '&' } else { '?' };
    let spec = format!("{admin}{sep}options=-csearch_path%3D{schema}");
    TestDb { spec, postgres: true, _dir: None, schema: Some((admin, schema)) }
}

/// The same test body against each backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(&super::sqlite_db());
            })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(&super::postgres_db(stringify!($name)));
            })*
        }
    };
}

both_backends!(
    round_trip_and_generation,
    filters_select_runs_and_records,
    run_status_updates,
    migrations_upgrade_old_stores_and_refuse_newer_ones,
    read_only_stores_refuse_writes,
    failed_inserts_leave_nothing,
    imports_llama_bench_outputs,
    imports_vllm_results_and_refuses_foreign_files_whole,
    exports_jsonl_and_csv,
    rankings_over_stored_runs,
    concurrent_writers_take_turns,
);

fn count(store: &Store, table: &str) -> i64 {
    store.lock().query(&format!("SELECT count(*) FROM {table}"), &[]).unwrap()[0][0].int()
}

fn meta(commit: &str, machine: &str) -> RunMeta {
    RunMeta {
        kind: "bench".into(),
        source: "benchkit".into(),
        label: Some("nightly".into()),
        started_at: "2026-01-02T03:04:05Z".into(),
        benchkit_version: Some("0.1.0".into()),
        build_commit: commit.into(),
        build_number: 4242,
        machine: machine.into(),
        host: Some("box1".into()),
        status: "ok".into(),
        error: None,
        provenance: json!({ "build": { "build_commit": commit }, "seeds": [1, 2], "nested": { "x": 1.5 } }),
    }
}

fn record(name: &str, model: &str, threads: &str, samples: &[f64]) -> StoredRecord {
    StoredRecord {
        kind: "bench".into(),
        name: name.into(),
        model: model.into(),
        status: "ok".into(),
        error: None,
        params: BTreeMap::from([
            ("n_threads".to_string(), threads.to_string()),
            ("backends".to_string(), "CPU,BLAS".to_string()),
            ("n_prompt".to_string(), if name.starts_with("pp") { "512" } else { "0" }.to_string()),
            ("n_gen".to_string(), if name.starts_with("tg") { "128" } else { "0" }.to_string()),
        ]),
        metrics: BTreeMap::from([
            ("ts".to_string(), Metric::from_samples("t/s", true, samples.to_vec())),
            // A metric known only by its summary, with no stddev.
            ("j_per_token".to_string(), Metric::summary("J/token", false, 0.25, None, 1)),
        ]),
        telemetry: Some(json!({ "energy": { "j_per_token": 0.25 }, "gpus": [] })),
        result: json!({ "test": name, "samples_ts": samples, "flag": true, "none": null }),
    }
}

fn round_trip_and_generation(db: &TestDb) {
    let store = Store::open(&db.spec).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.generation().unwrap(), 0);
    assert!(store.entries(&Filter::all()).unwrap().is_empty());

    let m = meta("0123456789abcdef", "cpu A");
    let run = store.insert_run(&m).unwrap();
    assert_eq!(store.generation().unwrap(), 1);
    let mut failed = record("tg128", "model-b", "2", &[]);
    failed.status = "failed".into();
    failed.error = Some("crashed: signal 11".into());
    failed.metrics.clear();
    failed.telemetry = None;
    let recs = [record("pp512", "model-a", "1", &[100.0, 101.5, 99.25]), failed];
    let mut ids = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        ids.push(store.insert_record(run, r).unwrap());
        assert_eq!(store.generation().unwrap(), 2 + i as i64, "every write moves the generation");
    }
    assert!(ids[0] < ids[1]);

    let runs = store.runs(&Filter::all()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, run);
    assert_eq!(runs[0].meta, m, "the run's metadata comes back as written");
    assert_eq!(runs[0].n_records, 2);
    assert!(!runs[0].stored_at.is_empty());

    let entries = store.entries(&Filter::all()).unwrap();
    assert_eq!(entries.len(), 2);
    for (i, (e, r)) in entries.iter().zip(&recs).enumerate() {
        assert_eq!((e.id, e.seq), (ids[i], i as i64));
        assert_eq!(&e.record, r, "record {i} comes back as written");
        assert_eq!(e.run.id, run);
    }
    let ts = &entries[0].record.metrics["ts"];
    assert_eq!(ts.samples, [100.0, 101.5, 99.25]);
    assert_eq!((ts.n, ts.mean), (3, Some((100.0 + 101.5 + 99.25) / 3.0)));
    assert_eq!(entries[0].record.metrics["j_per_token"].stddev, None);

    // A second run's records number from 0 again; reopening sees everything.
    let run2 = store.insert_run(&meta("fedcba9876543210", "cpu B")).unwrap();
    assert_ne!(run2, run);
    store.insert_record(run2, &recs[0]).unwrap();
    let g = store.generation().unwrap();
    assert_eq!(g, 5);
    drop(store);
    let store = Store::open(&db.spec).unwrap();
    assert_eq!(store.generation().unwrap(), g);
    let entries = store.entries(&Filter::all()).unwrap();
    assert_eq!(entries.iter().map(|e| (e.run.id, e.seq)).collect::<Vec<_>>(), [(run, 0), (run, 1), (run2, 0)]);
}

fn filters_select_runs_and_records(db: &TestDb) {
    let store = Store::open(&db.spec).unwrap();
    let a = store.insert_run(&meta("abcdef0123456789", "cpu A")).unwrap();
    let b = store.insert_run(&meta("0123456789abcdef", "cpu B").label(Some("weekly".into()))).unwrap();
    store.insert_record(a, &record("pp512", "model-a", "1", &[10.0])).unwrap();
    store.insert_record(a, &record("tg128", "model-a", "2", &[20.0])).unwrap();
    store.insert_record(b, &record("pp512", "model-b", "4", &[30.0])).unwrap();

    let names = |f: &str| -> Vec<(String, String)> {
        store
            .entries(&Filter::parse(f).unwrap())
            .unwrap()
            .into_iter()
            .map(|e| (e.record.model, e.record.params["n_threads"].clone()))
            .collect()
    };
    let pair = |m: &str, t: &str| (m.to_string(), t.to_string());
    assert_eq!(names("").len(), 3);
    assert_eq!(names("model=model-a"), [pair("model-a", "1"), pair("model-a", "2")]);
    assert_eq!(names("n_threads=1|4"), [pair("model-a", "1"), pair("model-b", "4")]);
    assert_eq!(names("n_threads!=1"), [pair("model-a", "2"), pair("model-b", "4")]);
    assert_eq!(names("test=pp512,machine=cpu B"), [pair("model-b", "4")]);
    assert_eq!(names("name=tg128"), [pair("model-a", "2")]);
    // A commit matches by a prefix of four characters or more, as git abbreviates.
    assert_eq!(names("commit=abcd").len(), 2);
    assert_eq!(names("commit=abc"), []);
    assert_eq!(names("build_commit=0123456789abcdef"), [pair("model-b", "4")]);
    assert_eq!(names(&format!("run={}", b.0)), [pair("model-b", "4")]);
    assert_eq!(names("label=weekly"), [pair("model-b", "4")]);
    // A comma inside a value stays in it.
    assert_eq!(names("backends=CPU,BLAS,n_threads=2"), [pair("model-a", "2")]);
    assert_eq!(names("backends=CPU"), []);
    assert_eq!(names("no_such_param=1"), []);
    assert_eq!(names("no_such_param!=1").len(), 3);

    let run_ids =
        |f: &str| store.runs(&Filter::parse(f).unwrap()).unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(run_ids(""), [a, b]);
    assert_eq!(run_ids("machine=cpu A"), [a]);
    assert_eq!(run_ids("source=benchkit,commit=0123"), [b]);
    // Record-level conditions do not restrict runs.
    assert_eq!(run_ids("model=model-b"), [a, b]);
    assert!(Filter::parse("model").is_err());
}

fn run_status_updates(db: &TestDb) {
    let store = Store::open(&db.spec).unwrap();
    let run = store.insert_run(&meta("c0ffee00", "m")).unwrap();
    store.set_run_status(run, "build_failed", Some("cmake: error")).unwrap();
    let g = store.generation().unwrap();
    assert_eq!(g, 2);
    let r = &store.runs(&Filter::parse("run_status=build_failed").unwrap()).unwrap()[0];
    assert_eq!((r.meta.status.as_str(), r.meta.error.as_deref()), ("build_failed", Some("cmake: error")));
    store.set_run_status(run, "ok", None).unwrap();
    assert_eq!(store.runs(&Filter::all()).unwrap()[0].meta.error, None);
    assert!(
        matches!(store.set_run_status(RunId(run.0 + 100), "ok", None), Err(StoreError::NoRun(id)) if id == run.0 + 100)
    );
    assert_eq!(store.generation().unwrap(), g + 1, "a refused write does not move the generation");
}

/// Writes a run and a record as benchkit 0.1's version-1 schema had them (no run status).
fn write_v1_rows(store: &Store) -> i64 {
    let mut c = store.lock();
    let run = c
        .query(
            "INSERT INTO runs (kind, source, label, started_at, stored_at, benchkit_version, build_commit, build_number, machine, host, provenance)
             VALUES ('bench', 'benchkit', NULL, '2025-01-01T00:00:00Z', '2025-01-01T00:00:01Z', '0.0.9', 'aaaabbbbcccc', 7, 'old cpu', NULL, '{\"old\":true}') RETURNING id",
            &[],
        )
        .unwrap()[0][0]
        .int();
    let rec = c
        .query(
            "INSERT INTO records (run_id, seq, kind, name, model, status, error, result, stored_at)
             VALUES (?, 0, 'bench', 'pp512', 'old model', 'ok', NULL, '{}', '2025-01-01T00:00:01Z') RETURNING id",
            &[run.into()],
        )
        .unwrap()[0][0]
        .int();
    c.execute("INSERT INTO params (record_id, name, value) VALUES (?, 'n_threads', '8')", &[rec.into()]).unwrap();
    c.execute(
        "INSERT INTO metrics (record_id, name, unit, higher_is_better, mean, stddev, n) VALUES (?, 'ts', 't/s', 1, 55.5, NULL, 2)",
        &[rec.into()],
    )
    .unwrap();
    for (i, v) in [55.0, 56.0].into_iter().enumerate() {
        c.execute(
            "INSERT INTO samples (record_id, metric, idx, value) VALUES (?, 'ts', ?, ?)",
            &[rec.into(), (i as i64).into(), v.into()],
        )
        .unwrap();
    }
    run
}

fn migrations_upgrade_old_stores_and_refuse_newer_ones(db: &TestDb) {
    // The migration mechanism records each step it applied.
    let old = Store::open_at(&db.spec, 1, false).unwrap();
    assert_eq!(old.schema_version().unwrap(), 1);
    let run = write_v1_rows(&old);
    drop(old);

    let e = Store::open_read_only(&db.spec).unwrap_err();
    assert!(matches!(&e, StoreError::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("open it for writing once"), "{e}");
    assert!(e.to_string().contains("schema version 1"), "{e}");

    let store = Store::open(&db.spec).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let steps = store
        .lock()
        .query("SELECT version, what, benchkit_version FROM schema_migrations ORDER BY version", &[])
        .unwrap();
    assert_eq!(steps.iter().map(|r| r[0].int()).collect::<Vec<_>>(), (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    assert!(steps.iter().all(|r| !r[1].string().is_empty() && r[2].string() == env!("CARGO_PKG_VERSION")));

    // The old rows are still there, with the new column's default.
    let entries = store.entries(&Filter::all()).unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!((e.run.id.0, e.run.meta.status.as_str(), e.run.meta.build_commit.as_str()), (run, "ok", "aaaabbbbcccc"));
    assert_eq!(e.run.meta.provenance, json!({ "old": true }));
    assert_eq!(e.record.params["n_threads"], "8");
    assert_eq!(e.record.metrics["ts"].samples, [55.0, 56.0]);
    assert_eq!(e.record.metrics["ts"].mean, Some(55.5));
    // And the upgraded store takes new writes.
    store.set_run_status(RunId(run), "interrupted", None).unwrap();
    store.insert_record(RunId(run), &record("tg128", "old model", "8", &[5.0])).unwrap();
    assert_eq!(store.entries(&Filter::all()).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1]);
    drop(store);

    // Opening again migrates nothing.
    let store = Store::open(&db.spec).unwrap();
    assert_eq!(count(&store, "schema_migrations"), SCHEMA_VERSION);
    assert!(Store::open_read_only(&db.spec).is_ok());

    // A newer benchkit's store is refused, not guessed at, by writers and readers alike.
    let newer = SCHEMA_VERSION + 1;
    store
        .lock()
        .execute(
            "INSERT INTO schema_migrations (version, applied_at, benchkit_version, what) VALUES (?, 'later', '9.9.9', 'the future')",
            &[newer.into()],
        )
        .unwrap();
    drop(store);
    for e in [Store::open(&db.spec).unwrap_err(), Store::open_read_only(&db.spec).unwrap_err()] {
        assert!(
            matches!(e, StoreError::NewerSchema { found, supported } if found == newer && supported == SCHEMA_VERSION),
            "{e:?}"
        );
        assert!(e.to_string().contains("upgrade benchkit"), "{e}");
    }
}

fn read_only_stores_refuse_writes(db: &TestDb) {
    if db.postgres {
        // An empty database is not a store, and reading it creates nothing.
        let e = Store::open_read_only(&db.spec).unwrap_err();
        assert!(e.to_string().contains("not a benchkit store"), "{e}");
    } else {
        let e = Store::open_read_only(&db.spec).unwrap_err();
        assert!(matches!(&e, StoreError::NotFound(p) if p == Path::new(&db.spec)), "{e:?}");
        assert!(!Path::new(&db.spec).exists(), "a read-only open created {}", db.spec);
    }
    let writer = Store::open(&db.spec).unwrap();
    let run = writer.insert_run(&meta("c0ffee00", "m")).unwrap();
    let reader = Store::open_read_only(&db.spec).unwrap();
    assert_eq!(reader.generation().unwrap(), 1);
    assert!(reader.insert_run(&meta("c0ffee00", "m")).is_err());
    assert!(reader.insert_record(run, &record("pp512", "m", "1", &[1.0])).is_err());
    assert_eq!(count(&writer, "runs"), 1);
    assert_eq!(count(&writer, "records"), 0);
    // The reader sees what the writer commits after it opened.
    writer.insert_record(run, &record("pp512", "m", "1", &[1.0])).unwrap();
    assert_eq!(reader.generation().unwrap(), 2);
    assert_eq!(reader.entries(&Filter::all()).unwrap().len(), 1);
}

fn table_counts(store: &Store) -> [i64; 5] {
    ["records", "params", "metrics", "samples", "telemetry"].map(|t| count(store, t))
}

fn failed_inserts_leave_nothing(db: &TestDb) {
    let store = Store::open(&db.spec).unwrap();
    let run = store.insert_run(&meta("c0ffee00", "m")).unwrap();
    store.insert_record(run, &record("pp512", "m", "1", &[1.0, 2.0])).unwrap();
    let before = table_counts(&store);
    assert_eq!(before, [1, 4, 2, 2, 1]);
    let g = store.generation().unwrap();

    let e = store.insert_record(RunId(run.0 + 1000), &record("pp512", "m", "1", &[1.0])).unwrap_err();
    assert!(matches!(e, StoreError::NoRun(_)), "{e:?}");
    assert_eq!(table_counts(&store), before);

    // A failure at the record's last statement (its telemetry, after its row, parameters,
    // metrics and samples went in): the table is renamed away for the attempt.
    store.lock().batch("ALTER TABLE telemetry RENAME TO telemetry_away").unwrap();
    let e = store.insert_record(run, &record("tg128", "m", "1", &[3.0, 4.0, 5.0])).unwrap_err();
    store.lock().batch("ALTER TABLE telemetry_away RENAME TO telemetry").unwrap();
    assert!(matches!(&e, StoreError::Database(m) if m.contains("telemetry")), "the database's own message: {e:?}");
    assert_eq!(table_counts(&store), before, "a failed insert left rows behind");
    assert_eq!(store.generation().unwrap(), g, "a failed write moved the generation");

    // The connection is usable after the rollback, and the run's numbering has no gap.
    store.insert_record(run, &record("tg128", "m", "1", &[3.0, 4.0, 5.0])).unwrap();
    assert_eq!(store.entries(&Filter::all()).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(store.generation().unwrap(), g + 1);
}

fn concurrent_writers_take_turns(db: &TestDb) {
    let first = Store::open(&db.spec).unwrap();
    let run = first.insert_run(&meta("c0ffee00", "m")).unwrap();
    // Separate connections, as separate processes would have: each numbers its record from
    // what the other committed, never from the same `max(seq)`.
    let stores: Vec<Store> = (0..3).map(|_| Store::open(&db.spec).unwrap()).collect();
    std::thread::scope(|s| {
        for (t, store) in stores.iter().enumerate() {
            s.spawn(move || {
                for i in 0..15 {
                    store.insert_record(run, &record("pp512", &format!("m{t}"), &i.to_string(), &[1.0])).unwrap();
                }
            });
        }
    });
    let seqs: Vec<i64> = first.entries(&Filter::all()).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..45).collect::<Vec<_>>());
    assert_eq!(first.generation().unwrap(), 46);
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store").join(name)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn imports_llama_bench_outputs(db: &TestDb) {
    let store = Store::open(&db.spec).unwrap();
    let mut params_by_format = Vec::new();
    for (file, format, with_samples) in [
        ("llama-bench.json", ImportFormat::LlamaBenchJson, true),
        ("llama-bench.jsonl", ImportFormat::LlamaBenchJsonl, true),
        ("llama-bench.csv", ImportFormat::LlamaBenchCsv, false),
        ("llama-bench.sql", ImportFormat::LlamaBenchSql, false),
    ] {
        // The format is told and detected alike.
        for format in [format, ImportFormat::Auto] {
            let report = import_file(&store, &fixture(file), format, None).unwrap();
            assert_eq!((report.runs.len(), report.records), (1, 2), "{file}");
            let run = report.runs[0];
            let entries = store.entries(&Filter::parse(&format!("run={}", run.0)).unwrap()).unwrap();
            assert_eq!(entries.len(), 2, "{file}");
            let m = &entries[0].run.meta;
            assert_eq!(
                (m.source.as_str(), m.kind.as_str(), m.build_commit.as_str(), m.build_number),
                ("llama-bench", "bench", "3f4fc97f", 6123),
                "{file}"
            );
            assert_eq!(m.machine, "AMD EPYC 7B13 64-Core Processor");
            assert_eq!(m.label.as_deref(), Some(file));
            assert_eq!(m.started_at, "2025-06-01T10:00:00Z");
            let (pp, tg) = (&entries[0].record, &entries[1].record);
            assert_eq!((pp.name.as_str(), tg.name.as_str()), ("pp64", "tg16"), "{file}");
            assert_eq!(pp.model, "gemma3 270M Q4_K - Medium");
            assert_eq!(pp.status, "ok");
            for (k, v) in [
                ("n_threads", "2"),
                ("n_prompt", "64"),
                ("n_gen", "0"),
                ("n_batch", "2048"),
                ("cpu_strict", "0"),
                ("repack", "1"),
                ("flash_attn", "-1"),
                ("type_k", "f16"),
                ("tensor_split", "0.00"),
                ("backends", "CPU"),
                ("model_size", "241410048"),
            ] {
                assert_eq!(pp.params.get(k).map(String::as_str), Some(v), "{file}: {k}");
            }
            for k in ["test_time", "avg_ts", "samples_ts", "build_commit", "cpu_info", "model_filename"] {
                assert!(!pp.params.contains_key(k), "{file}: {k} is not a parameter");
            }
            let (ts, tg_ts) = (&pp.metrics["ts"], &tg.metrics["ts"]);
            assert!(ts.higher_is_better && ts.unit == "t/s");
            if with_samples {
                // llama-bench prints each repetition's t/s with six significant digits.
                assert_eq!(ts.samples, [128.0, 123.077, 133.333], "{file}");
                assert_eq!(tg_ts.samples, [20.0, 20.2532, 19.7531], "{file}");
                assert_eq!(ts.n, 3);
                assert!(close(ts.mean.unwrap(), (128.0 + 123.077 + 133.333) / 3.0));
            } else {
                assert!(ts.samples.is_empty(), "{file}");
                assert_eq!((ts.mean, ts.stddev), (Some(128.136752), Some(5.129572)), "{file}");
                assert_eq!(tg_ts.mean, Some(20.002084));
            }
            params_by_format.push((file, pp.params.clone(), tg.params.clone()));
        }
    }
    // Every format spells every parameter alike, so imported rows of one format join another's.
    for (file, pp, tg) in &params_by_format[1..] {
        assert_eq!(pp, &params_by_format[0].1, "{file}");
        assert_eq!(tg, &params_by_format[0].2, "{file}");
    }
    assert_eq!(store.runs(&Filter::parse("source=llama-bench").unwrap()).unwrap().len(), 8);
}

fn imports_vllm_results_and_refuses_foreign_files_whole(db: &TestDb) {
    let store = Store::open(&db.spec).unwrap();
    let report = import_file(&store, &fixture("vllm.json"), ImportFormat::Auto, Some("vllm-run")).unwrap();
    assert_eq!((report.runs.len(), report.records), (1, 1));
    let e = &store.entries(&Filter::all()).unwrap()[0];
    let m = &e.run.meta;
    assert_eq!((m.source.as_str(), m.kind.as_str(), m.label.as_deref()), ("vllm", "replay", Some("vllm-run")));
    assert_eq!(m.started_at, "2025-06-01T10:15:00");
    let r = &e.record;
    assert_eq!(
        (r.kind.as_str(), r.name.as_str(), r.model.as_str(), r.status.as_str()),
        ("replay", "replay", "google/gemma-3-270m", "ok")
    );
    assert_eq!(
        r.params,
        BTreeMap::from([
            ("backend".to_string(), "vllm".to_string()),
            ("num_prompts".to_string(), "3".to_string()),
            ("request_rate".to_string(), "inf".to_string()),
            ("burstiness".to_string(), "1.0".to_string()),
        ])
    );
    let ttft = &r.metrics["ttft"];
    assert_eq!((ttft.unit.as_str(), ttft.higher_is_better, ttft.mean, ttft.n), ("ms", false, Some(200.0), 3));
    // vLLM's per-request seconds, as milliseconds.
    assert_eq!(ttft.samples.len(), 3);
    assert!(ttft.samples.iter().zip([100.0, 200.0, 300.0]).all(|(a, b)| close(*a, b)), "{:?}", ttft.samples);
    let itl = &r.metrics["itl"];
    assert_eq!(itl.samples.len(), 6, "every inter-token gap of every request");
    assert!(close(itl.samples[5], 60.0));
    assert_eq!(r.metrics["tpot"].mean, Some(35.0));
    assert_eq!(r.metrics["e2el"].mean, Some(500.0));
    assert_eq!(r.metrics["rps"].mean, Some(2.0));
    assert!(r.metrics["rps"].higher_is_better);
    assert_eq!(r.metrics["output_throughput"].mean, Some(20.0));
    assert_eq!(r.result["total_output_tokens"], 30);

    // A jsonl file whose second row is neither format stores nothing, not its first row.
    let first = std::fs::read_to_string(fixture("llama-bench.jsonl")).unwrap();
    let text = format!("{}\n{{\"hello\": 1}}\n", first.lines().next().unwrap());
    let before = table_counts(&store);
    let g = store.generation().unwrap();
    let e = import_text(&store, &text, Path::new("mixed.jsonl"), ImportFormat::Auto, None).unwrap_err();
    assert!(matches!(&e, ImportError::Parse { line: 2, .. }), "{e:?}");
    assert_eq!(table_counts(&store), before);
    assert_eq!(store.generation().unwrap(), g);
    assert_eq!(store.runs(&Filter::all()).unwrap().len(), 1);
    // A file cut off mid-record (llama-bench killed while writing) is refused with its line,
    // and its whole records before the cut are not stored either.
    let second = first.lines().nth(1).unwrap();
    let cut = format!("{}\n{}", first.lines().next().unwrap(), &second[..second.len() / 2]);
    let e = import_text(&store, &cut, Path::new("cut.jsonl"), ImportFormat::Auto, None).unwrap_err();
    assert!(matches!(&e, ImportError::Parse { line: 2, .. }), "{e:?}");
    assert_eq!(table_counts(&store), before);
    assert!(matches!(
        import_text(&store, "hello", Path::new("x.txt"), ImportFormat::Auto, None),
        Err(ImportError::UnknownFormat(_))
    ));
}

fn exports_jsonl_and_csv(db: &TestDb) {
    let store = Store::open(&db.spec).unwrap();
    import_file(&store, &fixture("llama-bench.json"), ImportFormat::Auto, None).unwrap();
    import_file(&store, &fixture("vllm.json"), ImportFormat::Auto, None).unwrap();
    let entries = store.entries(&Filter::all()).unwrap();
    assert_eq!(entries.len(), 3);

    let mut out = Vec::new();
    export(&entries, ExportFormat::Jsonl, &mut out).unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    // Each line reads back as the entry it was.
    for (l, e) in lines.iter().zip(&entries) {
        let back: Entry = serde_json::from_value(l.clone()).unwrap();
        assert_eq!(&back, e);
    }
    assert_eq!(lines[0]["run"]["source"], "llama-bench");
    assert_eq!(lines[0]["record"]["metrics"]["ts"]["samples"], json!([128.0, 123.077, 133.333]));

    let mut out = Vec::new();
    export(&entries, ExportFormat::Csv, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "{text}");
    let header = &rows[0];
    let col =
        |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {text}"));
    for name in
        ["run", "source", "build_commit", "test", "model", "n_threads", "ts_mean", "ts_stddev", "ts_n", "ttft_mean"]
    {
        col(name);
    }
    assert!(rows.iter().all(|r| r.len() == header.len()), "{text}");
    assert_eq!(rows[1][col("test")], "pp64");
    assert_eq!(rows[1][col("n_threads")], "2");
    assert_eq!(rows[1][col("ts_n")], "3");
    assert!(close(rows[1][col("ts_mean")].parse().unwrap(), entries[0].record.metrics["ts"].mean.unwrap()));
    assert_eq!(rows[3][col("source")], "vllm");
    assert_eq!(rows[3][col("ttft_mean")], "200");
    assert_eq!(rows[3][col("ts_mean")], "", "a replay has no t/s");
}

fn replay(model: &str, ttft: &[f64], rps: f64) -> StoredRecord {
    let metrics = [
        ("ttft", Metric::from_samples("ms", false, ttft.to_vec())),
        ("rps", Metric::summary("req/s", true, rps, None, 1)),
    ];
    StoredRecord { result: json!({}), ..StoredRecord::new("replay", "replay", model, [] as [(&str, &str); 0], metrics) }
}

fn rankings_over_stored_runs(db: &TestDb) {
    let store = Store::open(&db.spec).unwrap();
    let mut replay_meta = meta("c0ffee00", "m");
    replay_meta.kind = "replay".into();
    // "slow" in two runs (means 100 and 120), "fast" in one; a failed record does not count.
    for (model, ttft, rps) in [("slow", [90.0, 110.0], 1.0), ("slow", [115.0, 125.0], 1.5), ("fast", [10.0, 30.0], 4.0)]
    {
        let run = store.insert_run(&replay_meta).unwrap();
        store.insert_record(run, &replay(model, &ttft, rps)).unwrap();
    }
    let run = store.insert_run(&replay_meta).unwrap();
    let mut broken = replay("broken", &[1.0], 99.0);
    broken.status = "failed".into();
    store.insert_record(run, &broken).unwrap();

    let entries = store.entries(&Filter::all()).unwrap();
    let r = rankings::rankings(&entries, RankMetric::Ttft, RankBy::Model);
    assert_eq!(r.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["fast", "slow"]);
    assert_eq!((r[0].mean, r[0].n_runs, r[0].n_records), (20.0, 1, 1));
    assert_eq!((r[1].mean, r[1].n_runs, r[1].n_records), (110.0, 2, 2));
    // One run: the interval is over its raw samples; two: over the runs' means.
    let [lo, hi] = r[0].ci.unwrap();
    assert!((10.0..=20.0).contains(&lo) && (20.0..=30.0).contains(&hi), "{lo} {hi}");
    let [lo, hi] = r[1].ci.unwrap();
    assert!((100.0..=110.0).contains(&lo) && (110.0..=120.0).contains(&hi), "{lo} {hi}");
    let rps = rankings::rankings(&entries, RankMetric::Rps, RankBy::Model);
    assert_eq!(rps.iter().map(|r| (r.name.as_str(), r.mean)).collect::<Vec<_>>(), [("fast", 4.0), ("slow", 1.25)]);

    let v = rankings::llm_benchmark_json(&rankings::all_rankings(&entries, RankBy::Model));
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), RankMetric::ALL.len());
    for (d, m) in data.iter().zip(RankMetric::ALL) {
        assert_eq!(d.as_object().unwrap().keys().collect::<Vec<_>>(), [m.name()]);
    }
    assert_eq!(data[0]["ttft"][0]["llm_name"], "fast");
    assert_eq!(data[0]["ttft"][0]["mean_value"], 20.0);
    assert_eq!(data[0]["ttft"][1]["llm_name"], "slow");
    assert_eq!(data[0]["ttft"][1]["n_runs"], 2);
    assert_eq!(data[0]["ttft"][1]["unit"], "ms");
    assert!(data[0]["ttft"][1]["ci_low"].as_f64().is_some());
    assert_eq!(data[1]["tpot"], json!([]));

    // The same store's bench imports rank by build.
    import_file(&store, &fixture("llama-bench.json"), ImportFormat::Auto, None).unwrap();
    let entries = store.entries(&Filter::parse("source=llama-bench").unwrap()).unwrap();
    let pp = rankings::rankings(&entries, RankMetric::Pp, RankBy::Build);
    assert_eq!(pp.len(), 1);
    assert_eq!(pp[0].name, "3f4fc97f (6123)");
    assert!(close(pp[0].mean, (128.0 + 123.077 + 133.333) / 3.0));
    assert!(pp[0].ci.is_some());
    let tg = rankings::rankings(&entries, RankMetric::Tg, RankBy::Machine);
    assert_eq!(tg[0].name, "AMD EPYC 7B13 64-Core Processor");
}

#[test]
fn redacted_urls_never_show_a_password() {
    for (url, secret) in [
        ("postgres://bench:s3cret@db.example:5432/results", "s3cret"),
        ("postgresql://bench:s3cret@db.example/results?sslmode=disable", "s3cret"),
        ("postgres://bench:pa%40ss@db/results", "pa%40ss"),
        // Unescaped, as people type them.
        ("postgres://bench:p@ss@db/results", "p@ss"),
        ("postgres://bench:pa/ss@db/results", "pa/ss"),
        ("postgres://bench:pa?ss@db/results", "pa?ss"),
        ("postgres://bench@db/results?password=s3cret&application_name=x", "s3cret"),
        ("postgres://db/results?PASSWORD=s3cret", "s3cret"),
    ] {
        let r = redact_url(url);
        assert!(!r.contains(secret), "{url} -> {r}");
        assert!(r.contains("***"), "{url} -> {r}");
        assert!(r.contains("results"), "{url} -> {r}");
    }
    assert_eq!(redact_url("postgres://bench:s3cret@db:5432/results"), "postgres://bench:***@db:5432/results");
    assert_eq!(redact_url("postgres://db/results?options=-c%20x%3Dy"), "postgres://db/results?options=-c%20x%3Dy");
    assert_eq!(redact_url("postgres://bench@db/results"), "postgres://bench@db/results");
    assert_eq!(redact_url("results.db"), "results.db");
    // Neither the store's name nor its open error shows it (nothing listens on port 1).
    let e = Store::open("postgres://bench:s3cret@127.0.0.1:1/results").unwrap_err();
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    assert!(e.to_string().contains("bench:***@127.0.0.1:1"), "{e}");
}

/// The child of [`interrupted_writer`]: writes records until it is killed, saying which are
/// committed.
fn write_until_killed(spec: &str) {
    let store = Store::open(spec).unwrap();
    let run = store.insert_run(&meta("c0ffee00", "m")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut i = 0;
    // Bounded: a child whose parent died must not write forever.
    while Instant::now() < deadline {
        let id = store.insert_record(run, &big_record(i)).unwrap();
        println!("committed {id}");
        i += 1;
    }
}

const BIG_PARAMS: usize = 20;
const BIG_SAMPLES: usize = 300;

/// A record with many rows, so that a kill is likely to land inside its transaction.
fn big_record(i: usize) -> StoredRecord {
    let mut r = record("pp512", "m", "1", &[]);
    r.params = (0..BIG_PARAMS).map(|p| (format!("p{p}"), format!("{i}"))).collect();
    r.metrics = ["a", "b"]
        .into_iter()
        .map(|m| (m.to_string(), Metric::from_samples("ms", false, (0..BIG_SAMPLES).map(|s| (i * s) as f64).collect())))
        .collect();
    r
}

/// Runs the calling test's own binary as a writer, SIGKILLs it mid-stream, and checks that
/// every record it reported committed is there and whole, and that no record is partial.
/// Three rounds, each killing a new writer halfway into a record (by the pace of the ones
/// before), so that the kill lands inside a transaction, not between two.
fn interrupted_writer(db: &TestDb, test_name: &str) {
    let mut committed = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &db.spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut times = Vec::new();
        while times.len() < 5 {
            let Some(line) = lines.next() else {
                let status = child.wait().unwrap();
                panic!("round {round}: the writer ended ({status}) after {} records", times.len());
            };
            if let Some(id) = line.unwrap().strip_prefix("committed ") {
                committed.push(id.trim().parse::<i64>().unwrap());
                times.push(Instant::now());
            }
        }
        let per_record = (times[4] - times[0]) / 4;
        std::thread::sleep(per_record / 2);
        // std's kill is SIGKILL: no destructor, no rollback, no flush in the child.
        child.kill().unwrap();
        child.wait().unwrap();
        for line in lines {
            if let Some(id) = line.unwrap().strip_prefix("committed ") {
                committed.push(id.trim().parse().unwrap());
            }
        }
    }

    let store = Store::open(&db.spec).unwrap();
    let entries = store.entries(&Filter::all()).unwrap();
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    for id in &committed {
        assert!(ids.contains(id), "committed record {id} is missing ({ids:?})");
    }
    for e in &entries {
        assert_eq!(e.record, big_record(e.seq as usize), "record {} is not whole", e.id);
    }
    assert_eq!(store.runs(&Filter::all()).unwrap().len(), 3);
    let n = entries.len() as i64;
    assert!(n >= committed.len() as i64);
    let rows = table_counts(&store);
    assert_eq!(rows, [n, n * BIG_PARAMS as i64, n * 2, n * 2 * BIG_SAMPLES as i64, n], "rows of a half record");
    // The store takes writes again after the writers died holding its lock.
    let last = entries.last().unwrap();
    store.insert_record(last.run.id, &big_record(last.seq as usize + 1)).unwrap();
}

/// The libtest name of a test function in this module's `$module`.
fn test_name(module: &str, f: &str) -> String {
    let path = module.split_once("::").map_or(module, |(_, rest)| rest);
    format!("{path}::{f}")
}

mod interrupted {
    use super::*;

    #[test]
    fn sqlite_writer_killed_mid_record() {
        if let Ok(spec) = std::env::var(CHILD_ENV) {
            return write_until_killed(&spec);
        }
        interrupted_writer(&sqlite_db(), &test_name(module_path!(), "sqlite_writer_killed_mid_record"));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_writer_killed_mid_record() {
        if let Ok(spec) = std::env::var(CHILD_ENV) {
            return write_until_killed(&spec);
        }
        interrupted_writer(&postgres_db("killed"), &test_name(module_path!(), "postgres_writer_killed_mid_record"));
    }
}

/// Without the `postgres` feature the PostgreSQL suite is not built; when a test database is
/// configured, that is a mistake to report, not a reason to pass.
#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_suite_is_built_when_a_server_is_configured() {
    assert!(
        std::env::var_os(PG_ENV).is_none(),
        "{PG_ENV} is set but this build has no `postgres` feature, so the PostgreSQL store tests did not run: \
         run them with `cargo test -p benchkit --features postgres` (or `cargo test --workspace`)"
    );
}

#[test]
fn postgres_tests_without_a_server_fail_saying_how_to_start_one() {
    let panic = std::panic::catch_unwind(|| postgres_url_from(None)).unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("eval \"$(scripts/test-services.sh)\"") && text.contains(PG_ENV), "{text}");
    assert!(std::panic::catch_unwind(|| postgres_url_from(Some(" ".into()))).is_err());
    assert_eq!(postgres_url_from(Some("postgres://h/db".into())), "postgres://h/db");
}
