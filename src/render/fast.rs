//! Lesson mails rendered once per lesson revision, then per subscriber by substitution (and
//! a broadcast's mails the same way, once per broadcast).
//!
//! The full pipeline (the body's minijinja template, Markdown to HTML and to text, the
//! layout, CSS inlining) costs about 80 µs a mail, most of it parsing and inlining the same
//! HTML again. Only six values differ between two subscribers' copies of one lesson: the
//! first name, address and time zone, and the three links. So a lesson is rendered once with
//! a placeholder word in each of those places, cut into pieces at the placeholders, and a
//! mail is those pieces with the subscriber's values put in.
//!
//! That gives the same bytes as the full pipeline only for values the pipeline passes
//! through unchanged, so each value is checked against what the place it lands in does to
//! text (Markdown escapes, smart punctuation, HTML escaping); a value that fails (a name
//! like "O'Brien", say) sends that one mail through the full pipeline. A lesson that uses a
//! subscriber value in a way substitution cannot follow (in an `{% if %}`, through a filter,
//! in a heading whose underline has the text's length) is detected when it is compiled, by
//! rendering it a second time with placeholders of other lengths and comparing, and then
//! always takes the full pipeline.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use pulldown_cmark::{Event, Options, Parser, Tag};

use super::{CourseVars, Links, MailContext, RenderedMail, SubscriberVars};
use crate::curriculum::LessonContent;
use crate::render::LessonVars;

/// The values that differ per subscriber, in the order of [`values`].
const SLOTS: usize = 6;

/// Two placeholder sets: letters and digits only (Markdown, HTML and CSS inlining leave them
/// alone), unlike any real text, and of different lengths from each other.
const PLACEHOLDERS: [[&str; SLOTS]; 2] = [
    [
        "Qx7fnZdrip0",
        "Qx7emZdrip1",
        "Qx7tzZdrip2",
        "Qx7unZdrip3",
        "Qx7prZdrip4",
        "Qx7joZdrip5",
    ],
    [
        "Wv3firstnameKdripslotA",
        "Wv3emailaddressKdripslotB",
        "Wv3timezoneKdripslotC",
        "Wv3unsubscribeKdripslotDD",
        "Wv3preferencesKdripslotEEE",
        "Wv3journalKdripslotFFFF",
    ],
];

fn values(ctx: &MailContext) -> [&str; SLOTS] {
    [
        &ctx.subscriber.first_name,
        &ctx.subscriber.email,
        &ctx.subscriber.timezone,
        &ctx.links.unsubscribe,
        &ctx.links.preferences,
        &ctx.links.journal,
    ]
}

fn placeholder_context(set: usize, course: &CourseVars) -> MailContext {
    let p = PLACEHOLDERS[set];
    MailContext {
        subscriber: SubscriberVars {
            first_name: p[0].into(),
            email: p[1].into(),
            timezone: p[2].into(),
        },
        course: course.clone(),
        links: Links {
            unsubscribe: p[3].into(),
            preferences: p[4].into(),
            journal: p[5].into(),
        },
    }
}

/// Where a value lands, from the most to the least demanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    /// Only in the layout templates (HTML-escaped, then reparsed by the inliner).
    Layout,
    /// In the lesson's Markdown, as ordinary text: drip's formatter backslash-escapes
    /// punctuation, which Markdown then shows as is.
    BodyText,
    /// A link's target and nowhere stricter: escapes are read, then the URL is
    /// percent-encoded.
    LinkTarget,
    /// In the lesson's Markdown where backslash escapes are not read (code, raw HTML) or
    /// where URLs are percent-encoded (link targets).
    BodyOther,
}

