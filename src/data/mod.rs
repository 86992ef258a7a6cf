//! Datasets: seeded 2D toys, the two embedded digit sets and the user's CSV files (`user`), with a
//! stratified train/test split, pixel scaling and centring, and symmetric label noise on the
//! training labels only.
//!
//! Architecture invariant: `data` knows nothing of models, optimizers, wgpu or egui.

mod images;
pub use images::{mnist5k_available, mnist5k_needs_parsing, prepare_mnist5k_in_pieces, provide_mnist5k};
mod table;
mod toys;
pub mod user;

pub use images::{ImageSet, parse_csv};
pub use table::{Table, read_table};

use crate::config::{DataConfig, DatasetName};
use crate::error::Error;
use crate::rng::{Rng, Stream};

/// A dataset ready for training: features row-major (n, n_features), labels 0..n_classes.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: DatasetName,
    pub n_features: usize,
    pub n_classes: usize,
    pub train_x: Vec<f32>,
    /// Training labels as trained on (after label noise).
    pub train_y: Vec<u32>,
    /// The original training labels (before label noise).
    pub clean_train_y: Vec<u32>,
    /// Indices into the training set whose labels were flipped, ascending.
    pub flipped: Vec<usize>,
    pub test_x: Vec<f32>,
    pub test_y: Vec<u32>,
    /// (width, height) for image datasets, to draw samples.
    pub image_shape: Option<(usize, usize)>,
    /// The value subtracted from each feature (training mean), to draw images in pixel scale.
    pub feature_mean: Vec<f32>,
}

impl Dataset {
    pub fn n_train(&self) -> usize {
        self.train_y.len()
    }

    pub fn n_test(&self) -> usize {
        self.test_y.len()
    }

