//! A subscriber's life: sign-up with double opt-in, confirmation and enrolment, pause,
//! resume, unsubscribe, bounces and erasure. Every change and the mail it causes are written
//! in one transaction (the mail goes through the outbox, never from the request).

pub mod export;
pub mod flood;
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
use crate::db::{self, Tx, courses::CourseRow, enrollments::EnrollmentRow, lessons::Lesson};
use crate::domain::{
    DeliveryKind, EmailAddress, EnrollmentStatus, InvalidInput, Pace, SubscriberStatus, Timezone,
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
    /// A confirmation for this course went out less than ten minutes ago.
    Throttled,
    /// Already taking (or finished) this course.
    AlreadyActive,
    /// Nothing done: the instance queued `[public] confirmations_per_hour` confirmation
    /// mails in the last hour; one more fits in this many seconds.
    InstanceFull {
        retry_after: i64,
    },
}

/// Why [`add`] refused: the one refusal a caller answers differently (409, not 500).
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("email: {0} is already enrolled in this course")]
    AlreadySubscribed(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

const CONFIRM_RESEND_SECONDS: i64 = 600;

/// A course with its lessons, read in the transaction that plans from them.
struct CourseLessons {
    course: CourseRow,
    lessons: Vec<Lesson>,
}

impl CourseLessons {
    async fn load(tx: &mut Tx, course_id: i64) -> anyhow::Result<CourseLessons> {
        Ok(CourseLessons {
            course: db::courses::by_id_in(tx, course_id).await?,
            lessons: db::lessons::list_in(tx, course_id).await?,
        })
    }

    fn syllabus(&self, pace: Option<Pace>) -> Syllabus<'_> {
        Syllabus::new(&self.lessons, &self.course.send_window, &self.course.phases).paced(pace)
    }
}

