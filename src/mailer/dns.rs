//! `drip dns`: the DNS records the From domain needs for the mail drip signs (the DKIM key
//! from `[mail] dkim_key`, an SPF and a DMARC suggestion, the MX replies come back through),
//! and the rules Gmail, Yahoo and Microsoft set for bulk senders, each with where drip
//! stands on it. It reads the configuration only: no database, no network.

use serde::Serialize;

use super::dkim::{DkimKey, RSA_RECOMMENDED_BITS};
use crate::config::{self, Config};

/// One DNS record to publish.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// "dkim", "spf", "dmarc" or "mx".
    pub kind: &'static str,
    /// The full name, without the final dot.
    pub name: String,
    /// "TXT" or "MX".
    #[serde(rename = "type")]
    pub rtype: &'static str,
    /// The record's value as one string (DNS consoles take it so and split it themselves).
    pub value: String,
    /// true: a starting point to adapt, not a value drip can know (SPF, DMARC, MX).
    pub suggestion: bool,
    pub note: String,
}

impl Record {
    /// The record as a zone-file line. A TXT string holds at most 255 bytes (RFC 1035
    /// §3.3.14), and a 2048-bit RSA key alone is longer: the value is cut into several
    /// strings, which resolvers join again (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    pub fn zone_line(&self) -> String {
        match self.rtype {
            "TXT" => {
                let strings: Vec<String> = self
                    .value
                    .as_bytes()
                    .chunks(255)
                    .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                    .collect();
                if strings.len() == 1 {
                    format!("{}. IN TXT {}", self.name, strings[0])
                } else {
                    format!("{}. IN TXT ( {} )", self.name, strings.join(" "))
                }
            }
            _ => format!("{}. IN {} {}", self.name, self.rtype, self.value),
        }
    }
}

/// Where drip stands on one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// drip does it by itself.
    Met,
    /// Met once the records above are published.
    Publish,
    /// drip cannot do it: the relay, the machine or the way the list is run must.
    Yours,
    /// Not met with this configuration; `detail` says what to change.
    Missing,
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::Met => "met",
            Standing::Publish => "publish",
            Standing::Yours => "yours",
            Standing::Missing => "MISSING",
        }
    }
}

/// One of the bulk-sender rules.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub rule: &'static str,
    /// Who asks for it.
    pub asked_by: &'static [&'static str],
    pub standing: Standing,
    pub detail: String,
}

/// Everything `drip dns` prints.
#[derive(Debug, Clone, Serialize)]
pub struct DnsReport {
    /// The domain of `[mail] from`, which the DKIM signature names (`d=`) on every mail
    /// whose course has no sender address of its own.
    pub domain: String,
    /// Every domain drip signs as: `domain`, then those of the courses' own senders
    /// (`from = "Name <address>"` in a course.toml), each once.
    pub domains: Vec<String>,
    pub selector: Option<String>,
    /// "RSA 2048 bits", "Ed25519", or None without `[mail] dkim_key`.
    pub key: Option<String>,
    pub records: Vec<Record>,
    pub rules: Vec<Rule>,
}

const ALL: &[&str] = &["gmail", "yahoo", "microsoft"];
const BULK: &[&str] = &["gmail", "yahoo", "microsoft"];
const GMAIL_YAHOO: &[&str] = &["gmail", "yahoo"];

/// Mailbox providers whose own DMARC policy refuses mail sent in their name from elsewhere.
const FREEMAIL: [&str; 9] = [
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "ymail.com",
    "aol.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
];

/// The records and rules for `config`; an error only when the DKIM key cannot be read.
pub fn report(config: &Config) -> anyhow::Result<DnsReport> {
    let domain = super::sending_domain(config)?;
    let mail = &config.mail;
    let key = if mail.dkim_key.is_empty() {
        None
    } else {
        Some(DkimKey::load(&mail.dkim_key)?)
    };
    let mut senders = vec![(domain.clone(), "the domain of [mail] from".to_owned())];
    for (course, sender) in course_senders(config) {
        match senders
            .iter_mut()
            .find(|(d, _)| d.eq_ignore_ascii_case(&sender))
        {
            Some((_, why)) => why.push_str(&format!(", course {course}")),
            None => senders.push((sender, format!("the sender of course {course}"))),
        }
    }
    let mut records = Vec::new();
    for (sender, why) in &senders {
        if let Some(key) = &key {
            let (k, p) = key.dns_public_key();
            records.push(Record {
                kind: "dkim",
                name: format!("{}._domainkey.{sender}", mail.dkim_selector),
                rtype: "TXT",
                value: format!("v=DKIM1; k={k}; p={p}"),
                suggestion: false,
                note: format!(
                    "{why}: the public half of {} ({}); publish it before drip signs with the key, and keep an old selector's record until mail signed with it has been read",
                    mail.dkim_key,
                    key.describe()
                ),
            });
        }
        records.push(Record {
            kind: "spf",
            name: sender.clone(),
            rtype: "TXT",
            value: "v=spf1 mx ~all".into(),
            suggestion: true,
            note: format!("{why}: {}", spf_note(config)),
        });
        records.push(Record {
            kind: "dmarc",
            name: format!("_dmarc.{sender}"),
            rtype: "TXT",
            value: format!("v=DMARC1; p=none; rua=mailto:dmarc-reports@{sender}"),
            suggestion: true,
            note: format!("{why}: p=none is the least Gmail and Yahoo accept; once the aggregate reports (rua) show your mail passing, move to p=quarantine, then p=reject. The rua mailbox must exist, or leave the tag out"),
        });
    }
    records.push(Record {
        kind: "mx",
        name: mail.reply_domain.clone(),
        rtype: "MX",
        value: "10 <the host that receives replies>".into(),
        suggestion: true,
        note: format!(
            "replies go to {}+…@{}: this domain's MX must reach drip's listener ([inbound] smtp_bind{}) or the MTA that hands mail to `drip ingest` or POST /inbound/email",
            mail.reply_local,
            mail.reply_domain,
            if config.inbound.smtp_bind.is_empty() {
                ", off now".to_owned()
            } else {
                format!(" = {}", config.inbound.smtp_bind)
            }
        ),
    });
    let domains: Vec<String> = senders.into_iter().map(|(d, _)| d).collect();
    let rules = rules(&domains, key.as_ref(), config);
    Ok(DnsReport {
        domain,
        domains,
        selector: key.as_ref().map(|_| mail.dkim_selector.clone()),
        key: key.as_ref().map(DkimKey::describe),
        records,
        rules,
    })
}

