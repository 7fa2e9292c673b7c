//! `memectl`, the kubectl-like command line of meme-controller, as a library so its renderers
//! can be tested without a process.
//!
//! # Layout
//! - [`cli`]: flags, verbs, exit codes (0 success, 1 check failed, 2 could not run).
//! - [`cmd`]: one module per verb; each fetches what it needs and owns its layout.
//! - [`client`]: the small HTTP/1.1 client for the controller's API.
//! - [`repo`]: the repository side (`history`, `rollback`, `diff`): `--repo`/`--path`, git, and
//!   the manifests committed at a revision; [`changes`]: what differs between two desired
//!   states, or between the desired state and the running containers, per service and field;
//!   [`commit`]: what the verbs that commit share (clean tree, push target, identity).
//! - [`render`], [`table`], [`age`], [`color`]: what tables look like (kubectl's columns, ages
//!   and, on a terminal, colour). Renderers take "now" as a parameter so tests are deterministic.
//! - [`output`]: stdout (a closed pipe is success) and the `-o json|yaml` serializations.

pub mod age;
pub mod changes;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod color;
pub mod commit;
pub mod output;
pub mod render;
pub mod repo;
pub mod table;

/// What `memectl --version` prints: the crate version and the git commit it was built from
/// (`unknown` when built without the repository; see `controller/build.rs`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("MEME_BUILD_COMMIT"), ")");
