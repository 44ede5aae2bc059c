//! The columns of an Arrow batch read as the text formats need them: typed
//! arrays downcast once per batch, so a cell is a match and an index, not a
//! dynamic call or an allocation.

use duckdb::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, LargeStringArray,
    StringArray, StringViewArray, TimestampMicrosecondArray,
};
use duckdb::arrow::buffer::NullBuffer;
use duckdb::arrow::compute::cast;
use duckdb::arrow::datatypes::{DataType, TimeUnit};
use duckdb::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Times in other units than microseconds (DuckDB's `TIMESTAMP` is in
/// microseconds): ISO 8601 UTC through Arrow's formatter.
pub(crate) const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

pub(crate) fn format_options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_timestamp_format(Some(TIME_FORMAT))
        .with_timestamp_tz_format(Some(TIME_FORMAT))
}

pub(crate) struct Column<'a> {
    nulls: Option<&'a NullBuffer>,
    pub(crate) cells: Cells<'a>,
}

pub(crate) enum Cells<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Int(Int64Array),
    Float(Float64Array),
    Bool(&'a BooleanArray),
    /// Microseconds since the epoch, UTC (the database stores UTC).
    Micros(&'a TimestampMicrosecondArray),
    Other(ArrayFormatter<'a>),
}

impl Column<'_> {
    #[inline]
    pub(crate) fn is_null(&self, row: usize) -> bool {
        self.nulls.is_some_and(|n| n.is_null(row))
    }
}

pub(crate) fn columns<'a>(
    cols: &'a [ArrayRef],
    opts: &'a FormatOptions<'a>,
) -> anyhow::Result<Vec<Column<'a>>> {
    cols.iter().map(|c| column(c, opts)).collect()
}

fn column<'a>(col: &'a ArrayRef, opts: &'a FormatOptions<'a>) -> anyhow::Result<Column<'a>> {
    use DataType::*;
    let cells = match col.data_type() {
        Utf8 => Cells::Utf8(col.as_string::<i32>()),
        LargeUtf8 => Cells::LargeUtf8(col.as_string::<i64>()),
        Utf8View => Cells::Utf8View(col.as_string_view()),
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => {
            Cells::Int(cast(col, &Int64)?.as_primitive().clone())
        }
        Float16 | Float32 | Float64 => Cells::Float(cast(col, &Float64)?.as_primitive().clone()),
        Boolean => Cells::Bool(col.as_boolean()),
        Timestamp(TimeUnit::Microsecond, _) => Cells::Micros(col.as_primitive()),
        _ => Cells::Other(ArrayFormatter::try_new(col.as_ref(), opts)?),
    };
    Ok(Column {
        nulls: col.nulls(),
        cells,
    })
}
