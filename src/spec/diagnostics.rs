//! Load errors in the style of rustc: what, where (`file:line:col`, dotted
//! path), expected vs found, and a hint.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u32,
    pub col: u32,
    /// Dotted path of the offending node, e.g. `steps.security.followups.max`.
    pub path: String,
    pub expected: Option<String>,
    pub found: Option<String>,
    pub hint: Option<String>,
}

/// All problems found in one load, sorted by position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{sev}: {}", self.message)?;
        write!(f, "  --> {}:{}:{}", self.file, self.line, self.col)?;
        if !self.path.is_empty() {
            write!(f, "   ({})", self.path)?;
        }
        if let (Some(e), Some(found)) = (&self.expected, &self.found) {
            write!(f, "\n  = expected {e}, found {found}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nhelp: {h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
