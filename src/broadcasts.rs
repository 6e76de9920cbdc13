//! Broadcasts: one mail to a course's readers (a launch, a correction), written in Markdown
//! with the lesson body's variables and sent through the outbox like a lesson: one delivery
//! per person (`UNIQUE (broadcast_id, subscriber_id)`), leases, retries and rate limits.
//!
//! Whom: the course's enrollments in the chosen state (`active`, `completed`, or
//! `everyone` of both); nobody paused, stopped, unsubscribed, bounced or erased, checked when
//! the rows are made and again when each mail leaves. When: now, at a moment (`--at`), or
//! at a wall-clock time on each reader's own clock (`--local-time HH:MM [--date]`).
//! Nobody gets two broadcasts of one course on one local day: a second moves to the same
//! time the next day. Broadcasts do not count toward `max_lessons_per_day`.
//!
//! The CLI, the admin pages and the API all call these functions.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::app::App;
use crate::curriculum;
use crate::db::{self, broadcasts::BroadcastRow, courses::CourseRow};
use crate::domain::{Audience, EmailAddress, InvalidInput, Timezone};
use crate::mailer::Outgoing;
use crate::render::RenderedMail;
use crate::schedule::local_time;

/// When a broadcast goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    At(DateTime<Utc>),
    /// This wall-clock time on each reader's clock: on `date`, or the next one after the
    /// broadcast is made.
    Local {
        time: NaiveTime,
        date: Option<NaiveDate>,
    },
}

impl When {
    /// Reads `--at`, `--local-time` and `--date` (or the same form and API fields), naming
    /// the one that is wrong. Empty strings count as absent.
    pub fn parse(
        at: Option<&str>,
        local_time: Option<&str>,
        date: Option<&str>,
    ) -> Result<When, InvalidInput> {
        fn given(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let (at, local, date) = (given(at), given(local_time), given(date));
        match (at, local) {
            (Some(_), Some(_)) => Err(InvalidInput::new(
                "at",
                "give either at (a moment) or local_time (an hour on each reader's clock), not both",
            )),
            (Some(at), None) => {
                if date.is_some() {
                    return Err(InvalidInput::new(
                        "date",
                        "date goes with local_time, not with at",
                    ));
                }
                DateTime::parse_from_rfc3339(at)
                    .map(|t| When::At(t.with_timezone(&Utc)))
                    .map_err(|_| {
                        InvalidInput::new(
                            "at",
                            format!("{at:?} is not an RFC 3339 time (e.g. 2026-12-24T09:00:00Z)"),
                        )
                    })
            }
            (None, Some(local)) => {
                let time = parse_hh_mm(local)?;
                let date = date
                    .map(|d| {
                        NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                            InvalidInput::new("date", format!("{d:?} is not a date YYYY-MM-DD"))
                        })
                    })
                    .transpose()?;
                Ok(When::Local { time, date })
            }
            (None, None) => match date {
                Some(_) => Err(InvalidInput::new("date", "date needs local_time (HH:MM)")),
                None => Ok(When::Now),
            },
        }
    }
}

