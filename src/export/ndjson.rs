//! NDJSON rows written straight into the output buffer: one object a line,
//! keys in column order, numbers and booleans as JSON values (a non-finite
//! float as `null`), times as ISO 8601 UTC strings, every other value as a
//! string.

use std::io::Write;

use duckdb::arrow::record_batch::RecordBatch;

use super::append::append;
use super::bytescan;
use super::cells::{Cells, Column};
use super::chunks::ChunkSender;
use super::timefmt::IsoMicros;

/// Each column's `"name":`, rendered once with what comes before it: `{`
/// for the first, `,` for the others.
pub(crate) fn keys(names: &[String]) -> Vec<Vec<u8>> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut k = vec![if i == 0 { b'{' } else { b',' }];
            k.extend(serde_json::to_vec(n).unwrap_or_default());
            k.push(b':');
            k
        })
        .collect()
}

/// Every row of `batch` (its columns read as `cols`).
pub(crate) fn rows(
    out: &mut ChunkSender,
    batch: &RecordBatch,
    cols: &[Column],
    keys: &[Vec<u8>],
    times: &mut IsoMicros,
) -> anyhow::Result<()> {
    if keys.is_empty() {
        // No column: an empty object a row.
        for _ in 0..batch.num_rows() {
            append(out.buf(), b"{}\n");
            out.row_done()?;
        }
        return Ok(());
    }
    for row in 0..batch.num_rows() {
        let buf = out.buf();
        for (col, key) in cols.iter().zip(keys) {
            append(buf, key);
            if col.is_null(row) {
                append(buf, b"null");
                continue;
            }
            match &col.cells {
                Cells::Utf8(a) => string(buf, a.value(row))?,
                Cells::LargeUtf8(a) => string(buf, a.value(row))?,
                Cells::Utf8View(a) => string(buf, a.value(row))?,
                Cells::Int(a) => append(buf, itoa::Buffer::new().format(a.value(row)).as_bytes()),
                Cells::Float(a) => {
                    let v = a.value(row);
                    if v.is_finite() {
                        write!(buf, "{v}")?
                    } else {
                        append(buf, b"null")
                    }
                }
                Cells::Bool(a) => append(buf, if a.value(row) { b"true" } else { b"false" }),
                Cells::Micros(a) => {
                    buf.push(b'"');
                    times.write(a.value(row), buf);
                    buf.push(b'"');
                }
                Cells::Other(f) => string(buf, &f.value(row).to_string())?,
            }
        }
        append(buf, b"}\n");
        out.row_done()?;
    }
    Ok(())
}

/// A JSON string: copied between quotes when nothing needs escaping (the
/// usual case), else escaped by serde_json.
#[inline(always)]
fn string(buf: &mut Vec<u8>, s: &str) -> anyhow::Result<()> {
    if !bytescan::json_special(s.as_bytes()) {
        buf.push(b'"');
        append(buf, s.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use duckdb::arrow::record_batch::RecordBatch;
    use serde_json::{json, Value};

    use super::super::cells::{columns, format_options};
    use super::super::chunks::ChunkSender;
    use super::super::timefmt::IsoMicros;

    fn lines(batch: &RecordBatch) -> String {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let mut out = ChunkSender::new(tx);
        let names = super::super::writer::names(&batch.schema());
        let opts = format_options();
        let cols = columns(batch.columns(), &opts).unwrap();
        super::rows(
            &mut out,
            batch,
            &cols,
            &super::keys(&names),
            &mut IsoMicros::new(),
        )
        .unwrap();
        out.send_buf().unwrap();
        drop(out);
        let mut all = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            all.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(all).unwrap()
    }

    #[test]
    fn values_keep_their_json_types_and_strings_are_escaped() {
        let texts = [
            Some("plain"),
            Some("quote \" and \\ back"),
            Some("tab\there\nnl \u{1} ctl"),
            None,
            Some("ünï ✓"),
        ];
        let n = texts.len();
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("s \"q\"", Arc::new(StringArray::from(texts.to_vec()))),
            (
                "i",
                Arc::new(Int64Array::from(vec![
                    Some(-5),
                    Some(0),
                    Some(i64::MAX),
                    None,
                    Some(7),
                ])),
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    Some(f64::NAN),
                    Some(f64::INFINITY),
                    Some(f64::NEG_INFINITY),
                    None,
                ])),
            ),
            (
                "b",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                ])),
            ),
            (
                "t",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(1_793_614_272_123_456),
                    Some(1_793_614_272_000_000),
                    None,
                    Some(0),
                    Some(-1),
                ])),
            ),
        ];
        let batch = RecordBatch::try_from_iter(cols).unwrap();
        let text = lines(&batch);
        let got: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got.len(), n);
        assert_eq!(
            got[0],
            json!({"s \"q\"": "plain", "i": -5, "f": 1.5, "b": true, "t": "2026-11-02T10:11:12.123456Z"})
        );
        assert_eq!(
            got[1],
            json!({"s \"q\"": "quote \" and \\ back", "i": 0, "f": null, "b": false, "t": "2026-11-02T10:11:12.000000Z"})
        );
        assert_eq!(got[2]["s \"q\""], "tab\there\nnl \u{1} ctl");
        assert_eq!(got[2]["i"], json!(i64::MAX));
        assert_eq!(got[2]["f"], Value::Null);
        assert_eq!(got[2]["b"], Value::Null);
        assert_eq!(got[2]["t"], Value::Null);
        assert_eq!(
            got[3],
            json!({"s \"q\"": null, "i": null, "f": null, "b": true, "t": "1970-01-01T00:00:00.000000Z"})
        );
        assert_eq!(got[4]["s \"q\""], "ünï ✓");
        assert_eq!(got[4]["t"], "1969-12-31T23:59:59.999999Z");
        // Keys in column order, escaped once.
        assert!(text.starts_with("{\"s \\\"q\\\"\":\"plain\",\"i\":-5,"));
    }
}
