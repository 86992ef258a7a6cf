//! The browser: downloads through a Blob and an anchor, files opened through a hidden file input
//! (read asynchronously with `Blob.text()`, delivered to the inbox on a later frame), the URL
//! hash through `location.hash` and `history.replaceState`, and the status on the canvas's
//! `data-*` attributes.

use super::{Inbox, IncomingFile, MAX_OPEN_BYTES, Platform, StatusReport, deliver};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// The id of the canvas in web/index.html.
pub const CANVAS_ID: &str = "samlab_canvas";
/// The id of the hidden file input the app opens files through (automation sets files on it).
pub const FILE_INPUT_ID: &str = "samlab_file_input";

thread_local! {
    /// The app's inbox (the page has one app): dropped files go there too.
    static INBOX: std::cell::RefCell<Option<Inbox>> = const { std::cell::RefCell::new(None) };
}

/// Reads the input's chosen file into the inbox, then clears the input (the same file again
/// fires another change).
fn on_file_chosen(input: &web_sys::HtmlInputElement, inbox: &Inbox) {
    let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
    input.set_value("");
    let name = file.name();
    if file.size() > MAX_OPEN_BYTES as f64 {
        let message = format!("{name}: larger than the {} MiB the app opens", MAX_OPEN_BYTES >> 20);
        return deliver(inbox, IncomingFile { name, bytes: Err(message) });
    }
    let inbox = inbox.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let bytes = match wasm_bindgen_futures::JsFuture::from(file.text()).await {
            Ok(text) => text.as_string().map(String::into_bytes).ok_or_else(|| format!("{name}: not text")),
            Err(e) => Err(format!("{name}: {}", js_err(e))),
        };
        deliver(&inbox, IncomingFile { name, bytes });
    });
}

/// The performance timeline's names for SAM lab's work in a frame.
const FRAME: &str = "samlab-frame";
const FRAME_START: &str = "samlab-frame-start";

fn performance() -> Option<web_sys::Performance> {
    web_sys::window()?.performance()
}

#[derive(Default)]
pub struct WebPlatform;

