//! `/api/v1/courses`: the courses this instance serves, with their phases and counts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult};
use crate::app::App;
use crate::domain::Area;
use crate::web::access::Routes;

pub fn router() -> Routes {
    Routes::under(super::PREFIX)
        .get("/courses", &[Area::Courses], list)
        .get("/courses/{slug}", &[Area::Courses], one)
}

async fn list(State(app): State<App>) -> ApiResult {
    let courses = crate::courses::summaries(&app).await?;
    Ok(Json(json!({ "courses": courses })).into_response())
}

async fn one(State(app): State<App>, Path(slug): Path<String>) -> ApiResult {
    let course = crate::courses::summaries(&app)
        .await?
        .into_iter()
        .find(|c| c.slug == slug)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no course {slug:?}"),
                Some("course"),
            )
        })?;
    Ok(Json(json!({ "course": course })).into_response())
}
