//! `/admin/broadcasts`: the course's broadcasts with their figures, and the form that writes
//! one (a preview of the exact mail, the audience counted before sending, a time), a test
//! send and cancel. The work is `crate::broadcasts`', as for the CLI and the API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::Utc;
use serde_json::json;

use super::{CurrentCourse, message, page, see_other};
use crate::app::App;
use crate::auth::Admin;
use crate::broadcasts::{self, BroadcastError, Draft, When};
use crate::db;
use crate::domain::{Area, Audience, EmailAddress};
use crate::web::WebError;
use crate::web::access::Routes;

pub fn router() -> Routes {
    const B: &[Area] = &[Area::Broadcasts];
    Routes::new()
        .get("/admin/broadcasts", B, list)
        .post("/admin/broadcasts", B, create)
        .post("/admin/broadcasts/preview", B, preview)
        .get("/admin/broadcasts/{id}", B, show)
        .post("/admin/broadcasts/{id}/cancel", B, cancel)
        .post("/admin/broadcasts/{id}/test", B, send_test)
}

/// The compose form as typed.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
struct ComposeForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    audience: String,
    /// "now", "at" or "local".
    #[serde(default)]
    when: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    local_time: String,
    #[serde(default)]
    date: String,
}

impl ComposeForm {
    fn draft(&self) -> Result<Draft, crate::domain::InvalidInput> {
        let audience = match self.audience.as_str() {
            "" => Audience::Active,
            a => Audience::parse(a)?,
        };
        let when = match self.when.as_str() {
            "at" => When::parse(Some(&self.at), None, None)?,
            "local" => When::parse(None, Some(&self.local_time), Some(&self.date))?,
            _ => When::Now,
        };
        if self.when == "at" && self.at.trim().is_empty() {
            return Err(crate::domain::InvalidInput::new(
                "at",
                "give the moment to send it",
            ));
        }
        if self.when == "local" && self.local_time.trim().is_empty() {
            return Err(crate::domain::InvalidInput::new(
                "local_time",
                "give the hour on each reader's clock (HH:MM)",
            ));
        }
        Ok(Draft {
            subject: self.subject.clone(),
            body: self.body.clone(),
            audience,
            when,
        })
    }
}

async fn list_page(
    app: &App,
    admin: &Admin,
    course: &crate::db::courses::CourseRow,
    status: StatusCode,
    form: &ComposeForm,
    errors: serde_json::Value,
    preview: Option<serde_json::Value>,
) -> Result<Response, WebError> {
    let mut views = Vec::new();
    for b in db::broadcasts::list(&app.db, Some(course.id)).await? {
        let view = broadcasts::view(app, b).await?;
        let when = broadcasts::describe_when(&view.row);
        let mut v = serde_json::to_value(view).map_err(|e| WebError::Internal(e.into()))?;
        v["when_text"] = json!(when);
        views.push(v);
    }
    let mut counts = serde_json::Map::new();
    for a in Audience::ALL {
        counts.insert(
            a.as_str().to_owned(),
            json!(db::broadcasts::audience_count(&app.db, course.id, *a).await?),
        );
    }
    page(
        app,
        Some(admin),
        status,
        "broadcasts",
        json!({"nav": "broadcasts", "broadcasts": views, "form": form, "errors": errors,
               "preview": preview, "counts": counts}),
    )
}

async fn list(
    State(app): State<App>,
    Extension(current): Extension<CurrentCourse>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    let form = ComposeForm {
        audience: "active".into(),
        when: "now".into(),
        ..Default::default()
    };
    list_page(
        &app,
        &admin,
        &current.course,
        StatusCode::OK,
        &form,
        json!({}),
        None,
    )
    .await
}

fn refused(field: &str, message: String) -> serde_json::Value {
    json!({ field: message })
}

