//! The root and Agnes's old addresses (308 redirects).

use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::app::AppState;
use crate::auth::MaybeUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route(
            "/activity-center",
            get(|uri: Uri| async move { moved(&uri, "/admin/activity", "") }),
        )
        .route(
            "/admin/scheduler-runs",
            get(|uri: Uri| async move { moved(&uri, "/admin/activity", "source=scheduler") }),
        )
        .route(
            "/admin/usage",
            get(|uri: Uri| async move { moved(&uri, "/admin/telemetry", "") }),
        )
}

/// A 308 to an old address's new home that keeps the query string of a
/// bookmarked link after the new address's own parameters, which win: a
/// repeated key would make the new page refuse the link.
fn moved(uri: &Uri, to: &str, fixed: &str) -> Redirect {
    let fixed_keys: Vec<&str> = fixed
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .filter(|k| !k.is_empty())
        .collect();
    let kept = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| !fixed_keys.contains(&kv.split('=').next().unwrap_or("")));
    let query: Vec<&str> = std::iter::once(fixed)
        .filter(|q| !q.is_empty())
        .chain(kept)
        .collect();
    if query.is_empty() {
        Redirect::permanent(to)
    } else {
        Redirect::permanent(&format!("{to}?{}", query.join("&")))
    }
}

async fn root(MaybeUser(user): MaybeUser) -> Response {
    match user {
        Some(p) => Redirect::to(super::auth::landing(&p.user)).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}
