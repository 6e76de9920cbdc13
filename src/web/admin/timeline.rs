//! One subscriber's page: who they are, where they are in the course, the actions on them,
//! and their timeline: events, every mail (lesson, revision, result), every reply with its
//! text and every answer written back to them. Showing a reply to an admin is logged as a view of it, and the download of all their
//! data (`/admin/subscribers/{id}/export`) as an export.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::json;

use super::lessons::course_and_lessons;
use super::page;
use crate::app::App;
use crate::auth::Admin;
use crate::db;
use crate::domain::Area;
use crate::web::WebError;
use crate::web::access::Routes;

pub fn router() -> Routes {
    // The timeline and the export both carry the text of the person's replies.
    const WITH_REPLIES: &[Area] = &[Area::Subscribers, Area::Replies];
    Routes::new()
        .get("/admin/subscribers/{id}", WITH_REPLIES, show)
        .get("/admin/subscribers/{id}/export", WITH_REPLIES, export)
}

async fn show(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let (_, lessons) = course_and_lessons(&app, &current).await?;
    let s = db::subscribers::by_id(&app.db, id)
        .await?
        .ok_or(WebError::NotFound(
            "There is no subscriber with this number.",
        ))?;
    let enrollment = db::enrollments::for_subscriber(&app.db, id)
        .await?
        .into_iter()
        .next();
    let mut timeline: Vec<(i64, i64, serde_json::Value)> = Vec::new();
    for e in db::events::for_subscriber(&app.db, id).await? {
        if e.kind == "reply_viewed" {
            continue;
        }
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let detail = match detail.as_object() {
            Some(m) if !m.is_empty() => m
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        timeline.push((e.created_at, 0, json!({"kind": "event", "what": e.kind.replace('_', " "), "actor": e.actor, "detail": detail})));
    }
    for d in db::deliveries::for_subscriber(&app.db, id).await? {
        let at = d.sent_at.or(d.failed_at).unwrap_or(d.due_at);
        let title = d
            .lesson
            .as_ref()
            .and_then(|slug| lessons.iter().find(|l| &l.slug == slug))
            .map(|l| l.content.title.clone());
        timeline.push((at, 1, json!({"kind": "mail", "mail": d.kind, "lesson": d.lesson, "title": title, "status": d.status, "revision": d.revision, "error": d.last_error, "attempts": d.attempts})));
    }
    let replies = db::replies::for_subscriber(&app.db, id).await?;
    for r in &replies {
        let prompt = lessons
            .iter()
            .find(|l| Some(l.id) == r.lesson_id)
            .map(|l| l.content.prompt.clone());
        timeline.push((r.received_at, 2, json!({
            "kind": "reply", "id": r.id, "reply_kind": r.kind, "lesson": r.lesson, "prompt": prompt, "command": r.command,
            "text": String::from_utf8_lossy(&app.open_reply_text(&r.text)), "flagged": r.flagged != 0, "flag_reason": r.flag_reason, "has_raw": r.has_raw != 0,
        })));
    }
    for a in db::answers::for_subscriber(&app.db, id).await? {
        timeline.push((a.created_at, 3, json!({
            "kind": "answer", "id": a.id, "reply": a.reply_id, "author": a.author, "status": a.status,
            "text": String::from_utf8_lossy(&app.open_reply_text(&a.text)),
        })));
    }
    timeline.sort_by_key(|(at, order, _)| (*at, *order));
    let viewed: Vec<(i64, Option<i64>)> = replies.iter().map(|r| (r.id, Some(id))).collect();
    db::admin_lists::log_views(
        &app.db,
        &admin.username,
        &viewed,
        "subscriber",
        Utc::now().timestamp(),
    )
    .await?;
    let events: Vec<_> = timeline
        .into_iter()
        .map(|(at, _, mut v)| {
            v["at"] = json!(at);
            v
        })
        .collect();
    let at_lesson = enrollment
        .as_ref()
        .and_then(|e| lessons.iter().find(|l| l.position == e.position))
        .map(|l| l.content.title.clone());
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "subscriber",
        json!({
            "nav": "subscribers", "s": s, "enrollment": enrollment, "at_lesson": at_lesson, "timeline": events,
            "lessons": lessons.iter().filter(|l| l.is_published()).map(|l| json!({"slug": l.slug, "title": l.content.title, "position": l.position})).collect::<Vec<_>>(),
        }),
    )
}

/// The subscriber's data as the JSON file they would get from their journal, for answering
/// an access request; the event log records which admin took it.
async fn export(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let now = Utc::now();
    let export = crate::subscriptions::export::export(&app, id, &admin.username, "admin", now)
        .await?
        .ok_or(WebError::NotFound(
            "There is no subscriber with this number, or they were erased: nothing of theirs is left to export.",
        ))?;
    Ok(crate::web::json_download(
        &crate::subscriptions::export::file_name(now),
        export.to_json()?,
    ))
}
