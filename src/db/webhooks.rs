//! Webhooks: the endpoints and the events they want, the event outbox, and one delivery per
//! endpoint and event (claimed with a lease, retried, then delivered or failed). Also the
//! facts an event's payload is built from, read in the transaction that causes the event.

use sqlx::FromRow;

use super::{Db, Tx, placeholders};
use crate::domain::{EventType, WebhookStatus};

/// An endpoint as stored (its secret still sealed), with the events it wants.
#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: i64,
    pub url: String,
    pub sealed_secret: Vec<u8>,
    pub events: Vec<EventType>,
    pub created_at: i64,
    pub created_by: String,
}

#[derive(FromRow)]
struct EndpointBare {
    id: i64,
    url: String,
    secret: Vec<u8>,
    created_at: i64,
    created_by: String,
}

pub(crate) async fn insert_endpoint(
    tx: &mut Tx,
    url: &str,
    sealed_secret: &[u8],
    events: &[EventType],
    created_by: &str,
    now: i64,
) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO webhooks (url, secret, created_at, created_by) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(url)
    .bind(sealed_secret)
    .bind(now)
    .bind(created_by)
    .fetch_one(&mut **tx)
    .await?;
    for e in events {
        sqlx::query("INSERT INTO webhook_event_types (webhook_id, event_type) VALUES ($1, $2)")
            .bind(id)
            .bind(e.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(id)
}

/// Every endpoint, oldest first.
pub async fn endpoints(db: &Db) -> anyhow::Result<Vec<EndpointRow>> {
    let bare: Vec<EndpointBare> =
        sqlx::query_as("SELECT id, url, secret, created_at, created_by FROM webhooks ORDER BY id")
            .fetch_all(db.pool())
            .await?;
    let types: Vec<(i64, String)> = sqlx::query_as(
        "SELECT webhook_id, event_type FROM webhook_event_types ORDER BY webhook_id",
    )
    .fetch_all(db.pool())
    .await?;
    bare.into_iter()
        .map(|b| {
            let mut events = types
                .iter()
                .filter(|(w, _)| *w == b.id)
                .map(|(_, t)| EventType::parse(t).map_err(anyhow::Error::from))
                .collect::<anyhow::Result<Vec<_>>>()?;
            events.sort();
            Ok(EndpointRow {
                id: b.id,
                url: b.url,
                sealed_secret: b.secret,
                events,
                created_at: b.created_at,
                created_by: b.created_by,
            })
        })
        .collect()
}

/// Removes an endpoint with its deliveries, and the events no other endpoint was to get.
pub(crate) async fn remove_endpoint(tx: &mut Tx, id: i64) -> anyhow::Result<bool> {
    sqlx::query(
        "DELETE FROM webhook_events WHERE id IN (SELECT event_id FROM webhook_deliveries WHERE webhook_id = $1) \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id AND d.webhook_id <> $1)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether any endpoint wants `kind`: when none does, nothing is written at all.
pub(crate) async fn wanted(tx: &mut Tx, kind: EventType) -> anyhow::Result<bool> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT webhook_id FROM webhook_event_types WHERE event_type = $1 LIMIT 1")
            .bind(kind.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

/// Stores an event and queues one delivery to each endpoint that wants its type; returns
/// how many were queued.
pub(crate) async fn insert_event(
    tx: &mut Tx,
    event_id: &str,
    kind: EventType,
    subscriber_id: Option<i64>,
    payload: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO webhook_events (event_id, type, subscriber_id, payload, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(event_id)
    .bind(kind.as_str())
    .bind(subscriber_id)
    .bind(payload)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let queued = sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) \
         SELECT webhook_id, $1, 'pending', 0, $2, $2 FROM webhook_event_types WHERE event_type = $3",
    )
    .bind(id)
    .bind(now)
    .bind(kind.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(queued.rows_affected())
}

/// A delivery claimed for posting, with what the post needs.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedPost {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub sealed_secret: Vec<u8>,
    pub event_id: String,
    pub payload: String,
    /// Counting this one.
    pub attempts: i64,
    /// When the event happened: retries stop 24 hours (`[webhooks] retry_hours`) after.
    pub created_at: i64,
}

/// Claims up to `limit` pending deliveries due at `now` for `owner`: their next attempt
/// moves to the end of the lease, so if this worker dies they come back by themselves. On
/// PostgreSQL the rows are locked with SKIP LOCKED, so two workers never claim the same.
pub async fn claim(
    db: &Db,
    now: i64,
    owner: &str,
    lease_seconds: i64,
    limit: i64,
) -> anyhow::Result<Vec<ClaimedPost>> {
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "UPDATE webhook_deliveries SET next_attempt_at = $1, lease_owner = $2, attempts = attempts + 1 WHERE id IN (\
           SELECT d.id FROM webhook_deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
           ORDER BY d.next_attempt_at, d.id LIMIT $4{}) RETURNING id",
        db.skip_locked("d")
    );
    let ids: Vec<(i64,)> = sqlx::query_as(&sql)
        .bind(now + lease_seconds)
        .bind(owner)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT d.id, d.webhook_id, w.url, w.secret AS sealed_secret, e.event_id, e.payload, d.attempts, e.created_at \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN webhook_events e ON e.id = d.event_id \
         WHERE d.id IN ({}) ORDER BY d.next_attempt_at, d.id",
        placeholders(1, ids.len())
    );
    let mut q = sqlx::query_as::<_, ClaimedPost>(&sql);
    for (id,) in &ids {
        q = q.bind(*id);
    }
    let rows = q.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A 2xx answer.
    Delivered { code: i64 },
    /// Any other answer, or none: try again at `retry_at`.
    Retry {
        code: Option<i64>,
        error: String,
        retry_at: i64,
    },
    /// Past the retry window: given up, and shown.
    Failed { code: Option<i64>, error: String },
}

