//! `drip smtp check`: open a session with the configured relay step by step, as the sender
//! does, saying what each step saw (greeting, EHLO extensions, the certificate, the AUTH
//! mechanism), optionally send a real test message, and end with one line: it works, or
//! what to change.

use chrono::Utc;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};

use super::pool::{Dialer, Seen, extensions};
use super::problem::{self, Problem};
use super::{Mailer, Outgoing};
use crate::config::{self, Config};

/// One printed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// false: this step failed (the last line then says what to change).
    pub ok: bool,
    pub step: &'static str,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark} {:<9} {}", self.step, self.text)
    }
}

/// Every step, and the verdict.
#[derive(Debug, Clone)]
pub struct Report {
    pub lines: Vec<Line>,
    pub ok: bool,
    /// One line: "works: …", or what to change.
    pub verdict: String,
}

/// Runs the check with `config`'s [smtp] settings (whatever `[mail] transport` says), sending
/// a test message to `to` when given. `print` hears of each step as it happens. The result is
/// also kept as this process's last check (`/metrics`, the admin's statistics page).
pub async fn run(config: &Config, to: Option<&str>, mut print: impl FnMut(&Line) + Send) -> Report {
    let mut lines = Vec::new();
    let mut say = |ok: bool, step: &'static str, text: String| {
        let line = Line { ok, step, text };
        print(&line);
        lines.push(line);
    };
    let verdict = steps(config, to, &mut say).await;
    let report = Report {
        ok: verdict.is_ok(),
        verdict: match verdict {
            Ok(v) => v,
            Err(v) => v,
        },
        lines,
    };
    crate::metrics::set_last_check(crate::metrics::LastCheck {
        at: Utc::now(),
        ok: report.ok,
        steps: report.lines.iter().map(|l| l.to_string()).collect(),
        verdict: report.verdict.clone(),
    });
    report
}

type Say<'a> = dyn FnMut(bool, &'static str, String) + Send + 'a;

