//! The public edge, over TCP against the real server: sign-up floods held back per client
//! (with `[server] trusted_proxies` deciding who the client is) and for the whole instance,
//! the honeypot, the admin sign-in limiter keyed by the same client address, RFC 8058
//! one-click unsubscribe with nothing but the link, and a sign-up that cannot rename a
//! known person.
//!
//! Every 127.x.y.z is this machine, so one test can be several clients: 127.0.0.1 plays the
//! reverse proxy where there is one, other loopback addresses play clients that reach drip
//! directly.

use std::time::Duration;

use chrono::Utc;
use drip::config::Config;
use drip::db;
use serde_json::Value;

use crate::bad_input::{Snapshot, changes, snapshot};
use crate::on_both_databases;
use crate::support::{
    Backend, HttpReply, SmtpServer, TestApp, find_url, http_from, path_of, repo, shipped, text_part,
};

on_both_databases!(
    a_flood_from_one_client_is_refused_with_429_and_retry_after_and_writes_and_sends_nothing,
    clients_behind_a_trusted_proxy_are_counted_apart_and_an_untrusted_peer_picks_nothing,
    ipv6_clients_in_one_64_share_a_count,
    the_honeypot_is_answered_as_a_success_and_stores_and_sends_nothing,
    the_instance_cap_on_confirmations_holds_across_processes_and_refuses_everyone,
    the_refusal_page_speaks_the_course_language,
    the_admin_sign_in_limiter_counts_the_client_behind_the_proxy,
    one_click_unsubscribe_needs_no_cookie_no_token_and_answers_without_a_redirect,
    a_sign_up_for_a_known_address_changes_nothing_about_them_until_they_confirm,
);

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// A served instance with mail over SMTP and `tweak` applied.
async fn served(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::builder(backend)
        .smtp(SmtpServer::start())
        .config(tweak)
        .serve()
        .build()
        .await
}

/// A sign-up through the form, from `from`, with these extra headers.
async fn sign_up(t: &TestApp, from: &str, headers: &[(&str, &str)], email: &str) -> HttpReply {
    let mut all = vec![("Content-Type", FORM)];
    all.extend_from_slice(headers);
    let body = format!("email={}&timezone=UTC", email.replace('@', "%40"));
    http_from(from, t.base_url(), "POST", "/subscribe", &all, &body).await
}

/// The same through a JSON body.
async fn sign_up_json(t: &TestApp, from: &str, headers: &[(&str, &str)], email: &str) -> HttpReply {
    let mut all = vec![("Content-Type", JSON)];
    all.extend_from_slice(headers);
    let body = serde_json::json!({"email": email}).to_string();
    http_from(from, t.base_url(), "POST", "/subscribe", &all, &body).await
}

/// The seconds of a 429's Retry-After, checked to be a wait of at most about an hour.
fn retry_after(r: &HttpReply) -> i64 {
    assert_eq!(r.status, 429, "{}", r.body);
    let wait: i64 = r
        .header("Retry-After")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=3660).contains(&wait), "Retry-After {wait}");
    wait
}

/// Sends what is due and says who got mail.
async fn mailed(t: &TestApp, expected: usize) -> Vec<String> {
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let got = t.smtp().wait_for(expected, Duration::from_secs(30)).await;
    got.into_iter().flat_map(|m| m.to).collect()
}

async fn metric(t: &TestApp, name: &str) -> u64 {
    let r = http_from("127.0.0.1", t.base_url(), "GET", "/metrics", &[], "").await;
    assert_eq!(r.status, 200);
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing from\n{}", r.body))
        .parse()
        .unwrap()
}

fn assert_same(case: &str, before: &Snapshot, after: &Snapshot) {
    let changed = changes(before, after);
    assert!(changed.is_empty(), "{case}: changed {changed:#?}");
}

