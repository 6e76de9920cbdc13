//! CSV import (`email,name,timezone`): rows are checked one by one; a bad row is reported
//! with its line and skipped, the rest go in by batches of a couple of thousand per
//! transaction: one statement for the subscribers, one for their enrollments (or their
//! confirmation mails). The file is streamed, so a million rows take no more memory than a
//! batch; a progress callback sees how far into the file the import is.
//!
//! A file that is not text drip can read at all (UTF-16, no rows) is refused whole, before
//! anything is imported: [`Unreadable`] names the file and line.
//!
//! What makes it fast is the shape of the statements, one multi-row VALUES list per batch:
//! `db::subscribers::insert_many`, `db::enrollments::create_many` and
//! `db::deliveries::enqueue_confirmations`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, Read};
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::NewSubscriber;
use crate::app::App;
use crate::db;
use crate::db::courses::CourseRow;
use crate::domain::Timezone;
use crate::schedule::Syllabus;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    /// New people.
    pub imported: u64,
    /// People already known who were added to the course (or asked to confirm it).
    pub added_to_course: u64,
    /// Rows about people already in the course (or who left it, or cannot be written to),
    /// and repeats of an address within the file.
    pub existing: u64,
    /// (line, reason)
    pub rejected: Vec<(u64, String)>,
}

/// A file refused as a whole: nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The file, when the import read one from disk.
    pub path: Option<String>,
    pub line: u64,
    pub message: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{path}:{}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for Unreadable {}

/// How far an import has come: bytes of the file read, and the report so far.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub bytes: u64,
    pub report: &'a ImportReport,
}

/// Rows per transaction, and the progress callback's step.
pub const BATCH: usize = 2000;

pub async fn import_csv(
    app: &App,
    course: &CourseRow,
    path: &Path,
    confirmed: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ImportReport> {
    import_csv_with_progress(app, course, path, confirmed, now, |_| {}).await
}

/// [`import_csv`], calling `progress` after every batch.
pub(crate) async fn import_csv_with_progress(
    app: &App,
    course: &CourseRow,
    path: &Path,
    confirmed: bool,
    now: DateTime<Utc>,
    progress: impl FnMut(Progress<'_>),
) -> anyhow::Result<ImportReport> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    import_reader_with_progress(
        app,
        course,
        std::io::BufReader::with_capacity(1 << 16, file),
        confirmed,
        now,
        progress,
    )
    .await
    .map_err(|e| match e.downcast::<Unreadable>() {
        Ok(u) => Unreadable {
            path: Some(path.display().to_string()),
            ..u
        }
        .into(),
        Err(e) => e,
    })
}

pub async fn import_reader<R: std::io::Read>(
    app: &App,
    course: &CourseRow,
    reader: R,
    confirmed: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ImportReport> {
    import_reader_with_progress(app, course, reader, confirmed, now, |_| {}).await
}

/// Column positions: email, and name and timezone when present; and how many columns a
/// row may have.
#[derive(Debug, Clone, Copy)]
struct Columns {
    email: usize,
    name: Option<usize>,
    timezone: Option<usize>,
    width: usize,
    header: bool,
}

/// Refuses what is not UTF-8 text at all, from the first bytes; says whether the file ends
/// its lines with a lone CR (old Mac exports).
fn sniff(head: &[u8]) -> Result<bool, Unreadable> {
    let refuse = |message: &str| Unreadable {
        path: None,
        line: 1,
        message: message.to_owned(),
    };
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err(refuse(
            "the file is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\")",
        ));
    }
    if head.contains(&0) {
        return Err(refuse(
            "the file has NUL bytes: it is UTF-16 or not text; save it as CSV in UTF-8",
        ));
    }
    Ok(head.contains(&b'\r') && !head.contains(&b'\n'))
}

/// The file with every line ended by LF, byte for byte, so that csv's line count is exact:
/// a lone-CR file has its CRs made LFs, a CRLF file keeps them (the CR is taken off each
/// record's last field), and a last line without an end gets one.
struct LineEnds<R> {
    inner: R,
    cr_only: bool,
    last: Option<u8>,
    /// Whether the final LF was added.
    added: bool,
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            if self.last.is_some_and(|b| b != b'\n') {
                buf[0] = b'\n';
                self.last = Some(b'\n');
                self.added = true;
                return Ok(1);
            }
            return Ok(0);
        }
        if self.cr_only {
            buf[..n]
                .iter_mut()
                .filter(|b| **b == b'\r')
                .for_each(|b| *b = b'\n');
        }
        self.last = Some(buf[n - 1]);
        Ok(n)
    }
}

