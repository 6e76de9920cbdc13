//! Turns an HTML mail body into plain text in one linear pass, keeping blockquotes as `> ` lines so quote stripping still works on HTML-only replies.
//!
//! A full HTML renderer was measured to go quadratic on long runs of inline elements, which an
//! attacker controls; mail needs only line structure, quotes and entities, so this stays small.

use mail_parser::decoders::html::add_html_token;

/// Deeper quotes are still quoted; capping the prefix keeps output linear in the input.
const MAX_PREFIX_DEPTH: usize = 32;

/// Converts `html` to text: block elements end lines, `<blockquote>` content is prefixed with `> `.
pub(super) fn to_text(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut w = Writer::default();
    // Content of these elements is never shown: style sheets, scripts, the document head.
    let mut hidden: Option<&'static str> = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<'
            || !bytes
                .get(i + 1)
                .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'/' || b == b'!' || b == b'?')
        {
            let next = bytes[i + 1..]
                .iter()
                .position(|&b| b == b'<')
                .map_or(bytes.len(), |p| i + 1 + p);
            if hidden.is_none() {
                w.text(&html[i..next]);
            }
            i = next;
            continue;
        }
        if bytes[i..].starts_with(b"<!--") {
            i = find(bytes, i + 4, b"-->").map_or(bytes.len(), |p| p + 3);
            continue;
        }
        let (tag, end) = read_tag(bytes, i);
        i = end;
        if let Some(element) = hidden {
            if (tag.closing && tag.name == element) || (element == "head" && tag.name == "body") {
                hidden = None;
            }
            continue;
        }
        w.tag(&tag, &mut hidden);
    }
    w.out
}

struct Tag {
    /// Lowercased; long names are cut, which is harmless since no known tag is long.
    name: String,
    closing: bool,
    self_closing: bool,
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Reads the tag starting at `start` (a `<`), returning it and the index just after its `>`.
fn read_tag(bytes: &[u8], start: usize) -> (Tag, usize) {
    let mut i = start + 1;
    let closing = bytes.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let name_start = i;
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b':' || bytes[i] == b'-')
    {
        i += 1;
    }
    let name =
        String::from_utf8_lossy(&bytes[name_start..i.min(name_start + 16)]).to_ascii_lowercase();
    // Attribute values may contain '>', but only quotes that open a value count, so a stray
    // apostrophe cannot swallow the rest of the document.
    let mut after_equals = false;
    while i < bytes.len() {
        match bytes[i] {
            b'>' => {
                let self_closing = bytes[i - 1] == b'/';
                return (
                    Tag {
                        name,
                        closing,
                        self_closing,
                    },
                    i + 1,
                );
            }
            b'=' => after_equals = true,
            q @ (b'"' | b'\'') if after_equals => {
                i = bytes[i + 1..]
                    .iter()
                    .position(|&b| b == q)
                    .map_or(bytes.len(), |p| i + 1 + p);
                after_equals = false;
            }
            b if b.is_ascii_whitespace() => {}
            _ => after_equals = false,
        }
        i += 1;
    }
    (
        Tag {
            name,
            closing,
            self_closing: false,
        },
        bytes.len(),
    )
}

#[derive(Default)]
struct Writer {
    out: String,
    quote_depth: usize,
    pre_depth: usize,
    /// Line breaks owed before the next text: 1 ends the line, 2 leaves a blank line.
    breaks: usize,
    space: bool,
    at_line_start: bool,
    bullet: bool,
}

