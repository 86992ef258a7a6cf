//! The verdicts: which of the paper's claims hold in an experiment's results, one function per
//! experiment. Every claim that compares two series is paired by seed (stats.rs) and Holm-
//! corrected across the claims of the experiment; the verdict is holds / does not hold /
//! inconclusive, as data (`Verdict`) with the sentence that reports it.

use super::stats::{Claim, Outcome, Paired, Verdict, finish, from_diffs, paired};
use super::{Cell, Experiment, Metric, TrialResult, aggregate, fmt_x, sig};

/// Why a quick run cannot refute a claim: its verdicts are at most "holds".
pub const QUICK_REASON: &str = "a quick run (short training, few seeds) can support a claim but not refute it";

/// The verdicts of an experiment's results. `quick` marks a run too short to refute a claim.
pub fn verdicts(exp: Experiment, results: &[TrialResult], quick: bool) -> Vec<Verdict> {
    let acc = aggregate(results, |r| Some(r.final_test_acc));
    let claims = match exp {
        Experiment::MSweep => m_sweep(results, &acc),
        Experiment::LabelNoise => label_noise(results, &acc),
        Experiment::NoiseTrace => noise_trace(results),
        Experiment::RwsamLambda => rwsam_lambda(results, &acc),
        Experiment::Cost => return cost(results),
        Experiment::RwsamGrid => rwsam_grid(results, &acc, false),
        Experiment::RwsamGridMnist => rwsam_grid(results, &acc, true),
        Experiment::DriftCheck | Experiment::RwsamDrift | Experiment::Escape => Vec::new(),
    };
    finish(claims, quick.then_some(QUICK_REASON))
}

/// The sentences of a list of verdicts.
pub fn sentences(v: &[Verdict]) -> Vec<String> {
    v.iter().map(|v| v.text.clone()).collect()
}

/// (seed, value) of one cell.
fn values(results: &[TrialResult], series: &str, x: Option<f64>, metric: Metric) -> Vec<(u64, f64)> {
    results.iter().filter(|r| r.series == series && r.x == x).filter_map(|r| metric(r).map(|v| (r.seed, v))).collect()
}

fn acc_of(r: &TrialResult) -> Option<f64> {
    Some(r.final_test_acc)
}

/// Paired accuracy difference a − b, in percentage points.
fn acc_diff(results: &[TrialResult], a: (&str, Option<f64>), b: (&str, Option<f64>)) -> Paired {
    let mut p = paired(&values(results, a.0, a.1, acc_of), &values(results, b.0, b.1, acc_of));
    scale(&mut p, 100.0);
    p
}

fn scale(p: &mut Paired, k: f64) {
    *p = from_diffs(p.diffs.iter().map(|d| d * k).collect());
}

fn cell<'a>(cells: &'a [Cell], series: &str, x: Option<f64>) -> Option<&'a Cell> {
    cells.iter().find(|c| c.series == series && c.x == x)
}

fn pct(c: &Cell) -> String {
    format!("{:.2} ± {:.2}", 100.0 * c.mean, 100.0 * c.std)
}

/// "A 88.10 ± 1.2 vs B 80.00 ± 3.1" from the cells, when both exist.
fn versus(acc: &[Cell], a: (&str, Option<f64>), an: &str, b: (&str, Option<f64>), bn: &str) -> String {
    match (cell(acc, a.0, a.1), cell(acc, b.0, b.1)) {
        (Some(x), Some(y)) => format!("{an} {} vs {bn} {} %", pct(x), pct(y)),
        _ => String::new(),
    }
}

