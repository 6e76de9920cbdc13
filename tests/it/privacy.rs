//! Privacy: retention (`[privacy]`: raw messages, then whole replies, deleted after so many
//! days, the answer rate unchanged, one anonymous event per sweep that removed something)
//! and the export of a subscriber's data (CLI, journal link, admin page, API).

use chrono::{DateTime, Duration, Utc};
use drip::app::App;
use drip::db;
use drip::domain::Timezone;
use drip::privacy::{self, RetentionReport};
use drip::subscriptions::{self, NewSubscriber};

use crate::on_both_databases;
use crate::support::{Backend, TestApp, at, path_of, request};

mod export;
mod keys;

fn t0() -> DateTime<Utc> {
    at("2026-05-04T06:00:00Z")
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// A subscriber enrolled at `t0` who has received lesson 1; returns (subscriber, delivery).
pub async fn with_lesson_sent(t: &TestApp, email: &str) -> (i64, i64) {
    let s = NewSubscriber::parse(email, "Ann", "UTC", Timezone::UTC).unwrap();
    let id = subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &s,
        true,
        "test",
        t0(),
    )
    .await
    .unwrap();
    drip::outbox::tick(&t.app, t0()).await.unwrap();
    let d = db::deliveries::for_subscriber(&t.app.db, id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.kind.as_str() == "lesson")
        .expect("lesson 1 sent");
    (id, d.id)
}

/// Ingests an answer to `delivery` received at `when`; returns the stored reply's id.
pub async fn answer(app: &App, email: &str, delivery: i64, text: &str, when: DateTime<Utc>) -> i64 {
    let raw = format!(
        "From: Ann <{email}>\r\nTo: {}\r\nSubject: Re: Lesson 1\r\nMessage-ID: <{}@mail.example>\r\n\
         In-Reply-To: <{}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
        app.reply_address(delivery),
        rand::random::<u64>(),
        app.message_id(delivery),
    );
    drip::inbound::ingest(app, raw.as_bytes(), false, when)
        .await
        .unwrap()
        .stored
        .expect("stored")
}

/// The same database with other `[privacy]` settings.
fn with_privacy(t: &TestApp, raw_days: i64, reply_days: i64) -> App {
    t.another_process(|c| {
        c.privacy.raw_retention_days = raw_days;
        c.privacy.reply_retention_days = reply_days;
    })
}

/// The retention sweep with this app's `[privacy]`, as `drip tick` runs it.
async fn sweep(app: &App, now: DateTime<Utc>) -> anyhow::Result<RetentionReport> {
    privacy::sweep(&app.db, &app.config.privacy, &app.shutdown, now).await
}

/// (raw kept, text) of a reply.
async fn stored(app: &App, id: i64) -> Option<(bool, String)> {
    let row: Option<(Option<Vec<u8>>, Vec<u8>)> =
        sqlx::query_as("SELECT raw, text FROM replies WHERE id = $1")
            .bind(id)
            .fetch_optional(app.db.pool())
            .await
            .unwrap();
    row.map(|(raw, text)| {
        (
            raw.is_some(),
            String::from_utf8(app.open_reply_text(&text)).unwrap(),
        )
    })
}

/// The retention events: (actor, subscriber, detail).
async fn retention_events(app: &App) -> Vec<(String, Option<i64>, serde_json::Value)> {
    let rows: Vec<(String, Option<i64>, String)> = sqlx::query_as(
        "SELECT actor, subscriber_id, detail FROM events WHERE kind = 'retention' ORDER BY id",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(a, s, d)| (a, s, serde_json::from_str(&d).unwrap()))
        .collect()
}

on_both_databases!(
    raw_messages_older_than_the_retention_are_deleted_and_their_text_stays_readable,
    whole_replies_older_than_the_retention_are_deleted_in_batches_and_the_answer_rate_stays,
    nothing_is_deleted_when_both_retentions_are_zero,
    the_tick_sweeps_on_its_first_pass_then_at_most_hourly,
    erasing_a_subscriber_keeps_the_answer_rate,
);

