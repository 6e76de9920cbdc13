//! Queries on `deliveries`, the outbox.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::domain::{DeliveryKind, DeliveryStatus};

/// A lesson to enqueue for one enrollment.
#[derive(Debug, Clone, Copy)]
pub struct NewLesson {
    pub subscriber_id: i64,
    pub enrollment_id: i64,
    pub lesson_id: i64,
    pub course_id: i64,
}

/// Queues lesson mails; a row that already exists for the same (enrollment, lesson) is left
/// as it is, so a second enqueue never makes a second mail. Returns the enrollments whose
/// row was new.
pub async fn enqueue_lessons(
    tx: &mut Tx,
    rows: &[NewLesson],
    now: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut inserted = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(200) {
        let mut sql = String::from(
            "INSERT INTO deliveries (subscriber_id, enrollment_id, lesson_id, course_id, kind, status, due_at, created_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 4;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, 'lesson', 'queued', $1, $1)",
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
        }
        sql.push_str(" ON CONFLICT (enrollment_id, lesson_id) DO NOTHING RETURNING enrollment_id");
        let mut q = sqlx::query_as::<_, (i64,)>(&sql).bind(now);
        for r in chunk {
            q = q
                .bind(r.subscriber_id)
                .bind(r.enrollment_id)
                .bind(r.lesson_id)
                .bind(r.course_id);
        }
        inserted.extend(q.fetch_all(&mut **tx).await?.into_iter().map(|(id,)| id));
    }
    Ok(inserted)
}

/// Of these enrollments, those whose mail of `lesson_id` already left (sent, failed or
/// bounced): a plan that lands on a lesson they had must step past it.
pub(crate) async fn already_left(
    tx: &mut Tx,
    enrollment_ids: &[i64],
    lesson_id: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut out = Vec::new();
    for chunk in enrollment_ids.chunks(500) {
        let sql = format!(
            "SELECT enrollment_id FROM deliveries WHERE lesson_id = $1 AND status <> 'queued' AND enrollment_id IN ({})",
            super::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (i64,)>(&sql).bind(lesson_id);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut **tx).await?.into_iter().map(|(id,)| id));
    }
    Ok(out)
}

/// Queues a non-lesson mail (confirm, welcome, goodbye, notice) about `course` (None: about
/// the person, e.g. the goodbye of leaving everything; it speaks with the first course's
/// sender and language).
pub(crate) async fn enqueue_mail(
    tx: &mut Tx,
    subscriber_id: i64,
    course: Option<i64>,
    kind: DeliveryKind,
    payload: &serde_json::Value,
    now: i64,
) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deliveries (subscriber_id, kind, status, due_at, payload, created_at, course_id) VALUES ($1, $2, 'queued', $3, $4, $3, $5) RETURNING id",
    )
    .bind(subscriber_id)
    .bind(kind.as_str())
    .bind(now)
    .bind(payload.to_string())
    .bind(course)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// Queues the mail of an author's answer to a reply: to the reader, about the course (and
/// the enrollment) of the mail they replied to.
pub(crate) async fn enqueue_answer(
    tx: &mut Tx,
    subscriber_id: i64,
    enrollment_id: Option<i64>,
    course: Option<i64>,
    now: i64,
) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deliveries (subscriber_id, enrollment_id, kind, status, due_at, created_at, course_id) VALUES ($1, $2, 'answer', 'queued', $3, $3, $4) RETURNING id",
    )
    .bind(subscriber_id)
    .bind(enrollment_id)
    .bind(now)
    .bind(course)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// Rows per INSERT of [`enqueue_confirmations`]: one bound value each.
const CONFIRMATIONS_PER_INSERT: usize = 5000;

/// Queues a confirmation mail for `course_id` (no payload) for each of these subscribers,
/// due at `now`, one statement per [`CONFIRMATIONS_PER_INSERT`].
pub(crate) async fn enqueue_confirmations(
    tx: &mut Tx,
    subscriber_ids: &[i64],
    course_id: i64,
    now: i64,
) -> anyhow::Result<()> {
    for chunk in subscriber_ids.chunks(CONFIRMATIONS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, $1, $2, $3, $4, $3, $5)", i + 6))
            .collect();
        let sql = format!(
            "INSERT INTO deliveries (subscriber_id, kind, status, due_at, payload, created_at, course_id) VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql)
            .bind(DeliveryKind::Confirm.as_str())
            .bind(DeliveryStatus::Queued.as_str())
            .bind(now)
            .bind("{}")
            .bind(course_id);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Whether a mail of `kind` with exactly this payload was queued for the subscriber at or
/// after `since` (to space out mails a visitor can ask for).
pub(crate) async fn mail_queued_since(
    tx: &mut Tx,
    subscriber_id: i64,
    kind: DeliveryKind,
    payload: &serde_json::Value,
    since: i64,
) -> anyhow::Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM deliveries WHERE subscriber_id = $1 AND kind = $2 AND payload = $3 AND created_at >= $4",
    )
    .bind(subscriber_id)
    .bind(kind.as_str())
    .bind(payload.to_string())
    .bind(since)
    .fetch_one(&mut **tx)
    .await?;
    Ok(n > 0)
}

