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

/// The quick escape experiment through the binary: its report (JSON with the structured
/// verdicts, table, figure), the verdicts recorded in tests/expected/quick-verdicts.json, and
/// records that show every arm starting from the same w_SGD: at distance 0 with the same
/// λ_max and tr V at step 0, then recorded every K steps to the end.
#[test]
fn escape_quick_writes_its_report_and_every_arm_starts_at_sgds_end_point() {
    let dir = tmp("escape");
    let expected = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expected/quick-verdicts.json");
    let o = ok(&["experiment", "escape", "--quick", "--out", dir.to_str().unwrap(), "--quiet", "--check", expected]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("every verdict is as recorded"), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = read_json(&dir.join("escape.json"));
    assert!(doc["schema"].as_str().unwrap().starts_with("samlab.experiment/"), "{}", doc["schema"]);
    assert_eq!(doc["samlab_version"], env!("CARGO_PKG_VERSION"));
    let report = &doc["report"];
    let (steps, every) = (report["config"]["steps"].as_u64().unwrap(), report["config"]["every"].as_u64().unwrap());
    let arms: Vec<&str> = report["config"]["arms"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(arms, ["SGD", "m-SAM m=64", "m-SAM m=8", "m-SAM m=1", "m-SAM m=1, ρ=0.2"]);
    let seeds = report["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 3, "--quick runs 3 seeds");
    for s in seeds {
        let runs = s["arms"].as_array().unwrap();
        assert_eq!(runs.len(), arms.len());
        let at0 = |r: &serde_json::Value, key: &str| r["points"][0][key].as_f64().unwrap();
        for r in runs {
            assert_eq!(r["starts_at_w_sgd"], true, "{}", r["arm"]);
            let recorded: Vec<u64> = r["points"].as_array().unwrap().iter().map(|p| p["step"].as_u64().unwrap()).collect();
            assert_eq!(recorded, (0..=steps).step_by(every as usize).collect::<Vec<_>>(), "{}", r["arm"]);
            assert_eq!((at0(r, "distance"), at0(r, "barrier")), (0.0, 0.0));
            assert_eq!((at0(r, "lambda_max"), at0(r, "trace_v")), (at0(&runs[0], "lambda_max"), at0(&runs[0], "trace_v")), "{}", r["arm"]);
            let end = r["points"].as_array().unwrap().last().unwrap();
            assert!(end["distance"].as_f64().unwrap() > 0.0 && end["barrier"].as_f64().unwrap() >= 0.0, "{end}");
            assert_eq!(r["end_line_loss"].as_array().unwrap().len(), report["config"]["line_points"].as_u64().unwrap() as usize);
        }
    }
    let verdicts = doc["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 5);
    // Three seeds cannot reach p < 0.05 and a quick run refutes nothing: every claim says why.
    assert!(verdicts.iter().all(|v| v["verdict"] == "inconclusive" && v["reason"].as_str().is_some()), "{verdicts:?}");
    let md = std::fs::read_to_string(dir.join("escape.md")).unwrap();
    assert!(md.starts_with("## escape") && md.contains("Seeds: 3 (quick)"), "{md}");
    for arm in &arms {
        assert!(md.contains(&format!("| {arm} |")), "{md}");
    }
    let png = std::fs::read(dir.join("escape.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // The report rebuilds from its JSON without training, to the same verdicts.
    ok(&["experiment", "escape", "--quick", "--reuse", "--out", dir.to_str().unwrap(), "--quiet", "--check", expected]);
}

/// `experiment all --quick`: every experiment's files and the summary (the claims table with the
/// run's wall time, the contradictions, the RW-SAM conclusion, each section); rebuilt with
/// `--reuse` it states the recorded runs' time instead and keeps every verdict.
#[test]
fn all_quick_writes_every_section_and_the_summary() {
    let dir = tmp("all-quick");
    let out = dir.to_str().unwrap();
    let summary = dir.join("RESULTS.md");
    ok(&["experiment", "all", "--quick", "--out", out, "--quiet"]);
    let md = std::fs::read_to_string(&summary).unwrap();
    for part in [
        "## Every claim and its verdict",
        "Wall time of the whole run:",
        "## Where the findings contradict the paper",
        "## The RW-SAM question at this scale",
        "## m-sweep",
        "## escape",
        "## rwsam-drift",
    ] {
        assert!(md.contains(part), "{part} missing from {md}");
    }
    assert!(md.contains("Not run: long") && md.contains("## rwsam-grid-mnist"), "the long grid is named, not trained");
    let claims = |md: &str| md.lines().filter(|l| l.starts_with("| ") && l.contains("**")).map(str::to_string).collect::<Vec<_>>();
    ok(&["experiment", "all", "--quick", "--out", out, "--quiet", "--reuse"]);
    let again = std::fs::read_to_string(&summary).unwrap();
    assert!(again.contains("The recorded runs of the experiments that `all` trains took") && !again.contains("Wall time of the whole run"), "{again}");
    assert_eq!(claims(&again), claims(&md));
}

/// The recorded full runs (docs/results, 10 seeds) rebuilt without training give the verdicts
/// recorded in tests/expected/full-verdicts.json: a change to how a claim is judged that would
/// flip a finding of docs/RESULTS.md fails here until both are regenerated.
#[test]
fn the_recorded_full_runs_keep_their_verdicts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tmp("full-reuse");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(root.join("docs/results")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let expected = root.join("tests/expected/full-verdicts.json");
    let o = ok(&["experiment", "all", "--seeds", "10", "--reuse", "--out", dir.to_str().unwrap(), "--quiet", "--check", expected.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("every verdict is as recorded"), "{}", String::from_utf8_lossy(&o.stderr));
}
