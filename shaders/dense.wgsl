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

// Register blocking: each thread computes a 4×4 block of outputs (4 rows × 4 columns) so that
// every value loaded feeds four multiply-adds. Per output the sum runs over its index in order,
// as in a one-output-per-thread kernel: the blocking changes no result.

// Four consecutive indices from `start`, clamped to `last` (the tail block reads valid memory;
// its extra outputs are not written).
fn four(start: u32, last: u32) -> vec4<u32> {
    return min(vec4<u32>(start, start + 1u, start + 2u, start + 3u), vec4<u32>(last));
}

// The parameter copy of each row of a 4-row block (plus w_off).
fn row_bases(rows: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(copy_base(rows.x), copy_base(rows.y), copy_base(rows.z), copy_base(rows.w)) + vec4<u32>(p.w_off);
}

fn store_forward(row: u32, o: u32, base: u32, acc: f32) {
    if (row >= p.rows || o >= p.out_dim) { return; }
    let z = weights[base - p.w_off + p.b_off + o] + acc;
    let zi = p.z_off + row * p.out_dim + o;
    pre[zi] = z;
    if (frozen_relu()) {
        acts[p.off0 + row * p.out_dim + o] = select(0.0, z, base_pre[zi] > 0.0);
    } else if (p.act != ACT_NONE) {
        acts[p.off0 + row * p.out_dim + o] = activate(z, p.act);
    }
}

// z[row, o] = b[o] + Σ_i a[row, i]·W[o, i];  a_next[row, o] = σ(z) unless act = ACT_NONE.
// Logical grid (⌈out/64⌉, ⌈rows/64⌉): 16×16 threads of 4×4 outputs.
@compute @workgroup_size(16, 16)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let wg = tiled_wg(wid, nwg);
    let o0 = (wg.x * 16u + lid.x) * 4u;
    let r0 = (wg.y * 16u + lid.y) * 4u;
    if (o0 >= p.out_dim || r0 >= p.rows) { return; }
    let n = p.in_dim;
    let r = four(r0, p.rows - 1u);
    let o = four(o0, p.out_dim - 1u);
    let wb = row_bases(r);
    let ar = vec4<u32>(p.a_off) + r * n;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    if (all(wb == vec4<u32>(wb.x))) {
        let wo = vec4<u32>(wb.x) + o * n;
        for (var i = 0u; i < n; i++) {
            let w = vec4<f32>(weights[wo.x + i], weights[wo.y + i], weights[wo.z + i], weights[wo.w + i]);
            acc0 += acts[ar.x + i] * w;
            acc1 += acts[ar.y + i] * w;
            acc2 += acts[ar.z + i] * w;
            acc3 += acts[ar.w + i] * w;
        }
    } else {
        // Rows of the block read different copies (m-SAM with m < 4).
        let on = o * n;
        for (var i = 0u; i < n; i++) {
            acc0 += acts[ar.x + i] * vec4<f32>(weights[wb.x + on.x + i], weights[wb.x + on.y + i], weights[wb.x + on.z + i], weights[wb.x + on.w + i]);
            acc1 += acts[ar.y + i] * vec4<f32>(weights[wb.y + on.x + i], weights[wb.y + on.y + i], weights[wb.y + on.z + i], weights[wb.y + on.w + i]);
            acc2 += acts[ar.z + i] * vec4<f32>(weights[wb.z + on.x + i], weights[wb.z + on.y + i], weights[wb.z + on.z + i], weights[wb.z + on.w + i]);
            acc3 += acts[ar.w + i] * vec4<f32>(weights[wb.w + on.x + i], weights[wb.w + on.y + i], weights[wb.w + on.z + i], weights[wb.w + on.w + i]);
        }
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    let bases = array<u32, 4>(wb.x, wb.y, wb.z, wb.w);
    for (var k = 0u; k < 4u; k++) {
        for (var j = 0u; j < 4u; j++) {
            store_forward(r0 + k, o0 + j, bases[k], accs[k][j]);
        }
    }
}

fn store_backward(row: u32, i: u32, acc: f32) {
    if (row >= p.rows || i >= p.in_dim) { return; }
    let zi = p.off0 + row * p.in_dim + i;
    var z = pre[zi];
    if (frozen_relu()) {
        z = base_pre[zi];
    }
    deltas[zi] = acc * activate_grad(z, p.act);
}

