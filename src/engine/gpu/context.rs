//! The wgpu device the GPU engine computes on: requested by itself (CLI, tests) or taken from the
//! app's renderer (eframe's wgpu render state, natively and in the browser). Device errors
//! (validation, out-of-memory, device lost) are captured here and handed to the engines, which
//! return them from `poll` as `Error::Gpu`: never a panic. On its own device the context installs
//! the device's handlers; on the renderer's it leaves them to the renderer and wraps its own
//! work in error scopes (`scoped`).

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

/// The result of a popped error scope, resolved later (at once natively, by the browser on the
/// web).
#[cfg(not(target_arch = "wasm32"))]
type ScopeResult = std::pin::Pin<Box<dyn std::future::Future<Output = Option<wgpu::Error>> + Send>>;
#[cfg(target_arch = "wasm32")]
type ScopeResult = std::pin::Pin<Box<dyn std::future::Future<Output = Option<wgpu::Error>>>>;

#[derive(Clone)]
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    errors: Arc<Mutex<Vec<String>>>,
    /// Someone else's device (the renderer's): its uncaptured-error and device-lost handlers
    /// stay theirs, and the engine's own work runs inside error scopes (`scoped`).
    shared: bool,
    scopes: Arc<Mutex<Vec<ScopeResult>>>,
    kernels: Arc<OnceLock<Kernels>>,
}

impl GpuContext {
    /// Wraps an existing device (e.g. the app renderer's) after checking it can run compute.
    /// The device's error handlers are left alone: the engine's errors are caught by error
    /// scopes around its own work, and everything else still reaches the owner's handler.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo, downlevel: &wgpu::DownlevelCapabilities) -> Result<Self> {
        Self::wrap(device, queue, info, downlevel, true)
    }

    fn wrap(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo, downlevel: &wgpu::DownlevelCapabilities, shared: bool) -> Result<Self> {
        if !downlevel.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
            return Err(Error::Gpu(format!("{} ({:?}) has no compute shaders", info.name, info.backend)));
        }
        check_device_limits(&info.name, &device.limits())?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let ctx = Self { device, queue, info, errors, shared, scopes: Arc::default(), kernels: Arc::default() };
        if shared {
            return Ok(ctx);
        }
        let (device, errors) = (&ctx.device, &ctx.errors);
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
                let why = match reason {
                    wgpu::DeviceLostReason::Destroyed => "the device was destroyed (driver reset, or the page or app closed it)",
                    _ => "the driver or the browser reset the device",
                };
                let detail = msg.trim();
                v.push(if detail.is_empty() { format!("device lost: {why}") } else { format!("device lost: {why} ({detail})") });
            }
        });
        Ok(ctx)
    }

    /// Runs `f`, the engine's own device work; on a shared device inside error scopes
    /// (validation, out of memory, internal) whose errors `take_error` returns, so that they
    /// neither reach nor replace the owner's handler. On its own device the handlers installed
    /// at `request` catch them anyway.
    pub fn scoped<R>(&self, f: impl FnOnce() -> R) -> R {
        if !self.shared {
            return f();
        }
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let r = f();
        let popped: [ScopeResult; 3] = [Box::pin(validation.pop()), Box::pin(oom.pop()), Box::pin(internal.pop())];
        if let Ok(mut v) = self.scopes.lock() {
            v.extend(popped);
        }
        r
    }

    /// Moves the errors of resolved scopes to the error list; never waits.
    fn collect_scopes(&self) {
        let Ok(mut scopes) = self.scopes.lock() else { return };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        scopes.retain_mut(|s| match s.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Some(e)) => {
                log::error!("wgpu (samlab engine): {e}");
                if let Ok(mut v) = self.errors.lock() {
                    v.push(e.to_string());
                }
                false
            }
            std::task::Poll::Ready(None) => false,
            std::task::Poll::Pending => true,
        });
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
        Self::wrap(device, queue, adapter.get_info(), &adapter.get_downlevel_capabilities(), false)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn request_blocking() -> Result<Self> {
        pollster::block_on(Self::request())
    }

    /// The device of the GPU tests, opened once per test binary; `None` (the test skips) without
    /// an adapter. A skip is never silent: it panics when `SAMLAB_REQUIRE_GPU=1` (CI), prints why,
    /// and leaves a file named after `test` in `$SAMLAB_SKIP_DIR` when that is set, which
    /// `cargo xtask test` counts and reports.
    #[cfg(not(target_arch = "wasm32"))]
    #[doc(hidden)]
    pub fn for_tests(test: &str) -> Option<Self> {
        static CTX: OnceLock<std::result::Result<GpuContext, String>> = OnceLock::new();
        match CTX.get_or_init(|| Self::request_blocking().map_err(|e| e.to_string())) {
            Ok(ctx) => Some(ctx.clone()),
            Err(e) => {
                if std::env::var("SAMLAB_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                    panic!("SAMLAB_REQUIRE_GPU=1 but no adapter for {test}: {e}");
                }
                eprintln!("skipped {test}: no GPU adapter ({e})");
                if let Ok(dir) = std::env::var("SAMLAB_SKIP_DIR") {
                    let _ = std::fs::create_dir_all(&dir);
                    let _ = std::fs::write(std::path::Path::new(&dir).join(test.replace(['/', ':', ' '], "_")), e);
                }
                None
            }
        }
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
        self.kernels.get_or_init(|| self.scoped(|| Kernels::new(&self.device)))
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
        self.collect_scopes();
        let mut v = self.errors.lock().ok()?;
        if v.is_empty() { None } else { Some(v.remove(0)) }
    }
}
