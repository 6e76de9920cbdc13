//! `drip smtp check [--to EMAIL]`: the relay, step by step (see `mailer::check`).

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum SmtpCommand {
    /// Connect with the [smtp] settings and print each step (connect, greeting, EHLO,
    /// STARTTLS and the certificate, AUTH); with --to, send a real test message. Exit code 0
    /// when it works, 1 with what to change.
    Check {
        /// Send a test message to this address through MAIL, RCPT and DATA.
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
    },
}

/// Runs before the app starts: a check needs no database, and must work while the relay
/// settings are still being worked out.
pub async fn run(config: &Config, cmd: SmtpCommand, json: bool) -> anyhow::Result<ExitCode> {
    let SmtpCommand::Check { to } = cmd;
    let report = crate::mailer::check::run(config, to.as_deref(), |line| {
        if !json {
            println!("{line}");
        }
    })
    .await;
    if json {
        let lines: Vec<_> = report
            .lines
            .iter()
            .map(|l| serde_json::json!({"ok": l.ok, "step": l.step, "text": l.text}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"ok": report.ok, "steps": lines, "verdict": report.verdict})
        );
    } else if report.ok {
        println!("{}", report.verdict);
    } else {
        println!("does not work: {}", report.verdict);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
