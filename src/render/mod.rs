//! Rendering mails and pages: minijinja templates from `templates/`, loaded once, and lesson
//! Markdown placed in the email layout, then CSS inlined for mail clients. drip's own words
//! come from `templates/i18n/` ([`i18n`]), in the language of the course.

mod fast;
pub mod i18n;
pub(crate) mod markdown;

pub use i18n::Catalogue;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::curriculum::{self, LessonContent};

/// Who the mail is for. `first_name` already has its fallback.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberVars {
    pub first_name: String,
    pub email: String,
    pub timezone: String,
}

impl SubscriberVars {
    /// `no_name` stands in for the first name of someone who gave none (the catalogue's
    /// `mail.no_name`, so that "Hi {{ subscriber.first_name }}" still reads).
    pub fn new(name: &str, email: &str, timezone: &str, no_name: &str) -> SubscriberVars {
        let first = name.split_whitespace().next().unwrap_or("");
        SubscriberVars {
            first_name: if first.is_empty() {
                no_name.into()
            } else {
                first.to_owned()
            },
            email: email.to_owned(),
            timezone: timezone.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CourseVars {
    pub title: String,
    pub description: String,
    /// The course's line for the foot of every lesson mail; may be empty.
    pub footer: String,
    /// The course's language (a BCP 47 tag): the words of drip's own text around the
    /// lesson are in it.
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LessonVars {
    pub title: String,
    pub number: usize,
    pub of: usize,
    pub phase: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Links {
    pub unsubscribe: String,
    pub preferences: String,
    pub journal: String,
}

/// Everything a mail template sees.
#[derive(Debug, Clone, Serialize)]
pub struct MailContext {
    pub subscriber: SubscriberVars,
    pub course: CourseVars,
    pub links: Links,
}

/// A finished mail: subject, HTML (CSS inlined) and plain text.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedMail {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Which non-lesson mail to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Confirm,
    Welcome,
    Goodbye,
    Notice,
}

impl MailKind {
    fn name(self) -> &'static str {
        match self {
            MailKind::Confirm => "confirm",
            MailKind::Welcome => "welcome",
            MailKind::Goodbye => "goodbye",
            MailKind::Notice => "notice",
        }
    }
}

/// Templates loaded once; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Renderer {
    env: Arc<Environment<'static>>,
    inliner: Arc<css_inline::CSSInliner<'static>>,
    /// Lessons compiled for substitution (see [`fast`]), by content.
    lessons: Arc<fast::Cache>,
    /// Broadcasts compiled the same way.
    broadcasts: Arc<fast::Cache>,
    /// Whether the email templates allow substitution at all.
    substitution: bool,
    catalogue: Arc<Catalogue>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
    }
}

/// The Markdown a lesson's or broadcast's body renders to: with its template as parsed once
/// (`parsed`, a body environment holding it as "body"), or parsed here when there is none or
/// it fails, which also gives the error its exact line; `explain` words that error.
fn body_markdown(
    parsed: Option<&Environment<'static>>,
    source: &str,
    ctx: &Value,
    explain: impl FnOnce(minijinja::Error) -> anyhow::Error,
) -> anyhow::Result<String> {
    let cached = parsed
        .and_then(|env| env.get_template("body").ok())
        .and_then(|t| t.render(ctx).ok());
    match cached {
        Some(markdown) => Ok(markdown),
        None => body_environment().render_str(source, ctx).map_err(explain),
    }
}

/// The environment lesson bodies are rendered in: strict about unknown variables, and
/// every value is Markdown-escaped so a subscriber's name cannot become a link or markup.
fn body_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(|out, _state, value| {
        let text = value.to_string();
        let mut escaped = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_ascii_punctuation() && c != '.' && c != ',' && c != '\'' && c != '-' && c != '@'
            {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        out.write_str(&escaped)
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
    });
    env
}

impl Renderer {
    /// Loads and compiles every template under `dir`, and the translations in `dir/i18n`;
    /// an error names the file and line.
    pub fn load(dir: &Path) -> anyhow::Result<Renderer> {
        let catalogue = Arc::new(Catalogue::load(&dir.join("i18n"))?);
        let mut env = Environment::new();
        let words = catalogue.clone();
        env.add_function(
            "t",
            move |state: &minijinja::State, key: &str, kwargs: minijinja::value::Kwargs| {
                words.t(state, key, kwargs)
            },
        );
        // Printing a missing variable is an error; testing one with `if` is allowed, so a
        // page can say `{% if errors.email %}` without every key present.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut email_sources = Vec::new();
        for sub in ["email", "web"] {
            let folder = dir.join(sub);
            let entries = std::fs::read_dir(&folder)
                .with_context(|| format!("cannot read templates folder {}", folder.display()))?;
            let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            names.sort();
            for path in names {
                let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                if !(file.ends_with(".html") || file.ends_with(".txt")) {
                    continue;
                }
                let source = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if sub == "email" {
                    email_sources.push(source.clone());
                }
                env.add_template_owned(format!("{sub}/{file}"), source)
                    .map_err(|e| {
                        anyhow::anyhow!("{}:{}: {}", path.display(), e.line().unwrap_or(1), e)
                    })?;
            }
        }
        for required in [
            "email/lesson.html",
            "email/lesson.txt",
            "email/confirm.html",
            "email/confirm.txt",
        ] {
            env.get_template(required)
                .with_context(|| format!("missing template {}", dir.join(required).display()))?;
        }
        let inliner = css_inline::CSSInliner::options()
            .keep_style_tags(false)
            .load_remote_stylesheets(false)
            .build();
        let sources: Vec<&str> = email_sources.iter().map(String::as_str).collect();
        Ok(Renderer {
            env: Arc::new(env),
            inliner: Arc::new(inliner),
            lessons: Arc::new(fast::Cache::default()),
            broadcasts: Arc::new(fast::Cache::default()),
            substitution: fast::layout_allows(&sources),
            catalogue,
        })
    }

