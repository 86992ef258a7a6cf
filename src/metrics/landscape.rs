//! Loss landscapes (Li et al., NeurIPS 2018): filter-normalised random directions (the other
//! pairs, PCA and Hessian, are in `directions`), 1D slices, 2D grids, the straight line between
//! two weight vectors, and a training trajectory projected onto the grid's plane with the
//! projection residual.
//!
//! Every point is an independent evaluation of the loss on the evaluation set, so evaluation sits
//! behind `LossEvaluator` ("evaluate many weight vectors"): the CPU evaluates them one by one,
//! a GPU engine can evaluate a whole chunk in one pass.

use super::EvalSet;
use super::directions::{DirectionPair, DirectionsInfo, off_plane_share};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Mlp, MlpSpec, Real};
use crate::rng::{Rng, Stream};
use serde::{Deserialize, Serialize};

/// Mean loss and accuracy at one weight vector.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LossAcc {
    pub loss: f64,
    pub accuracy: f64,
}

/// Evaluates the loss and accuracy of many weight vectors (flat layout of `model`) on a fixed
/// evaluation set.
pub trait LossEvaluator {
    /// Length every point must have.
    fn n_params(&self) -> usize;
    /// One result per point, in order. A point of the wrong length is an error.
    fn evaluate(&mut self, points: &[Vec<f32>]) -> Result<Vec<LossAcc>>;
    /// How many points one `evaluate` call should carry (memory, one GPU pass).
    fn points_per_call(&self) -> usize {
        64
    }
}

/// Evaluates `count` points produced on demand by `fill(k, point)` (the point buffer arrives with
/// length 0), in calls of `points_per_call` points: grids never hold all their weight vectors.
pub fn evaluate_generated(ev: &mut dyn LossEvaluator, count: usize, mut fill: impl FnMut(usize, &mut Vec<f32>)) -> Result<Vec<LossAcc>> {
    let per_call = ev.points_per_call().max(1);
    let mut out = Vec::with_capacity(count);
    let mut chunk: Vec<Vec<f32>> = Vec::new();
    let mut k = 0;
    while k < count {
        let take = per_call.min(count - k);
        chunk.resize_with(take, Vec::new);
        for (j, p) in chunk.iter_mut().enumerate() {
            p.clear();
            fill(k + j, p);
        }
        out.extend(ev.evaluate(&chunk)?);
        k += take;
    }
    Ok(out)
}

/// The CPU evaluator: the reference MLP in `T` on an evaluation set.
pub struct CpuEvaluator<T: Real> {
    mlp: Mlp<T>,
    x: Vec<T>,
    y: Vec<u32>,
    params: Vec<T>,
}

impl<T: Real> CpuEvaluator<T> {
    pub fn new(spec: MlpSpec, x: &[f32], y: &[u32]) -> Result<Self> {
        if y.is_empty() {
            return Err(Error::Data("evaluation set: no samples (at least one is needed)".into()));
        }
        if x.len() != y.len() * spec.in_dim() {
            return Err(Error::Data(format!("evaluation set: {} values for {} samples of {} features", x.len(), y.len(), spec.in_dim())));
        }
        if let Some(c) = y.iter().find(|&&c| c as usize >= spec.out_dim()) {
            return Err(Error::Data(format!("evaluation set: label {c}, the model has {} classes", spec.out_dim())));
        }
        Ok(Self { mlp: Mlp::new(spec), x: x.iter().map(|&v| T::of(v as f64)).collect(), y: y.to_vec(), params: Vec::new() })
    }

    pub fn from_eval_set(spec: MlpSpec, set: &EvalSet) -> Result<Self> {
        Self::new(spec, &set.x, &set.y)
    }
}

impl<T: Real> LossEvaluator for CpuEvaluator<T> {
    fn n_params(&self) -> usize {
        self.mlp.spec.n_params()
    }

