//! `drip backup FILE [--json]`: a checked copy of the SQLite database, taken while drip runs;
//! on PostgreSQL, the pg_dump command to use instead.
//!
//! The copy is written beside FILE under a temporary name (mode 0600: it holds everything the
//! database does), synced to disk, opened read-only
//! and checked (`PRAGMA integrity_check`, the row count of every table, the last migration);
//! only then does it take the name FILE, which never replaces an existing file. A copy that
//! fails a check is deleted and the error says why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;

use crate::config::Config;
use crate::db::backup::{self, Census};
use crate::db::{Backend, Db, redact};

/// Runs before the app starts: a backup must not migrate or otherwise touch the database.
pub async fn run(config: &Config, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let url = &config.database.url;
    match Backend::from_url(url).map_err(anyhow::Error::msg)? {
        Backend::Postgres => {
            eprint!("{}", postgres_advice(url, file));
            // No backup was made: a scheduled job must not take this for one.
            Ok(ExitCode::FAILURE)
        }
        Backend::Sqlite => {
            let done = sqlite(url, file).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "file": done.file, "bytes": done.bytes, "integrity": "ok",
                        "schema_version": done.copy.schema_version, "tables": done.copy.tables,
                        "changed_during_backup": done.changed,
                    })
                );
            } else {
                let rows: Vec<String> = done
                    .copy
                    .tables
                    .iter()
                    .filter(|(name, _)| !name.starts_with('_'))
                    .map(|(name, n)| format!("{name} {n}"))
                    .collect();
                println!(
                    "backup written to {} ({} bytes): integrity ok, migration {}, rows: {}",
                    done.file.display(),
                    done.bytes,
                    done.copy.schema_version,
                    rows.join(", ")
                );
                if !done.changed.is_empty() {
                    println!(
                        "written to meanwhile (the copy holds them as they were at one moment): {}",
                        done.changed.join(", ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

struct Done {
    file: PathBuf,
    bytes: u64,
    copy: Census,
    /// Tables whose count changed while the copy was made.
    changed: Vec<String>,
}

/// Deletes the temporary copy unless it was kept.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn sqlite(url: &str, file: &Path) -> anyhow::Result<Done> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .with_context(|| format!("database.url {:?}", redact(url)))?;
    let source = options.get_filename().to_owned();
    anyhow::ensure!(
        source.is_file(),
        "database.url names {}, which does not exist: there is nothing to back up",
        source.display()
    );
    anyhow::ensure!(
        std::fs::symlink_metadata(file).is_err(),
        "{} already exists: drip backup never overwrites a file; give a new name or move the old one away",
        file.display()
    );
    let name = file
        .file_name()
        .with_context(|| format!("{} is not a file name", file.display()))?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    anyhow::ensure!(
        dir.is_dir(),
        "cannot write {}: the folder {} does not exist",
        file.display(),
        dir.display()
    );
    let temp = dir.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&temp);
    // Made empty first, readable by drip's user only: VACUUM INTO writes into an empty file
    // and keeps its mode, so the copy is never readable by others, not even for a moment.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("creating {}", temp.display()))?;
    }
    let mut partial = Partial(Some(temp.clone()));

    let db = Db::connect(url, 1).await?;
    let before = backup::census(db.pool()).await?;
    backup::vacuum_into(&db, &temp).await?;
    let after = backup::census(db.pool()).await?;
    db.pool().close().await;
    // VACUUM INTO does not sync what it wrote; a backup that a power cut can lose is none.
    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", temp.display()))?;

    let pool = backup::open_copy(&temp).await?;
    let integrity = backup::integrity_check(&pool).await?;
    let copy = backup::census(&pool).await?;
    pool.close().await;
    anyhow::ensure!(
        integrity == ["ok"],
        "the copy failed PRAGMA integrity_check: {}; no backup was written",
        integrity.join("; ")
    );
    let changed = compare(&before, &after, &copy)?;

    // A hard link takes the name only if nothing has it: never an overwrite, even if a
    // file of that name appeared meanwhile.
    match std::fs::hard_link(&temp, file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            anyhow::bail!(
                "{} appeared while the copy was made: drip backup never overwrites a file",
                file.display()
            )
        }
        Err(_) if std::fs::symlink_metadata(file).is_err() => std::fs::rename(&temp, file)
            .with_context(|| format!("naming the copy {}", file.display()))?,
        Err(e) => return Err(e).with_context(|| format!("naming the copy {}", file.display())),
    }
    if let Some(temp) = partial.0.take() {
        let _ = std::fs::remove_file(temp);
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    let bytes = std::fs::metadata(file)?.len();
    Ok(Done {
        file: file.to_owned(),
        bytes,
        copy,
        changed,
    })
}

/// The copy must hold the tables the database had, at the same migration, and each table's
/// count must lie between the counts read just before and just after the copy (equal to
/// them for a table nobody wrote to meanwhile). Returns the tables that changed meanwhile.
fn compare(before: &Census, after: &Census, copy: &Census) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut changed = Vec::new();
    if copy.schema_version != after.schema_version {
        problems.push(format!(
            "the copy is at migration {}, the database at {}",
            copy.schema_version, after.schema_version
        ));
    }
    let mut names: BTreeMap<&str, ()> = BTreeMap::new();
    for census in [before, after, copy] {
        names.extend(census.tables.keys().map(|k| (k.as_str(), ())));
    }
    for name in names.keys() {
        let (b, a, c) = (
            before.tables.get(*name),
            after.tables.get(*name),
            copy.tables.get(*name),
        );
        match (b, a, c) {
            (Some(b), Some(a), Some(c)) => {
                if b != a {
                    changed.push((*name).to_owned());
                }
                if c < b.min(a) || c > b.max(a) {
                    problems.push(format!(
                        "{name} has {c} rows in the copy, {b} before and {a} after it"
                    ));
                }
            }
            (_, Some(_), None) => problems.push(format!("{name} is missing from the copy")),
            (_, None, Some(_)) => {}
            _ => {}
        }
    }
    anyhow::ensure!(
        problems.is_empty(),
        "the copy does not match the database: {}; no backup was written",
        problems.join("; ")
    );
    Ok(changed)
}

