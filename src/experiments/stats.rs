//! Paired statistics for the claims of an experiment: per-seed differences of two series (a
//! seed fixes the initialisation, label-noise draw and batch order of every optimizer, and the
//! split is shared), their mean, a 95 % interval (Student t with n − 1 degrees of freedom), a
//! two-sided p (an exact sign-flip permutation test for n ≤ 12, the t test above), wins out of n,
//! and Holm's correction across the claims of one experiment. A verdict is one of holds / does
//! not hold / inconclusive, stored as structured data beside its sentence.

use serde::{Deserialize, Serialize};

/// The family-wise error rate of one experiment's claims.
pub const ALPHA: f64 = 0.05;
/// Fewer seeds than this cannot test a claim.
pub const MIN_SEEDS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Holds,
    DoesNotHold,
    Inconclusive,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Holds => "holds",
            Outcome::DoesNotHold => "does not hold",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// One claim's verdict as data: what was claimed, the verdict, the paired effect (mean of the
/// per-seed differences, in the claim's units), its 95 % interval, p (raw and Holm-adjusted),
/// n and wins (seeds where the difference has the claimed sign), the reason when inconclusive,
/// and the sentence that reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub claim: String,
    pub verdict: Outcome,
    pub effect: Option<f64>,
    pub ci: Option<[f64; 2]>,
    pub p: Option<f64>,
    pub p_holm: Option<f64>,
    pub n: usize,
    pub wins: Option<usize>,
    /// "percentage points", "ratio", "standard errors", …
    pub unit: String,
    pub reason: Option<String>,
    pub text: String,
}

/// The paired comparison of two series over the same seeds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Paired {
    pub diffs: Vec<f64>,
    pub mean: f64,
    pub sd: f64,
    pub ci: [f64; 2],
    pub p: f64,
    /// Seeds with a positive difference.
    pub wins: usize,
    pub n: usize,
    /// The smallest two-sided p the test can reach with this n (2/2ⁿ for the sign-flip test).
    pub min_p: f64,
}

/// Pairs `a` and `b` by seed (seeds in only one are dropped) and compares a − b.
pub fn paired(a: &[(u64, f64)], b: &[(u64, f64)]) -> Paired {
    let diffs: Vec<f64> = a.iter().filter_map(|(s, x)| b.iter().find(|(t, _)| t == s).map(|(_, y)| x - y)).filter(|d| d.is_finite()).collect();
    from_diffs(diffs)
}

pub fn from_diffs(diffs: Vec<f64>) -> Paired {
    let n = diffs.len();
    let mean = if n == 0 { f64::NAN } else { diffs.iter().sum::<f64>() / n as f64 };
    let sd = if n > 1 { (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { f64::NAN };
    let half = if n > 1 { t_quantile_975(n - 1) * sd / (n as f64).sqrt() } else { f64::NAN };
    let (p, min_p) = if n == 0 {
        (1.0, 1.0)
    } else if n <= 12 {
        (sign_flip_p(&diffs), (2.0 / 2f64.powi(n as i32)).min(1.0))
    } else {
        (t_test_p(mean, sd, n), 0.0)
    };
    let wins = diffs.iter().filter(|&&d| d > 0.0).count();
    Paired { ci: [mean - half, mean + half], diffs, mean, sd, p, wins, n, min_p }
}

/// Exact two-sided sign-flip permutation test of "mean difference = 0": the share of the 2ⁿ sign
/// patterns whose |sum| is at least the observed |sum|.
pub fn sign_flip_p(diffs: &[f64]) -> f64 {
    let n = diffs.len();
    let observed = diffs.iter().sum::<f64>().abs();
    // Ties in floating point: a pattern as extreme up to rounding counts as extreme.
    let tol = 1e-12 * diffs.iter().map(|d| d.abs()).sum::<f64>().max(1e-300);
    let mut extreme = 0u64;
    for mask in 0u64..(1 << n) {
        let s: f64 = diffs.iter().enumerate().map(|(i, d)| if mask >> i & 1 == 1 { -d } else { *d }).sum();
        if s.abs() >= observed - tol {
            extreme += 1;
        }
    }
    extreme as f64 / (1u64 << n) as f64
}

/// Two-sided p of the one-sample t test (n > 1).
fn t_test_p(mean: f64, sd: f64, n: usize) -> f64 {
    if sd == 0.0 {
        return if mean == 0.0 { 1.0 } else { 0.0 };
    }
    let t = mean / (sd / (n as f64).sqrt());
    let df = (n - 1) as f64;
    // P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2).
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The 97.5 % quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
        2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        // Cornish–Fisher: z + (z³ + z)/(4 df), accurate to 1e-3 above 30.
        _ => 1.959_964 + (1.959_964f64.powi(3) + 1.959_964) / (4.0 * df as f64),
    }
}

/// The regularised incomplete beta function I_x(a, b) (continued fraction, Numerical Recipes).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) { ln_front.exp() * beta_cf(a, b, x) / a } else { 1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-14 {
            break;
        }
    }
    h
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos (g = 7, n = 9).
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Holm's step-down adjustment of p values (same order as given).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let k = p.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![1.0; k];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((k - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// A directional claim "a > b" (or "a < b" with `greater` false) before the correction: the
/// verdict is decided by `finish` once every claim of the experiment is known.
#[derive(Clone, Debug)]
pub struct Claim {
    pub claim: String,
    pub kind: ClaimKind,
    pub unit: String,
    /// What to print before the statistics ("m = 1 88.1 vs m = 128 80.2").
    pub detail: String,
}