fn js_err(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

impl Platform for WebPlatform {
    fn name(&self) -> &'static str {
        "browser"
    }

    fn save_file(&self, file_name: &str, bytes: &[u8], mime: &str) -> Result<String, String> {
        let window = web_sys::window().ok_or("no window")?;
        let document = window.document().ok_or("no document")?;
        let array = js_sys::Uint8Array::from(bytes);
        let parts = js_sys::Array::of1(&array);
        let options = web_sys::BlobPropertyBag::new();
        options.set_type(mime);
        let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(js_err)?;
        let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_err)?;
        let anchor: web_sys::HtmlAnchorElement = document.create_element("a").map_err(js_err)?.dyn_into().map_err(|_| "not an anchor")?;
        anchor.set_href(&url);
        anchor.set_download(file_name);
        anchor.click();
        web_sys::Url::revoke_object_url(&url).map_err(js_err)?;
        Ok(format!("downloaded {file_name}"))
    }

    fn attach_inbox(&self, inbox: Inbox) {
        INBOX.with(|i| *i.borrow_mut() = Some(inbox));
        let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
        if document.get_element_by_id(FILE_INPUT_ID).is_some() {
            return;
        }
        let Ok(input) = document.create_element("input").map(|e| e.unchecked_into::<web_sys::HtmlInputElement>()) else { return };
        input.set_type("file");
        input.set_id(FILE_INPUT_ID);
        input.set_accept(".csv,.json");
        let _ = input.set_attribute("style", "display:none");
        let target = input.clone();
        // The inbox is looked up when a file comes: an app built later on this page gets it.
        let on_change = Closure::<dyn FnMut()>::new(move || {
            if let Some(inbox) = INBOX.with(|i| i.borrow().clone()) {
                on_file_chosen(&target, &inbox);
            }
        });
        input.set_onchange(Some(on_change.as_ref().unchecked_ref()));
        // The input lives as long as the page: so does its handler.
        on_change.forget();
        if let Some(body) = document.body() {
            let _ = body.append_child(&input);
        }
    }

    fn receive_dropped(&self, file: egui::DroppedFileHandle) {
        let Some(inbox) = INBOX.with(|i| i.borrow().clone()) else { return };
        wasm_bindgen_futures::spawn_local(async move {
            let name = file.path().display().to_string();
            let bytes = match file.bytes_async().await {
                Ok(b) if b.len() as u64 > MAX_OPEN_BYTES => Err(format!("larger than the {} MiB the app opens", MAX_OPEN_BYTES >> 20)),
                other => other,
            };
            deliver(&inbox, IncomingFile { name, bytes });
        });
    }

    fn pick_file(&self, extensions: &[&str]) -> Result<(), String> {
        let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
        let input: web_sys::HtmlInputElement = document.get_element_by_id(FILE_INPUT_ID).ok_or("no file input")?.dyn_into().map_err(|_| "not an input")?;
        input.set_accept(&extensions.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(","));
        input.click();
        Ok(())
    }

    fn load_file(&self, _path: &str) -> Result<String, String> {
        Err("the browser reads no files: paste the JSON instead".into())
    }

    fn can_load_files(&self) -> bool {
        false
    }

    fn url_hash(&self) -> Option<String> {
        let hash = web_sys::window()?.location().hash().ok()?;
        // The hash is percent-encoded by some browsers; base64url never needs it.
        let decoded = js_sys::decode_uri_component(&hash).ok().and_then(|s| s.as_string()).unwrap_or(hash);
        Some(decoded.trim_start_matches('#').to_string())
    }

    fn set_url_hash(&self, hash: &str) {
        let Some(window) = web_sys::window() else { return };
        let current = window.location().hash().unwrap_or_default();
        if current.trim_start_matches('#') == hash {
            return;
        }
        if let Ok(history) = window.history() {
            let url = format!("#{hash}");
            if let Err(e) = history.replace_state_with_url(&JsValue::NULL, "", Some(&url)) {
                log::warn!("cannot update the URL: {}", js_err(e));
            }
        }
    }

    fn page_address(&self) -> Option<String> {
        let href = web_sys::window()?.location().href().ok()?;
        Some(href.split('#').next().unwrap_or_default().to_string())
    }

    fn frame_begin(&self) {
        if let Some(p) = performance() {
            let _ = p.mark(FRAME_START);
        }
    }

    /// A `samlab-frame` measure from the start mark; the timeline keeps at most a few
    /// thousand of them (an observer sees every one).
    fn frame_end(&self) {
        let Some(p) = performance() else { return };
        if p.get_entries_by_name(FRAME).length() > 5000 {
            p.clear_measures_with_measure_name(FRAME);
        }
        let _ = p.measure_with_start_mark(FRAME, FRAME_START);
        p.clear_marks_with_mark_name(FRAME_START);
    }

    fn report_status(&self, status: &StatusReport) {
        let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
        if let Some(canvas) = document.get_element_by_id(CANVAS_ID) {
            let _ = canvas.set_attribute("data-steps", &status.steps.to_string());
            let _ = canvas.set_attribute("data-runs", &status.runs.to_string());
            let _ = canvas.set_attribute("data-engine", &status.engine);
            let _ = canvas.set_attribute("data-renderer", &status.renderer);
            let _ = canvas.set_attribute("data-messages", &status.messages.join(" | "));
            let _ = canvas.set_attribute("data-preset", &status.preset);
            let _ = canvas.set_attribute("data-view", &status.view);
            let _ = canvas.set_attribute("data-hidden", &status.hidden);
            let _ = canvas.set_attribute("data-worst-frame-ms", &format!("{:.1}", status.worst_frame_ms));
            let _ = canvas.set_attribute("data-worst-frame-parts", &status.worst_frame_parts);
            let _ = canvas.set_attribute("data-densities", &status.densities.to_string());
            let _ = canvas.set_attribute("data-changes", &status.changes.to_string());
            let _ = canvas.set_attribute("data-measurements", &status.measurements.to_string());
            let _ = canvas.set_attribute("data-landscape", &status.landscape);
            let _ = canvas.set_attribute("data-ready", "1");
        }
        document.set_title(&format!("SAM lab — {} steps", status.steps));
    }
}
