//! One training run: plans steps (seeded batch order, learning-rate schedule), feeds them to an
//! engine without blocking, evaluates at the configured cadence, and keeps the history. Its
//! live hyperparameters may change while it trains (`set_hyperparameters`: recorded in the
//! history; `reset` returns to the settings of the start). The CLI drives it to the end; the
//! app pumps it a little every frame.

use crate::config::{OptimizerConfig, RunConfig};
use crate::data::{BatchOrder, Dataset};
use crate::engine::{Engine, ParamsTag, Request, Response, StepPlan, StepReport};
use crate::error::{Error, Result};
use crate::model::mlp::Evaluation;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub step: u64,
    pub lr: f64,
    pub loss: f64,
    pub batch_acc: f64,
    pub perturbed_loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    pub perturbation_norm: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ess: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EvalRecord {
    /// Steps completed when evaluated.
    pub step: u64,
    pub epoch: f64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    /// Best test accuracy so far (what early stopping would give).
    pub best_test_acc: f64,
    /// Accuracy on the original training labels (with label noise only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clean_train_acc: Option<f64>,
    /// Share of flipped training samples predicted with their flipped label (with label noise only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memorized: Option<f64>,
}

/// A hyperparameter changed while the run trained: from `step` on (the first step planned after
/// the change), `field` went from `old` to `new` (values as the config's JSON writes them).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ChangeRecord {
    pub step: u64,
    pub field: String,
    pub old: String,
    pub new: String,
}

/// Most records a history keeps of each series (steps, evaluations, measurements); beyond it
/// the series is decimated (see `History`).
pub const HISTORY_CAP: usize = 10_000;
/// Most measurements kept (each holds a curve and RW-SAM diagnostics).
pub const MEASUREMENT_CAP: usize = 1_000;

/// What a run recorded. Each series is bounded: when one holds more than its cap, every other
/// record goes (those at multiples of twice its spacing in steps stay, starting at step 0),
/// the spacing doubles and later records are kept only on that grid; the latest record is
/// always kept as well. `decimated` then says so, with the spacings now in force.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    pub steps: Vec<StepRecord>,
    pub evals: Vec<EvalRecord>,
    /// Sharpness metrics every `measure_every` steps (see `metrics::Measurement`).
    #[serde(default)]
    pub measurements: Vec<crate::metrics::Measurement>,
    /// Present when a series was decimated: how, and the spacing of what remains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimated: Option<Decimation>,
    /// Live changes of the hyperparameters, in order (never decimated; the latest `HISTORY_CAP`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeRecord>,
    #[serde(skip)]
    thin: [Thin; 3],
    /// Evaluations recorded so far, decimated or not (the lab's "has a new evaluation").
    #[serde(skip)]
    evals_seen: u64,
}

/// The decimation of a history's series, as the JSON reports it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Decimation {
    pub rule: String,
    pub cap: usize,
    /// Steps between kept step records (1: all kept).
    pub steps_every: u64,
    /// Steps between kept evaluations (0: all kept).
    pub evals_every: u64,
    /// Steps between kept measurements (0: all kept).
    pub measurements_every: u64,
}

/// The thinning state of one series: the spacing in steps of kept records (0: all kept so
/// far), and whether the last record is off that grid (kept only as the latest).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Thin {
    every: u64,
    off_grid: bool,
}

/// Appends `rec` to a series thinned by `thin` (see `History`).
fn push_thinned<T>(v: &mut Vec<T>, rec: T, thin: &mut Thin, cap: usize, step_of: impl Fn(&T) -> u64) {
    if thin.off_grid {
        v.pop();
    }
    let step = step_of(&rec);
    thin.off_grid = thin.every > 0 && !step.is_multiple_of(thin.every);
    v.push(rec);
    if v.len() > cap.max(4) {
        // The spacing so far: the first gap (records start at step 0 on a regular grid).
        let base = if thin.every == 0 { v.get(1).map_or(1, |r| step_of(r).saturating_sub(step_of(&v[0])).max(1)) } else { thin.every };
        let every = base.saturating_mul(2);
        let last = v.len() - 1;
        let mut i = 0;
        v.retain(|r| {
            let keep = step_of(r).is_multiple_of(every) || i == last;
            i += 1;
            keep
        });
        thin.every = every;
        thin.off_grid = v.last().is_some_and(|r| !step_of(r).is_multiple_of(every));
    }
}

