//! Metric plots from the runs' histories: full-set loss and accuracy (train and test), the
//! label-noise views, per-step batch losses and norms, RW-SAM's ESS, and the sharpness
//! measurements (S_ρ, λ_max, tr H, tr V, R_m, the m-sharpness curve, the Hessian's eigenvalue
//! density) of runs that measure.

use super::{Card, Command, help, run_color, run_name};
use crate::lab::Lab;
use crate::run::History;
use egui::{Color32, Ui};
use egui_plot::{Legend, Line, LineStyle, Plot, PlotPoints};

/// Most points drawn per line (longer series are strided).
const MAX_POINTS: usize = 1500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum XAxis {
    #[default]
    Epoch,
    Step,
}

/// A named series of one run.
pub struct Series {
    pub name: String,
    pub color: Color32,
    pub style: LineStyle,
    pub points: Vec<[f64; 2]>,
}

impl Series {
    fn line(&self) -> Line<'static> {
        Line::new(self.name.clone(), PlotPoints::from(self.points.clone())).color(self.color).style(self.style).width(1.6)
    }
}

/// Keeps finite points and strides long series down to `MAX_POINTS`.
pub fn thin(points: impl Iterator<Item = [f64; 2]>) -> Vec<[f64; 2]> {
    let all: Vec<[f64; 2]> = points.filter(|p| p[0].is_finite() && p[1].is_finite()).collect();
    if all.len() <= MAX_POINTS {
        return all;
    }
    let stride = all.len().div_ceil(MAX_POINTS);
    let mut out: Vec<[f64; 2]> = all.iter().step_by(stride).copied().collect();
    if let Some(last) = all.last()
        && out.last() != Some(last)
    {
        out.push(*last);
    }
    out
}

/// One plot: a title with its tooltip, a PNG button, and the lines.
pub fn plot_card(ui: &mut Ui, id: &str, title: &str, tip: &str, x_label: &str, series: &[Series], out: &mut Vec<Command>) {
    let mut export = false;
    let card = ui.vertical(|ui| {
        ui.horizontal(|ui| {
            ui.strong(title).on_hover_text(tip);
            ui.label(egui::RichText::new("(?)").weak()).on_hover_text(tip);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                export = ui.small_button("PNG").on_hover_text(format!("Save the plot \"{title}\" as PNG")).clicked();
            });
        });
        let height = (ui.available_width() * 0.55).clamp(140.0, 260.0);
        Plot::new(id).height(height).legend(Legend::default()).x_axis_label(x_label).allow_scroll(false).show(ui, |p| {
            for s in series {
                p.line(s.line());
            }
        });
    });
    if export {
        out.push(Command::ExportPng(title.to_string(), card.response.rect));
    }
}

fn x_of(x_axis: XAxis, step: u64, epoch: f64) -> f64 {
    match x_axis {
        XAxis::Epoch => epoch,
        XAxis::Step => step as f64,
    }
}

/// Series of every run from `f(history)`.
fn per_run(lab: &Lab, mut f: impl FnMut(&History, &mut dyn FnMut(&str, LineStyle, Vec<[f64; 2]>))) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, r) in lab.runs.iter().enumerate() {
        let Some(run) = &r.run else { continue };
        let name = run_name(i, &r.spec);
        let color = run_color(&r.spec);
        f(&run.history, &mut |suffix, style, points| {
            if !points.is_empty() {
                let name = if suffix.is_empty() { name.clone() } else { format!("{name} {suffix}") };
                out.push(Series { name, color, style, points });
            }
        });
    }
    out
}

#[derive(Default)]
pub struct MetricsPanel;

