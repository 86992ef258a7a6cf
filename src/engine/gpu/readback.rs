//! Reading results back without waiting: each submit that returns something copies it into a
//! staging buffer (taken from a pool) and starts `map_async` on it; `Readback::poll` hands out,
//! in submission order, whatever has mapped and parses it (step statistics rows, evaluations,
//! parameters) into `Response`s. `read_blocking` is the waiting variant for the native CLI and
//! tests.

#[cfg(not(target_arch = "wasm32"))]
use super::GpuContext;
use super::program::{STAT_CORRECT, STAT_ESS, STAT_GRAD_NORM, STAT_HEAD, STAT_LAMBDA, STAT_LOSS, STAT_PERT_LOSS, STAT_PERT_NORM};
use crate::engine::{Response, RwReport, StepReport};
use crate::error::{Error, Result};
use crate::model::mlp::Evaluation;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::engine::ParamsTag;

/// What a staging buffer holds.
pub(super) enum PendingKind {
    /// Statistics rows of these steps, one after another.
    Steps(Vec<u64>),
    /// Losses then predictions of the train and test sets, after this step.
    Eval(u64),
    Params(ParamsTag),
}

/// Where a staging buffer's `map_async` stands (set by its callback).
enum MapState {
    Waiting,
    Mapped,
    Failed,
}

struct Pending {
    kind: PendingKind,
    staging: wgpu::Buffer,
    size: u64,
    state: Arc<Mutex<MapState>>,
}

/// The sizes a readback is parsed with.
pub(super) struct Layout {
    pub(super) batch: usize,
    pub(super) stats_row: usize,
    /// Whether the stats rows carry RW-SAM's scores and weights.
    pub(super) rwsam: bool,
    pub(super) n_train: usize,
    pub(super) n_test: usize,
    pub(super) n_params: usize,
}

/// Readbacks in flight, in submission order, and the staging buffers free for reuse.
pub(super) struct Readback {
    layout: Layout,
    pending: VecDeque<Pending>,
    pool: Vec<wgpu::Buffer>,
}

impl Readback {
    pub(super) fn new(layout: Layout) -> Self {
        Self { layout, pending: VecDeque::new(), pool: Vec::new() }
    }

    pub(super) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// A staging buffer of at least `size` bytes: from the pool, or a new one.
    pub(super) fn take_staging(&mut self, device: &wgpu::Device, size: u64) -> wgpu::Buffer {
        if let Some(i) = self.pool.iter().position(|b| b.size() >= size) {
            return self.pool.swap_remove(i);
        }
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback staging"),
            size: size.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Starts mapping the first `size` bytes of `staging` (after the submit that fills it).
    pub(super) fn start(&mut self, kind: PendingKind, staging: wgpu::Buffer, size: u64) {
        let state = Arc::new(Mutex::new(MapState::Waiting));
        let flag = state.clone();
        staging.slice(..size).map_async(wgpu::MapMode::Read, move |res| {
            if let Ok(mut s) = flag.lock() {
                *s = if res.is_ok() { MapState::Mapped } else { MapState::Failed };
            }
        });
        self.pending.push_back(Pending { kind, staging, size, state });
    }

    /// The responses of every readback mapped so far, in submission order; never waits.
    pub(super) fn poll(&mut self) -> Result<Vec<Response>> {
        let mut out = Vec::new();
        while let Some(front) = self.pending.front() {
            let mapped = match *front.state.lock().map_err(|_| Error::Gpu("a readback callback panicked".into()))? {
                MapState::Waiting => break,
                MapState::Mapped => true,
                MapState::Failed => false,
            };
            let p = self.pending.pop_front().expect("front exists");
            if !mapped {
                return Err(Error::Gpu("mapping a readback buffer failed (device lost?)".into()));
            }
            let data = p.staging.slice(..p.size).get_mapped_range().map_err(|e| Error::Gpu(format!("readback: {e}")))?.to_vec();
            p.staging.unmap();
            self.pool.push(p.staging);
            out.extend(self.responses(p.kind, &data));
        }
        Ok(out)
    }

    fn parse_step(&self, row: &[f32]) -> StepReport {
        // A negative grad norm is the kernels' "not computed" (see step_stats in reduce.wgsl).
        let finite = |v: f32| if v < 0.0 { None } else { Some(v as f64) };
        let b = self.layout.batch;
        StepReport {
            loss: row[STAT_LOSS] as f64,
            correct: row[STAT_CORRECT] as usize,
            grad_norm: finite(row[STAT_GRAD_NORM]),
            perturbation_norm: row[STAT_PERT_NORM] as f64,
            perturbed_loss: row[STAT_PERT_LOSS] as f64,
            rwsam: self.layout.rwsam.then(|| RwReport {
                scores: row[STAT_HEAD..STAT_HEAD + b].iter().map(|&v| v as f64).collect(),
                weights: row[STAT_HEAD + b..STAT_HEAD + 2 * b].iter().map(|&v| v as f64).collect(),
                lambda: row[STAT_LAMBDA] as f64,
                ess: row[STAT_ESS] as f64,
            }),
        }
    }

    fn responses(&self, kind: PendingKind, data: &[u8]) -> Vec<Response> {
        let l = &self.layout;
        match kind {
            PendingKind::Steps(steps) => {
                let floats: &[f32] = bytemuck::cast_slice(data);
                steps
                    .iter()
                    .enumerate()
                    .map(|(k, &step)| Response::Step { step, report: self.parse_step(&floats[k * l.stats_row..(k + 1) * l.stats_row]) })
                    .collect()
            }
            PendingKind::Eval(step) => {
                let n = l.n_train + l.n_test;
                let losses: &[f32] = bytemuck::cast_slice(&data[..n * 4]);
                let preds: &[u32] = bytemuck::cast_slice(&data[n * 4..n * 8]);
                let split = |a: usize, b: usize| Evaluation { losses: losses[a..b].iter().map(|&v| v as f64).collect(), predictions: preds[a..b].to_vec() };
                vec![Response::Evaluated { step, train: split(0, l.n_train), test: split(l.n_train, n) }]
            }
            PendingKind::Params(tag) => {
                vec![Response::Params { tag, params: bytemuck::cast_slice::<u8, f32>(data)[..l.n_params].to_vec() }]
            }
        }
    }
}

/// Copies `size` bytes of `buf` to a staging buffer and waits for them (native CLI and tests).
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn read_blocking(ctx: &GpuContext, buf: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
    ctx.scoped(|| read_now(ctx, buf, size))
}

#[cfg(not(target_arch = "wasm32"))]
fn read_now(ctx: &GpuContext, buf: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("blocking readback staging"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("blocking read") });
    encoder.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
    ctx.queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..size).map_async(wgpu::MapMode::Read, move |r| {
        tx.send(r).ok();
    });
    ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
    rx.recv().map_err(|e| Error::Gpu(e.to_string()))?.map_err(|e| Error::Gpu(format!("readback: {e}")))?;
    let out = staging.slice(..size).get_mapped_range().map_err(|e| Error::Gpu(e.to_string()))?.to_vec();
    staging.unmap();
    Ok(out)
}
