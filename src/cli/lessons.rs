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

/// Lint needs no database: it reads the files only. Besides the course's problems it
/// checks drip's translations: a broken catalogue file is a problem; a course whose
/// language has no catalogue, and a key a translation lacks, are warnings (English shows).
pub fn lint(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let dir = config.course.lessons_dir.join(&config.course.slug);
    let loaded = curriculum::load_dir(&dir);
    let (course, mut problems) = match loaded {
        Ok(course) => (Some(course), Vec::new()),
        Err(problems) => (None, problems),
    };
    let mut warnings = Vec::new();
    let i18n = config.course.templates_dir.join("i18n");
    match Catalogue::load(&i18n) {
        Ok(catalogue) => {
            if let Some(c) = &course
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
            warnings.extend(catalogue.gaps().iter().map(ToString::to_string));
        }
        Err(e) => problems.push(curriculum::Problem::new(0, format!("{e:#}"))),
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": problems.is_empty(),
                "lessons": course.as_ref().map(|c| c.lessons.len()),
                "problems": problems,
                "warnings": warnings,
            })
        );
    } else {
        for p in &problems {
            if p.line == 0 {
                println!("{}", p.message);
            } else {
                println!("{p}");
            }
        }
        for w in &warnings {
            println!("warning: {w}");
        }
        match (&course, problems.len()) {
            (Some(c), 0) => println!(
                "{}: {} lessons, no problems{}",
                dir.display(),
                c.lessons.len(),
                if warnings.is_empty() {
                    String::new()
                } else {
                    format!(", {} warning(s)", warnings.len())
                }
            ),
            (_, n) => eprintln!("{n} problem(s)"),
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn run(app: &App, cmd: LessonsCommand, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        LessonsCommand::Lint => unreachable!("handled before the database is opened"),
        LessonsCommand::List => {
            let course = app.course().await?;
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
            let report = app.sync_lessons(force, Utc::now()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for (slug, outcome) in &report.lessons {
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
            if report.conflicts() > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        LessonsCommand::Export { dir } => {
            let dir =
                dir.unwrap_or_else(|| app.config.course.lessons_dir.join(&app.config.course.slug));
            let written = curriculum::export_course(&app.db, &app.config.course.slug, &dir).await?;
            println!("wrote {} files to {}", written.len(), dir.display());
        }
        LessonsCommand::Preview { slug, format, to } => {
            let course = app.course().await?;
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
                    from_name: None,
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
