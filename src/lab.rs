//! The lab: up to six runs side by side on one dataset and one initialisation. Owns the shared
//! data, creates each run's engine through one factory (`EngineChoice`), steps the playing runs
//! within a per-frame time budget, and keeps the state that the app persists and shares
//! (`LabState`: every run's settings, the seed and the preset, as JSON or a versioned URL hash).
//!
//! Sharpness measurements (`measure_every`) run away from the UI: on a worker thread on the
//! desktop, and lighter (fewer samples and probes) inline in the browser.
//!
//! Architecture invariant: `lab` knows nothing of egui, files or the URL; of the platform it
//! uses only `Worker` (and `web_time::Instant`, which works natively and in the browser). The
//! UI reads the lab and sends it commands.

pub mod experiments;
pub mod landscape;
pub mod views;

use crate::config::{Backend, DataConfig, DatasetName, ModelConfig, OptimizerConfig, OptimizerKind, RunConfig, divisors};
use crate::data::Dataset;
use crate::engine::Engine;
use crate::engine::cpu::{CpuEngine, spec_for};
use crate::engine::gpu::{GpuContext, GpuEngine};
use crate::error::{Error, Result};
use crate::metrics::{EvalSet, MeasureConfig, Measurement};
use crate::platform::{BACKGROUND_WORKERS, Worker};
use crate::run::{Run, RunStatus};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use web_time::{Duration, Instant};

/// At most this many runs side by side.
pub const MAX_RUNS: usize = 6;
/// Format of `LabState` (JSON files, stored settings and the URL hash); bumped on a change of meaning.
pub const LAB_VERSION: u32 = 1;
/// Prefix of the URL hash, with the format version.
pub const HASH_PREFIX: &str = "v1:";

/// Loads the data and the initial weights of a config (shared by every run of one seed): the
/// same seed gives the same data, split, label noise and initial weights.
pub fn prepare(cfg: &RunConfig) -> Result<(Arc<Dataset>, Arc<Vec<f32>>)> {
    let data = Dataset::load(&cfg.dataset, cfg.seed)?;
    let init = spec_for(cfg, &data).init(cfg.seed);
    Ok((Arc::new(data), Arc::new(init)))
}

/// What all runs of the lab share: the data, the architecture and the seed (so the same
/// initial weights and label noise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Shared {
    pub dataset: DataConfig,
    pub model: ModelConfig,
    pub seed: u64,
    /// Which engine trains (see `EngineChoice`): cpu, gpu or auto.
    pub backend: Backend,
}

impl Default for Shared {
    fn default() -> Self {
        let c = RunConfig::default();
        Self { dataset: c.dataset, model: c.model, seed: c.seed, backend: Backend::Auto }
    }
}

/// What one run sets for itself: its optimizer, batch, length and evaluation cadence, and colour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSpec {
    pub optimizer: OptimizerConfig,
    pub batch: usize,
    pub epochs: u64,
    pub steps: Option<u64>,
    pub eval_every: u64,
    pub measure_every: u64,
    /// Index into the UI palette.
    pub color: usize,
}

impl Default for RunSpec {
    fn default() -> Self {
        let c = RunConfig::default();
        Self { optimizer: c.optimizer, batch: c.batch, epochs: c.epochs, steps: c.steps, eval_every: c.eval_every, measure_every: c.measure_every, color: 0 }
    }
}

impl RunSpec {
    pub fn config(&self, shared: &Shared) -> RunConfig {
        RunConfig {
            dataset: shared.dataset.clone(),
            model: shared.model.clone(),
            seed: shared.seed,
            optimizer: self.optimizer.clone(),
            batch: self.batch,
            epochs: self.epochs,
            steps: self.steps,
            eval_every: self.eval_every,
            measure_every: self.measure_every,
            backend: shared.backend,
            ..RunConfig::default()
        }
    }

    pub fn label(&self) -> String {
        self.optimizer.label()
    }

    fn with(kind: OptimizerKind, color: usize) -> Self {
        let mut s = RunSpec { color, ..RunSpec::default() };
        s.optimizer.kind = kind;
        s
    }
}

/// The whole lab's settings: what a URL hash, a config file and the stored session hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabState {
    pub version: u32,
    /// The preset these settings came from, if unchanged since.
    pub preset: Option<Preset>,
    pub shared: Shared,
    pub runs: Vec<RunSpec>,
}

impl Default for LabState {
    fn default() -> Self {
        Preset::DEFAULT.state()
    }
}