/// m-sweep: accuracy along m at 40 % noise (adjacent steps and the ends), n-SAM ≈ SGD and
/// n-USAM ≈ SGD, tr V
/// and λ_max along m, and the same sweep on clean labels.
fn m_sweep(results: &[TrialResult], acc: &[Cell]) -> Vec<Claim> {
    let mut v = Vec::new();
    for (series, label) in [("m-SAM", "40 % noise"), ("m-USAM", "m-USAM, 40 % noise"), ("m-SAM clean", "clean labels")] {
        let mut ms: Vec<f64> = acc.iter().filter(|c| c.series == series).filter_map(|c| c.x).collect();
        ms.sort_by(|a, b| b.total_cmp(a));
        ms.dedup();
        if ms.len() < 2 {
            continue;
        }
        let (big, small) = (ms[0], ms[ms.len() - 1]);
        let path: Vec<String> = ms.iter().filter_map(|&m| cell(acc, series, Some(m))).map(|c| format!("{:.1} (m={})", 100.0 * c.mean, fmt_x(c.x))).collect();
        v.push(Claim::greater(
            format!(
                "{label}: test accuracy at m = {} above m = {}{}",
                fmt_x(Some(small)),
                fmt_x(Some(big)),
                if series == "m-SAM" { " (the paper's main claim)" } else { "" }
            ),
            format!("test accuracy {}", path.join(" → ")),
            "points",
            acc_diff(results, (series, Some(small)), (series, Some(big))),
        ));
        if series == "m-SAM" {
            for w in ms.windows(2) {
                v.push(Claim::greater(
                    format!("{label}: m = {} above m = {}", fmt_x(Some(w[1])), fmt_x(Some(w[0]))),
                    versus(acc, (series, Some(w[1])), &format!("m={}", fmt_x(Some(w[1]))), (series, Some(w[0])), &format!("m={}", fmt_x(Some(w[0])))),
                    "points",
                    acc_diff(results, (series, Some(w[1])), (series, Some(w[0]))),
                ));
            }
            for (name, metric) in [("tr V", (|r: &TrialResult| r.trace_v) as Metric), ("λ_max", |r: &TrialResult| r.lambda_max)] {
                let a = values(results, series, Some(small), metric);
                let b = values(results, series, Some(big), metric);
                if a.is_empty() || b.is_empty() {
                    continue;
                }
                let mean = |v: &[(u64, f64)]| v.iter().map(|x| x.1).sum::<f64>() / v.len() as f64;
                v.push(Claim::less(
                    format!("final {name} at m = {} below m = {}", fmt_x(Some(small)), fmt_x(Some(big))),
                    format!("{} at m={} vs {} at m={}", sig(mean(&a)), fmt_x(Some(small)), sig(mean(&b)), fmt_x(Some(big))),
                    "",
                    paired(&a, &b),
                ));
            }
        }
    }
    // Perturbing along the full gradient carries no gradient noise: n-SAM (the paper's control)
    // and n-USAM (the un-normalised theorems: (ρ/2)‖∇f‖² without m-USAM's (ρ/2m)·tr V term)
    // should both train like SGD.
    for (series, claim) in [
        ("n-SAM", "n-SAM ≈ SGD (within ±1 point; the paper: perturbing along the full gradient gives SGD's accuracy)"),
        ("n-USAM", "n-USAM ≈ SGD (within ±1 point; the un-normalised form of n-SAM ≈ SGD: no tr V term in its drift)"),
    ] {
        if cell(acc, series, None).is_some() && cell(acc, "SGD", None).is_some() {
            v.push(Claim::equivalent(
                claim,
                versus(acc, (series, None), series, ("SGD", None), "SGD"),
                "points",
                acc_diff(results, (series, None), ("SGD", None)),
                1.0,
            ));
        }
    }
    v
}

