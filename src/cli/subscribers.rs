//! `drip subscribers add|list|show|import|export [--email EMAIL]|delete|pause|resume|unsubscribe`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use super::SubscribersCommand;
use crate::app::App;
use crate::db;
use crate::domain::SubscriberStatus;
use crate::subscriptions::{self, NewSubscriber};

async fn find(app: &App, email: &str) -> anyhow::Result<db::subscribers::SubscriberRow> {
    db::subscribers::by_email(&app.db, email.trim())
        .await?
        .with_context(|| format!("email: no subscriber {:?}", email.trim()))
}

fn parse(app: &App, email: &str, name: &str, timezone: &str) -> anyhow::Result<NewSubscriber> {
    NewSubscriber::parse(email, name, timezone, app.config.default_timezone()).map_err(|errors| {
        anyhow::anyhow!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

pub async fn run(
    app: &App,
    cmd: SubscribersCommand,
    course: Option<&str>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    // pause, resume and unsubscribe without --course act on all of the person's courses.
    let named_course = async || -> anyhow::Result<Option<i64>> {
        Ok(match course {
            Some(_) => Some(app.course(course).await?.id),
            None => None,
        })
    };
    match cmd {
        SubscribersCommand::Add {
            email,
            name,
            timezone,
            confirmed,
        } => {
            let course = app.course(course).await?;
            let new = parse(app, &email, &name, &timezone)?;
            subscriptions::add(app, &course, &new, confirmed, "cli", now).await?;
            let what = if confirmed {
                "enrolled in"
            } else {
                "added; a confirmation mail is queued for"
            };
            println!("{}: {what} {}", new.email, course.slug);
        }
        SubscribersCommand::List {
            status,
            search,
            limit,
        } => {
            let filter = db::subscribers::Filter {
                status,
                search,
                limit: limit.clamp(1, 100_000),
                ..Default::default()
            };
            let rows = db::subscribers::list(&app.db, &filter).await?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for s in &rows {
                    println!(
                        "{:<40} {:<13} {:<22} {}",
                        s.email, s.status, s.timezone, s.name
                    );
                }
            }
        }
        SubscribersCommand::Show { email } => {
            let s = find(app, &email).await?;
            let data = subscriptions::export::gather(app, &s).await?;
            if json_out {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                let none = || "-".to_owned();
                println!("{} <{}>  {}  ({})", s.name, s.email, s.status, s.timezone);
                for e in &data.enrollments {
                    println!(
                        "  {}: at lesson {} ({}), next due {}",
                        e.course,
                        e.position,
                        e.status,
                        e.next_due_at.clone().unwrap_or_else(none)
                    );
                }
                for d in &data.deliveries {
                    println!(
                        "  {:<8} {:<20} {:<28} {:<8} rev {:<3} sent {}",
                        d.kind,
                        d.course.as_deref().unwrap_or("-"),
                        d.lesson.as_deref().unwrap_or("-"),
                        d.status,
                        d.revision.map(|r| r.to_string()).unwrap_or_else(none),
                        d.sent_at.clone().unwrap_or_else(none)
                    );
                }
                for r in &data.replies {
                    println!(
                        "  reply to {} ({}): {}",
                        r.lesson.as_deref().unwrap_or("-"),
                        r.kind,
                        r.text
                    );
                }
            }
        }
        SubscribersCommand::Import { file, confirmed } => {
            let course = app.course(course).await?;
            let bar = import_progress_bar(&file);
            let report = crate::subscriptions::import::import_csv_with_progress(
                app,
                &course,
                &file,
                confirmed,
                now,
                |p| {
                    bar.set_position(p.bytes);
                    bar.set_message(format!(
                        "{} imported, {} known added, {} already present, {} rejected",
                        p.report.imported,
                        p.report.added_to_course,
                        p.report.existing,
                        p.report.rejected.len()
                    ));
                },
            )
            .await;
            bar.finish_and_clear();
            let report = report?;
            println!(
                "{} imported, {} already known and added to {}, {} already present, {} rejected",
                report.imported,
                report.added_to_course,
                course.slug,
                report.existing,
                report.rejected.len()
            );
            for (line, why) in &report.rejected {
                eprintln!("{}:{line}: {why}", file.display());
            }
        }
        SubscribersCommand::Export { email: Some(email) } => {
            let s = find(app, &email).await?;
            let export = subscriptions::export::export(app, s.id, "cli", "cli", now)
                .await?
                .with_context(|| format!("email: no subscriber {:?}", email.trim()))?;
            println!("{}", export.to_json()?);
        }
        SubscribersCommand::Export { email: None } => {
            use futures::TryStreamExt;
            let stdout = std::io::stdout();
            let mut w = csv::Writer::from_writer(stdout.lock());
            w.write_record(subscriptions::spreadsheet::COLUMNS)?;
            let mut rows = db::subscribers::stream_all(&app.db);
            while let Some(s) = rows.try_next().await? {
                if s.status != SubscriberStatus::Erased {
                    w.write_record(subscriptions::spreadsheet::row(&s))?;
                }
            }
            w.flush()?;
            std::io::stdout().flush()?;
        }
        SubscribersCommand::Delete { email } => {
            let s = find(app, &email).await?;
            subscriptions::erase(app, s.id, "cli", now).await?;
            println!("{}: erased", s.email);
        }
        SubscribersCommand::Pause { email } => {
            let s = find(app, &email).await?;
            let done = subscriptions::pause(app, s.id, named_course().await?, "cli", now).await?;
            println!(
                "{}: {}",
                s.email,
                if done {
                    "paused"
                } else {
                    "not active; unchanged"
                }
            );
        }
        SubscribersCommand::Resume { email } => {
            let s = find(app, &email).await?;
            let done = subscriptions::resume(app, s.id, named_course().await?, "cli", now).await?;
            println!(
                "{}: {}",
                s.email,
                if done {
                    "resumed"
                } else {
                    "not paused; unchanged"
                }
            );
        }
        SubscribersCommand::Unsubscribe { email } => {
            let s = find(app, &email).await?;
            let only = named_course().await?;
            let done = subscriptions::unsubscribe(app, s.id, only, "cli", now).await?;
            let what = match (done, course) {
                (false, _) => "not taking it; unchanged".to_owned(),
                (true, Some(c)) => format!("left {c}"),
                (true, None) => "unsubscribed from everything".to_owned(),
            };
            println!("{}: {what}", s.email);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar over the file's bytes, drawn on stderr only when stderr is a terminal (a
/// pipe, a log or CI sees nothing but the final counts).
fn import_progress_bar(file: &std::path::Path) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {percent:>3}% {msg} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
