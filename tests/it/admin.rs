//! The admin UI and the JSON API over HTTP (the router called directly): sign-in and its
//! cookie, sessions, the sign-in limiter, CSRF on every state-changing form, anonymous
//! requests refused on every route, escaping of subscriber text, the lesson editor with
//! revisions, preview, revert and schedule impact, subscriber actions, import, and the API.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, header};
use chrono::Utc;
use drip::app::App;
use drip::db;
use drip::domain::Timezone;
use drip::subscriptions::{self, NewSubscriber};
use serde_json::Value;
use tower::ServiceExt;

use crate::on_both_databases;
use crate::support::{Backend, TestApp};

mod api;
mod lessons;
mod people;
mod roles;
mod second_factor;

pub const USER: &str = "ann";
pub const PASSWORD: &str = "correct horse battery staple";

/// A response, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }

    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One JSON request to the API with a bearer token.
pub async fn api_call(app: &App, token: &str, method: &str, uri: &str, body: Value) -> Resp {
    send(
        app,
        "127.0.0.1",
        method,
        uri,
        None,
        Some("application/json"),
        Some(token),
        body.to_string().into_bytes(),
    )
    .await
}

/// One request to the app from `ip`, with optional cookie, content type and bearer token.
#[allow(clippy::too_many_arguments)] // a request's parts, each optional, named at each call
pub async fn send(
    app: &App,
    ip: &str,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    content_type: Option<&str>,
    auth: Option<&str>,
    body: Vec<u8>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    if let Some(t) = auth {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = req.body(Body::from(body)).unwrap();
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let response = drip::web::router(app.clone()).oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 32 * 1024 * 1024)
        .await
        .unwrap();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The value of `name="…" value="…"` in a page.
pub fn field(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &page[at + name.len() + 15..];
    Some(
        rest[..rest.find('"')?]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&quot;", "\""),
    )
}

/// The `otpauth://` URI the account page offers to enrol.
pub fn offered_uri(page: &str) -> String {
    let at = page
        .find("id=\"totp-uri\">")
        .unwrap_or_else(|| panic!("no key offered on {page}"))
        + 14;
    page[at..at + page[at..].find('<').unwrap()]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
}

/// `name=value` of a Set-Cookie header.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").to_owned()
}

/// A signed-in browser: its session cookie and the CSRF token of its pages.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    pub async fn get(&self, app: &App, uri: &str) -> Resp {
        send(
            app,
            "127.0.0.1",
            "GET",
            uri,
            Some(&self.cookie),
            None,
            None,
            Vec::new(),
        )
        .await
    }

    /// Posts a form with the session's CSRF token added.
    pub async fn post(&self, app: &App, uri: &str, pairs: &[(&str, &str)]) -> Resp {
        let mut all = pairs.to_vec();
        all.push(("csrf", &self.csrf));
        send(
            app,
            "127.0.0.1",
            "POST",
            uri,
            Some(&self.cookie),
            Some("application/x-www-form-urlencoded"),
            None,
            form(&all),
        )
        .await
    }
}

