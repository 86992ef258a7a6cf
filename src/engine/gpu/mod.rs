//! The WGSL engine: the arithmetic of `engine::step` as compute shaders (shaders/*.wgsl).
//!
//! Everything lives in flat GPU buffers: the datasets, the parameters, momentum, gradients, the
//! per-layer activations, pre-activations and deltas (one buffer each, per-layer regions at the
//! offsets `a_off` / `z_off`), and the perturbed weight copies `wcopies` ([M, P]). A training
//! step never reads back: K steps are recorded into one command buffer (many dispatches in one
//! compute pass, each with its own 256-byte uniform slot), and their statistics are copied into a
//! staging buffer that `poll` maps asynchronously. Nothing here waits on the GPU except
//! `finish`, which only the native CLI and tests call.
//!
//! m-SAM the GPU way: the M = B/m micro-batch gradients u_j come from one grouped weight-gradient
//! dispatch ([M, P]), the M perturbed copies from one `perturb` dispatch, and the perturbed
//! forward/backward passes read copy j = row / m for every row of the batch, all in the same
//! dispatches as a plain step. SAM is the M = 1 case of the same path.
//!
//! Architecture invariant: the only module that touches wgpu (with `context` and `kernels`).

pub mod context;
#[cfg(not(target_arch = "wasm32"))]
pub mod evaluator;
pub mod kernels;
#[cfg(not(target_arch = "wasm32"))]
pub mod objective;

pub use context::GpuContext;

use super::cpu::spec_for;
use super::{Engine, ParamsTag, Request, Response, RwReport, StepPlan, StepReport};
use crate::config::{NormEstimator, OptimizerConfig, OptimizerKind, RunConfig, RwDescent};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::MlpSpec;
use crate::model::mlp::Evaluation;
use crate::rng;
use kernels::{ACT_NONE, Kernel, Params, SLOT, backward_groups, forward_groups, weight_grad_groups};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

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
const EVAL_CHUNK: usize = 256;
/// Most steps recorded into one submit.
pub const MAX_STEPS_PER_SUBMIT: usize = 64;

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

struct Buffers {
    train_x: wgpu::Buffer,
    train_y: wgpu::Buffer,
    test_x: wgpu::Buffer,
    test_y: wgpu::Buffer,
    indices: wgpu::Buffer,
    acts: wgpu::Buffer,
    pre: wgpu::Buffer,
    deltas: wgpu::Buffer,
    labels: wgpu::Buffer,
    scale: wgpu::Buffer,
    params: wgpu::Buffer,
    velocity: wgpu::Buffer,
    grad: wgpu::Buffer,
    ugrad: wgpu::Buffer,
    wcopies: wgpu::Buffer,
    norms: wgpu::Buffer,
    losses: wgpu::Buffer,
    preds: wgpu::Buffer,
    eval_losses: wgpu::Buffer,
    eval_preds: wgpu::Buffer,
    scores: wgpu::Buffer,
    stats: wgpu::Buffer,
    /// dense.wgsl's base_pre, unused in training (DENSE_FROZEN is for Hessian products).
    no_base: wgpu::Buffer,
}

struct Binds {
    gather_train: wgpu::BindGroup,
    gather_test: wgpu::BindGroup,
    /// dense with weights = params, grads = grad / ugrad
    dense_params_grad: wgpu::BindGroup,
    dense_params_ugrad: wgpu::BindGroup,
    /// dense with weights = wcopies, grads = grad
    dense_copies_grad: wgpu::BindGroup,
    loss_train: wgpu::BindGroup,
    loss_eval: wgpu::BindGroup,
    reduce_grad: wgpu::BindGroup,
    reduce_ugrad: wgpu::BindGroup,
    optim: wgpu::BindGroup,
    rwsam: wgpu::BindGroup,
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

enum Op {
    Dispatch { kernel: Kernel, bind: wgpu::BindGroup, slot: u32, groups: [u32; 3] },
    Copy { src: wgpu::Buffer, src_offset: u64, dst: wgpu::Buffer, dst_offset: u64, size: u64 },
}

/// Dispatches and copies of one submit, with their uniforms.
#[derive(Default)]
struct Recorder {
    slots: Vec<Params>,
    ops: Vec<Op>,
}

impl Recorder {
    fn dispatch(&mut self, kernel: Kernel, bind: &wgpu::BindGroup, params: Params, groups: [u32; 3]) {
        self.slots.push(params);
        self.ops.push(Op::Dispatch { kernel, bind: bind.clone(), slot: self.slots.len() as u32 - 1, groups });
    }

