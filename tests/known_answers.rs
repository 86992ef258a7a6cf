//! Known answers, computed here by hand or by independent code: the exact SGD step through the
//! CLI's `step` oracle, the label-noise metrics of a hand-built evaluation, and PNG exports
//! decoded back to pixels.

use samlab::config::DatasetName;
use samlab::data::Dataset;
use samlab::metrics::landscape::Grid;
use samlab::metrics::png::{landscape_image, viridis};
use samlab::model::mlp::Evaluation;
use samlab::run::eval_record;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// A directory of this test's own (test threads are named after their test).
fn tmp(name: &str) -> PathBuf {
    let test = std::thread::current().name().unwrap_or("test").replace("::", "-");
    let dir = std::env::temp_dir().join(format!("samlab-known-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// One SGD step of a 2-3-2 ReLU network with softmax cross-entropy, written out by hand:
/// z1 = W1·x + b1, a1 = relu(z1), z2 = W2·a1 + b2, loss = mean_i (logsumexp(z2) − z2[y]),
/// and w ← w − η·∇loss (no momentum, no weight decay).
fn hand_sgd_step(w1: &[[f64; 2]; 3], b1: &[f64; 3], w2: &[[f64; 3]; 2], b2: &[f64; 2], x: &[[f64; 2]], y: &[usize], lr: f64) -> (f64, Vec<f64>) {
    let n = x.len() as f64;
    let (mut gw1, mut gb1, mut gw2, mut gb2) = ([[0.0; 2]; 3], [0.0; 3], [[0.0; 3]; 2], [0.0; 2]);
    let mut loss = 0.0;
    for (xi, &yi) in x.iter().zip(y) {
        let z1: Vec<f64> = (0..3).map(|h| w1[h][0] * xi[0] + w1[h][1] * xi[1] + b1[h]).collect();
        let a1: Vec<f64> = z1.iter().map(|&z| z.max(0.0)).collect();
        let z2: Vec<f64> = (0..2).map(|o| (0..3).map(|h| w2[o][h] * a1[h]).sum::<f64>() + b2[o]).collect();
        let mx = z2[0].max(z2[1]);
        let lse = mx + ((z2[0] - mx).exp() + (z2[1] - mx).exp()).ln();
        loss += (lse - z2[yi]) / n;
        // ∂loss/∂z2 = (softmax − onehot)/n
        let d2: Vec<f64> = (0..2).map(|o| ((z2[o] - lse).exp() - if o == yi { 1.0 } else { 0.0 }) / n).collect();
        for o in 0..2 {
            gb2[o] += d2[o];
            for h in 0..3 {
                gw2[o][h] += d2[o] * a1[h];
            }
        }
        for h in 0..3 {
            let d1 = if z1[h] > 0.0 { (0..2).map(|o| w2[o][h] * d2[o]).sum::<f64>() } else { 0.0 };
            gb1[h] += d1;
            gw1[h][0] += d1 * xi[0];
            gw1[h][1] += d1 * xi[1];
        }
    }
    let mut out = Vec::new();
    for h in 0..3 {
        out.extend([w1[h][0] - lr * gw1[h][0], w1[h][1] - lr * gw1[h][1]]);
    }
    out.extend((0..3).map(|h| b1[h] - lr * gb1[h]));
    for o in 0..2 {
        out.extend((0..3).map(|h| w2[o][h] - lr * gw2[o][h]));
    }
    out.extend((0..2).map(|o| b2[o] - lr * gb2[o]));
    (loss, out)
}

fn flatten(doc: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    for layer in doc["layers"].as_array().unwrap() {
        for row in layer["w"].as_array().unwrap() {
            out.extend(row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()));
        }
        out.extend(layer["b"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()));
    }
    out
}

#[test]
fn the_step_oracle_gives_the_exact_sgd_step() {
    let (w1, b1) = ([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]], [0.0, 0.1, 0.0]);
    let (w2, b2) = ([[0.2, 0.1, -0.3], [-0.1, 0.5, 0.2]], [0.05, -0.05]);
    let x = [[1.0, 2.0], [0.5, -1.0], [-1.0, 0.3], [2.0, 2.0]];
    let y = [0usize, 1, 1, 0];
    let (params, batch, out) = (tmp("p.json"), tmp("b.json"), tmp("s.json"));
    let json_w = |w: &[[f64; 3]; 2]| serde_json::to_string(&w.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap();
    let json_w1 = serde_json::to_string(&w1.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap();
    std::fs::write(&params, format!(r#"{{"layers":[{{"w":{json_w1},"b":{b1:?}}},{{"w":{},"b":{b2:?}}}]}}"#, json_w(&w2))).unwrap();
    std::fs::write(&batch, format!(r#"{{"x":{},"y":{y:?}}}"#, serde_json::to_string(&x.iter().map(|r| r.to_vec()).collect::<Vec<_>>()).unwrap())).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_samlab"))
        .args(["step", "--params", params.to_str().unwrap(), "--batch", batch.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0", "--wd", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let (loss, want) = hand_sgd_step(&w1, &b1, &w2, &b2, &x, &y, 0.1);
    let got = flatten(&doc);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-13, "parameter {i}: {g} vs {w} by hand");
    }
    assert!((doc["loss_before"].as_f64().unwrap() - loss).abs() <= 1e-13, "{} vs {loss}", doc["loss_before"]);
}

/// Six training samples, two of them flipped (1: 0 → 1, 4: 2 → 0), predicted so that the model
/// has memorised both flipped labels: accuracy 6/6 on the labels trained on, 4/6 on the clean ones.
#[test]
fn label_noise_metrics_of_a_hand_built_evaluation() {
    let data = Dataset {
        name: DatasetName::Blobs,
        n_features: 1,
        n_classes: 3,
        train_x: vec![0.0; 6],
        train_y: vec![0, 1, 1, 2, 0, 2],
        clean_train_y: vec![0, 0, 1, 2, 2, 2],
        flipped: vec![1, 4],
        test_x: vec![0.0; 4],
        test_y: vec![0, 1, 2, 2],
        image_shape: None,
        feature_mean: vec![0.0],
    };
    let train = Evaluation { losses: vec![0.5, 1.0, 0.25, 0.25, 2.0, 0.0], predictions: vec![0, 1, 1, 2, 0, 2] };
    let test = Evaluation { losses: vec![1.0, 2.0, 3.0, 2.0], predictions: vec![0, 1, 0, 0] };
    let r = eval_record(30, 2.0, &data, &train, &test, 0.75);
    assert_eq!(r.train_acc, 1.0);
    assert_eq!(r.clean_train_acc, Some(4.0 / 6.0));
    assert_eq!(r.memorized, Some(1.0));
    assert_eq!(r.test_acc, 0.5);
    assert_eq!(r.best_test_acc, 0.75, "the best so far stays when this evaluation is worse");
    assert_eq!((r.train_loss, r.test_loss), (4.0 / 6.0, 2.0));
    // Half memorised: the second flipped sample predicted with its clean label.
    let half = Evaluation { predictions: vec![0, 1, 1, 2, 2, 2], ..train.clone() };
    let r = eval_record(30, 2.0, &data, &half, &test, 0.0);
    assert_eq!((r.memorized, r.clean_train_acc, r.train_acc), (Some(0.5), Some(5.0 / 6.0), 5.0 / 6.0));
    assert_eq!(r.best_test_acc, 0.5);
    // Without label noise there are no label-noise metrics.
    let clean = Dataset { flipped: Vec::new(), train_y: data.clean_train_y.clone(), ..data };
    let r = eval_record(0, 0.0, &clean, &train, &test, 0.0);
    assert_eq!((r.memorized, r.clean_train_acc), (None, None));
}

/// Decodes a PNG into (width, height, RGB bytes).
fn decode(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

#[test]
fn a_landscape_png_decodes_to_its_heat_map() {
    // Loss e^(i+j) on a 3×3 grid: log-loss 0 at (α₀, β₀) (bottom left), 4 at (α₂, β₂) (top right).
    let axis = vec![-1.0, 0.0, 1.0];
    let loss: Vec<Vec<f64>> = (0..3).map(|j| (0..3).map(|i| ((i + j) as f64).exp()).collect()).collect();
    let grid = Grid { alphas: axis.clone(), betas: axis, accuracy: loss.clone(), loss };
    let img = landscape_image(&grid, &[], 0, 64).unwrap();
    let (w, h, px) = decode(&img.encode().unwrap());
    assert_eq!((w, h), (64, 64));
    let at = |x: usize, y: usize| [px[3 * (y * w + x)], px[3 * (y * w + x) + 1], px[3 * (y * w + x) + 2]];
    assert_eq!(at(0, 63), viridis(0.0), "lowest loss, bottom left");
    assert_eq!(at(63, 0), viridis(1.0), "highest loss, top right");
    assert_eq!(at(0, 0), viridis(0.5), "log-loss 2 of 4, top left");
    assert_eq!(at(63, 63), viridis(0.5), "log-loss 2 of 4, bottom right");
    // The centre (α, β) = (0, 0) is marked by a white cross.
    assert_eq!(at(31, 31), [255, 255, 255]);
    // Along the bottom row the colour darkens monotonically into the lowest corner.
    let lum = |c: [u8; 3]| c.iter().map(|&v| v as u32).sum::<u32>();
    assert!((1..20).all(|x| lum(at(x - 1, 63)) <= lum(at(x, 63))), "the bottom row is not monotone");
}
