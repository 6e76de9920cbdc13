//! Webhooks end to end, against a real HTTP receiver on a TCP port of this process: every
//! event a reader's life causes arrives signed (checked by an HMAC computed here and, when
//! python3 is there, by Python's own hmac module), with no reply text; a 500 is retried
//! with the same event id and body until a 200, and past 24 hours the delivery fails and
//! shows; a receiver that hangs forever never holds up lesson mail (`drip worker` running
//! for real); an event is written in the transaction of its change or not at all; a URL
//! that is not http(s), or an unknown event, is refused by name.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration as Days, Utc};
use drip::db;
use drip::domain::{EventType, Timezone};
use drip::inbound;
use drip::subscriptions::{self, ConfirmLink, NewSubscriber};
use drip::webhooks;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::on_both_databases;
use crate::support::{Backend, SmtpServer, TestApp, at, needs};

on_both_databases!(
    every_event_arrives_signed_at_a_real_receiver_without_reply_text,
    a_500_is_retried_with_the_same_id_and_body_and_after_24_hours_it_fails_and_shows,
    a_receiver_that_hangs_forever_never_delays_lesson_mail,
    two_workers_at_once_post_each_event_once,
    an_event_is_written_with_its_change_or_not_at_all,
    a_url_that_is_not_http_or_an_unknown_event_is_refused_and_nothing_is_stored,
    the_admin_page_adds_shows_the_secret_once_and_removes,
);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    content_type: String,
    signature: String,
    event_id: String,
    body: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

#[derive(Default)]
struct Inbox {
    got: Vec<Got>,
    /// Statuses to answer with, in order; 200 once empty.
    script: VecDeque<u16>,
    /// Take the request, then never answer.
    hang: bool,
}

/// An HTTP server (axum on a tokio listener) that records what drip posts.
struct Receiver {
    url: String,
    inbox: Arc<Mutex<Inbox>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(inbox.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver {
            url: format!("http://{addr}/hooks/drip"),
            inbox,
        }
    }

    fn answer_next(&self, statuses: &[u16]) {
        self.inbox.lock().unwrap().script.extend(statuses);
    }

    fn hang(&self) {
        self.inbox.lock().unwrap().hang = true;
    }

    fn got(&self) -> Vec<Got> {
        self.inbox.lock().unwrap().got.clone()
    }

