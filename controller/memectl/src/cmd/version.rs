//! `memectl version [--client] [-o json|yaml]`: this binary's version and build commit, and the
//! controller's (read from `GET /api/v1/status`), as `kubectl version` prints client and server.
//! A support question starts with both; a mismatch after an upgrade shows here first.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::{Global, Outcome};
use crate::output::{self, Format};

/// Flags of `version`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this binary's version: no request to the controller.
    #[arg(long)]
    client: bool,
    /// Output format (`table` and `wide` are the same two lines).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Format,
}

/// Both versions, as `-o json|yaml` prints them.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Versions {
    /// memectl's own.
    pub client_version: String,
    /// The controller's; absent with `--client`, or from a controller too old to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

/// Runs `version`. The client's version is printed even when the controller cannot be reached;
/// the command then fails (exit 2) with the reason, as `kubectl version` does.
///
/// # Errors
/// The controller cannot be reached (without `--client`), or stdout is closed.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let mut versions = Versions { client_version: crate::VERSION.to_owned(), server_version: None };
    let server = if args.client { Ok(()) } else { server_version(global).await.map(|v| versions.server_version = v) };
    if server.is_err() && !args.output.is_machine() {
        output::print(&render(&versions, args.client))?;
    } else {
        let text = match output::serialize(&versions, args.output)? {
            Some(text) => text,
            None => render(&versions, args.client),
        };
        output::print(&text)?;
    }
    server.map(|()| Outcome::Success)
}

/// The controller's version string, `None` from a controller that predates the field.
async fn server_version(global: &Global) -> anyhow::Result<Option<String>> {
    let status = global.client()?.status().await?;
    Ok(Some(status.controller_version).filter(|v| !v.is_empty()))
}

/// `Client Version: ...` and, unless `--client`, `Server Version: ...` (`unknown` when the
/// controller did not say, or could not be reached).
#[must_use]
pub fn render(versions: &Versions, client_only: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Client Version: {}", versions.client_version);
    if !client_only {
        let _ = writeln!(out, "Server Version: {}", versions.server_version.as_deref().unwrap_or("unknown"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_should_print_both_versions_and_unknown_for_a_silent_server() {
        let mut versions = Versions { client_version: "0.1.0 (commit abc)".into(), server_version: None };
        assert_eq!(render(&versions, true), "Client Version: 0.1.0 (commit abc)\n");
        assert_eq!(render(&versions, false), "Client Version: 0.1.0 (commit abc)\nServer Version: unknown\n");
        versions.server_version = Some("0.1.0 (commit def)".into());
        assert_eq!(
            render(&versions, false),
            "Client Version: 0.1.0 (commit abc)\nServer Version: 0.1.0 (commit def)\n"
        );
    }

    #[test]
    fn json_should_leave_out_an_unknown_server_version() {
        let versions = Versions { client_version: "0.1.0 (commit abc)".into(), server_version: None };
        let json = output::serialize(&versions, Format::Json).unwrap().unwrap();
        assert_eq!(json, "{\n  \"clientVersion\": \"0.1.0 (commit abc)\"\n}\n");
    }
}
