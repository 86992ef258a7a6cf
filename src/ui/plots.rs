//! Metric plots from the runs' histories: full-set loss and accuracy (train and test), the
//! label-noise views, per-step batch losses and norms, RW-SAM's ESS, and the sharpness
//! measurements (S_ρ, λ_max, tr H, tr V, R_m, the m-sharpness curve, the Hessian's eigenvalue
//! density) of runs that measure.
//!
//! How they draw follows the lab's `PlotSettings`: curves over steps or epochs smoothed by a
//! debiased EMA (the raw curve faint behind), a log₁₀ y axis per plot, only the selected run
//! per plot; a dashed vertical line in a run's colour marks each live change of its settings.
//! The settings reach every card of a frame through egui's temporary data (`PlotView`), and
//! each plot leaves what it drew there (`drawn`) for tests.

use super::{Card, Command, fmt_num, help, run_color, run_name};
use crate::lab::Lab;
use crate::lab::state::{MAX_SMOOTHING, PlotSettings};
use crate::run::History;
use egui::{Color32, Ui};
use egui_plot::{Legend, Line, LineStyle, Plot, PlotPoints, VLine};
use std::sync::Arc;

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
    /// The run's name and what the series is ("1. SAM test"): the PNG export and the tests.
    pub name: String,
    /// The legend's entry in a plot where runs have several series: the run's name, shared by
    /// them all (one entry per run, which shows or hides them together; the title says which
    /// line style is which). Where each run has one series, the legend shows the full names.
    pub legend: String,
    pub color: Color32,
    pub style: LineStyle,
    pub points: Vec<[f64; 2]>,
    /// The run's index in the lab (None: not one run's).
    pub run: Option<usize>,
}

/// What the cards of one frame draw with: the plot settings, the selected run, and each run's
/// live changes.
#[derive(Clone, Debug, Default)]
pub struct PlotView {
    pub settings: PlotSettings,
    pub selected: usize,
    pub marks: Vec<RunMarks>,
}

/// The steps at which a run's settings changed live, and how to place them on an epoch axis.
#[derive(Clone, Debug)]
pub struct RunMarks {
    pub run: usize,
    pub color: Color32,
    pub steps_per_epoch: u64,
    pub steps: Vec<u64>,
}

impl PlotView {
    fn of(lab: &Lab, selected: usize) -> Self {
        let marks = lab
            .runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let run = r.run.as_ref()?;
                let steps: Vec<u64> = run.history.changes.iter().map(|c| c.step).collect();
                (!steps.is_empty()).then(|| RunMarks { run: i, color: run_color(&r.spec), steps_per_epoch: run.steps_per_epoch(), steps })
            })
            .collect();
        Self { settings: lab.state.plots.clone(), selected, marks }
    }
}

fn view_id() -> egui::Id {
    egui::Id::unique("samlab_plot_view")
}

/// What one plot drew at the last frame: its lines (name, points as plotted: smoothed, log₁₀
/// when `log_y`), the faint raw lines behind smoothed ones, and the change marks (x, colour).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DrawnPlot {
    pub lines: Vec<(String, Vec<[f64; 2]>)>,
    pub faint: Vec<(String, Vec<[f64; 2]>)>,
    pub marks: Vec<(f64, Color32)>,
    pub log_y: bool,
}

fn drawn_id(id: &str) -> egui::Id {
    egui::Id::unique(("samlab_drawn", id))
}

/// What the plot `id` (e.g. "plot_loss") drew at the last frame.
pub fn drawn(ctx: &egui::Context, id: &str) -> Option<Arc<DrawnPlot>> {
    ctx.data(|d| d.get_temp(drawn_id(id)))
}

/// TensorBoard's smoothing: the exponential moving average m_n = w·m_{n−1} + (1 − w)·y_n from
/// m_0 = 0, divided by 1 − wⁿ so that the first points are not pulled toward 0 (w = 0: raw).
pub fn smooth(points: &[[f64; 2]], w: f64) -> Vec<[f64; 2]> {
    let mut m = 0.0;
    let mut n = 0;
    points
        .iter()
        .map(|p| {
            m = w * m + (1.0 - w) * p[1];
            n += 1;
            [p[0], m / (1.0 - w.powi(n))]
        })
        .collect()
}

