//! Loss landscapes in the app, computed a few points per frame so that the UI never waits:
//! the 2D grid f(w + α·d₁ + β·d₂) around a run's current weights with filter-normalised random
//! directions (`metrics::landscape`), and the straight line (1 − t)·w_a + t·w_b between two runs'
//! weights. Every point is a full evaluation of the loss on a fixed subset of the training set.

use crate::data::Dataset;
use crate::engine::ParamsTag;
use crate::setup::spec_for;
use crate::error::Result;
use crate::metrics::landscape::{directions, linspace, project};
use crate::metrics::{CpuEvaluator, EvalSet, LossEvaluator};
use crate::run::Run;
use web_time::Instant;

/// Points per side of the grid.
pub const GRID: usize = 31;
/// α, β ∈ [−RANGE, RANGE].
pub const RANGE: f64 = 1.0;
/// Points on the line between two runs, t ∈ [−0.25, 1.25].
pub const LINE_POINTS: usize = 31;
/// Training samples every point is evaluated on.
pub const EVAL_SAMPLES: usize = 256;

/// What is being drawn (and how far it got).
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// `loss[j * GRID + i]` at (α_i, β_j); NaN until evaluated.
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
}

impl LandscapeView {
    pub fn total(&self) -> usize {
        self.loss.len()
    }

    pub fn is_complete(&self) -> bool {
        self.done >= self.total()
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
    /// Grid only: the run's snapshots when the grid was asked for.
    snapshots: Vec<(u64, Vec<f32>)>,
}

struct Started {
    evaluator: CpuEvaluator<f32>,
    /// Grid: center, d₁, d₂. Line: from, to.
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    point: Vec<f32>,
}


impl LandscapeJob {
    /// The grid around run `i`'s weights; asks the run for them.
    pub fn grid(i: usize, label: String, run: &mut Run) -> Result<Self> {
        let tag = ParamsTag::Landscape(i);
        run.request_params(tag)?;
        let axis = linspace(-RANGE, RANGE, GRID);
        Ok(Self {
            view: LandscapeView {
                label,
                step: run.completed_steps(),
                shape: Shape::Grid { axis },
                loss: vec![f64::NAN; GRID * GRID],
                accuracy: vec![f64::NAN; GRID * GRID],
                done: 0,
                eval_samples: 0,
                generation: 0,
                trajectory: Vec::new(),
            },
            waiting: vec![(i, tag)],
            arrived: vec![None],
            asked: Instant::now(),
            started: None,
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
            },
            waiting: vec![(i, ti), (j, tj)],
            arrived: vec![None, None],
            asked: Instant::now(),
            started: None,
            snapshots: Vec::new(),
        })
    }

    /// Collects the parameters, then evaluates points until `until` (at least one per call once
    /// started). Returns an error message if the job cannot go on (e.g. a run was removed).
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
            let started = match &self.view.shape {
                Shape::Grid { .. } => {
                    let (d1, d2) = directions(&spec, &first, run.config.seed);
                    // The path so far, seen from the plane (the centre itself is the last point).
                    self.view.trajectory = self
                        .snapshots
                        .iter()
                        .filter(|(_, w)| w.len() == first.len())
                        .map(|(step, w)| {
                            let (alpha, beta, _, relative_residual) = project(&first, &d1, &d2, w);
                            TrajectoryPoint { step: *step, alpha, beta, relative_residual }
                        })
                        .collect();
                    Started { evaluator, a: first, b: d1, c: d2, point: Vec::new() }
                }
                Shape::Line { .. } => {
                    let second = self.arrived[1].take().expect("arrived");
                    if second.len() != first.len() {
                        return Err("the two runs have different architectures".into());
                    }
                    Started { evaluator, a: first, b: second, c: Vec::new(), point: Vec::new() }
                }
            };
            self.started = Some(started);
        }
        let s = self.started.as_mut().expect("started above");
        let mut first = true;
        while !self.view.is_complete() && (first || Instant::now() < until) {
            first = false;
            let k = self.view.done;
            s.point.clear();
            match &self.view.shape {
                Shape::Grid { axis } => {
                    let (alpha, beta) = (axis[k % GRID] as f32, axis[k / GRID] as f32);
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
    use crate::engine::EngineChoice;
    use crate::lab::{Lab, Preset};
    use super::{CpuEvaluator, EvalSet, LossEvaluator, Shape, spec_for};
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
        let centre = v.loss[(super::GRID / 2) * super::GRID + super::GRID / 2];
        let corners = [0, super::GRID - 1, super::GRID * (super::GRID - 1), super::GRID * super::GRID - 1];
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
