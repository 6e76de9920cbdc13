//! Broadcasts (issue 14): one mail to a course's readers through the outbox, over SMTP to a
//! real server. Each reader in the audience gets it once, also after a worker died holding
//! its mail; nobody paused or gone gets it; two of one course never land on one local day;
//! `--local-time` arrives at the local hour in three zones; a reply to one is stored as a
//! reply to it; bad input names its field and writes nothing.

use chrono::{DateTime, Utc};
use drip::broadcasts::{self, Draft, When};
use drip::db;
use drip::domain::{Audience, DeliveryKind, Timezone};
use drip::outbox;
use drip::subscriptions::{self, NewSubscriber};
use serde_json::json;

use crate::admin::{USER, add_test_admin, send, sign_in};
use crate::on_both_databases;
use crate::support::{Backend, TestApp, at};

on_both_databases!(
    a_broadcast_reaches_each_reader_in_its_audience_once_and_nobody_paused_or_gone,
    a_local_time_broadcast_arrives_at_that_hour_on_three_clocks,
    a_reply_to_a_broadcast_is_stored_as_a_reply_to_it,
    bad_broadcasts_are_refused_naming_the_field_and_nothing_is_written,
    the_admin_page_previews_makes_shows_and_cancels_a_broadcast,
);

async fn reader(t: &TestApp, email: &str, tz: &str, now: DateTime<Utc>) -> i64 {
    let course = crate::support::shipped(&t.app).await;
    let new = NewSubscriber::parse(email, "Reader", tz, Timezone::UTC).unwrap();
    subscriptions::add(&t.app, &course, &new, true, "test", now)
        .await
        .unwrap()
}

fn draft(subject: &str, when: When) -> Draft {
    Draft {
        subject: subject.into(),
        body: "Hello {{ subscriber.first_name }}, a word about {{ course.title }}.\n\n[Your preferences]({{ links.preferences }})".into(),
        audience: Audience::Active,
        when,
    }
}

/// The broadcast mails that reached the SMTP server: (recipient, broadcast id).
fn received(t: &TestApp) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = t
        .smtp()
        .messages()
        .iter()
        .filter_map(|m| {
            let id = m.header("X-Drip-Broadcast")?.trim().parse().ok()?;
            Some((m.to[0].clone(), id))
        })
        .collect();
    out.sort();
    out
}

async fn deliveries_of(t: &TestApp, broadcast: i64) -> Vec<db::broadcasts::Mail> {
    db::broadcasts::mails(&t.app.db, broadcast).await.unwrap()
}

