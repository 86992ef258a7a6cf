//! Runs an experiment's trials to the end (natively, blocking) and writes its JSON, Markdown
//! table and PNG figure.

use super::figure::render;
use super::{progress_bar, write};
use crate::config::Backend;
use crate::engine::choice::open_engine;
use crate::error::Result;
use crate::experiments::drift::{DriftConfig, drift_check};
use crate::experiments::panels::{drift_panels, experiment_panels};
use crate::experiments::sig;
use crate::experiments::{Experiment, Options, Trial, TrialResult, Verdict, markdown_table, split_note, trials, verdict_table};
use crate::metrics::RunMeasurer;
use crate::run::Run;
use crate::setup::prepare;
use serde_json::json;
use std::time::Instant;

/// Trains one trial to the end; measures at the end when asked; times steps for `cost`.
pub fn run_trial(trial: &Trial) -> Result<TrialResult> {
    let cfg = &trial.config;
    let (data, init) = prepare(cfg)?;
    let engine = open_engine(cfg, data.clone(), &init)?;
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
    pub verdicts: Vec<Verdict>,
    pub json: String,
    pub markdown: String,
    pub png: String,
    pub table: String,
    /// Trials that failed (recorded in the JSON's `failed`, left out of the tables).
    pub failed: usize,
}

pub fn run_experiment(exp: Experiment, opts: &Options, out_dir: &str, quiet: bool) -> Result<Written> {
    run_or_reuse(exp, opts, out_dir, quiet, false)
}

