//! Sign-in, sessions, CSRF, throttling and tokens.

use base64::Engine;
use glassbox::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_detail, csrf_from, TestApp, ADMIN_EMAIL, PASSWORD};

#[tokio::test(flavor = "multi_thread")]
async fn admins_land_on_the_audit_log_and_analysts_on_me() {
    let app = TestApp::spawn().await;
    app.create_user("ann@example.com", Role::Analyst).await;
    let mut admin = app.browser();
    let resp = admin.login(ADMIN_EMAIL, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/admin/activity");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let mut analyst = app.browser();
    let resp = analyst.login("ann@example.com", PASSWORD).await;
    assert_eq!(resp.headers()["location"], "/me");
    let me = analyst.get("/me").await;
    assert_eq!(me.status(), StatusCode::OK);
    let html = me.text().await.unwrap();
    assert!(html.contains("ann@example.com"));
    assert!(
        !html.contains("/admin/users"),
        "analysts see no admin navigation"
    );
    let rows = app.audit_rows("auth.login").await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.2.as_deref() == Some("success"))
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_follows_a_safe_next_and_ignores_an_open_redirect() {
    let app = TestApp::spawn().await;
    for (next, expected) in [
        ("/admin/users?tab=x", "/admin/users?tab=x"),
        ("//evil.example/", "/admin/activity"),
    ] {
        let b = app.browser();
        let page = b
            .get(&format!("/login?next={}", urlencode(next)))
            .await
            .text()
            .await
            .unwrap();
        let csrf = csrf_from(&page).unwrap();
        let resp = b
            .client
            .post(app.at("/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["location"], expected);
    }
}

/// Every `next` that is not a same-origin path (SPEC §1), as raw strings.
const UNSAFE_NEXTS: &[&str] = &[
    "/\t/evil.example",
    "/\r/evil.example",
    "/\0/evil.example",
    "/\n/evil.example",
    "/ /evil.example",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example",
    "/admin\r\nSet-Cookie: x=1",
];

/// Percent-encodes every byte but letters and digits.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_user_with_an_unsafe_next_lands_on_the_landing_page() {
    let app = TestApp::spawn().await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    for next in UNSAFE_NEXTS {
        let resp = b.get(&format!("/login?next={}", pct(next))).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(resp.headers()["location"], "/admin/activity", "{next:?}");
    }
    let resp = b.get(&format!("/login?next={}", pct("/me?q=café"))).await;
    assert_eq!(resp.headers()["location"], "/me?q=caf%C3%A9");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsafe_next_does_not_survive_the_sign_in_form() {
    let app = TestApp::spawn().await;
    for next in UNSAFE_NEXTS {
        let b = app.browser();
        let page = b
            .get(&format!("/login?next={}", pct(next)))
            .await
            .text()
            .await
            .unwrap();
        assert!(!page.contains("evil.example"), "{next:?} not echoed");
        let csrf = csrf_from(&page).unwrap();
        // Posted as a crafted form would, whatever the page rendered.
        let resp = b
            .client
            .post(app.at("/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(resp.headers()["location"], "/admin/activity", "{next:?}");
    }
}

fn urlencode(s: &str) -> String {
    s.replace('/', "%2F")
        .replace('?', "%3F")
        .replace('=', "%3D")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_and_an_unknown_user_get_the_same_clear_error_and_are_audited() {
    let app = TestApp::spawn().await;
    for email in [ADMIN_EMAIL, "ghost@example.com"] {
        let mut b = app.browser();
        let resp = b.login(email, "not-the-password").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let html = resp.text().await.unwrap();
        assert!(html.contains("Wrong email or password."), "{email}");
        assert!(html.contains(email), "the email is kept in the form");
    }
    let rows = app.audit_rows("auth.login").await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.2.as_deref() == Some("invalid_password"))
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sixth_failed_sign_in_is_throttled_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        assert_eq!(
            app.browser()
                .login(ADMIN_EMAIL, "nope-nope-nope")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = app.browser().login(ADMIN_EMAIL, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait));
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins"));
    // The token endpoint shares the throttle, and answers in JSON.
    let api = app
        .api()
        .post(
            "/auth/token",
            json!({"email": ADMIN_EMAIL, "password": PASSWORD}),
        )
        .await;
    assert!(api.headers().contains_key("retry-after"));
    assert_detail(
        api,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed sign-ins",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changing_cookie_requests_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    let mut b = app.signed_in(ADMIN_EMAIL).await;
    // Missing.
    let resp = b
        .json(
            Method::POST,
            "/api/me/tokens",
            Some(json!({"name": "x"})),
            false,
        )
        .await;
    assert_detail(resp, StatusCode::FORBIDDEN, "CSRF token missing").await;
    // Wrong.
    let good = b.csrf.clone();
    b.csrf = Some("0".repeat(64));
    let resp = b
        .json(
            Method::POST,
            "/api/me/tokens",
            Some(json!({"name": "x"})),
            true,
        )
        .await;
    assert_detail(resp, StatusCode::FORBIDDEN, "does not match").await;
    // Right: header or form field both work.
    b.csrf = good.clone();
    let resp = b
        .json(
            Method::POST,
            "/api/me/tokens",
            Some(json!({"name": "x"})),
            true,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = b
        .client
        .post(app.at("/me/tokens"))
        .form(&[("csrf_token", good.unwrap().as_str()), ("name", "form")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A sign-in form without its token is refused too.
    let resp = app
        .browser()
        .client
        .post(app.at("/login"))
        .form(&[("email", ADMIN_EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("reload the sign-in page"));
    let n = app
        .query_i64("SELECT count(*) FROM personal_access_tokens WHERE name = 'x'")
        .await;
    assert_eq!(n, 1, "refused requests changed nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_ends_the_session_and_is_audited() {
    let app = TestApp::spawn().await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let resp = b.post_form("/logout", &[]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()["hx-redirect"], "/login");
    assert_eq!(b.get("/admin/users").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.audit_rows("auth.logout").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_people_signed_in() {
    let app = TestApp::spawn().await;
    let b = app.signed_in(ADMIN_EMAIL).await;
    let cookie_client = b.client.clone();
    let app = app.restart().await;
    let resp = cookie_client
        .get(app.at("/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the session survived the restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn password_tokens_carry_the_claims_agnes_cli_decodes() {
    let app = TestApp::spawn().await;
    let resp = app
        .api()
        .post(
            "/auth/token",
            json!({"email": ADMIN_EMAIL, "password": PASSWORD}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["email"], ADMIN_EMAIL);
    let token = body["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    for k in ["sub", "email", "typ", "iat", "jti", "exp", "scope"] {
        assert!(!claims[k].is_null(), "claim {k}");
    }
    assert_eq!(claims["typ"], "pat");
    assert_eq!(claims["scope"], "admin");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        24 * 3600
    );
    // It works, and only its hash is stored.
    let mut api = app.api();
    api.token = Some(token.to_string());
    assert_eq!(api.get("/api/admin/users").await.status(), StatusCode::OK);
    let leaked = app
        .query_i64(&format!(
            "SELECT count(*) FROM personal_access_tokens WHERE token_hash = '{token}'"
        ))
        .await;
    assert_eq!(leaked, 0);
    // Token requests are `cli`; cookie ones `web`.
    let kinds = app
        .query_i64(
            "SELECT count(*) FROM audit_log WHERE action = 'token.create' AND client_kind = 'cli'",
        )
        .await;
    assert_eq!(kinds, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_revoked_forged_and_garbage_tokens_get_401_with_a_reason() {
    let app = TestApp::spawn().await;
    let admin = app.user_by_email(ADMIN_EMAIL).await.unwrap();
    let secret = app.state.auth.secret().to_vec();
    // Expired: signed correctly, stored, but past its exp.
    let expired = {
        let (s, a) = (secret.clone(), admin.clone());
        app.state
            .db
            .run(move |c| {
                let t = glassbox::accounts::issue_token(c, &s, &a, "old", "pat", chrono::Duration::days(1), None)?;
                c.execute("UPDATE personal_access_tokens SET expires_at = now()::TIMESTAMP - INTERVAL 1 HOUR WHERE id = ?", [&t.row.id])?;
                let mut claims = glassbox::auth::jwt::verify(&s, &t.token, 0).unwrap();
                claims.exp = chrono::Utc::now().timestamp() - 10;
                let token = glassbox::auth::jwt::sign(&s, &claims);
                c.execute(
                    "UPDATE personal_access_tokens SET token_hash = ? WHERE id = ?",
                    [glassbox::auth::token_hash(&token), t.row.id.clone()],
                )?;
                Ok(token)
            })
            .await
            .unwrap()
    };
    let mut api = app.api();
    api.token = Some(expired);
    assert_detail(
        api.get("/api/admin/users").await,
        StatusCode::UNAUTHORIZED,
        "expired",
    )
    .await;

    // Revoked: works, then fails at once after DELETE (the cache is invalidated).
    let mut api = app.api_as(Role::Admin).await;
    assert_eq!(api.get("/api/admin/users").await.status(), StatusCode::OK);
    let jti = {
        let payload = api
            .token
            .as_ref()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_string();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["jti"].as_str().unwrap().to_string()
    };
    let other = app.api_as(Role::Admin).await;
    let resp = other
        .call(Method::DELETE, &format!("/api/admin/tokens/{jti}"), None)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_detail(
        api.get("/api/admin/users").await,
        StatusCode::UNAUTHORIZED,
        "revoked",
    )
    .await;
    assert_eq!(app.audit_rows("token.revoke").await.len(), 1);

    // Forged with another key, and plain garbage.
    let forged = glassbox::auth::jwt::sign(
        b"another-secret-another-secret-xx",
        &glassbox::auth::jwt::Claims {
            sub: admin.id.clone(),
            email: admin.email.clone(),
            typ: "pat".into(),
            iat: 0,
            jti: "made-up".into(),
            exp: i64::MAX / 2,
            scope: "admin".into(),
        },
    );
    for bad in [forged.as_str(), "garbage", ""] {
        api.token = Some(bad.to_string());
        let resp = api.get("/api/admin/users").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivation_and_demotion_take_effect_at_once_on_sessions_and_tokens() {
    let app = TestApp::spawn().await;
    let second = app
        .create_user("second-admin@example.com", Role::Admin)
        .await;
    let session = app.signed_in("second-admin@example.com").await;
    let mut token_api = app.api();
    token_api.token = Some(app.token_for("second-admin@example.com").await);
    assert_eq!(
        token_api.get("/api/admin/users").await.status(),
        StatusCode::OK
    );
    assert_eq!(session.get("/admin/users").await.status(), StatusCode::OK);

    let root = app.api_as(Role::Admin).await;
    // Demote: admin rights go at once, though the token's scope still says admin.
    let resp = root
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{}", second.id),
            Some(json!({"role": "analyst"})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_detail(
        token_api.get("/api/admin/users").await,
        StatusCode::FORBIDDEN,
        "Admin access required",
    )
    .await;
    assert_eq!(
        token_api.get("/api/me/tokens").await.status(),
        StatusCode::OK
    );

    // Deactivate: the token stops, and the live browser session is ended.
    let resp = root
        .call(
            Method::PATCH,
            &format!("/api/admin/users/{}", second.id),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_detail(
        token_api.get("/api/me/tokens").await,
        StatusCode::UNAUTHORIZED,
        "deactivated",
    )
    .await;
    let page = session.get("/me").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let resp = session.get("/api/me/tokens").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // And they cannot sign in again.
    let mut b = app.browser();
    let resp = b.login("second-admin@example.com", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.text().await.unwrap().contains("deactivated"));
    let before = app.audit_rows("user.update").await;
    assert_eq!(before.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_accounts_cannot_sign_in() {
    let app = TestApp::spawn().await;
    app.create_user("bot@example.com", Role::Service).await;
    let resp = app.browser().login("bot@example.com", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .api()
        .post(
            "/auth/token",
            json!({"email": "bot@example.com", "password": PASSWORD}),
        )
        .await;
    assert_detail(resp, StatusCode::UNAUTHORIZED, "Wrong email or password").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_use_is_recorded_in_batches() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    api.get("/api/admin/users").await;
    let before = app
        .query_i64("SELECT count(*) FROM personal_access_tokens WHERE last_used_at IS NOT NULL")
        .await;
    assert_eq!(before, 0, "not written on every request");
    let flushed = app.state.auth.flush_last_used(&app.state.db).await.unwrap();
    assert_eq!(flushed, 1);
    let after = app
        .query_i64("SELECT count(*) FROM personal_access_tokens WHERE last_used_at IS NOT NULL")
        .await;
    assert_eq!(after, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_and_bad_fields_get_422_naming_the_problem() {
    let app = TestApp::spawn().await;
    let api = app.api_as(Role::Admin).await;
    let resp = api
        .client
        .post(app.at("/api/admin/users"))
        .bearer_auth(api.token.as_ref().unwrap())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "malformed JSON").await;
    let resp = api
        .post(
            "/api/admin/users",
            json!({"email": "x@example.com", "role": "wizard"}),
        )
        .await;
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "role").await;
    let resp = api
        .post("/api/admin/users", json!({"email": "not-an-email"}))
        .await;
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "email").await;
    let resp = api
        .post("/api/me/tokens", json!({"name": "x", "days": 99999}))
        .await;
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "days").await;
    let resp = api.post("/api/me/tokens", json!({"name": ""})).await;
    assert_detail(resp, StatusCode::UNPROCESSABLE_ENTITY, "name").await;
}
