//! Command-line flags that override a `RunConfig` (shared by train, compare, landscape, ...).

use super::values;
use crate::config::{Backend, NormEstimator, OptimizerKind, RunConfig, RwDescent, Schedule};
use crate::error::{Error, Result};
use crate::model::Activation;
use clap::Args;

/// Every field of RunConfig as an optional flag; unset flags keep the config file's (or the
/// default) value. The file is read, the flags applied, and the result validated once.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Start from this RunConfig JSON (or a metrics file's `config`; at most 64 MiB); flags override it.
    #[arg(long, value_name = "run.json", value_parser = values::path)]
    pub config: Option<String>,
    /// moons, circles, spirals, xor, blobs, digits, mnist5k, or your own file.csv: 3 columns
    /// (x1,x2,label) are 2D points, 1 + s² columns (label,p0,…) s×s images; a header row is
    /// skipped; at most 64 MiB.
    #[arg(long, value_name = "NAME|file.csv", value_parser = values::dataset)]
    pub dataset: Option<values::DatasetArg>,
    /// Samples of a 2D toy dataset (train + test), 20 to 100000.
    #[arg(long, allow_hyphen_values = true, value_parser = values::size::<20, 100_000>)]
    pub samples: Option<usize>,
    /// Input noise (standard deviation) of a 2D toy dataset, 0 to 2.
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub input_noise: Option<f64>,
    /// Symmetric label noise: fraction of training labels replaced by a different class (0 ≤ noise < 1).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub noise: Option<f64>,
    /// Share of the data held out for testing (default per dataset; it must leave one sample each side).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub test_fraction: Option<f64>,
    /// Hidden widths, comma-separated (e.g. 128,128): 1 to 8 layers of 1 to 4096.
    #[arg(long, allow_hyphen_values = true)]
    pub hidden: Option<String>,
    #[arg(long, value_enum, ignore_case = true)]
    pub activation: Option<Activation>,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[arg(long, value_enum, ignore_case = true)]
    pub schedule: Option<Schedule>,
    /// Batch size, 1 to 4096 (and at most the training set).
    #[arg(long, allow_hyphen_values = true, value_parser = values::size::<1, 4096>)]
    pub batch: Option<usize>,
    /// Epochs, 1 to 100000 (unless --steps).
    #[arg(long, allow_hyphen_values = true, value_parser = values::int::<0, 100_000>)]
    pub epochs: Option<u64>,
    /// Train this many steps instead of whole epochs (1 to 1e8).
    #[arg(long, allow_hyphen_values = true, value_parser = values::int::<1, { crate::config::MAX_STEPS }>)]
    pub steps: Option<u64>,
    /// Initial weights, label-noise draw and batch order (and the split, without --split-seed).
    #[arg(long, allow_hyphen_values = true, value_parser = values::int::<0, { u64::MAX }>)]
    pub seed: Option<u64>,
    /// Fix the train/test split (and a toy's samples) independently of --seed.
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// Evaluate on the full sets every N steps (0: once per epoch).
    #[arg(long, allow_hyphen_values = true, value_parser = values::int::<0, { u64::MAX }>)]
    pub eval_every: Option<u64>,
    /// Add sharpness metrics (λ_max, tr H, tr V, S_ρ, m-sharpness curve, RW-SAM diagnostics) to
    /// the history every N steps, on a fixed subset of up to 1024 training samples (0: never).
    #[arg(long, allow_hyphen_values = true, value_parser = values::int::<0, { u64::MAX }>)]
    pub measure_every: Option<u64>,
    #[arg(long, value_enum, ignore_case = true)]
    pub backend: Option<Backend>,
}

/// The optimizer flags (also used alone by `samlab step`).
#[derive(Args, Debug, Clone, Default)]
pub struct OptimizerArgs {
    #[arg(long, value_enum, ignore_case = true)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate η (0 < η ≤ 10).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub lr: Option<f64>,
    /// Momentum μ of the base SGD (0 ≤ μ < 1).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub momentum: Option<f64>,
    /// Weight decay of the base SGD (0 to 1).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub wd: Option<f64>,
    /// Perturbation radius ρ (0 to 100).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub rho: Option<f64>,
    /// Micro-batch size of m-SAM / m-USAM (must divide the batch).
    #[arg(long, allow_hyphen_values = true, value_parser = values::size::<1, 4096>)]
    pub m: Option<usize>,
    /// ASAM's ξ (T = |w| + ξ), 1e-30 to 100.
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub xi: Option<f64>,
    /// RW-SAM inverse temperature λ (−1e4 to 1e4).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub lambda: Option<f64>,
    /// RW-SAM norm estimator.
    #[arg(long, value_enum, ignore_case = true)]
    pub norm_estimator: Option<NormEstimator>,
    /// RW-SAM finite-difference step δ (1e-6 to 1).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub delta: Option<f64>,
    /// RW-SAM descent: uniform (∇f_γ(w+e)) or weighted (Σ p_i ∇f_i(w+e)).
    #[arg(long, value_enum, ignore_case = true)]
    pub rw_descent: Option<RwDescent>,
    /// RW-SAM: solve λ each step so that ESS = r·B (0 < r ≤ 1).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub target_ess: Option<f64>,
    /// RW-SAM: divide the scores by their batch mean before the softmax.
    #[arg(long)]
    pub normalize_scores: bool,
}

