//! Tooltip texts: what each setting does and how each metric is computed (from docs/ALGORITHMS.md).

pub const LR: &str = "Learning rate η of the base optimizer: v = μ·v + (g_d + wd·w); w ← w − η·v. Log scale.";
pub const MOMENTUM: &str = "Momentum μ of the base SGD (torch style): v = μ·v + d.";
pub const WEIGHT_DECAY: &str = "Weight decay wd, added to the descent gradient: d = g_d + wd·w. Perturbations never include it.";
pub const SCHEDULE: &str = "Learning-rate schedule: constant, or cosine η_t = η·(1 + cos(π·t/T))/2 over the run's T steps.";
pub const RHO: &str = "Perturbation radius ρ: SAM evaluates the descent gradient at w + e with ‖e‖ = ρ (USAM: e = ρ·g). ρ = 0 turns SAM into SGD. Log scale.";
pub const M: &str = "Micro-batch size m (m-SAM, m-USAM): the batch splits into B/m micro-batches, each perturbed along its OWN gradient and descending at its own perturbed point. Only divisors of the batch are offered; m = B is SAM.";
pub const XI: &str = "ASAM's ξ in T = |w| + ξ (elementwise): e = ρ·T²g/‖T·g‖. Log scale.";
pub const LAMBDA: &str = "RW-SAM inverse temperature λ of the Gibbs weights p_i = exp(λ·s_i)/Σ_j exp(λ·s_j) over the batch: λ = 0 is uniform (SAM), large λ concentrates the perturbation on the largest-gradient samples, negative λ down-weights them. Log scale on both sides of 0.";
pub const ESTIMATOR: &str = "How RW-SAM estimates s_i ≈ ‖∇f_i(w)‖: exact (Σ_layers ‖d_i‖²(‖a_i‖² + 1), no per-sample gradient materialised) or the paper's finite difference |f_i(w + δz) − f_i(w)|/δ with one Rademacher z per batch.";
pub const DELTA: &str = "Finite-difference step δ of the norm estimator (f32: 1e-3 is accurate to about 5 %, 1e-4 to 26 %).";
pub const DESCENT: &str = "Which gradient RW-SAM descends on at w + e: the batch mean ∇f_γ(w + e) (uniform, default) or Σ p_i ∇f_i(w + e) (weighted).";
pub const TARGET_ESS: &str = "Instead of a fixed λ, solve λ ≥ 0 every step by bisection so that the effective sample size ESS = 1/Σ p_i² equals r·B.";
pub const NORMALIZE: &str =
    "Divide the scores s_i by their batch mean before the softmax: λ becomes scale-free (the gradient-norm scale drifts 10× during training).";
pub const BATCH: &str = "Batch size B: each step draws B training samples (seeded reshuffle every epoch; the last partial batch is dropped).";
pub const EPOCHS: &str = "Length of the run in epochs (passes over the training set).";
pub const EVAL_EVERY: &str = "Evaluate loss and accuracy on the FULL train and test sets every this many steps (0: once per epoch).";
pub const MEASURE_EVERY: &str = "Measure the sharpness metrics (S_ρ, λ_max, tr H, tr V, m-sharpness curve) every this many steps on a fixed subset of the training set (0: never). Each costs dozens of Hessian-vector products: on the desktop a worker thread measures (1024 samples, the CLI's settings) while training goes on; in the browser the measurement is lighter (256 samples, fewer probes) and runs between frames.";

pub const DATASET: &str = "The data every run trains on: 2D toys (two moons, circles, spirals, XOR, three blobs; 80/20 split) or images (digits 8×8, 1297/500; mnist5k 28×28, 4000/1000), or a CSV file of your own (File ▸ Open file…, or drop it on the window: x1,x2,label points or label,p0,… images; 80/20 split). Changing it restarts every run.";
pub const SAMPLES: &str = "Number of samples of a 2D toy (train + test).";
pub const INPUT_NOISE: &str = "Standard deviation of the Gaussian noise added to each input coordinate of a 2D toy.";
pub const LABEL_NOISE: &str = "Symmetric label noise: exactly round(noise·n) training labels are replaced by a random DIFFERENT class (the test set stays clean). Flipped samples are marked in the data view.";
pub const HIDDEN: &str = "Hidden layer widths of the MLP (every run shares the architecture and the initial weights).";
pub const ACTIVATION: &str = "Hidden activation: ReLU, tanh or GELU (tanh form). He-normal init for ReLU/GELU, Xavier-normal for tanh; zero biases.";
pub const SEED: &str =
    "The seed of everything random: toy data, split, label noise, initial weights, batch order, probes. The same seed gives the same runs, step for step.";
pub const ENGINE: &str = "Which engine trains: auto (the GPU engine on a hardware GPU, else the CPU engine: a software GPU such as SwiftShader or lavapipe is slower than the CPU), gpu (the GPU engine on any adapter with compute shaders, through the renderer's device; WebGPU in the browser) or cpu (the f32 CPU reference, time-sliced between frames). Changing it restarts every run.";
pub const BUDGET: &str = "Training time per frame, all runs together: the UI stays responsive while runs train between frames.";

