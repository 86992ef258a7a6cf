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
    assert!(lab.runs.iter().all(|r| r.completed() > 0 && r.error.is_none()), "the CPU runs do not train: {:?}", lab.runs.iter().map(|r| &r.error).collect::<Vec<_>>());
    let note = lab.runs[0].note.clone().unwrap_or_default();
    assert!(note.contains("GPU engine failed") && note.contains("restarted on the CPU"), "{note}");
    assert!(lab.engine.describe().contains("GPU engine failed"), "{}", lab.engine.describe());
}
