//! The `--quick` experiments: each runs in seconds on the CPU engine and writes a well-formed
//! JSON, Markdown table and PNG; only robust facts are asserted (the drift check within its
//! Monte-Carlo error, m-SAM with m = 1 differing from SAM, tables with one row per cell).

use samlab::cli::experiment::run_experiment;
use samlab::experiments::{Experiment, Options, TrialResult};
use serde_json::Value;

fn run(exp: Experiment) -> (Value, String) {
    let dir = std::env::temp_dir().join(format!("samlab-exp-{}-{}", exp.name(), std::process::id()));
    let opts = Options { seeds: 2, quick: true, ..Options::default() };
    let w = run_experiment(exp, &opts, dir.to_str().unwrap(), true).unwrap_or_else(|e| panic!("{}: {e}", exp.name()));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&w.json).unwrap()).unwrap();
    let md = std::fs::read_to_string(&w.markdown).unwrap();
    let png = std::fs::read(&w.png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}: not a PNG", exp.name());
    assert!(png.len() > 10_000, "{}: a {}-byte figure is blank", exp.name(), png.len());
    assert!(md.starts_with(&format!("## {}", exp.name())) && md.contains("machine:"), "{md}");
    (json, md)
}

fn results(json: &Value) -> Vec<TrialResult> {
    serde_json::from_value(json["results"].clone()).unwrap()
}

/// Table rows are `| series | x | …`: one per (series, x) cell, each with every column.
fn check_table(md: &str, results: &[TrialResult]) {
    let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    let columns = lines[0].matches('|').count();
    let mut cells: Vec<(String, Option<f64>)> = results.iter().map(|r| (r.series.clone(), r.x)).collect();
    cells.dedup();
    cells.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.partial_cmp(&b.1).unwrap()));
    cells.dedup();
    assert_eq!(lines.len() - 2, cells.len(), "{md}");
    for l in &lines {
        assert_eq!(l.matches('|').count(), columns, "ragged row {l}");
    }
}

#[test]
fn m_sweep_quick_is_well_formed_and_m1_differs_from_sam() {
    let (json, md) = run(Experiment::MSweep);
    let r = results(&json);
    check_table(&md, &r);
    assert!(r.iter().all(|t| t.trace_v.is_some_and(|v| v > 0.0) && t.lambda_max.is_some_and(|v| v > 0.0)));
    for seed in 0..2 {
        let at = |m: f64| r.iter().find(|t| t.x == Some(m) && t.seed == seed).unwrap();
        // m = B is SAM; m = 1 must train differently.
        assert_ne!(at(128.0).final_train_loss, at(1.0).final_train_loss);
    }
}

#[test]
fn label_noise_quick_reports_memorisation_only_with_noise() {
    let (json, md) = run(Experiment::LabelNoise);
    let r = results(&json);
    check_table(&md, &r);
    assert!(r.iter().all(|t| (t.x == Some(0.0)) == t.memorized.is_none()));
}

#[test]
fn noise_trace_quick_measures_every_optimizer() {
    let (json, md) = run(Experiment::NoiseTrace);
    let r = results(&json);
    check_table(&md, &r);
    assert!(r.iter().all(|t| t.trace_v.is_some()));
}

#[test]
fn rwsam_lambda_quick_hits_its_target_ess_and_lambda_zero_is_sam() {
    let (json, md) = run(Experiment::RwsamLambda);
    let r = results(&json);
    check_table(&md, &r);
    for t in r.iter().filter(|t| t.series == "RW-SAM target ESS") {
        assert!((t.mean_ess.unwrap() - t.x.unwrap()).abs() < 1e-3, "{t:?}");
    }
    for seed in 0..2 {
        let sam = r.iter().find(|t| t.series == "SAM" && t.seed == seed).unwrap();
        let rw0 = r.iter().find(|t| t.series == "RW-SAM exact" && t.x == Some(0.0) && t.seed == seed).unwrap();
        assert_eq!(sam.final_train_loss, rw0.final_train_loss);
    }
}

#[test]
fn cost_quick_times_every_optimizer() {
    let (json, md) = run(Experiment::Cost);
    let r = results(&json);
    check_table(&md, &r);
    assert_eq!(r.len(), 16);
    assert!(r.iter().all(|t| t.ms_per_step > 0.0));
}

#[test]
fn drift_check_quick_is_within_monte_carlo_error() {
    let (json, md) = run(Experiment::DriftCheck);
    let rows = json["report"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for row in rows {
        assert!(row["max_z"].as_f64().unwrap() < 4.5, "{row}");
    }
    assert!(md.contains("| 1 |"));
}
