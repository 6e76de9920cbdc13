//! The drip itself, end to end over SMTP: sign-up, confirmation, every lesson in order at
//! the subscriber's local hour, unsubscribe, pause and resume, retries and bounces, and
//! concurrent ticks.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Duration as Days, Timelike, Utc};
use drip::db;
use drip::domain::Timezone;
use drip::outbox;
use drip::subscriptions::{self, NewSubscriber};

use crate::on_both_databases;
use crate::support::{Backend, SmtpServer, TestApp, at, find_url, path_of, request, text_part};

fn person(email: &str, tz: &str) -> NewSubscriber {
    NewSubscriber::parse(email, "Ann", tz, Timezone::UTC).unwrap()
}

async fn tick(t: &TestApp, now: DateTime<Utc>) -> outbox::TickReport {
    outbox::tick(&t.app, now).await.unwrap()
}

/// Runs the clock from `from` to `to`, ticking at every moment something falls due (as a
/// scheduler ticking every second would, without the millions of empty ticks).
async fn tick_through(t: &TestApp, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut now = from;
    while now <= to {
        tick(t, now).await;
        match db::deliveries::next_wakeup(&t.app.db).await.unwrap() {
            Some(next) if next <= to.timestamp() => {
                now = DateTime::from_timestamp(next.max(now.timestamp() + 1), 0).unwrap()
            }
            _ => break,
        }
    }
}

async fn subscriber(t: &TestApp, email: &str) -> db::subscribers::SubscriberRow {
    db::subscribers::by_email(&t.app.db, email)
        .await
        .unwrap()
        .unwrap()
}

async fn lesson_deliveries(t: &TestApp, email: &str) -> Vec<db::deliveries::DeliveryView> {
    let s = subscriber(t, email).await;
    db::deliveries::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind.as_str() == "lesson")
        .collect()
}

on_both_databases!(
    a_subscriber_gets_every_lesson_in_course_order_at_their_local_hour,
    one_click_unsubscribe_stops_everything_after_it,
    pause_then_resume_continues_without_a_burst,
    a_451_then_250_delivers_once,
    a_550_fails_the_delivery_and_marks_the_address_bounced,
    a_mail_that_cannot_be_built_fails_with_its_cause_and_counts_no_bounce,
    lessons_renumbered_by_a_sync_keep_everyone_going_from_their_place,
    a_discreet_reader_gets_a_plain_sender_subject_and_preheader,
    the_server_down_for_a_while_then_back_delivers_everything_once,
    two_ticks_racing_never_send_a_lesson_twice,
    a_lesson_that_waits_for_a_reply_holds_the_next_until_max_wait_days,
    lessons_keep_their_local_hour_across_daylight_saving_changes,
);

