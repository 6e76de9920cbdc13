//! Rendering: every lesson, in HTML and plain text, against golden files; the HTML is sound
//! and script-free; what a subscriber or an author types cannot become markup.
//!
//! Golden files: tests/golden/<slug>.html and .txt hold each lesson rendered with a fixed
//! context. After an intended change to a lesson, a template or the renderer, regenerate
//! them with
//!
//!     UPDATE_GOLDEN=1 cargo test --test it render
//!
//! and read the diff before committing it.

use std::path::Path;

use drip::curriculum::{self, LessonFile};
use drip::render::{
    CourseVars, LessonVars, Links, MailContext, MailKind, RenderedMail, Renderer, SubscriberVars,
};
use scraper::{Html, Selector};

use crate::support::repo;

const UNSUBSCRIBE: &str = "https://course.example.org/unsubscribe/TOKEN";
const PREFERENCES: &str = "https://course.example.org/preferences/TOKEN";
const JOURNAL: &str = "https://course.example.org/journal/TOKEN";

fn renderer() -> Renderer {
    Renderer::load(&repo("templates")).unwrap()
}

/// The fixed context of the golden files.
fn context(name: &str, course: &curriculum::CourseFile) -> MailContext {
    MailContext {
        subscriber: SubscriberVars::new(name, "sam@example.com", "Europe/Paris", "there"),
        course: CourseVars {
            title: course.title.clone(),
            description: course.description.clone(),
            footer: course.footer.clone(),
            language: course.language.to_string(),
        },
        links: Links {
            unsubscribe: UNSUBSCRIBE.into(),
            preferences: PREFERENCES.into(),
            journal: JOURNAL.into(),
        },
    }
}

fn vars(
    course: &curriculum::CourseFile,
    lesson: &LessonFile,
    number: usize,
    of: usize,
) -> LessonVars {
    LessonVars {
        title: lesson.content.title.clone(),
        number,
        of,
        phase: course
            .phases
            .get(&lesson.content.phase)
            .expect("a declared phase")
            .title
            .clone(),
    }
}

/// Every lesson of a course folder rendered for "Sam Rivera": (golden name, lesson, mail).
fn render_course(dir: &str, prefix: &str) -> Vec<(String, LessonFile, RenderedMail)> {
    let course = curriculum::load_dir(&repo(dir)).unwrap_or_else(|ps| panic!("{dir}: {ps:#?}"));
    let ctx = context("Sam Rivera", &course.course);
    let r = renderer();
    let of = course.lessons.len();
    course
        .lessons
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mail = r
                .lesson(&l.content, &vars(&course.course, l, i + 1, of), &ctx)
                .unwrap_or_else(|e| panic!("{}: {e:#}", l.file_name));
            (format!("{prefix}{}", l.slug), l.clone(), mail)
        })
        .collect()
}

fn all_rendered() -> Vec<(String, LessonFile, RenderedMail)> {
    let mut all = render_course("lessons/rebuilding-trust", "");
    // The fixture course has what the shipped one lacks: links, quotes, numbered lists.
    all.extend(render_course(
        "tests/fixtures/lessons/small-course",
        "small-course-",
    ));
    all
}

fn check_golden(path: &Path, actual: &str, update: bool, mismatches: &mut Vec<String>) {
    if update {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .map_or(expected.lines().count().min(actual.lines().count()), |i| i);
            mismatches.push(format!(
                "{}: differs at line {}:\n  golden:   {:?}\n  rendered: {:?}",
                path.display(),
                line + 1,
                expected.lines().nth(line).unwrap_or("<end>"),
                actual.lines().nth(line).unwrap_or("<end>")
            ));
        }
        Err(e) => mismatches.push(format!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )),
    }
}