/// Grid marks of a log₁₀ axis at 1, 2 and 5 times the powers of ten (every multiple within less
/// than a decade, the decades alone beyond six), decades drawn strongest.
fn log_grid(input: egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
    let (lo, hi) = input.bounds;
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return Vec::new();
    }
    let multiples: &[f64] = match hi - lo {
        d if d < 1.0 => &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        d if d <= 6.0 => &[1.0, 2.0, 5.0],
        _ => &[1.0],
    };
    let mut marks = Vec::new();
    for k in (lo.floor() as i32)..=(hi.ceil() as i32) {
        for &m in multiples {
            let value = k as f64 + m.log10();
            if (lo..=hi).contains(&value) {
                marks.push(egui_plot::GridMark { value, step_size: if m == 1.0 { 1.0 } else { 0.1 } });
            }
        }
    }
    marks
}

/// Points with y > 0 as (x, log₁₀ y); the others have no place on a log axis.
pub fn log10_points(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    points.iter().filter(|p| p[1] > 0.0).map(|p| [p[0], p[1].log10()]).collect()
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

/// One plot: a title with its tooltip, its toggles (log y, only the selected run), a PNG
/// button, and the lines as the frame's `PlotView` says (smoothing and change marks on plots
/// over steps or epochs).
pub fn plot_card(ui: &mut Ui, id: &str, title: &str, tip: &str, x_label: &str, series: &[Series], out: &mut Vec<Command>) {
    let view: PlotView = ui.ctx().data(|d| d.get_temp::<Arc<PlotView>>(view_id())).map(|v| (*v).clone()).unwrap_or_default();
    let settings = &view.settings;
    // Plots that start on a log axis (densities spanning decades): the toggle makes them linear.
    let (log_y, only) = (settings.log_y.contains(id) != LOG_BY_DEFAULT.contains(&id), settings.only_selected.contains(id));
    let over_time = matches!(x_label, "epoch" | "step");
    let w = if over_time { settings.smoothing.clamp(0.0, MAX_SMOOTHING) } else { 0.0 };
    let shown = |run: Option<usize>| !only || run.is_none_or(|r| r == view.selected);
    let y = |pts: Vec<[f64; 2]>| thin(if log_y { log10_points(&pts) } else { pts }.into_iter());
    let mut drawn = DrawnPlot { log_y, ..DrawnPlot::default() };
    let mut styles = Vec::new();
    // One legend entry per run where some run has several series here; where each has one, the
    // full names ("1. SGD @400, 2 outliers").
    let by_run = series.iter().any(|s| s.run.is_some() && series.iter().filter(|o| o.run == s.run).count() > 1);
    for s in series.iter().filter(|s| shown(s.run)) {
        let raw: Vec<[f64; 2]> = s.points.iter().copied().filter(|p| p[0].is_finite() && p[1].is_finite()).collect();
        if w > 0.0 {
            drawn.lines.push((s.name.clone(), y(smooth(&raw, w))));
            drawn.faint.push((s.name.clone(), y(raw)));
        } else {
            drawn.lines.push((s.name.clone(), y(raw)));
        }
        styles.push((s.color, s.style, if by_run && s.run.is_some() { s.legend.clone() } else { s.name.clone() }));
    }
    // The line styles of a plot with one legend entry per run, in words ("solid: train · dashed: test").
    let mut key: Vec<(LineStyle, String)> = Vec::new();
    for s in series.iter().filter(|s| by_run && s.run.is_some()) {
        let what = s.name.strip_prefix(s.legend.as_str()).unwrap_or(&s.name).trim().to_string();
        if !what.is_empty() && !key.iter().any(|(st, w)| *st == s.style && *w == what) {
            key.push((s.style, what));
        }
    }
    let key = key.iter().map(|(st, w)| format!("{}: {w}", style_word(*st))).collect::<Vec<_>>().join(" · ");
    let has_data = drawn.lines.iter().any(|(_, p)| !p.is_empty());
    for m in view.marks.iter().filter(|m| over_time && has_data && shown(Some(m.run))) {
        let per = if x_label == "epoch" { m.steps_per_epoch.max(1) as f64 } else { 1.0 };
        drawn.marks.extend(m.steps.iter().map(|&st| (st as f64 / per, m.color)));
    }
    let mut toggled = settings.clone();
    let mut export = false;
    let card = ui.vertical(|ui| {
        ui.horizontal(|ui| {
            ui.strong(title).on_hover_text(tip);
            ui.label(egui::RichText::new("(?)").weak()).on_hover_text(tip);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                export = ui.small_button("PNG").on_hover_text(format!("Save the plot \"{title}\" as PNG")).clicked();
                let toggle = |ui: &mut Ui, on: bool, text: &str, name: String, hover: &str| {
                    ui.selectable_label(on, text).accessible_name(name).on_hover_text(hover).clicked()
                };
                if toggle(ui, only, "selected", format!("only the selected run in {title}"), "Show only the selected run in this plot") {
                    flip(&mut toggled.only_selected, id);
                }
                if toggle(ui, log_y, "log y", format!("log y of {title}"), "Logarithmic y axis (values ≤ 0 are left out)") {
                    flip(&mut toggled.log_y, id);
                }
            });
        });
        if !key.is_empty() {
            ui.label(egui::RichText::new(&key).small().weak());
        }
        let height = (ui.available_width() * 0.55).clamp(140.0, 260.0);
        let mut plot = Plot::new(id).height(height).legend(Legend::default()).x_axis_label(x_label).allow_scroll(false);
        if log_y {
            plot = plot.y_axis_label("log scale").y_grid_spacer(log_grid).y_axis_formatter(|mark, _| fmt_num(10f64.powf(mark.value))).label_formatter(|pos| {
                let (name, p) = match pos {
                    egui_plot::HoverPosition::NearDataPoint { plot_name, position, .. } => (*plot_name, position),
                    egui_plot::HoverPosition::Elsewhere { position } => ("", position),
                };
                Some(format!("{name}\nx = {}\ny = {}", fmt_num(p.x), fmt_num(10f64.powf(p.y))).trim_start().to_string())
            });
        }
        plot.show(ui, |p| {
            for (k, ((name, points), (color, style, _))) in drawn.faint.iter().zip(&styles).enumerate() {
                let faint = color.gamma_multiply(0.3);
                p.line(Line::new("", PlotPoints::from(points.clone())).id(("faint", k, name)).color(faint).style(*style).width(1.0).allow_hover(false));
            }
            for (k, ((name, points), (color, style, legend))) in drawn.lines.iter().zip(&styles).enumerate() {
                p.line(Line::new(legend.clone(), PlotPoints::from(points.clone())).id(("line", k, name)).color(*color).style(*style).width(1.6));
            }
            for (k, &(x, color)) in drawn.marks.iter().enumerate() {
                p.vline(VLine::new("", x).id(("change", k)).color(color.gamma_multiply(0.8)).style(LineStyle::dashed_dense()).width(1.0));
            }
        });
    });
    ui.ctx().data_mut(|d| d.insert_temp(drawn_id(id), Arc::new(drawn)));
    if toggled != *settings {
        out.push(Command::SetPlots(toggled));
    }
    if export {
        out.push(Command::ExportPng(title.to_string(), card.response.rect));
    }
}

