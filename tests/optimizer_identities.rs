//! The optimizers of docs/ALGORITHMS.md on the CPU engine: its identities bit for bit (in f64 and f32),
//! and every optimizer against a literal transcription of its formula built only from plain
//! mini-batch gradients and explicit per-sample gradients.

mod common;

use common::*;
use samlab::config::{NormEstimator, OptimizerConfig, OptimizerKind, RwDescent};
use samlab::engine::step::{StepInput, StepReport, Workspace, asam_scale, perturb_point, sam_family_step};
use samlab::model::{Activation, Mlp, Real, Tape};
use samlab::optim;
use samlab::rng;

const BATCH: usize = 12;

fn opt(kind: OptimizerKind) -> OptimizerConfig {
    OptimizerConfig { kind, lr: 0.1, momentum: 0.9, weight_decay: 5e-4, rho: 0.2, m: 3, ..Default::default() }
}

/// Runs `steps` steps of `o` from the problem's weights and returns the final params and reports.
fn run_steps<T: Real>(p: &Problem, o: &OptimizerConfig, steps: usize) -> (Vec<f64>, Vec<StepReport>) {
    let mut mlp = Mlp::<T>::new(p.spec.clone());
    let mut params: Vec<T> = p.params.iter().map(|&v| T::of(v)).collect();
    let mut velocity = vec![T::zero(); params.len()];
    let x: Vec<T> = p.x.iter().map(|&v| T::of(v)).collect();
    let mut ws = Workspace::default();
    let mut reports = Vec::new();
    for s in 0..steps {
        let key = rng::probe_key(7, s as u64);
        let probe: Vec<T> = (0..params.len() as u32).map(|k| T::of(rng::rademacher(key, k) as f64)).collect();
        let input = StepInput { x: &x, y: &p.y, probe: Some(&probe), full: None };
        reports.push(sam_family_step(&mut mlp, &mut params, &mut velocity, input, o, 0.1, &mut ws));
    }
    (params.iter().map(|v| v.f64()).collect(), reports)
}

fn identical<T: Real>(a: &OptimizerConfig, b: &OptimizerConfig, what: &str) {
    for act in Activation::ALL {
        let p = problem(act, BATCH, 3);
        let (pa, ra) = run_steps::<T>(&p, a, 5);
        let (pb, rb) = run_steps::<T>(&p, b, 5);
        assert!(pa == pb, "{what} ({act:?}, {}): parameters differ", std::any::type_name::<T>());
        assert_eq!(ra.iter().map(|r| r.loss).collect::<Vec<_>>(), rb.iter().map(|r| r.loss).collect::<Vec<_>>());
    }
}

#[test]
fn sam_with_rho_zero_equals_sgd() {
    let sam = OptimizerConfig { rho: 0.0, ..opt(OptimizerKind::Sam) };
    identical::<f64>(&sam, &opt(OptimizerKind::Sgd), "SAM ρ=0 vs SGD");
    identical::<f32>(&sam, &opt(OptimizerKind::Sgd), "SAM ρ=0 vs SGD");
}

/// Like `identical`, within a tolerance: for two different computations of the same quantity
/// (m-SAM's rank-m perturbed passes against SAM's perturbed weights).
fn close<T: Real>(a: &OptimizerConfig, b: &OptimizerConfig, atol: f64, rtol: f64, what: &str) {
    for act in Activation::ALL {
        let p = problem(act, BATCH, 3);
        let (pa, ra) = run_steps::<T>(&p, a, 5);
        let (pb, rb) = run_steps::<T>(&p, b, 5);
        assert_close(&format!("{what} ({act:?}, {}) parameters", std::any::type_name::<T>()), &pa, &pb, atol, rtol);
        let (la, lb): (Vec<f64>, Vec<f64>) = ra.iter().zip(&rb).map(|(x, y)| (x.perturbed_loss, y.perturbed_loss)).unzip();
        assert_close(&format!("{what} ({act:?}) perturbed losses"), &la, &lb, atol, rtol);
    }
}

