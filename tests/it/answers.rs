//! Author answers (issue 14): an admin answers a reader's reflection from the conversation
//! page or the API; the answer reaches them over SMTP from the course's address, threaded
//! under their reply (In-Reply-To, References), with a reply token of its own; what they
//! write back is stored in the same conversation, tied to the same lesson; the admin's page
//! and the reader's journal show the exchange in order. Readers may answer, editors may
//! not; bad text names its field and writes nothing; nobody who left gets one.

use chrono::{DateTime, Utc};
use drip::db;
use drip::domain::{Role, Timezone};
use drip::outbox;
use drip::subscriptions::{self, NewSubscriber};
use serde_json::json;

use crate::admin::{PASSWORD, Session, add_admin_as, api_call, send, session_of, sign_in_from};
use crate::on_both_databases;
use crate::support::{Backend, Received, TestApp, at, text_part};

on_both_databases!(
    an_answer_arrives_threaded_and_the_readers_answer_joins_the_conversation,
    answers_are_refused_with_a_reason_and_write_nothing,
);

const FIRST: &str = "I kept telling myself it was not a lie, only a silence.";
const ANSWER: &str =
    "Thank you for writing this down.\n\nSilence can be where honesty starts: you named it.";
const SECOND: &str = "That helps. I told her about the silence last night.";

