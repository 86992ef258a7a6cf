//! The paper's experiments, run live in the app: the same trial lists as `samlab experiment`
//! (`experiments::trials`), trained one after another (two at a time on a GPU) with the lab's
//! per-frame budget, measured off the UI thread, summarised as they finish.
//!
//! A trial's life: its data and initial weights (`prepare`), an engine from the lab's
//! `EngineChoice` (never another factory), a `Run` pumped a little every frame (CPU: a time
//! slice; GPU: one submission in flight), then, if the trial measures, its weights read back
//! asynchronously and measured on the `Worker` (a thread on the desktop, inline and lighter in
//! the browser), then `TrialResult::from_run`. Nothing here blocks: no `finish`, no
//! `params_blocking`. The drift check is not a training experiment: `drift_check` runs on the
//! worker, in one piece on the desktop (the CLI's numbers) and one m per frame in the browser.
//!
//! ms/step: the CLI times a run's wall time (and `bench`'s step timer for `cost`); here a CPU
//! trial times the pumps it does (steps and evaluations; steps alone for `cost`), a GPU trial its
//! wall time from start to end (frame pacing included, an upper bound).
//!
//! Architecture invariant: like the rest of `lab`, no egui, no files; results are plain data.

use super::{EngineChoice, lighten_for_the_browser, prepare};
use crate::config::{Backend, RunConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::experiments::drift::{self, DriftConfig, DriftReport, drift_check};
use crate::experiments::panels::{Panel, drift_panels, experiment_panels};
use crate::experiments::{Experiment, Options, Trial, TrialResult, markdown_table, paper_reference, trials, verdicts};
use crate::metrics::{EvalSet, MeasureConfig, Measurement, RunMeasurer};
use crate::platform::{BACKGROUND_WORKERS, Worker};
use crate::run::{Run, RunStatus};
use std::collections::VecDeque;
use std::sync::Arc;
use web_time::{Duration, Instant};

/// Trials training at once on the CPU engine (they share the UI thread: one at a time).
const CPU_PARALLEL: usize = 1;
/// Trials training at once on a GPU: one can submit while the other waits for its readback.
const GPU_PARALLEL: usize = 2;
/// Trained trials waiting for their measurement, at most (each still holds its run).
const MAX_WAITING: usize = 2;
/// Tag of the final parameter read (outside the run's own measurement-hook range).
const PARAMS_TAG: u64 = 1 << 54;
/// Most steps per submission of an asynchronous engine.
const MAX_ASYNC_STEPS: u64 = 256;

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    /// Stopped by the user: the trials finished before stay.
    Stopped,
    Finished,
}

/// What the panel shows of a job, recomputed whenever a trial (or a drift m) finishes.
#[derive(Default)]
pub struct Summary {
    /// `markdown_table` (or the drift check's table): the same text the CLI writes.
    pub table: String,
    pub verdicts: Vec<String>,
    /// The figure: `experiment_panels` or `drift_panels`.
    pub panels: Vec<Panel>,
}

/// One trial in progress.
struct LiveTrial {
    index: usize,
    run: Run,
    data: Arc<Dataset>,
    engine_name: String,
    asynchronous: bool,
    phase: Phase,
    /// Moving average of ms per step of one pump, to size the next CPU slice (as the lab does).
    slice_ms_per_step: f64,
    /// CPU: time inside pumps, all of it and the part that only stepped (no evaluation).
    pump_time: Duration,
    step_time: Duration,
    stepped: u64,
    /// Asynchronous engines: wall time from start to the end of training.
    started: Instant,
    trained_after: Option<Duration>,
    async_steps: u64,
    waited: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Training,
    /// The final weights were asked for.
    AwaitingParams,
    /// The weights are with the measurement worker.
    Measuring,
}

impl LiveTrial {
    fn label(&self, trial: &Trial) -> String {
        let what = match self.phase {
            Phase::Training => format!("step {}/{}", self.run.completed_steps(), self.run.total_steps()),
            Phase::AwaitingParams | Phase::Measuring => "measuring tr V, λ_max, …".to_string(),
        };
        format!("{} seed {}: {what}", trial_name(trial), trial.seed)
    }

    /// Pumps a CPU run until `until` (at least once), timing the pumps.
    fn slice(&mut self, until: Instant) -> Result<()> {
        loop {
            let now = Instant::now();
            let left_ms = until.saturating_duration_since(now).as_secs_f64() * 1e3;
            let k = (left_ms / self.slice_ms_per_step.max(1e-3)).floor().clamp(1.0, 10_000.0) as u64;
            let (steps_before, evals_before) = (self.run.completed_steps(), self.run.history.evals.len());
            self.run.pump(k)?;
            let arrived = self.run.collect()?;
            let took = now.elapsed();
            self.pump_time += took;
            let stepped = self.run.completed_steps() - steps_before;
            if stepped > 0 {
                self.slice_ms_per_step = 0.7 * self.slice_ms_per_step + 0.3 * (took.as_secs_f64() * 1e3 / stepped as f64);
                if self.run.history.evals.len() == evals_before {
                    self.step_time += took;
                    self.stepped += stepped;
                }
            }
            if arrived == 0 || self.run.is_done() || Instant::now() >= until {
                return Ok(());
            }
        }
    }

