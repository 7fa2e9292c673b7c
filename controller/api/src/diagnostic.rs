//! Compiler-style diagnostics: `file:line:col: error: path: message`, collected for a whole
//! manifest set so that one run reports every problem.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::position::Pos;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The manifest set is rejected.
    Error,
    /// Worth fixing; the set is still applied.
    Warning,
    /// Context for the diagnostics around it (what was not checked, and why).
    Note,
}

/// One problem in a manifest set, with the place it is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The file, as the user named the folder (`manifests/staging/backend.yaml`).
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// Error or warning.
    pub severity: Severity,
    /// The field path within the document (`spec.replicas`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What is wrong, in one sentence without a trailing period.
    pub message: String,
}

impl Diagnostic {
    /// An error at `pos` of `file`.
    #[must_use]
    pub fn error(file: impl Into<String>, pos: Pos, path: Option<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: pos.line,
            column: pos.column,
            severity: Severity::Error,
            path: path.filter(|p| !p.is_empty()),
            message: message.into(),
        }
    }

    /// A note at `pos` of `file`.
    #[must_use]
    pub fn note(file: impl Into<String>, pos: Pos, message: impl Into<String>) -> Self {
        Self { severity: Severity::Note, ..Self::error(file, pos, None, message) }
    }

    /// The same diagnostic as a warning.
    #[must_use]
    pub fn into_warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Whether this diagnostic rejects the set.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        write!(f, "{}:{}:{}: {severity}: ", self.file, self.line, self.column)?;
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// All diagnostics of a manifest set, in file and line order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Whether any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Number of errors.
    #[must_use]
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    /// Sorts by file, line and column (errors before warnings at one place; notes, which say
    /// what was not checked, last) and drops exact duplicates.
    pub fn sort(&mut self) {
        let key = |d: &Diagnostic| (d.severity == Severity::Note, d.file.clone(), d.line, d.column, d.severity);
        self.0.sort_by(|a, b| (key(a), &a.message).cmp(&(key(b), &b.message)));
        self.0.dedup();
    }

    /// The first error, if any.
    #[must_use]
    pub fn first_error(&self) -> Option<&Diagnostic> {
        self.0.iter().find(|d| d.is_error())
    }
}

impl fmt::Display for Diagnostics {
    /// One diagnostic per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
