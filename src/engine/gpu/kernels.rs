//! The WGSL kernel families (shaders/*.wgsl), their bind-group layouts and compute pipelines.
//! Each family has one layout holding all of its storage buffers (≤ 8, WebGPU's default) in
//! group 0, and every kernel shares the per-dispatch uniform `Params` in group 1.

use bytemuck::{Pod, Zeroable};
use std::collections::HashMap;

/// The per-dispatch uniform, mirrored from `shaders/common.wgsl` (field meanings there).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq)]
pub struct Params {
    pub rows: u32,
    pub in_dim: u32,
    pub out_dim: u32,
    pub group: u32,
    pub a_off: u32,
    pub z_off: u32,
    pub w_off: u32,
    pub b_off: u32,
    pub copy_stride: u32,
    pub act: u32,
    pub n: u32,
    pub flags: u32,
    pub off0: u32,
    pub off1: u32,
    pub key: u32,
    pub pad: u32,
    pub f: [f32; 8],
}

/// Bytes between two dispatches' uniforms (WebGPU's min_uniform_buffer_offset_alignment).
pub const SLOT: u64 = 256;

pub const ACT_NONE: u32 = 255;

pub const COMMON_WGSL: &str = include_str!("../../../shaders/common.wgsl");

/// A kernel family: one WGSL file, one storage layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Gather,
    Dense,
    Loss,
    Reduce,
    Optim,
    Rwsam,
}

/// Storage access of a binding, as declared in the WGSL file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}
use Access::{Read as R, ReadWrite as RW};

impl Family {
    pub const ALL: [Family; 6] = [Family::Gather, Family::Dense, Family::Loss, Family::Reduce, Family::Optim, Family::Rwsam];

    pub fn source(self) -> &'static str {
        match self {
            Family::Gather => include_str!("../../../shaders/gather.wgsl"),
            Family::Dense => include_str!("../../../shaders/dense.wgsl"),
            Family::Loss => include_str!("../../../shaders/loss.wgsl"),
            Family::Reduce => include_str!("../../../shaders/reduce.wgsl"),
            Family::Optim => include_str!("../../../shaders/optim.wgsl"),
            Family::Rwsam => include_str!("../../../shaders/rwsam.wgsl"),
        }
    }

    /// The module as compiled: common.wgsl, then the family's file.
    pub fn module_source(self) -> String {
        format!("{COMMON_WGSL}\n{}", self.source())
    }

    /// Group-0 bindings in order, with their access (must match the WGSL declarations; a test
    /// checks it with naga).
    pub fn bindings(self) -> &'static [Access] {
        match self {
            // data_x, data_y, indices, acts, labels
            Family::Gather => &[R, R, R, RW, RW],
            // weights, acts, pre, deltas, scale, grads, base_pre
            Family::Dense => &[R, RW, RW, RW, R, RW, R],
            // pre, labels, deltas, losses, preds, stats
            Family::Loss => &[R, R, RW, RW, RW, RW],
            // vec, params, norms, stats
            Family::Reduce => &[R, R, RW, RW],
            // params, velocity, grad, ugrad, norms, wcopies
            Family::Optim => &[RW, RW, R, R, R, RW],
            // acts, deltas, losses, scores, scale, stats
            Family::Rwsam => &[R, R, R, RW, RW, RW],
        }
    }

    pub fn entry_points(self) -> &'static [&'static str] {
        match self {
            Family::Gather => &["gather"],
            Family::Dense => &["forward", "backward_input", "weight_grad"],
            Family::Loss => &["softmax_xent", "batch_stats", "group_stats"],
            Family::Reduce => &["sq_norm_groups", "step_stats"],
            Family::Optim => &["perturb", "update", "fd_point"],
            Family::Rwsam => &["sample_sq_norms", "fd_scores", "gibbs"],
        }
    }
}

/// Every kernel, by family and entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gather,
    Forward,
    BackwardInput,
    WeightGrad,
    SoftmaxXent,
    BatchStats,
    GroupStats,
    SqNormGroups,
    StepStats,
    Perturb,
    Update,
    FdPoint,
    SampleSqNorms,
    FdScores,
    Gibbs,
}

impl Kernel {
    pub const ALL: [Kernel; 15] = [
        Kernel::Gather,
        Kernel::Forward,
        Kernel::BackwardInput,
        Kernel::WeightGrad,
        Kernel::SoftmaxXent,
        Kernel::BatchStats,
        Kernel::GroupStats,
        Kernel::SqNormGroups,
        Kernel::StepStats,
        Kernel::Perturb,
        Kernel::Update,
        Kernel::FdPoint,
        Kernel::SampleSqNorms,
        Kernel::FdScores,
        Kernel::Gibbs,
    ];