/// How a line style reads in a plot's key.
fn style_word(style: LineStyle) -> &'static str {
    match style {
        LineStyle::Solid => "solid",
        LineStyle::Dashed { .. } => "dashed",
        LineStyle::Dotted { .. } => "dotted",
    }
}

fn flip(set: &mut std::collections::BTreeSet<String>, id: &str) {
    if !set.remove(id) {
        set.insert(id.to_string());
    }
}

/// Every point of a series (plot_card smooths, then thins to `MAX_POINTS`).
fn all(points: impl Iterator<Item = [f64; 2]>) -> Vec<[f64; 2]> {
    points.collect()
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
                let full = if suffix.is_empty() { name.clone() } else { format!("{name} {suffix}") };
                out.push(Series { name: full, legend: name.clone(), color, style, points, run: Some(i) });
            }
        });
    }
    out
}

#[derive(Default)]
pub struct MetricsPanel;

impl MetricsPanel {
    /// The plots with run 0 as the selected run.
    pub fn ui(&mut self, ui: &mut Ui, lab: &Lab, x_axis: XAxis, out: &mut Vec<Command>) {
        self.show(ui, lab, x_axis, 0, out);
    }

    /// The smoothing slider, then the plots (`selected`: the run the "selected" toggles keep).
    pub fn show(&mut self, ui: &mut Ui, lab: &Lab, x_axis: XAxis, selected: usize, out: &mut Vec<Command>) {
        let view = PlotView::of(lab, selected);
        ui.horizontal_wrapped(|ui| {
            let mut w = view.settings.smoothing;
            ui.label("Smoothing").on_hover_text(help::SMOOTHING);
            let slider = egui::Slider::new(&mut w, 0.0..=MAX_SMOOTHING).step_by(0.01).fixed_decimals(2);
            ui.add(slider).accessible_name("Smoothing").on_hover_text(help::SMOOTHING);
            if w != view.settings.smoothing {
                out.push(Command::SetPlots(PlotSettings { smoothing: w, ..view.settings.clone() }));
            }
            if !view.marks.is_empty() {
                ui.label(egui::RichText::new("┆ dashed vertical lines: live changes of a run's settings").weak()).on_hover_text(help::LIVE_CHANGES);
            }
        });
        ui.ctx().data_mut(|d| d.insert_temp(view_id(), Arc::new(view)));
        let x_label = match x_axis {
            XAxis::Epoch => "epoch",
            XAxis::Step => "step",
        };
        let dashed = LineStyle::dashed_loose();
        let dotted = LineStyle::dotted_dense();
        let loss = per_run(lab, |h, add| {
            add("train", LineStyle::Solid, all(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), e.train_loss])));
            add("test", dashed, all(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), e.test_loss])));
        });
        let acc = per_run(lab, |h, add| {
            add("train", LineStyle::Solid, all(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), 100.0 * e.train_acc])));
            add("test", dashed, all(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), 100.0 * e.test_acc])));
        });
        let noise = per_run(lab, |h, add| {
            add("clean train", LineStyle::Solid, all(h.evals.iter().filter_map(|e| Some([x_of(x_axis, e.step, e.epoch), 100.0 * e.clean_train_acc?]))));
            add("memorised", dotted, all(h.evals.iter().filter_map(|e| Some([x_of(x_axis, e.step, e.epoch), 100.0 * e.memorized?]))));
            add("best test", dashed, all(h.evals.iter().map(|e| [x_of(x_axis, e.step, e.epoch), 100.0 * e.best_test_acc])));
        });
        let has_noise = lab.state.shared.dataset.label_noise > 0.0;
        let batch = per_run(lab, |h, add| {
            add("f(w)", LineStyle::Solid, all(h.steps.iter().map(|s| [s.step as f64, s.loss])));
            add("f(w+e)", dashed, all(h.steps.iter().filter(|s| s.perturbation_norm > 0.0).map(|s| [s.step as f64, s.perturbed_loss])));
        });
        let norms = per_run(lab, |h, add| {
            add("‖∇f_γ‖", LineStyle::Solid, all(h.steps.iter().filter_map(|s| Some([s.step as f64, s.grad_norm?]))));
            add("‖e‖", dashed, all(h.steps.iter().filter(|s| s.perturbation_norm > 0.0).map(|s| [s.step as f64, s.perturbation_norm])));
        });
        let ess = per_run(lab, |h, add| {
            add("ESS", LineStyle::Solid, all(h.steps.iter().filter_map(|s| Some([s.step as f64, s.ess?]))));
        });

        let cols = if ui.available_width() > 900.0 { 2 } else { 1 };
        let mut cards: Vec<Card<'_>> = vec![
            Box::new(|ui, out| plot_card(ui, "plot_loss", "Loss", help::LOSS, x_label, &loss, out)),
            Box::new(|ui, out| plot_card(ui, "plot_acc", "Accuracy %", help::ACCURACY, x_label, &acc, out)),
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
    plot_card(ui, "plot_density", "Hessian eigenvalue density (latest)", help::DENSITY, "eigenvalue λ", &density_series(lab), out);
}

