//! The staging stack as shipped (manifests/staging), wired to the controller on the host: it
//! validates, its Prometheus config (with the controller's scrape job and alerts) passes
//! promtool, its Caddyfile (with the webhook route) passes `caddy validate`, both point at the
//! same controller address, and the alerts it ships are manifests/monitoring/alerts.yml.

use std::path::PathBuf;
use std::process::Command;

use meme_e2e::{binary, workspace};

fn staging(rel: &str) -> PathBuf {
    workspace().join("manifests/staging").join(rel)
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn output(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Where the controller listens for the stack (the docker0 address), as the scrape job names it.
const CONTROLLER: &str = "172.17.0.1:9797";

#[test]
fn staging_should_validate_and_ship_the_controllers_alerts() {
    let (ok, said) = output(Command::new(binary("memectl")).arg("validate").arg(staging("")));
    assert!(ok && !said.contains("warning"), "memectl validate manifests/staging: {said}");
    assert_eq!(
        read(&staging("files/prometheus/alerts.yml")),
        read(&workspace().join("manifests/monitoring/alerts.yml")),
        "manifests/staging/files/prometheus/alerts.yml must be a copy of manifests/monitoring/alerts.yml"
    );
    let prometheus = read(&staging("prometheus.yaml"));
    assert!(prometheus.contains("{path: /etc/prometheus/alerts.yml, source: files/prometheus/alerts.yml}"));
}

#[test]
fn staging_prometheus_should_scrape_the_controller_and_load_its_alerts() {
    // promtool resolves rule_files from the config's folder, as Prometheus does in the container
    // (/etc/prometheus/prometheus.yml beside /etc/prometheus/alerts.yml).
    let (ok, said) = output(
        Command::new("promtool").args(["check", "config", "prometheus.yml"]).current_dir(staging("files/prometheus")),
    );
    assert!(ok, "promtool check config: {said}");
    assert!(said.contains("SUCCESS: 1 rule files found") && said.contains("SUCCESS: 8 rules found"), "{said}");
    let config = read(&staging("files/prometheus/prometheus.yml"));
    assert!(config.contains("job_name: meme-controller"), "the job the alerts match on");
    assert!(config.contains(&format!("targets: [\"{CONTROLLER}\"]")), "{config}");
}

#[test]
fn staging_caddy_should_proxy_the_webhook_to_the_controller() {
    let caddyfile = read(&staging("files/caddy/Caddyfile"));
    let route = caddyfile.split("handle /hooks/git {").nth(1).expect("a /hooks/git route");
    let route = &route[..route.find("\n\t}").expect("end of the route")];
    assert!(route.contains("rewrite * /api/v1/hooks/git"), "{route}");
    assert!(route.contains(&format!("reverse_proxy {CONTROLLER}")), "{route}");
    // The controller's API refuses a Host it does not serve: the upstream address is sent.
    assert!(route.contains("header_up Host {upstream_hostport}"), "{route}");
    let home = tempfile::tempdir().expect("temp dir");
    let (ok, said) = output(
        Command::new("caddy")
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(staging("files/caddy/Caddyfile"))
            .env("STAGING_DOMAIN", "staging.memeit.pro")
            .env("ACME_EMAIL", "admin@memeit.pro")
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path()),
    );
    assert!(ok && said.contains("Valid configuration"), "caddy validate: {said}");
}
