//! `samlab measure` (every metric of docs/ALGORITHMS.md at given weights, in f64) and `samlab landscape`
//! (train or load weights, then the loss landscape around them, optionally as a PNG).

use super::args::ConfigArgs;
use super::values;
use super::{document, progress_bar, read, status_text, write, write_bytes};
use crate::config::{DataConfig, NormEstimator, RunConfig};
use crate::data::Dataset;
use crate::engine::choice::open_engine;
use crate::error::{Error, Result};
use crate::formats::{BatchJson, ParamsJson};
use crate::metrics::directions::{self, Directions};
use crate::metrics::landscape::{self, CpuEvaluator, LandscapeConfig, Snapshots};
use crate::metrics::{self, EvalSet, MeasureConfig, png, surface};
use crate::model::{Activation, Mlp, MlpSpec};
use crate::run::Run;
use clap::Args;
use indicatif::ProgressBar;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct MeasureArgs {
    /// Params JSON (the format of `samlab step`).
    #[arg(long, value_parser = values::path)]
    pub params: String,
    /// cpu (f64 reference, exact R-op) or gpu (f32 kernels, Hessian-vector products by central
    /// differences of gradients; at most 65535 evaluation samples).
    #[arg(long, value_enum, ignore_case = true, default_value = "cpu")]
    pub backend: crate::config::Backend,
    /// The evaluation set as a batch JSON (the format of `samlab step`; z is ignored).
    #[arg(long, conflicts_with = "dataset", required_unless_present = "dataset", value_parser = values::path)]
    pub batch: Option<String>,
    /// Or: the evaluation subset of this dataset's training set (a built-in name or a file.csv,
    /// as `train --dataset`).
    #[arg(long, value_name = "NAME|file.csv", value_parser = values::dataset)]
    pub dataset: Option<values::DatasetArg>,
    /// Samples of a 2D toy dataset (train + test), with --dataset.
    #[arg(long, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub samples: Option<usize>,
    /// With --dataset: up to this many training samples, seeded (0: all).
    #[arg(long, default_value_t = metrics::DEFAULT_EVAL_SIZE, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub eval_size: usize,
    /// Hidden activation.
    #[arg(long, value_enum, ignore_case = true, default_value = "relu")]
    pub activation: Activation,
    /// ρ of the sharpness S_ρ and of the m-USAM regulariser.
    #[arg(long, default_value_t = 0.05, allow_hyphen_values = true, value_parser = values::number)]
    pub rho: f64,
    /// Hutchinson probes for tr H.
    #[arg(long, default_value_t = 64, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub probes: usize,
    /// Most Hessian-vector products of the power iteration, per eigenvalue.
    #[arg(long, default_value_t = 100, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub power_iters: usize,
    /// Relative change of the Rayleigh quotient that ends the power iteration.
    #[arg(long, default_value_t = 1e-4, allow_hyphen_values = true, value_parser = values::number)]
    pub power_tol: f64,
    /// Top-k Hessian eigenvalues by deflation.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub top_k: usize,
    /// Largest m of the m-sharpness curve (0: the evaluation set's size).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub curve_max: usize,
    /// Fewest micro-batches per m of the curve.
    #[arg(long, default_value_t = 64, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub curve_groups: usize,
    /// RW-SAM diagnostics on the first B samples of the evaluation set (0: none).
    #[arg(long, default_value_t = 128, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub rw_batch: usize,
    /// RW-SAM λ of the diagnostics' Gibbs weights.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true, value_parser = values::number)]
    pub lambda: f64,
    /// RW-SAM estimator of the weights.
    #[arg(long, value_enum, ignore_case = true, default_value = "exact")]
    pub norm_estimator: NormEstimator,
    /// Finite-difference step δ.
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true, value_parser = values::number)]
    pub delta: f64,
    /// Solve λ so that ESS = r·B.
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub target_ess: Option<f64>,
    /// Divide the RW-SAM scores by their batch mean.
    #[arg(long)]
    pub normalize_scores: bool,
    /// Also the Hessian's eigenvalue density by stochastic Lanczos quadrature (a `density` object
    /// in the JSON).
    #[arg(long)]
    pub density: bool,
    /// Rademacher starts of the density, 1 to 64.
    #[arg(long, default_value_t = 4, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub density_starts: usize,
    /// Lanczos steps (Hessian-vector products) per start, 2 to 200 (at most the parameter count
    /// is used).
    #[arg(long, default_value_t = 60, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub density_steps: usize,
    /// Points of the grid the density is evaluated on, 32 to 20000.
    #[arg(long, default_value_t = 512, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub density_grid: usize,
    /// Gaussian broadening of the density relative to the spread of the Ritz values, 0 < σ ≤ 1.
    #[arg(long, default_value_t = 0.01, allow_hyphen_values = true, value_parser = values::number)]
    pub density_sigma: f64,
    /// Seeds the subset (with --dataset), the probes, the power iteration, the curve and the
    /// density's starts.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = values::int::<0, { u64::MAX }>)]
    pub seed: u64,
    /// Keys the RW-SAM finite-difference probe, as the step with this index would draw it.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = values::int::<0, { u64::MAX }>)]
    pub step: u64,
    /// Where the JSON goes (- for standard output).
    #[arg(long, default_value = "measure.json", value_parser = values::out_path)]
    pub out: String,
    /// No progress.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Most evaluation samples of `measure --backend gpu` (one workgroup row per sample in a
