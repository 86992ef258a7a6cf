//! The two directions a loss landscape is drawn along (docs/ALGORITHMS.md#landscape-directions):
//! filter-normalised random directions (Li et al. 2018), the first two principal components of
//! the training trajectory (through the small Gram matrix of the snapshots), or the top two
//! Hessian eigenvectors at the centre (power iteration with deflation, `hessian::top_eigenvalues`).
//!
//! Random directions are filter-normalised, so their axis is in units of each neuron's weight
//! norm; the PCA and Hessian directions are unit vectors, so their axis is a distance in weight
//! space. Each pair comes with the range that suits it when none is asked for.

use super::Objective;
use super::hessian::top_eigenvalues_in_pieces;
use super::landscape::{Plane, Projection};
use super::objective::hvp_in_pieces;
use crate::error::{Error, Result};
use crate::model::MlpSpec;
use crate::resumable::{block_on, pause};
use serde::{Deserialize, Serialize};

/// Which pair of directions a landscape is drawn along.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Directions {
    /// Two seeded Gaussian directions, filter-normalised against the centre.
    #[default]
    Random,
    /// The first two principal components of the trajectory's displacements w_i − w.
    Pca,
    /// The top two eigenvectors of the Hessian of the evaluation-set loss at the centre.
    Hessian,
}

impl Directions {
    pub const ALL: [Directions; 3] = [Directions::Random, Directions::Pca, Directions::Hessian];

    /// The name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Directions::Random => "random",
            Directions::Pca => "pca",
            Directions::Hessian => "hessian",
        }
    }

    /// What the UI shows.
    pub fn label(self) -> &'static str {
        match self {
            Directions::Random => "Random",
            Directions::Pca => "PCA",
            Directions::Hessian => "Hessian",
        }
    }
}

/// What was learnt while finding the directions (reported beside the landscape).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DirectionsInfo {
    pub kind: Directions,
    /// PCA: the share of Σ_i ‖w_i − w‖² along PC1 and PC2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_variance: Option<[f64; 2]>,
    /// Hessian: λ₁ ≥ λ₂, the Rayleigh quotients of the two eigenvectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eigenvalues: Option<[f64; 2]>,
    /// Hessian: ‖H·v_k − λ_k·v_k‖ / |λ_k|, how well each vector is an eigenvector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eigen_residuals: Option<[f64; 2]>,
    /// Hessian: Hessian-vector products spent (power iteration and the residual check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hessian_products: Option<usize>,
    /// The range α, β ∈ [−r, r] that suits these directions: 1 for random ones; 1.25 × the
    /// trajectory's largest coordinate for PCA; 2/√λ₁ for the Hessian (where the quadratic model
    /// along d₁ has risen by 2 nats).
    pub suggested_range: f64,
}

/// Two directions through the centre and what is known about them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirectionPair {
    pub d1: Vec<f32>,
    pub d2: Vec<f32>,
    pub info: DirectionsInfo,
}

/// Largest range a landscape accepts (`LandscapeConfig::validate`).
const MAX_RANGE: f64 = 100.0;

/// Li et al.'s filter-normalised random pair (seeded).
pub fn random_pair(spec: &MlpSpec, center: &[f32], seed: u64) -> DirectionPair {
    let (d1, d2) = super::landscape::directions(spec, center, seed);
    DirectionPair { d1, d2, info: DirectionsInfo { kind: Directions::Random, suggested_range: 1.0, ..DirectionsInfo::default() } }
}

/// The first two principal components of the displacements r_i = w_i − w of the snapshots from
/// the centre w (not mean-centred: the plane must pass through w). With R the (k, n) matrix of
/// the r_i, the k×k Gram matrix G = R·Rᵀ has the eigenpairs (μ_j, v_j) and PC_j = Rᵀv_j / √μ_j
/// (unit length): k² dot products of length n instead of an n×n covariance. The explained
/// variance of PC_j is μ_j / tr G. Signs put the first snapshot at α, β ≥ 0.
pub fn pca_pair(center: &[f32], snapshots: &[(u64, Vec<f32>)]) -> Result<DirectionPair> {
    block_on(pca_pair_in_pieces(center, snapshots))
}

