//! Queries on `subscribers` and `bounces`.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::domain::{SubscriberStatus, Timezone};

/// A subscriber, with the time zone and status parsed when the row is read.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct SubscriberRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub timezone: Timezone,
    #[sqlx(try_from = "String")]
    pub status: SubscriberStatus,
    /// Neutral sender name, subject and preheader on lesson mails.
    pub discreet: i64,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub confirm_sent_at: Option<i64>,
    pub status_at: i64,
}

impl SubscriberRow {
    /// Nobody: the reader a lesson preview is addressed to.
    pub fn preview(email: &str, name: &str, timezone: Timezone) -> SubscriberRow {
        SubscriberRow {
            id: 0,
            email: email.to_owned(),
            name: name.to_owned(),
            timezone,
            status: SubscriberStatus::Active,
            discreet: 0,
            created_at: 0,
            confirmed_at: None,
            confirm_sent_at: None,
            status_at: 0,
        }
    }
}

const COLUMNS: &str = "id, email, name, timezone, status, discreet, created_at, confirmed_at, confirm_sent_at, status_at";

pub async fn by_email(db: &Db, email: &str) -> anyhow::Result<Option<SubscriberRow>> {
    let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE email = $1");
    Ok(sqlx::query_as(&sql)
        .bind(email.to_lowercase())
        .fetch_optional(db.pool())
        .await?)
}

pub(crate) async fn by_email_in(tx: &mut Tx, email: &str) -> anyhow::Result<Option<SubscriberRow>> {
    let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE email = $1");
    Ok(sqlx::query_as(&sql)
        .bind(email.to_lowercase())
        .fetch_optional(&mut **tx)
        .await?)
}

pub async fn by_id(db: &Db, id: i64) -> anyhow::Result<Option<SubscriberRow>> {
    let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

pub(crate) async fn by_id_in(tx: &mut Tx, id: i64) -> anyhow::Result<Option<SubscriberRow>> {
    let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// The subscribers with these ids (any order; missing ids are left out): the sender reads
/// a whole batch's recipients in one query.
pub(crate) async fn by_ids(db: &Db, ids: &[i64]) -> anyhow::Result<Vec<SubscriberRow>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {COLUMNS} FROM subscribers WHERE id IN ({})",
            super::placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        rows.extend(q.fetch_all(db.pool()).await?);
    }
    Ok(rows)
}

pub async fn insert(
    tx: &mut Tx,
    email: &str,
    name: &str,
    timezone: Timezone,
    status: SubscriberStatus,
    now: i64,
) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO subscribers (email, name, timezone, status, created_at, status_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(email.to_lowercase())
    .bind(name)
    .bind(timezone.name())
    .bind(status.as_str())
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// A subscriber for [`insert_many`]: the address already in its stored (key) form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRow<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub timezone: Timezone,
}

/// A subscriber [`insert_many`] created.
#[derive(Debug, Clone, Copy, FromRow)]
pub(crate) struct Inserted {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub timezone: Timezone,
}

/// Rows per INSERT of [`insert_many`]: three bound values each, well under SQLite's 32,766.
const INSERT_MANY_ROWS: usize = 2000;

/// Inserts many subscribers, one statement per [`INSERT_MANY_ROWS`]; an address already
/// known is left as it is. `confirmed`: active, confirmed at `now`; otherwise pending with
/// its confirmation sent at `now` (the caller queues those mails in the same transaction,
/// [`super::deliveries::enqueue_confirmations`]). Returns the subscribers created.
pub(crate) async fn insert_many(
    tx: &mut Tx,
    rows: &[NewRow<'_>],
    confirmed: bool,
    now: i64,
) -> anyhow::Result<Vec<Inserted>> {
    let status = if confirmed {
        SubscriberStatus::Active
    } else {
        SubscriberStatus::Pending
    };
    let mut inserted = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(INSERT_MANY_ROWS) {
        let mut sql = String::with_capacity(200 + chunk.len() * 30);
        sql.push_str(
            "INSERT INTO subscribers (email, name, timezone, status, created_at, status_at, confirmed_at, confirm_sent_at) VALUES ",
        );
        for i in 0..chunk.len() {
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
        sql.push_str(" ON CONFLICT (email) DO NOTHING RETURNING id, timezone");
        let mut q = sqlx::query_as::<_, Inserted>(&sql)
            .bind(status.as_str())
            .bind(now)
            .bind(confirmed.then_some(now))
            .bind((!confirmed).then_some(now));
        for r in chunk {
            q = q.bind(r.email).bind(r.name).bind(r.timezone.name());
        }
        inserted.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(inserted)
}

/// Of these addresses (email keys), the people already known who may be written to (pending
/// or active) and have never been in the course: an import adds them to it. Someone who
/// left the course, or was already asked to confirm it, is not asked again.
pub(crate) async fn known_outside_course(
    tx: &mut Tx,
    emails: &[&str],
    course_id: i64,
) -> anyhow::Result<Vec<Inserted>> {
    let mut found = Vec::new();
    for chunk in emails.chunks(INSERT_MANY_ROWS) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT id, timezone FROM subscribers s WHERE email IN ({}) AND status IN ('pending', 'active') \
             AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.subscriber_id = s.id AND e.course_id = $1) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscriber_id = s.id AND d.course_id = $1 AND d.kind = 'confirm')",
            marks.join(", ")
        );
        let mut q = sqlx::query_as::<_, Inserted>(&sql).bind(course_id);
        for e in chunk {
            q = q.bind(*e);
        }
        found.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(found)
}

