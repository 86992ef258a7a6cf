//! What an experiment's figure shows, as plain data: panels of series (x, mean, std) and
//! reference lines. The CLI renders them to PNG (`figure`), the app with egui_plot.

use super::drift::DriftReport;
use super::{Cell, Experiment, TrialResult, aggregate, metrics};

/// One line of a panel: points (x, mean, std); a series without x values is a horizontal line.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64, f64)>,
    pub reference: Option<(f64, f64)>,
}

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log2_x: bool,
    /// Category names for a categorical x axis (x = 0, 1, 2, …).
    pub categories: Option<Vec<String>>,
    pub series: Vec<Series>,
}

/// Series of one metric: cells with x become lines, cells without x reference lines.
fn series_of(cells: &[Cell], scale: f64) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for c in cells {
        let idx = match out.iter().position(|s| s.name == c.series) {
            Some(i) => i,
            None => {
                out.push(Series { name: c.series.clone(), points: Vec::new(), reference: None });
                out.len() - 1
            }
        };
        match c.x {
            Some(x) => out[idx].points.push((x, scale * c.mean, scale * c.std)),
            None => out[idx].reference = Some((scale * c.mean, scale * c.std)),
        }
    }
    out
}

/// The figure of a training experiment: one panel per reported metric that has data
/// (at most three), or categorical panels for the experiments without an x axis.
pub fn experiment_panels(exp: Experiment, results: &[TrialResult]) -> Vec<Panel> {
    let (x_label, log2) = match exp {
        Experiment::MSweep => ("m (micro-batch size)", true),
        Experiment::LabelNoise => ("label noise", false),
        Experiment::RwsamLambda => ("λ (target-ESS series: ESS)", false),
        _ => ("", false),
    };
    let categorical = matches!(exp, Experiment::NoiseTrace | Experiment::Cost);
    let mut panels = Vec::new();
    for (name, metric, pct) in metrics(exp) {
        let cells = aggregate(results, metric);
        if cells.is_empty() {
            continue;
        }
        let scale = if pct { 100.0 } else { 1.0 };
        let y_label = if pct { format!("{name} (%)") } else { name.to_string() };
        if categorical {
            let categories: Vec<String> = cells.iter().map(|c| c.series.clone()).collect();
            let series = vec![Series {
                name: name.to_string(),
                points: cells.iter().enumerate().map(|(i, c)| (i as f64, scale * c.mean, scale * c.std)).collect(),
                reference: None,
            }];
            panels.push(Panel { title: name.to_string(), x_label: "optimizer".into(), y_label, log2_x: false, categories: Some(categories), series });
        } else {
            panels.push(Panel { title: name.to_string(), x_label: x_label.into(), y_label, log2_x: log2, categories: None, series: series_of(&cells, scale) });
        }
        if panels.len() == 3 {
            break;
        }
    }
    panels
}

/// The drift check's figure: the measured tr V term of the mean step against (ρ/m)·‖½∇tr V‖.
pub fn drift_panels(report: &DriftReport) -> Vec<Panel> {
    let measured = Series {
        name: "measured (Monte Carlo ± stderr)".into(),
        points: report.rows.iter().map(|r| (r.m as f64, r.variance_term_measured, r.variance_term_stderr)).collect(),
        reference: None,
    };
    let predicted = Series {
        name: "SDE drift (ρ/m)·‖½∇tr V‖".into(),
        points: report.rows.iter().map(|r| (r.m as f64, r.variance_term_predicted, 0.0)).collect(),
        reference: None,
    };
    vec![Panel {
        title: "m-USAM: the tr V term of the mean step".into(),
        x_label: "m".into(),
        y_label: "component along ∇tr V".into(),
        log2_x: true,
        categories: None,
        series: vec![predicted, measured],
    }]
}

/// The RW-SAM drift check's figure: m·c against the target ESS per arm (m-USAM: 1) on the
/// quadratic; on the MLP c of the ρ-part per arm, and m-USAM's ratio to the SDE drift.
pub fn rwsam_drift_panels(report: &super::rwsam_drift::RwDriftReport) -> Vec<Panel> {
    let mut series: Vec<Series> = Vec::new();
    for row in &report.rows {
        let point = (row.m as f64, row.m_times_c, row.m as f64 * row.coefficient_stderr);
        match series.iter_mut().find(|s| s.name == row.arm) {
            Some(s) => s.points.push(point),
            None => series.push(Series { name: row.arm.clone(), points: vec![point], reference: None }),
        }
    }
    series.push(Series { name: "m-USAM (m·c = 1)".into(), points: Vec::new(), reference: Some((1.0, 0.0)) });
    let mut panels = vec![Panel {
        title: "RW-SAM at ESS = m: the tr V term, in units of m-USAM's".into(),
        x_label: "target ESS = m".into(),
        y_label: "m·c".into(),
        log2_x: true,
        categories: None,
        series,
    }];
    if let Some(mlp) = &report.mlp {
        let mut series: Vec<Series> = Vec::new();
        for row in &mlp.rows {
            let point = (row.m as f64, row.rho_coefficient, row.rho_coefficient_stderr);
            match series.iter_mut().find(|s| s.name == row.arm) {
                Some(s) => s.points.push(point),
                None => series.push(Series { name: row.arm.clone(), points: vec![point], reference: None }),
            }
        }
        let sde = mlp.m_usam.iter().map(|m| (m.m as f64, m.sde_ratio, m.sde_ratio_stderr)).collect();
        series.push(Series { name: "m-USAM ÷ SDE".into(), points: sde, reference: None });
        series.push(Series { name: "m-USAM (c = 1)".into(), points: Vec::new(), reference: Some((1.0, 0.0)) });
        panels.push(Panel {
            title: "MLP at fixed weights: RW-SAM's extra drift (ρ-part) along ½∇tr V, in units of m-USAM's".into(),
            x_label: "target ESS = m".into(),
            y_label: "c".into(),
            log2_x: true,
            categories: None,
            series,
        });
    }
    panels
}
