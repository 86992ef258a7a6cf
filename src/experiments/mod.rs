//! The paper's claims as small-scale experiments (docs/ALGORITHMS.md#experiments):
//! each experiment is a list of trials (a config, a series, an x value, a seed), run to the end,
//! summarised over seeds (mean ± std) in a Markdown table and a figure. The same definitions
//! run from the CLI (`samlab experiment`) and from the app's Experiments panel.
//!
//! Architecture invariant: definitions and summaries are plain data (wasm-friendly); running
//! trials to the end and drawing PNGs is native-only (`runner`, `figure`).

pub mod drift;
pub mod escape;
pub mod panels;
pub mod rwsam_drift;
pub mod rwsam_drift_mlp;
pub mod stats;
pub mod sweep;
mod verdicts;

pub use stats::{Outcome, Verdict, verdict_table};
pub use verdicts::{QUICK_REASON, sentences, verdicts};

/// Seeds of a full run (and the CLI's default); a quick run uses `QUICK_SEEDS`.
pub const FULL_SEEDS: usize = 10;
pub const QUICK_SEEDS: usize = 3;
/// The one train/test split every trial of an experiment uses (`RunConfig::split_seed`).
pub const SPLIT_SEED: u64 = 0;

use crate::config::{Backend, DatasetName, NormEstimator, OptimizerKind, RunConfig, RwDescent};
use crate::error::{Error, Result};
use crate::metrics::Measurement;
use crate::run::{Run, RunStatus};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    MSweep,
    LabelNoise,
    NoiseTrace,
    RwsamLambda,
    Cost,
    DriftCheck,
    RwsamGrid,
    RwsamGridMnist,
    RwsamDrift,
    Escape,
}

impl Experiment {
    pub const ALL: [Experiment; 10] = [
        Experiment::MSweep,
        Experiment::LabelNoise,
        Experiment::NoiseTrace,
        Experiment::Escape,
        Experiment::RwsamLambda,
        Experiment::RwsamGrid,
        Experiment::RwsamGridMnist,
        Experiment::Cost,
        Experiment::DriftCheck,
        Experiment::RwsamDrift,
    ];

    /// Whether the app runs it live. The RW-SAM drift check is the command line's: one
    /// computation of seconds that would hold up a browser frame. So is escape: each seed
    /// chains a second phase onto the end weights of a first, which the app's list of
    /// independent trials does not express. The MNIST grid takes hours.
    pub fn in_app(self) -> bool {
        !matches!(self, Experiment::RwsamDrift | Experiment::Escape | Experiment::RwsamGridMnist)
    }

    /// Hours rather than minutes on a laptop's CPU: `experiment all` runs it only when asked
    /// (`--long`), and otherwise rebuilds its section from a recorded run if there is one.
    pub fn is_long(self) -> bool {
        self == Experiment::RwsamGridMnist
    }

    /// Not training experiments: computations of seconds, without trials (and one seed).
    pub fn is_computation(self) -> bool {
        matches!(self, Experiment::DriftCheck | Experiment::RwsamDrift)
    }

    /// Whether it is a list of independent trials, which can be planned into files, run
    /// anywhere and collected. The computations are not, nor is escape, whose second phase
    /// starts from the first one's end weights.
    pub fn has_trials(self) -> bool {
        !self.is_computation() && self != Experiment::Escape
    }

