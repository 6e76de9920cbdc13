//! drip: a self-hosted email course engine.
//!
//! Module map, following the data flow (the README's "Where each rule lives" names the
//! owner of each rule):
//!
//! - [`config`]: `config.toml` and `DRIP_*` overrides, validated before anything starts.
//! - [`domain`]: typed values parsed at the edge: addresses, time zones, send windows,
//!   phase names and a course's ordered phases, the stored statuses, tokens, admin roles
//!   and what each may do, network blocks (`domain::net`: what a limit counts a client by).
//! - [`db`]: the SQLite/PostgreSQL pool, migrations and every query, by table, and the
//!   SQLite copy `drip backup` makes.
//! - [`curriculum`]: lesson files (parse, the content rules, load a folder, sync, export)
//!   and `curriculum::edit`, every change to a lesson whoever asks; `curriculum::start`
//!   makes a new course's folder from the admin page, the API or `drip courses new`.
//! - [`courses`]: the courses an instance serves, summarised once for the CLI, the public
//!   index, the admin's switcher and the API (which course a caller means: `App::course`).
//! - [`render`]: minijinja templates and Markdown into finished mails and pages, in the
//!   course's language (`render::i18n`: drip's own words from `templates/i18n/`).
//! - [`schedule`]: every rule of when a lesson is due and what number it has
//!   (`Syllabus`, with the subscriber's own pacing), the daily limit across courses
//!   (`DailyLimit`), the impact of a schedule change, and a broadcast's local hour
//!   (`schedule::local_time`).
//! - [`subscriptions`]: sign-up and confirmation per course, pause, resume, leaving one
//!   course or everything, the next lesson now, own pacing, evergreen release, bounces,
//!   moves, discreet mails, erasure, the data export, the CSV list; each change also in a
//!   form that takes the caller's transaction. `subscriptions::flood`: the sign-up limits
//!   and the honeypot.
//! - [`broadcasts`]: one mail to a course's readers: its checks, whom it reaches, when each
//!   reader gets it (now, a moment, or an hour on their own clock), its figures; its mail
//!   goes through the outbox.
//! - [`outbox`]: the scheduler's planning pass and the sender (claim, send, record, retry),
//!   its rate limits and the relay gate that holds the queue while the relay cannot take mail.
//! - [`webhooks`]: drip's events posted to the endpoints that asked for them: one function
//!   per event type, called in the transaction of the change (`webhooks::events`), and the
//!   sender (claim, signed POST with a timeout, retry with backoff for 24 hours), in a task
//!   of its own so that no endpoint can slow the mail.
//! - [`mailer`]: lettre messages and their DKIM signature (the key forms, the headers
//!   signed), the SMTP session (TLS, AUTH, what a refusal means), `drip smtp check` and
//!   `drip dns`.
//! - [`inbound`]: replies in: parse, classify, strip, match, then store and act in one
//!   transaction.
//! - `replies`: reading stored replies (and a reply's whole conversation), always through
//!   the view log.
//! - [`answers`]: an author's answer to a reader's reply: its checks, who may be answered,
//!   its mail (threaded, through the outbox), and a conversation's order.
//! - [`privacy`]: retention (raw messages and replies deleted after `[privacy]`'s days) and
//!   resealing replies and answers after a data key rotation.
//! - [`crypto`]: sealing reply data at rest, with previous keys for rotation.
//! - [`web`]: the public pages, the journal, the admin UI and the JSON API, thin doors onto
//!   the modules above, with one error type; `web::access` is the route table of the admin
//!   UI and the API, where each route names the areas a role must reach; `web::client` is
//!   who a request's client is (`[server] trusted_proxies`), for every limiter.
//! - [`auth`]: admin passwords, sessions and their generations, CSRF tokens, API tokens, the
//!   sign-in limiters, and the TOTP second factor with recovery codes (`auth::second_factor`).
//! - [`app`], [`server`], [`metrics`]: the composition root, the long-running processes
//!   and their shutdown, the Prometheus figures.
//! - [`cli`]: the `drip` command.

pub mod answers;
pub mod app;
pub mod auth;
pub mod broadcasts;
pub mod cli;
pub mod config;
pub mod courses;
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
pub mod webhooks;