/// Records an attempt, if the row is still this worker's (a lost lease leaves it to the
/// worker that holds it now). Returns whether it was.
pub async fn record(
    db: &Db,
    id: i64,
    owner: &str,
    outcome: &Recorded,
    now: i64,
) -> anyhow::Result<bool> {
    // $1 now, $2 the answer's code, $3 the row, $4 its lease owner, $5 the error, $6 when next.
    let (sql, code, error, retry_at) = match outcome {
        Recorded::Delivered { code } => (
            "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = $1, last_attempt_at = $1, last_status_code = $2, last_error = $5, lease_owner = NULL, next_attempt_at = $6",
            Some(*code),
            None,
            now,
        ),
        Recorded::Retry {
            code,
            error,
            retry_at,
        } => (
            "UPDATE webhook_deliveries SET last_attempt_at = $1, last_status_code = $2, last_error = $5, lease_owner = NULL, next_attempt_at = $6",
            *code,
            Some(error.as_str()),
            *retry_at,
        ),
        Recorded::Failed { code, error } => (
            "UPDATE webhook_deliveries SET status = 'failed', failed_at = $1, last_attempt_at = $1, last_status_code = $2, last_error = $5, lease_owner = NULL, next_attempt_at = $6",
            *code,
            Some(error.as_str()),
            now,
        ),
    };
    let done = sqlx::query(&format!(
        "{sql} WHERE id = $3 AND lease_owner = $4 AND status = 'pending'"
    ))
    .bind(now)
    .bind(code)
    .bind(id)
    .bind(owner)
    .bind(error)
    .bind(retry_at)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Hands claimed deliveries back without an attempt (their endpoint just failed, so they
/// wait with it until `until`); the claim does not count as an attempt.
pub async fn hold(db: &Db, ids: &[i64], owner: &str, until: i64) -> anyhow::Result<()> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, lease_owner = NULL, attempts = attempts - 1 \
             WHERE status = 'pending' AND lease_owner = $2 AND id IN ({})",
            placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(until).bind(owner);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(db.pool()).await?;
    }
    Ok(())
}

/// One delivery as the admin page and `drip webhooks list --json` show it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    #[sqlx(rename = "type", try_from = "String")]
    #[serde(rename = "type")]
    pub kind: EventType,
    #[sqlx(try_from = "String")]
    pub status: WebhookStatus,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
}

/// The latest `limit` deliveries to an endpoint, newest first.
pub async fn recent(db: &Db, webhook_id: i64, limit: i64) -> anyhow::Result<Vec<AttemptRow>> {
    Ok(sqlx::query_as(
        "SELECT d.id, d.webhook_id, e.event_id, e.type, d.status, d.attempts, d.last_status_code, d.last_error, \
                d.last_attempt_at, d.next_attempt_at, d.created_at, d.delivered_at, d.failed_at \
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
         WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2",
    )
    .bind(webhook_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// How many deliveries to an endpoint are in each state.
pub async fn counts(db: &Db, webhook_id: i64) -> anyhow::Result<Vec<(WebhookStatus, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1 GROUP BY status",
    )
    .bind(webhook_id)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|(s, n)| Ok((WebhookStatus::parse(&s)?, n)))
        .collect()
}

/// The stored payload of an event (the body every attempt posts), by its public id.
pub async fn payload_of(db: &Db, event_id: &str) -> anyhow::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT payload FROM webhook_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|r| r.0))
}

/// The events about a subscriber, for erasure to take their address out.
pub(crate) async fn payloads_about(
    tx: &mut Tx,
    subscriber_id: i64,
) -> anyhow::Result<Vec<(i64, String)>> {
    Ok(
        sqlx::query_as("SELECT id, payload FROM webhook_events WHERE subscriber_id = $1")
            .bind(subscriber_id)
            .fetch_all(&mut **tx)
            .await?,
    )
}

