//! The measurements of docs/ALGORITHMS.md checked against first principles: the R-op Hessian-vector product
//! against finite differences of gradients, λ_max and tr H against a dense eigendecomposition of
//! the exact Hessian, tr V and micro-batch norms against explicit per-sample gradients, every
//! metric against its closed form on a quadratic, filter normalisation, landscapes against direct
//! evaluation, and the run's measurement hook.

mod common;

use common::*;
use samlab::config::{DatasetName, RunConfig, RwSamConfig};
use samlab::metrics::hessian::{hutchinson_trace, top_eigenvalues};
use samlab::metrics::landscape::{self, CpuEvaluator, LossAcc, LossEvaluator};
use samlab::metrics::{self, MeasureConfig, MlpObjective, Objective, png, sharpness, surface};
use samlab::model::{Activation, Mlp, MlpSpec, Tape};
use samlab::optim;
use samlab::rng::{self, Rng};

fn objective(p: &Problem) -> MlpObjective<f64> {
    MlpObjective::new(p.spec.clone(), p.x.clone(), p.y.clone()).unwrap()
}

fn grad_at(obj: &mut MlpObjective<f64>, w: &[f64]) -> Vec<f64> {
    obj.loss_grad(w).1
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[test]
fn rop_hessian_vector_product_matches_central_differences_of_gradients() {
    for act in Activation::ALL {
        let p = problem(act, 11, 3);
        let mut obj = objective(&p);
        let mut rng = Rng::new(17);
        let v: Vec<f64> = (0..p.params.len()).map(|_| rng.normal()).collect();
        let hv = obj.hvp(&p.params, &v);
        let h = 1e-5;
        let plus: Vec<f64> = p.params.iter().zip(&v).map(|(w, d)| w + h * d).collect();
        let minus: Vec<f64> = p.params.iter().zip(&v).map(|(w, d)| w - h * d).collect();
        let fd: Vec<f64> = grad_at(&mut obj, &plus).iter().zip(grad_at(&mut obj, &minus)).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        assert!(norm(&hv) > 1e-3, "{act:?}: a vanishing product tests nothing");
        assert_close(&format!("{act:?} H·v"), &hv, &fd, 1e-7, 1e-5);
    }
}

#[test]
fn jacobi_reference_is_right_on_a_known_matrix() {
    // [[2,1],[1,2]] has eigenvalues 1 and 3; a diagonal block adds 5.
    let ev = jacobi_eigenvalues(vec![vec![2.0, 1.0, 0.0], vec![1.0, 2.0, 0.0], vec![0.0, 0.0, 5.0]]);
    assert_close("eigenvalues", &ev, &[1.0, 3.0, 5.0], 1e-12, 0.0);
}

#[test]
fn lambda_max_and_trace_match_a_dense_eigendecomposition_of_the_exact_hessian() {
    for (act, seed) in [(Activation::Tanh, 5), (Activation::Gelu, 8), (Activation::Relu, 2)] {
        // 6-16-12-4: 368 parameters, 200 samples; at the initial weights (an indefinite Hessian)
        // and after 200 full-batch gradient steps (near a minimum).
        let mut p = problem_with(6, &[16, 12], 4, act, 200, seed);
        let n = p.params.len();
        assert!(n <= 2000);
        let mut obj = objective(&p);
        for trained in [false, true] {
            if trained {
                for _ in 0..200 {
                    let g = grad_at(&mut obj, &p.params);
                    p.params.iter_mut().zip(&g).for_each(|(w, gi)| *w -= 0.5 * gi);
                }
            }
            let what = format!("{act:?} {}", if trained { "trained" } else { "at init" });
            // The Hessian column by column from the exact R-op product.
            let mut h = vec![vec![0.0; n]; n];
            for k in 0..n {
                let mut e = vec![0.0; n];
                e[k] = 1.0;
                for (i, v) in obj.hvp(&p.params, &e).into_iter().enumerate() {
                    h[i][k] = v;
                }
            }
            let asym = (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| (h[i][j] - h[j][i]).abs()).fold(0.0, f64::max);
            assert!(asym < 1e-10, "{what}: the exact Hessian is symmetric, |H − Hᵀ| = {asym:e}");
            let trace: f64 = (0..n).map(|i| h[i][i]).sum();
            // Hutchinson's variance per probe: 2·Σ_{i≠j} H_ij².
            let off_sq: f64 = (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).filter(|(i, j)| i != j).map(|(i, j)| h[i][j] * h[i][j]).sum();
            let sigma_200 = (2.0 * off_sq / 200.0).sqrt();
            let ev = jacobi_eigenvalues(h);
            let dense_max = *ev.last().unwrap();
            assert!((ev.iter().sum::<f64>() - trace).abs() < 1e-8 * trace.abs().max(1.0), "Jacobi kept the trace");

            // λ_max with the measure command's default settings.
            let m = metrics::measure(&mut obj, &p.params, &MeasureConfig::default(), 0).unwrap().measurement;
            let rel = (m.lambda_max - dense_max).abs() / dense_max.abs();
            eprintln!("{what}: λ_max {:.6} vs dense {dense_max:.6} ({} products); λ_min {:.4}", m.lambda_max, m.power_iterations, ev[0]);
            assert!(rel < 0.01, "{what}: λ_max {} vs dense {dense_max} (relative {rel:e})", m.lambda_max);

            // Top 3 by deflation, with room to converge.
            let top = top_eigenvalues(&mut obj, &p.params, 3, 3000, 1e-12, 1);
            let want: Vec<f64> = ev.iter().rev().take(3).copied().collect();
            assert_close(&format!("{what} top-3"), &top.values, &want, 1e-6, 0.01);

            // tr H by Hutchinson, 200 probes. Near a minimum its standard error is under 2.5 %
            // of the trace, so 5 % is a claim the estimator must meet, not luck; at the initial
            // weights (trace small against the off-diagonal mass) only the error bar is checked.
            let (est, stderr) = hutchinson_trace(&mut obj, &p.params, 200, 0);
            eprintln!("{what}: tr H {est:.5} ± {stderr:.5} (theory ± {sigma_200:.5}) vs dense {trace:.5}");
            assert!((stderr / sigma_200 - 1.0).abs() < 0.3, "{what}: reported error bar {stderr} vs {sigma_200}");
            assert!((est - trace).abs() < 4.0 * sigma_200, "{what}: Hutchinson {est} vs {trace}, σ = {sigma_200}");
            if trained {
                assert!(sigma_200 < 0.025 * trace, "{what}: σ {sigma_200} is large against tr H {trace}");
                assert!((est - trace).abs() < 0.05 * trace.abs(), "{what}: Hutchinson {est} ± {stderr} vs {trace}");
            }
        }
    }
}

#[test]
fn power_iteration_finds_the_top_eigenvalue_when_a_negative_one_dominates() {
    // diag(−6, 3, 2.5, 1): the dominant magnitude is −6, λ_max is 3.
    let mut q = Quadratic::new(vec![-6.0, 3.0, 2.5, 1.0], 5, 1);
    let w = vec![0.1; 4];
    let top = top_eigenvalues(&mut q, &w, 2, 2000, 1e-13, 0);
    assert_close("top-2", &top.values, &[3.0, 2.5], 1e-8, 0.0);
}

/// ∇f_i for one sample, materialised.
fn per_sample_grads(p: &Problem) -> Vec<Vec<f64>> {
    let mut mlp = Mlp::new(p.spec.clone());
    let d = p.spec.in_dim();
    (0..p.y.len())
        .map(|i| {
            let (mut tape, mut deltas) = (Tape::default(), Vec::new());
            mlp.loss_and_grad(&p.params, &p.x[i * d..(i + 1) * d], &p.y[i..i + 1], &mut tape, &mut deltas).1
        })
        .collect()
}

#[test]
fn trace_v_and_micro_batch_norms_equal_explicit_per_sample_gradients() {
    for act in Activation::ALL {
        let p = problem(act, 24, 9);
        let grads = per_sample_grads(&p);
        let n = grads.len() as f64;
        let mean: Vec<f64> = (0..p.params.len()).map(|k| grads.iter().map(|g| g[k]).sum::<f64>() / n).collect();
        let explicit = grads.iter().map(|g| norm(g).powi(2)).sum::<f64>() / n - norm(&mean).powi(2);
        let mut obj = objective(&p);
        let g = grad_at(&mut obj, &p.params);
        assert_close("full gradient", &g, &mean, 1e-12, 1e-9);
        let noise = metrics::noise::gradient_noise(&mut obj, &p.params, &g);
        assert!((noise.trace_v - explicit).abs() < 1e-10 * explicit.abs().max(1e-3), "{act:?}: tr V {} vs {explicit}", noise.trace_v);
        assert!(noise.trace_v > 0.0);
        // Micro-batches of m in a shuffled order: ‖(1/m)Σ_{i∈I} ∇f_i‖² (m = 2 through the Gram
        // matrices, m ≥ 4 through explicit group gradients: the objective picks the cheaper).
        let order = Rng::new(4).permutation(24);
        for m in [2, 4, 8, 24] {
            let got = obj.group_sq_norms(&p.params, &order, m);
            let want: Vec<f64> = order
                .chunks(m)
                .map(|idx| norm(&(0..p.params.len()).map(|k| idx.iter().map(|&i| grads[i][k]).sum::<f64>() / m as f64).collect::<Vec<_>>()).powi(2))
                .collect();
            assert_close(&format!("{act:?} micro-batch norms, m = {m}"), &got, &want, 1e-12, 1e-9);
        }
    }
}

/// f_i(w) = ½·Σ_j a_j w_j² − b_iᵀw: H = diag(a), ∇f_i = a⊙w − b_i, every metric has a closed form.
struct Quadratic {
    a: Vec<f64>,
    b: Vec<Vec<f64>>,
}

impl Quadratic {
    fn new(a: Vec<f64>, n: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let b = (0..n).map(|_| a.iter().map(|_| rng.normal()).collect()).collect();
        Self { a, b }
    }

    fn sample_grad(&self, w: &[f64], i: usize) -> Vec<f64> {
        self.a.iter().zip(w).zip(&self.b[i]).map(|((a, w), b)| a * w - b).collect()
    }
}

impl Objective for Quadratic {
    fn n_params(&self) -> usize {
        self.a.len()
    }
    fn n_samples(&self) -> usize {
        self.b.len()
    }
    fn sample_losses(&mut self, w: &[f64]) -> Vec<f64> {
        let quad: f64 = 0.5 * self.a.iter().zip(w).map(|(a, w)| a * w * w).sum::<f64>();
        self.b.iter().map(|b| quad - b.iter().zip(w).map(|(b, w)| b * w).sum::<f64>()).collect()
    }
    fn loss_grad(&mut self, w: &[f64]) -> (f64, Vec<f64>) {
        let n = self.b.len() as f64;
        let g = (0..w.len()).map(|k| (0..self.b.len()).map(|i| self.sample_grad(w, i)[k]).sum::<f64>() / n).collect();
        (self.loss(w), g)
    }
    fn sample_sq_norms(&mut self, w: &[f64]) -> Vec<f64> {
        (0..self.b.len()).map(|i| norm(&self.sample_grad(w, i)).powi(2)).collect()
    }
    fn group_sq_norms(&mut self, w: &[f64], order: &[usize], m: usize) -> Vec<f64> {
        order[..order.len() / m * m]
            .chunks(m)
            .map(|idx| {
                let g: Vec<f64> = (0..w.len()).map(|k| idx.iter().map(|&i| self.sample_grad(w, i)[k]).sum::<f64>() / m as f64).collect();
                norm(&g).powi(2)
            })
            .collect()
    }
    fn hvp(&mut self, _w: &[f64], v: &[f64]) -> Vec<f64> {
        self.a.iter().zip(v).map(|(a, v)| a * v).collect()
    }
}

#[test]
fn every_metric_equals_its_closed_form_on_a_quadratic() {
    let a = vec![4.0, 2.5, 1.0, 0.5, 0.25, -0.3];
    let n = 16;
    let mut q = Quadratic::new(a.clone(), n, 7);
    let w: Vec<f64> = vec![0.3, -0.2, 0.5, 1.0, -0.7, 0.4];
    let rho = 0.1;
    let cfg = MeasureConfig { rho, probes: 10, power_iters: 3000, power_tol: 1e-13, top_k: 3, curve_groups: 4000, rw_batch: 8, ..MeasureConfig::default() };
    let report = metrics::measure(&mut q, &w, &cfg, 3).unwrap();
    let m = &report.measurement;

    // ∇f = a⊙w − b̄; tr V = mean_i ‖b_i − b̄‖² (the a⊙w part is shared by every sample).
    let bbar: Vec<f64> = (0..a.len()).map(|k| q.b.iter().map(|b| b[k]).sum::<f64>() / n as f64).collect();
    let g: Vec<f64> = a.iter().zip(&w).zip(&bbar).map(|((a, w), b)| a * w - b).collect();
    let gn = norm(&g);
    let trace_v = q.b.iter().map(|b| norm(&b.iter().zip(&bbar).map(|(x, y)| x - y).collect::<Vec<_>>()).powi(2)).sum::<f64>() / n as f64;
    assert!((m.grad_norm - gn).abs() < 1e-12, "‖∇f‖");
    assert!((m.trace_v - trace_v).abs() < 1e-12, "tr V {} vs {trace_v}", m.trace_v);
    // S_ρ = ρ‖g‖ + (ρ²/2)·uᵀHu, u = g/‖g‖: exact for a quadratic.
    let uhu = a.iter().zip(&g).map(|(a, g)| a * g * g).sum::<f64>() / (gn * gn);
    let s = rho * gn + 0.5 * rho * rho * uhu;
    assert!((m.sharpness - s).abs() < 1e-10, "S_ρ {} vs {s}", m.sharpness);
    // λ: the sorted diagonal; Hutchinson on a diagonal H is exact for every Rademacher probe.
    assert_close("top-3", &m.top_eigenvalues, &[4.0, 2.5, 1.0], 1e-9, 0.0);
    assert!((m.lambda_max - 4.0).abs() < 1e-9);
    assert!((m.trace_h - a.iter().sum::<f64>()).abs() < 1e-12, "tr H {}", m.trace_h);
    assert!(m.trace_h_stderr < 1e-12);
    assert!((m.n_usam_regularizer - 0.5 * rho * gn * gn).abs() < 1e-12);

    // m-curve: m = 1, 2, 4, 8, 16.
    let ms: Vec<usize> = m.m_curve.iter().map(|p| p.m).collect();
    assert_eq!(ms, vec![1, 2, 4, 8, 16]);
    let per_sample_mean = (0..n).map(|i| norm(&q.sample_grad(&w, i))).sum::<f64>() / n as f64;
    assert!((m.m_curve[0].mean_norm - per_sample_mean).abs() < 1e-12, "m = 1 is the mean per-sample norm");
    assert!((m.m_curve[4].mean_norm - gn).abs() < 1e-12, "m = n is ‖∇f‖");
    for p in &m.m_curve {
        assert!((p.bound - (gn * gn + trace_v / p.m as f64).sqrt()).abs() < 1e-12);
        assert!((p.regularizer - (0.5 * rho * gn * gn + 0.5 * rho * trace_v / p.m as f64)).abs() < 1e-12);
        assert!(p.mean_norm <= p.bound + 1e-12, "m = {}: {} > bound {}", p.m, p.mean_norm, p.bound);
        // Without replacement: E‖∇f_I‖² = ‖∇f‖² + (tr V/m)·(n − m)/(n − 1).
        let want = gn * gn + trace_v / p.m as f64 * (n - p.m) as f64 / (n - 1) as f64;
        let got = p.rms_norm.powi(2);
        assert!((got - want).abs() < 0.03 * want, "m = {}: E‖∇f_I‖² {got} vs {want} over {} groups", p.m, p.groups);
    }

    // RW-SAM: exact norms, and the finite difference is |⟨∇f_i, z⟩ + (δ/2)·zᵀHz| exactly.
    let rw = report.rwsam.as_ref().unwrap();
    let key = rng::probe_key(cfg.seed, 3);
    let z: Vec<f64> = (0..a.len() as u32).map(|i| rng::rademacher(key, i) as f64).collect();
    let zhz: f64 = a.iter().zip(&z).map(|(a, z)| a * z * z).sum();
    let delta = cfg.rwsam.delta;
    for i in 0..8 {
        let gi = q.sample_grad(&w, i);
        assert!((rw.exact_norms[i] - norm(&gi)).abs() < 1e-12);
        let fd = (gi.iter().zip(&z).map(|(g, z)| g * z).sum::<f64>() + 0.5 * delta * zhz).abs();
        assert!((rw.fd_estimates[i] - fd).abs() < 1e-9, "sample {i}: {} vs {fd}", rw.fd_estimates[i]);
    }
    let p_want = optim::gibbs_weights(&rw.exact_norms, 1.0);
    assert_close("Gibbs weights", &rw.weights, &p_want, 1e-15, 1e-12);
    assert!((rw.ess - optim::ess(&p_want)).abs() < 1e-12);
    assert!((rw.correlation - metrics::noise::pearson(&rw.fd_estimates, &rw.exact_norms)).abs() < 1e-15);
}

#[test]
fn sharpness_of_the_mlp_is_the_loss_rise_along_the_normalised_gradient() {
    let p = problem(Activation::Gelu, 20, 4);
    let mut obj = objective(&p);
    let (loss, g) = obj.loss_grad(&p.params);
    let rho = 0.05;
    let point: Vec<f64> = p.params.iter().zip(&g).map(|(w, gi)| w + rho * gi / norm(&g)).collect();
    let want = obj.loss(&point) - loss;
    let got = sharpness::sam_sharpness(&mut obj, &p.params, loss, &g, rho);
    assert!((got - want).abs() < 1e-12 && got > 0.0, "{got} vs {want}");
    // First order: S_ρ ≈ ρ‖∇f‖ for small ρ.
    let small = sharpness::sam_sharpness(&mut obj, &p.params, loss, &g, 1e-5);
    assert!((small / (1e-5 * norm(&g)) - 1.0).abs() < 1e-3);
}

#[test]
fn filter_normalised_directions_have_the_weight_rows_norms_and_zero_biases() {
    let spec = MlpSpec::new(5, &[7, 6], 4, Activation::Relu);
    let mut params = spec.init(3);
    // A dead neuron: its direction row must stay zero.
    let l0 = spec.layers()[0];
    params[l0.w_offset..l0.w_offset + 5].fill(0.0);
    let (d1, d2) = landscape::directions(&spec, &params, 11);
    assert_ne!(d1, d2);
    for d in [&d1, &d2] {
        for layer in spec.layers() {
            for r in 0..layer.out_dim {
                let row = layer.w_offset + r * layer.in_dim..layer.w_offset + (r + 1) * layer.in_dim;
                let wn = params[row.clone()].iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                let dn = d[row].iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                assert!((dn - wn).abs() <= 1e-6 * wn.max(1e-30), "row {r}: direction norm {dn} vs weight norm {wn}");
            }
            assert!(d[layer.b_offset..layer.b_offset + layer.out_dim].iter().all(|&b| b == 0.0), "bias entries are 0");
        }
    }
    assert_eq!(landscape::directions(&spec, &params, 11), (d1, d2), "seeded");
}

/// A LossEvaluator from outside the crate (as a GPU engine would write it) that takes few points
/// per call: chunking must not change the results.
struct SmallCalls {
    inner: CpuEvaluator<f32>,
    calls: usize,
}

impl LossEvaluator for SmallCalls {
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }
    fn evaluate(&mut self, points: &[Vec<f32>]) -> samlab::Result<Vec<LossAcc>> {
        assert!(points.len() <= 7);
        self.calls += 1;
        self.inner.evaluate(points)
    }
    fn points_per_call(&self) -> usize {
        7
    }
}