/// [`import_reader`], calling `progress` after every batch of [`BATCH`] rows and at the end.
pub async fn import_reader_with_progress<R: std::io::Read>(
    app: &App,
    course: &CourseRow,
    reader: R,
    confirmed: bool,
    now: DateTime<Utc>,
    mut progress: impl FnMut(Progress<'_>),
) -> anyhow::Result<ImportReport> {
    let mut reader = std::io::BufReader::new(reader);
    let cr_only = sniff(reader.fill_buf().context("cannot read the file")?)?;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(LineEnds {
            inner: reader,
            cr_only,
            last: None,
            added: false,
        });
    let lessons = db::lessons::list(&app.db, course.id).await?;
    let mut target = Target {
        confirmed,
        syllabus: Syllabus::new(&lessons, &course.send_window, &course.phases),
        course_id: course.id,
        now,
        due_by_zone: HashMap::new(),
    };
    let default_tz = app.config.default_timezone();
    let mut report = ImportReport::default();
    let mut batch = Batch::default();
    let mut record = csv::ByteRecord::new();
    let mut columns: Option<Columns> = None;
    let mut rows_seen = false;
    loop {
        let line = csv.position().line();
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.rejected.push((line, format!("unreadable CSV: {e}")));
                continue;
            }
        }
        // Every record ends with its LF (see LineEnds), so the line it starts on follows from
        // the LFs read so far and those inside its quoted fields; a record whose quote never
        // closes runs to the end of the file, the file's last LF inside it.
        let read = csv.position().line().saturating_sub(1);
        let inside = record.iter().flatten().filter(|&&b| b == b'\n').count() as u64;
        let open_quote = record
            .iter()
            .next_back()
            .is_some_and(|f| f.ends_with(b"\n"));
        let line = (read + 1)
            .saturating_sub(inside + u64::from(!open_quote))
            .max(1);
        let end = line + inside - u64::from(open_quote);
        let fields: Result<Vec<&str>, _> = record.iter().map(std::str::from_utf8).collect();
        let Ok(mut fields) = fields else {
            rows_seen = true;
            report.rejected.push((
                line,
                "not UTF-8 text (Latin-1 or Windows-1252?); save the file as UTF-8".into(),
            ));
            continue;
        };
        if let Some(last) = fields.last_mut() {
            *last = last.strip_suffix('\r').unwrap_or(last);
        }
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if !rows_seen {
            fields[0] = fields[0].trim_start_matches('\u{feff}');
            rows_seen = true;
        }
        if open_quote {
            report.rejected.push((
                line,
                format!("a quote opened on this line is never closed: lines {line} to {end} (the end of the file) were read as one field, and none of them imported"),
            ));
            continue;
        }
        if inside > 0 {
            report.rejected.push((
                line,
                format!("a quoted field runs on from line {line} to line {end}: is a closing quote missing?"),
            ));
            continue;
        }
        let cols = match columns {
            Some(c) => c,
            None => {
                // The first row names the columns when it has an "email" header; else the
                // order is email,name,timezone and the row is data.
                let lower: Vec<String> = fields.iter().map(|f| f.trim().to_lowercase()).collect();
                if let Some(e) = lower.iter().position(|f| f == "email") {
                    columns = Some(Columns {
                        email: e,
                        name: lower.iter().position(|f| f == "name"),
                        timezone: lower.iter().position(|f| f == "timezone"),
                        width: fields.len(),
                        header: true,
                    });
                    continue;
                }
                *columns.insert(Columns {
                    email: 0,
                    name: Some(1),
                    timezone: Some(2),
                    width: 3,
                    header: false,
                })
            }
        };
        batch.push_row(&fields, cols, line, default_tz, &mut report);
        if batch.rows.len() >= BATCH {
            target.flush(app, &mut batch, &mut report).await?;
            progress(Progress {
                bytes: csv.position().byte(),
                report: &report,
            });
        }
    }
    if !rows_seen {
        return Err(Unreadable {
            path: None,
            line: 1,
            message: "the file has no rows (expected a header email,name,timezone, then a row per subscriber)".into(),
        }
        .into());
    }
    target.flush(app, &mut batch, &mut report).await?;
    // The LF that LineEnds may have added is not in the file.
    let bytes = csv.position().byte() - u64::from(csv.get_ref().added);
    progress(Progress {
        bytes,
        report: &report,
    });
    let mut tx = app.db.begin_write().await?;
    db::events::log(&mut tx, None, "import", "imported", &json!({"imported": report.imported, "added_to_course": report.added_to_course, "existing": report.existing, "rejected": report.rejected.len()}), now.timestamp()).await?;
    tx.commit().await?;
    Ok(report)
}

/// Checked rows waiting for their transaction.
#[derive(Default)]
struct Batch {
    rows: Vec<NewSubscriber>,
    keys: HashSet<String>,
}

