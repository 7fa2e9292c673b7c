//! The client for meme-controller's HTTP API (`/api/v1/...`): plain HTTP/1.1 over hyper, a
//! connect and a request timeout, the bearer token for mutations, and errors that name the URL
//! and map to memectl's exit codes.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meme_api::status::{ControllerStatus, Event};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where the controller listens unless `--server`/`MEMECTL_SERVER` says otherwise (its
/// `--listen` default).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9797";

/// The status path.
pub const STATUS: &str = "/api/v1/status";
/// The events path.
pub const EVENTS: &str = "/api/v1/events";

/// The controller usually runs on this host: a TCP connect answers in milliseconds, so 3 s
/// only elapses for a firewalled or wrong address, and then the user should know quickly.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Every endpoint answers from memory (status, events) or only queues work (mutations), so a
/// response slower than this means the controller is stuck, not busy.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong talking to the controller.
#[derive(Debug)]
pub enum ApiError {
    /// No HTTP answer: refused, timed out, reset. Exit 2, with a hint.
    Unreachable {
        /// The URL requested.
        url: String,
        /// Why, from the transport's error chain.
        reason: String,
    },
    /// An HTTP answer other than 2xx.
    Status {
        /// `GET` or `POST`.
        method: Method,
        /// The URL requested.
        url: String,
        /// The status code.
        status: StatusCode,
        /// The server's `error` field, or its body.
        message: String,
    },
    /// A 2xx answer whose body is not what the API promises.
    Decode {
        /// The URL requested.
        url: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

impl ApiError {
    /// memectl's exit code for it: a refused mutation (4xx on POST) is a failed check (1);
    /// everything else means the command could not run (2).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Status { method, status, .. } if method == Method::POST && status.is_client_error() => 1,
            _ => 2,
        }
    }

