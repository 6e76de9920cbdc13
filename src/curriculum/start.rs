//! Starting a new course from the admin UI, the API or `drip courses new`: the same course a
//! folder makes. A course is wholly its folder, so starting one writes
//! `lessons/<slug>/course.toml`, reads it back through the file parser (one set of rules for
//! both ways in) and syncs it. It has no lesson yet, so it is not open for sign-up until one
//! is published; `drip lessons export` then writes its lessons next to it for git.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{CourseDir, load_dir, sync_course};
use crate::app::App;
use crate::db::{self, courses::CourseRow};
use crate::domain::{InvalidInput, Language, Phase, SendWindow, Slug};

/// What a new course needs; the rest of `course.toml` can be added in the file later.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCourse {
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The sender's display name, or "Name <address>"; empty: the title.
    #[serde(default)]
    pub from: String,
    /// Empty: every day at 08:00 in the reader's time zone.
    #[serde(default)]
    pub send_window: String,
    /// Empty: English.
    #[serde(default)]
    pub language: String,
    /// In the order the lessons go through them.
    pub phases: Vec<NewPhase>,
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPhase {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
}

/// Why a course was not started. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// A course with that slug exists (as a folder or in the database, removed ones too).
    #[error("slug: a course {0:?} exists already")]
    Taken(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub const DEFAULT_WINDOW: &str = "0 0 8 * * *";

/// Reads the phases as an admin types them: one a line, `name: Title` (or a bare title, whose
/// name is made from it), an optional ` - description` after the title.
pub fn phases_from_lines(text: &str) -> Result<Vec<NewPhase>, InvalidInput> {
    let mut phases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, rest) = match line.split_once(':') {
            Some((name, rest)) => (name.trim().to_owned(), rest.trim()),
            None => (slug_of(line), line),
        };
        let (title, description) = match rest.split_once(" - ") {
            Some((t, d)) => (t.trim(), d.trim()),
            None => (rest, ""),
        };
        if title.is_empty() {
            return Err(InvalidInput::new(
                "phases",
                format!("line {}: a phase needs a title (name: Title)", i + 1),
            ));
        }
        phases.push(NewPhase {
            name,
            title: title.to_owned(),
            description: description.to_owned(),
        });
    }
    Ok(phases)
}

/// A slug made from a title: lowercase ASCII letters and digits, other runs become one hyphen.
pub fn slug_of(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-')
        .chars()
        .take(80)
        .collect::<String>()
}

impl NewCourse {
    /// Checks every field, naming the first that is wrong; returns `course.toml`'s text.
    pub fn to_toml(&self) -> Result<String, InvalidInput> {
        let slug = Slug::parse(self.slug.trim())?;
        let title = self.title.trim();
        if title.is_empty() {
            return Err(InvalidInput::new("title", "a course needs a title"));
        }
        // A sender name is one line without quotes (the file's rule); a title may quote.
        let from = match self.from.trim() {
            "" => title.replace('"', ""),
            from => from.to_owned(),
        };
        let window = match self.send_window.trim() {
            "" => DEFAULT_WINDOW,
            w => w,
        };
        SendWindow::parse(window)?;
        let language = match self.language.trim() {
            "" => "en",
            l => l,
        };
        Language::parse(language)?;
        if self.phases.is_empty() {
            return Err(InvalidInput::new(
                "phases",
                "a course needs at least one phase (name: Title, one a line)",
            ));
        }
        let mut seen = Vec::new();
        for p in &self.phases {
            let name = Phase::parse(p.name.trim())
                .map_err(|e| InvalidInput::new("phases", format!("phase name {e}")))?;
            if seen.contains(&name) {
                return Err(InvalidInput::new(
                    "phases",
                    format!("phase {:?} is named twice", name.as_str()),
                ));
            }
            if p.title.trim().is_empty() {
                return Err(InvalidInput::new(
                    "phases",
                    format!("phase {:?} needs a title", name.as_str()),
                ));
            }
            seen.push(name);
        }
        let description = match self.description.trim() {
            "" => title,
            d => d,
        };
        let mut text = String::new();
        text.push_str(&format!("title = {}\n", quoted(title)));
        text.push_str(&format!("description = {}\n", quoted(description)));
        text.push_str(&format!("from = {}\n", quoted(&from)));
        text.push_str(&format!("send_window = {}\n", quoted(window)));
        text.push_str(&format!("language = {}\n", quoted(language)));
        text.push_str("\n# The phases, in the order the lessons go through them.\n");
        for (p, name) in self.phases.iter().zip(&seen) {
            text.push_str(&format!(
                "[[phases]]\nname = {}\ntitle = {}\n",
                quoted(name.as_str()),
                quoted(p.title.trim())
            ));
            if !p.description.trim().is_empty() {
                text.push_str(&format!("description = {}\n", quoted(p.description.trim())));
            }
            text.push('\n');
        }
        // The file parser has the last word: what it refuses, no folder is made for.
        super::parse_course(slug.as_str(), &text).map_err(|problems| {
            let said: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
            // The file's messages begin with the key they are about.
            let first = said.first().and_then(|m| m.split_whitespace().next());
            let field = [
                "title",
                "description",
                "from",
                "send_window",
                "language",
                "phases",
            ]
            .into_iter()
            .find(|f| first == Some(*f))
            .unwrap_or("course");
            InvalidInput::new(field, said.join("; "))
        })?;
        Ok(text)
    }
}

