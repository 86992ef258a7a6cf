//! The RW-SAM drift check: does reweighting one batch put m-SAM's implicit regulariser
//! (ρ/2m)·tr V into the expected step?
//!
//! A quadratic with per-sample Hessians: f_i(w) = ½(w − c_i)ᵀ A_i (w − c_i), A_i diagonal and
//! positive, so g_i = A_i(w − c_i) and H_i = A_i exactly (no network, no Hessian estimate). A
//! batch of B samples is drawn i.i.d.; the perturbations are unnormalised (the setting in which
//! the SDE drift of m-USAM is exact, docs/ALGORITHMS.md "Implicit regulariser"):
//! - m-USAM: E[step] = ∇f + ρH∇f + (ρ/m)·½∇tr V, with ½∇tr V = mean_i H_i g_i − H∇f (closed form);
//! - RW-USAM: scores s_i (exact ‖g_i‖, or the finite difference |f_i(w + δz) − f_i(w)|/δ with one
//!   Rademacher z per batch), p = softmax(λ·s) with λ solved every batch so that ESS = m (λ > 0 or
//!   λ < 0), e = ρ Σ p_i g_i, and the descent (1/B)Σ g_i(w + e) (uniform) or Σ p_i g_i(w + e)
//!   (weighted). Its expected step is a Monte-Carlo mean over batches (exact per-sample terms).
//!
//! The same question on the MLP at fixed weights, by Monte Carlo through the engine's own steps,
//! is `rwsam_drift_mlp` (the report's `mlp` section; its tables are drawn here).
//!
//! What is compared: the part of the expected step beyond ∇f + ρH∇f, projected on
//! u = ½∇tr V/‖½∇tr V‖, as a coefficient c (step − ∇f − ρH∇f)·u = c·ρ‖½∇tr V‖. m-USAM has c = 1/m
//! exactly; RW-SAM imitates m-SAM's regulariser if m·c ≈ 1 at ESS = m. Also reported: the
//! cosine of that extra drift with ½∇tr V, and the largest |z| of RW-SAM's mean step against
//! m-USAM's at the same m.

use super::rwsam_drift_mlp::MlpDriftReport;
use super::stats::{Outcome, Verdict};
use crate::optim::{gibbs_weights, lambda_for_ess_signed};
use crate::rng::{Rng, Stream};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RwDriftConfig {
    pub samples: usize,
    pub dim: usize,
    pub batch: usize,
    pub rho: f64,
    pub delta: f64,
    /// Target ESS values (= the m of the m-USAM compared with).
    pub ms: Vec<usize>,
    pub draws: usize,
    pub seed: u64,
}

impl RwDriftConfig {
    pub fn new(quick: bool, seed: u64) -> Self {
        Self { samples: 256, dim: 6, batch: 32, rho: 0.2, delta: 1e-3, ms: vec![1, 2, 4, 8, 16], draws: if quick { 2_000 } else { 20_000 }, seed }
    }
}

