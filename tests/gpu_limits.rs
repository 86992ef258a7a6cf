//! The GPU engine within device limits that lavapipe does not enforce the way real GPUs do:
//! every dispatch grid of the largest model the settings accept fits 65,535 workgroups per
//! dimension (a dry run of the step program, no device needed), a SAM step on a model whose
//! `perturb` grid needed the tiling runs and matches the CPU engine, weight copies whose indices
//! would pass u32 are refused with the field named, and adapters or shared devices below what the
//! kernels need get the engine's message.
//!
//! The GPU tests print why and pass without an adapter, unless SAMLAB_REQUIRE_GPU=1.

mod common;

use common::assert_close;
use samlab::config::{DatasetName, OptimizerKind, RunConfig};
use samlab::data::{BatchOrder, Dataset};
use samlab::engine::cpu::CpuEngine;
use samlab::engine::gpu::context::{check_adapter_limits, check_device_limits};
use samlab::engine::gpu::program::{check_weight_copies, dispatch_grids};
use samlab::engine::gpu::record::{MAX_WORKGROUPS_PER_DIM, tile_grid};
use samlab::engine::gpu::{GpuContext, GpuEngine};
use samlab::engine::{Engine, Request, Response, StepPlan};
use samlab::model::{Activation, MlpSpec};
use std::sync::Arc;

/// The shared GPU device of these tests (see `GpuContext::for_tests`).
fn context() -> Option<GpuContext> {
    GpuContext::for_tests("gpu_limits")
}

#[test]
fn tile_grid_splits_only_what_exceeds_the_limit() {
    let l = MAX_WORKGROUPS_PER_DIM;
    assert_eq!(l, 65535);
    // Logical (x, y) → physical (x₀, x₁, y) with x = x₀ + x₁·nwg.x covering every logical x.
    assert_eq!(tile_grid(1, 1, l), Some([1, 1, 1]));
    assert_eq!(tile_grid(65535, 7, l), Some([65535, 1, 7]));
    assert_eq!(tile_grid(65536, 7, l), Some([32768, 2, 7]), "balanced: at most one workgroup per row to spare");
    for x in [65536u64, 91_009, 1_886_209, 65535 * 65535] {
        let g = tile_grid(x, 4096, l).unwrap();
        assert!(g.iter().all(|&d| d <= l), "{x}: {g:?}");
        assert!(g[0] as u64 * g[1] as u64 >= x && (g[0] as u64 * (g[1] as u64 - 1)) < x, "{x}: {g:?} covers x with less than one row to spare");
    }
    assert_eq!(tile_grid(65535 * 65535 + 1, 1, l), None);
    assert_eq!(tile_grid(1, 65536, l), None);
    assert_eq!(tile_grid(0, 0, l), Some([1, 1, 1]), "empty work still dispatches one (guarded) workgroup");
}

/// The largest model `RunConfig::validate` accepts: mnist5k's 784 inputs, MAX_LAYERS hidden
/// layers of MAX_WIDTH, the largest batch, and m = 1 (M = B weight copies).
fn largest(kind: OptimizerKind) -> RunConfig {
    let mut cfg = RunConfig::default();
    cfg.dataset.name = DatasetName::Mnist5k;
    cfg.dataset.test_fraction = Some(0.1);
    cfg.model.hidden = vec![samlab::config::MAX_WIDTH; samlab::config::MAX_LAYERS];
    cfg.batch = samlab::config::MAX_BATCH;
    cfg.optimizer.kind = kind;
    cfg.optimizer.m = 1;
    cfg.optimizer.rwsam.target_ess = Some(0.5);
    cfg.validate().expect("the largest accepted configuration");
    cfg
}

