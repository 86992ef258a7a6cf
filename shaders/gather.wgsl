// gather.wgsl — copies a batch out of a dataset: acts[row, :] = data_x[indices[off0 + row], :],
// labels[row] = data_y[indices[off0 + row]].  Mirrors Dataset::gather_train / CpuEngine::step_now.
// Shapes: data_x (n, in_dim), acts (rows, in_dim) at offset 0 (layer 0's input).

@group(0) @binding(0) var<storage, read> data_x: array<f32>;
@group(0) @binding(1) var<storage, read> data_y: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> acts: array<f32>;
@group(0) @binding(4) var<storage, read_write> labels: array<u32>;

@compute @workgroup_size(64)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear_id(gid, nwg);
    if (e >= p.rows * p.in_dim) { return; }
    let row = e / p.in_dim;
    let col = e % p.in_dim;
    let src = indices[p.off0 + row];
    acts[row * p.in_dim + col] = data_x[src * p.in_dim + col];
    if (col == 0u) {
        labels[row] = data_y[src];
    }
}
