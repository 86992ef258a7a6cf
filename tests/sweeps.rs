//! Sweeps as files without a scheduler: `experiment --plan` writes trial files, `samlab trial`
//! runs each in its own process, `experiment --collect` gives the same numbers as the experiment
//! in one process; missing and corrupt results are listed by id (exit 1 unless --partial), a plan
//! run again keeps its results, and bad input (no manifest, a file of another version or schema,
//! results of another experiment) exits with status 2 and one line. The same flow on a real
//! Slurm cluster is `cargo xtask cluster-test`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn samlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_samlab")).args(args).output().expect("the samlab binary runs")
}

/// A fresh directory of its own for each test.
fn tmp(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("samlab-sweeps-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Plans `m-sweep --quick --seeds 1` (10 trials) into `dir`; returns the ids it printed.
fn plan(dir: &Path) -> String {
    let o = samlab(&["experiment", "m-sweep", "--quick", "--seeds", "1", "--plan", s(dir)]);
    assert!(o.status.success(), "plan failed: {}", stderr(&o));
    stdout(&o)
}

fn run_trial(dir: &Path, id: usize) -> Output {
    let file = dir.join(format!("trials/{id:04}.json"));
    let out = dir.join(format!("results/{id:04}.json"));
    let o = samlab(&["trial", s(&file), "--out", s(&out)]);
    assert!(o.status.success(), "trial {id} failed: {}", stderr(&o));
    o
}

fn collect(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["experiment", "m-sweep", "--collect", s(dir)];
    args.extend_from_slice(extra);
    samlab(&args)
}

/// A failed command: status 2 and exactly one line on stderr, containing `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected status 2: {err}");
    assert_eq!(err.trim().lines().count(), 1, "expected one line: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

/// Results without what depends on the clock.
fn untimed(results: &Value) -> Value {
    let mut r = results.clone();
    for t in r.as_array_mut().unwrap() {
        let t = t.as_object_mut().unwrap();
        t.remove("ms_per_step");
        t.remove("seconds_to_target");
    }
    r
}

#[test]
fn planned_trials_run_one_process_each_give_the_in_process_numbers() {
    let dir = tmp("same");
    assert_eq!(plan(&dir), "0-9");
    let manifest = read_json(&dir.join("manifest.json"));
    assert_eq!((manifest["schema"].as_str(), manifest["trials"].as_u64()), (Some("samlab.sweep-manifest/2"), Some(10)));
    let trial = read_json(&dir.join("trials/0003.json"));
    assert_eq!(trial["schema"], "samlab.trial/2");
    assert_eq!(trial["samlab_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!((trial["experiment"].as_str(), trial["id"].as_u64(), trial["trial"]["x"].as_f64()), (Some("m-sweep"), Some(3), Some(8.0)));
    assert!(trial["trial"]["config"]["optimizer"].is_object() && trial["trial"]["measure"] == true && trial["options"]["quick"] == true);
    for id in 0..10 {
        run_trial(&dir, id);
    }
    let result = read_json(&dir.join("results/0003.json"));
    assert_eq!((result["schema"].as_str(), result["id"].as_u64()), (Some("samlab.trial-result/2"), Some(3)));
    let o = collect(&dir, &[]);
    assert!(o.status.success(), "collect: {}", stderr(&o));
    let collected = read_json(&dir.join("m-sweep.json"));

    let one = tmp("same-in-process");
    let o = samlab(&["experiment", "m-sweep", "--quick", "--seeds", "1", "--quiet", "--out", s(&one)]);
    assert!(o.status.success(), "in process: {}", stderr(&o));
    let in_process = read_json(&one.join("m-sweep.json"));
    assert_eq!(collected["trials"], in_process["trials"]);
    assert_eq!(untimed(&collected["results"]), untimed(&in_process["results"]));
    assert_eq!(collected["verdicts"], in_process["verdicts"]);
    for doc in [&collected, &in_process] {
        assert_eq!((doc["schema"].as_str(), doc["samlab_version"].as_str()), (Some("samlab.experiment/2"), Some(env!("CARGO_PKG_VERSION"))));
    }
    assert_eq!(collected["missing"], serde_json::json!([]));
    let table = |md: &Path| std::fs::read_to_string(md).unwrap().lines().filter(|l| l.starts_with('|')).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(table(&dir.join("m-sweep.md")), table(&one.join("m-sweep.md")));
    assert!(std::fs::read(dir.join("m-sweep.png")).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn collect_lists_missing_trials_and_exits_1_unless_partial() {
    let dir = tmp("missing");
    plan(&dir);
    run_trial(&dir, 0);
    run_trial(&dir, 2);
    let o = collect(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing: 8 of 10 trials (ids 1,3-9)"), "{}", stderr(&o));
    let o = collect(&dir, &["--partial"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = read_json(&dir.join("m-sweep.json"));
    assert_eq!(doc["missing"], serde_json::json!([1, 3, 4, 5, 6, 7, 8, 9]));
    assert_eq!(doc["results"].as_array().unwrap().len(), 2);
    assert!(std::fs::read_to_string(dir.join("m-sweep.md")).unwrap().contains("**Partial**: 2 of 10 trials collected; missing: 1,3-9"));
    // Nothing run yet: nothing to collect, and status 1 even with --partial.
    let empty = tmp("missing-empty");
    plan(&empty);
    assert_eq!(collect(&empty, &["--partial"]).status.code(), Some(1));
}

#[test]
fn a_plan_run_again_keeps_its_results_and_names_only_the_missing_trials() {
    let dir = tmp("resume");
    plan(&dir);
    run_trial(&dir, 0);
    run_trial(&dir, 4);
    let kept = std::fs::read_to_string(dir.join("results/0000.json")).unwrap();
    assert_eq!(plan(&dir), "1-3,5-9");
    assert_eq!(std::fs::read_to_string(dir.join("results/0000.json")).unwrap(), kept);
    // `samlab trial` on a trial that has its result skips it (a scheduler loop over every file resumes).
    let o = run_trial(&dir, 0);
    assert!(stderr(&o).contains("skipped"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.join("results/0000.json")).unwrap(), kept);
    // --run-missing runs the rest in this process; then the plan is complete.
    let o = samlab(&["experiment", "m-sweep", "--quick", "--seeds", "1", "--plan", s(&dir), "--run-missing", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(plan(&dir), "");
    assert!(collect(&dir, &[]).status.success());
    // The default --out is the results folder beside the trials folder.
    std::fs::remove_file(dir.join("results/0002.json")).unwrap();
    assert!(samlab(&["trial", s(&dir.join("trials/0002.json"))]).status.success());
    assert!(dir.join("results/0002.json").exists());
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.join("results")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn a_corrupt_result_is_named_and_treated_as_missing() {
    let dir = tmp("corrupt");
    plan(&dir);
    for id in 0..10 {
        run_trial(&dir, id);
    }
    let full = std::fs::read_to_string(dir.join("results/0001.json")).unwrap();
    // A truncated file (as a full disk or a copy cut short leaves it).
    std::fs::write(dir.join("results/0001.json"), &full[..full.len() / 2]).unwrap();
    let o = collect(&dir, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("results/0001.json") && err.contains("treated as missing"), "{err}");
    assert!(err.contains("ids 1)"), "{err}");
    assert_eq!(read_json(&dir.join("m-sweep.json"))["corrupt"], serde_json::json!([1]));
    // Planning again lists it to run; `samlab trial` runs it again (not skipped).
    assert_eq!(plan(&dir), "1");
    let o = run_trial(&dir, 1);
    assert!(!stderr(&o).contains("skipped"), "{}", stderr(&o));
    assert!(collect(&dir, &[]).status.success());
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = tmp("bad");
    // No manifest.
    assert_one_line_error(&collect(&dir, &[]), "manifest.json: no such file");
    plan(&dir);
    // A trial file of another version, and of another schema.
    let mut trial = read_json(&dir.join("trials/0000.json"));
    trial["samlab_version"] = "0.0.1".into();
    let old = dir.join("old.json");
    std::fs::write(&old, trial.to_string()).unwrap();
    assert_one_line_error(&samlab(&["trial", s(&old), "--out", s(&dir.join("r.json"))]), "a trial file of samlab 0.0.1");
    trial["schema"] = "samlab.other/2".into();
    std::fs::write(&old, trial.to_string()).unwrap();
    assert_one_line_error(&samlab(&["trial", s(&old), "--out", s(&dir.join("r.json"))]), "schema \"samlab.other/2\"");
    assert_one_line_error(&samlab(&["trial", s(&dir.join("nothing.json"))]), "nothing.json");
    // A results directory from another experiment.
    let other = tmp("bad-other");
    let o = samlab(&["experiment", "label-noise", "--quick", "--seeds", "1", "--plan", s(&other)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(samlab(&["trial", s(&other.join("trials/0000.json"))]).status.success());
    std::fs::copy(other.join("results/0000.json"), dir.join("results/0000.json")).unwrap();
    assert_one_line_error(&collect(&dir, &[]), "a results directory from another experiment");
    // Collecting or planning the wrong experiment in a plan's directory.
    assert_one_line_error(&samlab(&["experiment", "label-noise", "--collect", s(&dir)]), "holds a plan of m-sweep, not label-noise");
    assert_one_line_error(&samlab(&["experiment", "m-sweep", "--seeds", "2", "--quick", "--plan", s(&dir)]), "plan into another directory");
    // The drift check is one computation, not a set of trials.
    assert_one_line_error(&samlab(&["experiment", "drift-check", "--plan", s(&tmp("bad-drift"))]), "not a set of trials");
    assert_one_line_error(&samlab(&["experiment", "all", "--plan", s(&tmp("bad-all"))]), "one experiment");
}

#[test]
fn help_describes_plan_trial_and_collect() {
    let o = samlab(&["trial", "--help"]);
    let text = stdout(&o);
    assert!(o.status.success() && text.contains("atomically") && text.contains("--out") && text.contains("--force"), "{text}");
    let o = samlab(&["experiment", "--help"]);
    let text = stdout(&o);
    for flag in ["--plan <DIR>", "--collect <DIR>", "--partial", "--run-missing"] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}
