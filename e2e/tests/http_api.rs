//! The HTTP API under hostile clients, against the real controller binary: 1,500 idle
//! connections neither stop a commit from applying nor stay open past the idle timeout; the
//! `Host` check refuses a DNS-rebinding name; `bearer` in lower case is accepted; replayed
//! webhooks start at most one `git fetch` per interval.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

/// The controller's defaults (`--max-connections`, `--http-idle-timeout`).
const MAX_CONNECTIONS: usize = 256;
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_SOCKETS: usize = 1_500;

fn web(image: &str) -> String {
    Service::new("web", image).yaml()
}

/// One request: (status, body).
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(stream, "{head}\r\n{body}").unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned())
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn raise_own_limit(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(hard >= needed, "this test needs {needed} open files; the hard limit is {hard}");
    setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: limit.maximum }).unwrap();
}

#[test]
fn idle_connections_should_neither_stop_a_commit_nor_stay_open() {
    raise_own_limit(IDLE_SOCKETS as u64 + 200);
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web("meme-demo:v1"))]);
    // The soft limit this failed with (1,024 exhausted by ~1,100 idle connections) and room to
    // raise it: the controller takes the hard limit and keeps 512 of it from HTTP clients.
    env.with_wrapper(&["prlimit", "--nofile=512:1024", "--"]);
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let pid = env.pid().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_owned();
    assert_eq!(nofile.split_whitespace().collect::<Vec<_>>()[3..5], ["1024", "1024"], "soft raised to hard: {nofile}");
    let before = open_files(pid);

    // 1,500 connections that never send a byte.
    let flood = Instant::now();
    let sockets: Vec<(TcpStream, Instant)> = (0..IDLE_SOCKETS)
        .map(|i| {
            let s = TcpStream::connect(("127.0.0.1", env.port)).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            (s, Instant::now())
        })
        .collect();
    eprintln!("{IDLE_SOCKETS} connections opened in {:?}", flood.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    // Those over the cap were answered 503 and closed at once; the others are held, idle.
    let mut held = Vec::new();
    let mut refused = 0;
    for (mut s, opened) in sockets {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => held.push((s, opened)),
            Ok(n) if n > 0 => {
                assert!(buf.starts_with(b"HTTP/1.1 503"), "{:?}", String::from_utf8_lossy(&buf[..n]));
                refused += 1;
            }
            other => panic!("a connection over the cap should get a 503 first: {other:?}"),
        }
    }
    let during = open_files(pid);
    eprintln!(
        "held {} idle, refused {refused}; controller descriptors {before} before, {during} during (limit 1024)",
        held.len()
    );
    assert_eq!(held.len(), MAX_CONNECTIONS);
    assert_eq!(refused, IDLE_SOCKETS - MAX_CONNECTIONS);
    assert!(during <= before + MAX_CONNECTIONS + 8, "{during} descriptors open");

    // The server closes the held ones within the idle timeout: watch them while a commit applies.
    let watcher = std::thread::spawn(move || {
        let mut latest = Duration::ZERO;
        let deadline = Instant::now() + IDLE_TIMEOUT * 3;
        while !held.is_empty() && Instant::now() < deadline {
            held.retain_mut(|(s, opened)| {
                let mut buf = [0u8; 16];
                match s.read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                    _ => {
                        latest = latest.max(opened.elapsed());
                        false
                    }
                }
            });
            std::thread::sleep(Duration::from_millis(50));
        }
        (held.len(), latest)
    });

    env.write_files(&[("web.yaml", &web("meme-demo:v2"))]);
    let commit = Instant::now();
    env.commit("web: v2");
    env.wait_running("web", 1, "meme-demo:v2", CONVERGE);
    eprintln!("commit applied in {:?} with the idle connections open", commit.elapsed());

    let (still_open, latest) = watcher.join().unwrap();
    eprintln!("last idle connection closed {latest:?} after it opened");
    assert_eq!(still_open, 0, "idle connections left open");
    assert!(latest <= IDLE_TIMEOUT + Duration::from_secs(2), "{latest:?}");
    wait_for("the API answering again", Duration::from_secs(5), || env.api_get("/healthz").map(|_| ()));
    let logs = env.logs();
    assert!(!logs.contains("Too many open files"), "{}", env.logs_tail());
    assert!(logs.contains("HTTP connection limit reached"), "the refusals are logged");
}

