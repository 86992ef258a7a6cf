//! The status bar: frames and steps per second, the engine and the adapter in use, and the
//! messages (what was ignored on load, saved files, errors).

use super::{Command, help};
use crate::lab::{Lab, TickTimes};
use egui::{Color32, RichText, Ui};

/// A message for the user.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

impl Message {
    pub fn info(text: impl Into<String>) -> Self {
        Self { text: text.into(), error: false }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self { text: text.into(), error: true }
    }
}

/// Frame rate over the last second.
#[derive(Clone, Debug, Default)]
pub struct FrameCounter {
    start: Option<web_time::Instant>,
    frames: u32,
    pub fps: f64,
}

impl FrameCounter {
    pub fn tick(&mut self) {
        let now = web_time::Instant::now();
        let start = *self.start.get_or_insert(now);
        self.frames += 1;
        let dt = now.duration_since(start).as_secs_f64();
        if dt >= 1.0 {
            self.fps = self.frames as f64 / dt;
            self.frames = 0;
            self.start = Some(now);
        }
    }
}

/// How long SAM lab's own code took per frame: the last frame and the worst one since the
/// lab opened (the first frames, which build the fonts and the first data views, are left out).
#[derive(Clone, Debug, Default)]
pub struct FrameTimes {
    frames: u64,
    pub last_ms: f64,
    pub worst_ms: f64,
    /// Where the worst frame spent its time: "train 4.1, measure 3.2, landscape 3.0, views 0.0,
    /// display 9.8" (milliseconds; "views" refreshes the runs' data views, "display" is the rest:
    /// the UI and its plots, an experiment's trials).
    pub worst_parts: String,
}

impl FrameTimes {
    /// Frames not counted in `worst_ms`.
    pub const WARM_UP: u64 = 3;

    /// A frame that took `took`, of which `tick` in the lab's tick.
    pub fn add(&mut self, took: web_time::Duration, tick: TickTimes) {
        self.frames += 1;
        self.last_ms = took.as_secs_f64() * 1e3;
        if self.frames > Self::WARM_UP && self.last_ms > self.worst_ms {
            self.worst_ms = self.last_ms;
            let ms = |d: web_time::Duration| d.as_secs_f64() * 1e3;
            self.worst_parts = format!(
                "train {:.1}, measure {:.1}, landscape {:.1}, views {:.1}, display {:.1}",
                ms(tick.train),
                ms(tick.measure),
                ms(tick.landscape),
                ms(tick.views),
                ms(took.saturating_sub(tick.total()))
            );
        }
    }
}

#[derive(Default)]
pub struct StatusBar;

impl StatusBar {
    pub fn ui(&mut self, ui: &mut Ui, lab: &Lab, fps: f64, renderer: &str, budget_ms: f32, messages: &[Message], out: &mut Vec<Command>) {
        for m in messages.iter().rev().take(4).rev() {
            let color = if m.error { Color32::from_rgb(0xe1, 0x57, 0x59) } else { ui.visuals().text_color() };
            ui.horizontal_wrapped(|ui| {
                if m.error {
                    ui.label(RichText::new("Error:").strong().color(color));
                }
                ui.label(RichText::new(&m.text).color(color));
            });
        }
        ui.horizontal_wrapped(|ui| {
            if !messages.is_empty() && ui.small_button("Dismiss").on_hover_text("Hide these messages").clicked() {
                out.push(Command::DismissMessages);
            }
            ui.label(format!("{fps:.0} fps"));
            ui.separator();
            ui.label(format!("{:.0} steps/s", lab.throughput.steps_per_s));
            ui.separator();
            ui.label(format!("{} steps", lab.total_steps));
            ui.separator();
            let mut b = budget_ms;
            let r = ui.add(egui::Slider::new(&mut b, 1.0..=30.0).text("ms/frame").step_by(1.0)).on_hover_text(help::BUDGET);
            if r.changed() {
                out.push(Command::SetBudgetMs(b));
            }
            ui.separator();
            ui.label(RichText::new(format!("Engine: {}", lab.engine.describe())).strong());
            ui.separator();
            ui.label(format!("Renderer: {renderer}"));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use web_time::Duration;

    #[test]
    fn the_worst_frame_keeps_where_its_time_went() {
        let ms = Duration::from_millis;
        let tick = TickTimes { train: ms(5), measure: ms(3), landscape: ms(2), views: ms(1) };
        let mut t = FrameTimes::default();
        // The warm-up frames (fonts, first views) are not counted, however long.
        for _ in 0..FrameTimes::WARM_UP {
            t.add(ms(500), TickTimes::default());
        }
        assert_eq!(t.worst_ms, 0.0);
        t.add(ms(20), tick);
        t.add(ms(12), TickTimes::default());
        assert_eq!(t.last_ms, 12.0);
        assert_eq!(t.worst_ms, 20.0);
        assert_eq!(t.worst_parts, "train 5.0, measure 3.0, landscape 2.0, views 1.0, display 9.0");
    }
}
