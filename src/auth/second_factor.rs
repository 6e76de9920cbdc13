//! An admin's second factor as stored: enrolling a TOTP key (from the CLI at once, or from
//! the admin UI once a code from the new key confirms it), checking a code or a recovery
//! code at sign-in, and resealing keys after a data-key rotation. Keys are sealed with the
//! app's [`Vault`] like reply texts; recovery codes are kept as hashes and work once.
//!
//! Enrolling, from either door, replaces the key and the recovery codes in one transaction
//! and ends every session of the admin.

use super::totp;
use crate::crypto::Vault;
use crate::db::{self, Db};

/// A key just enrolled, shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enrolled {
    pub user: String,
    /// `otpauth://totp/…`, for an authenticator app (or its QR code).
    pub uri: String,
    /// The key in base32, for apps that cannot scan.
    pub secret: String,
    pub recovery_codes: Vec<String>,
    /// The admin's session generation after the change (the caller's own new session
    /// belongs to it).
    #[serde(skip)]
    pub generation: i64,
}

fn open_key(vault: &Vault, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    vault.open(sealed).map_err(|_| {
        anyhow::anyhow!(
            "an admin's TOTP key cannot be decrypted: wrong data_key, or a previous key missing from security.previous_data_keys"
        )
    })
}

fn hashes(codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|c| totp::recovery_hash(c))
        .collect()
}

/// `drip admin totp USER`: a new key and new recovery codes, active at once (whoever runs
/// the CLI is trusted with the server), replacing any earlier ones.
pub async fn enrol_now(
    db: &Db,
    vault: &Vault,
    user: &str,
    base_url: &str,
    now: i64,
) -> anyhow::Result<Enrolled> {
    let admin = super::existing_admin(db, user).await?;
    let key = totp::new_key();
    let label = totp::account_label(&admin.username, base_url);
    let uri = totp::otpauth_uri(&key, &label)?;
    let codes = totp::new_recovery_codes();
    let sealed = vault.seal(&key);
    let generation = db::admins::enrol(
        db,
        admin.id,
        &db::admins::Enrolment {
            sealed_secret: &sealed,
            last_step: None,
            replaces_pending: None,
            recovery_hashes: &hashes(&codes),
            now,
        },
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("user: {user:?} was deleted meanwhile"))?;
    tracing::info!(user = %admin.username, "TOTP second factor enrolled from the CLI; sessions ended");
    Ok(Enrolled {
        user: admin.username,
        uri,
        secret: totp::base32(&key),
        recovery_codes: codes,
        generation,
    })
}

/// A key offered on the enrolment page, waiting for a code from it.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub uri: String,
    pub secret: String,
}

/// The key waiting to be confirmed, made now if there is none.
pub(crate) async fn offer(
    db: &Db,
    vault: &Vault,
    admin_id: i64,
    username: &str,
    base_url: &str,
) -> anyhow::Result<Offer> {
    let mut row = db::admins::totp(db, admin_id).await?;
    if row.as_ref().is_some_and(|r| r.totp_pending.is_none()) {
        db::admins::offer_pending(db, admin_id, &vault.seal(&totp::new_key())).await?;
        row = db::admins::totp(db, admin_id).await?;
    }
    let sealed = row
        .and_then(|r| r.totp_pending)
        .ok_or_else(|| anyhow::anyhow!("admin {admin_id} has no key on offer"))?;
    let key = open_key(vault, &sealed)?;
    Ok(Offer {
        uri: totp::otpauth_uri(&key, &totp::account_label(username, base_url))?,
        secret: totp::base32(&key),
    })
}

/// What confirming the offered key came to.
pub(crate) enum Confirmation {
    Enrolled(Enrolled),
    /// The code is not one of the offered key's (or no key is on offer).
    WrongCode,
}