async fn a_broadcast_reaches_each_reader_in_its_audience_once_and_nobody_paused_or_gone(
    backend: Backend,
) {
    let t = TestApp::with_smtp(backend).await;
    let course = crate::support::shipped(&t.app).await;
    let start = at("2026-12-07T10:00:00Z");
    let ann = reader(&t, "ann@example.com", "UTC", start).await;
    let bo = reader(&t, "bo@example.com", "UTC", start).await;
    let cy = reader(&t, "cy@example.com", "UTC", start).await;
    let di = reader(&t, "di@example.com", "UTC", start).await;
    subscriptions::pause(&t.app, cy, Some(course.id), "test", start)
        .await
        .unwrap();
    subscriptions::unsubscribe(&t.app, di, None, "test", start)
        .await
        .unwrap();
    // Someone only in the other course never gets this course's broadcast.
    let other = t.app.course(Some("write-your-first-course")).await.unwrap();
    let new = NewSubscriber::parse("ed@example.com", "Ed", "UTC", Timezone::UTC).unwrap();
    subscriptions::add(&t.app, &other, &new, true, "test", start)
        .await
        .unwrap();

    let b1 = broadcasts::create(
        &t.app,
        &course,
        &draft("A launch", When::Now),
        "test",
        start,
    )
    .await
    .unwrap();
    assert_eq!(
        broadcasts::find(&t.app, b1.id).await.unwrap().audience_now,
        Some(2),
        "the audience is counted before sending"
    );
    outbox::tick(&t.app, start).await.unwrap();
    outbox::tick(&t.app, start).await.unwrap();
    assert_eq!(
        received(&t),
        [
            ("ann@example.com".to_owned(), b1.id),
            ("bo@example.com".to_owned(), b1.id)
        ]
    );
    let m = t
        .smtp()
        .messages()
        .into_iter()
        .find(|m| m.header("X-Drip-Broadcast").is_some())
        .unwrap();
    assert_eq!(
        m.header("List-Id").unwrap(),
        format!("<rebuilding-trust.{}>", t.app.config.mail.reply_domain)
    );
    assert!(
        m.header("List-Unsubscribe")
            .unwrap()
            .contains("/unsubscribe/")
    );
    assert_eq!(
        m.header("List-Unsubscribe-Post").unwrap(),
        "List-Unsubscribe=One-Click"
    );
    assert!(m.header("Reply-To").unwrap().contains('+'), "a reply token");
    assert!(m.header("Subject").unwrap().contains("A launch"));

    // A second one that day moves to the same time the next day (one a day per course).
    let b2 = broadcasts::create(
        &t.app,
        &course,
        &draft("A correction", When::At(at("2026-12-07T11:00:00Z"))),
        "test",
        start,
    )
    .await
    .unwrap();
    outbox::tick(&t.app, at("2026-12-07T10:30:00Z"))
        .await
        .unwrap();
    assert!(
        deliveries_of(&t, b2.id).await.is_empty(),
        "not queued before its time"
    );
    outbox::tick(&t.app, at("2026-12-07T11:00:00Z"))
        .await
        .unwrap();
    let due: Vec<i64> = deliveries_of(&t, b2.id)
        .await
        .iter()
        .map(|d| d.due_at)
        .collect();
    assert_eq!(
        due,
        [at("2026-12-08T11:00:00Z").timestamp(); 2],
        "moved a day"
    );
    assert_eq!(received(&t).len(), 2);

    // Bo pauses before it leaves: his mail fails, visibly, and is never sent.
    subscriptions::pause(
        &t.app,
        bo,
        Some(course.id),
        "test",
        at("2026-12-08T09:00:00Z"),
    )
    .await
    .unwrap();
    // A worker claims the mail and dies before sending: after its lease the mail goes once.
    let next_day = at("2026-12-08T11:00:00Z");
    let claimed = db::deliveries::claim(&t.app.db, next_day.timestamp(), "dead-worker", 60, 100)
        .await
        .unwrap();
    assert!(claimed.iter().any(|d| d.broadcast_id == Some(b2.id)));
    outbox::tick(&t.app, next_day).await.unwrap();
    assert_eq!(received(&t).len(), 2, "held by the dead worker's lease");
    outbox::tick(&t.app, at("2026-12-08T11:02:00Z"))
        .await
        .unwrap();
    outbox::tick(&t.app, at("2026-12-08T11:05:00Z"))
        .await
        .unwrap();
    assert_eq!(
        received(&t),
        [
            ("ann@example.com".to_owned(), b1.id),
            ("ann@example.com".to_owned(), b2.id),
            ("bo@example.com".to_owned(), b1.id),
        ]
    );
    let v = broadcasts::find(&t.app, b2.id).await.unwrap();
    assert_eq!(
        (v.figures.sent, v.figures.failed, v.figures.queued),
        (1, 1, 0),
        "{:?}",
        v.figures
    );
    assert_eq!(v.state, "sent");
    let bo_mail = deliveries_of(&t, b2.id)
        .await
        .into_iter()
        .find(|d| d.status == "failed")
        .unwrap();
    assert!(bo_mail.last_error.unwrap().contains("paused"));
    // The subscriber's own record names the broadcast of each broadcast mail.
    let ann_mails: Vec<Option<i64>> = db::deliveries::for_subscriber(&t.app.db, ann)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == DeliveryKind::Broadcast)
        .map(|d| d.broadcast)
        .collect();
    assert_eq!(ann_mails, [Some(b1.id), Some(b2.id)]);
}