/// Equal when the records are (the thinning state is how they were kept, not what they are).
impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        (&self.steps, &self.evals, &self.measurements, &self.decimated, &self.changes)
            == (&other.steps, &other.evals, &other.measurements, &other.decimated, &other.changes)
    }
}

impl History {
    pub fn last_eval(&self) -> Option<&EvalRecord> {
        self.evals.last()
    }

    /// Evaluations recorded since the start (more than `evals.len()` once decimated).
    pub fn evals_seen(&self) -> u64 {
        self.evals_seen
    }

    pub fn push_step(&mut self, rec: StepRecord) {
        push_thinned(&mut self.steps, rec, &mut self.thin[0], HISTORY_CAP, |r| r.step);
        self.note_decimation();
    }

    pub fn push_eval(&mut self, rec: EvalRecord) {
        self.evals_seen += 1;
        push_thinned(&mut self.evals, rec, &mut self.thin[1], HISTORY_CAP, |r| r.step);
        self.note_decimation();
    }

    pub fn push_measurement(&mut self, m: crate::metrics::Measurement) {
        push_thinned(&mut self.measurements, m, &mut self.thin[2], MEASUREMENT_CAP, |r| r.step);
        self.note_decimation();
    }

    /// Records a live change; a second change of the same field at the same step replaces the
    /// first (a change and its undo before the next step leave nothing).
    pub fn push_change(&mut self, rec: ChangeRecord) {
        if let Some(last) = self.changes.iter_mut().rev().find(|c| c.step == rec.step && c.field == rec.field) {
            last.new = rec.new;
            if last.new == last.old {
                self.changes.retain(|c| c.old != c.new);
            }
            return;
        }
        self.changes.push(rec);
        if self.changes.len() > HISTORY_CAP {
            self.changes.remove(0);
        }
    }

    fn note_decimation(&mut self) {
        if self.thin.iter().all(|t| t.every == 0) {
            return;
        }
        self.decimated = Some(Decimation {
            rule: format!(
                "beyond {HISTORY_CAP} records of a series ({MEASUREMENT_CAP} measurements) every other record was dropped, repeatedly: \
                 the records kept lie on a grid of the given spacing in steps, plus the latest"
            ),
            cap: HISTORY_CAP,
            steps_every: self.thin[0].every.max(1),
            evals_every: self.thin[1].every,
            measurements_every: self.thin[2].every,
        });
    }
}

