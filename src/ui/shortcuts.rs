//! Keyboard shortcuts for the lecture hall, active while no text field has the keyboard: Space
//! plays or pauses every run, S steps the selected run once, R resets every run, L computes the
//! loss landscape around the selected run (with the landscape panel's settings), and [ / ]
//! halve / double the selected run's learning rate (a live change while it trains).

use super::Command;
use crate::lab::Lab;
use egui::{Event, Key};

/// The shortcuts in one line, for the help text and tooltips.
pub const HELP: &str =
    "Keys: Space play/pause all · S step the selected run · R reset all · L landscape around the selected run · [ ] halve/double its learning rate";

/// The learning rates the keys stay within (the settings' own bounds are wider).
const LR_RANGE: (f64, f64) = (1e-5, 10.0);

/// The commands the keys pressed this frame ask for (none while a text field has the keyboard,
/// or with Ctrl, Alt or Cmd held: those belong to the platform).
pub fn commands(ctx: &egui::Context, lab: &Lab, selected: usize) -> Vec<Command> {
    if ctx.egui_wants_keyboard_input() {
        return Vec::new();
    }
    let keys: Vec<Key> = ctx.input(|i| {
        i.events
            .iter()
            .filter_map(|e| match e {
                Event::Key { key, pressed: true, repeat: false, modifiers, .. }
                    if !(modifiers.ctrl || modifiers.alt || modifiers.command || modifiers.mac_cmd) =>
                {
                    Some(*key)
                }
                _ => None,
            })
            .collect()
    });
    let mut out = Vec::new();
    for key in keys {
        match key {
            Key::Space => out.push(Command::PlayAll(!lab.runs.iter().any(|r| r.playing))),
            Key::S => out.push(Command::Step(selected)),
            Key::R => out.push(Command::ResetAll),
            Key::L => out.push(Command::Landscape(selected, None)),
            Key::OpenBracket | Key::CloseBracket => {
                if let Some(spec) = lab.state.runs.get(selected) {
                    let mut spec = spec.clone();
                    let factor = if key == Key::CloseBracket { 2.0 } else { 0.5 };
                    spec.optimizer.lr = (spec.optimizer.lr * factor).clamp(LR_RANGE.0, LR_RANGE.1);
                    out.push(Command::SetSpec(selected, spec));
                }
            }
            _ => {}
        }
    }
    out
}
