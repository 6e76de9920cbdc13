//! The public pages: the course page and sign-up form, double opt-in that reveals nothing,
//! confirmation, unsubscribe, preferences, the journal, health and metrics.

use chrono::Utc;
use drip::db;
use drip::domain::Purpose;

use crate::on_both_databases;
use crate::support::{Backend, TestApp, find_url, path_of, request, text_part};

const FORM: &str = "application/x-www-form-urlencoded";

on_both_databases!(
    the_course_page_shows_the_course_and_a_form,
    subscribing_answers_the_same_for_new_pending_and_active_addresses,
    an_invalid_address_or_time_zone_reshows_the_form_with_the_field_error,
    json_sign_up_errors_name_the_field,
    confirming_twice_is_harmless_and_a_bad_token_is_a_404,
    the_unsubscribe_page_has_one_button_and_the_post_unsubscribes,
    preferences_pause_resume_and_change_the_time_zone,
    the_journal_shows_only_this_subscribers_answers,
    an_oversized_body_is_refused_with_413,
    health_and_metrics_answer,
);

async fn the_course_page_shows_the_course_and_a_form(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    // Two courses ship: the front page lists them, each has its own page and form.
    let (status, page) = request(&t.app, "GET", "/", None, "").await;
    assert_eq!(status, 200);
    for text in [
        "/courses/rebuilding-trust",
        "/courses/write-your-first-course",
        "Write Your First Course",
    ] {
        assert!(
            page.contains(text),
            "{text} missing from the list of courses"
        );
    }
    let (status, page) = request(&t.app, "GET", "/courses/rebuilding-trust", None, "").await;
    assert_eq!(status, 200);
    for text in [
        "name=\"course\" value=\"rebuilding-trust\"",
        "Rebuilding Trust",
        "Honesty",
        "Accountability",
        "Daily practice",
        "name=\"email\"",
        "name=\"timezone\"",
        "Europe&#x2f;Paris",
        "26 short lessons",
        "Follow-up",
    ] {
        assert!(page.contains(text), "{text} missing");
    }
}

async fn deliveries_of(t: &TestApp, email: &str) -> Vec<db::deliveries::DeliveryView> {
    let s = db::subscribers::by_email(&t.app.db, email)
        .await
        .unwrap()
        .unwrap();
    db::deliveries::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()
}

async fn subscribing_answers_the_same_for_new_pending_and_active_addresses(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let body = "email=new%40example.com&name=Nia&timezone=Europe%2FParis";
    let (s1, new) = request(&t.app, "POST", "/subscribe", Some(FORM), body).await;
    let (s2, pending) = request(&t.app, "POST", "/subscribe", Some(FORM), body).await;
    let s = db::subscribers::by_email(&t.app.db, "new@example.com")
        .await
        .unwrap()
        .unwrap();
    drip::subscriptions::confirm(
        &t.app,
        drip::subscriptions::ConfirmLink::Subscriber(s.id),
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    let (s3, active) = request(&t.app, "POST", "/subscribe", Some(FORM), body).await;
    assert_eq!((s1, s2, s3), (200, 200, 200));
    assert_eq!(new, pending);
    assert_eq!(
        new, active,
        "the page must not reveal whether an address is known"
    );
    // One confirmation mail, not three: a pending address gets at most one per 10 minutes.
    let confirms = deliveries_of(&t, "new@example.com")
        .await
        .into_iter()
        .filter(|d| d.kind.as_str() == "confirm")
        .count();
    assert_eq!(confirms, 1);
}

async fn an_invalid_address_or_time_zone_reshows_the_form_with_the_field_error(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (status, page) = request(
        &t.app,
        "POST",
        "/subscribe",
        Some(FORM),
        "email=bad%0D%0ABcc%3A+x%40evil.example&name=%3Cb%3EBo%3C%2Fb%3E&timezone=Mars%2FBase",
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("Email:") && page.contains("Time zone:"),
        "both fields named"
    );
    assert!(
        page.contains("&lt;b&gt;Bo&lt;"),
        "the name comes back escaped"
    );
    assert!(!page.contains("<b>Bo</b>"));
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM subscribers")
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing stored");
}

async fn json_sign_up_errors_name_the_field(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (status, body) = request(
        &t.app,
        "POST",
        "/subscribe",
        Some("application/json"),
        r#"{"email":"x@example.com","timezone":"Nowhere/Town"}"#,
    )
    .await;
    assert_eq!(status, 422);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["field"], "timezone");
    let (status, body) = request(
        &t.app,
        "POST",
        "/subscribe",
        Some("application/json"),
        r#"{"email":"x@example.com","name":"X","timezone":"Asia/Tokyo"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        db::subscribers::by_email(&t.app.db, "x@example.com")
            .await
            .unwrap()
            .unwrap()
            .timezone
            .name(),
        "Asia/Tokyo"
    );
}