/// One RW-SAM arm at one target ESS.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RwDriftRow {
    pub m: usize,
    /// "exact λ>0 uniform", …
    pub arm: String,
    /// Mean λ over the batches.
    pub mean_lambda: f64,
    /// c of the extra drift along ½∇tr V (m-USAM: 1/m), its standard error, and m·c.
    pub coefficient: f64,
    pub coefficient_stderr: f64,
    pub m_times_c: f64,
    /// Cosine of the extra drift (beyond ∇f + ρH∇f) with ½∇tr V.
    pub cosine: f64,
    /// Largest |z| of the mean step against m-USAM's exact expected step at the same m.
    pub max_z_vs_m_usam: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RwDriftReport {
    pub config: RwDriftConfig,
    pub trace_v: f64,
    pub half_grad_trace_v_norm: f64,
    pub rows: Vec<RwDriftRow>,
    /// The same question on the MLP at fixed weights (`rwsam_drift_mlp`); absent in reports
    /// recorded before it.
    #[serde(default)]
    pub mlp: Option<MlpDriftReport>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

struct Quadratic {
    a: Vec<Vec<f64>>,
    g: Vec<Vec<f64>>,
}

impl Quadratic {
    fn new(cfg: &RwDriftConfig) -> Self {
        let mut rng = Rng::stream(cfg.seed, Stream::Data);
        let w: Vec<f64> = (0..cfg.dim).map(|_| 0.3 * rng.normal()).collect();
        let mut a = Vec::new();
        let mut g = Vec::new();
        for i in 0..cfg.samples {
            // Curvatures vary by sample (log-normal) and every 8th sample is sharper: H_i g_i varies.
            let s = if i % 8 == 0 { 4.0 } else { 1.0 };
            let ai: Vec<f64> = (0..cfg.dim).map(|_| s * (0.5 * rng.normal()).exp()).collect();
            let ci: Vec<f64> = (0..cfg.dim).map(|_| rng.normal()).collect();
            g.push(ai.iter().zip(&w).zip(&ci).map(|((a, w), c)| a * (w - c)).collect());
            a.push(ai);
        }
        Self { a, g }
    }
}

/// Runs every arm at every target ESS.
pub fn rwsam_drift(cfg: &RwDriftConfig) -> RwDriftReport {
    let q = Quadratic::new(cfg);
    let (n, d, b) = (cfg.samples, cfg.dim, cfg.batch);
    let mean = |f: &dyn Fn(usize, usize) -> f64| -> Vec<f64> { (0..d).map(|k| (0..n).map(|i| f(i, k)).sum::<f64>() / n as f64).collect() };
    let grad = mean(&|i, k| q.g[i][k]);
    let h_grad = mean(&|i, k| q.a[i][k] * grad[k]);
    let mean_hg = mean(&|i, k| q.a[i][k] * q.g[i][k]);
    let half_dtv: Vec<f64> = mean_hg.iter().zip(&h_grad).map(|(a, b)| a - b).collect();
    let tv_norm = dot(&half_dtv, &half_dtv).sqrt();
    let u: Vec<f64> = half_dtv.iter().map(|v| v / tv_norm).collect();
    let trace_v = (0..n).map(|i| dot(&q.g[i], &q.g[i])).sum::<f64>() / n as f64 - dot(&grad, &grad);
    let base: Vec<f64> = grad.iter().zip(&h_grad).map(|(g, h)| g + cfg.rho * h).collect();
    // Arms: (estimator exact?, negative λ?, weighted descent?).
    let arms: Vec<(bool, bool, bool)> =
        [true, false].iter().flat_map(|&e| [false, true].iter().flat_map(move |&neg| [false, true].map(|w| (e, neg, w)))).collect();
    let name = |(e, neg, w): (bool, bool, bool)| {
        format!("{} {} {}", if e { "exact" } else { "fd" }, if neg { "λ<0" } else { "λ>0" }, if w { "weighted" } else { "uniform" })
    };
    let mut rows = Vec::new();
    let mut rng = Rng::stream(cfg.seed, Stream::Batches);
    for &m in &cfg.ms {
        let m_usam: Vec<f64> = base.iter().zip(&half_dtv).map(|(b, v)| b + cfg.rho / m as f64 * v).collect();
        let k = arms.len();
        let (mut sum, mut sum_sq) = (vec![vec![0.0; d]; k], vec![vec![0.0; d]; k]);
        let (mut proj, mut proj_sq, mut lambdas) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        let mut picks = vec![0usize; b];
        for _ in 0..cfg.draws {
            picks.iter_mut().for_each(|p| *p = rng.below(n));
            let z: Vec<f64> = (0..d).map(|_| if rng.below(2) == 0 { -1.0 } else { 1.0 }).collect();
            let exact: Vec<f64> = picks.iter().map(|&i| dot(&q.g[i], &q.g[i]).sqrt()).collect();
            // f_i(w + δz) − f_i(w) = δ g_iᵀz + ½δ² zᵀA_i z.
            let fd: Vec<f64> =
                picks.iter().map(|&i| (cfg.delta * dot(&q.g[i], &z) + 0.5 * cfg.delta * cfg.delta * q.a[i].iter().sum::<f64>()).abs() / cfg.delta).collect();
            for (j, &(e, neg, weighted)) in arms.iter().enumerate() {
                // λ and the weights are shared by the two descents of one (estimator, sign).
                let scores = if e { &exact } else { &fd };
                let lambda = lambda_for_ess_signed(scores, m as f64, neg);
                let p = gibbs_weights(scores, lambda);
                let mut eps = vec![0.0; d];
                for (r, &i) in picks.iter().enumerate() {
                    eps.iter_mut().zip(&q.g[i]).for_each(|(s, g)| *s += cfg.rho * p[r] * g);
                }
                let mut step = vec![0.0; d];
                for (r, &i) in picks.iter().enumerate() {
                    let wgt = if weighted { p[r] } else { 1.0 / b as f64 };
                    for kk in 0..d {
                        step[kk] += wgt * (q.g[i][kk] + q.a[i][kk] * eps[kk]);
                    }
                }
                for kk in 0..d {
                    sum[j][kk] += step[kk];
                    sum_sq[j][kk] += step[kk] * step[kk];
                }
                let pr: f64 = step.iter().zip(&base).zip(&u).map(|((s, b), u)| (s - b) * u).sum();
                proj[j] += pr;
                proj_sq[j] += pr * pr;
                lambdas[j] += lambda;
            }
        }
        let nd = cfg.draws as f64;
        for (j, &arm) in arms.iter().enumerate() {
            let mu: Vec<f64> = sum[j].iter().map(|s| s / nd).collect();
            let se: Vec<f64> = sum_sq[j].iter().zip(&mu).map(|(sq, m)| ((sq / nd - m * m).max(0.0) / (nd - 1.0)).sqrt()).collect();
            let extra: Vec<f64> = mu.iter().zip(&base).map(|(a, b)| a - b).collect();
            let pm = proj[j] / nd;
            let pse = ((proj_sq[j] / nd - pm * pm).max(0.0) / (nd - 1.0)).sqrt();
            let scale = cfg.rho * tv_norm;
            let cos = dot(&extra, &half_dtv) / (dot(&extra, &extra).sqrt() * tv_norm).max(1e-300);
            let max_z = mu.iter().zip(&m_usam).zip(&se).map(|((a, b), s)| (a - b).abs() / s.max(1e-300)).fold(0.0, f64::max);
            rows.push(RwDriftRow {
                m,
                arm: name(arm),
                mean_lambda: lambdas[j] / nd,
                coefficient: pm / scale,
                coefficient_stderr: pse / scale,
                m_times_c: m as f64 * pm / scale,
                cosine: cos,
                max_z_vs_m_usam: max_z,
            });
        }
    }
    RwDriftReport { config: cfg.clone(), trace_v, half_grad_trace_v_norm: tv_norm, rows, mlp: None }
}

/// The tables: one row per (ESS, arm) on the quadratic, then the MLP's section.
pub fn markdown(r: &RwDriftReport) -> String {
    let c = &r.config;
    let mut s = format!(
        "### Quadratic\n\nQuadratic with per-sample diagonal Hessians, n = {}, d = {}, B = {}, ρ = {} (unnormalised perturbations), {} batches per ESS; tr V = {:.4}, ‖½∇tr V‖ = {:.4}. c: the extra drift along ½∇tr V in units of ρ‖½∇tr V‖ (m-USAM at m: c = 1/m; SAM at B: 1/B = {:.4}).\n\n",
        c.samples,
        c.dim,
        c.batch,
        c.rho,
        c.draws,
        r.trace_v,
        r.half_grad_trace_v_norm,
        1.0 / c.batch as f64
    );
    s.push_str("| ESS = m | arm | mean λ | c | ± stderr | m·c (m-USAM: 1) | cosine with ½∇tr V | max \\|z\\| vs m-USAM |\n|---|---|---|---|---|---|---|---|\n");
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.4} | {:.4} | {:.3} | {:.3} | {:.1} |\n",
            row.m,
            row.arm,
            super::sig(row.mean_lambda),
            row.coefficient,
            row.coefficient_stderr,
            row.m_times_c,
            row.cosine,
            row.max_z_vs_m_usam
        ));
    }
    if let Some(mlp) = &r.mlp {
        s.push('\n');
        s.push_str(&mlp_markdown(mlp));
    }
    s
}

