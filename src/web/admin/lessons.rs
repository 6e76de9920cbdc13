//! The lesson list (by phase and position, with revision, last editor and counts), adding a
//! lesson, moving one up or down, publishing and unpublishing, and "send me a test".

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::Utc;
use serde_json::json;

use super::form::EditForm;
use super::{message, page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::curriculum::edit;
use crate::db::{self, courses::CourseRow, lessons::Lesson};
use crate::domain::Area;
use crate::mailer::Outgoing;
use crate::render::RenderedMail;
use crate::web::WebError;
use crate::web::access::Routes;

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/lessons", &[Area::Lessons], list)
        .get("/admin/lessons/new", &[Area::Lessons], new_form)
        .post("/admin/lessons/new", &[Area::Lessons], create)
        .post("/admin/lessons/{slug}/test", &[Area::Lessons], send_test)
}

/// The course the admin is working on, and its lessons.
pub(super) async fn course_and_lessons(
    app: &App,
    current: &super::CurrentCourse,
) -> Result<(CourseRow, Vec<Lesson>), WebError> {
    let course = current.course.clone();
    let lessons = db::lessons::list(&app.db, course.id).await?;
    Ok((course, lessons))
}

pub(super) fn find<'a>(lessons: &'a [Lesson], slug: &str) -> Result<&'a Lesson, WebError> {
    lessons
        .iter()
        .find(|l| l.slug == slug)
        .ok_or(WebError::NotFound("There is no lesson with this name."))
}

/// Renders `content` as lesson `lesson_id` of `lessons` (a lesson not yet made: at the
/// end), for the signed-in admin, exactly as the sender would.
pub(crate) fn render_for_admin(
    app: &App,
    course: &CourseRow,
    lessons: &[Lesson],
    lesson_id: i64,
    content: &crate::curriculum::LessonContent,
    admin: &Admin,
) -> anyhow::Result<RenderedMail> {
    let position = lessons.iter().find(|l| l.id == lesson_id).map_or_else(
        || lessons.iter().map(|l| l.position).max().unwrap_or(0) + 1,
        |l| l.position,
    );
    let email = if admin.email.is_empty() {
        "preview@example.org"
    } else {
        admin.email.as_str()
    };
    app.preview_lesson(
        course,
        lessons,
        (lesson_id, position),
        content,
        (email, &admin.username),
    )
}

async fn list(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let counts = db::stats::lesson_counts(&app.db).await?;
    let mut rows_by_phase: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    for (i, l) in lessons.iter().enumerate() {
        let (sent, answered) = counts.get(&l.id).copied().unwrap_or((0, 0));
        rows_by_phase.entry(l.content.phase.as_str()).or_default().push(json!({
            "slug": l.slug, "position": l.position, "title": l.content.title, "subject": l.content.subject,
            "status": l.status, "revision": l.revision, "author": l.author, "updated_at": l.updated_at,
            "after_days": l.content.after_days, "sent": sent, "answered": answered,
            "rate": if sent > 0 { format!("{:.0}%", 100.0 * answered as f64 / sent as f64) } else { "—".into() },
            "first": i == 0, "last": i + 1 == lessons.len(),
        }));
    }
    // In the course's order; lessons in a phase the course no longer declares come last.
    let mut groups: Vec<_> = course
        .phases
        .iter()
        .filter_map(|p| {
            rows_by_phase
                .remove(p.name.as_str())
                .map(|rows| json!({"label": p.title, "line": p.description, "lessons": rows}))
        })
        .collect();
    groups.extend(
        rows_by_phase
            .into_iter()
            .map(|(name, rows)| json!({"label": name, "line": "", "lessons": rows})),
    );
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "lessons",
        json!({"nav": "lessons", "course": course.title, "groups": groups}),
    )
}

fn phase_names(course: &CourseRow) -> Vec<&str> {
    course.phases.iter().map(|p| p.name.as_str()).collect()
}

async fn new_form(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let phase = lessons
        .last()
        .map_or(course.phases.first(), |l| &l.content.phase);
    let form = EditForm::blank(phase);
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "lesson_new",
        json!({"nav": "lessons", "form": form, "errors": {}, "phases": phase_names(&course)}),
    )
}

/// A new lesson goes at the end, as a draft: nobody receives it until it is published.
async fn create(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Form(form): Form<EditForm>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let mut errors = BTreeMap::<String, Vec<String>>::new();
    let content = form.content(&mut errors);
    match edit::create(
        &app.db,
        &course,
        &lessons,
        &form.slug,
        content,
        errors,
        &admin.username,
    )
    .await?
    {
        Ok(slug) => Ok(see_other(&format!(
            "/admin/lessons/{}?done=created",
            slug.as_str()
        ))),
        Err(errors) => page(
            &app,
            Some(&admin),
            StatusCode::UNPROCESSABLE_ENTITY,
            "lesson_new",
            json!({"nav": "lessons", "form": form, "errors": errors, "phases": phase_names(&course)}),
        ),
    }
}

/// Sends the saved lesson to the admin now, through the configured transport. It is not a
/// delivery (no subscriber, nothing to retry), so it does not go through the outbox: the
/// admin waits for the result and sees it.
async fn send_test(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let lesson = find(&lessons, &slug)?;
    let back = format!("/admin/lessons/{slug}");
    let Ok(to) = crate::domain::EmailAddress::parse(&admin.email) else {
        return message(
            &app,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "No address to send to",
            "Your admin account has no email address. Create it with `drip admin add USER --email ADDRESS`.",
            &back,
        );
    };
    let mail = render_for_admin(&app, &course, &lessons, lesson.id, &lesson.content, &admin)?;
    let now = Utc::now();
    let out = Outgoing {
        file_label: format!("test-{slug}-{}", now.timestamp()),
        to_name: admin.username.clone(),
        to: to.to_string(),
        subject: format!("[Test] {}", mail.subject),
        html: mail.html,
        text: mail.text,
        message_id: format!(
            "test.{slug}.{}@{}",
            now.timestamp_micros(),
            app.config.mail.reply_domain
        ),
        reply_to: None,
        unsubscribe: None,
        course: Some(course.slug.clone()),
        lesson: Some(slug.clone()),
        broadcast: None,
        from_name: None,
        from_address: None,
        list_id: None,
        answer: None,
    };
    match app.mailer.send(&out).await {
        Ok(()) => Ok(see_other(&format!("{back}?done=test_sent"))),
        Err(e) => message(
            &app,
            &admin,
            StatusCode::BAD_GATEWAY,
            "The test mail was not sent",
            &e.to_string(),
            &back,
        ),
    }
}
