//! The lab's own data and trained weights as text (no files: the app reads and writes them):
//! - a run's weights in the params format of `samlab train --save-params` (read without blocking:
//!   asked for now, collected a frame later), and weights loaded into a run whose network has
//!   the same shape (the run then starts from them: reset comes back to them);
//! - a user's CSV file inside a saved lab when it is small (`data::user::EMBED_LIMIT`).

use super::Lab;
use crate::config::{DataConfig, DatasetName};
use crate::engine::ParamsTag;
use crate::error::{Error, Result};
use crate::formats::ParamsJson;
use crate::setup::spec_for;
use std::sync::Arc;

/// `"data": {"name": …, "csv": …}` for a lab file, when its CSV file is loaded and small.
pub(super) fn embedded_data(d: &DataConfig) -> Option<serde_json::Value> {
    let source = d.csv.as_ref().filter(|_| d.name == DatasetName::Csv)?;
    let text = crate::data::user::embeddable_text(source)?;
    Some(serde_json::json!({ "name": source.name, "csv": text }))
}

/// Reads the CSV file a lab file carries (`embedded_data`), so that its runs find their data.
pub(super) fn open_embedded_data(data: serde_json::Value) -> Result<()> {
    let name = data.get("name").and_then(|v| v.as_str());
    let text = data.get("csv").and_then(|v| v.as_str());
    let (Some(name), Some(text)) = (name, text) else {
        return Err(Error::Json { what: "lab settings".into(), message: "data: expected {\"name\": \"file.csv\", \"csv\": \"…the file's text…\"}".into() });
    };
    crate::data::user::register(name, text.as_bytes()).map(|_| ())
}

/// "2-64-64-2 (4482 parameters)".
fn shape(spec: &crate::model::MlpSpec) -> String {
    format!("{} ({} parameters)", spec.sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-"), spec.n_params())
}

impl Lab {
    /// Asks run i's engine for its weights; `take_weights` returns them a frame or more later.
    pub fn request_weights(&mut self, i: usize) -> Result<()> {
        let run = self.runs.get_mut(i).and_then(|r| r.run.as_mut()).ok_or_else(|| Error::Data(format!("run {} has no weights", i + 1)))?;
        run.request_params(ParamsTag::Weights)
    }

    /// Run i's weights as a params file (the format of `samlab train --save-params`), once
    /// they have arrived.
    pub fn take_weights(&mut self, i: usize) -> Option<String> {
        let r = self.runs.get_mut(i)?;
        let run = r.run.as_mut()?;
        if let Err(e) = run.collect() {
            r.error = Some(e.to_string());
            return None;
        }
        let params = run.take_params(ParamsTag::Weights)?;
        let spec = spec_for(&run.config, &run.data);
        let flat: Vec<f64> = params.iter().map(|&v| v as f64).collect();
        Some(serde_json::to_string(&crate::formats::params_document(&ParamsJson::from_flat(&spec, &flat))).expect("JSON values serialise"))
    }

    /// Loads a params file into run i: the network must have run i's shape; the run restarts
    /// from these weights (history cleared; reset returns to them). Returns what was loaded.
    pub fn load_weights(&mut self, i: usize, text: &str, what: &str) -> Result<String> {
        let r = self.runs.get_mut(i).ok_or_else(|| Error::Data(format!("there is no run {}", i + 1)))?;
        let run = r
            .run
            .as_mut()
            .ok_or_else(|| Error::Data(format!("run {} has no network to load weights into ({})", i + 1, r.error.clone().unwrap_or_default())))?;
        let want = spec_for(&run.config, &run.data);
        let (got, flat) = ParamsJson::parse(text, what)?.to_flat(want.activation)?;
        if got != want {
            return Err(Error::Data(format!("{what}: the weights are for a {} network; run {} is {}", shape(&got), i + 1, shape(&want))));
        }
        let weights: Vec<f32> = flat.iter().map(|&v| v as f32).collect();
        if let Some(k) = weights.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!("{what}: value {k} does not fit in f32")));
        }
        run.init = Arc::new(weights);
        run.reset()?;
        if let Some(m) = &mut r.measuring {
            m.restart();
        }
        r.views.clear();
        r.error = None;
        Ok(format!("loaded {} into run {}", shape(&want), i + 1))
    }
}
