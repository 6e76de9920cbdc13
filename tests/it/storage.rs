//! Storage on both databases: migrations create every table, and the constraints the
//! outbox relies on hold.

use drip::db;

use crate::on_both_databases;
use crate::support::{Backend, TestApp, TestDb};

on_both_databases!(
    migrate_creates_every_table,
    migrating_twice_changes_nothing,
    a_lesson_cannot_be_queued_twice_for_one_enrollment,
    statuses_outside_their_enumeration_are_refused,
    addresses_are_unique_whatever_their_case,
);

const TABLES: [&str; 13] = [
    "admin_recovery_codes",
    "admin_sessions",
    "admins",
    "api_tokens",
    "bounces",
    "courses",
    "deliveries",
    "enrollments",
    "events",
    "lesson_revisions",
    "lessons",
    "replies",
    "subscribers",
];

async fn migrate_creates_every_table(backend: Backend) {
    let t = TestDb::new(backend).await;
    let db = t.connect().await;
    let tables = db.table_names().await.unwrap();
    for table in TABLES {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing from {tables:?}"
        );
    }
}

async fn migrating_twice_changes_nothing(backend: Backend) {
    let t = TestDb::new(backend).await;
    let db = t.connect().await;
    let before = db.table_names().await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(db.table_names().await.unwrap(), before);
}

async fn a_lesson_cannot_be_queued_twice_for_one_enrollment(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let now = crate::support::at("2026-05-04T06:00:00Z");
    let s = drip::subscriptions::NewSubscriber::parse(
        "q@example.com",
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
    let e = &db::enrollments::for_subscriber(&t.app.db, id)
        .await
        .unwrap()[0];
    let course = t.app.course(None).await.unwrap();
    let lesson = &db::lessons::list(&t.app.db, course.id).await.unwrap()[0];
    let row = db::deliveries::NewLesson {
        subscriber_id: id,
        enrollment_id: e.id,
        lesson_id: lesson.id,
        course_id: course.id,
    };
    let mut tx = t.app.db.begin_write().await.unwrap();
    assert_eq!(
        db::deliveries::enqueue_lessons(&mut tx, &[row], now.timestamp())
            .await
            .unwrap(),
        vec![e.id]
    );
    assert_eq!(
        db::deliveries::enqueue_lessons(&mut tx, &[row, row], now.timestamp())
            .await
            .unwrap(),
        Vec::<i64>::new()
    );
    tx.commit().await.unwrap();
    let raw = sqlx::query("INSERT INTO deliveries (subscriber_id, enrollment_id, lesson_id, kind, status, due_at, created_at) VALUES ($1, $2, $3, 'lesson', 'queued', 0, 0)")
        .bind(id)
        .bind(e.id)
        .bind(lesson.id)
        .execute(t.app.db.pool())
        .await;
    assert!(db::is_unique_violation(&anyhow::Error::from(
        raw.unwrap_err()
    )));
}

async fn statuses_outside_their_enumeration_are_refused(backend: Backend) {
    let t = TestDb::new(backend).await;
    let db = t.connect().await;
    let bad = sqlx::query("INSERT INTO subscribers (email, name, timezone, status, created_at, status_at) VALUES ('a@example.com', '', 'UTC', 'sleeping', 0, 0)")
        .execute(db.pool())
        .await;
    assert!(bad.is_err(), "a CHECK constraint refuses unknown statuses");
    let bad = sqlx::query("INSERT INTO admins (username, password_hash, role, created_at) VALUES ('a', 'x', 'boss', 0)")
        .execute(db.pool())
        .await;
    assert!(bad.is_err(), "a CHECK constraint refuses unknown roles");
}

async fn addresses_are_unique_whatever_their_case(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let now = chrono::Utc::now();
    let tz = drip::domain::Timezone::UTC;
    let a = drip::subscriptions::NewSubscriber::parse("Ann@Example.com", "", "UTC", tz).unwrap();
    drip::subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &a,
        false,
        "test",
        now,
    )
    .await
    .unwrap();
    let b = drip::subscriptions::NewSubscriber::parse("ann@example.COM", "", "UTC", tz).unwrap();
    let err = drip::subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &b,
        false,
        "test",
        now,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("email") && err.contains("already"), "{err}");
    assert!(
        db::subscribers::by_email(&t.app.db, "ANN@EXAMPLE.COM")
            .await
            .unwrap()
            .is_some()
    );
}
