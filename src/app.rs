//! The SAM lab app (eframe): the same app on the desktop and in the browser. It owns the lab
//! (runtime state: data, runs, engines), the persisted settings (serde, stored by eframe between
//! sessions: never an engine or a GPU handle), the panels, and the platform services.
//!
//! Every frame: train within the time budget, refresh the data views, draw the panels (which
//! return commands), apply the commands, mirror the state into the URL hash (browser) and the
//! status into the page, and ask for the next frame while anything trains.

use crate::engine::EngineChoice;
use crate::lab::experiments::ExperimentJob;
use crate::lab::state::{Layout, Link, Panel, View};
use crate::lab::{Lab, LabState, Preset};
pub use crate::platform::RendererInfo;
use crate::platform::{self, Platform, StatusReport};
use crate::ui::data_view::DataPanel;
use crate::ui::experiments::ExperimentsPanel;
use crate::ui::files::FilesMenu;
use crate::ui::landscape::LandscapePanel;
use crate::ui::plots::{MetricsPanel, XAxis};
use crate::ui::runs::RunsPanel;
use crate::ui::settings::{RunSettingsPanel, SharedPanel};
use crate::ui::status::{FrameCounter, FrameTimes, Message, StatusBar};
use crate::ui::{Command, fmt_num};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use web_time::Duration;

mod mnist;
mod opened;

/// Key of the settings in eframe's storage (JSON text, so that a bad entry can be reported).
pub const STORAGE_KEY: &str = "samlab_settings";
/// How often a run's data view (decision surface, hardest samples) is recomputed.
const VIEW_REFRESH: Duration = Duration::from_millis(500);
/// Below this width (points: a phone) the side panel folds behind a button instead of
/// squeezing the plots.
const NARROW: f32 = 720.0;

/// What persists between sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub lab: LabState,
    /// Training time per frame, all runs together.
    pub budget_ms: f32,
    pub selected: usize,
    pub x_axis: XAxis,
    /// Desktop: the file the config is saved to and loaded from (relative to the working directory).
    pub file_path: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self { lab: LabState::default(), budget_ms: 8.0, selected: 0, x_axis: XAxis::Epoch, file_path: "samlab-lab.json".into() }
    }
}

impl Settings {
    /// Parses stored settings; their lab is checked like a file's (invalid runs dropped).
    pub fn from_json(text: &str) -> Result<(Self, Vec<String>), String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
        let lab_value = value.get("lab").cloned().ok_or("no lab settings")?;
        let (lab, notes) = LabState::from_json(&lab_value.to_string()).map_err(|e| e.to_string())?;
        let mut settings: Settings = serde_json::from_value(value).map_err(|e| format!("malformed settings: {e}"))?;
        settings.lab = lab;
        settings.budget_ms = if settings.budget_ms.is_finite() { settings.budget_ms.clamp(1.0, 30.0) } else { 8.0 };
        Ok((settings, notes))
    }
}

/// A PNG export waiting for its screenshot.
struct PendingPng {
    name: String,
    rect: egui::Rect,
    image: Arc<Mutex<Option<Arc<egui::ColorImage>>>>,
}

pub struct SamLabApp {
    pub settings: Settings,
    pub lab: Lab,
    platform: Box<dyn Platform>,
    /// Files opened and weights being saved (`opened`).
    desk: opened::Desk,
    renderer: Option<RendererInfo>,
    pub messages: Vec<Message>,
    frames: FrameCounter,
    runs_panel: RunsPanel,
    shared_panel: SharedPanel,
    run_panel: RunSettingsPanel,
    metrics_panel: MetricsPanel,
    data_panel: DataPanel,
    landscape_panel: LandscapePanel,
    status_bar: StatusBar,
    pub experiments_panel: ExperimentsPanel,
    /// The experiment running (or last run) in the Experiments view; it trains within the
    /// lab's frame budget and goes on while the Lab view is shown (the top bar says so).
    pub experiment: Option<ExperimentJob>,
    /// The central area shows the Experiments view instead of the lab's plots.
    pub show_experiments: bool,
    /// Panels a link (or the File menu) hid; a button in the top bar brings them back.
    pub hidden: BTreeSet<Panel>,
    /// On a narrow screen: the runs and settings show instead of the plots.
    side_open: bool,
    /// How long SAM lab's own code took per frame (the browser test reads the worst).
    frame_times: FrameTimes,
    /// The MNIST file the page downloads, parsed in pieces.
    mnist: mnist::MnistPrep,
    pending_png: Option<PendingPng>,
    paste: String,
    last_hash: String,
    last_hash_write: Option<web_time::Instant>,
    last_report: Option<web_time::Instant>,
    /// Train between frames (off in tests that check layout).
    pub train: bool,
    fonts_installed: bool,
}

