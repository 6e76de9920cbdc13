//! `/admin/courses`: every course this instance serves, and the switcher that picks the one
//! the other admin pages (lessons, subscribers, replies, statistics) show.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde_json::json;

use super::{COURSE_COOKIE, page};
use crate::app::App;
use crate::auth::Admin;
use crate::domain::Area;
use crate::web::WebError;
use crate::web::access::{self, Routes};

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/courses", &[Area::Courses], list)
        // Picking the course one's own pages show changes nothing stored: every role may.
        .post("/admin/courses/switch", &[Area::Account], switch)
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

/// Works on another course: a cookie for the admin pages, then the admin's first section.
async fn switch(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Form(form): Form<SwitchForm>,
) -> Result<Response, WebError> {
    let course = app.course(Some(form.course.trim())).await?;
    let cookie = format!(
        "{COURSE_COOKIE}={}; Path=/admin; HttpOnly; SameSite=Strict",
        course.slug
    );
    let mut response = super::see_other(access::home(admin.role));
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| WebError::Internal(e.into()))?,
    );
    Ok(response.into_response())
}
