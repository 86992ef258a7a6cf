//! How the command line takes its input and gives its output: value parsers that state their
//! range, the enumerated flags as clap `ValueEnum`s (so `--help` lists them), clap errors as one
//! line naming the flag, size-limited reads, `-` for standard output, and progress that is a
//! bar on a terminal and a plain line every few seconds otherwise.

use crate::config::{Backend, DatasetName};
use crate::error::{Error, Result, one_line, quoted};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use samlab_core::value_enum;
use std::io::{IsTerminal, Read};

/// Largest config, trial, manifest or result file read (a metrics file used as a config, with
/// its capped history, is a few MB).
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;
/// Largest params or batch file read (about 12 million values).
pub const MAX_DATA_BYTES: u64 = 256 << 20;

/// Reads a text file of at most `limit` bytes; a longer one (or an endless one such as
/// /dev/zero) is refused after `limit` bytes.
pub fn read_limited(path: &str, limit: u64) -> Result<String> {
    if path.is_empty() {
        return Err(Error::invalid("path", "", "a file name"));
    }
    read_bounded(std::path::Path::new(path), limit).map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::InvalidData => Error::Data(format!("{}: {e}", crate::error::path_shown(path))),
        _ => Error::io(path, e),
    })
}

/// `std::fs::read_to_string` with a size limit: an `io::Error` of kind `FileTooLarge` beyond it.
pub fn read_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, format!("larger than the {} MiB this command reads", limit >> 20)));
    }
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))
}

/// Where `bench` runs, and `experiment`'s backends (`both`: cost on the CPU and the GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backends {
    Cpu,
    Gpu,
    Auto,
    Both,
}
value_enum!(Backends { Backends::Cpu => "cpu", Backends::Gpu => "gpu", Backends::Auto => "auto", Backends::Both => "both" });

impl Backends {
    pub fn list(self) -> Vec<Backend> {
        match self {
            Backends::Cpu => vec![Backend::Cpu],
            Backends::Gpu => vec![Backend::Gpu],
            Backends::Auto => vec![Backend::Auto],
            Backends::Both => vec![Backend::Cpu, Backend::Gpu],
        }
    }
}

/// An integer in LO..=HI (u64 flags).
pub fn int<const LO: u64, const HI: u64>(s: &str) -> std::result::Result<u64, String> {
    s.parse::<u64>().ok().filter(|v| (LO..=HI).contains(v)).ok_or_else(|| range_phrase(LO, HI))
}

/// An integer in LO..=HI (usize flags).
pub fn size<const LO: usize, const HI: usize>(s: &str) -> std::result::Result<usize, String> {
    s.parse::<usize>().ok().filter(|v| (LO..=HI).contains(v)).ok_or_else(|| range_phrase(LO as u64, HI as u64))
}

fn range_phrase(lo: u64, hi: u64) -> String {
    if hi == u64::MAX { format!("an integer ≥ {lo}") } else { format!("an integer from {lo} to {hi}") }
}

/// A finite number (its range is checked with the setting it belongs to).
pub fn number(s: &str) -> std::result::Result<f64, String> {
    s.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| "a finite number such as 0.05 or 1e-3".to_string())
}

/// What `--dataset` names: a built-in set, or a CSV file of the user's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetArg {
    Builtin(DatasetName),
    File(String),
}

/// `--dataset`: a built-in name (mnist for mnist5k), or a path ending in .csv.
pub fn dataset(s: &str) -> std::result::Result<DatasetArg, String> {
    let key = s.to_ascii_lowercase();
    if let Some(d) = DatasetName::ALL.into_iter().find(|d| d.as_str() == key || (key == "mnist" && *d == DatasetName::Mnist5k)) {
        return Ok(DatasetArg::Builtin(d));
    }
    if key.ends_with(".csv") && !s.contains('\0') {
        return Ok(DatasetArg::File(s.to_string()));
    }
    let names: Vec<&str> = DatasetName::ALL.iter().map(|d| d.as_str()).collect();
    Err(format!("one of {}, or a path to a .csv file", names.join(", ")))
}

impl DatasetArg {
    /// The data config this names (a file is read, at most `data::user::MAX_CSV_BYTES`, and
    /// kept for the process); `base` keeps its other settings.
    pub fn apply(&self, base: &mut crate::config::DataConfig) -> Result<()> {
        match self {
            DatasetArg::Builtin(d) => {
                base.name = *d;
                base.csv = None;
            }
            DatasetArg::File(path) => {
                let text = read_limited(path, crate::data::user::MAX_CSV_BYTES)?;
                let source = crate::data::user::register(&crate::data::user::file_name(path), text.as_bytes())?;
                base.name = DatasetName::Csv;
                base.csv = Some(source);
            }
        }
        Ok(())
    }
}

