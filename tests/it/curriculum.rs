//! Lesson files: the shipped course passes lint, every lint rule names its file and line,
//! and sync/export keep files and admin edits apart without losing either.

use std::path::{Path, PathBuf};

use drip::curriculum::{self, Problem, SyncOutcome, SyncReport};
use drip::db::{self, Db};
use drip::domain::Phase;

use crate::on_both_databases;
use crate::support::{Backend, TestDb, repo};

const SHIPPED: &str = "lessons/rebuilding-trust";
/// A valid three-lesson course (phases notice, reflect, act) that the lint cases break.
const SMALL: &str = "tests/fixtures/lessons/small-course";
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// Copies the files of a course folder into `parent/<name>`, returning that folder.
fn copy_course(from: &Path, parent: &Path, name: &str) -> PathBuf {
    let to = parent.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// How many lessons the shipped course has.
fn shipped_lessons() -> usize {
    std::fs::read_dir(repo(SHIPPED))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".md")
        })
        .count()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

/// Replaces exactly one occurrence of `old` in a file of the folder.
pub fn edit(dir: &Path, file: &str, old: &str, new: &str) {
    let text = read(dir, file);
    assert_eq!(
        text.matches(old).count(),
        1,
        "{old:?} should occur once in {file}"
    );
    write(dir, file, &text.replacen(old, new, 1));
}

fn outcome<'a>(report: &'a SyncReport, slug: &str) -> &'a SyncOutcome {
    &report
        .lessons
        .iter()
        .find(|(s, _)| s == slug)
        .unwrap_or_else(|| panic!("no outcome for {slug}: {report:?}"))
        .1
}

fn assert_all_unchanged_except(report: &SyncReport, except: &[&str]) {
    for (slug, o) in &report.lessons {
        if !except.contains(&slug.as_str()) {
            assert_eq!(o, &SyncOutcome::Unchanged, "{slug}");
        }
    }
}

async fn sync(db: &Db, dir: &Path, force: bool) -> SyncReport {
    let course =
        curriculum::load_dir(dir).unwrap_or_else(|ps| panic!("{dir:?} does not load: {ps:#?}"));
    curriculum::sync_course(db, &course, force, NOW)
        .await
        .unwrap()
}

/// An admin's edit: a new current revision by `author`, as the admin UI stores it.
async fn admin_edit(
    db: &Db,
    course_id: i64,
    slug: &str,
    author: &str,
    change: impl FnOnce(&mut curriculum::LessonContent),
) -> curriculum::LessonContent {
    let lesson = db::lessons::by_slug(db, course_id, slug)
        .await
        .unwrap()
        .unwrap();
    let mut content = lesson.content.clone();
    change(&mut content);
    assert!(
        curriculum::check_content(&content).is_empty(),
        "the edit itself must be valid"
    );
    let mut tx = db.begin_write().await.unwrap();
    db::lessons::insert_revision(
        &mut tx,
        lesson.id,
        lesson.revision + 1,
        &content,
        &content.to_source(),
        author,
        "edited in the admin UI",
        NOW + 60,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    content
}

#[test]
fn the_shipped_course_passes_lint() {
    let course = curriculum::load_dir(&repo(SHIPPED))
        .unwrap_or_else(|ps| panic!("the shipped course fails lint: {ps:#?}"));
    let lessons = &course.lessons;
    assert!(lessons.len() >= 16, "only {} lessons", lessons.len());
    assert_eq!(course.course.slug.as_str(), "rebuilding-trust");
    let numbers: Vec<u32> = lessons.iter().map(|l| l.number).collect();
    assert_eq!(
        numbers,
        (1..=lessons.len() as u32).collect::<Vec<_>>(),
        "lessons are numbered 1..n without gaps"
    );

    // Phases in order, each present: honesty, then accountability, then practice.
    let phases: Vec<Phase> = lessons.iter().map(|l| l.content.phase.clone()).collect();
    let declared = &course.course.phases;
    assert!(
        phases
            .windows(2)
            .all(|w| !declared.out_of_order(&w[0], &w[1])),
        "phases out of order: {phases:?}"
    );
    let names: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["honesty", "accountability", "practice", "follow-up"]
    );
    for phase in declared.iter() {
        assert!(phases.contains(&phase.name), "no {} lesson", phase.name);
    }
    let practice = Phase::parse("practice").unwrap();
    assert_eq!(phases[0].as_str(), "honesty");
    assert_eq!(phases.last().unwrap().as_str(), "follow-up");

    assert!(
        lessons.iter().any(|l| l.content.wait_for_reply),
        "no lesson waits for a reply"
    );

    let course_window = &course.course.send_window;
    for l in lessons.iter().filter(|l| l.content.phase == practice) {
        let own = l
            .content
            .send_window
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no send_window of its own", l.file_name));
        assert_ne!(
            own, course_window,
            "{}: the practice window should differ from the course's",
            l.file_name
        );
        assert!(!own.is_immediate(), "{}", l.file_name);
        assert_eq!(
            l.content.after_days, 1,
            "{}: practice is daily",
            l.file_name
        );
    }
    // The honesty and accountability lessons come a day or two apart; the follow-ups are
    // spaced weeks apart, and more than 60 days in all.
    for l in lessons
        .iter()
        .skip(1)
        .filter(|l| matches!(l.content.phase.as_str(), "honesty" | "accountability"))
    {
        assert!(
            (1..=2).contains(&l.content.after_days),
            "{}: after_days {}",
            l.file_name,
            l.content.after_days
        );
    }

    // The first lesson welcomes, at once; the last one closes the course.
    let first = &lessons[0];
    assert_eq!(first.content.after_days, 0);
    assert_eq!(
        first.content.send_window.as_ref().map(|w| w.as_str()),
        Some("immediate")
    );
    assert!(
        first.content.body.contains("{{ lesson.of }}"),
        "the welcome says how many lessons come"
    );
    assert!(first.content.body.contains("What to expect"));
    let last = lessons.last().unwrap();
    let closing = "This is the last lesson of {{ course.title }}";
    assert!(last.content.body.contains(closing), "{}", last.file_name);
    assert!(
        lessons[..lessons.len() - 1]
            .iter()
            .all(|l| !l.content.body.contains(closing))
    );

    // Every lesson has a question, and nothing is a draft left half-written.
    for l in lessons {
        assert!(
            l.content.prompt.trim().ends_with('?'),
            "{}: prompt {:?}",
            l.file_name,
            l.content.prompt
        );
        assert!(!l.content.body.contains("TODO"), "{}", l.file_name);
    }
}

