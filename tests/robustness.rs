//! Searching for failures of the parsers and validators with property-based tests (proptest):
//! random and mutated run configs, lab files, links (valid base64 of malformed JSON, malformed
//! base64, a thousand runs, absurd widths) and params/batch files never panic; a refusal is one
//! line naming a field (or the JSON position); what opens stays within the lab's memory budget.

use proptest::prelude::*;
use samlab::config::RunConfig;
use samlab::formats::{BatchJson, ParamsJson};
use samlab::lab::state::{LAB_MEMORY_BUDGET, run_bytes};
use samlab::lab::{LabState, MAX_RUNS, Preset};
use samlab::model::{Activation, MlpSpec};
use serde_json::{Value, json};

/// Every field name a message may name (leaf keys of RunConfig, LabState and the CLI's).
const FIELDS: &[&str] = &[
    "version", "dataset", "name", "samples", "input_noise", "label_noise", "test_fraction", "model", "hidden", "activation", "optimizer", "kind",
    "lr", "momentum", "weight_decay", "schedule", "rho", "m", "xi", "rwsam", "lambda", "estimator", "delta", "descent", "target_ess", "normalize",
    "batch", "epochs", "steps", "seed", "eval_every", "measure_every", "backend", "shared", "runs", "preset", "color", "URL hash",
];

fn one_line_naming_a_field(e: &str) {
    assert!(!e.contains('\n') && !e.contains('\r'), "not one line: {e:?}");
    assert!(e.len() < 2000, "too long: {} chars", e.len());
    assert!(FIELDS.iter().any(|f| e.contains(f)) || e.contains("line ") || e.contains("base64") || e.contains("JSON"), "names no field: {e}");
}

/// A JSON value of any shape, including ones no field expects.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|v| json!(v)),
        any::<u64>().prop_map(|v| json!(v)),
        prop_oneof![any::<f64>(), Just(1e-320), Just(-0.0), Just(1e308), Just(0.5)].prop_map(|v| json!(v)),
        "[a-z\\-\n\"\\\\]{0,12}".prop_map(Value::String),
        Just(json!("sam")),
        Just(json!("digits")),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array), prop::collection::hash_map("[a-z_]{1,8}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect()))]
    })
}

/// The paths of every leaf of `v`.
fn leaf_paths(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => m.iter().for_each(|(k, x)| {
            let mut p = prefix.clone();
            p.push(k.clone());
            leaf_paths(x, p, out)
        }),
        _ => out.push(prefix),
    }
}

fn set_path(v: &mut Value, path: &[String], new: Value) {
    match path.split_first() {
        None => *v = new,
        Some((k, rest)) => {
            if let Some(x) = v.get_mut(k) {
                set_path(x, rest, new)
            }
        }
    }
}

/// The default config (or a preset's lab) with a few leaves replaced by arbitrary values.
fn mutated(base: Value) -> impl Strategy<Value = Value> {
    let mut paths = Vec::new();
    leaf_paths(&base, Vec::new(), &mut paths);
    prop::collection::vec((0..paths.len(), any_value()), 1..4).prop_map(move |edits| {
        let mut v = base.clone();
        for (i, new) in edits {
            set_path(&mut v, &paths[i], new);
        }
        v
    })
}

fn config_json() -> Value {
    serde_json::to_value(RunConfig::default()).unwrap()
}

fn lab_json() -> Value {
    serde_json::to_value(Preset::LabelNoise.state()).unwrap()
}

