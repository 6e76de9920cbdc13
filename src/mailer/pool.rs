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
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
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
    /// `[smtp] pipelining`: use PIPELINING when the server offers it.
    pipelining: bool,
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
            pipelining: smtp.pipelining,
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
    ) -> Result<Session, RelayProblem> {
        let server = self.server();
        let watching = seen.is_some();
        let mut tell = |s: Seen| {
            if let Some(f) = seen.as_mut() {
                f(s)
            }
        };
        // The server's last EHLO reply, when it was asked for (lettre keeps only the
        // extensions it uses itself, and PIPELINING is not one of them).
        let mut offered: Option<Vec<String>>;
        let mut conn = match self.tls {
            config::Tls::Tls => {
                let mut conn = self
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
                offered = self
                    .ehlo_lines(&mut conn, watching || self.pipelining, &mut tell)
                    .await?;
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
                let last = self.tls == config::Tls::None && self.pipelining;
                offered = self
                    .ehlo_lines(&mut conn, watching || last, &mut tell)
                    .await?;
                if self.tls == config::Tls::Starttls {
                    if !conn.can_starttls() {
                        conn.abort().await;
                        let offered = offered
                            .as_ref()
                            .map(|lines| format!(" (its EHLO offers: {})", extensions(lines)))
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
                    // What the server offers before TLS may differ from what it offers
                    // inside it; only the second counts.
                    offered = self
                        .ehlo_lines(&mut conn, watching || self.pipelining, &mut tell)
                        .await?;
                }
                conn
            }
        };
        let pipelining = self.pipelining && offered.as_deref().is_some_and(offers_pipelining);
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
        Ok(Session { conn, pipelining })
    }

    /// EHLO once more, to read every extension the server offers (lettre keeps only those
    /// it uses): when `ask` (the pool needs to know about PIPELINING, or someone is
    /// watching). A server that answers EHLO with an error offers nothing; one that does not
    /// answer at all cannot be used.
    async fn ehlo_lines(
        &self,
        conn: &mut AsyncSmtpConnection,
        ask: bool,
        tell: &mut impl FnMut(Seen),
    ) -> Result<Option<Vec<String>>, RelayProblem> {
        if !ask {
            return Ok(None);
        }
        let reply = self
            .within(conn.command(format!("EHLO {}\r\n", self.hello)), Step::Ehlo)
            .await?;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) if e.status().is_some() => return Ok(None),
            Err(e) => {
                return Err(problem::at_step(
                    Step::Ehlo,
                    &e,
                    &self.server(),
                    &self.host,
                    conn.is_encrypted(),
                ));
            }
        };
        let lines: Vec<String> = reply.message().map(str::to_owned).collect();
        tell(Seen::Ehlo {
            lines: lines.clone(),
        });
        Ok(Some(lines))
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
                Step::Ehlo => RelayProblem::new(
                    Problem::Greeting,
                    format!(
                        "{server} greeted but did not answer EHLO within {secs}s; check that the relay is healthy (drip asks EHLO once more to learn whether it offers PIPELINING: [smtp] pipelining = false skips that)"
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

/// An open SMTP session, and whether mail on it goes pipelined.
pub(crate) struct Session {
    pub conn: AsyncSmtpConnection,
    /// The server offered PIPELINING in its last EHLO reply and `[smtp] pipelining` is on.
    pub pipelining: bool,
}

/// Whether an EHLO reply (its first line is the server's name) offers PIPELINING.
fn offers_pipelining(lines: &[String]) -> bool {
    lines.iter().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
    })
}

