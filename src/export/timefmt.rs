//! A microsecond timestamp as ISO 8601 UTC, `2026-11-02T10:11:12.123456Z`
//! (always six fraction digits, like `isotime::format`), written by hand:
//! chrono's formatter per cell was a large share of an export's time. An
//! export's rows come oldest first, so consecutive cells of a column often
//! share their second, whose text is kept — for the last two seconds seen,
//! so that a row's two time columns (`occurred_at`, `extracted_at`) do not
//! evict each other's.

/// Formats timestamps into a buffer, remembering the last two seconds' text.
pub(crate) struct IsoMicros {
    seconds: [Second; 2],
    /// The entry used last (the other one is replaced on a miss).
    last: usize,
}

#[derive(Clone, Copy)]
struct Second {
    secs: i64,
    /// `YYYY-MM-DDTHH:MM:SS.` of `secs`, then room for the fraction and `Z`.
    text: [u8; 27],
}

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

impl IsoMicros {
    pub(crate) fn new() -> IsoMicros {
        let none = Second {
            secs: i64::MIN,
            text: [0; 27],
        };
        IsoMicros {
            seconds: [none; 2],
            last: 0,
        }
    }

    /// Appends the text of `micros` since 1970-01-01T00:00:00Z (27 bytes for
    /// the years 0 to 9999).
    #[inline]
    pub(crate) fn write(&mut self, micros: i64, out: &mut Vec<u8>) {
        let secs = micros.div_euclid(MICROS_PER_SEC);
        let i = if self.seconds[self.last].secs == secs {
            self.last
        } else if self.seconds[1 - self.last].secs == secs {
            1 - self.last
        } else {
            let i = 1 - self.last;
            if !self.seconds[i].set(secs) {
                return outside_four_digit_years(micros, out);
            }
            i
        };
        self.last = i;
        let frac = micros.rem_euclid(MICROS_PER_SEC) as u32;
        let mut text = self.seconds[i].text;
        two(&mut text[20..22], frac / 10_000);
        two(&mut text[22..24], frac / 100 % 100);
        two(&mut text[24..26], frac % 100);
        text[26] = b'Z';
        super::append::append(out, &text);
    }
}

impl Second {
    /// Renders the head of `secs`; false outside the years 0 to 9999.
    fn set(&mut self, secs: i64) -> bool {
        let Some(date) = date_of(secs.div_euclid(SECS_PER_DAY)) else {
            return false;
        };
        let sod = secs.rem_euclid(SECS_PER_DAY) as u32;
        let h = &mut self.text;
        h[..10].copy_from_slice(&date);
        h[10] = b'T';
        two(&mut h[11..13], sod / 3600);
        h[13] = b':';
        two(&mut h[14..16], sod / 60 % 60);
        h[16] = b':';
        two(&mut h[17..19], sod % 60);
        h[19] = b'.';
        self.secs = secs;
        true
    }
}

#[inline]
fn two(dst: &mut [u8], v: u32) {
    dst[0] = b'0' + (v / 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// `YYYY-MM-DD` of a day since 1970-01-01 (proleptic Gregorian, Howard
/// Hinnant's `civil_from_days`); `None` outside the years 0 to 9999.
fn date_of(day: i64) -> Option<[u8; 10]> {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let y = y as u32;
    let mut s = [b'-'; 10];
    two(&mut s[0..2], y / 100);
    two(&mut s[2..4], y % 100);
    two(&mut s[5..7], m as u32);
    two(&mut s[8..10], d as u32);
    Some(s)
}

/// Years DuckDB can store but four digits cannot show: chrono's text (a
/// signed, wider year), or the number itself beyond chrono's range.
fn outside_four_digit_years(micros: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
        None => write!(out, "{micros}"),
    };
}

#[cfg(test)]
mod tests {
    use super::IsoMicros;

    fn text(f: &mut IsoMicros, micros: i64) -> String {
        let mut out = Vec::new();
        f.write(micros, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn chrono_text(micros: i64) -> String {
        chrono::DateTime::from_timestamp_micros(micros)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    }

    #[test]
    fn microseconds_are_six_digits_with_their_zeros() {
        let mut f = IsoMicros::new();
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        assert_eq!(
            text(&mut f, t("2026-11-02T10:11:12.123456Z")),
            "2026-11-02T10:11:12.123456Z"
        );
        assert_eq!(
            text(&mut f, t("2026-11-02T10:11:12Z")),
            "2026-11-02T10:11:12.000000Z"
        );
        assert_eq!(
            text(&mut f, t("2026-11-02T00:00:00.000001Z")),
            "2026-11-02T00:00:00.000001Z"
        );
        assert_eq!(
            text(&mut f, t("2026-11-02T23:59:59.100000Z")),
            "2026-11-02T23:59:59.100000Z"
        );
        assert_eq!(text(&mut f, 0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn every_day_and_leap_year_matches_chrono() {
        let mut f = IsoMicros::new();
        // Every day from 1900 to 2100 at a time with a fraction, and the
        // microseconds either side of midnight.
        let start = chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
        let mut d = start;
        while d.year_ce().1 < 2101 {
            let midnight = d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros();
            for m in [midnight, midnight - 1, midnight + 45_296_789_012] {
                assert_eq!(text(&mut f, m), chrono_text(m));
            }
            d = d.succ_opt().unwrap();
        }
    }

    #[test]
    fn two_columns_alternating_seconds_keep_their_own_text() {
        let mut f = IsoMicros::new();
        let (a, b, c) = (1_793_614_272_123_456, 1_793_700_000_000_001, 1_000_000);
        for m in [a, b, a + 1, b + 1, c, a, b, c, c + 7] {
            assert_eq!(text(&mut f, m), chrono_text(m));
        }
    }

    #[test]
    fn negative_and_far_values_do_not_panic() {
        let mut f = IsoMicros::new();
        assert_eq!(text(&mut f, -1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            text(&mut f, -62_167_219_200_000_000),
            "0000-01-01T00:00:00.000000Z"
        );
        // Before the year 0 and after 9999: chrono's wider years.
        let before = -62_167_219_200_000_001;
        assert_eq!(text(&mut f, before), chrono_text(before));
        let after = 253_402_300_800_000_000;
        assert_eq!(text(&mut f, after), chrono_text(after));
        // DuckDB's infinities are beyond chrono: the number, no panic.
        assert_eq!(text(&mut f, i64::MAX), i64::MAX.to_string());
        assert_eq!(text(&mut f, -i64::MAX), (-i64::MAX).to_string());
        assert_eq!(text(&mut f, i64::MIN), i64::MIN.to_string());
    }

    use chrono::Datelike;
}
