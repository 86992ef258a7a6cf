//! Loss landscapes in the app, computed a few points per frame so that the UI never waits:
//! the 2D grid f(w + α·d₁ + β·d₂) around a run's current weights along random, PCA or Hessian
//! directions (`metrics::directions`), and the straight line (1 − t)·w_a + t·w_b between two
//! runs' weights. Every point is a full evaluation of the loss on a fixed subset of the training
//! set. PCA and Hessian directions are found on a `Worker` (a background thread on the desktop;
//! in the browser in pieces within the landscape's share of the frame, and lighter: fewer
//! Hessian-vector products), with their progress shown.

use crate::data::Dataset;
use crate::engine::ParamsTag;
use crate::error::{Error, Result};
use crate::metrics::directions::{DirectionPair, Directions, DirectionsInfo, hessian_pair_in_pieces, off_plane_share_of, pca_pair_in_pieces, random_pair};
use crate::metrics::landscape::{Plane, Projection, linspace};
use crate::metrics::{CpuEvaluator, EvalSet, LossEvaluator, Objective};
use crate::model::MlpSpec;
use crate::platform::{BACKGROUND_WORKERS, Worker};
use crate::run::Run;
use crate::setup::spec_for;
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use web_time::Instant;

/// Points on the line between two runs, t ∈ [−0.25, 1.25].
pub const LINE_POINTS: usize = 31;
/// Training samples every point is evaluated on (and the Hessian directions found on).
pub const EVAL_SAMPLES: usize = 256;
/// Most Hessian-vector products per eigenvector: on a worker thread, and inline in the browser.
pub const HESSIAN_ITERS: usize = 100;
pub const HESSIAN_ITERS_LIGHT: usize = 30;
/// Relative tolerance of that power iteration.
const HESSIAN_TOL: f64 = 1e-5;

/// The landscape panel's settings, saved and linked with the lab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LandscapeSettings {
    pub directions: Directions,
    /// Points per side of the grid (`GRID_SIDES`).
    pub grid: usize,
    /// α, β ∈ [−range, range] (`RANGES`); None: the range that suits the directions (1 for
    /// random ones, the trajectory's extent for PCA, 2/√λ₁ for the Hessian).
    pub range: Option<f64>,
}

impl Default for LandscapeSettings {
    fn default() -> Self {
        Self { directions: Directions::Random, grid: 31, range: None }
    }
}

impl LandscapeSettings {
    pub const GRID_SIDES: RangeInclusive<usize> = 11..=101;
    pub const RANGES: RangeInclusive<f64> = 0.05..=10.0;

    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub fn validate(&self) -> Result<()> {
        if !Self::GRID_SIDES.contains(&self.grid) {
            return Err(Error::invalid("landscape.grid", self.grid, "11 to 101 points per side"));
        }
        if let Some(r) = self.range
            && !Self::RANGES.contains(&r)
        {
            return Err(Error::invalid("landscape.range", r, "0.05 to 10 (or null: the directions' own range)"));
        }
        Ok(())
    }
}

impl super::Lab {
    /// Changes the landscape panel's directions, grid and range (used by the next grid; saved and
    /// linked with the lab). Settings out of range are refused with the message.
    pub fn set_landscape_settings(&mut self, settings: LandscapeSettings) {
        match settings.validate() {
            Ok(()) => self.state.landscape = settings,
            Err(e) => self.landscape_error = Some(e.to_string()),
        }
    }
}

/// What is being drawn (and how far it got).
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// `loss[j * side + i]` at (α_i, β_j), side = axis.len(); NaN until evaluated. The axis is
    /// set once the directions (and so the range) are known.
    Grid { axis: Vec<f64> },
    /// `loss[k]` at t_k between run `from` (t = 0) and run `to` (t = 1).
    Line { t: Vec<f64>, to_label: String },
}

/// One training snapshot projected onto the grid's plane by least squares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrajectoryPoint {
    pub step: u64,
    pub alpha: f64,
    pub beta: f64,
    /// ‖w − (w₀ + α·d₁ + β·d₂)‖ / ‖w − w₀‖: how much of the path the plane does not show.
    pub relative_residual: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LandscapeView {
    /// "2. SAM" at request time.
    pub label: String,
    pub step: u64,
    pub shape: Shape,
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub done: usize,
    pub eval_samples: usize,
    /// Changes with every new point (keys the app's texture).
    pub generation: u64,
    /// Grid only: the run's weights at its evaluations so far, projected onto (d₁, d₂).
    pub trajectory: Vec<TrajectoryPoint>,
    /// Grid only: the directions asked for.
    pub kind: Directions,
    /// Grid only: what was found about the directions, once they are known.
    pub directions: Option<DirectionsInfo>,
    /// Grid only: the share of the whole trajectory off the plane.
    pub off_plane_share: Option<f64>,
    /// Hessian directions being found: (products done, most products).
    pub products: Option<(usize, usize)>,
}

