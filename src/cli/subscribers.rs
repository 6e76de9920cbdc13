//! `drip subscribers add|list|show|import|export|delete|pause|resume|unsubscribe`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use serde_json::json;

use super::SubscribersCommand;
use crate::app::App;
use crate::db;
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

fn time(t: Option<i64>) -> serde_json::Value {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| json!(t.to_rfc3339()))
        .unwrap_or(json!(null))
}

pub async fn run(app: &App, cmd: SubscribersCommand, json_out: bool) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    match cmd {
        SubscribersCommand::Add {
            email,
            name,
            timezone,
            confirmed,
        } => {
            let new = parse(app, &email, &name, &timezone)?;
            subscriptions::add(app, &new, confirmed, "cli", now).await?;
            let what = if confirmed {
                "enrolled"
            } else {
                "added; a confirmation mail is queued"
            };
            println!("{}: {what}", new.email);
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
            let enrollments = db::enrollments::for_subscriber(&app.db, s.id).await?;
            let deliveries = db::deliveries::for_subscriber(&app.db, s.id).await?;
            let replies = db::replies::for_subscriber(&app.db, s.id).await?;
            let out = json!({
                "subscriber": {
                    "email": s.email, "name": s.name, "timezone": s.timezone, "status": s.status,
                    "created_at": time(Some(s.created_at)), "confirmed_at": time(s.confirmed_at),
                },
                "enrollments": enrollments.iter().map(|e| json!({
                    "position": e.position, "next_due_at": time(e.next_due_at), "status": e.status,
                    "waiting_reply": e.waiting_reply != 0, "last_sent_at": time(e.last_sent_at),
                })).collect::<Vec<_>>(),
                "deliveries": deliveries.iter().map(|d| json!({
                    "kind": d.kind, "lesson": d.lesson, "status": d.status, "attempts": d.attempts,
                    "revision": d.revision, "created_at": time(Some(d.created_at)), "due_at": time(Some(d.due_at)),
                    "sent_at": time(d.sent_at), "failed_at": time(d.failed_at), "error": d.last_error,
                })).collect::<Vec<_>>(),
                "replies": replies.iter().map(|r| json!({
                    "lesson": r.lesson, "kind": r.kind, "command": r.command, "matched_by": r.matched_by,
                    "text": String::from_utf8_lossy(&app.open_reply_text(&r.text)), "received_at": time(Some(r.received_at)),
                    "flagged": r.flagged != 0,
                })).collect::<Vec<_>>(),
            });
            if json_out {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{} <{}>  {}  ({})", s.name, s.email, s.status, s.timezone);
                for e in &enrollments {
                    println!(
                        "  at lesson {} ({}), next due {}",
                        e.position,
                        e.status,
                        time(e.next_due_at)
                    );
                }
                for d in &deliveries {
                    println!(
                        "  {:<8} {:<28} {:<8} rev {:<3} sent {}",
                        d.kind,
                        d.lesson.as_deref().unwrap_or("-"),
                        d.status,
                        d.revision.map(|r| r.to_string()).unwrap_or("-".into()),
                        time(d.sent_at)
                    );
                }
                for r in &replies {
                    println!(
                        "  reply to {} ({}): {}",
                        r.lesson.as_deref().unwrap_or("-"),
                        r.kind,
                        String::from_utf8_lossy(&app.open_reply_text(&r.text))
                    );
                }
            }
        }
        SubscribersCommand::Import { file, confirmed } => {
            let bar = import_progress_bar(&file);
            let report = crate::subscriptions::import::import_csv_with_progress(
                app,
                &file,
                confirmed,
                now,
                |p| {
                    bar.set_position(p.bytes);
                    bar.set_message(format!(
                        "{} imported, {} already present, {} rejected",
                        p.report.imported,
                        p.report.existing,
                        p.report.rejected.len()
                    ));
                },
            )
            .await;
            bar.finish_and_clear();
            let report = report?;
            println!(
                "{} imported, {} already present, {} rejected",
                report.imported,
                report.existing,
                report.rejected.len()
            );
            for (line, why) in &report.rejected {
                eprintln!("{}:{line}: {why}", file.display());
            }
        }
        SubscribersCommand::Export => {
            use futures::TryStreamExt;
            let stdout = std::io::stdout();
            let mut w = csv::Writer::from_writer(stdout.lock());
            w.write_record([
                "email",
                "name",
                "timezone",
                "status",
                "created_at",
                "confirmed_at",
            ])?;
            let mut rows = db::subscribers::stream_all(&app.db);
            while let Some(s) = rows.try_next().await? {
                if s.status == "erased" {
                    continue;
                }
                let confirmed = s.confirmed_at.map(|t| t.to_string()).unwrap_or_default();
                w.write_record([
                    &s.email,
                    &s.name,
                    &s.timezone,
                    &s.status,
                    &s.created_at.to_string(),
                    &confirmed,
                ])?;
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
            let done = subscriptions::pause(app, s.id, "cli", now).await?;
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
            let done = subscriptions::resume(app, s.id, "cli", now).await?;
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
            subscriptions::unsubscribe(app, s.id, "cli", now).await?;
            println!("{}: unsubscribed", s.email);
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