    pub fn name(self) -> &'static str {
        match self {
            Experiment::MSweep => "m-sweep",
            Experiment::LabelNoise => "label-noise",
            Experiment::NoiseTrace => "noise-trace",
            Experiment::RwsamLambda => "rwsam-lambda",
            Experiment::Cost => "cost",
            Experiment::DriftCheck => "drift-check",
            Experiment::RwsamGrid => "rwsam-grid",
            Experiment::RwsamGridMnist => "rwsam-grid-mnist",
            Experiment::RwsamDrift => "rwsam-drift",
            Experiment::Escape => "escape",
        }
    }

    /// What the experiment tests, for `--help`, the app and the Markdown header.
    pub fn describe(self) -> &'static str {
        match self {
            Experiment::MSweep => {
                "m-SAM at fixed B with m = B, B/4, B/16, …, 1, beside SGD and n-SAM: the paper claims test accuracy improves as m decreases (and n-SAM ≈ SGD); tr V and λ_max at the end explain why"
            }
            Experiment::LabelNoise => "SGD, SAM, m-SAM (m = 8) and RW-SAM at 0/20/40/60/80 % symmetric label noise (the paper's Table 4)",
            Experiment::NoiseTrace => "tr V, the trace of the gradient-noise covariance, at the end of training per optimizer (the paper's Table 6)",
            Experiment::RwsamLambda => {
                "RW-SAM over a grid of λ (exact and finite-difference norms) and of target ESS: accuracy, ESS and cost, against SAM and m-SAM"
            }
            Experiment::Cost => "ms per step and time to a target test accuracy for every optimizer on each backend",
            Experiment::DriftCheck => {
                "least squares: the Monte-Carlo mean m-USAM step against the SDE drift ∇f + ∇R_m, R_m = (ρ/2)‖∇f‖² + (ρ/2m)·tr V, for several m"
            }
            Experiment::RwsamGrid => {
                "RW-SAM with λ solved each step for a target ESS ∈ {B/2, B/4, B/16} × norm estimator × descent × sign of λ, at ρ ∈ {0.05, 0.2} and label noise ∈ {0, 0.4}, against SAM and m-SAM (m = 64, 8), paired by seed"
            }
            Experiment::RwsamGridMnist => {
                "rwsam-grid on mnist5k (4000 train / 1000 test, 784 inputs, 32 steps an epoch): the same arms, blocks and seeds on a larger input; long (hours on a 2-core CPU: run it on a cluster with --plan)"
            }
            Experiment::Escape => {
                "escape from a sharp minimum: SGD trained to its end point w_SGD at 40 % label noise, then continued from w_SGD by SGD and by m-SAM with m = B, 8 and 1 (same batch order): λ_max, tr V, the distance from w_SGD and the loss barrier on the line back to w_SGD along the way"
            }
            Experiment::RwsamDrift => {
                "a quadratic with per-sample Hessians, exact expectations: the expected RW-SAM step (uniform and weighted descent, λ solved so that ESS = m) against m-SAM at the same m and ∇f + ∇R_m: does any λ put a (ρ/2m)·tr V-like term into RW-SAM's drift?"
            }
        }
    }
}

impl std::str::FromStr for Experiment {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| Error::invalid("experiment", s, format!("one of {}", Self::ALL.map(|e| e.name()).join(", "))))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Options {
    pub seeds: usize,
    /// Small enough for CI: a few seconds each on the CPU engine.
    pub quick: bool,
    pub backend: Backend,
    /// Extra backends for `cost` (it compares backends).
    pub cost_backends: Vec<Backend>,
}

impl Default for Options {
    fn default() -> Self {
        Self { seeds: FULL_SEEDS, quick: false, backend: Backend::Cpu, cost_backends: vec![Backend::Cpu] }
    }
}

/// One run of an experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trial {
    /// The line it belongs to in the table and figure ("m-SAM", "SGD", "RW-SAM exact", …).
    pub series: String,
    /// Its position on the x axis (m, noise, λ, …); None for reference lines.
    pub x: Option<f64>,
    pub seed: u64,
    pub config: RunConfig,
    /// Measure tr V, λ_max, … on the evaluation subset at the end.
    pub measure: bool,
    /// Test accuracy whose first crossing is timed (`cost`).
    pub target_acc: Option<f64>,
}

/// The paper's small-scale setting (docs/ALGORITHMS.md#experiments): digits, hidden 128,128, B = 128,
/// lr 0.05, momentum 0.9, weight decay 5e-4, ρ 0.05, 40 epochs, one split (`SPLIT_SEED`) for
/// every seed. Quick: a quarter of the training samples (the rest is a larger test set) and a
/// narrower network trained long enough to memorise noisy labels, so the main effects show.
pub fn base_config(quick: bool) -> RunConfig {
    let mut cfg = RunConfig::default();
    cfg.dataset.name = DatasetName::Digits;
    cfg.split_seed = Some(SPLIT_SEED);
    if quick {
        cfg.dataset.test_fraction = Some(QUICK_TEST_FRACTION);
        cfg.model.hidden = vec![64];
        cfg.batch = 64;
        cfg.epochs = QUICK_EPOCHS;
    }
    cfg
}