#[test]
fn every_dispatch_of_the_largest_accepted_model_fits_65535_workgroups_per_dimension() {
    // One more of anything is refused by the settings, so these are the largest grids.
    let mut wider = largest(OptimizerKind::Sam);
    wider.model.hidden[0] += 1;
    assert!(wider.validate().is_err());
    let mut deeper = largest(OptimizerKind::Sam);
    deeper.model.hidden.push(1);
    assert!(deeper.validate().is_err());
    let mut bigger = largest(OptimizerKind::Sam);
    bigger.batch += 1;
    assert!(bigger.validate().is_err());

    for kind in OptimizerKind::ALL {
        let cfg = largest(kind);
        let n_train = cfg.n_train();
        let spec = MlpSpec::new(784, &cfg.model.hidden, 10, cfg.model.activation);
        let grids = dispatch_grids(&cfg, &spec, n_train, 5000 - n_train).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(grids.len() > 10, "{kind:?}: {} dispatches", grids.len());
        let worst = grids.iter().flat_map(|(_, g)| *g).max().unwrap();
        for (kernel, g) in &grids {
            assert!(g.iter().all(|&d| (1..=65535).contains(&d)), "{kind:?}: {kernel:?} dispatches {g:?}");
        }
        eprintln!("{kind:?}: {} parameters, {} dispatches, largest grid dimension {worst}", spec.n_params(), grids.len());
    }
    // The grid that used to fail: perturb over ⌈P/64⌉ = 1,886,209 workgroups in x.
    let spec = MlpSpec::new(784, &[4096; 8], 10, Activation::Relu);
    assert!(spec.n_params().div_ceil(64) > 65535 * 28);
}

#[test]
fn weight_copies_past_u32_indices_or_the_binding_are_refused_naming_optimizer_m() {
    // 120.7M parameters, B = 4096, m = 1 on a device that would bind 1 TiB: M·P ≥ 2³² would wrap
    // the shaders' u32 indices, so the engine asks for an m whose copies stay below 2³².
    let p = MlpSpec::new(784, &[4096; 8], 10, Activation::Relu).n_params();
    let err = check_weight_copies(4096, 1, p, 1 << 40).unwrap_err().to_string();
    assert!(err.contains("optimizer.m") && err.contains("2^32"), "{err}");
    // The suggested m is the smallest divisor of B whose B/m copies fit.
    let m: usize = err.split("e.g. m = ").nth(1).and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next()).and_then(|s| s.parse().ok()).expect(&err);
    assert_eq!(4096 % m, 0);
    assert!(((4096 / m) * p) < 1 << 32 && ((4096 / (m / 2)) * p) >= 1 << 32, "m = {m}");
    assert!(check_weight_copies(4096, m, p, 1 << 40).is_ok());
    // Within u32 but beyond the binding: the binding limit is named.
    let err = check_weight_copies(512, 1, 5_824_522, 128 << 20).unwrap_err().to_string();
    assert!(err.contains("optimizer.m") && err.contains("max_storage_buffer_binding_size"), "{err}");
    // Not even one copy fits: no m helps, the message says so.
    let err = check_weight_copies(64, 64, 40_000_000, 128 << 20).unwrap_err().to_string();
    assert!(err.contains("optimizer.m") && err.contains("one copy"), "{err}");
}

#[test]
fn adapters_and_devices_below_the_kernels_needs_get_the_engines_message() {
    let downlevel = wgpu::Limits::downlevel_defaults();
    let err = check_adapter_limits("Tiny GPU", &downlevel).unwrap_err().to_string();
    assert!(err.contains("Tiny GPU") && err.contains("max_storage_buffers_per_shader_stage") && err.contains("CPU engine"), "{err}");
    let err = check_device_limits("Tiny GPU", &downlevel).unwrap_err().to_string();
    // The dense family binds 7 storage buffers; 4 is the downlevel limit.
    assert!(err.contains("max_storage_buffers_per_shader_stage = 4") && err.contains("7"), "{err}");
    let six = wgpu::Limits { max_storage_buffers_per_shader_stage: 6, ..wgpu::Limits::default() };
    assert!(check_device_limits("Six", &six).is_err());
    let requested =
        check_adapter_limits("Big GPU", &wgpu::Limits { max_storage_buffer_binding_size: 1 << 31, max_buffer_size: 1 << 32, ..wgpu::Limits::default() })
            .unwrap();
    assert_eq!(requested.max_storage_buffer_binding_size, 1 << 31, "the storage sizes take what the adapter offers");
    assert_eq!(requested.max_storage_buffers_per_shader_stage, wgpu::Limits::default().max_storage_buffers_per_shader_stage);
    assert!(check_device_limits("Default", &wgpu::Limits::default()).is_ok());
}

