//! `samlab measure` and `samlab landscape` end to end: the documented JSON, agreement with the
//! library, the PNG, and bad input refused with status 2 and a line naming what does not fit.

mod common;

use common::cli::{ok, read_json, samlab, tmp};
use common::jacobi_eigenvalues;
use samlab::model::{Activation, Mlp, Tape};
use serde_json::Value;

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

const PARAMS: &str = r#"{"layers":[{"w":[[0.1,-0.2],[0.3,0.4],[-0.5,0.6]],"b":[0,0.1,0]},{"w":[[0.2,0.1,-0.3],[-0.1,0.5,0.2]],"b":[0.0,0.0]}]}"#;
const BATCH: &str = r#"{"x":[[1,2],[0.5,-1],[-1,0.3],[2,2],[0.1,0.1],[-2,1],[1.5,-0.5],[0,1]],"y":[0,1,1,0,1,0,0,1]}"#;

#[test]
fn measure_on_a_batch_agrees_with_first_principles() {
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

    // The same quantities from first principles, independently of `metrics`: per-sample
    // gradients of the model (itself checked against finite differences), a dense Hessian by
    // central differences of the gradient, and its eigenvalues by Jacobi rotations.
    let x: Vec<f64> = vec![1.0, 2.0, 0.5, -1.0, -1.0, 0.3, 2.0, 2.0, 0.1, 0.1, -2.0, 1.0, 1.5, -0.5, 0.0, 1.0];
    let y: Vec<u32> = vec![0, 1, 1, 0, 1, 0, 0, 1];
    let json: samlab::formats::ParamsJson = serde_json::from_str(PARAMS).unwrap();
    let (spec, w) = json.to_flat(Activation::Tanh).unwrap();
    let mut mlp = Mlp::<f64>::new(spec);
    let mut loss_grad = |w: &[f64], rows: std::ops::Range<usize>| {
        let (mut tape, mut deltas) = (Tape::default(), Vec::new());
        mlp.loss_and_grad(w, &x[2 * rows.start..2 * rows.end], &y[rows], &mut tape, &mut deltas)
    };
    let (f, g) = loss_grad(&w, 0..8);
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let per_sample_sq: f64 = (0..8).map(|i| norm(&loss_grad(&w, i..i + 1).1).powi(2)).sum::<f64>() / 8.0;
    let trace_v = per_sample_sq - norm(&g).powi(2);
    let up: Vec<f64> = w.iter().zip(&g).map(|(a, b)| a + 0.1 * b / (norm(&g) + 1e-12)).collect();
    let sharpness = loss_grad(&up, 0..8).0 - f;
    let n = w.len();
    let h = 1e-5;
    let mut hess = vec![vec![0.0; n]; n];
    for j in 0..n {
        let (mut a, mut b) = (w.clone(), w.clone());
        a[j] += h;
        b[j] -= h;
        let (ga, gb) = (loss_grad(&a, 0..8).1, loss_grad(&b, 0..8).1);
        for i in 0..n {
            hess[i][j] = (ga[i] - gb[i]) / (2.0 * h);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (hess[i][j] + hess[j][i]);
            (hess[i][j], hess[j][i]) = (v, v);
        }
    }
    let trace_h: f64 = (0..n).map(|i| hess[i][i]).sum();
    let off_sq: f64 = (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).filter(|(i, j)| i != j).map(|(i, j)| hess[i][j].powi(2)).sum();
    let mut eig = jacobi_eigenvalues(hess);
    eig.sort_by(|a, b| b.total_cmp(a));
    let got = |k: &str| m[k].as_f64().unwrap();
    assert!((got("loss") - f).abs() <= 1e-12, "loss {} vs {f}", got("loss"));
    assert!((got("sharpness") - sharpness).abs() <= 1e-12, "S_ρ {} vs {sharpness}", got("sharpness"));
    assert!((got("trace_v") - trace_v).abs() <= 1e-10 * trace_v.abs().max(1.0), "tr V {} vs {trace_v}", got("trace_v"));
    // Power iteration stops at a relative change of 1e-3.
    for (k, want) in eig.iter().take(2).enumerate() {
        assert!((top[k] - want).abs() <= 1e-2 * want.abs().max(1e-3), "eigenvalue {k}: {} vs {want} (spectrum {eig:?})", top[k]);
    }
    // Hutchinson with 50 Rademacher probes: standard deviation √(2·Σ_{i≠j} H_ij² / 50).
    let sd = (2.0 * off_sq / 50.0).sqrt();
    assert!((got("trace_h") - trace_h).abs() <= 5.0 * sd + 1e-9, "tr H {} vs {trace_h} (sd {sd})", got("trace_h"));
}

