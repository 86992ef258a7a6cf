//! Forward and backward passes of the MLP, side by side, per layer.
//!
//! Shapes: `batch` rows, row-major. For layer l with `in_dim` inputs and `out_dim` outputs:
//! `acts[l]` is (batch, in_dim), `pre[l]` is (batch, out_dim), `w` is (out_dim, in_dim).
//! `deltas[l]` is d_i = ∂f_i/∂z_i at layer l's pre-activation output, per sample and NOT divided
//! by the batch size: the batch weighting is applied only when weight gradients are formed
//! (`weight_grads`), so the same deltas serve SGD (1/B), RW-SAM (p_i) and per-sample norms.
//!
//! The low-rank path (`LowRank`) evaluates the network at per-micro-batch perturbed weights
//! W + c_j·u_j without materialising them: u_j = (1/m)·Σ_{i∈I_j} d_i a_iᵀ (docs/ALGORITHMS.md#m-sam-on-the-cpu-rank-m-perturbations).

use super::{MlpSpec, Real, real::gemm};

/// Everything the backward pass needs from the forward pass.
#[derive(Clone, Debug, Default)]
pub struct Tape<T> {
    pub batch: usize,
    /// acts[l]: the input of layer l, (batch, in_dim); acts[0] is the data.
    pub acts: Vec<Vec<T>>,
    /// pre[l]: layer l's pre-activation output z, (batch, out_dim); the last is the logits.
    pub pre: Vec<Vec<T>>,
}

impl<T: Real> Tape<T> {
    fn shape_for(&mut self, spec: &MlpSpec, batch: usize) {
        self.batch = batch;
        let n = spec.n_layers();
        self.acts.resize_with(n, Vec::new);
        self.pre.resize_with(n, Vec::new);
        for (l, layer) in spec.layers().iter().enumerate() {
            self.acts[l].resize(batch * layer.in_dim, T::zero());
            self.pre[l].resize(batch * layer.out_dim, T::zero());
        }
    }

    pub fn logits(&self) -> &[T] {
        self.pre.last().expect("an MLP has an output layer")
    }
}

/// A perturbation W_j = W + coef_j·Σ_{i∈I_j} d_i a_iᵀ (and b_j = b + coef_j·Σ_{i∈I_j} d_i) per
/// micro-batch j of `group` consecutive samples, built from an unperturbed tape and its deltas.
/// With coef_j = c_j/m this is W + c_j·u_j, u_j the micro-batch gradient.
pub struct LowRank<'a, T> {
    pub group: usize,
    pub coef: &'a [T],
    pub acts: &'a [Vec<T>],
    pub deltas: &'a [Vec<T>],
}

/// The MLP's passes, bound to an architecture. Stateless apart from scratch space.
#[derive(Clone, Debug)]
pub struct Mlp<T> {
    pub spec: MlpSpec,
    scratch: Vec<T>,
    gram: Vec<T>,
}

impl<T: Real> Mlp<T> {
    pub fn new(spec: MlpSpec) -> Self {
        Self { spec, scratch: Vec::new(), gram: Vec::new() }
    }

