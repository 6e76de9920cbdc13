//! Link tokens on every route that takes one: forged, altered, truncated, padded, from another
//! purpose or secret, for nobody, or junk. Each is a 404 page saying the link is not valid
//! (400 for a path that is not UTF-8), and changes nothing: in particular the one-click
//! unsubscribe POST unsubscribes nobody.

use chrono::Utc;
use drip::domain::{Purpose, Signer, Timezone};
use drip::subscriptions::{self, NewSubscriber};

use super::{assert_unchanged, snapshot};
use crate::admin::send;
use crate::on_both_databases;
use crate::support::{Backend, TestApp};

/// A route that takes a token, the purpose its tokens are made for, and the body to post.
struct Route {
    method: &'static str,
    path: &'static str,
    purpose: Purpose,
    body: Option<&'static str>,
}

/// The journal's mailed access links (`/journal/open/…`, expiring tokens) belong to the
/// privacy work and are tested in tests/it/privacy.rs.
#[rustfmt::skip]
const ROUTES: &[Route] = &[
    Route { method: "GET", path: "/confirm/{}", purpose: Purpose::Confirm, body: None },
    Route { method: "GET", path: "/unsubscribe/{}", purpose: Purpose::Unsubscribe, body: None },
    Route { method: "POST", path: "/unsubscribe/{}", purpose: Purpose::Unsubscribe, body: Some("List-Unsubscribe=One-Click") },
    Route { method: "GET", path: "/preferences/{}", purpose: Purpose::Preferences, body: None },
    Route { method: "POST", path: "/preferences/{}", purpose: Purpose::Preferences, body: Some("action=unsubscribe") },
    Route { method: "POST", path: "/preferences/{}", purpose: Purpose::Preferences, body: Some("action=timezone&timezone=Asia%2FTokyo") },
    Route { method: "GET", path: "/journal/{}", purpose: Purpose::Journal, body: None },
    // Would mail the subscriber a journal link: a bad token must queue nothing.
    Route { method: "POST", path: "/journal/{}", purpose: Purpose::Journal, body: Some("") },
];

/// Another purpose than the route's: the one a link in the same mail carries.
fn other(p: Purpose) -> Purpose {
    match p {
        Purpose::Confirm => Purpose::Unsubscribe,
        Purpose::Unsubscribe => Purpose::Confirm,
        Purpose::Preferences => Purpose::Journal,
        Purpose::Journal => Purpose::Reply,
        _ => Purpose::Preferences,
    }
}

/// A token case: its name and the path segment it puts in the route, from the valid token.
type Make = fn(&TestApp, Purpose, i64, &str) -> String;

const TOKENS: &[(&str, Make, u16)] = &[
    (
        "forged: right shape, zero MAC",
        |_, _, _, v| format!("{}-{}", v.split('-').next().unwrap(), "0".repeat(32)),
        404,
    ),
    (
        "altered: last digit changed",
        |_, _, _, v| {
            let last = if v.ends_with('0') { '1' } else { '0' };
            format!("{}{last}", &v[..v.len() - 1])
        },
        404,
    ),
    (
        "truncated by one character",
        |_, _, _, v| v[..v.len() - 1].to_owned(),
        404,
    ),
    (
        "truncated to half",
        |_, _, _, v| v[..v.len() / 2].to_owned(),
        404,
    ),
    (
        "the id alone",
        |_, _, _, v| v.split('-').next().unwrap().to_owned(),
        404,
    ),
    ("an extra character", |_, _, _, v| format!("{v}0"), 404),
    ("a zero padded id", |_, _, _, v| format!("0{v}"), 404),
    (
        "an escaped slash and more",
        |_, _, _, v| format!("{v}%2Fadmin"),
        404,
    ),
    (
        "a CR/LF and a header",
        |_, _, _, v| format!("{v}%0D%0ASet-Cookie:%20x=1"),
        404,
    ),
    ("a NUL", |_, _, _, v| format!("{v}%00"), 404),
    (
        "from another purpose",
        |t, p, id, _| t.app.signer.sign(other(p), id),
        404,
    ),
    (
        "a Message-ID token",
        |t, _, id, _| t.app.signer.sign(Purpose::MessageId, id),
        404,
    ),
    (
        "made with another secret",
        |_, p, id, _| Signer::new("not this instance's secret key at all").sign(p, id),
        404,
    ),
    (
        "for a subscriber that does not exist",
        |t, p, _, _| t.app.signer.sign(p, 999_999),
        404,
    ),
    ("id zero", |_, _, _, _| format!("0-{}", "0".repeat(32)), 404),
    (
        "an id past i64",
        |_, _, _, v| format!("zzzzzzzzzzzzz-{}", v.split('-').nth(1).unwrap()),
        404,
    ),
    (
        "non-ASCII letters",
        |_, _, _, v| format!("%C3%A9{}", &v[2..]),
        404,
    ),
    ("10,000 characters", |_, _, _, _| "a".repeat(10_000), 404),
    (
        "bytes that are not UTF-8",
        |_, _, _, _| "%FF%FE%FD".into(),
        400,
    ),
    ("empty", |_, _, _, _| String::new(), 404),
];

