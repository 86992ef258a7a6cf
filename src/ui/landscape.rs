//! The loss landscape panel: pick a run (or two), compute, watch the points fill in.

use super::{Command, help, run_name};
use crate::lab::Lab;
use crate::lab::landscape::{GRID, LandscapeView, RANGE, Shape};
use crate::metrics::png::{marching_squares, viridis};
use egui::{Color32, ColorImage, TextureHandle, TextureOptions, Ui};
use egui_plot::{Line, Plot, PlotImage, PlotPoint, PlotPoints, Points, VLine};

#[derive(Default)]
pub struct LandscapePanel {
    around: usize,
    to: usize,
    texture: Option<(u64, TextureHandle)>,
    /// Contour segments in (α, β), for the grid generation they were traced from.
    contours: Option<(u64, Vec<[[f64; 2]; 2]>)>,
}

/// Contour lines at 8 levels evenly spaced in log-loss over the evaluated points.
fn contour_segments(v: &LandscapeView, axis: &[f64]) -> Vec<[[f64; 2]; 2]> {
    let logs: Vec<Vec<f64>> =
        (0..GRID).map(|j| (0..GRID).map(|i| v.loss[j * GRID + i]).map(|l| if l.is_finite() && l > 0.0 { l.ln() } else { f64::NAN }).collect()).collect();
    let (lo, hi) = logs.iter().flatten().filter(|l| l.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &l| (a.min(l), b.max(l)));
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return Vec::new(); // nothing evaluated yet, or a flat grid: no levels
    }
    let cell = axis[1] - axis[0];
    let at = |(i, j): (f64, f64)| [axis[0] + i * cell, axis[0] + j * cell];
    (1..=8).flat_map(|k| marching_squares(&logs, lo + (hi - lo) * k as f64 / 9.0)).map(|(a, b)| [at(a), at(b)]).collect()
}