#[test]
fn every_lesson_renders_in_both_formats_like_its_golden_file() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let golden = repo("tests/golden");
    let rendered = all_rendered();
    let shipped = curriculum::load_dir(&repo("lessons/rebuilding-trust")).unwrap();
    assert_eq!(rendered.len(), shipped.lessons.len() + 3);
    let mut mismatches = Vec::new();
    for (name, lesson, mail) in &rendered {
        assert_eq!(mail.subject, lesson.content.subject);
        // What every lesson mail has, whatever its golden file says.
        assert!(
            mail.html.contains(&format!(
                "<title>{}</title>",
                lesson.content.subject.replace('&', "&amp;")
            )),
            "{name}"
        );
        assert!(mail.html.contains("max-width: 600px"), "{name}");
        assert!(
            mail.html.contains("role=\"presentation\""),
            "{name}: table layout"
        );
        assert!(mail.html.contains("class=\"prompt\""), "{name}: prompt box");
        assert!(mail.html.contains("simply reply to this email"), "{name}");
        assert!(
            mail.html.contains(&format!("href=\"{UNSUBSCRIBE}\"")),
            "{name}"
        );
        assert!(
            mail.html.contains(&format!("href=\"{PREFERENCES}\"")),
            "{name}"
        );
        assert!(
            mail.html
                .contains("You receive this because you signed up for"),
            "{name}: the reason"
        );
        assert!(
            !mail.html.contains("{{") && !mail.text.contains("{{"),
            "{name}: a template tag left"
        );
        assert!(mail.text.contains("YOUR REFLECTION"), "{name}");
        assert!(mail.text.contains(lesson.content.prompt.trim()), "{name}");
        assert!(mail.text.contains("simply reply to this email"), "{name}");
        assert!(
            mail.text.contains(&format!("Unsubscribe: {UNSUBSCRIBE}")),
            "{name}"
        );
        assert!(mail.text.contains("Sam"), "{name}: the first name");
        assert!(
            !mail.text.contains('<') && !mail.text.contains("**"),
            "{name}: the text part is text, not HTML or Markdown source"
        );
        check_golden(
            &golden.join(format!("{name}.html")),
            &mail.html,
            update,
            &mut mismatches,
        );
        check_golden(
            &golden.join(format!("{name}.txt")),
            &mail.text,
            update,
            &mut mismatches,
        );
    }
    assert!(
        mismatches.is_empty(),
        "rendering differs from the golden files (UPDATE_GOLDEN=1 regenerates them):\n{}",
        mismatches.join("\n")
    );

    // The fixture lesson with links: numbered in the text, listed at the end.
    let (_, _, look_back) = rendered
        .iter()
        .find(|(n, _, _)| n == "small-course-look-back")
        .unwrap();
    assert!(
        look_back.text.contains("The two articles [1] say more."),
        "{}",
        look_back.text
    );
    assert!(
        look_back
            .text
            .contains("Links:\n[1] https://example.org/articles\n[2] mailto:authors@example.org\n"),
        "{}",
        look_back.text
    );
    assert!(
        look_back
            .text
            .contains("\n> Trust is built in drops and lost in buckets.\n"),
        "{}",
        look_back.text
    );
    assert!(
        look_back
            .text
            .contains("Write it *down*, then _read it aloud_."),
        "{}",
        look_back.text
    );
    assert!(
        look_back
            .html
            .contains("<a href=\"https://example.org/articles\""),
        "{}",
        look_back.html
    );
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

#[test]
fn lesson_html_parses_and_has_no_script() {
    for (name, _, mail) in all_rendered() {
        let doc = Html::parse_document(&mail.html);
        assert!(
            doc.errors.is_empty(),
            "{name}: HTML parse errors {:?}",
            doc.errors
        );
        assert!(mail.html.starts_with("<!DOCTYPE html>"), "{name}");
        assert_eq!(
            mail.html.matches("<html").count(),
            1,
            "{name}: one <html> tag in the source"
        );
        assert_eq!(doc.select(&sel("html")).count(), 1, "{name}");
        assert_eq!(doc.select(&sel("body")).count(), 1, "{name}");
        assert_eq!(doc.select(&sel("script")).count(), 0, "{name}: a <script>");
        assert_eq!(
            doc.select(&sel("style")).count(),
            0,
            "{name}: a <style> left: CSS must be inlined"
        );
        assert!(
            doc.select(&sel("link, iframe, object, embed, form"))
                .next()
                .is_none(),
            "{name}"
        );
        for element in doc.select(&sel("*")) {
            for (attr, value) in element.value().attrs() {
                assert!(
                    !attr.to_ascii_lowercase().starts_with("on"),
                    "{name}: event attribute {attr}={value:?} on <{}>",
                    element.value().name()
                );
                assert!(
                    !value
                        .trim_start()
                        .to_ascii_lowercase()
                        .starts_with("javascript:"),
                    "{name}: {attr}={value:?}"
                );
            }
        }
        // Styles are inline: the card is 600 wide at most, the paragraphs carry their own.
        let card = doc
            .select(&sel("table.card"))
            .next()
            .unwrap_or_else(|| panic!("{name}: no card table"));
        assert!(
            card.value()
                .attr("style")
                .unwrap_or("")
                .contains("max-width: 600px"),
            "{name}"
        );
        assert!(
            doc.select(&sel("td.pad p"))
                .all(|p| p.value().attr("style").is_some()),
            "{name}: a paragraph without inline style"
        );
        let prompt = doc
            .select(&sel("td.prompt"))
            .next()
            .unwrap_or_else(|| panic!("{name}: no prompt box"));
        assert!(
            prompt
                .text()
                .collect::<String>()
                .contains("reply to this email"),
            "{name}"
        );
        let unsubscribe: Vec<_> = doc
            .select(&sel("a[href]"))
            .filter(|a| a.value().attr("href") == Some(UNSUBSCRIBE))
            .collect();
        assert_eq!(unsubscribe.len(), 1, "{name}: the unsubscribe link");
        assert_eq!(
            unsubscribe[0].text().collect::<String>().trim(),
            "Unsubscribe"
        );
        for a in doc.select(&sel("a[href]")) {
            let href = a.value().attr("href").unwrap();
            assert!(
                href.starts_with("https://") || href.starts_with("mailto:"),
                "{name}: link {href}"
            );
        }
    }
}

