//! The JSON API under /api/v1 with a bearer token.

use chrono::Utc;
use drip::db;
use serde_json::{Value, json};

use super::*;
use crate::on_both_databases;
use crate::support::Backend;

on_both_databases!(
    the_json_api_manages_subscribers_lessons_and_replies,
    the_enrollment_api_lists_reads_and_stops_one_course_only,
);

async fn the_enrollment_api_lists_reads_and_stops_one_course_only(backend: Backend) {
    let t = admin_app(backend).await;
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    let api = |method: &'static str, uri: String, body: Value| {
        let (app, token) = (t.app.clone(), token.clone());
        async move { api_call(&app, &token, method, &uri, body).await }
    };
    // Gil takes both courses (the second confirmed by the caller, e.g. a purchase).
    for course in ["rebuilding-trust", "write-your-first-course"] {
        let r = api(
            "POST",
            "/api/v1/enrollments".into(),
            json!({"email": "gil@example.com", "course": course, "confirmed": true}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = api(
        "GET",
        "/api/v1/enrollments?subscriber=gil@example.com".into(),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.json()["enrollments"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{}", r.body);
    let second = list
        .iter()
        .find(|e| e["course"] == "write-your-first-course")
        .unwrap()
        .clone();
    let first = list
        .iter()
        .find(|e| e["course"] == "rebuilding-trust")
        .unwrap()
        .clone();
    assert_eq!(second["status"], "active");
    assert_eq!(second["email"], "gil@example.com");
    let r = api(
        "GET",
        "/api/v1/enrollments?course=write-your-first-course&status=active".into(),
        json!({}),
    )
    .await;
    assert_eq!(
        r.json()["enrollments"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    let id = second["id"].as_i64().unwrap();
    let r = api("GET", format!("/api/v1/enrollments/{id}"), json!({})).await;
    assert_eq!(
        (r.status, r.json()["enrollment"]["course"].clone()),
        (200, json!("write-your-first-course"))
    );

    // Bad input names its field and changes nothing.
    for (uri, status, field) in [
        (
            "/api/v1/enrollments?status=sleeping".to_owned(),
            422,
            "status",
        ),
        (
            "/api/v1/enrollments?course=no-such-course".to_owned(),
            422,
            "course",
        ),
        ("/api/v1/enrollments?limit=0".to_owned(), 422, "limit"),
        ("/api/v1/enrollments?colour=red".to_owned(), 422, "colour"),
        ("/api/v1/enrollments/999999".to_owned(), 404, "id"),
        ("/api/v1/enrollments/abc".to_owned(), 404, "id"),
    ] {
        let r = api("GET", uri.clone(), json!({})).await;
        assert_eq!(
            (r.status, r.json()["field"].clone()),
            (status, json!(field)),
            "{uri}: {}",
            r.body
        );
    }

    // DELETE stops that course only; a second DELETE changes nothing.
    let r = api("DELETE", format!("/api/v1/enrollments/{id}"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.json()["enrollment"]["status"].clone(),
            r.json()["changed"].clone()
        ),
        (json!("stopped"), json!(true))
    );
    let r = api("DELETE", format!("/api/v1/enrollments/{id}"), json!({})).await;
    assert_eq!((r.status, r.json()["changed"].clone()), (200, json!(false)));
    let r = api(
        "GET",
        format!("/api/v1/enrollments/{}", first["id"]),
        json!({}),
    )
    .await;
    assert_eq!(
        r.json()["enrollment"]["status"],
        "active",
        "the other course goes on"
    );
    let gil = db::subscribers::by_email(&t.app.db, "gil@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gil.status.as_str(), "active", "the person stays subscribed");
}

async fn the_json_api_manages_subscribers_lessons_and_replies(backend: Backend) {
    let t = admin_app(backend).await;
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    let api = |method: &'static str, uri: String, body: Value| {
        let (app, token) = (t.app.clone(), token.clone());
        async move { api_call(&app, &token, method, &uri, body).await }
    };
    let r = api("POST", "/api/v1/subscribers".into(), json!({"email": "Fay@Example.com", "name": "Fay", "timezone": "Asia/Tokyo", "confirmed": true})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["subscriber"]["id"].as_i64().unwrap();
    assert_eq!(r.json()["subscriber"]["status"], "active");
    let r = api(
        "POST",
        "/api/v1/subscribers".into(),
        json!({"email": "fay@example.com"}),
    )
    .await;
    assert_eq!((r.status, r.json()["field"].clone()), (409, json!("email")));
    let r = api(
        "POST",
        "/api/v1/subscribers".into(),
        json!({"email": "nope"}),
    )
    .await;
    assert_eq!((r.status, r.json()["field"].clone()), (422, json!("email")));
    let r = api(
        "POST",
        "/api/v1/subscribers".into(),
        json!({"email": "a@example.com", "timezone": "Nowhere/Land"}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (422, json!("timezone"))
    );
    for key in [id.to_string(), "fay@example.com".into()] {
        let r = api("GET", format!("/api/v1/subscribers/{key}"), Value::Null).await;
        assert_eq!(
            (r.status, r.json()["subscriber"]["email"].clone()),
            (200, json!("fay@example.com"))
        );
    }
    assert_eq!(
        api(
            "GET",
            "/api/v1/subscribers/nobody@example.com".into(),
            Value::Null
        )
        .await
        .status,
        404
    );
    let r = api(
        "GET",
        "/api/v1/subscribers?status=active&search=fa&limit=10".into(),
        Value::Null,
    )
    .await;
    assert_eq!(
        r.json()["subscribers"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    let r = api(
        "POST",
        format!("/api/v1/subscribers/{id}/pause"),
        Value::Null,
    )
    .await;
    // The pause is the enrollment's: the person stays confirmed, and the course names itself.
    assert_eq!(
        (
            r.status,
            r.json()["subscriber"]["status"].clone(),
            r.json()["subscriber"]["enrollments"][0]["status"].clone(),
            r.json()["subscriber"]["enrollments"][0]["course"].clone(),
        ),
        (
            200,
            json!("active"),
            json!("paused"),
            json!("rebuilding-trust")
        )
    );
    let r = api(
        "POST",
        format!("/api/v1/subscribers/{id}/resume"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (
            r.status,
            r.json()["subscriber"]["enrollments"][0]["status"].clone()
        ),
        (200, json!("active"))
    );
    // Lessons: list, get, update with lint errors as 422 naming the field.
    let r = api("GET", "/api/v1/lessons".into(), Value::Null).await;
    assert_eq!(r.json()["lessons"][0]["slug"], "before-we-begin");
    let r = api(
        "PATCH",
        "/api/v1/lessons/before-we-begin".into(),
        json!({"send_window": "0 99 8 * * *"}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (422, json!("send_window")),
        "{}",
        r.body
    );
    let r = api(
        "PATCH",
        "/api/v1/lessons/before-we-begin".into(),
        json!({"prompt": ""}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (422, json!("prompt"))
    );
    let r = api(
        "PATCH",
        "/api/v1/lessons/before-we-begin".into(),
        json!({"colour": "red"}),
    )
    .await;
    assert_eq!(r.status, 422, "unknown fields are refused");
    let r = api(
        "PUT",
        "/api/v1/lessons/before-we-begin".into(),
        json!({"subject": "Lesson 1 · From the API", "revision": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.json()["lesson"]["revision"].clone(),
            r.json()["lesson"]["author"].clone()
        ),
        (json!(2), json!(USER))
    );
    let r = api(
        "PATCH",
        "/api/v1/lessons/before-we-begin".into(),
        json!({"subject": "stale", "revision": 1}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (409, json!("revision"))
    );
    let r = api("GET", "/api/v1/lessons/before-we-begin".into(), Value::Null).await;
    assert_eq!(r.json()["lesson"]["subject"], "Lesson 1 · From the API");
    // Replies by subscriber and by lesson.
    let first = lesson(&t, "before-we-begin").await;
    let mut tx = t.app.db.begin_write().await.unwrap();
    let sealed = t.app.vault.seal(b"My answer.");
    db::replies::insert(
        &mut tx,
        &db::replies::NewReply {
            message_id: Some("<api@example.com>"),
            subscriber_id: Some(id),
            delivery_id: None,
            lesson_id: Some(first.id),
            kind: "reply",
            matched_by: Some("sender"),
            command: None,
            from_addr: "fay@example.com",
            subject: "Re",
            text: &sealed,
            raw: None,
            flagged: false,
            flag_reason: "",
            received_at: Utc::now().timestamp(),
            in_answer_to: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for q in [
        format!("subscriber={id}"),
        "lesson=before-we-begin".into(),
        "subscriber=fay%40example.com".into(),
    ] {
        let r = api("GET", format!("/api/v1/replies?{q}"), Value::Null).await;
        assert_eq!(
            r.json()["replies"][0]["text"],
            "My answer.",
            "{q}: {}",
            r.body
        );
    }
    let r = api(
        "GET",
        "/api/v1/replies?lesson=a-clean-slate".into(),
        Value::Null,
    )
    .await;
    assert!(r.json()["replies"].as_array().unwrap().is_empty());
    // Delete erases.
    let r = api("DELETE", format!("/api/v1/subscribers/{id}"), Value::Null).await;
    assert_eq!((r.status, r.json()["erased"].clone()), (200, json!(true)));
    assert_eq!(
        db::subscribers::by_id(&t.app.db, id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "erased"
    );
    assert!(
        db::replies::for_subscriber(&t.app.db, id)
            .await
            .unwrap()
            .is_empty()
    );
}
