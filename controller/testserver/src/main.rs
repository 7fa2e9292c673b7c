//! `meme-testserver`: entry point and subcommand dispatch (`serve` by default, `check`, `sleep`).
//!
//! A tiny std-only HTTP/1.1 server used as the demo and e2e test image; it is linked statically
//! and runs `FROM scratch`.
//!
//! Signals: std cannot install signal handlers without `unsafe` or dependencies, so the process
//! keeps the default dispositions. Outside a container, or under `docker run --init`, SIGTERM
//! terminates it immediately. As PID 1 of a container, however, the kernel drops signals that have
//! no handler, so `docker stop` waits for its timeout and then sends SIGKILL. Use `--init`, a short
//! stop timeout, or `STOPSIGNAL SIGKILL` when stopping quickly matters.

mod check;
mod config;
mod http;
mod routes;
mod server;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

const USAGE: &str = "\
usage: meme-testserver [serve]      serve HTTP on 0.0.0.0:$PORT (default 8080)
       meme-testserver check [URL]  GET URL (default http://127.0.0.1:$PORT/health) within 2s;
                                    exit 0 on 2xx, 1 otherwise
       meme-testserver sleep        sleep forever

environment: PORT, VERSION (default dev), HOSTNAME, FAIL_HEALTH=1 (/health fails), FAIL_ALL=1 (every
             endpoint answers 500), STARTUP_DELAY (2s, 500ms, 3), ECHO_PORT (line echo over TCP),
             PEER=host:port (a connection opened at startup, before listening)
endpoints:   GET /  /health  /version  /env  /env/NAME  /file?path=/x  /slow?ms=N  /peer
             POST /fail  /recover";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["serve"] => serve(),
        ["check"] | ["check", _] => match config::port() {
            Ok(port) => check::run(args.get(1).copied(), port),
            Err(e) => fail(&e, ExitCode::FAILURE),
        },
        ["sleep"] => loop {
            thread::park();
        },
        ["help" | "-h" | "--help"] => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            ExitCode::SUCCESS
        }
        // `check` must never exit 2 (reserved by Docker health checks), even on misuse.
        ["check", ..] => fail(USAGE, ExitCode::FAILURE),
        _ => fail(USAGE, ExitCode::from(2)),
    }
}

fn fail(message: &str, code: ExitCode) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "meme-testserver: {message}");
    code
}

fn serve() -> ExitCode {
    let (port, delay) = match (config::port(), config::startup_delay()) {
        (Ok(port), Ok(delay)) => (port, delay),
        (Err(e), _) | (_, Err(e)) => return fail(&e, ExitCode::from(2)),
    };
    let echo_port = match config::echo_port() {
        Ok(port) => port,
        Err(e) => return fail(&e, ExitCode::from(2)),
    };
    let mut state =
        routes::State::new(config::version(), config::hostname(), config::fail_health_env(), config::fail_file());
    state.fail_all = config::fail_all_env();
    if let Some(port) = echo_port {
        match server::bind(config::listen_addr(port)) {
            Ok(listener) => {
                thread::spawn(move || server::echo(&listener));
            }
            Err(e) => return fail(&format!("cannot listen on echo port {port}: {e}"), ExitCode::FAILURE),
        }
    }
    if let Some(peer) = config::peer() {
        // While starting: the connection must outlive whatever happens to this container's
        // networking once it is ready.
        state.peer = std::sync::Mutex::new(Some(server::connect_peer(&peer)));
    }
    let state = Arc::new(state);
    if std::process::id() == 1 {
        server::log(format_args!(
            "running as PID 1: SIGTERM is ignored without a handler; use `docker run --init` or a short stop timeout"
        ));
    }
    if let Some(delay) = delay.filter(|d| !d.is_zero()) {
        server::log(format_args!("STARTUP_DELAY: waiting {delay:?} before listening"));
        thread::sleep(delay);
    }
    let listener = match server::bind(config::listen_addr(port)) {
        Ok(listener) => listener,
        Err(e) => {
            return fail(&format!("cannot listen on {}: {e}", config::listen_addr(port)), ExitCode::FAILURE);
        }
    };
    let addr = listener.local_addr().unwrap_or_else(|_| config::listen_addr(port));
    server::log(format_args!("listening on {addr} version={}", state.version));
    server::serve(listener, state);
    ExitCode::SUCCESS
}