impl LabState {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a LabState always serialises")
    }

    /// Parses a lab file or hash payload. Runs whose settings are invalid are dropped and named in
    /// the returned notes; a file with no valid run, an unknown version or malformed JSON is an error.
    pub fn from_json(text: &str) -> Result<(Self, Vec<String>)> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::json("lab settings", e))?;
        let Some(obj) = value.as_object() else {
            return Err(Error::Json { what: "lab settings".into(), message: "expected a JSON object {…}".into() });
        };
        let version = obj.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != LAB_VERSION as u64 {
            return Err(Error::invalid("version", version, format!("{LAB_VERSION} (the format this build reads)")));
        }
        let state: LabState = serde_json::from_value(value).map_err(|e| Error::json("lab settings", e))?;
        state.checked()
    }

    /// Keeps the valid runs (at most `MAX_RUNS`), reporting what was dropped.
    pub fn checked(mut self) -> Result<(Self, Vec<String>)> {
        let mut notes = Vec::new();
        let probe = RunSpec::default().config(&self.shared);
        // The shared part is checked with a batch that fits any dataset.
        let mut shared_probe = probe.clone();
        shared_probe.batch = 1;
        shared_probe.validate().map_err(|e| Error::Data(format!("shared settings: {e}")))?;
        if self.runs.len() > MAX_RUNS {
            notes.push(format!("kept the first {MAX_RUNS} of {} runs", self.runs.len()));
            self.runs.truncate(MAX_RUNS);
        }
        let shared = self.shared.clone();
        self.runs.retain(|r| match r.config(&shared).validate() {
            Ok(()) => true,
            Err(e) => {
                notes.push(format!("ignored run {}: {e}", r.label()));
                false
            }
        });
        if self.runs.is_empty() {
            return Err(Error::Data("no valid run".into()));
        }
        Ok((self, notes))
    }

    /// "v1:" + base64url(JSON), for the URL hash (compact JSON).
    pub fn to_hash(&self) -> String {
        let json = serde_json::to_string(self).expect("a LabState always serialises");
        format!("{HASH_PREFIX}{}", base64url::encode(json.as_bytes()))
    }

    /// Reads a URL hash (with or without the leading '#'). `Ok(None)` for an empty hash.
    pub fn from_hash(hash: &str) -> Result<Option<(Self, Vec<String>)>> {
        let hash = hash.trim_start_matches('#').trim();
        if hash.is_empty() {
            return Ok(None);
        }
        let Some(payload) = hash.strip_prefix(HASH_PREFIX) else {
            let version = hash.split(':').next().unwrap_or("");
            return Err(Error::Data(format!(
                "the URL hash starts with {:?}, this build reads {HASH_PREFIX:?} (an outdated or foreign link)",
                version.chars().take(12).collect::<String>()
            )));
        };
        let bytes = base64url::decode(payload).ok_or_else(|| Error::Data("the URL hash is not valid base64url".into()))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Data("the URL hash is not UTF-8 text".into()))?;
        Self::from_json(&text).map(Some)
    }

    /// The largest batch every run may use (the training set of the shared data).
    pub fn max_batch(&self) -> usize {
        RunSpec::default().config(&self.shared).n_train().min(crate::config::MAX_BATCH)
    }

    /// Brings every run back into range after a change of the shared settings (a smaller
    /// dataset may not hold a run's batch; m must divide the batch).
    pub fn fit_runs(&mut self) {
        let max = self.max_batch().max(1);
        for r in &mut self.runs {
            r.batch = r.batch.clamp(1, max);
            fit_m(r);
        }
    }
}

/// Sets m to the largest divisor of the batch that is ≤ m (m-SAM needs m | B).
pub fn fit_m(r: &mut RunSpec) {
    if r.optimizer.m == 0 || !r.batch.is_multiple_of(r.optimizer.m) {
        let m = r.optimizer.m.max(1);
        r.optimizer.m = divisors(r.batch).into_iter().filter(|&d| d <= m).max().unwrap_or(1);
    }
}

/// One-click starting points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    MoonsSgdVsSam,
    MSharpness,
    LabelNoise,
    RwSamTemperature,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::MoonsSgdVsSam, Preset::MSharpness, Preset::LabelNoise, Preset::RwSamTemperature];
    /// What the app opens on the first time: small and fast everywhere, with a decision surface.
    pub const DEFAULT: Preset = Preset::MoonsSgdVsSam;

    pub fn title(self) -> &'static str {
        match self {
            Preset::MoonsSgdVsSam => "moons: SGD vs SAM",
            Preset::MSharpness => "m-sharpness",
            Preset::LabelNoise => "label noise: SGD vs SAM vs RW-SAM",
            Preset::RwSamTemperature => "RW-SAM temperature",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Preset::MoonsSgdVsSam => "Two moons with noisy inputs, a 2-64-64-2 MLP: SGD and SAM (ρ = 0.05) from the same weights. Watch the decision surfaces.",
            Preset::MSharpness => {
                "Digits with 40 % label noise, batch 128: m-SAM with m = 128 (= SAM), 32, 8 and 1. The paper's claim: smaller m generalises better."
            }
            Preset::LabelNoise => {
                "Digits with 40 % label noise: SGD, SAM and RW-SAM (λ = 1). Compare best test accuracy and how many noisy labels each memorises."
            }
            Preset::RwSamTemperature => {
                "Digits with 20 % label noise: RW-SAM with scale-free scores (s divided by its batch mean) and λ = 0 (= SAM), 1, 4, 16: ESS falls as λ grows."
            }
        }
    }

    pub fn state(self) -> LabState {
        let digits = |noise: f64| Shared {
            dataset: DataConfig { name: DatasetName::Digits, label_noise: noise, ..DataConfig::default() },
            model: ModelConfig::default(),
            seed: 0,
            backend: Backend::Auto,
        };
        let (shared, runs) = match self {
            Preset::MoonsSgdVsSam => {
                let shared = Shared {
                    dataset: DataConfig { name: DatasetName::Moons, samples: 600, input_noise: 0.25, ..DataConfig::default() },
                    model: ModelConfig { hidden: vec![64, 64], ..ModelConfig::default() },
                    seed: 0,
                    backend: Backend::Auto,
                };
                let runs = [OptimizerKind::Sgd, OptimizerKind::Sam]
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| {
                        let mut r = RunSpec::with(k, i);
                        r.batch = 32;
                        r.epochs = 150;
                        r.optimizer.lr = 0.05;
                        r
                    })
                    .collect();
                (shared, runs)
            }
            Preset::MSharpness => {
                let runs = [128, 32, 8, 1]
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let mut r = RunSpec::with(OptimizerKind::Msam, i);
                        r.optimizer.m = m;
                        r.batch = 128;
                        r.epochs = 60;
                        r
                    })
                    .collect();
                (digits(0.4), runs)
            }
            Preset::LabelNoise => {
                let runs = [OptimizerKind::Sgd, OptimizerKind::Sam, OptimizerKind::Rwsam]
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| RunSpec { epochs: 60, ..RunSpec::with(k, i) })
                    .collect();
                (digits(0.4), runs)
            }
            Preset::RwSamTemperature => {
                let runs = [0.0, 1.0, 4.0, 16.0]
                    .into_iter()
                    .enumerate()
                    .map(|(i, lambda)| {
                        let mut r = RunSpec { epochs: 60, ..RunSpec::with(OptimizerKind::Rwsam, i) };
                        r.optimizer.rwsam.lambda = lambda;
                        r.optimizer.rwsam.normalize = true;
                        r
                    })
                    .collect();
                (digits(0.2), runs)
            }
        };
        LabState { version: LAB_VERSION, preset: Some(self), shared, runs }
    }
}

/// Weight snapshots a run keeps for the landscape's projected trajectory: up to 64, within about
/// 16 MB per run.
fn trajectory_snapshots(n_params: usize) -> usize {
    ((16 << 20) / (4 * n_params.max(1))).clamp(4, 64)
}

