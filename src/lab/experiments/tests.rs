//! The experiments view's job: live trials give the CLI's numbers, nothing waits on a device
//! or a worker, stop and failures keep what was done.

use super::drift_job::DriftJob;
use super::trial::Phase;
use super::*;
use crate::experiments::drift::{DriftConfig, drift_check};
use crate::setup::prepare;

fn run_to_end(job: &mut ExperimentJob) {
    let start = Instant::now();
    while job.is_running() && start.elapsed() < Duration::from_secs(300) {
        job.tick(Duration::from_millis(2));
        assert!(job.live_runs() <= GPU_PARALLEL + MAX_WAITING);
        if job.live.iter().any(|t| t.phase == Phase::Measuring) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(job.state, JobState::Finished, "{:?}", job.problems);
}

/// Everything but the timings (wall-clock dependent by nature).
fn untimed(mut r: TrialResult) -> TrialResult {
    r.ms_per_step = 0.0;
    r.seconds_to_target = None;
    r
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_quick_experiment_ticked_live_gives_the_clis_numbers() {
    let mut job = ExperimentJob::start(Experiment::NoiseTrace, 1, true, &EngineChoice::cpu("test"));
    assert_eq!(job.options.backend, Backend::Cpu);
    assert_eq!(job.total(), 4);
    run_to_end(&mut job);
    assert_eq!(job.live_runs(), 0);
    assert!(job.problems.is_empty(), "{:?}", job.problems);
    let live = job.results();
    assert_eq!(live.len(), 4);
    for (trial, got) in job.trials.iter().zip(&live) {
        let cli = crate::cli::experiment::run_trial(trial).unwrap();
        assert!(got.trace_v.is_some() && got.lambda_max.is_some() && got.ms_per_step > 0.0);
        assert_eq!(untimed(got.clone()), untimed(cli), "{}", trial.series);
    }
    assert_eq!(job.summary().table, markdown_table(Experiment::NoiseTrace, &live));
    assert_eq!(job.summary().verdicts, verdicts(Experiment::NoiseTrace, &live, job.options.quick));
    assert_eq!(job.summary().panels.len(), 3);
    let json: serde_json::Value = serde_json::from_str(&job.json()).unwrap();
    assert_eq!(json["trials"].as_array().unwrap().len(), 4);
    assert_eq!(json["results"].as_array().unwrap().len(), 4);
    assert!(json["verdicts"].as_array().is_some_and(|v| !v.is_empty()));
    assert!(job.markdown().contains("| SGD | – |"));
}

/// The GPU engine on lavapipe (or a real GPU): two trials at a time, each with one submission
/// in flight, weights read back asynchronously; `cost` compares both engines. Skips without
/// an adapter unless SAMLAB_REQUIRE_GPU=1.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_quick_experiment_runs_on_the_gpu_engine_without_waiting() {
    let Some(ctx) = crate::engine::gpu::GpuContext::for_tests("lab::experiments::a_quick_experiment_runs_on_the_gpu_engine") else { return };
    let mut engine = EngineChoice::with_gpu(ctx);
    engine.preference = Backend::Gpu;
    let mut job = ExperimentJob::start(Experiment::NoiseTrace, 1, true, &engine);
    assert_eq!((job.options.backend, job.parallel), (Backend::Gpu, GPU_PARALLEL));
    // No timing: a tick that waited on the device would never return with work in flight.
    let mut returned_while_busy = false;
    let mut two_at_once = false;
    let start = Instant::now();
    while job.is_running() && start.elapsed() < Duration::from_secs(300) {
        job.tick(Duration::from_millis(2));
        returned_while_busy |= job.live.iter().any(|t| t.phase == Phase::Training && t.run.is_busy());
        two_at_once |= job.live.iter().filter(|t| t.phase == Phase::Training).count() == 2;
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(job.state, JobState::Finished, "{:?}", job.problems);
    assert!(job.problems.is_empty(), "{:?}", job.problems);
    assert!(returned_while_busy && two_at_once);
    let results = job.results();
    assert_eq!(results.len(), 4);
    for (trial, r) in job.trials.iter().zip(&results) {
        assert!(r.engine.starts_with("GPU"), "{}", r.engine);
        assert!(r.trace_v.is_some_and(f64::is_finite) && r.final_test_acc > 0.5, "{r:?}");
        assert_eq!(r.steps, trial.config.total_steps());
    }
    let cost = trials(Experiment::Cost, &ExperimentJob::start(Experiment::Cost, 1, true, &engine).options);
    assert!(cost.iter().any(|t| t.series.starts_with("cpu: ")) && cost.iter().any(|t| t.series.starts_with("gpu: ")));
}

#[test]
fn stop_drops_every_run_and_keeps_the_results_so_far() {
    let mut job = ExperimentJob::start(Experiment::LabelNoise, 1, true, &EngineChoice::cpu("test"));
    for _ in 0..1_000_000 {
        if job.done() >= 1 {
            break;
        }
        job.tick(Duration::from_millis(2));
    }
    assert!(job.done() >= 1, "no trial finished");
    job.tick(Duration::from_millis(1));
    assert!(job.live_runs() > 0, "the next trial is under way");
    job.stop();
    assert_eq!((job.state, job.live_runs()), (JobState::Stopped, 0));
    let done = job.done();
    assert!(done >= 1 && done < job.total());
    job.tick(Duration::from_millis(5));
    assert_eq!((job.live_runs(), job.done()), (0, done), "a stopped job does nothing");
    assert_eq!(job.results().len(), done);
    assert!(job.markdown().contains("stopped after"));
}

#[test]
fn a_failed_trial_is_reported_and_the_experiment_goes_on() {
    let mut job = ExperimentJob::start(Experiment::LabelNoise, 1, true, &EngineChoice::cpu("test"));
    // Trial 0 cannot be built (m must divide the batch); trial 1 diverges (w ← −4·w every
    // step from the weight decay alone).
    job.trials[0].config.optimizer.m = 7;
    job.trials[0].config.optimizer.kind = crate::config::OptimizerKind::Msam;
    job.trials[1].config.optimizer.lr = 10.0;
    job.trials[1].config.optimizer.weight_decay = 0.5;
    job.trials[1].config.optimizer.momentum = 0.9;
    job.trials.truncate(3);
    job.outcomes.truncate(3);
    run_to_end(&mut job);
    assert_eq!(job.failures().len(), 1);
    assert!(job.problems.iter().any(|p| p.contains("failed") && p.contains("optimizer.m")), "{:?}", job.problems);
    assert!(job.problems.iter().any(|p| p.contains("diverged")), "{:?}", job.problems);
    let results = job.results();
    assert_eq!(results.len(), 2);
    assert!(results[0].diverged && !results[1].diverged);
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_drift_check_runs_on_the_worker_and_matches_the_cli() {
    let mut job = ExperimentJob::start(Experiment::DriftCheck, 1, true, &EngineChoice::cpu("test"));
    assert_eq!(job.total(), 6);
    let start = Instant::now();
    while job.is_running() && start.elapsed() < Duration::from_secs(120) {
        job.tick(Duration::from_millis(2));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!((job.state, job.done()), (JobState::Finished, 6));
    let cli = drift_check(&DriftConfig::new(true, 0));
    let got = job.drift_report().unwrap();
    assert_eq!(serde_json::to_value(got).unwrap(), serde_json::to_value(&cli).unwrap());
    assert_eq!(job.summary().verdicts, vec![drift::verdict(&cli)]);
    let json: serde_json::Value = serde_json::from_str(&job.json()).unwrap();
    assert_eq!(json["report"]["rows"].as_array().unwrap().len(), 6);
}

/// The browser's path, natively: the drift check one m per piece (each piece draws from the
/// seed's stream afresh, so the numbers differ from the CLI's but the check is as valid).
#[test]
fn the_drift_check_in_pieces_of_one_m_agrees_with_the_sde() {
    let mut d = DriftJob::new(true, true);
    assert_eq!(d.chunks.len(), 6);
    let mut pieces = 0;
    let start = Instant::now();
    while !d.is_complete() && start.elapsed() < Duration::from_secs(120) {
        pieces += usize::from(d.advance());
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(pieces, 6);
    let r = d.report.unwrap();
    let ms: Vec<usize> = r.rows.iter().map(|row| row.m).collect();
    assert_eq!(ms, [1, 2, 4, 8, 16, 64]);
    let whole = drift_check(&DriftConfig::new(true, 0));
    assert_eq!((r.trace_v, r.grad_norm), (whole.trace_v, whole.grad_norm));
    assert_eq!(r.rows[0].measured, whole.rows[0].measured, "the first m draws the same stream");
    assert_eq!(drift::verdict(&r).verdict, crate::experiments::Outcome::Holds, "{}", drift::verdict(&r).text);
}

/// The browser's lighter end-of-training measurement, natively: the same quantities, finite.
#[test]
fn the_light_measurement_gives_every_metric() {
    let trial = &trials(Experiment::NoiseTrace, &Options { seeds: 1, quick: true, ..Options::default() })[0];
    let (data, init) = prepare(&trial.config).unwrap();
    let m = crate::lab::measuring::app_measurer(&trial.config, &data, true).unwrap().measure(0, &init).unwrap();
    assert_eq!(m.n_eval, 256);
    assert!(m.trace_v > 0.0 && m.lambda_max.is_finite() && m.sharpness.is_finite() && !m.m_curve.is_empty(), "{m:?}");
}

#[test]
fn results_given_back_rebuild_the_same_summary() {
    let opts = Options { seeds: 2, quick: true, ..Options::default() };
    let list = trials(Experiment::MSweep, &opts);
    let results: Vec<TrialResult> = list
        .iter()
        .map(|t| TrialResult { series: t.series.clone(), x: t.x, seed: t.seed, final_test_acc: 0.5 + 0.01 * t.seed as f64, ..Default::default() })
        .collect();
    let job = ExperimentJob::from_results(Experiment::MSweep, opts, list, results.clone());
    let n = job.trials.len();
    assert_eq!((job.state, job.done(), job.total(), job.live_runs()), (JobState::Finished, n, n, 0));
    assert_eq!(job.results(), results);
    assert_eq!(job.summary().table, markdown_table(Experiment::MSweep, &results));
}
