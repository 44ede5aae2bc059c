//! KPI cards: a figure for the window, its change against the previous
//! window of the same length, and the filter a click applies
//! (`templates/partials/cards.html` renders them).

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct KpiCard {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    pub detail: String,
    pub delta: Option<String>,
    /// "up", "down" or "flat".
    pub trend: &'static str,
    /// True when the change is in the bad direction (more errors, slower).
    pub worse: bool,
    /// The page with this card's filter applied.
    pub href: Option<String>,
    /// The id of a control to focus instead of a link (a facet select).
    pub focus: Option<&'static str>,
    /// True when the card's filter is the one applied.
    pub active: bool,
}

/// A change against the previous window, as shown under a card.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub text: Option<String>,
    pub trend: &'static str,
}

impl Delta {
    /// No previous window to compare with.
    pub fn none() -> Delta {
        Delta {
            text: None,
            trend: "flat",
        }
    }

    /// The relative change of a count or amount, in percent.
    pub fn pct(cur: f64, prev: f64) -> Delta {
        if prev == 0.0 {
            if cur == 0.0 {
                return Delta {
                    text: Some("no change".into()),
                    trend: "flat",
                };
            }
            return Delta::new_value();
        }
        let pct = (cur - prev) / prev * 100.0;
        let (trend, arrow) = trend(pct, 0.5);
        Delta {
            text: Some(format!("{arrow} {:.0}% vs previous", pct.abs())),
            trend,
        }
    }

    /// The change of a rate (0..1), in percentage points.
    pub fn pts(cur: f64, prev: f64) -> Delta {
        let pts = (cur - prev) * 100.0;
        let (trend, arrow) = trend(pts, 0.05);
        Delta {
            text: Some(format!("{arrow} {:.1} pts vs previous", pts.abs())),
            trend,
        }
    }

    /// A figure the previous window did not have.
    pub fn new_value() -> Delta {
        Delta {
            text: Some("new vs previous window".into()),
            trend: "up",
        }
    }

    /// [`Delta::pct`] when there is a previous value.
    pub fn pct_of(cur: f64, prev: Option<f64>) -> Delta {
        prev.map(|p| Delta::pct(cur, p)).unwrap_or_else(Delta::none)
    }
}

/// The trend of a change and its arrow; changes smaller than `flat` are flat.
fn trend(delta: f64, flat: f64) -> (&'static str, &'static str) {
    if delta.abs() < flat {
        ("flat", "■")
    } else if delta > 0.0 {
        ("up", "▲")
    } else {
        ("down", "▼")
    }
}

impl KpiCard {
    pub fn new(key: &'static str, label: &'static str, value: String) -> KpiCard {
        KpiCard {
            key,
            label,
            value,
            detail: String::new(),
            delta: None,
            trend: "flat",
            worse: false,
            href: None,
            focus: None,
            active: false,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> KpiCard {
        self.detail = detail.into();
        self
    }

    /// The change; `up_is_worse` for figures where growth is bad (errors,
    /// latency, cost).
    pub fn delta(mut self, d: Delta, up_is_worse: bool) -> KpiCard {
        self.delta = d.text;
        self.trend = d.trend;
        self.worse = up_is_worse && d.trend == "up";
        self
    }

    pub fn href(mut self, href: Option<String>) -> KpiCard {
        self.href = href;
        self
    }

    pub fn focus(mut self, id: &'static str) -> KpiCard {
        self.focus = Some(id);
        self
    }

    pub fn active(mut self, active: bool) -> KpiCard {
        self.active = active;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_say_the_direction_and_size_of_the_change() {
        assert_eq!(
            Delta::pct(150.0, 100.0).text.as_deref(),
            Some("▲ 50% vs previous")
        );
        assert_eq!(Delta::pct(0.0, 0.0).trend, "flat");
        assert_eq!(Delta::pct(5.0, 0.0).trend, "up");
        assert_eq!(
            Delta::pts(0.10, 0.12).text.as_deref(),
            Some("▼ 2.0 pts vs previous")
        );
        let c = KpiCard::new("e", "Errors", "1".into()).delta(Delta::pts(0.2, 0.1), true);
        assert!(c.worse);
    }
}
