//! The rules every lesson's content must pass, wherever it comes from (a file, the admin
//! editor, the API): the same checks, with `field` saying which input a problem is about.

use pulldown_cmark::{Event, Parser, Tag};

use super::LessonContent;
use super::problem::{Problem, line_of};
use crate::domain::InvalidInput;

/// Checks what a lesson says, wherever it comes from. Body problems carry the body's own
/// 1-based line; others carry line 1 of their field.
pub fn check_content(c: &LessonContent) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (field, value) in [("title", &c.title), ("subject", &c.subject)] {
        if value.trim().is_empty() {
            problems.push(Problem::in_field(
                field,
                1,
                format!("{field} must not be empty"),
            ));
        } else if value.contains(['\r', '\n']) {
            problems.push(Problem::in_field(
                field,
                1,
                format!("{field} must be one line"),
            ));
        }
    }
    if let Some(p) = &c.preheader
        && (p.trim().is_empty() || p.contains(['\r', '\n']) || p.chars().count() > 150)
    {
        problems.push(Problem::in_field(
            "preheader",
            1,
            "preheader must be one line of 1 to 150 characters",
        ));
    }
    if c.prompt.trim().is_empty() {
        problems.push(Problem::in_field(
            "prompt",
            1,
            "prompt must not be empty: every lesson ends with a reflection prompt",
        ));
    }
    if c.max_wait_days.is_some() && !c.wait_for_reply {
        problems.push(Problem::in_field(
            "max_wait_days",
            1,
            "max_wait_days only applies with wait_for_reply = true",
        ));
    }
    if c.body.trim().is_empty() {
        problems.push(Problem::in_field("body", 1, "the lesson body is empty"));
    }
    check_template(&c.body, true, &mut problems);
    check_markdown(&c.body, &mut problems);
    problems
}

/// The rules a broadcast's body must pass: a lesson body's, without the lesson's variables
/// (a broadcast is no lesson).
pub fn check_broadcast_body(body: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    if body.trim().is_empty() {
        problems.push(Problem::in_field("body", 1, "the body is empty"));
    }
    check_template(body, false, &mut problems);
    check_markdown(body, &mut problems);
    problems
}

fn check_template(body: &str, lesson: bool, problems: &mut Vec<Problem>) {
    let unknown = match unknown_variables(body) {
        Ok(unknown) => unknown,
        Err(e) => {
            let line = e.line().unwrap_or(1);
            let detail = e
                .detail()
                .map(str::to_owned)
                .unwrap_or_else(|| e.kind().to_string());
            problems.push(Problem::in_field(
                "body",
                line,
                format!("template error: {detail}"),
            ));
            return;
        }
    };
    let mut unknown = unknown;
    if !lesson {
        let env = minijinja::Environment::new();
        if let Ok(t) = env.template_from_str(body) {
            unknown.extend(
                t.undeclared_variables(true)
                    .into_iter()
                    .filter(|v| v == "lesson" || v.starts_with("lesson.")),
            );
        }
        unknown.sort();
    }
    let known: Vec<&str> = TEMPLATE_VARIABLES
        .iter()
        .copied()
        .filter(|v| lesson || !(*v == "lesson" || v.starts_with("lesson.")))
        .collect();
    for var in unknown {
        let line = body
            .find(var.as_str())
            .map(|at| line_of(body, at))
            .unwrap_or(1);
        problems.push(Problem::in_field(
            "body",
            line,
            format!(
                "unknown template variable `{var}` (known: {})",
                known.join(", ")
            ),
        ));
    }
}

/// The variables a lesson body may use: the contract between a lesson and the renderer,
/// which provides exactly these (`render::MailContext` and `LessonVars`). The rules refuse
/// any other, and the renderer names the unknown ones when a body fails.
const TEMPLATE_VARIABLES: &[&str] = &[
    "subscriber",
    "subscriber.first_name",
    "subscriber.email",
    "subscriber.timezone",
    "course",
    "course.title",
    "course.description",
    "lesson",
    "lesson.title",
    "lesson.number",
    "lesson.of",
    "lesson.phase",
    "links",
    "links.unsubscribe",
    "links.preferences",
    "links.journal",
];

/// The variables `body` uses that are not in [`TEMPLATE_VARIABLES`], sorted; an error when
/// `body` is not a template at all.
pub(crate) fn unknown_variables(body: &str) -> Result<Vec<String>, minijinja::Error> {
    let env = minijinja::Environment::new();
    let template = env.template_from_str(body)?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|v| !TEMPLATE_VARIABLES.contains(&v.as_str()))
        .collect();
    unknown.sort();
    Ok(unknown)
}

fn check_markdown(body: &str, problems: &mut Vec<Problem>) {
    for (event, range) in Parser::new(body).into_offset_iter() {
        let line = line_of(body, range.start);
        match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => {
                let url = dest_url.trim();
                let ok = url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with("mailto:");
                if !ok || url.len() < 10 || url.contains(char::is_whitespace) {
                    problems.push(Problem::in_field(
                        "body",
                        line,
                        format!("link {url:?} must be an absolute http(s):// or mailto: address"),
                    ));
                }
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                let what = if html.to_ascii_lowercase().contains("<script") {
                    "a script tag"
                } else {
                    "raw HTML"
                };
                problems.push(Problem::in_field(
                    "body",
                    line,
                    format!("{what} is not allowed in a lesson; use Markdown"),
                ));
            }
            _ => {}
        }
    }
}

/// `after_days`: a whole number of days from 0 to 365.
pub fn after_days(days: i64) -> Result<u32, InvalidInput> {
    u32::try_from(days)
        .ok()
        .filter(|d| *d <= 365)
        .ok_or_else(|| {
            InvalidInput::new(
                "after_days",
                "after_days must be a whole number of days from 0 to 365",
            )
        })
}

/// `max_wait_days`: a whole number of days from 1 to 365.
pub fn max_wait_days(days: i64) -> Result<u32, InvalidInput> {
    u32::try_from(days)
        .ok()
        .filter(|d| (1..=365).contains(d))
        .ok_or_else(|| {
            InvalidInput::new(
                "max_wait_days",
                "max_wait_days must be a whole number of days from 1 to 365",
            )
        })
}
