//! The CPU reference model: a multilayer perceptron with softmax cross-entropy.
//!
//! Parameters live in one flat vector, layer by layer, each layer its weights `w` (out × in,
//! row-major) then its biases `b` (out). This is the layout of the GPU buffers, of the `step`
//! oracle's Rademacher probe and of every direction vector in the metrics.
//!
//! Architecture invariant: `model` knows nothing of wgpu, egui or the optimizers.

pub mod mlp;
pub mod real;

pub use mlp::{Mlp, Tape};
pub use real::Real;

use crate::rng::{Rng, Stream};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Gelu,
}

impl Activation {
    pub const ALL: [Activation; 3] = [Activation::Relu, Activation::Tanh, Activation::Gelu];

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
        }
    }

    /// The id the WGSL kernels switch on (`shaders/dense.wgsl`).
    pub fn shader_id(self) -> u32 {
        match self {
            Activation::Relu => 0,
            Activation::Tanh => 1,
            Activation::Gelu => 2,
        }
    }

    /// σ(z).
    pub fn apply<T: Real>(self, z: T) -> T {
        match self {
            Activation::Relu => z.max(T::zero()),
            Activation::Tanh => z.tanh(),
            // GELU, tanh form (what the WGSL kernel computes too):
            // 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))).
            Activation::Gelu => {
                let (c, k) = (T::of(GELU_C), T::of(0.044715));
                T::of(0.5) * z * (T::one() + (c * (z + k * z * z * z)).tanh())
            }
        }
    }

    /// σ'(z).
    pub fn derivative<T: Real>(self, z: T) -> T {
        match self {
            Activation::Relu => {
                if z > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            Activation::Tanh => {
                let t = z.tanh();
                T::one() - t * t
            }
            Activation::Gelu => {
                let (c, k) = (T::of(GELU_C), T::of(0.044715));
                let u = c * (z + k * z * z * z);
                let t = u.tanh();
                let du = c * (T::one() + T::of(3.0) * k * z * z);
                T::of(0.5) * (T::one() + t) + T::of(0.5) * z * (T::one() - t * t) * du
            }
        }
    }
}

impl Activation {
    /// out = σ(z) elementwise; the match is outside the loop so each loop vectorises.
    pub fn apply_slice<T: Real>(self, z: &[T], out: &mut [T]) {
        match self {
            // A comparison, not `max`: wasm32 has no instruction with `max`'s NaN rule, so `max`
            // is a call to libm's fmaxf per element there (a tenth of a step's time).
            Activation::Relu => out.iter_mut().zip(z).for_each(|(o, &z)| *o = if z > T::zero() { z } else { T::zero() }),
            _ => out.iter_mut().zip(z).for_each(|(o, &z)| *o = self.apply(z)),
        }
    }

    /// out = g ⊙ σ'(z), branch-free for ReLU (a data-dependent branch per element costs more
    /// than the whole GEMM around it).
    pub fn backprop_slice<T: Real>(self, g: &[T], z: &[T], out: &mut [T]) {
        match self {
            Activation::Relu => out.iter_mut().zip(g.iter().zip(z)).for_each(|(o, (&g, &z))| *o = if z > T::zero() { g } else { T::zero() }),
            _ => out.iter_mut().zip(g.iter().zip(z)).for_each(|(o, (&g, &z))| *o = g * self.derivative(z)),
        }
    }
}

/// √(2/π).
const GELU_C: f64 = 0.797_884_560_802_865_4;

/// Where one dense layer's parameters sit in the flat vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShape {
    pub in_dim: usize,
    pub out_dim: usize,
    /// Offset of `w` (out_dim × in_dim, row-major).
    pub w_offset: usize,
    /// Offset of `b` (out_dim).
    pub b_offset: usize,
}

impl LayerShape {
    pub fn n_params(&self) -> usize {
        self.out_dim * (self.in_dim + 1)
    }
}

/// The architecture: layer widths [in, hidden..., out] and the hidden activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlpSpec {
    pub sizes: Vec<usize>,
    pub activation: Activation,
    layers: Vec<LayerShape>,
}

impl MlpSpec {
    pub fn new(in_dim: usize, hidden: &[usize], out_dim: usize, activation: Activation) -> Self {
        let mut sizes = vec![in_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(out_dim);
        let mut layers = Vec::new();
        let mut offset = 0;
        for win in sizes.windows(2) {
            let (in_dim, out_dim) = (win[0], win[1]);
            layers.push(LayerShape { in_dim, out_dim, w_offset: offset, b_offset: offset + in_dim * out_dim });
            offset += out_dim * (in_dim + 1);
        }
        Self { sizes, activation, layers }
    }

    pub fn layers(&self) -> &[LayerShape] {
        &self.layers
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn in_dim(&self) -> usize {
        self.sizes[0]
    }

    pub fn out_dim(&self) -> usize {
        *self.sizes.last().expect("an MLP has an output layer")
    }

    pub fn n_params(&self) -> usize {
        self.layers.iter().map(LayerShape::n_params).sum()
    }

    /// The widest layer input or output (sizes the per-sample scratch rows).
    pub fn max_width(&self) -> usize {
        self.sizes.iter().copied().max().unwrap_or(0)
    }

    /// He-normal (ReLU, GELU) or Xavier-normal (tanh) weights from the run's seed, zero biases.
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let mut rng = Rng::stream(seed, Stream::Init);
        let mut params = vec![0.0f32; self.n_params()];
        for layer in &self.layers {
            let std = match self.activation {
                Activation::Relu | Activation::Gelu => (2.0 / layer.in_dim as f64).sqrt(),
                Activation::Tanh => (2.0 / (layer.in_dim + layer.out_dim) as f64).sqrt(),
            };
            for w in &mut params[layer.w_offset..layer.b_offset] {
                *w = (rng.normal() * std) as f32;
            }
        }
        params
    }

    /// A mask that is 1 on weights and 0 on biases (filter normalisation, diagnostics).
    pub fn is_weight(&self, index: usize) -> bool {
        self.layers.iter().any(|l| (l.w_offset..l.b_offset).contains(&index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_w_then_b_per_layer() {
        let spec = MlpSpec::new(3, &[4], 2, Activation::Relu);
        assert_eq!(spec.layers()[0], LayerShape { in_dim: 3, out_dim: 4, w_offset: 0, b_offset: 12 });
        assert_eq!(spec.layers()[1], LayerShape { in_dim: 4, out_dim: 2, w_offset: 16, b_offset: 24 });
        assert_eq!(spec.n_params(), 26);
    }

    #[test]
    fn init_is_seeded_with_zero_biases_and_he_scale() {
        let spec = MlpSpec::new(64, &[128, 128], 10, Activation::Relu);
        let a = spec.init(5);
        assert_eq!(a, spec.init(5));
        assert_ne!(a, spec.init(6));
        let l = spec.layers()[1];
        assert!(a[l.b_offset..l.b_offset + l.out_dim].iter().all(|&b| b == 0.0));
        let w = &a[l.w_offset..l.b_offset];
        let var = w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((var - 2.0 / 128.0).abs() < 0.1 * 2.0 / 128.0, "{var}");
    }

    #[test]
    fn activation_derivatives_match_central_differences() {
        for act in Activation::ALL {
            for z in [-2.3f64, -0.7, 0.31, 1.9] {
                let h = 1e-6;
                let fd = (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
                assert!((fd - act.derivative(z)).abs() < 1e-8, "{act:?} {z}");
            }
        }
    }
}
