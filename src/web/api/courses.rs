//! `/api/v1/courses`: the courses this instance serves, with their phases and counts, and
//! `POST` to start one (`curriculum::start`, as the admin page and `drip courses new` do).

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ApiResult, Body};
use crate::app::App;
use crate::auth::Admin;
use crate::courses::CourseSummary;
use crate::curriculum::start::{self, NewCourse};
use crate::domain::Area;
use crate::web::access::Routes;
use crate::web::error::ErrorBody;

pub fn router() -> Routes {
    Routes::under(super::PREFIX)
        .get("/courses", &[Area::Courses], list)
        .post("/courses", &[Area::Courses], create)
        .get("/courses/{slug}", &[Area::Courses], one)
}

#[derive(Serialize, ToSchema)]
pub(super) struct CourseList {
    courses: Vec<CourseSummary>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct OneCourse {
    course: CourseSummary,
}

/// The courses this instance serves, with their phases and counts.
#[utoipa::path(get, path = "/courses", tag = "courses",
    responses((status = 200, body = CourseList)))]
pub(super) async fn list(State(app): State<App>) -> ApiResult {
    let courses = crate::courses::summaries(&app).await?;
    Ok(Json(CourseList { courses }).into_response())
}

/// `{slug, title, phases: [{name, title, description?}], description?, from?, send_window?,
/// language?}`: 201 with the course, as `GET /courses/{slug}` shows it.
#[utoipa::path(post, path = "/courses", tag = "courses", request_body = NewCourse,
    responses(
        (status = 201, body = OneCourse),
        (status = 409, description = "A course with that slug exists", body = ErrorBody),
    ))]
pub(super) async fn create(
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
    Ok((StatusCode::CREATED, Json(OneCourse { course: summary })).into_response())
}

/// One course.
#[utoipa::path(get, path = "/courses/{slug}", tag = "courses",
    params(("slug" = String, Path, description = "The course's slug")),
    responses((status = 200, body = OneCourse)))]
pub(super) async fn one(State(app): State<App>, Path(slug): Path<String>) -> ApiResult {
    let course = summary(&app, &slug).await?;
    Ok(Json(OneCourse { course }).into_response())
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
