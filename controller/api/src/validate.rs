//! Semantic rules over a parsed manifest set: names, references between objects, ports,
//! health checks, files and secrets. Every rule adds to one list so a run reports all problems.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::load::{Located, ManifestSet, ManifestTree, Parsed, normalize_source};
use crate::names::{check_dns_label, check_dns_subdomain, check_env_name, check_label_key, check_secret_key};
use crate::position::Pos;
use crate::reference::ImageReference;
use crate::v1alpha1::{Deployment, EnvVar, RELOAD_SIGNALS, Reload, Stack, StrategyType};

/// The prefix of the labels the controller owns.
pub const RESERVED_LABEL_PREFIX: &str = "pro.memeit.";

/// The network every service joins when it names none, as in compose.
pub const DEFAULT_NETWORK: &str = "default";

/// Replicas of one service. One host runs them all: Kubernetes' kubelet caps a whole node at
/// 110 pods by default, and a reconcile creates every missing replica, so a typo such as
/// `replicas: 100000` must not reach the engine.
pub const MAX_REPLICAS: u32 = 100;

/// Replicas of the whole stack. Services share the stack's networks, and a Linux bridge holds
/// at most 1024 ports (the kernel's `BR_MAX_PORTS`): the rest leaves room for a rolling update's
/// extra container per service.
pub const MAX_STACK_REPLICAS: u32 = 1_000;

/// Applies every rule and builds the set, or returns every diagnostic.
///
/// # Errors
/// All diagnostics, sorted, when any is an error.
pub fn validate(tree: &ManifestTree, parsed: Parsed) -> Result<ManifestSet, Diagnostics> {
    let Parsed { stacks, mut deployments, mut diagnostics, complete, manifest_files, first_break, cross_file } = parsed;
    let out = &mut diagnostics.0;
    out.extend(cross_file);

    for link in &tree.links {
        out.push(
            Diagnostic::error(
                tree.display(link),
                Pos::START,
                None,
                "a symbolic link, not followed: the controller reads committed git objects, where a link is \
                 only the path it names, so it ignores this entry; commit the file itself",
            )
            .into_warning(),
        );
    }
    if let Some((file, pos)) = &first_break {
        out.push(Diagnostic::note(
            file,
            *pos,
            "the checks across files (exactly one Stack, dependsOn, the Stack's volumes and networks) \
             were skipped because this file could not be read completely; fix it and validate again",
        ));
    }

    if manifest_files == 0 {
        out.push(Diagnostic::error(
            &tree.root,
            Pos::START,
            None,
            "no manifests: the folder holds no *.yaml or *.yml file",
        ));
    } else if complete && stacks.is_empty() && deployments.is_empty() {
        let first = tree
            .files
            .keys()
            .find(|f| ManifestTree::is_manifest_path(f))
            .map_or_else(|| tree.root.clone(), |f| tree.display(f));
        out.push(Diagnostic::error(first, Pos::START, None, "no manifests: every document is empty"));
    }

    for stack in &stacks {
        let before = out.len();
        check_stack(stack, out);
        drop_cut_fields(&stack.source, out, before);
    }
    match stacks.as_slice() {
        [] if complete && manifest_files > 0 && !deployments.is_empty() => {
            let first = &deployments[0].source;
            out.push(Diagnostic::error(
                &first.display,
                first.start,
                None,
                format!("no Stack in {}: exactly one `kind: Stack` is required", tree.root),
            ));
        }
        [first, rest @ ..] => {
            for extra in rest {
                out.push(extra.source.error_at_value(
                    "kind",
                    format!(
                        "a second Stack ({:?}); the first is {:?} at {}",
                        extra.object.metadata.name,
                        first.object.metadata.name,
                        first.source.location_of("kind")
                    ),
                ));
            }
        }
        [] => {}
    }

    let stack = stacks.first();
    let names: HashMap<&str, usize> =
        deployments.iter().enumerate().map(|(i, d)| (d.object.metadata.name.as_str(), i)).rev().collect();
    let mut seen: HashMap<&str, &Located<Deployment>> = HashMap::new();
    for d in &deployments {
        if let Some(first) = seen.get(d.object.metadata.name.as_str()) {
            out.push(d.source.error_at_value(
                "metadata.name",
                format!(
                    "duplicate Deployment {:?}; first defined at {}",
                    d.object.metadata.name,
                    first.source.location_of("metadata.name")
                ),
            ));
        } else {
            seen.insert(&d.object.metadata.name, d);
        }
        let before = out.len();
        check_deployment(tree, d, stack.map(|s| &s.object), complete, &names, out);
        drop_cut_fields(&d.source, out, before);
    }
    if complete {
        check_cycles(&deployments, &names, out);
    }
    check_host_ports(&deployments, out);
    check_stack_replicas(&deployments, out);

    let (errors, warnings): (Vec<_>, Vec<_>) = diagnostics.0.into_iter().partition(Diagnostic::is_error);
    let mut warnings = Diagnostics(warnings);
    warnings.sort();
    if !errors.is_empty() || stacks.len() != 1 {
        let mut all = Diagnostics(errors);
        all.0.extend(warnings.0);
        all.sort();
        return Err(all);
    }
    deployments.sort_by(|a, b| a.object.metadata.name.cmp(&b.object.metadata.name));
    let stack = stacks.into_iter().next().expect("exactly one stack checked above");
    Ok(ManifestSet { stack, deployments, tree: tree.clone(), warnings })
}

