//! Small snapshots of panels and plots rendered from a fixed history (no training, no clock), on
//! lavapipe. `UPDATE_SNAPSHOTS=1 cargo test --test ui_snapshots` rewrites the references in
//! tests/snapshots/; a change fails the test and leaves `.new.png` and `.diff.png` beside them.

use egui_kittest::Harness;
use samlab::engine::EngineChoice;
use samlab::lab::views::{decision_surface, hardest_samples};
use samlab::lab::{Lab, LabState, Preset};
use samlab::metrics::{MPoint, Measurement};
use samlab::run::{EvalRecord, History, StepRecord};
use samlab::ui::Command;
use samlab::ui::data_view::DataPanel;
use samlab::ui::plots::{MetricsPanel, XAxis};
use samlab::ui::runs::RunsPanel;

/// A made-up but plausible history: run k's loss decays at its own rate.
fn fixture_history(k: usize, label_noise: bool) -> History {
    let mut h = History::default();
    let rate = 0.08 + 0.03 * k as f64;
    let mut best: f64 = 0.0;
    for e in 0..=20u64 {
        let t = e as f64;
        let train_loss = 0.05 + 0.65 * (-rate * t).exp();
        let test_loss = train_loss + 0.04 * (1.0 + 0.02 * t) - 0.01 * k as f64;
        let test_acc = 0.98 - 0.45 * (-rate * t).exp() - 0.005 * k as f64;
        best = best.max(test_acc);
        h.evals.push(EvalRecord {
            step: e * 25,
            epoch: t,
            train_loss,
            train_acc: 1.0 - 0.5 * (-rate * t).exp(),
            test_loss,
            test_acc,
            best_test_acc: best,
            clean_train_acc: label_noise.then(|| 0.9 - 0.4 * (-rate * t).exp()),
            memorized: label_noise.then(|| 0.3 * (1.0 - (-0.05 * t).exp())),
        });
    }
    for s in 0..500u64 {
        let t = s as f64 / 25.0;
        let wiggle = 0.05 * ((s as f64) * 0.7 + k as f64).sin();
        let loss = 0.05 + 0.65 * (-rate * t).exp() + wiggle.abs();
        h.steps.push(StepRecord {
            step: s,
            lr: 0.05,
            loss,
            batch_acc: 1.0 - loss / 1.5,
            perturbed_loss: if k == 0 { loss } else { loss * 1.15 },
            grad_norm: Some(0.5 + 2.0 * (-rate * t).exp() + wiggle),
            perturbation_norm: if k == 0 { 0.0 } else { 0.05 },
            ess: None,
            lambda: None,
        });
    }
    h
}

/// Measurements every 100 steps: SAM (k > 0) ends flatter, with less gradient noise.
fn fixture_measurements(k: usize) -> Vec<Measurement> {
    (0..=5u64)
        .map(|j| {
            let t = j as f64;
            let flat = if k == 0 { 1.0 } else { 0.6 };
            let trace_v = flat * (40.0 + 15.0 * t);
            let grad_sq = 0.5 * (-0.4 * t).exp();
            let m_curve = [1usize, 2, 4, 8, 16, 32]
                .iter()
                .map(|&m| MPoint {
                    m,
                    mean_norm: 0.9 * (grad_sq + trace_v / m as f64).sqrt(),
                    rms_norm: (grad_sq + trace_v / m as f64).sqrt(),
                    bound: (grad_sq + trace_v / m as f64).sqrt(),
                    regularizer: 0.025 * (grad_sq + trace_v / m as f64),
                    groups: 16,
                })
                .collect();
            Measurement {
                step: j * 100,
                n_eval: 480,
                rho: 0.05,
                loss: 0.7 * (-0.5 * t).exp(),
                grad_norm: grad_sq.sqrt(),
                sharpness: flat * 0.02 * (1.0 + t),
                lambda_max: flat * (5.0 + 6.0 * t),
                top_eigenvalues: vec![flat * (5.0 + 6.0 * t)],
                trace_h: flat * (30.0 + 25.0 * t),
                trace_v,
                n_usam_regularizer: 0.025 * grad_sq,
                m_curve,
                ..Measurement::default()
            }
        })
        .collect()
}

fn fixture_lab(state: LabState) -> Lab {
    let mut lab = Lab::new(state, EngineChoice::cpu("snapshot fixture"));
    lab.set_all_playing(false);
    let noisy = lab.state.shared.dataset.label_noise > 0.0;
    for (k, r) in lab.runs.iter_mut().enumerate() {
        r.run.as_mut().expect("fixture runs build").history = fixture_history(k, noisy);
    }
    lab
}