async fn a_subscriber_gets_every_lesson_in_course_order_at_their_local_hour(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let smtp = t.smtp();
    let (status, page) = request(
        &t.app,
        "POST",
        "/subscribe",
        Some("application/x-www-form-urlencoded"),
        "email=ann%40example.com&name=Ann&timezone=Europe%2FParis",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    // The web request only queued the confirmation; the sender delivers it.
    assert!(smtp.messages().is_empty());
    let _ = tick(&t, Utc::now()).await;
    let confirm_mail = smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(confirm_mail.len(), 1);
    let confirm_url =
        find_url(&text_part(&confirm_mail[0].data), "http").expect("a confirmation link");
    assert!(confirm_url.contains("/confirm/"), "{confirm_url}");

    // The subscriber clicks the link a little later.
    let (status, page) = request(&t.app, "GET", &path_of(&confirm_url), None, "").await;
    assert_eq!(status, 200, "{page}");
    // The page asks; the button confirms.
    let (status, page) = request(
        &t.app,
        "POST",
        &path_of(&confirm_url),
        Some("application/x-www-form-urlencoded"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let confirmed_at = Utc::now();
    tick_through(&t, confirmed_at, confirmed_at + Days::days(120)).await;
    let messages = smtp.messages();
    let lessons: Vec<_> = messages
        .iter()
        .filter(|m| m.header("X-Drip-Lesson").is_some())
        .collect();
    let course = t.app.course(None).await.unwrap();
    let shipped = db::lessons::list(&t.app.db, course.id).await.unwrap();
    assert_eq!(lessons.len(), shipped.len(), "every lesson once");

    let slugs: Vec<String> = lessons
        .iter()
        .map(|m| m.header("X-Drip-Lesson").unwrap())
        .collect();
    let expected: Vec<String> = shipped.iter().map(|l| l.slug.clone()).collect();
    assert_eq!(
        slugs, expected,
        "in course order: honesty, then accountability, then the practices"
    );

    let ids: HashSet<String> = lessons
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), lessons.len(), "each mail has its own Message-ID");
    for m in &lessons {
        assert!(
            m.header("List-Unsubscribe")
                .unwrap()
                .contains("/unsubscribe/")
        );
        assert!(m.header("List-Unsubscribe").unwrap().contains("mailto:"));
        assert_eq!(
            m.header("List-Unsubscribe-Post").unwrap(),
            "List-Unsubscribe=One-Click"
        );
        assert!(m.header("Reply-To").unwrap().starts_with("reply+"));
        assert_eq!(m.header("X-Drip-Course").unwrap(), "rebuilding-trust");
        assert_eq!(m.header("Auto-Submitted").unwrap(), "auto-generated");
        assert!(
            m.data.contains("Content-Type: text/plain")
                && m.data.contains("Content-Type: text/html")
        );
        assert!(
            !m.data.contains("Content-Transfer-Encoding: 8bit"),
            "bodies are never raw 8bit"
        );
        assert_eq!(
            m.data
                .matches("Content-Transfer-Encoding: quoted-printable")
                .count(),
            2
        );
    }

    // Each lesson left at its window in Paris time: 08:00, the practice lessons at 07:30,
    // the first one right after confirming.
    let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let sent = lesson_deliveries(&t, "ann@example.com").await;
    for (d, l) in sent.iter().zip(&shipped) {
        assert_eq!(d.status.as_str(), "sent");
        assert_eq!(d.revision, Some(l.revision));
        let local = DateTime::from_timestamp(d.sent_at.unwrap(), 0)
            .unwrap()
            .with_timezone(&tz);
        if l.position == 1 {
            continue;
        }
        let (h, m) = if l
            .content
            .send_window
            .as_ref()
            .is_some_and(|w| w.as_str() == "0 30 7 * * *")
        {
            (7, 30)
        } else {
            (8, 0)
        };
        assert_eq!(
            (local.hour(), local.minute()),
            (h, m),
            "{} arrived at {local}",
            l.slug
        );
    }
    let enrollment =
        &db::enrollments::for_subscriber(&t.app.db, subscriber(&t, "ann@example.com").await.id)
            .await
            .unwrap()[0];
    assert_eq!(enrollment.status.as_str(), "completed");
}

async fn confirmed_subscriber(t: &TestApp, email: &str, tz: &str, now: DateTime<Utc>) -> i64 {
    subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &person(email, tz),
        true,
        "test",
        now,
    )
    .await
    .unwrap()
}

async fn one_click_unsubscribe_stops_everything_after_it(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    // The web request below runs on the real clock: start from it.
    let t0 = Utc::now();
    confirmed_subscriber(&t, "bo@example.com", "UTC", t0).await;
    let r = tick(&t, t0).await;
    assert_eq!(
        r.sent,
        1,
        "{r:?} {:?}",
        lesson_deliveries(&t, "bo@example.com").await
    );
    let first = t.smtp().wait_for(1, Duration::from_secs(5)).await;
    let header = first[0].header("List-Unsubscribe").unwrap();
    let https = header
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    // RFC 8058: a POST with this body and no cookies unsubscribes at once.
    let (status, _) = request(
        &t.app,
        "POST",
        &path_of(&https),
        Some("application/x-www-form-urlencoded"),
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(status, 200);
    // The lesson's link leaves its course; the person stays (other courses go on).
    let bo = subscriber(&t, "bo@example.com").await;
    assert_eq!(bo.status.as_str(), "active");
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, bo.id)
            .await
            .unwrap()[0]
            .status
            .as_str(),
        "stopped"
    );
    tick_through(&t, t0 + Days::hours(1), t0 + Days::days(10)).await;
    let after: Vec<_> = t.smtp().messages().into_iter().skip(1).collect();
    assert_eq!(after.len(), 1, "only the goodbye");
    assert!(after[0].header("X-Drip-Lesson").is_none());
    assert!(after[0].header("Subject").unwrap().contains("left"));
    assert_eq!(lesson_deliveries(&t, "bo@example.com").await.len(), 1);
}