    /// drip's words in every language the templates folder has.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Renders a lesson exactly as the sender sends it. A lesson is compiled once per
    /// revision (and lesson number, course title…); a mail is then the compiled pieces with
    /// the subscriber's values put in, or the full pipeline for values that need it.
    pub fn lesson(
        &self,
        lesson: &LessonContent,
        vars: &LessonVars,
        ctx: &MailContext,
    ) -> anyhow::Result<RenderedMail> {
        let entry = self
            .lessons
            .entry(lesson, vars, &ctx.course, self.substitution, |c| {
                self.lesson_full(lesson, vars, c, None)
            });
        if let Some(mail) = entry.render(ctx) {
            return Ok(mail);
        }
        Ok(self.lesson_full(lesson, vars, ctx, entry.body())?.0)
    }

    /// The whole pipeline for one lesson mail; also returns the Markdown the body rendered
    /// to. `body` is the lesson's template, parsed once; without it (or if it fails) the body
    /// is parsed here, which also gives the error its exact message.
    fn lesson_full(
        &self,
        lesson: &LessonContent,
        vars: &LessonVars,
        ctx: &MailContext,
        body: Option<&Environment<'static>>,
    ) -> anyhow::Result<(RenderedMail, String)> {
        let body_ctx = minijinja::context! {
            subscriber => &ctx.subscriber, course => &ctx.course, links => &ctx.links, lesson => vars,
        };
        let markdown = body_markdown(body, &lesson.body, &body_ctx, |e| {
            // minijinja's "undefined value" does not say which; name the unknown ones.
            let unknown = curriculum::unknown_variables(&lesson.body).unwrap_or_default();
            let which = if unknown.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = unknown.iter().map(|v| format!("`{v}`")).collect();
                format!(" (unknown variable {})", names.join(", "))
            };
            anyhow::anyhow!("lesson body, line {}: {e}{which}", e.line().unwrap_or(1))
        })?;
        let page_ctx = minijinja::context! {
            subscriber => &ctx.subscriber, course => &ctx.course, links => &ctx.links, lesson => vars,
            lang => &ctx.course.language,
            subject => &lesson.subject,
            prompt => &lesson.prompt,
            preheader => &lesson.preheader,
            content_html => Value::from_safe_string(markdown::to_html(&markdown)),
            content_text => markdown::to_text(&markdown),
        };
        let mail = self.finish("lesson", lesson.subject.clone(), page_ctx)?;
        Ok((mail, markdown))
    }

    /// Renders one mail of a broadcast: its Markdown body (a template with the lesson body's
    /// variables, less the lesson's) in the lessons' layout, for one reader.
    pub fn broadcast(
        &self,
        subject: &str,
        body: &str,
        ctx: &MailContext,
    ) -> anyhow::Result<RenderedMail> {
        let entry =
            self.broadcasts
                .broadcast_entry(subject, body, &ctx.course, self.substitution, |c| {
                    self.broadcast_full(subject, body, c, None)
                });
        if let Some(mail) = entry.render(ctx) {
            return Ok(mail);
        }
        Ok(self.broadcast_full(subject, body, ctx, entry.body())?.0)
    }

