//! Live settings and the plot controls through the app (egui_kittest): editing η of a running
//! run applies at its next step and marks the change in its history and on its plots; reset
//! returns to the settings of the start; smoothing draws TensorBoard's debiased EMA with the raw
//! curve faint behind; the log toggle puts a plot on a log₁₀ axis (non-positive values left
//! out); "selected" shows only the selected run. Also the README's screenshot of the plot
//! controls (`UPDATE_SNAPSHOTS=1` rewrites it with the snapshot).

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use samlab::app::SamLabApp;
use samlab::engine::EngineChoice;
use samlab::platform::MemoryPlatform;
use samlab::run::{EvalRecord, History, StepRecord};
use samlab::ui::plots::{DrawnPlot, drawn};
use std::sync::Arc;

fn app() -> SamLabApp {
    let mut app = SamLabApp::with(Box::new(MemoryPlatform::default()), None, None, EngineChoice::cpu("UI test"));
    app.train = false;
    app
}

fn harness(app: SamLabApp) -> Harness<'static, SamLabApp> {
    Harness::builder().with_size([1400.0, 1000.0]).with_context_setup(samlab::ui::install_fonts).build_ui_state(|ui, app: &mut SamLabApp| app.show(ui), app)
}

fn plot(h: &Harness<'_, SamLabApp>, id: &str) -> Arc<DrawnPlot> {
    drawn(&h.ctx, id).unwrap_or_else(|| panic!("{id} was not drawn"))
}

const LOSS: &str = "Loss";

/// A fixed history per run: batch losses that wiggle (one zero and one negative value, which a
/// log axis leaves out), evaluations every 10 steps.
fn history(k: usize) -> History {
    let mut h = History::default();
    for s in 0..120u64 {
        let loss = match s {
            40 => 0.0,
            41 => -0.5,
            _ => 0.1 + 0.6 * (-(s as f64) / (40.0 + 10.0 * k as f64)).exp() + 0.08 * ((s as f64) * 1.3).sin().abs(),
        };
        h.steps.push(StepRecord { step: s, lr: 0.05, loss, perturbed_loss: loss, grad_norm: Some(0.2 + 2.0 * loss.abs()), ..StepRecord::default() });
    }
    for e in 0..=12u64 {
        let loss = 0.1 + 0.5 * (-(e as f64) / (4.0 + 2.0 * k as f64)).exp() + 0.03 * (e as f64 * 2.1).sin();
        let acc = 1.0 - 0.6 * loss;
        h.evals.push(EvalRecord {
            step: 10 * e,
            epoch: e as f64 / 1.5,
            train_loss: loss,
            test_loss: loss + 0.05,
            train_acc: acc,
            test_acc: acc - 0.04,
            best_test_acc: acc - 0.04,
            ..EvalRecord::default()
        });
    }
    h
}

fn with_histories() -> SamLabApp {
    let mut app = app();
    app.lab.set_all_playing(false);
    for (k, r) in app.lab.runs.iter_mut().enumerate() {
        r.run.as_mut().unwrap().history = history(k);
    }
    app
}

#[test]
fn editing_the_learning_rate_of_a_running_run_marks_the_change_and_reset_undoes_it() {
    let mut h = harness(app());
    h.run_steps(1);
    for _ in 0..5 {
        h.get_all_by_label("Step").next().unwrap().click();
        h.run_steps(1);
    }
    h.get_by_role_and_label(Role::Slider, "Learning rate η").set_value_accesskit(0.02);
    h.run_steps(2);
    let lab = &h.state().lab;
    let run = lab.runs[0].run.as_ref().unwrap();
    assert_eq!(run.completed_steps(), 5, "the live change did not restart the run");
    let lr = lab.state.runs[0].optimizer.lr;
    assert!((lr - 0.02).abs() < 1e-9, "{lr}");
    let c = &run.history.changes;
    assert_eq!((c.len(), c[0].step, c[0].field.as_str(), c[0].old.as_str(), c[0].new.clone()), (1, 5, "optimizer.lr", "0.05", lr.to_string()));
    // The run's settings list it; every plot over steps marks it at step 5 (epoch 5/15 on the
    // epoch axis) in the run's colour.
    h.get_by_label(&format!("step 5: lr 0.05 → {lr}"));
    let color = samlab::ui::run_color(&lab.runs[0].spec);
    assert_eq!(plot(&h, "plot_batch").marks, [(5.0, color)]);
    assert_eq!(plot(&h, "plot_loss").marks, [(5.0 / lab.runs[0].run.as_ref().unwrap().steps_per_epoch() as f64, color)]);
    h.get_all_by_label("Step").next().unwrap().click();
    h.run_steps(1);
    assert_eq!(h.state().lab.runs[0].run.as_ref().unwrap().history.steps.last().unwrap().lr, lr, "step 5 used the new η");
    // Reset: the η of the start, no changes, no marks.
    h.get_all_by_label("Reset").next().unwrap().click();
    h.run_steps(2);
    let lab = &h.state().lab;
    assert_eq!(lab.state.runs[0].optimizer.lr, 0.05);
    assert!(lab.runs[0].run.as_ref().unwrap().history.changes.is_empty());
    assert!(plot(&h, "plot_batch").marks.is_empty());
}