// forward:  z_l = a_l·Wᵀ + b, a_l = σ(z_{l−1})
// backward: d_{l−1}[row, i] = σ'(z_{l−1}[row, i]) · Σ_o d_l[row, o]·W[o, i]
// d_l at z_off (width out), d_{l−1} and z_{l−1} at off0 (width in), act = σ of layer l−1.
// Logical grid (⌈in/64⌉, ⌈rows/64⌉): 16×16 threads of 4×4 outputs.
@compute @workgroup_size(16, 16)
fn backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let wg = tiled_wg(wid, nwg);
    let i0 = (wg.x * 16u + lid.x) * 4u;
    let r0 = (wg.y * 16u + lid.y) * 4u;
    if (i0 >= p.in_dim || r0 >= p.rows) { return; }
    let n = p.in_dim;
    let r = four(r0, p.rows - 1u);
    let ii = four(i0, n - 1u);
    let wb = row_bases(r);
    let dr = vec4<u32>(p.z_off) + r * p.out_dim;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    if (all(wb == vec4<u32>(wb.x))) {
        let wi = vec4<u32>(wb.x) + ii;
        for (var o = 0u; o < p.out_dim; o++) {
            let on = o * n;
            let w = vec4<f32>(weights[wi.x + on], weights[wi.y + on], weights[wi.z + on], weights[wi.w + on]);
            acc0 += deltas[dr.x + o] * w;
            acc1 += deltas[dr.y + o] * w;
            acc2 += deltas[dr.z + o] * w;
            acc3 += deltas[dr.w + o] * w;
        }
    } else {
        for (var o = 0u; o < p.out_dim; o++) {
            let on = o * n;
            acc0 += deltas[dr.x + o] * vec4<f32>(weights[wb.x + on + ii.x], weights[wb.x + on + ii.y], weights[wb.x + on + ii.z], weights[wb.x + on + ii.w]);
            acc1 += deltas[dr.y + o] * vec4<f32>(weights[wb.y + on + ii.x], weights[wb.y + on + ii.y], weights[wb.y + on + ii.z], weights[wb.y + on + ii.w]);
            acc2 += deltas[dr.z + o] * vec4<f32>(weights[wb.z + on + ii.x], weights[wb.z + on + ii.y], weights[wb.z + on + ii.z], weights[wb.z + on + ii.w]);
            acc3 += deltas[dr.w + o] * vec4<f32>(weights[wb.w + on + ii.x], weights[wb.w + on + ii.y], weights[wb.w + on + ii.z], weights[wb.w + on + ii.w]);
        }
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var k = 0u; k < 4u; k++) {
        for (var j = 0u; j < 4u; j++) {
            store_backward(r0 + k, i0 + j, accs[k][j]);
        }
    }
}

// a[row, i] of the input extended by a constant 1 at i = in (the bias column).
fn input_or_one(row: u32, i: u32) -> f32 {
    return select(1.0, acts[p.a_off + row * p.in_dim + min(i, p.in_dim - 1u)], i < p.in_dim);
}

// For output group g (logical workgroup y) over rows g·group … (g+1)·group − 1:
//   dW[o, i] = f0 · Σ_row s_row · d[row, o] · a[row, i],   db[o] = f0 · Σ_row s_row · d[row, o]
// written to grads[off0 + g·copy_stride + (w_off + o·in + i | b_off + o)], added when
// flags & WG_ACCUMULATE; s_row = scale[row] when flags & WG_USE_SCALE, else 1.
// Each thread a 4×4 block of (o, i) with i over the input and the bias column.
// Logical grid (⌈⌈out/4⌉·⌈(in+1)/4⌉/64⌉, groups). Rows are summed in order: deterministic.
@compute @workgroup_size(64)
fn weight_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let blocks_i = (p.in_dim + 4u) / 4u;
    let blocks = ((p.out_dim + 3u) / 4u) * blocks_i;
    let bk = linear_id(gid, nwg);
    if (bk >= blocks) { return; }
    let g = gid.z;
    let o0 = (bk / blocks_i) * 4u;
    let i0 = (bk % blocks_i) * 4u;
    let o = four(o0, p.out_dim - 1u);
    let use_scale = (p.flags & WG_USE_SCALE) != 0u;
    let start = g * p.group;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var r = start; r < start + p.group; r++) {
        // scale[r] only when it is bound for this (the evaluator and objective bind a
        // 16-byte placeholder): select() would read it either way.
        var s = 1.0;
        if (use_scale) { s = scale[r]; }
        let dr = p.z_off + r * p.out_dim;
        let d = vec4<f32>(s * deltas[dr + o.x], s * deltas[dr + o.y], s * deltas[dr + o.z], s * deltas[dr + o.w]);
        let a = vec4<f32>(input_or_one(r, i0), input_or_one(r, i0 + 1u), input_or_one(r, i0 + 2u), input_or_one(r, i0 + 3u));
        acc0 += d.x * a;
        acc1 += d.y * a;
        acc2 += d.z * a;
        acc3 += d.w * a;
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    let base = p.off0 + g * p.copy_stride;
    for (var j = 0u; j < 4u; j++) {
        let oj = o0 + j;
        if (oj >= p.out_dim) { continue; }
        for (var k = 0u; k < 4u; k++) {
            let ik = i0 + k;
            if (ik > p.in_dim) { continue; }
            let idx = base + select(p.b_off + oj, p.w_off + oj * p.in_dim + ik, ik < p.in_dim);
            let v = p.f0 * accs[j][k];
            if ((p.flags & WG_ACCUMULATE) != 0u) {
                grads[idx] = grads[idx] + v;
            } else {
                grads[idx] = v;
            }
        }
    }
}