    fn evaluate(&mut self, points: &[Vec<f32>]) -> Result<Vec<LossAcc>> {
        let n = self.n_params();
        let mut out = Vec::with_capacity(points.len());
        for (k, p) in points.iter().enumerate() {
            if p.len() != n {
                return Err(Error::Data(format!("landscape point {k} has {} parameters, the model has {n}", p.len())));
            }
            self.params.clear();
            self.params.extend(p.iter().map(|&v| T::of(v as f64)));
            let e = self.mlp.evaluate(&self.params, &self.x, &self.y);
            out.push(LossAcc { loss: e.mean_loss(), accuracy: e.accuracy(&self.y) });
        }
        Ok(out)
    }
}

/// Rescales each output neuron's incoming weight row of `d` to the norm of the same row of
/// `params` (a zero row stays zero) and zeroes the bias entries (Li et al.'s filter
/// normalisation for dense layers).
pub fn filter_normalize(spec: &MlpSpec, params: &[f32], d: &mut [f32]) {
    for layer in spec.layers() {
        let in_dim = layer.in_dim;
        for r in 0..layer.out_dim {
            let row = layer.w_offset + r * in_dim..layer.w_offset + (r + 1) * in_dim;
            let w_norm = params[row.clone()].iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            let d_norm = d[row.clone()].iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            let s = if d_norm > 0.0 { w_norm / d_norm } else { 0.0 };
            d[row].iter_mut().for_each(|v| *v = (*v as f64 * s) as f32);
        }
        d[layer.b_offset..layer.b_offset + layer.out_dim].fill(0.0);
    }
}

/// A Gaussian direction, filter-normalised against `params`.
pub fn random_direction(spec: &MlpSpec, params: &[f32], rng: &mut Rng) -> Vec<f32> {
    let mut d: Vec<f32> = (0..spec.n_params()).map(|_| rng.normal() as f32).collect();
    filter_normalize(spec, params, &mut d);
    d
}

/// The two directions of a landscape, seeded (stream `Landscape`: d₁ then d₂).
pub fn directions(spec: &MlpSpec, params: &[f32], seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::stream(seed, Stream::Landscape);
    let d1 = random_direction(spec, params, &mut rng);
    let d2 = random_direction(spec, params, &mut rng);
    (d1, d2)
}

/// n evenly spaced values from lo to hi inclusive (n = 1 gives lo).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if n <= 1 {
        return vec![lo; n];
    }
    (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect()
}

/// f(w + α·d₁ + β·d₂) on a grid; `loss[j][i]` is at (alphas[i], betas[j]).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Grid {
    pub alphas: Vec<f64>,
    pub betas: Vec<f64>,
    pub loss: Vec<Vec<f64>>,
    pub accuracy: Vec<Vec<f64>>,
}

/// A 1D curve: f at w(t) for each t.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Slice {
    pub t: Vec<f64>,
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
}

fn check_len(what: &str, v: &[f32], n: usize) -> Result<()> {
    if v.len() == n { Ok(()) } else { Err(Error::Data(format!("{what} has {} parameters, the model has {n}", v.len()))) }
}

/// The 2D landscape around `center`.
pub fn loss_grid(ev: &mut dyn LossEvaluator, center: &[f32], d1: &[f32], d2: &[f32], alphas: &[f64], betas: &[f64]) -> Result<Grid> {
    let n = ev.n_params();
    for (what, v) in [("the centre", center), ("direction 1", d1), ("direction 2", d2)] {
        check_len(what, v, n)?;
    }
    let na = alphas.len();
    let res = evaluate_generated(ev, na * betas.len(), |k, p| {
        let (a, b) = (alphas[k % na], betas[k / na]);
        p.extend((0..n).map(|i| (center[i] as f64 + a * d1[i] as f64 + b * d2[i] as f64) as f32));
    })?;
    Ok(Grid {
        alphas: alphas.to_vec(),
        betas: betas.to_vec(),
        loss: res.chunks(na.max(1)).map(|r| r.iter().map(|x| x.loss).collect()).collect(),
        accuracy: res.chunks(na.max(1)).map(|r| r.iter().map(|x| x.accuracy).collect()).collect(),
    })
}

