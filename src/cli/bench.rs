//! `samlab bench`: median milliseconds per step for every optimizer on the two reference model
//! sizes, per backend, with the ratio to SGD on the same backend. Performance claims live here,
//! never in timed tests.

use super::values::{self, Backends};
use super::{document, progress_bar, write};
use crate::config::{Backend, DatasetName, NormEstimator, OptimizerKind, RunConfig};
use crate::engine::Engine;
use crate::engine::choice::open_engine;
use crate::engine::gpu::GpuEngine;
use crate::error::{Error, Result};
use crate::setup::prepare;
use clap::Args;
use serde_json::json;

/// The reference models of `bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchModel {
    Digits,
    Mnist,
    All,
}

impl clap::ValueEnum for BenchModel {
    fn value_variants<'a>() -> &'a [Self] {
        &[BenchModel::Digits, BenchModel::Mnist, BenchModel::All]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            BenchModel::Digits => "digits",
            BenchModel::Mnist => "mnist",
            BenchModel::All => "all",
        }))
    }
}

/// Most timed steps per optimizer.
pub const MAX_BENCH_STEPS: u64 = 10_000;
/// Most steps recorded per submit.
pub const MAX_STEPS_PER_SUBMIT: u64 = 1_024;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Where to time (both: the CPU, then the GPU).
    #[arg(long, value_enum, ignore_case = true, default_value = "cpu")]
    pub backend: Backends,
    /// digits (64-128-128-10, batch 128), mnist (784-512-512-10, batch 256) or all.
    #[arg(long, value_enum, ignore_case = true, default_value = "all")]
    pub model: BenchModel,
    /// Optimizers as in `compare` (kind[:value]); default: all of them, m-SAM at m = 8 and 1,
    /// RW-SAM with both norm estimators.
    #[arg(long)]
    pub optimizers: Option<String>,
    /// Timed steps per optimizer (after warm-up), 1 to 10000.
    #[arg(long, default_value_t = 40, allow_hyphen_values = true, value_parser = values::int::<1, MAX_BENCH_STEPS>)]
    pub steps: u64,
    /// Steps recorded per submit, 1 to 1024; the time per step is the submit's time divided by
    /// this. Default: 1 on the CPU, 16 on the GPU.
    #[arg(long, allow_hyphen_values = true, value_parser = values::int::<1, MAX_STEPS_PER_SUBMIT>)]
    pub steps_per_submit: Option<u64>,
    /// Side of the loss-landscape grid timed after the optimizers (digits, 1024 evaluation
    /// samples), 2 to 401; 0 skips it.
    #[arg(long, default_value_t = 51, allow_hyphen_values = true, value_parser = landscape_side)]
    pub landscape: usize,
    /// Write the table as JSON too (- for standard output; the table then goes to stderr).
    #[arg(long, value_parser = values::out_path)]
    pub json: Option<String>,
    /// No progress.
    #[arg(short, long)]
    pub quiet: bool,
}

fn landscape_side(s: &str) -> std::result::Result<usize, String> {
    values::size::<0, 401>(s).ok().filter(|&v| v != 1).ok_or_else(|| "0 (none) or an integer from 2 to 401".to_string())
}

/// The optimizer settings benchmarked by default.
pub fn default_suite(base: &RunConfig) -> Vec<RunConfig> {
    let mut out = Vec::new();
    let with = |f: &dyn Fn(&mut RunConfig)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    out.push(with(&|c| c.optimizer.kind = OptimizerKind::Sgd));
    out.push(with(&|c| c.optimizer.kind = OptimizerKind::Usam));
    out.push(with(&|c| c.optimizer.kind = OptimizerKind::Sam));
    out.push(with(&|c| c.optimizer.kind = OptimizerKind::Nsam));
    out.push(with(&|c| c.optimizer.kind = OptimizerKind::Nusam));
    for m in [8, 1] {
        out.push(with(&|c| {
            c.optimizer.kind = OptimizerKind::Msam;
            c.optimizer.m = m;
        }));
    }
    out.push(with(&|c| {
        c.optimizer.kind = OptimizerKind::Musam;
        c.optimizer.m = 8;
    }));
    out.push(with(&|c| c.optimizer.kind = OptimizerKind::Asam));
    out.push(with(&|c| c.optimizer.kind = OptimizerKind::Rwsam));
    out.push(with(&|c| {
        c.optimizer.kind = OptimizerKind::Rwsam;
        c.optimizer.rwsam.estimator = NormEstimator::FiniteDifference;
    }));
    out
}

