//! Configuration: `config.toml`, overridden key by key by `DRIP_<SECTION>__<KEY>` variables.
//!
//! Loading happens in two steps, like the rest of drip's input handling: figment merges the
//! file and the environment into raw values (naming the key and its source on a type error),
//! then [`Config::validate`] checks what types alone cannot, before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

use crate::domain::Timezone;

/// The whole configuration. Field names are the contract in DESIGN.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    pub mail: Mail,
    #[serde(default)]
    pub smtp: Smtp,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub inbound: Inbound,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub course: Course,
    #[serde(default)]
    pub privacy: Privacy,
    #[serde(default)]
    pub public: Public,
    pub webhooks: Webhooks,
    #[serde(default)]
    pub log: Log,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub bind: String,
    pub base_url: String,
    /// The reverse proxies in front of drip (addresses or CIDR blocks): only a request whose
    /// TCP peer is one of them has its `X-Forwarded-For` believed (see `web::client`).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

impl Server {
    /// `trusted_proxies` read as blocks; the error names the entry.
    pub fn proxies(&self) -> Result<Vec<crate::domain::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, text)| {
                crate::domain::IpNet::parse(text)
                    .map_err(|e| format!("entry {}: {}", i + 1, e.message))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mail {
    pub transport: Transport,
    #[serde(default = "default_outbox")]
    pub outbox_dir: PathBuf,
    pub from: String,
    #[serde(default = "default_reply_local")]
    pub reply_local: String,
    pub reply_domain: String,
    #[serde(default)]
    pub dkim_key: String,
    #[serde(default)]
    pub dkim_selector: String,
    /// The sender name on a discreet subscriber's lessons: one that says nothing about the
    /// course on a lock screen.
    #[serde(default = "default_discreet_name")]
    pub discreet_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

/// The relay drip hands its mail to. `Debug` leaves the password out: a password set through
/// `DRIP_SMTP__PASSWORD` must not reach a log through a debug print of the configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: String,
    pub pool_size: u32,
    pub timeout_seconds: u64,
    /// Messages per second this process sends at most; 0: unlimited.
    pub max_per_second: u32,
    /// Mails in flight at once to one recipient domain; 0: unlimited.
    pub max_connections_per_domain: u32,
    /// A PEM file of one or more CA certificates trusted beside the system's store and the
    /// built-in roots; empty: none.
    pub ca_file: String,
    /// false accepts any certificate: a lab only, refused unless server.base_url is local.
    pub tls_verify: bool,
    /// AUTH over a connection without TLS (`tls = "none"`) only when true.
    pub allow_plain_auth: bool,
    /// Send MAIL FROM, RCPT TO and DATA in one write when the server offers PIPELINING
    /// (RFC 2920); false: one command at a time, as to a server that does not.
    pub pipelining: bool,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: "127.0.0.1".into(),
            port: 25,
            tls: Tls::None,
            username: String::new(),
            password: String::new(),
            pool_size: 4,
            timeout_seconds: 30,
            max_per_second: 0,
            max_connections_per_domain: 0,
            ca_file: String::new(),
            tls_verify: true,
            allow_plain_auth: false,
            pipelining: true,
        }
    }
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .field("pool_size", &self.pool_size)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_per_second", &self.max_per_second)
            .field(
                "max_connections_per_domain",
                &self.max_connections_per_domain,
            )
            .field("ca_file", &self.ca_file)
            .field("tls_verify", &self.tls_verify)
            .field("allow_plain_auth", &self.allow_plain_auth)
            .field("pipelining", &self.pipelining)
            .finish()
    }
}

