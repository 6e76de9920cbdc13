//! Relays as people run them: drip against an independent SMTP server (aiosmtpd, from PyPI,
//! run by `python3` from a script these tests write) that requires STARTTLS, or speaks TLS
//! from the start, and requires AUTH; with a CA and a server certificate these tests make.
//!
//! Without aiosmtpd the tests say so in one line and pass, except under `CI=true`, where a
//! missing aiosmtpd is a failure (.ci/run installs it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::Utc;
use drip::config::{Config, Tls, Transport};
use drip::mailer::Problem;

use crate::faults::{Drip, count, drip_env, seed_due, serving_address, set_env, wait_for_count};
use crate::on_both_databases;
use crate::support::{Backend, TestApp, TestDb, repo, test_config};

const USER: &str = "drip-sender";
const PASSWORD: &str = "correct horse battery staple";

/// A CA, a server certificate it signed (for localhost and 127.0.0.1), and its key.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "drip test CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "drip tests");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &issuer).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        cert: write("server.pem", cert.pem()),
        key: write("server.key", key.serialize_pem()),
        _dir: dir,
    }
}

/// What the issue's reporter had: one self-signed certificate marked as a CA, used as the
/// relay's own certificate and trusted through `ca_file`.
fn ca_as_server_pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.path().join("ca-and-server.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    let key_path = dir.path().join("server.key");
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Pki {
        ca: cert_path.clone(),
        cert: cert_path,
        key: key_path,
        _dir: dir,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Port 587 style: STARTTLS required before anything else, then AUTH.
    Starttls,
    /// Port 465 style: TLS from the first byte.
    Tls,
    /// No TLS at all, AUTH offered anyway (a relay on the same machine).
    Plain,
}

const SERVER_SCRIPT: &str = r#"
import asyncio, json, os, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

cfg = json.load(open(sys.argv[1]))
out = cfg["dir"]
ctx = None
if cfg["mode"] != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])

def note(line):
    with open(os.path.join(out, "auth.log"), "a") as f:
        f.write(line + "\n")

def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        note(mechanism + " unsupported")
        return AuthResult(success=False, handled=False)
    login = auth_data.login.decode()
    ok = login == cfg["user"] and auth_data.password.decode() == cfg["password"]
    note("%s %s %s" % (mechanism, "ok" if ok else "refused", login))
    # handled=False on a refusal: aiosmtpd then answers 535 itself.
    return AuthResult(success=ok, handled=False, auth_data=auth_data)

class Store:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Store.count += 1
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "login": session.auth_data.login.decode() if session.authenticated else None,
        }
        tmp = os.path.join(out, ".%05d.json" % Store.count)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(out, "%05d.json" % Store.count))
        return "250 2.0.0 Ok: queued as %05d" % Store.count

def factory():
    kw = dict(hostname="relay.test", authenticator=authenticator, auth_required=True)
    if cfg["mode"] == "starttls":
        kw.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
    else:
        kw.update(auth_require_tls=False)
    return SMTP(Store(), **kw)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, "127.0.0.1", 0, ssl=ctx if cfg["mode"] == "tls" else None)
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// Whether aiosmtpd can be imported; outside CI, says once that the tests are skipped.
fn aiosmtpd_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let found = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but python3 cannot import aiosmtpd: the relay TLS/AUTH tests must run in CI (.ci/run installs aiosmtpd)"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: python3 cannot import aiosmtpd: the relay TLS/AUTH tests were skipped (python3 -m pip install aiosmtpd==1.4.6)"
            );
        }
        found
    })
}

