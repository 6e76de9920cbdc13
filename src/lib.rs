//! drip: a self-hosted email course engine.
//!
//! Module map, following the data flow in DESIGN.md:
//!
//! - [`config`]: `config.toml` and `DRIP_*` overrides, validated before anything starts.
//! - [`domain`]: typed values parsed at the edge (addresses, time zones, phases, tokens).
//! - [`db`]: the SQLite/PostgreSQL pool, migrations and every query, by table.
//! - [`curriculum`]: lesson files: parse, lint, sync into revisions, export.
//! - [`render`]: minijinja templates and Markdown into finished mails and pages.
//! - [`schedule`]: send windows in the subscriber's time zone, due dates.
//! - [`subscriptions`]: sign-up, confirmation, pause, resume, unsubscribe, bounces, erasure,
//!   the data export, the CSV list.
//! - [`outbox`]: the scheduler's planning pass and the sender (claim, send, record, retry),
//!   its rate limits and the relay gate that holds the queue while SMTP is unreachable.
//! - [`mailer`]: lettre messages and transports (outbox files or SMTP).
//! - [`inbound`]: replies: parse, match, strip, classify, store.
//! - [`privacy`]: retention (raw messages and replies deleted after `[privacy]`'s days) and
//!   resealing replies after a data key rotation.
//! - [`crypto`]: sealing reply data at rest, with previous keys for rotation.
//! - [`web`]: the public pages, the journal, the admin UI and the JSON API.
//! - [`auth`]: admin passwords, sessions, CSRF tokens, API tokens, the sign-in limiter.
//! - [`cli`]: the `drip` command.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod curriculum;
pub mod db;
pub mod domain;
pub mod inbound;
pub mod mailer;
pub mod metrics;
pub mod outbox;
pub mod privacy;
pub mod render;
mod replies;
pub mod schedule;
pub mod server;
pub mod subscriptions;
pub mod web;
