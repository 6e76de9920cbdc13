//! Reads the machine-readable parts of a bounce: the RFC 3464 delivery status and the id of the returned message.

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::clean_id;

/// The per-recipient fields of an RFC 3464 `message/delivery-status` part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: Option<String>,
    /// The action, lowercased: `failed`, `delayed`, `delivered`, `relayed` or `expanded`.
    pub action: Option<String>,
    /// The bare, lowercased address that could not be reached.
    pub final_recipient: Option<String>,
    /// The remote server's words, e.g. `550 5.1.1 User unknown`.
    pub diagnostic: Option<String>,
}

/// The first `message/delivery-status` part of `msg`, if any.
///
/// The part type itself is unambiguous, so it is honoured even when a sloppy MTA puts it in
/// something other than `multipart/report`.
pub(super) fn delivery_status(msg: &Message<'_>) -> Option<DeliveryStatus> {
    msg.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let sub = ct.subtype()?.to_ascii_lowercase();
        let is_status = ct.ctype().eq_ignore_ascii_case("message")
            && (sub == "delivery-status" || sub == "global-delivery-status");
        if !is_status {
            return None;
        }
        parse_status(&part_text(part)?)
    })
}

/// The `Message-ID` of the first returned message: a `message/rfc822` part or an `rfc822-headers` part.
pub(super) fn original_message_id(msg: &Message<'_>) -> Option<String> {
    msg.parts.iter().find_map(|part| {
        if let PartType::Message(inner) = &part.body {
            return inner.message_id().and_then(clean_id);
        }
        let ct = part.content_type()?;
        let sub = ct.subtype()?.to_ascii_lowercase();
        if sub != "rfc822-headers" && sub != "rfc822" && sub != "global-headers" {
            return None;
        }
        // Reached when the returned message was too deeply nested or too broken to parse as a
        // message: its header block still names it.
        let text = part_text(part)?;
        MessageParser::default()
            .parse_headers(text.as_bytes())?
            .message_id()
            .and_then(clean_id)
    })
}

fn part_text(part: &MessagePart<'_>) -> Option<String> {
    match &part.body {
        PartType::Text(text) | PartType::Html(text) => Some(text.to_string()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        _ => None,
    }
}

/// Parses the field groups of a delivery-status body and keeps the first recipient group that says something.
fn parse_status(text: &str) -> Option<DeliveryStatus> {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.replace("\r\n", "\n").split('\n') {
        if line.trim().is_empty() {
            if groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
        } else if line.starts_with([' ', '\t']) {
            // A folded continuation of the previous field.
            if let Some((_, value)) = groups.last_mut().and_then(|g| g.last_mut()) {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            groups
                .last_mut()?
                .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    // The first group is per-message (Reporting-MTA…); recipient groups carry Status or Action.
    let group = groups
        .iter()
        .find(|g| g.iter().any(|(n, _)| n == "status" || n == "action"))?;
    let field = |name: &str| {
        group
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    // "rfc822; ann@example.com" and "smtp; 550 …" carry a type before the semicolon.
    let typed = |v: &str| {
        v.split_once(';')
            .map_or(v, |(_, rest)| rest)
            .trim()
            .to_string()
    };
    let address = |v: &str| {
        typed(v)
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase()
    };
    Some(DeliveryStatus {
        status: field("status")
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_string),
        action: field("action")
            .and_then(|a| a.split_whitespace().next())
            .map(str::to_ascii_lowercase),
        final_recipient: field("final-recipient")
            .or(field("original-recipient"))
            .map(address)
            .filter(|a| !a.is_empty()),
        diagnostic: field("diagnostic-code")
            .map(typed)
            .filter(|d| !d.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn reads_the_recipient_group_with_folded_fields() {
        let text = "Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Mon, 1 Jan 2024\r\n\r\nFinal-Recipient: rfc822; <Ann@Example.NET>\r\nAction: Failed\r\nStatus: 5.1.1 (bad mailbox)\r\nDiagnostic-Code: smtp; 550 5.1.1 <ann@example.net>:\r\n  user unknown\r\n";
        let status = parse_status(text).unwrap();
        assert_eq!(status.status.as_deref(), Some("5.1.1"));
        assert_eq!(status.action.as_deref(), Some("failed"));
        assert_eq!(status.final_recipient.as_deref(), Some("ann@example.net"));
        assert_eq!(
            status.diagnostic.as_deref(),
            Some("550 5.1.1 <ann@example.net>: user unknown")
        );
    }

    #[test]
    fn gives_nothing_without_status_or_action() {
        assert_eq!(parse_status("Reporting-MTA: dns; mx.example.net\n"), None);
        assert_eq!(parse_status(""), None);
    }
}
