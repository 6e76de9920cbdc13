//! Scale-out on PostgreSQL: four `drip worker` processes share one database and send
//! 20,000 due lessons to a real SMTP server. Every Message-ID arrives exactly once; and when
//! one worker is killed (SIGKILL) mid-way, nothing is lost: its leases run out, the others
//! send the rest, and the only copies are of mails in the killed worker's batch in flight,
//! with the same Message-ID. Runs when DRIP_TEST_POSTGRES_URL is set.

use std::collections::HashMap;
use std::fs::File;
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drip::app::App;
use mailin_embedded::{Handler, Response, Server};

use crate::faults::expected_ids;
use crate::support::{Backend, TestApp, postgres_url, repo};

const SUBSCRIBERS: i64 = 20_000;
const WORKERS: usize = 4;
const BATCH: i64 = 100;
const POOL: u32 = 2;
const LEASE_SECONDS: u64 = 10;

/// An SMTP server that keeps only what this test counts: each message's Message-ID.
#[derive(Clone, Default)]
struct MessageIds {
    seen: Arc<Mutex<HashMap<String, u32>>>,
    headers: Vec<u8>,
    in_body: bool,
}

impl Handler for MessageIds {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        mailin_embedded::response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _8bit: bool, _to: &[String]) -> Response {
        self.headers.clear();
        self.in_body = false;
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if !self.in_body {
            if buf == b"\r\n" || buf == b"\n" {
                self.in_body = true;
            } else {
                self.headers.extend_from_slice(buf);
            }
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let head = String::from_utf8_lossy(&self.headers)
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ");
        let id = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("message-id")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default();
        *self.seen.lock().unwrap().entry(id).or_default() += 1;
        mailin_embedded::response::OK
    }
}

impl MessageIds {
    fn start() -> (MessageIds, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handler = MessageIds::default();
        let mut server = Server::new(handler.clone());
        // mailin gives each connection a thread until it closes: one per pooled connection
        // of every worker, and spares for the connections a killed worker leaves behind.
        server
            .with_name("scale.test")
            .with_num_threads(WORKERS as u32 * POOL * 2)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        (handler, port)
    }

    fn received(&self) -> u32 {
        self.seen.lock().unwrap().values().sum()
    }

    fn counts(&self) -> HashMap<String, u32> {
        self.seen.lock().unwrap().clone()
    }
}

