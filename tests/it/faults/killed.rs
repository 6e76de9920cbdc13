//! `drip serve` SIGKILLed while it sends a batch, then started again: every due lesson is
//! delivered; the only copies are of mails the server had accepted and drip had not yet
//! recorded, at most two per connection however big the batch, and a copy carries the same
//! Message-ID as the first (so the recipient's mail program shows one).

use std::time::{Duration, Instant};

use super::{Drip, arrivals, count, drip_env, expected_ids, seed_due, set_env, wait_for_count};
use crate::on_both_databases;
use crate::support::{Backend, SmtpServer, TestApp};

const SUBSCRIBERS: usize = 400;
/// `[smtp] pool_size` in `drip_env`.
const CONNECTIONS: i64 = 2;
/// The whole of the first claim: a kill mid-batch finds most of it unsent.
const BATCH: i64 = 200;
/// `[schedule] unrecorded_per_connection`, as shipped.
const WINDOW: i64 = 2;

on_both_databases!(serve_killed_mid_batch_then_restarted_delivers_every_lesson);

async fn serve_killed_mid_batch_then_restarted_delivers_every_lesson(backend: Backend) {
    let _turn = crate::support::PROCESSES.lock().await;
    let t = TestApp::with_file_outbox(backend).await;
    let (app, dir) = (t.app.clone(), t.dir.path());
    let smtp = SmtpServer::start();
    // Slow enough that a batch is always on its way when the kill comes.
    smtp.set_delay(Duration::from_millis(15));
    seed_due(&app, SUBSCRIBERS).await;
    let mut env = drip_env(&t.db.url, smtp.addr.port(), dir);
    set_env(&mut env, "DRIP_SCHEDULE__BATCH_SIZE", BATCH.to_string());
    set_env(
        &mut env,
        "DRIP_SCHEDULE__UNRECORDED_PER_CONNECTION",
        WINDOW.to_string(),
    );
    assert!(
        env.contains(&("DRIP_SMTP__POOL_SIZE", CONNECTIONS.to_string())),
        "the bound below counts drip_env's connections"
    );

    let mut first = Drip::start("serve", &env, dir, "serve-1");
    let owner = format!("%:{}:%", first.pid());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            first.is_running() && Instant::now() < deadline,
            "no batch in flight to kill\n{}",
            first.tail()
        );
        if smtp.messages().len() >= 50 {
            let (held,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'queued' AND lease_owner LIKE $1",
            )
            .bind(&owner)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
            if held > 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    let at_kill = smtp.messages().len();
    // What the dead process had claimed: the batch it was sending and the one it had
    // claimed ahead. Only mails of the first can have reached the server unrecorded.
    let (in_flight,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM deliveries WHERE status = 'queued' AND lease_owner LIKE $1",
    )
    .bind(&owner)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert!(in_flight > 0);

    let mut second = Drip::start("serve", &env, dir, "serve-2");
    wait_for_count(
        &app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
        SUBSCRIBERS as i64,
        Duration::from_secs(120),
        || second.tail(),
    )
    .await;
    // A copy still on its way would arrive within the server's delay.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(second.is_running(), "{}", second.tail());

    let expected = expected_ids(&app).await;
    assert_eq!(expected.len(), SUBSCRIBERS, "one delivery per subscriber");
    let seen = arrivals(&smtp);
    for id in &expected {
        assert!(seen.contains_key(id), "never arrived: {id}");
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "every mail that arrived carries its delivery's Message-ID"
    );
    let copies: i64 = seen.values().map(|n| i64::from(*n) - 1).sum();
    assert!(
        seen.values().all(|n| *n <= 2),
        "no mail arrived three times"
    );
    assert!(
        copies <= in_flight,
        "{copies} copies, but only {in_flight} mails were in the killed process's hands"
    );
    // Accepted but not yet recorded: at most WINDOW mails per connection. Not the batch.
    assert!(
        copies <= WINDOW * CONNECTIONS + 2,
        "{copies} copies over {CONNECTIONS} connections with {in_flight} mails claimed: more than what was in flight"
    );
    let failed = count(
        &app,
        "SELECT COUNT(*) FROM deliveries WHERE status <> 'sent'",
    )
    .await;
    assert_eq!(failed, 0);
    eprintln!(
        "{backend:?}: killed drip serve with {in_flight} mails claimed after {at_kill} had arrived; all {SUBSCRIBERS} delivered, {copies} twice with the same Message-ID (bound {})",
        WINDOW * CONNECTIONS + 2
    );
}
