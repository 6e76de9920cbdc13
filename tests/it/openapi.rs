//! `GET /api/v1/openapi.json` against the running server: the document is fetched with a
//! token, and schemathesis (an independent OpenAPI fuzzer, from PyPI) sends every route
//! of it valid and invalid requests with `--checks all`: no 5xx, every status, content type
//! and body as documented. A bounded number of examples per route and a hang guard keep it
//! short. Skipped with one line when schemathesis is missing, except under CI=true.
//!
//! SQLite only: the fuzzer checks the HTTP contract, which is the same handlers on both
//! databases (the API's behaviour on each is tested in admin::api and admin::roles).

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::admin::{USER, add_test_admin, send};
use crate::support::{Backend, TestApp, needs};

/// The version .ci/run installs.
const SCHEMATHESIS: &str = "4.32.5";

/// Generous: the run takes a minute or two on a quiet machine.
const HANG_GUARD: Duration = Duration::from_secs(900);

async fn served_with_a_token() -> (TestApp, String) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("drip=warn")
        .try_init();
    let t = TestApp::builder(Backend::Sqlite).serve().build().await;
    add_test_admin(&t.app).await;
    let token = drip::auth::new_api_token(&t.app.db, USER, Utc::now().timestamp())
        .await
        .unwrap();
    (t, token)
}

#[tokio::test]
async fn the_document_is_served_and_lists_the_routes() {
    let (t, token) = served_with_a_token().await;
    let get = |auth: Option<String>| {
        let app = t.app.clone();
        async move {
            send(
                &app,
                "127.0.0.1",
                "GET",
                "/api/v1/openapi.json",
                None,
                None,
                auth.as_deref(),
                Vec::new(),
            )
            .await
        }
    };
    let r = get(None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = get(Some(token.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let doc: Value = serde_json::from_str(&r.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let post = &doc["paths"]["/api/v1/enrollments"]["post"];
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NewSubscriberBody"
    );
    assert_eq!(
        post["responses"]["409"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    // A documented refusal is what the server answers: {error, field}.
    let r = send(
        &t.app,
        "127.0.0.1",
        "POST",
        "/api/v1/enrollments",
        None,
        Some("application/json"),
        Some(&token),
        json!({"email": "x@example.org", "colour": "blue"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"error": r.json()["error"], "field": "colour"})
    );
    let r = send(
        &t.app,
        "127.0.0.1",
        "GET",
        "/api/v1/subscribers?limit=many",
        None,
        None,
        Some(&token),
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["field"], "limit", "{}", r.body);
}

fn schemathesis_version() -> Option<String> {
    let out = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_running_server() {
    let version = schemathesis_version();
    if !needs(
        "schemathesis",
        version.is_some(),
        &format!("python3 -m pip install schemathesis=={SCHEMATHESIS}; .ci/run installs it"),
    ) {
        return;
    }
    let (t, token) = served_with_a_token().await;
    // Someone to find, pause and export, and a broadcast to show and cancel.
    for (uri, body) in [
        (
            "/api/v1/enrollments",
            json!({"email": "fay@example.org", "name": "Fay", "confirmed": true}),
        ),
        (
            "/api/v1/broadcasts",
            json!({"subject": "A note", "body": "Lesson 4 was fixed.", "at": "2099-01-01T08:00:00Z"}),
        ),
    ] {
        let r = send(
            &t.app,
            "127.0.0.1",
            "POST",
            uri,
            None,
            Some("application/json"),
            Some(&token),
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(r.status, 201, "{uri}: {}", r.body);
    }
    let base = t.base_url().to_owned();
    let reports = t.dir.path().join("schemathesis");
    let mut run = tokio::process::Command::new("schemathesis");
    run.arg("--config-file")
        .arg(crate::support::repo("tests/it/schemathesis.toml"))
        .arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["--url", &base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        .args(["--max-examples", "20"])
        .args(["--seed", "1"])
        .args(["--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--no-color"])
        .arg("--report-dir")
        .arg(&reports)
        // Its cache of examples and crashes goes in the test's folder, not the checkout.
        .current_dir(t.dir.path())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(HANG_GUARD, run.output())
        .await
        .expect("schemathesis did not finish within the hang guard")
        .expect("start schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis ({}) found problems:\n{stdout}\n{stderr}",
        version.unwrap_or_default()
    );
    // It did test the routes, not only fetch the document.
    assert!(stdout.contains("Tested: "), "{stdout}");
    use std::io::Write;
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" generated, ") || (l.starts_with("===") && l.contains(" in ")))
        .map(|l| l.trim_matches(|c: char| c == '=' || c.is_whitespace()))
        .collect();
    let _ = writeln!(
        std::io::stderr(),
        "schemathesis: {} ({:.0?})",
        summary.join("; "),
        started.elapsed()
    );
}
