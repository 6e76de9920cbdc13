//! A subscriber's data export: the same JSON document from the CLI, their journal link, the
//! admin page and the API; each admin or API export is written to the event log.

use axum::http::header;
use chrono::Utc;
use drip::db;
use drip::domain::Purpose;
use serde_json::Value;

use super::{answer, with_lesson_sent};
use crate::admin::{Resp, USER, admin_app, send, sign_in};
use crate::on_both_databases;
use crate::support::{Backend, TestApp};

on_both_databases!(
    the_journal_export_is_a_download_of_everything_behind_the_journal_token,
    the_admin_export_requires_sign_in_and_is_written_to_the_event_log,
    the_api_export_requires_the_bearer_token_and_an_erased_subscriber_has_none,
);

/// Subscriber "ann@example.com" with lesson 1 sent and answered (raw message kept).
async fn answered(t: &TestApp) -> i64 {
    let (sid, delivery) = with_lesson_sent(t, "ann@example.com").await;
    answer(
        &t.app,
        "ann@example.com",
        delivery,
        "I hid the letters from her.",
        Utc::now(),
    )
    .await;
    sid
}

/// What every channel's document holds.
fn check_document(doc: &Value) {
    assert_eq!(doc["format"], "drip-subscriber-data/2", "{doc:#}");
    assert_eq!(doc["courses"][0]["slug"], "rebuilding-trust", "{doc:#}");
    assert_eq!(doc["subscriber"]["email"], "ann@example.com");
    assert_eq!(doc["subscriber"]["name"], "Ann");
    assert_eq!(doc["subscriber"]["timezone"], "UTC");
    assert_eq!(doc["subscriber"]["status"], "active");
    assert_eq!(doc["enrollments"][0]["course"], "rebuilding-trust");
    let lesson = doc["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "lesson")
        .expect("the lesson mail");
    assert_eq!(lesson["lesson"], "before-we-begin");
    assert_eq!(lesson["status"], "sent");
    assert_eq!(lesson["revision"], 1);
    assert!(lesson["sent_at"].is_string());
    let reply = &doc["replies"][0];
    assert_eq!(reply["text"], "I hid the letters from her.", "decrypted");
    assert_eq!(reply["lesson"], "before-we-begin");
    assert_eq!(reply["raw_message_kept"], true);
    assert!(reply.get("raw").is_none(), "raw bytes are not exported");
    assert_eq!(doc["retention"]["raw_message_days"], 30);
    let kinds: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"confirmed") && kinds.contains(&"reply_received"),
        "{kinds:?}"
    );
}

