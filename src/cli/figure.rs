//! Experiment figures as PNG: the panels of `panels` (mean ± std error bars over seeds, dashed
//! reference lines for the runs without an x) drawn with plotters into an RGB buffer.

use crate::experiments::panels::Panel;
use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::Once;

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT).ok();
    });
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn err<E: std::fmt::Display>(e: E) -> Error {
    Error::Data(format!("drawing the figure: {e}"))
}

/// Panels side by side, each 560×420, as a PNG file.
pub fn render(path: &str, panels: &[Panel]) -> Result<()> {
    register_font();
    let (w, h) = (560 * panels.len().max(1) as u32, 420u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            draw_panel(panel, area)?;
        }
        root.present().map_err(err)?;
    }
    let file = std::fs::File::create(path).map_err(|e| Error::write(path, e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(&buf).map_err(err)?;
    Ok(())
}

fn draw_panel(panel: &Panel, area: &DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()> {
    let tx = |x: f64| if panel.log2_x { x.max(1e-12).log2() } else { x };
    let mut xs: Vec<f64> = panel.series.iter().flat_map(|s| s.points.iter().map(|p| tx(p.0))).collect();
    let mut ys: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]).chain(s.reference.iter().flat_map(|r| [r.0 - r.1, r.0 + r.1])))
        .filter(|v| v.is_finite())
        .collect();
    if xs.is_empty() {
        xs = vec![0.0, 1.0];
    }
    if ys.is_empty() {
        ys = vec![0.0, 1.0];
    }
    let (x0, x1) = (xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let (y0, y1) = (ys.iter().copied().fold(f64::INFINITY, f64::min), ys.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let (xpad, ypad) = (((x1 - x0) * 0.08).max(0.5), ((y1 - y0) * 0.12).max(1e-6 + y1.abs() * 0.02));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (y0 - ypad)..(y1 + ypad))
        .map_err(err)?;
    let log2 = panel.log2_x;
    let cats = panel.categories.clone();
    let x_fmt = move |v: &f64| match &cats {
        Some(c) => {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 { c.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
        }
        None if log2 => format!("{}", 2f64.powf(*v).round()),
        None => format!("{v:.2}"),
    };
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_label_formatter(&x_fmt)
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        if let Some((mean, std)) = s.reference {
            chart
                .draw_series(DashedLineSeries::new(vec![(x0 - xpad, mean), (x1 + xpad, mean)], 8, 5, color.stroke_width(2)))
                .map_err(err)?
                .label(format!("{} {}", s.name, crate::experiments::sig(mean)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            if std > 0.0 {
                chart
                    .draw_series(DashedLineSeries::new(vec![(x0 - xpad, mean + std), (x1 + xpad, mean + std)], 2, 4, color.mix(0.5).stroke_width(1)))
                    .map_err(err)?;
                chart
                    .draw_series(DashedLineSeries::new(vec![(x0 - xpad, mean - std), (x1 + xpad, mean - std)], 2, 4, color.mix(0.5).stroke_width(1)))
                    .map_err(err)?;
            }
            continue;
        }
        let pts: Vec<(f64, f64)> = s.points.iter().map(|p| (tx(p.0), p.1)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled()))).map_err(err)?;
        chart.draw_series(s.points.iter().map(|p| ErrorBar::new_vertical(tx(p.0), p.1 - p.2, p.1, p.1 + p.2, color.stroke_width(1), 8))).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    Ok(())
}
