//! The second factor: signing in takes the password and then a TOTP code (computed here with
//! totp-rs from the key drip printed), or a recovery code once; a code works once; wrong
//! codes are limited; sessions end when the password or the second factor changes (from the
//! CLI or the admin UI); `require_totp` sends an admin without one to enrol before anything
//! else.

use chrono::Utc;
use drip::domain::Role;
use serde_json::Value;
use totp_rs::TOTP;

use super::*;
use crate::on_both_databases;
use crate::support::Backend;

on_both_databases!(
    an_admin_with_totp_cannot_sign_in_with_the_password_alone,
    wrong_codes_are_refused_for_a_while_per_address_and_per_admin,
    sessions_end_when_the_password_or_the_second_factor_changes,
    require_totp_sends_an_admin_without_one_to_enrol_and_nothing_else_opens,
);

/// An address of its own per test and database, so that no other test's failures count.
fn ip(backend: Backend, n: u8) -> String {
    let base = match backend {
        Backend::Sqlite => 40,
        Backend::Postgres => 140,
    };
    format!("192.0.2.{}", base + n)
}

fn totp_of(uri: &str) -> TOTP {
    TOTP::from_url(uri).unwrap_or_else(|e| panic!("{uri}: {e:?}"))
}

/// The code of `totp` `steps` steps from now.
fn code(totp: &TOTP, steps: i64) -> String {
    totp.generate((Utc::now().timestamp() + steps * 30) as u64)
}

