//! The SMTP server misbehaving: down for a while then back, answering every command
//! seconds late, answering too late for the client, cutting a mail short mid-DATA. Mail
//! goes through [`FaultProxy`] to the real test server.

use std::time::{Duration, Instant};

use chrono::Utc;
use drip::config::Transport;

use super::proxy::{FaultProxy, Mode};
use super::{arrivals, count, expected_ids, seed_due, wait_for_count};
use crate::on_both_databases;
use crate::support::{Backend, SmtpServer, TestApp};

on_both_databases!(
    an_smtp_outage_holds_the_queue_with_backoff_and_loses_nothing,
    a_server_that_takes_seconds_per_command_gets_each_mail_once,
    an_answer_too_late_means_one_resend_with_the_same_message_id,
    a_connection_cut_mid_data_is_retried_and_recorded_once,
);

/// A drip app whose mail goes through `proxy`.
async fn app_behind(
    backend: Backend,
    proxy: &FaultProxy,
    tweak: impl FnOnce(&mut drip::config::Config),
) -> TestApp {
    let port = proxy.port();
    TestApp::build(backend, None, move |c| {
        c.mail.transport = Transport::Smtp;
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.timeout_seconds = 5;
        c.schedule.tick_seconds = 1;
        tweak(c);
    })
    .await
}

async fn an_smtp_outage_holds_the_queue_with_backoff_and_loses_nothing(backend: Backend) {
    const DUE: usize = 20;
    const POOL: usize = 4;
    let smtp = SmtpServer::start();
    let proxy = FaultProxy::start(smtp.addr, Mode::Down).await;
    let t = app_behind(backend, &proxy, |c| c.smtp.pool_size = POOL as u32).await;
    seed_due(&t.app, DUE).await;
    let worker = tokio::spawn(drip::server::worker_loop(t.app.clone()));

    // Down for 12 s of one-second ticks. A sender that tried every mail on every tick
    // would make 20 connections a tick; drip tries once per pooled connection, finds the
    // server gone and holds the queue, then sends one probe after 5 s (and would next
    // try after 10 s more, then 20, ... up to 5 minutes).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let while_down = proxy.connections();
    assert!(
        (2..=POOL + 2).contains(&while_down),
        "{while_down} connection attempts in 12 s of outage"
    );
    assert_eq!(smtp.messages().len(), 0);
    // Every mail is still queued, with no error recorded against it: the outage is the
    // server's, not the mails' (a probe may be in flight at this moment, so leases and
    // attempts are checked at the end, when each mail has exactly the one that got through).
    let touched = count(
        &t.app,
        "SELECT COUNT(*) FROM deliveries WHERE status <> 'queued' OR last_error IS NOT NULL",
    )
    .await;
    assert_eq!(touched, 0, "no mail failed, retried or was sent");
    assert_eq!(
        count(&t.app, "SELECT COUNT(*) FROM deliveries").await,
        DUE as i64
    );

    proxy.set_mode(Mode::Up);
    let back = Instant::now();
    wait_for_count(
        &t.app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
        DUE as i64,
        Duration::from_secs(60),
        || format!("{} arrived", smtp.messages().len()),
    )
    .await;
    let caught_up = back.elapsed();
    t.app.shutdown.cancel();
    worker.await.unwrap();

    let seen = arrivals(&smtp);
    for id in expected_ids(&t.app).await {
        assert_eq!(seen.get(&id), Some(&1), "{id} arrives exactly once");
    }
    assert_eq!(seen.len(), DUE);
    let retried = count(
        &t.app,
        "SELECT COUNT(*) FROM deliveries WHERE attempts <> 1 OR last_error IS NOT NULL",
    )
    .await;
    assert_eq!(retried, 0, "one attempt each, the one that went through");
    eprintln!(
        "{backend:?}: {while_down} connection attempts in 12 s of outage; all {DUE} sent {:.1} s after the server came back",
        caught_up.as_secs_f64()
    );
}