impl Place {
    /// Whether `value` comes out of this place exactly as it went in.
    fn passes(self, value: &str) -> bool {
        let layout_ok = |c: char| {
            !c.is_control()
                && !c.is_whitespace()
                && !matches!(c, '&' | '<' | '>' | '"' | '\'' | '\\')
        };
        if self == Place::Layout {
            return !value.is_empty() && value.chars().all(layout_ok);
        }
        // Markdown: a value that starts with a letter and ends with a letter or digit
        // cannot open or close a list item, a heading or emphasis next to the template's
        // text, and without "--" and ".." smart punctuation finds nothing to change.
        let (Some(first), Some(last)) = (value.chars().next(), value.chars().last()) else {
            return false;
        };
        let letter = |c: char| c.is_ascii_alphabetic() || (!c.is_ascii() && c.is_alphabetic());
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@');
        let text = |c: char| {
            plain(c)
                || (!c.is_ascii() && c.is_alphabetic())
                || (c.is_ascii_punctuation()
                    && !matches!(c, '&' | '<' | '>' | '"' | '\'' | '\\' | '`'))
        };
        letter(first)
            && (last.is_ascii_alphanumeric() || letter(last))
            && !value.contains("--")
            && !value.contains("..")
            && match self {
                Place::BodyText => value.chars().all(text) && value.chars().all(layout_ok),
                // A link like https://host:8080/preferences/TOKEN: drip's formatter escapes
                // its punctuation, the link target reads the escapes back, and these are
                // characters its percent-encoding leaves as they are.
                Place::LinkTarget => value.chars().all(|c| {
                    plain(c) || matches!(c, ':' | '/' | '?' | '#' | '=' | '%' | '+' | '_' | '~')
                }),
                _ => value.chars().all(plain),
            }
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Slot(usize),
}

/// A lesson rendered with placeholders, cut at them.
#[derive(Debug)]
struct Compiled {
    subject: String,
    html: Vec<Piece>,
    text: Vec<Piece>,
    places: [Place; SLOTS],
}

fn cut(rendered: &str, placeholders: &[&str; SLOTS]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    loop {
        let next = placeholders
            .iter()
            .enumerate()
            .filter_map(|(slot, p)| rest.find(p).map(|at| (at, slot, p.len())))
            .min();
        match next {
            Some((at, slot, len)) => {
                if at > 0 {
                    pieces.push(Piece::Text(rest[..at].to_owned()));
                }
                pieces.push(Piece::Slot(slot));
                rest = &rest[at + len..];
            }
            None => {
                if !rest.is_empty() {
                    pieces.push(Piece::Text(rest.to_owned()));
                }
                return pieces;
            }
        }
    }
}

fn fill(pieces: &[Piece], values: &[&str; SLOTS]) -> String {
    let len = pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.len(),
            Piece::Slot(s) => values[*s].len(),
        })
        .sum();
    let mut out = String::with_capacity(len);
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Slot(s) => out.push_str(values[*s]),
        }
    }
    out
}

/// Where each placeholder lands in the Markdown the body rendered to.
fn places_in_body(markdown: &str) -> [Place; SLOTS] {
    let mut places = [Place::Layout; SLOTS];
    let mut mark = |text: &str, place: Place| {
        for (slot, p) in PLACEHOLDERS[0].iter().enumerate() {
            if text.contains(p) {
                places[slot] = places[slot].max(place);
            }
        }
    };
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_SMART_PUNCTUATION;
    let mut in_code_block = 0usize;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code_block += 1,
            Event::End(pulldown_cmark::TagEnd::CodeBlock) => in_code_block -= 1,
            Event::Start(Tag::Link {
                dest_url, title, ..
            })
            | Event::Start(Tag::Image {
                dest_url, title, ..
            }) => {
                mark(&dest_url, Place::LinkTarget);
                mark(&title, Place::BodyOther);
            }
            Event::Text(t) if in_code_block == 0 => mark(&t, Place::BodyText),
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                mark(&t, Place::BodyOther)
            }
            _ => {}
        }
    }
    // Anything the parser did not show as an event (a reference definition, say) is
    // treated as the strictest place.
    for (slot, p) in PLACEHOLDERS[0].iter().enumerate() {
        if markdown.contains(p) && places[slot] == Place::Layout {
            places[slot] = Place::BodyOther;
        }
    }
    places
}

/// The compiled form of one lesson for one set of lesson and course values.
#[derive(Debug)]
pub(super) struct Entry {
    key: Key,
    compiled: Option<Compiled>,
    /// The lesson body's template, parsed once, for mails that take the full pipeline.
    body: Option<minijinja::Environment<'static>>,
}

