//! Gradient noise: tr V from the per-sample norm identity, and RW-SAM's view of a batch
//! (Gibbs weights, ESS, and how well the finite-difference estimator tracks the exact norms).

use super::Objective;
use crate::config::{NormEstimator, RwSamConfig};
use crate::optim;
use serde::{Deserialize, Serialize};

/// tr V and its parts on the evaluation set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NoiseStats {
    /// tr V = mean_i ‖∇f_i‖² − ‖∇f‖².
    pub trace_v: f64,
    /// mean_i ‖∇f_i‖².
    pub mean_sample_sq_norm: f64,
    /// ‖∇f‖².
    pub grad_sq_norm: f64,
}

/// tr V = mean_i ‖∇f_i‖² − ‖∇f‖², exact (per-sample norms from the outer-product identity).
pub fn gradient_noise<O: Objective + ?Sized>(obj: &mut O, w: &[f64], grad: &[f64]) -> NoiseStats {
    let sq = obj.sample_sq_norms(w);
    let mean_sample_sq_norm = sq.iter().sum::<f64>() / sq.len() as f64;
    let grad_sq_norm = grad.iter().map(|g| g * g).sum::<f64>();
    NoiseStats { trace_v: mean_sample_sq_norm - grad_sq_norm, mean_sample_sq_norm, grad_sq_norm }
}

/// RW-SAM on one batch: what the step would weight and how good its norm estimate is.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RwDiagnostics {
    pub batch: usize,
    /// λ used (solved for when a target ESS is set).
    pub lambda: f64,
    pub ess: f64,
    /// p_i, the Gibbs weights over the batch, from the configured estimator.
    pub weights: Vec<f64>,
    /// ‖∇f_i‖, exact.
    pub exact_norms: Vec<f64>,
    /// s_i = |f_i(w + δz) − f_i(w)|/δ with one Rademacher z shared by the batch.
    pub fd_estimates: Vec<f64>,
    /// Pearson correlation between `fd_estimates` and `exact_norms`.
    pub correlation: f64,
    pub delta: f64,
}

/// RW-SAM's weights and estimator quality on the first `batch` samples of the evaluation set,
/// with the settings `rw` (estimator, λ or target ESS, score normalisation, δ) and probe `z`.
pub fn rwsam_diagnostics<O: Objective + ?Sized>(obj: &mut O, w: &[f64], batch: usize, rw: &RwSamConfig, z: &[f64]) -> RwDiagnostics {
    let batch = batch.min(obj.n_samples());
    let exact_norms: Vec<f64> = obj.sample_sq_norms(w)[..batch].iter().map(|s| s.max(0.0).sqrt()).collect();
    let base = obj.sample_losses(w);
    let shifted_point: Vec<f64> = w.iter().zip(z).map(|(&x, &zi)| x + rw.delta * zi).collect();
    let shifted = obj.sample_losses(&shifted_point);
    let fd_estimates: Vec<f64> = shifted[..batch].iter().zip(&base[..batch]).map(|(a, b)| (a - b).abs() / rw.delta).collect();
    let mut scores = match rw.estimator {
        NormEstimator::Exact => exact_norms.clone(),
        NormEstimator::FiniteDifference => fd_estimates.clone(),
    };
    optim::normalize_scores(&mut scores, rw.normalize);
    let lambda = match rw.target_ess {
        Some(r) => optim::lambda_for_ess_signed(&scores, r * batch as f64, rw.lambda < 0.0),
        None => rw.lambda,
    };
    let weights = optim::gibbs_weights(&scores, lambda);
    RwDiagnostics {
        batch,
        lambda,
        ess: optim::ess(&weights),
        correlation: pearson(&fd_estimates, &exact_norms),
        weights,
        exact_norms,
        fd_estimates,
        delta: rw.delta,
    }
}

/// Pearson correlation; NaN when either side is constant or the lengths are under two.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return f64::NAN;
    }
    let (ma, mb) = (a[..n].iter().sum::<f64>() / n as f64, b[..n].iter().sum::<f64>() / n as f64);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_of_affine_copies_is_one_and_of_a_reversal_minus_one() {
        let a = [1.0, 2.0, 4.0, 7.0];
        let b: Vec<f64> = a.iter().map(|x| 3.0 * x - 2.0).collect();
        assert!((pearson(&a, &b) - 1.0).abs() < 1e-12);
        let c: Vec<f64> = a.iter().map(|x| -x).collect();
        assert!((pearson(&a, &c) + 1.0).abs() < 1e-12);
        assert!(pearson(&a, &[1.0; 4]).is_nan());
    }
}
