//! escape: does m-SAM leave the sharper minimum SGD ends in (docs/ALGORITHMS.md#escape)?
//!
//! Per seed, phase 1 trains SGD on the experiments' base setting at 40 % label noise to its end
//! point w_SGD. Phase 2 starts every arm (SGD as the control, m-SAM at m = B, 8 and 1) from w_SGD
//! with the same batch order and zero momentum, and records every K steps λ_max and tr V (the
//! run's own measurement hook), the full-set train loss and test accuracy, ‖w_t − w_SGD‖ and the
//! loss barrier on the straight line from w_SGD to w_t. "Leaves the basin" is that barrier
//! exceeding a stated threshold (`basin_barrier`, `BARRIER_THRESHOLD`).
//!
//! This file is plain data (settings, records, the basin criterion, table, figure panels and
//! verdicts); the CLI trains the phases (`cli::escape`). Not run in the app: each seed chains two
//! phases and line evaluations, which the app's list of independent trials does not express.

use super::panels::{Panel, Series};
use super::stats::{Claim, Verdict, finish, from_diffs, paired};
use super::{Options, base_config, mean_std, sig};
use crate::config::{Backend, OptimizerKind, RunConfig};
use crate::error::Result;
use crate::metrics::landscape::{LossEvaluator, Slice, line_between, linspace};
use serde::{Deserialize, Serialize};

/// The training loss (nats, mean cross-entropy on the labels trained on) that the line from
/// w_SGD to w_t must rise above its higher end for w_t to count as outside SGD's basin: about
/// 2 % of ln 10, the loss of a uniform guess over the ten classes, and far above the f32
/// rounding of a mean loss, so that a flat stretch of the line never counts as a ridge.
pub const BARRIER_THRESHOLD: f64 = 0.05;
/// The label noise of the base setting (as in m-sweep).
pub const NOISE: f64 = 0.4;
/// The larger ρ of one more m = 1 arm (the larger ρ of the RW-SAM grids): whether a stronger
/// perturbation than the base ρ = 0.05 carries m-SAM out of SGD's basin.
pub const LARGE_RHO: f64 = 0.2;

/// The name of the m-SAM arm with micro-batch `m` at the base ρ, or at `LARGE_RHO`.
pub fn arm_name(m: usize, large_rho: bool) -> String {
    if large_rho { format!("m-SAM m={m}, ρ={LARGE_RHO}") } else { format!("m-SAM m={m}") }
}

/// One optimizer continued from w_SGD.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Arm {
    /// "SGD", "m-SAM m=128", …
    pub name: String,
    pub kind: OptimizerKind,
    /// m (m-SAM only).
    pub m: Option<usize>,
    pub rho: f64,
}

/// The settings of an escape run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EscapeConfig {
    pub quick: bool,
    pub seeds: usize,
    pub backend: Backend,
    /// Phase 1 (SGD to its end) for seed 0; every seed changes `seed` only.
    pub phase1: RunConfig,
    /// Phase 2: steps from w_SGD, and every how many steps it is recorded.
    pub steps: u64,
    pub every: u64,
    pub arms: Vec<Arm>,
    /// Points on the line from w_SGD to w_t (t = 0 … 1, both ends included).
    pub line_points: usize,
    /// `BARRIER_THRESHOLD`.
    pub threshold: f64,
}

impl EscapeConfig {
    /// Full: the base setting (400 SGD steps), then 200 steps (20 epochs) per arm recorded
    /// every 20. Quick: the quick setting (420 steps), then 70 steps (10 epochs) recorded every 7.
    pub fn new(opts: &Options) -> Self {
        let mut phase1 = base_config(opts.quick);
        phase1.backend = opts.backend;
        phase1.dataset.label_noise = NOISE;
        phase1.optimizer.kind = OptimizerKind::Sgd;
        let per_epoch = phase1.steps_per_epoch();
        let (epochs, records) = if opts.quick { (10, 10) } else { (20, 10) };
        let b = phase1.batch;
        let rho = phase1.optimizer.rho;
        let mut arms = vec![Arm { name: "SGD".into(), kind: OptimizerKind::Sgd, m: None, rho: 0.0 }];
        for m in [b, 8, 1] {
            arms.push(Arm { name: arm_name(m, false), kind: OptimizerKind::Msam, m: Some(m), rho });
        }
        arms.push(Arm { name: arm_name(1, true), kind: OptimizerKind::Msam, m: Some(1), rho: LARGE_RHO });
        let steps = epochs * per_epoch;
        Self {
            quick: opts.quick,
            seeds: opts.seeds.max(1),
            backend: opts.backend,
            phase1,
            steps,
            every: (steps / records).max(1),
            arms,
            line_points: 21,
            threshold: BARRIER_THRESHOLD,
        }
    }

