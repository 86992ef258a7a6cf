//! One optimizer step (docs/ALGORITHMS.md) on the CPU, generic over the scalar (f64: reference and the
//! `step` oracle; f32: the run-time engine). Each branch quotes the formula it implements.

use crate::config::{NormEstimator, OptimizerConfig, OptimizerKind, RwDescent};
use crate::model::mlp::{LowRank, softmax_xent};
use crate::model::{Mlp, Real, Tape};
use crate::optim::{self, NORM_EPS};
use serde::Serialize;

/// The samples of one step. `probe` is the Rademacher vector z of the finite-difference norm
/// estimator (length n_params); `full` is the whole training set, for n-SAM.
#[derive(Clone, Copy)]
pub struct StepInput<'a, T> {
    pub x: &'a [T],
    pub y: &'a [u32],
    pub probe: Option<&'a [T]>,
    pub full: Option<(&'a [T], &'a [u32])>,
}

/// What a step measured along the way.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StepReport {
    /// f_γ(w), the batch loss before the step.
    pub loss: f64,
    /// Correct predictions on the batch at w.
    pub correct: usize,
    /// ‖∇f_γ(w)‖ where the step computed it (not for m-SAM with M > 1, nor n-SAM's batch).
    pub grad_norm: Option<f64>,
    /// ‖e‖ (for m-SAM the mean of ‖e_j‖ over micro-batches).
    pub perturbation_norm: f64,
    /// The loss at the perturbed point(s), batch mean (= loss for SGD).
    pub perturbed_loss: f64,
    pub rwsam: Option<RwReport>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RwReport {
    /// s_i, the per-sample norm estimates (after normalisation, if set).
    pub scores: Vec<f64>,
    /// p_i, the Gibbs weights.
    pub weights: Vec<f64>,
    pub lambda: f64,
    pub ess: f64,
}

/// Reused buffers of a step.
#[derive(Clone, Debug, Default)]
pub struct Workspace<T> {
    tape: Tape<T>,
    tape2: Tape<T>,
    deltas: Vec<Vec<T>>,
    deltas2: Vec<Vec<T>>,
    grad: Vec<T>,
    point: Vec<T>,
    scale: Vec<T>,
}

