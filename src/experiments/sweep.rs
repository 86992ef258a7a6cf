//! Sweeps as files: an experiment planned as one self-contained file per trial, each run by any
//! process anywhere (`samlab trial`), the results collected into the same report. This module
//! owns the three formats (the manifest, the trial file, the result file), their schema names,
//! and the checks that a file is of this version and schema and belongs to this experiment and
//! plan. Reading and writing files is the CLI's (`cli/sweep.rs`).
//!
//! Architecture invariant: plain data and serde only (no files, no clocks), like the rest of
//! `experiments`.

use super::{Experiment, Options, Trial, TrialResult};
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MANIFEST_SCHEMA: &str = "samlab.sweep-manifest/2";
pub const TRIAL_SCHEMA: &str = "samlab.trial/2";
pub const RESULT_SCHEMA: &str = "samlab.trial-result/2";
/// The schema of the experiment JSON (`samlab experiment`, in one process or collected).
pub const EXPERIMENT_SCHEMA: &str = "samlab.experiment/2";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// DIR/manifest.json: what was planned. The trial files are `trials/<id>.json` for id in
/// 0..trials, their results `results/<id>.json` (`file_name`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: String,
    pub samlab_version: String,
    pub experiment: Experiment,
    pub options: Options,
    pub trials: usize,
}

/// DIR/trials/<id>.json: everything one process needs to run one trial.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialFile {
    pub schema: String,
    pub samlab_version: String,
    pub experiment: Experiment,
    pub options: Options,
    /// The trial's index in the experiment's trial list (the Slurm array index).
    pub id: usize,
    /// The full run config, the series, x and seed, and what to measure at the end.
    pub trial: Trial,
}

/// DIR/results/<id>.json: one trial's outcome, written by the process that ran it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResultFile {
    pub schema: String,
    pub samlab_version: String,
    pub experiment: Experiment,
    pub id: usize,
    /// The trial as it was run (checked against the plan when collecting).
    pub trial: Trial,
    /// The result; None when the trial failed (`error` says why).
    pub result: Option<TrialResult>,
    pub error: Option<String>,
    pub wall_time_s: f64,
    /// The CPU the trial ran on (as in the experiment table) and the host's name.
    pub machine: String,
    pub host: String,
}

/// The plan of an experiment: its manifest and one trial file per trial. `drift-check` is one
/// Monte-Carlo computation of a few seconds, not a set of trials, and is refused.
pub fn plan(exp: Experiment, opts: &Options) -> Result<(Manifest, Vec<TrialFile>)> {
    if !exp.has_trials() {
        let what = if exp.is_computation() {
            "one Monte-Carlo computation"
        } else {
            "a chain of runs (each seed's second phase starts from its first phase's end weights)"
        };
        return Err(Error::Data(format!("{} is {what}, not a set of trials: run it in one process with `samlab experiment {}`", exp.name(), exp.name())));
    }
    let files: Vec<TrialFile> = super::trials(exp, opts)
        .into_iter()
        .enumerate()
        .map(|(id, trial)| TrialFile { schema: TRIAL_SCHEMA.into(), samlab_version: VERSION.into(), experiment: exp, options: opts.clone(), id, trial })
        .collect();
    let manifest = Manifest { schema: MANIFEST_SCHEMA.into(), samlab_version: VERSION.into(), experiment: exp, options: opts.clone(), trials: files.len() };
    Ok((manifest, files))
}

/// The file name of trial `id` (also of its result): 0007.json.
pub fn file_name(id: usize) -> String {
    format!("{id:04}.json")
}

/// Why a file could not be used. `Foreign` files (another schema, version or experiment) stop
/// the command; a `Corrupt` result (truncated, not JSON, missing fields) counts as missing.
#[derive(Debug)]
pub enum Rejected {
    Foreign(Error),
    Corrupt(String),
}

/// Parses a file of `schema`: first its header (schema name and samlab version, so that a file
/// of another version is named as such even if its fields changed), then the whole.
fn parse<T: DeserializeOwned>(text: &str, path: &str, schema: &str, kind: &str) -> std::result::Result<T, Rejected> {
    let value: Value = serde_json::from_str(text).map_err(|e| Rejected::Corrupt(format!("{path}: not a {kind} ({e})")))?;
    match value.get("schema").and_then(Value::as_str) {
        Some(s) if s == schema => {}
        Some(s) => return Err(Rejected::Foreign(Error::Data(format!("{path}: schema {s:?}, expected a {kind} ({schema:?})")))),
        None => return Err(Rejected::Corrupt(format!("{path}: no \"schema\" field: not a {kind} ({schema:?})"))),
    }
    match value.get("samlab_version").and_then(Value::as_str) {
        Some(v) if v == VERSION => {}
        v => {
            let v = v.unwrap_or("an unknown version");
            return Err(Rejected::Foreign(Error::Data(format!("{path}: a {kind} of samlab {v}, this is samlab {VERSION}: plan again with this version"))));
        }
    }
    serde_json::from_value(value).map_err(|e| Rejected::Corrupt(format!("{path}: not a valid {kind} ({e})")))
}

