//! The user's own data and weights: CSV files on the command line (train, compare, measure,
//! landscape; bad files exit with status 2 and one line naming the line and column), and in the
//! app (a dropped CSV selects the dataset and trains; a bad one changes nothing; a run's saved
//! weights load into another run bit for bit; a lab without its data says which file to load).

mod common;

use common::cli::{samlab, tmp};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use samlab::app::SamLabApp;
use samlab::config::DatasetName;
use samlab::engine::EngineChoice;
use samlab::platform::{IncomingFile, MemoryPlatform};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Three rings of 2D points (labels 0, 1, 2), 60 each, seeded: a file a user could have made.
fn rings_csv() -> String {
    let mut rng = samlab::rng::Rng::new(11);
    let mut s = String::from("x1,x2,label\n");
    for i in 0..180 {
        let c = i % 3;
        let a = 2.0 * std::f64::consts::PI * rng.uniform();
        let r = 0.4 + 0.5 * c as f64 + 0.08 * rng.normal();
        s += &format!("{:.4},{:.4},{c}\n", r * a.cos(), r * a.sin());
    }
    s
}

/// 4×4 images (label first): class 0 bright on the left half, class 1 on the right, 0..255.
fn images_csv() -> String {
    let mut s = String::new();
    for i in 0..40 {
        let c = i % 2;
        let px: Vec<String> = (0..16).map(|p| if (p % 4 < 2) == (c == 0) { (200 + i % 50).to_string() } else { (i % 7).to_string() }).collect();
        s += &format!("{c},{}\n", px.join(","));
    }
    s
}

