//! The Experiments panel: the paper's six experiments (what each tests, what the paper
//! reports), run live with a seeds count and a quick switch, with progress, the table (mean ±
//! std over seeds), the verdicts and the figure updating as trials finish, and exports.
//!
//! The figure is the CLI's (`experiments::panels`), drawn with egui_plot: series as lines with
//! points and ± std error bars, runs without an x as dashed horizontal lines (± std dotted),
//! m on a log₂ axis labelled in powers of two, optimizers on a categorical axis.

use super::{Command, PALETTE};
use crate::experiments::panels::Panel;
use crate::experiments::{Experiment, paper_reference};
use crate::lab::experiments::{ExperimentJob, JobState, MS_PER_STEP_NOTE};
use egui::{Color32, RichText, Ui};
use egui_plot::{AxisHints, GridInput, GridMark, HLine, Legend, Line, LineStyle, Plot, PlotPoints, Points};

const ERROR_RED: Color32 = Color32::from_rgb(0xe1, 0x57, 0x59);

pub struct ExperimentsPanel {
    pub selected: Experiment,
    pub seeds: usize,
    pub quick: bool,
}

impl Default for ExperimentsPanel {
    /// Quick by default in the browser: full runs take minutes on the CPU engine.
    fn default() -> Self {
        Self { selected: Experiment::MSweep, seeds: 3, quick: crate::platform::BROWSER }
    }
}

/// A Markdown table's header and rows (cells trimmed; `\|` is a literal bar).
pub fn table_cells(markdown: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let split = |line: &str| -> Vec<String> {
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut chars = line.trim().trim_start_matches('|').chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => cell.push(chars.next().unwrap_or('|')),
                '|' => cells.push(std::mem::take(&mut cell).trim().to_string()),
                c => cell.push(c),
            }
        }
        if !cell.trim().is_empty() {
            cells.push(cell.trim().to_string());
        }
        cells
    };
    let mut lines = markdown.lines().filter(|l| l.trim_start().starts_with('|'));
    let header = lines.next().map(split).unwrap_or_default();
    let rows = lines.map(split).filter(|r| !r.iter().all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'))).collect();
    (header, rows)
}

impl ExperimentsPanel {
    pub fn ui(&mut self, ui: &mut Ui, job: Option<&ExperimentJob>, engine: &str, out: &mut Vec<Command>) {
        ui.heading("Experiments: the paper's claims at small scale");
        ui.label(
            "The same experiments as `samlab experiment`: each trains its trials to the end (digits, MLP 64-128-128-10, batch 128, 40 epochs; \
             quick: a quarter of the training samples, one hidden layer of 64, 60 epochs) and summarises them over seeds (mean ± sample std).",
        );
        ui.add_space(4.0);
        let running = job.is_some_and(ExperimentJob::is_running);
        self.list_ui(ui, running);
        ui.add_space(4.0);
        self.controls_ui(ui, job, engine, out);
        if let Some(job) = job {
            ui.separator();
            results_ui(ui, job, out);
        }
    }

    /// The six experiments, each with what it tests and what the paper reports.
    fn list_ui(&mut self, ui: &mut Ui, running: bool) {
        egui::Grid::new("experiment_list").num_columns(2).striped(true).spacing([12.0, 6.0]).show(ui, |ui| {
            for exp in Experiment::ALL.into_iter().filter(|e| e.in_app()) {
                ui.add_enabled_ui(!running, |ui| {
                    ui.radio_value(&mut self.selected, exp, RichText::new(exp.name()).strong()).on_hover_text(exp.describe());
                });
                ui.vertical(|ui| {
                    ui.add(egui::Label::new(exp.describe()).wrap());
                    ui.add(egui::Label::new(RichText::new(paper_reference(exp)).italics().weak()).wrap());
                });
                ui.end_row();
            }
        });
    }

