//! Timestamp parsing to epoch milliseconds (UTC).
//!
//! Claude Code writes `2026-05-14T07:47:58.123Z`. A hand-written parser
//! covers that shape and its ISO-8601 relatives (any number of fraction
//! digits, `Z`/`z`, `±HH:MM`, `±HHMM`, `±HH`, `T`/`t`/space separator) without
//! allocating, since every line has one; anything else goes to chrono's
//! RFC 3339 / RFC 2822 parsers. A timestamp without a zone is read as UTC.
//! Sub-millisecond digits are truncated (floor), like the oracle's.

use chrono::DateTime;

/// Epoch milliseconds of a timestamp, or `None` if it is not usable.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    iso_ms(s.as_bytes()).or_else(|| fallback_ms(s))
}

fn fallback_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_rfc2822(s))
        .ok()
        .map(|dt| dt.timestamp_millis())
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff…][Z|±HH[:]MM|±HH]`.
fn iso_ms(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = num(&b[0..4])?;
    let month = num(&b[5..7])?;
    let day = num(&b[8..10])?;
    let (hour, minute, second) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let (millis, rest) = fraction(&b[19..])?;
    let offset_min = zone_minutes(rest)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1_000 + millis)
}

/// Parses ASCII digits (all of them must be digits).
fn num(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0i64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
    })
}

/// An optional `.digits` fraction: its milliseconds and what follows it.
fn fraction(b: &[u8]) -> Option<(i64, &[u8])> {
    if !matches!(b.first(), Some(b'.' | b',')) {
        return Some((0, b));
    }
    let digits = b[1..].iter().take_while(|d| d.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut millis = 0;
    for i in 0..3 {
        let d = if i < digits {
            i64::from(b[1 + i] - b'0')
        } else {
            0
        };
        millis = millis * 10 + d;
    }
    Some((millis, &b[1 + digits..]))
}

/// Zone offset in minutes east of UTC; no zone means UTC.
fn zone_minutes(b: &[u8]) -> Option<i64> {
    let sign = match b.first() {
        None => return Some(0),
        Some(b'Z' | b'z') if b.len() == 1 => return Some(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let (hours, minutes) = match &b[1..] {
        [h1, h2] => (num(&[*h1, *h2])?, 0),
        [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (num(&[*h1, *h2])?, num(&[*m1, *m2])?),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 60 + minutes))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
