//! Reads one raw inbound email into the facts drip acts on: who wrote, to which address, in which thread, what text, and whether a machine sent it.

mod body;
mod html;
mod report;

use std::fmt;

use mail_parser::{HeaderForm, HeaderValue, Message, MessageParser, MimeHeaders};

pub use report::DeliveryStatus;

/// One inbound message, decoded; everything here is plain owned data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboundMessage {
    /// `Message-ID` without the angle brackets.
    pub message_id: Option<String>,
    /// The first `From` address, bare and lowercased.
    pub from: Option<String>,
    /// Bare lowercased addresses from To, Cc, Delivered-To, X-Original-To and Envelope-To, first occurrence kept.
    pub recipients: Vec<String>,
    /// The decoded subject, empty when absent.
    pub subject: String,
    /// Message ids from `In-Reply-To`, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// Message ids from `References`, without angle brackets, oldest first.
    pub references: Vec<String>,
    /// The header fields that tell a machine-sent message apart.
    pub auto_headers: AutoHeaders,
    /// The body as text: the text/plain part when there is one, else the HTML turned into text with `> ` quotes.
    pub body_text: String,
    /// The RFC 3464 delivery status of a `multipart/report` bounce.
    pub dsn: Option<DeliveryStatus>,
    /// For bounces: the `Message-ID` of the returned message (from a message/rfc822 or text/rfc822-headers part), without angle brackets.
    pub original_message_id: Option<String>,
}

/// Header fields that mark auto-replies and reports (RFC 3834, RFC 6522 and vendor conventions).
///
/// Values are unfolded, trimmed and lowercased, so callers compare them directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoHeaders {
    /// `Auto-Submitted` (RFC 3834), e.g. `auto-replied` or `no`.
    pub auto_submitted: Option<String>,
    /// `X-Autoreply`, set by several vacation responders.
    pub x_autoreply: Option<String>,
    /// `X-Autorespond`, set by several vacation responders.
    pub x_autorespond: Option<String>,
    /// `Precedence`, e.g. `bulk`, `list`, `junk`, `auto_reply`.
    pub precedence: Option<String>,
    /// `X-Auto-Response-Suppress` (Exchange), e.g. `oof, autoreply` or `all`.
    pub x_auto_response_suppress: Option<String>,
    /// `Return-Path: <>`: the null sender that bounces and most auto-replies use.
    pub return_path_empty: bool,
    /// The top-level content type is `multipart/report`.
    pub is_report: bool,
    /// The `report-type` parameter of a `multipart/report`, e.g. `delivery-status`.
    pub report_type: Option<String>,
}

/// Why a raw message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The input is empty or only whitespace.
    Empty,
    /// The input has no header section, so it is not an RFC 5322 message.
    NotAMessage(String),
    /// The input is larger than the configured limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("the message is empty"),
            ParseError::NotAMessage(why) => write!(f, "not an email message: {why}"),
            ParseError::TooLarge { limit } => write!(f, "the message is larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one raw RFC 5322 message of at most `max_bytes` bytes.
///
/// Malformed MIME gives a best-effort result; only an empty, oversized or headerless input is an error.
pub fn parse_message(raw: &[u8], max_bytes: usize) -> Result<InboundMessage, ParseError> {
    if raw.len() > max_bytes {
        return Err(ParseError::TooLarge { limit: max_bytes });
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    // mail-parser aims never to panic (in debug builds one debug assertion on broken multipart
    // nesting still fires), and one bad message must not take a worker or an SMTP session down,
    // so a panic becomes a parse error.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .map_err(|_| ParseError::NotAMessage("malformed MIME structure".into()))?;
    // mail-parser reads any first line as a header name; a real one is printable ASCII without spaces.
    let is_field_name =
        |name: &str| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    let msg = match parsed {
        Some(msg) if msg.headers().iter().any(|h| is_field_name(h.name())) => msg,
        _ => return Err(ParseError::NotAMessage("no header fields".into())),
    };
    Ok(InboundMessage {
        message_id: msg.message_id().and_then(clean_id),
        from: msg
            .from()
            .and_then(|a| a.iter().find_map(|a| a.address.as_deref()))
            .and_then(bare_address),
        recipients: recipients(&msg),
        subject: msg.subject().unwrap_or_default().trim().to_string(),
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        auto_headers: auto_headers(&msg),
        body_text: body::body_text(&msg),
        dsn: report::delivery_status(&msg),
        original_message_id: report::original_message_id(&msg),
    })
}

fn recipients(msg: &Message<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // A set beside the list: a message may carry tens of thousands of addresses, and a
    // linear `contains` per address made that quadratic.
    let mut seen = std::collections::HashSet::new();
    for name in ["To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"] {
        for value in msg.header_as(name, HeaderForm::Addresses) {
            let Some(list) = value.as_address() else {
                continue;
            };
            for addr in list
                .iter()
                .filter_map(|a| a.address.as_deref())
                .filter_map(bare_address)
            {
                if seen.insert(addr.clone()) {
                    out.push(addr);
                }
            }
        }
    }
    out
}

fn bare_address(addr: &str) -> Option<String> {
    let addr = addr
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    addr.contains('@').then(|| addr.to_lowercase())
}

fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_string())
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    }
}

