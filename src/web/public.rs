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
use super::client::ClientAddr;
use crate::app::App;
use crate::db::{self, courses::CourseRow, enrollments::EnrollmentRow};
use crate::domain::{EnrollmentStatus, Pace, Purpose, SubscriberStatus, Timezone, WEEKDAYS};
use crate::subscriptions::{self, ConfirmLink, Confirmed, NewSubscriber, Subscribed};

pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(index))
        .route("/courses/{slug}", get(course_index))
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
    slug: String,
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

pub(super) async fn course_page(app: &App, course: &CourseRow) -> anyhow::Result<CoursePage> {
    let course = course.clone();
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
        slug: course.slug,
        language: course.language.as_str().to_owned(),
        title: course.title,
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
    /// The course's slug; may be left out when the instance has one course.
    #[serde(default)]
    course: Option<String>,
    /// The honeypot: a field the page hides from people (see `index.html`); only a program
    /// fills it in.
    #[serde(default)]
    website: String,
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

/// The courses open for sign-up: those with a published lesson.
async fn open_courses(app: &App) -> Result<Vec<(CourseRow, CoursePage)>, WebError> {
    let mut out = Vec::new();
    for course in app.courses().await? {
        let page = course_page(app, &course).await?;
        if page.lessons > 0 {
            out.push((course, page));
        }
    }
    Ok(out)
}

/// `GET /`: the one course's page when there is one, else the list of courses.
async fn index(State(app): State<App>) -> Result<Html<String>, WebError> {
    let mut open = open_courses(&app).await?;
    if open.len() == 1 {
        let (_, page) = open.remove(0);
        return index_page(&app, &page, &SubscribeForm::default(), &json!({}));
    }
    let courses: Vec<&CoursePage> = open.iter().map(|(_, p)| p).collect();
    let lang = app.site_language().await.unwrap_or_else(|| "en".to_owned());
    render(
        &app,
        "courses",
        &lang,
        json!({"courses": courses, "course": {"title": site_title(&app)}}),
    )
}

/// What the list of courses is called: the sender name of `[mail] from`.
fn site_title(app: &App) -> String {
    let from = &app.config.mail.from;
    match from.split_once('<') {
        Some((name, _)) if !name.trim().is_empty() => name.trim().trim_matches('"').to_owned(),
        _ => "Courses".to_owned(),
    }
}

/// `GET /courses/{slug}`: a course's page and its form.
async fn course_index(
    State(app): State<App>,
    Path(slug): Path<String>,
) -> Result<Html<String>, WebError> {
    let course = app
        .course(Some(&slug))
        .await
        .map_err(|_| WebError::Link("no_page"))?;
    let page = course_page(&app, &course).await?;
    if page.lessons == 0 {
        return Err(WebError::Link("no_page"));
    }
    index_page(&app, &page, &SubscribeForm::default(), &json!({}))
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

/// `POST /subscribe`. Past the fields' own checks, the sign-up goes through the flood checks
/// (`subscriptions::flood`): the per-client limit, the honeypot, and the instance's cap on
/// confirmation mails, checked in the sign-up's own transaction.
async fn subscribe(
    State(app): State<App>,
    ClientAddr(client): ClientAddr,
    input: SubscribeInput,
) -> Result<Response, WebError> {
    let SubscribeInput { form, json } = input;
    let course = match app
        .course(form.course.as_deref().filter(|c| !c.is_empty()))
        .await
    {
        Ok(c) => c,
        Err(e) if json => return Err(super::AsJson(e.into()).into_response()).or_else(Ok),
        Err(e) => return Err(e.into()),
    };
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
            let page = course_page(&app, &course).await?;
            let typed = |field: &str| match field {
                "email" => form.email.as_str(),
                "name" => form.name.as_str(),
                _ => form.timezone.as_str(),
            };
            let catalogue = app.renderer.catalogue();
            let by_field: serde_json::Map<String, serde_json::Value> = errors
                .iter()
                .map(|e| {
                    let said = catalogue.refusal(&page.language, e, typed(e.field));
                    (e.field.to_owned(), json!(said))
                })
                .collect();
            let page = index_page(&app, &page, &form, &serde_json::Value::Object(by_field))?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let now = Utc::now();
    if let Err(wait) = app.signups.admit(client, now.timestamp()) {
        tracing::debug!(%client, wait, "sign-up refused: too many from this client");
        return held_back(&app, &course, json, Limit::PerClient, wait);
    }
    if !form.website.is_empty() {
        // Only a program fills a field nobody sees: the answer is a success's, so it learns
        // nothing, and nothing is stored or sent.
        app.signups.honeypot_hit();
        tracing::debug!(%client, "sign-up with the honeypot field filled: nothing done");
        return signed_up(&app, &course, json).await;
    }
    // The outcome (new, pending, already active, throttled) is deliberately not shown: the
    // form must not reveal whether an address is known.
    let outcome = subscriptions::subscribe(&app, &course, &new, now).await?;
    if let Subscribed::InstanceFull { retry_after } = outcome {
        app.signups.instance_refusal();
        tracing::warn!(
            retry_after,
            cap = app.config.public.confirmations_per_hour,
            "sign-up refused: the confirmations of the last hour reached [public] confirmations_per_hour"
        );
        return held_back(&app, &course, json, Limit::Instance, retry_after);
    }
    signed_up(&app, &course, json).await
}

/// What every accepted sign-up is answered, whatever it did.
async fn signed_up(app: &App, course: &CourseRow, json: bool) -> Result<Response, WebError> {
    if json {
        return Ok(Json(
            json!({"status": "ok", "message": "Check your inbox for a confirmation link."}),
        )
        .into_response());
    }
    let page = course_page(app, course).await?;
    Ok(render(app, "subscribed", &page.language, json!({"course": page}))?.into_response())
}

/// Which limit held a sign-up back.
#[derive(Clone, Copy)]
enum Limit {
    PerClient,
    Instance,
}

/// A sign-up held back by a limit: `429` with `Retry-After` (seconds), as a page in the
/// course's words or, for a JSON request, the JSON error.
fn held_back(
    app: &App,
    course: &CourseRow,
    json: bool,
    limit: Limit,
    wait: i64,
) -> Result<Response, WebError> {
    let mut response = if json {
        let error = match limit {
            Limit::PerClient => format!(
                "too many sign-ups from this address in the last hour; try again in {wait} seconds"
            ),
            Limit::Instance => format!(
                "sign-ups are paused: too many in the last hour; try again in {wait} seconds"
            ),
        };
        super::AsJson::new(StatusCode::TOO_MANY_REQUESTS, error, None).into_response()
    } else {
        let key = match limit {
            Limit::PerClient => "per_client",
            Limit::Instance => "instance",
        };
        let page = render(
            app,
            "limited",
            course.language.as_str(),
            json!({
                "course": {"title": course.title, "slug": course.slug},
                "limit": key,
                "minutes": (wait + 59) / 60,
            }),
        )?;
        (StatusCode::TOO_MANY_REQUESTS, page).into_response()
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(wait.max(1)));
    Ok(response)
}

fn verify(app: &App, purpose: Purpose, token: &str) -> Result<i64, WebError> {
    app.signer
        .verify(purpose, token)
        .map_err(|_| WebError::Link("link_invalid"))
}

/// What a confirmation link names: the confirmation mail (which names its course), or, for
/// links mailed by single-course releases, the subscriber.
fn confirm_link(app: &App, token: &str) -> Result<ConfirmLink, WebError> {
    if let Ok(id) = app.signer.verify(Purpose::ConfirmCourse, token) {
        return Ok(ConfirmLink::Mail(id));
    }
    verify(app, Purpose::Confirm, token).map(ConfirmLink::Subscriber)
}

/// The link in the confirmation mail opens a page with one button; only the button (a
/// POST) confirms. Mail security scanners follow the links in a mail (GET), and one must
/// never start a course about broken trust for someone who did not ask for it.
async fn confirm_page(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let link = confirm_link(&app, &token)?;
    let (course, subscriber_id) = subscriptions::confirmation_of(&app, link)
        .await?
        .ok_or(WebError::Link("confirm_gone"))?;
    let s = db::subscribers::by_id(&app.db, subscriber_id)
        .await?
        .ok_or(WebError::Link("confirm_gone"))?;
    let taking = db::enrollments::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .any(|e| e.course_id == course.id && e.status != EnrollmentStatus::Stopped);
    let state = match s.status {
        SubscriberStatus::Pending => "ask",
        SubscriberStatus::Active if taking => "already",
        SubscriberStatus::Active => "ask",
        _ => "inactive",
    };
    let page = course_page(&app, &course).await?;
    render(
        &app,
        "confirmed",
        &page.language,
        json!({"course": page, "state": state}),
    )
}

async fn confirm(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let link = confirm_link(&app, &token)?;
    let (course, _) = subscriptions::confirmation_of(&app, link)
        .await?
        .ok_or(WebError::Link("confirm_gone"))?;
    let outcome = subscriptions::confirm(&app, link, "subscriber", Utc::now()).await?;
    let state = match outcome {
        Confirmed::Now => "confirmed",
        Confirmed::Already => "already",
        Confirmed::Inactive => "inactive",
        Confirmed::NotFound => return Err(WebError::Link("confirm_gone")),
    };
    let page = course_page(&app, &course).await?;
    render(
        &app,
        "confirmed",
        &page.language,
        json!({"course": page, "state": state}),
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

/// The course a person's pages speak for when no one course is meant: their first.
pub(super) async fn person_course(
    app: &App,
    s: &db::subscribers::SubscriberRow,
) -> Result<CourseRow, WebError> {
    let first = db::enrollments::for_subscriber(&app.db, s.id)
        .await?
        .into_iter()
        .next();
    Ok(match first {
        Some(e) => db::courses::by_id(&app.db, e.course_id).await?,
        None => match app.course(None).await {
            Ok(c) => c,
            Err(_) => app
                .courses()
                .await?
                .into_iter()
                .next()
                .ok_or(WebError::Link("no_page"))?,
        },
    })
}

/// What an unsubscribe link names: one course of one person (the link of a lesson mail),
/// or the person (everything).
struct Leaving {
    subscriber: db::subscribers::SubscriberRow,
    enrollment: Option<EnrollmentRow>,
    course: CourseRow,
}

async fn leaving(app: &App, token: &str) -> Result<Leaving, WebError> {
    if let Ok(id) = app.signer.verify(Purpose::Leave, token) {
        let gone = || WebError::Link("no_subscription");
        let e = db::enrollments::by_id(&app.db, id)
            .await?
            .ok_or_else(gone)?;
        let s = db::subscribers::by_id(&app.db, e.subscriber_id)
            .await?
            .filter(|s| s.status != SubscriberStatus::Erased)
            .ok_or_else(gone)?;
        let course = db::courses::by_id(&app.db, e.course_id).await?;
        return Ok(Leaving {
            subscriber: s,
            enrollment: Some(e),
            course,
        });
    }
    let s = subscriber_for(app, Purpose::Unsubscribe, token).await?;
    let course = person_course(app, &s).await?;
    Ok(Leaving {
        subscriber: s,
        enrollment: None,
        course,
    })
}

fn unsubscribe_context(
    app: &App,
    l: &Leaving,
    page: &CoursePage,
    token: &str,
) -> serde_json::Value {
    let s = &l.subscriber;
    let everything = s.status == SubscriberStatus::Unsubscribed;
    let done = match &l.enrollment {
        Some(e) => e.status == EnrollmentStatus::Stopped || everything,
        None => everything,
    };
    json!({
        "course": page,
        "email": s.email,
        "done": done,
        "everything": everything,
        "one_course": l.enrollment.is_some(),
        "token": token,
        "all_token": app.signer.sign(Purpose::Unsubscribe, s.id),
        "preferences_token": app.signer.sign(Purpose::Preferences, s.id),
    })
}

async fn unsubscribe_page(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let l = leaving(&app, &token).await?;
    let page = course_page(&app, &l.course).await?;
    render(
        &app,
        "unsubscribe",
        &page.language,
        unsubscribe_context(&app, &l, &page, &token),
    )
}

/// One click: works for the RFC 8058 POST (body `List-Unsubscribe=One-Click`, no cookies)
/// and for the button on the page alike. A lesson's link leaves that course; the page's
/// second button (and the link of mails about the person) leaves everything.
async fn unsubscribe(
    State(app): State<App>,
    Path(token): Path<String>,
) -> Result<Html<String>, WebError> {
    let l = leaving(&app, &token).await?;
    let course = l.enrollment.as_ref().map(|e| e.course_id);
    subscriptions::unsubscribe(&app, l.subscriber.id, course, "subscriber", Utc::now()).await?;
    let l = leaving(&app, &token).await?;
    let page = course_page(&app, &l.course).await?;
    let mut ctx = unsubscribe_context(&app, &l, &page, &token);
    ctx["done"] = json!(true);
    render(&app, "unsubscribe", &page.language, ctx)
}

/// One enrollment as the preferences page shows it.
fn enrollment_view(e: &EnrollmentRow, c: &CourseRow) -> serde_json::Value {
    let pace = e.pace();
    let status = match (e.status, c.is_evergreen()) {
        (EnrollmentStatus::Completed, true) => "caught_up",
        (status, _) => status.as_str(),
    };
    json!({
        "slug": c.slug,
        "title": c.title,
        "status": status,
        "position": e.position,
        "paced": pace.is_some(),
        "days": WEEKDAYS.iter().enumerate().map(|(i, d)| json!({"name": d, "on": pace.is_some_and(|p| p.has_day(i))})).collect::<Vec<_>>(),
        "hour": pace.map(|p| p.hour()).unwrap_or(8),
    })
}

/// The preferences page's language and context; `message` is the catalogue key of what
/// the page says after a change (`preferences.paused`...).
async fn preferences_context(
    app: &App,
    s: &db::subscribers::SubscriberRow,
    token: &str,
    message: Option<&str>,
) -> Result<(String, serde_json::Value), WebError> {
    let course = course_page(app, &person_course(app, s).await?).await?;
    let message = match message {
        Some(key) => app
            .renderer
            .catalogue()
            .format(&course.language, key, &[])?,
        None => String::new(),
    };
    let lang = course.language.clone();
    let courses = db::courses::list(&app.db).await?;
    let enrollments: Vec<serde_json::Value> = db::enrollments::for_subscriber(&app.db, s.id)
        .await?
        .iter()
        .filter_map(|e| {
            courses
                .iter()
                .find(|c| c.id == e.course_id)
                .map(|c| enrollment_view(e, c))
        })
        .collect();
    let ctx = json!({
        "course": course,
        "subscriber": { "email": s.email, "name": s.name, "timezone": s.timezone, "status": s.status, "discreet": s.discreet != 0 },
        "enrollments": enrollments,
        "hours": (0..24).collect::<Vec<u8>>(),
        "timezones": Timezone::all_names().collect::<Vec<_>>(),
        "token": token,
        "message": message,
        "journal": app.links(s.id, None).journal,
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

/// The preferences forms. Read from the raw pairs: the pacing form repeats `day` once per
/// ticked box.
#[derive(Default)]
struct PreferencesForm {
    action: String,
    /// The course an action is about (pause, resume, next, pace, unpace, leave).
    course: String,
    timezone: String,
    /// The discreet checkbox: present when ticked.
    discreet: Option<String>,
    /// The pacing form: the days ticked (Mon … Sun), and the hour.
    day: Vec<String>,
    hour: Option<String>,
}

impl PreferencesForm {
    /// Every field but `day` once at most; `action` required.
    fn from_pairs(pairs: Vec<(String, String)>) -> Result<PreferencesForm, WebError> {
        let mut form = PreferencesForm::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if k != "day" && !seen.insert(k.clone()) {
                return Err(WebError::refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("the form: duplicate field `{k}`"),
                    Some(&k),
                ));
            }
            match k.as_str() {
                "action" => form.action = v,
                "course" => form.course = v,
                "timezone" => form.timezone = v,
                "discreet" => form.discreet = Some(v),
                "day" => form.day.push(v),
                "hour" => form.hour = Some(v),
                _ => {}
            }
        }
        if !seen.contains("action") {
            return Err(WebError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the form: missing field `action`",
                Some("action"),
            ));
        }
        Ok(form)
    }
}

async fn preferences(
    State(app): State<App>,
    Path(token): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let s = subscriber_for(&app, Purpose::Preferences, &token).await?;
    let form = PreferencesForm::from_pairs(pairs)?;
    let now = Utc::now();
    // The enrollment an action names, one of this person's; `course` may be left out by
    // someone who takes one course.
    let enrollment = async || -> Result<EnrollmentRow, WebError> {
        let mine = db::enrollments::for_subscriber(&app.db, s.id).await?;
        if form.course.is_empty() && mine.len() == 1 {
            return Ok(mine.into_iter().next().expect("one"));
        }
        let course = app.course(Some(form.course.as_str())).await?;
        mine.into_iter()
            .find(|e| e.course_id == course.id)
            .ok_or_else(|| {
                WebError::refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "course: you are not taking this course",
                    Some("course"),
                )
            })
    };
    let message = match form.action.as_str() {
        "pause" => {
            let e = enrollment().await?;
            subscriptions::pause(&app, s.id, Some(e.course_id), "subscriber", now).await?;
            "preferences.paused"
        }
        "resume" => {
            let e = enrollment().await?;
            subscriptions::resume(&app, s.id, Some(e.course_id), "subscriber", now).await?;
            "preferences.resumed"
        }
        "next" => {
            let e = enrollment().await?;
            match subscriptions::next_now(&app, e.id, "subscriber", now).await? {
                subscriptions::NextNow::Queued => "preferences.next_queued",
                subscriptions::NextNow::Finished => "preferences.next_finished",
                subscriptions::NextNow::NotTaking => "preferences.next_not_taking",
            }
        }
        "pace" => {
            let e = enrollment().await?;
            let mut days = 0u8;
            for d in &form.day {
                match WEEKDAYS.iter().position(|w| w.eq_ignore_ascii_case(d)) {
                    Some(i) => days |= 1 << i,
                    None => {
                        return Err(WebError::refused(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!("day: {d:?} is not a day of the week (Mon … Sun)"),
                            Some("day"),
                        ));
                    }
                }
            }
            let hour = match form.hour.as_deref().map(str::parse::<u8>) {
                Some(Ok(h)) => h,
                _ => {
                    return Err(WebError::refused(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "hour: choose an hour from 0 to 23",
                        Some("hour"),
                    ));
                }
            };
            let pace = Pace::new(days, hour)?;
            subscriptions::set_pace(&app, e.id, Some(pace), "subscriber", now).await?;
            "preferences.paced"
        }
        "unpace" => {
            let e = enrollment().await?;
            subscriptions::set_pace(&app, e.id, None, "subscriber", now).await?;
            "preferences.unpaced"
        }
        "leave" => {
            let e = enrollment().await?;
            subscriptions::unsubscribe(&app, s.id, Some(e.course_id), "subscriber", now).await?;
            "preferences.left"
        }
        "unsubscribe" => {
            subscriptions::unsubscribe(&app, s.id, None, "subscriber", now).await?;
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
                "action: must be pause, resume, next, pace, unpace, leave, timezone, discreet or unsubscribe",
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
