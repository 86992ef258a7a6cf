//! SAM lab: train compact networks with SGD and the SAM family (SAM, USAM, n-SAM, m-SAM, ASAM,
//! RW-SAM) and measure why they differ. See ARCHITECTURE.md for the map of the code.

pub mod app;
pub mod bench;
pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod experiments;
pub mod hyper;
pub mod lab;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod platform;
pub mod resumable;
pub mod rng;
pub mod run;
pub mod setup;
pub mod ui;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use config::RunConfig;
pub use error::{Error, Result};
pub mod formats;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
