//! The order of lessons and whether they are sent: moving a lesson up or down (after a
//! confirmation showing whom it affects) and publishing or unpublishing it. The scheduler
//! steps over drafts, so unpublishing never strands anyone.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;
use serde_json::json;

use super::lessons::{course_and_lessons, find};
use super::{message, page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::curriculum::edit;
use crate::domain::{Area, LessonStatus};
use crate::web::WebError;
use crate::web::access::Routes;

pub fn router() -> Routes {
    Routes::new()
        .post("/admin/lessons/{slug}/move", &[Area::Lessons], move_lesson)
        .post("/admin/lessons/{slug}/status", &[Area::Lessons], set_status)
}

#[derive(Deserialize)]
struct MoveForm {
    direction: String,
    #[serde(default)]
    confirmed: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// Swaps a lesson with its neighbour, after a confirmation showing whom it affects.
async fn move_lesson(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    let lesson = find(&lessons, &slug)?;
    let up = form.direction == "up";
    let view = crate::schedule::impact::View::of(&app.config);
    let swap = match edit::plan_swap(&app.db, &course, &lessons, lesson, up, view).await? {
        Ok(swap) if matches!(form.direction.as_str(), "up" | "down") => swap,
        refused => {
            let text = refused
                .err()
                .unwrap_or(edit::MoveRefused::AtTheEnd)
                .to_string();
            return message(
                &app,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Cannot move",
                &text,
                "/admin/lessons",
            );
        }
    };
    if form.confirmed.is_none() {
        return page(
            &app,
            Some(&admin),
            StatusCode::OK,
            "confirm_move",
            json!({
                "nav": "lessons", "lesson": lesson.content.title, "slug": slug, "direction": form.direction,
                "earlier": swap.earlier.content.title, "later": swap.later.content.title,
                "impact": swap.impact, "skipping": swap.skipping, "csrf": form.csrf,
            }),
        );
    }
    edit::apply_swap(&app.db, &course, &swap, &admin.username, &slug).await?;
    Ok(see_other("/admin/lessons"))
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
}

async fn set_status(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Form(form): Form<StatusForm>,
) -> Result<Response, WebError> {
    let (_, lessons) = course_and_lessons(&app, &current).await?;
    let lesson = find(&lessons, &slug)?;
    let Ok(status) = LessonStatus::parse(&form.status) else {
        return message(
            &app,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown status",
            "status: must be draft or published",
            "/admin/lessons",
        );
    };
    edit::set_status(&app.db, lesson, status, &admin.username).await?;
    Ok(see_other("/admin/lessons"))
}