fn check_lab(result: samlab::error::Result<(LabState, Vec<String>)>) {
    match result {
        Ok((state, notes)) => {
            assert!(!state.runs.is_empty() && state.runs.len() <= MAX_RUNS);
            let bytes: u64 = state.runs.iter().map(|r| run_bytes(&r.config(&state.shared))).sum();
            assert!(bytes <= LAB_MEMORY_BUDGET, "{bytes} bytes open");
            for r in &state.runs {
                r.config(&state.shared).validate().expect("every opened run is valid");
            }
            notes.iter().for_each(|n| assert!(!n.contains('\n'), "{n:?}"));
        }
        Err(e) => one_line_naming_a_field(&e.to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_configs_parse_or_name_a_field(v in mutated(config_json())) {
        match RunConfig::from_json(&v.to_string()) {
            Ok(cfg) => cfg.validate().unwrap(),
            Err(e) => one_line_naming_a_field(&e.to_string()),
        }
        // Pretty-printed: the position is a line and column of the file.
        if let Err(e) = RunConfig::from_json(&serde_json::to_string_pretty(&v).unwrap()) {
            one_line_naming_a_field(&e.to_string());
        }
    }

    #[test]
    fn random_text_is_never_a_panic(text in "\\PC{0,64}", bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = RunConfig::from_json(&text);
        let _ = LabState::from_json(&text);
        let _ = LabState::open_text(&text);
        let _ = LabState::from_hash(&text);
        let _ = LabState::from_hash(&format!("v1:{text}"));
        // Valid base64 of anything (malformed JSON, invalid UTF-8).
        let link = format!("#v1:{}", samlab::lab::state::base64url::encode(&bytes));
        if let Ok(Some(opened)) = LabState::from_hash(&link) { check_lab(Ok(opened)) }
        let _ = ParamsJson::parse(&text, "p");
        let _ = BatchJson::parse(&text, "b");
    }

    #[test]
    fn mutated_labs_and_their_links_open_within_limits(v in mutated(lab_json())) {
        let text = v.to_string();
        check_lab(LabState::from_json(&text));
        let link = format!("v1:{}", samlab::lab::state::base64url::encode(text.as_bytes()));
        match LabState::from_hash(&link) {
            Ok(Some(opened)) => check_lab(Ok(opened)),
            Ok(None) => panic!("a non-empty link opened nothing"),
            Err(e) => one_line_naming_a_field(&e.to_string()),
        }
    }

    #[test]
    fn labs_of_many_runs_and_absurd_widths_stay_within_the_budget(
        runs in 0usize..1000,
        widths in prop::collection::vec(prop_oneof![Just(0usize), Just(4096), Just(1 << 20), Just(usize::MAX), 1usize..5000], 0..10),
        lr in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(0.05), Just(-1.0)],
    ) {
        let mut state = Preset::MSharpness.state();
        state.shared.model.hidden = widths;
        let mut spec = state.runs[0].clone();
        spec.optimizer.lr = lr;
        state.runs = vec![spec; runs];
        // NaN and infinity are not JSON: serde writes null, which must be refused by name.
        check_lab(LabState::from_json(&state.to_json()));
        check_lab(state.clone().checked());
    }

    #[test]
    fn params_and_batch_files_of_any_shape_are_checked(
        layers in prop::collection::vec((1usize..5, 1usize..5, 0usize..3), 0..4),
        rows in prop::collection::vec(prop::collection::vec(prop_oneof![Just(1.0), Just(1e308), Just(-0.0)], 0..5), 0..5),
        y in prop::collection::vec(0u32..12, 0..5),
        z in prop::option::of(prop::collection::vec(-1.0f64..1.0, 0..40)),
    ) {
        // Layers whose shapes may or may not chain, with ragged rows or wrong bias counts.
        let layers: Vec<Value> = layers.iter().map(|&(i, o, skew)| json!({"w": vec![vec![0.1; i]; o], "b": vec![0.0; o + skew % 2]})).collect();
        let params = json!({ "layers": layers }).to_string();
        let batch = json!({ "x": rows, "y": y, "z": z }).to_string();
        match ParamsJson::parse(&params, "params").and_then(|p| p.to_flat(Activation::Relu)) {
            Ok((spec, flat)) => {
                assert_eq!(flat.len(), spec.n_params());
                if let Err(e) = BatchJson::parse(&batch, "batch").and_then(|b| b.check(&spec)) {
                    let e = e.to_string();
                    assert!(!e.contains('\n') && (e.contains("batch") || e.contains("JSON")), "{e}");
                }
            }
            Err(e) => {
                let e = e.to_string();
                assert!(!e.contains('\n') && (e.contains("params") || e.contains("layer")), "{e}");
            }
        }
        let spec = MlpSpec::new(2, &[3], 2, Activation::Relu);
        let _ = BatchJson::parse(&batch, "batch").and_then(|b| b.check(&spec));
    }
}
