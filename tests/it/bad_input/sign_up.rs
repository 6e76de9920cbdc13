//! Sign-up input: the same hostile addresses, time zones and names through the form, the JSON
//! body of POST /subscribe and the JSON API; bodies too large or malformed; API lesson edits.

use chrono::Utc;
use serde_json::{Value, json};

use super::{assert_unchanged, shown, snapshot};
use crate::admin::{Resp, USER, admin_app, form, send};
use crate::on_both_databases;
use crate::support::{Backend, TestApp};

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// One refused sign-up: the three fields, the field the answer must name and words it says.
struct SignUp {
    case: &'static str,
    email: String,
    name: String,
    timezone: String,
    field: &'static str,
    says: &'static str,
}

fn case(
    case: &'static str,
    email: &str,
    name: &str,
    timezone: &str,
    field: &'static str,
    says: &'static str,
) -> SignUp {
    SignUp {
        case,
        email: email.into(),
        name: name.into(),
        timezone: timezone.into(),
        field,
        says,
    }
}

#[rustfmt::skip]
fn sign_ups() -> Vec<SignUp> {
    let ok = "ann@example.com";
    vec![
        // Addresses.
        case("CR/LF header injection", "a@example.com\r\nBcc: x@y.z", "", "", "email", "line breaks"),
        case("LF header injection", "a@example.com\nBcc: x@y.z", "", "", "email", "line breaks"),
        case("NUL byte", "a\0@example.com", "", "", "email", "control characters"),
        case("300 characters", &format!("{}@{}.com", "a".repeat(60), "b".repeat(240)), "", "", "email", "longer than 254"),
        case("local part of 65", &format!("{}@example.com", "a".repeat(65)), "", "", "email", "1 to 64"),
        case("Cyrillic а in the local part", "pаypal@example.com", "", "", "email", "will not accept"),
        case("fullwidth @", "ann＠example.com", "", "", "email", "name@example.com"),
        case("fullwidth letters in the domain", "ann@ｅｘａｍｐｌｅ.com", "", "", "email", "full-width"),
        case("zero-width space in the local part", "an\u{200B}n@example.com", "", "", "email", "will not accept"),
        case("zero-width space in the domain", "ann@exam\u{200B}ple.com", "", "", "email", "not a valid host name"),
        case("right-to-left override", "\u{202E}moc.elpmaxe@nna", "", "", "email", "will not accept"),
        case("right-to-left override in the domain", "ann@example\u{202E}.com", "", "", "email", "not a valid host name"),
        case("empty", "", "", "", "email", "is required"),
        case("spaces only", "   ", "", "", "email", "is required"),
        case("missing @", "ann.example.com", "", "", "email", "name@example.com"),
        case("two @", "ann@@example.com", "", "", "email", "will not accept"),
        case("display name and brackets", "Ann <ann@example.com>", "", "", "email", "will not accept"),
        case("two addresses", "a@example.com, b@example.com", "", "", "email", "will not accept"),
        case("IP address domain", "ann@127.0.0.1", "", "", "email", "not a valid host name"),
        case("no dot in the domain", "ann@localhost", "", "", "email", "must have a dot"),
        // Time zones.
        case("unknown zone", ok, "", "Mars/Olympus", "timezone", "not a known time zone"),
        case("offset past 24 hours", ok, "", "UTC+25", "timezone", "not a known time zone"),
        case("500-character zone", ok, "", &"Europe/".repeat(72), "timezone", "not a known time zone"),
        case("zone with CR/LF", ok, "", "Europe/Paris\r\nX-Injected: 1", "timezone", "not a known time zone"),
        case("abbreviation", ok, "", "CEST", "timezone", "not a known time zone"),
        // Names (markup is accepted and escaped on output; see `markup_in_a_name…` below).
        case("name with CR/LF", ok, "Ann\r\nBcc: x@y.z", "", "name", "line breaks"),
        case("name of 101 characters", ok, &"n".repeat(101), "", "name", "at most 100"),
        case("name with a right-to-left override", ok, "Eve\u{202E}nimda", "", "name", "direction"),
        // Every field wrong: the first is named, all are reported.
        case("all three wrong", "nope", "a\nb", "Nowhere/Land", "email", "name@example.com"),
    ]
}

