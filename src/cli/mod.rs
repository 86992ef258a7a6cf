//! The headless command-line mode: train, compare, step, bench (native only).
//! Every command writes JSON; bad input ends with status 2 and one line naming what is wrong.

pub mod args;
pub mod bench;
pub mod escape;
pub mod experiment;
pub mod figure;
pub mod lab;
pub mod measure;
pub mod sweep;
pub mod values;

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::engine::choice::open_engine;
use crate::engine::step::{StepInput, Workspace, sam_family_step};
use crate::error::{Error, Result};
use crate::formats::{BatchJson, ParamsJson};
use crate::model::{Activation, Mlp};
use crate::run::{EvalRecord, Run, RunStatus};
use crate::setup::{prepare, spec_for};
use args::{ConfigArgs, OptimizerArgs};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "samlab",
    version,
    about = "SAM lab: sharpness-aware minimization, live. Without a command, opens the app.",
    after_help = "Exit status: 0 done; 1 the work failed (writing output, the GPU, a failed trial); 2 bad input (flags, files), nothing done."
)]
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
        /// Where to write the metrics JSON (- for standard output).
        #[arg(long, default_value = "metrics.json", value_parser = values::out_path)]
        out: String,
        /// Also write the final parameters (params format of `samlab step`).
        #[arg(long, value_parser = values::out_path)]
        save_params: Option<String>,
        /// No progress.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Train several optimizers from the same data, initialisation and batch order.
    Compare {
        /// Comma-separated kind[:value]: the value is m for msam/musam, λ for rwsam, ρ otherwise.
        #[arg(long, default_value = "sgd,sam,msam:8,rwsam")]
        optimizers: String,
        #[command(flatten)]
        cfg: ConfigArgs,
        /// Where to write the JSON (- for standard output; the table then goes to stderr).
        #[arg(long, default_value = "compare.json", value_parser = values::out_path)]
        out: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// One optimizer step on given weights and batch, in f64: an oracle for cross-checking.
    Step {
        /// Params JSON: {"layers":[{"w":[[...in...] × out],"b":[...out...]}]} (at most 256 MiB).
        #[arg(long, value_parser = values::path)]
        params: String,
        /// Batch JSON: {"x":[[...]],"y":[...],"z":[optional Rademacher probe, n_params]} (at most 256 MiB).
        #[arg(long, value_parser = values::path)]
        batch: String,
        /// Hidden activation.
        #[arg(long, value_enum, ignore_case = true, default_value = "relu")]
        activation: Activation,
        #[command(flatten)]
        opt: OptimizerArgs,
        #[arg(long, default_value = "step.json", value_parser = values::out_path)]
        out: String,
        /// Accepted for symmetry (a step prints nothing on the way).
        #[arg(short, long)]
        quiet: bool,
    },
    /// Median milliseconds per step of every optimizer (digits 64-128-128-10, batch 128; mnist5k
    /// 784-512-512-10, batch 256) and each one's ratio to SGD on the same backend.
    Bench(bench::BenchArgs),
    /// Reproduce one of the paper's findings at small scale: m-sweep, label-noise, noise-trace,
    /// rwsam-lambda, cost, drift-check. Writes DIR/<name>.json, .md (mean ± std over seeds)
    /// and .png. A trial that fails is recorded in the report and the others go on; the
    /// command then exits with status 1.
    ///
    /// On many machines: `--plan DIR` writes one trial file per trial, any scheduler runs
    /// `samlab trial` on each (scripts/slurm/ for Slurm), and `--collect DIR` writes the same
    /// report from the results.
    Experiment {
        /// The experiment, or all (every experiment, plus the summary file).
        #[arg(value_parser = experiment_names())]
        name: String,
        /// Seeds per setting, 1 to 100 (default 10; 3 with --quick). Every seed uses the same
        /// train/test split (split_seed 0); comparisons are paired by seed.
        #[arg(long, allow_hyphen_values = true, value_parser = values::size::<1, 100>)]
        seeds: Option<usize>,
        /// A small variant (a few seconds on the CPU engine) for CI.
        #[arg(long)]
        quick: bool,
        /// Where the trials train (cost: both times each on the CPU and the GPU).
        #[arg(long, value_enum, ignore_case = true, default_value = "cpu")]
        backend: values::Backends,
        /// Where the JSON, Markdown and PNG go (default: results; with --collect: the plan's DIR).
        #[arg(long, value_parser = values::path)]
        out: Option<String>,
        /// With `all`: the summary Markdown (default: OUT/RESULTS.md).
        #[arg(long, value_parser = values::path)]
        summary: Option<String>,
        /// Rebuild tables, figures and verdicts from OUT/<name>.json without training.
        #[arg(long)]
        reuse: bool,
        /// With `all`: also run the long experiments (rwsam-grid-mnist: hours on a CPU). Without
        /// it their sections are rebuilt from OUT/<name>.json when a recorded run is there.
        #[arg(long)]
        long: bool,
        /// Train nothing: write DIR/manifest.json and one trial file per trial (DIR/trials/0007.json,
        /// run each with `samlab trial`), and print the ids without a result as an array spec
        /// ("0-4,7"). Planning again into the same DIR keeps its results (resume); drift-check
        /// is one computation, not a set of trials, and cannot be planned.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["collect", "reuse", "summary"], value_parser = values::path)]
        plan: Option<String>,
        /// With --plan: run the trials without a result in this process, one after another.
        #[arg(long, requires = "plan")]
        run_missing: bool,
        /// The report (JSON, Markdown, figure, verdicts) from the results in DIR/results, with the
        /// plan's options (--seeds, --quick, --backend are ignored). Lists missing and failed
        /// trials by id and exits with status 1 if any, unless --partial.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["reuse", "summary"], value_parser = values::path)]
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
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run one planned trial (a file written by `samlab experiment NAME --plan DIR`) and write
    /// its result atomically (a temporary file, then a rename: a killed run leaves no half
    /// result). The same code as `samlab experiment NAME` runs each trial with.
    Trial {
        /// The trial file, e.g. DIR/trials/0007.json.
        #[arg(value_parser = values::path)]
        file: String,
        /// Where the result goes (default: DIR/results/0007.json beside DIR/trials/).
        #[arg(long, value_parser = values::path)]
        out: Option<String>,
        /// Run it even if OUT already holds this trial's result (otherwise it is skipped).
        #[arg(long)]
        force: bool,
        /// Accepted for symmetry with the other commands (a trial prints one line when done).
        #[arg(short, long)]
        quiet: bool,
    },
    /// Every metric of docs/ALGORITHMS.md at given weights, in f64: loss, S_ρ, λ_max (top-k), tr H, tr V,
    /// the m-sharpness curve with its bound, R_m, RW-SAM weights/ESS/estimator correlation.
    Measure(measure::MeasureArgs),
    /// Train (or load --params), then the loss landscape around the weights: a 2D grid along two
    /// directions (filter-normalised random ones, the trajectory's principal components or the
    /// top Hessian eigenvectors), 1D slices, the training trajectory projected onto the grid
    /// with residuals, optionally the line to other weights and a PNG heat map.
    Landscape(measure::LandscapeArgs),
    /// The app's settings from the command line.
    Lab {
        #[command(subcommand)]
        command: lab::LabCommand,
    },
}

/// The experiments `samlab experiment` knows, and `all`.
fn experiment_names() -> clap::builder::PossibleValuesParser {
    let mut names: Vec<&'static str> = crate::experiments::Experiment::ALL.iter().map(|e| e.name()).collect();
    names.push("all");
    clap::builder::PossibleValuesParser::new(names)
}

/// The command line as parsed, or the process ends: help and version with status 0, a
/// usage error with status 2 and one line naming the flag and what it allows.
pub fn parse_args() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                e.exit()
            }
            _ => {
                eprintln!("error: {}", values::clap_line(&e));
                std::process::exit(2)
            }
        },
    }
}