impl Smtp {
    /// What the [smtp] keys cannot be together; `local`: server.base_url is on localhost.
    /// The error is the key to change and why.
    pub fn check(&self, local: bool) -> Result<(), (&'static str, String)> {
        if self.pool_size == 0 {
            return Err(("smtp.pool_size", "must be at least 1".into()));
        }
        if !self.tls_verify && !local {
            return Err((
                "smtp.tls_verify",
                "false accepts any certificate, so anyone on the path can read the mail and the password; it is for a lab only and refused when server.base_url is not on localhost (give the relay a certificate, or trust its CA with smtp.ca_file)".into(),
            ));
        }
        if !self.username.is_empty() && self.tls == Tls::None && !self.allow_plain_auth {
            return Err((
                "smtp.tls",
                "is \"none\" but smtp.username is set: AUTH would send the password unencrypted; set smtp.tls = \"starttls\" (port 587) or \"tls\" (port 465), or smtp.allow_plain_auth = true for a relay on this machine".into(),
            ));
        }
        if self.username.is_empty() != self.password.is_empty() {
            let (key, missing) = if self.username.is_empty() {
                ("smtp.username", "smtp.password is set")
            } else {
                ("smtp.password", "smtp.username is set")
            };
            return Err((
                key,
                format!("is empty but {missing}: set both to sign in to the relay, or neither"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    pub tick_seconds: u64,
    pub default_timezone: String,
    pub batch_size: u32,
    /// Mails per SMTP connection that the server may have accepted before drip has
    /// recorded them: after a crash those are sent again, so this times the connections is
    /// the most copies a crash can cause. A connection waits for its oldest record before
    /// sending more; a larger window lets records group when the database is slower than
    /// the SMTP server.
    pub unrecorded_per_connection: u32,
    pub lease_seconds: i64,
    pub retry_max_age_hours: i64,
    pub bounce_window_days: i64,
    pub hard_bounce_limit: i64,
    pub soft_bounce_limit: i64,
    /// At most this many lessons on one local day per person, across all their courses;
    /// 0: no limit.
    pub max_lessons_per_day: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            tick_seconds: 10,
            default_timezone: "UTC".into(),
            batch_size: 200,
            unrecorded_per_connection: 2,
            lease_seconds: 300,
            retry_max_age_hours: 72,
            bounce_window_days: 30,
            hard_bounce_limit: 1,
            soft_bounce_limit: 3,
            max_lessons_per_day: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inbound {
    pub smtp_bind: String,
    pub token: String,
    pub max_message_bytes: usize,
    pub distress_words: Vec<String>,
    pub help_text: String,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            smtp_bind: String::new(),
            token: String::new(),
            max_message_bytes: 10 * 1024 * 1024,
            distress_words: Vec::new(),
            help_text: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub secret_key: String,
    pub data_key: String,
    /// Secret keys replaced by `secret_key`: links and reply addresses in mail sent before
    /// the change still verify. New tokens are signed with `secret_key` only.
    pub previous_secret_keys: Vec<String>,
    /// Data keys replaced by `data_key`: replies sealed under them still open, until
    /// `drip keys reseal` has sealed every one under the current key.
    pub previous_data_keys: Vec<String>,
    /// Every admin needs a TOTP second factor: one without is sent to enrol right after the
    /// password and can do nothing else until then (their API tokens are refused too).
    pub require_totp: bool,
}

/// How long replies are kept (see `crate::privacy`). Signed so that a negative value is
/// named by validation rather than failing as a type error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// Days after which a reply's raw message is deleted (its extracted text stays); 0: kept.
    pub raw_retention_days: i64,
    /// Days after which a whole reply is deleted; 0: kept.
    pub reply_retention_days: i64,
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy {
            raw_retention_days: 30,
            reply_retention_days: 0,
        }
    }
}

/// What the public sign-up form lets through (see `subscriptions::flood`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Public {
    /// Sign-ups accepted from one client address (an IPv6 client: its /64) in any hour, per
    /// `drip serve` process; 0: no limit.
    pub signups_per_ip_per_hour: u32,
    /// Confirmation mails queued by sign-ups in any hour, across every process on the
    /// database; once reached, every sign-up is refused until the hour rolls on. 0: no limit.
    pub confirmations_per_hour: u32,
}

impl Default for Public {
    fn default() -> Self {
        Public {
            signups_per_ip_per_hour: 20,
            confirmations_per_hour: 1000,
        }
    }
}

/// How events are posted to webhook endpoints (see `crate::webhooks`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Webhooks {
    /// Each POST (connect, TLS, send, the answer's status) is cut after this many seconds.
    pub timeout_seconds: u64,
    /// A delivery that got no 2xx is retried with backoff for this many hours after its
    /// event, then failed.
    pub retry_hours: i64,
    /// Requests in flight at once, per process.
    pub concurrency: u32,
    /// Events with nothing left to deliver are deleted after this many days.
    pub keep_days: i64,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            timeout_seconds: 10,
            retry_hours: 24,
            concurrency: 4,
            keep_days: 30,
        }
    }
}

