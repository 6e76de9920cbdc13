//! Queries on `admins`, `admin_sessions` and `api_tokens`. Session ids and tokens arrive
//! here already hashed (see `crate::auth`).

use sqlx::FromRow;

use super::Db;

#[derive(Debug, Clone, FromRow)]
pub(crate) struct AdminRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
}

pub async fn insert(
    db: &Db,
    username: &str,
    email: &str,
    password_hash: &str,
    now: i64,
) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO admins (username, email, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(username)
    .bind(email)
    .bind(password_hash)
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    Ok(id)
}

pub(crate) async fn by_username(db: &Db, username: &str) -> anyhow::Result<Option<AdminRow>> {
    Ok(
        sqlx::query_as("SELECT id, username, password_hash FROM admins WHERE username = $1")
            .bind(username)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// A session with its admin.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub admin_id: i64,
    pub username: String,
    pub email: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// Stores a new session created at `now`, and in the same transaction deletes every
/// session created before `expired_before` (the caller's policy says when that is).
pub(crate) async fn create_session(
    db: &Db,
    id_hash: &str,
    admin_id: i64,
    csrf: &str,
    now: i64,
    expired_before: i64,
) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM admin_sessions WHERE created_at < $1")
        .bind(expired_before)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)")
        .bind(id_hash)
        .bind(admin_id)
        .bind(csrf)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn session(db: &Db, id_hash: &str) -> anyhow::Result<Option<SessionRow>> {
    Ok(sqlx::query_as(
        "SELECT s.admin_id, a.username, a.email, s.csrf_token, s.created_at, s.last_seen_at \
         FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(db.pool())
    .await?)
}

pub(crate) async fn touch_session(db: &Db, id_hash: &str, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(now)
        .bind(id_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(crate) async fn delete_session(db: &Db, id_hash: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub(crate) async fn insert_token(
    db: &Db,
    admin_id: i64,
    token_hash: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO api_tokens (admin_id, token_hash, created_at) VALUES ($1, $2, $3)")
        .bind(admin_id)
        .bind(token_hash)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub(crate) struct TokenAdmin {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub last_used_at: Option<i64>,
}

pub(crate) async fn by_token(db: &Db, token_hash: &str) -> anyhow::Result<Option<TokenAdmin>> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.username, a.email, t.last_used_at FROM api_tokens t JOIN admins a ON a.id = t.admin_id WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?)
}

pub(crate) async fn touch_token(db: &Db, token_hash: &str, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(token_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}
