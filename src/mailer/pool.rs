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

/// Why a pooled send failed: lettre's error once a connection is open, or the socket's own
/// when it could not be opened (lettre's errors cannot be built outside lettre).
#[derive(Debug)]
pub enum Error {
    Smtp(lettre::transport::smtp::Error),
    Connect(std::io::Error),
}

impl From<lettre::transport::smtp::Error> for Error {
    fn from(e: lettre::transport::smtp::Error) -> Error {
        Error::Smtp(e)
    }
}

/// A parked connection is checked with NOOP before reuse once idle this long.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
/// A parked connection idle this long is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct SmtpPool {
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
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), Error> {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the pool is never closed");
        let mut conn = self.checkout().await?;
        let result = conn.send(envelope, message).await;
        if result.is_ok() && !conn.has_broken() {
            self.idle
                .lock()
                .expect("pool lock")
                .push((conn, Instant::now()));
        } else {
            conn.abort().await;
        }
        result.map(|_| ()).map_err(Error::Smtp)
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, Error> {
        loop {
            let parked = self.idle.lock().expect("pool lock").pop();
            let Some((mut conn, since)) = parked else {
                return self.connect().await;
            };
            let idle = since.elapsed();
            if idle < CHECK_AFTER_IDLE || (idle < IDLE_TIMEOUT && conn.test_connected().await) {
                return Ok(conn);
            }
            conn.abort().await;
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Error> {
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
                .map_err(|_| {
                    Error::Connect(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connection timed out",
                    ))
                })?
                .map_err(Error::Connect)?;
                stream.set_nodelay(true).map_err(Error::Connect)?;
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
