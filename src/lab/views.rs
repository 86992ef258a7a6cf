//! What the app draws of a run besides its history: the decision surface of a 2D toy (the
//! model's predictions on a grid) and, for image datasets, the training samples with the largest
//! per-sample gradient norms ‖∇f_i‖ (the samples RW-SAM's Gibbs weights p_i ∝ exp(λ·s_i)
//! favour). Both are computed on the CPU from the run's current parameters, read through the
//! engine without blocking (`Run::request_params` now, `take_params` a frame later).

use crate::data::Dataset;
use crate::engine::ParamsTag;
use crate::model::mlp::softmax_xent;
use crate::model::{Mlp, Tape};
use crate::run::Run;
use crate::setup::spec_for;
use web_time::{Duration, Instant};

/// A process-wide counter, so that a rebuilt run never reuses an old view's key.
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Points per side of the decision-surface grid.
pub const GRID: usize = 56;
/// How many of the hardest samples to keep.
pub const HARDEST: usize = 24;
/// How long one refresh works on a view in progress before it leaves the rest for the next frame.
const VIEW_SLICE: Duration = Duration::from_millis(2);

/// The model's prediction on a GRID×GRID lattice over the data's bounding box (row 0 at y_min).
#[derive(Clone, Debug, PartialEq)]
pub struct Surface {
    pub step: u64,
    pub res: usize,
    pub x_range: (f32, f32),
    pub y_range: (f32, f32),
    pub n_classes: usize,
    /// Predicted class per grid point, row-major.
    pub class: Vec<u32>,
    /// Softmax probability of the predicted class.
    pub confidence: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HardSample {
    /// Index into the training set.
    pub index: usize,
    pub grad_norm: f64,
    /// The label trained on (after label noise).
    pub label: u32,
    pub clean_label: u32,
    pub predicted: u32,
    pub flipped: bool,
}

/// The training samples with the largest ‖∇f_i‖ among the first `examined` training samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Hardest {
    pub step: u64,
    pub examined: usize,
    /// Share of the examined samples' total ‖∇f_i‖ that the flipped ones carry.
    pub flipped_share: f64,
    pub samples: Vec<HardSample>,
}

#[derive(Clone, Debug, Default)]
pub struct RunViews {
    pub surface: Option<Surface>,
    pub hardest: Option<Hardest>,
    /// Changes whenever the views change (keys the app's textures).
    pub generation: u64,
    last: Option<Instant>,
    /// What the last computation took: the next waits at least 20 times as long (≤ 5 % of the time).
    last_cost: Duration,
    pending: Option<ParamsTag>,
    /// The hardest-samples view in progress, and when it started.
    work: Option<(HardestWork, Instant)>,
    next_tag: u64,
}

impl RunViews {
    /// Forgets what was computed (after a reset); a parameter read in flight is still collected.
    pub fn clear(&mut self) {
        self.generation = next_generation();
        self.surface = None;
        self.hardest = None;
        self.last = None;
        self.work = None;
    }

    fn step(&self) -> Option<u64> {
        self.surface.as_ref().map(|s| s.step).or(self.hardest.as_ref().map(|h| h.step))
    }

    /// Advances the refresh: collects parameters asked for earlier and computes the views, or
    /// asks for parameters when the run moved and `every` has passed. Returns true when it
    /// computed something (the caller then leaves the other runs for the next frame).
    pub fn refresh(&mut self, run: Option<&mut Run>, data: &Dataset, every: Duration) -> bool {
        let Some(run) = run else { return false };
        if let Some((work, started)) = &mut self.work {
            // Pieces until VIEW_SLICE has passed (at least one).
            let until = Instant::now() + VIEW_SLICE;
            while !work.advance(data) {
                if Instant::now() >= until {
                    return true;
                }
            }
            let started = *started;
            let (work, _) = self.work.take().expect("a view in progress");
            self.hardest = Some(work.finish(data));
            self.done(started);
            return true;
        }
        if let Some(tag) = self.pending {
            let Some(params) = run.take_params(tag) else { return false };
            self.pending = None;
            let step = run.completed_steps();
            let started = Instant::now();
            if data.is_points() {
                self.surface = Some(decision_surface(run, data, &params, step));
                self.done(started);
            } else {
                self.work = Some((HardestWork::new(run, data, params, step), started));
            }
            return true;
        }
        let due = self.last.is_none_or(|t| t.elapsed() >= every.max(self.last_cost * 20));
        let moved = self.step() != Some(run.completed_steps());
        if due && moved {
            self.next_tag += 1;
            let tag = ParamsTag::View(self.next_tag);
            if run.request_params(tag).is_ok() {
                self.pending = Some(tag);
            }
        }
        false
    }

