//! The SMTP connection pool: lettre's SMTP client on sockets drip opens itself.
//!
//! lettre's own pooled transport leaves Nagle's algorithm on. It writes a message, then the
//! closing `.` line in a second small write, which the kernel holds until the server
//! acknowledges the first; the server, waiting for that line, delays its ACK (40 ms on
//! Linux). That is 40 ms per mail per connection: 88 mails/s over 4 connections to a local
//! smtp-sink, against 9,000 for Postfix's smtp-source. Here each socket gets TCP_NODELAY.
//! lettre also sends NOOP before every reuse; this pool does only when a connection has
//! been idle for a while, which is when a server may have dropped it.
//!
//! Implicit TLS (`tls = "tls"`, port 465) still connects through lettre's own socket:
//! lettre offers no way to wrap a socket of ours in TLS before the greeting.
//!
//! Opening a session ([`Dialer::open`]) is the same code for the pool and for
//! `drip smtp check`, which watches each step through a [`Seen`] callback. A step that fails
//! is explained as a [`RelayProblem`]: the sender holds the queue for those.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::problem::{self, Problem, RelayProblem, Step};
use super::tls::{CertificateInfo, Trust};
use crate::config;

/// Why a pooled send failed: lettre's error on an open connection, or why no session could
/// be opened at all (refused, timed out, no greeting, TLS or sign-in refused). The sender
/// treats the second as the relay being unusable, not as this mail's failure.
#[derive(Debug)]
pub enum Error {
    Smtp(lettre::transport::smtp::Error),
    Connect(RelayProblem),
}

/// What one step of opening a session saw, for `drip smtp check`.
#[derive(Debug, Clone)]
pub(crate) enum Seen {
    /// TCP is up (for implicit TLS: TLS too, and the greeting and EHLO were read inside it).
    Connected { server: String, implicit_tls: bool },
    /// The server's first reply (not seen for implicit TLS: lettre reads it inside TLS).
    Greeting(String),
    /// The server's EHLO reply: its name and the extensions it offers.
    Ehlo { lines: Vec<String> },
    /// The connection is encrypted; the server's certificate, when it could be read.
    Encrypted {
        certificate: Option<CertificateInfo>,
        /// false with `tls_verify = false`: the certificate was not checked.
        verified: bool,
        starttls: bool,
    },
    /// Signed in with this mechanism.
    SignedIn { mechanism: Mechanism, user: String },
    /// No user name is configured: no AUTH.
    NoAuth,
}

/// A parked connection is checked with NOOP before reuse once idle this long.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
/// A parked connection idle this long is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How to open a session with the relay: address, TLS, sign-in.
pub(crate) struct Dialer {
    host: String,
    port: u16,
    tls: config::Tls,
    tls_parameters: Option<TlsParameters>,
    credentials: Option<Credentials>,
    username: String,
    allow_plain_auth: bool,
    timeout: Duration,
    hello: ClientId,
    pub trust: Trust,
}

impl Dialer {
    pub fn new(smtp: &config::Smtp) -> anyhow::Result<Dialer> {
        let (tls_parameters, trust) = super::tls::parameters(smtp)?;
        Ok(Self::with_parameters(smtp, tls_parameters, trust))
    }

