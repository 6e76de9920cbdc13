//! Broken lesson files: each is a `path:line: message` problem, and a sync of a folder with
//! any problem changes nothing, not even the valid edits beside it. (Every lint rule is
//! covered line by line in tests/it/curriculum.rs; these are the hostile ones.)

use std::path::Path;

use chrono::Utc;

use super::{assert_unchanged, snapshot};
use crate::curriculum::{Break, apply, edit};
use crate::on_both_databases;
use crate::support::{Backend, TestApp, repo};

const SMALL: &str = "tests/fixtures/lessons/small-course";

struct Lesson {
    case: &'static str,
    breaks: &'static [Break],
    file: &'static str,
    line: usize,
    says: &'static str,
}

const CASES: &[Lesson] = &[
    Lesson {
        case: "broken TOML (a string never closed)",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "subject = \"Lesson 2 · Look back\"",
            "subject = \"Lesson 2 · Look back",
        )],
        file: "02-look-back.md",
        line: 3,
        says: "invalid basic string",
    },
    Lesson {
        case: "TOML value of the wrong type",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "after_days = 1",
            "after_days = \"one\"",
        )],
        file: "02-look-back.md",
        line: 5,
        says: "invalid type",
    },
    Lesson {
        case: "unknown front-matter key",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "after_days = 1\n",
            "after_days = 1\nsend_to = \"everyone@example.com\"\n",
        )],
        file: "02-look-back.md",
        line: 6,
        says: "unknown field `send_to`",
    },
    Lesson {
        case: "missing required field",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "title = \"Look back\"\n",
            "",
        )],
        file: "02-look-back.md",
        line: 2,
        says: "missing field `title`",
    },
    Lesson {
        case: "front matter never closed",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "+++\nGood morning",
            "Good morning",
        )],
        file: "02-look-back.md",
        line: 1,
        says: "not closed by a line `+++`",
    },
    Lesson {
        case: "subject with CR/LF (a header injection)",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "subject = \"Lesson 2 · Look back\"",
            "subject = \"Look back\\r\\nBcc: all@example.com\"",
        )],
        file: "02-look-back.md",
        line: 3,
        says: "subject must be one line",
    },
    Lesson {
        case: "unknown template variable",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "See you tomorrow.",
            "Size {{ subscriber.shoe_size }}, see you tomorrow.",
        )],
        file: "03-keep-going.md",
        line: 16,
        says: "unknown template variable `subscriber.shoe_size`",
    },
    Lesson {
        case: "template reaching for the configuration",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "See you tomorrow.",
            "{{ config.security.secret_key }}",
        )],
        file: "03-keep-going.md",
        line: 16,
        says: "unknown template variable `config.security.secret_key`",
    },
    Lesson {
        case: "template syntax error",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "See you tomorrow.",
            "{% if lesson.of > 2 %}See you tomorrow.",
        )],
        file: "03-keep-going.md",
        line: 16,
        says: "template error",
    },
    Lesson {
        case: "script tag in the body",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "See you tomorrow.",
            "<script>alert(1)</script>",
        )],
        file: "03-keep-going.md",
        line: 16,
        says: "a script tag is not allowed",
    },
    Lesson {
        case: "script tag in capitals inside a paragraph",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "See you tomorrow.",
            "See you <SCRIPT SRC=//evil.example/x.js></SCRIPT> tomorrow.",
        )],
        file: "03-keep-going.md",
        line: 16,
        says: "a script tag is not allowed",
    },
    Lesson {
        case: "javascript: link",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "(https://example.org/articles)",
            "(javascript:alert(1))",
        )],
        file: "02-look-back.md",
        line: 12,
        says: "must be an absolute http(s):// or mailto: address",
    },
    Lesson {
        case: "duplicate slug",
        breaks: &[Break::Copy("02-look-back.md", "04-look-back.md")],
        file: "04-look-back.md",
        line: 1,
        says: "duplicate slug \"look-back\"",
    },
    Lesson {
        case: "duplicate number",
        breaks: &[Break::Copy("02-look-back.md", "02-look-again.md")],
        file: "02-look-back.md",
        line: 1,
        says: "duplicate lesson number 2",
    },
    Lesson {
        case: "lesson file not UTF-8",
        breaks: &[Break::Write(
            "04-latin.md",
            b"+++\ntitle = \"Caf\xe9\"\n+++\n",
        )],
        file: "04-latin.md",
        line: 1,
        says: "is not UTF-8 text",
    },
    Lesson {
        case: "course sender with an address that is not one",
        breaks: &[Break::Edit(
            "course.toml",
            "from = \"A Small Course\"",
            "from = \"A Small Course <not an address>\"",
        )],
        file: "course.toml",
        line: 3,
        says: "from: ",
    },
];

/// The fixture course afresh in `dir`; for a case, with valid edits to the two files it may
/// leave alone: a sync that took any part of a broken folder would show them.
fn fresh_course(dir: &Path, case: Option<&Lesson>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(repo(SMALL)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let Some(case) = case else {
        return;
    };
    let touched = |file: &str| {
        case.breaks.iter().any(|b| match b {
            Break::Edit(f, ..) | Break::Write(f, _) | Break::Copy(f, _) => *f == file,
            Break::Rename(f, _) => *f == file,
        })
    };
    for (file, old, new) in [
        (
            "01-welcome.md",
            "title = \"Welcome\"",
            "title = \"Welcome, again\"",
        ),
        (
            "course.toml",
            "description = \"Three lessons",
            "description = \"Three short lessons",
        ),
    ] {
        if !touched(file) {
            edit(dir, file, old, new);
        }
    }
}

on_both_databases!(a_broken_lesson_file_names_path_and_line_and_a_sync_changes_nothing,);

async fn a_broken_lesson_file_names_path_and_line_and_a_sync_changes_nothing(backend: Backend) {
    let lessons = tempfile::tempdir().unwrap();
    let dir = lessons.path().join("small-course");
    let root = lessons.path().to_owned();
    let t = TestApp::build(backend, None, |c| {
        c.course.lessons_dir = root;
        c.course.default = "small-course".into();
    })
    .await;
    fresh_course(&dir, None);
    t.app.course(None).await.expect("the clean fixture syncs");
    let before = snapshot(&t.app).await;
    for case in CASES {
        fresh_course(&dir, Some(case));
        for b in case.breaks {
            apply(&dir, b);
        }
        let err = t
            .app
            .sync_lessons(false, Utc::now(), None)
            .await
            .expect_err(case.case);
        let text = format!("{err:#}");
        let want = format!("{}:{}: ", dir.join(case.file).display(), case.line);
        assert!(
            text.lines()
                .any(|l| l.starts_with(&want) && l.contains(case.says)),
            "{}: no line `{want}…{}` in\n{text}",
            case.case,
            case.says
        );
        assert_unchanged(&t, case.case, &before, &snapshot(&t.app).await);
    }
}
