//! The user's own datasets: CSV files read once (`register`), kept for the process by their
//! checksum, and named in configs by a `CsvSource` (name, CRC-32, shape, class sizes).
//!
//! Two formats, told apart by the number of columns c (an optional header row first):
//! - c = 3: 2D points `x1,x2,label`;
//! - c = 1 + s² with s ≥ 2: s×s images `label,p0,…,p(s²−1)` (65 columns: 8×8, 785: 28×28).
//!
//! Labels are 0..n_classes−1 (n_classes = the largest label + 1, 2 to `MAX_CLASSES`), every class
//! present with at least 1/f samples for the test fraction f (5 for the default 0.2). Images are
//! divided by the file's largest |pixel| (0..255 and 0..16 files both become 0..1); 2D points are
//! used as they are. The split, centring and label noise are then those of every dataset.

use super::RawData;
use super::table::{Table, read_table_in_pieces};
use crate::config::{CSV_TEST_FRACTION, CsvSource, MAX_CLASSES};
use crate::error::Error;
use std::sync::{Arc, Mutex};

/// Largest CSV file read (the app, the command line and the browser alike).
pub const MAX_CSV_BYTES: u64 = 64 << 20;
/// CSV files up to this size travel inside a saved lab; larger ones are named only.
pub const EMBED_LIMIT: usize = 256 << 10;

struct Entry {
    source: CsvSource,
    raw: Arc<RawData>,
    /// The file's text when small enough to embed in a saved lab.
    text: Option<Arc<str>>,
}

/// The files read in this process, oldest first (a file read again is not stored twice).
static LOADED: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn loaded() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the label is in a row of `columns` cells of a user file, and the image side.
fn layout(columns: usize) -> Result<(usize, Option<usize>), String> {
    if columns == 3 {
        return Ok((2, None));
    }
    let side = (columns.saturating_sub(1) as f64).sqrt().round() as usize;
    if side >= 2 && side * side + 1 == columns {
        return Ok((0, Some(side)));
    }
    Err("expected 3 (x1,x2,label) or 1 + side² (label,p0,…: 65 for 8×8, 785 for 28×28)".into())
}

/// Parses a user CSV file without storing it: what a config names it by, and its samples.
pub fn parse(name: &str, bytes: &[u8]) -> Result<(CsvSource, RawData), Error> {
    crate::resumable::block_on(parse_in_pieces(name, bytes))
}

/// `parse`, pausing between blocks of rows (`table::read_table_in_pieces`).
async fn parse_in_pieces(name: &str, bytes: &[u8]) -> Result<(CsvSource, RawData), Error> {
    if bytes.len() as u64 > MAX_CSV_BYTES {
        return Err(Error::Data(format!("{name}: {} MiB, larger than the {} MiB a CSV file may have", bytes.len() >> 20, MAX_CSV_BYTES >> 20)));
    }
    let label_at = |c: usize| layout(c).map(|l| l.0);
    let Table { x, y, n_features, .. } = read_table_in_pieces(bytes, name, &label_at).await?;
    let (_, image_side) = layout(n_features + 1).map_err(|e| Error::Data(format!("{name}: {e}")))?;
    let classes = y.iter().max().map_or(0, |&m| m as usize + 1);
    if classes < 2 {
        return Err(Error::Data(format!("{name}: every label is 0; a dataset needs at least 2 classes (labels 0..n−1, n ≤ {MAX_CLASSES})")));
    }
    let mut counts = vec![0usize; classes];
    for &c in &y {
        counts[c as usize] += 1;
    }
    let need = (1.0 / CSV_TEST_FRACTION).ceil() as usize;
    if let Some((c, &n)) = counts.iter().enumerate().find(|&(_, &n)| n < need) {
        return Err(Error::Data(format!(
            "{name}: class {c} has {n} sample(s); labels must be 0..{} and every class needs at least {need} for the train/test split (test fraction {CSV_TEST_FRACTION})",
            classes - 1
        )));
    }
    let scale = match image_side {
        Some(_) => {
            let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if max > 0.0 { 1.0 / max } else { 1.0 }
        }
        None => 1.0,
    };
    let source = CsvSource {
        name: name.to_string(),
        crc32: format!("{:08x}", crc32fast::hash(bytes)),
        samples: y.len(),
        features: n_features,
        classes,
        smallest_class: counts.iter().copied().min().unwrap_or(0),
        image_side,
    };
    let raw = RawData { x, y, n_features, n_classes: classes, scale, image_shape: image_side.map(|s| (s, s)), default_test_fraction: CSV_TEST_FRACTION };
    Ok((source, raw))
}

/// Reads a user CSV file and keeps it for this process; returns what configs name it by. On an
/// error nothing is kept.
pub fn register(name: &str, bytes: &[u8]) -> Result<CsvSource, Error> {
    crate::resumable::block_on(register_in_pieces(name, bytes))
}

