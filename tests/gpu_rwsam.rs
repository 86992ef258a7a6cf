//! RW-SAM's Gibbs weights on both engines where rounding decides: λ = 0 (the SAM identity, which
//! must measure the algorithm, not the GPU's division), λ = 1e4 on nearly tied scores, and the
//! degenerate cases of the target-ESS solve, which both engines resolve the same way:
//! all scores equal (B = 1 included) or a target ≥ B give λ = 0 and the uniform weights; an
//! unreachable target (tied maxima above it, r·B < 1) gives λ = optim::LAMBDA_CAP.
//!
//! Tolerances: the Gibbs weights of the GPU against f64 `optim::gibbs_weights` of the GPU's own
//! f32 scores (the scores themselves are checked in gpu_vs_cpu.rs): with s − s_ref exact and one
//! rounding in λ·(s − s_ref), an exponent x carries ~|x|·6e-8 and exp a few ULP, so p agrees to
//! rtol 1e-5 while λ·(max − min) spans ~10. Without an adapter the GPU half prints why and passes,
//! unless SAMLAB_REQUIRE_GPU=1.

mod common;

use common::{assert_close, dataset_of};
use samlab::config::{NormEstimator, OptimizerConfig, OptimizerKind, RunConfig};
use samlab::data::Dataset;
use samlab::engine::cpu::CpuEngine;
use samlab::engine::gpu::{GpuContext, GpuEngine};
use samlab::engine::{Engine, Request, Response, RwReport, StepPlan};
use samlab::optim::{self, LAMBDA_CAP};
use samlab::rng::Rng;
use std::sync::Arc;

/// The shared GPU device of these tests (see `GpuContext::for_tests`).
fn context() -> Option<GpuContext> {
    GpuContext::for_tests("gpu_rwsam")
}

const IN: usize = 5;
const CLASSES: usize = 4;

/// A training set of the given rows (5 features, 4 classes) and a small test set.
fn dataset(x: Vec<f32>, y: Vec<u32>) -> Arc<Dataset> {
    dataset_of(IN, CLASSES, (x.clone(), y.clone()), (x, y))
}

fn random_rows(n: usize, scale: f64, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let x = (0..n * IN).map(|_| (scale * rng.normal()) as f32).collect();
    let y = (0..n).map(|_| rng.below(CLASSES) as u32).collect();
    (x, y)
}

fn config(batch: usize, rw: impl FnOnce(&mut OptimizerConfig)) -> RunConfig {
    let mut o = OptimizerConfig { kind: OptimizerKind::Rwsam, lr: 0.1, momentum: 0.9, weight_decay: 5e-4, rho: 0.2, ..Default::default() };
    o.rwsam.estimator = NormEstimator::Exact;
    rw(&mut o);
    let mut cfg = RunConfig { batch, optimizer: o, ..RunConfig::default() };
    cfg.model.hidden = vec![7, 6];
    cfg.model.activation = samlab::model::Activation::Tanh;
    cfg
}

fn init(cfg: &RunConfig, data: &Dataset) -> Vec<f32> {
    samlab::setup::spec_for(cfg, data).init(cfg.seed)
}

/// RW-SAM's report of one step on the first `batch` training rows, per engine.
fn step(engine: &mut dyn Engine, batch: usize) -> RwReport {
    let plan = StepPlan { step: 0, indices: (0..batch as u32).collect(), lr: 0.1 };
    engine.submit(Request::Steps(vec![plan])).unwrap();
    match engine.finish().unwrap().pop() {
        Some(Response::Step { report, .. }) => report.rwsam.expect("an RW-SAM report"),
        other => panic!("{other:?}"),
    }
}

/// The RW-SAM reports of the CPU engine in f64 and f32 and, with an adapter, of the GPU engine.
fn reports(cfg: &RunConfig, data: &Arc<Dataset>) -> Vec<(&'static str, RwReport)> {
    let w0 = init(cfg, data);
    let mut out = vec![
        ("CPU f64", step(&mut CpuEngine::<f64>::new(cfg, data.clone(), &w0).unwrap(), cfg.batch)),
        ("CPU f32", step(&mut CpuEngine::<f32>::new(cfg, data.clone(), &w0).unwrap(), cfg.batch)),
    ];
    if let Some(ctx) = context() {
        out.push(("GPU", step(&mut GpuEngine::new(ctx, cfg, data.clone(), &w0).unwrap(), cfg.batch)));
    }
    out
}