/// A hundred years: anything longer is a typo (days given as seconds, say), not a policy.
pub(crate) const MAX_RETENTION_DAYS: i64 = 36_500;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Course {
    /// The course a command means when it names none and the instance has several; empty:
    /// none (the command lists the slugs). `slug`, the key of single-course releases, is
    /// read as this.
    #[serde(alias = "slug")]
    pub default: String,
    pub lessons_dir: PathBuf,
    pub templates_dir: PathBuf,
}

impl Default for Course {
    fn default() -> Self {
        Course {
            default: String::new(),
            lessons_dir: "lessons".into(),
            templates_dir: "templates".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

fn default_max_connections() -> u32 {
    8
}
fn default_outbox() -> PathBuf {
    "outbox".into()
}
fn default_discreet_name() -> String {
    "Lessons".into()
}

fn default_reply_local() -> String {
    "reply".into()
}

/// A configuration problem, always naming the key (and where its value came from).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration key `{key}`: {message}")]
    Key { key: &'static str, message: String },
}

/// The secret used when none is configured and drip runs on this machine only.
/// It is public, so tokens made with it protect nothing: validation refuses it for a
/// base_url that other machines can reach.
const DEV_SECRET: &str = "drip-development-secret-do-not-use-in-production";

impl Config {
    /// Reads `path` (which must exist) and the `DRIP_*` environment, then validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, Env::prefixed("DRIP_"))
    }

    /// Parses configuration text alone, without the environment (for tests and tools).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Self::from_text(text, Path::new("<string>"), None)
    }

    fn load_with_env(path: &Path, env: Env) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_text(&text, path, Some(env))
    }