/// label-noise: at each noise level SAM against SGD, m-SAM (m = 8) and RW-SAM against SAM.
fn label_noise(results: &[TrialResult], acc: &[Cell]) -> Vec<Claim> {
    let mut v = Vec::new();
    let mut noises: Vec<f64> = acc.iter().filter_map(|c| c.x).filter(|&x| x > 0.0).collect();
    noises.sort_by(f64::total_cmp);
    noises.dedup();
    for &x in &noises {
        let at = |s: &'static str| (s, Some(x));
        if cell(acc, "SAM", Some(x)).is_none() {
            continue;
        }
        let n = format!("{:.0} % noise", 100.0 * x);
        let detail = |a: &'static str, an: &str, b: &'static str, bn: &str| versus(acc, at(a), an, at(b), bn);
        if cell(acc, "RW-SAM", Some(x)).is_some() {
            v.push(Claim::greater(
                format!("{n}: RW-SAM above SAM (the paper's Table 4)"),
                detail("RW-SAM", "RW-SAM", "SAM", "SAM"),
                "points",
                acc_diff(results, at("RW-SAM"), at("SAM")),
            ));
        }
        if cell(acc, "m-SAM m=8", Some(x)).is_some() {
            v.push(Claim::greater(
                format!("{n}: m-SAM (m = 8) above SAM"),
                detail("m-SAM m=8", "m-SAM m=8", "SAM", "SAM"),
                "points",
                acc_diff(results, at("m-SAM m=8"), at("SAM")),
            ));
        }
        if cell(acc, "SGD", Some(x)).is_some() {
            // The paper has SAM above SGD up to 60 % noise and below it at 80 % (37.69 vs 46.53).
            let d = acc_diff(results, at("SAM"), at("SGD"));
            let claim = if x >= 0.8 {
                Claim::less(format!("{n}: SAM below SGD (the paper: 37.69 vs 46.53)"), detail("SAM", "SAM", "SGD", "SGD"), "points", d)
            } else {
                Claim::greater(format!("{n}: SAM above SGD"), detail("SAM", "SAM", "SGD", "SGD"), "points", d)
            };
            v.push(claim);
        }
    }
    v
}

