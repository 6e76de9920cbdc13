//! Many courses in one instance (issue 13): a person in two courses gets every lesson of
//! each, in order, never two on one local day; leaving one by its one-click link leaves the
//! other running; PAUSE and NEXT act on the course they answer; an evergreen course reaches
//! those who finished; `drip simulate` agrees with the scheduler.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use drip::db;
use drip::domain::EnrollmentStatus;
use drip::outbox;
use drip::subscriptions::{self, NewSubscriber};

use crate::on_both_databases;
use crate::support::{Backend, TestApp, at, repo, request};

on_both_databases!(
    a_person_in_two_courses_gets_every_lesson_of_each_in_order_never_two_on_one_day,
    leaving_one_course_by_its_one_click_link_leaves_the_other_running,
    pause_and_next_replies_act_on_the_course_they_answer,
    an_evergreen_course_delivers_a_lesson_added_after_someone_finished,
    simulate_and_the_scheduler_agree_on_every_send,
    a_signup_names_its_course_and_an_unknown_one_is_refused,
    a_course_started_from_the_admin_page_or_the_api_is_a_folder_of_its_own,
    an_import_into_a_second_course_adds_the_people_known_from_the_first,
);

/// A second small course with phases of its own; its first lesson goes at once, as the
/// small course's does, so two sign-ups on one day meet the daily limit.
fn write_second_course(root: &Path) {
    let dir = root.join("second-course");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("course.toml"),
        "title = \"A Second Course\"\ndescription = \"Three short lessons.\"\nfrom = \"Second <second@example.org>\"\nsend_window = \"0 0 9 * * *\"\n\n[[phases]]\nname = \"start\"\ntitle = \"Start\"\n\n[[phases]]\nname = \"finish\"\ntitle = \"Finish\"\n",
    )
    .unwrap();
    for (n, slug, phase, days, window) in [
        (1, "hello", "start", 0, "send_window = \"immediate\"\n"),
        (2, "middle", "start", 1, ""),
        (3, "goodbye", "finish", 1, ""),
    ] {
        std::fs::write(
            dir.join(format!("{n:02}-{slug}.md")),
            format!("+++\ntitle = \"{slug}\"\nsubject = \"Second {n}\"\nphase = \"{phase}\"\nafter_days = {days}\n{window}prompt = \"What did you notice?\"\n+++\nHello {{{{ subscriber.first_name }}}}, lesson {n}.\n"),
        )
        .unwrap();
    }
}

/// A lessons folder with the small fixture course and the second course.
fn two_courses() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let small = root.path().join("small-course");
    std::fs::create_dir_all(&small).unwrap();
    for e in std::fs::read_dir(repo("tests/fixtures/lessons/small-course")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), small.join(e.file_name())).unwrap();
    }
    write_second_course(root.path());
    root
}

async fn app_with(
    backend: Backend,
    root: &Path,
    tweak: impl FnOnce(&mut drip::config::Config),
) -> TestApp {
    let root = root.to_owned();
    TestApp::build(backend, None, move |c| {
        c.course.lessons_dir = root;
        c.course.default = String::new();
        tweak(c);
    })
    .await
}

fn person(email: &str) -> NewSubscriber {
    NewSubscriber::parse(
        email,
        "Ann",
        "Europe/Paris",
        drip::domain::Timezone::parse("UTC").unwrap(),
    )
    .unwrap()
}

async fn course(t: &TestApp, slug: &str) -> db::courses::CourseRow {
    t.app.course(Some(slug)).await.unwrap()
}

/// Ticks at every moment something falls due, from `from` to `to`.
async fn tick_through(t: &TestApp, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut now = from;
    while now <= to {
        outbox::tick(&t.app, now).await.unwrap();
        match db::deliveries::next_wakeup(&t.app.db).await.unwrap() {
            Some(next) if next <= to.timestamp() => {
                now = DateTime::from_timestamp(next.max(now.timestamp() + 1), 0).unwrap()
            }
            _ => break,
        }
    }
}