/// The quick setting: 1797 · (1 − 0.75) ≈ 449 training samples, 7 steps an epoch.
pub const QUICK_TEST_FRACTION: f64 = 0.75;
pub const QUICK_EPOCHS: u64 = 60;

fn with(base: &RunConfig, f: impl FnOnce(&mut RunConfig)) -> RunConfig {
    let mut c = base.clone();
    f(&mut c);
    c
}

fn kind(c: &mut RunConfig, k: OptimizerKind) {
    c.optimizer.kind = k;
}

/// The trials of an experiment (none for `drift-check`, which is not a training experiment).
pub fn trials(exp: Experiment, opts: &Options) -> Vec<Trial> {
    let quick = opts.quick;
    let mut base = base_config(quick);
    base.backend = opts.backend;
    let seeds = opts.seeds.max(1) as u64;
    let mut out = Vec::new();
    let mut push = |series: &str, x: Option<f64>, cfg: &RunConfig, measure: bool, target: Option<f64>| {
        for seed in 0..seeds {
            out.push(Trial { series: series.to_string(), x, seed, config: RunConfig { seed, ..cfg.clone() }, measure, target_acc: target });
        }
    };
    match exp {
        Experiment::MSweep => {
            let noisy = with(&base, |c| c.dataset.label_noise = 0.4);
            let b = noisy.batch;
            let mut ms = Vec::new();
            let mut m = b;
            while m >= 1 {
                ms.push(m);
                m /= 4;
            }
            if *ms.last().expect("B ≥ 1") != 1 {
                ms.push(1);
            }
            if quick {
                ms = vec![b, 8, 1];
            }
            push("SGD", None, &with(&noisy, |c| kind(c, OptimizerKind::Sgd)), true, None);
            push("n-SAM", None, &with(&noisy, |c| kind(c, OptimizerKind::Nsam)), true, None);
            for &m in &ms {
                let cfg = with(&noisy, |c| {
                    kind(c, OptimizerKind::Msam);
                    c.optimizer.m = m;
                });
                push("m-SAM", Some(m as f64), &cfg, true, None);
            }
            // The paper's un-normalised theorems in training: m-USAM at m = B (USAM) and m = 1.
            for m in [b, 1] {
                let cfg = with(&noisy, |c| {
                    kind(c, OptimizerKind::Musam);
                    c.optimizer.m = m;
                });
                push("m-USAM", Some(m as f64), &cfg, false, None);
            }
            // The same sweep on clean labels: the ends only (m = B is SAM, m = 1 the smallest).
            for m in [b, 1] {
                let cfg = with(&base, |c| {
                    kind(c, OptimizerKind::Msam);
                    c.optimizer.m = m;
                });
                push("m-SAM clean", Some(m as f64), &cfg, false, None);
            }
            // n-USAM: the un-normalised n-SAM (last, so that earlier plans keep their trial ids).
            push("n-USAM", None, &with(&noisy, |c| kind(c, OptimizerKind::Nusam)), false, None);
        }
        Experiment::LabelNoise => {
            let noises: &[f64] = if quick { &[0.0, 0.4] } else { &[0.0, 0.2, 0.4, 0.6, 0.8] };
            for &noise in noises {
                let c = with(&base, |c| c.dataset.label_noise = noise);
                push("SGD", Some(noise), &with(&c, |c| kind(c, OptimizerKind::Sgd)), false, None);
                push("SAM", Some(noise), &with(&c, |c| kind(c, OptimizerKind::Sam)), false, None);
                let msam = with(&c, |c| {
                    kind(c, OptimizerKind::Msam);
                    c.optimizer.m = 8;
                });
                push("m-SAM m=8", Some(noise), &msam, false, None);
                push("RW-SAM", Some(noise), &with(&c, |c| kind(c, OptimizerKind::Rwsam)), false, None);
            }
        }
        Experiment::NoiseTrace => {
            push("SGD", None, &with(&base, |c| kind(c, OptimizerKind::Sgd)), true, None);
            push("SAM", None, &with(&base, |c| kind(c, OptimizerKind::Sam)), true, None);
            let msam = with(&base, |c| {
                kind(c, OptimizerKind::Msam);
                c.optimizer.m = 8;
            });
            push("m-SAM m=8", None, &msam, true, None);
            push("RW-SAM", None, &with(&base, |c| kind(c, OptimizerKind::Rwsam)), true, None);
        }
        Experiment::RwsamLambda => {
            let noisy = with(&base, |c| c.dataset.label_noise = 0.4);
            push("SAM", None, &with(&noisy, |c| kind(c, OptimizerKind::Sam)), false, None);
            for m in if quick { vec![8] } else { vec![64, 8, 1] } {
                let cfg = with(&noisy, |c| {
                    kind(c, OptimizerKind::Msam);
                    c.optimizer.m = m;
                });
                push(&format!("m-SAM m={m}"), None, &cfg, false, None);
            }
            let lambdas: &[f64] = if quick { &[0.0, 4.0] } else { &[0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0] };
            for (estimator, name) in [(NormEstimator::Exact, "RW-SAM exact"), (NormEstimator::FiniteDifference, "RW-SAM finite-difference")] {
                for &lambda in lambdas {
                    let cfg = with(&noisy, |c| {
                        kind(c, OptimizerKind::Rwsam);
                        c.optimizer.rwsam.lambda = lambda;
                        c.optimizer.rwsam.estimator = estimator;
                    });
                    push(name, Some(lambda), &cfg, false, None);
                }
            }
            // ESS = r·B imitates m-SAM with m ≈ r·B (x: the target ESS).
            let ratios: &[f64] = if quick { &[0.25] } else { &[0.5, 0.25, 1.0 / 16.0] };
            for &r in ratios {
                let cfg = with(&noisy, |c| {
                    kind(c, OptimizerKind::Rwsam);
                    c.optimizer.rwsam.target_ess = Some(r);
                    c.optimizer.rwsam.normalize = true;
                });
                push("RW-SAM target ESS", Some(r * noisy.batch as f64), &cfg, false, None);
            }
        }
        Experiment::Cost => {
            // Repeat by repeat (a seed each), every optimizer one after another in the same warm
            // process, so that a repeat's ratios to SAM share the machine's state.
            let target = Some(if quick { 0.8 } else { 0.95 });
            drop(push);
            for seed in 0..seeds {
                for &backend in &opts.cost_backends {
                    let b = with(&base, |c| c.backend = backend);
                    for cfg in cost_suite(&b) {
                        let series = format!("{}: {}", format!("{backend:?}").to_lowercase(), cost_label(&cfg));
                        out.push(Trial { series, x: None, seed, config: RunConfig { seed, ..cfg }, measure: false, target_acc: target });
                    }
                }
            }
        }
        Experiment::RwsamGrid | Experiment::RwsamGridMnist => {
            if exp == Experiment::RwsamGridMnist {
                base.dataset.name = DatasetName::Mnist5k;
                if quick {
                    // A quarter of mnist5k is 20 steps an epoch: a third of the digits epochs
                    // gives about as many steps as the digits quick grid.
                    base.epochs = QUICK_EPOCHS / 3;
                }
            }
            // Per (ρ, noise): the references, then every RW-SAM arm along target ESS (x).
            let blocks: &[(f64, f64)] = if quick { &[(0.05, 0.4)] } else { &[(0.05, 0.4), (0.05, 0.0), (0.2, 0.4), (0.2, 0.0)] };
            let ratios: &[f64] = if quick { &[0.25] } else { &[0.5, 0.25, 1.0 / 16.0] };
            for &(rho, noise) in blocks {
                let c = with(&base, |c| {
                    c.dataset.label_noise = noise;
                    c.optimizer.rho = rho;
                });
                let tag = grid_tag(rho, noise);
                push(&format!("SAM {tag}"), None, &with(&c, |c| kind(c, OptimizerKind::Sam)), false, None);
                for m in [64usize, 8] {
                    if c.batch.is_multiple_of(m) && m < c.batch {
                        let cfg = with(&c, |c| {
                            kind(c, OptimizerKind::Msam);
                            c.optimizer.m = m;
                        });
                        push(&format!("m-SAM m={m} {tag}"), None, &cfg, false, None);
                    }
                }
                for (estimator, est) in [(NormEstimator::Exact, "exact"), (NormEstimator::FiniteDifference, "fd")] {
                    for (descent, desc) in [(RwDescent::Uniform, "uniform"), (RwDescent::Weighted, "weighted")] {
                        for (lambda, sign) in [(1.0, "λ>0"), (-1.0, "λ<0")] {
                            for &r in ratios {
                                let cfg = with(&c, |c| {
                                    kind(c, OptimizerKind::Rwsam);
                                    c.optimizer.rwsam.lambda = lambda;
                                    c.optimizer.rwsam.estimator = estimator;
                                    c.optimizer.rwsam.descent = descent;
                                    c.optimizer.rwsam.target_ess = Some(r);
                                });
                                push(&format!("RW-SAM {est} {desc} {sign} {tag}"), Some(r * c.batch as f64), &cfg, false, None);
                            }
                        }
                    }
                }
            }
        }
        Experiment::DriftCheck | Experiment::RwsamDrift | Experiment::Escape => {}
    }
    out
}