#[test]
fn measure_with_density_adds_the_hessian_spectrum() {
    let (params, batch, out, plain) = (tmp("p.json"), tmp("b.json"), tmp("d.json"), tmp("plain.json"));
    std::fs::write(&params, PARAMS).unwrap();
    std::fs::write(&batch, BATCH).unwrap();
    let base = ["measure", "--params", s(&params), "--batch", s(&batch), "--activation", "tanh", "--power-tol", "1e-10", "--power-iters", "5000", "--quiet"];
    ok(&[&base[..], &["--out", s(&plain)]].concat());
    assert!(read_json(&plain)["density"].is_null(), "no density unless asked for");
    // 17 parameters: 17 Lanczos steps span the whole space, so the top Ritz value is λ_max.
    let o = ok(&[&base[..], &["--density", "--density-starts", "3", "--density-steps", "40", "--density-grid", "300", "--out", s(&out)]].concat());
    let doc = read_json(&out);
    let d = &doc["density"];
    assert_eq!(doc["settings"]["density"]["steps"], 40);
    assert_eq!(d["n_params"], 17);
    assert!(d["steps"].as_u64().unwrap() <= 17, "at most the parameter count: {}", d["steps"]);
    assert!(d["hvps"].as_u64().unwrap() <= 3 * 17);
    let (x, y) = (floats(&d["x"]), floats(&d["y"]));
    assert_eq!((x.len(), y.len()), (300, 300));
    let mass: f64 = y.iter().sum::<f64>() * (x[1] - x[0]);
    assert!((mass - 1.0).abs() < 1e-3, "∫ density = {mass}");
    assert!((floats(&d["weights"]).iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let top = d["support"][1].as_f64().unwrap();
    let lmax = doc["measurement"]["lambda_max"].as_f64().unwrap();
    assert!((top - lmax).abs() <= 1e-6 * lmax.abs(), "top Ritz value {top} vs power iteration {lmax}");
    assert!(doc["measurement"].get("density").is_none(), "the density is reported once, at the top level");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Hessian spectrum in ["));
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
    ok(&["landscape", "--dataset", "circles", "--params", s(&p1), "--line-to", s(&p2), "--line-points", "7", "--grid", "5", "--out", s(&out)]);
    let doc = read_json(&out);
    assert!(doc["trained"].is_null());
    assert!(doc["landscape"]["trajectory"].as_array().unwrap().is_empty());
    let line = &doc["line"]["line"];
    let t = floats(&line["t"]);
    assert!(t.iter().zip([-0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25]).all(|(a, b)| (a - b).abs() < 1e-12), "{t:?}");
    let centre = doc["landscape"]["centre"]["loss"].as_f64().unwrap();
    assert!((doc["landscape"]["grid"]["loss"][2][2].as_f64().unwrap() - centre).abs() < 1e-12);
    // t = 0 is p1 itself (the grid's centre) and t = 1 is p2: the loss there is p2's own.
    let loss = floats(&line["loss"]);
    assert!((loss[1] - centre).abs() < 1e-12, "line at t = 0: {} vs the loss at p1 {centre}", loss[1]);
    let (out2, _) = (tmp("l-out2.json"), ());
    ok(&["landscape", "--dataset", "circles", "--params", s(&p2), "--grid", "3", "--out", s(&out2)]);
    let at_p2 = read_json(&out2)["landscape"]["centre"]["loss"].as_f64().unwrap();
    assert!((loss[5] - at_p2).abs() < 1e-12, "line at t = 1: {} vs the loss at p2 {at_p2}", loss[5]);
    assert!(loss.iter().all(|l| l.is_finite() && *l > 0.0));
}

#[test]
fn landscape_along_the_trajectory_pca_reports_explained_variance_and_off_plane_share() {
    let out = tmp("pca.json");
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
        "5",
        "--grid",
        "9",
        "--snapshots",
        "10",
        "--directions",
        "pca",
        "--out",
        s(&out),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("along pca directions") && err.contains("PC1"), "{err}");
    let doc = read_json(&out);
    let land = &doc["landscape"];
    assert_eq!(doc["directions"]["kind"], "pca");
    assert_eq!(land["directions"], doc["directions"]);
    let ev = floats(&doc["directions"]["explained_variance"]);
    assert!(ev[0] >= ev[1] && ev[1] > 0.0 && ev[0] + ev[1] <= 1.0 + 1e-9, "{ev:?}");
    // The share off the plane is what the two components leave of the path.
    let share = doc["off_plane_share"].as_f64().unwrap();
    assert!((share - (1.0 - ev[0] - ev[1]).max(0.0).sqrt()).abs() < 1e-3, "{share} vs {ev:?}");
    // The default range is the one suggested for the path, and covers it.
    let range = doc["directions"]["suggested_range"].as_f64().unwrap();
    let alphas = floats(&land["grid"]["alphas"]);
    assert!((alphas[8] - range).abs() < 1e-12 && (doc["landscape_settings"]["range"].as_f64().unwrap() - range).abs() < 1e-12);
    for t in land["trajectory"].as_array().unwrap() {
        assert!(t["alpha"].as_f64().unwrap().abs() <= range && t["beta"].as_f64().unwrap().abs() <= range, "{t}");
    }
    let centre = land["centre"]["loss"].as_f64().unwrap();
    assert!((land["grid"]["loss"][4][4].as_f64().unwrap() - centre).abs() < 1e-12, "the grid's middle is the centre");
    // The same run along random directions: more of the path is off their plane.
    let rnd = tmp("random.json");
    ok(&["landscape", "--quiet", "--dataset", "xor", "--hidden", "8", "--batch", "40", "--epochs", "5", "--grid", "3", "--snapshots", "10", "--out", s(&rnd)]);
    let random = read_json(&rnd);
    assert_eq!(random["directions"]["kind"], "random");
    assert!(random["off_plane_share"].as_f64().unwrap() > share);
    assert_eq!(floats(&random["landscape"]["grid"]["alphas"]), vec![-1.0, 0.0, 1.0], "random directions keep ±1");
}

#[test]
fn landscape_along_hessian_eigenvectors_reports_the_eigenvalues() {
    let (p, t, out) = (tmp("h-p.json"), tmp("h-t.json"), tmp("h-out.json"));
    ok(&["train", "--quiet", "--dataset", "circles", "--hidden", "6", "--epochs", "2", "--out", s(&t), "--save-params", s(&p)]);
    let o = ok(&["landscape", "--dataset", "circles", "--params", s(&p), "--directions", "hessian", "--grid", "5", "--eval-size", "200", "--out", s(&out)]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("λ₁"));
    let doc = read_json(&out);
    let d = &doc["directions"];
    assert_eq!(d["kind"], "hessian");
    let l = floats(&d["eigenvalues"]);
    assert!(l[0] >= l[1] && l[0] > 0.0, "{l:?}");
    assert!(floats(&d["eigen_residuals"]).iter().all(|&r| r < 0.05), "{d}");
    assert!(d["hessian_products"].as_u64().unwrap() >= 4);
    // The default range: where the quadratic model along v₁ has risen by 2 nats.
    let alphas = floats(&doc["landscape"]["grid"]["alphas"]);
    assert!((alphas[4] - 2.0 / l[0].sqrt()).abs() < 1e-9, "{alphas:?} vs λ₁ {}", l[0]);
    // Along a unit eigenvector the loss curves upwards like ½λα² near the centre.
    let slice = floats(&doc["landscape"]["slice_d1"]["loss"]);
    assert!(slice[0] > slice[2] && slice[4] > slice[2], "{slice:?}");
    assert!(doc["off_plane_share"].is_null(), "no trajectory with --params");
    // An explicit range wins over the suggested one.
    ok(&["landscape", "--dataset", "circles", "--params", s(&p), "--directions", "hessian", "--range", "0.3", "--grid", "3", "--out", s(&out)]);
    assert_eq!(floats(&read_json(&out)["landscape"]["grid"]["alphas"]), vec![-0.3, 0.0, 0.3]);
}

#[test]
fn landscape_help_lists_the_directions() {
    let o = ok(&["landscape", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("--directions") && help.contains("random") && help.contains("pca") && help.contains("hessian"), "{help}");
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
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--density", "--density-starts", "0", "--out", o], "density_starts"),
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--density", "--density-steps", "1", "--out", o], "density_steps"),
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--density", "--density-grid", "10", "--out", o], "density_grid"),
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--density", "--density-sigma", "0", "--out", o], "density_sigma"),
        (vec!["measure", "--params", s(&params), "--batch", s(&batch), "--density-steps", "x", "--out", o], "density-steps"),
        (vec!["landscape", "--dataset", "xor", "--grid", "0", "--out", o], "grid"),
        (vec!["landscape", "--dataset", "xor", "--range", "0", "--out", o], "range"),
        (vec!["landscape", "--dataset", "moons", "--params", s(&digits_params), "--out", o], "64 inputs"),
        (vec!["landscape", "--dataset", "xor", "--params", s(&params), "--line-to", s(&digits_params), "--out", o], "line-to"),
        (vec!["landscape", "--dataset", "digits", "--params", s(&digits_params), "--surface-png", o, "--out", o], "surface-png"),
        (vec!["landscape", "--dataset", "digits", "--params", s(&digits_params), "--directions", "pca", "--out", o], "--directions pca needs the trajectory"),
        (vec!["landscape", "--dataset", "xor", "--directions", "pca", "--snapshots", "1", "--out", o], "snapshots"),
        (vec!["landscape", "--dataset", "xor", "--directions", "eigen", "--out", o], "directions"),
        (vec!["landscape", "--dataset", "xor", "--directions", "hessian", "--power-iters", "0", "--out", o], "power-iters"),
    ];
    for (args, needle) in cases {
        let out = samlab(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(err.contains(needle), "{args:?}: '{err}' does not mention {needle}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
    assert!(!std::path::Path::new(o).exists(), "no output is written for refused input");
}