    async fn wait_for(&self, n: usize, guard: Duration) -> Vec<Got> {
        let deadline = tokio::time::Instant::now() + guard;
        loop {
            let got = self.got();
            if got.len() >= n || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(State(inbox): State<Arc<Mutex<Inbox>>>, req: Request) -> StatusCode {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (hang, status) = {
        let mut inbox = inbox.lock().unwrap();
        inbox.got.push(Got {
            path: parts.uri.path().to_owned(),
            content_type: header("content-type"),
            signature: header("drip-signature"),
            event_id: header("drip-event-id"),
            body: String::from_utf8(body.to_vec()).unwrap(),
        });
        (inbox.hang, inbox.script.pop_front().unwrap_or(200))
    };
    if hang {
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(status).unwrap()
}

/// `t` and `v1` of a Drip-Signature, after checking it with an HMAC computed here.
fn verify(secret: &str, got: &Got) -> (i64, String) {
    let mut t = None;
    let mut v1 = None;
    for part in got.signature.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_owned()),
            _ => {}
        }
    }
    let (t, v1) = (
        t.expect("a t= in Drip-Signature"),
        v1.expect("a v1= in Drip-Signature"),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", got.body).as_bytes());
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, want, "the signature of {}", got.body);
    (t, v1)
}

/// The same signatures checked by Python's hmac module, an implementation drip shares
/// nothing with.
fn verify_in_python(secret: &str, all: &[Got]) {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !needs("python3", found, "apt-get install python3") {
        return;
    }
    let cases: Vec<Value> = all
        .iter()
        .map(|g| serde_json::json!({"signature": g.signature, "body": g.body}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(
        &file,
        serde_json::json!({"secret": secret, "cases": cases}).to_string(),
    )
    .unwrap();
    let script = r#"
import hashlib, hmac, json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
bad = 0
for case in doc["cases"]:
    fields = dict(p.split("=", 1) for p in case["signature"].split(","))
    signed = (fields["t"] + "." + case["body"]).encode("utf-8")
    want = hmac.new(doc["secret"].encode("utf-8"), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, fields["v1"]):
        bad += 1
        print("bad signature:", case["signature"], case["body"][:80])
print(len(doc["cases"]) - bad, "good", bad, "bad")
sys.exit(1 if bad else 0)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python3's hmac disagrees: {said}");
    assert!(
        said.contains(&format!("{} good 0 bad", all.len())),
        "{said}"
    );
}

fn all_events() -> String {
    EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn count(t: &TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
    n
}

fn person(email: &str) -> NewSubscriber {
    NewSubscriber::parse(email, "Ann", "UTC", Timezone::UTC).unwrap()
}

async fn lesson_deliveries(t: &TestApp, id: i64) -> Vec<db::deliveries::DeliveryView> {
    db::deliveries::for_subscriber(&t.app.db, id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind.as_str() == "lesson" && d.status.as_str() == "sent")
        .collect()
}

const ANSWER: &str = "I told my brother the whole story on Sunday. Nobody else knows yet.";

fn reply_mail(t: &TestApp, delivery_id: i64, message_id: &str) -> String {
    format!(
        "From: Ann <ann@example.com>\r\nTo: {}\r\nSubject: Re: my secret subject line\r\nMessage-ID: <{message_id}>\r\n\
         In-Reply-To: <{}>\r\nDate: Mon, 04 May 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{ANSWER}\r\n",
        t.app.reply_address(delivery_id),
        t.app.message_id(delivery_id)
    )
}

fn bounce_mail(email: &str, message_id: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.com\r\nTo: bounces@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{email}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; {email}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{message_id}>\r\nTo: {email}\r\n\r\n--B--\r\n"
    )
}

async fn every_event_arrives_signed_at_a_real_receiver_without_reply_text(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let receiver = Receiver::start().await;
    let short = t.app.course(Some("write-your-first-course")).await.unwrap();
    let shipped = crate::support::shipped(&t.app).await;
    let added = webhooks::add(&t.app, &receiver.url, &all_events(), "test", Utc::now())
        .await
        .unwrap();
    let t0 = at("2026-05-04T06:00:00Z");

    // Ann signs up for the short course, confirms by the link, gets every lesson, answers
    // the first and finishes the course.
    let outcome = subscriptions::subscribe(&t.app, &short, &person("ann@example.com"), t0)
        .await
        .unwrap();
    assert_eq!(outcome, subscriptions::Subscribed::ConfirmationQueued);
    let ann = db::subscribers::by_email(&t.app.db, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    let confirm = db::deliveries::for_subscriber(&t.app.db, ann.id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.kind.as_str() == "confirm")
        .expect("a confirmation mail");
    let confirmed = subscriptions::confirm(&t.app, ConfirmLink::Mail(confirm.id), "subscriber", t0)
        .await
        .unwrap();
    assert_eq!(confirmed, subscriptions::Confirmed::Now);
    drip::outbox::tick(&t.app, t0).await.unwrap();
    let first = lesson_deliveries(&t, ann.id).await;
    assert_eq!(first.len(), 1, "lesson 1 is immediate");
    let raw = reply_mail(&t, first[0].id, "ann-answer@example.com");
    let stored = inbound::ingest(&t.app, raw.as_bytes(), false, t0 + Days::hours(1))
        .await
        .unwrap();
    assert!(stored.stored.is_some());
    let mut now = t0;
    for _ in 0..60 {
        now += Days::hours(12);
        drip::outbox::tick(&t.app, now).await.unwrap();
        let e = db::enrollments::for_subscriber(&t.app.db, ann.id)
            .await
            .unwrap();
        if e[0].status.as_str() == "completed" {
            break;
        }
    }
    let lessons = db::lessons::list(&t.app.db, short.id).await.unwrap();
    assert_eq!(lesson_deliveries(&t, ann.id).await.len(), lessons.len());

    // Bob is added with consent, then leaves everything.
    let bob = subscriptions::add(
        &t.app,
        &shipped,
        &person("bob@example.com"),
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    assert!(
        subscriptions::unsubscribe(&t.app, bob, None, "subscriber", now)
            .await
            .unwrap()
    );
    // Cy's first lesson bounces (a delivery report naming its Message-ID).
    let cy = subscriptions::add(
        &t.app,
        &shipped,
        &person("cy@example.com"),
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    drip::outbox::tick(&t.app, now).await.unwrap();
    let cy_lesson = lesson_deliveries(&t, cy).await[0].id;
    let dsn = bounce_mail("cy@example.com", &t.app.message_id(cy_lesson));
    let o = inbound::ingest(&t.app, dsn.as_bytes(), false, now)
        .await
        .unwrap();
    assert_eq!(o.kind.as_str(), "bounce");
    // Broadcasts are another module's: its emitting function, with its payload.
    let mut tx = t.app.db.begin_write().await.unwrap();
    webhooks::events::broadcast_sent(&mut tx, 41, shipped.id, "Lesson 4 was fixed", 2, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let report = webhooks::send_due(&t.app, now).await.unwrap();
    let got = receiver.got();
    assert_eq!(report.delivered as usize, got.len(), "{report:?}");
    assert_eq!((report.retried, report.failed), (0, 0));

    let types: BTreeSet<String> = got
        .iter()
        .map(|g| g.json()["type"].as_str().unwrap().to_owned())
        .collect();
    let every: BTreeSet<String> = EventType::ALL
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect();
    assert_eq!(types, every, "every event type arrived");
    for g in &got {
        assert_eq!(g.path, "/hooks/drip");
        assert_eq!(g.content_type, "application/json");
        let (ts, _) = verify(&added.secret, g);
        assert!(
            (ts - Utc::now().timestamp()).abs() < 3600,
            "t is the real clock: {ts}"
        );
        let v = g.json();
        assert_eq!(
            v["id"],
            g.event_id.as_str(),
            "Drip-Event-Id is the event's id"
        );
        assert_eq!(v["id"].as_str().unwrap().len(), 32, "128 bits as hex");
        assert!(DateTime::parse_from_rfc3339(v["created_at"].as_str().unwrap()).is_ok());
        assert_eq!(
            v.as_object().unwrap().len(),
            4,
            "id, type, created_at, data: {v}"
        );
        // Never what a person wrote: not the answer, not the subject of their mail.
        assert!(
            !g.body.contains("brother") && !g.body.contains("secret subject"),
            "{}",
            g.body
        );
    }
    verify_in_python(&added.secret, &got);
    let ids: BTreeSet<&str> = got.iter().map(|g| g.event_id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "one id per event");

    let of = |kind: &str, email: Option<&str>| -> Vec<Value> {
        got.iter()
            .map(Got::json)
            .filter(|v| v["type"] == kind && email.is_none_or(|e| v["data"]["email"] == e))
            .map(|v| v["data"].clone())
            .collect()
    };
    let c = of("subscriber.confirmed", Some("ann@example.com"));
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0]["course"].as_str(), c[0]["subscriber_id"].as_i64()),
        (Some("write-your-first-course"), Some(ann.id))
    );
    let s = of("enrollment.started", Some("ann@example.com"));
    assert_eq!((s.len(), s[0]["again"].as_bool()), (1, Some(false)));
    let mut sent = of("lesson.sent", Some("ann@example.com"));
    // Posted several at a time, so they may arrive in any order: in the order sent.
    sent.sort_by_key(|d| d["delivery_id"].as_i64());
    let slugs: Vec<&str> = sent.iter().map(|d| d["lesson"].as_str().unwrap()).collect();
    let expected: Vec<&str> = lessons.iter().map(|l| l.slug.as_str()).collect();
    assert_eq!(slugs, expected, "one lesson.sent per lesson, in order");
    assert!(
        sent.iter()
            .all(|d| d["course"] == "write-your-first-course" && d["revision"].as_i64().is_some())
    );
    let r = of("reply.received", Some("ann@example.com"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["lesson"], expected[0]);
    assert_eq!(r[0]["reply_id"].as_i64(), stored.stored);
    assert_eq!(r[0]["matched_by"], "token");
    let keys: BTreeSet<&str> = r[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let allowed: BTreeSet<&str> = [
        "reply_id",
        "subscriber_id",
        "email",
        "delivery_id",
        "enrollment_id",
        "course",
        "lesson",
        "matched_by",
    ]
    .into();
    assert_eq!(keys, allowed, "ids, the address and the lesson only");
    assert_eq!(of("enrollment.completed", Some("ann@example.com")).len(), 1);
    let u = of("subscriber.unsubscribed", Some("bob@example.com"));
    assert_eq!(u.len(), 1);
    assert!(u[0]["course"].is_null(), "out of everything: {}", u[0]);
    assert_eq!(u[0]["courses"], serde_json::json!(["rebuilding-trust"]));
    let b = of("delivery.bounced", Some("cy@example.com"));
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0]["hard"].as_bool(), b[0]["code"].as_str()),
        (Some(true), Some("5.1.1"))
    );
    assert_eq!(b[0]["delivery_id"].as_i64(), Some(cy_lesson));
    assert_eq!(b[0]["address_stopped"], true);
    assert_eq!(b[0]["lesson"], "before-we-begin");
    let bc = of("broadcast.sent", None);
    assert_eq!(bc.len(), 1);
    assert_eq!(
        bc[0],
        serde_json::json!({"broadcast_id": 41, "course": "rebuilding-trust", "subject": "Lesson 4 was fixed", "recipients": 2})
    );

    // Nothing is posted twice, and the listing shows every delivery delivered with its code.
    assert_eq!(webhooks::send_due(&t.app, now).await.unwrap().delivered, 0);
    let listed = webhooks::list(&t.app, 100).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].delivered as usize,
            listed[0].pending,
            listed[0].failed
        ),
        (got.len(), 0, 0)
    );
    assert!(
        listed[0]
            .recent
            .iter()
            .all(|a| a.last_status_code == Some(200) && a.attempts == 1)
    );

