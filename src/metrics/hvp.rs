//! Exact Hessian-vector products of the MLP's mean softmax cross-entropy by the R-op
//! (Pearlmutter 1994, "forward over reverse"): for a direction v in the flat parameter layout,
//! R{x} = d/dt x(w + t·v) at t = 0 for every quantity x of the forward and backward passes, and
//! H·v = R{∇f}. Each line of the passes in `model::mlp` is quoted next to the R-line that
//! differentiates it.
//!
//! Shapes as in `model::mlp`: for layer l, `acts[l]` (batch, in_dim), `pre[l]` (batch, out_dim),
//! `deltas[l]` (batch, out_dim) per sample and NOT divided by the batch; v's layer blocks are
//! V_W (out_dim, in_dim) then V_b (out_dim).

use crate::model::real::gemm;
use crate::model::{Activation, MlpSpec, Real, Tape};

/// √(2/π), the GELU constant of `model::Activation`.
const GELU_C: f64 = 0.797_884_560_802_865_4;
const GELU_K: f64 = 0.044_715;

/// σ''(z), the second derivative of the hidden activation (ReLU: 0 everywhere, the kink has
/// measure zero and `Activation::derivative` already treats it as a step).
pub fn second_derivative<T: Real>(act: Activation, z: T) -> T {
    match act {
        Activation::Relu => T::zero(),
        // σ = tanh z, σ' = 1 − t², σ'' = −2t(1 − t²)
        Activation::Tanh => {
            let t = z.tanh();
            T::of(-2.0) * t * (T::one() - t * t)
        }
        // σ = ½z(1 + tanh u), u = c(z + kz³):
        // σ' = ½(1 + t) + ½z(1 − t²)u'
        // σ'' = (1 − t²)·(u' + ½z(u'' − 2t·u'²)),  u' = c(1 + 3kz²), u'' = 6ckz
        Activation::Gelu => {
            let (c, k) = (T::of(GELU_C), T::of(GELU_K));
            let t = (c * (z + k * z * z * z)).tanh();
            let du = c * (T::one() + T::of(3.0) * k * z * z);
            let ddu = T::of(6.0) * c * k * z;
            (T::one() - t * t) * (du + T::of(0.5) * z * (ddu - T::of(2.0) * t * du * du))
        }
    }
}

/// Scratch of the R-passes, reused across products.
#[derive(Clone, Debug, Default)]
pub struct HvpWorkspace<T> {
    /// R{a_l}, (batch, in_dim) per layer; R{a_0} = 0.
    r_acts: Vec<Vec<T>>,
    /// R{z_l}, (batch, out_dim) per layer.
    r_pre: Vec<Vec<T>>,
    /// R{d_l}, (batch, out_dim) per layer.
    r_deltas: Vec<Vec<T>>,
    /// ∂a_l = d_l·W_l, (batch, in_dim).
    da: Vec<T>,
    /// R{∂a_l}, (batch, in_dim).
    r_da: Vec<T>,
}