/// The unfolded, lowercased value of the first header field called `name` in `msg`'s top part.
fn raw_header(msg: &Message<'_>, name: &str) -> Option<String> {
    let header = msg
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))?;
    let raw = msg
        .raw_message
        .get(header.offset_start() as usize..header.offset_end() as usize)?;
    let value = String::from_utf8_lossy(raw);
    Some(
        value
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase(),
    )
}

fn auto_headers(msg: &Message<'_>) -> AutoHeaders {
    let content_type = msg.root_part().content_type();
    let is_report = content_type.is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    AutoHeaders {
        auto_submitted: raw_header(msg, "Auto-Submitted"),
        x_autoreply: raw_header(msg, "X-Autoreply"),
        x_autorespond: raw_header(msg, "X-Autorespond"),
        precedence: raw_header(msg, "Precedence"),
        x_auto_response_suppress: raw_header(msg, "X-Auto-Response-Suppress"),
        return_path_empty: raw_header(msg, "Return-Path").is_some_and(|rp| {
            rp.trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace())
                .is_empty()
        }),
        is_report,
        report_type: content_type
            .filter(|_| is_report)
            .and_then(|ct| ct.attribute("report-type"))
            .map(|t| t.trim().to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    #[test]
    fn rejects_empty_oversized_and_headerless_input() {
        assert_eq!(parse_message(b"", LIMIT), Err(ParseError::Empty));
        assert_eq!(parse_message(b" \r\n ", LIMIT), Err(ParseError::Empty));
        assert_eq!(
            parse_message(&[b'a'; 100], 10),
            Err(ParseError::TooLarge { limit: 10 })
        );
        assert!(matches!(
            parse_message(b"just some words, no header at all", LIMIT),
            Err(ParseError::NotAMessage(_))
        ));
    }

    #[test]
    fn reads_addresses_ids_and_auto_headers() {
        let raw = b"From: \"Ann\" <Ann@Example.COM>\r\nTo: reply+Tok@example.org, course@example.org\r\nDelivered-To: reply+tok@example.org\r\nX-Original-To: <other@example.org>\r\nMessage-ID: <abc@example.com>\r\nIn-Reply-To: <d42.3f9a1c@example.org>\r\nReferences: <d41.1@example.org>\r\n <d42.3f9a1c@example.org>\r\nReturn-Path: <>\r\nAuto-Submitted: Auto-Replied\r\nSubject: Re: Lesson\r\n\r\nHello\r\n";
        let msg = parse_message(raw, LIMIT).unwrap();
        assert_eq!(msg.from.as_deref(), Some("ann@example.com"));
        assert_eq!(
            msg.recipients,
            [
                "reply+tok@example.org",
                "course@example.org",
                "other@example.org"
            ]
        );
        assert_eq!(msg.message_id.as_deref(), Some("abc@example.com"));
        assert_eq!(msg.in_reply_to, ["d42.3f9a1c@example.org"]);
        assert_eq!(
            msg.references,
            ["d41.1@example.org", "d42.3f9a1c@example.org"]
        );
        assert!(msg.auto_headers.return_path_empty);
        assert_eq!(
            msg.auto_headers.auto_submitted.as_deref(),
            Some("auto-replied")
        );
        assert_eq!(msg.body_text, "Hello\n");
    }

    #[test]
    fn prefers_text_plain_but_falls_back_to_html() {
        let alt = b"From: a@example.com\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Yes</p><blockquote>Q</blockquote>\r\n--b--\r\n";
        assert_eq!(parse_message(alt, LIMIT).unwrap().body_text, "Yes\n\n> Q");
    }

    #[test]
    fn survives_deep_nesting_and_broken_mime() {
        let mut raw = String::from("From: a@example.com\r\n");
        for i in 0..5_000 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
            ));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\ndeep");
        assert!(
            parse_message(raw.as_bytes(), LIMIT)
                .unwrap()
                .body_text
                .contains("deep")
        );
        let broken = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\nContent-Transfer-Encoding: base64\r\n\r\n--x\r\nContent-Type: text/plain; charset=nope\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!*\r\n";
        assert!(parse_message(broken, LIMIT).is_ok());
    }
}
