//! egui panels and plots. Panels read the lab and return `Command`s; the app applies them. No
//! engine logic lives here.
//!
//! Architecture invariant: `ui` draws and collects commands; it never mutates the lab, never
//! touches files, the URL or wgpu (those belong to `app` and `platform`).

pub mod data_view;
pub mod experiments;
pub mod help;
pub mod landscape;
pub mod plots;
pub mod runs;
pub mod settings;
pub mod status;

use crate::config::OptimizerKind;
use crate::lab::{Preset, RunSpec, Shared};
use egui::Color32;

/// Adds the built-in monospace font (Hack) as a fallback of the proportional family: it has
/// the mathematical signs the labels use (‖, ∇, ∈, ∝) that Ubuntu-Light lacks.
pub fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if fonts.font_data.contains_key("Hack")
        && let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional)
    {
        let at = family.iter().position(|f| f == "Ubuntu-Light").map_or(0, |i| i + 1);
        family.insert(at, "Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

/// A panel piece drawn later into a grid cell (plots, surfaces), collecting commands.
pub type Card<'a> = Box<dyn FnOnce(&mut egui::Ui, &mut Vec<Command>) + 'a>;

/// Something the user asked for; the app applies it after the frame is drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Preset(Preset),
    AddRun(OptimizerKind),
    Duplicate(usize),
    Remove(usize),
    Select(usize),
    Play(usize, bool),
    PlayAll(bool),
    Step(usize),
    Reset(usize),
    ResetAll,
    NewSeed,
    SetSpec(usize, RunSpec),
    SetShared(Shared),
    SetBudgetMs(f32),
    /// Compute the loss landscape around run i (grid), or on the line from run i to run j.
    Landscape(usize, Option<usize>),
    SaveConfig,
    /// Load the settings from the file path field (desktop) or the pasted text (browser).
    LoadConfig,
    ExportJson,
    ExportCsv,
    /// Export the plot `name` whose screen rectangle is given (points), as PNG.
    ExportPng(String, egui::Rect),
    /// Write the settings into the URL (browser) or show the link text (desktop).
    ShareLink,
    DismissMessages,
    /// Run an experiment live: (experiment, seeds, quick).
    StartExperiment(crate::experiments::Experiment, usize, bool),
    StopExperiment,
    ExportExperimentJson,
    ExportExperimentMarkdown,
}

/// Run colours, distinguishable on dark and light backgrounds.
pub const PALETTE: [Color32; 8] = [
    Color32::from_rgb(0x4e, 0x9a, 0xf1), // blue
    Color32::from_rgb(0xf2, 0x8e, 0x2b), // orange
    Color32::from_rgb(0x59, 0xa1, 0x4f), // green
    Color32::from_rgb(0xe1, 0x57, 0x59), // red
    Color32::from_rgb(0xb0, 0x7a, 0xa1), // purple
    Color32::from_rgb(0x76, 0xb7, 0xb2), // teal
    Color32::from_rgb(0xed, 0xc9, 0x48), // yellow
    Color32::from_rgb(0x9c, 0x75, 0x5f), // brown
];

pub fn run_color(spec: &RunSpec) -> Color32 {
    PALETTE[spec.color % PALETTE.len()]
}

/// "2. SAM": the run's number and label, as used by rows, legends and plots.
pub fn run_name(i: usize, spec: &RunSpec) -> String {
    format!("{}. {}", i + 1, spec.label())
}

/// Class colours of the data views (2D points and decision surfaces).
pub const CLASS_COLORS: [Color32; 4] =
    [Color32::from_rgb(0x3b, 0x82, 0xf6), Color32::from_rgb(0xef, 0x44, 0x44), Color32::from_rgb(0x22, 0xc5, 0x5e), Color32::from_rgb(0xea, 0xb3, 0x08)];

pub fn class_color(c: u32) -> Color32 {
    CLASS_COLORS[c as usize % CLASS_COLORS.len()]
}

/// A compact number: 0.05, 1.2e-4, 3.1e3.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if !v.is_finite() {
        format!("{v}")
    } else if (1e-3..1e4).contains(&v.abs()) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:.2e}")
    }
}
