//! The timing core of the step benchmark, free of any platform so that the command line
//! (`samlab bench`) and the browser's bench page (web/bench.html) time steps the same way:
//! the reference model (digits, 64-128-128-10, batch 128), the optimizer suite of the page,
//! and the median milliseconds per step of an engine over planned steps.

use crate::config::{DatasetName, OptimizerKind, RunConfig};
use crate::data::BatchOrder;
use crate::engine::{Engine, EngineChoice, Request, StepPlan};
use crate::error::Result;
use web_time::Instant;

/// Untimed steps before the timed ones (buffers allocated, caches warm)...
pub const WARMUP_SUBMITS: usize = 3;
/// ...and for at least this long: a browser first runs WebAssembly through a baseline compiler
/// and swaps in its optimised code for the functions that run hot, some time after the start.
pub const WARMUP_TIME: std::time::Duration = std::time::Duration::from_millis(300);

/// The digits reference model: 64-128-128-10, batch 128 (`samlab bench --model digits`).
pub fn digits_base() -> RunConfig {
    let mut c = RunConfig { batch: 128, ..RunConfig::default() };
    c.dataset.name = DatasetName::Digits;
    c.model.hidden = vec![128, 128];
    c
}

/// The optimizers the browser's bench page times: SGD, SAM, m-SAM at m = 8 and m = 1, RW-SAM
/// (the same settings as the rows of `samlab bench` with these labels).
pub fn page_suite(base: &RunConfig) -> Vec<RunConfig> {
    let mut out = Vec::new();
    for (kind, m) in
        [(OptimizerKind::Sgd, None), (OptimizerKind::Sam, None), (OptimizerKind::Msam, Some(8)), (OptimizerKind::Msam, Some(1)), (OptimizerKind::Rwsam, None)]
    {
        let mut c = base.clone();
        c.optimizer.kind = kind;
        if let Some(m) = m {
            c.optimizer.m = m;
        }
        out.push(c);
    }
    out
}

/// Median milliseconds per step of `engine` training `cfg` on `n_train` samples:
/// `WARMUP_SUBMITS` untimed submits (and `WARMUP_TIME`), then `steps` timed steps in submits of `per_submit`
/// (each submit's time divided by its steps).
pub fn median_ms_per_step(engine: &mut dyn Engine, cfg: &RunConfig, n_train: usize, steps: usize, per_submit: usize) -> Result<f64> {
    let mut order = BatchOrder::new(n_train, cfg.batch, cfg.seed);
    let per_submit = per_submit.max(1);
    let mut t = 0u64;
    let mut plans = |n: usize| {
        (0..n)
            .map(|_| {
                let p = StepPlan { step: t, indices: order.indices(t), lr: cfg.optimizer.lr * 0.1 };
                t += 1;
                p
            })
            .collect::<Vec<_>>()
    };
    let warmup = Instant::now();
    let mut warm = 0;
    while warm < WARMUP_SUBMITS || warmup.elapsed() < WARMUP_TIME {
        engine.submit(Request::Steps(plans(per_submit)))?;
        engine.finish()?;
        warm += 1;
    }
    let mut times = Vec::new();
    for _ in 0..steps.max(1).div_ceil(per_submit) {
        let batch = plans(per_submit);
        let start = Instant::now();
        engine.submit(Request::Steps(batch))?;
        engine.finish()?;
        times.push(start.elapsed().as_secs_f64() * 1e3 / per_submit as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One row of a CPU bench table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CpuRow {
    pub optimizer: String,
    pub median_ms: f64,
    pub engine: String,
}

/// Median ms per step of `cfg` on the CPU engine (what `samlab bench --backend cpu` times),
/// one step per submit.
pub fn time_cpu(cfg: &RunConfig, steps: usize) -> Result<CpuRow> {
    let (data, init) = crate::setup::prepare(cfg)?;
    let mut engine = EngineChoice::cpu("bench").make(cfg, data.clone(), &init)?.engine;
    let median_ms = median_ms_per_step(engine.as_mut(), cfg, data.n_train(), steps, 1)?;
    Ok(CpuRow { optimizer: cfg.optimizer.label(), median_ms, engine: engine.describe() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_suite_times_every_optimizer_on_the_cpu() {
        let mut base = digits_base();
        base.model.hidden = vec![8];
        let labels: Vec<String> = page_suite(&base)
            .iter()
            .map(|c| {
                let row = time_cpu(c, 2).unwrap();
                assert!(row.median_ms.is_finite() && row.median_ms >= 0.0, "{row:?}");
                row.optimizer
            })
            .collect();
        assert_eq!(labels, ["SGD", "SAM", "m-SAM m=8", "m-SAM m=1", "RW-SAM λ=1"]);
    }
}
