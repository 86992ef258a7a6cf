//! Runs the escape experiment (`experiments::escape`) natively, blocking: per seed, SGD to its
//! end point w_SGD, then every arm from w_SGD (a new run whose initial weights are w_SGD), with
//! the run's own evaluations, measurements and weight snapshots every K steps, and the loss
//! barrier of the line from w_SGD to each snapshot.

use super::experiment::trial_bar;
use crate::engine::choice::open_engine;
use crate::error::{Error, Result};
use crate::experiments::escape::{ArmRun, EscapeConfig, EscapePoint, EscapeReport, SeedRun, Start, line_barrier};
use crate::metrics::{CpuEvaluator, EvalSet};
use crate::run::{Run, RunStatus};
use crate::setup::{prepare, spec_for};
use std::sync::Arc;

/// Steps per submission (the CLI's blocking loop).
const CHUNK: u64 = 64;

/// One seed's records, with the weights behind the bit-for-bit start check: w_SGD and, per arm,
/// the weights its engine held before its first step (the snapshot at step 0).
pub struct SeedOutcome {
    pub run: SeedRun,
    pub w_sgd: Vec<f32>,
    pub arm_starts: Vec<Vec<f32>>,
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>().sqrt()
}

/// Phase 1 and phase 2 of one seed.
pub fn run_seed(cfg: &EscapeConfig, seed: u64, mut progress: impl FnMut(&str)) -> Result<SeedOutcome> {
    let c1 = cfg.phase1(seed);
    let (data, init) = prepare(&c1)?;
    let engine = open_engine(&c1, data.clone(), &init)?;
    let mut run = Run::new(c1.clone(), data.clone(), init, engine)?;
    run.run_to_end(CHUNK, |_| {})?;
    if let RunStatus::Diverged(why) = &run.status {
        return Err(Error::Data(format!("escape, seed {seed}: phase 1 (SGD) diverged: {why}")));
    }
    let w_sgd = run.params_blocking()?;
    let last = run.history.last_eval().cloned().unwrap_or_default();
    let start = Start {
        steps: run.completed_steps(),
        train_loss: last.train_loss,
        test_acc: last.test_acc,
        weight_norm: w_sgd.iter().map(|&w| (w as f64).powi(2)).sum::<f64>().sqrt(),
    };
    progress("SGD to w_SGD");
    // The barrier's loss: the whole training set with the labels trained on.
    let mut line = CpuEvaluator::<f32>::from_eval_set(spec_for(&c1, &data), &EvalSet::from_train(&data, 0, seed))?;
    let from = Arc::new(w_sgd.clone());
    let (mut arms, mut arm_starts) = (Vec::new(), Vec::new());
    for arm in &cfg.arms {
        let c2 = cfg.phase2(arm, seed);
        let engine = open_engine(&c2, data.clone(), &from)?;
        let mut run = Run::new(c2, data.clone(), from.clone(), engine)?;
        // One snapshot per evaluation (steps 0, K, 2K, …): none is thinned away.
        run.keep_snapshots((cfg.steps / cfg.every + 2) as usize);
        run.run_to_end(CHUNK, |_| {})?;
        let diverged = match &run.status {
            RunStatus::Diverged(why) => Some(why.clone()),
            _ => None,
        };
        let mut points = Vec::new();
        let (mut end_t, mut end_loss) = (Vec::new(), Vec::new());
        for (step, w) in &run.snapshots {
            let (Some(e), Some(m)) = (run.history.evals.iter().find(|e| e.step == *step), run.history.measurements.iter().find(|m| m.step == *step)) else {
                continue;
            };
            let (slice, barrier) = line_barrier(&mut line, &w_sgd, w, cfg.line_points)?;
            if *step == cfg.steps {
                (end_t, end_loss) = (slice.t, slice.loss);
            }
            points.push(EscapePoint {
                step: *step,
                lambda_max: m.lambda_max,
                trace_v: m.trace_v,
                train_loss: e.train_loss,
                test_acc: e.test_acc,
                distance: distance(w, &w_sgd),
                barrier,
            });
        }
        let first = run.snapshots.first().filter(|(s, _)| *s == 0).map(|(_, w)| w.clone()).unwrap_or_default();
        arms.push(ArmRun { arm: arm.name.clone(), points, end_line_t: end_t, end_line_loss: end_loss, starts_at_w_sgd: same_bits(&first, &w_sgd), diverged });
        arm_starts.push(first);
        progress(&arm.name);
    }
    Ok(SeedOutcome { run: SeedRun { seed, start, arms }, w_sgd, arm_starts })
}

/// Every seed of the experiment, one after another.
pub fn run_escape(cfg: &EscapeConfig, quiet: bool) -> Result<EscapeReport> {
    let bar = trial_bar(cfg.seeds * (1 + cfg.arms.len()), quiet, "escape");
    let mut seeds = Vec::new();
    for seed in 0..cfg.seeds as u64 {
        bar.set_message(format!("seed {seed}"));
        let outcome = run_seed(cfg, seed, |what| {
            bar.set_message(format!("seed {seed}: {what} done"));
            bar.inc(1);
        })?;
        seeds.push(outcome.run);
    }
    bar.finish();
    Ok(EscapeReport { config: cfg.clone(), seeds })
}
