//! `/api/v1/broadcasts`: list, create, show and cancel, through `crate::broadcasts` as the
//! admin page and `drip broadcasts` do.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiResult, Body, Id, Params};
use crate::app::App;
use crate::auth::Admin;
use crate::broadcasts::{self, Draft, View, When};
use crate::db;
use crate::domain::{Area, Audience};
use crate::web::access::Routes;
use crate::web::error::ErrorBody;

pub fn router() -> Routes {
    const B: &[Area] = &[Area::Broadcasts];
    Routes::under(super::PREFIX)
        .get("/broadcasts", B, list)
        .post("/broadcasts", B, create)
        .get("/broadcasts/{id}", B, one)
        .post("/broadcasts/{id}/cancel", B, cancel)
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct CourseParam {
    /// One course's slug; left out: every course's.
    course: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct BroadcastList {
    broadcasts: Vec<View>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct OneBroadcast {
    broadcast: View,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Cancelled {
    broadcast: View,
    /// Its mails that were queued and now will not go out.
    not_sent: u64,
}

/// Every broadcast, or one course's, newest first.
#[utoipa::path(get, path = "/broadcasts", tag = "broadcasts", params(CourseParam),
    responses((status = 200, body = BroadcastList)))]
pub(super) async fn list(State(app): State<App>, Params(q): Params<CourseParam>) -> ApiResult {
    let only = match q.course.as_deref() {
        Some(slug) => Some(app.course(Some(slug)).await?.id),
        None => None,
    };
    let mut views = Vec::new();
    for b in db::broadcasts::list(&app.db, only).await? {
        views.push(broadcasts::view(&app, b).await?);
    }
    Ok(Json(BroadcastList { broadcasts: views }).into_response())
}

/// `{course?, subject, body, audience?, at?, local_time?, date?}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewBroadcast {
    /// The course's slug; may be left out when the instance has one course.
    course: Option<String>,
    subject: String,
    /// Markdown, with the lesson template's variables.
    body: String,
    /// active (the default), completed or everyone.
    audience: Option<String>,
    /// When to queue it (RFC 3339); left out with `local_time`: now.
    at: Option<String>,
    /// HH:MM on each reader's own clock.
    local_time: Option<String>,
    /// With `local_time`: the day (YYYY-MM-DD); left out, the next such hour.
    date: Option<String>,
}

/// Writes to a course's readers at once: one mail per reader through the outbox.
#[utoipa::path(post, path = "/broadcasts", tag = "broadcasts", request_body = NewBroadcast,
    responses((status = 201, body = OneBroadcast)))]
pub(super) async fn create(
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
    Ok((StatusCode::CREATED, Json(OneBroadcast { broadcast: view })).into_response())
}

/// One broadcast with its figures.
#[utoipa::path(get, path = "/broadcasts/{id}", tag = "broadcasts",
    params(("id" = i64, Path, description = "The broadcast's id")),
    responses((status = 200, body = OneBroadcast)))]
pub(super) async fn one(State(app): State<App>, Id(id): Id) -> ApiResult {
    let view = broadcasts::find(&app, id).await?;
    Ok(Json(OneBroadcast { broadcast: view }).into_response())
}

/// Stops a broadcast: its mails not yet sent stay unsent.
#[utoipa::path(post, path = "/broadcasts/{id}/cancel", tag = "broadcasts",
    params(("id" = i64, Path, description = "The broadcast's id")),
    responses(
        (status = 200, body = Cancelled),
        (status = 409, description = "It was already cancelled or sent", body = ErrorBody),
    ))]
pub(super) async fn cancel(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Id(id): Id,
) -> ApiResult {
    let stopped =
        broadcasts::cancel(&app, id, &format!("api:{}", admin.username), Utc::now()).await?;
    let view = broadcasts::find(&app, id).await?;
    Ok(Json(Cancelled {
        broadcast: view,
        not_sent: stopped,
    })
    .into_response())
}