fn label(c: &RunConfig) -> String {
    let mut l = c.optimizer.label();
    if c.optimizer.kind == OptimizerKind::Rwsam && c.optimizer.rwsam.estimator == NormEstimator::FiniteDifference {
        l.push_str(" (fd)");
    }
    l
}

pub struct BenchRow {
    pub label: String,
    pub median_ms: f64,
    pub engine: String,
    /// Compute dispatches per step (GPU only).
    pub dispatches: Option<usize>,
    /// Steps per device submit the engine chose within its time budget, and the device ms per
    /// step it measured (GPU only).
    pub submit: Option<(usize, Option<f64>)>,
}

/// Median ms per step of `cfg` on its backend: `warmup` untimed steps, then `steps` timed ones
/// in submits of `per_submit` steps.
pub fn time_steps(cfg: &RunConfig, steps: usize, per_submit: usize) -> Result<BenchRow> {
    let (data, init) = prepare(cfg)?;
    let (mut engine, dispatches): (Box<dyn Engine>, Option<usize>) = match cfg.backend {
        Backend::Gpu => {
            let gpu = GpuEngine::new_blocking(cfg, data.clone(), &init)?;
            let n = gpu.dispatches_per_step();
            (Box::new(gpu), Some(n))
        }
        _ => (open_engine(cfg, data.clone(), &init)?, None),
    };
    let engine_name = engine.describe();
    // The same timing core as the browser's bench page.
    let median_ms = crate::bench::median_ms_per_step(engine.as_mut(), cfg, data.n_train(), steps, per_submit)?;
    Ok(BenchRow { label: label(cfg), median_ms, engine: engine_name, dispatches, submit: engine.submit_sizing() })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let backends = match args.backend {
        Backends::Auto => return Err(Error::invalid("backend", "auto", "cpu, gpu or both (a benchmark says where it runs)")),
        b => b.list(),
    };
    let digits = ("digits 64-128-128-10 B=128", DatasetName::Digits, vec![128, 128], 128);
    let mnist = ("mnist5k 784-512-512-10 B=256", DatasetName::Mnist5k, vec![512, 512], 256);
    let models: Vec<(&str, DatasetName, Vec<usize>, usize)> = match args.model {
        BenchModel::Digits => vec![digits],
        BenchModel::Mnist => vec![mnist],
        BenchModel::All => vec![digits, mnist],
    };
    // The table goes to stdout, or to stderr when the JSON does.
    let to_stderr = args.json.as_deref() == Some("-");
    let say = |line: String| if to_stderr { eprintln!("{line}") } else { println!("{line}") };
    let steps = args.steps as usize;
    let mut doc = Vec::new();
    for &backend in &backends {
        for (name, dataset, hidden, batch) in &models {
            let mut base = RunConfig { batch: *batch, backend, ..RunConfig::default() };
            base.dataset.name = *dataset;
            base.model.hidden = hidden.clone();
            let suite = match &args.optimizers {
                Some(list) => super::args::parse_optimizer_list(list, &base)?,
                None => default_suite(&base),
            };
            let mut rows: Vec<BenchRow> = Vec::new();
            let per_submit = args.steps_per_submit.map_or(if backend == Backend::Gpu { 16 } else { 1 }, |n| n as usize);
            let mut skipped = Vec::new();
            let bar = progress_bar(suite.len() as u64, args.quiet, "bench");
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} optimizers {msg} ({elapsed})")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            for cfg in &suite {
                bar.set_message(label(cfg));
                // A setting the device cannot hold (m-SAM's copies on a big model) is reported,
                // not fatal: the rest of the table still means something.
                match time_steps(cfg, steps, per_submit) {
                    Ok(row) => rows.push(row),
                    Err(e) => skipped.push(format!("{}: skipped ({e})", label(cfg))),
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            let engine = rows.first().map(|r| r.engine.clone()).unwrap_or_default();
            let sgd = rows.iter().find(|r| r.label == "SGD").map(|r| r.median_ms);
            say(format!("\n{name} on {engine} ({} timed steps, {per_submit} per submit)", args.steps));
            say(format!("{:<22} {:>12} {:>10} {:>12} {:>14}", "optimizer", "median ms", "÷ SGD", "dispatches", "steps/submit"));
            for r in &rows {
                let ratio = sgd.map_or(String::from("-"), |s| format!("{:.2}", r.median_ms / s));
                let kernels = r.dispatches.map_or(String::from("-"), |d| d.to_string());
                // The engine's own choice within its submit budget (GPU), else the request's size.
                let chosen = r.submit.map_or(String::from("-"), |(k, _)| k.to_string());
                say(format!("{:<22} {:>12.3} {:>10} {:>12} {:>14}", r.label, r.median_ms, ratio, kernels, chosen));
                doc.push(json!({"model": name, "backend": backend, "engine": r.engine, "optimizer": r.label, "median_ms": r.median_ms, "ratio_to_sgd": sgd.map(|s| r.median_ms / s), "dispatches_per_step": r.dispatches, "steps_per_request": per_submit, "engine_steps_per_submit": r.submit.map(|s| s.0), "device_ms_per_step": r.submit.and_then(|s| s.1)}));
            }
            for s in &skipped {
                say(s.clone());
                doc.push(json!({"model": name, "backend": backend, "skipped": s}));
            }
        }
    }
    if args.landscape > 0 && models.iter().any(|m| m.1 == DatasetName::Digits) {
        for backend in &backends {
            let (seconds, engine, points) = time_landscape(*backend, args.landscape)?;
            say(format!(
                "\n{0}×{0} loss landscape (digits MLP, 1024 evaluation samples) on {1}: {2:.3} s ({3:.3} ms per point)",
                args.landscape,
                engine,
                seconds,
                1e3 * seconds / points as f64
            ));
            doc.push(json!({"landscape_grid": args.landscape, "backend": backend, "engine": engine, "seconds": seconds}));
        }
    }
    if let Some(path) = &args.json {
        write(path, &serde_json::to_string_pretty(&document("bench", json!({ "rows": doc }))).expect("serialises"))?;
    }
    Ok(())
}

