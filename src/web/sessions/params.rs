//! The Sessions filters as sent (one struct for the APIs and the page), and
//! their validation into the repository's filter. Blank values are absent.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::repo::sessions::{Anchor, SessionFilter, SessionSort, FINDING_TYPES};
use crate::web::kit::{Window, WindowQuery, WindowRules};

/// Agnes's default window for the Sessions list: 7 days.
pub const DEFAULT_WINDOW_MINUTES: i64 = 10_080;
const MAX_TEXT: usize = 512;

/// Every filter of the Sessions list, as sent (the page and the APIs share it).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SessionFilters {
    pub since_minutes: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub anchor: Option<String>,
    pub username: Option<String>,
    pub model: Option<String>,
    pub only_errors: Option<String>,
    pub finding_type: Option<String>,
    pub has_findings: Option<String>,
    pub q: Option<String>,
    pub min_tokens: Option<String>,
    pub max_tokens: Option<String>,
    pub min_cost: Option<String>,
    pub max_cost: Option<String>,
}

/// The APIs' parameters: the filters, then Agnes's `sort` (`key:dir`) and
/// `limit`/`offset` paging.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SessionsQuery {
    #[serde(flatten)]
    pub filters: SessionFilters,
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
        let (filter, since_minutes) = self.filters.filter(now)?;
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

impl SessionFilters {
    /// The repository's filter and, for a relative window, its minutes.
    pub fn filter(&self, now: NaiveDateTime) -> AppResult<(SessionFilter, Option<i64>)> {
        let window = Window::parse(
            &WindowQuery {
                since_minutes: self.since_minutes.clone(),
                since: self.since.clone(),
                until: self.until.clone(),
            },
            WindowRules::long(DEFAULT_WINDOW_MINUTES),
            now,
        )?;
        let (since, until, since_minutes) = (window.since, window.until, window.since_minutes);
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
        Ok((filter, since_minutes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &str) -> AppResult<Parsed> {
        let q: SessionsQuery = serde_urlencoded::from_str(pairs).unwrap();
        q.parse(
            crate::isotime::parse("2026-06-01T00:00:00Z").unwrap(),
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
