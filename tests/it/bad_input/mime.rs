//! Hostile inbound mail through POST /inbound/email (the pipeline every channel shares): each
//! message is answered within seconds, without a panic, and is either refused with a reason
//! (nothing stored) or stored as a message that matches nobody. None is ever attributed to
//! the subscriber whose lesson is in the database, and none acts on the subscription.
//!
//! (Mail is not authenticated: a message whose From is a subscriber's address is theirs by
//! the design's last matching rule, and so is a bounce whose Final-Recipient is; these cases
//! come from an address that is nobody's, so any match would be a forged token or id.)

use std::time::Duration;

use chrono::Utc;
use drip::domain::{Purpose, Timezone};
use drip::subscriptions::{self, NewSubscriber};

use super::{changes, snapshot};
use crate::admin::send;
use crate::on_both_databases;
use crate::support::{Backend, TestApp};

const TOKEN: &str = "a-long-webhook-token-for-bad-input";
const LIMIT: usize = 4 * 1024 * 1024;

enum Expect {
    /// Refused with this status, the error saying this; nothing stored.
    Refused(u16, &'static str),
    /// Stored as one message of this kind that matches no subscriber.
    Unmatched(&'static str),
}

struct Mail {
    case: &'static str,
    raw: Vec<u8>,
    expect: Expect,
}

/// Headers of a reply from a stranger to a forged reply address of the delivery.
fn head(forged_to: &str, n: usize) -> String {
    format!(
        "From: Mallory <mallory@evil.example>\r\nTo: {forged_to}\r\nSubject: Re: Lesson 1\r\nMessage-ID: <bad-{n}@evil.example>\r\nMIME-Version: 1.0\r\n"
    )
}

fn nested_multipart(depth: usize) -> String {
    let mut raw = String::new();
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ndeep down\r\n");
    for i in (0..depth).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    raw
}

/// message/rfc822 parts inside message/rfc822 parts, `width` of them at each of `depth`
/// levels but only one of them going deeper (so the size stays linear).
fn nested_messages(depth: usize, width: usize) -> String {
    let mut inner = String::from("Subject: innermost\r\nContent-Type: text/plain\r\n\r\nSTOP\r\n");
    for level in 0..depth {
        let mut part = format!(
            "Subject: level {level}\r\nContent-Type: multipart/mixed; boundary=l{level}\r\n\r\n"
        );
        for _ in 0..width {
            part.push_str(&format!(
                "--l{level}\r\nContent-Type: message/rfc822\r\n\r\nSubject: leaf\r\n\r\nPAUSE\r\n"
            ));
        }
        part.push_str(&format!(
            "--l{level}\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--l{level}--\r\n"
        ));
        inner = part;
    }
    inner
}

/// A message/rfc822 part in base64 whose content is another such part, `depth` times.
fn encoded_messages(depth: usize) -> String {
    use base64::Engine;
    let mut inner = String::from("Subject: core\r\nContent-Type: text/plain\r\n\r\nPAUSE\r\n");
    for level in 0..depth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(inner.as_bytes());
        inner = format!(
            "Subject: wrap {level}\r\nContent-Type: multipart/mixed; boundary=e{level}\r\n\r\n--e{level}\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--e{level}--\r\n"
        );
    }
    inner
}

fn cases(forged_to: &str, foreign_to: &str, forged_id: &str) -> Vec<Mail> {
    use Expect::*;
    let mut n = 0;
    let mut h = || {
        n += 1;
        head(forged_to, n)
    };
    let mail = |case, raw: String, expect| Mail {
        case,
        raw: raw.into_bytes(),
        expect,
    };
    let text = "Content-Type: text/plain; charset=utf-8\r\n\r\n";
    let mut many_headers = h();
    for i in 0..100_000 {
        many_headers.push_str(&format!("X-Junk-{i}: v\r\n"));
    }
    many_headers.push_str("\r\nhello\r\n");
    let mut many_to = format!(
        "From: mallory@evil.example\r\nMessage-ID: <bad-to@evil.example>\r\nTo: {forged_to}"
    );
    for i in 0..60_000 {
        many_to.push_str(&format!(",\r\n r{i}@example.org"));
    }
    many_to.push_str("\r\n\r\nhello\r\n");
    let mut many_refs = h() + "References:";
    for i in 0..60_000 {
        many_refs.push_str(&format!(" <drip.{i}-00@example.org>\r\n"));
    }
    many_refs.push_str("\r\nhello\r\n");
    let mut junk = Vec::new();
    for i in 0..20_000u32 {
        junk.extend((i.wrapping_mul(2_654_435_761)).to_le_bytes());
    }
    let mut raw_junk = mail("binary junk", String::new(), Refused(422, "message:"));
    raw_junk.raw = junk;
    let mut nuls = mail(
        "NUL bytes in headers and body",
        String::new(),
        Unmatched("reply"),
    );
    nuls.raw = format!("{}X-Nul: a\0b\r\n{text}an\0swer\r\n", h()).into_bytes();
    let mut latin1 = mail(
        "charset lie: UTF-8 declared, Latin-1 sent",
        String::new(),
        Unmatched("reply"),
    );
    latin1.raw = format!("{}{text}", h()).into_bytes();
    latin1.raw.extend(b"Caf\xe9 cr\xe8me, d\xe9j\xe0 vu\r\n");
    vec![
        mail("empty", String::new(), Refused(422, "the message is empty")),
        mail(
            "whitespace only",
            "\r\n \r\n".into(),
            Refused(422, "the message is empty"),
        ),
        raw_junk,
        mail(
            "no header at all",
            "just some words\r\n".into(),
            Refused(422, "not an email message"),
        ),
        mail(
            "larger than inbound.max_message_bytes",
            format!("{}{text}{}", h(), "x".repeat(LIMIT)),
            Refused(413, "length limit exceeded"),
        ),
        mail(
            "cut in the middle of a header",
            format!("{}Content-Ty", h()),
            Unmatched("reply"),
        ),
        mail(
            "cut in the middle of a multipart",
            format!(
                "{}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhalf an ans",
                h()
            ),
            Unmatched("reply"),
        ),
        mail(
            "a 2 MB header line",
            format!(
                "{}X-Long: {}\r\n{text}hi\r\n",
                h(),
                "x".repeat(2 * 1024 * 1024)
            ),
            Unmatched("reply"),
        ),
        mail(
            "a 2 MB subject",
            format!(
                "{}Subject: {}\r\n{text}hi\r\n",
                h().replace("Subject: Re: Lesson 1\r\n", ""),
                "s".repeat(2 * 1024 * 1024)
            ),
            Unmatched("reply"),
        ),
        mail("100,000 header fields", many_headers, Unmatched("reply")),
        mail("60,000 recipients", many_to, Unmatched("reply")),
        mail("60,000 References", many_refs, Unmatched("reply")),
        mail(
            "1,000-deep nested multipart",
            format!("{}{}", h(), nested_multipart(1_000)),
            Unmatched("reply"),
        ),
        mail(
            "20,000-deep nested multipart",
            format!("{}{}", h(), nested_multipart(20_000)),
            Unmatched("reply"),
        ),
        mail(
            "bad base64 body",
            format!(
                "{}Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!*not base64*===\r\nQUJD\r\n",
                h()
            ),
            Unmatched("reply"),
        ),
        mail(
            "nested message/rfc822, 300 deep and 50 wide",
            format!("{}{}", h(), nested_messages(300, 50)),
            Unmatched("reply"),
        ),
        mail(
            "base64 message/rfc822 nested 12 deep",
            format!("{}{}", h(), encoded_messages(12)),
            Unmatched("reply"),
        ),
        mail(
            "20,000 parts",
            {
                let mut m = format!("{}Content-Type: multipart/mixed; boundary=p\r\n\r\n", h());
                for _ in 0..20_000 {
                    m.push_str("--p\r\nContent-Type: text/plain\r\n\r\nPAUSE\r\n");
                }
                m + "--p--\r\n"
            },
            Unmatched("reply"),
        ),
        nuls,
        latin1,
        mail(
            "unknown charset",
            format!(
                "{}Content-Type: text/plain; charset=x-klingon\r\n\r\nqapla'\r\n",
                h()
            ),
            Unmatched("reply"),
        ),
        mail(
            "UTF-16 with an odd byte count",
            format!(
                "{}Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n//5BAEIA/w==\r\n",
                h()
            ),
            Unmatched("reply"),
        ),
        mail(
            "a 3 MB line of text",
            format!("{}{text}{}\r\n", h(), "word ".repeat(600_000)),
            Unmatched("reply"),
        ),
        mail(
            "100,000 quoted lines",
            format!(
                "{}{text}answer\r\n{}",
                h(),
                "> quoted line\r\n".repeat(100_000)
            ),
            Unmatched("reply"),
        ),
        mail(
            "HTML nested 100,000 deep",
            format!(
                "{}Content-Type: text/html\r\n\r\n{}hi",
                h(),
                "<blockquote><div>".repeat(100_000)
            ),
            Unmatched("reply"),
        ),
        mail(
            "HTML comment and quote never closed",
            format!(
                "{}Content-Type: text/html\r\n\r\n{}",
                h(),
                "<!-- <a href=\"x".repeat(50_000)
            ),
            Unmatched("reply"),
        ),
        mail(
            "STOP from a stranger to a forged reply address",
            format!("{}{text}STOP\r\n", h()),
            Unmatched("reply"),
        ),
        mail(
            "PAUSE to a reply address with an unsubscribe token",
            format!("{}{text}PAUSE\r\n", h().replace(forged_to, foreign_to)),
            Unmatched("reply"),
        ),
        mail(
            "In-Reply-To a forged Message-ID",
            format!("{}In-Reply-To: <{forged_id}>\r\n{text}STOP\r\n", h()),
            Unmatched("reply"),
        ),
        mail(
            "a bounce for a forged Message-ID",
            format!(
                "{}Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.evil.example\r\n\r\nFinal-Recipient: rfc822; someone@evil.example\r\nAction: failed\r\nStatus: 5.1.1\r\n--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{forged_id}>\r\n--r--\r\n",
                h().replace(
                    "From: Mallory <mallory@evil.example>",
                    "From: MAILER-DAEMON@evil.example"
                )
            ),
            Unmatched("bounce"),
        ),
    ]
}

/// `local+token@domain` or `drip.token@domain` with the token's last hex digit changed: the
/// right shape, the wrong MAC.
fn forge(address: &str) -> String {
    let at = address.find('@').unwrap();
    let last = &address[at - 1..at];
    let other = if last == "0" { "1" } else { "0" };
    format!("{}{other}{}", &address[..at - 1], &address[at..])
}

on_both_databases!(hostile_mime_is_answered_quickly_and_never_attributed_to_a_subscriber,);

async fn hostile_mime_is_answered_quickly_and_never_attributed_to_a_subscriber(backend: Backend) {
    let t = TestApp::build(backend, None, |c| {
        c.inbound.token = TOKEN.into();
        c.inbound.max_message_bytes = LIMIT;
    })
    .await;
    // A subscriber with lesson 1 sent: what a hostile message would like to be matched to.
    let now = Utc::now();
    let s = NewSubscriber::parse("ann@example.com", "Ann", "UTC", Timezone::UTC).unwrap();
    let id = subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &s,
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    drip::outbox::tick(&t.app, now).await.unwrap();
    let delivery = drip::db::deliveries::for_subscriber(&t.app.db, id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.kind.as_str() == "lesson")
        .expect("lesson 1 sent");
    let real = t.app.reply_address(delivery.id);
    let forged_to = forge(&real);
    let foreign_to = real.replace(
        &t.app.signer.sign(Purpose::Reply, delivery.id),
        &t.app.signer.sign(Purpose::Unsubscribe, delivery.id),
    );
    let forged_id = forge(&t.app.message_id(delivery.id));
    let sent = t.outbox().len();
    for m in cases(&forged_to, &foreign_to, &forged_id) {
        let before = snapshot(&t.app).await;
        let app = t.app.clone();
        let task = tokio::spawn(async move {
            send(
                &app,
                "127.0.0.1",
                "POST",
                "/inbound/email",
                None,
                Some("message/rfc822"),
                Some(TOKEN),
                m.raw,
            )
            .await
        });
        // A guard against a hang (a parser that loops or backtracks without end), not a
        // timing: a debug build on a loaded two-core machine takes seconds on the 3 MB line.
        let r = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap_or_else(|_| panic!("{}: no answer within 30 s", m.case))
            .unwrap_or_else(|e| panic!("{}: the request panicked: {e}", m.case));
        let after = snapshot(&t.app).await;
        let changed = changes(&before, &after);
        match m.expect {
            Expect::Refused(status, says) => {
                assert_eq!(r.status, status, "{}: {}", m.case, super::shown(&r.body));
                assert!(
                    r.body.contains(says),
                    "{}: {}",
                    m.case,
                    super::shown(&r.body)
                );
                assert!(changed.is_empty(), "{}: {changed:#?}", m.case);
            }
            Expect::Unmatched(kind) => {
                assert_eq!(r.status, 200, "{}: {}", m.case, super::shown(&r.body));
                let o = r.json();
                // A command in the text (STOP, PAUSE) is recorded but acts on nobody: the
                // subscriber's rows are among those checked unchanged below.
                assert_eq!(
                    (o["kind"].as_str(), o["match"].is_null()),
                    (Some(kind), true),
                    "{}: {}",
                    m.case,
                    super::shown(&r.body)
                );
                let tables: Vec<&str> = changed.keys().map(String::as_str).collect();
                assert_eq!(tables, ["events", "replies"], "{}: {changed:#?}", m.case);
                let stored: Vec<(Option<i64>, Option<i64>, String)> = sqlx::query_as(
                    "SELECT subscriber_id, delivery_id, kind FROM replies ORDER BY id DESC LIMIT 1",
                )
                .fetch_all(t.app.db.pool())
                .await
                .unwrap();
                assert_eq!(stored, [(None, None, kind.to_owned())], "{}", m.case);
            }
        }
        assert_eq!(t.outbox().len(), sent, "{}: a mail was written", m.case);
    }
}