    /// Phase 1 of `seed`: SGD on the base setting to its end.
    pub fn phase1(&self, seed: u64) -> RunConfig {
        RunConfig { seed, ..self.phase1.clone() }
    }

    /// Phase 2 of `seed` for `arm`: the same data, seed (so the same batch order for every arm)
    /// and base optimizer settings, `steps` steps, evaluated and measured every `every` steps.
    pub fn phase2(&self, arm: &Arm, seed: u64) -> RunConfig {
        let mut c = self.phase1(seed);
        c.optimizer.kind = arm.kind;
        c.optimizer.rho = arm.rho;
        if let Some(m) = arm.m {
            c.optimizer.m = m;
        }
        c.steps = Some(self.steps);
        c.eval_every = self.every;
        c.measure_every = self.every;
        c
    }
}

/// The loss barrier of a line f(t_0) … f(t_k) from t = 0 to t = 1 (both ends included): the
/// highest loss on it minus the higher of its two ends (≥ 0), and where it lies (index). A line
/// inside one basin has barrier 0 (or the small bulge of a curved valley); one that crosses a
/// ridge has the ridge's height above the higher end.
pub fn basin_barrier(losses: &[f64]) -> (f64, usize) {
    let (Some(&first), Some(&last)) = (losses.first(), losses.last()) else { return (f64::NAN, 0) };
    let (top, at) = losses.iter().enumerate().fold((f64::NEG_INFINITY, 0), |(m, i), (j, &v)| if v > m { (v, j) } else { (m, i) });
    (top - first.max(last), at)
}

/// The train loss on the straight line from `from` (t = 0) to `to` (t = 1) at `points` evenly
/// spaced t (the landscape's line code), and its `basin_barrier`.
pub fn line_barrier(ev: &mut dyn LossEvaluator, from: &[f32], to: &[f32], points: usize) -> Result<(Slice, f64)> {
    let line = line_between(ev, from, to, &linspace(0.0, 1.0, points.max(2)))?;
    let (barrier, _) = basin_barrier(&line.loss);
    Ok((line, barrier))
}

/// Whether a barrier says "outside SGD's basin".
pub fn left_basin(barrier: f64, threshold: f64) -> bool {
    barrier > threshold
}

/// One record of an arm in phase 2 (`step` steps after w_SGD).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EscapePoint {
    pub step: u64,
    /// On the evaluation subset (the run's measurement hook).
    pub lambda_max: f64,
    pub trace_v: f64,
    /// On the full sets (the run's evaluation).
    pub train_loss: f64,
    pub test_acc: f64,
    /// ‖w_t − w_SGD‖.
    pub distance: f64,
    /// `basin_barrier` of the line from w_SGD to w_t (train loss on the whole training set).
    pub barrier: f64,
}

/// One arm of one seed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ArmRun {
    pub arm: String,
    pub points: Vec<EscapePoint>,
    /// The line from w_SGD (t = 0) to the arm's end point (t = 1): its t and train losses.
    pub end_line_t: Vec<f64>,
    pub end_line_loss: Vec<f64>,
    /// The weights the arm's engine held before its first step were w_SGD, bit for bit.
    pub starts_at_w_sgd: bool,
    /// Why the arm stopped early (its loss stopped being finite), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diverged: Option<String>,
}

impl ArmRun {
    pub fn end(&self) -> Option<&EscapePoint> {
        self.points.last()
    }
}

