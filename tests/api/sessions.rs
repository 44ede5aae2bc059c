//! The Sessions APIs: list, KPIs, facets and heatmap agree on one data set;
//! transcripts, downloads and ZIPs; analysts see only their own; hostile
//! paths never read outside the sessions directory.

use std::path::{Path, PathBuf};

use glassbox::auth::Role;
use glassbox::ingest::pricing::Prices;
use glassbox::ingest::runner::{self, Processors, RunOptions};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

const WINDOW: &str = "since=2026-08-01&until=2026-10-01";
const SECRET: &str = "TOP-SECRET-7f3a9c";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sessions/fixture.user")
}

/// Copies the fixtures (or the named ones) into `SESSION_DATA_DIR/<dir>`.
pub(crate) fn copy_fixtures(app: &TestApp, dir: &str, only: &[&str]) -> PathBuf {
    let target = app.state.config.session_data_dir.join(dir);
    std::fs::create_dir_all(&target).unwrap();
    for f in std::fs::read_dir(fixtures()).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().into_string().unwrap();
        if only.is_empty() || only.contains(&name.as_str()) {
            std::fs::copy(f.path(), target.join(&name)).unwrap();
        }
    }
    target
}

pub(crate) async fn ingest(app: &TestApp) {
    let db = app.state.db.clone();
    let dir = app.state.config.session_data_dir.clone();
    db.run(move |c| {
        runner::run(
            c,
            &RunOptions {
                session_dir: &dir,
                batch_bytes: 256 << 20,
                one_batch_backfill: true,
                prices: &Prices::default(),
                retention_days: 0,
                processors: Processors::ALL,
                threads: 2,
            },
        )
    })
    .await
    .unwrap();
}