async fn a_server_that_takes_seconds_per_command_gets_each_mail_once(backend: Backend) {
    const DELAY: Duration = Duration::from_secs(2);
    let smtp = SmtpServer::start();
    let proxy = FaultProxy::start(smtp.addr, Mode::Slow(DELAY)).await;
    // Each reply 2 s late: greeting, EHLO, MAIL, RCPT, DATA and the final dot take 12 s,
    // within the 10 s a command may take and the 20 s a whole send may take.
    let t = app_behind(backend, &proxy, |c| {
        c.smtp.timeout_seconds = 10;
        c.smtp.pool_size = 3;
    })
    .await;
    seed_due(&t.app, 3).await;
    let started = Instant::now();
    let report = drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let took = started.elapsed();
    assert_eq!((report.sent, report.retried, report.failed), (3, 0, 0));
    assert!(took >= DELAY * 6, "the server was slow ({took:?})");
    let seen = arrivals(&smtp);
    assert_eq!(seen.len(), 3);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let sent = count(
        &t.app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND attempts = 1",
    )
    .await;
    assert_eq!(sent, 3);
}

async fn an_answer_too_late_means_one_resend_with_the_same_message_id(backend: Backend) {
    // The server takes the whole mail, then answers after the client gave up waiting: the
    // mail did arrive, but drip cannot know. It must not count it as sent (that could lose
    // it), so it sends again later, with the same Message-ID, and records it once.
    let smtp = SmtpServer::start();
    smtp.set_delay(Duration::from_secs(4));
    let proxy = FaultProxy::start(smtp.addr, Mode::Up).await;
    let t = app_behind(backend, &proxy, |c| {
        c.smtp.timeout_seconds = 1;
        c.smtp.pool_size = 1;
    })
    .await;
    seed_due(&t.app, 1).await;
    let now = Utc::now();
    let first = drip::outbox::tick(&t.app, now).await.unwrap();
    assert_eq!((first.sent, first.retried), (0, 1));
    smtp.set_delay(Duration::ZERO);
    let arrived = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        arrived.len(),
        1,
        "the server kept the mail it answered late"
    );

    let later = now + chrono::Duration::minutes(10);
    let second = drip::outbox::tick(&t.app, later).await.unwrap();
    assert_eq!(second.sent, 1);
    let seen = arrivals(&smtp);
    let ids = expected_ids(&t.app).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(
        seen.get(&ids[0]),
        Some(&2),
        "two copies, one Message-ID: {seen:?}"
    );
    let (status, attempts): (String, i64) =
        sqlx::query_as("SELECT status, attempts FROM deliveries")
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("sent", 2));
}

async fn a_connection_cut_mid_data_is_retried_and_recorded_once(backend: Backend) {
    let smtp = SmtpServer::start();
    let proxy = FaultProxy::start(smtp.addr, Mode::CutMidData(300)).await;
    let t = app_behind(backend, &proxy, |c| c.smtp.pool_size = 1).await;
    seed_due(&t.app, 3).await;
    let now = Utc::now();
    // The first mail is cut 300 bytes into its content; the server drops the partial mail.
    // The next two go out on a new connection in the same pass.
    let first = drip::outbox::tick(&t.app, now).await.unwrap();
    assert_eq!(proxy.cuts(), 1);
    assert_eq!((first.sent, first.retried, first.failed), (2, 1, 0));
    assert_eq!(smtp.messages().len(), 2, "no partial mail was delivered");
    let (error,): (String,) =
        sqlx::query_as("SELECT last_error FROM deliveries WHERE status = 'queued'")
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert!(!error.is_empty());

    // Its retry is due within the first backoff (one minute, with jitter).
    let second = drip::outbox::tick(&t.app, now + chrono::Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!((second.sent, second.retried), (1, 0));
    let seen = arrivals(&smtp);
    for id in expected_ids(&t.app).await {
        assert_eq!(seen.get(&id), Some(&1), "{id} arrives exactly once");
    }
    let sent = count(
        &t.app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND sent_at IS NOT NULL",
    )
    .await;
    assert_eq!(sent, 3, "each delivery recorded once, as sent");
}