async fn pause_then_resume_continues_without_a_burst(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let t0 = at("2026-05-04T06:00:00Z");
    let id = confirmed_subscriber(&t, "cy@example.com", "UTC", t0).await;
    tick_through(&t, t0, t0 + Days::days(1) + Days::hours(3)).await;
    assert_eq!(
        lesson_deliveries(&t, "cy@example.com").await.len(),
        2,
        "lessons 1 and 2"
    );
    assert!(
        subscriptions::pause(
            &t.app,
            id,
            None,
            "test",
            t0 + Days::days(1) + Days::hours(4)
        )
        .await
        .unwrap()
    );
    tick_through(&t, t0 + Days::days(1) + Days::hours(5), t0 + Days::days(20)).await;
    assert_eq!(
        lesson_deliveries(&t, "cy@example.com").await.len(),
        2,
        "nothing while paused"
    );
    let resumed_at = t0 + Days::days(20) + Days::hours(1);
    assert!(
        subscriptions::resume(&t.app, id, None, "test", resumed_at)
            .await
            .unwrap()
    );
    // The next lesson comes at the next window, and then one a day at most: not the
    // eighteen days' worth of lessons that were missed.
    tick_through(&t, resumed_at, resumed_at + Days::hours(20)).await;
    let sent = lesson_deliveries(&t, "cy@example.com").await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[2].lesson.as_deref(), Some("tell-the-whole-truth"));
    let third = DateTime::from_timestamp(sent[2].sent_at.unwrap(), 0).unwrap();
    assert_eq!(
        (third - resumed_at).num_minutes(),
        60,
        "at the next 08:00 window"
    );
    tick_through(&t, resumed_at + Days::hours(20), resumed_at + Days::days(4)).await;
    let sent = lesson_deliveries(&t, "cy@example.com").await;
    let days: HashSet<_> = sent
        .iter()
        .map(|d| {
            DateTime::from_timestamp(d.sent_at.unwrap(), 0)
                .unwrap()
                .date_naive()
        })
        .collect();
    assert_eq!(
        days.len(),
        sent.len(),
        "never two lessons on one day: {sent:?}"
    );
}

async fn a_451_then_250_delivers_once(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let t0 = at("2026-05-04T06:00:00Z");
    t.smtp().answer_next(&[(451, "4.3.0 try again later")]);
    confirmed_subscriber(&t, "di@example.com", "UTC", t0).await;
    let r = tick(&t, t0).await;
    assert_eq!((r.sent, r.retried), (0, 1));
    let d = &lesson_deliveries(&t, "di@example.com").await[0];
    assert_eq!(d.status.as_str(), "queued");
    assert!(d.last_error.as_deref().unwrap().contains("451"), "{d:?}");
    assert!(d.due_at > t0.timestamp(), "retried later, not at once");
    // Backoff: still nothing a second later.
    assert_eq!(tick(&t, t0 + Days::seconds(1)).await.sent, 0);
    tick(&t, t0 + Days::minutes(10)).await;
    let m = t.smtp().messages();
    assert_eq!(m.len(), 1);
    let d = &lesson_deliveries(&t, "di@example.com").await[0];
    assert_eq!((d.status.as_str(), d.attempts), ("sent", 2));
}

async fn a_discreet_reader_gets_a_plain_sender_subject_and_preheader(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let t0 = Utc::now();
    let quiet = confirmed_subscriber(&t, "quiet@example.com", "UTC", t0).await;
    confirmed_subscriber(&t, "open@example.com", "UTC", t0).await;
    // The reader ticks "Discreet mails" on their preferences page.
    let path = format!(
        "/preferences/{}",
        t.app.signer.sign(drip::domain::Purpose::Preferences, quiet)
    );
    let (status, page) = request(
        &t.app,
        "POST",
        &path,
        Some("application/x-www-form-urlencoded"),
        "action=discreet&discreet=on",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("checked"), "the choice shows as made");
    tick(&t, t0).await;
    let messages = t.smtp().wait_for(2, Duration::from_secs(5)).await;
    let to = |who: &str| {
        messages
            .iter()
            .find(|m| m.to.iter().any(|r| r.contains(who)))
            .unwrap()
            .clone()
    };
    let (q, o) = (to("quiet@"), to("open@"));
    let course = t.app.course(None).await.unwrap();
    let lessons = db::lessons::list(&t.app.db, course.id).await.unwrap();
    let first = &lessons[0].content;

    let of = lessons.len();
    assert_eq!(q.header("Subject").unwrap(), format!("Lesson 1 of {of}"));
    let from = q.header("From").unwrap();
    assert!(from.starts_with("Lessons <"), "{from}");
    assert!(!from.contains(&course.title), "{from}");
    let html = crate::support::html_part(&q.data);
    assert!(
        html.contains("Your next short read is here."),
        "a neutral preheader"
    );
    assert!(!html.contains(first.preheader.as_deref().unwrap()));
    // The course's own help line is there in discreet mails too.
    assert!(html.contains("findahelpline.com"), "the course's footer");

    // (The "·" travels as an encoded word; the title itself is plain.)
    assert!(o.header("Subject").unwrap().ends_with(&first.title));
    assert!(!q.header("Subject").unwrap().contains(&first.title));
    assert!(o.header("From").unwrap().contains("Rebuilding Trust"));
    let html = crate::support::html_part(&o.data);
    assert!(
        html.contains(first.preheader.as_deref().unwrap()),
        "the lesson's own preheader"
    );
}

