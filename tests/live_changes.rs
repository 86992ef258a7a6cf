//! Hyperparameters changed while a run trains, on both engines: a change of η at step k gives
//! the weights of steps taken with the new η from step k on (bit for bit, against the engine
//! stepped by hand), a change of μ, weight decay, ρ and RW-SAM's λ / target ESS gives the
//! reference step with the new settings from step k on, the GPU agrees with the CPU after live
//! changes within the tolerance of tests/gpu_vs_cpu.rs, structural changes are refused by name,
//! and reset restores the initial settings and weights bit for bit.
//!
//! The GPU tests run on lavapipe in CI; without an adapter they print why and pass, unless
//! SAMLAB_REQUIRE_GPU=1.

mod common;

use common::assert_close;
use samlab::config::{DatasetName, OptimizerConfig, OptimizerKind, RunConfig, Schedule};
use samlab::data::{BatchOrder, Dataset};
use samlab::engine::cpu::CpuEngine;
use samlab::engine::gpu::{GpuContext, GpuEngine};
use samlab::engine::step::{StepInput, Workspace, sam_family_step};
use samlab::engine::{Engine, Request, StepPlan};
use samlab::model::Mlp;
use samlab::run::Run;
use samlab::setup::{prepare, spec_for};
use std::sync::Arc;

const STEPS: u64 = 30;
const CHANGE_AT: u64 = 11;

fn config(kind: OptimizerKind) -> RunConfig {
    let mut cfg = RunConfig { batch: 16, steps: Some(STEPS), eval_every: 10, ..RunConfig::default() };
    cfg.dataset.name = DatasetName::Moons;
    cfg.dataset.samples = 200;
    cfg.model.hidden = vec![8, 8];
    cfg.optimizer = OptimizerConfig { kind, lr: 0.1, momentum: 0.9, weight_decay: 5e-4, rho: 0.1, ..OptimizerConfig::default() };
    cfg
}

enum Backend<'a> {
    Cpu,
    Cpu64,
    Gpu(&'a GpuContext),
}

fn engine(b: &Backend, cfg: &RunConfig, data: &Arc<Dataset>, init: &[f32]) -> Box<dyn Engine> {
    match b {
        Backend::Cpu => Box::new(CpuEngine::<f32>::new(cfg, data.clone(), init).unwrap()),
        Backend::Cpu64 => Box::new(CpuEngine::<f64>::new(cfg, data.clone(), init).unwrap()),
        Backend::Gpu(ctx) => Box::new(GpuEngine::new((*ctx).clone(), cfg, data.clone(), init).unwrap()),
    }
}

fn run(b: &Backend, cfg: &RunConfig) -> Run {
    let (data, init) = prepare(cfg).unwrap();
    let e = engine(b, cfg, &data, &init);
    Run::new(cfg.clone(), data, init, e).unwrap()
}

/// A run trained to CHANGE_AT, changed to `new` there, trained to the end: its weights.
fn changed_live(b: &Backend, cfg: &RunConfig, new: &OptimizerConfig) -> (Run, Vec<f32>) {
    let mut r = run(b, cfg);
    r.run_until(CHANGE_AT, 4).unwrap();
    assert_eq!(r.completed_steps(), CHANGE_AT);
    assert!(r.set_hyperparameters(new).unwrap() > 0);
    r.run_to_end(7, |_| {}).unwrap();
    let w = r.params_blocking().unwrap();
    (r, w)
}

/// The same engine stepped by hand, one request per step, with η_t = `lr(t)`.
fn stepped_by_hand(b: &Backend, cfg: &RunConfig, lr: impl Fn(u64) -> f64) -> Vec<f32> {
    let (data, init) = prepare(cfg).unwrap();
    let mut e = engine(b, cfg, &data, &init);
    let mut order = BatchOrder::new(data.n_train(), cfg.batch, cfg.seed);
    for t in 0..STEPS {
        e.submit(Request::Steps(vec![StepPlan { step: t, indices: order.indices(t), lr: lr(t) }])).unwrap();
        e.finish().unwrap();
    }
    e.submit(Request::ReadParams { tag: samlab::engine::ParamsTag::Blocking }).unwrap();
    match e.finish().unwrap().pop() {
        Some(samlab::engine::Response::Params { params, .. }) => params,
        other => panic!("{other:?}"),
    }
}

/// The reference step of engine/step.rs called directly: `old` before CHANGE_AT, `new` after.
fn reference(cfg: &RunConfig, new: &OptimizerConfig) -> Vec<f32> {
    let (data, init) = prepare(cfg).unwrap();
    let mut mlp = Mlp::<f32>::new(spec_for(cfg, &data));
    let (mut w, mut v) = ((*init).clone(), vec![0.0f32; init.len()]);
    let mut ws = Workspace::default();
    let mut order = BatchOrder::new(data.n_train(), cfg.batch, cfg.seed);
    let nf = data.n_features;
    for t in 0..STEPS {
        let o = if t < CHANGE_AT { &cfg.optimizer } else { new };
        let idx = order.indices(t);
        let x: Vec<f32> = idx.iter().flat_map(|&i| data.train_x[i as usize * nf..(i as usize + 1) * nf].iter().copied()).collect();
        let y: Vec<u32> = idx.iter().map(|&i| data.train_y[i as usize]).collect();
        let input = StepInput { x: &x, y: &y, probe: None, full: None };
        sam_family_step(&mut mlp, &mut w, &mut v, input, o, o.schedule.lr(o.lr, t, STEPS), &mut ws);
    }
    w
}

