//! The app's behaviour through the accessibility tree (egui_kittest): what a user clicks and
//! what the lab does. The app runs headless on the CPU engine with an in-memory platform.

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use samlab::app::SamLabApp;
use samlab::config::OptimizerKind;
use samlab::engine::EngineChoice;
use samlab::lab::{LabState, Preset};
use samlab::platform::MemoryPlatform;

fn app_with(platform: MemoryPlatform) -> SamLabApp {
    let mut app = SamLabApp::with(Box::new(platform), None, None, EngineChoice::cpu("UI test"));
    // Behaviour tests step explicitly; one test turns training on.
    app.train = false;
    app
}

fn harness(app: SamLabApp) -> Harness<'static, SamLabApp> {
    Harness::builder().with_size([1400.0, 1000.0]).with_context_setup(samlab::ui::install_fonts).build_ui_state(|ui, app: &mut SamLabApp| app.show(ui), app)
}

#[test]
fn the_app_opens_on_the_default_preset_with_its_runs_listed() {
    let mut h = harness(app_with(MemoryPlatform::default()));
    h.run_steps(2);
    assert_eq!(h.state().lab.state.preset, Some(Preset::DEFAULT));
    // Each run's name labels its row (and its decision surface).
    assert!(h.query_all_by_label("1. SGD").count() >= 1);
    assert!(h.query_all_by_label("2. SAM").count() >= 1);
    assert!(h.query_all_by_label_contains("Engine: CPU (f32) engine").count() >= 1);
    // Every control a user can act on has a name (screen readers, and these tests).
    h.check_accessibility();
    h.get_by_role_and_label(Role::Slider, "Learning rate η");
    h.get_by_role_and_label(Role::ComboBox, "Dataset");
}

#[test]
fn clicking_a_preset_loads_its_runs() {
    let mut h = harness(app_with(MemoryPlatform::default()));
    h.run_steps(1);
    h.get_by_label("m-sharpness").click();
    h.run_steps(2);
    let state = &h.state().lab.state;
    assert_eq!(state.preset, Some(Preset::MSharpness));
    let m: Vec<usize> = state.runs.iter().map(|r| r.optimizer.m).collect();
    assert_eq!(m, [128, 32, 8, 1]);
    assert!(state.runs.iter().all(|r| r.optimizer.kind == OptimizerKind::Msam && r.batch == 128));
    assert_eq!(state.shared.dataset.label_noise, 0.4);
    assert!(h.query_all_by_label("4. m-SAM m=1").count() >= 1);
}

#[test]
fn clicking_an_optimizer_changes_the_selected_run_only() {
    let mut h = harness(app_with(MemoryPlatform::default()));
    h.run_steps(1);
    h.get_all_by_label("2. SAM").next().expect("the run row comes first").click();
    h.run_steps(1);
    h.get_by_label("ASAM").click();
    h.run_steps(2);
    let runs = &h.state().lab.state.runs;
    assert_eq!(runs[0].optimizer.kind, OptimizerKind::Sgd);
    assert_eq!(runs[1].optimizer.kind, OptimizerKind::Asam);
    assert!(h.state().lab.runs[1].run.is_some());
    // ASAM shows its ξ, and the preset is no longer claimed.
    h.get_by_role_and_label(Role::Slider, "ξ");
    assert_eq!(h.state().lab.state.preset, None);
}

#[test]
fn step_and_reset_return_to_the_same_initial_weights() {
    let mut h = harness(app_with(MemoryPlatform::default()));
    h.run_steps(1);
    for _ in 0..5 {
        h.get_all_by_label("Step").next().expect("a Step button").click();
        h.run_steps(1);
    }
    assert_eq!(h.state().lab.runs[0].completed(), 5);
    assert_eq!(h.state().lab.runs[1].completed(), 0);
    let first = h.state().lab.runs[0].run.as_ref().unwrap().history.clone();
    h.get_all_by_label("Reset").next().expect("a Reset button").click();
    h.run_steps(1);
    assert_eq!(h.state().lab.runs[0].completed(), 0);
    for _ in 0..5 {
        h.get_all_by_label("Step").next().unwrap().click();
        h.run_steps(1);
    }
    assert_eq!(h.state().lab.runs[0].run.as_ref().unwrap().history, first, "the same steps again after reset");
}