/// f(w + α·d) for each α.
pub fn slice_1d(ev: &mut dyn LossEvaluator, center: &[f32], d: &[f32], alphas: &[f64]) -> Result<Slice> {
    let n = ev.n_params();
    check_len("the centre", center, n)?;
    check_len("the direction", d, n)?;
    let res = evaluate_generated(ev, alphas.len(), |k, p| {
        p.extend(center.iter().zip(d).map(|(&c, &di)| (c as f64 + alphas[k] * di as f64) as f32));
    })?;
    Ok(Slice { t: alphas.to_vec(), loss: res.iter().map(|r| r.loss).collect(), accuracy: res.iter().map(|r| r.accuracy).collect() })
}

/// f((1 − t)·a + t·b) for each t: the straight line between two weight vectors (t = 0 at a).
pub fn line_between(ev: &mut dyn LossEvaluator, a: &[f32], b: &[f32], ts: &[f64]) -> Result<Slice> {
    let n = ev.n_params();
    check_len("the line's start", a, n)?;
    check_len("the line's end", b, n)?;
    let res = evaluate_generated(ev, ts.len(), |k, p| {
        let t = ts[k];
        p.extend(a.iter().zip(b).map(|(&x, &y)| ((1.0 - t) * x as f64 + t * y as f64) as f32));
    })?;
    Ok(Slice { t: ts.to_vec(), loss: res.iter().map(|r| r.loss).collect(), accuracy: res.iter().map(|r| r.accuracy).collect() })
}

/// Weight snapshots of a trajectory: (steps completed, weights).
pub type Snapshots = Vec<(u64, Vec<f32>)>;

/// One trajectory snapshot projected onto the plane (d₁, d₂) through the centre.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TrajectoryPoint {
    pub step: u64,
    pub alpha: f64,
    pub beta: f64,
    /// ‖w_t − w − α·d₁ − β·d₂‖: how far the snapshot is from the plane drawn.
    pub residual: f64,
    /// residual / ‖w_t − w‖ (0 at the centre itself).
    pub relative_residual: f64,
    /// The loss and accuracy at the snapshot itself (not at its projection).
    pub loss: f64,
    pub accuracy: f64,
}

/// Least-squares coordinates of w_t − w in (d₁, d₂): the 2×2 normal equations
/// [d₁·d₁ d₁·d₂; d₂·d₁ d₂·d₂]·(α, β) = (d₁·r, d₂·r), with the residual norm. When d₁ and d₂ are
/// parallel (or zero) the projection falls back to d₁ alone.
pub fn project(center: &[f32], d1: &[f32], d2: &[f32], w: &[f32]) -> (f64, f64, f64, f64) {
    let p = Plane::new(center, d1, d2).project(w);
    (p.alpha, p.beta, p.residual, p.relative_residual)
}

/// The plane through `center` spanned by d₁ and d₂, with the Gram terms of its directions
/// computed once: projecting many snapshots onto it costs a few passes over the weights each.
pub struct Plane<'a> {
    center: &'a [f32],
    d1: Vec<f64>,
    d2: Vec<f64>,
    a11: f64,
    a12: f64,
    a22: f64,
}

/// Where `Plane::project` puts a point w.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Projection {
    pub alpha: f64,
    pub beta: f64,
    /// ‖r − α·d₁ − β·d₂‖ with r = w − centre.
    pub residual: f64,
    /// residual / ‖r‖ (0 at the centre).
    pub relative_residual: f64,
    /// ‖r‖².
    pub sq_distance: f64,
}

