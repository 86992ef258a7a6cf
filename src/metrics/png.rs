//! Pictures of landscapes and decision surfaces as PNG, drawn by hand into an RGB buffer: a heat
//! map of log-loss, contour lines by marching squares, the projected trajectory as a polyline.

use super::landscape::{Grid, TrajectoryPoint};
use super::surface::DecisionSurface;
use crate::error::{Error, Result};

/// An 8-bit RGB image, row 0 at the top.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, data: vec![0; width * height * 3] }
    }

    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        let k = 3 * (y * self.width + x);
        [self.data[k], self.data[k + 1], self.data[k + 2]]
    }

    /// Sets a pixel; coordinates outside the image are ignored (lines clip themselves this way).
    pub fn put(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let k = 3 * (y as usize * self.width + x as usize);
            self.data[k..k + 3].copy_from_slice(&c);
        }
    }

    /// A line from (x0, y0) to (x1, y1) in pixel coordinates, `thick` pixels wide (DDA).
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), thick: i64, c: [u8; 3]) {
        if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
            return;
        }
        // Clip absurdly long lines (a projection far outside the range) to a sane length.
        let limit = 4.0 * (self.width + self.height) as f64;
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil()).min(limit) as usize + 1;
        let r = thick / 2;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = ((x0 + t * (x1 - x0)).round() as i64, (y0 + t * (y1 - y0)).round() as i64);
            for dy in -r..thick - r {
                for dx in -r..thick - r {
                    self.put(x + dx, y + dy, c);
                }
            }
        }
    }

    /// A filled square of side 2·r + 1 centred on (x, y).
    pub fn dot(&mut self, (x, y): (f64, f64), r: i64, c: [u8; 3]) {
        if !(x.is_finite() && y.is_finite()) {
            return;
        }
        let (x, y) = (x.round() as i64, y.round() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                self.put(x + dx, y + dy, c);
            }
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(|e| Error::Data(format!("PNG: {e}")))?;
            w.write_image_data(&self.data).map_err(|e| Error::Data(format!("PNG: {e}")))?;
        }
        Ok(out)
    }
}

/// Viridis, sampled at 9 stops and interpolated linearly; t in [0, 1].
pub fn viridis(t: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [71.0, 44.0, 122.0],
        [59.0, 81.0, 139.0],
        [44.0, 113.0, 142.0],
        [33.0, 144.0, 141.0],
        [39.0, 173.0, 129.0],
        [92.0, 200.0, 99.0],
        [170.0, 220.0, 50.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 1.0 };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let c = |k: usize| (STOPS[i][k] + f * (STOPS[i + 1][k] - STOPS[i][k])).round() as u8;
    [c(0), c(1), c(2)]
}

/// Contour segments of the level `level` of a field given at grid nodes, `values[j][i]`, by
/// marching squares; segment ends are in grid coordinates (i, j) (fractions between nodes).
/// Saddle cells are split by the cell's mean value.
pub fn marching_squares(values: &[Vec<f64>], level: f64) -> Vec<((f64, f64), (f64, f64))> {
    let mut segs = Vec::new();
    let rows = values.len();
    for j in 0..rows.saturating_sub(1) {
        let cols = values[j].len().min(values[j + 1].len());
        for i in 0..cols.saturating_sub(1) {
            // corners counter-clockwise from bottom-left: (i,j) (i+1,j) (i+1,j+1) (i,j+1)
            let v = [values[j][i], values[j][i + 1], values[j + 1][i + 1], values[j + 1][i]];
            if v.iter().any(|x| !x.is_finite()) {
                continue;
            }
            let p = [(i as f64, j as f64), (i as f64 + 1.0, j as f64), (i as f64 + 1.0, j as f64 + 1.0), (i as f64, j as f64 + 1.0)];
            // Crossing point on edge e (between corner e and corner e+1).
            let cross = |e: usize| {
                let (a, b) = (e, (e + 1) % 4);
                let t = (level - v[a]) / (v[b] - v[a]);
                (p[a].0 + t * (p[b].0 - p[a].0), p[a].1 + t * (p[b].1 - p[a].1))
            };
            let above: Vec<bool> = v.iter().map(|&x| x > level).collect();
            let edges: Vec<usize> = (0..4).filter(|&e| above[e] != above[(e + 1) % 4]).collect();
            match edges.len() {
                2 => segs.push((cross(edges[0]), cross(edges[1]))),
                4 => {
                    // Saddle: corners 0 and 2 on one side, 1 and 3 on the other.
                    let centre_above = v.iter().sum::<f64>() / 4.0 > level;
                    if centre_above == above[0] {
                        // corner 0's side joins through the centre: cut off corners 1 and 3
                        segs.push((cross(0), cross(1)));
                        segs.push((cross(2), cross(3)));
                    } else {
                        segs.push((cross(3), cross(0)));
                        segs.push((cross(1), cross(2)));
                    }
                }
                _ => {}
            }
        }
    }
    segs
}