/// Phase 1's end point.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Start {
    pub steps: u64,
    pub train_loss: f64,
    pub test_acc: f64,
    pub weight_norm: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SeedRun {
    pub seed: u64,
    pub start: Start,
    pub arms: Vec<ArmRun>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EscapeReport {
    pub config: EscapeConfig,
    pub seeds: Vec<SeedRun>,
}

/// (seed, value) of one arm's end point over the seeds (arms that diverged are left out).
fn per_seed(r: &EscapeReport, arm: &str, f: impl Fn(&EscapePoint, &EscapePoint) -> f64) -> Vec<(u64, f64)> {
    r.seeds
        .iter()
        .filter_map(|s| {
            let a = s.arms.iter().find(|a| a.arm == arm && a.diverged.is_none())?;
            Some((s.seed, f(a.points.first()?, a.end()?)))
        })
        .filter(|(_, v)| v.is_finite())
        .collect()
}

fn lambda_ratio(start: &EscapePoint, end: &EscapePoint) -> f64 {
    end.lambda_max / start.lambda_max
}

fn trace_v_ratio(start: &EscapePoint, end: &EscapePoint) -> f64 {
    end.trace_v / start.trace_v
}

fn mean(v: &[(u64, f64)]) -> f64 {
    mean_std(&v.iter().map(|x| x.1).collect::<Vec<_>>()).0
}

/// The table: one row per arm, mean ± std over seeds at the end of phase 2.
pub fn markdown(r: &EscapeReport) -> String {
    let c = &r.config;
    let starts: Vec<f64> = r.seeds.iter().map(|s| s.start.test_acc).collect();
    let losses: Vec<f64> = r.seeds.iter().map(|s| s.start.train_loss).collect();
    let (acc, acc_sd) = mean_std(&starts);
    let (loss, loss_sd) = mean_std(&losses);
    let mut s = format!(
        "Phase 1: SGD, {} steps at {:.0} % label noise, ends at w_SGD (train loss {} ± {}, test accuracy {:.2} ± {:.2} %). Phase 2: {} steps from w_SGD per arm \
         (zero momentum, the seed's batch order for every arm), recorded every {} steps. λ_max and tr V on the evaluation subset, relative to their value at w_SGD; \
         barrier: the train loss on the line from w_SGD to the end point above its higher end ({} points); it leaves SGD's basin above {} nats.\n\n",
        c.phase1.total_steps(),
        100.0 * NOISE,
        sig(loss),
        sig(loss_sd),
        100.0 * acc,
        100.0 * acc_sd,
        c.steps,
        c.every,
        c.line_points,
        c.threshold
    );
    s.push_str("| arm | ρ | λ_max end/start | tr V end/start | ‖w − w_SGD‖ | barrier (nats) | left the basin | train loss | test acc | seeds |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let pm = |v: &[(u64, f64)], k: f64| {
        let (m, sd) = mean_std(&v.iter().map(|x| k * x.1).collect::<Vec<_>>());
        if k == 100.0 { format!("{m:.2} ± {sd:.2}") } else { format!("{} ± {}", sig(m), sig(sd)) }
    };
    for arm in &c.arms {
        let lam = per_seed(r, &arm.name, lambda_ratio);
        let trv = per_seed(r, &arm.name, trace_v_ratio);
        let dist = per_seed(r, &arm.name, |_, e| e.distance);
        let bar = per_seed(r, &arm.name, |_, e| e.barrier);
        let tl = per_seed(r, &arm.name, |_, e| e.train_loss);
        let ta = per_seed(r, &arm.name, |_, e| e.test_acc);
        let left = bar.iter().filter(|(_, b)| left_basin(*b, c.threshold)).count();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {left}/{} | {} | {} | {} |\n",
            arm.name,
            arm.rho,
            pm(&lam, 1.0),
            pm(&trv, 1.0),
            pm(&dist, 1.0),
            pm(&bar, 1.0),
            bar.len(),
            pm(&tl, 1.0),
            pm(&ta, 100.0),
            lam.len()
        ));
    }
    s
}