pub(crate) async fn replace_payload(tx: &mut Tx, id: i64, payload: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE webhook_events SET payload = $1 WHERE id = $2")
        .bind(payload)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes up to `limit` events from before `before` that have nothing left to deliver
/// (their deliveries go with them); returns how many.
pub async fn prune(db: &Db, before: i64, limit: i64) -> anyhow::Result<u64> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "DELETE FROM webhook_events WHERE id IN (\
           SELECT e.id FROM webhook_events e WHERE e.created_at < $1 \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending') \
           ORDER BY e.created_at LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Every endpoint's sealed secret, for `drip keys reseal`.
pub async fn sealed_secrets(db: &Db) -> anyhow::Result<Vec<(i64, Vec<u8>)>> {
    Ok(
        sqlx::query_as("SELECT id, secret FROM webhooks ORDER BY id")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Replaces a sealed secret if it is still `old` (a concurrent change wins).
pub async fn replace_secret(db: &Db, id: i64, old: &[u8], new: &[u8]) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE webhooks SET secret = $1 WHERE id = $2 AND secret = $3")
        .bind(new)
        .bind(id)
        .bind(old)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

// The facts payloads are made of: ids, addresses and slugs, never anything a person wrote.

/// A sent lesson.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct LessonSentFacts {
    pub delivery_id: i64,
    pub enrollment_id: Option<i64>,
    pub subscriber_id: i64,
    pub email: String,
    pub course: String,
    pub lesson: String,
    pub revision: Option<i64>,
    pub sent_at: Option<i64>,
}

/// The lesson deliveries among `ids` (other kinds of mail are left out).
pub(crate) async fn lessons_sent(tx: &mut Tx, ids: &[i64]) -> anyhow::Result<Vec<LessonSentFacts>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT d.id AS delivery_id, d.enrollment_id, d.subscriber_id, s.email, c.slug AS course, l.slug AS lesson, d.revision, d.sent_at \
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id JOIN lessons l ON l.id = d.lesson_id JOIN courses c ON c.id = l.course_id \
             WHERE d.kind = 'lesson' AND d.id IN ({}) ORDER BY d.id",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, LessonSentFacts>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// An enrollment with its person and course.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct EnrollmentFacts {
    pub enrollment_id: i64,
    pub subscriber_id: i64,
    pub email: String,
    pub course: String,
    pub next_due_at: Option<i64>,
}

const ENROLLMENT_FACTS: &str = "SELECT e.id AS enrollment_id, e.subscriber_id, s.email, c.slug AS course, e.next_due_at \
     FROM enrollments e JOIN subscribers s ON s.id = e.subscriber_id JOIN courses c ON c.id = e.course_id";

pub(crate) async fn enrollments(tx: &mut Tx, ids: &[i64]) -> anyhow::Result<Vec<EnrollmentFacts>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "{ENROLLMENT_FACTS} WHERE e.id IN ({}) ORDER BY e.id",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, EnrollmentFacts>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// The enrollments in `course_id` of each of `subscribers`.
pub(crate) async fn enrollments_in_course(
    tx: &mut Tx,
    course_id: i64,
    subscribers: &[i64],
) -> anyhow::Result<Vec<EnrollmentFacts>> {
    let mut out = Vec::with_capacity(subscribers.len());
    for chunk in subscribers.chunks(500) {
        let sql = format!(
            "{ENROLLMENT_FACTS} WHERE e.course_id = $1 AND e.subscriber_id IN ({}) ORDER BY e.id",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, EnrollmentFacts>(&sql).bind(course_id);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// A delivery's course and lesson, by slug.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct DeliveryFacts {
    pub course: Option<String>,
    pub lesson: Option<String>,
}

pub(crate) async fn delivery(tx: &mut Tx, id: i64) -> anyhow::Result<Option<DeliveryFacts>> {
    Ok(sqlx::query_as(
        "SELECT c.slug AS course, l.slug AS lesson FROM deliveries d \
         LEFT JOIN lessons l ON l.id = d.lesson_id LEFT JOIN courses c ON c.id = COALESCE(d.course_id, l.course_id) \
         WHERE d.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// A stored reply's ids and how it was matched; its text and subject are not read.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct ReplyFacts {
    pub reply_id: i64,
    pub subscriber_id: Option<i64>,
    pub email: Option<String>,
    pub delivery_id: Option<i64>,
    pub enrollment_id: Option<i64>,
    pub course: Option<String>,
    pub lesson: Option<String>,
    pub matched_by: Option<String>,
}

pub(crate) async fn reply(tx: &mut Tx, id: i64) -> anyhow::Result<Option<ReplyFacts>> {
    Ok(sqlx::query_as(
        "SELECT r.id AS reply_id, r.subscriber_id, s.email, r.delivery_id, d.enrollment_id, c.slug AS course, l.slug AS lesson, r.matched_by \
         FROM replies r LEFT JOIN subscribers s ON s.id = r.subscriber_id LEFT JOIN deliveries d ON d.id = r.delivery_id \
         LEFT JOIN lessons l ON l.id = r.lesson_id LEFT JOIN courses c ON c.id = COALESCE(d.course_id, l.course_id) \
         WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}