fn check_stack(stack: &Located<Stack>, out: &mut Vec<Diagnostic>) {
    let s = &stack.source;
    let spec = &stack.object.spec;
    if let Err(why) = check_dns_label(&stack.object.metadata.name) {
        out.push(
            s.error_at_value("metadata.name", format!("invalid stack name {:?}: {why}", stack.object.metadata.name)),
        );
    }
    let mut networks = BTreeSet::new();
    for (i, n) in spec.networks.iter().enumerate() {
        let path = format!("spec.networks[{i}].name");
        if let Err(why) = check_dns_label(&n.name) {
            out.push(s.error_at_value(&path, format!("invalid network name {:?}: {why}", n.name)));
        } else if !networks.insert(&n.name) {
            out.push(s.error_at_value(&path, format!("duplicate network {:?}", n.name)));
        }
    }
    let mut volumes = BTreeSet::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let path = format!("spec.volumes[{i}].name");
        if let Err(why) = check_dns_label(&v.name) {
            out.push(s.error_at_value(&path, format!("invalid volume name {:?}: {why}", v.name)));
        } else if !volumes.insert(&v.name) {
            out.push(s.error_at_value(&path, format!("duplicate volume {:?}", v.name)));
        }
    }
    check_env(&stack.source, "spec.env", &spec.env, out);
}

fn check_env(s: &crate::load::SourceDoc, base: &str, env: &[EnvVar], out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, var) in env.iter().enumerate() {
        let path = format!("{base}[{i}]");
        if let Err(why) = check_env_name(&var.name) {
            out.push(s.error_at_value(
                &format!("{path}.name"),
                format!("invalid environment variable name {:?}: {why}", var.name),
            ));
        } else if let Some(first) = seen.insert(&var.name, i) {
            out.push(s.error_at_value(
                &format!("{path}.name"),
                format!(
                    "duplicate environment variable {:?}; first set at {}",
                    var.name,
                    s.location_of(&format!("{base}[{first}].name"))
                ),
            ));
        }
        if var.value.as_deref().is_some_and(|v| v.contains('\0')) {
            out.push(s.error_at_value(
                &format!("{path}.value"),
                "a NUL byte in an environment value: Docker passes the environment as C strings, which end at NUL",
            ));
        }
        match (&var.value, &var.value_from) {
            (Some(_), Some(_)) => {
                out.push(s.error_at_key(&format!("{path}.valueFrom"), "set either `value` or `valueFrom`, not both"))
            }
            (_, Some(from)) => {
                let r = &from.secret_key_ref;
                if let Err(why) = check_dns_subdomain(&r.name) {
                    out.push(s.error_at_value(
                        &format!("{path}.valueFrom.secretKeyRef.name"),
                        format!("invalid secret name {:?}: {why}", r.name),
                    ));
                }
                if let Err(why) = check_secret_key(&r.key) {
                    out.push(s.error_at_value(
                        &format!("{path}.valueFrom.secretKeyRef.key"),
                        format!("invalid secret key {:?}: {why}", r.key),
                    ));
                }
            }
            _ => {}
        }
    }
}