#[test]
fn smoothing_draws_the_debiased_ema_with_the_raw_curve_faint_behind() {
    let mut h = harness(with_histories());
    h.run_steps(1);
    assert!(plot(&h, "plot_batch").faint.is_empty(), "raw curves only at 0");
    h.get_by_role_and_label(Role::Slider, "Smoothing").set_value_accesskit(0.6);
    h.run_steps(2);
    let w = h.state().lab.state.plots.smoothing;
    assert!((w - 0.6).abs() < 1e-9, "{w}");
    let batch = plot(&h, "plot_batch");
    let (name, smoothed) = &batch.lines[0];
    assert_eq!(name, "1. SGD f(w)");
    let raw: Vec<f64> = history(0).steps.iter().map(|s| s.loss).collect();
    // TensorBoard's formula written out: s_n = Σ_{k≤n} (1 − w)·w^{n−k}·y_k / (1 − wⁿ).
    for (n, p) in smoothed.iter().enumerate() {
        let sum: f64 = (0..=n).map(|k| (1.0 - w) * w.powi((n - k) as i32) * raw[k]).sum();
        let want = sum / (1.0 - w.powi(n as i32 + 1));
        assert!((p[1] - want).abs() <= 1e-12 * want.abs().max(1.0), "point {n}: {} vs {want}", p[1]);
        assert_eq!(p[0], n as f64);
    }
    assert_eq!(batch.faint[0].1.iter().map(|p| p[1]).collect::<Vec<_>>(), raw, "the raw curve stays, faint");
    // Curves over epochs are smoothed too; the m-curve (over m) never is.
    assert_eq!(plot(&h, "plot_loss").faint.len(), plot(&h, "plot_loss").lines.len());
    h.check_accessibility();
}

#[test]
fn the_log_toggle_puts_one_plot_on_a_log_axis() {
    let mut h = harness(with_histories());
    h.run_steps(1);
    h.get_by_label("log y of Batch loss f(w) and at the perturbed point f(w+e)").click();
    h.run_steps(2);
    assert!(h.state().lab.state.plots.log_y.contains("plot_batch"));
    let batch = plot(&h, "plot_batch");
    assert!(batch.log_y);
    let positive: Vec<f64> = history(0).steps.iter().map(|s| s.loss).filter(|&l| l > 0.0).collect();
    assert_eq!(positive.len(), 118, "the fixture has a zero and a negative loss");
    let ys: Vec<f64> = batch.lines[0].1.iter().map(|p| p[1]).collect();
    assert_eq!(ys, positive.iter().map(|l| l.log10()).collect::<Vec<_>>(), "log₁₀ of the positive values, the others left out");
    assert!(!plot(&h, "plot_loss").log_y, "only the plot toggled");
    // Off again.
    h.get_by_label("log y of Batch loss f(w) and at the perturbed point f(w+e)").click();
    h.run_steps(2);
    assert!(!plot(&h, "plot_batch").log_y && plot(&h, "plot_batch").lines[0].1.len() == 120);
}

