//! What the metrics need from a model: f = (1/n)·Σ_i f_i on a fixed evaluation set, its
//! gradient, per-sample and micro-batch gradient norms, and Hessian-vector products.
//!
//! The metric functions are written against this trait so that a model with closed-form answers
//! (a quadratic in the tests) runs through the very same code as the MLP. Parameters cross the
//! trait in f64; `MlpObjective<T>` computes in `T` (f64 for the reference, f32 at run time).

use super::hvp::{HvpWorkspace, hvp};
use crate::error::{Error, Result};
use crate::model::mlp::softmax_xent;
use crate::model::{Mlp, MlpSpec, Real, Tape};
use crate::resumable::pause;

pub trait Objective {
    fn n_params(&self) -> usize;
    /// n, the size of the evaluation set.
    fn n_samples(&self) -> usize;
    /// f_i(w) for every sample.
    fn sample_losses(&mut self, w: &[f64]) -> Vec<f64>;
    /// f(w) and ∇f(w).
    fn loss_grad(&mut self, w: &[f64]) -> (f64, Vec<f64>);
    /// ‖∇f_i(w)‖² for every sample.
    fn sample_sq_norms(&mut self, w: &[f64]) -> Vec<f64>;
    /// ‖∇f_I(w)‖² with ∇f_I = (1/m)·Σ_{i∈I} ∇f_i for the consecutive groups I of `m` samples of
    /// `order` (distinct sample indices, such as a permutation of 0..n or a slice of one; a trailing
    /// partial group is dropped). Each group's norm depends on its own samples only.
    fn group_sq_norms(&mut self, w: &[f64], order: &[usize], m: usize) -> Vec<f64>;
    /// H(w)·v, H = ∇²f(w).
    fn hvp(&mut self, w: &[f64], v: &[f64]) -> Vec<f64>;
    /// H·v is a mean over the evaluation set: an objective may cut it into parts over
    /// consecutive samples (`hvp_piece`), which `hvp_in_pieces` runs with a pause between them.
    /// `hvp` adds up the same parts, so both give the same numbers. One part unless cut.
    fn hvp_pieces(&self) -> usize {
        1
    }
    /// Adds part `piece` of H(w)·v (of `hvp_pieces`) into `out`, which starts at zero.
    fn hvp_piece(&mut self, w: &[f64], v: &[f64], piece: usize, out: &mut [f64]) {
        debug_assert_eq!(piece, 0, "one piece unless the objective cuts H·v");
        for (o, h) in out.iter_mut().zip(self.hvp(w, v)) {
            *o += h;
        }
    }
    /// Share of samples classified correctly, for models that classify.
    fn accuracy(&mut self, _w: &[f64]) -> Option<f64> {
        None
    }
    /// tr F, the trace of the model's Fisher: mean_i E_{c∼p_i} ‖∇f_i(w; c)‖², each sample's
    /// label drawn from the model's own prediction p_i instead of the data's. For softmax
    /// cross-entropy F equals the Gauss–Newton part of H, so tr F ≈ tr H near a minimum, while
    /// tr V (the data's labels) can be far smaller where the labels are fit confidently. For
    /// models that classify: the sum over classes c of `model_fisher_term(w, c)`.
    fn model_fisher_trace(&mut self, w: &[f64]) -> Option<f64> {
        (0..self.classes()?).map(|c| self.model_fisher_term(w, c)).sum()
    }
    /// The classes of a model that classifies.
    fn classes(&self) -> Option<usize> {
        None
    }
    /// Class c's part of tr F: mean_i p_ic·‖∇f_i(w; c)‖² (one backward pass).
    fn model_fisher_term(&mut self, _w: &[f64], _class: usize) -> Option<f64> {
        None
    }

    fn loss(&mut self, w: &[f64]) -> f64 {
        let l = self.sample_losses(w);
        l.iter().sum::<f64>() / l.len() as f64
    }
}

/// H(w)·v, pausing between the objective's parts of it (`Objective::hvp_piece`): the same
/// numbers as `hvp`, spread over frames in the browser.
pub async fn hvp_in_pieces<O: Objective + ?Sized>(obj: &mut O, w: &[f64], v: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for piece in 0..obj.hvp_pieces() {
        if piece > 0 {
            pause().await;
        }
        obj.hvp_piece(w, v, piece, &mut out);
    }
    out
}

