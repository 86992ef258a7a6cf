//! Seeded 2D toy problems: two moons, concentric circles, two spirals, XOR and Gaussian blobs.
//! Classes are balanced (up to one sample); `noise` is the standard deviation of Gaussian input
//! noise added to every coordinate.

use super::RawData;
use crate::config::DatasetName;
use crate::error::Error;
use crate::rng::{Rng, Stream};
use std::f64::consts::PI;

pub fn generate(name: DatasetName, n: usize, noise: f64, seed: u64) -> Result<RawData, Error> {
    let mut rng = Rng::stream(seed, Stream::Data);
    let classes = match name {
        DatasetName::Blobs => 3,
        _ => 2,
    };
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % classes;
        let t = rng.uniform();
        let (px, py) = match name {
            DatasetName::Moons => {
                // sklearn's make_moons: upper arc, and a lower arc shifted right and down.
                let a = PI * t;
                if c == 0 { (a.cos(), a.sin()) } else { (1.0 - a.cos(), 0.5 - a.sin()) }
            }
            DatasetName::Circles => {
                let a = 2.0 * PI * t;
                let r = if c == 0 { 1.0 } else { 0.5 };
                (r * a.cos(), r * a.sin())
            }
            DatasetName::Spirals => {
                // Two interleaved arms of 1.75 turns, radius growing from 0.1 to 1.
                let r = 0.1 + 0.9 * t;
                let a = 3.5 * PI * t + c as f64 * PI;
                (r * a.cos(), r * a.sin())
            }
            DatasetName::Xor => {
                let (u, v) = (2.0 * rng.uniform() - 1.0, 2.0 * t - 1.0);
                // Quadrant sign decides the class; regenerate the sign to match `c`.
                let u = if (u * v > 0.0) == (c == 0) { u } else { -u };
                (u, v)
            }
            DatasetName::Blobs => {
                let a = 2.0 * PI * c as f64 / classes as f64 + 0.5;
                (1.5 * a.cos() + 0.35 * rng.normal(), 1.5 * a.sin() + 0.35 * rng.normal())
            }
            DatasetName::Digits | DatasetName::Mnist5k | DatasetName::Csv => {
                return Err(Error::Data(format!("{} is not a 2D toy dataset", name.as_str())));
            }
        };
        x.push((px + noise * rng.normal()) as f32);
        x.push((py + noise * rng.normal()) as f32);
        y.push(c as u32);
    }
    Ok(RawData { x, y, n_features: 2, n_classes: classes, scale: 1.0, image_shape: None, default_test_fraction: 0.2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toys_are_seeded_balanced_and_finite() {
        for name in DatasetName::TOYS {
            let a = generate(name, 301, 0.1, 4).unwrap();
            assert_eq!(a.x, generate(name, 301, 0.1, 4).unwrap().x, "{name:?}");
            assert_ne!(a.x, generate(name, 301, 0.1, 5).unwrap().x, "{name:?}");
            assert!(a.x.iter().all(|v| v.is_finite() && v.abs() < 5.0));
            for c in 0..a.n_classes as u32 {
                let k = a.y.iter().filter(|&&y| y == c).count();
                assert!(k.abs_diff(301 / a.n_classes) <= 1, "{name:?} class {c}: {k}");
            }
        }
    }

    #[test]
    fn xor_labels_follow_the_quadrants_without_noise() {
        let a = generate(DatasetName::Xor, 200, 0.0, 1).unwrap();
        for (p, &c) in a.x.chunks(2).zip(&a.y) {
            assert_eq!((p[0] * p[1] > 0.0) as u32, 1 - c);
        }
    }
}