/// One step of `opt` at learning rate `lr`: updates `params` and `velocity` in place.
pub fn sam_family_step<T: Real>(
    mlp: &mut Mlp<T>,
    params: &mut [T],
    velocity: &mut [T],
    input: StepInput<T>,
    opt: &OptimizerConfig,
    lr: f64,
    ws: &mut Workspace<T>,
) -> StepReport {
    let batch = input.y.len();
    let n_params = params.len();
    let rho = T::of(opt.rho);
    let uniform = T::one() / T::of(batch as f64);
    ws.grad.resize(n_params, T::zero());
    ws.scale.clear();
    ws.scale.resize(batch, uniform);

    // Forward and per-sample deltas at w: every optimizer needs them.
    mlp.forward(params, input.x, batch, &mut ws.tape, None);
    let out = softmax_xent(ws.tape.logits(), input.y, mlp.spec.out_dim());
    let mut report = StepReport { loss: out.mean_loss().f64(), correct: out.correct(input.y), ..Default::default() };
    mlp.backprop(params, &ws.tape, &out.dlogits, &mut ws.deltas, None);

    let groups = if opt.kind.uses_m() { batch / opt.m } else { 1 };
    // m-SAM with m = B runs the grouped (rank-m) path with one group: the identity with SAM
    // (docs/ALGORITHMS.md#identities) is then a property of that path, tested, not a shortcut.
    let kind = opt.kind;

    let mut descent_scale_is_p = false;
    match kind {
        // SGD | none | ∇f_γ(w)
        OptimizerKind::Sgd => {
            mlp.weight_grads(&ws.tape, &ws.deltas, &ws.scale, &mut ws.grad);
            report.grad_norm = Some(optim::norm(&ws.grad));
            report.perturbed_loss = report.loss;
            optim::base_update(params, velocity, &ws.grad, lr, opt.momentum, opt.weight_decay);
            return report;
        }
        // SAM | ρ·∇f_γ(w)/‖∇f_γ(w)‖    USAM | ρ·∇f_γ(w)    ASAM | ρ·T²g/‖T·g‖, T = |w| + ξ
        OptimizerKind::Sam | OptimizerKind::Usam | OptimizerKind::Asam => {
            mlp.weight_grads(&ws.tape, &ws.deltas, &ws.scale, &mut ws.grad);
            let g_norm = optim::norm(&ws.grad);
            report.grad_norm = Some(g_norm);
            let t = (kind == OptimizerKind::Asam).then(|| asam_scale(params, opt.xi));
            report.perturbation_norm = perturb_point(params, &ws.grad, rho, kind != OptimizerKind::Usam, t.as_deref(), &mut ws.point);
        }
        // n-SAM | ρ·∇f(w)/‖∇f(w)‖    n-USAM | ρ·∇f(w)    over the FULL training set
        OptimizerKind::Nsam | OptimizerKind::Nusam => {
            let (fx, fy) = input.full.unwrap_or((input.x, input.y));
            full_gradient(mlp, params, fx, fy, &mut ws.tape2, &mut ws.deltas2, &mut ws.grad);
            report.perturbation_norm = perturb_point(params, &ws.grad, rho, kind == OptimizerKind::Nsam, None, &mut ws.point);
        }
        // RW-SAM | ρ·g_p/‖g_p‖, g_p = Σ p_i ∇f_i(w), p = softmax(λ·s)
        OptimizerKind::Rwsam => {
            let rw = &opt.rwsam;
            let mut scores: Vec<T> = match rw.estimator {
                NormEstimator::Exact => mlp.per_sample_sq_norms(&ws.tape, &ws.deltas).into_iter().map(|v| v.sqrt()).collect(),
                NormEstimator::FiniteDifference => {
                    let z = input.probe.expect("the finite-difference estimator needs a probe vector");
                    let delta = T::of(rw.delta);
                    ws.point.clear();
                    ws.point.extend(params.iter().zip(z).map(|(&w, &zi)| w + delta * zi));
                    mlp.forward(&ws.point, input.x, batch, &mut ws.tape2, None);
                    let shifted = softmax_xent(ws.tape2.logits(), input.y, mlp.spec.out_dim());
                    shifted.losses.iter().zip(&out.losses).map(|(&a, &b)| (a - b).abs() / delta).collect()
                }
            };
            optim::normalize_scores(&mut scores, rw.normalize);
            let lambda = match rw.target_ess {
                Some(r) => optim::lambda_for_ess_signed(&scores.iter().map(|s| s.f64()).collect::<Vec<_>>(), r * batch as f64, rw.lambda < 0.0),
                None => rw.lambda,
            };
            let p = optim::gibbs_weights(&scores, T::of(lambda));
            ws.scale.copy_from_slice(&p);
            mlp.weight_grads(&ws.tape, &ws.deltas, &ws.scale, &mut ws.grad);
            report.perturbation_norm = perturb_point(params, &ws.grad, rho, true, None, &mut ws.point);
            report.rwsam =
                Some(RwReport { ess: optim::ess(&p), scores: scores.iter().map(|s| s.f64()).collect(), weights: p.iter().map(|v| v.f64()).collect(), lambda });
            descent_scale_is_p = rw.descent == RwDescent::Weighted;
        }
        // m-SAM | e_j = ρ·u_j/‖u_j‖, u_j = ∇f_{I_j}(w)   m-USAM | e_j = ρ·u_j
        // g_d = (1/M)·Σ_j ∇f_{I_j}(w + e_j), each micro-batch at its own perturbed point,
        // evaluated through the rank-m action of e_j (no weight copies on the CPU).
        OptimizerKind::Msam | OptimizerKind::Musam => {
            let m = opt.m;
            let sq = mlp.group_sq_norms(&ws.tape, &ws.deltas, m);
            let normalized = kind == OptimizerKind::Msam;
            let norms: Vec<f64> = sq.iter().map(|s| s.f64().max(0.0).sqrt()).collect();
            // e_j = c_j·u_j with u_j = (1/m)Σ d_i a_iᵀ, so the rank-m coefficient is c_j/m.
            let coef: Vec<T> = norms
                .iter()
                .map(|&n| {
                    let c = if normalized { opt.rho / (n + NORM_EPS) } else { opt.rho };
                    T::of(c / m as f64)
                })
                .collect();
            report.perturbation_norm = norms.iter().map(|&n| if normalized { opt.rho * n / (n + NORM_EPS) } else { opt.rho * n }).sum::<f64>() / groups as f64;
            let lowrank = LowRank { group: m, coef: &coef, acts: &ws.tape.acts, deltas: &ws.deltas };
            mlp.forward(params, input.x, batch, &mut ws.tape2, Some(&lowrank));
            let pert = softmax_xent(ws.tape2.logits(), input.y, mlp.spec.out_dim());
            report.perturbed_loss = pert.mean_loss().f64();
            mlp.backprop(params, &ws.tape2, &pert.dlogits, &mut ws.deltas2, Some(&lowrank));
            mlp.weight_grads(&ws.tape2, &ws.deltas2, &ws.scale, &mut ws.grad);
            optim::base_update(params, velocity, &ws.grad, lr, opt.momentum, opt.weight_decay);
            return report;
        }
    }

    // Descent at the single perturbed point w + e (in ws.point): g_d = ∇f_γ(w + e).
    mlp.forward(&ws.point, input.x, batch, &mut ws.tape2, None);
    let pert = softmax_xent(ws.tape2.logits(), input.y, mlp.spec.out_dim());
    report.perturbed_loss = pert.mean_loss().f64();
    mlp.backprop(&ws.point, &ws.tape2, &pert.dlogits, &mut ws.deltas2, None);
    if !descent_scale_is_p {
        ws.scale.fill(uniform);
    }
    mlp.weight_grads(&ws.tape2, &ws.deltas2, &ws.scale, &mut ws.grad);
    optim::base_update(params, velocity, &ws.grad, lr, opt.momentum, opt.weight_decay);
    report
}

