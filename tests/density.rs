//! The Hessian's eigenvalue density (stochastic Lanczos quadrature) against exact spectra: the
//! dense Hessian of a small MLP built from n exact Hessian-vector products and diagonalised by the
//! Jacobi reference, and diagonal quadratics whose outliers are known.

mod common;

use common::*;
use samlab::metrics::density::{self, DensityConfig, lanczos, rademacher_start, tridiagonal_eigen};
use samlab::metrics::{self, MeasureConfig, MlpObjective, Objective};
use samlab::model::Activation;

/// Ritz values and eigenvalues agree to atol + rtol·|λ| (atol relative to the largest |λ|): the
/// Ritz values of a full Lanczos run are the eigenvalues up to rounding in the products.
const RTOL: f64 = 1e-7;
const ATOL_REL: f64 = 1e-8;

fn dense_hessian(obj: &mut dyn Objective, w: &[f64]) -> Vec<Vec<f64>> {
    let n = w.len();
    let mut h = vec![vec![0.0; n]; n];
    for k in 0..n {
        let mut e = vec![0.0; n];
        e[k] = 1.0;
        for (i, v) in obj.hvp(w, &e).into_iter().enumerate() {
            h[i][k] = v;
        }
    }
    h
}

fn mat_vec(h: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    h.iter().map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The tanh MLP 5-8-6-3 (123 parameters) on 120 samples, after 100 full-batch gradient steps.
fn small_mlp(seed: u64) -> (MlpObjective<f64>, Vec<f64>) {
    let mut p = problem_with(5, &[8, 6], 3, Activation::Tanh, 120, seed);
    let mut obj = MlpObjective::new(p.spec.clone(), p.x.clone(), p.y.clone()).unwrap();
    for _ in 0..100 {
        let g = obj.loss_grad(&p.params).1;
        p.params.iter_mut().zip(&g).for_each(|(w, gi)| *w -= 0.5 * gi);
    }
    (obj, p.params)
}

fn nearest(v: f64, set: &[f64]) -> f64 {
    set.iter().map(|s| (s - v).abs()).fold(f64::INFINITY, f64::min)
}

#[test]
fn a_full_lanczos_run_finds_the_exact_eigenvalues_and_the_moments_of_its_start() {
    for seed in [3, 11] {
        let (mut obj, w) = small_mlp(seed);
        let n = w.len();
        let h = dense_hessian(&mut obj, &w);
        let exact = jacobi_eigenvalues(h.clone());
        let scale = exact.iter().map(|v| v.abs()).fold(0.0, f64::max);
        assert!(exact[0] < -1e-6 * scale || exact[n - 1] > 10.0 * exact[n / 2].abs(), "a spectrum worth resolving: {exact:?}");
        let tol = |v: f64| ATOL_REL * scale + RTOL * v.abs();
        for s in 0..2 {
            let z = rademacher_start(seed, s, n);
            let t = lanczos(&mut obj, &w, &z, n).unwrap();
            let (ritz, first) = tridiagonal_eigen(&t.alpha, &t.beta).unwrap();
            assert_eq!(t.hvps, t.alpha.len());
            eprintln!("seed {seed} start {s}: {} steps of {n}, λ ∈ [{:.6}, {:.6}]", t.alpha.len(), exact[0], exact[n - 1]);
            // Every Ritz value is an eigenvalue, and every eigenvalue is a Ritz value (repeated
            // eigenvalues, such as the softmax's null directions, appear once: the Krylov space
            // of one start closes early and holds one vector of each eigenspace).
            for &r in &ritz {
                assert!(nearest(r, &exact) <= tol(r), "seed {seed}: Ritz value {r:e} is {:e} from the spectrum", nearest(r, &exact));
            }
            for &e in &exact {
                assert!(nearest(e, &ritz) <= tol(e), "seed {seed}: eigenvalue {e:e} is {:e} from every Ritz value", nearest(e, &ritz));
            }
            // Gauss quadrature with k nodes is exact for polynomials of degree < 2k: the weights
            // reproduce zᵀHᵖz/‖z‖².
            let zn: Vec<f64> = z.iter().map(|v| v / (n as f64).sqrt()).collect();
            let mut hp = zn.clone();
            for p in 1..=4 {
                hp = mat_vec(&h, &hp);
                let want = dot(&zn, &hp);
                let got: f64 = ritz.iter().zip(&first).map(|(r, f)| r.powi(p) * f * f).sum();
                assert!((got - want).abs() <= 1e-9 * scale.powi(p), "seed {seed}: moment {p}: {got:e} vs {want:e}");
            }
            assert!((first.iter().map(|f| f * f).sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn with_fewer_steps_the_extremes_converge_and_the_density_has_unit_mass_and_mean_tr_h_over_n() {
    let (mut obj, w) = small_mlp(5);
    let n = w.len();
    let h = dense_hessian(&mut obj, &w);
    let trace: f64 = (0..n).map(|i| h[i][i]).sum();
    let off_sq: f64 = (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).filter(|(i, j)| i != j).map(|(i, j)| h[i][j] * h[i][j]).sum();
    let exact = jacobi_eigenvalues(h.clone());
    let cfg = DensityConfig { starts: 8, steps: 30, grid: 800, sigma: 0.01, seed: 5 };
    let d = density::density(&mut obj, &w, &cfg).unwrap();
    assert_eq!(d.hvps, 8 * 30, "30 steps from each of 8 starts");
    assert_eq!((d.starts, d.steps, d.n_params), (8, 30, n));
    let (lo, hi) = (exact[0], exact[n - 1]);
    eprintln!("support [{:.6}, {:.6}] vs exact [{lo:.6}, {hi:.6}]; outliers {:?}", d.support[0], d.support[1], d.outliers);
    assert!((d.support[1] - hi).abs() <= 1e-6 * hi.abs(), "λ_max {} vs {hi}", d.support[1]);
    assert!((d.support[0] - lo).abs() <= 1e-3 * (hi - lo), "λ_min {} vs {lo}", d.support[0]);
    // The density on its grid: mass 1 and mean Σ wθ (trapezoid rule).
    let dx = d.x[1] - d.x[0];
    let trap = |f: &dyn Fn(usize) -> f64| dx * ((0..d.x.len()).map(f).sum::<f64>() - 0.5 * (f(0) + f(d.x.len() - 1)));
    let mass = trap(&|i| d.y[i]);
    let mean = trap(&|i| d.x[i] * d.y[i]);
    let node_mean: f64 = d.nodes.iter().zip(&d.weights).map(|(v, w)| v * w).sum();
    assert!((mass - 1.0).abs() < 1e-4, "∫ density = {mass}");
    assert!((d.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!((mean - node_mean).abs() < 1e-4 * hi, "∫ x·density = {mean} vs Σ wθ = {node_mean}");
    // The mean is Hutchinson's estimate with the same Rademacher starts, divided by n, which
    // is within its error bar of tr H / n.
    let hutchinson: f64 = (0..8).map(|s| rademacher_start(5, s, n)).map(|z| dot(&z, &mat_vec(&h, &z))).sum::<f64>() / 8.0;
    assert!((node_mean * n as f64 - hutchinson).abs() < 1e-8 * trace.abs(), "SLQ tr H {} vs Hutchinson {hutchinson}", node_mean * n as f64);
    assert!((d.trace_estimate - node_mean * n as f64).abs() < 1e-12 * trace.abs());
    let sigma = (2.0 * off_sq / 8.0).sqrt();
    eprintln!("SLQ tr H {:.5} vs exact {trace:.5} (σ of 8 probes {sigma:.5})", d.trace_estimate);
    assert!((d.trace_estimate - trace).abs() < 4.0 * sigma, "SLQ tr H {} vs exact {trace}, σ {sigma}", d.trace_estimate);
    // Deterministic from the seed; another seed draws other starts.
    assert_eq!(density::density(&mut obj, &w, &cfg).unwrap(), d);
    assert_ne!(density::density(&mut obj, &w, &DensityConfig { seed: 6, ..cfg.clone() }).unwrap().nodes, d.nodes);
}

/// f(w) = ½·Σ_j a_j w_j² on one sample: H = diag(a).
struct Diagonal(Vec<f64>);

impl Objective for Diagonal {
    fn n_params(&self) -> usize {
        self.0.len()
    }
    fn n_samples(&self) -> usize {
        1
    }
    fn sample_losses(&mut self, w: &[f64]) -> Vec<f64> {
        vec![0.5 * self.0.iter().zip(w).map(|(a, w)| a * w * w).sum::<f64>()]
    }
    fn loss_grad(&mut self, w: &[f64]) -> (f64, Vec<f64>) {
        (self.loss(w), self.0.iter().zip(w).map(|(a, w)| a * w).collect())
    }
    fn sample_sq_norms(&mut self, w: &[f64]) -> Vec<f64> {
        vec![self.0.iter().zip(w).map(|(a, w)| (a * w).powi(2)).sum()]
    }
    fn group_sq_norms(&mut self, w: &[f64], order: &[usize], m: usize) -> Vec<f64> {
        if m == 1 { order.iter().map(|_| self.sample_sq_norms(w)[0]).collect() } else { Vec::new() }
    }
    fn hvp(&mut self, _w: &[f64], v: &[f64]) -> Vec<f64> {
        self.0.iter().zip(v).map(|(a, v)| a * v).collect()
    }
}

#[test]
fn outliers_above_a_bulk_are_found_with_their_share_of_the_spectrum() {
    // 300 eigenvalues spread over [0, 1], and 10, 20, 30: each outlier is one of 303 eigenvalues,
    // and a Rademacher start puts exactly 1/303 of its mass on each coordinate axis.
    let mut a: Vec<f64> = (0..300).map(|i| (i as f64 / 299.0).powi(2)).collect();
    let bulk_only = Diagonal(a.clone());
    a.extend([10.0, 20.0, 30.0]);
    let mut q = Diagonal(a);
    let w = vec![0.0; 303];
    let cfg = DensityConfig { starts: 3, steps: 40, ..DensityConfig::default() };
    let d = density::density(&mut q, &w, &cfg).unwrap();
    let values: Vec<f64> = d.outliers.iter().map(|o| o.value).collect();
    eprintln!("bulk {:?}, outliers {:?}", d.bulk, d.outliers);
    assert_eq!(values.len(), 3, "{:?}", d.outliers);
    for (o, want) in d.outliers.iter().zip([10.0, 20.0, 30.0]) {
        assert!((o.value - want).abs() < 1e-9, "{o:?} vs {want}");
        assert!((o.weight - 1.0 / 303.0).abs() < 1e-9, "{o:?}: weight vs 1/303");
    }
    assert!(d.bulk[0] >= -1e-9 && d.bulk[1] <= 1.0 + 1e-9 && d.bulk[1] > 0.9, "bulk {:?}", d.bulk);
    // On a log scale the outliers stand as separate peaks: between the bulk and the first one
    // the density is a millionth of an outlier's peak height.
    let peak = 1.0 / 303.0 / (d.sigma * std::f64::consts::TAU.sqrt());
    let between = d.x.iter().zip(&d.y).filter(|(x, _)| (4.0..7.0).contains(*x)).map(|(_, y)| *y).fold(0.0, f64::max);
    assert!(between < 1e-6 * peak, "density between the bulk and the first outlier: {between:e} (peak {peak:e})");
    let mut b = bulk_only;
    let d = density::density(&mut b, &vec![0.0; 300], &cfg).unwrap();
    assert!(d.outliers.is_empty(), "a bulk alone has no outliers: {:?}", d.outliers);
}

#[test]
fn the_measurement_carries_the_density_when_asked_and_refuses_bad_settings() {
    let (mut obj, w) = small_mlp(2);
    let plain = metrics::measure(&mut obj, &w, &MeasureConfig::default(), 0).unwrap().measurement;
    assert!(plain.density.is_none());
    assert!(!serde_json::to_string(&plain).unwrap().contains("density"), "no density key unless asked for");
    let cfg = MeasureConfig { density: Some(DensityConfig { starts: 2, steps: 20, ..DensityConfig::default() }), ..MeasureConfig::default() };
    let m = metrics::measure(&mut obj, &w, &cfg, 0).unwrap().measurement;
    let d = m.density.as_ref().expect("asked for");
    assert!((d.support[1] - m.lambda_max).abs() < 1e-3 * m.lambda_max, "SLQ's top Ritz value {} vs power iteration {}", d.support[1], m.lambda_max);
    let back: metrics::Measurement = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    let b = back.density.as_ref().expect("kept in the JSON");
    assert_eq!((b.x.len(), b.nodes.len(), b.outliers.len(), b.hvps), (d.x.len(), d.nodes.len(), d.outliers.len(), d.hvps));
    assert_close("density after JSON", &b.y, &d.y, 1e-15, 1e-12);
    let bad = MeasureConfig { density: Some(DensityConfig { steps: 500, ..DensityConfig::default() }), ..MeasureConfig::default() };
    let e = metrics::measure(&mut obj, &w, &bad, 0).unwrap_err().to_string();
    assert!(e.contains("density_steps") && e.contains("2 to 200"), "{e}");
}