/// The claims: λ_max and tr V of m = 1 against SGD's continuation, λ_max of m = 1 against m = B,
/// and m = 1 leaving SGD's basin (its barrier above the threshold, seed by seed) at the base ρ
/// and at `LARGE_RHO`.
pub fn verdicts(r: &EscapeReport) -> Vec<Verdict> {
    let c = &r.config;
    let b = c.phase1.batch;
    let (small, big) = (arm_name(1, false), arm_name(b, false));
    let mut claims = Vec::new();
    let ratio = |arm: &str, f: fn(&EscapePoint, &EscapePoint) -> f64| per_seed(r, arm, f);
    for (what, f) in [("λ_max", lambda_ratio as fn(&EscapePoint, &EscapePoint) -> f64), ("tr V", trace_v_ratio)] {
        let (a, s) = (ratio(&small, f), ratio("SGD", f));
        claims.push(Claim::less(
            format!("continued from w_SGD, m-SAM with m = 1 ends with a lower {what} than SGD's continuation"),
            format!("{what} end/start {} at m = 1 vs {} for SGD", sig(mean(&a)), sig(mean(&s))),
            "× its value at w_SGD",
            paired(&a, &s),
        ));
    }
    let (a, m) = (ratio(&small, lambda_ratio), ratio(&big, lambda_ratio));
    claims.push(Claim::less(
        format!("smaller m lowers λ_max more: m = 1 ends below m = {b} (mini-batch SAM)"),
        format!("λ_max end/start {} at m = 1 vs {} at m = {b}", sig(mean(&a)), sig(mean(&m))),
        "× its value at w_SGD",
        paired(&a, &m),
    ));
    let sgd_left = per_seed(r, "SGD", |_, e| e.barrier).iter().filter(|(_, v)| left_basin(*v, c.threshold)).count();
    for (arm, at) in [(small, String::new()), (arm_name(1, true), format!(" with ρ = {LARGE_RHO}"))] {
        // An experiment recorded before the larger-ρ arm existed has no claim for it.
        if !c.arms.iter().any(|a| a.name == arm) {
            continue;
        }
        let bar = per_seed(r, &arm, |_, e| e.barrier);
        let left = bar.iter().filter(|(_, v)| left_basin(*v, c.threshold)).count();
        claims.push(Claim::greater(
            format!(
                "m = 1{at} leaves SGD's basin: the train loss on the line from w_SGD to its end point rises more than {} nats above the higher end",
                c.threshold
            ),
            format!("barrier above {} in {left}/{} seeds at m = 1{at} (SGD's continuation: {sgd_left})", c.threshold, bar.len()),
            "nats above the threshold",
            from_diffs(bar.iter().map(|(_, v)| v - c.threshold).collect()),
        ));
    }
    finish(claims, c.quick.then_some(super::QUICK_REASON))
}

