//! Replies end to end: each channel (the SMTP listener through a real SMTP client over TCP,
//! POST /inbound/email, `drip ingest`) stores a real reply tied to its lesson; duplicates are
//! stored once; auto-replies and bounces never count as answers; commands act.

use chrono::{Duration as Days, Utc};
use drip::db;
use drip::domain::Timezone;
use drip::inbound;
use drip::subscriptions::{self, NewSubscriber};
use lettre::AsyncTransport;

use crate::on_both_databases;
use crate::support::{Backend, TestApp, at, request};

/// A subscriber who has received lesson 1; returns (Reply-To, Message-ID) of that mail.
async fn lesson_sent(t: &TestApp, email: &str) -> (String, String) {
    let now = at("2026-05-04T06:00:00Z");
    let s = NewSubscriber::parse(email, "Ann", "UTC", Timezone::UTC).unwrap();
    let id = subscriptions::add(
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
    let d = db::deliveries::for_subscriber(&t.app.db, id).await.unwrap();
    let lesson = d
        .iter()
        .find(|d| d.kind.as_str() == "lesson")
        .expect("lesson 1 sent");
    (t.app.reply_address(lesson.id), t.app.message_id(lesson.id))
}

fn reply_mail(from: &str, to: &str, in_reply_to: &str, message_id: &str, body: &str) -> String {
    format!(
        "From: Ann <{from}>\r\nTo: {to}\r\nSubject: Re: Lesson 1 · Before we begin\r\nMessage-ID: <{message_id}>\r\n\
         In-Reply-To: <{in_reply_to}>\r\nDate: Mon, 04 May 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    )
}

const ANSWER: &str = "I lied about the money for months. It was my sister's trust I broke.\r\n\r\n\
On Mon, May 4, 2026 at 8:00 AM Rebuilding Trust <course@example.org> wrote:\r\n> Hi Ann,\r\n> In one or two plain sentences, what happened?\r\n";

async fn replies_of(t: &TestApp, email: &str) -> Vec<db::replies::ReplyRow> {
    let s = db::subscribers::by_email(&t.app.db, email)
        .await
        .unwrap()
        .unwrap();
    db::replies::for_subscriber(&t.app.db, s.id).await.unwrap()
}

fn text(t: &TestApp, r: &db::replies::ReplyRow) -> String {
    String::from_utf8(t.app.open_reply_text(&r.text)).unwrap()
}

on_both_databases!(
    a_pause_whose_command_step_fails_is_applied_when_the_mail_server_retries,
    the_smtp_listener_stores_a_reply_sent_by_a_real_smtp_client,
    the_webhook_stores_a_reply_with_the_bearer_token_only,
    drip_ingest_stores_a_reply_from_a_file_and_dry_run_stores_nothing,
    the_same_message_ingested_twice_is_stored_once,
    a_reply_is_matched_by_in_reply_to_then_by_sender_and_a_forged_token_never_matches,
    auto_replies_and_bounces_never_count_as_answers,
    pause_and_stop_in_a_reply_act_on_the_subscription,
    a_forged_sender_or_bounce_is_kept_but_changes_nothing,
    an_answer_releases_a_lesson_that_waits_for_it,
    reply_text_is_not_stored_in_the_clear,
    a_reply_with_distress_words_is_flagged_and_the_acknowledgement_points_to_help,
);

async fn a_reply_with_distress_words_is_flagged_and_the_acknowledgement_points_to_help(
    backend: Backend,
) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "kim@example.com").await;
    let raw = reply_mail(
        "kim@example.com",
        &reply_to,
        &msg_id,
        "d@x.example",
        "Some days I want to die. He hits me when he drinks.\r\n",
    );
    let o = inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert!(o.flagged);
    let replies = replies_of(&t, "kim@example.com").await;
    assert_eq!(
        (replies[0].flagged, replies[0].flag_reason.as_str()),
        (1, "distress words")
    );
    let s = db::subscribers::by_email(&t.app.db, "kim@example.com")
        .await
        .unwrap()
        .unwrap();
    let notices: Vec<_> = db::deliveries::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind.as_str() == "notice")
        .collect();
    assert_eq!(notices.len(), 1, "one acknowledgement");
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let (_, mail) = t
        .outbox()
        .into_iter()
        .find(|(name, _)| name.ends_with("-notice.eml"))
        .expect("the acknowledgement was sent");
    let text = crate::support::text_part(&mail);
    // It says what happened (nobody read it), and where help is.
    assert!(text.contains("Nobody has read your reply yet"), "{text}");
    assert!(!text.contains("We read"), "{text}");
    assert!(text.contains("emergency number"), "{text}");
    // drip never answers the content itself: the acknowledgement does not quote the reply.
    assert!(!text.contains("drinks"));
    // An ordinary answer is not flagged.
    let raw = reply_mail(
        "kim@example.com",
        &reply_to,
        &msg_id,
        "d2@x.example",
        "I told her about the money today.\r\n",
    );
    assert!(
        !inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
            .await
            .unwrap()
            .flagged
    );
}