#[test]
fn runs_are_added_duplicated_and_removed_by_their_buttons() {
    let mut h = harness(app_with(MemoryPlatform::default()));
    h.run_steps(1);
    h.get_by_label("Add run").click();
    h.run_steps(1);
    assert_eq!(h.state().lab.runs.len(), 3);
    h.get_all_by_label("Duplicate").next().unwrap().click();
    h.run_steps(1);
    assert_eq!(h.state().lab.runs.len(), 4);
    assert_eq!(h.state().lab.state.runs[3].optimizer.kind, OptimizerKind::Sgd);
    h.get_all_by_label("Remove").next().unwrap().click();
    h.run_steps(1);
    assert_eq!(h.state().lab.runs.len(), 3);
    assert_eq!(h.state().lab.state.runs[0].optimizer.kind, OptimizerKind::Sam);
}

#[test]
fn playing_trains_between_frames_and_pause_stops_it() {
    let mut app = app_with(MemoryPlatform::default());
    app.train = true;
    let mut h = harness(app);
    h.run_steps(10);
    let moved: Vec<u64> = h.state().lab.runs.iter().map(|r| r.completed()).collect();
    assert!(moved.iter().all(|&s| s > 0), "{moved:?}");
    h.get_by_label("Pause all").click();
    h.run_steps(2);
    let paused: Vec<u64> = h.state().lab.runs.iter().map(|r| r.completed()).collect();
    h.run_steps(5);
    let later: Vec<u64> = h.state().lab.runs.iter().map(|r| r.completed()).collect();
    assert_eq!(paused, later);
    h.get_by_label("Play all");
}

#[test]
fn a_bad_link_opens_the_defaults_and_says_what_was_ignored() {
    let mut h = harness(app_with(MemoryPlatform::with_hash("v1:not-base64-json")));
    h.run_steps(2);
    assert_eq!(h.state().lab.state, LabState::default());
    h.get_by_label_contains("ignored the link's settings");
}

#[test]
fn a_link_opens_its_settings_and_the_url_follows_changes() {
    let state = Preset::RwSamTemperature.state();
    let platform = MemoryPlatform::with_hash(&state.to_hash());
    let mut h = harness(app_with(platform));
    h.run_steps(2);
    assert_eq!(h.state().lab.state, state);
    h.get_by_label("moons: SGD vs SAM").click();
    h.run_steps(2);
    let (back, _) = LabState::from_hash(&h.state().lab.state.to_hash()).unwrap().unwrap();
    assert_eq!(back, Preset::MoonsSgdVsSam.state());
}

#[test]
fn save_and_load_round_trip_through_the_platform() {
    let mut h = harness(app_with(MemoryPlatform::default()));
    h.run_steps(1);
    h.get_by_label("File").click();
    h.run_steps(3);
    h.get_by_label("Save config").click();
    h.run_steps(1);
    h.get_by_label("label noise: SGD vs SAM vs RW-SAM").click();
    h.run_steps(1);
    assert_eq!(h.state().lab.runs.len(), 3);
    h.get_by_label("File").click();
    h.run_steps(3);
    h.get_by_label("Load config").click();
    h.run_steps(1);
    assert_eq!(h.state().lab.state, Preset::MoonsSgdVsSam.state());
    h.get_by_label("File").click();
    h.run_steps(3);
    h.get_by_label("Export metrics CSV").click();
    h.run_steps(2);
    h.get_by_label_contains("saved the metrics: memory:samlab-metrics.csv");
}

