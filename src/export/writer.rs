//! The three export formats over the Arrow batches DuckDB streams: CSV (text
//! cells neutralised against spreadsheet formulas, [`super::csv`]), NDJSON
//! (one object a line, numbers as numbers, [`super::ndjson`]) and Parquet
//! (typed columns, row groups written as they fill).

use std::sync::Arc;

use duckdb::arrow::array::{make_array, ArrayRef};
use duckdb::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use duckdb::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::cells::{columns, format_options};
use super::chunks::ChunkSender;
use super::timefmt::IsoMicros;
use super::{csv, ndjson, Format};
use crate::repo::sql::BatchSink;

/// Rows per Parquet row group: bounds the memory a Parquet export holds.
const PARQUET_ROW_GROUP: usize = 64 * 1024;
/// A column's dictionary in a row group beyond this many bytes is dropped
/// for plain values: ids and UUIDs, unique, were otherwise hashed into a
/// 1 MB dictionary (the default) that was then thrown away — 15–20 % of a
/// Parquet export's time. Columns of few values (users, tools, models)
/// keep theirs.
const PARQUET_DICTIONARY_MAX: usize = 64 * 1024;

pub(crate) enum Writer {
    Csv {
        out: ChunkSender,
        times: IsoMicros,
    },
    Ndjson {
        out: ChunkSender,
        keys: Vec<Vec<u8>>,
        times: IsoMicros,
    },
    Parquet {
        out: Option<ChunkSender>,
        /// Boxed: the writer is large, the text formats' state small.
        writer: Option<Box<ArrowWriter<ChunkSender>>>,
        schema: Option<SchemaRef>,
    },
}

impl Writer {
    pub(crate) fn new(format: Format, out: ChunkSender) -> Writer {
        match format {
            Format::Csv => Writer::Csv {
                out,
                times: IsoMicros::new(),
            },
            Format::Ndjson => Writer::Ndjson {
                out,
                keys: Vec::new(),
                times: IsoMicros::new(),
            },
            Format::Parquet => Writer::Parquet {
                out: Some(out),
                writer: None,
                schema: None,
            },
        }
    }

    /// Ends the file and sends what is left.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        let mut out = match self {
            Writer::Csv { out, .. } | Writer::Ndjson { out, .. } => out,
            Writer::Parquet { out, writer, .. } => match writer {
                Some(w) => w.into_inner()?,
                None => out.expect("a Parquet export has its output until the schema"),
            },
        };
        out.send_buf()?;
        Ok(())
    }
}

pub(super) fn names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// The Parquet type of a column: timestamps without a zone are UTC (the
/// database stores UTC), so readers show the instant, not a local time.
fn parquet_type(t: &DataType) -> DataType {
    match t {
        DataType::Timestamp(unit, None) => DataType::Timestamp(*unit, Some("UTC".into())),
        other => other.clone(),
    }
}

fn parquet_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            f.as_ref()
                .clone()
                .with_data_type(parquet_type(f.data_type()))
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with [`parquet_type`]s: the same buffers under the new type.
fn parquet_batch(batch: &RecordBatch, schema: &SchemaRef) -> anyhow::Result<RecordBatch> {
    let cols = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| -> anyhow::Result<ArrayRef> {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                let data = c.to_data().into_builder().data_type(f.data_type().clone());
                Ok(make_array(data.build()?))
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

impl BatchSink for Writer {
    fn schema(&mut self, schema: SchemaRef) -> anyhow::Result<()> {
        match self {
            Writer::Csv { out, .. } => csv::header(out.buf(), &names(&schema)),
            Writer::Ndjson { keys, .. } => *keys = ndjson::keys(&names(&schema)),
            Writer::Parquet {
                out,
                writer,
                schema: typed,
            } => {
                let mut props = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP))
                    .set_dictionary_page_size_limit(PARQUET_DICTIONARY_MAX)
                    // No page compression: Snappy saved only ~15 % of the
                    // file (dictionaries and ids already dominate it) and
                    // cost ~9 % of the export's CPU, which kept Parquet
                    // under 1 M rows/s (docs/performance.md).
                    .set_compression(parquet::basic::Compression::UNCOMPRESSED);
                // Text columns get no min/max statistics: two string
                // comparisons per value (~4 % of an export's CPU) for ids
                // and paths no reader skips row groups by. Times and
                // numbers keep theirs.
                for f in schema.fields() {
                    if matches!(
                        f.data_type(),
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    ) {
                        props = props.set_column_statistics_enabled(
                            ColumnPath::from(f.name().as_str()),
                            EnabledStatistics::None,
                        );
                    }
                }
                let props = props.build();
                let sink = out.take().expect("the schema comes once");
                let schema = parquet_schema(&schema);
                *writer = Some(Box::new(ArrowWriter::try_new(
                    sink,
                    schema.clone(),
                    Some(props),
                )?));
                *typed = Some(schema);
            }
        }
        Ok(())
    }

    fn batch(&mut self, batch: &RecordBatch) -> anyhow::Result<bool> {
        let opts = format_options();
        match self {
            Writer::Parquet { writer, schema, .. } => {
                let (Some(writer), Some(schema)) = (writer.as_mut(), schema.as_ref()) else {
                    anyhow::bail!("a batch before the schema");
                };
                writer.write(&parquet_batch(batch, schema)?)?;
            }
            Writer::Csv { out, times } => {
                let cols = columns(batch.columns(), &opts)?;
                csv::rows(out, batch, &cols, times)?;
            }
            Writer::Ndjson { out, keys, times } => {
                let cols = columns(batch.columns(), &opts)?;
                ndjson::rows(out, batch, &cols, keys, times)?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{ArrayRef, Int32Array, TimestampMicrosecondArray};
    use duckdb::arrow::datatypes::{DataType, TimeUnit};
    use duckdb::arrow::record_batch::RecordBatch;

    #[test]
    fn parquet_timestamps_are_utc_on_the_same_values() {
        let batch = RecordBatch::try_from_iter([
            (
                "t",
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1), None])) as ArrayRef,
            ),
            ("n", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
        ])
        .unwrap();
        let schema = super::parquet_schema(&batch.schema());
        let typed = super::parquet_batch(&batch, &schema).unwrap();
        assert_eq!(
            typed.column(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(typed.column(1).data_type(), &DataType::Int32);
        let t = typed
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(t.value(0), 1);
        assert!(duckdb::arrow::array::Array::is_null(t, 1));
    }
}
