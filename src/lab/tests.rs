//! The lab's own tests: pacing within the frame budget, runs added and removed within limits
//! and the memory budget, divergence, GPU runs advancing without waiting.

use super::*;
use crate::config::Backend;

#[test]
fn reset_returns_to_the_same_weights_and_history() {
    let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
    lab.set_all_playing(false);
    for _ in 0..30 {
        lab.step_once(1);
    }
    let first = lab.runs[1].run.as_ref().unwrap().history.clone();
    assert_eq!(lab.runs[1].completed(), 30);
    assert_eq!(lab.runs[0].completed(), 0, "a paused run does not move");
    lab.reset(1);
    assert_eq!(lab.runs[1].completed(), 0);
    for _ in 0..30 {
        lab.step_once(1);
    }
    assert_eq!(lab.runs[1].run.as_ref().unwrap().history, first);
}

#[test]
fn tick_respects_the_budget_and_advances_every_playing_run() {
    let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
    lab.budget = Duration::from_millis(4);
    for _ in 0..20 {
        let start = Instant::now();
        lab.tick();
        // The tick says where its time went: training here (nothing measures, no landscape).
        let t = lab.last_tick;
        assert!(t.train > Duration::ZERO && t.total() <= start.elapsed(), "{t:?}");
        assert_eq!((t.landscape, t.views), (Duration::ZERO, Duration::ZERO));
    }
    assert!(lab.runs.iter().all(|r| r.completed() > 0));
    lab.set_playing(0, false);
    let paused = lab.runs[0].completed();
    lab.tick();
    assert_eq!(lab.runs[0].completed(), paused);
}

#[test]
fn runs_can_be_added_duplicated_and_removed_within_limits() {
    let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
    assert_eq!(lab.add_run(OptimizerKind::Msam), Ok(2));
    assert_eq!(lab.duplicate(0), Ok(3));
    assert_eq!(lab.state.runs[3].optimizer.kind, OptimizerKind::Sgd);
    let colors: std::collections::HashSet<usize> = lab.state.runs.iter().map(|r| r.color).collect();
    assert_eq!(colors.len(), 4);
    lab.add_run(OptimizerKind::Sgd).unwrap();
    lab.add_run(OptimizerKind::Sgd).unwrap();
    assert_eq!(lab.add_run(OptimizerKind::Sgd), Err(format!("at most {MAX_RUNS} runs")));
    for _ in 0..10 {
        lab.remove(0);
    }
    assert_eq!(lab.runs.len(), 1);
    // m always divides the batch, whatever the batch becomes.
    let mut spec = lab.state.runs[0].clone();
    spec.optimizer.kind = OptimizerKind::Msam;
    spec.optimizer.m = 32;
    spec.batch = 24;
    lab.set_spec(0, spec).unwrap();
    assert_eq!(lab.state.runs[0].optimizer.m, 24);
    assert!(lab.runs[0].run.is_some(), "{:?}", lab.runs[0].error);
}

/// Changes made in the app (wider layers, another run, a run's settings) are checked against the
/// memory budget like a link: refused with the reason, and nothing changed.
#[test]
fn changes_beyond_the_memory_budget_are_refused_and_change_nothing() {
    let mut state = Preset::MoonsSgdVsSam.state();
    state.shared.dataset.name = crate::config::DatasetName::Digits;
    // m-SAM with m = 1 on a GPU keeps one weight copy per sample of the batch: with four layers
    // of 512 on digits, about 0.88 GB a run, so four runs fit the 4 GiB and a fifth does not.
    state.shared.backend = Backend::Gpu;
    for r in &mut state.runs {
        r.optimizer.kind = OptimizerKind::Msam;
        r.optimizer.m = 1;
        r.batch = 256;
    }
    let mut lab = Lab::new(state, EngineChoice::cpu("budget test"));
    let mut wide = lab.state.shared.clone();
    wide.model.hidden = vec![512; 4];
    lab.set_shared(wide).unwrap();
    let refusal = loop {
        if let Err(e) = lab.duplicate(0) {
            break e;
        }
    };
    assert_eq!(lab.runs.len(), 4, "{refusal}");
    assert!(refusal.contains("[512, 512, 512, 512]") && refusal.contains("left") && refusal.contains("4.0 GiB"), "{refusal}");
    let before = lab.state.clone();
    // The same widths on MNIST (784 inputs) do not fit four runs.
    let mut mnist = lab.state.shared.clone();
    mnist.dataset.name = crate::config::DatasetName::Mnist5k;
    let e = lab.set_shared(mnist).unwrap_err();
    assert!(e.contains("left"), "{e}");
    assert_eq!(lab.state, before, "a refused change must leave the lab as it was");
    let mut spec = lab.state.runs[0].clone();
    spec.batch = 1024;
    let e = lab.set_spec(0, spec).unwrap_err();
    assert!(e.contains("left"), "{e}");
    assert_eq!(lab.state, before);
    assert_eq!(lab.runs.len(), 4);
}

