//! The list of runs: colour, name, progress, status, and per-run play/pause/step/reset/
//! duplicate/remove; adding a run; the lab-wide controls.

use super::{Command, run_color, run_name};
use crate::config::OptimizerKind;
use crate::lab::{Lab, MAX_RUNS};
use crate::run::RunStatus;
use egui::{Color32, RichText};

#[derive(Default)]
pub struct RunsPanel {
    add_kind: Option<OptimizerKind>,
}

impl RunsPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, lab: &Lab, selected: usize, out: &mut Vec<Command>) {
        ui.horizontal_wrapped(|ui| {
            let any_playing = lab.runs.iter().any(|r| r.playing);
            if any_playing {
                if ui.button("Pause all").on_hover_text("Pause every run").clicked() {
                    out.push(Command::PlayAll(false));
                }
            } else if ui.button("Play all").on_hover_text("Resume every run").clicked() {
                out.push(Command::PlayAll(true));
            }
            if ui.button("Reset all").on_hover_text("Every run back to the shared initial weights and the settings it started with, history cleared").clicked()
            {
                out.push(Command::ResetAll);
            }
            if ui.button("New seed").on_hover_text("A new seed: new toy data, label noise, initial weights and batch order for every run").clicked() {
                out.push(Command::NewSeed);
            }
        });
        ui.add_space(4.0);
        for (i, r) in lab.runs.iter().enumerate() {
            let color = run_color(&r.spec);
            let frame = egui::Frame::group(ui.style()).stroke(egui::Stroke::new(
                if i == selected { 2.0 } else { 1.0 },
                if i == selected { color } else { ui.visuals().widgets.noninteractive.bg_stroke.color },
            ));
            frame.show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.horizontal(|ui| {
                    let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                    ui.painter().rect_filled(rect, 3.0, color);
                    let name = run_name(i, &r.spec);
                    if ui.selectable_label(i == selected, RichText::new(name).strong()).on_hover_text(r.spec.optimizer.kind.describe()).clicked() {
                        out.push(Command::Select(i));
                    }
                });
                match (&r.run, &r.error) {
                    (Some(run), _) => {
                        let total = run.total_steps().max(1);
                        let done = run.completed_steps();
                        let spe = run.steps_per_epoch().max(1);
                        let mut text = format!("step {done}/{total} · epoch {:.1}", done as f64 / spe as f64);
                        if let Some(e) = run.history.last_eval() {
                            text += &format!(" · test {:.1} %", 100.0 * e.test_acc);
                        }
                        ui.add(egui::ProgressBar::new(done as f32 / total as f32).text(text).desired_height(16.0));
                        match &run.status {
                            RunStatus::Diverged(msg) => {
                                ui.colored_label(Color32::from_rgb(0xe1, 0x57, 0x59), format!("stopped: {msg}"));
                            }
                            RunStatus::Finished => {
                                ui.label(RichText::new("finished").weak());
                            }
                            RunStatus::Running => {}
                        }
                        if let Some(n) = &r.note {
                            ui.colored_label(Color32::from_rgb(0xf2, 0x8e, 0x2b), n);
                        }
                        if let Some(e) = &r.error {
                            ui.colored_label(Color32::from_rgb(0xe1, 0x57, 0x59), e);
                        }
                    }
                    (None, Some(e)) => {
                        ui.colored_label(Color32::from_rgb(0xe1, 0x57, 0x59), format!("cannot start: {e}"));
                    }
                    (None, None) => {}
                }
                ui.horizontal_wrapped(|ui| {
                    let can_train = r.run.as_ref().is_some_and(|run| !run.is_done());
                    if r.playing {
                        if ui.small_button("Pause").on_hover_text("Pause this run").clicked() {
                            out.push(Command::Play(i, false));
                        }
                    } else if ui.add_enabled(can_train, egui::Button::new("Play").small()).on_hover_text("Train this run").clicked() {
                        out.push(Command::Play(i, true));
                    }
                    if ui.add_enabled(can_train, egui::Button::new("Step").small()).on_hover_text("One optimizer step (pauses the run)").clicked() {
                        out.push(Command::Step(i));
                    }
                    if ui
                        .small_button("Reset")
                        .on_hover_text(
                            "Back to the shared initial weights and the settings the run started with (live changes undone); the same run again, step for step",
                        )
                        .clicked()
                    {
                        out.push(Command::Reset(i));
                    }
                    if ui
                        .add_enabled(lab.can_add(), egui::Button::new("Duplicate").small())
                        .on_hover_text("A copy of this run's settings, from the same initial weights")
                        .clicked()
                    {
                        out.push(Command::Duplicate(i));
                    }
                    if ui.add_enabled(lab.runs.len() > 1, egui::Button::new("Remove").small()).on_hover_text("Remove this run").clicked() {
                        out.push(Command::Remove(i));
                    }
                });
            });
        }
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            let kind = self.add_kind.get_or_insert(OptimizerKind::Sam);
            egui::ComboBox::from_id_salt("add_kind")
                .selected_text(kind.label())
                .show_ui(ui, |ui| {
                    for k in OptimizerKind::ALL {
                        ui.selectable_value(kind, k, k.label()).on_hover_text(k.describe());
                    }
                })
                .response
                .accessible_name("Optimizer of the new run");
            let kind = *kind;
            if ui
                .add_enabled(lab.can_add(), egui::Button::new("Add run"))
                .on_hover_text(format!("Add a {} run (at most {MAX_RUNS}), from the shared initial weights", kind.label()))
                .clicked()
            {
                out.push(Command::AddRun(kind));
            }
        });
    }
}
