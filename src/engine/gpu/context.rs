//! The wgpu device the GPU engine computes on: requested by itself (CLI, tests) or taken from the
//! app's renderer (eframe's wgpu render state, natively and in the browser). Device errors
//! (validation, out-of-memory, device lost) are captured here and handed to the engines, which
//! return them from `poll` as `Error::Gpu`: never a panic.

use super::kernels::Kernels;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex, OnceLock};

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
        let limits = device.limits();
        if limits.max_storage_buffers_per_shader_stage < 6 || limits.max_compute_invocations_per_workgroup < 256 {
            return Err(Error::Gpu(format!(
                "{} allows {} storage buffers per stage and {} invocations per workgroup; SAM lab's kernels need 6 and 256",
                info.name, limits.max_storage_buffers_per_shader_stage, limits.max_compute_invocations_per_workgroup
            )));
        }
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

    /// Requests the best adapter with compute. WebGPU's default limits, except the storage
    /// buffer sizes, which take what the adapter offers (m-SAM's weight copies are large).
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
        let offered = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: offered.max_storage_buffer_binding_size,
            max_buffer_size: offered.max_buffer_size,
            ..wgpu::Limits::default()
        };
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