#[test]
fn only_selected_hides_the_other_runs_of_that_plot() {
    let mut h = harness(with_histories());
    h.run_steps(1);
    let names = |h: &Harness<'_, SamLabApp>, id: &str| plot(h, id).lines.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&h, "plot_loss"), ["1. SGD train", "1. SGD test", "2. SAM train", "2. SAM test"]);
    h.get_by_label(&format!("only the selected run in {LOSS}")).click();
    h.run_steps(2);
    assert_eq!(names(&h, "plot_loss"), ["1. SGD train", "1. SGD test"]);
    assert_eq!(names(&h, "plot_batch"), ["1. SGD f(w)", "2. SAM f(w)"], "the other plots show every run");
    h.get_all_by_label("2. SAM").next().unwrap().click();
    h.run_steps(2);
    assert_eq!(names(&h, "plot_loss"), ["2. SAM train", "2. SAM test"]);
}

/// The plot controls as the README shows them: smoothing 0.8 with the raw curves faint, the
/// batch loss on a log axis, and a live change of SAM's η marked at step 60.
#[test]
fn plot_controls_screenshot_for_the_readme() {
    let mut app = with_histories();
    for r in &mut app.lab.runs {
        let steps = &mut r.run.as_mut().unwrap().history.steps;
        for s in &mut steps[40..42] {
            s.loss = 0.3; // the fixture's non-positive values are for the log test
            s.perturbed_loss = 0.3;
        }
    }
    app.lab.state.plots.smoothing = 0.8;
    app.lab.state.plots.log_y.insert("plot_batch".into());
    let change = samlab::run::ChangeRecord { step: 60, field: "optimizer.lr".into(), old: "0.05".into(), new: "0.02".into() };
    app.lab.runs[1].run.as_mut().unwrap().history.push_change(change);
    let mut h = Harness::builder().with_size([1000.0, 640.0]).with_context_setup(samlab::ui::install_fonts).build_ui_state(
        |ui, lab: &mut samlab::lab::Lab| {
            let mut out = Vec::new();
            samlab::ui::plots::MetricsPanel.show(ui, lab, samlab::ui::plots::XAxis::Step, 1, &mut out);
        },
        app.lab,
    );
    h.run_steps(3);
    h.snapshot("plot_controls");
    let (shot, docs) = ("tests/snapshots/plot_controls.png", "docs/screenshots/plot-controls.png");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::copy(shot, docs).unwrap();
    }
    assert!(std::fs::read(shot).unwrap() == std::fs::read(docs).unwrap(), "{docs} is not the snapshot: rerun with UPDATE_SNAPSHOTS=1");
}

/// The lecture-hall keys: S steps the selected run, ] doubles and [ halves its η as live changes,
/// Space pauses and plays every run, L starts the landscape around the selected run, R resets;
/// while a text field has the keyboard the keys type instead.
#[test]
fn keyboard_shortcuts_step_change_the_rate_pause_and_start_a_landscape() {
    let mut h = harness(app());
    h.run_steps(1);
    for _ in 0..3 {
        h.key_press(egui::Key::S);
        h.run_steps(1);
    }
    assert_eq!(h.state().lab.runs[0].completed(), 3, "S steps the selected run");
    let lr = h.state().lab.state.runs[0].optimizer.lr;
    h.key_press(egui::Key::CloseBracket);
    h.run_steps(1);
    h.key_press(egui::Key::CloseBracket);
    h.run_steps(1);
    h.key_press(egui::Key::OpenBracket);
    h.run_steps(1);
    let lab = &h.state().lab;
    assert_eq!(lab.state.runs[0].optimizer.lr, 2.0 * lr);
    let changes = &lab.runs[0].run.as_ref().unwrap().history.changes;
    // Changes before the same step are one record: the net change.
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!((changes[0].step, changes[0].field.as_str(), changes[0].new.clone()), (3, "optimizer.lr", (2.0 * lr).to_string()));
    assert_eq!(lab.runs[0].completed(), 3, "a live change does not restart the run");
    let playing = h.state().lab.runs.iter().any(|r| r.playing);
    h.key_press(egui::Key::Space);
    h.run_steps(1);
    assert_eq!(h.state().lab.runs.iter().any(|r| r.playing), !playing, "Space toggles every run");
    h.key_press(egui::Key::L);
    h.run_steps(1);
    assert!(h.state().lab.landscape.is_some(), "L starts a landscape");
    h.key_press(egui::Key::R);
    h.run_steps(1);
    assert_eq!(h.state().lab.runs[0].completed(), 0, "R resets every run");
    assert_eq!(h.state().lab.state.runs[0].optimizer.lr, lr, "reset returns to the settings of the start");
}