    fn controls_ui(&mut self, ui: &mut Ui, job: Option<&ExperimentJob>, engine: &str, out: &mut Vec<Command>) {
        let running = job.is_some_and(ExperimentJob::is_running);
        ui.horizontal_wrapped(|ui| {
            ui.add_enabled_ui(!running, |ui| {
                ui.label("Seeds");
                ui.add(egui::Slider::new(&mut self.seeds, 1..=10))
                    .accessible_name("Seeds")
                    .on_hover_text("Trials per setting with seeds 0, 1, … on one train/test split: the table gives mean ± sample std, the verdicts paired differences by seed with a 95 % interval (fewer than 3 seeds: inconclusive; 10 for a full run). The drift check has one seed.");
                ui.checkbox(&mut self.quick, "quick").on_hover_text(
                    "Small enough for a browser: a quarter of the training samples, one hidden layer of 64, 60 epochs (enough to memorise noisy labels), fewer settings (the CLI's --quick); it can support a claim but not refute it. Off: the full setting, minutes per experiment on the CPU engine.",
                );
            });
            if running {
                if ui.button("Stop").on_hover_text("Cancel the trials in progress; the finished ones stay in the table").clicked() {
                    out.push(Command::StopExperiment);
                }
            } else if ui.button(format!("Run {}", self.selected.name())).on_hover_text("Train every trial of the experiment, a few steps per frame").clicked() {
                out.push(Command::StartExperiment(self.selected, self.seeds, self.quick));
            }
            ui.label(RichText::new(format!("Engine: {engine}")).weak());
        });
    }
}

/// Progress, problems, verdicts, table, figure and exports of a job.
fn results_ui(ui: &mut Ui, job: &ExperimentJob, out: &mut Vec<Command>) {
    let exp = job.experiment;
    ui.horizontal_wrapped(|ui| {
        ui.strong(format!("{}{}", exp.name(), if job.options.quick { " (quick)" } else { "" }));
        if exp != Experiment::DriftCheck {
            ui.label(format!("· {} seed{}", job.options.seeds, if job.options.seeds == 1 { "" } else { "s" }));
        }
        ui.label(format!("· {}", job.engine_describe()));
        if ui.button("Export results JSON").on_hover_text("Every trial and result and the verdicts, as `samlab experiment` writes them").clicked() {
            out.push(Command::ExportExperimentJson);
        }
        if ui.button("Export Markdown").on_hover_text("The table, the paper's numbers and the verdicts").clicked() {
            out.push(Command::ExportExperimentMarkdown);
        }
    });
    let unit = if exp == Experiment::DriftCheck { "values of m" } else { "trials" };
    let state = match job.state {
        JobState::Running => "running",
        JobState::Stopped => "stopped",
        JobState::Finished => "finished",
    };
    let text = format!("{} / {} {unit} · {state} · {:.1} s", job.done(), job.total(), job.elapsed().as_secs_f64());
    ui.add(egui::ProgressBar::new(job.fraction()).text(text).desired_height(18.0));
    for line in job.current() {
        ui.label(RichText::new(line).weak());
    }
    for p in &job.problems {
        ui.colored_label(ERROR_RED, p);
    }
    let summary = job.summary();
    if !summary.verdicts.is_empty() {
        ui.add_space(4.0);
        ui.strong("What these numbers say");
        for v in &summary.verdicts {
            ui.horizontal_wrapped(|ui| {
                ui.label("•");
                let color = match v.verdict {
                    crate::experiments::Outcome::Holds => egui::Color32::from_rgb(40, 150, 70),
                    crate::experiments::Outcome::DoesNotHold => ERROR_RED,
                    crate::experiments::Outcome::Inconclusive => egui::Color32::from_rgb(170, 130, 20),
                };
                ui.colored_label(color, egui::RichText::new(v.verdict.word()).strong());
                ui.add(egui::Label::new(v.text.replace("**", "")).wrap());
            });
        }
    }
    ui.add_space(4.0);
    table_ui(ui, exp, &summary.table);
    ui.add_space(6.0);
    figure_ui(ui, exp, &summary.panels);
}