    // Erasing Ann takes her address out of the stored events too.
    subscriptions::erase(&t.app, ann.id, "test", now)
        .await
        .unwrap();
    let left: Vec<(String,)> = sqlx::query_as("SELECT payload FROM webhook_events")
        .fetch_all(t.app.db.pool())
        .await
        .unwrap();
    assert!(!left.is_empty());
    assert!(
        left.iter().all(|(p,)| !p.contains("ann@example.com")),
        "the address is gone"
    );
}

async fn a_500_is_retried_with_the_same_id_and_body_and_after_24_hours_it_fails_and_shows(
    backend: Backend,
) {
    let t = TestApp::with_file_outbox(backend).await;
    let flaky = Receiver::start().await;
    let dead = Receiver::start().await;
    let course = crate::support::shipped(&t.app).await;
    let now = at("2026-05-04T06:00:00Z");
    let a = webhooks::add(&t.app, &flaky.url, "subscriber.confirmed", "test", now)
        .await
        .unwrap();
    let d = webhooks::add(&t.app, &dead.url, "subscriber.confirmed", "test", now)
        .await
        .unwrap();
    flaky.answer_next(&[500]);
    dead.answer_next(&[503; 100]);
    subscriptions::add(
        &t.app,
        &course,
        &person("ann@example.com"),
        true,
        "test",
        now,
    )
    .await
    .unwrap();

    let first = webhooks::send_due(&t.app, now).await.unwrap();
    assert_eq!((first.delivered, first.retried), (0, 2), "{first:?}");
    // Not due again until its backoff has passed.
    let soon = webhooks::send_due(&t.app, now + Days::seconds(5))
        .await
        .unwrap();
    assert_eq!(soon.retried + soon.delivered, 0, "{soon:?}");
    let later = webhooks::send_due(&t.app, now + Days::minutes(2))
        .await
        .unwrap();
    assert_eq!((later.delivered, later.retried), (1, 1), "{later:?}");

    let got = flaky.got();
    assert_eq!(got.len(), 2, "a 500, then the retry");
    assert_eq!(got[0].event_id, got[1].event_id, "the same event id");
    assert_eq!(got[0].body, got[1].body, "the same body, byte for byte");
    verify(&a.secret, &got[0]);
    verify(&a.secret, &got[1]);
    let listed = webhooks::list(&t.app, 10).await.unwrap();
    let flaky_row = listed.iter().find(|e| e.id == a.id).unwrap();
    let attempt = &flaky_row.recent[0];
    assert_eq!(
        (
            attempt.status.as_str(),
            attempt.attempts,
            attempt.last_status_code
        ),
        ("delivered", 2, Some(200))
    );
    assert_eq!(attempt.event_id, got[0].event_id);

    // The dead endpoint: retried through the day, then failed for good, with its answer.
    let mut at_time = now + Days::minutes(2);
    while at_time < now + Days::hours(24) {
        at_time += Days::hours(3);
        webhooks::send_due(&t.app, at_time).await.unwrap();
    }
    let listed = webhooks::list(&t.app, 10).await.unwrap();
    let dead_row = listed.iter().find(|e| e.id == d.id).unwrap();
    assert_eq!(
        (dead_row.failed, dead_row.pending, dead_row.delivered),
        (1, 0, 0)
    );
    let attempt = &dead_row.recent[0];
    assert_eq!(
        (attempt.status.as_str(), attempt.last_status_code),
        ("failed", Some(503))
    );
    assert!(
        attempt
            .last_error
            .as_deref()
            .unwrap()
            .contains("gave up after"),
        "{:?}",
        attempt.last_error
    );
    let posts = dead.got();
    assert_eq!(posts.len() as i64, attempt.attempts);
    assert!(
        posts.windows(2).all(|w| w[0].body == w[1].body),
        "every retry the same body"
    );
    // Failed is final: nothing more is posted.
    webhooks::send_due(&t.app, at_time + Days::hours(5))
        .await
        .unwrap();
    assert_eq!(dead.got().len(), posts.len());
}