impl Entry {
    pub(super) fn body(&self) -> Option<&minijinja::Environment<'static>> {
        self.body.as_ref()
    }

    /// The mail for `ctx` by substitution, or None when a value needs the full pipeline.
    pub(super) fn render(&self, ctx: &MailContext) -> Option<RenderedMail> {
        let c = self.compiled.as_ref()?;
        let values = values(ctx);
        if !values
            .iter()
            .zip(c.places)
            .all(|(v, place)| place.passes(v))
        {
            return None;
        }
        Some(RenderedMail {
            subject: c.subject.clone(),
            html: fill(&c.html, &values),
            text: fill(&c.text, &values),
        })
    }
}

/// Everything besides the subscriber's values that a lesson mail depends on, borrowed:
/// looking a lesson up (once per mail) hashes and compares it without copying anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct KeyRef<'a> {
    body: &'a str,
    subject: &'a str,
    prompt: &'a str,
    preheader: Option<&'a str>,
    vars: &'a LessonVars,
    course: &'a CourseVars,
}

impl<'a> KeyRef<'a> {
    fn new(lesson: &'a LessonContent, vars: &'a LessonVars, course: &'a CourseVars) -> Self {
        KeyRef {
            body: &lesson.body,
            subject: &lesson.subject,
            prompt: &lesson.prompt,
            preheader: lesson.preheader.as_deref(),
            vars,
            course,
        }
    }

    fn hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        Hash::hash(self, &mut h);
        h.finish()
    }
}

/// The same, owned, kept with a compiled entry (made once per lesson revision).
#[derive(Debug)]
struct Key {
    body: String,
    subject: String,
    prompt: String,
    preheader: Option<String>,
    vars: LessonVars,
    course: CourseVars,
}

impl Key {
    fn of(k: KeyRef<'_>) -> Key {
        Key {
            body: k.body.to_owned(),
            subject: k.subject.to_owned(),
            prompt: k.prompt.to_owned(),
            preheader: k.preheader.map(str::to_owned),
            vars: k.vars.clone(),
            course: k.course.clone(),
        }
    }

    fn borrowed(&self) -> KeyRef<'_> {
        KeyRef {
            body: &self.body,
            subject: &self.subject,
            prompt: &self.prompt,
            preheader: self.preheader.as_deref(),
            vars: &self.vars,
            course: &self.course,
        }
    }
}

/// Compiled lessons, keyed by their content: an edited lesson is a new entry, and the cache
/// is emptied when it holds more than a few hundred (old revisions).
#[derive(Debug, Default)]
pub(super) struct Cache {
    entries: Mutex<HashMap<u64, Arc<Entry>>>,
}

const MAX_ENTRIES: usize = 512;

impl Cache {
    /// The entry for this lesson, compiling it on first use with `full` (the whole
    /// pipeline) when the layout allows substitution at all.
    pub(super) fn entry(
        &self,
        lesson: &LessonContent,
        vars: &LessonVars,
        course: &CourseVars,
        layout_allows: bool,
        full: impl Fn(&MailContext) -> anyhow::Result<(RenderedMail, String)>,
    ) -> Arc<Entry> {
        self.entry_by_key(KeyRef::new(lesson, vars, course), layout_allows, full)
    }

    /// The entry for a broadcast (its subject and Markdown body, with the subscriber's and
    /// the course's variables but no lesson's), compiled as a lesson is.
    pub(super) fn broadcast_entry(
        &self,
        subject: &str,
        body: &str,
        course: &CourseVars,
        layout_allows: bool,
        full: impl Fn(&MailContext) -> anyhow::Result<(RenderedMail, String)>,
    ) -> Arc<Entry> {
        static NO_LESSON: LessonVars = LessonVars {
            title: String::new(),
            number: 0,
            of: 0,
            phase: String::new(),
        };
        let key = KeyRef {
            body,
            subject,
            prompt: "",
            preheader: None,
            vars: &NO_LESSON,
            course,
        };
        self.entry_by_key(key, layout_allows, full)
    }

