//! Storage: one pool for SQLite or PostgreSQL, chosen by the URL's scheme, and every query
//! drip makes, grouped by table.
//!
//! Queries go through sqlx's `Any` driver so that one SQL text serves both engines: `$1`
//! placeholders (SQLite reads them too), times as Unix seconds in BIGINT columns, flags as
//! 0/1 integers. Where the engines differ (row locks, advisory locks) the function asks
//! [`Db::backend`] and says why.

pub(crate) mod admin_lists;
pub mod admins;
pub mod answers;
pub mod backup;
pub mod broadcasts;
pub mod courses;
pub mod deliveries;
pub mod enrollments;
pub mod events;
pub mod lessons;
pub mod replies;
pub mod stats;
pub mod subscribers;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

/// Which engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn from_url(url: &str) -> Result<Backend, String> {
        let scheme = url.split(':').next().unwrap_or("");
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(format!(
                "{:?} has scheme {scheme:?}; use sqlite://FILE or postgres://HOST/DB",
                redact(url)
            )),
        }
    }
}

/// A URL with its password replaced, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub(crate) type Tx = Transaction<'static, Any>;

/// The database, cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Db {
    /// Connects (creating a SQLite file if needed) and checks the connection works.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)
            .map_err(anyhow::Error::msg)
            .context("database.url")?;
        let url = match backend {
            // Create the file on first run; keep any options the user gave.
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .with_context(|| format!("database.url {:?} is not a valid URL", redact(&url)))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            // A SQLite connection is a file handle in this process: it cannot have gone away
            // while parked, so checking it on every acquire (a round trip to its thread)
            // only slows each statement. A PostgreSQL one can (a server restart), so it is.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers go on while one writer writes; the busy timeout
                        // makes a second writer wait instead of failing at once.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    } else {
                        // PostgreSQL would wait for a lock for ever; like SQLite's busy
                        // timeout, give up after a while so the caller can report and retry.
                        conn.execute("SET lock_timeout = '10s'").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("cannot connect to database.url {:?}", redact(&url)))?;
        Ok(Db { pool, backend })
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        self.accept_rewritten_migrations(migrator).await?;
        migrator
            .run(&self.pool)
            .await
            .context("applying migrations")?;
        Ok(())
    }

    /// Migration 1 once named one course's phases in a CHECK; that CHECK now goes in
    /// migration 9 (which rebuilds the table on databases that have it), and migration 1
    /// was rewritten without it so that new databases never had it. A database that applied
    /// the old text records the old checksum: when it is exactly that, it is brought to the
    /// new one, so the migrator does not refuse a change it already knows about. Any other
    /// mismatch is still refused.
    async fn accept_rewritten_migrations(
        &self,
        migrator: &sqlx::migrate::Migrator,
    ) -> anyhow::Result<()> {
        const REWRITTEN: [(Backend, i64, &str); 2] = [
            (
                Backend::Sqlite,
                1,
                "c571735c1cb0cc42f2180934fec1cc1bffb7f78d7219cac49e3455b96e81011a886b7bfbc3f320f8aabd3a685331a62e",
            ),
            (
                Backend::Postgres,
                1,
                "08fbac690177f93bbb4947f82d4d5cd06a4aeb891abd8483e06127f5ee17892602b91ca81c09a2598bd1375cf978e99d",
            ),
        ];
        let exists_sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let (tables,): (i64,) = sqlx::query_as(exists_sql).fetch_one(&self.pool).await?;
        if tables == 0 {
            return Ok(());
        }
        for (backend, version, old) in REWRITTEN {
            if backend != self.backend {
                continue;
            }
            let Some(current) = migrator.iter().find(|m| m.version == version) else {
                continue;
            };
            let old = (0..old.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&old[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .expect("a hex constant");
            sqlx::query(
                "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
            )
            .bind(current.checksum.to_vec())
            .bind(version)
            .bind(old)
            .execute(&self.pool)
            .await
            .context("updating the checksum of a rewritten migration")?;
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it takes the write lock at BEGIN, so two
    /// writers queue on the busy timeout instead of one failing when it upgrades its lock.
    pub async fn begin_write(&self) -> anyhow::Result<Tx> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        tx.context("beginning a transaction")
    }

    /// A write transaction whose first statement writes (the sender's record of accepted
    /// mail). SQLite then takes its write lock at that statement, as `BEGIN IMMEDIATE`
    /// would at the start, without the second round trip to the connection's thread that
    /// sqlx makes to check a custom BEGIN; a transaction that reads first must use
    /// [`Db::begin_write`], or a writer that commits in between makes it fail.
    pub async fn begin_writing(&self) -> anyhow::Result<Tx> {
        self.pool.begin().await.context("beginning a transaction")
    }

    /// `FOR UPDATE SKIP LOCKED` where the engine has it. SQLite has one writer at a time
    /// (see [`Db::begin_write`]), so the plain select is already exclusive there.
    pub(crate) fn skip_locked(&self, table: &str) -> String {
        match self.backend {
            Backend::Sqlite => String::new(),
            Backend::Postgres => format!(" FOR UPDATE OF {table} SKIP LOCKED"),
        }
    }

    /// Waits for the transaction-level advisory lock named by `key` (see
    /// [`Db::try_xact_lock`]); nothing to wait for on SQLite, whose write transaction is
    /// already exclusive.
    pub(crate) async fn xact_lock(&self, tx: &mut Tx, key: i32) -> anyhow::Result<()> {
        if self.backend == Backend::Sqlite {
            return Ok(());
        }
        sqlx::query(&format!(
            // The function returns void, which the Any driver cannot describe: select a number.
            "SELECT 1 FROM (SELECT pg_advisory_xact_lock({key}, hashtext(current_schema()))) AS l"
        ))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Takes a transaction-level advisory lock named by `key` in the current schema (advisory
    /// locks are database-wide; two installations in two schemas must not exclude each
    /// other). True on SQLite, whose write transaction is already exclusive.
    pub(crate) async fn try_xact_lock(&self, tx: &mut Tx, key: i32) -> anyhow::Result<bool> {
        if self.backend == Backend::Sqlite {
            return Ok(true);
        }
        let (got,): (bool,) = sqlx::query_as(&format!(
            "SELECT pg_try_advisory_xact_lock({key}, hashtext(current_schema()))"
        ))
        .fetch_one(&mut **tx)
        .await?;
        Ok(got)
    }

    /// Checks that the database answers, for /healthz.
    pub(crate) async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The names of drip's tables that exist, for `drip migrate` to report.
    pub async fn table_names(&self) -> anyhow::Result<Vec<String>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%' ORDER BY table_name"
            }
        };
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `$start, $start+1, …` for a list of `n` values bound one by one.
/// Replaces a sealed column (`replies.text`, `replies.raw`, `answers.text`) of row `id` if it
/// still holds `old`: a reseal never overwrites what a retention sweep or an erasure changed
/// meanwhile. True if it did.
pub(crate) async fn replace_sealed(
    tx: &mut Tx,
    table_column: (&str, &str),
    id: i64,
    old: &[u8],
    new: &[u8],
) -> anyhow::Result<bool> {
    let (table, column) = table_column;
    let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} = $3");
    let done = sqlx::query(&sql)
        .bind(new.to_vec())
        .bind(id)
        .bind(old.to_vec())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether an error means the database is out of reach for now rather than the request
/// being wrong: locked by another writer past the busy/lock timeout, the server restarting
/// or unreachable, the pool exhausted. Worth a 503 and another try, never a lost write.
pub(crate) fn is_unavailable(err: &anyhow::Error) -> bool {
    err.chain().any(|e| match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => true,
        Some(sqlx::Error::Database(d)) => {
            let code = d.code().unwrap_or_default();
            // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            // PostgreSQL: connection exceptions (08…), shutdown and recovery (57P01–57P03),
            // too many connections (53300), lock timeout (55P03).
            matches!(code.parse::<i32>(), Ok(c) if c & 0xff == 5 || c & 0xff == 6)
                || code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300" | "55P03")
                || d.message().contains("database is locked")
        }
        _ => false,
    })
}

/// Whether an error is a unique-constraint violation (on either engine).
pub fn is_unique_violation(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .is_some_and(|d| d.is_unique_violation())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(Backend::from_url("sqlite://drip.db"), Ok(Backend::Sqlite));
        assert_eq!(Backend::from_url("sqlite::memory:"), Ok(Backend::Sqlite));
        assert_eq!(
            Backend::from_url("postgres://localhost/drip"),
            Ok(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://localhost/drip"),
            Ok(Backend::Postgres)
        );
        let err = Backend::from_url("mysql://root:hunter2@localhost/drip").unwrap_err();
        assert!(err.contains("mysql") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn placeholders_count_from_start() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
    }
}
