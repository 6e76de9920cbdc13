//! The sender: claim due deliveries with a lease, render, send, then record in a short
//! transaction. No transaction is open while SMTP talks (SQLite has one writer).
//!
//! At-least-once: a crash between the server's 250 and the commit leaves the row queued; its
//! lease runs out and it is sent again, with the same derived Message-ID.

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::Rng;

use super::plan::due_after_send;
use crate::app::App;
use crate::db::{self, deliveries::Claimed, lessons::Lesson};
use crate::domain::Timezone;
use crate::mailer::{Outgoing, SendError};
use crate::render::{LessonVars, MailKind};

/// What a sending pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendReport {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

enum Outcome {
    Sent,
    Retried,
    Failed,
}

/// Delay before attempt `attempts + 1`: one minute doubling up to six hours, with jitter
/// (0.5x to 1.5x) so a recovering server is not hit by every retry at once.
pub fn backoff_seconds(attempts: i64) -> i64 {
    let base = 60i64
        .saturating_mul(1 << attempts.clamp(1, 20).saturating_sub(1))
        .min(6 * 3600);
    let jitter: f64 = rand::thread_rng().gen_range(0.5..1.5);
    ((base as f64) * jitter) as i64
}

/// Sends everything due at `now`, batch after batch, until nothing is claimable.
pub async fn send_due(app: &App, now: DateTime<Utc>) -> anyhow::Result<SendReport> {
    let mut report = SendReport::default();
    let concurrency = app.config.smtp.pool_size.max(1) as usize;
    loop {
        if app.is_stopping() {
            return Ok(report);
        }
        let claimed = db::deliveries::claim(
            &app.db,
            now.timestamp(),
            &app.worker_id,
            app.config.schedule.lease_seconds,
            i64::from(app.config.schedule.batch_size),
        )
        .await?;
        if claimed.is_empty() {
            return Ok(report);
        }
        let course = app.course().await?;
        let lessons = db::lessons::list(&app.db, course.id).await?;
        let ctx = BatchContext {
            app,
            course: &course,
            lessons: &lessons,
            now,
        };
        let outcomes: Vec<anyhow::Result<Outcome>> = futures::stream::iter(claimed)
            .map(|d| {
                let ctx = &ctx;
                async move { ctx.deliver(&d).await }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok(Outcome::Sent) => report.sent += 1,
                Ok(Outcome::Retried) => report.retried += 1,
                Ok(Outcome::Failed) => report.failed += 1,
                // A database error while recording: the lease will expire and the row comes
                // back; log and go on with the rest of the batch.
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "recording a delivery failed");
                    report.retried += 1;
                }
            }
        }
    }
}

struct BatchContext<'a> {
    app: &'a App,
    course: &'a db::courses::CourseRow,
    lessons: &'a [Lesson],
    now: DateTime<Utc>,
}

