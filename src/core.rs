//! SAM lab's numeric core: datasets, models, the CPU reference engine and the WGSL engine,
//! optimizers, metrics and the training run, none of which knows of egui. The `samlab` crate
//! re-exports every module under the same path (`samlab::engine`, …) and adds the app, its UI,
//! the command line and the experiments.

pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod formats;
pub mod hyper;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod resumable;
pub mod rng;
pub mod run;
pub mod setup;

#[cfg(feature = "clap")]
mod clap_values;

pub use config::RunConfig;
pub use error::{Error, Result};