/// `register`, pausing between blocks of rows: the browser reads a large file over several
/// frames (`platform::Worker`). A file read before is found at once.
pub async fn register_in_pieces(name: &str, bytes: &[u8]) -> Result<CsvSource, Error> {
    let name = file_name(name);
    let crc = format!("{:08x}", crc32fast::hash(bytes));
    if let Some(e) = loaded().iter().find(|e| e.source.crc32 == crc && e.source.name == name) {
        return Ok(e.source.clone());
    }
    let (source, raw) = parse_in_pieces(&name, bytes).await?;
    if let Some(e) = loaded().iter().find(|e| e.source.crc32 == crc && e.source.name == name) {
        // Read meanwhile by another path (the desktop reads a file on its own thread too).
        return Ok(e.source.clone());
    }
    let text = (bytes.len() <= EMBED_LIMIT).then(|| std::str::from_utf8(bytes).ok().map(Arc::from)).flatten();
    loaded().push(Entry { source: source.clone(), raw: Arc::new(raw), text });
    Ok(source)
}

/// The samples of a file read earlier, exactly as the source describes them.
pub fn raw(source: &CsvSource) -> Result<RawData, Error> {
    let entries = loaded();
    let entry = entries.iter().find(|e| e.source.crc32 == source.crc32 && e.source.name == source.name);
    match entry {
        Some(e) if e.source == *source => Ok((*e.raw).clone()),
        Some(e) => Err(Error::Data(format!("the settings describe {}, but the file loaded is {}", source.describe(), e.source.describe()))),
        None => Err(Error::Data(format!(
            "load the file {} (drop it on the window, or Data ▸ Load CSV; `--dataset {}` on the command line)",
            source.describe(),
            source.name
        ))),
    }
}

/// Whether the file a source names has been read in this process.
pub fn is_loaded(source: &CsvSource) -> bool {
    loaded().iter().any(|e| e.source == *source)
}

/// The text of a loaded file, if it is small enough to embed (`EMBED_LIMIT`).
pub fn embeddable_text(source: &CsvSource) -> Option<String> {
    loaded().iter().find(|e| e.source == *source).and_then(|e| e.text.as_deref().map(str::to_string))
}

/// Every file read so far (newest last), for the app's dataset menu.
pub fn sources() -> Vec<CsvSource> {
    loaded().iter().map(|e| e.source.clone()).collect()
}

/// The last part of a path ("data/moons.csv" → "moons.csv"), with either separator.
pub fn file_name(path: &str) -> String {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    if name.is_empty() { "data.csv".to_string() } else { name.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n_per_class: usize) -> String {
        let mut s = String::from("x1,x2,label\n");
        for i in 0..2 * n_per_class {
            s += &format!("{},{},{}\n", i as f32 * 0.1, -(i as f32), i % 2);
        }
        s
    }

    #[test]
    fn points_and_images_are_told_apart_by_their_columns() {
        let (s, raw) = parse("p.csv", points(5).as_bytes()).unwrap();
        assert_eq!((s.samples, s.features, s.classes, s.smallest_class, s.image_side), (10, 2, 2, 5, None));
        assert_eq!((raw.scale, raw.image_shape), (1.0, None));
        let mut img = String::new();
        for i in 0..10 {
            img += &format!("{},0,{},8,16\n", i % 2, i);
        }
        let (s, raw) = parse("i.csv", img.as_bytes()).unwrap();
        assert_eq!((s.features, s.image_side, raw.image_shape), (4, Some(2), Some((2, 2))));
        assert_eq!(raw.scale, 1.0 / 16.0);
        assert_eq!(&raw.y[..2], &[0, 1]);
        let e = parse("w.csv", b"1,2,3,4,5,0\n").unwrap_err().to_string();
        assert!(e.contains("w.csv line 1") && e.contains("6 column(s)") && e.contains("785"), "{e}");
    }

    #[test]
    fn classes_must_be_dense_and_large_enough_to_split() {
        let e = parse("p.csv", points(4).as_bytes()).unwrap_err().to_string();
        assert!(e.contains("class 0 has 4") && e.contains("at least 5"), "{e}");
        let mut s = points(5);
        s += "0,0,3\n";
        let e = parse("p.csv", s.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("class 2 has 0"), "{e}");
        assert!(parse("p.csv", b"1,2,0\n3,4,0\n").unwrap_err().to_string().contains("at least 2 classes"));
    }

    #[test]
    fn a_registered_file_is_found_by_its_source_and_a_bad_one_leaves_nothing() {
        let text = points(6);
        assert!(register("dir/bad-registry-test.csv", b"1,2,0\n1,x,1\n").is_err());
        assert!(!sources().iter().any(|s| s.name == "bad-registry-test.csv"));
        let s = register("dir/registry-test.csv", text.as_bytes()).unwrap();
        assert_eq!(s.name, "registry-test.csv");
        assert_eq!(register("registry-test.csv", text.as_bytes()).unwrap(), s);
        assert_eq!(raw(&s).unwrap().y.len(), 12);
        assert_eq!(embeddable_text(&s).as_deref(), Some(text.as_str()));
        let mut other = s.clone();
        other.crc32 = "00000000".into();
        let e = raw(&other).unwrap_err().to_string();
        assert!(e.contains("load the file registry-test.csv") && e.contains("crc32 00000000"), "{e}");
    }
}
