//! The lab's settings and how they travel: what all runs share (`Shared`), what each run sets
//! for itself (`RunSpec`), the whole lab (`LabState`) as JSON (files, the stored session) and as
//! a versioned URL hash, the one-click presets, the readable links a teacher writes by hand
//! (`#preset=m-sharpness&hide=settings,runs&engine=cpu&view=experiments`), and the repairs
//! that keep settings valid (m divides the batch; a batch fits the data).

use crate::config::{Backend, DataConfig, DatasetName, ModelConfig, OptimizerConfig, OptimizerKind, RunConfig, divisors};
use crate::error::{Error, Result};
use crate::lab::landscape::LandscapeSettings;
use serde::{Deserialize, Serialize};

/// At most this many runs side by side.
pub const MAX_RUNS: usize = 6;
/// Format of `LabState` (JSON files, stored settings and the URL hash); bumped on a change of meaning.
pub const LAB_VERSION: u32 = 1;
/// Memory the runs of a lab may hold together (weights, momentum, gradients, the engines'
/// working copies and the landscape snapshots), estimated by `run_bytes`.
pub const LAB_MEMORY_BUDGET: u64 = 4 << 30;
/// Longest URL hash or lab file read (a link of six runs is a few kB).
pub const MAX_LAB_TEXT: usize = 1 << 20;
/// Prefix of the URL hash, with the format version.
pub const HASH_PREFIX: &str = "v1:";

/// What all runs of the lab share: the data, the architecture and the seed (so the same
/// initial weights and label noise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Shared {
    pub dataset: DataConfig,
    pub model: ModelConfig,
    pub seed: u64,
    /// The train/test split, when fixed apart from `seed` (None: it follows `seed`; absent from
    /// older files and links, which load unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// Which engine trains (see `EngineChoice`): cpu, gpu or auto.
    pub backend: Backend,
}

impl Default for Shared {
    fn default() -> Self {
        let c = RunConfig::default();
        Self { dataset: c.dataset, model: c.model, seed: c.seed, split_seed: None, backend: Backend::Auto }
    }
}

/// What one run sets for itself: its optimizer, batch, length and evaluation cadence, and colour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSpec {
    pub optimizer: OptimizerConfig,
    pub batch: usize,
    pub epochs: u64,
    pub steps: Option<u64>,
    pub eval_every: u64,
    pub measure_every: u64,
    /// Measurements also estimate the Hessian's eigenvalue density (stochastic Lanczos quadrature).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spectrum: bool,
    /// Index into the UI palette.
    pub color: usize,
}

impl Default for RunSpec {
    fn default() -> Self {
        let c = RunConfig::default();
        Self {
            optimizer: c.optimizer,
            batch: c.batch,
            epochs: c.epochs,
            steps: c.steps,
            eval_every: c.eval_every,
            measure_every: c.measure_every,
            spectrum: false,
            color: 0,
        }
    }
}

impl RunSpec {
    pub fn config(&self, shared: &Shared) -> RunConfig {
        RunConfig {
            dataset: shared.dataset.clone(),
            model: shared.model.clone(),
            seed: shared.seed,
            split_seed: shared.split_seed,
            optimizer: self.optimizer.clone(),
            batch: self.batch,
            epochs: self.epochs,
            steps: self.steps,
            eval_every: self.eval_every,
            measure_every: self.measure_every,
            backend: shared.backend,
            ..RunConfig::default()
        }
    }

    pub fn label(&self) -> String {
        self.optimizer.label()
    }

    pub(crate) fn with(kind: OptimizerKind, color: usize) -> Self {
        let mut s = RunSpec { color, ..RunSpec::default() };
        s.optimizer.kind = kind;
        s
    }
}

/// The whole lab's settings: what a URL hash, a config file and the stored session hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabState {
    pub version: u32,
    /// The preset these settings came from, if unchanged since.
    pub preset: Option<Preset>,
    pub shared: Shared,
    pub runs: Vec<RunSpec>,
    /// How the plots draw; absent from older files and links, which load with the defaults.
    #[serde(skip_serializing_if = "PlotSettings::is_default")]
    pub plots: PlotSettings,
    /// The landscape panel's directions, grid and range (absent from older files: the defaults).
    #[serde(skip_serializing_if = "LandscapeSettings::is_default")]
    pub landscape: LandscapeSettings,
}