/// The one place engines are made: the CPU engine, or the GPU engine on the renderer's wgpu
/// device (natively and in the browser), by the lab's `Backend` preference:
/// - `cpu`: the CPU engine;
/// - `gpu`: the GPU engine whenever a device with compute exists (software ones included);
/// - `auto`: the GPU engine on a hardware GPU, the CPU engine otherwise (a software rasteriser
///   such as lavapipe or SwiftShader is slower than the CPU engine).
///
/// A run the GPU engine refuses (a device limit) trains on the CPU, and says why.
#[derive(Clone, Default)]
pub struct EngineChoice {
    gpu: Option<GpuContext>,
    /// Why there is no GPU, when there is none.
    no_gpu: String,
    /// Set when the GPU engine failed at run time (a shader the browser rejects, a lost
    /// device): every run then trains on the CPU, and the notice says why.
    failed: Option<String>,
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
        Self { gpu: None, no_gpu: reason.into(), failed: None, preference: Backend::Auto }
    }

    /// With the renderer's device (see `GpuContext::from_device`).
    pub fn with_gpu(ctx: GpuContext) -> Self {
        Self { gpu: Some(ctx), no_gpu: String::new(), failed: None, preference: Backend::Auto }
    }

    pub fn has_gpu(&self) -> bool {
        self.gpu.is_some()
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

    pub fn make(&self, cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<MadeEngine> {
        let mut note = None;
        if let Some(ctx) = self.selected_gpu() {
            match GpuEngine::new(ctx.clone(), cfg, data.clone(), init) {
                Ok(e) => return Ok(MadeEngine { engine: Box::new(e), asynchronous: true, note: None }),
                Err(e) => note = Some(format!("the GPU engine refused this run ({e}); it trains on the CPU")),
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

/// A run in the lab: its settings, the run (when its settings could be built) and its
/// play state.
pub struct LabRun {
    pub spec: RunSpec,
    pub run: Option<Run>,
    /// Why the run could not be built.
    pub error: Option<String>,
    pub playing: bool,
    /// The engine returns results in later frames (GPU).
    pub asynchronous: bool,
    /// What the user should know about the engine of this run (e.g. a GPU refusal).
    pub note: Option<String>,
    /// Moving average of milliseconds per pump of one step, to size the next CPU slice.
    ms_per_step: f64,
    /// Steps per submission of an asynchronous engine, adapted to keep it about one frame busy.
    async_steps: u64,
    /// Frames the last asynchronous submission has been in flight.
    waited: u32,
    /// Single steps asked for while paused on an asynchronous engine: train up to this step.
    step_target: Option<u64>,
    /// The GPU engine of this run failed; the lab rebuilds it on the CPU.
    gpu_failure: Option<String>,
    /// Sharpness measurements every `measure_every` steps, off the UI thread.
    pub measuring: Option<Measuring>,
    pub views: views::RunViews,
}

impl LabRun {
    pub fn label(&self) -> String {
        self.spec.label()
    }

    pub fn completed(&self) -> u64 {
        self.run.as_ref().map_or(0, Run::completed_steps)
    }

    pub fn status(&self) -> Option<&RunStatus> {
        self.run.as_ref().map(|r| &r.status)
    }

    pub fn is_active(&self) -> bool {
        self.playing && self.run.as_ref().is_some_and(|r| !r.is_done())
    }

    fn fail(&mut self, e: Error) {
        self.error = Some(e.to_string());
        self.playing = false;
    }

    /// Collects what an asynchronous engine finished and submits the next steps once the last
    /// submission is back (never more than one in flight).
    fn pump_async(&mut self) {
        let Some(run) = &mut self.run else { return };
        if let Err(e) = run.collect() {
            self.gpu_failure = Some(e.to_string());
            return;
        }
        if self.step_target.is_some_and(|t| run.completed_steps() >= t) {
            self.step_target = None;
        }
        let k = if self.playing {
            self.async_steps
        } else if self.step_target.is_some() {
            1
        } else {
            return;
        };
        if run.is_done() {
            return;
        }
        if run.is_busy() {
            self.waited += 1;
            return;
        }
        if self.playing {
            if self.waited <= 1 {
                self.async_steps = (self.async_steps * 2).min(MAX_ASYNC_STEPS);
            } else if self.waited > 3 {
                self.async_steps = (self.async_steps / 2).max(1);
            }
        }
        self.waited = 0;
        if let Err(e) = run.pump(k) {
            self.gpu_failure = Some(e.to_string());
        }
    }
}

/// The browser's lighter measurement (it runs between frames, on the UI thread): fewer probes,
/// power iterations and m-curve groups; returns the evaluation-subset size to use (256).
pub(crate) fn lighten_for_the_browser(mcfg: &mut MeasureConfig) -> usize {
    mcfg.probes = 8;
    mcfg.power_iters = 20;
    mcfg.curve_groups = 8;
    256
}

/// Most measurements waiting for the worker per run.
const MAX_MEASURE_QUEUE: usize = 4;

/// Tags of the measurement parameter reads: the base plus the step.
const MEASURE_TAG: u64 = 1 << 50;

/// Inputs and outputs of the measurement worker: (generation, step, parameters) → (generation, result).
type MeasureJob = (u64, u64, Vec<f32>);
type MeasureDone = (u64, std::result::Result<Measurement, String>);

/// A run's measurements: every `every` steps (and once at the end) the lab reads the run's
/// weights and hands them to a worker that runs `metrics::measure` on a fixed subset of the
/// training set; results land in the run's `history.measurements` in step order.
pub struct Measuring {
    every: u64,
    next: u64,
    last_asked: Option<u64>,
    asked: Option<u64>,
    in_flight: usize,
    /// Bumped by a reset: results of older generations are dropped.
    generation: u64,
    worker: Worker<MeasureJob, MeasureDone>,
    /// Size of the evaluation subset.
    pub eval_samples: usize,
    /// The last failure, if any.
    pub error: Option<String>,
}

impl Measuring {
    /// The subset and estimator sizes: the CLI's on the desktop (1024 samples); lighter in the
    /// browser, where the measurement runs between frames (256 samples, fewer products).
    fn new(cfg: &RunConfig, data: &Dataset) -> Result<Self> {
        let spec = spec_for(cfg, data);
        let mut mcfg = MeasureConfig::for_run(cfg);
        let size = if BACKGROUND_WORKERS { crate::metrics::DEFAULT_EVAL_SIZE } else { lighten_for_the_browser(&mut mcfg) };
        let set = EvalSet::from_train(data, size, cfg.seed);
        let eval_samples = set.len();
        mcfg.curve_max = mcfg.curve_max.min(eval_samples);
        let mut objective = set.objective::<f32>(&spec)?;
        mcfg.validate()?;
        let worker = Worker::new("samlab measurements", move |(generation, step, params): MeasureJob| {
            let w: Vec<f64> = params.iter().map(|&v| v as f64).collect();
            (generation, crate::metrics::measure(&mut objective, &w, &mcfg, step).map(|r| r.measurement).map_err(|e| e.to_string()))
        });
        Ok(Self { every: cfg.measure_every.max(1), next: 0, last_asked: None, asked: None, in_flight: 0, generation: 0, worker, eval_samples, error: None })
    }

    fn restart(&mut self) {
        self.generation += 1;
        self.next = 0;
        self.last_asked = None;
        self.asked = None;
    }

    /// Collects finished measurements, forwards arrived weights, asks for the next weights.
    fn advance(&mut self, run: &mut Run) {
        while let Some((generation, result)) = self.worker.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            if generation != self.generation {
                continue;
            }
            match result {
                Ok(m) => {
                    let at = run.history.measurements.partition_point(|x| x.step <= m.step);
                    run.history.measurements.insert(at, m);
                }
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(tag) = self.asked {
            if let Some(params) = run.take_params(tag) {
                self.asked = None;
                self.in_flight += 1;
                self.worker.send((self.generation, tag - MEASURE_TAG, params));
            }
            return;
        }
        // Measurements slower than training queue up on the worker (a few at most): training
        // never waits, and a measurement may land a few steps after it was due.
        if self.in_flight >= MAX_MEASURE_QUEUE {
            return;
        }
        let step = run.completed_steps();
        let due = step >= self.next || (run.is_done() && self.last_asked.is_some_and(|s| s < step));
        if due && self.last_asked != Some(step) && run.request_params(MEASURE_TAG + step).is_ok() {
            self.asked = Some(MEASURE_TAG + step);
            self.last_asked = Some(step);
            self.next = step + self.every;
        }
    }
}

/// Most steps an asynchronous engine gets per submission.
const MAX_ASYNC_STEPS: u64 = 256;

/// Throughput, measured over the last second.
#[derive(Clone, Debug, Default)]
pub struct Throughput {
    window_start: Option<Instant>,
    steps_in_window: u64,
    pub steps_per_s: f64,
}

impl Throughput {
    fn add(&mut self, steps: u64, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        self.steps_in_window += steps;
        let dt = now.duration_since(start).as_secs_f64();
        if dt >= 1.0 {
            self.steps_per_s = self.steps_in_window as f64 / dt;
            self.steps_in_window = 0;
            self.window_start = Some(now);
        }
    }
}

pub struct Lab {
    pub state: LabState,
    pub data: Option<Arc<Dataset>>,
    pub init: Option<Arc<Vec<f32>>>,
    /// Why the shared data could not be built.
    pub data_error: Option<String>,
    pub runs: Vec<LabRun>,
    pub engine: EngineChoice,
    /// Training time per frame, all runs together.
    pub budget: Duration,
    pub throughput: Throughput,
    cursor: usize,
    /// Steps completed by all runs since the lab was built (a counter the browser test reads).
    pub total_steps: u64,
    /// The landscape being computed or shown, and why the last one stopped (if it failed).
    pub landscape: Option<landscape::LandscapeJob>,
    pub landscape_error: Option<String>,
}

impl Lab {
    pub fn new(state: LabState, engine: EngineChoice) -> Self {
        let mut lab = Self {
            state,
            data: None,
            init: None,
            data_error: None,
            runs: Vec::new(),
            engine,
            budget: Duration::from_millis(8),
            throughput: Throughput::default(),
            cursor: 0,
            total_steps: 0,
            landscape: None,
            landscape_error: None,
        };
        lab.rebuild_all();
        lab
    }

    /// Reloads the shared data and initial weights and rebuilds every run (paused runs stay paused).
    pub fn rebuild_all(&mut self) {
        self.state.fit_runs();
        self.engine.preference = self.state.shared.backend;
        let probe = RunSpec::default().config(&self.state.shared);
        match prepare(&probe) {
            Ok((data, init)) => {
                self.data = Some(data);
                self.init = Some(init);
                self.data_error = None;
            }
            Err(e) => {
                self.data = None;
                self.init = None;
                self.data_error = Some(e.to_string());
            }
        }
        let playing: Vec<bool> = self.runs.iter().map(|r| r.playing).collect();
        self.runs = self.state.runs.clone().into_iter().enumerate().map(|(i, spec)| self.build_run(spec, playing.get(i).copied().unwrap_or(true))).collect();
    }

    fn build_run(&self, spec: RunSpec, playing: bool) -> LabRun {
        let (run, error) = match (&self.data, &self.init) {
            (Some(data), Some(init)) => {
                let mut cfg = spec.config(&self.state.shared);
                // The lab measures off the UI thread (see `Measuring`), not in the run's hook.
                cfg.measure_every = 0;
                let snapshots = trajectory_snapshots(init.len());
                let made = self.engine.make(&cfg, data.clone(), init).and_then(|m| {
                    let mut run = Run::new(cfg, data.clone(), init.clone(), m.engine)?;
                    run.keep_snapshots(snapshots);
                    Ok((run, m.asynchronous, m.note))
                });
                match made {
                    Ok((run, asynchronous, note)) => (Some((run, asynchronous, note)), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            }
            _ => (None, Some(self.data_error.clone().unwrap_or_else(|| "no data".into()))),
        };
        let (run, asynchronous, mut note) = match run {
            Some((r, a, n)) => (Some(r), a, n),
            None => (None, false, None),
        };
        let measuring = match (&run, &self.data) {
            (Some(_), Some(data)) if spec.measure_every > 0 => match Measuring::new(&spec.config(&self.state.shared), data) {
                Ok(m) => Some(m),
                Err(e) => {
                    note = Some(format!("measurements off: {e}"));
                    None
                }
            },
            _ => None,
        };
        LabRun {
            spec,
            run,
            error,
            playing,
            asynchronous,
            note,
            ms_per_step: 1.0,
            async_steps: 4,
            waited: 0,
            step_target: None,
            gpu_failure: None,
            measuring,
            views: views::RunViews::default(),
        }
    }

    /// Replaces the whole state (a preset, a loaded file, a URL).
    pub fn set_state(&mut self, state: LabState) {
        self.state = state;
        self.runs.clear();
        self.rebuild_all();
    }

    pub fn apply_preset(&mut self, preset: Preset) {
        self.set_state(preset.state());
    }

    /// Changes the shared settings: new data and initial weights, every run restarts.
    pub fn set_shared(&mut self, shared: Shared) {
        if shared != self.state.shared {
            self.state.shared = shared;
            self.state.preset = None;
            self.rebuild_all();
        }
    }

    /// A fresh seed: new data order, label noise and initial weights for every run.
    pub fn new_seed(&mut self) {
        let mut shared = self.state.shared.clone();
        shared.seed = crate::rng::Rng::new(shared.seed ^ 0x5EED).next_u64() % 1_000_000;
        self.set_shared(shared);
    }

    /// Changes one run's settings; that run restarts from the shared initial weights.
    pub fn set_spec(&mut self, i: usize, mut spec: RunSpec) {
        let Some(old) = self.runs.get(i) else { return };
        spec.batch = spec.batch.clamp(1, self.state.max_batch().max(1));
        fit_m(&mut spec);
        if spec == old.spec {
            return;
        }
        let playing = old.playing;
        self.state.runs[i] = spec.clone();
        self.state.preset = None;
        self.runs[i] = self.build_run(spec, playing);
    }

    pub fn can_add(&self) -> bool {
        self.runs.len() < MAX_RUNS
    }

    fn free_color(&self) -> usize {
        (0..).find(|c| !self.state.runs.iter().any(|r| r.color == *c)).unwrap_or(0)
    }

    /// Adds a run with `kind` (default settings); returns its index.
    pub fn add_run(&mut self, kind: OptimizerKind) -> Option<usize> {
        if !self.can_add() {
            return None;
        }
        let mut spec = RunSpec::with(kind, self.free_color());
        if let Some(last) = self.state.runs.last() {
            spec.batch = last.batch;
            spec.epochs = last.epochs;
        }
        spec.batch = spec.batch.clamp(1, self.state.max_batch().max(1));
        fit_m(&mut spec);
        self.push(spec)
    }

    pub fn duplicate(&mut self, i: usize) -> Option<usize> {
        if !self.can_add() {
            return None;
        }
        let mut spec = self.state.runs.get(i)?.clone();
        spec.color = self.free_color();
        self.push(spec)
    }

    fn push(&mut self, spec: RunSpec) -> Option<usize> {
        self.state.runs.push(spec.clone());
        self.state.preset = None;
        let run = self.build_run(spec, true);
        self.runs.push(run);
        Some(self.runs.len() - 1)
    }

    /// Removes a run (the last one stays: a lab always has one).
    pub fn remove(&mut self, i: usize) {
        if self.runs.len() > 1 && i < self.runs.len() {
            self.runs.remove(i);
            self.state.runs.remove(i);
            self.state.preset = None;
        }
    }

    pub fn set_playing(&mut self, i: usize, playing: bool) {
        if let Some(r) = self.runs.get_mut(i) {
            r.playing = playing;
        }
    }

    pub fn set_all_playing(&mut self, playing: bool) {
        for r in &mut self.runs {
            r.playing = playing;
        }
    }

    /// Back to the shared initial weights, empty history (the same run again, step for step).
    pub fn reset(&mut self, i: usize) {
        if let Some(r) = self.runs.get_mut(i) {
            if let Some(run) = &mut r.run
                && let Err(e) = run.reset()
            {
                r.error = Some(e.to_string());
            }
            if let Some(m) = &mut r.measuring {
                m.restart();
            }
            r.views.clear();
        }
    }

    pub fn reset_all(&mut self) {
        for i in 0..self.runs.len() {
            self.reset(i);
        }
    }

    /// One optimizer step of run i (paused or not), plus the evaluation due before it.
    pub fn step_once(&mut self, i: usize) {
        let Some(r) = self.runs.get_mut(i) else { return };
        let Some(run) = &mut r.run else { return };
        let before = run.completed_steps();
        if r.asynchronous {
            // The result arrives in a later frame; `tick` submits the step.
            r.step_target = Some(r.step_target.unwrap_or(before).max(before) + 1);
            return;
        }
        for _ in 0..4 {
            if run.is_done() || run.completed_steps() > before {
                break;
            }
            if let Err(e) = run.pump(1).and_then(|_| run.collect().map(|_| ())) {
                r.error = Some(e.to_string());
                break;
            }
        }
        self.total_steps += run.completed_steps().saturating_sub(before);
    }

    /// Steps every playing run. Asynchronous (GPU) runs keep one submission in flight each;
    /// CPU runs share about `budget` of this frame: they are served round robin (the first one
    /// served changes every frame) with equal shares, and at least one pump happens per frame,
    /// so a slow step delays a frame but never stops training. Returns the steps completed.
    pub fn tick(&mut self) -> u64 {
        let start = Instant::now();
        let before: u64 = self.runs.iter().map(LabRun::completed).sum();
        // Measurements first: a weight read asked now is taken before this frame's steps.
        for r in &mut self.runs {
            if let (Some(m), Some(run)) = (&mut r.measuring, &mut r.run) {
                m.advance(run);
            }
        }
        for r in self.runs.iter_mut().filter(|r| r.asynchronous) {
            r.pump_async();
        }
        self.fall_back_from_failed_gpu_runs();
        let active: Vec<usize> = (0..self.runs.len()).filter(|&i| self.runs[i].is_active() && !self.runs[i].asynchronous).collect();
        if !active.is_empty() {
            let n = active.len();
            let share = self.budget / n as u32;
            let deadline = start + self.budget;
            for j in 0..n {
                let now = Instant::now();
                if j > 0 && now >= deadline {
                    break;
                }
                let i = active[(self.cursor + j) % n];
                let slice_end = (now + share).min(deadline);
                self.slice(i, slice_end);
            }
            self.cursor = (self.cursor + 1) % n;
        }
        // Finish the pending responses of paused CPU runs too (a parameter read, an evaluation).
        for r in self.runs.iter_mut().filter(|r| !r.asynchronous) {
            if let Some(run) = &mut r.run
                && let Err(e) = run.collect()
            {
                r.fail(e);
            }
        }
        // A landscape in progress gets half the training budget on top.
        self.advance_landscape(Instant::now() + self.budget / 2);
        let after: u64 = self.runs.iter().map(LabRun::completed).sum();
        let done = after.saturating_sub(before);
        self.total_steps += done;
        self.throughput.add(done, Instant::now());
        done
    }

    /// A run whose GPU engine failed restarts on the CPU (from the shared initial weights), and
    /// the lab stops using the GPU: one failure usually means every GPU run will fail.
    fn fall_back_from_failed_gpu_runs(&mut self) {
        let Some(why) = self.runs.iter_mut().find_map(|r| r.gpu_failure.take()) else { return };
        log::warn!("the GPU engine failed: {why}");
        self.engine.mark_failed(why.clone());
        for i in 0..self.runs.len() {
            if self.runs[i].asynchronous {
                let playing = self.runs[i].playing;
                let mut rebuilt = self.build_run(self.state.runs[i].clone(), playing);
                rebuilt.note = Some(format!("the GPU engine failed ({why}); this run restarted on the CPU"));
                self.runs[i] = rebuilt;
            }
        }
    }

    /// Pumps run i until `until` (at least once). Returns the steps completed.
    fn slice(&mut self, i: usize, until: Instant) -> u64 {
        let r = &mut self.runs[i];
        let Some(run) = &mut r.run else { return 0 };
        let before = run.completed_steps();
        loop {
            let now = Instant::now();
            let left_ms = until.saturating_duration_since(now).as_secs_f64() * 1e3;
            let k = (left_ms / r.ms_per_step.max(1e-3)).floor().clamp(1.0, 10_000.0) as u64;
            let steps_before = run.completed_steps();
            let result = run.pump(k).and_then(|_| run.collect());
            let took = now.elapsed().as_secs_f64() * 1e3;
            let stepped = run.completed_steps() - steps_before;
            if stepped > 0 {
                r.ms_per_step = 0.7 * r.ms_per_step + 0.3 * (took / stepped as f64);
            }
            match result {
                Err(e) => {
                    r.error = Some(e.to_string());
                    r.playing = false;
                    break;
                }
                Ok(0) => break, // nothing arrived: wait for the engine
                Ok(_) => {}
            }
            if run.is_done() || Instant::now() >= until {
                break;
            }
        }
        run.completed_steps() - before
    }

    /// True while any run trains or a landscape is computed (the app keeps repainting).
    pub fn is_training(&self) -> bool {
        self.runs.iter().any(LabRun::is_active) || self.landscape.as_ref().is_some_and(|j| !j.view.is_complete())
    }

    /// Starts a landscape: the 2D grid around run i's weights, or the line from run i to run j.
    pub fn start_landscape(&mut self, i: usize, to: Option<usize>) {
        self.landscape_error = None;
        let label = |k: usize, runs: &[LabRun]| runs.get(k).map(|r| format!("{}. {}", k + 1, r.label())).unwrap_or_default();
        let (li, lj) = (label(i, &self.runs), to.map(|j| label(j, &self.runs)));
        let job = match to {
            None => match self.runs.get_mut(i).and_then(|r| r.run.as_mut()) {
                Some(run) => landscape::LandscapeJob::grid(i, li, run),
                None => return self.landscape_error = Some("that run has no weights".into()),
            },
            Some(j) if j != i && j < self.runs.len() && i < self.runs.len() => {
                let (a, b) = if i < j {
                    let (x, y) = self.runs.split_at_mut(j);
                    (&mut x[i], &mut y[0])
                } else {
                    let (x, y) = self.runs.split_at_mut(i);
                    (&mut y[0], &mut x[j])
                };
                match (a.run.as_mut(), b.run.as_mut()) {
                    (Some(ra), Some(rb)) => landscape::LandscapeJob::line(i, li, j, lj.unwrap_or_default(), [ra, rb]),
                    _ => return self.landscape_error = Some("those runs have no weights".into()),
                }
            }
            Some(_) => return self.landscape_error = Some("pick two different runs".into()),
        };
        match job {
            Ok(job) => self.landscape = Some(job),
            Err(e) => self.landscape_error = Some(e.to_string()),
        }
    }

    /// Evaluates landscape points until `until` (after the runs' pending work was collected).
    fn advance_landscape(&mut self, until: Instant) {
        let Some(data) = self.data.clone() else { return };
        let Some(job) = &mut self.landscape else { return };
        if job.view.is_complete() {
            return;
        }
        let mut runs: Vec<Option<&mut Run>> = self.runs.iter_mut().map(|r| r.run.as_mut()).collect();
        if let Err(e) = job.advance(&mut runs, &data, until) {
            self.landscape_error = Some(e);
            self.landscape = None;
        }
    }

    /// Refreshes at most one run's data views (decision surface or hardest samples) per call,
    /// each at most every `every`; reads the parameters through the run's engine.
    pub fn refresh_views(&mut self, every: Duration) {
        let Some(data) = self.data.clone() else { return };
        let n = self.runs.len();
        for j in 0..n {
            let i = (self.cursor + j) % n;
            let r = &mut self.runs[i];
            if r.views.refresh(r.run.as_mut(), &data, every) {
                break;
            }
        }
    }

    /// Every run's metrics as one JSON document (config, status, history).
    pub fn metrics_json(&self) -> String {
        let runs: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|r| {
                let status = match r.status() {
                    Some(RunStatus::Diverged(m)) => m.clone(),
                    Some(s) => format!("{s:?}").to_lowercase(),
                    None => r.error.clone().unwrap_or_default(),
                };
                serde_json::json!({
                    "label": r.label(),
                    "config": r.spec.config(&self.state.shared),
                    "engine": r.run.as_ref().map(Run::engine_name),
                    "status": status,
                    "steps": r.completed(),
                    "history": r.run.as_ref().map(|run| &run.history),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "samlab_version": env!("CARGO_PKG_VERSION"),
            "lab": self.state,
            "runs": runs,
        });
        serde_json::to_string_pretty(&doc).expect("JSON values serialise")
    }

    /// Every evaluation of every run as CSV, one row per (run, evaluation).
    pub fn metrics_csv(&self) -> String {
        let mut out = String::from("run,label,step,epoch,train_loss,train_acc,test_loss,test_acc,best_test_acc,clean_train_acc,memorized\n");
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        for (i, r) in self.runs.iter().enumerate() {
            let Some(run) = &r.run else { continue };
            let label = r.label().replace('"', "'");
            for e in &run.history.evals {
                out.push_str(&format!(
                    "{i},\"{label}\",{},{},{},{},{},{},{},{},{}\n",
                    e.step,
                    e.epoch,
                    e.train_loss,
                    e.train_acc,
                    e.test_loss,
                    e.test_acc,
                    e.best_test_acc,
                    opt(e.clean_train_acc),
                    opt(e.memorized)
                ));
            }
        }
        out
    }
}

/// Base64 with the URL alphabet and no padding (RFC 4648 §5), for the URL hash.
pub mod base64url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for k in 0..chunk.len() + 1 {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            }
        }
        out
    }

    /// `None` on a character outside the alphabet or an impossible length. Accepts '+' and '/'
    /// and trailing '=' as well (standard base64).
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.trim_end_matches('=');
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let value = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'-' | b'+' => 62,
                b'_' | b'/' => 63,
                _ => return None,
            } as u32)
        };
        for chunk in text.as_bytes().chunks(4) {
            if chunk.len() == 1 {
                return None;
            }
            let mut n = 0u32;
            for (k, &c) in chunk.iter().enumerate() {
                n |= value(c)? << (18 - 6 * k);
            }
            for k in 0..chunk.len() - 1 {
                out.push((n >> (16 - 8 * k)) as u8);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        for n in 0..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64url::encode(&bytes);
            assert!(!text.contains(['+', '/', '=']));
            assert_eq!(base64url::decode(&text).unwrap(), bytes, "length {n}");
        }
        assert_eq!(base64url::encode(b"hello"), "aGVsbG8");
        assert!(base64url::decode("a").is_none());
        assert!(base64url::decode("ab*d").is_none());
    }

    #[test]
    fn every_preset_is_valid_and_round_trips_through_the_hash() {
        for p in Preset::ALL {
            let state = p.state();
            let (back, notes) = LabState::from_hash(&format!("#{}", state.to_hash())).unwrap().unwrap();
            assert_eq!(back, state, "{p:?}");
            assert!(notes.is_empty(), "{notes:?}");
        }
        let m: Vec<usize> = Preset::MSharpness.state().runs.iter().map(|r| r.optimizer.m).collect();
        assert_eq!(m, [128, 32, 8, 1]);
    }

    #[test]
    fn bad_hashes_and_files_are_errors_that_say_why() {
        assert!(LabState::from_hash("").unwrap().is_none());
        assert!(LabState::from_hash("#").unwrap().is_none());
        let e = LabState::from_hash("#v0:abc").unwrap_err().to_string();
        assert!(e.contains("outdated"), "{e}");
        assert!(LabState::from_hash("#v1:!!!").unwrap_err().to_string().contains("base64url"));
        let garbage = base64url::encode(b"{not json");
        assert!(LabState::from_hash(&format!("v1:{garbage}")).unwrap_err().to_string().contains("malformed JSON"));
        let old = base64url::encode(br#"{"version": 0, "runs": []}"#);
        assert!(LabState::from_hash(&format!("v1:{old}")).unwrap_err().to_string().contains("version"));
        for text in ["", "[]", "{}", r#"{"version":1,"runs":[]}"#, r#"{"version":1,"shared":{"seed":-1}}"#] {
            assert!(LabState::from_json(text).is_err(), "{text}");
        }
    }

    #[test]
    fn invalid_runs_are_dropped_and_named() {
        let mut state = Preset::MSharpness.state();
        state.runs[1].optimizer.m = 7;
        state.runs[2].optimizer.lr = -1.0;
        let (ok, notes) = LabState::from_json(&state.to_json()).unwrap();
        assert_eq!(ok.runs.len(), 2);
        assert_eq!(notes.len(), 2);
        assert!(notes[0].contains("optimizer.m") && notes[1].contains("optimizer.lr"), "{notes:?}");
    }

    #[test]
    fn reset_returns_to_the_same_weights_and_history() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.set_all_playing(false);
        for _ in 0..30 {
            lab.step_once(1);
        }
        let first = lab.runs[1].run.as_ref().unwrap().history.clone();
        assert_eq!(lab.runs[1].completed(), 30);
        assert_eq!(lab.runs[0].completed(), 0, "a paused run does not move");
        lab.reset(1);
        assert_eq!(lab.runs[1].completed(), 0);
        for _ in 0..30 {
            lab.step_once(1);
        }
        assert_eq!(lab.runs[1].run.as_ref().unwrap().history, first);
    }

    #[test]
    fn tick_respects_the_budget_and_advances_every_playing_run() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.budget = Duration::from_millis(4);
        for _ in 0..20 {
            lab.tick();
        }
        assert!(lab.runs.iter().all(|r| r.completed() > 0));
        lab.set_playing(0, false);
        let paused = lab.runs[0].completed();
        lab.tick();
        assert_eq!(lab.runs[0].completed(), paused);
    }

    #[test]
    fn runs_can_be_added_duplicated_and_removed_within_limits() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        assert_eq!(lab.add_run(OptimizerKind::Msam), Some(2));
        assert_eq!(lab.duplicate(0), Some(3));
        assert_eq!(lab.state.runs[3].optimizer.kind, OptimizerKind::Sgd);
        let colors: std::collections::HashSet<usize> = lab.state.runs.iter().map(|r| r.color).collect();
        assert_eq!(colors.len(), 4);
        lab.add_run(OptimizerKind::Sgd);
        lab.add_run(OptimizerKind::Sgd);
        assert_eq!(lab.add_run(OptimizerKind::Sgd), None);
        for _ in 0..10 {
            lab.remove(0);
        }
        assert_eq!(lab.runs.len(), 1);
        // m always divides the batch, whatever the batch becomes.
        let mut spec = lab.state.runs[0].clone();
        spec.optimizer.kind = OptimizerKind::Msam;
        spec.optimizer.m = 32;
        spec.batch = 24;
        lab.set_spec(0, spec);
        assert_eq!(lab.state.runs[0].optimizer.m, 24);
        assert!(lab.runs[0].run.is_some(), "{:?}", lab.runs[0].error);
    }

    #[test]
    fn a_diverged_run_stops_and_the_others_go_on() {
        let mut state = Preset::MoonsSgdVsSam.state();
        state.runs[0].optimizer.lr = 10.0;
        state.runs[0].optimizer.momentum = 0.99;
        let mut lab = Lab::new(state, EngineChoice::default());
        for _ in 0..400 {
            lab.tick();
            if matches!(lab.runs[0].status(), Some(RunStatus::Diverged(_))) {
                break;
            }
        }
        assert!(matches!(lab.runs[0].status(), Some(RunStatus::Diverged(_))), "{:?}", lab.runs[0].status());
        let stopped = lab.runs[0].completed();
        let other = lab.runs[1].completed();
        lab.tick();
        assert_eq!(lab.runs[0].completed(), stopped);
        assert!(lab.runs[1].completed() > other);
    }

    /// The GPU engine on lavapipe (or a real GPU): runs advance through asynchronous readbacks
    /// while `tick` never waits. Skips without an adapter unless SAMLAB_REQUIRE_GPU=1.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn gpu_runs_advance_without_waiting_on_the_device() {
        let ctx = match GpuContext::request_blocking() {
            Ok(ctx) => ctx,
            Err(e) if std::env::var("SAMLAB_REQUIRE_GPU").is_ok_and(|v| v == "1") => panic!("SAMLAB_REQUIRE_GPU=1 but {e}"),
            Err(e) => return eprintln!("skipped: no GPU adapter ({e})"),
        };
        let mut state = Preset::MoonsSgdVsSam.state();
        state.shared.backend = Backend::Gpu;
        let mut lab = Lab::new(state, EngineChoice::with_gpu(ctx));
        assert!(lab.runs.iter().all(|r| r.asynchronous && r.run.is_some()), "{:?}", lab.runs.iter().map(|r| &r.error).collect::<Vec<_>>());
        assert!(lab.engine.describe().starts_with("GPU engine on"), "{}", lab.engine.describe());
        let start = Instant::now();
        // No timing: a tick that waited on the device would never return with work in flight.
        let mut returned_while_busy = false;
        while lab.runs.iter().any(|r| r.completed() < 60) && start.elapsed() < Duration::from_secs(120) {
            lab.tick();
            returned_while_busy |= lab.runs.iter().any(|r| r.run.as_ref().unwrap().is_busy());
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(returned_while_busy, "every tick waited for the GPU");
        assert!(
            lab.runs.iter().all(|r| r.completed() >= 60 && r.error.is_none()),
            "{:?}",
            lab.runs.iter().map(|r| (r.completed(), &r.error)).collect::<Vec<_>>()
        );
        // A single step while paused arrives a few frames later.
        lab.set_all_playing(false);
        while lab.runs.iter().any(|r| r.run.as_ref().unwrap().is_busy()) {
            lab.tick();
        }
        let before = lab.runs[0].completed();
        lab.step_once(0);
        let start = Instant::now();
        while lab.runs[0].completed() == before && start.elapsed() < Duration::from_secs(30) {
            lab.tick();
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(lab.runs[0].completed(), before + 1);
    }

    #[test]
    fn measurements_arrive_off_the_ui_thread_in_step_order() {
        let mut state = Preset::MoonsSgdVsSam.state();
        state.runs[1].measure_every = 40;
        state.runs[1].epochs = 8; // 8 × 15 = 120 steps: measured at 0, about every 40 and at the end
        let mut lab = Lab::new(state, EngineChoice::default());
        assert!(lab.runs[0].measuring.is_none() && lab.runs[1].measuring.is_some());
        let start = Instant::now();
        // Asynchrony without timing: some frame must end while a measurement is still in
        // flight (a frame that waited for it would always find it done).
        let mut returned_while_in_flight = false;
        while start.elapsed() < Duration::from_secs(60) {
            lab.tick();
            returned_while_in_flight |= lab.runs[1].measuring.as_ref().unwrap().in_flight > 0;
            let r = &lab.runs[1];
            if r.run.as_ref().unwrap().is_done()
                && r.measuring.as_ref().unwrap().in_flight == 0
                && r.measuring.as_ref().unwrap().asked.is_none()
                && r.run.as_ref().unwrap().history.measurements.len() >= 3
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(returned_while_in_flight, "every frame waited for its measurement");
        let m = &lab.runs[1].run.as_ref().unwrap().history.measurements;
        assert!(m.len() >= 3, "{} measurements", m.len());
        assert!(m.windows(2).all(|w| w[0].step < w[1].step));
        assert_eq!(m[0].step, 0);
        assert_eq!(m.last().unwrap().step, lab.runs[1].completed());
        assert!(m.iter().all(|x| x.sharpness.is_finite() && x.trace_v >= 0.0 && x.lambda_max.is_finite()));
        // A reset starts the measurements over.
        lab.reset(1);
        assert!(lab.runs[1].run.as_ref().unwrap().history.measurements.is_empty());
    }

    #[test]
    fn exports_hold_every_run() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.set_all_playing(false);
        lab.step_once(0);
        let csv = lab.metrics_csv();
        assert!(csv.lines().nth(1).unwrap().starts_with("0,\"SGD\",0,"), "{csv}");
        let json: serde_json::Value = serde_json::from_str(&lab.metrics_json()).unwrap();
        assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    }
}
