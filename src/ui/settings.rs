//! Settings: the shared data/model/seed, and the selected run's optimizer and schedule. Every
//! control's range keeps the config valid (m only among divisors of the batch, positive learning
//! rates and radii, label noise below 1), so nothing typed here can produce an invalid run.
//! The live hyperparameters apply to a training run from its next step (the lab records the
//! change); the other controls say that they restart the run. A slider being dragged edits a
//! draft that applies when it is let go (one change, not one per frame).

use super::{Command, help};
use crate::config::{Backend, DatasetName, NormEstimator, OptimizerKind, RwDescent, Schedule, divisors};
use crate::lab::{Lab, RunSpec, Shared};
use crate::model::Activation;
use egui::{Slider, Ui};

const WIDTHS: [usize; 8] = [4, 8, 16, 32, 64, 128, 256, 512];

#[derive(Default)]
pub struct SharedPanel;

impl SharedPanel {
    pub fn ui(&mut self, ui: &mut Ui, lab: &Lab, out: &mut Vec<Command>) {
        let before = lab.state.shared.clone();
        let mut s: Shared = before.clone();
        ui.label(egui::RichText::new(help::RESTARTS_ALL).weak());
        egui::Grid::new("shared_grid").num_columns(2).spacing([8.0, 4.0]).show(ui, |ui| {
            row(ui, "Dataset", help::DATASET, |ui| {
                egui::ComboBox::from_id_salt("dataset")
                    .selected_text(s.dataset.title())
                    .show_ui(ui, |ui| {
                        for d in DatasetName::ALL {
                            if ui.selectable_label(s.dataset.name == d, d.as_str()).clicked() {
                                s.dataset.name = d;
                                s.dataset.csv = None;
                            }
                        }
                        // The user's CSV files read so far (File ▸ Open file…, or dropped).
                        for src in crate::data::user::sources() {
                            if ui.selectable_label(s.dataset.csv.as_ref() == Some(&src), &src.name).on_hover_text(src.describe()).clicked() {
                                s.dataset = crate::config::DataConfig { label_noise: s.dataset.label_noise, ..crate::config::DataConfig::csv(src) };
                            }
                        }
                    })
                    .response
            });
            if s.dataset.name.is_toy() {
                row(ui, "Samples", help::SAMPLES, |ui| ui.add(Slider::new(&mut s.dataset.samples, 100..=5000).logarithmic(true)));
                row(ui, "Input noise", help::INPUT_NOISE, |ui| ui.add(Slider::new(&mut s.dataset.input_noise, 0.0..=1.0)));
            }
            row(ui, "Label noise", help::LABEL_NOISE, |ui| {
                ui.add(Slider::new(&mut s.dataset.label_noise, 0.0..=0.9).custom_formatter(|v, _| format!("{:.0} %", 100.0 * v)).step_by(0.05))
            });
            row(ui, "Hidden layers", help::HIDDEN, |ui| {
                let mut n = s.model.hidden.len();
                let r = ui.add(egui::DragValue::new(&mut n).range(1..=4).suffix(" layers"));
                if n != s.model.hidden.len() {
                    let last = *s.model.hidden.last().unwrap_or(&64);
                    s.model.hidden.resize(n.clamp(1, 4), last);
                }
                r
            });
            for l in 0..s.model.hidden.len() {
                let w = &mut s.model.hidden[l];
                row(ui, &format!("  width {}", l + 1), help::HIDDEN, |ui| {
                    egui::ComboBox::from_id_salt(("width", l))
                        .selected_text(w.to_string())
                        .show_ui(ui, |ui| {
                            for c in WIDTHS {
                                ui.selectable_value(w, c, c.to_string());
                            }
                        })
                        .response
                });
            }
            row(ui, "Activation", help::ACTIVATION, |ui| {
                egui::ComboBox::from_id_salt("activation")
                    .selected_text(s.model.activation.name())
                    .show_ui(ui, |ui| {
                        for a in Activation::ALL {
                            ui.selectable_value(&mut s.model.activation, a, a.name());
                        }
                    })
                    .response
            });
            row(ui, "Engine", help::ENGINE, |ui| {
                egui::ComboBox::from_id_salt("engine")
                    .selected_text(format!("{:?}", s.backend).to_lowercase())
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut s.backend, Backend::Auto, "auto");
                        ui.selectable_value(&mut s.backend, Backend::Gpu, "gpu");
                        ui.selectable_value(&mut s.backend, Backend::Cpu, "cpu");
                    })
                    .response
            });
            row(ui, "Seed", help::SEED, |ui| ui.add(egui::DragValue::new(&mut s.seed).range(0..=999_999)));
        });
        if s != before {
            out.push(Command::SetShared(s));
        }
    }
}

#[derive(Default)]
pub struct RunSettingsPanel {
    /// The settings of run `.0` while one of its sliders is dragged.
    draft: Option<(usize, RunSpec)>,
}

