//! The inbound SMTP listener (mailin): accepts mail for the reply domain only, bounds its
//! size, and answers 250 only once the message is stored, like an MTA. A failure to store
//! answers 451, so the sending server keeps the message and tries again.
//!
//! mailin is the protocol; the sockets are ours: `THREADS` threads each accept and serve one
//! connection at a time (mailin-embedded's server did the same with a pool of 8, but pulls
//! in rustls with its default aws-lc-rs backend for a STARTTLS this listener never offers).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use mailin::{Action, Handler, Response, SessionBuilder, response};

use crate::app::App;

#[derive(Clone)]
struct Inbound {
    app: App,
    runtime: tokio::runtime::Handle,
    data: Vec<u8>,
    too_big: bool,
}

fn reply(code: u16, text: &str) -> Response {
    Response::custom(code, text.to_owned())
}

/// The answer to new mail once drip is shutting down. The listener's threads block in
/// accept and cannot be stopped from the runtime, so the listener obeys [`App::shutdown`]
/// this way: once it is cancelled, a new session (HELO, EHLO) or a new mail (MAIL FROM) is
/// answered 421 and the connection closed, and the sending server queues the mail for when
/// drip is back; a message already in DATA is still stored and answered.
fn shutting_down() -> Response {
    reply(421, "4.3.2 shutting down, try again later")
}

impl Handler for Inbound {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        if self.app.is_stopping() {
            return shutting_down();
        }
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let to = to.trim().trim_start_matches('<').trim_end_matches('>');
        let domain = to.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if domain.eq_ignore_ascii_case(&self.app.config.mail.reply_domain) {
            response::OK
        } else {
            // Not an open relay: only the reply domain is ours.
            reply(550, "5.7.1 relaying denied")
        }
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.data.clear();
        self.too_big = false;
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.data.len() + buf.len() > self.app.config.inbound.max_message_bytes {
            self.too_big = true;
        } else {
            self.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if self.too_big {
            return reply(552, "5.3.4 message too big");
        }
        let raw = std::mem::take(&mut self.data);
        let app = self.app.clone();
        tracing::debug!(
            bytes = raw.len(),
            "inbound message received; storing it before answering"
        );
        // This is one of mailin's own threads, not the runtime's: blocking on the store is
        // what makes the 250 mean "stored".
        match self
            .runtime
            .block_on(super::ingest(&app, &raw, false, Utc::now()))
        {
            Ok(outcome) => {
                tracing::info!(kind = outcome.kind.as_str(), stored = ?outcome.stored, duplicate = outcome.duplicate, "inbound mail received");
                response::OK
            }
            Err(e @ super::IngestError::Unreadable(_)) => {
                tracing::warn!(error = %e, "inbound mail refused");
                reply(554, "5.6.0 message cannot be parsed")
            }
            Err(super::IngestError::Store(e)) => {
                tracing::error!(error = %format!("{e:#}"), "inbound mail not stored; the sender will retry");
                reply(451, "4.3.0 cannot store the message now, try again later")
            }
        }
    }

    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        if self.app.is_stopping() {
            return shutting_down();
        }
        response::OK
    }
}

/// Connections served at once; more wait in the kernel's backlog.
const THREADS: usize = 8;
/// A client silent this long is dropped.
const IDLE: Duration = Duration::from_secs(300);

/// Starts the listener on `bind` in its own threads; returns the bound address.
pub fn spawn(app: App, bind: &str) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(bind)
        .with_context(|| format!("inbound.smtp_bind: cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    let handler = Inbound {
        app: app.clone(),
        runtime: tokio::runtime::Handle::current(),
        data: Vec::new(),
        too_big: false,
    };
    let sessions = SessionBuilder::new(app.config.mail.reply_domain.clone());
    for i in 0..THREADS {
        let listener = listener
            .try_clone()
            .context("starting the inbound SMTP listener")?;
        let (handler, sessions) = (handler.clone(), sessions.clone());
        std::thread::Builder::new()
            .name(format!("drip-inbound-smtp-{i}"))
            .spawn(move || {
                loop {
                    match listener.accept() {
                        Ok((stream, peer)) => {
                            if let Err(e) = serve(stream, peer.ip(), &sessions, handler.clone()) {
                                tracing::debug!(%peer, error = %e, "inbound SMTP session ended");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "inbound SMTP listener: accept failed");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })
            .context("starting the inbound SMTP listener")?;
    }
    tracing::info!(%addr, "inbound SMTP listener started");
    Ok(addr)
}

/// One SMTP session, line by line through mailin, until QUIT, an error or silence.
fn serve(
    stream: TcpStream,
    remote: IpAddr,
    sessions: &SessionBuilder,
    handler: Inbound,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = BufWriter::new(stream);
    let mut session = sessions.build(remote, handler);
    let answer = |writer: &mut BufWriter<TcpStream>, reply: &Response| {
        reply.write_to(writer)?;
        writer.flush()
    };
    answer(&mut writer, &session.greeting())?;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let next = session.process(&line);
        match next.action {
            Action::Reply => answer(&mut writer, &next)?,
            Action::Close => return answer(&mut writer, &next),
            // STARTTLS is never offered, so mailin never asks for it.
            Action::UpgradeTls => {
                return answer(&mut writer, &reply(454, "4.7.0 TLS not available"));
            }
            Action::NoReply => {}
        }
    }
}