#[test]
fn a_plot_exports_as_png() {
    let mut h = Harness::builder()
        .with_size([1400.0, 1000.0])
        .with_context_setup(samlab::ui::install_fonts)
        .wgpu()
        .build_ui_state(|ui, app: &mut SamLabApp| app.show(ui), app_with(MemoryPlatform::default()));
    h.run_steps(2);
    h.get_all_by_label("PNG").next().expect("a PNG button").click();
    for _ in 0..5 {
        h.run_steps(1);
        let _ = h.render();
    }
    let saved: Vec<&String> = h.state().messages.iter().map(|m| &m.text).collect();
    assert!(saved.iter().any(|t| t.starts_with("saved the plot: memory:samlab-") && t.ends_with(".png")), "{saved:?}");
}

/// The app in a window tall enough for the landscape panel at the bottom of the scroll area.
fn tall_harness(app: SamLabApp) -> Harness<'static, SamLabApp> {
    Harness::builder().with_size([1400.0, 3200.0]).with_context_setup(samlab::ui::install_fonts).build_ui_state(|ui, app: &mut SamLabApp| app.show(ui), app)
}

#[test]
fn the_landscape_controls_set_directions_grid_and_range_in_the_linked_state() {
    use samlab::lab::landscape::LandscapeSettings;
    use samlab::metrics::directions::Directions;
    let mut h = tall_harness(app_with(MemoryPlatform::default()));
    h.run_steps(2);
    assert_eq!(h.state().lab.state.landscape, LandscapeSettings::default());
    h.get_by_role_and_label(Role::ComboBox, "Landscape directions").click();
    h.run_steps(2);
    h.get_all_by_label("Hessian").last().expect("the Hessian choice").click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::Slider, "Grid points per side").set_value_accesskit(51.0);
    h.run_steps(2);
    // The range slider is off while the range follows the directions.
    h.get_by_label("auto range").click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::Slider, "Landscape range").set_value_accesskit(2.5);
    h.run_steps(2);
    let want = LandscapeSettings { directions: Directions::Hessian, grid: 51, range: Some(2.5) };
    assert_eq!(h.state().lab.state.landscape, want);
    // The settings travel in the link and come back.
    let (back, _) = LabState::from_hash(&h.state().lab.state.to_hash()).unwrap().unwrap();
    assert_eq!(back.landscape, want);
    h.get_by_label("auto range").click();
    h.run_steps(2);
    assert_eq!(h.state().lab.state.landscape.range, None);
}

#[test]
fn a_pca_landscape_computed_from_the_panel_shows_explained_variance_and_off_plane_share() {
    let mut h = tall_harness(app_with(MemoryPlatform::default()));
    h.run_steps(1);
    for _ in 0..150 {
        h.state_mut().lab.step_once(1);
    }
    h.state_mut().lab.tick();
    // A frame with the new history first: the plots' keys appear and move the panels below.
    h.run_steps(1);
    h.get_by_role_and_label(Role::ComboBox, "Landscape directions").click();
    h.run_steps(2);
    h.get_all_by_label("PCA").last().expect("the PCA choice").click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::Slider, "Grid points per side").set_value_accesskit(21.0);
    h.run_steps(1);
    h.get_by_role_and_label(Role::ComboBox, "Landscape run").click();
    h.run_steps(2);
    h.get_all_by_label("2. SAM").last().expect("run 2 in the list").click();
    h.run_steps(2);
    h.get_by_label("Compute grid").click();
    h.run_steps(1);
    for _ in 0..10_000 {
        if h.state().lab.landscape.as_ref().is_some_and(|j| j.view.is_complete()) {
            break;
        }
        h.state_mut().lab.tick();
    }
    h.run_steps(2);
    let v = &h.state().lab.landscape.as_ref().expect("a landscape").view;
    assert!(v.is_complete() && v.side() == 21 && v.label == "2. SAM", "{}×{} around {}", v.side(), v.side(), v.label);
    let [e1, _] = v.directions.as_ref().unwrap().explained_variance.unwrap();
    let share = v.off_plane_share.unwrap();
    h.get_by_label_contains(&format!("PC1 explains {:.1} %", 100.0 * e1));
    h.get_by_label_contains(&format!("{:.1} % of the path off the plane", 100.0 * share));
    h.get_by_label_contains("441/441 points");
}

