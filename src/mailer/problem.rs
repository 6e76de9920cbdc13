//! Why the relay takes no mail at all, in words an operator can act on.
//!
//! These are never one mail's fault: the relay is down, or it refuses drip's TLS or sign-in,
//! or drip's settings do not match it. The sender holds the whole queue for them (see
//! `outbox::relay`): no retry is spent, no bounce is counted, no subscriber is marked. Each
//! one is a single line that says what happened and which setting to change, for the log,
//! `/metrics`, `drip smtp check` and the admin's statistics page.

use lettre::transport::smtp::Error as SmtpError;

/// The kind of problem, for metrics and for tests; the text is in [`RelayProblem::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// No connection: refused, timed out, unknown host, closed before a greeting.
    Unreachable,
    /// Connected, but no usable SMTP greeting (wrong port, or implicit TLS expected).
    Greeting,
    /// The TLS handshake failed for a reason other than the certificate.
    Tls,
    /// The relay's certificate did not verify.
    Certificate,
    /// `tls = "starttls"` and the relay does not offer STARTTLS.
    NoStarttls,
    /// The relay offers no AUTH mechanism drip speaks (PLAIN, LOGIN).
    AuthMechanism,
    /// The relay refused the user name or password.
    AuthRejected,
    /// The relay wants a sign-in or TLS that drip did not do, or will not relay for drip.
    Refused,
}

impl Problem {
    /// The `kind` label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Problem::Unreachable => "unreachable",
            Problem::Greeting => "greeting",
            Problem::Tls => "tls",
            Problem::Certificate => "certificate",
            Problem::NoStarttls => "no_starttls",
            Problem::AuthMechanism => "auth_mechanism",
            Problem::AuthRejected => "auth_rejected",
            Problem::Refused => "refused",
        }
    }

    /// True when the relay could not be reached at all (an outage more than a setting).
    pub(crate) fn is_connection(self) -> bool {
        matches!(self, Problem::Unreachable | Problem::Greeting)
    }
}

/// One line: what happened, then what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayProblem {
    pub kind: Problem,
    pub message: String,
}

impl std::fmt::Display for RelayProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl RelayProblem {
    pub fn new(kind: Problem, message: impl Into<String>) -> RelayProblem {
        RelayProblem {
            kind,
            message: message.into(),
        }
    }
}

/// The server's reply in an error, as "535 5.7.8 Authentication credentials invalid".
pub(crate) fn reply_text(e: &SmtpError) -> String {
    // lettre prints "permanent error (535): 5.7.8 Authentication credentials invalid".
    let text = e.to_string();
    let detail = text
        .split_once("): ")
        .map(|(_, d)| d.to_owned())
        .unwrap_or_else(|| text.clone());
    match e.status() {
        Some(code) => format!("{code} {}", detail.trim()),
        None => detail.trim().to_owned(),
    }
}

/// A refusal in the middle of a mail (MAIL, RCPT or DATA) that would be the same for every
/// mail: the relay wants a sign-in or TLS, or refuses to relay for drip, or will not let this
/// user send as `[mail] from`. None for everything else (a refused recipient is that mail's).
pub(crate) fn setup_refusal(e: &SmtpError) -> Option<RelayProblem> {
    let code = e.status()?.to_string();
    let reply = reply_text(e);
    let lower = reply.to_ascii_lowercase();
    let wants_tls = lower.contains("starttls") || lower.contains("tls first");
    let message = if code == "530" && wants_tls {
        format!(
            "the relay requires TLS before mail ({reply}); set [smtp] tls = \"starttls\" (port 587) or \"tls\" (port 465)"
        )
    } else if code == "530"
        || (lower.contains("5.7.0") && lower.contains("auth"))
        || lower.contains("authentication required")
    {
        format!(
            "the relay requires a sign-in ({reply}); set [smtp] username and password (DRIP_SMTP__PASSWORD)"
        )
    } else if code == "535" {
        format!(
            "the relay refused the user name or password ({reply}); check [smtp] username/password"
        )
    } else if lower.contains("relay")
        && (lower.contains("denied") || lower.contains("not permitted"))
    {
        format!(
            "the relay will not relay drip's mail ({reply}); sign in with [smtp] username/password, or allow drip's address on the relay"
        )
    } else if lower.contains("sendasdenied") || lower.contains("not owned by user") {
        format!(
            "the relay does not let this user send as [mail] from ({reply}); set [mail] from to an address the relay allows for [smtp] username"
        )
    } else {
        return None;
    };
    let kind = if code == "535" {
        Problem::AuthRejected
    } else {
        Problem::Refused
    };
    Some(RelayProblem::new(kind, message))
}

/// The rustls error somewhere in an error's chain (lettre wraps it in an I/O error).
pub(crate) fn rustls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r);
        }
        next = err.source();
    }
    None
}

