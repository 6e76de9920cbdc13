//! Roles, route by route: every signed-in admin page and every API route, as the router's own
//! table lists them, tried by an owner, an editor and a reader. A route a role may use
//! answers as it does for real (200, 201 or 303); any other answers 403 and changes nothing.
//! A route added to the router but missing here, or listed here but gone from the router,
//! fails the test.

use std::collections::BTreeSet;

use drip::domain::Role;
use serde_json::{Value, json};

use super::*;
use crate::on_both_databases;
use crate::support::Backend;

on_both_databases!(every_route_answers_each_role_as_the_role_table_says);

/// The text of the reply the test stores: an editor must never be shown it.
const SECRET_ANSWER: &str = "I never told them about the second account.";

#[derive(Clone)]
enum Body {
    None,
    Form(Vec<(&'static str, String)>),
    Json(Value),
    /// The CSV import's multipart form, with the session's CSRF token.
    Upload,
}

struct Case {
    method: &'static str,
    /// The route as the router names it.
    route: &'static str,
    uri: String,
    body: Body,
    /// Who may: o(wner), e(ditor), r(eader).
    who: &'static str,
    /// The status when allowed.
    ok: u16,
}

fn case(method: &'static str, route: &'static str, uri: &str, who: &'static str, ok: u16) -> Case {
    Case {
        method,
        route,
        uri: uri.to_owned(),
        body: Body::None,
        who,
        ok,
    }
}

impl Case {
    fn form(mut self, pairs: &[(&'static str, &str)]) -> Case {
        self.body = Body::Form(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect());
        self
    }

    fn with(mut self, body: Body) -> Case {
        self.body = body;
        self
    }

    fn json(mut self, v: Value) -> Case {
        self.body = Body::Json(v);
        self
    }

    fn allowed(&self, role: Role) -> bool {
        let letter = match role {
            Role::Owner => 'o',
            Role::Editor => 'e',
            Role::Reader => 'r',
        };
        self.who.contains(letter)
    }
}

/// Ids of what the cases act on.
struct Fixture {
    /// Paused, resumed, moved, unsubscribed through the pages.
    page_subscriber: i64,
    /// Paused and resumed through the API.
    api_subscriber: i64,
    /// Erased through the API.
    doomed: i64,
    reply: i64,
    /// Stopped through the API.
    api_enrollment: i64,
    /// Removed through the page.
    webhook: i64,
}

/// The table, in the order the requests are made (logging out last).
fn cases(f: &Fixture, lesson: &db::lessons::Lesson) -> Vec<Case> {
    let slug = "before-we-begin";
    let l = |rest: &str| format!("/admin/lessons/{slug}{rest}");
    let s = |rest: &str| format!("/admin/subscribers/{}{rest}", f.page_subscriber);
    let api_s = |id: i64, rest: &str| format!("/api/v1/subscribers/{id}{rest}");
    let r = |rest: &str| format!("/admin/replies/{}{rest}", f.reply);
    let c = &lesson.content;
    let edit = vec![
        ("title", c.title.clone()),
        ("subject", "Lesson 1 · Saved in the role test".to_owned()),
        ("phase", c.phase.as_str().to_owned()),
        ("after_days", c.after_days.to_string()),
        (
            "send_window",
            c.send_window.as_ref().map_or("", |w| w.as_str()).to_owned(),
        ),
        ("prompt", c.prompt.clone()),
        ("body", c.body.clone()),
        ("base_revision", lesson.revision.to_string()),
    ];
    let new_lesson: &[(&'static str, &str)] = &[
        ("slug", "extra"),
        ("title", "An extra lesson"),
        ("subject", "Extra"),
        ("phase", "follow-up"),
        ("after_days", "1"),
        ("prompt", "What now?"),
        ("body", "Body"),
    ];
    // One row per route: method, route, the request's path, who may, the status then.
    #[rustfmt::skip]
    let rows = vec![
        case("GET", "/admin", "/admin", "oer", 303),
        case("GET", "/admin/", "/admin/", "oer", 303),
        case("GET", "/admin/account/totp", "/admin/account/totp", "oer", 200),
        // Courses: everyone sees the list and picks the course their pages show.
        case("GET", "/admin/courses", "/admin/courses", "oer", 200),
        // A form missing its phases: refused, nothing written (the folder is not made).
        case("POST", "/admin/courses", "/admin/courses", "oe", 422).form(&[("title", "A course with no phases")]),
        case("GET", "/admin/broadcasts", "/admin/broadcasts", "oe", 200),
        // Forms with no subject: refused, nothing made; a broadcast that does not exist.
        case("POST", "/admin/broadcasts", "/admin/broadcasts", "oe", 422).form(&[("body", "Hello")]),
        case("POST", "/admin/broadcasts/preview", "/admin/broadcasts/preview", "oe", 422).form(&[("body", "Hello")]),
        case("GET", "/admin/broadcasts/{id}", "/admin/broadcasts/999999", "oe", 404),
        case("POST", "/admin/broadcasts/{id}/cancel", "/admin/broadcasts/999999/cancel", "oe", 404),
        case("POST", "/admin/broadcasts/{id}/test", "/admin/broadcasts/999999/test", "oe", 404),
        case("POST", "/admin/courses/switch", "/admin/courses/switch", "oer", 303)
            .form(&[("course", "rebuilding-trust")]),
        // Lessons: owners and editors.
        case("GET", "/admin/lessons", "/admin/lessons", "oe", 200),
        case("GET", "/admin/lessons/new", "/admin/lessons/new", "oe", 200),
        case("POST", "/admin/lessons/new", "/admin/lessons/new", "oe", 303).form(new_lesson),
        case("GET", "/admin/lessons/{slug}", &l(""), "oe", 200),
        case("POST", "/admin/lessons/{slug}", &l(""), "oe", 303).with(Body::Form(edit.clone())),
        case("POST", "/admin/lessons/{slug}/preview", &l("/preview"), "oe", 200).with(Body::Form(edit)),
        case("GET", "/admin/lessons/{slug}/revisions", &l("/revisions"), "oe", 200),
        case("POST", "/admin/lessons/{slug}/revert", &l("/revert"), "oe", 303).form(&[("revision", "1")]),
        case("POST", "/admin/lessons/{slug}/test", &l("/test"), "oe", 303),
        case("POST", "/admin/lessons/{slug}/move", &l("/move"), "oe", 303)
            .form(&[("direction", "down"), ("confirmed", "1")]),
        case("POST", "/admin/lessons/{slug}/status", "/admin/lessons/extra/status", "oe", 303)
            .form(&[("status", "draft"), ("confirmed", "1")]),
        // Statistics: owners and editors.
        case("GET", "/admin/stats", "/admin/stats", "oe", 200),
        case("POST", "/admin/stats/smtp-check", "/admin/stats/smtp-check", "oe", 303),
        // Subscribers and replies: owners, and readers to look.
        case("GET", "/admin/subscribers", "/admin/subscribers", "or", 200),
        case("GET", "/admin/subscribers/{id}", &s(""), "or", 200),
        case("GET", "/admin/subscribers/{id}/export", &s("/export"), "or", 200),
        case("GET", "/admin/subscribers/export.csv", "/admin/subscribers/export.csv", "or", 200),
        case("GET", "/admin/subscribers/import", "/admin/subscribers/import", "or", 200),
        case("POST", "/admin/subscribers/import", "/admin/subscribers/import", "o", 200).with(Body::Upload),
        case("POST", "/admin/subscribers/{id}/{action}", &s("/pause"), "o", 303),
        case("GET", "/admin/replies", "/admin/replies", "or", 200),
        case("GET", "/admin/replies/{id}", &r(""), "or", 200),
        case("GET", "/admin/replies/{id}/raw", &r("/raw"), "or", 200),
        // Writing back to a reader: owners and readers, never editors.
        case("POST", "/admin/replies/{id}/answer", &r("/answer"), "or", 303).form(&[("text", "Thank you for this.")]),
        case("POST", "/admin/replies/{id}/read", &r("/read"), "o", 303).form(&[("value", "1")]),
        case("POST", "/admin/replies/{id}/flag", &r("/flag"), "o", 303).form(&[("value", "1")]),
        // Webhooks: owners only (where events go, and the secrets that sign them).
        case("GET", "/admin/webhooks", "/admin/webhooks", "o", 200),
        case("POST", "/admin/webhooks", "/admin/webhooks", "o", 200)
            .form(&[("url", "http://127.0.0.1:9/role-test"), ("events", "lesson.sent")]),
        case("POST", "/admin/webhooks/{id}/remove", &format!("/admin/webhooks/{}/remove", f.webhook), "o", 303),
        // The API, with the token's admin's role.
        case("GET", "/api/v1/courses", "/api/v1/courses", "oer", 200),
        case("GET", "/api/v1/courses/{slug}", "/api/v1/courses/rebuilding-trust", "oer", 200),
        case("GET", "/api/v1/broadcasts", "/api/v1/broadcasts", "oe", 200),
        case("POST", "/api/v1/broadcasts", "/api/v1/broadcasts", "oe", 422).json(json!({"subject": "", "body": "Hello"})),
        case("GET", "/api/v1/broadcasts/{id}", "/api/v1/broadcasts/999999", "oe", 404),
        case("POST", "/api/v1/broadcasts/{id}/cancel", "/api/v1/broadcasts/999999/cancel", "oe", 404),
        case("POST", "/api/v1/courses", "/api/v1/courses", "oe", 422).json(json!({"slug": "no-phases", "title": "No phases", "phases": []})),
        case("GET", "/api/v1/lessons", "/api/v1/lessons", "oe", 200),
        case("GET", "/api/v1/lessons/{slug}", "/api/v1/lessons/before-we-begin", "oe", 200),
        case("PUT", "/api/v1/lessons/{slug}", "/api/v1/lessons/before-we-begin", "oe", 200)
            .json(json!({"subject": "Lesson 1 · Put by the role test"})),
        case("PATCH", "/api/v1/lessons/{slug}", "/api/v1/lessons/before-we-begin", "oe", 200)
            .json(json!({"subject": "Lesson 1 · Patched by the role test"})),
        case("GET", "/api/v1/subscribers", "/api/v1/subscribers", "or", 200),
        case("POST", "/api/v1/subscribers", "/api/v1/subscribers", "o", 201)
            .json(json!({"email": "new@example.com", "confirmed": true})),
        case("POST", "/api/v1/enrollments", "/api/v1/enrollments", "o", 201)
            .json(json!({"email": "enrolled@example.com", "course": "rebuilding-trust", "confirmed": true})),
        case("GET", "/api/v1/subscribers/{key}", &api_s(f.api_subscriber, ""), "or", 200),
        case("GET", "/api/v1/subscribers/{key}/export", &api_s(f.api_subscriber, "/export"), "or", 200),
        case("POST", "/api/v1/subscribers/{key}/pause", &api_s(f.api_subscriber, "/pause"), "o", 200),
        case("POST", "/api/v1/subscribers/{key}/resume", &api_s(f.api_subscriber, "/resume"), "o", 200),
        case("DELETE", "/api/v1/subscribers/{key}", &api_s(f.doomed, ""), "o", 200),
        case("GET", "/api/v1/replies", "/api/v1/replies", "or", 200),
        case("POST", "/api/v1/replies/{id}/answers", &format!("/api/v1/replies/{}/answers", f.reply), "or", 201)
            .json(json!({"text": "Thank you for this."})),
        case("GET", "/api/v1/enrollments", "/api/v1/enrollments", "or", 200),
        case("GET", "/api/v1/enrollments/{id}", &format!("/api/v1/enrollments/{}", f.api_enrollment), "or", 200),
        case("DELETE", "/api/v1/enrollments/{id}", &format!("/api/v1/enrollments/{}", f.api_enrollment), "o", 200),
        // The API's own description: any role's token may read it.
        case("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", "oer", 200),
        // Everyone owns their second factor (a right code enrols; the session is renewed).
        case("POST", "/admin/account/totp", "/admin/account/totp", "oer", 200),
        case("POST", "/admin/logout", "/admin/logout", "oer", 303),
    ];
    rows
}

/// The code the enrolment page's key shows now.
fn code_on(page: &str) -> String {
    totp_rs::TOTP::from_url(offered_uri(page))
        .unwrap()
        .generate_current()
        .unwrap()
}

async fn request(t: &TestApp, session: &Session, token: &str, c: &Case) -> Resp {
    let api = c.uri.starts_with("/api/");
    let (cookie, auth) = if api {
        (None, Some(token))
    } else {
        (Some(session.cookie.as_str()), None)
    };
    let (content_type, body) = match &c.body {
        Body::None if api => (Some("application/json".to_owned()), b"{}".to_vec()),
        Body::None => (
            Some("application/x-www-form-urlencoded".to_owned()),
            form(&[("csrf", &session.csrf)]),
        ),
        Body::Json(v) => (Some("application/json".to_owned()), v.to_string().into_bytes()),
        Body::Form(pairs) => {
            let mut all: Vec<(&str, &str)> =
                pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            all.push(("csrf", &session.csrf));
            (Some("application/x-www-form-urlencoded".to_owned()), form(&all))
        }
        Body::Upload => (
            Some("multipart/form-data; boundary=x".to_owned()),
            format!(
                "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nemail\r\nimported@example.com\r\n--x--\r\n",
                session.csrf
            )
            .into_bytes(),
        ),
    };
    let (content_type, body) = if c.method == "GET" {
        (None, Vec::new())
    } else {
        (content_type, body)
    };
    send(
        &t.app,
        "127.0.0.1",
        c.method,
        &c.uri,
        cookie,
        content_type.as_deref(),
        auth,
        body,
    )
    .await
}

/// A fresh app with one admin of `role`, subscribers and a reply.
async fn app_for(backend: Backend, role: Role) -> (TestApp, Fixture, String) {
    let t = TestApp::with_file_outbox(backend).await;
    t.app.course(None).await.unwrap();
    add_admin_as(&t.app, "pat", role).await;
    let page_subscriber = enrolled(&t, "bob@example.com", "Bob").await.id;
    let api_subscriber = enrolled(&t, "cy@example.com", "Cy").await.id;
    let doomed = enrolled(&t, "dee@example.com", "Dee").await.id;
    let ed = enrolled(&t, "ed@example.com", "Ed").await.id;
    let api_enrollment = db::enrollments::for_subscriber(&t.app.db, ed)
        .await
        .unwrap()[0]
        .id;
    let first = lesson(&t, "before-we-begin").await;
    let text = t.app.vault.seal(SECRET_ANSWER.as_bytes());
    let raw = t
        .app
        .vault
        .seal(format!("Subject: Re\r\n\r\n{SECRET_ANSWER}").as_bytes());
    let mut tx = t.app.db.begin_write().await.unwrap();
    let reply = db::replies::insert(
        &mut tx,
        &db::replies::NewReply {
            message_id: Some("<role-test@example.com>"),
            subscriber_id: Some(page_subscriber),
            delivery_id: None,
            lesson_id: Some(first.id),
            kind: "reply",
            matched_by: Some("sender"),
            command: None,
            from_addr: "bob@example.com",
            subject: "Re",
            text: &text,
            raw: Some(&raw),
            flagged: false,
            flag_reason: "",
            received_at: Utc::now().timestamp(),
            in_answer_to: None,
        },
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    let token = drip::auth::new_api_token(&t.app.db, "pat", Utc::now().timestamp())
        .await
        .unwrap();
    let webhook = drip::webhooks::add(
        &t.app,
        "http://127.0.0.1:9/fixture",
        "reply.received",
        "test",
        Utc::now(),
    )
    .await
    .unwrap()
    .id;
    let fixture = Fixture {
        page_subscriber,
        api_subscriber,
        doomed,
        reply,
        api_enrollment,
        webhook,
    };
    (t, fixture, token)
}

async fn every_route_answers_each_role_as_the_role_table_says(backend: Backend) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("drip=warn")
        .try_init();
    // The table covers exactly the routes the router has.
    let probe = TestApp::with_file_outbox(backend).await;
    probe.app.course(None).await.unwrap();
    let first = lesson(&probe, "before-we-begin").await;
    let none = Fixture {
        page_subscriber: 1,
        api_subscriber: 2,
        doomed: 3,
        reply: 1,
        api_enrollment: 1,
        webhook: 1,
    };
    let routed: BTreeSet<(String, String)> = drip::web::access_rules()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    let tabled: BTreeSet<(String, String)> = cases(&none, &first)
        .iter()
        .map(|c| (c.method.to_owned(), c.route.to_owned()))
        .collect();
    let untested: Vec<_> = routed.difference(&tabled).collect();
    assert!(
        untested.is_empty(),
        "routes without a row in this table: {untested:?}"
    );
    let gone: Vec<_> = tabled.difference(&routed).collect();
    assert!(
        gone.is_empty(),
        "rows for routes the router does not have: {gone:?}"
    );
    assert_eq!(
        tabled.len(),
        cases(&none, &first).len(),
        "one row per route"
    );

    for role in Role::ALL {
        let (t, f, token) = app_for(backend, role).await;
        let signed_in = sign_in_from(&t.app, "127.0.0.1", "pat", PASSWORD).await;
        assert_eq!(signed_in.status, 303, "{role}: {}", signed_in.body);
        let mut session = session_of(&t.app, &signed_in).await;
        let lesson_now = lesson(&t, "before-we-begin").await;
        for mut c in cases(&f, &lesson_now) {
            if c.route == "/admin/account/totp" && c.method == "POST" {
                let page = session.get(&t.app, "/admin/account/totp").await;
                c.body = Body::Form(vec![("code", code_on(&page.body))]);
            }
            let r = request(&t, &session, &token, &c).await;
            let what = format!("{role} {} {}", c.method, c.uri);
            if c.allowed(role) {
                assert_eq!(r.status, c.ok, "{what}: {}", r.body);
            } else {
                assert_eq!(r.status, 403, "{what}: {}", r.body);
                let says = if c.uri.starts_with("/api/") {
                    r.json()["field"] == "role"
                } else {
                    r.body.contains("Your role (") && r.body.contains(role.as_str())
                };
                assert!(says, "{what} names the role: {}", r.body);
            }
            if role == Role::Editor {
                assert!(
                    !r.body.contains(SECRET_ANSWER),
                    "{what} showed an editor the text of a reply"
                );
            }
            if c.route == "/admin/account/totp" && c.method == "POST" {
                // Enrolling renewed the session; the rest goes on with the new one.
                session = Session {
                    cookie: cookie_pair(
                        &r.cookies()
                            .into_iter()
                            .find(|c| c.starts_with("drip_admin="))
                            .expect("a new session after enrolling"),
                    ),
                    csrf: field(&r.body, "csrf").unwrap(),
                };
            }
        }
        // What was refused left no trace.
        let status = |id: i64| {
            let db = t.app.db.clone();
            async move {
                db::subscribers::by_id(&db, id)
                    .await
                    .unwrap()
                    .unwrap()
                    .status
                    .as_str()
                    .to_owned()
            }
        };
        // A pause is the enrollment's (in the course the pages show).
        let enrollment = |id: i64| {
            let db = t.app.db.clone();
            async move {
                db::enrollments::for_subscriber(&db, id).await.unwrap()[0]
                    .status
                    .as_str()
                    .to_owned()
            }
        };
        let lesson_after = lesson(&t, "before-we-begin").await;
        let hooks: Vec<String> = drip::webhooks::list(&t.app, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.url)
            .collect();
        if role == Role::Owner {
            assert_eq!(
                hooks,
                ["http://127.0.0.1:9/role-test"],
                "added one, removed the other"
            );
        } else {
            assert_eq!(
                hooks,
                ["http://127.0.0.1:9/fixture"],
                "{role} changed no webhook"
            );
        }
        let stopped = db::enrollments::by_id(&t.app.db, f.api_enrollment)
            .await
            .unwrap()
            .unwrap();
        let (answers,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM answers")
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
        match role {
            Role::Owner | Role::Reader => assert_eq!(
                answers, 2,
                "{role} answered on the page and through the API"
            ),
            Role::Editor => assert_eq!(answers, 0, "the editor wrote to nobody"),
        }
        assert_eq!(
            stopped.status.as_str(),
            if role == Role::Owner {
                "stopped"
            } else {
                "active"
            },
            "{role}"
        );
        match role {
            Role::Owner => {
                assert_eq!(enrollment(f.page_subscriber).await, "paused");
                assert_eq!(status(f.doomed).await, "erased");
                assert!(lesson_after.revision > lesson_now.revision);
            }
            Role::Editor => {
                assert_eq!(enrollment(f.page_subscriber).await, "active");
                assert_eq!(status(f.doomed).await, "active");
                assert!(lesson_after.revision > lesson_now.revision);
            }
            Role::Reader => {
                assert_eq!(enrollment(f.page_subscriber).await, "active");
                assert_eq!(status(f.doomed).await, "active");
                assert_eq!(lesson_after.revision, lesson_now.revision);
                assert_eq!(
                    (lesson_after.position, lesson_after.content.subject.as_str()),
                    (lesson_now.position, lesson_now.content.subject.as_str())
                );
                let extra = db::lessons::by_slug(&t.app.db, lesson_now.course_id, "extra")
                    .await
                    .unwrap();
                assert!(extra.is_none(), "the reader added no lesson");
                let imported = db::subscribers::by_email(&t.app.db, "imported@example.com")
                    .await
                    .unwrap();
                assert!(imported.is_none(), "the reader imported nobody");
            }
        }
    }
}
