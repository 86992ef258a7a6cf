//! The wgpu device the GPU engine computes on: requested by itself (CLI, tests) or taken from the
//! app's renderer (eframe's wgpu render state, natively and in the browser). Device errors
//! (validation, out-of-memory, device lost) are captured here and handed to the engines, which
//! return them from `poll` as `Error::Gpu`: never a panic.

use super::kernels::{Family, Kernels, Params, SLOT};
use super::record::MAX_WORKGROUPS_PER_DIM;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex, OnceLock};

/// The limits SAM lab's kernels rely on, as (name, what `l` has, what they need, whether more is
/// better): the storage buffers of the largest family (dense.wgsl binds 7), the 256-thread and
/// 16×16 workgroups, the 65535 workgroups per dimension that `tile_grid` assumes, workgroup
/// memory for the 256-wide reduction trees, the two bind groups (storage, per-dispatch uniform)
/// and the uniform's 256-byte dynamic-offset slots.
fn kernel_needs(l: &wgpu::Limits) -> [(&'static str, u64, u64, bool); 10] {
    let storage = Family::ALL.iter().map(|f| f.bindings().len()).max().unwrap_or(0) as u64;
    [
        ("max_storage_buffers_per_shader_stage", l.max_storage_buffers_per_shader_stage as u64, storage, true),
        ("max_compute_invocations_per_workgroup", l.max_compute_invocations_per_workgroup as u64, 256, true),
        ("max_compute_workgroup_size_x", l.max_compute_workgroup_size_x as u64, 256, true),
        ("max_compute_workgroup_size_y", l.max_compute_workgroup_size_y as u64, 16, true),
        ("max_compute_workgroups_per_dimension", l.max_compute_workgroups_per_dimension as u64, MAX_WORKGROUPS_PER_DIM as u64, true),
        ("max_compute_workgroup_storage_size", l.max_compute_workgroup_storage_size as u64, 4096, true),
        ("max_bind_groups", l.max_bind_groups as u64, 2, true),
        ("max_dynamic_uniform_buffers_per_pipeline_layout", l.max_dynamic_uniform_buffers_per_pipeline_layout as u64, 1, true),
        ("max_uniform_buffer_binding_size", l.max_uniform_buffer_binding_size, std::mem::size_of::<Params>() as u64, true),
        ("min_uniform_buffer_offset_alignment", l.min_uniform_buffer_offset_alignment as u64, SLOT, false),
    ]
}

/// Whether a device with `limits` (e.g. the app renderer's) can run the kernels; the refusal
/// names every limit that falls short, with the device's value and the kernels' need.
pub fn check_device_limits(name: &str, limits: &wgpu::Limits) -> Result<()> {
    let short: Vec<String> = kernel_needs(limits)
        .iter()
        .filter(|(_, have, need, more)| if *more { have < need } else { have > need })
        .map(|(what, have, need, more)| format!("{what} = {have} (SAM lab's kernels need {} {need})", if *more { "at least" } else { "at most" }))
        .collect();
    if short.is_empty() { Ok(()) } else { Err(Error::Gpu(format!("{name} allows {}; use the CPU engine", short.join(", ")))) }
}

/// The limits to request from an adapter: WebGPU's defaults, except the storage buffer sizes,
/// which take what the adapter offers (m-SAM's weight copies are large). An adapter below the
/// defaults is refused here, with the limits named, instead of failing `request_device`.
pub fn check_adapter_limits(name: &str, offered: &wgpu::Limits) -> Result<wgpu::Limits> {
    let wanted = wgpu::Limits {
        max_storage_buffer_binding_size: offered.max_storage_buffer_binding_size,
        max_buffer_size: offered.max_buffer_size,
        ..wgpu::Limits::default()
    };
    let mut short = Vec::new();
    wanted.check_limits_with_fail_fn(offered, false, |what, want, have| short.push(format!("{what} = {have} (WebGPU's default: {want})")));
    if short.is_empty() {
        Ok(wanted)
    } else {
        Err(Error::Gpu(format!("{name} offers less than WebGPU's default limits: {}; SAM lab's GPU engine needs them: use the CPU engine", short.join(", "))))
    }
}

#[derive(Clone)]
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    errors: Arc<Mutex<Vec<String>>>,
    kernels: Arc<OnceLock<Kernels>>,
}

impl GpuContext {
    /// Wraps an existing device (e.g. the app renderer's) after checking it can run compute.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo, downlevel: &wgpu::DownlevelCapabilities) -> Result<Self> {
        if !downlevel.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
            return Err(Error::Gpu(format!("{} ({:?}) has no compute shaders", info.name, info.backend)));
        }
        check_device_limits(&info.name, &device.limits())?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("wgpu: {e}");
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut v) = sink.lock() {
                v.push(format!("device lost ({reason:?}): {msg}"));
            }
        });
        Ok(Self { device, queue, info, errors, kernels: Arc::default() })
    }

    /// Requests the best adapter with compute, with the limits of `check_adapter_limits`.
    pub async fn request() -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        // Compute needs a modern API: Vulkan, Metal, DX12 or WebGPU. GL has no compute on the
        // web and only noise to add natively; WGPU_BACKEND still overrides.
        desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("no GPU adapter: {e}")))?;
        let limits = check_adapter_limits(&adapter.get_info().name, &adapter.limits())?;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("samlab compute device"),
                required_features: wgpu::Features::empty(),
                required_limits: limits,
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", adapter.get_info().name)))?;
        Self::from_device(device, queue, adapter.get_info(), &adapter.get_downlevel_capabilities())
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn request_blocking() -> Result<Self> {
        pollster::block_on(Self::request())
    }

    /// "llvmpipe (LLVM 15.0.7, 256 bits) (Vulkan, Cpu)".
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
    }

    /// A software rasteriser (lavapipe, SwiftShader, WARP): correct but slower than the CPU engine.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn kernels(&self) -> &Kernels {
        self.kernels.get_or_init(|| Kernels::new(&self.device))
    }

    /// Records an error found before it reached the device (returned by `take_error`).
    pub(crate) fn report_error(&self, e: String) {
        log::error!("samlab GPU: {e}");
        if let Ok(mut v) = self.errors.lock() {
            v.push(e);
        }
    }

    /// The first device error since the last call, if any.
    pub fn take_error(&self) -> Option<String> {
        let mut v = self.errors.lock().ok()?;
        if v.is_empty() { None } else { Some(v.remove(0)) }
    }
}