/// (course, lesson, sent at) of every lesson mail that left, in send order.
async fn lessons_sent(t: &TestApp, email: &str) -> Vec<(String, String, i64)> {
    let s = db::subscribers::by_email(&t.app.db, email)
        .await
        .unwrap()
        .unwrap();
    let mut out: Vec<_> = db::deliveries::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == drip::domain::DeliveryKind::Lesson && d.sent_at.is_some())
        .map(|d| (d.course.unwrap(), d.lesson.unwrap(), d.sent_at.unwrap()))
        .collect();
    out.sort_by_key(|(_, _, t)| *t);
    out
}

async fn enrollment(t: &TestApp, email: &str, slug: &str) -> db::enrollments::EnrollmentRow {
    let s = db::subscribers::by_email(&t.app.db, email)
        .await
        .unwrap()
        .unwrap();
    let c = course(t, slug).await;
    db::enrollments::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.course_id == c.id)
        .unwrap()
}

async fn a_person_in_two_courses_gets_every_lesson_of_each_in_order_never_two_on_one_day(
    backend: Backend,
) {
    let root = two_courses();
    let t = app_with(backend, root.path(), |_| {}).await;
    let t0 = at("2026-03-02T09:00:00Z"); // 10:00 in Paris, a Monday
    let small = course(&t, "small-course").await;
    let second = course(&t, "second-course").await;
    for c in [&small, &second] {
        subscriptions::add(&t.app, c, &person("ann@example.com"), true, "test", t0)
            .await
            .unwrap();
    }
    tick_through(&t, t0, t0 + Duration::days(20)).await;
    let sent = lessons_sent(&t, "ann@example.com").await;
    for (slug, lessons) in [
        ("small-course", vec!["welcome", "look-back", "keep-going"]),
        ("second-course", vec!["hello", "middle", "goodbye"]),
    ] {
        let got: Vec<&str> = sent
            .iter()
            .filter(|(c, _, _)| c == slug)
            .map(|(_, l, _)| l.as_str())
            .collect();
        assert_eq!(got, lessons, "every lesson of {slug}, in order: {sent:?}");
    }
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let mut days: Vec<_> = sent
        .iter()
        .map(|(_, _, t)| {
            DateTime::from_timestamp(*t, 0)
                .unwrap()
                .with_timezone(&paris)
                .date_naive()
        })
        .collect();
    days.dedup();
    assert_eq!(
        days.len(),
        sent.len(),
        "never two lessons on one local day: {sent:?}"
    );
    // Each course's mail speaks with its own sender and names its list.
    let mails = t.outbox();
    let second_mail = &mails
        .iter()
        .find(|(n, _)| n.contains("lesson-hello"))
        .unwrap()
        .1;
    assert!(
        second_mail.contains("From: Second <second@example.org>"),
        "{second_mail}"
    );
    assert!(
        second_mail.contains("List-Id: <second-course.example.org>"),
        "{second_mail}"
    );
    assert!(second_mail.contains("X-Drip-Course: second-course"));

    // Without a limit, the two first lessons share the first day.
    let root2 = two_courses();
    let t = app_with(backend, root2.path(), |c| {
        c.schedule.max_lessons_per_day = 0
    })
    .await;
    for slug in ["small-course", "second-course"] {
        let c = course(&t, slug).await;
        subscriptions::add(&t.app, &c, &person("bo@example.com"), true, "test", t0)
            .await
            .unwrap();
    }
    tick_through(&t, t0, t0 + Duration::hours(1)).await;
    assert_eq!(lessons_sent(&t, "bo@example.com").await.len(), 2);
}

