//! The subscriber list as CSV (`drip subscribers export`, the admin's export), made safe to
//! open in a spreadsheet.
//!
//! Names are typed by strangers. A cell that starts with `=`, `+`, `-` or `@` (or a tab or
//! carriage return) is read by spreadsheet programs as a formula, so a name such as
//! `=HYPERLINK("http://…","click")` would run on the admin's machine. Such cells are written
//! with a leading apostrophe, which spreadsheets show as text; the import takes it off again.

use crate::db::subscribers::SubscriberRow;

/// The export's columns; the import reads email, name and timezone by header.
pub(crate) const COLUMNS: [&str; 6] = [
    "email",
    "name",
    "timezone",
    "status",
    "created_at",
    "confirmed_at",
];

fn starts_a_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// A cell as written to the file.
pub(crate) fn to_cell(value: &str) -> String {
    if starts_a_formula(value) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

/// A cell as read back: the apostrophe [`to_cell`] added is dropped.
pub(crate) fn from_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if starts_a_formula(rest) => rest,
        _ => cell,
    }
}

/// One subscriber as a row of [`COLUMNS`].
pub fn row(s: &SubscriberRow) -> [String; 6] {
    [
        to_cell(&s.email),
        to_cell(&s.name),
        to_cell(s.timezone.name()),
        s.status.as_str().to_owned(),
        s.created_at.to_string(),
        s.confirmed_at.map(|t| t.to_string()).unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_written_as_text_and_read_back_as_typed() {
        for value in [
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "+1 555",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
        ] {
            let cell = to_cell(value);
            assert!(cell.starts_with('\''), "{cell}");
            assert_eq!(from_cell(&cell), value);
        }
        for value in ["Ann", "O'Brien", "'quoted'", "ann@example.com", ""] {
            assert_eq!(to_cell(value), value);
            assert_eq!(from_cell(value), value);
        }
    }
}