/// Renames every lesson file `NN-slug.md` of `dir` to `number(NN, slug)-slug.md`.
fn renumber(dir: &std::path::Path, number: impl Fn(u32, &str) -> u32) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md"))
        .collect();
    // Through temporary names, so no rename lands on a file not yet moved.
    for name in &names {
        std::fs::rename(dir.join(name), dir.join(format!("{name}.moving"))).unwrap();
    }
    for name in &names {
        let (n, rest) = name.split_once('-').unwrap();
        let slug = rest.trim_end_matches(".md");
        let to = format!("{:02}-{rest}", number(n.parse().unwrap(), slug));
        std::fs::rename(dir.join(format!("{name}.moving")), dir.join(to)).unwrap();
    }
}

async fn lessons_renumbered_by_a_sync_keep_everyone_going_from_their_place(backend: Backend) {
    // A copy of the shipped course, numbered 02, 04, 06, ... to leave room.
    let lessons = tempfile::tempdir().unwrap();
    let course = lessons.path().join("rebuilding-trust");
    std::fs::create_dir_all(&course).unwrap();
    for e in std::fs::read_dir(crate::support::repo("lessons/rebuilding-trust")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), course.join(e.file_name())).unwrap();
    }
    renumber(&course, |n, _| n * 2);
    let dir = lessons.path().to_owned();
    let t = TestApp::build(backend, None, move |c| c.course.lessons_dir = dir).await;
    let t0 = at("2026-05-04T06:00:00Z");
    t.app.sync_lessons(true, t0, None).await.unwrap();
    let id = confirmed_subscriber(&t, "ren@example.com", "UTC", t0).await;
    tick_through(&t, t0, t0 + Days::days(2)).await;
    let had = |t: &TestApp| {
        let t = t.app.clone();
        async move {
            let s = db::subscribers::by_id(&t.db, id).await.unwrap().unwrap();
            db::deliveries::for_subscriber(&t.db, s.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.kind.as_str() == "lesson")
                .map(|d| d.lesson.unwrap())
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(
        had(&t).await,
        ["before-we-begin", "a-clean-slate"],
        "two lessons in two days"
    );

    // The author numbers the files 01, 02, ... again and inserts a lesson after the second:
    // every position moves down under the reader.
    renumber(&course, |n, _| if n <= 4 { n / 2 } else { n / 2 + 1 });
    let inserted = std::fs::read_to_string(course.join("02-a-clean-slate.md"))
        .unwrap()
        .replacen("title = \"", "title = \"Inserted: ", 1);
    std::fs::write(course.join("03-an-inserted-step.md"), inserted).unwrap();
    t.app
        .sync_lessons(true, t0 + Days::days(2), None)
        .await
        .unwrap();

    // Their place moved with the lesson they last had: next come the inserted lesson and
    // the one after, with nothing skipped and nothing twice.
    tick_through(&t, t0 + Days::days(2), t0 + Days::days(6)).await;
    let got = had(&t).await;
    assert_eq!(
        &got[..4],
        [
            "before-we-begin",
            "a-clean-slate",
            "an-inserted-step",
            "tell-the-whole-truth"
        ],
        "{got:?}"
    );
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "a lesson twice: {got:?}");
}