/// Most EMA smoothing of the plots (TensorBoard's slider also ends just below 1).
pub const MAX_SMOOTHING: f64 = 0.99;

/// How the metric plots draw, saved and linked with the lab: the EMA smoothing weight of every
/// curve over steps or epochs (0: raw), and by plot id the plots with a log₁₀ y axis and those
/// that show only the selected run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlotSettings {
    pub smoothing: f64,
    pub log_y: std::collections::BTreeSet<String>,
    pub only_selected: std::collections::BTreeSet<String>,
}

impl PlotSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Default for LabState {
    fn default() -> Self {
        Preset::DEFAULT.state()
    }
}

impl LabState {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a LabState always serialises")
    }

    /// Parses a lab file or hash payload. Runs whose settings are invalid are dropped and named in
    /// the returned notes; a file with no valid run, an unknown version or malformed JSON is an error.
    pub fn from_json(text: &str) -> Result<(Self, Vec<String>)> {
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::json("lab settings", e))?;
        let Some(obj) = value.as_object_mut() else {
            return Err(Error::Json { what: "lab settings".into(), message: "expected a JSON object {…}".into() });
        };
        if let Some(data) = obj.remove("data") {
            super::weights::open_embedded_data(data)?;
        }
        let version = obj.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != LAB_VERSION as u64 {
            return Err(Error::invalid("version", version, format!("{LAB_VERSION} (the format this build reads)")));
        }
        let state: LabState = serde_path_to_error::deserialize(value).map_err(|e| crate::config::path_error("lab settings", e))?;
        state.checked()
    }

    /// Keeps the valid runs (at most `MAX_RUNS`), reporting what was dropped.
    pub fn checked(mut self) -> Result<(Self, Vec<String>)> {
        let mut notes = Vec::new();
        let w = self.plots.smoothing;
        if !(w.is_finite() && (0.0..=MAX_SMOOTHING).contains(&w)) {
            self.plots.smoothing = if w.is_finite() { w.clamp(0.0, MAX_SMOOTHING) } else { 0.0 };
            notes.push(format!("plots.smoothing = {w} outside 0 ≤ smoothing ≤ {MAX_SMOOTHING}: set to {}", self.plots.smoothing));
        }
        if let Err(e) = self.landscape.validate() {
            notes.push(format!("ignored the landscape settings: {e}"));
            self.landscape = LandscapeSettings::default();
        }
        let probe = RunSpec::default().config(&self.shared);
        // The shared part is checked with a batch that fits any dataset.
        let mut shared_probe = probe.clone();
        shared_probe.batch = 1;
        shared_probe.validate().map_err(|e| Error::Data(format!("shared settings: {e}")))?;
        if self.runs.len() > MAX_RUNS {
            notes.push(format!("kept the first {MAX_RUNS} of {} runs", self.runs.len()));
            self.runs.truncate(MAX_RUNS);
        }
        let shared = self.shared.clone();
        self.runs.retain(|r| match r.config(&shared).validate() {
            Ok(()) => true,
            Err(e) => {
                notes.push(format!("ignored run {}: {e}", r.label()));
                false
            }
        });
        if self.runs.is_empty() {
            return Err(Error::Data(format!("runs: no valid run{}", notes.last().map_or(String::new(), |n| format!(" ({n})")))));
        }
        // The memory budget: runs are kept in order while their weights fit.
        let mut used = 0u64;
        let mut kept = Vec::new();
        for r in std::mem::take(&mut self.runs) {
            let bytes = run_bytes(&r.config(&shared));
            if used + bytes <= LAB_MEMORY_BUDGET {
                used += bytes;
                kept.push(r);
            } else {
                notes.push(format!(
                    "ignored run {}: hidden widths {:?} need about {} of weights, momentum, gradients and snapshots; {} of the lab's {} are left",
                    r.label(),
                    shared.model.hidden,
                    mib(bytes),
                    mib(LAB_MEMORY_BUDGET - used),
                    mib(LAB_MEMORY_BUDGET)
                ));
            }
        }
        self.runs = kept;
        if self.runs.is_empty() {
            return Err(Error::invalid(
                "shared.model.hidden",
                format!("{:?}", shared.model.hidden),
                format!("widths whose runs fit the lab's memory budget of {}: {}", mib(LAB_MEMORY_BUDGET), notes.last().map_or("", String::as_str)),
            ));
        }
        Ok((self, notes))
    }

    /// Reads what the app opens from a file: a lab file, or else one run's config (the format
    /// `samlab train --config` reads), which opens as a lab of that run.
    pub fn open_text(text: &str) -> Result<(Self, Vec<String>)> {
        match Self::from_json(text) {
            Ok(opened) => Ok(opened),
            Err(lab_err) => match RunConfig::from_json(text) {
                Ok(cfg) => Self::from_run_config(&cfg).checked(),
                // The error of the format the text looks like: a lab file has runs or shared settings.
                Err(cfg_err) => {
                    let looks_like_lab = serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.get("runs").is_some() || v.get("shared").is_some());
                    Err(if looks_like_lab { lab_err } else { cfg_err })
                }
            },
        }
    }

    /// As `to_json`, with the CSV file of the shared data inside (`"data": {"name", "csv"}`) when
    /// it is loaded and at most `data::user::EMBED_LIMIT` bytes: a saved lab then opens anywhere.
    pub fn to_json_with_data(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a LabState always serialises");
        if let Some(data) = super::weights::embedded_data(&self.shared.dataset) {
            value["data"] = data;
        }
        serde_json::to_string_pretty(&value).expect("JSON values serialise")
    }

    /// "v1:" + base64url(JSON), for the URL hash (compact JSON).
    pub fn to_hash(&self) -> String {
        let json = serde_json::to_string(self).expect("a LabState always serialises");
        format!("{HASH_PREFIX}{}", base64url::encode(json.as_bytes()))
    }

    /// Reads a URL hash (with or without the leading '#'). `Ok(None)` for an empty hash.
    pub fn from_hash(hash: &str) -> Result<Option<(Self, Vec<String>)>> {
        let hash = hash.trim_start_matches('#').trim();
        if hash.is_empty() {
            return Ok(None);
        }
        let Some(payload) = hash.strip_prefix(HASH_PREFIX) else {
            let version = hash.split(':').next().unwrap_or("");
            return Err(Error::Data(format!(
                "the URL hash starts with {:?}, this build reads {HASH_PREFIX:?} (an outdated or foreign link)",
                version.chars().take(12).collect::<String>()
            )));
        };
        if payload.len() > MAX_LAB_TEXT {
            return Err(Error::invalid("URL hash", format!("{} characters", payload.len()), format!("at most {MAX_LAB_TEXT} characters")));
        }
        let bytes = base64url::decode(payload).ok_or_else(|| Error::Data("the URL hash is not valid base64url".into()))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Data("the URL hash is not UTF-8 text".into()))?;
        Self::from_json(&text).map(Some)
    }

    /// The largest batch every run may use (the training set of the shared data).
    pub fn max_batch(&self) -> usize {
        RunSpec::default().config(&self.shared).n_train().min(crate::config::MAX_BATCH)
    }

    /// Whether every run fits the lab's memory budget together; otherwise the message names the
    /// first run that does not fit, the widths and what is left (the app refuses the change).
    pub fn memory_check(&self) -> std::result::Result<(), String> {
        let mut used = 0u64;
        for r in &self.runs {
            let bytes = run_bytes(&r.config(&self.shared));
            if used + bytes > LAB_MEMORY_BUDGET {
                return Err(format!(
                    "run {} with hidden widths {:?} needs about {} of weights, momentum, gradients and snapshots; {} of the lab's {} are left (narrower layers, fewer runs or the CPU engine fit)",
                    r.label(),
                    self.shared.model.hidden,
                    mib(bytes),
                    mib(LAB_MEMORY_BUDGET - used),
                    mib(LAB_MEMORY_BUDGET)
                ));
            }
            used += bytes;
        }
        Ok(())
    }

    /// Brings every run back into range after a change of the shared settings (a smaller
    /// dataset may not hold a run's batch; m must divide the batch).
    pub fn fit_runs(&mut self) {
        let max = self.max_batch().max(1);
        for r in &mut self.runs {
            r.batch = r.batch.clamp(1, max);
            fit_m(r);
        }
    }
}