    /// One submission in flight on an asynchronous engine, sized to keep it about one frame busy.
    fn pump_async(&mut self) -> Result<()> {
        self.run.collect()?;
        if self.run.is_done() {
            return Ok(());
        }
        if self.run.is_busy() {
            self.waited += 1;
            return Ok(());
        }
        if self.waited <= 1 {
            self.async_steps = (self.async_steps * 2).min(MAX_ASYNC_STEPS);
        } else if self.waited > 3 {
            self.async_steps = (self.async_steps / 2).max(1);
        }
        self.waited = 0;
        self.run.pump(self.async_steps)
    }

    /// The trial's ms per step (see the module header).
    fn ms_per_step(&self, trial: &Trial) -> f64 {
        if self.asynchronous {
            let wall = self.trained_after.unwrap_or_else(|| self.started.elapsed());
            return 1e3 * wall.as_secs_f64() / self.run.completed_steps().max(1) as f64;
        }
        if trial.target_acc.is_some() && self.stepped > 0 {
            // `cost`: the step time alone, evaluations excluded (as `bench` times it).
            return 1e3 * self.step_time.as_secs_f64() / self.stepped as f64;
        }
        1e3 * self.pump_time.as_secs_f64() / self.run.completed_steps().max(1) as f64
    }
}

/// "m-SAM at 8", "SGD" (series and x), for progress lines and messages.
pub fn trial_name(trial: &Trial) -> String {
    match trial.x {
        Some(x) if x.fract() == 0.0 => format!("{} at {x:.0}", trial.series),
        Some(x) => format!("{} at {x}", trial.series),
        None => trial.series.clone(),
    }
}

/// (trial index, config, data, step, weights) → (trial index, measurement).
type MeasureJob = (usize, RunConfig, Arc<Dataset>, u64, Vec<f32>);
type MeasureDone = (usize, std::result::Result<Measurement, String>);

/// The end-of-training measurement: the CLI's (`RunMeasurer`, 1024 samples) where a worker
/// thread runs it; in the browser, where it runs between frames, the lab's lighter one.
fn measure_trial(cfg: &RunConfig, data: &Dataset, step: u64, params: &[f32], light: bool) -> Result<Measurement> {
    if !light {
        return RunMeasurer::new(cfg, data)?.measure(step, params);
    }
    let mut mcfg = MeasureConfig::for_run(cfg);
    let size = lighten_for_the_browser(&mut mcfg);
    let set = EvalSet::from_train(data, size, cfg.seed);
    mcfg.curve_max = mcfg.curve_max.min(set.len());
    mcfg.validate()?;
    let mut objective = set.objective::<f32>(&crate::engine::cpu::spec_for(cfg, data))?;
    let w: Vec<f64> = params.iter().map(|&v| v as f64).collect();
    Ok(crate::metrics::measure(&mut objective, &w, &mcfg, step)?.measurement)
}

/// The drift check in pieces: all of it at once on the desktop's worker thread (the same numbers
/// as `samlab experiment drift-check`), one m per frame in the browser.
struct DriftJob {
    config: DriftConfig,
    chunks: VecDeque<Vec<usize>>,
    in_flight: bool,
    /// Dropped by Stop: its thread ends after the piece in hand.
    worker: Option<Worker<DriftConfig, DriftReport>>,
    report: Option<DriftReport>,
}

impl DriftJob {
    /// `one_m_per_piece`: in the browser, where the worker runs inline when a piece is sent.
    fn new(quick: bool, one_m_per_piece: bool) -> Self {
        let config = DriftConfig::new(quick, 0);
        let chunks = if one_m_per_piece { config.ms.iter().map(|&m| vec![m]).collect() } else { VecDeque::from([config.ms.clone()]) };
        let worker = Worker::new("samlab drift check", |cfg: DriftConfig| drift_check(&cfg));
        Self { config, chunks, in_flight: false, worker: Some(worker), report: None }
    }

