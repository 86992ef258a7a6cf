//! The metrics' `Objective` on the GPU: losses, gradients, per-sample and micro-batch gradient
//! norms on the evaluation set with the training kernels, and Hessian-vector products as a
//! central difference of GPU gradients, (∇f(w + t·v) − ∇f(w − t·v)) / 2t with ‖t·v‖ = 1e-3
//! (docs/ALGORITHMS.md#top-hessian-eigenvalue allows it for the GPU), with every ReLU's activation pattern frozen at w
//! (DENSE_FROZEN): a displacement that crosses a kink would otherwise add a jump of order
//! 1/t that does not vanish as t → 0, and the difference would not be the R-op's Hessian.
//! Every metric of `metrics::measure` then runs unchanged on top of it. Blocking (each call
//! waits for its readback): for the CLI and tests.
//!
//! The trait has no error channel: a device error turns the results into NaN and is kept for
//! `take_error`.

use super::GpuContext;
use super::kernels::{Family, Kernel, Params, weight_grad_groups};
use super::readback::read_blocking;
use super::record::{Passes, Recorder, Uniforms, bind, encode_and_submit, storage, storage_init};
use crate::error::{Error, Result};
use crate::metrics::Objective;
use crate::model::MlpSpec;

/// dense.wgsl's DENSE_FROZEN flag.
const DENSE_FROZEN: u32 = 4;

/// Displacement ‖t·v‖ of the central difference.
pub const HVP_STEP: f64 = 1e-3;

pub struct GpuObjective {
    ctx: GpuContext,
    passes: Passes,
    n: usize,
    ugrad_copies: usize,
    indices: wgpu::Buffer,
    point: wgpu::Buffer,
    grad: wgpu::Buffer,
    norms: wgpu::Buffer,
    losses: wgpu::Buffer,
    preds: wgpu::Buffer,
    scores: wgpu::Buffer,
    pre: wgpu::Buffer,
    base_pre: wgpu::Buffer,
    gather: wgpu::BindGroup,
    dense_grad: wgpu::BindGroup,
    dense_ugrad: wgpu::BindGroup,
    loss: wgpu::BindGroup,
    reduce_ugrad: wgpu::BindGroup,
    rwsam: wgpu::BindGroup,
    uniforms: Uniforms,
    y: Vec<u32>,
    error: Option<String>,
}

/// Bytes of micro-batch gradients one pass may hold.
const UGRAD_BUDGET: usize = 64 << 20;

