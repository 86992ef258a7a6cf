//! Sharpness measurements in the app, away from the UI: on a worker thread on the desktop, and
//! lighter (fewer samples and probes) in the browser, where the "worker" is a job in pieces (one
//! pass over the evaluation set each) that the lab advances a slice per frame (`work`). The lab's runs measure every `measure_every` steps (`Measuring`); the experiments'
//! trials measure once at the end (`app_measurer`): both set up their measurer here. A run may
//! also ask for the Hessian's eigenvalue density (`app_density`), lighter in the browser.

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::engine::ParamsTag;
use crate::error::Result;
use crate::metrics::{DensityConfig, MeasureConfig, Measurement, RunMeasurer};
use crate::platform::{BACKGROUND_WORKERS, Worker};
use crate::run::Run;
use web_time::Instant;

/// Evaluation samples of the browser's lighter measurement.
const LIGHT_EVAL_SIZE: usize = 256;

/// The measurer of a run in the app: the CLI's (`RunMeasurer::new`, 1024 samples) where a worker
/// thread runs it; with `light` (the browser, between frames) 256 samples, 8 probes, 20 power
/// iterations and 8 m-curve groups.
pub fn app_measurer(cfg: &RunConfig, data: &Dataset, light: bool) -> Result<RunMeasurer> {
    if !light {
        return RunMeasurer::new(cfg, data);
    }
    let mut mcfg = MeasureConfig::for_run(cfg);
    mcfg.probes = 8;
    mcfg.power_iters = 20;
    mcfg.curve_groups = 8;
    RunMeasurer::with(cfg, data, LIGHT_EVAL_SIZE, mcfg)
}

/// The eigenvalue density a run's measurements add when asked for: 4 Rademacher starts of 40
/// Lanczos steps on a worker thread (160 Hessian-vector products); with `light` (the browser,
/// between frames, on the 256-sample subset) 2 starts of 12 steps. 256 grid points either way.
pub fn app_density(cfg: &RunConfig, light: bool) -> DensityConfig {
    let (starts, steps) = if light { (2, 12) } else { (4, 40) };
    DensityConfig { starts, steps, grid: 256, sigma: 0.01, seed: cfg.seed }
}

/// Most measurements waiting for the worker per run.
const MAX_MEASURE_QUEUE: usize = 4;

/// Inputs and outputs of the measurement worker: (generation, step, parameters) → (generation, result).
type MeasureJob = (u64, u64, Vec<f32>);
type MeasureDone = (u64, std::result::Result<Measurement, String>);

/// A run's measurements: every `every` steps (and once at the end) the lab reads the run's
/// weights and hands them to a worker that measures them on a fixed subset of the training set;
/// results land in the run's `history.measurements` in step order.
pub struct Measuring {
    every: u64,
    next: u64,
    last_asked: Option<u64>,
    /// The step whose weights were asked for and have not arrived.
    pub(crate) asked: Option<u64>,
    pub(crate) in_flight: usize,
    /// Bumped by a reset: results of older generations are dropped.
    generation: u64,
    worker: Worker<MeasureJob, MeasureDone>,
    /// Size of the evaluation subset.
    pub eval_samples: usize,
    /// The last failure, if any.
    pub error: Option<String>,
}

impl Measuring {
    /// With `spectrum`, each measurement also estimates the Hessian's eigenvalue density.
    pub fn new(cfg: &RunConfig, data: &Dataset, spectrum: bool) -> Result<Self> {
        let mut measurer = app_measurer(cfg, data, !BACKGROUND_WORKERS)?;
        measurer.config.density = spectrum.then(|| app_density(cfg, !BACKGROUND_WORKERS));
        let eval_samples = measurer.eval_size();
        let worker = Worker::resumable("samlab measurements", move |(generation, step, params): MeasureJob| {
            let mut measurer = measurer.clone();
            async move { (generation, measurer.measure_in_pieces(step, &params).await.map_err(|e| e.to_string())) }
        });
        Ok(Self { every: cfg.measure_every.max(1), next: 0, last_asked: None, asked: None, in_flight: 0, generation: 0, worker, eval_samples, error: None })
    }

    pub fn restart(&mut self) {
        self.generation += 1;
        self.next = 0;
        self.last_asked = None;
        self.asked = None;
    }

    /// Whether a measurement waits for `work` (the browser).
    pub fn has_work(&self) -> bool {
        self.worker.has_work()
    }

    /// In the browser: measures until `until` (at least one pass); on the desktop the worker
    /// thread measures on its own.
    pub fn work(&mut self, until: Instant) {
        self.worker.work(until);
    }

    /// Collects finished measurements, forwards arrived weights, asks for the next weights.
    pub fn advance(&mut self, run: &mut Run) {
        while let Some((generation, result)) = self.worker.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            if generation != self.generation {
                continue;
            }
            match result {
                Ok(m) => {
                    let at = run.history.measurements.partition_point(|x| x.step <= m.step);
                    run.history.measurements.insert(at, m);
                }
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(step) = self.asked {
            if let Some(params) = run.take_params(ParamsTag::LabMeasure(step)) {
                self.asked = None;
                self.in_flight += 1;
                self.worker.send((self.generation, step, params));
            }
            return;
        }
        // Measurements slower than training queue up on the worker (a few at most): training
        // never waits, and a measurement may land a few steps after it was due.
        if self.in_flight >= MAX_MEASURE_QUEUE {
            return;
        }
        let step = run.completed_steps();
        let due = step >= self.next || (run.is_done() && self.last_asked.is_some_and(|s| s < step));
        if due && self.last_asked != Some(step) && run.request_params(ParamsTag::LabMeasure(step)).is_ok() {
            self.asked = Some(step);
            self.last_asked = Some(step);
            self.next = step + self.every;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resumable::Resumable;

    /// The browser's measurement, advanced one pass at a time (every deadline already past),
    /// equals the one made at once (the desktop's worker), bit for bit, in many pieces.
    #[test]
    fn a_measurement_in_pieces_equals_one_made_at_once() {
        let cfg = RunConfig::default();
        let data = Dataset::load(&cfg.dataset, 0).unwrap();
        let params = crate::setup::spec_for(&cfg, &data).init(0);
        let mut measurer = app_measurer(&cfg, &data, true).unwrap();
        measurer.config.density = Some(app_density(&cfg, true));
        let whole = measurer.clone().measure(5, &params).unwrap();
        let mut job = Resumable::new(async move { measurer.measure_in_pieces(5, &params).await });
        let mut pieces = 0;
        let got = loop {
            pieces += 1;
            if let Some(m) = job.advance(Instant::now()) {
                break m.unwrap();
            }
        };
        // Debug text: equal NaNs (a constant correlation) compare equal too.
        assert_eq!(format!("{got:?}"), format!("{whole:?}"));
        assert!(pieces > 20, "{pieces} pieces");
    }
}
