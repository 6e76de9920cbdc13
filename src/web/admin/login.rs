//! Signing in and out. A fresh session id at every sign-in (a cookie planted before it is
//! worth nothing after), the cookie scoped to /admin, HttpOnly and SameSite=Lax, Secure on
//! https. The sign-in form has its own CSRF defence (a double-submit cookie), since no
//! session exists yet; repeated failures from one address are refused for a while.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{cookie, page, see_other};
use crate::app::App;
use crate::auth::{self, Admin, SignInLimiter};
use crate::web::WebError;

const LOGIN_COOKIE: &str = "drip_login";

pub fn router() -> Router<App> {
    Router::new().route("/admin/login", get(form).post(sign_in))
}

pub(crate) fn protected_router() -> Router<App> {
    Router::new()
        .route("/admin", get(|| async { see_other("/admin/lessons") }))
        .route("/admin/", get(|| async { see_other("/admin/lessons") }))
        .route("/admin/logout", post(sign_out))
}

/// The client's address: the TCP peer. Without one (a test calling the router directly)
/// every such request shares one bucket.
fn client_ip(connect: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    connect
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn secure(app: &App) -> &'static str {
    if app.config.server.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// Only a path inside the admin UI may be a destination after sign-in.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/admin")
        && !next.starts_with("/admin/login")
        && !next.contains("//")
        && !next.contains('\\');
    if ok { next } else { "/admin/lessons" }
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

fn login_page(
    app: &App,
    status: StatusCode,
    token: &str,
    next: &str,
    user: &str,
    error: &str,
) -> Result<Response, WebError> {
    let mut response = page(
        app,
        None,
        status,
        "login",
        json!({"token": token, "next": next, "user": user, "error": error}),
    )?;
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; Path=/admin/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
        secure(app)
    );
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn form(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    // Keep a token the browser already has, so two open sign-in tabs both work.
    let token = cookie(&headers, LOGIN_COOKIE)
        .filter(|t| {
            t.len() >= 32
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .unwrap_or_else(auth::random_token);
    login_page(&app, StatusCode::OK, &token, safe_next(&q.next), "", "")
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

async fn sign_in(
    State(app): State<App>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let ip = client_ip(connect.as_ref().map(|c| &c.0));
    let now = Utc::now().timestamp();
    let next = safe_next(&f.next).to_owned();
    let token = auth::random_token();
    let limiter = SignInLimiter::global();
    if let Err(wait) = limiter.check(ip, now) {
        let minutes = (wait + 59) / 60;
        let text = format!(
            "Too many failed sign-ins from your address. Wait {minutes} minute(s) and try again."
        );
        let mut r = login_page(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            &token,
            &next,
            &f.username,
            &text,
        )?;
        if let Ok(v) = wait.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if f.token.is_empty() || !auth::same_secret(&f.token, &expected) {
        return login_page(
            &app,
            StatusCode::FORBIDDEN,
            &token,
            &next,
            &f.username,
            "The sign-in form expired (or cookies are off for this site). Please try again.",
        );
    }
    let Some(admin) = auth::check_credentials(&app.db, &f.username, &f.password).await? else {
        limiter.record_failure(ip, now);
        tracing::warn!(%ip, user = %f.username, "failed admin sign-in");
        return login_page(
            &app,
            StatusCode::UNAUTHORIZED,
            &token,
            &next,
            &f.username,
            "Wrong user name or password.",
        );
    };
    limiter.clear(ip);
    // A session id the browser brought along is dropped: the new one is the only one valid.
    if let Some(old) = cookie(&headers, auth::COOKIE) {
        crate::db::admins::delete_session(&app.db, &auth::sha256_hex(&old)).await?;
    }
    let id = auth::start_session(&app.db, admin.id, now).await?;
    tracing::info!(user = %admin.username, %ip, "admin signed in");
    let session = format!(
        "{}={id}; Path=/admin; HttpOnly; SameSite=Lax; Max-Age={}{}",
        auth::COOKIE,
        auth::ABSOLUTE_SECONDS,
        secure(&app)
    );
    let clear_login = format!("{LOGIN_COOKIE}=; Path=/admin/login; Max-Age=0");
    let mut response = see_other(&next);
    for c in [session, clear_login] {
        if let Ok(v) = c.parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

async fn sign_out(
    State(app): State<App>,
    Extension(admin): Extension<Admin>,
) -> Result<Response, WebError> {
    crate::db::admins::delete_session(&app.db, &admin.session_hash).await?;
    let mut response = see_other("/admin/login");
    let clear = format!(
        "{}=; Path=/admin; HttpOnly; SameSite=Lax; Max-Age=0{}",
        auth::COOKIE,
        secure(&app)
    );
    if let Ok(v) = clear.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response.into_response())
}