/// noise-trace: tr V at the end of training, and tr V against tr H near the minima.
fn noise_trace(results: &[TrialResult]) -> Vec<Claim> {
    let trv = |s: &str| values(results, s, None, |r| r.trace_v);
    let mut v = Vec::new();
    let mean = |v: &[(u64, f64)]| v.iter().map(|x| x.1).sum::<f64>() / v.len().max(1) as f64;
    for (a, b, claim) in [
        ("SAM", "SGD", "tr V at the end: SAM below SGD (the paper's Table 6)"),
        ("RW-SAM", "SAM", "tr V at the end: RW-SAM below SAM (the paper's Table 6)"),
        ("m-SAM m=8", "SAM", "tr V at the end: m-SAM (m = 8) below SAM"),
    ] {
        let (x, y) = (trv(a), trv(b));
        if x.is_empty() || y.is_empty() {
            continue;
        }
        v.push(Claim::less(claim, format!("{a} {} vs {b} {}", sig(mean(&x)), sig(mean(&y))), "", paired(&x, &y)));
    }
    // Proposition 3.9: E‖∇f_I‖ rises as the micro-batch shrinks, below √(‖∇f‖² + tr V/m).
    let curve_end = |r: &TrialResult, small: bool| -> Option<f64> {
        let c = r.m_curve.as_ref()?;
        let p = if small { c.iter().min_by_key(|p| p.m)? } else { c.iter().max_by_key(|p| p.m)? };
        Some(p.mean_norm)
    };
    let small: Vec<(u64, f64)> = results.iter().filter(|r| r.series == "SGD").filter_map(|r| curve_end(r, true).map(|v| (r.seed, v))).collect();
    let large: Vec<(u64, f64)> = results.iter().filter(|r| r.series == "SGD").filter_map(|r| curve_end(r, false).map(|v| (r.seed, v))).collect();
    if !small.is_empty() && !large.is_empty() {
        v.push(Claim::greater(
            "m-sharpness (Proposition 3.9): E‖∇f_I‖ at m = 1 above the largest m, at SGD's end point",
            format!("E‖∇f_I‖ {} at m = 1 vs {} at the largest m", sig(mean(&small)), sig(mean(&large))),
            "",
            paired(&small, &large),
        ));
        let points: Vec<&crate::metrics::MPoint> = results.iter().filter_map(|r| r.m_curve.as_ref()).flatten().collect();
        let over = points.iter().filter(|p| p.mean_norm > 1.02 * p.bound).count();
        let worst = points.iter().map(|p| p.mean_norm / p.bound).fold(0.0, f64::max);
        v.push(Claim::decided(
            "the m-sharpness curve stays below its bound √(‖∇f‖² + tr V/m) at every m",
            format!("{over} of {} points above the bound (2 % tolerance for sampling); largest E‖∇f_I‖ / bound = {worst:.3}", points.len()),
            "",
            if over == 0 { Outcome::Holds } else { Outcome::DoesNotHold },
            None,
        ));
    }
    // Near a minimum the gradient-noise covariance is close to the Hessian (cross-entropy: the
    // Fisher): log(tr V / tr H) within ±log 2, per seed, over every optimizer's end point.
    let ratios: Vec<f64> = results.iter().filter_map(|r| Some((r.trace_v? / r.trace_h?).ln())).filter(|v| v.is_finite()).collect();
    if !ratios.is_empty() {
        let geo = (ratios.iter().sum::<f64>() / ratios.len() as f64).exp();
        v.push(Claim::equivalent(
            "near the minima tr V ≈ tr H (within a factor 2; ln-ratio within ±0.69)",
            format!("geometric-mean tr V / tr H = {} over {} end points", sig(geo), ratios.len()),
            "ln ratio",
            from_diffs(ratios),
            std::f64::consts::LN_2,
        ));
    }
    // Why: with the labels drawn from the model (tr F, the Gauss–Newton part of H) the trace is
    // close to tr H; the data's labels, fit confidently, carry far less gradient noise. Also
    // within ±log 2.
    let fisher: Vec<f64> = results.iter().filter_map(|r| Some((r.trace_f? / r.trace_h?).ln())).filter(|v| v.is_finite()).collect();
    if !fisher.is_empty() {
        let geo = (fisher.iter().sum::<f64>() / fisher.len() as f64).exp();
        let empirical: Vec<f64> = results.iter().filter_map(|r| Some(r.trace_v? / r.trace_f?)).filter(|v| v.is_finite() && *v > 0.0).collect();
        let geo_v = (empirical.iter().map(|v| v.ln()).sum::<f64>() / empirical.len().max(1) as f64).exp();
        v.push(Claim::equivalent(
            "near the minima tr F ≈ tr H, F the model's Fisher (labels drawn from the model; within a factor 2)",
            format!(
                "geometric-mean tr F / tr H = {} over {} end points, while tr V / tr F = {}: the gap between tr V and tr H is the data's labels, not the curvature",
                sig(geo),
                fisher.len(),
                sig(geo_v)
            ),
            "ln ratio",
            from_diffs(fisher),
            std::f64::consts::LN_2,
        ));
    }
    v
}

/// rwsam-lambda: every RW-SAM setting against SAM (Holm over the grid), and the target-ESS
/// settings against m-SAM at the same m.
fn rwsam_lambda(results: &[TrialResult], acc: &[Cell]) -> Vec<Claim> {
    let mut v = Vec::new();
    if cell(acc, "SAM", None).is_none() {
        return v;
    }
    for c in acc.iter().filter(|c| c.series.starts_with("RW-SAM") && c.x != Some(0.0)) {
        let what = if c.series.contains("ESS") { format!("{} {}", c.series, fmt_x(c.x)) } else { format!("{} λ = {}", c.series, fmt_x(c.x)) };
        v.push(Claim::greater(
            format!("{what} above SAM (the paper: RW-SAM ≥ SAM)"),
            format!("{} vs SAM {} %", pct(c), cell(acc, "SAM", None).map(pct).unwrap_or_default()),
            "points",
            acc_diff(results, (&c.series, c.x), ("SAM", None)),
        ));
    }
    for m in [8.0, 64.0, 32.0] {
        let name = format!("m-SAM m={}", fmt_x(Some(m)));
        let Some(msam) = cell(acc, &name, None) else { continue };
        if let Some(rw) = cell(acc, "RW-SAM target ESS", Some(m)) {
            v.push(Claim::equivalent(
                format!("RW-SAM with ESS = {} ≈ m-SAM m = {} (within ±1 point; the paper: close to m-SAM)", fmt_x(Some(m)), fmt_x(Some(m))),
                format!("{} vs {}", pct(rw), pct(msam)),
                "points",
                acc_diff(results, ("RW-SAM target ESS", Some(m)), (&name, None)),
                1.0,
            ));
        }
    }
    v
}

