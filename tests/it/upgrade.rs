//! A database made by the previous release upgrades in place: its migrations (kept byte for
//! byte in tests/fixtures/release-0c41de0) build the old schema, the old release's rows go
//! in, and today's `Db::migrate` takes it from there with nobody losing their place.

use std::path::Path;

use drip::curriculum;
use drip::db::{self, Db};

use crate::on_both_databases;
use crate::support::{Backend, TestDb, repo};

on_both_databases!(a_database_of_the_previous_release_upgrades_with_everyone_in_place);

/// Runs one statement; the old release's rows are written as its code wrote them.
async fn exec(db: &Db, sql: &str) {
    sqlx::query(sql)
        .execute(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn a_database_of_the_previous_release_upgrades_with_everyone_in_place(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = Db::connect(&test_db.url, 4).await.unwrap();
    let dir = match backend {
        Backend::Sqlite => "tests/fixtures/release-0c41de0/sqlite",
        Backend::Postgres => "tests/fixtures/release-0c41de0/postgres",
    };
    let old = sqlx::migrate::Migrator::new(Path::new(&repo(dir)))
        .await
        .unwrap();
    old.run(db.pool()).await.unwrap();

    // The old release: phases as a JSON object (name -> line), the order compiled in.
    exec(&db, "INSERT INTO courses (id, slug, title, description, from_name, send_window, phases, source, updated_at) VALUES \
        (1, 'rebuilding-trust', 'Rebuilding Trust', 'd', 'Rebuilding Trust', '0 0 8 * * *', \
        '{\"accountability\":\"See it.\",\"honesty\":\"Say it.\",\"practice\":\"Do it.\"}', '', 1)").await;
    for (id, slug, position, phase) in [
        (1, "before-we-begin", 1, "honesty"),
        (2, "a-clean-slate", 2, "honesty"),
        (3, "how-it-broke", 3, "accountability"),
        (4, "affection", 4, "practice"),
    ] {
        exec(&db, &format!("INSERT INTO lessons (id, course_id, slug, position, status, current_revision, file_name) VALUES \
            ({id}, 1, '{slug}', {position}, 'published', 1, '{position:02}-{slug}.md')")).await;
        exec(&db, &format!("INSERT INTO lesson_revisions (lesson_id, revision, title, subject, phase, after_days, prompt, body, source, author, created_at) VALUES \
            ({id}, 1, 'T{id}', 'S{id}', '{phase}', 1, 'P?', 'Body', 'src', 'file', 1)")).await;
    }
    exec(
        &db,
        "INSERT INTO subscribers (id, email, name, timezone, status, created_at, status_at) VALUES \
        (1, 'ann@example.com', 'Ann', 'Europe/Paris', 'active', 1, 1), \
        (2, 'bo@example.com', 'Bo', 'UTC', 'paused', 1, 1)",
    )
    .await;
    exec(&db, "INSERT INTO enrollments (id, subscriber_id, course_id, status, position, next_due_at, waiting_reply, last_sent_at, created_at, updated_at) VALUES \
        (1, 1, 1, 'active', 2, 1780000000, 0, 1779900000, 1, 1), \
        (2, 2, 1, 'paused', 3, NULL, 0, 1779800000, 1, 1)").await;
    if backend == Backend::Postgres {
        // The rows above were given their ids; new ones start after them.
        for table in [
            "courses",
            "lessons",
            "lesson_revisions",
            "subscribers",
            "enrollments",
        ] {
            exec(
                &db,
                &format!("ALTER TABLE {table} ALTER COLUMN id RESTART WITH 1000"),
            )
            .await;
        }
    }
    // An admin of the old release, signed in: after the upgrade an owner, still signed in.
    exec(&db, "INSERT INTO admins (id, username, email, password_hash, created_at) VALUES (1, 'old', 'old@example.org', 'x', 1)").await;
    exec(&db, "INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, created_at, last_seen_at) VALUES ('h', 1, 'c', 1, 1)").await;
    let before: Vec<(i64, String, i64, Option<i64>)> =
        sqlx::query_as("SELECT id, status, position, next_due_at FROM enrollments ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();

    // Today's migrations: the rewritten first one is accepted, the new ones run.
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();

    let course = db::courses::by_slug(&db, "rebuilding-trust")
        .await
        .unwrap()
        .expect("the course is still there");
    let names: Vec<&str> = course.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["honesty", "accountability", "practice"],
        "the order comes from where each phase's lessons stand"
    );
    let lines: Vec<&str> = course
        .phases
        .iter()
        .map(|p| p.description.as_str())
        .collect();
    assert_eq!(lines, ["Say it.", "See it.", "Do it."]);
    let lessons = db::lessons::list(&db, course.id).await.unwrap();
    assert_eq!(lessons.len(), 4);
    assert_eq!(lessons[2].content.phase.as_str(), "accountability");

    let after: Vec<(i64, String, i64, Option<i64>)> =
        sqlx::query_as("SELECT id, status, position, next_due_at FROM enrollments ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        after, before,
        "everyone keeps their status, place and next due time"
    );
    let ann = db::subscribers::by_email(&db, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ann.status.as_str(), ann.timezone.name()),
        ("active", "Europe/Paris")
    );

    let session = db::admins::session(&db, "h")
        .await
        .unwrap()
        .expect("the old session is still there");
    assert_eq!(session.role, drip::domain::Role::Owner);
    assert!(session.current && !session.totp, "{session:?}");
    assert_eq!(session.stage, drip::domain::SessionStage::Full);

    // No fixed list of phases is left in the schema: a phase of another course is stored.
    exec(&db, "INSERT INTO lesson_revisions (lesson_id, revision, title, subject, phase, after_days, prompt, body, source, author, created_at) VALUES \
        (4, 2, 'T', 'S', 'follow-up', 1, 'P?', 'Body', 'src', 'file', 2)").await;

    // The next sync of the shipped course writes its declared titles over the stand-ins.
    let shipped = curriculum::load_dir(&repo("lessons/rebuilding-trust")).unwrap();
    curriculum::sync_course(&db, &shipped, false, 3)
        .await
        .unwrap();
    let course = db::courses::by_slug(&db, "rebuilding-trust")
        .await
        .unwrap()
        .unwrap();
    let titles: Vec<&str> = course.phases.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Honesty", "Accountability", "Daily practice", "Follow-up"]
    );
}

