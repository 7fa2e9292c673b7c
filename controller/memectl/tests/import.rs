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
        [
            "backend.yaml",
            "caddy.yaml",
            "files",
            "minio.yaml",
            "prometheus.yaml",
            "redis.yaml",
            "stack.yaml",
            "worker.yaml"
        ]
    );
    // No crds/ around the output: no `$schema` comment pointing at nothing.
    for name in files_in(&out).into_iter().filter(|n| n.ends_with(".yaml")) {
        let content = std::fs::read_to_string(out.join(&name)).unwrap();
        assert!(!content.contains("$schema"), "{name}:\n{content}");
        assert!(content.starts_with("# Imported from "), "{name}:\n{content}");
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
    // The bind-mounted Caddyfile is copied next to the manifests and becomes `files`.
    assert_eq!(caddy.files.len(), 1);
    assert_eq!(
        (caddy.files[0].path.as_str(), caddy.files[0].source.as_str()),
        ("/etc/caddy/Caddyfile", "files/caddy/Caddyfile")
    );
    assert_eq!(
        std::fs::read(out.join("files/caddy/Caddyfile")).unwrap(),
        std::fs::read(fixture("staging/Caddyfile")).unwrap()
    );
    assert!(stderr.contains("note: services.caddy.volumes[0]: bind-mounted config copied"), "{stderr}");

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
    // A named volume written by one container: Recreate (a single writer), and it says why.
    assert_eq!(redis.strategy.kind, StrategyType::Recreate);
    assert!(stderr.contains("services.redis.volumes: mounts volume \"redis-data\" read-write: strategy Recreate"));
    assert_eq!(redis.health_check.as_ref().unwrap().exec.as_deref().unwrap(), ["redis-cli", "ping"]);

    // MinIO: CMD-SHELL through /bin/sh; the user kept.
    let minio = &deployment(&set, "minio").spec;
    assert_eq!(
        minio.health_check.as_ref().unwrap().exec.as_deref().unwrap(),
        ["/bin/sh", "-c", "curl -f http://localhost:9000/minio/health/live || exit 1"]
    );
    assert_eq!(minio.user.as_deref(), Some("1000:1000"));

    // Prometheus: labels without the reserved prefix; its config as `files`, which a read-only
    // root filesystem would refuse: read_only is dropped, with a warning.
    let prometheus = &deployment(&set, "prometheus").spec;
    assert_eq!(prometheus.labels.keys().collect::<Vec<_>>(), ["com.example.team"]);
    assert_eq!(prometheus.files[0].source, "files/prometheus/prometheus.yml");
    assert!(!prometheus.read_only_root_filesystem);
    assert!(stderr.contains("warning: services.prometheus.read_only: not kept"), "{stderr}");

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
    for name in files_in(&out).into_iter().filter(|n| n.ends_with(".yaml")) {
        everything.push_str(&std::fs::read_to_string(out.join(name)).unwrap());
    }
    for secret in SECRETS.iter().chain(&["env-s3cr3t-do-not-leak"]) {
        assert!(!everything.contains(secret), "{secret} leaked:\n{everything}");
    }

    let set = load(&out);
    let root_password = deployment(&set, "minio").spec.env.iter().find(|e| e.name == "MINIO_ROOT_PASSWORD").unwrap();
    assert_eq!(root_password.value, None);
    let reference = &root_password.value_from.as_ref().unwrap().secret_key_ref;
    assert_eq!((reference.name.as_str(), reference.key.as_str()), ("meme-staging", "minio-root-password"));
    let minio_text = std::fs::read_to_string(out.join("minio.yaml")).unwrap();
    assert!(minio_text.contains("secretKeyRef: {name: meme-staging, key: minio-root-password}"), "{minio_text}");
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
    assert!(stderr.contains("<--secrets-dir>/meme-staging/minio-root-password"), "{stderr}");
    assert!(stderr.contains("<--secrets-dir>/meme-staging/minio-secret-key"), "{stderr}");
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
    for name in files_in(&defaults).into_iter().filter(|n| n.ends_with(".yaml")) {
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
    // A bind-mounted config file: copied, with a note saying where.
    let bind = line("note: services.prometheus.volumes[0]:");
    assert!(bind.contains("./prometheus.yml as files/prometheus/prometheus.yml"), "{bind}");
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
    assert!(stream.starts_with("# Imported from "), "no $schema without crds/ to point at: {stream}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("not copied with --stdout"), "{stderr}");
    assert!(stderr.contains("Caddyfile -> manifests/demo/files/caddy/Caddyfile"), "{stderr}");
    // With the config files copied where the summary says, the stream validates.
    let tree = ManifestTree::new("stream")
        .with_file("all.yaml", stream.clone())
        .with_file("files/caddy/Caddyfile", std::fs::read(fixture("staging/Caddyfile")).unwrap())
        .with_file("files/prometheus/prometheus.yml", std::fs::read(fixture("staging/prometheus.yml")).unwrap());
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

/// Writes a compose project into `dir`: `files` are (relative path, content).
fn project(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir.join("compose.yaml")
}

/// Everything an import printed and wrote, to search for values that must not be there.
fn everything(output: &Output, out: &Path) -> String {
    let mut all = text(&output.stdout) + &text(&output.stderr);
    let mut stack = vec![out.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    all
}

/// A password inside a value (a URL's userinfo, a DSN's password=) is a secret like a
/// secret-looking name: never written in clear. Where it cannot become a secret (a command, a
/// label), the import stops and names the place, not the value.
// See: #9
#[test]
fn issue_9_import_never_writes_credentials_inside_values() {
    let tmp = tempfile::tempdir().unwrap();
    let compose = project(
        tmp.path(),
        &[
            (
                "compose.yaml",
                "services:\n  api:\n    image: api:1\n    environment:\n      DATABASE_URL: postgres://meme:hunter2@db:5432/meme\n      \
                 CACHE_DSN: host=cache user=app password=hunter3 dbname=app\n      UPSTREAM: ${UPSTREAM}\n      \
                 PLAIN_URL: https://example.com/a\n",
            ),
            (".env", "UPSTREAM=amqp://guest:hunter4@rabbit:5672/\n"),
        ],
    );
    let out = tmp.path().join("out");
    let output = import(tmp.path(), &[compose.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let all = everything(&output, &out);
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
    let set = load(&out);
    let api = &deployment(&set, "api").spec;
    for name in ["DATABASE_URL", "CACHE_DSN", "UPSTREAM"] {
        let var = api.env.iter().find(|e| e.name == name).unwrap();
        assert!(var.value.is_none() && var.value_from.is_some(), "{name}: {var:?}");
    }
    assert_eq!(api.env.iter().find(|e| e.name == "PLAIN_URL").unwrap().value.as_deref(), Some("https://example.com/a"));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("DATABASE_URL: its value holds a password in a URL"), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("  <--secrets-dir>/")).count(), 3, "{stderr}");

    // In a command or a label it cannot be a secret: the import stops, naming each place.
    let tmp = tempfile::tempdir().unwrap();
    let compose = project(
        tmp.path(),
        &[(
            "compose.yaml",
            "services:\n  redis:\n    image: redis:7\n    command: redis-server --requirepass hunter5\n  web:\n    image: web:1\n    \
             labels:\n      backup.target: s3://key:hunter6@bucket/\n",
        )],
    );
    let out = tmp.path().join("out");
    let output = import(tmp.path(), &[compose.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("compose.yaml:4:5: error: services.redis.command: holds `--requirepass` followed by a password"),
        "{stderr}"
    );
    assert!(stderr.contains("error: services.web.labels.backup.target: holds a password in a URL"), "{stderr}");
    assert!(stderr.contains("2 credentials written in clear outside environment variables"), "{stderr}");
    assert!(!stderr.contains("hunter5") && !stderr.contains("hunter6"), "{stderr}");
    assert!(!out.exists(), "nothing written");
}

/// One variable used by several services is one secret key, not one per service; two different
/// values under one name are two keys.
// See: #9
#[test]
fn issue_9_import_maps_one_variable_used_by_several_services_to_one_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let compose = project(
        tmp.path(),
        &[(
            "compose.yaml",
            "name: shop\nservices:\n  minio:\n    image: minio:1\n    environment:\n      MINIO_ROOT_PASSWORD: ${MINIO_ROOT_PASSWORD}\n  \
             backend:\n    image: backend:1\n    environment:\n      S3_SECRET_KEY: ${MINIO_ROOT_PASSWORD}\n      API_TOKEN: one\n  \
             worker:\n    image: worker:1\n    environment:\n      S3_SECRET_KEY: ${MINIO_ROOT_PASSWORD}\n      API_TOKEN: two\n",
        )],
    );
    let out = tmp.path().join("out");
    let output = import(tmp.path(), &[compose.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let set = load(&out);
    let reference = |service: &str, var: &str| {
        let env = deployment(&set, service).spec.env.iter().find(|e| e.name == var).unwrap().clone();
        let r = env.value_from.unwrap().secret_key_ref;
        (r.name, r.key)
    };
    let shared = ("shop".to_owned(), "minio-root-password".to_owned());
    assert_eq!(reference("minio", "MINIO_ROOT_PASSWORD"), shared);
    assert_eq!(reference("backend", "S3_SECRET_KEY"), shared);
    assert_eq!(reference("worker", "S3_SECRET_KEY"), shared);
    assert_ne!(reference("backend", "API_TOKEN").1, reference("worker", "API_TOKEN").1, "different values");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  <--secrets-dir>/shop/")).collect();
    assert_eq!(lines.len(), 3, "three secret files to create, not five: {stderr}");
    assert!(
        lines.iter().any(|l| l.contains("minio-root-password")
            && l.contains("MINIO_ROOT_PASSWORD of minio, S3_SECRET_KEY of backend, S3_SECRET_KEY of worker")),
        "{stderr}"
    );
}

/// A bind-mounted config file (or read-only folder) next to the compose file is copied into the
/// manifests folder and becomes `files`; a secret-looking file, or one holding a password, is not
/// copied; a writable folder is data.
// See: #9
#[test]
fn issue_9_import_copies_bind_mounted_config_files_and_keeps_secrets_out() {
    let tmp = tempfile::tempdir().unwrap();
    let compose = project(
        tmp.path(),
        &[
            (
                "compose.yaml",
                "services:\n  caddy:\n    image: caddy:2\n    volumes:\n      - ./caddy/Caddyfile:/etc/caddy/Caddyfile\n      \
                 - ./certs/site.key:/etc/ssl/site.key:ro\n  prometheus:\n    image: prom/prometheus:v2\n    volumes:\n      \
                 - ./prometheus:/etc/prometheus:ro\n      - ./data:/data\n",
            ),
            ("caddy/Caddyfile", ":80 {\n  reverse_proxy backend:8000\n}\n"),
            ("certs/site.key", "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n"),
            ("prometheus/prometheus.yml", "scrape_configs:\n  - job_name: app\n"),
            ("prometheus/rules/alerts.yml", "groups: []\n"),
            (
                "prometheus/remote.yml",
                "remote_write:\n  - url: https://m.example.com\n    basic_auth:\n      password: hunter7\n",
            ),
            ("data/db.bin", "x"),
        ],
    );
    let out = tmp.path().join("out");
    let output = import(tmp.path(), &[compose.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let set = load(&out);
    let files = |service: &str| {
        deployment(&set, service).spec.files.iter().map(|f| (f.path.clone(), f.source.clone())).collect::<Vec<_>>()
    };
    assert_eq!(files("caddy"), [("/etc/caddy/Caddyfile".to_owned(), "files/caddy/Caddyfile".to_owned())]);
    assert_eq!(
        files("prometheus"),
        [
            ("/etc/prometheus/prometheus.yml".to_owned(), "files/prometheus/prometheus/prometheus.yml".to_owned()),
            ("/etc/prometheus/rules/alerts.yml".to_owned(), "files/prometheus/prometheus/rules/alerts.yml".to_owned()),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("files/caddy/Caddyfile")).unwrap(),
        ":80 {\n  reverse_proxy backend:8000\n}\n"
    );
    assert!(stderr.contains("./certs/site.key looks like a secret"), "{stderr}");
    assert!(stderr.contains("./prometheus/remote.yml:4 holds what looks like a credential"), "{stderr}");
    assert!(stderr.contains("bind mount ./data:/data is not supported") && stderr.contains("named volume"), "{stderr}");
    let all = everything(&output, &out);
    assert!(!all.contains("hunter7") && !all.contains("not-a-real-key"), "{all}");
}

/// The `$schema` comment points at this repository's crds/ when the output is inside it, and
/// is left out when there is nothing to point at.
// See: #9
#[test]
fn issue_9_import_schema_comment_points_at_something_that_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let compose = project(tmp.path(), &[("compose.yaml", "services:\n  web:\n    image: web:1\n")]);
    std::fs::create_dir_all(tmp.path().join("repo/crds")).unwrap();
    for kind in ["stack", "deployment"] {
        std::fs::write(tmp.path().join(format!("repo/crds/{kind}.schema.json")), "{}").unwrap();
    }
    let out = tmp.path().join("repo/manifests/shop");
    let output = import(tmp.path(), &[compose.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    for (file, kind) in [("stack.yaml", "stack"), ("web.yaml", "deployment")] {
        let content = std::fs::read_to_string(out.join(file)).unwrap();
        let first = content.lines().next().unwrap();
        let target = first.strip_prefix("# yaml-language-server: $schema=").unwrap_or_else(|| panic!("{content}"));
        assert_eq!(target, format!("../../crds/{kind}.schema.json"));
        assert!(out.join(target).is_file(), "{target} exists relative to {}", out.display());
    }
}

/// Whether a `.env` happens to be next to the compose file changes the manifests: the import
/// says so, names the variables it read from it, and records them in the Stack's comments.
// See: #9
#[test]
fn issue_9_import_says_when_the_output_depends_on_a_dotenv() {
    let tmp = tempfile::tempdir().unwrap();
    let compose = project(
        tmp.path(),
        &[
            ("compose.yaml", "services:\n  web:\n    image: web:${TAG:-1}\n    environment:\n      MODE: ${MODE}\n"),
            (".env", "TAG=2\nMODE=fast\n"),
        ],
    );
    let with = tmp.path().join("with");
    let output = import(tmp.path(), &[compose.to_str().unwrap(), "-o", with.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with(&format!("note: read {} for ${{VAR}} interpolation", tmp.path().join(".env").display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("interpolated at import time from {}: MODE, TAG", tmp.path().join(".env").display())),
        "{stderr}"
    );
    let stack = std::fs::read_to_string(with.join("stack.yaml")).unwrap();
    assert!(stack.contains("# ${VAR} interpolated at import time from") && stack.contains(": MODE, TAG\n"), "{stack}");
    assert_eq!(deployment(&load(&with), "web").spec.image, "web:2");

    std::fs::remove_file(tmp.path().join(".env")).unwrap();
    let without = tmp.path().join("without");
    let output = import(tmp.path(), &[compose.to_str().unwrap(), "-o", without.to_str().unwrap()], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("set nowhere at import time (empty or their default): MODE, TAG"), "{stderr}");
    assert_eq!(deployment(&load(&without), "web").spec.image, "web:1");
}
