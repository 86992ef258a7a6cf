//! The CPU engine: the reference arithmetic of `step.rs` behind the asynchronous `Engine`
//! interface. `CpuEngine<f32>` is the run-time engine (and the browser's fallback);
//! `CpuEngine<f64>` is the reference the GPU engine is tested against.

use super::step::{StepInput, Workspace, sam_family_step};
use super::{Engine, Request, Response};
use crate::config::{NormEstimator, OptimizerConfig, OptimizerKind, RunConfig};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Mlp, MlpSpec, Real};
use crate::rng;
use std::collections::VecDeque;
use std::sync::Arc;

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
            seed: cfg.seed,
            train_x: conv(&data.train_x),
            test_x: conv(&data.test_x),
            data,
            ws: Workspace::default(),
            x: Vec::new(),
            y: Vec::new(),
            probe: Vec::new(),
            done: VecDeque::new(),
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
            full: (self.opt.kind == OptimizerKind::Nsam).then_some((&self.train_x[..], &self.data.train_y[..])),
        };
        sam_family_step(&mut self.mlp, &mut self.params, &mut self.velocity, input, &self.opt, lr, &mut self.ws)
    }
}

impl<T: Real> Engine for CpuEngine<T> {
    fn describe(&self) -> String {
        format!("CPU ({})", std::any::type_name::<T>())
    }

    fn submit(&mut self, request: Request) -> Result<()> {
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
            Request::Evaluate { step } => {
                let train = self.mlp.evaluate(&self.params, &self.train_x, &self.data.train_y);
                let test = self.mlp.evaluate(&self.params, &self.test_x, &self.data.test_y);
                self.done.push_back(Response::Evaluated { step, train, test });
            }
            Request::ReadParams { tag } => {
                let params = self.params.iter().map(|v| v.f64() as f32).collect();
                self.done.push_back(Response::Params { tag, params });
            }
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<Response>> {
        Ok(self.done.drain(..).collect())
    }

    fn in_flight(&self) -> usize {
        self.done.len()
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

    fn finish(&mut self) -> Result<Vec<Response>> {
        self.poll()
    }
}
