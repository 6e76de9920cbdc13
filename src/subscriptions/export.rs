//! A subscriber's own data as one JSON document, for their right of access: who they are,
//! their enrollment, every mail sent to them, every reply with its text, the answers written
//! back to them, and their events.
//! `drip subscribers show` reads the same [`gather`]; [`export`] adds the envelope and writes
//! the audit event. The CLI, the journal's download link, the admin page and the API all
//! hand out the same document.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::db::{self, subscribers::SubscriberRow};

/// Names the document's shape, so a reader can tell versions apart.
pub(crate) const FORMAT: &str = "drip-subscriber-data/2";

const ABOUT: &str = "Everything this course stores about you. Reply texts are your answers as kept (quotes and signatures removed). The raw messages (each email as received, with the lesson it quoted and the mail servers' headers) are not included; raw_message_kept says whether one is still stored, and the retention section says for how long.";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubscriberData {
    pub subscriber: Person,
    pub enrollments: Vec<Enrollment>,
    pub deliveries: Vec<Delivery>,
    pub replies: Vec<Reply>,
    /// What the course's authors wrote back to the person's replies.
    pub answers: Vec<Answer>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Person {
    pub email: String,
    pub name: String,
    pub timezone: String,
    pub status: String,
    pub created_at: Option<String>,
    pub confirmed_at: Option<String>,
    pub status_changed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Enrollment {
    pub course: String,
    pub position: i64,
    pub status: String,
    pub next_due_at: Option<String>,
    pub waiting_reply: bool,
    pub last_sent_at: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub kind: String,
    pub course: Option<String>,
    pub lesson: Option<String>,
    pub lesson_title: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub revision: Option<i64>,
    pub created_at: Option<String>,
    pub due_at: Option<String>,
    pub sent_at: Option<String>,
    pub failed_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reply {
    pub id: i64,
    pub lesson: Option<String>,
    pub kind: String,
    pub command: Option<String>,
    pub matched_by: Option<String>,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub received_at: Option<String>,
    pub flagged: bool,
    pub flag_reason: String,
    pub read_at: Option<String>,
    pub raw_message_kept: bool,
    /// The answer (in `answers`) this reply wrote back to.
    pub in_answer_to: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Answer {
    pub id: i64,
    /// The reply (in `replies`) it answers.
    pub reply: i64,
    pub text: String,
    pub written_at: Option<String>,
    /// Its mail: queued, sent, failed or bounced.
    pub status: Option<String>,
    pub sent_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Event {
    pub kind: String,
    pub actor: String,
    pub detail: Value,
    pub at: Option<String>,
}

/// The whole document handed to the person (or to an admin on their behalf).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub format: &'static str,
    pub about: &'static str,
    pub exported_at: String,
    /// The courses the person is or was in.
    pub courses: Value,
    pub retention: Value,
    #[serde(flatten)]
    pub data: SubscriberData,
}

impl Export {
    pub(crate) fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

fn time(t: Option<i64>) -> Option<String> {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339())
}

/// Admins act under their user name; the person sees "admin". Staff names are not their
/// data, and the export is the same document whoever asks for it.
fn public_actor(actor: &str) -> &str {
    match actor {
        "system" | "subscriber" | "cli" | "file" => actor,
        _ => "admin",
    }
}

/// Everything stored about `s`, reply texts decrypted.
pub(crate) async fn gather(app: &App, s: &SubscriberRow) -> anyhow::Result<SubscriberData> {
    let courses = db::courses::list(&app.db).await?;
    let mut lessons = Vec::new();
    for c in &courses {
        lessons.extend(
            db::lessons::list(&app.db, c.id)
                .await?
                .into_iter()
                .map(|l| (c.slug.clone(), l)),
        );
    }
    let title_of = |course: &Option<String>, slug: &Option<String>| {
        lessons
            .iter()
            .find(|(c, l)| Some(c) == course.as_ref() && Some(&l.slug) == slug.as_ref())
            .map(|(_, l)| l.content.title.clone())
    };
    let mut enrollments = Vec::new();
    for e in db::enrollments::for_subscriber(&app.db, s.id).await? {
        let course_slug = courses
            .iter()
            .find(|c| c.id == e.course_id)
            .map(|c| c.slug.clone())
            .unwrap_or_default();
        enrollments.push(Enrollment {
            course: course_slug,
            position: e.position,
            status: e.status.as_str().to_owned(),
            next_due_at: time(e.next_due_at),
            waiting_reply: e.waiting_reply != 0,
            last_sent_at: time(e.last_sent_at),
            created_at: time(Some(e.created_at)),
        });
    }
    let deliveries = db::deliveries::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .map(|d| Delivery {
            lesson_title: title_of(&d.course, &d.lesson),
            kind: d.kind.as_str().to_owned(),
            course: d.course,
            lesson: d.lesson,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            revision: d.revision,
            created_at: time(Some(d.created_at)),
            due_at: time(Some(d.due_at)),
            sent_at: time(d.sent_at),
            failed_at: time(d.failed_at),
            error: d.last_error,
        })
        .collect();
    let replies = db::replies::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .map(|r| Reply {
            id: r.id,
            text: String::from_utf8_lossy(&app.open_reply_text(&r.text)).into_owned(),
            lesson: r.lesson,
            kind: r.kind.as_str().to_owned(),
            command: r.command,
            matched_by: r.matched_by,
            from: r.from_addr,
            subject: r.subject,
            received_at: time(Some(r.received_at)),
            flagged: r.flagged != 0,
            flag_reason: r.flag_reason,
            read_at: time(r.read_at),
            raw_message_kept: r.has_raw != 0,
            in_answer_to: r.in_answer_to,
        })
        .collect();
    let answers = db::answers::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .map(|a| Answer {
            id: a.id,
            reply: a.reply_id,
            text: String::from_utf8_lossy(&app.open_reply_text(&a.text)).into_owned(),
            written_at: time(Some(a.created_at)),
            status: a.status,
            sent_at: time(a.sent_at),
        })
        .collect();
    let events = db::events::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .map(|e| Event {
            actor: public_actor(&e.actor).to_owned(),
            detail: serde_json::from_str(&e.detail).unwrap_or(Value::String(e.detail)),
            kind: e.kind,
            at: time(Some(e.created_at)),
        })
        .collect();
    Ok(SubscriberData {
        subscriber: Person {
            email: s.email.clone(),
            name: s.name.clone(),
            timezone: s.timezone.name().to_owned(),
            status: s.status.as_str().to_owned(),
            created_at: time(Some(s.created_at)),
            confirmed_at: time(s.confirmed_at),
            status_changed_at: time(Some(s.status_at)),
        },
        enrollments,
        deliveries,
        replies,
        answers,
        events,
    })
}

/// The export of subscriber `id` for `actor` (an admin's name, "cli" or "subscriber"),
/// reached through `via` ("admin", "api", "cli", "journal"). The access is written to the
/// event log before anything is gathered: no copy leaves without its record. None when there
/// is no such subscriber, or they were erased (nothing of theirs is left to export).
pub async fn export(
    app: &App,
    id: i64,
    actor: &str,
    via: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Export>> {
    let Some(s) = db::subscribers::by_id(&app.db, id)
        .await?
        .filter(|s| s.status != crate::domain::SubscriberStatus::Erased)
    else {
        return Ok(None);
    };
    let mut tx = app.db.begin_write().await?;
    db::events::log(
        &mut tx,
        Some(s.id),
        actor,
        "data_exported",
        &json!({ "via": via }),
        now.timestamp(),
    )
    .await?;
    tx.commit().await?;
    let data = gather(app, &s).await?;
    let all = db::courses::list(&app.db).await?;
    let courses: Vec<Value> = all
        .iter()
        .filter(|c| data.enrollments.iter().any(|e| e.course == c.slug))
        .map(|c| json!({ "slug": c.slug, "title": c.title }))
        .collect();
    let privacy = &app.config.privacy;
    let days = |d: i64| if d == 0 { Value::Null } else { json!(d) };
    Ok(Some(Export {
        format: FORMAT,
        about: ABOUT,
        exported_at: now.to_rfc3339(),
        courses: Value::Array(courses),
        retention: json!({
            "raw_message_days": days(privacy.raw_retention_days),
            "reply_days": days(privacy.reply_retention_days),
            "note": "Days after which raw messages and whole replies are deleted; null: kept until you ask for erasure.",
        }),
        data,
    }))
}

/// The download's file name: the date only, never the address (downloads folders and
/// browser histories are not private).
pub fn file_name(now: DateTime<Utc>) -> String {
    format!("drip-data-{}.json", now.format("%Y-%m-%d"))
}
