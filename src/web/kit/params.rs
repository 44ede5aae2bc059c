//! Query parameters as every page and API reads them: blank is absent (an
//! HTML form's "any"), a value that does not parse is a 422 naming the
//! parameter (SPEC §1), and the time window of a request.

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::isotime;

/// Longest accepted text filter value.
pub(crate) const MAX_TEXT: usize = 512;

pub(crate) fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// The value when it is not blank.
pub(crate) fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

pub(crate) fn int_param(
    name: &str,
    v: &Option<String>,
    min: i64,
    max: i64,
) -> AppResult<Option<i64>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    let n: i64 = s.trim().parse().map_err(|_| {
        AppError::unprocessable(format!("{name}: expected a whole number, got {s:?}"))
    })?;
    if n < min || n > max {
        return Err(AppError::unprocessable(format!(
            "{name}: must be between {min} and {max}, got {n}"
        )));
    }
    Ok(Some(n))
}

pub(crate) fn bool_param(name: &str, v: &Option<String>) -> AppResult<Option<bool>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        _ => Err(AppError::unprocessable(format!(
            "{name}: expected true or false, got {s:?}"
        ))),
    }
}

pub(crate) fn text_param(name: &str, v: &Option<String>) -> AppResult<Option<String>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    if s.chars().count() > MAX_TEXT {
        return Err(AppError::unprocessable(format!(
            "{name}: longer than {MAX_TEXT} characters"
        )));
    }
    Ok(Some(s.to_string()))
}

pub(crate) fn one_of(name: &str, v: &Option<String>, set: &[&str]) -> AppResult<Option<String>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    if set.contains(&s) {
        Ok(Some(s.to_string()))
    } else {
        Err(AppError::unprocessable(format!(
            "{name}: must be one of {}, got {s:?}",
            set.join(", ")
        )))
    }
}

pub(crate) fn time_param(name: &str, v: &Option<String>) -> AppResult<Option<NaiveDateTime>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    isotime::parse(s).map(Some).ok_or_else(|| {
        AppError::unprocessable(format!("{name}: not {}, got {s:?}", isotime::EXPECTED))
    })
}

/// The window parameters every page and API shares, as sent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct WindowQuery {
    pub since_minutes: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// How long a window may be and how long it is when not given.
#[derive(Debug, Clone, Copy)]
pub struct WindowRules {
    pub max_minutes: i64,
    pub default_minutes: i64,
    /// Said in the 422 for a window that is too long ("30 days").
    pub max_label: &'static str,
}

impl WindowRules {
    /// The Audit log: 30 days at most, the last 24 h by default (SPEC §1).
    pub const AUDIT: WindowRules = WindowRules {
        max_minutes: 43_200,
        default_minutes: 1_440,
        max_label: "30 days",
    };

    /// Telemetry and Sessions: up to a year, as Agnes (SPEC §11).
    pub const fn long(default_minutes: i64) -> WindowRules {
        WindowRules {
            max_minutes: 525_600,
            default_minutes,
            max_label: "365 days",
        }
    }
}

/// The time window of a request: `since`/`until` (ISO 8601) when given, else
/// the last `since_minutes`.
#[derive(Debug, Clone)]
pub struct Window {
    pub since: NaiveDateTime,
    pub until: Option<NaiveDateTime>,
    /// Set when the window is relative (`since_minutes`), for the echo.
    pub since_minutes: Option<i64>,
}

