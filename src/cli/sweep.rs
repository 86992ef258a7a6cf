//! Sweeps beyond one process: `samlab experiment NAME --plan DIR` writes one trial file per
//! trial and a manifest, `samlab trial` runs one trial file (the in-process runner's
//! `run_trial`) and writes its result atomically, `--collect DIR` builds the experiment's report
//! from whatever results exist (the in-process runner's `Parts::from_results`/`write_report`).
//! Any scheduler that runs a command per file can run the trials (Slurm: scripts/slurm/).
//!
//! Resume: planning again into the same DIR keeps every result and prints (on stdout) the ids
//! that still have none as a Slurm array spec; `samlab trial` skips a trial whose result is
//! already there; `--run-missing` runs the missing ones in this process.

use super::experiment::{Parts, Written, machine, run_trial, trial_bar, write_report};
use crate::error::{Error, Result};
use crate::experiments::sweep::{self, Manifest, Rejected, ResultFile, TrialFile, file_name, id_ranges};
use crate::experiments::{Experiment, Options, Trial, TrialResult};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Writes `text` to `path` atomically: a temporary file in the same directory, then a rename,
/// so that a killed process leaves the old file or none, never half of one.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let name = path_str(path);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::write(&name, e))?;
    let file = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| Error::write(&path_str(&tmp), e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::write(&name, e)
    })
}

/// One line on stderr in one write: trials run side by side (parallel, xargs -P) share a
/// terminal, and eprintln! writes a line in pieces that interleave.
fn say(line: String) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(format!("{line}\n").as_bytes());
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let name = path_str(&path);
    let text = super::values::read_bounded(&path, super::values::MAX_CONFIG_BYTES).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Data(format!("{name}: no such file: {} holds no plan (make one with `samlab experiment NAME --plan DIR`)", dir.display()))
        } else {
            Error::io(&name, e)
        }
    })?;
    sweep::parse_manifest(&text, &name)
}

/// The state of one planned trial's result.
enum Found {
    Done(Box<ResultFile>),
    Failed(String),
    Missing,
    /// Unreadable or malformed: reported by name, then treated as missing.
    Corrupt(String),
}

/// Looks up trial `id`'s result at `path`. Files of another version, schema, experiment or plan
/// are errors (a wrong directory), not missing results.
fn find_result(path: &Path, exp: Experiment, id: usize, trial: &Trial) -> Result<Found> {
    let text = match super::values::read_bounded(path, super::values::MAX_CONFIG_BYTES) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Ok(Found::Corrupt(format!("{}: {e}", path.display()))),
    };
    match sweep::parse_result(&text, &path_str(path), exp, id, trial) {
        Ok(r) if r.result.is_some() => Ok(Found::Done(Box::new(r))),
        Ok(r) => Ok(Found::Failed(r.error.unwrap_or_default())),
        Err(Rejected::Corrupt(m)) => Ok(Found::Corrupt(m)),
        Err(Rejected::Foreign(e)) => Err(e),
    }
}