/// Enrols the key on offer if `code` is one of its codes now.
pub(crate) async fn confirm(
    db: &Db,
    vault: &Vault,
    admin_id: i64,
    username: &str,
    base_url: &str,
    code: &str,
    now: i64,
) -> anyhow::Result<Confirmation> {
    let Some(sealed) = db::admins::totp(db, admin_id)
        .await?
        .and_then(|r| r.totp_pending)
    else {
        return Ok(Confirmation::WrongCode);
    };
    let key = open_key(vault, &sealed)?;
    let Some(step) = totp::matching_step(&key, code, now) else {
        return Ok(Confirmation::WrongCode);
    };
    let codes = totp::new_recovery_codes();
    // Sealed afresh: the stored bytes then never repeat between the offer and the key.
    let active = vault.seal(&key);
    let enrolment = db::admins::Enrolment {
        sealed_secret: &active,
        last_step: Some(step),
        replaces_pending: Some(&sealed),
        recovery_hashes: &hashes(&codes),
        now,
    };
    let Some(generation) = db::admins::enrol(db, admin_id, &enrolment).await? else {
        return Ok(Confirmation::WrongCode);
    };
    tracing::info!(user = %username, "TOTP second factor enrolled from the admin UI; other sessions ended");
    Ok(Confirmation::Enrolled(Enrolled {
        user: username.to_owned(),
        uri: totp::otpauth_uri(&key, &totp::account_label(username, base_url))?,
        secret: totp::base32(&key),
        recovery_codes: codes,
        generation,
    }))
}

/// How a second-factor code fared at sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// A current code, not used before.
    Code,
    /// A recovery code, now used up; this many remain.
    Recovery { left: i64 },
    /// Wrong, used before, or not a code at all.
    Refused,
}

/// Checks a TOTP code or a recovery code of the admin's. Either works once.
pub(crate) async fn check(
    db: &Db,
    vault: &Vault,
    admin_id: i64,
    typed: &str,
    now: i64,
) -> anyhow::Result<Checked> {
    if totp::looks_like_code(typed) {
        let Some(sealed) = db::admins::totp(db, admin_id)
            .await?
            .and_then(|r| r.totp_secret)
        else {
            return Ok(Checked::Refused);
        };
        let key = open_key(vault, &sealed)?;
        return Ok(match totp::matching_step(&key, typed, now) {
            Some(step) if db::admins::accept_step(db, admin_id, step).await? => Checked::Code,
            _ => Checked::Refused,
        });
    }
    let Some(hash) = totp::recovery_hash(typed) else {
        return Ok(Checked::Refused);
    };
    if db::admins::use_recovery_code(db, admin_id, &hash, now).await? {
        let left = db::admins::recovery_codes_left(db, admin_id).await?;
        tracing::warn!(
            admin = admin_id,
            left,
            "a recovery code was used to sign in"
        );
        Ok(Checked::Recovery { left })
    } else {
        Ok(Checked::Refused)
    }
}

/// How many recovery codes the admin has left.
pub(crate) async fn recovery_codes_left(db: &Db, admin_id: i64) -> anyhow::Result<i64> {
    db::admins::recovery_codes_left(db, admin_id).await
}

/// What resealing the admins' keys did (`drip keys reseal`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResealedKeys {
    pub checked: u64,
    pub resealed: u64,
    /// Admin ids whose key no configured data key opens, left untouched.
    pub unreadable: Vec<i64>,
}

/// Seals every admin's TOTP key (and any key on offer) again under the current data key.
pub async fn reseal(db: &Db, vault: &Vault) -> anyhow::Result<ResealedKeys> {
    let mut report = ResealedKeys::default();
    for row in db::admins::all_totp(db).await? {
        let stored = [(false, &row.totp_secret), (true, &row.totp_pending)];
        for (pending, sealed) in stored {
            let Some(sealed) = sealed else { continue };
            report.checked += 1;
            match vault.open_with_key(sealed) {
                Ok((_, true)) => {}
                Ok((plain, false)) => {
                    let new = vault.seal(&plain);
                    if db::admins::replace_sealed_totp(db, row.id, pending, sealed, &new).await? {
                        report.resealed += 1;
                    }
                }
                Err(_) => report.unreadable.push(row.id),
            }
        }
    }
    Ok(report)
}
