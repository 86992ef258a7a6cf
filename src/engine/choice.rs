//! The one place engines are made, and the one statement of the "auto" policy. The CLI, the lab
//! and the experiments (in the app and on the command line) all ask an `EngineChoice`:
//! - `cpu`: the CPU engine;
//! - `gpu`: the GPU engine whenever a device with compute exists (software ones included);
//! - `auto`: the GPU engine on a hardware GPU, the CPU engine otherwise (a software rasteriser
//!   such as lavapipe or SwiftShader is slower than the CPU engine).
//!
//! Two temperaments: the app's choice is *forgiving* (a run the GPU refuses, e.g. beyond a device
//! limit, trains on the CPU and says why; a GPU that failed at run time is not used again), the
//! command line's is *strict* (`--backend gpu` gives the GPU engine or an error).

use super::Engine;
use super::cpu::CpuEngine;
use super::gpu::{GpuContext, GpuEngine};
use crate::config::{Backend, RunConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct EngineChoice {
    gpu: Option<GpuContext>,
    /// Why there is no GPU, when there is none.
    no_gpu: String,
    /// Strict choices only: the error that opening a GPU gave.
    open_error: Option<Error>,
    /// Set when the GPU engine failed at run time (a shader the browser rejects, a lost
    /// device): every run then trains on the CPU, and the notice says why.
    failed: Option<String>,
    /// A refusal is an error instead of a CPU fallback.
    strict: bool,
    pub preference: Backend,
}

impl std::fmt::Debug for EngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EngineChoice({})", self.describe())
    }
}

/// An engine for one run, and what the user should know about it.
pub struct MadeEngine {
    pub engine: Box<dyn Engine>,
    /// Results arrive in later frames (the GPU engine).
    pub asynchronous: bool,
    /// e.g. why a run the GPU refused trains on the CPU.
    pub note: Option<String>,
}

impl EngineChoice {
    /// CPU engines only, with the reason there is no GPU.
    pub fn cpu(reason: impl Into<String>) -> Self {
        Self { no_gpu: reason.into(), ..Self::default() }
    }

    /// With a device (the renderer's: see `GpuContext::from_device`).
    pub fn with_gpu(ctx: GpuContext) -> Self {
        Self { gpu: Some(ctx), ..Self::default() }
    }

    /// The command line's choice for `preference`: opens a device unless the CPU is asked for
    /// (blocking, natively only), and is strict.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_blocking(preference: Backend) -> Self {
        let mut choice = match preference {
            Backend::Cpu => Self::cpu("CPU chosen"),
            Backend::Gpu | Backend::Auto => match GpuContext::request_blocking() {
                Ok(ctx) => Self::with_gpu(ctx),
                Err(e) => {
                    log::info!("no usable GPU ({e}); using the CPU engine");
                    Self { no_gpu: e.to_string(), open_error: Some(e), ..Self::default() }
                }
            },
        };
        choice.preference = preference;
        choice.strict = true;
        choice
    }

    /// Whether `make` gives the GPU engine now (the preference selects a GPU that has not failed).
    pub fn uses_gpu(&self) -> bool {
        self.selected_gpu().is_some()
    }

    /// The GPU context the preference selects, if any.
    fn selected_gpu(&self) -> Option<&GpuContext> {
        if self.failed.is_some() {
            return None;
        }
        let ctx = self.gpu.as_ref()?;
        match self.preference {
            Backend::Cpu => None,
            Backend::Gpu => Some(ctx),
            Backend::Auto => (!ctx.is_software()).then_some(ctx),
        }
    }

    /// Stops using the GPU for the rest of the session.
    pub fn mark_failed(&mut self, why: String) {
        let one_line: String = why.split_whitespace().collect::<Vec<_>>().join(" ");
        let short: String = one_line.chars().take(240).collect();
        self.failed.get_or_insert(short);
    }

    /// The engine for one run of `cfg` from `init`.
    pub fn make(&self, cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<MadeEngine> {
        let mut note = None;
        match self.selected_gpu() {
            Some(ctx) => match GpuEngine::new(ctx.clone(), cfg, data.clone(), init) {
                Ok(mut e) => {
                    // A frame per submit in the app; the command line's default otherwise.
                    if !self.strict {
                        e.set_submit_budget(super::gpu::budget::APP_SUBMIT_BUDGET);
                    }
                    return Ok(MadeEngine { engine: Box::new(e), asynchronous: true, note: None });
                }
                Err(e) if self.strict => return Err(e),
                Err(e) => note = Some(format!("the GPU engine refused this run ({e}); it trains on the CPU")),
            },
            None if self.strict && self.preference == Backend::Gpu => {
                return Err(self.open_error.clone().unwrap_or_else(|| Error::Gpu(self.describe())));
            }
            None => {
                if let (Some(ctx), Backend::Auto) = (&self.gpu, self.preference) {
                    log::info!("only a software GPU ({}) is available; using the CPU engine", ctx.describe());
                }
            }
        }
        Ok(MadeEngine { engine: Box::new(CpuEngine::<f32>::new(cfg, data, init)?), asynchronous: false, note })
    }

    /// Which engine trains and why, for the app's notice.
    pub fn describe(&self) -> String {
        if let Some(ctx) = self.selected_gpu() {
            return format!("GPU engine on {}", ctx.describe());
        }
        let why = match (&self.gpu, self.preference) {
            _ if self.failed.is_some() => format!("the GPU engine failed ({}): CPU fallback", self.failed.as_deref().unwrap_or_default()),
            (None, _) => self.no_gpu.clone(),
            (Some(_), Backend::Cpu) => "CPU chosen".into(),
            (Some(ctx), _) => format!("{} is a software GPU, slower than the CPU engine (choose engine: gpu to use it anyway)", ctx.describe()),
        };
        format!("CPU (f32) engine, time-sliced per frame — {why}")
    }
}

/// The engine `cfg.backend` asks for on the command line (opens a device; blocking): what
/// `EngineChoice::open_blocking(cfg.backend).make(..)` gives.
#[cfg(not(target_arch = "wasm32"))]
pub fn open_engine(cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<Box<dyn Engine>> {
    Ok(EngineChoice::open_blocking(cfg.backend).make(cfg, data, init)?.engine)
}
