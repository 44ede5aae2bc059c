//! Model prices (dollars per million tokens) and the cost of a response.
//!
//! An embedded table covers the Claude 4.x families (SPEC §3); the JSON file
//! named by `GLASSBOX_PRICES_FILE` overrides or extends it:
//! `{"claude-opus-4": {"input": 5, "output": 25, "cache_write_5m": 6.25,
//!   "cache_write_1h": 10, "cache_read": 0.5}, …}`. A model matches the longest
//! key it starts with; an unknown model costs 0 and is reported.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::transcript::Response;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub cache_read: f64,
}

#[derive(Debug, Clone)]
pub struct Prices {
    /// Longest keys first, so the first prefix match is the most specific.
    table: Vec<(String, Price)>,
}

const fn p(input: f64, output: f64, w5: f64, w1: f64, read: f64) -> Price {
    Price {
        input,
        output,
        cache_write_5m: w5,
        cache_write_1h: w1,
        cache_read: read,
    }
}

const EMBEDDED: &[(&str, Price)] = &[
    ("claude-opus-4", p(5.0, 25.0, 6.25, 10.0, 0.50)),
    ("claude-sonnet-4", p(3.0, 15.0, 3.75, 6.0, 0.30)),
    ("claude-haiku-4", p(1.0, 5.0, 1.25, 2.0, 0.10)),
];

impl Default for Prices {
    fn default() -> Self {
        Prices::from_map(EMBEDDED.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }
}

impl Prices {
    fn from_map(map: BTreeMap<String, Price>) -> Self {
        let mut table: Vec<(String, Price)> = map.into_iter().collect();
        table.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Prices { table }
    }

    /// The embedded table with the file's entries laid over it.
    pub fn load(overrides: Option<&Path>) -> anyhow::Result<Prices> {
        let mut map: BTreeMap<String, Price> =
            EMBEDDED.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        if let Some(path) = overrides {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("GLASSBOX_PRICES_FILE: cannot read {}", path.display()))?;
            let extra: BTreeMap<String, Price> =
                serde_json::from_str(&text).with_context(|| {
                    format!(
                        "GLASSBOX_PRICES_FILE: {} is not a price table",
                        path.display()
                    )
                })?;
            map.extend(extra);
        }
        Ok(Prices::from_map(map))
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        self.table
            .iter()
            .find(|(k, _)| model.starts_with(k.as_str()))
            .map(|(_, p)| *p)
    }

    /// The response's cost in dollars, or `None` for an unknown model.
    pub fn cost(&self, r: &Response) -> Option<f64> {
        let p = self.price(&r.model)?;
        let m = 1_000_000.0;
        Some(
            (r.input as f64 * p.input
                + r.output as f64 * p.output
                + r.cache_5m as f64 * p.cache_write_5m
                + r.cache_1h as f64 * p.cache_write_1h
                + r.cache_read as f64 * p.cache_read)
                / m,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(model: &str) -> Response {
        Response {
            message_id: "m".into(),
            request_id: "r".into(),
            model: model.into(),
            first_ts_ms: Some(0),
            input: 1_000_000,
            output: 1_000_000,
            cache_creation: 2_000_000,
            cache_read: 1_000_000,
            cache_5m: 1_000_000,
            cache_1h: 1_000_000,
            is_sidechain: false,
            line_index: 0,
        }
    }

    #[test]
    fn costs_follow_the_family_table_and_unknown_models_cost_nothing() {
        let prices = Prices::default();
        let opus = prices.cost(&resp("claude-opus-4-7")).unwrap();
        assert!((opus - (5.0 + 25.0 + 6.25 + 10.0 + 0.5)).abs() < 1e-9);
        let haiku = prices.cost(&resp("claude-haiku-4-5-20251001")).unwrap();
        assert!((haiku - (1.0 + 5.0 + 1.25 + 2.0 + 0.1)).abs() < 1e-9);
        assert_eq!(prices.cost(&resp("gpt-5")), None);
    }

    #[test]
    fn a_prices_file_overrides_and_extends_with_the_longest_prefix_winning() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("prices.json");
        std::fs::write(
            &f,
            r#"{"claude-opus-4-7": {"input": 1, "output": 1, "cache_write_5m": 1, "cache_write_1h": 1, "cache_read": 1},
                "local-model": {"input": 0, "output": 0, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 0}}"#,
        )
        .unwrap();
        let prices = Prices::load(Some(&f)).unwrap();
        assert!((prices.cost(&resp("claude-opus-4-7")).unwrap() - 5.0).abs() < 1e-9);
        assert!((prices.cost(&resp("claude-opus-4-5")).unwrap() - 46.75).abs() < 1e-9);
        assert_eq!(prices.cost(&resp("local-model-x")), Some(0.0));
        std::fs::write(&f, "{not json").unwrap();
        assert!(Prices::load(Some(&f))
            .unwrap_err()
            .to_string()
            .contains("GLASSBOX_PRICES_FILE"));
    }
}