impl BatchContext<'_> {
    async fn deliver(&self, d: &Claimed) -> anyhow::Result<Outcome> {
        let app = self.app;
        let subscriber = db::subscribers::by_id(&app.db, d.subscriber_id)
            .await?
            .context("delivery without subscriber")?;
        let (outgoing, lesson) = match self.compose(d, &subscriber) {
            Ok(x) => x,
            Err(e) => {
                // A mail that cannot be rendered will not render on retry either: fail it
                // visibly with the reason instead of looping.
                let mut tx = app.db.begin_write().await?;
                db::deliveries::mark_failed(
                    &mut tx,
                    d.id,
                    &app.worker_id,
                    &format!("render: {e:#}"),
                    self.now.timestamp(),
                )
                .await?;
                tx.commit().await?;
                tracing::error!(delivery = d.id, error = %format!("{e:#}"), "cannot render a mail");
                return Ok(Outcome::Failed);
            }
        };
        let started = std::time::Instant::now();
        let result = app.mailer.send(&outgoing).await;
        crate::metrics::observe_send(started.elapsed(), result.as_ref().err());
        match result {
            Ok(()) => {
                self.record_sent(d, &subscriber, lesson).await?;
                Ok(Outcome::Sent)
            }
            Err(SendError::Transient(reason)) => {
                let age = self.now.timestamp() - d.created_at;
                if age > app.config.schedule.retry_max_age_hours * 3600 {
                    let why = format!(
                        "gave up after {} attempts over {}h: {reason}",
                        d.attempts,
                        age / 3600
                    );
                    self.record_failure(d, &subscriber, lesson, &why, false, "4.0.0")
                        .await?;
                    return Ok(Outcome::Failed);
                }
                let retry_at = self.now.timestamp() + backoff_seconds(d.attempts);
                tracing::warn!(delivery = d.id, attempts = d.attempts, %reason, retry_at, "temporary failure, will retry");
                db::deliveries::retry_later(&app.db, d.id, &app.worker_id, retry_at, &reason)
                    .await?;
                Ok(Outcome::Retried)
            }
            Err(SendError::Permanent { code, message }) => {
                let why = format!("{code} {message}");
                tracing::warn!(delivery = d.id, %why, "permanent failure");
                let hard = code.starts_with('5');
                self.record_failure(d, &subscriber, lesson, &why, hard, &code)
                    .await?;
                Ok(Outcome::Failed)
            }
        }
    }

    /// Renders the mail for a delivery; for a lesson also returns it (with the revision used).
    fn compose<'l>(
        &'l self,
        d: &Claimed,
        s: &db::subscribers::SubscriberRow,
    ) -> anyhow::Result<(Outgoing, Option<&'l Lesson>)> {
        let app = self.app;
        let ctx = app.mail_context(self.course, s);
        let mut lesson_ref = None;
        let rendered = match d.kind.as_str() {
            "lesson" => {
                let lesson = self
                    .lessons
                    .iter()
                    .find(|l| Some(l.id) == d.lesson_id)
                    .context("the lesson of this delivery no longer exists")?;
                let published: Vec<&Lesson> =
                    self.lessons.iter().filter(|l| l.is_published()).collect();
                let number = published
                    .iter()
                    .position(|l| l.id == lesson.id)
                    .map(|i| i + 1)
                    .unwrap_or(lesson.position as usize);
                let vars = LessonVars {
                    title: lesson.content.title.clone(),
                    number,
                    of: published.len(),
                    phase: lesson.content.phase.label().to_owned(),
                };
                lesson_ref = Some(lesson);
                app.renderer.lesson(&lesson.content, &vars, &ctx)?
            }
            "confirm" => app.renderer.mail(
                MailKind::Confirm,
                &ctx,
                minijinja::context! { confirm_url => app.confirm_url(s.id) },
            )?,
            "welcome" => {
                let payload: serde_json::Value =
                    serde_json::from_str(&d.payload).unwrap_or_default();
                let when = payload["first_lesson_at"]
                    .as_str()
                    .unwrap_or("soon")
                    .to_owned();
                app.renderer.mail(
                    MailKind::Welcome,
                    &ctx,
                    minijinja::context! { first_lesson_at => when },
                )?
            }
            "goodbye" => app
                .renderer
                .mail(MailKind::Goodbye, &ctx, minijinja::context! {})?,
            "notice" => {
                let payload: serde_json::Value =
                    serde_json::from_str(&d.payload).unwrap_or_default();
                let title = payload["title"]
                    .as_str()
                    .unwrap_or("A note about your course")
                    .to_owned();
                let paragraphs: Vec<String> = payload["paragraphs"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                app.renderer.mail(
                    MailKind::Notice,
                    &ctx,
                    minijinja::context! { title => title, paragraphs => paragraphs },
                )?
            }
            other => anyhow::bail!("unknown delivery kind {other:?}"),
        };
        let is_lesson = lesson_ref.is_some();
        let label = match lesson_ref {
            Some(l) => format!("{:06}-lesson-{}", d.id, l.slug),
            None => format!("{:06}-{}", d.id, d.kind),
        };
        let unsubscribe = (d.kind != "confirm").then(|| {
            let mailto = format!("mailto:{}?subject=unsubscribe", app.reply_address(d.id));
            (ctx.links.unsubscribe.clone(), mailto)
        });
        Ok((
            Outgoing {
                file_label: label,
                to_name: s.name.clone(),
                to: s.email.clone(),
                subject: rendered.subject,
                html: rendered.html,
                text: rendered.text,
                message_id: app.message_id(d.id),
                reply_to: Some(app.reply_address(d.id)),
                unsubscribe,
                course: Some(self.course.slug.clone()),
                lesson: lesson_ref.map(|l| l.slug.clone()).filter(|_| is_lesson),
            },
            lesson_ref,
        ))
    }

    async fn record_sent(
        &self,
        d: &Claimed,
        s: &db::subscribers::SubscriberRow,
        lesson: Option<&Lesson>,
    ) -> anyhow::Result<()> {
        let app = self.app;
        let now = self.now.timestamp();
        let mut tx = app.db.begin_write().await?;
        let recorded = db::deliveries::mark_sent(
            &mut tx,
            d.id,
            &app.worker_id,
            lesson.map(|l| l.revision),
            now,
        )
        .await?;
        if recorded && let (Some(lesson), Some(enrollment_id)) = (lesson, d.enrollment_id) {
            let tz = Timezone::parse(&s.timezone).unwrap_or(Timezone::UTC);
            let (next_due, waiting) =
                due_after_send(self.lessons, &self.course.send_window, lesson, tz, self.now);
            db::enrollments::plan_next(
                &mut tx,
                enrollment_id,
                lesson.position,
                next_due,
                waiting,
                now,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Fails a delivery, counts the bounce and, for a lesson, plans the next one so a single
    /// failure does not stall the course (unless the address is now considered dead).
    async fn record_failure(
        &self,
        d: &Claimed,
        s: &db::subscribers::SubscriberRow,
        lesson: Option<&Lesson>,
        why: &str,
        hard: bool,
        code: &str,
    ) -> anyhow::Result<()> {
        let app = self.app;
        let now = self.now.timestamp();
        let mut tx = app.db.begin_write().await?;
        if !db::deliveries::mark_failed(&mut tx, d.id, &app.worker_id, why, now).await? {
            tx.commit().await?;
            return Ok(());
        }
        let bounced = crate::subscriptions::count_bounce(
            app,
            &mut tx,
            s.id,
            Some(d.id),
            hard,
            code,
            self.now,
        )
        .await?;
        if !bounced && let (Some(lesson), Some(enrollment_id)) = (lesson, d.enrollment_id) {
            let tz = Timezone::parse(&s.timezone).unwrap_or(Timezone::UTC);
            let (next_due, waiting) =
                due_after_send(self.lessons, &self.course.send_window, lesson, tz, self.now);
            db::enrollments::plan_next(
                &mut tx,
                enrollment_id,
                lesson.position,
                next_due,
                waiting,
                now,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