/// Summarises full-set evaluations, including the label-noise views.
pub fn eval_record(step: u64, epoch: f64, data: &Dataset, train: &Evaluation, test: &Evaluation, best_before: f64) -> EvalRecord {
    let test_acc = test.accuracy(&data.test_y);
    let noisy = !data.flipped.is_empty();
    EvalRecord {
        step,
        epoch,
        train_loss: train.mean_loss(),
        train_acc: train.accuracy(&data.train_y),
        test_loss: test.mean_loss(),
        test_acc,
        best_test_acc: if test_acc.is_nan() { best_before } else { best_before.max(test_acc) },
        clean_train_acc: noisy.then(|| train.accuracy(&data.clean_train_y)),
        memorized: noisy.then(|| {
            let hits = data.flipped.iter().filter(|&&i| train.predictions[i] == data.train_y[i]).count();
            hits as f64 / data.flipped.len() as f64
        }),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    Running,
    Finished,
    /// Stopped because the loss or weights stopped being finite; the message says where.
    Diverged(String),
}

pub struct Run {
    /// The settings in force (live changes included: see `set_hyperparameters`).
    pub config: RunConfig,
    /// The settings the run started with, which `reset` returns to.
    initial: RunConfig,
    pub data: Arc<Dataset>,
    pub init: Arc<Vec<f32>>,
    engine: Box<dyn Engine>,
    pub history: History,
    pub status: RunStatus,
    submitted: u64,
    completed: u64,
    total: u64,
    steps_per_epoch: u64,
    eval_every: u64,
    next_eval: u64,
    order: BatchOrder,
    pending_params: Vec<(ParamsTag, Vec<f32>)>,
    /// The learning rates of the steps submitted and not yet recorded, in step order.
    planned_lr: VecDeque<(u64, f64)>,
    /// Measurement hook: the next step to measure at (u64::MAX: none), and the CPU measurer,
    /// built at the first measurement.
    next_measure: u64,
    measurer: Option<Box<crate::metrics::RunMeasurer>>,
    /// The latest RW-SAM step's scores and Gibbs weights (the app's histogram).
    pub last_rwsam: Option<crate::engine::RwReport>,
    /// Weights read back at evaluations, for the landscape's projected trajectory (app only).
    pub snapshots: Vec<(u64, Vec<f32>)>,
    snapshot_cap: usize,
}

impl Run {
    pub fn new(config: RunConfig, data: Arc<Dataset>, init: Arc<Vec<f32>>, engine: Box<dyn Engine>) -> Result<Self> {
        config.validate()?;
        let steps_per_epoch = (data.n_train() / config.batch) as u64;
        if steps_per_epoch == 0 {
            return Err(Error::invalid("batch", config.batch, format!("≤ the {} training samples", data.n_train())));
        }
        let total = config.steps.unwrap_or(config.epochs * steps_per_epoch);
        let order = BatchOrder::new(data.n_train(), config.batch, config.seed);
        let eval_every = if config.eval_every == 0 { steps_per_epoch } else { config.eval_every };
        let measure_every = config.measure_every;
        Ok(Self {
            initial: config.clone(),
            config,
            data,
            init,
            engine,
            history: History::default(),
            status: RunStatus::Running,
            submitted: 0,
            completed: 0,
            total,
            steps_per_epoch,
            eval_every,
            next_eval: 0,
            order,
            pending_params: Vec::new(),
            planned_lr: VecDeque::new(),
            snapshots: Vec::new(),
            snapshot_cap: 0,
            last_rwsam: None,
            next_measure: if measure_every > 0 { 0 } else { u64::MAX },
            measurer: None,
        })
    }

    pub fn engine_name(&self) -> String {
        self.engine.describe()
    }

    pub fn completed_steps(&self) -> u64 {
        self.completed
    }

    pub fn total_steps(&self) -> u64 {
        self.total
    }

    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    pub fn is_done(&self) -> bool {
        self.status != RunStatus::Running
    }

    /// Work submitted and not yet collected (`pump` submits nothing until it is back).
    pub fn is_busy(&self) -> bool {
        self.engine.in_flight() > 0 || self.submitted > self.completed
    }

    /// The training-set indices of step t's batch.
    pub fn batch_indices(&mut self, t: u64) -> Vec<u32> {
        self.order.indices(t)
    }

    fn plan(&mut self, t: u64) -> StepPlan {
        let o = &self.config.optimizer;
        let lr = o.schedule.lr(o.lr, t, self.total);
        self.planned_lr.push_back((t, lr));
        StepPlan { step: t, indices: self.batch_indices(t), lr }
    }

    /// The learning rate step `step` was planned with (the schedule's now, if it was not planned
    /// here).
    fn planned_lr(&mut self, step: u64) -> f64 {
        while self.planned_lr.front().is_some_and(|&(t, _)| t < step) {
            self.planned_lr.pop_front();
        }
        match self.planned_lr.front() {
            Some(&(t, lr)) if t == step => lr,
            _ => self.config.optimizer.schedule.lr(self.config.optimizer.lr, step, self.total),
        }
    }

    /// The settings the run started with (what `reset` returns to).
    pub fn initial_config(&self) -> &RunConfig {
        &self.initial
    }

    /// Changes the live hyperparameters (`hyper`: η, μ, weight decay, schedule, ρ, ξ and
    /// RW-SAM's λ, δ, target ESS, normalisation, descent) from the next step planned on, without
    /// a reset. The new settings are validated like a new run's (the error names the field); a
    /// structural change (optimizer, m, estimator) is refused. Steps already submitted keep
    /// the settings they were submitted with. Each changed field is recorded in the history
    /// at the first step that uses it; before the first step the settings simply become the
    /// run's initial ones. Returns the fields changed.
    pub fn set_hyperparameters(&mut self, opt: &OptimizerConfig) -> Result<usize> {
        let mut cfg = self.config.clone();
        cfg.optimizer = opt.clone();
        cfg.validate()?;
        crate::hyper::check_structure(&self.config.optimizer, opt)?;
        let diff = crate::hyper::diff(&self.config.optimizer, opt);
        if diff.is_empty() {
            return Ok(0);
        }
        self.engine.set_hyperparameters(opt)?;
        let step = self.submitted;
        if step == 0 {
            self.initial.optimizer = opt.clone();
        } else {
            for (field, old, new) in &diff {
                self.history.push_change(ChangeRecord { step, field: field.clone(), old: old.clone(), new: new.clone() });
            }
        }
        self.config.optimizer = opt.clone();
        Ok(diff.len())
    }

    /// Submits up to `max_steps` more steps (stopping at the next evaluation, which is submitted
    /// too). Does nothing while earlier work is in flight, so work never piles up on a GPU.
    pub fn pump(&mut self, max_steps: u64) -> Result<()> {
        if self.is_done() || self.engine.in_flight() > 0 || self.submitted > self.completed {
            return Ok(());
        }
        if self.next_eval == self.submitted && self.next_eval <= self.total && self.history.evals.last().is_none_or(|e| e.step != self.submitted) {
            self.engine.submit(Request::Evaluate { step: self.submitted })?;
            if self.snapshot_cap > 0 {
                self.engine.submit(Request::ReadParams { tag: ParamsTag::Snapshot(self.submitted) })?;
            }
            self.next_eval = if self.submitted == self.total { u64::MAX } else { (self.submitted + self.eval_every).min(self.total) };
            return Ok(());
        }
        if self.next_measure == self.submitted && self.next_measure <= self.total {
            // Measurement hook: read the weights back; `record` measures them on the CPU.
            self.engine.submit(Request::ReadParams { tag: ParamsTag::Measure(self.submitted) })?;
            let every = self.config.measure_every.max(1);
            self.next_measure = if self.submitted == self.total { u64::MAX } else { (self.submitted + every).min(self.total) };
            return Ok(());
        }
        let end = (self.submitted + max_steps.max(1)).min(self.next_eval).min(self.next_measure).min(self.total);
        if end > self.submitted {
            let plans: Vec<StepPlan> = (self.submitted..end).map(|t| self.plan(t)).collect();
            self.submitted = end;
            self.engine.submit(Request::Steps(plans))?;
        }
        Ok(())
    }

    /// Collects finished work into the history; returns how many responses arrived.
    pub fn collect(&mut self) -> Result<usize> {
        let responses = self.engine.poll()?;
        Ok(self.record_all(responses))
    }

    /// `collect` within the caller's share of a frame (`Engine::poll_until`).
    pub fn collect_until(&mut self, until: web_time::Instant) -> Result<usize> {
        let responses = self.engine.poll_until(until)?;
        Ok(self.record_all(responses))
    }

    fn record_all(&mut self, responses: Vec<Response>) -> usize {
        let n = responses.len();
        for r in responses {
            self.record(r);
        }
        if self.status == RunStatus::Running
            && self.completed >= self.total
            && self.next_eval == u64::MAX
            && self.next_measure == u64::MAX
            && self.engine.in_flight() == 0
        {
            self.status = RunStatus::Finished;
        }
        n
    }

    fn record(&mut self, response: Response) {
        match response {
            Response::Step { step, report } => self.record_step(step, report),
            Response::Evaluated { step, train, test } => {
                let best = self.history.evals.last().map_or(0.0, |e| e.best_test_acc);
                let epoch = step as f64 / self.steps_per_epoch as f64;
                let rec = eval_record(step, epoch, &self.data, &train, &test, best);
                if !rec.train_loss.is_finite() && self.status == RunStatus::Running {
                    self.status = RunStatus::Diverged(Error::Diverged { step, what: "the training loss".into() }.to_string());
                }
                self.history.push_eval(rec);
            }
            Response::Params { tag: ParamsTag::Measure(step), params } => self.record_measurement(step, &params),
            Response::Params { tag: ParamsTag::Snapshot(step), params } => self.record_snapshot(step, params),
            Response::Params { tag, params } => self.pending_params.push((tag, params)),
        }
    }

    /// Keeps the weights at every evaluation (at most `cap`, thinned evenly as training goes
    /// on), for a landscape's projected trajectory; 0 turns it off.
    pub fn keep_snapshots(&mut self, cap: usize) {
        self.snapshot_cap = cap;
        if cap == 0 {
            self.snapshots.clear();
        }
    }

    fn record_snapshot(&mut self, step: u64, params: Vec<f32>) {
        self.snapshots.push((step, params));
        if self.snapshots.len() > self.snapshot_cap.max(2) {
            // Every other snapshot goes, the latest stays: spacing doubles, the start is kept.
            let last = self.snapshots.pop().expect("more than two");
            let mut k = 0;
            self.snapshots.retain(|_| {
                k += 1;
                k % 2 == 1
            });
            self.snapshots.push(last);
        }
    }

    /// The measurement hook: every metric of `metrics::measure` on the CPU (f32) at the weights
    /// read back after `step` steps, on the run's fixed evaluation subset. Blocks for its duration.
    fn record_measurement(&mut self, step: u64, params: &[f32]) {
        if self.measurer.is_none() {
            match crate::metrics::RunMeasurer::new(&self.config, &self.data) {
                Ok(m) => self.measurer = Some(Box::new(m)),
                Err(e) => {
                    log::warn!("measurements off: {e}");
                    return;
                }
            }
        }
        let measurer = self.measurer.as_mut().expect("built above");
        match measurer.measure(step, params) {
            Ok(m) => self.history.push_measurement(m),
            Err(e) => log::warn!("measurement at step {step} skipped: {e}"),
        }
    }

    fn record_step(&mut self, step: u64, report: StepReport) {
        let lr = self.planned_lr(step);
        self.completed = self.completed.max(step + 1);
        if !report.loss.is_finite() && self.status == RunStatus::Running {
            self.status = RunStatus::Diverged(Error::Diverged { step, what: "the batch loss".into() }.to_string());
        }
        self.history.push_step(StepRecord {
            step,
            lr,
            loss: report.loss,
            batch_acc: report.correct as f64 / self.config.batch as f64,
            perturbed_loss: report.perturbed_loss,
            grad_norm: report.grad_norm,
            perturbation_norm: report.perturbation_norm,
            ess: report.rwsam.as_ref().map(|r| r.ess),
            lambda: report.rwsam.as_ref().map(|r| r.lambda),
        });
        if report.rwsam.is_some() {
            self.last_rwsam = report.rwsam;
        }
    }

    /// Asks for the current parameters; they arrive through `take_params`.
    pub fn request_params(&mut self, tag: ParamsTag) -> Result<()> {
        self.engine.submit(Request::ReadParams { tag })
    }

    pub fn take_params(&mut self, tag: ParamsTag) -> Option<Vec<f32>> {
        let i = self.pending_params.iter().position(|(t, _)| *t == tag)?;
        Some(self.pending_params.swap_remove(i).1)
    }

    /// Back to the initial weights and the settings the run started with (live changes undone),
    /// zero momentum, empty history.
    pub fn reset(&mut self) -> Result<()> {
        self.engine.finish()?;
        self.engine.set_params(&self.init)?;
        self.engine.set_hyperparameters(&self.initial.optimizer)?;
        self.config = self.initial.clone();
        self.planned_lr.clear();
        self.history = History::default();
        self.snapshots.clear();
        self.last_rwsam = None;
        self.status = RunStatus::Running;
        self.submitted = 0;
        self.completed = 0;
        self.next_eval = 0;
        self.next_measure = if self.config.measure_every > 0 { 0 } else { u64::MAX };
        Ok(())
    }

    /// Trains until `steps` steps are done (or the run ends), blocking (tests): the point at
    /// which a test changes settings.
    pub fn run_until(&mut self, steps: u64, chunk: u64) -> Result<()> {
        while !self.is_done() && self.completed < steps {
            self.pump(chunk.min(steps - self.completed))?;
            for r in self.engine.finish()? {
                self.record(r);
            }
            self.collect()?;
        }
        Ok(())
    }

    /// Runs to the end, blocking (CLI, tests). `progress` sees the steps completed so far.
    pub fn run_to_end(&mut self, chunk: u64, mut progress: impl FnMut(&Run)) -> Result<()> {
        while !self.is_done() {
            self.pump(chunk)?;
            for r in self.engine.finish()? {
                self.record(r);
            }
            self.collect()?;
            progress(self);
        }
        Ok(())
    }

    /// The parameters now, blocking (CLI, tests).
    pub fn params_blocking(&mut self) -> Result<Vec<f32>> {
        self.request_params(ParamsTag::Blocking)?;
        for r in self.engine.finish()? {
            self.record(r);
        }
        self.take_params(ParamsTag::Blocking).ok_or_else(|| Error::Gpu("the engine did not return the parameters".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetName;
    use crate::engine::cpu::CpuEngine;
    use crate::setup::spec_for;

    fn moons_run(epochs: u64) -> Run {
        let mut cfg = RunConfig { epochs, batch: 32, ..RunConfig::default() };
        cfg.dataset.name = DatasetName::Moons;
        cfg.dataset.samples = 200;
        cfg.model.hidden = vec![8];
        let data = Arc::new(Dataset::load(&cfg.dataset, cfg.seed).unwrap());
        let init = Arc::new(spec_for(&cfg, &data).init(cfg.seed));
        let engine = Box::new(CpuEngine::<f32>::new(&cfg, data.clone(), &init).unwrap());
        Run::new(cfg, data, init, engine).unwrap()
    }

    #[test]
    fn snapshots_are_the_weights_at_evaluations_thinned_to_the_cap() {
        let mut run = moons_run(20);
        run.keep_snapshots(8);
        run.run_to_end(7, |_| {}).unwrap();
        let steps: Vec<u64> = run.snapshots.iter().map(|(s, _)| *s).collect();
        assert!(steps.len() <= 8 && steps.len() >= 4, "{steps:?}");
        assert_eq!(steps[0], 0);
        assert_eq!(*steps.last().unwrap(), run.total_steps());
        assert!(steps.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(&run.snapshots[0].1, &*run.init);
        let now = run.params_blocking().unwrap();
        assert_eq!(run.snapshots.last().unwrap().1, now);
        run.reset().unwrap();
        assert!(run.snapshots.is_empty());
    }

    #[test]
    fn the_latest_rwsam_weights_are_kept_and_cleared_by_reset() {
        let mut run = moons_run(1);
        assert!(run.last_rwsam.is_none());
        run.config.optimizer.kind = crate::config::OptimizerKind::Rwsam;
        let cfg = run.config.clone();
        let engine = Box::new(CpuEngine::<f32>::new(&cfg, run.data.clone(), &run.init).unwrap());
        let mut run = Run::new(cfg, run.data.clone(), run.init.clone(), engine).unwrap();
        run.run_to_end(3, |_| {}).unwrap();
        let rw = run.last_rwsam.clone().expect("RW-SAM reports its weights");
        assert_eq!(rw.weights.len(), 32);
        assert!((rw.weights.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        assert_eq!(Some(rw.ess), run.history.steps.last().unwrap().ess);
        run.reset().unwrap();
        assert!(run.last_rwsam.is_none());
    }

    #[test]
    fn a_long_history_is_decimated_onto_a_grid_and_says_so() {
        let mut h = History::default();
        for step in 0..100_000u64 {
            h.push_step(StepRecord { step, ..StepRecord::default() });
            if step % 3 == 0 {
                h.push_eval(EvalRecord { step, ..EvalRecord::default() });
            }
        }
        h.push_eval(EvalRecord { step: 100_000, ..EvalRecord::default() });
        assert!(h.steps.len() <= HISTORY_CAP && h.steps.len() > HISTORY_CAP / 2, "{}", h.steps.len());
        let d = h.decimated.clone().expect("decimated");
        assert_eq!(d.steps_every, 16);
        assert!(h.steps.iter().take(h.steps.len() - 1).all(|r| r.step % 16 == 0));
        assert_eq!(h.steps[0].step, 0);
        assert_eq!(h.last_eval().unwrap().step, 100_000);
        assert!(h.evals.len() <= HISTORY_CAP && d.evals_every == 12, "{d:?}");
        assert_eq!(h.evals_seen(), 33_335);
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["decimated"]["steps_every"], 16);
        assert!(serde_json::to_value(History::default()).unwrap().get("decimated").is_none());
    }

    #[test]
    fn without_snapshots_nothing_is_read_back() {
        let mut run = moons_run(2);
        run.run_to_end(5, |_| {}).unwrap();
        assert!(run.snapshots.is_empty() && run.pending_params.is_empty());
    }
}
