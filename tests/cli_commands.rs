//! `bench`, `experiment` and a diverging `train` through the built binary: what each writes, in
//! the shape the README documents.

mod common;

use common::cli::{ok, read_json, tmp};

#[test]
fn bench_times_each_optimizer_and_its_ratio_to_sgd() {
    let json = tmp("bench.json");
    let o = ok(&[
        "bench",
        "--backend",
        "cpu",
        "--model",
        "digits",
        "--optimizers",
        "sgd,sam,msam:8",
        "--steps",
        "3",
        "--landscape",
        "0",
        "--json",
        json.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&o.stdout);
    for label in ["SGD", "SAM", "m-SAM"] {
        assert!(table.contains(label), "{table}");
    }
    let doc = read_json(&json);
    assert_eq!(doc["samlab_version"], env!("CARGO_PKG_VERSION"));
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert!(r["median_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["engine"].as_str().unwrap().starts_with("CPU"), "{r}");
    }
    assert_eq!(rows[0]["optimizer"], "SGD");
    // Ratios only, never a timing claim (timings belong to the benchmark, not to tests).
    assert_eq!(rows[0]["ratio_to_sgd"], 1.0);
    let sgd = rows[0]["median_ms"].as_f64().unwrap();
    for r in rows {
        assert!((r["ratio_to_sgd"].as_f64().unwrap() - r["median_ms"].as_f64().unwrap() / sgd).abs() < 1e-12, "{r}");
    }
}

#[test]
fn experiment_writes_its_json_table_and_figure() {
    let dir = tmp("exp");
    ok(&["experiment", "noise-trace", "--quick", "--seeds", "1", "--out", dir.to_str().unwrap(), "--quiet"]);
    let doc = read_json(&dir.join("noise-trace.json"));
    assert_eq!(doc["trials"].as_array().unwrap().len(), 4);
    assert_eq!(doc["results"].as_array().unwrap().len(), 4);
    assert!(doc["results"].as_array().unwrap().iter().all(|r| r["trace_v"].as_f64().is_some_and(|v| v > 0.0)), "{}", doc["results"]);
    let md = std::fs::read_to_string(dir.join("noise-trace.md")).unwrap();
    assert!(md.contains("| SGD |"), "{md}");
    let png = std::fs::read(dir.join("noise-trace.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

/// With an evaluation after every step, weights that stop being finite are caught by the next
/// evaluation (the step's own loss was taken before its update): the run stops there, says where
/// and why, and the command still writes its metrics and exits 0.
#[test]
fn a_run_that_diverges_at_an_evaluation_stops_and_says_so() {
    let out = tmp("div.json");
    let o = ok(&[
        "train",
        "--dataset",
        "moons",
        "--lr",
        "10",
        "--momentum",
        "0.99",
        "--wd",
        "0.5",
        "--eval-every",
        "1",
        "--epochs",
        "50",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let doc = read_json(&out);
    let status = doc["status"].as_str().unwrap();
    assert!(status.starts_with("diverged at step ") && status.contains("the training loss is not finite"), "{status}");
    let steps = doc["steps"].as_u64().unwrap();
    assert!(steps < 50 * 15, "the run went on after diverging: {steps} steps");
    let evals = doc["history"]["evals"].as_array().unwrap();
    assert_eq!(evals.last().unwrap()["step"].as_u64(), Some(steps), "the evaluation that caught it is the last");
    assert!(evals.last().unwrap()["train_loss"].is_null(), "a non-finite loss is written as null");
    assert!(String::from_utf8_lossy(&o.stderr).contains("diverged"), "no warning on stderr");
}