async fn raw_messages_older_than_the_retention_are_deleted_and_their_text_stays_readable(
    backend: Backend,
) {
    let t = crate::admin::admin_app(backend).await;
    assert_eq!(t.app.config.privacy.raw_retention_days, 30, "the default");
    let (sid, delivery) = with_lesson_sent(&t, "ann@example.com").await;
    let old = answer(&t.app, "ann@example.com", delivery, "I told her.", t0()).await;
    let young = answer(
        &t.app,
        "ann@example.com",
        delivery,
        "And then I listened.",
        t0() + days(20),
    )
    .await;
    // 29 days on, nothing is old enough.
    let report = sweep(&t.app, t0() + days(29)).await.unwrap();
    assert_eq!(report, RetentionReport::default());
    assert!(retention_events(&t.app).await.is_empty());
    // 31 days on, the first reply's raw message goes; the second is 11 days old.
    let report = sweep(&t.app, t0() + days(31)).await.unwrap();
    assert_eq!(
        report,
        RetentionReport {
            raw_removed: 1,
            replies_removed: 0
        }
    );
    assert_eq!(
        stored(&t.app, old).await,
        Some((false, "I told her.".into()))
    );
    assert_eq!(
        stored(&t.app, young).await,
        Some((true, "And then I listened.".into()))
    );
    // A second sweep finds nothing more and logs nothing more.
    assert!(sweep(&t.app, t0() + days(31)).await.unwrap().is_empty());
    let events = retention_events(&t.app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (actor, subscriber, detail) = &events[0];
    assert_eq!((actor.as_str(), *subscriber), ("system", None));
    assert_eq!(detail["raw_removed"], 1);
    assert_eq!(detail["replies_removed"], 0);
    assert!(
        !detail.to_string().contains("ann@"),
        "no personal data: {detail}"
    );
    // The subscriber's journal still shows the answer.
    let journal = t.app.journal_access_url(sid, Utc::now().timestamp() + 3600);
    let (status, page) = request(&t.app, "POST", &path_of(&journal), None, "").await;
    assert_eq!(status, 200);
    assert!(page.contains("I told her."), "{page}");
    // So does the admin's page of the subscriber, without a raw link for it; the raw view of
    // the old reply says there is none, the young one's is still there.
    let session = crate::admin::sign_in(&t.app).await;
    let r = session
        .get(&t.app, &format!("/admin/subscribers/{sid}"))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("I told her."));
    assert!(r.body.contains("raw message no longer kept"));
    assert!(!r.body.contains(&format!("/admin/replies/{old}/raw")));
    assert!(r.body.contains(&format!("/admin/replies/{young}/raw")));
    let r = session
        .get(&t.app, &format!("/admin/replies/{old}/raw"))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = session
        .get(&t.app, &format!("/admin/replies/{young}/raw"))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("And then I listened."));
}