/// rwsam-grid, per (ρ, noise) block: RW-SAM averaged over its settings (per seed) against SAM,
/// and m-SAM (m = 64, 8) against SAM; the per-setting paired differences are listed in the
/// claim's sentence (too many to test one by one after Holm's correction with 10 seeds).
/// The digits grid's best RW-SAM setting under label noise (finite-difference scores, weighted
/// descent, λ < 0, target ESS B/2): tested again on mnist5k as one claim fixed in advance.
const DIGITS_BEST: (&str, f64) = ("RW-SAM fd weighted λ<0", 64.0);

/// rwsam-grid(-mnist): per block, RW-SAM's settings on average against SAM, and m-SAM at m = 64
/// and 8 against SAM; with `confirm` (mnist5k), also `DIGITS_BEST` against SAM in the noisy blocks.
fn rwsam_grid(results: &[TrialResult], acc: &[Cell], confirm: bool) -> Vec<Claim> {
    let mut v = Vec::new();
    let mut tags: Vec<String> = acc.iter().filter_map(|c| c.series.strip_prefix("SAM ").map(str::to_string)).collect();
    tags.dedup();
    for tag in tags {
        let sam_name = format!("SAM {tag}");
        let sam = values(results, &sam_name, None, acc_of);
        let arms: Vec<&Cell> = acc.iter().filter(|c| c.series.starts_with("RW-SAM") && c.series.ends_with(&tag)).collect();
        if !arms.is_empty() {
            // Per seed, the mean over the RW-SAM settings.
            let seeds: Vec<u64> = sam.iter().map(|s| s.0).collect();
            let avg: Vec<(u64, f64)> = seeds
                .iter()
                .filter_map(|&seed| {
                    let xs: Vec<f64> =
                        arms.iter().filter_map(|c| values(results, &c.series, c.x, acc_of).into_iter().find(|x| x.0 == seed).map(|x| x.1)).collect();
                    (xs.len() == arms.len()).then(|| (seed, xs.iter().sum::<f64>() / xs.len() as f64))
                })
                .collect();
            let mut d = paired(&avg, &sam);
            scale(&mut d, 100.0);
            let per: Vec<(String, Paired)> = arms
                .iter()
                .map(|c| (format!("{} {}", c.series.trim_end_matches(&tag).trim(), fmt_x(c.x)), acc_diff(results, (&c.series, c.x), (&sam_name, None))))
                .collect();
            let above = per.iter().filter(|(_, p)| p.mean > 0.0).count();
            let best = per.iter().max_by(|a, b| a.1.mean.total_cmp(&b.1.mean)).expect("arms");
            let worst = per.iter().min_by(|a, b| a.1.mean.total_cmp(&b.1.mean)).expect("arms");
            v.push(Claim::greater(
                format!("{tag}: RW-SAM (mean over its {} settings) above SAM", arms.len()),
                format!(
                    "{above} of {} settings above SAM on average; best {} {:+.2} points ({}/{} seeds), worst {} {:+.2} points",
                    per.len(),
                    best.0,
                    best.1.mean,
                    best.1.wins,
                    best.1.n,
                    worst.0,
                    worst.1.mean
                ),
                "points",
                d,
            ));
        }
        let best_name = format!("{} {tag}", DIGITS_BEST.0);
        if confirm && !tag.ends_with("noise=0") && cell(acc, &best_name, Some(DIGITS_BEST.1)).is_some() {
            v.push(Claim::greater(
                format!(
                    "{tag}: {} at target ESS {} above SAM (the digits grid's best setting under noise, tested again here)",
                    DIGITS_BEST.0,
                    fmt_x(Some(DIGITS_BEST.1))
                ),
                versus(acc, (&best_name, Some(DIGITS_BEST.1)), DIGITS_BEST.0, (&sam_name, None), "SAM"),
                "points",
                acc_diff(results, (&best_name, Some(DIGITS_BEST.1)), (&sam_name, None)),
            ));
        }
        for m in [64, 8] {
            let name = format!("m-SAM m={m} {tag}");
            if cell(acc, &name, None).is_some() {
                v.push(Claim::greater(
                    format!("{tag}: m-SAM m = {m} above SAM"),
                    versus(acc, (&name, None), &format!("m-SAM m={m}"), (&sam_name, None), "SAM"),
                    "points",
                    acc_diff(results, (&name, None), (&sam_name, None)),
                ));
            }
        }
    }
    v
}