/// out = H·v, H the Hessian of f = (1/batch)·Σ_i f_i at `params`, given the forward tape at
/// `params` and the per-sample deltas of `Mlp::backprop` from softmax cross-entropy.
pub fn hvp<T: Real>(spec: &MlpSpec, params: &[T], tape: &Tape<T>, deltas: &[Vec<T>], v: &[T], ws: &mut HvpWorkspace<T>, out: &mut [T]) {
    let batch = tape.batch;
    let n_layers = spec.n_layers();
    let act = spec.activation;
    ws.r_acts.resize_with(n_layers, Vec::new);
    ws.r_pre.resize_with(n_layers, Vec::new);
    ws.r_deltas.resize_with(n_layers, Vec::new);

    // ---- R-forward ----
    for (l, layer) in spec.layers().iter().enumerate() {
        let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
        let w = &params[layer.w_offset..layer.b_offset];
        let vw = &v[layer.w_offset..layer.b_offset];
        let vb = &v[layer.b_offset..layer.b_offset + out_dim];
        ws.r_acts[l].resize(batch * in_dim, T::zero());
        if l == 0 {
            ws.r_acts[0].fill(T::zero()); // the data does not move with w
        }
        // forward: z = a·Wᵀ + b        R: R{z} = R{a}·Wᵀ + a·V_Wᵀ + V_b
        let rz = &mut ws.r_pre[l];
        rz.clear();
        for _ in 0..batch {
            rz.extend_from_slice(vb);
        }
        gemm(false, true, batch, in_dim, out_dim, T::one(), &tape.acts[l], vw, T::one(), rz);
        if l > 0 {
            gemm(false, true, batch, in_dim, out_dim, T::one(), &ws.r_acts[l], w, T::one(), rz);
        }
        // forward: a' = σ(z)            R: R{a'} = σ'(z) ⊙ R{z}
        if l + 1 < n_layers {
            let next: Vec<T> = tape.pre[l].iter().zip(ws.r_pre[l].iter()).map(|(&z, &r)| act.derivative(z) * r).collect();
            ws.r_acts[l + 1] = next;
        }
    }

    // ---- R of the loss ----
    // forward: d_L = softmax(z_L) − onehot(y)      R: R{d_L} = p ⊙ (R{z_L} − ⟨p, R{z_L}⟩)
    let last = n_layers - 1;
    let classes = spec.out_dim();
    let rz_last = &ws.r_pre[last];
    let rd_last = &mut ws.r_deltas[last];
    rd_last.clear();
    for (z, rz) in tape.pre[last].chunks_exact(classes).zip(rz_last.chunks_exact(classes)) {
        let max = z.iter().copied().fold(T::neg_infinity(), T::max);
        let sum: T = z.iter().map(|&zc| (zc - max).exp()).sum();
        let p_dot_rz: T = z.iter().zip(rz).map(|(&zc, &r)| (zc - max).exp() / sum * r).sum();
        rd_last.extend(z.iter().zip(rz).map(|(&zc, &r)| (zc - max).exp() / sum * (r - p_dot_rz)));
    }

    // ---- R-backward ----
    for l in (1..n_layers).rev() {
        let layer = spec.layers()[l];
        let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
        let w = &params[layer.w_offset..layer.b_offset];
        let vw = &v[layer.w_offset..layer.b_offset];
        // backward: ∂a_l = d_l·W          R: R{∂a_l} = R{d_l}·W + d_l·V_W
        ws.da.resize(batch * in_dim, T::zero());
        ws.r_da.resize(batch * in_dim, T::zero());
        gemm(false, false, batch, out_dim, in_dim, T::one(), &deltas[l], w, T::zero(), &mut ws.da);
        gemm(false, false, batch, out_dim, in_dim, T::one(), &ws.r_deltas[l], w, T::zero(), &mut ws.r_da);
        gemm(false, false, batch, out_dim, in_dim, T::one(), &deltas[l], vw, T::one(), &mut ws.r_da);
        // backward: d_{l−1} = ∂a_l ⊙ σ'(z_{l−1})
        // R: R{d_{l−1}} = R{∂a_l} ⊙ σ'(z_{l−1}) + ∂a_l ⊙ σ''(z_{l−1}) ⊙ R{z_{l−1}}
        let z_below = &tape.pre[l - 1];
        let rz_below = &ws.r_pre[l - 1];
        let below: Vec<T> = (0..batch * in_dim)
            .map(|k| {
                let z = z_below[k];
                ws.r_da[k] * act.derivative(z) + ws.da[k] * second_derivative(act, z) * rz_below[k]
            })
            .collect();
        ws.r_deltas[l - 1] = below;
    }

    // ---- R of the weight gradients ----
    // grad: dW = (1/B)·Σ_i d_i a_iᵀ, db = (1/B)·Σ_i d_i
    // R:    R{dW} = (1/B)·Σ_i (R{d_i} a_iᵀ + d_i R{a_i}ᵀ),  R{db} = (1/B)·Σ_i R{d_i}
    let inv_b = T::one() / T::of(batch as f64);
    for (l, layer) in spec.layers().iter().enumerate() {
        let (in_dim, out_dim) = (layer.in_dim, layer.out_dim);
        let (dw, db) = out[layer.w_offset..layer.b_offset + out_dim].split_at_mut(in_dim * out_dim);
        gemm(true, false, out_dim, batch, in_dim, inv_b, &ws.r_deltas[l], &tape.acts[l], T::zero(), dw);
        if l > 0 {
            gemm(true, false, out_dim, batch, in_dim, inv_b, &deltas[l], &ws.r_acts[l], T::one(), dw);
        }
        db.fill(T::zero());
        for row in ws.r_deltas[l].chunks_exact(out_dim) {
            for (b, &d) in db.iter_mut().zip(row) {
                *b += d;
            }
        }
        db.iter_mut().for_each(|b| *b *= inv_b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_derivatives_match_central_differences_of_the_first() {
        for act in [Activation::Tanh, Activation::Gelu] {
            for z in [-2.3f64, -0.7, 0.0, 0.31, 1.9] {
                let h = 1e-6;
                let fd = (act.derivative(z + h) - act.derivative(z - h)) / (2.0 * h);
                assert!((fd - second_derivative(act, z)).abs() < 1e-8, "{act:?} at {z}: {fd} vs {}", second_derivative(act, z));
            }
        }
        assert_eq!(second_derivative(Activation::Relu, 0.7f64), 0.0);
    }
}
