//! Engines train one run: the CPU reference (`cpu`) and the WGSL engine (`gpu`).
//!
//! The interface is asynchronous by construction so that the same caller code works in the
//! browser, where nothing may wait on the GPU: `submit` records work (for the GPU: encodes and
//! submits command buffers), `poll` returns whatever has finished without blocking. The CPU
//! engine does its work inside `submit` and hands the results out at the next `poll`.
//!
//! Engines are made in one place, `choice::EngineChoice`.
//!
//! Architecture invariant: only `engine::gpu` touches wgpu; engines know nothing of egui.

pub mod choice;
pub mod cpu;
pub mod gpu;
pub mod step;

use crate::config::OptimizerConfig;
use crate::error::Result;
use crate::model::mlp::Evaluation;
pub use choice::{EngineChoice, MadeEngine};
pub use step::{RwReport, StepReport};

/// One planned step: which training samples, at which learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct StepPlan {
    /// 0-based index of the step in the run (keys the finite-difference probe).
    pub step: u64,
    pub indices: Vec<u32>,
    pub lr: f64,
}

/// Who asked for a copy of the parameters, so that the answer reaches them: engines hand the tag
/// back unchanged with the parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamsTag {
    /// The run's own measurement hook (`measure_every`), after this many steps.
    Measure(u64),
    /// A weight snapshot for the landscape's trajectory, after this many steps.
    Snapshot(u64),
    /// The lab's measurement off the UI thread, after this many steps.
    LabMeasure(u64),
    /// An experiment trial's final weights.
    TrialEnd,
    /// A landscape's centre or line end: the run's index in the lab.
    Landscape(usize),
    /// A data view's read (decision surface, hardest samples): a running count.
    View(u64),
    /// A blocking read (native CLI and tests).
    Blocking,
    /// The lab's save of a run's weights.
    Weights,
}

/// Work for an engine.
#[derive(Clone, Debug)]
pub enum Request {
    /// Several steps, recorded together (one submit on the GPU).
    Steps(Vec<StepPlan>),
    /// Per-sample losses and predictions on the full train and test sets.
    Evaluate { step: u64 },
    /// A copy of the current parameters.
    ReadParams { tag: ParamsTag },
}

/// Finished work.
#[derive(Clone, Debug)]
pub enum Response {
    Step { step: u64, report: StepReport },
    Evaluated { step: u64, train: Evaluation, test: Evaluation },
    Params { tag: ParamsTag, params: Vec<f32> },
}

pub trait Engine {
    /// "CPU (f32)" or the adapter, e.g. "GPU: llvmpipe (Vulkan)".
    fn describe(&self) -> String;
    /// Records work; never blocks on a device.
    fn submit(&mut self, request: Request) -> Result<()>;
    /// Returns finished work without blocking.
    fn poll(&mut self) -> Result<Vec<Response>>;
    /// `poll` within the caller's share of a frame: the CPU engine works on an evaluation in
    /// progress until `until` at the latest (at least one block) instead of its own slice.
    /// Engines that work elsewhere (the GPU) only poll.
    fn poll_until(&mut self, until: web_time::Instant) -> Result<Vec<Response>> {
        let _ = until;
        self.poll()
    }
    /// Work submitted and not yet returned by `poll`.
    fn in_flight(&self) -> usize;
    /// Replaces the parameters and zeroes the momentum (reset to the initial weights).
    fn set_params(&mut self, params: &[f32]) -> Result<()>;
    /// Changes the live hyperparameters (η is the plans' own; μ, weight decay, ρ, ξ, RW-SAM's
    /// λ, δ, target ESS, normalisation and descent here) for the steps submitted from now on;
    /// steps submitted before keep the settings they were submitted with (on the GPU they are
    /// recorded already, on the CPU queued ones take theirs along). A structural change (the
    /// optimizer, m, the norm estimator: see `hyper`) is refused with a one-line error, and then
    /// nothing changes.
    fn set_hyperparameters(&mut self, opt: &OptimizerConfig) -> Result<()>;
    /// Blocks until everything submitted has finished (native CLI and tests only).
    fn finish(&mut self) -> Result<Vec<Response>>;
    /// Engines that size their submits by device time (the GPU engine): the steps the next
    /// submit holds and the measured device milliseconds per step.
    fn submit_sizing(&self) -> Option<(usize, Option<f64>)> {
        None
    }
}