/// A grid row: the label, then the control named after it (for screen readers and tests).
fn row(ui: &mut Ui, label: &str, tip: &str, add: impl FnOnce(&mut Ui) -> egui::Response) -> egui::Response {
    ui.label(label).on_hover_text(tip);
    let r = add(ui).accessible_name(label.trim()).on_hover_text(tip);
    ui.end_row();
    r
}

/// A tooltip and what changing the control does to a training run.
fn live(tip: &str) -> String {
    format!("{tip}\n\n{}", help::LIVE)
}

fn restarts(tip: &str) -> String {
    format!("{tip}\n\n{}", help::RESTARTS)
}

impl RunSettingsPanel {
    pub fn ui(&mut self, ui: &mut Ui, lab: &Lab, i: usize, out: &mut Vec<Command>) {
        let Some(before) = lab.state.runs.get(i) else { return };
        let mut s: RunSpec = match &self.draft {
            Some((j, d)) if *j == i => d.clone(),
            _ => before.clone(),
        };
        let mut drag = false;
        ui.label("Optimizer").on_hover_text(help::RESTARTS);
        ui.horizontal_wrapped(|ui| {
            for k in OptimizerKind::ALL {
                if ui.selectable_label(s.optimizer.kind == k, k.label()).on_hover_text(restarts(k.describe())).clicked() {
                    s.optimizer.kind = k;
                }
            }
        });
        ui.add_space(4.0);
        egui::Grid::new(("run_grid", i)).num_columns(2).spacing([8.0, 4.0]).show(ui, |ui| {
            let o = &mut s.optimizer;
            drag |= row(ui, "Learning rate η", &live(help::LR), |ui| ui.add(Slider::new(&mut o.lr, 1e-4..=1.0).logarithmic(true))).dragged();
            drag |= row(ui, "Momentum μ", &live(help::MOMENTUM), |ui| ui.add(Slider::new(&mut o.momentum, 0.0..=0.99))).dragged();
            drag |= row(ui, "Weight decay", &live(help::WEIGHT_DECAY), |ui| {
                ui.add(Slider::new(&mut o.weight_decay, 0.0..=1e-2).logarithmic(true).smallest_positive(1e-6))
            })
            .dragged();
            drag |= row(ui, "Schedule", &live(help::SCHEDULE), |ui| {
                egui::ComboBox::from_id_salt(("schedule", i))
                    .selected_text(format!("{:?}", o.schedule).to_lowercase())
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut o.schedule, Schedule::Constant, "constant");
                        ui.selectable_value(&mut o.schedule, Schedule::Cosine, "cosine");
                    })
                    .response
            })
            .dragged();
            if o.kind.uses_rho() {
                drag |=
                    row(ui, "Radius ρ", &live(help::RHO), |ui| ui.add(Slider::new(&mut o.rho, 0.0..=2.0).logarithmic(true).smallest_positive(1e-4))).dragged();
            }
            if o.kind.uses_m() {
                let batch = s.batch;
                drag |= row(ui, "Micro-batch m", &restarts(help::M), |ui| {
                    egui::ComboBox::from_id_salt(("m", i))
                        .selected_text(o.m.to_string())
                        .show_ui(ui, |ui| {
                            for d in divisors(batch) {
                                ui.selectable_value(&mut o.m, d, format!("{d}  (M = {})", batch / d));
                            }
                        })
                        .response
                })
                .dragged();
            }
            if o.kind == OptimizerKind::Asam {
                drag |= row(ui, "ξ", &live(help::XI), |ui| ui.add(Slider::new(&mut o.xi, 1e-4..=1.0).logarithmic(true))).dragged();
            }
            if o.kind == OptimizerKind::Rwsam {
                let r = &mut o.rwsam;
                let mut target = r.target_ess.is_some();
                drag |= row(ui, "Target ESS", &live(help::TARGET_ESS), |ui| ui.checkbox(&mut target, "solve λ for ESS = r·B")).dragged();
                if target {
                    let mut ratio = r.target_ess.unwrap_or(0.25);
                    drag |= row(ui, "  r", &live(help::TARGET_ESS), |ui| ui.add(Slider::new(&mut ratio, 0.01..=1.0).logarithmic(true))).dragged();
                    r.target_ess = Some(ratio);
                } else {
                    r.target_ess = None;
                    drag |= row(ui, "Temperature λ", &live(help::LAMBDA), |ui| {
                        ui.add(Slider::new(&mut r.lambda, -100.0..=100.0).logarithmic(true).smallest_positive(0.01))
                    })
                    .dragged();
                }
                drag |= row(ui, "Scores", &live(help::NORMALIZE), |ui| ui.checkbox(&mut r.normalize, "divide by batch mean")).dragged();
                drag |= row(ui, "Norm estimator", &restarts(help::ESTIMATOR), |ui| {
                    egui::ComboBox::from_id_salt(("estimator", i))
                        .selected_text(r.estimator.as_str())
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut r.estimator, NormEstimator::Exact, "exact");
                            ui.selectable_value(&mut r.estimator, NormEstimator::FiniteDifference, "finite-difference");
                        })
                        .response
                })
                .dragged();
                if r.estimator == NormEstimator::FiniteDifference {
                    drag |= row(ui, "  δ", &live(help::DELTA), |ui| ui.add(Slider::new(&mut r.delta, 1e-5..=1e-1).logarithmic(true))).dragged();
                }
                drag |= row(ui, "Descent", &live(help::DESCENT), |ui| {
                    egui::ComboBox::from_id_salt(("descent", i))
                        .selected_text(format!("{:?}", r.descent).to_lowercase())
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut r.descent, RwDescent::Uniform, "uniform");
                            ui.selectable_value(&mut r.descent, RwDescent::Weighted, "weighted");
                        })
                        .response
                })
                .dragged();
            }
            let max_batch = lab.state.max_batch().max(1);
            drag |= row(ui, "Batch B", &restarts(help::BATCH), |ui| {
                let mut choices: Vec<usize> = (0..13).map(|k| 1usize << k).filter(|&b| b <= max_batch).collect();
                if !choices.contains(&s.batch) {
                    choices.push(s.batch);
                    choices.sort_unstable();
                }
                egui::ComboBox::from_id_salt(("batch", i))
                    .selected_text(s.batch.to_string())
                    .show_ui(ui, |ui| {
                        for b in choices {
                            ui.selectable_value(&mut s.batch, b, b.to_string());
                        }
                    })
                    .response
            })
            .dragged();
            match s.steps {
                Some(mut steps) => {
                    drag |= row(ui, "Steps", &restarts("Length of the run in steps (from a loaded config)."), |ui| {
                        ui.add(egui::DragValue::new(&mut steps).range(1..=10_000_000))
                    })
                    .dragged();
                    s.steps = Some(steps);
                }
                None => drag |= row(ui, "Epochs", &restarts(help::EPOCHS), |ui| ui.add(Slider::new(&mut s.epochs, 1..=1000).logarithmic(true))).dragged(),
            }
            drag |= row(ui, "Evaluate every", &restarts(help::EVAL_EVERY), |ui| {
                ui.add(
                    Slider::new(&mut s.eval_every, 0..=1000)
                        .logarithmic(true)
                        .custom_formatter(|v, _| if v < 0.5 { "epoch".into() } else { format!("{v:.0} steps") }),
                )
            })
            .dragged();
            drag |= row(ui, "Measure every", &restarts(help::MEASURE_EVERY), |ui| {
                ui.add(
                    Slider::new(&mut s.measure_every, 0..=2000)
                        .logarithmic(true)
                        .custom_formatter(|v, _| if v < 0.5 { "never".into() } else { format!("{v:.0} steps") }),
                )
            })
            .dragged();
            if s.measure_every > 0 {
                row(ui, "Hessian spectrum", &restarts(help::SPECTRUM), |ui| ui.checkbox(&mut s.spectrum, "eigenvalue density"));
            }
        });
        if let Some(m) = lab.runs.get(i).and_then(|r| r.measuring.as_ref()) {
            ui.label(egui::RichText::new(format!("measured on {} training samples, off the UI thread where the platform allows", m.eval_samples)).weak())
                .on_hover_text(help::MEASURE_EVERY);
            if let Some(e) = &m.error {
                ui.colored_label(egui::Color32::from_rgb(0xe1, 0x57, 0x59), format!("measurement failed: {e}"));
            }
        }
        let last_ess = lab.runs.get(i).and_then(|r| r.run.as_ref()).and_then(|run| run.history.steps.last()).and_then(|st| st.ess);
        if s.optimizer.kind == OptimizerKind::Rwsam
            && let Some(ess) = last_ess
        {
            ui.label(format!("ESS at the last step: {ess:.1} of B = {}", s.batch)).on_hover_text(help::ESS);
        }
        let run = lab.runs.get(i).and_then(|r| r.run.as_ref());
        ui.label(egui::RichText::new("η, μ, weight decay, schedule, ρ, ξ and RW-SAM's λ, r, δ, scores, descent apply to a training run from its next step; the other settings restart it.").weak());
        if let Some(run) = run.filter(|r| !r.history.changes.is_empty()) {
            let changes = &run.history.changes;
            ui.label(egui::RichText::new("Changed while training (Reset returns to the settings of the start):").strong()).on_hover_text(help::LIVE_CHANGES);
            for c in changes.iter().rev().take(8) {
                ui.label(format!("step {}: {} {} → {}", c.step, c.field.trim_start_matches("optimizer."), c.old, c.new));
            }
            if changes.len() > 8 {
                ui.label(egui::RichText::new(format!("… and {} earlier (all in the metrics JSON)", changes.len() - 8)).weak());
            }
        }
        if drag {
            self.draft = Some((i, s));
        } else {
            self.draft = None;
            if s != *before {
                out.push(Command::SetSpec(i, s));
            }
        }
    }
}
