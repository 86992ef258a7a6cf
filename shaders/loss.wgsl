// loss.wgsl — softmax cross-entropy per sample and the batch statistics of a step.
// Mirrors model::mlp::softmax_xent and the loss/accuracy of StepReport.

@group(0) @binding(0) var<storage, read> pre: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> deltas: array<f32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> preds: array<u32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

// Per row: logits z = pre[z_off + row·C …] (C = out_dim), f = logsumexp(z) − z[y]
// → losses[off0 + row]; argmax (first maximum) → preds[off0 + row];
// ∂f/∂z = softmax(z) − onehot(y) → deltas[z_off + row·C …]. Dispatch ⌈rows/64⌉.
@compute @workgroup_size(64)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = linear_id(gid, nwg);
    if (row >= p.rows) { return; }
    let c = p.out_dim;
    let z = p.z_off + row * c;
    var mx = pre[z];
    var arg = 0u;
    for (var k = 1u; k < c; k++) {
        if (pre[z + k] > mx) {
            mx = pre[z + k];
            arg = k;
        }
    }
    var sum = 0.0;
    for (var k = 0u; k < c; k++) {
        sum += exp(pre[z + k] - mx);
    }
    let y = labels[row];
    losses[p.off0 + row] = mx + log(sum) - pre[z + y];
    preds[p.off0 + row] = arg;
    for (var k = 0u; k < c; k++) {
        deltas[z + k] = exp(pre[z + k] - mx) / sum - select(0.0, 1.0, k == y);
    }
}

var<workgroup> wg_loss: array<f32, 256>;
var<workgroup> wg_hits: array<u32, 256>;

// Sum of losses[loss_base + r] and count of preds[loss_base + r] == labels[label_base + r] for
// r < count, by one workgroup: each thread a fixed stride, then a fixed tree (deterministic).
// The result is valid in thread 0.
fn reduce_loss_hits(t: u32, loss_base: u32, label_base: u32, count: u32) -> vec2<f32> {
    var acc = 0.0;
    var hits = 0u;
    for (var r = t; r < count; r += 256u) {
        acc += losses[loss_base + r];
        hits += select(0u, 1u, preds[loss_base + r] == labels[label_base + r]);
    }
    wg_loss[t] = acc;
    wg_hits[t] = hits;
    for (var s = 128u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (t < s) {
            wg_loss[t] += wg_loss[t + s];
            wg_hits[t] += wg_hits[t + s];
        }
    }
    workgroupBarrier();
    return vec2<f32>(wg_loss[0], f32(wg_hits[0]));
}

// One workgroup: mean of losses[off0 … off0+rows) → stats[off1]; with flags & 1 also the
// number of preds[off0 + row] == labels[row] → stats[off1 + 1].
@compute @workgroup_size(256)
fn batch_stats(@builtin(local_invocation_index) t: u32) {
    let r = reduce_loss_hits(t, p.off0, 0u, p.rows);
    if (t == 0u) {
        stats[p.off1] = r.x / f32(p.rows);
        if ((p.flags & 1u) != 0u) {
            stats[p.off1 + 1u] = r.y;
        }
    }
}

// One workgroup per group g < n of `group` consecutive rows (logical grid (n, 1)): the mean of
// losses[off0 + g·group …] → stats[off1 + 2g] and the number of preds == labels →
// stats[off1 + 2g + 1]. Landscapes: one group per weight vector.
@compute @workgroup_size(256)
fn group_stats(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = tiled_wg(wid, nwg).x;
    if (g >= p.n) { return; }   // the whole workgroup: uniform
    let r = reduce_loss_hits(t, p.off0 + g * p.group, g * p.group, p.group);
    if (t == 0u) {
        stats[p.off1 + 2u * g] = r.x / f32(p.group);
        stats[p.off1 + 2u * g + 1u] = r.y;
    }
}
