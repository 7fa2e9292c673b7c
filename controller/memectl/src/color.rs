//! Colour for status words (green Synced/True, yellow Progressing, red Degraded/False), only
//! when stdout is a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).

use meme_api::status::{ConditionStatus, ConditionType};
use std::ffi::OsStr;
use std::io::IsTerminal as _;

/// A foreground colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    /// Good: Synced, True, ready.
    Green,
    /// Under way or needs a look: Progressing, Suspended, Warning.
    Yellow,
    /// Bad: Degraded, Stalled, False.
    Red,
}

impl Color {
    const fn sgr(self) -> &'static str {
        match self {
            Self::Green => "\x1b[32m",
            Self::Yellow => "\x1b[33m",
            Self::Red => "\x1b[31m",
        }
    }
}

/// Paints text, or leaves it as it is when colour is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paint {
    enabled: bool,
}

impl Paint {
    /// No colour (pipes, files, tests).
    pub const PLAIN: Self = Self { enabled: false };
    /// Always colour.
    pub const COLOR: Self = Self { enabled: true };

    /// Colour when stdout is a terminal and `NO_COLOR` allows it.
    #[must_use]
    pub fn for_stdout() -> Self {
        Self { enabled: enabled(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref()) }
    }

    /// Whether this paints.
    #[must_use]
    pub const fn is_enabled(self) -> bool {
        self.enabled
    }

    /// `text` in `color`, or as it is.
    #[must_use]
    pub fn paint(self, text: &str, color: Option<Color>) -> String {
        match color {
            Some(color) if self.enabled && !text.is_empty() => format!("{}{text}\x1b[0m", color.sgr()),
            _ => text.to_owned(),
        }
    }

    /// A sync status or service phase in its colour.
    #[must_use]
    pub fn status(self, text: &str) -> String {
        self.paint(text, status_color(text))
    }
}

/// The colour rule: a terminal, and `NO_COLOR` unset or empty.
#[must_use]
pub fn enabled(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// The colour of a sync status, phase or event type.
#[must_use]
pub fn status_color(text: &str) -> Option<Color> {
    match text {
        "Synced" | "True" | "Normal" => Some(Color::Green),
        "Progressing" | "OutOfSync" | "Suspended" | "Warning" => Some(Color::Yellow),
        "Degraded" | "Stalled" | "False" => Some(Color::Red),
        _ => None,
    }
}

/// The colour of a condition's status: green when it is good news (Ready true, Degraded
/// false), red when bad, yellow for work under way (Progressing true) or not known.
#[must_use]
pub fn condition_color(kind: ConditionType, status: ConditionStatus) -> Option<Color> {
    use ConditionStatus::{False, True, Unknown};
    use ConditionType::{Degraded, Progressing, Ready, Stalled};
    match (kind, status) {
        (Ready, True) | (Degraded | Stalled, False) => Some(Color::Green),
        (Ready, False) | (Degraded | Stalled, True) => Some(Color::Red),
        (Progressing, True) | (_, Unknown) => Some(Color::Yellow),
        (Progressing, False) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_should_be_off_under_no_color_or_without_a_terminal() {
        assert!(enabled(true, None));
        assert!(enabled(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!enabled(true, Some(OsStr::new("1"))));
        assert!(!enabled(false, None));
        assert!(!enabled(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn paint_should_wrap_only_when_enabled() {
        assert_eq!(Paint::PLAIN.status("Degraded"), "Degraded");
        assert_eq!(Paint::COLOR.status("Degraded"), "\x1b[31mDegraded\x1b[0m");
        assert_eq!(Paint::COLOR.status("Synced"), "\x1b[32mSynced\x1b[0m");
        assert_eq!(Paint::COLOR.status("Progressing"), "\x1b[33mProgressing\x1b[0m");
        assert_eq!(Paint::COLOR.status("Unknown"), "Unknown");
        assert_eq!(Paint::COLOR.paint("", Some(Color::Red)), "");
        assert!(!Paint::default().is_enabled());
    }

    #[test]
    fn condition_color_should_follow_polarity() {
        use ConditionStatus::{False, True, Unknown};
        use ConditionType::{Degraded, Progressing, Ready, Stalled};
        assert_eq!(condition_color(Ready, True), Some(Color::Green));
        assert_eq!(condition_color(Ready, False), Some(Color::Red));
        assert_eq!(condition_color(Ready, Unknown), Some(Color::Yellow));
        assert_eq!(condition_color(Degraded, True), Some(Color::Red));
        assert_eq!(condition_color(Stalled, False), Some(Color::Green));
        assert_eq!(condition_color(Progressing, True), Some(Color::Yellow));
        assert_eq!(condition_color(Progressing, False), None);
    }
}
