//! `drip backup`'s SQL: a consistent copy of an SQLite database made while other processes
//! write to it, and what is checked on the copy. SQLite only: PostgreSQL has pg_dump.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use super::{Backend, Db};

/// Rows per table, by name, and the last migration applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Census {
    pub tables: BTreeMap<String, i64>,
    pub schema_version: i64,
}

/// Writes a copy of the database to `dest`, a file that must not exist. `VACUUM INTO` reads
/// in one transaction, so the copy is the database as one moment saw it, while writers go on
/// (WAL: a reader never blocks the writer).
pub async fn vacuum_into(db: &Db, dest: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(db.backend() == Backend::Sqlite, "VACUUM INTO is SQLite's");
    let dest = dest
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", dest.display()))?;
    sqlx::query("VACUUM INTO $1")
        .bind(dest)
        .execute(db.pool())
        .await
        .with_context(|| format!("VACUUM INTO {dest}"))?;
    Ok(())
}

/// A copy opened read-only, so that checking it changes nothing in it.
pub async fn open_copy(path: &Path) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", path.display());
    let options = AnyConnectOptions::from_str(&url)?;
    AnyPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .with_context(|| format!("opening the copy {}", path.display()))
}

/// `PRAGMA integrity_check`: `["ok"]`, or each problem SQLite found.
pub async fn integrity_check(pool: &AnyPool) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(pool)
        .await
        .context("PRAGMA integrity_check")?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Counts the rows of every table of an SQLite database (drip's and the migrations').
pub async fn census(pool: &AnyPool) -> anyhow::Result<Census> {
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    let mut tables = BTreeMap::new();
    for (name,) in names {
        // The name comes from the database's own catalogue; quoted as an identifier.
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
        let (n,): (i64,) = sqlx::query_as(&sql)
            .fetch_one(pool)
            .await
            .with_context(|| format!("counting the rows of {name}"))?;
        tables.insert(name, n);
    }
    let schema_version = if tables.contains_key("_sqlx_migrations") {
        let (v,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")
            .fetch_one(pool)
            .await?;
        v
    } else {
        0
    };
    Ok(Census {
        tables,
        schema_version,
    })
}