impl LabState {
    /// A lab of one run from a run config (a `samlab train --config` file opened in the app).
    pub fn from_run_config(cfg: &RunConfig) -> Self {
        let spec = RunSpec {
            optimizer: cfg.optimizer.clone(),
            batch: cfg.batch,
            epochs: cfg.epochs,
            steps: cfg.steps,
            eval_every: cfg.eval_every,
            measure_every: cfg.measure_every,
            spectrum: false,
            color: 0,
        };
        let shared = Shared { dataset: cfg.dataset.clone(), model: cfg.model.clone(), seed: cfg.seed, split_seed: cfg.split_seed, backend: cfg.backend };
        LabState { version: LAB_VERSION, preset: None, shared, runs: vec![spec], plots: PlotSettings::default(), landscape: LandscapeSettings::default() }
    }
}

/// Parameters of the network a config asks for (inputs and classes of its dataset).
pub fn n_params(cfg: &RunConfig) -> u64 {
    let (inputs, classes) = match cfg.dataset.name {
        DatasetName::Digits => (64, 10),
        DatasetName::Mnist5k => (784, 10),
        DatasetName::Blobs => (2, 3),
        DatasetName::Csv => cfg.dataset.csv.as_ref().map_or((2, 2), |s| (s.features, s.classes as u64)),
        _ => (2, 2),
    };
    let mut sizes = vec![inputs as u64];
    sizes.extend(cfg.model.hidden.iter().map(|&w| w as u64));
    sizes.push(classes);
    sizes.windows(2).fold(0u64, |n, w| n.saturating_add(w[0].saturating_add(1).saturating_mul(w[1])))
}