/// Runs the CLI; returns the process exit status.
pub fn main_with(cli: Cli) -> i32 {
    let Some(command) = cli.command else {
        return 0;
    };
    let result = match command {
        Command::Experiment { name, seeds, quick, backend, out, summary, reuse, long, plan, run_missing, collect, partial, check, record, quiet } => {
            let how =
                Sweep { plan: plan.as_deref(), run_missing, long, collect: collect.as_deref(), partial, check: check.as_deref(), record: record.as_deref() };
            let seeds = seeds.unwrap_or(if quick { crate::experiments::QUICK_SEEDS } else { crate::experiments::FULL_SEEDS });
            return status(experiment(&name, seeds, quick, backend, out.as_deref(), summary.as_deref(), reuse, how, quiet));
        }
        Command::Trial { file, out, force, quiet: _ } => sweep::trial(&file, out.as_deref(), force),
        Command::Train { cfg, out, save_params, quiet } => cfg.resolve().and_then(|c| train(c, &out, save_params.as_deref(), quiet)),
        Command::Compare { optimizers, cfg, out, quiet } => cfg.resolve().and_then(|c| compare(&c, &optimizers, &out, quiet)),
        Command::Step { params, batch, activation, opt, out, quiet: _ } => step(&params, &batch, activation, &opt, &out),
        Command::Bench(b) => bench::run(&b),
        Command::Measure(m) => measure::measure(&m),
        Command::Landscape(l) => measure::landscape(&l),
        Command::Lab { command } => return status(lab::run(&command)),
    };
    status(result.map(|()| 0))
}

