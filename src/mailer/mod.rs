//! Building and sending mail with lettre: every header DESIGN.md lists, bodies always
//! quoted-printable, an optional DKIM signature (keys and signed headers in [`dkim`], the
//! DNS records `drip dns` prints in [`dns`]), and two transports (.eml files in the outbox
//! folder, or pooled SMTP to a relay; the pool is in [`pool`], what TLS trusts in [`tls`],
//! the relay's refusals explained in [`problem`], `drip smtp check` in [`check`]).

pub mod check;
pub mod dkim;
pub mod dns;
pub mod pool;
pub mod problem;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::Message;
use lettre::message::header::{
    self as lettre_header, ContentTransferEncoding, ContentType, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use crate::config::{self, Config};
pub use problem::{Problem, RelayProblem};

/// A mail ready to go: rendered parts and the headers that tie it to drip.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Names the .eml file in the outbox folder.
    pub file_label: String,
    pub to_name: String,
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub message_id: String,
    pub reply_to: Option<String>,
    /// (https URL, mailto URL) for List-Unsubscribe.
    pub unsubscribe: Option<(String, String)>,
    pub course: Option<String>,
    pub lesson: Option<String>,
    /// `X-Drip-Broadcast: <id>` on a broadcast's mail.
    pub broadcast: Option<i64>,
    /// A sender name in place of `[mail] from`'s (the course's, or the discreet name).
    pub from_name: Option<String>,
    /// A sender address in place of `[mail] from`'s (a course's `from = "Name <address>"`).
    pub from_address: Option<String>,
    /// `List-Id: <course-slug>.<reply_domain>`.
    pub list_id: Option<String>,
    /// An author's answer to a reader: written by a person (so no `Auto-Submitted`), and
    /// threaded under the reader's message.
    pub answer: Option<Threading>,
}

/// The thread headers of an answer: Message-IDs without angle brackets.
#[derive(Debug, Clone, Default)]
pub struct Threading {
    /// `In-Reply-To`: the message answered (None when it carried no Message-ID).
    pub in_reply_to: Option<String>,
    /// `References`: the thread so far, oldest first, ending with `in_reply_to`.
    pub references: Vec<String>,
}

/// Why a send did not happen; the sender retries `Transient` and gives up on `Permanent`.
/// `Unreachable` is no fault of the mail: the relay cannot take any mail now (no connection,
/// or it refuses drip's TLS, sign-in or settings; the [`RelayProblem`] says which and what to
/// change), so the sender hands the mail back untouched and holds the queue until the relay
/// takes mail again (see `outbox::relay`). It never counts as a bounce.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// The message could not be built (an address or header lettre refuses): the mail's
    /// fault, not the recipient's, so it never counts as a bounce.
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("{0}")]
    Unreachable(RelayProblem),
    #[error("temporary failure: {0}")]
    Transient(String),
    #[error("permanent failure {code}: {message}")]
    Permanent { code: String, message: String },
}

impl SendError {
    /// "4xx", "5xx", "connection" or "setup" (the relay refuses drip's TLS, sign-in or
    /// settings), for metrics.
    pub fn class(&self) -> &'static str {
        match self {
            SendError::Build(_) => "build",
            SendError::Permanent { .. } => "5xx",
            SendError::Transient(m) if m.starts_with('4') => "4xx",
            SendError::Unreachable(p) if !p.kind.is_connection() => "setup",
            SendError::Transient(_) | SendError::Unreachable(_) => "connection",
        }
    }
}

#[derive(Clone)]
enum Transport {
    File(PathBuf),
    Smtp(Arc<pool::SmtpPool>),
}