impl Writer {
    fn tag(&mut self, tag: &Tag, hidden: &mut Option<&'static str>) {
        match tag.name.as_str() {
            "br" => self.breaks = (self.breaks + 1).min(2),
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "dl" | "table" | "hr" => {
                self.block(2)
            }
            "div" | "tr" | "dt" | "dd" | "section" | "article" | "header" | "footer" | "center"
            | "address" | "form" | "fieldset" | "caption" => self.block(1),
            "li" => {
                self.block(1);
                self.bullet = !tag.closing;
            }
            "td" | "th" => self.space = true,
            "blockquote" => {
                self.block(2);
                self.quote_depth = if tag.closing {
                    self.quote_depth.saturating_sub(1)
                } else {
                    self.quote_depth + 1
                };
            }
            "pre" => {
                self.block(2);
                self.pre_depth = if tag.closing {
                    self.pre_depth.saturating_sub(1)
                } else {
                    self.pre_depth + 1
                };
            }
            "head" | "style" | "script" | "title" | "template" | "noscript"
                if !tag.closing && !tag.self_closing =>
            {
                *hidden = Some(match tag.name.as_str() {
                    "head" => "head",
                    "style" => "style",
                    "script" => "script",
                    "title" => "title",
                    "template" => "template",
                    _ => "noscript",
                });
            }
            _ => {}
        }
    }

    fn block(&mut self, breaks: usize) {
        self.breaks = self.breaks.max(breaks);
        self.space = false;
    }

    fn text(&mut self, raw: &str) {
        let mut rest = raw;
        while let Some(amp) = rest.find('&') {
            self.chars(&rest[..amp]);
            let after = &rest[amp + 1..];
            // An entity is `&name;` or `&#123;`; anything else is a literal ampersand.
            match after
                .char_indices()
                .take(32)
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '#'))
            {
                Some((len, ';')) if len > 0 => {
                    let mut decoded = String::new();
                    add_html_token(&mut decoded, &rest.as_bytes()[amp..amp + len + 2], false);
                    self.chars(&decoded);
                    rest = &after[len + 1..];
                }
                _ => {
                    self.chars("&");
                    rest = after;
                }
            }
        }
        self.chars(rest);
    }

    fn chars(&mut self, text: &str) {
        for c in text.chars() {
            if self.pre_depth > 0 && c == '\n' {
                self.breaks = (self.breaks + 1).min(2);
            } else if self.pre_depth == 0 && (c.is_whitespace() || c == '\u{a0}') {
                self.space = !self.at_line_start && !self.out.is_empty();
            } else {
                self.start_text();
                self.out.push(if c == '\u{a0}' { ' ' } else { c });
            }
        }
    }

    /// Emits owed line breaks, the quote prefix and a pending space before visible text.
    fn start_text(&mut self) {
        if self.breaks > 0 && !self.out.is_empty() {
            for _ in 0..self.breaks {
                self.out.push('\n');
            }
            self.at_line_start = true;
        }
        self.breaks = 0;
        if self.at_line_start || self.out.is_empty() {
            for _ in 0..self.quote_depth.min(MAX_PREFIX_DEPTH) {
                self.out.push_str("> ");
            }
            if self.bullet {
                self.out.push_str("- ");
                self.bullet = false;
            }
            self.at_line_start = false;
        } else if self.space {
            self.out.push(' ');
        }
        self.space = false;
    }
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn keeps_lines_quotes_and_entities() {
        let html = "<html><head><style>p{color:red}</style></head><body><div dir=\"ltr\">It was  fear &amp; shame.<div><br></div><div>Mostly&nbsp;fear.</div></div><br>\
            <div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon, Jan 1, 2024 at 9:00 AM Course &lt;<a href=\"mailto:course@example.org\">course@example.org</a>&gt; wrote:<br></div>\
            <blockquote style=\"margin:0 0 0 .8ex\"><div>What stops you?</div><blockquote>older</blockquote></blockquote></div></body></html>";
        assert_eq!(
            to_text(html),
            "It was fear & shame.\n\nMostly fear.\n\nOn Mon, Jan 1, 2024 at 9:00 AM Course <course@example.org> wrote:\n\n> What stops you?\n\n> > older"
        );
    }

    #[test]
    fn copes_with_broken_markup() {
        assert_eq!(
            to_text("a < b & c <b>bold</b> <x y='it>s'>z"),
            "a < b & c bold z"
        );
        assert_eq!(
            to_text("<ul><li>one</li><li>two</li></ul><pre>x\n  y</pre>"),
            "- one\n- two\n\nx\n  y"
        );
        assert_eq!(to_text("<div title=\"unterminated"), "");
        assert_eq!(to_text("<!-- never closed"), "");
    }
}
