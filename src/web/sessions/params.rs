//! The Sessions filters as sent (one struct for the APIs and the page), and
//! their validation into the repository's filter. Blank values are absent.

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::isotime;
use crate::repo::sessions::{Anchor, SessionFilter, SessionSort, FINDING_TYPES};

/// SPEC §11: Sessions accept up to 365 days, as Agnes does.
pub const MAX_WINDOW_MINUTES: i64 = 525_600;
/// Agnes's default window for the Sessions list: 7 days.
pub const DEFAULT_WINDOW_MINUTES: i64 = 10_080;
const MAX_TEXT: usize = 512;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SessionsQuery {
    #[serde(skip_serializing_if = "blank")]
    pub since_minutes: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub anchor: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub only_errors: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub finding_type: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub has_findings: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub min_tokens: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub max_tokens: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub min_cost: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub max_cost: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub sort: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub limit: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub offset: Option<String>,
}

fn blank(v: &Option<String>) -> bool {
    present(v).is_none()
}

pub fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub fn int_param(name: &str, v: &Option<String>, min: i64, max: i64) -> AppResult<Option<i64>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    let n: i64 = s.parse().map_err(|_| {
        AppError::unprocessable(format!("{name}: expected a whole number, got {s:?}"))
    })?;
    if n < min || n > max {
        return Err(AppError::unprocessable(format!(
            "{name}: must be between {min} and {max}, got {n}"
        )));
    }
    Ok(Some(n))
}

fn float_param(name: &str, v: &Option<String>) -> AppResult<Option<f64>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
        _ => Err(AppError::unprocessable(format!(
            "{name}: expected a number of dollars of at least 0, got {s:?}"
        ))),
    }
}

pub fn bool_param(name: &str, v: &Option<String>) -> AppResult<bool> {
    let Some(s) = present(v) else {
        return Ok(false);
    };
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(AppError::unprocessable(format!(
            "{name}: expected true or false, got {s:?}"
        ))),
    }
}

fn text_param(name: &str, v: &Option<String>) -> AppResult<Option<String>> {
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

fn time_param(name: &str, v: &Option<String>) -> AppResult<Option<NaiveDateTime>> {
    let Some(s) = present(v) else {
        return Ok(None);
    };
    isotime::parse(s).map(Some).ok_or_else(|| {
        AppError::unprocessable(format!(
            "{name}: not an ISO 8601 date or date-time (like 2026-05-14 or 2026-05-14T07:00:00Z), got {s:?}"
        ))
    })
}

/// The validated request: filter, sort and page.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub filter: SessionFilter,
    pub sort: SessionSort,
    pub limit: i64,
    pub offset: i64,
    /// Set when the window is relative, for the echo.
    pub since_minutes: Option<i64>,
}

impl SessionsQuery {
    /// Validates every parameter (422 naming the first bad one). `default_sort`
    /// applies when `sort` is absent (the API keeps Agnes's `started_at:desc`,
    /// the page opens on tool errors).
    pub fn parse(&self, now: NaiveDateTime, default_sort: &str) -> AppResult<Parsed> {
        let minutes = int_param("since_minutes", &self.since_minutes, 1, MAX_WINDOW_MINUTES)?;
        let since = time_param("since", &self.since)?;
        let until = time_param("until", &self.until)?;
        let max = Duration::minutes(MAX_WINDOW_MINUTES);
        let too_long = || {
            AppError::unprocessable(format!(
                "since, until: the window is longer than 365 days ({MAX_WINDOW_MINUTES} minutes); narrow it"
            ))
        };
        let (since, until, since_minutes) = match (since, until) {
            (None, None) => {
                let m = minutes.unwrap_or(DEFAULT_WINDOW_MINUTES);
                (now - Duration::minutes(m), None, Some(m))
            }
            (Some(s), Some(u)) => {
                if s >= u {
                    return Err(AppError::unprocessable("since: must be before until"));
                }
                if u - s > max {
                    return Err(too_long());
                }
                (s, Some(u), None)
            }
            (Some(s), None) => {
                if now - s > max + Duration::minutes(1) {
                    return Err(too_long());
                }
                (s, None, None)
            }
            (None, Some(u)) => {
                let m = minutes.unwrap_or(DEFAULT_WINDOW_MINUTES);
                (u - Duration::minutes(m), Some(u), None)
            }
        };
        let anchor = match present(&self.anchor) {
            None => Anchor::default(),
            Some(a) => Anchor::parse(a).ok_or_else(|| {
                AppError::unprocessable(format!(
                    "anchor: must be one of {}, got {a:?}",
                    Anchor::NAMES.join(", ")
                ))
            })?,
        };
        let finding_type = match present(&self.finding_type) {
            None => None,
            Some(t) if FINDING_TYPES.contains(&t) => Some(t.to_string()),
            Some(t) => {
                return Err(AppError::unprocessable(format!(
                    "finding_type: must be one of {}, got {t:?}",
                    FINDING_TYPES.join(", ")
                )))
            }
        };
        let filter = SessionFilter {
            since: Some(since),
            until,
            anchor,
            username: text_param("username", &self.username)?,
            model: text_param("model", &self.model)?,
            only_errors: bool_param("only_errors", &self.only_errors)?,
            finding_type,
            has_findings: bool_param("has_findings", &self.has_findings)?,
            q: text_param("q", &self.q)?,
            min_tokens: int_param("min_tokens", &self.min_tokens, 0, i64::MAX)?,
            max_tokens: int_param("max_tokens", &self.max_tokens, 0, i64::MAX)?,
            min_cost: float_param("min_cost", &self.min_cost)?,
            max_cost: float_param("max_cost", &self.max_cost)?,
            owner: None,
        };
        let sort = match text_param("sort", &self.sort)? {
            Some(s) => SessionSort::parse(&s),
            None => SessionSort::parse(default_sort),
        };
        Ok(Parsed {
            filter,
            sort,
            limit: int_param("limit", &self.limit, 1, 200)?.unwrap_or(50),
            offset: int_param("offset", &self.offset, 0, 50_000)?.unwrap_or(0),
            since_minutes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &str) -> AppResult<Parsed> {
        let q: SessionsQuery = serde_urlencoded::from_str(pairs).unwrap();
        q.parse(
            isotime::parse("2026-06-01T00:00:00Z").unwrap(),
            "started_at:desc",
        )
    }

    #[test]
    fn windows_go_up_to_365_days_and_no_further() {
        assert!(q("since_minutes=525600").is_ok());
        assert!(q("since_minutes=525601").is_err());
        assert!(q("since=2025-06-01&until=2026-06-01").is_ok());
        assert!(q("since=2025-05-31&until=2026-06-01").is_err());
        let p = q("").unwrap();
        assert_eq!(p.since_minutes, Some(10_080));
        assert_eq!(p.filter.anchor, Anchor::Uploaded);
        assert_eq!(p.sort.as_param(), "started_at:desc");
    }

    #[test]
    fn bad_values_are_named() {
        for (query, name) in [
            ("anchor=ended", "anchor"),
            ("finding_type=oops", "finding_type"),
            ("only_errors=maybe", "only_errors"),
            ("limit=201", "limit"),
            ("min_cost=-1", "min_cost"),
        ] {
            let e = q(query).unwrap_err().to_string();
            assert!(e.starts_with(name), "{query}: {e}");
        }
        assert_eq!(
            q("sort=bogus:asc").unwrap().sort.as_param(),
            "started_at:asc"
        );
        assert_eq!(q("sort=tokens").unwrap().sort.as_param(), "tokens:desc");
    }
}
