//! A lesson's revision history: who saved what and when, a line diff between any two
//! revisions, and reverting to an old one (which adds a new revision equal to it: history
//! is never rewritten).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::{Deserialize, Serialize};
use serde_json::json;
use similar::{ChangeTag, TextDiff};

use super::lessons::{course_and_lessons, find, render_for_admin};
use super::{message, page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::curriculum::edit::{self, Saved};
use crate::db;
use crate::domain::Area;
use crate::web::WebError;
use crate::web::access::Routes;

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/lessons/{slug}/revisions", &[Area::Lessons], history)
        .post("/admin/lessons/{slug}/revert", &[Area::Lessons], revert)
}

/// One line of a diff; `old`/`new` are 1-based line numbers on each side.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct DiffLine {
    pub tag: &'static str,
    pub old: Option<usize>,
    pub new: Option<usize>,
    pub text: String,
}

/// The changed lines of `new` against `old`, with three lines of context, in hunks.
pub fn diff(old: &str, new: &str) -> Vec<Vec<DiffLine>> {
    let d = TextDiff::from_lines(old, new);
    d.grouped_ops(3)
        .iter()
        .map(|group| {
            group
                .iter()
                .flat_map(|op| d.iter_changes(op))
                .map(|c| DiffLine {
                    tag: match c.tag() {
                        ChangeTag::Equal => "equal",
                        ChangeTag::Delete => "delete",
                        ChangeTag::Insert => "insert",
                    },
                    old: c.old_index().map(|i| i + 1),
                    new: c.new_index().map(|i| i + 1),
                    text: c.value().trim_end_matches(['\n', '\r']).to_owned(),
                })
                .collect()
        })
        .collect()
}

#[derive(Deserialize, Default)]
struct DiffQuery {
    a: Option<i64>,
    b: Option<i64>,
}

async fn history(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Response, WebError> {
    let (_, lessons) = course_and_lessons(&app, &current).await?;
    let lesson = find(&lessons, &slug)?;
    let revisions = db::lessons::revisions(&app.db, lesson.id).await?;
    let b = q.b.unwrap_or(lesson.revision);
    let a = q.a.unwrap_or((b - 1).max(1));
    let pick = |n: i64| revisions.iter().find(|r| r.revision == n);
    let comparison = match (pick(a), pick(b)) {
        (Some(ra), Some(rb)) => Some(
            json!({"a": a, "b": b, "hunks": diff(&ra.source, &rb.source), "same": ra.source == rb.source}),
        ),
        _ => None,
    };
    let rows: Vec<_> = revisions
        .iter()
        .map(|r| json!({"revision": r.revision, "author": r.author, "note": r.note, "created_at": r.created_at, "subject": r.subject, "current": r.revision == lesson.revision}))
        .collect();
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "revisions",
        json!({
            "nav": "lessons", "lesson": {"slug": lesson.slug, "title": lesson.content.title, "revision": lesson.revision},
            "revisions": rows, "comparison": comparison, "a": a, "b": b,
        }),
    )
}

#[derive(Deserialize)]
struct RevertForm {
    revision: i64,
}

async fn revert(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Form(form): Form<RevertForm>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let lesson = find(&lessons, &slug)?;
    let back = format!("/admin/lessons/{slug}/revisions");
    let Some(old) = db::lessons::revisions(&app.db, lesson.id)
        .await?
        .into_iter()
        .find(|r| r.revision == form.revision)
    else {
        return message(
            &app,
            &admin,
            StatusCode::NOT_FOUND,
            "No such revision",
            "This lesson has no revision with that number.",
            &back,
        );
    };
    let content = old.content().map_err(anyhow::Error::from)?;
    // Reverting a schedule moves the planned times back too, as saving it would.
    let change = edit::Change {
        course: &course,
        lessons: &lessons,
        lesson,
        base: lesson.revision,
        content,
        author: &admin.username,
        note: Some(format!("revert to revision {}", form.revision)),
        confirmed: true,
    };
    let render = |c: &crate::curriculum::LessonContent| {
        render_for_admin(&app, &course, &lessons, lesson.id, c, &admin).map(|_| ())
    };
    match edit::save(
        &app.db,
        change,
        render,
        crate::schedule::impact::View::of(&app.config),
    )
    .await?
    {
        Saved::Saved { .. } => Ok(see_other(&format!("/admin/lessons/{slug}?done=reverted"))),
        Saved::Unchanged => Ok(see_other(&format!("/admin/lessons/{slug}?done=unchanged"))),
        Saved::Refused(errors) => {
            let list: Vec<String> = errors
                .iter()
                .map(|(field, messages)| format!("{field}: {}", messages.join("; ")))
                .collect();
            message(
                &app,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not reverted",
                &format!(
                    "That revision no longer fits the course: {}",
                    list.join(" ")
                ),
                &back,
            )
        }
        Saved::Stale { .. } | Saved::NeedsConfirmation(_) => message(
            &app,
            &admin,
            StatusCode::CONFLICT,
            "Not reverted",
            "The lesson was saved meanwhile; look at the history again.",
            &back,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_shows_changed_lines_with_their_numbers() {
        let hunks = diff("a\nb\nc\n", "a\nB\nc\nd\n");
        let lines: Vec<_> = hunks
            .concat()
            .into_iter()
            .map(|l| (l.tag, l.old, l.new, l.text))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("equal", Some(1), Some(1), "a".to_owned()),
                ("delete", Some(2), None, "b".to_owned()),
                ("insert", None, Some(2), "B".to_owned()),
                ("equal", Some(3), Some(3), "c".to_owned()),
                ("insert", None, Some(4), "d".to_owned()),
            ]
        );
        assert!(diff("same\n", "same\n").is_empty());
    }
}
