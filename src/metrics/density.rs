//! The Hessian's eigenvalue density by stochastic Lanczos quadrature
//! (docs/ALGORITHMS.md#hessian-eigenvalue-density): Lanczos with full reorthogonalisation from a
//! few seeded Rademacher starts, the eigen-decomposition of each tridiagonal (implicit QL), Ritz
//! values as nodes and squared first components as weights, Gaussian broadening on a grid, and
//! the outliers that stand apart from the bulk.

use super::Objective;
use super::objective::hvp_in_pieces;
use crate::error::{Error, Result};
use crate::resumable::{block_on, pause};
use crate::rng::{Rng, Stream};
use serde::{Deserialize, Serialize};

/// Most Rademacher starts.
pub const MAX_STARTS: usize = 64;
/// Most Lanczos steps per start (the basis is kept: steps × parameters numbers in memory).
pub const MAX_STEPS: usize = 200;
/// Fewest and most points of the density's grid.
pub const MIN_GRID: usize = 32;
pub const MAX_GRID: usize = 20_000;
/// The bulk grows over gaps of at most this many interquartile ranges (see `outliers`).
pub const OUTLIER_GAP: f64 = 2.0;

/// Settings of the density estimate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DensityConfig {
    /// Rademacher start vectors (independent Lanczos runs, averaged).
    pub starts: usize,
    /// Lanczos steps per start (Hessian-vector products); at most the parameter count is used.
    pub steps: usize,
    /// Points of the grid the density is evaluated on.
    pub grid: usize,
    /// Gaussian broadening relative to the spread of the Ritz values: the width used is
    /// σ = sigma·(θ_max − θ_min) (sigma·max(|θ|, 1) when all Ritz values coincide).
    pub sigma: f64,
    /// Seeds the start vectors.
    pub seed: u64,
}

impl Default for DensityConfig {
    fn default() -> Self {
        Self { starts: 4, steps: 60, grid: 512, sigma: 0.01, seed: 0 }
    }
}

impl DensityConfig {
    /// Checks every field; the error names the field and its allowed range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_STARTS).contains(&self.starts) {
            return Err(Error::invalid("density_starts", self.starts, format!("1 to {MAX_STARTS}")));
        }
        if !(2..=MAX_STEPS).contains(&self.steps) {
            return Err(Error::invalid("density_steps", self.steps, format!("2 to {MAX_STEPS} (at most the parameter count is used)")));
        }
        if !(MIN_GRID..=MAX_GRID).contains(&self.grid) {
            return Err(Error::invalid("density_grid", self.grid, format!("{MIN_GRID} to {MAX_GRID}")));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0 && self.sigma <= 1.0) {
            return Err(Error::invalid("density_sigma", self.sigma, "0 < σ ≤ 1 (relative to the spectrum's width)"));
        }
        Ok(())
    }
}

/// A group of Ritz values beyond the bulk: where it lies and the share of the spectrum it carries
/// (about its multiplicity divided by the parameter count).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Outlier {
    pub value: f64,
    pub weight: f64,
}

/// The estimated eigenvalue density of H(w).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Density {
    pub n_params: usize,
    pub starts: usize,
    /// Lanczos steps of the longest start (a start stops early when its Krylov space closes).
    pub steps: usize,
    /// [smallest, largest] Ritz value.
    pub support: [f64; 2],
    /// The Gaussian width used (absolute).
    pub sigma: f64,
    /// The grid and the density on it (∫ y dx ≈ 1).
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Every start's Ritz values, ascending, with their weights (squared first components divided
    /// by the number of starts: they sum to 1).
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
    /// [lower, upper] edge of the bulk (see `outliers`).
    pub bulk: [f64; 2],
    /// Ritz values beyond the bulk, grouped (within 2σ), ascending.
    pub outliers: Vec<Outlier>,
    /// P·Σ weight·node, the quadrature's estimate of tr H (the mean of the density times P).
    pub trace_estimate: f64,
    /// Hessian-vector products spent.
    pub hvps: usize,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The tridiagonal T of one Lanczos run: diagonal `alpha`, off-diagonal `beta`
/// (`beta.len() == alpha.len() − 1`), and the Hessian-vector products spent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tridiagonal {
    pub alpha: Vec<f64>,
    pub beta: Vec<f64>,
    pub hvps: usize,
}