fn small_lesson(body: &str, prompt: &str) -> curriculum::LessonContent {
    let mut l = curriculum::parse_lesson(
        "01-welcome.md",
        &std::fs::read_to_string(repo("tests/fixtures/lessons/small-course/01-welcome.md"))
            .unwrap(),
    )
    .unwrap()
    .content;
    l.body = body.to_owned();
    l.prompt = prompt.to_owned();
    l
}

fn small_course() -> curriculum::CourseFile {
    curriculum::load_dir(&repo("tests/fixtures/lessons/small-course"))
        .unwrap()
        .course
}

fn lesson_vars() -> LessonVars {
    LessonVars {
        title: "Welcome".into(),
        number: 1,
        of: 3,
        phase: "Honesty".into(),
    }
}

#[test]
fn a_prompt_with_markup_shows_escaped() {
    let r = renderer();
    let course = small_course();
    let lesson = small_lesson(
        "Hi {{ subscriber.first_name }}, welcome.\n",
        "What <b>stops</b> you?",
    );
    let mail = r
        .lesson(&lesson, &lesson_vars(), &context("Sam", &course))
        .unwrap();
    assert!(
        mail.html.contains("What &lt;b&gt;stops&lt;/b&gt; you?"),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("<b>"));
    let doc = Html::parse_document(&mail.html);
    assert_eq!(doc.select(&sel("b")).count(), 0);
    assert!(
        doc.select(&sel("td.prompt"))
            .next()
            .unwrap()
            .text()
            .collect::<String>()
            .contains("What <b>stops</b> you?")
    );
    assert!(
        mail.text.contains("\nWhat <b>stops</b> you?\n"),
        "{}",
        mail.text
    );

    // A subscriber's name is text in both parts: no markup, no link, whatever it holds.
    for name in [
        "<script>alert(1)</script>",
        "[x](https://evil.example)",
        "<https://evil.example>",
        "**Bold**_and_`code`",
        "&lt;b&gt;",
    ] {
        let mail = r
            .lesson(&lesson, &lesson_vars(), &context(name, &course))
            .unwrap();
        let doc = Html::parse_document(&mail.html);
        assert_eq!(doc.select(&sel("script")).count(), 0, "{name}");
        assert!(
            doc.select(&sel("td.pad a")).next().is_none(),
            "{name}: became a link in {}",
            mail.html
        );
        assert!(
            doc.select(&sel("td.pad strong, td.pad em, td.pad code"))
                .next()
                .is_none(),
            "{name}: became markup"
        );
        let greeting = doc
            .select(&sel("td.pad p"))
            .next()
            .unwrap()
            .text()
            .collect::<String>();
        assert_eq!(
            greeting,
            format!("Hi {name}, welcome."),
            "the HTML shows the name as typed"
        );
        assert!(!mail.html.contains("href=\"https://evil.example"), "{name}");
        assert!(
            mail.text.contains(&format!("Hi {name}, welcome.")),
            "{name}: the text shows the name as typed:\n{}",
            mail.text
        );
        assert!(
            !mail.text.contains("Links:"),
            "{name}: became a link in the text part:\n{}",
            mail.text
        );
    }

    // The same holds in the other mails, where the name goes through the HTML templates.
    let ctx = context("<script>alert(1)</script>", &course);
    let confirm = r
        .mail(
            MailKind::Confirm,
            &ctx,
            minijinja::context! { confirm_url => "https://course.example.org/confirm/TOKEN" },
        )
        .unwrap();
    assert!(
        confirm
            .html
            .contains("Hi &lt;script&gt;alert(1)&lt;/script&gt;,"),
        "{}",
        confirm.html
    );
    assert_eq!(
        Html::parse_document(&confirm.html)
            .select(&sel("script"))
            .count(),
        0
    );
}

