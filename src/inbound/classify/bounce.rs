//! Recognises bounces, RFC 3464 reports and plain mailer-daemon notices alike, and reads what failed: the status, the recipient and the returned message.

use std::sync::LazyLock;

use regex::Regex;

use super::{Bounce, re};
use crate::inbound::parse::InboundMessage;

static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)undeliver|returned mail|returned to sender|delivery status notification|mail delivery (failed|failure|subsystem|system)|delivery (has )?failed|delivery failure|failure notice|could not be delivered|not delivered|nondeliverable|non-delivery|unzustellbar|nicht zustellbar|non remis|impossible de remettre|no se puede entregar|no entregado|onbestelbaar|kan niet worden bezorgd|não entregue|não é possível entregar|impossibile recapitare|non recapitabile|kunde inte levereras|ikke levert|kunne ikke leveres|warning: message .*delayed|delayed mail",
    )
});
// Not inside a dotted number such as an IP address "10.5.1.1", but fine at a sentence's end.
static ENHANCED_STATUS: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:^|[^.\d])([45]\.\d{1,3}\.\d{1,3})(?:$|[^.\d]|\.(?:$|\D))"));
static SMTP_CODE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|[^.\d])([45])\d\d(?:[ -]|$)"));
static PERMANENT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)permanent|user unknown|unknown user|no such (user|recipient|mailbox)|does not exist|address (couldn't|could not|was not) (be )?found|mailbox unavailable",
    )
});
static ADDRESS: LazyLock<Regex> =
    LazyLock::new(|| re(r"[A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"));
static MESSAGE_ID_LINE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?im)^\s*message-id:\s*<([^>\s]+)>"));

/// The bounce `msg` reports, if it is one: a failed RFC 3464 DSN, or a plain notice from a mailer daemon.
pub(super) fn bounce(msg: &InboundMessage) -> Option<Bounce> {
    let dsn = msg.dsn.as_ref();
    let local_part = msg
        .from
        .as_deref()
        .and_then(|f| f.split('@').next())
        .unwrap_or("");
    let is_bounce = match dsn {
        // A DSN that parsed speaks for itself: "delivered" is no bounce, whoever sent it.
        Some(d) => {
            matches!(d.action.as_deref(), Some("failed" | "delayed"))
                || d.status
                    .as_deref()
                    .is_some_and(|s| s.starts_with(['4', '5']))
        }
        None => {
            let daemon = local_part == "mailer-daemon" || local_part == "postmaster";
            let notice = BOUNCE_SUBJECT.is_match(&msg.subject)
                && (daemon || msg.auto_headers.return_path_empty);
            let report = msg.auto_headers.report_type.as_deref() == Some("delivery-status");
            report || local_part == "mailer-daemon" || notice
        }
    };
    if !is_bounce {
        return None;
    }
    let diagnostic = dsn.and_then(|d| d.diagnostic.as_deref()).unwrap_or("");
    let status = dsn
        .and_then(|d| d.status.clone())
        .filter(|s| s.starts_with(['4', '5']))
        .or_else(|| status_in(diagnostic))
        .or_else(|| status_in(&msg.body_text));
    let status = status.unwrap_or_else(|| {
        let delayed = dsn.is_some_and(|d| d.action.as_deref() == Some("delayed"));
        let permanent =
            !delayed && (PERMANENT.is_match(diagnostic) || PERMANENT.is_match(&msg.body_text));
        if permanent { "5.0.0" } else { "4.0.0" }.to_string()
    });
    Some(Bounce {
        hard: status.starts_with('5'),
        status,
        recipient: dsn
            .and_then(|d| d.final_recipient.clone())
            .or_else(|| failed_address_in(msg)),
        // Plain bounces often paste the returned message's header block into their text.
        original_message_id: msg.original_message_id.clone().or_else(|| {
            MESSAGE_ID_LINE
                .captures(&msg.body_text)
                .map(|c| c[1].to_string())
        }),
    })
}

/// The first enhanced status code (`5.1.1`), else the class of the first SMTP reply code (`550` gives `5.0.0`).
fn status_in(text: &str) -> Option<String> {
    if let Some(c) = ENHANCED_STATUS.captures(text) {
        return Some(c[1].to_string());
    }
    SMTP_CODE.captures(text).map(|c| format!("{}.0.0", &c[1]))
}

/// The first address in a plain bounce's text that is neither the reporting system nor the message's own recipients.
fn failed_address_in(msg: &InboundMessage) -> Option<String> {
    ADDRESS
        .find_iter(&msg.body_text)
        .map(|m| m.as_str().trim_end_matches('.').to_lowercase())
        .find(|a| {
            let local = a.split('@').next().unwrap_or("");
            local != "mailer-daemon"
                && local != "postmaster"
                && !msg.recipients.contains(a)
                && msg.from.as_ref() != Some(a)
        })
}

#[cfg(test)]
mod tests {
    use crate::inbound::classify::{Kind, classify};
    use crate::inbound::parse::{DeliveryStatus, InboundMessage};

    fn notice(from: &str, subject: &str, body: &str) -> InboundMessage {
        InboundMessage {
            from: Some(from.into()),
            subject: subject.into(),
            body_text: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_delivered_report_is_machine_mail_but_no_bounce() {
        let dsn = DeliveryStatus {
            status: Some("2.0.0".into()),
            action: Some("delivered".into()),
            ..Default::default()
        };
        let msg = InboundMessage {
            dsn: Some(dsn),
            ..notice(
                "mailer-daemon@example.net",
                "Delivery Status Notification (Success)",
                "",
            )
        };
        assert_eq!(classify(&msg), (Kind::AutoReply, None));
    }

    #[test]
    fn plain_bounces_take_their_status_from_the_text() {
        let bounce = |body: &str| {
            let msg = notice("postmaster@example.net", "Undeliverable: Lesson 3", body);
            classify(&msg).1.expect("a bounce")
        };
        let smtp = bounce("Remote server returned '550 Requested action not taken'");
        assert_eq!((smtp.status.as_str(), smtp.hard), ("5.0.0", true));
        let soft = bounce("452 Too many recipients, try later");
        assert_eq!((soft.status.as_str(), soft.hard), ("4.0.0", false));
        assert_eq!(
            bounce("Relay 10.5.1.1 said: 5.2.2 mailbox full.").status,
            "5.2.2"
        );
        let permanent = bounce("The message failed permanently.");
        assert_eq!((permanent.status.as_str(), permanent.hard), ("5.0.0", true));
        assert_eq!(bounce("Please try again later.").status, "4.0.0");
        let named = bounce("Delivery to ann@example.com failed");
        assert_eq!(named.recipient.as_deref(), Some("ann@example.com"));
    }

    #[test]
    fn a_postmaster_writing_normally_is_no_bounce() {
        let msg = notice(
            "postmaster@example.net",
            "Re: Lesson 3",
            "I am the postmaster, and a person.",
        );
        assert_eq!(classify(&msg).0, Kind::Reply);
    }
}
