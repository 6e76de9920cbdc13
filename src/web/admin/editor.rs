//! The lesson editor: the form, a preview of the exact mail (HTML and text, rendered by the
//! sender's renderer) before anything is saved, lint problems beside their field, and saving
//! as a new revision, after a confirmation showing whom a schedule change reaches.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;
use serde_json::json;

use super::form::{EditForm, Errors};
use super::lessons::{course_and_lessons, find, render_for_admin};
use super::{page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::curriculum::edit::{self, Saved};
use crate::db::{courses::CourseRow, lessons::Lesson};
use crate::domain::Area;
use crate::web::WebError;
use crate::web::access::Routes;

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/lessons/{slug}", &[Area::Lessons], edit)
        .post("/admin/lessons/{slug}", &[Area::Lessons], save)
        .post("/admin/lessons/{slug}/preview", &[Area::Lessons], preview)
}

fn done_text(code: &str) -> &'static str {
    match code {
        "saved" => "Saved as a new revision.",
        "created" => "Lesson created as a draft. Publish it from the lesson list when it is ready.",
        "test_sent" => "A test mail is on its way to your address.",
        "reverted" => "Reverted: the old revision is now the current one (as a new revision).",
        "unchanged" => "Nothing changed, so nothing was saved.",
        _ => "",
    }
}

#[derive(Deserialize, Default)]
struct EditQuery {
    #[serde(default)]
    done: String,
}

/// The editor page, with a preview of `content` (the saved lesson or the form's).
#[allow(clippy::too_many_arguments)]
fn editor_page(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    (course, lesson): (&CourseRow, &Lesson),
    form: &EditForm,
    errors: &Errors,
    preview: Option<serde_json::Value>,
    notice: &str,
) -> Result<Response, WebError> {
    page(
        app,
        Some(admin),
        status,
        "editor",
        json!({
            "nav": "lessons",
            "lesson": {"slug": lesson.slug, "status": lesson.status, "revision": lesson.revision, "author": lesson.author, "updated_at": lesson.updated_at, "title": lesson.content.title},
            "form": form, "errors": errors, "preview": preview, "notice": notice,
            "phases": course.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        }),
    )
}

async fn edit(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Query(q): Query<EditQuery>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let lesson = find(&lessons, &slug)?;
    let preview = render_for_admin(&app, &course, &lessons, lesson.id, &lesson.content, &admin)
        .map(|m| json!({"subject": m.subject, "html": m.html, "text": m.text, "saved": true}))
        .ok();
    editor_page(
        &app,
        &admin,
        StatusCode::OK,
        (&course, lesson),
        &EditForm::from_lesson(lesson),
        &Errors::new(),
        preview,
        done_text(&q.done),
    )
}

/// Checks the form and renders it as a mail; nothing is stored.
async fn preview(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Form(form): Form<EditForm>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let lesson = find(&lessons, &slug)?;
    let mut errors = Errors::new();
    if let Some(content) = form.content(&mut errors) {
        match render_for_admin(&app, &course, &lessons, lesson.id, &content, &admin) {
            Ok(m) => {
                let preview =
                    json!({"subject": m.subject, "html": m.html, "text": m.text, "saved": false});
                return editor_page(
                    &app,
                    &admin,
                    StatusCode::OK,
                    (&course, lesson),
                    &form,
                    &errors,
                    Some(preview),
                    "Preview of your changes. Nothing is saved yet.",
                );
            }
            Err(e) => errors
                .entry("body".into())
                .or_default()
                .push(format!("{e:#}")),
        }
    }
    editor_page(
        &app,
        &admin,
        StatusCode::UNPROCESSABLE_ENTITY,
        (&course, lesson),
        &form,
        &errors,
        None,
        "",
    )
}

async fn save(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Form(form): Form<EditForm>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let lesson = find(&lessons, &slug)?;
    let mut errors = Errors::new();
    let refused = |errors: &Errors| {
        editor_page(
            &app,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            (&course, lesson),
            &form,
            errors,
            None,
            "Not saved: fix the problems marked below.",
        )
    };
    let Some(content) = form.content(&mut errors).filter(|_| errors.is_empty()) else {
        return refused(&errors);
    };
    let change = edit::Change {
        course: &course,
        lessons: &lessons,
        lesson,
        base: form.base_revision,
        content: content.clone(),
        author: &admin.username,
        note: None,
        confirmed: form.confirmed.is_some(),
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
        Saved::Saved { .. } => Ok(see_other(&format!("/admin/lessons/{slug}?done=saved"))),
        Saved::Unchanged => Ok(see_other(&format!("/admin/lessons/{slug}?done=unchanged"))),
        Saved::Refused(errors) => refused(&errors),
        Saved::NeedsConfirmation(impact) => page(
            &app,
            Some(&admin),
            StatusCode::OK,
            "confirm_save",
            json!({
                "nav": "lessons", "lesson": {"slug": lesson.slug, "title": lesson.content.title},
                "form": form, "impact": impact,
                "before": {"after_days": lesson.content.after_days, "send_window": lesson.content.send_window},
                "after": {"after_days": content.after_days, "send_window": content.send_window},
            }),
        ),
        Saved::Stale { revision } => {
            errors.entry("form".into()).or_default().push(format!("Not saved: revision {revision} was saved meanwhile. Open the lesson again to see it; your text is kept below."));
            editor_page(
                &app,
                &admin,
                StatusCode::CONFLICT,
                (&course, lesson),
                &form,
                &errors,
                None,
                "",
            )
        }
    }
}