/// Marks these subscribers active if they were pending (an import that holds their consent).
pub(crate) async fn confirm_many(tx: &mut Tx, ids: &[i64], now: i64) -> anyhow::Result<()> {
    for chunk in ids.chunks(INSERT_MANY_ROWS) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "UPDATE subscribers SET status = 'active', confirmed_at = $1, status_at = $1 WHERE status = 'pending' AND id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(crate) async fn set_status(
    tx: &mut Tx,
    id: i64,
    status: SubscriberStatus,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE subscribers SET status = $1, status_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a pending subscriber active; false when they were not pending.
pub async fn confirm(tx: &mut Tx, id: i64, now: i64) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE subscribers SET status = 'active', confirmed_at = $1, status_at = $1 WHERE id = $2 AND status = 'pending'")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn set_confirm_sent(tx: &mut Tx, id: i64, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE subscribers SET confirm_sent_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn update_profile(
    tx: &mut Tx,
    id: i64,
    name: &str,
    timezone: &str,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE subscribers SET name = $1, timezone = $2 WHERE id = $3")
        .bind(name)
        .bind(timezone)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A page of subscribers, newest first, optionally filtered.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<String>,
    /// Matches the start of the address or of the name.
    pub search: Option<String>,
    /// Position of the last lesson queued.
    pub reached: Option<i64>,
    /// Keyset pagination: rows with an id below this.
    pub before_id: Option<i64>,
    pub limit: i64,
}

pub async fn list(db: &Db, f: &Filter) -> anyhow::Result<Vec<SubscriberRow>> {
    let mut sql = format!(
        "SELECT {} FROM subscribers s WHERE 1 = 1",
        COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if f.status.is_some() {
        sql += &format!(" AND s.status = {}", next());
    }
    if f.search.is_some() {
        let (a, b) = (next(), next());
        sql += &format!(" AND (s.email LIKE {a} OR s.name LIKE {b})");
    }
    if f.reached.is_some() {
        sql += &format!(
            " AND EXISTS (SELECT 1 FROM enrollments e WHERE e.subscriber_id = s.id AND e.position = {})",
            next()
        );
    }
    if f.before_id.is_some() {
        sql += &format!(" AND s.id < {}", next());
    }
    sql += &format!(" ORDER BY s.id DESC LIMIT {}", next());
    let mut q = sqlx::query_as::<_, SubscriberRow>(&sql);
    if let Some(s) = &f.status {
        q = q.bind(s.clone());
    }
    if let Some(s) = &f.search {
        let pattern = format!("{}%", s.to_lowercase().replace(['%', '_'], ""));
        q = q.bind(pattern.clone()).bind(pattern);
    }
    if let Some(r) = f.reached {
        q = q.bind(r);
    }
    if let Some(b) = f.before_id {
        q = q.bind(b);
    }
    Ok(q.bind(f.limit).fetch_all(db.pool()).await?)
}

pub(crate) async fn set_discreet(tx: &mut Tx, id: i64, on: bool) -> anyhow::Result<()> {
    sqlx::query("UPDATE subscribers SET discreet = $1 WHERE id = $2")
        .bind(i64::from(on))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Every subscriber in id order, streamed, for export.
pub(crate) fn stream_all(
    db: &Db,
) -> impl futures::Stream<Item = Result<SubscriberRow, sqlx::Error>> + '_ {
    sqlx::query_as::<_, SubscriberRow>("SELECT id, email, name, timezone, status, discreet, created_at, confirmed_at, confirm_sent_at, status_at FROM subscribers ORDER BY id")
        .fetch(db.pool())
}

pub async fn delete(tx: &mut Tx, id: i64) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM subscribers WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn record_bounce(
    tx: &mut Tx,
    subscriber_id: i64,
    delivery_id: Option<i64>,
    hard: bool,
    code: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO bounces (subscriber_id, delivery_id, hard, status_code, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(subscriber_id)
        .bind(delivery_id)
        .bind(i64::from(hard))
        .bind(code)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// (hard, soft) bounces since `since`.
pub(crate) async fn bounce_counts(
    tx: &mut Tx,
    subscriber_id: i64,
    since: i64,
) -> anyhow::Result<(i64, i64)> {
    let (hard, soft): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN hard = 1 THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN hard = 0 THEN 1 ELSE 0 END), 0) FROM bounces WHERE subscriber_id = $1 AND created_at >= $2",
    )
    .bind(subscriber_id)
    .bind(since)
    .fetch_one(&mut **tx)
    .await?;
    Ok((hard, soft))
}

pub(crate) async fn count_by_status(db: &Db) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT status, COUNT(*) FROM subscribers GROUP BY status ORDER BY status")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Replaces what identifies a person with a placeholder that cannot receive mail.
pub(crate) async fn anonymise(tx: &mut Tx, id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE subscribers SET email = $1, name = '', timezone = 'UTC' WHERE id = $2")
        .bind(format!("erased-{id}@erased.invalid"))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