on_both_databases!(a_bad_link_token_is_a_404_page_and_changes_nothing,);

async fn a_bad_link_token_is_a_404_page_and_changes_nothing(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let now = Utc::now();
    let add = |email: &'static str, confirmed: bool| {
        let app = t.app.clone();
        async move {
            let s = NewSubscriber::parse(email, "", "UTC", Timezone::UTC).unwrap();
            subscriptions::add(
                &app,
                &crate::support::shipped(&app).await,
                &s,
                confirmed,
                "test",
                now,
            )
            .await
            .unwrap()
        }
    };
    let active = add("active@example.com", true).await;
    let pending = add("pending@example.com", false).await;
    let before = snapshot(&t.app).await;
    for (case, make, status) in TOKENS {
        for route in ROUTES {
            // A pending subscriber's token for the confirm link, so that a token that slips
            // through would show as a confirmation.
            let id = if route.purpose == Purpose::Confirm {
                pending
            } else {
                active
            };
            let valid = t.app.signer.sign(route.purpose, id);
            let token = make(&t, route.purpose, id, &valid);
            let uri = route.path.replace("{}", &token);
            let r = send(
                &t.app,
                "127.0.0.1",
                route.method,
                &uri,
                None,
                route.body.map(|_| "application/x-www-form-urlencoded"),
                None,
                route.body.unwrap_or("").as_bytes().to_vec(),
            )
            .await;
            let label = format!("{case}: {} {}", route.method, super::shown(&uri));
            assert_eq!(r.status, *status, "{label}: {}", super::shown(&r.body));
            let clear = if *status == 404 {
                "Link not found"
            } else {
                "Invalid URL"
            };
            assert!(r.body.contains(clear), "{label}: {}", super::shown(&r.body));
            assert!(
                r.headers.get("set-cookie").is_none(),
                "{label}: a cookie was set"
            );
            assert_unchanged(&t, &label, &before, &snapshot(&t.app).await);
        }
    }
    // The valid tokens still work: the refusals above were about the tokens, not the routes.
    let path = format!(
        "/unsubscribe/{}",
        t.app.signer.sign(Purpose::Unsubscribe, active)
    );
    assert_eq!(
        send(
            &t.app,
            "127.0.0.1",
            "GET",
            &path,
            None,
            None,
            None,
            Vec::new()
        )
        .await
        .status,
        200
    );
}

on_both_databases!(the_preferences_form_refuses_a_bad_time_zone_or_action,);

/// A valid link with a bad value in the form: 422 naming the field, nothing changed.
async fn the_preferences_form_refuses_a_bad_time_zone_or_action(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let s = NewSubscriber::parse("prefs@example.com", "", "UTC", Timezone::UTC).unwrap();
    let id = subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &s,
        true,
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    let path = format!(
        "/preferences/{}",
        t.app.signer.sign(Purpose::Preferences, id)
    );
    let long = format!("action=timezone&timezone={}", "Europe%2F".repeat(60));
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown zone",
            "action=timezone&timezone=Mars%2FOlympus",
            "Time zone:",
        ),
        ("empty zone", "action=timezone&timezone=", "Time zone:"),
        (
            "zone with CR/LF",
            "action=timezone&timezone=Europe%2FParis%0D%0AX%3A+1",
            "Time zone:",
        ),
        ("540-character zone", &long, "Time zone:"),
        (
            "unknown action",
            "action=explode",
            "action: must be pause, resume, next, pace, unpace, leave, timezone, discreet or unsubscribe",
        ),
        ("no action", "timezone=UTC", "missing field `action`"),
        (
            "action twice",
            "action=pause&action=unsubscribe",
            "duplicate field `action`",
        ),
    ];
    let before = snapshot(&t.app).await;
    for (case, body, says) in cases {
        let r = send(
            &t.app,
            "127.0.0.1",
            "POST",
            &path,
            None,
            Some("application/x-www-form-urlencoded"),
            None,
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(r.status, 422, "{case}: {}", super::shown(&r.body));
        assert!(r.body.contains(says), "{case}: {}", super::shown(&r.body));
        assert_unchanged(&t, case, &before, &snapshot(&t.app).await);
    }
}
