//! `RunConfig`: the one description of a run (dataset, model, optimizer and its settings, batch,
//! length, seed, cadence, backend), used by the CLI, the app, the experiments and the URL hash.
//! JSON in and out with serde; `validate` rejects bad values with the field's name and range.

use crate::error::{Error, Result};
use crate::model::Activation;
use serde::{Deserialize, Serialize};

mod user_data;
use user_data::validate_csv;
pub use user_data::{CSV_TEST_FRACTION, CsvSource, MAX_CLASSES};

/// Version of the serialised config; bumped when a field changes meaning.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DatasetName {
    Moons,
    Circles,
    Spirals,
    Xor,
    Blobs,
    #[default]
    Digits,
    Mnist5k,
    /// The user's own CSV file, described by `DataConfig::csv` (not in `ALL`: it has no data
    /// of its own until a file is loaded).
    Csv,
}

impl DatasetName {
    /// The built-in datasets.
    pub const ALL: [DatasetName; 7] =
        [DatasetName::Moons, DatasetName::Circles, DatasetName::Spirals, DatasetName::Xor, DatasetName::Blobs, DatasetName::Digits, DatasetName::Mnist5k];
    pub const TOYS: [DatasetName; 5] = [DatasetName::Moons, DatasetName::Circles, DatasetName::Spirals, DatasetName::Xor, DatasetName::Blobs];

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Moons => "moons",
            DatasetName::Circles => "circles",
            DatasetName::Spirals => "spirals",
            DatasetName::Xor => "xor",
            DatasetName::Blobs => "blobs",
            DatasetName::Digits => "digits",
            DatasetName::Mnist5k => "mnist5k",
            DatasetName::Csv => "csv",
        }
    }

    pub fn is_toy(self) -> bool {
        Self::TOYS.contains(&self)
    }
}

impl std::str::FromStr for DatasetName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| Error::invalid("dataset", s, names(Self::ALL.iter().map(|d| d.as_str()))))
    }
}

/// Every optimizer of docs/ALGORITHMS.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Usam,
    #[default]
    Sam,
    Nsam,
    Nusam,
    Msam,
    Musam,
    Asam,
    Rwsam,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 9] = [
        OptimizerKind::Sgd,
        OptimizerKind::Usam,
        OptimizerKind::Sam,
        OptimizerKind::Nsam,
        OptimizerKind::Nusam,
        OptimizerKind::Msam,
        OptimizerKind::Musam,
        OptimizerKind::Asam,
        OptimizerKind::Rwsam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Usam => "usam",
            OptimizerKind::Sam => "sam",
            OptimizerKind::Nsam => "nsam",
            OptimizerKind::Nusam => "nusam",
            OptimizerKind::Msam => "msam",
            OptimizerKind::Musam => "musam",
            OptimizerKind::Asam => "asam",
            OptimizerKind::Rwsam => "rwsam",
        }
    }

    /// The name as printed in tables and the app.
    pub fn label(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Usam => "USAM",
            OptimizerKind::Sam => "SAM",
            OptimizerKind::Nsam => "n-SAM",
            OptimizerKind::Nusam => "n-USAM",
            OptimizerKind::Msam => "m-SAM",
            OptimizerKind::Musam => "m-USAM",
            OptimizerKind::Asam => "ASAM",
            OptimizerKind::Rwsam => "RW-SAM",
        }
    }

    /// One line from docs/ALGORITHMS.md, for tooltips and `--help`.
    pub fn describe(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "plain SGD: descend on the batch gradient ∇f_γ(w)",
            OptimizerKind::Usam => "unnormalised SAM: e = ρ·∇f_γ(w), descend on ∇f_γ(w+e)",
            OptimizerKind::Sam => "mini-batch SAM: e = ρ·g/‖g‖ with the batch gradient g, descend on ∇f_γ(w+e)",
            OptimizerKind::Nsam => "n-SAM: perturb along the FULL training-set gradient, descend on the batch at w+e",
            OptimizerKind::Nusam => "n-USAM: n-SAM with the unnormalised perturbation e = ρ·∇f(w) of the FULL training set",
            OptimizerKind::Msam => "m-SAM: split the batch into micro-batches of m; each descends on its gradient at its OWN perturbed point",
            OptimizerKind::Musam => "m-USAM: m-SAM with unnormalised perturbations e_j = ρ·u_j",
            OptimizerKind::Asam => "ASAM: adaptive SAM, e = ρ·T²g/‖Tg‖ with T = |w| + ξ elementwise",
            OptimizerKind::Rwsam => "Reweighted SAM: perturb along Σ p_i ∇f_i with Gibbs weights p ∝ exp(λ·‖∇f_i‖) over the batch",
        }
    }

    /// Perturbs along the gradient of the full training set (n-SAM, n-USAM).
    pub fn uses_full_gradient(self) -> bool {
        matches!(self, OptimizerKind::Nsam | OptimizerKind::Nusam)
    }

    /// Uses micro-batches of size m.
    pub fn uses_m(self) -> bool {
        matches!(self, OptimizerKind::Msam | OptimizerKind::Musam)
    }

    /// Has a perturbation radius ρ.
    pub fn uses_rho(self) -> bool {
        self != OptimizerKind::Sgd
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let key: String = s.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        Self::ALL.into_iter().find(|k| k.as_str() == key).ok_or_else(|| Error::invalid("optimizer", s, names(Self::ALL.iter().map(|k| k.as_str()))))
    }
}

