//! The two embedded handwritten-digit sets (assets/, see assets/DATA.md for attribution), read by
//! the datasets' one CSV reader (`table`): one sample a row, integer or decimal features, the
//! class label last.
//!
//! The MNIST subset (1.1 MB) is embedded unless the build leaves it out (`--no-default-features`:
//! the web build, whose page downloads `mnist_5k.csv.gz` beside the module after the app starts
//! and hands it over through `provide_mnist5k`).

use super::RawData;
use crate::error::Error;
use flate2::read::GzDecoder;
use std::io::Read;

static DIGITS_GZ: &[u8] = include_bytes!("../../assets/digits.csv.gz");
#[cfg(feature = "embedded-mnist")]
static MNIST5K_GZ: &[u8] = include_bytes!("../../assets/mnist_5k.csv.gz");
/// The MNIST file handed over at run time (gzip, or the CSV text a server already decoded).
static MNIST5K_PROVIDED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Hands over `mnist_5k.csv.gz` (a build without the embedded copy); the first one stays.
pub fn provide_mnist5k(bytes: Vec<u8>) {
    let _ = MNIST5K_PROVIDED.set(bytes);
}

/// Whether `mnist5k()` can load now: the file is built in, or was handed over and parsed
/// (`prepare_mnist5k_in_pieces`).
pub fn mnist5k_available() -> bool {
    cfg!(feature = "embedded-mnist") || MNIST5K_PARSED.get().is_some()
}

/// Whether the MNIST file was handed over (`provide_mnist5k`) and is not parsed yet.
pub fn mnist5k_needs_parsing() -> bool {
    MNIST5K_PROVIDED.get().is_some() && MNIST5K_PARSED.get().is_none()
}

/// Decompresses and parses the MNIST file, pausing every megabyte of text and every block of
/// rows (`resumable::pause`): the browser prepares it over frames after the download, where
/// parsing it at once took a quarter of a second of one frame. `mnist5k()` then copies the
/// parsed samples. The same samples as parsing at once.
pub async fn prepare_mnist5k_in_pieces() -> Result<(), Error> {
    if MNIST5K_PARSED.get().is_none() {
        let raw = parse_mnist5k_in_pieces().await?;
        let _ = MNIST5K_PARSED.set(raw);
    }
    Ok(())
}

/// The MNIST file's samples (`mnist5k` parses through this too, at once).
async fn parse_mnist5k_in_pieces() -> Result<RawData, Error> {
    let set = read_bundled(mnist5k_bytes()?, "mnist_5k.csv.gz").await?;
    image_raw(set, 784, 10, 255.0, (28, 28), 0.2)
}

/// A bundled `features…,label` file, gzip (or text a web server already decoded), pausing
/// every megabyte decompressed and every block of rows parsed.
async fn read_bundled(bytes: &[u8], name: &str) -> Result<ImageSet, Error> {
    let text = gunzip_in_pieces(bytes, name).await?;
    parse_csv_in_pieces(&text, name).await
}

fn mnist5k_bytes() -> Result<&'static [u8], Error> {
    #[cfg(feature = "embedded-mnist")]
    let embedded: Option<&'static [u8]> = Some(MNIST5K_GZ);
    #[cfg(not(feature = "embedded-mnist"))]
    let embedded: Option<&'static [u8]> = None;
    embedded
        .or_else(|| MNIST5K_PROVIDED.get().map(Vec::as_slice))
        .ok_or_else(|| Error::Data("mnist5k is still downloading (mnist_5k.csv.gz, 1.1 MB); it loads by itself once here".into()))
}

/// Parsed CSV samples.
#[derive(Clone, Debug)]
pub struct ImageSet {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    pub n_features: usize,
}

/// UCI optical digits: 1797 images of 8×8 pixels with values 0..16.
pub fn digits() -> Result<RawData, Error> {
    static PARSED: std::sync::OnceLock<RawData> = std::sync::OnceLock::new();
    parsed_once(&PARSED, || {
        let set = crate::resumable::block_on(read_bundled(DIGITS_GZ, "digits.csv.gz"))?;
        image_raw(set, 64, 10, 16.0, (8, 8), 500.0 / 1797.0)
    })
}

/// The parsed MNIST subset, once parsed (by `mnist5k` or `prepare_mnist5k_in_pieces`).
static MNIST5K_PARSED: std::sync::OnceLock<RawData> = std::sync::OnceLock::new();

/// 5000 MNIST images of 28×28 pixels with values 0..255.
pub fn mnist5k() -> Result<RawData, Error> {
    parsed_once(&MNIST5K_PARSED, || crate::resumable::block_on(parse_mnist5k_in_pieces()))
}