fn lr_changed(cfg: &RunConfig) -> OptimizerConfig {
    OptimizerConfig { lr: 0.03, ..cfg.optimizer.clone() }
}

/// μ, weight decay, ρ, λ and the target ESS changed together (RW-SAM uses them all).
fn many_changed(cfg: &RunConfig) -> OptimizerConfig {
    let mut o = cfg.optimizer.clone();
    o.lr = 0.04;
    o.momentum = 0.5;
    o.weight_decay = 1e-2;
    o.rho = 0.3;
    o.rwsam.lambda = -2.0;
    o.rwsam.target_ess = Some(0.5);
    o
}

fn lr_change_equals_the_engine_stepped_with_that_lr(b: &Backend) {
    let cfg = config(OptimizerKind::Sam);
    let (r, live) = changed_live(b, &cfg, &lr_changed(&cfg));
    let by_hand = stepped_by_hand(b, &cfg, |t| if t < CHANGE_AT { 0.1 } else { 0.03 });
    assert!(live == by_hand, "a live change of η at step {CHANGE_AT} differs from η = 0.03 from that step");
    // Not a test that cannot fail: without the change the weights differ.
    assert!(stepped_by_hand(b, &cfg, |_| 0.1) != live);
    // The history says what changed when, and each step's η.
    let c = &r.history.changes;
    assert_eq!((c.len(), c[0].step, c[0].field.as_str(), c[0].old.as_str(), c[0].new.as_str()), (1, CHANGE_AT, "optimizer.lr", "0.1", "0.03"));
    let lrs: Vec<f64> = r.history.steps.iter().map(|s| s.lr).collect();
    assert!(lrs[..CHANGE_AT as usize].iter().all(|&l| l == 0.1) && lrs[CHANGE_AT as usize..].iter().all(|&l| l == 0.03), "{lrs:?}");
}

#[test]
fn cpu_lr_change_equals_the_engine_stepped_with_that_lr() {
    lr_change_equals_the_engine_stepped_with_that_lr(&Backend::Cpu);
}

#[test]
fn cpu_schedule_change_takes_the_new_schedule_from_that_step() {
    let cfg = config(OptimizerKind::Sgd);
    let cosine = OptimizerConfig { schedule: Schedule::Cosine, ..cfg.optimizer.clone() };
    let (_, live) = changed_live(&Backend::Cpu, &cfg, &cosine);
    let by_hand = stepped_by_hand(&Backend::Cpu, &cfg, |t| if t < CHANGE_AT { 0.1 } else { Schedule::Cosine.lr(0.1, t, STEPS) });
    assert!(live == by_hand);
}

#[test]
fn cpu_changes_of_every_live_setting_equal_the_reference_step_with_them() {
    for kind in [OptimizerKind::Sam, OptimizerKind::Rwsam, OptimizerKind::Asam] {
        let cfg = config(kind);
        let new = many_changed(&cfg);
        let (r, live) = changed_live(&Backend::Cpu, &cfg, &new);
        assert!(live == reference(&cfg, &new), "{kind:?}: the live change differs from the reference with the new settings");
        assert!(live != reference(&cfg, &cfg.optimizer), "{kind:?}: the change had no effect");
        assert!(r.history.changes.iter().all(|c| c.step == CHANGE_AT));
    }
}

/// Steps queued behind an evaluation in progress keep the settings they were submitted with.
#[test]
fn cpu_steps_queued_before_a_change_keep_their_settings() {
    let cfg = config(OptimizerKind::Sam);
    let new = many_changed(&cfg);
    let (data, init) = prepare(&cfg).unwrap();
    let mut order = BatchOrder::new(data.n_train(), cfg.batch, cfg.seed);
    let plans = |range: std::ops::Range<u64>, order: &mut BatchOrder| -> Vec<StepPlan> {
        range.map(|t| StepPlan { step: t, indices: order.indices(t), lr: 0.1 }).collect()
    };
    let (first, rest) = (plans(0..CHANGE_AT, &mut order), plans(CHANGE_AT..STEPS, &mut order));
    let read = |e: &mut CpuEngine<f32>| e.params().to_vec();
    let mut queued = CpuEngine::<f32>::new(&cfg, data.clone(), &init).unwrap();
    queued.submit(Request::Evaluate { step: 0 }).unwrap();
    queued.submit(Request::Steps(first.clone())).unwrap();
    queued.set_hyperparameters(&new).unwrap();
    queued.submit(Request::Steps(rest.clone())).unwrap();
    assert!(queued.in_flight() > 2, "the steps wait behind the evaluation");
    queued.finish().unwrap();
    let mut direct = CpuEngine::<f32>::new(&cfg, data.clone(), &init).unwrap();
    direct.submit(Request::Steps(first)).unwrap();
    direct.set_hyperparameters(&new).unwrap();
    direct.submit(Request::Steps(rest)).unwrap();
    assert!(read(&mut queued) == read(&mut direct));
}