async fn json(api: &crate::helpers::Api, path: &str) -> Value {
    let resp = api.get(path).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

async fn f64_of(app: &TestApp, sql: &str) -> f64 {
    let sql = sql.to_string();
    app.state
        .db
        .run(move |c| Ok(c.query_row(&sql, [], |r| r.get::<_, f64>(0))?))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_kpis_facets_and_heatmap_agree_and_carry_the_ingestion_figures() {
    let app = TestApp::spawn().await;
    copy_fixtures(&app, "fixture.user", &[]);
    ingest(&app).await;
    let api = app.api_as(Role::Admin).await;
    let in_window = app
        .query_i64("SELECT count(*) FROM usage_session_summary WHERE started_at >= '2026-08-01' AND started_at < '2026-10-01'")
        .await;
    assert!(in_window >= 10, "the fixtures are ingested");
    let list = json(
        &api,
        &format!("/api/admin/sessions/list?{WINDOW}&limit=200"),
    )
    .await;
    let kpis = json(&api, &format!("/api/admin/sessions/kpis?{WINDOW}")).await;
    let map = json(&api, &format!("/api/admin/sessions/heatmap?{WINDOW}")).await;
    let facets = json(&api, &format!("/api/admin/sessions/facets?{WINDOW}")).await;
    assert_eq!(list["total"], in_window);
    assert_eq!(kpis["sessions_total"], in_window);
    assert_eq!(list["rows"].as_array().unwrap().len() as i64, in_window);
    let user_sum: i64 = facets["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(user_sum, in_window, "user facet buckets sum to the total");
    // Heatmap: distinct sessions across cells = sessions with findings.
    let with_findings = json(
        &api,
        &format!("/api/admin/sessions/list?{WINDOW}&has_findings=true"),
    )
    .await;
    assert!(kpis["sessions_with_findings"].as_i64().unwrap() > 0);
    assert_eq!(
        map["sessions_with_findings"],
        kpis["sessions_with_findings"]
    );
    assert_eq!(with_findings["total"], kpis["sessions_with_findings"]);
    // Per type: a row of cells sums to the sessions listed with that type.
    for t in [
        "tool_error",
        "permission_denied",
        "user_rejection",
        "loop",
        "abrupt_end",
    ] {
        let row: i64 = map["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["finding_type"] == t)
            .map(|c| c["sessions"].as_i64().unwrap())
            .sum();
        let listed = json(
            &api,
            &format!("/api/admin/sessions/list?{WINDOW}&finding_type={t}"),
        )
        .await;
        let k = json(
            &api,
            &format!("/api/admin/sessions/kpis?{WINDOW}&finding_type={t}"),
        )
        .await;
        assert_eq!(listed["total"].as_i64().unwrap(), row, "{t}");
        assert_eq!(k["sessions_total"].as_i64().unwrap(), row, "{t}");
        assert!(row > 0, "the fixtures have a {t}");
    }
    // Agnes's CLI fields are never null where it formats them.
    for f in [
        "sessions_total",
        "distinct_users",
        "error_sessions",
        "tool_calls_total",
        "tool_errors_total",
        "tool_error_rate",
    ] {
        assert!(kpis[f].is_number(), "kpis.{f}");
    }
    let mut tokens_sum = 0i64;
    let mut cost_sum = 0f64;
    for r in list["rows"].as_array().unwrap() {
        assert!(r["started_at"].is_string());
        assert!(r["tool_errors"].is_i64() && r["tool_calls"].is_i64());
        assert!(r["active_seconds"].is_i64() || r["active_seconds"].is_null());
        assert_eq!(r["session_dir"], "fixture.user");
        let sf = r["session_file"].as_str().unwrap();
        // Per-session tokens and cost are exactly what ingestion counted.
        let counted = app
            .query_i64(&format!(
                "SELECT coalesce(sum(input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens), 0)::BIGINT
                 FROM usage_responses WHERE counted AND session_file = '{sf}'"
            ))
            .await;
        assert_eq!(r["total_tokens"].as_i64().unwrap(), counted, "{sf}");
        let cost = f64_of(
            &app,
            &format!("SELECT coalesce(sum(cost_usd), 0)::DOUBLE FROM usage_responses WHERE counted AND session_file = '{sf}'"),
        )
        .await;
        assert!(
            (r["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
            "{sf}"
        );
        tokens_sum += counted;
        cost_sum += cost;
    }
    assert_eq!(kpis["total_tokens"].as_i64().unwrap(), tokens_sum);
    assert!((kpis["cost_usd"].as_f64().unwrap() - cost_sum).abs() < 1e-9);
    assert!(tokens_sum > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_anchor_moves_list_kpis_and_facets_alike_and_sorting_follows_agnes() {
    let app = TestApp::spawn().await;
    copy_fixtures(&app, "fixture.user", &[]);
    ingest(&app).await;
    // One session uploaded long after it started.
    let moved = app
        .query_i64("SELECT count(*) FROM usage_session_summary WHERE session_file = 'fixture.user/loop.jsonl'")
        .await;
    assert_eq!(moved, 1);
    app.state
        .db
        .run(|c| {
            Ok(c.execute(
                "UPDATE usage_session_summary SET uploaded_at = TIMESTAMP '2026-11-20 00:00:00'
                 WHERE session_file = 'fixture.user/loop.jsonl'",
                [],
            )?)
        })
        .await
        .unwrap();
    let api = app.api_as(Role::Admin).await;
    let started = json(
        &api,
        &format!("/api/admin/sessions/kpis?{WINDOW}&anchor=started"),
    )
    .await;
    let uploaded = json(
        &api,
        &format!("/api/admin/sessions/kpis?{WINDOW}&anchor=uploaded"),
    )
    .await;
    let default = json(&api, &format!("/api/admin/sessions/kpis?{WINDOW}")).await;
    assert_eq!(
        started["sessions_total"].as_i64().unwrap(),
        uploaded["sessions_total"].as_i64().unwrap() + 1
    );
    assert_eq!(
        default["sessions_total"], uploaded["sessions_total"],
        "Agnes's default anchor is uploaded"
    );
    for (anchor, k) in [("started", &started), ("uploaded", &uploaded)] {
        let f = json(
            &api,
            &format!("/api/admin/sessions/facets?{WINDOW}&anchor={anchor}"),
        )
        .await;
        let n: i64 = f["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_i64().unwrap())
            .sum();
        assert_eq!(
            n,
            k["sessions_total"].as_i64().unwrap(),
            "facets honour anchor={anchor}"
        );
        let l = json(
            &api,
            &format!("/api/admin/sessions/list?{WINDOW}&anchor={anchor}"),
        )
        .await;
        assert_eq!(l["total"], k["sessions_total"]);
    }
    // Default sort is started_at desc; tool_errors:desc puts the error-heaviest first.
    let l = json(
        &api,
        &format!("/api/admin/sessions/list?{WINDOW}&anchor=started"),
    )
    .await;
    assert_eq!(l["sort"], "started_at:desc");
    let starts: Vec<&str> = l["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["started_at"].as_str())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]));
    let l = json(
        &api,
        &format!("/api/admin/sessions/list?{WINDOW}&anchor=started&sort=tool_errors:desc&limit=3"),
    )
    .await;
    let errs: Vec<i64> = l["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tool_errors"].as_i64().unwrap())
        .collect();
    assert!(errs.windows(2).all(|w| w[0] >= w[1]) && errs[0] > 0);
    assert_eq!(l["next_offset"], 3);
    // Filters: errors only, model, username, q, tokens.
    let only = json(
        &api,
        &format!("/api/admin/sessions/kpis?{WINDOW}&anchor=started&only_errors=true"),
    )
    .await;
    assert_eq!(only["sessions_total"], started["error_sessions"]);
    let q = json(
        &api,
        &format!("/api/admin/sessions/list?{WINDOW}&anchor=started&q=LOOP"),
    )
    .await;
    assert_eq!(q["total"], 1);
    let none = json(
        &api,
        &format!("/api/admin/sessions/list?{WINDOW}&anchor=started&username=nobody@example.com"),
    )
    .await;
    assert_eq!(none["total"], 0);
    let top = json(
        &api,
        &format!("/api/admin/sessions/list?{WINDOW}&anchor=started&sort=tokens:desc&limit=1"),
    )
    .await;
    let m = top["rows"][0]["total_tokens"].as_i64().unwrap();
    let hi = json(
        &api,
        &format!("/api/admin/sessions/kpis?{WINDOW}&anchor=started&min_tokens={m}"),
    )
    .await;
    let lo = json(
        &api,
        &format!(
            "/api/admin/sessions/kpis?{WINDOW}&anchor=started&max_tokens={}",
            m - 1
        ),
    )
    .await;
    assert!(hi["sessions_total"].as_i64().unwrap() >= 1);
    assert_eq!(
        hi["sessions_total"].as_i64().unwrap() + lo["sessions_total"].as_i64().unwrap(),
        started["sessions_total"].as_i64().unwrap(),
        "the token bounds split the sessions"
    );
    // Validation: 422 naming the parameter; 365 days accepted.
    crate::helpers::assert_detail(
        api.get("/api/admin/sessions/list?anchor=ended").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "anchor",
    )
    .await;
    crate::helpers::assert_detail(
        api.get("/api/admin/sessions/kpis?since_minutes=525601")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "since_minutes",
    )
    .await;
    assert_eq!(
        api.get("/api/admin/sessions/kpis?since_minutes=525600")
            .await
            .status(),
        StatusCode::OK
    );
    assert!(
        default["previous"].is_object(),
        "KPIs carry the previous window"
    );
}

async fn audit_count(app: &TestApp, action: &str) -> usize {
    app.audit_rows(action).await.len()
}

/// Waits for an audit row written after a stream ended (not a timing check).
async fn wait_for_audit(app: &TestApp, action: &str, n: usize) {
    for _ in 0..200 {
        if audit_count(app, action).await >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no {action} audit row");
}

#[tokio::test(flavor = "multi_thread")]
async fn transcripts_come_whole_or_by_page_with_marks_and_one_view_per_opening() {
    let app = TestApp::spawn().await;
    copy_fixtures(&app, "fixture.user", &[]);
    ingest(&app).await;
    let api = app.api_as(Role::Admin).await;
    let whole = json(
        &api,
        "/api/admin/sessions/fixture.user/tool_error.jsonl/transcript",
    )
    .await;
    assert_eq!(whole["username"], "fixture.user");
    assert_eq!(whole["session_file"], "tool_error.jsonl");
    assert!(whole["summary"]["tool_errors"].as_i64().unwrap() > 0);
    let events = whole["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"text") && kinds.contains(&"tool_use") && kinds.contains(&"tool_result")
    );
    for e in events {
        assert!(e["ts"].is_string(), "ts is always a string");
    }
    let err = events.iter().find(|e| e["is_error"] == true).unwrap();
    let err_line = err["line"].as_u64().unwrap();
    assert!(whole["marks"]["errors"]
        .as_array()
        .unwrap()
        .contains(&Value::from(err_line)));
    let finding_line = app
        .query_i64("SELECT turn_index FROM session_findings WHERE session_file = 'fixture.user/tool_error.jsonl' AND finding_type = 'tool_error'")
        .await;
    assert_eq!(
        finding_line as u64, err_line,
        "error marks are findings' turn_index"
    );
    wait_for_audit(&app, "session.transcript_view", 1).await;
    // Pages: by line, with next_offset; only the first page is a view.
    let p0 = json(
        &api,
        "/api/admin/sessions/fixture.user/tool_error.jsonl/transcript?offset=0&limit=2",
    )
    .await;
    assert_eq!(p0["next_offset"], 2);
    assert!(p0["marks"]["lines"].is_array());
    let mut offset = 2;
    let mut paged = p0["events"].as_array().unwrap().len();
    loop {
        let p = json(&api, &format!("/api/admin/sessions/fixture.user/tool_error.jsonl/transcript?offset={offset}&limit=2")).await;
        assert!(p.get("marks").is_none());
        paged += p["events"].as_array().unwrap().len();
        match p["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(paged, events.len(), "pages cover the whole transcript once");
    assert_eq!(audit_count(&app, "session.transcript_view").await, 2);
    // The raw download is the file, byte for byte, and audited with its size.
    let resp = api
        .get("/api/admin/sessions/fixture.user/tool_error.jsonl/download")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let body = resp.bytes().await.unwrap();
    assert_eq!(
        &body[..],
        &std::fs::read(fixtures().join("tool_error.jsonl")).unwrap()[..]
    );
    let rows = app.audit_rows("session_download").await;
    assert_eq!(
        rows[0].1.as_deref(),
        Some("session:fixture.user/tool_error.jsonl")
    );
    // A file not yet ingested still opens, with its findings from a parse.
    std::fs::copy(
        fixtures().join("loop.jsonl"),
        app.state
            .config
            .session_data_dir
            .join("fixture.user/fresh.jsonl"),
    )
    .unwrap();
    let fresh = json(
        &api,
        "/api/admin/sessions/fixture.user/fresh.jsonl/transcript?limit=50",
    )
    .await;
    assert_eq!(fresh["summary"], serde_json::json!({}));
    assert!(fresh["marks"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["finding_type"] == "loop"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_sessions_merge_pending_files_and_their_zip_holds_exactly_their_files() {
    let app = TestApp::spawn().await;
    let ann = app.create_user("ann@example.com", Role::Analyst).await;
    let dir = copy_fixtures(&app, &ann.id, &["simple_bash.jsonl", "tool_error.jsonl"]);
    ingest(&app).await;
    std::fs::copy(fixtures().join("loop.jsonl"), dir.join("later.jsonl")).unwrap();
    // A symlink leaving the directory is never listed nor zipped.
    std::fs::write(app.dir.path().join("secret.jsonl"), SECRET).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        app.dir.path().join("secret.jsonl"),
        dir.join("escape.jsonl"),
    )
    .unwrap();
    let api = app.api_as(Role::Admin).await;
    let v = json(&api, &format!("/api/admin/users/{}/sessions", ann.id)).await;
    let rows = v["rows"].as_array().unwrap();
    let seen: Vec<(String, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["session_file"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                r["processed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[..2].iter().all(|(_, p)| *p), "processed first");
    assert_eq!(seen[2], ("later.jsonl".to_string(), false));
    assert_eq!(v["pagination"]["total"], 3);
    assert_eq!(rows[2]["tool_calls"], 0);
    let resp = api
        .get(&format!(
            "/api/admin/users/{}/sessions/download-all",
            ann.id
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let bytes = resp.bytes().await.unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains(SECRET));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["later.jsonl", "simple_bash.jsonl", "tool_error.jsonl"]
    );
    for name in names {
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(&name).unwrap(), &mut content).unwrap();
        assert_eq!(content, std::fs::read(dir.join(&name)).unwrap(), "{name}");
    }
    wait_for_audit(&app, "session_bulk_download", 1).await;
    let one = api
        .get(&format!(
            "/api/admin/users/{}/sessions/later.jsonl/download",
            ann.id
        ))
        .await;
    assert_eq!(one.status(), StatusCode::OK);
    assert_eq!(
        &one.bytes().await.unwrap()[..],
        &std::fs::read(dir.join("later.jsonl")).unwrap()[..]
    );
    assert_eq!(
        api.get(&format!(
            "/api/admin/users/{}/sessions/escape.jsonl/download",
            ann.id
        ))
        .await
        .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.get("/api/admin/users/nobody/sessions").await.status(),
        StatusCode::NOT_FOUND
    );
    // Activity: that user's audit rows.
    let act = json(
        &api,
        &format!(
            "/api/admin/users/{}/activity",
            app.user_by_email(crate::helpers::ADMIN_EMAIL)
                .await
                .unwrap()
                .id
        ),
    )
    .await;
    assert!(act["total"].as_i64().unwrap() >= 1);
    assert!(act["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["action"] == "session_download"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_analyst_sees_only_their_own_sessions_and_transcripts() {
    let app = TestApp::spawn().await;
    let me = app.api_as(Role::Analyst).await;
    let ann = app.user_by_email("analyst@example.com").await.unwrap();
    let bob = app.create_user("bob@example.com", Role::Analyst).await;
    copy_fixtures(&app, &ann.id, &["simple_bash.jsonl"]);
    copy_fixtures(&app, &bob.id, &["tool_error.jsonl", "loop.jsonl"]);
    ingest(&app).await;
    let l = json(&me, &format!("/api/me/sessions/list?{WINDOW}")).await;
    assert_eq!(l["total"], 1);
    assert_eq!(l["rows"][0]["username"], "analyst@example.com");
    let k = json(
        &me,
        &format!("/api/me/sessions/kpis?{WINDOW}&username=bob@example.com"),
    )
    .await;
    assert_eq!(k["sessions_total"], 0);
    let f = json(&me, &format!("/api/me/sessions/facets?{WINDOW}")).await;
    assert_eq!(f["users"].as_array().unwrap().len(), 1);
    let t = json(&me, "/api/me/sessions/simple_bash.jsonl/transcript").await;
    assert!(!t["events"].as_array().unwrap().is_empty());
    assert_eq!(
        me.get("/api/me/sessions/tool_error.jsonl/transcript")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        me.get("/api/me/sessions/loop.jsonl/download")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let mine = json(&me, "/api/me/sessions").await;
    assert_eq!(mine["pagination"]["total"], 1);
    for p in [
        format!("/api/admin/sessions/list?{WINDOW}"),
        format!("/api/admin/sessions/{}/tool_error.jsonl/transcript", bob.id),
        format!("/api/admin/users/{}/sessions/download-all", bob.id),
    ] {
        assert_eq!(me.get(&p).await.status(), StatusCode::FORBIDDEN, "{p}");
    }
}

/// Sends a request line exactly as written (no client-side normalisation of
/// `..` or percent escapes) and returns (status, whole response).
async fn raw_get(url: &str, path: &[u8], token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(path);
    req.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_paths_are_refused_and_nothing_outside_the_directory_is_read() {
    let app = TestApp::spawn().await;
    let admin = app.api_as(Role::Admin).await;
    let token = admin.token.clone().unwrap();
    let analyst = app.api_as(Role::Analyst).await;
    let analyst_token = analyst.token.clone().unwrap();
    let ann = app.user_by_email("analyst@example.com").await.unwrap();
    let bob = app.create_user("bob@example.com", Role::Analyst).await;
    let root = app.state.config.session_data_dir.clone();
    copy_fixtures(&app, &ann.id, &["simple_bash.jsonl"]);
    let bob_dir = copy_fixtures(&app, &bob.id, &["loop.jsonl"]);
    std::fs::write(bob_dir.join("bobs-secret.jsonl"), SECRET).unwrap();
    // The secret sits next to the sessions directory.
    let data = root.parent().unwrap().to_path_buf();
    std::fs::write(data.join("secret.jsonl"), SECRET).unwrap();
    std::fs::write(data.join("passwd.jsonl"), SECRET).unwrap();
    let ud = ann.id.clone();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(data.join("secret.jsonl"), root.join(&ud).join("link.jsonl"))
            .unwrap();
        std::os::unix::fs::symlink(&data, root.join("evil")).unwrap();
        std::os::unix::fs::symlink(
            bob_dir.join("bobs-secret.jsonl"),
            root.join(&ud).join("peer.jsonl"),
        )
        .unwrap();
    }
    let long = "a".repeat(300);
    let admin_paths: Vec<String> = vec![
        format!("/api/admin/sessions/{ud}/../../secret.jsonl/transcript"),
        format!("/api/admin/sessions/../secret.jsonl/transcript"),
        format!("/api/admin/sessions/{ud}/..%2F..%2Fsecret.jsonl/transcript"),
        format!("/api/admin/sessions/{ud}/..%2f..%2fsecret.jsonl/download"),
        format!("/api/admin/sessions/%2E%2E/secret.jsonl/transcript"),
        format!("/api/admin/sessions/%2e%2e/secret.jsonl/download"),
        format!("/api/admin/sessions/{ud}/%2E%2E%2Fsecret.jsonl/download"),
        format!("/api/admin/sessions/..%2F..%2F/secret.jsonl/download"),
        format!("/api/admin/sessions/{ud}/link.jsonl/transcript"),
        format!("/api/admin/sessions/{ud}/link.jsonl/download"),
        format!("/api/admin/sessions/{ud}/peer.jsonl/download"),
        format!("/api/admin/sessions/evil/secret.jsonl/transcript"),
        format!("/api/admin/sessions/evil/secret.jsonl/download"),
        format!("/api/admin/sessions/%2Fetc/passwd.jsonl/download"),
        format!("/api/admin/sessions/{ud}/%2Fetc%2Fpasswd.jsonl/download"),
        format!("/api/admin/sessions/{ud}/simple_bash.jsonl%00/download"),
        format!("/api/admin/sessions/{ud}%00/simple_bash.jsonl/download"),
        format!("/api/admin/sessions/{ud}/..%5C..%5Csecret.jsonl/download"),
        format!("/api/admin/sessions/..%5C/secret.jsonl/transcript"),
        format!("/api/admin/sessions/{ud}/{long}.jsonl/download"),
        format!("/api/admin/sessions/{long}/simple_bash.jsonl/download"),
        format!("/api/admin/sessions/{ud}/secret/transcript"),
        format!("/api/admin/sessions/{ud}/.jsonl/download"),
        format!("/api/admin/sessions/./secret.jsonl/download"),
        format!("/api/admin/sessions/{ud}/%252E%252E%252Fsecret.jsonl/download"),
        format!("/api/admin/sessions/{ud}/simple_bash.jsonl/../../../secret.jsonl"),
        format!(
            "/api/admin/users/{}/sessions/..%2F..%2Fsecret.jsonl/download",
            ann.id
        ),
        format!("/api/admin/users/{}/sessions/link.jsonl/download", ann.id),
        format!("/api/admin/users/{}/sessions/peer.jsonl/download", ann.id),
        format!("/api/admin/users/..%2F..%2F/sessions/download-all"),
        format!("/api/admin/users/{}/sessions/%2E%2E/download", ann.id),
    ];
    let analyst_paths: Vec<String> = vec![
        "/api/me/sessions/..%2F..%2Fsecret.jsonl/transcript".into(),
        "/api/me/sessions/link.jsonl/transcript".into(),
        "/api/me/sessions/peer.jsonl/download".into(),
        "/api/me/sessions/bobs-secret.jsonl/download".into(),
        "/api/me/sessions/loop.jsonl/transcript".into(),
        "/api/me/sessions/%2Fetc%2Fpasswd.jsonl/download".into(),
        "/api/me/sessions/..%5Csecret.jsonl/download".into(),
    ];
    let mut failures = Vec::new();
    let mut n = 0;
    for (paths, tok) in [(&admin_paths, &token), (&analyst_paths, &analyst_token)] {
        for p in paths.iter() {
            n += 1;
            let (status, body) = raw_get(&app.url, p.as_bytes(), tok).await;
            if !(status == 400 || status == 404) || body.contains(SECRET) {
                failures.push(format!("{p}: {status}"));
            }
        }
    }
    // Raw bytes a client library would refuse to send: NUL and backslashes.
    for raw in [
        format!("/api/admin/sessions/{ud}/a\0.jsonl/download"),
        format!("/api/admin/sessions/{ud}/..\\..\\secret.jsonl/download"),
    ] {
        n += 1;
        let (status, body) = raw_get(&app.url, raw.as_bytes(), &token).await;
        if !(status == 400 || status == 404) || body.contains(SECRET) {
            failures.push(format!("{raw:?}: {status}"));
        }
    }
    assert!(n >= 30, "{n} hostile paths");
    assert!(failures.is_empty(), "not refused:\n{}", failures.join("\n"));
    // The ZIP of a user with an escaping symlink leaves it out.
    let resp = admin
        .get(&format!(
            "/api/admin/users/{}/sessions/download-all",
            ann.id
        ))
        .await;
    let bytes = resp.bytes().await.unwrap();
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
    assert_eq!(names, ["simple_bash.jsonl"]);
    // And the plain good path still works.
    let (status, _) = raw_get(
        &app.url,
        format!("/api/admin/sessions/{ud}/simple_bash.jsonl/download").as_bytes(),
        &token,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_list_view_and_page_through_sessions_for_admins_and_analysts() {
    let app = TestApp::spawn().await;
    let ann = app.create_user("ann@example.com", Role::Analyst).await;
    copy_fixtures(&app, "fixture.user", &[]);
    copy_fixtures(&app, &ann.id, &["simple_bash.jsonl"]);
    ingest(&app).await;
    let admin = app.signed_in(crate::helpers::ADMIN_EMAIL).await;
    let html = admin
        .get(&format!("/admin/sessions?{WINDOW}&anchor=started"))
        .await
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&html);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("section.kpis .kpi")).count(), 6);
    assert!(doc.select(&sel("svg#heatmap a[data-cell]")).count() > 0);
    let rows: Vec<_> = doc.select(&sel("#sessions-table tbody tr")).collect();
    assert!(rows.len() > 10);
    // The page opens error-heavy first.
    let first = rows[0].value().attr("data-session").unwrap().to_string();
    let top = app
        .query_i64(&format!(
            "SELECT (SELECT max(tool_errors) FROM usage_session_summary) - tool_errors FROM usage_session_summary WHERE session_file = '{first}'"
        ))
        .await;
    assert_eq!(top, 0, "{first} has the most tool errors");
    // The viewer: error marks, the first screen, a download link and the audit trail.
    let resp = admin.get(&format!("/admin/sessions/{first}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let next = doc.select(&sel("#next-error")).next().unwrap();
    let marks: Vec<u64> = serde_json::from_str(next.value().attr("data-marks").unwrap()).unwrap();
    assert!(!marks.is_empty());
    for m in &marks {
        assert!(
            doc.select(&sel(&format!("#line-{m}"))).next().is_some(),
            "line {m} is on the first screen"
        );
    }
    assert!(doc.select(&sel(".turn.is-error")).count() > 0);
    assert!(doc
        .select(&sel("#download"))
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap()
        .ends_with("/download"));
    assert!(doc.select(&sel("#audit-trail")).next().is_some());
    assert_eq!(app.audit_rows("session.transcript_view").await.len(), 1);
    // Later pages by offset are fragments and are not another view.
    let frag = admin
        .htmx_get(&format!("/admin/sessions/{first}/turns?offset=1"))
        .await;
    assert_eq!(frag.status(), StatusCode::OK);
    assert!(frag.text().await.unwrap().contains("turns-page"));
    assert_eq!(app.audit_rows("session.transcript_view").await.len(), 1);
    // The user page's Sessions tab lists the processed file with downloads.
    let tab = admin
        .htmx_get(&format!("/admin/users/{}/sessions-tab", ann.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(tab.contains("simple_bash.jsonl") && tab.contains("download-all"));
    // An analyst sees their own sessions only.
    let me = app.signed_in("ann@example.com").await;
    let html = me
        .get(&format!("/me/sessions?{WINDOW}&anchor=started"))
        .await
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&html);
    let mine: Vec<_> = doc.select(&sel("#sessions-table tbody tr")).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        me.get("/me/sessions/simple_bash.jsonl").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        me.get("/me/sessions/tool_error.jsonl").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        me.get("/admin/sessions").await.status(),
        StatusCode::FORBIDDEN
    );
}