async fn steps(config: &Config, to: Option<&str>, say: &mut Say<'_>) -> Result<String, String> {
    let smtp = &config.smtp;
    let local = config.is_local();
    if let Err((key, message)) = smtp.check(local) {
        let text = format!("{key} {message}");
        say(false, "settings", text.clone());
        return Err(text);
    }
    let dialer = match Dialer::new(smtp) {
        Ok(d) => d,
        Err(e) => {
            let text = format!("{e:#}");
            say(false, "settings", text.clone());
            return Err(text);
        }
    };
    let mode = match smtp.tls {
        config::Tls::None => "no TLS",
        config::Tls::Starttls => "STARTTLS",
        config::Tls::Tls => "TLS from the start",
    };
    let trust = &dialer.trust;
    let trusts = if smtp.tls == config::Tls::None {
        String::new()
    } else if !trust.verify {
        "; certificates NOT verified (tls_verify = false)".into()
    } else {
        format!(
            "; trusting {} system CAs, the built-in web roots{}",
            trust.system,
            if trust.ca_file > 0 {
                format!(" and {} from {}", trust.ca_file, smtp.ca_file)
            } else {
                String::new()
            }
        )
    };
    let user = if smtp.username.is_empty() {
        "no sign-in".to_owned()
    } else {
        format!("sign in as {}", smtp.username)
    };
    say(
        true,
        "settings",
        format!("{} with {mode}, {user}{trusts}", dialer.server()),
    );

    let mut seen_lines: Vec<(bool, &'static str, String)> = Vec::new();
    let opened = {
        let mut on_seen = |s: Seen| seen_lines.push(describe(s));
        let watcher: &mut (dyn FnMut(Seen) + Send) = &mut on_seen;
        dialer.open(Some(watcher)).await
    };
    for (ok, step, text) in seen_lines {
        say(ok, step, text);
    }
    let mut conn = match opened {
        Ok(session) => session.conn,
        Err(p) => {
            let step = match p.kind {
                Problem::Unreachable => "connect",
                Problem::Greeting => "greeting",
                Problem::Tls | Problem::Certificate | Problem::NoStarttls => "TLS",
                Problem::AuthMechanism | Problem::AuthRejected => "AUTH",
                Problem::Refused => "session",
            };
            say(false, step, p.message.clone());
            if p.kind == Problem::Certificate {
                show_unverified_certificate(smtp, say).await;
            }
            return Err(p.message);
        }
    };
    let how = format!(
        "{}{}",
        match smtp.tls {
            config::Tls::None => "without TLS",
            config::Tls::Starttls => "over STARTTLS",
            config::Tls::Tls => "over TLS",
        },
        if smtp.username.is_empty() {
            String::new()
        } else {
            format!(" as {}", smtp.username)
        }
    );
    let result = match to {
        None => Ok(format!(
            "works: drip can hand mail to {} {how} (add --to EMAIL to send a test message)",
            dialer.server()
        )),
        Some(to) => match test_message(config, &mut conn, to, say).await {
            Ok(reply) => Ok(format!(
                "works: the test message to {to} was accepted by {} {how} ({reply})",
                dialer.server()
            )),
            Err(e) => Err(e),
        },
    };
    let _ = tokio::time::timeout(dialer.timeout(), conn.quit()).await;
    result
}

fn describe(s: Seen) -> (bool, &'static str, String) {
    match s {
        Seen::Connected {
            server,
            implicit_tls: true,
        } => (
            true,
            "connect",
            format!("{server}: TCP and TLS up; greeting and EHLO read over TLS"),
        ),
        Seen::Connected { server, .. } => (true, "connect", format!("{server}: TCP up")),
        Seen::Greeting(text) => (true, "greeting", text),
        Seen::Ehlo { lines } => (
            true,
            "EHLO",
            format!(
                "{}; offers {}",
                lines.first().map(String::as_str).unwrap_or(""),
                extensions(&lines)
            ),
        ),
        Seen::Encrypted {
            certificate,
            verified,
            starttls,
        } => {
            let step = if starttls { "STARTTLS" } else { "TLS" };
            let how = if verified {
                "certificate verified"
            } else {
                "certificate NOT verified (tls_verify = false)"
            };
            let cert = certificate
                .map(|c| format!("{how}: {c}"))
                .unwrap_or_else(|| format!("{how}; not readable"));
            (true, step, format!("encrypted; {cert}"))
        }
        Seen::SignedIn { mechanism, user } => (
            true,
            "AUTH",
            format!("signed in as {user} with {mechanism}"),
        ),
        Seen::NoAuth => (true, "AUTH", "not used ([smtp] username is empty)".into()),
    }
}

/// After a certificate failed to verify: connect once more without checking it, only to show
/// what the relay presents. Nothing is sent on that connection (no AUTH, no mail).
async fn show_unverified_certificate(smtp: &config::Smtp, say: &mut Say<'_>) {
    let Ok(params) = super::tls::unverified(smtp) else {
        return;
    };
    let mut look = smtp.clone();
    look.username.clear();
    look.password.clear();
    let dialer = Dialer::with_parameters(&look, Some(params), Default::default());
    let mut cert = None;
    let opened = {
        let mut on_seen = |s: Seen| {
            if let Seen::Encrypted { certificate, .. } = s {
                cert = certificate;
            }
        };
        let watcher: &mut (dyn FnMut(Seen) + Send) = &mut on_seen;
        dialer.open(Some(watcher)).await
    };
    if let Ok(mut session) = opened {
        session.conn.abort().await;
    }
    if let Some(c) = cert {
        say(false, "TLS", format!("the relay presents: {c}"));
    }
}

/// MAIL, RCPT, DATA with a real message; the server's last reply.
async fn test_message(
    config: &Config,
    conn: &mut AsyncSmtpConnection,
    to: &str,
    say: &mut Say<'_>,
) -> Result<String, String> {
    let fail = |say: &mut Say<'_>, step: &'static str, text: String| {
        say(false, step, text.clone());
        Err(text)
    };
    let composer = match Mailer::composer(config) {
        Ok(m) => m,
        Err(e) => return fail(say, "message", format!("{e:#}")),
    };
    let now = Utc::now();
    let out = Outgoing {
        file_label: "smtp-check".into(),
        to_name: String::new(),
        to: to.to_owned(),
        subject: "drip smtp check".into(),
        text: format!(
            "This is a test message from `drip smtp check`, sent at {} through {}:{}.\n\nIt works: drip can hand mail to this relay.\n",
            now.to_rfc3339(),
            config.smtp.host,
            config.smtp.port
        ),
        html: format!(
            "<p>This is a test message from <code>drip smtp check</code>, sent at {} through {}:{}.</p><p>It works: drip can hand mail to this relay.</p>",
            now.to_rfc3339(),
            config.smtp.host,
            config.smtp.port
        ),
        message_id: format!(
            "drip.check-{}-{:08x}@{}",
            now.timestamp(),
            rand::random::<u32>(),
            config.mail.reply_domain
        ),
        reply_to: None,
        unsubscribe: None,
        course: None,
        lesson: None,
        broadcast: None,
        from_name: None,
        from_address: None,
        list_id: None,
        answer: None,
    };
    let message = match composer.build(&out) {
        Ok(m) => m,
        Err(e) => {
            return fail(
                say,
                "message",
                format!("cannot build the test message: {e:#}"),
            );
        }
    };
    let envelope = message.envelope();
    let timeout = std::time::Duration::from_secs(config.smtp.timeout_seconds.max(1));
    let refused = |e: &lettre::transport::smtp::Error, what: &str| {
        problem::setup_refusal(e)
            .map(|p| p.message)
            .unwrap_or_else(|| format!("the relay refused {what} ({})", problem::reply_text(e)))
    };
    let from = envelope.from().cloned();
    let sender = from.as_ref().map(|a| a.to_string()).unwrap_or_default();
    match tokio::time::timeout(timeout, conn.command(Mail::new(from, vec![]))).await {
        Ok(Ok(r)) => say(true, "MAIL", format!("FROM:<{sender}> {}", reply_of(&r))),
        Ok(Err(e)) => {
            return fail(
                say,
                "MAIL",
                refused(&e, &format!("the sender <{sender}> ([mail] from)")),
            );
        }
        Err(_) => return fail(say, "MAIL", "no answer to MAIL FROM in time".into()),
    }
    for rcpt in envelope.to() {
        match tokio::time::timeout(timeout, conn.command(Rcpt::new(rcpt.clone(), vec![]))).await {
            Ok(Ok(r)) => say(true, "RCPT", format!("TO:<{rcpt}> {}", reply_of(&r))),
            Ok(Err(e)) => {
                return fail(say, "RCPT", refused(&e, &format!("the recipient <{rcpt}>")));
            }
            Err(_) => return fail(say, "RCPT", "no answer to RCPT TO in time".into()),
        }
    }
    match tokio::time::timeout(timeout, conn.command(Data)).await {
        Ok(Ok(r)) => say(true, "DATA", reply_of(&r)),
        Ok(Err(e)) => return fail(say, "DATA", refused(&e, "DATA")),
        Err(_) => return fail(say, "DATA", "no answer to DATA in time".into()),
    }
    let bytes = message.formatted();
    match tokio::time::timeout(timeout * 2, conn.message(&bytes)).await {
        Ok(Ok(r)) => {
            let reply = reply_of(&r);
            say(
                true,
                "message",
                format!(
                    "{} bytes, Message-ID <{}>: {reply}",
                    bytes.len(),
                    out.message_id
                ),
            );
            Ok(reply)
        }
        Ok(Err(e)) => fail(say, "message", refused(&e, "the test message")),
        Err(_) => fail(say, "message", "no answer after the message in time".into()),
    }
}

fn reply_of(r: &lettre::transport::smtp::response::Response) -> String {
    let text: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), text.join(" / "))
}
