//! Signing in and out. A fresh session id at every sign-in (a cookie planted before it is
//! worth nothing after), the cookie scoped to /admin, HttpOnly and SameSite=Lax, Secure on
//! https. The sign-in form has its own CSRF defence (a double-submit cookie), since no
//! session exists yet; repeated failures from one client address (`web::client`: behind
//! `[server] trusted_proxies`, the address the proxy saw) are refused for a while.
//!
//! An admin with a second factor signs in in two steps: the right password gives a session
//! that opens nothing but the code form (for five minutes), and only a current TOTP code or
//! an unused recovery code turns it into a signed-in session, with a new id. Wrong codes
//! count against the address like wrong passwords, and against the admin from any address.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Form, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{cookie, page, see_other};
use crate::app::App;
use crate::auth::second_factor::{self, Checked};
use crate::auth::{self, Admin, FailureLimiter, SignInLimiter};
use crate::domain::{Area, SessionStage};
use crate::web::WebError;
use crate::web::access::{self, Routes};
use crate::web::client::ClientAddr;

const LOGIN_COOKIE: &str = "drip_login";
/// The second step of signing in.
pub(crate) const CODE_PATH: &str = "/admin/login/code";

pub fn router() -> Router<App> {
    Router::new()
        .route("/admin/login", get(form).post(sign_in))
        .route(CODE_PATH, get(code_form).post(enter_code))
}

pub(crate) fn protected_router() -> Routes {
    const ACCOUNT: &[Area] = &[Area::Account];
    Routes::new()
        .get("/admin", ACCOUNT, landing)
        .get("/admin/", ACCOUNT, landing)
        .post("/admin/logout", ACCOUNT, sign_out)
}

/// The first section the admin's role opens.
async fn landing(Extension(admin): Extension<Admin>) -> Response {
    see_other(access::home(admin.role))
}

/// What the sign-in limiter counts failures by: the client address (`web::client`, the
/// same one the sign-up limiter uses), an IPv6 client by its /64.
fn limiter_key(client: IpAddr) -> IpAddr {
    crate::domain::net::limit_key(client)
}

fn secure(app: &App) -> &'static str {
    if app.config.server.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// Only a path inside the admin UI may be a destination after sign-in; empty means the
/// admin's own first section.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/admin")
        && !next.starts_with("/admin/login")
        && !next.contains("//")
        && !next.contains('\\');
    if ok { next } else { "" }
}

fn destination(next: &str, role: crate::domain::Role) -> &str {
    match safe_next(next) {
        "" => access::home(role),
        next => next,
    }
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
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let ip = limiter_key(client);
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
        tracing::warn!(%client, user = %f.username, "failed admin sign-in");
        return login_page(
            &app,
            StatusCode::UNAUTHORIZED,
            &token,
            &next,
            &f.username,
            "Wrong user name or password.",
        );
    };
    // A session id the browser brought along is dropped: the new one is the only one valid.
    if let Some(old) = cookie(&headers, auth::COOKIE) {
        crate::db::admins::delete_session(&app.db, &auth::sha256_hex(&old)).await?;
    }
    let clear_login = format!("{LOGIN_COOKIE}=; Path=/admin/login; Max-Age=0");
    let mut response = if admin.totp {
        // The address's failures are forgiven only once the code is right too.
        let id = auth::start_session(
            &app.db,
            admin.id,
            admin.session_generation,
            SessionStage::Code,
            now,
        )
        .await?;
        tracing::info!(user = %admin.username, %client, "admin password accepted; code asked");
        let mut r = see_other(&format!("{CODE_PATH}?next={}", super::encode(&next)));
        set_cookie(&mut r, &session_cookie(&app, &id, auth::CODE_SECONDS));
        r
    } else {
        limiter.clear(ip);
        let id = auth::start_session(
            &app.db,
            admin.id,
            admin.session_generation,
            SessionStage::Full,
            now,
        )
        .await?;
        tracing::info!(user = %admin.username, %client, "admin signed in");
        let mut r = see_other(destination(&next, admin.role));
        set_cookie(&mut r, &session_cookie(&app, &id, auth::ABSOLUTE_SECONDS));
        r
    };
    set_cookie(&mut response, &clear_login);
    Ok(response)
}

