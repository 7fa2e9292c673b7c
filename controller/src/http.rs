//! The HTTP listener: liveness and readiness, `/metrics`, the read-only status and events API
//! that `memectl` reads, and the token-protected mutations (reconcile, suspend, resume). Every
//! answer comes from memory: no request calls Docker or git.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::context::Context;
use crate::runtime::Signal;
use crate::source::Trigger;

/// What the handlers share.
pub struct Api {
    /// The controller's state.
    pub ctx: Arc<Context>,
    /// The bearer token mutations need; `None` refuses them all.
    pub token: Option<String>,
    /// Wakes the controller loop.
    pub signals: mpsc::Sender<Signal>,
    /// Asks the source to fetch or re-resolve the ref now.
    pub source_trigger: mpsc::Sender<Trigger>,
    /// The webhook secret; `None` refuses webhooks.
    pub webhook_secret: Option<Vec<u8>>,
    /// The branch whose pushes matter (`refs/heads/main`), when known.
    pub followed_ref: Option<String>,
}

/// The routes.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events))
        .route("/api/v1/reconcile", post(reconcile))
        .route("/api/v1/suspend", post(suspend))
        .route("/api/v1/resume", post(resume))
        .route("/api/v1/hooks/git", post(git_hook))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "no such endpoint"}))) })
        .with_state(api)
}

/// Serves until `shutdown` turns true.
///
/// # Errors
/// The server failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}

async fn readyz(State(api): State<Arc<Api>>) -> Response {
    let source_read = api.ctx.with_status(|s| s.source.tip.is_some());
    let engine = api.ctx.engine_answered();
    if source_read && engine {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = match (source_read, engine) {
            (false, false) => "source not read yet; docker engine not answering\n",
            (false, true) => "source not read yet\n",
            _ => "docker engine not answering\n",
        };
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

async fn metrics(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            api.ctx.metrics.openmetrics(),
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], api.ctx.metrics.prometheus_text())
            .into_response()
    }
}

async fn status(State(api): State<Arc<Api>>) -> Response {
    // Serialized straight from the shared status (no copy of it): readers do not block each other.
    match api.ctx.with_status(serde_json::to_vec) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn events(State(api): State<Arc<Api>>) -> Response {
    Json(api.ctx.events.list()).into_response()
}

async fn reconcile(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse(&api, &headers) {
        return refused;
    }
    let _ = api.source_trigger.try_send(Trigger::Fetch);
    let _ = api.signals.send(Signal::Reconcile).await;
    message("reconcile requested")
}

/// A push webhook: verified over the raw body, then a fetch now (pushes to other branches are
/// acknowledged and ignored).
async fn git_hook(State(api): State<Arc<Api>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Some(secret) = &api.webhook_secret else {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "webhooks are disabled: start meme-controller with --webhook-secret-file"})),
        )
            .into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let provider = match crate::webhook::verify(secret, &body, header) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(reason = why, "webhook refused");
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": why}))).into_response();
        }
    };
    let pushed = crate::webhook::pushed_ref(&body);
    if let (Some(pushed), Some(followed)) = (&pushed, &api.followed_ref)
        && pushed != followed
    {
        return (
            StatusCode::ACCEPTED,
            Json(json!({"message": format!("ignored: push to {pushed}; following {followed}")})),
        )
            .into_response();
    }
    tracing::info!(provider = ?provider, pushed = pushed.as_deref().unwrap_or("?"), "webhook: fetching now");
    let _ = api.source_trigger.try_send(Trigger::Fetch);
    (StatusCode::ACCEPTED, Json(json!({"message": "fetch triggered"}))).into_response()
}

async fn suspend(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse(&api, &headers) {
        return refused;
    }
    match api.ctx.set_suspended(true) {
        Ok(()) => message("reconciliation suspended"),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": format!("cannot record suspension: {e}")})))
            .into_response(),
    }
}

async fn resume(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse(&api, &headers) {
        return refused;
    }
    match api.ctx.set_suspended(false) {
        Ok(()) => {
            let _ = api.signals.send(Signal::Reconcile).await;
            message("reconciliation resumed")
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": format!("cannot record resumption: {e}")})))
            .into_response(),
    }
}

fn message(text: &str) -> Response {
    (StatusCode::OK, Json(json!({"message": text}))).into_response()
}

/// Checks `Authorization: Bearer <token>` in constant time; the refusal, if any.
fn refuse(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = &api.token else {
        return Some(
            (
                StatusCode::FORBIDDEN,
                Json(
                    json!({"error": "mutations are disabled: start meme-controller with --token-file to enable them"}),
                ),
            )
                .into_response(),
        );
    };
    let presented =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if constant_time_eq(token.trim().as_bytes(), expected.as_bytes()) => None,
        Some(_) => Some(unauthorized("invalid bearer token")),
        None => Some(unauthorized("missing Authorization: Bearer <token> header")),
    }
}

fn unauthorized(why: &str) -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(json!({"error": why}))).into_response()
}

/// Compares two byte strings in time that depends only on their lengths.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_should_compare_bytes() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
