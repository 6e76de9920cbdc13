//! Queries on `broadcasts` and on their deliveries.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::domain::{Audience, Timezone};

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct BroadcastRow {
    pub id: i64,
    pub course_id: i64,
    pub subject: String,
    pub body: String,
    #[sqlx(try_from = "String")]
    pub audience: Audience,
    pub send_at: Option<i64>,
    pub local_time: Option<String>,
    pub local_date: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub queued_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    /// When the last of its mail left or failed.
    pub sent_at: Option<i64>,
}

const COLUMNS: &str = "id, course_id, subject, body, audience, send_at, local_time, local_date, created_by, created_at, queued_at, cancelled_at, sent_at";

pub struct NewRow<'a> {
    pub course_id: i64,
    pub subject: &'a str,
    pub body: &'a str,
    pub audience: Audience,
    pub send_at: Option<i64>,
    pub local_time: Option<&'a str>,
    pub local_date: Option<&'a str>,
    pub created_by: &'a str,
}

pub(crate) async fn insert(tx: &mut Tx, b: &NewRow<'_>, now: i64) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO broadcasts (course_id, subject, body, audience, send_at, local_time, local_date, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(b.course_id)
    .bind(b.subject)
    .bind(b.body)
    .bind(b.audience.as_str())
    .bind(b.send_at)
    .bind(b.local_time)
    .bind(b.local_date)
    .bind(b.created_by)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn by_id(db: &Db, id: i64) -> anyhow::Result<Option<BroadcastRow>> {
    let sql = format!("SELECT {COLUMNS} FROM broadcasts WHERE id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

pub(crate) async fn by_ids(db: &Db, ids: &[i64]) -> anyhow::Result<Vec<BroadcastRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM broadcasts WHERE id IN ({})",
        super::placeholders(1, ids.len())
    );
    let mut q = sqlx::query_as(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(db.pool()).await?)
}

/// A course's broadcasts, newest first; every course's with None.
pub async fn list(db: &Db, course_id: Option<i64>) -> anyhow::Result<Vec<BroadcastRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM broadcasts WHERE ($1 IS NULL OR course_id = $1) ORDER BY id DESC"
    );
    Ok(sqlx::query_as(&sql)
        .bind(course_id)
        .fetch_all(db.pool())
        .await?)
}

/// The broadcasts still to be queued, locked for this pass (others skip them on PostgreSQL).
pub(crate) async fn lock_waiting(db: &Db, tx: &mut Tx) -> anyhow::Result<Vec<BroadcastRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM broadcasts WHERE queued_at IS NULL AND cancelled_at IS NULL ORDER BY id{}",
        db.skip_locked("broadcasts")
    );
    Ok(sqlx::query_as(&sql).fetch_all(&mut **tx).await?)
}

/// Whether another broadcast of the course may have mail on the days this one lands on: one
/// queued and not cancelled whose last mail had not left by `since`. When none has, the
/// one-a-day rule cannot hold anyone back, and queuing skips its per-reader check.
pub(crate) async fn others_may_overlap(
    tx: &mut Tx,
    b: &BroadcastRow,
    since: i64,
) -> anyhow::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM broadcasts WHERE course_id = $1 AND id <> $2 AND queued_at IS NOT NULL \
         AND cancelled_at IS NULL AND (sent_at IS NULL OR sent_at >= $3) LIMIT 1",
    )
    .bind(b.course_id)
    .bind(b.id)
    .bind(since)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

pub(crate) async fn mark_queued(tx: &mut Tx, id: i64, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE broadcasts SET queued_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a queued broadcast sent once none of its mail is queued any more; returns its
/// course, subject and the mails sent, the first time only.
pub(crate) async fn finish_if_done(
    tx: &mut Tx,
    id: i64,
    now: i64,
) -> anyhow::Result<Option<(i64, String, i64)>> {
    let done: Option<(i64, String)> = sqlx::query_as(
        "UPDATE broadcasts SET sent_at = $1 WHERE id = $2 AND sent_at IS NULL AND queued_at IS NOT NULL \
         AND cancelled_at IS NULL AND NOT EXISTS (SELECT 1 FROM deliveries WHERE broadcast_id = $2 AND status = 'queued') \
         RETURNING course_id, subject",
    )
    .bind(now)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((course_id, subject)) = done else {
        return Ok(None);
    };
    let (sent,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM deliveries WHERE broadcast_id = $1 AND status = 'sent'",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some((course_id, subject, sent)))
}

/// The enrollment states an audience takes.
fn states(audience: Audience) -> &'static str {
    match audience {
        Audience::Active => "('active')",
        Audience::Completed => "('completed')",
        Audience::Everyone => "('active', 'completed')",
    }
}

/// The time zones of a broadcast's audience now, and how many people are in each.
pub(crate) async fn audience_zones(
    tx: &mut Tx,
    course_id: i64,
    audience: Audience,
) -> anyhow::Result<Vec<(Timezone, i64)>> {
    let sql = format!(
        "SELECT s.timezone, COUNT(*) FROM enrollments e JOIN subscribers s ON s.id = e.subscriber_id \
         WHERE e.course_id = $1 AND s.status = 'active' AND e.status IN {} GROUP BY s.timezone ORDER BY s.timezone",
        states(audience)
    );
    let rows: Vec<(String, i64)> = sqlx::query_as(&sql)
        .bind(course_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.into_iter()
        .map(|(tz, n)| Ok((Timezone::parse(&tz)?, n)))
        .collect()
}

/// How many people a broadcast would reach now.
pub async fn audience_count(db: &Db, course_id: i64, audience: Audience) -> anyhow::Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM enrollments e JOIN subscribers s ON s.id = e.subscriber_id \
         WHERE e.course_id = $1 AND s.status = 'active' AND e.status IN {}",
        states(audience)
    );
    let (n,): (i64,) = sqlx::query_as(&sql)
        .bind(course_id)
        .fetch_one(db.pool())
        .await?;
    Ok(n)
}