/// The memory one run of the lab holds, estimated: f32 weights, momentum, gradient and
/// perturbed weights plus a working copy (5 vectors), the landscape snapshots (at least 4,
/// see `Lab`), and m-SAM's batch/m weight copies when a GPU may train it.
pub fn run_bytes(cfg: &RunConfig) -> u64 {
    let p = n_params(cfg);
    let copies = if cfg.optimizer.kind.uses_m() && cfg.backend != Backend::Cpu { (cfg.batch / cfg.optimizer.m.max(1)) as u64 } else { 0 };
    let snapshots = ((16u64 << 20) / (4 * p.max(1))).clamp(4, 64);
    p.saturating_mul(4 * (5 + snapshots + copies))
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 30 { format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64) } else { format!("{} MiB", bytes.div_ceil(1 << 20)) }
}

/// Sets m to the largest divisor of the batch that is ≤ m (m-SAM needs m | B).
pub fn fit_m(r: &mut RunSpec) {
    if r.optimizer.m == 0 || !r.batch.is_multiple_of(r.optimizer.m) {
        let m = r.optimizer.m.max(1);
        r.optimizer.m = divisors(r.batch).into_iter().filter(|&d| d <= m).max().unwrap_or(1);
    }
}

/// One-click starting points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    MoonsSgdVsSam,
    MSharpness,
    LabelNoise,
    RwSamTemperature,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::MoonsSgdVsSam, Preset::MSharpness, Preset::LabelNoise, Preset::RwSamTemperature];
    /// What the app opens on the first time: small and fast everywhere, with a decision surface.
    pub const DEFAULT: Preset = Preset::MoonsSgdVsSam;

    pub fn title(self) -> &'static str {
        match self {
            Preset::MoonsSgdVsSam => "moons: SGD vs SAM",
            Preset::MSharpness => "m-sharpness",
            Preset::LabelNoise => "label noise: SGD vs SAM vs RW-SAM",
            Preset::RwSamTemperature => "RW-SAM temperature",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Preset::MoonsSgdVsSam => "Two moons with noisy inputs, a 2-64-64-2 MLP: SGD and SAM (ρ = 0.05) from the same weights. Watch the decision surfaces.",
            Preset::MSharpness => {
                "Digits with 40 % label noise, batch 128: m-SAM with m = 128 (= SAM), 32, 8 and 1. The paper's claim: smaller m generalises better."
            }
            Preset::LabelNoise => {
                "Digits with 40 % label noise: SGD, SAM and RW-SAM (λ = 1). Compare best test accuracy and how many noisy labels each memorises."
            }
            Preset::RwSamTemperature => {
                "Digits with 20 % label noise: RW-SAM with scale-free scores (s divided by its batch mean) and λ = 0 (= SAM), 1, 4, 16: ESS falls as λ grows."
            }
        }
    }

    pub fn state(self) -> LabState {
        let digits = |noise: f64| Shared {
            dataset: DataConfig { name: DatasetName::Digits, label_noise: noise, ..DataConfig::default() },
            model: ModelConfig::default(),
            seed: 0,
            split_seed: None,
            backend: Backend::Auto,
        };
        let (shared, runs) = match self {
            Preset::MoonsSgdVsSam => {
                let shared = Shared {
                    dataset: DataConfig { name: DatasetName::Moons, samples: 600, input_noise: 0.25, ..DataConfig::default() },
                    model: ModelConfig { hidden: vec![64, 64], ..ModelConfig::default() },
                    seed: 0,
                    split_seed: None,
                    backend: Backend::Auto,
                };
                let runs = [OptimizerKind::Sgd, OptimizerKind::Sam]
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| {
                        let mut r = RunSpec::with(k, i);
                        r.batch = 32;
                        r.epochs = 150;
                        r.optimizer.lr = 0.05;
                        r
                    })
                    .collect();
                (shared, runs)
            }
            Preset::MSharpness => {
                let runs = [128, 32, 8, 1]
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let mut r = RunSpec::with(OptimizerKind::Msam, i);
                        r.optimizer.m = m;
                        r.batch = 128;
                        r.epochs = 60;
                        r
                    })
                    .collect();
                (digits(0.4), runs)
            }
            Preset::LabelNoise => {
                let runs = [OptimizerKind::Sgd, OptimizerKind::Sam, OptimizerKind::Rwsam]
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| RunSpec { epochs: 60, ..RunSpec::with(k, i) })
                    .collect();
                (digits(0.4), runs)
            }
            Preset::RwSamTemperature => {
                let runs = [0.0, 1.0, 4.0, 16.0]
                    .into_iter()
                    .enumerate()
                    .map(|(i, lambda)| {
                        let mut r = RunSpec { epochs: 60, ..RunSpec::with(OptimizerKind::Rwsam, i) };
                        r.optimizer.rwsam.lambda = lambda;
                        r.optimizer.rwsam.normalize = true;
                        r
                    })
                    .collect();
                (digits(0.2), runs)
            }
        };
        LabState { version: LAB_VERSION, preset: Some(self), shared, runs, plots: PlotSettings::default(), landscape: LandscapeSettings::default() }
    }
}

