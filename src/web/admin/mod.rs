//! The admin UI under `/admin`: sign-in (password, then the second factor's code once one is
//! enrolled), the account's second factor, lessons (editor, preview, revisions, test send),
//! subscribers, replies and statistics. Every page but the sign-in forms sits behind three
//! layers: a signed-in session (else 302 to the sign-in page), the admin's role against the
//! route table (`crate::web::access`, else 403), then, for POSTs, the session's CSRF token
//! (else 403).
//!
//! Pages come from `templates/web/admin/*.html` with HTML autoescaping: subscriber text is
//! never marked safe. Responses carry a Content-Security-Policy that allows no script at all.

mod account;
mod broadcasts;
mod courses;
mod editor;
mod form;
mod lessons;
mod login;
mod order;
mod replies;
mod revisions;
mod stats;
mod subscribers;
mod timeline;
mod transfer;

pub(crate) use lessons::render_for_admin;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::json;

use super::WebError;
use super::access::{self, Refusal, Routes};
use crate::app::App;
use crate::auth::{self, Admin};
use crate::domain::SessionStage;

/// The one route that takes multipart bodies; it checks the CSRF field itself.
const IMPORT_PATH: &str = "/admin/subscribers/import";
/// Admin forms carry whole lessons; CSV uploads are larger still.
const FORM_LIMIT: usize = 1024 * 1024;
const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;

/// Every signed-in page and form, each with the areas it touches.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .merge(courses::router())
        .merge(lessons::router())
        .merge(broadcasts::router())
        .merge(editor::router())
        .merge(order::router())
        .merge(revisions::router())
        .merge(subscribers::router())
        .merge(timeline::router())
        .merge(replies::router())
        .merge(stats::router())
        .merge(login::protected_router())
        .merge(account::router())
        .map(|r| r.layer(DefaultBodyLimit::max(FORM_LIMIT)))
        .merge(transfer::router().map(|r| r.layer(DefaultBodyLimit::max(UPLOAD_LIMIT))))
}

pub fn router(app: &App) -> Router<App> {
    // Outermost first: the session, then the role, then (for POSTs) the CSRF token.
    let protected = routes()
        .map(|r| r.route_layer(middleware::from_fn(check_csrf)))
        .guarded(app, refuse)
        .route_layer(middleware::from_fn_with_state(app.clone(), require_admin));
    Router::new()
        .merge(login::router().layer(DefaultBodyLimit::max(FORM_LIMIT)))
        .merge(protected)
}