/// Samples per part of the MLP's H·v: a part is about one sixteenth of the work of a
/// 1024-sample product (a few milliseconds of a browser frame for the largest models).
pub const HVP_PIECE_SAMPLES: usize = 64;

/// The MLP with softmax cross-entropy on an evaluation set, computing in `T`.
/// Caches the forward and backward pass at the last w it saw (power iteration and Hutchinson
/// probe the same w many times).
#[derive(Clone)]
pub struct MlpObjective<T: Real> {
    mlp: Mlp<T>,
    x: Vec<T>,
    y: Vec<u32>,
    cache: Option<Cache<T>>,
    hvp_ws: HvpWorkspace<T>,
    scratch: Tape<T>,
}

#[derive(Clone)]
struct Cache<T> {
    at: Vec<f64>,
    params: Vec<T>,
    tape: Tape<T>,
    deltas: Vec<Vec<T>>,
    losses: Vec<f64>,
    correct: usize,
    /// The tape and deltas cut into parts of `HVP_PIECE_SAMPLES` rows (made by the first H·v
    /// at these weights; empty when the set is a single part).
    pieces: Vec<(Tape<T>, Vec<Vec<T>>)>,
}

impl<T: Real> MlpObjective<T> {
    /// `x` is (n, in_dim) row-major. Refuses an empty set, a feature count or a label that does
    /// not fit the architecture.
    pub fn new(spec: MlpSpec, x: Vec<T>, y: Vec<u32>) -> Result<Self> {
        if y.is_empty() {
            return Err(Error::Data("evaluation set: no samples (at least one is needed)".into()));
        }
        if x.len() != y.len() * spec.in_dim() {
            return Err(Error::Data(format!(
                "evaluation set: {} feature values for {} samples, the model takes {} features per sample",
                x.len(),
                y.len(),
                spec.in_dim()
            )));
        }
        if let Some((i, c)) = y.iter().enumerate().find(|(_, c)| **c as usize >= spec.out_dim()) {
            return Err(Error::Data(format!("evaluation set: label {i} is {c}, the model has {} classes", spec.out_dim())));
        }
        Ok(Self { mlp: Mlp::new(spec), x, y, cache: None, hvp_ws: HvpWorkspace::default(), scratch: Tape::default() })
    }

    pub fn spec(&self) -> &MlpSpec {
        &self.mlp.spec
    }

    fn conv(w: &[f64]) -> Vec<T> {
        w.iter().map(|&v| T::of(v)).collect()
    }

    /// Forward and backward at w, unless cached.
    fn ensure(&mut self, w: &[f64]) {
        if self.cache.as_ref().is_none_or(|c| c.at != w) {
            let params = Self::conv(w);
            let mut tape = Tape::default();
            let mut deltas = Vec::new();
            let n = self.y.len();
            self.mlp.forward(&params, &self.x, n, &mut tape, None);
            let out = softmax_xent(tape.logits(), &self.y, self.mlp.spec.out_dim());
            self.mlp.backprop(&params, &tape, &out.dlogits, &mut deltas, None);
            let correct = out.correct(&self.y);
            let losses = out.losses.iter().map(|l| l.f64()).collect();
            self.cache = Some(Cache { at: w.to_vec(), params, tape, deltas, losses, correct, pieces: Vec::new() });
        }
    }

    fn cached(&self) -> &Cache<T> {
        self.cache.as_ref().expect("ensure() fills the cache")
    }
}

impl<T: Real> Objective for MlpObjective<T> {
    fn n_params(&self) -> usize {
        self.mlp.spec.n_params()
    }

    fn n_samples(&self) -> usize {
        self.y.len()
    }

    fn sample_losses(&mut self, w: &[f64]) -> Vec<f64> {
        if let Some(c) = self.cache.as_ref().filter(|c| c.at == w) {
            return c.losses.clone();
        }
        let params = Self::conv(w);
        self.mlp.forward(&params, &self.x, self.y.len(), &mut self.scratch, None);
        softmax_xent(self.scratch.logits(), &self.y, self.mlp.spec.out_dim()).losses.iter().map(|l| l.f64()).collect()
    }

