//! A subscriber's life: sign-up with double opt-in, confirmation and enrolment, pause,
//! resume, unsubscribe, bounces and erasure. Every change and the mail it causes are written
//! in one transaction (the mail goes through the outbox, never from the request).

pub mod export;
pub mod import;
mod journal;
mod moves;
pub mod spreadsheet;

pub use journal::{
    JOURNAL_ACCESS_HOURS, JOURNAL_LINK_PAYLOAD, JOURNAL_RESEND_MINUTES, request_journal_link,
};
pub use moves::{MoveRefused, move_to_lesson};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use crate::app::App;
use crate::db::{self, Tx, courses::CourseRow};
use crate::domain::{
    DeliveryKind, EmailAddress, EnrollmentStatus, InvalidInput, SubscriberStatus, Timezone,
};
use crate::schedule::Syllabus;

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
            errors.push(
                InvalidInput::new("name", "must be at most 100 characters").because("too_long"),
            );
        } else if name.chars().any(|c| c.is_control()) {
            errors.push(
                InvalidInput::new("name", "must not contain line breaks or control characters")
                    .because("control"),
            );
        } else if name.chars().any(is_direction_override) {
            // A name shown beside an address in the admin UI must not be able to reverse how
            // the text after it reads.
            errors.push(
                InvalidInput::new(
                    "name",
                    "must not contain text direction overrides (U+202A to U+202E, U+2066 to U+2069)",
                )
                .because("direction"),
            );
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

/// Why [`add`] refused: the one refusal a caller answers differently (409, not 500).
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("email: {0} is already a subscriber")]
    AlreadySubscribed(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

const CONFIRM_RESEND_SECONDS: i64 = 600;

/// Signs up. A known address is never changed by a sign-up: the name and time zone asked
/// for travel in the confirmation mail's payload and are applied when the link is used, so
/// a stranger typing someone's address cannot rename them or move their lessons.
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
                new.timezone,
                SubscriberStatus::Pending,
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
            queue_confirmation(&mut tx, id, None, now_s).await?;
            Subscribed::ConfirmationQueued
        }
        Some(s) if s.status.is_enrolled() => Subscribed::AlreadyActive,
        Some(s)
            if s.confirm_sent_at
                .is_some_and(|t| now_s - t < CONFIRM_RESEND_SECONDS) =>
        {
            Subscribed::Throttled
        }
        Some(s) => {
            // Pending, unsubscribed or bounced: ask again, with double opt-in as the first
            // time. The name and time zone wait for the confirmation (see `confirm`).
            if s.status != SubscriberStatus::Pending {
                db::subscribers::set_status(&mut tx, s.id, SubscriberStatus::Pending, now_s)
                    .await?;
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
            queue_confirmation(&mut tx, s.id, Some(new), now_s).await?;
            Subscribed::ConfirmationQueued
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Queues the confirmation mail; `profile` is the name and time zone a repeated sign-up
/// asked for, kept with the mail until the link is used.
async fn queue_confirmation(
    tx: &mut Tx,
    id: i64,
    profile: Option<&NewSubscriber>,
    now: i64,
) -> anyhow::Result<()> {
    let payload = match profile {
        Some(p) => json!({"name": p.name, "timezone": p.timezone.name()}),
        None => json!({}),
    };
    db::deliveries::enqueue_mail(tx, id, DeliveryKind::Confirm, &payload, now).await?;
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

/// Activates a pending subscriber and enrols them, with the name and time zone their
/// latest sign-up asked for; a second click changes nothing.
pub async fn confirm(
    app: &App,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Confirmed> {
    let course = app.course().await?;
    let mut tx = app.db.begin_write().await?;
    let confirmed = confirm_in(&mut tx, &course, subscriber_id, actor, now).await?;
    tx.commit().await?;
    Ok(confirmed)
}

async fn confirm_in(
    tx: &mut Tx,
    course: &CourseRow,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Confirmed> {
    let now_s = now.timestamp();
    let lessons = db::lessons::list_in(tx, course.id).await?;
    let syllabus = Syllabus::new(&lessons, &course.send_window, &course.phases);
    let Some(mut s) = db::subscribers::by_id_in(tx, subscriber_id).await? else {
        return Ok(Confirmed::NotFound);
    };
    match s.status {
        SubscriberStatus::Pending => {}
        SubscriberStatus::Active | SubscriberStatus::Paused => return Ok(Confirmed::Already),
        SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced | SubscriberStatus::Erased => {
            return Ok(Confirmed::Inactive);
        }
    }
    if let Some(profile) = db::deliveries::latest_confirm_payload(tx, s.id).await? {
        let name = profile["name"].as_str().map(str::to_owned);
        let tz = profile["timezone"]
            .as_str()
            .and_then(|t| Timezone::parse(t).ok());
        if let (Some(name), Some(tz)) = (name, tz) {
            db::subscribers::update_profile(tx, s.id, &name, tz.name()).await?;
            s.name = name;
            s.timezone = tz;
        }
    }
    db::subscribers::confirm(tx, s.id, now_s).await?;
    let tz = s.timezone;
    let due = syllabus.first_due(now, tz);
    let enrolled = db::enrollments::create(tx, s.id, course.id, due.timestamp(), now_s).await?;
    if !enrolled {
        // Enrolled before (they unsubscribed and came back): continue where they left off.
        for e in db::enrollments::for_subscriber_in(tx, s.id).await? {
            let due = syllabus.resume_due(e.position, now, tz).timestamp();
            db::enrollments::set_status(
                tx,
                e.id,
                EnrollmentStatus::Active,
                e.position,
                Some(due),
                now_s,
            )
            .await?;
        }
    }
    if enrolled && due.timestamp() - now_s > 3600 {
        // Written out when sent: on the reader's clock, in the course's language.
        db::deliveries::enqueue_mail(
            tx,
            s.id,
            DeliveryKind::Welcome,
            &json!({ "first_lesson_due": due.timestamp() }),
            now_s,
        )
        .await?;
    }
    db::events::log(tx, Some(s.id), actor, "confirmed", &json!({}), now_s).await?;
    Ok(Confirmed::Now)
}

/// Adds a subscriber directly (CLI, import, API). With `confirmed`, no confirmation mail:
/// the caller vouches for the consent. One transaction: the person is added and enrolled,
/// or nothing is.
pub async fn add(
    app: &App,
    new: &NewSubscriber,
    confirmed: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64, AddError> {
    let now_s = now.timestamp();
    let course = app.course().await?;
    let mut tx = app.db.begin_write().await?;
    if db::subscribers::by_email_in(&mut tx, new.email.as_str())
        .await?
        .is_some()
    {
        return Err(AddError::AlreadySubscribed(new.email.to_string()));
    }
    let inserted = db::subscribers::insert(
        &mut tx,
        new.email.as_str(),
        &new.name,
        new.timezone,
        SubscriberStatus::Pending,
        now_s,
    )
    .await;
    let id = match inserted {
        Ok(id) => id,
        // Another request added the same address between the check and the insert.
        Err(e) if db::is_unique_violation(&e) => {
            return Err(AddError::AlreadySubscribed(new.email.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    db::events::log(
        &mut tx,
        Some(id),
        actor,
        "added",
        &json!({"confirmed": confirmed}),
        now_s,
    )
    .await?;
    if confirmed {
        confirm_in(&mut tx, &course, id, actor, now).await?;
    } else {
        queue_confirmation(&mut tx, id, None, now_s).await?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
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
    let mut tx = app.db.begin_write().await?;
    let done = pause_in(&mut tx, subscriber_id, actor, now).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`pause`] inside the caller's transaction.
pub(crate) async fn pause_in(
    tx: &mut Tx,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let Some(s) = db::subscribers::by_id_in(tx, subscriber_id).await? else {
        return Ok(false);
    };
    if s.status != SubscriberStatus::Active {
        return Ok(false);
    }
    db::subscribers::set_status(tx, s.id, SubscriberStatus::Paused, now_s).await?;
    let withdrawn = db::deliveries::withdraw_queued_lessons(tx, s.id).await?;
    for e in db::enrollments::for_subscriber_in(tx, s.id).await? {
        if e.status == EnrollmentStatus::Active {
            let position = db::enrollments::last_delivered_position(tx, e.id).await?;
            db::enrollments::set_status(tx, e.id, EnrollmentStatus::Paused, position, None, now_s)
                .await?;
        }
    }
    db::events::log(
        tx,
        Some(s.id),
        actor,
        "paused",
        &json!({"withdrawn": withdrawn}),
        now_s,
    )
    .await?;
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
    let mut tx = app.db.begin_write().await?;
    let done = resume_in(&mut tx, &course, subscriber_id, actor, now).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`resume`] inside the caller's transaction.
pub(crate) async fn resume_in(
    tx: &mut Tx,
    course: &CourseRow,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let lessons = db::lessons::list_in(tx, course.id).await?;
    let syllabus = Syllabus::new(&lessons, &course.send_window, &course.phases);
    let Some(s) = db::subscribers::by_id_in(tx, subscriber_id).await? else {
        return Ok(false);
    };
    if s.status != SubscriberStatus::Paused {
        return Ok(false);
    }
    db::subscribers::set_status(tx, s.id, SubscriberStatus::Active, now_s).await?;
    for e in db::enrollments::for_subscriber_in(tx, s.id).await? {
        if e.status == EnrollmentStatus::Paused {
            let due = syllabus.resume_due(e.position, now, s.timezone).timestamp();
            db::enrollments::set_status(
                tx,
                e.id,
                EnrollmentStatus::Active,
                e.position,
                Some(due),
                now_s,
            )
            .await?;
        }
    }
    db::events::log(tx, Some(s.id), actor, "resumed", &json!({}), now_s).await?;
    Ok(true)
}

/// Unsubscribes at once: nothing more is sent but a goodbye (if they were receiving lessons).
pub async fn unsubscribe(
    app: &App,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut tx = app.db.begin_write().await?;
    let done = unsubscribe_in(&mut tx, subscriber_id, actor, now).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`unsubscribe`] inside the caller's transaction.
pub(crate) async fn unsubscribe_in(
    tx: &mut Tx,
    subscriber_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let Some(s) = db::subscribers::by_id_in(tx, subscriber_id).await? else {
        return Ok(false);
    };
    if matches!(
        s.status,
        SubscriberStatus::Unsubscribed | SubscriberStatus::Erased
    ) {
        return Ok(false);
    }
    stop(tx, &s, SubscriberStatus::Unsubscribed, now_s).await?;
    if s.status.is_enrolled() {
        db::deliveries::enqueue_mail(tx, s.id, DeliveryKind::Goodbye, &json!({}), now_s).await?;
    }
    db::events::log(
        tx,
        Some(s.id),
        actor,
        "unsubscribed",
        &json!({"was": s.status}),
        now_s,
    )
    .await?;
    Ok(true)
}

async fn stop(
    tx: &mut Tx,
    s: &db::subscribers::SubscriberRow,
    status: SubscriberStatus,
    now_s: i64,
) -> anyhow::Result<()> {
    db::subscribers::set_status(tx, s.id, status, now_s).await?;
    db::deliveries::withdraw_queued_lessons(tx, s.id).await?;
    for e in db::enrollments::for_subscriber_in(tx, s.id).await? {
        if matches!(
            e.status,
            EnrollmentStatus::Active | EnrollmentStatus::Paused
        ) {
            let position = db::enrollments::last_delivered_position(tx, e.id).await?;
            db::enrollments::set_status(tx, e.id, EnrollmentStatus::Stopped, position, None, now_s)
                .await?;
        }
    }
    Ok(())
}

/// Counts a bounce; returns true when it made the subscriber `bounced` (by default one hard
/// or three soft bounces within 30 days).
pub(crate) async fn count_bounce(
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
        if matches!(
            sub.status,
            SubscriberStatus::Bounced | SubscriberStatus::Unsubscribed | SubscriberStatus::Erased
        ) {
            return Ok(true);
        }
        stop(tx, &sub, SubscriberStatus::Bounced, now_s).await?;
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

/// Turns discreet mails on or off (see the sender's `compose`: a plain sender name, subject
/// and preheader on every lesson mail).
pub(crate) async fn set_discreet(
    app: &App,
    subscriber_id: i64,
    on: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    db::subscribers::set_discreet(&mut tx, subscriber_id, on).await?;
    db::events::log(
        &mut tx,
        Some(subscriber_id),
        actor,
        "discreet_changed",
        &json!({"discreet": on}),
        now_s,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the time zone; the next due time is recomputed in the new zone.
pub(crate) async fn set_timezone(
    app: &App,
    subscriber_id: i64,
    tz: Timezone,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let course = app.course().await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    let syllabus = Syllabus::new(&lessons, &course.send_window, &course.phases);
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(s) = db::subscribers::by_id_in(&mut tx, subscriber_id).await? else {
        return Ok(());
    };
    db::subscribers::update_profile(&mut tx, s.id, &s.name, tz.name()).await?;
    for e in db::enrollments::for_subscriber_in(&mut tx, s.id).await? {
        if let (Some(_), Some(sent)) = (e.next_due_at, e.last_sent_at)
            && let Some(sent) = Utc.timestamp_opt(sent, 0).single()
            && let Some(due) = syllabus.replan(e.position, sent, now, tz)
        {
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
    if s.status != SubscriberStatus::Erased {
        stop(&mut tx, &s, SubscriberStatus::Erased, now_s).await?;
    }
    db::subscribers::anonymise(&mut tx, s.id).await?;
    db::replies::keep_answer_marks_for_subscriber(&mut tx, s.id).await?;
    db::replies::delete_for_subscriber(&mut tx, s.id).await?;
    db::deliveries::drop_unsent(&mut tx, s.id).await?;
    db::events::log(&mut tx, Some(s.id), actor, "erased", &json!({}), now_s).await?;
    tx.commit().await?;
    Ok(true)
}
