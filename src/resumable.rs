//! Work that can stop between two of its pieces and carry on later: what lets the browser, which
//! has no threads for SAM lab, spread a measurement or a landscape's directions over frames.
//!
//! A long computation is written once, as an `async fn` that calls `pause().await` between its
//! pieces (one Hessian-vector product, one row of a Gram matrix, one sweep). Nothing else is
//! asynchronous about it: `block_on` runs it to the end on the spot (the CLI, the desktop's worker
//! threads, the tests: the same numbers, bit for bit), and `Resumable::advance` runs it until a
//! deadline and returns, to resume at the next call. The pacing is the CPU engine's evaluation
//! blocks' (`engine::cpu`): at least one piece per call, then pieces until the deadline.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use web_time::Instant;

thread_local! {
    /// When the piece in progress should stop: set by `Resumable::advance` while it polls.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A point between two pieces of work: stops there when the deadline of the `Resumable` running
/// it has passed (never under `block_on`).
pub fn pause() -> Pause {
    Pause { paused: false }
}

/// Whether the work running now is being advanced piece by piece (by `Resumable::advance`),
/// not run to the end at once: work whose pieces cost something to cut (more device passes and
/// readbacks) cuts them finer only then.
pub fn in_pieces() -> bool {
    DEADLINE.with(Cell::get).is_some()
}

/// The future of `pause`.
pub struct Pause {
    paused: bool,
}

impl Future for Pause {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let late = DEADLINE.with(Cell::get).is_some_and(|t| Instant::now() >= t);
        if self.paused || !late {
            return Poll::Ready(());
        }
        // Resumed by the next `advance`, which then does at least this next piece.
        self.paused = true;
        Poll::Pending
    }
}

/// Sets the deadline for the duration of `f`, restoring the one before (a `block_on` inside a
/// `Resumable` must not pause).
fn with_deadline<R>(deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
    let before = DEADLINE.with(|d| d.replace(deadline));
    let out = f();
    DEADLINE.with(|d| d.set(before));
    out
}

/// Runs `work` to the end now, without pausing.
pub fn block_on<F: Future>(work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut cx = Context::from_waker(Waker::noop());
    with_deadline(None, || {
        loop {
            if let Poll::Ready(out) = work.as_mut().poll(&mut cx) {
                return out;
            }
        }
    })
}

/// A computation in progress, advanced piece by piece.
pub struct Resumable<O> {
    work: Pin<Box<dyn Future<Output = O>>>,
}

impl<O> Resumable<O> {
    pub fn new(work: impl Future<Output = O> + 'static) -> Self {
        Self { work: Box::pin(work) }
    }

    /// Works until `until` (at least one piece); the output once the work is done.
    pub fn advance(&mut self, until: Instant) -> Option<O> {
        let mut cx = Context::from_waker(Waker::noop());
        match with_deadline(Some(until), || self.work.as_mut().poll(&mut cx)) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Squares 0..n, one piece each, logging each piece's start.
    async fn squares(n: u64, log: Rc<RefCell<Vec<u64>>>) -> Vec<u64> {
        let mut out = Vec::new();
        for i in 0..n {
            log.borrow_mut().push(i);
            out.push(i * i);
            pause().await;
        }
        out
    }

    #[test]
    fn resumed_work_does_one_piece_per_past_deadline_and_ends_as_run_at_once() {
        let whole = block_on(squares(5, Rc::default()));
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut job = Resumable::new(squares(5, log.clone()));
        let past = Instant::now();
        let mut calls = 0;
        let out = loop {
            calls += 1;
            let before = log.borrow().len();
            if let Some(out) = job.advance(past) {
                break out;
            }
            assert_eq!(log.borrow().len(), before + 1, "one piece per call once the deadline has passed");
        };
        assert_eq!(out, whole);
        assert_eq!(calls, 6, "five pieces, then the end");
        // A deadline far ahead does everything in one call.
        let mut job = Resumable::new(squares(5, Rc::default()));
        assert_eq!(job.advance(Instant::now() + std::time::Duration::from_secs(3600)), Some(whole));
    }

    #[test]
    fn block_on_inside_a_resumable_does_not_pause() {
        let mut job = Resumable::new(async { block_on(squares(3, Rc::default())) });
        assert_eq!(job.advance(Instant::now()), Some(vec![0, 1, 4]));
    }
}