    /// Sends the next piece when none is in flight; merges what came back. True on news.
    fn advance(&mut self) -> bool {
        let Some(worker) = &mut self.worker else { return false };
        if !self.in_flight
            && let Some(ms) = self.chunks.pop_front()
        {
            worker.send(DriftConfig { ms, ..self.config.clone() });
            self.in_flight = true;
        }
        let mut news = false;
        while let Some(part) = worker.try_recv() {
            self.in_flight = false;
            news = true;
            match &mut self.report {
                // tr V and ‖∇f‖ do not depend on the draws: every piece has the same.
                Some(r) => r.rows.extend(part.rows),
                None => self.report = Some(DriftReport { config: self.config.clone(), ..part }),
            }
        }
        news
    }

    fn done_ms(&self) -> usize {
        self.report.as_ref().map_or(0, |r| r.rows.len())
    }

    fn is_complete(&self) -> bool {
        self.chunks.is_empty() && !self.in_flight && self.report.is_some()
    }
}

/// One experiment running (or run) in the app.
pub struct ExperimentJob {
    pub experiment: Experiment,
    pub options: Options,
    pub trials: Vec<Trial>,
    /// Per trial: its result, or why it failed; `None` until it ends.
    outcomes: Vec<Option<std::result::Result<TrialResult, String>>>,
    live: Vec<LiveTrial>,
    next: usize,
    engine: EngineChoice,
    parallel: usize,
    worker: Option<Worker<MeasureJob, MeasureDone>>,
    drift: Option<DriftJob>,
    pub state: JobState,
    /// What went wrong in single trials (the experiment goes on), and engine notes.
    pub problems: Vec<String>,
    summary: Summary,
    started: Instant,
    wall: Option<Duration>,
    cursor: usize,
}

impl ExperimentJob {
    /// Plans `exp` with the lab's engine: the GPU engine where the lab uses it (and, for `cost`,
    /// both engines), the CPU engine otherwise.
    pub fn start(exp: Experiment, seeds: usize, quick: bool, engine: &EngineChoice) -> Self {
        let gpu = engine.uses_gpu();
        let options = Options {
            seeds: seeds.clamp(1, 5),
            quick,
            backend: if gpu { Backend::Gpu } else { Backend::Cpu },
            cost_backends: if gpu { vec![Backend::Cpu, Backend::Gpu] } else { vec![Backend::Cpu] },
        };
        let list = trials(exp, &options);
        let mut job = Self {
            experiment: exp,
            outcomes: vec![None; list.len()],
            trials: list,
            options,
            live: Vec::new(),
            next: 0,
            engine: engine.clone(),
            parallel: if gpu { GPU_PARALLEL } else { CPU_PARALLEL },
            worker: None,
            drift: (exp == Experiment::DriftCheck).then(|| DriftJob::new(quick, !BACKGROUND_WORKERS)),
            state: JobState::Running,
            problems: Vec::new(),
            summary: Summary::default(),
            started: Instant::now(),
            wall: None,
            cursor: 0,
        };
        if job.trials.iter().any(|t| t.measure) {
            job.worker = Some(Worker::new("samlab experiment measurements", |(i, cfg, data, step, params): MeasureJob| {
                (i, measure_trial(&cfg, &data, step, &params, !BACKGROUND_WORKERS).map_err(|e| e.to_string()))
            }));
        }
        job.refresh_summary();
        job
    }

    /// A finished job from given results (a fixture, or results read back): nothing runs.
    pub fn from_results(exp: Experiment, options: Options, trials: Vec<Trial>, results: Vec<TrialResult>) -> Self {
        let mut outcomes: Vec<Option<std::result::Result<TrialResult, String>>> = vec![None; trials.len()];
        let mut extra = Vec::new();
        for r in results {
            match trials.iter().enumerate().position(|(i, t)| outcomes[i].is_none() && t.series == r.series && t.x == r.x && t.seed == r.seed) {
                Some(i) => outcomes[i] = Some(Ok(r)),
                None => extra.push(Some(Ok(r))),
            }
        }
        outcomes.extend(extra);
        let mut job = Self {
            experiment: exp,
            options,
            trials,
            outcomes,
            live: Vec::new(),
            next: usize::MAX,
            engine: EngineChoice::cpu("results given"),
            parallel: CPU_PARALLEL,
            worker: None,
            drift: None,
            state: JobState::Finished,
            problems: Vec::new(),
            summary: Summary::default(),
            started: Instant::now(),
            wall: Some(Duration::ZERO),
            cursor: 0,
        };
        job.refresh_summary();
        job
    }

    pub fn is_running(&self) -> bool {
        self.state == JobState::Running
    }

    /// Units of work: trials, or the drift check's values of m.
    pub fn total(&self) -> usize {
        match &self.drift {
            Some(d) => d.config.ms.len(),
            None => self.trials.len(),
        }
    }

    pub fn done(&self) -> usize {
        match &self.drift {
            Some(d) => d.done_ms(),
            None => self.outcomes.iter().filter(|o| o.is_some()).count(),
        }
    }