/// How a lint case breaks the valid small course (the bad-input table uses them too).
pub enum Break {
    /// Replace one occurrence of a text in a file.
    Edit(&'static str, &'static str, &'static str),
    /// Write a file (new or replacing), bytes as given (they need not be UTF-8).
    Write(&'static str, &'static [u8]),
    /// Copy a file of the course to a new name.
    Copy(&'static str, &'static str),
    /// Rename a file.
    Rename(&'static str, &'static str),
}

struct Case {
    rule: &'static str,
    breaks: &'static [Break],
    file: &'static str,
    line: usize,
    message: &'static str,
}

const CASES: &[Case] = &[
    Case {
        rule: "phase out of order",
        breaks: &[
            Break::Edit("02-look-back.md", "phase = \"reflect\"", "phase = \"act\""),
            Break::Edit("03-keep-going.md", "phase = \"act\"", "phase = \"reflect\""),
        ],
        file: "03-keep-going.md",
        line: 4,
        message: "phase \"reflect\" comes after \"act\" in 02-look-back.md: this course's phases go notice, reflect, act",
    },
    Case {
        rule: "a phase the course does not declare",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "phase = \"reflect\"",
            "phase = \"honesty\"",
        )],
        file: "02-look-back.md",
        line: 4,
        message: "\"honesty\" is not a phase of this course (its phases: notice, reflect, act)",
    },
    Case {
        rule: "a phase declared twice",
        breaks: &[Break::Edit(
            "course.toml",
            "name = \"act\"",
            "name = \"notice\"",
        )],
        file: "course.toml",
        line: 18,
        message: "phase \"notice\" is declared twice in [[phases]]",
    },
    Case {
        rule: "duplicate slug",
        breaks: &[Break::Copy("03-keep-going.md", "04-keep-going.md")],
        file: "04-keep-going.md",
        line: 1,
        message: "duplicate slug \"keep-going\" (also 03-keep-going.md)",
    },
    Case {
        rule: "duplicate number",
        breaks: &[Break::Copy("03-keep-going.md", "03-one-more.md")],
        file: "03-one-more.md",
        line: 1,
        message: "duplicate lesson number 3 (also 03-keep-going.md)",
    },
    Case {
        rule: "unknown key in front matter",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "after_days = 1\n",
            "after_days = 1\ncolour = \"blue\"\n",
        )],
        file: "02-look-back.md",
        line: 6,
        message: "unknown field `colour`",
    },
    Case {
        rule: "missing key",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "prompt = \"What led you here?\"\n",
            "",
        )],
        file: "02-look-back.md",
        line: 2,
        message: "missing field `prompt`",
    },
    Case {
        rule: "bad cron send_window in a lesson",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "send_window = \"0 30 7 * * *\"",
            "send_window = \"0 30 25 * * *\"",
        )],
        file: "03-keep-going.md",
        line: 6,
        message: "send_window \"0 30 25 * * *\" is not a valid cron expression",
    },
    Case {
        rule: "a five-field cron send_window in a lesson",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "send_window = \"0 30 7 * * *\"",
            "send_window = \"30 7 * * *\"",
        )],
        file: "03-keep-going.md",
        line: 6,
        message: "cron expression with 6 fields",
    },
    Case {
        rule: "bad cron in course.toml",
        breaks: &[Break::Edit(
            "course.toml",
            "send_window = \"0 0 8 * * *\"",
            "send_window = \"every morning at 8\"",
        )],
        file: "course.toml",
        line: 4,
        message: "send_window \"every morning at 8\" must be \"immediate\" or a cron expression",
    },
    Case {
        rule: "unknown template variable",
        breaks: &[Break::Edit(
            "01-welcome.md",
            "Take your time with each one.",
            "At {{ subscriber.age }}, take your time.",
        )],
        file: "01-welcome.md",
        line: 13,
        message: "unknown template variable `subscriber.age`",
    },
    Case {
        rule: "template syntax error",
        breaks: &[Break::Edit(
            "01-welcome.md",
            "Take your time with each one.",
            "{% if lesson.of > 2 %}Take your time.",
        )],
        file: "01-welcome.md",
        line: 13,
        message: "template error: unexpected end of input, expected end of block",
    },
    Case {
        rule: "empty prompt",
        breaks: &[Break::Edit(
            "01-welcome.md",
            "prompt = \"Why are you here?\"",
            "prompt = \"  \"",
        )],
        file: "01-welcome.md",
        line: 7,
        message: "prompt must not be empty",
    },
    Case {
        rule: "relative link",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "if you are stuck.",
            "if you are stuck, or read [x](/foo).",
        )],
        file: "02-look-back.md",
        line: 19,
        message: "link \"/foo\" must be an absolute http(s):// or mailto: address",
    },
    Case {
        rule: "javascript: link",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "(https://example.org/articles)",
            "(javascript:alert(1))",
        )],
        file: "02-look-back.md",
        line: 12,
        message: "link \"javascript:alert(1)\" must be an absolute",
    },
    Case {
        rule: "script tag in the body",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "See you tomorrow.",
            "<script>alert(1)</script>",
        )],
        file: "03-keep-going.md",
        line: 16,
        message: "a script tag is not allowed in a lesson",
    },
    Case {
        rule: "raw HTML in the body",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "See you tomorrow.",
            "<div>See you tomorrow.</div>",
        )],
        file: "03-keep-going.md",
        line: 16,
        message: "raw HTML is not allowed in a lesson",
    },
    Case {
        rule: "broken TOML",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "subject = \"Lesson 2 · Look back\"",
            "subject = \"Lesson 2 · Look back",
        )],
        file: "02-look-back.md",
        line: 3,
        message: "invalid basic string",
    },
    Case {
        rule: "missing closing +++",
        breaks: &[Break::Edit(
            "02-look-back.md",
            "+++\nGood morning",
            "Good morning",
        )],
        file: "02-look-back.md",
        line: 1,
        message: "the front matter is not closed by a line `+++`",
    },
    Case {
        rule: "no front matter at all",
        breaks: &[Break::Write(
            "02-look-back.md",
            "# Look back\n\nNo front matter here.\n".as_bytes(),
        )],
        file: "02-look-back.md",
        line: 1,
        message: "starts with a line `+++`",
    },
    Case {
        rule: "bad file name",
        breaks: &[Break::Rename("02-look-back.md", "02_Look_Back.md")],
        file: "02_Look_Back.md",
        line: 1,
        message: "file name must be NN-slug.md",
    },
    Case {
        rule: "max_wait_days without wait_for_reply",
        breaks: &[Break::Edit(
            "03-keep-going.md",
            "wait_for_reply = true\n",
            "",
        )],
        file: "03-keep-going.md",
        line: 7,
        message: "max_wait_days only applies with wait_for_reply = true",
    },
    Case {
        rule: "a language that is not a BCP 47 tag",
        breaks: &[Break::Edit(
            "course.toml",
            "send_window = \"0 0 8 * * *\"\n",
            "send_window = \"0 0 8 * * *\"\nlanguage = \"French\"\n",
        )],
        file: "course.toml",
        line: 5,
        message: "language: \"French\" is not a BCP 47 language tag",
    },
];

