//! One trial of a live experiment: its run, its pacing (`lab::pacing`, as the lab's runs) and
//! the timing that gives its ms/step.

use super::super::pacing::{Pacer, Want};
use crate::data::Dataset;
use crate::error::Result;
use crate::experiments::Trial;
use crate::run::Run;
use std::sync::Arc;
use web_time::{Duration, Instant};

/// One trial in progress.
pub(super) struct LiveTrial {
    pub(super) index: usize,
    pub(super) run: Run,
    pub(super) data: Arc<Dataset>,
    pub(super) engine_name: String,
    pub(super) asynchronous: bool,
    pub(super) phase: Phase,
    pub(super) pacer: Pacer,
    /// CPU: time inside pumps, all of it and the part that only stepped (no evaluation).
    pub(super) pump_time: Duration,
    pub(super) step_time: Duration,
    pub(super) stepped: u64,
    /// Asynchronous engines: wall time from start to the end of training.
    pub(super) started: Instant,
    pub(super) trained_after: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Training,
    /// The final weights were asked for.
    AwaitingParams,
    /// The weights are with the measurement worker.
    Measuring,
}

impl LiveTrial {
    pub(super) fn label(&self, trial: &Trial) -> String {
        let what = match self.phase {
            Phase::Training => format!("step {}/{}", self.run.completed_steps(), self.run.total_steps()),
            Phase::AwaitingParams | Phase::Measuring => "measuring tr V, λ_max, …".to_string(),
        };
        format!("{} seed {}: {what}", trial_name(trial), trial.seed)
    }

    /// Pumps a CPU run until `until` (at least once), timing the pumps.
    pub(super) fn slice(&mut self, until: Instant) -> Result<()> {
        let (mut pump_time, mut step_time, mut stepped) = (Duration::ZERO, Duration::ZERO, 0);
        let result = self.pacer.slice(&mut self.run, until, |p| {
            pump_time += p.took;
            if p.stepped > 0 && !p.evaluated {
                step_time += p.took;
                stepped += p.stepped;
            }
        });
        self.pump_time += pump_time;
        self.step_time += step_time;
        self.stepped += stepped;
        result.map(|_| ())
    }

    /// One submission in flight on an asynchronous engine, sized to keep it about one frame busy.
    pub(super) fn pump_async(&mut self) -> Result<()> {
        self.run.collect()?;
        self.pacer.submit(&mut self.run, Want::Adaptive)
    }

    /// The trial's ms per step (see the module header).
    pub(super) fn ms_per_step(&self, trial: &Trial) -> f64 {
        if self.asynchronous {
            let wall = self.trained_after.unwrap_or_else(|| self.started.elapsed());
            return 1e3 * wall.as_secs_f64() / self.run.completed_steps().max(1) as f64;
        }
        if trial.target_acc.is_some() && self.stepped > 0 {
            // `cost`: the step time alone, evaluations excluded (as `bench` times it).
            return 1e3 * self.step_time.as_secs_f64() / self.stepped as f64;
        }
        1e3 * self.pump_time.as_secs_f64() / self.run.completed_steps().max(1) as f64
    }
}

/// "m-SAM at 8", "SGD" (series and x), for progress lines and messages.
pub fn trial_name(trial: &Trial) -> String {
    match trial.x {
        Some(x) if x.fract() == 0.0 => format!("{} at {x:.0}", trial.series),
        Some(x) => format!("{} at {x}", trial.series),
        None => trial.series.clone(),
    }
}

