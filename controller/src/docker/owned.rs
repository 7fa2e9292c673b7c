//! Whether an existing network or volume is the stack's to use: it must carry this stack's
//! labels (`pro.memeit.managed-by` and `pro.memeit.stack`), whoever else's it is by name. A
//! commit that renames the Stack to another project's name must not mount that project's
//! database volume or join its private network (issue 11). A volume may be adopted on purpose
//! (`adopt: true` in the Stack, reviewable in git) when no meme-controller stack owns it: a
//! `docker compose` project's data kept across the move. Networks are never adopted: they
//! hold no data, the controller makes its own. Both engines ([`super::bollard`],
//! [`super::fake`]) decide with these functions.

use std::collections::{BTreeMap, HashMap};

use super::{EngineError, EngineResult, labels};

/// The label `docker compose` puts on what it creates.
const COMPOSE_PROJECT: &str = "com.docker.compose.project";

/// Labels as either engine reports them.
pub trait Labels {
    /// A label's value.
    fn get_label(&self, key: &str) -> Option<&str>;
    /// Some label keys, for a message.
    fn keys_sample(&self) -> Vec<String>;
}

impl Labels for HashMap<String, String> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
    fn keys_sample(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.keys().cloned().collect();
        keys.sort();
        keys
    }
}

impl Labels for BTreeMap<String, String> {
    fn get_label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
    fn keys_sample(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

/// Checks that the network `name` found with `found` labels belongs to the stack that `wanted`
/// (the labels the controller would give it) names.
///
/// # Errors
/// [`EngineError::Foreign`] naming the network and whose it looks to be.
pub fn check_network(name: &str, found: &impl Labels, wanted: &BTreeMap<String, String>) -> EngineResult<()> {
    let stack = wanted.get(labels::STACK).map_or("", String::as_str);
    if is_ours(found, stack) {
        return Ok(());
    }
    Err(EngineError::Foreign {
        name: name.to_owned(),
        message: format!(
            "network {name} exists but was not created for stack {stack} ({}): the controller never joins it. \
             Remove it (docker network rm {name}) or give the network another name in the Stack; a network holds \
             no data, so there is nothing to adopt",
            whose(found)
        ),
    })
}

/// Checks that the volume `name` found with `found` labels belongs to the stack `wanted` names,
/// or is adopted (`adopt`) and no meme-controller stack's.
///
/// # Errors
/// [`EngineError::Foreign`] naming the volume, whose it looks to be and how to adopt it.
pub fn check_volume(
    name: &str,
    found: &impl Labels,
    wanted: &BTreeMap<String, String>,
    adopt: bool,
) -> EngineResult<()> {
    let stack = wanted.get(labels::STACK).map_or("", String::as_str);
    if is_ours(found, stack) {
        return Ok(());
    }
    let another_stack = found.get_label(labels::MANAGED_BY) == Some(labels::MANAGER);
    if adopt && !another_stack {
        return Ok(());
    }
    let hint = if another_stack {
        "a volume of another meme-controller stack is never adopted".to_owned()
    } else {
        let short = wanted.get(labels::OBJECT_NAME).map_or("NAME", String::as_str);
        format!(
            "if it holds this stack's data (a docker compose project moving to the controller), adopt it on purpose: \
             `volumes: [{{name: {short}, adopt: true}}]` in the Stack"
        )
    };
    Err(EngineError::Foreign {
        name: name.to_owned(),
        message: format!(
            "volume {name} exists but was not created for stack {stack} ({}): the controller never mounts it; {hint}",
            whose(found)
        ),
    })
}

fn is_ours(found: &impl Labels, stack: &str) -> bool {
    found.get_label(labels::MANAGED_BY) == Some(labels::MANAGER) && found.get_label(labels::STACK) == Some(stack)
}

/// Whose an object looks to be, from its labels.
fn whose(found: &impl Labels) -> String {
    if found.get_label(labels::MANAGED_BY) == Some(labels::MANAGER) {
        return format!("it belongs to meme-controller stack {}", found.get_label(labels::STACK).unwrap_or("?"));
    }
    if let Some(project) = found.get_label(COMPOSE_PROJECT) {
        return format!("it belongs to docker compose project {project}");
    }
    let keys = found.keys_sample();
    if keys.is_empty() {
        "it has no labels: made by hand or by another tool".to_owned()
    } else {
        let more = if keys.len() > 3 { ", ..." } else { "" };
        format!("its labels: {}{more}", keys.iter().take(3).cloned().collect::<Vec<_>>().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(stack: &str, name: &str) -> BTreeMap<String, String> {
        let mut l = labels::stack_labels(stack);
        l.insert(labels::OBJECT_NAME.to_owned(), name.to_owned());
        l
    }

    fn found(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn only_the_stacks_own_network_should_be_joined() {
        let ours = found(&[(labels::MANAGED_BY, labels::MANAGER), (labels::STACK, "s")]);
        assert!(check_network("s_net", &ours, &wanted("s", "net")).is_ok());
        let other_stack = found(&[(labels::MANAGED_BY, labels::MANAGER), (labels::STACK, "t")]);
        let err = check_network("s_net", &other_stack, &wanted("s", "net")).unwrap_err().to_string();
        assert!(err.contains("network s_net exists but was not created for stack s"), "{err}");
        assert!(err.contains("meme-controller stack t") && err.contains("nothing to adopt"), "{err}");
        let compose = found(&[(COMPOSE_PROJECT, "s"), ("com.docker.compose.network", "net")]);
        let err = check_network("s_net", &compose, &wanted("s", "net")).unwrap_err().to_string();
        assert!(err.contains("docker compose project s"), "{err}");
        let err = check_network("s_net", &found(&[]), &wanted("s", "net")).unwrap_err().to_string();
        assert!(err.contains("no labels"), "{err}");
    }

    #[test]
    fn a_foreign_volume_should_be_mounted_only_when_adopted_and_never_another_stacks() {
        let compose = found(&[(COMPOSE_PROJECT, "s"), ("com.docker.compose.volume", "data")]);
        let err = check_volume("s_data", &compose, &wanted("s", "data"), false).unwrap_err().to_string();
        assert!(err.contains("volume s_data exists but was not created for stack s"), "{err}");
        assert!(err.contains("`volumes: [{name: data, adopt: true}]`"), "{err}");
        assert!(check_volume("s_data", &compose, &wanted("s", "data"), true).is_ok());
        assert!(check_volume("s_data", &found(&[]), &wanted("s", "data"), true).is_ok());
        let other_stack = found(&[(labels::MANAGED_BY, labels::MANAGER), (labels::STACK, "t")]);
        let err = check_volume("s_data", &other_stack, &wanted("s", "data"), true).unwrap_err().to_string();
        assert!(err.contains("never adopted"), "{err}");
        let ours = found(&[(labels::MANAGED_BY, labels::MANAGER), (labels::STACK, "s")]);
        assert!(check_volume("s_data", &ours, &wanted("s", "data"), false).is_ok());
    }
}