#[test]
fn an_experiment_runs_live_from_its_panel_and_fills_its_table() {
    let mut h = harness(app_with(MemoryPlatform::default()));
    h.run_steps(1);
    h.get_by_label("Experiments").click();
    h.run_steps(2);
    h.get_by_label("label-noise").click();
    h.state_mut().experiments_panel.seeds = 1;
    h.run_steps(1);
    if !h.state().experiments_panel.quick {
        h.get_by_label("quick").click();
        h.run_steps(1);
    }
    h.get_by_label("Run label-noise").click();
    h.run_steps(1);
    assert!(h.state().experiment.as_ref().is_some_and(|j| j.is_running()));
    h.run_steps(1);
    h.get_by_label("Stop");
    let start = std::time::Instant::now();
    while h.state().experiment.as_ref().unwrap().is_running() && start.elapsed().as_secs() < 240 {
        h.run_steps(1);
    }
    let job = h.state().experiment.as_ref().unwrap();
    assert!(!job.is_running() && job.live_runs() == 0);
    assert_eq!((job.done(), job.total()), (8, 8), "{:?}", job.problems);
    assert!(job.problems.is_empty(), "{:?}", job.problems);
    h.run_steps(2);
    // One row per (series, noise): each series twice, each noise level four times, every
    // accuracy as mean ± std.
    let table = h.get_by_label("Results table");
    for series in ["SGD", "SAM", "m-SAM m=8", "RW-SAM"] {
        assert_eq!(table.query_all_by_label(series).count(), 2, "{series}");
    }
    assert_eq!(table.query_all_by_label("0.4").count(), 4);
    assert_eq!(table.query_all_by_label("0").count(), 4);
    assert_eq!(table.query_all_by_label_contains(" ± ").count(), 4 * 2 + 4 * 3, "test and best test acc, memorised with noise");
    h.get_by_label_contains("40 % noise: RW-SAM above SAM (the paper's Table 4)");
    h.get_by_label_contains("experiment label-noise finished: 8 of 8");
    h.get_by_label("Export Markdown").click();
    h.run_steps(2);
    h.get_by_label_contains("saved the experiment results: memory:samlab-experiment-label-noise.md");
}

#[test]
fn stop_and_preset_switches_leave_no_experiment_run_behind() {
    let mut h = harness(app_with(MemoryPlatform::default()));
    h.run_steps(1);
    h.get_by_label("Experiments").click();
    h.run_steps(1);
    h.get_by_label("label-noise").click();
    h.state_mut().experiments_panel.quick = true;
    h.run_steps(1);
    h.get_by_label("Run label-noise").click();
    h.run_steps(2);
    // Another preset changes the lab's runs, not the experiment's.
    h.get_by_label("m-sharpness").click();
    h.run_steps(2);
    assert_eq!(h.state().lab.runs.len(), 4);
    let job = h.state().experiment.as_ref().unwrap();
    assert!(job.is_running() && job.live_runs() <= 1, "{}", job.live_runs());
    // Back to the lab view: the experiment goes on, and the top bar says so.
    h.get_by_label("Lab").click();
    h.run_steps(2);
    h.get_by_label_contains("label-noise running:");
    h.get_by_label("Experiments").click();
    h.run_steps(2);
    h.get_by_label("Stop").click();
    h.run_steps(2);
    let job = h.state().experiment.as_ref().unwrap();
    assert!(!job.is_running());
    assert_eq!(job.live_runs(), 0);
    h.get_by_label_contains("stopped the experiment after");
    h.get_by_label("Run label-noise");
}