async fn the_smtp_listener_stores_a_reply_sent_by_a_real_smtp_client(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "ann@example.com").await;
    let addr = inbound::listener::spawn(t.app.clone(), "127.0.0.1:0").unwrap();
    let client =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(addr.port())
            .build();
    let raw = reply_mail(
        "ann@example.com",
        &reply_to,
        &msg_id,
        "r1@mail.example.com",
        ANSWER,
    );
    let envelope = lettre::address::Envelope::new(
        Some("ann@example.com".parse().unwrap()),
        vec![reply_to.parse().unwrap()],
    )
    .unwrap();
    let response = client
        .send_raw(&envelope, raw.as_bytes())
        .await
        .expect("250 after storing");
    assert_eq!(response.code().to_string(), "250");
    let replies = replies_of(&t, "ann@example.com").await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].kind.as_str(), "reply");
    assert_eq!(replies[0].lesson.as_deref(), Some("before-we-begin"));
    assert_eq!(replies[0].matched_by.as_deref(), Some("token"));
    assert_eq!(
        text(&t, &replies[0]),
        "I lied about the money for months. It was my sister's trust I broke."
    );

    // Not an open relay: another domain is refused at RCPT.
    let other = lettre::address::Envelope::new(
        Some("ann@example.com".parse().unwrap()),
        vec!["someone@elsewhere.example".parse().unwrap()],
    )
    .unwrap();
    let err = client.send_raw(&other, raw.as_bytes()).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");

    // Once drip shuts down, a session already open is refused its next mail, and a new one
    // its greeting, with 421: the sending server keeps the mail for when drip is back.
    let mut open = SmtpSession::connect(addr).await;
    assert!(open.say("EHLO mail.example.com").await.starts_with("250"));
    t.app.shutdown.cancel();
    let answer = open.say("MAIL FROM:<ann@example.com>").await;
    assert!(answer.starts_with("421"), "{answer}");
    let mut new = SmtpSession::connect(addr).await;
    let answer = new.say("EHLO mail.example.com").await;
    assert!(answer.starts_with("421"), "{answer}");
    assert_eq!(replies_of(&t, "ann@example.com").await.len(), 1);
}

/// A plain SMTP conversation, one command and its (last) answer line at a time.
struct SmtpSession {
    stream: tokio::io::BufStream<tokio::net::TcpStream>,
}

impl SmtpSession {
    async fn connect(addr: std::net::SocketAddr) -> SmtpSession {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut session = SmtpSession {
            stream: tokio::io::BufStream::new(stream),
        };
        let greeting = session.answer().await;
        assert!(greeting.starts_with("220"), "{greeting}");
        session
    }

    async fn say(&mut self, command: &str) -> String {
        use tokio::io::AsyncWriteExt;
        self.stream
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        self.stream.flush().await.unwrap();
        self.answer().await
    }

    /// The last line of a (possibly multi-line) answer: `250-...` lines continue it.
    async fn answer(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.unwrap();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return line;
            }
        }
    }
}

