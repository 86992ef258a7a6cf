//! The CPU engine: the reference arithmetic of `step.rs` behind the asynchronous `Engine`
//! interface. `CpuEngine<f32>` is the run-time engine (and the browser's fallback);
//! `CpuEngine<f64>` is the reference the GPU engine is tested against.
//!
//! Steps run inside `submit`. An evaluation of the full train and test sets (thousands of rows on
//! mnist5k) runs in blocks of `EVAL_BLOCK` rows, a few milliseconds of blocks per `poll`, so in the
//! browser, where the engine shares the UI thread, no frame spends long on it; requests submitted
//! meanwhile wait behind it in order, and run in later polls while time is left (a poll whose
//! deadline has passed does one block or one request). `finish` completes everything. The blocks change nothing:
//! every row's loss is computed the same way whichever block it falls in.

use super::step::{StepInput, Workspace, sam_family_step};
use super::{Engine, Request, Response};
use crate::config::{NormEstimator, OptimizerConfig, OptimizerKind, RunConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::mlp::Evaluation;
use crate::model::{Mlp, MlpSpec, Real};
use crate::rng;
use std::collections::VecDeque;
use std::sync::Arc;
use web_time::{Duration, Instant};

/// Rows per evaluation block.
pub const EVAL_BLOCK: usize = 64;
/// Evaluation time per `poll` (at least one block).
const EVAL_SLICE: Duration = Duration::from_millis(4);

/// An evaluation in progress: rows done so far, train set first.
struct EvalJob {
    step: u64,
    train: Evaluation,
    test: Evaluation,
}

pub struct CpuEngine<T: Real> {
    mlp: Mlp<T>,
    params: Vec<T>,
    velocity: Vec<T>,
    opt: OptimizerConfig,
    seed: u64,
    data: Arc<Dataset>,
    train_x: Vec<T>,
    test_x: Vec<T>,
    ws: Workspace<T>,
    x: Vec<T>,
    y: Vec<u32>,
    probe: Vec<T>,
    done: VecDeque<Response>,
    eval: Option<EvalJob>,
    /// Requests submitted while an evaluation runs, in order, and the settings each was
    /// submitted under (a live change waits behind the steps submitted before it).
    queued: VecDeque<(Request, OptimizerConfig)>,
    /// The settings of requests submitted from now on (`set_hyperparameters`); `opt` is those
    /// of the work being done.
    latest: OptimizerConfig,
}

use crate::setup::spec_for;

impl<T: Real> CpuEngine<T> {
    pub fn new(cfg: &RunConfig, data: Arc<Dataset>, init: &[f32]) -> Result<Self> {
        let spec = spec_for(cfg, &data);
        if init.len() != spec.n_params() {
            return Err(Error::Data(format!("initial weights have {} values, the model needs {}", init.len(), spec.n_params())));
        }
        let conv = |v: &[f32]| v.iter().map(|&x| T::of(x as f64)).collect::<Vec<T>>();
        Ok(Self {
            mlp: Mlp::new(spec),
            params: conv(init),
            velocity: vec![T::zero(); init.len()],
            opt: cfg.optimizer.clone(),
            latest: cfg.optimizer.clone(),
            seed: cfg.seed,
            train_x: conv(&data.train_x),
            test_x: conv(&data.test_x),
            data,
            ws: Workspace::default(),
            x: Vec::new(),
            y: Vec::new(),
            probe: Vec::new(),
            done: VecDeque::new(),
            eval: None,
            queued: VecDeque::new(),
        })
    }

    pub fn params(&self) -> &[T] {
        &self.params
    }

    pub fn spec(&self) -> &MlpSpec {
        &self.mlp.spec
    }

    /// One step now, returning its report (what `submit` does for each planned step).
    pub fn step_now(&mut self, step: u64, indices: &[u32], lr: f64) -> super::StepReport {
        let nf = self.data.n_features;
        self.x.clear();
        self.y.clear();
        for &i in indices {
            let i = i as usize;
            self.x.extend_from_slice(&self.train_x[i * nf..(i + 1) * nf]);
            self.y.push(self.data.train_y[i]);
        }
        let needs_probe = self.opt.kind == OptimizerKind::Rwsam && self.opt.rwsam.estimator == NormEstimator::FiniteDifference;
        if needs_probe {
            let key = rng::probe_key(self.seed, step);
            self.probe.clear();
            self.probe.extend((0..self.params.len() as u32).map(|k| T::of(rng::rademacher(key, k) as f64)));
        }
        let input = StepInput {
            x: &self.x,
            y: &self.y,
            probe: needs_probe.then_some(&self.probe[..]),
            full: self.opt.kind.uses_full_gradient().then_some((&self.train_x[..], &self.data.train_y[..])),
        };
        sam_family_step(&mut self.mlp, &mut self.params, &mut self.velocity, input, &self.opt, lr, &mut self.ws)
    }
}

impl<T: Real> CpuEngine<T> {
    /// Works through the evaluation in progress a block at a time, then the requests queued
    /// behind it in order, until `until` (at least one block or request; all of it without one).
    fn advance(&mut self, until: Option<Instant>) {
        let (n_train, n_test) = (self.data.train_y.len(), self.data.test_y.len());
        let nf = self.data.n_features;
        let mut first = true;
        loop {
            if !first && until.is_some_and(|t| Instant::now() >= t) {
                return;
            }
            first = false;
            let Some(job) = &mut self.eval else {
                // The requests that waited for an evaluation, in order (one may start another).
                let Some((next, opt)) = self.queued.pop_front() else { return };
                self.opt = opt;
                self.handle(next);
                continue;
            };
            let (set_x, set_y, out) = if job.train.losses.len() < n_train {
                (&self.train_x, &self.data.train_y, &mut job.train)
            } else {
                (&self.test_x, &self.data.test_y, &mut job.test)
            };
            let done = out.losses.len();
            let end = (done + EVAL_BLOCK).min(set_y.len());
            if end > done {
                let part = self.mlp.evaluate(&self.params, &set_x[done * nf..end * nf], &set_y[done..end]);
                out.losses.extend(part.losses);
                out.predictions.extend(part.predictions);
            }
            if job.train.losses.len() >= n_train && job.test.losses.len() >= n_test {
                let job = self.eval.take().expect("an evaluation in progress");
                self.done.push_back(Response::Evaluated { step: job.step, train: job.train, test: job.test });
            }
        }
    }

    fn handle(&mut self, request: Request) {
        match request {
            Request::Steps(plans) => {
                for plan in plans {
                    let report = self.step_now(plan.step, &plan.indices, plan.lr);
                    let finite = report.loss.is_finite();
                    self.done.push_back(Response::Step { step: plan.step, report });
                    if !finite {
                        break; // the caller pauses a diverged run; later steps would be noise
                    }
                }
            }
            Request::Evaluate { step } => self.eval = Some(EvalJob { step, train: Evaluation::default(), test: Evaluation::default() }),
            Request::ReadParams { tag } => {
                let params = self.params.iter().map(|v| v.f64() as f32).collect();
                self.done.push_back(Response::Params { tag, params });
            }
        }
    }
}

impl<T: Real> Engine for CpuEngine<T> {
    fn describe(&self) -> String {
        format!("CPU ({})", std::any::type_name::<T>())
    }

    fn submit(&mut self, request: Request) -> Result<()> {
        if self.eval.is_some() || !self.queued.is_empty() {
            self.queued.push_back((request, self.latest.clone()));
        } else {
            self.opt = self.latest.clone();
            self.handle(request);
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<Response>> {
        self.advance(Some(Instant::now() + EVAL_SLICE));
        Ok(self.done.drain(..).collect())
    }

    fn poll_until(&mut self, until: Instant) -> Result<Vec<Response>> {
        self.advance(Some(until.min(Instant::now() + EVAL_SLICE)));
        Ok(self.done.drain(..).collect())
    }

    fn in_flight(&self) -> usize {
        self.done.len() + usize::from(self.eval.is_some()) + self.queued.len()
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        if params.len() != self.params.len() {
            return Err(Error::Data(format!("{} parameters given, the model has {}", params.len(), self.params.len())));
        }
        for (p, &v) in self.params.iter_mut().zip(params) {
            *p = T::of(v as f64);
        }
        self.velocity.fill(T::zero());
        Ok(())
    }

    fn set_hyperparameters(&mut self, opt: &OptimizerConfig) -> Result<()> {
        crate::hyper::check_structure(&self.latest, opt)?;
        self.latest = opt.clone();
        if self.eval.is_none() && self.queued.is_empty() {
            // Nothing queued: the next step (submitted or `step_now`) uses them.
            self.opt = opt.clone();
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<Vec<Response>> {
        self.advance(None);
        Ok(self.done.drain(..).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetName;
    use crate::engine::ParamsTag;

    /// Evaluated in blocks over several polls, with requests queued behind it in order, the
    /// evaluation equals one pass over each whole set, bit for bit.
    #[test]
    fn an_evaluation_in_blocks_equals_one_pass() {
        for name in [DatasetName::Digits, DatasetName::Moons] {
            let mut cfg = RunConfig::default();
            cfg.dataset.name = name;
            let data = Arc::new(Dataset::load(&cfg.dataset, 0).unwrap());
            let init = spec_for(&cfg, &data).init(0);
            let mut e = CpuEngine::<f32>::new(&cfg, data.clone(), &init).unwrap();
            let whole_train = e.mlp.evaluate(&e.params, &e.train_x, &data.train_y);
            let whole_test = e.mlp.evaluate(&e.params, &e.test_x, &data.test_y);
            e.submit(Request::Evaluate { step: 0 }).unwrap();
            e.submit(Request::ReadParams { tag: ParamsTag::Blocking }).unwrap();
            let mut got = Vec::new();
            for _ in 0..100_000 {
                if got.len() == 2 {
                    break;
                }
                got.extend(e.poll().unwrap());
            }
            assert_eq!(e.in_flight(), 0);
            let [Response::Evaluated { train, test, .. }, Response::Params { .. }] = &got[..] else { panic!("{got:?}") };
            assert_eq!((&train.losses, &train.predictions), (&whole_train.losses, &whole_train.predictions), "{name:?} train");
            assert_eq!((&test.losses, &test.predictions), (&whole_test.losses, &whole_test.predictions), "{name:?} test");
            assert!(data.train_y.len() > EVAL_BLOCK, "the set spans several blocks");
        }
    }

    /// A deadline already past gets exactly one block per poll: the evaluation still advances,
    /// and a frame's share bounds it.
    #[test]
    fn a_past_deadline_still_advances_one_block() {
        let cfg = RunConfig::default();
        let data = Arc::new(Dataset::load(&cfg.dataset, 0).unwrap());
        let init = spec_for(&cfg, &data).init(0);
        let mut e = CpuEngine::<f32>::new(&cfg, data.clone(), &init).unwrap();
        e.submit(Request::Evaluate { step: 0 }).unwrap();
        let n_train = data.train_y.len();
        let train_blocks = n_train.div_ceil(EVAL_BLOCK);
        let blocks = train_blocks + data.test_y.len().div_ceil(EVAL_BLOCK);
        for k in 1..blocks {
            assert!(e.poll_until(Instant::now()).unwrap().is_empty(), "block {k} of {blocks}");
            let done = e.eval.as_ref().map(|j| j.train.losses.len() + j.test.losses.len());
            let want = if k <= train_blocks { (k * EVAL_BLOCK).min(n_train) } else { n_train + (k - train_blocks) * EVAL_BLOCK };
            assert_eq!(done, Some(want), "rows after {k} polls");
        }
        assert!(matches!(e.poll_until(Instant::now()).unwrap()[..], [Response::Evaluated { .. }]));
    }

    /// Requests queued behind an evaluation wait for a later poll once the deadline has passed
    /// (one request per late poll), in order, and a request submitted meanwhile queues behind
    /// them: the evaluation's last block, the steps and the parameter read are not all done in
    /// one frame.
    #[test]
    fn a_past_deadline_leaves_the_queued_requests_for_later_polls() {
        let cfg = RunConfig::default();
        let data = Arc::new(Dataset::load(&cfg.dataset, 0).unwrap());
        let init = spec_for(&cfg, &data).init(0);
        let mut e = CpuEngine::<f32>::new(&cfg, data.clone(), &init).unwrap();
        let mut reference = CpuEngine::<f32>::new(&cfg, data.clone(), &init).unwrap();
        let plan = |step: u64| crate::engine::StepPlan { step, indices: (0..32).collect(), lr: 0.05 };
        let requests = || [Request::Evaluate { step: 0 }, Request::Steps(vec![plan(0), plan(1)]), Request::ReadParams { tag: ParamsTag::Blocking }];
        for r in requests() {
            e.submit(r).unwrap();
        }
        let mut got = Vec::new();
        while e.eval.is_some() {
            got.extend(e.poll_until(Instant::now()).unwrap());
        }
        assert!(matches!(got[..], [Response::Evaluated { .. }]), "only the evaluation so far");
        assert_eq!(e.queued.len(), 2);
        e.submit(Request::Steps(vec![plan(2)])).unwrap();
        assert_eq!(e.queued.len(), 3, "a new request waits behind the queued ones");
        got.extend(e.poll_until(Instant::now()).unwrap());
        assert_eq!(got.len(), 3, "one request (two steps) per late poll");
        got.extend(e.finish().unwrap());
        for r in requests().into_iter().chain([Request::Steps(vec![plan(2)])]) {
            reference.submit(r).unwrap();
        }
        let want = reference.finish().unwrap();
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }
}
