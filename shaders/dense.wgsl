// dense.wgsl — the dense layer's forward pass, the backward pass to its input, and its weight
// gradients, for rows that may each read their own parameter copy (m-SAM: copy = row / group).
// Mirrors Mlp::forward, Mlp::backprop and Mlp::weight_grads (src/model/mlp.rs).
//
// Buffers (flat, per-layer regions at the offsets in Params):
//   weights: one or more parameter vectors (copy c starts at c·copy_stride); W is (out, in)
//   acts:    layer inputs, rows × in at a_off; the next layer's input at off0
//   pre:     pre-activations z, rows × out at z_off
//   deltas:  d = ∂f_i/∂z per sample (not divided by the batch), same layout as pre
//   scale:   per-sample weights s_row of the weight gradient (RW-SAM's p)
//   grads:   gradient output, one or more parameter vectors
//   base_pre: pre-activations of an earlier pass at the same rows (DENSE_FROZEN only)
//
// DENSE_FROZEN (flags bit 4u, forward and backward_input): a ReLU keeps the activation pattern
// of base_pre instead of its own. Gradients then come from the piecewise-linear extension of
// the network at the base point, so a central difference of them is the exact Hessian-vector
// product of the R-op (no jumps from kinks crossed by the displacement). Smooth activations
// ignore it.

@group(0) @binding(0) var<storage, read> weights: array<f32>;
@group(0) @binding(1) var<storage, read_write> acts: array<f32>;
@group(0) @binding(2) var<storage, read_write> pre: array<f32>;
@group(0) @binding(3) var<storage, read_write> deltas: array<f32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> grads: array<f32>;
@group(0) @binding(6) var<storage, read> base_pre: array<f32>;

const WG_ACCUMULATE: u32 = 1u;
const WG_USE_SCALE: u32 = 2u;
const DENSE_FROZEN: u32 = 4u;

fn frozen_relu() -> bool {
    return (p.flags & DENSE_FROZEN) != 0u && p.act == ACT_RELU;
}

fn copy_base(row: u32) -> u32 {
    if (p.copy_stride == 0u) { return 0u; }
    return (row / p.group) * p.copy_stride;
}

// z[row, o] = b[o] + Σ_i a[row, i]·W[o, i];  a_next[row, o] = σ(z) unless act = ACT_NONE.
// Dispatch (⌈out/16⌉, ⌈rows/16⌉).
@compute @workgroup_size(16, 16)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    let row = gid.y;
    if (o >= p.out_dim || row >= p.rows) { return; }
    let base = copy_base(row);
    let w = base + p.w_off + o * p.in_dim;
    let a = p.a_off + row * p.in_dim;
    var acc = 0.0;
    for (var i = 0u; i < p.in_dim; i++) {
        acc += acts[a + i] * weights[w + i];
    }
    let z = weights[base + p.b_off + o] + acc;
    pre[p.z_off + row * p.out_dim + o] = z;
    let zi = p.z_off + row * p.out_dim + o;
    if (frozen_relu()) {
        acts[p.off0 + row * p.out_dim + o] = select(0.0, z, base_pre[zi] > 0.0);
    } else if (p.act != ACT_NONE) {
        acts[p.off0 + row * p.out_dim + o] = activate(z, p.act);
    }
}

// forward:  z_l = a_l·Wᵀ + b, a_l = σ(z_{l−1})
// backward: d_{l−1}[row, i] = σ'(z_{l−1}[row, i]) · Σ_o d_l[row, o]·W[o, i]
// d_l at z_off (width out), d_{l−1} and z_{l−1} at off0 (width in), act = σ of layer l−1.
// Dispatch (⌈in/16⌉, ⌈rows/16⌉).
@compute @workgroup_size(16, 16)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let row = gid.y;
    if (i >= p.in_dim || row >= p.rows) { return; }
    let base = copy_base(row) + p.w_off + i;
    let d = p.z_off + row * p.out_dim;
    var acc = 0.0;
    for (var o = 0u; o < p.out_dim; o++) {
        acc += deltas[d + o] * weights[base + o * p.in_dim];
    }
    let zi = p.off0 + row * p.in_dim + i;
    var z = pre[zi];
    if (frozen_relu()) {
        z = base_pre[zi];
    }
    deltas[zi] = acc * activate_grad(z, p.act);
}

// For output group g (workgroup y) over rows g·group … (g+1)·group − 1:
//   dW[o, i] = f0 · Σ_row s_row · d[row, o] · a[row, i],   db[o] = f0 · Σ_row s_row · d[row, o]
// written to grads[off0 + g·copy_stride + (w_off + o·in + i | b_off + o)], added when
// flags & WG_ACCUMULATE; s_row = scale[row] when flags & WG_USE_SCALE, else 1.
// Dispatch (⌈out·(in+1)/64⌉, groups). Each output is one thread summing rows in order:
// deterministic.
@compute @workgroup_size(64)
fn weight_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    let g = gid.y;
    let n_w = p.out_dim * p.in_dim;
    if (e >= n_w + p.out_dim) { return; }
    let use_scale = (p.flags & WG_USE_SCALE) != 0u;
    let start = g * p.group;
    var acc = 0.0;
    var dst = 0u;
    if (e < n_w) {
        let o = e / p.in_dim;
        let i = e % p.in_dim;
        for (var r = start; r < start + p.group; r++) {
            let s = select(1.0, scale[r], use_scale);
            acc += s * deltas[p.z_off + r * p.out_dim + o] * acts[p.a_off + r * p.in_dim + i];
        }
        dst = p.w_off + e;
    } else {
        let o = e - n_w;
        for (var r = start; r < start + p.group; r++) {
            let s = select(1.0, scale[r], use_scale);
            acc += s * deltas[p.z_off + r * p.out_dim + o];
        }
        dst = p.b_off + o;
    }
    let idx = p.off0 + g * p.copy_stride + dst;
    let v = p.f0 * acc;
    if ((p.flags & WG_ACCUMULATE) != 0u) {
        grads[idx] = grads[idx] + v;
    } else {
        grads[idx] = v;
    }
}
