//! Shared fixtures of the integration tests: small seeded networks and batches.
#![allow(dead_code)]

use samlab::model::{Activation, MlpSpec};
use samlab::rng::Rng;

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