#[test]
fn sam_step_on_a_model_past_the_old_perturb_grid_limit_matches_the_cpu_engine() {
    let Some(ctx) = context() else { return };
    // mnist5k 784→2048→2048→10: 5,824,522 parameters, ⌈P/64⌉ = 91,009 workgroups of perturb,
    // past the 65,535 that a one-dimensional dispatch allows (4,194,240 parameters). Its 23 MiB
    // per parameter vector fit lavapipe's 128 MiB binding limit.
    let mut cfg = RunConfig::default();
    cfg.dataset.name = DatasetName::Mnist5k;
    cfg.model.hidden = vec![2048, 2048];
    cfg.batch = 16;
    cfg.optimizer.kind = OptimizerKind::Sam;
    cfg.optimizer.rho = 0.05;
    let data = Arc::new(Dataset::load(&cfg.dataset, cfg.seed).unwrap());
    let spec = samlab::setup::spec_for(&cfg, &data);
    assert_eq!(spec.n_params(), 5_824_522);
    assert!(spec.n_params().div_ceil(64) > 65535);
    let w0 = spec.init(0);
    let mut gpu = GpuEngine::new(ctx, &cfg, data.clone(), &w0).unwrap();
    let mut cpu = CpuEngine::<f64>::new(&cfg, data.clone(), &w0).unwrap();
    let indices = BatchOrder::new(data.n_train(), cfg.batch, 0).indices(0);
    let t = std::time::Instant::now();
    gpu.submit(Request::Steps(vec![StepPlan { step: 0, indices: indices.clone(), lr: 0.05 }])).unwrap();
    let Some(Response::Step { report: g, .. }) = gpu.finish().unwrap().pop() else { panic!("no step report") };
    eprintln!("GPU SAM step on {} parameters: {:.2} s", spec.n_params(), t.elapsed().as_secs_f64());
    let c = cpu.step_now(0, &indices, 0.05);
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    eprintln!("loss {} vs {}, perturbed {} vs {}, ‖g‖ {:?} vs {:?}", g.loss, c.loss, g.perturbed_loss, c.perturbed_loss, g.grad_norm, c.grad_norm);
    assert!(rel(g.loss, c.loss) < 1e-4 && rel(g.perturbed_loss, c.perturbed_loss) < 1e-4, "{g:?} vs {c:?}");
    assert!(rel(g.grad_norm.unwrap(), c.grad_norm.unwrap()) < 1e-4);
    gpu.submit(Request::ReadParams { tag: samlab::engine::ParamsTag::Blocking }).unwrap();
    let Some(Response::Params { params, .. }) = gpu.finish().unwrap().pop() else { panic!("no params") };
    let got: Vec<f64> = params.iter().map(|&v| v as f64).collect();
    let scale = cpu.params().iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // The output layer sits at the end of the parameter vector, in the part of perturb's grid
    // past 65,535 workgroups: had it not been perturbed, the perturbed loss would be off.
    assert_close("params after one SAM step", &got, cpu.params(), 1e-5 * scale, 1e-4);
}