/// `pca_pair`, pausing after each row of the Gram matrix, each Jacobi sweep and each component.
pub async fn pca_pair_in_pieces(center: &[f32], snapshots: &[(u64, Vec<f32>)]) -> Result<DirectionPair> {
    let n = center.len();
    let rows: Vec<Vec<f64>> = snapshots
        .iter()
        .filter(|(_, w)| w.len() == n)
        .map(|(_, w)| w.iter().zip(center).map(|(&a, &c)| a as f64 - c as f64).collect::<Vec<f64>>())
        .filter(|r| r.iter().any(|&x| x != 0.0))
        .collect();
    let refuse = |why: String| {
        Error::invalid("directions", "pca", format!("a trajectory with two independent displacements from the centre ({why}); use random or hessian"))
    };
    if rows.len() < 2 {
        return Err(refuse(format!("{} snapshot(s) away from the centre", rows.len())));
    }
    let k = rows.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut gram = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let g = dot(&rows[i], &rows[j]);
            gram[i * k + j] = g;
            gram[j * k + i] = g;
        }
        pause().await;
    }
    let trace: f64 = (0..k).map(|i| gram[i * k + i]).sum();
    let (values, vectors) = symmetric_eigen_in_pieces(gram, k).await;
    // (A NaN from non-finite weights is refused too.)
    if values[1].partial_cmp(&(1e-12 * values[0])) != Some(std::cmp::Ordering::Greater) {
        return Err(refuse("all snapshots lie on one line".into()));
    }
    let mut pcs = Vec::with_capacity(2);
    let mut extent: f64 = 0.0;
    for j in 0..2 {
        let mut v: Vec<f64> = (0..k).map(|i| vectors[i * k + j]).collect();
        // Snapshot i's coordinate along PC_j is (R·PC_j)_i = √μ_j·v_j[i]: the first snapshot
        // (the oldest) gets a coordinate ≥ 0.
        if v.iter().find(|x| x.abs() > 1e-12).is_some_and(|&x| x < 0.0) {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        let s = values[j].sqrt();
        extent = extent.max(v.iter().map(|x| (x * s).abs()).fold(0.0, f64::max));
        let pc: Vec<f32> = (0..n).map(|p| (rows.iter().zip(&v).map(|(r, &c)| r[p] * c).sum::<f64>() / s) as f32).collect();
        pcs.push(pc);
        pause().await;
    }
    let d2 = pcs.pop().expect("two components");
    let d1 = pcs.pop().expect("two components");
    let info = DirectionsInfo {
        kind: Directions::Pca,
        explained_variance: Some([values[0] / trace, values[1] / trace]),
        suggested_range: (1.25 * extent).clamp(1e-3, MAX_RANGE),
        ..DirectionsInfo::default()
    };
    Ok(DirectionPair { d1, d2, info })
}

/// The top two Hessian eigenvectors of `obj` at the centre (unit vectors), by
/// `top_eigenvalues` with at most `max_iters` products each and relative tolerance `tol`
/// (power start seeded by `seed`); two more products check ‖H·v − λ·v‖.
pub fn hessian_pair<O: Objective + ?Sized>(obj: &mut O, center: &[f32], max_iters: usize, tol: f64, seed: u64) -> Result<DirectionPair> {
    block_on(hessian_pair_in_pieces(obj, center, max_iters, tol, seed))
}

/// `hessian_pair`, pausing after every Hessian-vector product.
pub async fn hessian_pair_in_pieces<O: Objective + ?Sized>(obj: &mut O, center: &[f32], max_iters: usize, tol: f64, seed: u64) -> Result<DirectionPair> {
    if obj.n_params() != center.len() {
        return Err(Error::Data(format!("the centre has {} parameters, the model has {}", center.len(), obj.n_params())));
    }
    if center.len() < 2 {
        return Err(Error::invalid("directions", "hessian", "a model with at least 2 parameters"));
    }
    let w: Vec<f64> = center.iter().map(|&v| v as f64).collect();
    let top = top_eigenvalues_in_pieces(obj, &w, 2, max_iters, tol, seed).await;
    if top.values.len() < 2 || top.values.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid("directions", "hessian", "finite weights and a finite Hessian at the centre"));
    }
    let mut residuals = [0.0; 2];
    for (r, (v, &l)) in residuals.iter_mut().zip(top.vectors.iter().zip(&top.values)) {
        let hv = hvp_in_pieces(obj, &w, v).await;
        pause().await;
        let off = hv.iter().zip(v).map(|(h, x)| (h - l * x).powi(2)).sum::<f64>().sqrt();
        *r = off / l.abs().max(f64::MIN_POSITIVE);
    }
    let l1 = top.values[0];
    let info = DirectionsInfo {
        kind: Directions::Hessian,
        eigenvalues: Some([top.values[0], top.values[1]]),
        eigen_residuals: Some(residuals),
        hessian_products: Some(top.iterations.iter().sum::<usize>() + 2),
        suggested_range: if l1 > 0.0 { (2.0 / l1.sqrt()).clamp(1e-3, MAX_RANGE) } else { 1.0 },
        ..DirectionsInfo::default()
    };
    let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    Ok(DirectionPair { d1: to32(&top.vectors[0]), d2: to32(&top.vectors[1]), info })
}

