//! The verdicts: plain statements of which of the paper's claims hold in an experiment's
//! results, computed from the numbers, one function per experiment.

use super::{Cell, Experiment, Metric, TrialResult, aggregate, fmt_x, sig};

/// Plain statements of which claims hold in these results, computed from the numbers.
pub fn verdicts(exp: Experiment, results: &[TrialResult]) -> Vec<String> {
    let acc = aggregate(results, |r| Some(r.final_test_acc));
    match exp {
        Experiment::MSweep => m_sweep(results, &acc),
        Experiment::LabelNoise => label_noise(&acc),
        Experiment::NoiseTrace => noise_trace(results),
        Experiment::RwsamLambda => rwsam_lambda(&acc),
        Experiment::Cost => cost(results),
        Experiment::DriftCheck => Vec::new(),
    }
}

fn cell<'a>(cells: &'a [Cell], series: &str, x: Option<f64>) -> Option<&'a Cell> {
    cells.iter().find(|c| c.series == series && c.x == x)
}

/// How a claim "a > b" fares: holds or not, and whether the gap exceeds twice its standard
/// error over seeds (otherwise it is within seed noise).
fn judge(a: &Cell, b: &Cell) -> &'static str {
    if a.n < 2 || b.n < 2 {
        return if a.mean > b.mean { "holds on one seed (no error bar)" } else { "does not hold on one seed (no error bar)" };
    }
    let se = ((a.std * a.std) / a.n as f64 + (b.std * b.std) / b.n as f64).sqrt();
    let clear = (a.mean - b.mean).abs() > 2.0 * se;
    match (a.mean > b.mean, clear) {
        (true, true) => "HOLDS",
        (true, false) => "holds on average, within seed noise",
        (false, true) => "DOES NOT HOLD",
        (false, false) => "does not hold on average (within seed noise)",
    }
}

fn pct(c: &Cell) -> String {
    format!("{:.2} ± {:.2}", 100.0 * c.mean, 100.0 * c.std)
}


/// m-sweep: accuracy and tr V, λ_max along m; n-SAM against SGD.
fn m_sweep(results: &[TrialResult], acc: &[Cell]) -> Vec<String> {
    let mut v = Vec::new();
    let mut m: Vec<&Cell> = acc.iter().filter(|c| c.series == "m-SAM").collect();
    m.sort_by(|a, b| b.x.partial_cmp(&a.x).expect("finite m"));
    let monotone = m.windows(2).all(|w| w[1].mean >= w[0].mean);
    let path: Vec<String> = m.iter().map(|c| format!("{:.1} (m={})", 100.0 * c.mean, fmt_x(c.x))).collect();
    v.push(format!(
        "As m decreases, test accuracy {}: {}.",
        if monotone { "rises monotonically (the paper's claim HOLDS)" } else { "does not rise monotonically (the paper's claim DOES NOT HOLD)" },
        path.join(" → ")
    ));
    if let (Some(first), Some(last)) = (m.first(), m.last()) {
        v.push(format!("m = {} over m = {}: {}.", fmt_x(last.x), fmt_x(first.x), judge(last, first)));
    }
    if let (Some(n), Some(s)) = (cell(acc, "n-SAM", None), cell(acc, "SGD", None)) {
        let d = 100.0 * (n.mean - s.mean);
        let within = d.abs() <= 100.0 * n.std.max(s.std);
        v.push(format!(
            "n-SAM {} vs SGD {}: difference {d:+.2} points, {} one standard deviation — n-SAM ≈ SGD {}.",
            pct(n),
            pct(s),
            if within { "within" } else { "outside" },
            if within { "HOLDS" } else { "DOES NOT HOLD" }
        ));
    }
    for (name, metric) in [("tr V", (|r: &TrialResult| r.trace_v) as Metric), ("λ_max", |r: &TrialResult| r.lambda_max)] {
        let mut c: Vec<Cell> = aggregate(results, metric).into_iter().filter(|c| c.series == "m-SAM").collect();
        c.sort_by(|a, b| b.x.partial_cmp(&a.x).expect("finite m"));
        if c.len() > 1 {
            let falls = c.windows(2).all(|w| w[1].mean <= w[0].mean);
            v.push(format!(
                "Final {name} {} as m decreases ({} at m={} → {} at m={}).",
                if falls { "falls monotonically" } else { "does not fall monotonically" },
                sig(c[0].mean),
                fmt_x(c[0].x),
                sig(c[c.len() - 1].mean),
                fmt_x(c[c.len() - 1].x)
            ));
        }
    }
    v
}