fn strict<T>(r: std::result::Result<T, Rejected>) -> Result<T> {
    r.map_err(|e| match e {
        Rejected::Foreign(e) => e,
        Rejected::Corrupt(m) => Error::Data(m),
    })
}

pub fn parse_manifest(text: &str, path: &str) -> Result<Manifest> {
    strict(parse(text, path, MANIFEST_SCHEMA, "sweep manifest"))
}

/// A trial file, checked to be one trial of its experiment's plan (the id in range and the
/// trial the one that experiment and options define).
pub fn parse_trial_file(text: &str, path: &str) -> Result<TrialFile> {
    let file: TrialFile = strict(parse(text, path, TRIAL_SCHEMA, "trial file"))?;
    let list = super::trials(file.experiment, &file.options);
    match list.get(file.id) {
        Some(t) if same(t, &file.trial) => Ok(file),
        _ => Err(Error::Data(format!("{path}: trial {} is not the trial {} plans with these options (edited by hand?)", file.id, file.experiment.name()))),
    }
}

/// A result file, checked against the plan: the experiment, the id and the trial it ran.
pub fn parse_result(text: &str, path: &str, exp: Experiment, id: usize, trial: &Trial) -> std::result::Result<ResultFile, Rejected> {
    let r: ResultFile = parse(text, path, RESULT_SCHEMA, "trial result")?;
    if r.experiment != exp {
        return Err(Rejected::Foreign(Error::Data(format!(
            "{path}: a result of {}, not {}: a results directory from another experiment",
            r.experiment.name(),
            exp.name()
        ))));
    }
    if r.id != id || !same(&r.trial, trial) {
        return Err(Rejected::Foreign(Error::Data(format!(
            "{path}: the result of another trial than {} (a results directory from another plan)",
            file_name(id)
        ))));
    }
    if r.result.is_none() && r.error.is_none() {
        return Err(Rejected::Corrupt(format!("{path}: neither a result nor an error")));
    }
    Ok(r)
}

/// Whether two trials are the same (the serialised form: Trial holds floats but no NaNs).
pub fn same(a: &Trial, b: &Trial) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

/// Whether a plan's options are the ones asked for.
pub fn same_options(a: &Options, b: &Options) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

/// Ids as a Slurm array spec, consecutive runs compressed: [0, 1, 2, 5, 7, 8] → "0-2,5,7-8".
pub fn id_ranges(ids: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { ids[i].to_string() } else { format!("{}-{}", ids[i], ids[j]) });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Options {
        Options { seeds: 1, quick: true, ..Default::default() }
    }

    #[test]
    fn a_plan_has_one_file_per_trial_in_trial_order() {
        let (m, files) = plan(Experiment::MSweep, &quick()).unwrap();
        let list = super::super::trials(Experiment::MSweep, &quick());
        assert_eq!((m.trials, files.len()), (list.len(), list.len()));
        for (i, (f, t)) in files.iter().zip(&list).enumerate() {
            assert_eq!(f.id, i);
            assert!(same(&f.trial, t));
            let text = serde_json::to_string(f).unwrap();
            assert_eq!(parse_trial_file(&text, "t").unwrap().id, i);
        }
        assert!(plan(Experiment::DriftCheck, &quick()).unwrap_err().to_string().contains("not a set of trials"));
    }

    #[test]
    fn files_of_another_version_or_schema_are_foreign_and_garbage_is_corrupt() {
        let (_, files) = plan(Experiment::MSweep, &quick()).unwrap();
        let mut v = serde_json::to_value(&files[0]).unwrap();
        v["samlab_version"] = "0.0.1".into();
        assert!(parse_trial_file(&v.to_string(), "t.json").unwrap_err().to_string().contains("samlab 0.0.1"));
        v["schema"] = "samlab.other/9".into();
        assert!(parse_trial_file(&v.to_string(), "t.json").unwrap_err().to_string().contains("schema"));
        let t = &files[0].trial;
        assert!(matches!(parse_result("{\"schema\": \"samlab.trial-res", "r", Experiment::MSweep, 0, t), Err(Rejected::Corrupt(_))));
        assert!(matches!(parse_result("{\"schema\": \"samlab.trial/1\"}", "r", Experiment::MSweep, 0, t), Err(Rejected::Foreign(_))));
    }

    #[test]
    fn id_ranges_compress_consecutive_ids() {
        assert_eq!(id_ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(id_ranges(&[3]), "3");
        assert_eq!(id_ranges(&[]), "");
    }
}
