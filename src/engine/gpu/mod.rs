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
//! The parts: `context` (the device), `kernels` (shaders, layouts, pipelines), `record` (the
//! recording toolkit), `program` (what one step and the evaluation record), `readback`
//! (staging buffers and parsing); this file builds the buffers and bind groups and implements
//! `Engine`.
//!
//! Architecture invariant: the only module that touches wgpu.

pub mod budget;
pub mod context;
#[cfg(not(target_arch = "wasm32"))]
pub mod evaluator;
pub mod kernels;
#[cfg(not(target_arch = "wasm32"))]
pub mod objective;
pub mod program;
mod readback;
pub mod record;

pub use context::GpuContext;
pub use program::{STAT_CORRECT, STAT_ESS, STAT_GRAD_NORM, STAT_HEAD, STAT_LAMBDA, STAT_LOSS, STAT_PERT_LOSS, STAT_PERT_NORM};

use super::{Engine, Request, Response, StepPlan};
use crate::config::{OptimizerKind, RunConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::setup::spec_for;
use budget::SubmitBudget;
use program::{Bind, EVAL_CHUNK, StepProgram};
#[cfg(not(target_arch = "wasm32"))]
use readback::read_blocking;
use readback::{Layout, PendingKind, Readback};
use record::{Recorder, Uniforms, bind, encode_and_submit, storage, storage_init};
use std::sync::Arc;

/// Most steps recorded into one submit.
pub const MAX_STEPS_PER_SUBMIT: usize = 64;

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

/// One wgpu bind group per `program::Bind`.
struct Binds {
    gather_train: wgpu::BindGroup,
    gather_test: wgpu::BindGroup,
    dense_params_grad: wgpu::BindGroup,
    dense_params_ugrad: wgpu::BindGroup,
    dense_copies_grad: wgpu::BindGroup,
    loss_train: wgpu::BindGroup,
    loss_eval: wgpu::BindGroup,
    reduce_grad: wgpu::BindGroup,
    reduce_ugrad: wgpu::BindGroup,
    optim: wgpu::BindGroup,
    rwsam: wgpu::BindGroup,
}

impl Binds {
    fn get(&self, b: Bind) -> &wgpu::BindGroup {
        match b {
            Bind::GatherTrain => &self.gather_train,
            Bind::GatherTest => &self.gather_test,
            Bind::DenseParamsGrad => &self.dense_params_grad,
            Bind::DenseParamsUgrad => &self.dense_params_ugrad,
            Bind::DenseCopiesGrad => &self.dense_copies_grad,
            Bind::LossTrain => &self.loss_train,
            Bind::LossEval => &self.loss_eval,
            Bind::ReduceGrad => &self.reduce_grad,
            Bind::ReduceUgrad => &self.reduce_ugrad,
            Bind::Optim => &self.optim,
            Bind::Rwsam => &self.rwsam,
        }
    }
}

pub struct GpuEngine {
    ctx: GpuContext,
    program: StepProgram,
    b: Buffers,
    binds: Binds,
    uniforms: Uniforms,
    readback: Readback,
    /// Steps per submit, sized by measured device time (budget.rs).
    budget: SubmitBudget,
}

impl GpuEngine {
    /// Opens its own device (CLI, tests). Natively only: blocks while the device opens.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<Self> {
        Self::new(GpuContext::request_blocking()?, cfg, data, init)
    }

    pub fn new(ctx: GpuContext, cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<Self> {
        let scope = ctx.clone();
        let engine = scope.scoped(|| Self::build(ctx, cfg, data, init))?;
        // Errors of the scopes just popped (a shared device's).
        engine.check_error()?;
        Ok(engine)
    }

    fn build(ctx: GpuContext, cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<Self> {
        let spec = spec_for(cfg, &data);
        let n_params = spec.n_params();
        if init.len() != n_params {
            return Err(Error::Data(format!("initial weights have {} values, the model needs {n_params}", init.len())));
        }
        let opt = cfg.optimizer.clone();
        let batch = cfg.batch;
        let copies = if opt.kind.uses_m() { batch / opt.m } else { 1 };
        let rows_max = batch.max(EVAL_CHUNK);
        let limits = ctx.device.limits();
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let copies_bytes = (copies * n_params * 4) as u64;
        program::check_model_fits(&spec, n_params, max_binding)?;
        program::check_weight_copies(batch, if opt.kind.uses_m() { opt.m } else { batch }, n_params, max_binding)?;
        let n_train = data.n_train();
        let n_test = data.n_test();
        let (program, acts_len, z_len) = StepProgram::new(cfg, spec, n_train, n_test);
        program.dry_run().map_err(Error::Gpu)?;
        let (stats_row, identity_len) = (program.stats_row, program.identity_len);
        let d = &ctx.device;
        let q = &ctx.queue;
        let f = 4u64;
        for (what, bytes) in [("activations", acts_len as u64 * f), ("training data", data.train_x.len() as u64 * f)] {
            // Offsets into these are u32 in the shaders, whatever the device would bind.
            if bytes > max_binding.min(4 << 32) {
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
            scale: storage_init(d, q, "scale storage", &vec![program.uniform_weight; batch]),
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
        let readback = Readback::new(Layout { batch, stats_row, rwsam: opt.kind == OptimizerKind::Rwsam, n_train, n_test, n_params });
        let budget = SubmitBudget::new(budget::CLI_SUBMIT_BUDGET, MAX_STEPS_PER_SUBMIT);
        let engine = Self { program, b, binds, uniforms, readback, ctx, budget };
        if let Some(e) = engine.ctx.take_error() {
            return Err(Error::Gpu(e));
        }
        Ok(engine)
    }

    /// The program's named bind groups replaced by this engine's.
    fn resolve(&self, rec: Recorder<Bind>) -> Recorder {
        rec.resolve(|&b| self.binds.get(b).clone())
    }

    /// Submits the recorded work and starts mapping the staging buffer of `readback` if any.
    fn submit_recorded(&mut self, rec: Recorder, readback: Option<(PendingKind, wgpu::Buffer, u64)>) {
        encode_and_submit(&self.ctx, &mut self.uniforms, rec);
        if let Some((kind, staging, size)) = readback {
            self.readback.start(kind, staging, size);
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

    /// Replaces the host's 1/B, the uniform row weight, e.g. by a value one ULP off, as a GPU
    /// whose division rounds differently would compute it (tests of the RW-SAM λ = 0 identity).
    #[doc(hidden)]
    pub fn debug_set_uniform_weight(&mut self, w: f32) {
        self.program.uniform_weight = w;
        self.ctx.queue.write_buffer(&self.b.scale, 0, bytemuck::cast_slice(&vec![w; self.program.batch]));
    }

    /// The device time one submit may take (watchdogs reset devices beyond a few seconds): the
    /// app sets `budget::APP_SUBMIT_BUDGET`, the default is `budget::CLI_SUBMIT_BUDGET`.
    pub fn set_submit_budget(&mut self, budget: std::time::Duration) {
        self.budget.set_budget(budget);
    }

    /// Steps the next submit will hold (from the measured device time per step), and that time.
    pub fn steps_per_submit(&self) -> (usize, Option<f64>) {
        (self.budget.units(), self.budget.ms_per_unit())
    }

    /// Compute dispatches recorded for one training step (the GPU's launch count per step).
    pub fn dispatches_per_step(&self) -> usize {
        self.program.dispatches_per_step()
    }

    fn write_step_indices(&self, plans: &[StepPlan]) {
        let mut idx: Vec<u32> = Vec::with_capacity(plans.len() * self.program.batch);
        for p in plans {
            idx.extend_from_slice(&p.indices);
        }
        self.ctx.queue.write_buffer(&self.b.indices, (self.program.identity_len * 4) as u64, bytemuck::cast_slice(&idx));
    }

    /// Records and submits one request (inside the context's error scopes).
    fn record_and_submit(&mut self, request: Request) -> Result<()> {
        match request {
            Request::Steps(plans) => self.submit_steps(&plans)?,
            Request::Evaluate { step } => {
                let mut rec = Recorder::default();
                self.program.record_eval(&mut rec);
                let mut rec = self.resolve(rec);
                let n = (self.program.n_train + self.program.n_test) as u64 * 4;
                let staging = self.readback.take_staging(&self.ctx.device, 2 * n);
                rec.copy(&self.b.eval_losses, 0, &staging, 0, n);
                rec.copy(&self.b.eval_preds, 0, &staging, n, n);
                self.submit_recorded(rec, Some((PendingKind::Eval(step), staging, 2 * n)));
            }
            Request::ReadParams { tag } => {
                let size = self.program.n_params as u64 * 4;
                let staging = self.readback.take_staging(&self.ctx.device, size);
                let mut rec = Recorder::default();
                rec.copy(&self.b.params, 0, &staging, 0, size);
                self.submit_recorded(rec, Some((PendingKind::Params(tag), staging, size)));
            }
        }
        Ok(())
    }

    fn submit_steps(&mut self, plans: &[StepPlan]) -> Result<()> {
        let (batch, n_train) = (self.program.batch, self.program.n_train);
        for p in plans {
            if p.indices.len() != batch || p.indices.iter().any(|&i| i as usize >= n_train) {
                return Err(Error::Data(format!("step {}: a batch of {batch} indices below {n_train} is expected", p.step)));
            }
        }
        let mut rest = plans;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(self.budget.units().min(rest.len()));
            rest = tail;
            self.write_step_indices(chunk);
            let mut rec = Recorder::default();
            for (k, plan) in chunk.iter().enumerate() {
                self.program.record_step(&mut rec, k, plan);
            }
            let mut rec = self.resolve(rec);
            let size = (chunk.len() * self.program.stats_row * 4) as u64;
            let staging = self.readback.take_staging(&self.ctx.device, size);
            rec.copy(&self.b.stats, 0, &staging, 0, size);
            let steps = chunk.iter().map(|p| p.step).collect();
            self.submit_recorded(rec, Some((PendingKind::Steps(steps), staging, size)));
            self.budget.track(&self.ctx.queue, chunk.len());
        }
        Ok(())
    }
}

impl Engine for GpuEngine {
    fn describe(&self) -> String {
        format!("GPU: {}", self.ctx.describe())
    }

    fn submit(&mut self, request: Request) -> Result<()> {
        self.check_error()?;
        let scope = self.ctx.clone();
        scope.scoped(|| self.record_and_submit(request))
    }

    fn poll(&mut self) -> Result<Vec<Response>> {
        // Never waits: on the web this is a no-op and the browser fires the map callbacks.
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        self.check_error()?;
        let scope = self.ctx.clone();
        scope.scoped(|| self.readback.poll())
    }

    fn submit_sizing(&self) -> Option<(usize, Option<f64>)> {
        Some(self.steps_per_submit())
    }

    fn in_flight(&self) -> usize {
        self.readback.in_flight()
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        let n_params = self.program.n_params;
        if params.len() != n_params {
            return Err(Error::Data(format!("{} parameters given, the model has {n_params}", params.len())));
        }
        self.ctx.scoped(|| {
            self.ctx.queue.write_buffer(&self.b.params, 0, bytemuck::cast_slice(params));
            self.ctx.queue.write_buffer(&self.b.velocity, 0, bytemuck::cast_slice(&vec![0.0f32; n_params]));
        });
        Ok(())
    }

    /// The step program writes its uniforms when it records a step, so the steps submitted
    /// already (recorded, maybe still running) keep their settings; the next submit uses these.
    fn set_hyperparameters(&mut self, opt: &crate::config::OptimizerConfig) -> Result<()> {
        crate::hyper::check_structure(&self.program.opt, opt)?;
        self.program.opt = opt.clone();
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<Response>> {
        let mut out = Vec::new();
        while !self.readback.is_empty() {
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