fn params_after(ctx: &GpuContext, cfg: &RunConfig, data: &Arc<Dataset>, uniform_weight: Option<f32>) -> Vec<f32> {
    let mut gpu = GpuEngine::new(ctx.clone(), cfg, data.clone(), &init(cfg, data)).unwrap();
    if let Some(w) = uniform_weight {
        gpu.debug_set_uniform_weight(w);
    }
    let n = data.n_train() as u32;
    let plans: Vec<StepPlan> =
        (0..5u64).map(|t| StepPlan { step: t, indices: (0..cfg.batch as u32).map(|i| (i * 7 + t as u32 * 5) % n).collect(), lr: 0.05 }).collect();
    gpu.submit(Request::Steps(plans)).unwrap();
    gpu.finish().unwrap();
    gpu.submit(Request::ReadParams { tag: samlab::engine::ParamsTag::Blocking }).unwrap();
    match gpu.finish().unwrap().pop() {
        Some(Response::Params { params, .. }) => params,
        other => panic!("{other:?}"),
    }
}

#[test]
fn rwsam_at_lambda_zero_is_sam_bit_for_bit_even_with_the_hosts_one_over_b_nudged() {
    let Some(ctx) = context() else { return };
    let (x, y) = random_rows(37, 1.0, 3);
    let data = dataset(x, y);
    let sam = config(12, |o| o.kind = OptimizerKind::Sam);
    let rw0 = config(12, |o| o.rwsam.lambda = 0.0);
    let exact = 1.0f32 / 12.0;
    // One ULP above 1/B: a GPU whose '/' rounds 1/B differently would give RW-SAM this weight
    // while SAM kept the host's; both now read the host's value, whatever it is.
    let nudged = f32::from_bits(exact.to_bits() + 1);
    let sam_exact = params_after(&ctx, &sam, &data, None);
    let sam_nudged = params_after(&ctx, &sam, &data, Some(nudged));
    assert!(sam_exact != sam_nudged, "the nudge does not reach SAM's weights: the test would measure nothing");
    assert!(sam_exact == params_after(&ctx, &rw0, &data, None), "RW-SAM with λ = 0 differs from SAM");
    assert!(sam_nudged == params_after(&ctx, &rw0, &data, Some(nudged)), "RW-SAM with λ = 0 differs from SAM when 1/B is nudged by one ULP");
    // All scores equal at a λ ≠ 0: the weights are the uniform ones too.
    let same = dataset([0.3f32, -1.0, 0.5, 2.0, 0.1].repeat(12), vec![2; 12]);
    let rw2 = config(12, |o| o.rwsam.lambda = 3.0);
    let report = step(&mut GpuEngine::new(ctx.clone(), &rw2, same.clone(), &init(&rw2, &same)).unwrap(), 12);
    assert!(report.weights.iter().all(|&p| p == exact as f64), "{:?}", report.weights);
}

/// Nearly tied training rows: one base row plus 1e-3 noise, one label.
fn nearly_tied(n: usize) -> Arc<Dataset> {
    let mut rng = Rng::new(11);
    let base: Vec<f64> = (0..IN).map(|_| rng.normal()).collect();
    let x = (0..n).flat_map(|_| base.iter().map(|b| (b + 1e-3 * rng.normal()) as f32).collect::<Vec<_>>()).collect();
    dataset(x, vec![1; n])
}

#[test]
fn gibbs_weights_at_lambda_1e4_on_nearly_tied_scores_match_the_f64_reference() {
    let data = nearly_tied(48);
    let cfg = config(48, |o| o.rwsam.lambda = 1e4);
    for (engine, r) in reports(&cfg, &data) {
        let (hi, lo) = r.scores.iter().fold((f64::MIN, f64::MAX), |(h, l), &s| (h.max(s), l.min(s)));
        let span = 1e4 * (hi - lo);
        assert!(span > 3.0 && span < 100.0, "{engine}: λ·(max − min) = {span}: not a test of large λ on near ties");
        let want = optim::gibbs_weights(&r.scores, 1e4);
        let err = r.weights.iter().zip(&want).map(|(a, b)| (a - b).abs() / (1e-7 + b.abs())).fold(0.0, f64::max);
        eprintln!("{engine}: λ·(max − min) = {span:.2}, ESS {:.3}, max |Δp|/(1e-7 + p) = {err:.2e}", r.ess);
        assert_close(&format!("{engine}: p at λ = 1e4"), &r.weights, &want, 1e-7, 1e-5);
        assert!((r.ess - optim::ess(&want)).abs() <= 1e-5 * r.ess, "{engine}: ESS {} vs {}", r.ess, optim::ess(&want));
        assert!(r.weights.iter().all(|p| p.is_finite()));
    }
}

