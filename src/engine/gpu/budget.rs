//! Submits sized by time, not by a fixed count: a device that runs one submit for seconds is
//! reset by the system's watchdog (Windows' TDR, macOS, every browser). After each submit the
//! queue reports when the device finished it (`on_submitted_work_done`); the device time per
//! step, a moving average, sizes the next submit to fit the budget: 16 ms in the app (one
//! frame), 100 ms on the command line. The GPU engine's steps, n-SAM's full-set gradient within
//! them, and the landscape evaluator's passes are all sized this way.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use web_time::Instant;

/// The app's budget per submit: one frame.
pub const APP_SUBMIT_BUDGET: Duration = Duration::from_millis(16);
/// The command line's budget per submit.
pub const CLI_SUBMIT_BUDGET: Duration = Duration::from_millis(100);
/// Work units of the first submit, before anything was measured.
const FIRST: usize = 4;

#[derive(Default)]
struct Timing {
    /// Moving average of device milliseconds per work unit (a step, or a landscape point).
    ms_per_unit: Option<f64>,
    /// When the device finished the previous submit (a submit queued behind it starts then).
    last_done: Option<Instant>,
}

/// How many work units the next submit may hold.
#[derive(Clone)]
pub struct SubmitBudget {
    budget: Duration,
    max: usize,
    timing: Arc<Mutex<Timing>>,
}

impl SubmitBudget {
    /// At most `max` units per submit (the buffers' capacity).
    pub fn new(budget: Duration, max: usize) -> Self {
        Self { budget, max: max.max(1), timing: Arc::default() }
    }

    pub fn set_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Units for the next submit: as many as fit the budget at the measured time per unit.
    pub fn units(&self) -> usize {
        let ms = self.timing.lock().ok().and_then(|t| t.ms_per_unit);
        units_for(self.budget, ms, self.max)
    }

    /// The measured device time per unit, once a submit has finished.
    pub fn ms_per_unit(&self) -> Option<f64> {
        self.timing.lock().ok().and_then(|t| t.ms_per_unit)
    }

    /// Times the submit just made (of `units` work units) when the device reports it done.
    pub fn track(&self, queue: &wgpu::Queue, units: usize) {
        let submitted = Instant::now();
        let timing = self.timing.clone();
        queue.on_submitted_work_done(move || {
            let now = Instant::now();
            let Ok(mut t) = timing.lock() else { return };
            let start = t.last_done.map_or(submitted, |d| d.max(submitted));
            record(&mut t, now.saturating_duration_since(start), units);
            t.last_done = Some(now);
        });
    }

    /// Records a submit timed by the caller (a blocking one).
    pub fn record(&self, took: Duration, units: usize) {
        if let Ok(mut t) = self.timing.lock() {
            record(&mut t, took, units);
        }
    }
}

fn record(t: &mut Timing, took: Duration, units: usize) {
    let ms = took.as_secs_f64() * 1e3 / units.max(1) as f64;
    t.ms_per_unit = Some(match t.ms_per_unit {
        None => ms,
        Some(old) => 0.7 * old + 0.3 * ms,
    });
}

/// Units that fit `budget` at `ms` per unit, within 1..=max (FIRST before any measurement).
pub fn units_for(budget: Duration, ms: Option<f64>, max: usize) -> usize {
    match ms {
        None => FIRST.min(max),
        Some(ms) => ((budget.as_secs_f64() * 1e3 / ms.max(1e-6)).floor() as usize).clamp(1, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_fill_the_budget_and_stay_within_bounds() {
        let b = Duration::from_millis(16);
        assert_eq!(units_for(b, None, 64), 4);
        assert_eq!(units_for(b, Some(1.0), 64), 16);
        assert_eq!(units_for(b, Some(0.01), 64), 64, "capped by the buffers");
        assert_eq!(units_for(b, Some(50.0), 64), 1, "at least one, however slow");
        assert_eq!(units_for(Duration::from_millis(100), Some(3.0), 64), 33);
    }

    #[test]
    fn recorded_times_move_the_average() {
        let s = SubmitBudget::new(Duration::from_millis(16), 64);
        s.record(Duration::from_millis(8), 4);
        assert_eq!(s.ms_per_unit(), Some(2.0));
        assert_eq!(s.units(), 8);
        s.record(Duration::from_millis(40), 4);
        assert!((s.ms_per_unit().unwrap() - (0.7 * 2.0 + 0.3 * 10.0)).abs() < 1e-12);
    }
}