    fn entry_by_key(
        &self,
        key: KeyRef<'_>,
        layout_allows: bool,
        full: impl Fn(&MailContext) -> anyhow::Result<(RenderedMail, String)>,
    ) -> Arc<Entry> {
        let hash = key.hash();
        if let Some(e) = self.entries.lock().expect("render cache").get(&hash)
            && e.key.borrowed() == key
        {
            return e.clone();
        }
        // Compiled outside the lock; two threads may both compile a new one once.
        let mut body = super::body_environment();
        let body = body
            .add_template_owned("body", key.body.to_owned())
            .is_ok()
            .then_some(body);
        let entry = Arc::new(Entry {
            key: Key::of(key),
            body,
            compiled: if layout_allows && plain_uses_only(key.body) {
                compile(key.course, &full)
            } else {
                None
            },
        });
        let mut entries = self.entries.lock().expect("render cache");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, entry.clone());
        entry
    }
}

/// Renders with both placeholder sets; substitution is used only if the first, cut and
/// filled with the second set's words, gives exactly the second.
fn compile(
    course: &CourseVars,
    full: &impl Fn(&MailContext) -> anyhow::Result<(RenderedMail, String)>,
) -> Option<Compiled> {
    let (a, markdown) = full(&placeholder_context(0, course)).ok()?;
    let (b, _) = full(&placeholder_context(1, course)).ok()?;
    let compiled = Compiled {
        subject: a.subject.clone(),
        html: cut(&a.html, &PLACEHOLDERS[0]),
        text: cut(&a.text, &PLACEHOLDERS[0]),
        places: places_in_body(&markdown),
    };
    let same = fill(&compiled.html, &PLACEHOLDERS[1]) == b.html
        && fill(&compiled.text, &PLACEHOLDERS[1]) == b.text
        && a.subject == b.subject;
    same.then_some(compiled)
}

/// Whether a template uses the per-subscriber values only as plain prints
/// (`{{ subscriber.first_name }}`): never in a statement, a filter, a test or a call, where
/// a placeholder would not behave like the real value.
pub(super) fn plain_uses_only(source: &str) -> bool {
    static TAG: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?s)\{\{(.*?)\}\}|\{%(.*?)%\}").expect("valid regex")
    });
    static NAMES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b(subscriber|links)\b").expect("valid regex")
    });
    const PLAIN: [&str; SLOTS] = [
        "subscriber.first_name",
        "subscriber.email",
        "subscriber.timezone",
        "links.unsubscribe",
        "links.preferences",
        "links.journal",
    ];
    TAG.captures_iter(source)
        .all(|c| match (c.get(1), c.get(2)) {
            (Some(print), _) => {
                let inner = print
                    .as_str()
                    .trim_matches(|ch: char| ch == '-' || ch == '+' || ch.is_whitespace());
                !NAMES.is_match(inner) || PLAIN.contains(&inner)
            }
            (_, Some(statement)) => !NAMES.is_match(statement.as_str()),
            _ => true,
        })
}