/// What to run instead on PostgreSQL: pg_dump with the configured URL (its password left
/// out), and how to restore.
fn postgres_advice(url: &str, file: &Path) -> String {
    let (libpq_url, schema, had_password) = libpq_url(url);
    let schema_arg = schema
        .map(|s| format!(" --schema={}", shell_quote(&s)))
        .unwrap_or_default();
    let file = shell_quote(&file.display().to_string());
    let url_arg = shell_quote(&libpq_url);
    let password = if had_password {
        "\n(the password is left out of the URL: give it in PGPASSWORD or ~/.pgpass)"
    } else {
        ""
    };
    format!(
        "drip backup copies SQLite databases; database.url is PostgreSQL, whose own tool makes a consistent copy while drip runs:\n\n  pg_dump --format=custom{schema_arg} --file={file} {url_arg}\n{password}\nTo restore: stop drip, then\n\n  pg_restore --clean --if-exists --dbname={url_arg} {file}\n\nNo file was written, so this exits with code 1.\n"
    )
}

/// The URL as libpq reads it: no password, and only the parameters libpq knows (sqlx has
/// some of its own). Also the schema drip's tables are in, when `options` sets search_path.
fn libpq_url(url: &str) -> (String, Option<String>, bool) {
    const LIBPQ: [&str; 10] = [
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "options",
        "application_name",
        "host",
        "hostaddr",
        "port",
        "connect_timeout",
    ];
    let Ok(mut parsed) = url::Url::parse(url) else {
        return (redact(url), None, url.contains('@'));
    };
    let had_password = parsed.password().is_some();
    let _ = parsed.set_password(None);
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| LIBPQ.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let schema = pairs
        .iter()
        .filter(|(k, _)| k == "options")
        .find_map(|(_, v)| {
            let at = v.find("search_path=")? + "search_path=".len();
            let first = v[at..].split([',', ' ']).next()?.trim_matches('"');
            (!first.is_empty()).then(|| first.to_owned())
        });
    // Percent-encoded by hand: the url crate writes a space as '+', which libpq reads as '+'.
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    parsed.set_query((!query.is_empty()).then(|| query.join("&")).as_deref());
    (parsed.to_string(), schema, had_password)
}

/// Every byte but RFC 3986's unreserved characters as %XX.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One argument for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,@+".contains(c))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pg_dump_command_leaves_the_password_and_sqlx_options_out_and_names_the_schema() {
        let (url, schema, password) = libpq_url(
            "postgres://drip:s3cret@db.example.org:5433/drip?sslmode=require&statement-cache-capacity=50&options=-c%20search_path%3Dcourse",
        );
        assert!(password);
        assert!(
            !url.contains("s3cret") && !url.contains("statement-cache"),
            "{url}"
        );
        assert_eq!(
            url,
            "postgres://drip@db.example.org:5433/drip?sslmode=require&options=-c%20search_path%3Dcourse"
        );
        assert_eq!(schema.as_deref(), Some("course"));
        let advice = postgres_advice("postgres://drip@localhost/drip", Path::new("it's.dump"));
        assert!(
            advice.contains(
                "pg_dump --format=custom --file='it'\\''s.dump' postgres://drip@localhost/drip\n"
            ),
            "{advice}"
        );
        assert!(!advice.contains("PGPASSWORD"));
    }

    #[test]
    fn a_copy_with_fewer_rows_than_the_database_ever_had_is_refused() {
        let census = |n: i64| Census {
            tables: BTreeMap::from([("subscribers".to_owned(), n)]),
            schema_version: 12,
        };
        assert_eq!(
            compare(&census(5), &census(5), &census(5)).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            compare(&census(5), &census(9), &census(7)).unwrap(),
            ["subscribers"]
        );
        let err = compare(&census(5), &census(9), &census(4))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("subscribers has 4 rows in the copy, 5 before and 9 after"),
            "{err}"
        );
        let mut missing = census(5);
        missing.tables.clear();
        let err = compare(&census(5), &census(5), &missing)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("subscribers is missing from the copy"),
            "{err}"
        );
    }
}