impl Batch {
    fn push_row(
        &mut self,
        fields: &[&str],
        cols: Columns,
        line: u64,
        default_tz: Timezone,
        report: &mut ImportReport,
    ) {
        let get = |i: Option<usize>| {
            let cell = i.and_then(|i| fields.get(i)).copied().unwrap_or("");
            super::spreadsheet::from_cell(cell)
        };
        if fields.iter().all(|f| f.trim().is_empty()) {
            return;
        }
        // Extra empty fields (a trailing comma) are harmless; extra values mean the row's
        // columns are not where the header says, usually an unquoted comma in a name.
        if fields.iter().skip(cols.width).any(|f| !f.trim().is_empty()) {
            let why = if cols.header {
                format!(
                    "{} fields where the header has {}: put a name with a comma in double quotes",
                    fields.len(),
                    cols.width
                )
            } else {
                format!(
                    "{} fields where email,name,timezone has 3: put a name with a comma in double quotes",
                    fields.len()
                )
            };
            report.rejected.push((line, why));
            return;
        }
        match NewSubscriber::parse(
            get(Some(cols.email)),
            get(cols.name),
            get(cols.timezone),
            default_tz,
        ) {
            Ok(s) => {
                if self.keys.insert(s.email.key()) {
                    self.rows.push(s);
                } else {
                    report.existing += 1;
                }
            }
            Err(errors) => report.rejected.push((
                line,
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}

/// Where imported subscribers go: enrolled with their first lesson due, or sent a
/// confirmation mail.
struct Target<'a> {
    confirmed: bool,
    syllabus: Syllabus<'a>,
    course_id: i64,
    now: DateTime<Utc>,
    /// The first lesson's due time depends only on the time zone: computed once per zone.
    due_by_zone: HashMap<Timezone, i64>,
}

impl Target<'_> {
    async fn flush(
        &mut self,
        app: &App,
        batch: &mut Batch,
        report: &mut ImportReport,
    ) -> anyhow::Result<()> {
        if batch.rows.is_empty() {
            return Ok(());
        }
        let emails: Vec<String> = batch.rows.iter().map(|s| s.email.key()).collect();
        let rows: Vec<db::subscribers::NewRow<'_>> = batch
            .rows
            .iter()
            .zip(&emails)
            .map(|(s, email)| db::subscribers::NewRow {
                email,
                name: &s.name,
                timezone: s.timezone,
            })
            .collect();
        let now = self.now.timestamp();
        let mut tx = app.db.begin_write().await?;
        let mut inserted =
            db::subscribers::insert_many(&mut tx, &rows, self.confirmed, now).await?;
        report.imported += inserted.len() as u64;
        // People already known join this course too, unless they are in it, left it or
        // were asked already; their name and time zone stay as they are.
        // Only when some rows were already known: a first import pays no extra query.
        let joining: Vec<_> = if inserted.len() < batch.rows.len() {
            let new_ids: HashSet<i64> = inserted.iter().map(|s| s.id).collect();
            let known: Vec<&str> = emails.iter().map(String::as_str).collect();
            db::subscribers::known_outside_course(&mut tx, &known, self.course_id)
                .await?
                .into_iter()
                .filter(|s| !new_ids.contains(&s.id))
                .collect()
        } else {
            Vec::new()
        };
        report.added_to_course += joining.len() as u64;
        report.existing += (batch.rows.len() - inserted.len() - joining.len()) as u64;
        if self.confirmed {
            let ids: Vec<i64> = joining.iter().map(|s| s.id).collect();
            db::subscribers::confirm_many(&mut tx, &ids, now).await?;
        }
        inserted.extend(joining);
        if self.confirmed {
            let due: Vec<(i64, i64)> = inserted
                .iter()
                .map(|s| (s.id, self.first_due(s.timezone)))
                .collect();
            db::enrollments::create_many(&mut tx, &due, self.course_id, now).await?;
            let ids: Vec<i64> = inserted.iter().map(|s| s.id).collect();
            crate::webhooks::events::imported_confirmed(&mut tx, &ids, self.course_id, self.now)
                .await?;
        } else {
            let ids: Vec<i64> = inserted.iter().map(|s| s.id).collect();
            db::deliveries::enqueue_confirmations(&mut tx, &ids, self.course_id, now).await?;
        }
        tx.commit().await?;
        batch.rows.clear();
        batch.keys.clear();
        Ok(())
    }

    fn first_due(&mut self, timezone: Timezone) -> i64 {
        let (syllabus, now) = (&self.syllabus, self.now);
        *self
            .due_by_zone
            .entry(timezone)
            .or_insert_with(|| syllabus.first_due(now, timezone).timestamp())
    }
}