#[test]
fn a_diverged_run_stops_and_the_others_go_on() {
    let mut state = Preset::MoonsSgdVsSam.state();
    state.runs[0].optimizer.lr = 10.0;
    state.runs[0].optimizer.momentum = 0.99;
    // The other run is long enough that it cannot finish first, whatever the machine's speed.
    state.runs[1].steps = Some(1_000_000);
    let mut lab = Lab::new(state, EngineChoice::default());
    for _ in 0..100_000 {
        lab.tick();
        if matches!(lab.runs[0].status(), Some(RunStatus::Diverged(_) | RunStatus::Finished)) {
            break;
        }
    }
    assert!(matches!(lab.runs[0].status(), Some(RunStatus::Diverged(_))), "{:?}", lab.runs[0].status());
    let stopped = lab.runs[0].completed();
    let other = lab.runs[1].completed();
    lab.tick();
    assert_eq!(lab.runs[0].completed(), stopped);
    assert!(lab.runs[1].completed() > other);
}

/// The GPU engine on lavapipe (or a real GPU): runs advance through asynchronous readbacks
/// while `tick` never waits. Skips without an adapter unless SAMLAB_REQUIRE_GPU=1.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn gpu_runs_advance_without_waiting_on_the_device() {
    let Some(ctx) = crate::engine::gpu::GpuContext::for_tests("lab::gpu_runs_advance_without_waiting_on_the_device") else { return };
    let mut state = Preset::MoonsSgdVsSam.state();
    state.shared.backend = Backend::Gpu;
    let mut lab = Lab::new(state, EngineChoice::with_gpu(ctx));
    assert!(lab.runs.iter().all(|r| r.asynchronous && r.run.is_some()), "{:?}", lab.runs.iter().map(|r| &r.error).collect::<Vec<_>>());
    assert!(lab.engine.describe().starts_with("GPU engine on"), "{}", lab.engine.describe());
    let start = Instant::now();
    // No timing: a tick that waited on the device would never return with work in flight.
    let mut returned_while_busy = false;
    while lab.runs.iter().any(|r| r.completed() < 60) && start.elapsed() < Duration::from_secs(120) {
        lab.tick();
        returned_while_busy |= lab.runs.iter().any(|r| r.run.as_ref().unwrap().is_busy());
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(returned_while_busy, "every tick waited for the GPU");
    assert!(lab.runs.iter().all(|r| r.completed() >= 60 && r.error.is_none()), "{:?}", lab.runs.iter().map(|r| (r.completed(), &r.error)).collect::<Vec<_>>());
    // A single step while paused arrives a few frames later.
    lab.set_all_playing(false);
    tick_until(&mut lab, 100_000, "the submissions in flight", |lab| lab.runs.iter().all(|r| !r.run.as_ref().unwrap().is_busy()));
    let before = lab.runs[0].completed();
    lab.step_once(0);
    let start = Instant::now();
    while lab.runs[0].completed() == before && start.elapsed() < Duration::from_secs(30) {
        lab.tick();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(lab.runs[0].completed(), before + 1);
}

/// Polls `done` once a frame for at most `frames` frames (1 ms apart), failing with `what`.
fn tick_until(lab: &mut Lab, frames: usize, what: &str, done: impl Fn(&Lab) -> bool) {
    for _ in 0..frames {
        if done(lab) {
            return;
        }
        lab.tick();
        std::thread::sleep(Duration::from_millis(1));
    }
    let states: Vec<String> = lab
        .runs
        .iter()
        .map(|r| {
            format!(
                "{} steps, done {:?}, measuring {:?}",
                r.completed(),
                r.run.as_ref().map(Run::is_done),
                r.measuring.as_ref().map(|m| (m.in_flight, m.asked))
            )
        })
        .collect();
    panic!("{what}: not reached after {frames} frames ({states:?})");
}

fn measured_steps(lab: &Lab, i: usize) -> Vec<u64> {
    lab.runs[i].run.as_ref().unwrap().history.measurements.iter().map(|m| m.step).collect()
}

fn measuring_idle(lab: &Lab, i: usize) -> bool {
    let m = lab.runs[i].measuring.as_ref().unwrap();
    lab.runs[i].run.as_ref().unwrap().is_done() && m.in_flight == 0 && m.asked.is_none()
}

/// The step source is the test (one step per frame while paused), so which steps are due is
/// exact whatever the machine's speed: measured at 0, 40, 80 and at the end (120).
#[test]
fn measurements_arrive_off_the_ui_thread_in_step_order() {
    let mut state = Preset::MoonsSgdVsSam.state();
    state.runs[1].measure_every = 40;
    state.runs[1].epochs = 8; // 8 × 15 = 120 steps
    let mut lab = Lab::new(state, EngineChoice::default());
    assert!(lab.runs[0].measuring.is_none() && lab.runs[1].measuring.is_some());
    lab.set_all_playing(false);
    // Asynchrony without timing: the frame that hands weights to the worker returns with the
    // measurement still in flight (its result is collected at a later frame at the earliest).
    let mut returned_while_in_flight = false;
    for _ in 0..120 {
        lab.tick();
        returned_while_in_flight |= lab.runs[1].measuring.as_ref().unwrap().in_flight > 0;
        lab.step_once(1);
    }
    assert_eq!(lab.runs[1].completed(), 120);
    // Playing again, the run only does its final evaluation.
    lab.set_playing(1, true);
    tick_until(&mut lab, 20_000, "the last measurement", |lab| measuring_idle(lab, 1));
    assert!(returned_while_in_flight, "every frame waited for its measurement");
    assert_eq!(measured_steps(&lab, 1), [0, 40, 80, 120]);
    let m = &lab.runs[1].run.as_ref().unwrap().history.measurements;
    assert!(m.iter().all(|x| x.sharpness.is_finite() && x.trace_v >= 0.0 && x.lambda_max.is_finite()));
    // A reset starts the measurements over.
    lab.reset(1);
    assert!(lab.runs[1].run.as_ref().unwrap().history.measurements.is_empty());
}

/// When training outpaces measuring (here: due every step, the run playing at full speed),
/// the lab promises measurements in step order, at most one asked per frame, and always one of
/// the final weights: the due steps in between are skipped, training never waits.
#[test]
fn training_faster_than_measuring_skips_steps_but_measures_the_end() {
    let mut state = Preset::MoonsSgdVsSam.state();
    state.runs[1].measure_every = 1;
    state.runs[1].epochs = 8;
    let mut lab = Lab::new(state, EngineChoice::default());
    lab.set_playing(0, false);
    let mut frames = 0;
    while !lab.runs[1].run.as_ref().unwrap().is_done() {
        assert!(frames < 100_000, "the run did not finish");
        lab.tick();
        frames += 1;
    }
    tick_until(&mut lab, 60_000, "the final measurement", |lab| measuring_idle(lab, 1));
    let steps = measured_steps(&lab, 1);
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(steps.first(), Some(&0));
    assert_eq!(steps.last(), Some(&120));
    assert!(steps.len() <= frames + 1, "{} measurements in {frames} frames", steps.len());
}

/// A frame's budget covers training, the browser's measurements and a landscape together: each
/// extra takes 3/8 while it has work, training keeps the rest (a quarter with both).
#[test]
fn measurements_and_landscapes_come_out_of_the_frame_budget() {
    use super::pacing::frame_shares;
    let b = Duration::from_millis(8);
    assert_eq!(frame_shares(b, false, false), (b, Duration::ZERO, Duration::ZERO));
    assert_eq!(frame_shares(b, true, false), (Duration::from_millis(5), Duration::from_millis(3), Duration::ZERO));
    assert_eq!(frame_shares(b, false, true), (Duration::from_millis(5), Duration::ZERO, Duration::from_millis(3)));
    let (t, m, l) = frame_shares(b, true, true);
    assert_eq!((t, m, l), (Duration::from_millis(2), Duration::from_millis(3), Duration::from_millis(3)));
    assert_eq!(t + m + l, b);
}
