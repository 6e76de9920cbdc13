//! The events, one function per type, each called in the transaction of the change that
//! causes it: the event is committed with its change or not at all. Each builds its payload
//! from ids, the address, and course and lesson slugs (never anything a person wrote: no
//! reply text, no subject) and queues one delivery per endpoint that wants the type.
//!
//! When no endpoint wants a type, nothing is written, not even the event: the outbox holds
//! what is to be posted, and the change itself is already in the event log (`events`). An
//! endpoint added later hears of what happens from then on, as with every webhook service.
//! It also keeps the cost of an instance without webhooks to one indexed lookup per change
//! (per batch, for the sender and the planner).
//!
//! Every body is `{"id", "type", "created_at", "data"}`, stored as the exact bytes posted.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::db::{self, Tx};
use crate::domain::EventType;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rfc3339_s(t: Option<i64>) -> Value {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
        .map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// A new event id: 128 random bits, as hex.
fn new_event_id() -> String {
    super::hex(&rand::random::<[u8; 16]>())
}

/// The body receivers get, every attempt the same.
fn body(id: &str, kind: EventType, now: DateTime<Utc>, data: Value) -> String {
    json!({"id": id, "type": kind, "created_at": rfc3339(now), "data": data}).to_string()
}

/// Stores one event (whose type someone wants) with its deliveries.
async fn enqueue(
    tx: &mut Tx,
    kind: EventType,
    subscriber_id: Option<i64>,
    data: Value,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let id = new_event_id();
    let payload = body(&id, kind, now, data);
    db::webhooks::insert_event(tx, &id, kind, subscriber_id, &payload, now.timestamp()).await?;
    Ok(())
}

/// The person's address, or null once they are gone.
async fn email_of(tx: &mut Tx, subscriber_id: i64) -> anyhow::Result<Value> {
    Ok(db::subscribers::by_id_in(tx, subscriber_id)
        .await?
        .map_or(Value::Null, |s| Value::String(s.email)))
}

/// `subscriber.confirmed`: a person's consent for a course was recorded, by the link of
/// its confirmation mail or by a caller who holds it (`--confirmed`, `confirmed: true`).
pub(crate) async fn subscriber_confirmed(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let kind = EventType::SubscriberConfirmed;
    if !db::webhooks::wanted(tx, kind).await? {
        return Ok(());
    }
    let email = email_of(tx, subscriber_id).await?;
    let course = db::courses::by_id_in(tx, course_id).await?.slug;
    let data = json!({"subscriber_id": subscriber_id, "email": email, "course": course});
    enqueue(tx, kind, Some(subscriber_id), data, now).await
}

/// `enrollment.started`: a person's enrollment in a course began, or began again
/// (`"again": true`) after they had left it.
pub(crate) async fn enrollment_started(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: i64,
    again: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let kind = EventType::EnrollmentStarted;
    if !db::webhooks::wanted(tx, kind).await? {
        return Ok(());
    }
    for e in db::webhooks::enrollments_in_course(tx, course_id, &[subscriber_id]).await? {
        enqueue(tx, kind, Some(e.subscriber_id), started(&e, again), now).await?;
    }
    Ok(())
}

fn started(e: &db::webhooks::EnrollmentFacts, again: bool) -> Value {
    json!({
        "enrollment_id": e.enrollment_id, "subscriber_id": e.subscriber_id, "email": e.email,
        "course": e.course, "next_lesson_due_at": rfc3339_s(e.next_due_at), "again": again,
    })
}

/// A CSV import with `--confirmed` enrols people in bulk: `subscriber.confirmed` and
/// `enrollment.started` for each of them, as one confirmation would.
pub(crate) async fn imported_confirmed(
    tx: &mut Tx,
    subscriber_ids: &[i64],
    course_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let confirmed = db::webhooks::wanted(tx, EventType::SubscriberConfirmed).await?;
    let started_wanted = db::webhooks::wanted(tx, EventType::EnrollmentStarted).await?;
    if subscriber_ids.is_empty() || !(confirmed || started_wanted) {
        return Ok(());
    }
    for e in db::webhooks::enrollments_in_course(tx, course_id, subscriber_ids).await? {
        if confirmed {
            let data =
                json!({"subscriber_id": e.subscriber_id, "email": e.email, "course": e.course});
            enqueue(
                tx,
                EventType::SubscriberConfirmed,
                Some(e.subscriber_id),
                data,
                now,
            )
            .await?;
        }
        if started_wanted {
            let data = started(&e, false);
            enqueue(
                tx,
                EventType::EnrollmentStarted,
                Some(e.subscriber_id),
                data,
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// `lesson.sent`: the lesson mails among `delivery_ids` that were just recorded sent (the
/// server took them). Other kinds of mail among them are left out.
pub(crate) async fn lessons_sent(
    tx: &mut Tx,
    delivery_ids: impl IntoIterator<Item = i64>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let kind = EventType::LessonSent;
    if !db::webhooks::wanted(tx, kind).await? {
        return Ok(());
    }
    let ids: Vec<i64> = delivery_ids.into_iter().collect();
    for l in db::webhooks::lessons_sent(tx, &ids).await? {
        let data = json!({
            "delivery_id": l.delivery_id, "enrollment_id": l.enrollment_id,
            "subscriber_id": l.subscriber_id, "email": l.email, "course": l.course,
            "lesson": l.lesson, "revision": l.revision, "sent_at": rfc3339_s(l.sent_at),
        });
        enqueue(tx, kind, Some(l.subscriber_id), data, now).await?;
    }
    Ok(())
}

/// `reply.received`: a reply (not an auto-reply or a bounce) was stored. Which lesson it
/// answers and who sent it, with how it was matched; never its text or subject.
pub(crate) async fn reply_received(
    tx: &mut Tx,
    reply_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let kind = EventType::ReplyReceived;
    if !db::webhooks::wanted(tx, kind).await? {
        return Ok(());
    }
    let Some(r) = db::webhooks::reply(tx, reply_id).await? else {
        return Ok(());
    };
    let data = json!({
        "reply_id": r.reply_id, "subscriber_id": r.subscriber_id, "email": r.email,
        "delivery_id": r.delivery_id, "enrollment_id": r.enrollment_id, "course": r.course,
        "lesson": r.lesson, "matched_by": r.matched_by,
    });
    enqueue(tx, kind, r.subscriber_id, data, now).await
}

/// `enrollment.completed`: these enrollments received their course's last lesson.
pub(crate) async fn enrollments_completed(
    tx: &mut Tx,
    enrollment_ids: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let kind = EventType::EnrollmentCompleted;
    if enrollment_ids.is_empty() || !db::webhooks::wanted(tx, kind).await? {
        return Ok(());
    }
    for e in db::webhooks::enrollments(tx, enrollment_ids).await? {
        let data = json!({
            "enrollment_id": e.enrollment_id, "subscriber_id": e.subscriber_id,
            "email": e.email, "course": e.course,
        });
        enqueue(tx, kind, Some(e.subscriber_id), data, now).await?;
    }
    Ok(())
}

/// `subscriber.unsubscribed`: a person left one course (`course`), or everything
/// (`course: null`); `courses` lists the courses they were taking and no longer are.
pub(crate) async fn subscriber_unsubscribed(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: Option<i64>,
    left: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let kind = EventType::SubscriberUnsubscribed;
    if !db::webhooks::wanted(tx, kind).await? {
        return Ok(());
    }
    let email = email_of(tx, subscriber_id).await?;
    let course = match course_id {
        Some(id) => Value::String(db::courses::by_id_in(tx, id).await?.slug),
        None => Value::Null,
    };
    let mut courses = Vec::new();
    for id in left {
        courses.push(db::courses::by_id_in(tx, *id).await?.slug);
    }
    let data = json!({
        "subscriber_id": subscriber_id, "email": email, "course": course, "courses": courses,
    });
    enqueue(tx, kind, Some(subscriber_id), data, now).await
}

/// `delivery.bounced`: a mail bounced (a delivery report, or the relay's permanent
/// refusal), `hard` or soft with its status `code`; `stopped`: the address now counts as
/// dead and drip writes to it no more.
pub(crate) async fn delivery_bounced(
    tx: &mut Tx,
    subscriber_id: i64,
    delivery_id: Option<i64>,
    hard: bool,
    code: &str,
    stopped: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let kind = EventType::DeliveryBounced;
    if !db::webhooks::wanted(tx, kind).await? {
        return Ok(());
    }
    let email = email_of(tx, subscriber_id).await?;
    let facts = match delivery_id {
        Some(id) => db::webhooks::delivery(tx, id).await?,
        None => None,
    };
    let (course, lesson) = facts.map_or((None, None), |f| (f.course, f.lesson));
    let data = json!({
        "delivery_id": delivery_id, "subscriber_id": subscriber_id, "email": email,
        "course": course, "lesson": lesson, "hard": hard, "code": code,
        "address_stopped": stopped,
    });
    enqueue(tx, kind, Some(subscriber_id), data, now).await
}

/// `broadcast.sent`: a broadcast of `course_id` has gone out to its audience (`recipients`
/// mails sent). The broadcasts module calls it when the last mail of the broadcast is
/// recorded.
pub async fn broadcast_sent(
    tx: &mut Tx,
    broadcast_id: i64,
    course_id: i64,
    subject: &str,
    recipients: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let kind = EventType::BroadcastSent;
    if !db::webhooks::wanted(tx, kind).await? {
        return Ok(());
    }
    let course = db::courses::by_id_in(tx, course_id).await?.slug;
    let data = json!({
        "broadcast_id": broadcast_id, "course": course, "subject": subject,
        "recipients": recipients,
    });
    enqueue(tx, kind, None, data, now).await
}

/// Erasure: the person's address leaves every stored event about them (`data.email`
/// becomes null), including those still to be posted. Ids stay, as in the rest of drip.
pub(crate) async fn forget_subscriber(tx: &mut Tx, subscriber_id: i64) -> anyhow::Result<()> {
    for (id, payload) in db::webhooks::payloads_about(tx, subscriber_id).await? {
        let mut v: Value = serde_json::from_str(&payload)?;
        if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut)
            && data.contains_key("email")
        {
            data.insert("email".into(), Value::Null);
            db::webhooks::replace_payload(tx, id, &v.to_string()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_has_the_four_fields_of_the_contract() {
        let now = DateTime::from_timestamp(1_796_126_400, 0).unwrap();
        let id = new_event_id();
        assert_eq!(id.len(), 32);
        assert_ne!(id, new_event_id());
        let v: Value = serde_json::from_str(&body(
            &id,
            EventType::LessonSent,
            now,
            json!({"lesson": "x"}),
        ))
        .unwrap();
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["type"], "lesson.sent");
        assert_eq!(v["created_at"], "2026-12-01T12:00:00Z");
        assert_eq!(v["data"]["lesson"], "x");
        assert_eq!(v.as_object().unwrap().len(), 4);
    }
}
