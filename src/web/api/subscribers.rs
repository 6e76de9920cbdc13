//! `/api/v1/subscribers`: create, get (by id or address), list (status, search, keyset
//! pages), pause, resume, export (all their data, as their journal's download gives it) and
//! delete (which erases, as `drip subscribers delete` does).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiResult, Body, Params, time};
use crate::app::App;
use crate::auth::Admin;
use crate::db::{self, admin_lists::SubscriberQuery};
use crate::domain::{Area, Pace, SubscriberStatus};
use crate::subscriptions::{self, AddError, NewSubscriber};
use crate::web::access::Routes;
use crate::web::error::ErrorBody;

pub fn router() -> Routes {
    const SUBSCRIBERS: &[Area] = &[Area::Subscribers];
    Routes::under(super::PREFIX)
        .get("/subscribers", SUBSCRIBERS, list_subscribers)
        .post("/subscribers", SUBSCRIBERS, create_subscriber)
        .get("/subscribers/{key}", SUBSCRIBERS, get_subscriber)
        .delete("/subscribers/{key}", SUBSCRIBERS, delete_subscriber)
        .post("/subscribers/{key}/pause", SUBSCRIBERS, pause)
        .post("/subscribers/{key}/resume", SUBSCRIBERS, resume)
        // Their data includes the text of their replies.
        .get(
            "/subscribers/{key}/export",
            &[Area::Subscribers, Area::Replies],
            export,
        )
        .post("/enrollments", SUBSCRIBERS, create_enrollment)
}

/// A person and what they take: every enrollment names its course.
#[derive(Serialize, ToSchema)]
pub(super) struct SubscriberView {
    id: i64,
    email: String,
    name: String,
    timezone: String,
    status: SubscriberStatus,
    created_at: Option<String>,
    confirmed_at: Option<String>,
    enrollments: Vec<EnrollmentView>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct EnrollmentView {
    course: Option<String>,
    /// An enrollment's status; in an evergreen course the end of what is published is
    /// caught_up.
    status: &'static str,
    position: i64,
    next_due_at: Option<String>,
    waiting_reply: bool,
    /// Their own days and hour, if they chose them.
    pace: Option<Pace>,
}

async fn subscriber_json(
    app: &App,
    s: &db::subscribers::SubscriberRow,
) -> anyhow::Result<SubscriberView> {
    let courses = db::courses::list(&app.db).await?;
    let enrollments = db::enrollments::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .map(|e| {
            let course = courses.iter().find(|c| c.id == e.course_id);
            EnrollmentView {
                course: course.map(|c| c.slug.clone()),
                status: enrollment_state(&e, course),
                position: e.position,
                next_due_at: time(e.next_due_at),
                waiting_reply: e.waiting_reply != 0,
                pace: e.pace(),
            }
        })
        .collect();
    Ok(SubscriberView {
        id: s.id,
        email: s.email.clone(),
        name: s.name.clone(),
        timezone: s.timezone.to_string(),
        status: s.status,
        created_at: time(Some(s.created_at)),
        confirmed_at: time(s.confirmed_at),
        enrollments,
    })
}

#[derive(Serialize, ToSchema)]
pub(super) struct OneSubscriber {
    subscriber: SubscriberView,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Enrolled {
    subscriber: SubscriberView,
    /// The course's slug.
    course: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Changed {
    subscriber: SubscriberView,
    /// false: it was already so.
    changed: bool,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Erased {
    erased: bool,
    id: i64,
}

/// A row of the list: the person, and their place in the course asked for (else their
/// first course).
#[derive(Serialize, ToSchema)]
pub(super) struct SubscriberItem {
    id: i64,
    email: String,
    name: String,
    timezone: String,
    status: String,
    created_at: Option<String>,
    confirmed_at: Option<String>,
    course: Option<String>,
    enrollment_status: Option<String>,
    position: Option<i64>,
    next_due_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SubscriberList {
    subscribers: Vec<SubscriberItem>,
    /// Pass as `before` for the next page; null: this was the last.
    next_before: Option<i64>,
}

/// An enrollment's status as people read it: in an evergreen course, the end of what is
/// published is "caught_up" (a later lesson will still come), not "completed".
pub(super) fn enrollment_state(
    e: &db::enrollments::EnrollmentRow,
    course: Option<&db::courses::CourseRow>,
) -> &'static str {
    match (e.status, course.is_some_and(|c| c.is_evergreen())) {
        (crate::domain::EnrollmentStatus::Completed, true) => "caught_up",
        (status, _) => status.as_str(),
    }
}

/// A subscriber by id (digits) or address.
pub(super) async fn find(app: &App, key: &str) -> Result<db::subscribers::SubscriberRow, ApiError> {
    let found = match key.parse::<i64>() {
        Ok(id) => db::subscribers::by_id(&app.db, id).await?,
        Err(_) => db::subscribers::by_email(&app.db, key.trim()).await?,
    };
    found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no subscriber {key:?}"),
            Some("subscriber"),
        )
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSubscriberBody {
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    confirmed: bool,
    /// The course's slug; may be left out when the instance has one course.
    #[serde(default)]
    course: Option<String>,
}

/// A person into a course (created if new), with double opt-in unless `confirmed` (a
/// caller that holds consent, e.g. a purchase).
#[utoipa::path(post, path = "/enrollments", tag = "enrollments", request_body = NewSubscriberBody,
    responses(
        (status = 201, body = Enrolled),
        (status = 409, description = "Already enrolled in that course", body = ErrorBody),
    ))]
pub(super) async fn create_enrollment(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Body(b): Body<NewSubscriberBody>,
) -> ApiResult {
    create(&app, &admin, b).await
}

/// A new subscriber in a course, as `POST /enrollments`.
#[utoipa::path(post, path = "/subscribers", tag = "subscribers", request_body = NewSubscriberBody,
    responses(
        (status = 201, body = Enrolled),
        (status = 409, description = "Already enrolled in that course", body = ErrorBody),
    ))]