impl SamLabApp {
    /// Called by eframe once at start: the renderer's adapter, the stored session, the URL.
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let name = platform::current().name();
        let renderer = cc.wgpu_render_state.as_ref().map(|rs| RendererInfo::from_render_state(rs, name));
        Self::with_renderer(cc, renderer, RendererInfo::engine_choice(cc.wgpu_render_state.as_ref(), name))
    }

    /// As `new`, with the renderer and the engine factory given (the browser's WebGL2 renderer has no wgpu device).
    pub fn with_renderer(cc: &eframe::CreationContext<'_>, renderer: Option<RendererInfo>, engine: EngineChoice) -> Self {
        let stored = cc.storage.and_then(|s| s.get_string(STORAGE_KEY));
        crate::ui::install_fonts(&cc.egui_ctx);
        let mut app = Self::with(platform::current(), stored.as_deref(), renderer, engine);
        app.fonts_installed = true;
        app
    }

    /// Builds the app from its environment: the URL hash wins over the stored session, which
    /// wins over the default preset; whatever is ignored is said in a message.
    pub fn with(platform: Box<dyn Platform>, stored: Option<&str>, renderer: Option<RendererInfo>, engine: EngineChoice) -> Self {
        let mut messages = Vec::new();
        let mut settings = Settings::default();
        if let Some(text) = stored {
            match Settings::from_json(text) {
                Ok((s, notes)) => {
                    settings = s;
                    messages.extend(notes.into_iter().map(|n| Message::error(format!("saved session: {n}"))));
                }
                Err(e) => messages.push(Message::error(format!("ignored the saved session ({e}); opened the defaults"))),
            }
        }
        let mut layout = Layout::default();
        if let Some(hash) = platform.url_hash() {
            match Link::parse(&hash) {
                Ok(Some(link)) => {
                    if let Some(state) = link.state {
                        settings.lab = state;
                        messages.push(Message::info("opened the settings from the link"));
                    } else if let Some(engine) = link.engine {
                        settings.lab.shared.backend = engine;
                    }
                    layout = link.layout;
                    messages.extend(link.notes.into_iter().map(Message::error));
                }
                Ok(None) => {}
                Err(e) => {
                    settings.lab = LabState::default();
                    messages.push(Message::error(format!("ignored the link's settings ({e}); opened the defaults")));
                }
            }
        }
        let mut lab = Lab::new(settings.lab.clone(), engine);
        lab.budget = Duration::from_secs_f32(settings.budget_ms / 1e3);
        let desk = opened::Desk::default();
        platform.attach_inbox(desk.inbox.clone());
        let mut app = Self {
            settings,
            lab,
            platform,
            desk,
            renderer,
            messages,
            frames: FrameCounter::default(),
            runs_panel: RunsPanel::default(),
            shared_panel: SharedPanel,
            run_panel: RunSettingsPanel::default(),
            metrics_panel: MetricsPanel,
            data_panel: DataPanel::default(),
            landscape_panel: LandscapePanel::default(),
            status_bar: StatusBar,
            experiments_panel: ExperimentsPanel::default(),
            experiment: None,
            show_experiments: layout.view == View::Experiments,
            hidden: layout.hidden,
            side_open: false,
            frame_times: FrameTimes::default(),
            mnist: mnist::MnistPrep::default(),
            pending_png: None,
            paste: String::new(),
            last_hash: String::new(),
            last_hash_write: None,
            last_report: None,
            train: true,
            fonts_installed: false,
        };
        app.sync_url(true);
        app
    }

    fn say(&mut self, m: Message) {
        self.messages.push(m);
        if self.messages.len() > 20 {
            self.messages.remove(0);
        }
    }

    /// Mirrors the lab into the URL hash, at most every 300 ms (browsers throttle
    /// `history.replaceState`, and a slider drag changes the state every frame); `force` writes now.
    fn sync_url(&mut self, force: bool) {
        let now = web_time::Instant::now();
        if !force && self.last_hash_write.is_some_and(|t| now.duration_since(t) < Duration::from_millis(300)) {
            return;
        }
        let hash = Link::hash(&self.lab.state, &self.layout());
        if hash != self.last_hash {
            self.platform.set_url_hash(&hash);
            self.last_hash = hash;
            self.last_hash_write = Some(now);
        }
    }

    /// The page's layout as links carry it.
    pub fn layout(&self) -> Layout {
        Layout { hidden: self.hidden.clone(), view: if self.show_experiments { View::Experiments } else { View::Lab } }
    }

    fn renderer_text(&self) -> String {
        self.renderer.as_ref().map_or("none".into(), RendererInfo::describe)
    }

    /// One frame of the whole app inside `ui` (eframe calls this through `App::ui`; the UI
    /// tests call it directly).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        if !self.fonts_installed {
            crate::ui::install_fonts(ui.ctx());
            self.fonts_installed = true;
        }
        let frame_start = web_time::Instant::now();
        self.platform.frame_begin();
        self.frames.tick();
        self.await_mnist();
        let mut tick = crate::lab::TickTimes::default();
        if self.train {
            self.lab.tick();
            tick = self.lab.last_tick;
            let views = web_time::Instant::now();
            self.lab.refresh_views(VIEW_REFRESH);
            tick.views = views.elapsed();
        }
        // An experiment the user started trains whatever `train` says (tests step it this way).
        self.tick_experiment();
        for f in ui.ctx().input(|i| i.raw.dropped_files.clone()) {
            self.platform.receive_dropped(f);
        }
        self.poll_files();
        self.settings.selected = self.settings.selected.min(self.lab.runs.len().saturating_sub(1));
        let selected = self.settings.selected;
        let mut commands = crate::ui::shortcuts::commands(ui.ctx(), &self.lab, selected);

        let narrow = ui.available_width() < NARROW;
        let side = !(self.hidden.contains(&Panel::Runs) && self.hidden.contains(&Panel::Settings));
        let side_in_center = narrow && side && self.side_open;
        egui::Panel::top("top").show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.heading("SAM lab");
                let layout = self.layout();
                crate::ui::layout_controls_ui(ui, narrow && side, &mut self.side_open, &layout, &mut commands);
                if self.hidden.contains(&Panel::Presets) {
                    if let Some(p) = self.lab.state.preset {
                        ui.label(egui::RichText::new(p.title()).strong());
                    }
                    return;
                }
                ui.menu_button("File", |ui| {
                    let layout = self.layout();
                    let menu = FilesMenu {
                        can_load_files: self.platform.can_load_files(),
                        file_path: &mut self.settings.file_path,
                        paste: &mut self.paste,
                        layout: &layout,
                    };
                    menu.ui(ui, &mut commands);
                    crate::ui::files::own_files_ui(ui, self.platform.can_load_files(), self.lab.runs.len(), selected, &mut commands);
                })
                .response
                .on_hover_text("Save, load, share, export");
                ui.label(egui::RichText::new("keys").weak()).on_hover_text(crate::ui::shortcuts::HELP);
                ui.separator();
                crate::ui::presets_ui(ui, self.lab.state.preset, narrow, &mut commands);
                ui.separator();
                ui.selectable_value(&mut self.show_experiments, false, "Lab").on_hover_text("The runs side by side: data, plots, landscape");
                ui.selectable_value(&mut self.show_experiments, true, "Experiments")
                    .on_hover_text("The paper's experiments, run live with the same definitions as `samlab experiment`");
                if let Some(job) = self.experiment.as_ref().filter(|j| j.is_running()) {
                    ui.label(egui::RichText::new(format!("{} running: {}/{}", job.experiment.name(), job.done(), job.total())).weak());
                }
                if !self.show_experiments {
                    ui.separator();
                    ui.label("x axis:");
                    ui.selectable_value(&mut self.settings.x_axis, XAxis::Epoch, "epoch");
                    ui.selectable_value(&mut self.settings.x_axis, XAxis::Step, "step");
                }
            });
        });
        if !self.hidden.contains(&Panel::Status) {
            egui::Panel::bottom("status").show(ui, |ui| {
                let fps = self.frames.fps;
                let renderer = self.renderer_text();
                self.status_bar.ui(ui, &self.lab, fps, &renderer, self.settings.budget_ms, &self.messages, &mut commands);
            });
        }
        if side && !narrow {
            egui::Panel::left("side").default_size(340.0).show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.side_ui(ui, selected, &mut commands));
            });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if side_in_center {
                egui::ScrollArea::vertical().id_salt("side_scroll").auto_shrink([false, false]).show(ui, |ui| self.side_ui(ui, selected, &mut commands));
                return;
            }
            if self.show_experiments {
                let engine = self.lab.engine.describe();
                egui::ScrollArea::vertical().id_salt("experiments_scroll").auto_shrink([false, false]).show(ui, |ui| {
                    self.experiments_panel.ui(ui, self.experiment.as_ref(), &engine, &mut commands);
                });
                return;
            }
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.label(egui::RichText::new(format!("Engine: {}", self.lab.engine.describe())).strong());
                    ui.label(format!("· renderer {}", self.renderer_text()));
                });
                if let Some(p) = self.lab.state.preset {
                    ui.label(egui::RichText::new(p.describe()).italics());
                }
                if let Some(e) = &self.lab.data_error {
                    ui.colored_label(egui::Color32::from_rgb(0xe1, 0x57, 0x59), format!("cannot load the data: {e}"));
                }
                self.data_panel.ui(ui, &self.lab, selected, &mut commands);
                ui.separator();
                self.metrics_panel.show(ui, &self.lab, self.settings.x_axis, selected, &mut commands);
                ui.separator();
                self.landscape_panel.ui(ui, &self.lab, &mut commands);
            });
        });

        for c in commands {
            self.apply(ui.ctx(), c);
        }
        self.finish_png(ui.ctx());
        self.sync_url(false);
        self.report();
        self.frame_times.add(frame_start.elapsed(), tick);
        self.platform.frame_end();
        if self.lab.is_training() || self.experiment.as_ref().is_some_and(ExperimentJob::is_running) || self.desk.is_reading() {
            ui.ctx().request_repaint();
        } else {
            ui.ctx().request_repaint_after(VIEW_REFRESH);
        }
    }

    /// The runs and their settings (the side panel, or the whole area on a narrow screen),
    /// without the parts a link hid.
    fn side_ui(&mut self, ui: &mut egui::Ui, selected: usize, commands: &mut Vec<Command>) {
        if !self.hidden.contains(&Panel::Runs) {
            ui.heading("Runs");
            self.runs_panel.ui(ui, &self.lab, selected, commands);
            ui.separator();
        }
        if self.hidden.contains(&Panel::Settings) {
            return;
        }
        egui::CollapsingHeader::new("Data, model and seed (shared)").default_open(true).show(ui, |ui| {
            self.shared_panel.ui(ui, &self.lab, commands);
        });
        if let Some(r) = self.lab.runs.get(selected) {
            let title = format!("Settings of run {}", crate::ui::run_name(selected, &r.spec));
            egui::CollapsingHeader::new(title).id_salt("run_settings").default_open(true).show(ui, |ui| {
                self.run_panel.ui(ui, &self.lab, selected, commands);
            });
        }
    }

    /// Applies one command (the only place the lab, the files and the URL change).
    pub fn apply(&mut self, ctx: &egui::Context, c: Command) {
        let lab = &mut self.lab;
        match c {
            Command::Preset(p) => {
                let plots = std::mem::take(&mut lab.state.plots);
                lab.apply_preset(p);
                lab.state.plots = plots;
                self.settings.selected = 0;
            }
            Command::AddRun(kind) => match lab.add_run(kind) {
                Ok(i) => self.settings.selected = i,
                Err(e) => self.say(Message::error(format!("not added: {e}"))),
            },
            Command::Duplicate(i) => match lab.duplicate(i) {
                Ok(j) => self.settings.selected = j,
                Err(e) => self.say(Message::error(format!("not duplicated: {e}"))),
            },
            Command::Remove(i) => {
                lab.remove(i);
                if self.settings.selected >= i && self.settings.selected > 0 {
                    self.settings.selected -= 1;
                }
            }
            Command::Select(i) => self.settings.selected = i,
            Command::Play(i, on) => lab.set_playing(i, on),
            Command::PlayAll(on) => lab.set_all_playing(on),
            Command::Step(i) => {
                lab.set_playing(i, false);
                lab.step_once(i);
            }
            Command::Reset(i) => lab.reset(i),
            Command::ResetAll => lab.reset_all(),
            Command::NewSeed => {
                lab.new_seed();
                let seed = lab.state.shared.seed;
                self.say(Message::info(format!("new seed {seed}: new data order, label noise and initial weights")));
            }
            Command::SetSpec(i, spec) => {
                if let Err(e) = lab.set_spec(i, spec) {
                    self.say(Message::error(format!("settings not changed: {e}")));
                }
            }
            Command::SetShared(shared) => {
                if let Err(e) = lab.set_shared(shared) {
                    self.say(Message::error(format!("settings not changed: {e}")));
                }
            }
            Command::SetPlots(plots) => lab.state.plots = plots,
            Command::Landscape(i, to) => lab.start_landscape(i, to),
            Command::SetLandscape(settings) => lab.set_landscape_settings(settings),
            Command::SetBudgetMs(ms) => {
                self.settings.budget_ms = ms.clamp(1.0, 30.0);
                lab.budget = Duration::from_secs_f32(self.settings.budget_ms / 1e3);
            }
            Command::SaveConfig => {
                let text = lab.state.to_json_with_data();
                let name = if self.platform.can_load_files() { self.settings.file_path.clone() } else { "samlab-lab.json".into() };
                self.save(&name, text.as_bytes(), "application/json", "config");
            }
            Command::LoadConfig => {
                let text = if self.platform.can_load_files() {
                    match self.platform.load_file(&self.settings.file_path) {
                        Ok(t) => t,
                        Err(e) => return self.say(Message::error(format!("cannot load: {e}"))),
                    }
                } else {
                    self.paste.clone()
                };
                self.load_text(&text);
            }
            Command::ExportJson => {
                let text = lab.metrics_json();
                self.save("samlab-metrics.json", text.as_bytes(), "application/json", "metrics");
            }
            Command::ExportCsv => {
                let text = lab.metrics_csv();
                self.save("samlab-metrics.csv", text.as_bytes(), "text/csv", "metrics");
            }
            Command::ExportPng(name, rect) => {
                let image: Arc<Mutex<Option<Arc<egui::ColorImage>>>> = Arc::default();
                let slot = image.clone();
                let repaint = ctx.clone();
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::ScreenshotCallback::new(move |img| {
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(img);
                    }
                    repaint.request_repaint();
                })));
                self.pending_png = Some(PendingPng { name, rect, image });
            }
            Command::SetHidden(set) => self.hidden = set,
            Command::ShareTeachingLink => {
                self.sync_url(true);
                let hash = Link::hash(&self.lab.state, &self.layout());
                let link = format!("{}#{hash}", self.platform.page_address().unwrap_or_default());
                ctx.copy_text(link.clone());
                let what =
                    if self.lab.state.unchanged_preset().is_some() { "teaching link" } else { "link (the lab differs from its preset: it travels whole)" };
                self.say(Message::info(format!("copied the {what}: {}", link.chars().take(100).collect::<String>())));
            }
            Command::ShareLink => {
                self.sync_url(true);
                if self.platform.name() == "browser" {
                    self.say(Message::info("the page's address now holds the whole lab: copy it from the address bar"));
                } else {
                    let hash = Link::hash(&self.lab.state, &self.layout());
                    ctx.copy_text(format!("#{hash}"));
                    self.say(Message::info(format!(
                        "copied the link fragment #{}… ({} characters): append it to the web app's address",
                        &hash[..hash.len().min(24)],
                        hash.len() + 1
                    )));
                }
            }
            Command::DismissMessages => self.messages.clear(),
            Command::Files(f) => self.apply_file_command(f),
            Command::StartExperiment(exp, seeds, quick) => {
                // The previous job (if any) is dropped with its runs.
                self.experiment = Some(ExperimentJob::start(exp, seeds, quick, &self.lab.engine));
                self.show_experiments = true;
            }
            Command::StopExperiment => {
                if let Some(job) = &mut self.experiment {
                    job.stop();
                    let (done, total) = (job.done(), job.total());
                    self.say(Message::info(format!("stopped the experiment after {done} of {total}")));
                }
            }
            Command::ExportExperimentJson | Command::ExportExperimentMarkdown => {
                let Some(job) = &self.experiment else { return };
                let json = c == Command::ExportExperimentJson;
                let (text, ext, mime) = if json { (job.json(), "json", "application/json") } else { (job.markdown(), "md", "text/markdown") };
                let name = format!("samlab-experiment-{}.{ext}", job.experiment.name());
                self.save(&name, text.as_bytes(), mime, "experiment results");
            }
        }
    }

    /// Advances the running experiment within the lab's frame budget; says when it ends.
    fn tick_experiment(&mut self) {
        let Some(job) = &mut self.experiment else { return };
        if !job.is_running() {
            return;
        }
        job.tick(self.lab.budget);
        if !job.is_running() {
            let failed = job.failures().len();
            let text = format!(
                "experiment {} finished: {} of {} in {:.1} s{}",
                job.experiment.name(),
                job.done() - failed,
                job.total(),
                job.elapsed().as_secs_f64(),
                if failed > 0 { format!(", {failed} failed") } else { String::new() }
            );
            self.say(Message::info(text));
        }
    }

    fn save(&mut self, name: &str, bytes: &[u8], mime: &str, what: &str) {
        match self.platform.save_file(name, bytes, mime) {
            Ok(where_) => self.say(Message::info(format!("saved the {what}: {where_}"))),
            Err(e) => self.say(Message::error(format!("cannot save the {what}: {e}"))),
        }
    }

    /// Loads a lab file, or a single run's config (as `samlab train --config` reads).
    /// Opens a lab file, or one run's config as a lab of that run (`LabState::open_text`, the
    /// same path as `samlab lab check`); on an error the lab is unchanged.
    pub fn load_text(&mut self, text: &str) {
        match LabState::open_text(text) {
            Ok((state, notes)) => {
                self.lab.set_state(state);
                self.settings.selected = 0;
                self.say(Message::info(format!("loaded {} runs", self.lab.runs.len())));
                if let Some(e) = self.lab.data_error.clone() {
                    self.say(Message::error(e));
                }
                for n in notes {
                    self.say(Message::error(n));
                }
            }
            Err(e) => self.say(Message::error(format!("ignored the file ({e}); the lab is unchanged"))),
        }
    }

    fn finish_png(&mut self, ctx: &egui::Context) {
        let Some(p) = &self.pending_png else { return };
        let Some(image) = p.image.lock().ok().and_then(|mut s| s.take()) else { return };
        let name = p.name.clone();
        let rect = p.rect;
        self.pending_png = None;
        let Some((w, h, rgba)) = crate::ui::crop_screenshot(&image, rect, ctx.pixels_per_point()) else {
            return self.say(Message::error(format!("cannot export {name}: it is off screen")));
        };
        let png = platform::encode_png(w, h, &rgba);
        self.save(&format!("samlab-{}.png", crate::ui::slug(&name)), &png, "image/png", "plot");
    }

    fn report(&mut self) {
        let now = web_time::Instant::now();
        if self.last_report.is_some_and(|t| now.duration_since(t) < Duration::from_millis(250)) {
            return;
        }
        self.last_report = Some(now);
        let status = StatusReport {
            steps: self.lab.total_steps,
            runs: self.lab.runs.len(),
            engine: self.lab.engine.describe(),
            renderer: self.renderer_text(),
            fps: self.frames.fps,
            steps_per_s: self.lab.throughput.steps_per_s,
            messages: self.messages.iter().map(|m| m.text.clone()).collect(),
            preset: self.lab.state.preset.map_or("", Preset::name).to_string(),
            view: self.layout().view.name().to_string(),
            hidden: self.layout().hidden_names(),
            worst_frame_ms: self.frame_times.worst_ms,
            worst_frame_parts: self.frame_times.worst_parts.clone(),
            densities: self
                .lab
                .runs
                .iter()
                .filter_map(|r| r.run.as_ref())
                .filter(|r| r.history.measurements.last().is_some_and(|m| m.density.is_some()))
                .count(),
            changes: self.lab.runs.iter().filter_map(|r| r.run.as_ref()).map(|r| r.history.changes.len()).sum(),
            measurements: self.lab.runs.iter().filter_map(|r| r.run.as_ref()).map(|r| r.history.measurements.len()).sum(),
            landscape: self.lab.landscape.as_ref().map_or(String::new(), |j| format!("{} {}/{}", j.view.kind.name(), j.view.done, j.view.total())),
        };
        self.platform.report_status(&status);
    }

    /// The settings as they would be stored now.
    pub fn stored_settings(&self) -> String {
        let mut s = self.settings.clone();
        s.lab = self.lab.state.clone();
        let mut value = serde_json::to_value(&s).expect("settings serialise");
        // A small CSV file of the user's travels with the session.
        value["lab"] = serde_json::from_str(&self.lab.state.to_json_with_data()).expect("a lab serialises");
        value.to_string()
    }

    /// A one-line summary of run i, for logs and tests.
    pub fn run_summary(&self, i: usize) -> Option<String> {
        let r = self.lab.runs.get(i)?;
        let e = r.run.as_ref()?.history.last_eval();
        Some(format!("{} step {} test {}", r.label(), r.completed(), e.map_or("-".into(), |e| fmt_num(e.test_acc))))
    }
}