    /// Share of the work done, counting the steps of the trials in progress.
    pub fn fraction(&self) -> f32 {
        let total = self.total().max(1) as f64;
        let partial: f64 = self
            .live
            .iter()
            .map(|t| match t.phase {
                Phase::Training => 0.9 * t.run.completed_steps() as f64 / t.run.total_steps().max(1) as f64,
                _ => 0.9,
            })
            .sum();
        ((self.done() as f64 + partial) / total).clamp(0.0, 1.0) as f32
    }

    /// What runs now, one line per trial in progress.
    pub fn current(&self) -> Vec<String> {
        let mut out: Vec<String> = self.live.iter().map(|t| t.label(&self.trials[t.index])).collect();
        if let Some(d) = &self.drift
            && self.is_running()
        {
            out.push(format!("drift check: {} of {} values of m ({} Monte-Carlo draws each)", d.done_ms(), d.config.ms.len(), d.config.draws));
        }
        out
    }

    /// Runs held by the job now (trials training or waiting for their measurement).
    pub fn live_runs(&self) -> usize {
        self.live.len()
    }

    /// The results so far, in trial order (the CLI's order).
    pub fn results(&self) -> Vec<TrialResult> {
        self.outcomes.iter().filter_map(|o| o.as_ref()?.as_ref().ok().cloned()).collect()
    }

