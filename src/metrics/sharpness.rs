//! SAM sharpness, the m-sharpness curve and the m-USAM implicit regulariser (docs/ALGORITHMS.md#sam-sharpness, #m-sharpness-curve).

use super::Objective;
use crate::optim::NORM_EPS;
use crate::resumable::{in_pieces, pause};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// S_ρ(w) = f(w + ρ·∇f/‖∇f‖) − f(w): the first-order worst case inside the ρ-ball.
/// `grad` is ∇f(w) and `loss` is f(w).
pub fn sam_sharpness<O: Objective + ?Sized>(obj: &mut O, w: &[f64], loss: f64, grad: &[f64], rho: f64) -> f64 {
    let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
    let c = rho / (norm + NORM_EPS);
    let point: Vec<f64> = w.iter().zip(grad).map(|(&x, &g)| x + c * g).collect();
    obj.loss(&point) - loss
}

/// R_m = (ρ/2)·‖∇f‖² + (ρ/(2m))·tr V, the implicit regulariser the SDE analysis assigns to
/// m-USAM (mini-batch USAM is m = B; n-USAM drops the tr V term).
pub fn usam_regularizer(rho: f64, grad_sq_norm: f64, trace_v: f64, m: usize) -> f64 {
    0.5 * rho * grad_sq_norm + 0.5 * rho * trace_v / m as f64
}

/// One point of the m-sharpness curve.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MPoint {
    pub m: usize,
    /// E‖∇f_I‖ over the drawn micro-batches I of size m.
    pub mean_norm: f64,
    /// √(E‖∇f_I‖²) over the same micro-batches.
    pub rms_norm: f64,
    /// √(‖∇f‖² + tr V/m), the bound drawn beside the curve.
    pub bound: f64,
    /// R_m of the m-USAM regulariser at this m.
    pub regularizer: f64,
    /// How many micro-batches the mean is over.
    pub groups: usize,
}

/// m = 1, 2, 4, … up to `max` (and `max` itself when it is not a power of two).
pub fn m_values(max: usize) -> Vec<usize> {
    let mut ms = Vec::new();
    let mut m = 1;
    while m <= max {
        ms.push(m);
        m *= 2;
    }
    if max > 0 && ms.last() != Some(&max) {
        ms.push(max);
    }
    ms
}

/// Samples per `group_sq_norms` call of the m-sharpness curve (rounded up to whole groups): the
/// size of one piece of a measurement made between frames.
pub const CURVE_PIECE_SAMPLES: usize = 64;

/// E‖∇f_I‖ over random micro-batches I of size m drawn WITHOUT replacement from the evaluation
/// set, for each m in `ms` (each ≤ n). A draw is a seeded permutation of the set cut into ⌊n/m⌋
/// disjoint micro-batches (the way m-SAM cuts a shuffled batch); draws repeat until at least
/// `min_groups` micro-batches are in the mean. At m = 1 (n divisible by m) the mean is over every
/// sample exactly, at m = n it is ‖∇f‖.
///
/// Without replacement, E‖∇f_I‖² = ‖∇f‖² + (tr V/m)·(n − m)/(n − 1) ≤ ‖∇f‖² + tr V/m, so by
/// Jensen the bound holds for every m (and is loose by the finite-population factor).
/// Pauses after every piece of a draw (`resumable`).
pub async fn m_sharpness_curve<O: Objective + ?Sized>(
    obj: &mut O,
    w: &[f64],
    ms: &[usize],
    grad_sq_norm: f64,
    trace_v: f64,
    rho: f64,
    min_groups: usize,
    rng: &mut Rng,
) -> Vec<MPoint> {
    let n = obj.n_samples();
    let mut out = Vec::new();
    for &m in ms.iter().filter(|&&m| m >= 1 && m <= n) {
        let per_draw = n / m;
        let draws = if m == 1 || m == n { 1 } else { min_groups.div_ceil(per_draw).clamp(1, 256) };
        let mut sq = Vec::with_capacity(draws * per_draw);
        for _ in 0..draws {
            let order = rng.permutation(n);
            // Between frames, whole groups of at least CURVE_PIECE_SAMPLES samples per call (each
            // group's norm is its own, so the pieces give the draw's norms exactly); run at once,
            // the whole draw in one call (one device pass on the GPU objective).
            let piece = if in_pieces() { CURVE_PIECE_SAMPLES.div_ceil(m) * m } else { per_draw * m };
            for part in order[..per_draw * m].chunks(piece.max(1)) {
                sq.extend(obj.group_sq_norms(w, part, m));
                pause().await;
            }
        }
        let k = sq.len().max(1) as f64;
        out.push(MPoint {
            m,
            mean_norm: sq.iter().map(|s| s.max(0.0).sqrt()).sum::<f64>() / k,
            rms_norm: (sq.iter().sum::<f64>() / k).max(0.0).sqrt(),
            bound: (grad_sq_norm + trace_v / m as f64).max(0.0).sqrt(),
            regularizer: usam_regularizer(rho, grad_sq_norm, trace_v, m),
            groups: sq.len(),
        });
    }
    out
}
