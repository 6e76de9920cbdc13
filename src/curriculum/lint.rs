//! Lint: every rule a lesson must pass, reported as `path:line: message`.
//!
//! The same content checks run on files (`drip lessons lint`, `sync`) and on the admin
//! editor's form, where `field` says which input the problem belongs beside.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use pulldown_cmark::{Event, Parser, Tag};

use super::parse::{line_of, parse_course, parse_lesson};
use super::{CourseDir, LessonContent};
use crate::render::TEMPLATE_VARIABLES;

/// One problem, at a line of a file (or of a form field).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: Option<String>,
    pub line: usize,
    /// The lesson field the problem is in, when it is about one.
    pub field: Option<&'static str>,
    pub message: String,
}

impl Problem {
    pub fn new(line: usize, message: impl Into<String>) -> Problem {
        Problem {
            file: None,
            line,
            field: None,
            message: message.into(),
        }
    }

    fn in_field(field: &'static str, line: usize, message: impl Into<String>) -> Problem {
        Problem {
            file: None,
            line,
            field: Some(field),
            message: message.into(),
        }
    }

    fn in_file(mut self, file: &str) -> Problem {
        self.file = Some(file.to_owned());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

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
    if let Some(w) = &c.send_window
        && let Err(e) = super::Window::parse(w)
    {
        problems.push(Problem::in_field("send_window", 1, e));
    }
    if c.body.trim().is_empty() {
        problems.push(Problem::in_field("body", 1, "the lesson body is empty"));
    }
    check_template(&c.body, &mut problems);
    check_markdown(&c.body, &mut problems);
    problems
}

fn check_template(body: &str, problems: &mut Vec<Problem>) {
    let env = minijinja::Environment::new();
    let template = match env.template_from_str(body) {
        Ok(t) => t,
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
    let mut unknown: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|v| !TEMPLATE_VARIABLES.contains(&v.as_str()))
        .collect();
    unknown.sort();
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
                TEMPLATE_VARIABLES.join(", ")
            ),
        ));
    }
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

/// Lints a whole course folder: each file, then the rules across files.
pub fn lint_dir(dir: &Path) -> Result<CourseDir, Vec<Problem>> {
    let shown = |name: &str| dir.join(name).display().to_string();
    let mut problems = Vec::new();
    let course_path = dir.join("course.toml");
    let slug = dir.file_name().and_then(|s| s.to_str()).unwrap_or("");
    let course = match std::fs::read_to_string(&course_path) {
        Ok(text) => parse_course(slug, &text)
            .map_err(|ps| problems.extend(ps.into_iter().map(|p| p.in_file(&shown("course.toml")))))
            .ok(),
        Err(e) => {
            problems
                .push(Problem::new(1, format!("cannot read: {e}")).in_file(&shown("course.toml")));
            None
        }
    };
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.ends_with(".md"))
            .collect(),
        Err(e) => {
            problems.push(
                Problem::new(1, format!("cannot read the folder: {e}"))
                    .in_file(&dir.display().to_string()),
            );
            return Err(problems);
        }
    };
    names.sort();
    let mut lessons = Vec::new();
    for name in &names {
        let text = match std::fs::read(dir.join(name)).map(String::from_utf8) {
            Ok(Ok(text)) => text,
            Ok(Err(_)) => {
                problems.push(Problem::new(1, "is not UTF-8 text").in_file(&shown(name)));
                continue;
            }
            Err(e) => {
                problems.push(Problem::new(1, format!("cannot read: {e}")).in_file(&shown(name)));
                continue;
            }
        };
        match parse_lesson(name, &text) {
            Ok(l) => lessons.push(l),
            Err(ps) => problems.extend(ps.into_iter().map(|p| p.in_file(&shown(name)))),
        }
    }
    if names.is_empty() {
        problems.push(
            Problem::new(1, "the course has no lesson files (NN-slug.md)")
                .in_file(&dir.display().to_string()),
        );
    }
    lessons.sort_by_key(|l| l.number);
    let mut numbers: HashMap<u32, &str> = HashMap::new();
    let mut slugs: HashMap<&str, &str> = HashMap::new();
    for l in &lessons {
        if let Some(first) = numbers.insert(l.number, &l.file_name) {
            problems.push(
                Problem::new(
                    1,
                    format!("duplicate lesson number {} (also {first})", l.number),
                )
                .in_file(&shown(&l.file_name)),
            );
        }
        if let Some(first) = slugs.insert(l.slug.as_str(), &l.file_name) {
            problems.push(
                Problem::new(
                    1,
                    format!("duplicate slug {:?} (also {first})", l.slug.as_str()),
                )
                .in_file(&shown(&l.file_name)),
            );
        }
    }
    for pair in lessons.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        if next.content.phase < prev.content.phase {
            let line = phase_line(&next.source);
            problems.push(
                Problem::new(
                    line,
                    format!(
                        "phase {:?} comes after {:?} in {}: phases go honesty, accountability, practice",
                        next.content.phase.as_str(),
                        prev.content.phase.as_str(),
                        prev.file_name
                    ),
                )
                .in_file(&shown(&next.file_name)),
            );
        }
    }
    match (problems.is_empty(), course) {
        (true, Some(course)) => Ok(CourseDir {
            dir: dir.to_owned(),
            course,
            lessons,
        }),
        _ => Err(problems),
    }
}

fn phase_line(source: &str) -> usize {
    source
        .lines()
        .position(|l| l.trim_start().starts_with("phase"))
        .map(|i| i + 1)
        .unwrap_or(1)
}
