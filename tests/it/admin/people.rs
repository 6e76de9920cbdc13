//! Subscribers in the admin UI: actions, CSV import and export, and the list at 100,000.

use axum::http::header;
use chrono::Utc;
use drip::db;

use super::*;
use crate::on_both_databases;
use crate::support::Backend;

on_both_databases!(
    subscriber_actions_pause_resume_move_and_erase,
    csv_import_reports_rejected_rows_and_export_lists_subscribers,
    the_csv_export_writes_formulas_as_text_and_imports_back_as_typed,
    the_subscriber_list_filters_and_pages_a_hundred_thousand_subscribers,
);

async fn subscriber_actions_pause_resume_move_and_erase(backend: Backend) {
    let t = admin_app(backend).await;
    let s = enrolled(&t, "bob@example.com", "Bob").await;
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let session = sign_in(&t.app).await;
    let page = session
        .get(&t.app, &format!("/admin/subscribers/{}", s.id))
        .await;
    assert!(
        page.body
            .contains("Lesson <strong>Before we begin</strong> (revision 1)"),
        "{}",
        page.body
    );
    let path = |a: &str| format!("/admin/subscribers/{}/{a}", s.id);
    assert_eq!(session.post(&t.app, &path("pause"), &[]).await.status, 303);
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, s.id)
            .await
            .unwrap()[0]
            .status
            .as_str(),
        "paused",
        "the course the admin works on is paused"
    );
    assert_eq!(session.post(&t.app, &path("pause"), &[]).await.status, 422);
    assert_eq!(session.post(&t.app, &path("resume"), &[]).await.status, 303);
    // Moving back before a lesson already received is refused; forward works.
    let r = session
        .post(&t.app, &path("move"), &[("lesson", "before-we-begin")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("never sent to anyone twice"), "{}", r.body);
    let r = session
        .post(&t.app, &path("move"), &[("lesson", "tell-the-whole-truth")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The moved-to lesson is due at once, and the daily limit (one lesson a day, the first
    // went today) holds it to tomorrow's window.
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    drip::outbox::tick(&t.app, Utc::now() + chrono::Duration::days(2))
        .await
        .unwrap();
    let sent: Vec<_> = db::deliveries::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind.as_str() == "lesson")
        .filter_map(|d| d.lesson)
        .collect();
    assert_eq!(sent, ["before-we-begin", "tell-the-whole-truth"]);
    // Erase needs the word typed.
    assert_eq!(session.post(&t.app, &path("erase"), &[]).await.status, 422);
    assert_eq!(
        session
            .post(&t.app, &path("erase"), &[("confirm", "erase")])
            .await
            .status,
        303
    );
    let gone = db::subscribers::by_id(&t.app.db, s.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((gone.status.as_str(), gone.name.as_str()), ("erased", ""));
    assert!(!gone.email.contains("bob"));
}

async fn the_csv_export_writes_formulas_as_text_and_imports_back_as_typed(backend: Backend) {
    // A name typed by a stranger must not run as a formula in the admin's spreadsheet.
    let name = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let t = admin_app(backend).await;
    enrolled(&t, "eve@example.com", name).await;
    enrolled(&t, "-minus@example.com", "+Plus").await;
    let session = sign_in(&t.app).await;
    let export = session.get(&t.app, "/admin/subscribers/export.csv").await;
    assert_eq!(export.status, 200);
    let mut cells = Vec::new();
    let mut reader = csv::Reader::from_reader(export.body.as_bytes());
    for record in reader.records() {
        cells.extend(record.unwrap().iter().map(str::to_owned));
    }
    assert!(cells.contains(&format!("'{name}")), "{cells:?}");
    assert!(
        cells.contains(&"'-minus@example.com".to_owned()),
        "{cells:?}"
    );
    for cell in &cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "{cell:?} would run as a formula"
        );
    }
    // The same file imported elsewhere gives back what was typed.
    let other = admin_app(backend).await;
    let report = drip::subscriptions::import::import_reader(
        &other.app,
        &crate::support::shipped(&other.app).await,
        export.body.as_bytes(),
        true,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(report.imported, 2, "{:?}", report.rejected);
    let eve = db::subscribers::by_email(&other.app.db, "eve@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(eve.name, name);
    let minus = db::subscribers::by_email(&other.app.db, "-minus@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(minus.name, "+Plus");
}

async fn csv_import_reports_rejected_rows_and_export_lists_subscribers(backend: Backend) {
    let t = admin_app(backend).await;
    let session = sign_in(&t.app).await;
    let csv = "email,name,timezone\ncarol@example.com,Carol,Europe/Paris\nnot-an-address,X,UTC\ndan@example.com,Dan,Mars/Olympus\n";
    let body = format!(
        "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--x\r\nContent-Disposition: form-data; name=\"confirmed\"\r\n\r\n1\r\n--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--x--\r\n",
        session.csrf
    );
    let r = send(
        &t.app,
        "127.0.0.1",
        "POST",
        "/admin/subscribers/import",
        Some(&session.cookie),
        Some("multipart/form-data; boundary=x"),
        None,
        body.into_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("<strong>1</strong> imported and enrolled"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("<strong>2</strong> rejected") && r.body.contains("timezone:"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("<td class=\"num\">3</td>") && r.body.contains("<td class=\"num\">4</td>"),
        "lines named: {}",
        r.body
    );
    assert_eq!(
        db::subscribers::by_email(&t.app.db, "carol@example.com")
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "active"
    );
    let export = session.get(&t.app, "/admin/subscribers/export.csv").await;
    assert_eq!(export.status, 200);
    assert!(
        export
            .headers
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        export.body.starts_with("email,name,timezone,status")
            && export
                .body
                .contains("carol@example.com,Carol,Europe/Paris,active"),
        "{}",
        export.body
    );
    // Filters and search on the list.
    let list = session
        .get(&t.app, "/admin/subscribers?q=CAR&status=active")
        .await;
    assert!(list.body.contains("carol@example.com"));
    let list = session
        .get(&t.app, "/admin/subscribers?status=paused")
        .await;
    assert!(!list.body.contains("carol@example.com"));
    let stats = session.get(&t.app, "/admin/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert!(
        stats.body.contains("<svg class=\"chart\"")
            && stats
                .body
                .contains("<td>Confirmed</td><td class=\"num\">1</td>"),
        "{}",
        stats.body
    );
}

async fn the_subscriber_list_filters_and_pages_a_hundred_thousand_subscribers(backend: Backend) {
    let t = admin_app(backend).await;
    let course = t.app.course(None).await.unwrap();
    let pool = t.app.db.pool();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
         INSERT INTO subscribers (email, name, timezone, status, created_at, status_at) \
         SELECT 'user' || i || '@example.com', 'Name ' || i, 'UTC', 'active', i, i FROM n",
    )
    .execute(pool)
    .await
    .unwrap();
    // A tenth of them have paused the course (the pause is the enrollment's).
    sqlx::query("INSERT INTO enrollments (subscriber_id, course_id, status, position, created_at, updated_at) SELECT id, $1, CASE WHEN id % 10 = 0 THEN 'paused' ELSE 'active' END, id % 7, 0, 0 FROM subscribers")
        .bind(course.id)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
    let session = sign_in(&t.app).await;
    let third = db::lessons::list(&t.app.db, course.id)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.position == 3)
        .unwrap()
        .slug;
    for uri in [
        "/admin/subscribers".to_owned(),
        "/admin/subscribers?before=50".into(),
        "/admin/subscribers?status=paused".into(),
        "/admin/subscribers?status=paused&before=20".into(),
        "/admin/subscribers?q=user99999".into(),
        "/admin/subscribers?q=NAME%2012345".into(),
        format!("/admin/subscribers?reached={third}&status=active"),
        format!("/admin/subscribers?reached={third}&before=30"),
    ] {
        let started = std::time::Instant::now();
        let r = session.get(&t.app, &uri).await;
        let took = started.elapsed();
        assert_eq!(r.status, 200, "{uri}: {}", r.body);
        assert!(r.body.contains("@example.com"), "{uri} lists someone");
        // Reported, not asserted: timings belong to benchmarks (the machines are noisy).
        eprintln!("{uri}: {took:?} at 100,000 subscribers");
    }
    let r = session.get(&t.app, "/admin/subscribers?q=user99999").await;
    assert!(r.body.contains("user99999@example.com") && !r.body.contains("user999990@example.com"));
    let r = session
        .get(&t.app, "/admin/subscribers?q=name%2012345")
        .await;
    assert!(
        r.body.contains("user12345@example.com"),
        "the name matches in any case"
    );
}