impl<'a> Plane<'a> {
    pub fn new(center: &'a [f32], d1: &[f32], d2: &[f32]) -> Self {
        let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let (d1, d2) = (wide(d1), wide(d2));
        let (a11, a12, a22) = (dot64(&d1, &d1), dot64(&d1, &d2), dot64(&d2, &d2));
        Self { center, d1, d2, a11, a12, a22 }
    }

    /// The least-squares (α, β) of w − centre ≈ α·d₁ + β·d₂ and what is left off the plane.
    pub fn project(&self, w: &[f32]) -> Projection {
        let (d1, d2, a11, a12, a22) = (&self.d1, &self.d2, self.a11, self.a12, self.a22);
        let r: Vec<f64> = w.iter().zip(self.center).map(|(&a, &c)| a as f64 - c as f64).collect();
        let (b1, b2) = (dot64(d1, &r), dot64(d2, &r));
        let det = a11 * a22 - a12 * a12;
        let (alpha, beta) = if det > 1e-12 * a11 * a22 && det > 0.0 {
            ((a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det)
        } else if a11 > 0.0 {
            (b1 / a11, 0.0)
        } else {
            (0.0, 0.0)
        };
        let residual = r.iter().zip(d1.iter().zip(d2)).map(|(&ri, (&x, &y))| (ri - alpha * x - beta * y).powi(2)).sum::<f64>().sqrt();
        let sq_distance = dot64(&r, &r);
        let r_norm = sq_distance.sqrt();
        Projection { alpha, beta, residual, relative_residual: if r_norm > 0.0 { residual / r_norm } else { 0.0 }, sq_distance }
    }
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>()
}

/// Projects every snapshot (step, weights) and evaluates the loss at each.
pub fn project_trajectory(ev: &mut dyn LossEvaluator, center: &[f32], d1: &[f32], d2: &[f32], snapshots: &[(u64, Vec<f32>)]) -> Result<Vec<TrajectoryPoint>> {
    let n = ev.n_params();
    for (step, w) in snapshots {
        check_len(&format!("the snapshot of step {step}"), w, n)?;
    }
    let evals = evaluate_generated(ev, snapshots.len(), |k, p| p.extend_from_slice(&snapshots[k].1))?;
    let plane = Plane::new(center, d1, d2);
    Ok(snapshots
        .iter()
        .zip(evals)
        .map(|((step, w), e)| {
            let Projection { alpha, beta, residual, relative_residual, .. } = plane.project(w);
            TrajectoryPoint { step: *step, alpha, beta, residual, relative_residual, loss: e.loss, accuracy: e.accuracy }
        })
        .collect())
}

/// Settings of a landscape.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LandscapeConfig {
    /// Points per side of the 2D grid (default 51).
    pub grid: usize,
    /// α, β ∈ [−range, range] (default 1).
    pub range: f64,
    /// Points of each 1D slice (default: as the grid).
    pub slice_points: usize,
    /// Seeds the directions.
    pub seed: u64,
}

impl Default for LandscapeConfig {
    fn default() -> Self {
        Self { grid: 51, range: 1.0, slice_points: 51, seed: 0 }
    }
}

impl LandscapeConfig {
    pub fn validate(&self) -> Result<()> {
        if !(2..=401).contains(&self.grid) {
            return Err(Error::invalid("grid", self.grid, "2 ≤ points per side ≤ 401"));
        }
        if !(self.range.is_finite() && self.range > 0.0 && self.range <= 100.0) {
            return Err(Error::invalid("range", self.range, "0 < range ≤ 100"));
        }
        if !(2..=10_001).contains(&self.slice_points) {
            return Err(Error::invalid("slice_points", self.slice_points, "2 ≤ points ≤ 10001"));
        }
        Ok(())
    }
}

