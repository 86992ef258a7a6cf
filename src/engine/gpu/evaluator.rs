//! Loss landscapes on the GPU: many weight vectors evaluated on the evaluation set in one pass.
//! A chunk of K points is uploaded as K weight copies; the evaluation set is replicated K times
//! in the activation buffer once (layer 0 never changes), row r reads copy r / n_eval, and one
//! `group_stats` workgroup per copy reduces its mean loss and accuracy. Same kernels as training.
//! Blocking (each `evaluate` waits for its chunk): for the CLI, bench and tests. Chunks are sized
//! by memory and by time: a pass takes at most the command line's submit budget (budget.rs).

use super::GpuContext;
use super::budget::{CLI_SUBMIT_BUDGET, SubmitBudget};
use super::kernels::{Family, Kernel, Params};
use super::readback::read_blocking;
use super::record::{Passes, Recorder, Uniforms, bind, encode_and_submit, storage, storage_init};
use crate::error::{Error, Result};
use crate::metrics::landscape::{LossAcc, LossEvaluator};
use crate::model::MlpSpec;

pub struct GpuEvaluator {
    ctx: GpuContext,
    passes: Passes,
    n_eval: usize,
    chunk: usize,
    wcopies: wgpu::Buffer,
    stats: wgpu::Buffer,
    dense: wgpu::BindGroup,
    loss: wgpu::BindGroup,
    uniforms: Uniforms,
    budget: SubmitBudget,
}

/// Bytes of activations one chunk may take (well inside WebGPU's 128 MiB binding limit).
const ACT_BUDGET: usize = 96 << 20;

impl GpuEvaluator {
    pub fn new(ctx: GpuContext, spec: MlpSpec, x: &[f32], y: &[u32], max_points: usize) -> Result<Self> {
        let n_eval = y.len();
        if n_eval == 0 || x.len() != n_eval * spec.in_dim() {
            return Err(Error::Data(format!("evaluation set: {} values for {n_eval} samples of {} features", x.len(), spec.in_dim())));
        }
        let widths: usize = spec.sizes.iter().sum();
        let limits = ctx.device.limits();
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) as usize;
        let n_params = spec.n_params();
        let chunk = (ACT_BUDGET.min(max_binding) / (4 * n_eval * widths))
            .min(max_binding / (4 * n_params))
            .min(max_points.max(1))
            .min(limits.max_compute_workgroups_per_dimension as usize);
        if chunk == 0 {
            return Err(Error::Gpu(format!("one landscape point on {n_eval} samples needs more than {} MiB of activations", ACT_BUDGET >> 20)));
        }
        let rows = chunk * n_eval;
        let (passes, acts_len, z) = Passes::new(spec.clone(), rows);
        let (d, q) = (&ctx.device, &ctx.queue);
        let replicated: Vec<u32> = (0..rows).map(|r| (r % n_eval) as u32).collect();
        let data_x = storage_init(d, q, "eval x", x);
        let data_y = storage_init(d, q, "eval y", y);
        let indices = storage_init(d, q, "eval indices", &replicated);
        let acts = storage(d, "eval acts", acts_len as u64 * 4);
        let pre = storage(d, "eval pre", z as u64 * 4);
        let deltas = storage(d, "eval deltas", z as u64 * 4);
        let labels = storage(d, "eval labels", rows as u64 * 4);
        let losses = storage(d, "eval losses", rows as u64 * 4);
        let preds = storage(d, "eval preds", rows as u64 * 4);
        let wcopies = storage(d, "landscape points", (chunk * n_params) as u64 * 4);
        let stats = storage(d, "landscape stats", (2 * chunk) as u64 * 4);
        let (unused_scale, unused_grads, unused_base) = (storage(d, "unused scale", 16), storage(d, "unused grads", 16), storage(d, "unused base_pre", 16));
        let k = ctx.kernels();
        let gather = bind(d, k.layout(Family::Gather), "eval gather", &[&data_x, &data_y, &indices, &acts, &labels]);
        let dense = bind(d, k.layout(Family::Dense), "eval dense", &[&wcopies, &acts, &pre, &deltas, &unused_scale, &unused_grads, &unused_base]);
        let loss = bind(d, k.layout(Family::Loss), "eval loss", &[&pre, &labels, &deltas, &losses, &preds, &stats]);
        let mut uniforms = Uniforms::new(&ctx, 16);
        // Layer 0 of every copy's rows: the evaluation set, replicated once.
        let mut rec = Recorder::default();
        let p = Params { rows: rows as u32, in_dim: spec.in_dim() as u32, ..Default::default() };
        rec.dispatch_linear(Kernel::Gather, &gather, p, rows * spec.in_dim());
        encode_and_submit(&ctx, &mut uniforms, rec);
        if let Some(e) = ctx.take_error() {
            return Err(Error::Gpu(e));
        }
        let budget = SubmitBudget::new(CLI_SUBMIT_BUDGET, chunk);
        Ok(Self { ctx, passes, n_eval, chunk, wcopies, stats, dense, loss, uniforms, budget })
    }
}

impl LossEvaluator for GpuEvaluator {
    fn n_params(&self) -> usize {
        self.passes.spec.n_params()
    }

    fn points_per_call(&self) -> usize {
        self.chunk
    }

    fn evaluate(&mut self, points: &[Vec<f32>]) -> Result<Vec<LossAcc>> {
        let n = self.n_params();
        let mut out = Vec::with_capacity(points.len());
        let mut rest = points;
        while !rest.is_empty() {
            let (block, tail) = rest.split_at(self.budget.units().min(rest.len()));
            rest = tail;
            let started = web_time::Instant::now();
            let mut flat = Vec::with_capacity(block.len() * n);
            for (k, p) in block.iter().enumerate() {
                if p.len() != n {
                    return Err(Error::Data(format!("landscape point {k} has {} parameters, the model has {n}", p.len())));
                }
                flat.extend_from_slice(p);
            }
            self.ctx.queue.write_buffer(&self.wcopies, 0, bytemuck::cast_slice(&flat));
            let rows = block.len() * self.n_eval;
            let mut rec = Recorder::default();
            // Row r of the chunk reads point r / n_eval.
            self.passes.forward(&mut rec, &self.dense, rows, self.n_eval, n as u32, 0);
            self.passes.loss(&mut rec, &self.loss, rows, 0);
            let p = Params { group: self.n_eval as u32, n: block.len() as u32, ..Default::default() };
            rec.dispatch(Kernel::GroupStats, &self.loss, p, [block.len(), 1]);
            encode_and_submit(&self.ctx, &mut self.uniforms, rec);
            let bytes = read_blocking(&self.ctx, &self.stats, (2 * block.len() * 4) as u64)?;
            self.budget.record(started.elapsed(), block.len());
            if let Some(e) = self.ctx.take_error() {
                return Err(Error::Gpu(e));
            }
            let v: &[f32] = bytemuck::cast_slice(&bytes);
            out.extend(v.chunks(2).map(|c| LossAcc { loss: c[0] as f64, accuracy: c[1] as f64 / self.n_eval as f64 }));
        }
        Ok(out)
    }
}

impl GpuEvaluator {
    /// Points the next pass will hold (within the submit budget) and the measured ms per point.
    pub fn points_per_pass(&self) -> (usize, Option<f64>) {
        (self.budget.units(), self.budget.ms_per_unit())
    }
}