async fn whole_replies_older_than_the_retention_are_deleted_in_batches_and_the_answer_rate_stays(
    backend: Backend,
) {
    let t = TestApp::with_file_outbox(backend).await;
    let app = with_privacy(&t, 30, 90);
    let mut old = Vec::new();
    let mut lesson_of_a = 0;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        let (_, delivery) = with_lesson_sent(&t, email).await;
        old.push(answer(&app, email, delivery, "An old answer.", t0()).await);
        if email.starts_with('a') {
            lesson_of_a = delivery;
        }
    }
    // a@ answers twice: the answer rate counts people, not replies.
    let again = t0() + Duration::hours(12);
    old.push(answer(&app, "a@example.com", lesson_of_a, "Again.", again).await);
    let (_, d) = with_lesson_sent(&t, "d@example.com").await;
    let young = answer(
        &app,
        "d@example.com",
        d,
        "A recent answer.",
        t0() + days(60),
    )
    .await;
    let before = db::stats::lesson_counts(&app.db).await.unwrap();
    let lesson_one = *before.keys().next().unwrap();
    assert_eq!(before[&lesson_one], (4, 4), "4 sent, 4 people answered");

    // Batches of two: four old replies take two full batches and an empty one.
    let report = privacy::sweep_in_batches(
        &app.db,
        &app.config.privacy,
        &app.shutdown,
        t0() + days(91),
        2,
    )
    .await
    .unwrap();
    assert_eq!(
        report,
        RetentionReport {
            raw_removed: 1,
            replies_removed: 4
        },
        "the young reply, 31 days old, loses only its raw message"
    );
    for id in &old {
        assert_eq!(stored(&app, *id).await, None, "reply {id} deleted");
    }
    assert_eq!(
        stored(&app, young).await,
        Some((false, "A recent answer.".into()))
    );
    assert_eq!(
        db::stats::lesson_counts(&app.db).await.unwrap(),
        before,
        "the answer rate is unchanged"
    );
    let events = retention_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].2["replies_removed"], 4);
    assert_eq!(events[0].2["raw_removed"], 1);
    assert_eq!(events[0].2["reply_retention_days"], 90);
    // When the last one goes too, the count still holds.
    sweep(&app, t0() + days(200)).await.unwrap();
    assert_eq!(stored(&app, young).await, None);
    assert_eq!(db::stats::lesson_counts(&app.db).await.unwrap(), before);
}

async fn nothing_is_deleted_when_both_retentions_are_zero(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let app = with_privacy(&t, 0, 0);
    let (_, delivery) = with_lesson_sent(&t, "ann@example.com").await;
    let id = answer(&app, "ann@example.com", delivery, "Kept.", t0()).await;
    let report = sweep(&app, t0() + days(3650)).await.unwrap();
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(stored(&app, id).await, Some((true, "Kept.".into())));
    assert!(retention_events(&app).await.is_empty());
}

async fn the_tick_sweeps_on_its_first_pass_then_at_most_hourly(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (_, delivery) = with_lesson_sent(&t, "ann@example.com").await;
    // A fresh process (as `drip tick` is): its first tick sweeps.
    let app = with_privacy(&t, 30, 0);
    let first = answer(&app, "ann@example.com", delivery, "One.", t0()).await;
    let now = t0() + days(40);
    let report = drip::outbox::tick(&app, now).await.unwrap();
    assert_eq!((report.raw_removed, report.replies_removed), (1, 0));
    assert_eq!(stored(&app, first).await.map(|s| s.0), Some(false));
    // Within the hour the tick loop leaves retention alone...
    let second = answer(&app, "ann@example.com", delivery, "Two.", t0()).await;
    let report = drip::outbox::tick(&app, now + Duration::minutes(59))
        .await
        .unwrap();
    assert_eq!(report.raw_removed, 0);
    assert_eq!(stored(&app, second).await.map(|s| s.0), Some(true));
    // ...and sweeps again once it has passed.
    let report = drip::outbox::tick(&app, now + Duration::minutes(61))
        .await
        .unwrap();
    assert_eq!(report.raw_removed, 1);
    assert_eq!(stored(&app, second).await.map(|s| s.0), Some(false));
}

async fn erasing_a_subscriber_keeps_the_answer_rate(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (sid, delivery) = with_lesson_sent(&t, "ann@example.com").await;
    answer(&t.app, "ann@example.com", delivery, "Mine.", t0()).await;
    let before = db::stats::lesson_counts(&t.app.db).await.unwrap();
    assert!(before.values().any(|&(_, answered)| answered == 1));
    assert!(
        subscriptions::erase(&t.app, sid, "test", t0() + days(1))
            .await
            .unwrap()
    );
    assert!(
        db::replies::for_subscriber(&t.app.db, sid)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db::stats::lesson_counts(&t.app.db).await.unwrap(), before);
}
