//! `/api/v1/lessons` (list, get, update with the editor's checks: a lint problem is a 422
//! naming its field) and `/api/v1/replies` (by subscriber or lesson; each read is logged).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::subscribers::find;
use super::{ApiError, ApiResult, Body, time};
use crate::app::App;
use crate::auth::Admin;
use crate::db::{
    self,
    admin_lists::{InboxKey, InboxQuery},
};
use crate::web::admin::{form as editor, impact};

pub fn router() -> Router<App> {
    Router::new()
        .route("/lessons", get(list_lessons))
        .route(
            "/lessons/{slug}",
            get(get_lesson).put(update_lesson).patch(update_lesson),
        )
        .route("/replies", get(list_replies))
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

async fn lessons_of(
    app: &App,
) -> anyhow::Result<(db::courses::CourseRow, Vec<db::lessons::Lesson>)> {
    let course = app.course().await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    Ok((course, lessons))
}

async fn list_lessons(State(app): State<App>) -> ApiResult {
    let (_, lessons) = lessons_of(&app).await?;
    Ok(
        Json(json!({"lessons": lessons.iter().map(lesson_json).collect::<Vec<_>>()}))
            .into_response(),
    )
}

async fn get_lesson(State(app): State<App>, Path(slug): Path<String>) -> ApiResult {
    let (_, lessons) = lessons_of(&app).await?;
    let l = lessons.iter().find(|l| l.slug == slug).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no lesson {slug:?}"),
            Some("slug"),
        )
    })?;
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
fn some<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

async fn update_lesson(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Body(p): Body<LessonPatch>,
) -> ApiResult {
    let (course, lessons) = lessons_of(&app).await?;
    let lesson = lessons.iter().find(|l| l.slug == slug).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no lesson {slug:?}"),
            Some("slug"),
        )
    })?;
    let c = &lesson.content;
    let form = editor::EditForm {
        slug: slug.clone(),
        title: p.title.unwrap_or_else(|| c.title.clone()),
        subject: p.subject.unwrap_or_else(|| c.subject.clone()),
        phase: p.phase.unwrap_or_else(|| c.phase.as_str().to_owned()),
        after_days: p
            .after_days
            .map(|d| d.to_string())
            .unwrap_or_else(|| c.after_days.to_string()),
        send_window: p
            .send_window
            .unwrap_or_else(|| c.send_window.clone())
            .unwrap_or_default(),
        prompt: p.prompt.unwrap_or_else(|| c.prompt.clone()),
        wait_for_reply: p
            .wait_for_reply
            .unwrap_or(c.wait_for_reply)
            .then(|| "on".into()),
        max_wait_days: p
            .max_wait_days
            .unwrap_or_else(|| c.max_wait_days.map(i64::from))
            .map(|d| d.to_string())
            .unwrap_or_default(),
        body: p.body.unwrap_or_else(|| c.body.clone()),
        base_revision: p.revision.unwrap_or(lesson.revision),
        confirmed: None,
    };
    let mut errors = editor::Errors::new();
    let content = form.content(&mut errors);
    if let Some(content) = &content
        && let Some(problem) =
            editor::phase_problem(&lessons, Some(lesson.id), lesson.position, content.phase)
    {
        errors.entry("phase".into()).or_default().push(problem);
    }
    let content = match (content, errors.iter().next()) {
        (Some(c), None) => c,
        (_, Some((field, messages))) => {
            let error = format!("{field}: {}", messages.join("; "));
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                error,
                Some(field),
            ));
        }
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid lesson",
                None,
            ));
        }
    };
    let moved = content.after_days != c.after_days || content.send_window != c.send_window;
    let impact = if moved {
        Some(
            impact::for_lesson(
                &app,
                &course,
                &editor::with_content(&lessons, lesson.id, &content),
                lesson.id,
            )
            .await?,
        )
    } else {
        None
    };
    match editor::store_revision(
        &app,
        lesson,
        form.base_revision,
        &content,
        &admin.username,
        None,
        impact.as_ref(),
    )
    .await?
    {
        editor::Stored::Stale { revision } => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the lesson is at revision {revision}; fetch it again"),
            Some("revision"),
        )),
        editor::Stored::Saved | editor::Stored::Unchanged => {
            let (_, lessons) = lessons_of(&app).await?;
            let l = lessons
                .iter()
                .find(|l| l.slug == slug)
                .expect("the lesson just saved");
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

async fn list_replies(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Query(p): Query<ReplyParams>,
) -> ApiResult {
    let (_, lessons) = lessons_of(&app).await?;
    let subscriber_id = match &p.subscriber {
        Some(key) => Some(find(&app, key).await?.id),
        None => None,
    };
    let lesson_id = match &p.lesson {
        Some(slug) => Some(
            lessons
                .iter()
                .find(|l| &l.slug == slug)
                .map(|l| l.id)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("no lesson {slug:?}"),
                        Some("lesson"),
                    )
                })?,
        ),
        None => None,
    };
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be from 1 to 1000",
            Some("limit"),
        ));
    }
    let after = match p.after.as_deref() {
        Some(a) => Some(InboxKey::parse(a).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "after: use the next_after value of the previous page",
                Some("after"),
            )
        })?),
        None => None,
    };
    let q = InboxQuery {
        lesson_id,
        subscriber_id,
        kind: p.kind.filter(|k| k != "all"),
        flagged_only: false,
        unread_only: false,
        after,
        limit,
    };
    let rows = db::admin_lists::inbox(&app.db, &q).await?;
    let viewed: Vec<(i64, Option<i64>)> = rows.iter().map(|r| (r.id, r.subscriber_id)).collect();
    db::admin_lists::log_views(
        &app.db,
        &admin.username,
        &viewed,
        "api",
        Utc::now().timestamp(),
    )
    .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last().map(|r| {
                InboxKey {
                    flagged: r.flagged,
                    received_at: r.received_at,
                    id: r.id,
                }
                .to_string()
            })
        })
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
