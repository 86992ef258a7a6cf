//! Platform services: what differs between the desktop and the browser, behind one small trait
//! (`Platform`) with a native, a web and an in-memory implementation (tests).
//!
//! - files: the desktop writes into the working directory and reads back from it; the browser
//!   downloads through a Blob and an anchor, and has no file to read (paste the JSON instead);
//! - files the user opens (a CSV dataset, weights, a lab): a file dialog (rfd) or a dropped path
//!   read off the UI thread on the desktop, the page's file input in the browser; either way
//!   they arrive in an `Inbox` on a later frame;
//! - the URL hash (browser only): read on start, rewritten with `history.replaceState`;
//! - status for automation: the browser mirrors the step counter and the engine on the canvas's
//!   `data-*` attributes and the document title (the Playwright test reads them).
//!
//! Architecture invariant: only `platform` (and `main`, `web`) carry `cfg(target_arch)`.

#[cfg(not(target_arch = "wasm32"))]
mod native;
mod renderer;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(not(target_arch = "wasm32"))]
pub use native::NativePlatform;
#[cfg(target_arch = "wasm32")]
pub use web::{CANVAS_ID, WebPlatform};

pub use renderer::RendererInfo;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// What the app reports for automation and screen readers outside the canvas.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusReport {
    pub steps: u64,
    pub runs: usize,
    pub engine: String,
    pub renderer: String,
    pub fps: f64,
    pub steps_per_s: f64,
    /// Messages shown to the user (ignored settings, errors).
    pub messages: Vec<String>,
    /// The preset the lab is (its link name), or empty once changed.
    pub preset: String,
    /// "lab" or "experiments".
    pub view: String,
    /// The panels a link hid, comma separated ("runs,settings").
    pub hidden: String,
    /// The longest a frame has spent in SAM lab's own code, in milliseconds.
    pub worst_frame_ms: f64,
    /// Where that frame spent its time ("train 4.1, measure 3.2, landscape 3.0, display 9.8").
    pub worst_frame_parts: String,
    /// Runs whose latest measurement holds a Hessian eigenvalue density.
    pub densities: usize,
    /// Live changes of settings recorded in the runs' histories, all runs together.
    pub changes: usize,
    /// Sharpness measurements in the runs' histories, all runs together.
    pub measurements: usize,
    /// The landscape shown or in progress: "pca 120/441" (directions, points done of all), or empty.
    pub landscape: String,
}

/// A file the user opened (picked or dropped), as it arrives.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingFile {
    /// The file's name without its directory.
    pub name: String,
    pub bytes: Result<Vec<u8>, String>,
}

/// Where opened files arrive (a later frame takes them out).
pub type Inbox = std::sync::Arc<std::sync::Mutex<Vec<IncomingFile>>>;

/// Largest file opened in the app (weights files are the largest: about 12 million values).
pub const MAX_OPEN_BYTES: u64 = 256 << 20;

/// Puts a file in the inbox (a poisoned lock is taken over: the inbox holds plain data).
pub fn deliver(inbox: &Inbox, file: IncomingFile) {
    inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(file);
}

pub trait Platform {
    /// "desktop" or "browser".
    fn name(&self) -> &'static str;
    /// Saves `bytes` as `file_name`; returns where it went ("/path/to/file" or "downloaded …").
    fn save_file(&self, file_name: &str, bytes: &[u8], mime: &str) -> Result<String, String>;
    /// Reads a file the user named (desktop); the browser has none (`Err` says so).
    fn load_file(&self, path: &str) -> Result<String, String>;
    /// Whether `load_file` can work here (the UI offers a path field or a paste box).
    fn can_load_files(&self) -> bool;
    /// The URL hash without '#', if there is a URL.
    fn url_hash(&self) -> Option<String>;
    /// Replaces the URL hash without adding a history entry.
    fn set_url_hash(&self, hash: &str);
    /// Mirrors the status where automation can read it.
    fn report_status(&self, status: &StatusReport);
    /// The page's address without its hash (browser), for links to copy.
    fn page_address(&self) -> Option<String> {
        None
    }
    /// Where the files the user opens arrive (called once, when the app starts).
    fn attach_inbox(&self, _inbox: Inbox) {}
    /// Asks the user for a file with one of these extensions (a dialog on the desktop, the file
    /// input in the browser); it arrives in the inbox, if the user picks one.
    fn pick_file(&self, _extensions: &[&str]) -> Result<(), String> {
        Err("no file dialog here".into())
    }
    /// Reads the file at `path` (the desktop: off the UI thread) into the inbox.
    fn read_path(&self, path: std::path::PathBuf) {
        let _ = path;
    }
    /// A file dropped on the window, into the inbox: read from its path off the UI thread
    /// (desktop), or asynchronously from the browser's file.
    fn receive_dropped(&self, file: egui::DroppedFileHandle) {
        let _ = file;
    }
    /// Marks the start and the end of SAM lab's own work in a frame (the browser's
    /// performance timeline: a `samlab-frame` measure per frame).
    fn frame_begin(&self) {}
    fn frame_end(&self) {}
}

