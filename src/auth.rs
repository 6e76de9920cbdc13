//! Admin authentication: Argon2id password hashes, server-side sessions with a per-session
//! CSRF token, a TOTP second factor with recovery codes (`totp`, `second_factor`), bearer
//! tokens for the JSON API, and limiters that slow down repeated failed sign-ins.
//!
//! Session ids and API tokens are random 256-bit values shown once to their holder; the
//! database keeps only their SHA-256, so a copy of it signs nobody in. Each session belongs
//! to a generation of its admin; a new password or second factor starts the next one, and
//! with it every earlier session ends.

pub mod second_factor;
pub(crate) mod totp;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::db::{self, Db};
use crate::domain::{InvalidInput, Role, SessionStage};

/// How long a session lives without a request.
pub const IDLE_SECONDS: i64 = 2 * 3600;
/// How long a session lives at most, however busy.
pub const ABSOLUTE_SECONDS: i64 = 12 * 3600;
/// How long the step between a right password and the second factor's code may take.
pub const CODE_SECONDS: i64 = 5 * 60;
/// The session cookie's name; it is scoped to `/admin`.
pub const COOKIE: &str = "drip_admin";
pub(crate) const MIN_PASSWORD_CHARS: usize = 12;

/// Argon2id with OWASP's minimum: 19 MiB of memory, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for `password`.
pub(crate) fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches a stored PHC string. The parameters come from the string,
/// so hashes made with stronger settings later still verify.
pub(crate) fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// A hash that matches no password, verified when the user name is unknown so that the
/// answer takes as long as for a known one.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("drip decoy password, never valid").unwrap_or_default())
}

