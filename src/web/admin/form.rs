//! The lesson form, shared by the editor, the new-lesson page and the API: the fields as
//! typed, their check (lint, with each problem by field), the phase order, and storing a
//! change as a new revision.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::impact;
use crate::app::App;
use crate::curriculum::{LessonContent, check_content};
use crate::db::{self, lessons::Lesson};
use crate::domain::Phase;

pub type Errors = BTreeMap<String, Vec<String>>;

/// The editor's fields as typed, so a refused form comes back exactly as it was.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub after_days: String,
    #[serde(default)]
    pub send_window: String,
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub wait_for_reply: Option<String>,
    #[serde(default)]
    pub max_wait_days: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub base_revision: i64,
    #[serde(default)]
    pub confirmed: Option<String>,
}

/// Browsers send textarea lines with CRLF; lessons are stored with LF.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

impl EditForm {
    pub fn blank(phase: Phase) -> EditForm {
        EditForm {
            phase: phase.as_str().into(),
            after_days: "1".into(),
            body: "Hello {{ subscriber.first_name }},\n\n".into(),
            ..EditForm::default()
        }
    }

    pub fn from_lesson(l: &Lesson) -> EditForm {
        let c = &l.content;
        EditForm {
            slug: l.slug.clone(),
            title: c.title.clone(),
            subject: c.subject.clone(),
            phase: c.phase.as_str().into(),
            after_days: c.after_days.to_string(),
            send_window: c.send_window.clone().unwrap_or_default(),
            prompt: c.prompt.clone(),
            wait_for_reply: c.wait_for_reply.then(|| "on".into()),
            max_wait_days: c.max_wait_days.map(|d| d.to_string()).unwrap_or_default(),
            body: c.body.clone(),
            base_revision: l.revision,
            confirmed: None,
        }
    }

    /// The checked content, or None with every problem added to `errors` by field.
    pub fn content(&self, errors: &mut Errors) -> Option<LessonContent> {
        let known = errors.values().map(Vec::len).sum::<usize>();
        let mut add = |field: &str, msg: String| errors.entry(field.into()).or_default().push(msg);
        let phase = Phase::parse(self.phase.trim())
            .map_err(|e| add("phase", e.message))
            .ok();
        let after_days = self
            .after_days
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|d| *d <= 365);
        if after_days.is_none() {
            add(
                "after_days",
                "must be a whole number of days from 0 to 365".into(),
            );
        }
        let max_wait_days = match self.max_wait_days.trim() {
            "" => Some(None),
            s => s
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=365).contains(d))
                .map(Some),
        };
        if max_wait_days.is_none() {
            add(
                "max_wait_days",
                "must be empty or a whole number of days from 1 to 365".into(),
            );
        }
        let window = self.send_window.trim();
        let content = LessonContent {
            title: self.title.trim().to_owned(),
            subject: self.subject.trim().to_owned(),
            phase: phase.unwrap_or(Phase::Honesty),
            after_days: after_days.unwrap_or(0),
            send_window: (!window.is_empty()).then(|| window.to_owned()),
            prompt: lf(self.prompt.trim()),
            wait_for_reply: self.wait_for_reply.is_some(),
            max_wait_days: max_wait_days.flatten(),
            body: lf(&self.body),
        };
        for p in check_content(&content) {
            let field = p.field.unwrap_or("body");
            let msg = if field == "body" {
                format!("line {}: {}", p.line, p.message)
            } else {
                p.message
            };
            add(field, msg);
        }
        let found = errors.values().map(Vec::len).sum::<usize>() > known;
        (!found && phase.is_some()).then_some(content)
    }
}

/// Phases go honesty, accountability, practice along the course: a lesson at `position`
/// may not have a phase before its predecessor's or after its successor's.
pub fn phase_problem(
    lessons: &[Lesson],
    this: Option<i64>,
    position: i64,
    phase: Phase,
) -> Option<String> {
    let others = || lessons.iter().filter(move |l| Some(l.id) != this);
    let before = others()
        .filter(|l| l.position < position)
        .max_by_key(|l| l.position);
    let after = others()
        .filter(|l| l.position > position)
        .min_by_key(|l| l.position);
    if let Some(b) = before.filter(|b| b.content.phase > phase) {
        return Some(format!(
            "“{}” before this lesson is in phase {}; phases go honesty, accountability, practice",
            b.content.title,
            b.content.phase.as_str()
        ));
    }
    if let Some(a) = after.filter(|a| a.content.phase < phase) {
        return Some(format!(
            "“{}” after this lesson is in phase {}; phases go honesty, accountability, practice",
            a.content.title,
            a.content.phase.as_str()
        ));
    }
    None
}

/// What differs between two versions of a lesson, by field name.
pub fn changed_fields(old: &LessonContent, new: &LessonContent) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("title", old.title != new.title);
    check("subject", old.subject != new.subject);
    check("phase", old.phase != new.phase);
    check("after_days", old.after_days != new.after_days);
    check("send_window", old.send_window != new.send_window);
    check("prompt", old.prompt != new.prompt);
    check("wait_for_reply", old.wait_for_reply != new.wait_for_reply);
    check("max_wait_days", old.max_wait_days != new.max_wait_days);
    check("body", old.body != new.body);
    out
}

/// The outcome of [`store_revision`]: saved as this revision, or refused with a message.
pub enum Stored {
    Saved,
    Unchanged,
    Stale { revision: i64 },
}

/// Stores `content` as the next revision of `lesson` (when it is still at `base`), and
/// moves the due times of `impact` in the same transaction.
pub async fn store_revision(
    app: &App,
    lesson: &Lesson,
    base: i64,
    content: &LessonContent,
    author: &str,
    note: Option<String>,
    impact: Option<&impact::Impact>,
) -> anyhow::Result<Stored> {
    let changed = changed_fields(&lesson.content, content);
    if changed.is_empty() {
        return Ok(Stored::Unchanged);
    }
    let now = Utc::now().timestamp();
    let mut tx = app.db.begin_write().await?;
    let current = db::stats::current_revision(&mut tx, lesson.id).await?;
    if current != base {
        return Ok(Stored::Stale { revision: current });
    }
    let note = note.unwrap_or_else(|| format!("changed {}", changed.join(", ")));
    let revision = current + 1;
    db::lessons::insert_revision(
        &mut tx,
        lesson.id,
        revision,
        content,
        &content.to_source(),
        author,
        &note,
        now,
    )
    .await?;
    if let Some(impact) = impact {
        impact::apply(&mut tx, impact, now).await?;
    }
    db::events::log(
        &mut tx,
        None,
        author,
        "lesson_revised",
        &json!({"lesson": lesson.slug, "revision": revision, "note": note}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Stored::Saved)
}

/// The lessons as they would be with `content` in place of `lesson_id`'s.
pub fn with_content(lessons: &[Lesson], lesson_id: i64, content: &LessonContent) -> Vec<Lesson> {
    let mut out = lessons.to_vec();
    if let Some(l) = out.iter_mut().find(|l| l.id == lesson_id) {
        l.content = content.clone();
    }
    out
}
