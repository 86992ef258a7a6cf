//! The headless CLI end to end: training reaches the accuracies the README promises, the same
//! seed gives the same metrics JSON, the `step` oracle writes the documented format, and bad
//! input exits with status 2 and one line, never a panic.

mod common;

use common::cli::{read_json, samlab, tmp};
use serde_json::Value;
use std::path::PathBuf;

fn train(args: &[&str], out: &PathBuf) -> Value {
    let mut all = vec!["train", "--quiet", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = samlab(&all);
    assert!(o.status.success(), "train {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    read_json(out)
}

#[test]
fn sam_on_digits_reaches_95_percent_test_accuracy() {
    let m = train(&["--dataset", "digits", "--optimizer", "sam", "--epochs", "30"], &tmp("digits.json"));
    let acc = m["final"]["test_acc"].as_f64().unwrap();
    assert!(acc >= 0.95, "digits SAM test accuracy {acc}");
    // Per-epoch history: the initial evaluation plus one per epoch.
    assert_eq!(m["history"]["evals"].as_array().unwrap().len(), 31);
    assert_eq!(m["config"]["optimizer"]["kind"], "sam");
    assert!(m["wall_time_s"].as_f64().unwrap() > 0.0);
    assert_eq!(m["backend"], "cpu");
}

#[test]
fn sam_on_moons_reaches_97_percent_test_accuracy() {
    let m = train(&["--dataset", "moons", "--optimizer", "sam"], &tmp("moons.json"));
    let acc = m["final"]["test_acc"].as_f64().unwrap();
    assert!(acc >= 0.97, "moons SAM test accuracy {acc}");
}

#[test]
fn same_seed_gives_identical_metrics_json() {
    let args = ["--dataset", "spirals", "--optimizer", "rwsam", "--norm-estimator", "finite-difference", "--epochs", "3", "--seed", "5"];
    let mut a = train(&args, &tmp("a.json"));
    let mut b = train(&args, &tmp("b.json"));
    for m in [&mut a, &mut b] {
        m.as_object_mut().unwrap().remove("wall_time_s");
        m.as_object_mut().unwrap().remove("ms_per_step");
    }
    assert_eq!(a, b);
    let c = train(&["--dataset", "spirals", "--optimizer", "rwsam", "--epochs", "3", "--seed", "6"], &tmp("c.json"));
    assert_ne!(a["history"], c["history"]);
}

#[test]
fn label_noise_metrics_are_reported() {
    let m = train(&["--dataset", "digits", "--noise", "0.4", "--optimizer", "sgd", "--epochs", "2"], &tmp("noise.json"));
    let last = &m["final"];
    for key in ["clean_train_acc", "memorized", "best_test_acc"] {
        assert!(last[key].as_f64().is_some(), "{key} missing: {last}");
    }
}

#[test]
fn compare_writes_one_json_and_a_table() {
    let out = tmp("compare.json");
    let o = samlab(&["compare", "--quiet", "--dataset", "xor", "--epochs", "2", "--optimizers", "sgd,sam:0.1,msam:4,rwsam:2", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    for label in ["SGD", "SAM", "m-SAM m=4", "RW-SAM λ=2"] {
        assert!(table.contains(label), "{table}");
    }
    let doc = read_json(&out);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    // Same data, init and batch order: identical losses at step 0 before any update.
    let first: Vec<f64> = runs.iter().map(|r| r["history"]["steps"][0]["loss"].as_f64().unwrap()).collect();
    assert!(first.windows(2).all(|w| w[0] == w[1]), "{first:?}");
    assert_eq!(runs[1]["config"]["optimizer"]["rho"], 0.1);
}

#[test]
fn step_oracle_writes_updated_params_and_diagnostics() {
    let params = tmp("p.json");
    let batch = tmp("b.json");
    let out = tmp("s.json");
    std::fs::write(&params, r#"{"layers":[{"w":[[0.1,-0.2],[0.3,0.4],[-0.5,0.6]],"b":[0,0.1,0]},{"w":[[0.2,0.1,-0.3],[-0.1,0.5,0.2]],"b":[0.0,0.0]}]}"#)
        .unwrap();
    let z: Vec<String> = (0..17).map(|i| if i % 3 == 0 { "1" } else { "-1" }.to_string()).collect();
    std::fs::write(&batch, format!(r#"{{"x":[[1,2],[0.5,-1],[-1,0.3],[2,2]],"y":[0,1,1,0],"z":[{}]}}"#, z.join(","))).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["step", "--params", params.to_str().unwrap(), "--batch", batch.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = samlab(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        read_json(&out)
    };
    let sgd = run(&["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0", "--wd", "0"]);
    assert_eq!(sgd["layers"][0]["w"].as_array().unwrap().len(), 3);
    assert!(sgd["loss_before"].as_f64().unwrap() > 0.0);
    let sam0 = run(&["--optimizer", "sam", "--rho", "0", "--lr", "0.1", "--momentum", "0", "--wd", "0"]);
    assert_eq!(sgd["layers"], sam0["layers"]);
    let rw = run(&["--optimizer", "rwsam", "--lambda", "3", "--norm-estimator", "finite-difference"]);
    let p: Vec<f64> = rw["rwsam"]["weights"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(p.len(), 4);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!((rw["perturbation_norm"].as_f64().unwrap() - 0.05).abs() < 1e-9);
    // m-SAM differs from SAM by its micro-batches alone (every other setting the same), and with
    // m = B it is SAM again, up to rounding.
    let same = ["--rho", "0.3", "--lr", "0.1", "--momentum", "0", "--wd", "0"];
    let sam = run(&[&["--optimizer", "sam"][..], &same].concat());
    let msam = run(&[&["--optimizer", "msam", "--m", "2"][..], &same].concat());
    let msam_b = run(&[&["--optimizer", "msam", "--m", "4"][..], &same].concat());
    let flat = |v: &Value| -> Vec<f64> {
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| {
                let w = l["w"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>());
                w.chain(l["b"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap())).collect::<Vec<_>>()
            })
            .collect()
    };
    let gap = |a: &Value, b: &Value| flat(a).iter().zip(flat(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(gap(&msam, &sam) > 1e-6, "m-SAM m=2 equals SAM: {}", gap(&msam, &sam));
    assert!(gap(&msam_b, &sam) < 1e-12, "m-SAM m=B differs from SAM: {}", gap(&msam_b, &sam));
}

#[test]
fn bad_input_exits_with_status_2_and_one_clear_line() {
    let missing = tmp("missing.json");
    let malformed = tmp("malformed.json");
    std::fs::write(&malformed, "{\"layers\": [").unwrap();
    let good_params = tmp("gp.json");
    std::fs::write(&good_params, r#"{"layers":[{"w":[[0.1,0.2]],"b":[0]},{"w":[[1.0],[2.0]],"b":[0,0]}]}"#).unwrap();
    let bad_batch = tmp("bb.json");
    std::fs::write(&bad_batch, r#"{"x":[[1,2,3]],"y":[0]}"#).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--optimizer", "adam"], "optimizer"),
        (vec!["train", "--optimizer", "msam", "--m", "7"], "optimizer.m"),
        (vec!["train", "--rho", "-0.1"], "optimizer.rho"),
        (vec!["train", "--lr", "-1"], "optimizer.lr"),
        (vec!["train", "--hidden", ""], "model.hidden"),
        (vec!["train", "--dataset", "cifar"], "dataset"),
        (vec!["train", "--config", missing.to_str().unwrap()], "missing.json"),
        (vec!["train", "--config", malformed.to_str().unwrap()], "malformed JSON"),
        (vec!["step", "--params", malformed.to_str().unwrap(), "--batch", malformed.to_str().unwrap()], "malformed JSON"),
        (vec!["step", "--params", good_params.to_str().unwrap(), "--batch", bad_batch.to_str().unwrap()], "features"),
        (vec!["step", "--params", good_params.to_str().unwrap(), "--batch", missing.to_str().unwrap()], "missing.json"),
    ];
    for (args, needle) in cases {
        let o = samlab(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(err.contains(needle), "{args:?}: '{err}' does not mention {needle}");
        assert!(err.trim().lines().count() <= 3, "{args:?}: {err}");
    }
}