/// Renders the form's mail for a sample reader; nothing is stored.
async fn preview(
    State(app): State<App>,
    Extension(current): Extension<CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Form(form): Form<ComposeForm>,
) -> Result<Response, WebError> {
    let course = &current.course;
    let problems = match form.draft() {
        Ok(d) => d.check(),
        Err(e) => vec![e],
    };
    if let Some(p) = problems.first() {
        let errors = refused(p.field, p.message.clone());
        return list_page(
            &app,
            &admin,
            course,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            errors,
            None,
        )
        .await;
    }
    match broadcasts::sample(&app, course, &form.subject, &form.body) {
        Ok(m) => {
            let preview = json!({"subject": m.subject, "html": m.html, "text": m.text});
            list_page(
                &app,
                &admin,
                course,
                StatusCode::OK,
                &form,
                json!({}),
                Some(preview),
            )
            .await
        }
        Err(e) => {
            let errors = refused("body", format!("{e:#}"));
            list_page(
                &app,
                &admin,
                course,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                errors,
                None,
            )
            .await
        }
    }
}

async fn create(
    State(app): State<App>,
    Extension(current): Extension<CurrentCourse>,
    Extension(admin): Extension<Admin>,
    Form(form): Form<ComposeForm>,
) -> Result<Response, WebError> {
    let course = &current.course;
    let made = match form.draft() {
        Ok(draft) => broadcasts::create(&app, course, &draft, &admin.username, Utc::now()).await,
        Err(e) => Err(e.into()),
    };
    match made {
        Ok(b) => Ok(see_other(&format!(
            "/admin/broadcasts/{}?done=created",
            b.id
        ))),
        Err(BroadcastError::Invalid(e)) => {
            let errors = refused(e.field, e.message);
            list_page(
                &app,
                &admin,
                course,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                errors,
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize, Default)]
struct Done {
    done: Option<String>,
}

async fn show(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Response, WebError> {
    let v = broadcasts::find(&app, id).await?;
    let course = db::courses::by_id(&app.db, v.row.course_id).await?;
    let mail = broadcasts::sample(&app, &course, &v.row.subject, &v.row.body).ok();
    let notice = match done.done.as_deref() {
        Some("created") => {
            "The broadcast is made. Its mail goes out at its time; you can still cancel it until then."
        }
        Some("cancelled") => "Cancelled: nothing more of it will be sent.",
        Some("test_sent") => "The test was sent to your address.",
        _ => "",
    };
    let can_cancel = v.state == "scheduled" || v.state == "sending";
    page(
        &app,
        Some(&admin),
        StatusCode::OK,
        "broadcast",
        json!({"nav": "broadcasts", "b": v, "when_text": broadcasts::describe_when(&v.row),
               "preview": mail.map(|m| json!({"subject": m.subject, "html": m.html, "text": m.text})),
               "notice": notice, "can_cancel": can_cancel}),
    )
}

async fn cancel(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    match broadcasts::cancel(&app, id, &admin.username, Utc::now()).await {
        Ok(_) => Ok(see_other(&format!("/admin/broadcasts/{id}?done=cancelled"))),
        Err(e @ BroadcastError::Finished { .. }) => message(
            &app,
            &admin,
            StatusCode::CONFLICT,
            "Not cancelled",
            &e.to_string(),
            &format!("/admin/broadcasts/{id}"),
        ),
        Err(e) => Err(e.into()),
    }
}

async fn send_test(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let back = format!("/admin/broadcasts/{id}");
    let Ok(to) = EmailAddress::parse(&admin.email) else {
        return message(
            &app,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "No address to send to",
            "Your admin account has no email address. Create it with `drip admin add USER --email ADDRESS`.",
            &back,
        );
    };
    match broadcasts::send_test(&app, id, &to, &admin.username, Utc::now()).await {
        Ok(()) => Ok(see_other(&format!("{back}?done=test_sent"))),
        Err(BroadcastError::Other(e)) => message(
            &app,
            &admin,
            StatusCode::BAD_GATEWAY,
            "The test mail was not sent",
            &format!("{e:#}"),
            &back,
        ),
        Err(e) => Err(e.into()),
    }
}