    /// The same settings with other TLS parameters (the check's second look at a
    /// certificate that did not verify).
    pub(crate) fn with_parameters(
        smtp: &config::Smtp,
        tls_parameters: Option<TlsParameters>,
        trust: Trust,
    ) -> Dialer {
        let credentials = (!smtp.username.is_empty())
            .then(|| Credentials::new(smtp.username.clone(), smtp.password.clone()));
        Dialer {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: smtp.tls,
            tls_parameters,
            credentials,
            username: smtp.username.clone(),
            allow_plain_auth: smtp.allow_plain_auth,
            timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            hello: ClientId::default(),
            trust,
        }
    }

    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Opens a session: TCP, greeting, EHLO, STARTTLS when configured, AUTH when a user
    /// name is set. `seen` (for `drip smtp check`) hears of each step as it succeeds, and
    /// gets the EHLO extensions too, which costs one more EHLO.
    pub async fn open(
        &self,
        mut seen: Option<&mut (dyn FnMut(Seen) + Send)>,
    ) -> Result<AsyncSmtpConnection, RelayProblem> {
        let server = self.server();
        let watching = seen.is_some();
        let mut tell = |s: Seen| {
            if let Some(f) = seen.as_mut() {
                f(s)
            }
        };
        let mut conn = match self.tls {
            config::Tls::Tls => {
                let conn = self
                    .within(
                        AsyncSmtpConnection::connect_tokio1(
                            (self.host.as_str(), self.port),
                            Some(self.timeout),
                            &self.hello,
                            self.tls_parameters.clone(),
                            None,
                        ),
                        Step::Connect,
                    )
                    .await?
                    .map_err(|e| problem::at_step(Step::Connect, &e, &server, &self.host, false))?;
                tell(Seen::Connected {
                    server: server.clone(),
                    implicit_tls: true,
                });
                tell(Seen::Encrypted {
                    certificate: certificate_of(&conn),
                    verified: self.trust.verify,
                    starttls: false,
                });
                conn
            }
            config::Tls::None | config::Tls::Starttls => {
                let stream = match tokio::time::timeout(
                    self.timeout,
                    TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                {
                    Err(_) => {
                        return Err(RelayProblem::new(
                            Problem::Unreachable,
                            format!(
                                "cannot connect to {server}: no answer within {}s; check [smtp] host and port, and that the relay is running and reachable from here",
                                self.timeout.as_secs()
                            ),
                        ));
                    }
                    Ok(Err(e)) => {
                        return Err(RelayProblem::new(
                            Problem::Unreachable,
                            format!(
                                "cannot connect to {server} ({e}); check [smtp] host and port, and that the relay is running"
                            ),
                        ));
                    }
                    Ok(Ok(stream)) => stream,
                };
                let _ = stream.set_nodelay(true);
                tell(Seen::Connected {
                    server: server.clone(),
                    implicit_tls: false,
                });
                let greeting = Arc::new(Mutex::new(Vec::new()));
                let stream: Box<dyn AsyncTokioStream> = Box::new(Tap {
                    inner: stream,
                    seen: greeting.clone(),
                });
                let mut conn = self
                    .within(
                        AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
                        Step::Greeting,
                    )
                    .await?
                    .map_err(|e| {
                        problem::at_step(Step::Greeting, &e, &server, &self.host, false)
                    })?;
                tell(Seen::Greeting(first_reply(
                    &greeting.lock().expect("tap lock"),
                )));
                let offered = self.ehlo_lines(&mut conn, watching, &mut tell).await;
                if self.tls == config::Tls::Starttls {
                    if !conn.can_starttls() {
                        conn.abort().await;
                        let offered = offered
                            .map(|lines| format!(" (its EHLO offers: {})", extensions(&lines)))
                            .unwrap_or_default();
                        return Err(RelayProblem::new(
                            Problem::NoStarttls,
                            format!(
                                "{server} does not offer STARTTLS{offered}; if it speaks TLS from the start (port 465) set [smtp] tls = \"tls\", and use tls = \"none\" only for a relay on this machine"
                            ),
                        ));
                    }
                    let params = self
                        .tls_parameters
                        .clone()
                        .expect("TLS parameters are built for tls = starttls");
                    let upgraded = self
                        .within(conn.starttls(params, &self.hello), Step::Starttls)
                        .await?;
                    if let Err(e) = upgraded {
                        // No QUIT: after a failed handshake lettre has no stream left to
                        // write it on (and panics if asked to); dropping closes the socket.
                        drop(conn);
                        return Err(problem::at_step(
                            Step::Starttls,
                            &e,
                            &server,
                            &self.host,
                            false,
                        ));
                    }
                    tell(Seen::Encrypted {
                        certificate: certificate_of(&conn),
                        verified: self.trust.verify,
                        starttls: true,
                    });
                    self.ehlo_lines(&mut conn, watching, &mut tell).await;
                }
                conn
            }
        };
        match &self.credentials {
            None => tell(Seen::NoAuth),
            Some(credentials) => {
                if !conn.is_encrypted() && !self.allow_plain_auth {
                    // The configuration refuses this combination at start; never send a
                    // password in the clear even if it got here some other way.
                    conn.abort().await;
                    return Err(RelayProblem::new(
                        Problem::Refused,
                        "the connection is not encrypted and smtp.allow_plain_auth is false: the password was not sent; set [smtp] tls = \"starttls\" or \"tls\"",
                    ));
                }
                let info = conn.server_info();
                let Some(mechanism) =
                    info.get_auth_mechanism(&[Mechanism::Plain, Mechanism::Login])
                else {
                    let hint = if conn.is_encrypted() {
                        String::new()
                    } else {
                        "; many relays offer AUTH only after STARTTLS: set [smtp] tls = \"starttls\"".to_owned()
                    };
                    conn.abort().await;
                    return Err(RelayProblem::new(
                        Problem::AuthMechanism,
                        format!(
                            "{server} offers no AUTH mechanism drip speaks (PLAIN or LOGIN){hint}; without a sign-in leave [smtp] username empty"
                        ),
                    ));
                };
                let result = self
                    .within(conn.auth(&[mechanism], credentials), Step::Auth)
                    .await?;
                if let Err(e) = result {
                    let encrypted = conn.is_encrypted();
                    conn.abort().await;
                    return Err(problem::at_step(
                        Step::Auth,
                        &e,
                        &server,
                        &self.host,
                        encrypted,
                    ));
                }
                tell(Seen::SignedIn {
                    mechanism,
                    user: self.username.clone(),
                });
            }
        }
        Ok(conn)
    }

    /// A second EHLO to list every extension the server offers (lettre keeps only those it
    /// uses); only when someone is watching.
    async fn ehlo_lines(
        &self,
        conn: &mut AsyncSmtpConnection,
        watching: bool,
        tell: &mut impl FnMut(Seen),
    ) -> Option<Vec<String>> {
        if !watching {
            return None;
        }
        let reply = tokio::time::timeout(
            self.timeout,
            conn.command(format!("EHLO {}\r\n", self.hello)),
        )
        .await
        .ok()?
        .ok()?;
        let lines: Vec<String> = reply.message().map(str::to_owned).collect();
        tell(Seen::Ehlo {
            lines: lines.clone(),
        });
        Some(lines)
    }

    /// Runs one step within the command timeout; a step that takes longer is explained.
    async fn within<T>(
        &self,
        step: impl std::future::Future<Output = T>,
        which: Step,
    ) -> Result<T, RelayProblem> {
        let server = self.server();
        tokio::time::timeout(self.timeout, step).await.map_err(|_| {
            let secs = self.timeout.as_secs();
            match which {
                Step::Connect => RelayProblem::new(
                    Problem::Unreachable,
                    format!(
                        "no TLS session with {server} within {secs}s; check [smtp] host and port, and that it speaks TLS from the start (465; for 587 set tls = \"starttls\")"
                    ),
                ),
                Step::Greeting => RelayProblem::new(
                    Problem::Greeting,
                    format!(
                        "{server} sent no SMTP greeting within {secs}s; if that port speaks TLS from the start (465), set [smtp] tls = \"tls\""
                    ),
                ),
                Step::Starttls => RelayProblem::new(
                    Problem::Tls,
                    format!("the TLS handshake with {server} took more than {secs}s"),
                ),
                Step::Auth => RelayProblem::new(
                    Problem::AuthRejected,
                    format!("{server} did not answer AUTH within {secs}s"),
                ),
            }
        })
    }
}

fn certificate_of(conn: &AsyncSmtpConnection) -> Option<CertificateInfo> {
    conn.peer_certificate()
        .ok()
        .and_then(|der| CertificateInfo::parse(&der))
}

/// The extension keywords of an EHLO reply (its first line is the server's name).
pub(crate) fn extensions(lines: &[String]) -> String {
    let list: Vec<&str> = lines.iter().skip(1).map(|l| l.trim()).collect();
    if list.is_empty() {
        "nothing".into()
    } else {
        list.join(", ")
    }
}

/// The first complete reply in what the server sent ("220 relay.example.org ESMTP").
fn first_reply(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    for line in text.split("\r\n") {
        lines.push(line.to_owned());
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            break;
        }
    }
    lines.join(" / ")
}

