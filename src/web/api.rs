//! The JSON API under `/api/v1`, for scripts. Every request carries `Authorization: Bearer
//! <token>` (from `drip admin token USER`); no cookie is looked at, so no CSRF applies.
//! Errors are `{"error": "...", "field": "..." | null}` with a fitting status.

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::admin::{editor, impact};
use crate::app::App;
use crate::auth::{self, Admin};
use crate::db::{self, admin_lists::{InboxKey, InboxQuery, SubscriberQuery}};
use crate::subscriptions::{self, NewSubscriber};

pub fn router(app: &App) -> Router<App> {
    Router::new()
        .route("/api/v1/subscribers", get(list_subscribers).post(create_subscriber))
        .route("/api/v1/subscribers/{key}", get(get_subscriber).delete(delete_subscriber))
        .route("/api/v1/subscribers/{key}/pause", post(pause))
        .route("/api/v1/subscribers/{key}/resume", post(resume))
        .route("/api/v1/lessons", get(list_lessons))
        .route("/api/v1/lessons/{slug}", get(get_lesson).put(update_lesson).patch(update_lesson))
        .route("/api/v1/replies", get(list_replies))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API route", None) })
        .layer(middleware::from_fn_with_state(app.clone(), require_token))
}

/// An API error: status, message and the field it is about.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>, field: Option<&str>) -> ApiError {
        ApiError { status, error: error.into(), field: field.map(str::to_owned) }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = %format!("{e:#}"), "API request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log", None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.error, "field": self.field}))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// `Json<T>` whose refusals are API errors (unknown fields, wrong types, bad syntax).
pub struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Body(v))
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text(), None))
    }
}

async fn require_token(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let admin = if given.is_empty() {
        None
    } else {
        match auth::token_admin(&app.db, given, Utc::now().timestamp()).await {
            Ok(a) => a,
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    match admin {
        Some(a) => {
            req.extensions_mut().insert(a);
            next.run(req).await
        }
        None => {
            let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required (drip admin token USER)", Some("authorization")).into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            r
        }
    }
}

fn time(t: Option<i64>) -> Value {
    t.and_then(|t| DateTime::from_timestamp(t, 0)).map(|t| json!(t.to_rfc3339())).unwrap_or(Value::Null)
}

async fn subscriber_json(app: &App, s: &db::subscribers::SubscriberRow) -> anyhow::Result<Value> {
    let e = db::enrollments::for_subscriber(&app.db, s.id).await?.into_iter().next();
    Ok(json!({
        "id": s.id, "email": s.email, "name": s.name, "timezone": s.timezone, "status": s.status,
        "created_at": time(Some(s.created_at)), "confirmed_at": time(s.confirmed_at),
        "position": e.as_ref().map(|e| e.position), "next_due_at": time(e.as_ref().and_then(|e| e.next_due_at)),
    }))
}

/// A subscriber by id (digits) or address.
async fn find(app: &App, key: &str) -> Result<db::subscribers::SubscriberRow, ApiError> {
    let found = match key.parse::<i64>() {
        Ok(id) => db::subscribers::by_id(&app.db, id).await?,
        Err(_) => db::subscribers::by_email(&app.db, key.trim()).await?,
    };
    found.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no subscriber {key:?}"), Some("subscriber")))
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
}

async fn create_subscriber(State(app): State<App>, Extension(admin): Extension<Admin>, Body(b): Body<NewSubscriberBody>) -> ApiResult {
    let new = NewSubscriber::parse(&b.email, &b.name, &b.timezone, app.config.default_timezone()).map_err(|errors| {
        let first = &errors[0];
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, first.to_string(), Some(first.field))
    })?;
    if db::subscribers::by_email(&app.db, new.email.as_str()).await?.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("{} is already a subscriber", new.email), Some("email")));
    }
    let id = subscriptions::add(&app, &new, b.confirmed, &admin.username, Utc::now()).await?;
    let s = find(&app, &id.to_string()).await?;
    Ok((StatusCode::CREATED, Json(json!({"subscriber": subscriber_json(&app, &s).await?}))).into_response())
}

async fn get_subscriber(State(app): State<App>, Path(key): Path<String>) -> ApiResult {
    let s = find(&app, &key).await?;
    Ok(Json(json!({"subscriber": subscriber_json(&app, &s).await?})).into_response())
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    search: Option<String>,
    limit: Option<i64>,
    before: Option<i64>,
}