    /// A 1D kernel of 64 threads per workgroup over n items (see `linear_id` in WGSL).
    fn dispatch_linear(&mut self, kernel: Kernel, bind: &wgpu::BindGroup, params: Params, n: usize) {
        let wg = n.div_ceil(64).max(1) as u32;
        let groups = if wg <= 65535 { [wg, 1, 1] } else { [65535, wg.div_ceil(65535), 1] };
        self.dispatch(kernel, bind, params, groups);
    }

    fn copy(&mut self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64) {
        self.ops.push(Op::Copy { src: src.clone(), src_offset, dst: dst.clone(), dst_offset, size });
    }
}

enum PendingKind {
    Steps(Vec<u64>),
    Eval(u64),
    Params(ParamsTag),
}

struct Pending {
    kind: PendingKind,
    staging: wgpu::Buffer,
    size: u64,
    /// 0: waiting, 1: mapped, 2: mapping failed.
    state: Arc<AtomicU8>,
}

pub struct GpuEngine {
    ctx: GpuContext,
    passes: Passes,
    opt: OptimizerConfig,
    seed: u64,
    batch: usize,
    /// M: perturbed copies per step (B/m for m-SAM and m-USAM, else 1).
    copies: usize,
    /// m: rows per copy.
    group: usize,
    n_params: usize,
    n_train: usize,
    n_test: usize,
    identity_len: usize,
    stats_row: usize,
    b: Buffers,
    binds: Binds,
    uniforms: Uniforms,
    pending: VecDeque<Pending>,
    pool: Vec<wgpu::Buffer>,
}

/// Per-layer regions of the activation buffers for `rows` rows: (a_off, z_off, acts_len, z_len),
/// in floats; acts_len includes the logits' width after the last layer.
fn layer_offsets(spec: &MlpSpec, rows: usize) -> (Vec<u32>, Vec<u32>, usize, usize) {
    let (mut a_off, mut z_off) = (Vec::new(), Vec::new());
    let (mut a, mut z) = (0usize, 0usize);
    for l in spec.layers() {
        a_off.push(a as u32);
        z_off.push(z as u32);
        a += rows * l.in_dim;
        z += rows * l.out_dim;
    }
    (a_off, z_off, a + rows * spec.out_dim(), z)
}

/// The MLP's passes as dispatches over per-layer regions of the activation buffers: one place
/// for the engine, the landscape evaluator and the metrics objective.
struct Passes {
    spec: MlpSpec,
    a_off: Vec<u32>,
    z_off: Vec<u32>,
}

impl Passes {
    /// The passes for `rows` rows; also returns the activation and pre-activation lengths.
    fn new(spec: MlpSpec, rows: usize) -> (Self, usize, usize) {
        let (a_off, z_off, acts_len, z_len) = layer_offsets(&spec, rows);
        (Self { spec, a_off, z_off }, acts_len, z_len)
    }

    fn layer(&self, l: usize, rows: usize) -> Params {
        let layer = self.spec.layers()[l];
        Params {
            rows: rows as u32,
            in_dim: layer.in_dim as u32,
            out_dim: layer.out_dim as u32,
            group: rows.max(1) as u32,
            a_off: self.a_off[l],
            z_off: self.z_off[l],
            w_off: layer.w_offset as u32,
            b_off: layer.b_offset as u32,
            ..Default::default()
        }
    }

    /// Forward through every layer; with copy_stride > 0 row r reads copy r / group.
    fn forward(&self, r: &mut Recorder, bind: &wgpu::BindGroup, rows: usize, group: usize, copy_stride: u32, flags: u32) {
        let n = self.spec.n_layers();
        for l in 0..n {
            let last = l + 1 == n;
            let p = Params {
                group: group as u32,
                copy_stride,
                act: if last { ACT_NONE } else { self.spec.activation.shader_id() },
                off0: if last { 0 } else { self.a_off[l + 1] },
                flags,
                ..self.layer(l, rows)
            };
            r.dispatch(Kernel::Forward, bind, p, forward_groups(self.spec.layers()[l].out_dim, rows));
        }
    }

    /// Deltas of every layer from the loss deltas down to layer 0.
    fn backward(&self, r: &mut Recorder, bind: &wgpu::BindGroup, rows: usize, group: usize, copy_stride: u32, flags: u32) {
        for l in (1..self.spec.n_layers()).rev() {
            let p = Params { group: group as u32, copy_stride, act: self.spec.activation.shader_id(), off0: self.z_off[l - 1], flags, ..self.layer(l, rows) };
            r.dispatch(Kernel::BackwardInput, bind, p, backward_groups(self.spec.layers()[l].in_dim, rows));
        }
    }