impl LandscapeView {
    pub fn total(&self) -> usize {
        self.loss.len()
    }

    pub fn is_complete(&self) -> bool {
        self.done >= self.total()
    }

    /// Points per side of a grid (0 for a line).
    pub fn side(&self) -> usize {
        match &self.shape {
            Shape::Grid { axis } => axis.len(),
            Shape::Line { .. } => 0,
        }
    }
}

/// What the directions worker gets: the kind, the model, the centre, the snapshots, the
/// evaluation set, the seed and the most products per eigenvector.
struct DirectionsJob {
    kind: Directions,
    spec: MlpSpec,
    center: Vec<f32>,
    snapshots: Vec<(u64, Vec<f32>)>,
    set: EvalSet,
    seed: u64,
    iters: usize,
    products: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
}

type DirectionsDone = std::result::Result<DirectionPair, String>;

/// An objective that counts its Hessian-vector products (the progress shown) and, once
/// cancelled, answers H·v = 0, which ends the power iteration at once.
struct Counting<O> {
    inner: O,
    products: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
}

impl<O: Objective> Objective for Counting<O> {
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }
    fn n_samples(&self) -> usize {
        self.inner.n_samples()
    }
    fn sample_losses(&mut self, w: &[f64]) -> Vec<f64> {
        self.inner.sample_losses(w)
    }
    fn loss_grad(&mut self, w: &[f64]) -> (f64, Vec<f64>) {
        self.inner.loss_grad(w)
    }
    fn sample_sq_norms(&mut self, w: &[f64]) -> Vec<f64> {
        self.inner.sample_sq_norms(w)
    }
    fn group_sq_norms(&mut self, w: &[f64], order: &[usize], m: usize) -> Vec<f64> {
        self.inner.group_sq_norms(w, order, m)
    }
    fn hvp(&mut self, w: &[f64], v: &[f64]) -> Vec<f64> {
        if self.cancel.load(Ordering::Relaxed) {
            return vec![0.0; v.len()];
        }
        self.products.fetch_add(1, Ordering::Relaxed);
        self.inner.hvp(w, v)
    }
    fn hvp_pieces(&self) -> usize {
        self.inner.hvp_pieces()
    }
    fn hvp_piece(&mut self, w: &[f64], v: &[f64], piece: usize, out: &mut [f64]) {
        if self.cancel.load(Ordering::Relaxed) {
            return;
        }
        if piece == 0 {
            self.products.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.hvp_piece(w, v, piece, out)
    }
}

/// Finds the directions, pausing between pieces (a Gram row, a product: `resumable`).
async fn find_directions(job: DirectionsJob) -> DirectionsDone {
    let found = match job.kind {
        Directions::Random => Ok(random_pair(&job.spec, &job.center, job.seed)),
        Directions::Pca => pca_pair_in_pieces(&job.center, &job.snapshots).await,
        Directions::Hessian => match job.set.objective::<f64>(&job.spec) {
            Ok(inner) => {
                let mut obj = Counting { inner, products: job.products.clone(), cancel: job.cancel.clone() };
                hessian_pair_in_pieces(&mut obj, &job.center, job.iters, HESSIAN_TOL, job.seed).await
            }
            Err(e) => Err(e),
        },
    };
    found.map_err(|e| e.to_string())
}

/// Directions being found on the worker.
struct Pending {
    worker: Worker<DirectionsJob, DirectionsDone>,
    products: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
    most: usize,
}

