//! Picks the readable body of a message and decodes it to plain lines: text/plain first, undoing `format=flowed`, else HTML turned into text.
//!
//! Malformed MIME is recovered where mail-parser gives up: a multipart without boundary lines
//! is read as plain text, a part whose transfer encoding was left undone (no closing
//! boundary) is decoded here, and a part whose declared charset made replacement characters of
//! valid UTF-8 is read as UTF-8.

use std::borrow::Cow;

use mail_parser::decoders::{
    base64::base64_decode, charsets::map::charset_decoder,
    quoted_printable::quoted_printable_decode,
};
use mail_parser::{Encoding, HeaderValue, Message, MessagePart, MimeHeaders, PartType};

use super::html;

/// The readable body: text/plain parts if any carry text, else the HTML parts as text.
pub(super) fn body_text(msg: &Message<'_>) -> String {
    let plain: Vec<String> = msg
        .text_bodies()
        .filter_map(|part| match &part.body {
            PartType::Text(text) => Some(plain_text(part, &recovered(msg, part, text))),
            _ => None,
        })
        .collect();
    let plain = plain.join("\n");
    if !plain.trim().is_empty() {
        return plain;
    }
    // Some clients send an empty text/plain beside the real HTML, so HTML is also the fallback.
    let html: Vec<String> = msg
        .html_bodies()
        .filter_map(|part| match &part.body {
            PartType::Html(text) => Some(html::to_text(text)),
            _ => None,
        })
        .collect();
    if !html.is_empty() {
        return html.join("\n");
    }
    // A truncated message leaves its last part unterminated, and mail-parser then files it as an
    // attachment; the first text part is still the best guess at what the person wrote.
    let text_part = |want_html: bool| {
        msg.parts.iter().find_map(|part| match &part.body {
            PartType::Text(text) if !want_html && is_plain(part) && !text.trim().is_empty() => {
                Some(plain_text(part, &recovered(msg, part, text)))
            }
            PartType::Html(text) if want_html => Some(html::to_text(text)),
            _ => None,
        })
    };
    text_part(false)
        .or_else(|| text_part(true))
        .unwrap_or(plain)
}

/// A text/plain part (or one without a type) that is not marked as an attachment; or a
/// multipart whose boundary never occurs, which mail-parser hands over as one text.
fn is_plain(part: &MessagePart<'_>) -> bool {
    let attached = part
        .content_disposition()
        .is_some_and(|d| d.is_attachment());
    !attached
        && part.content_type().is_none_or(|ct| {
            (ct.ctype().eq_ignore_ascii_case("text")
                && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain")))
                || ct.ctype().eq_ignore_ascii_case("multipart")
        })
}

/// The part's text, decoded where mail-parser could not: a transfer encoding left undone
/// because the part never ended, or UTF-8 bytes under a wrong charset label.
fn recovered<'t>(msg: &Message<'_>, part: &MessagePart<'_>, text: &'t str) -> Cow<'t, str> {
    let charset = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(str::trim);
    if part.is_encoding_problem && part.encoding == Encoding::None {
        let undone = match transfer_encoding(part).as_deref() {
            Some("base64") => base64_decode(text.trim().as_bytes()),
            Some("quoted-printable") => quoted_printable_decode(text.as_bytes()),
            _ => None,
        };
        if let Some(bytes) = undone {
            return Cow::Owned(decode(&bytes, charset));
        }
    }
    let declared_utf8 = charset.is_none_or(|c| c.eq_ignore_ascii_case("utf-8"));
    if !declared_utf8 && text.contains('\u{FFFD}') {
        let raw = msg
            .raw_message
            .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)
            .unwrap_or_default();
        let bytes = match part.encoding {
            Encoding::Base64 => base64_decode(raw),
            Encoding::QuotedPrintable => quoted_printable_decode(raw),
            Encoding::None => Some(raw.to_vec()),
        };
        if let Some(utf8) = bytes.and_then(|b| String::from_utf8(b).ok()) {
            return Cow::Owned(utf8);
        }
    }
    Cow::Borrowed(text)
}

/// The part's `Content-Transfer-Encoding`, trimmed and lowercased.
fn transfer_encoding(part: &MessagePart<'_>) -> Option<String> {
    part.headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case("Content-Transfer-Encoding"))
        .and_then(|h| match &h.value {
            HeaderValue::Text(t) => Some(t.trim().to_ascii_lowercase()),
            _ => None,
        })
}

/// `bytes` in the named charset, or as UTF-8 (lossily) when the charset is unknown.
fn decode(bytes: &[u8], charset: Option<&str>) -> String {
    match charset.and_then(|c| charset_decoder(c.as_bytes())) {
        Some(decoder) => decoder(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Normalises line ends and undoes RFC 3676 `format=flowed` soft breaks.
fn plain_text(part: &MessagePart<'_>, text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let ct = part.content_type();
    let param = |name| {
        ct.and_then(|ct| ct.attribute(name))
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if param("format").as_deref() == Some("flowed") {
        unflow(&text, param("delsp").as_deref() == Some("yes"))
    } else {
        text
    }
}

/// Joins the soft-broken lines of a `format=flowed` body (RFC 3676 section 4) into the lines the person typed.
fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The paragraph being joined: its quote depth and whether its last line was soft-broken.
    let mut open: Option<(usize, bool)> = None;
    for line in text.split('\n') {
        let depth = line.bytes().take_while(|&b| b == b'>').count();
        let content = &line[depth..];
        let content = content.strip_prefix(' ').unwrap_or(content);
        let soft = content.ends_with(' ') && content != "-- ";
        let content = if soft && delsp {
            &content[..content.len() - 1]
        } else {
            content
        };
        match open {
            Some((d, true)) if d == depth => {}
            Some(_) => {
                out.push('\n');
                push_quote_prefix(&mut out, depth);
            }
            None => push_quote_prefix(&mut out, depth),
        }
        out.push_str(content);
        open = Some((depth, soft));
    }
    out
}

fn push_quote_prefix(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push('>');
    }
    if depth > 0 {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::unflow;

    #[test]
    fn joins_flowed_lines_and_keeps_quote_depth() {
        let text = "I think \nit is fear.\n> What stops \n> you?\n>> older \n-- \nAnn";
        assert_eq!(
            unflow(text, false),
            "I think it is fear.\n> What stops you?\n>> older \n-- \nAnn"
        );
        assert_eq!(unflow("a \nb", true), "ab");
    }
}