/// The MLP section of the report: its header, m-USAM against the SDE drift, then the arms.
fn mlp_markdown(r: &MlpDriftReport) -> String {
    let c = &r.config;
    let t = &c.train;
    let mut s = format!(
        "### MLP at fixed weights\n\nw: the end point of one SGD run of the base config ({} samples, hidden {:?}, batch {}, {} epochs, lr {}, seed {}, split seed {}): one weight vector, {} parameters; at w the training loss is {:.4} and accuracy {:.3}, ‖∇f‖ = {}, tr V = {}, ‖½∇tr V‖ = {} (½∇tr V = mean_i H_i g_i − H∇f by central differences over ±{}·g_i and ±{}·∇f; ∂_u tr V by a central difference of tr V: {}, 2‖½∇tr V‖ = {}). {} draws of one batch of B = {} (with replacement, seed {}), shared by every arm; ρ = {} (unnormalised perturbations), δ = {}. Every step is the engine's. c: E[D·u]/E[D_m·u], the extra drift beyond USAM along u = ½∇tr V/‖½∇tr V‖ relative to m-USAM's at the same m on the same batches (m-USAM: 1); the ρ-part leaves out weighted descent's reweighted gradient g_p − g_B at w. ± are standard errors over draws.\n\n",
        r.n_train,
        t.model.hidden,
        t.batch,
        t.epochs,
        t.optimizer.lr,
        t.seed,
        t.split_seed.map_or_else(|| "per seed".to_string(), |v| v.to_string()),
        r.n_params,
        r.train_loss,
        r.train_accuracy,
        super::sig(r.grad_norm),
        super::sig(r.trace_v),
        super::sig(r.half_grad_trace_v_norm),
        c.fd_scale,
        c.fd_scale,
        super::sig(r.trace_v_slope_fd),
        super::sig(2.0 * r.half_grad_trace_v_norm),
        c.draws,
        c.batch,
        c.seed,
        c.rho,
        c.delta
    );
    s.push_str("| m | m-USAM E[D·u] | ± | ÷ ρ(1/m − 1/B)‖½∇tr V‖ (SDE: 1) | ± | cosine with ½∇tr V | z vs (∇f + ∇R_m)·u | z without the tr V term |\n|---|---|---|---|---|---|---|---|\n");
    for m in &r.m_usam {
        s.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} |\n",
            m.m,
            super::sig(m.extra_along_u),
            super::sig(m.extra_along_u_stderr),
            m.sde_ratio,
            m.sde_ratio_stderr,
            m.cosine,
            m.drift_z,
            m.drift_z_without_trace_v
        ));
    }
    s.push_str("\n| ESS = m | arm | mean λ | mean ESS | c (m-USAM: 1) | ± | c of the ρ-part | ± | cosine with ½∇tr V | with m-USAM's D | ρ-part's cosine |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            row.m,
            row.arm,
            super::sig(row.mean_lambda),
            row.mean_ess,
            row.coefficient,
            row.coefficient_stderr,
            row.rho_coefficient,
            row.rho_coefficient_stderr,
            row.cosine,
            row.cosine_vs_m_usam,
            row.rho_cosine
        ));
    }
    s
}