pub fn apply(dir: &Path, b: &Break) {
    match b {
        Break::Edit(file, old, new) => edit(dir, file, old, new),
        Break::Write(file, bytes) => std::fs::write(dir.join(file), bytes).unwrap(),
        Break::Copy(from, to) => std::fs::copy(dir.join(from), dir.join(to))
            .map(drop)
            .unwrap(),
        Break::Rename(from, to) => std::fs::rename(dir.join(from), dir.join(to)).unwrap(),
    }
}

#[test]
fn lint_names_file_and_line_for_each_rule() {
    // The fixture itself is clean, so each problem below comes from its one break.
    let clean = curriculum::load_dir(&repo(SMALL))
        .unwrap_or_else(|ps| panic!("the fixture fails lint: {ps:#?}"));
    assert_eq!(clean.lessons.len(), 3);

    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        let dir = copy_course(&repo(SMALL), tmp.path(), "small-course");
        for b in case.breaks {
            apply(&dir, b);
        }
        let problems = match curriculum::load_dir(&dir) {
            Ok(_) => panic!("{}: lint passed", case.rule),
            Err(ps) => ps,
        };
        assert_eq!(
            problems.len(),
            1,
            "{}: one break, one problem: {problems:#?}",
            case.rule
        );
        let p = &problems[0];
        let file = p
            .file
            .as_deref()
            .unwrap_or_else(|| panic!("{}: no file in {p:?}", case.rule));
        assert!(
            Path::new(file).ends_with(case.file),
            "{}: file {file}, expected {}",
            case.rule,
            case.file
        );
        assert!(
            Path::new(file).starts_with(&dir),
            "{}: file {file} is not in the linted folder",
            case.rule
        );
        assert_eq!(p.line, case.line, "{}: line of {p:?}", case.rule);
        assert!(
            p.message.contains(case.message),
            "{}: message {:?} lacks {:?}",
            case.rule,
            p.message,
            case.message
        );
        assert!(
            !p.message.contains('\n'),
            "{}: a problem is one line: {:?}",
            case.rule,
            p.message
        );
        let shown = p.to_string();
        assert_eq!(
            shown,
            format!("{file}:{}: {}", case.line, p.message),
            "{}",
            case.rule
        );
    }
}