#[test]
fn on_a_shared_device_the_owners_error_handler_stays_and_the_engines_errors_come_back_to_it() {
    if context().is_none() {
        return;
    }
    // The "renderer": a device of its own with its own uncaptured-error handler.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let instance = wgpu::Instance::new(desc);
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let owner_saw = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = owner_saw.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| sink.lock().unwrap().push(e.to_string())));
    let ctx = GpuContext::from_device(device.clone(), queue, adapter.get_info(), &adapter.get_downlevel_capabilities()).unwrap();
    // The engine trains on it without disturbing the owner.
    let mut cfg = RunConfig::default();
    cfg.model.hidden = vec![16];
    cfg.batch = 32;
    let data = Arc::new(Dataset::load(&cfg.dataset, cfg.seed).unwrap());
    let spec = samlab::setup::spec_for(&cfg, &data);
    let mut gpu = GpuEngine::new(ctx.clone(), &cfg, data.clone(), &spec.init(0)).unwrap();
    let indices = BatchOrder::new(data.n_train(), cfg.batch, 0).indices(0);
    gpu.submit(Request::Steps(vec![StepPlan { step: 0, indices, lr: 0.05 }])).unwrap();
    assert_eq!(gpu.finish().unwrap().len(), 1);
    let invalid = wgpu::BufferDescriptor {
        label: Some("invalid on purpose"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE,
        mapped_at_creation: false,
    };
    // An error of the engine's own work is the engine's, not the owner's…
    ctx.scoped(|| device.create_buffer(&invalid));
    assert!(ctx.take_error().is_some_and(|e| e.contains("invalid on purpose") || e.contains("usage")), "the engine's scope lost its error");
    assert!(owner_saw.lock().unwrap().is_empty(), "the owner's handler saw the engine's error: {:?}", owner_saw.lock().unwrap());
    // …and the owner's errors still reach the owner's handler.
    let _owners = device.create_buffer(&invalid);
    assert_eq!(owner_saw.lock().unwrap().len(), 1, "the engine replaced the owner's error handler");
    assert!(ctx.take_error().is_none());
}

/// Submits are sized by measured device time: with a budget no step fits, every submit holds one
/// step; with a generous one, as many as the buffers hold. The steps are the same either way.
#[test]
fn submits_are_sized_by_device_time_and_the_steps_do_not_depend_on_it() {
    let Some(ctx) = context() else { return };
    let mut cfg = RunConfig { batch: 8, ..RunConfig::default() };
    cfg.dataset.name = DatasetName::Moons;
    cfg.dataset.samples = 200;
    cfg.model.hidden = vec![16];
    cfg.optimizer.kind = OptimizerKind::Sam;
    let data = Arc::new(Dataset::load(&cfg.dataset, cfg.seed).unwrap());
    let init = samlab::setup::spec_for(&cfg, &data).init(cfg.seed);
    let mut order = BatchOrder::new(data.n_train(), cfg.batch, cfg.seed);
    let plans: Vec<StepPlan> = (0..70).map(|t| StepPlan { step: t, indices: order.indices(t), lr: 0.05 }).collect();
    let run = |budget: std::time::Duration| {
        let mut gpu = GpuEngine::new(ctx.clone(), &cfg, data.clone(), &init).unwrap();
        gpu.set_submit_budget(budget);
        assert_eq!(gpu.submit_sizing().map(|s| s.0), Some(4), "before any measurement");
        gpu.submit(Request::Steps(plans.clone())).unwrap();
        let steps = gpu.finish().unwrap().iter().filter(|r| matches!(r, Response::Step { .. })).count();
        assert_eq!(steps, 70);
        gpu.submit(Request::ReadParams { tag: samlab::engine::ParamsTag::Blocking }).unwrap();
        let Some(Response::Params { params, .. }) = gpu.finish().unwrap().pop() else { panic!("no parameters") };
        (gpu.submit_sizing().unwrap(), params)
    };
    let ((tight, ms), a) = run(std::time::Duration::from_nanos(1));
    assert_eq!(tight, 1, "a budget no step fits still submits one step at a time");
    assert!(ms.is_some_and(|ms| ms > 0.0), "the device time per step was measured: {ms:?}");
    let ((loose, _), b) = run(std::time::Duration::from_secs(100));
    assert_eq!(loose, samlab::engine::gpu::MAX_STEPS_PER_SUBMIT);
    assert!(a == b, "the parameters depend on how the steps were split into submits");
}
