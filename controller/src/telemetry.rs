//! Logging: tracing with an `EnvFilter` (`RUST_LOG`, default `info`) and text or JSON output,
//! written through [`crate::redact`] whatever the level: at debug and trace, bollard logs
//! request bodies with the containers' environment. Panic messages go the same way.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber and a panic hook that redacts.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal, and never with NO_COLOR.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(RedactingStderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
    }
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let mut text = format!("thread '{}' {info}\n", thread.name().unwrap_or("<unnamed>"));
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            text.push_str(&format!("stack backtrace:\n{backtrace}\n"));
        }
        let _ = std::io::stderr().write_all(crate::redact::redact(&text).as_bytes());
    }));
}

/// Standard error, one event at a time, with known secret values redacted.
struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter { event: Vec::new() }
    }
}

/// Collects one event (the formatter writes an event through one writer, then drops it), so a
/// value is never split between two writes, and writes it redacted when dropped.
struct RedactingWriter {
    event: Vec<u8>,
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.event.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.event.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.event);
        let result = std::io::stderr().lock().write_all(crate::redact::redact(&text).as_bytes());
        self.event.clear();
        result
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_should_redact_a_whole_event_written_in_pieces() {
        crate::redact::remember("secret telemetry/test", "epsilon-s3cret-5");
        let mut w = RedactingWriter { event: Vec::new() };
        w.write_all(b"env=[\"A=epsilon-").unwrap();
        w.write_all(b"s3cret-5\"]\n").unwrap();
        assert_eq!(crate::redact::redact(&String::from_utf8_lossy(&w.event)), "env=[\"A=<redacted>\"]\n");
        w.event.clear();
    }
}