pub use super::link::{Layout, Link, Panel, View};

/// Base64 with the URL alphabet and no padding (RFC 4648 §5), for the URL hash.
pub mod base64url {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    /// Reads what links carry: the URL alphabet or the standard one, padded or not.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent).with_decode_allow_trailing_bits(true),
    );

    pub fn encode(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `None` on a character outside the alphabet or an impossible length. Accepts '+' and '/'
    /// and trailing '=' as well (standard base64).
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text: String = text
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        LENIENT.decode(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        for n in 0..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64url::encode(&bytes);
            assert!(!text.contains(['+', '/', '=']));
            assert_eq!(base64url::decode(&text).unwrap(), bytes, "length {n}");
        }
        assert_eq!(base64url::encode(b"hello"), "aGVsbG8");
        assert!(base64url::decode("a").is_none());
        assert!(base64url::decode("ab*d").is_none());
    }

    #[test]
    fn every_preset_is_valid_and_round_trips_through_the_hash() {
        for p in Preset::ALL {
            let state = p.state();
            let (back, notes) = LabState::from_hash(&format!("#{}", state.to_hash())).unwrap().unwrap();
            assert_eq!(back, state, "{p:?}");
            assert!(notes.is_empty(), "{notes:?}");
            // Links name presets as JSON does.
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.name()));
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
        let m: Vec<usize> = Preset::MSharpness.state().runs.iter().map(|r| r.optimizer.m).collect();
        assert_eq!(m, [128, 32, 8, 1]);
    }

    #[test]
    fn bad_hashes_and_files_are_errors_that_say_why() {
        assert!(LabState::from_hash("").unwrap().is_none());
        assert!(LabState::from_hash("#").unwrap().is_none());
        let e = LabState::from_hash("#v0:abc").unwrap_err().to_string();
        assert!(e.contains("outdated"), "{e}");
        assert!(LabState::from_hash("#v1:!!!").unwrap_err().to_string().contains("base64url"));
        let garbage = base64url::encode(b"{not json");
        assert!(LabState::from_hash(&format!("v1:{garbage}")).unwrap_err().to_string().contains("malformed JSON"));
        let old = base64url::encode(br#"{"version": 0, "runs": []}"#);
        assert!(LabState::from_hash(&format!("v1:{old}")).unwrap_err().to_string().contains("version"));
        for text in ["", "[]", "{}", r#"{"version":1,"runs":[]}"#, r#"{"version":1,"shared":{"seed":-1}}"#] {
            assert!(LabState::from_json(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_run_config_opens_as_a_lab_of_that_run() {
        let state = Preset::LabelNoise.state();
        let cfg = state.runs[2].config(&state.shared);
        let lab = LabState::from_run_config(&cfg);
        assert_eq!(lab.runs.len(), 1);
        assert_eq!(lab.runs[0].config(&lab.shared), cfg);
    }

    #[test]
    fn runs_beyond_the_memory_budget_are_named_and_dropped() {
        let mut state = Preset::LabelNoise.state();
        state.shared.model.hidden = vec![4096; 3];
        state.runs = vec![RunSpec::default(); 6];
        let (ok, notes) = LabState::from_json(&state.to_json()).unwrap();
        assert!(ok.runs.len() < 6 && !ok.runs.is_empty(), "{}", ok.runs.len());
        assert!(notes.iter().all(|n| n.contains("[4096, 4096, 4096]") && n.contains("GiB")), "{notes:?}");
        state.shared.model.hidden = vec![4096; 8];
        state.shared.dataset.name = DatasetName::Mnist5k;
        let e = LabState::from_json(&state.to_json()).unwrap_err().to_string();
        assert!(e.contains("shared.model.hidden") && e.contains("memory budget"), "{e}");
    }

    #[test]
    fn plot_settings_travel_with_the_lab_and_older_files_load_without_them() {
        let mut state = Preset::LabelNoise.state();
        assert!(!state.to_json().contains("plots"), "default plot settings are not written");
        state.plots.smoothing = 0.6;
        state.plots.log_y.insert("plot_loss".into());
        let (back, notes) = LabState::from_hash(&state.to_hash()).unwrap().unwrap();
        assert_eq!((back, notes.len()), (state.clone(), 0));
        state.plots.smoothing = 7.0;
        let (back, notes) = LabState::from_json(&state.to_json()).unwrap();
        assert_eq!(back.plots.smoothing, MAX_SMOOTHING);
        assert!(notes[0].contains("plots.smoothing = 7"), "{notes:?}");
    }

    #[test]
    fn invalid_runs_are_dropped_and_named() {
        let mut state = Preset::MSharpness.state();
        state.runs[1].optimizer.m = 7;
        state.runs[2].optimizer.lr = -1.0;
        let (ok, notes) = LabState::from_json(&state.to_json()).unwrap();
        assert_eq!(ok.runs.len(), 2);
        assert_eq!(notes.len(), 2);
        assert!(notes[0].contains("optimizer.m") && notes[1].contains("optimizer.lr"), "{notes:?}");
    }
}
