//! The File menu: save and load the lab (a file on the desktop, a download and a paste box in
//! the browser), export metrics, share the lab as a link, and the teaching link: which panels
//! the link hides, and the link itself.

use super::Command;
use crate::lab::state::{Layout, Panel};

/// What the menu edits in place (text fields) besides the commands it returns.
pub struct FilesMenu<'a> {
    /// The desktop can read files (a path field) or not (the browser: a paste box).
    pub can_load_files: bool,
    pub file_path: &'a mut String,
    pub paste: &'a mut String,
    pub layout: &'a Layout,
}

impl FilesMenu<'_> {
    pub fn ui(self, ui: &mut egui::Ui, out: &mut Vec<Command>) {
        if self.can_load_files {
            ui.horizontal(|ui| {
                ui.label("Path");
                ui.add(egui::TextEdit::singleline(self.file_path).desired_width(180.0))
                    .accessible_name("Path")
                    .on_hover_text("A JSON file in the working directory (or an absolute path)");
            });
            ui.horizontal(|ui| {
                if ui.button("Save config").on_hover_text("Write every run's settings, the seed and the preset as JSON").clicked() {
                    out.push(Command::SaveConfig);
                }
                if ui.button("Load config").on_hover_text("Read the settings from the file (a lab file, or one run's config from `samlab train`)").clicked() {
                    out.push(Command::LoadConfig);
                }
            });
        } else {
            if ui.button("Download config").on_hover_text("Every run's settings, the seed and the preset as JSON").clicked() {
                out.push(Command::SaveConfig);
            }
            ui.label("Paste a saved config:");
            ui.add(egui::TextEdit::multiline(self.paste).desired_rows(3).desired_width(f32::INFINITY)).accessible_name("Pasted config");
            if ui.button("Load pasted config").clicked() {
                out.push(Command::LoadConfig);
            }
        }
        ui.horizontal(|ui| {
            if ui.button("Export metrics JSON").on_hover_text("Every run's config, status and history").clicked() {
                out.push(Command::ExportJson);
            }
            if ui.button("Export metrics CSV").on_hover_text("One row per run and evaluation").clicked() {
                out.push(Command::ExportCsv);
            }
        });
        if ui
            .button("Share link")
            .on_hover_text("The whole state in the URL (browser); on the desktop, the link fragment to paste after the page's address")
            .clicked()
        {
            out.push(Command::ShareLink);
        }
        ui.separator();
        ui.label("Teaching link: the panels it hides");
        ui.horizontal_wrapped(|ui| {
            for p in Panel::ALL {
                let mut hidden = self.layout.hidden.contains(&p);
                if ui.checkbox(&mut hidden, p.name()).on_hover_text("Hidden on this page and in the link (a button brings it back)").changed() {
                    let mut set = self.layout.hidden.clone();
                    if hidden {
                        set.insert(p);
                    } else {
                        set.remove(&p);
                    }
                    out.push(Command::SetHidden(set));
                }
            }
        });
        if ui
            .button("Share as teaching link")
            .on_hover_text("A short, readable link (preset=…&hide=…&view=…) that opens this preset with these panels hidden; a changed lab travels whole")
            .clicked()
        {
            out.push(Command::ShareTeachingLink);
        }
        ui.label(egui::RichText::new("Every plot has a PNG button.").weak());
    }
}

/// What the File menu's "Your data and weights" part asks for (the app reads and writes).
#[derive(Clone, Debug, PartialEq)]
pub enum FileCommand {
    /// Open a file with the dialog (desktop) or the file input (browser): a CSV dataset, a
    /// weights file (into run i) or a lab.
    Open { weights_into: usize },
    /// Open the file of the Path field the same way (desktop).
    OpenPath { weights_into: usize },
    /// Save run i's weights in the params format (`samlab train --save-params`).
    SaveWeights(usize),
}

/// Your own data and weights: open a CSV file, a weights file or a lab (also by dropping it on
/// the window), save the selected run's weights.
pub fn own_files_ui(ui: &mut egui::Ui, can_load_files: bool, runs: usize, selected: usize, out: &mut Vec<Command>) {
    ui.separator();
    ui.label("Your data and weights (or drop a file on the window)");
    let run = format!("run {}", selected + 1);
    ui.horizontal_wrapped(|ui| {
        let open = ui
            .button("Open file…")
            .on_hover_text(format!("A CSV dataset (x1,x2,label points or label,p0,… images), a weights file (into {run}, same network) or a saved lab"));
        if open.clicked() {
            out.push(Command::Files(FileCommand::Open { weights_into: selected }));
        }
        if can_load_files && ui.button("Open Path").on_hover_text("The file of the Path field, the same way").clicked() {
            out.push(Command::Files(FileCommand::OpenPath { weights_into: selected }));
        }
        let save = ui.add_enabled(selected < runs, egui::Button::new(format!("Save weights of {run}")));
        if save.on_hover_text("The params format of `samlab train --save-params`: reopen it here, or use it with samlab measure / landscape").clicked() {
            out.push(Command::Files(FileCommand::SaveWeights(selected)));
        }
    });
}
