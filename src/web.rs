//! The browser entry points: `start_app` finds the canvas of web/index.html and starts the same
//! app as the desktop (eframe's wgpu renderer: WebGPU where the browser has it, WebGL2
//! otherwise); `bench_rows` / `bench_row` time the CPU engine for web/bench.html through the
//! same timing core as `samlab bench` (`crate::bench`). The page loads the module itself (with
//! a progress bar) and calls these: nothing starts on instantiation.

use crate::app::SamLabApp;
use crate::platform::RendererInfo;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Starts SAM lab on `<canvas id="samlab_canvas">`; removes `#loading` once it runs, or
/// writes why it could not start there. `webgpu`: the page found a WebGPU adapter (wgpu
/// renders, and the GPU engine may compute on its device); otherwise WebGL2 renders (eframe's
/// glow painter) and the CPU engine trains.
#[wasm_bindgen]
pub fn start_app(webgpu: bool) {
    eframe::WebLogger::init(log::LevelFilter::Info).ok();
    wasm_bindgen_futures::spawn_local(async move {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            log::error!("SAM lab: no document");
            return;
        };
        let Some(canvas) = document.get_element_by_id(crate::platform::CANVAS_ID).and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok()) else {
            log::error!("SAM lab: no <canvas id=\"{}\"> in the page", crate::platform::CANVAS_ID);
            return;
        };
        let runner = eframe::WebRunner::new();
        let options = eframe::WebOptions { renderer: if webgpu { eframe::Renderer::Wgpu } else { eframe::Renderer::Glow }, ..Default::default() };
        let started = runner
            .start(
                canvas,
                options,
                Box::new(move |cc| {
                    Ok(Box::new(if cc.wgpu_render_state.is_some() {
                        SamLabApp::new(cc)
                    } else {
                        let (renderer, engine) = RendererInfo::webgl2();
                        SamLabApp::with_renderer(cc, Some(renderer), engine)
                    }))
                }),
            )
            .await;
        if let Some(loading) = document.get_element_by_id("loading") {
            match started {
                Ok(()) => loading.remove(),
                Err(e) => {
                    let msg = format!("SAM lab could not start: {e:?}");
                    log::error!("{msg}");
                    loading.set_text_content(Some(&msg));
                    let _ = loading.set_attribute("data-error", &msg);
                }
            }
        }
    });
}

/// Hands over `mnist_5k.csv.gz`, which the page downloads after the app starts (the web build
/// leaves it out of the module).
#[wasm_bindgen]
pub fn provide_mnist5k(bytes: Vec<u8>) {
    crate::data::provide_mnist5k(bytes);
}

/// How many rows the bench page times (`bench_row(0..n)`).
#[wasm_bindgen]
pub fn bench_rows() -> usize {
    crate::bench::page_suite(&crate::bench::digits_base()).len()
}

/// Row `i` of the CPU bench (digits 64-128-128-10, batch 128): median ms per step over `steps`
/// timed steps, as JSON `{"optimizer", "median_ms", "engine"}`. Blocks while it runs (the
/// page draws nothing meanwhile).
#[wasm_bindgen]
pub fn bench_row(i: usize, steps: usize) -> Result<String, JsValue> {
    let suite = crate::bench::page_suite(&crate::bench::digits_base());
    let cfg = suite.get(i).ok_or_else(|| JsValue::from_str(&format!("no bench row {i} (0..{})", suite.len())))?;
    let row = crate::bench::time_cpu(cfg, steps).map_err(|e| JsValue::from_str(&e.to_string()))?;
    serde_json::to_string(&row).map_err(|e| JsValue::from_str(&e.to_string()))
}
