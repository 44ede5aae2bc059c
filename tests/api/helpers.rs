//! `TestApp`: a real server on a loopback port with a fresh temp data dir and a
//! real DuckDB file, plus HTTP helpers that behave like a browser or the CLI.

use std::sync::OnceLock;

use glassbox::auth::Role;
use glassbox::{AppState, Config};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "correct-horse-9";

pub struct TestApp {
    pub url: String,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    server: Option<tokio::task::JoinHandle<()>>,
}

async fn start(config: Config) -> (String, AppState, tokio::task::JoinHandle<()>) {
    let state = AppState::open(config).expect("open app state");
    let (url, server) = glassbox::app::serve_on_loopback(&state).await.unwrap();
    (url, state, server)
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            glassbox::logging::init(glassbox::config::LogFormat::Text);
        }
    });
}

impl TestApp {
    /// A server with the bootstrap admin `ADMIN_EMAIL` / `PASSWORD`.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_data_dir(dir.path());
        config.admin_email = Some(ADMIN_EMAIL.into());
        config.admin_password = Some(PASSWORD.into());
        config.duckdb_memory_limit = "512MB".into();
        config.duckdb_threads = 2;
        tweak(&mut config);
        let (url, state, server) = start(config).await;
        TestApp {
            url,
            state,
            dir,
            server: Some(server),
        }
    }

    /// Stops the server (as SIGTERM would), closes the database, and starts a
    /// new server on the same data dir.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            state, dir, server, ..
        } = self;
        let config = (*state.config).clone();
        state.shutdown.cancel();
        if let Some(s) = server {
            s.await.unwrap();
        }
        drop(state);
        let (url, state, server) = start(config).await;
        TestApp {
            url,
            state,
            dir,
            server: Some(server),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// A client that keeps cookies and never follows redirects (so tests see them).
    pub fn browser(&self) -> Browser {
        Browser {
            client: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.url.clone(),
            csrf: None,
        }
    }

    /// A cookie-less client for token and anonymous API calls.
    pub fn api(&self) -> Api {
        Api {
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.url.clone(),
            token: None,
        }
    }

    /// Creates a user directly (as the admin API would).
    pub async fn create_user(&self, email: &str, role: Role) -> glassbox::repo::users::User {
        let email = email.to_string();
        let password = (role != Role::Service).then(|| PASSWORD.to_string());
        self.state
            .db
            .run(move |c| {
                Ok(glassbox::accounts::create_user(
                    c,
                    glassbox::accounts::CreateUser {
                        email,
                        name: None,
                        password,
                        role,
                    },
                )?)
            })
            .await
            .unwrap()
    }

    /// A fresh token for a user (by email), as `glassbox token create` makes.
    pub async fn token_for(&self, email: &str) -> String {
        let email = email.to_string();
        let secret = self.state.auth.secret().to_vec();
        self.state
            .db
            .run(move |c| {
                let u = glassbox::repo::users::by_email(c, &email)?.expect("user exists");
                Ok(glassbox::accounts::issue_token(
                    c,
                    &secret,
                    &u,
                    "test",
                    "pat",
                    chrono::Duration::days(1),
                    None,
                )?
                .token)
            })
            .await
            .unwrap()
    }

    /// An API client authenticated with a token of a new user of `role`
    /// (or of the bootstrap admin for `Role::Admin`).
    pub async fn api_as(&self, role: Role) -> Api {
        let email = match role {
            Role::Admin => ADMIN_EMAIL.to_string(),
            Role::Analyst => "analyst@example.com".to_string(),
            Role::Service => "service@example.com".to_string(),
        };
        if role != Role::Admin && self.user_by_email(&email).await.is_none() {
            self.create_user(&email, role).await;
        }
        let token = self.token_for(&email).await;
        let mut api = self.api();
        api.token = Some(token);
        api
    }

    pub async fn user_by_email(&self, email: &str) -> Option<glassbox::repo::users::User> {
        let email = email.to_string();
        self.state
            .db
            .run(move |c| glassbox::repo::users::by_email(c, &email))
            .await
            .unwrap()
    }

    /// A browser signed in as `email` with the shared test password.
    pub async fn signed_in(&self, email: &str) -> Browser {
        let mut b = self.browser();
        let resp = b.login(email, PASSWORD).await;
        assert_eq!(
            resp.status(),
            StatusCode::SEE_OTHER,
            "sign-in of {email} failed"
        );
        b.refresh_csrf("/me").await;
        b
    }

    /// Audit rows of one action: (user_id, resource, result), newest first.
    pub async fn audit_rows(
        &self,
        action: &str,
    ) -> Vec<(Option<String>, Option<String>, Option<String>)> {
        let action = action.to_string();
        self.state
            .db
            .run(move |c| glassbox::repo::audit::recent_actions(c, &action, 1000))
            .await
            .unwrap()
    }

    /// Synthetic telemetry (`synth_usage::make_usage`) for the analyst and a
    /// new analyst per name in `others` (`NAME@example.com`).
    pub async fn add_usage(&self, others: &[&str], events: u64, sessions: u64, days: u32) {
        let me = match self.user_by_email("analyst@example.com").await {
            Some(u) => u,
            None => self.create_user("analyst@example.com", Role::Analyst).await,
        };
        let mut people = vec![(me.id, me.email)];
        for n in others {
            let u = self
                .create_user(&format!("{n}@example.com"), Role::Analyst)
                .await;
            people.push((u.id, u.email));
        }
        self.state
            .db
            .run(move |c| {
                glassbox::synth_usage::make_usage(c, &people, events, sessions, days)?;
                Ok(())
            })
            .await
            .unwrap();
    }

    pub async fn query_i64(&self, sql: &str) -> i64 {
        let sql = sql.to_string();
        self.state
            .db
            .run(move |c| Ok(c.query_row(&sql, [], |r| r.get::<_, i64>(0))?))
            .await
            .unwrap()
    }
}

