//! A soak of the lab without a window: six runs training while a scripted user adds, removes,
//! duplicates and resets runs, changes settings, switches presets, opens links, asks for
//! landscapes and draws a new seed every 200 ms. It must never panic, and resident memory must
//! not grow: the actions cycle through every preset, so after the first full cycle (warm-up) the
//! allocator has seen every state, and the peak of the last cycle stays within 5 % of the first
//! cycle's peak. `SAMLAB_SOAK_SECONDS` sets the length (60 s in the suite; `cargo xtask soak
//! --minutes N` runs it longer, in the release profile).

use samlab::config::OptimizerKind;
use samlab::engine::EngineChoice;
use samlab::lab::{Lab, LabState, Preset};
use samlab::rng::Rng;
use std::time::{Duration, Instant};

/// Resident set size in bytes (Linux), or None elsewhere.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// One scripted user action, chosen by the seeded stream.
fn act(lab: &mut Lab, rng: &mut Rng, k: usize) -> &'static str {
    let n = lab.runs.len();
    match rng.below(9) {
        0 => {
            lab.add_run(OptimizerKind::ALL[k % OptimizerKind::ALL.len()]);
            "add"
        }
        1 if n > 1 => {
            lab.remove(rng.below(n));
            "remove"
        }
        2 => {
            lab.duplicate(rng.below(n));
            "duplicate"
        }
        3 => {
            lab.reset(rng.below(n));
            "reset"
        }
        4 => {
            let i = rng.below(n);
            let mut spec = lab.state.runs[i].clone();
            spec.optimizer.lr = [0.01, 0.05, 0.1][rng.below(3)];
            spec.optimizer.rho = [0.0, 0.05, 0.2][rng.below(3)];
            spec.batch = [16, 32, 64][rng.below(3)];
            lab.set_spec(i, spec);
            "settings"
        }
        5 => {
            lab.apply_preset(Preset::ALL[k % Preset::ALL.len()]);
            "preset"
        }
        6 => {
            let hash = Preset::ALL[(k + 1) % Preset::ALL.len()].state().to_hash();
            if let Ok(Some((state, _))) = LabState::from_hash(&hash) {
                lab.set_state(state);
            }
            "link"
        }
        7 => {
            lab.start_landscape(rng.below(n), None);
            "landscape"
        }
        _ => {
            lab.new_seed();
            "seed"
        }
    }
}

#[test]
fn the_lab_survives_a_scripted_user_without_growing() {
    let seconds: f64 = std::env::var("SAMLAB_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60.0);
    let mut state = Preset::MSharpness.state();
    state.runs.truncate(4);
    let mut lab = Lab::new(state, EngineChoice::cpu("soak"));
    while lab.can_add() {
        lab.add_run(OptimizerKind::Sam);
    }
    assert_eq!(lab.runs.len(), 6);
    let mut rng = Rng::new(7);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let cycle = Duration::from_secs_f64(seconds / 4.0);
    let (mut peaks, mut peak) = (Vec::new(), 0u64);
    let (mut next_action, mut next_cycle, mut k, mut frames) = (start, start + cycle, 0usize, 0u64);
    let mut counts = std::collections::BTreeMap::new();
    while Instant::now() < end {
        lab.tick();
        lab.refresh_views(Duration::from_millis(50));
        frames += 1;
        if Instant::now() >= next_action {
            *counts.entry(act(&mut lab, &mut rng, k)).or_insert(0) += 1;
            k += 1;
            next_action += Duration::from_millis(200);
            // Keep six runs training most of the time.
            lab.set_all_playing(true);
        }
        if let Some(r) = rss() {
            peak = peak.max(r);
        }
        if Instant::now() >= next_cycle {
            peaks.push(peak);
            peak = 0;
            next_cycle += cycle;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    eprintln!("soak: {seconds:.0} s, {frames} frames, actions {counts:?}, peak RSS per quarter {:?} MB", peaks.iter().map(|p| p / (1 << 20)).collect::<Vec<_>>());
    assert!(k >= (seconds * 4.0) as usize, "only {k} actions in {seconds} s");
    if peaks.len() >= 3 {
        let (warm, last) = (peaks[0].max(peaks[1]), *peaks.last().unwrap());
        assert!(last as f64 <= 1.05 * warm as f64, "resident memory grew: peak {} MB after warm-up {} MB", last >> 20, warm >> 20);
    }
}
