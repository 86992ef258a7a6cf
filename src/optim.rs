//! The optimizer arithmetic (docs/ALGORITHMS.md) that both engines share: the base SGD update, RW-SAM's
//! Gibbs weights and effective sample size, and the target-ESS solve for λ.
//! The optimizer names and settings themselves are `config::OptimizerKind` / `OptimizerConfig`;
//! the step that strings these pieces together is `engine::cpu::sam_family_step` (and its WGSL
//! counterpart in `engine::gpu`).

use crate::model::Real;

/// Guard of every normalisation x/‖x‖ (docs/ALGORITHMS.md#notation: ‖x‖ + 1e-12).
pub const NORM_EPS: f64 = 1e-12;

/// Torch-style SGD with momentum and weight decay on the descent gradient `grad`:
/// d = g + wd·w; v = μ·v + d; w ← w − η·v.
pub fn base_update<T: Real>(params: &mut [T], velocity: &mut [T], grad: &[T], lr: f64, momentum: f64, wd: f64) {
    let (lr, mu, wd) = (T::of(lr), T::of(momentum), T::of(wd));
    for ((w, v), &g) in params.iter_mut().zip(velocity.iter_mut()).zip(grad) {
        let d = g + wd * *w;
        *v = mu * *v + d;
        *w -= lr * *v;
    }
}

/// ‖x‖₂, accumulated in f64 for every T.
pub fn norm<T: Real>(x: &[T]) -> f64 {
    x.iter().map(|&v| v.f64() * v.f64()).sum::<f64>().sqrt()
}

/// Largest |λ| of the Gibbs weights on both engines, and where the target-ESS solve stops
/// doubling (2^40): with |s − s_ref| clamped to `SCORE_SPAN_CAP`, λ·(s − s_ref) stays finite in
/// f32 (≤ 1.1e36), so no step of the weights overflows on any GPU.
pub const LAMBDA_CAP: f64 = 1_099_511_627_776.0;
/// |s_i − s_ref| beyond this is clamped (exp of the exponent is 0 in f32 long before).
pub const SCORE_SPAN_CAP: f64 = 1e24;

/// p_i = exp(λ·(s_i − s_ref)) / Σ_j exp(λ·(s_j − s_ref)) with s_ref = max(s) for λ ≥ 0 and
/// min(s) for λ < 0: every exponent is ≤ 0 and the top term's is exactly 0 (there is no
/// multiply-add that FMA contraction could round differently). λ = 0 and all-equal scores give
/// exactly the uniform weights 1/B, the value SAM uses. λ is clamped to ±LAMBDA_CAP. Mirrored by
/// `gibbs` in shaders/rwsam.wgsl.
pub fn gibbs_weights<T: Real>(scores: &[T], lambda: T) -> Vec<T> {
    let n = scores.len();
    let (hi, lo) = scores.iter().fold((T::neg_infinity(), T::infinity()), |(h, l), &s| (h.max(s), l.min(s)));
    if lambda == T::zero() || hi == lo {
        return vec![T::one() / T::of(n as f64); n];
    }
    let cap = T::of(LAMBDA_CAP);
    let lambda = lambda.max(-cap).min(cap);
    let s_ref = if lambda >= T::zero() { hi } else { lo };
    let span = T::of(SCORE_SPAN_CAP);
    let e: Vec<T> = scores.iter().map(|&s| (lambda * (s - s_ref).max(-span).min(span)).exp()).collect();
    let sum: T = e.iter().copied().sum();
    e.iter().map(|&v| v / sum).collect()
}

/// Effective sample size 1/Σ p_i².
pub fn ess<T: Real>(p: &[T]) -> f64 {
    1.0 / p.iter().map(|&v| v.f64() * v.f64()).sum::<f64>()
}

/// The λ ≥ 0 with ESS(softmax(λ·s)) = target: bracket by doubling λ = 1, 2, 4, …, then 60
/// halvings. The degenerate cases, resolved the same way by the GPU's `gibbs` kernel:
/// - the target is the whole batch or more, or the scores are all equal (B = 1 included):
///   every λ gives ESS = B, so λ = 0, the uniform weights of SAM;
/// - the target is out of reach: ESS(λ) falls to k, the number of tied maxima, as λ → ∞, so a
///   target below k (any r·B < 1 among them) is never met: λ = LAMBDA_CAP, the weights as
///   concentrated on the maxima as λ allows (ESS ≈ k).
pub fn lambda_for_ess(scores: &[f64], target: f64) -> f64 {
    lambda_for_ess_signed(scores, target, false)
}