/// The (ρ, label noise) block of an `rwsam-grid` series: "ρ=0.05 noise=0.4".
pub fn grid_tag(rho: f64, noise: f64) -> String {
    format!("ρ={rho} noise={noise}")
}

/// The name of a `cost` row: the optimizer, and RW-SAM's norm estimator.
pub fn cost_label(cfg: &RunConfig) -> String {
    match cfg.optimizer.kind {
        OptimizerKind::Rwsam => match cfg.optimizer.rwsam.estimator {
            NormEstimator::Exact => "RW-SAM exact".into(),
            NormEstimator::FiniteDifference => "RW-SAM finite-difference".into(),
        },
        _ => cfg.optimizer.label(),
    }
}

/// Every optimizer once, RW-SAM with exact norms and with the finite-difference estimator the
/// paper proposes, m-SAM at m = 64, 8 and 1 (the `cost` experiment and `bench`).
pub fn cost_suite(base: &RunConfig) -> Vec<RunConfig> {
    let mut v: Vec<RunConfig> = [OptimizerKind::Sgd, OptimizerKind::Usam, OptimizerKind::Sam, OptimizerKind::Nsam, OptimizerKind::Asam, OptimizerKind::Rwsam]
        .iter()
        .map(|&k| with(base, |c| kind(c, k)))
        .collect();
    v.push(with(base, |c| {
        kind(c, OptimizerKind::Rwsam);
        c.optimizer.rwsam.estimator = NormEstimator::FiniteDifference;
    }));
    for m in [64, 8, 1] {
        if !base.batch.is_multiple_of(m) {
            continue;
        }
        v.push(with(base, |c| {
            kind(c, OptimizerKind::Msam);
            c.optimizer.m = m;
        }));
    }
    v
}

