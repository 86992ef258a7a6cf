//! The recording toolkit of every GPU user (the engine, the landscape evaluator, the metrics
//! objective): a `Recorder` collects dispatches (each with its own uniform `Params`) and buffer
//! copies, `encode_and_submit` writes the uniforms into 256-byte slots of one buffer and encodes
//! them (consecutive dispatches share one compute pass), `Passes` records the MLP's forward,
//! backward and loss passes over per-layer regions of the activation buffers, and `storage`,
//! `storage_init` and `bind` make buffers and bind groups.
//!
//! A `Recorder<B>` is generic over its bind-group handle: the engine's step program records
//! named bindings (`program::Bind`) without a device, and the engine resolves them to wgpu bind
//! groups before submitting.

use super::GpuContext;
use super::kernels::{ACT_NONE, Kernel, Params, SLOT, backward_groups, forward_groups};
use crate::model::MlpSpec;

/// Workgroups per dimension of a dispatch that every WebGPU device allows (the default
/// `max_compute_workgroups_per_dimension`; `context` refuses devices below it).
pub const MAX_WORKGROUPS_PER_DIM: u32 = 65535;

/// The dispatch of a logical grid of x × y workgroups: [x0, x1, y] with x0·x1 ≥ x, x1 > 1 only
/// when x exceeds `limit` (x = x0 + x1·nwg.x in WGSL's `tiled_wg`, and y the third dimension).
/// None when no tiling fits (x > limit², y > limit). An empty grid dispatches one workgroup,
/// which the kernels' bounds checks make a no-op.
pub fn tile_grid(x: u64, y: u64, limit: u32) -> Option<[u32; 3]> {
    let (x, y, l) = (x.max(1), y.max(1), limit as u64);
    if y > l || x > l * l {
        return None;
    }
    let rows = x.div_ceil(l);
    Some([x.div_ceil(rows) as u32, rows as u32, y as u32])
}

pub(super) enum Op<B> {
    Dispatch { kernel: Kernel, bind: B, slot: u32, groups: [u32; 3] },
    Copy { src: wgpu::Buffer, src_offset: u64, dst: wgpu::Buffer, dst_offset: u64, size: u64 },
}

/// Dispatches and copies of one submit, with their uniforms. Every dispatch goes through
/// `dispatch`, which tiles its grid; a grid that cannot be tiled is kept in `misfits` (and
/// `encode_and_submit` refuses the whole submit).
pub(super) struct Recorder<B = wgpu::BindGroup> {
    pub(super) slots: Vec<Params>,
    pub(super) ops: Vec<Op<B>>,
    pub(super) misfits: Vec<(Kernel, [usize; 2])>,
}

impl<B> Default for Recorder<B> {
    fn default() -> Self {
        Self { slots: Vec::new(), ops: Vec::new(), misfits: Vec::new() }
    }
}

impl<B: Clone> Recorder<B> {
    /// `kernel` over a logical grid of [x, y] workgroups (see `tile_grid`).
    pub(super) fn dispatch(&mut self, kernel: Kernel, bind: &B, params: Params, grid: [usize; 2]) {
        let groups = tile_grid(grid[0] as u64, grid[1] as u64, MAX_WORKGROUPS_PER_DIM).unwrap_or_else(|| {
            self.misfits.push((kernel, grid));
            [1, 1, 1]
        });
        self.slots.push(params);
        self.ops.push(Op::Dispatch { kernel, bind: bind.clone(), slot: self.slots.len() as u32 - 1, groups });
    }

    /// A 1D kernel of 64 threads per workgroup over n items (see `linear_id` in WGSL).
    pub(super) fn dispatch_linear(&mut self, kernel: Kernel, bind: &B, params: Params, n: usize) {
        self.dispatch(kernel, bind, params, [n.div_ceil(64), 1]);
    }

