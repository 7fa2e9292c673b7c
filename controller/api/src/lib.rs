//! The `memeit.pro/v1alpha1` manifest API shared by the controller and `memectl`: the kinds
//! ([`v1alpha1`]), loading a manifests folder ([`load`]), the semantic rules ([`validate`]),
//! compiler-style [`diagnostic`]s, Docker [`reference`]s, the container [`template`] with
//! its spec hash, and the Docker [`labels`] that mark what the controller owns. No async runtime and no Docker client live here.

pub mod diagnostic;
pub mod labels;
pub mod load;
pub mod names;
pub mod position;
pub mod reference;
pub mod schema;
pub mod status;
pub mod strict;
pub mod template;
pub mod units;
pub mod v1alpha1;
pub mod validate;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use load::{ManifestSet, ManifestTree, load};
pub use template::{ContainerTemplate, EnvValue};
