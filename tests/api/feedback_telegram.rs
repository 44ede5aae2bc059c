//! Telegram notifications of new feedback, against a stub of the Bot API on
//! loopback: linking a chat, the message, retries, the 5-minute window and
//! the digest (with a controllable clock).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use chrono::NaiveDateTime;
use glassbox::auth::Role;
use glassbox::feedback::notify::{Summary, Telegram};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{csrf_from, TestApp, ADMIN_EMAIL};

#[derive(Default)]
struct Stub {
    /// sendMessage bodies received (including refused ones).
    sent: Vec<Value>,
    /// How many sendMessage calls to refuse with a 502 first.
    fail_first: usize,
    /// The text of the one update getUpdates returns.
    update_text: Option<String>,
}

type Shared = Arc<Mutex<Stub>>;

async fn stub(s: Shared) -> String {
    async fn call(
        State(s): State<Shared>,
        Path((_bot, method)): Path<(String, String)>,
        body: Option<Json<Value>>,
    ) -> (StatusCode, Json<Value>) {
        let mut st = s.lock().unwrap();
        match method.as_str() {
            "sendMessage" => {
                st.sent.push(body.map(|b| b.0).unwrap_or_default());
                if st.fail_first > 0 {
                    st.fail_first -= 1;
                    return (StatusCode::BAD_GATEWAY, Json(json!({"ok": false})));
                }
                (StatusCode::OK, Json(json!({"ok": true})))
            }
            _ => {
                let result = match &st.update_text {
                    Some(t) => {
                        json!([{"update_id": 1, "message": {"text": t, "chat": {"id": 4242}}}])
                    }
                    None => json!([]),
                };
                (StatusCode::OK, Json(json!({"ok": true, "result": result})))
            }
        }
    }
    let app = axum::Router::new()
        .route("/{bot}/{method}", axum::routing::any(call))
        .with_state(s);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn summary(id: &str) -> Summary {
    Summary {
        id: id.into(),
        reporter: "ann@example.com".into(),
        first_line: format!("problem {id}"),
        duplicates: 1,
        link: format!("https://gb.example/admin/feedback/{id}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_message_per_admin_per_five_minutes_and_a_digest_when_the_window_ends() {
    let s: Shared = Arc::default();
    let base = stub(s.clone()).await;
    let start = chrono::DateTime::from_timestamp(1_700_000_000, 0)
        .unwrap()
        .naive_utc();
    let now: Arc<Mutex<NaiveDateTime>> = Arc::new(Mutex::new(start));
    let clock = {
        let now = now.clone();
        Arc::new(move || *now.lock().unwrap())
    };
    let t = Telegram::new(Some("T0K".into()), Some(base), clock);
    let chats = vec!["7".to_string()];
    let advance = |m: i64| *now.lock().unwrap() += chrono::Duration::minutes(m);

    for m in t.plan(&chats, &summary("a")) {
        assert!(t.deliver(&m).await);
    }
    advance(1);
    assert!(t.plan(&chats, &summary("b")).is_empty());
    advance(2);
    assert!(t.plan(&chats, &summary("c")).is_empty());
    assert!(t.flush_due().is_empty(), "still inside the window");
    advance(2);
    for m in t.flush_due() {
        assert!(t.deliver(&m).await);
    }
    let sent = s.lock().unwrap().sent.clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["chat_id"], "7");
    let first = sent[0]["text"].as_str().unwrap();
    assert!(
        first.contains("ann@example.com")
            && first.contains("problem a")
            && first.contains("Duplicates: 1")
    );
    assert!(first.contains("https://gb.example/admin/feedback/a"));
    let digest = sent[1]["text"].as_str().unwrap();
    assert!(
        digest.starts_with("2 more feedback reports")
            && digest.contains("problem b")
            && digest.contains("problem c")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_message_is_retried_with_backoff() {
    let s: Shared = Arc::new(Mutex::new(Stub {
        fail_first: 2,
        ..Stub::default()
    }));
    let base = stub(s.clone()).await;
    let mut t = Telegram::new(
        Some("T0K".into()),
        Some(base),
        Arc::new(|| chrono::Utc::now().naive_utc()),
    );
    t.backoff = vec![Duration::from_millis(10), Duration::from_millis(20)];
    let m = t.plan(&["1".to_string()], &summary("a")).remove(0);
    assert!(t.deliver(&m).await);
    assert_eq!(s.lock().unwrap().sent.len(), 3);
    // Always refused: given up after the last attempt, without panicking.
    s.lock().unwrap().fail_first = 10;
    assert!(!t.deliver(&m).await);
}

async fn until_sent(s: &Shared, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let sent = s.lock().unwrap().sent.clone();
        if sent.len() >= n {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the stub never received {n} messages");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_links_a_chat_by_code_and_a_new_report_reaches_it() {
    let s: Shared = Arc::default();
    let base = stub(s.clone()).await;
    let app = TestApp::spawn_with(|c| {
        c.telegram_bot_token = Some("T0K".into());
        c.telegram_api_base = Some(base.clone());
        c.public_url = Some("https://gb.example".into());
    })
    .await;
    let admin = app.signed_in(ADMIN_EMAIL).await;
    let me = admin.get("/me").await.text().await.unwrap();
    assert!(me.contains("telegram-link"));
    admin.post_form("/me/telegram/code", &[]).await;
    let page = admin.get("/me/telegram").await.text().await.unwrap();
    let doc = scraper::Html::parse_document(&page);
    let code = doc
        .select(&scraper::Selector::parse("#telegram-code").unwrap())
        .next()
        .unwrap()
        .text()
        .collect::<String>();
    assert!(csrf_from(&page).is_some());
    s.lock().unwrap().update_text = Some(format!("/start {code}"));
    admin.post_form("/me/telegram/check", &[]).await;
    let page = admin.get("/me/telegram").await.text().await.unwrap();
    assert!(page.contains("4242"), "the chat is linked");
    assert_eq!(
        admin
            .post_form("/me/telegram/chat", &[("chat_id", "not-a-number")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert!(!app.audit_rows("telegram.link").await.is_empty());

    let analyst = app.api_as(Role::Analyst).await;
    let resp = analyst
        .post(
            "/api/feedback",
            json!({"message": "Charts are empty\nsince this morning"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sent = until_sent(&s, 1).await;
    assert_eq!(sent[0]["chat_id"], "4242");
    let text = sent[0]["text"].as_str().unwrap();
    assert!(
        text.contains("analyst@example.com")
            && text.contains("Charts are empty")
            && !text.contains("since this morning")
    );
    assert!(text.contains(&format!("https://gb.example/admin/feedback/{id}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_bot_token_linking_is_hidden() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in(ADMIN_EMAIL).await;
    assert!(!admin
        .get("/me")
        .await
        .text()
        .await
        .unwrap()
        .contains("telegram-link"));
    assert_eq!(
        admin.get("/me/telegram").await.status(),
        StatusCode::NOT_FOUND
    );
    let analyst = app.api_as(Role::Analyst).await;
    assert_eq!(
        analyst
            .post("/api/feedback", json!({"message": "m"}))
            .await
            .status(),
        StatusCode::CREATED
    );
}