    /// A line telling the user what to do about it.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Unreachable { .. } => Some(
                "is it running? start it with: meme-controller --repo DIR --path manifests/...; \
                 or point memectl at it with --server/MEMECTL_SERVER",
            ),
            Self::Status { status, .. } if *status == StatusCode::UNAUTHORIZED => {
                Some("pass the controller's token with --token-file FILE (MEMECTL_TOKEN_FILE) or MEMECTL_TOKEN")
            }
            Self::Status { status, .. } if *status == StatusCode::FORBIDDEN => {
                Some("the controller accepts mutations only when it was started with --token-file")
            }
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { url, reason } => write!(f, "cannot reach meme-controller at {url}: {reason}"),
            Self::Status { method, url, status, message } if method == Method::POST => {
                write!(f, "meme-controller refused {method} {url}: {status}: {message}")
            }
            Self::Status { method, url, status, message } => write!(f, "{method} {url}: {status}: {message}"),
            Self::Decode { url, source } => write!(f, "unexpected answer from {url}: {source}"),
        }
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Decode { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `{"message": ...}`, the body of a successful mutation.
#[derive(Deserialize)]
struct MessageBody {
    message: String,
}

/// `{"error": ...}`, the body of a refusal.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// A client for one controller.
#[derive(Clone, Debug)]
pub struct Client {
    /// `http://host:port`, no trailing slash.
    base: String,
    /// Bearer token for mutations.
    token: Option<String>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    /// A client for the controller at `server` (`http://host:port`; a bare `host:port` is taken
    /// as http). Only plain http is supported: the API listens on loopback.
    ///
    /// # Errors
    /// `server` is not an `http://` URL with a host.
    pub fn new(server: &str) -> anyhow::Result<Self> {
        let server = server.trim();
        let text = if server.contains("://") { server.to_owned() } else { format!("http://{server}") };
        let uri: Uri = text.parse().map_err(|e| anyhow::anyhow!("invalid --server {server:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("invalid --server {server:?}: only plain http:// is supported");
        }
        let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
            anyhow::bail!("invalid --server {server:?}: no host");
        };
        let base = format!("http://{authority}{}", uri.path().trim_end_matches('/'));
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        // No pooling: memectl makes a handful of requests, and a pooled connection the server
        // has just closed would turn into a spurious error between two `wait` polls.
        let http = HyperClient::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(connector);
        Ok(Self { base, token: None, http })
    }

    /// The same client, sending `token` as `Authorization: Bearer` on mutations.
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The full URL of an API path.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /api/v1/status`.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn status(&self) -> Result<ControllerStatus, ApiError> {
        self.get_json(STATUS).await
    }

    /// `GET /api/v1/events`, oldest first.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn events(&self) -> Result<Vec<Event>, ApiError> {
        self.get_json(EVENTS).await
    }

    /// GETs `path` and decodes its JSON.
    ///
    /// # Errors
    /// See [`ApiError`].
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let url = self.url(path);
        let body = self.send(Method::GET, &url).await?;
        serde_json::from_slice(&body).map_err(|source| ApiError::Decode { url, source })
    }

    /// POSTs to a mutation endpoint with the bearer token, returning the server's message.
    ///
    /// # Errors
    /// See [`ApiError`]; a 401 or 403 is [`ApiError::Status`].
    pub async fn post(&self, path: &str) -> Result<String, ApiError> {
        let url = self.url(path);
        let body = self.send(Method::POST, &url).await?;
        Ok(match serde_json::from_slice::<MessageBody>(&body) {
            Ok(body) => body.message,
            Err(_) => String::from_utf8_lossy(&body).trim().to_owned(),
        })
    }

    /// Sends one request and returns the body of a 2xx answer.
    async fn send(&self, method: Method, url: &str) -> Result<Bytes, ApiError> {
        let unreachable = |reason: String| ApiError::Unreachable { url: url.to_owned(), reason };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, concat!("memectl/", env!("CARGO_PKG_VERSION")));
        if method == Method::POST
            && let Some(token) = &self.token
        {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::new())).map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| unreachable(reason(&e)))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| unreachable(reason(&e)))?.to_bytes();
            Ok::<_, ApiError>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())))??;
        if status.is_success() {
            return Ok(body);
        }
        let message = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(body) => body.error,
            Err(_) => String::from_utf8_lossy(&body).trim().to_owned(),
        };
        Err(ApiError::Status { method, url: url.to_owned(), status, message })
    }
}

/// The useful part of a transport error: its causes below hyper's "client error (Connect)",
/// e.g. `tcp connect error: Connection refused (os error 111)`.
fn reason(error: &(dyn StdError + 'static)) -> String {
    let mut causes = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    if causes.is_empty() { error.to_string() } else { causes.join(": ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_should_accept_only_plain_http_servers() {
        assert_eq!(
            Client::new("http://127.0.0.1:9797/").map(|c| c.url(STATUS)).ok().as_deref(),
            Some("http://127.0.0.1:9797/api/v1/status")
        );
        assert_eq!(
            Client::new("localhost:1234").map(|c| c.url(EVENTS)).ok().as_deref(),
            Some("http://localhost:1234/api/v1/events")
        );
        let err = Client::new("https://example.org").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("only plain http://"), "{err}");
        assert!(Client::new("http://").is_err());
    }

    #[test]
    fn api_errors_should_map_to_exit_codes_and_hints() {
        let refused = ApiError::Status {
            method: Method::POST,
            url: "http://x/api/v1/reconcile".into(),
            status: StatusCode::UNAUTHORIZED,
            message: "invalid token".into(),
        };
        assert_eq!(refused.exit_code(), 1);
        assert!(refused.hint().is_some_and(|h| h.contains("--token-file")));
        assert_eq!(
            refused.to_string(),
            "meme-controller refused POST http://x/api/v1/reconcile: 401 Unauthorized: invalid token"
        );
        let unreachable = ApiError::Unreachable { url: "http://x/api/v1/status".into(), reason: "refused".into() };
        assert_eq!(unreachable.exit_code(), 2);
        assert_eq!(unreachable.to_string(), "cannot reach meme-controller at http://x/api/v1/status: refused");
        let broken = ApiError::Status {
            method: Method::GET,
            url: "http://x/api/v1/status".into(),
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "starting".into(),
        };
        assert_eq!(broken.exit_code(), 2);
    }
}
