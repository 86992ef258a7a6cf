//! The step program: one optimizer step of docs/ALGORITHMS.md (and the evaluation pass) as a list
//! of dispatches, the WGSL counterpart of `engine::step::sam_family_step`. It knows the shapes
//! and the optimizer settings, never a device: it records into a `Recorder<Bind>` whose bind
//! groups are named (`Bind`), and the engine resolves the names to its wgpu bind groups.
//!
//! m-SAM the GPU way: the M = B/m micro-batch gradients u_j come from one grouped weight-gradient
//! dispatch ([M, P]), the M perturbed copies from one `perturb` dispatch, and the perturbed
//! forward/backward passes read copy j = row / m for every row of the batch, all in the same
//! dispatches as a plain step. SAM is the M = 1 case of the same path.

use super::kernels::{Kernel, Params, weight_grad_groups};
use super::record::{Op, Passes, Recorder};
use crate::config::{NormEstimator, OptimizerConfig, OptimizerKind, RunConfig, RwDescent};
use crate::engine::StepPlan;
use crate::error::{Error, Result};
use crate::model::MlpSpec;
use crate::rng;

/// Layout of one step's statistics row (shaders/common.wgsl STAT_*).
pub const STAT_LOSS: usize = 0;
pub const STAT_CORRECT: usize = 1;
pub const STAT_GRAD_NORM: usize = 2;
pub const STAT_PERT_NORM: usize = 3;
pub const STAT_PERT_LOSS: usize = 4;
pub const STAT_ESS: usize = 5;
pub const STAT_LAMBDA: usize = 6;
pub const STAT_HEAD: usize = 8;

/// Rows of one evaluation chunk (and the minimum size of the activation buffers).
pub(super) const EVAL_CHUNK: usize = 256;

// Kernel switches, mirrored from the WGSL files (dense.wgsl WG_*, reduce.wgsl SS_*,
// optim.wgsl PERTURB_*, rwsam.wgsl GIBBS_*).
const WG_ACCUMULATE: u32 = 1;
const WG_USE_SCALE: u32 = 2;
const SS_GRAD_NORM: u32 = 1;
const SS_NONE: u32 = 0;
const SS_NORMALIZED: u32 = 1;
const SS_UNNORMALIZED: u32 = 2;
const SS_ASAM: u32 = 3;
const PERTURB_NORMALIZED: u32 = 1;
const PERTURB_ASAM: u32 = 2;
const GIBBS_SQRT: u32 = 1;
const GIBBS_NORMALIZE: u32 = 2;
const GIBBS_TARGET_ESS: u32 = 4;

/// Every dispatch grid (as dispatched, after `tile_grid`) that one training step and one
/// evaluation of `cfg` record for this model and data sizes: no device needed.
pub fn dispatch_grids(cfg: &RunConfig, spec: &MlpSpec, n_train: usize, n_test: usize) -> Result<Vec<(Kernel, [u32; 3])>, String> {
    let (program, _, _) = StepProgram::new(cfg, spec.clone(), n_train, n_test);
    Ok(program.dry_run()?.grids())
}

