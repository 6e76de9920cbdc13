//! The lesson form of the editor and the new-lesson page: the fields as typed, and their
//! check (the same content rules as lint, each problem by field). Storing and the phase
//! rule are `curriculum::edit`'s.

use serde::{Deserialize, Serialize};

use crate::curriculum::{LessonContent, after_days, max_wait_days};
use crate::db::lessons::Lesson;
use crate::domain::{Phase, SendWindow};

/// The form's problems by field: the editing rules' own type.
pub(crate) use crate::curriculum::edit::FieldErrors as Errors;

/// The editor's fields as typed, so a refused form comes back exactly as it was.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EditForm {
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
    pub preheader: String,
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
    pub fn blank(phase: &Phase) -> EditForm {
        EditForm {
            phase: phase.as_str().into(),
            after_days: "1".into(),
            body: "Hello {{ subscriber.first_name }},\n\n".into(),
            ..EditForm::default()
        }
    }

    pub(crate) fn from_lesson(l: &Lesson) -> EditForm {
        let c = &l.content;
        EditForm {
            slug: l.slug.clone(),
            title: c.title.clone(),
            subject: c.subject.clone(),
            phase: c.phase.as_str().into(),
            after_days: c.after_days.to_string(),
            send_window: c
                .send_window
                .as_ref()
                .map(|w| w.as_str().to_owned())
                .unwrap_or_default(),
            prompt: c.prompt.clone(),
            preheader: c.preheader.clone().unwrap_or_default(),
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
        let number = |text: &str| text.trim().parse::<i64>().unwrap_or(-1);
        let after_days = after_days(number(&self.after_days))
            .map_err(|e| add("after_days", e.message))
            .ok();
        let max_wait_days = match self.max_wait_days.trim() {
            "" => Some(None),
            text => max_wait_days(number(text))
                .map_err(|e| add("max_wait_days", format!("must be empty, or {}", e.message)))
                .ok()
                .map(Some),
        };
        let window = match self.send_window.trim() {
            "" => Some(None),
            w => SendWindow::parse(w)
                .map_err(|e| add("send_window", e.message))
                .ok()
                .map(Some),
        };
        let parsed = phase.is_some() && window.is_some() && max_wait_days.is_some();
        // The content rules run even when a field did not parse, so every problem shows at
        // once; the stand-ins below are never stored (the content is returned only if all
        // fields parsed).
        let content = LessonContent {
            title: self.title.trim().to_owned(),
            subject: self.subject.trim().to_owned(),
            phase: phase.unwrap_or_else(Phase::unparsed),
            after_days: after_days.unwrap_or(0),
            send_window: window.flatten(),
            prompt: lf(self.prompt.trim()),
            preheader: Some(self.preheader.trim().to_owned()).filter(|p| !p.is_empty()),
            wait_for_reply: self.wait_for_reply.is_some(),
            max_wait_days: max_wait_days.flatten(),
            body: lf(&self.body),
        };
        crate::curriculum::edit::content_errors(&content, errors);
        if !parsed {
            return None;
        }
        let found = errors.values().map(Vec::len).sum::<usize>() > known;
        (!found).then_some(content)
    }
}