#[test]
fn a_missing_variable_is_an_error_not_blank_text() {
    let r = renderer();
    let course = small_course();
    let lesson = small_lesson(
        "Hi {{ subscriber.first_name }},\n\nSee you, {{ subscriber.nickname }}.\n",
        "Why?",
    );
    let err = r
        .lesson(&lesson, &lesson_vars(), &context("Sam", &course))
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("subscriber.nickname"),
        "the error names the variable: {message}"
    );
    assert!(message.contains("line 3"), "and its line: {message}");
    // Lint catches it before it ever gets this far.
    let problems = curriculum::check_content(&lesson);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("subscriber.nickname"));

    // An unknown attribute of a known object in the layout's variables fails too.
    let lesson = small_lesson("Lesson {{ lesson.position }} of {{ lesson.of }}.\n", "Why?");
    let message = format!(
        "{:#}",
        r.lesson(&lesson, &lesson_vars(), &context("Sam", &course))
            .unwrap_err()
    );
    assert!(message.contains("lesson.position"), "{message}");
}

#[test]
fn confirm_welcome_goodbye_and_notice_mails_render() {
    let r = renderer();
    let course = small_course();
    let ctx = context("Sam Rivera", &course);
    let confirm_url = "https://course.example.org/confirm/CONFIRMTOKEN";
    let cases: Vec<(MailKind, minijinja::Value, &str, Vec<&str>)> = vec![
        (
            MailKind::Confirm,
            minijinja::context! { confirm_url => confirm_url },
            "Please confirm: A Small Course",
            vec![confirm_url],
        ),
        (
            MailKind::Welcome,
            minijinja::context! { first_lesson_at => "tomorrow at 8:00" },
            "You're in: A Small Course",
            vec![UNSUBSCRIBE, PREFERENCES, JOURNAL],
        ),
        (
            MailKind::Goodbye,
            minijinja::context! {},
            "You have left A Small Course",
            vec![JOURNAL],
        ),
        (
            MailKind::Notice,
            minijinja::context! { title => "Your course is paused", paragraphs => vec!["We paused your lessons.", "Reply RESUME to continue."] },
            "Your course is paused",
            vec![UNSUBSCRIBE, PREFERENCES],
        ),
    ];
    for (kind, extra, subject, links) in cases {
        let mail = r
            .mail(kind, &ctx, extra)
            .unwrap_or_else(|e| panic!("{kind:?}: {e:#}"));
        assert_eq!(mail.subject, subject, "{kind:?}");
        assert!(!mail.subject.contains('\n'));
        assert!(
            mail.html.contains("Hi Sam,") && mail.text.contains("Hi Sam,"),
            "{kind:?}"
        );
        let doc = Html::parse_document(&mail.html);
        assert!(doc.errors.is_empty(), "{kind:?}: {:?}", doc.errors);
        assert_eq!(doc.select(&sel("script, style")).count(), 0, "{kind:?}");
        assert_eq!(
            doc.select(&sel("title"))
                .next()
                .unwrap()
                .text()
                .collect::<String>(),
            subject,
            "{kind:?}"
        );
        let hrefs: Vec<&str> = doc
            .select(&sel("a[href]"))
            .filter_map(|a| a.value().attr("href"))
            .collect();
        for link in links {
            assert!(
                hrefs.contains(&link),
                "{kind:?}: no <a href={link}> in {hrefs:?}"
            );
            assert!(
                mail.text.contains(link),
                "{kind:?}: {link} not in the text:\n{}",
                mail.text
            );
        }
        match kind {
            MailKind::Confirm => {
                // Not subscribed yet: no unsubscribe footer, but the reason for this mail.
                assert!(!mail.text.contains(UNSUBSCRIBE), "{}", mail.text);
                assert!(
                    mail.text
                        .contains("this address was entered on the sign-up page")
                );
                assert!(mail.text.contains("A Small Course"));
            }
            MailKind::Welcome => {
                assert!(mail.text.contains("the first one comes tomorrow at 8:00"))
            }
            MailKind::Goodbye => assert!(mail.text.contains("unsubscribed from A Small Course")),
            MailKind::Notice => {
                assert!(
                    mail.html.contains("<h1") && mail.html.contains("Your course is paused</h1>")
                );
                assert!(
                    mail.text
                        .contains("We paused your lessons.\n\nReply RESUME to continue."),
                    "{}",
                    mail.text
                );
            }
        }
    }
    // A mail missing its own variable is an error too, not a blank link.
    let err = r
        .mail(MailKind::Confirm, &ctx, minijinja::context! {})
        .unwrap_err();
    assert!(format!("{err:#}").contains("email/confirm.html"), "{err:#}");
    assert!(format!("{err:#}").contains("undefined"), "{err:#}");
}