async fn signed_in(t: &TestApp, user: &str, role: Role) -> Session {
    add_admin_as(&t.app, user, role).await;
    let r = sign_in_from(&t.app, "127.0.0.1", user, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    session_of(&t.app, &r).await
}

/// Ticks from `from` until the SMTP server holds a mail `wanted` picks, at most `days` on.
async fn until_mail(
    t: &TestApp,
    from: DateTime<Utc>,
    days: i64,
    wanted: impl Fn(&Received) -> bool,
) -> (Received, DateTime<Utc>) {
    let mut now = from;
    let end = from + chrono::Duration::days(days);
    while now <= end {
        outbox::tick(&t.app, now).await.unwrap();
        if let Some(m) = t.smtp().messages().into_iter().find(|m| wanted(m)) {
            return (m, now);
        }
        now = match db::deliveries::next_wakeup(&t.app.db).await.unwrap() {
            Some(next) if next > now.timestamp() => DateTime::from_timestamp(next, 0).unwrap(),
            _ => now + chrono::Duration::minutes(10),
        };
    }
    panic!("no such mail within {days} days");
}

fn bare(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// A reply from ann to `to` (a Reply-To address), answering Message-ID `parent`.
fn reply(to: &str, id: &str, parent: &str, text: &str) -> String {
    format!(
        "From: Ann <ann@example.com>\r\nTo: {to}\r\nSubject: Re: a lesson\r\nMessage-ID: <{id}>\r\n\
         In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\nOn Monday, the course wrote:\r\n> earlier words\r\n"
    )
}

async fn answers_count(t: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM answers")
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
    n
}

async fn an_answer_arrives_threaded_and_the_readers_answer_joins_the_conversation(
    backend: Backend,
) {
    let t = TestApp::with_smtp(backend).await;
    let course = crate::support::shipped(&t.app).await;
    let start = at("2026-12-07T06:00:00Z");
    let new =
        NewSubscriber::parse("ann@example.com", "Ann", "Europe/Paris", Timezone::UTC).unwrap();
    let ann = subscriptions::add(&t.app, &course, &new, true, "test", start)
        .await
        .unwrap();
    let (lesson, now) = until_mail(&t, start, 5, |m| m.header("X-Drip-Lesson").is_some()).await;
    let lesson_id = bare(&lesson.header("Message-ID").unwrap());
    let lesson_slug = lesson.header("X-Drip-Lesson").unwrap();

    // Ann answers the lesson's question.
    let raw = reply(
        &lesson.header("Reply-To").unwrap(),
        "ann-1@example.com",
        &lesson_id,
        FIRST,
    );
    let first = drip::inbound::ingest(&t.app, raw.as_bytes(), false, now)
        .await
        .unwrap()
        .stored
        .expect("stored");

    // A reader-role admin reads the conversation and answers it; an empty answer first.
    let rita = signed_in(&t, "rita", Role::Reader).await;
    let page = rita.get(&t.app, &format!("/admin/replies/{first}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("I kept telling myself"), "{}", page.body);
    assert!(page.body.contains("Send answer"), "a reader may answer");
    let empty = rita
        .post(
            &t.app,
            &format!("/admin/replies/{first}/answer"),
            &[("text", "  ")],
        )
        .await;
    assert_eq!(empty.status, 422, "{}", empty.body);
    assert!(
        empty.body.contains("text: the answer is empty"),
        "{}",
        empty.body
    );
    assert_eq!(
        answers_count(&t).await,
        0,
        "a refused answer writes nothing"
    );
    let sent = rita
        .post(
            &t.app,
            &format!("/admin/replies/{first}/answer"),
            &[("text", ANSWER)],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(
        sent.location()
            .starts_with(&format!("/admin/replies/{first}#author-"))
    );

    // The answer goes out over SMTP, threaded under ann's reply.
    let (mail, now) = until_mail(&t, now, 1, |m| m.header("In-Reply-To").is_some()).await;
    assert_eq!(mail.to, vec!["ann@example.com".to_owned()]);
    assert_eq!(mail.header("In-Reply-To").unwrap(), "<ann-1@example.com>");
    assert_eq!(
        mail.header("References").unwrap(),
        format!("<{lesson_id}> <ann-1@example.com>"),
        "the thread: our lesson, then their reply"
    );
    assert_eq!(mail.header("Subject").unwrap(), "Re: a lesson");
    assert_eq!(
        mail.header("From"),
        lesson.header("From"),
        "from the course's address"
    );
    assert!(mail.header("Auto-Submitted").is_none(), "a person wrote it");
    assert!(mail.header("List-Unsubscribe").is_some());
    let answer_reply_to = mail.header("Reply-To").unwrap();
    assert_ne!(
        answer_reply_to,
        lesson.header("Reply-To").unwrap(),
        "a token of its own"
    );
    let text = text_part(&mail.data);
    assert!(
        text.contains("Silence can be where honesty starts"),
        "{text}"
    );
    assert!(
        !text.contains(FIRST),
        "their own words are not mailed back to them"
    );
    let answer_id = bare(&mail.header("Message-ID").unwrap());

    // Ann writes back to the answer: matched by its token, tied to the same lesson.
    let raw = reply(&answer_reply_to, "ann-2@example.com", &answer_id, SECOND);
    let dry = drip::inbound::ingest(&t.app, raw.as_bytes(), true, now)
        .await
        .unwrap();
    let m = serde_json::to_value(&dry).unwrap();
    assert_eq!(m["match"]["by"], "token", "{m}");
    assert_eq!(m["match"]["lesson"], json!(lesson_slug), "{m}");
    assert_eq!(m["match"]["course"], "rebuilding-trust", "{m}");
    let second = drip::inbound::ingest(&t.app, raw.as_bytes(), false, now)
        .await
        .unwrap()
        .stored
        .expect("stored");
    let replies = db::replies::for_subscriber(&t.app.db, ann).await.unwrap();
    let stored = replies.iter().find(|r| r.id == second).unwrap();
    let answers = db::answers::for_subscriber(&t.app.db, ann).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(stored.in_answer_to, Some(answers[0].id));
    assert_eq!(
        stored.lesson_id,
        replies.iter().find(|r| r.id == first).unwrap().lesson_id
    );
    assert_eq!(answers[0].status.as_deref(), Some("sent"));

    // The admin's page shows the exchange in order, from either reply.
    let in_order = |body: &str| {
        let at = |needle: &str| {
            body.find(needle)
                .unwrap_or_else(|| panic!("{needle:?} missing: {body}"))
        };
        at("I kept telling myself") < at("Silence can be where honesty starts")
            && at("Silence can be where honesty starts") < at("I told her about the silence")
    };
    for id in [first, second] {
        let page = rita.get(&t.app, &format!("/admin/replies/{id}")).await;
        assert_eq!(page.status, 200);
        assert!(in_order(&page.body), "{}", page.body);
        assert!(
            page.body
                .contains(&format!("action=\"/admin/replies/{second}/answer\"")),
            "the form answers the latest reply"
        );
    }

    // So does ann's journal.
    let access = t.app.journal_access_url(ann, Utc::now().timestamp() + 3600);
    let path = access
        .split_once("/journal/")
        .map(|(_, p)| format!("/journal/{p}"))
        .unwrap();
    let journal = send(
        &t.app,
        "127.0.0.1",
        "POST",
        &path,
        None,
        Some("application/x-www-form-urlencoded"),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(journal.status, 200, "{}", journal.body);
    assert!(in_order(&journal.body), "{}", journal.body);
    assert!(
        journal.body.contains("The course&#x27;s author wrote back")
            || journal.body.contains("The course's author wrote back"),
        "{}",
        journal.body
    );
    assert!(
        !journal.body.contains("rita"),
        "staff names stay out of the reader's journal"
    );

    // Through the API, a second answer under ann's latest reply.
    let token = drip::auth::new_api_token(&t.app.db, "rita", Utc::now().timestamp())
        .await
        .unwrap();
    let answers_uri = format!("/api/v1/replies/{second}/answers");
    let post = |body: serde_json::Value| api_call(&t.app, &token, "POST", &answers_uri, body);
    let r = post(json!({"text": ""})).await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (422, json!("text")),
        "{}",
        r.body
    );
    let r = post(json!({"text": "Good.", "extra": 1})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = post(json!({"text": "I am glad you did."})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["reply"], json!(second));
    let (mail, _) = until_mail(&t, now, 1, |m| {
        m.header("In-Reply-To").as_deref() == Some("<ann-2@example.com>")
    })
    .await;
    assert_eq!(
        mail.header("References").unwrap(),
        format!("<{answer_id}> <ann-2@example.com>")
    );
    // Her data export carries both answers.
    let export = drip::subscriptions::export::export(&t.app, ann, "test", "cli", Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(export.data.answers.len(), 2);
    assert!(export.data.answers.iter().any(|a| a.text == ANSWER));
}

async fn answers_are_refused_with_a_reason_and_write_nothing(backend: Backend) {
    let t = TestApp::with_smtp(backend).await;
    let course = crate::support::shipped(&t.app).await;
    let start = at("2026-12-07T06:00:00Z");
    let new = NewSubscriber::parse("ann@example.com", "Ann", "UTC", Timezone::UTC).unwrap();
    let ann = subscriptions::add(&t.app, &course, &new, true, "test", start)
        .await
        .unwrap();
    let (lesson, now) = until_mail(&t, start, 5, |m| m.header("X-Drip-Lesson").is_some()).await;
    let raw = reply(
        &lesson.header("Reply-To").unwrap(),
        "ann-1@example.com",
        &bare(&lesson.header("Message-ID").unwrap()),
        FIRST,
    );
    let first = drip::inbound::ingest(&t.app, raw.as_bytes(), false, now)
        .await
        .unwrap()
        .stored
        .unwrap();

    // An editor never answers (nor sees the reply).
    let eddie = signed_in(&t, "eddie", Role::Editor).await;
    let r = eddie
        .post(
            &t.app,
            &format!("/admin/replies/{first}/answer"),
            &[("text", ANSWER)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = eddie.get(&t.app, &format!("/admin/replies/{first}")).await;
    assert_eq!(r.status, 403);
    assert!(!r.body.contains(FIRST));
    // No such reply; a text too long.
    let err = drip::answers::answer(&t.app, 999_999, "owner", "Hello", now)
        .await
        .unwrap_err();
    assert!(
        matches!(err, drip::answers::AnswerError::NotFound(999_999)),
        "{err}"
    );
    let long = "x".repeat(drip::answers::MAX_CHARS + 1);
    let err = drip::answers::answer(&t.app, first, "owner", &long, now)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, drip::answers::AnswerError::Invalid(e) if e.field == "text"),
        "{err}"
    );
    assert_eq!(answers_count(&t).await, 0);

    // An answer written, then the reader leaves everything before it goes: it fails, visibly.
    let queued = drip::answers::answer(&t.app, first, "owner", ANSWER, now)
        .await
        .unwrap();
    subscriptions::unsubscribe(&t.app, ann, None, "subscriber", now)
        .await
        .unwrap();
    outbox::tick(&t.app, now).await.unwrap();
    let d = db::deliveries::for_subscriber(&t.app.db, ann)
        .await
        .unwrap();
    let mail = d.iter().find(|d| d.id == queued.delivery).unwrap();
    assert_eq!(mail.status.as_str(), "failed");
    assert!(
        mail.last_error
            .as_deref()
            .unwrap_or("")
            .contains("left everything"),
        "{:?}",
        mail.last_error
    );
    assert!(
        t.smtp()
            .messages()
            .iter()
            .all(|m| m.header("In-Reply-To").is_none()),
        "no answer left"
    );
    // And now the reply cannot be answered at all.
    let err = drip::answers::answer(&t.app, first, "owner", ANSWER, now)
        .await
        .unwrap_err();
    assert!(
        matches!(err, drip::answers::AnswerError::Refused { .. }),
        "{err}"
    );
    assert_eq!(answers_count(&t).await, 1);
}