    /// Forward: z = a·Wᵀ + b per layer, a' = σ(z) between layers. `x` is (batch, in_dim).
    pub fn forward(&mut self, params: &[T], x: &[T], batch: usize, tape: &mut Tape<T>, lowrank: Option<&LowRank<T>>) {
        let spec = &self.spec;
        tape.shape_for(spec, batch);
        tape.acts[0].copy_from_slice(&x[..batch * spec.in_dim()]);
        let n_layers = spec.n_layers();
        for (l, layer) in spec.layers().iter().enumerate() {
            let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
            let w = &params[layer.w_offset..layer.b_offset];
            let b = &params[layer.b_offset..layer.b_offset + out_dim];
            let z = &mut tape.pre[l];
            for row in z.chunks_exact_mut(out_dim) {
                row.copy_from_slice(b);
            }
            // z (batch, out) += a (batch, in) · wᵀ (in, out)
            gemm(false, true, batch, in_dim, out_dim, T::one(), &tape.acts[l], w, T::one(), z);
            if let Some(lr) = lowrank {
                // z_j += coef_j · (a_j·Aⱼᵀ + 1) · D_j : the perturbation's rank-m action on micro-batch j.
                let m = lr.group;
                self.gram.resize(m * m, T::zero());
                for (j, &coef) in lr.coef.iter().enumerate() {
                    let rows = j * m..(j + 1) * m;
                    let a_j = &tape.acts[l][rows.start * in_dim..rows.end * in_dim];
                    let a0_j = &lr.acts[l][rows.start * in_dim..rows.end * in_dim];
                    let d0_j = &lr.deltas[l][rows.start * out_dim..rows.end * out_dim];
                    // gram (m, m) = a_j (m, in) · a0_jᵀ (in, m)
                    gemm(false, true, m, in_dim, m, T::one(), a_j, a0_j, T::zero(), &mut self.gram);
                    for g in self.gram.iter_mut() {
                        *g += T::one();
                    }
                    let z_j = &mut tape.pre[l][rows.start * out_dim..rows.end * out_dim];
                    gemm(false, false, m, m, out_dim, coef, &self.gram, d0_j, T::one(), z_j);
                }
            }
            if l + 1 < n_layers {
                spec.activation.apply_slice(&tape.pre[l], &mut tape.acts[l + 1]);
            }
        }
    }

    /// Backward of the forward above: deltas[l] = ∂f_i/∂z at layer l for every sample, from
    /// `dlogits` = ∂f_i/∂logits (per sample, unscaled). Weight gradients are `weight_grads`.
    pub fn backprop(&mut self, params: &[T], tape: &Tape<T>, dlogits: &[T], deltas: &mut Vec<Vec<T>>, lowrank: Option<&LowRank<T>>) {
        let spec = &self.spec;
        let batch = tape.batch;
        let n_layers = spec.n_layers();
        deltas.resize_with(n_layers, Vec::new);
        deltas[n_layers - 1].clear();
        deltas[n_layers - 1].extend_from_slice(&dlogits[..batch * spec.out_dim()]);
        for l in (1..n_layers).rev() {
            let layer = spec.layers()[l];
            let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
            let w = &params[layer.w_offset..layer.b_offset];
            // forward: z_l = a_l·Wᵀ + b            backward: ∂a_l = d_l·W   (batch, in)
            self.scratch.resize(batch * in_dim, T::zero());
            gemm(false, false, batch, out_dim, in_dim, T::one(), &deltas[l], w, T::zero(), &mut self.scratch);
            if let Some(lr) = lowrank {
                // (W + coef·Σ d_i a_iᵀ)ᵀ g = Wᵀg + coef·Σ_i a_i (d_iᵀg)
                let m = lr.group;
                self.gram.resize(m * m, T::zero());
                for (j, &coef) in lr.coef.iter().enumerate() {
                    let rows = j * m..(j + 1) * m;
                    let g_j = &deltas[l][rows.start * out_dim..rows.end * out_dim];
                    let d0_j = &lr.deltas[l][rows.start * out_dim..rows.end * out_dim];
                    let a0_j = &lr.acts[l][rows.start * in_dim..rows.end * in_dim];
                    gemm(false, true, m, out_dim, m, T::one(), g_j, d0_j, T::zero(), &mut self.gram);
                    let da_j = &mut self.scratch[rows.start * in_dim..rows.end * in_dim];
                    gemm(false, false, m, m, in_dim, coef, &self.gram, a0_j, T::one(), da_j);
                }
            }
            // forward: a_l = σ(z_{l-1})            backward: d_{l-1} = ∂a_l ⊙ σ'(z_{l-1})
            let below = &mut deltas[l - 1];
            below.resize(batch * in_dim, T::zero());
            spec.activation.backprop_slice(&self.scratch, &tape.pre[l - 1], below);
        }
    }

