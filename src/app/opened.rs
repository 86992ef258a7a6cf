//! The files the user opens in the app (picked, dropped, or named in the Path field) and the
//! weights it saves. Every opened file goes one way, decided by what it is:
//! - a `.csv` name (or text that is not JSON): a dataset (`data::user`); the lab switches to it
//!   and every run restarts on it; a bad file changes nothing and says why in one line;
//! - JSON with `layers`: weights for a run (`Lab::load_weights`: the network must match);
//! - other JSON: a lab or a run's config (`SamLabApp::load_text`).
//!
//! Files arrive in the inbox on a later frame (a dialog or a read never holds up a frame); a CSV
//! file is then parsed away from the frame (`platform::Worker`: a thread on the desktop, in the
//! browser a few milliseconds of rows per frame) and opened when it is read; saved weights are
//! read from the engine without blocking and written once they arrive.
//! No egui here: app.rs hands the dropped files to the platform, which reads them into the inbox.

use super::SamLabApp;
use crate::config::{CsvSource, DataConfig};
use crate::platform::{Inbox, IncomingFile, Worker};
use crate::ui::files::FileCommand;
use crate::ui::status::Message;

/// A CSV file read by the worker: what configs name it by, or the one-line error (naming the file).
type ReadCsv = Result<CsvSource, String>;

/// What the app keeps for opened and saved files.
#[derive(Default)]
pub struct Desk {
    pub inbox: Inbox,
    /// Runs whose weights were asked for, to save when they arrive.
    saving: Vec<usize>,
    /// The run that weights opened next go into (the selected run when opened).
    weights_into: Option<usize>,
    /// Parses CSV files (`data::user::register_in_pieces`); made for the first one.
    csv: Option<Worker<(String, Vec<u8>), ReadCsv>>,
    /// CSV files sent to the worker and not yet back.
    reading: usize,
}

/// Time the browser spends reading a CSV file per frame (at least one block of rows).
const CSV_SLICE: web_time::Duration = web_time::Duration::from_millis(4);

impl Desk {
    /// Whether a CSV file is still being read.
    pub fn is_reading(&self) -> bool {
        self.reading > 0
    }
}

/// Extensions the dialog offers.
const OPENS: [&str; 2] = ["csv", "json"];

impl SamLabApp {
    /// Opens what arrived and saves the weights that came back (once a frame).
    pub(super) fn poll_files(&mut self) {
        let arrived: Vec<IncomingFile> = std::mem::take(&mut *self.desk.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for file in arrived {
            self.open_incoming(file);
        }
        if let Some(worker) = &mut self.desk.csv {
            worker.work(web_time::Instant::now() + CSV_SLICE);
            let mut read = Vec::new();
            while let Some(r) = worker.try_recv() {
                read.push(r);
            }
            self.desk.reading -= read.len().min(self.desk.reading);
            for source in read {
                self.open_csv(source);
            }
        }
        let saving = std::mem::take(&mut self.desk.saving);
        for i in saving {
            match self.lab.take_weights(i) {
                Some(text) => {
                    let name = format!("samlab-weights-run{}.json", i + 1);
                    self.save(&name, text.as_bytes(), "application/json", &format!("weights of run {}", i + 1));
                }
                None if self.lab.runs.get(i).is_some_and(|r| r.run.is_some()) => self.desk.saving.push(i),
                None => self.say(Message::error(format!("cannot save the weights of run {}: it has none", i + 1))),
            }
        }
    }

    pub(super) fn apply_file_command(&mut self, c: FileCommand) {
        match c {
            FileCommand::Open { weights_into } => {
                self.desk.weights_into = Some(weights_into);
                if let Err(e) = self.platform.pick_file(&OPENS) {
                    self.say(Message::error(format!("cannot open a file: {e}")));
                }
            }
            FileCommand::OpenPath { weights_into } => {
                self.desk.weights_into = Some(weights_into);
                let path = self.settings.file_path.clone();
                self.platform.read_path(std::path::PathBuf::from(path));
            }
            FileCommand::SaveWeights(i) => match self.lab.request_weights(i) {
                Ok(()) => self.desk.saving.push(i),
                Err(e) => self.say(Message::error(format!("cannot save the weights: {e}"))),
            },
        }
    }

    /// Opens one file by what it is (see the module's comment).
    pub fn open_incoming(&mut self, file: IncomingFile) {
        let IncomingFile { name, bytes } = file;
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => return self.say(Message::error(format!("cannot open {name}: {e}"))),
        };
        let json = if name.to_ascii_lowercase().ends_with(".csv") { None } else { serde_json::from_slice::<serde_json::Value>(&bytes).ok() };
        match json {
            None => self.read_csv(name, bytes),
            Some(v) if v.get("layers").is_some() => {
                let i = self.desk.weights_into.take().unwrap_or(self.settings.selected);
                let text = String::from_utf8_lossy(&bytes);
                match self.lab.load_weights(i, &text, &name) {
                    Ok(what) => self.say(Message::info(format!("{what} from {name}"))),
                    Err(e) => self.say(Message::error(format!("ignored the weights ({}); run {} is unchanged", crate::error::one_line(&e.to_string()), i + 1))),
                }
            }
            Some(_) => self.load_text(&String::from_utf8_lossy(&bytes)),
        }
    }

    /// Whether a CSV file the user opened is still being read.
    pub fn is_reading_files(&self) -> bool {
        self.desk.is_reading()
    }

    /// Sends a CSV file to the worker; `poll_files` opens it once read.
    fn read_csv(&mut self, name: String, bytes: Vec<u8>) {
        let worker = self.desk.csv.get_or_insert_with(|| {
            Worker::resumable("samlab-csv", |(name, bytes): (String, Vec<u8>)| async move {
                let read = crate::data::user::register_in_pieces(&name, &bytes).await;
                read.map_err(|e| crate::error::one_line(&e.to_string()))
            })
        });
        worker.send((name, bytes));
        self.desk.reading += 1;
    }

    /// A dataset of the user's, read: every run restarts on it (the model, seed and label noise
    /// stay). A file that could not be read changes nothing.
    fn open_csv(&mut self, read: ReadCsv) {
        match read {
            Ok(source) => {
                let what = source.describe();
                let mut shared = self.lab.state.shared.clone();
                if shared.dataset.csv.as_ref() == Some(&source) {
                    // The file a lab named: its runs can be built now.
                    self.lab.rebuild_all();
                } else {
                    shared.dataset = DataConfig { label_noise: shared.dataset.label_noise, ..DataConfig::csv(source) };
                    if let Err(e) = self.lab.set_shared(shared) {
                        self.say(Message::error(format!("{what} not opened: {e}")));
                        return;
                    }
                }
                match self.lab.data_error.clone() {
                    None => self.say(Message::info(format!("loaded {what}: every run restarts on it"))),
                    Some(e) => self.say(Message::error(e)),
                }
            }
            Err(e) => self.say(Message::error(format!("ignored the file ({e}); nothing changed"))),
        }
    }
}
