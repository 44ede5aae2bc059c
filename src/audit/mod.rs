//! What an audit row is, and the one place that classifies result and source
//! (reference §5; SPEC §2). Classification happens once, at write time, into the
//! ENUM columns `result_class` and `source`.

pub mod health;
pub mod panel;
pub mod state;

pub use state::AuditState;

use serde_json::Value;

/// Logged values are cut here (SPEC §4) …
pub const MAX_VALUE_CHARS: usize = 256;
/// … and error messages here.
pub const MAX_ERROR_CHARS: usize = 200;

pub const RESULT_CLASSES: [&str; 5] = ["success", "error", "denied", "none", "other"];
pub const SOURCES: [&str; 7] = [
    "web",
    "cli",
    "agent",
    "scheduler",
    "external",
    "system",
    "other",
];

/// success | error | denied | none | other, from the free-text `result`.
pub fn classify_result(result: Option<&str>) -> &'static str {
    match result {
        None => "none",
        Some("success" | "ok") => "success",
        Some(r) if r.starts_with("error") => "error",
        Some("denied" | "blocked" | "invalid_password" | "deactivated") => "denied",
        Some(_) => "other",
    }
}

/// The source bucket: a known `client_kind` gives its source; any other
/// `client_kind` is kept as given with source `other`; without one, scheduler
/// actions are `scheduler`, rows without a user `system`, the rest `other`.
pub fn classify_source(
    client_kind: Option<&str>,
    action: &str,
    user_id: Option<&str>,
) -> &'static str {
    match client_kind.filter(|k| !k.is_empty()) {
        Some(kind) => SOURCES
            .iter()
            .find(|s| **s == kind)
            .copied()
            .unwrap_or("other"),
        None if is_scheduler_action(action) => "scheduler",
        None if user_id.is_none() => "system",
        None => "other",
    }
}

/// `table:orders` → `table:`; a resource without `:` has no prefix.
pub fn resource_prefix(resource: Option<&str>) -> Option<&str> {
    let r = resource?;
    r.find(':').map(|i| &r[..=i])
}

/// The same rule as SQL (see [`resource_prefix`]).
pub fn resource_prefix_sql(resource: &str) -> String {
    format!("CASE WHEN strpos({resource}, ':') > 0 THEN substr({resource}, 1, strpos({resource}, ':')) END")
}

pub fn is_scheduler_action(action: &str) -> bool {
    action.starts_with("run_")
        || action.starts_with("maintenance.")
        || action == "marketplace.sync_all"
}

/// The same result rule as SQL, for set-based writers (synth, backfills); a
/// test checks it against [`classify_result`] on every sample.
pub fn result_class_sql(result: &str) -> String {
    format!(
        "CASE WHEN {r} IS NULL THEN 'none' WHEN {r} IN ('success', 'ok') THEN 'success' \
         WHEN {r} LIKE 'error%' THEN 'error' \
         WHEN {r} IN ('denied', 'blocked', 'invalid_password', 'deactivated') THEN 'denied' ELSE 'other' END",
        r = result
    )
}

/// The same source rule as SQL (see [`classify_source`]).
pub fn source_sql(client_kind: &str, action: &str, user_id: &str) -> String {
    let known = SOURCES
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CASE WHEN coalesce({k}, '') <> '' THEN (CASE WHEN {k} IN ({known}) THEN {k} ELSE 'other' END) \
         WHEN {a} LIKE 'run\\_%' ESCAPE '\\' OR {a} LIKE 'maintenance.%' OR {a} = 'marketplace.sync_all' THEN 'scheduler' \
         WHEN {u} IS NULL THEN 'system' ELSE 'other' END",
        k = client_kind,
        a = action,
        u = user_id
    )
}

/// One audit row to write. Build with [`AuditEvent::new`] and the setters.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub timestamp: Option<chrono::NaiveDateTime>,
    pub user_id: Option<String>,
    pub action: String,
    pub resource: Option<String>,
    pub params: Option<Value>,
    pub params_before: Option<Value>,
    pub result: Option<String>,
    pub duration_ms: Option<i64>,
    pub client_ip: Option<String>,
    pub client_kind: Option<String>,
    pub correlation_id: Option<String>,
    pub event_id: Option<String>,
}

impl AuditEvent {
    pub fn new(action: impl Into<String>) -> Self {
        AuditEvent {
            action: action.into(),
            ..Default::default()
        }
    }

    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(cut(&resource.into(), MAX_VALUE_CHARS));
        self
    }

    /// glassbox's own params: every string value cut at 256 characters.
    pub fn params(mut self, params: Value) -> Self {
        self.params = Some(cut_strings(params));
        self
    }

    /// The state before a change, cut like [`AuditEvent::params`]; the side
    /// panel shows the diff from it to `params`.
    pub fn params_before(mut self, before: Value) -> Self {
        self.params_before = Some(cut_strings(before));
        self
    }

    pub fn result(mut self, result: impl Into<String>) -> Self {
        self.result = Some(cut(&result.into(), MAX_VALUE_CHARS));
        self
    }

    pub fn success(self) -> Self {
        self.result("success")
    }

    /// `error.<code>` with the message kept in params.error (cut at 200).
    pub fn error(mut self, code: &str, message: &str) -> Self {
        self.result = Some(format!("error.{code}"));
        let mut p = self.params.take().unwrap_or_else(|| serde_json::json!({}));
        if let Some(obj) = p.as_object_mut() {
            obj.insert("error".into(), Value::String(cut(message, MAX_ERROR_CHARS)));
        }
        self.params = Some(p);
        self
    }

    pub fn client_kind(mut self, kind: impl Into<String>) -> Self {
        self.client_kind = Some(kind.into());
        self
    }

    pub fn duration_ms(mut self, ms: i64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    pub fn result_class(&self) -> &'static str {
        classify_result(self.result.as_deref())
    }

    pub fn source(&self) -> &'static str {
        classify_source(
            self.client_kind.as_deref(),
            &self.action,
            self.user_id.as_deref().filter(|u| !u.is_empty()),
        )
    }

    pub fn resource_prefix(&self) -> Option<&str> {
        resource_prefix(self.resource.as_deref())
    }
}

