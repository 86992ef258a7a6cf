//! The data: for a 2D toy, every run's decision surface under the training and test points
//! (flipped labels marked); for images, the selected run's training samples with the largest
//! per-sample gradient norms, flipped labels framed in red.

use super::{Card, Command, class_color, help, run_color, run_name};
use crate::data::Dataset;
use crate::lab::views::{Hardest, Surface};
use crate::lab::{Lab, LabRun};
use egui::{Color32, ColorImage, TextureHandle, TextureOptions, Ui};
use egui_plot::{MarkerShape, Plot, PlotImage, PlotPoint, Points};
use std::collections::HashMap;

#[derive(Default)]
pub struct DataPanel {
    /// Decision-surface textures by run slot: (generation, texture).
    surfaces: HashMap<usize, (u64, TextureHandle)>,
    /// Sample images by (dataset key, training index).
    samples: HashMap<(String, usize), TextureHandle>,
}

/// Mixes the class colour toward the background by the model's confidence.
fn surface_image(s: &Surface, dark: bool) -> ColorImage {
    let bg = if dark { Color32::from_gray(27) } else { Color32::from_gray(250) };
    let mut pixels = Vec::with_capacity(s.res * s.res);
    // Row 0 of the image is the top (y_max); row 0 of the surface is y_min.
    for row in (0..s.res).rev() {
        for col in 0..s.res {
            let k = row * s.res + col;
            let c = class_color(s.class[k]);
            let floor = 1.0 / s.n_classes.max(1) as f32;
            let t = ((s.confidence[k] - floor) / (1.0 - floor)).clamp(0.0, 1.0);
            let t = 0.15 + 0.5 * t;
            pixels.push(lerp(bg, c, t));
        }
    }
    ColorImage::new([s.res, s.res], pixels)
}

fn lerp(a: Color32, b: Color32, t: f32) -> Color32 {
    let m = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round() as u8;
    Color32::from_rgb(m(a.r(), b.r()), m(a.g(), b.g()), m(a.b(), b.b()))
}

impl DataPanel {
    pub fn ui(&mut self, ui: &mut Ui, lab: &Lab, selected: usize, out: &mut Vec<Command>) {
        let Some(data) = lab.data.clone() else {
            if let Some(e) = &lab.data_error {
                ui.colored_label(Color32::from_rgb(0xe1, 0x57, 0x59), e);
            }
            return;
        };
        if data.is_points() {
            self.surfaces_ui(ui, lab, &data, out);
        } else if let Some(r) = lab.runs.get(selected) {
            self.hardest_ui(ui, &data, selected, r);
        }
    }

    fn surfaces_ui(&mut self, ui: &mut Ui, lab: &Lab, data: &Dataset, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            ui.strong("Decision surfaces").on_hover_text(help::SURFACE);
            ui.label(egui::RichText::new("(?)").weak()).on_hover_text(help::SURFACE);
        });
        let n = lab.runs.len().max(1);
        let cols = n.min(((ui.available_width() / 260.0).floor() as usize).max(1));
        let dark = ui.visuals().dark_mode;
        let mut cards: Vec<Card<'_>> = Vec::new();
        for (i, r) in lab.runs.iter().enumerate() {
            let texture = r.views.surface.as_ref().map(|s| {
                let entry = self.surfaces.entry(i);
                let generation = r.views.generation;
                match entry {
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        if o.get().0 != generation {
                            o.get_mut().1.set(surface_image(s, dark), TextureOptions::LINEAR);
                            o.get_mut().0 = generation;
                        }
                        (o.get().1.id(), s.x_range, s.y_range, s.step)
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let t = ui.ctx().load_texture(format!("surface{i}"), surface_image(s, dark), TextureOptions::LINEAR);
                        let id = t.id();
                        v.insert((generation, t));
                        (id, s.x_range, s.y_range, s.step)
                    }
                }
            });
            cards.push(Box::new(move |ui, out| surface_card(ui, i, r, data, texture, out)));
        }
        self.surfaces.retain(|&i, _| i < lab.runs.len());
        super::plots::grid(ui, cols, cards, out);
    }

    fn hardest_ui(&mut self, ui: &mut Ui, data: &Dataset, i: usize, r: &LabRun) {
        ui.horizontal(|ui| {
            ui.strong(format!("Largest per-sample gradient norms ‖∇f_i‖ — {}", run_name(i, &r.spec))).on_hover_text(help::HARDEST);
            ui.label(egui::RichText::new("(?)").weak()).on_hover_text(help::HARDEST);
        });
        let Some(h) = &r.views.hardest else {
            ui.label(egui::RichText::new("computing from the current weights…").weak());
            return;
        };
        let flipped = h.samples.iter().filter(|s| s.flipped).count();
        let mut caption = format!("step {} · top {} of {} examined training samples", h.step, h.samples.len(), h.examined);
        if !data.flipped.is_empty() {
            caption += &format!(
                " · {flipped} of them have flipped labels · flipped samples carry {:.0} % of the total ‖∇f_i‖ (they are {:.0} % of the data)",
                100.0 * h.flipped_share,
                100.0 * data.flipped.len() as f64 / data.n_train().max(1) as f64
            );
        }
        ui.label(caption);
        self.sample_grid(ui, data, h);
    }

    fn sample_grid(&mut self, ui: &mut Ui, data: &Dataset, h: &Hardest) {
        let Some((w, hgt)) = data.image_shape else { return };
        // Two files of one size differ in their means: the key tells their textures apart.
        let means = data.feature_mean.iter().fold(0u32, |h, v| h.rotate_left(5) ^ v.to_bits());
        let key = format!("{:?}/{}/{}/{means:x}", data.name, data.n_train(), data.flipped.len());
        let side = 56.0;
        let cols = ((ui.available_width() / (side + 20.0)).floor() as usize).max(1);
        egui::Grid::new("hardest_grid").spacing([6.0, 6.0]).show(ui, |ui| {
            for (k, s) in h.samples.iter().enumerate() {
                let tex = self
                    .samples
                    .entry((key.clone(), s.index))
                    .or_insert_with(|| {
                        let row = data.train_row(s.index);
                        let pixels = row.iter().zip(&data.feature_mean).map(|(&v, &m)| Color32::from_gray(((v + m).clamp(0.0, 1.0) * 255.0) as u8)).collect();
                        ui.ctx().load_texture(format!("sample{}", s.index), ColorImage::new([w, hgt], pixels), TextureOptions::NEAREST)
                    })
                    .clone();
                ui.vertical(|ui| {
                    let stroke = if s.flipped {
                        egui::Stroke::new(3.0, Color32::from_rgb(0xe1, 0x57, 0x59))
                    } else {
                        egui::Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color)
                    };
                    egui::Frame::new().stroke(stroke).inner_margin(2.0).show(ui, |ui| {
                        ui.add(egui::Image::new(&tex).fit_to_exact_size(egui::vec2(side, side)));
                    });
                    let text = if s.flipped {
                        format!("y={} true={}\nŷ={} ‖∇‖={:.2}", s.label, s.clean_label, s.predicted, s.grad_norm)
                    } else {
                        format!("y={} ŷ={}\n‖∇‖={:.2}", s.label, s.predicted, s.grad_norm)
                    };
                    ui.label(egui::RichText::new(text).small());
                });
                if (k + 1) % cols == 0 {
                    ui.end_row();
                }
            }
        });
        if self.samples.len() > 4096 {
            self.samples.clear();
        }
    }
}