/// One mail on an open session. With PIPELINING (RFC 2920), MAIL FROM, every RCPT TO and
/// DATA go in one write and their replies are read in order, then the message; without it,
/// lettre's transaction, one command at a time. Either way, any refusal leaves the session
/// unfit for reuse (the caller closes it), as lettre's own transaction does.
///
/// Mail that needs an extension (an address beyond ASCII, an 8-bit body) takes lettre's
/// path, which checks that the server offers it and says so when not.
pub(crate) async fn transaction(
    session: &mut Session,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), lettre::transport::smtp::Error> {
    let conn = &mut session.conn;
    let ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .all(|a| AsRef::<str>::as_ref(a).is_ascii());
    if !session.pipelining || !ascii || !message.is_ascii() {
        return conn.send(envelope, message).await.map(|_| ());
    }
    let mut group = Mail::new(envelope.from().cloned(), vec![]).to_string();
    for to in envelope.to() {
        group.push_str(&Rcpt::new(to.clone(), vec![]).to_string());
    }
    group.push_str(&Data.to_string());
    let replies = envelope.to().len() + 2;
    // The first reply (MAIL's) comes back from `command`, the others are read in turn. A
    // reply that cannot be read (a cut connection, a garbled line) ends it at once: what
    // follows on the stream is unknown.
    let mut results = Vec::with_capacity(replies);
    for i in 0..replies {
        let reply = if i == 0 {
            // The whole group in one write.
            conn.command(std::mem::take(&mut group)).await
        } else {
            conn.read_response().await
        };
        match reply {
            Err(e) if e.status().is_none() => return Err(e),
            reply => results.push(reply),
        }
    }
    let data = results.pop().expect("DATA's reply");
    match (results.into_iter().find_map(Result::err), data) {
        (None, Ok(_)) => conn.message(message).await.map(|_| ()),
        (None, Err(e)) => Err(e),
        // The server took DATA although it refused the sender or every recipient: an empty
        // message ends the data phase (it refuses that too), so the session is left in
        // step and the earlier refusal is what counts.
        (Some(refused), Ok(_)) => {
            let _ = conn.message(b"").await;
            Err(refused)
        }
        (Some(refused), Err(_)) => Err(refused),
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
    idle: Mutex<Vec<(Session, Instant)>>,
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
        mut session: Session,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let result = transaction(&mut session, envelope, message).await;
        if result.is_ok() && !session.conn.has_broken() {
            self.idle
                .lock()
                .expect("pool lock")
                .push((session, Instant::now()));
        } else {
            session.conn.abort().await;
        }
        result
    }

    /// A parked session (true) or a new one (false).
    async fn checkout(&self) -> Result<(Session, bool), Error> {
        loop {
            let parked = self.idle.lock().expect("pool lock").pop();
            let Some((mut session, since)) = parked else {
                return Ok((self.connect().await?, false));
            };
            let idle = since.elapsed();
            if idle < CHECK_AFTER_IDLE
                || (idle < IDLE_TIMEOUT && session.conn.test_connected().await)
            {
                return Ok((session, true));
            }
            session.conn.abort().await;
        }
    }

    async fn connect(&self) -> Result<Session, Error> {
        self.dialer.open(None).await.map_err(Error::Connect)
    }
}

#[cfg(test)]
mod tests {
    //! The pipelined transaction against a scripted server that logs what it read and when
    //! it answered. The same sessions against Postfix's own server are in
    //! `tests/it/delivery.rs` (`pipelining_*`).

    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// How the scripted server answers.
    #[derive(Clone, Copy)]
    struct Script {
        /// Offers PIPELINING, and then answers MAIL, RCPT and DATA only once it has all three
        /// (a client that waited for each answer would wait for ever).
        pipelining: bool,
        rcpt: &'static str,
        data: &'static str,
    }

    /// What the server saw: `C: <line>` for what it read (`C+:` when more had already
    /// arrived behind that line), `S: <reply>` for what it answered, in order.
    type Log = Arc<std::sync::Mutex<Vec<String>>>;

