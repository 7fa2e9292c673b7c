//! `memectl import compose` end to end: a realistic Meme Maker compose file (Caddy with a
//! bind-mounted Caddyfile, two backends, a worker, Redis and MinIO with volumes, Prometheus
//! with its config, `.env` interpolation, a DSN with a password) becomes manifests that
//! validate, are committed, and converge on the real engine with the config files in place and
//! the secrets read from the secrets folder. The compose images are mapped to the locally built
//! test server (`meme-demo:*`), which serves `/file?path=` and `/env/NAME`.

use std::process::{Command, Output};
use std::time::Duration;

use meme_e2e::{TestEnv, binary, http_get, wait_for};

const CONVERGE: Duration = Duration::from_secs(120);

const CADDYFILE: &str = "{$STAGING_DOMAIN:localhost} {\n    reverse_proxy backend:8000\n}\n";
const PROMETHEUS: &str = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: backend\n    static_configs:\n      - targets: [\"backend:8080\"]\n";
/// Values that must reach the containers through the secrets folder, never the manifests.
const POSTGRES_PASSWORD: &str = "e2e-pg-s3cret";
const MINIO_PASSWORD: &str = "e2e-minio-s3cret";

/// The Meme Maker staging stack as its compose file describes it (images mapped to the test
/// server; `${VAR}`s from `.env`).
fn compose_file() -> String {
    "name: meme-maker
services:
  caddy:
    image: meme-demo-hc:${TAG}
    restart: unless-stopped
    ports:
      - \"127.0.0.1:${CADDY_PORT}:8080\"
    volumes:
      - ./caddy/Caddyfile:/etc/caddy/Caddyfile:ro
      - caddy_data:/data
    environment:
      STAGING_DOMAIN: ${STAGING_DOMAIN:-staging.memeit.pro}
    depends_on: [backend]
  backend:
    image: meme-demo:${TAG}
    deploy:
      replicas: 2
      resources:
        limits: {cpus: '0.5', memory: 64M}
    environment:
      - LOG_LEVEL=${LOG_LEVEL:-INFO}
      - DATABASE_URL=postgres://meme:${POSTGRES_PASSWORD}@db:5432/meme
      - REDIS_URL=redis://redis:6379/0
      - MINIO_ENDPOINT=minio:9000
      - MINIO_SECRET_KEY=${MINIO_ROOT_PASSWORD}
    expose: [\"8080\"]
    depends_on: [redis, minio]
  worker:
    image: meme-demo:${TAG}
    command: [serve]
    environment:
      REDIS_URL: redis://redis:6379/0
      MINIO_SECRET_KEY: ${MINIO_ROOT_PASSWORD}
      WORKER_CONCURRENCY: 2
    depends_on: [redis, minio]
    stop_grace_period: 5s
  redis:
    image: meme-demo:v1
    volumes:
      - redis_data:/data
  minio:
    image: meme-demo:v1
    environment:
      MINIO_ROOT_USER: admin
      MINIO_ROOT_PASSWORD: ${MINIO_ROOT_PASSWORD}
    volumes:
      - minio_data:/data
  prometheus:
    image: meme-demo:v1
    volumes:
      - ./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro
      - prometheus_data:/prometheus
volumes:
  caddy_data:
  redis_data:
  minio_data:
  prometheus_data:
"
    .to_owned()
}

fn memectl(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(binary("memectl"))
        .current_dir(env.repo())
        .args(args)
        .env("MEMECTL_SERVER", env.url())
        .env("NO_COLOR", "1")
        .env_remove("TAG")
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("MINIO_ROOT_PASSWORD")
        .output()
        .expect("memectl (hack/e2e.sh builds it)")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

// See: #9
#[test]
fn issue_9_import_of_the_meme_maker_compose_file_converges_with_its_config_files() {
    let mut env = TestEnv::new(&[]);
    let caddy_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let project = env.path("meme-maker");
    for (rel, content) in [
        ("compose.yaml", compose_file()),
        ("caddy/Caddyfile", CADDYFILE.to_owned()),
        ("prometheus/prometheus.yml", PROMETHEUS.to_owned()),
        (
            ".env",
            format!(
                "TAG=v1\nCADDY_PORT={caddy_port}\nPOSTGRES_PASSWORD={POSTGRES_PASSWORD}\nMINIO_ROOT_PASSWORD={MINIO_PASSWORD}\n"
            ),
        ),
    ] {
        let path = project.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    // Import into the repository's manifests folder, as the summary then says to commit.
    let compose = project.join("compose.yaml");
    let out =
        memectl(&env, &["import", "compose", compose.to_str().unwrap(), "--stack", &env.stack, "-o", "manifests"]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(!report.contains(POSTGRES_PASSWORD) && !report.contains(MINIO_PASSWORD), "a secret printed:\n{report}");
    let manifests = env.repo().join("manifests");
    let mut written = String::new();
    for file in
        ["stack.yaml", "caddy.yaml", "backend.yaml", "worker.yaml", "redis.yaml", "minio.yaml", "prometheus.yaml"]
    {
        written.push_str(&std::fs::read_to_string(manifests.join(file)).unwrap_or_else(|e| panic!("{file}: {e}")));
    }
    assert!(!written.contains(POSTGRES_PASSWORD) && !written.contains(MINIO_PASSWORD), "a secret written:\n{written}");
    assert_eq!(std::fs::read_to_string(manifests.join("files/caddy/Caddyfile")).unwrap(), CADDYFILE);
    assert_eq!(std::fs::read_to_string(manifests.join("files/prometheus/prometheus.yml")).unwrap(), PROMETHEUS);
    let out = memectl(&env, &["validate", "manifests"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The secrets the summary names: the DSN (its password interpolated) and the MinIO password
    // shared by minio, backend and worker as one key.
    let secret_lines: Vec<&str> = report.lines().filter(|l| l.starts_with("  <--secrets-dir>/")).collect();
    assert_eq!(secret_lines.len(), 2, "{report}");
    assert!(secret_lines.iter().any(|l| l.contains(&format!("{}/database-url", env.stack))), "{report}");
    assert!(
        secret_lines.iter().any(|l| l.contains(&format!("{}/minio-root-password", env.stack))
            && l.contains("MINIO_SECRET_KEY of backend")
            && l.contains("MINIO_SECRET_KEY of worker")
            && l.contains("MINIO_ROOT_PASSWORD of minio")),
        "{report}"
    );
    let dsn = format!("postgres://meme:{POSTGRES_PASSWORD}@db:5432/meme");
    env.write_secret(&env.stack, "database-url", &dsn);
    env.write_secret(&env.stack, "minio-root-password", MINIO_PASSWORD);

    env.commit("Import stack meme-maker from compose.yaml");
    env.start();
    let out = memectl(&env, &["wait", "--for", "synced", "--revision", "HEAD", "--timeout", "120s"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.logs_tail());

    for (service, replicas, image) in [
        ("caddy", 1, "meme-demo-hc:v1"),
        ("backend", 2, "meme-demo:v1"),
        ("worker", 1, "meme-demo:v1"),
        ("redis", 1, "meme-demo:v1"),
        ("minio", 1, "meme-demo:v1"),
        ("prometheus", 1, "meme-demo:v1"),
    ] {
        env.wait_running(service, replicas, image, CONVERGE);
    }
    // The Caddyfile is in place behind the published port; Prometheus' config in its container.
    let caddy = format!("127.0.0.1:{caddy_port}");
    let served = wait_for("the Caddyfile through caddy's host port", CONVERGE, || {
        http_get(&caddy, "/file?path=/etc/caddy/Caddyfile").filter(|(code, _)| *code == 200)
    });
    assert_eq!(served.1, CADDYFILE);
    let prometheus = &env.containers(Some("prometheus"))[0];
    let addr = format!("{}:8080", prometheus.ip().expect("prometheus has an address"));
    let (code, body) = http_get(&addr, "/file?path=/etc/prometheus/prometheus.yml").expect("prometheus answers");
    assert_eq!((code, body.as_str()), (200, PROMETHEUS));
    // Secrets reach the containers from the secrets folder; plain values from the manifests.
    for backend in env.containers(Some("backend")) {
        let addr = format!("{}:8080", backend.ip().expect("backend has an address"));
        assert_eq!(http_get(&addr, "/env/DATABASE_URL").map(|(_, b)| b), Some(format!("{dsn}\n")));
        assert_eq!(http_get(&addr, "/env/MINIO_SECRET_KEY").map(|(_, b)| b), Some(format!("{MINIO_PASSWORD}\n")));
        assert_eq!(http_get(&addr, "/env/LOG_LEVEL").map(|(_, b)| b), Some("INFO\n".to_owned()));
    }
    // Named volumes, owned by the stack; the services writing them roll out one writer at a time.
    for volume in ["caddy-data", "redis-data", "minio-data", "prometheus-data"] {
        let name = format!("{}_{volume}", env.stack);
        assert!(meme_e2e::docker_ok(&["volume", "inspect", &name]), "volume {name}");
    }
    for service in ["redis", "minio", "prometheus", "caddy"] {
        let manifest = std::fs::read_to_string(manifests.join(format!("{service}.yaml"))).unwrap();
        assert!(manifest.contains("strategy: {type: Recreate}"), "{service}:\n{manifest}");
    }
}