/// `HH:MM`, 24-hour, two digits each.
fn parse_hh_mm(text: &str) -> Result<NaiveTime, InvalidInput> {
    let bad = || {
        InvalidInput::new(
            "local_time",
            format!("{text:?} is not a time HH:MM (24-hour, e.g. 09:30)"),
        )
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

/// A broadcast as written: checked by [`Draft::check`].
#[derive(Debug, Clone)]
pub struct Draft {
    pub subject: String,
    pub body: String,
    pub audience: Audience,
    pub when: When,
}

impl Draft {
    /// The subject is one non-empty line; the body passes the lesson body's rules (less the
    /// lesson's variables). Returns every problem, each naming its field (and body line).
    pub fn check(&self) -> Vec<InvalidInput> {
        let mut problems = Vec::new();
        if self.subject.trim().is_empty() {
            problems.push(InvalidInput::new("subject", "subject must not be empty"));
        } else if self.subject.contains(['\r', '\n']) {
            problems.push(InvalidInput::new("subject", "subject must be one line"));
        }
        for p in curriculum::check_broadcast_body(&self.body) {
            problems.push(InvalidInput::new(
                "body",
                format!("line {}: {}", p.line, p.message),
            ));
        }
        problems
    }
}

/// Why a broadcast was not made or changed. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("no broadcast {0}")]
    NotFound(i64),
    /// Cancelling one that has already gone out, or was cancelled.
    #[error("broadcast {id} cannot be cancelled: {why}")]
    Finished { id: i64, why: &'static str },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for BroadcastError {
    fn from(e: sqlx::Error) -> Self {
        BroadcastError::Other(e.into())
    }
}

/// Makes a broadcast; its mail is queued by the scheduler's next pass at its time.
pub async fn create(
    app: &App,
    course: &CourseRow,
    draft: &Draft,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<BroadcastRow, BroadcastError> {
    if let Some(first) = draft.check().into_iter().next() {
        return Err(first.into());
    }
    // The body renders for a reader now, or it is refused before anything is stored.
    sample(app, course, &draft.subject, &draft.body)
        .map_err(|e| InvalidInput::new("body", format!("{e:#}")))?;
    let (send_at, local_time, local_date) = match draft.when {
        When::Now => (Some(now.timestamp()), None, None),
        When::At(t) => (Some(t.timestamp()), None, None),
        When::Local { time, date } => (
            None,
            Some(time.format("%H:%M").to_string()),
            date.map(|d| d.format("%Y-%m-%d").to_string()),
        ),
    };
    let row = db::broadcasts::NewRow {
        course_id: course.id,
        subject: draft.subject.trim(),
        body: &draft.body,
        audience: draft.audience,
        send_at,
        local_time: local_time.as_deref(),
        local_date: local_date.as_deref(),
        created_by: actor,
    };
    let mut tx = app.db.begin_write().await?;
    let id = db::broadcasts::insert(&mut tx, &row, now.timestamp()).await?;
    db::events::log(
        &mut tx,
        None,
        actor,
        "broadcast_created",
        &serde_json::json!({"broadcast": id, "course": course.slug}),
        now.timestamp(),
    )
    .await?;
    tx.commit().await?;
    db::broadcasts::by_id(&app.db, id)
        .await?
        .ok_or(BroadcastError::NotFound(id))
}

/// Stops a broadcast: nothing more of it leaves. Mails already sent stay sent.
pub async fn cancel(
    app: &App,
    id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<u64, BroadcastError> {
    let b = db::broadcasts::by_id(&app.db, id)
        .await?
        .ok_or(BroadcastError::NotFound(id))?;
    if b.cancelled_at.is_some() {
        return Err(BroadcastError::Finished {
            id,
            why: "it was cancelled already",
        });
    }
    let figures = db::broadcasts::figures(&app.db, id).await?;
    if b.queued_at.is_some() && figures.queued == 0 {
        return Err(BroadcastError::Finished {
            id,
            why: "every mail of it has gone out",
        });
    }
    let mut tx = app.db.begin_write().await?;
    let (_, stopped) = db::broadcasts::cancel(&mut tx, id, now.timestamp()).await?;
    db::events::log(
        &mut tx,
        None,
        actor,
        "broadcast_cancelled",
        &serde_json::json!({"broadcast": id, "not_sent": stopped}),
        now.timestamp(),
    )
    .await?;
    tx.commit().await?;
    Ok(stopped)
}

/// The moment a broadcast's mail is queued: its time, or for a dated local time the moment
/// that time comes in the earliest time zone (every reader's due time is then still ahead).
pub fn queue_at(b: &BroadcastRow) -> Option<DateTime<Utc>> {
    if let Some(at) = b.send_at {
        return DateTime::from_timestamp(at, 0);
    }
    let time = parse_hh_mm(b.local_time.as_deref()?).ok()?;
    match b.local_date.as_deref() {
        Some(d) => {
            let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
            Some(local_time::on_date(date, time, local_time::EARLIEST))
        }
        None => DateTime::from_timestamp(b.created_at, 0),
    }
}

/// When a reader in `tz` gets it.
fn due_in(b: &BroadcastRow, tz: Timezone) -> anyhow::Result<DateTime<Utc>> {
    use anyhow::Context;
    if let Some(at) = b.send_at {
        return DateTime::from_timestamp(at, 0).context("broadcast time out of range");
    }
    let time = parse_hh_mm(b.local_time.as_deref().unwrap_or_default())?;
    Ok(match b.local_date.as_deref() {
        Some(d) => {
            let date = NaiveDate::parse_from_str(d, "%Y-%m-%d")?;
            local_time::on_date(date, time, tz.tz())
        }
        None => {
            let made = DateTime::from_timestamp(b.created_at, 0).context("time out of range")?;
            local_time::next(time, tz.tz(), made)
        }
    })
}

/// The scheduler's part: queues the mail of every broadcast whose time has come, one row per
/// reader, in one transaction per broadcast. Returns the rows made.
pub async fn enqueue_due(app: &App, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let mut made = 0;
    let mut tx = app.db.begin_write().await?;
    let waiting = db::broadcasts::lock_waiting(&app.db, &mut tx).await?;
    let now_s = now.timestamp();
    for b in waiting {
        if queue_at(&b).is_none_or(|t| t > now) {
            continue;
        }
        // Local days reach 26 hours from UTC, and a dated broadcast is queued up to a day
        // ahead: a broadcast whose last mail left more than three days ago shares no day.
        let overlap = db::broadcasts::others_may_overlap(&mut tx, &b, now_s - 3 * 86_400).await?;
        for (tz, people) in db::broadcasts::audience_zones(&mut tx, b.course_id, b.audience).await?
        {
            let due = due_in(&b, tz)?.max(now);
            let mut in_zone = 0;
            // One broadcast of a course per person and local day: whoever has one that day
            // gets this one at the same time the next day (tried for a week, then sent anyway
            // rather than dropped).
            for shift in 0..=7 {
                if in_zone >= people as u64 {
                    break;
                }
                let at = local_time::shifted(due, tz.tz(), shift);
                let (start, end) = local_time::day_bounds(at, tz.tz());
                in_zone += db::broadcasts::enqueue_zone(
                    &mut tx,
                    &b,
                    tz,
                    at.timestamp(),
                    (start.timestamp(), end.timestamp()),
                    overlap && shift < 7,
                    now_s,
                )
                .await?;
            }
            made += in_zone;
        }
        db::broadcasts::mark_queued(&mut tx, b.id, now_s).await?;
        // An audience of nobody is sent at once.
        finish_if_done(&mut tx, b.id, now).await?;
        tracing::info!(broadcast = b.id, "broadcast queued");
    }
    tx.commit().await?;
    Ok(made)
}

/// After a mail of broadcast `id` left or failed: once none is queued, the broadcast is
/// sent, and `broadcast.sent` goes to the webhooks in the same transaction.
pub(crate) async fn finish_if_done(
    tx: &mut crate::db::Tx,
    id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if let Some((course_id, subject, sent)) =
        db::broadcasts::finish_if_done(tx, id, now.timestamp()).await?
    {
        crate::webhooks::events::broadcast_sent(tx, id, course_id, &subject, sent as u64, now)
            .await?;
    }
    Ok(())
}

/// A broadcast as its pages show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct View {
    #[serde(flatten)]
    pub row: BroadcastRow,
    pub course: String,
    /// scheduled, sending, sent or cancelled.
    #[schema(value_type = String, pattern = "^(scheduled|sending|sent|cancelled)$")]
    pub state: &'static str,
    /// When its mail is queued (for a local time, when the first readers' hour comes).
    pub queue_at: Option<i64>,
    pub figures: db::broadcasts::Figures,
    /// How many it would reach now, while it is not yet queued.
    pub audience_now: Option<i64>,
}

pub async fn view(app: &App, b: BroadcastRow) -> anyhow::Result<View> {
    let course = db::courses::by_id(&app.db, b.course_id).await?;
    let figures = db::broadcasts::figures(&app.db, b.id).await?;
    let state = match (b.cancelled_at, b.queued_at, b.sent_at) {
        (Some(_), _, _) => "cancelled",
        (None, None, _) => "scheduled",
        (None, Some(_), None) => "sending",
        (None, Some(_), Some(_)) => "sent",
    };
    let audience_now = match b.queued_at {
        None if b.cancelled_at.is_none() => {
            Some(db::broadcasts::audience_count(&app.db, b.course_id, b.audience).await?)
        }
        _ => None,
    };
    Ok(View {
        queue_at: queue_at(&b).map(|t| t.timestamp()),
        course: course.slug,
        state,
        figures,
        audience_now,
        row: b,
    })
}

pub async fn find(app: &App, id: i64) -> Result<View, BroadcastError> {
    let b = db::broadcasts::by_id(&app.db, id)
        .await?
        .ok_or(BroadcastError::NotFound(id))?;
    Ok(view(app, b).await?)
}

/// The broadcast rendered for a sample reader: the live preview, and the check at creation.
pub fn sample(
    app: &App,
    course: &CourseRow,
    subject: &str,
    body: &str,
) -> anyhow::Result<RenderedMail> {
    let reader = db::subscribers::SubscriberRow::preview(
        "sam@example.org",
        "Sam Sample",
        app.config.default_timezone(),
    );
    let ctx = app.mail_context(course, &reader, None);
    app.renderer.broadcast(subject, body, &ctx)
}

/// Sends the broadcast to one address now, as a test: not a delivery, so nothing to retry.
pub async fn send_test(
    app: &App,
    id: i64,
    to: &EmailAddress,
    to_name: &str,
    now: DateTime<Utc>,
) -> Result<(), BroadcastError> {
    let b = db::broadcasts::by_id(&app.db, id)
        .await?
        .ok_or(BroadcastError::NotFound(id))?;
    let course = db::courses::by_id(&app.db, b.course_id).await?;
    let mail = sample(app, &course, &b.subject, &b.body)?;
    let out = Outgoing {
        file_label: format!("test-broadcast-{id}-{}", now.timestamp()),
        to_name: to_name.to_owned(),
        to: to.to_string(),
        subject: format!("[Test] {}", mail.subject),
        html: mail.html,
        text: mail.text,
        message_id: format!(
            "test.broadcast.{id}.{}@{}",
            now.timestamp_micros(),
            app.config.mail.reply_domain
        ),
        reply_to: None,
        unsubscribe: None,
        course: Some(course.slug.clone()),
        lesson: None,
        broadcast: Some(id),
        from_name: Some(course.from_name.clone()),
        from_address: Some(course.from_address.clone()).filter(|a| !a.is_empty()),
        list_id: None,
        answer: None,
    };
    app.mailer
        .send(&out)
        .await
        .map_err(|e| anyhow::anyhow!("the test mail was not sent: {e}"))?;
    Ok(())
}

/// When a broadcast goes, in words for the CLI and the admin pages.
pub fn describe_when(b: &BroadcastRow) -> String {
    match (&b.local_time, &b.local_date, b.send_at) {
        (Some(t), Some(d), _) => format!("{d} at {t}, each reader's local time"),
        (Some(t), None, _) => format!("the next {t}, each reader's local time"),
        (None, _, Some(at)) => DateTime::from_timestamp(at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_read_naming_the_wrong_field() {
        assert_eq!(When::parse(None, None, None).unwrap(), When::Now);
        assert_eq!(
            When::parse(None, Some("09:30"), Some("2026-12-24")).unwrap(),
            When::Local {
                time: NaiveTime::from_hms_opt(9, 30, 0).unwrap(),
                date: NaiveDate::from_ymd_opt(2026, 12, 24)
            }
        );
        for (at, local, date, field) in [
            (Some("tomorrow"), None, None, "at"),
            (Some("2026-12-24T09:00:00Z"), Some("09:00"), None, "at"),
            (None, Some("9:30"), None, "local_time"),
            (None, Some("24:00"), None, "local_time"),
            (None, Some("09:60"), None, "local_time"),
            (None, Some("0930"), None, "local_time"),
            (None, Some("09:30"), Some("24/12/2026"), "date"),
            (None, None, Some("2026-12-24"), "date"),
        ] {
            assert_eq!(
                When::parse(at, local, date).unwrap_err().field,
                field,
                "{at:?} {local:?} {date:?}"
            );
        }
    }

    #[test]
    fn a_draft_names_its_subject_and_body_problems() {
        let draft = |subject: &str, body: &str| Draft {
            subject: subject.into(),
            body: body.into(),
            audience: Audience::Active,
            when: When::Now,
        };
        assert!(
            draft("Lesson 4 was fixed", "Hi {{ subscriber.first_name }}.")
                .check()
                .is_empty()
        );
        let fields = |d: Draft| d.check().iter().map(|p| p.field).collect::<Vec<_>>();
        assert_eq!(fields(draft(" ", "Hi")), ["subject"]);
        assert_eq!(fields(draft("a\nb", "Hi")), ["subject"]);
        assert_eq!(fields(draft("S", "")), ["body"]);
        let lesson_var = draft("S", "This is {{ lesson.title }}").check();
        assert_eq!(lesson_var.len(), 1);
        assert!(
            lesson_var[0].message.contains("lesson.title"),
            "{lesson_var:?}"
        );
        assert_eq!(fields(draft("S", "Hi {{ nobody }}")), ["body"]);
    }
}
