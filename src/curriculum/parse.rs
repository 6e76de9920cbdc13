//! Parsing lesson files: the raw TOML front matter first (serde with spans, unknown keys
//! refused), then typed values. Every error carries the line it is about.

use serde::Deserialize;
use toml::Spanned;

use super::problem::{Problem, line_of};
use super::rules;
use crate::domain::{CoursePhase, EmailAddress, Language, Phase, Phases, SendWindow, Slug};

/// `course.toml`, checked.
#[derive(Debug, Clone)]
pub struct CourseFile {
    pub slug: Slug,
    pub title: String,
    pub description: String,
    /// The sender's display name.
    pub from: String,
    /// The sender's address, when `from` is "Name <address>"; None: `[mail] from`'s.
    pub from_address: Option<EmailAddress>,
    pub send_window: SendWindow,
    pub phases: Phases,
    /// A line for the foot of every lesson mail (where to find help, say); may be empty.
    pub footer: String,
    /// Lessons added later still reach the people who reached the end.
    pub evergreen: bool,
    /// The language of the course's readers: drip's own words in its pages and mails are
    /// in it (`language`, a BCP 47 tag; English when absent).
    pub language: Language,
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCourse {
    title: Spanned<String>,
    description: Spanned<String>,
    from: Spanned<String>,
    send_window: Spanned<String>,
    #[serde(default)]
    footer: Option<Spanned<String>>,
    #[serde(default)]
    evergreen: bool,
    language: Option<Spanned<String>>,
    phases: Option<Spanned<Vec<RawPhase>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    name: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    description: String,
}

/// What a lesson says: the same fields whether it comes from a file or the admin's editor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LessonContent {
    pub title: String,
    pub subject: String,
    pub phase: Phase,
    pub after_days: u32,
    pub send_window: Option<SendWindow>,
    pub prompt: String,
    /// The line mail apps show after the subject; None: the start of the body shows.
    #[serde(default)]
    pub preheader: Option<String>,
    pub wait_for_reply: bool,
    pub max_wait_days: Option<u32>,
    pub body: String,
}

