//! The sender: claim due deliveries with a lease, render, send, then record in a short
//! transaction. No transaction is open while SMTP talks (SQLite has one writer).
//!
//! A batch is claimed in one statement (the next one while the current one is sent), its
//! recipients read in one query, and its mails sent over `[smtp] pool_size` connections at
//! once, within the rate limits. A recorder commits accepted mail as it comes, whatever has
//! queued since its last commit in one transaction; failures are recorded as they happen.
//!
//! At-least-once: a crash between the server's 250 and that commit leaves the rows queued;
//! their lease runs out and they are sent again, with the same derived Message-ID. A
//! connection holds at most `[schedule] unrecorded_per_connection` accepted mails whose
//! commit is not done (2 by default), so a killed worker sends at most that many per
//! connection twice, whatever the batch size (the next batch, claimed but not started, is
//! only delayed by the lease).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rand::Rng;

use super::relay::Gate;
use crate::app::App;
use crate::db::answers::AnswerRow;
use crate::db::broadcasts::BroadcastRow;
use crate::db::{
    self, courses::CourseRow, deliveries::Claimed, lessons::Lesson, subscribers::SubscriberRow,
};
use crate::domain::{Audience, DeliveryKind, EnrollmentStatus, Pace, SubscriberStatus, Timezone};
use crate::mailer::{Outgoing, SendError, Threading};
use crate::render::{Catalogue, MailKind};
use crate::schedule::Syllabus;

/// What a sending pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendReport {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    /// Handed back unsent because the SMTP server could not be reached.
    pub held: u64,
}

enum Outcome {
    /// Accepted by the server; handed to the recorder.
    Sent(SentMail),
    Retried,
    Failed,
    /// Not sent: the lease would have run out before its turn. Due again at once.
    Released(i64),
    /// Not sent: the SMTP server cannot be reached (see `relay`). Handed back untouched.
    Held(i64),
}

/// Delay before attempt `attempts + 1`: one minute doubling up to six hours, with jitter
/// (0.5x to 1.5x) so a recovering server is not hit by every retry at once.
pub(crate) fn backoff_seconds(attempts: i64) -> i64 {
    let base = 60i64
        .saturating_mul(1 << attempts.clamp(1, 20).saturating_sub(1))
        .min(6 * 3600);
    let jitter: f64 = rand::thread_rng().gen_range(0.5..1.5);
    ((base as f64) * jitter) as i64
}

/// A notice's title and paragraphs in the reader's words. A notice names its kind
/// (`{"notice": "paused"}`: `notice.paused.title` and `.body` in the catalogue), with any
/// `help` paragraphs (from the configuration) put before the kind's `closing`. One queued
/// by an older version carries its words already.
fn notice_words(
    words: &Catalogue,
    lang: &str,
    payload: &serde_json::Value,
) -> anyhow::Result<(String, Vec<String>)> {
    let texts = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let Some(kind) = payload["notice"].as_str() else {
        let title = match payload["title"].as_str() {
            Some(title) => title.to_owned(),
            None => words.format(lang, "notice.other.title", &[])?,
        };
        return Ok((title, texts(&payload["paragraphs"])));
    };
    let key = |part: &str| format!("notice.{kind}.{part}");
    let title = words
        .format(lang, &key("title"), &[])
        .with_context(|| format!("a notice of a kind this version does not know: {kind:?}"))?;
    let mut paragraphs = words.paragraphs(lang, &key("body"), &[])?;
    paragraphs.extend(texts(&payload["help"]));
    if words.text(lang, &key("closing")).is_some() {
        paragraphs.extend(words.paragraphs(lang, &key("closing"), &[])?);
    }
    Ok((title, paragraphs))
}

/// Sends everything due at `now`, batch after batch, until nothing is claimable. The next
/// batch is claimed while the current one is being sent, so the SMTP connections do not wait
/// for the database between batches; the current batch is recorded before the next is
/// sent, so what a crash can leave sent but unrecorded is at most one batch.
///
/// While the SMTP server is unreachable nothing is claimed; a batch that finds it gone hands
/// itself and the batch claimed ahead back, and the pass ends.
pub async fn send_due(app: &App, now: DateTime<Utc>) -> anyhow::Result<SendReport> {
    let mut report = SendReport::default();
    if let Gate::Closed(_) = app.relay.check(now) {
        return Ok(report);
    }
    let started = Instant::now();
    let mut current = claim_batch(app, now, started).await?;
    while let Some((batch, deadline)) = current {
        if app.is_stopping() {
            batch.release_all().await;
            return Ok(report);
        }
        let (outcomes, next) =
            tokio::join!(batch.send_all(deadline), claim_batch(app, now, started));
        if let Err(e) = batch.record(outcomes, &mut report).await {
            if let Ok(Some((ahead, _))) = &next {
                ahead.release_all().await;
            }
            return Err(e);
        }
        current = next?;
        if let Gate::Closed(_) = app.relay.check(now) {
            if let Some((ahead, _)) = &current {
                ahead.release_all().await;
            }
            return Ok(report);
        }
    }
    Ok(report)
}