#[allow(clippy::too_many_lines)] // one rule after another; splitting would only scatter them
fn check_deployment(
    tree: &ManifestTree,
    d: &Located<Deployment>,
    stack: Option<&Stack>,
    complete: bool,
    names: &HashMap<&str, usize>,
    out: &mut Vec<Diagnostic>,
) {
    let s = &d.source;
    let name = &d.object.metadata.name;
    let spec = &d.object.spec;
    if let Err(why) = check_dns_label(name) {
        out.push(s.error_at_value(
            "metadata.name",
            format!("invalid service name {name:?}: {why} (it becomes a container name and a network alias)"),
        ));
    }
    if let Err(why) = ImageReference::parse(&spec.image) {
        out.push(s.error_at_value("spec.image", format!("invalid image reference {:?}: {why}", spec.image)));
    }
    check_env(s, "spec.env", &spec.env, out);
    if spec.replicas > MAX_REPLICAS {
        out.push(s.error_at_value(
            "spec.replicas",
            format!(
                "{} replicas is over the limit of {MAX_REPLICAS} per service: every replica is a container on this \
                 one host",
                spec.replicas
            ),
        ));
    }

    // Ports.
    let mut container_ports = BTreeSet::new();
    let mut has_host_port = false;
    for (i, p) in spec.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        if p.container_port == 0 {
            out.push(s.error_at_value(&format!("{path}.containerPort"), "port must be from 1 to 65535"));
        } else if !container_ports.insert((p.container_port, p.protocol)) {
            out.push(s.error_at_value(
                &format!("{path}.containerPort"),
                format!("duplicate container port {}", p.container_port),
            ));
        }
        if p.host_port == Some(0) {
            out.push(s.error_at_value(&format!("{path}.hostPort"), "port must be from 1 to 65535"));
        }
        if let Some(ip) = &p.host_ip {
            if ip.parse::<IpAddr>().is_err() {
                out.push(s.error_at_value(&format!("{path}.hostIP"), format!("invalid IP address {ip:?}")));
            }
            if p.host_port.is_none() {
                out.push(s.error_at_key(&format!("{path}.hostIP"), "hostIP without hostPort"));
            }
        }
        if p.host_port.is_some() {
            has_host_port = true;
        }
    }
    if has_host_port && spec.strategy.kind == StrategyType::RollingUpdate {
        let path = if s.index.contains("spec.strategy.type") { "spec.strategy.type" } else { "spec.ports" };
        out.push(s.error_at_value(
            path,
            "a service with a hostPort cannot use RollingUpdate: the new container could not bind the port while the old one holds it; set `strategy: {type: Recreate}`",
        ));
    }
    if has_host_port && spec.replicas > 1 {
        out.push(s.error_at_value(
            "spec.replicas",
            format!("{} replicas cannot share one hostPort; use 1 replica", spec.replicas),
        ));
    }

    // Volumes and networks of the stack.
    let mut mount_paths = BTreeSet::new();
    for (i, m) in spec.volume_mounts.iter().enumerate() {
        let path = format!("spec.volumeMounts[{i}]");
        if complete
            && let Some(stack) = stack
            && !stack.spec.volumes.iter().any(|v| v.name == m.name)
        {
            out.push(s.error_at_value(
                &format!("{path}.name"),
                format!("volume {:?} is not declared in the Stack's spec.volumes", m.name),
            ));
        }
        if !is_absolute_clean(&m.mount_path) {
            out.push(s.error_at_value(
                &format!("{path}.mountPath"),
                format!("mountPath {:?} must be an absolute path without '..'", m.mount_path),
            ));
        } else if !mount_paths.insert(m.mount_path.trim_end_matches('/')) {
            out.push(s.error_at_value(&format!("{path}.mountPath"), format!("duplicate mountPath {:?}", m.mount_path)));
        }
    }
    let mut networks = BTreeSet::new();
    for (i, n) in spec.networks.iter().enumerate() {
        let path = format!("spec.networks[{i}]");
        if !networks.insert(n) {
            out.push(s.error_at_value(&path, format!("duplicate network {n:?}")));
        } else if complete
            && n != DEFAULT_NETWORK
            && let Some(stack) = stack
            && !stack.spec.networks.iter().any(|x| &x.name == n)
        {
            out.push(s.error_at_value(&path, format!("network {n:?} is not declared in the Stack's spec.networks")));
        }
    }

    // Health check.
    if let Some(hc) = &spec.health_check {
        let probes =
            usize::from(hc.http_get.is_some()) + usize::from(hc.tcp_socket.is_some()) + usize::from(hc.exec.is_some());
        if probes != 1 {
            out.push(s.error_at_key("spec.healthCheck", "set exactly one of httpGet, tcpSocket and exec"));
        }
        if let Some(http) = &hc.http_get {
            if !http.path.starts_with('/') || http.path.chars().any(char::is_whitespace) {
                out.push(s.error_at_value(
                    "spec.healthCheck.httpGet.path",
                    format!("path {:?} must start with '/' and contain no spaces", http.path),
                ));
            }
            if http.port == 0 {
                out.push(s.error_at_value("spec.healthCheck.httpGet.port", "port must be from 1 to 65535"));
            }
        }
        if hc.tcp_socket.as_ref().is_some_and(|t| t.port == 0) {
            out.push(s.error_at_value("spec.healthCheck.tcpSocket.port", "port must be from 1 to 65535"));
        }
        if hc.exec.as_ref().is_some_and(|e| e.is_empty() || e[0].is_empty()) {
            out.push(s.error_at_value("spec.healthCheck.exec", "exec needs a command: [program, arg...]"));
        }
        if hc.interval.get().is_zero() {
            out.push(s.error_at_value("spec.healthCheck.interval", "interval must be greater than 0"));
        }
        if hc.timeout.get().is_zero() {
            out.push(s.error_at_value("spec.healthCheck.timeout", "timeout must be greater than 0"));
        }
        if hc.retries == 0 {
            out.push(s.error_at_value("spec.healthCheck.retries", "retries must be at least 1"));
        }
    }
    if spec.progress_deadline.get().is_zero() {
        out.push(s.error_at_value("spec.progressDeadline", "progressDeadline must be greater than 0"));
    }

    // Dependencies.
    let mut deps = BTreeSet::new();
    for (i, dep) in spec.depends_on.iter().enumerate() {
        let path = format!("spec.dependsOn[{i}]");
        if dep == name {
            out.push(s.error_at_value(&path, format!("service {name:?} depends on itself")));
        } else if !deps.insert(dep) {
            out.push(s.error_at_value(&path, format!("duplicate dependency {dep:?}")));
        } else if complete && !names.contains_key(dep.as_str()) {
            out.push(s.error_at_value(&path, format!("dependsOn names {dep:?}, which no Deployment defines")));
        }
    }

    if let Some(user) = &spec.user
        && (user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        out.push(s.error_at_value("spec.user", format!("invalid user {user:?}: expected user[:group] without spaces")));
    }

    // Files from the repository.
    let mut file_paths = BTreeSet::new();
    for (i, f) in spec.files.iter().enumerate() {
        let path = format!("spec.files[{i}]");
        if !is_absolute_clean(&f.path) || f.path.ends_with('/') {
            out.push(s.error_at_value(
                &format!("{path}.path"),
                format!("path {:?} must be an absolute file path without '..'", f.path),
            ));
        } else if !file_paths.insert(&f.path) {
            out.push(s.error_at_value(&format!("{path}.path"), format!("duplicate file path {:?}", f.path)));
        }
        let source = normalize_source(&f.source);
        if f.source.starts_with('/') || f.source.split('/').any(|c| c == "..") || source.is_empty() {
            out.push(s.error_at_value(
                &format!("{path}.source"),
                format!("source {:?} must be a path relative to the manifests folder, without '..'", f.source),
            ));
        } else if tree.links.contains(&source) {
            out.push(s.error_at_value(
                &format!("{path}.source"),
                format!(
                    "source {:?} is a symbolic link, which is not followed (git stores the link, not the file); \
                     commit the file itself",
                    f.source
                ),
            ));
        } else if !tree.files.contains_key(&source) {
            out.push(s.error_at_value(
                &format!("{path}.source"),
                format!("source {:?} does not exist in {}", f.source, tree.root),
            ));
        }
        if let Some(mode) = &f.mode
            && u32::from_str_radix(mode, 8).map_or(true, |m| m > 0o7777)
        {
            out.push(s.error_at_value(
                &format!("{path}.mode"),
                format!("mode {mode:?} must be octal permission bits such as \"0444\""),
            ));
        }
    }

    if let Some(reload) = &spec.reload {
        check_reload(s, reload, spec.files.is_empty(), out);
    }

    if spec.read_only_root_filesystem && !spec.files.is_empty() {
        out.push(s.error_at_value(
            "spec.readOnlyRootFilesystem",
            "files cannot be copied into a read-only root filesystem; drop `files` or set readOnlyRootFilesystem: false",
        ));
    }

    for key in spec.labels.keys() {
        let path = format!("spec.labels.{key}");
        if key.starts_with(RESERVED_LABEL_PREFIX) {
            out.push(
                s.error_at_key(&path, format!("label {key:?} uses the reserved prefix {RESERVED_LABEL_PREFIX:?}")),
            );
        } else if let Err(why) = check_label_key(key) {
            out.push(s.error_at_key(&path, format!("invalid label key {key:?}: {why}")));
        }
    }
}

