//! Backups taken while drip sends, restored, and found whole. `drip serve` sends a course's
//! first lesson to a few hundred subscribers through a slow SMTP server; half-way, a second
//! process takes the backup as an operator would: `drip backup FILE` on SQLite, and on
//! PostgreSQL the pg_dump command that `drip backup` prints. The copy is then restored (on
//! SQLite opened as the database, on PostgreSQL loaded with the printed pg_restore command
//! after the schema was dropped) and must hold every subscriber and every delivery that was
//! recorded as sent before the backup began.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use drip::db::Db;

use crate::cli::stderr;
use crate::faults::{Drip, count, drip_env, seed_due, set_env, wait_for_count};
use crate::on_both_databases;
use crate::support::{Backend, SmtpServer, TestApp, needs, repo};

const SUBSCRIBERS: usize = 300;

/// `drip ARGS` with the environment of the running `drip serve`.
fn drip_cli(env: &[(&str, String)], dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_drip"))
        .arg("--config")
        .arg(repo("config.toml"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

/// Runs one line that `drip backup` printed, as the operator pastes it into a shell.
fn shell(line: &str) {
    let out = Command::new("sh").arg("-c").arg(line).output().unwrap();
    assert!(out.status.success(), "{line}: {}", stderr(&out));
}

async fn sent_ids(pool: &sqlx::AnyPool) -> BTreeSet<i64> {
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM deliveries WHERE status = 'sent'")
        .fetch_all(pool)
        .await
        .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

async fn emails(pool: &sqlx::AnyPool) -> BTreeSet<String> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT email FROM subscribers")
        .fetch_all(pool)
        .await
        .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

on_both_databases!(a_backup_taken_while_mail_is_sent_restores_every_row_committed_before_it);

async fn a_backup_taken_while_mail_is_sent_restores_every_row_committed_before_it(
    backend: Backend,
) {
    if backend == Backend::Postgres
        && !needs(
            "pg_dump and pg_restore",
            ["pg_dump", "pg_restore"].iter().all(|p| {
                Command::new(p)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            }),
            "apt-get install postgresql-client",
        )
    {
        return;
    }
    let _turn = crate::support::PROCESSES.lock().await;
    let t = TestApp::with_file_outbox(backend).await;
    let (app, dir) = (t.app.clone(), t.dir.path());
    let smtp = SmtpServer::start();
    // Slow enough that the sending is still going on when the backup is done.
    smtp.set_delay(Duration::from_millis(30));
    seed_due(&app, SUBSCRIBERS).await;
    let lessons_before = count(&app, "SELECT COUNT(*) FROM lesson_revisions").await;
    let mut env = drip_env(&t.db.url, smtp.addr.port(), dir);
    // Small batches: sends are recorded every few mails, so rows are written while the
    // backup is taken.
    set_env(&mut env, "DRIP_SCHEDULE__BATCH_SIZE", "5".into());
    let mut serve = Drip::start("serve", &env, dir, "serve");

    let deadline = Instant::now() + Duration::from_secs(90);
    while count(
        &app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
    )
    .await
        < 40
    {
        assert!(
            serve.is_running() && Instant::now() < deadline,
            "drip serve sent nothing:\n{}",
            serve.tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Everything committed from here on is what the backup must hold.
    let committed = sent_ids(app.db.pool()).await;
    let file = dir.join("drip-backup.db");
    let out = drip_cli(&env, dir, &["backup", "--json", file.to_str().unwrap()]);
    let mut written_meanwhile = serde_json::Value::Null;
    match backend {
        Backend::Sqlite => {
            assert!(out.status.success(), "drip backup: {}", stderr(&out));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["integrity"], "ok", "{report}");
            assert_eq!(report["tables"]["subscribers"], SUBSCRIBERS, "{report}");
            written_meanwhile = report["changed_during_backup"].clone();
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "the copy is readable by drip's user only"
            );
        }
        Backend::Postgres => {
            // No backup of its own: the command to use, and a failing exit code.
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            assert!(!file.exists());
            let advice = stderr(&out);
            let dump = advice
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("pg_dump "))
                .unwrap_or_else(|| panic!("no pg_dump command in:\n{advice}"));
            assert!(dump.contains("--schema=t_"), "{dump}");
            shell(dump);
        }
    }
    let after_backup = count(
        &app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
    )
    .await;
    assert!(
        after_backup < SUBSCRIBERS as i64,
        "the backup must be taken while mail is still being sent; all {after_backup} were sent by the time it was done (make the SMTP server slower)"
    );
    assert!(file.is_file(), "no backup at {}", file.display());

    // A second run never writes over the first.
    let again = drip_cli(&env, dir, &["backup", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    if backend == Backend::Sqlite {
        assert!(
            stderr(&again).contains(&format!("{} already exists", file.display())),
            "{}",
            stderr(&again)
        );
    }

    wait_for_count(
        &app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
        SUBSCRIBERS as i64,
        Duration::from_secs(120),
        || serve.tail(),
    )
    .await;
    serve.kill();
    let live_sent = sent_ids(app.db.pool()).await;

    // Restore.
    let restored = match backend {
        Backend::Sqlite => {
            let pool = drip::db::backup::open_copy(&file).await.unwrap();
            assert_eq!(
                drip::db::backup::integrity_check(&pool).await.unwrap(),
                ["ok"]
            );
            pool.close().await;
            // drip itself takes the copy as its database.
            let url = format!("sqlite://{}", file.display());
            let mut on_copy = env.clone();
            set_env(&mut on_copy, "DRIP_DATABASE__URL", url.clone());
            let out = drip_cli(&on_copy, dir, &["migrate"]);
            assert!(out.status.success(), "drip on the copy: {}", stderr(&out));
            Db::connect(&url, 2).await.unwrap()
        }
        Backend::Postgres => {
            let advice = stderr(&out);
            let restore = advice
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("pg_restore "))
                .unwrap_or_else(|| panic!("no pg_restore command in:\n{advice}"));
            // The loss: drip's whole schema is gone.
            let schema = t.db.url.split("search_path%3D").nth(1).unwrap().to_owned();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(app.db.pool())
                .await
                .unwrap();
            assert!(
                sqlx::query("SELECT 1 FROM subscribers")
                    .execute(app.db.pool())
                    .await
                    .is_err()
            );
            shell(restore);
            Db::connect(&t.db.url, 2).await.unwrap()
        }
    };
    restored.migrate().await.unwrap();
    let pool = restored.pool();

    assert_eq!(emails(pool).await.len(), SUBSCRIBERS);
    assert_eq!(emails(pool).await, emails(app.db.pool()).await);
    let (enrollments,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM enrollments")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(enrollments, SUBSCRIBERS as i64);
    let (revisions,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM lesson_revisions")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(revisions, lessons_before);
    let backed_up = sent_ids(pool).await;
    let lost: Vec<_> = committed.difference(&backed_up).collect();
    assert!(
        lost.is_empty(),
        "sent before the backup, missing from it: {lost:?}"
    );
    assert!(
        backed_up.is_subset(&live_sent),
        "the copy holds only what the database had"
    );
    assert!(
        (backed_up.len() as i64) < SUBSCRIBERS as i64,
        "the copy is of a moment mid-way"
    );
    eprintln!(
        "{backend:?}: backup taken with {} of {SUBSCRIBERS} lessons sent ({after_backup} when it was done; tables written meanwhile: {written_meanwhile}); the restored copy holds all {SUBSCRIBERS} subscribers and {} sent deliveries",
        committed.len(),
        backed_up.len()
    );
}