impl Window {
    pub fn parse(q: &WindowQuery, rules: WindowRules, now: NaiveDateTime) -> AppResult<Window> {
        let minutes = int_param("since_minutes", &q.since_minutes, 1, rules.max_minutes)?;
        let since = time_param("since", &q.since)?;
        let until = time_param("until", &q.until)?;
        let max = Duration::minutes(rules.max_minutes);
        let too_long = || {
            AppError::unprocessable(format!(
                "since, until: the window is longer than {} ({} minutes); narrow it",
                rules.max_label, rules.max_minutes
            ))
        };
        let relative = Duration::minutes(minutes.unwrap_or(rules.default_minutes));
        // Checked: a date near the ends of the calendar must be a 422, never
        // an overflow.
        let before = |t: NaiveDateTime, name: &str| {
            t.checked_sub_signed(relative).ok_or_else(|| {
                AppError::unprocessable(format!("{name}: too far in the past for this window"))
            })
        };
        match (since, until) {
            (None, None) => Ok(Window {
                since: before(now, "since_minutes")?,
                until: None,
                since_minutes: Some(minutes.unwrap_or(rules.default_minutes)),
            }),
            (Some(s), Some(u)) => {
                if s >= u {
                    return Err(AppError::unprocessable("since: must be before until"));
                }
                if u.signed_duration_since(s) > max {
                    return Err(too_long());
                }
                Ok(Window {
                    since: s,
                    until: Some(u),
                    since_minutes: None,
                })
            }
            // Open-ended: measured against now, with a minute's grace for a
            // client that computed "30 days ago" a moment before sending.
            (Some(s), None) => {
                if now.signed_duration_since(s) > max + Duration::minutes(1) {
                    return Err(too_long());
                }
                Ok(Window {
                    since: s,
                    until: None,
                    since_minutes: None,
                })
            }
            (None, Some(u)) => Ok(Window {
                since: before(u, "until")?,
                until: Some(u),
                since_minutes: None,
            }),
        }
    }

    /// Length in minutes, the open end taken as `now`.
    pub fn minutes(&self, now: NaiveDateTime) -> i64 {
        self.until
            .unwrap_or(now)
            .signed_duration_since(self.since)
            .num_minutes()
    }

    /// The window of the same length just before this one (for KPI deltas);
    /// `None` when it would fall off the calendar.
    pub fn previous(&self, now: NaiveDateTime) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let end = self.since;
        let len = self.until.unwrap_or(now).signed_duration_since(end);
        end.checked_sub_signed(len).map(|start| (start, end))
    }

    /// The echo of the window: `since_minutes` when relative, else the two
    /// bounds as given (ISO 8601).
    pub fn echo(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{json, Value};
        let given = |t: Option<&NaiveDateTime>| match (self.since_minutes, t) {
            (None, Some(t)) => json!(isotime::format(t)),
            _ => Value::Null,
        };
        let mut m = serde_json::Map::new();
        m.insert("since_minutes".into(), json!(self.since_minutes));
        m.insert("since".into(), given(Some(&self.since)));
        m.insert("until".into(), given(self.until.as_ref()));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(since_minutes: &str, since: &str, until: &str) -> WindowQuery {
        let o = |s: &str| (!s.is_empty()).then(|| s.to_string());
        WindowQuery {
            since_minutes: o(since_minutes),
            since: o(since),
            until: o(until),
        }
    }

    #[test]
    fn a_window_at_the_ends_of_the_calendar_is_a_422_not_a_panic() {
        let now = now();
        for (m, s, u) in [
            ("", "", "-262143-01-01"),
            ("", "-262143-01-01", "-262143-01-02"),
            ("", "", "+262142-12-31"),
            ("525600", "", "-262000-01-01"),
        ] {
            for rules in [WindowRules::AUDIT, WindowRules::long(10_080)] {
                if let Ok(w) = Window::parse(&q(m, s, u), rules, now) {
                    // Whatever parses must also give a previous window or say it has none.
                    let _ = w.previous(now);
                }
            }
        }
    }

    #[test]
    fn long_windows_reach_a_year_and_audit_windows_thirty_days() {
        let now = now();
        assert!(Window::parse(&q("525600", "", ""), WindowRules::long(10_080), now).is_ok());
        assert!(Window::parse(&q("525601", "", ""), WindowRules::long(10_080), now).is_err());
        assert!(Window::parse(&q("43201", "", ""), WindowRules::AUDIT, now).is_err());
        let w = Window::parse(&q("", "", ""), WindowRules::long(10_080), now).unwrap();
        assert_eq!(w.since_minutes, Some(10_080));
    }
}
