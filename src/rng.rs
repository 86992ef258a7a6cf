//! Seeded randomness for everything SAM lab draws: data, splits, label noise, initial weights,
//! batch order and probe vectors.
//!
//! Written here rather than taken from `rand` on purpose: the WGSL kernels draw the same Rademacher
//! probes as the CPU engine (see `shaders/common.wgsl`, `hash32`), and the streams must stay the
//! same on every platform and across crate upgrades, so the generator is part of the spec.
//! SplitMix64 (Steele, Lea, Flood 2014) for CPU streams; `lowbias32` (C. Wellons) for the 32-bit
//! hash that the GPU mirrors.

/// Named sub-streams of a run's seed, so that e.g. changing the batch size does not change the
/// initial weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Data = 1,
    Split = 2,
    LabelNoise = 3,
    Init = 4,
    Batches = 5,
    Probe = 6,
    Eval = 7,
    Landscape = 8,
    Hutchinson = 9,
    Power = 10,
    Lanczos = 11,
}

/// SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent generator for one purpose of a run with this seed.
    pub fn stream(seed: u64, stream: Stream) -> Self {
        let mut r = Self::new(seed ^ (stream as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        // Decorrelate neighbouring seeds before the first draw.
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n (n > 0), without modulo bias (Lemire's method with rejection).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below needs n > 0");
        let n = n as u64;
        loop {
            let x = self.next_u64();
            let m = (x as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }

    /// Standard normal by the Box–Muller transform (one value per call; simple and exact enough).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// A random permutation of 0..n.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }
}

/// `lowbias32` integer hash. Mirrored in `shaders/common.wgsl`.
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The key of a probe stream: the run seed and the step, folded to 32 bits. Mirrored in WGSL,
/// where the kernel receives this key in its uniforms.
pub fn probe_key(seed: u64, step: u64) -> u32 {
    let s = hash32(seed as u32) ^ hash32((seed >> 32) as u32 ^ 0x5bd1_e995);
    hash32(s ^ hash32(step as u32) ^ hash32((step >> 32) as u32 ^ 0x27d4_eb2f))
}

/// Entry `index` of the Rademacher vector (±1) with this key. Mirrored in WGSL (`rademacher`).
pub fn rademacher(key: u32, index: u32) -> f32 {
    if hash32(key ^ hash32(index)) & 1 == 1 { 1.0 } else { -1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, Stream::Init).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::stream(7, Stream::Init).next_u64(), Rng::stream(7, Stream::Data).next_u64());
        assert_ne!(Rng::stream(7, Stream::Init).next_u64(), Rng::stream(8, Stream::Init).next_u64());
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::new(1);
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[r.below(5)] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut r = Rng::new(3);
        let xs: Vec<f64> = (0..100_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{mean} {var}");
    }

    #[test]
    fn rademacher_is_balanced_and_keyed() {
        let key = probe_key(0, 0);
        let s: f32 = (0..10_000).map(|i| rademacher(key, i)).sum();
        assert!(s.abs() < 300.0, "{s}");
        let other = probe_key(0, 1);
        let same = (0..1000).filter(|&i| rademacher(key, i) == rademacher(other, i)).count();
        assert!((400..600).contains(&same), "{same}");
    }
}
