//! A few hundred generated bad invocations of the built binary (seeded, so a failure repeats):
//! every one exits with status 2 within seconds, with one line on stderr that names the flag or
//! the field it sets, and never a panic. Plus the fixed cases of the robustness issue: bench's
//! panics, endless and empty inputs, flags that repair a config file, a failed trial, `lab check`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn samlab_timed(args: &[String], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_samlab"))
        .args(args)
        .current_dir(tmp(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the samlab binary runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("{args:?} ran for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.wait_with_output().unwrap()
}

fn samlab(args: &[&str]) -> Output {
    samlab_timed(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), Duration::from_secs(60))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("samlab-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Status 2 and exactly one line, "error: …", mentioning one of `needles`.
fn assert_refused(args: &[String], o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("XDG_RUNTIME_DIR")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {err}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {err}");
    assert!(needles.iter().any(|n| lines[0].contains(n)), "{args:?}: '{err}' names none of {needles:?}");
}

/// SplitMix64: the same invocations every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Values no numeric flag accepts, whatever the others say (clap refuses them).
const NOT_A_NUMBER: &[&str] = &["abc", "", "1.5.2", "nan", "inf", "-inf", "1e400", "0x10", "1\n2", "\"", "💥", "--", "1,2"];
const NOT_AN_INTEGER: &[&str] = &["abc", "", "-1", "1.5", "18446744073709551616", "-18446744073709551615", "1e3", " ", "7\n", "٣"];

/// A flag of a command, the values that are always refused, and what the error must name.
struct Flag {
    name: &'static str,
    bad: Vec<&'static str>,
    needles: &'static [&'static str],
}

fn flag(name: &'static str, bad: &[&'static str], extra: &[&'static str], needles: &'static [&'static str]) -> Flag {
    let mut v = bad.to_vec();
    v.extend_from_slice(extra);
    Flag { name, bad: v, needles }
}

fn config_flags() -> Vec<Flag> {
    vec![
        flag("--lr", NOT_A_NUMBER, &["-1", "0", "11", "1e-320"], &["lr"]),
        flag("--momentum", NOT_A_NUMBER, &["1", "-0.1", "2"], &["momentum"]),
        flag("--wd", NOT_A_NUMBER, &["-1", "1.5"], &["wd", "weight_decay"]),
        flag("--rho", NOT_A_NUMBER, &["-0.1", "101"], &["rho"]),
        flag("--xi", NOT_A_NUMBER, &["0", "-1", "1e-320"], &["xi"]),
        flag("--lambda", NOT_A_NUMBER, &["1e5", "-1e5"], &["lambda"]),
        flag("--delta", NOT_A_NUMBER, &["0", "1e-320", "2", "-1e-3"], &["delta"]),
        flag("--target-ess", NOT_A_NUMBER, &["0", "1.5", "-1"], &["target-ess", "target_ess"]),
        flag("--noise", NOT_A_NUMBER, &["1", "-0.1"], &["noise"]),
        flag("--test-fraction", NOT_A_NUMBER, &["0", "1", "0.00001", "0.99999"], &["test-fraction", "test_fraction"]),
        flag("--samples", NOT_AN_INTEGER, &["0", "19", "100001"], &["samples"]),
        flag("--batch", NOT_AN_INTEGER, &["0", "4097", "5000"], &["batch"]),
        flag("--m", NOT_AN_INTEGER, &["0", "4097"], &["--m"]),
        flag("--epochs", NOT_AN_INTEGER, &["100001"], &["epochs"]),
        flag("--steps", NOT_AN_INTEGER, &["0", "100000001"], &["steps"]),
        flag("--seed", NOT_AN_INTEGER, &[], &["seed"]),
        flag("--eval-every", NOT_AN_INTEGER, &[], &["eval-every"]),
        flag("--measure-every", NOT_AN_INTEGER, &[], &["measure-every"]),
        flag("--hidden", &["", "a", "0", "5000", "1,,x", "-1", "1\n2", "1,2,3,4,5,6,7,8,9"], &[], &["hidden"]),
        flag("--dataset", &["cifar", "", "MOONS\n", "mnist10k"], &[], &["dataset"]),
        flag("--optimizer", &["adam", "", "sam\n", "m sam"], &[], &["optimizer"]),
        flag("--activation", &["swish", ""], &[], &["activation"]),
        flag("--schedule", &["linear", ""], &[], &["schedule"]),
        flag("--backend", &["tpu", "", "both"], &[], &["backend"]),
        flag("--norm-estimator", &["hutchinson", ""], &[], &["norm-estimator"]),
        flag("--rw-descent", &["greedy"], &[], &["rw-descent"]),
        flag("--config", &["", "/dev/zero", "/nonexistent/run.json", "/", "a\nb.json"], &[], &["config", "/dev/zero", "run.json", "\"/\"", "a\\nb.json", "/:"]),
    ]
}

fn bench_flags() -> Vec<Flag> {
    vec![
        flag("--steps", NOT_AN_INTEGER, &["0", "10001"], &["--steps"]),
        flag("--steps-per-submit", NOT_AN_INTEGER, &["0", "1025", "18446744073709551615"], &["--steps-per-submit"]),
        flag("--landscape", NOT_AN_INTEGER, &["1", "402"], &["--landscape"]),
        flag("--backend", &["auto\n", "tpu", ""], &[], &["--backend"]),
        flag("--model", &["resnet", ""], &[], &["--model"]),
        flag("--json", &[""], &[], &["--json"]),
    ]
}

fn experiment_flags() -> Vec<Flag> {
    vec![
        flag("--seeds", NOT_AN_INTEGER, &["0", "101"], &["--seeds"]),
        flag("--backend", &["tpu", ""], &[], &["--backend"]),
        flag("--out", &[""], &[], &["--out"]),
        flag("--plan", &[""], &[], &["--plan"]),
    ]
}

fn measure_flags() -> Vec<Flag> {
    vec![
        flag("--rho", NOT_A_NUMBER, &[], &["--rho"]),
        flag("--probes", NOT_AN_INTEGER, &[], &["--probes"]),
        flag("--top-k", NOT_AN_INTEGER, &[], &["--top-k"]),
        flag("--power-tol", NOT_A_NUMBER, &[], &["--power-tol"]),
        flag("--backend", &["tpu"], &[], &["--backend"]),
        flag("--dataset", &["cifar"], &[], &["--dataset"]),
        flag("--activation", &["swish"], &[], &["--activation"]),
        flag("--eval-size", NOT_AN_INTEGER, &[], &["--eval-size"]),
        flag("--density-starts", NOT_AN_INTEGER, &[], &["--density-starts"]),
        flag("--density-steps", NOT_AN_INTEGER, &[], &["--density-steps"]),
        flag("--density-grid", NOT_AN_INTEGER, &[], &["--density-grid"]),
        flag("--density-sigma", NOT_A_NUMBER, &[], &["--density-sigma"]),
    ]
}

#[test]
fn hundreds_of_bad_invocations_exit_2_with_one_line_naming_the_field() {
    let mut rng = Rng(0x05A4_D1AB);
    let (config, bench, experiment, measure) = (config_flags(), bench_flags(), experiment_flags(), measure_flags());
    let start = Instant::now();
    let mut count = 0;
    // 240 in the suite; SAMLAB_FUZZ_CASES=3000 for a longer search.
    let cases: usize = std::env::var("SAMLAB_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(240);
    for i in 0..cases {
        let (mut args, flags): (Vec<String>, &[Flag]) = match i % 6 {
            0 | 1 => (vec!["train".into(), "--steps".into(), "1".into()], &config),
            2 => (vec!["compare".into(), "--steps".into(), "1".into()], &config),
            3 => (vec!["bench".into(), "--landscape".into(), "0".into()], &bench),
            4 => (vec!["experiment".into(), rng.pick(&["m-sweep", "cost", "label-noise"]).to_string(), "--quick".into()], &experiment),
            _ => (vec!["measure".into(), "--params".into(), "/nonexistent/p.json".into(), "--dataset".into(), "moons".into()], &measure),
        };
        // Some good flags first, then the bad one (the first refusal is the one named).
        if i % 6 < 3 && rng.next().is_multiple_of(2) {
            args.extend(["--dataset".into(), "moons".into(), "--hidden".into(), "8".into()]);
        }
        let f = rng.pick(flags);
        let bad = *rng.pick(&f.bad);
        args.extend(["--quiet".into(), f.name.to_string(), bad.to_string()]);
        let o = samlab_timed(&args, Duration::from_secs(20));
        assert_refused(&args, &o, f.needles);
        count += 1;
    }
    // Unknown flags and commands, missing values.
    for args in [
        vec!["train", "--lr"],
        vec!["train", "--frobnicate", "1"],
        vec!["trian"],
        vec!["measure"],
        vec!["lab"],
        vec!["lab", "check"],
        vec!["experiment", "nope"],
        vec!["step", "--params", ""],
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let o = samlab_timed(&args, Duration::from_secs(20));
        let err = stderr(&o);
        assert!(!err.contains("panicked") && o.status.code() == Some(2), "{args:?}: {err}");
        if !err.contains("Usage:") {
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        }
        count += 1;
    }
    eprintln!("{count} bad invocations in {:.1} s", start.elapsed().as_secs_f64());
}

#[test]
fn bench_bounds_and_its_former_panics() {
    let cases: &[&[&str]] = &[
        &["bench", "--model", "digits", "--optimizers", "sgd", "--landscape", "0", "--steps", "0"],
        &["bench", "--model", "digits", "--optimizers", "sgd", "--landscape", "0", "--steps", "0", "--backend", "gpu"],
        &["bench", "--steps-per-submit", "18446744073709551615"],
        &["bench", "--steps", "100001"],
        &["bench", "--steps-per-submit", "100001"],
    ];
    for args in cases {
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        assert_refused(&owned, &samlab(args), &["--steps"]);
    }
    // The smallest bench that works: one timed step.
    let out = tmp("bench.json");
    let o = samlab(&["bench", "-q", "--model", "digits", "--optimizers", "sgd", "--landscape", "0", "--steps", "1", "--json", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["schema"], "samlab.bench/1");
    assert_eq!(doc["rows"][0]["optimizer"], "SGD");
}

#[test]
fn flags_repair_a_config_file_and_type_errors_name_the_path() {
    let m3 = tmp("m3.json");
    std::fs::write(&m3, r#"{"optimizer": {"kind": "msam", "m": 3}, "dataset": {"name": "moons", "samples": 200}, "model": {"hidden": [4]}}"#).unwrap();
    let out = tmp("m4.json");
    let o = samlab(&["train", "-q", "--config", m3.to_str().unwrap(), "--m", "4", "--steps", "2", "--batch", "32", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bad = tmp("batch8.json");
    std::fs::write(&bad, "{\n  \"optimizer\": {\"m\": 8.0}\n}").unwrap();
    let args = vec!["train".to_string(), "--config".into(), bad.to_str().unwrap().into()];
    let o = samlab(&["train", "--config", bad.to_str().unwrap()]);
    assert_refused(&args, &o, &["optimizer.m"]);
    assert!(stderr(&o).contains("line 2 column"), "{}", stderr(&o));
    let tf = tmp("tf.json");
    std::fs::write(&tf, r#"{"dataset": {"name": "moons", "samples": 200, "test_fraction": 0.001}}"#).unwrap();
    assert_refused(&args, &samlab(&["train", "--config", tf.to_str().unwrap()]), &["dataset.test_fraction"]);
}

#[test]
fn outputs_go_to_stdout_with_a_schema_and_a_version() {
    let o = samlab(&["train", "-q", "--dataset", "moons", "--hidden", "4", "--steps", "3", "--out", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is the JSON");
    assert_eq!((doc["schema"].as_str(), doc["samlab_version"].as_str()), (Some("samlab.train/1"), Some(env!("CARGO_PKG_VERSION"))));
    assert_eq!(doc["status"], "finished");
    // An output that cannot be written is a failure of the work: status 1.
    let o = samlab(&["train", "-q", "--dataset", "moons", "--hidden", "4", "--steps", "1", "--out", "/proc/nope/m.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn lab_check_says_what_would_open_and_what_not() {
    use samlab::lab::{LabState, Preset};
    let mut state = Preset::MSharpness.state();
    state.runs[1].optimizer.m = 7;
    let file = tmp("lab.json");
    std::fs::write(&file, state.to_json()).unwrap();
    let o = samlab(&["lab", "check", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("would open 3 run(s)"), "{text}");
    assert!(stderr(&o).contains("ignored run m-SAM m=7") && stderr(&o).contains("optimizer.m"), "{}", stderr(&o));
    let link = format!("https://example.org/samlab/#{}", Preset::LabelNoise.state().to_hash());
    let o = samlab(&["lab", "check", &link]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("would open 3 run(s)"), "{}", stderr(&o));
    // A link beyond the memory budget names the widths.
    let mut wide = Preset::LabelNoise.state();
    wide.shared.model.hidden = vec![4096; 8];
    wide.shared.dataset.name = samlab::config::DatasetName::Mnist5k;
    let args = vec!["lab".to_string(), "check".into(), wide.to_hash()];
    assert_refused(&args, &samlab_timed(&args, Duration::from_secs(20)), &["shared.model.hidden"]);
    for (bad, needle) in [("v1:!!!", "base64url"), ("#v0:abc", "outdated"), ("/dev/zero", "larger than")] {
        let args = vec!["lab".to_string(), "check".into(), bad.into()];
        assert_refused(&args, &samlab_timed(&args, Duration::from_secs(20)), &[needle]);
    }
    let _ = LabState::default();
}
