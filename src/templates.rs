//! minijinja templates, embedded in release builds and read from disk in debug
//! builds (rust-embed does both). One template per page; its swappable regions are
//! `{% block %}`s, and an htmx request gets just the block it asked for.

use std::sync::Arc;

use axum::response::Html;
use minijinja::{Environment, UndefinedBehavior, Value};
use rust_embed::RustEmbed;

use crate::error::{AppError, AppResult};

#[derive(RustEmbed)]
#[folder = "templates/"]
struct TemplateFiles;

#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_loader(|name| {
            Ok(TemplateFiles::get(name).map(|f| String::from_utf8_lossy(&f.data).into_owned()))
        });
        // Undefined variables are errors in debug builds and tests, so a typo fails
        // loudly instead of rendering an empty cell.
        if cfg!(debug_assertions) {
            env.set_undefined_behavior(UndefinedBehavior::Strict);
        } else {
            env.set_undefined_behavior(UndefinedBehavior::Chainable);
        }
        env.add_filter("dt", filters::datetime);
        env.add_filter("ago", filters::ago);
        env.add_filter("thousands", filters::thousands);
        env.add_filter("tokens", filters::tokens);
        env.add_global("app_version", env!("CARGO_PKG_VERSION"));
        Templates { env: Arc::new(env) }
    }

    /// The whole page.
    pub fn page(&self, name: &str, ctx: Value) -> AppResult<Html<String>> {
        let tmpl = self.env.get_template(name).map_err(render_error)?;
        tmpl.render(ctx).map(Html).map_err(render_error)
    }

    /// One `{% block %}` of a page, rendered with the page's full context.
    pub fn block(&self, name: &str, block: &str, ctx: Value) -> AppResult<Html<String>> {
        let tmpl = self.env.get_template(name).map_err(render_error)?;
        let mut captured = tmpl.render_captured(ctx).map_err(render_error)?;
        captured
            .with_state_mut(|s| s.render_block(block))
            .map(Html)
            .map_err(render_error)
    }

    /// The block for htmx requests, the page otherwise.
    pub fn page_or_block(
        &self,
        htmx: bool,
        name: &str,
        block: &str,
        ctx: Value,
    ) -> AppResult<Html<String>> {
        if htmx {
            self.block(name, block, ctx)
        } else {
            self.page(name, ctx)
        }
    }
}

/// 1234567 → "1,234,567" (the `thousands` filter).
pub fn thousands(n: i64) -> String {
    filters::thousands(n.into())
}

/// A token count as people read it: "1.2 M", "45 k", "9,876".
pub fn compact_tokens(n: i64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.0} k", n as f64 / 1e3),
        n => thousands(n),
    }
}

/// Any serializable value as a template value.
pub fn ser<T: serde::Serialize>(v: &T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

fn render_error(e: minijinja::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("template error: {e:#}"))
}

mod filters {
    use chrono::{NaiveDateTime, Utc};
    use minijinja::Value;

    fn parse(v: &Value) -> Option<NaiveDateTime> {
        // `isotime::format` ends in `Z`; naive strings do not.
        let s = v.as_str()?.trim_end_matches('Z');
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .ok()
    }

    /// An ISO 8601 UTC string for `<time datetime>`; the browser shows it local.
    pub fn datetime(v: Value) -> String {
        match parse(&v) {
            Some(t) => t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None => String::new(),
        }
    }

    /// "3m ago", "2h ago", "5d ago", or "never".
    pub fn ago(v: Value) -> String {
        let Some(t) = parse(&v) else {
            return "never".into();
        };
        let secs = (Utc::now().naive_utc() - t).num_seconds().max(0);
        match secs {
            s if s < 60 => format!("{s}s ago"),
            s if s < 3600 => format!("{}m ago", s / 60),
            s if s < 86_400 => format!("{}h ago", s / 3600),
            s => format!("{}d ago", s / 86_400),
        }
    }

    /// 1234567 → "1,234,567".
    pub fn thousands(v: Value) -> String {
        let Some(n) = i64::try_from(v.clone()).ok() else {
            return v.to_string();
        };
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 {
            format!("-{out}")
        } else {
            out
        }
    }

    /// The `tokens` filter: `{{ n | tokens }}` → "1.2 M".
    pub fn tokens(v: Value) -> String {
        match i64::try_from(v.clone()) {
            Ok(n) => super::compact_tokens(n),
            Err(_) => v.to_string(),
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn tokens_are_compact() {
            assert_eq!(super::tokens(1_234_567.into()), "1.2 M");
            assert_eq!(super::tokens(45_300.into()), "45 k");
            assert_eq!(super::tokens(9_876.into()), "9,876");
        }

        #[test]
        fn thousands_groups_digits() {
            assert_eq!(super::thousands(1234567.into()), "1,234,567");
            assert_eq!(super::thousands((-1000).into()), "-1,000");
            assert_eq!(super::thousands(12.into()), "12");
        }
    }
}