/// A bundled file is decompressed and parsed once per process (a quarter of a second for MNIST
/// in the browser); every dataset built from it after that copies the parsed samples. A failure
/// is not kept: the MNIST file may arrive later.
fn parsed_once(cell: &'static std::sync::OnceLock<RawData>, parse: impl FnOnce() -> Result<RawData, Error>) -> Result<RawData, Error> {
    if let Some(raw) = cell.get() {
        return Ok(raw.clone());
    }
    let raw = parse()?;
    Ok(cell.get_or_init(|| raw).clone())
}

fn image_raw(set: ImageSet, features: usize, classes: u32, max: f32, shape: (usize, usize), test_fraction: f64) -> Result<RawData, Error> {
    if set.n_features != features {
        return Err(Error::Data(format!("expected {features} pixel columns, found {}", set.n_features)));
    }
    if let Some(bad) = set.y.iter().find(|&&c| c >= classes) {
        return Err(Error::Data(format!("label {bad} outside 0..{classes}")));
    }
    Ok(RawData {
        x: set.x,
        y: set.y,
        n_features: features,
        n_classes: classes as usize,
        scale: 1.0 / max,
        image_shape: Some(shape),
        default_test_fraction: test_fraction,
    })
}

/// Decompresses gzip, pausing after every megabyte; bytes without the gzip magic are taken as
/// they are (a web server may have decoded the file on the way).
async fn gunzip_in_pieces(bytes: &[u8], name: &str) -> Result<Vec<u8>, Error> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut decoder = GzDecoder::new(bytes);
    let (mut text, mut chunk) = (Vec::new(), vec![0u8; 1 << 20]);
    loop {
        let n = decoder.read(&mut chunk).map_err(|e| Error::Data(format!("{name}: cannot decompress: {e}")))?;
        if n == 0 {
            return Ok(text);
        }
        text.extend_from_slice(&chunk[..n]);
        crate::resumable::pause().await;
    }
}

/// Parses `features…,label` rows (`read_table`, the label last). Every row must have the same
/// number of columns, finite numeric features and a class label 0..=99; errors name the line
/// and column.
pub fn parse_csv(text: &str, name: &str) -> Result<ImageSet, Error> {
    crate::resumable::block_on(parse_csv_in_pieces(text.as_bytes(), name))
}

/// `parse_csv`, pausing every block of rows (`table::read_table_in_pieces`).
async fn parse_csv_in_pieces(bytes: &[u8], name: &str) -> Result<ImageSet, Error> {
    let t = super::table::read_table_in_pieces(bytes, name, &super::table::label_last).await?;
    Ok(ImageSet { x: t.x, y: t.y, n_features: t.n_features })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_sets_have_their_documented_sizes() {
        let d = digits().unwrap();
        assert_eq!((d.y.len(), d.n_features), (1797, 64));
        assert!(d.x.iter().all(|&v| (0.0..=16.0).contains(&v)));
        let m = mnist5k().unwrap();
        assert_eq!((m.y.len(), m.n_features), (5000, 784));
        for c in 0..10 {
            assert_eq!(m.y.iter().filter(|&&y| y == c).count(), 500);
        }
    }

    /// Parsed over many resumptions (the browser's frames), the MNIST file gives the samples of
    /// parsing it at once (`mnist5k`), and the parsed copy then serves every load.
    #[test]
    fn the_mnist_file_parses_in_pieces_to_the_same_samples() {
        let mut work = crate::resumable::Resumable::new(parse_mnist5k_in_pieces());
        let mut resumptions = 1;
        let pieces = loop {
            match work.advance(web_time::Instant::now()) {
                Some(r) => break r.unwrap(),
                None => resumptions += 1,
            }
        };
        assert!(resumptions > 10, "{resumptions} resumptions");
        let whole = mnist5k().unwrap();
        assert_eq!((pieces.x, pieces.y, pieces.n_features, pieces.scale), (whole.x, whole.y, whole.n_features, whole.scale));
        crate::resumable::block_on(prepare_mnist5k_in_pieces()).unwrap();
        assert!(mnist5k_available() && !mnist5k_needs_parsing());
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let err = parse_csv("1,2,0\n1,x,1\n", "t.csv").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("column 2"), "{err}");
        let err = parse_csv("1,2,0\n1,1\n", "t.csv").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("earlier rows"), "{err}");
        let err = parse_csv("1,2,-1\n", "t.csv").unwrap_err().to_string();
        assert!(err.contains("label"), "{err}");
        assert!(parse_csv("\n", "t.csv").is_err());
    }
}
