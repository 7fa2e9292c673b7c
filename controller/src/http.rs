//! The HTTP API: liveness and readiness, `/metrics`, the read-only status and events API that
//! `memectl` reads, the token-protected mutations (reconcile, suspend, resume) and push
//! webhooks. Every answer comes from memory: no request calls Docker or git. Every request
//! passes the `Host` check ([`host`]) and has [`REQUEST_TIMEOUT`] to finish; connections are
//! bounded by [`server`]; fetches asked for here go through [`fetches`].

pub mod fetches;
pub mod host;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::mpsc;

use crate::context::Context;
use crate::runtime::Signal;
use fetches::FetchRequests;
use host::AllowedHosts;

/// How long one request may take, its body included (a webhook sender trickling its body
/// holds a connection no longer than this). Answers come from memory in microseconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers share.
pub struct Api {
    /// The controller's state.
    pub ctx: Arc<Context>,
    /// The bearer token mutations need; `None` refuses them all.
    pub token: Option<String>,
    /// Wakes the controller loop.
    pub signals: mpsc::Sender<Signal>,
    /// Asks the source to fetch now (coalesced and rate-limited).
    pub fetches: FetchRequests,
    /// The webhook secret; `None` refuses webhooks.
    pub webhook_secret: Option<Vec<u8>>,
    /// The branch whose pushes matter (`refs/heads/main`), when known.
    pub followed_ref: Option<String>,
    /// The `Host` names served besides addresses and `localhost`.
    pub hosts: AllowedHosts,
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
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&api), guard))
        .with_state(api)
}

/// Refuses a `Host` that is not served (DNS rebinding), and bounds the request's duration.
async fn guard(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if !api.hosts.allows(host) {
        let host = host.unwrap_or_default().to_owned();
        tracing::debug!(%host, "request refused: Host not allowed");
        let error = format!(
            "Host {host:?} is not served: use an IP address or localhost, or start meme-controller with --allowed-hosts NAME"
        );
        return (StatusCode::FORBIDDEN, Json(json!({ "error": error }))).into_response();
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, Json(json!({"error": "request took too long"}))).into_response(),
    }
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
    // Known secret values are redacted whatever put them there (an engine error, a log tail).
    json_response(api.ctx.with_status(crate::redact::to_json))
}

async fn events(State(api): State<Arc<Api>>) -> Response {
    json_response(crate::redact::to_json(&api.ctx.events.list()))
}

fn json_response(body: serde_json::Result<Vec<u8>>) -> Response {
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn reconcile(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse(&api, &headers) {
        return refused;
    }
    api.fetches.request();
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
    let provider = match crate::auth::verify_webhook(secret, &body, header) {
        Ok(p) => p,
        Err(why) => {
            tracing::warn!(reason = why, "webhook refused");
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": why}))).into_response();
        }
    };
    let pushed = pushed_ref(&body);
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
    api.fetches.request();
    (StatusCode::ACCEPTED, Json(json!({"message": "fetch triggered"}))).into_response()
}

/// The ref a push event names (`refs/heads/main`), from the JSON body all three providers send.
fn pushed_ref(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("ref")?.as_str().map(str::to_owned)
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

/// Checks `Authorization: Bearer <token>`; the refusal, if any.
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
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let why = crate::auth::check_bearer(expected.as_bytes(), presented).err()?;
    Some(
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(json!({"error": why}))).into_response(),
    )
}