async fn list_subscribers(State(app): State<App>, Query(p): Query<ListParams>) -> ApiResult {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit must be from 1 to 1000", Some("limit")));
    }
    let q = SubscriberQuery { status: p.status.filter(|s| !s.is_empty()), search: p.search.filter(|s| !s.trim().is_empty()), reached: None, before_id: p.before, limit };
    let rows = db::admin_lists::subscribers(&app.db, &q).await?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|s| s.id)).flatten();
    let items: Vec<Value> = rows
        .iter()
        .map(|s| json!({"id": s.id, "email": s.email, "name": s.name, "timezone": s.timezone, "status": s.status, "created_at": time(Some(s.created_at)), "confirmed_at": time(s.confirmed_at), "position": s.position, "next_due_at": time(s.next_due_at)}))
        .collect();
    Ok(Json(json!({"subscribers": items, "next_before": next})).into_response())
}

async fn change(app: &App, admin: &Admin, key: &str, pause_it: bool) -> ApiResult {
    let s = find(app, key).await?;
    let now = Utc::now();
    let (done, want, from) = if pause_it {
        (subscriptions::pause(app, s.id, &admin.username, now).await?, "paused", "active")
    } else {
        (subscriptions::resume(app, s.id, &admin.username, now).await?, "active", "paused")
    };
    if !done && s.status != want {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("the subscriber is {}; only a {from} subscriber can be {}", s.status, if pause_it { "paused" } else { "resumed" }), Some("status")));
    }
    let s = find(app, key).await?;
    Ok(Json(json!({"subscriber": subscriber_json(app, &s).await?, "changed": done})).into_response())
}

async fn pause(State(app): State<App>, Extension(admin): Extension<Admin>, Path(key): Path<String>) -> ApiResult {
    change(&app, &admin, &key, true).await
}

async fn resume(State(app): State<App>, Extension(admin): Extension<Admin>, Path(key): Path<String>) -> ApiResult {
    change(&app, &admin, &key, false).await
}

/// Erases the subscriber (address, name and replies; anonymous counts stay), as `drip
/// subscribers delete` does.
async fn delete_subscriber(State(app): State<App>, Extension(admin): Extension<Admin>, Path(key): Path<String>) -> ApiResult {
    let s = find(&app, &key).await?;
    subscriptions::erase(&app, s.id, &admin.username, Utc::now()).await?;
    Ok(Json(json!({"erased": true, "id": s.id})).into_response())
}

fn lesson_json(l: &db::lessons::Lesson) -> Value {
    json!({
        "slug": l.slug, "position": l.position, "status": l.status, "revision": l.revision, "author": l.author,
        "updated_at": time(Some(l.updated_at)), "title": l.content.title, "subject": l.content.subject,
        "phase": l.content.phase, "after_days": l.content.after_days, "send_window": l.content.send_window,
        "prompt": l.content.prompt, "wait_for_reply": l.content.wait_for_reply, "max_wait_days": l.content.max_wait_days,
        "body": l.content.body,
    })
}

async fn lessons_of(app: &App) -> anyhow::Result<(db::courses::CourseRow, Vec<db::lessons::Lesson>)> {
    let course = app.course().await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    Ok((course, lessons))
}

async fn list_lessons(State(app): State<App>) -> ApiResult {
    let (_, lessons) = lessons_of(&app).await?;
    Ok(Json(json!({"lessons": lessons.iter().map(lesson_json).collect::<Vec<_>>()})).into_response())
}

async fn get_lesson(State(app): State<App>, Path(slug): Path<String>) -> ApiResult {
    let (_, lessons) = lessons_of(&app).await?;
    let l = lessons.iter().find(|l| l.slug == slug).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no lesson {slug:?}"), Some("slug")))?;
    Ok(Json(json!({"lesson": lesson_json(l)})).into_response())
}

/// The fields to change; those left out keep their value. `send_window: null` means the
/// course's window. `revision`, when given, must be the current one (else 409).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonPatch {
    title: Option<String>,
    subject: Option<String>,
    phase: Option<String>,
    after_days: Option<i64>,
    #[serde(default, deserialize_with = "some")]
    send_window: Option<Option<String>>,
    prompt: Option<String>,
    wait_for_reply: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    max_wait_days: Option<Option<i64>>,
    body: Option<String>,
    revision: Option<i64>,
}

/// Tells a field given as null (Some(None)) from a field left out (None).
fn some<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