fn render(name: &str, size: [f32; 2], mut draw: impl FnMut(&mut egui::Ui, &mut Vec<Command>) + 'static) {
    let mut h = Harness::builder().with_size(size).with_context_setup(samlab::ui::install_fonts).build_ui(move |ui| {
        let mut out = Vec::new();
        draw(ui, &mut out);
    });
    h.run_steps(3);
    h.snapshot(name);
}

#[test]
fn metrics_panel_from_a_fixed_history() {
    let lab = fixture_lab(Preset::MoonsSgdVsSam.state());
    let mut panel = MetricsPanel;
    render("metrics_panel", [1000.0, 900.0], move |ui, out| panel.ui(ui, &lab, XAxis::Epoch, out));
}

#[test]
fn label_noise_plots_from_a_fixed_history() {
    let lab = fixture_lab(Preset::LabelNoise.state());
    let mut panel = MetricsPanel;
    render("metrics_label_noise", [700.0, 1400.0], move |ui, out| panel.ui(ui, &lab, XAxis::Epoch, out));
}

#[test]
fn runs_panel_lists_runs_with_progress_and_controls() {
    let lab = fixture_lab(Preset::MSharpness.state());
    let mut panel = RunsPanel::default();
    render("runs_panel", [340.0, 560.0], move |ui, out| panel.ui(ui, &lab, 1, out));
}

#[test]
fn decision_surfaces_from_the_initial_weights() {
    let mut lab = fixture_lab(Preset::MoonsSgdVsSam.state());
    let data = lab.data.clone().unwrap();
    let init = lab.init.clone().unwrap();
    for r in &mut lab.runs {
        let s = decision_surface(r.run.as_ref().unwrap(), &data, &init, 0);
        r.views.surface = Some(s);
        r.views.generation = 1;
    }
    let mut panel = DataPanel::default();
    render("decision_surfaces", [700.0, 420.0], move |ui, out| panel.ui(ui, &lab, 0, out));
}

#[test]
fn hardest_samples_of_a_noisy_digits_run() {
    let mut lab = fixture_lab(Preset::LabelNoise.state());
    let data = lab.data.clone().unwrap();
    let init = lab.init.clone().unwrap();
    let r = &mut lab.runs[0];
    r.views.hardest = Some(hardest_samples(r.run.as_ref().unwrap(), &data, &init, 0));
    let mut panel = DataPanel::default();
    render("hardest_samples", [760.0, 420.0], move |ui, out| panel.ui(ui, &lab, 0, out));
}

#[test]
fn measurement_plots_from_a_fixed_history() {
    let mut lab = fixture_lab(Preset::MoonsSgdVsSam.state());
    for (k, r) in lab.runs.iter_mut().enumerate() {
        r.run.as_mut().unwrap().history.measurements = fixture_measurements(k);
    }
    let mut panel = MetricsPanel;
    render("metrics_measurements", [1000.0, 1650.0], move |ui, out| panel.ui(ui, &lab, XAxis::Step, out));
}

/// A PCA landscape around run 2 of the moons preset after 200 single steps (deterministic: no
/// clock), with its trajectory; also the README's screenshot of the panel
/// (docs/screenshots/landscape-pca.png, rewritten with the snapshot).
#[test]
fn landscape_panel_with_a_pca_grid_and_the_trajectory() {
    use samlab::lab::landscape::LandscapeSettings;
    use samlab::metrics::directions::Directions;
    use samlab::ui::landscape::LandscapePanel;
    let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::cpu("snapshot fixture"));
    lab.set_all_playing(false);
    for _ in 0..200 {
        lab.step_once(1);
    }
    lab.set_landscape_settings(LandscapeSettings { directions: Directions::Pca, grid: 41, range: None });
    lab.start_landscape(1, None);
    for _ in 0..100_000 {
        if lab.landscape.as_ref().is_some_and(|j| j.view.is_complete()) {
            break;
        }
        lab.tick();
    }
    let v = &lab.landscape.as_ref().expect("a landscape").view;
    assert!(v.is_complete() && v.trajectory.len() > 3, "{} snapshots", v.trajectory.len());
    let mut panel = LandscapePanel::default();
    render("landscape_pca", [900.0, 600.0], move |ui, out| panel.ui(ui, &lab, out));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(root.join("tests/snapshots/landscape_pca.png"), root.join("docs/screenshots/landscape-pca.png")).expect("README screenshot");
    }
}

