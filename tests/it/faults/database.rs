//! The database out of reach for a while: the SQLite file (or PostgreSQL tables) locked by
//! another process, and the PostgreSQL server restarting under a worker. drip logs, answers
//! 503 to what it cannot do now, retries, and carries on without a restart by hand.

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::{AnyConnection, Connection, Executor};

use super::proxy::{FaultProxy, Mode};
use super::{
    Drip, arrivals, count, drip_env, expected_ids, http, seed_due, serving_address, wait_for_count,
};
use crate::on_both_databases;
use crate::support::{Backend, SmtpServer, TestApp, postgres_url};

/// Another process's connection holding the write lock: `BEGIN EXCLUSIVE` on SQLite (WAL
/// readers go on), `LOCK TABLE … IN EXCLUSIVE MODE` on PostgreSQL (likewise).
pub struct Locker {
    conn: AnyConnection,
}

impl Locker {
    pub async fn hold(backend: Backend, url: &str) -> Locker {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(url).await.unwrap();
        match backend {
            Backend::Sqlite => {
                conn.execute("BEGIN EXCLUSIVE").await.unwrap();
            }
            Backend::Postgres => {
                conn.execute("BEGIN").await.unwrap();
                conn.execute(
                    "LOCK TABLE subscribers, enrollments, deliveries, replies, events IN EXCLUSIVE MODE",
                )
                .await
                .unwrap();
            }
        }
        Locker { conn }
    }

    /// Runs a statement inside the locked transaction (seen by others at release).
    pub async fn execute(&mut self, sql: &str) {
        self.conn.execute(sql).await.unwrap();
    }

    pub async fn release(mut self) {
        self.conn.execute("COMMIT").await.unwrap();
        self.conn.close().await.unwrap();
    }
}

on_both_databases!(a_locked_database_is_waited_out_and_nothing_is_lost);

async fn a_locked_database_is_waited_out_and_nothing_is_lost(backend: Backend) {
    let _turn = crate::support::PROCESSES.lock().await;
    let t = TestApp::with_file_outbox(backend).await;
    let (app, db, dir) = (t.app.clone(), &t.db, t.dir.path());
    let smtp = SmtpServer::start();
    let course = app.course(None).await.unwrap();
    let env = drip_env(&db.url, smtp.addr.port(), dir);
    let mut drip = Drip::start("serve", &env, dir, "serve");
    let addr = serving_address(&mut drip).await;

    let mut lock = Locker::hold(backend, &db.url).await;
    // Five lessons fall due inside the lock holder's transaction: drip sees them only once
    // the lock is gone, and must then send them.
    let now = chrono::Utc::now().timestamp();
    let values: Vec<String> = (1..=5)
        .map(|i| {
            format!("('held{i}@example.com', 'Held {i}', 'UTC', 'active', {now}, {now}, {now})")
        })
        .collect();
    lock.execute(&format!(
        "INSERT INTO subscribers (email, name, timezone, status, created_at, confirmed_at, status_at) VALUES {}",
        values.join(", ")
    ))
    .await;
    lock.execute(&format!(
        "INSERT INTO enrollments (subscriber_id, course_id, status, position, next_due_at, created_at, updated_at) \
         SELECT id, {}, 'active', 0, {}, {now}, {now} FROM subscribers",
        course.id,
        now - 60
    ))
    .await;

    // A sign-up while the lock is held waits out the busy (lock) timeout, then is told to
    // come back: a 503 that changed nothing, not a 500 and not a lost sign-up.
    let form = "email=new%40example.com&name=New&timezone=UTC";
    let (status, response) = http(&addr, "POST", "/subscribe", form).await;
    assert_eq!(status, 503, "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after:"),
        "{response}"
    );
    assert!(response.contains("Nothing was changed"), "{response}");
    // Longer than the busy timeout once more, so that a scheduler pass fails on it too.
    tokio::time::sleep(Duration::from_secs(12)).await;
    lock.release().await;

    wait_for_count(
        &app,
        "SELECT COUNT(*) FROM deliveries WHERE kind = 'lesson' AND status = 'sent'",
        5,
        Duration::from_secs(60),
        || drip.tail(),
    )
    .await;
    let (status, response) = http(&addr, "POST", "/subscribe", form).await;
    assert_eq!(status, 200, "{response}");
    let mails = smtp.wait_for(6, Duration::from_secs(30)).await;
    assert!(
        mails.iter().any(|m| m.to == ["new@example.com"]),
        "the confirmation mail of the retried sign-up"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM subscribers WHERE email = 'new@example.com'"
        )
        .await,
        1
    );
    assert!(drip.is_running(), "{}", drip.tail());
    let log = drip.log();
    assert!(
        log.contains("tick failed") && log.contains("answered 503"),
        "the lock was logged:\n{}",
        drip.tail()
    );
}

/// host:port of a postgres:// URL.
fn server_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap();
    let authority = rest.split('/').next().unwrap();
    authority.rsplit('@').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_a_worker_is_ridden_out() {
    const DUE: usize = 400;
    const BATCH: i64 = 25;
    if postgres_url().is_none() {
        return;
    }
    let _turn = crate::support::PROCESSES.lock().await;
    let t = TestApp::with_file_outbox(Backend::Postgres).await;
    let (app, db, dir) = (t.app.clone(), &t.db, t.dir.path());
    let server = server_of(&db.url);
    let upstream: SocketAddr = tokio::net::lookup_host(&server)
        .await
        .unwrap()
        .next()
        .unwrap();
    // drip reaches PostgreSQL through the proxy; a restart is every connection cut at once,
    // then connections refused for a while.
    let proxy = FaultProxy::start(upstream, Mode::Up).await;
    let proxied = db.url.replacen(&server, &proxy.addr.to_string(), 1);
    let smtp = SmtpServer::start();
    smtp.set_delay(Duration::from_millis(25));
    seed_due(&app, DUE).await;
    let env = drip_env(&proxied, smtp.addr.port(), dir);
    let mut worker = Drip::start("worker", &env, dir, "worker");

    let arrived = smtp.wait_for(60, Duration::from_secs(60)).await.len();
    assert!(arrived >= 60, "no progress\n{}", worker.tail());
    proxy.set_mode(Mode::Down);
    proxy.sever_all();
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.set_mode(Mode::Up);

    wait_for_count(
        &app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
        DUE as i64,
        Duration::from_secs(120),
        || worker.tail(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(worker.is_running(), "{}", worker.tail());
    assert!(
        worker.log().contains("ERROR"),
        "the outage was logged:\n{}",
        worker.tail()
    );
    let expected = expected_ids(&app).await;
    assert_eq!(expected.len(), DUE);
    let seen = arrivals(&smtp);
    for id in &expected {
        assert!(seen.contains_key(id), "never arrived: {id}");
    }
    assert_eq!(
        seen.len(),
        DUE,
        "every copy carries its delivery's Message-ID"
    );
    let copies: i64 = seen.values().map(|n| i64::from(*n) - 1).sum();
    assert!(
        copies <= BATCH,
        "{copies} copies: more than the one batch whose record the restart cut off"
    );
    eprintln!(
        "PostgreSQL cut off for 5 s after {arrived} of {DUE} mails: all delivered, {copies} twice (same Message-ID)"
    );
}