impl MetricsPanel {
    pub fn ui(&mut self, ui: &mut Ui, lab: &Lab, x_axis: XAxis, out: &mut Vec<Command>) {
        let x_label = match x_axis {
            XAxis::Epoch => "epoch",
            XAxis::Step => "step",
        };
        let dashed = LineStyle::dashed_loose();
        let dotted = LineStyle::dotted_dense();
        let loss = per_run(lab, |h, add| {
            add("train", LineStyle::Solid, thin(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), e.train_loss])));
            add("test", dashed, thin(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), e.test_loss])));
        });
        let acc = per_run(lab, |h, add| {
            add("train", LineStyle::Solid, thin(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), 100.0 * e.train_acc])));
            add("test", dashed, thin(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), 100.0 * e.test_acc])));
        });
        let noise = per_run(lab, |h, add| {
            add("clean train", LineStyle::Solid, thin(h.evals.iter().filter_map(|e| Some([x_of(x_axis, e.step, e.epoch), 100.0 * e.clean_train_acc?]))));
            add("memorised", dotted, thin(h.evals.iter().filter_map(|e| Some([x_of(x_axis, e.step, e.epoch), 100.0 * e.memorized?]))));
            add("best test", dashed, thin(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), 100.0 * e.best_test_acc])));
        });
        let has_noise = lab.state.shared.dataset.label_noise > 0.0;
        let batch = per_run(lab, |h, add| {
            add("f(w)", LineStyle::Solid, thin(h.steps.iter().map(|s| [s.step as f64, s.loss])));
            add("f(w+e)", dashed, thin(h.steps.iter().filter(|s| s.perturbation_norm > 0.0).map(|s| [s.step as f64, s.perturbed_loss])));
        });
        let norms = per_run(lab, |h, add| {
            add("‖∇f_γ‖", LineStyle::Solid, thin(h.steps.iter().filter_map(|s| Some([s.step as f64, s.grad_norm?]))));
            add("‖e‖", dashed, thin(h.steps.iter().filter(|s| s.perturbation_norm > 0.0).map(|s| [s.step as f64, s.perturbation_norm])));
        });
        let ess = per_run(lab, |h, add| {
            add("ESS", LineStyle::Solid, thin(h.steps.iter().filter_map(|s| Some([s.step as f64, s.ess?]))));
        });

        let cols = if ui.available_width() > 900.0 { 2 } else { 1 };
        let mut cards: Vec<Card<'_>> = vec![
            Box::new(|ui, out| plot_card(ui, "plot_loss", "Loss (train solid, test dashed)", help::LOSS, x_label, &loss, out)),
            Box::new(|ui, out| plot_card(ui, "plot_acc", "Accuracy % (train solid, test dashed)", help::ACCURACY, x_label, &acc, out)),
        ];
        if has_noise {
            cards.push(Box::new(|ui, out| {
                plot_card(ui, "plot_noise", "Label noise: clean-label train acc, memorised %, best test", help::NOISE_METRICS, x_label, &noise, out)
            }));
        }
        cards.push(Box::new(|ui, out| plot_card(ui, "plot_batch", "Batch loss f(w) and at the perturbed point f(w+e)", help::BATCH_LOSS, "step", &batch, out)));
        cards.push(Box::new(|ui, out| plot_card(ui, "plot_norms", "Gradient and perturbation norms", help::NORMS, "step", &norms, out)));
        if !ess.is_empty() {
            cards.push(Box::new(|ui, out| plot_card(ui, "plot_ess", "RW-SAM effective sample size", help::ESS, "step", &ess, out)));
        }
        let weights = rwsam_weight_bars(lab);
        if !weights.is_empty() {
            cards.push(Box::new(move |ui, out| weights_card(ui, &weights, out)));
        }
        measurement_cards(lab, &mut cards);
        grid(ui, cols, cards, out);
    }
}

/// Bins of log₁₀(B·p_i) for the histogram of RW-SAM's weights (B·p = 1 is uniform, SAM).
const WEIGHT_BINS: usize = 24;
const WEIGHT_LOG_MIN: f64 = -4.0;

/// Per RW-SAM run: its name, colour, the latest step's ESS and the counts per bin.
fn rwsam_weight_bars(lab: &Lab) -> Vec<(String, Color32, f64, Vec<f64>, f64)> {
    let mut out = Vec::new();
    for (i, r) in lab.runs.iter().enumerate() {
        let Some(rw) = r.run.as_ref().and_then(|run| run.last_rwsam.as_ref()) else { continue };
        let b = rw.weights.len().max(1) as f64;
        let log_max = b.log10();
        let width = (log_max - WEIGHT_LOG_MIN) / WEIGHT_BINS as f64;
        let mut counts = vec![0.0; WEIGHT_BINS];
        for &p in &rw.weights {
            let x = (b * p).max(1e-300).log10().clamp(WEIGHT_LOG_MIN, log_max);
            counts[(((x - WEIGHT_LOG_MIN) / width) as usize).min(WEIGHT_BINS - 1)] += 1.0;
        }
        out.push((run_name(i, &r.spec), run_color(&r.spec), rw.ess, counts, width));
    }
    out
}

/// The histogram of the latest RW-SAM weights, one bar series per run.
fn weights_card(ui: &mut Ui, runs: &[(String, Color32, f64, Vec<f64>, f64)], out: &mut Vec<Command>) {
    let title = "RW-SAM weights B·p_i (latest step)";
    let mut export = false;
    let card = ui.vertical(|ui| {
        ui.horizontal(|ui| {
            ui.strong(title).on_hover_text(help::RW_WEIGHTS);
            ui.label(egui::RichText::new("(?)").weak()).on_hover_text(help::RW_WEIGHTS);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                export = ui.small_button("PNG").on_hover_text(format!("Save the plot \"{title}\" as PNG")).clicked();
            });
        });
        let height = (ui.available_width() * 0.55).clamp(140.0, 260.0);
        Plot::new("plot_rw_weights")
            .height(height)
            .legend(Legend::default())
            .x_axis_label("log₁₀(B·p_i)   (0 = uniform)")
            .y_axis_label("samples")
            .allow_scroll(false)
            .show(ui, |p| {
                for (name, color, ess, counts, width) in runs {
                    let bars: Vec<egui_plot::Bar> =
                        counts.iter().enumerate().map(|(k, &c)| egui_plot::Bar::new(WEIGHT_LOG_MIN + (k as f64 + 0.5) * width, c).width(width * 0.9)).collect();
                    p.bar_chart(egui_plot::BarChart::new(format!("{name} (ESS {ess:.1})"), bars).color(*color));
                }
            });
    });
    if export {
        out.push(Command::ExportPng(title.to_string(), card.response.rect));
    }
}

