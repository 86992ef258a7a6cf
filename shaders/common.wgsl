// common.wgsl — prepended to every kernel family (WGSL has no includes).
//
// `Params` is the one per-dispatch uniform of every kernel, mirrored by `Params` in
// src/engine/gpu/kernels.rs (96 bytes; a test checks the sizes agree). Each dispatch gets its own
// 256-byte slot of one uniform buffer (dynamic offset), so many steps record into one submit.
// What each field means is stated in the header of each entry point.

struct Params {
    rows: u32,         // samples in this dispatch
    in_dim: u32,       // layer input width
    out_dim: u32,      // layer output width (classes for the loss)
    group: u32,        // samples per weight copy / per micro-batch
    a_off: u32,        // offset of this layer's input rows in `acts`
    z_off: u32,        // offset of this layer's output rows in `pre` / `deltas`
    w_off: u32,        // offset of the layer's W inside one parameter vector
    b_off: u32,        // offset of the layer's b inside one parameter vector
    copy_stride: u32,  // elements between parameter copies (0: every row uses copy 0)
    act: u32,          // activation id (ACT_*)
    n: u32,            // a length: parameters, groups, ...
    flags: u32,        // kernel-specific switches
    off0: u32,         // kernel-specific offsets
    off1: u32,
    key: u32,          // Rademacher probe key (rng::probe_key)
    pad: u32,
    f0: f32,           // kernel-specific scalars (learning rate, ρ, δ, λ, scale, ...)
    f1: f32,
    f2: f32,
    f3: f32,
    f4: f32,
    f5: f32,
    f6: f32,
    f7: f32,
}

@group(1) @binding(0) var<uniform> p: Params;

const ACT_RELU: u32 = 0u;
const ACT_TANH: u32 = 1u;
const ACT_GELU: u32 = 2u;
const ACT_NONE: u32 = 255u;
const GELU_C: f32 = 0.7978845608028654;   // √(2/π)
const NORM_EPS: f32 = 1e-12;               // docs/ALGORITHMS.md#notation: x/‖x‖ uses ‖x‖ + 1e-12

// Stats row of one step (see STATS_* in src/engine/gpu/mod.rs).
const STAT_LOSS: u32 = 0u;
const STAT_CORRECT: u32 = 1u;
const STAT_GRAD_NORM: u32 = 2u;
const STAT_PERT_NORM: u32 = 3u;
const STAT_PERT_LOSS: u32 = 4u;
const STAT_ESS: u32 = 5u;
const STAT_LAMBDA: u32 = 6u;
const STAT_HEAD: u32 = 8u;

// tanh that cannot overflow (|z| > 15 is ±1 in f32 anyway).
fn safe_tanh(z: f32) -> f32 {
    return tanh(clamp(z, -15.0, 15.0));
}

// σ(z); mirrors Activation::apply (src/model/mod.rs).
fn activate(z: f32, act: u32) -> f32 {
    switch act {
        case 0u: { return max(z, 0.0); }
        case 1u: { return safe_tanh(z); }
        case 2u: { return 0.5 * z * (1.0 + safe_tanh(GELU_C * (z + 0.044715 * z * z * z))); }
        default: { return z; }
    }
}

// σ'(z); mirrors Activation::derivative.
fn activate_grad(z: f32, act: u32) -> f32 {
    switch act {
        case 0u: { return select(0.0, 1.0, z > 0.0); }
        case 1u: { let t = safe_tanh(z); return 1.0 - t * t; }
        case 2u: {
            let t = safe_tanh(GELU_C * (z + 0.044715 * z * z * z));
            let du = GELU_C * (1.0 + 3.0 * 0.044715 * z * z);
            return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du;
        }
        default: { return 1.0; }
    }
}

// lowbias32; mirrors rng::hash32.
fn hash32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

// Entry i of the Rademacher vector with this key; mirrors rng::rademacher.
fn rademacher(key: u32, i: u32) -> f32 {
    return select(-1.0, 1.0, (hash32(key ^ hash32(i)) & 1u) == 1u);
}

// Every grid is tiled by `tile_grid` (src/engine/gpu/record.rs): a logical grid of (x, y)
// workgroups is dispatched as (x0, x1, y) with x = x0 + x1·nwg.x (x1 > 1 only when x would
// exceed the 65535 workgroups a dimension allows; the last row may hold workgroups past x,
// which every kernel's bounds check discards). The logical workgroup of `wid`:
fn tiled_wg(wid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
    return vec2<u32>(wid.x + wid.y * nwg.x, wid.z);
}

// Linear invocation index along the logical x of a kernel of 64 threads per workgroup
// (= tiled_wg(wid, nwg).x · 64 + local x).
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.y * nwg.x * 64u + gid.x;
}