/// How RW-SAM estimates the per-sample gradient norms s_i.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NormEstimator {
    /// ‖∇f_i‖ from the per-layer identity Σ ‖d_i‖²(‖a_i‖² + 1).
    #[default]
    Exact,
    /// The paper's estimator |f_i(w + δz) − f_i(w)|/δ with one Rademacher z per batch.
    FiniteDifference,
}

impl NormEstimator {
    pub fn as_str(self) -> &'static str {
        match self {
            NormEstimator::Exact => "exact",
            NormEstimator::FiniteDifference => "finite-difference",
        }
    }
}

impl std::str::FromStr for NormEstimator {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "exact" => Ok(NormEstimator::Exact),
            "finite-difference" | "fd" | "finite_difference" => Ok(NormEstimator::FiniteDifference),
            _ => Err(Error::invalid("norm-estimator", s, "exact or finite-difference")),
        }
    }
}

/// Which gradient RW-SAM descends on at w + e.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RwDescent {
    /// ∇f_γ(w + e), the batch mean (default).
    #[default]
    Uniform,
    /// Σ p_i ∇f_i(w + e).
    Weighted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Constant,
    /// η_t = η·(1 + cos(π·t/T))/2 over the run's T steps.
    Cosine,
}

impl Schedule {
    pub fn lr(self, base: f64, step: u64, total: u64) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Cosine => {
                let t = step as f64 / total.max(1) as f64;
                base * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Cpu,
    Gpu,
    /// The GPU where an adapter with compute exists, else the CPU.
    Auto,
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Backend::Cpu),
            "gpu" => Ok(Backend::Gpu),
            "auto" => Ok(Backend::Auto),
            _ => Err(Error::invalid("backend", s, "cpu, gpu or auto")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub name: DatasetName,
    /// Number of samples of a 2D toy (train + test).
    pub samples: usize,
    /// Standard deviation of the Gaussian input noise of a 2D toy.
    pub input_noise: f64,
    /// Fraction of training labels replaced by a random different class.
    pub label_noise: f64,
    /// Share of the data held out for testing; default per dataset (digits 500/1797, else 0.2).
    pub test_fraction: Option<f64>,
    /// The file of `name = csv` (set only then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvSource>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self { name: DatasetName::Digits, samples: 1000, input_noise: 0.1, label_noise: 0.0, test_fraction: None, csv: None }
    }
}