async fn a_local_time_broadcast_arrives_at_that_hour_on_three_clocks(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let course = crate::support::shipped(&t.app).await;
    let made = at("2026-12-07T12:00:00Z");
    for (email, tz) in [
        ("tokyo@example.com", "Asia/Tokyo"),
        ("paris@example.com", "Europe/Paris"),
        ("ny@example.com", "America/New_York"),
    ] {
        reader(&t, email, tz, made).await;
    }
    let when = When::parse(None, Some("09:00"), Some("2026-12-08")).unwrap();
    let b = broadcasts::create(&t.app, &course, &draft("Good morning", when), "test", made)
        .await
        .unwrap();
    outbox::tick(&t.app, made).await.unwrap();
    assert!(
        deliveries_of(&t, b.id).await.is_empty(),
        "queued when the earliest zone's 09:00 comes"
    );
    // 09:00 on the earliest clock (UTC+14) on the 8th is 19:00 UTC on the 7th.
    outbox::tick(&t.app, at("2026-12-07T19:00:00Z"))
        .await
        .unwrap();
    assert_eq!(deliveries_of(&t, b.id).await.len(), 3);
    for (moment, expected) in [
        ("2026-12-08T00:00:00Z", vec!["tokyo@example.com"]),
        (
            "2026-12-08T08:00:00Z",
            vec!["paris@example.com", "tokyo@example.com"],
        ),
        (
            "2026-12-08T13:59:00Z",
            vec!["paris@example.com", "tokyo@example.com"],
        ),
        (
            "2026-12-08T14:00:00Z",
            vec!["ny@example.com", "paris@example.com", "tokyo@example.com"],
        ),
    ] {
        outbox::tick(&t.app, at(moment)).await.unwrap();
        let got: Vec<String> = received(&t).into_iter().map(|(to, _)| to).collect();
        assert_eq!(got, expected, "at {moment}");
    }
    // Each left at 09:00 on its reader's clock.
    for d in deliveries_of(&t, b.id).await {
        let s = db::subscribers::by_id(&t.app.db, d.subscriber_id)
            .await
            .unwrap()
            .unwrap();
        let local = DateTime::from_timestamp(d.sent_at.unwrap(), 0)
            .unwrap()
            .with_timezone(&s.timezone.tz());
        assert_eq!(
            local.format("%Y-%m-%d %H:%M").to_string(),
            "2026-12-08 09:00",
            "{}",
            s.email
        );
    }
}

async fn a_reply_to_a_broadcast_is_stored_as_a_reply_to_it(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let course = crate::support::shipped(&t.app).await;
    let now = at("2026-12-07T10:00:00Z");
    reader(&t, "ann@example.com", "UTC", now).await;
    let b = broadcasts::create(
        &t.app,
        &course,
        &draft("A question", When::Now),
        "test",
        now,
    )
    .await
    .unwrap();
    outbox::tick(&t.app, now).await.unwrap();
    let d = deliveries_of(&t, b.id).await.remove(0);
    let raw = format!(
        "From: Ann <ann@example.com>\r\nTo: {}\r\nSubject: Re: A question\r\nMessage-ID: <r1@example.com>\r\n\
         In-Reply-To: <{}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Thank you, this helped.\r\n\r\nOn Mon, someone wrote:\r\n> Hello\r\n",
        t.app.reply_address(d.id),
        t.app.message_id(d.id)
    );
    let dry = drip::inbound::ingest(&t.app, raw.as_bytes(), true, now)
        .await
        .unwrap();
    let m = serde_json::to_value(&dry).unwrap();
    assert_eq!(m["match"]["course"], "rebuilding-trust", "{m}");
    assert_eq!(m["match"]["lesson"], serde_json::Value::Null, "{m}");
    assert_eq!(m["match"]["by"], "token", "{m}");
    let stored = drip::inbound::ingest(&t.app, raw.as_bytes(), false, now)
        .await
        .unwrap();
    assert!(stored.stored.is_some());
    assert_eq!(stored.text, "Thank you, this helped.");
    let v = broadcasts::find(&t.app, b.id).await.unwrap();
    assert_eq!(v.figures.replies, 1);
}

