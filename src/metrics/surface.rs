//! The decision surface of a 2D classifier: class probabilities on a grid over the data range,
//! the background image of the app's data view.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::mlp::softmax_xent;
use crate::model::{Mlp, Real, Tape};
use serde::{Deserialize, Serialize};

/// Softmax probabilities on a `width`×`height` grid of input points (row 0 at y_range[0], the
/// bottom; column 0 at x_range[0]), in the model's input coordinates (centred features).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DecisionSurface {
    pub width: usize,
    pub height: usize,
    pub x_range: [f64; 2],
    pub y_range: [f64; 2],
    pub n_classes: usize,
    /// (height, width, n_classes) row-major.
    pub probs: Vec<f32>,
    /// The arg-max class per grid point, (height, width).
    pub predicted: Vec<u32>,
    /// Its probability, (height, width).
    pub confidence: Vec<f32>,
}

impl DecisionSurface {
    /// The input point of grid cell (column i, row j).
    pub fn point(&self, i: usize, j: usize) -> [f64; 2] {
        let at = |r: [f64; 2], k: usize, n: usize| if n <= 1 { r[0] } else { r[0] + (r[1] - r[0]) * k as f64 / (n - 1) as f64 };
        [at(self.x_range, i, self.width), at(self.y_range, j, self.height)]
    }
}

/// The bounding box of a 2D dataset's train and test inputs, widened by `margin` of its size on
/// every side.
pub fn data_bounds(data: &Dataset, margin: f64) -> Result<([f64; 2], [f64; 2])> {
    if data.n_features != 2 {
        return Err(Error::Data(format!("decision surface: the dataset has {} features, a surface needs 2", data.n_features)));
    }
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for row in data.train_x.chunks_exact(2).chain(data.test_x.chunks_exact(2)) {
        for k in 0..2 {
            lo[k] = lo[k].min(row[k] as f64);
            hi[k] = hi[k].max(row[k] as f64);
        }
    }
    if !(lo[0].is_finite() && hi[0].is_finite() && lo[1].is_finite() && hi[1].is_finite()) {
        return Err(Error::Data("decision surface: the dataset has no finite samples".into()));
    }
    let pad = |k: usize| margin * (hi[k] - lo[k]).max(1e-6);
    Ok(([lo[0] - pad(0), hi[0] + pad(0)], [lo[1] - pad(1), hi[1] + pad(1)]))
}

/// Class probabilities of the MLP on a `width`×`height` grid over (x_range, y_range).
pub fn decision_surface<T: Real>(mlp: &mut Mlp<T>, params: &[T], x_range: [f64; 2], y_range: [f64; 2], width: usize, height: usize) -> Result<DecisionSurface> {
    if mlp.spec.in_dim() != 2 {
        return Err(Error::Data(format!("decision surface: the model takes {} inputs, a surface needs 2", mlp.spec.in_dim())));
    }
    if params.len() != mlp.spec.n_params() {
        return Err(Error::Data(format!("decision surface: {} parameters given, the model has {}", params.len(), mlp.spec.n_params())));
    }
    if !(1..=4096).contains(&width) || !(1..=4096).contains(&height) {
        return Err(Error::invalid("surface size", format!("{width}×{height}"), "1 to 4096 points per side"));
    }
    let classes = mlp.spec.out_dim();
    let mut s = DecisionSurface { width, height, x_range, y_range, n_classes: classes, ..Default::default() };
    let mut tape = Tape::default();
    for j in 0..height {
        // One row of the grid per forward pass.
        let x: Vec<T> = (0..width).flat_map(|i| s.point(i, j).map(T::of)).collect();
        mlp.forward(params, &x, width, &mut tape, None);
        let out = softmax_xent(tape.logits(), &vec![0; width], classes);
        for (i, &pred) in out.predictions.iter().enumerate() {
            // dlogits of label 0 is p − e₀: add e₀ back for the probabilities.
            let p = &out.dlogits[i * classes..(i + 1) * classes];
            let probs: Vec<f32> = p.iter().enumerate().map(|(c, &v)| (v.f64() + if c == 0 { 1.0 } else { 0.0 }) as f32).collect();
            s.confidence.push(probs[pred as usize]);
            s.predicted.push(pred);
            s.probs.extend(probs);
        }
    }
    Ok(s)
}
