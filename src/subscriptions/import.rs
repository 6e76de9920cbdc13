//! CSV import (`email,name,timezone`): rows are checked one by one; a bad row is reported
//! with its line and skipped, the rest go in by batches of a few hundred per transaction.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::NewSubscriber;
use crate::app::App;
use crate::db;
use crate::outbox::plan::next_lesson;
use crate::schedule;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    pub imported: u64,
    pub existing: u64,
    /// (line, reason)
    pub rejected: Vec<(u64, String)>,
}

const BATCH: usize = 500;

pub async fn import_csv(
    app: &App,
    path: &Path,
    confirmed: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ImportReport> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    import_reader(app, file, confirmed, now).await
}

pub async fn import_reader<R: std::io::Read>(
    app: &App,
    reader: R,
    confirmed: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ImportReport> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(reader);
    let course = app.course().await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    let first = next_lesson(&lessons, 0);
    let default_tz = app.config.default_timezone();
    let mut report = ImportReport::default();
    let mut batch: Vec<NewSubscriber> = Vec::with_capacity(BATCH);
    let mut record = csv::ByteRecord::new();
    let mut columns: Option<(usize, Option<usize>, Option<usize>)> = None;
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
        let fields: Result<Vec<&str>, _> = record.iter().map(std::str::from_utf8).collect();
        let Ok(fields) = fields else {
            report
                .rejected
                .push((line, "not UTF-8 text (save the file as UTF-8)".into()));
            continue;
        };
        let Some((e, n, t)) = columns else {
            // The first row names the columns when it has an "email" header; else the order
            // is email,name,timezone and the row is data.
            let lower: Vec<String> = fields
                .iter()
                .map(|f| f.trim().trim_start_matches('\u{feff}').to_lowercase())
                .collect();
            if let Some(e) = lower.iter().position(|f| f == "email") {
                columns = Some((
                    e,
                    lower.iter().position(|f| f == "name"),
                    lower.iter().position(|f| f == "timezone"),
                ));
                continue;
            }
            columns = Some((0, Some(1), Some(2)));
            let (e, n, t) = columns.expect("set");
            push_row(&fields, e, n, t, line, default_tz, &mut batch, &mut report);
            continue;
        };
        push_row(&fields, e, n, t, line, default_tz, &mut batch, &mut report);
        if batch.len() >= BATCH {
            flush(
                app,
                &mut batch,
                confirmed,
                first,
                &course.send_window,
                now,
                &mut report,
            )
            .await?;
        }
    }
    flush(
        app,
        &mut batch,
        confirmed,
        first,
        &course.send_window,
        now,
        &mut report,
    )
    .await?;
    let mut tx = app.db.begin_write().await?;
    db::events::log(&mut tx, None, "import", "imported", &json!({"imported": report.imported, "existing": report.existing, "rejected": report.rejected.len()}), now.timestamp()).await?;
    tx.commit().await?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn push_row(
    fields: &[&str],
    e: usize,
    n: Option<usize>,
    t: Option<usize>,
    line: u64,
    default_tz: crate::domain::Timezone,
    batch: &mut Vec<NewSubscriber>,
    report: &mut ImportReport,
) {
    let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).copied().unwrap_or("");
    if fields.iter().all(|f| f.trim().is_empty()) {
        return;
    }
    match NewSubscriber::parse(get(Some(e)), get(n), get(t), default_tz) {
        Ok(s) => {
            if batch.iter().any(|b| b.email.key() == s.email.key()) {
                report.existing += 1;
            } else {
                batch.push(s)
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

async fn flush(
    app: &App,
    batch: &mut Vec<NewSubscriber>,
    confirmed: bool,
    first: Option<&db::lessons::Lesson>,
    course_window: &str,
    now: DateTime<Utc>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let now_s = now.timestamp();
    let status = if confirmed { "active" } else { "pending" };
    let mut tx = app.db.begin_write().await?;
    let mut sql = String::from(
        "INSERT INTO subscribers (email, name, timezone, status, created_at, status_at, confirmed_at, confirm_sent_at) VALUES ",
    );
    for i in 0..batch.len() {
        let b = i * 3;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, $1, $2, $2, $3, $4)",
            b + 5,
            b + 6,
            b + 7
        ));
    }
    sql.push_str(" ON CONFLICT (email) DO NOTHING RETURNING id, email, timezone");
    let mut q = sqlx::query_as::<_, (i64, String, String)>(&sql)
        .bind(status)
        .bind(now_s)
        .bind(confirmed.then_some(now_s))
        .bind((!confirmed).then_some(now_s));
    for s in batch.iter() {
        q = q
            .bind(s.email.key())
            .bind(s.name.clone())
            .bind(s.timezone.name());
    }
    let inserted = q.fetch_all(&mut *tx).await?;
    report.existing += (batch.len() - inserted.len()) as u64;
    report.imported += inserted.len() as u64;
    for (id, _, tz) in &inserted {
        if confirmed {
            let tz = crate::domain::Timezone::parse(tz).unwrap_or(crate::domain::Timezone::UTC);
            let due = first.map(|l| {
                schedule::due_after(
                    &l.content.window(course_window),
                    l.content.after_days,
                    now,
                    tz.tz(),
                )
                .timestamp()
            });
            db::enrollments::create(
                &mut tx,
                *id,
                first.map(|l| l.course_id).unwrap_or_default(),
                due.unwrap_or(now_s),
                now_s,
            )
            .await?;
        } else {
            db::deliveries::enqueue_mail(&mut tx, *id, "confirm", &json!({}), now_s).await?;
        }
    }
    tx.commit().await?;
    batch.clear();
    Ok(())
}