/// m = B goes through m-SAM's own grouped path (one micro-batch, its rank-B perturbed passes),
/// never a shortcut to SAM, so this compares two computations. Tolerance: f64 rounding of the
/// two orders of summation (1e-12 relative); f32 at 1e-5 relative, 1e-6 absolute.
#[test]
fn msam_with_m_equal_to_batch_equals_sam() {
    let msam = OptimizerConfig { m: BATCH, ..opt(OptimizerKind::Msam) };
    close::<f64>(&msam, &opt(OptimizerKind::Sam), 1e-12, 1e-10, "m-SAM m=B vs SAM");
    close::<f32>(&msam, &opt(OptimizerKind::Sam), 1e-6, 1e-5, "m-SAM m=B vs SAM");
    let musam = OptimizerConfig { m: BATCH, ..opt(OptimizerKind::Musam) };
    close::<f64>(&musam, &opt(OptimizerKind::Usam), 1e-12, 1e-10, "m-USAM m=B vs USAM");
}

#[test]
fn rwsam_with_lambda_zero_equals_sam() {
    for estimator in [NormEstimator::Exact, NormEstimator::FiniteDifference] {
        for descent in [RwDescent::Uniform, RwDescent::Weighted] {
            let mut rw = opt(OptimizerKind::Rwsam);
            rw.rwsam.lambda = 0.0;
            rw.rwsam.estimator = estimator;
            rw.rwsam.descent = descent;
            identical::<f64>(&rw, &opt(OptimizerKind::Sam), "RW-SAM λ=0 vs SAM");
            identical::<f32>(&rw, &opt(OptimizerKind::Sam), "RW-SAM λ=0 vs SAM");
        }
    }
}

#[test]
fn asam_with_unit_scale_equals_sam_perturbation() {
    let p = problem(Activation::Relu, BATCH, 4);
    let mut mlp = Mlp::<f64>::new(p.spec.clone());
    let (mut tape, mut deltas) = (Tape::default(), Vec::new());
    let (_, g) = mlp.loss_and_grad(&p.params, &p.x, &p.y, &mut tape, &mut deltas);
    let (mut sam, mut asam) = (Vec::new(), Vec::new());
    let ones = vec![1.0; g.len()];
    let n_sam = perturb_point(&p.params, &g, 0.2, true, None, &mut sam);
    let n_asam = perturb_point(&p.params, &g, 0.2, true, Some(&ones), &mut asam);
    assert!(sam == asam && n_sam == n_asam, "ASAM with T ≡ 1 differs from SAM");
    // And with the real T the perturbation has norm ρ in the T⁻¹-metric: ‖T⁻¹e‖ = ρ.
    let t = asam_scale(&p.params, 0.01);
    perturb_point(&p.params, &g, 0.2, true, Some(&t), &mut asam);
    let scaled: f64 = asam.iter().zip(&p.params).zip(&t).map(|((a, w), t)| ((a - w) / t).powi(2)).sum::<f64>().sqrt();
    assert!((scaled - 0.2).abs() < 1e-12, "{scaled}");
}

// ---- literal transcriptions of docs/ALGORITHMS.md, from plain gradients only ----

fn grad(mlp: &mut Mlp<f64>, w: &[f64], x: &[f64], y: &[u32]) -> Vec<f64> {
    let (mut tape, mut deltas) = (Tape::default(), Vec::new());
    mlp.loss_and_grad(w, x, y, &mut tape, &mut deltas).1
}

fn loss(mlp: &mut Mlp<f64>, w: &[f64], x: &[f64], y: &[u32]) -> Vec<f64> {
    let mut tape = Tape::default();
    mlp.forward(w, x, y.len(), &mut tape, None);
    samlab::model::mlp::softmax_xent(tape.logits(), y, mlp.spec.out_dim()).losses
}

