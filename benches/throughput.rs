//! The whole sending path, measured: seed N confirmed subscribers whose first lesson is due,
//! run the scheduler's planning pass, then claim, render, send over SMTP to Postfix's
//! `smtp-sink` and record, on SQLite (one process) or PostgreSQL (several workers). In the
//! same run, Postfix's `smtp-source` sends to the same sink with the same message size and
//! number of connections: the machine's limit, and the ratio to it.
//!
//!     cargo bench --bench throughput -- --n 100000 --db sqlite
//!     cargo bench --bench throughput -- --n 100000 --db postgres --workers 2
//!     cargo bench --bench throughput -- --import 1000000          # CSV import on SQLite
//!     cargo bench --bench throughput -- --n 100000 --broadcast     # one broadcast to N readers
//!     cargo bench --bench throughput -- --n 5000 --delay-ms 2 [--no-pipelining]  # a distant relay
//!
//! Options: `--n N` due subscribers (100000); `--idle M` more subscribers whose next lesson
//! is not due (0: shows that planning ignores them); `--db sqlite|postgres`; `--workers W`
//! sender workers, each with its own lease owner and SMTP pool (1 on SQLite, 2 on
//! PostgreSQL); `--connections C` SMTP connections per worker (4 on SQLite, 2 on
//! PostgreSQL); `--batch B` claim size (config.toml's batch_size, 200); `--pg-url URL` (default
//! DRIP_TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/test; a schema of its
//! own is made and dropped); `--no-baseline`; `--broadcast`: the N readers have no lesson due,
//! and one broadcast to all of them is queued (its enqueue timed) and sent instead;
//! `--delay-ms D`: drip and smtp-source reach the sink through a proxy (`throughput/delay.rs`)
//! that holds every byte D ms each way; `--no-pipelining`: `[smtp] pipelining = false`;
//! `--window W`: `[schedule] unrecorded_per_connection = W` (config.toml's, 2).
//! Needs /usr/sbin/smtp-sink and smtp-source (Debian's postfix package).

#[path = "throughput/delay.rs"]
mod delay;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use drip::app::App;
use drip::config::{Config, Transport};
use drip::db::{Backend, Db};
use drip::outbox;

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";
const SMTP_SOURCE: &str = "/usr/sbin/smtp-source";

