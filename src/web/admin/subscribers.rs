//! Subscribers: the searchable, filterable list (keyset pages), one subscriber's timeline
//! (events, mails, replies) and the actions on them: pause, resume, move to a lesson,
//! unsubscribe, erase.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::lessons::course_and_lessons;
use super::{message, page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::db::{self, admin_lists::SubscriberQuery};
use crate::domain::{Area, EnrollmentStatus, SubscriberStatus};
use crate::subscriptions;
use crate::web::WebError;
use crate::web::access::Routes;

const PAGE: i64 = 50;

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/subscribers", &[Area::Subscribers], list)
        .post(
            "/admin/subscribers/{id}/{action}",
            &[Area::Subscribers],
            act,
        )
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    reached: String,
    before: Option<i64>,
}

async fn list(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let (_, lessons) = course_and_lessons(&app, &current).await?;
    let reached = match q.reached.as_str() {
        "" => None,
        "none" => Some(0),
        slug => lessons.iter().find(|l| l.slug == slug).map(|l| l.position),
    };
    // A person's own status, or their status in this course.
    let enrollment_status = EnrollmentStatus::parse(&q.status).ok();
    let query = SubscriberQuery {
        course_id: Some(current.course.id),
        enrollment_status: enrollment_status.map(|s| s.as_str().to_owned()),
        status: SubscriberStatus::parse(&q.status)
            .ok()
            .filter(|_| enrollment_status.is_none())
            .map(|s| s.as_str().to_owned()),
        search: Some(q.q.trim().to_owned()).filter(|s| !s.is_empty()),
        reached,
        before_id: q.before,
        limit: PAGE + 1,
    };
    let mut rows = db::admin_lists::subscribers(&app.db, &query).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let lesson_at = |p: Option<i64>| {
        p.and_then(|p| lessons.iter().find(|l| l.position == p))
            .map(|l| l.content.title.clone())
    };
    let items: Vec<_> = rows
        .iter()
        .map(|s| json!({"row": s, "lesson": lesson_at(s.position)}))
        .collect();
    let filters = format!(
        "/admin/subscribers?q={}&status={}&reached={}",
        super::encode(&q.q),
        super::encode(&q.status),
        super::encode(&q.reached)
    );
    let next = more.then(|| {
        format!(
            "{filters}&before={}",
            rows.last().map(|s| s.id).unwrap_or(0)
        )
    });
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "subscribers",
        json!({
            "nav": "subscribers", "items": items, "next": next, "q": q.q, "status": q.status, "reached": q.reached,
            "statuses": SubscriberStatus::ALL, "lessons": lessons.iter().map(|l| json!({"slug": l.slug, "title": l.content.title, "position": l.position})).collect::<Vec<_>>(),
            "first_page": q.before.is_none(), "first": filters,
        }),
    )
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    lesson: String,
    #[serde(default)]
    confirm: String,
}

async fn act(
    State(app): State<App>,
    Extension(current): Extension<super::CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, WebError> {
    let back = format!("/admin/subscribers/{id}");
    let s = db::subscribers::by_id(&app.db, id)
        .await?
        .ok_or(WebError::NotFound(
            "There is no subscriber with this number.",
        ))?;
    let now = Utc::now();
    let who = admin.username.as_str();
    let refused = |title: &str, text: &str| {
        message(
            &app,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            title,
            text,
            &back,
        )
    };
    match action.as_str() {
        "pause" => {
            let course = &current.course;
            if !subscriptions::pause(&app, id, Some(course.id), who, now).await? {
                return refused(
                    "Not paused",
                    &format!(
                        "Only someone taking {} can be paused in it; this subscriber is not (or is paused already).",
                        course.title
                    ),
                );
            }
        }
        "resume" => {
            let course = &current.course;
            if !subscriptions::resume(&app, id, Some(course.id), who, now).await? {
                return refused(
                    "Not resumed",
                    &format!(
                        "Only someone paused in {} can be resumed in it; this subscriber is not.",
                        course.title
                    ),
                );
            }
        }
        "unsubscribe" => {
            subscriptions::unsubscribe(&app, id, None, who, now).await?;
        }
        "erase" => {
            if form.confirm != "erase" {
                return refused(
                    "Not erased",
                    "Type “erase” in the box to confirm: erasing removes the address, name and every reply for good.",
                );
            }
            subscriptions::erase(&app, id, who, now).await?;
        }
        "move" => {
            if let Err(why) = subscriptions::move_to_lesson(
                &app,
                &current.course,
                &s,
                &form.lesson,
                who,
                now.timestamp(),
            )
            .await?
            {
                return refused("Not moved", &why.to_string());
            }
        }
        _ => return Err(WebError::NotFound("There is no such action.")),
    }
    Ok(see_other(&back))
}
