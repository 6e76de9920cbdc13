//! `/admin/courses`: every course this instance serves, and the switcher that picks the one
//! the other admin pages (lessons, subscribers, replies, statistics) show.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde_json::json;

use super::{COURSE_COOKIE, page};
use crate::app::App;
use crate::auth::Admin;
use crate::web::WebError;

pub fn router() -> Router<App> {
    Router::new()
        .route("/admin/courses", get(list))
        .route("/admin/courses/switch", post(switch))
}

async fn list(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    let courses = crate::courses::summaries(&app).await?;
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "courses",
        json!({"nav": "courses", "courses": courses}),
    )
}

#[derive(serde::Deserialize)]
struct SwitchForm {
    course: String,
}

/// Works on another course: a cookie for the admin pages, then its lessons.
async fn switch(
    State(app): State<App>,
    Form(form): Form<SwitchForm>,
) -> Result<Response, WebError> {
    let course = app.course(Some(form.course.trim())).await?;
    let cookie = format!(
        "{COURSE_COOKIE}={}; Path=/admin; HttpOnly; SameSite=Strict",
        course.slug
    );
    let mut response = super::see_other("/admin/lessons");
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| WebError::Internal(e.into()))?,
    );
    Ok(response.into_response())
}
