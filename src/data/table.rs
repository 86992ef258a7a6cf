//! The one CSV reader of the datasets (the `csv` crate underneath): the embedded digit sets and
//! the user's files alike. One sample a row; a first row with a cell that is not a number is a
//! header; every row has the header's (or the first row's) number of columns; every feature is a
//! finite number and the label an integer class index. Errors are one line naming the file, the
//! line and the column.

use crate::config::MAX_CLASSES;
use crate::error::Error;

/// Samples read from a CSV text: features row-major, labels apart.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    pub n_features: usize,
    /// The first line was a header (skipped).
    pub header: bool,
}

/// Where the label sits in a row of `columns` cells, decided from the first row's width (an
/// error for a width the format does not take).
pub type LabelColumn<'a> = &'a dyn Fn(usize) -> Result<usize, String>;

/// Rows read between two pauses of `read_table_in_pieces` (a few milliseconds of a 785-column file
/// in the browser).
const ROWS_PER_PIECE: usize = 256;

/// Reads `bytes` (UTF-8 CSV, an optional byte-order mark) as samples with the label in the
/// column `label_at` picks. `name` names the file in messages.
pub fn read_table(bytes: &[u8], name: &str, label_at: LabelColumn<'_>) -> Result<Table, Error> {
    crate::resumable::block_on(read_table_in_pieces(bytes, name, label_at))
}

/// `read_table`, pausing every `ROWS_PER_PIECE` rows (`resumable::pause`): the browser reads a
/// large file over several frames. The table is the same, row for row.
pub async fn read_table_in_pieces(bytes: &[u8], name: &str, label_at: LabelColumn<'_>) -> Result<Table, Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let mut table = Table { x: Vec::new(), y: Vec::new(), n_features: 0, header: false };
    // (columns, the line that set them, the label's column) once the first row is read.
    let mut shape: Option<(usize, u64, usize)> = None;
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    let mut rows = 0usize;
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| Error::Data(format!("{name}: {}", crate::error::one_line(&e.to_string()))))?;
        if !more {
            break;
        }
        rows += 1;
        if rows % ROWS_PER_PIECE == 0 {
            crate::resumable::pause().await;
        }
        let line = record.position().map_or(0, csv::Position::line);
        let at = |col: usize| format!("{name} line {line} column {}", col + 1);
        let mut cells = Vec::with_capacity(record.len());
        for (col, raw) in record.iter().enumerate() {
            cells.push(std::str::from_utf8(raw).map_err(|_| Error::Data(format!("{}: not UTF-8 text", at(col))))?);
        }
        if cells.len() == 1 && cells[0].is_empty() {
            continue;
        }
        if std::mem::take(&mut first) && cells.iter().any(|c| c.parse::<f32>().is_err()) {
            table.header = true;
            shape = Some(shape_of(cells.len(), line, name, label_at)?);
            continue;
        }
        let (columns, from, label_col) = match shape {
            Some(s) => s,
            None => *shape.insert(shape_of(cells.len(), line, name, label_at)?),
        };
        if cells.len() != columns {
            let earlier =
                if table.header && table.y.is_empty() { format!("the header (line {from}) has {columns}") } else { format!("earlier rows have {columns}") };
            return Err(Error::Data(format!("{name} line {line}: {} columns, but {earlier}", cells.len())));
        }
        for (col, cell) in cells.iter().enumerate() {
            if col == label_col {
                let label = cell
                    .parse::<u32>()
                    .map_err(|_| Error::Data(format!("{}: label {} is not a class index 0, 1, 2, …", at(col), crate::error::quoted(cell))))?;
                if label as usize >= MAX_CLASSES {
                    return Err(Error::Data(format!("{}: label {label} is outside 0..={} (at most {MAX_CLASSES} classes)", at(col), MAX_CLASSES - 1)));
                }
                table.y.push(label);
            } else {
                match cell.parse::<f32>() {
                    Ok(v) if v.is_finite() => table.x.push(v),
                    _ => return Err(Error::Data(format!("{}: {} is not a finite number", at(col), crate::error::quoted(cell)))),
                }
            }
        }
        table.n_features = columns - 1;
    }
    if table.y.is_empty() {
        return Err(Error::Data(format!("{name}: no samples")));
    }
    Ok(table)
}

fn shape_of(columns: usize, line: u64, name: &str, label_at: LabelColumn<'_>) -> Result<(usize, u64, usize), Error> {
    let label = label_at(columns).map_err(|why| Error::Data(format!("{name} line {line}: {columns} column(s): {why}")))?;
    Ok((columns, line, label))
}

/// Features first, the label last (the embedded digit sets).
pub fn label_last(columns: usize) -> Result<usize, String> {
    if columns >= 2 { Ok(columns - 1) } else { Err("expected features then a label".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Table, Error> {
        read_table(text.as_bytes(), "t.csv", &label_last)
    }

    #[test]
    fn headers_blank_lines_and_spaces_are_taken_in_stride() {
        let t = read("\u{feff}a, b ,label\n1, 2.5, 0\n\n-3,4e1,1\n").unwrap();
        assert!(t.header);
        assert_eq!((t.x, t.y, t.n_features), (vec![1.0, 2.5, -3.0, 40.0], vec![0, 1], 2));
        assert!(!read("1,2,0\n").unwrap().header);
    }

    /// A file of several pieces read with a deadline already past: one piece per call, and the
    /// same table as read at once.
    #[test]
    fn a_large_file_is_read_in_pieces_to_the_same_table() {
        let mut text = String::from("a,b,label\n");
        for i in 0..(3 * ROWS_PER_PIECE + 7) {
            text += &format!("{},{},{}\n", i, i as f32 * 0.5, i % 3);
        }
        let whole = read(&text).unwrap();
        let label_at: LabelColumn<'_> = &label_last;
        let mut job = crate::resumable::Resumable::new(async move { read_table_in_pieces(text.as_bytes(), "t.csv", label_at).await });
        let mut calls = 1;
        let got = loop {
            if let Some(t) = job.advance(web_time::Instant::now()) {
                break t.unwrap();
            }
            calls += 1;
        };
        assert_eq!(got, whole);
        assert_eq!(calls, 4, "three pauses, then the rest");
    }

    #[test]
    fn every_error_names_the_line_and_column() {
        let e = read("x,y,label\n1,2,0\n1,nan,1\n").unwrap_err().to_string();
        assert!(e.contains("t.csv line 3 column 2") && e.contains("not a finite number"), "{e}");
        let e = read("x,y,label\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("header (line 1) has 3"), "{e}");
        let e = read("1,2,0\n1,2,3,4\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("earlier rows have 3"), "{e}");
        let e = read("1,2,0.5\n").unwrap_err().to_string();
        assert!(e.contains("line 1 column 3") && e.contains("label"), "{e}");
        let e = read("1,2,100\n").unwrap_err().to_string();
        assert!(e.contains("0..=99"), "{e}");
        let e = read_table(b"1,\xff,0\n", "t.csv", &label_last).unwrap_err().to_string();
        assert!(e.contains("line 1 column 2") && e.contains("UTF-8"), "{e}");
        assert!(read("a,b,c\n").unwrap_err().to_string().contains("no samples"));
        assert!(read("").is_err());
        for e in [read("1\n"), read("1,2,0\n\"3\n")] {
            assert!(!e.unwrap_err().to_string().contains('\n'));
        }
    }
}
