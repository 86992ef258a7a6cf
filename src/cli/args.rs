//! Command-line flags that override a `RunConfig` (shared by train, compare, landscape, ...).

use crate::config::{Backend, DatasetName, NormEstimator, OptimizerKind, RunConfig, RwDescent, Schedule};
use crate::error::{Error, Result};
use crate::model::Activation;
use clap::Args;

/// Every field of RunConfig as an optional flag; unset flags keep the config file's (or the
/// default) value.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Start from this RunConfig JSON (flags override it).
    #[arg(long, value_name = "run.json")]
    pub config: Option<String>,
    /// moons, circles, spirals, xor, blobs, digits, mnist5k.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Samples of a 2D toy dataset (train + test).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Input noise (standard deviation) of a 2D toy dataset.
    #[arg(long, allow_negative_numbers = true)]
    pub input_noise: Option<f64>,
    /// Symmetric label noise: fraction of training labels replaced by a different class.
    #[arg(long, allow_negative_numbers = true)]
    pub noise: Option<f64>,
    /// Hidden widths, comma-separated (e.g. 128,128).
    #[arg(long)]
    pub hidden: Option<String>,
    /// relu, tanh, gelu.
    #[arg(long)]
    pub activation: Option<String>,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// constant or cosine.
    #[arg(long)]
    pub schedule: Option<String>,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Train this many steps instead of whole epochs.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Initial weights, label-noise draw and batch order (and the split, without --split-seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fix the train/test split (and a toy's samples) independently of --seed.
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// Evaluate on the full sets every N steps (0: once per epoch).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Add sharpness metrics (λ_max, tr H, tr V, S_ρ, m-sharpness curve, RW-SAM diagnostics) to
    /// the history every N steps, on a fixed subset of up to 1024 training samples (0: never).
    #[arg(long)]
    pub measure_every: Option<u64>,
    /// cpu, gpu or auto.
    #[arg(long)]
    pub backend: Option<String>,
}

/// The optimizer flags (also used alone by `samlab step`).
#[derive(Args, Debug, Clone, Default)]
pub struct OptimizerArgs {
    /// sgd, usam, sam, nsam, msam, musam, asam, rwsam.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Learning rate η.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Momentum μ of the base SGD.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Weight decay of the base SGD.
    #[arg(long, allow_negative_numbers = true)]
    pub wd: Option<f64>,
    /// Perturbation radius ρ.
    #[arg(long, allow_negative_numbers = true)]
    pub rho: Option<f64>,
    /// Micro-batch size of m-SAM / m-USAM (must divide the batch).
    #[arg(long)]
    pub m: Option<usize>,
    /// ASAM's ξ (T = |w| + ξ).
    #[arg(long, allow_negative_numbers = true)]
    pub xi: Option<f64>,
    /// RW-SAM inverse temperature λ.
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// RW-SAM norm estimator: exact or finite-difference.
    #[arg(long)]
    pub norm_estimator: Option<String>,
    /// RW-SAM finite-difference step δ.
    #[arg(long, allow_negative_numbers = true)]
    pub delta: Option<f64>,
    /// RW-SAM descent: uniform (∇f_γ(w+e)) or weighted (Σ p_i ∇f_i(w+e)).
    #[arg(long)]
    pub rw_descent: Option<String>,
    /// RW-SAM: solve λ each step so that ESS = r·B.
    #[arg(long, allow_negative_numbers = true)]
    pub target_ess: Option<f64>,
    /// RW-SAM: divide the scores by their batch mean before the softmax.
    #[arg(long)]
    pub normalize_scores: bool,
}

fn parse_enum<T: serde::de::DeserializeOwned>(field: &str, value: &str, allowed: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_ascii_lowercase())).map_err(|_| Error::invalid(field, value, allowed))
}

impl OptimizerArgs {
    pub fn apply(&self, cfg: &mut RunConfig) -> Result<()> {
        let o = &mut cfg.optimizer;
        if let Some(v) = &self.optimizer {
            o.kind = v.parse::<OptimizerKind>()?;
        }
        set(&mut o.lr, self.lr);
        set(&mut o.momentum, self.momentum);
        set(&mut o.weight_decay, self.wd);
        set(&mut o.rho, self.rho);
        set(&mut o.m, self.m);
        set(&mut o.xi, self.xi);
        set(&mut o.rwsam.lambda, self.lambda);
        set(&mut o.rwsam.delta, self.delta);
        if let Some(v) = &self.norm_estimator {
            o.rwsam.estimator = v.parse::<NormEstimator>()?;
        }
        if let Some(v) = &self.rw_descent {
            o.rwsam.descent = parse_enum::<RwDescent>("rw-descent", v, "uniform or weighted")?;
        }
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
    /// The config these flags describe, validated.
    pub fn resolve(&self) -> Result<RunConfig> {
        let mut cfg = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::json(path, e))?;
                // Accept both a bare RunConfig and the `config` field of a metrics file.
                let inner = value.get("config").cloned().unwrap_or(value);
                RunConfig::from_json(&inner.to_string()).map_err(|e| match e {
                    Error::Json { message, .. } => Error::Json { what: path.clone(), message },
                    other => other,
                })?
            }
            None => RunConfig::default(),
        };
        if let Some(v) = &self.dataset {
            cfg.dataset.name = v.parse::<DatasetName>()?;
        }
        set(&mut cfg.dataset.samples, self.samples);
        set(&mut cfg.dataset.input_noise, self.input_noise);
        set(&mut cfg.dataset.label_noise, self.noise);
        if let Some(h) = &self.hidden {
            cfg.model.hidden = h
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(|w| w.parse::<usize>().map_err(|_| Error::invalid("model.hidden", h, "comma-separated widths such as 128,128")))
                .collect::<Result<_>>()?;
        }
        if let Some(v) = &self.activation {
            cfg.model.activation = parse_enum::<Activation>("activation", v, "relu, tanh or gelu")?;
        }
        self.optimizer.apply(&mut cfg)?;
        if let Some(v) = &self.schedule {
            cfg.optimizer.schedule = parse_enum::<Schedule>("schedule", v, "constant or cosine")?;
        }
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
        if let Some(v) = &self.backend {
            cfg.backend = v.parse::<Backend>()?;
        }
        cfg.validate()?;
        Ok(cfg)
    }
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