/// The `audit_log.user_key` of a user id: 64 bits of its MD5, exactly as
/// DuckDB's `md5_number_lower` computes it (used by the migration and by
/// set-based writers; a test checks that both agree).
pub fn user_key(user_id: &str) -> u64 {
    use md5::Digest;
    let digest = md5::Md5::digest(user_id.as_bytes());
    // DuckDB reads the digest's second half as a little-endian integer.
    let mut low = [0u8; 8];
    low.copy_from_slice(&digest[8..]);
    u64::from_le_bytes(low)
}

/// Cuts to at most `max` characters (Unicode scalar values), marking the cut.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((idx, _)) => {
            let keep = s[..idx]
                .char_indices()
                .nth(max - 1)
                .map(|(i, _)| i)
                .unwrap_or(idx);
            format!("{}…", &s[..keep])
        }
    }
}

fn cut_strings(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(cut(&s, MAX_VALUE_CHARS)),
        Value::Array(a) => Value::Array(a.into_iter().map(cut_strings).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, cut_strings(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_maps_to_its_class() {
        assert_eq!(classify_result(None), "none");
        assert_eq!(classify_result(Some("success")), "success");
        assert_eq!(classify_result(Some("ok")), "success");
        assert_eq!(classify_result(Some("error")), "error");
        assert_eq!(classify_result(Some("error.400")), "error");
        for d in ["denied", "blocked", "invalid_password", "deactivated"] {
            assert_eq!(classify_result(Some(d)), "denied");
        }
        assert_eq!(classify_result(Some("partial")), "other");
        assert_eq!(classify_result(Some("Error")), "other");
    }

    #[test]
    fn source_buckets_follow_client_kind_then_the_scheduler_rule_then_the_user() {
        assert_eq!(classify_source(Some("cli"), "table.read", Some("u")), "cli");
        assert_eq!(classify_source(Some("web"), "run_x", None), "web");
        assert_eq!(classify_source(Some("mcp-bridge"), "x", Some("u")), "other");
        assert_eq!(
            classify_source(None, "run_session_processor:usage", None),
            "scheduler"
        );
        assert_eq!(
            classify_source(None, "maintenance.prune", Some("u")),
            "scheduler"
        );
        assert_eq!(
            classify_source(None, "marketplace.sync_all", None),
            "scheduler"
        );
        assert_eq!(classify_source(Some(""), "auth.login", None), "system");
        assert_eq!(classify_source(None, "auth.login", Some("u")), "other");
    }

    #[test]
    fn logged_values_are_cut_at_256_and_errors_at_200() {
        let long = "é".repeat(300);
        let e = AuditEvent::new("x")
            .resource(long.clone())
            .params(serde_json::json!({"a": long, "n": [long]}))
            .params_before(serde_json::json!({"a": long}))
            .error("500", &"x".repeat(500));
        assert_eq!(e.resource.as_ref().unwrap().chars().count(), 256);
        let before = e.params_before.as_ref().unwrap();
        assert_eq!(before["a"].as_str().unwrap().chars().count(), 256);
        let p = e.params.unwrap();
        assert_eq!(p["a"].as_str().unwrap().chars().count(), 256);
        assert_eq!(p["n"][0].as_str().unwrap().chars().count(), 256);
        assert_eq!(p["error"].as_str().unwrap().chars().count(), 200);
        assert_eq!(cut("short", 256), "short");
    }
    #[test]
    fn the_sql_rules_equal_the_rust_rules() {
        let db = crate::db::Db::open_in_memory().unwrap();
        let c = db.connect().unwrap();
        let results = [
            None,
            Some("success"),
            Some("ok"),
            Some("error"),
            Some("error.500"),
            Some("denied"),
            Some("blocked"),
            Some("invalid_password"),
            Some("deactivated"),
            Some("partial"),
            Some(""),
        ];
        for r in results {
            let sql = format!("SELECT {}", result_class_sql("?"));
            let got: String = c
                .query_row(&sql.replace('?', "$1"), [r], |row| row.get(0))
                .unwrap();
            assert_eq!(got, classify_result(r), "{r:?}");
        }
        let cases = [
            (Some("cli"), "x", Some("u")),
            (Some("weird"), "x", None),
            (None, "run_x", None),
            (None, "runway", Some("u")),
            (None, "maintenance.prune", Some("u")),
            (None, "marketplace.sync_all", None),
            (None, "auth.login", None),
            (None, "auth.login", Some("u")),
            (Some(""), "x", None),
        ];
        for r in [
            None,
            Some("table:orders"),
            Some("plain"),
            Some(":x"),
            Some("a:b:c"),
            Some("é:ü"),
        ] {
            let got: Option<String> = c
                .query_row(
                    &format!("SELECT {}", resource_prefix_sql("$1")),
                    [r],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(got.as_deref(), resource_prefix(r), "{r:?}");
        }
        for (k, a, u) in cases {
            let sql = format!("SELECT {}", source_sql("$1", "$2", "$3"));
            let got: String = c
                .query_row(&sql, duckdb::params![k, a, u], |row| row.get(0))
                .unwrap();
            assert_eq!(got, classify_source(k, a, u), "{k:?} {a} {u:?}");
        }
    }
}
