//! Fault tests: the damage is done for real. `drip serve` is SIGKILLed mid-batch, the SMTP
//! server goes down, answers slowly or cuts a mail short (through [`proxy::FaultProxy`]),
//! the inbound listener dies before it has stored a reply, the database is locked by
//! another process or its server restarts. Each test checks that nothing is lost, that
//! nothing is recorded twice, and that drip carries on without a hand on it.

mod database;
mod inbound;
mod killed;
mod proxy;
mod smtp;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drip::app::App;

use crate::support::{SmtpServer, repo};

/// A drip process (`serve` or `worker`) with the shipped config.toml and the settings of
/// one test in its environment, as an operator would pass them. Killed when dropped.
pub struct Drip {
    child: Option<Child>,
    log: PathBuf,
}

impl Drip {
    pub fn start(command: &str, env: &[(&str, String)], dir: &Path, name: &str) -> Drip {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_drip"))
            .arg("--config")
            .arg(repo("config.toml"))
            .arg(command)
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("start drip");
        Drip {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no shutdown handler runs, nothing is flushed or handed back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Still running (it did not exit on an error of its own).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The end of the log, to explain a failure.
    pub fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Drip {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The environment that points a drip process at this test's database, SMTP server and
/// folders, with a fast tick and short leases.
pub fn drip_env(db_url: &str, smtp_port: u16, dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("DRIP_DATABASE__URL", db_url.to_owned()),
        ("DRIP_DATABASE__MAX_CONNECTIONS", "4".into()),
        ("DRIP_MAIL__TRANSPORT", "smtp".into()),
        (
            "DRIP_MAIL__OUTBOX_DIR",
            dir.join("outbox").display().to_string(),
        ),
        ("DRIP_SMTP__HOST", "127.0.0.1".into()),
        ("DRIP_SMTP__PORT", smtp_port.to_string()),
        ("DRIP_SMTP__TIMEOUT_SECONDS", "5".into()),
        ("DRIP_SMTP__POOL_SIZE", "2".into()),
        ("DRIP_SCHEDULE__TICK_SECONDS", "1".into()),
        ("DRIP_SCHEDULE__LEASE_SECONDS", "10".into()),
        ("DRIP_SCHEDULE__BATCH_SIZE", "25".into()),
        ("DRIP_SERVER__BIND", "127.0.0.1:0".into()),
        (
            "DRIP_COURSE__LESSONS_DIR",
            repo("lessons").display().to_string(),
        ),
        (
            "DRIP_COURSE__TEMPLATES_DIR",
            repo("templates").display().to_string(),
        ),
        ("DRIP_LOG__LEVEL", "info".into()),
    ]
}

/// Sets (or replaces) one variable of an environment list.
pub fn set_env(env: &mut Vec<(&'static str, String)>, key: &'static str, value: String) {
    env.retain(|(k, _)| *k != key);
    env.push((key, value));
}

/// `n` confirmed subscribers whose first lesson is due now.
pub async fn seed_due(app: &App, n: usize) {
    let course = app.course(None).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    for chunk in (1..=n).collect::<Vec<_>>().chunks(100) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('reader{i}@example.com', 'Reader {i}', 'UTC', 'active', {now}, {now}, {now})"
                )
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO subscribers (email, name, timezone, status, created_at, confirmed_at, status_at) VALUES {}",
            values.join(", ")
        ))
        .execute(app.db.pool())
        .await
        .unwrap();
    }
    enroll_all_due(app, course.id, now - 60).await;
}

/// Enrolls every subscriber in the course with the first lesson due at `due_at`.
pub async fn enroll_all_due(app: &App, course_id: i64, due_at: i64) {
    sqlx::query(
        "INSERT INTO enrollments (subscriber_id, course_id, status, position, next_due_at, created_at, updated_at) \
         SELECT id, $1, 'active', 0, $2, $2, $2 FROM subscribers",
    )
    .bind(course_id)
    .bind(due_at)
    .execute(app.db.pool())
    .await
    .unwrap();
}

pub async fn count(app: &App, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(app.db.pool()).await.unwrap();
    n
}

/// How often each Message-ID reached the server.
pub fn arrivals(smtp: &SmtpServer) -> HashMap<String, u32> {
    let mut seen = HashMap::new();
    for m in smtp.messages() {
        *seen
            .entry(m.header("Message-ID").unwrap_or_default())
            .or_default() += 1;
    }
    seen
}

/// The Message-ID of every delivery in the database.
pub async fn expected_ids(app: &App) -> Vec<String> {
    let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM deliveries ORDER BY id")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    ids.into_iter()
        .map(|(id,)| format!("<{}>", app.message_id(id)))
        .collect()
}

/// Waits (bounded) until `sql` counts `n`; the message explains a timeout.
pub async fn wait_for_count(
    app: &App,
    sql: &str,
    n: i64,
    limit: Duration,
    explain: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    loop {
        let got = count(app, sql).await;
        if got == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got}, not {n}, after {limit:?}\n{}",
            explain()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One HTTP/1.1 request over a new connection; the status and body.
pub async fn http(addr: &str, method: &str, path: &str, form: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The address `drip serve` listens on, from its log (it is started on port 0).
pub async fn serving_address(drip: &mut Drip) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = drip.log();
        if let Some(addr) = log
            .lines()
            .find(|l| l.contains("drip is serving"))
            .and_then(|l| l.split("bind=").nth(1))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
        {
            return addr;
        }
        assert!(
            drip.is_running() && Instant::now() < deadline,
            "drip serve did not start:\n{}",
            drip.tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