/// dispatch dimension, which WebGPU caps at 65535).
pub const MAX_GPU_EVAL: usize = 65_535;

fn load_params(path: &str, activation: Activation) -> Result<(MlpSpec, Vec<f64>)> {
    ParamsJson::parse(&read(path)?, path)?.to_flat(activation)
}

/// The dataset must have the params' input width and class count.
fn check_fits(spec: &MlpSpec, data: &Dataset, what: &str) -> Result<()> {
    let name = data.name.as_str();
    if spec.in_dim() != data.n_features {
        return Err(Error::Data(format!("{what}: the first layer takes {} inputs, dataset {name} has {} features", spec.in_dim(), data.n_features)));
    }
    if spec.out_dim() != data.n_classes {
        return Err(Error::Data(format!("{what}: the last layer has {} outputs, dataset {name} has {} classes", spec.out_dim(), data.n_classes)));
    }
    Ok(())
}

pub fn measure(a: &MeasureArgs) -> Result<()> {
    let start = Instant::now();
    let activation = a.activation;
    let mut cfg = MeasureConfig {
        rho: a.rho,
        probes: a.probes,
        power_iters: a.power_iters,
        power_tol: a.power_tol,
        top_k: a.top_k,
        curve_max: a.curve_max,
        curve_groups: a.curve_groups,
        rw_batch: a.rw_batch,
        seed: a.seed,
        density: a.density.then_some(metrics::DensityConfig {
            starts: a.density_starts,
            steps: a.density_steps,
            grid: a.density_grid,
            sigma: a.density_sigma,
            seed: a.seed,
        }),
        ..MeasureConfig::default()
    };
    cfg.rwsam.lambda = a.lambda;
    cfg.rwsam.estimator = a.norm_estimator;
    cfg.rwsam.delta = a.delta;
    cfg.rwsam.target_ess = a.target_ess;
    cfg.rwsam.normalize = a.normalize_scores;
    cfg.validate()?;
    let (spec, params) = load_params(&a.params, activation)?;
    // The evaluation set: f64 features for the CPU reference (like the `step` oracle).
    let (x, y, source): (Vec<f64>, Vec<u32>, serde_json::Value) = match (&a.batch, &a.dataset) {
        (Some(path), _) => {
            let b = BatchJson::parse(&read(path)?, path)?.check(&spec)?;
            (b.x, b.y, json!({"batch": path}))
        }
        (None, Some(name)) => {
            let data = load_dataset(name, a.samples, a.seed)?;
            check_fits(&spec, &data, "params")?;
            let set = EvalSet::from_train(&data, a.eval_size, a.seed);
            let source = json!({"dataset": data.name, "eval_size": set.len(), "seed": a.seed});
            (set.x.iter().map(|&v| v as f64).collect(), set.y, source)
        }
        (None, None) => return Err(Error::invalid("batch", "(none)", "--batch b.json or --dataset NAME")),
    };
    if a.backend == crate::config::Backend::Gpu && y.len() > MAX_GPU_EVAL {
        let field = if a.batch.is_some() { "batch" } else { "eval-size" };
        return Err(Error::invalid(
            field,
            format!("{} samples", y.len()),
            format!("at most {MAX_GPU_EVAL} evaluation samples on the GPU (e.g. --eval-size {MAX_GPU_EVAL}), or --backend cpu"),
        ));
    }
    let bar = spinner(a.quiet, "measure");
    let (mut report, engine) = match a.backend {
        crate::config::Backend::Gpu => {
            // f32 on the GPU; Hessian-vector products by central differences of gradients.
            let ctx = crate::engine::gpu::GpuContext::request_blocking()?;
            let engine = format!("GPU: {}", ctx.describe());
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let mut obj = crate::engine::gpu::objective::GpuObjective::new(ctx, spec.clone(), &x32, &y)?;
            let report = metrics::measure(&mut obj, &params, &cfg, a.step)?;
            if let Some(e) = obj.take_error() {
                return Err(Error::Gpu(e));
            }
            (report, engine)
        }
        _ => {
            let mut obj = metrics::MlpObjective::<f64>::new(spec.clone(), x, y)?;
            (metrics::measure(&mut obj, &params, &cfg, a.step)?, "CPU (f64, exact R-op)".to_string())
        }
    };
    bar.finish_and_clear();
    let density = report.measurement.density.take();
    let doc = document(
        "measure",
        json!({
            "source": source,
            "engine": engine,
            "activation": activation,
            "n_params": spec.n_params(),
            "settings": cfg,
            "measurement": report.measurement,
            "rwsam": report.rwsam,
            "density": density,
            "wall_time_s": start.elapsed().as_secs_f64(),
        }),
    );
    write(&a.out, &serde_json::to_string_pretty(&doc).expect("JSON values serialise"))?;
    let m = &report.measurement;
    eprintln!(
        "loss {:.4}, ‖∇f‖ {:.4}, S_ρ {:.4e}, λ_max {:.4}, tr H {:.3} ± {:.3}, tr V {:.4} on {} samples",
        m.loss, m.grad_norm, m.sharpness, m.lambda_max, m.trace_h, m.trace_h_stderr, m.trace_v, m.n_eval
    );
    if let Some(d) = &density {
        eprintln!(
            "Hessian spectrum in [{:.4}, {:.4}], bulk up to {:.4}, {} outliers, tr H ≈ {:.3} ({} products)",
            d.support[0],
            d.support[1],
            d.bulk[1],
            d.outliers.len(),
            d.trace_estimate,
            d.hvps
        );
    }
    Ok(())
}

