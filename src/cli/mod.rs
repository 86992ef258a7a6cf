//! The headless command-line mode: train, compare, step, bench (native only).
//! Every command writes JSON; bad input ends with status 2 and one line naming what is wrong.

pub mod args;
pub mod bench;
pub mod experiment;
pub mod figure;
pub mod measure;
pub mod sweep;

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::engine::choice::open_engine;
use crate::engine::step::{StepInput, Workspace, sam_family_step};
use crate::error::{Error, Result};
use crate::formats::{BatchJson, ParamsJson};
use crate::model::{Activation, Mlp};
use crate::run::{EvalRecord, Run};
use crate::setup::{prepare, spec_for};
use args::{ConfigArgs, OptimizerArgs};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(name = "samlab", version, about = "SAM lab: sharpness-aware minimization, live. Without a command, opens the app.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train one run and write its metrics (per-epoch train/test loss and accuracy) as JSON.
    Train {
        #[command(flatten)]
        cfg: ConfigArgs,
        /// Where to write the metrics JSON.
        #[arg(long, default_value = "metrics.json")]
        out: String,
        /// Also write the final parameters (params format of `samlab step`).
        #[arg(long)]
        save_params: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Train several optimizers from the same data, initialisation and batch order.
    Compare {
        /// Comma-separated kind[:value]: the value is m for msam/musam, λ for rwsam, ρ otherwise.
        #[arg(long, default_value = "sgd,sam,msam:8,rwsam")]
        optimizers: String,
        #[command(flatten)]
        cfg: ConfigArgs,
        #[arg(long, default_value = "compare.json")]
        out: String,
        #[arg(long)]
        quiet: bool,
    },
    /// One optimizer step on given weights and batch, in f64: an oracle for cross-checking.
    Step {
        /// Params JSON: {"layers":[{"w":[[...in...] × out],"b":[...out...]}]}.
        #[arg(long)]
        params: String,
        /// Batch JSON: {"x":[[...]],"y":[...],"z":[optional Rademacher probe, n_params]}.
        #[arg(long)]
        batch: String,
        /// Hidden activation: relu, tanh, gelu.
        #[arg(long, default_value = "relu")]
        activation: String,
        #[command(flatten)]
        opt: OptimizerArgs,
        #[arg(long, default_value = "step.json")]
        out: String,
    },
    /// Median milliseconds per step of every optimizer (digits 64-128-128-10, batch 128; mnist5k
    /// 784-512-512-10, batch 256) and each one's ratio to SGD on the same backend.
    Bench(bench::BenchArgs),
    /// Reproduce one of the paper's findings at small scale: m-sweep, label-noise, noise-trace,
    /// rwsam-lambda, cost, drift-check. Writes DIR/<name>.json, .md (mean ± std over seeds)
    /// and .png.
    ///
    /// On many machines: `--plan DIR` writes one trial file per trial, any scheduler runs
    /// `samlab trial` on each (scripts/slurm/ for Slurm), and `--collect DIR` writes the same
    /// report from the results.
    Experiment {
        /// m-sweep, label-noise, noise-trace, rwsam-lambda, cost, drift-check, or all (every
        /// experiment, plus the summary file).
        name: String,
        /// Seeds per setting (default 10; 3 with --quick). Every seed uses the same train/test
        /// split (split_seed 0); comparisons are paired by seed.
        #[arg(long)]
        seeds: Option<usize>,
        /// A small variant (a few seconds on the CPU engine) for CI.
        #[arg(long)]
        quick: bool,
        /// cpu, gpu or auto (cost: cpu, gpu or both).
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Where the JSON, Markdown and PNG go (default: results; with --collect: the plan's DIR).
        #[arg(long)]
        out: Option<String>,
        /// With `all`: the summary Markdown (default: OUT/RESULTS.md).
        #[arg(long)]
        summary: Option<String>,
        /// Rebuild tables, figures and verdicts from OUT/<name>.json without training.
        #[arg(long)]
        reuse: bool,
        /// Train nothing: write DIR/manifest.json and one trial file per trial (DIR/trials/0007.json,
        /// run each with `samlab trial`), and print the ids without a result as an array spec
        /// ("0-4,7"). Planning again into the same DIR keeps its results (resume); drift-check
        /// is one computation, not a set of trials, and cannot be planned.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["collect", "reuse", "summary"])]
        plan: Option<String>,
        /// With --plan: run the trials without a result in this process, one after another.
        #[arg(long, requires = "plan")]
        run_missing: bool,
        /// The report (JSON, Markdown, figure, verdicts) from the results in DIR/results, with the
        /// plan's options (--seeds, --quick, --backend are ignored). Lists missing and failed
        /// trials by id and exits with status 1 if any, unless --partial.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["reuse", "summary"])]
        collect: Option<String>,
        /// With --collect: exit 0 even when trials are missing (the report says which).
        #[arg(long, requires = "collect")]
        partial: bool,
        /// Exit with status 1 if any verdict differs from this expectation file
        /// ({"experiment": {"claim": "holds" | "does-not-hold" | "inconclusive"}}).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["plan", "collect"])]
        check: Option<String>,
        /// Write the verdicts of this run as an expectation file (for --check).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["plan", "collect"])]
        record: Option<String>,
        #[arg(long)]
        quiet: bool,
    },
    /// Run one planned trial (a file written by `samlab experiment NAME --plan DIR`) and write
    /// its result atomically (a temporary file, then a rename: a killed run leaves no half
    /// result). The same code as `samlab experiment NAME` runs each trial with.
    Trial {
        /// The trial file, e.g. DIR/trials/0007.json.
        file: String,
        /// Where the result goes (default: DIR/results/0007.json beside DIR/trials/).
        #[arg(long)]
        out: Option<String>,
        /// Run it even if OUT already holds this trial's result (otherwise it is skipped).
        #[arg(long)]
        force: bool,
        /// Accepted for symmetry with the other commands (a trial prints one line when done).
        #[arg(long)]
        quiet: bool,
    },
    /// Every metric of docs/ALGORITHMS.md at given weights, in f64: loss, S_ρ, λ_max (top-k), tr H, tr V,
    /// the m-sharpness curve with its bound, R_m, RW-SAM weights/ESS/estimator correlation.
    Measure(measure::MeasureArgs),
    /// Train (or load --params), then the loss landscape around the weights: a 2D grid along two
    /// filter-normalised directions, 1D slices, the training trajectory projected onto the grid
    /// with residuals, optionally the line to other weights and a PNG heat map.
    Landscape(measure::LandscapeArgs),
}

/// Runs the CLI; returns the process exit status.
pub fn main_with(cli: Cli) -> i32 {
    let Some(command) = cli.command else {
        return 0;
    };
    let result = match command {
        Command::Experiment { name, seeds, quick, backend, out, summary, reuse, plan, run_missing, collect, partial, check, record, quiet } => {
            let how = Sweep { plan: plan.as_deref(), run_missing, collect: collect.as_deref(), partial, check: check.as_deref(), record: record.as_deref() };
            let seeds = seeds.unwrap_or(if quick { crate::experiments::QUICK_SEEDS } else { crate::experiments::FULL_SEEDS });
            return status(experiment(&name, seeds, quick, &backend, out.as_deref(), summary.as_deref(), reuse, how, quiet));
        }
        Command::Trial { file, out, force, quiet: _ } => sweep::trial(&file, out.as_deref(), force),
        Command::Train { cfg, out, save_params, quiet } => cfg.resolve().and_then(|c| train(c, &out, save_params.as_deref(), quiet)),
        Command::Compare { optimizers, cfg, out, quiet } => cfg.resolve().and_then(|c| compare(&c, &optimizers, &out, quiet)),
        Command::Step { params, batch, activation, opt, out } => step(&params, &batch, &activation, &opt, &out),
        Command::Bench(b) => bench::run(&b),
        Command::Measure(m) => measure::measure(&m),
        Command::Landscape(l) => measure::landscape(&l),
    };
    status(result.map(|()| 0))
}

/// The exit status of a command: its own, or 2 with one line for an error.
fn status(result: Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

pub(crate) fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

pub(crate) fn write(path: &str, text: &str) -> Result<()> {
    if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(path, e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

pub(crate) fn progress_bar(len: u64, quiet: bool, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} steps {msg} ({elapsed}, eta {eta})").expect("static template").progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// A finished run as JSON: config, seed, backend, wall time, history, final metrics.
pub struct Trained {
    pub run: Run,
    pub wall_s: f64,
    pub engine: String,
}

impl Trained {
    pub fn final_eval(&self) -> Option<&EvalRecord> {
        self.run.history.last_eval()
    }

    pub fn ms_per_step(&self) -> f64 {
        1e3 * self.wall_s / self.run.completed_steps().max(1) as f64
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "samlab_version": env!("CARGO_PKG_VERSION"),
            "label": self.run.config.optimizer.label(),
            "config": self.run.config,
            "seed": self.run.config.seed,
            "backend": self.run.config.backend,
            "engine": self.engine,
            "wall_time_s": self.wall_s,
            "ms_per_step": self.ms_per_step(),
            "steps": self.run.completed_steps(),
            "status": match &self.run.status { crate::run::RunStatus::Diverged(m) => m.clone(), s => format!("{s:?}").to_lowercase() },
            "final": self.final_eval(),
            "history": self.run.history,
        })
    }
}

pub fn train_run(cfg: RunConfig, data: Arc<Dataset>, init: Arc<Vec<f32>>, bar: &ProgressBar) -> Result<Trained> {
    let engine = open_engine(&cfg, data.clone(), &init)?;
    let engine_name = engine.describe();
    let mut run = Run::new(cfg, data, init, engine)?;
    bar.set_length(run.total_steps());
    let start = Instant::now();
    run.run_to_end(64, |r| {
        bar.set_position(r.completed_steps());
        if let Some(e) = r.history.last_eval() {
            bar.set_message(format!("test acc {:.1}%", 100.0 * e.test_acc));
        }
    })?;
    bar.finish();
    Ok(Trained { wall_s: start.elapsed().as_secs_f64(), engine: engine_name, run })
}

fn train(cfg: RunConfig, out: &str, save_params: Option<&str>, quiet: bool) -> Result<()> {
    let (data, init) = prepare(&cfg)?;
    let bar = progress_bar(cfg.total_steps(), quiet, &cfg.optimizer.label());
    let mut trained = train_run(cfg, data, init, &bar)?;
    write(out, &serde_json::to_string_pretty(&trained.to_json()).expect("JSON values serialise"))?;
    if let Some(path) = save_params {
        let params: Vec<f64> = trained.run.params_blocking()?.iter().map(|&v| v as f64).collect();
        let spec = spec_for(&trained.run.config, &trained.run.data);
        write(path, &serde_json::to_string(&ParamsJson::from_flat(&spec, &params)).expect("serialises"))?;
    }
    if let Some(e) = trained.final_eval() {
        eprintln!(
            "{}: train loss {:.4}, train acc {:.2}%, test acc {:.2}% (best {:.2}%), {:.3} ms/step on {}",
            trained.run.config.optimizer.label(),
            e.train_loss,
            100.0 * e.train_acc,
            100.0 * e.test_acc,
            100.0 * e.best_test_acc,
            trained.ms_per_step(),
            trained.engine
        );
    }
    if let crate::run::RunStatus::Diverged(msg) = &trained.run.status {
        eprintln!("warning: {msg}");
    }
    Ok(())
}

fn compare(base: &RunConfig, optimizers: &str, out: &str, quiet: bool) -> Result<()> {
    let configs = args::parse_optimizer_list(optimizers, base)?;
    let (data, init) = prepare(base)?;
    let mut runs = Vec::new();
    for cfg in configs {
        let bar = progress_bar(cfg.total_steps(), quiet, &cfg.optimizer.label());
        runs.push(train_run(cfg, data.clone(), init.clone(), &bar)?);
    }
    println!("{:<16} {:>10} {:>10} {:>10} {:>10} {:>10}", "optimizer", "train loss", "train acc", "test acc", "best test", "ms/step");
    for t in &runs {
        let e = t.final_eval().cloned().unwrap_or_default();
        println!(
            "{:<16} {:>10.4} {:>9.2}% {:>9.2}% {:>9.2}% {:>10.3}",
            t.run.config.optimizer.label(),
            e.train_loss,
            100.0 * e.train_acc,
            100.0 * e.test_acc,
            100.0 * e.best_test_acc,
            t.ms_per_step()
        );
    }
    let doc = json!({
        "dataset": base.dataset,
        "seed": base.seed,
        "runs": runs.iter().map(Trained::to_json).collect::<Vec<_>>(),
    });
    write(out, &serde_json::to_string_pretty(&doc).expect("serialises"))
}

fn step(params_path: &str, batch_path: &str, activation: &str, opt: &OptimizerArgs, out: &str) -> Result<()> {
    let activation: Activation =
        serde_json::from_value(json!(activation.to_ascii_lowercase())).map_err(|_| Error::invalid("activation", activation, "relu, tanh or gelu"))?;
    let (spec, mut params) = ParamsJson::parse(&read(params_path)?, params_path)?.to_flat(activation)?;
    let batch = BatchJson::parse(&read(batch_path)?, batch_path)?.check(&spec)?;
    let mut cfg = RunConfig::default();
    cfg.optimizer.kind = crate::config::OptimizerKind::Sgd;
    opt.apply(&mut cfg)?;
    let o = &cfg.optimizer;
    // Validate the optimizer settings against this batch (m must divide its size).
    let mut check = cfg.clone();
    check.batch = batch.y.len();
    check.dataset.name = crate::config::DatasetName::Moons;
    check.dataset.samples = 100_000;
    check.validate()?;
    let needs_probe = o.kind == crate::config::OptimizerKind::Rwsam && o.rwsam.estimator == crate::config::NormEstimator::FiniteDifference;
    if needs_probe && batch.z.is_none() {
        return Err(Error::Data("batch: the finite-difference estimator needs the Rademacher probe \"z\" in the batch file".into()));
    }
    let mut mlp = Mlp::<f64>::new(spec.clone());
    let mut velocity = vec![0.0; params.len()];
    let input = StepInput { x: &batch.x, y: &batch.y, probe: batch.z.as_deref(), full: None };
    let report = sam_family_step(&mut mlp, &mut params, &mut velocity, input, o, o.lr, &mut Workspace::default());
    let updated = ParamsJson::from_flat(&spec, &params);
    let doc = json!({
        "layers": updated.layers,
        "optimizer": o,
        "loss_before": report.loss,
        "perturbed_loss": report.perturbed_loss,
        "grad_norm": report.grad_norm,
        "perturbation_norm": report.perturbation_norm,
        "rwsam": report.rwsam,
    });
    write(out, &serde_json::to_string_pretty(&doc).expect("serialises"))
}

/// How `samlab experiment` runs: in this process, or planned, or collected (`cli::sweep`).
struct Sweep<'a> {
    plan: Option<&'a str>,
    run_missing: bool,
    collect: Option<&'a str>,
    partial: bool,
    check: Option<&'a str>,
    record: Option<&'a str>,
}

fn experiment(
    name: &str,
    seeds: usize,
    quick: bool,
    backend: &str,
    out: Option<&str>,
    summary: Option<&str>,
    reuse: bool,
    how: Sweep,
    quiet: bool,
) -> Result<i32> {
    use crate::config::Backend;
    use crate::experiments::{Experiment, Options};
    if !(1..=100).contains(&seeds) {
        return Err(Error::invalid("seeds", seeds, "1 to 100"));
    }
    let (backend, cost_backends) = match backend {
        "both" => (Backend::Cpu, vec![Backend::Cpu, Backend::Gpu]),
        b => {
            let b: Backend = b.parse()?;
            (b, vec![b])
        }
    };
    let opts = Options { seeds, quick, backend, cost_backends };
    if name == "all" {
        if how.plan.is_some() || how.collect.is_some() {
            return Err(Error::invalid("experiment", "all", "one experiment with --plan or --collect (plan each into its own directory)"));
        }
        let out = out.unwrap_or("results");
        let summary = summary.map(str::to_string).unwrap_or_else(|| format!("{}/RESULTS.md", out.trim_end_matches('/')));
        let found = experiment::run_all(&opts, out, &summary, quiet, reuse)?;
        eprintln!("wrote {out}/ and {summary}");
        return check_and_record(&how, &found);
    }
    let exp: Experiment = name.parse()?;
    if let Some(dir) = how.plan {
        sweep::plan(exp, &opts, dir, how.run_missing, quiet)?;
        return Ok(0);
    }
    if let Some(dir) = how.collect {
        return sweep::collect(exp, dir, out, how.partial);
    }
    let out = out.unwrap_or("results");
    let written = experiment::run_or_reuse(exp, &opts, out, quiet, reuse)?;
    println!("{}", written.table);
    eprintln!("wrote {}, {} and {}", written.json, written.markdown, written.png);
    check_and_record(&how, &[(exp, written.verdicts)])
}

/// `--record` writes the verdicts as an expectation file; `--check` compares them with one:
/// status 1 and one line per difference when any verdict changed.
fn check_and_record(how: &Sweep, found: &[(crate::experiments::Experiment, Vec<crate::experiments::Verdict>)]) -> Result<i32> {
    if let Some(path) = how.record {
        write(path, &serde_json::to_string_pretty(&experiment::expectations(found)).expect("serialises"))?;
        eprintln!("recorded the verdicts in {path}");
    }
    if let Some(path) = how.check {
        let diffs = experiment::check(path, found)?;
        if !diffs.is_empty() {
            for d in &diffs {
                eprintln!("verdict changed: {d}");
            }
            eprintln!("{} verdict(s) differ from {path}", diffs.len());
            return Ok(1);
        }
        eprintln!("every verdict is as recorded in {path}");
    }
    Ok(0)
}