/// Claims and loads the next batch, with the moment after which its mails are handed back
/// rather than started; None when nothing is due.
async fn claim_batch(
    app: &App,
    now: DateTime<Utc>,
    started: Instant,
) -> anyhow::Result<Option<(BatchContext, Instant)>> {
    // `now` is the pass's clock, fixed at its start; a pass can run for minutes. Leases run
    // from the real time of each claim, or a late batch would get a lease that had already
    // expired and another worker would claim (and send) the same rows.
    let lease = app.config.schedule.lease_seconds;
    let elapsed = started.elapsed().as_secs() as i64;
    let claimed = db::deliveries::claim(
        &app.db,
        now.timestamp(),
        &app.worker_id,
        lease + elapsed,
        i64::from(app.config.schedule.batch_size),
    )
    .await?;
    if claimed.is_empty() {
        return Ok(None);
    }
    // Sends that would start after half the lease are handed back instead: a slow server
    // must not let the lease run out under a mail being sent.
    let deadline = Instant::now() + Duration::from_secs(lease.max(2) as u64 / 2);
    let batch = BatchContext::load(app, claimed, now).await?;
    Ok(Some((batch, deadline)))
}

/// "Re: " and the subject of the reader's reply (which already has one, most often); the
/// course's title when their reply had none.
fn answer_subject(theirs: &str, course_title: &str) -> String {
    let theirs: String = theirs.chars().filter(|c| !c.is_control()).collect();
    let theirs = theirs.trim();
    if theirs.is_empty() {
        return format!("Re: {course_title}");
    }
    let lower = theirs.to_lowercase();
    if ["re:", "aw:", "sv:", "vs:", "réf:", "ref:", "r:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        theirs.to_owned()
    } else {
        format!("Re: {theirs}")
    }
}

/// A Message-ID we may repeat in a header: a real one (not the content hash that stands in
/// for a missing one), printable ASCII, no brackets or spaces.
fn usable_message_id(id: &str) -> bool {
    !id.starts_with("sha256:")
        && id.contains('@')
        && id.len() <= 250
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '<' && c != '>')
}

