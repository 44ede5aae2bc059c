//! People administration over the API and the pages.

use glassbox::auth::Role;
use reqwest::{Method, StatusCode};
use scraper::{Html, Selector};
use serde_json::{json, Value};

use crate::helpers::{assert_detail, TestApp, ADMIN_EMAIL, PASSWORD};

#[tokio::test(flavor = "multi_thread")]
async fn admins_create_list_and_update_users_with_audit_rows() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    let resp = api
        .post("/api/admin/users", json!({"email": "new@example.com", "name": "New Person", "password": "long-enough-1", "role": "analyst"}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["role"], "analyst");
    assert!(user.get("password_hash").is_none(), "no hash in the API");
    let dup = api
        .post("/api/admin/users", json!({"email": "NEW@example.com"}))
        .await;
    assert_detail(dup, StatusCode::CONFLICT, "already exists").await;

    let list: Value = api.get("/api/admin/users").await.json().await.unwrap();
    assert!(list["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["email"] == "new@example.com"));

    let id = user["id"].as_str().unwrap();
    let resp = api
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{id}"),
            Some(json!({"role": "admin", "name": "Promoted"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let before = app
        .query_i64("SELECT count(*) FROM audit_log WHERE action = 'user.update' AND (params_before->>'role') = 'analyst' AND (params->>'role') = 'admin'")
        .await;
    assert_eq!(before, 1, "params_before records the old role");
    assert_eq!(
        app.audit_rows("user.create").await.len(),
        2,
        "bootstrap admin + the new user"
    );
    let unknown = api
        .call(
            Method::PATCH,
            "/api/admin/users/nope",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_detail(unknown, StatusCode::NOT_FOUND, "user not found").await;
    let bad_field = api
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{id}"),
            Some(json!({"colour": "red"})),
        )
        .await;
    assert_detail(bad_field, StatusCode::UNPROCESSABLE_ENTITY, "colour").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_cannot_be_removed() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    let admin = app.user_by_email(ADMIN_EMAIL).await.unwrap();
    let resp = api
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{}", admin.id),
            Some(json!({"active": false})),
        )
        .await;
    assert_detail(resp, StatusCode::CONFLICT, "last active admin").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_issue_and_revoke_tokens_for_a_user_and_the_token_works_until_revoked() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    let bot = app.create_user("bot@example.com", Role::Service).await;
    let resp = api
        .post(
            &format!("/api/admin/users/{}/tokens", bot.id),
            json!({"name": "ingest", "days": 30}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let mut bot_api = app.api();
    bot_api.token = Some(token.clone());
    // A service token is not for people's endpoints.
    assert_detail(
        bot_api.get("/api/me/tokens").await,
        StatusCode::FORBIDDEN,
        "Service accounts",
    )
    .await;
    let listed: Value = api
        .get(&format!("/api/admin/users/{}/tokens", bot.id))
        .await
        .json()
        .await
        .unwrap();
    let row = &listed["tokens"][0];
    assert_eq!(row["name"], "ingest");
    assert!(
        row.get("token").is_none(),
        "a token's text is shown once only"
    );
    assert!(!listed.to_string().contains(&token));
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        api.call(Method::DELETE, &format!("/api/admin/tokens/{id}"), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_detail(
        bot_api.get("/api/me/tokens").await,
        StatusCode::UNAUTHORIZED,
        "revoked",
    )
    .await;
    assert_detail(
        api.call(Method::DELETE, "/api/admin/tokens/missing", None)
            .await,
        StatusCode::NOT_FOUND,
        "token not found",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn analysts_manage_only_their_own_tokens() {
    let app = TestApp::spawn().await;
    let ann = app.api_as(Role::Analyst).await;
    let created: Value = ann
        .post("/api/me/tokens", json!({"name": "laptop"}))
        .await
        .json()
        .await
        .unwrap();
    let admin = app.api_as(Role::Admin).await;
    let admin_own: Value = admin
        .post("/api/me/tokens", json!({"name": "admin-own"}))
        .await
        .json()
        .await
        .unwrap();
    // Ann cannot revoke the admin's token, nor see it.
    let resp = ann
        .call(
            Method::DELETE,
            &format!("/api/me/tokens/{}", admin_own["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_detail(resp, StatusCode::NOT_FOUND, "token not found").await;
    let mine: Value = ann.get("/api/me/tokens").await.json().await.unwrap();
    assert!(mine["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["user_id"] == created["user_id"]));
    let resp = ann
        .call(
            Method::DELETE,
            &format!("/api/me/tokens/{}", created["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_users_page_lists_people_and_htmx_actions_return_only_their_fragment() {
    let app = TestApp::spawn().await;
    app.create_user("ann@example.com", Role::Analyst).await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let html = b.get("/admin/users").await.text().await.unwrap();
    let doc = Html::parse_document(&html);
    let rows: Vec<String> = doc
        .select(&Selector::parse("table.users-table tbody tr td:first-child").unwrap())
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect();
    assert!(
        rows.contains(&ADMIN_EMAIL.to_string()) && rows.contains(&"ann@example.com".to_string()),
        "{rows:?}"
    );
    assert!(doc
        .select(&Selector::parse("nav.main-nav a[aria-current=page]").unwrap())
        .any(|a| a.text().collect::<String>() == "Users"));

    let resp = b
        .post_form(
            "/admin/users",
            &[
                ("email", "made@example.com"),
                ("role", "analyst"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let frag = resp.text().await.unwrap();
    assert!(!frag.contains("<html"), "htmx gets the block only");
    assert!(frag.contains("made@example.com") && frag.contains("Created made@example.com"));

    // A validation error comes back as a toast aimed at #toasts.
    let resp = b
        .post_form("/admin/users", &[("email", "broken"), ("role", "analyst")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(resp.headers()["hx-retarget"], "#toasts");
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("is not an email address"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_page_issues_a_token_once_and_deactivates() {
    let app = TestApp::spawn().await;
    let ann = app.create_user("ann@example.com", Role::Analyst).await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let page = b.get(&format!("/admin/users/{}", ann.id)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let resp = b
        .post_form(
            &format!("/admin/users/{}/tokens", ann.id),
            &[("name", "laptop"), ("days", "30")],
        )
        .await;
    let frag = resp.text().await.unwrap();
    let doc = Html::parse_fragment(&frag);
    let token = doc
        .select(&Selector::parse("#new-token").unwrap())
        .next()
        .expect("the new token is shown")
        .text()
        .collect::<String>();
    assert_eq!(token.split('.').count(), 3);
    let again = b
        .get(&format!("/admin/users/{}", ann.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains(&token), "shown once");
    let resp = b
        .post_form(&format!("/admin/users/{}", ann.id), &[("active", "false")])
        .await;
    assert!(resp.text().await.unwrap().contains("deactivated"));
    let mut ann_browser = app.browser();
    assert_eq!(
        ann_browser
            .login("ann@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_me_page_creates_and_revokes_own_tokens_through_htmx() {
    let app = TestApp::spawn().await;
    app.create_user("ann@example.com", Role::Analyst).await;
    let b = app.signed_in("ann@example.com").await;
    let frag = b
        .post_form("/me/tokens", &[("name", "laptop"), ("days", "90")])
        .await
        .text()
        .await
        .unwrap();
    assert!(frag.contains("new-token") && !frag.contains("<html"));
    let id = app
        .query_i64("SELECT count(*) FROM personal_access_tokens WHERE name = 'laptop'")
        .await;
    assert_eq!(id, 1);
    let tok_id: String = app
        .state
        .db
        .run(|c| {
            Ok(c.query_row(
                "SELECT id FROM personal_access_tokens WHERE name = 'laptop'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    let frag = b
        .post_form(&format!("/me/tokens/{tok_id}/revoke"), &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(frag.contains("revoked"));
}

/// Copies a fixture transcript into `dir` with every timestamp moved to `day`.
fn transcript_on(app: &TestApp, dir: &str, fixture: &str, day: chrono::NaiveDate) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sessions/fixture.user")
        .join(fixture);
    let text = std::fs::read_to_string(src).unwrap();
    let moved: String = text
        .split("\"timestamp\":\"")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 || part.len() < 10 {
                part.to_string()
            } else {
                format!("{day}{}", &part[10..])
            }
        })
        .collect::<Vec<_>>()
        .join("\"timestamp\":\"");
    let target = app.state.config.session_data_dir.join(dir);
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join(fixture), moved).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_users_list_and_a_users_page_show_their_llm_tokens_and_cost() {
    let app = TestApp::spawn().await;
    let ann = app.create_user("ann@example.com", Role::Analyst).await;
    let today = chrono::Utc::now().date_naive();
    transcript_on(&app, &ann.id, "simple_bash.jsonl", today);
    // Outside the 30 days: must not count.
    transcript_on(
        &app,
        &ann.id,
        "skill.jsonl",
        today - chrono::Duration::days(40),
    );
    crate::sessions::ingest(&app).await;
    let tokens = "input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens";
    let want = app
        .query_i64(&format!(
            "SELECT sum({tokens})::BIGINT FROM usage_responses WHERE counted AND session_file LIKE '%simple_bash%'"
        ))
        .await;
    let old = app
        .query_i64(&format!(
            "SELECT sum({tokens})::BIGINT FROM usage_responses WHERE counted AND session_file LIKE '%skill%'"
        ))
        .await;
    assert!(
        want > 0 && old > 0,
        "both transcripts ingested: {want} {old}"
    );

    let api = app.api_as(Role::Admin).await;
    let list: Value = api.get("/api/admin/users").await.json().await.unwrap();
    let users = list["users"].as_array().unwrap();
    let row = users
        .iter()
        .find(|u| u["email"] == "ann@example.com")
        .unwrap();
    assert_eq!(row["tokens_30d"], want);
    assert!(row["cost_usd_30d"].as_f64().unwrap() > 0.0);
    // Numbers, never null, for people without any usage.
    let admin = users.iter().find(|u| u["email"] == ADMIN_EMAIL).unwrap();
    assert_eq!(admin["tokens_30d"], 0);
    assert_eq!(admin["cost_usd_30d"], 0.0);

    let b = app.signed_in(ADMIN_EMAIL).await;
    let html = b.get("/admin/users").await.text().await.unwrap();
    let doc = Html::parse_document(&html);
    let row = doc
        .select(&Selector::parse("table.users-table tbody tr").unwrap())
        .find(|r| r.text().any(|t| t.contains("ann@example.com")))
        .unwrap();
    let cell = |class: &str| {
        row.select(&Selector::parse(class).unwrap())
            .next()
            .unwrap()
            .text()
            .collect::<String>()
    };
    assert_eq!(
        cell("td.llm-tokens"),
        glassbox::templates::compact_tokens(want)
    );
    assert!(cell("td.llm-cost").starts_with('$'));

    let html = b
        .get(&format!("/admin/users/{}", ann.id))
        .await
        .text()
        .await
        .unwrap();
    let doc = Html::parse_document(&html);
    let value = |key: &str| {
        doc.select(&Selector::parse(&format!("[data-kpi={key}] .kpi-value")).unwrap())
            .next()
            .unwrap()
            .text()
            .collect::<String>()
    };
    assert_eq!(
        value("tokens_today"),
        glassbox::templates::compact_tokens(want)
    );
    assert_eq!(
        value("tokens_30d"),
        glassbox::templates::compact_tokens(want)
    );
}