pub(super) async fn create_subscriber(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Body(b): Body<NewSubscriberBody>,
) -> ApiResult {
    create(&app, &admin, b).await
}

async fn create(app: &App, admin: &Admin, b: NewSubscriberBody) -> ApiResult {
    let course = app.course(b.course.as_deref()).await?;
    let new = NewSubscriber::parse(
        &b.email,
        &b.name,
        &b.timezone,
        app.config.default_timezone(),
    )
    .map_err(|errors| {
        let first = &errors[0];
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            first.to_string(),
            Some(first.field),
        )
    })?;
    // A racing request for the same address gets the same 409 (the insert's unique key
    // decides, not a read before it).
    let added = subscriptions::add(app, &course, &new, b.confirmed, &admin.username, Utc::now());
    let id = match added.await {
        Ok(id) => id,
        Err(AddError::AlreadySubscribed(email)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{email} is already enrolled in {}", course.slug),
                Some("email"),
            ));
        }
        Err(AddError::Other(e)) => return Err(e.into()),
    };
    let s = find(app, &id.to_string()).await?;
    Ok((
        StatusCode::CREATED,
        Json(Enrolled {
            subscriber: subscriber_json(app, &s).await?,
            course: course.slug,
        }),
    )
        .into_response())
}

/// One subscriber and their enrollments.
#[utoipa::path(get, path = "/subscribers/{key}", tag = "subscribers", params(("key" = String, Path, description = "The subscriber's id or address", example = "1")),
    responses((status = 200, body = OneSubscriber)))]
pub(super) async fn get_subscriber(State(app): State<App>, Path(key): Path<String>) -> ApiResult {
    let s = find(&app, &key).await?;
    Ok(Json(OneSubscriber {
        subscriber: subscriber_json(&app, &s).await?,
    })
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// One course: place and status in it, and `status` may be an enrollment's.
    course: Option<String>,
    /// A subscriber's status, or with `course` an enrollment's.
    status: Option<String>,
    /// Part of the address or name.
    search: Option<String>,
    /// 1 to 1000; 100 when left out.
    limit: Option<i64>,
    /// The `next_before` of the previous page.
    before: Option<i64>,
}

/// Subscribers, newest first, a page at a time.
#[utoipa::path(get, path = "/subscribers", tag = "subscribers", params(ListParams),
    responses((status = 200, body = SubscriberList)))]