/// A lesson file, checked.
#[derive(Debug, Clone)]
pub struct LessonFile {
    pub file_name: String,
    pub number: u32,
    pub slug: Slug,
    pub content: LessonContent,
    pub source: String,
    /// The 1-based line of the first body line, to report body problems in file lines.
    pub body_line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFront {
    title: Spanned<String>,
    subject: Spanned<String>,
    phase: Spanned<String>,
    after_days: Spanned<i64>,
    prompt: Spanned<String>,
    preheader: Option<Spanned<String>>,
    send_window: Option<Spanned<String>>,
    wait_for_reply: Option<Spanned<bool>>,
    max_wait_days: Option<Spanned<i64>>,
}

fn toml_problem(text: &str, line_base: usize, err: &toml::de::Error) -> Problem {
    let line = err.span().map(|s| line_of(text, s.start)).unwrap_or(1) + line_base;
    // toml's message repeats the source excerpt over several lines; the first line is the point.
    let message = err
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .to_owned();
    Problem::new(line, message)
}

pub fn parse_course(slug: &str, text: &str) -> Result<CourseFile, Vec<Problem>> {
    let raw: RawCourse = toml::from_str(text).map_err(|e| vec![toml_problem(text, 0, &e)])?;
    let mut problems = Vec::new();
    let at = |s: &Spanned<String>| line_of(text, s.span().start);
    let slug = Slug::parse(slug)
        .map_err(|e| problems.push(Problem::new(1, format!("course folder name: {e}"))))
        .ok();
    for (field, value) in [
        ("title", &raw.title),
        ("description", &raw.description),
        ("from", &raw.from),
    ] {
        if value.get_ref().trim().is_empty() {
            problems.push(Problem::new(
                at(value),
                format!("{field} must not be empty"),
            ));
        }
    }
    let (from, from_address) = match parse_from(raw.from.get_ref()) {
        Ok(pair) => pair,
        Err(message) => {
            problems.push(Problem::new(at(&raw.from), message));
            (String::new(), None)
        }
    };
    let send_window = match SendWindow::parse(raw.send_window.get_ref()) {
        Ok(w) if w.is_immediate() => {
            problems.push(Problem::new(
                at(&raw.send_window),
                "the course's send_window must be a cron expression",
            ));
            None
        }
        Ok(w) => Some(w),
        Err(e) => {
            problems.push(Problem::new(at(&raw.send_window), e.message));
            None
        }
    };
    let language = match &raw.language {
        None => Some(Language::english()),
        Some(tag) => Language::parse(tag.get_ref())
            .map_err(|e| problems.push(Problem::new(at(tag), e.to_string())))
            .ok(),
    };
    let phases = parse_phases(text, &raw.phases, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CourseFile {
        slug: slug.expect("checked above"),
        title: raw.title.into_inner(),
        description: raw.description.into_inner(),
        from,
        from_address,
        send_window: send_window.expect("checked above"),
        phases: phases.expect("checked above"),
        footer: raw
            .footer
            .map(|f| f.into_inner().trim().to_owned())
            .unwrap_or_default(),
        evergreen: raw.evergreen,
        language: language.expect("checked above"),
        source: text.to_owned(),
    })
}

/// `from`: a display name, or `Name <address>`.
fn parse_from(text: &str) -> Result<(String, Option<EmailAddress>), String> {
    let text = text.trim();
    if text.contains(['\r', '\n', '"']) {
        return Err("from must be one line without quotes: a name, or Name <address>".into());
    }
    let Some((name, rest)) = text.split_once('<') else {
        if text.contains('>') {
            return Err("from: a '>' without its '<' (write Name <address>)".into());
        }
        return Ok((text.to_owned(), None));
    };
    let Some(address) = rest.strip_suffix('>') else {
        return Err(
            "from: the address must end the line, in angle brackets: Name <address>".into(),
        );
    };
    let name = name.trim();
    if name.is_empty() {
        return Err("from: give a display name before the address: Name <address>".into());
    }
    let address = EmailAddress::parse(address).map_err(|e| format!("from: {}", e.message))?;
    Ok((name.to_owned(), Some(address)))
}

/// The `[[phases]]` array: each name a slug, declared once, with a title; at least one.
fn parse_phases(
    text: &str,
    raw: &Option<Spanned<Vec<RawPhase>>>,
    problems: &mut Vec<Problem>,
) -> Option<Phases> {
    let before = problems.len();
    let mut list = Vec::new();
    let declared = raw.as_ref().map_or(&[][..], |r| r.get_ref().as_slice());
    for p in declared {
        let line = line_of(text, p.name.span().start);
        let name = match Phase::parse(p.name.get_ref()) {
            Ok(name) => name,
            Err(e) => {
                problems.push(Problem::new(
                    line,
                    format!("[[phases]] name: {}", e.message),
                ));
                continue;
            }
        };
        if list.iter().any(|q: &CoursePhase| q.name == name) {
            problems.push(Problem::new(
                line,
                format!("phase {:?} is declared twice in [[phases]]", name.as_str()),
            ));
            continue;
        }
        if p.title.get_ref().trim().is_empty() {
            problems.push(Problem::new(
                line_of(text, p.title.span().start),
                format!("phase {:?} needs a title", name.as_str()),
            ));
            continue;
        }
        list.push(CoursePhase {
            name,
            title: p.title.get_ref().trim().to_owned(),
            description: p.description.trim().to_owned(),
        });
    }
    if declared.is_empty() {
        let line = raw.as_ref().map_or(1, |r| line_of(text, r.span().start));
        problems.push(Problem::new(
            line,
            "course.toml declares no phases: add at least one [[phases]] entry with name, title and description",
        ));
    }
    if problems.len() > before {
        return None;
    }
    Phases::new(list)
        .map_err(|e| problems.push(Problem::new(1, e.message)))
        .ok()
}

/// Splits `+++\nTOML\n+++\nbody` into (front matter, body, line of body).
fn split_front_matter(text: &str) -> Result<(&str, &str, usize), Problem> {
    let rest = text
        .strip_prefix("+++\n")
        .or_else(|| text.strip_prefix("+++\r\n"))
        .ok_or_else(|| {
            Problem::new(
                1,
                "a lesson file starts with a line `+++` opening its front matter",
            )
        })?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            let front = &rest[..offset];
            let body = &rest[offset + line.len()..];
            let body_line = line_of(text, text.len() - body.len());
            return Ok((front, body, body_line));
        }
        offset += line.len();
    }
    Err(Problem::new(
        1,
        "the front matter is not closed by a line `+++`",
    ))
}