/// A socket that keeps a copy of the first bytes it reads: the server's greeting, which
/// lettre reads and drops.
#[derive(Debug)]
struct Tap {
    inner: TcpStream,
    seen: Arc<Mutex<Vec<u8>>>,
}

const TAP_BYTES: usize = 1024;

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let mut seen = self.seen.lock().expect("tap lock");
            if seen.len() < TAP_BYTES {
                seen.extend_from_slice(&buf.filled()[before..]);
            }
        }
        polled
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tap {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

pub(crate) struct SmtpPool {
    dialer: Dialer,
    /// One permit per connection in use: at most `pool_size` open at once.
    slots: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpPool {
    pub fn new(smtp: &config::Smtp, dialer: Dialer) -> SmtpPool {
        SmtpPool {
            dialer,
            slots: Semaphore::new(smtp.pool_size.max(1) as usize),
            idle: Mutex::new(Vec::new()),
        }
    }
    /// Sends one message on a pooled connection. A connection that saw any error is closed
    /// (lettre has already sent QUIT on it), never reused.
    ///
    /// A parked connection can have been closed by the server since its last use (restart,
    /// idle timeout) without the NOOP check seeing it yet. When a reused connection fails
    /// without any SMTP reply, the mail is tried once more on a new connection: otherwise a
    /// server restart would cost every parked connection's next mail a retry delay.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), Error> {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the pool is never closed");
        let (conn, reused) = self.checkout().await?;
        match self.send_on(conn, envelope, message).await {
            Err(e) if reused && e.status().is_none() && !e.is_timeout() => {
                tracing::debug!(error = %e, "a pooled SMTP connection had gone; sending on a new one");
                let conn = self.connect().await?;
                self.send_on(conn, envelope, message).await
            }
            result => result,
        }
        .map_err(Error::Smtp)
    }

    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let result = conn.send(envelope, message).await;
        if result.is_ok() && !conn.has_broken() {
            self.idle
                .lock()
                .expect("pool lock")
                .push((conn, Instant::now()));
        } else {
            conn.abort().await;
        }
        result.map(|_| ())
    }

    /// A parked connection (true) or a new one (false).
    async fn checkout(&self) -> Result<(AsyncSmtpConnection, bool), Error> {
        loop {
            let parked = self.idle.lock().expect("pool lock").pop();
            let Some((mut conn, since)) = parked else {
                return Ok((self.connect().await?, false));
            };
            let idle = since.elapsed();
            if idle < CHECK_AFTER_IDLE || (idle < IDLE_TIMEOUT && conn.test_connected().await) {
                return Ok((conn, true));
            }
            conn.abort().await;
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Error> {
        self.dialer.open(None).await.map_err(Error::Connect)
    }
}