fn structural_changes_are_refused(b: &Backend) {
    let cfg = config(OptimizerKind::Msam);
    let mut r = run(b, &cfg);
    r.run_until(3, 3).unwrap();
    let before = r.config.clone();
    for (field, change) in [
        ("optimizer.kind", (|o: &mut OptimizerConfig| o.kind = OptimizerKind::Sam) as fn(&mut OptimizerConfig)),
        ("optimizer.m", |o| o.m = 4),
        ("optimizer.rwsam.estimator", |o| o.rwsam.estimator = samlab::config::NormEstimator::FiniteDifference),
        ("optimizer.lr", |o| o.lr = -1.0),
        ("optimizer.momentum", |o| o.momentum = 1.5),
    ] {
        let mut o = cfg.optimizer.clone();
        change(&mut o);
        let e = r.set_hyperparameters(&o).unwrap_err().to_string();
        assert!(e.starts_with(&format!("invalid {field} = ")) && !e.contains('\n'), "{e}");
        assert_eq!(r.config, before, "a refused change changes nothing");
    }
    assert!(r.history.changes.is_empty());
    // The engines refuse on their own too.
    let (data, init) = prepare(&cfg).unwrap();
    let mut e = engine(b, &cfg, &data, &init);
    let e = e.set_hyperparameters(&OptimizerConfig { m: 2, ..cfg.optimizer.clone() }).unwrap_err().to_string();
    assert!(e.contains("optimizer.m") && e.contains("restarts the run"), "{e}");
}

#[test]
fn cpu_structural_changes_are_refused_by_name() {
    structural_changes_are_refused(&Backend::Cpu);
}

fn reset_restores_the_initial_settings_and_weights(b: &Backend) {
    let cfg = config(OptimizerKind::Rwsam);
    let (mut r, _) = changed_live(b, &cfg, &many_changed(&cfg));
    assert_ne!(r.config, cfg);
    r.reset().unwrap();
    assert_eq!(r.config, cfg);
    assert_eq!(r.initial_config(), &cfg);
    assert!(r.params_blocking().unwrap() == *r.init, "reset restores the initial weights");
    assert!(r.history.changes.is_empty());
    r.run_to_end(5, |_| {}).unwrap();
    let mut fresh = run(b, &cfg);
    fresh.run_to_end(5, |_| {}).unwrap();
    assert!(r.params_blocking().unwrap() == fresh.params_blocking().unwrap(), "after reset the run is the unchanged run again");
    assert_eq!(r.history, fresh.history);
}

#[test]
fn cpu_reset_restores_the_initial_settings_and_weights_bit_for_bit() {
    reset_restores_the_initial_settings_and_weights(&Backend::Cpu);
}

fn context() -> Option<GpuContext> {
    GpuContext::for_tests("live_changes")
}

#[test]
fn gpu_lr_change_equals_the_engine_stepped_with_that_lr() {
    let Some(ctx) = context() else { return };
    lr_change_equals_the_engine_stepped_with_that_lr(&Backend::Gpu(&ctx));
}

#[test]
fn gpu_structural_changes_are_refused_by_name() {
    let Some(ctx) = context() else { return };
    structural_changes_are_refused(&Backend::Gpu(&ctx));
}

#[test]
fn gpu_reset_restores_the_initial_settings_and_weights_bit_for_bit() {
    let Some(ctx) = context() else { return };
    reset_restores_the_initial_settings_and_weights(&Backend::Gpu(&ctx));
}

/// After live changes of every live setting the GPU run matches the f64 CPU run: step losses
/// within rtol 1e-4 and the weights within tests/gpu_vs_cpu.rs's buffer tolerance (atol 1e-5 of
/// the largest weight, rtol 1e-4).
#[test]
fn gpu_matches_cpu_after_live_changes() {
    let Some(ctx) = context() else { return };
    for kind in [OptimizerKind::Sam, OptimizerKind::Rwsam] {
        let cfg = config(kind);
        let new = many_changed(&cfg);
        let (g, gw) = changed_live(&Backend::Gpu(&ctx), &cfg, &new);
        let (c, cw) = changed_live(&Backend::Cpu64, &cfg, &new);
        for (x, y) in g.history.steps.iter().zip(&c.history.steps) {
            assert!((x.loss - y.loss).abs() <= 1e-4 * y.loss.abs(), "{kind:?}: step {} loss {} vs {}", x.step, x.loss, y.loss);
        }
        let (gw, cw): (Vec<f64>, Vec<f64>) = (gw.iter().map(|&v| v as f64).collect(), cw.iter().map(|&v| v as f64).collect());
        let scale = cw.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert_close(&format!("{kind:?}: weights after live changes"), &gw, &cw, 1e-5 * scale, 1e-4);
        assert_eq!(g.history.changes, c.history.changes);
    }
}