/// The mail a queued or sent delivery is (or would be) sent as at `now`, rendered from the
/// lesson's current revision: what the throughput benchmark sizes its baseline with.
/// Welcome and notice mails are rendered without their stored payload.
pub async fn compose_delivery(
    app: &App,
    delivery_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Outgoing> {
    let d = db::deliveries::by_id(&app.db, delivery_id)
        .await?
        .with_context(|| format!("no delivery {delivery_id}"))?;
    let claimed = Claimed {
        id: d.id,
        subscriber_id: d.subscriber_id,
        enrollment_id: d.enrollment_id,
        lesson_id: d.lesson_id,
        course_id: d.course_id,
        broadcast_id: d.broadcast_id,
        kind: d.kind,
        attempts: 0,
        payload: "{}".into(),
        created_at: now.timestamp(),
    };
    let batch = BatchContext::load(app, vec![claimed], now).await?;
    let subscriber = batch
        .subscribers
        .get(&d.subscriber_id)
        .context("delivery without subscriber")?;
    Ok(batch.compose(&batch.claimed[0], subscriber)?.0)
}

/// A lesson of the batch: its course and its index among that course's lessons.
type LessonRef = (i64, usize);

/// A mail the server accepted: its delivery, lesson, enrollment and reader's time zone.
type SentMail = (i64, Option<LessonRef>, Option<i64>, Timezone);

/// An accepted mail on its way to the recorder, and who to tell once its commit is done.
type ToRecord = (SentMail, tokio::sync::oneshot::Sender<bool>);

/// What sending a batch did: the outcomes other than accepted mail, how many accepted mails
/// the recorder committed, and the error that stopped it, if one did.
struct BatchSends {
    outcomes: Vec<anyhow::Result<Outcome>>,
    recorded: u64,
    failure: Option<anyhow::Error>,
}

/// A course of the batch with its lessons.
struct CourseLessons {
    row: CourseRow,
    lessons: Vec<Lesson>,
}

struct BatchContext {
    app: App,
    courses: HashMap<i64, CourseLessons>,
    /// The course a mail that names none speaks for (a goodbye from everything, say).
    fallback: i64,
    /// The subscriber's own pacing of the enrollments that have one.
    paces: HashMap<i64, Pace>,
    subscribers: HashMap<i64, SubscriberRow>,
    /// The broadcasts of the batch's broadcast mails, and where their readers stand.
    broadcasts: HashMap<i64, BroadcastRow>,
    /// The authors' answers of the batch's answer mails, by delivery.
    answers: HashMap<i64, AnswerRow>,
    enrollment_status: HashMap<i64, EnrollmentStatus>,
    claimed: Vec<Claimed>,
    now: DateTime<Utc>,
}

impl BatchContext {
    fn syllabus(&self, course_id: i64, enrollment_id: Option<i64>) -> Syllabus<'_> {
        let c = &self.courses[&course_id];
        let pace = enrollment_id.and_then(|e| self.paces.get(&e).copied());
        Syllabus::new(&c.lessons, &c.row.send_window, &c.row.phases).paced(pace)
    }

    fn lesson(&self, (course, index): LessonRef) -> &Lesson {
        &self.courses[&course].lessons[index]
    }

    /// The course a delivery belongs to (a lesson's, else the one it names, else the
    /// fallback), and for a lesson where it is in that course.
    fn course_of(&self, d: &Claimed) -> anyhow::Result<(i64, Option<LessonRef>)> {
        if d.kind == DeliveryKind::Lesson {
            for (id, c) in &self.courses {
                if let Some(i) = c.lessons.iter().position(|l| Some(l.id) == d.lesson_id) {
                    return Ok((*id, Some((*id, i))));
                }
            }
            anyhow::bail!("the lesson of this delivery no longer exists");
        }
        let id = d
            .course_id
            .filter(|c| self.courses.contains_key(c))
            .unwrap_or(self.fallback);
        Ok((id, None))
    }

    async fn load(
        app: &App,
        claimed: Vec<Claimed>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<BatchContext> {
        let all = db::courses::list(&app.db).await?;
        let fallback = all
            .iter()
            .find(|c| c.removed_at.is_none())
            .or(all.first())
            .map(|c| c.id)
            .context("no course in the database")?;
        let mut wanted: Vec<i64> = claimed.iter().filter_map(|d| d.course_id).collect();
        wanted.push(fallback);
        let mut courses = HashMap::new();
        for row in all {
            if wanted.contains(&row.id) {
                let lessons = db::lessons::list(&app.db, row.id).await?;
                courses.insert(row.id, CourseLessons { row, lessons });
            }
        }
        let enrollments: Vec<i64> = claimed.iter().filter_map(|d| d.enrollment_id).collect();
        let paces = db::enrollments::paces(&app.db, &enrollments).await?;
        let ids: Vec<i64> = claimed.iter().map(|d| d.subscriber_id).collect();
        let subscribers = db::subscribers::by_ids(&app.db, &ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let wanted: Vec<i64> = claimed.iter().filter_map(|d| d.broadcast_id).collect();
        let broadcasts = db::broadcasts::by_ids(&app.db, &wanted)
            .await?
            .into_iter()
            .map(|b| (b.id, b))
            .collect();
        let wanted: Vec<i64> = claimed
            .iter()
            .filter(|d| d.kind == DeliveryKind::Answer)
            .map(|d| d.id)
            .collect();
        let answers = db::answers::by_deliveries(&app.db, &wanted)
            .await?
            .into_iter()
            .filter_map(|a| Some((a.delivery_id?, a)))
            .collect();
        let readers: Vec<i64> = claimed
            .iter()
            .filter(|d| matches!(d.kind, DeliveryKind::Broadcast | DeliveryKind::Answer))
            .filter_map(|d| d.enrollment_id)
            .collect();
        let enrollment_status = db::enrollments::statuses(&app.db, &readers).await?;
        Ok(BatchContext {
            app: app.clone(),
            courses,
            fallback,
            paces,
            subscribers,
            broadcasts,
            answers,
            enrollment_status,
            claimed,
            now,
        })
    }

    /// Sends the batch over `pool_size` connections at once, each taking the next mail in
    /// turn, while the recorder commits the accepted ones as they come. The connections run
    /// as futures of this one task, not as tasks of their own: every socket then wakes the
    /// same task, where spawned tasks spread over the runtime's threads wake each other
    /// across them (measured: a quarter fewer mails a second, for more CPU). Rendering is a
    /// substitution, so one thread has the CPU for it.
    ///
    /// After an outage the first mail goes alone, as the probe; the others follow only if
    /// the server took it. Once the server is found unreachable, the rest are handed back.
    ///
    /// What a crash can send twice is what the server accepted and the recorder had not yet
    /// committed. A connection with `[schedule] unrecorded_per_connection` such mails (2 by
    /// default) waits for the oldest one's commit before it sends more, so a crash sends at
    /// most that many per connection twice, whatever the batch size.
    /// When a commit fails, the rest of the batch is handed back unsent: what cannot be
    /// recorded must not be sent.
    async fn send_all(&self, deadline: Instant) -> BatchSends {
        let relay = &self.app.relay;
        let unrecorded = AtomicBool::new(false);
        let (to_recorder, queue) = tokio::sync::mpsc::unbounded_channel::<ToRecord>();
        let senders = async {
            // Moved in: when the senders are done, the recorder's queue closes.
            let to_recorder = to_recorder;
            // Hands an accepted mail to the recorder (and returns when its commit is told), any
            // other outcome to the list.
            let settle = |outcome: anyhow::Result<Outcome>,
                          outcomes: &mut Vec<anyhow::Result<Outcome>>|
             -> Option<tokio::sync::oneshot::Receiver<bool>> {
                match outcome {
                    Ok(Outcome::Sent(mail)) => {
                        let (done, committed) = tokio::sync::oneshot::channel();
                        // Should the recorder be gone, the commit reads as failed.
                        let _ = to_recorder.send((mail, done));
                        Some(committed)
                    }
                    other => {
                        outcomes.push(other);
                        None
                    }
                }
            };
            // Waits for a commit; false (and the batch stops) when it failed.
            let committed = |ack: Option<tokio::sync::oneshot::Receiver<bool>>| {
                let unrecorded = &unrecorded;
                async move {
                    if let Some(ack) = ack
                        && !ack.await.unwrap_or(false)
                    {
                        unrecorded.store(true, Ordering::Relaxed);
                    }
                }
            };
            let mut outcomes = Vec::new();
            let mut start = 0;
            if relay.check(self.now) == Gate::Probe
                && let Some(d) = self.claimed.first()
            {
                let ack = settle(self.deliver(d).await, &mut outcomes);
                committed(ack).await;
                start = 1;
            }
            let next = AtomicUsize::new(start);
            let connections =
                (self.app.config.smtp.pool_size.max(1) as usize).min(self.claimed.len());
            let connection = || async {
                let mut outcomes = Vec::new();
                // This connection's accepted mails whose commit is not yet known.
                let mut pending = std::collections::VecDeque::new();
                let window = self.app.config.schedule.unrecorded_per_connection.max(1) as usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(d) = self.claimed.get(i) else {
                        break;
                    };
                    if unrecorded.load(Ordering::Relaxed) || Instant::now() >= deadline {
                        outcomes.push(Ok(Outcome::Released(d.id)));
                    } else if relay.check(self.now) != Gate::Open {
                        outcomes.push(Ok(Outcome::Held(d.id)));
                    } else {
                        let ack = settle(self.deliver(d).await, &mut outcomes);
                        if let Some(ack) = ack {
                            pending.push_back(ack);
                            while pending.len() >= window {
                                committed(pending.pop_front()).await;
                            }
                        }
                    }
                }
                for ack in pending {
                    committed(Some(ack)).await;
                }
                outcomes
            };
            let rest = futures::future::join_all((0..connections).map(|_| connection())).await;
            outcomes.extend(rest.into_iter().flatten());
            outcomes
        };
        let (outcomes, (recorded, failure)) = tokio::join!(senders, self.recorder(queue));
        BatchSends {
            outcomes,
            recorded,
            failure,
        }
    }

    /// Commits accepted mail as it comes: whatever has queued since the last commit goes in
    /// the next one, so commits group by themselves under load and none waits for a batch.
    /// Each mail's sender is told whether its commit held. After a failed commit nothing
    /// more is recorded (the database is gone); those mails go again when their lease runs
    /// out. Returns how many were recorded, and the failure.
    async fn recorder(
        &self,
        mut queue: tokio::sync::mpsc::UnboundedReceiver<ToRecord>,
    ) -> (u64, Option<anyhow::Error>) {
        let mut recorded = 0;
        let mut failure: Option<anyhow::Error> = None;
        let mut group = Vec::new();
        while queue.recv_many(&mut group, usize::MAX).await > 0 {
            let (mails, acks): (Vec<SentMail>, Vec<_>) =
                std::mem::take(&mut group).into_iter().unzip();
            let started = Instant::now();
            let held = failure.is_none()
                && match self.record_sent(&mails).await {
                    Ok(()) => {
                        recorded += mails.len() as u64;
                        true
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), count = mails.len(), "recording sent deliveries failed; their leases will expire and they will be sent again");
                        failure = Some(e);
                        false
                    }
                };
            for ack in acks {
                let _ = ack.send(held);
            }
            crate::metrics::observe_record(mails.len(), started.elapsed());
        }
        (recorded, failure)
    }

    /// Hands the whole batch back unsent (the process is stopping).
    async fn release_all(&self) {
        let ids: Vec<i64> = self.claimed.iter().map(|d| d.id).collect();
        let app = &self.app;
        if let Err(e) =
            db::deliveries::release(&app.db, &ids, &app.worker_id, self.now.timestamp()).await
        {
            tracing::error!(error = %format!("{e:#}"), "handing back deliveries failed; their leases will expire");
        }
    }

    /// Counts what the batch did besides its recorded sends, and hands back what it did not
    /// send. An error means sends could not be recorded (the database is gone): they will
    /// be sent again when their lease runs out, so the pass must stop rather than send more
    /// that it cannot record either.
    async fn record(
        &self,
        BatchSends {
            outcomes,
            recorded,
            failure,
        }: BatchSends,
        report: &mut SendReport,
    ) -> anyhow::Result<()> {
        report.sent += recorded;
        let mut released = Vec::new();
        let mut held = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(Outcome::Sent(_)) => unreachable!("accepted mail goes to the recorder"),
                Ok(Outcome::Retried) => report.retried += 1,
                Ok(Outcome::Failed) => report.failed += 1,
                Ok(Outcome::Released(id)) => released.push(id),
                Ok(Outcome::Held(id)) => held.push(id),
                // A database error while recording: the lease will expire and the row comes
                // back; log and go on with the rest of the batch.
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "recording a delivery failed");
                    report.retried += 1;
                }
            }
        }
        if !released.is_empty() && failure.is_none() {
            tracing::warn!(
                count = released.len(),
                "sending was slower than half the lease: handing the rest of the batch back"
            );
        }
        report.held += held.len() as u64;
        released.extend(held);
        if !released.is_empty() {
            let app = &self.app;
            if let Err(e) =
                db::deliveries::release(&app.db, &released, &app.worker_id, self.now.timestamp())
                    .await
            {
                tracing::error!(error = %format!("{e:#}"), "handing back deliveries failed; their leases will expire");
            }
        }
        match failure {
            Some(e) => Err(e.context("recording a batch of sends")),
            None => Ok(()),
        }
    }

    /// Marks sends as sent, by revision, and plans each enrollment's next lesson, grouping
    /// enrollments that get the same due time (same lesson, same time zone) in one update.
    async fn record_sent(&self, sent: &[SentMail]) -> anyhow::Result<()> {
        if sent.is_empty() {
            return Ok(());
        }
        let app = &self.app;
        let now = self.now.timestamp();
        let mut by_revision: HashMap<Option<i64>, Vec<i64>> = HashMap::new();
        for (id, lesson, _, _) in sent {
            let revision = lesson.map(|r| self.lesson(r).revision);
            by_revision.entry(revision).or_default().push(*id);
        }
        // Its first statement is the UPDATE below.
        let mut tx = app.db.begin_writing().await?;
        let mut recorded = std::collections::HashSet::with_capacity(sent.len());
        for (revision, ids) in &by_revision {
            let done = db::deliveries::mark_sent_many(&mut tx, ids, &app.worker_id, *revision, now)
                .await?;
            recorded.extend(done);
        }
        let broadcasts: std::collections::BTreeSet<i64> = self
            .claimed
            .iter()
            .filter(|d| recorded.contains(&d.id))
            .filter_map(|d| d.broadcast_id)
            .collect();
        for b in broadcasts {
            crate::broadcasts::finish_if_done(&mut tx, b, self.now).await?;
        }
        crate::webhooks::events::lessons_sent(&mut tx, recorded.iter().copied(), self.now).await?;
        type Key = (LessonRef, Timezone, Option<Pace>);
        let mut due_for: HashMap<Key, (Option<i64>, bool)> = HashMap::new();
        let mut plans: HashMap<(i64, Option<i64>, bool), Vec<i64>> = HashMap::new();
        for (id, lesson, enrollment_id, timezone) in sent {
            let (Some(lesson), Some(enrollment_id)) = (lesson, enrollment_id) else {
                continue;
            };
            if !recorded.contains(id) {
                continue;
            }
            let l = self.lesson(*lesson);
            let pace = self.paces.get(enrollment_id).copied();
            let key = (*lesson, *timezone, pace);
            let (next_due, waiting) = *due_for.entry(key).or_insert_with(|| {
                let next = self
                    .syllabus(lesson.0, Some(*enrollment_id))
                    .after_send(l, self.now, *timezone);
                (next.due.map(|d| d.timestamp()), next.waiting_reply)
            });
            plans
                .entry((l.position, next_due, waiting))
                .or_default()
                .push(*enrollment_id);
        }
        for ((position, next_due, waiting), ids) in &plans {
            db::enrollments::plan_next_many(&mut tx, ids, *position, *next_due, *waiting, now, now)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn deliver(&self, d: &Claimed) -> anyhow::Result<Outcome> {
        let app = &self.app;
        let subscriber = self
            .subscribers
            .get(&d.subscriber_id)
            .context("delivery without subscriber")?;
        if let Some(why) = self.not_for_this_reader(d, subscriber) {
            return self.unsendable(d, why).await;
        }
        let (outgoing, lesson) = match self.compose(d, subscriber) {
            Ok(x) => x,
            Err(e) => return self.unsendable(d, &format!("render: {e:#}")).await,
        };
        let permit = app.limiter.acquire(&outgoing.to).await;
        let started = Instant::now();
        let result = app.mailer.send(&outgoing).await;
        drop(permit);
        crate::metrics::observe_send(started.elapsed(), result.as_ref().err());
        match &result {
            Err(SendError::Unreachable(reason)) => app.relay.failed(self.now, reason),
            // Any answer, even a refusal, means the server is there.
            _ => app.relay.succeeded(self.now),
        }
        let lesson_row = lesson.map(|r| self.lesson(r));
        match result {
            Err(SendError::Unreachable(_)) => Ok(Outcome::Held(d.id)),
            Err(SendError::Build(reason)) => self.unsendable(d, &format!("build: {reason}")).await,
            Ok(()) => Ok(Outcome::Sent((
                d.id,
                lesson,
                d.enrollment_id,
                subscriber.timezone,
            ))),
            Err(SendError::Transient(reason)) => {
                let age = self.now.timestamp() - d.created_at;
                if age > app.config.schedule.retry_max_age_hours * 3600 {
                    let why = format!(
                        "gave up after {} attempts over {}h: {reason}",
                        d.attempts,
                        age / 3600
                    );
                    self.record_failure(d, subscriber, lesson_row, &why, false, "4.0.0")
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
                self.record_failure(d, subscriber, lesson_row, &why, hard, &code)
                    .await?;
                Ok(Outcome::Failed)
            }
        }
    }

    /// A broadcast's mail leaves only if its reader is still in its audience: not paused,
    /// not gone from the course or from everything since it was queued, and it was not
    /// cancelled. Otherwise it fails with the reason, visibly.
    fn not_for_this_reader(&self, d: &Claimed, s: &SubscriberRow) -> Option<&'static str> {
        if d.kind == DeliveryKind::Answer {
            return self.answer_not_for_this_reader(d, s);
        }
        if d.kind != DeliveryKind::Broadcast {
            return None;
        }
        let Some(b) = d.broadcast_id.and_then(|id| self.broadcasts.get(&id)) else {
            return Some("not sent: its broadcast no longer exists");
        };
        if b.cancelled_at.is_some() {
            return Some("cancelled");
        }
        if s.status != SubscriberStatus::Active {
            return Some("not sent: the reader left everything (or bounced) after it was queued");
        }
        let status = d.enrollment_id.and_then(|e| self.enrollment_status.get(&e));
        let wanted = match b.audience {
            Audience::Active => matches!(status, Some(EnrollmentStatus::Active)),
            Audience::Completed => matches!(status, Some(EnrollmentStatus::Completed)),
            Audience::Everyone => matches!(
                status,
                Some(EnrollmentStatus::Active | EnrollmentStatus::Completed)
            ),
        };
        (!wanted).then_some("not sent: the reader paused or left the course after it was queued")
    }

    /// An author's answer leaves only while its reader still takes mail from the course: not
    /// gone from everything, not stopped in the course since the answer was written.
    fn answer_not_for_this_reader(&self, d: &Claimed, s: &SubscriberRow) -> Option<&'static str> {
        if s.status != SubscriberStatus::Active {
            return Some(
                "not sent: the reader left everything (or bounced) after the answer was written",
            );
        }
        let status = d.enrollment_id.and_then(|e| self.enrollment_status.get(&e));
        matches!(status, Some(EnrollmentStatus::Stopped))
            .then_some("not sent: the reader left the course after the answer was written")
    }

    /// A mail that cannot be rendered or built will not be on a retry either: it fails
    /// visibly with the reason instead of looping, and it is the mail's fault, not the
    /// reader's, so no bounce is counted.
    async fn unsendable(&self, d: &Claimed, why: &str) -> anyhow::Result<Outcome> {
        let app = &self.app;
        let mut tx = app.db.begin_write().await?;
        db::deliveries::mark_failed(&mut tx, d.id, &app.worker_id, why, self.now.timestamp())
            .await?;
        if let Some(b) = d.broadcast_id {
            crate::broadcasts::finish_if_done(&mut tx, b, self.now).await?;
        }
        tx.commit().await?;
        tracing::error!(delivery = d.id, error = %why, "cannot make this mail; marked failed");
        Ok(Outcome::Failed)
    }

    /// Renders the mail for a delivery; for a lesson also returns its index in `lessons`
    /// (whose revision is the one used).
    fn compose(
        &self,
        d: &Claimed,
        s: &SubscriberRow,
    ) -> anyhow::Result<(Outgoing, Option<LessonRef>)> {
        let app = &self.app;
        let (course_id, lesson_ref) = self.course_of(d)?;
        let course = &self.courses[&course_id].row;
        let ctx = app.mail_context(course, s, d.enrollment_id);
        let lang = course.language.as_str();
        let words = app.renderer.catalogue();
        let mut label_kind = d.kind.as_str();
        let rendered = match d.kind {
            DeliveryKind::Lesson => {
                let lesson_ref =
                    lesson_ref.context("the lesson of this delivery no longer exists")?;
                let lesson = self.lesson(lesson_ref);
                let vars = self.syllabus(course_id, d.enrollment_id).lesson_vars(
                    lesson.id,
                    lesson.position,
                    &lesson.content,
                );
                if s.discreet != 0 {
                    // What a lock screen shows says nothing about the course.
                    let mut content = lesson.content.clone();
                    let (number, of) = (vars.number.to_string(), vars.of.to_string());
                    content.subject = words.format(
                        lang,
                        "mail.discreet_subject",
                        &[("number", &number), ("of", &of)],
                    )?;
                    content.preheader = Some(words.format(lang, "mail.discreet_preheader", &[])?);
                    app.renderer.lesson(&content, &vars, &ctx)?
                } else {
                    app.renderer.lesson(&lesson.content, &vars, &ctx)?
                }
            }
            DeliveryKind::Confirm => app.renderer.mail(
                MailKind::Confirm,
                &ctx,
                minijinja::context! { confirm_url => app.confirm_url(d.id) },
            )?,
            DeliveryKind::Welcome => {
                let payload: serde_json::Value =
                    serde_json::from_str(&d.payload).unwrap_or_default();
                // On the reader's wall clock, in their words; a mail queued by an older
                // version carries the time already written out.
                let due = payload["first_lesson_due"]
                    .as_i64()
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
                let when = match (due, payload["first_lesson_at"].as_str()) {
                    (Some(due), _) => words.date(
                        lang,
                        "date.first_lesson",
                        &due.with_timezone(&s.timezone.tz()),
                    )?,
                    (None, Some(written)) => written.to_owned(),
                    (None, None) => words.format(lang, "date.soon", &[])?,
                };
                app.renderer.mail(
                    MailKind::Welcome,
                    &ctx,
                    minijinja::context! { first_lesson_at => when },
                )?
            }
            DeliveryKind::Goodbye => {
                app.renderer
                    .mail(MailKind::Goodbye, &ctx, minijinja::context! {})?
            }
            DeliveryKind::Broadcast => {
                let b = d
                    .broadcast_id
                    .and_then(|id| self.broadcasts.get(&id))
                    .context("the broadcast of this mail no longer exists")?;
                label_kind = "broadcast";
                app.renderer.broadcast(&b.subject, &b.body, &ctx)?
            }
            DeliveryKind::Answer => {
                let a = self
                    .answers
                    .get(&d.id)
                    .context("the answer of this mail no longer exists (its reply was deleted)")?;
                label_kind = "answer";
                let text = String::from_utf8_lossy(&app.open_reply_text(&a.text)).into_owned();
                let written = DateTime::from_timestamp(a.reply_received_at, 0)
                    .map(|t| words.date(lang, "date.journal", &t.with_timezone(&s.timezone.tz())))
                    .transpose()?
                    .unwrap_or_default();
                let subject = answer_subject(&a.reply_subject, &course.title);
                app.renderer.answer(&subject, &text, &written, &ctx)?
            }
            DeliveryKind::Notice => {
                let payload: serde_json::Value =
                    serde_json::from_str(&d.payload).unwrap_or_default();
                if payload[crate::subscriptions::JOURNAL_LINK_PAYLOAD] == true {
                    label_kind = "journal-link";
                    self.render_journal_link(course, s)?
                } else {
                    let (title, paragraphs) = notice_words(words, lang, &payload)?;
                    app.renderer.mail(
                        MailKind::Notice,
                        &ctx,
                        minijinja::context! { title => title, paragraphs => paragraphs },
                    )?
                }
            }
        };
        let lesson = lesson_ref.map(|r| self.lesson(r));
        let label = match lesson {
            Some(l) => format!("{:06}-lesson-{}", d.id, l.slug),
            None => format!("{:06}-{label_kind}", d.id),
        };
        let unsubscribe = (d.kind != DeliveryKind::Confirm).then(|| {
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
                course: Some(course.slug.clone()),
                lesson: lesson.map(|l| l.slug.clone()),
                broadcast: d.broadcast_id,
                from_name: Some(if s.discreet != 0 {
                    app.config.mail.discreet_name.clone()
                } else {
                    course.from_name.clone()
                }),
                from_address: Some(course.from_address.clone()).filter(|a| !a.is_empty()),
                list_id: (d.kind != DeliveryKind::Confirm)
                    .then(|| format!("{}.{}", course.slug, app.config.mail.reply_domain)),
                answer: self.answers.get(&d.id).map(|a| self.threading(a)),
            },
            lesson_ref,
        ))
    }

    /// An answer's place in the thread: under the reader's message, after the mail of ours
    /// that they answered.
    fn threading(&self, a: &AnswerRow) -> Threading {
        let theirs = a
            .reply_message_id
            .clone()
            .filter(|id| usable_message_id(id));
        let mut references: Vec<String> = a
            .reply_delivery_id
            .map(|d| self.app.message_id(d))
            .into_iter()
            .collect();
        references.extend(theirs.clone());
        Threading {
            in_reply_to: theirs,
            references,
        }
    }

    /// The mail with a fresh journal link, signed now so that no working link is stored.
    fn render_journal_link(
        &self,
        course: &CourseRow,
        s: &SubscriberRow,
    ) -> anyhow::Result<crate::render::RenderedMail> {
        let app = &self.app;
        let hours = crate::subscriptions::JOURNAL_ACCESS_HOURS;
        let url = app.journal_access_url(s.id, self.now.timestamp() + hours * 3600);
        let (lang, words) = (course.language.as_str(), app.renderer.catalogue());
        let hours = hours.to_string();
        app.renderer.mail(
            MailKind::Notice,
            &app.mail_context(course, s, None),
            minijinja::context! {
                title => words.format(lang, "notice.journal_link.title", &[])?,
                paragraphs => words.paragraphs(lang, "notice.journal_link.body", &[("hours", &hours)])?,
                action => minijinja::context! {
                    url => url,
                    label => words.format(lang, "notice.journal_link.action", &[])?,
                },
            },
        )
    }

    /// Fails a delivery, counts the bounce and, for a lesson, plans the next one so a single
    /// failure does not stall the course (unless the address is now considered dead).
    async fn record_failure(
        &self,
        d: &Claimed,
        s: &SubscriberRow,
        lesson: Option<&Lesson>,
        why: &str,
        hard: bool,
        code: &str,
    ) -> anyhow::Result<()> {
        let app = &self.app;
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
            let next = self
                .syllabus(lesson.course_id, Some(enrollment_id))
                .after_send(lesson, self.now, s.timezone);
            db::enrollments::plan_next(
                &mut tx,
                enrollment_id,
                lesson.position,
                next.due.map(|d| d.timestamp()),
                next.waiting_reply,
                now,
                now,
            )
            .await?;
        }
        if let Some(b) = d.broadcast_id {
            crate::broadcasts::finish_if_done(&mut tx, b, self.now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
