//! egui panels and plots. Panels read the lab and return `Command`s; the app applies them. No
//! engine logic lives here.
//!
//! Architecture invariant: `ui` draws and collects commands; it never mutates the lab, never
//! touches files, the URL or wgpu (those belong to `app` and `platform`).

pub mod data_view;
pub mod experiments;
pub mod files;
pub mod help;
pub mod landscape;
pub mod plots;
pub mod runs;
pub mod settings;
pub mod shortcuts;
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
    /// How the plots draw (smoothing, log y, only the selected run).
    SetPlots(crate::lab::state::PlotSettings),
    /// Compute the loss landscape around run i (grid), or on the line from run i to run j.
    Landscape(usize, Option<usize>),
    /// The landscape panel's directions, grid and range.
    SetLandscape(crate::lab::landscape::LandscapeSettings),
    SaveConfig,
    /// Load the settings from the file path field (desktop) or the pasted text (browser).
    LoadConfig,
    ExportJson,
    ExportCsv,
    /// Export the plot `name` whose screen rectangle is given (points), as PNG.
    ExportPng(String, egui::Rect),
    /// Write the settings into the URL (browser) or show the link text (desktop).
    ShareLink,
    /// Hide exactly these panels (the teaching link's choice; the others show).
    SetHidden(std::collections::BTreeSet<crate::lab::state::Panel>),
    /// Write the readable teaching link into the URL and copy it.
    ShareTeachingLink,
    DismissMessages,
    /// Run an experiment live: (experiment, seeds, quick).
    StartExperiment(crate::experiments::Experiment, usize, bool),
    StopExperiment,
    ExportExperimentJson,
    ExportExperimentMarkdown,
    /// The user's own files: data, weights (`files::FileCommand`).
    Files(files::FileCommand),
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

/// The layout's controls in the top bar: on a narrow screen, the switch between the plots and
/// the runs with their settings; when a link hid panels, the button that brings them back.
pub fn layout_controls_ui(ui: &mut egui::Ui, fold_side: bool, side_open: &mut bool, layout: &crate::lab::state::Layout, out: &mut Vec<Command>) {
    if fold_side {
        let text = if *side_open { "✕ Plots" } else { "☰ Runs & settings" };
        ui.toggle_value(side_open, text).on_hover_text("The runs and their settings, instead of the plots");
    }
    if !layout.hidden.is_empty() && ui.button("Show all panels").on_hover_text(format!("Hidden by the link: {}", layout.hidden_names())).clicked() {
        out.push(Command::SetHidden(Default::default()));
    }
}

/// The presets: a row of buttons, or a drop-down on a narrow screen.
pub fn presets_ui(ui: &mut egui::Ui, current: Option<Preset>, narrow: bool, out: &mut Vec<Command>) {
    ui.label("Presets:");
    let mut item = |ui: &mut egui::Ui, p: Preset| {
        if ui.selectable_label(current == Some(p), p.title()).on_hover_text(p.describe()).clicked() {
            out.push(Command::Preset(p));
        }
    };
    if narrow {
        egui::ComboBox::from_id_salt("preset_combo").selected_text(current.map_or("(changed)", Preset::title)).show_ui(ui, |ui| {
            Preset::ALL.into_iter().for_each(|p| item(ui, p));
        });
    } else {
        Preset::ALL.into_iter().for_each(|p| item(ui, p));
    }
}

/// The part of a screenshot under `rect` (points) as unmultiplied sRGBA: (width, height,
/// pixels), or `None` when it is off screen.
pub fn crop_screenshot(image: &egui::ColorImage, rect: egui::Rect, pixels_per_point: f32) -> Option<(usize, usize, Vec<u8>)> {
    let [w, h] = image.size;
    let at = |v: f32, max: usize, up: bool| ((if up { (v * pixels_per_point).ceil() } else { (v * pixels_per_point).floor() }).max(0.0) as usize).min(max);
    let (x0, y0, x1, y1) = (at(rect.min.x, w, false), at(rect.min.y, h, false), at(rect.max.x, w, true), at(rect.max.y, h, true));
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let mut rgba = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
    for y in y0..y1 {
        for px in &image.pixels[y * w + x0..y * w + x1] {
            rgba.extend_from_slice(&px.to_srgba_unmultiplied());
        }
    }
    Some((x1 - x0, y1 - y0, rgba))
}

/// "Test accuracy (%)" → "test-accuracy", for file names.
pub fn slug(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    s.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-")
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