/// Whether M = batch/m weight copies of `n_params` parameters fit the device: in one binding of
/// `max_binding` bytes, and with every index below 2³² (the shaders index in u32, so M·P ≥ 2³²
/// would wrap). The refusal names `optimizer.m` and the smallest divisor of the batch that fits.
/// One copy of the parameters must fit one storage binding (and the shaders' u32 indices):
/// otherwise the model is too wide for this device, whatever the optimizer, and the error names
/// `model.hidden` with widths that would fit.
pub fn check_model_fits(spec: &crate::model::MlpSpec, n_params: usize, max_binding: u64) -> Result<()> {
    let fits = |p: u64| p < 1 << 32 && p * 4 <= max_binding;
    if fits(n_params as u64) {
        return Ok(());
    }
    let hidden: Vec<usize> = spec.sizes[1..spec.sizes.len() - 1].to_vec();
    let params_at = |w: u64| {
        let mut sizes = vec![spec.in_dim() as u64];
        sizes.extend(hidden.iter().map(|&h| (h as u64).min(w)));
        sizes.push(spec.out_dim() as u64);
        sizes.windows(2).map(|p| (p[0] + 1) * p[1]).sum::<u64>()
    };
    let widest = (1..=hidden.iter().copied().max().unwrap_or(1) as u64)
        .rev()
        .step_by(1)
        .find(|&w| w % 64 == 0 && fits(params_at(w)))
        .or_else(|| (1..64).rev().find(|&w| fits(params_at(w))));
    let hint =
        widest.map_or("a smaller model".to_string(), |w| format!("widths of at most {w} (e.g. --hidden {})", vec![w.to_string(); hidden.len()].join(",")));
    Err(Error::invalid(
        "model.hidden",
        format!("{hidden:?}"),
        format!(
            "{hint} on this GPU: {n_params} parameters need {:.0} MiB in one buffer, the device allows {:.0} MiB (max_storage_buffer_binding_size); or use the CPU engine",
            (n_params as u64 * 4) as f64 / 1048576.0,
            max_binding as f64 / 1048576.0
        ),
    ))
}

pub fn check_weight_copies(batch: usize, m: usize, n_params: usize, max_binding: u64) -> Result<()> {
    let values = |m: usize| (batch / m.max(1)) as u64 * n_params as u64;
    let fits = |m: usize| values(m) < 1 << 32 && values(m) * 4 <= max_binding;
    if fits(m) {
        return Ok(());
    }
    let copies = batch / m.max(1);
    let why = if values(m) >= 1 << 32 {
        format!("{copies} weight copies of {n_params} parameters are {} values, past the 2^32 that the shaders' u32 indices reach", values(m))
    } else {
        format!(
            "{copies} weight copies of {n_params} parameters need {:.0} MiB in one buffer, the device allows {:.0} MiB (max_storage_buffer_binding_size)",
            (values(m) * 4) as f64 / 1048576.0,
            max_binding as f64 / 1048576.0
        )
    };
    let hint = match (m.max(1)..=batch).find(|&d| batch.is_multiple_of(d) && fits(d)) {
        Some(d) => format!("fewer copies, e.g. m = {d} (a divisor of batch {batch})"),
        None => "no m: not even one copy of the parameters fits, so a smaller model".to_string(),
    };
    Err(Error::invalid("optimizer.m", m, format!("{hint}: {why}; or use the CPU engine")))
}

