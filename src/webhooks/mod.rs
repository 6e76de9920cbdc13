//! Webhooks: signed HTTP POSTs of drip's events to the endpoints that asked for them.
//!
//! - [`events`]: one function per event type, called in the transaction of the change that
//!   causes the event; it builds the payload and queues a delivery per endpoint that wants
//!   that type (when none does, nothing is written).
//! - [`sender`]: the worker's pass, in a task of its own beside the mail: claim with a
//!   lease, post with a timeout, record; retry with backoff for `[webhooks] retry_hours`,
//!   then failed.
//! - `http`: the one POST, its `Drip-Signature` and its TLS.
//! - Here: adding, listing and removing endpoints, for the CLI and the admin page alike.

pub mod events;
mod http;
pub mod sender;

pub use http::signature;
pub use sender::{SendReport, send_due, send_loop};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::App;
use crate::db;
use crate::domain::{EventType, InvalidInput, WebhookStatus, WebhookUrl};

/// An endpoint just added: the only time its secret is shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Added {
    pub id: i64,
    pub url: String,
    pub events: Vec<EventType>,
    pub secret: String,
}

/// Why [`add`] refused.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// An endpoint with its deliveries' figures and latest attempts (its secret never).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    pub events: Vec<EventType>,
    pub created_at: i64,
    pub created_by: String,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    pub recent: Vec<db::webhooks::AttemptRow>,
}

/// A new secret: 32 random bytes as hex, after a prefix that says what it is (and that
/// secret scanners know). Receivers use the whole string as the HMAC key.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", hex(&bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds an endpoint for `events` (comma-separated names). The URL must be http or https
/// and each event one of [`EventType::ALL`]; either refusal names its field and stores
/// nothing. The secret is sealed at rest with the data key.
pub async fn add(
    app: &App,
    url: &str,
    events: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Added, AddError> {
    let url = WebhookUrl::parse(url)?;
    let events = EventType::parse_list(events)?;
    let secret = new_secret();
    let sealed = app.vault.seal(secret.as_bytes());
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let id = db::webhooks::insert_endpoint(&mut tx, url.as_str(), &sealed, &events, actor, now_s)
        .await?;
    db::events::log(
        &mut tx,
        None,
        actor,
        "webhook_added",
        &json!({"webhook": id, "url": url.as_str(), "events": events}),
        now_s,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(Added {
        id,
        url: url.as_str().to_owned(),
        events,
        secret,
    })
}

/// Every endpoint with its figures and its `recent` latest deliveries.
pub async fn list(app: &App, recent: i64) -> anyhow::Result<Vec<Endpoint>> {
    let mut out = Vec::new();
    for e in db::webhooks::endpoints(&app.db).await? {
        let counts = db::webhooks::counts(&app.db, e.id).await?;
        let count = |s: WebhookStatus| counts.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
        out.push(Endpoint {
            id: e.id,
            url: e.url,
            events: e.events,
            created_at: e.created_at,
            created_by: e.created_by,
            pending: count(WebhookStatus::Pending),
            delivered: count(WebhookStatus::Delivered),
            failed: count(WebhookStatus::Failed),
            recent: if recent > 0 {
                db::webhooks::recent(&app.db, e.id, recent).await?
            } else {
                Vec::new()
            },
        });
    }
    Ok(out)
}

/// Removes an endpoint: nothing more is posted to it, and its deliveries (with the events no
/// other endpoint was to get) are deleted. False if there was none with that id.
pub async fn remove(app: &App, id: i64, actor: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let done = db::webhooks::remove_endpoint(&mut tx, id).await?;
    if done {
        db::events::log(
            &mut tx,
            None,
            actor,
            "webhook_removed",
            &json!({"webhook": id}),
            now_s,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// What `drip keys reseal` did to the endpoints' secrets.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ResealedSecrets {
    pub checked: u64,
    pub resealed: u64,
    /// Endpoints whose secret no configured data key opens, left untouched.
    pub unreadable: Vec<i64>,
}

/// Seals every endpoint's secret again under the current data key.
pub async fn reseal(db: &db::Db, vault: &crate::crypto::Vault) -> anyhow::Result<ResealedSecrets> {
    let mut report = ResealedSecrets::default();
    for (id, sealed) in db::webhooks::sealed_secrets(db).await? {
        report.checked += 1;
        match vault.open_with_key(&sealed) {
            Ok((_, true)) => {}
            Ok((plain, false)) => {
                if db::webhooks::replace_secret(db, id, &sealed, &vault.seal(&plain)).await? {
                    report.resealed += 1;
                }
            }
            Err(_) => report.unreadable.push(id),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_prefixed_hex_and_never_the_same() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a.len() == 6 + 64, "{a}");
        assert!(a[6..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
