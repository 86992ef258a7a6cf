//! The desktop: files in the working directory, no URL, status in the log.

use super::{Platform, StatusReport};
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct NativePlatform {
    last_log: std::cell::Cell<Option<web_time::Instant>>,
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