impl Drop for Pending {
    /// A landscape replaced or abandoned stops its worker's power iteration.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// A landscape waiting for parameters, then being evaluated.
pub struct LandscapeJob {
    pub view: LandscapeView,
    /// Params tags asked of the runs (index, tag); the job starts once all have arrived.
    waiting: Vec<(usize, ParamsTag)>,
    arrived: Vec<Option<Vec<f32>>>,
    asked: Instant,
    started: Option<Started>,
    pending: Option<Pending>,
    /// Grid only: the settings and the run's snapshots when the grid was asked for.
    settings: LandscapeSettings,
    snapshots: Vec<(u64, Vec<f32>)>,
}

struct Started {
    evaluator: CpuEvaluator<f32>,
    /// Grid: center, d₁, d₂ (empty until the directions are known). Line: from, to.
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    point: Vec<f32>,
}

impl LandscapeJob {
    /// The grid around run `i`'s weights; asks the run for them.
    pub fn grid(i: usize, label: String, run: &mut Run, settings: &LandscapeSettings) -> Result<Self> {
        settings.validate()?;
        let tag = ParamsTag::Landscape(i);
        run.request_params(tag)?;
        let side = settings.grid;
        Ok(Self {
            view: LandscapeView {
                label,
                step: run.completed_steps(),
                shape: Shape::Grid { axis: linspace(-1.0, 1.0, side) },
                loss: vec![f64::NAN; side * side],
                accuracy: vec![f64::NAN; side * side],
                done: 0,
                eval_samples: 0,
                generation: 0,
                trajectory: Vec::new(),
                kind: settings.directions,
                directions: None,
                off_plane_share: None,
                products: None,
            },
            waiting: vec![(i, tag)],
            arrived: vec![None],
            asked: Instant::now(),
            started: None,
            pending: None,
            settings: settings.clone(),
            snapshots: run.snapshots.clone(),
        })
    }

    /// The line from run `i`'s weights to run `j`'s.
    pub fn line(i: usize, label: String, j: usize, to_label: String, runs: [&mut Run; 2]) -> Result<Self> {
        let [ri, rj] = runs;
        let (ti, tj) = (ParamsTag::Landscape(i), ParamsTag::Landscape(j));
        ri.request_params(ti)?;
        rj.request_params(tj)?;
        Ok(Self {
            view: LandscapeView {
                label,
                step: ri.completed_steps(),
                shape: Shape::Line { t: linspace(-0.25, 1.25, LINE_POINTS), to_label },
                loss: vec![f64::NAN; LINE_POINTS],
                accuracy: vec![f64::NAN; LINE_POINTS],
                done: 0,
                eval_samples: 0,
                generation: 0,
                trajectory: Vec::new(),
                kind: Directions::Random,
                directions: None,
                off_plane_share: None,
                products: None,
            },
            waiting: vec![(i, ti), (j, tj)],
            arrived: vec![None, None],
            asked: Instant::now(),
            started: None,
            pending: None,
            settings: LandscapeSettings::default(),
            snapshots: Vec::new(),
        })
    }

    /// The directions are known: the axis, the projected path and the off-plane share follow.
    fn use_directions(&mut self, pair: DirectionPair) {
        let s = self.started.as_mut().expect("directions come after the start");
        let range = self.settings.range.unwrap_or(pair.info.suggested_range);
        self.view.shape = Shape::Grid { axis: linspace(-range, range, self.settings.grid) };
        // The path so far, seen from the plane (the centre itself is the last point).
        let snapshots: Vec<(u64, Vec<f32>)> = std::mem::take(&mut self.snapshots).into_iter().filter(|(_, w)| w.len() == s.a.len()).collect();
        let plane = Plane::new(&s.a, &pair.d1, &pair.d2);
        let projections: Vec<Projection> = snapshots.iter().map(|(_, w)| plane.project(w)).collect();
        self.view.trajectory = snapshots
            .iter()
            .zip(&projections)
            .map(|((step, _), p)| TrajectoryPoint { step: *step, alpha: p.alpha, beta: p.beta, relative_residual: p.relative_residual })
            .collect();
        self.view.off_plane_share = off_plane_share_of(projections);
        self.view.directions = Some(pair.info);
        self.view.products = None;
        self.view.generation += 1;
        s.b = pair.d1;
        s.c = pair.d2;
    }

