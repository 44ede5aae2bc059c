//! Configuration from the environment (SPEC §1). Every problem is reported as one
//! line naming the variable, and start-up stops with exit 1.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;

/// Everything glassbox reads from its environment, validated once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub session_data_dir: PathBuf,
    pub cookie_secure: bool,
    pub trusted_proxies: Vec<IpNet>,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub jwt_secret: Option<String>,
    pub upload_max_mb: u64,
    /// Input per ingest transaction (group commit), in MB.
    pub ingest_batch_mb: u64,
    /// A first backfill is one transaction (GLASSBOX_INGEST_BATCH_MB unset);
    /// set, the batch size holds for it too (the durability check's kills
    /// need commits to land between).
    pub ingest_one_batch_backfill: bool,
    pub duckdb_memory_limit: String,
    /// DuckDB's memory limit in the one-shot `glassbox ingest` process
    /// (rows beyond it wait in `<db>.tmp` for the checkpoint).
    pub ingest_memory_limit: String,
    pub duckdb_threads: usize,
    pub usage_events_retention_days: u32,
    pub audit_retention_days: u32,
    pub usage_processor_cron: String,
    pub prices_file: Option<PathBuf>,
    pub anthropic_api_key: Option<String>,
    pub anthropic_base_url: String,
    pub usage_ask_model: String,
    /// How long Ask's and `/api/query`'s SQL may run before it is interrupted.
    pub query_timeout_secs: u64,
    pub telegram_bot_token: Option<String>,
    pub telegram_api_base: Option<String>,
    /// The server's address as people reach it (links in Telegram messages).
    pub public_url: Option<String>,
    pub posthog_api_key: Option<String>,
    pub posthog_host: Option<String>,
    pub log_format: LogFormat,
    /// Usage events the intake queue holds before answering 503 (USAGE_QUEUE_CAPACITY).
    pub usage_queue_capacity: usize,
    /// The usage summaries' default window in days (USAGE_RETENTION_DAYS).
    pub usage_retention_days: u32,
    /// `app_events` older than this are pruned daily; 0 keeps them (APP_EVENTS_RETENTION_DAYS).
    pub app_events_retention_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration problem: the variable and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn bad(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Reads variables through a lookup function so tests need not touch the process env.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn parse<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| bad(var, format!("expected {what}, got {v:?}"))),
        }
    }
}