async fn update_lesson(State(app): State<App>, Extension(admin): Extension<Admin>, Path(slug): Path<String>, Body(p): Body<LessonPatch>) -> ApiResult {
    let (course, lessons) = lessons_of(&app).await?;
    let lesson = lessons.iter().find(|l| l.slug == slug).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no lesson {slug:?}"), Some("slug")))?;
    let c = &lesson.content;
    let form = editor::EditForm {
        slug: slug.clone(),
        title: p.title.unwrap_or_else(|| c.title.clone()),
        subject: p.subject.unwrap_or_else(|| c.subject.clone()),
        phase: p.phase.unwrap_or_else(|| c.phase.as_str().to_owned()),
        after_days: p.after_days.map(|d| d.to_string()).unwrap_or_else(|| c.after_days.to_string()),
        send_window: p.send_window.unwrap_or_else(|| c.send_window.clone()).unwrap_or_default(),
        prompt: p.prompt.unwrap_or_else(|| c.prompt.clone()),
        wait_for_reply: p.wait_for_reply.unwrap_or(c.wait_for_reply).then(|| "on".into()),
        max_wait_days: p.max_wait_days.unwrap_or_else(|| c.max_wait_days.map(i64::from)).map(|d| d.to_string()).unwrap_or_default(),
        body: p.body.unwrap_or_else(|| c.body.clone()),
        base_revision: p.revision.unwrap_or(lesson.revision),
        confirmed: None,
    };
    let mut errors = editor::Errors::new();
    let content = form.content(&mut errors);
    if let Some(content) = &content
        && let Some(problem) = editor::phase_problem(&lessons, Some(lesson.id), lesson.position, content.phase)
    {
        errors.entry("phase".into()).or_default().push(problem);
    }
    let content = match (content, errors.iter().next()) {
        (Some(c), None) => c,
        (_, Some((field, messages))) => {
            let error = format!("{field}: {}", messages.join("; "));
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error, Some(field)));
        }
        (None, None) => return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid lesson", None)),
    };
    let moved = content.after_days != c.after_days || content.send_window != c.send_window;
    let impact = if moved {
        Some(impact::for_lesson(&app, &course, &editor::with_content(&lessons, lesson.id, &content), lesson.id).await?)
    } else {
        None
    };
    match editor::store_revision(&app, lesson, form.base_revision, &content, &admin.username, None, impact.as_ref()).await? {
        editor::Stored::Stale { revision } => Err(ApiError::new(StatusCode::CONFLICT, format!("the lesson is at revision {revision}; fetch it again"), Some("revision"))),
        editor::Stored::Saved(_) | editor::Stored::Unchanged => {
            let (_, lessons) = lessons_of(&app).await?;
            let l = lessons.iter().find(|l| l.slug == slug).expect("the lesson just saved");
            Ok(Json(json!({"lesson": lesson_json(l), "rescheduled": impact.map(|i| i.moved).unwrap_or(0)})).into_response())
        }
    }
}

#[derive(Deserialize)]
struct ReplyParams {
    subscriber: Option<String>,
    lesson: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

async fn list_replies(State(app): State<App>, Extension(admin): Extension<Admin>, Query(p): Query<ReplyParams>) -> ApiResult {
    let (_, lessons) = lessons_of(&app).await?;
    let subscriber_id = match &p.subscriber {
        Some(key) => Some(find(&app, key).await?.id),
        None => None,
    };
    let lesson_id = match &p.lesson {
        Some(slug) => Some(lessons.iter().find(|l| &l.slug == slug).map(|l| l.id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no lesson {slug:?}"), Some("lesson")))?),
        None => None,
    };
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit must be from 1 to 1000", Some("limit")));
    }
    let after = match p.after.as_deref() {
        Some(a) => Some(InboxKey::parse(a).ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "after: use the next_after value of the previous page", Some("after")))?),
        None => None,
    };
    let q = InboxQuery { lesson_id, subscriber_id, kind: p.kind.filter(|k| k != "all"), flagged_only: false, unread_only: false, after, limit };
    let rows = db::admin_lists::inbox(&app.db, &q).await?;
    let viewed: Vec<(i64, Option<i64>)> = rows.iter().map(|r| (r.id, r.subscriber_id)).collect();
    db::admin_lists::log_views(&app.db, &admin.username, &viewed, "api", Utc::now().timestamp()).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| InboxKey { flagged: r.flagged, received_at: r.received_at, id: r.id }.to_string()))
        .flatten();
    let items: Vec<Value> = rows
        .iter()
        .map(|r| json!({
            "id": r.id, "subscriber_id": r.subscriber_id, "email": r.email, "lesson": lessons.iter().find(|l| Some(l.id) == r.lesson_id).map(|l| l.slug.clone()),
            "kind": r.kind, "command": r.command, "text": String::from_utf8_lossy(&app.open_reply_text(&r.text)),
            "flagged": r.flagged != 0, "read": r.read_at.is_some(), "received_at": time(Some(r.received_at)),
        }))
        .collect();
    Ok(Json(json!({"replies": items, "next_after": next})).into_response())
}