on_both_databases!(a_single_course_database_of_the_last_release_becomes_a_many_course_one);

/// The release before many courses (tests/fixtures/release-2da26d6, migrations 0001–0010):
/// a subscriber's pause lived on the person as well as the enrollment, and mails named no
/// course. After the upgrade the state is the enrollment's, every person keeps their place
/// and next due time, and every mail names the course it belongs to.
async fn a_single_course_database_of_the_last_release_becomes_a_many_course_one(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = Db::connect(&test_db.url, 4).await.unwrap();
    let dir = match backend {
        Backend::Sqlite => "tests/fixtures/release-2da26d6/sqlite",
        Backend::Postgres => "tests/fixtures/release-2da26d6/postgres",
    };
    let old = sqlx::migrate::Migrator::new(Path::new(&repo(dir)))
        .await
        .unwrap();
    old.run(db.pool()).await.unwrap();
    exec(&db, "INSERT INTO courses (id, slug, title, description, from_name, send_window, phases, source, updated_at) VALUES \
        (1, 'rebuilding-trust', 'Rebuilding Trust', 'd', 'Rebuilding Trust', '0 0 8 * * *', \
        '[{\"name\":\"honesty\",\"title\":\"Honesty\",\"description\":\"\"}]', '', 1)").await;
    for (id, slug, position) in [
        (1, "before-we-begin", 1),
        (2, "a-clean-slate", 2),
        (3, "tell", 3),
    ] {
        exec(&db, &format!("INSERT INTO lessons (id, course_id, slug, position, status, current_revision, file_name) VALUES \
            ({id}, 1, '{slug}', {position}, 'published', 1, '{position:02}-{slug}.md')")).await;
        exec(&db, &format!("INSERT INTO lesson_revisions (lesson_id, revision, title, subject, phase, after_days, prompt, body, source, author, created_at) VALUES \
            ({id}, 1, 'T{id}', 'S{id}', 'honesty', 1, 'P?', 'Body', 'src', 'file', 1)")).await;
    }
    exec(
        &db,
        "INSERT INTO subscribers (id, email, name, timezone, status, created_at, status_at) VALUES \
        (1, 'ann@example.com', 'Ann', 'Europe/Paris', 'active', 1, 1), \
        (2, 'bo@example.com', 'Bo', 'UTC', 'paused', 1, 1), \
        (3, 'cy@example.com', 'Cy', 'UTC', 'pending', 1, 1)",
    )
    .await;
    exec(&db, "INSERT INTO enrollments (id, subscriber_id, course_id, status, position, next_due_at, waiting_reply, last_sent_at, created_at, updated_at) VALUES \
        (1, 1, 1, 'active', 2, 1780000000, 0, 1779900000, 1, 1), \
        (2, 2, 1, 'paused', 1, NULL, 0, 1779800000, 1, 1)").await;
    exec(&db, "INSERT INTO deliveries (id, subscriber_id, enrollment_id, lesson_id, kind, status, due_at, payload, created_at) VALUES \
        (1, 1, 1, 2, 'lesson', 'sent', 1779900000, '{}', 1779900000), \
        (2, 3, NULL, NULL, 'confirm', 'sent', 1779900000, '{}', 1779900000), \
        (3, 2, NULL, NULL, 'notice', 'sent', 1779800000, '{}', 1779800000)").await;
    // A reply and a bounce refer to the lesson mail: migration 15 rebuilds deliveries on
    // SQLite, and they must still point at it afterwards (ON DELETE SET NULL would not).
    exec(&db, "INSERT INTO replies (id, message_id, subscriber_id, delivery_id, lesson_id, kind, text, received_at) VALUES \
        (1, '<r1@example.com>', 1, 1, 2, 'reply', 'text', 1779950000)").await;
    exec(&db, "INSERT INTO bounces (id, subscriber_id, delivery_id, hard, created_at) VALUES (1, 1, 1, 0, 1779950000)").await;
    if backend == Backend::Postgres {
        for table in [
            "courses",
            "lessons",
            "lesson_revisions",
            "subscribers",
            "enrollments",
            "deliveries",
        ] {
            exec(
                &db,
                &format!("ALTER TABLE {table} ALTER COLUMN id RESTART WITH 1000"),
            )
            .await;
        }
    }
    let before: Vec<(i64, String, i64, Option<i64>)> =
        sqlx::query_as("SELECT id, status, position, next_due_at FROM enrollments ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();

    db.migrate().await.unwrap();
    db.migrate().await.unwrap();

    let after: Vec<(i64, String, i64, Option<i64>)> =
        sqlx::query_as("SELECT id, status, position, next_due_at FROM enrollments ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        after, before,
        "every enrollment keeps its status, place and next due time"
    );
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT email, status FROM subscribers ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            ("ann@example.com".to_owned(), "active".to_owned()),
            ("bo@example.com".to_owned(), "active".to_owned()),
            ("cy@example.com".to_owned(), "pending".to_owned()),
        ],
        "the pause is the enrollment's now; the person is confirmed"
    );
    let courses: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, course_id FROM deliveries ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        courses,
        [(1, Some(1)), (2, Some(1)), (3, Some(1))],
        "every mail names its course"
    );
    let refs: Vec<(Option<i64>,)> =
        sqlx::query_as("SELECT delivery_id FROM replies UNION ALL SELECT delivery_id FROM bounces")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(
        refs,
        [(Some(1),), (Some(1),)],
        "replies and bounces keep their mail"
    );
    if backend == Backend::Sqlite {
        let broken = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert!(
            broken.is_empty(),
            "no reference left dangling by the rebuild"
        );
        let (on,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(on, 1, "foreign keys are on again after the rebuild");
    }
    let kinds: Vec<(String,)> = sqlx::query_as("SELECT kind FROM deliveries ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(kinds.len(), 3, "every mail kept with its id");
    let bo = db::enrollments::for_subscriber(&db, 2).await.unwrap();
    assert_eq!(bo[0].status, drip::domain::EnrollmentStatus::Paused);
    assert_eq!(bo[0].pace(), None);
    let course = db::courses::by_slug(&db, "rebuilding-trust")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !course.is_evergreen() && course.from_address.is_empty() && course.removed_at.is_none()
    );
}