async fn the_webhook_stores_a_reply_with_the_bearer_token_only(backend: Backend) {
    let t = TestApp::build(backend, None, |c| {
        c.inbound.token = "a-long-webhook-token-for-tests".into()
    })
    .await;
    let (reply_to, msg_id) = lesson_sent(&t, "bea@example.com").await;
    let raw = reply_mail(
        "bea@example.com",
        &reply_to,
        &msg_id,
        "w1@mail.example.com",
        ANSWER,
    );
    let unauthorised = request(
        &t.app,
        "POST",
        "/inbound/email",
        Some("message/rfc822"),
        &raw,
    )
    .await;
    assert_eq!(unauthorised.0, 401);
    assert!(
        replies_of(&t, "bea@example.com").await.is_empty(),
        "nothing stored without the token"
    );
    use tower::ServiceExt;
    let req = axum::http::Request::post("/inbound/email")
        .header("content-type", "message/rfc822")
        .header("authorization", "Bearer a-long-webhook-token-for-tests")
        .body(axum::body::Body::from(raw))
        .unwrap();
    let response = drip::web::router(t.app.clone()).oneshot(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let replies = replies_of(&t, "bea@example.com").await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].lesson.as_deref(), Some("before-we-begin"));
}

async fn drip_ingest_stores_a_reply_from_a_file_and_dry_run_stores_nothing(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "cat@example.com").await;
    let file = t.dir.path().join("reply.eml");
    std::fs::write(
        &file,
        reply_mail(
            "cat@example.com",
            &reply_to,
            &msg_id,
            "i1@mail.example.com",
            ANSWER,
        ),
    )
    .unwrap();
    let config = t.dir.path().join("config.toml");
    let text_cfg = std::fs::read_to_string(crate::support::repo("config.toml"))
        .unwrap()
        .replace(
            "url = \"sqlite://drip.db\"",
            &format!("url = \"{}\"", t.db.url),
        )
        .replace(
            "outbox_dir = \"outbox\"",
            &format!("outbox_dir = \"{}\"", t.dir.path().join("outbox").display()),
        )
        .replace(
            "lessons_dir = \"lessons\"",
            &format!(
                "lessons_dir = \"{}\"",
                crate::support::repo("lessons").display()
            ),
        )
        .replace(
            "templates_dir = \"templates\"",
            &format!(
                "templates_dir = \"{}\"",
                crate::support::repo("templates").display()
            ),
        );
    std::fs::write(&config, text_cfg).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drip"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let dry = run(&["ingest", "--dry-run", "--json", file.to_str().unwrap()]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(json["kind"], "reply");
    assert_eq!(
        json["text"],
        "I lied about the money for months. It was my sister's trust I broke."
    );
    assert_eq!(json["command"], serde_json::Value::Null);
    assert_eq!(json["match"]["subscriber"], "cat@example.com");
    assert_eq!(json["match"]["lesson"], "before-we-begin");
    assert_eq!(json["match"]["by"], "token");
    assert!(
        replies_of(&t, "cat@example.com").await.is_empty(),
        "a dry run stores nothing"
    );
    let real = run(&["ingest", file.to_str().unwrap()]);
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert_eq!(replies_of(&t, "cat@example.com").await.len(), 1);
    // A truncated message gets a clear error and changes nothing.
    std::fs::write(&file, "").unwrap();
    let bad = run(&["ingest", file.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("message"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert_eq!(replies_of(&t, "cat@example.com").await.len(), 1);
}

async fn the_same_message_ingested_twice_is_stored_once(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "dan@example.com").await;
    let raw = reply_mail(
        "dan@example.com",
        &reply_to,
        &msg_id,
        "twice@mail.example.com",
        ANSWER,
    );
    let first = inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    let second = inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert!(first.stored.is_some() && !first.duplicate);
    assert!(second.stored.is_none() && second.duplicate);
    assert_eq!(replies_of(&t, "dan@example.com").await.len(), 1);
}

async fn a_reply_is_matched_by_in_reply_to_then_by_sender_and_a_forged_token_never_matches(
    backend: Backend,
) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "eve@example.com").await;
    // The token altered by one character: not a token match; In-Reply-To still finds it.
    let (local, domain) = reply_to.split_once('@').unwrap();
    let last = local.chars().last().unwrap();
    let forged = format!(
        "{}{}@{domain}",
        &local[..local.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let raw = reply_mail("eve@example.com", &forged, &msg_id, "m1@x.example", ANSWER);
    let o = inbound::ingest(&t.app, raw.as_bytes(), true, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        o.matched.as_ref().unwrap().by,
        drip::domain::MatchedBy::InReplyTo
    );
    // Neither token nor thread: the sender's latest lesson.
    let raw = reply_mail(
        "eve@example.com",
        "reply@example.org",
        "unknown@elsewhere",
        "m2@x.example",
        ANSWER,
    );
    let o = inbound::ingest(&t.app, raw.as_bytes(), true, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        o.matched.as_ref().unwrap().by,
        drip::domain::MatchedBy::Sender
    );
    // A stranger with a forged token matches nothing.
    let raw = reply_mail(
        "mallory@example.net",
        &forged,
        "unknown@elsewhere",
        "m3@x.example",
        ANSWER,
    );
    let o = inbound::ingest(&t.app, raw.as_bytes(), true, Utc::now())
        .await
        .unwrap();
    assert!(o.matched.is_none());
}

async fn auto_replies_and_bounces_never_count_as_answers(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "fay@example.com").await;
    let ooo = format!(
        "From: fay@example.com\r\nTo: {reply_to}\r\nSubject: Out of Office: Lesson 1\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <ooo@x.example>\r\n\
         In-Reply-To: <{msg_id}>\r\nContent-Type: text/plain\r\n\r\nI am away until Monday.\r\n"
    );
    let o = inbound::ingest(&t.app, ooo.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert_eq!(o.kind.as_str(), "auto_reply");
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.com\r\nTo: bounces@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn@mx.example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; fay@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{msg_id}>\r\nTo: fay@example.com\r\n\r\n--B--\r\n"
    );
    let o = inbound::ingest(&t.app, dsn.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert_eq!(o.kind.as_str(), "bounce");
    let s = db::subscribers::by_email(&t.app.db, "fay@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db::replies::count_answers(&t.app.db, s.id).await.unwrap(),
        0,
        "neither is an answer"
    );
    assert_eq!(s.status.as_str(), "bounced", "a 5.x.x bounce is hard");
    let d = db::deliveries::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap();
    assert_eq!(
        d.iter()
            .find(|d| d.kind.as_str() == "lesson")
            .unwrap()
            .status
            .as_str(),
        "bounced"
    );
}

async fn a_forged_sender_or_bounce_is_kept_but_changes_nothing(backend: Backend) {
    // Anyone can put a subscriber's address in From, or name it in a delivery report. Without
    // our signed reply address or one of our Message-IDs, such mail is stored for the admin
    // to see but neither pauses, stops nor bounces anyone.
    let t = TestApp::with_file_outbox(backend).await;
    lesson_sent(&t, "hal@example.com").await;
    let stop = "From: Hal <hal@example.com>\r\nTo: course@example.org\r\nSubject: hello\r\n\
                Message-ID: <forged-stop@evil.example>\r\nContent-Type: text/plain\r\n\r\nSTOP\r\n";
    let o = inbound::ingest(&t.app, stop.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        o.matched.as_ref().unwrap().by,
        drip::domain::MatchedBy::Sender
    );
    assert_eq!(o.command, None);
    assert!(o.stored.is_some(), "kept for the admin");
    let dsn = "From: MAILER-DAEMON@evil.example\r\nTo: course@example.org\r\nSubject: Undelivered Mail\r\n\
         Message-ID: <forged-dsn@evil.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; evil.example\r\n\r\n\
         Final-Recipient: rfc822; hal@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n";
    let o = inbound::ingest(&t.app, dsn.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert_eq!(o.kind.as_str(), "bounce");
    assert!(o.stored.is_some());
    let s = db::subscribers::by_email(&t.app.db, "hal@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.status.as_str(),
        "active",
        "neither the STOP nor the report acted"
    );
    let d = db::deliveries::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap();
    assert_eq!(
        d.iter()
            .find(|d| d.kind.as_str() == "lesson")
            .unwrap()
            .status
            .as_str(),
        "sent"
    );
}

async fn pause_and_stop_in_a_reply_act_on_the_subscription(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "gus@example.com").await;
    let raw = reply_mail(
        "gus@example.com",
        &reply_to,
        &msg_id,
        "p@x.example",
        "PAUSE\r\n\r\n> quoted lesson\r\n",
    );
    let o = inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert_eq!(o.command.map(|c| c.as_str()), Some("pause"));
    let gus = db::subscribers::by_email(&t.app.db, "gus@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, gus.id)
            .await
            .unwrap()[0]
            .status
            .as_str(),
        "paused",
        "the course the reply answers is paused"
    );
    let raw = reply_mail(
        "gus@example.com",
        &reply_to,
        &msg_id,
        "s@x.example",
        "Unsubscribe.\r\n",
    );
    inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    let s = db::subscribers::by_email(&t.app.db, "gus@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, s.id)
            .await
            .unwrap()[0]
            .status
            .as_str(),
        "stopped",
        "STOP leaves the course the reply answers"
    );
    // Each command is confirmed by mail (a notice for the pause, the goodbye for the stop).
    let kinds: Vec<String> = db::deliveries::for_subscriber(&t.app.db, s.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.kind.as_str().to_owned())
        .collect();
    assert!(
        kinds.contains(&"notice".to_owned()) && kinds.contains(&"goodbye".to_owned()),
        "{kinds:?}"
    );
}

/// Makes the database refuse to pause anyone, as a lock or a restart would at that moment:
/// a trigger on the enrollment's status change, the very step the command takes after the reply is
/// stored. Returns the statement that removes it.
async fn refuse_pausing(t: &TestApp, backend: Backend) -> &'static str {
    let pool = t.app.db.pool();
    match backend {
        Backend::Sqlite => {
            sqlx::query(
                "CREATE TRIGGER refuse_pause BEFORE UPDATE OF status ON enrollments \
                 WHEN NEW.status = 'paused' BEGIN SELECT RAISE(ABORT, 'injected: the database went away'); END",
            )
            .execute(pool)
            .await
            .unwrap();
            "DROP TRIGGER refuse_pause"
        }
        Backend::Postgres => {
            sqlx::query(
                "CREATE FUNCTION refuse_pause() RETURNS trigger AS $$ BEGIN \
                 IF NEW.status = 'paused' THEN RAISE EXCEPTION 'injected: the database went away'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
            )
            .execute(pool)
            .await
            .unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_pause BEFORE UPDATE ON enrollments FOR EACH ROW EXECUTE FUNCTION refuse_pause()",
            )
            .execute(pool)
            .await
            .unwrap();
            "DROP TRIGGER refuse_pause ON enrollments"
        }
    }
}

