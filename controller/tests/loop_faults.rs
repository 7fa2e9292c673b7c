//! The controller loop when things go wrong underneath it: a reconcile that panics, an engine
//! that hangs (with and without time limits on its calls). Against the in-memory fake engine.
//! See issue 11, item 8.
//!
//! `cargo test -p meme-controller --test loop_faults`

mod fixtures;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixtures::{Harness, TestService, TestStack};
use meme_controller::docker::fake::Call;
use meme_controller::docker::timeout::CallTimeouts;
use meme_controller::http::fetches::FetchRequests;
use meme_controller::http::host::AllowedHosts;
use meme_controller::http::server::Limits;
use meme_controller::http::{self, Api};
use meme_controller::runtime::controller::ReconcileFn;
use meme_controller::runtime::{Signal, Trigger};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// Log lines written while the guard lives (the test's runtime is single-threaded, so every
/// task of the controller logs on this thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt().with_writer(self.clone()).with_ansi(false).finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tracing_subscriber::fmt::MakeWriter<'_> for Logs {
    type Writer = Self;

    fn make_writer(&self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn a_reconcile_that_panics_should_be_logged_counted_backed_off_and_retried() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let calls = Arc::new(AtomicUsize::new(0));
    let h = Harness::builder()
        .reconcile_with({
            let calls = Arc::clone(&calls);
            move |real: ReconcileFn| -> ReconcileFn {
                Arc::new(move |ctx, service: String, trigger| {
                    if service == "web" && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Box::pin(async { panic!("index out of bounds: the len is 0 but the index is 0") });
                    }
                    real(ctx, service, trigger)
                })
            }
        })
        .start();
    h.apply(&TestStack::new().with_service(TestService::new("web")).with_service(TestService::new("db"))).await;
    h.wait_synced("db").await;
    h.wait_synced("web").await;

    assert_eq!(h.reconciles_of("web")[..2], ["source", "backoff"], "retried after a backoff");
    assert_eq!(h.metric(r#"meme_reconcile_errors_total{service="web",kind="panic"}"#), Some(1.0));
    assert_eq!(h.metric(r#"meme_reconcile_total{service="web",result="error"}"#), Some(1.0));
    assert_eq!(h.metric(r#"meme_reconcile_errors_total{service="db",kind="panic"}"#), Some(0.0));
    let event = &h.events("ReconcilePanicked")[0];
    assert_eq!(event.service.as_deref(), Some("web"));
    let text = logs.text();
    let line =
        text.lines().find(|l| l.contains("reconcile panicked")).unwrap_or_else(|| panic!("no log line:\n{text}"));
    assert!(line.contains("ERROR") && line.contains(r#"service="web""#), "{line}");
    assert!(line.contains("index out of bounds: the len is 0 but the index is 0"), "{line}");
    h.stop().await;
}

/// One HTTP/1.1 request to `addr`; the status code, or a failure after 2 s.
async fn http_status(addr: std::net::SocketAddr, method: &str, path: &str) -> u16 {
    let request = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap()
    };
    tokio::time::timeout(Duration::from_secs(2), request)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} did not answer within 2s"))
}

#[tokio::test]
async fn a_hanging_engine_should_block_neither_signals_nor_the_http_api_nor_shutdown() {
    // No resync timer in the way: every drift check here is one this test asked for.
    let mut h = Harness::builder().resync(Duration::from_secs(3600)).start();
    h.apply(&TestStack::new().with_service(TestService::new("web"))).await;
    h.wait_synced("web").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop_http, http_shutdown) = watch::channel(false);
    let api = Api {
        ctx: Arc::clone(&h.ctx),
        token: Some("t0ken".into()),
        signals: h.signals.clone(),
        fetches: FetchRequests::spawn(mpsc::channel(1).0, Duration::from_secs(5), http_shutdown.clone()),
        webhook_secret: None,
        followed_ref: None,
        hosts: AllowedHosts::default(),
    };
    let limits = Limits { max_connections: 16, idle_timeout: Duration::from_secs(5) };
    tokio::spawn(http::server::serve(listener, http::router(Arc::new(api)), limits, http_shutdown));

    h.fake.hang(Call::List);
    let before = h.drift_checks();
    h.signal(Signal::Resync).await;
    h.wait_until("a drift check hangs in the engine", |h| h.drift_checks() == before + 1).await;
    // More resyncs while it hangs: at most one check is in flight.
    for _ in 0..5 {
        h.signal(Signal::Resync).await;
    }
    // Signals are handled in order: once this one's reconcile started, the resyncs were seen.
    let manual = |h: &Harness| h.reconciles_of("web").iter().filter(|t| *t == "manual").count();
    h.signal(Signal::Service("web".into(), Trigger::Manual)).await;
    h.wait_until("web is reconciled beside the hung check", |h| manual(h) == 1).await;
    assert_eq!(h.drift_checks(), before + 1, "one drift check in flight, not six");
    assert_eq!(http_status(addr, "GET", "/api/v1/status").await, 200);
    assert_eq!(http_status(addr, "GET", "/metrics").await, 200);

    // Released: the hung check and reconcile finish, and the resyncs asked for meanwhile are
    // served by one more check.
    h.fake.heal(Call::List);
    h.wait_until("the coalesced drift check ran", |h| h.drift_checks() == before + 2).await;
    h.signal(Signal::Service("web".into(), Trigger::Manual)).await;
    h.wait_until("web is reconciled again", |h| manual(h) == 2).await;
    assert_eq!(h.drift_checks(), before + 2, "no more checks than that");

    // A drift check hanging at shutdown does not hold the controller up.
    h.fake.hang(Call::List);
    h.signal(Signal::Resync).await;
    h.wait_until("another drift check hangs", |h| h.drift_checks() == before + 3).await;
    h.stop_within(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_hung_engine_call_should_time_out_back_off_and_recover() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let limits = CallTimeouts {
        answer: Duration::from_millis(200),
        change: Duration::from_secs(2),
        stop_margin: Duration::from_secs(2),
        pull: Duration::from_secs(2),
    };
    let h = Harness::builder().timeouts(limits).start();
    h.apply(&TestStack::new().with_service(TestService::new("web"))).await;
    h.wait_synced("web").await;
    h.wait_until("the engine is known to answer", |h| h.ctx.engine_answered()).await;

    h.fake.hang(Call::List);
    h.signal(Signal::Service("web".into(), Trigger::Manual)).await;
    h.wait_until("the hung list is counted as an engine error", |h| {
        h.metric(r#"meme_reconcile_errors_total{service="web",kind="engine"}"#) >= Some(1.0)
    })
    .await;
    h.wait_until("the drift check gave up and /readyz knows", |h| !h.ctx.engine_answered()).await;
    h.wait_until("web is retried after a backoff", |h| h.reconciles_of("web").iter().any(|t| t == "backoff")).await;
    assert!(logs.text().contains("list containers: no answer within 200ms"), "{}", logs.text());

    h.fake.heal(Call::List);
    h.wait_until("the engine answers again", |h| h.ctx.engine_answered()).await;
    h.signal(Signal::Reconcile).await;
    h.wait_until("web reconciles successfully again", |h| {
        h.ctx.with_status(|s| s.last_reconcile.as_ref().is_some_and(|r| r.service == "web" && r.result == "success"))
    })
    .await;
    h.wait_synced("web").await;
    h.stop().await;
}