/// Plots drawn on a log y axis unless toggled (their id in `log_y` then means linear).
const LOG_BY_DEFAULT: [&str; 1] = ["plot_density"];

/// Decades below the highest peak at which the log-density is clamped.
const DENSITY_DECADES: f64 = 8.0;

/// Each run's latest eigenvalue density (runs that ask for the spectrum), clamped
/// `DENSITY_DECADES` below the highest peak of them all (drawn on a log axis by default).
fn density_series(lab: &Lab) -> Vec<Series> {
    fn latest(h: &History) -> Option<(u64, &crate::metrics::Density)> {
        h.measurements.iter().rev().find_map(|m| Some((m.step, m.density.as_ref()?)))
    }
    let peak =
        lab.runs.iter().filter_map(|r| latest(&r.run.as_ref()?.history)).flat_map(|(_, d)| d.y.iter().copied()).filter(|y| y.is_finite()).fold(0.0, f64::max);
    if peak <= 0.0 {
        return Vec::new();
    }
    let floor = peak * 10f64.powf(-DENSITY_DECADES);
    per_run(lab, |h, add| {
        if let Some((step, d)) = latest(h) {
            let name = format!("@{step}, {} outlier{}", d.outliers.len(), if d.outliers.len() == 1 { "" } else { "s" });
            add(&name, LineStyle::Solid, thin(d.x.iter().zip(&d.y).map(|(&x, &y)| [x, y.max(floor)])));
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