/// The exit status of a command: its own, or the error's (2 bad input, 1 failed work) with one line.
fn status(result: Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", error_line(&e));
            e.exit_code()
        }
    }
}

/// The one line a failed command prints on stderr.
pub fn error_line(e: &crate::error::Error) -> String {
    format!("error: {}", crate::error::one_line(&e.to_string()))
}

/// A params or batch file (at most `MAX_DATA_BYTES`).
pub(crate) fn read(path: &str) -> Result<String> {
    values::read_limited(path, values::MAX_DATA_BYTES)
}

/// Writes `text` to `path` (its directory made), or to standard output for `-`.
pub(crate) fn write(path: &str, text: &str) -> Result<()> {
    write_bytes(path, text.as_bytes())
}

pub(crate) fn write_bytes(path: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if path == "-" {
        let mut out = std::io::stdout().lock();
        return out.write_all(bytes).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()).map_err(|e| Error::write("standard output", e));
    }
    if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(path, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::write(path, e))
}

/// Every JSON document the CLI writes: `schema` names its format, `samlab_version` the build.
pub(crate) fn document(schema: &str, mut body: serde_json::Value) -> serde_json::Value {
    if let Some(map) = body.as_object_mut() {
        map.insert("schema".into(), json!(format!("samlab.{schema}/1")));
        map.insert("samlab_version".into(), json!(env!("CARGO_PKG_VERSION")));
    }
    body
}

/// A run's status as every JSON output writes it: "finished", "running" or the divergence.
pub(crate) fn status_text(status: &RunStatus) -> String {
    match status {
        RunStatus::Diverged(m) => m.clone(),
        s => format!("{s:?}").to_lowercase(),
    }
}

pub(crate) fn progress_bar(len: u64, quiet: bool, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), values::progress_target(quiet));
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
        document(
            "train",
            json!({
                "label": self.run.config.optimizer.label(),
                "config": self.run.config,
                "seed": self.run.config.seed,
                "backend": self.run.config.backend,
                "engine": self.engine,
                "wall_time_s": self.wall_s,
                "ms_per_step": self.ms_per_step(),
                "steps": self.run.completed_steps(),
                "status": status_text(&self.run.status),
                "final": self.final_eval(),
                "history": self.run.history,
            }),
        )
    }
}

pub fn train_run(cfg: RunConfig, data: Arc<Dataset>, init: Arc<Vec<f32>>, bar: &ProgressBar) -> Result<Trained> {
    let engine = open_engine(&cfg, data.clone(), &init)?;
    train_on(engine, cfg, data, init, bar)
}

/// `train_run` on an engine already open.
pub fn train_on(engine: Box<dyn crate::engine::Engine>, cfg: RunConfig, data: Arc<Dataset>, init: Arc<Vec<f32>>, bar: &ProgressBar) -> Result<Trained> {
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
        write(path, &serde_json::to_string(&params_document(&ParamsJson::from_flat(&spec, &params))).expect("serialises"))?;
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
    if let RunStatus::Diverged(msg) = &trained.run.status {
        eprintln!("warning: {msg}");
    }
    Ok(())
}

