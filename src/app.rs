//! Application state, start-up and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditEvent, AuditState};
use crate::auth::AuthState;
use crate::config::Config;
use crate::db::{Db, DbOptions};
use crate::metrics::Metrics;
use crate::templates::Templates;

/// Everything a handler or job can reach. Cheap to clone: one reference
/// count (every middleware layer and handler takes its own clone per
/// request, so a clone of each field was measurable on the intake path).
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct AppStateInner {
    pub db: Db,
    pub config: Arc<Config>,
    pub templates: Templates,
    pub auth: Arc<AuthState>,
    pub metrics: Arc<Metrics>,
    /// The Audit log's caches: read suppression, the health pulse, producer intake.
    pub audit_state: Arc<AuditState>,
    /// Background work (scheduler job bodies, post-response writes) that shutdown waits for.
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
    /// Model prices for cost (embedded, overridden by GLASSBOX_PRICES_FILE).
    pub prices: Arc<crate::ingest::pricing::Prices>,
    /// One processor run at a time (scheduled, on demand, reprocess).
    pub ingest_lock: Arc<tokio::sync::Mutex<()>>,
    /// The usage API's event queue and its one writer.
    pub usage: Arc<crate::usage_api::Intake>,
    /// Telegram notifications of new feedback (disabled without a bot token).
    pub telegram: Arc<crate::feedback::notify::Telegram>,
}

impl AppState {
    /// Opens the database, loads the signing key and bootstraps the first admin.
    pub fn open(config: Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("while creating the data dir {}", config.data_dir.display())
        })?;
        let db = Db::open(
            &config.db_path(),
            &DbOptions {
                memory_limit: config.duckdb_memory_limit.clone(),
                threads: config.duckdb_threads,
                ..DbOptions::default()
            },
        )?;
        let secret =
            crate::auth::load_or_create_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
        let prices = crate::ingest::pricing::Prices::load(config.prices_file.as_deref())?;
        let metrics = Arc::new(Metrics::default());
        let usage = Arc::new(crate::usage_api::Intake::new(
            config.usage_queue_capacity,
            metrics.clone(),
        ));
        let telegram = Arc::new(crate::feedback::notify::Telegram::from_config(&config));
        let state = AppState(Arc::new(AppStateInner {
            usage,
            db,
            config: Arc::new(config),
            templates: Templates::new(),
            auth: Arc::new(AuthState::new(secret)),
            metrics,
            audit_state: Arc::new(AuditState::default()),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            prices: Arc::new(prices),
            ingest_lock: Arc::new(tokio::sync::Mutex::new(())),
            telegram,
        }));
        state.bootstrap_admin()?;
        Ok(state)
    }

    /// Creates `GLASSBOX_ADMIN_EMAIL` as an admin when the database has no users.
    fn bootstrap_admin(&self) -> anyhow::Result<()> {
        let (Some(email), Some(password)) = (&self.config.admin_email, &self.config.admin_password)
        else {
            return Ok(());
        };
        let conn = self.db.connect()?;
        if crate::repo::users::count(&conn)? > 0 {
            return Ok(());
        }
        let user = crate::accounts::create_user(
            &conn,
            crate::accounts::CreateUser {
                email: email.clone(),
                name: Some("Administrator".into()),
                password: Some(password.clone()),
                role: crate::auth::Role::Admin,
            },
        )
        .map_err(|e| {
            anyhow::anyhow!("GLASSBOX_ADMIN_EMAIL: could not create the bootstrap admin: {e}")
        })?;
        crate::repo::audit::log(
            &conn,
            &AuditEvent::new("user.create")
                .resource(format!("user:{}", user.id))
                .params(
                    serde_json::json!({"email": user.email, "role": "admin", "bootstrap": true}),
                )
                .success()
                .client_kind("system"),
        )?;
        tracing::info!(email = %user.email, "created the bootstrap admin");
        Ok(())
    }

    /// Writes an audit row. A failure is logged and never fails the caller: the
    /// request that caused it has already done its work.
    pub async fn audit(&self, event: AuditEvent) {
        let action = event.action.clone();
        if let Err(e) = self
            .db
            .run(move |c| crate::repo::audit::log(c, &event))
            .await
        {
            tracing::error!(error = ?e, %action, "could not write an audit row");
        }
    }
}

/// Binds, serves until SIGTERM/ctrl-c, then stops cleanly: stop accepting,
/// finish in-flight requests, stop the scheduler, wait for running jobs, flush.
/// `ready` is printed once the signal handlers and the scheduler are in place,
/// so a SIGTERM sent on seeing it always gets a graceful stop.
pub async fn serve(state: AppState, listener: TcpListener, ready: &str) -> anyhow::Result<()> {
    let signals = Signals::register()?;
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        signals.wait().await;
        shutdown.cancel();
    });
    let scheduler = crate::scheduler::start(state.clone()).await?;
    let flusher = spawn_last_used_flusher(state.clone());
    start_usage_writer(&state);
    let router = crate::web::router(state.clone());
    println!("{ready}");
    let token = state.shutdown.clone();
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { token.cancelled().await })
    .await
    .context("while serving HTTP")?;
    tracing::info!("HTTP stopped; stopping the scheduler and waiting for running jobs");
    scheduler.stop().await;
    flusher.abort();
    state.usage.shutdown().await;
    state.tracker.close();
    if tokio::time::timeout(Duration::from_secs(60), state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some background jobs were still running after 60 s");
    }
    if let Err(e) = state.auth.flush_last_used(&state.db).await {
        tracing::warn!(error = ?e, "could not flush token last-used times");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves the router (without scheduler) on a free loopback port until
/// `state.shutdown` is cancelled: for tests, benchmarks and the oracle check.
/// Returns the base URL and the server task.
pub async fn serve_on_loopback(
    state: &AppState,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = crate::web::router(state.clone());
    let stop = state.shutdown.clone();
    start_usage_writer(state);
    let usage = state.usage.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(e) = served {
            tracing::error!(error = ?e, "loopback server failed");
        }
        usage.shutdown().await;
    });
    Ok((url, task))
}

/// The usage intake's writer, and its PostHog forwarder when configured.
fn start_usage_writer(state: &AppState) {
    let forwarder =
        crate::usage_api::posthog::Forwarder::from_config(&state.config, state.metrics.clone());
    state.usage.start(state.db.clone(), forwarder);
}

/// `last_used_at` is buffered in memory and written every 30 s (SPEC §1).
fn spawn_last_used_flusher(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            if let Err(e) = state.auth.flush_last_used(&state.db).await {
                tracing::warn!(error = ?e, "could not flush token last-used times");
            }
        }
    })
}

/// SIGTERM and ctrl-c, registered eagerly (a handler installed later would
/// leave a window where SIGTERM kills the process outright).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> anyhow::Result<Signals> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            self.term.recv().await;
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
        tracing::info!("shutdown signal received");
    }
}
