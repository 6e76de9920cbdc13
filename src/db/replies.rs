//! Queries on `replies`: answers, auto-replies and bounces received.

use sqlx::FromRow;

use super::{Db, Tx};

#[derive(Debug, Clone)]
pub struct NewReply<'a> {
    pub message_id: Option<&'a str>,
    pub subscriber_id: Option<i64>,
    pub delivery_id: Option<i64>,
    pub lesson_id: Option<i64>,
    pub kind: &'a str,
    pub matched_by: Option<&'a str>,
    pub command: Option<&'a str>,
    pub from_addr: &'a str,
    pub subject: &'a str,
    pub text: &'a [u8],
    pub raw: Option<&'a [u8]>,
    pub flagged: bool,
    pub flag_reason: &'a str,
    pub received_at: i64,
}

/// Stores a reply; `None` when a reply with the same Message-ID is already stored.
pub async fn insert(tx: &mut Tx, r: &NewReply<'_>) -> anyhow::Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO replies (message_id, subscriber_id, delivery_id, lesson_id, kind, matched_by, command, from_addr, subject, text, raw, flagged, flag_reason, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (message_id) DO NOTHING RETURNING id",
    )
    .bind(r.message_id)
    .bind(r.subscriber_id)
    .bind(r.delivery_id)
    .bind(r.lesson_id)
    .bind(r.kind)
    .bind(r.matched_by)
    .bind(r.command)
    .bind(r.from_addr)
    .bind(r.subject)
    .bind(r.text.to_vec())
    .bind(r.raw.map(<[u8]>::to_vec))
    .bind(i64::from(r.flagged))
    .bind(r.flag_reason)
    .bind(r.received_at)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.0))
}

/// A stored reply with the lesson it answers.
#[derive(Debug, Clone, FromRow)]
pub struct ReplyRow {
    pub id: i64,
    pub subscriber_id: Option<i64>,
    pub lesson_id: Option<i64>,
    pub lesson: Option<String>,
    pub kind: String,
    pub matched_by: Option<String>,
    pub command: Option<String>,
    pub from_addr: String,
    pub subject: String,
    pub text: Vec<u8>,
    pub flagged: i64,
    pub flag_reason: String,
    pub read_at: Option<i64>,
    pub received_at: i64,
}

const SELECT: &str = "SELECT r.id, r.subscriber_id, r.lesson_id, l.slug AS lesson, r.kind, r.matched_by, r.command, r.from_addr, r.subject, r.text, r.flagged, r.flag_reason, r.read_at, r.received_at FROM replies r LEFT JOIN lessons l ON l.id = r.lesson_id";

pub async fn for_subscriber(db: &Db, subscriber_id: i64) -> anyhow::Result<Vec<ReplyRow>> {
    let sql = format!("{SELECT} WHERE r.subscriber_id = $1 ORDER BY r.received_at, r.id");
    Ok(sqlx::query_as(&sql)
        .bind(subscriber_id)
        .fetch_all(db.pool())
        .await?)
}

pub async fn count_answers(db: &Db, subscriber_id: i64) -> anyhow::Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM replies WHERE subscriber_id = $1 AND kind = 'reply'")
            .bind(subscriber_id)
            .fetch_one(db.pool())
            .await?;
    Ok(n)
}

pub async fn delete_for_subscriber(tx: &mut Tx, subscriber_id: i64) -> anyhow::Result<u64> {
    Ok(sqlx::query("DELETE FROM replies WHERE subscriber_id = $1")
        .bind(subscriber_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

pub async fn count_by_kind(db: &Db) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT kind, COUNT(*) FROM replies GROUP BY kind ORDER BY kind")
            .fetch_all(db.pool())
            .await?,
    )
}