fn write(name: &str, text: &str) -> String {
    let p = tmp(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn train_compare_measure_and_landscape_take_a_csv_file() {
    let pts = write("rings.csv", &rings_csv());
    let (out, params) = (tmp("train.json"), tmp("params.json"));
    let o = samlab(&[
        "train",
        "-q",
        "--dataset",
        &pts,
        "--hidden",
        "32,32",
        "--batch",
        "16",
        "--epochs",
        "40",
        "--lr",
        "0.1",
        "--out",
        out.to_str().unwrap(),
        "--save-params",
        params.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = json(&out);
    assert_eq!(m["config"]["dataset"]["name"], "csv");
    assert_eq!(m["config"]["dataset"]["csv"]["name"], "rings.csv");
    assert_eq!(m["config"]["dataset"]["csv"]["classes"], 3);
    let acc = m["final"]["test_acc"].as_f64().unwrap();
    assert!(acc >= 0.9, "rings test accuracy {acc}");
    let o = samlab(&[
        "measure",
        "-q",
        "--params",
        params.to_str().unwrap(),
        "--dataset",
        &pts,
        "--probes",
        "4",
        "--power-iters",
        "10",
        "--out",
        tmp("m.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(json(&tmp("m.json"))["measurement"]["lambda_max"].as_f64().unwrap().is_finite());
    let o = samlab(&[
        "landscape",
        "-q",
        "--dataset",
        &pts,
        "--hidden",
        "32,32",
        "--params",
        params.to_str().unwrap(),
        "--grid",
        "5",
        "--eval-size",
        "64",
        "--out",
        tmp("l.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = write("img.csv", &images_csv());
    let o = samlab(&[
        "compare",
        "-q",
        "--optimizers",
        "sgd,sam",
        "--dataset",
        &img,
        "--hidden",
        "8",
        "--batch",
        "8",
        "--epochs",
        "3",
        "--out",
        tmp("c.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = json(&tmp("c.json"));
    assert_eq!(c["dataset"]["csv"]["image_side"], 4);
    assert_eq!(c["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn a_bad_csv_file_exits_with_status_2_and_one_line_naming_line_and_column() {
    let cases = [
        ("cell.csv", "x1,x2,label\n1,2,0\n1,oops,1\n".to_string(), "line 3 column 2"),
        ("label.csv", "1,2,0\n1,2,1.5\n".to_string(), "line 2 column 3"),
        ("range.csv", "1,2,0\n1,2,100\n".to_string(), "0..=99"),
        ("ragged.csv", "1,2,0\n1,2\n".to_string(), "line 2: 2 columns"),
        ("pixels.csv", "0,1,2,3,4,5\n".to_string(), "1 + side²"),
        ("few.csv", "1,2,0\n3,4,1\n5,6,0\n".to_string(), "class 0 has 2"),
    ];
    for (name, text, want) in cases {
        let path = write(name, &text);
        let o = samlab(&["train", "-q", "--dataset", &path, "--steps", "1", "--out", tmp("x.json").to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    }
    let o = samlab(&["train", "--dataset", "nosuch", "--steps", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a path to a .csv file"));
    let o = samlab(&["train", "--dataset", tmp("missing.csv").to_str().unwrap(), "--steps", "1"]);
    assert_eq!(o.status.code(), Some(2));
}

fn app(platform: MemoryPlatform) -> Harness<'static, SamLabApp> {
    let mut app = SamLabApp::with(Box::new(platform), None, None, EngineChoice::cpu("UI test"));
    app.train = false;
    Harness::builder().with_size([1400.0, 1000.0]).with_context_setup(samlab::ui::install_fonts).build_ui_state(|ui, app: &mut SamLabApp| app.show(ui), app)
}

/// A file dropped on the window, as egui hands it over.
#[derive(Debug)]
struct Dropped {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.path
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        Ok(self.bytes.clone())
    }
}

fn drop_file(h: &mut Harness<'static, SamLabApp>, name: &str, text: &str) {
    h.input_mut().dropped_files.push(Arc::new(Dropped { path: PathBuf::from(format!("/home/user/{name}")), bytes: text.as_bytes().to_vec() }));
    h.run_steps(2);
    // The file is parsed on the CSV worker's thread and opened on a later frame.
    for _ in 0..500 {
        if !h.state().is_reading_files() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        h.run_steps(1);
    }
    assert!(!h.state().is_reading_files(), "{name} was not read within 5 s");
    h.run_steps(1);
}

#[test]
fn a_dropped_csv_selects_the_dataset_and_trains_and_a_bad_one_changes_nothing() {
    let mut h = app(MemoryPlatform::default());
    h.run_steps(1);
    let before = h.state().lab.state.clone();
    drop_file(&mut h, "broken.csv", "x1,x2,label\n1,2,0\n1,oops,1\n");
    assert_eq!(h.state().lab.state, before, "a bad file changes nothing");
    let last = h.state().messages.last().unwrap().text.clone();
    assert!(last.contains("broken.csv line 3 column 2") && last.contains("nothing changed") && !last.contains('\n'), "{last}");
    assert!(!samlab::data::user::sources().iter().any(|s| s.name == "broken.csv"));
    drop_file(&mut h, "rings-ui.csv", &rings_csv());
    let shared = &h.state().lab.state.shared;
    assert_eq!(shared.dataset.name, DatasetName::Csv);
    assert_eq!(shared.dataset.csv.as_ref().unwrap().name, "rings-ui.csv");
    h.get_by_label_contains("loaded rings-ui.csv (180 samples of 2D points, 3 classes");
    let data = h.state().lab.data.clone().expect("the file's data is built");
    assert!(data.is_points() && data.n_classes == 3 && data.n_train() == 144);
    for _ in 0..30 {
        h.state_mut().lab.step_once(0);
    }
    h.state_mut().train = true;
    h.run_steps(20);
    let r = &h.state().lab.runs[0];
    assert!(r.completed() > 30 && r.error.is_none(), "{:?}", r.error);
    // The decision surface of the file's points.
    assert!(h.state().lab.runs.iter().any(|r| r.views.surface.is_some()));
}

#[test]
fn saved_weights_load_into_another_run_bit_for_bit() {
    let platform = MemoryPlatform::default();
    let (files, picks) = (platform.files.clone(), platform.picks.clone());
    let mut h = app(platform);
    h.run_steps(1);
    for _ in 0..25 {
        h.state_mut().lab.step_once(0);
    }
    h.get_by_label("File").click();
    h.run_steps(3);
    h.get_by_label("Save weights of run 1").click();
    for _ in 0..10 {
        h.run_steps(1);
        if files.borrow().contains_key("samlab-weights-run1.json") {
            break;
        }
    }
    let saved = files.borrow().get("samlab-weights-run1.json").cloned().expect("the weights were saved");
    let doc: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    assert_eq!(doc["schema"], "samlab.params/1");
    // Into run 2 (selected), through the file dialog.
    h.state_mut().settings.selected = 1;
    h.run_steps(1);
    picks.borrow_mut().push_back(IncomingFile { name: "samlab-weights-run1.json".into(), bytes: Ok(saved.clone()) });
    h.get_by_label("File").click();
    h.run_steps(3);
    h.get_by_label("Open file…").click();
    h.run_steps(2);
    let msg = h.state().messages.last().unwrap().text.clone();
    assert!(msg.contains("into run 2"), "{msg}");
    let lab = &mut h.state_mut().lab;
    let a = lab.runs[0].run.as_mut().unwrap().params_blocking().unwrap();
    let b = lab.runs[1].run.as_mut().unwrap().params_blocking().unwrap();
    assert_ne!(a, *lab.runs[0].run.as_ref().unwrap().init, "run 1 trained");
    assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert_eq!(lab.runs[1].completed(), 0, "the run starts from the loaded weights");
    // Weights of another network are refused with the shapes named; run 2 keeps its weights.
    let spec = samlab::model::MlpSpec::new(2, &[3], 2, samlab::model::Activation::Relu);
    let other = samlab::formats::ParamsJson::from_flat(&spec, &vec![0.5; spec.n_params()]);
    let text = serde_json::to_string(&samlab::formats::params_document(&other)).unwrap();
    h.state_mut().open_incoming(IncomingFile { name: "small.json".into(), bytes: Ok(text.into_bytes()) });
    let msg = h.state().messages.last().unwrap().text.clone();
    assert!(msg.contains("2-3-2 (17 parameters)") && msg.contains("run 2 is 2-64-64-2 (4482 parameters)") && !msg.contains('\n'), "{msg}");
    let c = h.state_mut().lab.runs[1].run.as_mut().unwrap().params_blocking().unwrap();
    assert_eq!(b, c);
    // On the landscape's line between the two runs the loss is flat: the same weights at both ends.
    let lab = &mut h.state_mut().lab;
    lab.set_all_playing(false);
    lab.start_landscape(0, Some(1));
    for _ in 0..10_000 {
        lab.tick();
        if lab.landscape.as_ref().is_some_and(|j| j.view.is_complete()) {
            break;
        }
    }
    let view = &lab.landscape.as_ref().expect("the line is computed").view;
    assert!(view.is_complete(), "{:?}", lab.landscape_error);
    // (1 − t)·w + t·w rounds in f32: flat within 1e-6 relative.
    assert!(view.loss.iter().all(|&l| (l - view.loss[0]).abs() <= 1e-6 * view.loss[0]), "{:?}", view.loss);
}

#[test]
fn a_saved_lab_carries_a_small_file_and_names_a_missing_one() {
    let mut h = app(MemoryPlatform::default());
    h.run_steps(1);
    drop_file(&mut h, "rings-lab.csv", &rings_csv());
    let text = h.state().lab.state.to_json_with_data();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data"]["name"], "rings-lab.csv");
    assert_eq!(v["data"]["csv"].as_str().unwrap(), rings_csv());
    let (state, _) = samlab::lab::LabState::from_json(&text).unwrap();
    assert_eq!(state, h.state().lab.state);
    // A lab that names a file this process has not read: the message says which to load.
    let mut missing = v.clone();
    missing.as_object_mut().unwrap().remove("data");
    missing["shared"]["dataset"]["csv"]["name"] = "elsewhere.csv".into();
    let mut h = app(MemoryPlatform::default());
    h.run_steps(1);
    h.state_mut().load_text(&missing.to_string());
    let msg = h.state().messages.last().unwrap().text.clone();
    assert!(msg.contains("load the file elsewhere.csv (180 samples of 2D points, 3 classes"), "{msg}");
    assert!(h.state().lab.data.is_none());
    // Loading that file then builds the runs.
    drop_file(&mut h, "elsewhere.csv", &rings_csv());
    assert!(h.state().lab.data.is_some(), "{:?}", h.state().lab.data_error);
    assert!(h.state().lab.runs.iter().all(|r| r.run.is_some()));
}

/// The README's picture of the app trained on a file of the user's: the rings above dropped on
/// the window, SGD and SAM trained 600 steps each (step by step: the same picture every time),
/// the decision surfaces drawn. Written to target/screenshots/own-csv.png
/// (`UPDATE_SCREENSHOTS=1 cargo xtask test` copies it to docs/screenshots/).
#[test]
fn screenshot_of_the_app_trained_on_a_dropped_csv() {
    let mut app = SamLabApp::with(Box::new(MemoryPlatform::default()), None, None, EngineChoice::cpu("screenshot"));
    app.train = false;
    // The status bar shows frame rates, which differ from run to run.
    app.hidden.insert(samlab::lab::state::Panel::Status);
    let mut h =
        Harness::builder().with_size([1280.0, 900.0]).with_context_setup(samlab::ui::install_fonts).build_ui_state(|ui, app: &mut SamLabApp| app.show(ui), app);
    h.run_steps(1);
    drop_file(&mut h, "rings.csv", &rings_csv());
    let lab = &mut h.state_mut().lab;
    for i in 0..lab.runs.len() {
        for _ in 0..600 {
            lab.step_once(i);
        }
    }
    for _ in 0..50 {
        lab.tick();
        lab.refresh_views(web_time::Duration::ZERO);
        if lab.runs.iter().all(|r| r.views.surface.as_ref().is_some_and(|s| s.step == 600)) {
            break;
        }
    }
    assert!(lab.runs.iter().all(|r| r.views.surface.is_some()), "the decision surfaces are drawn");
    let acc: Vec<f64> = lab.runs.iter().map(|r| r.run.as_ref().unwrap().history.last_eval().unwrap().test_acc).collect();
    assert!(acc.iter().all(|&a| a >= 0.9), "rings test accuracy {acc:?}");
    h.run_steps(3);
    let image = h.render().expect("the app renders");
    let distinct: std::collections::HashSet<[u8; 4]> = image.pixels().map(|p| p.0).collect();
    assert!(distinct.len() > 200, "a blank picture ({} colours)", distinct.len());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    image.save(dir.join("own-csv.png")).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Random and mutated CSV files never panic: they load, or are refused with one line that
    /// names the file; a file that loads trains on data of its stated shape.
    #[test]
    fn mutated_csv_files_load_or_are_refused_in_one_line(
        cut in 0usize..4000,
        flips in proptest::collection::vec((0usize..4000, proptest::prelude::any::<u8>()), 0..6),
        junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
    ) {
        let mut bytes = images_csv().into_bytes();
        for (at, b) in flips {
            let n = bytes.len();
            bytes[at % n] = b;
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        bytes.extend_from_slice(&junk);
        match samlab::data::user::parse("fuzz.csv", &bytes) {
            Ok((source, raw)) => {
                proptest::prop_assert_eq!(raw.y.len(), source.samples);
                proptest::prop_assert_eq!(raw.x.len(), source.samples * source.features);
                proptest::prop_assert!(raw.x.iter().all(|v| v.is_finite()));
            }
            Err(e) => {
                let e = e.to_string();
                proptest::prop_assert!(e.starts_with("fuzz.csv") && !e.contains('\n') && !e.contains('\r'), "{}", e);
            }
        }
    }
}

#[test]
fn a_dropped_image_csv_shows_its_hardest_samples() {
    let mut h = app(MemoryPlatform::default());
    h.run_steps(1);
    drop_file(&mut h, "halves.csv", &images_csv());
    let lab = &mut h.state_mut().lab;
    let data = lab.data.clone().expect("the images load");
    assert_eq!((data.image_shape, data.n_features, data.n_classes), (Some((4, 4)), 16, 2));
    // Pixels divided by the file's largest (239), then centred: back in 0..1 with the mean.
    let pixel = |i: usize, p: usize| data.train_row(i)[p] + data.feature_mean[p];
    assert!((0..data.n_train()).all(|i| (0..16).all(|p| (0.0..=1.0).contains(&pixel(i, p)))));
    for _ in 0..10 {
        lab.step_once(0);
    }
    for _ in 0..50 {
        lab.tick();
        lab.refresh_views(web_time::Duration::ZERO);
        if lab.runs[0].views.hardest.is_some() {
            break;
        }
    }
    let hardest = lab.runs[0].views.hardest.as_ref().expect("the hardest samples are computed");
    assert!(!hardest.samples.is_empty() && hardest.samples.iter().all(|s| s.grad_norm.is_finite()));
    h.run_steps(2);
    h.get_by_label_contains("Largest per-sample gradient norms");
}
