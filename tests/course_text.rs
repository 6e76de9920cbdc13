//! The shipped courses' text: every lesson is a short read, and none shares a run of eight
//! words with the articles the course was developed from (`../shared/seeds/` beside the
//! crate). The articles give the ideas; the sentences must be the course's own.
//!
//! Words are compared normalised: lowercase, curly quotes folded to straight ones, an
//! apostrophe inside a word dropped ("don't" and "dont" are one word), and every other
//! character that is not a letter or a digit a break between words. Template variables
//! (`{{ … }}`) are not words of the text.
//!
//! The seeds folder lives outside the repository. Without it the originality check says
//! so in one line and passes, except in CI (`CI=true`), where a missing folder fails.

use std::path::{Path, PathBuf};

/// A lesson body of this many words or more is too long for one sitting.
const MAX_BODY_WORDS: usize = 450;
/// The shortest run of shared words that counts as copying.
const RUN: usize = 8;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `lessons/<course>/NN-slug.md`, sorted.
fn lesson_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let lessons = manifest().join("lessons");
    for course in std::fs::read_dir(&lessons).expect("read lessons/") {
        let course = course.expect("lessons/ entry").path();
        if !course.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&course).expect("read a course folder") {
            let path = entry.expect("course entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let numbered = name.len() > 3
                && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
                && name.as_bytes()[2] == b'-';
            if numbered && name.ends_with(".md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// (front matter, body) of a lesson file: the text between the two `+++` lines, and after.
fn split(text: &str, path: &Path) -> (String, String) {
    let mut lines = text.lines();
    assert_eq!(
        lines.next().map(str::trim_end),
        Some("+++"),
        "{}: a lesson starts with +++",
        path.display()
    );
    let mut front = String::new();
    for line in lines.by_ref() {
        if line.trim_end() == "+++" {
            let body: Vec<&str> = lines.collect();
            return (front, body.join("\n"));
        }
        front.push_str(line);
        front.push('\n');
    }
    panic!(
        "{}: the front matter is never closed by +++",
        path.display()
    );
}

/// The text without template expressions and tags.
fn without_templates(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start..];
        let close = if after.starts_with("{{") {
            Some("}}")
        } else if after.starts_with("{%") {
            Some("%}")
        } else {
            None
        };
        match close.and_then(|c| after.find(c).map(|end| end + c.len())) {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push(' ');
                rest = &after[end..];
            }
            None => {
                out.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Normalised words: lowercase letters and digits; apostrophes inside words dropped.
fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{2032}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{2033}' => '"',
            c => c,
        })
        .collect();
    let mut out = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = folded.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if c == '\''
            && !word.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
        {
            // an apostrophe inside a word: "don't" -> "dont"
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Words of a lesson body as a reader counts them: Markdown markers and template
/// variables are not words.
fn body_word_count(body: &str) -> usize {
    without_templates(body)
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// The longest run of consecutive words that `a` shares with `b` (the words themselves),
/// by dynamic programming over the two word lists.
fn longest_shared_run(a: &[String], b: &[String]) -> Vec<String> {
    let mut best = (0usize, 0usize); // (length, end index in a)
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for (i, wa) in a.iter().enumerate() {
        for (j, wb) in b.iter().enumerate() {
            cur[j + 1] = if wa == wb { prev[j] + 1 } else { 0 };
            if cur[j + 1] > best.0 {
                best = (cur[j + 1], i + 1);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    a[best.1 - best.0..best.1].to_vec()
}

#[test]
fn word_counting_and_normalising() {
    assert_eq!(
        words("Don\u{2019}t \u{201C}test\u{201D} the water\u{2014}twice, O'Brien's 2 dogs."),
        [
            "dont", "test", "the", "water", "twice", "obriens", "2", "dogs"
        ]
    );
    assert_eq!(
        words("'quoted' - rock 'n' roll"),
        ["quoted", "rock", "n", "roll"]
    );
    assert_eq!(
        body_word_count("Hi {{ subscriber.first_name }},\n\n## Today's step\n\n- one — two"),
        5
    );
    let a = words("we all said the quick brown fox jumps high today");
    let b = words("Yesterday the quick, brown fox jumps; nobody said");
    assert_eq!(
        longest_shared_run(&a, &b),
        ["the", "quick", "brown", "fox", "jumps"]
    );
    assert!(longest_shared_run(&a, &words("nothing here")).is_empty());
}

#[test]
fn every_lesson_is_a_short_read() {
    let files = lesson_files();
    assert!(!files.is_empty(), "no lesson files under lessons/");
    let mut too_long = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read lesson");
        let (_, body) = split(&text, path);
        let n = body_word_count(&body);
        println!("{:>4} words  {}", n, path.display());
        if n >= MAX_BODY_WORDS {
            too_long.push(format!("{}: {n} words", path.display()));
        }
    }
    assert!(
        too_long.is_empty(),
        "lesson bodies must stay under {MAX_BODY_WORDS} words:\n{}",
        too_long.join("\n")
    );
}

#[test]
fn no_eight_word_run_is_shared_with_the_source_articles() {
    let seeds = manifest().join("..").join("shared").join("seeds");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Ok(entries) = std::fs::read_dir(&seeds) else {
        assert!(
            !ci,
            "{} is missing: CI must check the lessons against the source articles",
            seeds.display()
        );
        println!(
            "skipped: no source articles at {} (the originality check needs them)",
            seeds.display()
        );
        return;
    };
    let mut articles: Vec<(String, Vec<String>)> = entries
        .map(|e| e.expect("seeds entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let text =
                String::from_utf8_lossy(&std::fs::read(&p).expect("read article")).into_owned();
            (p.display().to_string(), words(&text))
        })
        .collect();
    articles.sort();
    assert!(
        !articles.is_empty(),
        "{} holds no articles",
        seeds.display()
    );
    let mut texts: Vec<PathBuf> = lesson_files();
    // course.toml's title and description are course text too.
    texts.extend(
        lesson_files()
            .iter()
            .filter_map(|p| p.parent().map(|d| d.join("course.toml")))
            .collect::<std::collections::BTreeSet<_>>(),
    );
    let mut longest: (Vec<String>, String, String) = (Vec::new(), String::new(), String::new());
    let mut copied = Vec::new();
    for path in &texts {
        let text = std::fs::read_to_string(path).expect("read course text");
        let ours = words(&without_templates(&text));
        for (article, theirs) in &articles {
            let run = longest_shared_run(&ours, theirs);
            if run.len() >= RUN {
                copied.push(format!(
                    "{} shares {} words with {}: \"{}\"",
                    path.display(),
                    run.len(),
                    article,
                    run.join(" ")
                ));
            }
            if run.len() > longest.0.len() {
                longest = (run, path.display().to_string(), article.clone());
            }
        }
    }
    println!(
        "longest run shared with the articles: {} words, \"{}\" ({} and {})",
        longest.0.len(),
        longest.0.join(" "),
        longest.1,
        longest.2
    );
    assert!(
        copied.is_empty(),
        "runs of {RUN}+ words copied from the articles:\n{}",
        copied.join("\n")
    );
}

/// The second shipped course: how to write a course with drip.
const WRITING_COURSE: &str = "write-your-first-course";

#[test]
fn the_course_on_writing_a_course_lints_clean_with_phases_of_its_own() {
    let dir = manifest().join("lessons").join(WRITING_COURSE);
    let course = drip::curriculum::load_dir(&dir)
        .unwrap_or_else(|ps| panic!("{} fails lint: {ps:#?}", dir.display()));
    assert_eq!(course.course.slug.as_str(), WRITING_COURSE);
    let lessons = &course.lessons;
    assert!(
        (4..=7).contains(&lessons.len()),
        "a short course: {} lessons",
        lessons.len()
    );
    let numbers: Vec<u32> = lessons.iter().map(|l| l.number).collect();
    assert_eq!(numbers, (1..=lessons.len() as u32).collect::<Vec<_>>());

    // Its phases are its own: declared in its course.toml, none borrowed from the first
    // course, each one used, and the lessons go through them in the declared order.
    let declared = &course.course.phases;
    let trust = drip::curriculum::load_dir(&manifest().join("lessons").join("rebuilding-trust"))
        .unwrap_or_else(|ps| panic!("rebuilding-trust fails lint: {ps:#?}"));
    for phase in declared.iter() {
        assert!(
            trust.course.phases.get(&phase.name).is_none(),
            "phase {:?} is Rebuilding Trust's",
            phase.name.as_str()
        );
        assert!(!phase.description.trim().is_empty(), "{:?}", phase.name);
        assert!(
            lessons.iter().any(|l| l.content.phase == phase.name),
            "no lesson in phase {:?}",
            phase.name.as_str()
        );
    }
    assert!(declared.iter().count() >= 2, "one phase is not a path");
    for pair in lessons.windows(2) {
        assert!(
            !declared.out_of_order(&pair[0].content.phase, &pair[1].content.phase),
            "{} goes back a phase",
            pair[1].file_name
        );
    }

    // Every lesson ends with one real question.
    for l in lessons {
        let prompt = l.content.prompt.trim();
        assert!(!prompt.is_empty(), "{}: no prompt", l.file_name);
        assert!(
            prompt.ends_with('?') && prompt.matches('?').count() == 1,
            "{}: the prompt should ask exactly one question: {prompt:?}",
            l.file_name
        );
    }
    assert_eq!(
        lessons[0].content.after_days, 0,
        "the first lesson comes right after confirming"
    );
}

#[test]
fn the_course_on_writing_a_course_renders_its_examples_literally() {
    use drip::render::{CourseVars, LessonVars, Links, MailContext, Renderer, SubscriberVars};
    let course = drip::curriculum::load_dir(&manifest().join("lessons").join(WRITING_COURSE))
        .unwrap_or_else(|ps| panic!("{ps:#?}"));
    let renderer = Renderer::load(&manifest().join("templates")).expect("templates");
    let ctx = MailContext {
        subscriber: SubscriberVars::new("Sam Rivera", "sam@example.com", "Europe/Paris", "there"),
        course: CourseVars {
            title: course.course.title.clone(),
            description: course.course.description.clone(),
            footer: course.course.footer.clone(),
            language: course.course.language.as_str().to_owned(),
        },
        links: Links {
            unsubscribe: "https://course.example.org/unsubscribe/T".into(),
            preferences: "https://course.example.org/preferences/T".into(),
            journal: "https://course.example.org/journal/T".into(),
        },
    };
    let of = course.lessons.len();
    let mut shown_literally = 0;
    for (i, l) in course.lessons.iter().enumerate() {
        let vars = LessonVars {
            title: l.content.title.clone(),
            number: i + 1,
            of,
            phase: course
                .course
                .phases
                .get(&l.content.phase)
                .expect("a declared phase")
                .title
                .clone(),
        };
        let mail = renderer
            .lesson(&l.content, &vars, &ctx)
            .unwrap_or_else(|e| panic!("{}: {e:#}", l.file_name));
        assert!(
            mail.text.contains("Hi Sam,"),
            "{}: the greeting uses the reader's name",
            l.file_name
        );
        for part in [&mail.text, &mail.html] {
            assert!(
                !part.contains("{%"),
                "{}: a template tag leaked",
                l.file_name
            );
        }
        // A lesson that teaches the template syntax shows it as written, inside
        // {% raw %}, rather than filling it in.
        if l.content.body.contains("{% raw %}") {
            assert!(
                mail.text.contains("{{ subscriber.first_name }}")
                    && mail.html.contains("{{ subscriber.first_name }}"),
                "{}: the example variable should appear as written",
                l.file_name
            );
            shown_literally += 1;
        }
    }
    assert!(
        shown_literally >= 1,
        "the lesson on the file format shows a variable"
    );
}