pub struct Browser {
    pub client: Client,
    pub base: String,
    pub csrf: Option<String>,
}

/// The value of `<meta name="csrf-token">` or the login form's hidden field.
pub fn csrf_from(html: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let meta = scraper::Selector::parse(r#"meta[name="csrf-token"]"#).unwrap();
    let field = scraper::Selector::parse(r#"input[name="csrf_token"]"#).unwrap();
    doc.select(&meta)
        .next()
        .and_then(|m| m.value().attr("content"))
        .or_else(|| {
            doc.select(&field)
                .next()
                .and_then(|m| m.value().attr("value"))
        })
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Browser {
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap()
    }

    pub async fn htmx_get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .header("HX-Request", "true")
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&mut self, email: &str, password: &str) -> Response {
        let page = self.get("/login").await.text().await.unwrap();
        let csrf = csrf_from(&page).expect("login page has a CSRF token");
        self.client
            .post(format!("{}/login", self.base))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Reads the CSRF token from a page, as the browser would.
    pub async fn refresh_csrf(&mut self, path: &str) {
        let html = self.get(path).await.text().await.unwrap();
        self.csrf = csrf_from(&html);
    }

    /// An htmx-style form POST with the CSRF header.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("HX-Request", "true")
            .form(form);
        if let Some(t) = &self.csrf {
            req = req.header("X-CSRF-Token", t);
        }
        req.send().await.unwrap()
    }

    /// A JSON request with the cookie (and CSRF header when `with_csrf`).
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        with_csrf: bool,
    ) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if with_csrf {
            if let Some(t) = &self.csrf {
                req = req.header("X-CSRF-Token", t);
            }
        }
        req.send().await.unwrap()
    }
}

pub struct Api {
    pub client: Client,
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

/// Asserts an API error: the status and a `{"detail"}` containing `needle`.
pub async fn assert_detail(resp: Response, status: StatusCode, needle: &str) {
    assert_eq!(resp.status(), status);
    assert!(
        resp.headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json")),
        "errors are JSON"
    );
    let body: Value = resp.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(needle),
        "detail {detail:?} should mention {needle:?}"
    );
}
