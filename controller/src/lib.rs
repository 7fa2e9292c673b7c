//! meme-controller: a GitOps controller for one Docker host.
//!
//! # Layout
//! - [`source`]: the manifests committed at a git ref, loaded and validated per revision.
//! - [`reconcile`]: one service at a time: observe, plan (pure), apply; status and events.
//! - [`runtime`]: the controller loop, its work queue, backoff, and the Docker event watcher.
//! - [`docker`]: the engine behind one narrow trait; bollard is the only socket client.
//! - [`http`], [`auth`] and [`metrics`]: the API memectl reads and push webhooks reach, who may
//!   call it, and Prometheus metrics.
//! - [`ownership`]: which controller may change a stack (identity, leases) and a renamed
//!   Stack's old containers.
//! - [`context`], [`events`], [`telemetry`], [`redact`], [`fds`], [`args`]: shared state, the
//!   events ring, logging, secret values kept out of every output, file descriptors, and the
//!   wiring of the binary; [`notify`]: systemd readiness and watchdog.

pub mod args;
pub mod auth;
pub mod context;
pub mod docker;
pub mod events;
pub mod fds;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod ownership;
pub mod reconcile;
pub mod redact;
pub mod runtime;
pub mod source;
pub mod telemetry;

/// The version `--version` prints (both binaries): the crate version and the git commit the
/// binary was built from (`unknown` when built without the repository; see `build.rs`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("MEME_BUILD_COMMIT"), ")");