async fn a_receiver_that_hangs_forever_never_delays_lesson_mail(backend: Backend) {
    let _turn = crate::support::PROCESSES.lock().await;
    let smtp = SmtpServer::start();
    let t = TestApp::builder(backend).smtp(smtp.clone()).build().await;
    let course = crate::support::shipped(&t.app).await;
    let hanging = Receiver::start().await;
    hanging.hang();
    webhooks::add(&t.app, &hanging.url, &all_events(), "test", Utc::now())
        .await
        .unwrap();
    let mut env = crate::faults::drip_env(&t.db.url, smtp.addr.port(), t.dir.path());
    // Longer than the whole test may take: an endpoint that never answers holds its request
    // for all that time, as a dead one with a long timeout would.
    crate::faults::set_env(&mut env, "DRIP_WEBHOOKS__TIMEOUT_SECONDS", "300".into());
    crate::faults::set_env(&mut env, "DRIP_WEBHOOKS__CONCURRENCY", "1".into());
    let mut worker = crate::faults::Drip::start("worker", &env, t.dir.path(), "worker");

    // The first reader's events are taken by the receiver, which never answers.
    subscriptions::add(
        &t.app,
        &course,
        &person("ann@example.com"),
        true,
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    let taken = hanging.wait_for(1, Duration::from_secs(60)).await;
    assert!(!taken.is_empty(), "the worker posted: {}", worker.tail());
    let first = smtp.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(first.len(), 1, "ann's first lesson: {}", worker.tail());

    // While that request hangs, more readers arrive: their lessons go out all the same.
    for who in ["bob@example.com", "cy@example.com", "dee@example.com"] {
        subscriptions::add(&t.app, &course, &person(who), true, "test", Utc::now())
            .await
            .unwrap();
    }
    let mail = smtp.wait_for(4, Duration::from_secs(60)).await;
    assert_eq!(
        mail.len(),
        4,
        "every first lesson was sent: {}",
        worker.tail()
    );
    for who in ["bob@example.com", "cy@example.com", "dee@example.com"] {
        assert!(mail.iter().any(|m| m.to.iter().any(|t| t == who)), "{who}");
    }
    // The receiver still holds the first request: none of it was answered, and no delivery
    // was recorded as delivered.
    assert!(worker.is_running(), "{}", worker.tail());
    assert_eq!(
        hanging.got().len(),
        1,
        "one request in flight, the others waiting"
    );
    let listed = webhooks::list(&t.app, 100).await.unwrap();
    assert_eq!(listed[0].delivered, 0);
    assert!(
        listed[0].pending >= 8,
        "confirmed, started and lesson.sent of four: {}",
        listed[0].pending
    );
}

async fn two_workers_at_once_post_each_event_once(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let receiver = Receiver::start().await;
    let course = crate::support::shipped(&t.app).await;
    let now = at("2026-05-04T06:00:00Z");
    webhooks::add(&t.app, &receiver.url, "subscriber.confirmed", "test", now)
        .await
        .unwrap();
    let people = 60;
    for i in 0..people {
        let email = format!("reader{i}@example.com");
        subscriptions::add(&t.app, &course, &person(&email), true, "test", now)
            .await
            .unwrap();
    }
    // Two processes on one database, each with its own lease owner, claiming at once.
    let other = t.another_process(|_| {});
    let (a, b) = tokio::join!(
        webhooks::send_due(&t.app, now),
        webhooks::send_due(&other, now)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.delivered + b.delivered, people, "{a:?} {b:?}");
    let got = receiver.got();
    let ids: BTreeSet<&str> = got.iter().map(|g| g.event_id.as_str()).collect();
    assert_eq!(got.len() as u64, people, "no event posted twice");
    assert_eq!(ids.len() as u64, people);
}

async fn an_event_is_written_with_its_change_or_not_at_all(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let course = crate::support::shipped(&t.app).await;
    let now = at("2026-05-04T06:00:00Z");
    // No endpoint wants anything yet: nothing is written at all.
    subscriptions::add(
        &t.app,
        &course,
        &person("early@example.com"),
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    assert_eq!(count(&t, "webhook_events").await, 0);

    let receiver = Receiver::start().await;
    webhooks::add(
        &t.app,
        &receiver.url,
        "subscriber.confirmed,enrollment.started",
        "test",
        now,
    )
    .await
    .unwrap();
    subscriptions::subscribe(&t.app, &course, &person("ann@example.com"), now)
        .await
        .unwrap();
    let ann = db::subscribers::by_email(&t.app.db, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    let confirm = db::deliveries::for_subscriber(&t.app.db, ann.id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.kind.as_str() == "confirm")
        .unwrap();
    // The confirmation fails after its events were queued (the event log refuses its row):
    // the whole transaction rolls back, the events with it.
    let undo = refuse_confirmed_log(&t, backend).await;
    let failed =
        subscriptions::confirm(&t.app, ConfirmLink::Mail(confirm.id), "subscriber", now).await;
    assert!(failed.is_err(), "the injected failure");
    assert_eq!(
        count(&t, "webhook_events").await,
        0,
        "no event without its change"
    );
    assert_eq!(count(&t, "webhook_deliveries").await, 0);
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, ann.id)
            .await
            .unwrap()
            .len(),
        0,
        "and no change either"
    );
    sqlx::query(undo).execute(t.app.db.pool()).await.unwrap();

    // Done again, it commits with both events, each queued once.
    let done = subscriptions::confirm(&t.app, ConfirmLink::Mail(confirm.id), "subscriber", now)
        .await
        .unwrap();
    assert_eq!(done, subscriptions::Confirmed::Now);
    assert_eq!(count(&t, "webhook_events").await, 2);
    assert_eq!(count(&t, "webhook_deliveries").await, 2);
    // A second click changes nothing, and queues nothing.
    subscriptions::confirm(&t.app, ConfirmLink::Mail(confirm.id), "subscriber", now)
        .await
        .unwrap();
    assert_eq!(count(&t, "webhook_events").await, 2);
    webhooks::send_due(&t.app, now).await.unwrap();
    let types: Vec<String> = receiver
        .got()
        .iter()
        .map(|g| g.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types.len(), 2);
    assert!(
        types.contains(&"subscriber.confirmed".into())
            && types.contains(&"enrollment.started".into())
    );
}

/// Makes writing the `confirmed` row of the event log fail, as a database that went away
/// halfway through the confirmation would; returns the statement that undoes it.
async fn refuse_confirmed_log(t: &TestApp, backend: Backend) -> &'static str {
    let pool = t.app.db.pool();
    match backend {
        Backend::Sqlite => {
            sqlx::query(
                "CREATE TRIGGER refuse_confirmed BEFORE INSERT ON events \
                 WHEN NEW.kind = 'confirmed' BEGIN SELECT RAISE(ABORT, 'injected: the database went away'); END",
            )
            .execute(pool)
            .await
            .unwrap();
            "DROP TRIGGER refuse_confirmed"
        }
        Backend::Postgres => {
            sqlx::query(
                "CREATE FUNCTION refuse_confirmed() RETURNS trigger AS $$ BEGIN \
                 IF NEW.kind = 'confirmed' THEN RAISE EXCEPTION 'injected: the database went away'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
            )
            .execute(pool)
            .await
            .unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_confirmed BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_confirmed()",
            )
            .execute(pool)
            .await
            .unwrap();
            "DROP TRIGGER refuse_confirmed ON events"
        }
    }
}

