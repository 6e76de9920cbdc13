//! `/api/v1/subscribers`: create, get (by id or address), list (status, search, keyset
//! pages), pause, resume, export (all their data, as their journal's download gives it) and
//! delete (which erases, as `drip subscribers delete` does).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Body, time};
use crate::app::App;
use crate::auth::Admin;
use crate::db::{self, admin_lists::SubscriberQuery};
use crate::domain::{Area, SubscriberStatus};
use crate::subscriptions::{self, AddError, NewSubscriber};
use crate::web::access::Routes;

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
async fn subscriber_json(app: &App, s: &db::subscribers::SubscriberRow) -> anyhow::Result<Value> {
    let courses = db::courses::list(&app.db).await?;
    let enrollments: Vec<Value> = db::enrollments::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .map(|e| {
            let course = courses.iter().find(|c| c.id == e.course_id);
            json!({
                "course": course.map(|c| c.slug.clone()),
                "status": enrollment_state(&e, course),
                "position": e.position,
                "next_due_at": time(e.next_due_at),
                "waiting_reply": e.waiting_reply != 0,
                "pace": e.pace(),
            })
        })
        .collect();
    Ok(json!({
        "id": s.id, "email": s.email, "name": s.name, "timezone": s.timezone, "status": s.status,
        "created_at": time(Some(s.created_at)), "confirmed_at": time(s.confirmed_at),
        "enrollments": enrollments,
    }))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSubscriberBody {
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

/// `POST /api/v1/enrollments`: a person into a course (created if new), with double
/// opt-in unless `confirmed` (a caller that holds consent, e.g. a purchase).
async fn create_enrollment(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Body(b): Body<NewSubscriberBody>,
) -> ApiResult {
    create(&app, &admin, b).await
}

async fn create_subscriber(
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
        Json(json!({"subscriber": subscriber_json(app, &s).await?, "course": course.slug})),
    )
        .into_response())
}

async fn get_subscriber(State(app): State<App>, Path(key): Path<String>) -> ApiResult {
    let s = find(&app, &key).await?;
    Ok(Json(json!({"subscriber": subscriber_json(&app, &s).await?})).into_response())
}

#[derive(Deserialize)]
struct ListParams {
    /// One course: place and status in it, and `status` may be an enrollment's.
    course: Option<String>,
    status: Option<String>,
    search: Option<String>,
    limit: Option<i64>,
    before: Option<i64>,
}

async fn list_subscribers(State(app): State<App>, Query(p): Query<ListParams>) -> ApiResult {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be from 1 to 1000",
            Some("limit"),
        ));
    }
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
    let items: Vec<Value> = rows
        .iter()
        .map(|s| json!({"id": s.id, "email": s.email, "name": s.name, "timezone": s.timezone, "status": s.status, "created_at": time(Some(s.created_at)), "confirmed_at": time(s.confirmed_at), "course": course.as_ref().map(|c| c.slug.clone()), "enrollment_status": s.enrollment_status, "position": s.position, "next_due_at": time(s.next_due_at)}))
        .collect();
    Ok(Json(json!({"subscribers": items, "next_before": next})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CourseParam {
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
    Ok(
        Json(json!({"subscriber": subscriber_json(app, &s).await?, "changed": done}))
            .into_response(),
    )
}

async fn pause(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(key): Path<String>,
    Query(p): Query<CourseParam>,
) -> ApiResult {
    change(&app, &admin, &key, p.course.as_deref(), true).await
}

async fn resume(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(key): Path<String>,
    Query(p): Query<CourseParam>,
) -> ApiResult {
    change(&app, &admin, &key, p.course.as_deref(), false).await
}

/// Erases the subscriber (address, name and replies; anonymous counts stay), as `drip
/// subscribers delete` does.
async fn delete_subscriber(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(key): Path<String>,
) -> ApiResult {
    let s = find(&app, &key).await?;
    subscriptions::erase(&app, s.id, &admin.username, Utc::now()).await?;
    Ok(Json(json!({"erased": true, "id": s.id})).into_response())
}

/// All of the subscriber's data (the document `drip subscribers export --email` prints); the
/// event log records which admin's token took it.
async fn export(
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
