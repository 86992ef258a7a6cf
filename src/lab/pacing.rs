//! How the app trains without blocking, written once for the lab's runs and the experiments'
//! trials:
//! - a synchronous (CPU) run gets a *slice* of the frame: it is pumped until its deadline, each
//!   pump sized from a moving average of the milliseconds one step took;
//! - an asynchronous (GPU) run keeps one submission in flight; the steps per submission double
//!   while results come back within a frame and halve when they take more than three;
//! - the synchronous runs of a frame share its budget round robin, with equal shares, the first
//!   one served changing every frame, and at least one pump per frame (a slow step delays a
//!   frame but never stops training).

use crate::error::Result;
use crate::run::Run;
use web_time::{Duration, Instant};

/// Most steps an asynchronous engine gets per submission.
pub const MAX_ASYNC_STEPS: u64 = 256;

/// What one pump of a slice did, for callers that time their runs.
#[derive(Clone, Copy, Debug)]
pub struct Pump {
    pub took: Duration,
    pub stepped: u64,
    /// An evaluation of the full sets arrived with it.
    pub evaluated: bool,
}

/// The pacing state of one run.
#[derive(Clone, Debug)]
pub struct Pacer {
    /// Moving average of milliseconds per step of one pump, to size the next CPU slice.
    ms_per_step: f64,
    /// Steps per submission of an asynchronous engine, adapted to keep it about one frame busy.
    async_steps: u64,
    /// Frames the last asynchronous submission has been in flight.
    waited: u32,
}

impl Default for Pacer {
    fn default() -> Self {
        Self { ms_per_step: 1.0, async_steps: 4, waited: 0 }
    }
}

/// How many steps an asynchronous run wants now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Playing: as many as keep the device about one frame busy.
    Adaptive,
    /// Exactly this many (single steps while paused).
    Exactly(u64),
}

impl Pacer {
    /// Pumps a synchronous run until `until` (at least once); `on_pump` sees every pump. Stops
    /// early when nothing arrived (waiting for the engine) or the run is done. Returns the steps.
    pub fn slice(&mut self, run: &mut Run, until: Instant, mut on_pump: impl FnMut(Pump)) -> Result<u64> {
        let before = run.completed_steps();
        loop {
            let now = Instant::now();
            let left_ms = until.saturating_duration_since(now).as_secs_f64() * 1e3;
            let k = (left_ms / self.ms_per_step.max(1e-3)).floor().clamp(1.0, 10_000.0) as u64;
            let (steps_before, evals_before) = (run.completed_steps(), run.history.evals_seen());
            let result = run.pump(k).and_then(|_| run.collect_until(until));
            let took = now.elapsed();
            let stepped = run.completed_steps() - steps_before;
            if stepped > 0 {
                self.ms_per_step = 0.7 * self.ms_per_step + 0.3 * (took.as_secs_f64() * 1e3 / stepped as f64);
            }
            on_pump(Pump { took, stepped, evaluated: run.history.evals_seen() != evals_before });
            if result? == 0 || run.is_done() || Instant::now() >= until {
                return Ok(run.completed_steps() - before);
            }
        }
    }

    /// Submits the next steps of an asynchronous run once its last submission is back (never
    /// more than one in flight). Call after collecting what arrived.
    pub fn submit(&mut self, run: &mut Run, want: Want) -> Result<()> {
        if run.is_done() {
            return Ok(());
        }
        if run.is_busy() {
            self.waited += 1;
            return Ok(());
        }
        let k = match want {
            Want::Exactly(k) => k,
            Want::Adaptive => {
                if self.waited <= 1 {
                    self.async_steps = (self.async_steps * 2).min(MAX_ASYNC_STEPS);
                } else if self.waited > 3 {
                    self.async_steps = (self.async_steps / 2).max(1);
                }
                self.async_steps
            }
        };
        self.waited = 0;
        run.pump(k)
    }
}

/// Serves `active` (indices into the caller's runs) within `budget` from `start`: equal shares,
/// round robin from `cursor` (advanced by one per call), at least one served.
pub fn round_robin(active: &[usize], start: Instant, budget: Duration, cursor: &mut usize, mut serve: impl FnMut(usize, Instant)) {
    let n = active.len();
    if n == 0 {
        return;
    }
    let share = budget / n as u32;
    let deadline = start + budget;
    for j in 0..n {
        let now = Instant::now();
        if j > 0 && now >= deadline {
            break;
        }
        serve(active[(*cursor + j) % n], (now + share).min(deadline));
    }
    *cursor = (*cursor + 1) % n;
}

/// How one frame's budget is shared: the browser's measurements in pieces and a landscape in
/// progress each take 3/8 of it while they have work, and the training runs get the rest (at
/// least a quarter), so that the frame's planned work stays within the budget.
/// Returns (training, measurements, landscape).
pub fn frame_shares(budget: Duration, measuring: bool, landscape: bool) -> (Duration, Duration, Duration) {
    let extra = budget * 3 / 8;
    let m = if measuring { extra } else { Duration::ZERO };
    let l = if landscape { extra } else { Duration::ZERO };
    (budget - m - l, m, l)
}

/// Throughput, measured over the last second.
#[derive(Clone, Debug, Default)]
pub struct Throughput {
    window_start: Option<Instant>,
    steps_in_window: u64,
    pub steps_per_s: f64,
}

impl Throughput {
    pub fn add(&mut self, steps: u64, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        self.steps_in_window += steps;
        let dt = now.duration_since(start).as_secs_f64();
        if dt >= 1.0 {
            self.steps_per_s = self.steps_in_window as f64 / dt;
            self.steps_in_window = 0;
            self.window_start = Some(now);
        }
    }
}