    /// Collects the parameters, finds the directions (random ones at once, the others on the
    /// worker), then evaluates points until `until` (at least one per call once started).
    /// Returns an error message if the job cannot go on (e.g. a run was removed).
    pub fn advance(&mut self, runs: &mut [Option<&mut Run>], data: &Dataset, until: Instant) -> Result<(), String> {
        if self.started.is_none() {
            for (k, &(i, tag)) in self.waiting.iter().enumerate() {
                if self.arrived[k].is_none() {
                    let run = runs.get_mut(i).and_then(|r| r.as_deref_mut()).ok_or("the run of the landscape is gone")?;
                    self.arrived[k] = run.take_params(tag);
                }
            }
            if self.arrived.iter().any(Option::is_none) {
                if self.asked.elapsed().as_secs_f64() > 10.0 {
                    return Err("the run's weights did not arrive (was it reset?); compute again".into());
                }
                return Ok(());
            }
            let (i, _) = self.waiting[0];
            let run = runs.get(i).and_then(|r| r.as_deref()).ok_or("the run of the landscape is gone")?;
            let spec = spec_for(&run.config, data);
            let set = EvalSet::from_train(data, EVAL_SAMPLES, run.config.seed);
            self.view.eval_samples = set.len();
            let evaluator = CpuEvaluator::<f32>::from_eval_set(spec.clone(), &set).map_err(|e| e.to_string())?;
            let first = self.arrived[0].take().expect("arrived");
            match matches!(self.view.shape, Shape::Grid { .. }) {
                true => {
                    let seed = run.config.seed;
                    self.started = Some(Started { evaluator, a: first.clone(), b: Vec::new(), c: Vec::new(), point: Vec::new() });
                    if self.view.kind == Directions::Random {
                        self.use_directions(random_pair(&spec, &first, seed));
                    } else {
                        let iters = if BACKGROUND_WORKERS { HESSIAN_ITERS } else { HESSIAN_ITERS_LIGHT };
                        let (products, cancel) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
                        let mut worker = Worker::resumable("samlab landscape directions", find_directions);
                        let most = if self.view.kind == Directions::Hessian { 2 * iters + 2 } else { 0 };
                        self.view.products = (most > 0).then_some((0, most));
                        let snapshots = self.snapshots.clone();
                        let kind = self.view.kind;
                        worker.send(DirectionsJob {
                            kind,
                            spec,
                            center: first,
                            snapshots,
                            set,
                            seed,
                            iters,
                            products: products.clone(),
                            cancel: cancel.clone(),
                        });
                        self.pending = Some(Pending { worker, products, cancel, most });
                        return Ok(()); // the worker's answer is collected next frame
                    }
                }
                false => {
                    let second = self.arrived[1].take().expect("arrived");
                    if second.len() != first.len() {
                        return Err("the two runs have different architectures".into());
                    }
                    self.started = Some(Started { evaluator, a: first, b: second, c: Vec::new(), point: Vec::new() });
                }
            }
        }
        if let Some(p) = &mut self.pending {
            p.worker.work(until);
            match p.worker.try_recv() {
                None => {
                    let done = p.products.load(Ordering::Relaxed).min(p.most);
                    if p.most > 0 && self.view.products != Some((done, p.most)) {
                        self.view.products = Some((done, p.most));
                        self.view.generation += 1;
                    }
                    return Ok(());
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(pair)) => {
                    self.pending = None;
                    self.use_directions(pair);
                }
            }
        }
        let s = self.started.as_mut().expect("started above");
        let side = self.view.side();
        let mut first = true;
        while !self.view.is_complete() && (first || Instant::now() < until) {
            first = false;
            let k = self.view.done;
            s.point.clear();
            match &self.view.shape {
                Shape::Grid { axis } => {
                    let (alpha, beta) = (axis[k % side] as f32, axis[k / side] as f32);
                    s.point.extend(s.a.iter().zip(&s.b).zip(&s.c).map(|((&w, &d1), &d2)| w + alpha * d1 + beta * d2));
                }
                Shape::Line { t, .. } => {
                    let t = t[k] as f32;
                    s.point.extend(s.a.iter().zip(&s.b).map(|(&a, &b)| (1.0 - t) * a + t * b));
                }
            }
            let r = s.evaluator.evaluate(std::slice::from_ref(&s.point)).map_err(|e| e.to_string())?;
            self.view.loss[k] = r[0].loss;
            self.view.accuracy[k] = r[0].accuracy;
            self.view.done += 1;
            self.view.generation += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{CpuEvaluator, Directions, EvalSet, LandscapeSettings, LossEvaluator, Shape, spec_for};
    use crate::engine::EngineChoice;
    use crate::lab::{Lab, Preset};
    use web_time::Duration;

    #[test]
    fn a_grid_carries_the_runs_trajectory_projected_onto_its_plane() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        // Train a few evaluations' worth, so that snapshots exist.
        for _ in 0..100_000 {
            if lab.runs[1].completed() >= 60 {
                break;
            }
            lab.tick();
        }
        assert!(lab.runs[1].completed() >= 60, "the run did not reach 60 steps");
        lab.set_all_playing(false);
        let snapshots = lab.runs[1].run.as_ref().unwrap().snapshots.len();
        assert!(snapshots >= 2, "{snapshots} snapshots");
        lab.start_landscape(1, None);
        finish_landscape(&mut lab);
        let v = &lab.landscape.as_ref().unwrap().view;
        assert_eq!(v.trajectory.len(), snapshots);
        assert_eq!(v.trajectory[0].step, 0);
        assert!(v.trajectory.windows(2).all(|w| w[0].step < w[1].step));
        // Each point is a least-squares projection: a share of the path in [0, 1].
        assert!(v.trajectory.iter().all(|t| t.alpha.is_finite() && t.beta.is_finite() && (0.0..=1.0 + 1e-9).contains(&t.relative_residual)));
    }

    #[test]
    fn a_grid_fills_over_frames_and_its_centre_is_the_run_loss() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.set_all_playing(false);
        lab.start_landscape(1, None);
        let mut frames = 0;
        while !lab.landscape.as_ref().unwrap().view.is_complete() {
            lab.budget = Duration::from_millis(2);
            lab.tick();
            frames += 1;
            assert!(frames < 10_000);
        }
        assert!(frames > 1, "computed over several frames");
        let v = &lab.landscape.as_ref().unwrap().view;
        assert!(v.loss.iter().all(|l| l.is_finite()));
        // Moving away from the weights raises the loss on average at the corners.
        let side = v.side();
        assert_eq!(side, 31, "the default grid");
        let centre = v.loss[(side / 2) * side + side / 2];
        let corners = [0, side - 1, side * (side - 1), side * side - 1];
        assert!(corners.iter().map(|&k| v.loss[k]).sum::<f64>() / 4.0 > centre);
    }

