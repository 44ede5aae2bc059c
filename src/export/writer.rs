//! The three export formats over the Arrow batches DuckDB streams: CSV (text
//! cells neutralised against spreadsheet formulas), NDJSON (one object a
//! line, numbers as numbers) and Parquet (row groups written as they fill).

use std::io::Write;

use duckdb::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array};
use duckdb::arrow::compute::cast;
use duckdb::arrow::datatypes::{DataType, Schema, SchemaRef};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::chunks::ChunkSender;
use super::{formula, Format};
use crate::repo::sql::BatchSink;

/// Rows per Parquet row group: bounds the memory a Parquet export holds.
const PARQUET_ROW_GROUP: usize = 64 * 1024;
/// Times in CSV and NDJSON: ISO 8601 UTC, like every API.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

pub(crate) enum Writer {
    Csv(csv::Writer<ChunkSender>),
    Ndjson {
        out: ChunkSender,
        names: Vec<String>,
    },
    Parquet {
        out: Option<ChunkSender>,
        writer: Option<ArrowWriter<ChunkSender>>,
    },
}

impl Writer {
    pub(crate) fn new(format: Format, out: ChunkSender) -> Writer {
        match format {
            Format::Csv => Writer::Csv(csv::Writer::from_writer(out)),
            Format::Ndjson => Writer::Ndjson {
                out,
                names: Vec::new(),
            },
            Format::Parquet => Writer::Parquet {
                out: Some(out),
                writer: None,
            },
        }
    }

    /// Ends the file and sends what is left.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        let mut out = match self {
            Writer::Csv(w) => w
                .into_inner()
                .map_err(|e| std::io::Error::new(e.error().kind(), e.error().to_string()))?,
            Writer::Ndjson { out, .. } => out,
            Writer::Parquet { out, writer } => match writer {
                Some(w) => w.into_inner()?,
                None => out.expect("a Parquet export has its output until the schema"),
            },
        };
        out.send_buf()?;
        Ok(())
    }
}

/// One column of a batch, read as the formats need it.
enum Cells<'a> {
    Text(Box<dyn Fn(usize) -> &'a str + 'a>),
    Int(Int64Array),
    Float(Float64Array),
    Bool(&'a BooleanArray),
    Other(ArrayFormatter<'a>),
}

fn cells<'a>(col: &'a ArrayRef, opts: &'a FormatOptions<'a>) -> anyhow::Result<Cells<'a>> {
    use DataType::*;
    Ok(match col.data_type() {
        Utf8 => {
            let a = col.as_string::<i32>();
            Cells::Text(Box::new(move |i| a.value(i)))
        }
        LargeUtf8 => {
            let a = col.as_string::<i64>();
            Cells::Text(Box::new(move |i| a.value(i)))
        }
        Utf8View => {
            let a = col.as_string_view();
            Cells::Text(Box::new(move |i| a.value(i)))
        }
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => {
            Cells::Int(cast(col, &Int64)?.as_primitive().clone())
        }
        Float16 | Float32 | Float64 => Cells::Float(cast(col, &Float64)?.as_primitive().clone()),
        Boolean => Cells::Bool(col.as_boolean()),
        _ => Cells::Other(ArrayFormatter::try_new(col.as_ref(), opts)?),
    })
}

fn names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

impl BatchSink for Writer {
    fn schema(&mut self, schema: SchemaRef) -> anyhow::Result<()> {
        match self {
            Writer::Csv(w) => w.write_record(names(&schema))?,
            Writer::Ndjson { names: n, .. } => {
                *n = names(&schema)
                    .iter()
                    .map(|s| serde_json::to_string(s).unwrap_or_default())
                    .collect()
            }
            Writer::Parquet { out, writer } => {
                let props = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP))
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build();
                let sink = out.take().expect("the schema comes once");
                *writer = Some(ArrowWriter::try_new(sink, schema, Some(props))?);
            }
        }
        Ok(())
    }

    fn batch(&mut self, batch: &RecordBatch) -> anyhow::Result<bool> {
        let opts = FormatOptions::default()
            .with_timestamp_format(Some(TIME_FORMAT))
            .with_timestamp_tz_format(Some(TIME_FORMAT));
        match self {
            Writer::Parquet { writer, .. } => {
                writer
                    .as_mut()
                    .ok_or_else(|| anyhow::anyhow!("a batch before the schema"))?
                    .write(batch)?;
            }
            Writer::Csv(w) => {
                let cols = batch
                    .columns()
                    .iter()
                    .map(|c| cells(c, &opts))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut record = csv::StringRecord::new();
                for row in 0..batch.num_rows() {
                    record.clear();
                    for (c, col) in cols.iter().zip(batch.columns()) {
                        if col.is_null(row) {
                            record.push_field("");
                            continue;
                        }
                        match c {
                            Cells::Text(f) => record.push_field(&formula::neutralise(f(row)).0),
                            Cells::Int(a) => record.push_field(&a.value(row).to_string()),
                            Cells::Float(a) => record.push_field(&a.value(row).to_string()),
                            Cells::Bool(a) => record.push_field(&a.value(row).to_string()),
                            Cells::Other(f) => record.push_field(&f.value(row).to_string()),
                        }
                    }
                    w.write_record(&record)?;
                }
            }
            Writer::Ndjson { out, names } => {
                let cols = batch
                    .columns()
                    .iter()
                    .map(|c| cells(c, &opts))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut line = Vec::with_capacity(256);
                for row in 0..batch.num_rows() {
                    line.clear();
                    line.push(b'{');
                    for (i, (c, col)) in cols.iter().zip(batch.columns()).enumerate() {
                        if i > 0 {
                            line.push(b',');
                        }
                        line.extend_from_slice(names[i].as_bytes());
                        line.push(b':');
                        if col.is_null(row) {
                            line.extend_from_slice(b"null");
                            continue;
                        }
                        match c {
                            Cells::Text(f) => serde_json::to_writer(&mut line, f(row))?,
                            Cells::Int(a) => write!(line, "{}", a.value(row))?,
                            Cells::Float(a) => {
                                let v = a.value(row);
                                if v.is_finite() {
                                    write!(line, "{v}")?
                                } else {
                                    line.extend_from_slice(b"null")
                                }
                            }
                            Cells::Bool(a) => write!(line, "{}", a.value(row))?,
                            Cells::Other(f) => {
                                serde_json::to_writer(&mut line, &f.value(row).to_string())?
                            }
                        }
                    }
                    line.extend_from_slice(b"}\n");
                    out.write_all(&line)?;
                }
            }
        }
        Ok(true)
    }
}
