//! A subscriber's life: sign-up with double opt-in, confirmation and enrolment, pause,
//! resume, unsubscribe, bounces and erasure. Every change and the mail it causes are written
//! in one transaction (the mail goes through the outbox, never from the request).

pub mod export;
pub mod import;
mod journal;
pub mod spreadsheet;

pub use journal::{JOURNAL_LINK_PAYLOAD, request_journal_link};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use crate::app::App;
use crate::db::{self, Tx};
use crate::domain::{EmailAddress, InvalidInput, Timezone};
use crate::outbox::plan::next_lesson;
use crate::schedule;

/// Sign-up input, parsed once at the edge.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    pub name: String,
    pub timezone: Timezone,
}

impl NewSubscriber {
    /// Parses raw form values; every field's problem is reported, not only the first.
    pub fn parse(
        email: &str,
        name: &str,
        timezone: &str,
        default_tz: Timezone,
    ) -> Result<NewSubscriber, Vec<InvalidInput>> {
        let mut errors = Vec::new();
        let email = EmailAddress::parse(email).map_err(|e| errors.push(e)).ok();
        let name = name.trim();
        if name.chars().count() > 100 {
            errors.push(InvalidInput::new("name", "must be at most 100 characters"));
        } else if name.chars().any(|c| c.is_control()) {
            errors.push(InvalidInput::new(
                "name",
                "must not contain line breaks or control characters",
            ));
        } else if name.chars().any(is_direction_override) {
            // A name shown beside an address in the admin UI must not be able to reverse how
            // the text after it reads.
            errors.push(InvalidInput::new(
                "name",
                "must not contain text direction overrides (U+202A to U+202E, U+2066 to U+2069)",
            ));
        }
        let timezone = if timezone.trim().is_empty() {
            Some(default_tz)
        } else {
            Timezone::parse(timezone).map_err(|e| errors.push(e)).ok()
        };
        match (email, timezone, errors.is_empty()) {
            (Some(email), Some(timezone), true) => Ok(NewSubscriber {
                email,
                name: name.to_owned(),
                timezone,
            }),
            _ => Err(errors),
        }
    }
}

/// The explicit bidirectional embeddings, overrides and isolates; names in right-to-left
/// scripts never need them (the implicit algorithm orders their letters).
fn is_direction_override(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// What a sign-up did. The web page shows the same answer for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    ConfirmationQueued,
    /// A confirmation went out less than ten minutes ago.
    Throttled,
    AlreadyActive,
}

const CONFIRM_RESEND_SECONDS: i64 = 600;

