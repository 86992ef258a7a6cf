//! Shared fixtures of the integration tests: small seeded networks and batches.
#![allow(dead_code)]

pub mod cli;

use samlab::config::DatasetName;
use samlab::data::Dataset;
use samlab::model::{Activation, MlpSpec};
use samlab::rng::Rng;
use std::sync::Arc;

/// A small odd-sized problem: 5 inputs, hidden 7 and 6, 4 classes, `batch` samples.
pub struct Problem {
    pub spec: MlpSpec,
    pub params: Vec<f64>,
    pub x: Vec<f64>,
    pub y: Vec<u32>,
}

pub fn problem(activation: Activation, batch: usize, seed: u64) -> Problem {
    problem_with(5, &[7, 6], 4, activation, batch, seed)
}

pub fn problem_with(in_dim: usize, hidden: &[usize], classes: usize, activation: Activation, batch: usize, seed: u64) -> Problem {
    let spec = MlpSpec::new(in_dim, hidden, classes, activation);
    let mut rng = Rng::new(seed);
    let mut params: Vec<f64> = spec.init(seed).iter().map(|&v| v as f64).collect();
    // Non-zero biases so that their gradients are exercised too.
    for l in spec.layers() {
        for b in &mut params[l.b_offset..l.b_offset + l.out_dim] {
            *b = 0.1 * rng.normal();
        }
    }
    let x = (0..batch * in_dim).map(|_| rng.normal()).collect();
    let y = (0..batch).map(|_| rng.below(classes) as u32).collect();
    Problem { spec, params, x, y }
}

/// Max over i of |a_i − b_i| / (atol + rtol·|b_i|); ≤ 1 means within tolerance.
pub fn max_violation(a: &[f64], b: &[f64], atol: f64, rtol: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / (atol + rtol * y.abs())).fold(0.0, f64::max)
}

/// Asserts closeness and prints the first mismatches and the max difference (llm.c style).
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    let v = max_violation(got, want, atol, rtol);
    if v > 1.0 {
        let bad: Vec<String> = got
            .iter()
            .zip(want)
            .enumerate()
            .filter(|(_, (g, w))| (*g - *w).abs() > atol + rtol * w.abs())
            .take(5)
            .map(|(i, (g, w))| format!("[{i}] got {g:.9e} want {w:.9e}"))
            .collect();
        let max_diff = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
        panic!("{what}: {} values outside atol {atol:e} + rtol {rtol:e}·|ref| (max diff {max_diff:e}); first: {}", bad.len(), bad.join(", "));
    }
}

/// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (ascending).
pub fn jacobi_eigenvalues(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    for _sweep in 0..100 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i][j] * a[i][j]).sum();
        let diag: f64 = (0..n).map(|i| a[i][i] * a[i][i]).sum();
        if off <= 1e-24 * diag {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| a[i][i]).collect();
    ev.sort_by(f64::total_cmp);
    ev
}

/// A clean (no label noise) dataset of given rows: `features` inputs, `classes` classes.
pub fn dataset_of(features: usize, classes: usize, (train_x, train_y): (Vec<f32>, Vec<u32>), (test_x, test_y): (Vec<f32>, Vec<u32>)) -> Arc<Dataset> {
    Arc::new(Dataset {
        name: DatasetName::Blobs,
        n_features: features,
        n_classes: classes,
        train_x,
        clean_train_y: train_y.clone(),
        train_y,
        flipped: Vec::new(),
        test_x,
        test_y,
        image_shape: None,
        feature_mean: vec![0.0; features],
    })
}
