//! The `Stack` kind: the stack's name and the networks, named volumes and shared environment
//! its services use.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EnvVar, ObjectMeta};

/// The stack: exactly one per manifests folder. Its name prefixes every Docker object the
/// controller creates (`<stack>_<network>`, `<stack>_<volume>`, `<stack>-<service>-...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Stack", extend("x-kubernetes-group-version-kind" = [{"group": "memeit.pro", "version": "v1alpha1", "kind": "Stack"}]))]
pub struct Stack {
    /// Always `memeit.pro/v1alpha1`.
    #[schemars(extend("const" = "memeit.pro/v1alpha1"))]
    pub api_version: String,
    /// Always `Stack`.
    #[schemars(extend("const" = "Stack"))]
    pub kind: String,
    /// The stack's name (a DNS label) and labels.
    pub metadata: ObjectMeta,
    /// Networks, volumes and shared environment.
    #[serde(default)]
    pub spec: StackSpec,
}

/// What the services of a stack share.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StackSpec {
    /// User-defined bridge networks, created as `<stack>_<name>`. Default: none declared; a
    /// Deployment that names no network joins the implicit `default` network, as in compose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkSpec>,
    /// Named volumes, created as `<stack>_<name>` and never deleted by the controller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// Environment added to every Deployment; a Deployment's own `env` wins on a name clash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

/// A network of the stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Network name (a DNS label); Deployments list it in `spec.networks`. A network of the
    /// name `<stack>_<name>` that the controller did not create for this stack is never joined
    /// (the service is `Stalled`, naming it): remove it or choose another name. There is no
    /// adoption for networks: they hold no data, the controller makes its own.
    pub name: String,
    /// Docker `--internal`: no route to outside the host. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not", deserialize_with = "crate::strict::boolean")]
    pub internal: bool,
}

/// A named volume of the stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeSpec {
    /// Volume name (a DNS label); Deployments mount it by this name.
    pub name: String,
    /// Use the volume `<stack>_<name>` even if the controller did not create it (made by
    /// `docker compose` for the project of the same name, or by hand): how data is kept when a
    /// compose project moves to the controller. Without it, a volume of that name that does not
    /// carry this stack's labels is never mounted (the service is `Stalled`, naming it). A
    /// volume of another meme-controller stack is never adopted. Missing, it is created as
    /// usual. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not", deserialize_with = "crate::strict::boolean")]
    pub adopt: bool,
}