#[test]
fn landscape_grid_slices_line_and_trajectory_agree_with_direct_evaluation() {
    let p = problem_with(4, &[9], 3, Activation::Tanh, 30, 6);
    let spec = p.spec.clone();
    let center: Vec<f32> = p.params.iter().map(|&v| v as f32).collect();
    let xf: Vec<f32> = p.x.iter().map(|&v| v as f32).collect();
    let mut ev = CpuEvaluator::<f32>::new(spec.clone(), &xf, &p.y).unwrap();
    let (d1, d2) = landscape::directions(&spec, &center, 2);
    let axis = landscape::linspace(-1.0, 1.0, 5);
    let grid = landscape::loss_grid(&mut ev, &center, &d1, &d2, &axis, &axis).unwrap();
    // Direct f64 evaluation at (α, β) = (axis[3], axis[1]) = (0.5, −0.5).
    let mut mlp = Mlp::<f64>::new(spec.clone());
    let direct = |w: &[f32], mlp: &mut Mlp<f64>| {
        let wf: Vec<f64> = w.iter().map(|&v| v as f64).collect();
        mlp.evaluate(&wf, &p.x, &p.y).mean_loss()
    };
    let pt: Vec<f32> = (0..center.len()).map(|i| (center[i] as f64 + 0.5 * d1[i] as f64 - 0.5 * d2[i] as f64) as f32).collect();
    assert!((grid.loss[1][3] - direct(&pt, &mut mlp)).abs() < 1e-5, "{} vs {}", grid.loss[1][3], direct(&pt, &mut mlp));
    assert!((grid.loss[2][2] - direct(&center, &mut mlp)).abs() < 1e-5, "the centre");
    // The same grid through 7-point calls.
    let mut small = SmallCalls { inner: CpuEvaluator::<f32>::new(spec.clone(), &xf, &p.y).unwrap(), calls: 0 };
    let again = landscape::loss_grid(&mut small, &center, &d1, &d2, &axis, &axis).unwrap();
    assert_eq!(again, grid);
    assert_eq!(small.calls, 25usize.div_ceil(7));
    // The 1D slice through the centre is the grid's middle row.
    let slice = landscape::slice_1d(&mut ev, &center, &d1, &axis).unwrap();
    assert_eq!(slice.loss, grid.loss[2]);
    // The line from a to b at t = 0 and 1 is f(a) and f(b).
    let line = landscape::line_between(&mut ev, &center, &pt, &[0.0, 1.0]).unwrap();
    assert!((line.loss[0] - grid.loss[2][2]).abs() < 1e-12 && (line.loss[1] - grid.loss[1][3]).abs() < 1e-6);

    // Trajectory: a point in the plane projects with zero residual; one off the plane has the
    // off-plane part as its residual.
    let mut rng = Rng::new(1);
    let mut e: Vec<f64> = (0..center.len()).map(|_| rng.normal() * 0.01).collect();
    // Off the plane: remove e's components along an orthonormal basis of span(d1, d2).
    let basis = orthonormal(&d1, &d2);
    for u in &basis {
        let c: f64 = e.iter().zip(u).map(|(x, y)| x * y).sum();
        e.iter_mut().zip(u).for_each(|(x, y)| *x -= c * y);
    }
    let in_plane: Vec<f32> = (0..center.len()).map(|i| (center[i] as f64 + 0.3 * d1[i] as f64 - 0.2 * d2[i] as f64) as f32).collect();
    let off_plane: Vec<f32> = (0..center.len()).map(|i| (in_plane[i] as f64 + e[i]) as f32).collect();
    let traj = landscape::project_trajectory(&mut ev, &center, &d1, &d2, &[(0, in_plane.clone()), (5, off_plane), (9, center.clone())]).unwrap();
    assert!((traj[0].alpha - 0.3).abs() < 1e-5 && (traj[0].beta + 0.2).abs() < 1e-5, "{:?}", traj[0]);
    assert!(traj[0].relative_residual < 1e-5, "{:?}", traj[0]);
    assert!((traj[1].residual - norm(&e)).abs() < 1e-3 * norm(&e), "{} vs {}", traj[1].residual, norm(&e));
    assert!((traj[1].alpha - 0.3).abs() < 1e-4);
    assert_eq!((traj[2].alpha, traj[2].beta, traj[2].residual), (0.0, 0.0, 0.0));
    assert!((traj[0].loss - direct(&in_plane, &mut mlp)).abs() < 1e-5, "the loss at the snapshot itself");
    // A point of the wrong size is refused, naming the sizes.
    let err = ev.evaluate(&[vec![0.0; 3]]).unwrap_err().to_string();
    assert!(err.contains("3 parameters") && err.contains(&spec.n_params().to_string()), "{err}");
}