    fn loss_grad(&mut self, w: &[f64]) -> (f64, Vec<f64>) {
        let n = self.y.len();
        self.ensure(w);
        let c = self.cache.as_ref().expect("filled by ensure()");
        let mut grad = vec![T::zero(); c.params.len()];
        self.mlp.weight_grads(&c.tape, &c.deltas, &vec![T::one() / T::of(n as f64); n], &mut grad);
        let loss = c.losses.iter().sum::<f64>() / n as f64;
        (loss, grad.iter().map(|g| g.f64()).collect())
    }

    fn sample_sq_norms(&mut self, w: &[f64]) -> Vec<f64> {
        self.ensure(w);
        let c = self.cache.as_ref().expect("filled by ensure()");
        self.mlp.per_sample_sq_norms(&c.tape, &c.deltas).iter().map(|v| v.f64()).collect()
    }

    fn group_sq_norms(&mut self, w: &[f64], order: &[usize], m: usize) -> Vec<f64> {
        self.ensure(w);
        let c = self.cache.as_ref().expect("filled by ensure()");
        let used = order.len() / m.max(1) * m;
        if used == 0 {
            return Vec::new();
        }
        // The tape and deltas with their rows in `order`: groups are then consecutive rows.
        let permute = |rows: &[T], width: usize| -> Vec<T> {
            let mut out = Vec::with_capacity(used * width);
            for &i in &order[..used] {
                out.extend_from_slice(&rows[i * width..(i + 1) * width]);
            }
            out
        };
        let layers = self.mlp.spec.layers().to_vec();
        let acts: Vec<Vec<T>> = layers.iter().enumerate().map(|(l, s)| permute(&c.tape.acts[l], s.in_dim)).collect();
        let deltas: Vec<Vec<T>> = layers.iter().enumerate().map(|(l, s)| permute(&c.deltas[l], s.out_dim)).collect();
        // Gram matrices cost m·Σ(in + out) per sample, forming each group's gradient costs
        // n_params per sample: take the cheaper (large m favours the explicit gradients).
        let widths: usize = layers.iter().map(|l| l.in_dim + l.out_dim + 1).sum();
        if m * widths <= self.mlp.spec.n_params() {
            let tape = Tape { batch: used, acts, pre: Vec::new() };
            return self.mlp.group_sq_norms(&tape, &deltas, m).iter().map(|v| v.f64()).collect();
        }
        let scale = vec![T::one() / T::of(m as f64); m];
        let mut grad = vec![T::zero(); self.mlp.spec.n_params()];
        (0..used / m)
            .map(|j| {
                let rows = |v: &Vec<T>, width: usize| v[j * m * width..(j + 1) * m * width].to_vec();
                let group = Tape { batch: m, acts: layers.iter().zip(&acts).map(|(s, a)| rows(a, s.in_dim)).collect(), pre: Vec::new() };
                let group_deltas: Vec<Vec<T>> = layers.iter().zip(&deltas).map(|(s, d)| rows(d, s.out_dim)).collect();
                self.mlp.weight_grads(&group, &group_deltas, &scale, &mut grad);
                grad.iter().map(|g| g.f64() * g.f64()).sum::<f64>()
            })
            .collect()
    }