#[derive(Clone, Debug)]
pub enum ClaimKind {
    /// The claimed sign of a − b (true: a > b), paired over seeds.
    Directional { paired: Paired, greater: bool },
    /// |a − b| < margin, paired (the whole 95 % interval inside ±margin holds; outside: does not).
    Equivalent { paired: Paired, margin: f64 },
    /// Already decided (a deterministic check, a Monte-Carlo test, or a reason it cannot be tested).
    Decided { verdict: Outcome, effect: Option<f64>, ci: Option<[f64; 2]>, p: Option<f64>, n: usize, reason: Option<String> },
}

impl Claim {
    pub fn greater(claim: impl Into<String>, detail: impl Into<String>, unit: &str, paired: Paired) -> Self {
        Self { claim: claim.into(), kind: ClaimKind::Directional { paired, greater: true }, unit: unit.into(), detail: detail.into() }
    }
    pub fn less(claim: impl Into<String>, detail: impl Into<String>, unit: &str, paired: Paired) -> Self {
        Self { claim: claim.into(), kind: ClaimKind::Directional { paired, greater: false }, unit: unit.into(), detail: detail.into() }
    }
    pub fn equivalent(claim: impl Into<String>, detail: impl Into<String>, unit: &str, paired: Paired, margin: f64) -> Self {
        Self { claim: claim.into(), kind: ClaimKind::Equivalent { paired, margin }, unit: unit.into(), detail: detail.into() }
    }
    pub fn decided(claim: impl Into<String>, detail: impl Into<String>, unit: &str, verdict: Outcome, reason: Option<String>) -> Self {
        Self {
            claim: claim.into(),
            kind: ClaimKind::Decided { verdict, effect: None, ci: None, p: None, n: 0, reason },
            unit: unit.into(),
            detail: detail.into(),
        }
    }
    pub fn inconclusive(claim: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::decided(claim, "", "", Outcome::Inconclusive, Some(reason.into()))
    }
}

/// Formats a number in the claim's unit.
fn num(v: f64, unit: &str) -> String {
    if unit == "points" { format!("{v:+.2}") } else { format!("{:+}", super::sig(v)) }
}