#[derive(Debug)]
struct Args {
    n: i64,
    idle: i64,
    backend: Backend,
    workers: usize,
    connections: u32,
    /// Claim size; None: `[schedule] batch_size` from config.toml.
    batch: Option<u32>,
    pg_url: String,
    baseline: bool,
    import: Option<u64>,
    broadcast: bool,
    /// Milliseconds each way through the delay proxy; None: straight to the sink.
    delay_ms: Option<u64>,
    pipelining: bool,
    /// `[schedule] unrecorded_per_connection`; None: config.toml's.
    window: Option<u32>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` adds --bench to every bench binary's arguments.
    raw.retain(|a| a != "--bench");
    let backend = match get_after(&mut raw, "--db").as_deref() {
        None | Some("sqlite") => Backend::Sqlite,
        Some("postgres") | Some("pg") => Backend::Postgres,
        Some(other) => bail!("--db {other:?}: use sqlite or postgres"),
    };
    let pg = backend == Backend::Postgres;
    let mut number = |name: &str| -> anyhow::Result<Option<i64>> {
        get_after(&mut raw, name)
            .map(|v| {
                v.replace('_', "")
                    .parse()
                    .with_context(|| format!("{name} {v:?} is not a number"))
            })
            .transpose()
    };
    let n = number("--n")?.unwrap_or(100_000);
    let idle = number("--idle")?.unwrap_or(0);
    let workers = number("--workers")?.unwrap_or(if pg { 2 } else { 1 }) as usize;
    let connections = number("--connections")?.unwrap_or(if pg { 2 } else { 4 }) as u32;
    let batch = number("--batch")?.map(|v| v as u32);
    let import = number("--import")?.map(|v| v as u64);
    let window = number("--window")?.map(|v| v as u32);
    let delay_ms = number("--delay-ms")?.map(|v| v as u64);
    let pg_url = get_after(&mut raw, "--pg-url")
        .or_else(|| std::env::var("DRIP_TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut flag = |name: &str| match raw.iter().position(|a| a == name) {
        Some(i) => {
            raw.remove(i);
            true
        }
        None => false,
    };
    let baseline = !flag("--no-baseline");
    let broadcast = flag("--broadcast");
    let pipelining = !flag("--no-pipelining");
    if let Some(unknown) = raw.first() {
        bail!("unknown argument {unknown:?} (see the top of benches/throughput.rs)");
    }
    anyhow::ensure!(
        n >= 1 && workers >= 1 && connections >= 1 && batch != Some(0),
        "counts must be positive"
    );
    Ok(Args {
        n,
        idle,
        backend,
        workers,
        connections,
        batch,
        pg_url,
        baseline,
        import,
        broadcast,
        delay_ms,
        pipelining,
        window,
    })
}

/// The value after `name`, taken out of `raw`.
fn get_after(raw: &mut Vec<String>, name: &str) -> Option<String> {
    let i = raw.iter().position(|a| a == name)?;
    raw.remove(i);
    (i < raw.len()).then(|| raw.remove(i))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// This process's peak resident memory so far (VmHWM), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0));
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "?".into());
    format!("{cores} cores, {mem}, {os}")
}

/// A child process killed when dropped, so a failed run leaves no sink behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// Postfix's smtp-sink on a free port: accepts every mail and throws it away.
fn start_sink() -> anyhow::Result<(Killed, u16)> {
    anyhow::ensure!(
        Path::new(SMTP_SINK).exists() && Path::new(SMTP_SOURCE).exists(),
        "{SMTP_SINK} and {SMTP_SOURCE} are needed (apt-get install postfix)"
    );
    let port = free_port();
    let mut cmd = Command::new(SMTP_SINK);
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .arg(format!("127.0.0.1:{port}"))
        .arg("1024")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting smtp-sink")?;
    let sink = Killed(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((sink, port));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("smtp-sink did not start listening on port {port}")
}

/// smtp-source: `messages` mails of `size` bytes over `sessions` connections, each kept
/// open for its next mail (-d), as drip's pooled connections are. Messages per second.
fn baseline(port: u16, sessions: u32, messages: i64, size: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new(SMTP_SOURCE)
        .args([
            "-d",
            "-s",
            &sessions.to_string(),
            "-m",
            &messages.to_string(),
        ])
        .args([
            "-l",
            &size.to_string(),
            "-f",
            "course@example.org",
            "-t",
            "reader@example.com",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .status()
        .context("running smtp-source")?;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "smtp-source failed: {status}");
    Ok(messages as f64 / elapsed)
}

/// A database of the bench's own: a SQLite file in a temp folder, or a PostgreSQL schema
/// (dropped at the end).
struct BenchDb {
    url: String,
    drop_schema: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl BenchDb {
    async fn new(args: &Args) -> anyhow::Result<BenchDb> {
        let dir = tempfile::tempdir()?;
        sqlx::any::install_default_drivers();
        match args.backend {
            Backend::Sqlite => Ok(BenchDb {
                url: format!("sqlite://{}", dir.path().join("bench.db").display()),
                drop_schema: None,
                _dir: dir,
            }),
            Backend::Postgres => {
                let schema = format!("bench_{:08x}", rand::random::<u32>());
                let pool = sqlx::AnyPool::connect(&args.pg_url)
                    .await
                    .with_context(|| format!("connecting to {}", args.pg_url))?;
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                let sep = if args.pg_url.contains('?') { '&' } else { '?' };
                Ok(BenchDb {
                    url: format!("{}{sep}options=-c%20search_path%3D{schema}", args.pg_url),
                    drop_schema: Some((args.pg_url.clone(), schema)),
                    _dir: dir,
                })
            }
        }
    }

    async fn cleanup(&self) {
        if let Some((base, schema)) = &self.drop_schema
            && let Ok(pool) = sqlx::AnyPool::connect(base).await
        {
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&pool)
                .await;
            pool.close().await;
        }
    }
}

fn config(url: &str, port: u16, args: &Args, outbox: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(repo("config.toml"))?;
    let mut c = Config::from_toml_str(&text)?;
    c.database.url = url.to_owned();
    c.database.max_connections = (args.workers as u32 * 2 + 2).max(4);
    c.mail.transport = Transport::Smtp;
    c.mail.outbox_dir = outbox.to_owned();
    c.smtp.host = "127.0.0.1".into();
    c.smtp.port = port;
    c.smtp.pool_size = args.connections;
    c.smtp.pipelining = args.pipelining;
    if let Some(window) = args.window {
        c.schedule.unrecorded_per_connection = window;
    }
    if let Some(batch) = args.batch {
        c.schedule.batch_size = batch;
    }
    c.course.lessons_dir = repo("lessons");
    c.course.templates_dir = repo("templates");
    Ok(c)
}

/// N due subscribers (ids 1..=N, four time zones), then `idle` whose next lesson is a
/// month away, in a few set-based statements: nothing is held in this process.
async fn seed(db: &Db, course_id: i64, n: i64, idle: i64, now: i64) -> anyhow::Result<()> {
    let series = match db.backend() {
        Backend::Sqlite => {
            "(WITH RECURSIVE seq(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM seq WHERE i < $2) SELECT i FROM seq)"
        }
        Backend::Postgres => "(SELECT generate_series($1::bigint, $2::bigint) AS i)",
    };
    let subscribers = format!(
        "INSERT INTO subscribers (email, name, timezone, status, created_at, confirmed_at, status_at) \
         SELECT 'reader' || g.i || '@example.com', 'Reader' || g.i || ' Example', \
           CASE g.i % 4 WHEN 0 THEN 'UTC' WHEN 1 THEN 'Europe/Paris' WHEN 2 THEN 'America/New_York' ELSE 'Asia/Tokyo' END, \
           'active', $3, $3, $3 FROM {series} g"
    );
    let enrollments = "INSERT INTO enrollments (subscriber_id, course_id, status, position, next_due_at, created_at, updated_at) \
         SELECT id, $1, 'active', 0, CASE WHEN id <= $2 THEN $3 ELSE $4 END, $5, $5 FROM subscribers";
    let mut tx = db.begin_write().await?;
    sqlx::query(&subscribers)
        .bind(1i64)
        .bind(n + idle)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(enrollments)
        .bind(course_id)
        .bind(n)
        .bind(now - 60)
        .bind(now + 30 * 86_400)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    // What autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) would have done.
    sqlx::query("ANALYZE").execute(db.pool()).await?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

/// The plan of one of drip's statements, as the engine prints it.
async fn explain(db: &Db, sql: &str, binds: &[Bind<'_>]) -> anyhow::Result<String> {
    let mut out = String::new();
    match db.backend() {
        Backend::Sqlite => {
            let text = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&text);
            for b in binds {
                q = match *b {
                    Bind::Int(v) => q.bind(v),
                    Bind::Text(v) => q.bind(v),
                };
            }
            for (_, _, _, detail) in q.fetch_all(db.pool()).await? {
                out.push_str(&format!("    {detail}\n"));
            }
        }
        Backend::Postgres => {
            let text = format!("EXPLAIN {sql}");
            let mut q = sqlx::query_as::<_, (String,)>(&text);
            for b in binds {
                q = match *b {
                    Bind::Int(v) => q.bind(v),
                    Bind::Text(v) => q.bind(v),
                };
            }
            for (line,) in q.fetch_all(db.pool()).await? {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    Ok(out)
}

async fn count(db: &Db, sql: &str) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(db.pool()).await?;
    Ok(n)
}

async fn run_send(args: &Args) -> anyhow::Result<()> {
    let engine = match args.backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    if args.broadcast {
        println!(
            "drip throughput: one broadcast to {} readers (+{} more) on {engine}",
            args.n, args.idle
        );
    } else {
        println!(
            "drip throughput: {} due subscribers (+{} not due) on {engine}",
            args.n, args.idle
        );
    }
    println!("machine: {}", machine());
    println!(
        "sender: {} worker(s) x {} SMTP connection(s), pipelining {}, unrecorded per connection {}",
        args.workers,
        args.connections,
        if args.pipelining { "on" } else { "off" },
        args.window
            .map_or("as in config.toml".to_owned(), |w| w.to_string())
    );
    let (_sink, mut port) = start_sink()?;
    if let Some(ms) = args.delay_ms {
        port = delay::start(port, Duration::from_millis(ms)).await?;
        println!("link: through a proxy that holds every byte {ms} ms each way");
    }
    let bench_db = BenchDb::new(args).await?;
    let result = measure(args, &bench_db, port).await;
    bench_db.cleanup().await;
    result
}

async fn measure(args: &Args, bench_db: &BenchDb, port: u16) -> anyhow::Result<()> {
    let outbox_dir = tempfile::tempdir()?;
    let config = config(&bench_db.url, port, args, outbox_dir.path())?;
    let db = Db::connect(&bench_db.url, config.database.max_connections).await?;
    db.migrate().await?;
    let app = App::with_db(config.clone(), db.clone())?;
    let course = app.course(None).await?;
    let now = Utc::now();

    let t = Instant::now();
    // A broadcast's readers have no lesson due: only the broadcast is sent.
    let (due, idle) = if args.broadcast {
        (0, args.n + args.idle)
    } else {
        (args.n, args.idle)
    };
    seed(&db, course.id, due, idle, now.timestamp()).await?;
    println!(
        "seeded {} subscribers and enrollments in {:.1} s (peak memory so far {:.0} MiB)",
        args.n + args.idle,
        t.elapsed().as_secs_f64(),
        peak_mib()
    );
    let (first, stage, stage_secs) = if args.broadcast {
        queue_broadcast(&app, &db, &course, args, now).await?
    } else {
        plan_lessons(&app, &db, &config, args, now).await?
    };
    println!(
        "\nplan of the sender's claim statement:\n{}",
        explain(
            &db,
            &drip::db::deliveries::claim_sql(&db),
            &[
                Bind::Int(now.timestamp() + 300),
                Bind::Text("bench"),
                Bind::Int(now.timestamp()),
                Bind::Int(i64::from(config.schedule.batch_size))
            ]
        )
        .await?
    );

    // The message the baseline must match in size: the first mail as drip sends it.
    let sample = outbox::send::compose_delivery(&app, first, now).await?;
    let size = app.mailer.build(&sample)?.formatted().len();

    let workers: Vec<App> = (0..args.workers)
        .map(|_| App::with_db(config.clone(), db.clone()))
        .collect::<anyhow::Result<_>>()?;
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in workers {
        tasks.spawn(async move {
            let mut sent = 0;
            loop {
                let r = outbox::send_due(&worker, Utc::now()).await?;
                sent += r.sent;
                anyhow::ensure!(r.failed == 0 && r.retried == 0, "failures: {r:?}");
                if r.sent == 0 {
                    return anyhow::Ok(sent);
                }
            }
        });
    }
    let mut sent = 0;
    while let Some(done) = tasks.join_next().await {
        sent += done??;
    }
    let send_secs = t.elapsed().as_secs_f64();
    let rate = sent as f64 / send_secs;
    let peak = peak_mib();
    let recorded = count(&db, "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await?;
    let expected = if args.broadcast {
        args.n + args.idle
    } else {
        args.n
    };
    anyhow::ensure!(
        recorded == expected && sent as i64 == expected,
        "sent {sent}, recorded {recorded}, expected {expected}"
    );
    println!(
        "sent and recorded {sent} mails of {size} bytes in {send_secs:.1} s: {rate:.0} mails/s; peak memory {peak:.0} MiB"
    );
    let smtp = &drip::metrics::SEND;
    let transactions = smtp.count.load(std::sync::atomic::Ordering::Relaxed).max(1);
    println!(
        "mean SMTP transaction (MAIL to the 250 after DATA, per connection): {:.0} µs",
        smtp.sum_micros.load(std::sync::atomic::Ordering::Relaxed) as f64 / transactions as f64
    );

    let record = &drip::metrics::RECORD;
    let commits = record
        .commits
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1);
    println!(
        "recorder: {commits} commits of {:.1} mails each on average, {:.0} µs each",
        record.mails.load(std::sync::atomic::Ordering::Relaxed) as f64 / commits as f64,
        record.sum_micros.load(std::sync::atomic::Ordering::Relaxed) as f64 / commits as f64
    );

    let connections = args.workers as u32 * args.connections;
    let mut limit = None;
    if args.baseline {
        let messages = expected.min(100_000);
        let mut best: f64 = 0.0;
        for _ in 0..2 {
            // Blocking, but not the runtime: the delay proxy's tasks run on it.
            let rate = tokio::task::block_in_place(|| baseline(port, connections, messages, size))?;
            best = best.max(rate);
        }
        println!(
            "baseline: smtp-source -d -s {connections} -m {messages} -l {size} to the same smtp-sink: {best:.0} mails/s (best of 2)"
        );
        limit = Some(best);
    }

    println!(
        "\nsummary ({engine_name}, N = {n}):",
        engine_name = match args.backend {
            Backend::Sqlite => "SQLite, one process",
            Backend::Postgres => "PostgreSQL",
        },
        n = args.n
    );
    println!("  {stage}:           {stage_secs:.2} s");
    println!(
        "  send (claim, render, SMTP, record): {rate:.0} mails/s over {connections} connection(s)"
    );
    if let Some(limit) = limit {
        println!("  smtp-source limit:      {limit:.0} mails/s");
        println!("  ratio:                  {:.0}%", 100.0 * rate / limit);
    }
    println!(
        "  plan + send:            {:.1} s in all",
        stage_secs + send_secs
    );
    println!("  peak memory (VmHWM):    {peak:.0} MiB");
    db.close().await;
    Ok(())
}

/// The scheduler's planning pass over the N due enrollments, timed; the first delivery, and
/// what was timed.
async fn plan_lessons(
    app: &App,
    db: &Db,
    config: &Config,
    args: &Args,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<(i64, String, f64)> {
    println!(
        "claims of {} (schedule.batch_size)",
        config.schedule.batch_size
    );
    let batch = i64::from(config.schedule.batch_size) * 10;
    println!(
        "\nplan of the scheduler's due-enrollments query:\n{}",
        explain(
            db,
            &drip::db::enrollments::lock_due_sql(db),
            &[Bind::Int(now.timestamp()), Bind::Int(batch)]
        )
        .await?
    );
    let t = Instant::now();
    let plan = outbox::plan_due(app, now).await?;
    let plan_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        plan.enqueued as i64 == args.n,
        "planned {} of {}",
        plan.enqueued,
        args.n
    );
    println!(
        "planned {} due lessons in {plan_secs:.2} s ({:.0}/s)",
        plan.enqueued,
        plan.enqueued as f64 / plan_secs
    );
    sqlx::query("ANALYZE").execute(db.pool()).await?;
    let first = count(db, "SELECT MIN(id) FROM deliveries").await?;
    Ok((first, format!("plan {} due", args.n), plan_secs))
}

/// One broadcast to every active reader of the course, made as `drip broadcasts create`
/// does and queued as the scheduler's pass does (one delivery per reader), timed.
async fn queue_broadcast(
    app: &App,
    db: &Db,
    course: &drip::db::courses::CourseRow,
    args: &Args,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<(i64, String, f64)> {
    let draft = drip::broadcasts::Draft {
        subject: "A word between lessons".into(),
        body: "Hello {{ subscriber.first_name }},\n\nLesson 4 was rewritten this week: the new \
               version reaches you as usual.\n\n[Your preferences]({{ links.preferences }})"
            .into(),
        audience: drip::domain::Audience::Active,
        when: drip::broadcasts::When::Now,
    };
    let b = drip::broadcasts::create(app, course, &draft, "bench", now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    drip::broadcasts::enqueue_due(app, now).await?;
    let secs = t.elapsed().as_secs_f64();
    let queued = count(
        db,
        &format!(
            "SELECT COUNT(*) FROM deliveries WHERE broadcast_id = {}",
            b.id
        ),
    )
    .await?;
    let readers = args.n + args.idle;
    anyhow::ensure!(queued == readers, "queued {queued} of {readers}");
    println!(
        "queued broadcast {} to {queued} readers in {secs:.2} s ({:.0}/s)",
        b.id,
        queued as f64 / secs
    );
    sqlx::query("ANALYZE").execute(db.pool()).await?;
    let first = count(
        db,
        &format!(
            "SELECT MIN(id) FROM deliveries WHERE broadcast_id = {}",
            b.id
        ),
    )
    .await?;
    Ok((first, format!("queue the broadcast to {readers}"), secs))
}

/// `--import N`: writes an N-row CSV and imports it (confirmed) on SQLite, as
/// `drip subscribers import FILE --confirmed` does.
async fn run_import(rows: u64) -> anyhow::Result<()> {
    println!("drip import: {rows} CSV rows into SQLite");
    println!("machine: {}", machine());
    let dir = tempfile::tempdir()?;
    let csv_path = dir.path().join("subscribers.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        writeln!(w, "email,name,timezone")?;
        let zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"];
        for i in 0..rows {
            writeln!(
                w,
                "reader{i}@example.com,Reader{i} Example,{}",
                zones[(i % 4) as usize]
            )?;
        }
    }
    let url = format!("sqlite://{}", dir.path().join("import.db").display());
    let mut config = Config::from_toml_str(&std::fs::read_to_string(repo("config.toml"))?)?;
    config.database.url = url.clone();
    config.mail.outbox_dir = dir.path().join("outbox");
    config.course.lessons_dir = repo("lessons");
    config.course.templates_dir = repo("templates");
    let app = App::start(config).await?;
    let course = app.course(None).await?;
    let t = Instant::now();
    let report =
        drip::subscriptions::import::import_csv(&app, &course, &csv_path, true, Utc::now()).await?;
    let secs = t.elapsed().as_secs_f64();
    let enrolled = count(&app.db, "SELECT COUNT(*) FROM enrollments").await?;
    anyhow::ensure!(
        report.imported == rows && enrolled as u64 == rows,
        "{report:?}, {enrolled} enrolled"
    );
    println!(
        "imported {} subscribers (enrolled {enrolled}) in {secs:.1} s: {:.0} rows/s; peak memory {:.0} MiB",
        report.imported,
        report.imported as f64 / secs,
        peak_mib()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.import {
            Some(rows) => run_import(rows).await,
            None => run_send(&args).await,
        }
    })
}
