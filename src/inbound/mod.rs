//! Replies: one pipeline behind the three ways mail comes in (the SMTP listener,
//! `POST /inbound/email`, `drip ingest`). Parse, classify, keep only what the person wrote,
//! match to the delivery it answers, then store and act, in that order.

pub mod classify;
pub mod listener;
pub mod parse;
pub mod strip;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::db::{self, deliveries::DeliveryRef};
use crate::domain::{DeliveryKind, EnrollmentStatus, MatchedBy, Purpose, ReplyKind};
use crate::schedule::Syllabus;
use crate::subscriptions;
use classify::{Command, Kind};

#[derive(Debug, Clone, Serialize)]
pub struct Match {
    pub subscriber: String,
    /// The slug of the course the answered mail belongs to.
    pub course: Option<String>,
    pub lesson: Option<String>,
    pub by: MatchedBy,
    #[serde(skip)]
    delivery: DeliveryRef,
    /// The author's answer whose mail this answers: the reply joins that conversation.
    #[serde(skip)]
    in_answer_to: Option<i64>,
}

/// What ingesting a message does (or would do, with `--dry-run`). Serialises to the JSON
/// contract of `drip ingest --dry-run --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub kind: ReplyKind,
    pub text: String,
    pub command: Option<Command>,
    #[serde(rename = "match")]
    pub matched: Option<Match>,
    pub flagged: bool,
    /// The stored reply's id; None for a dry run or a message already stored.
    pub stored: Option<i64>,
    pub duplicate: bool,
}

/// Why a message was not taken. Either way nothing was stored; the three channels answer
/// differently (refuse for good, or ask the sender to try again).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A message drip cannot read: retrying will not help.
    #[error("message: {0}")]
    Unreadable(String),
    /// Storing or acting failed (the database is busy or gone): retry later.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Understands `raw` and, unless `dry_run`, stores it and acts on it.
