//! The subscriber's side: the course page and sign-up form, confirmation, one-click
//! unsubscribe and preferences (the journal is in `journal`). Token links are the only
//! credential.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::WebError;
use crate::app::App;
use crate::db;
use crate::domain::{Purpose, SubscriberStatus, Timezone};
use crate::subscriptions::{self, Confirmed, NewSubscriber};

pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(index))
        .route("/subscribe", axum::routing::post(subscribe))
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            "/preferences/{token}",
            get(preferences_page).post(preferences),
        )
}

/// What the course page shows about the course.
#[derive(Serialize)]
pub(super) struct CoursePage {
    title: String,
    /// The course's language: the words of every page about it.
    pub(super) language: String,
    description: String,
    phases: Vec<PhaseInfo>,
    lessons: usize,
    days: u32,
}

#[derive(Serialize)]
struct PhaseInfo {
    label: String,
    line: String,
    lessons: usize,
}

pub(super) async fn course_page(app: &App) -> anyhow::Result<CoursePage> {
    let course = app.course().await?;
    let lessons: Vec<_> = db::lessons::list(&app.db, course.id)
        .await?
        .into_iter()
        .filter(|l| l.is_published())
        .collect();
    let phases = course
        .phases
        .iter()
        .map(|p| PhaseInfo {
            label: p.title.clone(),
            line: p.description.clone(),
            lessons: lessons.iter().filter(|l| l.content.phase == p.name).count(),
        })
        .filter(|p| p.lessons > 0)
        .collect();
    let days = lessons.iter().map(|l| l.content.after_days).sum::<u32>() + 1;
    Ok(CoursePage {
        title: course.title,
        language: course.language.as_str().to_owned(),
        description: course.description,
        phases,
        lessons: lessons.len(),
        days,
    })
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct SubscribeForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    timezone: String,
    /// The discreet checkbox: "on" when ticked, absent when not.
    #[serde(default)]
    discreet: Option<String>,
}

/// A page, its words in `lang` (the course's language).
pub(super) fn render(
    app: &App,
    name: &str,
    lang: &str,
    ctx: serde_json::Value,
) -> Result<Html<String>, WebError> {
    Ok(Html(app.renderer.page(name, lang, ctx)?))
}

fn index_page(
    app: &App,
    course: &CoursePage,
    form: &SubscribeForm,
    errors: &serde_json::Value,
) -> Result<Html<String>, WebError> {
    let timezone = if form.timezone.is_empty() {
        app.config.schedule.default_timezone.clone()
    } else {
        form.timezone.clone()
    };
    render(
        app,
        "index",
        &course.language,
        json!({
            "course": course,
            "form": { "email": form.email, "name": form.name, "timezone": timezone },
            "errors": errors,
            "timezones": Timezone::all_names().collect::<Vec<_>>(),
        }),
    )
}

async fn index(State(app): State<App>) -> Result<Html<String>, WebError> {
    let course = course_page(&app).await?;
    index_page(&app, &course, &SubscribeForm::default(), &json!({}))
}

/// The form, from either an HTML form post or a JSON body.
struct SubscribeInput {
    form: SubscribeForm,
    json: bool,
}

impl<S: Send + Sync> FromRequest<S> for SubscribeInput {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            let Json(form) = Json::<SubscribeForm>::from_request(req, state)
                .await
                .map_err(|e| super::AsJson(e.into()).into_response())?;
            Ok(SubscribeInput { form, json: true })
        } else {
            let Form(form) = Form::<SubscribeForm>::from_request(req, state)
                .await
                .map_err(IntoResponse::into_response)?;
            Ok(SubscribeInput { form, json: false })
        }
    }
}