/// Three files broken at once: course.toml, a lesson's prompt and another lesson's link.
fn break_three(dir: &Path) {
    edit(
        dir,
        "course.toml",
        "send_window = \"0 0 8 * * *\"",
        "send_window = \"0 0 8 * *\"",
    );
    edit(
        dir,
        "01-welcome.md",
        "prompt = \"Why are you here?\"",
        "prompt = \"\"",
    );
    edit(
        dir,
        "02-look-back.md",
        "(https://example.org/articles)",
        "(javascript:alert(1))",
    );
    edit(
        dir,
        "03-keep-going.md",
        "Good morning {{ subscriber.first_name }}",
        "Good morning {{ subscriber.name }}",
    );
}

fn expected_three(dir: &Path) -> Vec<(PathBuf, usize)> {
    vec![
        (dir.join("course.toml"), 4),
        (dir.join("01-welcome.md"), 7),
        (dir.join("02-look-back.md"), 12),
        (dir.join("03-keep-going.md"), 11),
    ]
}

#[test]
fn lint_reports_every_problem_in_the_folder_not_just_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_course(&repo(SMALL), tmp.path(), "small-course");
    break_three(&dir);
    let problems: Vec<Problem> = curriculum::load_dir(&dir).unwrap_err();
    let mut found: Vec<(PathBuf, usize)> = problems
        .iter()
        .map(|p| (PathBuf::from(p.file.clone().unwrap()), p.line))
        .collect();
    found.sort();
    let mut expected = expected_three(&dir);
    expected.sort();
    assert_eq!(found, expected, "{problems:#?}");
    // load_dir (what sync uses) refuses the folder with the same problems.
    assert_eq!(curriculum::load_dir(&dir).unwrap_err(), problems);
}