    async fn server(script: Script) -> (u16, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log: Log = Arc::default();
        let seen = log.clone();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut read = BufReader::new(read);
            async fn say(w: &mut tokio::net::tcp::OwnedWriteHalf, log: &Log, text: String) {
                log.lock().unwrap().push(format!("S: {}", text.trim_end()));
                w.write_all(text.as_bytes()).await.unwrap();
            }
            say(&mut write, &seen, "220 scripted ESMTP\r\n".into()).await;
            let mut waiting: Vec<String> = Vec::new();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if read.read_line(&mut line).await.unwrap() == 0 {
                    return;
                }
                let ahead = if read.buffer().is_empty() { "" } else { "+" };
                let command = line.trim_end().to_owned();
                if in_data {
                    if command == "." {
                        in_data = false;
                        seen.lock().unwrap().push("C: .".into());
                        let reply = if script.rcpt.starts_with('2') {
                            "250 2.0.0 queued"
                        } else {
                            "554 5.5.1 no valid recipients"
                        };
                        say(&mut write, &seen, format!("{reply}\r\n")).await;
                    }
                    continue;
                }
                seen.lock().unwrap().push(format!("C{ahead}: {command}"));
                let upper = command.to_ascii_uppercase();
                let reply = if upper.starts_with("EHLO") {
                    let extra = if script.pipelining {
                        "250-PIPELINING\r\n"
                    } else {
                        ""
                    };
                    format!("250-scripted\r\n{extra}250 8BITMIME\r\n")
                } else if upper.starts_with("MAIL") {
                    "250 2.1.0 ok\r\n".into()
                } else if upper.starts_with("RCPT") {
                    format!("{}\r\n", script.rcpt)
                } else if upper == "DATA" {
                    in_data = script.data.starts_with('3');
                    format!("{}\r\n", script.data)
                } else if upper == "QUIT" {
                    say(&mut write, &seen, "221 bye\r\n".into()).await;
                    return;
                } else {
                    "250 ok\r\n".into()
                };
                let in_transaction = ["MAIL", "RCPT", "DATA"]
                    .iter()
                    .any(|c| upper.starts_with(c));
                if script.pipelining && in_transaction {
                    waiting.push(reply);
                    if upper == "DATA" {
                        for r in waiting.drain(..) {
                            say(&mut write, &seen, r).await;
                        }
                    }
                } else {
                    say(&mut write, &seen, reply).await;
                }
            }
        });
        (port, log)
    }

    async fn session(port: u16, pipelining: bool) -> Session {
        let smtp = config::Smtp {
            port,
            timeout_seconds: 5,
            pipelining,
            ..config::Smtp::default()
        };
        Dialer::new(&smtp).unwrap().open(None).await.unwrap()
    }

    fn envelope() -> Envelope {
        Envelope::new(
            Some("course@example.org".parse().unwrap()),
            vec!["reader@example.com".parse().unwrap()],
        )
        .unwrap()
    }

    const MESSAGE: &[u8] = b"Subject: hello\r\n\r\n.a line that starts with a dot\r\n";

    fn log_of(log: &Log) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    /// What the server saw from the first MAIL FROM on.
    fn from_mail(log: &[String]) -> &[String] {
        let at = log.iter().position(|l| l.contains("MAIL FROM")).unwrap();
        &log[at..]
    }

    #[tokio::test]
    async fn a_server_that_offers_pipelining_gets_mail_rcpt_and_data_in_one_go() {
        let (port, log) = server(Script {
            pipelining: true,
            rcpt: "250 2.1.5 ok",
            data: "354 go on",
        })
        .await;
        let mut s = session(port, true).await;
        assert!(s.pipelining);
        // The server answers none of the three before it has read all three: this returns
        // only because they were sent together.
        let sent = tokio::time::timeout(
            Duration::from_secs(5),
            transaction(&mut s, &envelope(), MESSAGE),
        )
        .await;
        sent.expect("no deadlock: the commands went together")
            .unwrap();
        let log = log_of(&log);
        let mail = from_mail(&log);
        assert_eq!(
            &mail[..3],
            &[
                "C+: MAIL FROM:<course@example.org>",
                "C+: RCPT TO:<reader@example.com>",
                "C: DATA"
            ],
            "{log:#?}"
        );
        assert_eq!(mail[3], "S: 250 2.1.0 ok", "{log:#?}");
        assert_eq!(log.last().unwrap(), "S: 250 2.0.0 queued", "{log:#?}");

        // The session stays usable for the next mail.
        transaction(&mut s, &envelope(), MESSAGE).await.unwrap();
    }

    #[tokio::test]
    async fn without_pipelining_each_command_waits_for_its_answer() {
        for (offered, wanted) in [(false, true), (true, false)] {
            let script = Script {
                pipelining: offered,
                rcpt: "250 2.1.5 ok",
                data: "354 go on",
            };
            let (port, log) = server(script).await;
            let mut s = session(port, wanted).await;
            assert!(
                !s.pipelining,
                "offered {offered}, [smtp] pipelining = {wanted}"
            );
            if offered {
                // A pipelining server answers only once it has all three: a client that
                // waits for each answer must not be talking to it in this test.
                continue;
            }
            transaction(&mut s, &envelope(), MESSAGE).await.unwrap();
            let log = log_of(&log);
            assert_eq!(
                &from_mail(&log)[..6],
                &[
                    "C: MAIL FROM:<course@example.org>",
                    "S: 250 2.1.0 ok",
                    "C: RCPT TO:<reader@example.com>",
                    "S: 250 2.1.5 ok",
                    "C: DATA",
                    "S: 354 go on"
                ],
                "{log:#?}"
            );
        }
    }

    #[tokio::test]
    async fn a_refused_recipient_is_the_error_whatever_data_was_answered() {
        // DATA refused too (the usual answer), or accepted although no recipient is left:
        // then an empty message closes the data phase and the server's 554 is not the error.
        for data in ["554 5.5.1 no valid recipients", "354 go on"] {
            let script = Script {
                pipelining: true,
                rcpt: "550 5.1.1 no such user",
                data,
            };
            let (port, log) = server(script).await;
            let mut s = session(port, true).await;
            let e = tokio::time::timeout(
                Duration::from_secs(5),
                transaction(&mut s, &envelope(), MESSAGE),
            )
            .await
            .expect("the refusal comes back at once")
            .unwrap_err();
            assert!(e.is_permanent(), "{e}");
            assert_eq!(
                e.status().map(|c| c.to_string()).as_deref(),
                Some("550"),
                "{e}"
            );
            let log = log_of(&log);
            if data.starts_with('3') {
                assert!(log.contains(&"C: .".to_owned()), "{log:#?}");
                assert_eq!(
                    log.last().unwrap(),
                    "S: 554 5.5.1 no valid recipients",
                    "{log:#?}"
                );
            }
            assert!(
                !log.iter().any(|l| l.contains("hello")),
                "the message itself never went: {log:#?}"
            );
        }
    }
}