/// Whether `Worker`s run on background threads (desktop) or inline (browser).
pub const BACKGROUND_WORKERS: bool = cfg!(not(target_arch = "wasm32"));

/// Whether this build runs in the browser (e.g. to default to lighter work).
pub const BROWSER: bool = cfg!(target_arch = "wasm32");

/// Runs a job on each of its inputs away from the UI: on a background thread on the desktop
/// (each job to its end); in the browser (no threads without cross-origin isolation) on the UI
/// thread, a slice per frame (`work`), the job pausing between its pieces (`resumable`).
/// Results come back in order through `try_recv`, never blocking.
pub struct Worker<I, O> {
    #[cfg(not(target_arch = "wasm32"))]
    tx: Option<std::sync::mpsc::Sender<I>>,
    #[cfg(not(target_arch = "wasm32"))]
    rx: std::sync::mpsc::Receiver<O>,
    #[cfg(target_arch = "wasm32")]
    start: Box<dyn FnMut(I) -> crate::resumable::Resumable<O>>,
    #[cfg(target_arch = "wasm32")]
    inputs: std::collections::VecDeque<I>,
    #[cfg(target_arch = "wasm32")]
    current: Option<crate::resumable::Resumable<O>>,
    #[cfg(target_arch = "wasm32")]
    done: std::collections::VecDeque<O>,
}

impl<I: Send + 'static, O: Send + 'static> Worker<I, O> {
    /// A worker whose job is one piece: `f` of the input.
    pub fn new(name: &str, mut f: impl FnMut(I) -> O + Send + 'static) -> Self {
        Self::resumable(name, move |input| std::future::ready(f(input)))
    }

    /// A worker whose job is the computation `f` starts on each input (an `async` block that
    /// pauses between its pieces, `resumable::pause`).
    pub fn resumable<F: std::future::Future<Output = O> + 'static>(name: &str, mut f: impl FnMut(I) -> F + Send + 'static) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let (tx, inputs) = std::sync::mpsc::channel::<I>();
            let (outputs, rx) = std::sync::mpsc::channel::<O>();
            let spawned = std::thread::Builder::new().name(name.to_string()).spawn(move || {
                for input in inputs {
                    if outputs.send(crate::resumable::block_on(f(input))).is_err() {
                        break;
                    }
                }
            });
            if let Err(e) = spawned {
                log::error!("cannot start the {name} thread: {e}");
            }
            Self { tx: Some(tx), rx }
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = name;
            Self {
                start: Box::new(move |input| crate::resumable::Resumable::new(f(input))),
                inputs: std::collections::VecDeque::new(),
                current: None,
                done: std::collections::VecDeque::new(),
            }
        }
    }

    pub fn send(&mut self, input: I) {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(tx) = &self.tx {
            let _ = tx.send(input);
        }
        #[cfg(target_arch = "wasm32")]
        self.inputs.push_back(input);
    }

    /// Whether `work` has something to do (never on the desktop, where the thread works alone).
    pub fn has_work(&self) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        {
            false
        }
        #[cfg(target_arch = "wasm32")]
        {
            self.current.is_some() || !self.inputs.is_empty()
        }
    }

    /// In the browser: works on the jobs sent until `until` (at least one piece when there is
    /// work). On the desktop the thread works on its own and this returns at once.
    pub fn work(&mut self, until: web_time::Instant) {
        #[cfg(not(target_arch = "wasm32"))]
        let _ = until;
        #[cfg(target_arch = "wasm32")]
        loop {
            let job = match &mut self.current {
                Some(job) => job,
                None => match self.inputs.pop_front() {
                    Some(input) => self.current.insert((self.start)(input)),
                    None => return,
                },
            };
            match job.advance(until) {
                Some(out) => {
                    self.current = None;
                    self.done.push_back(out);
                    if web_time::Instant::now() >= until {
                        return;
                    }
                }
                None => return,
            }
        }
    }

    pub fn try_recv(&mut self) -> Option<O> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.rx.try_recv().ok()
        }
        #[cfg(target_arch = "wasm32")]
        {
            self.done.pop_front()
        }
    }
}

