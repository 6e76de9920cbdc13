//! The `drip` binary as a user meets it: configuration errors name the problem before
//! anything starts, `migrate` creates the tables, and the commands print what they did.

use std::process::{Command, Output};

use crate::support::repo;

pub fn drip(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    drip_with_input(dir, args, env, "")
}

/// `drip ARGS` in `dir` with these environment variables and `stdin` as its input.
pub fn drip_with_input(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_drip"))
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A folder with the shipped config.toml, lessons and templates, as on a fresh clone.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(repo("config.toml"))
        .unwrap()
        .replace(
            "lessons_dir = \"lessons\"",
            &format!("lessons_dir = \"{}\"", repo("lessons").display()),
        )
        .replace(
            "templates_dir = \"templates\"",
            &format!("templates_dir = \"{}\"", repo("templates").display()),
        );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    dir
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_bad_config_file_fails_before_anything_starts_and_names_the_key() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("bad.toml"),
        std::fs::read_to_string(dir.path().join("config.toml"))
            .unwrap()
            .replace("port = 25", "port = \"smtp\""),
    )
    .unwrap();
    let out = drip(dir.path(), &["--config", "bad.toml", "serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("smtp.port"), "{}", stderr(&out));
    assert!(!dir.path().join("drip.db").exists(), "nothing started");
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = workdir();
    let out = drip(dir.path(), &["--config", "nowhere.toml", "serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nowhere.toml"), "{}", stderr(&out));
}

#[test]
fn a_bad_database_url_in_the_environment_is_named() {
    let dir = workdir();
    let out = drip(
        dir.path(),
        &["serve"],
        &[("DRIP_DATABASE__URL", "mysql://localhost/drip")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("database.url") && stderr(&out).contains("mysql"),
        "{}",
        stderr(&out)
    );
    let out = drip(
        dir.path(),
        &["migrate"],
        &[("DRIP_DATABASE__URL", "postgres://nobody@127.0.0.1:1/none")],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot connect to database.url"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn migrate_creates_the_tables_and_reports_them() {
    let dir = workdir();
    let out = drip(dir.path(), &["migrate"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for table in [
        "subscribers",
        "deliveries",
        "replies",
        "lesson_revisions",
        "events",
    ] {
        assert!(stdout.contains(table), "{stdout}");
    }
    assert!(dir.path().join("drip.db").exists());
}

#[test]
fn the_help_lists_every_command_of_the_design() {
    let dir = workdir();
    let out = drip(dir.path(), &["--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "serve",
        "worker",
        "migrate",
        "tick",
        "lessons",
        "subscribers",
        "ingest",
        "simulate",
        "admin",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
}

#[test]
fn a_subscriber_added_and_ticked_gets_the_first_lesson_in_the_outbox() {
    let dir = workdir();
    let out = drip(
        dir.path(),
        &[
            "subscribers",
            "add",
            "zoe@example.com",
            "--name",
            "Zoe",
            "--timezone",
            "Europe/Paris",
            "--confirmed",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = drip(dir.path(), &["tick", "--now", "2030-01-01T10:00:00Z"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let files: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("-lesson-before-we-begin.eml")),
        "{files:?}"
    );
    let out = drip(
        dir.path(),
        &["subscribers", "show", "zoe@example.com", "--json"],
        &[],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["enrollments"][0]["position"], 1);
    assert_eq!(json["deliveries"][0]["lesson"], "before-we-begin");
    assert_eq!(json["deliveries"][0]["revision"], 1);
    // Bad input changes nothing and names the field.
    let out = drip(
        dir.path(),
        &[
            "subscribers",
            "add",
            "not an address",
            "--timezone",
            "Mars/Base",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("email") && stderr(&out).contains("timezone"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn lessons_list_json_has_the_contract_fields() {
    let dir = workdir();
    let out = drip(dir.path(), &["lessons", "list", "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows.len() >= 16);
    for key in ["position", "slug", "phase", "title", "subject", "revision"] {
        assert!(rows[0].get(key).is_some(), "{key}");
    }
}

#[test]
fn simulate_prints_every_lesson_at_its_local_time() {
    let dir = workdir();
    let out = drip(
        dir.path(),
        &[
            "simulate",
            "--timezone",
            "America/New_York",
            "--now",
            "2026-03-01T15:00:00Z",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Every lesson within the default horizon of the simulation (90 days).
    let horizon = rows.len();
    assert!(horizon >= 21, "{horizon} lessons in 90 days");
    // Lesson 2 onwards at 08:00 or 07:30 New York time, before and after the 8 March change.
    for r in &rows[1..] {
        let local = r["local"].as_str().unwrap();
        assert!(
            local.contains("T08:00:00") || local.contains("T07:30:00"),
            "{local}"
        );
    }
}

#[test]
fn serve_answers_then_shuts_down_cleanly_on_sigterm() {
    use std::io::{Read, Write};
    let dir = workdir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drip"))
        .current_dir(dir.path())
        .arg("serve")
        .env("DRIP_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("DRIP_SERVER__BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("DRIP_SCHEDULE__TICK_SECONDS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let body = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "drip serve did not start listening"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("drip serve did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("shutting down"), "{log}");
}