/// An aiosmtpd server on 127.0.0.1; killed when dropped.
struct Relay {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Relay {
    /// None when aiosmtpd is not installed (outside CI).
    fn start(pki: &Pki, mode: Mode) -> Option<Relay> {
        if !aiosmtpd_available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("relay.py");
        std::fs::write(&script, SERVER_SCRIPT).unwrap();
        let cfg = dir.path().join("relay.json");
        let mode_name = match mode {
            Mode::Starttls => "starttls",
            Mode::Tls => "tls",
            Mode::Plain => "plain",
        };
        std::fs::write(
            &cfg,
            serde_json::json!({
                "dir": dir.path(), "mode": mode_name, "cert": pki.cert, "key": pki.key,
                "user": USER, "password": PASSWORD,
            })
            .to_string(),
        )
        .unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("relay.log")).unwrap())
            .spawn()
            .expect("start python3");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "aiosmtpd did not start: {line:?}\n{}",
                    std::fs::read_to_string(dir.path().join("relay.log")).unwrap_or_default()
                )
            });
        Some(Relay { child, port, dir })
    }

    /// Every message the server accepted, as {from, to, data, login}.
    fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p.file_name().unwrap().to_string_lossy().starts_with('.')
                    && p.file_name().unwrap() != "relay.json"
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// What the server printed (its errors).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("relay.log")).unwrap_or_default()
    }

    /// One line per AUTH attempt: "PLAIN ok drip-sender".
    fn auth_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("auth.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The [smtp] settings for `relay`, as an operator would write them.
fn point_at(c: &mut Config, relay: &Relay, mode: Mode, host: &str, ca_file: Option<&Path>) {
    c.mail.transport = Transport::Smtp;
    c.smtp.host = host.into();
    c.smtp.port = relay.port;
    c.smtp.tls = match mode {
        Mode::Starttls => Tls::Starttls,
        Mode::Tls => Tls::Tls,
        Mode::Plain => Tls::None,
    };
    c.smtp.username = USER.into();
    c.smtp.password = PASSWORD.into();
    c.smtp.ca_file = ca_file.map(|p| p.display().to_string()).unwrap_or_default();
    c.smtp.timeout_seconds = 10;
    c.smtp.pool_size = 2;
}

/// No mail was spent, bounced or failed: everything is still queued as it was.
async fn nothing_spent(t: &TestApp, due: i64) {
    let app = &t.app;
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'queued' AND last_error IS NULL"
        )
        .await,
        due,
        "every mail still queued, with no error recorded against it"
    );
    assert_eq!(count(app, "SELECT COUNT(*) FROM bounces").await, 0);
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM subscribers WHERE status <> 'active'"
        )
        .await,
        0,
        "no subscriber marked"
    );
}

fn assert_delivered_over_auth(relay: &Relay, n: usize) {
    let messages = relay.messages();
    assert_eq!(messages.len(), n, "{messages:?}");
    for m in &messages {
        assert_eq!(m["login"], USER, "sent after AUTH as {USER}");
        let data = m["data"].as_str().unwrap();
        assert!(data.is_ascii(), "bodies are encoded, never raw 8bit");
        assert!(
            data.contains("Content-Transfer-Encoding: quoted-printable"),
            "{data}"
        );
    }
}

on_both_databases!(mail_goes_through_a_relay_over_starttls_and_auth);