/// The sharpness measurements of runs that measure (`measure_every` > 0).
fn measurement_cards<'a>(lab: &'a Lab, cards: &mut Vec<Card<'a>>) {
    let any = lab.runs.iter().any(|r| r.run.as_ref().is_some_and(|run| !run.history.measurements.is_empty()));
    if !any {
        return;
    }
    let dashed = LineStyle::dashed_loose();
    let scalar = |f: fn(&crate::metrics::Measurement) -> f64| {
        per_run(lab, move |h, add| add("", LineStyle::Solid, thin(h.measurements.iter().map(|m| [m.step as f64, f(m)]))))
    };
    let sharp = scalar(|m| m.sharpness);
    let lmax = scalar(|m| m.lambda_max);
    let trh = scalar(|m| m.trace_h);
    let trv = scalar(|m| m.trace_v);
    let reg = per_run(lab, |h, add| {
        add("R_B", LineStyle::Solid, thin(h.measurements.iter().filter_map(|m| Some([m.step as f64, m.m_curve.last()?.regularizer]))));
        add("n-USAM", dashed, thin(h.measurements.iter().map(|m| [m.step as f64, m.n_usam_regularizer])));
    });
    let curve = per_run(lab, |h, add| {
        if let Some(m) = h.measurements.last() {
            add(&format!("E‖∇f_I‖ @{}", m.step), LineStyle::Solid, thin(m.m_curve.iter().map(|p| [(p.m as f64).log2(), p.mean_norm])));
            add("bound", dashed, thin(m.m_curve.iter().map(|p| [(p.m as f64).log2(), p.bound])));
        }
    });
    cards.push(Box::new(move |ui, out| plot_card(ui, "plot_sharp", "SAM sharpness S_ρ", help::SHARPNESS, "step", &sharp, out)));
    cards.push(Box::new(move |ui, out| plot_card(ui, "plot_lmax", "Top Hessian eigenvalue λ_max", help::LAMBDA_MAX, "step", &lmax, out)));
    cards.push(Box::new(move |ui, out| plot_card(ui, "plot_trh", "tr H (Hutchinson)", help::TRACE_H, "step", &trh, out)));
    cards.push(Box::new(move |ui, out| plot_card(ui, "plot_trv", "Gradient-noise trace tr V", help::TRACE_V, "step", &trv, out)));
    cards.push(Box::new(move |ui, out| plot_card(ui, "plot_reg", "m-USAM regulariser R_m", help::REGULARIZER, "step", &reg, out)));
    cards.push(Box::new(move |ui, out| plot_card(ui, "plot_mcurve", "m-sharpness curve (latest)", help::M_CURVE, "log₂ m", &curve, out)));
    if !density_series(lab).is_empty() {
        cards.push(Box::new(move |ui, out| density_card(ui, lab, out)));
    }
}

/// The card of the runs' latest Hessian eigenvalue densities (runs that ask for the spectrum).
pub fn density_card(ui: &mut Ui, lab: &Lab, out: &mut Vec<Command>) {
    plot_card(ui, "plot_density", "Hessian eigenvalue density (latest, log₁₀)", help::DENSITY, "eigenvalue λ", &density_series(lab), out);
}

/// Decades below the highest peak at which the log-density is clamped.
const DENSITY_DECADES: f64 = 8.0;

/// log₁₀ of each run's latest eigenvalue density (runs that ask for the spectrum), clamped
/// `DENSITY_DECADES` below the highest peak of them all.
fn density_series(lab: &Lab) -> Vec<Series> {
    fn latest(h: &History) -> Option<(u64, &crate::metrics::Density)> {
        h.measurements.iter().rev().find_map(|m| Some((m.step, m.density.as_ref()?)))
    }
    let peak = lab.runs.iter().filter_map(|r| latest(&r.run.as_ref()?.history)).flat_map(|(_, d)| d.y.iter().copied()).filter(|y| y.is_finite()).fold(0.0, f64::max);
    if peak <= 0.0 {
        return Vec::new();
    }
    let floor = peak * 10f64.powf(-DENSITY_DECADES);
    per_run(lab, |h, add| {
        if let Some((step, d)) = latest(h) {
            let name = format!("@{step}, {} outlier{}", d.outliers.len(), if d.outliers.len() == 1 { "" } else { "s" });
            add(&name, LineStyle::Solid, thin(d.x.iter().zip(&d.y).map(|(&x, &y)| [x, y.max(floor).log10()])));
        }
    })
}

/// Lays cards out in `cols` columns.
pub fn grid<'a>(ui: &mut Ui, cols: usize, cards: Vec<Card<'a>>, out: &mut Vec<Command>) {
    let mut cards = cards.into_iter();
    loop {
        let row: Vec<_> = cards.by_ref().take(cols).collect();
        if row.is_empty() {
            break;
        }
        ui.columns(cols, |columns| {
            for (col, card) in columns.iter_mut().zip(row) {
                card(col, out);
            }
        });
        ui.add_space(6.0);
    }
}