/// The share of the trajectory off the plane through `center` spanned by d₁, d₂:
/// √(Σ_i ‖residual_i‖²) / √(Σ_i ‖w_i − w‖²) with the least-squares residuals of `project`
/// (for the PCA plane this is √(1 − EV₁ − EV₂)). None when no snapshot is away from the centre.
pub fn off_plane_share(center: &[f32], d1: &[f32], d2: &[f32], snapshots: &[(u64, Vec<f32>)]) -> Option<f64> {
    let plane = Plane::new(center, d1, d2);
    off_plane_share_of(snapshots.iter().filter(|(_, w)| w.len() == center.len()).map(|(_, w)| plane.project(w)))
}

/// `off_plane_share` from the snapshots' projections onto the plane.
pub fn off_plane_share_of(projections: impl IntoIterator<Item = Projection>) -> Option<f64> {
    let (mut off, mut total) = (0.0, 0.0);
    for p in projections {
        off += p.residual * p.residual;
        total += p.sq_distance;
    }
    (total > 0.0).then(|| (off / total).sqrt().min(1.0))
}

/// Eigenvalues (descending) and eigenvectors (column j of the row-major k×k result) of a
/// symmetric matrix, by cyclic Jacobi rotations: exact to rounding and ample for the Gram matrix
/// of at most a thousand snapshots.
pub fn symmetric_eigen(a: Vec<f64>, k: usize) -> (Vec<f64>, Vec<f64>) {
    block_on(symmetric_eigen_in_pieces(a, k))
}

