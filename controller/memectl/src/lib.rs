//! `memectl`, the kubectl-like command line of meme-controller, as a library so its renderers
//! can be tested without a process.
//!
//! # Layout
//! - [`cli`]: flags, verbs, exit codes (0 success, 1 check failed, 2 could not run).
//! - [`cmd`]: one module per verb; each fetches what it needs and owns its layout.
//! - [`client`]: the small HTTP/1.1 client for the controller's API.
//! - [`render`], [`table`], [`age`], [`color`]: what tables look like (kubectl's columns, ages
//!   and, on a terminal, colour). Renderers take "now" as a parameter so tests are deterministic.
//! - [`output`]: stdout (a closed pipe is success) and the `-o json|yaml` serializations.

pub mod age;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod color;
pub mod output;
pub mod render;
pub mod table;
