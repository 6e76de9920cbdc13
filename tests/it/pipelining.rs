//! Mail to Postfix's own SMTP server, `smtp-sink` (Debian's postfix package), which offers
//! PIPELINING unless started with `-p`: with it, drip sends MAIL, RCPT and DATA in one
//! write; without it, one command at a time. Either way every due lesson arrives whole, to
//! its reader, with its delivery's Message-ID, and is recorded once. The order of the
//! commands on the wire is checked against a scripted server in `mailer::pool`'s unit tests.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use drip::config::Transport;
use drip::outbox;

use crate::faults::{count, expected_ids, seed_due};
use crate::on_both_databases;
use crate::support::{Backend, TestApp, needs};

const SMTP_SINK: &str = "/usr/sbin/smtp-sink";
const READERS: usize = 40;

/// smtp-sink, killed when dropped.
struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// smtp-sink on a free port, writing each mail it accepts to a file in `dump`.
fn start_sink(dump: &Path, pipelining: bool) -> (Sink, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(SMTP_SINK);
    // smtp-sink refuses to run as root; the dump folder is then written as nobody.
    if std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    }) {
        cmd.args(["-u", "nobody"]);
    }
    if !pipelining {
        cmd.arg("-p");
    }
    let child = cmd
        .arg("-d")
        .arg(format!("{}/%M.", dump.display()))
        .arg(format!("127.0.0.1:{port}"))
        .arg("64")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting smtp-sink");
    let sink = Sink(child);
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (sink, port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("smtp-sink did not listen on {port}");
}

/// The mails smtp-sink wrote, by Message-ID: (recipient, whole message).
fn dumped(dump: &Path) -> HashMap<String, (String, String)> {
    let mut mails = HashMap::new();
    for entry in std::fs::read_dir(dump).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let header = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let id = header("Message-ID:");
        let rcpt = header("X-Rcpt-Args:");
        assert!(
            mails.insert(id.clone(), (rcpt, text.clone())).is_none(),
            "{id} arrived twice"
        );
    }
    mails
}

on_both_databases!(every_lesson_arrives_whole_through_postfix_with_and_without_pipelining);

async fn every_lesson_arrives_whole_through_postfix_with_and_without_pipelining(backend: Backend) {
    if !needs(
        "Postfix's smtp-sink",
        Path::new(SMTP_SINK).exists(),
        "apt-get install postfix",
    ) {
        return;
    }
    for offered in [true, false] {
        let dump = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dump.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let (_sink, port) = start_sink(dump.path(), offered);
        let t = TestApp::builder(backend)
            .config(|c| {
                c.mail.transport = Transport::Smtp;
                c.smtp.host = "127.0.0.1".into();
                c.smtp.port = port;
                c.smtp.timeout_seconds = 5;
                c.smtp.pool_size = 3;
            })
            .build()
            .await;
        seed_due(&t.app, READERS).await;
        let mut sent = 0;
        for _ in 0..5 {
            let report = outbox::tick(&t.app, chrono::Utc::now()).await.unwrap();
            assert_eq!((report.failed, report.retried), (0, 0), "{report:?}");
            sent += report.sent;
            if sent == READERS as u64 {
                break;
            }
        }
        assert_eq!(sent, READERS as u64, "PIPELINING offered: {offered}");
        let recorded = count(
            &t.app,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'",
        )
        .await;
        assert_eq!(recorded, READERS as i64);

        // smtp-sink writes a mail's file as it answers 250: give the last ones a moment.
        let mut mails = dumped(dump.path());
        for _ in 0..100 {
            if mails.len() >= READERS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            mails = dumped(dump.path());
        }
        let expected = expected_ids(&t.app).await;
        assert_eq!(mails.len(), expected.len(), "PIPELINING offered: {offered}");
        for id in &expected {
            let (rcpt, text) = mails
                .get(id)
                .unwrap_or_else(|| panic!("{id} never arrived (PIPELINING offered: {offered})"));
            assert!(rcpt.contains("@example.com"), "{rcpt}");
            let n = rcpt
                .trim_start_matches("<reader")
                .split('@')
                .next()
                .unwrap()
                .to_owned();
            assert!(
                text.contains(&format!("To: \"Reader {n}\" <reader{n}@example.com>")),
                "{text}"
            );
            // Whole: both parts and the closing boundary made it through.
            assert!(text.contains("Content-Type: text/plain"), "{text}");
            assert!(text.contains("Content-Type: text/html"), "{text}");
            let boundary = text
                .split("boundary=\"")
                .nth(1)
                .and_then(|b| b.split('"').next())
                .expect("a multipart boundary");
            assert!(
                text.contains(&format!("--{boundary}--")),
                "cut short: {text}"
            );
        }
    }
}