/// cost: per repeat (a seed), every optimizer timed in the same warm process one after another;
/// the ratio to SAM per repeat, its median over repeats and their spread. A ratio whose spread
/// straddles 1 by more than 10 % says nothing.
fn cost(results: &[TrialResult]) -> Vec<Verdict> {
    let mut out = Vec::new();
    for backend in ["cpu", "gpu"] {
        let ms = |l: &str| values(results, &format!("{backend}: {l}"), None, |r| Some(r.ms_per_step));
        let sam = ms("SAM");
        if sam.is_empty() {
            continue;
        }
        for (label, paper, more_work) in [
            ("RW-SAM finite-difference", Some(7.0 / 6.0), true),
            ("RW-SAM exact", None, true),
            ("m-SAM m=64", Some(2.0), true),
            ("m-SAM m=8", None, true),
            ("m-SAM m=1", None, true),
            ("ASAM", None, true),
            ("SGD", Some(0.5), false),
        ] {
            let other = ms(label);
            if other.is_empty() {
                continue;
            }
            let mut ratios: Vec<f64> = other.iter().filter_map(|(s, t)| sam.iter().find(|(u, _)| u == s).map(|(_, b)| t / b)).collect();
            ratios.sort_by(f64::total_cmp);
            let n = ratios.len();
            let median = if n == 0 {
                f64::NAN
            } else if n % 2 == 1 {
                ratios[n / 2]
            } else {
                0.5 * (ratios[n / 2 - 1] + ratios[n / 2])
            };
            let (lo, hi) = (ratios.first().copied().unwrap_or(f64::NAN), ratios.last().copied().unwrap_or(f64::NAN));
            // The interquartile range decides (one disturbed repeat should not void the rest).
            let q = |f: f64| if n == 0 { f64::NAN } else { ratios[((n - 1) as f64 * f).round() as usize] };
            let (q1, q3) = (q(0.25), q(0.75));
            let claim = format!("{backend}: {label} costs {}× SAM per step", paper.map(|p| format!("{p:.2}")).unwrap_or_else(|| "more than 1".into()));
            let noisy = (q1 < 0.9 && q3 > 1.1) || q3 > 2.0 * q1;
            let impossible = more_work && q3 < 1.0;
            let (verdict, reason) = if n < 3 {
                (Outcome::Inconclusive, Some(format!("{n} repeat(s): at least 3 are needed for a spread")))
            } else if noisy || impossible {
                (Outcome::Inconclusive, Some(format!("the interquartile range over repeats [{q1:.2}, {q3:.2}] makes the ratio meaningless (timing noise)")))
            } else if let Some(p) = paper {
                // Within a third of the paper's ratio counts as agreement at this scale.
                if (median / p).ln().abs() < (4.0f64 / 3.0).ln() { (Outcome::Holds, None) } else { (Outcome::DoesNotHold, None) }
            } else if lo > 1.0 {
                (Outcome::Holds, None)
            } else {
                (Outcome::Inconclusive, Some(format!("the range [{lo:.2}, {hi:.2}] reaches below 1")))
            };
            let mut text = format!(
                "{claim}: **{}** — median over {n} paired repeats {median:.2}× (interquartile {q1:.2}–{q3:.2}, range {lo:.2}–{hi:.2}){}",
                verdict.word().to_uppercase(),
                paper.map(|p| format!("; the paper: ≈ {p:.2}×")).unwrap_or_default()
            );
            if let Some(r) = &reason {
                text.push_str(&format!("; inconclusive because {r}"));
            }
            text.push('.');
            out.push(Verdict {
                claim,
                verdict,
                effect: Some(median),
                ci: Some([lo, hi]),
                p: None,
                p_holm: None,
                n,
                wins: Some(ratios.iter().filter(|&&r| r > 1.0).count()),
                unit: "ratio".into(),
                reason,
                text,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(series: &str, x: f64, seed: u64, acc: f64) -> TrialResult {
        TrialResult { series: series.into(), x: Some(x), seed, final_test_acc: acc, ..Default::default() }
    }

    #[test]
    fn label_noise_lists_each_level_once_in_noise_order_whatever_the_result_order() {
        let mut res = Vec::new();
        for seed in 0..4 {
            for &x in &[0.8, 0.2, 0.0, 0.4] {
                for (s, a) in [("SGD", 0.5), ("SAM", 0.6), ("RW-SAM", 0.55), ("m-SAM m=8", 0.7)] {
                    res.push(r(s, x, seed, a + 0.01 * seed as f64));
                }
            }
        }
        // Shuffle: the 0.8 rows of seed 3 first.
        res.rotate_right(4);
        let v = verdicts(Experiment::LabelNoise, &res, false);
        let rw: Vec<&str> = v.iter().filter(|v| v.claim.contains("RW-SAM above SAM")).map(|v| v.claim.as_str()).collect();
        assert_eq!(rw.len(), 3, "{rw:?}");
        assert!(rw[0].starts_with("20 %") && rw[1].starts_with("40 %") && rw[2].starts_with("80 %"), "{rw:?}");
    }

    #[test]
    fn the_80_percent_sentence_is_phrased_from_the_numbers() {
        let res: Vec<TrialResult> = (0..6).flat_map(|s| [r("SGD", 0.8, s, 0.2732), r("SAM", 0.8, s, 0.2892)]).collect();
        let v = verdicts(Experiment::LabelNoise, &res, false);
        let t = &v.iter().find(|v| v.claim.contains("SAM below SGD")).unwrap().text;
        assert!(t.contains("SAM 28.92 ± 0.00 vs SGD 27.32 ± 0.00"), "{t}");
        assert!(!t.contains("27.32 >"), "{t}");
        assert_eq!(v[0].verdict, Outcome::DoesNotHold, "SAM is above SGD in every seed");
    }

    #[test]
    fn cost_ratios_below_one_for_more_work_are_timing_noise() {
        let t = |s: &str, seed: u64, ms: f64| TrialResult { series: s.into(), seed, ms_per_step: ms, ..Default::default() };
        let res: Vec<TrialResult> = (0..5).flat_map(|s| [t("cpu: SAM", s, 10.0), t("cpu: RW-SAM finite-difference", s, 9.0 + 0.1 * s as f64)]).collect();
        let v = verdicts(Experiment::Cost, &res, false);
        assert_eq!(v[0].verdict, Outcome::Inconclusive, "{}", v[0].text);
    }
}
