//! SAM lab: train compact networks with SGD and the SAM family (SAM, USAM, n-SAM, m-SAM, ASAM,
//! RW-SAM) and measure why they differ. See ARCHITECTURE.md for the map of the code.

pub mod app;
pub mod bench;
pub mod experiments;
pub mod lab;
pub mod platform;
pub mod ui;

#[cfg(target_arch = "wasm32")]
pub mod web;

// The numeric core, a crate of its own (core/Cargo.toml) so that the browser build can optimise
// it for speed and the app around it for size; its modules keep their paths here.
pub use samlab_core::{config, data, engine, error, formats, hyper, metrics, model, optim, resumable, rng, run, setup};

pub use config::RunConfig;
pub use error::{Error, Result};

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