/// The worker processes; killed when the test ends, however it ends.
struct Workers {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Workers {
    fn start(config: &Path, db_url: &str, dir: &Path) -> Workers {
        let mut workers = Workers {
            children: Vec::new(),
            logs: Vec::new(),
        };
        for i in 0..WORKERS {
            let log = dir.join(format!("worker-{i}.log"));
            let child = Command::new(env!("CARGO_BIN_EXE_drip"))
                .arg("--config")
                .arg(config)
                .arg("worker")
                .env("DRIP_DATABASE__URL", db_url)
                .env("DRIP_DATABASE__MAX_CONNECTIONS", "4")
                .env("DRIP_SCHEDULE__BATCH_SIZE", BATCH.to_string())
                .env("DRIP_SCHEDULE__LEASE_SECONDS", LEASE_SECONDS.to_string())
                .env("DRIP_SCHEDULE__TICK_SECONDS", "1")
                .env("DRIP_SMTP__POOL_SIZE", POOL.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                .spawn()
                .expect("start drip worker");
            workers.children.push(child);
            workers.logs.push(log);
        }
        workers
    }

    /// The end of each worker's log, to explain a failure.
    fn log_tails(&self) -> String {
        self.logs
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                format!(
                    "{}:\n  {}",
                    p.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh schema with the course synced and SUBSCRIBERS confirmed subscribers whose first
/// lesson is due; the configuration file the workers read.
struct Setup {
    t: TestApp,
    smtp: MessageIds,
    config: PathBuf,
}

async fn setup() -> Setup {
    let t = TestApp::build(Backend::Postgres, None, |c| {
        c.mail.transport = drip::config::Transport::Smtp
    })
    .await;
    let (app, dir) = (t.app.clone(), t.dir.path());
    let (smtp, port) = MessageIds::start();
    let course = app.course(None).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    sqlx::query(
        "INSERT INTO subscribers (email, name, timezone, status, created_at, confirmed_at, status_at) \
         SELECT 'reader' || i || '@example.com', 'Reader' || i, 'UTC', 'active', $1, $1, $1 \
         FROM generate_series(1, $2::bigint) AS i",
    )
    .bind(now)
    .bind(SUBSCRIBERS)
    .execute(app.db.pool())
    .await
    .unwrap();
    crate::faults::enroll_all_due(&app, course.id, now - 60).await;
    sqlx::query("ANALYZE").execute(app.db.pool()).await.unwrap();
    // The shipped configuration with mail going to this test's server; the database URL
    // comes from DRIP_DATABASE__URL, as an operator would pass a secret.
    let text = std::fs::read_to_string(repo("config.toml"))
        .unwrap()
        .replace("transport = \"file\"", "transport = \"smtp\"")
        .replace("port = 25", &format!("port = {port}"))
        .replace("timeout_seconds = 30", "timeout_seconds = 5")
        .replace(
            "lessons_dir = \"lessons\"",
            &format!("lessons_dir = {:?}", repo("lessons")),
        )
        .replace(
            "templates_dir = \"templates\"",
            &format!("templates_dir = {:?}", repo("templates")),
        )
        .replace(
            "outbox_dir = \"outbox\"",
            &format!("outbox_dir = {:?}", dir.join("outbox")),
        )
        .replace("level = \"info\"", "level = \"warn\"");
    let config = dir.join("config.toml");
    std::fs::write(&config, text).unwrap();
    Setup { t, smtp, config }
}

async fn count(app: &App, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(app.db.pool()).await.unwrap();
    n
}

/// Waits (bounded) until every lesson is queued and sent.
async fn wait_until_all_sent(s: &Setup, workers: &Workers, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let sent = count(
            &s.t.app,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
        )
        .await;
        if sent == SUBSCRIBERS {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sent} of {SUBSCRIBERS} sent after {limit:?}; {} received\n{}",
            s.smtp.received(),
            workers.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_send_every_lesson_exactly_once() {
    if postgres_url().is_none() {
        return;
    }
    let _turn = crate::support::PROCESSES.lock().await;
    let s = setup().await;
    let started = Instant::now();
    let workers = Workers::start(&s.config, &s.t.db.url, s.t.dir.path());
    wait_until_all_sent(&s, &workers, Duration::from_secs(150)).await;
    let took = started.elapsed();
    // Anything sent twice would be a mail whose lease ran out while it was being sent:
    // give such a copy time to arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(workers);
    let expected = expected_ids(&s.t.app).await;
    assert_eq!(expected.len() as i64, SUBSCRIBERS);
    let counts = s.smtp.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    for id in &expected {
        assert_eq!(counts.get(id), Some(&1), "{id}");
    }
    assert_eq!(
        counts.len(),
        expected.len(),
        "no Message-ID that is not a delivery's"
    );
    let pending = count(
        &s.t.app,
        "SELECT COUNT(*) FROM enrollments WHERE next_due_at IS NULL OR position <> 1",
    )
    .await;
    assert_eq!(pending, 0, "every enrollment has its next lesson planned");
    eprintln!(
        "{SUBSCRIBERS} lessons by {WORKERS} workers in {:.1} s ({:.0}/s)",
        took.as_secs_f64(),
        SUBSCRIBERS as f64 / took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_nothing() {
    if postgres_url().is_none() {
        return;
    }
    let _turn = crate::support::PROCESSES.lock().await;
    let s = setup().await;
    let mut workers = Workers::start(&s.config, &s.t.db.url, s.t.dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.smtp.received() < (SUBSCRIBERS / 4) as u32 {
        assert!(
            Instant::now() < deadline,
            "no progress\n{}",
            workers.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL a worker that holds a claimed batch (its lease owner names its pid). If it
    // recorded its batch in the instant between the look and the kill, it died between
    // batches; then the next one is killed the same way (this is rare).
    let mut in_flight = 0;
    let mut killed = 0;
    let mut claimed_by_dead = std::collections::HashSet::new();
    let at_kill = loop {
        assert!(
            Instant::now() < deadline,
            "no worker with a batch in flight"
        );
        let owners: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT lease_owner FROM deliveries WHERE status = 'queued' AND lease_owner IS NOT NULL",
        )
        .fetch_all(s.t.app.db.pool())
        .await
        .unwrap();
        let victim = owners.iter().find_map(|(owner,)| {
            let pid: u32 = owner.split(':').nth(1)?.parse().ok()?;
            let i = workers.children.iter().position(|c| c.id() == pid)?;
            Some((owner.clone(), i))
        });
        let Some((owner, i)) = victim else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut child = workers.children.remove(i);
        child.kill().unwrap();
        child.wait().unwrap();
        killed += 1;
        let left: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM deliveries WHERE status = 'queued' AND lease_owner = $1",
        )
        .bind(&owner)
        .fetch_all(s.t.app.db.pool())
        .await
        .unwrap();
        in_flight += left.len() as i64;
        claimed_by_dead.extend(left.iter().map(|(id,)| *id));
        if !left.is_empty() {
            break s.smtp.received();
        }
    };
    wait_until_all_sent(&s, &workers, Duration::from_secs(150)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(workers);
    let expected = expected_ids(&s.t.app).await;
    assert_eq!(expected.len() as i64, SUBSCRIBERS);
    let counts = s.smtp.counts();
    for id in &expected {
        assert!(counts.contains_key(id), "never arrived: {id}");
    }
    assert_eq!(
        counts.len(),
        expected.len(),
        "every copy carries its delivery's Message-ID"
    );
    let copies: u32 = counts.values().map(|n| n - 1).sum();
    assert!(counts.values().all(|n| *n <= 2), "no mail three times");
    // The killed worker's claimed rows (the batch it was sending and the next one, claimed
    // ahead) came back when its lease ran out and were sent by the others; only those it had
    // sent of the first before dying can have gone out twice.
    let reclaimed: Vec<(i64,)> = sqlx::query_as("SELECT id FROM deliveries WHERE attempts > 1")
        .fetch_all(s.t.app.db.pool())
        .await
        .unwrap();
    let reclaimed: std::collections::HashSet<i64> = reclaimed.into_iter().map(|(id,)| id).collect();
    assert!(
        claimed_by_dead.is_subset(&reclaimed),
        "every claim of the killed worker was claimed again"
    );
    for (id, n) in &counts {
        if *n > 1 {
            let delivery = s.t.app.delivery_of_message_id(id).unwrap();
            assert!(
                claimed_by_dead.contains(&delivery),
                "{id} arrived twice but was not in the killed worker's hands"
            );
        }
    }
    // On a loaded machine a live worker's batch claimed ahead can outlast its lease and be
    // claimed again by another (never sent twice: the first owner hands back what it has
    // not started); reported, not failed.
    let others = reclaimed.difference(&claimed_by_dead).count();
    assert!(
        i64::from(copies) <= in_flight.min(BATCH * killed) && in_flight <= 2 * BATCH * killed,
        "{copies} copies of {in_flight} in flight"
    );
    eprintln!(
        "killed a worker with {in_flight} mails claimed, after {at_kill} had arrived; all {SUBSCRIBERS} sent, {copies} of them twice (same Message-ID); {others} other claims ran out under load"
    );
}
