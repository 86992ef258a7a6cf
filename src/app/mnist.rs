//! The MNIST subset in the browser: the page downloads `mnist_5k.csv.gz` after the app starts
//! (the web build does not embed it), the app parses it a slice per frame
//! (`data::prepare_mnist5k_in_pieces` on a resumable worker), and a lab waiting for it rebuilds
//! once it is parsed. Elsewhere the file is built in and none of this runs.

use super::SamLabApp;
use crate::platform::Worker;
use crate::ui::status::Message;
use web_time::{Duration, Instant};

/// Time the browser spends parsing the downloaded file per frame (at least one piece): the lab
/// waits for it, nothing else trains, so a frame may give it twice the training budget.
const MNIST_SLICE: Duration = Duration::from_millis(16);

/// The parse in progress, and whether one failed (said once, not tried again).
#[derive(Default)]
pub struct MnistPrep {
    worker: Option<Worker<(), Result<(), String>>>,
    failed: bool,
}

impl SamLabApp {
    /// A lab waiting for the MNIST file: parses it once it has arrived, then rebuilds the lab.
    pub(super) fn await_mnist(&mut self) {
        let waits = self.lab.data_error.as_deref().is_some_and(|e| e.contains("mnist5k is still downloading"));
        if !waits {
            return;
        }
        let prep = &mut self.mnist;
        if prep.worker.is_none() && !prep.failed && crate::data::mnist5k_needs_parsing() {
            let mut worker = Worker::resumable("samlab mnist5k", |()| async { crate::data::prepare_mnist5k_in_pieces().await.map_err(|e| e.to_string()) });
            worker.send(());
            prep.worker = Some(worker);
        }
        if let Some(worker) = &mut prep.worker {
            worker.work(Instant::now() + MNIST_SLICE);
            if let Some(done) = worker.try_recv() {
                prep.worker = None;
                if let Err(e) = done {
                    prep.failed = true;
                    self.say(Message::error(format!("the MNIST subset could not be read: {e}")));
                }
            }
        }
        if crate::data::mnist5k_available() {
            self.lab.rebuild_all()
        }
    }
}