/// label-noise: the four optimizers at each noise level; RW-SAM against SAM.
fn label_noise(acc: &[Cell]) -> Vec<String> {
    let mut v = Vec::new();
    let mut noises: Vec<f64> = acc.iter().filter_map(|c| c.x).filter(|&x| x > 0.0).collect();
    noises.dedup();
    let mut rw_wins = 0;
    let mut rw_clear = 0;
    for &x in &noises {
        if let (Some(rw), Some(sam), Some(sgd)) = (cell(acc, "RW-SAM", Some(x)), cell(acc, "SAM", Some(x)), cell(acc, "SGD", Some(x))) {
            if rw.mean >= sam.mean {
                rw_wins += 1;
            }
            if judge(rw, sam) == "HOLDS" {
                rw_clear += 1;
            }
            let m = cell(acc, "m-SAM m=8", Some(x)).map(pct).unwrap_or_default();
            v.push(format!(
                "{:.0} % noise: SGD {}, SAM {}, m-SAM m=8 {m}, RW-SAM {} (RW-SAM − SAM {:+.2} points).",
                100.0 * x,
                pct(sgd),
                pct(sam),
                pct(rw),
                100.0 * (rw.mean - sam.mean)
            ));
        }
    }
    v.push(format!(
        "RW-SAM ≥ SAM on average at {rw_wins} of {} noise levels, beyond seed noise at {rw_clear}: the paper's claim (RW-SAM above SAM at every level) {}.",
        noises.len(),
        if rw_clear == noises.len() { "HOLDS" } else { "DOES NOT HOLD at this scale" }
    ));
    if let (Some(sam), Some(sgd)) = (cell(acc, "SAM", Some(0.8)), cell(acc, "SGD", Some(0.8))) {
        v.push(format!("At 80 % noise the paper has SAM below SGD (37.69 vs 46.53); here SGD {} > SAM {}: {}.", pct(sgd), pct(sam), judge(sgd, sam)));
    }
    v
}

/// noise-trace: tr V at the end of training.
fn noise_trace(results: &[TrialResult]) -> Vec<String> {
    let mut v = Vec::new();
    let trv = aggregate(results, |r| r.trace_v);
    let get = |s: &str| cell(&trv, s, None);
    if let (Some(sgd), Some(sam), Some(rw)) = (get("SGD"), get("SAM"), get("RW-SAM")) {
        v.push(format!(
            "tr V at the end, SGD {} > SAM {} (the SAM family ends where gradient noise is smaller): {}.",
            sig(sgd.mean),
            sig(sam.mean),
            judge(sgd, sam)
        ));
        v.push(format!("SAM {} > RW-SAM {} (the paper's RW-SAM below SAM): {}.", sig(sam.mean), sig(rw.mean), judge(sam, rw)));
    }
    if let Some(m) = get("m-SAM m=8") {
        let smallest = trv.iter().all(|c| c.mean >= m.mean);
        v.push(format!("m-SAM (m = 8) ends with tr V {}, {} of the four.", sig(m.mean), if smallest { "the smallest" } else { "not the smallest" }));
    }
    v
}

/// rwsam-lambda: the best RW-SAM setting against SAM and m-SAM.
fn rwsam_lambda(acc: &[Cell]) -> Vec<String> {
    let mut v = Vec::new();
    let best = acc.iter().filter(|c| c.series.starts_with("RW-SAM") && c.x != Some(0.0)).max_by(|a, b| a.mean.total_cmp(&b.mean));
    if let (Some(best), Some(sam)) = (best, cell(acc, "SAM", None)) {
        let msam = cell(acc, "m-SAM m=8", None);
        v.push(format!(
            "Best RW-SAM setting: {} at {} = {} against SAM {}{} — RW-SAM above SAM: {}.",
            best.series,
            fmt_x(best.x),
            pct(best),
            pct(sam),
            msam.map(|m| format!(" and m-SAM m=8 {}", pct(m))).unwrap_or_default(),
            judge(best, sam)
        ));
        match msam {
            Some(m) if m.mean > sam.mean => {
                let closes = (best.mean - sam.mean) / (m.mean - sam.mean);
                v.push(format!(
                    "RW-SAM closes {:.0} % of the gap from SAM to m-SAM (m = 8): the paper's \"close to m-SAM with small m\" {}.",
                    100.0 * closes,
                    if closes > 0.5 { "HOLDS" } else { "DOES NOT HOLD at this scale" }
                ));
            }
            Some(_) => v.push("m-SAM (m = 8) is not above SAM in this run, so there is no gap for RW-SAM to close.".into()),
            None => {}
        }
    }
    v
}

/// cost: time per step relative to SAM, per engine.
fn cost(results: &[TrialResult]) -> Vec<String> {
    let mut v = Vec::new();
    // The fastest of the seeds' timings per optimizer: on a shared machine slow repeats
    // are interference, not the optimizer.
    let mut ms: Vec<Cell> = Vec::new();
    for r in results {
        match ms.iter_mut().find(|c| c.series == r.series) {
            Some(c) => {
                c.mean = c.mean.min(r.ms_per_step);
                c.n += 1;
            }
            None => ms.push(Cell { series: r.series.clone(), x: r.x, mean: r.ms_per_step, std: 0.0, n: 1 }),
        }
    }
    for backend in ["cpu", "gpu"] {
        let get = |l: &str| ms.iter().find(|c| c.series == format!("{backend}: {l}"));
        if let (Some(sam), Some(rw)) = (get("SAM"), get("RW-SAM λ=1")) {
            let m8 = get("m-SAM m=8").map(|c| c.mean / sam.mean).unwrap_or(f64::NAN);
            let m1 = get("m-SAM m=1").map(|c| c.mean / sam.mean).unwrap_or(f64::NAN);
            v.push(format!(
                "{backend} (fastest of the seeds' timings): RW-SAM costs {:.2}× SAM (paper ≈ 1.17×); m-SAM costs {m8:.2}× (m = 8) and {m1:.2}× (m = 1) SAM (paper: ≈ 2× at m = 64).",
                rw.mean / sam.mean
            ));
        }
    }
    v
}