async fn a_mail_that_cannot_be_built_fails_with_its_cause_and_counts_no_bounce(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let t0 = at("2026-05-04T06:00:00Z");
    let id = confirmed_subscriber(&t, "fay@example.com", "UTC", t0).await;
    // An address no mail can be built for (sign-up refuses it; here it got into the row
    // some other way, as an old import or a hand edit could).
    sqlx::query("UPDATE subscribers SET email = 'fay at example dot com' WHERE id = $1")
        .bind(id)
        .execute(t.app.db.pool())
        .await
        .unwrap();
    let r = tick(&t, t0).await;
    assert_eq!((r.sent, r.failed), (0, 1));
    let d = db::deliveries::for_subscriber(&t.app.db, id).await.unwrap();
    let lesson = d.iter().find(|d| d.kind.as_str() == "lesson").unwrap();
    assert_eq!(lesson.status.as_str(), "failed");
    let why = lesson.last_error.as_deref().unwrap();
    assert!(
        why.starts_with("build:") && why.contains("recipient"),
        "{why}"
    );
    let (bounces,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM bounces WHERE subscriber_id = $1")
            .bind(id)
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!(bounces, 0, "the mail's fault is never the reader's bounce");
    let s = db::subscribers::by_id(&t.app.db, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status.as_str(), "active");
    assert!(t.smtp().messages().is_empty(), "nothing reached the server");
}

async fn a_550_fails_the_delivery_and_marks_the_address_bounced(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let t0 = at("2026-05-04T06:00:00Z");
    t.smtp().answer_next(&[(550, "5.1.1 no such user")]);
    confirmed_subscriber(&t, "ed@example.com", "UTC", t0).await;
    let r = tick(&t, t0).await;
    assert_eq!(r.failed, 1);
    let d = &lesson_deliveries(&t, "ed@example.com").await[0];
    assert_eq!(d.status.as_str(), "failed");
    assert!(d.last_error.as_deref().unwrap().contains("550"), "{d:?}");
    assert_eq!(
        subscriber(&t, "ed@example.com").await.status.as_str(),
        "bounced"
    );
    tick_through(&t, t0 + Days::hours(1), t0 + Days::days(5)).await;
    assert!(t.smtp().messages().is_empty());
    assert_eq!(lesson_deliveries(&t, "ed@example.com").await.len(), 1);
}

async fn the_server_down_for_a_while_then_back_delivers_everything_once(backend: Backend) {
    let port = SmtpServer::reserve_port();
    let t = TestApp::build(backend, None, |c| {
        c.mail.transport = drip::config::Transport::Smtp;
        c.smtp.port = port;
        c.smtp.timeout_seconds = 2;
    })
    .await;
    let t0 = at("2026-05-04T06:00:00Z");
    for i in 0..5 {
        confirmed_subscriber(&t, &format!("f{i}@example.com"), "UTC", t0).await;
    }
    // Nothing listens: the first attempts find the server gone and hold the queue (no
    // retry is spent); later passes each try one probe, with a doubling wait between.
    let r = tick(&t, t0).await;
    assert_eq!((r.sent, r.retried, r.held), (0, 0, 5));
    for minutes in [1, 3, 7] {
        tick(&t, t0 + Days::minutes(minutes)).await;
    }
    let smtp = SmtpServer::start_on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    tick(&t, t0 + Days::hours(7)).await;
    let m = smtp.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(m.len(), 5);
    let to: HashSet<String> = m.iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(to.len(), 5, "each once");
    tick(&t, t0 + Days::hours(8)).await;
    assert_eq!(smtp.messages().len(), 5, "nothing sent twice");
}

async fn two_ticks_racing_never_send_a_lesson_twice(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let t0 = at("2026-05-04T06:00:00Z");
    for i in 0..40 {
        confirmed_subscriber(&t, &format!("g{i}@example.com"), "UTC", t0).await;
    }
    // A second process on the same database: its own App, its own lease owner.
    let other = t.another_process(|_| {});
    assert_ne!(other.worker_id, t.app.worker_id);
    let (a, b) = tokio::join!(outbox::tick(&t.app, t0), outbox::tick(&other, t0));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.enqueued + b.enqueued, 40);
    assert_eq!(a.sent + b.sent, 40);
    let m = t.smtp().wait_for(40, Duration::from_secs(5)).await;
    let ids: HashSet<String> = m.iter().map(|m| m.header("Message-ID").unwrap()).collect();
    assert_eq!((m.len(), ids.len()), (40, 40));
}