/// Whether the email layout templates allow substitution: plain uses of the values, and no
/// CSS selector on an attribute (`a[href^=…]`), which could match an element by a link
/// that differs per subscriber and so inline differently for a placeholder.
pub(super) fn layout_allows(sources: &[&str]) -> bool {
    sources.iter().all(|source| {
        plain_uses_only(source)
            && !source.split("<style").skip(1).any(|s| {
                s.split("</style>")
                    .next()
                    .is_some_and(|css| css.contains('['))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_and_fill_give_back_the_text() {
        let p = &PLACEHOLDERS[0];
        let text = format!("Hi {}, <a href=\"{}\">x</a> {}{}.", p[0], p[3], p[0], p[1]);
        let pieces = cut(&text, p);
        assert_eq!(fill(&pieces, p), text);
        let values = [
            "Ann",
            "ann@example.com",
            "UTC",
            "https://u",
            "https://p",
            "https://j",
        ];
        assert_eq!(
            fill(&pieces, &values),
            "Hi Ann, <a href=\"https://u\">x</a> Annann@example.com."
        );
    }

    #[test]
    fn values_are_checked_against_where_they_land() {
        use Place::*;
        for ok in ["Ann", "Zoë", "Jean-Luc", "ann@example.com", "a.b@c.org"] {
            assert!(BodyText.passes(ok), "{ok}");
        }
        for ok in ["Ann", "ann@example.com", "ann.b-c@ex.org"] {
            assert!(BodyOther.passes(ok), "{ok}");
        }
        assert!(BodyText.passes("https://x.org/unsubscribe/1a-ff00"));
        assert!(!BodyOther.passes("https://x.org/unsubscribe/1a-ff00"));
        assert!(LinkTarget.passes("https://x.org:8080/unsubscribe/1a-ff00"));
        for bad in [
            "https://x.org/a&b",
            "https://x.org/(a)",
            "https://x.org/a\\b",
            "https://x.org/a'b",
            "https://x.org/é1",
        ] {
            assert!(!LinkTarget.passes(bad), "{bad}");
        }
        assert!(!BodyOther.passes("Zoë"), "percent-encoded in a link target");
        for bad in [
            "O'Brien",
            "A&B",
            "<b>",
            "1.",
            "12",
            "-x",
            "x-",
            "a--b",
            "a..b",
            "",
            "a b",
            "x\\y",
            "Ann\u{a0}",
            "`x`",
            "\"q\"",
        ] {
            assert!(!BodyText.passes(bad), "{bad:?}");
        }
        assert!(Layout.passes("https://x.org/u/1-ff?x=1"));
        for bad in ["a&b", "a\"b", "a'b", "a b", "", "a<b"] {
            assert!(!Layout.passes(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_plain_prints_of_subscriber_values_allow_substitution() {
        assert!(plain_uses_only(
            "Hi {{ subscriber.first_name }}, {{- links.journal -}}"
        ));
        assert!(plain_uses_only(
            "{% if lesson.number > 1 %}{{ lesson.title }}{% endif %}"
        ));
        for no in [
            "{{ subscriber.first_name | upper }}",
            "{% if subscriber.first_name == 'friend' %}x{% endif %}",
            "{% set n = subscriber.first_name %}",
            "{{ subscriber }}",
            "{{ subscriber['email'] }}",
            "{{ links.journal ~ '?x' }}",
        ] {
            assert!(!plain_uses_only(no), "{no}");
        }
        assert!(!layout_allows(&["<style> a[href] { color: red } </style>"]));
        assert!(layout_allows(&[
            "<style> a { color: red } </style>{{ links.unsubscribe }}"
        ]));
    }

    #[test]
    fn placeholders_in_code_and_link_targets_are_strict() {
        let p = &PLACEHOLDERS[0];
        let md = format!("Hi {}!\n\n`{}` [j]({}) <{}>\n", p[0], p[1], p[5], p[4]);
        let places = places_in_body(&md);
        assert_eq!(places[0], Place::BodyText);
        assert_eq!(places[1], Place::BodyOther);
        assert_eq!(places[5], Place::LinkTarget);
        assert_eq!(places[2], Place::Layout);
        assert_eq!(places[3], Place::Layout);
    }

    /// Every lesson of the shipped course and of the test fixture, plus bodies that put the
    /// values everywhere Markdown treats text differently, for names, addresses and links
    /// inside and outside the fast path's alphabet: substitution and the full pipeline must
    /// give the same bytes, and the plain cases must take the fast path.
    #[test]
    fn substitution_gives_the_same_bytes_as_the_full_pipeline() {
        use crate::render::Renderer;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let renderer = Renderer::load(&root.join("templates")).unwrap();
        assert!(
            renderer.substitution,
            "the shipped email templates allow substitution"
        );
        let mut lessons: Vec<LessonContent> = Vec::new();
        let mut shipped = 0;
        for dir in [
            "lessons/rebuilding-trust",
            "tests/fixtures/lessons/small-course",
        ] {
            let course = crate::curriculum::load_dir(&root.join(dir)).unwrap();
            lessons.extend(course.lessons.into_iter().map(|l| l.content));
            if shipped == 0 {
                shipped = lessons.len();
            }
        }
        let template = lessons[0].clone();
        for body in [
            "Hi {{ subscriber.first_name }}!\n\n*{{ subscriber.first_name }}*'s turn.\n",
            "{{ subscriber.first_name }}. Start\n\n- {{ subscriber.email }}\n",
            "Code: `{{ subscriber.email }}` and [journal]({{ links.journal }}).\n",
            "# Hello {{ subscriber.first_name }}\n\nText.\n",
            "{% if subscriber.first_name == 'friend' %}Hi!{% else %}Hi {{ subscriber.first_name }}{% endif %}\n",
            "Shout {{ subscriber.first_name | upper }}\n",
            "\\{{ subscriber.first_name }} and {{ subscriber.timezone }}...\n",
            "    {{ subscriber.email }} in code\n\nSee {{ links.unsubscribe }} now.\n",
            "<{{ links.preferences }}> and {{ subscriber.first_name }}--ok\n",
        ] {
            lessons.push(LessonContent {
                body: body.into(),
                ..template.clone()
            });
        }
        let names = [
            "Sam Rivera",
            "",
            "Zoë",
            "R2D2",
            "O'Brien",
            "Jean-Luc",
            "Anne--Marie",
            "李",
            "x.y",
            "R2D2",
            "1987",
            "12.",
            "A&B",
            "<b>x</b>",
            "*bold*",
            "_u_",
            "Ann\u{a0}",
            "back\\slash",
            "there",
            "#hash",
            "a..b",
        ];
        let emails = [
            "sam@example.com",
            "o'brien@example.com",
            "1st@ex.org",
            "a_b+c@ex.org",
        ];
        let bases = [
            "https://course.example.org",
            "http://127.0.0.1:8080",
            "https://x.org/a&b",
        ];
        let tokens = ["1a-00ff", "zz-0a0b0c", "x--y", "q-e'"];
        let ordinary_values = |name: &str, email: &str, base: &str, token: &str| {
            ["Sam Rivera", "Zoë", "Jean-Luc", "R2D2"].contains(&name)
                && !base.contains('&')
                && !email.contains('\'')
                && ["1a-00ff", "zz-0a0b0c"].contains(&token)
        };
        let (mut checked, mut broadcasts) = (0, 0);
        for (i, lesson) in lessons.iter().enumerate() {
            let vars = LessonVars {
                title: lesson.title.clone(),
                number: i + 1,
                of: lessons.len(),
                phase: "Honesty".into(),
            };
            for (n, name) in names.iter().enumerate() {
                let email = emails[n % emails.len()];
                let base = bases[n % bases.len()];
                let token = tokens[(n / 2) % tokens.len()];
                let ctx = MailContext {
                    subscriber: SubscriberVars::new(
                        name,
                        email,
                        "America/Argentina/Buenos_Aires",
                        "there",
                    ),
                    course: CourseVars {
                        title: "Rebuilding Trust".into(),
                        description: "A course.".into(),
                        footer: "Help is near: findahelpline.com".into(),
                        language: "en".into(),
                    },
                    links: Links {
                        unsubscribe: format!("{base}/unsubscribe/{token}"),
                        preferences: format!("{base}/preferences/{token}"),
                        journal: format!("{base}/journal/{token}"),
                    },
                };
                let got = renderer.lesson(lesson, &vars, &ctx).unwrap();
                let full = renderer.lesson_full(lesson, &vars, &ctx, None).unwrap().0;
                assert_eq!(
                    got, full,
                    "lesson {i}, name {name:?}, base {base:?}, token {token:?}"
                );
                // The same body as a broadcast: the same bytes by either path.
                if !lesson.body.contains("lesson.") {
                    let got = renderer
                        .broadcast(&lesson.subject, &lesson.body, &ctx)
                        .unwrap();
                    let full = renderer
                        .broadcast_full(&lesson.subject, &lesson.body, &ctx, None)
                        .unwrap()
                        .0;
                    assert_eq!(got, full, "broadcast {i}, name {name:?}, base {base:?}");
                    if i < shipped && ordinary_values(name, email, base, token) {
                        let entry = renderer.broadcasts.broadcast_entry(
                            &lesson.subject,
                            &lesson.body,
                            &ctx.course,
                            true,
                            |_| unreachable!("compiled above"),
                        );
                        assert!(
                            entry.render(&ctx).is_some(),
                            "broadcast {i} by substitution"
                        );
                        broadcasts += 1;
                    }
                }
                // Every shipped lesson takes the fast path for an ordinary subscriber.
                if i < shipped && ordinary_values(name, email, base, token) {
                    let entry = renderer
                        .lessons
                        .entry(lesson, &vars, &ctx.course, true, |_| {
                            unreachable!("compiled above")
                        });
                    assert!(entry.render(&ctx).is_some(), "lesson {i}, name {name:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= shipped, "{checked} fast-path checks");
        assert!(broadcasts > 0, "no broadcast took the fast path");
    }
}