    #[test]
    fn the_line_between_two_runs_starts_and_ends_at_their_losses() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.set_all_playing(false);
        for _ in 0..20 {
            lab.step_once(1);
        }
        lab.start_landscape(0, Some(1));
        finish_landscape(&mut lab);
        let v = &lab.landscape.as_ref().unwrap().view;
        assert_eq!(v.loss.len(), super::LINE_POINTS);
        assert!(v.loss.iter().all(|l| l.is_finite()));
        // t runs from −0.25 to 1.25 in steps of 0.05: t = 0 is point 5 (run 1's weights), t = 1
        // point 25 (run 2's). Their losses on the same evaluation subset, computed apart:
        let Shape::Line { t, .. } = &v.shape else { panic!("not a line") };
        assert!(t[5].abs() < 1e-12 && (t[25] - 1.0).abs() < 1e-12, "{t:?}");
        let data = lab.data.clone().unwrap();
        let set = EvalSet::from_train(&data, super::EVAL_SAMPLES, lab.runs[0].run.as_ref().unwrap().config.seed);
        let spec = spec_for(&lab.runs[0].run.as_ref().unwrap().config, &data);
        let mut ev = CpuEvaluator::<f32>::from_eval_set(spec, &set).unwrap();
        for (k, i) in [(5, 0), (25, 1)] {
            let w = lab.runs[i].run.as_mut().unwrap().params_blocking().unwrap();
            let want = ev.evaluate(&[w]).unwrap()[0].loss;
            assert!((v.loss[k] - want).abs() <= 1e-5 * want, "line point {k}: {} vs run {}'s loss {want}", v.loss[k], i + 1);
        }
        assert!(lab.runs[0].completed() == 0 && lab.runs[1].completed() == 20, "the two ends are different weights");
    }

    /// Trains run 2 of the moons preset to `steps` (snapshots at its evaluations), then pauses.
    fn trained_lab(steps: u64) -> Lab {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        for _ in 0..100_000 {
            if lab.runs[1].completed() >= steps {
                break;
            }
            lab.tick();
        }
        lab.set_all_playing(false);
        lab
    }

