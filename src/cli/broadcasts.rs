//! `drip broadcasts create|list|show|cancel|send-test`: the same functions as the admin's
//! broadcasts page and `/api/v1/broadcasts`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;

use crate::app::App;
use crate::broadcasts::{self, Draft, When};
use crate::domain::{Audience, EmailAddress};

#[derive(Debug, Subcommand)]
pub enum BroadcastsCommand {
    /// Write to a course's readers (its course: --course). Sent now unless --at or
    /// --local-time says when.
    Create {
        #[arg(long)]
        subject: String,
        /// A Markdown file; the lesson body's variables work, less the lesson's.
        #[arg(long)]
        body: PathBuf,
        /// active (taking it now), completed, or everyone (both; never paused or left).
        #[arg(long, default_value = "active")]
        audience: String,
        /// A moment (RFC 3339), e.g. 2026-12-24T09:00:00Z.
        #[arg(long)]
        at: Option<String>,
        /// HH:MM on each reader's own clock.
        #[arg(long)]
        local_time: Option<String>,
        /// With --local-time: the day (YYYY-MM-DD); without it, the next HH:MM.
        #[arg(long)]
        date: Option<String>,
    },
    /// Every broadcast (of --course, when given).
    List,
    /// One broadcast with its figures.
    Show { id: i64 },
    /// Stop a broadcast: what has not left never will.
    Cancel { id: i64 },
    /// Send it to one address now, as a test.
    SendTest {
        id: i64,
        #[arg(long)]
        to: String,
    },
}

pub async fn run(
    app: &App,
    cmd: BroadcastsCommand,
    course: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    match cmd {
        BroadcastsCommand::Create {
            subject,
            body,
            audience,
            at,
            local_time,
            date,
        } => {
            let course = app.course(course).await?;
            let text = std::fs::read_to_string(&body)
                .with_context(|| format!("body: cannot read {}", body.display()))?;
            let draft = Draft {
                subject,
                body: text,
                audience: Audience::parse(&audience)?,
                when: When::parse(at.as_deref(), local_time.as_deref(), date.as_deref())?,
            };
            let b = broadcasts::create(app, &course, &draft, "cli", now).await?;
            let view = broadcasts::view(app, b).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                println!(
                    "broadcast {} for {}: {} ({} readers now), {}",
                    view.row.id,
                    view.course,
                    view.row.audience,
                    view.audience_now.unwrap_or_default(),
                    broadcasts::describe_when(&view.row)
                );
            }
        }
        BroadcastsCommand::List => {
            let only = match course {
                Some(_) => Some(app.course(course).await?.id),
                None => None,
            };
            let mut views = Vec::new();
            for b in crate::db::broadcasts::list(&app.db, only).await? {
                views.push(broadcasts::view(app, b).await?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                println!(
                    "{:>5}  {:<20} {:<10} {:>6} {:>6}  subject",
                    "id", "course", "state", "sent", "queued"
                );
                for v in &views {
                    println!(
                        "{:>5}  {:<20} {:<10} {:>6} {:>6}  {}",
                        v.row.id,
                        v.course,
                        v.state,
                        v.figures.sent,
                        v.figures.queued,
                        v.row.subject
                    );
                }
            }
        }
        BroadcastsCommand::Show { id } => {
            let v = broadcasts::find(app, id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let f = &v.figures;
                println!("broadcast {} · {} · {}", v.row.id, v.course, v.state);
                println!("subject:  {}", v.row.subject);
                println!("audience: {}", v.row.audience);
                println!("when:     {}", broadcasts::describe_when(&v.row));
                println!(
                    "mails:    {} sent, {} queued, {} failed, {} cancelled, {} bounced",
                    f.sent, f.queued, f.failed, f.cancelled, f.bounced
                );
                println!(
                    "after:    {} replies, {} left within 7 days",
                    f.replies, f.unsubscribed_within_7_days
                );
            }
        }
        BroadcastsCommand::Cancel { id } => {
            let stopped = broadcasts::cancel(app, id, "cli", now).await?;
            println!("broadcast {id} cancelled; {stopped} mails will not be sent");
        }
        BroadcastsCommand::SendTest { id, to } => {
            let to = EmailAddress::parse(&to)?;
            broadcasts::send_test(app, id, &to, "", now).await?;
            println!("test of broadcast {id} sent to {to}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