    /// A view computed since `started` is shown.
    fn done(&mut self, started: Instant) {
        self.last = Some(Instant::now());
        self.last_cost = started.elapsed();
        self.generation = next_generation();
    }
}

/// The bounding box of the training and test inputs of a 2D dataset, with a margin.
pub fn data_bounds(data: &Dataset) -> ((f32, f32), (f32, f32)) {
    let (mut x0, mut x1, mut y0, mut y1) = (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY);
    for p in data.train_x.chunks_exact(2).chain(data.test_x.chunks_exact(2)) {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    if !(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite()) {
        return ((-1.0, 1.0), (-1.0, 1.0));
    }
    let (mx, my) = (0.1 * (x1 - x0).max(1e-3), 0.1 * (y1 - y0).max(1e-3));
    ((x0 - mx, x1 + mx), (y0 - my, y1 + my))
}

pub fn decision_surface(run: &Run, data: &Dataset, params: &[f32], step: u64) -> Surface {
    let spec = spec_for(&run.config, data);
    let classes = spec.out_dim();
    let mut mlp = Mlp::<f32>::new(spec);
    let (x_range, y_range) = data_bounds(data);
    let res = GRID;
    let coord = |k: usize, (lo, hi): (f32, f32)| lo + (hi - lo) * (k as f32 + 0.5) / res as f32;
    let mut grid = Vec::with_capacity(res * res * 2);
    for row in 0..res {
        for col in 0..res {
            grid.push(coord(col, x_range));
            grid.push(coord(row, y_range));
        }
    }
    let mut tape = Tape::default();
    let (mut class, mut confidence) = (Vec::with_capacity(res * res), Vec::with_capacity(res * res));
    for chunk in grid.chunks(2 * 1024) {
        let batch = chunk.len() / 2;
        mlp.forward(params, chunk, batch, &mut tape, None);
        for z in tape.logits().chunks_exact(classes) {
            let (arg, max) = z.iter().enumerate().fold((0, f32::NEG_INFINITY), |(a, m), (c, &v)| if v > m { (c, v) } else { (a, m) });
            let sum: f32 = z.iter().map(|&v| (v - max).exp()).sum();
            class.push(arg as u32);
            confidence.push(if sum.is_finite() && sum > 0.0 { 1.0 / sum } else { 0.0 });
        }
    }
    Surface { step, res, x_range, y_range, n_classes: classes, class, confidence }
}

/// Samples examined so that one refresh costs about as much as a few training steps.
fn examined(n_params: usize, n_train: usize) -> usize {
    (40_000_000 / (6 * n_params.max(1))).clamp(64, 1024).min(n_train)
}

/// Samples per piece of `HardestWork` (its results do not depend on how it is cut).
const HARDEST_PIECE: usize = 64;

/// The hardest-samples view, computed piece by piece: `HARDEST_PIECE` samples a piece, so that
/// the app spreads it over frames (a large model examines a thousand samples).
#[derive(Clone, Debug)]
pub struct HardestWork {
    mlp: Mlp<f32>,
    classes: usize,
    params: Vec<f32>,
    step: u64,
    n: usize,
    tape: Tape<f32>,
    deltas: Vec<Vec<f32>>,
    norms: Vec<f64>,
    predictions: Vec<u32>,
}

impl HardestWork {
    pub fn new(run: &Run, data: &Dataset, params: Vec<f32>, step: u64) -> Self {
        let spec = spec_for(&run.config, data);
        let n = examined(spec.n_params(), data.n_train());
        let classes = spec.out_dim();
        Self {
            mlp: Mlp::<f32>::new(spec),
            classes,
            params,
            step,
            n,
            tape: Tape::default(),
            deltas: Vec::new(),
            norms: Vec::with_capacity(n),
            predictions: Vec::with_capacity(n),
        }
    }

    /// Examines the next piece of samples; true once every one is.
    pub fn advance(&mut self, data: &Dataset) -> bool {
        let start = self.norms.len();
        if start < self.n {
            let end = (start + HARDEST_PIECE).min(self.n);
            let x = &data.train_x[start * data.n_features..end * data.n_features];
            let y = &data.train_y[start..end];
            self.mlp.forward(&self.params, x, end - start, &mut self.tape, None);
            let out = softmax_xent(self.tape.logits(), y, self.classes);
            self.mlp.backprop(&self.params, &self.tape, &out.dlogits, &mut self.deltas, None);
            self.norms.extend(self.mlp.per_sample_sq_norms(&self.tape, &self.deltas).into_iter().map(|v| (v.max(0.0) as f64).sqrt()));
            self.predictions.extend(out.predictions);
        }
        self.norms.len() >= self.n
    }

    /// The view, once `advance` said every sample is examined.
    pub fn finish(self, data: &Dataset) -> Hardest {
        let (n, norms) = (self.n, &self.norms);
        let flipped = |i: usize| data.flipped.binary_search(&i).is_ok();
        let total: f64 = norms.iter().filter(|v| v.is_finite()).sum();
        let on_flipped: f64 = (0..n).filter(|&i| flipped(i) && norms[i].is_finite()).map(|i| norms[i]).sum();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]).then(a.cmp(&b)));
        let samples = order
            .into_iter()
            .take(HARDEST)
            .map(|i| HardSample {
                index: i,
                grad_norm: norms[i],
                label: data.train_y[i],
                clean_label: data.clean_train_y[i],
                predicted: self.predictions[i],
                flipped: flipped(i),
            })
            .collect();
        Hardest { step: self.step, examined: n, flipped_share: if total > 0.0 { on_flipped / total } else { 0.0 }, samples }
    }
}