/// The figure: λ_max, tr V and the barrier along phase 2 per arm (mean ± std over seeds).
pub fn panels(r: &EscapeReport) -> Vec<Panel> {
    let along = |f: fn(&EscapePoint, &EscapePoint) -> f64| -> Vec<Series> {
        r.config
            .arms
            .iter()
            .map(|arm| {
                let runs: Vec<&ArmRun> = r.seeds.iter().filter_map(|s| s.arms.iter().find(|a| a.arm == arm.name && a.diverged.is_none())).collect();
                let steps: Vec<u64> = runs.first().map(|a| a.points.iter().map(|p| p.step).collect()).unwrap_or_default();
                let points = steps
                    .iter()
                    .filter_map(|&step| {
                        let v: Vec<f64> = runs
                            .iter()
                            .filter_map(|a| Some(f(a.points.first()?, a.points.iter().find(|p| p.step == step)?)))
                            .filter(|v| v.is_finite())
                            .collect();
                        let (m, sd) = mean_std(&v);
                        (!v.is_empty()).then_some((step as f64, m, sd))
                    })
                    .collect();
                Series { name: arm.name.clone(), points, reference: None }
            })
            .collect()
    };
    let panel = |title: &str, y: &str, series| Panel {
        title: title.into(),
        x_label: "steps from w_SGD".into(),
        y_label: y.into(),
        log2_x: false,
        categories: None,
        series,
    };
    let mut barrier = along(|_, p| p.barrier);
    barrier.push(Series { name: "threshold".into(), points: Vec::new(), reference: Some((r.config.threshold, 0.0)) });
    vec![
        panel("λ_max relative to w_SGD", "λ_max / λ_max(w_SGD)", along(lambda_ratio)),
        panel("tr V relative to w_SGD", "tr V / tr V(w_SGD)", along(trace_v_ratio)),
        panel("loss barrier from w_SGD", "barrier (nats)", barrier),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::landscape::LossAcc;

    /// f(w) = (‖w‖² − 1)² on one or more weights: minima on the unit sphere, a ridge of height
    /// 1 at the origin.
    struct DoubleWell;

    impl LossEvaluator for DoubleWell {
        fn n_params(&self) -> usize {
            1
        }
        fn evaluate(&mut self, points: &[Vec<f32>]) -> Result<Vec<LossAcc>> {
            Ok(points.iter().map(|p| LossAcc { loss: (p.iter().map(|&w| (w as f64).powi(2)).sum::<f64>() - 1.0).powi(2), accuracy: 0.0 }).collect())
        }
    }

    #[test]
    fn the_line_across_the_ridge_has_its_height_as_barrier_and_one_inside_a_basin_none() {
        // From one minimum (w = −1) to the other (w = 1): the ridge f(0) = 1 at t = ½.
        let (line, barrier) = line_barrier(&mut DoubleWell, &[-1.0], &[1.0], 21).unwrap();
        assert_eq!(line.t.len(), 21);
        assert!((barrier - 1.0).abs() < 1e-12, "{barrier}");
        assert_eq!(basin_barrier(&line.loss).1, 10);
        assert!(left_basin(barrier, BARRIER_THRESHOLD));
        // Within the right-hand basin (w = 1 to 1.3): the loss only rises, no barrier.
        let (_, barrier) = line_barrier(&mut DoubleWell, &[1.0], &[1.3], 21).unwrap();
        assert_eq!(barrier, 0.0);
        assert!(!left_basin(barrier, BARRIER_THRESHOLD));
        // From the bottom (w = 1) up the outer wall and back over the bottom of the same basin
        // (w = 0.8): the loss dips below both ends, so nothing rises above them.
        let (_, barrier) = line_barrier(&mut DoubleWell, &[1.2], &[0.8], 21).unwrap();
        assert_eq!(barrier, 0.0);
        // Ends at different heights (f(−0.9) = 0.0361, f(0.5) = 0.5625), the ridge (w = 0) at
        // t = 9/14: the barrier is the ridge above the higher end, 1 − 0.5625.
        let (_, barrier) = line_barrier(&mut DoubleWell, &[-0.9], &[0.5], 15).unwrap();
        assert!((barrier - 0.4375).abs() < 1e-6, "{barrier}");
    }

    #[test]
    fn every_arm_shares_phase_one_but_its_optimizer() {
        for quick in [false, true] {
            let c = EscapeConfig::new(&Options { seeds: 2, quick, ..Options::default() });
            let p1 = c.phase1(1);
            p1.validate().unwrap();
            assert_eq!((p1.optimizer.kind, p1.dataset.label_noise, p1.seed), (OptimizerKind::Sgd, NOISE, 1));
            for arm in &c.arms {
                let p2 = c.phase2(arm, 1);
                p2.validate().unwrap();
                assert_eq!((&p2.dataset, &p2.model, p2.batch, p2.seed, p2.split_seed), (&p1.dataset, &p1.model, p1.batch, 1, p1.split_seed));
                assert_eq!(
                    (p2.optimizer.lr, p2.optimizer.momentum, p2.optimizer.weight_decay),
                    (p1.optimizer.lr, p1.optimizer.momentum, p1.optimizer.weight_decay)
                );
                assert_eq!(p2.total_steps(), c.steps);
                assert!(c.steps.is_multiple_of(p2.measure_every) && p2.measure_every == p2.eval_every);
            }
            assert_eq!(c.arms.iter().filter_map(|a| a.m).collect::<Vec<_>>(), vec![c.phase1.batch, 8, 1, 1]);
            assert_eq!(
                c.arms.iter().map(|a| a.rho).collect::<Vec<_>>(),
                vec![0.0, c.phase1.optimizer.rho, c.phase1.optimizer.rho, c.phase1.optimizer.rho, LARGE_RHO]
            );
        }
    }
}
