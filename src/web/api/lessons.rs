//! `/api/v1/lessons` (list, get, update with the editor's checks: a lint problem is a 422
//! naming its field) and `/api/v1/replies` (by subscriber or lesson; each read is logged).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::subscribers::find;
use super::{ApiError, ApiResult, Body, Params, time};
use crate::app::App;
use crate::auth::Admin;
use crate::curriculum::edit::{self, Saved};
use crate::curriculum::{LessonContent, after_days, max_wait_days};
use crate::db::{
    self,
    admin_lists::{InboxKey, InboxQuery},
};
use crate::domain::{Area, InvalidInput, LessonStatus, Phase, SendWindow};
use crate::replies::{self, Read};
use crate::web::access::Routes;
use crate::web::admin::render_for_admin;
use crate::web::error::ErrorBody;

pub fn router() -> Routes {
    const LESSONS: &[Area] = &[Area::Lessons];
    Routes::under(super::PREFIX)
        .get("/lessons", LESSONS, list_lessons)
        .get("/lessons/{slug}", LESSONS, get_lesson)
        .put("/lessons/{slug}", LESSONS, put_lesson)
        .patch("/lessons/{slug}", LESSONS, patch_lesson)
        .get("/replies", &[Area::Replies], list_replies)
        .post("/replies/{id}/answers", &[Area::Answers], answer_reply)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAnswer {
    /// Plain text: a blank line starts a paragraph. At most 20,000 characters.
    text: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct AnswerQueued {
    /// The answer's id.
    id: i64,
    /// The reply it answers.
    reply: i64,
    /// The delivery that carries it (queued now; threaded under the reply).
    delivery: i64,
}

/// Answers a reader's reply: a mail from the course's address, threaded under their reply
/// (In-Reply-To and References), whose own replies come back into the same conversation.
#[utoipa::path(post, path = "/replies/{id}/answers", tag = "replies", request_body = NewAnswer,
    params(("id" = i64, Path, description = "The reply's id")),
    responses(
        (status = 201, body = AnswerQueued),
        (status = 404, description = "No such reply", body = ErrorBody),
        (status = 409, description = "The reply cannot be answered (an auto-reply, a reader who left)", body = ErrorBody),
    ))]
pub(super) async fn answer_reply(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    super::Id(id): super::Id,
    Body(b): Body<NewAnswer>,
) -> ApiResult {
    let q = crate::answers::answer(&app, id, &admin.username, &b.text, Utc::now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(AnswerQueued {
            id: q.id,
            reply: q.reply,
            delivery: q.delivery,
        }),
    )
        .into_response())
}

/// A lesson as the API shows it: where it stands and its content.
#[derive(Serialize, ToSchema)]
pub(super) struct LessonView {
    course: String,
    slug: String,
    position: i64,
    status: LessonStatus,
    revision: i64,
    author: String,
    updated_at: Option<String>,
    title: String,
    subject: String,
    #[schema(value_type = String)]
    phase: Phase,
    after_days: u32,
    /// The lesson's own window; null: the course's.
    #[schema(value_type = Option<String>)]
    send_window: Option<SendWindow>,
    prompt: String,
    preheader: Option<String>,
    wait_for_reply: bool,
    max_wait_days: Option<u32>,
    body: String,
}

fn lesson_json(course: &db::courses::CourseRow, l: &db::lessons::Lesson) -> LessonView {
    let c = l.content.clone();
    LessonView {
        course: course.slug.clone(),
        slug: l.slug.clone(),
        position: l.position,
        status: l.status,
        revision: l.revision,
        author: l.author.clone(),
        updated_at: time(Some(l.updated_at)),
        title: c.title,
        subject: c.subject,
        phase: c.phase,
        after_days: c.after_days,
        send_window: c.send_window,
        prompt: c.prompt,
        preheader: c.preheader,
        wait_for_reply: c.wait_for_reply,
        max_wait_days: c.max_wait_days,
        body: c.body,
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct LessonList {
    course: String,
    lessons: Vec<LessonView>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct OneLesson {
    lesson: LessonView,
}

#[derive(Serialize, ToSchema)]
pub(super) struct SavedLesson {
    lesson: LessonView,
    /// Enrollments whose next lesson moved.
    rescheduled: usize,
}

/// `?course=SLUG`: which course's lessons; may be left out when there is one course.
#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct CourseParam {
    /// The course's slug; may be left out when the instance has one course.
    course: Option<String>,
}

async fn lessons_of(
    app: &App,
    course: Option<&str>,
) -> Result<(db::courses::CourseRow, Vec<db::lessons::Lesson>), ApiError> {
    let course = app.course(course).await?;
    let lessons = db::lessons::list(&app.db, course.id).await?;
    Ok((course, lessons))
}

/// A course's lessons in order.
#[utoipa::path(get, path = "/lessons", tag = "lessons", params(CourseParam),
    responses((status = 200, body = LessonList)))]