/// A bar without a length for work that reports no progress of its own: it shows the time
/// spent (a plain line every few seconds when stderr is not a terminal).
pub(crate) fn spinner(quiet: bool, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, values::progress_target(quiet));
    bar.set_style(indicatif::ProgressStyle::with_template("{prefix:>14} {spinner} {msg} {elapsed}").expect("static template"));
    bar.set_prefix(prefix.to_string());
    if !quiet {
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
    }
    bar
}

fn load_dataset(name: &values::DatasetArg, samples: Option<usize>, seed: u64) -> Result<Dataset> {
    let mut dc = DataConfig::default();
    name.apply(&mut dc)?;
    if let Some(s) = samples {
        if !(20..=100_000).contains(&s) {
            return Err(Error::invalid("samples", s, "20 ≤ samples ≤ 100000"));
        }
        dc.samples = s;
    }
    Dataset::load(&dc, seed)
}

#[derive(Args, Debug, Clone)]
pub struct LandscapeArgs {
    #[command(flatten)]
    pub cfg: ConfigArgs,
    /// Skip training: the landscape around these weights (params format of `samlab step`; the
    /// dataset and activation come from the config flags).
    #[arg(long, value_parser = values::path)]
    pub params: Option<String>,
    /// Points per side of the 2D grid.
    #[arg(long, default_value_t = 51, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub grid: usize,
    /// The two directions: filter-normalised random ones, the first two principal components of
    /// the training trajectory, or the top two Hessian eigenvectors at the centre.
    #[arg(long, value_enum, default_value_t = Directions::Random)]
    pub directions: Directions,
    /// α, β ∈ [−range, range], 0 < range ≤ 100 (default: 1 for random directions, 1.25 × the
    /// trajectory's extent for pca, 2/√λ₁ for hessian).
    #[arg(long, allow_hyphen_values = true, value_parser = values::number)]
    pub range: Option<f64>,
    /// Hessian directions: most Hessian-vector products of the power iteration per eigenvector,
    /// 1 to 10000.
    #[arg(long, default_value_t = 200, allow_hyphen_values = true, value_parser = values::size::<1, 10_000>)]
    pub power_iters: usize,
    /// Points of each 1D slice (default: as the grid).
    #[arg(long, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub slice_points: Option<usize>,
    /// Weight snapshots taken while training (evenly spaced, plus the initial weights) for the
    /// trajectory projection, 0 to 1000.
    #[arg(long, default_value_t = 20, allow_hyphen_values = true, value_parser = values::size::<0, 1000>)]
    pub snapshots: usize,
    /// Also the straight line from the centre weights (t = 0) to these params (t = 1), for
    /// t ∈ [−0.25, 1.25].
    #[arg(long, value_parser = values::path)]
    pub line_to: Option<String>,
    /// Points of the straight line.
    #[arg(long, default_value_t = 61, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub line_points: usize,
    /// Training samples the losses are measured on, seeded (0: the whole training set).
    #[arg(long, default_value_t = metrics::DEFAULT_EVAL_SIZE, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub eval_size: usize,
    /// Contour lines of the PNG.
    #[arg(long, default_value_t = 12, allow_hyphen_values = true, value_parser = values::size::<0, { usize::MAX }>)]
    pub contours: usize,
    /// Write the heat map with contours and the trajectory as a PNG.
    #[arg(long, value_parser = values::out_path)]
    pub png: Option<String>,
    /// 2D datasets: write the decision surface with the data as a PNG.
    #[arg(long, value_parser = values::out_path)]
    pub surface_png: Option<String>,
    /// Where the JSON goes (- for standard output).
    #[arg(long, default_value = "landscape.json", value_parser = values::out_path)]
    pub out: String,
    #[arg(short, long)]
    pub quiet: bool,
}