async fn confirming_twice_is_harmless_and_a_bad_token_is_a_404(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    request(
        &t.app,
        "POST",
        "/subscribe",
        Some(FORM),
        "email=c%40example.com",
    )
    .await;
    let s = db::subscribers::by_email(&t.app.db, "c@example.com")
        .await
        .unwrap()
        .unwrap();
    let url = t.app.confirm_url(s.id);
    let path = crate::support::path_of(&url);
    // A link scanner follows the link, twice: a page with one button, and nothing changes.
    for _ in 0..2 {
        let (status, page) = request(&t.app, "GET", &path, None, "").await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("<form method=\"post\">"), "{page}");
        assert!(page.contains("Yes, start the course"), "{page}");
    }
    assert!(
        db::enrollments::for_subscriber(&t.app.db, s.id)
            .await
            .unwrap()
            .is_empty(),
        "a GET confirms nothing"
    );
    assert_eq!(
        db::subscribers::by_id(&t.app.db, s.id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "pending"
    );
    // The button does; a second press changes nothing.
    let (s1, first) = request(&t.app, "POST", &path, Some(FORM), "").await;
    let (s2, second) = request(&t.app, "POST", &path, Some(FORM), "").await;
    assert_eq!((s1, s2), (200, 200));
    assert!(
        first.contains("You're in") || first.contains("You&#x27;re in"),
        "{first}"
    );
    assert!(second.contains("Already confirmed"));
    let (_, after) = request(&t.app, "GET", &path, None, "").await;
    assert!(after.contains("Already confirmed"), "{after}");
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, s.id)
            .await
            .unwrap()
            .len(),
        1
    );
    // Truncated, altered, or made for another purpose.
    let unsubscribe_token = t.app.signer.sign(Purpose::Unsubscribe, s.id);
    for bad in [
        &path[..path.len() - 3],
        "/confirm/1-00000000000000000000000000000000",
        &format!("/confirm/{unsubscribe_token}"),
    ] {
        let (status, page) = request(&t.app, "GET", bad, None, "").await;
        assert_eq!(status, 404, "{bad}");
        assert!(page.contains("not valid"), "{page}");
    }
}