/// Confirmation mails queued at or after `since`, by anyone (sign-ups, imports, the API).
/// The kind is written out rather than bound so that both engines use the partial index
/// `deliveries_confirm_created` (migration 0016).
pub(crate) async fn confirmations_since(tx: &mut Tx, since: i64) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM deliveries WHERE kind = 'confirm' AND created_at >= $1",
    )
    .bind(since)
    .fetch_one(&mut **tx)
    .await?;
    Ok(n)
}

/// When the `nth` (from 0, oldest first) confirmation mail queued at or after `since` was
/// queued.
pub(crate) async fn nth_confirmation_since(
    tx: &mut Tx,
    since: i64,
    nth: i64,
) -> anyhow::Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT created_at FROM deliveries WHERE kind = 'confirm' AND created_at >= $1 ORDER BY created_at LIMIT 1 OFFSET $2",
    )
    .bind(since)
    .bind(nth.max(0))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.0))
}

/// A confirmation mail: who it asked, for which course, and the name and time zone a
/// repeated sign-up asked for (applied when the link is used).
#[derive(Debug, Clone)]
pub(crate) struct Confirmation {
    pub subscriber_id: i64,
    pub course_id: Option<i64>,
    pub payload: serde_json::Value,
    pub created_at: i64,
}

type ConfirmationRow = (i64, Option<i64>, String, i64);

fn confirmation(row: ConfirmationRow) -> Confirmation {
    Confirmation {
        subscriber_id: row.0,
        course_id: row.1,
        payload: serde_json::from_str(&row.2).unwrap_or_default(),
        created_at: row.3,
    }
}

/// The confirmation mail `id` (what a confirmation link names).
pub(crate) async fn confirmation_by_id(
    tx: &mut Tx,
    id: i64,
) -> anyhow::Result<Option<Confirmation>> {
    let row: Option<ConfirmationRow> = sqlx::query_as(
        "SELECT subscriber_id, course_id, payload, created_at FROM deliveries WHERE id = $1 AND kind = $2",
    )
    .bind(id)
    .bind(DeliveryKind::Confirm.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(confirmation))
}

/// The subscriber's latest confirmation mail, for one course or (None) any.
pub(crate) async fn latest_confirmation(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: Option<i64>,
) -> anyhow::Result<Option<Confirmation>> {
    let row: Option<ConfirmationRow> = sqlx::query_as(
        "SELECT subscriber_id, course_id, payload, created_at FROM deliveries WHERE subscriber_id = $1 AND kind = $2 AND ($3 IS NULL OR course_id = $3) ORDER BY id DESC LIMIT 1",
    )
    .bind(subscriber_id)
    .bind(DeliveryKind::Confirm.as_str())
    .bind(course_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(confirmation))
}

