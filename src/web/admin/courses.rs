//! `/admin/courses`: every course this instance serves, the switcher that picks the one the
//! other admin pages (lessons, subscribers, replies, statistics) show, and the form that
//! starts a new course (`curriculum::start`, as `drip courses new` and the API do).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde_json::json;

use super::{COURSE_COOKIE, page};
use crate::app::App;
use crate::auth::Admin;
use crate::curriculum::start::{self, NewCourse, StartError};
use crate::domain::Area;
use crate::web::WebError;
use crate::web::access::{self, Routes};

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/courses", &[Area::Courses], list)
        .post("/admin/courses", &[Area::Courses], start)
        // Picking the course one's own pages show changes nothing stored: every role may.
        .post("/admin/courses/switch", &[Area::Account], switch)
}

async fn list(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    list_page(&app, &admin, StatusCode::OK, &StartForm::default(), None).await
}

async fn list_page(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    form: &StartForm,
    error: Option<(&str, String)>,
) -> Result<Response, WebError> {
    let courses = crate::courses::summaries(app).await?;
    let languages: Vec<String> = app
        .renderer
        .catalogue()
        .languages()
        .map(str::to_owned)
        .collect();
    let errors = match error {
        Some((field, message)) => json!({ field: message }),
        None => json!({}),
    };
    page(
        app,
        Some(admin),
        status,
        "courses",
        json!({"nav": "courses", "courses": courses, "form": form, "errors": errors,
               "languages": languages, "default_window": start::DEFAULT_WINDOW}),
    )
}

/// The new-course form as typed: the phases one a line (`name: Title`).
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
struct StartForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    send_window: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    phases: String,
}

/// Starts a course, then works on it: the next step is its first lesson.
async fn start(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Form(form): Form<StartForm>,
) -> Result<Response, WebError> {
    let refuse = |field: &str, message: String| (field.to_owned(), message);
    let new = start::phases_from_lines(&form.phases).map(|phases| NewCourse {
        slug: match form.slug.trim() {
            "" => start::slug_of(&form.title),
            s => s.to_owned(),
        },
        title: form.title.clone(),
        description: form.description.clone(),
        from: form.from.clone(),
        send_window: form.send_window.clone(),
        language: form.language.clone(),
        phases,
    });
    let refused = match new {
        Err(e) => refuse(e.field, e.message),
        Ok(new) => match start::start(&app, &new, &admin.username, chrono::Utc::now()).await {
            Ok(course) => {
                return working_on(&course.slug, "/admin/lessons/new");
            }
            Err(StartError::Invalid(e)) => refuse(e.field, e.message),
            Err(e @ StartError::Taken(_)) => refuse("slug", e.to_string()),
            Err(StartError::Other(e)) => return Err(WebError::Internal(e)),
        },
    };
    let (field, message) = refused;
    list_page(
        &app,
        &admin,
        StatusCode::UNPROCESSABLE_ENTITY,
        &form,
        Some((&field, message)),
    )
    .await
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
    working_on(&course.slug, access::home(admin.role))
}

/// The cookie that makes `slug` the course the admin pages show, and a 303 to `then`.
fn working_on(slug: &str, then: &str) -> Result<Response, WebError> {
    let cookie = format!("{COURSE_COOKIE}={slug}; Path=/admin; HttpOnly; SameSite=Strict");
    let mut response = super::see_other(then);
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| WebError::Internal(e.into()))?,
    );
    Ok(response.into_response())
}