/// Sends mail through the configured transport. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    /// The longest one SMTP send may take. lettre bounds only the connect; a server that
    /// stops answering mid-DATA would otherwise hold a sender forever.
    send_timeout: Duration,
    from: Mailbox,
    dkim: Option<Arc<dkim::DkimSigner>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Mailer> {
        let mut mailer = Self::composer(config)?;
        mailer.transport = match config.mail.transport {
            config::Transport::File => {
                std::fs::create_dir_all(&config.mail.outbox_dir).with_context(|| {
                    format!(
                        "creating mail.outbox_dir {}",
                        config.mail.outbox_dir.display()
                    )
                })?;
                Transport::File(config.mail.outbox_dir.clone())
            }
            config::Transport::Smtp => Transport::Smtp(Arc::new(pool::SmtpPool::new(
                &config.smtp,
                pool::Dialer::new(&config.smtp)?,
            ))),
        };
        Ok(mailer)
    }

    /// A mailer that only builds messages (the check's test message): From and DKIM as
    /// configured, and a transport that is never used.
    fn composer(config: &Config) -> anyhow::Result<Mailer> {
        let from: Mailbox = config.mail.from.parse().context("mail.from")?;
        let dkim = if config.mail.dkim_key.is_empty() {
            None
        } else {
            Some(Arc::new(dkim::DkimSigner::new(
                &config.mail.dkim_key,
                &config.mail.dkim_selector,
            )?))
        };
        Ok(Mailer {
            send_timeout: Duration::from_secs(config.smtp.timeout_seconds.max(1) * 2),
            transport: Transport::File(PathBuf::new()),
            from,
            dkim,
        })
    }

    /// The message exactly as it is sent.
    pub fn build(&self, out: &Outgoing) -> anyhow::Result<Message> {
        // Names are checked at sign-up; this is the last line of defence for a header, and
        // lettre's encoder panics on a line break in a display name.
        let name: String = out.to_name.chars().filter(|c| !c.is_control()).collect();
        let to = Mailbox::new(
            Some(name).filter(|n| !n.trim().is_empty()),
            out.to
                .parse()
                .with_context(|| format!("recipient {:?}", out.to))?,
        );
        let from_address: lettre::Address = match &out.from_address {
            Some(a) => a.parse().with_context(|| format!("sender {a:?}"))?,
            None => self.from.email.clone(),
        };
        let mut builder = Message::builder()
            .from(Mailbox::new(
                out.from_name.clone().or_else(|| self.from.name.clone()),
                from_address.clone(),
            ))
            .to(to)
            .subject(out.subject.clone())
            .message_id(Some(format!("<{}>", out.message_id)))
            .date_now();
        if let Some(reply_to) = &out.reply_to {
            builder = builder.reply_to(
                reply_to
                    .parse()
                    .with_context(|| format!("Reply-To {reply_to:?}"))?,
            );
        }
        let mut raw = Vec::new();
        match &out.answer {
            // RFC 3834: what a program sends says so; what a person wrote does not.
            None => raw.push(("Auto-Submitted".to_owned(), "auto-generated".to_owned())),
            Some(thread) => {
                if let Some(id) = &thread.in_reply_to {
                    raw.push(("In-Reply-To".into(), format!("<{id}>")));
                }
                if !thread.references.is_empty() {
                    let ids: Vec<String> = thread
                        .references
                        .iter()
                        .map(|id| format!("<{id}>"))
                        .collect();
                    raw.push(("References".into(), ids.join(" ")));
                }
            }
        }
        if let Some((https, mailto)) = &out.unsubscribe {
            // One line each (no folding), as RFC 8058 one-click clients expect to read them.
            raw.push(("List-Unsubscribe".into(), format!("<{https}>,<{mailto}>")));
            raw.push((
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            ));
        }
        if let Some(list_id) = &out.list_id {
            raw.push(("List-Id".into(), format!("<{list_id}>")));
        }
        if let Some(course) = &out.course {
            raw.push(("X-Drip-Course".into(), course.clone()));
        }
        if let Some(lesson) = &out.lesson {
            raw.push(("X-Drip-Lesson".into(), lesson.clone()));
        }
        if let Some(broadcast) = out.broadcast {
            raw.push(("X-Drip-Broadcast".into(), broadcast.to_string()));
        }
        for (name, value) in raw {
            anyhow::ensure!(
                value.chars().all(|c| c.is_ascii_graphic() || c == ' '),
                "header {name} would contain a line break or non-ASCII text"
            );
            let header =
                HeaderName::new_from_ascii(name).map_err(|_| anyhow::anyhow!("bad header name"))?;
            builder = builder.raw_header(HeaderValue::dangerous_new_pre_encoded(
                header,
                value.clone(),
                value,
            ));
        }
        let qp = |text: &str| {
            Body::new_with_encoding(text.to_owned(), ContentTransferEncoding::QuotedPrintable)
                .map_err(|_| anyhow::anyhow!("cannot encode the body as quoted-printable"))
        };
        let parts = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(qp(&out.text)?),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(qp(&out.html)?),
            );
        // lettre writes a multipart's Content-Type with the parts, out of the message's own
        // headers, where its DKIM signer cannot see it. Moved up among them, it is signed
        // like every other header; the bytes sent are the same apart from a top-level
        // `Content-Transfer-Encoding: 7bit` (the parts are quoted-printable, so it holds).
        let content_type = parts
            .headers()
            .get::<ContentType>()
            .context("a multipart has a Content-Type")?;
        let formatted = parts.formatted();
        let body_at = formatted
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("a multipart has headers, then its body")?
            + 4;
        let mut message = builder
            .header(lettre_header::MIME_VERSION_1_0)
            .header(content_type)
            .body(Body::dangerous_pre_encoded(
                formatted[body_at..].to_vec(),
                ContentTransferEncoding::SevenBit,
            ))?;
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message, from_address.domain());
        }
        Ok(message)
    }

    /// Sends one mail. For the file transport, the same mail sent twice overwrites its file.
    pub async fn send(&self, out: &Outgoing) -> Result<(), SendError> {
        let message = self
            .build(out)
            .map_err(|e| SendError::Build(format!("{e:#}")))?;
        match &self.transport {
            Transport::File(dir) => {
                let name = format!("{}.eml", out.file_label);
                let tmp = dir.join(format!(".{name}.tmp"));
                let bytes = message.formatted();
                let result = async {
                    tokio::fs::write(&tmp, &bytes).await?;
                    tokio::fs::rename(&tmp, dir.join(&name)).await
                }
                .await;
                result.map_err(|e| {
                    SendError::Transient(format!("writing {}: {e}", dir.join(&name).display()))
                })
            }
            Transport::Smtp(smtp) => {
                let envelope = message.envelope();
                let bytes = message.formatted();
                match tokio::time::timeout(self.send_timeout, smtp.send(envelope, &bytes)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(pool::Error::Smtp(e))) => Err(classify(&e)),
                    Ok(Err(pool::Error::Connect(e))) => Err(SendError::Unreachable(e)),
                    Err(_) => Err(SendError::Transient(format!(
                        "no answer from the SMTP server within {}s",
                        self.send_timeout.as_secs()
                    ))),
                }
            }
        }
    }

    pub fn is_file(&self) -> bool {
        matches!(self.transport, Transport::File(_))
    }
}

