//! `drip webhooks add|list|remove`: the endpoints drip posts its events to, through the
//! same functions as the admin page (`crate::webhooks`).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::json;

use crate::app::App;
use crate::domain::EventType;
use crate::webhooks;

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add an endpoint; prints its id and the secret that signs every request (shown once).
    Add {
        /// The http:// or https:// address that receives the events.
        url: String,
        /// The events to post, comma-separated: subscriber.confirmed, enrollment.started,
        /// lesson.sent, reply.received, enrollment.completed, subscriber.unsubscribed,
        /// delivery.bounced, broadcast.sent.
        #[arg(long, value_name = "E1,E2")]
        events: String,
    },
    /// Every endpoint, with its deliveries pending, delivered and failed, and the latest.
    List,
    /// Remove an endpoint: nothing more is posted to it.
    Remove { id: i64 },
}

fn time(t: Option<i64>) -> String {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

pub async fn run(app: &App, cmd: WebhooksCommand, json: bool) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    match cmd {
        WebhooksCommand::Add { url, events } => {
            let added = webhooks::add(app, &url, &events, "cli", now).await?;
            if json {
                println!("{}", serde_json::to_string(&added)?);
            } else {
                let names: Vec<&str> = added.events.iter().map(|e| e.as_str()).collect();
                println!(
                    "webhook {} added: {} for {}",
                    added.id,
                    added.url,
                    names.join(", ")
                );
                println!("secret (shown only now; the receiver checks Drip-Signature with it):");
                println!("  {}", added.secret);
            }
        }
        WebhooksCommand::List => {
            let all = webhooks::list(app, 5).await?;
            if json {
                println!("{}", serde_json::to_string(&all)?);
            } else if all.is_empty() {
                let names: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
                println!(
                    "no webhooks; add one with `drip webhooks add URL --events E1,E2` (events: {})",
                    names.join(", ")
                );
            }
            for e in all.iter().filter(|_| !json) {
                let names: Vec<&str> = e.events.iter().map(|e| e.as_str()).collect();
                println!(
                    "{}  {}  [{}]  {} pending, {} delivered, {} failed",
                    e.id,
                    e.url,
                    names.join(", "),
                    e.pending,
                    e.delivered,
                    e.failed
                );
                for a in &e.recent {
                    let answer = match (a.last_status_code, &a.last_error) {
                        (Some(code), _) => format!("HTTP {code}"),
                        (None, Some(error)) => error.clone(),
                        (None, None) => "-".into(),
                    };
                    println!(
                        "    {}  {:<24} {:<9} {} attempt(s), last {}: {answer}",
                        a.event_id,
                        a.kind.as_str(),
                        a.status.as_str(),
                        a.attempts,
                        time(a.last_attempt_at),
                    );
                }
            }
        }
        WebhooksCommand::Remove { id } => {
            let done = webhooks::remove(app, id, "cli", now).await?;
            if json {
                println!("{}", json!({"id": id, "removed": done}));
            }
            if !done {
                anyhow::bail!("id: there is no webhook {id} (`drip webhooks list` shows them)");
            }
            if !json {
                println!("webhook {id} removed");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
