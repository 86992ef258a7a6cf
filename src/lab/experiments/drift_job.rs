//! The drift check in the app: not a training experiment, so it runs on the worker, in one
//! piece on the desktop (the CLI's numbers) and one m per piece in the browser.

use crate::experiments::drift::{DriftConfig, DriftReport, drift_check};
use crate::platform::Worker;
use std::collections::VecDeque;

/// The drift check in pieces: all of it at once on the desktop's worker thread (the same numbers
/// as `samlab experiment drift-check`), one m per frame in the browser.
pub(super) struct DriftJob {
    pub(super) config: DriftConfig,
    pub(super) chunks: VecDeque<Vec<usize>>,
    pub(super) in_flight: bool,
    /// Dropped by Stop: its thread ends after the piece in hand.
    pub(super) worker: Option<Worker<DriftConfig, DriftReport>>,
    pub(super) report: Option<DriftReport>,
}

impl DriftJob {
    /// `one_m_per_piece`: in the browser, where the worker runs on the UI thread, a piece per frame.
    pub(super) fn new(quick: bool, one_m_per_piece: bool) -> Self {
        let config = DriftConfig::new(quick, 0);
        let chunks = if one_m_per_piece { config.ms.iter().map(|&m| vec![m]).collect() } else { VecDeque::from([config.ms.clone()]) };
        let worker = Worker::new("samlab drift check", |cfg: DriftConfig| drift_check(&cfg));
        Self { config, chunks, in_flight: false, worker: Some(worker), report: None }
    }

    /// Sends the next piece when none is in flight; merges what came back. True on news.
    pub(super) fn advance(&mut self) -> bool {
        let Some(worker) = &mut self.worker else { return false };
        if !self.in_flight
            && let Some(ms) = self.chunks.pop_front()
        {
            worker.send(DriftConfig { ms, ..self.config.clone() });
            self.in_flight = true;
        }
        // The browser: one piece (one m) per frame.
        worker.work(web_time::Instant::now());
        let mut news = false;
        while let Some(part) = worker.try_recv() {
            self.in_flight = false;
            news = true;
            match &mut self.report {
                // tr V and ‖∇f‖ do not depend on the draws: every piece has the same.
                Some(r) => r.rows.extend(part.rows),
                None => self.report = Some(DriftReport { config: self.config.clone(), ..part }),
            }
        }
        news
    }

    pub(super) fn done_ms(&self) -> usize {
        self.report.as_ref().map_or(0, |r| r.rows.len())
    }

    pub(super) fn is_complete(&self) -> bool {
        self.chunks.is_empty() && !self.in_flight && self.report.is_some()
    }
}