/// The courses whose course.toml names a sender address, and its domain. A course file
/// that does not parse is left to `drip lessons lint`.
fn course_senders(config: &Config) -> Vec<(String, String)> {
    let dirs = crate::curriculum::course_dirs(&config.course.lessons_dir).unwrap_or_default();
    dirs.iter()
        .filter_map(|dir| {
            let slug = dir.file_name()?.to_str()?;
            let text = std::fs::read_to_string(dir.join("course.toml")).ok()?;
            let course = crate::curriculum::parse_course(slug, &text).ok()?;
            Some((slug.to_owned(), course.from_address?.domain().to_owned()))
        })
        .collect()
}

fn spf_note(config: &Config) -> String {
    let relay = match config.mail.transport {
        config::Transport::Smtp => format!("[smtp] host = {}", config.smtp.host),
        config::Transport::File => "no relay yet: [mail] transport = \"file\"".into(),
    };
    format!(
        "drip sends with the From address as envelope sender, so SPF is checked for this domain and aligns with From. List every host that hands the mail to the internet: `mx` for your domain's mail servers, `ip4:ADDRESS` for this machine if its own MTA delivers, or the `include:` your relay provider documents ({relay}). A domain has one SPF record: merge this into any you have"
    )
}

fn rules(domains: &[String], key: Option<&DkimKey>, config: &Config) -> Vec<Rule> {
    let free: Vec<&str> = domains
        .iter()
        .filter(|d| FREEMAIL.contains(&d.to_ascii_lowercase().as_str()))
        .map(String::as_str)
        .collect();
    let domain = domains.join(", ");
    let free = (!free.is_empty()).then(|| free.join(", "));
    let mut rules = Vec::new();
    let (standing, detail) = match key {
        None => (
            Standing::Missing,
            "no key: make one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem`, set [mail] dkim_key to its path and [mail] dkim_selector to a name (e.g. the month: 2026-12), and run `drip dns` again".to_owned(),
        ),
        Some(DkimKey::Ed25519(_)) => (
            Standing::Missing,
            "the key is Ed25519, which many receivers (Gmail and Microsoft among them, at the time of writing) do not check: to them the mail is unsigned; use an RSA key of 2048 bits".to_owned(),
        ),
        Some(key) => match key.rsa_bits() {
            Some(bits) if bits < RSA_RECOMMENDED_BITS => (
                Standing::Publish,
                format!(
                    "signed with d= the From domain ({domain}), so DKIM aligns with From; the key has {bits} bits, which is accepted today but under the {RSA_RECOMMENDED_BITS} recommended: plan a new key under a new selector"
                ),
            ),
            _ => (
                Standing::Publish,
                format!(
                    "every mail is signed with d= its From domain ({domain}), so DKIM aligns with From, over every header RFC 6376 §5.4.1 lists that it carries; From, Reply-To, Subject and both List-Unsubscribe headers are signed once more, so adding one breaks the signature"
                ),
            ),
        },
    };
    rules.push(Rule {
        rule: "DKIM signature for the From domain",
        asked_by: BULK,
        standing,
        detail,
    });
    rules.push(Rule {
        rule: "SPF record for the sending domain (all senders: SPF or DKIM; bulk senders: both)",
        asked_by: ALL,
        standing: Standing::Publish,
        detail: "the SPF suggestions above, adapted to the hosts that deliver the mail".into(),
    });
    rules.push(Rule {
        rule: "DMARC record published (p=none at least), From aligned with SPF or DKIM",
        asked_by: BULK,
        standing: Standing::Publish,
        detail: "the DMARC suggestion above; both SPF and DKIM align, as both name the From domain"
            .into(),
    });
    rules.push(Rule {
        rule: "a From domain of your own (never a mailbox provider's)",
        asked_by: ALL,
        standing: if free.is_some() {
            Standing::Missing
        } else {
            Standing::Met
        },
        detail: match &free {
            Some(free) => format!(
                "{free}: a mailbox provider's domain: you cannot publish its records, and its DMARC policy makes receivers refuse mail sent in its name from elsewhere; send from a domain you own"
            ),
            None => format!("{domain}, whose records you publish"),
        },
    });
    rules.push(Rule {
        rule: "one-click unsubscribe (RFC 8058), honoured within two days, and an unsubscribe link in the message",
        asked_by: ALL,
        standing: if key.is_some() {
            Standing::Met
        } else {
            Standing::Missing
        },
        detail: if key.is_some() {
            "every lesson carries List-Unsubscribe (https and mailto) and List-Unsubscribe-Post, both under the DKIM signature as RFC 8058 asks; the POST ends the subscription at once, and every lesson ends with an unsubscribe link".into()
        } else {
            "the headers are there, but RFC 8058 wants them under a DKIM signature, and there is none without [mail] dkim_key".into()
        },
    });
    rules.push(Rule {
        rule: "well-formed messages (RFC 5322): one From, a Date, a Message-ID",
        asked_by: ALL,
        standing: Standing::Met,
        detail: "every mail is built with exactly these, and a text and an HTML part".into(),
    });
    let tls = match config.mail.transport {
        config::Transport::Smtp if config.smtp.tls == config::Tls::None => {
            format!(
                "drip talks to {} without TLS ([smtp] tls = \"none\"), which is fine on this machine only; the relay must use TLS towards the receivers",
                config.smtp.host
            )
        }
        _ => "drip's own hop is set by [smtp] tls; the relay must use TLS towards the receivers"
            .into(),
    };
    rules.push(Rule {
        rule: "TLS on the connection that delivers the mail",
        asked_by: GMAIL_YAHOO,
        standing: Standing::Yours,
        detail: tls,
    });
    rules.push(Rule {
        rule: "forward and reverse DNS (PTR) for the sending address, naming each other",
        asked_by: GMAIL_YAHOO,
        standing: Standing::Yours,
        detail: "the relay's or this machine's provider sets the PTR record".into(),
    });
    rules.push(Rule {
        rule: "a spam-complaint rate under 0.3% (keep it under 0.1%)",
        asked_by: ALL,
        standing: Standing::Yours,
        detail: "sign-up is double opt-in and unsubscribing takes one click, which keeps complaints down; watch the rate in Google Postmaster Tools and Yahoo's complaint feedback loop".into(),
    });
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_txt_value_is_cut_into_strings_of_255_bytes() {
        let record = Record {
            kind: "dkim",
            name: "s._domainkey.example.org".into(),
            rtype: "TXT",
            value: format!("v=DKIM1; k=rsa; p={}", "A".repeat(600)),
            suggestion: false,
            note: String::new(),
        };
        let line = record.zone_line();
        let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect::<Vec<_>>();
        assert_eq!(strings.len(), 3, "{line}");
        assert!(strings.iter().all(|s| s.len() <= 255));
        assert_eq!(strings.concat(), record.value);
        assert!(line.starts_with("s._domainkey.example.org. IN TXT ( "));
    }

    #[test]
    fn a_course_with_its_own_sender_gets_records_for_its_domain_too() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
        let mut config = Config::from_toml_str(&text).unwrap();
        let lessons = tempfile::tempdir().unwrap();
        let shipped = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/lessons/write-your-first-course/course.toml"
        ))
        .unwrap();
        let own: String = shipped
            .lines()
            .map(|l| {
                if l.starts_with("from = ") {
                    "from = \"Writing Desk <desk@courses.example.net>\""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for (slug, text) in [("own-sender", own.as_str()), ("plain", shipped.as_str())] {
            std::fs::create_dir(lessons.path().join(slug)).unwrap();
            std::fs::write(lessons.path().join(slug).join("course.toml"), text).unwrap();
        }
        config.course.lessons_dir = lessons.path().to_owned();
        let report = report(&config).unwrap();
        assert_eq!(report.domains, ["example.org", "courses.example.net"]);
        let dmarc: Vec<&str> = report
            .records
            .iter()
            .filter(|r| r.kind == "dmarc")
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(dmarc, ["_dmarc.example.org", "_dmarc.courses.example.net"]);
        assert!(
            report.records[3]
                .note
                .starts_with("the sender of course own-sender")
        );
    }

    #[test]
    fn without_a_key_dkim_is_missing_and_there_is_no_dkim_record() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
        let config = Config::from_toml_str(&text).unwrap();
        let report = report(&config).unwrap();
        assert_eq!(report.domain, "example.org");
        assert!(report.records.iter().all(|r| r.kind != "dkim"));
        assert_eq!(report.rules[0].standing, Standing::Missing);
        assert!(report.rules[0].detail.contains("openssl genpkey"));
    }
}