/// The platform this build runs on.
pub fn current() -> Box<dyn Platform> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        Box::new(NativePlatform::default())
    }
    #[cfg(target_arch = "wasm32")]
    {
        Box::new(WebPlatform)
    }
}

/// Keeps everything in memory (tests): saved files (shared, so that a test keeps a handle after
/// handing the platform to the app), the URL hash, the last status; the file dialog hands out
/// `picks` in order.
#[derive(Default)]
pub struct MemoryPlatform {
    pub files: std::rc::Rc<RefCell<BTreeMap<String, Vec<u8>>>>,
    pub hash: RefCell<Option<String>>,
    pub status: RefCell<StatusReport>,
    pub picks: std::rc::Rc<RefCell<std::collections::VecDeque<IncomingFile>>>,
    inbox: RefCell<Option<Inbox>>,
}

impl MemoryPlatform {
    pub fn with_hash(hash: &str) -> Self {
        Self { hash: RefCell::new(Some(hash.to_string())), ..Self::default() }
    }
}

impl Platform for MemoryPlatform {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn save_file(&self, file_name: &str, bytes: &[u8], _mime: &str) -> Result<String, String> {
        self.files.borrow_mut().insert(file_name.to_string(), bytes.to_vec());
        Ok(format!("memory:{file_name}"))
    }

    fn load_file(&self, path: &str) -> Result<String, String> {
        let files = self.files.borrow();
        let bytes = files.get(path).ok_or_else(|| format!("{path}: no such file"))?;
        String::from_utf8(bytes.clone()).map_err(|_| format!("{path}: not UTF-8 text"))
    }

    fn can_load_files(&self) -> bool {
        true
    }

    fn url_hash(&self) -> Option<String> {
        self.hash.borrow().clone()
    }

    fn set_url_hash(&self, hash: &str) {
        *self.hash.borrow_mut() = Some(hash.to_string());
    }

    fn report_status(&self, status: &StatusReport) {
        *self.status.borrow_mut() = status.clone();
    }

    fn attach_inbox(&self, inbox: Inbox) {
        *self.inbox.borrow_mut() = Some(inbox);
    }

    fn pick_file(&self, _extensions: &[&str]) -> Result<(), String> {
        let inbox = self.inbox.borrow().clone().ok_or("no inbox")?;
        if let Some(file) = self.picks.borrow_mut().pop_front() {
            deliver(&inbox, file);
        }
        Ok(())
    }

    fn read_path(&self, path: std::path::PathBuf) {
        let Some(inbox) = self.inbox.borrow().clone() else { return };
        let name = path.display().to_string();
        let bytes = self.files.borrow().get(&name).cloned().ok_or_else(|| format!("{name}: no such file"));
        deliver(&inbox, IncomingFile { name, bytes });
    }

    /// Tests drop files natively: their bytes are read at once.
    fn receive_dropped(&self, file: egui::DroppedFileHandle) {
        let Some(inbox) = self.inbox.borrow().clone() else { return };
        let name = file.path().file_name().map_or_else(String::new, |n| n.to_string_lossy().to_string());
        #[cfg(not(target_arch = "wasm32"))]
        let bytes = file.bytes();
        #[cfg(target_arch = "wasm32")]
        let bytes = Err("memory platform: no dropped files in the browser".to_string());
        deliver(&inbox, IncomingFile { name, bytes });
    }
}

/// Encodes an RGBA image as PNG (8-bit RGBA) with the `png` crate, as the figures are; an image
/// whose buffer does not match its size gives an empty file.
pub fn encode_png(width: usize, height: usize, rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let written = (|| -> Result<(), png::EncodingError> {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(rgba)
    })();
    if written.is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_returns_results_in_order_without_blocking() {
        let mut w = Worker::new("test worker", |x: u32| x * 2);
        for i in 0..5 {
            w.send(i);
        }
        let mut got = Vec::new();
        let start = web_time::Instant::now();
        while got.len() < 5 && start.elapsed().as_secs() < 10 {
            got.extend(w.try_recv());
        }
        assert_eq!(got, [0, 2, 4, 6, 8]);
    }

    #[test]
    fn png_has_signature_header_and_end_and_decodes_to_the_pixels() {
        let pixels = [255, 0, 0, 255, 0, 0, 255, 128];
        let png = encode_png(2, 1, &pixels);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x02\0\0\0\x01"));
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
        let mut reader = png::Decoder::new(std::io::Cursor::new(&png)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height, &buf[..info.buffer_size()]), (2, 1, &pixels[..]));
        assert!(encode_png(3, 3, &pixels).is_empty(), "a buffer of the wrong size gives no file");
    }
}