/// The page for a request the route table turned away. An admin who must enrol a second
/// factor first is taken to do so.
fn refuse(app: &App, admin: Option<&Admin>, method: &Method, why: Refusal) -> Response {
    let Some(admin) = admin else {
        return StatusCode::FORBIDDEN.into_response();
    };
    if matches!(why, Refusal::MustEnrol) && *method == Method::GET {
        return see_other(account::TOTP_PATH);
    }
    let (title, back) = match why {
        Refusal::MustEnrol => ("Set up a second factor first", account::TOTP_PATH),
        _ => ("Not open to your role", access::home(admin.role)),
    };
    message(
        app,
        admin,
        StatusCode::FORBIDDEN,
        title,
        &why.explain(),
        back,
    )
    .unwrap_or_else(IntoResponse::into_response)
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// The course the admin is working on (the course switcher's cookie, else the instance's
/// default or first course), with every course for the switcher. Resolved once per request
/// by [`require_admin`]: handlers take it as `Extension<CurrentCourse>`, and [`page`] reads
/// it from the request's scope to draw the switcher on every page.
#[derive(Debug, Clone)]
pub(crate) struct CurrentCourse {
    pub course: crate::db::courses::CourseRow,
    pub all: Vec<(String, String)>,
}

tokio::task_local! {
    static CURRENT: CurrentCourse;
}

/// The switcher's cookie: a course slug, for the admin pages only.
const COURSE_COOKIE: &str = "drip_course";

async fn current_course(app: &App, headers: &HeaderMap) -> Result<CurrentCourse, WebError> {
    let courses = app.courses().await?;
    let wanted = cookie(headers, COURSE_COOKIE);
    let course = match wanted.and_then(|w| courses.iter().find(|c| c.slug == w).cloned()) {
        Some(c) => c,
        None => match app.course(None).await {
            Ok(c) => c,
            Err(_) => courses.first().cloned().ok_or(WebError::NotFound(
                "There is no course yet: add a folder under lessons/.",
            ))?,
        },
    };
    Ok(CurrentCourse {
        all: courses
            .iter()
            .map(|c| (c.slug.clone(), c.title.clone()))
            .collect(),
        course,
    })
}

/// Signed-in admins only: the session's admin goes into the request's extensions.
async fn require_admin(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let now = Utc::now().timestamp();
    let admin = match cookie(req.headers(), auth::COOKIE) {
        Some(id) => match auth::session_admin(&app.db, &id, now).await {
            Ok(a) => a,
            Err(e) => return WebError::Internal(e).into_response(),
        },
        None => None,
    };
    match admin {
        Some(admin) if admin.stage == SessionStage::Full => {
            let current = match current_course(&app, req.headers()).await {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            };
            req.extensions_mut().insert(admin);
            req.extensions_mut().insert(current.clone());
            CURRENT.scope(current, next.run(req)).await
        }
        // The password was right; the code is still to come.
        Some(_) => found(login::CODE_PATH),
        None => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .filter(|_| req.method() == Method::GET)
                .unwrap_or_default();
            if back.is_empty() {
                found("/admin/login")
            } else {
                found(&format!("/admin/login?next={}", encode(&back)))
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Every state-changing request carries the session's token in a `csrf` field. Form bodies
/// are read here (and handed on intact); multipart is accepted only by the upload route,
/// which checks its own `csrf` part before reading the file.
async fn check_csrf(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let Some(admin) = req.extensions().get::<Admin>().cloned() else {
        return forbidden();
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") && req.uri().path() == IMPORT_PATH {
        return next.run(req).await;
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return forbidden();
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
    };
    let probe = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(bytes.clone()))
        .expect("a valid request");
    let given = axum::Form::<CsrfField>::from_request(probe, &())
        .await
        .map(|f| f.0.csrf)
        .unwrap_or_default();
    if given.is_empty() || !auth::same_secret(&given, &admin.csrf) {
        return forbidden();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

pub(crate) fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::response::Html(
            "<!DOCTYPE html><title>Refused</title><p>This form has expired or did not come from drip's admin pages (missing or wrong CSRF token). Go back, reload the page and try again.</p>",
        ),
    )
        .into_response()
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The admin templates, compiled once per templates folder and time zone.
fn environment(app: &App) -> Arc<Environment<'static>> {
    type Cache = Mutex<HashMap<(PathBuf, String), Arc<Environment<'static>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let dir = app.config.course.templates_dir.join("web").join("admin");
    let tz = app.config.default_timezone();
    let key = (dir.clone(), tz.name().to_owned());
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| {
            let mut env = Environment::new();
            env.set_loader(minijinja::path_loader(dir));
            env.set_auto_escape_callback(|name| {
                if name.ends_with(".html") {
                    AutoEscape::Html
                } else {
                    AutoEscape::None
                }
            });
            let tz = tz.tz();
            env.add_filter("time", move |t: Option<i64>| -> String {
                t.map(|t| format_time(t, tz)).unwrap_or_else(|| "—".into())
            });
            Arc::new(env)
        })
        .clone()
}

pub(crate) fn format_time(t: i64, tz: chrono_tz::Tz) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_default()
}

/// Headers every admin response carries: no script may run, the pages are not framed or
/// cached, and no admin URL leaks in a Referer.
fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Renders `templates/web/admin/{name}.html` with the admin, the course title and `ctx`.
pub(crate) fn page<S: Serialize>(
    app: &App,
    admin: Option<&Admin>,
    status: StatusCode,
    name: &str,
    ctx: S,
) -> Result<Response, WebError> {
    let env = environment(app);
    let template = env
        .get_template(&format!("{name}.html"))
        .map_err(|e| WebError::Internal(anyhow::anyhow!("admin template {name}.html: {e:#}")))?;
    let html = template
        .render(minijinja::context! {
            admin => admin.map(|a| json!({
                "username": a.username, "email": a.email, "csrf": a.csrf, "role": a.role, "totp": a.totp,
                "can": access::can(a.role), "home": access::home(a.role),
                "sections": access::SECTIONS.iter().filter(|(_, _, area)| a.role.allows(*area, crate::domain::Action::Read)).map(|(name, path, _)| json!({"name": name, "path": path})).collect::<Vec<_>>(),
            })),
            site => CURRENT
                .try_with(|c| json!({
                    "title": c.course.title,
                    "course": c.course.slug,
                    "courses": c.all.iter().map(|(slug, title)| json!({"slug": slug, "title": title})).collect::<Vec<_>>(),
                }))
                .unwrap_or_else(|_| json!({"title": "drip"})),
            ..minijinja::Value::from_serialize(&ctx)
        })
        .map_err(|e| WebError::Internal(anyhow::anyhow!("rendering admin/{name}.html: {e:#}")))?;
    Ok(harden((status, axum::response::Html(html)).into_response()))
}

/// A page with a title and a message, for refusals and results that need no layout.
pub(crate) fn message(
    app: &App,
    admin: &Admin,
    status: StatusCode,
    title: &str,
    text: &str,
    back: &str,
) -> Result<Response, WebError> {
    page(
        app,
        Some(admin),
        status,
        "message",
        json!({"title": title, "text": text, "back": back}),
    )
}

/// 303 to a page after a successful POST (so a reload does not post again).
pub(crate) fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}