/// Parses `NN-slug.md` named `file_name` with contents `text`; returns all problems that
/// can be found in the file alone (the folder-wide rules are in lint).
pub fn parse_lesson(file_name: &str, text: &str) -> Result<LessonFile, Vec<Problem>> {
    let mut problems = Vec::new();
    let stem = file_name.strip_suffix(".md").unwrap_or(file_name);
    let (number, slug) = match stem.split_once('-') {
        Some((n, s)) if n.len() >= 2 && n.chars().all(|c| c.is_ascii_digit()) => {
            (n.parse::<u32>().ok(), Slug::parse(s).ok())
        }
        _ => (None, None),
    };
    if number.is_none() || slug.is_none() || !file_name.ends_with(".md") {
        problems.push(Problem::new(1, "file name must be NN-slug.md (a number of two or more digits, a hyphen, a lowercase slug)"));
    }
    let (front, body, body_line) = match split_front_matter(text) {
        Ok(parts) => parts,
        Err(p) => {
            problems.push(p);
            return Err(problems);
        }
    };
    let raw: RawFront = match toml::from_str(front) {
        Ok(raw) => raw,
        Err(e) => {
            problems.push(toml_problem(front, 1, &e));
            return Err(problems);
        }
    };
    let at = |span: std::ops::Range<usize>| line_of(front, span.start) + 1;
    let phase = Phase::parse(raw.phase.get_ref())
        .map_err(|e| problems.push(Problem::new(at(raw.phase.span()), e.to_string())))
        .ok();
    let after_days = rules::after_days(*raw.after_days.get_ref())
        .map_err(|e| problems.push(Problem::new(at(raw.after_days.span()), e.message)))
        .ok();
    let max_wait_days = raw.max_wait_days.as_ref().map(|m| {
        rules::max_wait_days(*m.get_ref())
            .map_err(|e| problems.push(Problem::new(at(m.span()), e.message)))
            .unwrap_or(1)
    });
    let wait_for_reply = raw.wait_for_reply.as_ref().is_some_and(|w| *w.get_ref());
    let send_window = raw.send_window.as_ref().and_then(|w| {
        SendWindow::parse(w.get_ref())
            .map_err(|e| problems.push(Problem::new(at(w.span()), e.message)))
            .ok()
    });
    // max_wait_days without wait_for_reply is a content rule: check_content below reports
    // it, at its field's line.
    let content = LessonContent {
        title: raw.title.get_ref().clone(),
        subject: raw.subject.get_ref().clone(),
        phase: phase.unwrap_or_else(Phase::unparsed),
        after_days: after_days.unwrap_or(0),
        send_window,
        prompt: raw.prompt.get_ref().clone(),
        preheader: raw
            .preheader
            .as_ref()
            .map(|p| p.get_ref().trim().to_owned()),
        wait_for_reply,
        max_wait_days,
        body: body.to_owned(),
    };
    let field_lines = |field: &str| -> usize {
        match field {
            "title" => at(raw.title.span()),
            "subject" => at(raw.subject.span()),
            "prompt" => at(raw.prompt.span()),
            "preheader" => raw.preheader.as_ref().map_or(1, |p| at(p.span())),
            "send_window" => raw.send_window.as_ref().map_or(1, |w| at(w.span())),
            "max_wait_days" => raw.max_wait_days.as_ref().map_or(1, |m| at(m.span())),
            _ => body_line,
        }
    };
    for p in rules::check_content(&content) {
        let line = match p.field {
            Some("body") => body_line + p.line.saturating_sub(1),
            Some(f) => field_lines(f),
            None => 1,
        };
        problems.push(Problem { line, ..p });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(LessonFile {
        file_name: file_name.to_owned(),
        number: number.expect("checked"),
        slug: slug.expect("checked"),
        content,
        source: text.to_owned(),
        body_line,
    })
}

impl LessonContent {
    /// The lesson as a file, in drip's canonical layout. Files written by hand keep their
    /// own bytes (revisions store the source); this is for lessons edited in the admin UI.
    pub fn to_source(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = String::from("+++\n");
        out.push_str(&format!("title = {}\n", q(&self.title)));
        out.push_str(&format!("subject = {}\n", q(&self.subject)));
        out.push_str(&format!("phase = {}\n", q(self.phase.as_str())));
        out.push_str(&format!("after_days = {}\n", self.after_days));
        if let Some(w) = &self.send_window {
            out.push_str(&format!("send_window = {}\n", q(w.as_str())));
        }
        if self.wait_for_reply {
            out.push_str("wait_for_reply = true\n");
        }
        if let Some(m) = self.max_wait_days {
            out.push_str(&format!("max_wait_days = {m}\n"));
        }
        if let Some(p) = &self.preheader {
            out.push_str(&format!("preheader = {}\n", q(p)));
        }
        out.push_str(&format!("prompt = {}\n", q(&self.prompt)));
        out.push_str("+++\n");
        out.push_str(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "+++\ntitle = \"T\"\nsubject = \"S\"\nphase = \"honesty\"\nafter_days = 1\nprompt = \"P?\"\n+++\nHello {{ subscriber.first_name }}.\n";

    #[test]
    fn parses_a_good_lesson() {
        let l = parse_lesson("02-a-clean-slate.md", GOOD).unwrap();
        assert_eq!(l.number, 2);
        assert_eq!(l.slug.as_str(), "a-clean-slate");
        assert_eq!(l.content.after_days, 1);
        assert_eq!(l.body_line, 8);
        assert_eq!(l.content.body, "Hello {{ subscriber.first_name }}.\n");
    }

    const COURSE: &str = "title = \"T\"\ndescription = \"D\"\nfrom = \"F\"\nsend_window = \"0 0 8 * * *\"\n[[phases]]\nname = \"one\"\ntitle = \"One\"\n";

    #[test]
    fn a_course_is_in_english_unless_it_names_its_language() {
        assert_eq!(parse_course("c", COURSE).unwrap().language.as_str(), "en");
        let fr = format!("language = \"fr-ca\"\n{COURSE}");
        assert_eq!(parse_course("c", &fr).unwrap().language.as_str(), "fr-CA");
    }

    #[test]
    fn a_malformed_language_is_a_problem_at_its_line() {
        let bad = COURSE.replacen("from =", "\nlanguage = \"french_FR\"\nfrom =", 1);
        let problems = parse_course("c", &bad).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 4);
        let message = &problems[0].message;
        assert!(message.starts_with("language: "), "{message}");
        assert!(message.contains("BCP 47"), "{message}");
    }

    #[test]
    fn canonical_source_parses_back_to_the_same_content() {
        let mut c = parse_lesson("02-x.md", GOOD).unwrap().content;
        c.title = "Quotes \" and \\ back".into();
        c.send_window = Some(SendWindow::parse("0 30 7 * * *").unwrap());
        c.wait_for_reply = true;
        c.max_wait_days = Some(3);
        let again = parse_lesson("02-x.md", &c.to_source()).unwrap().content;
        assert_eq!(again, c);
    }
}