async fn a_url_that_is_not_http_or_an_unknown_event_is_refused_and_nothing_is_stored(
    backend: Backend,
) {
    let t = TestApp::with_file_outbox(backend).await;
    for url in [
        "ftp://hooks.example.com/drip",
        "file:///etc/passwd",
        "hooks.example.com/drip",
        "javascript:alert(1)",
    ] {
        match webhooks::add(&t.app, url, "lesson.sent", "test", Utc::now()).await {
            Err(webhooks::AddError::Invalid(e)) => {
                assert_eq!(e.field, "url", "{url}: {e}");
                assert!(e.message.contains("http"), "{e}");
            }
            other => panic!("{url} was not refused: {other:?}"),
        }
    }
    match webhooks::add(
        &t.app,
        "https://hooks.example.com/drip",
        "lesson.sent,lesson.opened",
        "test",
        Utc::now(),
    )
    .await
    {
        Err(webhooks::AddError::Invalid(e)) => {
            assert_eq!(e.field, "events");
            assert!(
                e.message.contains("lesson.opened")
                    && e.message.contains(
                        &EventType::ALL
                            .iter()
                            .map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                "{e}"
            );
        }
        other => panic!("an unknown event was not refused: {other:?}"),
    }
    assert!(
        webhooks::list(&t.app, 0).await.unwrap().is_empty(),
        "nothing stored"
    );
    assert_eq!(count(&t, "webhooks").await, 0);

    // The same from the command line, which exits 1 naming the field.
    if backend == Backend::Sqlite {
        let dir = crate::cli::workdir();
        let out = crate::cli::drip(
            dir.path(),
            &[
                "webhooks",
                "add",
                "ftp://x.example/",
                "--events",
                "lesson.sent",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            crate::cli::stderr(&out).contains("url: "),
            "{}",
            crate::cli::stderr(&out)
        );
        let out = crate::cli::drip(
            dir.path(),
            &[
                "webhooks",
                "add",
                "http://x.example/",
                "--events",
                "lesson.read",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1));
        let said = crate::cli::stderr(&out);
        assert!(
            said.contains("events: ") && said.contains("delivery.bounced"),
            "{said}"
        );
        // A good one prints its id and secret, once, as JSON; list and remove find it.
        let out = crate::cli::drip(
            dir.path(),
            &[
                "webhooks",
                "add",
                "http://127.0.0.1:9/in",
                "--events",
                "lesson.sent,reply.received",
                "--json",
            ],
            &[],
        );
        assert!(out.status.success(), "{}", crate::cli::stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["secret"].as_str().unwrap().starts_with("whsec_"), "{v}");
        assert_eq!(
            v["events"],
            serde_json::json!(["lesson.sent", "reply.received"])
        );
        let id = v["id"].as_i64().unwrap().to_string();
        let out = crate::cli::drip(dir.path(), &["webhooks", "list", "--json"], &[]);
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed[0]["url"], "http://127.0.0.1:9/in");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("whsec_"),
            "list never shows a secret"
        );
        let out = crate::cli::drip(dir.path(), &["webhooks", "remove", &id], &[]);
        assert!(out.status.success(), "{}", crate::cli::stderr(&out));
        let out = crate::cli::drip(dir.path(), &["webhooks", "remove", &id], &[]);
        assert_eq!(out.status.code(), Some(1), "gone already");
    }
}

