//! `samlab measure` and `samlab landscape` end to end: the documented JSON, agreement with the
//! library, the PNG, and bad input refused with status 2 and a line naming what does not fit.

use samlab::metrics::{self, MeasureConfig, MlpObjective};
use samlab::model::Activation;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn samlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_samlab")).args(args).output().expect("the samlab binary runs")
}

/// A path in a directory of the calling test's own (test threads are named after their test).
fn tmp(name: &str) -> PathBuf {
    let test = std::thread::current().name().unwrap_or("test").replace("::", "-");
    let dir = std::env::temp_dir().join(format!("samlab-cli-metrics-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) -> Output {
    let o = samlab(args);
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn read_json(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

const PARAMS: &str = r#"{"layers":[{"w":[[0.1,-0.2],[0.3,0.4],[-0.5,0.6]],"b":[0,0.1,0]},{"w":[[0.2,0.1,-0.3],[-0.1,0.5,0.2]],"b":[0.0,0.0]}]}"#;
const BATCH: &str = r#"{"x":[[1,2],[0.5,-1],[-1,0.3],[2,2],[0.1,0.1],[-2,1],[1.5,-0.5],[0,1]],"y":[0,1,1,0,1,0,0,1]}"#;

#[test]
fn measure_on_a_batch_writes_every_metric_and_agrees_with_the_library() {
    let (params, batch, out) = (tmp("p.json"), tmp("b.json"), tmp("m.json"));
    std::fs::write(&params, PARAMS).unwrap();
    std::fs::write(&batch, BATCH).unwrap();
    ok(&[
        "measure",
        "--params",
        s(&params),
        "--batch",
        s(&batch),
        "--out",
        s(&out),
        "--activation",
        "tanh",
        "--top-k",
        "2",
        "--probes",
        "50",
        "--rho",
        "0.1",
        "--seed",
        "3",
    ]);
    let doc = read_json(&out);
    let m = &doc["measurement"];
    assert_eq!(m["n_eval"], 8);
    assert_eq!(m["rho"], 0.1);
    let top = floats(&m["top_eigenvalues"]);
    assert_eq!(top.len(), 2);
    assert!(top[0] >= top[1] && m["lambda_max"].as_f64().unwrap() == top[0]);
    assert!(m["trace_v"].as_f64().unwrap() > 0.0 && m["sharpness"].as_f64().unwrap() > 0.0);
    let ms: Vec<u64> = m["m_curve"].as_array().unwrap().iter().map(|p| p["m"].as_u64().unwrap()).collect();
    assert_eq!(ms, vec![1, 2, 4, 8]);
    let p = floats(&doc["rwsam"]["weights"]);
    assert_eq!(p.len(), 8);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);

    // The same numbers from the library in f64.
    let x: Vec<f64> = vec![1.0, 2.0, 0.5, -1.0, -1.0, 0.3, 2.0, 2.0, 0.1, 0.1, -2.0, 1.0, 1.5, -0.5, 0.0, 1.0];
    let y = vec![0, 1, 1, 0, 1, 0, 0, 1];
    let json: samlab::formats::ParamsJson = serde_json::from_str(PARAMS).unwrap();
    let (spec, w) = json.to_flat(Activation::Tanh).unwrap();
    let mut obj = MlpObjective::<f64>::new(spec, x, y).unwrap();
    let cfg = MeasureConfig { rho: 0.1, probes: 50, top_k: 2, seed: 3, ..MeasureConfig::default() };
    let want = metrics::measure(&mut obj, &w, &cfg, 0).unwrap().measurement;
    for (key, v) in [("lambda_max", want.lambda_max), ("trace_h", want.trace_h), ("trace_v", want.trace_v), ("sharpness", want.sharpness), ("loss", want.loss)]
    {
        assert!((m[key].as_f64().unwrap() - v).abs() <= 1e-12 * v.abs().max(1.0), "{key}: {} vs {v}", m[key]);
    }
}

#[test]
fn measure_on_a_dataset_uses_its_seeded_evaluation_subset() {
    let (params, t, out) = (tmp("xor-p.json"), tmp("xor-t.json"), tmp("xor-m.json"));
    ok(&["train", "--quiet", "--dataset", "xor", "--hidden", "8", "--epochs", "2", "--out", s(&t), "--save-params", s(&params)]);
    ok(&["measure", "--params", s(&params), "--dataset", "xor", "--eval-size", "100", "--rw-batch", "16", "--out", s(&out)]);
    let doc = read_json(&out);
    assert_eq!(doc["measurement"]["n_eval"], 100);
    assert_eq!(doc["source"]["dataset"], "xor");
    assert_eq!(doc["rwsam"]["batch"], 16);
    let curve = doc["measurement"]["m_curve"].as_array().unwrap();
    assert_eq!(curve.last().unwrap()["m"], 100, "up to the subset size, 100 itself included");
    for p in curve {
        assert!(p["bound"].as_f64().unwrap() > 0.0 && p["groups"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn landscape_trains_then_writes_grid_slices_trajectory_and_png() {
    let (out, png) = (tmp("land.json"), tmp("land.png"));
    let o = ok(&[
        "landscape",
        "--quiet",
        "--dataset",
        "xor",
        "--hidden",
        "8",
        "--batch",
        "40",
        "--epochs",
        "3",
        "--grid",
        "7",
        "--range",
        "0.5",
        "--snapshots",
        "4",
        "--png",
        s(&png),
        "--out",
        s(&out),
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("7×7 landscape"));
    let doc = read_json(&out);
    let land = &doc["landscape"];
    let grid = &land["grid"];
    let alphas = floats(&grid["alphas"]);
    assert_eq!(alphas.len(), 7);
    assert!((alphas[0] + 0.5).abs() < 1e-15 && alphas[3].abs() < 1e-15 && (alphas[6] - 0.5).abs() < 1e-15, "{alphas:?}");
    let loss = grid["loss"].as_array().unwrap();
    assert_eq!(loss.len(), 7);
    assert!(loss.iter().all(|r| r.as_array().unwrap().len() == 7));
    let centre = land["centre"]["loss"].as_f64().unwrap();
    assert!((loss[3][3].as_f64().unwrap() - centre).abs() < 1e-12, "the grid's middle is the centre");
    assert_eq!(floats(&land["slice_d1"]["loss"]), floats(&loss[3]), "the β = 0 row is the d₁ slice");
    // 3 epochs of 20 steps, snapshots every 15 steps: 0, 15, 30, 45, 60.
    let traj = land["trajectory"].as_array().unwrap();
    let steps: Vec<u64> = traj.iter().map(|t| t["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 15, 30, 45, 60]);
    let last = traj.last().unwrap();
    assert_eq!((last["alpha"].as_f64(), last["beta"].as_f64(), last["residual"].as_f64()), (Some(0.0), Some(0.0), Some(0.0)));
    assert!((last["loss"].as_f64().unwrap() - centre).abs() < 1e-12);
    assert!(traj[0]["residual"].as_f64().unwrap() > 0.0);
    assert!(doc["surface"]["probs"].as_array().unwrap().len() == 101 * 101 * 2, "2D data: the decision surface");
    let bytes = std::fs::read(&png).unwrap();
    let reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (512, 512));
}

#[test]
fn landscape_around_given_params_with_the_line_to_other_params() {
    let (p1, p2, t, out) = (tmp("l-p1.json"), tmp("l-p2.json"), tmp("l-t.json"), tmp("l-out.json"));
    ok(&["train", "--quiet", "--dataset", "circles", "--hidden", "6", "--epochs", "2", "--optimizer", "sgd", "--out", s(&t), "--save-params", s(&p1)]);
    ok(&["train", "--quiet", "--dataset", "circles", "--hidden", "6", "--epochs", "2", "--optimizer", "sam", "--out", s(&t), "--save-params", s(&p2)]);
    ok(&["landscape", "--dataset", "circles", "--params", s(&p1), "--line-to", s(&p2), "--line-points", "5", "--grid", "5", "--out", s(&out)]);
    let doc = read_json(&out);
    assert!(doc["trained"].is_null());
    assert!(doc["landscape"]["trajectory"].as_array().unwrap().is_empty());
    let line = &doc["line"]["line"];
    assert_eq!(floats(&line["t"]), vec![-0.25, 0.125, 0.5, 0.875, 1.25]);
    let centre = doc["landscape"]["centre"]["loss"].as_f64().unwrap();
    // t = 0 is not on this 5-point line; the grid centre is the loss at p1.
    assert!(floats(&line["loss"]).iter().all(|l| l.is_finite() && *l > 0.0));
    assert!((doc["landscape"]["grid"]["loss"][2][2].as_f64().unwrap() - centre).abs() < 1e-12);
}

#[test]
fn bad_input_exits_with_status_2_naming_what_does_not_fit() {
    let (params, batch, empty, digits_params, t) = (tmp("bp.json"), tmp("bb.json"), tmp("be.json"), tmp("bd.json"), tmp("bt.json"));
    std::fs::write(&params, PARAMS).unwrap();
    std::fs::write(&batch, BATCH).unwrap();
    std::fs::write(&empty, r#"{"x":[],"y":[]}"#).unwrap();
    ok(&["train", "--quiet", "--dataset", "digits", "--hidden", "4", "--steps", "1", "--out", s(&t), "--save-params", s(&digits_params)]);
    let out = tmp("never.json");
    let o = s(&out);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["measure", "--params", s(&params), "--batch", s(&empty), "--out", o], "empty"),
        (vec!["measure", "--params", s(&digits_params), "--dataset", "moons", "--out", o], "64 inputs, dataset moons has 2 features"),
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--probes", "0", "--out", o], "probes"),
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--top-k", "0", "--out", o], "top_k"),
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--rho", "-1", "--out", o], "rho"),
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--activation", "swish", "--out", o], "activation"),
        (vec!["measure", "--params", s(&params), "--out", o], "--batch"),
        (vec!["landscape", "--dataset", "xor", "--grid", "0", "--out", o], "grid"),
        (vec!["landscape", "--dataset", "xor", "--range", "0", "--out", o], "range"),
        (vec!["landscape", "--dataset", "moons", "--params", s(&digits_params), "--out", o], "64 inputs"),
        (vec!["landscape", "--dataset", "xor", "--params", s(&params), "--line-to", s(&digits_params), "--out", o], "line-to"),
        (vec!["landscape", "--dataset", "digits", "--params", s(&digits_params), "--surface-png", o, "--out", o], "surface-png"),
    ];
    for (args, needle) in cases {
        let out = samlab(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(err.contains(needle), "{args:?}: '{err}' does not mention {needle}");
    }
    assert!(!std::path::Path::new(o).exists(), "no output is written for refused input");
}