/// A params file as the CLI writes it (`step`, `train --save-params`): the layers, its schema
/// and version (readers ignore the extra keys).
pub(crate) fn params_document(p: &ParamsJson) -> serde_json::Value {
    crate::formats::params_document(p)
}

fn compare(base: &RunConfig, optimizers: &str, out: &str, quiet: bool) -> Result<()> {
    let configs = args::parse_optimizer_list(optimizers, base)?;
    let (data, init) = prepare(base)?;
    let mut runs = Vec::new();
    for cfg in configs {
        let bar = progress_bar(cfg.total_steps(), quiet, &cfg.optimizer.label());
        runs.push(train_run(cfg, data.clone(), init.clone(), &bar)?);
    }
    let table = |line: String| if out == "-" { eprintln!("{line}") } else { println!("{line}") };
    table(format!("{:<16} {:>10} {:>10} {:>10} {:>10} {:>10}", "optimizer", "train loss", "train acc", "test acc", "best test", "ms/step"));
    for t in &runs {
        let e = t.final_eval().cloned().unwrap_or_default();
        table(format!(
            "{:<16} {:>10.4} {:>9.2}% {:>9.2}% {:>9.2}% {:>10.3}",
            t.run.config.optimizer.label(),
            e.train_loss,
            100.0 * e.train_acc,
            100.0 * e.test_acc,
            100.0 * e.best_test_acc,
            t.ms_per_step()
        ));
    }
    for t in &runs {
        if let RunStatus::Diverged(msg) = &t.run.status {
            eprintln!("warning: {} {msg}", t.run.config.optimizer.label());
        }
    }
    let doc = document(
        "compare",
        json!({
            "dataset": base.dataset,
            "seed": base.seed,
            "runs": runs.iter().map(Trained::to_json).collect::<Vec<_>>(),
        }),
    );
    write(out, &serde_json::to_string_pretty(&doc).expect("serialises"))
}

fn step(params_path: &str, batch_path: &str, activation: Activation, opt: &OptimizerArgs, out: &str) -> Result<()> {
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
    let doc = document(
        "step",
        json!({
            "layers": updated.layers,
            "optimizer": o,
            "loss_before": report.loss,
            "perturbed_loss": report.perturbed_loss,
            "grad_norm": report.grad_norm,
            "perturbation_norm": report.perturbation_norm,
            "rwsam": report.rwsam,
        }),
    );
    write(out, &serde_json::to_string_pretty(&doc).expect("serialises"))
}

/// How `samlab experiment` runs: in this process, or planned, or collected (`cli::sweep`).
struct Sweep<'a> {
    plan: Option<&'a str>,
    run_missing: bool,
    /// `all` runs the long experiments too.
    long: bool,
    collect: Option<&'a str>,
    partial: bool,
    check: Option<&'a str>,
    record: Option<&'a str>,
}

fn experiment(
    name: &str,
    seeds: usize,
    quick: bool,
    backend: values::Backends,
    out: Option<&str>,
    summary: Option<&str>,
    reuse: bool,
    how: Sweep,
    quiet: bool,
) -> Result<i32> {
    use crate::config::Backend;
    use crate::experiments::{Experiment, Options};
    let cost_backends = backend.list();
    let backend = if backend == values::Backends::Both { Backend::Cpu } else { cost_backends[0] };
    let opts = Options { seeds, quick, backend, cost_backends };
    if name == "all" {
        if how.plan.is_some() || how.collect.is_some() {
            return Err(Error::invalid("experiment", "all", "one experiment with --plan or --collect (plan each into its own directory)"));
        }
        let out = out.unwrap_or("results");
        let summary = summary.map(str::to_string).unwrap_or_else(|| format!("{}/RESULTS.md", out.trim_end_matches('/')));
        let (found, failed) = experiment::run_all(&opts, out, &summary, quiet, reuse, how.long)?;
        eprintln!("wrote {out}/ and {summary}");
        let code = check_and_record(&how, &found)?;
        return Ok(if failed > 0 { 1 } else { code });
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
    let code = check_and_record(&how, &[(exp, written.verdicts)])?;
    if written.failed > 0 {
        eprintln!("error: {} of the trials of {} failed (named in {})", written.failed, exp.name(), written.json);
        return Ok(1);
    }
    Ok(code)
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