/// The session cookie for `id`, living `max_age` seconds.
pub(crate) fn session_cookie(app: &App, id: &str, max_age: i64) -> String {
    format!(
        "{}={id}; Path=/admin; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        auth::COOKIE,
        secure(app)
    )
}

pub(crate) fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The session between the password and the code, if the browser has a live one.
async fn code_session(app: &App, headers: &HeaderMap) -> Result<Option<Admin>, WebError> {
    let Some(id) = cookie(headers, auth::COOKIE) else {
        return Ok(None);
    };
    let admin = auth::session_admin(&app.db, &id, Utc::now().timestamp()).await?;
    Ok(admin.filter(|a| a.stage == SessionStage::Code))
}

fn code_page(
    app: &App,
    status: StatusCode,
    admin: &Admin,
    next: &str,
    error: &str,
) -> Result<Response, WebError> {
    page(
        app,
        None,
        status,
        "login_code",
        json!({"csrf": admin.csrf, "user": admin.username, "next": next, "error": error}),
    )
}

async fn code_form(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    match code_session(&app, &headers).await? {
        Some(admin) => code_page(&app, StatusCode::OK, &admin, safe_next(&q.next), ""),
        // Expired, or never began: the password comes first.
        None => Ok(see_other("/admin/login")),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

fn too_many(
    app: &App,
    admin: &Admin,
    next: &str,
    wait: i64,
    whose: &str,
) -> Result<Response, WebError> {
    let minutes = (wait + 59) / 60;
    let text = format!("Too many wrong codes {whose}. Wait {minutes} minute(s) and try again.");
    let mut r = code_page(app, StatusCode::TOO_MANY_REQUESTS, admin, next, &text)?;
    if let Ok(v) = wait.to_string().parse() {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Ok(r)
}

async fn enter_code(
    State(app): State<App>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, WebError> {
    let ip = limiter_key(client);
    let now = Utc::now().timestamp();
    let next = safe_next(&f.next).to_owned();
    let Some(admin) = code_session(&app, &headers).await? else {
        return Ok(see_other("/admin/login"));
    };
    if f.csrf.is_empty() || !auth::same_secret(&f.csrf, &admin.csrf) {
        return Ok(super::forbidden());
    }
    let (by_ip, by_admin) = (SignInLimiter::global(), FailureLimiter::codes());
    if let Err(wait) = by_ip.check(ip, now) {
        return too_many(&app, &admin, &next, wait, "from your address");
    }
    if let Err(wait) = by_admin.check(admin.id, now) {
        return too_many(&app, &admin, &next, wait, "for this account");
    }
    let checked = second_factor::check(&app.db, &app.vault, admin.id, &f.code, now).await?;
    if checked == Checked::Refused {
        by_ip.record_failure(ip, now);
        by_admin.record_failure(admin.id, now);
        tracing::warn!(%client, user = %admin.username, "wrong second-factor code");
        return code_page(
            &app,
            StatusCode::UNAUTHORIZED,
            &admin,
            &next,
            "That code is not right, or it was used already. Type the six digits your app shows now, or one of your recovery codes.",
        );
    }
    by_ip.clear(ip);
    by_admin.clear(admin.id);
    crate::db::admins::delete_session(&app.db, &admin.session_hash).await?;
    let id =
        auth::start_session(&app.db, admin.id, admin.generation, SessionStage::Full, now).await?;
    tracing::info!(user = %admin.username, %client, "admin signed in with a second factor");
    // After a recovery code, the account page says how many are left and offers a new key.
    let to = match checked {
        Checked::Recovery { .. } => format!("{}?recovery=1", super::account::TOTP_PATH),
        _ => destination(&next, admin.role).to_owned(),
    };
    let mut response = see_other(&to);
    set_cookie(
        &mut response,
        &session_cookie(&app, &id, auth::ABSOLUTE_SECONDS),
    );
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
    set_cookie(&mut response, &clear);
    Ok(response)
}