/// The domain of `[mail] from`, which signs every mail whose course has no sender address
/// of its own (`drip dns` starts with it).
pub fn sending_domain(config: &Config) -> anyhow::Result<String> {
    let from: Mailbox = config.mail.from.parse().context("mail.from")?;
    Ok(from.email.domain().to_owned())
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    // A refusal that every mail would get (no sign-in, no TLS, no relaying) is the setup's.
    if let Some(p) = problem::setup_refusal(e) {
        return SendError::Unreachable(p);
    }
    let code = e.status().map(|c| c.to_string());
    let message = e.to_string();
    if e.is_permanent() {
        SendError::Permanent {
            code: code.unwrap_or_else(|| "5xx".into()),
            message,
        }
    } else {
        // 4xx replies, timeouts, refused or cut connections: all worth another try.
        SendError::Transient(match code {
            Some(c) => format!("{c} {message}"),
            None => message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing() -> Outgoing {
        Outgoing {
            file_label: "x".into(),
            to_name: "Ann\r\nBcc: victim@example.net".into(),
            to: "ann@example.com".into(),
            subject: "Lesson 2 · Start from a clean slate".into(),
            html: "<p>Hé</p>".into(),
            text: "Hé, a long line that goes on and on and on and on and on and on and on and on and on and on".into(),
            message_id: "drip.1-abc@example.org".into(),
            reply_to: Some("reply+1-abc@example.org".into()),
            unsubscribe: Some(("https://course.example.org/unsubscribe/1-abc".into(), "mailto:reply+1-abc@example.org?subject=unsubscribe".into())),
            course: Some("rebuilding-trust".into()),
            lesson: Some("a-clean-slate".into()),
            broadcast: None,
            from_name: None,
            from_address: None,
            list_id: None,
            answer: None,
        }
    }

    fn config(dkim: bool) -> Config {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
        let mut c = Config::from_toml_str(&text).unwrap();
        c.mail.outbox_dir = std::env::temp_dir().join("drip-mailer-test");
        if dkim {
            c.mail.dkim_key = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/dkim-test-key.pem"
            )
            .into();
            c.mail.dkim_selector = "drip".into();
        }
        c
    }

    #[test]
    fn a_lesson_mail_has_every_header_and_no_raw_8bit_body() {
        let m = Mailer::from_config(&config(false)).unwrap();
        let text = String::from_utf8(m.build(&outgoing()).unwrap().formatted()).unwrap();
        for header in [
            "Message-ID: <drip.1-abc@example.org>",
            "Reply-To: reply+1-abc@example.org",
            "List-Unsubscribe: <https://course.example.org/unsubscribe/1-abc>,<mailto:reply+1-abc@example.org?subject=unsubscribe>\r\n",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            "X-Drip-Course: rebuilding-trust",
            "X-Drip-Lesson: a-clean-slate",
            "Auto-Submitted: auto-generated",
        ] {
            assert!(text.contains(header), "{header} missing from\n{text}");
        }
        assert_eq!(
            text.matches("Content-Transfer-Encoding: quoted-printable")
                .count(),
            2
        );
        assert!(text.is_ascii(), "bodies are encoded, never raw 8bit");
        // A display name cannot smuggle a header in.
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }

    /// The `h=` tag of a formatted mail's DKIM-Signature, unfolded.
    fn signed_header_list(text: &str) -> String {
        let head = text.split("\r\n\r\n").next().unwrap();
        let sig = head
            .split("\r\n")
            .skip_while(|l| !l.starts_with("DKIM-Signature:"))
            .enumerate()
            .take_while(|(i, l)| *i == 0 || l.starts_with([' ', '\t']))
            .map(|(_, l)| l.trim())
            .collect::<String>();
        sig.split("h=")
            .nth(1)
            .expect("an h= tag")
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn dkim_signs_every_header_the_mail_carries_and_oversigns_the_risky_ones() {
        let m = Mailer::from_config(&config(true)).unwrap();
        let text = String::from_utf8(m.build(&outgoing()).unwrap().formatted()).unwrap();
        assert!(
            text.contains("d=example.org") && text.contains("s=drip"),
            "{text}"
        );
        assert_eq!(
            signed_header_list(&text),
            "from:reply-to:subject:date:to:message-id:mime-version:content-type:\
             list-unsubscribe:list-unsubscribe-post:\
             from:reply-to:subject:list-unsubscribe:list-unsubscribe-post"
        );
        // The multipart's Content-Type is a header of the message itself, once.
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(
            head.contains("Content-Type: multipart/alternative"),
            "{head}"
        );
        assert_eq!(text.matches("multipart/alternative").count(), 1);

        // A mail without Reply-To or List-Unsubscribe (a confirmation) signs what it has
        // and still names the missing ones, so that none can be added.
        let mut confirm = outgoing();
        confirm.reply_to = None;
        confirm.unsubscribe = None;
        let text = String::from_utf8(m.build(&confirm).unwrap().formatted()).unwrap();
        assert_eq!(
            signed_header_list(&text),
            "from:subject:date:to:message-id:mime-version:content-type:\
             from:reply-to:subject:list-unsubscribe:list-unsubscribe-post"
        );
    }

    #[test]
    fn a_course_with_a_sender_of_its_own_is_signed_for_its_domain() {
        let m = Mailer::from_config(&config(true)).unwrap();
        let mut out = outgoing();
        out.from_address = Some("desk@courses.example.net".into());
        let text = String::from_utf8(m.build(&out).unwrap().formatted()).unwrap();
        assert!(text.contains("<desk@courses.example.net>\r\n"), "{text}");
        assert!(text.contains("d=courses.example.net;"), "{text}");
        let text = String::from_utf8(m.build(&outgoing()).unwrap().formatted()).unwrap();
        assert!(text.contains("d=example.org;"), "{text}");
    }

    #[test]
    fn a_bad_dkim_key_is_a_clear_error() {
        let mut c = config(true);
        c.mail.dkim_key = "/nonexistent/key.pem".into();
        let err = Mailer::from_config(&c).unwrap_err().to_string();
        assert!(
            err.contains("[mail] dkim_key") && err.contains("/nonexistent/key.pem"),
            "{err}"
        );
    }
}