fn add_scaled(w: &[f64], g: &[f64], c: f64) -> Vec<f64> {
    w.iter().zip(g).map(|(a, b)| a + c * b).collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The descent gradient g_d of one step, as docs/ALGORITHMS.md defines it.
fn spec_descent_gradient(p: &Problem, o: &OptimizerConfig, probe: &[f64]) -> Vec<f64> {
    let mut mlp = Mlp::<f64>::new(p.spec.clone());
    let (w, x, y) = (&p.params, &p.x, &p.y);
    let d = p.spec.in_dim();
    let g = grad(&mut mlp, w, x, y);
    let eps = 1e-12;
    match o.kind {
        OptimizerKind::Sgd => g,
        OptimizerKind::Usam | OptimizerKind::Nusam => grad(&mut mlp, &add_scaled(w, &g, o.rho), x, y),
        OptimizerKind::Sam | OptimizerKind::Nsam => grad(&mut mlp, &add_scaled(w, &g, o.rho / (norm(&g) + eps)), x, y),
        OptimizerKind::Asam => {
            let t: Vec<f64> = w.iter().map(|v| v.abs() + o.xi).collect();
            let tg: Vec<f64> = g.iter().zip(&t).map(|(g, t)| g * t).collect();
            let e: Vec<f64> = g.iter().zip(&t).map(|(g, t)| o.rho * t * t * g / (norm(&tg) + eps)).collect();
            grad(&mut mlp, &add_scaled(w, &e, 1.0), x, y)
        }
        OptimizerKind::Msam | OptimizerKind::Musam => {
            let m = o.m;
            let groups = y.len() / m;
            let mut g_d = vec![0.0; w.len()];
            for j in 0..groups {
                let (xj, yj) = (&x[j * m * d..(j + 1) * m * d], &y[j * m..(j + 1) * m]);
                let u = grad(&mut mlp, w, xj, yj);
                let c = if o.kind == OptimizerKind::Msam { o.rho / (norm(&u) + eps) } else { o.rho };
                let gj = grad(&mut mlp, &add_scaled(w, &u, c), xj, yj);
                for (a, b) in g_d.iter_mut().zip(gj) {
                    *a += b / groups as f64;
                }
            }
            g_d
        }
        OptimizerKind::Rwsam => {
            let per: Vec<Vec<f64>> = (0..y.len()).map(|i| grad(&mut mlp, w, &x[i * d..(i + 1) * d], &y[i..i + 1])).collect();
            let s: Vec<f64> = match o.rwsam.estimator {
                NormEstimator::Exact => per.iter().map(|g| norm(g)).collect(),
                NormEstimator::FiniteDifference => {
                    let base = loss(&mut mlp, w, x, y);
                    let shifted = loss(&mut mlp, &add_scaled(w, probe, o.rwsam.delta), x, y);
                    base.iter().zip(&shifted).map(|(a, b)| (b - a).abs() / o.rwsam.delta).collect()
                }
            };
            let e: Vec<f64> = s.iter().map(|s| (o.rwsam.lambda * s).exp()).collect();
            let z: f64 = e.iter().sum();
            let pw: Vec<f64> = e.iter().map(|v| v / z).collect();
            let mut gp = vec![0.0; w.len()];
            for (gi, pi) in per.iter().zip(&pw) {
                for (a, b) in gp.iter_mut().zip(gi) {
                    *a += pi * b;
                }
            }
            let we = add_scaled(w, &gp, o.rho / (norm(&gp) + eps));
            match o.rwsam.descent {
                RwDescent::Uniform => grad(&mut mlp, &we, x, y),
                RwDescent::Weighted => {
                    let mut gd = vec![0.0; w.len()];
                    for i in 0..y.len() {
                        let gi = grad(&mut mlp, &we, &x[i * d..(i + 1) * d], &y[i..i + 1]);
                        for (a, b) in gd.iter_mut().zip(gi) {
                            *a += pw[i] * b;
                        }
                    }
                    gd
                }
            }
        }
    }
}

#[test]
fn every_optimizer_matches_its_literal_spec_transcription() {
    let mut cases = Vec::new();
    for kind in OptimizerKind::ALL {
        cases.push(opt(kind));
    }
    for m in [1, 2, 4, 6] {
        cases.push(OptimizerConfig { m, ..opt(OptimizerKind::Msam) });
        cases.push(OptimizerConfig { m, ..opt(OptimizerKind::Musam) });
    }
    for (lambda, estimator, descent) in [
        (2.0, NormEstimator::Exact, RwDescent::Uniform),
        (-1.5, NormEstimator::Exact, RwDescent::Weighted),
        (1.0, NormEstimator::FiniteDifference, RwDescent::Uniform),
    ] {
        let mut o = opt(OptimizerKind::Rwsam);
        o.rwsam.lambda = lambda;
        o.rwsam.estimator = estimator;
        o.rwsam.descent = descent;
        cases.push(o);
    }
    for act in Activation::ALL {
        let p = problem(act, BATCH, 17);
        for o in &cases {
            let key = rng::probe_key(7, 0);
            let probe: Vec<f64> = (0..p.params.len() as u32).map(|k| rng::rademacher(key, k) as f64).collect();
            let g_d = spec_descent_gradient(&p, o, &probe);
            // One base step from zero momentum: d = g_d + wd·w, v = d, w ← w − η·v.
            let want: Vec<f64> = p.params.iter().zip(&g_d).map(|(w, g)| w - 0.1 * (g + o.weight_decay * w)).collect();
            let (got, _) = run_steps::<f64>(&p, o, 1);
            assert_close(&format!("{} ({act:?})", o.label()), &got, &want, 1e-12, 1e-9);
        }
    }
}

#[test]
fn nsam_perturbs_along_the_full_set_gradient() {
    // With the full set equal to the batch, n-SAM is SAM; with a different full set it is not.
    let p = problem(Activation::Tanh, BATCH, 6);
    let q = problem(Activation::Tanh, 30, 7);
    let o = opt(OptimizerKind::Nsam);
    let mut mlp = Mlp::<f64>::new(p.spec.clone());
    let step = |full: (&[f64], &[u32]), mlp: &mut Mlp<f64>| {
        let (mut w, mut v, mut ws) = (p.params.clone(), vec![0.0; p.params.len()], Workspace::default());
        let input = StepInput { x: &p.x, y: &p.y, probe: None, full: Some(full) };
        sam_family_step(mlp, &mut w, &mut v, input, &o, 0.1, &mut ws);
        w
    };
    let same = step((&p.x, &p.y), &mut mlp);
    let (sam, _) = run_steps::<f64>(&p, &opt(OptimizerKind::Sam), 1);
    assert_close("n-SAM with full = batch", &same, &sam, 1e-14, 1e-12);
    let other = step((&q.x, &q.y), &mut mlp);
    let g_full = grad(&mut mlp, &p.params, &q.x, &q.y);
    let g_d = grad(&mut mlp, &add_scaled(&p.params, &g_full, o.rho / (norm(&g_full) + 1e-12)), &p.x, &p.y);
    let want: Vec<f64> = p.params.iter().zip(&g_d).map(|(w, g)| w - 0.1 * (g + o.weight_decay * w)).collect();
    assert_close("n-SAM full-set perturbation", &other, &want, 1e-12, 1e-9);
}

#[test]
fn msam_with_small_m_differs_from_sam() {
    let p = problem(Activation::Relu, BATCH, 2);
    let (sam, _) = run_steps::<f64>(&p, &opt(OptimizerKind::Sam), 3);
    let (msam, _) = run_steps::<f64>(&p, &OptimizerConfig { m: 1, ..opt(OptimizerKind::Msam) }, 3);
    let diff = sam.iter().zip(&msam).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff > 1e-4, "m-SAM m=1 is indistinguishable from SAM ({diff})");
}

#[test]
fn target_ess_mode_reaches_its_effective_sample_size() {
    let p = problem(Activation::Relu, 24, 5);
    for r in [0.5, 0.25] {
        let mut o = opt(OptimizerKind::Rwsam);
        o.rwsam.target_ess = Some(r);
        o.rwsam.normalize = true;
        let (_, reports) = run_steps::<f64>(&p, &o, 3);
        for rep in reports {
            let rw = rep.rwsam.expect("RW-SAM reports its weights");
            assert!((rw.ess - r * 24.0).abs() < 1e-6, "ESS {} for r = {r}", rw.ess);
            assert!((rw.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!((optim::ess(&rw.weights) - rw.ess).abs() < 1e-12);
        }
    }
}
