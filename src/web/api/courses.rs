//! `/api/v1/courses`: the courses this instance serves, with their phases and counts, and
//! `POST` to start one (`curriculum::start`, as the admin page and `drip courses new` do).

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, Body};
use crate::app::App;
use crate::auth::Admin;
use crate::curriculum::start::{self, NewCourse};
use crate::domain::Area;
use crate::web::access::Routes;

pub fn router() -> Routes {
    Routes::under(super::PREFIX)
        .get("/courses", &[Area::Courses], list)
        .post("/courses", &[Area::Courses], create)
        .get("/courses/{slug}", &[Area::Courses], one)
}

async fn list(State(app): State<App>) -> ApiResult {
    let courses = crate::courses::summaries(&app).await?;
    Ok(Json(json!({ "courses": courses })).into_response())
}

/// `{slug, title, phases: [{name, title, description?}], description?, from?, send_window?,
/// language?}`: 201 with the course, as `GET /courses/{slug}` shows it.
async fn create(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Body(new): Body<NewCourse>,
) -> ApiResult {
    let course = start::start(
        &app,
        &new,
        &format!("api:{}", admin.username),
        chrono::Utc::now(),
    )
    .await
    .map_err(crate::web::WebError::from)?;
    let summary = summary(&app, &course.slug).await?;
    Ok((StatusCode::CREATED, Json(json!({ "course": summary }))).into_response())
}

async fn one(State(app): State<App>, Path(slug): Path<String>) -> ApiResult {
    let course = summary(&app, &slug).await?;
    Ok(Json(json!({ "course": course })).into_response())
}

async fn summary(app: &App, slug: &str) -> Result<crate::courses::CourseSummary, ApiError> {
    crate::courses::summaries(app)
        .await?
        .into_iter()
        .find(|c| c.slug == slug)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no course {slug:?}"),
                Some("course"),
            )
        })
}