/// The outcome of one trial.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TrialResult {
    pub series: String,
    pub x: Option<f64>,
    pub seed: u64,
    pub label: String,
    pub engine: String,
    pub diverged: bool,
    pub steps: u64,
    pub final_test_acc: f64,
    pub best_test_acc: f64,
    pub final_train_acc: f64,
    pub final_train_loss: f64,
    pub clean_train_acc: Option<f64>,
    pub memorized: Option<f64>,
    pub trace_v: Option<f64>,
    pub lambda_max: Option<f64>,
    pub trace_h: Option<f64>,
    /// tr F, the model's Fisher at the end (labels drawn from the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_f: Option<f64>,
    pub sharpness: Option<f64>,
    /// The m-sharpness curve at the end (E‖∇f_I‖ against m, with its bound √(‖∇f‖² + tr V/m)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m_curve: Option<Vec<crate::metrics::MPoint>>,
    /// Mean RW-SAM effective sample size over the steps.
    pub mean_ess: Option<f64>,
    pub ms_per_step: f64,
    /// First evaluation at or above the target test accuracy.
    pub steps_to_target: Option<u64>,
    pub seconds_to_target: Option<f64>,
}

impl TrialResult {
    /// Summarises a finished run (and its final measurement, if the trial asked for one).
    pub fn from_run(trial: &Trial, run: &Run, measurement: Option<&Measurement>, engine: &str, ms_per_step: f64) -> Self {
        let last = run.history.last_eval().cloned().unwrap_or_default();
        let ess: Vec<f64> = run.history.steps.iter().filter_map(|s| s.ess).collect();
        let steps_to_target = trial.target_acc.and_then(|t| run.history.evals.iter().find(|e| e.test_acc >= t).map(|e| e.step));
        Self {
            series: trial.series.clone(),
            x: trial.x,
            seed: trial.seed,
            label: trial.config.optimizer.label(),
            engine: engine.to_string(),
            diverged: matches!(run.status, RunStatus::Diverged(_)),
            steps: run.completed_steps(),
            final_test_acc: last.test_acc,
            best_test_acc: last.best_test_acc,
            final_train_acc: last.train_acc,
            final_train_loss: last.train_loss,
            clean_train_acc: last.clean_train_acc,
            memorized: last.memorized,
            trace_v: measurement.map(|m| m.trace_v),
            lambda_max: measurement.map(|m| m.lambda_max),
            trace_h: measurement.map(|m| m.trace_h),
            trace_f: measurement.and_then(|m| m.trace_f),
            sharpness: measurement.map(|m| m.sharpness),
            m_curve: measurement.map(|m| m.m_curve.clone()),
            mean_ess: (!ess.is_empty()).then(|| ess.iter().sum::<f64>() / ess.len() as f64),
            ms_per_step,
            steps_to_target,
            seconds_to_target: steps_to_target.map(|s| s as f64 * ms_per_step / 1e3),
        }
    }
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// One (series, x) cell of a metric over seeds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub series: String,
    pub x: Option<f64>,
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

pub type Metric = fn(&TrialResult) -> Option<f64>;

/// Groups results by (series, x) in first-seen order and summarises `metric`.
pub fn aggregate(results: &[TrialResult], metric: Metric) -> Vec<Cell> {
    let mut keys: Vec<(String, Option<f64>)> = Vec::new();
    for r in results {
        let k = (r.series.clone(), r.x);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .filter_map(|(series, x)| {
            let v: Vec<f64> = results.iter().filter(|r| r.series == series && r.x == x).filter_map(metric).filter(|v| v.is_finite()).collect();
            if v.is_empty() {
                return None;
            }
            let (mean, std) = mean_std(&v);
            Some(Cell { series, x, mean, std, n: v.len() })
        })
        .collect()
}

/// The metrics an experiment reports: (column title, accessor, shown as a percentage).
pub fn metrics(exp: Experiment) -> Vec<(&'static str, Metric, bool)> {
    let test: Metric = |r| Some(r.final_test_acc);
    let best: Metric = |r| Some(r.best_test_acc);
    let trv: Metric = |r| r.trace_v;
    let lmax: Metric = |r| r.lambda_max;
    let mem: Metric = |r| r.memorized;
    let ess: Metric = |r| r.mean_ess;
    let ms: Metric = |r| Some(r.ms_per_step);
    let tts: Metric = |r| r.seconds_to_target;
    let sts: Metric = |r| r.steps_to_target.map(|s| s as f64);
    match exp {
        Experiment::MSweep => {
            vec![("test acc", test, true), ("best test acc", best, true), ("tr V", trv, false), ("λ_max", lmax, false), ("noisy labels memorised", mem, true)]
        }
        Experiment::LabelNoise => vec![("test acc", test, true), ("best test acc", best, true), ("noisy labels memorised", mem, true)],
        Experiment::NoiseTrace => {
            let trh: Metric = |r| r.trace_h;
            let trf: Metric = |r| r.trace_f;
            vec![("tr V", trv, false), ("tr F", trf, false), ("tr H", trh, false), ("λ_max", lmax, false), ("test acc", test, true)]
        }
        Experiment::RwsamLambda => vec![("test acc", test, true), ("best test acc", best, true), ("mean ESS", ess, false), ("ms/step", ms, false)],
        Experiment::Cost => vec![("ms/step", ms, false), ("steps to target", sts, false), ("s to target", tts, false), ("test acc", test, true)],
        Experiment::RwsamGrid | Experiment::RwsamGridMnist => vec![("test acc", test, true), ("best test acc", best, true), ("mean ESS", ess, false)],
        Experiment::DriftCheck | Experiment::RwsamDrift | Experiment::Escape => vec![],
    }
}

pub(crate) fn fmt_x(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v}"),
    }
}

