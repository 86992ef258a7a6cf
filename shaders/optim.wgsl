// optim.wgsl — perturbed weight copies, the base SGD update, the finite-difference probe point.
// Mirrors engine::step::perturb_point, optim::base_update and the probe point of RW-SAM's
// finite-difference estimator.

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read> ugrad: array<f32>;
@group(0) @binding(4) var<storage, read> norms: array<f32>;
@group(0) @binding(5) var<storage, read_write> wcopies: array<f32>;

const PERTURB_NORMALIZED: u32 = 1u;
const PERTURB_ASAM: u32 = 2u;

// Copy j (logical workgroup y) of n parameters:
//   wcopies[j·n + k] = params[k] + c_j · T_k² · ugrad[j·n + k]
// c_j = f0/(norms[j] + ε) when flags & PERTURB_NORMALIZED (SAM, m-SAM, ASAM, RW-SAM, n-SAM),
// c_j = f0 otherwise (USAM, m-USAM); T_k = |params[k]| + f1 with PERTURB_ASAM, else 1.
// Logical grid (⌈n/64⌉, M): ⌈n/64⌉ passes 65535 above 4,194,240 parameters.
@compute @workgroup_size(64)
fn perturb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = linear_id(gid, nwg);
    let j = gid.z;
    if (k >= p.n) { return; }
    var c = p.f0;
    if ((p.flags & PERTURB_NORMALIZED) != 0u) {
        c = p.f0 / (norms[j] + NORM_EPS);
    }
    var e = ugrad[j * p.n + k] * c;
    if ((p.flags & PERTURB_ASAM) != 0u) {
        let t = abs(params[k]) + p.f1;
        e = t * t * ugrad[j * p.n + k] * c;
    }
    wcopies[j * p.n + k] = params[k] + e;
}

// Torch-style SGD: d = g + wd·w; v = μ·v + d; w ← w − η·v  (f0 = η, f1 = μ, f2 = wd).
@compute @workgroup_size(64)
fn update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = linear_id(gid, nwg);
    if (k >= p.n) { return; }
    let w = params[k];
    let d = grad[k] + p.f2 * w;
    let v = p.f1 * velocity[k] + d;
    velocity[k] = v;
    params[k] = w - p.f0 * v;
}

// wcopies[k] = params[k] + δ·z_k, z the Rademacher vector of `key` (f0 = δ).
@compute @workgroup_size(64)
fn fd_point(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = linear_id(gid, nwg);
    if (k >= p.n) { return; }
    wcopies[k] = params[k] + p.f0 * rademacher(p.key, k);
}
