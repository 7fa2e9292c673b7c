//! The Docker labels and object names the controller owns (reverse-DNS, Docker's convention),
//! and how to read them back. Here rather than in the daemon so that memectl finds the
//! controller's containers with the very same names.

use std::collections::BTreeMap;

/// Marks every object the controller creates.
pub const MANAGED_BY: &str = "pro.memeit.managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGER: &str = "meme-controller";
/// The stack an object belongs to.
pub const STACK: &str = "pro.memeit.stack";
/// The service a container belongs to.
pub const SERVICE: &str = "pro.memeit.service";
/// The spec hash a container was created from.
pub const SPEC_HASH: &str = "pro.memeit.spec-hash";
/// The git revision a container was created from.
pub const REVISION: &str = "pro.memeit.revision";
/// The replica slot of a container (1-based), for names and ordering.
pub const REPLICA: &str = "pro.memeit.replica";
/// The controller instance that created a container (`--instance`, or derived from the
/// repository and manifests folder it follows). Who owns a stack *now* is its lease's business
/// (see the controller's `ownership` module); this says who made the container.
pub const INSTANCE: &str = "pro.memeit.instance";
/// A network's or volume's name as the manifests write it.
pub const OBJECT_NAME: &str = "pro.memeit.name";

/// The hash of the file contents a container was created with (absent without files). A
/// reload in place changes the files but not the label: the controller remembers that.
pub const FILES_HASH: &str = "pro.memeit.files-hash";
/// The drain period (milliseconds) of the Deployment a container was created from, so that a
/// pruned service, whose manifest is gone, is still drained as it asked.
pub const DRAIN_PERIOD_MS: &str = "pro.memeit.drain-period-ms";
/// Present (`true`) on a container that publishes host ports: it is never moved on its networks
/// (a move drops the port mapping), so it carries its alias from creation.
pub const HOST_PORTS: &str = "pro.memeit.host-ports";
/// The stop grace period (milliseconds) a container was created with, for the same reason.
pub const STOP_GRACE_MS: &str = "pro.memeit.stop-grace-period-ms";

/// Digests of the parts of the template a container was created from (JSON), so that a
/// replacement can say what changed.
pub const FIELDS: &str = "pro.memeit.fields";

/// How many hex digits of the spec hash go into a container name.
pub const SHORT_HASH_LEN: usize = 10;

/// Labels that mark an object as ours and of `stack`.
#[must_use]
pub fn stack_labels(stack: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY.to_owned(), MANAGER.to_owned()), (STACK.to_owned(), stack.to_owned())])
}

/// The list filter for every container of a stack.
#[must_use]
pub fn stack_filter(stack: &str) -> Vec<(String, String)> {
    stack_labels(stack).into_iter().collect()
}

/// The list filter for the containers of one service.
#[must_use]
pub fn service_filter(stack: &str, service: &str) -> Vec<(String, String)> {
    let mut filter = stack_filter(stack);
    filter.push((SERVICE.to_owned(), service.to_owned()));
    filter
}

/// Docker name of a stack network or volume: `<stack>_<name>`, as compose names them.
#[must_use]
pub fn object_name(stack: &str, name: &str) -> String {
    format!("{stack}_{name}")
}

/// Container name: `<stack>-<service>-<short hash>-<replica>`, unique enough that a new
/// container can start beside the one it replaces.
#[must_use]
pub fn container_name(stack: &str, service: &str, spec_hash: &str, replica: u32) -> String {
    let short = &spec_hash[..spec_hash.len().min(SHORT_HASH_LEN)];
    format!("{stack}-{service}-{short}-{replica}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_should_follow_compose_conventions() {
        assert_eq!(object_name("meme-staging", "internal"), "meme-staging_internal");
        assert_eq!(
            container_name("meme-staging", "backend", "0123456789abcdef", 2),
            "meme-staging-backend-0123456789-2"
        );
        assert_eq!(service_filter("s", "web").len(), 3);
    }
}