/// Signs in through the form, as a browser does: GET the form (its token and cookie), POST.
pub async fn sign_in_from(app: &App, ip: &str, user: &str, password: &str) -> Resp {
    let page = send(app, ip, "GET", "/admin/login", None, None, None, Vec::new()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let login_cookie = cookie_pair(
        &page
            .cookies()
            .into_iter()
            .find(|c| c.starts_with("drip_login="))
            .expect("a sign-in cookie"),
    );
    let token = field(&page.body, "token").expect("a token field");
    send(
        app,
        ip,
        "POST",
        "/admin/login",
        Some(&login_cookie),
        Some("application/x-www-form-urlencoded"),
        None,
        form(&[
            ("username", user),
            ("password", password),
            ("token", &token),
            ("next", ""),
        ]),
    )
    .await
}

pub async fn sign_in(app: &App) -> Session {
    let r = sign_in_from(app, "127.0.0.1", USER, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = cookie_pair(
        &r.cookies()
            .into_iter()
            .find(|c| c.starts_with("drip_admin="))
            .expect("a session cookie"),
    );
    let page = send(
        app,
        "127.0.0.1",
        "GET",
        "/admin/lessons",
        Some(&cookie),
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = field(&page.body, "csrf").expect("a csrf field");
    Session { cookie, csrf }
}

/// The signed-in session a sign-in response set, with the CSRF token of its pages (from the
/// account page, which every role may open).
pub async fn session_of(app: &App, r: &Resp) -> Session {
    let cookie = cookie_pair(
        &r.cookies()
            .into_iter()
            .find(|c| c.starts_with("drip_admin="))
            .unwrap_or_else(|| panic!("a session cookie in {:?}", r.cookies())),
    );
    let page = send(
        app,
        "127.0.0.1",
        "GET",
        "/admin/account/totp",
        Some(&cookie),
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = field(&page.body, "csrf").expect("a csrf field");
    Session { cookie, csrf }
}

/// Another admin, with `role`, an address and the test password.
pub async fn add_admin_as(app: &App, user: &str, role: drip::domain::Role) {
    drip::auth::add_admin_with_role(
        &app.db,
        user,
        &format!("{user}@example.org"),
        PASSWORD,
        role,
        Utc::now().timestamp(),
    )
    .await
    .unwrap();
}

/// An app with the shipped course loaded and an admin with an address.
pub async fn admin_app(backend: Backend) -> TestApp {
    // A failing page logs its cause; show it in the test's output.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("drip=warn")
        .try_init();
    let t = TestApp::with_file_outbox(backend).await;
    add_test_admin(&t.app).await;
    t
}

/// The course loaded and the test admin (USER, PASSWORD) created.
pub async fn add_test_admin(app: &App) {
    app.course(None).await.unwrap();
    drip::auth::add_admin(
        &app.db,
        USER,
        "ann@example.org",
        PASSWORD,
        Utc::now().timestamp(),
    )
    .await
    .unwrap();
}

async fn enrolled(t: &TestApp, email: &str, name: &str) -> db::subscribers::SubscriberRow {
    let new = NewSubscriber::parse(email, name, "Europe/Paris", Timezone::UTC).unwrap();
    subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &new,
        true,
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    db::subscribers::by_email(&t.app.db, email)
        .await
        .unwrap()
        .unwrap()
}

async fn lesson(t: &TestApp, slug: &str) -> db::lessons::Lesson {
    let course = t.app.course(None).await.unwrap();
    db::lessons::by_slug(&t.app.db, course.id, slug)
        .await
        .unwrap()
        .unwrap()
}

/// Every admin page and every state-changing route, with a body that would be accepted.
const PAGES: &[&str] = &[
    "/admin",
    "/admin/lessons",
    "/admin/lessons/new",
    "/admin/lessons/before-we-begin",
    "/admin/lessons/before-we-begin/revisions",
    "/admin/subscribers",
    "/admin/subscribers/1",
    "/admin/subscribers/1/export",
    "/admin/subscribers/import",
    "/admin/subscribers/export.csv",
    "/admin/replies",
    "/admin/replies/1/raw",
    "/admin/stats",
];
const POSTS: &[(&str, &[(&str, &str)])] = &[
    ("/admin/logout", &[]),
    (
        "/admin/lessons/new",
        &[
            ("slug", "extra"),
            ("title", "T"),
            ("subject", "S"),
            ("phase", "practice"),
            ("after_days", "1"),
            ("prompt", "P?"),
            ("body", "Body"),
        ],
    ),
    (
        "/admin/lessons/before-we-begin",
        &[
            ("title", "T"),
            ("subject", "Changed"),
            ("phase", "honesty"),
            ("after_days", "0"),
            ("send_window", "immediate"),
            ("prompt", "P?"),
            ("body", "Body"),
            ("base_revision", "1"),
        ],
    ),
    (
        "/admin/lessons/before-we-begin/preview",
        &[
            ("title", "T"),
            ("subject", "S"),
            ("phase", "honesty"),
            ("after_days", "0"),
            ("prompt", "P?"),
            ("body", "Body"),
        ],
    ),
    (
        "/admin/lessons/before-we-begin/move",
        &[("direction", "down"), ("confirmed", "1")],
    ),
    (
        "/admin/lessons/before-we-begin/status",
        &[("status", "draft")],
    ),
    ("/admin/lessons/before-we-begin/test", &[]),
    (
        "/admin/lessons/before-we-begin/revert",
        &[("revision", "1")],
    ),
    ("/admin/subscribers/1/pause", &[]),
    ("/admin/subscribers/1/resume", &[]),
    ("/admin/subscribers/1/move", &[("lesson", "a-clean-slate")]),
    ("/admin/subscribers/1/unsubscribe", &[]),
    ("/admin/subscribers/1/erase", &[("confirm", "erase")]),
    ("/admin/replies/1/read", &[("value", "1")]),
    ("/admin/replies/1/flag", &[("value", "1")]),
];
const API: &[(&str, &str)] = &[
    ("GET", "/api/v1/subscribers"),
    ("POST", "/api/v1/subscribers"),
    ("GET", "/api/v1/subscribers/1"),
    ("DELETE", "/api/v1/subscribers/1"),
    ("POST", "/api/v1/subscribers/1/pause"),
    ("POST", "/api/v1/subscribers/1/resume"),
    ("GET", "/api/v1/subscribers/1/export"),
    ("GET", "/api/v1/lessons"),
    ("GET", "/api/v1/lessons/before-we-begin"),
    ("PUT", "/api/v1/lessons/before-we-begin"),
    ("PATCH", "/api/v1/lessons/before-we-begin"),
    ("GET", "/api/v1/replies"),
    ("GET", "/api/v1/no-such-route"),
];

on_both_databases!(
    every_admin_page_and_api_route_refuses_anonymous_requests,
    a_post_without_the_right_csrf_token_is_refused_and_changes_nothing,
    subscriber_names_and_reply_texts_are_escaped_and_reply_views_are_logged,
    sign_in_sets_a_fresh_http_only_session_cookie_that_expires,
    repeated_failed_sign_ins_from_one_address_are_refused_for_a_while,
);

async fn every_admin_page_and_api_route_refuses_anonymous_requests(backend: Backend) {
    let t = admin_app(backend).await;
    let s = enrolled(&t, "bob@example.com", "Bob").await;
    assert_eq!(s.id, 1);
    for uri in PAGES {
        let r = send(
            &t.app,
            "127.0.0.1",
            "GET",
            uri,
            None,
            None,
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, 302, "GET {uri}: {}", r.body);
        assert!(
            r.location().starts_with("/admin/login"),
            "GET {uri} → {}",
            r.location()
        );
        // A made-up session cookie is no better than none.
        let r = send(
            &t.app,
            "127.0.0.1",
            "GET",
            uri,
            Some("drip_admin=forged"),
            None,
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, 302, "GET {uri} with a forged cookie");
    }
    for (uri, pairs) in POSTS {
        let r = send(
            &t.app,
            "127.0.0.1",
            "POST",
            uri,
            None,
            Some("application/x-www-form-urlencoded"),
            None,
            form(pairs),
        )
        .await;
        assert_eq!(r.status, 302, "POST {uri}: {}", r.body);
        assert_eq!(r.location(), "/admin/login", "POST {uri}");
    }
    let r = send(
        &t.app,
        "127.0.0.1",
        "POST",
        "/admin/subscribers/import",
        None,
        Some("multipart/form-data; boundary=x"),
        None,
        b"--x--\r\n".to_vec(),
    )
    .await;
    assert_eq!(r.status, 302);
    for (method, uri) in API {
        for token in [None, Some("drip_not-a-token")] {
            let r = send(
                &t.app,
                "127.0.0.1",
                method,
                uri,
                None,
                Some("application/json"),
                token,
                b"{}".to_vec(),
            )
            .await;
            assert_eq!(r.status, 401, "{method} {uri}: {}", r.body);
            assert_eq!(r.json()["field"], "authorization", "{method} {uri}");
            assert!(r.json()["error"].as_str().unwrap().contains("bearer token"));
        }
    }
    // Nothing changed on the way.
    assert_eq!(lesson(&t, "before-we-begin").await.revision, 1);
    assert_eq!(
        db::subscribers::by_id(&t.app.db, 1)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "active"
    );
}

async fn a_post_without_the_right_csrf_token_is_refused_and_changes_nothing(backend: Backend) {
    let t = admin_app(backend).await;
    enrolled(&t, "bob@example.com", "Bob").await;
    let session = sign_in(&t.app).await;
    for (uri, pairs) in POSTS {
        let missing = send(
            &t.app,
            "127.0.0.1",
            "POST",
            uri,
            Some(&session.cookie),
            Some("application/x-www-form-urlencoded"),
            None,
            form(pairs),
        )
        .await;
        assert_eq!(
            missing.status, 403,
            "POST {uri} without a token: {}",
            missing.body
        );
        let mut wrong = pairs.to_vec();
        wrong.push(("csrf", "not-the-token"));
        let r = send(
            &t.app,
            "127.0.0.1",
            "POST",
            uri,
            Some(&session.cookie),
            Some("application/x-www-form-urlencoded"),
            None,
            form(&wrong),
        )
        .await;
        assert_eq!(r.status, 403, "POST {uri} with a wrong token");
        // Another content type does not get around the check.
        let r = send(
            &t.app,
            "127.0.0.1",
            "POST",
            uri,
            Some(&session.cookie),
            Some("application/json"),
            None,
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(r.status, 403, "POST {uri} as JSON");
    }
    let upload = |csrf: &str| {
        format!(
            "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nemail\r\nnew@example.com\r\n--x--\r\n"
        )
    };
    for csrf in ["", "wrong"] {
        let r = send(
            &t.app,
            "127.0.0.1",
            "POST",
            "/admin/subscribers/import",
            Some(&session.cookie),
            Some("multipart/form-data; boundary=x"),
            None,
            upload(csrf).into_bytes(),
        )
        .await;
        assert_eq!(r.status, 403, "import with csrf {csrf:?}");
    }
    assert!(
        db::subscribers::by_email(&t.app.db, "new@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let l = lesson(&t, "before-we-begin").await;
    assert_eq!(
        (l.revision, l.position, l.status.as_str()),
        (1, 1, "published")
    );
    assert_eq!(
        db::subscribers::by_id(&t.app.db, 1)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "active"
    );
    // The session still works: the logout above was refused too.
    assert_eq!(session.get(&t.app, "/admin/stats").await.status, 200);
}

async fn subscriber_names_and_reply_texts_are_escaped_and_reply_views_are_logged(backend: Backend) {
    let t = admin_app(backend).await;
    let s = enrolled(&t, "eve@example.com", "<script>alert('name')</script> Eve").await;
    let first = lesson(&t, "before-we-begin").await;
    let text = t
        .app
        .vault
        .seal(b"<script>alert('reply')</script><img src=x onerror=alert(1)>");
    let raw = t
        .app
        .vault
        .seal(b"Subject: hi\r\n\r\n<script>alert('raw')</script>");
    let mut tx = t.app.db.begin_write().await.unwrap();
    let reply = db::replies::insert(
        &mut tx,
        &db::replies::NewReply {
            message_id: Some("<r1@example.com>"),
            subscriber_id: Some(s.id),
            delivery_id: None,
            lesson_id: Some(first.id),
            kind: "reply",
            matched_by: Some("sender"),
            command: None,
            from_addr: "eve@example.com",
            subject: "<b>Re</b>",
            text: &text,
            raw: Some(&raw),
            flagged: true,
            flag_reason: "<i>distress</i>",
            received_at: Utc::now().timestamp(),
            in_answer_to: None,
        },
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    let session = sign_in(&t.app).await;
    for uri in [
        "/admin/subscribers",
        "/admin/subscribers?q=eve",
        &format!("/admin/subscribers/{}", s.id),
        "/admin/replies",
    ] {
        let r = session.get(&t.app, uri).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.body);
        assert!(
            !r.body.contains("<script>alert"),
            "{uri} shows a script tag:\n{}",
            r.body
        );
        assert!(!r.body.contains("<img src=x"), "{uri}");
        assert!(
            r.body.contains("&lt;script&gt;alert("),
            "{uri} lost the text:\n{}",
            r.body
        );
        let csp = r
            .headers
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
    }
    let r = session
        .get(&t.app, &format!("/admin/replies/{reply}/raw"))
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        r.body.contains("<script>alert('raw')</script>"),
        "the raw message, as text: {}",
        r.body
    );
    let views: Vec<_> = db::events::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.as_str() == "reply_viewed")
        .collect();
    assert_eq!(views.len(), 3, "subscriber page, inbox and raw: {views:?}");
    assert!(
        views
            .iter()
            .all(|e| e.actor == USER && e.detail.contains(&format!("\"reply\":{reply}"))),
        "{views:?}"
    );
}

async fn sign_in_sets_a_fresh_http_only_session_cookie_that_expires(backend: Backend) {
    let t = admin_app(backend).await;
    let r = sign_in_from(&t.app, "127.0.0.1", USER, PASSWORD).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/admin/lessons");
    let set = r
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("drip_admin="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/admin"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let first = cookie_pair(&set);
    let again = sign_in_from(&t.app, "127.0.0.1", USER, PASSWORD).await;
    let second = cookie_pair(
        &again
            .cookies()
            .into_iter()
            .find(|c| c.starts_with("drip_admin="))
            .unwrap(),
    );
    assert_ne!(first, second, "a new session id at each sign-in");
    // The database keeps only hashes of session ids.
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM admin_sessions WHERE id_hash = $1")
        .bind(first.trim_start_matches("drip_admin="))
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
    assert_eq!(n, 0);
    let wrong = sign_in_from(&t.app, "127.0.0.1", USER, "wrong password!").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong user name or password"));
    // Sign-out (with the page's token) ends the session.
    let page = send(
        &t.app,
        "127.0.0.1",
        "GET",
        "/admin/lessons",
        Some(&second),
        None,
        None,
        Vec::new(),
    )
    .await;
    let csrf = field(&page.body, "csrf").unwrap();
    let out = send(
        &t.app,
        "127.0.0.1",
        "POST",
        "/admin/logout",
        Some(&second),
        Some("application/x-www-form-urlencoded"),
        None,
        form(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(out.status, 303);
    assert!(
        out.cookies()
            .iter()
            .any(|c| c.starts_with("drip_admin=;") && c.contains("Max-Age=0"))
    );
    assert_eq!(
        send(
            &t.app,
            "127.0.0.1",
            "GET",
            "/admin/lessons",
            Some(&second),
            None,
            None,
            Vec::new()
        )
        .await
        .status,
        302
    );
    // Idle and absolute expiry.
    let now = Utc::now().timestamp();
    for (created, seen) in [
        (now - 3600, now - drip::auth::IDLE_SECONDS - 1),
        (now - drip::auth::ABSOLUTE_SECONDS - 1, now),
    ] {
        let s = sign_in(&t.app).await;
        sqlx::query("UPDATE admin_sessions SET created_at = $1, last_seen_at = $2")
            .bind(created)
            .bind(seen)
            .execute(t.app.db.pool())
            .await
            .unwrap();
        assert_eq!(
            s.get(&t.app, "/admin/lessons").await.status,
            302,
            "created {created}, seen {seen}"
        );
    }
    // A session past its absolute lifetime is deleted at the next sign-in, even if its
    // cookie never comes back.
    sign_in(&t.app).await;
    sqlx::query("UPDATE admin_sessions SET created_at = $1")
        .bind(now - drip::auth::ABSOLUTE_SECONDS - 1)
        .execute(t.app.db.pool())
        .await
        .unwrap();
    sign_in(&t.app).await;
    let (old,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM admin_sessions WHERE created_at < $1")
            .bind(now - drip::auth::ABSOLUTE_SECONDS)
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!(old, 0, "the expired session was swept");
    // On https the cookie is Secure.
    let https = TestApp::build(backend, None, |c| {
        c.server.base_url = "https://drip.example.org".into()
    })
    .await;
    https.app.course(None).await.unwrap();
    drip::auth::add_admin(&https.app.db, USER, "", PASSWORD, now)
        .await
        .unwrap();
    let r = sign_in_from(&https.app, "127.0.0.1", USER, PASSWORD).await;
    assert!(
        r.cookies()
            .iter()
            .any(|c| c.starts_with("drip_admin=") && c.contains("; Secure")),
        "{:?}",
        r.cookies()
    );
}

async fn repeated_failed_sign_ins_from_one_address_are_refused_for_a_while(backend: Backend) {
    let t = admin_app(backend).await;
    // An address of its own, so other tests signing in from 127.0.0.1 are not counted.
    let ip = match backend {
        Backend::Sqlite => "192.0.2.10",
        Backend::Postgres => "192.0.2.11",
    };
    for i in 0..drip::auth::MAX_FAILURES {
        let r = sign_in_from(&t.app, ip, USER, "not the password").await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = sign_in_from(&t.app, ip, USER, PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);
    assert!(r.headers.get(header::RETRY_AFTER).is_some());
    assert!(r.cookies().iter().all(|c| !c.starts_with("drip_admin=")));
    // Another address is not held back.
    let other = if ip.ends_with("10") {
        "192.0.2.20"
    } else {
        "192.0.2.21"
    };
    assert_eq!(
        sign_in_from(&t.app, other, USER, PASSWORD).await.status,
        303
    );
}

/// The `drip` binary with the shipped configuration, on the test app's database and folder.
fn drip_cli(t: &TestApp, args: &[&str], stdin: &str) -> std::process::Output {
    let repo = crate::support::repo;
    let config = repo("config.toml");
    let dir = t.dir.path();
    let (lessons, templates) = (repo("lessons"), repo("templates"));
    let outbox = dir.join("outbox");
    let env = [
        ("DRIP_DATABASE__URL", t.db.url.as_str()),
        ("DRIP_COURSE__LESSONS_DIR", lessons.to_str().unwrap()),
        ("DRIP_COURSE__TEMPLATES_DIR", templates.to_str().unwrap()),
        ("DRIP_MAIL__OUTBOX_DIR", outbox.to_str().unwrap()),
    ];
    let args: Vec<&str> = ["--config", config.to_str().unwrap()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    crate::cli::drip_with_input(dir, &args, &env, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_admin_from_the_cli_signs_in_edits_lesson_one_and_the_next_mail_has_it() {
    // The CLI and the served app share one SQLite database.
    let t = TestApp::build(Backend::Sqlite, None, |c| {
        c.server.base_url = "http://127.0.0.1:8080".into()
    })
    .await;
    let out = drip_cli(
        &t,
        &["admin", "add", "zoe", "--email", "zoe@example.org"],
        "too short\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password: must be at least 12 characters"),
        "{out:?}"
    );
    let out = drip_cli(
        &t,
        &["admin", "add", "zoe", "--email", "zoe@example.org"],
        "a long enough passphrase\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin zoe created"));
    let out = drip_cli(&t, &["admin", "add", "zoe"], "a long enough passphrase\n");
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{out:?}"
    );
    let out = drip_cli(&t, &["admin", "token", "zoe"], "");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && token.starts_with("drip_") && token.len() > 40,
        "{out:?}"
    );

    // The same database, served.
    let app = t.app.clone();
    app.course(None).await.unwrap();
    let r = send(
        &app,
        "127.0.0.1",
        "GET",
        "/api/v1/lessons",
        None,
        None,
        Some(&token),
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200, "the CLI's token works: {}", r.body);
    let r = sign_in_from(&app, "127.0.0.1", "zoe", "a long enough passphrase").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = cookie_pair(
        &r.cookies()
            .into_iter()
            .find(|c| c.starts_with("drip_admin="))
            .unwrap(),
    );
    let page = send(
        &app,
        "127.0.0.1",
        "GET",
        "/admin/lessons/before-we-begin",
        Some(&cookie),
        None,
        None,
        Vec::new(),
    )
    .await;
    let mut pairs: Vec<(String, String)> = ["title", "send_window", "base_revision", "csrf"]
        .iter()
        .map(|n| (n.to_string(), field(&page.body, n).unwrap_or_default()))
        .collect();
    let course = app.course(None).await.unwrap();
    let first = db::lessons::by_slug(&app.db, course.id, "before-we-begin")
        .await
        .unwrap()
        .unwrap();
    pairs.push(("prompt".into(), first.content.prompt.clone()));
    pairs.push((
        "body".into(),
        format!("{}\nA line added by zoe.\n", first.content.body),
    ));
    pairs.push(("phase".into(), first.content.phase.as_str().into()));
    pairs.push(("after_days".into(), first.content.after_days.to_string()));
    pairs.push(("subject".into(), "Lesson 1 · Edited by zoe".into()));
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = send(
        &app,
        "127.0.0.1",
        "POST",
        "/admin/lessons/before-we-begin",
        Some(&cookie),
        Some("application/x-www-form-urlencoded"),
        None,
        form(&refs),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let new = NewSubscriber::parse("reader@example.com", "Reader", "UTC", Timezone::UTC).unwrap();
    subscriptions::add(
        &app,
        &crate::support::shipped(&app).await,
        &new,
        true,
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    drip::outbox::tick(&app, Utc::now()).await.unwrap();
    let mail = std::fs::read_dir(t.dir.path().join("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .find(|m| m.contains("X-Drip-Lesson: before-we-begin"))
        .expect("lesson 1 went out");
    assert!(
        mail.contains("Edited by zoe") || mail.contains("Edited_by_zoe"),
        "{mail}"
    );
    assert!(mail.contains("A line added by zoe."), "{mail}");
}