    fn from_text(text: &str, path: &Path, env: Option<Env>) -> Result<Config, ConfigError> {
        // Only DRIP_<SECTION>__<KEY> is configuration; other DRIP_ variables (the test
        // suite's DRIP_TEST_POSTGRES_URL, say) are not ours to reject.
        let mut figment = Figment::new().merge(Toml::string(text));
        if let Some(env) = env {
            figment = figment.merge(env.filter(|k| k.as_str().contains("__")).split("__"));
        }
        let mut config: Config = figment.extract().map_err(|e| {
            let mut msg = String::new();
            for (i, err) in e.into_iter().enumerate() {
                if i > 0 {
                    msg.push_str("; ");
                }
                msg.push_str(&describe_figment_error(&err, path));
            }
            ConfigError::Invalid(msg)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: addresses, URLs, the time zone, secrets.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let key = |key: &'static str, message: String| ConfigError::Key { key, message };
        self.server.bind.parse::<SocketAddr>().map_err(|e| {
            key(
                "server.bind",
                format!("{:?} is not host:port ({e})", self.server.bind),
            )
        })?;
        let base = self.server.base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(key(
                "server.base_url",
                format!("{:?} must be an absolute http(s) URL", self.server.base_url),
            ));
        }
        self.server.base_url = base;
        self.server
            .proxies()
            .map_err(|m| key("server.trusted_proxies", m))?;
        crate::db::Backend::from_url(&self.database.url).map_err(|m| key("database.url", m))?;
        if self.database.max_connections == 0 {
            return Err(key("database.max_connections", "must be at least 1".into()));
        }
        self.mail
            .from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| {
                key(
                    "mail.from",
                    format!("{:?} is not a mailbox ({e})", self.mail.from),
                )
            })?;
        if self.mail.reply_domain.is_empty()
            || self.mail.reply_domain.contains(['@', ' ', '<', '>'])
        {
            return Err(key(
                "mail.reply_domain",
                format!("{:?} is not a domain name", self.mail.reply_domain),
            ));
        }
        if self.mail.reply_local.is_empty()
            || !self
                .mail
                .reply_local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(key(
                "mail.reply_local",
                format!(
                    "{:?} must be letters, digits, '.', '_' or '-'",
                    self.mail.reply_local
                ),
            ));
        }
        if !self.mail.dkim_key.is_empty() && self.mail.dkim_selector.is_empty() {
            return Err(key(
                "mail.dkim_selector",
                "is required when mail.dkim_key is set".into(),
            ));
        }
        let local = self.is_local();
        self.smtp.check(local).map_err(|(k, m)| key(k, m))?;
        if self.mail.transport == Transport::Smtp && self.smtp.host.is_empty() {
            return Err(key(
                "smtp.host",
                "is required when mail.transport = \"smtp\"".into(),
            ));
        }
        Timezone::parse(&self.schedule.default_timezone)
            .map_err(|e| key("schedule.default_timezone", e.to_string()))?;
        if self.schedule.tick_seconds == 0 {
            return Err(key("schedule.tick_seconds", "must be at least 1".into()));
        }
        if self.schedule.batch_size == 0 {
            return Err(key("schedule.batch_size", "must be at least 1".into()));
        }
        if !(1..=10_000).contains(&self.schedule.unrecorded_per_connection) {
            return Err(key(
                "schedule.unrecorded_per_connection",
                "must be between 1 and 10000".into(),
            ));
        }
        if self.schedule.lease_seconds < 10 {
            return Err(key("schedule.lease_seconds", "must be at least 10".into()));
        }
        for (name, days) in [
            (
                "privacy.raw_retention_days",
                self.privacy.raw_retention_days,
            ),
            (
                "privacy.reply_retention_days",
                self.privacy.reply_retention_days,
            ),
        ] {
            if !(0..=MAX_RETENTION_DAYS).contains(&days) {
                return Err(key(
                    name,
                    format!(
                        "{days} is not a number of days from 0 (keep forever) to {MAX_RETENTION_DAYS}"
                    ),
                ));
            }
        }
        let hooks = &self.webhooks;
        if !(1..=300).contains(&hooks.timeout_seconds) {
            return Err(key(
                "webhooks.timeout_seconds",
                format!(
                    "{} is not a number of seconds from 1 to 300",
                    hooks.timeout_seconds
                ),
            ));
        }
        if !(1..=720).contains(&hooks.retry_hours) {
            return Err(key(
                "webhooks.retry_hours",
                format!(
                    "{} is not a number of hours from 1 to 720 (30 days)",
                    hooks.retry_hours
                ),
            ));
        }
        if !(1..=64).contains(&hooks.concurrency) {
            return Err(key(
                "webhooks.concurrency",
                format!(
                    "{} is not a number of requests from 1 to 64",
                    hooks.concurrency
                ),
            ));
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&hooks.keep_days) {
            return Err(key(
                "webhooks.keep_days",
                format!(
                    "{} is not a number of days from 1 to {MAX_RETENTION_DAYS}",
                    hooks.keep_days
                ),
            ));
        }
        if !self.inbound.smtp_bind.is_empty() {
            self.inbound.smtp_bind.parse::<SocketAddr>().map_err(|e| {
                key(
                    "inbound.smtp_bind",
                    format!("{:?} is not host:port ({e})", self.inbound.smtp_bind),
                )
            })?;
        }
        if self.security.secret_key.is_empty() {
            if !self.is_local() {
                return Err(key(
                    "security.secret_key",
                    "is required when server.base_url is not on localhost (set DRIP_SECURITY__SECRET_KEY)".into(),
                ));
            }
            self.security.secret_key = DEV_SECRET.into();
        } else if self.security.secret_key.len() < 32 {
            return Err(key(
                "security.secret_key",
                "must be at least 32 characters".into(),
            ));
        }
        if let Some((i, _)) = self
            .security
            .previous_secret_keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.len() < 32)
        {
            return Err(key(
                "security.previous_secret_keys",
                format!(
                    "entry {} must be at least 32 characters, like secret_key",
                    i + 1
                ),
            ));
        }
        if let Some((i, _)) = self
            .security
            .previous_data_keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.is_empty())
        {
            return Err(key(
                "security.previous_data_keys",
                format!("entry {} is empty", i + 1),
            ));
        }
        Ok(())
    }

    /// True when the web app is only reachable from this machine (development).
    pub(crate) fn is_local(&self) -> bool {
        let rest = self.server.base_url.split("://").nth(1).unwrap_or("");
        let host = rest.split(['/', ':']).next().unwrap_or("");
        matches!(host, "localhost" | "127.0.0.1" | "[" | "") || rest.starts_with("[::1]")
    }

    /// The default time zone, already known to be valid.
    pub(crate) fn default_timezone(&self) -> Timezone {
        Timezone::parse(&self.schedule.default_timezone).expect("validated at load")
    }
}