/// The landscape picture: log-loss heat map (viridis, dark = low), `contours` contour lines
/// evenly spaced in log-loss, the trajectory's projection (red polyline with dots, ending in a
/// white dot at the centre w) and the centre marked by a white cross.
pub fn landscape_image(grid: &Grid, trajectory: &[TrajectoryPoint], contours: usize, size: usize) -> Result<Rgb> {
    let (na, nb) = (grid.alphas.len(), grid.betas.len());
    if na < 2 || nb < 2 || grid.loss.len() != nb || grid.loss.iter().any(|r| r.len() != na) {
        return Err(Error::Data(format!("landscape picture: needs a grid of at least 2×2 points, got {na}×{nb}")));
    }
    if !(16..=8192).contains(&size) {
        return Err(Error::invalid("picture size", size, "16 to 8192 pixels"));
    }
    let log: Vec<Vec<f64>> = grid.loss.iter().map(|r| r.iter().map(|&l| if l > 0.0 { l.ln() } else { f64::NAN }).collect()).collect();
    let finite = log.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut img = Rgb::new(size, size);
    // Grid coordinates of pixel (x, y): i along α to the right, j along β upwards.
    let gx = |x: usize| x as f64 * (na - 1) as f64 / (size - 1) as f64;
    let gy = |y: usize| (size - 1 - y) as f64 * (nb - 1) as f64 / (size - 1) as f64;
    for y in 0..size {
        for x in 0..size {
            let (fi, fj) = (gx(x), gy(y));
            let (i, j) = ((fi.floor() as usize).min(na - 2), (fj.floor() as usize).min(nb - 2));
            let (u, w) = (fi - i as f64, fj - j as f64);
            let v = (1.0 - u) * (1.0 - w) * log[j][i] + u * (1.0 - w) * log[j][i + 1] + u * w * log[j + 1][i + 1] + (1.0 - u) * w * log[j + 1][i];
            img.put(x as i64, y as i64, viridis((v - lo) / span));
        }
    }
    // Pixel of grid coordinates.
    let to_px = |(i, j): (f64, f64)| (i * (size - 1) as f64 / (na - 1) as f64, (size - 1) as f64 - j * (size - 1) as f64 / (nb - 1) as f64);
    for k in 1..=contours {
        let level = lo + span * k as f64 / (contours + 1) as f64;
        for (a, b) in marching_squares(&log, level) {
            img.line(to_px(a), to_px(b), 1, [235, 235, 235]);
        }
    }
    // Trajectory: (α, β) to pixels through the axes' ranges.
    let (a0, a1) = (grid.alphas[0], grid.alphas[na - 1]);
    let (b0, b1) = (grid.betas[0], grid.betas[nb - 1]);
    let ab_px = |a: f64, b: f64| ((a - a0) / (a1 - a0) * (size - 1) as f64, (size - 1) as f64 - (b - b0) / (b1 - b0) * (size - 1) as f64);
    let red = [230, 40, 40];
    for pair in trajectory.windows(2) {
        img.line(ab_px(pair[0].alpha, pair[0].beta), ab_px(pair[1].alpha, pair[1].beta), 2, red);
    }
    for p in trajectory {
        img.dot(ab_px(p.alpha, p.beta), 2, red);
    }
    let c = ab_px(0.0, 0.0);
    img.line((c.0 - 6.0, c.1), (c.0 + 6.0, c.1), 2, [255, 255, 255]);
    img.line((c.0, c.1 - 6.0), (c.0, c.1 + 6.0), 2, [255, 255, 255]);
    Ok(img)
}

/// Class colours of the decision surface (tab10).
pub const CLASS_COLORS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// The decision surface: each pixel the predicted class's colour, faded towards white as the
/// confidence drops to 1/classes; `points` (x, y, class) drawn as dark-rimmed dots.
pub fn surface_image(s: &DecisionSurface, points: &[(f64, f64, u32)]) -> Result<Rgb> {
    if s.width < 2 || s.height < 2 || s.predicted.len() != s.width * s.height {
        return Err(Error::Data(format!("surface picture: needs at least 2×2 points, got {}×{}", s.width, s.height)));
    }
    let mut img = Rgb::new(s.width, s.height);
    let floor = 1.0 / s.n_classes.max(1) as f64;
    for j in 0..s.height {
        for i in 0..s.width {
            let k = j * s.width + i;
            let c = CLASS_COLORS[s.predicted[k] as usize % CLASS_COLORS.len()];
            let strength = ((s.confidence[k] as f64 - floor) / (1.0 - floor).max(1e-9)).clamp(0.0, 1.0) * 0.6;
            let mix = |ch: u8| (255.0 + strength * (ch as f64 - 255.0)).round() as u8;
            img.put(i as i64, (s.height - 1 - j) as i64, [mix(c[0]), mix(c[1]), mix(c[2])]);
        }
    }
    let px = |x: f64, y: f64| {
        let u = (x - s.x_range[0]) / (s.x_range[1] - s.x_range[0]) * (s.width - 1) as f64;
        let v = (s.height - 1) as f64 - (y - s.y_range[0]) / (s.y_range[1] - s.y_range[0]) * (s.height - 1) as f64;
        (u, v)
    };
    for &(x, y, c) in points {
        img.dot(px(x, y), 2, [30, 30, 30]);
        img.dot(px(x, y), 1, CLASS_COLORS[c as usize % CLASS_COLORS.len()]);
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marching_squares_finds_a_circle_where_the_field_crosses_the_level() {
        // f = i² + j² around the centre of a 21×21 grid; level 25: the circle of radius 5.
        let values: Vec<Vec<f64>> = (0..21).map(|j| (0..21).map(|i| (i as f64 - 10.0).powi(2) + (j as f64 - 10.0).powi(2)).collect()).collect();
        let segs = marching_squares(&values, 25.0);
        assert!(segs.len() >= 20, "{}", segs.len());
        for ((x0, y0), (x1, y1)) in segs {
            for (x, y) in [(x0, y0), (x1, y1)] {
                let r = ((x - 10.0).powi(2) + (y - 10.0).powi(2)).sqrt();
                assert!((r - 5.0).abs() < 0.15, "segment end at radius {r}");
            }
        }
    }

    #[test]
    fn viridis_runs_from_dark_purple_to_yellow() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(f64::NAN), [253, 231, 37]);
    }
}