impl GpuObjective {
    pub fn new(ctx: GpuContext, spec: MlpSpec, x: &[f32], y: &[u32]) -> Result<Self> {
        let n = y.len();
        if n == 0 || x.len() != n * spec.in_dim() {
            return Err(Error::Data(format!("evaluation set: {} values for {n} samples of {} features", x.len(), spec.in_dim())));
        }
        if let Some(c) = y.iter().find(|&&c| c as usize >= spec.out_dim()) {
            return Err(Error::Data(format!("evaluation set: label {c}, the model has {} classes", spec.out_dim())));
        }
        let p = spec.n_params();
        let limits = ctx.device.limits();
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) as usize;
        let ugrad_copies = (UGRAD_BUDGET.min(max_binding) / (4 * p)).clamp(1, n);
        let (passes, acts_len, z) = Passes::new(spec.clone(), n);
        let (d, q) = (&ctx.device, &ctx.queue);
        let f = 4u64;
        let data_x = storage_init(d, q, "objective x", x);
        let data_y = storage_init(d, q, "objective y", y);
        let indices = storage_init(d, q, "objective indices", &(0..n as u32).collect::<Vec<u32>>());
        let acts = storage(d, "objective acts", acts_len as u64 * f);
        let pre = storage(d, "objective pre", z as u64 * f);
        let deltas = storage(d, "objective deltas", z as u64 * f);
        let labels = storage(d, "objective labels", n as u64 * f);
        let scale = storage(d, "objective scale (unused)", 16);
        let point = storage(d, "objective point", p as u64 * f);
        let grad = storage(d, "objective grad", p as u64 * f);
        let ugrad = storage(d, "objective micro-batch grads", (ugrad_copies * p) as u64 * f);
        let norms = storage(d, "objective norms", n as u64 * f);
        let losses = storage(d, "objective losses", n as u64 * f);
        let preds = storage(d, "objective preds", n as u64 * f);
        let scores = storage(d, "objective scores", n as u64 * f);
        let stats = storage(d, "objective stats (unused)", 16);
        let base_pre = storage(d, "objective base pre-activations", z as u64 * f);
        let k = ctx.kernels();
        let gather = bind(d, k.layout(Family::Gather), "objective gather", &[&data_x, &data_y, &indices, &acts, &labels]);
        let dense_grad = bind(d, k.layout(Family::Dense), "objective dense→grad", &[&point, &acts, &pre, &deltas, &scale, &grad, &base_pre]);
        let dense_ugrad = bind(d, k.layout(Family::Dense), "objective dense→ugrad", &[&point, &acts, &pre, &deltas, &scale, &ugrad, &base_pre]);
        let loss = bind(d, k.layout(Family::Loss), "objective loss", &[&pre, &labels, &deltas, &losses, &preds, &stats]);
        let reduce_ugrad = bind(d, k.layout(Family::Reduce), "objective reduce", &[&ugrad, &point, &norms, &stats]);
        let rwsam = bind(d, k.layout(Family::Rwsam), "objective per-sample norms", &[&acts, &deltas, &losses, &scores, &scale, &stats]);
        let uniforms = Uniforms::new(&ctx, 64);
        if let Some(e) = ctx.take_error() {
            return Err(Error::Gpu(e));
        }
        Ok(Self {
            ctx,
            passes,
            n,
            ugrad_copies,
            indices,
            point,
            grad,
            norms,
            losses,
            preds,
            scores,
            pre,
            base_pre,
            gather,
            dense_grad,
            dense_ugrad,
            loss,
            reduce_ugrad,
            rwsam,
            uniforms,
            y: y.to_vec(),
            error: None,
        })
    }

    /// The first device error seen by a trait call, if any.
    pub fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    /// Gather rows (indices as uploaded), forward at `point`, loss; with `backward` the deltas;
    /// with `frozen` every ReLU keeps the pattern stored in base_pre.
    fn record_pass(&self, r: &mut Recorder, rows: usize, backward: bool, frozen: bool) {
        let frozen = if frozen { DENSE_FROZEN } else { 0 };
        let in_dim = self.passes.spec.in_dim();
        let p = Params { rows: rows as u32, in_dim: in_dim as u32, ..Default::default() };
        r.dispatch_linear(Kernel::Gather, &self.gather, p, rows * in_dim);
        self.passes.forward(r, &self.dense_grad, rows, rows, 0, frozen);
        self.passes.loss(r, &self.loss, rows, 0);
        if backward {
            self.passes.backward(r, &self.dense_grad, rows, rows, 0, frozen);
        }
    }

    fn upload(&self, w: &[f64]) {
        let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        self.ctx.queue.write_buffer(&self.point, 0, bytemuck::cast_slice(&w32));
    }

    fn run(&mut self, r: Recorder) {
        encode_and_submit(&self.ctx, &mut self.uniforms, r);
    }

    fn read(&mut self, buf: &wgpu::Buffer, floats: usize) -> Vec<f64> {
        let got = read_blocking(&self.ctx, buf, (floats * 4) as u64);
        let err = self.ctx.take_error();
        match (got, err) {
            (Ok(bytes), None) => bytemuck::cast_slice::<u8, f32>(&bytes).iter().map(|&v| v as f64).collect(),
            (Err(e), _) => self.fail(e.to_string(), floats),
            (_, Some(e)) => self.fail(e, floats),
        }
    }

    fn read_u32(&mut self, buf: &wgpu::Buffer, n: usize) -> Vec<u32> {
        match read_blocking(&self.ctx, buf, (n * 4) as u64) {
            Ok(bytes) => bytemuck::cast_slice::<u8, u32>(&bytes).to_vec(),
            Err(e) => {
                self.error.get_or_insert(e.to_string());
                vec![u32::MAX; n]
            }
        }
    }

    fn fail(&mut self, e: String, floats: usize) -> Vec<f64> {
        self.error.get_or_insert(e);
        vec![f64::NAN; floats]
    }

    fn reset_indices(&self) {
        self.ctx.queue.write_buffer(&self.indices, 0, bytemuck::cast_slice(&(0..self.n as u32).collect::<Vec<u32>>()));
    }

    /// ∇f(w), all samples in one pass (`frozen`: ReLU patterns of base_pre).
    fn gradient(&mut self, w: &[f64], frozen: bool) -> Vec<f64> {
        self.upload(w);
        let mut r = Recorder::default();
        self.record_pass(&mut r, self.n, true, frozen);
        for l in 0..self.passes.spec.n_layers() {
            let mut p = self.passes.layer(l, self.n);
            p.f[0] = 1.0 / self.n as f32;
            let s = self.passes.spec.layers()[l];
            r.dispatch(Kernel::WeightGrad, &self.dense_grad, p, weight_grad_groups(s.out_dim, s.in_dim, 1));
        }
        self.run(r);
        self.read(&self.grad.clone(), self.passes.spec.n_params())
    }
}