pub async fn ingest(
    app: &App,
    raw: &[u8],
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Outcome, IngestError> {
    let msg = parse::parse_message(raw, app.config.inbound.max_message_bytes)
        .map_err(|e| IngestError::Unreadable(e.to_string()))?;
    let (kind, bounce) = classify::classify(&msg);
    let text = match kind {
        Kind::Bounce => String::new(),
        _ => strip::extract_answer(&msg.body_text),
    };
    let token_match = match_token(app, &msg).await?;
    let mut command = (kind == Kind::Reply)
        .then(|| classify::command(&text))
        .flatten();
    // The List-Unsubscribe mailto: our reply address with the subject "unsubscribe".
    if kind == Kind::Reply
        && token_match.is_some()
        && msg.subject.trim().eq_ignore_ascii_case("unsubscribe")
    {
        command = Some(Command::Stop);
    }
    let matched = match token_match {
        Some(m) => Some(m),
        None => match kind {
            Kind::Bounce => match_bounce(app, &msg, bounce.as_ref()).await?,
            _ => match_thread(app, &msg).await?,
        },
    };
    // Acting on a subscription takes proof that the mail answers one of ours: the signed
    // reply address or one of our signed Message-IDs. A From address, or the recipient a
    // delivery report names, is anyone's to forge: such a mail is kept, and changes nothing.
    let verified = matched.as_ref().is_some_and(|m| m.by != MatchedBy::Sender);
    if !verified && (command.is_some() || bounce.is_some()) {
        tracing::warn!(
            kind = kind.as_str(),
            "a command or delivery report without our token or Message-ID: stored, not acted on"
        );
        command = None;
    }
    let bounce = bounce.filter(|_| verified);
    let flagged =
        kind == Kind::Reply && classify::distress(&text, &app.config.inbound.distress_words);
    let mut outcome = Outcome {
        kind,
        text,
        command,
        matched,
        flagged,
        stored: None,
        duplicate: false,
    };
    if dry_run {
        return Ok(outcome);
    }
    store_and_act(app, raw, &msg, bounce.as_ref(), &mut outcome, command, now).await?;
    Ok(outcome)
}

async fn delivery_match(
    app: &App,
    delivery_id: i64,
    by: MatchedBy,
) -> anyhow::Result<Option<Match>> {
    let Some(mut delivery) = db::deliveries::by_id(&app.db, delivery_id).await? else {
        return Ok(None);
    };
    // A reply to an author's answer is about the lesson the conversation is about.
    let mut in_answer_to = None;
    if delivery.kind == DeliveryKind::Answer
        && let Some((answer, lesson)) = db::answers::of_delivery(&app.db, delivery.id).await?
    {
        in_answer_to = Some(answer);
        delivery.lesson_id = lesson;
    }
    let Some(s) = db::subscribers::by_id(&app.db, delivery.subscriber_id).await? else {
        return Ok(None);
    };
    let lesson = match delivery.lesson_id {
        Some(id) => db::lessons::slug_of(&app.db, id).await?,
        None => None,
    };
    let course = match delivery.course_id {
        Some(id) => Some(db::courses::by_id(&app.db, id).await?.slug),
        None => None,
    };
    Ok(Some(Match {
        subscriber: s.email,
        course,
        lesson,
        by,
        delivery,
        in_answer_to,
    }))
}

/// `reply+TOKEN@reply_domain` among the recipients, with a token that verifies.
async fn match_token(app: &App, msg: &parse::InboundMessage) -> anyhow::Result<Option<Match>> {
    let mail = &app.config.mail;
    for rcpt in &msg.recipients {
        let Some((local, domain)) = rcpt.rsplit_once('@') else {
            continue;
        };
        if !domain.eq_ignore_ascii_case(&mail.reply_domain) {
            continue;
        }
        let Some((base, token)) = local.split_once('+') else {
            continue;
        };
        if !base.eq_ignore_ascii_case(&mail.reply_local) {
            continue;
        }
        if let Ok(id) = app.signer.verify(Purpose::Reply, token)
            && let Some(m) = delivery_match(app, id, MatchedBy::Token).await?
        {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// In-Reply-To, then References (newest first), then the sender's latest lesson.
async fn match_thread(app: &App, msg: &parse::InboundMessage) -> anyhow::Result<Option<Match>> {
    if let Some(m) = match_thread_ids(app, msg).await? {
        return Ok(Some(m));
    }
    if let Some(from) = &msg.from
        && let Some(s) = db::subscribers::by_email(&app.db, from).await?
        && let Some(d) = db::deliveries::latest_lesson_for(&app.db, s.id).await?
    {
        return delivery_match(app, d.id, MatchedBy::Sender).await;
    }
    Ok(None)
}

/// A bounce names the mail it returns (its Message-ID) or the address that failed.
async fn match_bounce(
    app: &App,
    msg: &parse::InboundMessage,
    bounce: Option<&classify::Bounce>,
) -> anyhow::Result<Option<Match>> {
    let original = bounce
        .and_then(|b| b.original_message_id.clone())
        .or_else(|| msg.original_message_id.clone());
    if let Some(id) = original
        && let Some(delivery) = app.delivery_of_message_id(&id)
        && let Some(m) = delivery_match(app, delivery, MatchedBy::InReplyTo).await?
    {
        return Ok(Some(m));
    }
    if let Some(m) = match_thread_ids(app, msg).await? {
        return Ok(Some(m));
    }
    if let Some(rcpt) = bounce.and_then(|b| b.recipient.clone())
        && let Some(s) = db::subscribers::by_email(&app.db, &rcpt).await?
        && let Some(d) = db::deliveries::latest_lesson_for(&app.db, s.id).await?
    {
        return delivery_match(app, d.id, MatchedBy::Sender).await;
    }
    Ok(None)
}

/// In-Reply-To, then References newest first, against our derived Message-IDs.
async fn match_thread_ids(app: &App, msg: &parse::InboundMessage) -> anyhow::Result<Option<Match>> {
    for id in msg.in_reply_to.iter().chain(msg.references.iter().rev()) {
        if let Some(delivery) = app.delivery_of_message_id(id)
            && let Some(m) = delivery_match(app, delivery, MatchedBy::InReplyTo).await?
        {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

async fn store_and_act(
    app: &App,
    raw: &[u8],
    msg: &parse::InboundMessage,
    bounce: Option<&classify::Bounce>,
    outcome: &mut Outcome,
    command: Option<Command>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let now_s = now.timestamp();
    // Without a Message-ID, the content stands in for it: the same file piped twice is one.
    let message_id = msg
        .message_id
        .clone()
        .unwrap_or_else(|| format!("sha256:{:x}", Sha256::digest(raw)));
    let delivery = outcome.matched.as_ref().map(|m| m.delivery.clone());
    let text = app.vault.seal(outcome.text.as_bytes());
    let sealed_raw = app.vault.seal(raw);
    let flag_reason = if outcome.flagged {
        "distress words"
    } else {
        ""
    };
    let mut tx = app.db.begin_write().await?;
    let stored = db::replies::insert(
        &mut tx,
        &db::replies::NewReply {
            message_id: Some(&message_id),
            subscriber_id: delivery.as_ref().map(|d| d.subscriber_id),
            delivery_id: delivery.as_ref().map(|d| d.id),
            lesson_id: delivery.as_ref().and_then(|d| d.lesson_id),
            kind: outcome.kind.as_str(),
            matched_by: outcome.matched.as_ref().map(|m| m.by.as_str()),
            command: outcome.command.map(Command::as_str),
            from_addr: msg.from.as_deref().unwrap_or(""),
            subject: &msg.subject,
            text: &text,
            raw: Some(&sealed_raw),
            flagged: outcome.flagged,
            flag_reason,
            received_at: now_s,
            in_answer_to: outcome.matched.as_ref().and_then(|m| m.in_answer_to),
        },
    )
    .await?;
    let Some(reply_id) = stored else {
        tx.commit().await?;
        outcome.duplicate = true;
        return Ok(());
    };
    outcome.stored = Some(reply_id);
    let subscriber_id = delivery.as_ref().map(|d| d.subscriber_id);
    db::events::log(
        &mut tx,
        subscriber_id,
        "subscriber",
        &format!("{}_received", outcome.kind.as_str()),
        &json!({"reply": reply_id}),
        now_s,
    )
    .await?;
    if outcome.kind == ReplyKind::Reply {
        crate::webhooks::events::reply_received(&mut tx, reply_id, now).await?;
    }
    if let (Some(d), Some(b)) = (&delivery, bounce) {
        db::deliveries::mark_bounced(&mut tx, d.id, &format!("bounce {}", b.status), now_s).await?;
        crate::subscriptions::count_bounce(
            app,
            &mut tx,
            d.subscriber_id,
            Some(d.id),
            b.hard,
            &b.status,
            now,
        )
        .await?;
    }
    if outcome.kind == ReplyKind::Reply
        && let Some(d) = &delivery
    {
        release_waiting_lesson(&mut tx, d, now).await?;
    }
    if outcome.flagged
        && !app.config.inbound.help_text.is_empty()
        && let Some(sid) = subscriber_id
    {
        // Truthful about what happened: a word matched, nobody read anything yet. The
        // words are the catalogue's `notice.flagged`, in the course's language, with the
        // configured help between them.
        let help: Vec<&str> = app
            .config
            .inbound
            .help_text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        db::deliveries::enqueue_mail(
            &mut tx,
            sid,
            delivery.as_ref().and_then(|d| d.course_id),
            DeliveryKind::Notice,
            &json!({"notice": "flagged", "help": help}),
            now_s,
        )
        .await?;
    }
    // The command commits with the reply or not at all: if it fails, the mail server's
    // retry finds no stored reply and runs the whole step again.
    if let (Some(cmd), Some(d)) = (command, &delivery) {
        apply_command(&mut tx, d, cmd, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A reply to a lesson that holds the next one releases it.
async fn release_waiting_lesson(
    tx: &mut db::Tx,
    d: &DeliveryRef,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (Some(enrollment_id), Some(lesson_id)) = (d.enrollment_id, d.lesson_id) else {
        return Ok(());
    };
    let Some(e) = db::enrollments::by_id_in(tx, enrollment_id).await? else {
        return Ok(());
    };
    if e.waiting_reply == 0 || e.status != EnrollmentStatus::Active {
        return Ok(());
    }
    let course = db::courses::by_id_in(tx, e.course_id).await?;
    let lessons = db::lessons::list_in(tx, e.course_id).await?;
    let syllabus = Syllabus::new(&lessons, &course.send_window, &course.phases).paced(e.pace());
    let Some(answered) = lessons.iter().find(|l| l.id == lesson_id) else {
        return Ok(());
    };
    if answered.position != e.position {
        return Ok(());
    }
    let Some(s) = db::subscribers::by_id_in(tx, d.subscriber_id).await? else {
        return Ok(());
    };
    let sent_at = e
        .last_sent_at
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or(now);
    let due = syllabus
        .after_reply(answered, sent_at, now, s.timezone)
        .unwrap_or(now);
    db::enrollments::set_next_due(tx, e.id, Some(due.timestamp()), now.timestamp()).await?;
    Ok(())
}

/// PAUSE, RESUME, STOP and NEXT from a reply's first line, on the course of the mail it
/// answers, confirmed by mail, in the reply's own transaction.
async fn apply_command(
    tx: &mut db::Tx,
    d: &DeliveryRef,
    cmd: Command,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let subscriber_id = d.subscriber_id;
    let course = d.course_id;
    // The confirmation's words are the catalogue's `notice.<kind>`.
    let (done, notice) = match cmd {
        Command::Pause => (
            subscriptions::pause_in(tx, subscriber_id, course, "subscriber", now).await?,
            "paused",
        ),
        Command::Resume => (
            subscriptions::resume_in(tx, subscriber_id, course, "subscriber", now).await?,
            "resumed",
        ),
        // The goodbye mail that leaving queues is the confirmation.
        Command::Stop => {
            return subscriptions::unsubscribe_in(tx, subscriber_id, course, "subscriber", now)
                .await
                .map(|_| ());
        }
        // The lesson itself is the answer.
        Command::Next => {
            let enrollment = match (d.enrollment_id, course) {
                (Some(e), _) => Some(e),
                (None, Some(c)) => db::enrollments::of_course_in(tx, subscriber_id, c)
                    .await?
                    .map(|e| e.id),
                (None, None) => None,
            };
            if let Some(e) = enrollment {
                subscriptions::next_now_in(tx, e, "subscriber", now).await?;
            }
            return Ok(());
        }
    };
    if done {
        db::deliveries::enqueue_mail(
            tx,
            subscriber_id,
            course,
            DeliveryKind::Notice,
            &json!({ "notice": notice }),
            now.timestamp(),
        )
        .await?;
    }
    Ok(())
}
