//! Measurements that explain SAM (docs/ALGORITHMS.md#metrics): SAM sharpness, the top Hessian
//! eigenvalues (power iteration on exact R-op Hessian-vector products), tr H (Hutchinson),
//! tr V (the per-sample norm identity), the m-sharpness curve with its bound, the m-USAM
//! regulariser, RW-SAM diagnostics, the Hessian's eigenvalue density (stochastic Lanczos
//! quadrature), loss landscapes (random, PCA or Hessian directions) and decision surfaces.
//!
//! Everything here runs on the CPU reference model on a fixed evaluation subset of the training
//! set. The metric functions are generic over `Objective` (so a quadratic with closed-form
//! answers runs through the same code in the tests); landscapes go through `LossEvaluator`,
//! which a GPU engine can implement to evaluate many weight vectors in one pass.
//!
//! Architecture invariant: `metrics` knows nothing of engines, wgpu or egui; it reads models and
//! datasets and returns plain serde records.

pub mod density;
pub mod directions;
pub mod hessian;
pub mod hvp;
pub mod landscape;
pub mod noise;
pub mod objective;
pub mod png;
pub mod sharpness;
pub mod surface;

pub use density::{Density, DensityConfig};
pub use landscape::{CpuEvaluator, Grid, Landscape, LandscapeConfig, LossAcc, LossEvaluator, Slice, TrajectoryPoint};
pub use noise::{NoiseStats, RwDiagnostics};
pub use objective::{MlpObjective, Objective};
pub use sharpness::MPoint;
pub use surface::DecisionSurface;

use crate::config::{RunConfig, RwSamConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{MlpSpec, Real};
use crate::resumable::{block_on, pause};
use crate::rng::{self, Rng, Stream};
use serde::{Deserialize, Serialize};

/// A fixed subset of the training set on which the metrics are measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalSet {
    /// Training-set indices, in the seeded order drawn (the first B form the RW-SAM batch).
    pub indices: Vec<u32>,
    /// (len, n_features) row-major.
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    pub n_features: usize,
}

impl EvalSet {
    /// Up to `size` training samples (0: all of them), drawn without replacement from the
    /// stream `Eval` of `seed`: the same subset for every run with this seed.
    pub fn from_train(data: &Dataset, size: usize, seed: u64) -> Self {
        let n = data.n_train();
        let mut order = Rng::stream(seed, Stream::Eval).permutation(n);
        order.truncate(if size == 0 { n } else { size.min(n) });
        let indices: Vec<u32> = order.iter().map(|&i| i as u32).collect();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        data.gather_train(&indices, &mut x, &mut y);
        Self { indices, x, y, n_features: data.n_features }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The objective of `spec` on this set, computing in `T`.
    pub fn objective<T: Real>(&self, spec: &MlpSpec) -> Result<MlpObjective<T>> {
        MlpObjective::new(spec.clone(), self.x.iter().map(|&v| T::of(v as f64)).collect(), self.y.clone())
    }
}

/// Settings of one measurement.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MeasureConfig {
    /// ρ of the SAM sharpness and the m-USAM regulariser.
    pub rho: f64,
    /// Hutchinson probes for tr H.
    pub probes: usize,
    /// Most Hessian-vector products per eigenvalue.
    pub power_iters: usize,
    /// Power iteration stops when the Rayleigh quotient changes by less than this, relative.
    pub power_tol: f64,
    /// How many top eigenvalues (1: λ_max only; more by deflation).
    pub top_k: usize,
    /// Largest m of the m-sharpness curve (0: the evaluation set's size).
    pub curve_max: usize,
    /// Fewest micro-batches averaged per m of the curve.
    pub curve_groups: usize,
    /// Batch size of the RW-SAM diagnostics (the first samples of the evaluation set; 0: skip).
    pub rw_batch: usize,
    /// RW-SAM settings for the diagnostics (estimator for the weights, λ or target ESS, δ).
    pub rwsam: RwSamConfig,
    /// Seeds the probes, the power-iteration start and the curve's micro-batches.
    pub seed: u64,
    /// The Hessian's eigenvalue density by stochastic Lanczos quadrature (None: skip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub density: Option<DensityConfig>,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        Self {
            rho: 0.05,
            probes: 64,
            power_iters: 100,
            power_tol: 1e-4,
            top_k: 1,
            curve_max: 0,
            curve_groups: 64,
            rw_batch: 128,
            rwsam: RwSamConfig::default(),
            seed: 0,
            density: None,
        }
    }
}

impl MeasureConfig {
    /// What a run measures every `measure_every` steps: its own ρ, B and RW-SAM settings, and
    /// lighter estimates than the `measure` command's defaults (they run inside training).
    pub fn for_run(cfg: &RunConfig) -> Self {
        Self {
            rho: cfg.optimizer.rho,
            probes: 16,
            power_iters: 30,
            power_tol: 1e-3,
            top_k: 1,
            curve_max: cfg.batch,
            curve_groups: 64,
            rw_batch: cfg.batch,
            rwsam: cfg.optimizer.rwsam.clone(),
            seed: cfg.seed,
            density: None,
        }
    }

