//! Running the built `samlab` binary from the CLI tests: the process, a private temporary path
//! per test, the success check and JSON output files.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn samlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_samlab")).args(args).output().expect("the samlab binary runs")
}

/// Runs `samlab args` and requires success (stderr in the failure message).
pub fn ok(args: &[&str]) -> Output {
    let o = samlab(args);
    assert!(o.status.success(), "samlab {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// A path in a directory of the calling test's own (test threads are named after their test,
/// and the directory after the test file), so tests running in parallel never share a file.
pub fn tmp(name: &str) -> PathBuf {
    let test = std::thread::current().name().unwrap_or("test").replace("::", "-");
    let dir = std::env::temp_dir().join(format!("samlab-{}-{}-{test}", env!("CARGO_CRATE_NAME"), std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