async fn the_admin_page_adds_shows_the_secret_once_and_removes(backend: Backend) {
    use crate::admin::{admin_app, sign_in};
    let t = admin_app(backend).await;
    let session = sign_in(&t.app).await;
    let page = session.get(&t.app, "/admin/webhooks").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        unescaped(&page.body).contains("href=\"/admin/webhooks\""),
        "the menu links the page"
    );
    assert!(page.body.contains("No webhooks yet"));

    let refused = session
        .post(
            &t.app,
            "/admin/webhooks",
            &[("url", "gopher://x.example/"), ("events", "lesson.sent")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let said = unescaped(&refused.body);
    assert!(
        said.contains("url: ") && said.contains("gopher://x.example/"),
        "{said}"
    );
    assert_eq!(count(&t, "webhooks").await, 0);

    let receiver = Receiver::start().await;
    let added = session
        .post(
            &t.app,
            "/admin/webhooks",
            &[
                ("url", &receiver.url),
                ("events", "lesson.sent"),
                ("events", "delivery.bounced"),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let pos = added
        .body
        .find("id=\"secret\"")
        .expect("the secret is shown");
    let secret: String = added.body[pos..]
        .split('>')
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = webhooks::list(&t.app, 0).await.unwrap();
    assert_eq!(
        listed[0].events,
        vec![EventType::LessonSent, EventType::DeliveryBounced]
    );
    // The secret the page showed is the one that signs.
    let course = crate::support::shipped(&t.app).await;
    let now = Utc::now();
    subscriptions::add(
        &t.app,
        &course,
        &person("ann@example.com"),
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    drip::outbox::tick(&t.app, now).await.unwrap();
    webhooks::send_due(&t.app, now).await.unwrap();
    let got = receiver.got();
    assert_eq!(got.len(), 1, "lesson.sent only");
    verify(&secret, &got[0]);

    // Shown once: the page does not show it again, but shows the attempt and its answer.
    let page = unescaped(&session.get(&t.app, "/admin/webhooks").await.body);
    assert!(!page.contains(&secret), "the secret is not shown again");
    assert!(page.contains(&receiver.url) && page.contains("lesson.sent"));
    assert!(
        page.contains("HTTP 200") && page.contains("delivered"),
        "{page}"
    );
    assert!(page.contains(&got[0].event_id));

    let id = listed[0].id;
    let removed = session
        .post(&t.app, &format!("/admin/webhooks/{id}/remove"), &[])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert!(webhooks::list(&t.app, 0).await.unwrap().is_empty());
    assert_eq!(
        count(&t, "webhook_deliveries").await,
        0,
        "its deliveries went with it"
    );
}

/// A page's text with the escapes of minijinja's HTML autoescaping undone.
fn unescaped(page: &str) -> String {
    page.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}