/// Wall time of a grid×grid filter-normalised landscape around the digits MLP's initial weights
/// on 1024 evaluation samples: (seconds, engine, points).
pub fn time_landscape(backend: Backend, grid: usize) -> Result<(f64, String, usize)> {
    use crate::metrics::EvalSet;
    use crate::metrics::landscape::{self, CpuEvaluator, LossEvaluator};
    let cfg = RunConfig::default();
    let (data, init) = prepare(&cfg)?;
    let spec = crate::setup::spec_for(&cfg, &data);
    let set = EvalSet::from_train(&data, 1024, cfg.seed);
    let (mut ev, engine): (Box<dyn LossEvaluator>, String) = match backend {
        Backend::Gpu => {
            let ctx = crate::engine::gpu::GpuContext::request_blocking()?;
            let name = format!("GPU: {}", ctx.describe());
            (Box::new(crate::engine::gpu::evaluator::GpuEvaluator::new(ctx, spec.clone(), &set.x, &set.y, 4096)?), name)
        }
        _ => (Box::new(CpuEvaluator::<f32>::from_eval_set(spec.clone(), &set)?), "CPU (f32)".to_string()),
    };
    let t = landscape::time_landscape(ev.as_mut(), &spec, &init, grid, set.len(), cfg.seed)?;
    Ok((t.seconds, engine, t.points))
}