/// The Markdown table of an experiment: one row per (series, x), mean ± std over seeds.
pub fn markdown_table(exp: Experiment, results: &[TrialResult]) -> String {
    let cols = metrics(exp);
    let x_name = match exp {
        Experiment::MSweep => "m",
        Experiment::LabelNoise => "label noise",
        Experiment::RwsamLambda => "λ (or target ESS)",
        Experiment::RwsamGrid | Experiment::RwsamGridMnist => "target ESS",
        _ => "x",
    };
    let mut s = format!("| series | {x_name} |");
    for (name, _, _) in &cols {
        s.push_str(&format!(" {name} |"));
    }
    s.push_str(" seeds |\n|---|---|");
    s.push_str(&"---|".repeat(cols.len() + 1));
    s.push('\n');
    let per_metric: Vec<Vec<Cell>> = cols.iter().map(|(_, m, _)| aggregate(results, *m)).collect();
    let rows = aggregate(results, |r| Some(r.final_test_acc));
    for row in rows {
        s.push_str(&format!("| {} | {} |", row.series, fmt_x(row.x)));
        for ((_, _, pct), cells) in cols.iter().zip(&per_metric) {
            match cells.iter().find(|c| c.series == row.series && c.x == row.x) {
                Some(c) if *pct => s.push_str(&format!(" {:.2} ± {:.2} |", 100.0 * c.mean, 100.0 * c.std)),
                Some(c) => s.push_str(&format!(" {} ± {} |", sig(c.mean), sig(c.std))),
                None => s.push_str(" – |"),
            }
        }
        s.push_str(&format!(" {} |\n", row.n));
    }
    s
}

