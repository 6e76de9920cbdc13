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

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Semaphore;

use crate::config;

/// Why a pooled send failed: lettre's error on an open connection, or why no connection
/// could be opened at all (refused, timed out, no greeting, TLS or sign-in refused). The
/// sender treats the second as the server being unreachable, not as this mail's failure.
#[derive(Debug)]
pub enum Error {
    Smtp(lettre::transport::smtp::Error),
    Connect(String),
}

/// A parked connection is checked with NOOP before reuse once idle this long.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
/// A parked connection idle this long is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct SmtpPool {
    host: String,
    port: u16,
    tls: config::Tls,
    tls_parameters: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    /// One permit per connection in use: at most `pool_size` open at once.
    slots: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpPool {
    pub fn new(
        smtp: &config::Smtp,
        tls_parameters: Option<TlsParameters>,
        credentials: Option<Credentials>,
    ) -> SmtpPool {
        SmtpPool {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: smtp.tls,
            tls_parameters,
            credentials,
            timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            hello: ClientId::default(),
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
        self.open()
            .await
            .map_err(|e| Error::Connect(format!("{}:{}: {e}", self.host, self.port)))
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, Box<dyn std::error::Error + Send + Sync>> {
        let mut conn = match self.tls {
            config::Tls::Tls => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    self.tls_parameters.clone(),
                    None,
                )
                .await?
            }
            config::Tls::None | config::Tls::Starttls => {
                let stream = tokio::time::timeout(
                    self.timeout,
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| "connection timed out")??;
                stream.set_nodelay(true)?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await?;
                if let (config::Tls::Starttls, Some(params)) = (self.tls, &self.tls_parameters) {
                    conn.starttls(params.clone(), &self.hello).await?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(conn)
    }
}