impl eframe::App for SamLabApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        storage.set_string(STORAGE_KEY, self.stored_settings());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::MemoryPlatform;

    #[test]
    fn stored_settings_round_trip_and_bad_ones_fall_back_with_a_message() {
        let app = SamLabApp::with(Box::new(MemoryPlatform::default()), None, None, EngineChoice::cpu("test"));
        let text = app.stored_settings();
        let back = SamLabApp::with(Box::new(MemoryPlatform::default()), Some(&text), None, EngineChoice::cpu("test"));
        assert_eq!(back.lab.state, app.lab.state);
        assert!(back.messages.is_empty());
        for bad in ["{", "[1]", r#"{"lab": {"version": 99}}"#, r#"{"lab": 3}"#] {
            let app = SamLabApp::with(Box::new(MemoryPlatform::default()), Some(bad), None, EngineChoice::cpu("test"));
            assert_eq!(app.lab.state, LabState::default(), "{bad}");
            assert!(app.messages[0].text.contains("ignored the saved session"), "{bad}: {:?}", app.messages);
        }
    }

    #[test]
    fn a_link_wins_over_the_stored_session_and_a_bad_link_is_reported() {
        let state = Preset::MSharpness.state();
        let platform = MemoryPlatform::with_hash(&state.to_hash());
        let app = SamLabApp::with(Box::new(platform), None, None, EngineChoice::cpu("test"));
        assert_eq!(app.lab.state, state);
        for bad in ["v1:%%%", "v0:abc", "garbage", "v1:e30"] {
            let app = SamLabApp::with(Box::new(MemoryPlatform::with_hash(bad)), None, None, EngineChoice::cpu("test"));
            assert_eq!(app.lab.state, LabState::default(), "{bad}");
            assert!(app.messages.iter().any(|m| m.error && m.text.contains("ignored the link")), "{bad}: {:?}", app.messages);
        }
    }

    #[test]
    fn a_single_run_config_loads_as_a_one_run_lab() {
        let mut app = SamLabApp::with(Box::new(MemoryPlatform::default()), None, None, EngineChoice::cpu("test"));
        let mut cfg = crate::config::RunConfig::default();
        cfg.dataset.name = crate::config::DatasetName::Circles;
        cfg.optimizer.kind = crate::config::OptimizerKind::Asam;
        app.load_text(&cfg.to_json());
        assert_eq!(app.lab.runs.len(), 1);
        assert_eq!(app.lab.state.runs[0].optimizer.kind, crate::config::OptimizerKind::Asam);
        let before = app.lab.state.clone();
        app.load_text("{\"nonsense\": true");
        assert_eq!(app.lab.state, before);
        assert!(app.messages.last().unwrap().text.contains("unchanged"));
    }
}