async fn subscribe(State(app): State<App>, input: SubscribeInput) -> Result<Response, WebError> {
    let SubscribeInput { form, json } = input;
    let parsed = NewSubscriber::parse(
        &form.email,
        &form.name,
        &form.timezone,
        app.config.default_timezone(),
    );
    let new = match parsed {
        Ok(new) => new,
        Err(errors) => {
            if json {
                let first = &errors[0];
                let body = json!({
                    "error": first.to_string(),
                    "field": first.field,
                    "errors": errors.iter().map(|e| json!({"field": e.field, "message": e.message})).collect::<Vec<_>>(),
                });
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
            }
            let course = course_page(&app).await?;
            let typed = |field: &str| match field {
                "email" => form.email.as_str(),
                "name" => form.name.as_str(),
                _ => form.timezone.as_str(),
            };
            let catalogue = app.renderer.catalogue();
            let by_field: serde_json::Map<String, serde_json::Value> = errors
                .iter()
                .map(|e| {
                    let said = catalogue.refusal(&course.language, e, typed(e.field));
                    (e.field.to_owned(), json!(said))
                })
                .collect();
            let page = index_page(&app, &course, &form, &serde_json::Value::Object(by_field))?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    // The outcome (new, pending, already active, throttled) is deliberately not shown: the
    // form must not reveal whether an address is known.
    subscriptions::subscribe(&app, &new, Utc::now()).await?;
    if json {
        return Ok(Json(
            json!({"status": "ok", "message": "Check your inbox for a confirmation link."}),
        )
        .into_response());
    }
    let course = course_page(&app).await?;
    Ok(render(
        &app,
        "subscribed",
        &course.language,
        json!({"course": course}),
    )?
    .into_response())
}

fn verify(app: &App, purpose: Purpose, token: &str) -> Result<i64, WebError> {
    app.signer
        .verify(purpose, token)
        .map_err(|_| WebError::Link("link_invalid"))
}

/// The link in the confirmation mail opens a page with one button; only the button (a
/// POST) confirms. Mail security scanners follow the links in a mail (GET), and one must
/// never start a course about broken trust for someone who did not ask for it.
async fn confirm_page(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let id = verify(&app, Purpose::Confirm, &token)?;
    let s = db::subscribers::by_id(&app.db, id)
        .await?
        .ok_or(WebError::Link("confirm_gone"))?;
    let state = match s.status {
        SubscriberStatus::Pending => "ask",
        SubscriberStatus::Active | SubscriberStatus::Paused => "already",
        _ => "inactive",
    };
    let course = course_page(&app).await?;
    render(
        &app,
        "confirmed",
        &course.language,
        json!({"course": course, "state": state}),
    )
}

async fn confirm(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let id = verify(&app, Purpose::Confirm, &token)?;
    let outcome = subscriptions::confirm(&app, id, "subscriber", Utc::now()).await?;
    let state = match outcome {
        Confirmed::Now => "confirmed",
        Confirmed::Already => "already",
        Confirmed::Inactive => "inactive",
        Confirmed::NotFound => {
            return Err(WebError::Link("confirm_gone"));
        }
    };
    let course = course_page(&app).await?;
    render(
        &app,
        "confirmed",
        &course.language,
        json!({"course": course, "state": state}),
    )
}

pub(super) async fn subscriber_for(
    app: &App,
    purpose: Purpose,
    token: &str,
) -> Result<db::subscribers::SubscriberRow, WebError> {
    let id = verify(app, purpose, token)?;
    db::subscribers::by_id(&app.db, id)
        .await?
        .filter(|s| s.status != crate::domain::SubscriberStatus::Erased)
        .ok_or(WebError::Link("no_subscription"))
}

async fn unsubscribe_page(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let s = subscriber_for(&app, Purpose::Unsubscribe, &token).await?;
    let course = course_page(&app).await?;
    render(
        &app,
        "unsubscribe",
        &course.language,
        json!({"course": course, "email": s.email, "done": s.status == crate::domain::SubscriberStatus::Unsubscribed, "token": token}),
    )
}

/// One click: works for the RFC 8058 POST (body `List-Unsubscribe=One-Click`, no cookies)
/// and for the button on the page alike.
async fn unsubscribe(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let s = subscriber_for(&app, Purpose::Unsubscribe, &token).await?;
    subscriptions::unsubscribe(&app, s.id, "subscriber", Utc::now()).await?;
    let course = course_page(&app).await?;
    render(
        &app,
        "unsubscribe",
        &course.language,
        json!({"course": course, "email": s.email, "done": true, "token": token}),
    )
}

/// The preferences page's language and context; `message` is the catalogue key of what
/// the page says after a change (`preferences.paused`...).
async fn preferences_context(
    app: &App,
    s: &db::subscribers::SubscriberRow,
    token: &str,
    message: Option<&str>,
) -> Result<(String, serde_json::Value), WebError> {
    let course = course_page(app).await?;
    let message = match message {
        Some(key) => app
            .renderer
            .catalogue()
            .format(&course.language, key, &[])?,
        None => String::new(),
    };
    let enrollment = db::enrollments::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .next();
    let lang = course.language.clone();
    let ctx = json!({
        "course": course,
        "subscriber": { "email": s.email, "name": s.name, "timezone": s.timezone, "status": s.status, "discreet": s.discreet != 0 },
        "position": enrollment.map(|e| e.position).unwrap_or(0),
        "timezones": Timezone::all_names().collect::<Vec<_>>(),
        "token": token,
        "message": message,
        "journal": app.links(s.id).journal,
    });
    Ok((lang, ctx))
}

async fn preferences_page(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let s = subscriber_for(&app, Purpose::Preferences, &token).await?;
    let (lang, ctx) = preferences_context(&app, &s, &token, None).await?;
    render(&app, "preferences", &lang, ctx)
}

#[derive(Deserialize)]
struct PreferencesForm {
    action: String,
    #[serde(default)]
    timezone: String,
    /// The discreet checkbox: "on" when ticked, absent when not.
    #[serde(default)]
    discreet: Option<String>,
}

async fn preferences(
    State(app): State<App>,
    Path(token): Path<String>,
    Form(form): Form<PreferencesForm>,
) -> Result<Response, WebError> {
    let s = subscriber_for(&app, Purpose::Preferences, &token).await?;
    let now = Utc::now();
    let message = match form.action.as_str() {
        "pause" => {
            subscriptions::pause(&app, s.id, "subscriber", now).await?;
            "preferences.paused"
        }
        "resume" => {
            subscriptions::resume(&app, s.id, "subscriber", now).await?;
            "preferences.resumed"
        }
        "unsubscribe" => {
            subscriptions::unsubscribe(&app, s.id, "subscriber", now).await?;
            "preferences.unsubscribed"
        }
        "discreet" => {
            let on = form.discreet.is_some();
            subscriptions::set_discreet(&app, s.id, on, "subscriber", now).await?;
            if on {
                "preferences.discreet_on"
            } else {
                "preferences.discreet_off"
            }
        }
        "timezone" => match Timezone::parse(&form.timezone) {
            Ok(tz) => {
                subscriptions::set_timezone(&app, s.id, tz, "subscriber", now).await?;
                "preferences.timezone_saved"
            }
            Err(e) => {
                let s = db::subscribers::by_id(&app.db, s.id)
                    .await?
                    .ok_or(WebError::Link("no_subscription"))?;
                let (lang, mut ctx) = preferences_context(&app, &s, &token, None).await?;
                let said = app.renderer.catalogue().refusal(&lang, &e, &form.timezone);
                ctx["errors"] = json!({ "timezone": said });
                return Ok((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    render(&app, "preferences", &lang, ctx)?,
                )
                    .into_response());
            }
        },
        _ => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                "action: must be pause, resume, timezone, discreet or unsubscribe",
            )
                .into_response());
        }
    };
    let s = db::subscribers::by_id(&app.db, s.id)
        .await?
        .ok_or(WebError::Link("no_subscription"))?;
    let (lang, ctx) = preferences_context(&app, &s, &token, Some(message)).await?;
    Ok(render(&app, "preferences", &lang, ctx)?.into_response())
}