/// Figment names keys with a `default.` profile prefix and its sources by type; drip's users
/// only need the key and the file or variable.
fn describe_figment_error(err: &figment::Error, path: &Path) -> String {
    let key = err.path.join(".");
    let source = match &err.metadata {
        Some(m) if m.name.contains("environment") => {
            format!(
                " (from environment variable DRIP_{})",
                key.to_uppercase().replace('.', "__")
            )
        }
        Some(_) => format!(" (in {})", path.display()),
        None => String::new(),
    };
    let kind = match &err.kind {
        figment::error::Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
        figment::error::Kind::MissingField(field) => format!("missing key `{field}`"),
        other => other.to_string(),
    };
    if key.is_empty() {
        format!("{kind}{source}")
    } else {
        format!("key `{key}`: {kind}{source}")
    }
}

#[cfg(test)]
// figment::Jail's closures must return figment's own error type, which is large.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn shipped() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap()
    }

    fn no_env() -> Env {
        Env::prefixed("DRIP_UNSET_FOR_TEST_")
    }

    #[test]
    fn the_shipped_config_loads_as_is() {
        let f = write(&shipped());
        let c = Config::load_with_env(f.path(), no_env()).unwrap();
        assert_eq!(c.database.url, "sqlite://drip.db");
        assert_eq!(c.mail.transport, Transport::File);
        assert_eq!(c.security.secret_key, DEV_SECRET);
    }

    #[test]
    fn environment_overrides_a_key_of_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DRIP_DATABASE__URL", "postgres://localhost/other");
            jail.set_env("DRIP_SMTP__PORT", "2525");
            jail.set_env("DRIP_TEST_POSTGRES_URL", "ignored: not a config key");
            let f = write(&shipped());
            let c = Config::load(f.path()).unwrap();
            assert_eq!(c.database.url, "postgres://localhost/other");
            assert_eq!(c.smtp.port, 2525);
            assert_eq!(c.server.bind, "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DRIP_SMTP__PORT", "not-a-port");
            let f = write(&shipped());
            let err = Config::load(f.path()).unwrap_err().to_string();
            assert!(err.contains("smtp.port"), "{err}");
            assert!(err.contains("DRIP_SMTP__PORT"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_database_url_names_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DRIP_DATABASE__URL", "mysql://localhost/drip");
            let f = write(&shipped());
            let err = Config::load(f.path()).unwrap_err().to_string();
            assert!(err.contains("database.url"), "{err}");
            assert!(err.contains("mysql"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_values_in_the_file_name_their_key() {
        let cases = [
            (
                "bind = \"127.0.0.1:8080\"",
                "bind = \"nowhere\"",
                "server.bind",
            ),
            (
                "default_timezone = \"UTC\"",
                "default_timezone = \"Mars/Olympus\"",
                "schedule.default_timezone",
            ),
            (
                "transport = \"file\"",
                "transport = \"pigeon\"",
                "mail.transport",
            ),
            ("tls = \"none\"", "tls = \"maybe\"", "smtp.tls"),
            ("port = 25", "port = 70000", "smtp.port"),
            (
                "from = \"Rebuilding Trust <course@example.org>\"",
                "from = \"not an address\"",
                "mail.from",
            ),
            ("[log]", "[log]\ncolour = \"red\"", "colour"),
            (
                "unrecorded_per_connection = 2",
                "unrecorded_per_connection = 0",
                "schedule.unrecorded_per_connection",
            ),
            ("pipelining = true", "pipelining = \"yes\"", "pipelining"),
        ];
        for (from, to, key) in cases {
            let text = shipped().replacen(from, to, 1);
            assert_ne!(text, shipped(), "{from} not in config.toml");
            let f = write(&text);
            let err = Config::load_with_env(f.path(), no_env())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "expected {key} in: {err}");
        }
    }

    #[test]
    fn retention_defaults_to_thirty_days_of_raw_messages_and_replies_kept() {
        let c = Config::from_toml_str(&shipped()).unwrap();
        assert_eq!(
            (c.privacy.raw_retention_days, c.privacy.reply_retention_days),
            (30, 0)
        );
        // A file without the section gets the same defaults.
        let start = shipped().find("[privacy]").unwrap();
        let end = shipped()[start..].find("\n[").unwrap() + start + 1;
        let mut text = shipped();
        text.replace_range(start..end, "");
        let c = Config::from_toml_str(&text).unwrap();
        assert_eq!(
            (c.privacy.raw_retention_days, c.privacy.reply_retention_days),
            (30, 0)
        );
    }

    #[test]
    fn retention_days_come_from_the_environment_too() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DRIP_PRIVACY__RAW_RETENTION_DAYS", "7");
            jail.set_env("DRIP_PRIVACY__REPLY_RETENTION_DAYS", "365");
            let f = write(&shipped());
            let c = Config::load(f.path()).unwrap();
            assert_eq!(
                (c.privacy.raw_retention_days, c.privacy.reply_retention_days),
                (7, 365)
            );
            Ok(())
        });
    }

    #[test]
    fn negative_or_absurd_retention_days_name_their_key() {
        for (from, to, key) in [
            (
                "raw_retention_days = 30",
                "raw_retention_days = -1",
                "privacy.raw_retention_days",
            ),
            (
                "reply_retention_days = 0",
                "reply_retention_days = 1000000",
                "privacy.reply_retention_days",
            ),
            (
                "raw_retention_days = 30",
                "raw_retention_days = \"a month\"",
                "privacy.raw_retention_days",
            ),
        ] {
            let text = shipped().replacen(from, to, 1);
            assert_ne!(text, shipped(), "{from} not in config.toml");
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(key), "expected {key} in: {err}");
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("DRIP_PRIVACY__REPLY_RETENTION_DAYS", "-30");
            let f = write(&shipped());
            let err = Config::load(f.path()).unwrap_err().to_string();
            assert!(err.contains("privacy.reply_retention_days"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn sign_up_limits_default_and_come_from_the_environment() {
        let c = Config::from_toml_str(&shipped()).unwrap();
        assert_eq!(
            (
                c.public.signups_per_ip_per_hour,
                c.public.confirmations_per_hour
            ),
            (20, 1000)
        );
        assert!(c.server.trusted_proxies.is_empty());
        let start = shipped().find("[public]").unwrap();
        let end = shipped()[start..].find("\n[").unwrap() + start + 1;
        let mut text = shipped();
        text.replace_range(start..end, "");
        let c = Config::from_toml_str(&text).unwrap();
        assert_eq!(c.public.signups_per_ip_per_hour, 20, "without the section");
        figment::Jail::expect_with(|jail| {
            jail.set_env("DRIP_PUBLIC__SIGNUPS_PER_IP_PER_HOUR", "5");
            jail.set_env("DRIP_PUBLIC__CONFIRMATIONS_PER_HOUR", "0");
            jail.set_env(
                "DRIP_SERVER__TRUSTED_PROXIES",
                r#"["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]"#,
            );
            let f = write(&shipped());
            let c = Config::load(f.path()).unwrap();
            assert_eq!(
                (
                    c.public.signups_per_ip_per_hour,
                    c.public.confirmations_per_hour
                ),
                (5, 0)
            );
            let proxies = c.server.proxies().unwrap();
            assert_eq!(proxies.len(), 3);
            assert!(proxies[1].contains("10.1.2.3".parse().unwrap()));
            Ok(())
        });
    }

    #[test]
    fn bad_sign_up_limits_and_proxies_name_their_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DRIP_PUBLIC__SIGNUPS_PER_IP_PER_HOUR", "-1");
            let f = write(&shipped());
            let err = Config::load(f.path()).unwrap_err().to_string();
            assert!(err.contains("public.signups_per_ip_per_hour"), "{err}");
            assert!(
                err.contains("DRIP_PUBLIC__SIGNUPS_PER_IP_PER_HOUR"),
                "{err}"
            );
            Ok(())
        });
        for (value, says) in [
            (r#"["127.0.0.1", "proxy.local"]"#, "entry 2"),
            (r#"["10.0.0.0/40"]"#, "from 0 to 32"),
        ] {
            let text = shipped().replacen(
                "trusted_proxies = []",
                &format!("trusted_proxies = {value}"),
                1,
            );
            assert_ne!(text, shipped());
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(
                err.contains("server.trusted_proxies") && err.contains(says),
                "{value}: {err}"
            );
        }
        let text = shipped().replacen(
            "confirmations_per_hour = 1000",
            "confirmations_per_hour = \"many\"",
            1,
        );
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("public.confirmations_per_hour"), "{err}");
    }

    #[test]
    fn webhook_settings_out_of_range_name_their_key() {
        let c = Config::from_toml_str(&shipped()).unwrap();
        assert_eq!(
            (
                c.webhooks.timeout_seconds,
                c.webhooks.retry_hours,
                c.webhooks.concurrency,
                c.webhooks.keep_days
            ),
            (10, 24, 4, 30)
        );
        for (from, to, key) in [
            (
                "timeout_seconds = 10 ",
                "timeout_seconds = 0 ",
                "webhooks.timeout_seconds",
            ),
            (
                "retry_hours = 24",
                "retry_hours = -1",
                "webhooks.retry_hours",
            ),
            ("concurrency = 4", "concurrency = 0", "webhooks.concurrency"),
            ("keep_days = 30", "keep_days = 0", "webhooks.keep_days"),
        ] {
            let start = shipped().find("[webhooks]").unwrap();
            let mut text = shipped();
            let at = text[start..]
                .find(from)
                .unwrap_or_else(|| panic!("{from} not in [webhooks]"))
                + start;
            text.replace_range(at..at + from.len(), to);
            let err = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(err.contains(key), "expected {key} in: {err}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Config::load_with_env(Path::new("/nonexistent/drip.toml"), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/drip.toml"), "{err}");
    }

    #[test]
    fn relay_settings_that_would_expose_the_password_name_their_key() {
        let base = Config::from_toml_str(&shipped()).unwrap();
        let err = |c: &mut Config| c.validate().unwrap_err().to_string();

        let mut c = base.clone();
        c.smtp.tls_verify = false;
        assert!(c.validate().is_ok(), "a lab on localhost may turn it off");
        c.server.base_url = "https://course.example.org".into();
        c.security.secret_key = "0123456789abcdef0123456789abcdef".into();
        let e = err(&mut c);
        assert!(
            e.contains("smtp.tls_verify") && e.contains("localhost"),
            "{e}"
        );

        let mut c = base.clone();
        c.smtp.username = "course@example.org".into();
        c.smtp.password = "secret".into();
        let e = err(&mut c);
        assert!(
            e.contains("smtp.tls") && e.contains("allow_plain_auth") && !e.contains("secret"),
            "{e}"
        );
        c.smtp.allow_plain_auth = true;
        assert!(c.validate().is_ok());
        c.smtp.allow_plain_auth = false;
        c.smtp.tls = Tls::Starttls;
        assert!(c.validate().is_ok());

        let mut c = base.clone();
        c.smtp.tls = Tls::Starttls;
        c.smtp.password = "secret".into();
        let e = err(&mut c);
        assert!(e.contains("smtp.username"), "{e}");
    }

    #[test]
    fn the_smtp_password_stays_out_of_debug_output() {
        let mut c = Config::from_toml_str(&shipped()).unwrap();
        c.smtp.password = "hunter2-from-the-environment".into();
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("password: \"<set>\""), "{text}");
    }

    #[test]
    fn a_public_base_url_requires_a_secret() {
        let text = shipped().replace(
            "base_url = \"http://127.0.0.1:8080\"",
            "base_url = \"https://course.example.org\"",
        );
        let f = write(&text);
        let err = Config::load_with_env(f.path(), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("security.secret_key"), "{err}");
        let text = text.replace(
            "secret_key = \"\"",
            "secret_key = \"0123456789abcdef0123456789abcdef\"",
        );
        let f = write(&text);
        assert!(Config::load_with_env(f.path(), no_env()).is_ok());
    }
}
