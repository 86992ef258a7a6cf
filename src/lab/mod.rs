//! The lab: up to six runs side by side on one dataset and one initialisation. This file owns
//! the runs and their commands (add, duplicate, remove, play, step, reset, change settings) and
//! one frame's work (`tick`); its rooms hold the rest:
//! - `state`: the settings the app persists and shares (`LabState`, presets, the URL hash);
//! - `pacing`: how runs train within a frame's budget without blocking (shared with `experiments`);
//! - `measuring`: sharpness measurements off the UI thread;
//! - `landscape`, `views`: loss landscapes and the data views, a little per frame;
//! - `export`: metrics as JSON and CSV;
//! - `experiments`: the paper's experiments run live.
//!
//! Engines come from `engine::EngineChoice`, the one factory.
//!
//! Architecture invariant: `lab` knows nothing of egui, files or the URL; of the platform it
//! uses only `Worker` (and `web_time::Instant`, which works natively and in the browser). The
//! UI reads the lab and sends it commands.

pub mod experiments;
mod export;
pub mod landscape;
pub mod link;
pub mod measuring;
pub mod pacing;
pub mod state;
pub mod views;

pub use measuring::Measuring;
pub use pacing::Throughput;
pub use state::{HASH_PREFIX, LAB_VERSION, LabState, MAX_RUNS, Preset, RunSpec, Shared, fit_m};

use crate::config::OptimizerKind;
use crate::data::Dataset;
use crate::engine::EngineChoice;
use crate::error::Error;
use crate::run::{Run, RunStatus};
use crate::setup::prepare;
use pacing::{Pacer, Want, round_robin};
use std::sync::Arc;
use web_time::{Duration, Instant};

