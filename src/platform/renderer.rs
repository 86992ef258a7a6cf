//! The renderer's adapter as eframe reports it, and the engine factory it allows: the GPU
//! engine on the renderer's device where it can compute, the CPU engine otherwise (with why).

use crate::engine::EngineChoice;

/// Why the CPU engine trains in a browser without WebGPU.
const NO_WEBGPU: &str = "no WebGPU in this browser (renderer WebGL2, no compute shaders): CPU fallback";

/// The renderer's adapter, as eframe reports it (read through eframe's render state: the app
/// names no wgpu type; only `engine::gpu` does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RendererInfo {
    pub adapter: String,
    /// "WebGPU", "WebGL2", "Vulkan", "Metal", …
    pub backend: String,
}

impl RendererInfo {
    /// The browser's WebGL2 renderer (eframe's glow painter, where there is no WebGPU): no wgpu
    /// device, so the CPU engine.
    pub fn webgl2() -> (Self, EngineChoice) {
        (Self { adapter: "glow painter".into(), backend: "WebGL2".into() }, EngineChoice::cpu(NO_WEBGPU))
    }

    /// `platform` is `Platform::name()`: a GL backend in the browser is WebGL2.
    pub fn from_render_state(rs: &eframe::egui_wgpu::RenderState, platform: &str) -> Self {
        let info = rs.adapter.get_info();
        let backend = match format!("{:?}", info.backend).as_str() {
            "BrowserWebGpu" => "WebGPU".to_string(),
            "Gl" if platform == "browser" => "WebGL2".to_string(),
            b => b.to_string(),
        };
        // Browsers often hide the adapter's name (WebGPU privacy): fall back to what they tell.
        let kind = match format!("{:?}", info.device_type).as_str() {
            "Cpu" => "software",
            "DiscreteGpu" => "discrete GPU",
            "IntegratedGpu" => "integrated GPU",
            "VirtualGpu" => "virtual GPU",
            _ => "unknown",
        };
        let adapter = [&info.name, &info.driver, &info.driver_info]
            .into_iter()
            .find(|s| !s.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| format!("{kind} adapter (name hidden)"));
        Self { adapter, backend }
    }

    pub fn describe(&self) -> String {
        format!("{} ({})", self.adapter, self.backend)
    }

    /// The engine factory on the renderer's device: the GPU engine where the device can
    /// compute (`GpuContext::from_device` checks), the CPU engine otherwise, with the reason.
    pub fn engine_choice(rs: Option<&eframe::egui_wgpu::RenderState>, platform: &str) -> EngineChoice {
        let Some(rs) = rs else { return EngineChoice::cpu("no GPU renderer") };
        let r = Self::from_render_state(rs, platform);
        let caps = rs.adapter.get_downlevel_capabilities();
        match crate::engine::gpu::GpuContext::from_device(rs.device.clone(), rs.queue.clone(), rs.adapter.get_info(), &caps) {
            Ok(ctx) => EngineChoice::with_gpu(ctx),
            Err(_) if r.backend == "WebGL2" => EngineChoice::cpu(NO_WEBGPU),
            Err(e) => EngineChoice::cpu(format!("{e}: CPU fallback")),
        }
    }
}
