//! The admin UI in a real browser: headless Chromium driven through chromedriver (WebDriver)
//! signs in, edits the first lesson, sees the preview change, saves, finds the revision in
//! the history, sends itself a test over SMTP, turns on a TOTP second factor from the
//! account page and signs in again with password and code, and the next subscriber's mail
//! carries the edit. Chromium and chromedriver are Debian's packages (`.ci/run` installs them); when
//! they are missing this test fails and says so, it never passes silently.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use drip::domain::Timezone;
use drip::subscriptions::{self, NewSubscriber};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::admin::{PASSWORD, USER};
use crate::support::{Backend, SmtpServer, TestApp, text_part};

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    candidates.iter().find_map(|name| {
        std::env::split_paths(&path)
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver in a process group of its own: dropping this ends it and the browser it
/// started, whatever state the test is in.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(program: &PathBuf) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // `--` is needed: procps' kill reads `-9 -1234` as the options `-9`, `-1`, ... and
        // signals process group 1 (it killed the test runner's own tools here).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds (pages load after clicks at their own pace).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// With DRIP_TEST_SCREENSHOTS=DIR, saves what the browser shows as DIR/NAME.png (to look at
/// the pages as a person would).
async fn snapshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("DRIP_TEST_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
    }
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_the_first_lesson_in_chromium_and_the_next_mail_carries_it() {
    let missing =
        "install them with `apt-get install -y chromium chromium-driver` (.ci/run does this in CI)";
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_program(&["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        crate::support::needs(
            "the admin browser test's Chromium or chromedriver",
            false,
            missing,
        );
        return;
    };

    let t = TestApp::builder(Backend::Sqlite)
        .smtp(SmtpServer::start())
        .serve()
        .build()
        .await;
    let base = t.base_url().to_owned();
    crate::admin::add_test_admin(&t.app).await;

    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), json!({
        "binary": chromium,
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1000",
            format!("--user-data-dir={}", profile.path().display()),
        ],
    }));
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless Chromium");

    // The editor asks for a sign-in first, then comes back.
    let editor = format!("{base}/admin/lessons/before-we-begin");
    c.goto(&editor).await.unwrap();
    eventually("the sign-in form", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path() == "/admin/login")
    })
    .await;
    fill(&c, "#username", USER).await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#sign-in").await;
    eventually("the editor after signing in", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path() == "/admin/lessons/before-we-begin")
    })
    .await;
    assert_eq!(text_of(&c, "#current-revision").await, "1");

    // Edit subject and body; the preview shows the change before anything is saved.
    let subject = "Lesson 1 - Edited in Chromium";
    let paragraph = "This paragraph was written in a real browser.";
    fill(&c, "#subject", subject).await;
    fill(
        &c,
        "#body",
        &format!("Hi {{{{ subscriber.first_name }}}},\n\n{paragraph}\n"),
    )
    .await;
    click(&c, "#preview").await;
    eventually("the preview of the new subject", || async {
        text_of(&c, "#preview-subject").await == subject
    })
    .await;
    assert!(
        text_of(&c, "#preview-text").await.contains(paragraph),
        "the text part shows the new body"
    );
    assert!(
        text_of(&c, "#notice")
            .await
            .contains("Nothing is saved yet")
    );
    c.enter_frame(0).await.expect("the HTML preview frame");
    let html_preview = text_of(&c, "body").await;
    c.enter_parent_frame().await.unwrap();
    assert!(
        html_preview.contains(paragraph),
        "the HTML preview shows the new body: {html_preview:?}"
    );
    assert_eq!(
        text_of(&c, "#current-revision").await,
        "1",
        "a preview saves nothing"
    );
    snapshot(&c, "editor-preview").await;

    // Save: a new revision, found in the history.
    click(&c, "#save").await;
    eventually("the saved notice", || async {
        text_of(&c, "#notice")
            .await
            .contains("Saved as a new revision")
    })
    .await;
    assert_eq!(text_of(&c, "#current-revision").await, "2");
    click(&c, "#history").await;
    eventually("revision 2 in the history", || async {
        text_of(&c, "#revision-2").await.contains(USER)
    })
    .await;
    let row = text_of(&c, "#revision-2").await;
    assert!(
        row.contains("changed subject, body") && row.contains(subject),
        "{row}"
    );
    assert!(
        text_of(&c, "#diff").await.contains(paragraph),
        "the diff shows the new paragraph"
    );
    snapshot(&c, "history").await;

    // Send me a test: it arrives at the SMTP server with the new subject.
    c.goto(&editor).await.unwrap();
    click(&c, "#send-test").await;
    eventually("the test-sent notice", || async {
        text_of(&c, "#notice")
            .await
            .contains("test mail is on its way")
    })
    .await;
    let mails = t.smtp().wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "one test mail");
    assert_eq!(mails[0].to, ["ann@example.org"]);
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some(format!("[Test] {subject}").as_str())
    );
    assert!(text_part(&mails[0].data).contains(paragraph));
    for page in ["lessons", "subscribers", "replies", "stats"] {
        c.goto(&format!("{base}/admin/{page}")).await.unwrap();
        snapshot(&c, page).await;
    }

    // The second factor, as a person turns it on: the account page shows the key, the app's
    // code (computed here from the URI on the page) confirms it, the recovery codes appear
    // once; signing in again then takes the password and a code.
    click(&c, "#account").await;
    eventually("the account page", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path() == "/admin/account/totp")
    })
    .await;
    let key = totp_rs::TOTP::from_url(text_of(&c, "#totp-uri").await.trim())
        .expect("an otpauth:// URI on the page");
    // The QR code, as the browser draws it, read back by an independent decoder (zbar).
    let qr = c
        .find(Locator::Css("#qr svg"))
        .await
        .expect("a QR code to scan");
    let zbarimg = find_program(&["zbarimg"]);
    if crate::support::needs(
        "zbarimg, which reads the enrolment page's QR code back,",
        zbarimg.is_some(),
        "apt-get install -y zbar-tools (.ci/run does this in CI)",
    ) {
        let png = qr.screenshot().await.unwrap();
        let file = profile.path().join("qr.png");
        std::fs::write(&file, png).unwrap();
        let out = Command::new(zbarimg.unwrap())
            .args(["-q", "--raw"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            text_of(&c, "#totp-uri").await.trim(),
            "the QR code holds the URI: {out:?}"
        );
    }
    snapshot(&c, "account-totp").await;
    let now = Utc::now().timestamp() as u64;
    fill(&c, "#code", &key.generate(now)).await;
    click(&c, "#enrol").await;
    eventually("ten recovery codes", || async {
        c.find_all(Locator::Css("#recovery-codes li"))
            .await
            .is_ok_and(|codes| codes.len() == 10)
    })
    .await;
    snapshot(&c, "recovery-codes").await;
    click(&c, "#sign-out").await;
    eventually("the sign-in form again", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path() == "/admin/login")
    })
    .await;
    fill(&c, "#username", USER).await;
    fill(&c, "#password", PASSWORD).await;
    click(&c, "#sign-in").await;
    eventually("the code form after the password", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path() == "/admin/login/code")
    })
    .await;
    snapshot(&c, "login-code").await;
    // The enrolment used this step's code; the next step's is accepted once too.
    fill(&c, "#code", &key.generate(now + 30)).await;
    click(&c, "#verify").await;
    eventually("the lessons after the code", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path() == "/admin/lessons")
    })
    .await;
    c.close().await.unwrap();
    drop(driver);

    // The next subscriber's first lesson is the edited one.
    let new = NewSubscriber::parse("reader@example.com", "Reader", "UTC", Timezone::UTC).unwrap();
    subscriptions::add(
        &t.app,
        &crate::support::shipped(&t.app).await,
        &new,
        true,
        "test",
        Utc::now(),
    )
    .await
    .unwrap();
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let mails = t.smtp().wait_for(2, Duration::from_secs(10)).await;
    let lesson = mails
        .iter()
        .find(|m| m.to == ["reader@example.com"])
        .expect("the lesson mail");
    assert_eq!(lesson.header("Subject").as_deref(), Some(subject));
    assert_eq!(
        lesson.header("X-Drip-Lesson").as_deref(),
        Some("before-we-begin")
    );
    assert!(
        text_part(&lesson.data).contains(paragraph)
            && text_part(&lesson.data).contains("Hi Reader,")
    );
}

/// What the browser test stands on, checked without a browser: a test app built with
/// `.serve()` answers over TCP at its `base_url`, through drip's own web server, and the
/// links it mails point there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_app_answers_at_its_base_url_and_mails_links_to_it() {
    let t = TestApp::builder(Backend::Sqlite).serve().build().await;
    let base = t.base_url().to_owned();
    let addr = base.trim_start_matches("http://");
    let (status, page) = crate::faults::http(addr, "GET", "/healthz", "").await;
    assert_eq!(status, 200, "{page}");
    let form = "email=served%40example.com&name=Sam&timezone=UTC";
    let (status, page) = crate::faults::http(addr, "POST", "/subscribe", form).await;
    assert_eq!(status, 200, "{page}");
    drip::outbox::tick(&t.app, Utc::now()).await.unwrap();
    let (_, mail) = t.outbox().pop().expect("the confirmation mail");
    let link = crate::support::find_url(&text_part(&mail), &format!("{base}/confirm/"))
        .expect("a confirm link to the served address");
    let (status, page) =
        crate::faults::http(addr, "GET", &crate::support::path_of(&link), "").await;
    assert_eq!(status, 200, "{page}");
}