    /// Trials that failed, with why.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.trials
            .iter()
            .zip(&self.outcomes)
            .filter_map(|(t, o)| match o {
                Some(Err(e)) => Some((format!("{} seed {}", trial_name(t), t.seed), e.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn drift_report(&self) -> Option<&DriftReport> {
        self.drift.as_ref()?.report.as_ref()
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Which engine the job's trials get.
    pub fn engine_describe(&self) -> String {
        self.engine.describe()
    }

    pub fn elapsed(&self) -> Duration {
        self.wall.unwrap_or_else(|| self.started.elapsed())
    }

    /// Cancels what runs: every run in progress is dropped with its engine; results stay.
    pub fn stop(&mut self) {
        if self.state != JobState::Running {
            return;
        }
        self.live.clear();
        // Dropping the workers ends their threads after the piece in hand (nothing waits here).
        self.worker = None;
        if let Some(d) = &mut self.drift {
            d.chunks.clear();
            d.in_flight = false;
            d.worker = None;
        }
        self.state = JobState::Stopped;
        self.wall = Some(self.started.elapsed());
    }

    /// One frame's work within `budget`: start trials, train them (CPU: a share of the budget
    /// each; GPU: one submission in flight each), collect weights and measurements, finish
    /// trials. Never waits for a device or a worker.
    pub fn tick(&mut self, budget: Duration) {
        if self.state != JobState::Running {
            return;
        }
        if let Some(news) = self.drift.as_mut().map(DriftJob::advance) {
            if news {
                self.refresh_summary();
            }
            if self.drift.as_ref().is_some_and(DriftJob::is_complete) {
                self.finish();
            }
            return;
        }
        let start = Instant::now();
        self.receive_measurements();
        self.start_trials();
        // Asynchronous engines first: they only submit, which takes no time.
        let mut errors: Vec<(usize, Error)> = Vec::new();
        for (k, t) in self.live.iter_mut().enumerate() {
            if t.asynchronous
                && t.phase == Phase::Training
                && let Err(e) = t.pump_async()
            {
                errors.push((k, e));
            }
        }
        let cpu: Vec<usize> = (0..self.live.len()).filter(|&k| !self.live[k].asynchronous && self.live[k].phase == Phase::Training).collect();
        if !cpu.is_empty() {
            let n = cpu.len();
            let share = budget / n as u32;
            let deadline = start + budget;
            for j in 0..n {
                let now = Instant::now();
                if j > 0 && now >= deadline {
                    break;
                }
                let k = cpu[(self.cursor + j) % n];
                if let Err(e) = self.live[k].slice((now + share).min(deadline)) {
                    errors.push((k, e));
                }
            }
            self.cursor = (self.cursor + 1) % n;
        }
        self.handle_errors(errors);
        self.advance_trained();
        self.start_trials();
        if self.next >= self.trials.len() && self.live.is_empty() {
            self.finish();
        }
    }

    fn finish(&mut self) {
        self.state = JobState::Finished;
        self.wall = Some(self.started.elapsed());
        self.worker = None;
        self.refresh_summary();
    }

    /// Starts trials while a training slot is free (and not too many wait for measurements).
    fn start_trials(&mut self) {
        while self.next < self.trials.len() {
            let training = self.live.iter().filter(|t| t.phase == Phase::Training).count();
            let waiting = self.live.len() - training;
            if training >= self.parallel || waiting >= MAX_WAITING {
                return;
            }
            let i = self.next;
            self.next += 1;
            match self.build(i) {
                Ok(t) => self.live.push(t),
                Err(e) => self.fail(i, e.to_string()),
            }
        }
    }

    /// The trial's data, initial weights and engine (the lab's factory: the GPU engine for a
    /// `gpu` trial while the GPU works, the CPU engine otherwise).
    fn build(&mut self, i: usize) -> Result<LiveTrial> {
        let trial = &self.trials[i];
        let cfg = trial.config.clone();
        let (data, init) = prepare(&cfg)?;
        let mut choice = self.engine.clone();
        choice.preference = cfg.backend;
        let made = choice.make(&cfg, data.clone(), &init)?;
        if let Some(note) = made.note {
            self.problems.push(format!("{} seed {}: {note}", trial_name(trial), trial.seed));
        }
        let engine_name = made.engine.describe();
        let run = Run::new(cfg, data.clone(), init, made.engine)?;
        Ok(LiveTrial {
            index: i,
            run,
            data,
            engine_name,
            asynchronous: made.asynchronous,
            phase: Phase::Training,
            slice_ms_per_step: 1.0,
            pump_time: Duration::ZERO,
            step_time: Duration::ZERO,
            stepped: 0,
            started: Instant::now(),
            trained_after: None,
            async_steps: 4,
            waited: 0,
        })
    }

    fn fail(&mut self, i: usize, why: String) {
        let t = &self.trials[i];
        self.problems.push(format!("{} seed {} failed: {why}", trial_name(t), t.seed));
        self.outcomes[i] = Some(Err(why));
        self.refresh_summary();
    }

    /// A failed GPU trial restarts on the CPU and the job stops using the GPU (one failure
    /// usually means all will fail); a failed CPU trial is recorded and the experiment goes on.
    fn handle_errors(&mut self, mut errors: Vec<(usize, Error)>) {
        errors.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
        for (k, e) in errors {
            let t = self.live.remove(k);
            if t.asynchronous {
                let why = e.to_string();
                self.engine.mark_failed(why.clone());
                let trial = &self.trials[t.index];
                self.problems.push(format!("{} seed {}: the GPU engine failed ({why}); restarted on the CPU", trial_name(trial), trial.seed));
                match self.build(t.index) {
                    Ok(rebuilt) => self.live.push(rebuilt),
                    Err(e) => self.fail(t.index, e.to_string()),
                }
            } else {
                self.fail(t.index, e.to_string());
            }
        }
    }

    /// Trials done training: ask for their weights (if they measure), hand arrived weights to
    /// the worker, or finish them.
    fn advance_trained(&mut self) {
        let mut k = 0;
        while k < self.live.len() {
            let t = &mut self.live[k];
            let trial = &self.trials[t.index];
            match t.phase {
                Phase::Training if t.run.is_done() => {
                    t.trained_after.get_or_insert_with(|| t.started.elapsed());
                    if let RunStatus::Diverged(why) = &t.run.status {
                        self.problems.push(format!("{} seed {} diverged: {why}", trial_name(trial), trial.seed));
                    }
                    let measure = trial.measure && t.run.status == RunStatus::Finished && self.worker.is_some();
                    if !measure {
                        self.complete(k, None);
                        continue;
                    }
                    match t.run.request_params(PARAMS_TAG) {
                        Ok(()) => t.phase = Phase::AwaitingParams,
                        Err(e) => {
                            let i = self.live.remove(k).index;
                            self.fail(i, e.to_string());
                            continue;
                        }
                    }
                }
                Phase::AwaitingParams => {
                    let got = t.run.collect().map(|_| t.run.take_params(PARAMS_TAG));
                    match got {
                        Ok(Some(params)) => {
                            t.phase = Phase::Measuring;
                            let job = (t.index, trial.config.clone(), t.data.clone(), t.run.completed_steps(), params);
                            if let Some(w) = &mut self.worker {
                                w.send(job);
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let i = self.live.remove(k).index;
                            self.fail(i, e.to_string());
                            continue;
                        }
                    }
                }
                _ => {}
            }
            k += 1;
        }
        // In the browser the worker measured inline on `send`: collect it in this frame.
        self.receive_measurements();
    }

    fn receive_measurements(&mut self) {
        let mut done = Vec::new();
        if let Some(w) = &mut self.worker {
            while let Some(d) = w.try_recv() {
                done.push(d);
            }
        }
        for (i, result) in done {
            let Some(k) = self.live.iter().position(|t| t.index == i && t.phase == Phase::Measuring) else { continue };
            match result {
                Ok(m) => self.complete(k, Some(&m)),
                Err(e) => {
                    let t = &self.trials[i];
                    self.problems.push(format!("{} seed {}: the measurement failed ({e}); its result has no tr V or λ_max", trial_name(t), t.seed));
                    self.complete(k, None);
                }
            }
        }
    }

    /// Summarises live trial k (removing it, with its run and engine).
    fn complete(&mut self, k: usize, measurement: Option<&Measurement>) {
        let t = self.live.remove(k);
        let trial = &self.trials[t.index];
        let result = TrialResult::from_run(trial, &t.run, measurement, &t.engine_name, t.ms_per_step(trial));
        self.outcomes[t.index] = Some(Ok(result));
        self.refresh_summary();
    }

    fn refresh_summary(&mut self) {
        self.summary = match &self.drift {
            Some(d) => match &d.report {
                Some(r) => {
                    Summary { table: drift::markdown(r), verdicts: if d.is_complete() { vec![drift::verdict(r)] } else { Vec::new() }, panels: drift_panels(r) }
                }
                None => Summary::default(),
            },
            None => {
                let results = self.results();
                Summary {
                    table: markdown_table(self.experiment, &results),
                    verdicts: if results.is_empty() { Vec::new() } else { verdicts(self.experiment, &results) },
                    panels: experiment_panels(self.experiment, &results),
                }
            }
        };
    }

    /// The results as the CLI writes them (`trials`, `results`, `verdicts`; `report` for the
    /// drift check), with what differs in the app: the engine, failures, whether it completed.
    pub fn json(&self) -> String {
        let mut doc = match self.drift_report() {
            Some(report) => serde_json::json!({ "report": report }),
            None => serde_json::json!({ "trials": self.trials, "results": self.results() }),
        };
        doc["experiment"] = serde_json::json!(self.experiment.name());
        doc["options"] = serde_json::json!(self.options);
        doc["verdicts"] = serde_json::json!(self.summary.verdicts);
        doc["engine"] = serde_json::json!(self.engine_describe());
        doc["wall_time_s"] = serde_json::json!(self.elapsed().as_secs_f64());
        doc["complete"] = serde_json::json!(self.state == JobState::Finished);
        doc["failures"] = serde_json::json!(self.failures().into_iter().map(|(t, e)| format!("{t}: {e}")).collect::<Vec<_>>());
        doc["ms_per_step"] = serde_json::json!(MS_PER_STEP_NOTE);
        serde_json::to_string_pretty(&doc).expect("JSON values serialise")
    }

    /// The Markdown section, as the CLI writes it (without the figure, which is a PNG there).
    pub fn markdown(&self) -> String {
        let exp = self.experiment;
        let state = match self.state {
            JobState::Finished => String::new(),
            JobState::Running => format!(" — in progress, {} of {} done", self.done(), self.total()),
            JobState::Stopped => format!(" — stopped after {} of {}", self.done(), self.total()),
        };
        let findings: String = self.summary.verdicts.iter().map(|v| format!("- {v}\n")).collect();
        let failures: String = self.failures().iter().map(|(t, e)| format!("- {t}: {e}\n")).collect();
        let mut s = format!(
            "## {}\n\n{}\n\nSeeds: {}{}; engine: {}; run in the SAM lab app{state}; wall time {:.1} s. ms/step: {MS_PER_STEP_NOTE}\n\n{}\n\n{}\n",
            exp.name(),
            exp.describe(),
            self.options.seeds,
            if self.options.quick { " (quick)" } else { "" },
            self.engine_describe(),
            self.elapsed().as_secs_f64(),
            paper_reference(exp),
            self.summary.table
        );
        if !findings.is_empty() {
            s.push_str(&format!("\nWhat these numbers say:\n\n{findings}"));
        }
        if !failures.is_empty() {
            s.push_str(&format!("\nFailed trials:\n\n{failures}"));
        }
        s
    }
}

/// How the app measures ms/step (the CLI times steps with `bench`).
pub const MS_PER_STEP_NOTE: &str = "measured by the app while training: on the CPU engine the time inside the run's step calls (evaluations included, except for `cost`, where steps alone are timed), on the GPU engine the wall time from start to end, frame pacing included; the CLI times steps with `samlab bench` instead";

#[cfg(test)]
mod tests {
    use super::*;

    fn run_to_end(job: &mut ExperimentJob) {
        let start = Instant::now();
        while job.is_running() && start.elapsed() < Duration::from_secs(300) {
            job.tick(Duration::from_millis(2));
            assert!(job.live_runs() <= GPU_PARALLEL + MAX_WAITING);
            if job.live.iter().any(|t| t.phase == Phase::Measuring) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(job.state, JobState::Finished, "{:?}", job.problems);
    }

    /// Everything but the timings (wall-clock dependent by nature).
    fn untimed(mut r: TrialResult) -> TrialResult {
        r.ms_per_step = 0.0;
        r.seconds_to_target = None;
        r
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_quick_experiment_ticked_live_gives_the_clis_numbers() {
        let mut job = ExperimentJob::start(Experiment::NoiseTrace, 1, true, &EngineChoice::cpu("test"));
        assert_eq!(job.options.backend, Backend::Cpu);
        assert_eq!(job.total(), 4);
        run_to_end(&mut job);
        assert_eq!(job.live_runs(), 0);
        assert!(job.problems.is_empty(), "{:?}", job.problems);
        let live = job.results();
        assert_eq!(live.len(), 4);
        for (trial, got) in job.trials.iter().zip(&live) {
            let cli = crate::experiments::runner::run_trial(trial).unwrap();
            assert!(got.trace_v.is_some() && got.lambda_max.is_some() && got.ms_per_step > 0.0);
            assert_eq!(untimed(got.clone()), untimed(cli), "{}", trial.series);
        }
        assert_eq!(job.summary().table, markdown_table(Experiment::NoiseTrace, &live));
        assert_eq!(job.summary().verdicts, verdicts(Experiment::NoiseTrace, &live));
        assert_eq!(job.summary().panels.len(), 3);
        let json: serde_json::Value = serde_json::from_str(&job.json()).unwrap();
        assert_eq!(json["trials"].as_array().unwrap().len(), 4);
        assert_eq!(json["results"].as_array().unwrap().len(), 4);
        assert!(json["verdicts"].as_array().is_some_and(|v| !v.is_empty()));
        assert!(job.markdown().contains("| SGD | – |"));
    }

    /// The GPU engine on lavapipe (or a real GPU): two trials at a time, each with one submission
    /// in flight, weights read back asynchronously; `cost` compares both engines. Skips without
    /// an adapter unless SAMLAB_REQUIRE_GPU=1.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_quick_experiment_runs_on_the_gpu_engine_without_waiting() {
        let ctx = match crate::engine::gpu::GpuContext::request_blocking() {
            Ok(ctx) => ctx,
            Err(e) if std::env::var("SAMLAB_REQUIRE_GPU").is_ok_and(|v| v == "1") => panic!("SAMLAB_REQUIRE_GPU=1 but {e}"),
            Err(e) => return eprintln!("skipped: no GPU adapter ({e})"),
        };
        let mut engine = EngineChoice::with_gpu(ctx);
        engine.preference = Backend::Gpu;
        let mut job = ExperimentJob::start(Experiment::NoiseTrace, 1, true, &engine);
        assert_eq!((job.options.backend, job.parallel), (Backend::Gpu, GPU_PARALLEL));
        // No timing: a tick that waited on the device would never return with work in flight.
        let mut returned_while_busy = false;
        let mut two_at_once = false;
        let start = Instant::now();
        while job.is_running() && start.elapsed() < Duration::from_secs(300) {
            job.tick(Duration::from_millis(2));
            returned_while_busy |= job.live.iter().any(|t| t.phase == Phase::Training && t.run.is_busy());
            two_at_once |= job.live.iter().filter(|t| t.phase == Phase::Training).count() == 2;
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(job.state, JobState::Finished, "{:?}", job.problems);
        assert!(job.problems.is_empty(), "{:?}", job.problems);
        assert!(returned_while_busy && two_at_once);
        let results = job.results();
        assert_eq!(results.len(), 4);
        for (trial, r) in job.trials.iter().zip(&results) {
            assert!(r.engine.starts_with("GPU"), "{}", r.engine);
            assert!(r.trace_v.is_some_and(f64::is_finite) && r.final_test_acc > 0.5, "{r:?}");
            assert_eq!(r.steps, trial.config.epochs * 10);
        }
        let cost = trials(Experiment::Cost, &ExperimentJob::start(Experiment::Cost, 1, true, &engine).options);
        assert!(cost.iter().any(|t| t.series.starts_with("cpu: ")) && cost.iter().any(|t| t.series.starts_with("gpu: ")));
    }

    #[test]
    fn stop_drops_every_run_and_keeps_the_results_so_far() {
        let mut job = ExperimentJob::start(Experiment::LabelNoise, 1, true, &EngineChoice::cpu("test"));
        while job.done() < 1 {
            job.tick(Duration::from_millis(2));
        }
        job.tick(Duration::from_millis(1));
        assert!(job.live_runs() > 0, "the next trial is under way");
        job.stop();
        assert_eq!((job.state, job.live_runs()), (JobState::Stopped, 0));
        let done = job.done();
        assert!(done >= 1 && done < job.total());
        job.tick(Duration::from_millis(5));
        assert_eq!((job.live_runs(), job.done()), (0, done), "a stopped job does nothing");
        assert_eq!(job.results().len(), done);
        assert!(job.markdown().contains("stopped after"));
    }

    #[test]
    fn a_failed_trial_is_reported_and_the_experiment_goes_on() {
        let mut job = ExperimentJob::start(Experiment::LabelNoise, 1, true, &EngineChoice::cpu("test"));
        // Trial 0 cannot be built (m must divide the batch); trial 1 diverges (w ← −4·w every
        // step from the weight decay alone).
        job.trials[0].config.optimizer.m = 7;
        job.trials[0].config.optimizer.kind = crate::config::OptimizerKind::Msam;
        job.trials[1].config.optimizer.lr = 10.0;
        job.trials[1].config.optimizer.weight_decay = 0.5;
        job.trials[1].config.optimizer.momentum = 0.9;
        job.trials.truncate(3);
        job.outcomes.truncate(3);
        run_to_end(&mut job);
        assert_eq!(job.failures().len(), 1);
        assert!(job.problems.iter().any(|p| p.contains("failed") && p.contains("optimizer.m")), "{:?}", job.problems);
        assert!(job.problems.iter().any(|p| p.contains("diverged")), "{:?}", job.problems);
        let results = job.results();
        assert_eq!(results.len(), 2);
        assert!(results[0].diverged && !results[1].diverged);
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_drift_check_runs_on_the_worker_and_matches_the_cli() {
        let mut job = ExperimentJob::start(Experiment::DriftCheck, 1, true, &EngineChoice::cpu("test"));
        assert_eq!(job.total(), 6);
        let start = Instant::now();
        while job.is_running() && start.elapsed() < Duration::from_secs(120) {
            job.tick(Duration::from_millis(2));
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!((job.state, job.done()), (JobState::Finished, 6));
        let cli = drift_check(&DriftConfig::new(true, 0));
        let got = job.drift_report().unwrap();
        assert_eq!(serde_json::to_value(got).unwrap(), serde_json::to_value(&cli).unwrap());
        assert_eq!(job.summary().verdicts, vec![drift::verdict(&cli)]);
        let json: serde_json::Value = serde_json::from_str(&job.json()).unwrap();
        assert_eq!(json["report"]["rows"].as_array().unwrap().len(), 6);
    }

    /// The browser's path, natively: the drift check one m per piece (each piece draws from the
    /// seed's stream afresh, so the numbers differ from the CLI's but the check is as valid).
    #[test]
    fn the_drift_check_in_pieces_of_one_m_agrees_with_the_sde() {
        let mut d = DriftJob::new(true, true);
        assert_eq!(d.chunks.len(), 6);
        let mut pieces = 0;
        let start = Instant::now();
        while !d.is_complete() && start.elapsed() < Duration::from_secs(120) {
            pieces += usize::from(d.advance());
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(pieces, 6);
        let r = d.report.unwrap();
        let ms: Vec<usize> = r.rows.iter().map(|row| row.m).collect();
        assert_eq!(ms, [1, 2, 4, 8, 16, 64]);
        let whole = drift_check(&DriftConfig::new(true, 0));
        assert_eq!((r.trace_v, r.grad_norm), (whole.trace_v, whole.grad_norm));
        assert_eq!(r.rows[0].measured, whole.rows[0].measured, "the first m draws the same stream");
        assert!(drift::verdict(&r).contains("HOLDS within"), "{}", drift::verdict(&r));
    }

    /// The browser's lighter end-of-training measurement, natively: the same quantities, finite.
    #[test]
    fn the_light_measurement_gives_every_metric() {
        let trial = &trials(Experiment::NoiseTrace, &Options { seeds: 1, quick: true, ..Options::default() })[0];
        let (data, init) = prepare(&trial.config).unwrap();
        let m = measure_trial(&trial.config, &data, 0, &init, true).unwrap();
        assert_eq!(m.n_eval, 256);
        assert!(m.trace_v > 0.0 && m.lambda_max.is_finite() && m.sharpness.is_finite() && !m.m_curve.is_empty(), "{m:?}");
    }

    #[test]
    fn results_given_back_rebuild_the_same_summary() {
        let opts = Options { seeds: 2, quick: true, ..Options::default() };
        let list = trials(Experiment::MSweep, &opts);
        let results: Vec<TrialResult> = list
            .iter()
            .map(|t| TrialResult { series: t.series.clone(), x: t.x, seed: t.seed, final_test_acc: 0.5 + 0.01 * t.seed as f64, ..Default::default() })
            .collect();
        let job = ExperimentJob::from_results(Experiment::MSweep, opts, list, results.clone());
        assert_eq!((job.state, job.done(), job.total(), job.live_runs()), (JobState::Finished, 10, 10, 0));
        assert_eq!(job.results(), results);
        assert_eq!(job.summary().table, markdown_table(Experiment::MSweep, &results));
    }
}
