//! A GPU lost while the lab trains (the device destroyed mid-run, as a driver reset or a closed
//! browser tab does): the lab carries on with the CPU engine and says why; nothing panics.
//! On lavapipe in CI; skips without an adapter unless SAMLAB_REQUIRE_GPU=1.

use samlab::config::Backend;
use samlab::engine::EngineChoice;
use samlab::engine::gpu::GpuContext;
use samlab::lab::{Lab, Preset};

#[test]
fn a_lost_device_moves_the_lab_to_the_cpu_engine_with_a_message() {
    let Some(ctx) = GpuContext::for_tests("device_loss") else { return };
    // A device of the lab's own, so destroying it leaves the other tests' device alone.
    let ctx = GpuContext::request_blocking().unwrap_or(ctx);
    let mut state = Preset::MoonsSgdVsSam.state();
    state.shared.backend = Backend::Gpu;
    let mut lab = Lab::new(state, EngineChoice::with_gpu(ctx.clone()));
    assert!(lab.runs.iter().all(|r| r.asynchronous), "{:?}", lab.runs.iter().map(|r| &r.error).collect::<Vec<_>>());
    for _ in 0..20_000 {
        if lab.runs.iter().all(|r| r.completed() >= 8) {
            break;
        }
        lab.tick();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(lab.runs.iter().all(|r| r.completed() >= 8), "the GPU runs did not train");
    ctx.device.destroy();
    for _ in 0..20_000 {
        if lab.runs.iter().all(|r| !r.asynchronous && r.completed() > 0) {
            break;
        }
        lab.tick();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(lab.runs.iter().all(|r| !r.asynchronous), "a run is still on the lost GPU: {:?}", lab.runs.iter().map(|r| (&r.note, &r.error)).collect::<Vec<_>>());
    assert!(
        lab.runs.iter().all(|r| r.completed() > 0 && r.error.is_none()),
        "the CPU runs do not train: {:?}",
        lab.runs.iter().map(|r| &r.error).collect::<Vec<_>>()
    );
    let note = lab.runs[0].note.clone().unwrap_or_default();
    assert!(note.contains("GPU engine failed") && note.contains("restarted on the CPU"), "{note}");
    assert!(lab.engine.describe().contains("GPU engine failed"), "{}", lab.engine.describe());
}

/// The command line's path: `train` on a GPU that is lost mid-run stops with an error that is
/// one line naming the GPU, and exit status 1 (the work failed, the input was fine); no hang.
#[test]
fn a_lost_device_fails_the_cli_run_with_one_line_and_status_1() {
    use samlab::config::{DatasetName, RunConfig};
    use samlab::engine::gpu::GpuEngine;
    let Some(_) = GpuContext::for_tests("device_loss_cli") else { return };
    let Ok(ctx) = GpuContext::request_blocking() else { return };
    let mut cfg = RunConfig::default();
    cfg.dataset.name = DatasetName::Moons;
    cfg.backend = Backend::Gpu;
    cfg.model.hidden = vec![16];
    cfg.steps = Some(10_000_000);
    cfg.eval_every = 50;
    let (data, init) = samlab::setup::prepare(&cfg).expect("moons");
    let engine = GpuEngine::new(ctx.clone(), &cfg, data.clone(), &init).expect("a GPU engine");
    let device = ctx.device.clone();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        device.destroy();
    });
    let started = std::time::Instant::now();
    let result = samlab::cli::train_on(Box::new(engine), cfg, data, init, &indicatif::ProgressBar::hidden());
    killer.join().unwrap();
    let e = result.err().expect("training on a destroyed device must fail");
    let line = samlab::cli::error_line(&e);
    eprintln!("{line}");
    assert_eq!(e.exit_code(), 1, "{line}");
    assert!(!line.contains('\n') && line.starts_with("error: ") && line.to_lowercase().contains("gpu"), "{line}");
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "the failure took {:?}", started.elapsed());
}