    pub fn train_row(&self, i: usize) -> &[f32] {
        &self.train_x[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Gathers the rows `indices` of the training set into (x, y).
    pub fn gather_train(&self, indices: &[u32], x: &mut Vec<f32>, y: &mut Vec<u32>) {
        x.clear();
        y.clear();
        for &i in indices {
            x.extend_from_slice(self.train_row(i as usize));
            y.push(self.train_y[i as usize]);
        }
    }

    /// Builds the dataset a config names, all choices from `seed` (split and label noise alike).
    pub fn load(cfg: &DataConfig, seed: u64) -> Result<Self, Error> {
        Self::load_split(cfg, seed, seed)
    }

    /// Builds the dataset a config names: `split_seed` draws the samples of a toy and the
    /// train/test split, `seed` the label noise. Runs that share `split_seed` see the same
    /// training and test samples whatever their `seed`.
    pub fn load_split(cfg: &DataConfig, split_seed: u64, seed: u64) -> Result<Self, Error> {
        let raw = match cfg.name {
            DatasetName::Digits => images::digits()?,
            DatasetName::Mnist5k => images::mnist5k()?,
            DatasetName::Csv => {
                let source = cfg.csv.as_ref().ok_or_else(|| Error::invalid("dataset.csv", "none", "a loaded CSV file"))?;
                let data = Self::from_raw_split(user::raw(source)?, cfg, split_seed, seed)?;
                data.check_every_class_on_both_sides(&source.name)?;
                return Ok(data);
            }
            toy => toys::generate(toy, cfg.samples, cfg.input_noise, split_seed)?,
        };
        Self::from_raw_split(raw, cfg, split_seed, seed)
    }

    /// A user's file: the split left every class a training and a test sample.
    fn check_every_class_on_both_sides(&self, name: &str) -> Result<(), Error> {
        for c in 0..self.n_classes as u32 {
            let train = self.clean_train_y.iter().filter(|&&y| y == c).count();
            let test = self.test_y.iter().filter(|&&y| y == c).count();
            if train == 0 || test == 0 {
                return Err(Error::Data(format!(
                    "{name}: the split leaves class {c} {train} training and {test} test samples; choose a test fraction that leaves both"
                )));
            }
        }
        Ok(())
    }

    /// 2D points (a toy or a user's file): the app draws decision surfaces.
    pub fn is_points(&self) -> bool {
        self.n_features == 2 && self.image_shape.is_none()
    }

    /// Splits, scales, centres and adds label noise to raw samples (split and noise from `seed`).
    pub fn from_raw(raw: RawData, cfg: &DataConfig, seed: u64) -> Result<Self, Error> {
        Self::from_raw_split(raw, cfg, seed, seed)
    }

    /// As `from_raw`, the split from `split_seed` and the label noise from `seed`.
    pub fn from_raw_split(raw: RawData, cfg: &DataConfig, split_seed: u64, seed: u64) -> Result<Self, Error> {
        let n = raw.y.len();
        let test_fraction = cfg.test_fraction.unwrap_or(raw.default_test_fraction);
        let (train_idx, test_idx) = stratified_split(&raw.y, raw.n_classes, test_fraction, split_seed);
        let pick = |idx: &[usize]| {
            let mut x = Vec::with_capacity(idx.len() * raw.n_features);
            for &i in idx {
                x.extend(raw.x[i * raw.n_features..(i + 1) * raw.n_features].iter().map(|&v| v * raw.scale));
            }
            (x, idx.iter().map(|&i| raw.y[i]).collect::<Vec<u32>>())
        };
        let (mut train_x, clean_train_y) = pick(&train_idx);
        let (mut test_x, test_y) = pick(&test_idx);
        debug_assert_eq!(train_idx.len() + test_idx.len(), n);
        // Centre every feature by its training mean (applied to the test set too).
        let nf = raw.n_features;
        let mut mean = vec![0.0f64; nf];
        for row in train_x.chunks_exact(nf) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        let feature_mean: Vec<f32> = mean.iter().map(|m| (m / train_idx.len().max(1) as f64) as f32).collect();
        for row in train_x.chunks_exact_mut(nf).chain(test_x.chunks_exact_mut(nf)) {
            for (v, m) in row.iter_mut().zip(&feature_mean) {
                *v -= m;
            }
        }
        let (train_y, flipped) = symmetric_label_noise(&clean_train_y, raw.n_classes, cfg.label_noise, seed);
        Ok(Self {
            name: cfg.name,
            n_features: nf,
            n_classes: raw.n_classes,
            train_x,
            train_y,
            clean_train_y,
            flipped,
            test_x,
            test_y,
            image_shape: raw.image_shape,
            feature_mean,
        })
    }
}

/// Samples before splitting: features as stored, times `scale`, give the [0, 1] (or toy) values.
#[derive(Clone, Debug)]
pub struct RawData {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    pub n_features: usize,
    pub n_classes: usize,
    pub scale: f32,
    pub image_shape: Option<(usize, usize)>,
    pub default_test_fraction: f64,
}

/// Stratified split: in every class the same share (up to rounding) goes to the test set, and the
/// test set's total is round(test_fraction·n) exactly (largest-remainder rounding across classes).
/// Returns (train, test) indices, each in a seeded shuffled order.
pub fn stratified_split(y: &[u32], n_classes: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Rng::stream(seed, Stream::Split);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &c) in y.iter().enumerate() {
        by_class[c as usize].push(i);
    }
    let n = y.len();
    let total_test = (test_fraction * n as f64).round() as usize;
    let quotas: Vec<f64> = by_class.iter().map(|c| c.len() as f64 * test_fraction).collect();
    let mut counts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut left = total_test.saturating_sub(counts.iter().sum());
    let mut order: Vec<usize> = (0..n_classes).collect();
    // Largest remainder first; ties by class index for determinism.
    order.sort_by(|&a, &b| (quotas[b] - quotas[b].floor()).total_cmp(&(quotas[a] - quotas[a].floor())).then(a.cmp(&b)));
    for &c in order.iter().cycle().take(n_classes * 2) {
        if left == 0 {
            break;
        }
        if counts[c] < by_class[c].len() {
            counts[c] += 1;
            left -= 1;
        }
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (members, &k) in by_class.iter_mut().zip(&counts) {
        rng.shuffle(members);
        test.extend_from_slice(&members[..k]);
        train.extend_from_slice(&members[k..]);
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut test);
    (train, test)
}

/// Symmetric label noise: exactly round(fraction·n) samples, drawn without replacement, get a
/// uniformly random DIFFERENT class. Returns the noisy labels and the flipped indices (ascending).
pub fn symmetric_label_noise(y: &[u32], n_classes: usize, fraction: f64, seed: u64) -> (Vec<u32>, Vec<usize>) {
    let mut rng = Rng::stream(seed, Stream::LabelNoise);
    let n_flip = (fraction * y.len() as f64).round() as usize;
    let mut noisy = y.to_vec();
    if n_flip == 0 || n_classes < 2 {
        return (noisy, Vec::new());
    }
    let mut flipped = rng.permutation(y.len());
    flipped.truncate(n_flip);
    flipped.sort_unstable();
    for &i in &flipped {
        let shift = 1 + rng.below(n_classes - 1) as u32;
        noisy[i] = (y[i] + shift) % n_classes as u32;
    }
    (noisy, flipped)
}

/// The batch order of one epoch: a seeded permutation of the training set, cut into full batches
/// (the last partial batch is dropped).
pub fn epoch_batches(n_train: usize, batch: usize, seed: u64, epoch: u64) -> Vec<Vec<u32>> {
    let mut rng = Rng::stream(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15), Stream::Batches);
    let perm = rng.permutation(n_train);
    perm.chunks_exact(batch).map(|c| c.iter().map(|&i| i as u32).collect()).collect()
}

/// The batches of a run, step by step: step t uses batch (t mod spe) of epoch t / spe, where spe
/// is the number of full batches per epoch. Caches the current epoch's permutation.
#[derive(Clone, Debug)]
pub struct BatchOrder {
    n_train: usize,
    batch: usize,
    seed: u64,
    cache: Option<(u64, Vec<Vec<u32>>)>,
}

impl BatchOrder {
    pub fn new(n_train: usize, batch: usize, seed: u64) -> Self {
        Self { n_train, batch, seed, cache: None }
    }

