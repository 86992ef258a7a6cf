//! Hessian estimates from Hessian-vector products: the top eigenvalues by power iteration with
//! deflation, and the trace by Hutchinson's estimator.

use super::Objective;
use super::objective::hvp_in_pieces;
use crate::resumable::{block_on, pause};
use crate::rng::{self, Rng, Stream};

/// Power-iteration results, largest eigenvalue first.
#[derive(Clone, Debug, Default)]
pub struct TopEigen {
    pub values: Vec<f64>,
    /// Unit eigenvectors, one per value.
    pub vectors: Vec<Vec<f64>>,
    /// Hessian-vector products spent on each value.
    pub iterations: Vec<usize>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn normalize(v: &mut [f64]) -> f64 {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    n
}

/// v ← v − Σ_j ⟨v, u_j⟩ u_j (the u_j orthonormal).
fn project_out(v: &mut [f64], found: &[Vec<f64>]) {
    for u in found {
        let c = dot(v, u);
        v.iter_mut().zip(u).for_each(|(x, &y)| *x -= c * y);
    }
}

/// The `k` algebraically largest eigenvalues of H(w), each by power iteration on the deflated
/// operator v ↦ P·H·P·v (P projects out the eigenvectors already found), at most `max_iters`
/// products each, stopping when the Rayleigh quotient changes by less than `tol` relative.
///
/// Power iteration finds the eigenvalue of largest MAGNITUDE. When that one is negative (H is
/// indefinite away from minima) it is used as a shift: iterating on H − μ·I, whose spectrum is
/// ≥ 0, finds λ_max − μ.
pub fn top_eigenvalues<O: Objective + ?Sized>(obj: &mut O, w: &[f64], k: usize, max_iters: usize, tol: f64, seed: u64) -> TopEigen {
    block_on(top_eigenvalues_in_pieces(obj, w, k, max_iters, tol, seed))
}

/// `top_eigenvalues`, pausing after every Hessian-vector product (`resumable`).
pub async fn top_eigenvalues_in_pieces<O: Objective + ?Sized>(obj: &mut O, w: &[f64], k: usize, max_iters: usize, tol: f64, seed: u64) -> TopEigen {
    let n = obj.n_params();
    let mut rng = Rng::stream(seed, Stream::Power);
    let mut out = TopEigen::default();
    for _ in 0..k.min(n) {
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        project_out(&mut v, &out.vectors);
        normalize(&mut v);
        let (mut lambda, mut v, mut iters) = power(obj, w, v, &out.vectors, 0.0, max_iters, tol).await;
        if lambda < 0.0 {
            // A fresh start: the vector found so far is (nearly) in the null space of H − μ·I.
            let mut fresh: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            project_out(&mut fresh, &out.vectors);
            normalize(&mut fresh);
            let (l2, v2, i2) = power(obj, w, fresh, &out.vectors, lambda, max_iters, tol).await;
            lambda = l2;
            v = v2;
            iters += i2;
        }
        out.values.push(lambda);
        out.vectors.push(v);
        out.iterations.push(iters);
    }
    out
}

/// Power iteration on v ↦ P·(H − shift·I)·P·v. Returns (the Rayleigh quotient of H, unit v,
/// products spent).
async fn power<O: Objective + ?Sized>(
    obj: &mut O,
    w: &[f64],
    mut v: Vec<f64>,
    found: &[Vec<f64>],
    shift: f64,
    max_iters: usize,
    tol: f64,
) -> (f64, Vec<f64>, usize) {
    let mut rayleigh = f64::NAN;
    let mut iters = 0;
    for _ in 0..max_iters.max(1) {
        let mut hv = hvp_in_pieces(obj, w, &v).await;
        iters += 1;
        pause().await;
        project_out(&mut hv, found);
        // Rayleigh quotient of H at the unit vector v (v is already orthogonal to `found`).
        let next = dot(&v, &hv);
        hv.iter_mut().zip(&v).for_each(|(h, &x)| *h -= shift * x);
        let converged = (next - rayleigh).abs() <= tol * next.abs();
        rayleigh = next;
        if normalize(&mut hv) == 0.0 || !rayleigh.is_finite() {
            break; // v is in the null space of the deflated operator, or the weights are not finite
        }
        project_out(&mut hv, found);
        normalize(&mut hv);
        v = hv;
        if converged {
            break;
        }
    }
    (rayleigh, v, iters)
}

/// The key of Hutchinson probe `k`: the run seed with a salt, so that probes differ from the
/// RW-SAM finite-difference probes keyed by (seed, step). Entry i of probe k is
/// `rademacher(hutchinson_key(seed, k), i)` (the GPU can draw the same probes).
pub fn hutchinson_key(seed: u64, k: u64) -> u32 {
    rng::probe_key(seed ^ 0x4875_7463_6869_6e73, k) // "Hutchins"
}

/// tr H ≈ (1/K)·Σ_k z_kᵀ H z_k over K Rademacher probes. Returns (mean, standard error of it).
pub fn hutchinson_trace<O: Objective + ?Sized>(obj: &mut O, w: &[f64], probes: usize, seed: u64) -> (f64, f64) {
    block_on(hutchinson_trace_in_pieces(obj, w, probes, seed))
}

/// `hutchinson_trace`, pausing after every probe.
pub async fn hutchinson_trace_in_pieces<O: Objective + ?Sized>(obj: &mut O, w: &[f64], probes: usize, seed: u64) -> (f64, f64) {
    let n = obj.n_params();
    let mut samples = Vec::with_capacity(probes);
    for k in 0..probes as u64 {
        let key = hutchinson_key(seed, k);
        let z: Vec<f64> = (0..n as u32).map(|i| rng::rademacher(key, i) as f64).collect();
        let hz = hvp_in_pieces(obj, w, &z).await;
        samples.push(dot(&z, &hz));
        pause().await;
    }
    mean_and_stderr(&samples)
}

/// Sample mean and its standard error (0 for fewer than two samples).
pub fn mean_and_stderr(xs: &[f64]) -> (f64, f64) {
    let k = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / k;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0);
    (mean, (var / k).sqrt())
}