/// When each of these people's lesson mails go or went out (queued: due time; left: send
/// time), from `since` on: what the daily limit counts.
pub(crate) async fn lesson_times(
    conn: &mut sqlx::AnyConnection,
    subscriber_ids: &[i64],
    since: i64,
) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for chunk in subscriber_ids.chunks(500) {
        let sql = format!(
            "SELECT subscriber_id, COALESCE(sent_at, due_at) FROM deliveries WHERE kind = 'lesson' AND status IN ('queued', 'sent') AND COALESCE(sent_at, due_at) >= $1 AND subscriber_id IN ({})",
            super::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (i64, i64)>(&sql).bind(since);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// A delivery claimed by one sender.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub id: i64,
    pub subscriber_id: i64,
    pub enrollment_id: Option<i64>,
    pub lesson_id: Option<i64>,
    pub course_id: Option<i64>,
    pub broadcast_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub kind: DeliveryKind,
    pub attempts: i64,
    pub payload: String,
    pub created_at: i64,
}

/// The claim statement (also shown by the throughput benchmark's EXPLAIN): binds the lease
/// end, the owner, `now` and the limit.
pub fn claim_sql(db: &Db) -> String {
    // On PostgreSQL `id = ANY(ARRAY(subquery))` runs the subquery once and then looks the
    // rows up by primary key; with `id IN (subquery)` the planner may hash-join the whole
    // table against the batch, which costs a scan of every delivery ever sent per claim.
    let (open, close) = match db.backend() {
        super::Backend::Sqlite => ("id IN (", ")"),
        super::Backend::Postgres => ("id = ANY(ARRAY(", "))"),
    };
    format!(
        "UPDATE deliveries SET due_at = $1, lease_owner = $2, attempts = attempts + 1 WHERE {open}\
           SELECT d.id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
           WHERE d.status = 'queued' AND d.due_at <= $3 AND (d.kind <> 'lesson' OR s.status = 'active') \
           ORDER BY d.due_at LIMIT $4{}{close} \
         RETURNING id, subscriber_id, enrollment_id, lesson_id, course_id, broadcast_id, kind, attempts, payload, created_at",
        db.skip_locked("d")
    )
}

/// Claims up to `limit` due deliveries for `owner`: their due time moves to the end of the
/// lease, so if this sender dies they become due again by themselves. Lesson mails of
/// subscribers who are no longer active are not claimed.
pub async fn claim(
    db: &Db,
    now: i64,
    owner: &str,
    lease_seconds: i64,
    limit: i64,
) -> anyhow::Result<Vec<Claimed>> {
    let mut tx = db.begin_write().await?;
    let sql = claim_sql(db);
    let rows: Vec<Claimed> = sqlx::query_as(&sql)
        .bind(now + lease_seconds)
        .bind(owner)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Records many sends of one revision (None for non-lesson mails) at once; returns the ids
/// that were still this sender's to record (a lost lease leaves a row to its new owner).
pub(crate) async fn mark_sent_many(
    tx: &mut Tx,
    ids: &[i64],
    owner: &str,
    revision: Option<i64>,
    now: i64,
) -> anyhow::Result<Vec<i64>> {
    let mut recorded = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE deliveries SET status = 'sent', sent_at = $1, revision = $2, last_error = NULL WHERE status = 'queued' AND lease_owner = $3 AND id IN ({}) RETURNING id",
            super::placeholders(4, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (i64,)>(&sql)
            .bind(now)
            .bind(revision)
            .bind(owner);
        for id in chunk {
            q = q.bind(*id);
        }
        recorded.extend(q.fetch_all(&mut **tx).await?.into_iter().map(|r| r.0));
    }
    Ok(recorded)
}

/// Hands claimed deliveries back unsent (their lease was running out before their turn):
/// due again at `due_at`, and the claim does not count as an attempt.
pub async fn release(db: &Db, ids: &[i64], owner: &str, due_at: i64) -> anyhow::Result<()> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE deliveries SET due_at = $1, lease_owner = NULL, attempts = attempts - 1 WHERE status = 'queued' AND lease_owner = $2 AND id IN ({})",
            super::placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(due_at).bind(owner);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(db.pool()).await?;
    }
    Ok(())
}