/// A file to read: not empty.
pub fn path(s: &str) -> std::result::Result<String, String> {
    if s.is_empty() || s.contains('\0') { Err("a file name (not empty)".into()) } else { Ok(s.to_string()) }
}

/// A file to write, or `-` for standard output.
pub fn out_path(s: &str) -> std::result::Result<String, String> {
    path(s).map_err(|_| "a file name, or - for standard output".to_string())
}

/// A clap error as one line naming the flag and what it allows.
pub fn clap_line(e: &clap::Error) -> String {
    let get = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    // "--seeds <SEEDS>" → "--seeds"; a positional keeps its "<NAME>".
    let arg = get(ContextKind::InvalidArg).map(|a| a.split_whitespace().next().unwrap_or_default().to_string()).unwrap_or_else(|| "argument".into());
    let value = get(ContextKind::InvalidValue).unwrap_or_default();
    let line = match e.kind() {
        ErrorKind::ValueValidation => {
            let allowed = std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_else(|| "see --help".into());
            format!("invalid {arg} = {}: allowed {allowed}", shown(&value))
        }
        ErrorKind::InvalidValue => {
            let allowed = match get(ContextKind::ValidValue) {
                Some(v) => format!("one of {v}"),
                None => "a value (see --help)".into(),
            };
            format!("invalid {arg} = {}: allowed {allowed}", shown(&value))
        }
        ErrorKind::UnknownArgument => {
            let tip = get(ContextKind::SuggestedArg).map_or(String::new(), |s| format!("; did you mean {s}?"));
            format!("unexpected argument {}{tip} (see --help for the flags)", quoted(&arg))
        }
        ErrorKind::InvalidSubcommand => {
            let tip = get(ContextKind::SuggestedSubcommand).map_or(String::new(), |s| format!("; did you mean {s}?"));
            format!("unknown command {}{tip} (see samlab --help)", quoted(&get(ContextKind::InvalidSubcommand).unwrap_or_default()))
        }
        ErrorKind::MissingRequiredArgument => {
            format!("missing {}: required (see --help)", get(ContextKind::InvalidArg).unwrap_or_default().replace('\n', ", "))
        }
        _ => {
            let text = e.to_string();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
            format!("{} (see --help)", first.trim_start_matches("error: "))
        }
    };
    one_line(&line)
}

/// A value a user typed, quoted like `quoted`, with "" shown as such.
fn shown(value: &str) -> String {
    if value.is_empty() { "\"\"".into() } else { quoted(value) }
}

/// Progress on stderr: an indicatif bar on a terminal, a plain line every `PLAIN_EVERY`
/// otherwise (a log file or CI), nothing with --quiet.
pub fn progress_target(quiet: bool) -> indicatif::ProgressDrawTarget {
    if quiet {
        indicatif::ProgressDrawTarget::hidden()
    } else if std::io::stderr().is_terminal() {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::term_like(Box::new(PlainLines::default()))
    }
}

/// Seconds between plain progress lines.
pub const PLAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A "terminal" that prints the bar's line to stderr at most every `PLAIN_EVERY`.
#[derive(Debug, Default)]
struct PlainLines {
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl indicatif::TermLike for PlainLines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        // The first draw is skipped (it is 0/N); then one line every PLAIN_EVERY.
        match *last {
            None => *last = Some(now),
            Some(t) if now.duration_since(t) >= PLAIN_EVERY && !s.trim().is_empty() => {
                *last = Some(now);
                eprintln!("{}", s.trim());
            }
            _ => {}
        }
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.write_line(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_paths_say_what_they_allow() {
        assert_eq!(int::<1, 100>("5"), Ok(5));
        assert_eq!(int::<1, 100>("-1").unwrap_err(), "an integer from 1 to 100");
        assert_eq!(size::<0, { usize::MAX }>("x").unwrap_err(), "an integer ≥ 0");
        assert!(number("nan").is_err() && number("1e400").is_err() && number("-0.5").is_ok());
        assert!(path("").is_err() && out_path("-").is_ok());
    }

    #[test]
    fn reads_refuse_files_beyond_the_limit() {
        let e = read_limited("/dev/zero", 1 << 20).unwrap_err().to_string();
        assert!(e.contains("larger than the 1 MiB"), "{e}");
        assert!(read_limited("", 10).unwrap_err().to_string().contains("path"));
    }
}