    /// Checks every field; the error names the field and its allowed range.
    pub fn validate(&self) -> Result<()> {
        if !(self.rho.is_finite() && (0.0..=100.0).contains(&self.rho)) {
            return Err(Error::invalid("rho", self.rho, "0 ≤ ρ ≤ 100"));
        }
        if !(1..=100_000).contains(&self.probes) {
            return Err(Error::invalid("probes", self.probes, "1 to 100000"));
        }
        if !(1..=100_000).contains(&self.power_iters) {
            return Err(Error::invalid("power_iters", self.power_iters, "1 to 100000"));
        }
        if !(self.power_tol.is_finite() && self.power_tol >= 0.0) {
            return Err(Error::invalid("power_tol", self.power_tol, "a tolerance ≥ 0"));
        }
        if !(1..=64).contains(&self.top_k) {
            return Err(Error::invalid("top_k", self.top_k, "1 to 64"));
        }
        if !(1..=100_000).contains(&self.curve_groups) {
            return Err(Error::invalid("curve_groups", self.curve_groups, "1 to 100000"));
        }
        if !(self.rwsam.delta.is_finite() && self.rwsam.delta > 0.0 && self.rwsam.delta <= 1.0) {
            return Err(Error::invalid("delta", self.rwsam.delta, "0 < δ ≤ 1"));
        }
        if !(self.rwsam.lambda.is_finite() && self.rwsam.lambda.abs() <= 1e4) {
            return Err(Error::invalid("lambda", self.rwsam.lambda, "−10000 ≤ λ ≤ 10000"));
        }
        if let Some(r) = self.rwsam.target_ess
            && !(r > 0.0 && r <= 1.0)
        {
            return Err(Error::invalid("target_ess", r, "0 < r ≤ 1 (ESS = r·B)"));
        }
        if let Some(d) = &self.density {
            d.validate()?;
        }
        Ok(())
    }
}

/// RW-SAM's diagnostics in short, for the history.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RwSummary {
    pub batch: usize,
    pub lambda: f64,
    pub ess: f64,
    /// Correlation of the finite-difference estimates with the exact per-sample norms.
    pub correlation: f64,
}

/// Every scalar metric at one step, plus the m-sharpness curve (what a run's history keeps).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Measurement {
    /// Steps completed when measured.
    pub step: u64,
    /// Size of the evaluation subset.
    pub n_eval: usize,
    pub rho: f64,
    /// f(w) and the accuracy on the evaluation subset.
    pub loss: f64,
    pub accuracy: Option<f64>,
    /// ‖∇f(w)‖.
    pub grad_norm: f64,
    /// S_ρ = f(w + ρ∇f/‖∇f‖) − f(w).
    pub sharpness: f64,
    /// The top Hessian eigenvalue.
    pub lambda_max: f64,
    /// The top-k eigenvalues by deflation (the first is λ_max).
    pub top_eigenvalues: Vec<f64>,
    /// Hessian-vector products spent on the eigenvalues.
    pub power_iterations: usize,
    /// tr H by Hutchinson, with the standard error of the estimate.
    pub trace_h: f64,
    pub trace_h_stderr: f64,
    pub probes: usize,
    /// tr V = mean_i ‖∇f_i‖² − ‖∇f‖².
    pub trace_v: f64,
    /// mean_i ‖∇f_i‖².
    pub mean_sample_sq_norm: f64,
    /// tr F, the model's Fisher (labels drawn from the model: the Gauss–Newton part of tr H),
    /// for models that classify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_f: Option<f64>,
    /// (ρ/2)‖∇f‖², the n-USAM regulariser (R_m without its tr V term).
    pub n_usam_regularizer: f64,
    /// E‖∇f_I‖ for m = 1, 2, 4, …, with the bound √(‖∇f‖² + tr V/m) and R_m.
    pub m_curve: Vec<MPoint>,
    pub rwsam: Option<RwSummary>,
    /// The Hessian's eigenvalue density, when asked for (`MeasureConfig::density`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub density: Option<Density>,
}

/// A measurement and the per-sample details behind it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MeasureReport {
    pub measurement: Measurement,
    pub rwsam: Option<RwDiagnostics>,
}

/// Measures everything at `w` on the objective's evaluation set. `step` keys the RW-SAM probe
/// (the one the step at that index draws: `rademacher(probe_key(seed, step), i)`).
pub fn measure<O: Objective + ?Sized>(obj: &mut O, w: &[f64], cfg: &MeasureConfig, step: u64) -> Result<MeasureReport> {
    block_on(measure_in_pieces(obj, w, cfg, step))
}

