//! The event log.

use sqlx::FromRow;

use super::{Db, Tx};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct EventRow {
    pub id: i64,
    pub subscriber_id: Option<i64>,
    pub actor: String,
    pub kind: String,
    pub detail: String,
    pub created_at: i64,
}

pub async fn log(
    tx: &mut Tx,
    subscriber_id: Option<i64>,
    actor: &str,
    kind: &str,
    detail: &serde_json::Value,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO events (subscriber_id, actor, kind, detail, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(subscriber_id)
        .bind(actor)
        .bind(kind)
        .bind(detail.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn for_subscriber(db: &Db, subscriber_id: i64) -> anyhow::Result<Vec<EventRow>> {
    Ok(sqlx::query_as("SELECT id, subscriber_id, actor, kind, detail, created_at FROM events WHERE subscriber_id = $1 ORDER BY id")
        .bind(subscriber_id)
        .fetch_all(db.pool())
        .await?)
}
