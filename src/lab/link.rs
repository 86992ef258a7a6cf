//! Teaching links: the readable form of a link (`#preset=m-sharpness&hide=settings,runs&engine=cpu
//! &view=experiments`, or `embed`) beside the full `#v1:` state, the panels a link may hide and
//! the view it opens, and the names presets go by in links.

use super::state::{LabState, Preset};
use crate::config::Backend;
use crate::error::{Error, Result};
use std::collections::BTreeSet;

impl Preset {
    /// The name links use (`preset=m-sharpness`), as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Preset::MoonsSgdVsSam => "moons-sgd-vs-sam",
            Preset::MSharpness => "m-sharpness",
            Preset::LabelNoise => "label-noise",
            Preset::RwSamTemperature => "rw-sam-temperature",
        }
    }

    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// A part of the page a link may hide (a teacher's link, a lab embedded in an iframe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Panel {
    /// The row of presets and the view switch in the top bar.
    Presets,
    /// The list of runs (play, pause, reset, add).
    Runs,
    /// The shared and per-run settings.
    Settings,
    /// The status bar (messages, speed, engine).
    Status,
}

impl Panel {
    pub const ALL: [Panel; 4] = [Panel::Presets, Panel::Runs, Panel::Settings, Panel::Status];

    pub fn name(self) -> &'static str {
        match self {
            Panel::Presets => "presets",
            Panel::Runs => "runs",
            Panel::Settings => "settings",
            Panel::Status => "status",
        }
    }

    pub fn from_name(name: &str) -> Option<Panel> {
        Panel::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What the central area shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    #[default]
    Lab,
    Experiments,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Lab => "lab",
            View::Experiments => "experiments",
        }
    }
}

/// How the page is laid out, as a link carries it beside the lab's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub hidden: BTreeSet<Panel>,
    pub view: View,
}

impl Layout {
    /// "runs,settings" (in a fixed order), empty when every panel shows.
    pub fn hidden_names(&self) -> String {
        self.hidden.iter().map(|p| p.name()).collect::<Vec<_>>().join(",")
    }

    /// The link's parameters for this layout ("embed" when every panel is hidden).
    fn params(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.hidden.len() == Panel::ALL.len() {
            out.push("embed".to_string());
        } else if !self.hidden.is_empty() {
            out.push(format!("hide={}", self.hidden_names()));
        }
        if self.view != View::Lab {
            out.push(format!("view={}", self.view.name()));
        }
        out
    }
}

/// The keys a readable link may carry.
pub const LINK_KEYS: &str = "preset, engine, hide, view, embed";

/// What a link opens: the lab's settings (a full `v1:` state, or a preset), the engine, the
/// layout, and one note per key or value that was ignored (each names it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    pub state: Option<LabState>,
    pub engine: Option<Backend>,
    pub layout: Layout,
    pub notes: Vec<String>,
}

impl Link {
    /// Reads a URL hash (with or without '#'): `v1:<state>`, optionally followed by
    /// `&key=value` parameters, or parameters alone (`preset=m-sharpness&hide=settings,runs&
    /// engine=cpu&view=experiments`; `embed` hides every panel). `Ok(None)` for an empty hash.
    /// An unreadable state, or a hash with no key this build knows, is an error; a bad key or
    /// value among good ones is a note and is otherwise ignored.
    pub fn parse(hash: &str) -> Result<Option<Link>> {
        let hash = hash.trim_start_matches('#').trim();
        if hash.is_empty() {
            return Ok(None);
        }
        let mut parts = hash.split('&').map(str::trim).filter(|p| !p.is_empty()).peekable();
        let mut link = Link::default();
        let first = parts.peek().copied().unwrap_or_default();
        let versioned = first.split_once(':').is_some_and(|(v, _)| v.len() > 1 && v.starts_with('v') && v[1..].chars().all(|c| c.is_ascii_digit()));
        if versioned {
            parts.next();
            let (state, notes) = LabState::from_hash(first)?.ok_or_else(|| Error::Data("the URL hash holds an empty lab".into()))?;
            link.state = Some(state);
            link.notes.extend(notes.into_iter().map(|n| format!("link: {n}")));
        }
        let mut known = versioned;
        let mut preset = None;
        for part in parts {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let value = value.trim();
            let bad = |what: &str| format!("link: {key}={value} {what}");
            match key.trim().to_ascii_lowercase().as_str() {
                "preset" => {
                    known = true;
                    match Preset::from_name(value) {
                        Some(p) => preset = Some(p),
                        None => link.notes.push(bad(&format!("is not a preset ({})", Preset::ALL.map(Preset::name).join(", ")))),
                    }
                }
                "engine" | "backend" => {
                    known = true;
                    match value.parse::<Backend>() {
                        Ok(b) => link.engine = Some(b),
                        Err(_) => link.notes.push(bad("is not an engine (cpu, gpu or auto)")),
                    }
                }
                "hide" => {
                    known = true;
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        match Panel::from_name(&name.to_ascii_lowercase()) {
                            Some(p) => {
                                link.layout.hidden.insert(p);
                            }
                            None => link.notes.push(format!("link: hide={name} is not a panel ({})", Panel::ALL.map(Panel::name).join(", "))),
                        }
                    }
                }
                "view" => {
                    known = true;
                    match value.to_ascii_lowercase().as_str() {
                        "lab" => link.layout.view = View::Lab,
                        "experiments" => link.layout.view = View::Experiments,
                        _ => link.notes.push(bad("is not a view (lab or experiments)")),
                    }
                }
                "embed" => {
                    known = true;
                    if matches!(value, "" | "1" | "true" | "yes") {
                        link.layout.hidden.extend(Panel::ALL);
                    } else if !matches!(value, "0" | "false" | "no") {
                        link.notes.push(bad("is not a switch (embed, embed=1 or embed=0)"));
                    }
                }
                other => {
                    let shown: String = other.chars().take(24).collect();
                    link.notes.push(format!("link: unknown key {shown:?} (keys: {LINK_KEYS})"));
                }
            }
        }
        if !known {
            let shown: String = hash.chars().take(24).collect();
            return Err(Error::Data(format!("the URL hash {shown:?} is neither a lab (v1:…) nor a teaching link ({LINK_KEYS})")));
        }
        match (preset, &link.state) {
            (Some(p), None) => link.state = Some(p.state()),
            (Some(p), Some(_)) => link.notes.push(format!("link: preset={} ignored: the link holds a whole lab", p.name())),
            (None, _) => {}
        }
        if let (Some(b), Some(state)) = (link.engine, &mut link.state) {
            state.shared.backend = b;
        }
        Ok(Some(link))
    }

    /// The hash the page carries for `state` and `layout`: the readable form while the state
    /// is a preset as it opens (with any engine), the whole state (`v1:…`) otherwise, each
    /// followed by the layout (hidden panels, the view) so that it survives a reload.
    pub fn hash(state: &LabState, layout: &Layout) -> String {
        let mut parts = match state.unchanged_preset() {
            Some(p) => {
                let mut v = vec![format!("preset={}", p.name())];
                if state.shared.backend != Backend::Auto {
                    let name = serde_json::to_value(state.shared.backend).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                    v.push(format!("engine={name}"));
                }
                v
            }
            None => vec![state.to_hash()],
        };
        parts.extend(layout.params());
        parts.join("&")
    }
}

impl LabState {
    /// The preset this state is, unchanged but for the engine.
    pub fn unchanged_preset(&self) -> Option<Preset> {
        let p = self.preset?;
        let mut s = p.state();
        s.shared.backend = self.shared.backend;
        (s == *self).then_some(p)
    }
}
