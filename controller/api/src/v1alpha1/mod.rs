//! The `memeit.pro/v1alpha1` manifest kinds: [`Stack`] (one per folder) and [`Deployment`]
//! (one per service), with every default written down where it is applied.

mod deployment;
mod stack;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use deployment::{
    ContainerPort, Deployment, DeploymentSpec, FileMount, HealthCheck, HttpGetAction, ImagePullPolicy, Protocol,
    RELOAD_SIGNALS, Reload, ResourceLimits, ResourceReservations, Resources, Strategy, StrategyType, TcpSocketAction,
    VolumeMount,
};
pub use stack::{NetworkSpec, Stack, StackSpec, VolumeSpec};

/// The API group and version every manifest must declare.
pub const API_VERSION: &str = "memeit.pro/v1alpha1";
/// The API group.
pub const GROUP: &str = "memeit.pro";
/// The API version within the group.
pub const VERSION: &str = "v1alpha1";

/// Name and labels of a manifest object, as in Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// The object's name. For a Deployment it is the service name: a DNS label (lowercase
    /// letters, digits and `-`, at most 63 characters), used in container names and as the
    /// network alias other services reach it by.
    pub name: String,
    /// Free-form labels, for people and tools; not copied onto containers (see
    /// `spec.labels` for that).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations, ignored by the controller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An environment variable: a literal `value` or a value taken from a secret file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    /// Variable name: letters, digits and `_`, not starting with a digit.
    pub name: String,
    /// Literal value. Exactly one of `value` and `valueFrom` is set (an absent value with no
    /// `valueFrom` means the empty string, as in Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = "^[^\\u0000]*$"))]
    pub value: Option<String>,
    /// Where the value comes from when it is not literal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// The source of a non-literal environment value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVarSource {
    /// A key of a secret kept on the host, never in git.
    pub secret_key_ref: SecretKeySelector,
}

/// Selects one key of a secret: the file `<--secrets-dir>/<name>/<key>` on the host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// The secret's name: a DNS subdomain (lowercase letters, digits, `-` and `.`).
    pub name: String,
    /// The key within the secret: letters, digits, `-`, `_` and `.`, not `.` or `..`.
    pub key: String,
}

/// Any manifest object, tagged by its `kind`.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// The one `Stack` of a folder.
    Stack(Stack),
    /// A service (boxed: far larger than a Stack).
    Deployment(Box<Deployment>),
}
