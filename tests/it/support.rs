//! Test harness: a fresh database per test on SQLite and PostgreSQL, a drip `App` wired to
//! it, a real SMTP server over TCP (mailin) whose answers a test can script, and the web
//! app served on a free port.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use drip::app::App;
use drip::config::{Config, Transport};
use drip::db::Db;
use mailin_embedded::{Handler, Response, Server};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(backend: Backend)` once per database: `name::sqlite` and
/// `name::postgres` (which passes without running when DRIP_TEST_POSTGRES_URL is unset).
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::support::postgres_url().is_some() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        }
    )* };
}

static SKIP_NOTICE: Once = Once::new();

/// Tests that start drip processes (the scale and fault tests) take turns: several at once
/// on a two-core machine starve each other's workers past their leases and timeouts, which
/// tests what the machine can do rather than what drip does.
pub static PROCESSES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Under `CI=true` nothing may be skipped: what a test needs from outside cargo must be
/// there, and its absence fails the run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The one policy for a test that needs something outside cargo (a database server, a
/// browser, a Python package): with it, run; without it, say in one line what was skipped
/// and how to run it, or fail under CI. Returns whether the test should run.
pub fn needs(what: &str, available: bool, how: &str) -> bool {
    if available {
        return true;
    }
    assert!(!in_ci(), "CI=true and {what} is missing: {how}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {what} is missing ({how})");
    false
}

/// The PostgreSQL server for tests, or None (saying so once, past the test harness's output
/// capture, so the skipped half is never silent; under CI a missing server fails).
pub fn postgres_url() -> Option<String> {
    match std::env::var("DRIP_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !in_ci(),
                "CI=true and DRIP_TEST_POSTGRES_URL is unset: the PostgreSQL half must run"
            );
            SKIP_NOTICE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: the PostgreSQL half of the database tests (DRIP_TEST_POSTGRES_URL is unset; SQLite ran)"
                );
            });
            None
        }
    }
}

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A database only this test sees: a SQLite file in a temp folder, or a PostgreSQL schema
/// (dropped when the test ends).
pub struct TestDb {
    pub url: String,
    schema: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("drip.db").display());
                TestDb {
                    url,
                    schema: None,
                    _dir: dir,
                }
            }
            Backend::Postgres => {
                let base = postgres_url().expect("DRIP_TEST_POSTGRES_URL");
                let schema = format!("t_{:016x}", rand::random::<u64>());
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&base)
                    .await
                    .expect("connect to DRIP_TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                TestDb {
                    url,
                    schema: Some((base, schema)),
                    _dir: dir,
                }
            }
        }
    }

    pub async fn connect(&self) -> Db {
        let db = Db::connect(&self.url, 8).await.unwrap();
        db.migrate().await.unwrap();
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = self.schema.take() {
            // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(pool) = sqlx::AnyPool::connect(&base).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                            .execute(&pool)
                            .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// A configuration for tests: the shipped config.toml with the database, paths and mail
/// pointed at this test's own places.
pub fn test_config(db_url: &str, outbox: &std::path::Path) -> Config {
    let text = std::fs::read_to_string(repo("config.toml")).unwrap();
    let mut c = Config::from_toml_str(&text).unwrap();
    c.database.url = db_url.to_owned();
    c.mail.outbox_dir = outbox.to_owned();
    c.course.lessons_dir = repo("lessons");
    c.course.templates_dir = repo("templates");
    // lessons/ holds two courses; a test that names none means the first one shipped.
    c.course.default = "rebuilding-trust".into();
    c
}

/// A drip instance on a fresh database. Every test's `App` is made by [`Builder`] (or, for a
/// second process on the same database, [`TestApp::another_process`]), so the test
/// configuration and every tweak to it go through one place.
pub struct TestApp {
    pub app: App,
    pub db: TestDb,
    pub dir: tempfile::TempDir,
    pub smtp: Option<SmtpServer>,
    /// Where the web app is served, with [`Builder::serve`].
    base_url: Option<String>,
}

/// A change to the test configuration, made before the `App` is.
type Tweak<'a> = Box<dyn FnOnce(&mut Config) + 'a>;

/// How a test's drip instance is made: `TestApp::builder(backend)`, then any of `.smtp(..)`,
/// `.config(|c| ..)` (as many as needed, applied in order) and `.serve()`, then `.build()`.
#[must_use]
pub struct Builder<'a> {
    backend: Backend,
    smtp: Option<SmtpServer>,
    tweaks: Vec<Tweak<'a>>,
    serve: bool,
}

impl<'a> Builder<'a> {
    /// Mail goes over SMTP to `smtp`, a real server in this process.
    pub fn smtp(mut self, smtp: SmtpServer) -> Self {
        self.smtp = Some(smtp);
        self
    }

    /// Changes the configuration before the `App` is made.
    pub fn config(mut self, tweak: impl FnOnce(&mut Config) + 'a) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Serves the web app over TCP on a free port, through drip's own `server::web`. The
    /// port is bound before the configuration is made, so `base_url` (and every link in
    /// every mail) names it; see [`TestApp::base_url`].
    pub fn serve(mut self) -> Self {
        self.serve = true;
        self
    }

    pub async fn build(self) -> TestApp {
        let db = TestDb::new(self.backend).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&db.url, &dir.path().join("outbox"));
        if let Some(s) = &self.smtp {
            config.mail.transport = Transport::Smtp;
            config.smtp.host = "127.0.0.1".into();
            config.smtp.port = s.addr.port();
            config.smtp.timeout_seconds = 5;
        }
        let listener = if self.serve {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            config.server.base_url = format!("http://{}", listener.local_addr().unwrap());
            Some(listener)
        } else {
            None
        };
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        let database = db.connect().await;
        let app = App::with_db(config, database).unwrap();
        let base_url = listener.map(|listener| {
            tokio::spawn(drip::server::web(app.clone(), listener));
            app.config.server.base_url.clone()
        });
        TestApp {
            app,
            db,
            dir,
            smtp: self.smtp,
            base_url,
        }
    }
}

impl TestApp {
    pub fn builder<'a>(backend: Backend) -> Builder<'a> {
        Builder {
            backend,
            smtp: None,
            tweaks: Vec::new(),
            serve: false,
        }
    }

    /// Mail goes to .eml files in a temp folder.
    pub async fn with_file_outbox(backend: Backend) -> TestApp {
        Self::builder(backend).build().await
    }

    /// Mail goes over SMTP to a real server in this process.
    pub async fn with_smtp(backend: Backend) -> TestApp {
        Self::builder(backend)
            .smtp(SmtpServer::start())
            .build()
            .await
    }

    /// [`Builder`] in one call: an SMTP server or none, and one tweak of the configuration.
    pub async fn build(
        backend: Backend,
        smtp: Option<SmtpServer>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut builder = Self::builder(backend).config(tweak);
        builder.smtp = smtp;
        builder.build().await
    }

    /// Another drip process on this one's database, with `tweak` applied to a copy of this
    /// one's configuration: its own `App` (worker id, relay gate, rate limits, retention
    /// clock, shutdown), as a second `drip worker` or a restart with a changed
    /// `config.toml` would have.
    pub fn another_process(&self, tweak: impl FnOnce(&mut Config)) -> App {
        let mut config = (*self.app.config).clone();
        tweak(&mut config);
        App::with_db(config, self.app.db.clone()).unwrap()
    }

    /// The web app's address (`http://127.0.0.1:port`), for an app built with
    /// [`Builder::serve`].
    pub fn base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .expect("this test app is not served: build it with .serve()")
    }

    pub fn smtp(&self) -> &SmtpServer {
        self.smtp
            .as_ref()
            .expect("this test app has no SMTP server")
    }

    /// The .eml files written so far, sorted by name.
    pub fn outbox(&self) -> Vec<(String, String)> {
        let dir = self.dir.path().join("outbox");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect()
    }
}