/// `reload`: exactly one action, a real command or a reload signal, and files to reload.
fn check_reload(s: &crate::load::SourceDoc, reload: &Reload, no_files: bool, out: &mut Vec<Diagnostic>) {
    match (&reload.exec, &reload.signal) {
        (Some(_), Some(_)) | (None, None) => {
            out.push(s.error_at_key("spec.reload", "set exactly one of exec and signal"));
        }
        (Some(exec), None) if exec.is_empty() || exec[0].is_empty() => {
            out.push(s.error_at_value("spec.reload.exec", "exec needs a command: [program, arg...]"));
        }
        (None, Some(signal)) if !RELOAD_SIGNALS.contains(&signal.as_str()) => {
            out.push(s.error_at_value(
                "spec.reload.signal",
                format!("signal {signal:?} is not a reload signal; use one of {}", RELOAD_SIGNALS.join(", ")),
            ));
        }
        _ => {}
    }
    if no_files {
        out.push(s.error_at_key(
            "spec.reload",
            "reload applies to changes of `files`, and this Deployment has none; remove reload or add files",
        ));
    }
}

/// Reports each dependency cycle once, naming its members in order.
fn check_cycles(deployments: &[Located<Deployment>], names: &HashMap<&str, usize>, out: &mut Vec<Diagnostic>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; deployments.len()];
    let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
    for start in 0..deployments.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next dependency index).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &deployments[node].object.spec.depends_on;
            if *next >= deps.len() {
                marks[node] = Mark::Done;
                stack.pop();
                continue;
            }
            let dep_index = *next;
            *next += 1;
            let Some(&target) = names.get(deps[dep_index].as_str()) else { continue };
            if target == node {
                continue; // self-dependency is reported on its own
            }
            match marks[target] {
                Mark::New => {
                    marks[target] = Mark::Active;
                    stack.push((target, 0));
                }
                Mark::Active => {
                    let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let members: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                    let mut key = members.clone();
                    key.sort_unstable();
                    if reported.insert(key) {
                        let mut chain: Vec<&str> =
                            members.iter().map(|i| deployments[*i].object.metadata.name.as_str()).collect();
                        chain.push(&deployments[target].object.metadata.name);
                        let first = &deployments[members[0]];
                        let edge = first
                            .object
                            .spec
                            .depends_on
                            .iter()
                            .position(|x| Some(x.as_str()) == chain.get(1).copied())
                            .unwrap_or(0);
                        out.push(first.source.error_at_value(
                            &format!("spec.dependsOn[{edge}]"),
                            format!("dependency cycle: {}", chain.join(" -> ")),
                        ));
                    }
                }
                Mark::Done => {}
            }
        }
    }
}

