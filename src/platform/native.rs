//! The desktop: files in the working directory, a file dialog (rfd through the XDG desktop
//! portal on Linux) and dropped files read on a thread of their own, no URL, status in the log.

use super::{Inbox, IncomingFile, MAX_OPEN_BYTES, Platform, StatusReport, deliver};
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct NativePlatform {
    last_log: std::cell::Cell<Option<web_time::Instant>>,
    inbox: std::cell::RefCell<Option<Inbox>>,
}

/// Reads a file (at most `MAX_OPEN_BYTES`, relative to the working directory) into an
/// `IncomingFile`. A CSV file is also parsed here, off the UI thread: the app's parse then finds
/// it read (`data::user::register` keeps files by name and checksum).
fn read(path: &Path) -> IncomingFile {
    let path = NativePlatform::resolve(&path.to_string_lossy());
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().to_string());
    let bytes = crate::cli::values::read_bounded(&path, MAX_OPEN_BYTES).map(String::into_bytes).map_err(|e| format!("{}: {e}", path.display()));
    if let Ok(b) = &bytes
        && name.to_ascii_lowercase().ends_with(".csv")
    {
        let _ = crate::data::user::register(&name, b);
    }
    IncomingFile { name, bytes }
}

/// Runs `f` on a thread of its own (a dialog or a read never holds up a frame).
fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new().name(name.into()).spawn(f).map(|_| ()).map_err(|e| format!("cannot start a thread: {e}"))
}

impl NativePlatform {
    fn resolve(path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) }
    }
}

impl Platform for NativePlatform {
    fn name(&self) -> &'static str {
        "desktop"
    }

    fn save_file(&self, file_name: &str, bytes: &[u8], _mime: &str) -> Result<String, String> {
        let path = Self::resolve(file_name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path.display().to_string())
    }

    fn load_file(&self, path: &str) -> Result<String, String> {
        let path = Self::resolve(path);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn can_load_files(&self) -> bool {
        true
    }

    fn url_hash(&self) -> Option<String> {
        None
    }

    fn attach_inbox(&self, inbox: Inbox) {
        *self.inbox.borrow_mut() = Some(inbox);
    }

    fn pick_file(&self, extensions: &[&str]) -> Result<(), String> {
        let inbox = self.inbox.borrow().clone().ok_or("no inbox")?;
        let extensions: Vec<String> = extensions.iter().map(|e| e.to_string()).collect();
        spawn("file dialog", move || {
            let dialog = rfd::FileDialog::new().add_filter(extensions.join(", "), &extensions);
            if let Some(path) = dialog.pick_file() {
                deliver(&inbox, read(&path));
            }
        })
    }

    fn receive_dropped(&self, file: egui::DroppedFileHandle) {
        self.read_path(file.path().to_path_buf());
    }

    fn read_path(&self, path: PathBuf) {
        let Some(inbox) = self.inbox.borrow().clone() else { return };
        let fallback = inbox.clone();
        let name = path.display().to_string();
        if let Err(e) = spawn("dropped file", move || deliver(&inbox, read(&path))) {
            deliver(&fallback, IncomingFile { name, bytes: Err(e) });
        }
    }

    fn set_url_hash(&self, _hash: &str) {}

    /// Logs the status every two seconds (`RUST_LOG=samlab::status=info`; the desktop smoke
    /// test reads it to see that training advances).
    fn report_status(&self, status: &StatusReport) {
        let now = web_time::Instant::now();
        if self.last_log.get().is_some_and(|t| now.duration_since(t).as_secs_f64() < 2.0) {
            return;
        }
        self.last_log.set(Some(now));
        log::info!(
            target: "samlab::status",
            "steps={} runs={} fps={:.0} steps_per_s={:.0} engine=\"{}\" renderer=\"{}\"",
            status.steps,
            status.runs,
            status.fps,
            status.steps_per_s,
            status.engine,
            status.renderer
        );
    }
}
