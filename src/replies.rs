//! Replies as data, once stored: reading them. Every read by an admin, in the UI or through
//! the API, goes through here, so none can skip the view log (who read which reply, and
//! where), and the text is opened with the vault in one place.
//!
//! Storing a reply (and acting on its command in the same transaction) is the inbound
//! pipeline's last step, `inbound::store_and_act`.

use chrono::{DateTime, Utc};

use crate::answers::{Conversation, conversations};
use crate::app::App;
use crate::db::{
    self,
    admin_lists::{InboxKey, InboxQuery, InboxReply},
};

/// A reply as an admin reads it: the row, and its text opened.
pub(crate) struct Read {
    pub row: InboxReply,
    pub text: String,
}

/// The replies matching `q`, opened, each logged as viewed by `admin` from `place`
/// ("inbox", "api").
pub(crate) async fn read(
    app: &App,
    q: &InboxQuery,
    admin: &str,
    place: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Read>> {
    let rows = db::admin_lists::inbox(&app.db, q).await?;
    let viewed: Vec<(i64, Option<i64>)> = rows.iter().map(|r| (r.id, r.subscriber_id)).collect();
    db::admin_lists::log_views(&app.db, admin, &viewed, place, now.timestamp()).await?;
    Ok(rows
        .into_iter()
        .map(|row| Read {
            text: String::from_utf8_lossy(&app.open_reply_text(&row.text)).into_owned(),
            row,
        })
        .collect())
}

/// The raw message of reply `id`, opened and logged as viewed; None when there is none
/// (never stored, or deleted by retention).
pub(crate) async fn read_raw(
    app: &App,
    id: i64,
    admin: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    let Some((subscriber, Some(sealed))) = db::admin_lists::raw(&app.db, id).await? else {
        return Ok(None);
    };
    db::admin_lists::log_views(&app.db, admin, &[(id, subscriber)], "raw", now.timestamp()).await?;
    Ok(Some(
        String::from_utf8_lossy(&app.open_reply_text(&sealed)).into_owned(),
    ))
}

/// A reply's conversation as an admin reads it: the reader, and every turn opened (each of
/// the reader's turns logged as viewed by `admin`). None when there is no such reply, or it
/// was never matched to a reader (it has no conversation beyond itself).
pub(crate) async fn read_conversation(
    app: &App,
    reply_id: i64,
    admin: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<(db::subscribers::SubscriberRow, Conversation)>> {
    let Some((Some(subscriber_id), _)) = db::admin_lists::raw(&app.db, reply_id).await? else {
        return Ok(None);
    };
    let Some(subscriber) = db::subscribers::by_id(&app.db, subscriber_id).await? else {
        return Ok(None);
    };
    let replies = db::replies::for_subscriber(&app.db, subscriber_id).await?;
    let answers = db::answers::for_subscriber(&app.db, subscriber_id).await?;
    let Some(conversation) = conversations(&replies, &answers, |sealed| {
        String::from_utf8_lossy(&app.open_reply_text(sealed)).into_owned()
    })
    .into_iter()
    .find(|c| c.turns.iter().any(|t| t.by == "reader" && t.id == reply_id)) else {
        return Ok(None);
    };
    let viewed: Vec<(i64, Option<i64>)> = conversation
        .turns
        .iter()
        .filter(|t| t.by == "reader")
        .map(|t| (t.id, Some(subscriber_id)))
        .collect();
    db::admin_lists::log_views(&app.db, admin, &viewed, "conversation", now.timestamp()).await?;
    Ok(Some((subscriber, conversation)))
}

/// Where the next page starts after `last`.
pub(crate) fn next_key(last: &InboxReply) -> InboxKey {
    InboxKey {
        flagged: last.flagged,
        received_at: last.received_at,
        id: last.id,
    }
}
