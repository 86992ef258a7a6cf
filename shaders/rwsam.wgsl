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

// The softmax maximum of λ·s: λ·max(s) for λ ≥ 0, λ·min(s) otherwise.
fn logit_max(lambda: f32, mm: vec2<f32>) -> f32 {
    return select(lambda * mm.y, lambda * mm.x, lambda >= 0.0);
}

// ESS = (Σ e_r)² / Σ e_r² with e_r = exp(λ·s_r − max) (= 1/Σ p_r²).
fn ess_at(t: u32, lambda: f32, mm: vec2<f32>) -> f32 {
    let mx = logit_max(lambda, mm);
    var a = 0.0;
    var b = 0.0;
    for (var r = t; r < p.rows; r += 256u) {
        let e = exp(lambda * scores[r] - mx);
        a += e;
        b += e * e;
    }
    wg_a[t] = a;
    wg_b[t] = b;
    let s = reduce_pair(t);
    return s.x * s.x / s.y;
}

// One workgroup over the batch (rows = B; stats row at off1):
// scores → s (√ if GIBBS_SQRT; ÷ mean if GIBBS_NORMALIZE); λ = f0, or with GIBBS_TARGET_ESS the
// bisection of optim::lambda_for_ess (bracket by doubling, then 60 halvings); p = softmax(λ·s)
// → scale[row]; ESS and λ → stats; s and p → stats[off1 + STAT_HEAD …] for the readback.
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
    var lambda = p.f0;
    if ((p.flags & GIBBS_TARGET_ESS) != 0u) {
        let ess_goal = p.f1;
        lambda = 0.0;
        if (ess_goal < f32(n) && ess_at(t, 0.0, mm) > ess_goal) {
            var hi = 1.0;
            var bracketed = false;
            for (var k = 0u; k < 41u; k++) {
                let e = ess_at(t, hi, mm);
                if (!bracketed) {
                    if (e > ess_goal) { hi *= 2.0; } else { bracketed = true; }
                }
            }
            var lo = 0.0;
            for (var k = 0u; k < 60u; k++) {
                let mid = 0.5 * (lo + hi);
                if (ess_at(t, mid, mm) > ess_goal) { lo = mid; } else { hi = mid; }
            }
            lambda = 0.5 * (lo + hi);
        }
    }
    let mx = logit_max(lambda, mm);
    var a = 0.0;
    for (var r = t; r < n; r += 256u) { a += exp(lambda * scores[r] - mx); }
    wg_a[t] = a;
    wg_b[t] = 0.0;
    let sum = reduce_pair(t).x;
    var b = 0.0;
    for (var r = t; r < n; r += 256u) {
        let pr = exp(lambda * scores[r] - mx) / sum;
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