async fn mail_goes_through_a_relay_over_starttls_and_auth(backend: Backend) {
    let pki = pki();
    let Some(relay) = Relay::start(&pki, Mode::Starttls) else {
        return;
    };
    let t = TestApp::build(backend, None, |c| {
        point_at(c, &relay, Mode::Starttls, "localhost", Some(&pki.ca))
    })
    .await;
    seed_due(&t.app, 3).await;
    let report = drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    assert_eq!(
        (report.sent, report.retried, report.failed, report.held),
        (3, 0, 0, 0),
        "{:?}",
        t.app.relay.problem()
    );
    assert_delivered_over_auth(&relay, 3);
    // aiosmtpd offers LOGIN and PLAIN; drip takes PLAIN first (one round trip).
    let auth = relay.auth_log();
    assert!(
        !auth.is_empty() && auth.iter().all(|l| l == &format!("PLAIN ok {USER}")),
        "{auth:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_a_relay_over_implicit_tls() {
    let pki = pki();
    let Some(relay) = Relay::start(&pki, Mode::Tls) else {
        return;
    };
    // By address this time: the certificate lists 127.0.0.1 too.
    let t = TestApp::build(Backend::Sqlite, None, |c| {
        point_at(c, &relay, Mode::Tls, "127.0.0.1", Some(&pki.ca))
    })
    .await;
    seed_due(&t.app, 3).await;
    let report = drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let errors: Vec<(Option<String>,)> = sqlx::query_as("SELECT last_error FROM deliveries")
        .fetch_all(t.app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        (report.sent, report.held),
        (3, 0),
        "{report:?} {:?} {errors:?}",
        t.app.relay.problem()
    );
    assert_delivered_over_auth(&relay, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_with_the_fix_then_accepted_with_ca_file() {
    let pki = pki();
    let Some(relay) = Relay::start(&pki, Mode::Starttls) else {
        return;
    };
    // The CA is in neither the system's store nor the built-in roots.
    let t = TestApp::build(Backend::Sqlite, None, |c| {
        point_at(c, &relay, Mode::Starttls, "localhost", None)
    })
    .await;
    seed_due(&t.app, 4).await;
    let report = drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    assert_eq!((report.sent, report.retried, report.failed), (0, 0, 0));
    assert_eq!(report.held, 4, "the whole queue is held");
    let problem = t.app.relay.problem().expect("the gate names the problem");
    assert_eq!(problem.kind, Problem::Certificate, "{problem}");
    assert!(
        problem
            .message
            .contains("signed by a CA that drip does not trust")
            && problem.message.contains("set [smtp] ca_file"),
        "{problem}"
    );
    nothing_spent(&t, 4).await;
    assert!(
        relay.auth_log().is_empty(),
        "no password sent to an unverified server"
    );
    assert!(relay.messages().is_empty());

    // The operator sets ca_file and restarts: everything goes, each mail on its first try.
    let mut config = (*t.app.config).clone();
    config.smtp.ca_file = pki.ca.display().to_string();
    let app = drip::app::App::with_db(config, t.app.db.clone()).unwrap();
    let report = drip::outbox::tick(&app, Utc::now()).await.unwrap();
    assert_eq!(
        (report.sent, report.held),
        (4, 0),
        "{:?}",
        app.relay.problem()
    );
    assert_delivered_over_auth(&relay, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_used_as_the_relays_own_is_explained() {
    let pki = ca_as_server_pki();
    let Some(relay) = Relay::start(&pki, Mode::Starttls) else {
        return;
    };
    let t = TestApp::build(Backend::Sqlite, None, |c| {
        point_at(c, &relay, Mode::Starttls, "localhost", Some(&pki.ca))
    })
    .await;
    seed_due(&t.app, 1).await;
    let report = drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    assert_eq!((report.sent, report.held), (0, 1));
    let problem = t.app.relay.problem().unwrap();
    assert_eq!(problem.kind, Problem::Certificate);
    assert!(
        problem
            .message
            .contains("the relay presents a CA certificate as its own server certificate"),
        "{problem}"
    );
    nothing_spent(&t, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_without_tls_is_refused_unless_allowed() {
    let pki = pki();
    let Some(relay) = Relay::start(&pki, Mode::Plain) else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&db.url, &dir.path().join("outbox"));
    point_at(&mut config, &relay, Mode::Plain, "127.0.0.1", None);
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("smtp.tls") && err.contains("allow_plain_auth") && err.contains("unencrypted"),
        "{err}"
    );
    // A relay on this machine, allowed explicitly.
    config.smtp.allow_plain_auth = true;
    config.validate().unwrap();
    let app = drip::app::App::with_db(config, db.connect().await).unwrap();
    seed_due(&app, 2).await;
    let report = drip::outbox::tick(&app, Utc::now()).await.unwrap();
    assert_eq!(
        (report.sent, report.held),
        (2, 0),
        "{:?}",
        app.relay.problem()
    );
    assert_eq!(relay.messages().len(), 2);
    assert_eq!(relay.auth_log()[0], format!("PLAIN ok {USER}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_in_clear_to_a_relay_that_requires_starttls_holds_the_queue() {
    let pki = pki();
    let Some(relay) = Relay::start(&pki, Mode::Starttls) else {
        return;
    };
    // tls = "none" and no sign-in: the relay answers MAIL with 530, which every mail would
    // get. That is the setup's fault, not the subscribers': held, not bounced.
    let t = TestApp::build(Backend::Sqlite, None, |c| {
        point_at(c, &relay, Mode::Plain, "127.0.0.1", None);
        c.smtp.username.clear();
        c.smtp.password.clear();
    })
    .await;
    seed_due(&t.app, 3).await;
    let report = drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    assert_eq!((report.sent, report.failed, report.held), (0, 0, 3));
    let problem = t.app.relay.problem().expect("held for a reason");
    assert_eq!(problem.kind, Problem::Refused);
    assert!(
        problem.message.contains("530") && problem.message.contains("tls = \"starttls\""),
        "{problem}"
    );
    nothing_spent(&t, 3).await;
}

/// The environment for a drip process pointed at `relay` over STARTTLS.
fn relay_env(
    db_url: &str,
    relay: &Relay,
    dir: &Path,
    pki: &Pki,
    password: &str,
) -> Vec<(&'static str, String)> {
    let mut env = drip_env(db_url, relay.port, dir);
    set_env(&mut env, "DRIP_SMTP__HOST", "localhost".into());
    set_env(&mut env, "DRIP_SMTP__TLS", "starttls".into());
    set_env(&mut env, "DRIP_SMTP__USERNAME", USER.into());
    set_env(&mut env, "DRIP_SMTP__PASSWORD", password.into());
    set_env(&mut env, "DRIP_SMTP__CA_FILE", pki.ca.display().to_string());
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_holds_the_queue_without_a_retry_or_bounce_until_fixed() {
    const DUE: i64 = 6;
    let pki = pki();
    let Some(relay) = Relay::start(&pki, Mode::Starttls) else {
        return;
    };
    let _turn = crate::support::PROCESSES.lock().await;
    let t = TestApp::with_file_outbox(Backend::Sqlite).await;
    seed_due(&t.app, DUE as usize).await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = "not-the-password-4f1c";
    let mut serve = Drip::start(
        "serve",
        &relay_env(&t.db.url, &relay, dir.path(), &pki, wrong),
        dir.path(),
        "serve-wrong",
    );
    let addr = serving_address(&mut serve).await;
    // drip tries, is refused, holds; the gate's next probe is 5 s later.
    let fix = "the relay refused the user name or password (535 5.7.8 Authentication credentials invalid); check [smtp] username/password";
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (_, body) = crate::faults::http(&addr, "GET", "/metrics", "").await;
        if body.contains("drip_smtp_relay_problem{") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no problem reported:\n{}",
            serve.tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metrics.contains(&format!(
            "drip_smtp_relay_problem{{kind=\"auth_rejected\",fix=\"{fix}\"}} 1"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("drip_smtp_unreachable 0"), "{metrics}");
    // Stay refused over a probe or two.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let log = serve.log();
    let line = log
        .lines()
        .find(|l| l.contains(fix))
        .unwrap_or_else(|| panic!("no log line says what to fix:\n{log}"));
    assert!(line.contains("holding the queue"), "{line}");
    assert!(!log.contains(wrong), "the password reached the log");
    nothing_spent(&t, DUE).await;
    let attempts = relay.auth_log().len();
    assert!(
        (1..=6).contains(&attempts),
        "{attempts} sign-in attempts in 7 s: the gate must not hammer the relay"
    );
    assert!(relay.messages().is_empty());
    serve.kill();

    // The operator fixes the password and restarts: every mail goes on its first try.
    let serve = Drip::start(
        "serve",
        &relay_env(&t.db.url, &relay, dir.path(), &pki, PASSWORD),
        dir.path(),
        "serve-fixed",
    );
    wait_for_count(
        &t.app,
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND attempts = 1",
        DUE,
        Duration::from_secs(60),
        || serve.tail(),
    )
    .await;
    assert!(
        !serve.log().contains(PASSWORD),
        "the password reached the log"
    );
    assert_delivered_over_auth(&relay, DUE as usize);
    assert_eq!(count(&t.app, "SELECT COUNT(*) FROM bounces").await, 0);
}

/// `drip smtp check` with the shipped config.toml and `env`; exit code and what it printed.
fn smtp_check(env: &[(&str, String)], to: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drip"));
    cmd.arg("--config")
        .arg(repo("config.toml"))
        .args(["smtp", "check"])
        .current_dir(dir.path())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    if let Some(to) = to {
        cmd.args(["--to", to]);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn check_env(relay: &Relay, ca: Option<&Path>, password: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DRIP_SMTP__HOST", "localhost".to_owned()),
        ("DRIP_SMTP__PORT", relay.port.to_string()),
        ("DRIP_SMTP__TLS", "starttls".into()),
        ("DRIP_SMTP__USERNAME", USER.into()),
        ("DRIP_SMTP__PASSWORD", password.into()),
        ("DRIP_SMTP__TIMEOUT_SECONDS", "10".into()),
    ];
    if let Some(ca) = ca {
        env.push(("DRIP_SMTP__CA_FILE", ca.display().to_string()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_check_prints_every_step_and_names_the_fix() {
    let pki = pki();
    let Some(relay) = Relay::start(&pki, Mode::Starttls) else {
        return;
    };
    let (code, out) = smtp_check(
        &check_env(&relay, Some(&pki.ca), PASSWORD),
        Some("check@example.com"),
    );
    assert_eq!(code, 0, "{out}\n{}", relay.log());
    for expected in [
        "connect   localhost:",
        "greeting  220 relay.test",
        "EHLO      relay.test",
        "STARTTLS",
        "certificate verified: subject CN=localhost, issuer O=drip tests,CN=drip test CA, expires ",
        &format!("AUTH      signed in as {USER} with PLAIN"),
        "MAIL      FROM:<course@example.org> 250",
        "RCPT      TO:<check@example.com> 250",
        "DATA      354",
        "message   ",
        "works: the test message to check@example.com was accepted",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    // Before STARTTLS the relay offers STARTTLS and no AUTH; after it, AUTH.
    let ehlo: Vec<&str> = out.lines().filter(|l| l.contains(" EHLO ")).collect();
    assert_eq!(ehlo.len(), 2, "{out}");
    assert!(
        ehlo[0].contains("STARTTLS") && !ehlo[0].contains("AUTH"),
        "{out}"
    );
    assert!(ehlo[1].contains("AUTH"), "{out}");
    let received = relay.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["to"][0], "check@example.com");

    let wrong = "wrong-password-9d2e";
    let (code, out) = smtp_check(&check_env(&relay, Some(&pki.ca), wrong), None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL AUTH")
            && out.trim_end().ends_with(
                "does not work: the relay refused the user name or password (535 5.7.8 Authentication credentials invalid); check [smtp] username/password"
            ),
        "{out}"
    );
    assert!(!out.contains(wrong), "the password was printed:\n{out}");

    let (code, out) = smtp_check(&check_env(&relay, None, PASSWORD), None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("set [smtp] ca_file"), "{out}");
    assert!(
        out.contains(
            "the relay presents: subject CN=localhost, issuer O=drip tests,CN=drip test CA"
        ),
        "{out}"
    );
    assert_eq!(
        relay.messages().len(),
        1,
        "nothing sent by the failed checks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_statistics_page_runs_the_check_and_shows_what_holds_the_queue() {
    let pki = pki();
    let Some(relay) = Relay::start(&pki, Mode::Starttls) else {
        return;
    };
    let t = TestApp::build(Backend::Sqlite, None, |c| {
        point_at(c, &relay, Mode::Starttls, "localhost", Some(&pki.ca))
    })
    .await;
    crate::admin::add_test_admin(&t.app).await;
    let session = crate::admin::sign_in(&t.app).await;
    let page = session.get(&t.app, "/admin/stats").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Check the SMTP relay now"),
        "{}",
        page.body
    );

    let done = session.post(&t.app, "/admin/stats/smtp-check", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = session.get(&t.app, "/admin/stats").await;
    for expected in [
        "works: drip can hand mail to localhost:",
        "certificate verified: subject CN=localhost",
        &format!("signed in as {USER} with PLAIN"),
    ] {
        assert!(
            page.body.contains(expected),
            "{expected:?} missing from\n{}",
            page.body
        );
    }
    assert!(relay.messages().is_empty(), "the button sends nothing");

    // The same instance with a wrong password: the page says what holds the queue.
    let mut config = (*t.app.config).clone();
    config.smtp.password = "wrong".into();
    let wrong = drip::app::App::with_db(config, t.app.db.clone()).unwrap();
    seed_due(&wrong, 2).await;
    let report = drip::outbox::tick(&wrong, Utc::now()).await.unwrap();
    assert_eq!((report.sent, report.held), (0, 2));
    let page = session.get(&wrong, "/admin/stats").await;
    assert!(
        page.body.contains("The queue is held:")
            && page
                .body
                .contains("(535 5.7.8 Authentication credentials invalid); check [smtp] username"),
        "{}",
        page.body
    );
}