    /// The whole pipeline for one broadcast mail, and the Markdown its body rendered to.
    /// `body_env` holds the body's template, parsed once.
    fn broadcast_full(
        &self,
        subject: &str,
        body: &str,
        ctx: &MailContext,
        body_env: Option<&Environment<'static>>,
    ) -> anyhow::Result<(RenderedMail, String)> {
        let body_ctx = minijinja::context! {
            subscriber => &ctx.subscriber, course => &ctx.course, links => &ctx.links,
        };
        let markdown = body_markdown(body_env, body, &body_ctx, |e| {
            anyhow::anyhow!("broadcast body, line {}: {e}", e.line().unwrap_or(1))
        })?;
        let page_ctx = minijinja::context! {
            subscriber => &ctx.subscriber, course => &ctx.course, links => &ctx.links,
            lang => &ctx.course.language,
            subject => subject,
            content_html => Value::from_safe_string(markdown::to_html(&markdown)),
            content_text => markdown::to_text(&markdown),
        };
        Ok((
            self.finish("broadcast", subject.to_owned(), page_ctx)?,
            markdown,
        ))
    }

    /// Renders an author's answer to a reader: `text` as written (plain text; paragraphs at
    /// blank lines, line breaks kept), under `subject`, saying when the reader wrote
    /// (`written`, already in their words and on their clock).
    pub fn answer(
        &self,
        subject: &str,
        text: &str,
        written: &str,
        ctx: &MailContext,
    ) -> anyhow::Result<RenderedMail> {
        let paragraphs: Vec<Vec<&str>> = text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.lines().collect())
            .collect();
        let page_ctx = minijinja::context! {
            subscriber => &ctx.subscriber, course => &ctx.course, links => &ctx.links,
            lang => &ctx.course.language,
            subject => subject, text => text, paragraphs => paragraphs, written => written,
        };
        self.finish("answer", subject.to_owned(), page_ctx)
    }

    /// Renders a confirmation, welcome, goodbye or notice mail. `extra` adds variables
    /// (the confirm link, a notice's message).
    pub fn mail(
        &self,
        kind: MailKind,
        ctx: &MailContext,
        extra: Value,
    ) -> anyhow::Result<RenderedMail> {
        let page_ctx = minijinja::context! {
            subscriber => &ctx.subscriber, course => &ctx.course, links => &ctx.links,
            lang => &ctx.course.language, ..extra
        };
        let subject = self
            .env
            .get_template(&format!("email/{}.subject.txt", kind.name()))
            .and_then(|t| t.render(&page_ctx))
            .map(|s| s.trim().to_owned())
            .with_context(|| format!("rendering the subject of the {} mail", kind.name()))?;
        self.finish(
            kind.name(),
            subject.clone(),
            minijinja::context! { subject => subject, ..page_ctx },
        )
    }

    fn finish(&self, name: &str, subject: String, ctx: Value) -> anyhow::Result<RenderedMail> {
        let html = self
            .env
            .get_template(&format!("email/{name}.html"))
            .and_then(|t| t.render(&ctx))
            .with_context(|| format!("rendering email/{name}.html"))?;
        let html = self
            .inliner
            .inline(&html)
            .with_context(|| format!("inlining CSS of email/{name}.html"))?;
        let text = self
            .env
            .get_template(&format!("email/{name}.txt"))
            .and_then(|t| t.render(&ctx))
            .with_context(|| format!("rendering email/{name}.txt"))?;
        Ok(RenderedMail {
            subject,
            html,
            text: normalise_text(&text),
        })
    }

    /// Renders a web page from `templates/web/`, its words in `lang` (the page's `lang`).
    pub fn page<S: Serialize>(&self, name: &str, lang: &str, ctx: S) -> anyhow::Result<String> {
        let ctx = minijinja::context! { lang => lang, ..Value::from_serialize(ctx) };
        self.env
            .get_template(&format!("web/{name}.html"))
            .and_then(|t| t.render(ctx))
            .with_context(|| format!("rendering web/{name}.html"))
    }
}

/// Collapses the blank-line runs that template tags leave in plain text.
fn normalise_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_matches('\n').to_owned() + "\n"
}
