//! DKIM as a receiver checks it. Keys are made by the `openssl` command line in each form it
//! writes today; a confirmation and a lesson go through drip's real path (sign-up, the
//! button, the sender) to a real SMTP server; and each mail is verified by dkimpy (PyPI),
//! an independent implementation, against the TXT record that `drip dns --json` prints for
//! the key, as a receiver would fetch it from DNS. Then headers are added to the mail, as a
//! forwarder or a forger would: a second From, Subject, Reply-To or List-Unsubscribe must
//! break the signature, an unrelated header must not.
//!
//! Without openssl, or python3 with dkimpy and PyNaCl, the tests say so in one line and pass,
//! except under `CI=true` (.ci/run installs dkimpy and PyNaCl).

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;

use crate::cli::{drip, stderr, workdir};
use crate::on_both_databases;
use crate::support::{Backend, TestApp, find_url, needs, path_of, request, text_part};

const SELECTOR: &str = "drip2026";

/// What `h=` must be on a lesson: every RFC 6376 §5.4.1 header it carries, then the
/// oversigned ones once more.
const LESSON_SIGNED: &str = "from:reply-to:subject:date:to:message-id:mime-version:content-type:list-id:list-unsubscribe:list-unsubscribe-post:from:reply-to:subject:list-unsubscribe:list-unsubscribe-post";

/// Reads a message and the `drip dns --json` output; verifies the message with dkimpy, the
/// TXT record served from the JSON for exactly the name `<selector>._domainkey.<domain>`,
/// then verifies copies with one header added above or below the others. Prints JSON.
const VERIFY_SCRIPT: &str = r#"
import json, sys
import dkim

msg = open(sys.argv[1], "rb").read()
report = json.load(open(sys.argv[2]))
record = [r for r in report["records"] if r["kind"] == "dkim"][0]
asked = []

def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    asked.append(name)
    if name.rstrip(".").lower() == record["name"].lower():
        return record["value"].encode()
    return None

def verify(m):
    return bool(dkim.verify(m, dnsfunc=dnsfunc))

head, sep, body = msg.partition(b"\r\n\r\n")
added = {}
for name, value in [
    ("From", "Someone Else <someone@example.net>"),
    ("Subject", "A different subject"),
    ("Reply-To", "elsewhere@example.net"),
    ("List-Unsubscribe", "<https://elsewhere.example.net/u>"),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ("X-Added-By-A-Forwarder", "yes"),
]:
    line = ("%s: %s\r\n" % (name, value)).encode()
    added[name] = {
        "above": verify(line + msg),
        "below": verify(head + b"\r\n" + line.rstrip(b"\r\n") + sep + body),
    }
print(json.dumps({"verified": verify(msg), "asked": asked, "added": added}))
"#;

/// A key form and the openssl command that writes it.
struct Form {
    name: &'static str,
    args: &'static [&'static str],
    pem_label: &'static str,
    algorithm: &'static str,
}

const FORMS: [Form; 4] = [
    Form {
        name: "genpkey-rsa",
        args: &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        pem_label: "-----BEGIN PRIVATE KEY-----",
        algorithm: "rsa-sha256",
    },
    Form {
        // OpenSSL 3's genrsa writes PKCS#8 too.
        name: "genrsa",
        args: &["genrsa", "2048"],
        pem_label: "-----BEGIN PRIVATE KEY-----",
        algorithm: "rsa-sha256",
    },
    Form {
        name: "genrsa-traditional",
        args: &["genrsa", "-traditional", "2048"],
        pem_label: "-----BEGIN RSA PRIVATE KEY-----",
        algorithm: "rsa-sha256",
    },
    Form {
        name: "genpkey-ed25519",
        args: &["genpkey", "-algorithm", "ed25519"],
        pem_label: "-----BEGIN PRIVATE KEY-----",
        algorithm: "ed25519-sha256",
    },
];

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether openssl and dkimpy (with PyNaCl, for Ed25519) are here; says so if not.
fn tools() -> bool {
    needs(
        "the openssl command line",
        runs("openssl", &["version"]),
        "apt-get install openssl",
    ) && needs(
        "python3 with dkimpy and PyNaCl",
        runs("python3", &["-c", "import dkim, nacl"]),
        "python3 -m pip install dkimpy==1.1.8 pynacl==1.6.2",
    )
}

