//! Queries on `admins`, `admin_sessions`, `api_tokens` and `admin_recovery_codes`. Session
//! ids, tokens and recovery codes arrive here already hashed, TOTP keys already sealed (see
//! `crate::auth`).

use sqlx::FromRow;

use super::{Db, Tx};
use crate::domain::{Role, SessionStage};

/// An admin as stored, with their role read into its enum.
#[derive(Debug, Clone)]
pub(crate) struct AdminRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    /// Whether a second factor is enrolled.
    pub totp: bool,
    pub session_generation: i64,
}

#[derive(FromRow)]
struct RawAdmin {
    id: i64,
    username: String,
    password_hash: String,
    role: String,
    totp_secret: Option<Vec<u8>>,
    session_generation: i64,
}

impl TryFrom<RawAdmin> for AdminRow {
    type Error = anyhow::Error;

    fn try_from(r: RawAdmin) -> anyhow::Result<AdminRow> {
        Ok(AdminRow {
            role: stored_role(&r.role)?,
            id: r.id,
            username: r.username,
            password_hash: r.password_hash,
            totp: r.totp_secret.is_some(),
            session_generation: r.session_generation,
        })
    }
}

fn stored_role(s: &str) -> anyhow::Result<Role> {
    Role::parse(s).map_err(|e| anyhow::anyhow!("admins.role: {e}"))
}

pub async fn insert(
    db: &Db,
    username: &str,
    email: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO admins (username, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(username)
    .bind(email)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    Ok(id)
}

pub(crate) async fn by_username(db: &Db, username: &str) -> anyhow::Result<Option<AdminRow>> {
    let raw: Option<RawAdmin> = sqlx::query_as(
        "SELECT id, username, password_hash, role, totp_secret, session_generation FROM admins WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(db.pool())
    .await?;
    raw.map(AdminRow::try_from).transpose()
}

/// Ends every session of the admin: their generation moves on (so a session being made from
/// an earlier password check is born dead) and the rows go.
async fn end_sessions_in(tx: &mut Tx, admin_id: i64) -> anyhow::Result<i64> {
    let (generation,): (i64,) = sqlx::query_as(
        "UPDATE admins SET session_generation = session_generation + 1 WHERE id = $1 RETURNING session_generation",
    )
    .bind(admin_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut **tx)
        .await?;
    Ok(generation)
}

/// A new password hash; every session of the admin ends.
pub(crate) async fn set_password(
    db: &Db,
    admin_id: i64,
    password_hash: &str,
) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE admins SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(admin_id)
        .execute(&mut *tx)
        .await?;
    end_sessions_in(&mut tx, admin_id).await?;
    tx.commit().await?;
    Ok(())
}

/// An admin's second factor as stored: the sealed key and a sealed key awaiting
/// confirmation.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct TotpRow {
    pub id: i64,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_pending: Option<Vec<u8>>,
}