impl DataConfig {
    /// A config of a CSV file (the other settings at their defaults).
    pub fn csv(source: CsvSource) -> Self {
        Self { name: DatasetName::Csv, csv: Some(source), ..Self::default() }
    }

    /// The name shown to the user: the built-in set's, or the file's.
    pub fn title(&self) -> String {
        match (&self.csv, self.name) {
            (Some(s), DatasetName::Csv) => s.name.clone(),
            (_, name) => name.as_str().to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub hidden: Vec<usize>,
    pub activation: Activation,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { hidden: vec![128, 128], activation: Activation::Relu }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RwSamConfig {
    /// Inverse temperature λ of p_i ∝ exp(λ·s_i) (0 = uniform = SAM; negative down-weights).
    pub lambda: f64,
    pub estimator: NormEstimator,
    /// Finite-difference step δ.
    pub delta: f64,
    pub descent: RwDescent,
    /// Solve λ every step so that ESS = r·B (replaces `lambda`, whose sign picks the sign of the
    /// solved λ: λ < 0 tilts the weights toward the smallest scores).
    pub target_ess: Option<f64>,
    /// Divide s by its batch mean before the softmax (scale-free λ).
    pub normalize: bool,
}

impl Default for RwSamConfig {
    fn default() -> Self {
        Self { lambda: 1.0, estimator: NormEstimator::Exact, delta: 1e-3, descent: RwDescent::Uniform, target_ess: None, normalize: false }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Perturbation radius ρ.
    pub rho: f64,
    /// Micro-batch size of m-SAM / m-USAM (must divide the batch).
    pub m: usize,
    /// ASAM's ξ in T = |w| + ξ.
    pub xi: f64,
    pub rwsam: RwSamConfig,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Sam,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: Schedule::Constant,
            rho: 0.05,
            m: 8,
            xi: 0.01,
            rwsam: RwSamConfig::default(),
        }
    }
}

impl OptimizerConfig {
    /// A short name with the setting that tells runs apart: "SAM", "m-SAM m=8", "RW-SAM λ=2".
    pub fn label(&self) -> String {
        match self.kind {
            OptimizerKind::Msam | OptimizerKind::Musam => format!("{} m={}", self.kind.label(), self.m),
            OptimizerKind::Rwsam => match self.rwsam.target_ess {
                Some(r) if self.rwsam.lambda < 0.0 => format!("RW-SAM ESS={r}B λ<0"),
                Some(r) => format!("RW-SAM ESS={r}B"),
                None => format!("RW-SAM λ={}", self.rwsam.lambda),
            },
            k => k.label().to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub version: u32,
    pub dataset: DataConfig,
    pub model: ModelConfig,
    pub optimizer: OptimizerConfig,
    pub batch: usize,
    pub epochs: u64,
    /// A number of steps that replaces `epochs` when set.
    pub steps: Option<u64>,
    /// Initial weights, label-noise draw and batch order; also the train/test split unless
    /// `split_seed` is set.
    pub seed: u64,
    /// The train/test split (and a toy's samples) when set; None: the split follows `seed`, as a
    /// single run has always done. Experiments set it to 0 so that every seed sees one split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// Evaluate on the full train and test sets every this many steps (0: once per epoch).
    pub eval_every: u64,
    /// Add sharpness metrics to the history every this many steps (0: never).
    pub measure_every: u64,
    pub backend: Backend,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            dataset: DataConfig::default(),
            model: ModelConfig::default(),
            optimizer: OptimizerConfig::default(),
            batch: 128,
            epochs: 40,
            steps: None,
            seed: 0,
            split_seed: None,
            eval_every: 0,
            measure_every: 0,
            backend: Backend::Cpu,
        }
    }
}

/// Widest hidden layer accepted (the GPU engine may refuse less, naming its device limit).
pub const MAX_WIDTH: usize = 4096;
pub const MAX_LAYERS: usize = 8;
pub const MAX_BATCH: usize = 4096;
/// Most steps of one run.
pub const MAX_STEPS: u64 = 100_000_000;

impl RunConfig {
    /// Parses and validates a config (JSON text of a RunConfig).
    pub fn from_json(text: &str) -> Result<Self> {
        let cfg = Self::parse_json(text, "run config")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses a config without validating it (flags may still repair it: validate after them).
    /// A type error names the field's path and the position: `optimizer.m: invalid type:
    /// floating point `8.0`, expected usize at line 1 column 22`.
    pub fn parse_json(text: &str, what: &str) -> Result<Self> {
        if !text.trim_start().starts_with('{') {
            // Syntax errors first (they carry their own position), then the shape.
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| Error::json(what, e))?;
            return Err(Error::Json { what: crate::error::path_shown(what), message: "expected a JSON object {…}".into() });
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let cfg: RunConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| path_error(what, e))?;
        de.end().map_err(|e| Error::json(what, e))?;
        Ok(cfg)
    }

    /// As `parse_json`, from a JSON value already parsed (the `config` field of a metrics file).
    pub fn parse_value(value: serde_json::Value, what: &str) -> Result<Self> {
        if !value.is_object() {
            return Err(Error::Json { what: crate::error::path_shown(what), message: "expected a JSON object {…}".into() });
        }
        serde_path_to_error::deserialize(value).map_err(|e| path_error(what, e))
    }

    /// The seed of the train/test split: `split_seed`, or `seed` when it is not set.
    pub fn data_split_seed(&self) -> u64 {
        self.split_seed.unwrap_or(self.seed)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a RunConfig always serialises")
    }

    /// Number of samples (train + test) of this config's dataset.
    pub fn n_samples(&self) -> usize {
        match self.dataset.name {
            DatasetName::Digits => 1797,
            DatasetName::Mnist5k => 5000,
            DatasetName::Csv => self.dataset.csv.as_ref().map_or(0, |s| s.samples),
            _ => self.dataset.samples,
        }
    }

    /// Number of training samples this config's dataset will have.
    pub fn n_train(&self) -> usize {
        let n = self.n_samples();
        let default_test = match self.dataset.name {
            DatasetName::Digits => 500.0 / 1797.0,
            DatasetName::Csv => CSV_TEST_FRACTION,
            _ => 0.2,
        };
        let test = (self.dataset.test_fraction.unwrap_or(default_test) * n as f64).round() as usize;
        n - test.min(n)
    }

    pub fn steps_per_epoch(&self) -> u64 {
        (self.n_train() / self.batch.max(1)) as u64
    }

    pub fn total_steps(&self) -> u64 {
        self.steps.unwrap_or(self.epochs * self.steps_per_epoch())
    }

    /// Checks every field; the error names the first bad one and its allowed range.
    pub fn validate(&self) -> Result<()> {
        if self.version > CONFIG_VERSION {
            return Err(Error::invalid("version", self.version, format!("≤ {CONFIG_VERSION} (this build's format)")));
        }
        let d = &self.dataset;
        if d.name.is_toy() {
            in_range("dataset.samples", d.samples as f64, 20.0, 100_000.0)?;
            in_range("dataset.input_noise", d.input_noise, 0.0, 2.0)?;
        }
        if !(0.0..1.0).contains(&d.label_noise) {
            return Err(Error::invalid("dataset.label_noise", d.label_noise, "0 ≤ noise < 1"));
        }
        if let Some(t) = d.test_fraction
            && !(t > 0.0 && t < 1.0)
        {
            return Err(Error::invalid("dataset.test_fraction", t, "0 < fraction < 1"));
        }
        validate_csv(d)?;
        let (n_all, n_train) = (self.n_samples(), self.n_train());
        if n_train == 0 || n_train == n_all {
            let t = d.test_fraction.map_or("the default".to_string(), |t| t.to_string());
            let (lo, hi) = (0.5 / n_all as f64, 1.0 - 0.5 / n_all as f64);
            return Err(Error::invalid(
                "dataset.test_fraction",
                t,
                format!("{lo:.2e} < fraction < {hi:.6} so that the {n_all} samples leave at least one for training and one for testing"),
            ));
        }
        let h = &self.model.hidden;
        if h.is_empty() || h.len() > MAX_LAYERS {
            return Err(Error::invalid("model.hidden", format!("{h:?}"), format!("1 to {MAX_LAYERS} hidden widths, e.g. 128,128")));
        }
        if let Some(w) = h.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return Err(Error::invalid("model.hidden", w, format!("widths 1..={MAX_WIDTH}")));
        }
        if self.batch == 0 || self.batch > MAX_BATCH.min(n_train) {
            return Err(Error::invalid("batch", self.batch, format!("1..={} (the training set has {n_train} samples)", MAX_BATCH.min(n_train))));
        }
        let o = &self.optimizer;
        if !(o.lr.is_finite() && (1e-30..=10.0).contains(&o.lr)) {
            return Err(Error::invalid("optimizer.lr", o.lr, "1e-30 ≤ lr ≤ 10 (a smaller rate is 0 in f32)"));
        }
        if !(0.0..1.0).contains(&o.momentum) {
            return Err(Error::invalid("optimizer.momentum", o.momentum, "0 ≤ momentum < 1"));
        }
        in_range("optimizer.weight_decay", o.weight_decay, 0.0, 1.0)?;
        in_range("optimizer.rho", o.rho, 0.0, 100.0)?;
        if o.kind.uses_m() && (o.m == 0 || !self.batch.is_multiple_of(o.m)) {
            return Err(Error::invalid("optimizer.m", o.m, format!("a divisor of batch {}: {}", self.batch, divisor_list(self.batch))));
        }
        // The engines compute in f32: a smaller ξ or δ underflows to 0 there (δ = 0 gives 0/0).
        in_range("optimizer.xi", o.xi, 1e-30, 100.0).map_err(|_| Error::invalid("optimizer.xi", o.xi, "1e-30 ≤ ξ ≤ 100 (smaller vanishes in f32)"))?;
        let r = &o.rwsam;
        in_range("optimizer.rwsam.lambda", r.lambda, -1e4, 1e4)?;
        if !(r.delta.is_finite() && (1e-6..=1.0).contains(&r.delta)) {
            return Err(Error::invalid(
                "optimizer.rwsam.delta",
                r.delta,
                "1e-6 ≤ δ ≤ 1 (a smaller step vanishes in f32: w + δz rounds to w, the estimate to 0/0)",
            ));
        }
        if let Some(t) = r.target_ess
            && !(t > 0.0 && t <= 1.0)
        {
            return Err(Error::invalid("optimizer.rwsam.target_ess", t, "0 < r ≤ 1 (ESS = r·B)"));
        }
        if self.steps.is_none() && self.epochs == 0 {
            return Err(Error::invalid("epochs", 0, "≥ 1 (or set steps)"));
        }
        if self.steps == Some(0) {
            return Err(Error::invalid("steps", 0, "≥ 1"));
        }
        if let Some(s) = self.steps.filter(|&s| s > MAX_STEPS) {
            return Err(Error::invalid("steps", s, format!("1 ≤ steps ≤ {MAX_STEPS}")));
        }
        if self.epochs > 100_000 {
            return Err(Error::invalid("epochs", self.epochs, "1 ≤ epochs ≤ 100000 (or set steps)"));
        }
        Ok(())
    }
}

/// A serde error with the path of the field it happened at ("optimizer.m: invalid type …").
pub fn path_error(what: &str, e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = if path == "." || path.is_empty() { inner.to_string() } else { format!("{path}: {inner}") };
    Error::Json { what: crate::error::path_shown(what), message: crate::error::one_line(&message) }
}

/// The divisors of n, for messages and the app's m selector.
pub fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|&d| n.is_multiple_of(d)).collect()
}