    pub fn steps_per_epoch(&self) -> u64 {
        (self.n_train / self.batch.max(1)) as u64
    }

    pub fn indices(&mut self, t: u64) -> Vec<u32> {
        let spe = self.steps_per_epoch().max(1);
        let epoch = t / spe;
        if self.cache.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.cache = Some((epoch, epoch_batches(self.n_train, self.batch, self.seed, epoch)));
        }
        let batches = &self.cache.as_ref().expect("filled above").1;
        batches[(t % spe) as usize].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_exact_and_stratified() {
        let y: Vec<u32> = (0..1797u32).map(|i| (i * 7 + i / 13) % 10).collect();
        let (train, test) = stratified_split(&y, 10, 500.0 / 1797.0, 3);
        assert_eq!(test.len(), 500);
        assert_eq!(train.len(), 1297);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1797).collect::<Vec<_>>());
        for c in 0..10u32 {
            let n_c = y.iter().filter(|&&v| v == c).count() as f64;
            let t_c = test.iter().filter(|&&i| y[i] == c).count() as f64;
            let want = n_c * 500.0 / 1797.0;
            assert!(t_c >= want.floor() && t_c <= want.ceil(), "class {c}: {t_c} vs {want}");
        }
    }

    #[test]
    fn label_noise_flips_exact_count_to_other_classes() {
        let y: Vec<u32> = (0..1000u32).map(|i| i % 10).collect();
        let (noisy, flipped) = symmetric_label_noise(&y, 10, 0.4, 9);
        assert_eq!(flipped.len(), 400);
        for i in 0..y.len() {
            assert_eq!(noisy[i] != y[i], flipped.binary_search(&i).is_ok(), "sample {i}");
        }
        // The new class is spread over the other nine.
        let mut shift_counts = [0usize; 10];
        for &i in &flipped {
            shift_counts[((noisy[i] + 10 - y[i]) % 10) as usize] += 1;
        }
        assert_eq!(shift_counts[0], 0);
        assert!(shift_counts[1..].iter().all(|&c| (20..70).contains(&c)), "{shift_counts:?}");
    }

    #[test]
    fn epoch_batches_drop_the_partial_batch_and_reshuffle() {
        let e0 = epoch_batches(1297, 128, 0, 0);
        let e1 = epoch_batches(1297, 128, 0, 1);
        assert_eq!(e0.len(), 10);
        assert!(e0.iter().all(|b| b.len() == 128));
        assert_ne!(e0, e1);
        assert_eq!(e0, epoch_batches(1297, 128, 0, 0));
        let mut seen: Vec<u32> = e0.concat();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1280);
    }
}