/// `samlab experiment NAME --plan DIR`: writes DIR/manifest.json and DIR/trials/<id>.json and
/// prints the ids without a result (all of them the first time) on stdout. A DIR that holds a
/// plan of another experiment or other options is refused; the same plan is kept with its results.
pub fn plan(exp: Experiment, opts: &Options, dir: &str, run_missing: bool, quiet: bool) -> Result<()> {
    let dir = Path::new(dir);
    let (manifest, files) = sweep::plan(exp, opts)?;
    if dir.join("manifest.json").exists() {
        let old = read_manifest(dir)?;
        if old.experiment != exp || !sweep::same_options(&old.options, opts) {
            return Err(Error::Data(format!(
                "{}: holds a plan of {} with options {}, not {} with {}: plan into another directory",
                dir.display(),
                old.experiment.name(),
                json!(old.options),
                exp.name(),
                json!(opts)
            )));
        }
    }
    for f in &files {
        write_atomic(&dir.join("trials").join(file_name(f.id)), &serde_json::to_string_pretty(f).expect("serialises"))?;
    }
    std::fs::create_dir_all(dir.join("results")).map_err(|e| Error::write(&path_str(&dir.join("results")), e))?;
    write_atomic(&dir.join("manifest.json"), &serde_json::to_string_pretty(&manifest).expect("serialises"))?;
    let mut todo = Vec::new();
    for f in &files {
        match find_result(&dir.join("results").join(file_name(f.id)), exp, f.id, &f.trial)? {
            Found::Done(_) => {}
            Found::Corrupt(m) => {
                eprintln!("warning: {m} (treated as missing)");
                todo.push(f.id);
            }
            Found::Failed(_) | Found::Missing => todo.push(f.id),
        }
    }
    eprintln!(
        "planned {} trials of {} in {}: {} with a result, {} to run{}",
        files.len(),
        exp.name(),
        dir.display(),
        files.len() - todo.len(),
        todo.len(),
        if todo.is_empty() { String::new() } else { format!(" (ids {})", id_ranges(&todo)) }
    );
    if !run_missing {
        println!("{}", id_ranges(&todo));
        return Ok(());
    }
    let bar = trial_bar(todo.len(), quiet, exp.name());
    for &id in &todo {
        let f = &files[id];
        bar.set_message(format!("{} seed {}", f.trial.series, f.trial.seed));
        run_file(f, &dir.join("results").join(file_name(id)))?;
        bar.inc(1);
    }
    bar.finish();
    eprintln!("ran {} trials; collect them with `samlab experiment {} --collect {}`", todo.len(), exp.name(), dir.display());
    Ok(())
}

/// Runs one trial file and writes its result (or its failure) atomically to `out`.
fn run_file(f: &TrialFile, out: &Path) -> Result<()> {
    let start = Instant::now();
    let outcome = run_trial(&f.trial);
    let file = ResultFile {
        schema: sweep::RESULT_SCHEMA.into(),
        samlab_version: sweep::VERSION.into(),
        experiment: f.experiment,
        id: f.id,
        trial: f.trial.clone(),
        result: outcome.as_ref().ok().cloned(),
        error: outcome.as_ref().err().map(|e| e.to_string()),
        wall_time_s: start.elapsed().as_secs_f64(),
        machine: machine(),
        host: host(),
    };
    write_atomic(out, &serde_json::to_string_pretty(&file).expect("serialises"))?;
    outcome.map(|_| ())
}

/// Where a trial file's result goes by default: DIR/trials/0007.json → DIR/results/0007.json.
fn default_out(trial_path: &Path) -> PathBuf {
    let name = trial_path.file_name().unwrap_or_default();
    match trial_path.parent() {
        Some(p) if p.file_name().is_some_and(|n| n == "trials") => p.with_file_name("results").join(name),
        Some(p) => p.join(format!("result-{}", name.to_string_lossy())),
        None => PathBuf::from(format!("result-{}", name.to_string_lossy())),
    }
}

/// `samlab trial FILE --out RESULT`: runs exactly one trial; a result already at RESULT for this
/// very trial is kept (the trial is skipped) unless `force`.
pub fn trial(file: &str, out: Option<&str>, force: bool) -> Result<()> {
    let text = super::values::read_limited(file, super::values::MAX_CONFIG_BYTES)?;
    let f = sweep::parse_trial_file(&text, file)?;
    let out = out.map(PathBuf::from).unwrap_or_else(|| default_out(Path::new(file)));
    if !force {
        match find_result(&out, f.experiment, f.id, &f.trial) {
            Ok(Found::Done(_)) => {
                say(format!("{}: already holds this trial's result; skipped (--force runs it again)", out.display()));
                return Ok(());
            }
            Ok(Found::Corrupt(m)) => say(format!("warning: {m}; running the trial again")),
            Ok(_) => {}
            Err(e) => say(format!("warning: {e}; overwriting it")),
        }
    }
    run_file(&f, &out).map_err(|e| match e {
        // The trial's own failure (recorded in its result file) is a failed run: status 1.
        Error::Invalid { .. } | Error::Data(_) | Error::Json { .. } => Error::Failed { what: format!("trial {}", f.id), message: e.to_string() },
        other => other,
    })?;
    say(format!("{} trial {} ({} seed {}): wrote {}", f.experiment.name(), f.id, f.trial.series, f.trial.seed, out.display()));
    Ok(())
}