/// One TOML basic string (escapes included).
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Writes the folder and syncs it; returns the new course. On any failure nothing stays:
/// neither the folder nor a row.
pub async fn start(
    app: &App,
    new: &NewCourse,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<CourseRow, StartError> {
    let text = new.to_toml()?;
    let slug = new.slug.trim().to_owned();
    let root = &app.config.course.lessons_dir;
    // Case-insensitive, as lint's duplicate-slug rule: a folder `Foo` and a new `foo` collide.
    let folders = super::course_dirs(root).map_err(|p| anyhow::anyhow!("{p}"))?;
    let on_disk = folders.iter().any(|f| {
        f.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.eq_ignore_ascii_case(&slug))
    });
    let in_db = db::courses::list(&app.db)
        .await?
        .iter()
        .any(|c| c.slug.eq_ignore_ascii_case(&slug));
    if on_disk || in_db || root.join(&slug).exists() {
        return Err(StartError::Taken(slug));
    }
    let dir = root.join(&slug);
    write_folder(&dir, &text)?;
    match sync_new(app, &dir, actor, now).await {
        Ok(row) => Ok(row),
        Err(e) => {
            if let Err(cleanup) = std::fs::remove_dir_all(&dir) {
                tracing::error!(dir = %dir.display(), error = %cleanup, "could not remove the folder of a course that failed to start");
            }
            Err(StartError::Other(e))
        }
    }
}

/// Makes the folder (refusing one that exists) and writes `course.toml` through a temporary
/// file, so a crash leaves no half-written file for the next sync to trip on.
fn write_folder(dir: &Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let tmp: PathBuf = dir.join(".course.toml.tmp");
    let written = std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, dir.join("course.toml")))
        .with_context(|| format!("cannot write {}", dir.join("course.toml").display()));
    if written.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    written
}

async fn sync_new(
    app: &App,
    dir: &Path,
    actor: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<CourseRow> {
    let course: CourseDir = load_dir(dir).map_err(|problems| {
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", said.join("\n"))
    })?;
    let report = sync_course(&app.db, &course, false, now.timestamp()).await?;
    let row = db::courses::by_id(&app.db, report.course_id).await?;
    // The course exists from here on: a failure to note who started it is logged, never a
    // reason to take the folder away again.
    let logged = async {
        let mut tx = app.db.begin_write().await?;
        db::events::log(
            &mut tx,
            None,
            actor,
            "course_started",
            &serde_json::json!({"course": report.course}),
            now.timestamp(),
        )
        .await?;
        tx.commit().await?;
        anyhow::Ok(())
    };
    if let Err(e) = logged.await {
        tracing::warn!(course = %report.course, error = %format!("{e:#}"), "course started; its event was not logged");
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course(phases: &str) -> NewCourse {
        NewCourse {
            slug: "calm-mornings".into(),
            title: "Calm \"Mornings\"".into(),
            phases: phases_from_lines(phases).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn the_toml_made_reads_back_as_the_same_course() {
        let text = course("wake: Wake up - first light\nBreathe Slowly\n")
            .to_toml()
            .unwrap();
        let parsed = super::super::parse_course("calm-mornings", &text).unwrap();
        assert_eq!(parsed.title, "Calm \"Mornings\"");
        assert_eq!(parsed.from, "Calm Mornings");
        assert_eq!(parsed.send_window.as_str(), DEFAULT_WINDOW);
        let names: Vec<_> = parsed
            .phases
            .iter()
            .map(|p| p.name.as_str().to_owned())
            .collect();
        assert_eq!(names, ["wake", "breathe-slowly"]);
        assert_eq!(
            parsed.phases.iter().next().unwrap().description,
            "first light"
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut c = course("a: A");
        c.slug = "Bad Slug".into();
        assert_eq!(c.to_toml().unwrap_err().field, "slug");
        let mut c = course("a: A");
        c.title = "  ".into();
        assert_eq!(c.to_toml().unwrap_err().field, "title");
        let mut c = course("a: A");
        c.send_window = "every day".into();
        assert_eq!(c.to_toml().unwrap_err().field, "send_window");
        assert_eq!(course("").to_toml().unwrap_err().field, "phases");
        assert_eq!(course("a: A\na: B").to_toml().unwrap_err().field, "phases");
        assert_eq!(
            course("Not A Slug: A").to_toml().unwrap_err().field,
            "phases"
        );
        assert_eq!(phases_from_lines("a:").unwrap_err().field, "phases");
        let mut c = course("a: A");
        c.from = "Say \"hi\"".into();
        assert_eq!(
            c.to_toml().unwrap_err().field,
            "from",
            "the file parser's rule, named"
        );
    }
}