    /// The dispatched grids, in order.
    pub(super) fn grids(&self) -> Vec<(Kernel, [u32; 3])> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::Dispatch { kernel, groups, .. } => Some((*kernel, *groups)),
                Op::Copy { .. } => None,
            })
            .collect()
    }

    pub(super) fn copy(&mut self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64) {
        self.ops.push(Op::Copy { src: src.clone(), src_offset, dst: dst.clone(), dst_offset, size });
    }

    /// The same work with every bind handle replaced by `resolve(handle)`.
    pub(super) fn resolve<C>(self, resolve: impl Fn(&B) -> C) -> Recorder<C> {
        let ops = self
            .ops
            .into_iter()
            .map(|op| match op {
                Op::Dispatch { kernel, bind, slot, groups } => Op::Dispatch { kernel, bind: resolve(&bind), slot, groups },
                Op::Copy { src, src_offset, dst, dst_offset, size } => Op::Copy { src, src_offset, dst, dst_offset, size },
            })
            .collect();
        Recorder { slots: self.slots, ops, misfits: self.misfits }
    }
}

/// Per-layer regions of the activation buffers for `rows` rows: (a_off, z_off, acts_len, z_len),
/// in floats; acts_len includes the logits' width after the last layer.
pub(super) fn layer_offsets(spec: &MlpSpec, rows: usize) -> (Vec<u32>, Vec<u32>, usize, usize) {
    let (mut a_off, mut z_off) = (Vec::new(), Vec::new());
    let (mut a, mut z) = (0usize, 0usize);
    for l in spec.layers() {
        a_off.push(a as u32);
        z_off.push(z as u32);
        a += rows * l.in_dim;
        z += rows * l.out_dim;
    }
    (a_off, z_off, a + rows * spec.out_dim(), z)
}

/// The MLP's passes as dispatches over per-layer regions of the activation buffers: one place
/// for the engine, the landscape evaluator and the metrics objective.
pub(super) struct Passes {
    pub(super) spec: MlpSpec,
    pub(super) a_off: Vec<u32>,
    pub(super) z_off: Vec<u32>,
}

impl Passes {
    /// The passes for `rows` rows; also returns the activation and pre-activation lengths.
    pub(super) fn new(spec: MlpSpec, rows: usize) -> (Self, usize, usize) {
        let (a_off, z_off, acts_len, z_len) = layer_offsets(&spec, rows);
        (Self { spec, a_off, z_off }, acts_len, z_len)
    }

    pub(super) fn layer(&self, l: usize, rows: usize) -> Params {
        let layer = self.spec.layers()[l];
        Params {
            rows: rows as u32,
            in_dim: layer.in_dim as u32,
            out_dim: layer.out_dim as u32,
            group: rows.max(1) as u32,
            a_off: self.a_off[l],
            z_off: self.z_off[l],
            w_off: layer.w_offset as u32,
            b_off: layer.b_offset as u32,
            ..Default::default()
        }
    }

    /// Forward through every layer; with copy_stride > 0 row r reads copy r / group.
    pub(super) fn forward<B: Clone>(&self, r: &mut Recorder<B>, bind: &B, rows: usize, group: usize, copy_stride: u32, flags: u32) {
        let n = self.spec.n_layers();
        for l in 0..n {
            let last = l + 1 == n;
            let p = Params {
                group: group as u32,
                copy_stride,
                act: if last { ACT_NONE } else { self.spec.activation.shader_id() },
                off0: if last { 0 } else { self.a_off[l + 1] },
                flags,
                ..self.layer(l, rows)
            };
            r.dispatch(Kernel::Forward, bind, p, forward_groups(self.spec.layers()[l].out_dim, rows));
        }
    }

    /// Deltas of every layer from the loss deltas down to layer 0.
    pub(super) fn backward<B: Clone>(&self, r: &mut Recorder<B>, bind: &B, rows: usize, group: usize, copy_stride: u32, flags: u32) {
        for l in (1..self.spec.n_layers()).rev() {
            let p = Params { group: group as u32, copy_stride, act: self.spec.activation.shader_id(), off0: self.z_off[l - 1], flags, ..self.layer(l, rows) };
            r.dispatch(Kernel::BackwardInput, bind, p, backward_groups(self.spec.layers()[l].in_dim, rows));
        }
    }