pub(super) async fn list_lessons(
    State(app): State<App>,
    Params(c): Params<CourseParam>,
) -> ApiResult {
    let (course, lessons) = lessons_of(&app, c.course.as_deref()).await?;
    let lessons = lessons.iter().map(|l| lesson_json(&course, l)).collect();
    Ok(Json(LessonList {
        course: course.slug,
        lessons,
    })
    .into_response())
}

/// One lesson.
#[utoipa::path(get, path = "/lessons/{slug}", tag = "lessons",
    params(("slug" = String, Path, description = "The lesson's slug"), CourseParam),
    responses((status = 200, body = OneLesson)))]
pub(super) async fn get_lesson(
    State(app): State<App>,
    Path(slug): Path<String>,
    Params(c): Params<CourseParam>,
) -> ApiResult {
    let (course, lessons) = lessons_of(&app, c.course.as_deref()).await?;
    let l = lessons.iter().find(|l| l.slug == slug).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no lesson {slug:?}"),
            Some("slug"),
        )
    })?;
    Ok(Json(OneLesson {
        lesson: lesson_json(&course, l),
    })
    .into_response())
}

/// The fields to change; those left out keep their value. `send_window: null` means the
/// course's window. `revision`, when given, must be the current one (else 409).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LessonPatch {
    title: Option<String>,
    subject: Option<String>,
    phase: Option<String>,
    after_days: Option<i64>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    send_window: Option<Option<String>>,
    prompt: Option<String>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    preheader: Option<Option<String>>,
    wait_for_reply: Option<bool>,
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i64>)]
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

impl LessonPatch {
    /// The lesson's content with this patch applied, each value parsed as the lesson file
    /// and the editor parse it; a refusal names its field.
    fn apply(self, c: &LessonContent) -> Result<LessonContent, InvalidInput> {
        Ok(LessonContent {
            title: self.title.unwrap_or_else(|| c.title.clone()),
            subject: self.subject.unwrap_or_else(|| c.subject.clone()),
            phase: match self.phase {
                Some(p) => Phase::parse(p.trim())?,
                None => c.phase.clone(),
            },
            after_days: match self.after_days {
                Some(d) => after_days(d)?,
                None => c.after_days,
            },
            send_window: match self.send_window {
                Some(Some(w)) => Some(SendWindow::parse(&w)?),
                Some(None) => None,
                None => c.send_window.clone(),
            },
            prompt: self.prompt.unwrap_or_else(|| c.prompt.clone()),
            preheader: self.preheader.unwrap_or_else(|| c.preheader.clone()),
            wait_for_reply: self.wait_for_reply.unwrap_or(c.wait_for_reply),
            max_wait_days: match self.max_wait_days {
                Some(Some(d)) => Some(max_wait_days(d)?),
                Some(None) => None,
                None => c.max_wait_days,
            },
            body: self.body.unwrap_or_else(|| c.body.clone()),
        })
    }
}

/// The same save as the editor's (`curriculum::edit::save`): the same checks, the render
/// check included, and the same rescheduling, confirmed by the call itself.
#[utoipa::path(put, path = "/lessons/{slug}", tag = "lessons", request_body = LessonPatch,
    params(("slug" = String, Path, description = "The lesson's slug"), CourseParam),
    responses(
        (status = 200, body = SavedLesson),
        (status = 409, description = "`revision` is not the current one", body = ErrorBody),
    ))]
pub(super) async fn put_lesson(
    state: State<App>,
    admin: Extension<Admin>,
    slug: Path<String>,
    c: Params<CourseParam>,
    p: Body<LessonPatch>,
) -> ApiResult {
    update_lesson(state, admin, slug, c, p).await
}

/// The same as PUT: the fields left out keep their value.
#[utoipa::path(patch, path = "/lessons/{slug}", tag = "lessons", request_body = LessonPatch,
    params(("slug" = String, Path, description = "The lesson's slug"), CourseParam),
    responses(
        (status = 200, body = SavedLesson),
        (status = 409, description = "`revision` is not the current one", body = ErrorBody),
    ))]
pub(super) async fn patch_lesson(
    state: State<App>,
    admin: Extension<Admin>,
    slug: Path<String>,
    c: Params<CourseParam>,
    p: Body<LessonPatch>,
) -> ApiResult {
    update_lesson(state, admin, slug, c, p).await
}