/// The engine's bind groups, by role (`GpuEngine` holds one wgpu bind group for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bind {
    GatherTrain,
    GatherTest,
    /// dense with weights = params, grads = grad / ugrad
    DenseParamsGrad,
    DenseParamsUgrad,
    /// dense with weights = wcopies, grads = grad
    DenseCopiesGrad,
    LossTrain,
    LossEval,
    ReduceGrad,
    ReduceUgrad,
    Optim,
    Rwsam,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Weights {
    Params,
    Copies,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GradOut {
    Grad,
    Ugrad,
}

/// The shapes and settings a step is recorded from.
pub(super) struct StepProgram {
    pub(super) passes: Passes,
    pub(super) opt: OptimizerConfig,
    seed: u64,
    pub(super) batch: usize,
    /// M: perturbed copies per step (B/m for m-SAM and m-USAM, else 1).
    pub(super) copies: usize,
    /// m: rows per copy.
    group: usize,
    pub(super) n_params: usize,
    pub(super) n_train: usize,
    pub(super) n_test: usize,
    /// Length of the identity prefix of the index buffer; step k's batch follows at
    /// identity_len + k·B.
    pub(super) identity_len: usize,
    /// Floats of one step's statistics row.
    pub(super) stats_row: usize,
    /// 1/B as the host rounds it: the row weight of SAM's batch gradient (the `scale` buffer)
    /// and of RW-SAM's uniform case (the `gibbs` uniform), one value for both.
    pub(super) uniform_weight: f32,
}

impl StepProgram {
    /// The program of `cfg` for this model and data sizes; also returns the activation and
    /// pre-activation lengths its buffers need.
    pub(super) fn new(cfg: &RunConfig, spec: MlpSpec, n_train: usize, n_test: usize) -> (Self, usize, usize) {
        let opt = cfg.optimizer.clone();
        let batch = cfg.batch;
        let (copies, group) = if opt.kind.uses_m() { (batch / opt.m, opt.m) } else { (1, batch) };
        let n_params = spec.n_params();
        let (passes, acts_len, z_len) = Passes::new(spec, batch.max(EVAL_CHUNK));
        let stats_row = STAT_HEAD + if opt.kind == OptimizerKind::Rwsam { 2 * batch } else { 0 };
        let identity_len = n_train.max(n_test);
        let uniform_weight = 1.0 / batch as f32;
        let program = Self { passes, opt, seed: cfg.seed, batch, copies, group, n_params, n_train, n_test, identity_len, stats_row, uniform_weight };
        (program, acts_len, z_len)
    }

    /// One step (in the last slot of a submit) and the evaluation pass, recorded without a
    /// device; an error names the first dispatch whose grid cannot be tiled.
    pub(super) fn dry_run(&self) -> Result<Recorder<Bind>, String> {
        let mut rec = Recorder::default();
        let plan = StepPlan { step: 0, indices: vec![0; self.batch], lr: 0.0 };
        self.record_step(&mut rec, super::MAX_STEPS_PER_SUBMIT - 1, &plan);
        self.record_eval(&mut rec);
        match rec.misfits.first() {
            Some((kernel, grid)) => Err(format!("{kernel:?} would need {grid:?} workgroups, more than a dispatch can tile")),
            None => Ok(rec),
        }
    }

    /// Compute dispatches recorded for one training step (the GPU's launch count per step).
    pub(super) fn dispatches_per_step(&self) -> usize {
        let mut rec = Recorder::default();
        let plan = StepPlan { step: 0, indices: vec![0; self.batch], lr: 0.0 };
        self.record_step(&mut rec, 0, &plan);
        rec.ops.iter().filter(|op| matches!(op, Op::Dispatch { .. })).count()
    }

    fn gather(&self, r: &mut Recorder<Bind>, test: bool, rows: usize, idx_off: usize) {
        let bind = if test { &Bind::GatherTest } else { &Bind::GatherTrain };
        let p = Params { rows: rows as u32, in_dim: self.passes.spec.in_dim() as u32, off0: idx_off as u32, ..Default::default() };
        r.dispatch_linear(Kernel::Gather, bind, p, rows * self.passes.spec.in_dim());
    }

    fn dense_bind(&self, weights: Weights) -> (&'static Bind, u32) {
        match weights {
            Weights::Params => (&Bind::DenseParamsGrad, 0),
            Weights::Copies => (&Bind::DenseCopiesGrad, self.n_params as u32),
        }
    }

    /// Forward through every layer; with `Weights::Copies` row r reads copy r / group.
    fn forward(&self, r: &mut Recorder<Bind>, weights: Weights, rows: usize, group: usize) {
        let (bind, stride) = self.dense_bind(weights);
        self.passes.forward(r, bind, rows, group, stride, 0);
    }

    /// Softmax cross-entropy of the last layer: losses/preds at `out_off`.
    fn loss(&self, r: &mut Recorder<Bind>, eval: bool, rows: usize, out_off: usize) {
        let bind = if eval { &Bind::LossEval } else { &Bind::LossTrain };
        self.passes.loss(r, bind, rows, out_off);
    }

    fn batch_stats(&self, r: &mut Recorder<Bind>, loss_off: usize, stat: usize, with_correct: bool) {
        let p = Params { rows: self.batch as u32, off0: loss_off as u32, off1: stat as u32, flags: with_correct as u32, ..Default::default() };
        r.dispatch(Kernel::BatchStats, &Bind::LossTrain, p, [1, 1]);
    }

    /// Deltas of every layer from the loss deltas down to layer 0.
    fn backward(&self, r: &mut Recorder<Bind>, weights: Weights, rows: usize, group: usize) {
        let (bind, stride) = self.dense_bind(weights);
        self.passes.backward(r, bind, rows, group, stride, 0);
    }

    /// Weight gradients of `groups` groups of `group` rows each, scaled by `scale` (and the
    /// per-row `scale` buffer with WG_USE_SCALE), into grad (one vector) or ugrad ([groups, P]).
    fn weight_grads(&self, r: &mut Recorder<Bind>, out: GradOut, groups: usize, group: usize, scale: f32, flags: u32) {
        let bind = match out {
            GradOut::Grad => &Bind::DenseParamsGrad,
            GradOut::Ugrad => &Bind::DenseParamsUgrad,
        };
        for l in 0..self.passes.spec.n_layers() {
            let layer = self.passes.spec.layers()[l];
            let mut p =
                Params { group: group as u32, copy_stride: if groups > 1 { self.n_params as u32 } else { 0 }, flags, ..self.passes.layer(l, groups * group) };
            p.f[0] = scale;
            r.dispatch(Kernel::WeightGrad, bind, p, weight_grad_groups(layer.out_dim, layer.in_dim, groups));
        }
    }

    /// norms[off + g] = ‖T^power · v_g‖ for the `groups` vectors of grad / ugrad.
    fn norms(&self, r: &mut Recorder<Bind>, of: GradOut, groups: usize, off: usize, power: u32) {
        let bind = match of {
            GradOut::Grad => &Bind::ReduceGrad,
            GradOut::Ugrad => &Bind::ReduceUgrad,
        };
        let mut p = Params { rows: groups as u32, n: self.n_params as u32, flags: power, off0: off as u32, ..Default::default() };
        p.f[0] = self.opt.xi as f32;
        r.dispatch(Kernel::SqNormGroups, bind, p, [groups, 1]);
    }

    fn perturb(&self, r: &mut Recorder<Bind>, copies: usize, flags: u32) {
        let mut p = Params { n: self.n_params as u32, flags, ..Default::default() };
        p.f[0] = self.opt.rho as f32;
        p.f[1] = self.opt.xi as f32;
        r.dispatch(Kernel::Perturb, &Bind::Optim, p, [self.n_params.div_ceil(64), copies]);
    }

    /// Fills the norm entries of a stats row: ‖g‖ from norms[grad_norm_at], ‖e‖ by `flags`.
    fn step_stats(&self, r: &mut Recorder<Bind>, stat: usize, flags: u32, groups: usize, grad_norm_at: usize) {
        let mut p = Params { n: groups as u32, flags, a_off: grad_norm_at as u32, off0: self.copies as u32, off1: stat as u32, ..Default::default() };
        p.f[0] = self.opt.rho as f32;
        r.dispatch(Kernel::StepStats, &Bind::ReduceGrad, p, [1, 1]);
    }

    fn update(&self, r: &mut Recorder<Bind>, lr: f64) {
        let mut p = Params { n: self.n_params as u32, ..Default::default() };
        p.f[0] = lr as f32;
        p.f[1] = self.opt.momentum as f32;
        p.f[2] = self.opt.weight_decay as f32;
        r.dispatch_linear(Kernel::Update, &Bind::Optim, p, self.n_params);
    }

    /// ∇f over the whole training set into ugrad (n-SAM), in chunks, each weighted 1/n.
    fn full_gradient(&self, r: &mut Recorder<Bind>) {
        let chunk = self.batch.max(EVAL_CHUNK);
        let mut start = 0;
        while start < self.n_train {
            let rows = chunk.min(self.n_train - start);
            self.gather(r, false, rows, start);
            self.forward(r, Weights::Params, rows, rows);
            self.loss(r, false, rows, 0);
            self.backward(r, Weights::Params, rows, rows);
            let flags = if start > 0 { WG_ACCUMULATE } else { 0 };
            self.weight_grads(r, GradOut::Ugrad, 1, rows, 1.0 / self.n_train as f32, flags);
            start += rows;
        }
    }

    /// One optimizer step (docs/ALGORITHMS.md), statistics into row `k` of the stats buffer.
    pub(super) fn record_step(&self, r: &mut Recorder<Bind>, k: usize, plan: &StepPlan) {
        let b = self.batch;
        let stat = k * self.stats_row;
        let idx = self.identity_len + k * b;
        let kind = self.opt.kind;
        let rw = &self.opt.rwsam;
        if kind.uses_full_gradient() {
            self.full_gradient(r);
        }
        self.gather(r, false, b, idx);
        let fd = kind == OptimizerKind::Rwsam && rw.estimator == NormEstimator::FiniteDifference;
        if fd {
            // f_i(w + δz) first: the clean pass below must leave its activations for backward.
            let mut p = Params { n: self.n_params as u32, key: rng::probe_key(self.seed, plan.step), ..Default::default() };
            p.f[0] = rw.delta as f32;
            r.dispatch_linear(Kernel::FdPoint, &Bind::Optim, p, self.n_params);
            self.forward(r, Weights::Copies, b, b);
            self.loss(r, false, b, b);
        }
        // f_γ(w) and the per-sample deltas at w.
        self.forward(r, Weights::Params, b, b);
        self.loss(r, false, b, 0);
        self.batch_stats(r, 0, stat + STAT_LOSS, true);
        let mut descent_flags = 0u32;
        let mut grad_norm_at = 0;
        let (stats_flags, groups) = match kind {
            OptimizerKind::Sgd => {
                self.backward(r, Weights::Params, b, b);
                self.weight_grads(r, GradOut::Grad, 1, b, 1.0 / b as f32, 0);
                self.norms(r, GradOut::Grad, 1, 0, 0);
                self.step_stats(r, stat, SS_GRAD_NORM | (SS_NONE << 1), 1, 0);
                self.update(r, plan.lr);
                return;
            }
            OptimizerKind::Sam | OptimizerKind::Usam | OptimizerKind::Asam | OptimizerKind::Msam | OptimizerKind::Musam => {
                // u_j = ∇f_{I_j}(w) for the M micro-batches (M = 1: the batch gradient).
                let (m, copies) = (self.group, self.copies);
                self.backward(r, Weights::Params, b, b);
                if copies == 1 && !kind.uses_m() {
                    // Σ_i (1/B)·∇f_i like RW-SAM's Σ_i p_i·∇f_i, so that RW-SAM with λ = 0
                    // (p_i = 1/B exactly) is SAM bit for bit, as on the CPU. m-SAM with m = B
                    // takes the grouped dispatch below with one group: its identity with SAM
                    // is then a test of that path, not of a shortcut.
                    self.weight_grads(r, GradOut::Ugrad, 1, b, 1.0, WG_USE_SCALE);
                } else {
                    self.weight_grads(r, GradOut::Ugrad, copies, m, 1.0 / m as f32, 0);
                }
                let asam = kind == OptimizerKind::Asam;
                self.norms(r, GradOut::Ugrad, copies, 0, asam as u32);
                if asam {
                    self.norms(r, GradOut::Ugrad, 1, copies, 2);
                    self.norms(r, GradOut::Ugrad, 1, copies + 1, 0);
                }
                let normalized = matches!(kind, OptimizerKind::Sam | OptimizerKind::Asam | OptimizerKind::Msam);
                self.perturb(r, copies, (normalized as u32 * PERTURB_NORMALIZED) | (asam as u32 * PERTURB_ASAM));
                if asam {
                    grad_norm_at = copies + 1;
                }
                let mode = if asam {
                    SS_ASAM
                } else if normalized {
                    SS_NORMALIZED
                } else {
                    SS_UNNORMALIZED
                };
                ((if copies == 1 { SS_GRAD_NORM } else { 0 }) | (mode << 1), copies)
            }
            OptimizerKind::Nsam | OptimizerKind::Nusam => {
                let normalized = kind == OptimizerKind::Nsam;
                self.norms(r, GradOut::Ugrad, 1, 0, 0);
                self.perturb(r, 1, normalized as u32 * PERTURB_NORMALIZED);
                ((if normalized { SS_NORMALIZED } else { SS_UNNORMALIZED }) << 1, 1)
            }
            OptimizerKind::Rwsam => {
                self.backward(r, Weights::Params, b, b);
                let mut gibbs = Params { rows: b as u32, off1: stat as u32, ..Default::default() };
                if fd {
                    let mut p = Params { rows: b as u32, off0: b as u32, ..Default::default() };
                    p.f[0] = rw.delta as f32;
                    r.dispatch_linear(Kernel::FdScores, &Bind::Rwsam, p, b);
                } else {
                    for l in 0..self.passes.spec.n_layers() {
                        let p = Params { flags: (l > 0) as u32, ..self.passes.layer(l, b) };
                        r.dispatch_linear(Kernel::SampleSqNorms, &Bind::Rwsam, p, b);
                    }
                    gibbs.flags |= GIBBS_SQRT;
                }
                if rw.normalize {
                    gibbs.flags |= GIBBS_NORMALIZE;
                }
                gibbs.f[0] = rw.lambda as f32;
                gibbs.f[2] = self.uniform_weight;
                if let Some(ratio) = rw.target_ess {
                    gibbs.flags |= GIBBS_TARGET_ESS;
                    gibbs.f[1] = (ratio * b as f64) as f32;
                }
                r.dispatch(Kernel::Gibbs, &Bind::Rwsam, gibbs, [1, 1]);
                // g_p = Σ p_i ∇f_i(w), then e = ρ·g_p/‖g_p‖.
                self.weight_grads(r, GradOut::Ugrad, 1, b, 1.0, WG_USE_SCALE);
                self.norms(r, GradOut::Ugrad, 1, 0, 0);
                self.perturb(r, 1, PERTURB_NORMALIZED);
                if rw.descent == RwDescent::Weighted {
                    descent_flags = WG_USE_SCALE;
                }
                (SS_NORMALIZED << 1, 1)
            }
        };
        // Descent at the perturbed point(s): row r reads copy r / m.
        let group = if groups > 1 { self.group } else { b };
        self.forward(r, Weights::Copies, b, group);
        self.loss(r, false, b, 0);
        self.batch_stats(r, 0, stat + STAT_PERT_LOSS, false);
        self.backward(r, Weights::Copies, b, group);
        let scale = if descent_flags == WG_USE_SCALE { 1.0 } else { 1.0 / b as f32 };
        // The weight gradient reads activations and deltas only, so the params binding serves.
        self.weight_grads(r, GradOut::Grad, 1, b, scale, descent_flags);
        self.step_stats(r, stat, stats_flags, groups, grad_norm_at);
        self.update(r, plan.lr);
    }

    pub(super) fn record_eval(&self, r: &mut Recorder<Bind>) {
        for (test, n, base) in [(false, self.n_train, 0), (true, self.n_test, self.n_train)] {
            let mut start = 0;
            while start < n {
                let rows = EVAL_CHUNK.max(self.batch).min(n - start);
                self.gather(r, test, rows, start);
                self.forward(r, Weights::Params, rows, rows);
                self.loss(r, true, rows, base + start);
                start += rows;
            }
        }
    }
}
