//! Mailing a subscriber a fresh link to their journal, on request (see `web::journal`).

use serde_json::json;

use crate::app::App;
use crate::db;
use crate::domain::DeliveryKind;

/// How long a mailed journal link works.
pub const JOURNAL_ACCESS_HOURS: i64 = 24;
/// At most one journal link mail per subscriber in this many minutes (a page anyone with a
/// forwarded lesson can reach must not become a way to flood the subscriber's inbox).
pub const JOURNAL_RESEND_MINUTES: i64 = 10;

/// The payload of a notice that carries a journal link. The link itself is signed when the
/// mail is rendered, so the database never holds a working one.
pub const JOURNAL_LINK_PAYLOAD: &str = "journal_link";

/// Queues the journal link mail unless one was queued at or after `since`. True if queued.
pub async fn request_journal_link(
    app: &App,
    subscriber_id: i64,
    since: i64,
    now: i64,
) -> anyhow::Result<bool> {
    let payload = json!({ JOURNAL_LINK_PAYLOAD: true });
    let mut tx = app.db.begin_write().await?;
    if db::deliveries::mail_queued_since(
        &mut tx,
        subscriber_id,
        DeliveryKind::Notice,
        &payload,
        since,
    )
    .await?
    {
        tx.commit().await?;
        return Ok(false);
    }
    db::deliveries::enqueue_mail(
        &mut tx,
        subscriber_id,
        None,
        DeliveryKind::Notice,
        &payload,
        now,
    )
    .await?;
    db::events::log(
        &mut tx,
        Some(subscriber_id),
        "subscriber",
        "journal_link_requested",
        &json!({}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