    pub fn family(self) -> Family {
        match self {
            Kernel::Gather => Family::Gather,
            Kernel::Forward | Kernel::BackwardInput | Kernel::WeightGrad => Family::Dense,
            Kernel::SoftmaxXent | Kernel::BatchStats | Kernel::GroupStats => Family::Loss,
            Kernel::SqNormGroups | Kernel::StepStats => Family::Reduce,
            Kernel::Perturb | Kernel::Update | Kernel::FdPoint => Family::Optim,
            Kernel::SampleSqNorms | Kernel::FdScores | Kernel::Gibbs => Family::Rwsam,
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            Kernel::Gather => "gather",
            Kernel::Forward => "forward",
            Kernel::BackwardInput => "backward_input",
            Kernel::WeightGrad => "weight_grad",
            Kernel::SoftmaxXent => "softmax_xent",
            Kernel::BatchStats => "batch_stats",
            Kernel::GroupStats => "group_stats",
            Kernel::SqNormGroups => "sq_norm_groups",
            Kernel::StepStats => "step_stats",
            Kernel::Perturb => "perturb",
            Kernel::Update => "update",
            Kernel::FdPoint => "fd_point",
            Kernel::SampleSqNorms => "sample_sq_norms",
            Kernel::FdScores => "fd_scores",
            Kernel::Gibbs => "gibbs",
        }
    }
}

// Logical grids [x, y] of workgroups; `record::tile_grid` turns them into dispatches.

/// Workgroups of `forward` (4×4 outputs per thread, 16×16 threads): [⌈out/64⌉, ⌈rows/64⌉].
pub fn forward_groups(out_dim: usize, rows: usize) -> [usize; 2] {
    [out_dim.div_ceil(64), rows.div_ceil(64)]
}

/// Workgroups of `backward_input`: [⌈in/64⌉, ⌈rows/64⌉].
pub fn backward_groups(in_dim: usize, rows: usize) -> [usize; 2] {
    [in_dim.div_ceil(64), rows.div_ceil(64)]
}

/// Workgroups of `weight_grad`: 4×4 (o, i) blocks over the input and the bias column, 64 per
/// workgroup, for `groups` output groups.
pub fn weight_grad_groups(out_dim: usize, in_dim: usize, groups: usize) -> [usize; 2] {
    [(out_dim.div_ceil(4) * (in_dim + 1).div_ceil(4)).div_ceil(64), groups]
}

/// Layouts and pipelines on one device, shared by every engine on it.
pub struct Kernels {
    pub layouts: HashMap<Family, wgpu::BindGroupLayout>,
    pub uniform_layout: wgpu::BindGroupLayout,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
}

impl Kernels {
    pub fn new(device: &wgpu::Device) -> Self {
        let uniform_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("samlab params uniform layout"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64),
                },
                count: None,
            }],
        });
        let mut layouts = HashMap::new();
        let mut pipelines = HashMap::new();
        for family in Family::ALL {
            let entries: Vec<wgpu::BindGroupLayoutEntry> = family
                .bindings()
                .iter()
                .enumerate()
                .map(|(i, access)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: *access == Access::Read },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let layout = device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&format!("samlab {family:?} storage layout")), entries: &entries });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&format!("samlab {family:?} pipeline layout")),
                bind_group_layouts: &[Some(&layout), Some(&uniform_layout)],
                immediate_size: 0,
            });
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&format!("samlab {family:?} shaders")),
                source: wgpu::ShaderSource::Wgsl(family.module_source().into()),
            });
            for kernel in Kernel::ALL.into_iter().filter(|k| k.family() == family) {
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&format!("samlab {} pipeline", kernel.entry_point())),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(kernel.entry_point()),
                    compilation_options: Default::default(),
                    cache: None,
                });
                pipelines.insert(kernel, pipeline);
            }
            layouts.insert(family, layout);
        }
        Self { layouts, uniform_layout, pipelines }
    }

    pub fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines[&kernel]
    }

    pub fn layout(&self, family: Family) -> &wgpu::BindGroupLayout {
        &self.layouts[&family]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(family: Family) -> naga::Module {
        naga::front::wgsl::parse_str(&family.module_source()).unwrap_or_else(|e| panic!("{family:?}: {}", e.emit_to_string(&family.module_source())))
    }

    #[test]
    fn every_shader_parses_and_validates() {
        for family in Family::ALL {
            let module = parse(family);
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
                .validate(&module)
                .unwrap_or_else(|e| panic!("{family:?}: {}", e.emit_to_string(&family.module_source())));
            let names: Vec<&str> = module.entry_points.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, family.entry_points(), "{family:?} entry points");
        }
    }

    #[test]
    fn wgsl_bindings_match_the_rust_layouts() {
        for family in Family::ALL {
            let module = parse(family);
            let mut found = Vec::new();
            for (_, var) in module.global_variables.iter() {
                let Some(binding) = &var.binding else { continue };
                if binding.group != 0 {
                    continue;
                }
                let access = match var.space {
                    naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => Access::ReadWrite,
                    naga::AddressSpace::Storage { .. } => Access::Read,
                    other => panic!("{family:?}: unexpected address space {other:?}"),
                };
                found.push((binding.binding, access));
            }
            found.sort_by_key(|(b, _)| *b);
            let want: Vec<(u32, Access)> = family.bindings().iter().enumerate().map(|(i, a)| (i as u32, *a)).collect();
            assert_eq!(found, want, "{family:?}");
            assert!(found.len() <= 8, "{family:?} exceeds WebGPU's 8 storage buffers per stage");
        }
    }

    #[test]
    fn params_struct_matches_its_wgsl_size() {
        let module = parse(Family::Gather);
        let handle = module.types.iter().find(|(_, t)| t.name.as_deref() == Some("Params")).expect("Params in common.wgsl").0;
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        assert_eq!(layouter[handle].size as usize, std::mem::size_of::<Params>());
        assert!(std::mem::size_of::<Params>() as u64 <= SLOT);
    }
}
