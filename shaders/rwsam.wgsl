// rwsam.wgsl — RW-SAM's per-sample norm estimates and Gibbs weights.
// Mirrors Mlp::per_sample_sq_norms, the finite-difference estimator of engine::step, and
// optim::{normalize_scores, lambda_for_ess, gibbs_weights, ess}.

@group(0) @binding(0) var<storage, read> acts: array<f32>;
@group(0) @binding(1) var<storage, read> deltas: array<f32>;
@group(0) @binding(2) var<storage, read> losses: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

// One layer's share of ‖∇f_row‖²: scores[off0 + row] (+)= ‖d_row‖²·(‖a_row‖² + 1) (a at a_off, width
// in; d at z_off, width out; flags & 1 accumulates). Dispatch ⌈rows/64⌉.
@compute @workgroup_size(64)
fn sample_sq_norms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_id(gid, nwg);
    if (row >= p.rows) { return; }
    var aa = 0.0;
    for (var i = 0u; i < p.in_dim; i++) {
        let v = acts[p.a_off + row * p.in_dim + i];
        aa += v * v;
    }
    var dd = 0.0;
    for (var o = 0u; o < p.out_dim; o++) {
        let v = deltas[p.z_off + row * p.out_dim + o];
        dd += v * v;
    }
    let share = dd * (aa + 1.0);
    let at = p.off0 + row;
    scores[at] = select(share, scores[at] + share, (p.flags & 1u) != 0u);
}

// s_row = |f_row(w + δz) − f_row(w)| / δ with f(w + δz) at losses[off0 + row] (f0 = δ).
@compute @workgroup_size(64)
fn fd_scores(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_id(gid, nwg);
    if (row >= p.rows) { return; }
    scores[row] = abs(losses[p.off0 + row] - losses[row]) / p.f0;
}

const GIBBS_SQRT: u32 = 1u;        // scores hold ‖∇f_i‖² (exact estimator): take the root
const GIBBS_NORMALIZE: u32 = 2u;   // divide by the batch mean (scale-free λ)
const GIBBS_TARGET_ESS: u32 = 4u;  // solve λ ≥ 0 so that ESS = f1
const LAMBDA_CAP: f32 = 1099511627776.0;  // 2^40 = optim::LAMBDA_CAP
const SCORE_SPAN_CAP: f32 = 1e24;         // optim::SCORE_SPAN_CAP

var<workgroup> wg_a: array<f32, 256>;
var<workgroup> wg_b: array<f32, 256>;
var<workgroup> wg_result: vec2<f32>;

// Sum of wg_a and of wg_b over the workgroup, in a fixed tree. Uniform control flow only.
fn reduce_pair(t: u32) -> vec2<f32> {
    for (var s = 128u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (t < s) {
            wg_a[t] += wg_a[t + s];
            wg_b[t] += wg_b[t + s];
        }
    }
    workgroupBarrier();
    if (t == 0u) { wg_result = vec2<f32>(wg_a[0], wg_b[0]); }
    // A uniform value, so that callers may branch on it around barriers.
    return workgroupUniformLoad(&wg_result);
}

fn max_min(t: u32) -> vec2<f32> {
    var hi = -3.4e38;
    var lo = 3.4e38;
    for (var r = t; r < p.rows; r += 256u) {
        hi = max(hi, scores[r]);
        lo = min(lo, scores[r]);
    }
    wg_a[t] = hi;
    wg_b[t] = lo;
    for (var s = 128u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (t < s) {
            wg_a[t] = max(wg_a[t], wg_a[t + s]);
            wg_b[t] = min(wg_b[t], wg_b[t + s]);
        }
    }
    workgroupBarrier();
    if (t == 0u) { wg_result = vec2<f32>(wg_a[0], wg_b[0]); }
    // A uniform value, so that callers may branch on it around barriers.
    return workgroupUniformLoad(&wg_result);
}

// e = exp(λ·(s − s_ref)) with s_ref = max(s) for λ ≥ 0 and min(s) otherwise (mm = (max, min)):
// the exponent is ≤ 0, exactly 0 at s_ref with or without FMA contraction (there is no
// multiply-add), and finite (|λ| ≤ 2^40, |s − s_ref| clamped to 1e24). optim::gibbs_weights.
fn gibbs_term(lambda: f32, s: f32, mm: vec2<f32>) -> f32 {
    let s_ref = select(mm.y, mm.x, lambda >= 0.0);
    let x = lambda * clamp(s - s_ref, -SCORE_SPAN_CAP, SCORE_SPAN_CAP);
    return select(exp(x), 1.0, x == 0.0);
}

