//! The order of lessons and whether they are sent: moving a lesson up or down (after a
//! confirmation showing whom it affects) and publishing or unpublishing it. The scheduler
//! steps over drafts, so unpublishing never strands anyone.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Form, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::lessons::{course_and_lessons, find};
use super::{impact, message, page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::db;
use crate::web::WebError;

pub fn router() -> Router<App> {
    Router::new()
        .route("/admin/lessons/{slug}/move", post(move_lesson))
        .route("/admin/lessons/{slug}/status", post(set_status))
}

#[derive(Deserialize)]
struct MoveForm {
    direction: String,
    #[serde(default)]
    confirmed: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// Swaps a lesson with its neighbour. Progress is stored as "position of the last lesson
/// queued", so enrollments between the two positions are remapped: whoever already had the
/// earlier lesson keeps having had it (and skips the one moved before it: a lesson is never
/// sent twice); whoever had neither gets both in the new order.
async fn move_lesson(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app).await?;
    let lesson = find(&lessons, &slug)?;
    let i = lessons.iter().position(|l| l.id == lesson.id).unwrap_or(0);
    let j = match form.direction.as_str() {
        "up" if i > 0 => i - 1,
        "down" if i + 1 < lessons.len() => i + 1,
        _ => {
            return message(
                &app,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Cannot move",
                "This lesson is already at that end of the course.",
                "/admin/lessons",
            );
        }
    };
    let (earlier, later) = (&lessons[i.min(j)], &lessons[i.max(j)]);
    if earlier.content.phase != later.content.phase {
        let text = format!(
            "“{}” and “{}” are in different phases; phases go honesty, accountability, practice. Change the lesson's phase in the editor first.",
            lesson.content.title, lessons[j].content.title
        );
        return message(
            &app,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Cannot move",
            &text,
            "/admin/lessons",
        );
    }
    let (a, b) = (earlier.position, later.position);
    let mut reordered = lessons.clone();
    for l in reordered.iter_mut() {
        if l.id == earlier.id {
            l.position = b;
        } else if l.id == later.id {
            l.position = a;
        }
    }
    reordered.sort_by_key(|l| l.position);
    let from = lessons
        .iter()
        .filter(|l| l.is_published() && l.position < a)
        .map(|l| l.position)
        .max()
        .unwrap_or(0);
    let impact = impact::between(&app, &course, &reordered, from, a).await?;
    let skipping = db::stats::waiting_between(&app.db, course.id, a, a + 1)
        .await?
        .len();
    if form.confirmed.is_none() {
        return page(
            &app,
            Some(&admin),
            StatusCode::OK,
            "confirm_move",
            json!({
                "nav": "lessons", "lesson": lesson.content.title, "slug": slug, "direction": form.direction,
                "earlier": earlier.content.title, "later": later.content.title, "impact": impact, "skipping": skipping, "csrf": form.csrf,
            }),
        );
    }
    let now = Utc::now().timestamp();
    let mut tx = app.db.begin_write().await?;
    db::lessons::set_position(
        &mut tx,
        earlier.id,
        b,
        &format!("{b:02}-{}.md", earlier.slug),
    )
    .await?;
    db::lessons::set_position(&mut tx, later.id, a, &format!("{a:02}-{}.md", later.slug)).await?;
    db::stats::remap_positions(&mut tx, course.id, a, b).await?;
    impact::apply(&mut tx, &impact, now).await?;
    db::events::log(
        &mut tx,
        None,
        &admin.username,
        "lesson_moved",
        &json!({"lesson": slug, "direction": form.direction}),
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(see_other("/admin/lessons"))
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
}

async fn set_status(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Form(form): Form<StatusForm>,
) -> Result<Response, WebError> {
    let (_, lessons) = course_and_lessons(&app).await?;
    let lesson = find(&lessons, &slug)?;
    if !matches!(form.status.as_str(), "draft" | "published") {
        return message(
            &app,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown status",
            "status: must be draft or published",
            "/admin/lessons",
        );
    }
    let now = Utc::now().timestamp();
    let mut tx = app.db.begin_write().await?;
    db::stats::set_lesson_status(&mut tx, lesson.id, &form.status).await?;
    db::events::log(
        &mut tx,
        None,
        &admin.username,
        "lesson_status",
        &json!({"lesson": slug, "status": form.status}),
        now,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(see_other("/admin/lessons"))
}
