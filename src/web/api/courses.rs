//! `/api/v1/courses`: the courses this instance serves, with their phases and counts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, ApiResult};
use crate::app::App;

pub fn router() -> Router<App> {
    Router::new()
        .route("/courses", get(list))
        .route("/courses/{slug}", get(one))
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
