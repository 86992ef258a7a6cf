//! The lab: up to six runs side by side on one dataset and one initialisation. This file owns
//! the runs and their commands (add, duplicate, remove, play, step, change settings) and
//! one frame's work (`tick`); its rooms hold the rest:
//! - `live`: settings changed while a run trains, and reset;
//! - `state`: the settings the app persists and shares (`LabState`, presets, the URL hash);
//! - `pacing`: how runs train within a frame's budget without blocking (shared with `experiments`);
//! - `measuring`: sharpness measurements off the UI thread;
//! - `landscape`, `views`: loss landscapes and the data views, a little per frame;
//! - `export`: metrics as JSON and CSV; `weights`: a run's weights and the user's data as text;
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
mod live;
pub mod measuring;
pub mod pacing;
pub mod state;
pub mod views;
mod weights;

pub use measuring::Measuring;
pub use pacing::Throughput;
pub use state::{HASH_PREFIX, LAB_VERSION, LabState, MAX_RUNS, Preset, RunSpec, Shared, fit_m};

use crate::config::OptimizerKind;
use crate::data::Dataset;
use crate::engine::EngineChoice;
use crate::error::Error;
use crate::run::{Run, RunStatus};
use crate::setup::prepare;
use pacing::{Pacer, Want, frame_shares, round_robin};
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
    /// Work per frame, all runs together: training, and the browser's measurements and a
    /// landscape in progress out of the same time (`pacing::frame_shares`).
    pub budget: Duration,
    pub throughput: Throughput,
    cursor: usize,
    /// The round robin of the measurements' slices.
    measure_cursor: usize,
    /// Steps completed by all runs since the lab was built (a counter the browser test reads).
    pub total_steps: u64,
    /// The landscape being computed or shown, and why the last one stopped (if it failed).
    pub landscape: Option<landscape::LandscapeJob>,
    pub landscape_error: Option<String>,
    /// Where the last `tick` spent its time.
    pub last_tick: TickTimes,
}

/// Where one `Lab::tick` spent its time: what the app reports of its longest frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TickTimes {
    /// Training steps, CPU and GPU (and collecting what the runs' engines sent back).
    pub train: Duration,
    /// The browser's measurements in pieces (and weight reads for them).
    pub measure: Duration,
    /// The landscape in progress.
    pub landscape: Duration,
    /// Refreshing the runs' data views (`refresh_views`: filled in by the app, which calls it).
    pub views: Duration,
}

impl TickTimes {
    pub fn total(&self) -> Duration {
        self.train + self.measure + self.landscape + self.views
    }
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
            measure_cursor: 0,
            total_steps: 0,
            landscape: None,
            landscape_error: None,
            last_tick: TickTimes::default(),
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
    /// Refused, with the reason and nothing changed, when the runs would not fit the lab's memory
    /// budget with the new settings.
    pub fn set_shared(&mut self, shared: Shared) -> Result<(), String> {
        if shared != self.state.shared {
            let mut next = self.state.clone();
            next.shared = shared;
            next.fit_runs();
            next.memory_check()?;
            self.state.shared = next.shared;
            self.state.preset = None;
            self.rebuild_all();
        }
        Ok(())
    }

    /// A fresh seed: new data order, label noise and initial weights for every run.
    pub fn new_seed(&mut self) {
        let mut shared = self.state.shared.clone();
        shared.seed = crate::rng::Rng::new(shared.seed ^ 0x5EED).next_u64() % 1_000_000;
        // A new seed changes no size: the budget check cannot refuse it.
        let _ = self.set_shared(shared);
    }

    /// Changes one run's settings: live hyperparameters of a training run apply from its next
    /// step (see `live`); otherwise the run restarts from the shared initial weights. Refused,
    /// with the reason and nothing changed, when the runs would not fit the memory budget.
    pub fn set_spec(&mut self, i: usize, mut spec: RunSpec) -> Result<(), String> {
        let Some(old) = self.runs.get(i) else { return Ok(()) };
        spec.batch = spec.batch.clamp(1, self.state.max_batch().max(1));
        fit_m(&mut spec);
        let (unchanged, playing) = (spec == old.spec, old.playing);
        if unchanged || self.apply_live(i, &spec) {
            return Ok(());
        }
        let mut next = self.state.clone();
        next.runs[i] = spec.clone();
        next.memory_check()?;
        self.state.runs[i] = spec.clone();
        self.state.preset = None;
        self.runs[i] = self.build_run(spec, playing);
        Ok(())
    }