/// The `data_exported` events of a subscriber: (actor, via).
async fn exports_logged(t: &TestApp, sid: i64) -> Vec<(String, String)> {
    db::events::for_subscriber(&t.app.db, sid)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.as_str() == "data_exported")
        .map(|e| {
            let detail: Value = serde_json::from_str(&e.detail).unwrap();
            (e.actor, detail["via"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn get(t: &TestApp, uri: &str, cookie: Option<&str>, token: Option<&str>) -> Resp {
    send(
        &t.app,
        "127.0.0.1",
        "GET",
        uri,
        cookie,
        None,
        token,
        Vec::new(),
    )
    .await
}

/// The button of a journal page: a form post with nothing in it.
async fn post(t: &TestApp, uri: &str) -> Resp {
    send(
        &t.app,
        "127.0.0.1",
        "POST",
        uri,
        None,
        Some("application/x-www-form-urlencoded"),
        None,
        Vec::new(),
    )
    .await
}

fn flip_last(token: &str) -> String {
    let (head, last) = token.split_at(token.len() - 1);
    // Tokens are read case-insensitively: flip to another hex digit, not another case.
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

async fn the_journal_export_is_a_download_of_everything_behind_the_journal_token(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let sid = answered(&t).await;
    // The mailed journal link (see web_public's journal test for how it is asked for).
    let link = t.app.journal_access_url(sid, Utc::now().timestamp() + 3600);
    let token = link.rsplit('/').next().unwrap().to_owned();
    // The journal page has a button for it.
    let page = post(&t, &format!("/journal/open/{token}")).await;
    assert_eq!(page.status, 200);
    let button = format!("<form method=\"post\" action=\"/journal/open/{token}/export\">");
    assert!(page.body.contains(&button), "{}", page.body);
    assert!(page.body.contains("Download my data (JSON)"));
    // Its address, opened by a link scanner, is a page with that one button: nothing is
    // exported and nothing written to the event log.
    for _ in 0..2 {
        let r = get(&t, &format!("/journal/open/{token}/export"), None, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains(&button), "{}", r.body);
        assert!(!r.body.contains("letters"), "{}", r.body);
        assert!(r.headers.get(header::CONTENT_DISPOSITION).is_none());
    }
    assert!(
        exports_logged(&t, sid).await.is_empty(),
        "a GET exports nothing"
    );
    let r = post(&t, &format!("/journal/open/{token}/export")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let disposition = r.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"drip-data-")
            && disposition.ends_with(".json\""),
        "{disposition}"
    );
    assert!(!disposition.contains("ann"), "no address in the file name");
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    check_document(&r.json());
    assert_eq!(
        exports_logged(&t, sid).await,
        vec![("subscriber".to_owned(), "journal".to_owned())]
    );
    // Another purpose's token for the same person, a forged one and a cut one open nothing.
    for bad in [
        t.app.signer.sign(Purpose::Reply, sid),
        t.app.signer.sign(Purpose::Unsubscribe, sid),
        t.app.signer.sign(Purpose::Preferences, sid),
        t.app.signer.sign(Purpose::Journal, sid),
        t.app
            .signer
            .sign_until(Purpose::JournalAccess, sid, Utc::now().timestamp() - 1),
        flip_last(&token),
        token[..token.len() / 2].to_owned(),
        "forged".to_owned(),
    ] {
        for r in [
            get(&t, &format!("/journal/open/{bad}/export"), None, None).await,
            post(&t, &format!("/journal/open/{bad}/export")).await,
        ] {
            assert_eq!(r.status, 404, "{bad}: {}", r.body);
            assert!(!r.body.contains("letters"));
        }
    }
    assert_eq!(
        exports_logged(&t, sid).await.len(),
        1,
        "refusals export nothing"
    );
    // Once erased, the link gives nothing either.
    drip::subscriptions::erase(&t.app, sid, "test", Utc::now())
        .await
        .unwrap();
    let r = post(&t, &format!("/journal/open/{token}/export")).await;
    assert_eq!(r.status, 404);
}

async fn the_admin_export_requires_sign_in_and_is_written_to_the_event_log(backend: Backend) {
    let t = admin_app(backend).await;
    let sid = answered(&t).await;
    let uri = format!("/admin/subscribers/{sid}/export");
    let r = get(&t, &uri, None, None).await;
    assert_eq!(r.status, 302);
    assert!(r.location().starts_with("/admin/login"));
    assert!(exports_logged(&t, sid).await.is_empty());
    let session = sign_in(&t.app).await;
    // The subscriber's page offers it.
    let page = session
        .get(&t.app, &format!("/admin/subscribers/{sid}"))
        .await;
    assert!(
        page.body.contains(&format!("href=\"{uri}\"")),
        "{}",
        page.body
    );
    let r = session.get(&t.app, &uri).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let doc = r.json();
    check_document(&doc);
    assert_eq!(
        exports_logged(&t, sid).await,
        vec![(USER.to_owned(), "admin".to_owned())],
        "who exported whose data is in the log (the event's time says when)"
    );
    // The person sees that the course's team read and exported their data, not who by name.
    let actors: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        actors.contains(&"admin") && !actors.contains(&USER),
        "{actors:?}"
    );
    // Erased: nothing left to export.
    drip::subscriptions::erase(&t.app, sid, USER, Utc::now())
        .await
        .unwrap();
    assert_eq!(session.get(&t.app, &uri).await.status, 404);
    assert_eq!(
        session
            .get(&t.app, "/admin/subscribers/999/export")
            .await
            .status,
        404
    );
}

async fn the_api_export_requires_the_bearer_token_and_an_erased_subscriber_has_none(
    backend: Backend,
) {
    let t = admin_app(backend).await;
    let sid = answered(&t).await;
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    let uri = format!("/api/v1/subscribers/{sid}/export");
    for bad in [None, Some("drip_not-a-token")] {
        let r = get(&t, &uri, None, bad).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(!r.body.contains("letters"));
    }
    // A session cookie is not an API credential.
    let session = sign_in(&t.app).await;
    assert_eq!(get(&t, &uri, Some(&session.cookie), None).await.status, 401);
    assert!(exports_logged(&t, sid).await.is_empty());
    let r = get(&t, &uri, None, Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    check_document(&r.json());
    // By address too.
    let r = get(
        &t,
        "/api/v1/subscribers/ann%40example.com/export",
        None,
        Some(&token),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        exports_logged(&t, sid).await,
        vec![
            (USER.to_owned(), "api".to_owned()),
            (USER.to_owned(), "api".to_owned())
        ]
    );
    let r = send(
        &t.app,
        "127.0.0.1",
        "DELETE",
        &format!("/api/v1/subscribers/{sid}"),
        None,
        None,
        Some(&token),
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    for key in [sid.to_string(), "ann%40example.com".to_owned()] {
        let r = get(
            &t,
            &format!("/api/v1/subscribers/{key}/export"),
            None,
            Some(&token),
        )
        .await;
        assert_eq!(r.status, 404, "{key}: {}", r.body);
        assert_eq!(r.json()["field"], "subscriber");
        assert!(!r.body.contains("letters"));
    }
}

/// The CLI: `export --email` prints the document, `export` alone still prints the CSV, and
/// after `delete` the address is unknown.
#[test]
fn drip_subscribers_export_with_an_email_prints_their_data_and_nothing_once_deleted() {
    use crate::cli::{drip, stderr, workdir};
    let dir = workdir();
    let run = |args: &[&str]| {
        let out = drip(dir.path(), args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[
        "subscribers",
        "add",
        "zoe@example.com",
        "--name",
        "Zoe",
        "--confirmed",
    ]);
    run(&["tick", "--now", "2030-01-01T10:00:00Z"]);
    std::fs::write(
        dir.path().join("reply.eml"),
        "From: Zoe <zoe@example.com>\r\nTo: reply@example.org\r\nSubject: Re: Before we begin\r\n\
         Message-ID: <zoe-1@mail.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         I broke a promise about the money.\r\n",
    )
    .unwrap();
    run(&["ingest", "reply.eml"]);
    let doc: Value = serde_json::from_str(&run(&[
        "subscribers",
        "export",
        "--email",
        "Zoe@Example.com",
    ]))
    .unwrap();
    assert_eq!(doc["subscriber"]["email"], "zoe@example.com");
    assert_eq!(
        doc["replies"][0]["text"],
        "I broke a promise about the money."
    );
    assert_eq!(doc["replies"][0]["matched_by"], "sender");
    assert_eq!(doc["deliveries"][0]["lesson"], "before-we-begin");
    assert_eq!(doc["deliveries"][0]["revision"], 1);
    assert!(
        doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "data_exported" && e["actor"] == "cli"),
        "{doc:#}"
    );
    // `show --json` is the same gathering, without the envelope.
    let shown: Value =
        serde_json::from_str(&run(&["subscribers", "show", "zoe@example.com", "--json"])).unwrap();
    assert_eq!(shown["replies"][0]["text"], doc["replies"][0]["text"]);
    assert!(shown.get("format").is_none());
    let csv = run(&["subscribers", "export"]);
    assert!(csv.starts_with("email,name,timezone,status"), "{csv}");
    assert!(csv.contains("zoe@example.com,Zoe"));
    run(&["subscribers", "delete", "zoe@example.com"]);
    let out = drip(
        dir.path(),
        &["subscribers", "export", "--email", "zoe@example.com"],
        &[],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("no subscriber \"zoe@example.com\""),
        "{}",
        stderr(&out)
    );
}