pub(crate) fn check_new_password(password: &str) -> Result<(), InvalidInput> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(InvalidInput::new(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn check_username(user: &str) -> Result<(), InvalidInput> {
    let ok = !user.is_empty()
        && user.len() <= 64
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(InvalidInput::new(
            "user",
            "must be 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

/// 32 random bytes, URL-safe base64 without padding.
pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A signed-in admin, as a request sees them.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Admin {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// The session's CSRF token (empty for API requests, which carry no cookies).
    pub csrf: String,
    /// SHA-256 of the session id, to sign out.
    #[serde(skip)]
    pub session_hash: String,
    pub role: Role,
    /// Whether a second factor is enrolled.
    pub totp: bool,
    /// For a session: whether the second factor's code is still to come.
    #[serde(skip)]
    pub stage: SessionStage,
    /// For a session: the admin's generation it belongs to.
    #[serde(skip)]
    pub generation: i64,
}

/// Creates an owner; the user name must be new.
pub async fn add_admin(
    db: &Db,
    user: &str,
    email: &str,
    password: &str,
    now: i64,
) -> anyhow::Result<i64> {
    add_admin_with_role(db, user, email, password, Role::Owner, now).await
}

/// Creates an admin with `role`; the user name must be new.
pub async fn add_admin_with_role(
    db: &Db,
    user: &str,
    email: &str,
    password: &str,
    role: Role,
    now: i64,
) -> anyhow::Result<i64> {
    check_username(user)?;
    check_new_password(password)?;
    let email = email.trim();
    if !email.is_empty() {
        crate::domain::EmailAddress::parse(email)?;
    }
    if db::admins::by_username(db, user).await?.is_some() {
        anyhow::bail!("user: an admin named {user:?} already exists");
    }
    let hash = hash_password(password)?;
    db::admins::insert(db, user, email, &hash, role, now).await
}

/// The admin named `user`, or an error that says how to make one.
pub(crate) async fn existing_admin(db: &Db, user: &str) -> anyhow::Result<db::admins::AdminRow> {
    db::admins::by_username(db, user).await?.with_context(|| {
        format!("user: no admin named {user:?} (create one with `drip admin add`)")
    })
}

/// Replaces an admin's password; every session of theirs ends (API tokens stay: they are
/// a separate credential, revoked on their own).
pub async fn set_password(db: &Db, user: &str, password: &str) -> anyhow::Result<()> {
    check_new_password(password)?;
    let admin = existing_admin(db, user).await?;
    let hash = hash_password(password)?;
    db::admins::set_password(db, admin.id, &hash).await
}

/// Checks a user name and password; `None` for either wrong.
pub(crate) async fn check_credentials(
    db: &Db,
    user: &str,
    password: &str,
) -> anyhow::Result<Option<db::admins::AdminRow>> {
    let row = db::admins::by_username(db, user.trim()).await?;
    let stored = row
        .as_ref()
        .map(|r| r.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_owned());
    let password = password.to_owned();
    // Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&stored, &password))
        .await
        .context("password check")?;
    Ok(row.filter(|_| ok))
}

/// Starts a session at `stage` for an admin whose credentials were checked in
/// `generation`; returns the cookie value (the only copy of the session id).
pub(crate) async fn start_session(
    db: &Db,
    admin_id: i64,
    generation: i64,
    stage: SessionStage,
    now: i64,
) -> anyhow::Result<String> {
    let id = random_token();
    // Sessions past their absolute lifetime are gone for good: sweep them while here.
    let expired_before = now - ABSOLUTE_SECONDS;
    let (id_hash, csrf) = (sha256_hex(&id), random_token());
    let session = db::admins::NewSession {
        id_hash: &id_hash,
        admin_id,
        csrf: &csrf,
        stage,
        generation,
        now,
    };
    db::admins::create_session(db, &session, expired_before).await?;
    Ok(id)
}

/// The admin a session cookie belongs to, if the session is within its expiries and began
/// in the admin's current generation (`stage` says whether the code is still to come). An
/// expired or outdated session is deleted; a live one has its idle clock restarted (at most
/// once a minute, so browsing does not write on every request).
pub(crate) async fn session_admin(
    db: &Db,
    cookie: &str,
    now: i64,
) -> anyhow::Result<Option<Admin>> {
    let hash = sha256_hex(cookie);
    let Some(s) = db::admins::session(db, &hash).await? else {
        return Ok(None);
    };
    let lifetime = match s.stage {
        SessionStage::Full => ABSOLUTE_SECONDS,
        SessionStage::Code => CODE_SECONDS,
    };
    if !s.current || now - s.created_at > lifetime || now - s.last_seen_at > IDLE_SECONDS {
        db::admins::delete_session(db, &hash).await?;
        return Ok(None);
    }
    if now - s.last_seen_at >= 60 {
        db::admins::touch_session(db, &hash, now).await?;
    }
    Ok(Some(Admin {
        id: s.admin_id,
        username: s.username,
        email: s.email,
        csrf: s.csrf_token,
        session_hash: hash,
        role: s.role,
        totp: s.totp,
        stage: s.stage,
        generation: s.generation,
    }))
}

/// Creates an API token for an admin; returns it (shown once).
pub async fn new_api_token(db: &Db, user: &str, now: i64) -> anyhow::Result<String> {
    let admin = existing_admin(db, user).await?;
    let token = format!("drip_{}", random_token());
    db::admins::insert_token(db, admin.id, &sha256_hex(&token), now).await?;
    Ok(token)
}

pub(crate) async fn token_admin(db: &Db, token: &str, now: i64) -> anyhow::Result<Option<Admin>> {
    let hash = sha256_hex(token.trim());
    let Some(a) = db::admins::by_token(db, &hash).await? else {
        return Ok(None);
    };
    if a.last_used_at.is_none_or(|t| now - t >= 60) {
        db::admins::touch_token(db, &hash, now).await?;
    }
    Ok(Some(Admin {
        id: a.id,
        username: a.username,
        email: a.email,
        csrf: String::new(),
        session_hash: String::new(),
        role: a.role,
        totp: a.totp,
        stage: SessionStage::Full,
        generation: 0,
    }))
}

/// Failed sign-ins (wrong passwords, wrong codes) per key. In memory: a restart forgets
/// them, which costs an attacker a restart they cannot cause.
pub(crate) struct FailureLimiter<K> {
    failures: Mutex<HashMap<K, Vec<i64>>>,
}

/// Per client address, as `web::client` works it out (behind a trusted proxy, the address
/// the proxy saw; an IPv6 client by its /64).
pub(crate) type SignInLimiter = FailureLimiter<IpAddr>;

/// After this many failures within the window, sign-ins from the address are refused…
pub const MAX_FAILURES: usize = 5;
/// …until the oldest of them is this old.
pub(crate) const WINDOW_SECONDS: i64 = 15 * 60;

impl SignInLimiter {
    /// Failures from each address, of either step.
    pub(crate) fn global() -> &'static SignInLimiter {
        static LIMITER: OnceLock<SignInLimiter> = OnceLock::new();
        LIMITER.get_or_init(FailureLimiter::new)
    }
}

impl FailureLimiter<i64> {
    /// Wrong second-factor codes per admin id, from any address: someone who has the
    /// password gets five guesses at a code per window, however many addresses they use.
    pub(crate) fn codes() -> &'static FailureLimiter<i64> {
        static LIMITER: OnceLock<FailureLimiter<i64>> = OnceLock::new();
        LIMITER.get_or_init(FailureLimiter::new)
    }
}

impl<K: std::hash::Hash + Eq + Copy> FailureLimiter<K> {
    pub(crate) fn new() -> Self {
        FailureLimiter {
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` while the key is over the limit.
    pub fn check(&self, ip: K, now: i64) -> Result<(), i64> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = map.get_mut(&ip) else {
            return Ok(());
        };
        times.retain(|t| now - t < WINDOW_SECONDS);
        if times.len() >= MAX_FAILURES {
            let oldest = times.iter().min().copied().unwrap_or(now);
            return Err((oldest + WINDOW_SECONDS - now).max(1));
        }
        Ok(())
    }

    pub(crate) fn record_failure(&self, ip: K, now: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Bound the memory an attacker with many addresses can make us use.
        if map.len() > 100_000 {
            map.retain(|_, times| times.iter().any(|t| now - t < WINDOW_SECONDS));
        }
        map.entry(ip).or_default().push(now);
    }

    pub fn clear(&self, ip: K) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn short_passwords_and_odd_user_names_are_refused() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("twelve chars").is_ok());
        assert!(check_username("ann").is_ok());
        assert!(check_username("ann smith").is_err());
        assert!(check_username("").is_err());
    }

    #[test]
    fn the_limiter_refuses_after_five_failures_then_forgets() {
        let l = SignInLimiter::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..5 {
            assert!(l.check(ip, 1000 + i).is_ok());
            l.record_failure(ip, 1000 + i);
        }
        let wait = l.check(ip, 1010).unwrap_err();
        assert_eq!(wait, 1000 + WINDOW_SECONDS - 1010);
        assert!(l.check("192.0.2.2".parse().unwrap(), 1010).is_ok());
        assert!(l.check(ip, 1000 + WINDOW_SECONDS + 5).is_ok());
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", ""));
    }
}