/// A transient failure: try again at `retry_at`.
pub(crate) async fn retry_later(
    db: &Db,
    id: i64,
    owner: &str,
    retry_at: i64,
    error: &str,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE deliveries SET due_at = $1, last_error = $2, lease_owner = NULL WHERE id = $3 AND status = 'queued' AND lease_owner = $4")
        .bind(retry_at)
        .bind(error)
        .bind(id)
        .bind(owner)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A permanent failure (or a transient one past the maximum age) of a claimed delivery.
pub(crate) async fn mark_failed(
    tx: &mut Tx,
    id: i64,
    owner: &str,
    error: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'failed', failed_at = $1, last_error = $2 WHERE id = $3 AND status = 'queued' AND lease_owner = $4",
    )
    .bind(now)
    .bind(error)
    .bind(id)
    .bind(owner)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A bounce came back for a delivery that had left.
pub(crate) async fn mark_bounced(
    tx: &mut Tx,
    id: i64,
    error: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE deliveries SET status = 'bounced', failed_at = $1, last_error = $2 WHERE id = $3 AND status IN ('sent', 'failed', 'bounced')")
        .bind(now)
        .bind(error)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Withdraws a subscriber's queued lesson mails (on pause or unsubscribe); returns how many.
pub(crate) async fn withdraw_queued_lessons(
    tx: &mut Tx,
    subscriber_id: i64,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM deliveries WHERE subscriber_id = $1 AND kind = 'lesson' AND status = 'queued'",
    )
    .bind(subscriber_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// [`withdraw_queued_lessons`] for one enrollment (one course paused or left).
pub(crate) async fn withdraw_queued_for_enrollment(
    tx: &mut Tx,
    enrollment_id: i64,
) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM deliveries WHERE enrollment_id = $1 AND kind = 'lesson' AND status = 'queued'",
    )
    .bind(enrollment_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// The enrollment's queued lesson, due now (NEXT: the lesson already planned goes at once).
pub(crate) async fn hurry_queued_lesson(
    tx: &mut Tx,
    enrollment_id: i64,
    now: i64,
) -> anyhow::Result<bool> {
    Ok(sqlx::query(
        "UPDATE deliveries SET due_at = $1 WHERE enrollment_id = $2 AND kind = 'lesson' AND status = 'queued' AND lease_owner IS NULL AND due_at > $1",
    )
    .bind(now)
    .bind(enrollment_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        > 0)
}

/// One delivery as shown to people: in `subscribers show` and the admin timeline.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct DeliveryView {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub kind: DeliveryKind,
    /// The course's slug.
    pub course: Option<String>,
    pub lesson: Option<String>,
    /// The broadcast's id, for a broadcast's mail.
    pub broadcast: Option<i64>,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub revision: Option<i64>,
    pub created_at: i64,
    pub due_at: i64,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn for_subscriber(db: &Db, subscriber_id: i64) -> anyhow::Result<Vec<DeliveryView>> {
    Ok(sqlx::query_as(
        "SELECT d.id, d.kind, c.slug AS course, l.slug AS lesson, d.broadcast_id AS broadcast, d.status, d.attempts, d.revision, d.created_at, d.due_at, d.sent_at, d.failed_at, d.last_error \
         FROM deliveries d LEFT JOIN lessons l ON l.id = d.lesson_id LEFT JOIN courses c ON c.id = d.course_id WHERE d.subscriber_id = $1 ORDER BY d.id",
    )
    .bind(subscriber_id)
    .fetch_all(db.pool())
    .await?)
}

/// A delivery's owner and lesson, to match replies and bounces to it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRef {
    pub id: i64,
    pub subscriber_id: i64,
    pub enrollment_id: Option<i64>,
    pub lesson_id: Option<i64>,
    pub course_id: Option<i64>,
    pub broadcast_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub kind: DeliveryKind,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
}

pub async fn by_id(db: &Db, id: i64) -> anyhow::Result<Option<DeliveryRef>> {
    Ok(sqlx::query_as("SELECT id, subscriber_id, enrollment_id, lesson_id, course_id, broadcast_id, kind, status FROM deliveries WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// The subscriber's latest lesson mail that left.
pub(crate) async fn latest_lesson_for(
    db: &Db,
    subscriber_id: i64,
) -> anyhow::Result<Option<DeliveryRef>> {
    Ok(sqlx::query_as(
        "SELECT id, subscriber_id, enrollment_id, lesson_id, course_id, broadcast_id, kind, status FROM deliveries WHERE subscriber_id = $1 AND kind = 'lesson' AND status <> 'queued' ORDER BY id DESC LIMIT 1",
    )
    .bind(subscriber_id)
    .fetch_optional(db.pool())
    .await?)
}

/// Counts by status, for /metrics and stats.
pub(crate) async fn count_by_status(db: &Db) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT status, COUNT(*) FROM deliveries GROUP BY status ORDER BY status")
            .fetch_all(db.pool())
            .await?,
    )
}

/// How many are due now and the due time of the oldest.
pub(crate) async fn queue_depth(db: &Db, now: i64) -> anyhow::Result<(i64, Option<i64>)> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*), MIN(due_at) FROM deliveries WHERE status = 'queued' AND due_at <= $1",
    )
    .bind(now)
    .fetch_one(db.pool())
    .await?)
}

/// Removes every mail not yet sent to a subscriber (on erasure: nothing may reach them).
pub(crate) async fn drop_unsent(tx: &mut Tx, subscriber_id: i64) -> anyhow::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM deliveries WHERE subscriber_id = $1 AND status = 'queued'")
            .bind(subscriber_id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// The earliest moment anything becomes due: a queued delivery or an enrollment's next
/// lesson. The serve loop sleeps until then (capped), and tests jump straight to it.
pub async fn next_wakeup(db: &Db) -> anyhow::Result<Option<i64>> {
    let (d,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(due_at) FROM deliveries WHERE status = 'queued'")
            .fetch_one(db.pool())
            .await?;
    let (e,): (Option<i64>,) = sqlx::query_as("SELECT MIN(next_due_at) FROM enrollments WHERE status = 'active' AND next_due_at IS NOT NULL")
        .fetch_one(db.pool())
        .await?;
    Ok(match (d, e) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}
