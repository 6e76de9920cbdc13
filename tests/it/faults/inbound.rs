//! The inbound listener killed between receiving a reply and storing it. The sending MTA
//! must not have been told 250, so it keeps the message and sends it again; the retry is
//! stored once, and a second retry (an MTA that never saw our 250) is not stored twice.

use std::time::{Duration, Instant};

use chrono::Utc;
use lettre::AsyncTransport;
use lettre::address::Envelope;

use super::database::Locker;
use super::{Drip, count, drip_env, seed_due, set_env};
use crate::on_both_databases;
use crate::support::{Backend, SmtpServer, TestApp};

on_both_databases!(a_listener_killed_before_storing_never_said_250_and_the_retry_is_stored_once);

/// What a sending MTA does: one SMTP transaction, to our listener.
async fn send_reply(port: u16, from: &str, to: &str, raw: &[u8]) -> Result<(), String> {
    let mta = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_secs(60)))
        .build();
    let envelope = Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
    mta.send_raw(&envelope, raw)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn wait_for_listener(drip: &mut Drip) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !drip.log().contains("inbound SMTP listener started") {
        assert!(
            drip.is_running() && Instant::now() < deadline,
            "no listener:\n{}",
            drip.tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_listener_killed_before_storing_never_said_250_and_the_retry_is_stored_once(
    backend: Backend,
) {
    let _turn = crate::support::PROCESSES.lock().await;
    // A subscriber who received lesson 1, written to the outbox by an in-process drip.
    let t = TestApp::with_file_outbox(backend).await;
    seed_due(&t.app, 1).await;
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let (delivery,): (i64,) = sqlx::query_as("SELECT id FROM deliveries")
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
    let reply_to = t.app.reply_address(delivery);
    let raw = format!(
        "From: Reader 1 <reader1@example.com>\r\nTo: {reply_to}\r\nSubject: Re: Lesson 1\r\n\
         Message-ID: <answer-1@mail.example.com>\r\nIn-Reply-To: <{}>\r\n\
         Date: Mon, 04 May 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         I told my sister the truth about the money today.\r\n",
        t.app.message_id(delivery)
    );

    let port = SmtpServer::reserve_port();
    let mut env = drip_env(&t.db.url, 9, t.dir.path());
    set_env(&mut env, "DRIP_MAIL__TRANSPORT", "file".into());
    // The listener says when it has the whole message and starts storing it.
    set_env(&mut env, "DRIP_LOG", "info,drip::inbound=debug".into());
    set_env(
        &mut env,
        "DRIP_INBOUND__SMTP_BIND",
        format!("127.0.0.1:{port}"),
    );
    let mut first = Drip::start("serve", &env, t.dir.path(), "serve-1");
    wait_for_listener(&mut first).await;

    // Another process holds the database, so storing waits; the MTA waits for its answer.
    let lock = Locker::hold(backend, &t.db.url).await;
    let mta = tokio::spawn({
        let raw = raw.clone();
        let reply_to = reply_to.clone();
        async move { send_reply(port, "reader1@example.com", &reply_to, raw.as_bytes()).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !first.log().contains("inbound message received; storing") {
        assert!(
            Instant::now() < deadline,
            "the message never reached the listener:\n{}",
            first.tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Received whole, now waiting on the database: no answer may have gone out yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !mta.is_finished(),
        "the listener answered before it could store: {:?}",
        mta.await
    );
    first.kill();
    let answer = mta.await.unwrap();
    assert!(
        answer.is_err(),
        "the MTA must not have been told 250: {answer:?}"
    );
    lock.release().await;
    assert_eq!(count(&t.app, "SELECT COUNT(*) FROM replies").await, 0);

    // The MTA tries again (as it does, for hours) once drip is back.
    let mut second = Drip::start("serve", &env, t.dir.path(), "serve-2");
    wait_for_listener(&mut second).await;
    send_reply(port, "reader1@example.com", &reply_to, raw.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", second.tail()));
    // An MTA that lost our 250 sends once more: still one reply.
    send_reply(port, "reader1@example.com", &reply_to, raw.as_bytes())
        .await
        .unwrap();
    let replies: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT delivery_id, text FROM replies WHERE kind = 'reply'")
            .fetch_all(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!(replies.len(), 1, "stored once");
    assert_eq!(replies[0].0, delivery, "tied to the lesson it answers");
    let text = String::from_utf8(t.app.open_reply_text(&replies[0].1)).unwrap();
    assert!(text.contains("I told my sister the truth"), "{text}");
}