/// A run that diverges stops with its message in the runs panel; the other run trains on.
#[test]
fn a_diverging_run_is_stopped_with_a_message_and_the_other_goes_on() {
    let mut state = Preset::MoonsSgdVsSam.state();
    state.runs[0].optimizer.lr = 10.0;
    state.runs[0].optimizer.momentum = 0.99;
    state.runs[0].optimizer.weight_decay = 0.5;
    state.runs[1].steps = Some(1_000_000);
    let mut app = app_with(MemoryPlatform::with_hash(&state.to_hash()));
    app.train = true;
    let mut h = harness(app);
    let diverged = |h: &Harness<'static, SamLabApp>| matches!(h.state().lab.runs[0].status(), Some(samlab::run::RunStatus::Diverged(_)));
    for _ in 0..2000 {
        if diverged(&h) {
            break;
        }
        h.run_steps(1);
    }
    assert!(diverged(&h), "run 1 did not diverge: {:?}", h.state().lab.runs[0].status());
    h.run_steps(2);
    h.get_by_label_contains("stopped: diverged at step");
    let (stopped, other) = (h.state().lab.runs[0].completed(), h.state().lab.runs[1].completed());
    h.run_steps(3);
    assert_eq!(h.state().lab.runs[0].completed(), stopped);
    assert!(h.state().lab.runs[1].completed() > other, "the other run stopped too");
}

#[test]
fn the_hessian_spectrum_checkbox_adds_a_density_card_after_a_measurement() {
    // The lab ticks (measurements are collected each frame) with its runs paused.
    let mut app = app_with(MemoryPlatform::default());
    app.train = true;
    app.lab.set_all_playing(false);
    let mut h = harness(app);
    h.run_steps(1);
    let spec = samlab::lab::RunSpec { measure_every: 5, ..h.state().lab.state.runs[0].clone() };
    h.state_mut().lab.set_spec(0, spec).unwrap();
    h.run_steps(1);
    assert!(h.query_all_by_label("Hessian eigenvalue density (latest)").next().is_none(), "no card before the spectrum is asked for");
    h.get_by_role_and_label(Role::CheckBox, "Hessian spectrum").click();
    h.run_steps(1);
    assert!(h.state().lab.state.runs[0].spectrum, "the checkbox sets the run's spectrum");
    h.get_all_by_label("Step").next().expect("a Step button").click();
    let start = std::time::Instant::now();
    let has_density = |app: &SamLabApp| app.lab.runs[0].run.as_ref().is_some_and(|r| r.history.measurements.iter().any(|m| m.density.is_some()));
    while !has_density(h.state()) {
        if start.elapsed().as_secs() >= 30 {
            let r = &h.state().lab.runs[0];
            let ms = r.run.as_ref().map(|r| r.history.measurements.len());
            panic!(
                "no measurement with a density arrived: {ms:?} measurements, {} steps, error {:?}",
                r.completed(),
                r.measuring.as_ref().map(|m| m.error.clone())
            );
        }
        h.run_steps(1);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    h.run_steps(2);
    let m = h.state().lab.runs[0].run.as_ref().unwrap().history.measurements.iter().find(|m| m.density.is_some()).unwrap().clone();
    let d = m.density.as_ref().unwrap();
    assert_eq!((d.starts, d.x.len()), (4, 256), "the desktop's settings (samlab::lab::measuring::app_density)");
    assert!((d.support[1] - m.lambda_max).abs() <= 0.05 * m.lambda_max.abs(), "top Ritz value {} vs λ_max {}", d.support[1], m.lambda_max);
    h.get_by_label("Hessian eigenvalue density (latest)");
    assert!(h.query_all_by_label_contains("1. SGD @").count() >= 1, "the run's line is in the legend");
}
