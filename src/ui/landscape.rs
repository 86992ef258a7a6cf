//! The loss landscape panel: pick a run (or two), the directions (random, PCA, Hessian), the grid
//! and the range, compute, watch the points fill in.

use super::{Command, help, run_name};
use crate::lab::Lab;
use crate::lab::landscape::{LandscapeSettings, LandscapeView, Shape};
use crate::metrics::directions::{Directions, DirectionsInfo};
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
    let side = axis.len();
    let logs: Vec<Vec<f64>> =
        (0..side).map(|j| (0..side).map(|i| v.loss[j * side + i]).map(|l| if l.is_finite() && l > 0.0 { l.ln() } else { f64::NAN }).collect()).collect();
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
    let side = v.side();
    let mut pixels = Vec::with_capacity(side * side);
    // Image row 0 is the top: β = +range, the last grid row.
    for j in (0..side).rev() {
        for i in 0..side {
            let l = logs[j * side + i];
            pixels.push(if l.is_finite() {
                let [r, g, b] = viridis((l - lo) / span);
                Color32::from_rgb(r, g, b)
            } else {
                Color32::from_gray(60)
            });
        }
    }
    ColorImage::new([side, side], pixels)
}

/// What the directions told: explained variance, eigenvalues, and what the axes measure.
fn directions_text(d: &DirectionsInfo) -> String {
    match (d.kind, d.explained_variance, d.eigenvalues) {
        (Directions::Pca, Some([a, b]), _) => {
            format!(
                "PCA of the trajectory: PC1 explains {:.1} %, PC2 {:.1} % of its variance; unit directions (α, β in weight-space distance)",
                100.0 * a,
                100.0 * b
            )
        }
        (Directions::Hessian, _, Some([a, b])) => {
            format!("top Hessian eigenvectors: λ₁ = {a:.4}, λ₂ = {b:.4}; unit directions (α, β in weight-space distance)")
        }
        _ => "random filter-normalised directions (α, β in units of each neuron's weight norm)".into(),
    }
}

/// The axis names of a grid: d₁/d₂, PC1/PC2, v₁/v₂.
fn axis_names(kind: Directions) -> (&'static str, &'static str) {
    match kind {
        Directions::Random => ("α (d₁)", "β (d₂)"),
        Directions::Pca => ("α (PC1)", "β (PC2)"),
        Directions::Hessian => ("α (v₁, λ₁)", "β (v₂, λ₂)"),
    }
}

/// Directions, points per side and range of the next grid; a change becomes a command.
/// `in_use`: the range of the grid shown (what the disabled slider shows under "auto range").
fn settings_ui(ui: &mut Ui, current: &LandscapeSettings, in_use: Option<f64>, out: &mut Vec<Command>) {
    let mut s = current.clone();
    ui.horizontal_wrapped(|ui| {
        ui.label("directions");
        egui::ComboBox::from_id_salt("landscape_directions")
            .selected_text(s.directions.label())
            .show_ui(ui, |ui| {
                for d in Directions::ALL {
                    ui.selectable_value(&mut s.directions, d, d.label());
                }
            })
            .response
            .accessible_name("Landscape directions")
            .on_hover_text(help::LANDSCAPE);
        ui.separator();
        let (lo, hi) = (*LandscapeSettings::GRID_SIDES.start(), *LandscapeSettings::GRID_SIDES.end());
        ui.add(egui::Slider::new(&mut s.grid, lo..=hi).step_by(2.0).text("points per side")).accessible_name("Grid points per side");
        ui.separator();
        let mut auto = s.range.is_none();
        ui.checkbox(&mut auto, "auto range")
            .on_hover_text("The range that suits the directions: ±1 for random ones, 1.25 × the trajectory's extent for PCA, 2/√λ₁ for the Hessian");
        let (lo, hi) = (*LandscapeSettings::RANGES.start(), *LandscapeSettings::RANGES.end());
        let mut r = s.range.or(in_use).unwrap_or(1.0).clamp(lo, hi);
        ui.add_enabled(!auto, egui::Slider::new(&mut r, lo..=hi).logarithmic(true).text("range ±")).accessible_name("Landscape range");
        s.range = (!auto).then_some(r);
    });
    if s != *current {
        out.push(Command::SetLandscape(s));
    }
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
            let st = &lab.state.landscape;
            let hover = format!("f(w + α·d₁ + β·d₂) on a {0}×{0} grid around this run's current weights, along {1} directions", st.grid, st.directions.label());
            if ui.button("Compute grid").on_hover_text(hover).clicked() {
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
        let in_use = lab.landscape.as_ref().and_then(|j| match &j.view.shape {
            Shape::Grid { axis } if j.view.directions.is_some() => axis.last().copied(),
            _ => None,
        });
        settings_ui(ui, &lab.state.landscape, in_use, out);
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
        let finding = matches!(v.shape, Shape::Grid { .. }) && v.directions.is_none();
        let progress = if v.eval_samples == 0 {
            "waiting for the weights…".to_string()
        } else if let (true, Some((done, most))) = (finding, v.products) {
            format!("finding the top Hessian eigenvectors: {done} of at most {most} Hessian-vector products")
        } else if finding {
            format!("finding the principal components of {} snapshots…", v.trajectory.len().max(1))
        } else {
            format!("{}/{} points on {} training samples", v.done, v.total(), v.eval_samples)
        };
        ui.label(format!("{what} · {progress}"));
        if let (true, Some((done, most))) = (finding, v.products) {
            ui.add(egui::ProgressBar::new(done as f32 / most.max(1) as f32).desired_width(240.0));
        }
        if let Some(d) = &v.directions {
            ui.label(egui::RichText::new(directions_text(d)).small());
        }
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
                    let share = v.off_plane_share.unwrap_or(0.0);
                    let text = format!(
                        "trajectory: {} snapshots projected onto the plane; {:.1} % of the path off the plane{}",
                        v.trajectory.len(),
                        100.0 * share,
                        if share > 0.9 { " — these directions barely see it: projections can mislead" } else { "" }
                    );
                    ui.label(egui::RichText::new(text).small()).on_hover_text(
                        "Each point is a snapshot w_t taken at an evaluation, placed at the (α, β) minimising ‖w_t − (w + α·d₁ + β·d₂)‖ (least squares). The share off the plane is √(Σ_t residual_t²) / √(Σ_t ‖w_t − w‖²) over the path.",
                    );
                }
                let n = axis.len();
                let range = axis[n - 1];
                let cell = 2.0 * range / (n - 1) as f64;
                let size = (2.0 * range + cell) as f32;
                let centre_row = n / 2;
                let (x_name, y_name) = axis_names(v.kind);
                let slice: Vec<[f64; 2]> = (0..n).filter_map(|i| v.loss.get(centre_row * n + i).filter(|l| l.is_finite()).map(|&l| [axis[i], l])).collect();
                ui.columns(2, |cols| {
                    Plot::new("landscape_grid")
                        .width(side.min(cols[0].available_width()))
                        .height(side.min(cols[0].available_width()))
                        .data_aspect(1.0)
                        .x_axis_label(x_name)
                        .y_axis_label(y_name)
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
                    Plot::new("landscape_slice").height(side.min(cols[1].available_width())).x_axis_label(format!("{x_name}, β = 0")).allow_scroll(false).show(
                        &mut cols[1],
                        |p| {
                            p.line(Line::new("loss along the first direction", PlotPoints::from(slice)).width(1.6));
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
