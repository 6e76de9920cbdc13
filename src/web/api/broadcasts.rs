//! `/api/v1/broadcasts`: list, create, show and cancel, through `crate::broadcasts` as the
//! admin page and `drip broadcasts` do.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, Body};
use crate::app::App;
use crate::auth::Admin;
use crate::broadcasts::{self, Draft, When};
use crate::db;
use crate::domain::{Area, Audience};
use crate::web::access::Routes;

pub fn router() -> Routes {
    const B: &[Area] = &[Area::Broadcasts];
    Routes::under(super::PREFIX)
        .get("/broadcasts", B, list)
        .post("/broadcasts", B, create)
        .get("/broadcasts/{id}", B, one)
        .post("/broadcasts/{id}/cancel", B, cancel)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CourseParam {
    course: Option<String>,
}

async fn list(State(app): State<App>, Query(q): Query<CourseParam>) -> ApiResult {
    let only = match q.course.as_deref() {
        Some(slug) => Some(app.course(Some(slug)).await?.id),
        None => None,
    };
    let mut views = Vec::new();
    for b in db::broadcasts::list(&app.db, only).await? {
        views.push(broadcasts::view(&app, b).await?);
    }
    Ok(Json(json!({ "broadcasts": views })).into_response())
}

/// `{course?, subject, body, audience?, at?, local_time?, date?}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBroadcast {
    course: Option<String>,
    subject: String,
    body: String,
    audience: Option<String>,
    at: Option<String>,
    local_time: Option<String>,
    date: Option<String>,
}

async fn create(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Body(new): Body<NewBroadcast>,
) -> ApiResult {
    let course = app.course(new.course.as_deref()).await?;
    let draft = Draft {
        subject: new.subject,
        body: new.body,
        audience: match new.audience.as_deref() {
            None => Audience::Active,
            Some(a) => Audience::parse(a)?,
        },
        when: When::parse(
            new.at.as_deref(),
            new.local_time.as_deref(),
            new.date.as_deref(),
        )?,
    };
    let b = broadcasts::create(
        &app,
        &course,
        &draft,
        &format!("api:{}", admin.username),
        Utc::now(),
    )
    .await?;
    let view = broadcasts::view(&app, b).await?;
    Ok((StatusCode::CREATED, Json(json!({ "broadcast": view }))).into_response())
}

async fn one(State(app): State<App>, Path(id): Path<i64>) -> ApiResult {
    let view = broadcasts::find(&app, id).await?;
    Ok(Json(json!({ "broadcast": view })).into_response())
}

async fn cancel(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> ApiResult {
    let stopped =
        broadcasts::cancel(&app, id, &format!("api:{}", admin.username), Utc::now()).await?;
    let view = broadcasts::find(&app, id).await?;
    Ok(Json(json!({ "broadcast": view, "not_sent": stopped })).into_response())
}
