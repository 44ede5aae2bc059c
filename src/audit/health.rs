//! The health pulse (SPEC §4, reference §5): its inputs turned into coloured
//! fields, the processors it watches, disk space.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::{json, Value};

use crate::repo::audit::{HealthInputs, ProcessorRun};

/// The health pulse is recomputed at most this often, for all admins.
pub const HEALTH_TTL: Duration = Duration::from_secs(30);

/// The processors whose last runs the health pulse shows, and their audit actions.
pub const PROCESSORS: [(&str, &str); 2] = [
    ("usage", "run_session_processor:usage"),
    ("failure_scan", "run_session_processor:failure_scan"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Green,
    Yellow,
    Red,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthField {
    pub key: &'static str,
    pub value: String,
    pub raw: Value,
    pub color: Color,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub status: Color,
    pub fields: Vec<HealthField>,
    pub sentence: String,
}

/// The database file and the disk it lives on.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DiskInfo {
    pub db_bytes: Option<u64>,
    pub wal_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
}

/// Sizes of the database file (and its WAL) and the free space of its file system.
pub fn disk_info(db_path: Option<&Path>) -> DiskInfo {
    let Some(path) = db_path else {
        return DiskInfo::default();
    };
    let size = |p: &Path| std::fs::metadata(p).ok().map(|m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push(".wal");
    let (free_bytes, total_bytes) = free_space(path.parent().unwrap_or(path));
    DiskInfo {
        db_bytes: size(path),
        wal_bytes: size(Path::new(&wal)),
        free_bytes,
        total_bytes,
    }
}

#[cfg(unix)]
fn free_space(dir: &Path) -> (Option<u64>, Option<u64>) {
    match rustix::fs::statvfs(dir) {
        Ok(s) => (
            Some(s.f_bavail.saturating_mul(s.f_frsize)),
            Some(s.f_blocks.saturating_mul(s.f_frsize)),
        ),
        Err(_) => (None, None),
    }
}

#[cfg(not(unix))]
fn free_space(_dir: &Path) -> (Option<u64>, Option<u64>) {
    (None, None)
}

/// The interval of a 6-field cron (seconds first), read from its simple
/// shapes: `*/N` seconds or minutes, a fixed minute every hour or every `*/H`
/// hours, a fixed time daily. Anything else counts as 10 minutes (the default
/// schedule).
pub fn cron_interval(cron: &str) -> Duration {
    const DEFAULT: Duration = Duration::from_secs(600);
    let f: Vec<&str> = cron.split_whitespace().collect();
    if f.len() != 6 {
        return DEFAULT;
    }
    let step = |s: &str| {
        s.strip_prefix("*/")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n > 0)
    };
    let fixed = |s: &str| s.parse::<u64>().is_ok();
    let (sec, min, hour) = (f[0], f[1], f[2]);
    let daily_fields = f[3] == "*" && f[4] == "*" && (f[5] == "*" || f[5] == "?");
    if !daily_fields {
        return DEFAULT;
    }
    if let Some(n) = step(sec) {
        if min == "*" && hour == "*" {
            return Duration::from_secs(n);
        }
    }
    if !fixed(sec) {
        return DEFAULT;
    }
    if let Some(n) = step(min) {
        if hour == "*" {
            return Duration::from_secs(n * 60);
        }
    }
    if fixed(min) {
        if hour == "*" {
            return Duration::from_secs(3600);
        }
        if let Some(h) = step(hour) {
            return Duration::from_secs(h * 3600);
        }
        if fixed(hour) {
            return Duration::from_secs(86_400);
        }
    }
    DEFAULT
}

/// `45s ago`, `12m ago`, `3h ago`, `2d ago`.
pub fn ago(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s}s ago")
    } else if s < 3600 {
        format!("{}m ago", s / 60)
    } else if s < 86_400 {
        format!("{}h ago", s / 3600)
    } else {
        format!("{}d ago", s / 86_400)
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Builds the six fields, the overall status and the sentence.
pub fn build_report(
    inputs: &HealthInputs,
    disk: &DiskInfo,
    now: NaiveDateTime,
    processor_interval: Duration,
) -> HealthReport {
    let age = |t: NaiveDateTime| (now - t).num_seconds().max(0);

    let scheduler = match inputs.last_scheduler {
        None => HealthField {
            key: "scheduler",
            value: "never".into(),
            raw: Value::Null,
            color: Color::Yellow,
        },
        Some(t) => {
            let a = age(t);
            HealthField {
                key: "scheduler",
                value: ago(a),
                raw: json!(a),
                color: if a > 7200 {
                    Color::Red
                } else if a > 1800 {
                    Color::Yellow
                } else {
                    Color::Green
                },
            }
        }
    };

    let (ok, fail) = (inputs.sync_ok, inputs.sync_fail);
    let total = ok + fail;
    let sync = HealthField {
        key: "sync_24h",
        value: format!("{ok} ok / {fail} fail"),
        raw: json!({"ok": ok, "fail": fail}),
        color: if total == 0 {
            Color::Yellow
        } else if fail == 0 {
            Color::Green
        } else if ok as f64 / total as f64 >= 0.95 {
            Color::Yellow
        } else {
            Color::Red
        },
    };

    let users = HealthField {
        key: "active_users_today",
        value: inputs.active_users_today.to_string(),
        raw: json!(inputs.active_users_today),
        color: Color::Green,
    };

    let gap = (inputs.uploads_24h - inputs.ingested_24h).max(0);
    let ingest = HealthField {
        key: "session_ingest",
        value: format!(
            "{} up / {} ingested",
            inputs.uploads_24h, inputs.ingested_24h
        ),
        raw: json!(gap),
        color: if gap == 0 {
            Color::Green
        } else {
            Color::Yellow
        },
    };

    let late_after = (processor_interval.as_secs() as i64).saturating_mul(3);
    let mut parts = Vec::new();
    let mut raw = serde_json::Map::new();
    let mut color = Color::Green;
    for (name, action) in PROCESSORS {
        let run: Option<&ProcessorRun> = inputs.processors.iter().find(|r| r.action == action);
        match run {
            None => {
                parts.push(format!("{name} never ran"));
                raw.insert(name.into(), Value::Null);
                color = color.max(Color::Yellow);
            }
            Some(r) => {
                let a = age(r.at);
                let failed = r.result_class == "error";
                let late = a > late_after;
                if failed || late {
                    color = color.max(Color::Yellow);
                }
                let what = match r.result_class.as_str() {
                    "success" => "ok",
                    "error" => "failed",
                    _ => r.result.as_deref().unwrap_or("no result"),
                };
                parts.push(format!(
                    "{name} {what} {}{}",
                    ago(a),
                    if late { " (late)" } else { "" }
                ));
                raw.insert(
                    name.into(),
                    json!({
                        "last_run": crate::isotime::format(&r.at),
                        "result": r.result,
                        "result_class": r.result_class,
                        "age_seconds": a,
                        "late": late,
                    }),
                );
            }
        }
    }
    raw.insert(
        "interval_seconds".into(),
        json!(processor_interval.as_secs()),
    );
    let processors = HealthField {
        key: "processors",
        value: parts.join(", "),
        raw: Value::Object(raw),
        color,
    };

    let database = match disk.db_bytes {
        None => HealthField {
            key: "database",
            value: "in memory".into(),
            raw: Value::Null,
            color: Color::Green,
        },
        Some(bytes) => {
            let size = bytes + disk.wal_bytes.unwrap_or(0);
            let free_ratio = match (disk.free_bytes, disk.total_bytes) {
                (Some(f), Some(t)) if t > 0 => Some(f as f64 / t as f64),
                _ => None,
            };
            let value = match free_ratio {
                Some(r) => format!(
                    "{}, {:.0}% disk free",
                    human_bytes(size),
                    (r * 100.0).floor()
                ),
                None => human_bytes(size),
            };
            HealthField {
                key: "database",
                value,
                raw: json!({
                    "bytes": bytes,
                    "wal_bytes": disk.wal_bytes,
                    "free_bytes": disk.free_bytes,
                    "total_bytes": disk.total_bytes,
                    "free_ratio": free_ratio.map(crate::repo::audit::round4),
                }),
                color: if free_ratio.is_some_and(|r| r < 0.10) {
                    Color::Yellow
                } else {
                    Color::Green
                },
            }
        }
    };

    let fields = vec![scheduler, sync, users, ingest, processors, database];
    let status = fields.iter().map(|f| f.color).max().unwrap_or(Color::Green);
    let sentence = if status == Color::Green {
        format!(
            "All systems nominal — {} active users, last scheduler tick {}, {} in 24h.",
            fields[2].value, fields[0].value, fields[1].value
        )
    } else {
        let bad: Vec<&str> = fields
            .iter()
            .filter(|f| f.color != Color::Green)
            .map(|f| f.key)
            .collect();
        format!(
            "Degraded: {}. Investigate Activity timeline filtered to these subsystems.",
            bad.join(", ")
        )
    };
    HealthReport {
        status,
        fields,
        sentence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as Chrono;

    fn now() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 5, 14)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
    }

    fn healthy(now: NaiveDateTime) -> HealthInputs {
        HealthInputs {
            last_scheduler: Some(now - Chrono::minutes(5)),
            sync_ok: 40,
            sync_fail: 0,
            active_users_today: 7,
            uploads_24h: 3,
            ingested_24h: 3,
            processors: PROCESSORS
                .iter()
                .map(|(_, action)| ProcessorRun {
                    action: action.to_string(),
                    at: now - Chrono::minutes(4),
                    result_class: "success".into(),
                    result: Some("success".into()),
                })
                .collect(),
        }
    }

    fn disk() -> DiskInfo {
        DiskInfo {
            db_bytes: Some(12 << 20),
            wal_bytes: Some(0),
            free_bytes: Some(50 << 30),
            total_bytes: Some(100 << 30),
        }
    }

    fn field<'a>(r: &'a HealthReport, key: &str) -> &'a HealthField {
        r.fields.iter().find(|f| f.key == key).unwrap()
    }

    #[test]
    fn a_healthy_system_is_green_with_the_nominal_sentence() {
        let r = build_report(&healthy(now()), &disk(), now(), Duration::from_secs(600));
        let keys: Vec<_> = r.fields.iter().map(|f| f.key).collect();
        assert_eq!(
            keys,
            [
                "scheduler",
                "sync_24h",
                "active_users_today",
                "session_ingest",
                "processors",
                "database"
            ]
        );
        assert_eq!(r.status, Color::Green, "{r:?}");
        assert_eq!(
            r.sentence,
            "All systems nominal — 7 active users, last scheduler tick 5m ago, 40 ok / 0 fail in 24h."
        );
        assert_eq!(field(&r, "database").value, "12.0 MB, 50% disk free");
    }

    #[test]
    fn scheduler_age_turns_yellow_after_30_minutes_and_red_after_2_hours() {
        for (mins, color) in [
            (29, Color::Green),
            (31, Color::Yellow),
            (119, Color::Yellow),
            (121, Color::Red),
        ] {
            let mut i = healthy(now());
            i.last_scheduler = Some(now() - Chrono::minutes(mins));
            let r = build_report(&i, &disk(), now(), Duration::from_secs(600));
            assert_eq!(field(&r, "scheduler").color, color, "{mins} min");
            assert_eq!(r.status, color);
        }
        let mut i = healthy(now());
        i.last_scheduler = None;
        let r = build_report(&i, &disk(), now(), Duration::from_secs(600));
        assert_eq!(field(&r, "scheduler").value, "never");
        assert_eq!(
            r.sentence,
            "Degraded: scheduler. Investigate Activity timeline filtered to these subsystems."
        );
    }

    #[test]
    fn sync_ingest_processors_and_disk_colours_follow_their_thresholds() {
        let run = |f: &dyn Fn(&mut HealthInputs, &mut DiskInfo)| {
            let mut i = healthy(now());
            let mut d = disk();
            f(&mut i, &mut d);
            build_report(&i, &d, now(), Duration::from_secs(600))
        };
        let r = run(&|i, _| (i.sync_ok, i.sync_fail) = (0, 0));
        assert_eq!(field(&r, "sync_24h").color, Color::Yellow);
        let r = run(&|i, _| (i.sync_ok, i.sync_fail) = (96, 4));
        assert_eq!(field(&r, "sync_24h").color, Color::Yellow);
        let r = run(&|i, _| (i.sync_ok, i.sync_fail) = (90, 10));
        assert_eq!(field(&r, "sync_24h").color, Color::Red);
        assert_eq!(field(&r, "sync_24h").raw, json!({"ok": 90, "fail": 10}));

        let r = run(&|i, _| (i.uploads_24h, i.ingested_24h) = (3, 2));
        let f = field(&r, "session_ingest");
        assert_eq!(
            (f.value.as_str(), f.color, &f.raw),
            ("3 up / 2 ingested", Color::Yellow, &json!(1))
        );

        let r = run(&|i, _| i.processors[0].result_class = "error".into());
        assert_eq!(field(&r, "processors").color, Color::Yellow);
        assert!(field(&r, "processors").value.contains("usage failed"));
        let r = run(&|i, _| i.processors[1].at = now() - Chrono::minutes(31));
        assert_eq!(
            field(&r, "processors").color,
            Color::Yellow,
            "3 intervals late"
        );
        let r = run(&|i, _| i.processors[1].at = now() - Chrono::minutes(29));
        assert_eq!(field(&r, "processors").color, Color::Green);
        let r = run(&|i, _| i.processors.clear());
        assert_eq!(field(&r, "processors").color, Color::Yellow);

        let r = run(&|_, d| d.free_bytes = Some(9 << 30));
        assert_eq!(field(&r, "database").color, Color::Yellow);
    }

    #[test]
    fn cron_intervals_are_read_from_the_simple_shapes() {
        let secs = |c: &str| cron_interval(c).as_secs();
        assert_eq!(secs("0 */10 * * * *"), 600);
        assert_eq!(secs("0 */5 * * * *"), 300);
        assert_eq!(secs("*/30 * * * * *"), 30);
        assert_eq!(secs("0 17 * * * *"), 3600);
        assert_eq!(secs("0 0 */6 * * *"), 6 * 3600);
        assert_eq!(secs("0 30 2 * * *"), 86_400);
        assert_eq!(
            secs("0 0,30 * * * *"),
            600,
            "lists fall back to the default"
        );
        assert_eq!(secs("nonsense"), 600);
    }
}
