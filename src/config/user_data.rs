//! How a config names a CSV file of the user's (`CsvSource`: name, checksum and shape, so that a
//! config is checked without the file) and the rules a CSV dataset's settings follow.

use super::{DataConfig, DatasetName};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Most classes a CSV file may have (labels 0..=99).
pub const MAX_CLASSES: usize = 100;

/// Which CSV file a config means: its name, a checksum of its bytes and what the file holds, so
/// that a config is checked (sample count, split) without the file and the data it trains on is
/// exactly that file's. `data::user` reads files into this.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSource {
    /// The file's name without its directory.
    pub name: String,
    /// CRC-32 of the file's bytes, 8 hex digits.
    pub crc32: String,
    pub samples: usize,
    /// 2 (points) or side² (images).
    pub features: usize,
    /// Labels are 0..classes.
    pub classes: usize,
    /// Samples of the smallest class (the split must leave it one on each side).
    pub smallest_class: usize,
    /// Images of side × side pixels; None: 2D points.
    pub image_side: Option<usize>,
}

impl CsvSource {
    /// "moons.csv (300 samples, 2 classes, crc32 1a2b3c4d)": what to load when it is missing.
    pub fn describe(&self) -> String {
        let what = match self.image_side {
            Some(s) => format!("{s}×{s} images"),
            None => "2D points".into(),
        };
        format!("{} ({} samples of {what}, {} classes, crc32 {})", self.name, self.samples, self.classes, self.crc32)
    }

    /// The test fractions that leave every class at least one sample on each side of the split:
    /// the smallest class n needs n·f ≥ 1 and n·(1 − f) ≥ 1.
    pub fn test_fraction_range(&self) -> (f64, f64) {
        let n = self.smallest_class.max(1) as f64;
        (1.0 / n, 1.0 - 1.0 / n)
    }
}

/// The test fraction of a CSV file when the config sets none.
pub const CSV_TEST_FRACTION: f64 = 0.2;

/// A CSV dataset: a file described, of a shape the engines train on, split so that every class
/// has a sample on each side.
pub(super) fn validate_csv(d: &DataConfig) -> Result<()> {
    let source = match (d.name, &d.csv) {
        (DatasetName::Csv, Some(s)) => s,
        (DatasetName::Csv, None) => return Err(Error::invalid("dataset.csv", "none", "a loaded CSV file (--dataset file.csv, or a file dropped on the app)")),
        (name, Some(_)) => return Err(Error::invalid("dataset.csv", name.as_str(), "set only with dataset.name = csv")),
        (_, None) => return Ok(()),
    };
    if !(2..=MAX_CLASSES).contains(&source.classes) {
        return Err(Error::invalid("dataset.csv.classes", source.classes, format!("2 to {MAX_CLASSES}")));
    }
    let shape_ok = match source.image_side {
        None => source.features == 2,
        Some(s) => s >= 2 && s.checked_mul(s) == Some(source.features),
    };
    if !shape_ok {
        return Err(Error::invalid("dataset.csv.features", source.features, "2 (points) or image_side² (images)"));
    }
    if source.smallest_class < 2 || source.smallest_class.saturating_mul(source.classes) > source.samples {
        return Err(Error::invalid(
            "dataset.csv.smallest_class",
            source.smallest_class,
            format!("2 to samples / classes = {}", source.samples / source.classes),
        ));
    }
    let f = d.test_fraction.unwrap_or(CSV_TEST_FRACTION);
    let (lo, hi) = source.test_fraction_range();
    if f < lo || f > hi {
        return Err(Error::invalid(
            "dataset.test_fraction",
            f,
            format!(
                "{lo:.4} ≤ fraction ≤ {hi:.4}, so that the smallest class of {} ({} samples) keeps a sample on each side",
                source.name, source.smallest_class
            ),
        ));
    }
    Ok(())
}