    fn hvp(&mut self, w: &[f64], v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; v.len()];
        for piece in 0..self.hvp_pieces() {
            self.hvp_piece(w, v, piece, &mut out);
        }
        out
    }

    fn hvp_pieces(&self) -> usize {
        self.y.len().div_ceil(HVP_PIECE_SAMPLES)
    }

    /// Part `piece`: the mean H·v of its samples, weighted by their share of the set.
    fn hvp_piece(&mut self, w: &[f64], v: &[f64], piece: usize, out: &mut [f64]) {
        self.ensure(w);
        let n = self.y.len();
        let (start, end) = (piece * HVP_PIECE_SAMPLES, ((piece + 1) * HVP_PIECE_SAMPLES).min(n));
        if start >= end {
            return;
        }
        let c = self.cache.as_mut().expect("filled by ensure()");
        if n > HVP_PIECE_SAMPLES && c.pieces.is_empty() {
            let layers = self.mlp.spec.layers();
            let rows = |m: &[T], width: usize, a: usize, b: usize| m[a * width..b * width].to_vec();
            c.pieces = (0..n.div_ceil(HVP_PIECE_SAMPLES))
                .map(|k| {
                    let (a, b) = (k * HVP_PIECE_SAMPLES, ((k + 1) * HVP_PIECE_SAMPLES).min(n));
                    let tape = Tape {
                        batch: b - a,
                        acts: layers.iter().zip(&c.tape.acts).map(|(s, m)| rows(m, s.in_dim, a, b)).collect(),
                        pre: layers.iter().zip(&c.tape.pre).map(|(s, m)| rows(m, s.out_dim, a, b)).collect(),
                    };
                    let deltas = layers.iter().zip(&c.deltas).map(|(s, m)| rows(m, s.out_dim, a, b)).collect();
                    (tape, deltas)
                })
                .collect();
        }
        let (tape, deltas) = match c.pieces.get(piece) {
            Some((t, d)) => (t, d),
            None => (&c.tape, &c.deltas),
        };
        let v = Self::conv(v);
        let mut part = vec![T::zero(); v.len()];
        hvp(&self.mlp.spec, &c.params, tape, deltas, &v, &mut self.hvp_ws, &mut part);
        let share = (end - start) as f64 / n as f64;
        for (o, h) in out.iter_mut().zip(&part) {
            *o += share * h.f64();
        }
    }

    fn accuracy(&mut self, w: &[f64]) -> Option<f64> {
        self.ensure(w);
        Some(self.cached().correct as f64 / self.y.len() as f64)
    }

    fn classes(&self) -> Option<usize> {
        Some(self.mlp.spec.out_dim())
    }

    fn model_fisher_term(&mut self, w: &[f64], class: usize) -> Option<f64> {
        let classes = self.mlp.spec.out_dim();
        if class >= classes {
            return None;
        }
        self.ensure(w);
        let c = self.cache.as_ref().expect("filled by ensure()");
        // p_i from the logits: the data's dlogits are p_i − e_{y_i}; ∂f_i(w; c)/∂logits = p_i − e_c.
        let mut p = softmax_xent(c.tape.logits(), &self.y, classes).dlogits;
        for (row, &y) in p.chunks_exact_mut(classes).zip(&self.y) {
            row[y as usize] += T::one();
        }
        let mut dlogits = p.clone();
        for row in dlogits.chunks_exact_mut(classes) {
            row[class] -= T::one();
        }
        let mut deltas = Vec::new();
        self.mlp.backprop(&c.params, &c.tape, &dlogits, &mut deltas, None);
        let sq = self.mlp.per_sample_sq_norms(&c.tape, &deltas);
        let sum: f64 = sq.iter().zip(p.chunks_exact(classes)).map(|(s, row)| row[class].f64() * s.f64()).sum();
        Some(sum / self.y.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;
    use crate::rng::{Rng, Stream};

    fn problem(hidden: &[usize]) -> (MlpSpec, Vec<f64>, Vec<f64>, Vec<u32>) {
        let spec = MlpSpec::new(3, hidden, 4, Activation::Tanh);
        let w = spec.init(5).iter().map(|&v| v as f64 * 3.0).collect();
        let mut rng = Rng::stream(11, Stream::Landscape);
        let x: Vec<f64> = (0..30 * 3).map(|_| rng.normal()).collect();
        let y: Vec<u32> = (0..30u32).map(|i| i % 4).collect();
        (spec, w, x, y)
    }

    /// H·v over 150 samples comes in three parts of 64, 64 and 22 rows: `hvp` and
    /// `hvp_in_pieces` agree bit for bit, and both equal the mean of the per-sample products (each
    /// sample's own one-sample objective) and finite differences of the gradient.
    #[test]
    fn hvp_in_parts_is_the_mean_of_the_samples_products() {
        let spec = MlpSpec::new(3, &[7, 5], 4, Activation::Tanh);
        let w: Vec<f64> = spec.init(5).iter().map(|&v| v as f64 * 3.0).collect();
        let mut rng = Rng::stream(12, Stream::Landscape);
        let n = 150;
        let x: Vec<f64> = (0..n * 3).map(|_| rng.normal()).collect();
        let y: Vec<u32> = (0..n as u32).map(|i| (i * 7) % 4).collect();
        let v: Vec<f64> = (0..w.len()).map(|_| rng.normal()).collect();
        let mut obj = MlpObjective::<f64>::new(spec.clone(), x.clone(), y.clone()).unwrap();
        assert_eq!(obj.hvp_pieces(), 3);
        let whole = obj.hvp(&w, &v);
        let paused = crate::resumable::block_on(hvp_in_pieces(&mut obj, &w, &v));
        assert_eq!(whole, paused);
        let mut mean = vec![0.0; w.len()];
        for i in 0..n {
            let mut one = MlpObjective::<f64>::new(spec.clone(), x[i * 3..(i + 1) * 3].to_vec(), vec![y[i]]).unwrap();
            mean.iter_mut().zip(one.hvp(&w, &v)).for_each(|(m, h)| *m += h / n as f64);
        }
        let eps = 1e-5;
        let at = |t: f64| w.iter().zip(&v).map(|(a, b)| a + t * b).collect::<Vec<f64>>();
        let (gp, gm) = (obj.loss_grad(&at(eps)).1, obj.loss_grad(&at(-eps)).1);
        let scale = whole.iter().fold(0.0_f64, |m, h| m.max(h.abs()));
        for k in 0..w.len() {
            assert!((whole[k] - mean[k]).abs() <= 1e-12 + 1e-10 * scale, "entry {k}: {} vs the mean {}", whole[k], mean[k]);
            let fd = (gp[k] - gm[k]) / (2.0 * eps);
            assert!((whole[k] - fd).abs() <= 1e-7 + 1e-5 * scale, "entry {k}: {} vs finite differences {fd}", whole[k]);
        }
    }

    /// tr F against its definition, one sample and one label at a time: p_ic = exp(−f_i(c)),
    /// ‖∇f_i(c)‖² from each one-sample objective's own gradient.
    #[test]
    fn the_model_fisher_trace_is_the_expected_gradient_norm_under_the_models_labels() {
        let (spec, w, x, y) = problem(&[6]);
        let got = MlpObjective::<f64>::new(spec.clone(), x.clone(), y.clone()).unwrap().model_fisher_trace(&w).unwrap();
        let mut want = 0.0;
        for i in 0..y.len() {
            for c in 0..4u32 {
                let mut one = MlpObjective::<f64>::new(spec.clone(), x[i * 3..(i + 1) * 3].to_vec(), vec![c]).unwrap();
                let (loss, g) = one.loss_grad(&w);
                want += (-loss).exp() * g.iter().map(|v| v * v).sum::<f64>();
            }
        }
        want /= y.len() as f64;
        assert!((got - want).abs() <= 1e-10 * want, "tr F {got} vs {want}");
        // The data's labels give another number (tr V + ‖∇f‖²): the two are not the same sum.
        let mut obj = MlpObjective::<f64>::new(spec, x, y).unwrap();
        let sq = obj.sample_sq_norms(&w);
        assert!((sq.iter().sum::<f64>() / sq.len() as f64 - got).abs() > 1e-3 * got);
    }

    /// Without a hidden layer the logits are linear in w, so H is exactly its Gauss–Newton part:
    /// tr F = tr H, the trace summed over the basis vectors.
    #[test]
    fn for_a_linear_model_the_model_fisher_trace_is_the_hessian_trace() {
        let (spec, w, x, y) = problem(&[]);
        let mut obj = MlpObjective::<f64>::new(spec, x, y).unwrap();
        let tr_f = obj.model_fisher_trace(&w).unwrap();
        let n = obj.n_params();
        let tr_h: f64 = (0..n)
            .map(|k| {
                let mut e = vec![0.0; n];
                e[k] = 1.0;
                obj.hvp(&w, &e)[k]
            })
            .sum();
        assert!((tr_f - tr_h).abs() <= 1e-9 * tr_h.abs(), "tr F {tr_f} vs tr H {tr_h}");
    }
}