/// Whether some arm has m-USAM's coefficient (m·c within 0.75–1.33 and cosine > 0.8) at every
/// ESS below B/2; then the MLP's verdicts, when the report has its section.
pub fn verdicts(r: &RwDriftReport) -> Vec<Verdict> {
    let mut arms: Vec<String> = r.rows.iter().map(|row| row.arm.clone()).collect();
    arms.dedup();
    arms.sort();
    arms.dedup();
    let ok = |row: &RwDriftRow| row.m_times_c > 0.75 && row.m_times_c < 4.0 / 3.0 && row.cosine > 0.8;
    let best = arms
        .iter()
        .map(|a| {
            let rows: Vec<&RwDriftRow> = r.rows.iter().filter(|row| &row.arm == a).collect();
            let worst = rows.iter().map(|row| row.m_times_c.max(1e-6).ln().abs()).fold(0.0, f64::max);
            (a.clone(), rows.iter().all(|row| ok(row)), worst, rows)
        })
        .min_by(|x, y| x.2.total_cmp(&y.2))
        .expect("arms");
    let all_bad = arms.iter().all(|a| !r.rows.iter().filter(|row| &row.arm == a).all(ok));
    let verdict = if all_bad { Outcome::DoesNotHold } else { Outcome::Holds };
    let numbers: Vec<String> = best.3.iter().map(|row| format!("m = {}: m·c = {:.2} (cos {:.2})", row.m, row.m_times_c, row.cosine)).collect();
    let at1: Vec<String> = r.rows.iter().filter(|row| row.m == 1).map(|row| format!("{} {:.3}", row.arm, row.m_times_c)).collect();
    let claim = "some λ (either sign, exact or finite-difference scores, uniform or weighted descent) with ESS = m gives RW-SAM m-SAM's (ρ/2m)·tr V drift term"
        .to_string();
    let text = format!(
        "{claim}: **{}** — the closest arm is {} ({}); m·c at ESS = 1 per arm: {}. m-USAM has m·c = 1 exactly.",
        verdict.word().to_uppercase(),
        best.0,
        numbers.join(", "),
        at1.join(", ")
    );
    let mut out = vec![Verdict {
        claim,
        verdict,
        effect: Some(best.2.exp()),
        ci: None,
        p: None,
        p_holm: None,
        n: r.config.draws,
        wins: None,
        unit: "worst m·c factor of the closest arm".into(),
        reason: None,
        text,
    }];
    out.extend(r.mlp.iter().flat_map(super::rwsam_drift_mlp::verdicts));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_weights_give_sams_coefficient_one_over_b() {
        // ESS = B: λ = 0, RW-USAM is USAM on the batch, c = 1/B up to Monte-Carlo error.
        let mut cfg = RwDriftConfig::new(true, 3);
        cfg.ms = vec![cfg.batch];
        cfg.draws = 4000;
        let r = rwsam_drift(&cfg);
        for row in &r.rows {
            assert!((row.coefficient - 1.0 / cfg.batch as f64).abs() < 4.5 * row.coefficient_stderr + 1e-3, "{row:?}");
            assert!(row.max_z_vs_m_usam < 5.0, "{row:?}");
        }
    }
}
