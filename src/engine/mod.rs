//! Engines train one run: the CPU reference (`cpu`) and the WGSL engine (`gpu`).
//!
//! The interface is asynchronous by construction so that the same caller code works in the
//! browser, where nothing may wait on the GPU: `submit` records work (for the GPU: encodes and
//! submits command buffers), `poll` returns whatever has finished without blocking. The CPU
//! engine does its work inside `submit` and hands the results out at the next `poll`.
//!
//! Architecture invariant: only `engine::gpu` touches wgpu; engines know nothing of egui.

pub mod cpu;
pub mod gpu;
pub mod step;

use crate::error::Result;
use crate::model::mlp::Evaluation;
pub use step::{RwReport, StepReport};

/// One planned step: which training samples, at which learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct StepPlan {
    /// 0-based index of the step in the run (keys the finite-difference probe).
    pub step: u64,
    pub indices: Vec<u32>,
    pub lr: f64,
}

/// Work for an engine.
#[derive(Clone, Debug)]
pub enum Request {
    /// Several steps, recorded together (one submit on the GPU).
    Steps(Vec<StepPlan>),
    /// Per-sample losses and predictions on the full train and test sets.
    Evaluate { step: u64 },
    /// A copy of the current parameters.
    ReadParams { tag: u64 },
}

/// Finished work.
#[derive(Clone, Debug)]
pub enum Response {
    Step { step: u64, report: StepReport },
    Evaluated { step: u64, train: Evaluation, test: Evaluation },
    Params { tag: u64, params: Vec<f32> },
}

pub trait Engine {
    /// "CPU (f32)" or the adapter, e.g. "GPU: llvmpipe (Vulkan)".
    fn describe(&self) -> String;
    /// Records work; never blocks on a device.
    fn submit(&mut self, request: Request) -> Result<()>;
    /// Returns finished work without blocking.
    fn poll(&mut self) -> Result<Vec<Response>>;
    /// Work submitted and not yet returned by `poll`.
    fn in_flight(&self) -> usize;
    /// Replaces the parameters and zeroes the momentum (reset to the initial weights).
    fn set_params(&mut self, params: &[f32]) -> Result<()>;
    /// Blocks until everything submitted has finished (native CLI and tests only).
    fn finish(&mut self) -> Result<Vec<Response>>;
}

/// Which engine a run uses, resolved from `Backend`: `auto` takes a hardware GPU when one with
/// compute exists and the CPU engine otherwise (a software rasteriser such as lavapipe is slower
/// than the CPU engine; ask for it with `gpu`). Natively only: opening a device blocks.
#[cfg(not(target_arch = "wasm32"))]
pub fn make_engine(cfg: &crate::config::RunConfig, data: std::sync::Arc<crate::data::Dataset>, init: &[f32]) -> Result<Box<dyn Engine>> {
    use crate::config::Backend;
    let cpu = |data| -> Result<Box<dyn Engine>> { Ok(Box::new(cpu::CpuEngine::<f32>::new(cfg, data, init)?)) };
    match cfg.backend {
        Backend::Cpu => cpu(data),
        Backend::Gpu => Ok(Box::new(gpu::GpuEngine::new_blocking(cfg, data, init)?)),
        Backend::Auto => match gpu::GpuContext::request_blocking() {
            Ok(ctx) if !ctx.is_software() => Ok(Box::new(gpu::GpuEngine::new(ctx, cfg, data, init)?)),
            Ok(ctx) => {
                log::info!("only a software GPU ({}) is available; using the CPU engine", ctx.describe());
                cpu(data)
            }
            Err(e) => {
                log::info!("no usable GPU ({e}); using the CPU engine");
                cpu(data)
            }
        },
    }
}