/// ASAM's T = |w| + ξ, elementwise over the whole parameter vector (docs/ALGORITHMS.md#asam).
pub fn asam_scale<T: Real>(params: &[T], xi: f64) -> Vec<T> {
    let xi = T::of(xi);
    params.iter().map(|&w| w.abs() + xi).collect()
}

/// point = w + e with e = ρ·T²g/(‖T·g‖ + ε) (normalised; T = 1 when `t` is None) or e = ρ·g
/// (unnormalised). Returns ‖e‖.
pub fn perturb_point<T: Real>(params: &[T], g: &[T], rho: T, normalized: bool, t: Option<&[T]>, point: &mut Vec<T>) -> f64 {
    let coef = if normalized {
        let n = match t {
            None => optim::norm(g),
            Some(t) => g.iter().zip(t).map(|(&g, &t)| (t * g).f64().powi(2)).sum::<f64>().sqrt(),
        };
        rho / T::of(n + NORM_EPS)
    } else {
        rho
    };
    point.clear();
    let mut e_sq = 0.0;
    for (i, (&w, &gi)) in params.iter().zip(g).enumerate() {
        let e = match t {
            None => gi * coef,
            Some(t) => t[i] * t[i] * gi * coef,
        };
        e_sq += e.f64() * e.f64();
        point.push(w + e);
    }
    e_sq.sqrt()
}

/// ∇f over a whole set, in chunks, weighting each chunk by its share (n-SAM's perturbation).
pub fn full_gradient<T: Real>(mlp: &mut Mlp<T>, params: &[T], x: &[T], y: &[u32], tape: &mut Tape<T>, deltas: &mut Vec<Vec<T>>, grad: &mut [T]) {
    const CHUNK: usize = 512;
    let n = y.len();
    let in_dim = mlp.spec.in_dim();
    let inv_n = T::one() / T::of(n as f64);
    let mut chunk_grad = vec![T::zero(); grad.len()];
    grad.fill(T::zero());
    for (xs, ys) in x.chunks(CHUNK * in_dim).zip(y.chunks(CHUNK)) {
        mlp.forward(params, xs, ys.len(), tape, None);
        let out = softmax_xent(tape.logits(), ys, mlp.spec.out_dim());
        mlp.backprop(params, tape, &out.dlogits, deltas, None);
        mlp.weight_grads(tape, deltas, &vec![inv_n; ys.len()], &mut chunk_grad);
        for (g, &c) in grad.iter_mut().zip(&chunk_grad) {
            *g += c;
        }
    }
}