async fn update_lesson(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(slug): Path<String>,
    Params(c): Params<CourseParam>,
    Body(p): Body<LessonPatch>,
) -> ApiResult {
    let (course, lessons) = lessons_of(&app, c.course.as_deref()).await?;
    let lesson = lessons.iter().find(|l| l.slug == slug).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no lesson {slug:?}"),
            Some("slug"),
        )
    })?;
    let base = p.revision.unwrap_or(lesson.revision);
    let content = p.apply(&lesson.content).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
            Some(e.field),
        )
    })?;
    let change = edit::Change {
        course: &course,
        lessons: &lessons,
        lesson,
        base,
        content,
        author: &admin.username,
        note: None,
        confirmed: true,
    };
    let render = |c: &LessonContent| {
        render_for_admin(&app, &course, &lessons, lesson.id, c, &admin).map(|_| ())
    };
    let impact = match edit::save(
        &app.db,
        change,
        render,
        crate::schedule::impact::View::of(&app.config),
    )
    .await?
    {
        Saved::Saved { impact } => impact,
        Saved::Unchanged | Saved::NeedsConfirmation(_) => None,
        Saved::Stale { revision } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("the lesson is at revision {revision}; fetch it again"),
                Some("revision"),
            ));
        }
        Saved::Refused(errors) => {
            let (field, messages) = errors.iter().next().expect("refused with a problem");
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{field}: {}", messages.join("; ")),
                Some(field),
            ));
        }
    };
    let saved = db::lessons::by_slug(&app.db, course.id, &slug)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "the lesson was removed meanwhile",
                Some("slug"),
            )
        })?;
    Ok(Json(SavedLesson {
        lesson: lesson_json(&course, &saved),
        rescheduled: impact.map(|i| i.moved).unwrap_or(0),
    })
    .into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ReplyParams {
    /// One course's slug; left out: every course's.
    course: Option<String>,
    /// A subscriber's id or address.
    subscriber: Option<String>,
    /// A lesson's slug.
    lesson: Option<String>,
    /// One kind of reply (reflection, question, ...), or all.
    kind: Option<String>,
    /// 1 to 1000; 100 when left out.
    limit: Option<i64>,
    /// The `next_after` of the previous page.
    after: Option<String>,
}

/// A reply as the API shows it (reading it is logged).
#[derive(Serialize, ToSchema)]
pub(super) struct ReplyView {
    id: i64,
    subscriber_id: Option<i64>,
    email: Option<String>,
    course: Option<String>,
    lesson: Option<String>,
    kind: String,
    command: Option<String>,
    text: String,
    flagged: bool,
    read: bool,
    received_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ReplyList {
    replies: Vec<ReplyView>,
    /// Pass as `after` for the next page; null: this was the last.
    next_after: Option<String>,
}

/// Replies, flagged first then newest first, by course, subscriber, lesson or kind.
#[utoipa::path(get, path = "/replies", tag = "replies", params(ReplyParams),
    responses(
        (status = 200, body = ReplyList),
        (status = 404, description = "No such subscriber or lesson", body = ErrorBody),
    ))]
pub(super) async fn list_replies(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Params(p): Params<ReplyParams>,
) -> ApiResult {
    // One course's replies, or (no `course`) every course's.
    let (course_id, lessons) = match p.course.as_deref() {
        Some(slug) => {
            let (course, lessons) = lessons_of(&app, Some(slug)).await?;
            (Some(course.id), lessons)
        }
        None => {
            let mut all = Vec::new();
            for c in app.courses().await? {
                all.extend(db::lessons::list(&app.db, c.id).await?);
            }
            (None, all)
        }
    };
    let slugs: std::collections::HashMap<i64, String> = app
        .courses()
        .await?
        .into_iter()
        .map(|c| (c.id, c.slug))
        .collect();
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
    let limit = super::page_limit(p.limit)?;
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
        course_id,
        lesson_id,
        subscriber_id,
        kind: p.kind.filter(|k| k != "all"),
        flagged_only: false,
        unread_only: false,
        after,
        limit,
    };
    let rows = replies::read(&app, &q, &admin.username, "api", Utc::now()).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| replies::next_key(&r.row).to_string()))
        .flatten();
    let replies = rows
        .iter()
        .map(|Read { row: r, text }| {
            let lesson = lessons.iter().find(|l| Some(l.id) == r.lesson_id);
            ReplyView {
                id: r.id,
                subscriber_id: r.subscriber_id,
                email: r.email.clone(),
                course: lesson.and_then(|l| slugs.get(&l.course_id)).cloned(),
                lesson: lesson.map(|l| l.slug.clone()),
                kind: r.kind.clone(),
                command: r.command.clone(),
                text: text.clone(),
                flagged: r.flagged != 0,
                read: r.read_at.is_some(),
                received_at: time(Some(r.received_at)),
            }
        })
        .collect();
    Ok(Json(ReplyList {
        replies,
        next_after: next,
    })
    .into_response())
}