    pub fn can_add(&self) -> bool {
        self.runs.len() < MAX_RUNS
    }

    fn free_color(&self) -> usize {
        (0..).find(|c| !self.state.runs.iter().any(|r| r.color == *c)).unwrap_or(0)
    }

    /// Adds a run with `kind` (default settings); returns its index, or why it cannot (at most
    /// `MAX_RUNS` runs, the memory budget).
    pub fn add_run(&mut self, kind: OptimizerKind) -> Result<usize, String> {
        if !self.can_add() {
            return Err(format!("at most {MAX_RUNS} runs"));
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

    pub fn duplicate(&mut self, i: usize) -> Result<usize, String> {
        if !self.can_add() {
            return Err(format!("at most {MAX_RUNS} runs"));
        }
        let mut spec = self.state.runs.get(i).ok_or_else(|| format!("no run {}", i + 1))?.clone();
        spec.color = self.free_color();
        self.push(spec)
    }

    /// Adds a run unless the runs would then exceed the memory budget.
    fn push(&mut self, spec: RunSpec) -> Result<usize, String> {
        let mut next = self.state.clone();
        next.runs.push(spec.clone());
        next.memory_check()?;
        self.state.runs.push(spec.clone());
        self.state.preset = None;
        let run = self.build_run(spec, true);
        self.runs.push(run);
        Ok(self.runs.len() - 1)
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
    /// CPU runs share about `budget` of this frame, less what measurements and a landscape in
    /// progress take of it (`frame_shares`): they are served round robin (the first one
    /// served changes every frame) with equal shares, and at least one pump happens per frame,
    /// so a slow step delays a frame but never stops training. Returns the steps completed.
    pub fn tick(&mut self) -> u64 {
        let start = Instant::now();
        let before: u64 = self.runs.iter().map(LabRun::completed).sum();
        let mut times = TickTimes::default();
        // Measurements first: a weight read asked now is taken before this frame's steps.
        for r in &mut self.runs {
            if let (Some(m), Some(run)) = (&mut r.measuring, &mut r.run) {
                m.advance(run);
            }
        }
        times.measure = start.elapsed();
        for r in self.runs.iter_mut().filter(|r| r.asynchronous) {
            r.pump_async();
        }
        self.fall_back_from_failed_gpu_runs();
        // The browser's measurements in pieces (on the desktop their threads need none of this)
        // and a landscape in progress come out of the same budget as training.
        let measuring: Vec<usize> = (0..self.runs.len()).filter(|&i| self.runs[i].measuring.as_ref().is_some_and(Measuring::has_work)).collect();
        let landscape = self.landscape.as_ref().is_some_and(|j| !j.view.is_complete());
        let (train, measure, scape) = frame_shares(self.budget, !measuring.is_empty(), landscape);
        let active: Vec<usize> = (0..self.runs.len()).filter(|&i| self.runs[i].is_active() && !self.runs[i].asynchronous).collect();
        let runs = &mut self.runs;
        round_robin(&active, start, train, &mut self.cursor, |i, until| runs[i].slice(until));
        // Finish the pending responses of paused CPU runs too (a parameter read, an evaluation):
        // within the training share, which has usually passed by now, so that each run's
        // evaluation in progress advances by one block (an unbounded poll would give every run a
        // few milliseconds of it on top of the frame's budget).
        let train_deadline = start + train;
        for r in self.runs.iter_mut().filter(|r| !r.asynchronous) {
            if let Some(run) = &mut r.run
                && let Err(e) = run.collect_until(train_deadline)
            {
                r.fail(e);
            }
        }
        let measure_start = Instant::now();
        times.train = measure_start - start - times.measure;
        let runs = &mut self.runs;
        round_robin(&measuring, measure_start, measure, &mut self.measure_cursor, |i, until| {
            if let Some(m) = &mut runs[i].measuring {
                m.work(until);
            }
        });
        let landscape_start = Instant::now();
        times.measure += landscape_start - measure_start;
        self.advance_landscape(landscape_start + scape);
        if landscape {
            times.landscape = landscape_start.elapsed();
        }
        self.last_tick = times;
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
                Some(run) => landscape::LandscapeJob::grid(i, li, run, &self.state.landscape),
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
mod tests;
