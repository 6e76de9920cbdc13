//! `drip dns [--json]`: the records to publish for the From domain and the bulk-sender
//! rules they meet (see `mailer::dns`).

use std::process::ExitCode;

use crate::config::Config;
use crate::mailer::dns::{self, Standing};

/// Runs before the app starts: it needs the configuration and the key file only.
pub fn run(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let report = dns::report(config)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let domains = if report.domains.len() > 1 {
        format!(
            "{} (the domain of [mail] from) and {} (courses' own senders)",
            report.domain,
            report.domains[1..].join(", ")
        )
    } else {
        format!("{} (the domain of [mail] from)", report.domain)
    };
    match (&report.selector, &report.key) {
        (Some(selector), Some(key)) => {
            println!("DNS records for {domains}, DKIM selector {selector:?}, key {key}:")
        }
        _ => println!("DNS records for {domains}; no DKIM key is set ([mail] dkim_key):"),
    }
    for record in &report.records {
        let kind = record.kind.to_ascii_uppercase();
        let what = if record.suggestion {
            "a suggestion to adapt"
        } else {
            "publish as it is"
        };
        println!();
        println!("{kind}  {}  {}  ({what})", record.name, record.rtype);
        println!("  {}", record.value);
        println!("  zone file: {}", record.zone_line());
        println!("  {}", record.note);
    }
    println!();
    println!("What Gmail, Yahoo and Microsoft ask of bulk senders, and where drip stands:");
    for rule in &report.rules {
        println!(
            "  {:<7}  {} [{}]",
            rule.standing.label(),
            rule.rule,
            rule.asked_by.join(", ")
        );
        println!("           {}", rule.detail);
    }
    println!();
    println!(
        "met: drip does it; publish: met once the records above are in DNS; yours: the relay, the machine or the list's running; MISSING: change the configuration as said"
    );
    if report.rules.iter().any(|r| r.standing == Standing::Missing) {
        println!("Some rules are not met yet: see MISSING above.");
    }
    Ok(ExitCode::SUCCESS)
}