    #[test]
    fn a_pca_grid_shows_the_trajectory_nearly_in_its_plane() {
        let mut lab = trained_lab(200);
        lab.set_landscape_settings(LandscapeSettings { directions: Directions::Pca, grid: 11, range: None });
        lab.start_landscape(1, None);
        finish_landscape(&mut lab);
        let v = lab.landscape.as_ref().unwrap().view.clone();
        let d = v.directions.as_ref().expect("directions found");
        let [e1, e2] = d.explained_variance.unwrap();
        assert!(e1 >= e2 && e1 + e2 <= 1.0 + 1e-9 && e1 + e2 > 0.5, "explained variance {e1}, {e2}");
        // The off-plane share is what the explained variance leaves: √(1 − EV₁ − EV₂).
        let share = v.off_plane_share.unwrap();
        assert!((share - (1.0 - e1 - e2).max(0.0).sqrt()).abs() < 1e-3, "{share} vs {e1}, {e2}");
        // Random directions see far less of the same path.
        lab.set_landscape_settings(LandscapeSettings { grid: 11, ..LandscapeSettings::default() });
        lab.start_landscape(1, None);
        finish_landscape(&mut lab);
        let random = lab.landscape.as_ref().unwrap().view.off_plane_share.unwrap();
        assert!(random > share, "random {random} vs pca {share}");
        // The automatic range covers the whole path; the grid has the asked side.
        let Shape::Grid { axis } = &v.shape else { panic!("a grid") };
        assert_eq!(axis.len(), 11);
        assert!(v.trajectory.iter().all(|t| t.alpha.abs() <= axis[10] && t.beta.abs() <= axis[10]));
    }

    #[test]
    fn hessian_directions_are_found_off_the_frame_with_progress() {
        let mut lab = trained_lab(40);
        lab.set_landscape_settings(LandscapeSettings { directions: Directions::Hessian, grid: 11, range: Some(0.5) });
        lab.start_landscape(1, None);
        let mut pending_frames = 0;
        for _ in 0..100_000 {
            let v = &lab.landscape.as_ref().unwrap().view;
            if v.is_complete() {
                break;
            }
            if v.eval_samples > 0 && v.directions.is_none() {
                assert!(v.products.is_some_and(|(done, most)| done <= most && most == 2 * super::HESSIAN_ITERS + 2), "{:?}", v.products);
                assert_eq!(v.done, 0, "no point before the directions");
                pending_frames += 1;
            }
            lab.tick();
            std::thread::sleep(Duration::from_micros(200));
        }
        assert!(pending_frames >= 1, "the frame went on while the worker found the directions");
        let v = &lab.landscape.as_ref().unwrap().view;
        assert!(v.is_complete());
        let [l1, l2] = v.directions.as_ref().unwrap().eigenvalues.unwrap();
        assert!(l1 >= l2 && l1 > 0.0, "λ = {l1}, {l2}");
        let Shape::Grid { axis } = &v.shape else { panic!("a grid") };
        assert!((axis[10] - 0.5).abs() < 1e-12, "the range asked for");
    }

    #[test]
    fn landscape_settings_out_of_range_are_refused_naming_the_field() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.set_landscape_settings(LandscapeSettings { grid: 500, ..LandscapeSettings::default() });
        assert!(lab.landscape_error.as_deref().is_some_and(|e| e.contains("landscape.grid") && e.contains("11 to 101")), "{:?}", lab.landscape_error);
        lab.set_landscape_settings(LandscapeSettings { range: Some(0.0), ..LandscapeSettings::default() });
        assert!(lab.landscape_error.as_deref().is_some_and(|e| e.contains("landscape.range")));
        assert!(lab.state.landscape.is_default());
    }

    #[test]
    fn landscape_settings_travel_with_the_lab_and_older_files_load_without_them() {
        use crate::lab::LabState;
        let mut state = Preset::MoonsSgdVsSam.state();
        let old = state.to_json();
        assert!(!old.contains("landscape"), "default settings stay out of files and links");
        assert_eq!(LabState::from_json(&old).unwrap().0.landscape, LandscapeSettings::default());
        state.landscape = LandscapeSettings { directions: Directions::Hessian, grid: 51, range: Some(2.5) };
        let (back, notes) = LabState::from_hash(&state.to_hash()).unwrap().unwrap();
        assert!(notes.is_empty());
        assert_eq!(back.landscape, state.landscape);
        assert_eq!(LabState::from_json(&state.to_json()).unwrap().0, state);
        // A bad grid in a file: the lab opens with the default landscape and says so.
        let bad = state.to_json().replace("\"grid\": 51", "\"grid\": 7");
        let (opened, notes) = LabState::from_json(&bad).unwrap();
        assert!(opened.landscape.is_default() && notes.iter().any(|n| n.contains("landscape.grid")), "{notes:?}");
    }

    /// Ticks until the landscape is complete (at most 100,000 frames).
    fn finish_landscape(lab: &mut Lab) {
        for _ in 0..100_000 {
            if lab.landscape.as_ref().unwrap().view.is_complete() {
                return;
            }
            lab.tick();
        }
        panic!("the landscape did not complete in 100,000 frames");
    }
}