type SurfaceTex = (egui::TextureId, (f32, f32), (f32, f32), u64);

fn surface_card(ui: &mut Ui, i: usize, r: &LabRun, data: &Dataset, texture: Option<SurfaceTex>, out: &mut Vec<Command>) {
    let title = run_name(i, &r.spec);
    let mut export = false;
    let card = ui.vertical(|ui| {
        ui.horizontal(|ui| {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
            ui.painter().rect_filled(rect, 2.0, run_color(&r.spec));
            ui.label(&title);
            if let Some((_, _, _, step)) = texture {
                ui.label(egui::RichText::new(format!("step {step}")).weak());
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                export = ui.small_button("PNG").on_hover_text(format!("Save the decision surface of {title} as PNG")).clicked();
            });
        });
        let side = ui.available_width().clamp(160.0, 320.0);
        Plot::new(("surface", i))
            .width(side)
            .height(side)
            .data_aspect(1.0)
            .show_axes([false, false])
            .show_grid(false)
            .allow_scroll(false)
            .allow_drag(false)
            .allow_zoom(false)
            .show(ui, |p| {
                if let Some((id, xr, yr, _)) = texture {
                    let center = PlotPoint::new(0.5 * (xr.0 + xr.1) as f64, 0.5 * (yr.0 + yr.1) as f64);
                    p.image(PlotImage::new("surface", id, center, egui::vec2(xr.1 - xr.0, yr.1 - yr.0)));
                }
                for c in 0..data.n_classes as u32 {
                    let color = class_color(c);
                    let pick = |x: &[f32], y: &[u32], keep: &dyn Fn(usize) -> bool| -> Vec<[f64; 2]> {
                        x.chunks_exact(2).zip(y).enumerate().filter(|&(k, (_, &yy))| yy == c && keep(k)).map(|(_, (p, _))| [p[0] as f64, p[1] as f64]).collect()
                    };
                    let flipped = |k: usize| data.flipped.binary_search(&k).is_ok();
                    let clean = pick(&data.train_x, &data.train_y, &|k| !flipped(k));
                    let noisy = pick(&data.train_x, &data.train_y, &flipped);
                    let test = pick(&data.test_x, &data.test_y, &|_| true);
                    p.points(Points::new(format!("class {c} train"), clean).color(color).radius(2.2).shape(MarkerShape::Circle));
                    p.points(Points::new(format!("class {c} test"), test).color(color).radius(2.6).filled(false).shape(MarkerShape::Circle));
                    if !noisy.is_empty() {
                        p.points(Points::new(format!("class {c} flipped"), noisy).color(color).radius(4.0).shape(MarkerShape::Cross));
                    }
                }
            });
        if texture.is_none() {
            ui.label(egui::RichText::new("computing from the current weights…").weak());
        }
    });
    if export {
        out.push(Command::ExportPng(format!("surface {title}"), card.response.rect));
    }
}