impl Config {
    /// Reads the real process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let data_dir = PathBuf::from(
            env.get("GLASSBOX_DATA_DIR")
                .unwrap_or_else(|| "./data".into()),
        );
        let bind: SocketAddr = env.parse(
            "GLASSBOX_BIND",
            "127.0.0.1:8080".parse().expect("valid default address"),
            "an address like 127.0.0.1:8080",
        )?;
        let session_data_dir = env
            .get("SESSION_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("user_sessions"));
        let cookie_secure = match env.get("GLASSBOX_COOKIE_SECURE") {
            None => !bind.ip().is_loopback(),
            Some(v) => parse_bool(&v).ok_or_else(|| {
                bad(
                    "GLASSBOX_COOKIE_SECURE",
                    format!("expected true or false, got {v:?}"),
                )
            })?,
        };
        let trusted_proxies = match env.get("GLASSBOX_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            bad(
                                "GLASSBOX_TRUSTED_PROXIES",
                                format!("{s:?} is not a CIDR like 10.0.0.0/8"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let admin_email = env.get("GLASSBOX_ADMIN_EMAIL");
        let admin_password = env.get("GLASSBOX_ADMIN_PASSWORD");
        if admin_email.is_some() != admin_password.is_some() {
            let var = if admin_email.is_some() {
                "GLASSBOX_ADMIN_PASSWORD"
            } else {
                "GLASSBOX_ADMIN_EMAIL"
            };
            return Err(bad(
                var,
                "GLASSBOX_ADMIN_EMAIL and GLASSBOX_ADMIN_PASSWORD must be set together",
            ));
        }
        if let Some(e) = &admin_email {
            if !crate::auth::valid_email(e) {
                return Err(bad(
                    "GLASSBOX_ADMIN_EMAIL",
                    format!("{e:?} is not an email address"),
                ));
            }
        }
        if let Some(p) = &admin_password {
            if p.chars().count() < crate::auth::MIN_PASSWORD_LEN {
                return Err(bad(
                    "GLASSBOX_ADMIN_PASSWORD",
                    format!(
                        "must be at least {} characters",
                        crate::auth::MIN_PASSWORD_LEN
                    ),
                ));
            }
        }
        let jwt_secret = env.get("GLASSBOX_JWT_SECRET");
        if let Some(s) = &jwt_secret {
            if s.len() < 32 {
                return Err(bad("GLASSBOX_JWT_SECRET", "must be at least 32 characters"));
            }
        }
        let upload_max_mb: u64 =
            env.parse("GLASSBOX_UPLOAD_MAX_MB", 512, "a whole number of megabytes")?;
        if upload_max_mb == 0 {
            return Err(bad("GLASSBOX_UPLOAD_MAX_MB", "must be at least 1"));
        }
        let ingest_one_batch_backfill = env.get("GLASSBOX_INGEST_BATCH_MB").is_none();
        let ingest_batch_mb: u64 = env.parse(
            "GLASSBOX_INGEST_BATCH_MB",
            256,
            "a whole number of megabytes",
        )?;
        if ingest_batch_mb == 0 {
            return Err(bad("GLASSBOX_INGEST_BATCH_MB", "must be at least 1"));
        }
        let duckdb_memory_limit = env
            .get("GLASSBOX_DUCKDB_MEMORY_LIMIT")
            .unwrap_or_else(|| "2GB".into());
        if !valid_memory_limit(&duckdb_memory_limit) {
            return Err(bad(
                "GLASSBOX_DUCKDB_MEMORY_LIMIT",
                format!("expected a size like 2GB or 512MB, got {duckdb_memory_limit:?}"),
            ));
        }
        let ingest_memory_limit = env
            .get("GLASSBOX_INGEST_MEMORY_LIMIT")
            // 128 MB: the backfill's rows, kept until its commit now that it is one
            // transaction, spill less (peak ~200 MiB on the 1 GB bench corpus,
            // docs/performance.md).
            .unwrap_or_else(|| "128MB".into());
        if !valid_memory_limit(&ingest_memory_limit) {
            return Err(bad(
                "GLASSBOX_INGEST_MEMORY_LIMIT",
                format!("expected a size like 64MB or 1GB, got {ingest_memory_limit:?}"),
            ));
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let duckdb_threads: usize = env.parse(
            "GLASSBOX_DUCKDB_THREADS",
            cores,
            "a whole number of threads",
        )?;
        if duckdb_threads == 0 {
            return Err(bad("GLASSBOX_DUCKDB_THREADS", "must be at least 1"));
        }
        let usage_processor_cron = env
            .get("USAGE_PROCESSOR_CRON")
            .unwrap_or_else(|| "0 */10 * * * *".into());
        if usage_processor_cron.split_whitespace().count() != 6 {
            return Err(bad(
                "USAGE_PROCESSOR_CRON",
                format!("expected 6 fields, seconds first (like \"0 */10 * * * *\"), got {usage_processor_cron:?}"),
            ));
        }
        let query_timeout_secs: u64 = env.parse(
            "GLASSBOX_QUERY_TIMEOUT_SECS",
            30,
            "a whole number of seconds",
        )?;
        if query_timeout_secs == 0 {
            return Err(bad("GLASSBOX_QUERY_TIMEOUT_SECS", "must be at least 1"));
        }
        let log_format = match env.get("GLASSBOX_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "GLASSBOX_LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ))
            }
        };
        let usage_queue_capacity: usize =
            env.parse("USAGE_QUEUE_CAPACITY", 50_000, "a whole number of events")?;
        if usage_queue_capacity == 0 {
            return Err(bad("USAGE_QUEUE_CAPACITY", "must be at least 1"));
        }
        let usage_retention_days: u32 =
            env.parse("USAGE_RETENTION_DAYS", 30, "a whole number of days")?;
        if !(1..=365).contains(&usage_retention_days) {
            return Err(bad("USAGE_RETENTION_DAYS", "must be between 1 and 365"));
        }
        Ok(Config {
            usage_queue_capacity,
            usage_retention_days,
            app_events_retention_days: env.parse(
                "APP_EVENTS_RETENTION_DAYS",
                0,
                "a whole number of days",
            )?,
            data_dir,
            bind,
            session_data_dir,
            cookie_secure,
            trusted_proxies,
            admin_email,
            admin_password,
            jwt_secret,
            upload_max_mb,
            ingest_batch_mb,
            ingest_one_batch_backfill,
            duckdb_memory_limit,
            ingest_memory_limit,
            duckdb_threads,
            usage_events_retention_days: env.parse(
                "USAGE_EVENTS_RETENTION_DAYS",
                0,
                "a whole number of days",
            )?,
            audit_retention_days: env.parse("AUDIT_RETENTION_DAYS", 0, "a whole number of days")?,
            usage_processor_cron,
            prices_file: env.get("GLASSBOX_PRICES_FILE").map(PathBuf::from),
            anthropic_api_key: env.get("ANTHROPIC_API_KEY"),
            anthropic_base_url: env
                .get("ANTHROPIC_BASE_URL")
                .unwrap_or_else(|| "https://api.anthropic.com".into()),
            usage_ask_model: env
                .get("USAGE_ASK_MODEL")
                .unwrap_or_else(|| "claude-haiku-4-5-20251001".into()),
            query_timeout_secs,
            telegram_bot_token: env.get("TELEGRAM_BOT_TOKEN"),
            telegram_api_base: env.get("TELEGRAM_API_BASE"),
            public_url: env
                .get("GLASSBOX_PUBLIC_URL")
                .map(|u| u.trim_end_matches('/').to_string()),
            posthog_api_key: env.get("POSTHOG_API_KEY"),
            posthog_host: env.get("POSTHOG_HOST"),
            log_format,
        })
    }

    /// Where the DuckDB file lives.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("glassbox.duckdb")
    }

    /// A configuration for tests and tools: everything default, data under `dir`.
    pub fn for_data_dir(dir: impl Into<PathBuf>) -> Self {
        let dir: PathBuf = dir.into();
        let dir_s = dir.to_string_lossy().into_owned();
        Self::from_lookup(move |k| (k == "GLASSBOX_DATA_DIR").then(|| dir_s.clone()))
            .expect("the default configuration is valid")
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// DuckDB accepts sizes such as `2GB`, `512MB`, `1.5GiB`; anything else would be
/// rejected later with a less helpful message, so check the shape here.
fn valid_memory_limit(v: &str) -> bool {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    !num.is_empty()
        && num.parse::<f64>().is_ok()
        && matches!(
            unit.trim().to_ascii_uppercase().as_str(),
            "KB" | "MB" | "GB" | "TB" | "KIB" | "MIB" | "GIB" | "TIB" | "B" | "BYTES"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_are_valid_and_loopback_cookies_are_not_secure() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert!(!c.cookie_secure);
        assert_eq!(c.upload_max_mb, 512);
        assert_eq!(c.session_data_dir, PathBuf::from("./data/user_sessions"));
    }

    #[test]
    fn public_binds_get_secure_cookies() {
        assert!(
            cfg(&[("GLASSBOX_BIND", "0.0.0.0:80")])
                .unwrap()
                .cookie_secure
        );
    }

    #[test]
    fn each_bad_variable_is_named_in_the_error() {
        for (var, value) in [
            ("GLASSBOX_BIND", "nowhere"),
            ("GLASSBOX_UPLOAD_MAX_MB", "lots"),
            ("GLASSBOX_DUCKDB_MEMORY_LIMIT", "plenty"),
            ("GLASSBOX_DUCKDB_THREADS", "0"),
            ("USAGE_PROCESSOR_CRON", "*/10 * * * *"),
            ("GLASSBOX_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("GLASSBOX_COOKIE_SECURE", "maybe"),
            ("GLASSBOX_LOG_FORMAT", "xml"),
            ("GLASSBOX_JWT_SECRET", "short"),
            ("AUDIT_RETENTION_DAYS", "-1"),
            ("USAGE_QUEUE_CAPACITY", "0"),
            ("USAGE_RETENTION_DAYS", "400"),
            ("APP_EVENTS_RETENTION_DAYS", "soon"),
            ("GLASSBOX_QUERY_TIMEOUT_SECS", "0"),
        ] {
            let err = cfg(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().starts_with(var));
        }
    }

    #[test]
    fn admin_email_and_password_come_together() {
        let err = cfg(&[("GLASSBOX_ADMIN_EMAIL", "a@example.com")]).unwrap_err();
        assert_eq!(err.var, "GLASSBOX_ADMIN_PASSWORD");
        assert!(cfg(&[
            ("GLASSBOX_ADMIN_EMAIL", "a@example.com"),
            ("GLASSBOX_ADMIN_PASSWORD", "long-enough-pw")
        ])
        .is_ok());
    }
}