#[test]
fn the_lint_command_exits_non_zero_printing_path_line_message() {
    let tmp = tempfile::tempdir().unwrap();
    let lessons = tmp.path().join("lessons");
    let dir = copy_course(&repo(SMALL), &lessons, "small-course");
    let config = tmp.path().join("config.toml");
    let text = std::fs::read_to_string(repo("config.toml")).unwrap();
    let text = text
        .replacen("default = \"\"", "default = \"small-course\"", 1)
        .replacen(
            "lessons_dir = \"lessons\"",
            &format!("lessons_dir = {}", toml_string(&lessons)),
            1,
        )
        .replacen(
            "templates_dir = \"templates\"",
            &format!("templates_dir = {}", toml_string(&repo("templates"))),
            1,
        )
        // Lint needs no database: one that cannot be opened proves it is not touched.
        .replacen(
            "url = \"sqlite://drip.db\"",
            &format!(
                "url = \"sqlite://{}/missing/drip.db\"",
                tmp.path().display()
            ),
            1,
        );
    std::fs::write(&config, text).unwrap();
    let lint = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_drip"))
            .args(["--config", config.to_str().unwrap(), "lessons", "lint"])
            .env_remove("DRIP_DATABASE__URL")
            .output()
            .unwrap()
    };

    let ok = lint();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "clean course: {ok:?}");
    assert!(stdout.contains("3 lessons, no problems"), "{stdout}");

    break_three(&dir);
    let out = lint();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "broken course must fail: {out:?}");
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "one line per problem: {stdout}");
    for (path, line) in expected_three(&dir) {
        let prefix = format!("{}:{line}: ", path.display());
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.len() > prefix.len()),
            "no line starting {prefix:?} in:\n{stdout}"
        );
    }
    assert!(stdout.contains("prompt must not be empty"), "{stdout}");
    assert!(stdout.contains("javascript:alert(1)"), "{stdout}");
    assert!(stdout.contains("`subscriber.name`"), "{stdout}");
    assert!(stderr.contains("4 problem(s)"), "{stderr}");
    assert!(
        !tmp.path().join("missing").exists(),
        "lint created a database"
    );
}

fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

on_both_databases!(
    sync_edit_sync_keeps_the_admins_edit,
    export_then_sync_round_trip_is_lossless
);

async fn sync_edit_sync_keeps_the_admins_edit(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = test_db.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_course(&repo(SHIPPED), tmp.path(), "rebuilding-trust");

    let first = sync(&db, &dir, false).await;
    assert_eq!(first.lessons.len(), shipped_lessons());
    assert!(
        first
            .lessons
            .iter()
            .all(|(_, o)| *o == SyncOutcome::Created),
        "{first:?}"
    );
    let course_id = first.course_id;
    let lesson = |slug: &'static str| {
        let db = db.clone();
        async move {
            db::lessons::by_slug(&db, course_id, slug)
                .await
                .unwrap()
                .unwrap()
        }
    };

    // A file change with no admin edit: a new revision by "file".
    let file_edit = read(&dir, "02-a-clean-slate.md") + "\nA line the author added in git.\n";
    write(&dir, "02-a-clean-slate.md", &file_edit);
    let report = sync(&db, &dir, false).await;
    assert_eq!(
        outcome(&report, "a-clean-slate"),
        &SyncOutcome::Updated { revision: 2 }
    );
    assert_all_unchanged_except(&report, &["a-clean-slate"]);
    let l = lesson("a-clean-slate").await;
    assert_eq!(
        (l.revision, l.author.as_str(), l.source.as_str()),
        (2, "file", file_edit.as_str())
    );
    assert!(
        l.content
            .body
            .ends_with("\nA line the author added in git.\n")
    );

    // An admin edit with the file unchanged: the database is ahead; nothing is overwritten.
    let slug = "clear-motives";
    let file = "04-clear-motives.md";
    let alices = admin_edit(&db, course_id, slug, "alice", |c| {
        c.title = "Say why you are really here".into();
        c.body.push_str("\nAdded by alice in the admin UI.\n");
    })
    .await;
    let report = sync(&db, &dir, false).await;
    assert_eq!(
        outcome(&report, slug),
        &SyncOutcome::DatabaseAhead {
            revision: 2,
            author: "alice".into()
        }
    );
    assert_all_unchanged_except(&report, &[slug]);
    assert_eq!(lesson(slug).await.content, alices);

    // The file changes too: a conflict, and alice's edit stays current.
    edit(&dir, file, "after_days = 1", "after_days = 2");
    let report = sync(&db, &dir, false).await;
    assert_eq!(
        outcome(&report, slug),
        &SyncOutcome::Conflict {
            revision: 2,
            author: "alice".into()
        }
    );
    assert_eq!(report.conflicts(), 1);
    assert_all_unchanged_except(&report, &[slug]);
    let l = lesson(slug).await;
    assert_eq!((l.revision, l.author.as_str()), (2, "alice"));
    assert_eq!(l.content, alices);
    assert_eq!(l.content.after_days, 1);

    // A second unforced sync changes nothing either.
    let report = sync(&db, &dir, false).await;
    assert_eq!(
        outcome(&report, slug),
        &SyncOutcome::Conflict {
            revision: 2,
            author: "alice".into()
        }
    );

    // Forced: the file wins, and alice's revision stays in the history.
    let report = sync(&db, &dir, true).await;
    assert_eq!(outcome(&report, slug), &SyncOutcome::Forced { revision: 3 });
    assert_all_unchanged_except(&report, &[slug]);
    let l = lesson(slug).await;
    let from_file = curriculum::parse_lesson(file, &read(&dir, file)).unwrap();
    assert_eq!((l.revision, l.author.as_str()), (3, "file"));
    assert_eq!(l.content, from_file.content);
    assert_eq!(l.content.after_days, 2);
    assert_eq!(l.source, from_file.source);
    let history = db::lessons::revisions(&db, l.id).await.unwrap();
    let summary: Vec<(i64, &str)> = history
        .iter()
        .map(|r| (r.revision, r.author.as_str()))
        .collect();
    assert_eq!(summary, vec![(3, "file"), (2, "alice"), (1, "file")]);
    assert_eq!(history[1].content().unwrap(), alices);
    assert_eq!(history[1].source, alices.to_source());

    // And after that the file and the database agree.
    let report = sync(&db, &dir, false).await;
    assert_all_unchanged_except(&report, &[]);
}