/// Trains `cfg`, taking `snapshots` evenly spaced weight snapshots (and the initial weights).
/// Returns the run (finished) and the snapshots, the last one the final weights.
pub fn train_with_snapshots(cfg: RunConfig, data: Arc<Dataset>, init: Arc<Vec<f32>>, snapshots: usize, bar: &ProgressBar) -> Result<(Run, Snapshots)> {
    let engine = open_engine(&cfg, data.clone(), &init)?;
    let mut run = Run::new(cfg, data, init.clone(), engine)?;
    let total = run.total_steps();
    bar.set_length(total);
    let every = total.div_ceil(snapshots.max(1) as u64).max(1);
    let mut snaps: Snapshots = vec![(0, init.to_vec())];
    let mut next = every.min(total);
    while !run.is_done() {
        let done = run.completed_steps();
        run.pump(next.saturating_sub(done).clamp(1, 64))?;
        let params = run.params_blocking()?;
        run.collect()?;
        let done = run.completed_steps();
        bar.set_position(done);
        if done >= next && snaps.last().is_none_or(|s| s.0 != done) {
            snaps.push((done, params));
            next = (done + every).min(total);
        }
    }
    bar.finish();
    let done = run.completed_steps();
    if snaps.last().is_none_or(|s| s.0 != done) {
        snaps.push((done, run.params_blocking()?));
    }
    Ok((run, snaps))
}