async fn a_pause_whose_command_step_fails_is_applied_when_the_mail_server_retries(
    backend: Backend,
) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "hal@example.com").await;
    let raw = reply_mail(
        "hal@example.com",
        &reply_to,
        &msg_id,
        "pause-once@x.example",
        "PAUSE\r\n\r\nI need a few days.\r\n",
    );
    let undo = refuse_pausing(&t, backend).await;
    let first = inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now()).await;
    assert!(
        first.is_err(),
        "the command step failed, so the whole ingest must fail (the MTA then retries)"
    );
    // Nothing of that attempt stayed: no reply, so the retry is not taken for a duplicate.
    assert!(replies_of(&t, "hal@example.com").await.is_empty());
    sqlx::query(undo).execute(t.app.db.pool()).await.unwrap();

    // The mail server delivers the same message again.
    let again = inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert!(
        !again.duplicate,
        "the retry is stored, not dropped as a copy"
    );
    assert_eq!(again.command.map(|c| c.as_str()), Some("pause"));
    let s = db::subscribers::by_email(&t.app.db, "hal@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, s.id)
            .await
            .unwrap()[0]
            .status
            .as_str(),
        "paused",
        "the retry applied the PAUSE"
    );
    assert_eq!(replies_of(&t, "hal@example.com").await.len(), 1);
    // A third delivery of the same mail is the duplicate, and changes nothing more.
    let third = inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    assert!(third.duplicate);
    assert_eq!(replies_of(&t, "hal@example.com").await.len(), 1);
}

