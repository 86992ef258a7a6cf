//! What a run starts from: its dataset, the network its config asks for on that dataset, and its
//! initial weights. The CLI, the lab, the experiments and the engines all start here, so the same
//! config and seed give the same data, split, label noise and initial weights everywhere.

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::error::Result;
use crate::model::MlpSpec;
use std::sync::Arc;

/// The architecture a config asks for on this dataset.
pub fn spec_for(cfg: &RunConfig, data: &Dataset) -> MlpSpec {
    MlpSpec::new(data.n_features, &cfg.model.hidden, data.n_classes, cfg.model.activation)
}

/// Loads the data and the initial weights of a config (shared by every run of one seed).
pub fn prepare(cfg: &RunConfig) -> Result<(Arc<Dataset>, Arc<Vec<f32>>)> {
    let data = Dataset::load_split(&cfg.dataset, cfg.data_split_seed(), cfg.seed)?;
    let init = spec_for(cfg, &data).init(cfg.seed);
    Ok((Arc::new(data), Arc::new(init)))
}