/// `samlab experiment NAME --collect DIR`: the report from whatever results exist (into `out`,
/// DIR by default). Returns the exit status: 0 when every trial has a result, 1 when some are
/// missing or failed (0 with `partial`, the report then saying which).
pub fn collect(exp: Experiment, dir: &str, out: Option<&str>, partial: bool) -> Result<i32> {
    let dir_path = Path::new(dir);
    let manifest = read_manifest(dir_path)?;
    if manifest.experiment != exp {
        return Err(Error::Data(format!("{dir}: holds a plan of {}, not {}", manifest.experiment.name(), exp.name())));
    }
    let opts = manifest.options.clone();
    let list = crate::experiments::trials(exp, &opts);
    if list.len() != manifest.trials {
        return Err(Error::Data(format!("{}/manifest.json: plans {} trials, {} defines {} with its options", dir, manifest.trials, exp.name(), list.len())));
    }
    let (mut trials, mut results) = (Vec::<Trial>::new(), Vec::<TrialResult>::new());
    let (mut missing, mut failed, mut corrupt) = (Vec::new(), Vec::new(), Vec::new());
    let (mut seconds, mut machines) = (0.0, Vec::<String>::new());
    for (id, t) in list.iter().enumerate() {
        match find_result(&dir_path.join("results").join(file_name(id)), exp, id, t)? {
            Found::Done(r) => {
                seconds += r.wall_time_s;
                if !machines.contains(&r.machine) {
                    machines.push(r.machine.clone());
                }
                trials.push(t.clone());
                results.push(r.result.expect("a done result"));
            }
            Found::Failed(e) => failed.push((id, e)),
            Found::Missing => missing.push(id),
            Found::Corrupt(m) => {
                eprintln!("warning: {m} (treated as missing)");
                corrupt.push(id);
                missing.push(id);
            }
        }
    }
    for (id, e) in &failed {
        eprintln!("trial {id} failed: {e}");
    }
    if !missing.is_empty() {
        eprintln!("missing: {} of {} trials (ids {})", missing.len(), list.len(), id_ranges(&missing));
    }
    let incomplete = !missing.is_empty() || !failed.is_empty();
    if results.is_empty() {
        eprintln!("no results in {dir}/results yet: nothing to collect");
        return Ok(1);
    }
    let mut parts = Parts::from_results(exp, &trials, &results, opts.quick);
    let failed_ids: Vec<usize> = failed.iter().map(|f| f.0).collect();
    if incomplete {
        parts.note = format!(
            "**Partial**: {} of {} trials collected; missing: {}; failed: {}.\n\n",
            results.len(),
            list.len(),
            if missing.is_empty() { "none".into() } else { id_ranges(&missing) },
            if failed.is_empty() { "none".into() } else { id_ranges(&failed_ids) },
        );
    }
    parts.doc["plan"] = json!(dir);
    parts.doc["missing"] = json!(missing);
    parts.doc["corrupt"] = json!(corrupt);
    parts.doc["failed"] = json!(failed.iter().map(|(id, e)| json!({ "id": id, "error": e })).collect::<Vec<_>>());
    let timing = format!("trial time {seconds:.1} s in total over {} trial processes", results.len());
    let written: Written = write_report(exp, &opts, out.unwrap_or(dir), parts, &timing, seconds, &machines.join("; "))?;
    println!("{}", written.table);
    eprintln!("collected {} of {} trials; wrote {}, {} and {}", results.len(), list.len(), written.json, written.markdown, written.png);
    Ok(if incomplete && !partial { 1 } else { 0 })
}
