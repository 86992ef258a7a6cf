//! Runs an experiment's trials to the end (natively, blocking) and writes its JSON, Markdown
//! table and PNG figure.

use super::drift::{DriftConfig, drift_check};
use super::figure::{drift_panels, experiment_panels, render};
use super::{Experiment, Options, Trial, TrialResult, markdown_table, trials};
use crate::cli::{prepare, progress_bar, write};
use crate::config::Backend;
use crate::engine::make_engine;
use crate::error::Result;
use crate::metrics::RunMeasurer;
use crate::run::Run;
use serde_json::json;
use std::time::Instant;

/// Trains one trial to the end; measures at the end when asked; times steps for `cost`.
pub fn run_trial(trial: &Trial) -> Result<TrialResult> {
    let cfg = &trial.config;
    let (data, init) = prepare(cfg)?;
    let engine = make_engine(cfg, data.clone(), &init)?;
    let engine_name = engine.describe();
    let mut run = Run::new(cfg.clone(), data.clone(), init, engine)?;
    let start = Instant::now();
    run.run_to_end(64, |_| {})?;
    let mut ms_per_step = 1e3 * start.elapsed().as_secs_f64() / run.completed_steps().max(1) as f64;
    if trial.target_acc.is_some() {
        // Time-to-target uses the step time alone (evaluations excluded), as `bench` measures it.
        ms_per_step = crate::cli::bench::time_steps(cfg, 40, if cfg.backend == Backend::Gpu { 16 } else { 1 })?.median_ms;
    }
    let measurement = if trial.measure && run.status == crate::run::RunStatus::Finished {
        let params = run.params_blocking()?;
        Some(RunMeasurer::new(cfg, &data)?.measure(run.completed_steps(), &params)?)
    } else {
        None
    };
    Ok(TrialResult::from_run(trial, &run, measurement.as_ref(), &engine_name, ms_per_step))
}

/// The machine, for every table.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
}

/// What `run_experiment` produced.
pub struct Written {
    pub json: String,
    pub markdown: String,
    pub png: String,
    pub table: String,
}

pub fn run_experiment(exp: Experiment, opts: &Options, out_dir: &str, quiet: bool) -> Result<Written> {
    let paths = |ext: &str| format!("{}/{}.{ext}", out_dir.trim_end_matches('/'), exp.name());
    let start = Instant::now();
    let (doc, table, panels) = if exp == Experiment::DriftCheck {
        let report = drift_check(&DriftConfig::new(opts.quick, 0));
        let table = super::drift::markdown(&report);
        let panels = drift_panels(&report);
        (json!({ "report": report }), table, panels)
    } else {
        let list = trials(exp, opts);
        let bar = progress_bar(list.len() as u64, quiet, exp.name());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} runs {msg} ({elapsed}, eta {eta})")
                .expect("static template")
                .progress_chars("=> "),
        );
        let mut results = Vec::new();
        for t in &list {
            bar.set_message(format!("{} seed {}", t.series, t.seed));
            results.push(run_trial(t)?);
            bar.inc(1);
        }
        bar.finish();
        let table = markdown_table(exp, &results);
        let panels = experiment_panels(exp, &results);
        (json!({ "trials": list, "results": results }), table, panels)
    };
    let seconds = start.elapsed().as_secs_f64();
    let header = format!(
        "## {}\n\n{}\n\nSeeds: {}{}; backend: {:?}; machine: {}; wall time {:.1} s.\n\n",
        exp.name(),
        exp.describe(),
        opts.seeds,
        if opts.quick { " (quick)" } else { "" },
        opts.backend,
        machine(),
        seconds
    );
    let markdown = format!("{header}{table}");
    let mut doc = doc;
    doc["experiment"] = json!(exp.name());
    doc["options"] = json!(opts);
    doc["machine"] = json!(machine());
    doc["wall_time_s"] = json!(seconds);
    let written = Written { json: paths("json"), markdown: paths("md"), png: paths("png"), table };
    write(&written.json, &serde_json::to_string_pretty(&doc).expect("serialises"))?;
    write(&written.markdown, &markdown)?;
    render(&written.png, &panels)?;
    Ok(written)
}