/// Two services (or two ports of one) cannot publish the same host address and port.
fn check_host_ports(deployments: &[Located<Deployment>], out: &mut Vec<Diagnostic>) {
    let mut taken: Vec<(IpAddr, u16, crate::v1alpha1::Protocol, String, String)> = Vec::new();
    for d in deployments {
        for (i, p) in d.object.spec.ports.iter().enumerate() {
            let Some(host_port) = p.host_port.filter(|p| *p != 0) else { continue };
            let ip = match p.host_ip.as_deref().map(str::parse::<IpAddr>) {
                None => IpAddr::from([0, 0, 0, 0]),
                Some(Ok(ip)) => ip,
                Some(Err(_)) => continue,
            };
            let path = format!("spec.ports[{i}].hostPort");
            let clash = taken.iter().find(|(tip, tport, tproto, ..)| {
                *tport == host_port
                    && *tproto == p.protocol
                    && (tip == &ip || tip.is_unspecified() || ip.is_unspecified())
            });
            if let Some((tip, _, _, service, location)) = clash {
                out.push(d.source.error_at_value(
                    &path,
                    format!("host port {ip}:{host_port} is already published by service {service:?} ({tip}:{host_port}) at {location}"),
                ));
            } else {
                taken.push((ip, host_port, p.protocol, d.object.metadata.name.clone(), d.source.location_of(&path)));
            }
        }
    }
}