async fn an_answer_releases_a_lesson_that_waits_for_it(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let course = t.app.course(None).await.unwrap();
    let lessons = db::lessons::list(&t.app.db, course.id).await.unwrap();
    let waiting = lessons.iter().find(|l| l.content.wait_for_reply).unwrap();
    let t0 = at("2026-05-04T06:00:00Z");
    let s = NewSubscriber::parse("hal@example.com", "", "UTC", Timezone::UTC).unwrap();
    let id = subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &s,
        true,
        "test",
        t0,
    )
    .await
    .unwrap();
    let mut now = t0;
    let delivery = loop {
        drip::outbox::tick(&t.app, now).await.unwrap();
        let d = db::deliveries::for_subscriber(&t.app.db, id).await.unwrap();
        if let Some(d) = d
            .into_iter()
            .find(|d| d.lesson.as_deref() == Some(waiting.slug.as_str()))
        {
            break d;
        }
        now = chrono::DateTime::from_timestamp(
            db::deliveries::next_wakeup(&t.app.db)
                .await
                .unwrap()
                .unwrap(),
            0,
        )
        .unwrap();
    };
    let e = &db::enrollments::for_subscriber(&t.app.db, id)
        .await
        .unwrap()[0];
    assert_eq!((e.waiting_reply, e.next_due_at.is_some()), (1, true));
    let held_until = e.next_due_at.unwrap();
    let answer_at = now + Days::hours(3);
    let raw = reply_mail(
        "hal@example.com",
        &t.app.reply_address(delivery.id),
        &t.app.message_id(delivery.id),
        "w@x.example",
        "Here is my statement.\r\n",
    );
    inbound::ingest(&t.app, raw.as_bytes(), false, answer_at)
        .await
        .unwrap();
    let e = &db::enrollments::for_subscriber(&t.app.db, id)
        .await
        .unwrap()[0];
    assert_eq!(e.waiting_reply, 0);
    assert!(
        e.next_due_at.unwrap() < held_until,
        "the answer brings the next lesson forward"
    );
    assert!(e.next_due_at.unwrap() >= answer_at.timestamp());
}

async fn reply_text_is_not_stored_in_the_clear(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let (reply_to, msg_id) = lesson_sent(&t, "ida@example.com").await;
    let secret = "the-loan-from-my-brother-that-nobody-knows-about";
    let raw = reply_mail("ida@example.com", &reply_to, &msg_id, "c@x.example", secret);
    inbound::ingest(&t.app, raw.as_bytes(), false, Utc::now())
        .await
        .unwrap();
    let rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = sqlx::query_as("SELECT text, raw FROM replies")
        .fetch_all(t.app.db.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let needle = secret.as_bytes();
    for bytes in [&rows[0].0, rows[0].1.as_ref().unwrap()] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "reply stored in the clear"
        );
    }
    assert_eq!(
        text(&t, &replies_of(&t, "ida@example.com").await[0]),
        secret
    );
    if backend == Backend::Sqlite {
        // And the database file itself holds no copy of it.
        let path = t.db.url.trim_start_matches("sqlite://").to_owned();
        t.app.db.close().await;
        let mut file = std::fs::read(&path).unwrap();
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            file.extend(wal);
        }
        assert!(
            !file.windows(needle.len()).any(|w| w == needle),
            "the database file holds the reply in the clear"
        );
    }
}
