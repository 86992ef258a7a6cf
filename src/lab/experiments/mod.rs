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

mod drift_job;
mod trial;

use super::measuring::app_measurer;
use super::pacing::{Pacer, frame_shares, round_robin};
use crate::config::{Backend, RunConfig};
use crate::data::Dataset;
use crate::engine::{EngineChoice, ParamsTag};
use crate::error::{Error, Result};
use crate::experiments::drift::{self, DriftReport};
use crate::experiments::panels::{Panel, drift_panels, experiment_panels};
use crate::experiments::{Experiment, Options, Trial, TrialResult, Verdict, markdown_table, paper_reference, split_note, trials, verdict_table, verdicts};
use crate::metrics::Measurement;
use crate::platform::{BACKGROUND_WORKERS, Worker};
use crate::run::{Run, RunStatus};
use crate::setup::prepare;
use drift_job::DriftJob;
use std::sync::Arc;
pub use trial::trial_name;
use trial::{LiveTrial, Phase};
use web_time::{Duration, Instant};

/// Trials training at once on the CPU engine (they share the UI thread: one at a time).
const CPU_PARALLEL: usize = 1;
/// Trials training at once on a GPU: one can submit while the other waits for its readback.
const GPU_PARALLEL: usize = 2;
/// Trained trials waiting for their measurement, at most (each still holds its run).
const MAX_WAITING: usize = 2;

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
    /// Structured: claim, verdict, paired effect, 95 % interval, p, n, wins, and the sentence.
    pub verdicts: Vec<Verdict>,
    /// The figure: `experiment_panels` or `drift_panels`.
    pub panels: Vec<Panel>,
}

/// (trial index, config, data, step, weights) → (trial index, measurement).
type MeasureJob = (usize, RunConfig, Arc<Dataset>, u64, Vec<f32>);
type MeasureDone = (usize, std::result::Result<Measurement, String>);

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
            job.worker = Some(Worker::resumable("samlab experiment measurements", |(i, cfg, data, step, params): MeasureJob| async move {
                let measured = match app_measurer(&cfg, &data, !BACKGROUND_WORKERS) {
                    Ok(mut m) => m.measure_in_pieces(step, &params).await,
                    Err(e) => Err(e),
                };
                (i, measured.map_err(|e| e.to_string()))
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
        // In the browser the measurements go on in pieces out of the same budget (the desktop's
        // worker thread needs none of this).
        let measuring = self.worker.as_ref().is_some_and(|w| w.has_work());
        let (train, measure, _) = frame_shares(budget, measuring, false);
        let live = &mut self.live;
        round_robin(&cpu, start, train, &mut self.cursor, |k, until| {
            if let Err(e) = live[k].slice(until) {
                errors.push((k, e));
            }
        });
        self.handle_errors(errors);
        self.advance_trained();
        // What finished is collected now.
        if let Some(w) = &mut self.worker
            && measuring
        {
            w.work(Instant::now() + measure);
        }
        self.receive_measurements();
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
            pacer: Pacer::default(),
            pump_time: Duration::ZERO,
            step_time: Duration::ZERO,
            stepped: 0,
            started: Instant::now(),
            trained_after: None,
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
                    match t.run.request_params(ParamsTag::TrialEnd) {
                        Ok(()) => t.phase = Phase::AwaitingParams,
                        Err(e) => {
                            let i = self.live.remove(k).index;
                            self.fail(i, e.to_string());
                            continue;
                        }
                    }
                }
                Phase::AwaitingParams => {
                    let got = t.run.collect().map(|_| t.run.take_params(ParamsTag::TrialEnd));
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
                    verdicts: if results.is_empty() { Vec::new() } else { verdicts(self.experiment, &results, self.options.quick) },
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
        let findings: String = self.summary.verdicts.iter().map(|v| format!("- {}\n", v.text)).collect();
        let failures: String = self.failures().iter().map(|(t, e)| format!("- {t}: {e}\n")).collect();
        let mut s = format!(
            "## {}\n\n{}\n\nSeeds: {}{}; {}; engine: {}; run in the SAM lab app{state}; wall time {:.1} s. ms/step: {MS_PER_STEP_NOTE}\n\n{}\n\n{}\n",
            exp.name(),
            exp.describe(),
            if exp.is_computation() { 1 } else { self.options.seeds },
            if self.options.quick { " (quick)" } else { "" },
            split_note(exp),
            self.engine_describe(),
            self.elapsed().as_secs_f64(),
            paper_reference(exp),
            self.summary.table
        );
        if !findings.is_empty() {
            s.push_str(&format!("\nPaired differences and verdicts:\n\n{}\nWhat these numbers say:\n\n{findings}", verdict_table(&self.summary.verdicts)));
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
mod tests;
