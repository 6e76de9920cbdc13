//! The replies inbox: flagged first, then newest first; filters by lesson, flag, read state
//! and kind; each reply with its extracted text, the prompt it answers and a link to the raw
//! message. Every reply shown to an admin is logged as viewed.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::lessons::course_and_lessons;
use super::{page, see_other};
use crate::answers::{self, AnswerError};
use crate::app::App;
use crate::auth::Admin;
use crate::db::{
    self,
    admin_lists::{InboxKey, InboxQuery},
};
use crate::domain::{Area, ReplyKind};
use crate::replies::{self, Read};
use crate::web::WebError;
use crate::web::access::Routes;

const PAGE: i64 = 30;

pub fn router() -> Routes {
    const REPLIES: &[Area] = &[Area::Replies];
    const ANSWERS: &[Area] = &[Area::Answers];
    Routes::new()
        .get("/admin/replies", REPLIES, inbox)
        .get("/admin/replies/{id}", REPLIES, conversation)
        .post("/admin/replies/{id}/answer", ANSWERS, post_answer)
        .get("/admin/replies/{id}/raw", REPLIES, raw)
        .post("/admin/replies/{id}/read", REPLIES, mark_read)
        .post("/admin/replies/{id}/flag", REPLIES, flag)
}

#[derive(Deserialize, Default)]
struct InboxParams {
    #[serde(default)]
    lesson: String,
    #[serde(default)]
    flagged: String,
    #[serde(default)]
    unread: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    after: String,
}

async fn inbox(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Query(p): Query<InboxParams>,
) -> Result<Response, WebError> {
    let (course, lessons) = course_and_lessons(&app, &current).await?;
    // "all", or one kind; anything else shows the people's replies.
    let kind = match p.kind.as_str() {
        "all" => None,
        other => Some(
            ReplyKind::parse(other)
                .unwrap_or(ReplyKind::Reply)
                .as_str()
                .to_owned(),
        ),
    };
    let q = InboxQuery {
        course_id: Some(course.id),
        lesson_id: lessons.iter().find(|l| l.slug == p.lesson).map(|l| l.id),
        subscriber_id: None,
        kind,
        flagged_only: p.flagged == "1",
        unread_only: p.unread == "1",
        after: InboxKey::parse(&p.after),
        limit: PAGE + 1,
    };
    let mut rows = replies::read(&app, &q, &admin.username, "inbox", Utc::now()).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let items: Vec<_> = rows
        .iter()
        .map(|Read { row: r, text }| {
            let lesson = lessons.iter().find(|l| Some(l.id) == r.lesson_id);
            json!({
                "id": r.id, "subscriber_id": r.subscriber_id, "email": r.email, "name": r.name, "from": r.from_addr,
                "subject": r.subject, "kind": r.kind, "command": r.command, "has_raw": r.has_raw != 0,
                "flagged": r.flagged != 0, "flag_reason": r.flag_reason, "read": r.read_at.is_some(), "received_at": r.received_at,
                "in_answer_to": r.in_answer_to, "answers": r.answers,
                "text": text,
                "lesson": lesson.map(|l| json!({"slug": l.slug, "title": l.content.title, "prompt": l.content.prompt})),
            })
        })
        .collect();
    let filters = format!(
        "lesson={}&flagged={}&unread={}&kind={}",
        super::encode(&p.lesson),
        super::encode(&p.flagged),
        super::encode(&p.unread),
        super::encode(&p.kind)
    );
    let next = more.then(|| {
        let key = replies::next_key(&rows.last().expect("more than one page").row);
        format!("/admin/replies?{filters}&after={key}")
    });
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "replies",
        json!({
            "nav": "replies", "items": items, "next": next, "here": format!("/admin/replies?{filters}&after={}", super::encode(&p.after)),
            "lesson": p.lesson, "flagged": p.flagged == "1", "unread": p.unread == "1", "kind": p.kind,
            "lessons": lessons.iter().map(|l| json!({"slug": l.slug, "title": l.content.title})).collect::<Vec<_>>(),
        }),
    )
}

