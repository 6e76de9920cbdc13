//! The bad-input table: every kind of wrong input drip meets, one table of cases per surface,
//! each case asserting the answer (status or error), that the answer names the field or the
//! file and line, and that nothing changed: a digest of every row of every table is the same
//! before and after, and no mail was written. Where a test elsewhere covers a case in depth,
//! the table still lists it (this is the one place that documents all bad-input behaviour).
//!
//! - `sign_up`: POST /subscribe (form and JSON) and POST /api/v1/subscribers; hostile
//!   addresses, time zones, names, oversized and malformed bodies, API lesson edits.
//! - `csv`: subscriber import; broken rows are reported by line and skipped, a file drip
//!   cannot read at all (UTF-16, empty) is refused whole.
//! - `lessons`: broken lesson files; sync refuses the whole folder (`path:line: message`).
//! - `mime`: hostile inbound messages; each finishes quickly, and is refused or stored as an
//!   unmatched message, never attributed to a subscriber.
//! - `tokens`: forged, truncated, foreign and junk link tokens on every token route, and
//!   bad values posted to the preferences page.
//! - `cli`: the same kinds of input given to the `drip` command.

use std::collections::BTreeMap;

use drip::app::App;
use sha2::{Digest, Sha256};
use sqlx::{Column, Row};

use crate::support::{TestApp, repo};

pub use crate::cli::workdir as cli_workdir;

/// Runs `drip ARGS` in `work` on the test's database, with `stdin` as its input.
pub fn drip(
    t: &TestApp,
    work: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    let env = [("DRIP_DATABASE__URL", t.db.url.as_str())];
    crate::cli::drip_with_input(work, args, &env, stdin)
}

mod cli;
mod csv;
mod lessons;
mod mime;
mod sign_up;
mod tokens;

/// Every table the migrations create, in migration order.
fn tables() -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(repo("migrations/sqlite"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut names = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            if let Some(rest) = line.trim_start().strip_prefix("CREATE TABLE ") {
                let rest = rest.trim_start_matches("IF NOT EXISTS ");
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
            // A table rebuilt under a new name and renamed back (SQLite cannot drop a CHECK).
            if let Some(rest) = line.trim_start().strip_prefix("ALTER TABLE ")
                && let Some((from, to)) = rest.trim_end_matches(';').split_once(" RENAME TO ")
            {
                names.retain(|n| n != from.trim());
                if !names.iter().any(|n| n == to.trim()) {
                    names.push(to.trim().to_owned());
                }
            }
        }
    }
    assert!(names.len() >= 12, "tables from the migrations: {names:?}");
    names
}

/// Columns that record that a credential was used, not a change made by the input.
const BOOKKEEPING: &[(&str, &str)] = &[
    ("api_tokens", "last_used_at"),
    ("admin_sessions", "last_seen_at"),
];

fn cell(row: &sqlx::any::AnyRow, i: usize) -> String {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return format!("{v:?}");
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return format!("{v:?}");
    }
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
        return match v {
            Some(b) => format!("<{} bytes {:x}>", b.len(), Sha256::digest(&b)),
            None => "None".into(),
        };
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return format!("{v:?}");
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
        return format!("{v:?}");
    }
    panic!(
        "column {} has a type the snapshot cannot read",
        row.column(i).name()
    )
}

/// Every row of every table, by table, each row one line (`col=value` in column order).
pub type Snapshot = BTreeMap<String, Vec<String>>;

pub async fn snapshot(app: &App) -> Snapshot {
    let mut out = Snapshot::new();
    for table in tables() {
        let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY 1"))
            .fetch_all(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("snapshot of {table}: {e}"));
        let lines = rows
            .iter()
            .map(|row| {
                (0..row.columns().len())
                    .filter(|&i| !BOOKKEEPING.contains(&(table.as_str(), row.column(i).name())))
                    .map(|i| format!("{}={}", row.column(i).name(), cell(row, i)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.insert(table, lines);
    }
    out
}

/// The tables whose rows differ, each with the rows only one side has (a few of them).
pub fn changes(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (table, rows) in after {
        let old = before.get(table).cloned().unwrap_or_default();
        if &old == rows {
            continue;
        }
        let mut diff: Vec<String> = old
            .iter()
            .filter(|r| !rows.contains(r))
            .map(|r| format!("- {}", short(r)))
            .collect();
        diff.extend(
            rows.iter()
                .filter(|r| !old.contains(r))
                .map(|r| format!("+ {}", short(r))),
        );
        diff.truncate(6);
        out.insert(table.clone(), diff);
    }
    out
}

fn short(row: &str) -> String {
    let mut s: String = row.chars().take(300).collect();
    if s.len() < row.len() {
        s.push('…');
    }
    s
}

/// Panics naming `case` when any row changed or a mail was written.
pub fn assert_unchanged(t: &TestApp, case: &str, before: &Snapshot, after: &Snapshot) {
    let changed = changes(before, after);
    assert!(
        changed.is_empty(),
        "{case}: the input changed the database: {changed:#?}"
    );
    assert!(t.outbox().is_empty(), "{case}: a mail was written");
}

/// A short printable form of an input, for a failure message.
pub fn shown(s: &str) -> String {
    let mut out: String = s.escape_debug().take(60).collect();
    if s.len() > 60 {
        out.push_str(&format!("… ({} bytes)", s.len()));
    }
    out
}
