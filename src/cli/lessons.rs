//! `drip lessons list|lint|sync|export|preview`.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use super::{LessonsCommand, PreviewFormat};
use crate::app::App;
use crate::config::Config;
use crate::curriculum::{self, SyncOutcome};
use crate::db;
use crate::mailer::Outgoing;
use crate::render::Catalogue;

/// Lint needs no database: it reads the files only. Every course, or the one named. Besides
/// the courses' problems it checks drip's translations: a broken catalogue file is a
/// problem; a course whose language has no catalogue, and a key a translation lacks, are
/// warnings (English shows).
pub fn lint(config: &Config, only: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let root = &config.course.lessons_dir;
    let mut folders = curriculum::course_dirs(root).map_err(|p| anyhow::anyhow!("{p}"))?;
    if let Some(only) = only {
        folders.retain(|f| f.file_name().is_some_and(|n| n == only));
        anyhow::ensure!(
            !folders.is_empty(),
            "course: no course folder {only:?} in {}",
            root.display()
        );
    }
    anyhow::ensure!(
        !folders.is_empty(),
        "no course in {}: a course is a folder with a course.toml and NN-slug.md lessons",
        root.display()
    );
    let i18n = config.course.templates_dir.join("i18n");
    let mut all_problems = curriculum::duplicate_slugs(&folders);
    let mut warnings = Vec::new();
    let catalogue = match Catalogue::load(&i18n) {
        Ok(c) => Some(c),
        Err(e) => {
            all_problems.push(curriculum::Problem::new(0, format!("{e:#}")));
            None
        }
    };
    let mut courses = Vec::new();
    for dir in &folders {
        let slug = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        match curriculum::load_dir(dir) {
            Ok(c) => {
                if let Some(catalogue) = &catalogue
                    && !catalogue.speaks(c.course.language.as_str())
                {
                    let line = c
                        .course
                        .source
                        .lines()
                        .position(|l| l.trim_start().starts_with("language"))
                        .map_or(1, |i| i + 1);
                    warnings.push(format!(
                        "{}:{line}: language {:?} has no translation in {} (add {}.toml): its pages and mails fall back to English",
                        dir.join("course.toml").display(),
                        c.course.language.as_str(),
                        i18n.display(),
                        c.course.language.as_str(),
                    ));
                }
                if c.lessons.is_empty() {
                    warnings.push(format!(
                        "{}: the course has no lesson files (NN-slug.md) yet: it is not open for sign-up until a lesson is published",
                        dir.display()
                    ));
                }
                if !json {
                    println!(
                        "{}: {} lessons, no problems",
                        dir.display(),
                        c.lessons.len()
                    );
                }
                courses.push(
                    serde_json::json!({"course": slug, "ok": true, "lessons": c.lessons.len()}),
                );
            }
            Err(problems) => {
                courses
                    .push(serde_json::json!({"course": slug, "ok": false, "problems": problems}));
                all_problems.extend(problems);
            }
        }
    }
    if let Some(c) = &catalogue {
        warnings.extend(c.gaps().iter().map(ToString::to_string));
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": all_problems.is_empty(), "courses": courses, "problems": all_problems, "warnings": warnings})
        );
    } else {
        for p in &all_problems {
            if p.line == 0 {
                println!("{}", p.message);
            } else {
                println!("{p}");
            }
        }
        for w in &warnings {
            println!("warning: {w}");
        }
        if !all_problems.is_empty() {
            eprintln!("{} problem(s)", all_problems.len());
        }
        if !warnings.is_empty() {
            println!("{} warning(s)", warnings.len());
        }
    }
    Ok(if all_problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `drip courses list`: slug, title, lessons and people enrolled.
pub async fn list_courses(app: &App, json: bool) -> anyhow::Result<ExitCode> {
    let courses = crate::courses::summaries(app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&courses)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<28} {:>7} {:>8}  title", "slug", "lessons", "enrolled");
    for c in &courses {
        let note = if c.evergreen { " (evergreen)" } else { "" };
        println!(
            "{:<28} {:>7} {:>8}  {}{note}",
            c.slug, c.lessons, c.enrolled, c.title
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `drip courses new`: the same start as the admin page's.
pub async fn new_course(
    app: &App,
    new: &curriculum::start::NewCourse,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let course = curriculum::start::start(app, new, "cli", Utc::now()).await?;
    let dir = app.config.course.lessons_dir.join(&course.slug);
    if json {
        println!(
            "{}",
            serde_json::json!({"slug": course.slug, "id": course.id, "dir": dir})
        );
    } else {
        println!(
            "started {}: {} (add lesson files NN-slug.md there, then `drip lessons sync --course {}`)",
            course.slug,
            dir.join("course.toml").display(),
            course.slug
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(
    app: &App,
    cmd: LessonsCommand,
    course: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        LessonsCommand::Lint => unreachable!("handled before the database is opened"),
        LessonsCommand::List => {
            let course = app.course(course).await?;
            let lessons = db::lessons::list(&app.db, course.id).await?;
            if json {
                let rows: Vec<_> = lessons
                    .iter()
                    .map(|l| {
                        serde_json::json!({
                            "position": l.position, "slug": l.slug, "phase": l.content.phase, "title": l.content.title,
                            "subject": l.content.subject, "revision": l.revision, "status": l.status,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:>3}  {:<28} {:<15} {:>4}  subject",
                    "#", "slug", "phase", "rev"
                );
                for l in &lessons {
                    let draft = if l.is_published() { "" } else { " (draft)" };
                    println!(
                        "{:>3}  {:<28} {:<15} {:>4}  {}{draft}",
                        l.position,
                        l.slug,
                        l.content.phase.as_str(),
                        l.revision,
                        l.content.subject
                    );
                }
            }
        }
        LessonsCommand::Sync { force } => {
            let reports = app.sync_lessons(force, Utc::now(), course).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                for (slug, outcome) in reports.iter().flat_map(|r| {
                    r.lessons
                        .iter()
                        .map(move |(s, o)| (format!("{}/{s}", r.course), o))
                }) {
                    let line = match outcome {
                        SyncOutcome::Created => "created".to_owned(),
                        SyncOutcome::Updated { revision } => {
                            format!("updated to revision {revision}")
                        }
                        SyncOutcome::Unchanged => "unchanged".to_owned(),
                        SyncOutcome::DatabaseAhead { revision, author } => {
                            format!(
                                "kept revision {revision} by {author} (newer than the file; `drip lessons export` writes it out)"
                            )
                        }
                        SyncOutcome::Conflict { revision, author } => format!(
                            "CONFLICT: the file changed and {author} edited revision {revision} in the admin UI; kept the edit (use --force to take the file)"
                        ),
                        SyncOutcome::Forced { revision } => {
                            format!("forced to revision {revision} from the file")
                        }
                        SyncOutcome::NotInFiles => {
                            "in the database but not in the folder; kept".to_owned()
                        }
                    };
                    println!("{slug}: {line}");
                }
            }
            if reports.iter().any(|r| r.conflicts() > 0) {
                return Ok(ExitCode::FAILURE);
            }
        }
        LessonsCommand::Export { dir } => {
            let courses = match course {
                Some(_) => vec![app.course(course).await?],
                None => app.courses().await?,
            };
            anyhow::ensure!(
                dir.is_none() || courses.len() == 1,
                "--dir is for one course: name it with --course"
            );
            for c in &courses {
                let target = dir
                    .clone()
                    .unwrap_or_else(|| app.config.course.lessons_dir.join(&c.slug));
                let written = curriculum::export_course(&app.db, &c.slug, &target).await?;
                println!(
                    "{}: wrote {} files to {}",
                    c.slug,
                    written.len(),
                    target.display()
                );
            }
        }
        LessonsCommand::Preview { slug, format, to } => {
            let course = app.course(course).await?;
            let lessons = db::lessons::list(&app.db, course.id).await?;
            let lesson = lessons.iter().find(|l| l.slug == slug).with_context(|| {
                format!(
                    "no lesson {slug:?}; known: {}",
                    lessons
                        .iter()
                        .map(|l| l.slug.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let email = to.clone().unwrap_or_else(|| "preview@example.org".into());
            let mail = app.preview_lesson(
                &course,
                &lessons,
                (lesson.id, lesson.position),
                &lesson.content,
                (&email, ""),
            )?;
            if let Some(to) = to {
                let address = crate::domain::EmailAddress::parse(&to)?;
                let out = Outgoing {
                    file_label: format!("preview-{}-{}", slug, Utc::now().timestamp()),
                    to_name: String::new(),
                    to: address.to_string(),
                    subject: format!("[Preview] {}", mail.subject),
                    html: mail.html,
                    text: mail.text,
                    message_id: format!(
                        "preview.{}.{}@{}",
                        slug,
                        Utc::now().timestamp_micros(),
                        app.config.mail.reply_domain
                    ),
                    reply_to: None,
                    unsubscribe: None,
                    course: Some(course.slug.clone()),
                    lesson: Some(slug.clone()),
                    broadcast: None,
                    from_name: Some(course.from_name.clone()),
                    from_address: Some(course.from_address.clone()).filter(|a| !a.is_empty()),
                    list_id: None,
                    answer: None,
                };
                app.mailer.send(&out).await?;
                println!("sent a preview of {slug} to {address}");
            } else {
                match format {
                    PreviewFormat::Html => print!("{}", mail.html),
                    PreviewFormat::Text => print!("Subject: {}\n\n{}", mail.subject, mail.text),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