async fn a_flood_from_one_client_is_refused_with_429_and_retry_after_and_writes_and_sends_nothing(
    backend: Backend,
) {
    let t = served(backend, |c| c.public.signups_per_ip_per_hour = 3).await;
    for i in 0..3 {
        let r = sign_up(&t, "127.0.0.2", &[], &format!("ok{i}@example.com")).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let before = snapshot(&t.app).await;
    for i in 0..6 {
        let email = format!("flood{i}@example.com");
        let r = if i % 2 == 0 {
            let r = sign_up(&t, "127.0.0.2", &[], &email).await;
            assert!(r.body.contains("Please try again later"), "{}", r.body);
            assert!(r.body.contains("<html lang=\"en\">"), "{}", r.body);
            r
        } else {
            let r = sign_up_json(&t, "127.0.0.2", &[], &email).await;
            let json = r.json();
            assert!(
                json["error"]
                    .as_str()
                    .unwrap()
                    .contains("too many sign-ups"),
                "{json}"
            );
            assert_eq!(json["field"], Value::Null, "{json}");
            r
        };
        let wait = retry_after(&r);
        assert!(
            wait > 3000,
            "the first sign-up's hour has only begun: {wait}"
        );
    }
    assert_same("refused sign-ups", &before, &snapshot(&t.app).await);
    // Another client is not held back by the first one's flood.
    let r = sign_up(&t, "127.0.0.3", &[], "other@example.com").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut to = mailed(&t, 4).await;
    to.sort();
    assert_eq!(
        to,
        [
            "ok0@example.com",
            "ok1@example.com",
            "ok2@example.com",
            "other@example.com"
        ],
        "one confirmation per accepted sign-up, none for a refused one"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.smtp().messages().len(), 4, "and nothing more");
    assert_eq!(
        metric(&t, "drip_signups_refused_total{limit=\"per_client\"}").await,
        6
    );
    assert_eq!(
        metric(&t, "drip_signups_refused_total{limit=\"instance\"}").await,
        0
    );
}

async fn clients_behind_a_trusted_proxy_are_counted_apart_and_an_untrusted_peer_picks_nothing(
    backend: Backend,
) {
    let t = served(backend, |c| {
        c.public.signups_per_ip_per_hour = 2;
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let proxy = "127.0.0.1";
    let alice = [("X-Forwarded-For", "203.0.113.10")];
    let bob = [("X-Forwarded-For", "203.0.113.20")];
    assert_eq!(
        sign_up(&t, proxy, &alice, "a1@example.com").await.status,
        200
    );
    assert_eq!(
        sign_up(&t, proxy, &alice, "a2@example.com").await.status,
        200
    );
    retry_after(&sign_up(&t, proxy, &alice, "a3@example.com").await);
    // Bob comes through the same proxy: his own count.
    assert_eq!(sign_up(&t, proxy, &bob, "b1@example.com").await.status, 200);
    // Alice cannot pass for someone else by writing the header herself: the proxy appends
    // the address it saw, and that rightmost one is believed.
    let spoofed = [("X-Forwarded-For", "198.51.100.1, 203.0.113.10")];
    retry_after(&sign_up(&t, proxy, &spoofed, "a4@example.com").await);
    // A chain of two proxies of ours, in two header lines, still finds Bob.
    let chained = [
        ("X-Forwarded-For", "203.0.113.20"),
        ("X-Forwarded-For", "127.0.0.1"),
    ];
    assert_eq!(
        sign_up(&t, proxy, &chained, "b2@example.com").await.status,
        200
    );
    retry_after(&sign_up(&t, proxy, &bob, "b3@example.com").await);

    // A client reaching drip directly (not a trusted proxy) is its TCP address, whatever
    // header it sends: a new made-up address each time does not reset its count.
    let before = snapshot(&t.app).await;
    let direct = "127.0.0.9";
    for (i, claimed) in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
        .iter()
        .enumerate()
    {
        let r = sign_up(
            &t,
            direct,
            &[("X-Forwarded-For", claimed)],
            &format!("d{i}@example.com"),
        )
        .await;
        if i < 2 {
            assert_eq!(r.status, 200, "{}", r.body);
        } else {
            retry_after(&r);
        }
    }
    let after = snapshot(&t.app).await;
    let new_people = after["subscribers"].len() - before["subscribers"].len();
    assert_eq!(new_people, 2, "only the two the limit let through");
    let mut to = mailed(&t, 6).await;
    to.sort();
    assert_eq!(
        to,
        [
            "a1@example.com",
            "a2@example.com",
            "b1@example.com",
            "b2@example.com",
            "d0@example.com",
            "d1@example.com"
        ]
    );
    assert_eq!(
        metric(&t, "drip_signups_refused_total{limit=\"per_client\"}").await,
        5
    );
}

async fn ipv6_clients_in_one_64_share_a_count(backend: Backend) {
    let t = served(backend, |c| {
        c.public.signups_per_ip_per_hour = 2;
        c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let via = |ip: &'static str| [("X-Forwarded-For", ip)];
    let r = sign_up(&t, "127.0.0.1", &via("2001:db8:1:2::1"), "v1@example.com").await;
    assert_eq!(r.status, 200);
    let r = sign_up(
        &t,
        "127.0.0.1",
        &via("2001:db8:1:2:ffff:ee:dd:9"),
        "v2@example.com",
    )
    .await;
    assert_eq!(r.status, 200);
    // Any other address of the same /64 is the same client.
    retry_after(
        &sign_up(
            &t,
            "127.0.0.1",
            &via("[2001:db8:1:2::abc]:5000"),
            "v3@example.com",
        )
        .await,
    );
    retry_after(
        &sign_up_json(
            &t,
            "127.0.0.1",
            &via("2001:db8:1:2:1:2:3:4"),
            "v4@example.com",
        )
        .await,
    );
    // The next /64 is another.
    let r = sign_up(&t, "127.0.0.1", &via("2001:db8:1:3::1"), "v5@example.com").await;
    assert_eq!(r.status, 200);
    for (email, stored) in [
        ("v1@example.com", true),
        ("v3@example.com", false),
        ("v4@example.com", false),
        ("v5@example.com", true),
    ] {
        let found = db::subscribers::by_email(&t.app.db, email).await.unwrap();
        assert_eq!(found.is_some(), stored, "{email}");
    }
}

async fn the_honeypot_is_answered_as_a_success_and_stores_and_sends_nothing(backend: Backend) {
    let t = served(backend, |_| {}).await;
    // The form carries the field: labelled for a screen reader, hidden by CSS, not a hidden
    // input, skipped by the tab key and by autofill.
    let page = http_from(
        "127.0.0.1",
        t.base_url(),
        "GET",
        "/courses/rebuilding-trust",
        &[],
        "",
    )
    .await
    .body;
    let at = page
        .find("<div class=\"leave-empty\">")
        .expect("the honeypot");
    let trap = &page[at..at + page[at..].find("</div>").unwrap()];
    assert!(
        trap.contains("<label for=\"website\">Leave this field empty</label>"),
        "{trap}"
    );
    for attribute in [
        "name=\"website\"",
        "type=\"text\"",
        "autocomplete=\"off\"",
        "tabindex=\"-1\"",
    ] {
        assert!(trap.contains(attribute), "{attribute} missing from {trap}");
    }
    assert!(
        page.contains(".leave-empty { position: absolute; left: -10000px"),
        "hidden by CSS"
    );

    let real = sign_up(&t, "127.0.0.1", &[], "person@example.com").await;
    assert_eq!(real.status, 200);
    let before = snapshot(&t.app).await;
    let body = "email=bot%40example.com&timezone=UTC&course=rebuilding-trust&website=https%3A%2F%2Fspam.example";
    let bot = http_from(
        "127.0.0.1",
        t.base_url(),
        "POST",
        "/subscribe",
        &[("Content-Type", FORM)],
        body,
    )
    .await;
    assert_eq!(bot.status, real.status);
    assert_eq!(bot.body, real.body, "the same page as a real sign-up's");
    let bot_json = http_from(
        "127.0.0.1",
        t.base_url(),
        "POST",
        "/subscribe",
        &[("Content-Type", JSON)],
        r#"{"email": "bot2@example.com", "website": "x"}"#,
    )
    .await;
    let real_json = sign_up_json(&t, "127.0.0.1", &[], "person2@example.com").await;
    assert_eq!(
        (bot_json.status, &bot_json.body),
        (real_json.status, &real_json.body)
    );
    let after = snapshot(&t.app).await;
    let mut changed: Vec<String> = changes(&before, &after).into_keys().collect();
    changed.sort();
    // Only person2's sign-up wrote anything.
    assert!(
        db::subscribers::by_email(&t.app.db, "bot@example.com")
            .await
            .unwrap()
            .is_none()
            && db::subscribers::by_email(&t.app.db, "bot2@example.com")
                .await
                .unwrap()
                .is_none(),
        "the honeypot stores nobody"
    );
    assert!(
        changed
            .iter()
            .all(|table| ["subscribers", "deliveries", "events"].contains(&table.as_str())),
        "{changed:?}"
    );
    let mut to = mailed(&t, 2).await;
    to.sort();
    assert_eq!(to, ["person2@example.com", "person@example.com"]);
    assert_eq!(metric(&t, "drip_signups_honeypot_total").await, 2);
}

async fn the_instance_cap_on_confirmations_holds_across_processes_and_refuses_everyone(
    backend: Backend,
) {
    let t = served(backend, |c| {
        c.public.confirmations_per_hour = 3;
        c.public.signups_per_ip_per_hour = 0;
    })
    .await;
    // A second `drip serve` on the same database, with its own memory.
    let other = t.another_process(|_| {});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(drip::server::web(other.clone(), listener));
    let at = |url: &str, from: &str, email: &str| {
        let (url, from, email) = (url.to_owned(), from.to_owned(), email.to_owned());
        async move {
            http_from(
                &from,
                &url,
                "POST",
                "/subscribe",
                &[("Content-Type", FORM)],
                &format!("email={}&timezone=UTC", email.replace('@', "%40")),
            )
            .await
        }
    };
    assert_eq!(
        at(t.base_url(), "127.0.0.2", "c1@example.com").await.status,
        200
    );
    assert_eq!(
        at(&other_url, "127.0.0.3", "c2@example.com").await.status,
        200
    );
    assert_eq!(
        at(&other_url, "127.0.0.4", "c3@example.com").await.status,
        200
    );
    let before = snapshot(&t.app).await;
    // The fourth, on either process, from anyone: refused, known address or not.
    let r = at(&other_url, "127.0.0.5", "c4@example.com").await;
    let wait = retry_after(&r);
    assert!(
        wait > 3000,
        "until the first of the hour's confirmations is an hour old: {wait}"
    );
    assert!(r.body.contains("Sign-ups are paused"), "{}", r.body);
    retry_after(&at(t.base_url(), "127.0.0.6", "c5@example.com").await);
    let known = at(t.base_url(), "127.0.0.7", "c1@example.com").await;
    retry_after(&known);
    let json = http_from(
        "127.0.0.8",
        t.base_url(),
        "POST",
        "/subscribe",
        &[("Content-Type", JSON)],
        r#"{"email": "c6@example.com"}"#,
    )
    .await;
    retry_after(&json);
    assert!(json.json()["error"].as_str().unwrap().contains("paused"));
    assert_same("sign-ups over the cap", &before, &snapshot(&t.app).await);
    let mut to = mailed(&t, 3).await;
    to.sort();
    assert_eq!(to, ["c1@example.com", "c2@example.com", "c3@example.com"]);
    // Each process counts the refusals it made.
    assert_eq!(
        metric(&t, "drip_signups_refused_total{limit=\"instance\"}").await,
        3
    );
    assert_eq!(other.signups.figures().refused_instance, 1);
    // An hour later the oldest no longer counts (moved back rather than waited for).
    sqlx::query("UPDATE deliveries SET created_at = created_at - 3600 WHERE kind = 'confirm'")
        .execute(t.app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        at(&other_url, "127.0.0.5", "c4@example.com").await.status,
        200
    );
    assert!(
        db::subscribers::by_email(&t.app.db, "c4@example.com")
            .await
            .unwrap()
            .is_some()
    );
}

async fn the_refusal_page_speaks_the_course_language(backend: Backend) {
    let t = TestApp::builder(backend)
        .config(|c| {
            c.course.lessons_dir = repo("tests/fixtures/lessons");
            c.course.default = "petit-cours".into();
            c.public.signups_per_ip_per_hour = 1;
        })
        .serve()
        .build()
        .await;
    let ok = sign_up(&t, "127.0.0.2", &[], "ana@exemple.fr").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let r = sign_up(&t, "127.0.0.2", &[], "bea@exemple.fr").await;
    let wait = retry_after(&r);
    assert!(r.body.contains("<html lang=\"fr\">"), "{}", r.body);
    assert!(
        r.body.contains("Merci de réessayer plus tard"),
        "{}",
        r.body
    );
    let minutes = (wait + 59) / 60;
    assert!(
        r.body
            .contains(&format!("Merci de réessayer dans {minutes} minutes.")),
        "{}",
        r.body
    );
    assert!(!r.body.contains("Please"), "{}", r.body);
    // And the form's honeypot label.
    let page = http_from(
        "127.0.0.1",
        t.base_url(),
        "GET",
        "/courses/petit-cours",
        &[],
        "",
    )
    .await;
    assert!(page.body.contains("Laissez ce champ vide"), "{}", page.body);
}

/// The sign-in form's cookie and token, fetched through the proxy for `client`.
async fn login_form(t: &TestApp, from: &str, client: &str) -> (String, String) {
    let page = http_from(
        from,
        t.base_url(),
        "GET",
        "/admin/login",
        &[("X-Forwarded-For", client)],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
    let cookie = page
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("drip_login="))
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .expect("the sign-in cookie");
    let token = crate::admin::field(&page.body, "token").expect("the token field");
    (cookie, token)
}

async fn sign_in(t: &TestApp, from: &str, client: &str, password: &str) -> HttpReply {
    let (cookie, token) = login_form(t, from, client).await;
    let body = String::from_utf8(crate::admin::form(&[
        ("username", crate::admin::USER),
        ("password", password),
        ("token", &token),
        ("next", ""),
    ]))
    .unwrap();
    http_from(
        from,
        t.base_url(),
        "POST",
        "/admin/login",
        &[
            ("Content-Type", FORM),
            ("Cookie", &cookie),
            ("X-Forwarded-For", client),
        ],
        &body,
    )
    .await
}

async fn the_admin_sign_in_limiter_counts_the_client_behind_the_proxy(backend: Backend) {
    let t = served(backend, |c| {
        c.server.trusted_proxies = vec!["127.0.0.1".into()]
    })
    .await;
    crate::admin::add_test_admin(&t.app).await;
    // The sign-in limiter is one per process, shared by every test in this binary: addresses
    // of this run only.
    let n: u8 = rand::random::<u8>() % 200;
    let mallory = format!("198.18.{n}.1");
    let admin = format!("198.18.{n}.2");
    let direct = format!("127.1.{n}.9");
    for _ in 0..drip::auth::MAX_FAILURES {
        let r = sign_in(&t, "127.0.0.1", &mallory, "wrong password").await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = sign_in(&t, "127.0.0.1", &mallory, "wrong password").await;
    retry_after(&r);
    assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);
    let r = sign_in(&t, "127.0.0.1", &mallory, crate::admin::PASSWORD).await;
    assert_eq!(r.status, 429, "even the right password waits");
    // The admin, behind the same proxy, is another client: not locked out by Mallory.
    let r = sign_in(&t, "127.0.0.1", &admin, crate::admin::PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    // A direct peer naming Mallory's address is counted as itself.
    let r = sign_in(&t, &direct, &mallory, "wrong password").await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = sign_in(&t, &direct, &admin, crate::admin::PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

async fn one_click_unsubscribe_needs_no_cookie_no_token_and_answers_without_a_redirect(
    backend: Backend,
) {
    let t = served(backend, |_| {}).await;
    let new = drip::subscriptions::NewSubscriber::parse(
        "oc@example.com",
        "",
        "UTC",
        drip::domain::Timezone::UTC,
    )
    .unwrap();
    let now = Utc::now();
    let id = drip::subscriptions::add(&t.app, &shipped(&t.app).await, &new, true, "test", now)
        .await
        .unwrap();
    drip::outbox::tick(&t.app, now).await.unwrap();
    let lesson = t
        .smtp()
        .wait_for(1, Duration::from_secs(30))
        .await
        .into_iter()
        .find(|m| m.header("X-Drip-Lesson").is_some())
        .expect("the first lesson");
    assert_eq!(
        lesson.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let header = lesson.header("List-Unsubscribe").unwrap();
    let https = header.trim_start_matches('<').split('>').next().unwrap();
    assert!(https.starts_with(t.base_url()), "{https}");
    // What a mailbox provider sends: the link, that body, nothing else.
    let r = http_from(
        "127.0.0.2",
        t.base_url(),
        "POST",
        &path_of(https),
        &[("Content-Type", FORM)],
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("Location").is_none(), "no redirect");
    let e = &db::enrollments::for_subscriber(&t.app.db, id)
        .await
        .unwrap()[0];
    assert_eq!(e.status.as_str(), "stopped");
}

async fn a_sign_up_for_a_known_address_changes_nothing_about_them_until_they_confirm(
    backend: Backend,
) {
    let t = served(backend, |_| {}).await;
    // Ann takes the first course, in Paris.
    let ann = drip::subscriptions::NewSubscriber::parse(
        "ann@example.com",
        "Ann",
        "Europe/Paris",
        drip::domain::Timezone::UTC,
    )
    .unwrap();
    let id = drip::subscriptions::add(
        &t.app,
        &shipped(&t.app).await,
        &ann,
        true,
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    let due_before = db::enrollments::for_subscriber(&t.app.db, id)
        .await
        .unwrap()[0]
        .next_due_at;
    // A stranger signs her up for the other course with another name and time zone; then for
    // the same course again; by the form and by JSON.
    let form = "email=ann%40example.com&name=Mallory&timezone=Pacific%2FAuckland&course=write-your-first-course";
    let r = http_from(
        "127.0.0.2",
        t.base_url(),
        "POST",
        "/subscribe",
        &[("Content-Type", FORM)],
        form,
    )
    .await;
    assert_eq!(r.status, 200);
    let json = r#"{"email": "ann@example.com", "name": "Eve", "timezone": "Asia/Tokyo", "course": "rebuilding-trust"}"#;
    let r = http_from(
        "127.0.0.2",
        t.base_url(),
        "POST",
        "/subscribe",
        &[("Content-Type", JSON)],
        json,
    )
    .await;
    assert_eq!(r.status, 200);
    let unchanged = |what: &str, s: &db::subscribers::SubscriberRow| {
        assert_eq!(
            (s.name.as_str(), s.timezone.name()),
            ("Ann", "Europe/Paris"),
            "{what}"
        );
    };
    let s = db::subscribers::by_id(&t.app.db, id)
        .await
        .unwrap()
        .unwrap();
    unchanged("after the sign-ups", &s);
    let e = db::enrollments::for_subscriber(&t.app.db, id)
        .await
        .unwrap();
    assert_eq!(e.len(), 1, "no second course yet");
    assert_eq!(e[0].next_due_at, due_before, "her lessons keep their time");

    // The confirmation mail reaches Ann; her mail scanner opens the link, twice.
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let mails = t.smtp().wait_for(2, Duration::from_secs(30)).await;
    let confirm = mails
        .iter()
        .find(|m| {
            m.header("Subject")
                .is_some_and(|s| s.contains("Write Your First Course"))
                && m.to == ["ann@example.com"]
        })
        .unwrap_or_else(|| {
            panic!(
                "the second course's confirmation: {:?}",
                mails
                    .iter()
                    .map(|m| m.header("Subject"))
                    .collect::<Vec<_>>()
            )
        });
    let link = find_url(&text_part(&confirm.data), t.base_url()).expect("the confirmation link");
    for _ in 0..2 {
        let r = http_from("127.0.0.3", t.base_url(), "GET", &path_of(&link), &[], "").await;
        assert_eq!(r.status, 200);
    }
    unchanged(
        "after two GETs of the link",
        &db::subscribers::by_id(&t.app.db, id)
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, id)
            .await
            .unwrap()
            .len(),
        1
    );
    // Only her press of the button applies what that sign-up asked for.
    let r = http_from(
        "127.0.0.3",
        t.base_url(),
        "POST",
        &path_of(&link),
        &[("Content-Type", FORM)],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = db::subscribers::by_id(&t.app.db, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.name.as_str(), s.timezone.name()),
        ("Mallory", "Pacific/Auckland")
    );
    assert_eq!(
        db::enrollments::for_subscriber(&t.app.db, id)
            .await
            .unwrap()
            .len(),
        2
    );
}