/// As `run_experiment`, or with `reuse` the runs of an earlier `OUT/<name>.json` (no training):
/// the tables, figures and verdicts are rebuilt from the recorded results.
pub fn run_or_reuse(exp: Experiment, opts: &Options, out_dir: &str, quiet: bool, reuse: bool) -> Result<Written> {
    let start = Instant::now();
    let earlier = if reuse {
        let path = format!("{}/{}.json", out_dir.trim_end_matches('/'), exp.name());
        let text = super::values::read_limited(&path, super::values::MAX_CONFIG_BYTES)?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| crate::error::Error::json(&path, e))?;
        Some(doc)
    } else {
        None
    };
    let parts = if exp == Experiment::DriftCheck {
        let report: crate::experiments::drift::DriftReport = match &earlier {
            Some(doc) => serde_json::from_value(doc["report"].clone()).map_err(|e| crate::error::Error::json("drift-check report", e))?,
            None => drift_check(&DriftConfig::new(opts.quick, 0)),
        };
        let table = crate::experiments::drift::markdown(&report);
        let panels = drift_panels(&report);
        let verdicts = vec![crate::experiments::drift::verdict(&report)];
        Parts { doc: json!({ "report": report }), table, panels, verdicts, note: String::new() }
    } else if exp == Experiment::RwsamDrift {
        use crate::experiments::rwsam_drift as rd;
        let report: rd::RwDriftReport = match &earlier {
            Some(doc) => serde_json::from_value(doc["report"].clone()).map_err(|e| crate::error::Error::json("rwsam-drift report", e))?,
            None => {
                let mut report = rd::rwsam_drift(&rd::RwDriftConfig::new(opts.quick, 0));
                report.mlp = Some(crate::experiments::rwsam_drift_mlp::mlp_drift(&crate::experiments::rwsam_drift_mlp::MlpDriftConfig::new(opts.quick, 0))?);
                report
            }
        };
        let table = rd::markdown(&report);
        let panels = crate::experiments::panels::rwsam_drift_panels(&report);
        let verdicts = rd::verdicts(&report);
        Parts { doc: json!({ "report": report }), table, panels, verdicts, note: String::new() }
    } else if exp == Experiment::Escape {
        use crate::experiments::escape as es;
        let report: es::EscapeReport = match &earlier {
            Some(doc) => serde_json::from_value(doc["report"].clone()).map_err(|e| crate::error::Error::json("escape report", e))?,
            None => super::escape::run_escape(&es::EscapeConfig::new(opts), quiet)?,
        };
        let off: Vec<String> =
            report.seeds.iter().flat_map(|s| s.arms.iter().filter(|a| !a.starts_at_w_sgd).map(move |a| format!("{} seed {}", a.arm, s.seed))).collect();
        let note = if off.is_empty() { String::new() } else { format!("**Phase 2 did not start at w_SGD** for {}.\n\n", off.join(", ")) };
        Parts { doc: json!({ "report": report }), table: es::markdown(&report), panels: es::panels(&report), verdicts: es::verdicts(&report), note }
    } else {
        let mut failed: Vec<serde_json::Value> = Vec::new();
        let (list, results): (Vec<Trial>, Vec<TrialResult>) = match &earlier {
            Some(doc) => {
                let list: Vec<Trial> = serde_json::from_value(doc["trials"].clone()).map_err(|e| crate::error::Error::json("trials", e))?;
                let results: Vec<TrialResult> = serde_json::from_value(doc["results"].clone()).map_err(|e| crate::error::Error::json("results", e))?;
                if list.is_empty() || results.is_empty() {
                    return Err(crate::error::Error::Data(format!(
                        "{}/{}.json holds no trial results to reuse (run the experiment without --reuse first)",
                        out_dir.trim_end_matches('/'),
                        exp.name()
                    )));
                }
                failed = doc["failed"].as_array().cloned().unwrap_or_default();
                (list, results)
            }
            None => {
                let all = trials(exp, opts);
                let bar = trial_bar(all.len(), quiet, exp.name());
                let (mut list, mut results) = (Vec::new(), Vec::new());
                for (id, t) in all.iter().enumerate() {
                    bar.set_message(format!("{} seed {}", t.series, t.seed));
                    // A failed trial is recorded and the others go on (as in the app); the
                    // command exits with status 1 at the end.
                    match run_trial(t) {
                        Ok(r) => {
                            list.push(t.clone());
                            results.push(r);
                        }
                        Err(e) => {
                            bar.suspend(|| eprintln!("warning: trial {id} ({} seed {}) failed: {e}", t.series, t.seed));
                            failed.push(json!({ "id": id, "series": t.series, "seed": t.seed, "error": e.to_string() }));
                        }
                    }
                    bar.inc(1);
                }
                bar.finish();
                (list, results)
            }
        };
        let mut parts = Parts::from_results(exp, &list, &results, opts.quick);
        if !failed.is_empty() {
            parts.note = format!("**{} trial(s) failed** and are left out of the table (see `failed` in the JSON).\n\n", failed.len());
            parts.doc["failed"] = json!(failed);
        }
        parts
    };
    let mut parts = parts;
    // What a collected report recorded about its plan stays with it.
    if let Some(doc) = &earlier {
        for key in ["plan", "missing", "corrupt", "failed"] {
            if !doc[key].is_null() {
                parts.doc[key] = doc[key].clone();
            }
        }
    }
    if let Some(doc) = &earlier
        && let Some(missing) = doc["missing"].as_array()
        && !missing.is_empty()
    {
        let done = doc["results"].as_array().map_or(0, Vec::len);
        parts.note = format!(
            "**Partial**: {done} of {} planned trials collected (the plan's first trials in order); {} missing.\n\n",
            done + missing.len(),
            missing.len()
        );
    }
    let seconds = match &earlier {
        Some(doc) => doc["wall_time_s"].as_f64().unwrap_or(f64::NAN),
        None => start.elapsed().as_secs_f64(),
    };
    let machine = match &earlier {
        Some(doc) => doc["machine"].as_str().map(str::to_string).unwrap_or_else(machine),
        None => machine(),
    };
    // A reused report states the options it was run with, and a split per seed if it predates split_seed.
    let recorded: Option<Options> = earlier.as_ref().and_then(|doc| serde_json::from_value(doc["options"].clone()).ok());
    if let Some(doc) = &earlier
        && doc["trials"].as_array().and_then(|t| t.first()).is_some_and(|t| t["config"]["split_seed"].is_null())
    {
        parts.note.push_str("**Recorded before the fixed split**: these trials split the data by their seed, so test-set variance is in every interval.\n\n");
    }
    write_report(exp, recorded.as_ref().unwrap_or(opts), out_dir, parts, &format!("wall time {seconds:.1} s"), seconds, &machine)
}