/// The verdicts of one experiment's claims: Holm's correction over the tested claims, then
/// holds / does not hold / inconclusive, each with its sentence. `short` names why a run cannot
/// test its claims (a quick run), making "does not hold" inconclusive.
pub fn finish(claims: Vec<Claim>, short: Option<&str>) -> Vec<Verdict> {
    let tested: Vec<f64> = claims
        .iter()
        .filter_map(|c| match &c.kind {
            ClaimKind::Directional { paired, .. } | ClaimKind::Equivalent { paired, .. } if paired.n >= MIN_SEEDS => Some(paired.p),
            _ => None,
        })
        .collect();
    let adjusted = holm(&tested);
    let mut next = adjusted.into_iter();
    let k = tested.len();
    claims
        .into_iter()
        .map(|c| {
            let (verdict, effect, ci, p, p_holm, n, wins, reason) = match &c.kind {
                ClaimKind::Decided { verdict, effect, ci, p, n, reason } => (*verdict, *effect, *ci, *p, None, *n, None, reason.clone()),
                ClaimKind::Directional { paired, greater } => {
                    let sign = if *greater { 1.0 } else { -1.0 };
                    let wins = paired.diffs.iter().filter(|&&d| sign * d > 0.0).count();
                    if paired.n < MIN_SEEDS {
                        let r = format!("{} seed{}: at least {MIN_SEEDS} are needed to test a difference", paired.n, if paired.n == 1 { "" } else { "s" });
                        (Outcome::Inconclusive, Some(paired.mean), None, None, None, paired.n, Some(wins), Some(r))
                    } else {
                        let ph = next.next().expect("one adjusted p per tested claim");
                        let ci = Some(paired.ci);
                        if ph < ALPHA {
                            let v = if sign * paired.mean > 0.0 { Outcome::Holds } else { Outcome::DoesNotHold };
                            (v, Some(paired.mean), ci, Some(paired.p), Some(ph), paired.n, Some(wins), None)
                        } else {
                            let r = if paired.min_p * k as f64 >= ALPHA {
                                format!(
                                    "with {} seeds the sign-flip test cannot reach p < {ALPHA} after Holm's correction over {k} claims (smallest p {:.3})",
                                    paired.n, paired.min_p
                                )
                            } else {
                                format!("the difference is within seed noise (Holm-adjusted p = {ph:.3})")
                            };
                            (Outcome::Inconclusive, Some(paired.mean), ci, Some(paired.p), Some(ph), paired.n, Some(wins), Some(r))
                        }
                    }
                }
                ClaimKind::Equivalent { paired, margin } => {
                    let wins = paired.diffs.iter().filter(|&&d| d.abs() < *margin).count();
                    if paired.n < MIN_SEEDS {
                        let r = format!("{} seed{}: at least {MIN_SEEDS} are needed", paired.n, if paired.n == 1 { "" } else { "s" });
                        (Outcome::Inconclusive, Some(paired.mean), None, None, None, paired.n, Some(wins), Some(r))
                    } else {
                        let ph = next.next().expect("one adjusted p per tested claim");
                        let [lo, hi] = paired.ci;
                        let (v, r) = if lo > -margin && hi < *margin {
                            (Outcome::Holds, None)
                        } else if ph < ALPHA && (lo >= *margin || hi <= -margin) {
                            (Outcome::DoesNotHold, None)
                        } else {
                            (Outcome::Inconclusive, Some(format!("the 95 % interval [{lo:+.2}, {hi:+.2}] is neither inside nor outside ±{margin:.2}")))
                        };
                        (v, Some(paired.mean), Some(paired.ci), Some(paired.p), Some(ph), paired.n, Some(wins), r)
                    }
                }
            };
            let (verdict, reason) = match (verdict, short) {
                (Outcome::DoesNotHold, Some(why)) => (Outcome::Inconclusive, Some(format!("{why}; the measured sign is against the claim"))),
                (Outcome::Inconclusive, Some(why)) if reason.is_none() => (Outcome::Inconclusive, Some(why.to_string())),
                (v, _) => (v, reason),
            };
            let mut text = format!("{}: **{}**", c.claim, verdict.word().to_uppercase());
            if !c.detail.is_empty() {
                text.push_str(&format!(" — {}", c.detail));
            }
            let stats: Vec<String> = [
                effect.map(|e| format!("paired difference {} {}", num(e, &c.unit), c.unit).trim_end().to_string()),
                ci.map(|[a, b]| format!("95 % CI [{}, {}]", num(a, &c.unit), num(b, &c.unit))),
                wins.map(|w| format!("{w}/{n} seeds")),
                p.map(|p| format!("p = {}", super::sig(p))),
                p_holm.map(|p| format!("Holm p = {}", super::sig(p))),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !stats.is_empty() {
                text.push_str(&format!(" ({})", stats.join(", ")));
            }
            if let Some(r) = &reason {
                text.push_str(&format!("; inconclusive because {r}"));
            }
            text.push('.');
            Verdict { claim: c.claim, verdict, effect, ci, p, p_holm, n, wins, unit: c.unit, reason, text }
        })
        .collect()
}

/// The differences between recorded expectations (`{"experiment": {"claim": "verdict"}}`) and
/// the verdicts found, one line each; experiments not in the file are not compared.
pub fn differences(expected: &serde_json::Value, found: &[(super::Experiment, Vec<Verdict>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (exp, verdicts) in found {
        let Some(want) = expected.get(exp.name()).and_then(|v| v.as_object()) else { continue };
        for v in verdicts {
            let got = serde_json::to_value(v.verdict).expect("serialises");
            match want.get(&v.claim) {
                Some(w) if *w == got => {}
                Some(w) => out.push(format!("{}: \"{}\": expected {w}, found {got}", exp.name(), v.claim)),
                None => out.push(format!("{}: \"{}\": not in the expectations (found {got})", exp.name(), v.claim)),
            }
        }
        for claim in want.keys() {
            if !verdicts.iter().any(|v| &v.claim == claim) {
                out.push(format!("{}: \"{claim}\": expected but not found", exp.name()));
            }
        }
    }
    out
}

/// The paired differences and verdicts as a Markdown table.
pub fn verdict_table(v: &[Verdict]) -> String {
    let mut s = String::from("| claim | verdict | effect | 95 % interval | wins | p | Holm p |\n|---|---|---|---|---|---|---|\n");
    let f = |x: Option<f64>| x.map(super::sig).unwrap_or_else(|| "–".into());
    for v in v {
        s.push_str(&format!(
            "| {} | {} | {} {} | {} | {} | {} | {} |\n",
            v.claim.replace('|', "\\|"),
            v.verdict.word(),
            f(v.effect),
            v.unit,
            v.ci.map(|[a, b]| format!("[{}, {}]", super::sig(a), super::sig(b))).unwrap_or_else(|| "–".into()),
            v.wins.map(|w| format!("{w}/{}", v.n)).unwrap_or_else(|| "–".into()),
            f(v.p),
            f(v.p_holm)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_flip_p_is_exact_for_all_positive_differences() {
        // All 5 positive: only the all-plus and all-minus patterns are as extreme.
        assert!((sign_flip_p(&[1.0, 2.0, 3.0, 4.0, 5.0]) - 2.0 / 32.0).abs() < 1e-12);
        assert_eq!(sign_flip_p(&[1.0, -1.0]), 1.0);
    }

    #[test]
    fn t_interval_and_p_match_textbook_values() {
        let p = from_diffs(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0]);
        // mean 7.5, sd 4.1833, se 1.118, t(13) 2.160.
        assert!((p.ci[0] - (7.5 - 2.160 * 4.1833 / 14f64.sqrt())).abs() < 1e-3);
        // t = 6.708 on 13 df: p ≈ 1.45e-5.
        assert!(p.p > 1e-5 && p.p < 2e-5, "{}", p.p);
        assert!((t_test_p(2.228 * 1.0, 1.0 * 11f64.sqrt(), 11) - 0.05).abs() < 1e-3);
    }

    #[test]
    fn holm_multiplies_the_smallest_by_k_and_keeps_order() {
        let a = holm(&[0.01, 0.04, 0.03]);
        assert!((a[0] - 0.03).abs() < 1e-12 && (a[2] - 0.06).abs() < 1e-12 && (a[1] - 0.06).abs() < 1e-12);
    }

    #[test]
    fn too_few_seeds_or_a_short_run_is_inconclusive_never_does_not_hold() {
        let against = from_diffs(vec![-1.0, -2.0, -1.5, -1.2, -1.1, -1.3, -1.4, -1.6, -1.7, -1.8]);
        let v = finish(vec![Claim::greater("a > b", "", "points", against.clone())], None);
        assert_eq!(v[0].verdict, Outcome::DoesNotHold);
        let v = finish(vec![Claim::greater("a > b", "", "points", against)], Some("the quick run is too short"));
        assert_eq!(v[0].verdict, Outcome::Inconclusive);
        let v = finish(vec![Claim::greater("a > b", "", "points", from_diffs(vec![1.0, 2.0]))], None);
        assert_eq!(v[0].verdict, Outcome::Inconclusive);
        assert!(v[0].reason.as_deref().unwrap().contains("2 seeds"));
        let v = finish(vec![Claim::greater("a > b", "", "points", from_diffs(vec![1.0, 2.0, 1.0, 3.0, 2.0]))], None);
        assert_eq!(v[0].verdict, Outcome::Inconclusive, "5 seeds: the smallest sign-flip p is 1/16");
        assert!(v[0].reason.as_deref().unwrap().contains("cannot reach"));
    }
}