/// A reply's whole conversation in order (the reader's replies and the answers to them),
/// with the form that answers its latest reply.
async fn conversation(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    conversation_page(&app, &admin, id, StatusCode::OK, "", None).await
}

async fn conversation_page(
    app: &App,
    admin: &Admin,
    id: i64,
    status: StatusCode,
    text: &str,
    error: Option<String>,
) -> Result<Response, WebError> {
    let Some((subscriber, c)) =
        replies::read_conversation(app, id, &admin.username, Utc::now()).await?
    else {
        return Err(WebError::NotFound(
            "There is no reply with this number, or it was never matched to a reader.",
        ));
    };
    let latest = c
        .turns
        .iter()
        .rev()
        .find(|t| t.by == "reader")
        .map_or(id, |t| t.id);
    let refusal = answers::cannot_answer(app, latest).await?;
    let lesson = match c.lesson_id {
        Some(l) => db::lessons::by_id(&app.db, l).await?,
        None => None,
    };
    let who = if subscriber.name.trim().is_empty() {
        subscriber.email.clone()
    } else {
        subscriber.name.clone()
    };
    page(
        app,
        Some(admin),
        status,
        "conversation",
        json!({
            "nav": "replies", "who": who, "subscriber": {"id": subscriber.id, "email": subscriber.email},
            "lesson": lesson.map(|l| json!({"title": l.content.title, "prompt": l.content.prompt})),
            "turns": c.turns, "latest": latest, "refusal": refusal, "text": text, "error": error,
            "max_chars": answers::MAX_CHARS,
        }),
    )
}

#[derive(Deserialize)]
struct AnswerForm {
    #[serde(default)]
    text: String,
}

/// Writes an answer to reply `id` and queues its mail; back to the conversation, or the
/// same page with the reason and the text kept.
async fn post_answer(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
    Form(form): Form<AnswerForm>,
) -> Result<Response, WebError> {
    match answers::answer(&app, id, &admin.username, &form.text, Utc::now()).await {
        Ok(q) => Ok(see_other(&format!("/admin/replies/{id}#author-{}", q.id))),
        Err(AnswerError::Invalid(e)) => {
            let message = e.to_string();
            conversation_page(
                &app,
                &admin,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form.text,
                Some(message),
            )
            .await
        }
        Err(e @ AnswerError::Refused { .. }) => {
            let message = e.to_string();
            conversation_page(
                &app,
                &admin,
                id,
                StatusCode::CONFLICT,
                &form.text,
                Some(message),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// The raw message as received, decrypted, as plain text (never rendered as HTML).
async fn raw(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let Some(text) = replies::read_raw(&app, id, &admin.username, Utc::now()).await? else {
        return Err(WebError::NotFound(
            "There is no raw message for this reply.",
        ));
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
        ],
        text,
    )
        .into_response())
}

#[derive(Deserialize)]
struct ToggleForm {
    #[serde(default)]
    value: String,
    #[serde(default)]
    back: String,
}

fn back_to(form: &ToggleForm) -> String {
    if form.back.starts_with("/admin/") && !form.back.contains("//") {
        form.back.clone()
    } else {
        "/admin/replies".into()
    }
}

async fn mark_read(
    State(app): State<App>,
    Path(id): Path<i64>,
    Form(form): Form<ToggleForm>,
) -> Result<Response, WebError> {
    let read_at = (form.value != "0").then(|| Utc::now().timestamp());
    if !db::admin_lists::set_read(&app.db, id, read_at).await? {
        return Err(WebError::NotFound("There is no reply with this number."));
    }
    Ok(see_other(&back_to(&form)))
}

async fn flag(
    State(app): State<App>,
    Path(id): Path<i64>,
    Form(form): Form<ToggleForm>,
) -> Result<Response, WebError> {
    if !db::admin_lists::set_flagged(&app.db, id, form.value != "0").await? {
        return Err(WebError::NotFound("There is no reply with this number."));
    }
    Ok(see_other(&back_to(&form)))
}