/// log(loss) through viridis, over the evaluated points; not yet evaluated points are grey.
fn grid_image(v: &LandscapeView) -> ColorImage {
    let logs: Vec<f64> = v.loss.iter().map(|&l| if l.is_finite() && l > 0.0 { l.ln() } else { f64::NAN }).collect();
    let (lo, hi) = logs.iter().filter(|l| l.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &l| (a.min(l), b.max(l)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut pixels = Vec::with_capacity(GRID * GRID);
    // Image row 0 is the top: β = +RANGE, the last grid row.
    for j in (0..GRID).rev() {
        for i in 0..GRID {
            let l = logs[j * GRID + i];
            pixels.push(if l.is_finite() {
                let [r, g, b] = viridis((l - lo) / span);
                Color32::from_rgb(r, g, b)
            } else {
                Color32::from_gray(60)
            });
        }
    }
    ColorImage::new([GRID, GRID], pixels)
}

impl LandscapePanel {
    pub fn ui(&mut self, ui: &mut Ui, lab: &Lab, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            ui.strong("Loss landscape").on_hover_text(help::LANDSCAPE);
            ui.label(egui::RichText::new("(?)").weak()).on_hover_text(help::LANDSCAPE);
        });
        let n = lab.runs.len();
        if n == 0 {
            return;
        }
        self.around = self.around.min(n - 1);
        self.to = self.to.min(n - 1);
        let name = |i: usize| run_name(i, &lab.runs[i].spec);
        ui.horizontal_wrapped(|ui| {
            ui.label("around");
            egui::ComboBox::from_id_salt("landscape_around")
                .selected_text(name(self.around))
                .show_ui(ui, |ui| {
                    for i in 0..n {
                        ui.selectable_value(&mut self.around, i, name(i));
                    }
                })
                .response
                .accessible_name("Landscape run");
            if ui.button("Compute grid").on_hover_text("f(w + α·d₁ + β·d₂) on a 31×31 grid around this run's current weights").clicked() {
                out.push(Command::Landscape(self.around, None));
            }
            ui.separator();
            ui.label("line to");
            egui::ComboBox::from_id_salt("landscape_to")
                .selected_text(name(self.to))
                .show_ui(ui, |ui| {
                    for i in 0..n {
                        ui.selectable_value(&mut self.to, i, name(i));
                    }
                })
                .response
                .accessible_name("Line end run");
            if ui
                .add_enabled(self.to != self.around, egui::Button::new("Compute line"))
                .on_hover_text("f((1 − t)·w_a + t·w_b) for t from −0.25 to 1.25: is there a barrier between the two runs' weights?")
                .clicked()
            {
                out.push(Command::Landscape(self.around, Some(self.to)));
            }
        });
        if let Some(e) = &lab.landscape_error {
            ui.colored_label(Color32::from_rgb(0xe1, 0x57, 0x59), e);
        }
        let Some(job) = &lab.landscape else {
            ui.label(egui::RichText::new("Pick a run and compute: the points are evaluated a few per frame while training goes on.").weak());
            return;
        };
        let v = &job.view;
        let what = match &v.shape {
            Shape::Grid { .. } => format!("around {} at step {}", v.label, v.step),
            Shape::Line { to_label, .. } => format!("from {} (t = 0) to {to_label} (t = 1), at step {}", v.label, v.step),
        };
        let progress = if v.eval_samples == 0 {
            "waiting for the weights…".to_string()
        } else {
            format!("{}/{} points on {} training samples", v.done, v.total(), v.eval_samples)
        };
        ui.label(format!("{what} · {progress}"));
        let side = ui.available_width().clamp(200.0, 420.0);
        match &v.shape {
            Shape::Grid { axis } => {
                let generation = v.generation;
                let tex = match &mut self.texture {
                    Some((g, t)) => {
                        if *g != generation {
                            t.set(grid_image(v), TextureOptions::NEAREST);
                            *g = generation;
                        }
                        t.id()
                    }
                    None => {
                        let t = ui.ctx().load_texture("landscape", grid_image(v), TextureOptions::NEAREST);
                        let id = t.id();
                        self.texture = Some((generation, t));
                        id
                    }
                };
                if self.contours.as_ref().is_none_or(|(g, _)| *g != generation) {
                    self.contours = Some((generation, if v.is_complete() { contour_segments(v, axis) } else { Vec::new() }));
                }
                let segments = &self.contours.as_ref().expect("filled above").1;
                // The run's path, snapshot by snapshot, ending at the centre.
                let mut path: Vec<[f64; 2]> = v.trajectory.iter().map(|t| [t.alpha, t.beta]).collect();
                if !path.is_empty() {
                    path.push([0.0, 0.0]);
                    let mut res: Vec<f64> = v.trajectory.iter().filter(|t| t.step < v.step).map(|t| t.relative_residual).collect();
                    res.sort_by(f64::total_cmp);
                    let median = res.get(res.len() / 2).copied().unwrap_or(0.0);
                    let text = format!(
                        "trajectory: {} snapshots projected onto (d₁, d₂); median share of the path off the plane {:.0} %{}",
                        v.trajectory.len(),
                        100.0 * median,
                        if median > 0.9 { " — random directions barely see it: projections can mislead" } else { "" }
                    );
                    ui.label(egui::RichText::new(text).small()).on_hover_text(
                        "Each point is a snapshot w_t taken at an evaluation, placed at the (α, β) minimising ‖w_t − (w + α·d₁ + β·d₂)‖ (least squares). The share off the plane is that residual over ‖w_t − w‖.",
                    );
                }
                let cell = 2.0 * RANGE / (GRID - 1) as f64;
                let size = (2.0 * RANGE + cell) as f32;
                let centre_row = GRID / 2;
                let slice: Vec<[f64; 2]> =
                    (0..GRID).filter_map(|i| v.loss.get(centre_row * GRID + i).filter(|l| l.is_finite()).map(|&l| [axis[i], l])).collect();
                ui.columns(2, |cols| {
                    Plot::new("landscape_grid")
                        .width(side.min(cols[0].available_width()))
                        .height(side.min(cols[0].available_width()))
                        .data_aspect(1.0)
                        .x_axis_label("α (d₁)")
                        .y_axis_label("β (d₂)")
                        .allow_scroll(false)
                        .show(&mut cols[0], |p| {
                            p.image(PlotImage::new("log loss", tex, PlotPoint::new(0.0, 0.0), egui::vec2(size, size)));
                            for seg in segments.iter() {
                                p.line(Line::new("contours", PlotPoints::from(seg.to_vec())).color(Color32::from_white_alpha(90)).width(1.0));
                            }
                            if !path.is_empty() {
                                p.line(Line::new("trajectory", PlotPoints::from(path.clone())).color(Color32::from_rgb(0xe1, 0x57, 0x59)).width(2.0));
                                p.points(Points::new("trajectory", path.clone()).radius(2.5).color(Color32::from_rgb(0xe1, 0x57, 0x59)));
                            }
                            p.points(Points::new("weights", vec![[0.0, 0.0]]).radius(4.0).color(Color32::WHITE));
                        });
                    Plot::new("landscape_slice").height(side.min(cols[1].available_width())).x_axis_label("α (β = 0)").allow_scroll(false).show(
                        &mut cols[1],
                        |p| {
                            p.line(Line::new("loss along d₁", PlotPoints::from(slice)).width(1.6));
                            p.vline(VLine::new("weights", 0.0));
                        },
                    );
                });
            }
            Shape::Line { t, .. } => {
                let pts: Vec<[f64; 2]> = t.iter().zip(&v.loss).filter(|(_, l)| l.is_finite()).map(|(&t, &l)| [t, l]).collect();
                let acc: Vec<[f64; 2]> = t.iter().zip(&v.accuracy).filter(|(_, a)| a.is_finite()).map(|(&t, &a)| [t, a]).collect();
                Plot::new("landscape_line").height(side * 0.6).x_axis_label("t").legend(egui_plot::Legend::default()).allow_scroll(false).show(ui, |p| {
                    p.line(Line::new("loss", PlotPoints::from(pts)).width(1.6));
                    p.line(Line::new("accuracy", PlotPoints::from(acc)).width(1.2).style(egui_plot::LineStyle::dashed_loose()));
                    p.vline(VLine::new("run a", 0.0));
                    p.vline(VLine::new("run b", 1.0));
                });
            }
        }
    }
}