/// The m-sweep with two seeds from made-up results: smaller m generalises better and ends with
/// less gradient noise; SGD and n-SAM are the dashed reference lines.
#[test]
fn experiments_panel_from_fixed_results() {
    use samlab::experiments::{Experiment, Options, TrialResult, trials};
    use samlab::lab::experiments::ExperimentJob;
    use samlab::ui::experiments::ExperimentsPanel;
    let options = Options { seeds: 2, quick: true, ..Options::default() };
    let list = trials(Experiment::MSweep, &options);
    let results: Vec<TrialResult> = list
        .iter()
        .map(|t| {
            let m = t.x.unwrap_or(128.0);
            let gain = 0.012 * (128f64.log2() - m.log2()) + if t.series == "SGD" { -0.01 } else { 0.0 };
            let noise = 0.004 * (t.seed as f64 * 2.0 - 1.0);
            TrialResult {
                series: t.series.clone(),
                x: t.x,
                seed: t.seed,
                label: t.config.optimizer.label(),
                engine: "CPU (f32)".into(),
                steps: 30,
                final_test_acc: 0.80 + gain + noise,
                best_test_acc: 0.82 + gain + 0.5 * noise,
                trace_v: Some(40.0 - 3.0 * (128f64.log2() - m.log2()) + 2.0 * t.seed as f64),
                lambda_max: Some(12.0 - 0.8 * (128f64.log2() - m.log2()) + 0.5 * t.seed as f64),
                memorized: Some(0.3 - 0.02 * (128f64.log2() - m.log2()) + noise),
                ms_per_step: 1.0,
                ..Default::default()
            }
        })
        .collect();
    let job = ExperimentJob::from_results(Experiment::MSweep, options, list, results);
    let mut panel = ExperimentsPanel { selected: Experiment::MSweep, seeds: 2, quick: true };
    render("experiments_panel", [1200.0, 940.0], move |ui, out| panel.ui(ui, Some(&job), "CPU (f32) engine", out));
}

/// The density card after real training: SGD and SAM on the moons preset for 1500 steps each
/// (the CPU engine, deterministic), then the desktop's measurement with the spectrum at the
/// final weights. The image is also the README's (docs/screenshots/hessian_density.png): with
/// `UPDATE_SNAPSHOTS=1` the test copies it there, otherwise it checks that the two agree.
#[test]
fn hessian_density_card_of_trained_sgd_and_sam() {
    use samlab::lab::measuring::{app_density, app_measurer};
    let mut state = Preset::MoonsSgdVsSam.state();
    for r in &mut state.runs {
        r.steps = Some(1500);
    }
    let mut lab = Lab::new(state, EngineChoice::cpu("snapshot fixture"));
    lab.set_all_playing(false);
    let data = lab.data.clone().unwrap();
    let shared = lab.state.shared.clone();
    let mut outliers = Vec::new();
    for r in &mut lab.runs {
        let cfg = r.spec.config(&shared);
        let run = r.run.as_mut().unwrap();
        run.run_to_end(64, |_| {}).unwrap();
        let params = run.params_blocking().unwrap();
        let mut measurer = app_measurer(&cfg, &data, false).unwrap();
        measurer.config.density = Some(app_density(&cfg, false));
        let m = measurer.measure(run.completed_steps(), &params).unwrap();
        let d = m.density.as_ref().unwrap();
        eprintln!("{}: λ_max {:.3}, support {:?}, bulk {:?}, {} outliers {:?}", r.spec.label(), m.lambda_max, d.support, d.bulk, d.outliers.len(), d.outliers);
        outliers.push(d.support[1]);
        run.history.measurements = vec![m];
    }
    assert!(outliers[0] > outliers[1], "SGD ends sharper than SAM: top Ritz values {outliers:?}");
    render("hessian_density", [640.0, 330.0], move |ui, out| samlab::ui::plots::density_card(ui, &lab, out));
    let (made, readme) = ("tests/snapshots/hessian_density.png", "docs/screenshots/hessian_density.png");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::copy(made, readme).unwrap();
    }
    assert!(std::fs::read(made).unwrap() == std::fs::read(readme).unwrap_or_default(), "{readme} differs from {made}: UPDATE_SNAPSHOTS=1 copies it");
}
