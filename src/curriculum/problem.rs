//! A problem found in a lesson or course file, or in the editor's form: where it is and
//! what to fix. `path:line: message` when printed.

use std::fmt;

/// One problem, at a line of a file (or of a form field).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: Option<String>,
    pub line: usize,
    /// The lesson field the problem is in, when it is about one.
    pub field: Option<&'static str>,
    pub message: String,
}

impl Problem {
    pub fn new(line: usize, message: impl Into<String>) -> Problem {
        Problem {
            file: None,
            line,
            field: None,
            message: message.into(),
        }
    }

    pub(super) fn in_field(
        field: &'static str,
        line: usize,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            file: None,
            line,
            field: Some(field),
            message: message.into(),
        }
    }

    pub(super) fn in_file(mut self, file: &str) -> Problem {
        self.file = Some(file.to_owned());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}
