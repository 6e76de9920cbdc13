//! Queries on `answers`: what an admin wrote back to a reader's reply, and the mail that
//! carries it (a delivery of kind 'answer').

use sqlx::FromRow;

use super::{Db, Tx};

/// The reply an admin is about to answer, with what the answer's mail needs from it.
#[derive(Debug, Clone, FromRow)]
pub struct Answerable {
    pub id: i64,
    pub subscriber_id: Option<i64>,
    pub kind: String,
    /// The mail the reply answered (a lesson, a broadcast, an earlier answer).
    pub delivery_id: Option<i64>,
    pub enrollment_id: Option<i64>,
    pub course_id: Option<i64>,
    /// The reader's status, and that of their enrollment in the course (if any).
    pub subscriber_status: Option<String>,
    pub enrollment_status: Option<String>,
}

const ANSWERABLE: &str = "SELECT r.id, r.subscriber_id, r.kind, r.delivery_id, d.enrollment_id, d.course_id, \
     s.status AS subscriber_status, e.status AS enrollment_status \
     FROM replies r LEFT JOIN deliveries d ON d.id = r.delivery_id \
     LEFT JOIN subscribers s ON s.id = r.subscriber_id \
     LEFT JOIN enrollments e ON e.id = d.enrollment_id WHERE r.id = $1";

/// The reply, read in the transaction that writes its answer.
pub(crate) async fn answerable(tx: &mut Tx, reply_id: i64) -> anyhow::Result<Option<Answerable>> {
    Ok(sqlx::query_as(ANSWERABLE)
        .bind(reply_id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// The reply, read for a page that offers to answer it.
pub(crate) async fn answerable_now(db: &Db, reply_id: i64) -> anyhow::Result<Option<Answerable>> {
    Ok(sqlx::query_as(ANSWERABLE)
        .bind(reply_id)
        .fetch_optional(db.pool())
        .await?)
}

pub(crate) struct NewAnswer<'a> {
    pub reply_id: i64,
    pub subscriber_id: i64,
    pub delivery_id: i64,
    pub author: &'a str,
    pub text: &'a [u8],
    pub created_at: i64,
}

pub(crate) async fn insert(tx: &mut Tx, a: &NewAnswer<'_>) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO answers (reply_id, subscriber_id, delivery_id, author, text, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(a.reply_id)
    .bind(a.subscriber_id)
    .bind(a.delivery_id)
    .bind(a.author)
    .bind(a.text.to_vec())
    .bind(a.created_at)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// An answer with the reply it answers and the state of its mail.
#[derive(Debug, Clone, FromRow)]
pub struct AnswerRow {
    pub id: i64,
    pub reply_id: i64,
    pub subscriber_id: i64,
    pub delivery_id: Option<i64>,
    pub author: String,
    /// Sealed; open with `App::open_reply_text`.
    pub text: Vec<u8>,
    pub created_at: i64,
    /// The answered reply's Message-ID (without angle brackets), its subject, the mail it
    /// answered and when it came.
    pub reply_message_id: Option<String>,
    pub reply_subject: String,
    pub reply_delivery_id: Option<i64>,
    pub reply_received_at: i64,
    /// The answer mail's state: queued, sent, failed or bounced (None once it is gone).
    pub status: Option<String>,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

const SELECT: &str = "SELECT a.id, a.reply_id, a.subscriber_id, a.delivery_id, a.author, a.text, a.created_at, \
     r.message_id AS reply_message_id, r.subject AS reply_subject, r.delivery_id AS reply_delivery_id, \
     r.received_at AS reply_received_at, d.status, d.sent_at, d.last_error \
     FROM answers a JOIN replies r ON r.id = a.reply_id LEFT JOIN deliveries d ON d.id = a.delivery_id";

/// The answers these deliveries carry.
pub(crate) async fn by_deliveries(db: &Db, ids: &[i64]) -> anyhow::Result<Vec<AnswerRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "{SELECT} WHERE a.delivery_id IN ({})",
        super::placeholders(1, ids.len())
    );
    let mut q = sqlx::query_as(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(db.pool()).await?)
}

/// Every answer written to this reader, oldest first.
pub async fn for_subscriber(db: &Db, subscriber_id: i64) -> anyhow::Result<Vec<AnswerRow>> {
    let sql = format!("{SELECT} WHERE a.subscriber_id = $1 ORDER BY a.created_at, a.id");
    Ok(sqlx::query_as(&sql)
        .bind(subscriber_id)
        .fetch_all(db.pool())
        .await?)
}

/// The answer a delivery carries, and the lesson its conversation is about: what a reply to
/// that mail is tied to.
pub(crate) async fn of_delivery(
    db: &Db,
    delivery_id: i64,
) -> anyhow::Result<Option<(i64, Option<i64>)>> {
    Ok(sqlx::query_as(
        "SELECT a.id, r.lesson_id FROM answers a JOIN replies r ON r.id = a.reply_id WHERE a.delivery_id = $1",
    )
    .bind(delivery_id)
    .fetch_optional(db.pool())
    .await?)
}

/// Deletes every answer written to this reader (their erasure).
pub(crate) async fn delete_for_subscriber(tx: &mut Tx, subscriber_id: i64) -> anyhow::Result<u64> {
    Ok(sqlx::query("DELETE FROM answers WHERE subscriber_id = $1")
        .bind(subscriber_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// A sealed answer text, for `drip keys reseal`.
#[derive(Debug, Clone, FromRow)]
pub struct Sealed {
    pub id: i64,
    pub text: Vec<u8>,
}

/// Up to `limit` answers with an id above `after`, in id order.
pub(crate) async fn sealed_after(db: &Db, after: i64, limit: i64) -> anyhow::Result<Vec<Sealed>> {
    Ok(
        sqlx::query_as("SELECT id, text FROM answers WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(db.pool())
            .await?,
    )
}
