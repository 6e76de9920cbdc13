//! Queries on `replies`: answers, auto-replies and bounces received.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::domain::ReplyKind;

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
    /// The author's answer this reply answers (it came to that answer's mail).
    pub in_answer_to: Option<i64>,
}

/// Stores a reply; `None` when a reply with the same Message-ID is already stored.
pub async fn insert(tx: &mut Tx, r: &NewReply<'_>) -> anyhow::Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO replies (message_id, subscriber_id, delivery_id, lesson_id, kind, matched_by, command, from_addr, subject, text, raw, flagged, flag_reason, received_at, in_answer_to) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (message_id) DO NOTHING RETURNING id",
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
    .bind(r.in_answer_to)
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
    #[sqlx(try_from = "String")]
    pub kind: ReplyKind,
    pub matched_by: Option<String>,
    pub command: Option<String>,
    pub from_addr: String,
    pub subject: String,
    pub text: Vec<u8>,
    /// 1 while the raw message is kept (the retention sweep deletes it after a while).
    pub has_raw: i64,
    pub flagged: i64,
    pub flag_reason: String,
    pub read_at: Option<i64>,
    pub received_at: i64,
    /// The author's answer this reply answers, if it came to an answer's mail.
    pub in_answer_to: Option<i64>,
}

const SELECT: &str = "SELECT r.id, r.subscriber_id, r.lesson_id, l.slug AS lesson, r.kind, r.matched_by, r.command, r.from_addr, r.subject, r.text, CASE WHEN r.raw IS NULL THEN 0 ELSE 1 END AS has_raw, r.flagged, r.flag_reason, r.read_at, r.received_at, r.in_answer_to FROM replies r LEFT JOIN lessons l ON l.id = r.lesson_id";

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

/// Notes in `answered_lessons` which lessons this subscriber answered, before their replies
/// are deleted: the answer rate counts people, not stored words.
pub(crate) async fn keep_answer_marks_for_subscriber(
    tx: &mut Tx,
    subscriber_id: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO answered_lessons (subscriber_id, lesson_id) \
         SELECT DISTINCT subscriber_id, lesson_id FROM replies WHERE subscriber_id = $1 AND kind = 'reply' AND lesson_id IS NOT NULL \
         ON CONFLICT (subscriber_id, lesson_id) DO NOTHING",
    )
    .bind(subscriber_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn delete_for_subscriber(tx: &mut Tx, subscriber_id: i64) -> anyhow::Result<u64> {
    Ok(sqlx::query("DELETE FROM replies WHERE subscriber_id = $1")
        .bind(subscriber_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

pub(crate) async fn count_by_kind(db: &Db) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT kind, COUNT(*) FROM replies GROUP BY kind ORDER BY kind")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Up to `limit` replies received before `cutoff`, locked for deletion (on PostgreSQL,
/// rows another sweeping process holds are skipped, not waited for).
pub(crate) async fn lock_received_before(
    db: &Db,
    tx: &mut Tx,
    cutoff: i64,
    limit: i64,
) -> anyhow::Result<Vec<i64>> {
    let sql = format!(
        "SELECT id FROM replies WHERE received_at < $1 ORDER BY id LIMIT $2{}",
        db.skip_locked("replies")
    );
    let rows: Vec<(i64,)> = sqlx::query_as(&sql)
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Deletes these replies, first noting in `answered_lessons` which lessons they answered
/// (see [`keep_answer_marks_for_subscriber`]). Returns how many were deleted.
pub(crate) async fn delete_keeping_answer_marks(tx: &mut Tx, ids: &[i64]) -> anyhow::Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let list = super::placeholders(1, ids.len());
    let mark = format!(
        "INSERT INTO answered_lessons (subscriber_id, lesson_id) \
         SELECT DISTINCT subscriber_id, lesson_id FROM replies \
         WHERE id IN ({list}) AND kind = 'reply' AND subscriber_id IS NOT NULL AND lesson_id IS NOT NULL \
         ON CONFLICT (subscriber_id, lesson_id) DO NOTHING"
    );
    let mut q = sqlx::query(&mark);
    for id in ids {
        q = q.bind(*id);
    }
    q.execute(&mut **tx).await?;
    let delete = format!("DELETE FROM replies WHERE id IN ({list})");
    let mut q = sqlx::query(&delete);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

/// Deletes the raw message of up to `limit` replies received before `cutoff`, keeping their
/// text. Returns how many lost their raw message; fewer than `limit` means none is left.
pub(crate) async fn drop_raw_received_before(
    tx: &mut Tx,
    cutoff: i64,
    limit: i64,
) -> anyhow::Result<u64> {
    // `raw IS NOT NULL` outside the subquery too: on PostgreSQL a row another sweep nulled
    // meanwhile is re-checked after its lock and not counted twice.
    Ok(sqlx::query(
        "UPDATE replies SET raw = NULL WHERE raw IS NOT NULL AND id IN \
         (SELECT id FROM replies WHERE received_at < $1 AND raw IS NOT NULL ORDER BY id LIMIT $2)",
    )
    .bind(cutoff)
    .bind(limit)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// A reply's sealed columns, for `drip keys reseal`.
#[derive(Debug, Clone, FromRow)]
pub struct Sealed {
    pub id: i64,
    pub text: Vec<u8>,
    pub raw: Option<Vec<u8>>,
}

/// Up to `limit` replies with an id above `after`, in id order.
pub(crate) async fn sealed_after(db: &Db, after: i64, limit: i64) -> anyhow::Result<Vec<Sealed>> {
    Ok(
        sqlx::query_as("SELECT id, text, raw FROM replies WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(db.pool())
            .await?,
    )
}