/// Four significant digits, plain notation where it reads well.
pub fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor() as i32;
    if (-3..5).contains(&mag) { format!("{:.*}", (3 - mag).max(0) as usize, v) } else { format!("{v:.3e}") }
}

/// How the trials of an experiment share their data, for every report's header.
pub fn split_note(exp: Experiment) -> String {
    match exp {
        Experiment::DriftCheck => "one least-squares problem (seed 0); the error is Monte-Carlo".into(),
        Experiment::RwsamDrift => "one quadratic (seed 0); the error is Monte-Carlo over batches".into(),
        Experiment::Escape => format!(
            "one train/test split (split_seed {SPLIT_SEED}) for every seed; a seed sets the initialisation, label-noise draw and batch order of phase 1, and every arm of phase 2 starts from that seed's w_SGD with the same batch order, so differences are paired by seed"
        ),
        _ => format!(
            "one train/test split (split_seed {SPLIT_SEED}) for every seed; a seed sets the initialisation, label-noise draw and batch order, the same for every optimizer, so differences are paired by seed"
        ),
    }
}

/// What the paper reports for the experiment (docs/ALGORITHMS.md#papers-reported-numbers), to print beside our table.
pub fn paper_reference(exp: Experiment) -> &'static str {
    match exp {
        Experiment::MSweep => "Paper: test accuracy improves monotonically as m decreases (m-SAM, fixed B); n-SAM ≈ SGD. (ResNet/CIFAR scale.)",
        Experiment::LabelNoise => {
            "Paper (Table 4, test accuracy %, noise 20/40/60/80 %): SGD 87.54/83.66/76.64/46.53, SAM 90.01/86.40/78.79/37.69, RW-SAM 90.34/86.87/81.52/53.17."
        }
        Experiment::NoiseTrace => "Paper (Table 6, tr of the gradient covariance at convergence): SGD 572.39 ± 24.15, SAM 198.40 ± 6.20, RW-SAM 177.79 ± 5.10.",
        Experiment::RwsamLambda => "Paper: RW-SAM ≥ SAM at the same ρ, close to m-SAM with small m, at ≈ 7/6 of SAM's cost.",
        Experiment::Cost => "Paper: m-SAM with m = 64 took about 2× SAM's wall time; RW-SAM about 7/6 of SAM's.",
        Experiment::RwsamGrid | Experiment::RwsamGridMnist => "Paper: RW-SAM ≥ SAM at the same ρ and close to m-SAM with small m (its comparison: m = 64).",
        Experiment::Escape => {
            "Paper: SAM's perturbation noise adds an implicit variance-based sharpness regulariser, (ρ/2m)·tr V to first order, stronger as m decreases; started in SGD's sharper minimum, small-m m-SAM should be driven to flatter regions (lower λ_max and tr V) more than mini-batch SAM, and SGD not at all. (Our reading of its SDE analysis; the paper reports no such experiment.)"
        }
        Experiment::RwsamDrift => "Paper: RW-SAM imitates m-SAM's implicit regulariser (ρ/2m)·tr V by reweighting one batch instead of splitting it.",
        Experiment::DriftCheck => {
            "Theory (docs/ALGORITHMS.md#drift-check): on least squares the SDE drift of m-USAM is exact up to sampling noise: E[step] = ∇f + ∇R_m, R_m = (ρ/2)‖∇f‖² + (ρ/2m)·tr V."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m_sweep_covers_b_over_powers_of_four_down_to_one() {
        let t = trials(Experiment::MSweep, &Options { seeds: 1, ..Default::default() });
        let ms: Vec<f64> = t.iter().filter(|t| t.series == "m-SAM").filter_map(|t| t.x).collect();
        assert_eq!(ms, vec![128.0, 32.0, 8.0, 2.0, 1.0]);
        assert!(t.iter().all(|t| t.config.epochs == 40 && t.config.split_seed == Some(SPLIT_SEED) && t.config.validate().is_ok()));
        assert!(t.iter().all(|t| (t.config.dataset.label_noise == 0.4) != t.series.ends_with("clean")));
        assert!(t.iter().any(|t| t.series == "SGD") && t.iter().any(|t| t.series == "n-SAM"));
    }

    #[test]
    fn every_experiment_has_valid_configs_and_distinct_seeds() {
        for exp in Experiment::ALL {
            for quick in [false, true] {
                let t = trials(exp, &Options { seeds: 2, quick, ..Default::default() });
                assert_eq!(t.is_empty(), !exp.has_trials(), "{exp:?}");
                for trial in &t {
                    trial.config.validate().unwrap_or_else(|e| panic!("{exp:?}: {e}"));
                    assert_eq!(trial.config.seed, trial.seed);
                }
            }
        }
    }

    #[test]
    fn aggregate_gives_mean_and_sample_std_per_cell() {
        let mk = |s: &str, x: f64, acc: f64| TrialResult { series: s.into(), x: Some(x), final_test_acc: acc, ..Default::default() };
        let r = vec![mk("a", 1.0, 0.5), mk("a", 1.0, 0.7), mk("b", 1.0, 0.9)];
        let cells = aggregate(&r, |r| Some(r.final_test_acc));
        assert_eq!(cells.len(), 2);
        assert!((cells[0].mean - 0.6).abs() < 1e-12 && (cells[0].std - 0.02f64.sqrt()).abs() < 1e-12);
        assert_eq!((cells[1].n, cells[1].std), (1, 0.0));
        let md = markdown_table(Experiment::LabelNoise, &r);
        assert!(md.contains("| a | 1 | 60.00 ± 14.14 |"), "{md}");
    }
}