    /// Softmax cross-entropy of the last layer: losses/preds at `out_off`.
    fn loss(&self, r: &mut Recorder, bind: &wgpu::BindGroup, rows: usize, out_off: usize) {
        let l = self.spec.n_layers() - 1;
        let p = Params { out_dim: self.spec.out_dim() as u32, off0: out_off as u32, ..self.layer(l, rows) };
        r.dispatch_linear(Kernel::SoftmaxXent, bind, p, rows);
    }
}

fn storage(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

fn storage_init<T: bytemuck::Pod>(device: &wgpu::Device, queue: &wgpu::Queue, label: &str, data: &[T]) -> wgpu::Buffer {
    let buf = storage(device, label, std::mem::size_of_val(data) as u64);
    if !data.is_empty() {
        queue.write_buffer(&buf, 0, bytemuck::cast_slice(data));
    }
    buf
}

fn bind(device: &wgpu::Device, layout: &wgpu::BindGroupLayout, label: &str, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> =
        buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() }).collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout, entries: &entries })
}

impl GpuEngine {
    /// Opens its own device (CLI, tests). Natively only: blocks while the device opens.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<Self> {
        Self::new(GpuContext::request_blocking()?, cfg, data, init)
    }

    pub fn new(ctx: GpuContext, cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<Self> {
        let spec = spec_for(cfg, &data);
        let n_params = spec.n_params();
        if init.len() != n_params {
            return Err(Error::Data(format!("initial weights have {} values, the model needs {n_params}", init.len())));
        }
        let opt = cfg.optimizer.clone();
        let batch = cfg.batch;
        let (copies, group) = if opt.kind.uses_m() { (batch / opt.m, opt.m) } else { (1, batch) };
        let rows_max = batch.max(EVAL_CHUNK);
        let limits = ctx.device.limits();
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let copies_bytes = (copies * n_params * 4) as u64;
        if copies_bytes > max_binding {
            return Err(Error::invalid(
                "optimizer.m",
                opt.m,
                format!(
                    "m ≥ {} on {}: {} weight copies of {} parameters need {:.0} MiB per buffer, the device allows {:.0} MiB (max_storage_buffer_binding_size); or use the CPU engine",
                    (batch * n_params * 4).div_ceil(max_binding as usize).max(1),
                    ctx.info.name,
                    copies,
                    n_params,
                    copies_bytes as f64 / 1048576.0,
                    max_binding as f64 / 1048576.0
                ),
            ));
        }
        for l in spec.layers() {
            if weight_grad_groups(l.out_dim, l.in_dim, 1)[0] > limits.max_compute_workgroups_per_dimension {
                return Err(Error::invalid(
                    "model.hidden",
                    l.out_dim,
                    format!("a layer of ≤ {} weights on this device", 64 * limits.max_compute_workgroups_per_dimension as usize),
                ));
            }
        }
        let (passes, acts_len, z_len) = Passes::new(spec.clone(), rows_max);
        let rw = opt.kind == OptimizerKind::Rwsam;
        let stats_row = STAT_HEAD + if rw { 2 * batch } else { 0 };
        let n_train = data.n_train();
        let n_test = data.n_test();
        let identity_len = n_train.max(n_test);
        let d = &ctx.device;
        let q = &ctx.queue;
        let f = 4u64;
        for (what, bytes) in [("activations", acts_len as u64 * f), ("training data", data.train_x.len() as u64 * f)] {
            if bytes > max_binding {
                return Err(Error::Gpu(format!("the {what} need {bytes} bytes in one buffer; {} allows {max_binding}", ctx.info.name)));
            }
        }
        let mut identity: Vec<u32> = (0..identity_len as u32).collect();
        identity.resize(identity_len + MAX_STEPS_PER_SUBMIT * batch, 0);
        let b = Buffers {
            train_x: storage_init(d, q, "train_x storage", &data.train_x),
            train_y: storage_init(d, q, "train_y storage", &data.train_y),
            test_x: storage_init(d, q, "test_x storage", &data.test_x),
            test_y: storage_init(d, q, "test_y storage", &data.test_y),
            indices: storage_init(d, q, "indices storage", &identity),
            acts: storage(d, "acts storage", acts_len as u64 * f),
            pre: storage(d, "pre storage", z_len as u64 * f),
            deltas: storage(d, "deltas storage", z_len as u64 * f),
            labels: storage(d, "labels storage", rows_max as u64 * f),
            // 1/B per row: the uniform batch weighting (RW-SAM overwrites it with p each step).
            scale: storage_init(d, q, "scale storage", &vec![1.0f32 / batch as f32; batch]),
            params: storage_init(d, q, "params storage", init),
            velocity: storage_init(d, q, "velocity storage", &vec![0.0f32; n_params]),
            grad: storage(d, "grad storage", n_params as u64 * f),
            ugrad: storage(d, "ugrad storage", copies_bytes),
            wcopies: storage(d, "wcopies storage", copies_bytes),
            norms: storage(d, "norms storage", (copies as u64 + 2) * f),
            losses: storage(d, "losses storage", rows_max.max(2 * batch) as u64 * f),
            preds: storage(d, "preds storage", rows_max.max(2 * batch) as u64 * f),
            eval_losses: storage(d, "eval_losses storage", (n_train + n_test) as u64 * f),
            eval_preds: storage(d, "eval_preds storage", (n_train + n_test) as u64 * f),
            scores: storage(d, "scores storage", batch as u64 * f),
            stats: storage(d, "stats storage", (MAX_STEPS_PER_SUBMIT * stats_row) as u64 * f),
            no_base: storage(d, "unused base_pre", 16),
        };
        let k = ctx.kernels();
        use kernels::Family as F;
        let binds = Binds {
            gather_train: bind(d, k.layout(F::Gather), "gather train", &[&b.train_x, &b.train_y, &b.indices, &b.acts, &b.labels]),
            gather_test: bind(d, k.layout(F::Gather), "gather test", &[&b.test_x, &b.test_y, &b.indices, &b.acts, &b.labels]),
            dense_params_grad: bind(d, k.layout(F::Dense), "dense params→grad", &[&b.params, &b.acts, &b.pre, &b.deltas, &b.scale, &b.grad, &b.no_base]),
            dense_params_ugrad: bind(d, k.layout(F::Dense), "dense params→ugrad", &[&b.params, &b.acts, &b.pre, &b.deltas, &b.scale, &b.ugrad, &b.no_base]),
            dense_copies_grad: bind(d, k.layout(F::Dense), "dense copies→grad", &[&b.wcopies, &b.acts, &b.pre, &b.deltas, &b.scale, &b.grad, &b.no_base]),
            loss_train: bind(d, k.layout(F::Loss), "loss train", &[&b.pre, &b.labels, &b.deltas, &b.losses, &b.preds, &b.stats]),
            loss_eval: bind(d, k.layout(F::Loss), "loss eval", &[&b.pre, &b.labels, &b.deltas, &b.eval_losses, &b.eval_preds, &b.stats]),
            reduce_grad: bind(d, k.layout(F::Reduce), "reduce grad", &[&b.grad, &b.params, &b.norms, &b.stats]),
            reduce_ugrad: bind(d, k.layout(F::Reduce), "reduce ugrad", &[&b.ugrad, &b.params, &b.norms, &b.stats]),
            optim: bind(d, k.layout(F::Optim), "optim", &[&b.params, &b.velocity, &b.grad, &b.ugrad, &b.norms, &b.wcopies]),
            rwsam: bind(d, k.layout(F::Rwsam), "rwsam", &[&b.acts, &b.deltas, &b.losses, &b.scores, &b.scale, &b.stats]),
        };
        let uniforms = Uniforms::new(&ctx, 512);
        let engine = Self {
            passes,
            opt,
            seed: cfg.seed,
            batch,
            copies,
            group,
            n_params,
            n_train,
            n_test,
            identity_len,
            stats_row,
            b,
            binds,
            uniforms,
            pending: VecDeque::new(),
            pool: Vec::new(),
            ctx,
        };
        if let Some(e) = engine.ctx.take_error() {
            return Err(Error::Gpu(e));
        }
        Ok(engine)
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The optimizer actually run: m-SAM with M = 1 is SAM (SPEC identity), as on the CPU.
    fn effective_kind(&self) -> OptimizerKind {
        match self.opt.kind {
            OptimizerKind::Msam if self.copies == 1 => OptimizerKind::Sam,
            OptimizerKind::Musam if self.copies == 1 => OptimizerKind::Usam,
            k => k,
        }
    }

    // ---- recording helpers, one per pass of Mlp ----

    fn gather(&self, r: &mut Recorder, test: bool, rows: usize, idx_off: usize) {
        let bind = if test { &self.binds.gather_test } else { &self.binds.gather_train };
        let p = Params { rows: rows as u32, in_dim: self.passes.spec.in_dim() as u32, off0: idx_off as u32, ..Default::default() };
        r.dispatch_linear(Kernel::Gather, bind, p, rows * self.passes.spec.in_dim());
    }

    fn dense_bind(&self, weights: Weights) -> (&wgpu::BindGroup, u32) {
        match weights {
            Weights::Params => (&self.binds.dense_params_grad, 0),
            Weights::Copies => (&self.binds.dense_copies_grad, self.n_params as u32),
        }
    }

    /// Forward through every layer; with `Weights::Copies` row r reads copy r / group.
    fn forward(&self, r: &mut Recorder, weights: Weights, rows: usize, group: usize) {
        let (bind, stride) = self.dense_bind(weights);
        self.passes.forward(r, bind, rows, group, stride, 0);
    }

    /// Softmax cross-entropy of the last layer: losses/preds at `out_off`.
    fn loss(&self, r: &mut Recorder, eval: bool, rows: usize, out_off: usize) {
        let bind = if eval { &self.binds.loss_eval } else { &self.binds.loss_train };
        self.passes.loss(r, bind, rows, out_off);
    }

    fn batch_stats(&self, r: &mut Recorder, loss_off: usize, stat: usize, with_correct: bool) {
        let p = Params { rows: self.batch as u32, off0: loss_off as u32, off1: stat as u32, flags: with_correct as u32, ..Default::default() };
        r.dispatch(Kernel::BatchStats, &self.binds.loss_train, p, [1, 1, 1]);
    }

    /// Deltas of every layer from the loss deltas down to layer 0.
    fn backward(&self, r: &mut Recorder, weights: Weights, rows: usize, group: usize) {
        let (bind, stride) = self.dense_bind(weights);
        self.passes.backward(r, bind, rows, group, stride, 0);
    }

    /// Weight gradients of `groups` groups of `group` rows each, scaled by `scale` (and the
    /// per-row `scale` buffer with WG_USE_SCALE), into grad (one vector) or ugrad ([groups, P]).
    fn weight_grads(&self, r: &mut Recorder, out: GradOut, groups: usize, group: usize, scale: f32, flags: u32) {
        let bind = match out {
            GradOut::Grad => &self.binds.dense_params_grad,
            GradOut::Ugrad => &self.binds.dense_params_ugrad,
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
    fn norms(&self, r: &mut Recorder, of: GradOut, groups: usize, off: usize, power: u32) {
        let bind = match of {
            GradOut::Grad => &self.binds.reduce_grad,
            GradOut::Ugrad => &self.binds.reduce_ugrad,
        };
        let mut p = Params { n: self.n_params as u32, flags: power, off0: off as u32, ..Default::default() };
        p.f[0] = self.opt.xi as f32;
        r.dispatch(Kernel::SqNormGroups, bind, p, [groups as u32, 1, 1]);
    }

    fn perturb(&self, r: &mut Recorder, copies: usize, flags: u32) {
        let mut p = Params { n: self.n_params as u32, flags, ..Default::default() };
        p.f[0] = self.opt.rho as f32;
        p.f[1] = self.opt.xi as f32;
        r.dispatch(Kernel::Perturb, &self.binds.optim, p, [self.n_params.div_ceil(64) as u32, copies as u32, 1]);
    }

    /// Fills the norm entries of a stats row: ‖g‖ from norms[grad_norm_at], ‖e‖ by `flags`.
    fn step_stats(&self, r: &mut Recorder, stat: usize, flags: u32, groups: usize, grad_norm_at: usize) {
        let mut p = Params { n: groups as u32, flags, a_off: grad_norm_at as u32, off0: self.copies as u32, off1: stat as u32, ..Default::default() };
        p.f[0] = self.opt.rho as f32;
        r.dispatch(Kernel::StepStats, &self.binds.reduce_grad, p, [1, 1, 1]);
    }

    fn update(&self, r: &mut Recorder, lr: f64) {
        let mut p = Params { n: self.n_params as u32, ..Default::default() };
        p.f[0] = lr as f32;
        p.f[1] = self.opt.momentum as f32;
        p.f[2] = self.opt.weight_decay as f32;
        r.dispatch_linear(Kernel::Update, &self.binds.optim, p, self.n_params);
    }

    /// ∇f over the whole training set into ugrad (n-SAM), in chunks, each weighted 1/n.
    fn full_gradient(&self, r: &mut Recorder) {
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

    /// One optimizer step (SPEC.md's table), statistics into row `k` of the stats buffer.
    fn record_step(&self, r: &mut Recorder, k: usize, plan: &StepPlan) {
        let b = self.batch;
        let stat = k * self.stats_row;
        let idx = self.identity_len + k * b;
        let kind = self.effective_kind();
        let rw = &self.opt.rwsam;
        if kind == OptimizerKind::Nsam {
            self.full_gradient(r);
        }
        self.gather(r, false, b, idx);
        let fd = kind == OptimizerKind::Rwsam && rw.estimator == NormEstimator::FiniteDifference;
        if fd {
            // f_i(w + δz) first: the clean pass below must leave its activations for backward.
            let mut p = Params { n: self.n_params as u32, key: rng::probe_key(self.seed, plan.step), ..Default::default() };
            p.f[0] = rw.delta as f32;
            r.dispatch_linear(Kernel::FdPoint, &self.binds.optim, p, self.n_params);
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
                if copies == 1 {
                    // Σ_i (1/B)·∇f_i like RW-SAM's Σ_i p_i·∇f_i, so that RW-SAM with λ = 0
                    // (p_i = 1/B exactly) is SAM bit for bit, as on the CPU.
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
            OptimizerKind::Nsam => {
                self.norms(r, GradOut::Ugrad, 1, 0, 0);
                self.perturb(r, 1, PERTURB_NORMALIZED);
                (SS_NORMALIZED << 1, 1)
            }
            OptimizerKind::Rwsam => {
                self.backward(r, Weights::Params, b, b);
                let mut gibbs = Params { rows: b as u32, off1: stat as u32, ..Default::default() };
                if fd {
                    let mut p = Params { rows: b as u32, off0: b as u32, ..Default::default() };
                    p.f[0] = rw.delta as f32;
                    r.dispatch_linear(Kernel::FdScores, &self.binds.rwsam, p, b);
                } else {
                    for l in 0..self.passes.spec.n_layers() {
                        let p = Params { flags: (l > 0) as u32, ..self.passes.layer(l, b) };
                        r.dispatch_linear(Kernel::SampleSqNorms, &self.binds.rwsam, p, b);
                    }
                    gibbs.flags |= GIBBS_SQRT;
                }
                if rw.normalize {
                    gibbs.flags |= GIBBS_NORMALIZE;
                }
                gibbs.f[0] = rw.lambda as f32;
                if let Some(ratio) = rw.target_ess {
                    gibbs.flags |= GIBBS_TARGET_ESS;
                    gibbs.f[1] = (ratio * b as f64) as f32;
                }
                r.dispatch(Kernel::Gibbs, &self.binds.rwsam, gibbs, [1, 1, 1]);
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

    fn record_eval(&self, r: &mut Recorder) {
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

    fn take_staging(&mut self, size: u64) -> wgpu::Buffer {
        if let Some(i) = self.pool.iter().position(|b| b.size() >= size) {
            return self.pool.swap_remove(i);
        }
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback staging"),
            size: size.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Submits the recorded work and starts mapping the staging buffer of `readback` if any.
    fn submit_recorded(&mut self, rec: Recorder, readback: Option<(PendingKind, wgpu::Buffer, u64)>) {
        encode_and_submit(&self.ctx, &mut self.uniforms, rec);
        if let Some((kind, staging, size)) = readback {
            let state = Arc::new(AtomicU8::new(0));
            let flag = state.clone();
            staging.slice(..size).map_async(wgpu::MapMode::Read, move |res| {
                flag.store(if res.is_ok() { 1 } else { 2 }, Ordering::Release);
            });
            self.pending.push_back(Pending { kind, staging, size, state });
        }
    }

    fn parse_step(&self, row: &[f32]) -> StepReport {
        // A negative grad norm is the kernels' "not computed" (see step_stats in reduce.wgsl).
        let finite = |v: f32| if v < 0.0 { None } else { Some(v as f64) };
        let b = self.batch;
        StepReport {
            loss: row[STAT_LOSS] as f64,
            correct: row[STAT_CORRECT] as usize,
            grad_norm: finite(row[STAT_GRAD_NORM]),
            perturbation_norm: row[STAT_PERT_NORM] as f64,
            perturbed_loss: row[STAT_PERT_LOSS] as f64,
            rwsam: (self.opt.kind == OptimizerKind::Rwsam).then(|| RwReport {
                scores: row[STAT_HEAD..STAT_HEAD + b].iter().map(|&v| v as f64).collect(),
                weights: row[STAT_HEAD + b..STAT_HEAD + 2 * b].iter().map(|&v| v as f64).collect(),
                lambda: row[STAT_LAMBDA] as f64,
                ess: row[STAT_ESS] as f64,
            }),
        }
    }

    fn responses(&self, kind: PendingKind, data: &[u8]) -> Vec<Response> {
        match kind {
            PendingKind::Steps(steps) => {
                let floats: &[f32] = bytemuck::cast_slice(data);
                steps
                    .iter()
                    .enumerate()
                    .map(|(k, &step)| Response::Step { step, report: self.parse_step(&floats[k * self.stats_row..(k + 1) * self.stats_row]) })
                    .collect()
            }
            PendingKind::Eval(step) => {
                let n = self.n_train + self.n_test;
                let losses: &[f32] = bytemuck::cast_slice(&data[..n * 4]);
                let preds: &[u32] = bytemuck::cast_slice(&data[n * 4..n * 8]);
                let split = |a: usize, b: usize| Evaluation { losses: losses[a..b].iter().map(|&v| v as f64).collect(), predictions: preds[a..b].to_vec() };
                vec![Response::Evaluated { step, train: split(0, self.n_train), test: split(self.n_train, n) }]
            }
            PendingKind::Params(tag) => {
                vec![Response::Params { tag, params: bytemuck::cast_slice::<u8, f32>(data)[..self.n_params].to_vec() }]
            }
        }
    }

    fn check_error(&self) -> Result<()> {
        match self.ctx.take_error() {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    /// Blocking read of a whole buffer, for the kernel tests (native only).
    #[cfg(not(target_arch = "wasm32"))]
    #[doc(hidden)]
    pub fn debug_read(&mut self, name: &str) -> Result<Vec<f32>> {
        let b = &self.b;
        let buf = match name {
            "acts" => &b.acts,
            "pre" => &b.pre,
            "deltas" => &b.deltas,
            "params" => &b.params,
            "velocity" => &b.velocity,
            "grad" => &b.grad,
            "ugrad" => &b.ugrad,
            "wcopies" => &b.wcopies,
            "norms" => &b.norms,
            "losses" => &b.losses,
            "scores" => &b.scores,
            "scale" => &b.scale,
            other => return Err(Error::Data(format!("no GPU buffer named {other}"))),
        }
        .clone();
        let out = read_blocking(&self.ctx, &buf, buf.size())?;
        self.check_error()?;
        Ok(bytemuck::cast_slice::<u8, f32>(&out).to_vec())
    }

    /// Records and runs one step without reading anything back (kernel tests inspect buffers).
    #[doc(hidden)]
    pub fn debug_step(&mut self, plan: &StepPlan) {
        let mut rec = Recorder::default();
        self.write_step_indices(std::slice::from_ref(plan));
        self.record_step(&mut rec, 0, plan);
        self.submit_recorded(rec, None);
    }

    /// Compute dispatches recorded for one training step (the GPU's launch count per step).
    pub fn dispatches_per_step(&self) -> usize {
        let mut rec = Recorder::default();
        let plan = StepPlan { step: 0, indices: vec![0; self.batch], lr: 0.0 };
        self.record_step(&mut rec, 0, &plan);
        rec.ops.iter().filter(|op| matches!(op, Op::Dispatch { .. })).count()
    }

    fn write_step_indices(&self, plans: &[StepPlan]) {
        let mut idx: Vec<u32> = Vec::with_capacity(plans.len() * self.batch);
        for p in plans {
            idx.extend_from_slice(&p.indices);
        }
        self.ctx.queue.write_buffer(&self.b.indices, (self.identity_len * 4) as u64, bytemuck::cast_slice(&idx));
    }

    fn submit_steps(&mut self, plans: &[StepPlan]) -> Result<()> {
        for p in plans {
            if p.indices.len() != self.batch || p.indices.iter().any(|&i| i as usize >= self.n_train) {
                return Err(Error::Data(format!("step {}: a batch of {} indices below {} is expected", p.step, self.batch, self.n_train)));
            }
        }
        for chunk in plans.chunks(MAX_STEPS_PER_SUBMIT) {
            self.write_step_indices(chunk);
            let mut rec = Recorder::default();
            for (k, plan) in chunk.iter().enumerate() {
                self.record_step(&mut rec, k, plan);
            }
            let size = (chunk.len() * self.stats_row * 4) as u64;
            let staging = self.take_staging(size);
            rec.copy(&self.b.stats, 0, &staging, 0, size);
            let steps = chunk.iter().map(|p| p.step).collect();
            self.submit_recorded(rec, Some((PendingKind::Steps(steps), staging, size)));
        }
        Ok(())
    }
}

/// The per-dispatch uniform buffer (256-byte slots) and its bind group; grows on demand.
struct Uniforms {
    buffer: wgpu::Buffer,
    bind: wgpu::BindGroup,
    slots: u64,
}

impl Uniforms {
    fn new(ctx: &GpuContext, slots: u64) -> Self {
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params uniform"),
            size: slots * SLOT,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("params uniform bind group"),
            layout: &ctx.kernels().uniform_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                }),
            }],
        });
        Self { buffer, bind, slots }
    }
}

/// Writes the uniforms, encodes every op (consecutive dispatches share one compute pass) and
/// submits. Never waits.
fn encode_and_submit(ctx: &GpuContext, uniforms: &mut Uniforms, rec: Recorder) {
    let needed = rec.slots.len() as u64;
    if needed > uniforms.slots {
        *uniforms = Uniforms::new(ctx, needed.next_power_of_two());
    }
    let mut bytes = vec![0u8; (needed * SLOT) as usize];
    for (i, p) in rec.slots.iter().enumerate() {
        let at = i * SLOT as usize;
        bytes[at..at + std::mem::size_of::<Params>()].copy_from_slice(bytemuck::bytes_of(p));
    }
    if !bytes.is_empty() {
        ctx.queue.write_buffer(&uniforms.buffer, 0, &bytes);
    }
    let kernels = ctx.kernels();
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("samlab work") });
    let mut i = 0;
    while i < rec.ops.len() {
        if let Op::Copy { src, src_offset, dst, dst_offset, size } = &rec.ops[i] {
            encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
            i += 1;
            continue;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("samlab compute"), timestamp_writes: None });
        while let Some(Op::Dispatch { kernel, bind, slot, groups }) = rec.ops.get(i) {
            pass.set_pipeline(kernels.pipeline(*kernel));
            pass.set_bind_group(0, bind, &[]);
            pass.set_bind_group(1, &uniforms.bind, &[(*slot as u64 * SLOT) as u32]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            i += 1;
        }
    }
    ctx.queue.submit([encoder.finish()]);
}

/// Copies `size` bytes of `buf` to a staging buffer and waits for them (native CLI and tests).
#[cfg(not(target_arch = "wasm32"))]
fn read_blocking(ctx: &GpuContext, buf: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("blocking readback staging"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("blocking read") });
    encoder.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
    ctx.queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..size).map_async(wgpu::MapMode::Read, move |r| {
        tx.send(r).ok();
    });
    ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
    rx.recv().map_err(|e| Error::Gpu(e.to_string()))?.map_err(|e| Error::Gpu(format!("readback: {e}")))?;
    let out = staging.slice(..size).get_mapped_range().map_err(|e| Error::Gpu(e.to_string()))?.to_vec();
    staging.unmap();
    Ok(out)
}

impl Engine for GpuEngine {
    fn describe(&self) -> String {
        format!("GPU: {}", self.ctx.describe())
    }

    fn submit(&mut self, request: Request) -> Result<()> {
        self.check_error()?;
        match request {
            Request::Steps(plans) => self.submit_steps(&plans)?,
            Request::Evaluate { step } => {
                let mut rec = Recorder::default();
                self.record_eval(&mut rec);
                let n = (self.n_train + self.n_test) as u64 * 4;
                let staging = self.take_staging(2 * n);
                rec.copy(&self.b.eval_losses, 0, &staging, 0, n);
                rec.copy(&self.b.eval_preds, 0, &staging, n, n);
                self.submit_recorded(rec, Some((PendingKind::Eval(step), staging, 2 * n)));
            }
            Request::ReadParams { tag } => {
                let size = self.n_params as u64 * 4;
                let staging = self.take_staging(size);
                let mut rec = Recorder::default();
                rec.copy(&self.b.params, 0, &staging, 0, size);
                self.submit_recorded(rec, Some((PendingKind::Params(tag), staging, size)));
            }
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<Response>> {
        // Never waits: on the web this is a no-op and the browser fires the map callbacks.
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        self.check_error()?;
        let mut out = Vec::new();
        while let Some(front) = self.pending.front() {
            match front.state.load(Ordering::Acquire) {
                0 => break,
                1 => {
                    let p = self.pending.pop_front().expect("front exists");
                    let data = p.staging.slice(..p.size).get_mapped_range().map_err(|e| Error::Gpu(format!("readback: {e}")))?.to_vec();
                    p.staging.unmap();
                    self.pool.push(p.staging);
                    out.extend(self.responses(p.kind, &data));
                }
                _ => {
                    self.pending.pop_front();
                    return Err(Error::Gpu("mapping a readback buffer failed (device lost?)".into()));
                }
            }
        }
        Ok(out)
    }

    fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.n_params {
            return Err(Error::Data(format!("{} parameters given, the model has {}", params.len(), self.n_params)));
        }
        self.ctx.queue.write_buffer(&self.b.params, 0, bytemuck::cast_slice(params));
        self.ctx.queue.write_buffer(&self.b.velocity, 0, bytemuck::cast_slice(&vec![0.0f32; self.n_params]));
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<Response>> {
        let mut out = Vec::new();
        while !self.pending.is_empty() {
            #[cfg(not(target_arch = "wasm32"))]
            self.ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
            let got = self.poll()?;
            #[cfg(target_arch = "wasm32")]
            if got.is_empty() {
                break; // the browser resolves mappings between frames; callers poll again
            }
            out.extend(got);
        }
        Ok(out)
    }
}