/// At most `k` Lanczos steps on H(w) from `start` (any nonzero vector), each new basis vector
/// orthogonalised against all earlier ones twice (full reorthogonalisation, so the Ritz values
/// carry no spurious copies). Stops early when the next residual is below 1e-10 of the largest
/// coefficient so far: the Krylov space is invariant and T is exact on it.
pub fn lanczos<O: Objective + ?Sized>(obj: &mut O, w: &[f64], start: &[f64], k: usize) -> Result<Tridiagonal> {
    block_on(lanczos_in_pieces(obj, w, start, k))
}

/// `lanczos`, pausing after every step (a product and its reorthogonalisation).
async fn lanczos_in_pieces<O: Objective + ?Sized>(obj: &mut O, w: &[f64], start: &[f64], k: usize) -> Result<Tridiagonal> {
    let norm = dot(start, start).sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return Err(Error::Data("density: the Lanczos start vector is zero or not finite".into()));
    }
    let mut basis: Vec<Vec<f64>> = vec![start.iter().map(|v| v / norm).collect()];
    let mut t = Tridiagonal::default();
    let mut scale: f64 = 0.0;
    for j in 0..k {
        let q = &basis[j];
        let mut r = hvp_in_pieces(obj, w, q).await;
        t.hvps += 1;
        let a = dot(q, &r);
        r.iter_mut().zip(q).for_each(|(x, y)| *x -= a * y);
        if j > 0 {
            let b = t.beta[j - 1];
            r.iter_mut().zip(&basis[j - 1]).for_each(|(x, y)| *x -= b * y);
        }
        for _ in 0..2 {
            for u in &basis {
                let c = dot(&r, u);
                r.iter_mut().zip(u).for_each(|(x, y)| *x -= c * y);
            }
        }
        let b = dot(&r, &r).sqrt();
        if !(a.is_finite() && b.is_finite()) {
            return Err(Error::Data("density: a Hessian-vector product is not finite (the weights or the loss overflow)".into()));
        }
        t.alpha.push(a);
        scale = scale.max(a.abs()).max(b);
        if j + 1 == k || b <= 1e-10 * scale {
            break;
        }
        t.beta.push(b);
        basis.push(r.iter().map(|v| v / b).collect());
        pause().await;
    }
    Ok(t)
}

/// Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and off-diagonal `e`
/// (e[i] couples rows i and i+1), each with the first component of its unit eigenvector.
/// Implicit QL with Wilkinson-style shifts, carrying only the first row of the eigenvector
/// matrix (Golub–Welsch). `None` if an eigenvalue does not converge in 60 sweeps.
pub fn tridiagonal_eigen(d: &[f64], e: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    let n = d.len();
    let mut d = d.to_vec();
    let mut e: Vec<f64> = e.iter().copied().take(n.saturating_sub(1)).collect();
    e.resize(n, 0.0);
    let mut z = vec![0.0; n];
    if n > 0 {
        z[0] = 1.0;
    }
    for l in 0..n {
        let mut sweeps = 0;
        loop {
            // The first negligible off-diagonal entry at or after l splits the matrix.
            let mut m = l;
            while m + 1 < n && e[m].abs() > f64::EPSILON * (d[m].abs() + d[m + 1].abs()) {
                m += 1;
            }
            if m == l {
                break;
            }
            sweeps += 1;
            if sweeps > 60 {
                return None;
            }
            let g0 = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let r0 = g0.hypot(1.0);
            let mut g = d[m] - d[l] + e[l] / (g0 + if g0 >= 0.0 { r0 } else { -r0 });
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut deflated = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                let r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                let r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                let zf = z[i + 1];
                z[i + 1] = s * z[i] + c * zf;
                z[i] = c * z[i] - s * zf;
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    if d.iter().chain(&z).any(|v| !v.is_finite()) {
        return None;
    }
    Some((d, z))
}

/// Start vector `s` of the density with this seed: entries ±1 from the stream `Lanczos`.
pub fn rademacher_start(seed: u64, s: usize, n: usize) -> Vec<f64> {
    let mut rng = Rng::stream(seed.wrapping_add(s as u64), Stream::Lanczos);
    (0..n).map(|_| if rng.next_u64() >> 63 == 1 { 1.0 } else { -1.0 }).collect()
}

/// The eigenvalue density of H(w) by stochastic Lanczos quadrature with `cfg`.
pub fn density<O: Objective + ?Sized>(obj: &mut O, w: &[f64], cfg: &DensityConfig) -> Result<Density> {
    block_on(density_in_pieces(obj, w, cfg))
}

/// `density`, pausing after every Lanczos step.
pub async fn density_in_pieces<O: Objective + ?Sized>(obj: &mut O, w: &[f64], cfg: &DensityConfig) -> Result<Density> {
    cfg.validate()?;
    let n = obj.n_params();
    if n == 0 || w.len() != n {
        return Err(Error::Data(format!("density: {} parameters given, the model has {n}", w.len())));
    }
    let k = cfg.steps.min(n);
    let mut pooled: Vec<(f64, f64)> = Vec::new();
    let (mut hvps, mut steps) = (0, 0);
    for s in 0..cfg.starts {
        let t = lanczos_in_pieces(obj, w, &rademacher_start(cfg.seed, s, n), k).await?;
        hvps += t.hvps;
        steps = steps.max(t.alpha.len());
        let (theta, first) =
            tridiagonal_eigen(&t.alpha, &t.beta).ok_or_else(|| Error::Data("density: the tridiagonal eigenproblem did not converge".into()))?;
        pooled.extend(theta.into_iter().zip(first).map(|(v, f)| (v, f * f / cfg.starts as f64)));
    }
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (nodes, weights): (Vec<f64>, Vec<f64>) = pooled.iter().copied().unzip();
    let support = [nodes[0], nodes[nodes.len() - 1]];
    let width = support[1] - support[0];
    let sigma = cfg.sigma * if width > 0.0 { width } else { support[1].abs().max(1.0) };
    let (x, y) = broaden(&nodes, &weights, sigma, cfg.grid);
    let (bulk, outliers) = outliers(&nodes, &weights, 2.0 * sigma);
    let mean: f64 = nodes.iter().zip(&weights).map(|(v, w)| v * w).sum();
    Ok(Density { n_params: n, starts: cfg.starts, steps, support, sigma, x, y, nodes, weights, bulk, outliers, trace_estimate: mean * n as f64, hvps })
}

/// Σ_j w_j·N(x; θ_j, σ²) on `points` evenly spaced x from 5σ below the smallest node to 5σ above
/// the largest (the Gaussians' mass outside is under 1e-6).
pub fn broaden(nodes: &[f64], weights: &[f64], sigma: f64, points: usize) -> (Vec<f64>, Vec<f64>) {
    let lo = nodes.iter().copied().fold(f64::INFINITY, f64::min) - 5.0 * sigma;
    let hi = nodes.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 5.0 * sigma;
    let dx = (hi - lo) / (points.max(2) - 1) as f64;
    let norm = 1.0 / (sigma * (std::f64::consts::TAU).sqrt());
    let x: Vec<f64> = (0..points.max(2)).map(|i| lo + dx * i as f64).collect();
    let y = x.iter().map(|&x| nodes.iter().zip(weights).map(|(&t, &w)| w * (-0.5 * ((x - t) / sigma).powi(2)).exp()).sum::<f64>() * norm).collect();
    (x, y)
}

/// The bulk and the outliers of a spectral measure given as sorted `nodes` with `weights`.
///
/// The rule: the bulk starts as the weighted interquartile range [q₂₅, q₇₅] of the nodes and grows
/// outwards node by node while the gap to the next node is at most `OUTLIER_GAP` times its
/// spread s = max(q₇₅ − q₂₅, 1% of the nodes' range). Nodes left outside are outliers; those
/// within `merge` of each other form one outlier (weighted mean value, summed weight).
pub fn outliers(nodes: &[f64], weights: &[f64], merge: f64) -> ([f64; 2], Vec<Outlier>) {
    let n = nodes.len();
    if n == 0 {
        return ([f64::NAN; 2], Vec::new());
    }
    let total: f64 = weights.iter().sum();
    let quantile = |q: f64| {
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            if acc >= q * total {
                return i;
            }
        }
        n - 1
    };
    let (mut lo, mut hi) = (quantile(0.25), quantile(0.75));
    let spread = (nodes[hi] - nodes[lo]).max(0.01 * (nodes[n - 1] - nodes[0]));
    let gap = OUTLIER_GAP * spread;
    while hi + 1 < n && nodes[hi + 1] - nodes[hi] <= gap {
        hi += 1;
    }
    while lo > 0 && nodes[lo] - nodes[lo - 1] <= gap {
        lo -= 1;
    }
    let mut out: Vec<Outlier> = Vec::new();
    for side in [0..lo, hi + 1..n] {
        let mut last: Option<f64> = None;
        for i in side {
            let (v, w) = (nodes[i], weights[i]);
            match out.last_mut() {
                Some(o) if last.is_some_and(|l| v - l <= merge) => {
                    let total = o.weight + w;
                    o.value = if total > 0.0 { (o.value * o.weight + v * w) / total } else { 0.5 * (o.value + v) };
                    o.weight = total;
                }
                _ => out.push(Outlier { value: v, weight: w }),
            }
            last = Some(v);
        }
    }
    ([nodes[lo], nodes[hi]], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_difference_matrix_has_its_closed_form_spectrum() {
        // tridiag(−1, 2, −1) of size n: λ_j = 2 − 2cos(jπ/(n+1)), first components
        // √(2/(n+1))·sin(jπ/(n+1)).
        let n = 17;
        let (mut ev, first) = tridiagonal_eigen(&vec![2.0; n], &vec![-1.0; n - 1]).unwrap();
        let mut pairs: Vec<(f64, f64)> = ev.iter().copied().zip(first.iter().map(|f| f * f)).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        ev.sort_by(f64::total_cmp);
        for (j, (v, w)) in pairs.iter().enumerate() {
            let a = (j + 1) as f64 * std::f64::consts::PI / (n + 1) as f64;
            assert!((v - (2.0 - 2.0 * a.cos())).abs() < 1e-12, "λ_{j} = {v}");
            assert!((w - 2.0 / (n + 1) as f64 * a.sin().powi(2)).abs() < 1e-12, "weight {j} = {w}");
        }
        assert!((pairs.iter().map(|p| p.1).sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_split_matrix_and_trivial_sizes_are_solved() {
        let (ev, first) = tridiagonal_eigen(&[3.0, 1.0, 2.0], &[0.0, 0.5]).unwrap();
        assert!(ev.contains(&3.0) && first[ev.iter().position(|&v| v == 3.0).unwrap()].abs() == 1.0, "{ev:?} {first:?}");
        assert_eq!(tridiagonal_eigen(&[4.0], &[]).unwrap(), (vec![4.0], vec![1.0]));
        assert_eq!(tridiagonal_eigen(&[], &[]).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn outliers_are_the_nodes_beyond_a_gap_and_a_flat_bulk_has_none() {
        let bulk: Vec<f64> = (0..40).map(|i| i as f64 / 39.0).collect();
        let w = vec![1.0 / 40.0; 40];
        let (edges, none) = outliers(&bulk, &w, 0.01);
        assert!(none.is_empty() && edges == [0.0, 1.0], "{edges:?} {none:?}");
        let mut nodes = bulk.clone();
        nodes.extend([9.0, 9.001, 20.0]);
        let mut weights = w.iter().map(|w| w * 0.97).collect::<Vec<_>>();
        weights.extend([0.01, 0.01, 0.01]);
        let (edges, found) = outliers(&nodes, &weights, 0.01);
        assert_eq!(edges, [0.0, 1.0]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!((found[0].value - 9.0005).abs() < 1e-9 && (found[0].weight - 0.02).abs() < 1e-12);
        assert_eq!(found[1].value, 20.0);
    }

    #[test]
    fn bad_settings_name_their_field() {
        for (cfg, field) in [
            (DensityConfig { starts: 0, ..DensityConfig::default() }, "density_starts"),
            (DensityConfig { steps: 1, ..DensityConfig::default() }, "density_steps"),
            (DensityConfig { steps: MAX_STEPS + 1, ..DensityConfig::default() }, "density_steps"),
            (DensityConfig { grid: 3, ..DensityConfig::default() }, "density_grid"),
            (DensityConfig { sigma: 0.0, ..DensityConfig::default() }, "density_sigma"),
            (DensityConfig { sigma: f64::NAN, ..DensityConfig::default() }, "density_sigma"),
        ] {
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(field) && !e.contains('\n'), "{e}");
        }
        DensityConfig::default().validate().unwrap();
    }
}