async fn leaving_one_course_by_its_one_click_link_leaves_the_other_running(backend: Backend) {
    let root = two_courses();
    let t = app_with(backend, root.path(), |_| {}).await;
    let t0 = at("2026-03-02T09:00:00Z");
    for slug in ["small-course", "second-course"] {
        let c = course(&t, slug).await;
        subscriptions::add(&t.app, &c, &person("cy@example.com"), true, "test", t0)
            .await
            .unwrap();
    }
    tick_through(&t, t0, t0 + Duration::hours(1)).await;
    let (_, mail) = t
        .outbox()
        .into_iter()
        .find(|(n, _)| n.contains("lesson-welcome"))
        .expect("the small course's first lesson");
    let header = mail
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe: "))
        .unwrap()
        .to_owned();
    let url = crate::support::find_url(&header, "http").unwrap();
    let (status, page) = request(
        &t.app,
        "POST",
        &crate::support::path_of(&url),
        Some("application/x-www-form-urlencoded"),
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Stop all mail from this site"), "{page}");
    assert_eq!(
        enrollment(&t, "cy@example.com", "small-course")
            .await
            .status,
        EnrollmentStatus::Stopped
    );
    assert_eq!(
        enrollment(&t, "cy@example.com", "second-course")
            .await
            .status,
        EnrollmentStatus::Active
    );
    let s = db::subscribers::by_email(&t.app.db, "cy@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status.as_str(), "active", "the person is still with us");
    tick_through(&t, t0, t0 + Duration::days(10)).await;
    let sent = lessons_sent(&t, "cy@example.com").await;
    assert!(
        sent.iter().filter(|(c, _, _)| c == "small-course").count() == 1,
        "nothing more of the course left: {sent:?}"
    );
    assert_eq!(
        sent.iter().filter(|(c, _, _)| c == "second-course").count(),
        3,
        "the other course goes on to its end: {sent:?}"
    );
}

/// A reply to delivery `id`, to its signed reply address.
fn reply_to_delivery(t: &TestApp, delivery: i64, body: &str) -> String {
    format!(
        "From: Dee <dee@example.com>\r\nTo: {}\r\nSubject: Re: lesson\r\nMessage-ID: <r{delivery}.{}@mail.example>\r\n\
         Date: Mon, 02 Mar 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        t.app.reply_address(delivery),
        body.len()
    )
}

async fn last_lesson_delivery(t: &TestApp, email: &str, slug: &str) -> i64 {
    let e = enrollment(t, email, slug).await;
    let (id,): (i64,) = sqlx::query_as(
        "SELECT MAX(id) FROM deliveries WHERE enrollment_id = $1 AND kind = 'lesson'",
    )
    .bind(e.id)
    .fetch_one(t.app.db.pool())
    .await
    .unwrap();
    id
}

async fn pause_and_next_replies_act_on_the_course_they_answer(backend: Backend) {
    let root = two_courses();
    let t = app_with(backend, root.path(), |c| c.schedule.max_lessons_per_day = 0).await;
    let t0 = at("2026-03-02T09:00:00Z");
    for slug in ["small-course", "second-course"] {
        let c = course(&t, slug).await;
        subscriptions::add(&t.app, &c, &person("dee@example.com"), true, "test", t0)
            .await
            .unwrap();
    }
    tick_through(&t, t0, t0 + Duration::hours(1)).await;
    let small = last_lesson_delivery(&t, "dee@example.com", "small-course").await;
    let raw = reply_to_delivery(&t, small, "PAUSE");
    let o = drip::inbound::ingest(&t.app, raw.as_bytes(), true, t0)
        .await
        .unwrap();
    let json = serde_json::to_value(&o).unwrap();
    assert_eq!(json["match"]["course"], "small-course", "{json}");
    assert_eq!(json["command"], "pause");
    drip::inbound::ingest(&t.app, raw.as_bytes(), false, t0)
        .await
        .unwrap();
    assert_eq!(
        enrollment(&t, "dee@example.com", "small-course")
            .await
            .status,
        EnrollmentStatus::Paused
    );
    assert_eq!(
        enrollment(&t, "dee@example.com", "second-course")
            .await
            .status,
        EnrollmentStatus::Active
    );

    // NEXT on the second course: its next lesson goes now, a day early.
    let second = last_lesson_delivery(&t, "dee@example.com", "second-course").await;
    let before = enrollment(&t, "dee@example.com", "second-course").await;
    assert!(
        before.next_due_at.unwrap() > t0.timestamp() + 3600,
        "the next one was for tomorrow"
    );
    let t1 = t0 + Duration::hours(2);
    drip::inbound::ingest(
        &t.app,
        reply_to_delivery(&t, second, "Next").as_bytes(),
        false,
        t1,
    )
    .await
    .unwrap();
    tick_through(&t, t1, t1 + Duration::minutes(1)).await;
    let sent = lessons_sent(&t, "dee@example.com").await;
    assert_eq!(
        sent.iter()
            .filter(|(c, _, _)| c == "second-course")
            .map(|(_, l, _)| l.as_str())
            .collect::<Vec<_>>(),
        ["hello", "middle"],
        "NEXT sent the second course's next lesson at once: {sent:?}"
    );
    assert_eq!(
        sent.iter().filter(|(c, _, _)| c == "small-course").count(),
        1,
        "the paused course sent nothing: {sent:?}"
    );
    // A forged NEXT (matched by sender only) does nothing.
    let forged = "From: Dee <dee@example.com>\r\nTo: someone@example.org\r\nSubject: Re\r\nMessage-ID: <forged@x>\r\nContent-Type: text/plain\r\n\r\nNEXT\r\n";
    let o = drip::inbound::ingest(&t.app, forged.as_bytes(), true, t1)
        .await
        .unwrap();
    assert_eq!(o.command, None);
}

async fn an_evergreen_course_delivers_a_lesson_added_after_someone_finished(backend: Backend) {
    let root = two_courses();
    let toml = root.path().join("second-course/course.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("evergreen = true\n{text}")).unwrap();
    let t = app_with(backend, root.path(), |_| {}).await;
    let t0 = at("2026-03-02T09:00:00Z");
    let c = course(&t, "second-course").await;
    subscriptions::add(&t.app, &c, &person("eve@example.com"), true, "test", t0)
        .await
        .unwrap();
    tick_through(&t, t0, t0 + Duration::days(10)).await;
    assert_eq!(lessons_sent(&t, "eve@example.com").await.len(), 3);
    assert_eq!(
        enrollment(&t, "eve@example.com", "second-course")
            .await
            .status,
        EnrollmentStatus::Completed
    );

    // The author adds a lesson; the sync reaches the person who had finished.
    std::fs::write(
        root.path().join("second-course/04-later.md"),
        "+++\ntitle = \"later\"\nsubject = \"Second 4\"\nphase = \"finish\"\nafter_days = 1\nprompt = \"And now?\"\n+++\nA lesson written later.\n",
    )
    .unwrap();
    let t1 = t0 + Duration::days(30);
    t.app.sync_lessons(false, t1, None).await.unwrap();
    assert_eq!(
        enrollment(&t, "eve@example.com", "second-course")
            .await
            .status,
        EnrollmentStatus::Active
    );
    tick_through(&t, t1, t1 + Duration::days(2)).await;
    let sent = lessons_sent(&t, "eve@example.com").await;
    assert_eq!(sent.last().unwrap().1, "later", "{sent:?}");

    // A course that is not evergreen leaves finished people finished.
    let s = course(&t, "small-course").await;
    subscriptions::add(&t.app, &s, &person("fay@example.com"), true, "test", t1)
        .await
        .unwrap();
    tick_through(&t, t1, t1 + Duration::days(10)).await;
    std::fs::write(
        root.path().join("small-course/04-later.md"),
        "+++\ntitle = \"later\"\nsubject = \"Small 4\"\nphase = \"act\"\nafter_days = 1\nprompt = \"And now?\"\n+++\nA lesson written later.\n",
    )
    .unwrap();
    t.app
        .sync_lessons(false, t1 + Duration::days(11), None)
        .await
        .unwrap();
    assert_eq!(
        enrollment(&t, "fay@example.com", "small-course")
            .await
            .status,
        EnrollmentStatus::Completed
    );
}

async fn simulate_and_the_scheduler_agree_on_every_send(backend: Backend) {
    // Lesson 2 of this course is due the same day as lesson 1: the daily limit moves it,
    // and simulate must show the same move the scheduler makes.
    let root = two_courses();
    let second = root.path().join("second-course/02-middle.md");
    let text = std::fs::read_to_string(&second)
        .unwrap()
        .replace("after_days = 1", "after_days = 0");
    std::fs::write(&second, text).unwrap();
    let t = app_with(backend, root.path(), |_| {}).await;
    let t0 = at("2026-03-02T07:00:00Z"); // 08:00 in Paris: lesson 2's 09:00 window is today
    let c = course(&t, "second-course").await;
    subscriptions::add(&t.app, &c, &person("gil@example.com"), true, "test", t0)
        .await
        .unwrap();
    tick_through(&t, t0, t0 + Duration::days(10)).await;
    let sent: Vec<i64> = lessons_sent(&t, "gil@example.com")
        .await
        .iter()
        .map(|(_, _, t)| *t)
        .collect();

    let config = t.dir.path().join("config.toml");
    let mut cfg = std::fs::read_to_string(repo("config.toml")).unwrap();
    cfg = cfg.replacen(
        "url = \"sqlite://drip.db\"",
        &format!("url = {:?}", t.db.url),
        1,
    );
    cfg = cfg.replacen(
        "lessons_dir = \"lessons\"",
        &format!("lessons_dir = {:?}", root.path().display().to_string()),
        1,
    );
    cfg = cfg.replacen(
        "templates_dir = \"templates\"",
        &format!(
            "templates_dir = {:?}",
            repo("templates").display().to_string()
        ),
        1,
    );
    std::fs::write(&config, cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drip"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "simulate",
            "--course",
            "second-course",
            "--timezone",
            "Europe/Paris",
            "--now",
            "2026-03-02T07:00:00Z",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let simulated: Vec<i64> = rows
        .iter()
        .map(|r| {
            DateTime::parse_from_rfc3339(r["due_at"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    assert_eq!(simulated, sent, "simulate: {rows:#?}");
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let second_day = DateTime::from_timestamp(sent[1], 0)
        .unwrap()
        .with_timezone(&paris);
    assert_eq!(
        second_day.format("%Y-%m-%d %H:%M").to_string(),
        "2026-03-03 09:00",
        "moved to the next day's window"
    );

    // Without --course, with two courses and no default, the command lists the slugs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drip"))
        .args(["--config", config.to_str().unwrap(), "simulate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("small-course") && err.contains("second-course"),
        "{err}"
    );
}

async fn a_signup_names_its_course_and_an_unknown_one_is_refused(backend: Backend) {
    let root = two_courses();
    let t = app_with(backend, root.path(), |_| {}).await;
    let (status, page) = request(&t.app, "GET", "/", None, "").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("/courses/small-course") && page.contains("/courses/second-course"),
        "{page}"
    );
    let (status, page) = request(&t.app, "GET", "/courses/second-course", None, "").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("name=\"course\" value=\"second-course\""),
        "{page}"
    );

    let (status, body) = request(
        &t.app,
        "POST",
        "/subscribe",
        Some("application/json"),
        r#"{"email": "hal@example.com", "course": "no-such-course"}"#,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["field"], "course", "{json}");
    assert!(
        db::subscribers::by_email(&t.app.db, "hal@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // A confirmed person who signs up for a second course confirms that one by its own mail.
    let now = Utc::now();
    let small = course(&t, "small-course").await;
    subscriptions::add(
        &t.app,
        &small,
        &person("hal@example.com"),
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    let answer_known = request(
        &t.app,
        "POST",
        "/subscribe",
        Some("application/json"),
        r#"{"email": "hal@example.com", "course": "second-course"}"#,
    )
    .await;
    let answer_new = request(
        &t.app,
        "POST",
        "/subscribe",
        Some("application/json"),
        r#"{"email": "ida@example.com", "course": "second-course"}"#,
    )
    .await;
    assert_eq!(
        answer_known, answer_new,
        "the answer never tells whether an address is known"
    );
    let hal = db::subscribers::by_email(&t.app.db, "hal@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        hal.status.as_str(),
        "active",
        "still taking the first course"
    );
    // The clock after the sign-ups: their mails are due from when they were made.
    outbox::tick(&t.app, Utc::now()).await.unwrap();
    let confirm = t
        .outbox()
        .into_iter()
        .filter(|(n, m)| n.contains("confirm") && m.contains("hal@example.com"))
        .map(|(_, m)| m)
        .next()
        .expect("a confirmation for the second course");
    assert!(confirm.contains("A Second Course"), "{confirm}");
    let url = crate::support::find_url(&crate::support::text_part(&confirm), "http").unwrap();
    let path = crate::support::path_of(&url);
    for _ in 0..2 {
        let (status, _) = request(&t.app, "GET", &path, None, "").await;
        assert_eq!(status, 200);
    }
    let e = db::enrollments::for_subscriber(&t.app.db, hal.id)
        .await
        .unwrap();
    assert_eq!(e.len(), 1, "two GETs of the link confirm nothing");
    let (status, page) = request(&t.app, "POST", &path, None, "").await;
    assert_eq!(status, 200, "{page}");
    let e = db::enrollments::for_subscriber(&t.app.db, hal.id)
        .await
        .unwrap();
    assert_eq!(e.len(), 2, "the button enrols them in the second course");
}

async fn a_course_started_from_the_admin_page_or_the_api_is_a_folder_of_its_own(backend: Backend) {
    use crate::admin::{USER, add_test_admin, send, sign_in};
    let root = two_courses();
    let t = app_with(backend, root.path(), |c| {
        c.course.default = "small-course".into()
    })
    .await;
    add_test_admin(&t.app).await;
    let admin = sign_in(&t.app).await;
    let before = db::courses::list(&t.app.db).await.unwrap().len();

    // A phase name that is not a slug: the field is named and nothing is made.
    let r = admin
        .post(
            &t.app,
            "/admin/courses",
            &[
                ("title", "Calm Mornings"),
                ("phases", "Wake Up Early: Wake up"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("phase name"), "{}", r.body);
    assert!(!root.path().join("calm-mornings").exists());
    assert_eq!(db::courses::list(&t.app.db).await.unwrap().len(), before);

    let r = admin
        .post(
            &t.app,
            "/admin/courses",
            &[
                ("title", "Calm Mornings"),
                ("description", "Five quiet minutes, before the day starts."),
                (
                    "phases",
                    "wake: Wake up - the first minutes\nbreathe: Breathe",
                ),
                ("language", "fr"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/admin/lessons/new");
    assert!(
        r.cookies()
            .iter()
            .any(|c| c.starts_with("drip_course=calm-mornings;")),
        "{:?}",
        r.cookies()
    );
    // The folder is the course: the file parser reads it back as the form said.
    let dir = drip::curriculum::load_dir(&root.path().join("calm-mornings")).unwrap();
    assert_eq!(dir.course.title, "Calm Mornings");
    assert_eq!(dir.course.language.as_str(), "fr");
    let phases: Vec<_> = dir
        .course
        .phases
        .iter()
        .map(|p| p.name.as_str().to_owned())
        .collect();
    assert_eq!(phases, ["wake", "breathe"]);
    let calm = course(&t, "calm-mornings").await;
    assert_eq!(
        calm.description,
        "Five quiet minutes, before the day starts."
    );
    // Its lessons page opens with its own phases, and no one can sign up before a lesson.
    let cookie = format!("{}; drip_course=calm-mornings", admin.cookie);
    let page = send(
        &t.app,
        "127.0.0.1",
        "GET",
        "/admin/lessons/new",
        Some(&cookie),
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("value=\"breathe\""), "{}", page.body);
    let (status, _) = request(&t.app, "GET", "/courses/calm-mornings", None, "").await;
    assert_eq!(status, 404);
    let (_, index) = request(&t.app, "GET", "/", None, "").await;
    assert!(!index.contains("/courses/calm-mornings"), "{index}");
    // A sync of every folder keeps it (a course with no lesson yet is not an error).
    t.app.sync_lessons(false, Utc::now(), None).await.unwrap();
    assert!(course(&t, "calm-mornings").await.removed_at.is_none());

    // The same name again, in another case too: refused, naming the slug.
    for slug in ["calm-mornings", "Second-Course"] {
        let r = admin
            .post(
                &t.app,
                "/admin/courses",
                &[("title", "Again"), ("slug", slug), ("phases", "a: A")],
            )
            .await;
        assert_eq!(r.status, 422, "{slug}: {}", r.body);
    }

    // The API starts a course through the same function.
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    let api = |body: serde_json::Value| {
        let app = t.app.clone();
        let token = token.clone();
        async move {
            send(
                &app,
                "127.0.0.1",
                "POST",
                "/api/v1/courses",
                None,
                Some("application/json"),
                Some(&token),
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    let r = api(serde_json::json!({"slug": "evening-notes", "title": "Evening Notes", "phases": [{"name": "look-back", "title": "Look back"}]})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["course"]["slug"], "evening-notes");
    assert_eq!(r.json()["course"]["phases"][0]["name"], "look-back");
    assert!(root.path().join("evening-notes/course.toml").exists());
    let r = api(serde_json::json!({"slug": "evening-notes", "title": "Again", "phases": [{"name": "a", "title": "A"}]})).await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (409, serde_json::json!("slug")),
        "{}",
        r.body
    );
    let r = api(serde_json::json!({"slug": "bad-window", "title": "T", "send_window": "daily", "phases": [{"name": "a", "title": "A"}]})).await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (422, serde_json::json!("send_window")),
        "{}",
        r.body
    );
    assert!(!root.path().join("bad-window").exists());
}

async fn an_import_into_a_second_course_adds_the_people_known_from_the_first(backend: Backend) {
    use drip::subscriptions::import;
    let root = two_courses();
    let t = app_with(backend, root.path(), |_| {}).await;
    let now = Utc::now();
    let small = course(&t, "small-course").await;
    let second = course(&t, "second-course").await;
    for email in ["kim@example.com", "lea@example.com"] {
        subscriptions::add(&t.app, &small, &person(email), true, "test", now)
            .await
            .unwrap();
    }
    // Lea once took the second course and left it: an import does not bring her back.
    subscriptions::add(
        &t.app,
        &second,
        &person("lea@example.com"),
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    let lea = db::subscribers::by_email(&t.app.db, "lea@example.com")
        .await
        .unwrap()
        .unwrap();
    subscriptions::unsubscribe(&t.app, lea.id, Some(second.id), "test", now)
        .await
        .unwrap();

    let csv = "email,name,timezone\nKIM@example.com,Someone Else,Asia/Tokyo\nlea@example.com,,\nmo@example.com,Mo,\n";
    let report =
        import::import_reader_with_progress(&t.app, &second, csv.as_bytes(), true, now, |_| {})
            .await
            .unwrap();
    assert_eq!(
        (report.imported, report.added_to_course, report.existing),
        (1, 1, 1),
        "{report:?}"
    );
    let kim_second = enrollment(&t, "kim@example.com", "second-course").await;
    assert_eq!(kim_second.status, EnrollmentStatus::Active);
    let kim = db::subscribers::by_email(&t.app.db, "kim@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kim.name.as_str(), kim.timezone.name()),
        ("Ann", "Europe/Paris"),
        "a known person's details stay theirs"
    );
    assert_eq!(
        enrollment(&t, "kim@example.com", "small-course")
            .await
            .status,
        EnrollmentStatus::Active
    );
    assert_eq!(
        enrollment(&t, "lea@example.com", "second-course")
            .await
            .status,
        EnrollmentStatus::Stopped
    );

    // Without consent in hand, a known person is asked to confirm the new course, once.
    subscriptions::add(
        &t.app,
        &small,
        &person("ned@example.com"),
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    let csv = "email\nned@example.com\n";
    for round in 0..2 {
        let report = import::import_reader_with_progress(
            &t.app,
            &second,
            csv.as_bytes(),
            false,
            now,
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(
            report.added_to_course,
            u64::from(round == 0),
            "round {round}: {report:?}"
        );
    }
    let ned = db::subscribers::by_email(&t.app.db, "ned@example.com")
        .await
        .unwrap()
        .unwrap();
    let asked: Vec<_> = db::deliveries::for_subscriber(&t.app.db, ned.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == drip::domain::DeliveryKind::Confirm)
        .map(|d| d.course)
        .collect();
    assert_eq!(
        asked,
        [Some("second-course".to_owned())],
        "one confirmation, for the second course"
    );
    assert!(
        db::enrollments::for_subscriber(&t.app.db, ned.id)
            .await
            .unwrap()
            .iter()
            .all(|e| e.course_id != second.id),
        "not enrolled before confirming"
    );
}
