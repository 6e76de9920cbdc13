//! The lesson list (by phase and position, with revision, last editor and counts), adding a
//! lesson, moving one up or down, publishing and unpublishing, and "send me a test".

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::Utc;
use serde_json::json;

use super::form::{EditForm, phase_problem};
use super::{message, page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::db::{self, courses::CourseRow, lessons::Lesson};
use crate::domain::{Phase, Slug};
use crate::mailer::Outgoing;
use crate::render::{LessonVars, RenderedMail};
use crate::web::WebError;

pub fn router() -> Router<App> {
    Router::new()
        .route("/admin/lessons", get(list))
        .route("/admin/lessons/new", get(new_form).post(create))
        .route("/admin/lessons/{slug}/test", post(send_test))
}

pub(super) async fn course_and_lessons(app: &App) -> Result<(CourseRow, Vec<Lesson>), WebError> {
    let course = app.course().await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    Ok((course, lessons))
}

pub(super) fn find<'a>(lessons: &'a [Lesson], slug: &str) -> Result<&'a Lesson, WebError> {
    lessons
        .iter()
        .find(|l| l.slug == slug)
        .ok_or(WebError::NotFound("There is no lesson with this name."))
}

/// Renders `content` as lesson `lesson_id` of `lessons`, for the signed-in admin, with the
/// renderer and variables the sender uses.
pub(super) fn render_for_admin(
    app: &App,
    course: &CourseRow,
    lessons: &[Lesson],
    lesson_id: i64,
    content: &crate::curriculum::LessonContent,
    admin: &Admin,
) -> anyhow::Result<RenderedMail> {
    let published: Vec<&Lesson> = lessons.iter().filter(|l| l.is_published()).collect();
    let number = published
        .iter()
        .position(|l| l.id == lesson_id)
        .map(|i| i + 1)
        .unwrap_or(published.len() + 1);
    let vars = LessonVars {
        title: content.title.clone(),
        number,
        of: published.len().max(number),
        phase: content.phase.label().to_owned(),
    };
    let subscriber = db::subscribers::SubscriberRow {
        id: 0,
        email: if admin.email.is_empty() {
            "preview@example.org".into()
        } else {
            admin.email.clone()
        },
        name: admin.username.clone(),
        timezone: app.config.schedule.default_timezone.clone(),
        status: "active".into(),
        created_at: 0,
        confirmed_at: None,
        confirm_sent_at: None,
        status_at: 0,
    };
    app.renderer
        .lesson(content, &vars, &app.mail_context(course, &subscriber))
}

async fn list(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app).await?;
    let counts = db::stats::lesson_counts(&app.db).await?;
    let mut phases: BTreeMap<Phase, Vec<serde_json::Value>> = BTreeMap::new();
    for (i, l) in lessons.iter().enumerate() {
        let (sent, answered) = counts.get(&l.id).copied().unwrap_or((0, 0));
        phases.entry(l.content.phase).or_default().push(json!({
            "slug": l.slug, "position": l.position, "title": l.content.title, "subject": l.content.subject,
            "status": l.status, "revision": l.revision, "author": l.author, "updated_at": l.updated_at,
            "after_days": l.content.after_days, "sent": sent, "answered": answered,
            "rate": if sent > 0 { format!("{:.0}%", 100.0 * answered as f64 / sent as f64) } else { "—".into() },
            "first": i == 0, "last": i + 1 == lessons.len(),
        }));
    }
    let groups: Vec<_> = phases
        .into_iter()
        .map(|(p, rows)| json!({"label": p.label(), "line": course.phase_lines().get(p.as_str()).cloned().unwrap_or_default(), "lessons": rows}))
        .collect();
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "lessons",
        json!({"nav": "lessons", "course": course.title, "groups": groups}),
    )
}

async fn new_form(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    let (_, lessons) = course_and_lessons(&app).await?;
    let phase = lessons
        .last()
        .map(|l| l.content.phase)
        .unwrap_or(Phase::Honesty);
    let form = EditForm::blank(phase);
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "lesson_new",
        json!({"nav": "lessons", "form": form, "errors": {}, "phases": Phase::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>()}),
    )
}

/// A new lesson goes at the end, as a draft: nobody receives it until it is published.
async fn create(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Form(form): Form<EditForm>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app).await?;
    let mut errors = BTreeMap::<String, Vec<String>>::new();
    let slug = Slug::parse(form.slug.trim()).map_err(|e| {
        errors
            .entry("slug".into())
            .or_default()
            .push(e.message.clone());
    });
    if let Ok(s) = &slug
        && lessons.iter().any(|l| l.slug == s.as_str())
    {
        errors
            .entry("slug".into())
            .or_default()
            .push("a lesson with this name exists".into());
    }
    let content = form.content(&mut errors);
    let position = lessons.iter().map(|l| l.position).max().unwrap_or(0) + 1;
    if let Some(c) = &content
        && let Some(p) = phase_problem(&lessons, None, position, c.phase)
    {
        errors.entry("phase".into()).or_default().push(p);
    }
    let (Ok(slug), Some(content), true) = (slug, content, errors.is_empty()) else {
        return page(
            &app,
            Some(&admin),
            StatusCode::UNPROCESSABLE_ENTITY,
            "lesson_new",
            json!({"nav": "lessons", "form": form, "errors": errors, "phases": Phase::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>()}),
        );
    };
    let now = Utc::now().timestamp();
    let mut tx = app.db.begin_write().await?;
    let position = db::stats::max_position(&mut tx, course.id).await? + 1;
    let file_name = format!("{position:02}-{}.md", slug.as_str());
    let id = db::lessons::insert(
        &mut tx,
        course.id,
        slug.as_str(),
        position,
        &file_name,
        &content,
        &content.to_source(),
        &admin.username,
        now,
    )
    .await?;
    db::stats::set_lesson_status(&mut tx, id, "draft").await?;
    db::events::log(
        &mut tx,
        None,
        &admin.username,
        "lesson_created",
        &json!({"lesson": slug.as_str()}),
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(see_other(&format!(
        "/admin/lessons/{}?done=created",
        slug.as_str()
    )))
}

/// Sends the saved lesson to the admin now, through the configured transport. It is not a
/// delivery (no subscriber, nothing to retry), so it does not go through the outbox: the
/// admin waits for the result and sees it.
async fn send_test(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app).await?;
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