pub(crate) async fn totp(db: &Db, admin_id: i64) -> anyhow::Result<Option<TotpRow>> {
    Ok(
        sqlx::query_as("SELECT id, totp_secret, totp_pending FROM admins WHERE id = $1")
            .bind(admin_id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Every admin's sealed keys, for `drip keys reseal`.
pub(crate) async fn all_totp(db: &Db) -> anyhow::Result<Vec<TotpRow>> {
    Ok(sqlx::query_as(
        "SELECT id, totp_secret, totp_pending FROM admins \
         WHERE totp_secret IS NOT NULL OR totp_pending IS NOT NULL ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?)
}

/// Stores a key to confirm, unless one is already waiting (two tabs show the same key).
pub(crate) async fn offer_pending(db: &Db, admin_id: i64, sealed: &[u8]) -> anyhow::Result<()> {
    sqlx::query("UPDATE admins SET totp_pending = $1 WHERE id = $2 AND totp_pending IS NULL")
        .bind(sealed.to_vec())
        .bind(admin_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Records that the code of `step` was used; false if that step or a later one already
/// was (a code works once, RFC 6238 §5.2).
pub(crate) async fn accept_step(db: &Db, admin_id: i64, step: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE admins SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(admin_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What enrolling writes.
pub(crate) struct Enrolment<'a> {
    pub sealed_secret: &'a [u8],
    /// The step whose code confirmed the key (none when the CLI enrols without a code).
    pub last_step: Option<i64>,
    /// When set, the enrolment happens only if this is still the waiting key.
    pub replaces_pending: Option<&'a [u8]>,
    pub recovery_hashes: &'a [String],
    pub now: i64,
}

/// Makes `e.sealed_secret` the admin's second factor with fresh recovery codes, in one
/// transaction, and ends every session of theirs. Returns the new session generation, or
/// `None` when the waiting key changed meanwhile (nothing was written).
pub(crate) async fn enrol(
    db: &Db,
    admin_id: i64,
    e: &Enrolment<'_>,
) -> anyhow::Result<Option<i64>> {
    let mut tx = db.begin_write().await?;
    let updated = match e.replaces_pending {
        Some(pending) => sqlx::query(
            "UPDATE admins SET totp_secret = $1, totp_pending = NULL, totp_last_step = $2 WHERE id = $3 AND totp_pending = $4",
        )
        .bind(e.sealed_secret.to_vec())
        .bind(e.last_step)
        .bind(admin_id)
        .bind(pending.to_vec())
        .execute(&mut *tx)
        .await?,
        None => sqlx::query(
            "UPDATE admins SET totp_secret = $1, totp_pending = NULL, totp_last_step = $2 WHERE id = $3",
        )
        .bind(e.sealed_secret.to_vec())
        .bind(e.last_step)
        .bind(admin_id)
        .execute(&mut *tx)
        .await?,
    };
    if updated.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query("DELETE FROM admin_recovery_codes WHERE admin_id = $1")
        .bind(admin_id)
        .execute(&mut *tx)
        .await?;
    for hash in e.recovery_hashes {
        sqlx::query(
            "INSERT INTO admin_recovery_codes (admin_id, code_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(admin_id)
        .bind(hash)
        .bind(e.now)
        .execute(&mut *tx)
        .await?;
    }
    let generation = end_sessions_in(&mut tx, admin_id).await?;
    tx.commit().await?;
    Ok(Some(generation))
}

/// Writes a resealed key in place of the bytes read (a change made meanwhile wins).
pub(crate) async fn replace_sealed_totp(
    db: &Db,
    admin_id: i64,
    pending: bool,
    old: &[u8],
    new: &[u8],
) -> anyhow::Result<bool> {
    let sql = if pending {
        "UPDATE admins SET totp_pending = $1 WHERE id = $2 AND totp_pending = $3"
    } else {
        "UPDATE admins SET totp_secret = $1 WHERE id = $2 AND totp_secret = $3"
    };
    let done = sqlx::query(sql)
        .bind(new.to_vec())
        .bind(admin_id)
        .bind(old.to_vec())
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Uses up a recovery code: true only the first time for a given code.
pub(crate) async fn use_recovery_code(
    db: &Db,
    admin_id: i64,
    code_hash: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE admin_recovery_codes SET used_at = $1 WHERE admin_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(admin_id)
    .bind(code_hash)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn recovery_codes_left(db: &Db, admin_id: i64) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM admin_recovery_codes WHERE admin_id = $1 AND used_at IS NULL",
    )
    .bind(admin_id)
    .fetch_one(db.pool())
    .await?;
    Ok(n)
}

/// A session with its admin.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub admin_id: i64,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub totp: bool,
    pub csrf_token: String,
    pub stage: SessionStage,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub generation: i64,
    /// Whether the session began in the admin's current generation (no password or second
    /// factor change since).
    pub current: bool,
}

#[derive(FromRow)]
struct RawSession {
    admin_id: i64,
    username: String,
    email: String,
    role: String,
    totp_secret: Option<Vec<u8>>,
    csrf_token: String,
    stage: String,
    created_at: i64,
    last_seen_at: i64,
    generation: i64,
    session_generation: i64,
}

/// A session to store.
pub(crate) struct NewSession<'a> {
    pub id_hash: &'a str,
    pub admin_id: i64,
    pub csrf: &'a str,
    pub stage: SessionStage,
    /// The admin's generation when their credentials were checked.
    pub generation: i64,
    pub now: i64,
}

/// Stores a new session, and in the same transaction deletes every session created before
/// `expired_before` (the caller's policy says when that is).
pub(crate) async fn create_session(
    db: &Db,
    s: &NewSession<'_>,
    expired_before: i64,
) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM admin_sessions WHERE created_at < $1")
        .bind(expired_before)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, stage, generation, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
        .bind(s.id_hash)
        .bind(s.admin_id)
        .bind(s.csrf)
        .bind(s.stage.as_str())
        .bind(s.generation)
        .bind(s.now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn session(db: &Db, id_hash: &str) -> anyhow::Result<Option<SessionRow>> {
    let raw: Option<RawSession> = sqlx::query_as(
        "SELECT s.admin_id, a.username, a.email, a.role, a.totp_secret, s.csrf_token, s.stage, \
         s.created_at, s.last_seen_at, s.generation, a.session_generation \
         FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(db.pool())
    .await?;
    raw.map(|r| {
        Ok(SessionRow {
            role: stored_role(&r.role)?,
            stage: SessionStage::parse(&r.stage)?,
            totp: r.totp_secret.is_some(),
            current: r.generation == r.session_generation,
            generation: r.generation,
            admin_id: r.admin_id,
            username: r.username,
            email: r.email,
            csrf_token: r.csrf_token,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
        })
    })
    .transpose()
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

#[derive(Debug, Clone)]
pub(crate) struct TokenAdmin {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub totp: bool,
    pub last_used_at: Option<i64>,
}

#[derive(FromRow)]
struct RawTokenAdmin {
    id: i64,
    username: String,
    email: String,
    role: String,
    totp_secret: Option<Vec<u8>>,
    last_used_at: Option<i64>,
}

pub(crate) async fn by_token(db: &Db, token_hash: &str) -> anyhow::Result<Option<TokenAdmin>> {
    let raw: Option<RawTokenAdmin> = sqlx::query_as(
        "SELECT a.id, a.username, a.email, a.role, a.totp_secret, t.last_used_at FROM api_tokens t JOIN admins a ON a.id = t.admin_id WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    raw.map(|r| {
        Ok(TokenAdmin {
            role: stored_role(&r.role)?,
            totp: r.totp_secret.is_some(),
            id: r.id,
            username: r.username,
            email: r.email,
            last_used_at: r.last_used_at,
        })
    })
    .transpose()
}

pub(crate) async fn touch_token(db: &Db, token_hash: &str, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(token_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}