/// `measure`, pausing between its passes over the evaluation set (each gradient, each
/// Hessian-vector product, each draw of the m-curve): the browser spreads it over frames.
pub async fn measure_in_pieces<O: Objective + ?Sized>(obj: &mut O, w: &[f64], cfg: &MeasureConfig, step: u64) -> Result<MeasureReport> {
    cfg.validate()?;
    if w.len() != obj.n_params() {
        return Err(Error::Data(format!("measure: {} parameters given, the model has {}", w.len(), obj.n_params())));
    }
    let n = obj.n_samples();
    if n == 0 {
        return Err(Error::Data("measure: the evaluation set is empty".into()));
    }
    let (loss, grad) = obj.loss_grad(w);
    let accuracy = obj.accuracy(w);
    pause().await;
    let noise = noise::gradient_noise(obj, w, &grad);
    pause().await;
    // tr F a class at a time (one backward pass over the subset each).
    let mut trace_f = obj.classes().map(|_| 0.0);
    for c in 0..obj.classes().unwrap_or(0) {
        trace_f = trace_f.zip(obj.model_fisher_term(w, c)).map(|(a, b)| a + b);
        pause().await;
    }
    let sharp = sharpness::sam_sharpness(obj, w, loss, &grad, cfg.rho);
    pause().await;
    let eig = hessian::top_eigenvalues_in_pieces(obj, w, cfg.top_k, cfg.power_iters, cfg.power_tol, cfg.seed).await;
    let (trace_h, trace_h_stderr) = hessian::hutchinson_trace_in_pieces(obj, w, cfg.probes, cfg.seed).await;
    let density = match &cfg.density {
        Some(d) => Some(density::density_in_pieces(obj, w, d).await?),
        None => None,
    };
    let curve_max = if cfg.curve_max == 0 { n } else { cfg.curve_max.min(n) };
    let mut curve_rng = Rng::stream(cfg.seed ^ 0x006d_2d63_7572_7665, Stream::Eval); // "m-curve"
    let m_curve =
        sharpness::m_sharpness_curve(obj, w, &sharpness::m_values(curve_max), noise.grad_sq_norm, noise.trace_v, cfg.rho, cfg.curve_groups, &mut curve_rng)
            .await;
    let rwsam = (cfg.rw_batch > 0).then(|| {
        let key = rng::probe_key(cfg.seed, step);
        let z: Vec<f64> = (0..w.len() as u32).map(|i| rng::rademacher(key, i) as f64).collect();
        noise::rwsam_diagnostics(obj, w, cfg.rw_batch, &cfg.rwsam, &z)
    });
    let measurement = Measurement {
        step,
        n_eval: n,
        rho: cfg.rho,
        loss,
        accuracy,
        grad_norm: noise.grad_sq_norm.sqrt(),
        sharpness: sharp,
        lambda_max: eig.values.first().copied().unwrap_or(f64::NAN),
        top_eigenvalues: eig.values.clone(),
        power_iterations: eig.iterations.iter().sum(),
        trace_h,
        trace_h_stderr,
        probes: cfg.probes,
        trace_v: noise.trace_v,
        mean_sample_sq_norm: noise.mean_sample_sq_norm,
        trace_f,
        n_usam_regularizer: 0.5 * cfg.rho * noise.grad_sq_norm,
        m_curve,
        rwsam: rwsam.as_ref().map(|d| RwSummary { batch: d.batch, lambda: d.lambda, ess: d.ess, correlation: d.correlation }),
        density,
    };
    Ok(MeasureReport { measurement, rwsam })
}

/// What a `Run` holds to measure itself: the evaluation subset's objective (f32, the run-time
/// precision) and the settings from its config. A clone measures on its own (the browser's
/// measurements in pieces each own one).
#[derive(Clone)]
pub struct RunMeasurer {
    objective: MlpObjective<f32>,
    pub config: MeasureConfig,
    eval_size: usize,
}

/// Evaluation-subset size of a run's measurements (a fixed subset of the training set: docs/ALGORITHMS.md#metrics).
pub const DEFAULT_EVAL_SIZE: usize = 1024;

impl RunMeasurer {
    /// The CLI's measurement of a run: `DEFAULT_EVAL_SIZE` samples, `MeasureConfig::for_run`.
    pub fn new(cfg: &RunConfig, data: &Dataset) -> Result<Self> {
        Self::with(cfg, data, DEFAULT_EVAL_SIZE, MeasureConfig::for_run(cfg))
    }

    /// A measurement on `eval_size` training samples with the given estimator settings.
    pub fn with(cfg: &RunConfig, data: &Dataset, eval_size: usize, config: MeasureConfig) -> Result<Self> {
        config.validate()?;
        let spec = crate::setup::spec_for(cfg, data);
        let set = EvalSet::from_train(data, eval_size, cfg.seed);
        Ok(Self { objective: set.objective(&spec)?, config, eval_size: set.len() })
    }

    pub fn eval_size(&self) -> usize {
        self.eval_size
    }

    /// The measurement at `params` after `step` steps.
    pub fn measure(&mut self, step: u64, params: &[f32]) -> Result<Measurement> {
        block_on(self.measure_in_pieces(step, params))
    }

    /// `measure`, pausing between passes (`measure_in_pieces`).
    pub async fn measure_in_pieces(&mut self, step: u64, params: &[f32]) -> Result<Measurement> {
        let w: Vec<f64> = params.iter().map(|&v| v as f64).collect();
        Ok(measure_in_pieces(&mut self.objective, &w, &self.config, step).await?.measurement)
    }
}
