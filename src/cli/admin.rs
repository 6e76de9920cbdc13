//! `drip admin add|passwd|totp|token`: admin accounts from the server's shell. Passwords are
//! read from standard input (one line), never from the command line where `ps` shows them.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;

use crate::app::App;
use crate::auth::{self, second_factor};
use crate::domain::Role;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin; the password is read from standard input.
    Add {
        user: String,
        #[arg(long, default_value = "")]
        email: String,
        /// owner (everything), editor (courses, lessons and statistics; no subscribers or
        /// replies) or reader (subscribers and replies, read only).
        #[arg(long, default_value = "owner", value_parser = parse_role)]
        role: Role,
    },
    /// Set a new password, read from standard input; every session of the admin ends.
    Passwd { user: String },
    /// Enrol a new TOTP second factor (replacing any earlier one): prints the otpauth://
    /// URI and ten recovery codes, once. Every session of the admin ends.
    Totp { user: String },
    /// Print a new bearer token for /api/v1.
    Token { user: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.message)
}

fn read_password(user: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprintln!(
            "Password for {user} (at least {} characters), then Enter:",
            auth::MIN_PASSWORD_CHARS
        );
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn run(app: &App, cmd: AdminCommand, json: bool) -> anyhow::Result<ExitCode> {
    let now = Utc::now().timestamp();
    let base_url = &app.config.server.base_url;
    match cmd {
        AdminCommand::Add { user, email, role } => {
            let password = read_password(&user)?;
            auth::add_admin_with_role(&app.db, &user, &email, &password, role, now).await?;
            println!("admin {user} created ({role}); sign in at {base_url}/admin/login");
        }
        AdminCommand::Passwd { user } => {
            let password = read_password(&user)?;
            auth::set_password(&app.db, &user, &password).await?;
            println!("password of {user} changed; their sessions have ended");
        }
        AdminCommand::Totp { user } => {
            let e = second_factor::enrol_now(&app.db, &app.vault, &user, base_url, now).await?;
            if json {
                println!("{}", serde_json::to_string(&e)?);
            } else {
                println!(
                    "TOTP second factor for {}; add it to an authenticator app:",
                    e.user
                );
                println!("  {}", e.uri);
                println!("key (to type by hand): {}", e.secret);
                println!("recovery codes (each works once; shown only now, keep them safe):");
                for code in &e.recovery_codes {
                    println!("  {code}");
                }
                println!(
                    "any earlier key and recovery codes no longer work; their sessions have ended"
                );
            }
        }
        AdminCommand::Token { user } => {
            let token = auth::new_api_token(&app.db, &user, now).await?;
            println!("{token}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