/// As `lambda_for_ess`, or with `negative` the λ ≤ 0 with that ESS (the weights tilted toward
/// the smallest scores): the same bracket and halvings on −λ. Mirrored by `gibbs`, where the
/// sign of the configured λ picks it.
pub fn lambda_for_ess_signed(scores: &[f64], target: f64, negative: bool) -> f64 {
    let sign = if negative { -1.0 } else { 1.0 };
    sign * lambda_magnitude_for_ess(scores, target, sign)
}

fn lambda_magnitude_for_ess(scores: &[f64], target: f64, sign: f64) -> f64 {
    let ess_at = |l: f64| ess(&gibbs_weights(scores, sign * l));
    let (hi_s, lo_s) = scores.iter().fold((f64::NEG_INFINITY, f64::INFINITY), |(h, l), &s| (h.max(s), l.min(s)));
    if target >= scores.len() as f64 || hi_s == lo_s {
        return 0.0;
    }
    let mut hi = 1.0;
    while ess_at(hi) > target {
        if hi >= LAMBDA_CAP {
            return LAMBDA_CAP;
        }
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if ess_at(mid) > target { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

/// RW-SAM scores before the softmax: s_i, or s_i / mean(s) when `normalize` is set.
pub fn normalize_scores<T: Real>(scores: &mut [T], normalize: bool) {
    if normalize && !scores.is_empty() {
        let mean = scores.iter().copied().sum::<T>() / T::of(scores.len() as f64);
        let inv = T::one() / (mean + T::of(NORM_EPS));
        scores.iter_mut().for_each(|s| *s *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_zero_is_exactly_uniform() {
        let p = gibbs_weights(&[0.3f64, 5.0, 1.0, 2.0], 0.0);
        assert!(p.iter().all(|&v| v == 1.0 / 4.0));
        assert_eq!(ess(&p), 4.0);
    }

    #[test]
    fn large_lambda_concentrates_and_negative_lambda_avoids_the_largest() {
        let s = [0.1f64, 0.2, 3.0, 0.4];
        assert!(gibbs_weights(&s, 50.0)[2] > 0.999);
        assert!(gibbs_weights(&s, -5.0)[2] < 1e-5);
    }

    #[test]
    fn target_ess_is_met() {
        let s: Vec<f64> = (0..128).map(|i| ((i * 37) % 101) as f64 / 17.0).collect();
        for r in [0.9, 0.5, 0.1, 8.0 / 128.0] {
            let l = lambda_for_ess(&s, r * 128.0);
            assert!((ess(&gibbs_weights(&s, l)) - r * 128.0).abs() < 1e-6, "r = {r}");
        }
        assert_eq!(lambda_for_ess(&s, 128.0), 0.0);
    }

    #[test]
    fn degenerate_targets_give_zero_or_the_cap() {
        assert_eq!(lambda_for_ess(&[0.7; 12], 3.0), 0.0, "all scores equal");
        assert_eq!(lambda_for_ess(&[0.7], 0.5), 0.0, "B = 1");
        let tied = [[5.0; 8].as_slice(), &[1.0, 2.0, 3.0, 4.0]].concat();
        assert_eq!(lambda_for_ess(&tied, 3.0), LAMBDA_CAP, "eight tied maxima above the target");
        assert!((ess(&gibbs_weights(&tied, LAMBDA_CAP)) - 8.0).abs() < 1e-12);
        assert_eq!(lambda_for_ess(&[1.0, 2.0, 3.0], 0.6), LAMBDA_CAP, "r·B < 1");
        let p = gibbs_weights(&[1.0f32, 1e30, -3.0], 1e4);
        assert!(p.iter().all(|v| v.is_finite()) && p[1] == 1.0, "{p:?}");
    }

    #[test]
    fn base_update_is_torch_sgd() {
        let (mut w, mut v) = (vec![1.0f64, -2.0], vec![0.5, 0.0]);
        base_update(&mut w, &mut v, &[0.1, 0.2], 0.1, 0.9, 0.01);
        // d = g + wd·w = [0.11, 0.18]; v = 0.9·v + d = [0.56, 0.18]; w -= 0.1·v
        assert!((v[0] - 0.56).abs() < 1e-15 && (v[1] - 0.18).abs() < 1e-15);
        assert!((w[0] - 0.944).abs() < 1e-15 && (w[1] + 2.018).abs() < 1e-15);
    }
}