pub const LOSS: &str = "Mean softmax cross-entropy f = (1/n)·Σ_i [logsumexp(z_i) − z_i[y_i]] on the FULL train set (noisy labels, as trained on) and test set, at every evaluation.";
pub const ACCURACY: &str = "Share of samples whose arg-max class equals the label, on the full train set (labels as trained on) and the test set.";
pub const NOISE_METRICS: &str = "With label noise: accuracy on the ORIGINAL (clean) training labels, and the share of flipped training samples the model predicts with their flipped label (noisy labels memorised). Best test accuracy so far is what early stopping would give.";
pub const BATCH_LOSS: &str = "Per step: the batch loss f_γ(w) before the step and the loss at the perturbed point(s) f_γ(w + e) (for m-SAM the mean over micro-batches). Their gap is the sharpness the step sees.";
pub const NORMS: &str =
    "Per step: ‖∇f_γ(w)‖, the batch gradient norm (where the step computes it), and ‖e‖, the perturbation norm (ρ for SAM; for m-SAM the mean of ‖e_j‖).";
pub const ESS: &str = "RW-SAM per step: the effective sample size ESS = 1/Σ p_i² of the Gibbs weights (the 'effective m' RW-SAM imitates; B for λ = 0) and λ (fixed, or solved for a target ESS).";
pub const SHARPNESS: &str =
    "SAM sharpness S_ρ(w) = f(w + ρ·∇f/‖∇f‖) − f(w) on a fixed evaluation subset of the training set: the first-order worst case inside the ρ-ball.";
pub const LAMBDA_MAX: &str = "λ_max, the top Hessian eigenvalue of f on the evaluation subset: power iteration on exact Hessian-vector products (R-op).";
pub const TRACE_H: &str = "tr H by Hutchinson: the mean of z^T·H·z over Rademacher vectors z.";
pub const TRACE_V: &str = "tr V, the trace of the gradient-noise covariance: mean_i ‖∇f_i‖² − ‖∇f‖² on the evaluation subset (exact, with the per-sample norm identity). The SAM family ends where it is smaller.";
pub const SPECTRUM: &str = "Each measurement also estimates the whole eigenvalue density of the Hessian by stochastic Lanczos quadrature: a few random ±1 start vectors, Lanczos steps of Hessian-vector products, Gaussian-smoothed Ritz values. About as costly again as the other measurements (on the desktop 4 starts × 40 steps; in the browser 2 × 12, lighter and coarser).";
pub const DENSITY: &str = "Eigenvalue density of the Hessian at each run's latest measurement (stochastic Lanczos quadrature), on a log scale clamped at a floor. Most eigenvalues sit in a bulk near 0; the few outliers to the right are the sharp directions. SAM is expected to pull its outliers in, SGD to leave them further out. Outliers: Ritz values separated from the bulk by more than twice its interquartile range.";
pub const M_CURVE: &str = "m-sharpness curve at the latest measurement: E‖∇f_I‖ over random micro-batches I of size m = 1, 2, 4, …, B, with the bound √(‖∇f‖² + tr V/m) beside it. The variance term grows as m shrinks.";
pub const REGULARIZER: &str =
    "The implicit regulariser the SDE analysis assigns to m-USAM: R_m = (ρ/2)‖∇f‖² + (ρ/(2m))·tr V, at m = B (mini-batch) per measurement.";
pub const SURFACE: &str = "Decision surface: the model's predicted class on a grid over the data (brighter = more confident), refreshed from the current weights twice a second. Training points are filled circles; test points are hollow; flipped training labels are drawn as crosses in their (wrong) label's colour.";
pub const HARDEST: &str = "The training samples with the largest per-sample gradient norm ‖∇f_i‖ = √(Σ_layers ‖d_i‖²(‖a_i‖² + 1)), among a fixed subset: the samples RW-SAM's weights p_i ∝ exp(λ·s_i) favour. Red frames mark flipped labels (y = label trained on, true = original label, ŷ = prediction).";
pub const LANDSCAPE: &str = "Loss landscape (Li et al.): f(w + α·d₁ + β·d₂) on a grid around a run's weights, on the evaluation subset, computed a few points per frame. Directions: Random — two seeded Gaussian directions, filter-normalised (each output neuron's incoming row rescaled to the norm of the same row of w; bias entries 0), default range ±1; PCA — the first two principal components of the run's trajectory (snapshots minus the current weights), unit vectors, so α, β are distances in weight space, default range 1.25 × the path's extent; Hessian — the top two Hessian eigenvectors at the weights (power iteration, off the UI), unit vectors, default range 2/√λ₁. White lines are contours of log-loss; the red path is the run's weights at its evaluations projected onto the plane by least squares, with the share of the path off the plane (random directions can hide most of a path; PCA shows most of it).";

pub const RW_WEIGHTS: &str = "The Gibbs weights p_i = exp(λ·s_i)/Σ_j exp(λ·s_j) of RW-SAM's latest step, as B·p_i on a log scale: 0 is the uniform weight of SAM (λ = 0), bars far right are the few samples the perturbation follows, far left the ignored ones. The effective sample size ESS = 1/Σ p_i² is the \"effective m\" RW-SAM imitates.";
pub const SMOOTHING: &str = "Exponential moving average of every curve over steps or epochs, as TensorBoard draws it: m_n = w·m_{n−1} + (1 − w)·y_n from m_0 = 0, divided by 1 − wⁿ so the start is not pulled to 0. 0 draws the raw values; the raw curve stays faint behind the smoothed one.";
pub const LIVE_CHANGES: &str = "A dashed vertical line in a run's colour marks a step at which its settings changed while it trained (η, μ, weight decay, schedule, ρ, ξ, RW-SAM's λ, δ, target ESS): the change applies from that step on. The run's settings list the changes; the metrics JSON holds them in history.changes.";
pub const LIVE: &str =
    "Applies to a training run from its next step, without a restart (recorded as a change in its history; Reset returns to the value it started with).";
pub const RESTARTS: &str = "Changing it restarts the run from the shared initial weights.";
pub const RESTARTS_ALL: &str = "Changing any of these restarts every run.";