fn orthonormal(d1: &[f32], d2: &[f32]) -> Vec<Vec<f64>> {
    let u1: Vec<f64> = d1.iter().map(|&v| v as f64).collect();
    let n1 = norm(&u1);
    let u1: Vec<f64> = u1.iter().map(|v| v / n1).collect();
    let mut u2: Vec<f64> = d2.iter().map(|&v| v as f64).collect();
    let c: f64 = u2.iter().zip(&u1).map(|(x, y)| x * y).sum();
    u2.iter_mut().zip(&u1).for_each(|(x, y)| *x -= c * y);
    let n2 = norm(&u2);
    vec![u1, u2.iter().map(|v| v / n2).collect()]
}

#[test]
fn the_run_adds_measurements_every_n_steps() {
    let mut cfg = RunConfig { batch: 32, steps: Some(20), measure_every: 8, eval_every: 10, ..RunConfig::default() };
    cfg.dataset.name = DatasetName::Xor;
    cfg.dataset.samples = 200;
    cfg.model.hidden = vec![8];
    let data = std::sync::Arc::new(samlab::data::Dataset::load(&cfg.dataset, cfg.seed).unwrap());
    let spec = MlpSpec::new(data.n_features, &cfg.model.hidden, data.n_classes, cfg.model.activation);
    let init = std::sync::Arc::new(spec.init(cfg.seed));
    let engine = samlab::engine::choice::open_engine(&cfg, data.clone(), &init).unwrap();
    let mut run = samlab::run::Run::new(cfg, data, init, engine).unwrap();
    run.run_to_end(64, |_| {}).unwrap();
    let steps: Vec<u64> = run.history.measurements.iter().map(|m| m.step).collect();
    assert_eq!(steps, vec![0, 8, 16, 20]);
    let evals: Vec<u64> = run.history.evals.iter().map(|e| e.step).collect();
    assert_eq!(evals, vec![0, 10, 20], "measurements do not disturb the evaluations");
    for m in &run.history.measurements {
        assert_eq!(m.n_eval, 160, "the whole (160-sample) training set, under the 1024 cap");
        assert!(m.lambda_max > 0.0 && m.trace_v > 0.0 && m.loss > 0.0 && m.sharpness.is_finite(), "{m:?}");
        assert_eq!(m.m_curve.last().unwrap().m, 32, "the curve runs to the batch size");
        assert_eq!(m.rwsam.as_ref().unwrap().batch, 32);
    }
    // Old histories (without the field) still load.
    let old: samlab::run::History = serde_json::from_str(r#"{"steps":[],"evals":[]}"#).unwrap();
    assert!(old.measurements.is_empty());
    let json = serde_json::to_string(&run.history).unwrap();
    let back: samlab::run::History = serde_json::from_str(&json).unwrap();
    assert_eq!(back.measurements.len(), 4);
    assert_eq!(back.measurements[2].m_curve.len(), run.history.measurements[2].m_curve.len());
    assert!((back.measurements[3].lambda_max - run.history.measurements[3].lambda_max).abs() < 1e-12);
}

#[test]
fn rwsam_diagnostics_follow_the_configured_target_ess() {
    let p = problem(Activation::Relu, 32, 12);
    let mut obj = objective(&p);
    let rw = RwSamConfig { target_ess: Some(0.25), ..RwSamConfig::default() };
    let z: Vec<f64> = (0..p.params.len() as u32).map(|i| rng::rademacher(7, i) as f64).collect();
    let d = metrics::noise::rwsam_diagnostics(&mut obj, &p.params, 32, &rw, &z);
    assert!((d.ess - 8.0).abs() < 1e-6, "ESS {}", d.ess);
    assert!(d.lambda > 0.0);
    assert!((d.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // In f64 the estimate is |⟨∇f_i, z⟩| up to the second-order term δ·zᵀH_i z/2, and one probe's
    // |⟨∇f_i, z⟩| scatters around ‖∇f_i‖: positively, loosely correlated.
    let mut mlp = Mlp::<f64>::new(p.spec.clone());
    let d_in = p.spec.in_dim();
    for i in 0..32 {
        let (mut tape, mut deltas) = (Tape::default(), Vec::new());
        let (_, gi) = mlp.loss_and_grad(&p.params, &p.x[i * d_in..(i + 1) * d_in], &p.y[i..i + 1], &mut tape, &mut deltas);
        let directional = gi.iter().zip(&z).map(|(a, b)| a * b).sum::<f64>().abs();
        assert!((d.fd_estimates[i] - directional).abs() <= 0.05 + 0.05 * directional, "sample {i}: fd {} vs |⟨∇f_i, z⟩| {directional}", d.fd_estimates[i]);
        let exact = gi.iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!((d.exact_norms[i] - exact).abs() <= 1e-10 * exact.max(1.0), "sample {i}: exact norm {} vs {exact}", d.exact_norms[i]);
    }
    assert!(d.correlation > 0.0, "correlation {}", d.correlation);
}

#[test]
fn decision_surface_gives_probabilities_over_the_data_range() {
    let mut dc = samlab::config::DataConfig { name: DatasetName::Moons, samples: 200, ..Default::default() };
    dc.input_noise = 0.1;
    let data = samlab::data::Dataset::load(&dc, 1).unwrap();
    let spec = MlpSpec::new(2, &[8], 2, Activation::Tanh);
    let params = spec.init(1);
    let (xr, yr) = surface::data_bounds(&data, 0.1).unwrap();
    for row in data.train_x.chunks(2) {
        assert!(row[0] as f64 > xr[0] && (row[0] as f64) < xr[1] && row[1] as f64 > yr[0] && (row[1] as f64) < yr[1]);
    }
    let mut mlp = Mlp::<f32>::new(spec.clone());
    let s = surface::decision_surface(&mut mlp, &params, xr, yr, 13, 9).unwrap();
    assert_eq!((s.probs.len(), s.predicted.len()), (13 * 9 * 2, 13 * 9));
    for k in 0..13 * 9 {
        let pr = &s.probs[2 * k..2 * k + 2];
        assert!((pr[0] + pr[1] - 1.0).abs() < 1e-5);
        assert_eq!(s.predicted[k], if pr[1] > pr[0] { 1 } else { 0 });
        assert_eq!(s.confidence[k], pr[s.predicted[k] as usize]);
    }
    // Cell (i, j) is the model at that input point.
    let pt = s.point(4, 7);
    let mut tape = Tape::default();
    mlp.forward(&params, &[pt[0] as f32, pt[1] as f32], 1, &mut tape, None);
    let z = tape.logits();
    let p1 = 1.0 / (1.0 + ((z[0] - z[1]) as f64).exp());
    assert!((s.probs[2 * (7 * 13 + 4) + 1] as f64 - p1).abs() < 1e-5);
    // A model that does not take 2 inputs is refused.
    let mut wide = Mlp::<f32>::new(MlpSpec::new(3, &[4], 2, Activation::Relu));
    assert!(surface::decision_surface(&mut wide, &[0.0; 26], xr, yr, 5, 5).unwrap_err().to_string().contains("3 inputs"));
}

#[test]
fn landscape_png_shows_the_minimum_dark_and_the_trajectory_red() {
    // A bowl: loss = 1 + α² + β², minimum at the centre.
    let axis = landscape::linspace(-1.0, 1.0, 21);
    let loss: Vec<Vec<f64>> = axis.iter().map(|b| axis.iter().map(|a| 1.0 + a * a + b * b).collect()).collect();
    let grid = landscape::Grid { alphas: axis.clone(), betas: axis.clone(), accuracy: loss.clone(), loss };
    let traj: Vec<landscape::TrajectoryPoint> =
        [(0.9, 0.9), (0.6, 0.6)].iter().map(|&(alpha, beta)| landscape::TrajectoryPoint { alpha, beta, ..Default::default() }).collect();
    let img = png::landscape_image(&grid, &traj, 5, 101).unwrap();
    let corner = img.get(2, 2);
    let near_centre = img.get(45, 55); // off the white centre cross
    let brightness = |c: [u8; 3]| c.iter().map(|&v| v as u32).sum::<u32>();
    assert!(brightness(near_centre) < brightness(corner), "low loss is dark: {near_centre:?} vs {corner:?}");
    // The segment from (α, β) = (0.9, 0.9) to (0.6, 0.6) runs through pixel (90, 10).
    assert_eq!(img.get(90, 10), [230, 40, 40]);
    let bytes = img.encode().unwrap();
    let dec = ::png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = dec.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (101, 101));
    // A degenerate grid is refused.
    let one = landscape::Grid { alphas: vec![0.0], betas: vec![0.0], loss: vec![vec![1.0]], accuracy: vec![vec![1.0]] };
    assert!(png::landscape_image(&one, &[], 3, 64).is_err());
}

#[test]
fn cpu_landscape_timing_reports_every_point() {
    let mut cfg = RunConfig::default();
    cfg.dataset.name = DatasetName::Xor;
    cfg.model.hidden = vec![8];
    let t = landscape::time_cpu_landscape(&cfg, 5, 64).unwrap();
    assert_eq!((t.points, t.eval_samples), (25, 64));
    assert!(t.seconds > 0.0 && t.ms_per_point > 0.0);
}
