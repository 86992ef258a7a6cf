//! The browser entry point: finds the canvas of web/index.html and starts the same app as the
//! desktop (eframe's wgpu renderer: WebGPU where the browser has it, WebGL2 otherwise).

use crate::app::SamLabApp;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Runs when the module is instantiated (`init()` in index.html).
#[wasm_bindgen(start)]
pub fn start() {
    eframe::WebLogger::init(log::LevelFilter::Info).ok();
    wasm_bindgen_futures::spawn_local(async {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            log::error!("SAM lab: no document");
            return;
        };
        let Some(canvas) = document.get_element_by_id(crate::platform::CANVAS_ID).and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok()) else {
            log::error!("SAM lab: no <canvas id=\"{}\"> in the page", crate::platform::CANVAS_ID);
            return;
        };
        let runner = eframe::WebRunner::new();
        let started = runner.start(canvas, eframe::WebOptions::default(), Box::new(|cc| Ok(Box::new(SamLabApp::new(cc))))).await;
        if let Some(loading) = document.get_element_by_id("loading") {
            match started {
                Ok(()) => loading.remove(),
                Err(e) => {
                    let msg = format!("SAM lab could not start: {e:?}");
                    log::error!("{msg}");
                    loading.set_text_content(Some(&msg));
                }
            }
        }
    });
}