pub(super) async fn list_subscribers(
    State(app): State<App>,
    Params(p): Params<ListParams>,
) -> ApiResult {
    let limit = super::page_limit(p.limit)?;
    let course = match p.course.as_deref() {
        Some(slug) => Some(app.course(Some(slug)).await?),
        None => None,
    };
    let status = p.status.filter(|s| !s.is_empty());
    let enrollment_status = status
        .as_deref()
        .and_then(|s| crate::domain::EnrollmentStatus::parse(s).ok())
        .filter(|_| course.is_some());
    let q = SubscriberQuery {
        course_id: course.as_ref().map(|c| c.id),
        enrollment_status: enrollment_status.map(|s| s.as_str().to_owned()),
        status: status.filter(|_| enrollment_status.is_none()),
        search: p.search.filter(|s| !s.trim().is_empty()),
        reached: None,
        before_id: p.before,
        limit,
    };
    let rows = db::admin_lists::subscribers(&app.db, &q).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|s| s.id))
        .flatten();
    let subscribers = rows
        .into_iter()
        .map(|s| SubscriberItem {
            id: s.id,
            email: s.email,
            name: s.name,
            timezone: s.timezone,
            status: s.status,
            created_at: time(Some(s.created_at)),
            confirmed_at: time(s.confirmed_at),
            course: course.as_ref().map(|c| c.slug.clone()),
            enrollment_status: s.enrollment_status,
            position: s.position,
            next_due_at: time(s.next_due_at),
        })
        .collect();
    Ok(Json(SubscriberList {
        subscribers,
        next_before: next,
    })
    .into_response())
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct CourseParam {
    /// One course's slug; left out: all of the person's courses.
    course: Option<String>,
}

async fn change(
    app: &App,
    admin: &Admin,
    key: &str,
    course: Option<&str>,
    pause_it: bool,
) -> ApiResult {
    let s = find(app, key).await?;
    let now = Utc::now();
    let course_id = match course {
        Some(slug) => Some(app.course(Some(slug)).await?.id),
        None => None,
    };
    let done = if pause_it {
        subscriptions::pause(app, s.id, course_id, &admin.username, now).await?
    } else {
        subscriptions::resume(app, s.id, course_id, &admin.username, now).await?
    };
    if !done && s.status != SubscriberStatus::Active {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the subscriber is {}; only a confirmed subscriber can be {}",
                s.status,
                if pause_it { "paused" } else { "resumed" }
            ),
            Some("status"),
        ));
    }
    let s = find(app, key).await?;
    Ok(Json(Changed {
        subscriber: subscriber_json(app, &s).await?,
        changed: done,
    })
    .into_response())
}

/// Pauses the subscriber's lessons in one course, or in all of them.
#[utoipa::path(post, path = "/subscribers/{key}/pause", tag = "subscribers", params(("key" = String, Path, description = "The subscriber's id or address", example = "1"), CourseParam),
    responses(
        (status = 200, body = Changed),
        (status = 409, description = "Only a confirmed subscriber can be paused", body = ErrorBody),
    ))]
pub(super) async fn pause(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(key): Path<String>,
    Params(p): Params<CourseParam>,
) -> ApiResult {
    change(&app, &admin, &key, p.course.as_deref(), true).await
}

/// Resumes the subscriber's lessons in one course, or in all of them.
#[utoipa::path(post, path = "/subscribers/{key}/resume", tag = "subscribers", params(("key" = String, Path, description = "The subscriber's id or address", example = "1"), CourseParam),
    responses(
        (status = 200, body = Changed),
        (status = 409, description = "Only a confirmed subscriber can be resumed", body = ErrorBody),
    ))]
pub(super) async fn resume(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(key): Path<String>,
    Params(p): Params<CourseParam>,
) -> ApiResult {
    change(&app, &admin, &key, p.course.as_deref(), false).await
}

/// Erases the subscriber (address, name and replies; anonymous counts stay), as `drip
/// subscribers delete` does.
#[utoipa::path(delete, path = "/subscribers/{key}", tag = "subscribers", params(("key" = String, Path, description = "The subscriber's id or address", example = "1")),
    responses((status = 200, body = Erased)))]
pub(super) async fn delete_subscriber(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(key): Path<String>,
) -> ApiResult {
    let s = find(&app, &key).await?;
    subscriptions::erase(&app, s.id, &admin.username, Utc::now()).await?;
    Ok(Json(Erased {
        erased: true,
        id: s.id,
    })
    .into_response())
}

/// All of the subscriber's data (the document `drip subscribers export --email` prints); the
/// event log records which admin's token took it.
#[utoipa::path(get, path = "/subscribers/{key}/export", tag = "subscribers", params(("key" = String, Path, description = "The subscriber's id or address", example = "1")),
    responses((status = 200, body = crate::subscriptions::export::Export)))]
pub(super) async fn export(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(key): Path<String>,
) -> ApiResult {
    let s = find(&app, &key).await?;
    let export = subscriptions::export::export(&app, s.id, &admin.username, "api", Utc::now())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no subscriber {key:?} (erased: nothing is left to export)"),
                Some("subscriber"),
            )
        })?;
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(export),
    )
        .into_response())
}