    /// Softmax cross-entropy of the last layer: losses/preds at `out_off`.
    pub(super) fn loss<B: Clone>(&self, r: &mut Recorder<B>, bind: &B, rows: usize, out_off: usize) {
        let l = self.spec.n_layers() - 1;
        let p = Params { out_dim: self.spec.out_dim() as u32, off0: out_off as u32, ..self.layer(l, rows) };
        r.dispatch_linear(Kernel::SoftmaxXent, bind, p, rows);
    }
}

pub(super) fn storage(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

pub(super) fn storage_init<T: bytemuck::Pod>(device: &wgpu::Device, queue: &wgpu::Queue, label: &str, data: &[T]) -> wgpu::Buffer {
    let buf = storage(device, label, std::mem::size_of_val(data) as u64);
    if !data.is_empty() {
        queue.write_buffer(&buf, 0, bytemuck::cast_slice(data));
    }
    buf
}

pub(super) fn bind(device: &wgpu::Device, layout: &wgpu::BindGroupLayout, label: &str, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> =
        buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() }).collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout, entries: &entries })
}

/// The per-dispatch uniform buffer (256-byte slots) and its bind group; grows on demand.
pub(super) struct Uniforms {
    buffer: wgpu::Buffer,
    bind: wgpu::BindGroup,
    slots: u64,
}

impl Uniforms {
    pub(super) fn new(ctx: &GpuContext, slots: u64) -> Self {
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params uniform"),
            size: slots * SLOT,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("params uniform bind group"),
            layout: &ctx.kernels().uniform_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                }),
            }],
        });
        Self { buffer, bind, slots }
    }
}

/// Writes the uniforms, encodes every op (consecutive dispatches share one compute pass) and
/// submits. Never waits. Work with a grid that does not fit is not submitted: the context
/// reports it as a device error instead.
pub(super) fn encode_and_submit(ctx: &GpuContext, uniforms: &mut Uniforms, rec: Recorder) {
    ctx.scoped(|| encode(ctx, uniforms, rec))
}

fn encode(ctx: &GpuContext, uniforms: &mut Uniforms, rec: Recorder) {
    if let Some((kernel, grid)) = rec.misfits.first() {
        ctx.report_error(format!("{kernel:?} needs {grid:?} workgroups, beyond {MAX_WORKGROUPS_PER_DIM}² × {MAX_WORKGROUPS_PER_DIM}"));
        return;
    }
    let needed = rec.slots.len() as u64;
    if needed > uniforms.slots {
        *uniforms = Uniforms::new(ctx, needed.next_power_of_two());
    }
    let mut bytes = vec![0u8; (needed * SLOT) as usize];
    for (i, p) in rec.slots.iter().enumerate() {
        let at = i * SLOT as usize;
        bytes[at..at + std::mem::size_of::<Params>()].copy_from_slice(bytemuck::bytes_of(p));
    }
    if !bytes.is_empty() {
        ctx.queue.write_buffer(&uniforms.buffer, 0, &bytes);
    }
    let kernels = ctx.kernels();
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("samlab work") });
    let mut i = 0;
    while i < rec.ops.len() {
        if let Op::Copy { src, src_offset, dst, dst_offset, size } = &rec.ops[i] {
            encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
            i += 1;
            continue;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("samlab compute"), timestamp_writes: None });
        while let Some(Op::Dispatch { kernel, bind, slot, groups }) = rec.ops.get(i) {
            pass.set_pipeline(kernels.pipeline(*kernel));
            pass.set_bind_group(0, bind, &[]);
            pass.set_bind_group(1, &uniforms.bind, &[(*slot as u64 * SLOT) as u32]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
            i += 1;
        }
    }
    ctx.queue.submit([encoder.finish()]);
}