/// One message the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut()
                && (line.starts_with(' ') || line.starts_with('\t'))
            {
                v.push_str(line);
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }
}

#[derive(Default)]
struct SmtpState {
    messages: Vec<Received>,
    /// Replies to give at the end of DATA, in order; 250 once empty.
    script: VecDeque<(u16, String)>,
    /// How long each mail takes to accept (keeps a batch in flight for fault tests).
    delay: Duration,
}

/// A real SMTP server (mailin) on 127.0.0.1, in a thread of this process.
#[derive(Clone)]
pub struct SmtpServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<SmtpState>>,
}

#[derive(Clone)]
struct Recorder {
    state: Arc<Mutex<SmtpState>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let delay = self.state.lock().unwrap().delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut state = self.state.lock().unwrap();
        match state.script.pop_front() {
            Some((code, text)) if code != 250 => {
                // mailin stays in its DATA state after an error reply at the end of DATA and
                // would swallow the client's next commands; closing after the reply is what
                // a real MTA's behaviour looks like to the client anyway.
                let mut reply = Response::custom(code, text);
                reply.action = mailin_embedded::Action::Close;
                reply
            }
            _ => {
                let data = String::from_utf8_lossy(&self.data).into_owned();
                state.messages.push(Received {
                    to: self.to.clone(),
                    data,
                });
                mailin_embedded::response::OK
            }
        }
    }
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// A port that nothing listens on yet (for "the server is down, then comes back").
    pub fn reserve_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    pub fn start_on(listener: TcpListener) -> SmtpServer {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(SmtpState::default()));
        let recorder = Recorder {
            state: state.clone(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(recorder);
        server
            .with_name("test.smtp.local")
            .with_num_threads(8)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { addr, state }
    }

    /// The next DATA commands are answered with these codes (then 250).
    pub fn answer_next(&self, replies: &[(u16, &str)]) {
        let mut s = self.state.lock().unwrap();
        s.script
            .extend(replies.iter().map(|(c, t)| (*c, t.to_string())));
    }

    /// Every mail from now on takes this long to accept.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Waits (bounded) until at least `n` messages arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = self.messages();
            if m.len() >= n || tokio::time::Instant::now() > deadline {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The decoded text/plain part of a message (quoted-printable, as drip sends it).
pub fn text_part(data: &str) -> String {
    part(data, "text/plain")
}

/// The decoded text/html part of a message.
pub fn html_part(data: &str) -> String {
    part(data, "text/html")
}

fn part(data: &str, content_type: &str) -> String {
    let start = data
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("a {content_type} part"));
    let rest = &data[start..];
    let body_start = rest.find("\r\n\r\n").map(|i| i + 4).unwrap_or(0);
    let body = &rest[body_start..];
    let end = body.find("\r\n--").unwrap_or(body.len());
    qp_decode(&body[..end])
}

fn qp_decode(s: &str) -> String {
    let joined = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// The first URL in `text` that starts with `prefix`.
pub fn find_url(text: &str, prefix: &str) -> Option<String> {
    let at = text.find(prefix)?;
    Some(
        text[at..]
            .split(|c: char| c.is_whitespace() || c == '>' || c == '"')
            .next()?
            .to_owned(),
    )
}

/// Sends one request to the web app without a network hop.
pub async fn request(
    app: &App,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let response = drip::web::router(app.clone())
        .oneshot(req.body(axum::body::Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 10 * 1024 * 1024)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The path of an absolute URL of the app (`http://host/confirm/x` → `/confirm/x`).
pub fn path_of(url: &str) -> String {
    let after = url.split("://").nth(1).unwrap_or(url);
    after
        .find('/')
        .map(|i| after[i..].to_owned())
        .unwrap_or_else(|| "/".into())
}

pub fn at(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// The course a test means when it names none: `[course] default` of the test
/// configuration (Rebuilding Trust; `lessons/` also holds a second course).
pub async fn shipped(app: &App) -> drip::db::courses::CourseRow {
    app.course(None).await.unwrap()
}

/// A response of the served app, read whole from the socket.
pub struct HttpReply {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request to the app served at `base_url` ([`Builder::serve`]), over a new TCP
/// connection made from the loopback address `from`. Every 127.x.y.z is this machine, so a
/// test can be several clients (or a reverse proxy and the clients behind it) at once.
pub async fn http_from(
    from: &str,
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server: SocketAddr = base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let exchange = async {
        let mut stream = socket.connect(server).await.unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    // A hang guard, not a timing: a request that never ends fails the test instead of it.
    let raw = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no complete answer in 60 s"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A chunked HTTP/1.1 body, joined.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("a chunk size");
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}