/// Weight snapshots a run keeps for the landscape's projected trajectory: up to 64, within about
/// 16 MB per run.
fn trajectory_snapshots(n_params: usize) -> usize {
    ((16 << 20) / (4 * n_params.max(1))).clamp(4, 64)
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
    pacer: Pacer,
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

    /// Pumps a CPU run until `until` (at least once); an error stops it with the message.
    fn slice(&mut self, until: Instant) {
        let Some(run) = &mut self.run else { return };
        if let Err(e) = self.pacer.slice(run, until, |_| {}) {
            self.error = Some(e.to_string());
            self.playing = false;
        }
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
        let want = if self.playing {
            Want::Adaptive
        } else if self.step_target.is_some() {
            Want::Exactly(1)
        } else {
            return;
        };
        if let Err(e) = self.pacer.submit(run, want) {
            self.gpu_failure = Some(e.to_string());
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
            (Some(_), Some(data)) if spec.measure_every > 0 => match Measuring::new(&spec.config(&self.state.shared), data, spec.spectrum) {
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
            pacer: Pacer::default(),
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
        // The evaluation due before the step may take several polls (the CPU engine evaluates in
        // blocks); each poll advances it, so this ends.
        for _ in 0..100_000 {
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
        let runs = &mut self.runs;
        round_robin(&active, start, self.budget, &mut self.cursor, |i, until| runs[i].slice(until));
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;

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
        // The other run is long enough that it cannot finish first, whatever the machine's speed.
        state.runs[1].steps = Some(1_000_000);
        let mut lab = Lab::new(state, EngineChoice::default());
        for _ in 0..100_000 {
            lab.tick();
            if matches!(lab.runs[0].status(), Some(RunStatus::Diverged(_) | RunStatus::Finished)) {
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
        let Some(ctx) = crate::engine::gpu::GpuContext::for_tests("lab::gpu_runs_advance_without_waiting_on_the_device") else { return };
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
        tick_until(&mut lab, 100_000, "the submissions in flight", |lab| lab.runs.iter().all(|r| !r.run.as_ref().unwrap().is_busy()));
        let before = lab.runs[0].completed();
        lab.step_once(0);
        let start = Instant::now();
        while lab.runs[0].completed() == before && start.elapsed() < Duration::from_secs(30) {
            lab.tick();
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(lab.runs[0].completed(), before + 1);
    }

    /// Polls `done` once a frame for at most `frames` frames (1 ms apart), failing with `what`.
    fn tick_until(lab: &mut Lab, frames: usize, what: &str, done: impl Fn(&Lab) -> bool) {
        for _ in 0..frames {
            if done(lab) {
                return;
            }
            lab.tick();
            std::thread::sleep(Duration::from_millis(1));
        }
        let states: Vec<String> = lab.runs.iter().map(|r| format!("{} steps, done {:?}, measuring {:?}", r.completed(), r.run.as_ref().map(Run::is_done), r.measuring.as_ref().map(|m| (m.in_flight, m.asked)))).collect();
        panic!("{what}: not reached after {frames} frames ({states:?})");
    }

    fn measured_steps(lab: &Lab, i: usize) -> Vec<u64> {
        lab.runs[i].run.as_ref().unwrap().history.measurements.iter().map(|m| m.step).collect()
    }

    fn measuring_idle(lab: &Lab, i: usize) -> bool {
        let m = lab.runs[i].measuring.as_ref().unwrap();
        lab.runs[i].run.as_ref().unwrap().is_done() && m.in_flight == 0 && m.asked.is_none()
    }

    /// The step source is the test (one step per frame while paused), so which steps are due is
    /// exact whatever the machine's speed: measured at 0, 40, 80 and at the end (120).
    #[test]
    fn measurements_arrive_off_the_ui_thread_in_step_order() {
        let mut state = Preset::MoonsSgdVsSam.state();
        state.runs[1].measure_every = 40;
        state.runs[1].epochs = 8; // 8 × 15 = 120 steps
        let mut lab = Lab::new(state, EngineChoice::default());
        assert!(lab.runs[0].measuring.is_none() && lab.runs[1].measuring.is_some());
        lab.set_all_playing(false);
        // Asynchrony without timing: the frame that hands weights to the worker returns with the
        // measurement still in flight (its result is collected at a later frame at the earliest).
        let mut returned_while_in_flight = false;
        for _ in 0..120 {
            lab.tick();
            returned_while_in_flight |= lab.runs[1].measuring.as_ref().unwrap().in_flight > 0;
            lab.step_once(1);
        }
        assert_eq!(lab.runs[1].completed(), 120);
        // Playing again, the run only does its final evaluation.
        lab.set_playing(1, true);
        tick_until(&mut lab, 20_000, "the last measurement", |lab| measuring_idle(lab, 1));
        assert!(returned_while_in_flight, "every frame waited for its measurement");
        assert_eq!(measured_steps(&lab, 1), [0, 40, 80, 120]);
        let m = &lab.runs[1].run.as_ref().unwrap().history.measurements;
        assert!(m.iter().all(|x| x.sharpness.is_finite() && x.trace_v >= 0.0 && x.lambda_max.is_finite()));
        // A reset starts the measurements over.
        lab.reset(1);
        assert!(lab.runs[1].run.as_ref().unwrap().history.measurements.is_empty());
    }

    /// When training outpaces measuring (here: due every step, the run playing at full speed),
    /// the lab promises measurements in step order, at most one asked per frame, and always one of
    /// the final weights: the due steps in between are skipped, training never waits.
    #[test]
    fn training_faster_than_measuring_skips_steps_but_measures_the_end() {
        let mut state = Preset::MoonsSgdVsSam.state();
        state.runs[1].measure_every = 1;
        state.runs[1].epochs = 8;
        let mut lab = Lab::new(state, EngineChoice::default());
        lab.set_playing(0, false);
        let mut frames = 0;
        while !lab.runs[1].run.as_ref().unwrap().is_done() {
            assert!(frames < 100_000, "the run did not finish");
            lab.tick();
            frames += 1;
        }
        tick_until(&mut lab, 60_000, "the final measurement", |lab| measuring_idle(lab, 1));
        let steps = measured_steps(&lab, 1);
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
        assert_eq!(steps.first(), Some(&0));
        assert_eq!(steps.last(), Some(&120));
        assert!(steps.len() <= frames + 1, "{} measurements in {frames} frames", steps.len());
    }
}