impl Objective for GpuObjective {
    fn n_params(&self) -> usize {
        self.passes.spec.n_params()
    }

    fn n_samples(&self) -> usize {
        self.n
    }

    fn sample_losses(&mut self, w: &[f64]) -> Vec<f64> {
        self.upload(w);
        let mut r = Recorder::default();
        self.record_pass(&mut r, self.n, false, false);
        self.run(r);
        self.read(&self.losses.clone(), self.n)
    }

    fn loss_grad(&mut self, w: &[f64]) -> (f64, Vec<f64>) {
        let grad = self.gradient(w, false);
        let losses = self.read(&self.losses.clone(), self.n);
        (losses.iter().sum::<f64>() / self.n as f64, grad)
    }

    fn sample_sq_norms(&mut self, w: &[f64]) -> Vec<f64> {
        self.upload(w);
        let mut r = Recorder::default();
        self.record_pass(&mut r, self.n, true, false);
        for l in 0..self.passes.spec.n_layers() {
            let p = Params { flags: (l > 0) as u32, ..self.passes.layer(l, self.n) };
            r.dispatch_linear(Kernel::SampleSqNorms, &self.rwsam, p, self.n);
        }
        self.run(r);
        self.read(&self.scores.clone(), self.n)
    }

    fn group_sq_norms(&mut self, w: &[f64], order: &[usize], m: usize) -> Vec<f64> {
        let m = m.max(1);
        let groups = order.len() / m;
        if groups == 0 {
            return Vec::new();
        }
        self.upload(w);
        let idx: Vec<u32> = order[..groups * m].iter().map(|&i| i as u32).collect();
        self.ctx.queue.write_buffer(&self.indices, 0, bytemuck::cast_slice(&idx));
        // All rows through forward/backward at once, then the groups' gradients in slices that
        // fit the micro-batch gradient buffer.
        let mut r = Recorder::default();
        self.record_pass(&mut r, groups * m, true, false);
        let p_len = self.passes.spec.n_params();
        let mut g0 = 0;
        while g0 < groups {
            let take = self.ugrad_copies.min(groups - g0);
            for l in 0..self.passes.spec.n_layers() {
                let s = self.passes.spec.layers()[l];
                let mut p = self.passes.layer(l, take * m);
                // Rows of group g0 + j start at (g0 + j)·m: shift the row offsets.
                p.a_off += (g0 * m * s.in_dim) as u32;
                p.z_off += (g0 * m * s.out_dim) as u32;
                p.group = m as u32;
                p.copy_stride = if take > 1 { p_len as u32 } else { 0 };
                p.f[0] = 1.0 / m as f32;
                r.dispatch(Kernel::WeightGrad, &self.dense_ugrad, p, weight_grad_groups(s.out_dim, s.in_dim, take));
            }
            let p = Params { rows: take as u32, n: p_len as u32, off0: g0 as u32, ..Default::default() };
            r.dispatch(Kernel::SqNormGroups, &self.reduce_ugrad, p, [take, 1]);
            g0 += take;
        }
        self.run(r);
        self.reset_indices();
        self.read(&self.norms.clone(), groups).iter().map(|v| v * v).collect()
    }

    fn hvp(&mut self, w: &[f64], v: &[f64]) -> Vec<f64> {
        let vn = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if vn == 0.0 {
            return vec![0.0; v.len()];
        }
        let t = HVP_STEP / vn;
        let plus: Vec<f64> = w.iter().zip(v).map(|(a, b)| a + t * b).collect();
        let minus: Vec<f64> = w.iter().zip(v).map(|(a, b)| a - t * b).collect();
        // The activation pattern at w, then both gradients with it.
        self.upload(w);
        let mut r = Recorder::default();
        self.record_pass(&mut r, self.n, false, false);
        r.copy(&self.pre, 0, &self.base_pre, 0, self.pre.size());
        self.run(r);
        let gp = self.gradient(&plus, true);
        let gm = self.gradient(&minus, true);
        gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * t)).collect()
    }

    fn accuracy(&mut self, w: &[f64]) -> Option<f64> {
        self.sample_losses(w);
        let preds = self.read_u32(&self.preds.clone(), self.n);
        Some(preds.iter().zip(&self.y).filter(|(p, y)| p == y).count() as f64 / self.n as f64)
    }
}