// ESS = (Σ e_r)² / Σ e_r² (= 1/Σ p_r²).
fn ess_at(t: u32, lambda: f32, mm: vec2<f32>) -> f32 {
    var a = 0.0;
    var b = 0.0;
    for (var r = t; r < p.rows; r += 256u) {
        let e = gibbs_term(lambda, scores[r], mm);
        a += e;
        b += e * e;
    }
    wg_a[t] = a;
    wg_b[t] = b;
    let s = reduce_pair(t);
    return s.x * s.x / s.y;
}

// One workgroup over the batch (rows = B; stats row at off1):
// scores → s (√ if GIBBS_SQRT; ÷ mean if GIBBS_NORMALIZE); λ = f0 (clamped to ±2^40), or with
// GIBBS_TARGET_ESS the solve of optim::lambda_for_ess (bracket by doubling 1 … 2^40, then 60
// halvings; λ = 0 when the target is ≥ B or the scores are all equal, λ = 2^40 when the target
// is out of reach); p = softmax(λ·s) → scale[row], except that λ = 0 or all-equal scores give
// every row f2, the host's 1/B (the very value SAM's rows weigh with: RW-SAM at λ = 0 is SAM
// bit for bit whatever this GPU's division rounds); ESS and λ → stats; s and p →
// stats[off1 + STAT_HEAD …] for the readback.
@compute @workgroup_size(256)
fn gibbs(@builtin(local_invocation_index) t: u32) {
    let n = p.rows;
    for (var r = t; r < n; r += 256u) {
        var s = scores[r];
        if ((p.flags & GIBBS_SQRT) != 0u) { s = sqrt(max(s, 0.0)); }
        scores[r] = s;
    }
    storageBarrier();
    workgroupBarrier();
    if ((p.flags & GIBBS_NORMALIZE) != 0u) {
        var a = 0.0;
        for (var r = t; r < n; r += 256u) { a += scores[r]; }
        wg_a[t] = a;
        wg_b[t] = 0.0;
        let sum = reduce_pair(t).x;
        let inv = 1.0 / (sum / f32(n) + NORM_EPS);
        for (var r = t; r < n; r += 256u) { scores[r] = scores[r] * inv; }
        storageBarrier();
        workgroupBarrier();
    }
    let mm = max_min(t);
    // All scores equal (B = 1 included): every λ gives the uniform weights.
    let tied = mm.x == mm.y;
    var lambda = clamp(p.f0, -LAMBDA_CAP, LAMBDA_CAP);
    if ((p.flags & GIBBS_TARGET_ESS) != 0u) {
        let ess_goal = p.f1;
        // The sign of f0 picks the sign of the solved λ (optim::lambda_for_ess_signed).
        let sgn = select(1.0, -1.0, p.f0 < 0.0);
        lambda = 0.0;
        if (ess_goal < f32(n) && !tied) {
            var hi = 1.0;
            var state = 0u;   // 0: doubling, 1: bracketed, 2: out of reach (ESS(2^40) > goal)
            for (var k = 0u; k < 41u; k++) {
                let e = ess_at(t, sgn * hi, mm);
                if (state == 0u) {
                    if (e <= ess_goal) {
                        state = 1u;
                    } else if (hi >= LAMBDA_CAP) {
                        state = 2u;
                    } else {
                        hi *= 2.0;
                    }
                }
            }
            if (state == 2u) {
                lambda = sgn * LAMBDA_CAP;
            } else {
                var lo = 0.0;
                for (var k = 0u; k < 60u; k++) {
                    let mid = 0.5 * (lo + hi);
                    if (ess_at(t, sgn * mid, mm) > ess_goal) { lo = mid; } else { hi = mid; }
                }
                lambda = sgn * 0.5 * (lo + hi);
            }
        }
    }
    let uniform = lambda == 0.0 || tied;
    var a = 0.0;
    for (var r = t; r < n; r += 256u) { a += gibbs_term(lambda, scores[r], mm); }
    wg_a[t] = a;
    wg_b[t] = 0.0;
    let sum = reduce_pair(t).x;
    var b = 0.0;
    for (var r = t; r < n; r += 256u) {
        let pr = select(gibbs_term(lambda, scores[r], mm) / sum, p.f2, uniform);
        scale[r] = pr;
        b += pr * pr;
        stats[p.off1 + STAT_HEAD + r] = scores[r];
        stats[p.off1 + STAT_HEAD + n + r] = pr;
    }
    wg_a[t] = b;
    wg_b[t] = 0.0;
    let sq = reduce_pair(t).x;
    if (t == 0u) {
        stats[p.off1 + STAT_ESS] = 1.0 / sq;
        stats[p.off1 + STAT_LAMBDA] = lambda;
    }
}