    /// grad = Σ_i scale_i·∇_w f_i: per layer dW = Σ_i scale_i d_i a_iᵀ, db = Σ_i scale_i d_i.
    /// SGD uses scale_i = 1/B; RW-SAM uses the Gibbs weights p_i.
    pub fn weight_grads(&mut self, tape: &Tape<T>, deltas: &[Vec<T>], scale: &[T], grad: &mut [T]) {
        let batch = tape.batch;
        for (l, layer) in self.spec.layers().iter().enumerate() {
            let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
            // scaled deltas (batch, out)
            self.scratch.resize(batch * out_dim, T::zero());
            for ((dst, row), &s) in self.scratch.chunks_exact_mut(out_dim).zip(deltas[l].chunks_exact(out_dim)).zip(scale.iter()) {
                dst.iter_mut().zip(row).for_each(|(d, &v)| *d = v * s);
            }
            // dW (out, in) = Dsᵀ (out, batch) · A (batch, in)
            let (dw, db) = grad[layer.w_offset..layer.b_offset + out_dim].split_at_mut(in_dim * out_dim);
            gemm(true, false, out_dim, batch, in_dim, T::one(), &self.scratch, &tape.acts[l], T::zero(), dw);
            db.fill(T::zero());
            for row in self.scratch.chunks_exact(out_dim) {
                for (b, &d) in db.iter_mut().zip(row) {
                    *b += d;
                }
            }
        }
    }

    /// ‖∇f_i‖² for every sample without materialising per-sample gradients:
    /// Σ_layers ‖d_i‖²·(‖a_i‖² + 1) (the weight part is an outer product, the +1 the bias).
    pub fn per_sample_sq_norms(&self, tape: &Tape<T>, deltas: &[Vec<T>]) -> Vec<T> {
        let mut out = vec![T::zero(); tape.batch];
        for (l, layer) in self.spec.layers().iter().enumerate() {
            let a_rows = tape.acts[l].chunks_exact(layer.in_dim);
            let d_rows = deltas[l].chunks_exact(layer.out_dim);
            for ((o, a), d) in out.iter_mut().zip(a_rows).zip(d_rows) {
                let aa: T = a.iter().map(|&v| v * v).sum();
                let dd: T = d.iter().map(|&v| v * v).sum();
                *o += dd * (aa + T::one());
            }
        }
        out
    }

    /// ‖u_j‖² for micro-batches of `group` consecutive samples, u_j = (1/m)·Σ_{i∈I_j} ∇f_i, from
    /// m×m Gram matrices: Σ_layers Σ_{i,i'} (d_i·d_i')(a_i·a_i' + 1) / m².
    pub fn group_sq_norms(&mut self, tape: &Tape<T>, deltas: &[Vec<T>], group: usize) -> Vec<T> {
        let m = group;
        let n_groups = tape.batch / m;
        let mut out = vec![T::zero(); n_groups];
        let mut dd = vec![T::zero(); m * m];
        self.gram.resize(m * m, T::zero());
        for (l, layer) in self.spec.layers().iter().enumerate() {
            let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
            for (j, o) in out.iter_mut().enumerate() {
                let a_j = &tape.acts[l][j * m * in_dim..(j + 1) * m * in_dim];
                let d_j = &deltas[l][j * m * out_dim..(j + 1) * m * out_dim];
                gemm(false, true, m, in_dim, m, T::one(), a_j, a_j, T::zero(), &mut self.gram);
                gemm(false, true, m, out_dim, m, T::one(), d_j, d_j, T::zero(), &mut dd);
                let s: T = self.gram.iter().zip(dd.iter()).map(|(&g, &d)| (g + T::one()) * d).sum();
                *o += s;
            }
        }
        let inv = T::one() / T::of((m * m) as f64);
        out.iter_mut().for_each(|o| *o *= inv);
        out
    }