/// Signs up for `course`, with double opt-in for that course. A known address is never
/// changed by a sign-up: the name and time zone asked for travel in the confirmation mail's
/// payload and are applied when the link is used, so a stranger typing someone's address
/// cannot rename them or move their lessons. A person already confirmed for another course
/// confirms this one too, by its own mail.
pub async fn subscribe(
    app: &App,
    course: &CourseRow,
    new: &NewSubscriber,
    now: DateTime<Utc>,
) -> anyhow::Result<Subscribed> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    if let Some(retry_after) = instance_full(
        app,
        &mut tx,
        app.config.public.confirmations_per_hour,
        now_s,
    )
    .await?
    {
        // Every sign-up is refused, known address or not: the answer reveals nothing.
        tx.commit().await?;
        return Ok(Subscribed::InstanceFull { retry_after });
    }
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
                &json!({"course": course.slug}),
                now_s,
            )
            .await?;
            queue_confirmation(&mut tx, id, course.id, None, now_s).await?;
            Subscribed::ConfirmationQueued
        }
        Some(s) => {
            let enrollment = db::enrollments::of_course_in(&mut tx, s.id, course.id).await?;
            let taking = enrollment.is_some_and(|e| e.status != EnrollmentStatus::Stopped);
            let recent = db::deliveries::latest_confirmation(&mut tx, s.id, Some(course.id))
                .await?
                .is_some_and(|c| now_s - c.created_at < CONFIRM_RESEND_SECONDS);
            if s.status.is_enrolled() && taking {
                Subscribed::AlreadyActive
            } else if recent {
                Subscribed::Throttled
            } else {
                // Never confirmed, out of everything, bounced, or left this course: ask
                // again, with double opt-in as the first time. The name and time zone wait
                // for the confirmation (see `confirm`).
                if matches!(
                    s.status,
                    SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced
                ) {
                    db::subscribers::set_status(&mut tx, s.id, SubscriberStatus::Pending, now_s)
                        .await?;
                }
                db::events::log(
                    &mut tx,
                    Some(s.id),
                    "subscriber",
                    "signed_up_again",
                    &json!({"was": s.status, "course": course.slug}),
                    now_s,
                )
                .await?;
                queue_confirmation(&mut tx, s.id, course.id, Some(new), now_s).await?;
                Subscribed::ConfirmationQueued
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Names the advisory lock that lines sign-ups up on PostgreSQL, so that two processes
/// cannot both see room for the last confirmation of the hour.
const SIGNUP_LOCK: i32 = 0x0d21_9016;

/// When the instance has queued `cap` confirmation mails within the last hour (0: no cap),
/// the seconds until one more fits. Called first in the sign-up's transaction, which it
/// holds the sign-up lock for.
async fn instance_full(app: &App, tx: &mut Tx, cap: u32, now: i64) -> anyhow::Result<Option<i64>> {
    if cap == 0 {
        return Ok(None);
    }
    app.db.xact_lock(tx, SIGNUP_LOCK).await?;
    let since = now - flood::WINDOW_SECONDS + 1;
    let queued = db::deliveries::confirmations_since(tx, since).await?;
    let cap = i64::from(cap);
    if queued < cap {
        return Ok(None);
    }
    // One fits once all but cap - 1 of them are older than the hour.
    let freeing = db::deliveries::nth_confirmation_since(tx, since, queued - cap).await?;
    let retry_after = freeing.map_or(1, |at| (at + flood::WINDOW_SECONDS - now).max(1));
    Ok(Some(retry_after))
}

/// Queues the confirmation mail for `course_id`; `profile` is the name and time zone a
/// repeated sign-up asked for, kept with the mail until the link is used.
async fn queue_confirmation(
    tx: &mut Tx,
    id: i64,
    course_id: i64,
    profile: Option<&NewSubscriber>,
    now: i64,
) -> anyhow::Result<()> {
    let payload = match profile {
        Some(p) => json!({"name": p.name, "timezone": p.timezone.name()}),
        None => json!({}),
    };
    db::deliveries::enqueue_mail(
        tx,
        id,
        Some(course_id),
        DeliveryKind::Confirm,
        &payload,
        now,
    )
    .await?;
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

/// What a confirmation link names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmLink {
    /// The confirmation mail, which names its course.
    Mail(i64),
    /// A subscriber (links mailed by single-course releases): their latest confirmation.
    Subscriber(i64),
}

/// The course a confirmation link is for and the person it asks, if it still names them.
pub async fn confirmation_of(
    app: &App,
    link: ConfirmLink,
) -> anyhow::Result<Option<(CourseRow, i64)>> {
    let mut tx = app.db.begin_write().await?;
    let found = find_confirmation(&mut tx, link).await?;
    let out = match found.and_then(|c| c.course_id.map(|id| (id, c.subscriber_id))) {
        Some((id, subscriber)) => Some((db::courses::by_id_in(&mut tx, id).await?, subscriber)),
        None => None,
    };
    tx.commit().await?;
    Ok(out)
}

async fn find_confirmation(
    tx: &mut Tx,
    link: ConfirmLink,
) -> anyhow::Result<Option<db::deliveries::Confirmation>> {
    match link {
        ConfirmLink::Mail(id) => db::deliveries::confirmation_by_id(tx, id).await,
        ConfirmLink::Subscriber(id) => db::deliveries::latest_confirmation(tx, id, None).await,
    }
}

/// Confirms the course a confirmation link is for and enrols the person, with the name and
/// time zone that sign-up asked for; a second click changes nothing.
pub async fn confirm(
    app: &App,
    link: ConfirmLink,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Confirmed> {
    let mut tx = app.db.begin_write().await?;
    let Some(confirmation) = find_confirmation(&mut tx, link).await? else {
        return Ok(Confirmed::NotFound);
    };
    let Some(course_id) = confirmation.course_id else {
        return Ok(Confirmed::NotFound);
    };
    let course = CourseLessons::load(&mut tx, course_id).await?;
    let confirmed = confirm_in(
        &mut tx,
        &course,
        confirmation.subscriber_id,
        Some(&confirmation.payload),
        actor,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(confirmed)
}

async fn confirm_in(
    tx: &mut Tx,
    course: &CourseLessons,
    subscriber_id: i64,
    profile: Option<&serde_json::Value>,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Confirmed> {
    let now_s = now.timestamp();
    let Some(mut s) = db::subscribers::by_id_in(tx, subscriber_id).await? else {
        return Ok(Confirmed::NotFound);
    };
    if matches!(
        s.status,
        SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced | SubscriberStatus::Erased
    ) {
        return Ok(Confirmed::Inactive);
    }
    let enrollment = db::enrollments::of_course_in(tx, s.id, course.course.id).await?;
    if s.status == SubscriberStatus::Active
        && enrollment
            .as_ref()
            .is_some_and(|e| e.status != EnrollmentStatus::Stopped)
    {
        return Ok(Confirmed::Already);
    }
    if let Some(profile) = profile {
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
    if s.status == SubscriberStatus::Pending {
        db::subscribers::confirm(tx, s.id, now_s).await?;
    }
    let tz = s.timezone;
    let first_due = match &enrollment {
        Some(e) => {
            // Enrolled before (they left and came back): continue where they left off.
            let due = course.syllabus(e.pace()).resume_due(e.position, now, tz);
            db::enrollments::set_status(
                tx,
                e.id,
                EnrollmentStatus::Active,
                e.position,
                Some(due.timestamp()),
                now_s,
            )
            .await?;
            None
        }
        None => {
            let due = course.syllabus(None).first_due(now, tz);
            db::enrollments::create(tx, s.id, course.course.id, due.timestamp(), now_s).await?;
            Some(due)
        }
    };
    crate::webhooks::events::subscriber_confirmed(tx, s.id, course.course.id, now).await?;
    crate::webhooks::events::enrollment_started(
        tx,
        s.id,
        course.course.id,
        enrollment.is_some(),
        now,
    )
    .await?;
    if let Some(due) = first_due.filter(|d| d.timestamp() - now_s > 3600) {
        // Written out when sent: on the reader's clock, in the course's language.
        db::deliveries::enqueue_mail(
            tx,
            s.id,
            Some(course.course.id),
            DeliveryKind::Welcome,
            &json!({ "first_lesson_due": due.timestamp() }),
            now_s,
        )
        .await?;
    }
    db::events::log(
        tx,
        Some(s.id),
        actor,
        "confirmed",
        &json!({"course": course.course.slug}),
        now_s,
    )
    .await?;
    Ok(Confirmed::Now)
}

/// Adds a subscriber to `course` directly (CLI, import, API). With `confirmed`, no
/// confirmation mail: the caller vouches for the consent. A known person is enrolled in
/// this course (or sent its confirmation); one already in it is refused. One transaction:
/// the person is added and enrolled, or nothing is.
pub async fn add(
    app: &App,
    course: &CourseRow,
    new: &NewSubscriber,
    confirmed: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64, AddError> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let course = CourseLessons::load(&mut tx, course.id).await?;
    let id = match db::subscribers::by_email_in(&mut tx, new.email.as_str()).await? {
        Some(s) => {
            let taking = db::enrollments::of_course_in(&mut tx, s.id, course.course.id)
                .await?
                .is_some_and(|e| e.status != EnrollmentStatus::Stopped);
            // Never confirmed, and already asked to confirm this course.
            let asked = s.status == SubscriberStatus::Pending
                && db::deliveries::latest_confirmation(&mut tx, s.id, Some(course.course.id))
                    .await?
                    .is_some();
            if taking || asked || s.status == SubscriberStatus::Erased {
                return Err(AddError::AlreadySubscribed(new.email.to_string()));
            }
            s.id
        }
        None => {
            let inserted = db::subscribers::insert(
                &mut tx,
                new.email.as_str(),
                &new.name,
                new.timezone,
                SubscriberStatus::Pending,
                now_s,
            )
            .await;
            match inserted {
                Ok(id) => id,
                // Another request added the same address between the check and the insert.
                Err(e) if db::is_unique_violation(&e) => {
                    return Err(AddError::AlreadySubscribed(new.email.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    db::events::log(
        &mut tx,
        Some(id),
        actor,
        "added",
        &json!({"confirmed": confirmed, "course": course.course.slug}),
        now_s,
    )
    .await?;
    if confirmed {
        if let Some(s) = db::subscribers::by_id_in(&mut tx, id).await?
            && matches!(
                s.status,
                SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced
            )
        {
            // The caller holds fresh consent (a purchase, say): back in.
            db::subscribers::set_status(&mut tx, id, SubscriberStatus::Pending, now_s).await?;
        }
        confirm_in(&mut tx, &course, id, None, actor, now).await?;
    } else {
        queue_confirmation(&mut tx, id, course.course.id, None, now_s).await?;
    }
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(id)
}

/// The enrollments a change acts on: one course's, or (None) all of the person's.
async fn enrollments_of(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: Option<i64>,
) -> anyhow::Result<Vec<EnrollmentRow>> {
    let mut all = db::enrollments::for_subscriber_in(tx, subscriber_id).await?;
    if let Some(c) = course_id {
        all.retain(|e| e.course_id == c);
    }
    Ok(all)
}

/// Pauses one course (or all, with None): the queued lesson (if any) is withdrawn so
/// nothing more goes out, and the enrollment returns to the last lesson that actually left.
pub async fn pause(
    app: &App,
    subscriber_id: i64,
    course_id: Option<i64>,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut tx = app.db.begin_write().await?;
    let done = pause_in(&mut tx, subscriber_id, course_id, actor, now).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`pause`] inside the caller's transaction.
pub(crate) async fn pause_in(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: Option<i64>,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let mut withdrawn = 0;
    let mut paused = Vec::new();
    for e in enrollments_of(tx, subscriber_id, course_id).await? {
        if e.status == EnrollmentStatus::Active {
            withdrawn += db::deliveries::withdraw_queued_for_enrollment(tx, e.id).await?;
            let position = db::enrollments::last_delivered_position(tx, e.id).await?;
            db::enrollments::set_status(tx, e.id, EnrollmentStatus::Paused, position, None, now_s)
                .await?;
            paused.push(e.course_id);
        }
    }
    if paused.is_empty() {
        return Ok(false);
    }
    db::events::log(
        tx,
        Some(subscriber_id),
        actor,
        "paused",
        &json!({"withdrawn": withdrawn, "courses": paused}),
        now_s,
    )
    .await?;
    Ok(true)
}

/// Resumes one course (or all) where they stopped: the next lesson at its next window, with
/// no burst of the lessons that would have come while paused.
pub async fn resume(
    app: &App,
    subscriber_id: i64,
    course_id: Option<i64>,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut tx = app.db.begin_write().await?;
    let done = resume_in(&mut tx, subscriber_id, course_id, actor, now).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`resume`] inside the caller's transaction.
pub(crate) async fn resume_in(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: Option<i64>,
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
    let mut resumed = Vec::new();
    for e in enrollments_of(tx, s.id, course_id).await? {
        if e.status == EnrollmentStatus::Paused {
            let course = CourseLessons::load(tx, e.course_id).await?;
            let due = course
                .syllabus(e.pace())
                .resume_due(e.position, now, s.timezone)
                .timestamp();
            db::enrollments::set_status(
                tx,
                e.id,
                EnrollmentStatus::Active,
                e.position,
                Some(due),
                now_s,
            )
            .await?;
            resumed.push(e.course_id);
        }
    }
    if resumed.is_empty() {
        return Ok(false);
    }
    db::events::log(
        tx,
        Some(s.id),
        actor,
        "resumed",
        &json!({"courses": resumed}),
        now_s,
    )
    .await?;
    Ok(true)
}

/// What asking for the next lesson now did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextNow {
    /// The next lesson is queued to go at once.
    Queued,
    /// Nothing is left to send in this course.
    Finished,
    /// Not taking this course (left it, or never in it).
    NotTaking,
}

/// Sends the next lesson of one course now (the preferences page's button and the NEXT
/// reply command): a paused course resumes, a lesson waiting for its day or for a reply
/// goes at once, and the daily limit does not hold back a lesson the person asked for.
pub async fn next_now(
    app: &App,
    enrollment_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<NextNow> {
    let mut tx = app.db.begin_write().await?;
    let done = next_now_in(&mut tx, enrollment_id, actor, now).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`next_now`] inside the caller's transaction.
pub(crate) async fn next_now_in(
    tx: &mut Tx,
    enrollment_id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<NextNow> {
    let now_s = now.timestamp();
    let Some(e) = db::enrollments::by_id_in(tx, enrollment_id).await? else {
        return Ok(NextNow::NotTaking);
    };
    let Some(s) = db::subscribers::by_id_in(tx, e.subscriber_id).await? else {
        return Ok(NextNow::NotTaking);
    };
    if s.status != SubscriberStatus::Active || !e.status.is_taking() {
        return Ok(if e.status == EnrollmentStatus::Completed {
            NextNow::Finished
        } else {
            NextNow::NotTaking
        });
    }
    let outcome = if db::deliveries::hurry_queued_lesson(tx, e.id, now_s).await? {
        NextNow::Queued
    } else {
        let course = CourseLessons::load(tx, e.course_id).await?;
        match crate::schedule::next_published(&course.lessons, e.position) {
            None => NextNow::Finished,
            Some(lesson) => {
                let row = db::deliveries::NewLesson {
                    subscriber_id: s.id,
                    enrollment_id: e.id,
                    lesson_id: lesson.id,
                    course_id: e.course_id,
                };
                db::enrollments::set_status(
                    tx,
                    e.id,
                    EnrollmentStatus::Active,
                    e.position,
                    None,
                    now_s,
                )
                .await?;
                db::enrollments::advance(tx, &[e.id], lesson.position, now_s).await?;
                db::deliveries::enqueue_lessons(tx, &[row], now_s).await?;
                NextNow::Queued
            }
        }
    };
    if outcome == NextNow::Queued {
        db::events::log(
            tx,
            Some(s.id),
            actor,
            "asked_next",
            &json!({"course": e.course_id}),
            now_s,
        )
        .await?;
    }
    Ok(outcome)
}

/// Sets or clears (None) a subscriber's own pacing for one course; the next lesson's due
/// time moves to the new window.
pub async fn set_pace(
    app: &App,
    enrollment_id: i64,
    pace: Option<Pace>,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(e) = db::enrollments::by_id_in(&mut tx, enrollment_id).await? else {
        return Ok(false);
    };
    let Some(s) = db::subscribers::by_id_in(&mut tx, e.subscriber_id).await? else {
        return Ok(false);
    };
    db::enrollments::set_pace(&mut tx, e.id, pace, now_s).await?;
    let course = CourseLessons::load(&mut tx, e.course_id).await?;
    if e.status == EnrollmentStatus::Active
        && let (Some(_), Some(sent)) = (e.next_due_at, e.last_sent_at)
        && let Some(sent) = Utc.timestamp_opt(sent, 0).single()
        && let Some(due) = course
            .syllabus(pace)
            .replan(e.position, sent, now, s.timezone)
    {
        db::enrollments::set_next_due(&mut tx, e.id, Some(due.timestamp()), now_s).await?;
    }
    db::events::log(
        &mut tx,
        Some(s.id),
        actor,
        "pace_changed",
        &json!({"course": course.course.slug, "pace": pace}),
        now_s,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Unsubscribes at once: from one course (the one-click link of its mails: that course's
/// goodbye, the others go on), or with None from everything (one goodbye, nothing more).
pub async fn unsubscribe(
    app: &App,
    subscriber_id: i64,
    course_id: Option<i64>,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut tx = app.db.begin_write().await?;
    let done = unsubscribe_in(&mut tx, subscriber_id, course_id, actor, now).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`unsubscribe`] inside the caller's transaction.
pub(crate) async fn unsubscribe_in(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: Option<i64>,
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
    let Some(course_id) = course_id else {
        let was_taking = stop(tx, &s, SubscriberStatus::Unsubscribed, now_s).await?;
        if s.status.is_enrolled() {
            let course = was_taking.first().copied();
            db::deliveries::enqueue_mail(
                tx,
                s.id,
                course,
                DeliveryKind::Goodbye,
                &json!({"all": true}),
                now_s,
            )
            .await?;
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
        crate::webhooks::events::subscriber_unsubscribed(tx, s.id, None, &was_taking, now).await?;
        return Ok(true);
    };
    let Some(e) = db::enrollments::of_course_in(tx, s.id, course_id).await? else {
        return Ok(false);
    };
    if e.status == EnrollmentStatus::Stopped {
        return Ok(false);
    }
    stop_enrollment(tx, &e, now_s).await?;
    if s.status.is_enrolled() && e.status.is_taking() {
        db::deliveries::enqueue_mail(
            tx,
            s.id,
            Some(course_id),
            DeliveryKind::Goodbye,
            &json!({}),
            now_s,
        )
        .await?;
    }
    db::events::log(
        tx,
        Some(s.id),
        actor,
        "left_course",
        &json!({"course": course_id, "was": e.status}),
        now_s,
    )
    .await?;
    let left: &[i64] = if e.status.is_taking() {
        &[course_id]
    } else {
        &[]
    };
    crate::webhooks::events::subscriber_unsubscribed(tx, s.id, Some(course_id), left, now).await?;
    Ok(true)
}

async fn stop_enrollment(tx: &mut Tx, e: &EnrollmentRow, now_s: i64) -> anyhow::Result<()> {
    db::deliveries::withdraw_queued_for_enrollment(tx, e.id).await?;
    let position = db::enrollments::last_delivered_position(tx, e.id).await?;
    db::enrollments::set_status(tx, e.id, EnrollmentStatus::Stopped, position, None, now_s).await
}

/// Out of everything: the person's status, and every course they were taking stopped.
/// Returns the courses they were taking.
async fn stop(
    tx: &mut Tx,
    s: &db::subscribers::SubscriberRow,
    status: SubscriberStatus,
    now_s: i64,
) -> anyhow::Result<Vec<i64>> {
    db::subscribers::set_status(tx, s.id, status, now_s).await?;
    db::deliveries::withdraw_queued_lessons(tx, s.id).await?;
    let mut taking = Vec::new();
    for e in db::enrollments::for_subscriber_in(tx, s.id).await? {
        if e.status.is_taking() {
            stop_enrollment(tx, &e, now_s).await?;
            taking.push(e.course_id);
        }
    }
    Ok(taking)
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
    crate::webhooks::events::delivery_bounced(
        tx,
        subscriber_id,
        delivery_id,
        hard,
        code,
        dead,
        now,
    )
    .await?;
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

/// Changes the time zone; every course's next due time is recomputed in the new zone.
pub(crate) async fn set_timezone(
    app: &App,
    subscriber_id: i64,
    tz: Timezone,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let now_s = now.timestamp();
    let mut tx = app.db.begin_write().await?;
    let Some(s) = db::subscribers::by_id_in(&mut tx, subscriber_id).await? else {
        return Ok(());
    };
    db::subscribers::update_profile(&mut tx, s.id, &s.name, tz.name()).await?;
    for e in db::enrollments::for_subscriber_in(&mut tx, s.id).await? {
        if let (Some(_), Some(sent)) = (e.next_due_at, e.last_sent_at)
            && let Some(sent) = Utc.timestamp_opt(sent, 0).single()
        {
            let course = CourseLessons::load(&mut tx, e.course_id).await?;
            if let Some(due) = course.syllabus(e.pace()).replan(e.position, sent, now, tz) {
                db::enrollments::set_next_due(&mut tx, e.id, Some(due.timestamp()), now_s).await?;
            }
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

/// An evergreen course's lesson published after people reached the end: everyone who
/// finished (and is still with us) is active again, the new lesson due at its next window
/// in their pacing. A course that is not evergreen leaves them completed.
pub(crate) async fn release_caught_up(
    tx: &mut Tx,
    course_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let course = CourseLessons::load(tx, course_id).await?;
    if !course.course.is_evergreen() {
        return Ok(0);
    }
    let now_s = now.timestamp();
    let mut released = 0;
    for (e, tz) in db::enrollments::completed_in_course(tx, course_id).await? {
        let syllabus = course.syllabus(e.pace());
        if syllabus.next_after(e.position).is_none() {
            continue;
        }
        let tz = Timezone::parse(&tz)?;
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
        released += 1;
    }
    Ok(released)
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
    db::answers::delete_for_subscriber(&mut tx, s.id).await?;
    db::replies::delete_for_subscriber(&mut tx, s.id).await?;
    db::deliveries::drop_unsent(&mut tx, s.id).await?;
    crate::webhooks::events::forget_subscriber(&mut tx, s.id).await?;
    db::events::log(&mut tx, Some(s.id), actor, "erased", &json!({}), now_s).await?;
    tx.commit().await?;
    Ok(true)
}
