//! The `drip` command line: argument parsing and dispatch. Each group of commands lives in
//! its own file and prints either text for people or JSON (`--json`) for scripts.

mod admin;
mod backup;
mod broadcasts;
mod dns;
mod lessons;
mod simulate;
mod smtp;
mod subscribers;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::app::App;
use crate::config::{Config, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "drip",
    version,
    about = "A self-hosted email course engine: lessons in git, one at a time, replies as data."
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        default_value = "config.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,
    /// Print listings as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// The course a command acts on (`lessons list|preview|lint|sync|export`, `simulate`,
    /// `subscribers add|import|pause|resume|unsubscribe`). It may be left out when there is
    /// one course or `[course] default` names one; lint, sync and export without it act on
    /// every course, pause, resume and unsubscribe on all of the person's.
    #[arg(long, global = true, value_name = "SLUG")]
    pub course: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Web app, scheduler and sender (and the inbound SMTP listener when configured).
    Serve,
    /// Scheduler and sender only, to scale out on PostgreSQL.
    Worker,
    /// Apply database migrations.
    Migrate,
    /// One scheduler and sender pass, then exit.
    Tick {
        /// The clock for the whole pass (RFC 3339), e.g. 2026-12-01T08:00:00Z.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
    },
    /// The courses: every folder under [course] lessons_dir with a course.toml.
    #[command(subcommand)]
    Courses(CoursesCommand),
    /// Broadcasts: one mail to a course's readers, now or at a time.
    #[command(subcommand)]
    Broadcasts(broadcasts::BroadcastsCommand),
    /// Lesson files: list, lint, sync, export, preview.
    #[command(subcommand)]
    Lessons(LessonsCommand),
    /// Subscribers: add, list, show, import, export, delete.
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
    /// Webhooks: the endpoints drip posts its events to (add, list, remove).
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Ingest one raw reply from a file or standard input.
    Ingest {
        file: Option<PathBuf>,
        /// Print what would happen; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print when a subscriber confirming now would receive each lesson.
    Simulate {
        /// How many days to show.
        #[arg(long, default_value_t = 60)]
        days: u32,
        /// The subscriber's time zone (default: schedule.default_timezone).
        #[arg(long)]
        timezone: Option<String>,
        /// Confirm at this time instead of now (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
    },
    /// Admin accounts.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Key rotation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The SMTP relay: `smtp check [--to EMAIL]` tries the [smtp] settings step by step.
    #[command(subcommand)]
    Smtp(smtp::SmtpCommand),
    /// A consistent, checked copy of the SQLite database, taken while drip runs; never
    /// overwrites FILE. On PostgreSQL: prints the pg_dump command to use and exits with 1.
    Backup { file: PathBuf },
    /// The DNS records to publish for the From domain (DKIM from [mail] dkim_key, SPF,
    /// DMARC, MX for replies) and the Gmail/Yahoo/Microsoft bulk-sender rules they meet.
    Dns,
}

#[derive(Debug, Subcommand)]
pub enum CoursesCommand {
    /// Slug, title, lessons and people enrolled of every course.
    List,
    /// Start a course: writes lessons/SLUG/course.toml and syncs it (add lessons next).
    New {
        slug: String,
        #[arg(long)]
        title: String,
        /// A phase, in order: "name: Title" or "name: Title - description"; repeat it.
        #[arg(long = "phase", required = true)]
        phases: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// The sender's name, or "Name <address>"; default: the title.
        #[arg(long, default_value = "")]
        from: String,
        /// A cron expression (sec min hour day month weekday); default: every day at 08:00.
        #[arg(long, default_value = "")]
        send_window: String,
        /// The language of drip's own words (a BCP 47 tag); default: en.
        #[arg(long, default_value = "")]
        language: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Seal every stored reply again under the current data_key (after a rotation, before
    /// dropping security.previous_data_keys / previous_secret_keys).
    Reseal,
}

#[derive(Debug, Subcommand)]
pub enum LessonsCommand {
    /// Lessons in the database, in order.
    List,
    /// Check the lesson files; every problem as path:line: message.
    Lint,
    /// Load the lesson files into the database as new revisions.
    Sync {
        /// Replace lessons edited in the admin UI since the last sync.
        #[arg(long)]
        force: bool,
    },
    /// Write the database's lessons back as files.
    Export {
        /// Folder to write to (default: the course's folder under course.lessons_dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Render a lesson as it would be sent.
    Preview {
        slug: String,
        #[arg(long, value_enum, default_value = "text")]
        format: PreviewFormat,
        /// Send it to this address through the configured transport instead of printing.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PreviewFormat {
    Html,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add a subscriber (a confirmation mail is queued unless --confirmed).
    Add {
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "")]
        timezone: String,
        /// The person already agreed: enrol without a confirmation mail.
        #[arg(long)]
        confirmed: bool,
    },
    /// Subscribers, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One subscriber with enrollment, deliveries and replies.
    Show { email: String },
    /// Import from CSV (columns: email,name,timezone); bad rows are reported and skipped.
    Import {
        file: PathBuf,
        #[arg(long)]
        confirmed: bool,
    },
    /// Export every subscriber as CSV to standard output; with --email, one subscriber's
    /// data (profile, enrollment, mails, replies with their text, events) as JSON.
    Export {
        /// The subscriber whose data to print as one JSON document (the right of access).
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
    },
    /// Erase a subscriber: address, name and replies are removed; anonymous counts stay.
    Delete { email: String },
    /// Pause a subscriber's course (--course), or all of their courses.
    Pause { email: String },
    /// Resume a paused course (--course), or all of them.
    Resume { email: String },
    /// Take a subscriber out of one course (--course), or out of everything.
    Unsubscribe { email: String },
}

/// `drip ingest [FILE] [--dry-run] [--json]`: one raw message from a file or standard input.
async fn ingest(
    app: &App,
    file: Option<PathBuf>,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let raw = match &file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the message from standard input")?;
            buf
        }
    };
    let outcome = crate::inbound::ingest(app, &raw, dry_run, Utc::now()).await?;
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        let matched = outcome
            .matched
            .as_ref()
            .map(|m| {
                format!(
                    "{} (lesson {}, by {:?})",
                    m.subscriber,
                    m.lesson.as_deref().unwrap_or("-"),
                    m.by
                )
            })
            .unwrap_or_else(|| "no subscriber".into());
        let what = if dry_run {
            "would store"
        } else if outcome.duplicate {
            "already stored"
        } else {
            "stored"
        };
        println!("{what}: {} from {matched}", outcome.kind);
        if let Some(c) = outcome.command {
            println!("command: {c}");
        }
        println!("---\n{}", outcome.text);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2026-12-01T08:00:00Z: {e}"))
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRIP_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{},sqlx=warn", config.log.level))
    });
    // Colour only on a terminal: escape codes would garble a log file or the journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs a parsed command line; errors are printed with their causes and give exit code 1