#[test]
fn target_ess_on_nearly_tied_scores_matches_the_f64_solve() {
    let data = nearly_tied(48);
    for ratio in [0.5, 0.1] {
        let cfg = config(48, |o| o.rwsam.target_ess = Some(ratio));
        for (engine, r) in reports(&cfg, &data) {
            let target = ratio * 48.0;
            let want_lambda = optim::lambda_for_ess(&r.scores, target);
            let want_p = optim::gibbs_weights(&r.scores, r.lambda);
            eprintln!(
                "{engine} r = {ratio}: λ {} vs f64 {want_lambda} (rel {:.1e}), ESS {} for {target}",
                r.lambda,
                (r.lambda - want_lambda).abs() / want_lambda,
                r.ess
            );
            assert!(want_lambda > 1e2, "{engine}: λ = {want_lambda}: the scores are not nearly tied");
            assert!((r.lambda - want_lambda).abs() <= 1e-5 * want_lambda, "{engine}: λ {} vs {want_lambda}", r.lambda);
            assert!((r.ess - target).abs() <= 1e-5 * target, "{engine}: ESS {} vs {target}", r.ess);
            assert_close(&format!("{engine}: p at the solved λ"), &r.weights, &want_p, 1e-7, 1e-5);
        }
    }
}

/// Runs one step on every engine and checks the solved λ, the ESS and the weights.
#[track_caller]
fn degenerate(what: &str, data: &Arc<Dataset>, batch: usize, ratio: f64, want_lambda: f64, want_ess: f64) {
    let cfg = config(batch, |o| o.rwsam.target_ess = Some(ratio));
    let all = reports(&cfg, data);
    for (engine, r) in &all {
        eprintln!("{what}, {engine}: λ = {}, ESS = {}", r.lambda, r.ess);
        assert_eq!(r.lambda, want_lambda, "{what}: {engine} λ");
        assert!((r.ess - want_ess).abs() <= 1e-4 * want_ess, "{what}: {engine} ESS {} vs {want_ess}", r.ess);
        assert_close(&format!("{what}: {engine} p vs CPU f64"), &r.weights, &all[0].1.weights, 1e-7, 1e-5);
    }
}

#[test]
fn degenerate_target_ess_cases_give_the_same_lambda_on_both_engines() {
    // All scores equal: every λ gives ESS = B, so λ = 0 and the weights are uniform.
    let same = dataset([0.3f32, -1.0, 0.5, 2.0, 0.1].repeat(12), vec![2; 12]);
    degenerate("all scores equal", &same, 12, 0.5, 0.0, 12.0);
    // B = 1: one score, equal to itself.
    degenerate("B = 1", &same, 1, 0.5, 0.0, 1.0);
    // Eight tied maxima (eight copies of a large row) and a target ESS of 3: ESS(λ) → 8 as λ → ∞,
    // so the target is out of reach and λ stops at the cap with the weight on the eight.
    let (small, small_y) = random_rows(4, 0.3, 5);
    let big: Vec<f32> = [2.5f32, -3.0, 2.0, 3.5, -2.0].repeat(8);
    let tied = dataset([big, small].concat(), [vec![0; 8], small_y].concat());
    let cfg = config(12, |o| o.rwsam.target_ess = Some(0.25));
    let scores = &reports(&cfg, &tied)[0].1.scores;
    assert!(scores[..8].iter().all(|&s| s == scores[0]) && scores[8..].iter().all(|&s| s < scores[0]), "the eight copies are not the tied maxima: {scores:?}");
    degenerate("tied maxima above the target", &tied, 12, 0.25, LAMBDA_CAP, 8.0);
    // r·B < 1: no weighting has ESS below 1.
    let (x, y) = random_rows(12, 1.0, 9);
    degenerate("r·B < 1", &dataset(x, y), 12, 0.05, LAMBDA_CAP, 1.0);
}
