//! Spec-hash stability: key order, env order and defaults written out do not change it;
//! everything that needs a new container does.

use std::collections::BTreeMap;

use meme_api::{ContainerTemplate, ManifestTree};
use proptest::prelude::*;

const STACK: &str = "apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata: {name: s}\nspec:\n  volumes: [{name: data}]\n  env: [{name: ENV, value: test}]\n";

fn hash_of(deployment_yaml: &str) -> String {
    let tree = ManifestTree::new("t")
        .with_file("stack.yaml", STACK)
        .with_file("web.yaml", deployment_yaml)
        .with_file("app.conf", "a=1\n");
    let set = meme_api::load(&tree).unwrap_or_else(|d| panic!("{d}\n{deployment_yaml}"));
    ContainerTemplate::all(&set)["web"].spec_hash(&BTreeMap::new())
}

fn deployment(spec_lines: &[String]) -> String {
    format!(
        "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n{}",
        spec_lines.concat()
    )
}

fn base_lines(env: &[(String, String)]) -> Vec<String> {
    let mut lines = vec![
        "  image: example/app:1.0\n".to_owned(),
        "  ports: [{containerPort: 80}, {containerPort: 81}]\n".to_owned(),
        "  labels: {a: '1', b: '2', c: '3'}\n".to_owned(),
        "  volumeMounts: [{name: data, mountPath: /data}]\n".to_owned(),
        "  files: [{path: /etc/app.conf, source: app.conf}]\n".to_owned(),
    ];
    let env: String = env.iter().map(|(k, v)| format!("    - {{name: {k}, value: \"{v}\"}}\n")).collect();
    lines.push(format!("  env:\n{env}"));
    lines
}

fn env_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,6}", "[a-z0-9]{0,6}", 1..6).prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn spec_hash_should_ignore_field_and_env_order(env in env_strategy(), seed in any::<u64>()) {
        let original = hash_of(&deployment(&base_lines(&env)));
        let mut shuffled_env = env.clone();
        let mut lines = base_lines(&env);
        // Deterministic shuffles from the seed.
        let n = shuffled_env.len();
        shuffled_env.rotate_left((seed as usize) % n);
        shuffled_env.reverse();
        let m = lines.len();
        lines = base_lines(&shuffled_env);
        lines.rotate_left((seed as usize >> 8) % m);
        let reordered = hash_of(&deployment(&lines));
        prop_assert_eq!(original, reordered);
    }

    #[test]
    fn spec_hash_should_change_with_any_env_value(env in env_strategy(), extra in "[a-z]{1,5}") {
        let before = hash_of(&deployment(&base_lines(&env)));
        let mut changed = env.clone();
        changed[0].1.push_str(&extra);
        let after = hash_of(&deployment(&base_lines(&changed)));
        prop_assert_ne!(before, after);
    }
}

#[test]
fn spec_hash_should_ignore_defaults_written_out_and_rollout_fields() {
    let base = deployment(&base_lines(&[("A".into(), "1".into())]));
    let explicit = base.clone()
        + "  replicas: 1\n  strategy: {type: RollingUpdate}\n  stopGracePeriod: 10s\n  progressDeadline: 2m\n  minReadySeconds: 0\n  imagePullPolicy: IfNotPresent\n  readOnlyRootFilesystem: false\n  networks: [default]\n";
    assert_eq!(hash_of(&base), hash_of(&explicit));
    let rollout_only =
        base.clone() + "  replicas: 5\n  dependsOn: []\n  progressDeadline: 10m\n  minReadySeconds: 30\n";
    assert_eq!(hash_of(&base), hash_of(&rollout_only), "replicas and rollout settings do not need new containers");
    let hc = "  healthCheck:\n    httpGet: {port: 80}\n";
    let hc_explicit = "  healthCheck:\n    httpGet: {path: /, port: 80}\n    interval: 10s\n    timeout: 5s\n    retries: 3\n    startPeriod: 0s\n";
    assert_eq!(hash_of(&(base.clone() + hc)), hash_of(&(base.clone() + hc_explicit)));
}

#[test]
fn spec_hash_should_change_with_what_needs_a_new_container() {
    let base = deployment(&base_lines(&[("A".into(), "1".into())]));
    let h = hash_of(&base);
    for change in [
        "  command: [/bin/app]\n",
        "  user: \"1000\"\n",
        "  stopGracePeriod: 30s\n",
        "  resources: {limits: {memory: 64Mi}}\n",
        "  healthCheck: {tcpSocket: {port: 80}}\n",
        "  init: true\n",
    ] {
        assert_ne!(h, hash_of(&(base.clone() + change)), "{change}");
    }
    assert_ne!(h, hash_of(&base.replace("example/app:1.0", "example/app:1.1")));
    let no_files = base.replace("  files: [{path: /etc/app.conf, source: app.conf}]\n", "");
    assert_ne!(hash_of(&no_files), hash_of(&(no_files.clone() + "  readOnlyRootFilesystem: true\n")));
    assert_ne!(h, hash_of(&base.replace("mountPath: /data", "mountPath: /var/data")));
    assert_ne!(h, hash_of(&base.replace("path: /etc/app.conf", "path: /etc/app2.conf")), "a moved file");
    assert_ne!(h, hash_of(&base.replace("source: app.conf}", "source: app.conf, mode: \"0400\"}")), "a mode");
}

#[test]
fn files_hash_should_carry_file_contents_and_the_spec_hash_should_not() {
    let base = deployment(&base_lines(&[("A".into(), "1".into())]));
    let with_file = |yaml: &str, content: &str| {
        let tree = ManifestTree::new("t")
            .with_file("stack.yaml", STACK)
            .with_file("web.yaml", yaml.to_owned())
            .with_file("app.conf", content);
        let set = meme_api::load(&tree).unwrap();
        let template = &ContainerTemplate::all(&set)["web"];
        (template.spec_hash(&BTreeMap::new()), template.files_hash())
    };
    let (spec_a, files_a) = with_file(&base, "a=1\n");
    let (spec_b, files_b) = with_file(&base, "a=2\n");
    assert_eq!(spec_a, spec_b, "a contents-only change keeps the container's spec (it can be reloaded)");
    assert_ne!(files_a, files_b, "but changes the files hash");
    // Reload and drainPeriod are about how a change is rolled out, not about the container.
    let (spec_c, files_c) = with_file(&(base.clone() + "  drainPeriod: 5s\n  reload: {signal: SIGHUP}\n"), "a=1\n");
    assert_eq!((spec_a, files_a), (spec_c, files_c));
    let no_files = base.replace("  files: [{path: /etc/app.conf, source: app.conf}]\n", "");
    assert_eq!(with_file(&no_files, "").1, "", "no files, no files hash");
}

#[test]
fn spec_hash_should_change_when_a_secret_rotates_without_containing_it() {
    let yaml = deployment(&base_lines(&[]))
        .replace("  env:\n", "  env:\n    - name: TOKEN\n      valueFrom: {secretKeyRef: {name: app, key: token}}\n");
    let tree = ManifestTree::new("t")
        .with_file("stack.yaml", STACK)
        .with_file("web.yaml", yaml)
        .with_file("app.conf", "a=1\n");
    let set = meme_api::load(&tree).unwrap();
    let template = &ContainerTemplate::all(&set)["web"];
    let selector = template.secret_refs().next().unwrap().clone();
    let digest = |v: &str| BTreeMap::from([(selector.clone(), meme_api::template::secret_digest(v.as_bytes()))]);
    assert_ne!(template.spec_hash(&digest("old-secret")), template.spec_hash(&digest("new-secret")));
}