async fn bad_broadcasts_are_refused_naming_the_field_and_nothing_is_written(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    add_test_admin(&t.app).await;
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    let post = |body: serde_json::Value| {
        let app = t.app.clone();
        let token = token.clone();
        async move {
            send(
                &app,
                "127.0.0.1",
                "POST",
                "/api/v1/broadcasts",
                None,
                Some("application/json"),
                Some(&token),
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    for (body, status, field) in [
        (
            json!({"course": "no-such-course", "subject": "S", "body": "B"}),
            422,
            "course",
        ),
        (json!({"subject": " ", "body": "B"}), 422, "subject"),
        (
            json!({"subject": "S", "body": "Lesson {{ lesson.number }}"}),
            422,
            "body",
        ),
        (json!({"subject": "S", "body": "B {% if %}"}), 422, "body"),
        (
            json!({"subject": "S", "body": "B", "local_time": "9am"}),
            422,
            "local_time",
        ),
        (
            json!({"subject": "S", "body": "B", "at": "soon"}),
            422,
            "at",
        ),
        (
            json!({"subject": "S", "body": "B", "audience": "paused"}),
            422,
            "audience",
        ),
        (
            json!({"subject": "S", "body": "B", "colour": "red"}),
            422,
            "colour",
        ),
    ] {
        let r = post(body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let said = r.json();
        assert!(
            said["field"].as_str().is_some_and(|f| f.contains(field))
                || said["error"].as_str().is_some_and(|e| e.contains(field)),
            "{body}: {said}"
        );
    }
    assert!(
        db::broadcasts::list(&t.app.db, None)
            .await
            .unwrap()
            .is_empty()
    );
    let r = post(json!({"subject": "Fine", "body": "Hello {{ subscriber.first_name }}", "local_time": "09:30"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["broadcast"]["local_time"], "09:30");
    assert_eq!(r.json()["broadcast"]["state"], "scheduled");
}

async fn the_admin_page_previews_makes_shows_and_cancels_a_broadcast(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    add_test_admin(&t.app).await;
    let now = Utc::now();
    reader(&t, "ann@example.com", "UTC", now).await;
    let admin = sign_in(&t.app).await;
    let page = admin.get(&t.app, "/admin/broadcasts").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Taking the course now (1)"),
        "{}",
        page.body
    );
    let fields = [
        ("subject", "Lesson 4 was fixed"),
        (
            "body",
            "Hello {{ subscriber.first_name }}, lesson 4 had a broken link.",
        ),
        ("audience", "active"),
        ("when", "at"),
        ("at", "2099-01-01T09:00:00Z"),
    ];
    let preview = admin
        .post(&t.app, "/admin/broadcasts/preview", &fields)
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview
            .body
            .contains("Hello Sam, lesson 4 had a broken link."),
        "{}",
        preview.body
    );
    assert!(
        db::broadcasts::list(&t.app.db, None)
            .await
            .unwrap()
            .is_empty(),
        "a preview stores nothing"
    );
    let bad = admin
        .post(
            &t.app,
            "/admin/broadcasts",
            &[
                ("subject", "S"),
                ("body", "x"),
                ("when", "local"),
                ("local_time", "25:00"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("25:00"), "{}", bad.body);
    let made = admin.post(&t.app, "/admin/broadcasts", &fields).await;
    assert_eq!(made.status, 303, "{}", made.body);
    let shown = admin.get(&t.app, &made.location()).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown.body.contains("scheduled") && shown.body.contains("id=\"figures\""),
        "{}",
        shown.body
    );
    let id = db::broadcasts::list(&t.app.db, None).await.unwrap()[0].id;
    let cancelled = admin
        .post(&t.app, &format!("/admin/broadcasts/{id}/cancel"), &[])
        .await;
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(
        broadcasts::find(&t.app, id).await.unwrap().state,
        "cancelled"
    );
    outbox::tick(&t.app, at("2099-01-01T10:00:00Z"))
        .await
        .unwrap();
    assert!(
        deliveries_of(&t, id).await.is_empty(),
        "a cancelled broadcast is never queued"
    );
    let again = admin
        .post(&t.app, &format!("/admin/broadcasts/{id}/cancel"), &[])
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
}