/// Everything drawn about one point in weight space.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Landscape {
    pub n_params: usize,
    pub seed: u64,
    pub centre: LossAcc,
    /// Which directions d₁, d₂ are, and what was learnt finding them.
    #[serde(default)]
    pub directions: DirectionsInfo,
    /// The 2D grid along d₁, d₂.
    pub grid: Grid,
    /// f(w + α·d₁).
    pub slice_d1: Slice,
    /// f(w + β·d₂).
    pub slice_d2: Slice,
    /// Snapshots projected onto (d₁, d₂), with residuals.
    pub trajectory: Vec<TrajectoryPoint>,
    /// The share of the whole trajectory off the plane (`directions::off_plane_share`); None
    /// without snapshots away from the centre.
    #[serde(default)]
    pub off_plane_share: Option<f64>,
}

/// The grid, both slices and the trajectory projection around `center`, along `pair`
/// (`directions::random_pair`, `pca_pair` or `hessian_pair`).
pub fn landscape(ev: &mut dyn LossEvaluator, center: &[f32], pair: &DirectionPair, snapshots: &[(u64, Vec<f32>)], cfg: &LandscapeConfig) -> Result<Landscape> {
    cfg.validate()?;
    check_len("the centre", center, ev.n_params())?;
    let (d1, d2) = (&pair.d1, &pair.d2);
    let axis = linspace(-cfg.range, cfg.range, cfg.grid);
    let slice_axis = linspace(-cfg.range, cfg.range, cfg.slice_points);
    let centre = ev.evaluate(&[center.to_vec()])?[0];
    Ok(Landscape {
        n_params: center.len(),
        seed: cfg.seed,
        centre,
        directions: pair.info.clone(),
        grid: loss_grid(ev, center, d1, d2, &axis, &axis)?,
        slice_d1: slice_1d(ev, center, d1, &slice_axis)?,
        slice_d2: slice_1d(ev, center, d2, &slice_axis)?,
        trajectory: project_trajectory(ev, center, d1, d2, snapshots)?,
        off_plane_share: off_plane_share(center, d1, d2, snapshots),
    })
}

/// Wall time of one CPU (f32) landscape grid of `grid`×`grid` points around the initial weights
/// of `cfg` on its evaluation subset of `eval_size` training samples (0: all): for `bench`.
#[derive(Clone, Debug, Serialize)]
pub struct LandscapeTiming {
    pub points: usize,
    pub eval_samples: usize,
    pub n_params: usize,
    pub seconds: f64,
    pub ms_per_point: f64,
}

pub fn time_cpu_landscape(cfg: &RunConfig, grid: usize, eval_size: usize) -> Result<LandscapeTiming> {
    cfg.validate()?;
    let data = Dataset::load_split(&cfg.dataset, cfg.data_split_seed(), cfg.seed)?;
    let spec = crate::setup::spec_for(cfg, &data);
    let params = spec.init(cfg.seed);
    let set = EvalSet::from_train(&data, eval_size, cfg.seed);
    let mut ev = CpuEvaluator::<f32>::from_eval_set(spec.clone(), &set)?;
    time_landscape(&mut ev, &spec, &params, grid, set.len(), cfg.seed)
}

/// Wall time of a grid×grid filter-normalised landscape around `center` on any evaluator (the
/// CPU's or the GPU's): what `bench` reports.
pub fn time_landscape(ev: &mut dyn LossEvaluator, spec: &MlpSpec, center: &[f32], grid: usize, eval_samples: usize, seed: u64) -> Result<LandscapeTiming> {
    let lc = LandscapeConfig { grid, seed, ..LandscapeConfig::default() };
    lc.validate()?;
    let (d1, d2) = directions(spec, center, seed);
    let axis = linspace(-lc.range, lc.range, grid);
    let start = std::time::Instant::now();
    loss_grid(ev, center, &d1, &d2, &axis, &axis)?;
    let seconds = start.elapsed().as_secs_f64();
    let points = grid * grid;
    Ok(LandscapeTiming { points, eval_samples, n_params: spec.n_params(), seconds, ms_per_point: 1e3 * seconds / points as f64 })
}