/// (2 for configuration errors, before anything started).
pub fn main(cli: Cli) -> ExitCode {
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drip: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drip: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("drip: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    let course = cli.course.as_deref();
    if let Command::Lessons(LessonsCommand::Lint) = &cli.command {
        return lessons::lint(&config, course, json);
    }
    // These need no running app: a backup must not migrate the database it copies, and
    // `dns` reads the configuration and the key only.
    match cli.command {
        Command::Smtp(cmd) => return smtp::run(&config, cmd, json).await,
        Command::Backup { file } => return backup::run(&config, &file, json).await,
        Command::Dns => return dns::run(&config, json),
        _ => {}
    }
    let app = App::start(config).await?;
    match cli.command {
        Command::Serve => crate::server::run_serve(app).await?,
        Command::Worker => crate::server::run_worker(app).await?,
        Command::Migrate => {
            let tables = app.db.table_names().await?;
            println!("migrations applied; tables: {}", tables.join(", "));
        }
        Command::Tick { now } => {
            let now = now.unwrap_or_else(Utc::now);
            app.sync_on_start().await?;
            let report = crate::outbox::tick(&app, now).await.context("tick")?;
            let hooks = crate::webhooks::send_due(&app, now)
                .await
                .context("tick: webhooks")?;
            if json {
                let mut value = serde_json::to_value(report)?;
                value["webhooks"] = serde_json::to_value(hooks)?;
                println!("{value}");
            } else {
                println!(
                    "tick at {}: {} queued, {} sent, {} to retry, {} failed, {} completed a course, {} moved to a later day (daily limit)",
                    now.to_rfc3339(),
                    report.enqueued,
                    report.sent,
                    report.retried,
                    report.failed,
                    report.completed,
                    report.deferred
                );
                if report.raw_removed + report.replies_removed > 0 {
                    println!(
                        "retention: {} raw messages and {} replies deleted",
                        report.raw_removed, report.replies_removed
                    );
                }
                if report.held > 0 {
                    println!(
                        "the SMTP server could not be reached: {} held in the queue for the next pass",
                        report.held
                    );
                }
                if hooks.delivered + hooks.retried + hooks.failed + hooks.held > 0 {
                    println!(
                        "webhooks: {} delivered, {} to retry, {} failed for good, {} waiting with an endpoint that failed",
                        hooks.delivered, hooks.retried, hooks.failed, hooks.held
                    );
                }
            }
        }
        Command::Courses(CoursesCommand::List) => return lessons::list_courses(&app, json).await,
        Command::Broadcasts(cmd) => return broadcasts::run(&app, cmd, course, json).await,
        Command::Courses(CoursesCommand::New {
            slug,
            title,
            phases,
            description,
            from,
            send_window,
            language,
        }) => {
            let phases = crate::curriculum::start::phases_from_lines(&phases.join("\n"))?;
            let new = crate::curriculum::start::NewCourse {
                slug,
                title,
                description,
                from,
                send_window,
                language,
                phases,
            };
            return lessons::new_course(&app, &new, json).await;
        }
        Command::Lessons(cmd) => return lessons::run(&app, cmd, course, json).await,
        Command::Subscribers(cmd) => return subscribers::run(&app, cmd, course, json).await,
        Command::Simulate {
            days,
            timezone,
            now,
        } => {
            let course = app.course(course).await?;
            return simulate::run(&app, &course, days, timezone, now, json).await;
        }
        Command::Ingest { file, dry_run } => return ingest(&app, file, dry_run, json).await,
        Command::Admin(cmd) => return admin::run(&app, cmd, json).await,
        Command::Webhooks(cmd) => return webhooks::run(&app, cmd, json).await,
        Command::Keys(KeysCommand::Reseal) => {
            let report = crate::privacy::reseal::reseal_all(&app.db, &app.vault).await?;
            let keys = crate::auth::second_factor::reseal(&app.db, &app.vault).await?;
            let hooks = crate::webhooks::reseal(&app.db, &app.vault).await?;
            if json {
                let mut value = serde_json::to_value(&report)?;
                value["admin_totp_keys"] = serde_json::to_value(&keys)?;
                value["webhook_secrets"] = serde_json::to_value(&hooks)?;
                println!("{value}");
            } else {
                println!(
                    "{} replies checked, {} sealed again under the current data key",
                    report.checked, report.resealed
                );
                println!(
                    "{} answers to readers checked, {} sealed again",
                    report.answers_checked, report.answers_resealed
                );
                println!(
                    "{} admin TOTP keys checked, {} sealed again",
                    keys.checked, keys.resealed
                );
                println!(
                    "{} webhook secrets checked, {} sealed again",
                    hooks.checked, hooks.resealed
                );
            }
            anyhow::ensure!(
                hooks.unreadable.is_empty(),
                "the secrets of webhooks {:?} open with none of the configured keys and were left as they are: add the key they were sealed with to security.previous_data_keys and run this again (or remove and add those webhooks anew)",
                hooks.unreadable
            );
            anyhow::ensure!(
                keys.unreadable.is_empty(),
                "the TOTP keys of admins {:?} open with none of the configured keys and were left as they are: add the key they were sealed with to security.previous_data_keys and run this again (or enrol them anew with `drip admin totp USER`)",
                keys.unreadable
            );
            anyhow::ensure!(
                report.unreadable.is_empty(),
                "{} replies open with none of the configured keys and were left as they are (ids {:?}): add the key they were sealed with to security.previous_data_keys and run this again",
                report.unreadable.len(),
                report.unreadable
            );
            anyhow::ensure!(
                report.unreadable_answers.is_empty(),
                "{} answers to readers open with none of the configured keys and were left as they are (ids {:?}): add the key they were sealed with to security.previous_data_keys and run this again",
                report.unreadable_answers.len(),
                report.unreadable_answers
            );
        }
        Command::Smtp(_) | Command::Backup { .. } | Command::Dns => {
            unreachable!("run before the app starts")
        }
    }
    Ok(ExitCode::SUCCESS)
}