impl OptimizerArgs {
    pub fn apply(&self, cfg: &mut RunConfig) -> Result<()> {
        let o = &mut cfg.optimizer;
        set(&mut o.kind, self.optimizer);
        set(&mut o.lr, self.lr);
        set(&mut o.momentum, self.momentum);
        set(&mut o.weight_decay, self.wd);
        set(&mut o.rho, self.rho);
        set(&mut o.m, self.m);
        set(&mut o.xi, self.xi);
        set(&mut o.rwsam.lambda, self.lambda);
        set(&mut o.rwsam.delta, self.delta);
        set(&mut o.rwsam.estimator, self.norm_estimator);
        set(&mut o.rwsam.descent, self.rw_descent);
        if self.target_ess.is_some() {
            o.rwsam.target_ess = self.target_ess;
        }
        if self.normalize_scores {
            o.rwsam.normalize = true;
        }
        Ok(())
    }
}

fn set<T>(dst: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *dst = v;
    }
}

impl ConfigArgs {
    /// The config these flags describe: the file (if any), then the flags, validated once.
    pub fn resolve(&self) -> Result<RunConfig> {
        let mut cfg = match &self.config {
            Some(path) => read_config(path)?,
            None => RunConfig::default(),
        };
        if let Some(d) = &self.dataset {
            d.apply(&mut cfg.dataset)?;
        }
        set(&mut cfg.dataset.samples, self.samples);
        set(&mut cfg.dataset.input_noise, self.input_noise);
        set(&mut cfg.dataset.label_noise, self.noise);
        if self.test_fraction.is_some() {
            cfg.dataset.test_fraction = self.test_fraction;
        }
        if let Some(h) = &self.hidden {
            cfg.model.hidden = h
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(|w| w.parse::<usize>().map_err(|_| Error::invalid("model.hidden", h, "comma-separated widths such as 128,128")))
                .collect::<Result<_>>()?;
        }
        set(&mut cfg.model.activation, self.activation);
        self.optimizer.apply(&mut cfg)?;
        set(&mut cfg.optimizer.schedule, self.schedule);
        set(&mut cfg.batch, self.batch);
        set(&mut cfg.epochs, self.epochs);
        if self.steps.is_some() {
            cfg.steps = self.steps;
        }
        set(&mut cfg.seed, self.seed);
        if self.split_seed.is_some() {
            cfg.split_seed = self.split_seed;
        }
        set(&mut cfg.eval_every, self.eval_every);
        set(&mut cfg.measure_every, self.measure_every);
        set(&mut cfg.backend, self.backend);
        cfg.validate()?;
        Ok(cfg)
    }
}

/// A RunConfig file, not yet validated: a bare RunConfig, or a metrics file (its `config`).
/// Type errors name the field's path, and its line and column in a bare config.
pub fn read_config(path: &str) -> Result<RunConfig> {
    let text = values::read_limited(path, values::MAX_CONFIG_BYTES)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::json(path, e))?;
    if value.get("config").is_some_and(|c| c.is_object()) {
        let inner = value.get("config").cloned().unwrap_or_default();
        return RunConfig::parse_value(inner, &format!("{path} (its config)"));
    }
    RunConfig::parse_json(&text, path)
}

/// `compare`'s optimizer list: `kind[:value]` where the value is m for msam/musam, λ for rwsam
/// and ρ for the others (e.g. `sgd,sam,msam:8,rwsam:2`).
pub fn parse_optimizer_list(list: &str, base: &RunConfig) -> Result<Vec<RunConfig>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = match item.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (item, None),
        };
        let mut cfg = base.clone();
        cfg.optimizer.kind = name.parse()?;
        if let Some(v) = value {
            let field = match cfg.optimizer.kind {
                OptimizerKind::Msam | OptimizerKind::Musam => "m",
                OptimizerKind::Rwsam => "lambda",
                OptimizerKind::Sgd => return Err(Error::invalid("optimizers", item, "sgd takes no value")),
                _ => "rho",
            };
            let bad = || Error::invalid("optimizers", item, format!("{name}:<{field}> with a number"));
            match field {
                "m" => cfg.optimizer.m = v.parse().map_err(|_| bad())?,
                "lambda" => cfg.optimizer.rwsam.lambda = v.parse().map_err(|_| bad())?,
                _ => cfg.optimizer.rho = v.parse().map_err(|_| bad())?,
            }
        }
        cfg.validate()?;
        out.push(cfg);
    }
    if out.is_empty() {
        return Err(Error::invalid("optimizers", list, "a comma-separated list such as sgd,sam,msam:8,rwsam"));
    }
    Ok(out)
}
