//! Lesson Markdown to HTML and to plain text.
//!
//! The plain text is a real rendering (paragraphs wrapped by the reader's client, lists
//! with dashes, links numbered and listed at the end), not HTML with the tags stripped.
//! Raw HTML in Markdown is shown as text in both: lint refuses it, and a lesson edited
//! around lint still cannot put markup or script into a mail.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

fn parser(markdown: &str) -> impl Iterator<Item = Event<'_>> {
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_SMART_PUNCTUATION;
    Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    })
}

pub(crate) fn to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, parser(markdown));
    out
}

/// Markdown as plain text, with a numbered list of the links at the end.
pub(crate) fn to_text(markdown: &str) -> String {
    let mut w = TextWriter::default();
    for event in parser(markdown) {
        w.event(event);
    }
    w.finish()
}

#[derive(Default)]
struct TextWriter {
    out: String,
    line: String,
    links: Vec<String>,
    /// Stack of open lists: None for bullets, Some(n) for the next number.
    lists: Vec<Option<u64>>,
    quote_depth: usize,
    heading: Option<HeadingLevel>,
    heading_text: String,
    in_code: bool,
}

impl TextWriter {
    fn prefix(&self) -> String {
        "> ".repeat(self.quote_depth) + &"   ".repeat(self.lists.len().saturating_sub(1))
    }

    fn push(&mut self, text: &str) {
        if self.heading.is_some() {
            self.heading_text.push_str(text);
        } else {
            self.line.push_str(text);
        }
    }

    fn flush_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if !line.trim().is_empty() {
            let prefix = if line.starts_with(' ')
                || line.starts_with("- ")
                || line.chars().next().is_some_and(|c| c.is_ascii_digit())
            {
                "   ".repeat(self.lists.len().saturating_sub(1))
            } else {
                self.prefix()
            };
            self.out.push_str(&prefix);
            self.out.push_str(line.trim_end());
            self.out.push('\n');
        }
    }

    fn blank(&mut self) {
        self.flush_line();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(Tag::Paragraph) => {}
            Event::End(TagEnd::Paragraph) => {
                if self.lists.is_empty() {
                    self.blank()
                } else {
                    self.flush_line()
                }
            }
            Event::Start(Tag::Heading { level, .. }) => {
                self.blank();
                self.heading = Some(level);
            }
            Event::End(TagEnd::Heading(_)) => {
                let text = std::mem::take(&mut self.heading_text);
                let level = self.heading.take();
                let underline = if level == Some(HeadingLevel::H1) {
                    '='
                } else {
                    '-'
                };
                self.out.push_str(text.trim());
                self.out.push('\n');
                self.out
                    .push_str(&underline.to_string().repeat(text.trim().chars().count()));
                self.out.push_str("\n\n");
            }
            Event::Start(Tag::BlockQuote(_)) => {
                self.blank();
                self.quote_depth += 1;
            }
            Event::End(TagEnd::BlockQuote(_)) => {
                self.flush_line();
                self.quote_depth -= 1;
                self.blank();
            }
            Event::Start(Tag::List(start)) => {
                self.flush_line();
                if self.lists.is_empty() {
                    self.blank();
                }
                self.lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                self.flush_line();
                self.lists.pop();
                if self.lists.is_empty() {
                    self.blank();
                }
            }
            Event::Start(Tag::Item) => {
                self.flush_line();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => "- ".to_owned(),
                };
                self.line.push_str(&marker);
            }
            Event::End(TagEnd::Item) => self.flush_line(),
            Event::Start(Tag::CodeBlock(kind)) => {
                self.blank();
                self.in_code = true;
                let _ = matches!(kind, CodeBlockKind::Fenced(_));
            }
            Event::End(TagEnd::CodeBlock) => {
                self.in_code = false;
                self.blank();
            }
            Event::Start(Tag::Emphasis) | Event::End(TagEnd::Emphasis) => self.push("_"),
            Event::Start(Tag::Strong) | Event::End(TagEnd::Strong) => self.push("*"),
            Event::Start(Tag::Link { dest_url, .. }) => {
                self.links.push(dest_url.to_string());
            }
            Event::End(TagEnd::Link) => {
                let n = self.links.len();
                self.push(&format!(" [{n}]"));
            }
            Event::Start(Tag::Image { dest_url, .. }) => self.links.push(dest_url.to_string()),
            Event::End(TagEnd::Image) => {
                let n = self.links.len();
                self.push(&format!(" [{n}]"));
            }
            Event::Text(text) => {
                if self.in_code {
                    for (i, l) in text.split('\n').enumerate() {
                        if i > 0 {
                            self.flush_line();
                        }
                        self.line.push_str("    ");
                        self.line.push_str(l);
                    }
                } else {
                    self.push(&text)
                }
            }
            Event::Code(code) => self.push(&code),
            Event::SoftBreak => self.push(" "),
            Event::HardBreak => self.flush_line(),
            Event::Rule => {
                self.blank();
                self.out.push_str("* * *\n\n");
            }
            _ => {}
        }
    }

    fn finish(mut self) -> String {
        self.flush_line();
        let mut out = self.out.trim_end().to_owned();
        out.push('\n');
        if !self.links.is_empty() {
            out.push_str("\nLinks:\n");
            for (i, link) in self.links.iter().enumerate() {
                out.push_str(&format!("[{}] {link}\n", i + 1));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_structure_and_lists_links() {
        let md = "## Today's step\n\nWrite it **down**, then read [this](https://example.org/a).\n\n- one\n- two\n\n1. first\n2. second\n";
        let text = to_text(md);
        assert_eq!(
            text,
            "Today’s step\n------------\n\nWrite it *down*, then read this [1].\n\n- one\n- two\n\n1. first\n2. second\n\nLinks:\n[1] https://example.org/a\n"
        );
    }

    #[test]
    fn text_keeps_quote_marks_and_nested_list_indents() {
        let md = "> Trust is built in drops.\n\n- one\n  - inner\n- two\n";
        assert_eq!(
            to_text(md),
            "> Trust is built in drops.\n\n- one\n   - inner\n- two\n"
        );
    }

    #[test]
    fn raw_html_becomes_text_in_both_renderings() {
        let md = "Hello <script>alert(1)</script> there\n";
        assert!(!to_html(md).contains("<script>"));
        assert!(to_html(md).contains("&lt;script&gt;"));
        assert!(to_text(md).contains("<script>alert(1)</script>"));
    }
}