/// A failed TLS handshake with `host:port`, explained.
pub(crate) fn tls_failure(
    error: &rustls::Error,
    server: &str,
    host: &str,
    implicit: bool,
) -> RelayProblem {
    use rustls::CertificateError as C;
    let certificate = |why: String, fix: &str| {
        RelayProblem::new(
            Problem::Certificate,
            format!("the certificate of {server} does not verify: {why}; {fix}"),
        )
    };
    let trust = "set [smtp] ca_file to the PEM file of the CA that signed it (or, for a relay with a public certificate, fix its chain)";
    match error {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => certificate(
                "it is signed by a CA that drip does not trust (not in the system's store nor the built-in roots)".into(),
                trust,
            ),
            C::BadSignature => certificate(
                "its signature does not match the CA it names".into(),
                trust,
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                let presented = match c {
                    C::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
                        format!(" (it is for {})", presented.join(", "))
                    }
                    _ => String::new(),
                };
                certificate(
                    format!("it is not valid for the name {host:?}{presented}"),
                    "set [smtp] host to a name the certificate lists",
                )
            }
            C::Expired | C::ExpiredContext { .. } => certificate(
                "it has expired".into(),
                "the relay's certificate must be renewed (check the relay's clock too)",
            ),
            C::NotValidYet | C::NotValidYetContext { .. } => certificate(
                "it is not valid yet".into(),
                "check the clock of this machine and of the relay",
            ),
            C::Revoked => certificate(
                "it was revoked".into(),
                "the relay needs a new certificate",
            ),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => certificate(
                "it is not a certificate for a TLS server".into(),
                "the relay needs a server certificate (extended key usage serverAuth)",
            ),
            other => {
                let text = format!("{other:?}");
                if text.contains("CaUsedAsEndEntity") {
                    certificate(
                        "the relay presents a CA certificate as its own server certificate".into(),
                        "give the relay a server certificate signed by that CA, and put the CA in [smtp] ca_file",
                    )
                } else {
                    certificate(text, trust)
                }
            }
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } | rustls::Error::InappropriateHandshakeMessage { .. } if implicit => RelayProblem::new(
            Problem::Tls,
            format!(
                "{server} does not speak TLS from the start ({error}); for a port that expects STARTTLS (587 or 25) set [smtp] tls = \"starttls\""
            ),
        ),
        other => RelayProblem::new(
            Problem::Tls,
            format!(
                "the TLS handshake with {server} failed ({other}); check [smtp] tls and port (\"starttls\" on 587, \"tls\" on 465)"
            ),
        ),
    }
}

/// Why opening a session failed, from lettre's error at one step of it.
pub(crate) fn at_step(
    step: Step,
    e: &SmtpError,
    server: &str,
    host: &str,
    encrypted: bool,
) -> RelayProblem {
    if let Some(tls) = rustls_error(e) {
        return tls_failure(tls, server, host, step == Step::Connect);
    }
    let reply = reply_text(e);
    match step {
        Step::Connect | Step::Greeting if e.is_timeout() => RelayProblem::new(
            Problem::Greeting,
            format!(
                "{server} sent no SMTP greeting in time; if that port speaks TLS from the start (465), set [smtp] tls = \"tls\""
            ),
        ),
        Step::Connect | Step::Greeting if e.status().is_some() => RelayProblem::new(
            Problem::Refused,
            format!(
                "{server} refused the session ({reply}); check that the relay accepts connections from this machine"
            ),
        ),
        Step::Connect => RelayProblem::new(
            Problem::Unreachable,
            format!(
                "cannot connect to {server} ({reply}); check [smtp] host and port, and that the relay is running"
            ),
        ),
        Step::Greeting => RelayProblem::new(
            Problem::Greeting,
            format!(
                "{server} did not greet or answer EHLO as an SMTP server ({reply}); check [smtp] port and tls"
            ),
        ),
        Step::Ehlo => RelayProblem::new(
            Problem::Greeting,
            format!(
                "{server} greeted but did not answer EHLO again ({reply}); check that the relay is healthy, or set [smtp] pipelining = false (drip asks EHLO once more only to learn whether it offers PIPELINING)"
            ),
        ),
        Step::Starttls => RelayProblem::new(
            Problem::Tls,
            format!("STARTTLS with {server} failed ({reply}); check [smtp] tls and port"),
        ),
        Step::Auth if e.status().is_some_and(|c| c.to_string() == "535") => RelayProblem::new(
            Problem::AuthRejected,
            format!(
                "the relay refused the user name or password ({reply}); check [smtp] username/password"
            ),
        ),
        Step::Auth
            if e.status().is_some_and(|c| c.to_string() == "538")
                || (!encrypted && e.status().is_some()) =>
        {
            RelayProblem::new(
                Problem::AuthRejected,
                format!(
                    "the relay refused to sign in without TLS ({reply}); set [smtp] tls = \"starttls\" (port 587) or \"tls\" (port 465)"
                ),
            )
        }
        Step::Auth if e.status().is_some() => RelayProblem::new(
            Problem::AuthRejected,
            format!(
                "the relay refused the sign-in ({reply}); check [smtp] username/password and that the account may send mail"
            ),
        ),
        Step::Auth => RelayProblem::new(
            Problem::AuthRejected,
            format!("signing in to {server} failed ({reply})"),
        ),
    }
}

/// The steps of opening a session, for [`at_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// TCP (and, for implicit TLS, the handshake, the greeting and EHLO: lettre does them in one).
    Connect,
    Greeting,
    /// drip's own EHLO after lettre's, to read the extensions (PIPELINING) lettre drops.
    Ehlo,
    Starttls,
    Auth,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_from_an_unknown_ca_names_ca_file() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let p = tls_failure(&e, "relay.example.org:587", "relay.example.org", false);
        assert_eq!(p.kind, Problem::Certificate);
        assert!(p.message.contains("[smtp] ca_file"), "{p}");
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let p = tls_failure(&e, "relay.example.org:587", "relay.example.org", false);
        assert!(p.message.contains("expired"), "{p}");
    }
}
