//! `memectl import compose` as a user runs it: the staging compose file becomes manifests that
//! `meme_api::load` accepts, secrets never leave the compose file, what cannot be imported is
//! warned about by name and position, and the exit codes follow the policy (0 valid, 1 invalid
//! or refused, 2 unreadable).

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::cargo::cargo_bin_cmd;
use meme_api::ManifestTree;
use meme_api::v1alpha1::{Deployment, StrategyType};

/// The values the fixtures hold that must never be written or printed.
const SECRETS: [&str; 3] = ["minio-s3cr3t-do-not-leak", "envfile-s3cr3t-do-not-leak", "dotenv-redis-pass-do-not-leak"];

/// Variables the fixtures interpolate: cleared so the host's environment cannot change them.
const FIXTURE_VARS: [&str; 10] = [
    "TAG",
    "GITHUB_REPOSITORY",
    "LOG_LEVEL",
    "STAGING_DOMAIN",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "REDIS_TAG",
    "WHO",
    "REDIS_PASSWORD",
    "NOT_SET_ANYWHERE",
];

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose").join(rel)
}

fn staging() -> PathBuf {
    fixture("staging/docker-compose.yml")
}

/// Runs `memectl import compose ARGS...` in `cwd` with the fixture variables cleared and
/// `env` set.
fn import(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = cargo_bin_cmd!("memectl");
    cmd.current_dir(cwd).arg("import").arg("compose").args(args);
    for var in FIXTURE_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The folder's manifests, loaded the way the controller loads them.
fn load(dir: &Path) -> meme_api::ManifestSet {
    let tree = ManifestTree::read_dir(dir).unwrap();
    meme_api::load(&tree).unwrap_or_else(|d| panic!("{dir:?} does not validate:\n{d}"))
}

fn deployment<'a>(set: &'a meme_api::ManifestSet, name: &str) -> &'a Deployment {
    set.deployment(name).unwrap_or_else(|| panic!("no Deployment {name}"))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn import_should_turn_the_staging_compose_file_into_manifests_the_controller_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("manifests/staging");
    let output = import(tmp.path(), &[staging().to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        files_in(&out),
        ["backend.yaml", "caddy.yaml", "minio.yaml", "prometheus.yaml", "redis.yaml", "stack.yaml", "worker.yaml"]
    );
    for name in files_in(&out) {
        let content = std::fs::read_to_string(out.join(&name)).unwrap();
        let kind = if name == "stack.yaml" { "stack" } else { "deployment" };
        let schema = format!("# yaml-language-server: $schema=../../crds/{kind}.schema.json\n");
        assert!(content.starts_with(&schema), "{name}:\n{content}");
    }
    assert!(stderr.contains("imported 6 services"), "{stderr}");
    assert!(stderr.contains("caddy, backend, worker, redis, minio, prometheus"), "{stderr}");
    assert!(stderr.contains(&format!("memectl validate {}", out.display())), "{stderr}");
    assert!(stderr.contains("git add"), "{stderr}");

    let set = load(&out);
    assert_eq!(set.deployments.len(), 6);
    let stack = &set.stack.object;
    assert_eq!(stack.metadata.name, "meme-staging");
    assert_eq!(stack.spec.networks.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["meme-network"]);
    assert_eq!(
        stack.spec.volumes.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["caddy-data", "caddy-config", "redis-data", "minio-data", "prometheus-data"]
    );

    // Caddy: the host ports, with their host IP, and therefore Recreate.
    let caddy = &deployment(&set, "caddy").spec;
    let published: Vec<_> = caddy.ports.iter().map(|p| (p.container_port, p.host_port, p.host_ip.as_deref())).collect();
    assert_eq!(
        published,
        [(80, Some(80), None), (443, Some(443), None), (2019, Some(2019), Some("127.0.0.1"))],
        "ports keep their host IP"
    );
    assert_eq!(caddy.strategy.kind, StrategyType::Recreate);
    assert_eq!(caddy.depends_on, ["backend"]);
    assert!(caddy.files.is_empty(), "bind mounts are not turned into files silently");

    // Backend: image interpolated with the default, health check, resources, replicas.
    let backend = &deployment(&set, "backend").spec;
    assert_eq!(backend.image, "ghcr.io/your-org/meme-maker-backend:abc");
    assert_eq!(backend.replicas, 2);
    assert_eq!(backend.strategy.kind, StrategyType::RollingUpdate);
    assert_eq!(backend.depends_on, ["redis", "minio"]);
    assert_eq!(backend.ports.iter().map(|p| (p.container_port, p.host_port)).collect::<Vec<_>>(), [(8000, None)]);
    let check = backend.health_check.as_ref().unwrap();
    assert_eq!(
        check.exec.as_deref().unwrap(),
        ["python", "-c", "import requests; requests.get('http://localhost:8000/health', timeout=5)"]
    );
    let secs = |d: meme_api::units::Duration| d.get().as_secs();
    assert_eq!((secs(check.interval), secs(check.timeout), check.retries, secs(check.start_period)), (30, 10, 3, 30));
    let resources = backend.resources.as_ref().unwrap();
    let limits = resources.limits.as_ref().unwrap();
    assert_eq!(limits.memory.unwrap().bytes(), 512 << 20, "compose 512M is 512 MiB");
    assert_eq!(limits.memory.unwrap().to_string(), "512Mi");
    assert_eq!(limits.cpus.unwrap().nano_cpus(), 1_000_000_000);
    assert_eq!(resources.reservations.as_ref().unwrap().memory.unwrap().to_string(), "128Mi");
    let backend_text = std::fs::read_to_string(out.join("backend.yaml")).unwrap();
    assert!(backend_text.contains("memory: 512Mi"), "{backend_text}");
    let env = |spec: &meme_api::v1alpha1::DeploymentSpec, name: &str| {
        spec.env.iter().find(|e| e.name == name).cloned().unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(env(backend, "LOG_LEVEL").value.as_deref(), Some("INFO"));

    // Worker: a string command split like a shell, durations, init.
    let worker = &deployment(&set, "worker").spec;
    assert_eq!(worker.args.as_deref().unwrap(), ["python", "-m", "app.worker", "--queue", "video jobs"]);
    assert_eq!(worker.stop_grace_period.get().as_secs(), 90);
    assert!(worker.init);
    assert_eq!(worker.resources.as_ref().unwrap().limits.as_ref().unwrap().memory.unwrap().to_string(), "1Gi");
    assert_eq!(env(worker, "WORKER_CONCURRENCY").value.as_deref(), Some("2"));

    // Redis: a named volume, an image tag from .env next to the compose file.
    let redis = &deployment(&set, "redis").spec;
    assert_eq!(redis.image, "redis:7.2.5-alpine");
    assert_eq!(redis.args.as_deref().unwrap(), ["redis-server", "--appendonly", "yes"]);
    let mounts: Vec<_> = redis.volume_mounts.iter().map(|m| (m.name.as_str(), m.mount_path.as_str())).collect();
    assert_eq!(mounts, [("redis-data", "/data")]);
    assert_eq!(redis.health_check.as_ref().unwrap().exec.as_deref().unwrap(), ["redis-cli", "ping"]);

    // MinIO: CMD-SHELL through /bin/sh; the user kept.
    let minio = &deployment(&set, "minio").spec;
    assert_eq!(
        minio.health_check.as_ref().unwrap().exec.as_deref().unwrap(),
        ["/bin/sh", "-c", "curl -f http://localhost:9000/minio/health/live || exit 1"]
    );
    assert_eq!(minio.user.as_deref(), Some("1000:1000"));

    // Prometheus: labels without the reserved prefix, a read-only root filesystem.
    let prometheus = &deployment(&set, "prometheus").spec;
    assert_eq!(prometheus.labels.keys().collect::<Vec<_>>(), ["com.example.team"]);
    assert!(prometheus.read_only_root_filesystem);

    // The offline validator agrees.
    cargo_bin_cmd!("memectl").arg("validate").arg(&out).assert().success();
}

#[test]
fn import_should_never_write_or_print_a_secret_value() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // MINIO_SECRET_KEY is set in the environment, as on a host running compose today.
    let output = import(
        tmp.path(),
        &[staging().to_str().unwrap(), "-o", out.to_str().unwrap()],
        &[("MINIO_SECRET_KEY", "env-s3cr3t-do-not-leak")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let mut everything = text(&output.stdout) + &text(&output.stderr);
    for name in files_in(&out) {
        everything.push_str(&std::fs::read_to_string(out.join(name)).unwrap());
    }
    for secret in SECRETS.iter().chain(&["env-s3cr3t-do-not-leak"]) {
        assert!(!everything.contains(secret), "{secret} leaked:\n{everything}");
    }

    let set = load(&out);
    let root_password = deployment(&set, "minio").spec.env.iter().find(|e| e.name == "MINIO_ROOT_PASSWORD").unwrap();
    assert_eq!(root_password.value, None);
    let reference = &root_password.value_from.as_ref().unwrap().secret_key_ref;
    assert_eq!((reference.name.as_str(), reference.key.as_str()), ("minio", "minio-root-password"));
    let minio_text = std::fs::read_to_string(out.join("minio.yaml")).unwrap();
    assert!(minio_text.contains("secretKeyRef: {name: minio, key: minio-root-password}"), "{minio_text}");
    // A name that is not secret keeps its value.
    let user = deployment(&set, "minio").spec.env.iter().find(|e| e.name == "MINIO_ROOT_USER").unwrap();
    assert_eq!(user.value.as_deref(), Some("admin"));
    let backend = &deployment(&set, "backend").spec;
    for name in ["MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"] {
        let var = backend.env.iter().find(|e| e.name == name).unwrap();
        assert!(var.value.is_none() && var.value_from.is_some(), "{name}: {var:?}");
    }

    // The summary says where each value goes.
    let stderr = text(&output.stderr);
    assert!(stderr.contains("<--secrets-dir>/minio/minio-root-password"), "{stderr}");
    assert!(stderr.contains("<--secrets-dir>/backend/minio-secret-key"), "{stderr}");
}

#[test]
fn import_should_interpolate_variables_like_compose() {
    let tmp = tempfile::tempdir().unwrap();
    let compose = fixture("interpolation/docker-compose.yml");
    let read = |out: &Path| deployment(&load(out), "app").clone();

    let defaults = tmp.path().join("defaults");
    let output = import(tmp.path(), &[compose.to_str().unwrap(), "-o", defaults.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let app = read(&defaults);
    assert_eq!(app.spec.image, "registry.example.com/app:abc", "${{TAG:-abc}} with TAG unset");
    let value = |name: &str| app.spec.env.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
    assert_eq!(value("GREETING").as_deref(), Some("hello world"), ".env next to the compose file");
    assert_eq!(value("MISSING").as_deref(), Some("[]"), "a missing variable is empty, as in compose");
    assert_eq!(value("PRICE").as_deref(), Some("$5"), "$$ is a literal $");
    assert!(
        stderr.contains("services.app.environment.MISSING: variable NOT_SET_ANYWHERE is not set"),
        "the missing variable is warned about: {stderr}"
    );
    // A value that interpolates a secret-looking variable is a secret too, and its value is
    // never computed; elsewhere the reference is kept as written.
    let redis_url = app.spec.env.iter().find(|e| e.name == "REDIS_URL").unwrap();
    assert!(redis_url.value.is_none() && redis_url.value_from.is_some(), "{redis_url:?}");
    assert_eq!(
        app.spec.health_check.as_ref().unwrap().exec.as_deref().unwrap(),
        ["/bin/sh", "-c", "redis-cli -a ${REDIS_PASSWORD} ping"]
    );
    assert!(stderr.contains("services.app.healthcheck.test: interpolates ${REDIS_PASSWORD}"), "{stderr}");
    let mut everything = stderr.clone();
    for name in files_in(&defaults) {
        everything.push_str(&std::fs::read_to_string(defaults.join(name)).unwrap());
    }
    assert!(!everything.contains("dotenv-redis-pass-do-not-leak"), "{everything}");

    // The process environment wins over the defaults and over .env.
    let set = tmp.path().join("set");
    let output = import(
        tmp.path(),
        &[compose.to_str().unwrap(), "-o", set.to_str().unwrap()],
        &[("TAG", "xyz"), ("WHO", "process")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let app = read(&set);
    assert_eq!(app.spec.image, "registry.example.com/app:xyz");
    assert_eq!(app.spec.env.iter().find(|e| e.name == "GREETING").unwrap().value.as_deref(), Some("hello process"));
}

#[test]
fn import_should_warn_about_every_key_it_cannot_import_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let output = import(tmp.path(), &[staging().to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let line = |needle: &str| {
        stderr.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?}:\n{stderr}"))
    };
    // Each warning names the compose file, line and column, the service and the key.
    assert!(
        line("services.caddy.container_name")
            .contains("docker-compose.yml:14:5: warning: services.caddy.container_name:"),
        "{stderr}"
    );
    for key in [
        "services.caddy.logging",
        "services.backend.build",
        "services.backend.deploy.resources.reservations.cpus",
        "services.worker.privileged",
        "services.worker.cap_add",
        "services.worker.extra_hosts",
        "services.minio.networks.meme-network.aliases",
    ] {
        assert!(line(&format!("warning: {key}:")).contains("not supported"), "{key}: {stderr}");
    }
    // A bind-mounted config file: not supported, and `files` is the way.
    let bind = line("warning: services.prometheus.volumes[0]:");
    assert!(bind.contains("bind mount ./prometheus.yml:/etc/prometheus/prometheus.yml is not supported"), "{bind}");
    assert!(
        bind.contains("files: [{path: /etc/prometheus/prometheus.yml, source: files/prometheus/prometheus.yml}]"),
        "{bind}"
    );
    assert!(line("warning: services.caddy.volumes[0]:").contains("files"), "{stderr}");
    // env_file: the file is named, its values are not imported.
    let env_file = line("warning: services.backend.env_file:");
    assert!(env_file.contains(".env.staging") && env_file.contains("not imported"), "{env_file}");
    // Reserved labels are dropped with a warning; restart is ignored with a note.
    assert!(line("services.prometheus.labels.pro.memeit.service").contains("dropped"), "{stderr}");
    assert!(line("note: services.caddy.restart:").contains("ignored"), "{stderr}");
    assert!(stderr.contains(" warnings, "), "the summary counts them: {stderr}");
}

#[test]
fn import_should_refuse_to_overwrite_files_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let args = [staging().to_str().unwrap().to_owned(), "-o".to_owned(), out.to_str().unwrap().to_owned()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(import(tmp.path(), &args, &[]).status.code(), Some(0));
    let caddy = out.join("caddy.yaml");
    let original = std::fs::read_to_string(&caddy).unwrap();
    std::fs::write(&caddy, "# edited by hand\n").unwrap();

    let output = import(tmp.path(), &args, &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: refusing to overwrite files in"), "{stderr}");
    assert!(stderr.contains("caddy.yaml") && stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&caddy).unwrap(), "# edited by hand\n", "nothing was touched");

    let mut forced = args.clone();
    forced.push("--force");
    let output = import(tmp.path(), &forced, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_to_string(&caddy).unwrap(), original);
}

#[test]
fn import_should_exit_2_with_the_position_of_a_yaml_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let file = fixture("not-yaml.yml");
    let output = import(tmp.path(), &[file.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = format!("error: {}:4:", file.display());
    assert!(stderr.starts_with(&expected), "file:line:col first: {stderr}");
    let col = stderr[expected.len()..].split(':').next().unwrap();
    assert!(col.parse::<u32>().is_ok(), "a column: {stderr}");
    assert!(stderr.contains("YAML syntax"), "{stderr}");
    assert!(!out.exists(), "nothing written");

    // Not a compose file, or not there at all: also exit 2.
    let plain = tmp.path().join("plain.yml");
    std::fs::write(&plain, "just: a mapping\n").unwrap();
    let output = import(tmp.path(), &[plain.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no top-level `services`"));
    let output = import(tmp.path(), &["missing.yml"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot read missing.yml"));
}

#[test]
fn import_should_print_one_stream_with_stdout_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let output = import(tmp.path(), &[staging().to_str().unwrap(), "--stdout", "--stack", "demo"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(files_in(tmp.path()).is_empty(), "nothing written: {:?}", files_in(tmp.path()));
    let stream = text(&output.stdout);
    assert_eq!(stream.matches("\n---\n").count(), 6, "{stream}");
    assert!(stream.starts_with("# yaml-language-server: $schema=../../crds/stack.schema.json\n"));
    let tree = ManifestTree::new("stream").with_file("all.yaml", stream.clone());
    let set = meme_api::load(&tree).unwrap_or_else(|d| panic!("{d}\n{stream}"));
    assert_eq!(set.stack.object.metadata.name, "demo", "--stack wins over the compose name");
    assert_eq!(set.deployments.len(), 6);
}

#[test]
fn import_should_write_nothing_when_the_result_does_not_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let file = fixture("host-port-conflict.yml");
    let output = import(tmp.path(), &[file.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("host port 0.0.0.0:8080 is already published"), "{stderr}");
    assert!(stderr.contains("nothing written"), "{stderr}");
    assert!(!out.exists());

    // --force writes them anyway, and still exits 1.
    let output = import(tmp.path(), &[file.to_str().unwrap(), "-o", out.to_str().unwrap(), "--force"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(files_in(&out), ["api.yaml", "stack.yaml", "web.yaml"]);
}

#[test]
fn import_should_name_the_stack_after_the_directory_and_write_under_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("My_Project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(
        project.join("compose.yaml"),
        "services:\n  web_app:\n    image: nginx:1.27\n    ports: [\"53:53/udp\", \"8080:80\"]\n",
    )
    .unwrap();
    let output = import(tmp.path(), &["My_Project/compose.yaml"], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let out = tmp.path().join("manifests/my-project");
    assert_eq!(files_in(&out), ["stack.yaml", "web-app.yaml"]);
    let set = load(&out);
    assert_eq!(set.stack.object.metadata.name, "my-project");
    let web = &deployment(&set, "web-app").spec;
    assert_eq!(web.ports[0].protocol, meme_api::v1alpha1::Protocol::Udp);
    assert_eq!(web.strategy.kind, StrategyType::Recreate);
    assert!(stderr.contains("warning: services.web_app: service renamed to \"web-app\""), "{stderr}");
    assert!(stderr.contains("memectl validate manifests/my-project"), "{stderr}");
}