async fn post(
    t: &TestApp,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> Resp {
    send(
        &t.app,
        "127.0.0.1",
        "POST",
        uri,
        None,
        Some(content_type),
        token,
        body,
    )
    .await
}

on_both_databases!(
    sign_up_refusals_name_the_field_and_change_nothing,
    bodies_too_large_or_malformed_are_refused_and_change_nothing,
    markup_in_a_name_is_accepted_and_stored_as_typed,
);

async fn sign_up_refusals_name_the_field_and_change_nothing(backend: Backend) {
    let t = admin_app(backend).await;
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    let before = snapshot(&t.app).await;
    for c in sign_ups() {
        let label = format!("{} ({})", c.case, shown(&c.email));
        // The HTML form: the page again, with the error beside the field.
        let r = post(
            &t,
            "/subscribe",
            FORM,
            form(&[
                ("email", &c.email),
                ("name", &c.name),
                ("timezone", &c.timezone),
            ]),
            None,
        )
        .await;
        assert_eq!(r.status, 422, "{label}: form: {}", r.body);
        assert!(
            r.body.contains(&format!("id=\"{}-error\"", c.field)),
            "{label}: the form page names no {} error",
            c.field
        );
        assert!(
            r.body.contains(c.says),
            "{label}: the form page lacks {:?}",
            c.says
        );
        for raw in [c.email.as_str(), c.name.as_str()] {
            if raw.contains('<') {
                assert!(
                    !r.body.contains(raw),
                    "{label}: the input came back unescaped"
                );
            }
        }
        // The JSON body of the same route, and the API.
        let body = json!({"email": c.email, "name": c.name, "timezone": c.timezone});
        let r = post(&t, "/subscribe", JSON, body.to_string().into_bytes(), None).await;
        assert_eq!(r.status, 422, "{label}: JSON: {}", r.body);
        assert_eq!(r.json()["field"], c.field, "{label}: JSON: {}", r.body);
        let error = r.json()["error"].as_str().unwrap_or("").to_owned();
        assert!(
            error.starts_with(&format!("{}: ", c.field)) && error.contains(c.says),
            "{label}: JSON error {error:?}"
        );
        let r = post(
            &t,
            "/api/v1/subscribers",
            JSON,
            body.to_string().into_bytes(),
            Some(&token),
        )
        .await;
        assert_eq!(r.status, 422, "{label}: API: {}", r.body);
        assert_eq!(r.json()["field"], c.field, "{label}: API: {}", r.body);
        assert!(
            r.json()["error"].as_str().unwrap_or("").contains(c.says),
            "{label}: API: {}",
            r.body
        );
        assert_unchanged(&t, &label, &before, &snapshot(&t.app).await);
    }
}

/// A request that is refused before its fields are read.
struct Body {
    case: &'static str,
    method: &'static str,
    uri: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    /// Words the answer says; for JSON answers, in `error`.
    says: &'static str,
    /// For JSON answers: the `field` named.
    field: Option<&'static str>,
}

#[rustfmt::skip]
fn bodies() -> Vec<Body> {
    let big_name = "x".repeat(200 * 1024);
    let huge = format!("{{\"email\":\"a@example.com\",\"name\":\"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let b = |case, method, uri, content_type, body: &[u8], status, says, field| Body { case, method, uri, content_type, body: body.to_vec(), status, says, field };
    let lesson = "/api/v1/lessons/before-we-begin";
    vec![
        b("form over 64 KiB", "POST", "/subscribe", FORM, &form(&[("email", "a@example.com"), ("name", &big_name)]), 413, "length limit exceeded", None),
        b("JSON over 64 KiB", "POST", "/subscribe", JSON, json!({"email": "a@example.com", "name": big_name}).to_string().as_bytes(), 413, "length limit exceeded", Some("body")),
        b("JSON cut short", "POST", "/subscribe", JSON, b"{\"email\": \"a@exam", 400, "parse the request body as JSON", Some("body")),
        b("JSON of the wrong type", "POST", "/subscribe", JSON, b"{\"email\": 5}", 422, "invalid type", Some("email")),
        b("JSON string instead of an object", "POST", "/subscribe", JSON, b"\"a@example.com\"", 422, "invalid type", Some("body")),
        b("JSON with a NUL escape", "POST", "/subscribe", JSON, b"{\"email\": \"a\\u0000@example.com\"}", 422, "control characters", Some("email")),
        b("form field twice", "POST", "/subscribe", FORM, b"email=a%40example.com&email=b%40example.com", 422, "duplicate field", None),
        b("form with invalid UTF-8 escapes", "POST", "/subscribe", FORM, b"email=%FF%FE%40example.com", 422, "will not accept", None),
        b("form without a content type", "POST", "/subscribe", "text/plain", b"email=a%40example.com", 415, "Content-Type", None),
        b("API body over 2 MiB", "POST", "/api/v1/subscribers", JSON, huge.as_bytes(), 413, "length limit exceeded", Some("body")),
        b("API JSON cut short", "POST", "/api/v1/subscribers", JSON, b"{\"email\":", 400, "JSON", Some("body")),
        b("API JSON of the wrong type", "POST", "/api/v1/subscribers", JSON, b"{\"email\": [1]}", 422, "invalid type", Some("email")),
        b("API email missing", "POST", "/api/v1/subscribers", JSON, b"{\"name\": \"Ann\"}", 422, "missing field `email`", Some("email")),
        b("API unknown field", "POST", "/api/v1/subscribers", JSON, b"{\"email\": \"a@example.com\", \"admin\": true}", 422, "unknown field `admin`", Some("admin")),
        b("API without a JSON content type", "POST", "/api/v1/subscribers", "text/plain", b"{\"email\": \"a@example.com\"}", 415, "Content-Type", Some("body")),
        // Lesson edits through the API are linted as files are.
        b("API lesson with a script tag", "PATCH", lesson, JSON, json!({"body": "Hello\n\n<script>alert(1)</script>\n"}).to_string().as_bytes(), 422, "a script tag is not allowed", Some("body")),
        b("API lesson with an unknown variable", "PATCH", lesson, JSON, json!({"body": "Hi {{ subscriber.shoe_size }}\n"}).to_string().as_bytes(), 422, "unknown template variable `subscriber.shoe_size`", Some("body")),
        b("API lesson with a CR/LF subject", "PATCH", lesson, JSON, json!({"subject": "Hi\r\nBcc: x@y.z"}).to_string().as_bytes(), 422, "one line", Some("subject")),
    ]
}

async fn bodies_too_large_or_malformed_are_refused_and_change_nothing(backend: Backend) {
    let t = admin_app(backend).await;
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    let before = snapshot(&t.app).await;
    for c in bodies() {
        let auth = c.uri.starts_with("/api/").then_some(token.as_str());
        let r = send(
            &t.app,
            "127.0.0.1",
            c.method,
            c.uri,
            None,
            Some(c.content_type),
            auth,
            c.body,
        )
        .await;
        assert_eq!(r.status, c.status, "{}: {}", c.case, shown(&r.body));
        let is_json = r
            .headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json"));
        if is_json {
            let v: Value = r.json();
            let error = v["error"].as_str().unwrap_or("");
            assert!(error.contains(c.says), "{}: error {error:?}", c.case);
            if let Some(field) = c.field {
                assert_eq!(v["field"], field, "{}: {}", c.case, r.body);
            }
        } else {
            assert!(r.body.contains(c.says), "{}: {}", c.case, shown(&r.body));
        }
        assert_unchanged(&t, c.case, &before, &snapshot(&t.app).await);
    }
    // A bearer token that is forged, truncated or missing: 401 naming the header.
    let forged = format!("{}x", &token[..token.len() - 1]);
    for (case, given) in [
        ("forged bearer token", Some(forged.as_str())),
        ("truncated bearer token", Some(&token[..token.len() / 2])),
        ("no bearer token", None),
    ] {
        let r = send(
            &t.app,
            "127.0.0.1",
            "POST",
            "/api/v1/subscribers",
            None,
            Some(JSON),
            given,
            br#"{"email":"a@example.com"}"#.to_vec(),
        )
        .await;
        assert_eq!(
            (r.status, r.json()["field"].clone()),
            (401, json!("authorization")),
            "{case}"
        );
        assert_unchanged(&t, case, &before, &snapshot(&t.app).await);
    }
}

/// Markup in a name is not refused: it is stored as typed and escaped wherever it is shown
/// (tests/it/render.rs for mails, tests/it/admin.rs for the admin pages).
async fn markup_in_a_name_is_accepted_and_stored_as_typed(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    for (email, name) in [
        ("m1@example.com", "<script>alert(1)</script>"),
        ("m2@example.com", "\"><img src=x onerror=alert(1)>"),
        ("m3@example.com", "{{subscriber.email}}"),
    ] {
        let r = post(
            &t,
            "/subscribe",
            FORM,
            form(&[("email", email), ("name", name)]),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{name}");
        assert!(!r.body.contains(name), "{name}: echoed unescaped");
        let s = drip::db::subscribers::by_email(&t.app.db, email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.name, name);
    }
    // A name that looks like a template is a value, never a template.
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let (_, mail) = t
        .outbox()
        .into_iter()
        .find(|(_, m)| m.contains("m3@example.com"))
        .expect("the confirmation to m3");
    let text = crate::support::text_part(&mail);
    assert!(text.contains("Hi {{subscriber.email}},"), "{text}");
}
