//! `samlab lab check <file-or-link>`: what the app would open from a lab file, a run config or
//! a link, by the same parsing and validation (`LabState::open_text`, `LabState::from_hash`),
//! so that the browser's link path can be tested and debugged without a browser.

use super::values;
use crate::error::{Error, Result};
use crate::lab::state::{LabState, MAX_LAB_TEXT, run_bytes};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Prints what the app would open from a lab file, a run config (as `train --config` reads)
    /// or a link (a URL with #v1:…, or the hash alone), and what it would ignore and why.
    /// Exits with status 2 when it would open nothing.
    Check {
        /// A file, or a link: anything containing "#v" or starting with "v1:".
        #[arg(value_parser = values::path)]
        input: String,
        /// Print the settings that would open as JSON (a lab file) on stdout instead.
        #[arg(long)]
        json: bool,
        /// Only the exit status and errors.
        #[arg(short, long)]
        quiet: bool,
    },
}

pub fn run(command: &LabCommand) -> Result<i32> {
    let LabCommand::Check { input, json, quiet } = command;
    let (state, notes, source) = open(input)?;
    if *json {
        println!("{}", state.to_json());
    } else if !quiet {
        let s = &state.shared;
        println!(
            "{source}: would open {} run(s) on {} ({} samples{}), hidden {:?} {:?}, seed {}, backend {:?}",
            state.runs.len(),
            s.dataset.title(),
            state.runs.first().map_or(0, |r| r.config(s).n_samples()),
            if s.dataset.label_noise > 0.0 { format!(", label noise {}", s.dataset.label_noise) } else { String::new() },
            s.model.hidden,
            s.model.activation,
            s.seed,
            s.backend
        );
        for (i, r) in state.runs.iter().enumerate() {
            let cfg = r.config(s);
            println!(
                "  run {}: {} lr {} batch {} {} steps, about {} MiB",
                i + 1,
                r.label(),
                r.optimizer.lr,
                r.batch,
                cfg.total_steps(),
                run_bytes(&cfg).div_ceil(1 << 20)
            );
        }
    }
    for n in &notes {
        eprintln!("warning: {n}");
    }
    Ok(0)
}

/// The state the app would open from `input`, its notes, and what it was (for the report).
fn open(input: &str) -> Result<(LabState, Vec<String>, String)> {
    let link = input.contains("#v") || input.starts_with("v1:") || input.starts_with('#');
    if link {
        let hash = input.rsplit_once('#').map_or(input, |(_, h)| h);
        return match LabState::from_hash(hash)? {
            Some((state, notes)) => Ok((state, notes, "link".into())),
            None => Err(Error::invalid("link", input, "a link whose hash holds lab settings (#v1:…)")),
        };
    }
    let text = values::read_limited(input, MAX_LAB_TEXT as u64)?;
    let (state, notes) = LabState::open_text(&text).map_err(|e| match e {
        Error::Json { message, .. } => Error::Json { what: crate::error::path_shown(input), message },
        other => other,
    })?;
    Ok((state, notes, crate::error::path_shown(input)))
}