/// The stack's replicas together must fit on its networks.
fn check_stack_replicas(deployments: &[Located<Deployment>], out: &mut Vec<Diagnostic>) {
    let total: u64 = deployments.iter().map(|d| u64::from(d.object.spec.replicas.min(MAX_REPLICAS))).sum();
    if total > u64::from(MAX_STACK_REPLICAS)
        && let Some(largest) = deployments.iter().max_by_key(|d| d.object.spec.replicas)
    {
        out.push(largest.source.error_at_value(
            "spec.replicas",
            format!(
                "the stack's services add up to {total} replicas, over the limit of {MAX_STACK_REPLICAS}: they share \
                 the stack's networks, and a Linux bridge holds at most 1024 containers"
            ),
        ));
    }
}

/// Removes the diagnostics added since `before` that are about fields already reported as
/// malformed and cut out of the document (their defaults would only mislead).
fn drop_cut_fields(source: &crate::load::SourceDoc, out: &mut Vec<Diagnostic>, before: usize) {
    if source.cut.is_empty() {
        return;
    }
    let mut i = before;
    while i < out.len() {
        let about_cut = out[i].path.as_deref().is_some_and(|p| source.cut.iter().any(|c| crate::load::related(p, c)));
        if about_cut {
            out.remove(i);
        } else {
            i += 1;
        }
    }
}

fn is_absolute_clean(path: &str) -> bool {
    path.starts_with('/') && path.len() > 1 && !path.split('/').any(|c| c == "..") && !path.contains('\0')
}