/// The hardest-samples view in one go.
pub fn hardest_samples(run: &Run, data: &Dataset, params: &[f32], step: u64) -> Hardest {
    let mut work = HardestWork::new(run, data, params.to_vec(), step);
    while !work.advance(data) {}
    work.finish(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineChoice;
    use crate::lab::{Lab, Preset};

    #[test]
    fn views_arrive_a_frame_after_they_are_asked_for() {
        let mut lab = Lab::new(Preset::MoonsSgdVsSam.state(), EngineChoice::default());
        lab.set_all_playing(false);
        lab.step_once(0);
        lab.refresh_views(Duration::ZERO);
        assert!(lab.runs[0].views.surface.is_none());
        lab.tick();
        lab.refresh_views(Duration::ZERO);
        let s = lab.runs[0].views.surface.as_ref().expect("a surface after one frame");
        assert_eq!(s.class.len(), GRID * GRID);
        assert!(s.confidence.iter().all(|&c| (0.49..=1.0).contains(&c)));
    }

    #[test]
    fn hardest_samples_are_sorted_and_flag_flipped_labels() {
        let mut lab = Lab::new(Preset::LabelNoise.state(), EngineChoice::default());
        lab.set_all_playing(false);
        let run = lab.runs[0].run.as_mut().unwrap();
        let params = run.params_blocking().unwrap();
        let data = lab.data.clone().unwrap();
        let h = hardest_samples(lab.runs[0].run.as_ref().unwrap(), &data, &params, 0);
        assert_eq!(h.samples.len(), HARDEST);
        assert!(h.samples.windows(2).all(|w| w[0].grad_norm >= w[1].grad_norm));
        for s in &h.samples {
            assert_eq!(s.flipped, s.label != s.clean_label);
        }
        assert!(h.flipped_share > 0.0 && h.flipped_share < 1.0);
    }

    #[test]
    fn hardest_samples_come_in_pieces_and_match_the_view_in_one_go() {
        let mut lab = Lab::new(Preset::LabelNoise.state(), EngineChoice::default());
        lab.set_all_playing(false);
        lab.step_once(0);
        let data = lab.data.clone().unwrap();
        let params = lab.runs[0].run.as_mut().unwrap().params_blocking().unwrap();
        let run = lab.runs[0].run.as_ref().unwrap();
        let whole = hardest_samples(run, &data, &params, 1);
        let mut work = HardestWork::new(run, &data, params.clone(), 1);
        let mut pieces = 1;
        while !work.advance(&data) {
            pieces += 1;
        }
        assert_eq!(pieces, whole.examined.div_ceil(HARDEST_PIECE));
        assert!(pieces > 1, "{} samples examined", whole.examined);
        assert_eq!(work.finish(&data), whole);
        // Through the app's path: asked for, then computed over one or more frames.
        let mut frames = 0;
        while lab.runs[0].views.hardest.is_none() {
            lab.tick();
            lab.refresh_views(Duration::ZERO);
            frames += 1;
            assert!(frames < 100, "no view after {frames} frames");
        }
        let shown = lab.runs[0].views.hardest.as_ref().unwrap();
        assert_eq!((shown.step, shown.examined, &shown.samples), (1, whole.examined, &whole.samples));
    }
}
