//! The desktop: files in the working directory, no URL, status in the log.

use super::{Platform, StatusReport};
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct NativePlatform;

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

    fn report_status(&self, _status: &StatusReport) {}
}