/// A progress bar counting trials.
pub(crate) fn trial_bar(len: usize, quiet: bool, prefix: &str) -> indicatif::ProgressBar {
    let bar = progress_bar(len as u64, quiet, prefix);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} runs {msg} ({elapsed}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// What a report is made of: the JSON body (trials and results, or the drift report), the
/// table, the figure's panels, the verdicts, and a note put above the table (a partial sweep).
pub(crate) struct Parts {
    pub doc: serde_json::Value,
    pub table: String,
    pub panels: Vec<crate::experiments::panels::Panel>,
    pub verdicts: Vec<Verdict>,
    pub note: String,
}

impl Parts {
    /// The report of a training experiment from its trials and their results (in trial order):
    /// the one path from results to tables, figures and verdicts, whether the trials ran in
    /// this process (`run_or_reuse`) or anywhere else (`--collect`).
    pub fn from_results(exp: Experiment, list: &[Trial], results: &[TrialResult], quick: bool) -> Self {
        Parts {
            doc: json!({ "trials": list, "results": results }),
            table: markdown_table(exp, results),
            panels: experiment_panels(exp, results),
            verdicts: crate::experiments::verdicts(exp, results, quick),
            note: String::new(),
        }
    }
}

/// Writes OUT/<name>.json, .md and .png from a report's parts; `timing` is the header's phrase
/// for how long it took, `seconds` the JSON's `wall_time_s`.
pub(crate) fn write_report(exp: Experiment, opts: &Options, out_dir: &str, parts: Parts, timing: &str, seconds: f64, machine: &str) -> Result<Written> {
    let paths = |ext: &str| format!("{}/{}.{ext}", out_dir.trim_end_matches('/'), exp.name());
    let Parts { mut doc, table, panels, verdicts, note } = parts;
    let header = format!(
        "## {}\n\n{}\n\nSeeds: {}{}; {}; backend: {:?}; machine: {}; {timing}.\n\n{note}",
        exp.name(),
        exp.describe(),
        if exp.is_computation() { 1 } else { opts.seeds },
        if opts.quick { " (quick)" } else { "" },
        split_note(exp),
        opts.backend,
        machine,
    );
    let findings: String = verdicts.iter().map(|v| format!("- {}\n", v.text)).collect();
    let markdown = format!(
        "{header}{}\n\n{table}\n![{}]({}.png)\n\nPaired differences and verdicts (Holm-corrected within the experiment):\n\n{}\nWhat these numbers say:\n\n{findings}",
        crate::experiments::paper_reference(exp),
        exp.name(),
        exp.name(),
        verdict_table(&verdicts)
    );
    doc["schema"] = json!(crate::experiments::sweep::EXPERIMENT_SCHEMA);
    doc["samlab_version"] = json!(crate::experiments::sweep::VERSION);
    doc["experiment"] = json!(exp.name());
    doc["options"] = json!(opts);
    doc["machine"] = json!(machine);
    doc["wall_time_s"] = json!(seconds);
    doc["verdicts"] = json!(verdicts);
    let failed = doc["failed"].as_array().map_or(0, Vec::len);
    let written =
        Written { verdicts: verdicts.clone(), json: paths("json"), markdown: paths("md"), png: paths("png"), table: format!("{table}\n{findings}"), failed };
    write(&written.json, &serde_json::to_string_pretty(&doc).expect("serialises"))?;
    write(&written.markdown, &markdown)?;
    render(&written.png, &panels)?;
    Ok(written)
}

/// Runs every experiment into `out_dir` and writes one summary (`summary`, e.g. docs/RESULTS.md)
/// holding each generated section, its figure and its verdicts. Returns every experiment's
/// verdicts and how many trials failed. A long experiment (`Experiment::is_long`) runs only with
/// `long`; otherwise its section is rebuilt from its recorded run in `out_dir`, if any.
pub fn run_all(opts: &Options, out_dir: &str, summary: &str, quiet: bool, reuse: bool, long: bool) -> Result<(Vec<(Experiment, Vec<Verdict>)>, usize)> {
    let start = Instant::now();
    let mut all = Vec::new();
    let summary_dir = std::path::Path::new(summary).parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let out = std::path::Path::new(out_dir);
    // Figures are linked relative to the summary when the output folder sits below it.
    let prefix = match out.strip_prefix(&summary_dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("{}/", rel.display()),
        Ok(_) => String::new(),
        Err(_) => format!("{}/", out.display()),
    };
    let mut doc = format!(
        "# Results: the paper's claims at small scale\n\nGenerated by `samlab experiment all --seeds {} --out {out_dir} --summary {summary}{}` \
         (every number below comes from {}; nothing is typed in by hand). Machine: {}. Backend: {:?}. \
         Setting unless stated: digits (1297 train / 500 test, one split for every seed: split_seed 0), MLP 64-128-128-10 ReLU, batch 128, \
         lr 0.05, momentum 0.9, weight decay 5e-4, ρ 0.05, 40 epochs, mean ± sample std over seeds{}. A seed sets the initialisation, \
         label-noise draw and batch order of every optimizer alike, so every comparison is paired by seed: the per-seed differences, \
         their mean and 95 % interval (Student t, n − 1 degrees of freedom), an exact sign-flip permutation p (n ≤ 12), wins out of n, \
         Holm's correction across the claims of one experiment at α = 0.05. A verdict is holds, does not hold or inconclusive (with the \
         reason). The paper's figures are ResNet/CIFAR: compare directions and mechanisms, not values.\n\n",
        opts.seeds,
        if reuse { " --reuse" } else { "" },
        if reuse {
            "the recorded JSON of each experiment's run, rebuilt into tables, figures and verdicts; each section states the wall time of its run and whether it is partial"
        } else {
            "that run"
        },
        machine(),
        opts.backend,
        if opts.quick { " (quick settings: see each section)" } else { "" }
    );
    let mut sections = String::new();
    let mut brief = String::from("## Every claim and its verdict\n\n| experiment | claim | verdict |\n|---|---|---|\n");
    let mut failed = 0;
    let mut recorded_time = 0.0;
    for (i, exp) in Experiment::ALL.into_iter().enumerate() {
        // One line per experiment; each one's trials have their own bar below it.
        if !quiet {
            eprintln!("experiment {}/{}: {}", i + 1, Experiment::ALL.len(), exp.name());
        }
        let mut reuse_this = reuse;
        // A long experiment is rebuilt from its recorded run when there is one (with or
        // without --reuse) and named as not run otherwise.
        if exp.is_long() && !long {
            if std::path::Path::new(&format!("{}/{}.json", out_dir.trim_end_matches('/'), exp.name())).exists() {
                reuse_this = true;
                sections.push_str(&format!(
                    "*{} is long: this run did not train it (`--long` does); its section is rebuilt from its recorded run, whose own header gives its wall time and completeness.*\n\n",
                    exp.name()
                ));
            } else {
                sections.push_str(&format!(
                    "## {0}\n\n{1}\n\nNot run: long (hours on a CPU). Run it with `samlab experiment {0}`, on a cluster with `--plan`, or in `samlab experiment all --long`.\n\n",
                    exp.name(),
                    exp.describe()
                ));
                all.push((exp, Vec::new()));
                continue;
            }
        }
        let written = run_or_reuse(exp, opts, out_dir, quiet, reuse_this)?;
        failed += written.failed;
        let section = std::fs::read_to_string(&written.markdown).map_err(|e| crate::error::Error::io(&written.markdown, e))?;
        sections.push_str(&section.replace(&format!("]({}.png)", exp.name()), &format!("]({prefix}{}.png)", exp.name())));
        sections.push('\n');
        // The claim-level lines of each experiment (those that say whether a claim holds).
        for v in &written.verdicts {
            let ci = v.ci.map(|[a, b]| format!(", {} [{}, {}]", interval_name(v), sig(a), sig(b))).unwrap_or_default();
            let effect = v.effect.map(|e| format!("; effect {} {}{ci}", sig(e), v.unit)).unwrap_or_default();
            let wins = v.wins.map(|w| format!(", {w}/{} seeds", v.n)).unwrap_or_default();
            brief.push_str(&format!("| {} | {} | **{}**{effect}{wins} |\n", exp.name(), v.claim.replace('|', "\\|"), v.verdict.word()));
        }
        if !exp.is_long() {
            recorded_time += recorded_wall_time(&written.json).unwrap_or(0.0);
        }
        all.push((exp, written.verdicts));
    }
    if reuse {
        brief.push_str(&format!(
            "\nThe recorded runs of the experiments that `all` trains took {recorded_time:.0} s together (the sum of their own wall times; the long ones are apart).\n"
        ));
    } else {
        brief.push_str(&format!("\nWall time of the whole run: {:.0} s.\n", start.elapsed().as_secs_f64()));
    }
    doc.push_str(&brief);
    doc.push('\n');
    doc.push_str(&contradictions(&all));
    doc.push('\n');
    doc.push_str(&rwsam_question(&all));
    doc.push('\n');
    doc.push_str(&sections);
    write(summary, &doc)?;
    Ok((all, failed))
}

/// Compares verdicts with an expectation file (`{"m-sweep": {"claim": "holds", …}, …}`): every
/// claim listed must have the recorded verdict and every verdict of a listed experiment must be
/// listed. Returns the differences, one line each (none: the findings are as recorded).
pub fn check(path: &str, found: &[(Experiment, Vec<Verdict>)]) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::error::Error::io(path, e))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| crate::error::Error::json(path, e))?;
    Ok(crate::experiments::stats::differences(&doc, found))
}

