//! Where output goes: `-o table|wide|json|yaml`, stdout writes that report a closed pipe as an
//! error (which the exit-code policy turns into success), and the JSON/YAML serializations.

use std::io::Write as _;

use anyhow::Context as _;
use serde::Serialize;

/// `-o` for the commands that read the controller's API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// Aligned columns, with more of them.
    Wide,
    /// The API's JSON, pretty-printed.
    Json,
    /// The same value as YAML.
    Yaml,
}

impl Format {
    /// Whether this is a machine format (`json`, `yaml`).
    #[must_use]
    pub const fn is_machine(self) -> bool {
        matches!(self, Self::Json | Self::Yaml)
    }
}

/// Writes `text` to stdout and flushes it. A closed pipe (`memectl get ev | head`) comes back
/// as `BrokenPipe`, which [`crate::cli`] treats as success.
///
/// # Errors
/// Writing to stdout failed.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// `value` as pretty JSON (with a final newline) or YAML, for `-o json|yaml`; `None` for the
/// table formats.
///
/// # Errors
/// The value cannot be serialized (it always can: these are plain data types).
pub fn serialize<T: Serialize>(value: &T, format: Format) -> anyhow::Result<Option<String>> {
    Ok(match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(value).context("cannot serialize to JSON")?;
            text.push('\n');
            Some(text)
        }
        Format::Yaml => {
            let mut text = serde_saphyr::to_string(value).context("cannot serialize to YAML")?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            Some(text)
        }
        Format::Table | Format::Wide => None,
    })
}
