// reduce.wgsl — norms of gradient vectors and the norm entries of a step's statistics.
// Mirrors optim::norm, the ASAM norm ‖T·g‖ in engine::step::perturb_point, and the
// grad_norm / perturbation_norm of StepReport.

@group(0) @binding(0) var<storage, read> vec: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> norms: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;

var<workgroup> wg_sum: array<f32, 256>;

// Workgroup g < rows (logical grid (rows, 1)): norms[off0 + g] = √(Σ_k (t_k^flags · vec[g·n + k])²)
// with t_k = |params[k]| + f0 (ASAM's T; flags = 0, 1 or 2 is the power of T). Each thread sums
// a fixed stride of k, then a fixed tree: deterministic.
@compute @workgroup_size(256)
fn sq_norm_groups(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = tiled_wg(wid, nwg).x;
    if (g >= p.rows) { return; }   // the whole workgroup: uniform
    let base = g * p.n;
    var acc = 0.0;
    for (var k = t; k < p.n; k += 256u) {
        var v = vec[base + k];
        if (p.flags >= 1u) {
            let tk = abs(params[k]) + p.f0;
            v *= tk;
            if (p.flags >= 2u) { v *= tk; }
        }
        acc += v * v;
    }
    wg_sum[t] = acc;
    for (var s = 128u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (t < s) { wg_sum[t] += wg_sum[t + s]; }
    }
    workgroupBarrier();
    if (t == 0u) { norms[p.off0 + g] = sqrt(wg_sum[0]); }
}

const SS_GRAD_NORM: u32 = 1u;      // stats.grad_norm = norms[a_off]
const SS_PERT_SHIFT: u32 = 1u;     // bits 1–2: perturbation mode
const SS_PERT_NONE: u32 = 0u;      // SGD: ‖e‖ = 0 and the perturbed loss is the loss
const SS_PERT_NORMALIZED: u32 = 1u;   // mean_j ρ·n_j/(n_j + ε) over n = M groups
const SS_PERT_UNNORMALIZED: u32 = 2u; // mean_j ρ·n_j
const SS_PERT_ASAM: u32 = 3u;         // ρ·‖T²g‖/(‖Tg‖ + ε), ‖T²g‖ = norms[off0]

// One thread: fills the norm entries of the stats row at off1 (f0 = ρ; ‖g‖ at norms[a_off]).
@compute @workgroup_size(1)
fn step_stats() {
    let s = p.off1;
    // −1 marks "not computed" (a norm is never negative; WGSL has no NaN constant that every
    // compiler accepts: Chromium's rejects bitcast<f32>(0x7fc00000u)).
    stats[s + STAT_GRAD_NORM] = select(-1.0, norms[p.a_off], (p.flags & SS_GRAD_NORM) != 0u);
    let mode = (p.flags >> SS_PERT_SHIFT) & 3u;
    var pert = 0.0;
    if (mode == SS_PERT_NONE) {
        stats[s + STAT_PERT_LOSS] = stats[s + STAT_LOSS];
    } else if (mode == SS_PERT_ASAM) {
        pert = p.f0 * norms[p.off0] / (norms[0] + NORM_EPS);
    } else {
        for (var j = 0u; j < p.n; j++) {
            let nj = norms[j];
            pert += select(p.f0 * nj, p.f0 * nj / (nj + NORM_EPS), mode == SS_PERT_NORMALIZED);
        }
        pert /= f32(p.n);
    }
    stats[s + STAT_PERT_NORM] = pert;
}