/// An expectation file holding these verdicts (what `--check` compares with).
pub fn expectations(found: &[(Experiment, Vec<Verdict>)]) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    for (exp, v) in found {
        let claims: serde_json::Map<String, serde_json::Value> = v.iter().map(|v| (v.claim.clone(), json!(v.verdict))).collect();
        doc.insert(exp.name().to_string(), serde_json::Value::Object(claims));
    }
    serde_json::Value::Object(doc)
}

/// The `wall_time_s` an experiment's JSON records, if it can be read.
fn recorded_wall_time(json: &str) -> Option<f64> {
    let text = std::fs::read_to_string(json).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?.get("wall_time_s")?.as_f64()
}

/// What a verdict's `ci` is: a 95 % interval of the paired mean, except for cost ratios, whose
/// bounds are the smallest and largest ratio over the repeats (timing has no normal model).
fn interval_name(v: &Verdict) -> &'static str {
    if v.unit == "ratio" { "range over repeats" } else { "95 % interval" }
}

/// One line per verdict: the claim, the verdict, its paired effect and interval.
fn line(exp: Experiment, v: &Verdict) -> String {
    let ci = v.ci.map(|[a, b]| format!(", {} [{}, {}]", interval_name(v), sig(a), sig(b))).unwrap_or_default();
    let effect =
        v.effect.map(|e| format!(" ({} {}{ci}{})", sig(e), v.unit, v.wins.map(|w| format!(", {w}/{} seeds", v.n)).unwrap_or_default())).unwrap_or_default();
    format!("- {}: {} — **{}**{effect}\n", exp.name(), v.claim, v.verdict.word())
}