/// Writes a key with openssl; checks it is in the form the test is about.
fn make_key(dir: &std::path::Path, form: &Form) -> std::path::PathBuf {
    let path = dir.join(format!("{}.pem", form.name));
    let out = Command::new("openssl")
        .arg(form.args[0])
        .arg("-out")
        .arg(&path)
        .args(&form.args[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {:?}: {}",
        form.args,
        stderr(&out)
    );
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(
        pem.starts_with(form.pem_label),
        "openssl {:?} wrote {}",
        form.args,
        pem.lines().next().unwrap_or("")
    );
    path
}

/// `drip dns --json` for this key, through the binary as an operator runs it.
fn dns_json(key: &std::path::Path) -> serde_json::Value {
    let dir = workdir();
    let key = key.display().to_string();
    let out = drip(
        dir.path(),
        &["dns", "--json"],
        &[
            ("DRIP_MAIL__DKIM_KEY", key.as_str()),
            ("DRIP_MAIL__DKIM_SELECTOR", SELECTOR),
        ],
    );
    assert!(out.status.success(), "drip dns: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The tags of a message's DKIM-Signature, unfolded.
fn signature_tags(data: &str) -> std::collections::HashMap<String, String> {
    let head = data.split("\r\n\r\n").next().unwrap();
    let mut lines = head.split("\r\n").peekable();
    let mut value = String::new();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("DKIM-Signature:") {
            value.push_str(rest);
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push_str(next);
                lines.next();
            }
        }
    }
    assert!(!value.is_empty(), "no DKIM-Signature in\n{head}");
    value
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect()
}

/// dkimpy's verdicts on `data` (see VERIFY_SCRIPT).
fn dkimpy(
    dir: &std::path::Path,
    label: &str,
    data: &str,
    dns: &serde_json::Value,
) -> serde_json::Value {
    let eml = dir.join(format!("{label}.eml"));
    std::fs::write(&eml, data).unwrap();
    let report = dir.join(format!("{label}.dns.json"));
    std::fs::write(&report, dns.to_string()).unwrap();
    let script = dir.join("verify.py");
    std::fs::write(&script, VERIFY_SCRIPT).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&eml)
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "dkimpy on {label}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

on_both_databases!(mail_signed_with_each_openssl_key_form_verifies_with_dkimpy);

async fn mail_signed_with_each_openssl_key_form_verifies_with_dkimpy(backend: Backend) {
    if !tools() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let t = TestApp::with_smtp(backend).await;
    let smtp = t.smtp();
    for form in &FORMS {
        let key = make_key(keys.path(), form);
        // A restart of drip with this key configured: the same database and SMTP server.
        let app = t.another_process(|c| {
            c.mail.dkim_key = key.display().to_string();
            c.mail.dkim_selector = SELECTOR.into();
        });
        let email = format!("{}@example.com", form.name);
        let (status, page) = request(
            &app,
            "POST",
            "/subscribe",
            Some("application/x-www-form-urlencoded"),
            &format!(
                "email={}&name=Ann&timezone=Europe%2FParis",
                email.replace('@', "%40")
            ),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        drip::outbox::tick(&app, Utc::now()).await.unwrap();
        let mine = |n: usize| {
            let email = email.clone();
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                loop {
                    let got: Vec<_> = smtp
                        .messages()
                        .into_iter()
                        .filter(|m| m.to.iter().any(|to| to == &email))
                        .collect();
                    if got.len() >= n || tokio::time::Instant::now() > deadline {
                        return got;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        let confirm = mine(1).await;
        assert_eq!(confirm.len(), 1, "{}: one confirmation mail", form.name);
        let link = find_url(&text_part(&confirm[0].data), "http").expect("a confirmation link");
        let (status, page) = request(
            &app,
            "POST",
            &path_of(&link),
            Some("application/x-www-form-urlencoded"),
            "",
        )
        .await;
        assert_eq!(status, 200, "{page}");
        drip::outbox::tick(&app, Utc::now()).await.unwrap();
        let mails = mine(2).await;
        assert_eq!(
            mails.len(),
            2,
            "{}: the confirmation, then the first lesson",
            form.name
        );
        let lesson = mails
            .iter()
            .find(|m| m.header("X-Drip-Lesson").is_some())
            .expect("a lesson");

        let dns = dns_json(&key);
        let record = dns["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "dkim")
            .expect("a DKIM record")
            .clone();
        assert_eq!(record["name"], format!("{SELECTOR}._domainkey.example.org"));

        for (label, mail) in [("confirm", &confirm[0]), ("lesson", lesson)] {
            let label = format!("{}-{label}", form.name);
            let tags = signature_tags(&mail.data);
            assert_eq!(tags["a"], form.algorithm, "{label}");
            assert_eq!(tags["d"], "example.org", "{label}");
            assert_eq!(tags["s"], SELECTOR, "{label}");
            assert_eq!(tags["c"], "relaxed/relaxed", "{label}");
            let h = &tags["h"];
            assert_eq!(
                h.split(':').filter(|n| *n == "from").count(),
                2,
                "{label}: From signed twice: {h}"
            );
            if label.ends_with("lesson") {
                assert_eq!(h, LESSON_SIGNED, "{label}");
            }
            // Every §5.4.1 header the mail carries is signed, and the oversigned ones are
            // named once more than the mail carries them.
            let head = mail
                .data
                .split("\r\n\r\n")
                .next()
                .unwrap()
                .to_ascii_lowercase();
            for name in drip::mailer::dkim::SIGNED_HEADERS {
                let name = name.to_ascii_lowercase();
                let carried = head
                    .split("\r\n")
                    .filter(|l| l.starts_with(&format!("{name}:")))
                    .count();
                let oversigned = drip::mailer::dkim::OVERSIGNED_HEADERS
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(&name));
                assert_eq!(
                    h.split(':').filter(|n| *n == name).count(),
                    carried + usize::from(oversigned),
                    "{label}: {name} is in the mail {carried} times; h={h}"
                );
            }

            let verdict = dkimpy(keys.path(), &label, &mail.data, &dns);
            assert_eq!(verdict["verified"], true, "{label}: dkimpy: {verdict}");
            assert_eq!(
                verdict["asked"][0],
                format!("{SELECTOR}._domainkey.example.org."),
                "{label}"
            );
            for name in drip::mailer::dkim::OVERSIGNED_HEADERS {
                for place in ["above", "below"] {
                    assert_eq!(
                        verdict["added"][name][place], false,
                        "{label}: an added {name} ({place} the others) must break the signature: {verdict}"
                    );
                }
            }
            assert_eq!(
                verdict["added"]["X-Added-By-A-Forwarder"],
                serde_json::json!({"above": true, "below": true}),
                "{label}: a header outside the signature changes nothing: {verdict}"
            );
        }
    }
}

#[test]
fn drip_dns_prints_the_records_and_a_short_or_unreadable_key_is_named() {
    if !needs(
        "the openssl command line",
        runs("openssl", &["version"]),
        "apt-get install openssl",
    ) {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let dir = workdir();
    let run = |key: &std::path::Path, json: bool| {
        let key = key.display().to_string();
        let mut args = vec!["dns"];
        if json {
            args.push("--json");
        }
        drip(
            dir.path(),
            &args,
            &[
                ("DRIP_MAIL__DKIM_KEY", key.as_str()),
                ("DRIP_MAIL__DKIM_SELECTOR", SELECTOR),
            ],
        )
    };

    // The text a person reads: the record to publish, the suggestions, the rules.
    let key = make_key(keys.path(), &FORMS[0]);
    let out = run(&key, false);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let json = dns_json(&key);
    let value = json["records"][0]["value"].as_str().unwrap();
    assert!(value.starts_with("v=DKIM1; k=rsa; p=MIIB"), "{value}");
    for needle in [
        &format!("DKIM  {SELECTOR}._domainkey.example.org  TXT"),
        value,
        "SPF  example.org  TXT",
        "v=spf1 mx ~all",
        "DMARC  _dmarc.example.org  TXT",
        "v=DMARC1; p=none",
        "one-click unsubscribe (RFC 8058)",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    // The zone-file form cuts the 392-character key into strings of at most 255.
    let zone = text
        .lines()
        .find(|l| l.contains("zone file:") && l.contains("_domainkey"))
        .unwrap();
    let strings: Vec<&str> = zone.split('"').skip(1).step_by(2).collect();
    assert_eq!(strings.len(), 2, "{zone}");
    assert_eq!(strings.concat(), value);
    let rules = json["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["standing"] == "met" && r["rule"].as_str().unwrap().contains("one-click"))
    );

    // A 1024-bit key works but is warned about at start-up.
    let short = keys.path().join("short.pem");
    assert!(runs(
        "openssl",
        &["genrsa", "-out", short.to_str().unwrap(), "1024"]
    ));
    let out = run(&short, false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("RSA key of 1024 bits") && stderr(&out).contains("2048"),
        "{}",
        stderr(&out)
    );

    // Keys drip cannot sign with: each error names the setting and the file.
    let ec = keys.path().join("ec.pem");
    assert!(runs(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            ec.to_str().unwrap()
        ]
    ));
    let encrypted = keys.path().join("encrypted.pem");
    assert!(runs(
        "openssl",
        &[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            encrypted.to_str().unwrap()
        ]
    ));
    let missing = keys.path().join("missing.pem");
    for (path, why) in [
        (&ec, "EC"),
        (&encrypted, "passphrase"),
        (&missing, "cannot read the file"),
    ] {
        let out = run(path, true);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("[mail] dkim_key")
                && err.contains(&path.display().to_string())
                && err.contains(why),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}