fn hmac_hex(key: &str, message: &str) -> String {
    // openssl is the reference: independent of the controller's code.
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-mac", "HMAC", "-macopt", &format!("key:{key}"), "-hex", "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child.stdin.take().unwrap().write_all(message.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

/// Times (seconds since the epoch) of every fetch the origin served.
fn fetches(counter: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(counter).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn api_should_check_host_accept_lowercase_bearer_and_coalesce_webhook_replays() {
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web("meme-demo:v1"))]);
    let origin = env.make_origin();
    // Every fetch from origin runs this upload-pack, which notes the time.
    let counter = env.path("fetches");
    let upload_pack = env.path("upload-pack.sh");
    std::fs::write(
        &upload_pack,
        format!("#!/bin/sh\ndate +%s.%N >> '{}'\nexec git upload-pack \"$@\"\n", counter.display()),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&upload_pack).status().unwrap();
    env.git(&["config", "remote.origin.uploadpack", upload_pack.to_str().unwrap()]);
    std::fs::write(env.path("webhook-secret"), "hook-secret\n").unwrap();
    let secret_file = env.path("webhook-secret");
    env.with_args(&[
        "--remote",
        "origin",
        "--poll",
        "10m",
        "--resync",
        "10m",
        "--webhook-secret-file",
        secret_file.to_str().unwrap(),
        "--allowed-hosts",
        "ci.example,proxy.example",
    ]);
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let port = env.port;

    // Host: a rebinding name is refused, addresses, localhost and listed names are served.
    let (code, body) = request(port, "GET", "/api/v1/status", &[("Host", "attacker.example:9797")], "");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("--allowed-hosts"), "{body}");
    for host in ["127.0.0.1:9797", "localhost", "[::1]:9797", "172.18.0.1:9797", "CI.example", "proxy.example:443"] {
        assert_eq!(request(port, "GET", "/api/v1/status", &[("Host", host)], "").0, 200, "{host}");
    }

    // Bearer: the scheme in any case, the token exactly.
    let token = format!("token-{}", env.id);
    for (scheme, expected) in [("bearer", 200), ("BEARER", 200), ("Bearer", 200), ("Basic", 401)] {
        let auth = format!("{scheme} {token}");
        let path = if expected == 200 { "/api/v1/resume" } else { "/api/v1/suspend" };
        let (code, body) = request(port, "POST", path, &[("Host", "127.0.0.1"), ("Authorization", &auth)], "");
        assert_eq!(code, expected, "{scheme}: {body}");
    }
    let wrong = format!("bearer {token}x");
    assert_eq!(
        request(port, "POST", "/api/v1/suspend", &[("Host", "localhost"), ("Authorization", &wrong)], "").0,
        401
    );
    assert_eq!(env.status().unwrap()["suspended"], false);

    // Replays: push, then the same signed webhook 50 times.
    wait_for("the start-up fetch", Duration::from_secs(20), || (!fetches(&counter).is_empty()).then_some(()));
    let ci = env.clone_of(&origin, "ci");
    std::fs::write(ci.join("manifests/web.yaml"), web("meme-demo:v2").replace("{id}", &env.id)).unwrap();
    env.git_in(&ci, &["commit", "-qam", "web: v2"]);
    env.git_in(&ci, &["push", "-q", "origin", "main"]);
    let before = fetches(&counter).len();
    let body = r#"{"ref":"refs/heads/main"}"#;
    let signature = format!("sha256={}", hmac_hex("hook-secret", body));
    let flood = Instant::now();
    for _ in 0..50 {
        let headers =
            [("Host", "127.0.0.1"), ("Content-Type", "application/json"), ("X-Hub-Signature-256", &signature)];
        assert_eq!(request(port, "POST", "/api/v1/hooks/git", &headers, body).0, 202);
    }
    let flood = flood.elapsed();
    env.wait_running("web", 1, "meme-demo:v2", CONVERGE);
    // Requests during the 5 s after a fetch merge into one fetch at its end; then nothing.
    std::thread::sleep(Duration::from_secs(7));
    let times = fetches(&counter);
    let started = &times[before..];
    eprintln!("50 webhooks in {flood:?} started {} fetches at {started:?}", started.len());
    let allowed = 2 + usize::try_from(flood.as_secs() / 5).unwrap();
    assert!(!started.is_empty() && started.len() <= allowed, "{} fetches for 50 replays", started.len());
    for pair in started.windows(2) {
        assert!(pair[1] - pair[0] >= 4.9, "fetches {:.2} s apart", pair[1] - pair[0]);
    }
}