fn divisor_list(n: usize) -> String {
    divisors(n).iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    format!("one of {}", it.collect::<Vec<_>>().join(", "))
}

fn in_range(field: &str, v: f64, lo: f64, hi: f64) -> Result<()> {
    if v.is_finite() && v >= lo && v <= hi { Ok(()) } else { Err(Error::invalid(field, v, format!("{lo} ≤ value ≤ {hi}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let cfg = RunConfig::default();
        cfg.validate().unwrap();
        assert_eq!(RunConfig::from_json(&cfg.to_json()).unwrap(), cfg);
        assert_eq!(cfg.n_train(), 1297);
        assert_eq!(cfg.steps_per_epoch(), 10);
    }

    #[test]
    fn bad_values_name_their_field_and_range() {
        let mut cfg = RunConfig::default();
        cfg.optimizer.kind = OptimizerKind::Msam;
        cfg.optimizer.m = 7;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("optimizer.m") && e.contains("divisor of batch 128") && e.contains("1, 2, 4, 8"), "{e}");
        let mut cfg = RunConfig::default();
        cfg.optimizer.rho = -0.1;
        assert!(cfg.validate().unwrap_err().to_string().contains("optimizer.rho"));
        let mut cfg = RunConfig::default();
        cfg.model.hidden.clear();
        assert!(cfg.validate().unwrap_err().to_string().contains("model.hidden"));
        let cfg = RunConfig { batch: 5000, ..RunConfig::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("1297 samples"));
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for text in ["", "{", "[]", r#"{"batch": -1}"#, r#"{"unknown": 1}"#, r#"{"optimizer": {"kind": "adam"}}"#] {
            assert!(RunConfig::from_json(text).is_err(), "{text}");
        }
        assert_eq!(RunConfig::from_json(r#"{"seed": 3}"#).unwrap().seed, 3);
    }

    #[test]
    fn a_type_error_names_the_field_path_and_position() {
        let e = RunConfig::from_json("{\"optimizer\": {\"m\": 8.0}}").unwrap_err().to_string();
        assert!(e.contains("optimizer.m") && e.contains("line 1 column"), "{e}");
        let e = RunConfig::from_json("{\"batch\": \"x\\ny\"}").unwrap_err().to_string();
        assert!(e.contains("batch") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn settings_that_would_give_nan_are_refused() {
        let mut cfg = RunConfig::default();
        cfg.dataset.test_fraction = Some(0.0001);
        assert!(cfg.validate().unwrap_err().to_string().contains("dataset.test_fraction"));
        cfg.dataset.test_fraction = Some(0.9999);
        assert!(cfg.validate().unwrap_err().to_string().contains("dataset.test_fraction"));
        let mut cfg = RunConfig::default();
        cfg.optimizer.rwsam.delta = 1e-320;
        assert!(cfg.validate().unwrap_err().to_string().contains("optimizer.rwsam.delta"));
        let cfg = RunConfig { steps: Some(MAX_STEPS + 1), ..RunConfig::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("invalid steps"));
    }

    #[test]
    fn names_parse_leniently() {
        assert_eq!("m-SAM".parse::<OptimizerKind>().unwrap(), OptimizerKind::Msam);
        assert_eq!("RW-SAM".parse::<OptimizerKind>().unwrap(), OptimizerKind::Rwsam);
        assert!("adam".parse::<OptimizerKind>().unwrap_err().to_string().contains("sgd"));
        assert_eq!("fd".parse::<NormEstimator>().unwrap(), NormEstimator::FiniteDifference);
    }

    #[test]
    fn cosine_schedule_ends_at_zero() {
        assert_eq!(Schedule::Cosine.lr(0.1, 0, 100), 0.1);
        assert!(Schedule::Cosine.lr(0.1, 100, 100).abs() < 1e-12);
        assert!((Schedule::Cosine.lr(0.1, 50, 100) - 0.05).abs() < 1e-12);
    }
}