    /// Mean loss, its gradient and the tape at `params` on (x, y): the plain reference that tests
    /// and metrics build on.
    pub fn loss_and_grad(&mut self, params: &[T], x: &[T], y: &[u32], tape: &mut Tape<T>, deltas: &mut Vec<Vec<T>>) -> (T, Vec<T>) {
        let batch = y.len();
        self.forward(params, x, batch, tape, None);
        let out = softmax_xent(tape.logits(), y, self.spec.out_dim());
        self.backprop(params, tape, &out.dlogits, deltas, None);
        let scale = vec![T::one() / T::of(batch as f64); batch];
        let mut grad = vec![T::zero(); params.len()];
        self.weight_grads(tape, deltas, &scale, &mut grad);
        (out.mean_loss(), grad)
    }

    /// Per-sample losses and predicted classes at `params`, in chunks (no gradients).
    pub fn evaluate(&mut self, params: &[T], x: &[T], y: &[u32]) -> Evaluation {
        const CHUNK: usize = 512;
        let in_dim = self.spec.in_dim();
        let mut eval = Evaluation::default();
        let mut tape = Tape::default();
        for (xs, ys) in x.chunks(CHUNK * in_dim).zip(y.chunks(CHUNK)) {
            self.forward(params, xs, ys.len(), &mut tape, None);
            let out = softmax_xent(tape.logits(), ys, self.spec.out_dim());
            eval.losses.extend(out.losses.iter().map(|l| l.f64()));
            eval.predictions.extend(out.predictions);
        }
        eval
    }
}

/// Per-sample results of an evaluation pass.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    pub losses: Vec<f64>,
    pub predictions: Vec<u32>,
}

impl Evaluation {
    pub fn mean_loss(&self) -> f64 {
        if self.losses.is_empty() { f64::NAN } else { self.losses.iter().sum::<f64>() / self.losses.len() as f64 }
    }

    /// Share of samples whose prediction equals `labels`.
    pub fn accuracy(&self, labels: &[u32]) -> f64 {
        if labels.is_empty() {
            return f64::NAN;
        }
        let hits = self.predictions.iter().zip(labels).filter(|(p, y)| p == y).count();
        hits as f64 / labels.len() as f64
    }
}

/// Softmax cross-entropy per sample.
pub struct XentOut<T> {
    /// f_i = logsumexp(z_i) − z_i[y_i]
    pub losses: Vec<T>,
    /// ∂f_i/∂z_i = softmax(z_i) − onehot(y_i), (batch, classes), not divided by the batch size.
    pub dlogits: Vec<T>,
    pub predictions: Vec<u32>,
}

impl<T: Real> XentOut<T> {
    pub fn mean_loss(&self) -> T {
        self.losses.iter().copied().sum::<T>() / T::of(self.losses.len() as f64)
    }

    pub fn correct(&self, y: &[u32]) -> usize {
        self.predictions.iter().zip(y).filter(|(p, y)| p == y).count()
    }
}

pub fn softmax_xent<T: Real>(logits: &[T], y: &[u32], classes: usize) -> XentOut<T> {
    let batch = y.len();
    let mut out = XentOut { losses: Vec::with_capacity(batch), dlogits: vec![T::zero(); batch * classes], predictions: Vec::with_capacity(batch) };
    for (i, (z, &label)) in logits.chunks_exact(classes).zip(y).enumerate() {
        let (mut arg, mut max) = (0usize, z[0]);
        for (c, &v) in z.iter().enumerate() {
            if v > max {
                max = v;
                arg = c;
            }
        }
        let sum: T = z.iter().map(|&v| (v - max).exp()).sum();
        let lse = max + sum.ln();
        out.losses.push(lse - z[label as usize]);
        out.predictions.push(arg as u32);
        let d = &mut out.dlogits[i * classes..(i + 1) * classes];
        for (dc, &v) in d.iter_mut().zip(z) {
            *dc = (v - max).exp() / sum;
        }
        d[label as usize] -= T::one();
    }
    out
}