async fn a_lesson_that_waits_for_a_reply_holds_the_next_until_max_wait_days(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let course = t.app.course(None).await.unwrap();
    let lessons = db::lessons::list(&t.app.db, course.id).await.unwrap();
    let waiting = lessons
        .iter()
        .find(|l| l.content.wait_for_reply)
        .expect("the course has a lesson that waits");
    let max_wait = i64::from(waiting.content.max_wait_days.unwrap());
    let t0 = at("2026-05-04T06:00:00Z");
    confirmed_subscriber(&t, "hu@example.com", "UTC", t0).await;
    // Run until the waiting lesson has been sent.
    let mut now = t0;
    let sent_at = loop {
        tick(&t, now).await;
        let d = lesson_deliveries(&t, "hu@example.com").await;
        if let Some(d) = d
            .iter()
            .find(|d| d.lesson.as_deref() == Some(waiting.slug.as_str()))
        {
            break DateTime::from_timestamp(d.sent_at.unwrap(), 0).unwrap();
        }
        let next = db::deliveries::next_wakeup(&t.app.db)
            .await
            .unwrap()
            .expect("something is planned");
        now = DateTime::from_timestamp(next.max(now.timestamp() + 1), 0).unwrap();
        assert!(
            now < t0 + Days::days(30),
            "the waiting lesson never went out"
        );
    };
    let enrollment =
        &db::enrollments::for_subscriber(&t.app.db, subscriber(&t, "hu@example.com").await.id)
            .await
            .unwrap()[0];
    assert_eq!(enrollment.waiting_reply, 1);
    // No reply: nothing more until max_wait_days have passed, then the next lesson.
    tick_through(
        &t,
        sent_at + Days::hours(1),
        sent_at + Days::days(max_wait) - Days::hours(1),
    )
    .await;
    assert_eq!(
        lesson_deliveries(&t, "hu@example.com").await.len() as i64,
        waiting.position
    );
    tick_through(
        &t,
        sent_at + Days::days(max_wait),
        sent_at + Days::days(max_wait) + Days::hours(12),
    )
    .await;
    assert_eq!(
        lesson_deliveries(&t, "hu@example.com").await.len() as i64,
        waiting.position + 1
    );
}

async fn lessons_keep_their_local_hour_across_daylight_saving_changes(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let course = t.app.course(None).await.unwrap();
    let shipped = db::lessons::list(&t.app.db, course.id).await.unwrap();
    // Each subscriber's course runs across a change of their clocks: Paris springs forward
    // on 29 March 2026 and falls back on 25 October; New York on 8 March and 1 November;
    // Auckland falls back on 5 April and springs forward on 27 September.
    let people = [
        (
            "paris-spring@example.com",
            "Europe/Paris",
            "2026-03-20T17:00:00Z",
        ),
        (
            "paris-autumn@example.com",
            "Europe/Paris",
            "2026-10-15T17:00:00Z",
        ),
        (
            "ny-spring@example.com",
            "America/New_York",
            "2026-02-27T22:00:00Z",
        ),
        (
            "ny-autumn@example.com",
            "America/New_York",
            "2026-10-22T22:00:00Z",
        ),
        (
            "akl-autumn@example.com",
            "Pacific/Auckland",
            "2026-03-25T05:00:00Z",
        ),
        (
            "akl-spring@example.com",
            "Pacific/Auckland",
            "2026-09-17T05:00:00Z",
        ),
    ];
    for (email, tz, start) in people {
        let t0 = at(start);
        confirmed_subscriber(&t, email, tz, t0).await;
        tick_through(&t, t0, t0 + Days::days(120)).await;
        let sent = lesson_deliveries(&t, email).await;
        assert_eq!(
            sent.len(),
            shipped.len(),
            "{email}: every lesson, none doubled"
        );
        let zone: chrono_tz::Tz = tz.parse().unwrap();
        let mut days = HashSet::new();
        for (d, l) in sent.iter().zip(&shipped) {
            let local = DateTime::from_timestamp(d.sent_at.unwrap(), 0)
                .unwrap()
                .with_timezone(&zone);
            assert!(
                days.insert(local.date_naive()),
                "{email}: two lessons on {}",
                local.date_naive()
            );
            if l.position > 1 {
                let (h, m) = if l
                    .content
                    .send_window
                    .as_ref()
                    .is_some_and(|w| w.as_str() == "0 30 7 * * *")
                {
                    (7, 30)
                } else {
                    (8, 0)
                };
                assert_eq!(
                    (local.hour(), local.minute()),
                    (h, m),
                    "{email}: {} arrived at {local}",
                    l.slug
                );
            }
        }
    }
}