/// The section listing every finding that contradicts the paper (a claim that does not hold).
fn contradictions(all: &[(Experiment, Vec<Verdict>)]) -> String {
    let mut s = String::from("## Where the findings contradict the paper\n\n");
    let lines: String =
        all.iter().flat_map(|(e, v)| v.iter().filter(|v| v.verdict == crate::experiments::Outcome::DoesNotHold).map(move |v| line(*e, v))).collect();
    if lines.is_empty() {
        s.push_str("No claim is contradicted at this scale (see the inconclusive ones above).\n");
    } else {
        s.push_str("Each of these claims is refuted by the paired differences (Holm-corrected) or the computation named:\n\n");
        s.push_str(&lines);
    }
    s
}

/// The RW-SAM question: a conclusion in one paragraph, its numbers drawn from the verdicts
/// (label-noise and rwsam-lambda against SAM, the grids' means over their settings, the settings
/// that beat SAM, the mechanism, the cost), then every RW-SAM verdict's own text as a list.
fn rwsam_question(all: &[(Experiment, Vec<Verdict>)]) -> String {
    use crate::experiments::Outcome;
    let rw: Vec<(Experiment, &Verdict)> = all
        .iter()
        .filter(|(e, _)| *e != Experiment::RwsamDrift && *e != Experiment::Cost)
        .flat_map(|(e, v)| v.iter().filter(|v| v.claim.contains("RW-SAM")).map(move |v| (*e, v)))
        .collect();
    let count = |o: Outcome| rw.iter().filter(|(_, v)| v.verdict == o).count();
    let mut s = String::from("## The RW-SAM question at this scale\n\n");
    // Effects (points) and wins of the claims of `exp` that `pick` selects.
    let span = |exp: Experiment, pick: &dyn Fn(&Verdict) -> bool| -> Option<(String, bool)> {
        let v: Vec<&Verdict> = rw.iter().filter(|(e, v)| *e == exp && pick(v)).map(|(_, v)| *v).collect();
        let effects: Vec<f64> = v.iter().filter_map(|v| v.effect).collect();
        if effects.is_empty() {
            return None;
        }
        let (lo, hi) = effects.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        let wins = v.iter().filter_map(|v| v.wins).max().unwrap_or(0);
        let n = v.iter().map(|v| v.n).max().unwrap_or(0);
        let below = v.iter().filter(|v| v.verdict == Outcome::DoesNotHold).count();
        let range = if v.len() == 1 { format!("{:+.2}", lo) } else { format!("{lo:+.2} to {hi:+.2}") };
        Some((format!("{range} points ({below} of {} refuted; at most {wins}/{n} seeds above SAM)", v.len()), below == v.len()))
    };
    let mut facts = Vec::new();
    // "below SAM" only when every claim of the group is refuted.
    let against = |all_refuted: bool| if all_refuted { "below SAM" } else { "against SAM" };
    if let Some((t, all)) = span(Experiment::LabelNoise, &|v| v.claim.contains("RW-SAM above SAM")) {
        facts.push(format!("with λ = 1 and uniform descent (exact norms) RW-SAM is {} at every noise level of label-noise, {t}", against(all)));
    }
    if let Some((t, all)) = span(Experiment::RwsamLambda, &|v| v.claim.contains("above SAM")) {
        facts.push(format!("every λ and target ESS of rwsam-lambda is {}, {t}", against(all)));
    }
    for (exp, data) in [(Experiment::RwsamGrid, "digits"), (Experiment::RwsamGridMnist, "mnist5k")] {
        if let Some((t, all)) = span(exp, &|v| v.claim.contains("mean over its")) {
            facts.push(format!("averaged over the grid's settings it is {} in every block on {data}, {t}", against(all)));
        }
    }
    let mut text = String::new();
    if !facts.is_empty() {
        text.push_str("At this scale RW-SAM does not do what the paper reports: ");
        text.push_str(&facts.join("; "));
        text.push('.');
    }
    let held: Vec<String> = rw
        .iter()
        .filter(|(_, v)| v.verdict == Outcome::Holds)
        .map(|(e, v)| {
            let ci = v.ci.map(|[a, b]| format!(" [{a:+.2}, {b:+.2}]")).unwrap_or_default();
            let wins = v.wins.map(|w| format!(", {w}/{}", v.n)).unwrap_or_default();
            format!("{} ({}: {:+.2} {}{ci}{wins})", v.claim, e.name(), v.effect.unwrap_or(f64::NAN), v.unit)
        })
        .collect();
    let tilted_down = rw.iter().filter(|(_, v)| v.verdict == Outcome::Holds).all(|(_, v)| v.claim.contains("weighted λ<0") && v.claim.contains("noise=0.4"));
    if !held.is_empty() && tilted_down {
        text.push_str(&format!(
            " The only RW-SAM claims that hold are settings of weighted descent with λ < 0, which puts less weight on the samples of high loss, under label noise: {}. \
             That is loss-based down-weighting of (mostly mislabelled) samples, the opposite tilt of the paper's RW-SAM, not its mechanism.",
            held.join("; ")
        ));
    } else if !held.is_empty() {
        text.push_str(&format!(" The claims about RW-SAM that hold: {}.", held.join("; ")));
    }
    for (e, v) in all.iter().filter(|(e, _)| matches!(e, Experiment::RwsamDrift | Experiment::Cost)) {
        for v in v.iter().filter(|v| v.claim.contains("RW-SAM")) {
            let effect = v.effect.map(|x| format!(" ({} {})", sig(x), v.unit)).unwrap_or_default();
            let what = if *e == Experiment::Cost { "Cost" } else { "Mechanism" };
            text.push_str(&format!(" {what}: {} — {}{effect}.", v.claim, v.verdict.word()));
        }
    }
    let (holds, refuted, open) = (count(Outcome::Holds), count(Outcome::DoesNotHold), count(Outcome::Inconclusive));
    let verb = |k: usize, one: &str, many: &str| if k == 1 { one.to_string() } else { many.to_string() };
    text.push_str(&format!(
        " Of {} claims about RW-SAM's accuracy or end point, {holds} {}, {refuted} {} and {open} {} inconclusive.",
        rw.len(),
        verb(holds, "holds", "hold"),
        verb(refuted, "does not hold", "do not hold"),
        verb(open, "is", "are")
    ));
    s.push_str(text.trim_start());
    s.push_str("\n\nThe verdicts behind it:\n\n");
    for (e, v) in all.iter().filter(|(e, _)| matches!(e, Experiment::RwsamGrid | Experiment::RwsamGridMnist | Experiment::RwsamDrift | Experiment::Cost)) {
        for v in v.iter().filter(|v| *e == Experiment::RwsamDrift || v.claim.contains("RW-SAM")) {
            s.push_str(&format!("- {}: {}\n", e.name(), v.text.replace("**", "")));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::Outcome;

    fn verdict(claim: &str, verdict: Outcome, effect: f64, wins: usize) -> Verdict {
        Verdict {
            claim: claim.into(),
            verdict,
            effect: Some(effect),
            ci: Some([effect - 1.0, effect + 1.0]),
            p: Some(0.002),
            p_holm: Some(0.01),
            n: 10,
            wins: Some(wins),
            unit: "points".into(),
            reason: None,
            text: format!("{claim}: **{}**", verdict.word()),
        }
    }

    /// The conclusion's numbers come from the verdicts: the range of label-noise effects, the
    /// grid means, the one setting that holds (with its interval), and the count of outcomes.
    #[test]
    fn the_rwsam_conclusion_states_the_verdicts_numbers() {
        let all = vec![
            (
                Experiment::LabelNoise,
                vec![
                    verdict("20 % noise: RW-SAM above SAM (the paper's Table 4)", Outcome::DoesNotHold, -0.54, 1),
                    verdict("40 % noise: RW-SAM above SAM (the paper's Table 4)", Outcome::DoesNotHold, -1.36, 2),
                    verdict("40 % noise: SAM above SGD", Outcome::Holds, 2.1, 10),
                ],
            ),
            (
                Experiment::RwsamGridMnist,
                vec![
                    verdict("ρ=0.05 noise=0.4: RW-SAM (mean over its 24 settings) above SAM", Outcome::DoesNotHold, -4.02, 0),
                    verdict("ρ=0.05 noise=0.4: RW-SAM fd weighted λ<0 at target ESS 64 above SAM", Outcome::Holds, 19.3, 10),
                ],
            ),
        ];
        let s = rwsam_question(&all);
        assert!(s.contains("below SAM at every noise level of label-noise, -1.36 to -0.54 points (2 of 2 refuted; at most 2/10 seeds above SAM)"), "{s}");
        assert!(s.contains("on mnist5k, -4.02 points (1 of 1 refuted; at most 0/10 seeds above SAM)"), "{s}");
        assert!(
            s.contains("The only RW-SAM claims that hold are settings of weighted descent with λ < 0") && s.contains("+19.30 points [+18.30, +20.30], 10/10"),
            "{s}"
        );
        assert!(s.contains("Of 4 claims about RW-SAM's accuracy or end point, 1 holds, 3 do not hold and 0 are inconclusive."), "{s}");
        assert!(!s.contains("SAM above SGD"), "only RW-SAM claims: {s}");
    }
}