/// The Markdown table as a grid (the text the CLI writes, cell by cell).
fn table_ui(ui: &mut Ui, exp: Experiment, markdown: &str) {
    let (header, rows) = table_cells(markdown);
    if header.is_empty() {
        return;
    }
    if exp == Experiment::DriftCheck
        && let Some(intro) = markdown.lines().next().filter(|l| !l.starts_with('|'))
    {
        ui.label(RichText::new(intro).weak());
    }
    // A named region, so that a screen reader (and the UI test) can find the table.
    ui.scope_builder(egui::UiBuilder::new().accessibility_label("Results table"), |ui| {
        egui::Grid::new(("experiment_table", exp.name())).striped(true).spacing([14.0, 3.0]).show(ui, |ui| {
            for h in &header {
                let r = ui.strong(h);
                if h == "ms/step" || h == "s to target" {
                    r.on_hover_text(format!("In the app, ms/step is {MS_PER_STEP_NOTE}."));
                }
            }
            ui.end_row();
            for row in &rows {
                for c in row {
                    ui.label(c);
                }
                ui.end_row();
            }
        });
    });
    if rows.is_empty() {
        ui.label(RichText::new("No trial has finished yet.").weak());
    }
}

/// Marks at the integers in view (log₂ and categorical axes), none when zoomed far out.
fn integer_marks(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    if !(lo.is_finite() && hi.is_finite()) || hi - lo > 64.0 {
        return Vec::new();
    }
    (lo.ceil() as i64..=hi.floor() as i64).map(|v| GridMark { value: v as f64, step_size: 1.0 }).collect()
}

