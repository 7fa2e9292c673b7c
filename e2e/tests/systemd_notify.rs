//! systemd's notify protocol, as the shipped unit (`Type=notify`, `WatchdogSec`) relies on it: the
//! real controller, started with `NOTIFY_SOCKET` pointing at a datagram socket this test owns,
//! feeds the watchdog from its loop, says READY=1 only once the source was read and the engine
//! answered, and STOPPING=1 on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, wait_for};

/// What the controller sent, one line per state (`READY=1`, `WATCHDOG=1`, `STATUS=...`).
fn receive(socket: &UnixDatagram, window: Duration) -> Vec<String> {
    let deadline = Instant::now() + window;
    let mut lines = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        socket.set_read_timeout(Some(left)).expect("read timeout");
        match socket.recv(&mut buf) {
            Ok(n) => lines.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => panic!("reading the notify socket: {e}"),
        }
    }
    lines
}

fn count(lines: &[String], state: &str) -> usize {
    lines.iter().filter(|l| *l == state).count()
}

#[test]
fn notify_should_feed_the_watchdog_from_the_loop_say_ready_once_the_source_is_read_and_stopping_on_sigterm() {
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &Service::new("web", "meme-demo:v1").yaml())]);
    let socket_path = env.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    env.with_env("NOTIFY_SOCKET", socket_path.to_str().expect("utf-8 path"));
    // 400 ms: the loop wakes up every 100 ms and feeds at most every 50 ms.
    env.with_env("WATCHDOG_USEC", "400000");
    // A branch that does not exist yet: the source cannot be read, so the controller is not ready.
    env.with_args(&["--ref", "release"]);
    env.start();

    let before = receive(&socket, Duration::from_secs(2));
    assert_eq!(count(&before, "READY=1"), 0, "READY=1 before the source was read: {before:?}");
    assert!(count(&before, "WATCHDOG=1") >= 5, "the loop must feed the watchdog while not ready: {before:?}");
    assert_eq!(env.api_get("/readyz").map(|r| r.0), Some(503));

    // The branch appears: the source is read, the engine answers, READY=1 follows.
    env.git(&["branch", "release"]);
    let mut seen = Vec::new();
    wait_for("READY=1", Duration::from_secs(30), || {
        seen.extend(receive(&socket, Duration::from_millis(200)));
        seen.iter().any(|l| l == "READY=1").then_some(())
    });
    assert_eq!(env.api_get("/readyz").map(|r| r.0), Some(200), "READY=1 must mean what /readyz means");
    assert!(seen.iter().any(|l| l.starts_with("STATUS=ready")), "a STATUS line comes with READY: {seen:?}");
    env.wait_running("web", 1, "meme-demo:v1", Duration::from_secs(60));

    // Fed on every tick of the loop (about 20 in 2 s), but never more than every 50 ms.
    let window = receive(&socket, Duration::from_secs(2));
    let fed = count(&window, "WATCHDOG=1");
    assert!((10..=45).contains(&fed), "{fed} WATCHDOG=1 in 2 s (expected about 20): {window:?}");
    assert_eq!(count(&window, "READY=1"), 0, "READY=1 is sent once");

    let status = env.terminate().expect("the controller exits on SIGTERM");
    assert!(status.success(), "exit status {status}");
    let last = receive(&socket, Duration::from_millis(500));
    assert_eq!(count(&last, "STOPPING=1"), 1, "STOPPING=1 on SIGTERM: {last:?}");
}
