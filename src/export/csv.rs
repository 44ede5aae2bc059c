//! CSV rows written straight into the output buffer, quoted as the `csv`
//! crate's default writer does (only a field with `,`, `"`, CR or LF is
//! quoted, quotes doubled, LF ends a record), text cells neutralised against
//! spreadsheet formulas ([`formula`]). The `csv` crate's record API cost a
//! copy and a `to_string` per cell.

use std::io::Write;

use duckdb::arrow::record_batch::RecordBatch;

use super::append::append;
use super::cells::{Cells, Column};
use super::chunks::ChunkSender;
use super::timefmt::IsoMicros;
use super::{bytescan, formula};

/// Appends one field: `prefix` then `field`, quoted if needed.
#[inline]
fn field(out: &mut Vec<u8>, prefix: &[u8], field: &[u8]) {
    if !bytescan::csv_special(field) {
        append(out, prefix);
        append(out, field);
        return;
    }
    out.push(b'"');
    out.extend_from_slice(prefix);
    for part in field.split_inclusive(|&b| b == b'"') {
        out.extend_from_slice(part);
        if part.last() == Some(&b'"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// Ends a record. A record of one empty field is written `""`, as the `csv`
/// crate does, so that it is not read as no record.
fn end(out: &mut Vec<u8>, start: usize, fields: usize) {
    if fields == 1 && out.len() == start {
        out.extend_from_slice(b"\"\"");
    }
    out.push(b'\n');
}

/// The header record.
pub(crate) fn header(out: &mut Vec<u8>, names: &[String]) {
    let start = out.len();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        field(out, b"", name.as_bytes());
    }
    end(out, start, names.len());
}

/// Every row of `batch` (its columns read as `cols`).
pub(crate) fn rows(
    out: &mut ChunkSender,
    batch: &RecordBatch,
    cols: &[Column],
    times: &mut IsoMicros,
) -> anyhow::Result<()> {
    for row in 0..batch.num_rows() {
        let buf = out.buf();
        let start = buf.len();
        for (i, col) in cols.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            if col.is_null(row) {
                continue;
            }
            cell(buf, &col.cells, row, times)?;
        }
        end(buf, start, cols.len());
        out.row_done()?;
    }
    Ok(())
}

/// A text cell, neutralised against spreadsheet formulas.
#[inline]
fn text(buf: &mut Vec<u8>, s: &str) {
    let prefix: &[u8] = if formula::needs_prefix(s) { b"'" } else { b"" };
    field(buf, prefix, s.as_bytes());
}

#[inline]
fn cell(buf: &mut Vec<u8>, cells: &Cells, row: usize, times: &mut IsoMicros) -> anyhow::Result<()> {
    match cells {
        Cells::Utf8(a) => text(buf, a.value(row)),
        Cells::LargeUtf8(a) => text(buf, a.value(row)),
        Cells::Utf8View(a) => text(buf, a.value(row)),
        Cells::Int(a) => append(buf, itoa::Buffer::new().format(a.value(row)).as_bytes()),
        Cells::Float(a) => write!(buf, "{}", a.value(row))?,
        Cells::Bool(a) => append(buf, if a.value(row) { b"true" } else { b"false" }),
        Cells::Micros(a) => times.write(a.value(row), buf),
        Cells::Other(f) => {
            let s = f.value(row).to_string();
            field(buf, b"", s.as_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray,
    };
    use duckdb::arrow::record_batch::RecordBatch;

    use super::super::cells::{columns, format_options};
    use super::super::chunks::ChunkSender;
    use super::super::timefmt::IsoMicros;

    const TEXTS: [Option<&str>; 12] = [
        Some("plain"),
        Some("a,b"),
        Some("say \"hi\""),
        Some("two\nlines"),
        Some("cr\rhere"),
        Some(""),
        None,
        Some("=1+1"),
        Some("-5"),
        Some("@x,\"y\""),
        Some("\"\""),
        Some("ünï,cödé"),
    ];

    /// What the `csv` crate's default writer made of the same cells (the
    /// text neutralised, the rest as the old writer rendered them).
    fn with_csv_crate(batch: &RecordBatch) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(batch.schema().fields().iter().map(|f| f.name().as_str()))
            .unwrap();
        let texts = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let ints = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        let bools = batch
            .column(2)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap();
        let floats = batch
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let times = batch
            .column(4)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        use duckdb::arrow::array::Array;
        for row in 0..batch.num_rows() {
            let opt = |a: &dyn Array, s: String| if a.is_null(row) { String::new() } else { s };
            w.write_record([
                if texts.is_null(row) {
                    String::new()
                } else {
                    super::formula::tests::neutralise(texts.value(row))
                },
                opt(ints, ints.value(row).to_string()),
                opt(bools, bools.value(row).to_string()),
                opt(floats, floats.value(row).to_string()),
                opt(
                    times,
                    chrono::DateTime::from_timestamp_micros(times.value(row))
                        .unwrap()
                        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                        .to_string(),
                ),
            ])
            .unwrap();
        }
        w.into_inner().unwrap()
    }

    fn batch() -> RecordBatch {
        let n = TEXTS.len();
        let cols: Vec<(&str, ArrayRef)> = vec![
            (
                "text, with comma",
                Arc::new(StringArray::from(TEXTS.to_vec())),
            ),
            (
                "n",
                Arc::new(Int32Array::from_iter((0..n as i32).map(|i| {
                    (i != 3).then_some(if i % 2 == 0 { -i * 1000 } else { i })
                }))),
            ),
            (
                "b",
                Arc::new(BooleanArray::from_iter(
                    (0..n).map(|i| (i != 4).then_some(i % 2 == 0)),
                )),
            ),
            (
                "f",
                Arc::new(Float64Array::from_iter(
                    (0..n).map(|i| (i != 5).then_some(i as f64 * 1.5 - 3.0)),
                )),
            ),
            (
                "t",
                Arc::new(TimestampMicrosecondArray::from_iter((0..n as i64).map(
                    |i| (i != 6).then_some(1_793_614_272_123_456 + i * 86_399_999_999),
                ))),
            ),
        ];
        RecordBatch::try_from_iter(cols).unwrap()
    }

    fn written(batch: &RecordBatch) -> Vec<u8> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let mut out = ChunkSender::new(tx);
        let names = super::super::writer::names(&batch.schema());
        super::header(out.buf(), &names);
        let opts = format_options();
        let cols = columns(batch.columns(), &opts).unwrap();
        super::rows(&mut out, batch, &cols, &mut IsoMicros::new()).unwrap();
        out.send_buf().unwrap();
        drop(out);
        let mut all = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            all.extend_from_slice(&chunk.unwrap());
        }
        all
    }

    #[test]
    fn rows_are_byte_for_byte_what_the_csv_crate_wrote() {
        let b = batch();
        let ours = written(&b);
        assert_eq!(
            String::from_utf8(ours.clone()).unwrap(),
            String::from_utf8(with_csv_crate(&b)).unwrap()
        );
        // And read back, every text is the neutralised original.
        let mut r = csv::Reader::from_reader(&ours[..]);
        let got: Vec<String> = r.records().map(|r| r.unwrap()[0].to_string()).collect();
        assert_eq!(got[1], "a,b");
        assert_eq!(got[2], "say \"hi\"");
        assert_eq!(got[3], "two\nlines");
        assert_eq!(got[7], "'=1+1");
        assert_eq!(got[8], "-5");
        assert_eq!(got[9], "'@x,\"y\"");
    }

    #[test]
    fn a_lone_empty_field_is_quoted_like_the_csv_crate() {
        let b = RecordBatch::try_from_iter([(
            "only",
            Arc::new(StringArray::from(vec![Some(""), None, Some("x")])) as ArrayRef,
        )])
        .unwrap();
        assert_eq!(
            String::from_utf8(written(&b)).unwrap(),
            "only\n\"\"\n\"\"\nx\n"
        );
    }
}
