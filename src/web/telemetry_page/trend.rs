//! The daily trend of the Telemetry page as plain numbers: the SVG's bars
//! (events, errors stacked) and second series, the busiest weekday and the
//! month's projected daily average. Pure functions, so they are tested alone.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use serde::Serialize;

use crate::repo::telemetry::DayPoint;

/// The chart's drawing area, in SVG units.
pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 160.0;

/// The second series drawn over the bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Tokens,
    Cost,
}

impl Series {
    pub fn parse(s: Option<&str>) -> Option<Series> {
        match s.map(str::trim) {
            Some("tokens") => Some(Series::Tokens),
            Some("cost") => Some(Series::Cost),
            _ => None,
        }
    }

    fn value(self, p: &DayPoint) -> f64 {
        match self {
            Series::Tokens => p.tokens as f64,
            Series::Cost => p.cost_usd,
        }
    }
}

/// One day's bar: `y`/`height` of the whole bar, `err_y`/`err_height` of its
/// error part (stacked at the bottom), and the second series' point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub day: String,
    pub x: f64,
    pub width: f64,
    pub y: f64,
    pub height: f64,
    pub err_y: f64,
    pub err_height: f64,
    pub events: i64,
    pub errors: i64,
    /// The second series' value and point (`None`: no series chosen).
    pub value: Option<f64>,
    pub point_y: Option<f64>,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The bars of `points`, scaled to the chart (each series to its own maximum).
pub fn bars(points: &[DayPoint], series: Option<Series>) -> Vec<Bar> {
    if points.is_empty() {
        return Vec::new();
    }
    let max_events = points.iter().map(|p| p.events).max().unwrap_or(0).max(1) as f64;
    let max_value = series
        .map(|s| points.iter().map(|p| s.value(p)).fold(0.0, f64::max))
        .filter(|m| *m > 0.0)
        .unwrap_or(1.0);
    let slot = WIDTH / points.len() as f64;
    let width = (slot * 0.8).max(1.0);
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let h = HEIGHT * p.events as f64 / max_events;
            let eh = HEIGHT * p.errors.min(p.events) as f64 / max_events;
            let value = series.map(|s| s.value(p));
            Bar {
                day: p.day.clone(),
                x: round1(i as f64 * slot + (slot - width) / 2.0),
                width: round1(width),
                y: round1(HEIGHT - h),
                height: round1(h),
                err_y: round1(HEIGHT - eh),
                err_height: round1(eh),
                events: p.events,
                errors: p.errors,
                value,
                point_y: value.map(|v| round1(HEIGHT - HEIGHT * v / max_value)),
            }
        })
        .collect()
}

/// The polyline of the second series (`x,y` pairs at each bar's centre).
pub fn line(bars: &[Bar]) -> Option<String> {
    let pts: Vec<String> = bars
        .iter()
        .filter_map(|b| {
            b.point_y
                .map(|y| format!("{},{}", round1(b.x + b.width / 2.0), y))
        })
        .collect();
    (!pts.is_empty()).then(|| pts.join(" "))
}

/// The weekday with the most events over `points` (ties: the earlier
/// weekday, Monday first); `None` without events.
pub fn busiest_weekday(points: &[DayPoint]) -> Option<Weekday> {
    let mut sums = [0i64; 7];
    for p in points {
        if let Ok(d) = NaiveDate::parse_from_str(&p.day, "%Y-%m-%d") {
            sums[d.weekday().num_days_from_monday() as usize] += p.events;
        }
    }
    let (best, n) = sums
        .iter()
        .enumerate()
        .fold((0, 0), |acc, (i, n)| if *n > acc.1 { (i, *n) } else { acc });
    (n > 0).then(|| Weekday::try_from(best as u8).unwrap_or(Weekday::Mon))
}

/// A weekday as people write it ("Wednesday").
pub fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// The first instant of `now`'s month.
pub fn month_start(now: NaiveDateTime) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(now.year(), now.month(), 1)
        .unwrap_or(now.date())
        .and_hms_opt(0, 0, 0)
        .unwrap_or(now)
}

/// The days of `now`'s month.
pub fn days_in_month(now: NaiveDateTime) -> u32 {
    let (y, m) = (now.year(), now.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    match (next, NaiveDate::from_ymd_opt(y, m, 1)) {
        (Some(n), Some(s)) => (n - s).num_days() as u32,
        _ => 30,
    }
}

/// The month's daily average so far: `month_events` (since the month began)
/// over the days elapsed, today counted whole (so the first morning of a
/// month is not inflated), and the month's total projected from it.
pub fn projection(month_events: i64, now: NaiveDateTime) -> (f64, f64) {
    let elapsed = now.day() as f64;
    let avg = month_events as f64 / elapsed;
    (avg, avg * days_in_month(now) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str, events: i64, errors: i64) -> DayPoint {
        DayPoint {
            day: d.into(),
            events,
            errors,
            tokens: events * 10,
            cost_usd: events as f64 / 100.0,
        }
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn the_busiest_weekday_sums_every_week_and_is_none_without_events() {
        // 2026-12-01 is a Tuesday, 12-07 a Monday, 12-08 a Tuesday.
        let pts = [
            day("2026-12-01", 5, 0),
            day("2026-12-07", 8, 0),
            day("2026-12-08", 4, 0),
        ];
        assert_eq!(busiest_weekday(&pts), Some(Weekday::Tue));
        assert_eq!(busiest_weekday(&[day("2026-12-01", 0, 0)]), None);
        assert_eq!(busiest_weekday(&[]), None);
    }

    #[test]
    fn the_projection_divides_by_the_days_elapsed_and_scales_to_the_month() {
        let (avg, total) = projection(300, at("2026-12-03 10:00"));
        assert_eq!(avg, 100.0);
        assert_eq!(total, 3100.0);
        let (avg, total) = projection(28, at("2027-02-01 00:30"));
        assert_eq!((avg, total), (28.0, 28.0 * 28.0));
        assert_eq!(days_in_month(at("2028-02-10 00:00")), 29);
        assert_eq!(month_start(at("2026-12-03 10:00")), at("2026-12-01 00:00"));
    }

    #[test]
    fn bars_scale_to_the_busiest_day_and_stack_errors_at_the_bottom() {
        let b = bars(&[day("2026-12-01", 10, 5), day("2026-12-02", 5, 0)], None);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].y, b[0].height), (0.0, HEIGHT));
        assert_eq!((b[0].err_y, b[0].err_height), (HEIGHT / 2.0, HEIGHT / 2.0));
        assert_eq!(b[1].height, HEIGHT / 2.0);
        assert!(b[1].x > b[0].x && b[0].point_y.is_none());
        assert_eq!(line(&b), None);
    }

    #[test]
    fn the_second_series_scales_to_its_own_maximum() {
        let b = bars(
            &[day("2026-12-01", 10, 0), day("2026-12-02", 5, 0)],
            Some(Series::Cost),
        );
        assert_eq!(b[0].point_y, Some(0.0));
        assert_eq!(b[1].point_y, Some(HEIGHT / 2.0));
        assert!(line(&b).unwrap().contains(','));
        assert_eq!(Series::parse(Some("tokens")), Some(Series::Tokens));
        assert_eq!(Series::parse(Some("")), None);
    }
}