/// `symmetric_eigen`, pausing after every sweep.
async fn symmetric_eigen_in_pieces(mut a: Vec<f64>, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; k * k];
    (0..k).for_each(|i| v[i * k + i] = 1.0);
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>();
    for _sweep in 0..100 {
        let off: f64 = (0..k).flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * k + j].powi(2)).sum();
        if off <= 1e-30 * scale || off == 0.0 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = a[p * k + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a_pq (Golub & Van Loan, Algorithm 8.4.1).
                let theta = (a[q * k + q] - a[p * k + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..k {
                    let (arp, arq) = (a[r * k + p], a[r * k + q]);
                    a[r * k + p] = c * arp - s * arq;
                    a[r * k + q] = s * arp + c * arq;
                }
                for r in 0..k {
                    let (apr, aqr) = (a[p * k + r], a[q * k + r]);
                    a[p * k + r] = c * apr - s * aqr;
                    a[q * k + r] = s * apr + c * aqr;
                }
                for r in 0..k {
                    let (vrp, vrq) = (v[r * k + p], v[r * k + q]);
                    v[r * k + p] = c * vrp - s * vrq;
                    v[r * k + q] = s * vrp + c * vrq;
                }
            }
        }
        pause().await;
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&i, &j| a[j * k + j].total_cmp(&a[i * k + i]));
    let values = order.iter().map(|&i| a[i * k + i]).collect();
    let mut vectors = vec![0.0; k * k];
    for (col, &i) in order.iter().enumerate() {
        for r in 0..k {
            vectors[r * k + col] = v[r * k + i];
        }
    }
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::landscape::{self, CpuEvaluator, LandscapeConfig, LossEvaluator};
    use crate::metrics::{MlpObjective, Objective};
    use crate::model::{Activation, MlpSpec};
    use crate::rng::{Rng, Stream};

    fn norm(v: &[f64]) -> f64 {
        v.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    #[test]
    fn jacobi_diagonalises_a_symmetric_matrix() {
        let a = vec![4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 1.0];
        let (values, vectors) = symmetric_eigen(a.clone(), 3);
        assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
        assert!((values.iter().sum::<f64>() - 8.0).abs() < 1e-12, "trace");
        for j in 0..3 {
            let v: Vec<f64> = (0..3).map(|i| vectors[i * 3 + j]).collect();
            let av: Vec<f64> = (0..3).map(|i| (0..3).map(|c| a[i * 3 + c] * v[c]).sum()).collect();
            let off: Vec<f64> = av.iter().zip(&v).map(|(x, y)| x - values[j] * y).collect();
            assert!(norm(&off) < 1e-12 && (norm(&v) - 1.0).abs() < 1e-12, "pair {j}");
        }
    }

    /// Snapshots w + a_i·u + b_i·v for orthonormal u, v: PCA must recover span{u, v}.
    #[test]
    fn pca_of_a_trajectory_in_a_known_plane_recovers_the_plane() {
        let n = 300;
        let mut rng = Rng::stream(5, Stream::Landscape);
        let center: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        let mut u: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let nu = norm(&u);
        u.iter_mut().for_each(|x| *x /= nu);
        let c: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
        v.iter_mut().zip(&u).for_each(|(x, &y)| *x -= c * y);
        let nv = norm(&v);
        v.iter_mut().for_each(|x| *x /= nv);
        // A spiral into the centre: large along u, smaller along v.
        let snapshots: Vec<(u64, Vec<f32>)> = (0..=20u64)
            .map(|i| {
                let t = (20 - i) as f64 / 20.0;
                let (a, b) = (3.0 * t * (4.0 * t).cos(), 1.0 * t * (4.0 * t).sin());
                (i, (0..n).map(|p| (center[p] as f64 + a * u[p] + b * v[p]) as f32).collect())
            })
            .collect();
        let pair = pca_pair(&center, &snapshots).unwrap();
        let [e1, e2] = pair.info.explained_variance.unwrap();
        assert!((e1 + e2 - 1.0).abs() < 1e-5 && e1 >= e2 && e2 > 0.01, "explained variance {e1}, {e2}");
        let share = off_plane_share(&center, &pair.d1, &pair.d2, &snapshots).unwrap();
        assert!(share < 1e-3, "off-plane share {share}");
        // Each PC is a unit vector inside span{u, v}, and the two are orthogonal.
        let wide = |d: &[f32]| d.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let (p1, p2) = (wide(&pair.d1), wide(&pair.d2));
        for p in [&p1, &p2] {
            let (cu, cv): (f64, f64) = (p.iter().zip(&u).map(|(a, b)| a * b).sum(), p.iter().zip(&v).map(|(a, b)| a * b).sum());
            assert!((norm(p) - 1.0).abs() < 1e-5 && (cu * cu + cv * cv - 1.0).abs() < 1e-5, "in the plane: {cu}, {cv}");
        }
        assert!(p1.iter().zip(&p2).map(|(a, b)| a * b).sum::<f64>().abs() < 1e-5, "orthogonal");
        // The oldest snapshot sits at α, β ≥ 0; the range covers the path.
        let (a0, b0, _, _) = landscape::project(&center, &pair.d1, &pair.d2, &snapshots[0].1);
        assert!(a0 >= 0.0 && b0 >= 0.0, "({a0}, {b0})");
        assert!(pair.info.suggested_range >= a0.abs().max(b0.abs()));
        // Random directions barely see the same path: most of it is off their plane.
        let spec = MlpSpec::new(n - 1, &[], 1, Activation::Relu);
        assert_eq!(spec.n_params(), n);
        let r = random_pair(&spec, &center, 1);
        assert!(off_plane_share(&center, &r.d1, &r.d2, &snapshots).unwrap() > 0.5);
    }

    #[test]
    fn pca_refuses_a_trajectory_on_one_line_naming_the_directions() {
        let center = vec![0.0f32; 4];
        let line: Vec<(u64, Vec<f32>)> = (0..5u64).map(|i| (i, vec![i as f32, 2.0 * i as f32, 0.0, 0.0])).collect();
        let e = pca_pair(&center, &line).unwrap_err().to_string();
        assert!(e.contains("directions") && e.contains("one line"), "{e}");
        let e = pca_pair(&center, &[]).unwrap_err().to_string();
        assert!(e.contains("directions") && !e.contains('\n'), "{e}");
    }

    fn small_problem() -> (MlpSpec, Vec<f32>, Vec<f32>, Vec<u32>) {
        let spec = MlpSpec::new(3, &[6], 3, Activation::Tanh);
        let params = spec.init(4);
        let mut rng = Rng::stream(9, Stream::Landscape);
        let x: Vec<f32> = (0..40 * 3).map(|_| rng.normal() as f32).collect();
        let y: Vec<u32> = (0..40u32).map(|i| i % 3).collect();
        (spec, params, x, y)
    }

    #[test]
    fn hessian_directions_are_orthogonal_eigenvectors_of_the_hessian() {
        let (spec, params, x, y) = small_problem();
        let mut obj = MlpObjective::<f64>::new(spec.clone(), x.iter().map(|&v| v as f64).collect(), y.clone()).unwrap();
        let pair = hessian_pair(&mut obj, &params, 2000, 1e-12, 3).unwrap();
        let [l1, l2] = pair.info.eigenvalues.unwrap();
        assert!(l1 >= l2 && l1 > 0.0, "λ = {l1}, {l2}");
        let w: Vec<f64> = params.iter().map(|&v| v as f64).collect();
        for (d, l) in [(&pair.d1, l1), (&pair.d2, l2)] {
            let v: Vec<f64> = d.iter().map(|&x| x as f64).collect();
            assert!((norm(&v) - 1.0).abs() < 1e-6, "unit");
            let hv = obj.hvp(&w, &v);
            let off: Vec<f64> = hv.iter().zip(&v).map(|(h, x)| h - l * x).collect();
            assert!(norm(&off) < 1e-3 * l.abs(), "‖Hv − λv‖ = {} for λ = {l}", norm(&off));
        }
        let dot: f64 = pair.d1.iter().zip(&pair.d2).map(|(&a, &b)| a as f64 * b as f64).sum();
        assert!(dot.abs() < 1e-5, "orthogonal: {dot}");
        assert!(pair.info.eigen_residuals.unwrap().iter().all(|&r| r < 1e-3));
        // λ₁ is the largest: no unit vector has a larger Rayleigh quotient (a few random ones).
        let mut rng = Rng::stream(1, Stream::Power);
        for _ in 0..5 {
            let z: Vec<f64> = (0..w.len()).map(|_| rng.normal()).collect();
            let q = z.iter().zip(obj.hvp(&w, &z)).map(|(a, b)| a * b).sum::<f64>() / norm(&z).powi(2);
            assert!(q <= l1 * (1.0 + 1e-9), "{q} > λ₁ = {l1}");
        }
        // Deterministic from the seed.
        assert_eq!(hessian_pair(&mut obj, &params, 2000, 1e-12, 3).unwrap(), pair);
    }

    #[test]
    fn the_grid_centre_is_the_centre_loss_along_every_pair() {
        let (spec, params, x, y) = small_problem();
        let mut obj = MlpObjective::<f64>::new(spec.clone(), x.iter().map(|&v| v as f64).collect(), y.clone()).unwrap();
        let snapshots: Vec<(u64, Vec<f32>)> =
            (0..6u64).map(|i| (i, params.iter().enumerate().map(|(p, &w)| w + 0.1 * (i as f32) * ((p as f32 * (1.0 + i as f32)).sin())).collect())).collect();
        let center = snapshots.last().unwrap().1.clone();
        let pairs = [random_pair(&spec, &center, 2), pca_pair(&center, &snapshots).unwrap(), hessian_pair(&mut obj, &center, 100, 1e-6, 2).unwrap()];
        for pair in pairs {
            let mut ev = CpuEvaluator::<f32>::new(spec.clone(), &x, &y).unwrap();
            let lc = LandscapeConfig { grid: 7, range: pair.info.suggested_range, slice_points: 5, seed: 2 };
            let land = landscape::landscape(&mut ev, &center, &pair, &snapshots, &lc).unwrap();
            let want = ev.evaluate(std::slice::from_ref(&center)).unwrap()[0].loss;
            assert_eq!(land.grid.loss[3][3], want, "{:?}: grid centre", pair.info.kind);
            assert_eq!(land.centre.loss, want);
            assert_eq!(land.directions.kind, pair.info.kind);
            assert!(land.off_plane_share.is_some_and(|s| (0.0..=1.0).contains(&s)));
        }
    }
}