pub async fn subscribe(
    app: &App,
    new: &NewSubscriber,
    now: DateTime<Utc>,
) -> anyhow::Result<Subscribed> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let existing = db::subscribers::by_email_in(&mut tx, new.email.as_str()).await?;
    let outcome = match existing {
        None => {
            let id = db::subscribers::insert(
                &mut tx,
                new.email.as_str(),
                &new.name,
                new.timezone.name(),
                "pending",
                now_s,
            )
            .await?;
            db::events::log(
                &mut tx,
                Some(id),
                "subscriber",
                "signed_up",
                &json!({}),
                now_s,
            )
            .await?;
            queue_confirmation(&mut tx, id, now_s).await?;
            Subscribed::ConfirmationQueued
        }
        Some(s) if s.status == "active" || s.status == "paused" => Subscribed::AlreadyActive,
        Some(s)
            if s.confirm_sent_at
                .is_some_and(|t| now_s - t < CONFIRM_RESEND_SECONDS) =>
        {
            Subscribed::Throttled
        }
        Some(s) => {
            // Pending, unsubscribed or bounced: ask again, with double opt-in as the first time.
            db::subscribers::update_profile(&mut tx, s.id, &new.name, new.timezone.name()).await?;
            if s.status != "pending" {
                db::subscribers::set_status(&mut tx, s.id, "pending", now_s).await?;
                db::events::log(
                    &mut tx,
                    Some(s.id),
                    "subscriber",
                    "signed_up_again",
                    &json!({"was": s.status}),
                    now_s,
                )
                .await?;
            }
            queue_confirmation(&mut tx, s.id, now_s).await?;
            Subscribed::ConfirmationQueued
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

async fn queue_confirmation(tx: &mut Tx, id: i64, now: i64) -> anyhow::Result<()> {
    db::deliveries::enqueue_mail(tx, id, "confirm", &json!({}), now).await?;
    db::subscribers::set_confirm_sent(tx, id, now).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    Now,
    Already,
    /// Unsubscribed or bounced since: the link no longer enrols.
    Inactive,
    NotFound,
}

/// Activates a pending subscriber and enrols them; a second click changes nothing.
pub async fn confirm(
    app: &App,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Confirmed> {
    let course = app.course().await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(s) = db::subscribers::by_id_in(&mut tx, subscriber_id).await? else {
        return Ok(Confirmed::NotFound);
    };
    match s.status.as_str() {
        "pending" => {}
        "active" | "paused" => return Ok(Confirmed::Already),
        _ => return Ok(Confirmed::Inactive),
    }
    db::subscribers::confirm(&mut tx, s.id, now_s).await?;
    let tz = Timezone::parse(&s.timezone).unwrap_or(Timezone::UTC);
    let first = next_lesson(&lessons, 0);
    let due = first.map(|l| {
        schedule::due_after(
            &l.content.window(&course.send_window),
            l.content.after_days,
            now,
            tz.tz(),
        )
    });
    let enrolled = db::enrollments::create(
        &mut tx,
        s.id,
        course.id,
        due.unwrap_or(now).timestamp(),
        now_s,
    )
    .await?;
    if !enrolled {
        // Enrolled before (they unsubscribed and came back): continue where they left off.
        for e in db::enrollments::for_subscriber_in(&mut tx, s.id).await? {
            let next = next_lesson(&lessons, e.position);
            let due = next.map(|l| {
                schedule::next_window(&l.content.window(&course.send_window), now, tz.tz())
                    .timestamp()
            });
            db::enrollments::set_status(
                &mut tx,
                e.id,
                "active",
                e.position,
                Some(due.unwrap_or(now_s)),
                now_s,
            )
            .await?;
        }
    }
    if let Some(due) = due
        && due.timestamp() - now_s > 3600
    {
        let local = due
            .with_timezone(&tz.tz())
            .format("%A %-d %B at %H:%M (%Z)")
            .to_string();
        db::deliveries::enqueue_mail(
            &mut tx,
            s.id,
            "welcome",
            &json!({ "first_lesson_at": local }),
            now_s,
        )
        .await?;
    }
    db::events::log(&mut tx, Some(s.id), actor, "confirmed", &json!({}), now_s).await?;
    tx.commit().await?;
    Ok(Confirmed::Now)
}

/// Adds a subscriber directly (CLI, import, API). With `confirmed`, no confirmation mail:
/// the caller vouches for the consent.
pub async fn add(
    app: &App,
    new: &NewSubscriber,
    confirmed: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    if db::subscribers::by_email_in(&mut tx, new.email.as_str())
        .await?
        .is_some()
    {
        anyhow::bail!("email: {} is already a subscriber", new.email);
    }
    let id = db::subscribers::insert(
        &mut tx,
        new.email.as_str(),
        &new.name,
        new.timezone.name(),
        "pending",
        now_s,
    )
    .await?;
    db::events::log(
        &mut tx,
        Some(id),
        actor,
        "added",
        &json!({"confirmed": confirmed}),
        now_s,
    )
    .await?;
    if !confirmed {
        queue_confirmation(&mut tx, id, now_s).await?;
    }
    tx.commit().await?;
    if confirmed {
        confirm(app, id, actor, now).await?;
    }
    Ok(id)
}

/// Pauses: the queued lesson (if any) is withdrawn so nothing more goes out, and the
/// enrollment returns to the last lesson that actually left.
pub async fn pause(
    app: &App,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(s) = db::subscribers::by_id_in(&mut tx, subscriber_id).await? else {
        return Ok(false);
    };
    if s.status != "active" {
        return Ok(false);
    }
    db::subscribers::set_status(&mut tx, s.id, "paused", now_s).await?;
    let withdrawn = db::deliveries::withdraw_queued_lessons(&mut tx, s.id).await?;
    for e in db::enrollments::for_subscriber_in(&mut tx, s.id).await? {
        if e.status == "active" {
            let position = db::enrollments::last_delivered_position(&mut tx, e.id).await?;
            db::enrollments::set_status(&mut tx, e.id, "paused", position, None, now_s).await?;
        }
    }
    db::events::log(
        &mut tx,
        Some(s.id),
        actor,
        "paused",
        &json!({"withdrawn": withdrawn}),
        now_s,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Resumes where they stopped: the next lesson at its next window, with no burst of the
/// lessons that would have come while paused.
pub async fn resume(
    app: &App,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let course = app.course().await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(s) = db::subscribers::by_id_in(&mut tx, subscriber_id).await? else {
        return Ok(false);
    };
    if s.status != "paused" {
        return Ok(false);
    }
    let tz = Timezone::parse(&s.timezone).unwrap_or(Timezone::UTC);
    db::subscribers::set_status(&mut tx, s.id, "active", now_s).await?;
    for e in db::enrollments::for_subscriber_in(&mut tx, s.id).await? {
        if e.status == "paused" {
            let due = next_lesson(&lessons, e.position)
                .map(|l| {
                    schedule::next_window(&l.content.window(&course.send_window), now, tz.tz())
                        .timestamp()
                })
                .unwrap_or(now_s);
            db::enrollments::set_status(&mut tx, e.id, "active", e.position, Some(due), now_s)
                .await?;
        }
    }
    db::events::log(&mut tx, Some(s.id), actor, "resumed", &json!({}), now_s).await?;
    tx.commit().await?;
    Ok(true)
}

/// Unsubscribes at once: nothing more is sent but a goodbye (if they were receiving lessons).
pub async fn unsubscribe(
    app: &App,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(s) = db::subscribers::by_id_in(&mut tx, subscriber_id).await? else {
        return Ok(false);
    };
    if matches!(s.status.as_str(), "unsubscribed" | "erased") {
        return Ok(false);
    }
    stop(&mut tx, &s, "unsubscribed", now_s).await?;
    if matches!(s.status.as_str(), "active" | "paused") {
        db::deliveries::enqueue_mail(&mut tx, s.id, "goodbye", &json!({}), now_s).await?;
    }
    db::events::log(
        &mut tx,
        Some(s.id),
        actor,
        "unsubscribed",
        &json!({"was": s.status}),
        now_s,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn stop(
    tx: &mut Tx,
    s: &db::subscribers::SubscriberRow,
    status: &str,
    now_s: i64,
) -> anyhow::Result<()> {
    db::subscribers::set_status(tx, s.id, status, now_s).await?;
    db::deliveries::withdraw_queued_lessons(tx, s.id).await?;
    for e in db::enrollments::for_subscriber_in(tx, s.id).await? {
        if matches!(e.status.as_str(), "active" | "paused") {
            let position = db::enrollments::last_delivered_position(tx, e.id).await?;
            db::enrollments::set_status(tx, e.id, "stopped", position, None, now_s).await?;
        }
    }
    Ok(())
}

/// Counts a bounce; returns true when it made the subscriber `bounced` (by default one hard
/// or three soft bounces within 30 days).
pub async fn count_bounce(
    app: &App,
    tx: &mut Tx,
    subscriber_id: i64,
    delivery_id: Option<i64>,
    hard: bool,
    code: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let cfg = &app.config.schedule;
    let now_s = now.timestamp();
    db::subscribers::record_bounce(tx, subscriber_id, delivery_id, hard, code, now_s).await?;
    let (h, s) =
        db::subscribers::bounce_counts(tx, subscriber_id, now_s - cfg.bounce_window_days * 86_400)
            .await?;
    let dead = h >= cfg.hard_bounce_limit || s >= cfg.soft_bounce_limit;
    db::events::log(
        tx,
        Some(subscriber_id),
        "system",
        "bounce",
        &json!({"hard": hard, "code": code, "delivery": delivery_id}),
        now_s,
    )
    .await?;
    if dead && let Some(sub) = db::subscribers::by_id_in(tx, subscriber_id).await? {
        if matches!(sub.status.as_str(), "bounced" | "unsubscribed" | "erased") {
            return Ok(true);
        }
        stop(tx, &sub, "bounced", now_s).await?;
        db::events::log(
            tx,
            Some(subscriber_id),
            "system",
            "marked_bounced",
            &json!({"hard": h, "soft": s}),
            now_s,
        )
        .await?;
    }
    Ok(dead)
}

/// Changes the time zone; the next due time is recomputed in the new zone.
pub async fn set_timezone(
    app: &App,
    subscriber_id: i64,
    tz: Timezone,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let course = app.course().await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(s) = db::subscribers::by_id_in(&mut tx, subscriber_id).await? else {
        return Ok(());
    };
    db::subscribers::update_profile(&mut tx, s.id, &s.name, tz.name()).await?;
    for e in db::enrollments::for_subscriber_in(&mut tx, s.id).await? {
        if let (Some(_), Some(next), Some(sent)) = (
            e.next_due_at,
            next_lesson(&lessons, e.position),
            e.last_sent_at,
        ) {
            let sent = Utc.timestamp_opt(sent, 0).single().unwrap_or(now);
            let due = schedule::due_after(
                &next.content.window(&course.send_window),
                next.content.after_days,
                sent,
                tz.tz(),
            )
            .max(now);
            db::enrollments::set_next_due(&mut tx, e.id, Some(due.timestamp()), now_s).await?;
        }
    }
    db::events::log(
        &mut tx,
        Some(s.id),
        actor,
        "timezone_changed",
        &json!({"from": s.timezone, "to": tz.name()}),
        now_s,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Erases a subscriber: their address, name and every reply (text and raw message) are
/// removed; the anonymous rows that statistics count (deliveries, events, which lessons they
/// answered) stay, tied to a placeholder that names nobody.
pub async fn erase(
    app: &App,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(s) = db::subscribers::by_id_in(&mut tx, subscriber_id).await? else {
        return Ok(false);
    };
    if s.status != "erased" {
        stop(&mut tx, &s, "erased", now_s).await?;
    }
    db::subscribers::anonymise(&mut tx, s.id).await?;
    db::replies::keep_answer_marks_for_subscriber(&mut tx, s.id).await?;
    db::replies::delete_for_subscriber(&mut tx, s.id).await?;
    db::deliveries::drop_unsent(&mut tx, s.id).await?;
    db::events::log(&mut tx, Some(s.id), actor, "erased", &json!({}), now_s).await?;
    tx.commit().await?;
    Ok(true)
}