async fn export_then_sync_round_trip_is_lossless(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = test_db.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_course(&repo(SHIPPED), &tmp.path().join("src"), "rebuilding-trust");
    let report = sync(&db, &src, false).await;
    let course_id = report.course_id;

    // Export to a new folder: every file comes back byte for byte, and nothing else.
    let out = tmp.path().join("export").join("rebuilding-trust");
    let written = curriculum::export_course(&db, "rebuilding-trust", &out)
        .await
        .unwrap();
    let names = |dir: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    };
    let originals = names(&src);
    assert_eq!(
        originals.len(),
        shipped_lessons() + 1,
        "the lessons and course.toml"
    );
    assert_eq!(names(&out), originals, "exported files");
    let mut written_sorted = written.clone();
    written_sorted.sort();
    assert_eq!(written_sorted, originals);
    for name in &originals {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(src.join(name)).unwrap(),
            "{name} differs after export"
        );
    }

    // Syncing the export changes nothing.
    let report = sync(&db, &out, false).await;
    assert_eq!(report.lessons.len(), shipped_lessons());
    assert_all_unchanged_except(&report, &[]);

    // An admin edit is exported as its canonical source, which parses back to the edit…
    let slug = "their-point-of-view";
    let file = "08-their-point-of-view.md";
    let edited = admin_edit(&db, course_id, slug, "alice", |c| {
        c.title = "Their point of view, \"from the inside\"".into();
        c.prompt = "What did it feel like for them, in their words?".into();
        c.wait_for_reply = true;
        c.max_wait_days = Some(2);
        c.body
            .push_str("\nOne more thought from alice: *listen first*.\n");
    })
    .await;
    let written = curriculum::export_course(&db, "rebuilding-trust", &out)
        .await
        .unwrap();
    assert_eq!(written.len(), shipped_lessons() + 1);
    let exported = read(&out, file);
    assert_eq!(exported, edited.to_source());
    assert_ne!(exported, read(&src, file));
    assert_eq!(
        curriculum::parse_lesson(file, &exported).unwrap().content,
        edited
    );
    for name in originals.iter().filter(|n| n.as_str() != file) {
        assert_eq!(
            read(&out, name),
            read(&src, name),
            "{name} changed by an unrelated export"
        );
    }

    // …and the export is now what the database has: a sync reports nothing to do.
    let report = sync(&db, &out, false).await;
    assert_all_unchanged_except(&report, &[]);
    let l = db::lessons::by_slug(&db, course_id, slug)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((l.revision, l.author.as_str()), (2, "alice"));
    assert_eq!(l.content, edited);
}
