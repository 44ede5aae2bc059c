//! ISO 8601 in and out, all in UTC (the database stores naive UTC timestamps).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use serde::Serializer;

/// The years `parse` accepts. chrono reads years down to −262143, where
/// subtracting a window overflows (a panic) and DuckDB cannot store the
/// value; no audit row, sync run or window of ours lies outside these.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// What a caller's 422 says a date must look like.
pub const EXPECTED: &str =
    "an ISO 8601 date or date-time in the years 1970 to 9999 (like 2026-05-14 or 2026-05-14T07:00:00Z)";

/// `2026-05-14T07:47:58.123456Z`: always six fraction digits, so a value read
/// back (a cursor) compares equal to the stored microsecond timestamp.
pub fn format(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `20260514T074758Z`, for file names.
pub fn compact(t: &NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// serde `serialize_with` for a timestamp.
pub fn ser<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

/// serde `serialize_with` for an optional timestamp.
pub fn ser_opt<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format(t)),
        None => s.serialize_none(),
    }
}

/// Reads a date (`2026-05-14`, midnight UTC) or a date-time with `T` or a space,
/// optional fraction, and `Z`, an offset, or nothing (UTC). A `+` offset that a
/// query string turned into a space is recognised too. A year outside
/// `YEARS` reads as `None`, like any other unreadable value.
pub fn parse(s: &str) -> Option<NaiveDateTime> {
    parse_any_year(s).filter(|t| YEARS.contains(&t.year()))
}

fn parse_any_year(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    let normalized = repair_plus(s).replace(' ', "T");
    if let Ok(dt) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(dt.naive_utc());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(&normalized, fmt) {
            return Some(dt.naive_utc());
        }
    }
    let naive = normalized
        .strip_suffix('Z')
        .or_else(|| normalized.strip_suffix('z'))
        .unwrap_or(&normalized);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(dt);
        }
    }
    None
}

/// `2026-05-14T07:00:00 02:00` (a `+` decoded as a space) → `…+02:00`.
fn repair_plus(s: &str) -> String {
    let b = s.as_bytes();
    let n = b.len();
    for tail in [6usize, 5, 3] {
        if n > tail + 10 && b[n - tail] == b' ' && b[10] != b' ' {
            let rest = &s[n - tail + 1..];
            if rest.chars().all(|c| c.is_ascii_digit() || c == ':') {
                return format!("{}+{}", &s[..n - tail], rest);
            }
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn dates_and_date_times_in_every_usual_shape_read_as_utc() {
        assert_eq!(parse("2026-05-14"), Some(at("2026-05-14 00:00:00")));
        assert_eq!(parse("2026-05-14T07:47"), Some(at("2026-05-14 07:47:00")));
        assert_eq!(
            parse("2026-05-14T07:47:58Z"),
            Some(at("2026-05-14 07:47:58"))
        );
        assert_eq!(
            parse("2026-05-14 07:47:58.123456"),
            Some(at("2026-05-14 07:47:58.123456"))
        );
        assert_eq!(
            parse("2026-05-14T09:47:58+02:00"),
            Some(at("2026-05-14 07:47:58"))
        );
        assert_eq!(
            parse("2026-05-14T09:47:58 02:00"),
            Some(at("2026-05-14 07:47:58")),
            "a + turned into a space by the query string"
        );
        assert_eq!(
            parse("2026-05-14T02:47:58-0500"),
            Some(at("2026-05-14 07:47:58"))
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-05-14T25:00",
            "1715672878",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn years_outside_1970_to_9999_are_refused() {
        for bad in [
            "-262143-01-01",
            "-262143-01-02T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "+10000-01-01",
            "0000-01-01",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse("1970-01-01"), Some(at("1970-01-01 00:00:00")));
        assert_eq!(
            parse("9999-12-31T23:59:59Z"),
            Some(at("9999-12-31 23:59:59"))
        );
    }

    #[test]
    fn formatting_keeps_microseconds_and_round_trips() {
        let t = at("2026-05-14 07:47:58.000123");
        assert_eq!(format(&t), "2026-05-14T07:47:58.000123Z");
        assert_eq!(parse(&format(&t)), Some(t));
        assert_eq!(compact(&t), "20260514T074758Z");
    }
}
