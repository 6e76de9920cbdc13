//! Building and sending mail with lettre: every header DESIGN.md lists, bodies always
//! quoted-printable, an optional DKIM signature, and two transports (.eml files in the
//! outbox folder, or pooled SMTP to a relay).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{self, Config};

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
}

/// Why a send did not happen; the sender retries `Transient` and gives up on `Permanent`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("temporary failure: {0}")]
    Transient(String),
    #[error("permanent failure {code}: {message}")]
    Permanent { code: String, message: String },
}

impl SendError {
    /// "4xx", "5xx" or "connection", for metrics.
    pub fn class(&self) -> &'static str {
        match self {
            SendError::Permanent { .. } => "5xx",
            SendError::Transient(m) if m.starts_with('4') => "4xx",
            SendError::Transient(_) => "connection",
        }
    }
}

#[derive(Clone)]
enum Transport {
    File(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Sends mail through the configured transport. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    /// The longest one SMTP send may take. lettre bounds only the connect; a server that
    /// stops answering mid-DATA would otherwise hold a sender forever.
    send_timeout: Duration,
    from: Mailbox,
    dkim: Option<Arc<DkimConfig>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Mailer> {
        let from: Mailbox = config.mail.from.parse().context("mail.from")?;
        let transport = match config.mail.transport {
            config::Transport::File => {
                std::fs::create_dir_all(&config.mail.outbox_dir).with_context(|| {
                    format!(
                        "creating mail.outbox_dir {}",
                        config.mail.outbox_dir.display()
                    )
                })?;
                Transport::File(config.mail.outbox_dir.clone())
            }
            config::Transport::Smtp => Transport::Smtp(smtp_transport(&config.smtp)?),
        };
        let dkim = if config.mail.dkim_key.is_empty() {
            None
        } else {
            Some(Arc::new(dkim_config(&config.mail, from.email.domain())?))
        };
        Ok(Mailer {
            send_timeout: Duration::from_secs(config.smtp.timeout_seconds.max(1) * 2),
            transport,
            from,
            dkim,
        })
    }

    /// The message exactly as it is sent.
    pub fn build(&self, out: &Outgoing) -> anyhow::Result<Message> {
        let to = Mailbox::new(
            Some(out.to_name.clone()).filter(|n| !n.trim().is_empty()),
            out.to
                .parse()
                .with_context(|| format!("recipient {:?}", out.to))?,
        );
        let mut builder = Message::builder()
            .from(self.from.clone())
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
        let mut raw = vec![("Auto-Submitted".to_owned(), "auto-generated".to_owned())];
        if let Some((https, mailto)) = &out.unsubscribe {
            // One line each (no folding), as RFC 8058 one-click clients expect to read them.
            raw.push(("List-Unsubscribe".into(), format!("<{https}>,<{mailto}>")));
            raw.push((
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            ));
        }
        if let Some(course) = &out.course {
            raw.push(("X-Drip-Course".into(), course.clone()));
        }
        if let Some(lesson) = &out.lesson {
            raw.push(("X-Drip-Lesson".into(), lesson.clone()));
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
        let message = builder.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(qp(&out.text)?),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(qp(&out.html)?),
                ),
        )?;
        let mut message = message;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(message)
    }

    /// Sends one mail. For the file transport, the same mail sent twice overwrites its file.
    pub async fn send(&self, out: &Outgoing) -> Result<(), SendError> {
        let message = self.build(out).map_err(|e| SendError::Permanent {
            code: "build".into(),
            message: format!("{e:#}"),
        })?;
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
                match tokio::time::timeout(self.send_timeout, smtp.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(classify(&e)),
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

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
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

fn smtp_transport(smtp: &config::Smtp) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let tls_params = || TlsParameters::new(smtp.host.clone()).context("smtp.host: TLS parameters");
    let tls = match smtp.tls {
        config::Tls::None => Tls::None,
        config::Tls::Starttls => Tls::Required(tls_params()?),
        config::Tls::Tls => Tls::Wrapper(tls_params()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(smtp.timeout_seconds)))
        .pool_config(
            PoolConfig::new()
                .max_size(smtp.pool_size)
                .idle_timeout(Duration::from_secs(60)),
        );
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.clone(),
        ));
    }
    Ok(builder.build())
}

fn dkim_config(mail: &config::Mail, domain: &str) -> anyhow::Result<DkimConfig> {
    let pem = std::fs::read_to_string(&mail.dkim_key)
        .with_context(|| format!("mail.dkim_key: cannot read {:?}", mail.dkim_key))?;
    let key = if pem.contains("BEGIN RSA PRIVATE KEY") {
        DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
    } else {
        DkimSigningKey::new(pem.trim(), DkimSigningAlgorithm::Ed25519)
    }
    .map_err(|e| {
        anyhow::anyhow!("mail.dkim_key: not a PKCS#1 RSA PEM or base64 Ed25519 key: {e}")
    })?;
    let headers = [
        "From",
        "Subject",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ]
    .into_iter()
    .map(|h| HeaderName::new_from_ascii(h.to_owned()).expect("ascii"))
    .collect();
    Ok(DkimConfig::new(
        mail.dkim_selector.clone(),
        domain.to_owned(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}