pub fn landscape(a: &LandscapeArgs) -> Result<()> {
    let start = Instant::now();
    let cfg = a.cfg.resolve()?;
    let mut lc = LandscapeConfig { grid: a.grid, range: a.range.unwrap_or(1.0), slice_points: a.slice_points.unwrap_or(a.grid), seed: cfg.seed };
    lc.validate()?;
    if !(2..=10_001).contains(&a.line_points) {
        return Err(Error::invalid("line-points", a.line_points, "2 to 10001"));
    }
    if a.contours > 1000 {
        return Err(Error::invalid("contours", a.contours, "0 to 1000"));
    }
    let data = Arc::new(Dataset::load_split(&cfg.dataset, cfg.data_split_seed(), cfg.seed)?);
    if a.directions == Directions::Pca {
        if a.params.is_some() {
            return Err(Error::invalid(
                "directions",
                "pca",
                "random or hessian with --params (--directions pca needs the trajectory of a training run: drop --params)",
            ));
        }
        if a.snapshots < 2 {
            return Err(Error::invalid("snapshots", a.snapshots, "2 to 1000 with --directions pca (two displacements from the centre at least)"));
        }
    }
    if a.surface_png.is_some() && !data.is_points() {
        return Err(Error::invalid("surface-png", cfg.dataset.title(), "a 2D dataset (moons, circles, spirals, xor, blobs, or a CSV file of points)"));
    }
    let line_end = match &a.line_to {
        Some(path) => Some((path.clone(), load_params(path, cfg.model.activation)?)),
        None => None,
    };
    let loaded = match &a.params {
        Some(path) => {
            let (spec, p) = load_params(path, cfg.model.activation)?;
            check_fits(&spec, &data, "params")?;
            Some((spec, p.iter().map(|&v| v as f32).collect::<Vec<f32>>()))
        }
        None => None,
    };
    let spec = match &loaded {
        Some((spec, _)) => spec.clone(),
        None => crate::setup::spec_for(&cfg, &data),
    };
    if let Some((path, (end_spec, _))) = &line_end
        && end_spec.sizes != spec.sizes
    {
        return Err(Error::Data(format!("line-to {path}: layer sizes {:?} differ from the centre's {:?}", end_spec.sizes, spec.sizes)));
    }
    let (center, snapshots, trained) = match loaded {
        Some((_, center)) => (center, Vec::new(), None),
        None => {
            let init = Arc::new(spec.init(cfg.seed));
            let bar = progress_bar(cfg.total_steps(), a.quiet, &cfg.optimizer.label());
            let (run, snaps) = train_with_snapshots(cfg.clone(), data.clone(), init, a.snapshots, &bar)?;
            let center = snaps.last().expect("at least the initial weights").1.clone();
            let summary = json!({"final": run.history.last_eval(), "status": status_text(&run.status), "steps": run.completed_steps()});
            (center, snaps, Some(summary))
        }
    };
    let set = EvalSet::from_train(&data, a.eval_size, cfg.seed);
    // The grid's points on the backend the run asked for: many weight vectors per GPU pass.
    let (mut ev, evaluator): (Box<dyn landscape::LossEvaluator>, String) = match cfg.backend {
        crate::config::Backend::Gpu => {
            let ctx = crate::engine::gpu::GpuContext::request_blocking()?;
            let name = format!("GPU: {}", ctx.describe());
            (Box::new(crate::engine::gpu::evaluator::GpuEvaluator::new(ctx, spec.clone(), &set.x, &set.y, 4096)?), name)
        }
        _ => (Box::new(CpuEvaluator::<f32>::from_eval_set(spec.clone(), &set)?), "CPU (f32)".to_string()),
    };
    let ev = ev.as_mut();
    let land_start = Instant::now();
    let bar = spinner(a.quiet, "landscape");
    let pair = match a.directions {
        Directions::Random => directions::random_pair(&spec, &center, cfg.seed),
        Directions::Pca => directions::pca_pair(&center, &snapshots)?,
        Directions::Hessian => {
            bar.set_message(format!("top two Hessian eigenvectors on {} samples", set.len()));
            let mut obj = set.objective::<f64>(&spec)?;
            directions::hessian_pair(&mut obj, &center, a.power_iters, HESSIAN_TOL, cfg.seed)?
        }
    };
    lc.range = a.range.unwrap_or(pair.info.suggested_range);
    bar.set_message(format!("{0}×{0} grid on {1} samples", lc.grid, set.len()));
    let land = landscape::landscape(ev, &center, &pair, &snapshots, &lc)?;
    bar.finish_and_clear();
    let landscape_s = land_start.elapsed().as_secs_f64();
    let line = match &line_end {
        Some((path, (_, end))) => {
            let end: Vec<f32> = end.iter().map(|&v| v as f32).collect();
            let ts = landscape::linspace(-0.25, 1.25, a.line_points);
            Some(json!({"to": path, "line": landscape::line_between(ev, &center, &end, &ts)?}))
        }
        None => None,
    };
    let surface = if data.n_features == 2 {
        let (xr, yr) = surface::data_bounds(&data, 0.1)?;
        let mut mlp = Mlp::<f32>::new(spec.clone());
        Some(surface::decision_surface(&mut mlp, &center, xr, yr, 101, 101)?)
    } else {
        None
    };
    if let Some(path) = &a.png {
        let img = png::landscape_image(&land.grid, &land.trajectory, a.contours, 512)?;
        write_bytes(path, &img.encode()?)?;
    }
    if let Some(path) = &a.surface_png {
        let (xr, yr) = surface::data_bounds(&data, 0.1)?;
        let mut mlp = Mlp::<f32>::new(spec.clone());
        let s = surface::decision_surface(&mut mlp, &center, xr, yr, 400, 400)?;
        let points: Vec<(f64, f64, u32)> = data.train_x.chunks_exact(2).zip(&data.train_y).map(|(p, &c)| (p[0] as f64, p[1] as f64, c)).collect();
        write_bytes(path, &png::surface_image(&s, &points)?.encode()?)?;
    }
    let doc = document(
        "landscape",
        json!({
            "config": cfg,
            "params": a.params,
            "trained": trained,
            "eval_size": set.len(),
            "landscape_settings": lc,
            "directions": land.directions,
            "off_plane_share": land.off_plane_share,
            "landscape": land,
            "line": line,
            "surface": surface,
            "landscape_time_s": landscape_s,
            "evaluator": evaluator,
            "wall_time_s": start.elapsed().as_secs_f64(),
        }),
    );
    write(&a.out, &serde_json::to_string(&doc).expect("JSON values serialise"))?;
    let tr = land.trajectory.last();
    eprintln!(
        "{}×{} landscape along {} directions (range {:.3}{}) on {} samples in {:.2} s; centre loss {:.4}{}",
        lc.grid,
        lc.grid,
        a.directions.name(),
        lc.range,
        directions_note(&land.directions),
        set.len(),
        landscape_s,
        land.centre.loss,
        tr.map_or(String::new(), |_| {
            let worst = land.trajectory.iter().map(|t| t.relative_residual).fold(0.0, f64::max);
            let share = land.off_plane_share.map_or(String::new(), |s| format!(", {:.1} % of it off the plane", 100.0 * s));
            format!("; trajectory of {} snapshots, largest relative projection residual {:.3}{share}", land.trajectory.len(), worst)
        })
    );
    Ok(())
}

/// Relative tolerance of the power iteration behind Hessian directions (tighter than a
/// measurement's: the vectors themselves are used, not only the eigenvalues).
const HESSIAN_TOL: f64 = 1e-6;

/// ", PC1 63 %, PC2 21 % of the variance" or ", λ₁ 12.3, λ₂ 4.5" (nothing for random directions).
fn directions_note(d: &directions::DirectionsInfo) -> String {
    match (d.explained_variance, d.eigenvalues) {
        (Some([a, b]), _) => format!("; PC1 {:.1} %, PC2 {:.1} % of the trajectory's variance", 100.0 * a, 100.0 * b),
        (_, Some([a, b])) => format!("; λ₁ {a:.4}, λ₂ {b:.4}"),
        _ => String::new(),
    }
}