async fn the_unsubscribe_page_has_one_button_and_the_post_unsubscribes(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let s = drip::subscriptions::NewSubscriber::parse(
        "u@example.com",
        "",
        "UTC",
        drip::domain::Timezone::UTC,
    )
    .unwrap();
    let id = drip::subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &s,
        true,
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    let path = format!(
        "/unsubscribe/{}",
        t.app.signer.sign(Purpose::Unsubscribe, id)
    );
    let (status, page) = request(&t.app, "GET", &path, None, "").await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("<button").count(), 1);
    assert_eq!(
        db::subscribers::by_id(&t.app.db, id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "active",
        "GET changes nothing"
    );
    let (status, _) = request(&t.app, "POST", &path, Some(FORM), "").await;
    assert_eq!(status, 200);
    assert_eq!(
        db::subscribers::by_id(&t.app.db, id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "unsubscribed"
    );
}

async fn preferences_pause_resume_and_change_the_time_zone(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let s = drip::subscriptions::NewSubscriber::parse(
        "p@example.com",
        "",
        "UTC",
        drip::domain::Timezone::UTC,
    )
    .unwrap();
    let id = drip::subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &s,
        true,
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    let path = format!(
        "/preferences/{}",
        t.app.signer.sign(Purpose::Preferences, id)
    );
    let status_of = |t: &TestApp| {
        let db = t.app.db.clone();
        async move { db::subscribers::by_id(&db, id).await.unwrap().unwrap() }
    };
    let course_status = |t: &TestApp| {
        let db = t.app.db.clone();
        async move {
            db::enrollments::for_subscriber(&db, id).await.unwrap()[0]
                .status
                .as_str()
                .to_owned()
        }
    };
    let (status, page) = request(
        &t.app,
        "POST",
        &path,
        Some(FORM),
        "action=pause&course=rebuilding-trust",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(course_status(&t).await, "paused");
    assert_eq!(
        status_of(&t).await.status.as_str(),
        "active",
        "the person is still with us"
    );
    assert_eq!(
        request(
            &t.app,
            "POST",
            &path,
            Some(FORM),
            "action=resume&course=rebuilding-trust"
        )
        .await
        .0,
        200
    );
    assert_eq!(course_status(&t).await, "active");
    // Their own pacing: Monday and Thursday at 19:00, then back to the course's window.
    let (status, page) = request(
        &t.app,
        "POST",
        &path,
        Some(FORM),
        "action=pace&course=rebuilding-trust&day=Mon&day=Thu&hour=19",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let e = &db::enrollments::for_subscriber(&t.app.db, id)
        .await
        .unwrap()[0];
    assert_eq!(e.pace().map(|p| (p.days(), p.hour())), Some((0b1001, 19)));
    let (status, page) = request(
        &t.app,
        "POST",
        &path,
        Some(FORM),
        "action=pace&course=rebuilding-trust&hour=19",
    )
    .await;
    assert_eq!(status, 422, "no day chosen: {page}");
    assert!(page.contains("at least one day"), "{page}");
    let (status, _) = request(
        &t.app,
        "POST",
        &path,
        Some(FORM),
        "action=pause&course=write-your-first-course",
    )
    .await;
    assert_eq!(status, 422, "a course they do not take");
    let (status, page) = request(
        &t.app,
        "POST",
        &path,
        Some(FORM),
        "action=timezone&timezone=Atlantis%2FCentral",
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("Time zone:"));
    assert_eq!(
        request(
            &t.app,
            "POST",
            &path,
            Some(FORM),
            "action=timezone&timezone=Pacific%2FAuckland"
        )
        .await
        .0,
        200
    );
    assert_eq!(status_of(&t).await.timezone.name(), "Pacific/Auckland");
}

async fn the_journal_shows_only_this_subscribers_answers(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let now = crate::support::at("2026-05-04T06:00:00Z");
    let mut ids = Vec::new();
    for (email, answer) in [
        ("j1@example.com", "My own <i>answer</i>"),
        ("j2@example.com", "Someone else's answer"),
    ] {
        let s = drip::subscriptions::NewSubscriber::parse(
            email,
            "",
            "UTC",
            drip::domain::Timezone::UTC,
        )
        .unwrap();
        let id = drip::subscriptions::add(
            &t.app,
            &crate::support::shipped(&t.app).await,
            &s,
            true,
            "test",
            now,
        )
        .await
        .unwrap();
        drip::outbox::tick(&t.app, now).await.unwrap();
        let d = db::deliveries::for_subscriber(&t.app.db, id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.kind.as_str() == "lesson")
            .unwrap();
        let raw = format!(
            "From: {email}\r\nTo: {}\r\nSubject: Re: hi\r\nMessage-ID: <{email}.r@x>\r\nContent-Type: text/plain\r\n\r\n{answer}\r\n",
            t.app.reply_address(d.id)
        );
        drip::inbound::ingest(&t.app, raw.as_bytes(), false, now)
            .await
            .unwrap();
        ids.push(id);
    }
    // The link in every lesson mail opens no answers (mails get forwarded): it offers to
    // mail a fresh link to the subscriber's own address.
    let gate = format!("/journal/{}", t.app.signer.sign(Purpose::Journal, ids[0]));
    let (status, page) = request(&t.app, "GET", &gate, None, "").await;
    assert_eq!(status, 200);
    assert!(!page.contains("My own"), "{page}");
    assert!(page.contains(&format!("action=\"{gate}\"")), "{page}");
    let (status, page) = request(&t.app, "POST", &gate, None, "").await;
    assert_eq!(status, 200);
    assert!(page.contains("Check your inbox"));
    // Asking again at once queues nothing more.
    request(&t.app, "POST", &gate, None, "").await;
    drip::outbox::tick(&t.app, chrono::Utc::now())
        .await
        .unwrap();
    let mails: Vec<_> = t
        .outbox()
        .into_iter()
        .filter(|(name, _)| name.contains("journal-link"))
        .collect();
    assert_eq!(mails.len(), 1, "one journal link mail");
    let (_, mail) = &mails[0];
    assert!(
        mail.contains("To: j1@example.com"),
        "to the subscriber's own address"
    );
    let link = find_url(&text_part(mail), "http").expect("a link in the mail");
    let path = path_of(&link);
    assert!(path.starts_with("/journal/open/"), "{path}");

    // Mail scanners open the link: a page with one button, and no answer on it.
    for _ in 0..2 {
        let (status, page) = request(&t.app, "GET", &path, None, "").await;
        assert_eq!(status, 200);
        assert!(!page.contains("My own"), "{page}");
        assert_eq!(page.matches("<button").count(), 1, "{page}");
        assert!(
            page.contains(&format!("<form method=\"post\" action=\"{path}\">")),
            "{page}"
        );
    }
    let (status, page) = request(&t.app, "POST", &path, Some(FORM), "").await;
    assert_eq!(status, 200);
    assert!(page.contains("My own &lt;i&gt;answer&lt;"), "escaped");
    assert!(!page.contains("<i>answer"));
    assert!(!page.contains("Someone else"));
    // Its downloads are buttons too.
    assert!(page.contains("name=\"download\" value=\"1\""), "{page}");
    let (status, md) = request(&t.app, "POST", &path, Some(FORM), "download=1").await;
    assert_eq!(status, 200);
    assert!(md.contains("My own <i>answer</i>") && md.contains("Before we begin"));
    // Neither a reply token, nor the mail's permanent link, nor an expired link opens it.
    let expired = t
        .app
        .journal_access_url(ids[0], chrono::Utc::now().timestamp() - 1);
    let (status, page) = request(&t.app, "GET", &path_of(&expired), None, "").await;
    assert_eq!(status, 404);
    assert!(page.contains("expired"), "{page}");
    for token in [
        t.app.signer.sign(Purpose::Reply, ids[0]),
        t.app.signer.sign(Purpose::Journal, ids[0]),
    ] {
        for method in ["GET", "POST"] {
            let (status, _) =
                request(&t.app, method, &format!("/journal/open/{token}"), None, "").await;
            assert_eq!(status, 404, "{method}");
        }
    }
    let (status, _) = request(
        &t.app,
        "GET",
        &format!("/journal/{}", t.app.signer.sign(Purpose::Reply, ids[0])),
        None,
        "",
    )
    .await;
    assert_eq!(status, 404);
}

async fn an_oversized_body_is_refused_with_413(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let huge = format!("email=a%40example.com&name={}", "x".repeat(200 * 1024));
    let (status, _) = request(&t.app, "POST", "/subscribe", Some(FORM), &huge).await;
    assert_eq!(status, 413);
}

async fn health_and_metrics_answer(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    assert_eq!(request(&t.app, "GET", "/healthz", None, "").await.0, 200);
    request(
        &t.app,
        "POST",
        "/subscribe",
        Some(FORM),
        "email=m%40example.com",
    )
    .await;
    let (status, text) = request(&t.app, "GET", "/metrics", None, "").await;
    assert_eq!(status, 200);
    for metric in [
        "drip_deliveries{status=\"queued\"} 1",
        "drip_queue_depth",
        "drip_queue_oldest_age_seconds",
        "drip_send_duration_seconds_bucket",
        "drip_record_commits_total",
        "drip_record_mails_total",
        "drip_record_seconds_total",
        "drip_smtp_errors_total{class=\"5xx\"}",
        "drip_subscribers{status=\"pending\"} 1",
    ] {
        assert!(text.contains(metric), "{metric} missing from\n{text}");
    }
}