/// Queues the broadcast's mail for the audience in one time zone, due at `due`, leaving out
/// whoever has another broadcast of the course due in `[day_start, day_end)` (their local
/// day) when `one_a_day`. A person already queued is skipped by the unique key. Returns how
/// many rows were made.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn enqueue_zone(
    tx: &mut Tx,
    b: &BroadcastRow,
    tz: Timezone,
    due: i64,
    day: (i64, i64),
    one_a_day: bool,
    now: i64,
) -> anyhow::Result<u64> {
    let cap = if one_a_day {
        " AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.subscriber_id = s.id AND o.kind = 'broadcast' \
           AND o.course_id = $2 AND o.broadcast_id <> $1 AND o.status IN ('queued', 'sent') AND o.due_at >= $5 AND o.due_at < $6)"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO deliveries (subscriber_id, enrollment_id, course_id, broadcast_id, kind, status, due_at, created_at) \
         SELECT s.id, e.id, e.course_id, $1, 'broadcast', 'queued', $3, $4 \
         FROM enrollments e JOIN subscribers s ON s.id = e.subscriber_id \
         WHERE e.course_id = $2 AND s.status = 'active' AND e.status IN {} AND s.timezone = $7{cap} \
         ON CONFLICT DO NOTHING",
        states(b.audience)
    );
    let done = sqlx::query(&sql)
        .bind(b.id)
        .bind(b.course_id)
        .bind(due)
        .bind(now)
        .bind(day.0)
        .bind(day.1)
        .bind(tz.name())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

/// Cancels a broadcast: what has not left yet never will (its rows fail as "cancelled", so
/// they stay visible). Returns false when it was already cancelled.
pub(crate) async fn cancel(tx: &mut Tx, id: i64, now: i64) -> anyhow::Result<(bool, u64)> {
    let done = sqlx::query(
        "UPDATE broadcasts SET cancelled_at = $1 WHERE id = $2 AND cancelled_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok((false, 0));
    }
    let stopped = sqlx::query(
        "UPDATE deliveries SET status = 'failed', failed_at = $1, last_error = 'cancelled' \
         WHERE broadcast_id = $2 AND status = 'queued'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok((true, stopped.rows_affected()))
}

/// A broadcast's figures: its mails by state, people who left the course within 7 days of
/// theirs, and the replies to it.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub bounced: i64,
    pub unsubscribed_within_7_days: i64,
    pub replies: i64,
}

pub async fn figures(db: &Db, id: i64) -> anyhow::Result<Figures> {
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, CASE WHEN last_error = 'cancelled' THEN 'cancelled' END, COUNT(*) FROM deliveries \
         WHERE broadcast_id = $1 GROUP BY status, CASE WHEN last_error = 'cancelled' THEN 'cancelled' END",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let mut f = Figures::default();
    for (status, why, n) in rows {
        match (status.as_str(), why.as_deref()) {
            ("queued", _) => f.queued += n,
            ("sent", _) => f.sent += n,
            ("failed", Some("cancelled")) => f.cancelled += n,
            ("failed", _) => f.failed += n,
            ("bounced", _) => f.bounced += n,
            _ => {}
        }
    }
    // Left the course (or everything) within 7 days of their mail leaving.
    let (left,): (i64,) = sqlx::query_as(
        "SELECT COUNT(DISTINCT d.subscriber_id) FROM deliveries d \
         JOIN enrollments e ON e.id = d.enrollment_id JOIN subscribers s ON s.id = d.subscriber_id \
         WHERE d.broadcast_id = $1 AND d.sent_at IS NOT NULL AND ( \
           (e.status = 'stopped' AND e.updated_at >= d.sent_at AND e.updated_at < d.sent_at + 604800) \
           OR (s.status = 'unsubscribed' AND s.status_at >= d.sent_at AND s.status_at < d.sent_at + 604800))",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await?;
    f.unsubscribed_within_7_days = left;
    let (replies,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM replies r JOIN deliveries d ON d.id = r.delivery_id \
         WHERE d.broadcast_id = $1 AND r.kind = 'reply'",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await?;
    f.replies = replies;
    Ok(f)
}

/// One mail of a broadcast, with its reader.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Mail {
    pub id: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub status: String,
    pub due_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// Every mail of a broadcast, by reader's address.
pub async fn mails(db: &Db, id: i64) -> anyhow::Result<Vec<Mail>> {
    Ok(sqlx::query_as(
        "SELECT d.id, d.subscriber_id, s.email, d.status, d.due_at, d.sent_at, d.last_error \
         FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE d.broadcast_id = $1 ORDER BY s.email",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?)
}
