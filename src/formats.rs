//! The exchange formats of the `step` and `measure` oracles, so that anyone can cross-check an
//! update with another framework:
//! - params: `{"layers":[{"w":[[…in values…] × out rows],"b":[…out…]}, …]}`
//! - batch: `{"x":[[…] × samples],"y":[…],"z":[…optional Rademacher probe, n_params…]}`
//!
//! Every mismatch is refused with a message naming what does not fit.

use crate::error::{Error, Result};
use crate::model::{Activation, MlpSpec};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LayerJson {
    pub w: Vec<Vec<f64>>,
    pub b: Vec<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ParamsJson {
    pub layers: Vec<LayerJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchJson {
    pub x: Vec<Vec<f64>>,
    pub y: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z: Option<Vec<f64>>,
}

impl ParamsJson {
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::json(what, e))
    }

    /// The architecture (hidden activation given separately) and the flat parameter vector.
    pub fn to_flat(&self, activation: Activation) -> Result<(MlpSpec, Vec<f64>)> {
        if self.layers.is_empty() {
            return Err(Error::Data("params: no layers".into()));
        }
        let mut sizes = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let out_dim = layer.w.len();
            let in_dim = layer.w.first().map_or(0, Vec::len);
            if out_dim == 0 || in_dim == 0 {
                return Err(Error::Data(format!("params: layer {l} has an empty w")));
            }
            if let Some((r, row)) = layer.w.iter().enumerate().find(|(_, row)| row.len() != in_dim) {
                return Err(Error::Data(format!("params: layer {l} w row {r} has {} values, row 0 has {in_dim}", row.len())));
            }
            if layer.b.len() != out_dim {
                return Err(Error::Data(format!("params: layer {l} has {out_dim} rows in w but {} biases", layer.b.len())));
            }
            if l == 0 {
                sizes.push(in_dim);
            } else if in_dim != sizes[l] {
                return Err(Error::Data(format!("params: layer {l} takes {in_dim} inputs but layer {} gives {}", l - 1, sizes[l])));
            }
            sizes.push(out_dim);
        }
        let spec = MlpSpec::new(sizes[0], &sizes[1..sizes.len() - 1], *sizes.last().expect("non-empty"), activation);
        let mut flat = Vec::with_capacity(spec.n_params());
        for layer in &self.layers {
            for row in &layer.w {
                flat.extend_from_slice(row);
            }
            flat.extend_from_slice(&layer.b);
        }
        if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!("params: value {i} (in layer order w then b) is not finite")));
        }
        Ok((spec, flat))
    }

    pub fn from_flat(spec: &MlpSpec, flat: &[f64]) -> Self {
        let layers = spec
            .layers()
            .iter()
            .map(|l| LayerJson {
                w: flat[l.w_offset..l.b_offset].chunks(l.in_dim).map(<[f64]>::to_vec).collect(),
                b: flat[l.b_offset..l.b_offset + l.out_dim].to_vec(),
            })
            .collect();
        Self { layers }
    }
}

/// A params file as SAM lab writes it (`samlab train --save-params`, `step`, the app's saved
/// weights): the layers, its schema and the version that wrote it (readers ignore the extra keys).
pub fn params_document(p: &ParamsJson) -> serde_json::Value {
    serde_json::json!({ "layers": p.layers, "schema": "samlab.params/1", "samlab_version": env!("CARGO_PKG_VERSION") })
}

/// A batch checked against an architecture, flattened.
#[derive(Debug, Clone)]
pub struct Batch {
    pub x: Vec<f64>,
    pub y: Vec<u32>,
    pub z: Option<Vec<f64>>,
}

impl BatchJson {
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::json(what, e))
    }

    pub fn check(&self, spec: &MlpSpec) -> Result<Batch> {
        if self.x.is_empty() {
            return Err(Error::Data("batch: x is empty (a batch needs at least one sample)".into()));
        }
        if self.x.len() != self.y.len() {
            return Err(Error::Data(format!("batch: {} rows in x but {} labels in y", self.x.len(), self.y.len())));
        }
        if let Some((i, row)) = self.x.iter().enumerate().find(|(_, r)| r.len() != spec.in_dim()) {
            return Err(Error::Data(format!("batch: x row {i} has {} features, the params' first layer takes {}", row.len(), spec.in_dim())));
        }
        if let Some((i, c)) = self.y.iter().enumerate().find(|(_, c)| **c as usize >= spec.out_dim()) {
            return Err(Error::Data(format!("batch: y[{i}] = {c}, but the params have {} classes (0..{})", spec.out_dim(), spec.out_dim())));
        }
        let x: Vec<f64> = self.x.concat();
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data("batch: x has a value that is not finite".into()));
        }
        if let Some(z) = &self.z
            && z.len() != spec.n_params()
        {
            return Err(Error::Data(format!("batch: z has {} entries, the params have {} (layer order, w then b)", z.len(), spec.n_params())));
        }
        Ok(Batch { x, y: self.y.clone(), z: self.z.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_mismatches_are_named() {
        let spec = MlpSpec::new(3, &[4], 2, Activation::Relu);
        let flat: Vec<f64> = (0..spec.n_params()).map(|i| i as f64 * 0.1).collect();
        let json = ParamsJson::from_flat(&spec, &flat);
        let (spec2, flat2) = json.to_flat(Activation::Relu).unwrap();
        assert_eq!((spec2, flat2), (spec.clone(), flat));
        let mut bad = json.clone();
        bad.layers[1].w[0].push(1.0);
        assert!(bad.to_flat(Activation::Relu).unwrap_err().to_string().contains("row 0"));
        let mut bad = json.clone();
        bad.layers[1].w.iter_mut().for_each(|r| r.truncate(3));
        assert!(bad.to_flat(Activation::Relu).unwrap_err().to_string().contains("takes 3 inputs"));
        let batch = BatchJson { x: vec![vec![0.0; 2]], y: vec![0], z: None };
        assert!(batch.check(&spec).unwrap_err().to_string().contains("takes 3"));
        let batch = BatchJson { x: vec![], y: vec![], z: None };
        assert!(batch.check(&spec).unwrap_err().to_string().contains("empty"));
        let batch = BatchJson { x: vec![vec![0.0; 3]], y: vec![5], z: None };
        assert!(batch.check(&spec).unwrap_err().to_string().contains("2 classes"));
    }
}