/// A six-digit code that is none of the three `totp` accepts now.
fn wrong_code(totp: &TOTP) -> String {
    let valid: Vec<String> = (-1..=1).map(|s| code(totp, s)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

fn session_cookie(r: &Resp) -> Option<String> {
    r.cookies()
        .into_iter()
        .find(|c| c.starts_with("drip_admin=") && !c.starts_with("drip_admin=;"))
        .map(|c| cookie_pair(&c))
}

/// Password, then the code form: returns the code step's cookie and CSRF token.
async fn password_step(app: &App, from: &str, user: &str, password: &str) -> (String, String) {
    let r = sign_in_from(app, from, user, password).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location().starts_with("/admin/login/code"),
        "the password alone does not sign in: {}",
        r.location()
    );
    let set = r
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("drip_admin="))
        .unwrap();
    assert!(
        set.contains("Max-Age=300") && set.contains("HttpOnly"),
        "{set}"
    );
    let cookie = cookie_pair(&set);
    let page = send(
        app,
        from,
        "GET",
        "/admin/login/code",
        Some(&cookie),
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    (cookie, field(&page.body, "csrf").unwrap())
}

async fn enter_code(app: &App, from: &str, cookie: &str, csrf: &str, code: &str) -> Resp {
    send(
        app,
        from,
        "POST",
        "/admin/login/code",
        Some(cookie),
        Some("application/x-www-form-urlencoded"),
        None,
        form(&[("code", code), ("csrf", csrf), ("next", "")]),
    )
    .await
}

async fn enrol(t: &TestApp, user: &str) -> drip::auth::second_factor::Enrolled {
    drip::auth::second_factor::enrol_now(
        &t.app.db,
        &t.app.vault,
        user,
        &t.app.config.server.base_url,
        Utc::now().timestamp(),
    )
    .await
    .unwrap()
}

async fn get_status(app: &App, cookie: &str, uri: &str) -> u16 {
    send(
        app,
        "127.0.0.1",
        "GET",
        uri,
        Some(cookie),
        None,
        None,
        Vec::new(),
    )
    .await
    .status
}

async fn an_admin_with_totp_cannot_sign_in_with_the_password_alone(backend: Backend) {
    let t = admin_app(backend).await;
    let from = ip(backend, 0);
    let e = enrol(&t, USER).await;
    assert!(e.uri.starts_with("otpauth://totp/drip:ann"), "{}", e.uri);
    assert_eq!(e.recovery_codes.len(), 10);
    let totp = totp_of(&e.uri);
    assert_eq!((totp.digits, totp.step, totp.skew), (6, 30, 1));

    // The password opens the code form and nothing else.
    let (cookie, csrf) = password_step(&t.app, &from, USER, PASSWORD).await;
    for uri in [
        "/admin/lessons",
        "/admin/account/totp",
        "/admin/subscribers",
    ] {
        let r = send(
            &t.app,
            &from,
            "GET",
            uri,
            Some(&cookie),
            None,
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(
            (r.status, r.location().as_str()),
            (302, "/admin/login/code"),
            "{uri}"
        );
    }
    let r = send(
        &t.app,
        &from,
        "POST",
        "/admin/logout",
        Some(&cookie),
        Some("application/x-www-form-urlencoded"),
        None,
        form(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(r.status, 302, "no signed-in route answers before the code");
    // The code form checks its CSRF token.
    let r = send(
        &t.app,
        &from,
        "POST",
        "/admin/login/code",
        Some(&cookie),
        Some("application/x-www-form-urlencoded"),
        None,
        form(&[("code", &code(&totp, 0))]),
    )
    .await;
    assert_eq!(r.status, 403);
    // A wrong code is refused; the right one signs in with a new session id.
    let r = enter_code(&t.app, &from, &cookie, &csrf, &wrong_code(&totp)).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("That code is not right"), "{}", r.body);
    assert!(session_cookie(&r).is_none());
    let now_code = code(&totp, 0);
    let r = enter_code(&t.app, &from, &cookie, &csrf, &now_code).await;
    assert_eq!(
        (r.status, r.location().as_str()),
        (303, "/admin/lessons"),
        "{}",
        r.body
    );
    let full = session_cookie(&r).expect("a session");
    assert_ne!(full, cookie);
    assert_eq!(get_status(&t.app, &full, "/admin/lessons").await, 200);
    assert_eq!(
        get_status(&t.app, &cookie, "/admin/lessons").await,
        302,
        "the code step's session is gone"
    );

    // The same code does not work twice (RFC 6238 §5.2), even from a new sign-in.
    let (cookie, csrf) = password_step(&t.app, &from, USER, PASSWORD).await;
    let r = enter_code(&t.app, &from, &cookie, &csrf, &now_code).await;
    assert_eq!(r.status, 401, "a used code: {}", r.body);
    // A recovery code works once instead, and says how many are left.
    let recovery = &e.recovery_codes[3];
    let r = enter_code(&t.app, &from, &cookie, &csrf, &recovery.to_uppercase()).await;
    assert_eq!(
        (r.status, r.location().as_str()),
        (303, "/admin/account/totp?recovery=1"),
        "{}",
        r.body
    );
    let recovered = session_cookie(&r).unwrap();
    let page = send(
        &t.app,
        &from,
        "GET",
        &r.location(),
        Some(&recovered),
        None,
        None,
        Vec::new(),
    )
    .await;
    assert!(page.body.contains("9 of them remain"), "{}", page.body);
    let (cookie, csrf) = password_step(&t.app, &from, USER, PASSWORD).await;
    let r = enter_code(&t.app, &from, &cookie, &csrf, recovery).await;
    assert_eq!(r.status, 401, "a used recovery code fails the second time");
    // Another one still works; then the code step's session is used up too.
    let r = enter_code(&t.app, &from, &cookie, &csrf, &e.recovery_codes[4]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = enter_code(&t.app, &from, &cookie, &csrf, &e.recovery_codes[5]).await;
    assert_eq!(
        (r.status, r.location().as_str()),
        (303, "/admin/login"),
        "a code step ends when it succeeds"
    );
    // Only hashes of the recovery codes are stored.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT code_hash FROM admin_recovery_codes")
        .fetch_all(t.app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 10);
    for code in &e.recovery_codes {
        assert!(
            stored
                .iter()
                .all(|(h,)| !h.contains(&code.replace('-', "")))
        );
    }
    // The key is sealed at rest: the stored bytes do not contain it.
    let (sealed,): (Vec<u8>,) =
        sqlx::query_as("SELECT totp_secret FROM admins WHERE username = $1")
            .bind(USER)
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert!(!sealed.windows(totp.secret.len()).any(|w| w == totp.secret));
    assert_eq!(t.app.vault.open(&sealed).unwrap(), totp.secret);

    // The code step lasts five minutes.
    let (cookie, _) = password_step(&t.app, &from, USER, PASSWORD).await;
    sqlx::query("UPDATE admin_sessions SET created_at = created_at - 301 WHERE stage = 'code'")
        .execute(t.app.db.pool())
        .await
        .unwrap();
    let r = send(
        &t.app,
        &from,
        "GET",
        "/admin/login/code",
        Some(&cookie),
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!((r.status, r.location().as_str()), (303, "/admin/login"));
    // An admin without a second factor still signs in with the password.
    add_admin_as(&t.app, "bea", Role::Editor).await;
    let r = sign_in_from(&t.app, &from, "bea", PASSWORD).await;
    assert_eq!((r.status, r.location().as_str()), (303, "/admin/lessons"));
}

async fn wrong_codes_are_refused_for_a_while_per_address_and_per_admin(backend: Backend) {
    let t = admin_app(backend).await;
    // The per-admin count is kept by admin id in this process, which all tests share: give
    // these admins ids no other test's admins have.
    let fillers = match backend {
        Backend::Sqlite => 20,
        Backend::Postgres => 40,
    };
    for i in 0..fillers {
        sqlx::query(
            "INSERT INTO admins (username, password_hash, created_at) VALUES ($1, 'none', 0)",
        )
        .bind(format!("filler{i}"))
        .execute(t.app.db.pool())
        .await
        .unwrap();
    }
    add_admin_as(&t.app, "max", Role::Owner).await;
    add_admin_as(&t.app, "kim", Role::Owner).await;
    let max = totp_of(&enrol(&t, "max").await.uri);
    let kim = totp_of(&enrol(&t, "kim").await.uri);

    // Five wrong codes from one address: that address is refused, even a right code.
    let from = ip(backend, 1);
    for _ in 0..drip::auth::MAX_FAILURES {
        let (cookie, csrf) = password_step(&t.app, &from, "max", PASSWORD).await;
        let r = enter_code(&t.app, &from, &cookie, &csrf, &wrong_code(&max)).await;
        assert_eq!(r.status, 401);
    }
    let r = sign_in_from(&t.app, &from, "kim", PASSWORD).await;
    assert_eq!(
        r.status, 429,
        "wrong codes count like wrong passwords: {}",
        r.body
    );
    assert!(r.headers.get(header::RETRY_AFTER).is_some());
    // From elsewhere, max is also held back: five wrong codes for one admin, from any address.
    let (cookie, csrf) = password_step(&t.app, &ip(backend, 2), "max", PASSWORD).await;
    let r = enter_code(&t.app, &ip(backend, 2), &cookie, &csrf, &code(&max, 0)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("for this account"), "{}", r.body);
    assert!(r.headers.get(header::RETRY_AFTER).is_some());
    // Kim, from a third address, is not affected.
    let (cookie, csrf) = password_step(&t.app, &ip(backend, 3), "kim", PASSWORD).await;
    let r = enter_code(&t.app, &ip(backend, 3), &cookie, &csrf, &code(&kim, 0)).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

async fn sessions_end_when_the_password_or_the_second_factor_changes(backend: Backend) {
    let t = admin_app(backend).await;
    let from = ip(backend, 5);
    let first = sign_in_from(&t.app, &from, USER, PASSWORD).await;
    let a = session_cookie(&first).unwrap();
    assert_eq!(get_status(&t.app, &a, "/admin/lessons").await, 200);

    // A bad password changes nothing.
    let out = drip_cli(&t, &["admin", "passwd", USER], "short\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password: must be at least 12 characters"),
        "{out:?}"
    );
    assert_eq!(get_status(&t.app, &a, "/admin/lessons").await, 200);
    let out = drip_cli(
        &t,
        &["admin", "passwd", "nobody"],
        "a long enough passphrase\n",
    );
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no admin named"),
        "{out:?}"
    );
    // `drip admin passwd` ends the sessions; the new password works, the old does not.
    let new_password = "a completely new passphrase";
    let out = drip_cli(&t, &["admin", "passwd", USER], &format!("{new_password}\n"));
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("sessions have ended"));
    assert_eq!(get_status(&t.app, &a, "/admin/lessons").await, 302);
    assert_eq!(
        sign_in_from(&t.app, &from, USER, PASSWORD).await.status,
        401
    );
    let b = session_cookie(&sign_in_from(&t.app, &from, USER, new_password).await).unwrap();
    assert_eq!(get_status(&t.app, &b, "/admin/lessons").await, 200);

    // `drip admin totp --json` enrols, prints the URI and the codes, and ends the sessions.
    let out = drip_cli(&t, &["admin", "totp", USER, "--json"], "");
    assert!(out.status.success(), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let uri = printed["uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{printed}");
    assert_eq!(printed["recovery_codes"].as_array().unwrap().len(), 10);
    let cli_key = totp_of(uri);
    assert_eq!(printed["secret"], cli_key.get_secret_base32());
    assert_eq!(get_status(&t.app, &b, "/admin/lessons").await, 302);
    // Without --json: the same, for people.
    let out = drip_cli(&t, &["admin", "totp", USER], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success()
            && text.contains("otpauth://totp/drip:ann")
            && text.contains("recovery codes"),
        "{out:?}"
    );
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("otpauth://"))
        .unwrap();
    let cli_key_2 = totp_of(line.trim());
    assert_ne!(cli_key_2.secret, cli_key.secret, "a new key each time");

    // Two sessions with the second factor (two codes: each works once).
    let (cookie, csrf) = password_step(&t.app, &from, USER, new_password).await;
    let r = enter_code(&t.app, &from, &cookie, &csrf, &code(&cli_key, 0)).await;
    assert_eq!(r.status, 401, "the first key was replaced");
    let r = enter_code(&t.app, &from, &cookie, &csrf, &code(&cli_key_2, 0)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let c = session_of(&t.app, &r).await;
    let (cookie, csrf) = password_step(&t.app, &from, USER, new_password).await;
    let r = enter_code(&t.app, &from, &cookie, &csrf, &code(&cli_key_2, 1)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let d = session_cookie(&r).unwrap();

    // A new key from the admin UI: a wrong code changes nothing, the right one enrols, shows
    // ten new recovery codes once, ends the other session and renews this one.
    let page = c.get(&t.app, "/admin/account/totp").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<svg") && page.body.contains("id=\"qr\""),
        "a QR code"
    );
    let offered = offered_uri(&page.body);
    let ui_key = totp_of(&offered);
    assert_ne!(ui_key.secret, cli_key_2.secret);
    let again = c.get(&t.app, "/admin/account/totp").await;
    assert_eq!(
        offered_uri(&again.body),
        offered,
        "the same key is offered until it is confirmed"
    );
    let r = c
        .post(
            &t.app,
            "/admin/account/totp",
            &[("code", &wrong_code(&ui_key))],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(get_status(&t.app, &d, "/admin/lessons").await, 200);
    let r = c
        .post(
            &t.app,
            "/admin/account/totp",
            &[("code", &code(&ui_key, 0))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("shown only this once"), "{}", r.body);
    let shown = r.body.matches("<li>").count();
    assert_eq!(shown, 10, "{}", r.body);
    let renewed = session_cookie(&r).expect("this browser's new session");
    assert_eq!(get_status(&t.app, &renewed, "/admin/lessons").await, 200);
    assert_eq!(get_status(&t.app, &c.cookie, "/admin/lessons").await, 302);
    assert_eq!(get_status(&t.app, &d, "/admin/lessons").await, 302);
    // Now the UI's key signs in, and the CLI's does not.
    let (cookie, csrf) = password_step(&t.app, &from, USER, new_password).await;
    let r = enter_code(&t.app, &from, &cookie, &csrf, &code(&cli_key_2, -1)).await;
    assert_eq!(r.status, 401);
    let r = enter_code(&t.app, &from, &cookie, &csrf, &code(&ui_key, 1)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The CLI's recovery codes went with its key.
    let (cookie, csrf) = password_step(&t.app, &from, USER, new_password).await;
    let old = printed["recovery_codes"][0].as_str().unwrap();
    assert_eq!(
        enter_code(&t.app, &from, &cookie, &csrf, old).await.status,
        401
    );

    // `drip admin add --role`: a bad role is refused naming it, a good one is stored.
    let out = drip_cli(
        &t,
        &["admin", "add", "ed", "--role", "boss"],
        "a long enough passphrase\n",
    );
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("owner, editor or reader"),
        "{out:?}"
    );
    let out = drip_cli(
        &t,
        &["admin", "add", "ed", "--role", "editor"],
        "a long enough passphrase\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin ed created (editor)"));
    let (role,): (String,) = sqlx::query_as("SELECT role FROM admins WHERE username = 'ed'")
        .fetch_one(t.app.db.pool())
        .await
        .unwrap();
    assert_eq!(role, "editor");
    let out = drip_cli(&t, &["admin", "add", "olive"], "a long enough passphrase\n");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(owner)"),
        "{out:?}"
    );
}

async fn require_totp_sends_an_admin_without_one_to_enrol_and_nothing_else_opens(backend: Backend) {
    let t = TestApp::build(backend, None, |c| c.security.require_totp = true).await;
    add_test_admin(&t.app).await;
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    let from = ip(backend, 7);
    let r = sign_in_from(&t.app, &from, USER, PASSWORD).await;
    assert_eq!(r.status, 303);
    let s = session_of(&t.app, &r).await;
    for uri in [
        "/admin",
        "/admin/lessons",
        "/admin/subscribers",
        "/admin/replies",
        "/admin/stats",
    ] {
        let r = s.get(&t.app, uri).await;
        let to = if r.status == 303 && r.location() != "/admin/account/totp" {
            // The landing page first sends to the role's first section.
            s.get(&t.app, &r.location()).await
        } else {
            r
        };
        assert_eq!(
            (to.status, to.location().as_str()),
            (303, "/admin/account/totp"),
            "{uri}"
        );
    }
    let r = s
        .post(
            &t.app,
            "/admin/lessons/before-we-begin/status",
            &[("status", "draft")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("requires a second factor"), "{}", r.body);
    let api = |token: String| {
        let app = t.app.clone();
        async move {
            send(
                &app,
                "127.0.0.1",
                "GET",
                "/api/v1/lessons",
                None,
                None,
                Some(&token),
                Vec::new(),
            )
            .await
        }
    };
    let r = api(token.clone()).await;
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (403, serde_json::json!("totp")),
        "{}",
        r.body
    );
    let page = s.get(&t.app, "/admin/account/totp").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("This drip requires a second factor"),
        "{}",
        page.body
    );
    // Signing out stays open.
    let other = session_of(&t.app, &sign_in_from(&t.app, &from, USER, PASSWORD).await).await;
    assert_eq!(other.post(&t.app, "/admin/logout", &[]).await.status, 303);
    // Enrolling opens everything the role allows.
    let offered = offered_uri(&page.body);
    let key = totp_of(&offered);
    let r = s
        .post(&t.app, "/admin/account/totp", &[("code", &code(&key, 0))])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let renewed = session_cookie(&r).unwrap();
    assert_eq!(get_status(&t.app, &renewed, "/admin/lessons").await, 200);
    assert_eq!(
        api(token).await.status,
        200,
        "the token works once the admin has a second factor"
    );
    // From now on the sign-in asks for the code.
    let (cookie, csrf) = password_step(&t.app, &from, USER, PASSWORD).await;
    let r = enter_code(&t.app, &from, &cookie, &csrf, &code(&key, 1)).await;
    assert_eq!(r.status, 303, "{}", r.body);
}