fn figure_ui(ui: &mut Ui, exp: Experiment, panels: &[Panel]) {
    if panels.is_empty() {
        return;
    }
    let cols = if ui.available_width() > 1000.0 {
        panels.len().min(3)
    } else if ui.available_width() > 640.0 {
        panels.len().min(2)
    } else {
        1
    };
    // A series keeps its colour in every panel of the figure.
    let mut names: Vec<&str> = Vec::new();
    for s in panels.iter().flat_map(|p| &p.series) {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    let color = |name: &str| PALETTE[names.iter().position(|n| *n == name).unwrap_or(0) % PALETTE.len()];
    for (row, chunk) in panels.chunks(cols).enumerate() {
        ui.columns(cols, |columns| {
            for (k, (col, panel)) in columns.iter_mut().zip(chunk).enumerate() {
                panel_ui(col, &format!("experiment_{}_{}", exp.name(), row * cols + k), panel, &color);
            }
        });
        ui.add_space(6.0);
    }
}

/// One figure panel: lines with points and ± std error bars, dashed reference lines; `color`
/// gives each series its colour.
pub fn panel_ui(ui: &mut Ui, id: &str, panel: &Panel, color: &dyn Fn(&str) -> Color32) {
    ui.strong(&panel.title);
    let tx = |x: f64| if panel.log2_x { x.max(1e-12).log2() } else { x };
    let categorical = panel.categories.is_some();
    let xs: Vec<f64> = panel.series.iter().flat_map(|s| s.points.iter().map(|p| tx(p.0))).filter(|x| x.is_finite()).collect();
    let (x0, x1) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let span = if x1 > x0 { x1 - x0 } else { 1.0 };
    let cap = 0.02 * span.max(if categorical { 2.0 } else { 0.0 });
    let mut plot =
        Plot::new(id).height(230.0).legend(Legend::default().text_style(egui::TextStyle::Small)).y_axis_label(panel.y_label.clone()).allow_scroll(false);
    // Tick labels one unit apart (powers of two, categories) come closer than egui_plot's default
    // 60 points: let them, down to the width of the text.
    let axis = AxisHints::new_x().label(panel.x_label.clone()).label_spacing(16.0..=24.0);
    let mut key = None;
    if let Some(cats) = panel.categories.clone() {
        let n = cats.len().max(1);
        // Names on the axis when they fit (about 7 points a character), numbers and a key below otherwise.
        let longest = cats.iter().map(|c| c.chars().count()).max().unwrap_or(0) as f32;
        let fits = longest * 7.5 + 8.0 < ui.available_width() / n as f32;
        if !fits {
            key = Some(cats.iter().enumerate().map(|(i, c)| format!("{} {c}", i + 1)).collect::<Vec<_>>().join(" · "));
        }
        let name = move |mark: GridMark| -> String {
            let i = mark.value.round();
            match cats.get(i as usize) {
                Some(c) if (mark.value - i).abs() < 1e-6 && i >= 0.0 => {
                    if fits {
                        c.clone()
                    } else {
                        format!("{}", i + 1.0)
                    }
                }
                _ => String::new(),
            }
        };
        plot = plot.include_x(-0.5).include_x(n as f64 - 0.5).x_grid_spacer(integer_marks).custom_x_axes(vec![axis.formatter(move |mark, _| name(mark))]);
    } else if panel.log2_x {
        let power = |mark: GridMark, _: &std::ops::RangeInclusive<f64>| format!("{}", 2f64.powf(mark.value).round());
        plot = plot.x_grid_spacer(integer_marks).custom_x_axes(vec![axis.formatter(power)]);
    } else {
        plot = plot.x_axis_label(panel.x_label.clone());
    }
    if x1 >= x0 && !categorical {
        plot = plot.include_x(x0 - 0.05 * span).include_x(x1 + 0.05 * span);
    }
    plot.show(ui, |p| {
        for s in &panel.series {
            let color = color(&s.name);
            if let Some((mean, std)) = s.reference {
                let name = format!("{} {}", s.name, crate::experiments::sig(mean));
                p.hline(HLine::new(name.clone(), mean).color(color).style(LineStyle::dashed_loose()).width(1.8));
                if std > 0.0 {
                    for y in [mean - std, mean + std] {
                        p.hline(HLine::new(name.clone(), y).color(color).style(LineStyle::dotted_dense()).width(1.0));
                    }
                }
                continue;
            }
            let mut pts: Vec<[f64; 3]> = s.points.iter().map(|&(x, m, sd)| [tx(x), m, sd]).filter(|p| p.iter().all(|v| v.is_finite())).collect();
            pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let centres: Vec<[f64; 2]> = pts.iter().map(|p| [p[0], p[1]]).collect();
            if !categorical {
                p.line(Line::new(s.name.clone(), PlotPoints::from(centres.clone())).color(color).width(1.8));
            }
            p.points(Points::new(s.name.clone(), PlotPoints::from(centres)).color(color).radius(3.5).filled(true));
            for &[x, m, sd] in &pts {
                if sd > 0.0 {
                    let bar = vec![[x, m - sd], [x, m + sd]];
                    p.line(Line::new(s.name.clone(), PlotPoints::from(bar)).color(color).width(1.0));
                    for y in [m - sd, m + sd] {
                        p.line(Line::new(s.name.clone(), PlotPoints::from(vec![[x - cap, y], [x + cap, y]])).color(color).width(1.0));
                    }
                }
            }
        }
    });
    if let Some(key) = key {
        ui.label(RichText::new(key).small().weak());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_split_into_cells_with_escaped_bars_kept() {
        let md = "intro line\n\n| m | max \\|z\\| | seeds |\n|---|---|---|\n| 1 | 0.50 ± 0.10 | 2 |\n| 8 | – | 2 |\n";
        let (header, rows) = table_cells(md);
        assert_eq!(header, ["m", "max |z|", "seeds"]);
        assert_eq!(rows, [vec!["1", "0.50 ± 0.10", "2"], vec!["8", "–", "2"]]);
        assert_eq!(table_cells("no table"), (vec![], vec![]));
    }
}
