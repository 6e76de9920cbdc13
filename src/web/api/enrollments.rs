//! `/api/v1/enrollments`: a person's place in one course. `POST` (in `subscribers.rs`, where
//! it shares the sign-up with `POST /subscribers`) enrolls; `GET` lists and reads; `DELETE`
//! stops the enrollment, as the lesson mail's one-click unsubscribe does, leaving the
//! person's other courses running.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::subscribers::{enrollment_state, find};
use super::{ApiError, ApiResult, Id, Params, time};
use crate::app::App;
use crate::auth::Admin;
use crate::db::{self, courses::CourseRow, enrollments::EnrollmentRow};
use crate::domain::{Area, EnrollmentStatus, Pace};
use crate::subscriptions;
use crate::web::access::Routes;
use crate::web::error::ErrorBody;

pub fn router() -> Routes {
    const SUBSCRIBERS: &[Area] = &[Area::Subscribers];
    Routes::under(super::PREFIX)
        .get("/enrollments", SUBSCRIBERS, list)
        .get("/enrollments/{id}", SUBSCRIBERS, one)
        .delete("/enrollments/{id}", SUBSCRIBERS, stop)
}

/// One person in one course.
#[derive(Serialize, ToSchema)]
pub(super) struct CourseEnrollment {
    id: i64,
    subscriber: i64,
    email: String,
    /// The course's slug.
    course: String,
    /// active, paused, completed (caught_up in an evergreen course) or stopped.
    status: &'static str,
    /// The lesson reached (0: none sent yet).
    position: i64,
    next_due_at: Option<String>,
    waiting_reply: bool,
    last_sent_at: Option<String>,
    created_at: Option<String>,
    /// Their own days and hour, if they chose them.
    pace: Option<Pace>,
}

fn view(e: &EnrollmentRow, email: String, courses: &[CourseRow]) -> CourseEnrollment {
    let course = courses.iter().find(|c| c.id == e.course_id);
    CourseEnrollment {
        id: e.id,
        subscriber: e.subscriber_id,
        email,
        course: course.map(|c| c.slug.clone()).unwrap_or_default(),
        status: enrollment_state(e, course),
        position: e.position,
        next_due_at: time(e.next_due_at),
        waiting_reply: e.waiting_reply != 0,
        last_sent_at: time(e.last_sent_at),
        created_at: time(Some(e.created_at)),
        pace: e.pace(),
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct OneEnrollment {
    enrollment: CourseEnrollment,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Stopped {
    enrollment: CourseEnrollment,
    /// false: it was already stopped.
    changed: bool,
}

#[derive(Serialize, ToSchema)]
pub(super) struct EnrollmentList {
    enrollments: Vec<CourseEnrollment>,
    /// Pass as `before` for the next page; null: this was the last.
    next_before: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// One course's slug.
    course: Option<String>,
    /// active, paused, completed or stopped.
    status: Option<String>,
    /// One person: their id or address.
    subscriber: Option<String>,
    /// 1 to 1000; 100 when left out.
    limit: Option<i64>,
    /// The `next_before` of the previous page.
    before: Option<i64>,
}

/// Enrollments, newest first, a page at a time: of a course, in a status, of a person.
#[utoipa::path(get, path = "/enrollments", tag = "enrollments", params(ListParams),
    responses(
        (status = 200, body = EnrollmentList),
        (status = 404, description = "No such course or subscriber", body = ErrorBody),
    ))]
pub(super) async fn list(State(app): State<App>, Params(p): Params<ListParams>) -> ApiResult {
    let limit = super::page_limit(p.limit)?;
    let course = match p.course.as_deref().filter(|c| !c.is_empty()) {
        Some(slug) => Some(app.course(Some(slug)).await?),
        None => None,
    };
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(EnrollmentStatus::parse(s)?),
        None => None,
    };
    let subscriber = match p.subscriber.as_deref().filter(|s| !s.is_empty()) {
        Some(key) => Some(find(&app, key).await?.id),
        None => None,
    };
    let rows = db::enrollments::page(
        &app.db,
        course.as_ref().map(|c| c.id),
        status,
        subscriber,
        p.before,
        limit,
    )
    .await?;
    let courses = db::courses::list(&app.db).await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|(e, _)| e.id))
        .flatten();
    let enrollments = rows
        .into_iter()
        .map(|(e, email)| view(&e, email, &courses))
        .collect();
    Ok(Json(EnrollmentList {
        enrollments,
        next_before,
    })
    .into_response())
}

/// Enrollment `id` as stored, and as the API shows it.
async fn load(app: &App, id: i64) -> Result<(EnrollmentRow, CourseEnrollment), ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no enrollment {id}"),
            Some("id"),
        )
    };
    let e = db::enrollments::by_id(&app.db, id)
        .await?
        .ok_or_else(not_found)?;
    let s = db::subscribers::by_id(&app.db, e.subscriber_id)
        .await?
        .ok_or_else(not_found)?;
    let courses = db::courses::list(&app.db).await?;
    let shown = view(&e, s.email, &courses);
    Ok((e, shown))
}

/// One enrollment.
#[utoipa::path(get, path = "/enrollments/{id}", tag = "enrollments",
    params(("id" = i64, Path, description = "The enrollment's id")),
    responses(
        (status = 200, body = OneEnrollment),
        (status = 404, description = "No such enrollment", body = ErrorBody),
    ))]
pub(super) async fn one(State(app): State<App>, Id(id): Id) -> ApiResult {
    Ok(Json(OneEnrollment {
        enrollment: load(&app, id).await?.1,
    })
    .into_response())
}

/// Stops the enrollment: no more lessons or broadcasts of that course (the one-click
/// unsubscribe of its mail does the same); the person's other courses go on. A goodbye
/// for the course is mailed.
#[utoipa::path(delete, path = "/enrollments/{id}", tag = "enrollments",
    params(("id" = i64, Path, description = "The enrollment's id")),
    responses(
        (status = 200, body = Stopped),
        (status = 404, description = "No such enrollment", body = ErrorBody),
    ))]
pub(super) async fn stop(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Id(id): Id,
) -> ApiResult {
    let (e, before) = load(&app, id).await?;
    let changed = subscriptions::unsubscribe(
        &app,
        e.subscriber_id,
        Some(e.course_id),
        &admin.username,
        Utc::now(),
    )
    .await?;
    let enrollment = if changed {
        load(&app, id).await?.1
    } else {
        before
    };
    Ok(Json(Stopped {
        enrollment,
        changed,
    })
    .into_response())
}
