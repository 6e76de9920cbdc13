//! Process-wide counters for `/metrics`: send latency and SMTP errors by class, what holds
//! the queue (the relay unreachable, or refusing drip's TLS or sign-in, with what to fix),
//! and the last `smtp check` run in this process; sign-ups held back by the flood checks
//! (counted by this process's `App`). Gauges that live in the database (queue depth,
//! deliveries by status) are read at scrape time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::mailer::{RelayProblem, SendError};

/// Upper bounds of the send latency histogram, in seconds.
pub(crate) const LATENCY_BUCKETS: [f64; 10] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

pub struct SendMetrics {
    pub buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    pub count: AtomicU64,
    pub sum_micros: AtomicU64,
    pub errors_4xx: AtomicU64,
    pub errors_5xx: AtomicU64,
    pub errors_connection: AtomicU64,
    pub errors_setup: AtomicU64,
}

pub static SEND: SendMetrics = SendMetrics {
    buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
    count: AtomicU64::new(0),
    sum_micros: AtomicU64::new(0),
    errors_4xx: AtomicU64::new(0),
    errors_5xx: AtomicU64::new(0),
    errors_connection: AtomicU64::new(0),
    errors_setup: AtomicU64::new(0),
};

/// The sender's recorder (`outbox::send`): its commits of accepted mail, how many mails
/// they held, and how long they took.
pub struct RecordMetrics {
    pub commits: AtomicU64,
    pub mails: AtomicU64,
    pub sum_micros: AtomicU64,
}

pub static RECORD: RecordMetrics = RecordMetrics {
    commits: AtomicU64::new(0),
    mails: AtomicU64::new(0),
    sum_micros: AtomicU64::new(0),
};

pub(crate) fn observe_record(mails: usize, elapsed: Duration) {
    RECORD.commits.fetch_add(1, Ordering::Relaxed);
    RECORD.mails.fetch_add(mails as u64, Ordering::Relaxed);
    RECORD
        .sum_micros
        .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
}

/// What holds this process's queue (see `outbox::relay`), None while mail flows.
static RELAY_PROBLEM: Mutex<Option<RelayProblem>> = Mutex::new(None);

pub(crate) fn set_relay_problem(problem: Option<&RelayProblem>) {
    *RELAY_PROBLEM.lock().expect("metrics lock") = problem.cloned();
}

/// What holds the queue now, as this process saw it last.
pub(crate) fn relay_problem() -> Option<RelayProblem> {
    RELAY_PROBLEM.lock().expect("metrics lock").clone()
}

/// The last `smtp check` run in this process (the admin's statistics page runs one).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LastCheck {
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// Each step as printed by `drip smtp check`.
    pub steps: Vec<String>,
    /// The last line: it works, or what to change.
    pub verdict: String,
}

static LAST_CHECK: Mutex<Option<LastCheck>> = Mutex::new(None);

pub(crate) fn set_last_check(check: LastCheck) {
    *LAST_CHECK.lock().expect("metrics lock") = Some(check);
}

pub(crate) fn last_check() -> Option<LastCheck> {
    LAST_CHECK.lock().expect("metrics lock").clone()
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) fn observe_send(elapsed: Duration, error: Option<&SendError>) {
    let secs = elapsed.as_secs_f64();
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        if secs <= *bound {
            SEND.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    SEND.count.fetch_add(1, Ordering::Relaxed);
    SEND.sum_micros
        .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    if let Some(e) = error {
        let counter = match e.class() {
            "4xx" => &SEND.errors_4xx,
            "5xx" => &SEND.errors_5xx,
            "setup" => &SEND.errors_setup,
            _ => &SEND.errors_connection,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sign-ups this process held back since it started: by the per-client limit, by the
/// instance's cap on confirmations, and those that filled the honeypot field.
pub(crate) fn render_signup_metrics(
    out: &mut String,
    figures: crate::subscriptions::flood::SignupFigures,
) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP drip_signups_refused_total Sign-ups refused with 429 by this process, by the limit that refused them: per_client ([public] signups_per_ip_per_hour) or instance ([public] confirmations_per_hour).\n# TYPE drip_signups_refused_total counter"
    );
    let _ = writeln!(
        out,
        "drip_signups_refused_total{{limit=\"per_client\"}} {}",
        figures.refused_per_client
    );
    let _ = writeln!(
        out,
        "drip_signups_refused_total{{limit=\"instance\"}} {}",
        figures.refused_instance
    );
    let _ = writeln!(
        out,
        "# HELP drip_signups_honeypot_total Sign-ups that filled the hidden honeypot field: answered as a success, nothing stored or sent.\n# TYPE drip_signups_honeypot_total counter\ndrip_signups_honeypot_total {}",
        figures.honeypot
    );
}

/// The histogram and error counters in Prometheus text format.
pub(crate) fn render_send_metrics(out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP drip_send_duration_seconds Time to hand one mail to the transport."
    );
    let _ = writeln!(out, "# TYPE drip_send_duration_seconds histogram");
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        let _ = writeln!(
            out,
            "drip_send_duration_seconds_bucket{{le=\"{bound}\"}} {}",
            SEND.buckets[i].load(Ordering::Relaxed)
        );
    }
    let count = SEND.count.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "drip_send_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "drip_send_duration_seconds_sum {}",
        SEND.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "drip_send_duration_seconds_count {count}");
    let _ = writeln!(
        out,
        "# HELP drip_record_commits_total Commits of accepted mail by the sender's recorder.\n# TYPE drip_record_commits_total counter\ndrip_record_commits_total {}",
        RECORD.commits.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP drip_record_mails_total Accepted mails those commits recorded.\n# TYPE drip_record_mails_total counter\ndrip_record_mails_total {}",
        RECORD.mails.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP drip_record_seconds_total Time spent in those commits.\n# TYPE drip_record_seconds_total counter\ndrip_record_seconds_total {}",
        RECORD.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    );
    let problem = relay_problem();
    let _ = writeln!(
        out,
        "# HELP drip_smtp_unreachable 1 while no connection to the SMTP server can be opened."
    );
    let _ = writeln!(out, "# TYPE drip_smtp_unreachable gauge");
    let _ = writeln!(
        out,
        "drip_smtp_unreachable {}",
        u8::from(problem.as_ref().is_some_and(|p| p.kind.is_connection()))
    );
    let _ = writeln!(
        out,
        "# HELP drip_smtp_relay_problem 1 while the queue is held because the relay cannot be used; kind and fix say why and what to change."
    );
    let _ = writeln!(out, "# TYPE drip_smtp_relay_problem gauge");
    match &problem {
        Some(p) => {
            let _ = writeln!(
                out,
                "drip_smtp_relay_problem{{kind=\"{}\",fix=\"{}\"}} 1",
                p.kind.label(),
                label(&p.message)
            );
        }
        None => {
            let _ = writeln!(out, "drip_smtp_relay_problem 0");
        }
    }
    if let Some(check) = last_check() {
        let _ = writeln!(
            out,
            "# HELP drip_smtp_check_ok Result of the last SMTP check in this process (1: works); verdict says what to change.\n# TYPE drip_smtp_check_ok gauge\ndrip_smtp_check_ok{{verdict=\"{}\"}} {}",
            label(&check.verdict),
            u8::from(check.ok)
        );
        let _ = writeln!(
            out,
            "# HELP drip_smtp_check_timestamp_seconds When the last SMTP check ran.\n# TYPE drip_smtp_check_timestamp_seconds gauge\ndrip_smtp_check_timestamp_seconds {}",
            check.at.timestamp()
        );
    }
    let _ = writeln!(out, "# HELP drip_smtp_errors_total Failed sends by class.");
    let _ = writeln!(out, "# TYPE drip_smtp_errors_total counter");
    for (class, c) in [
        ("4xx", &SEND.errors_4xx),
        ("5xx", &SEND.errors_5xx),
        ("connection", &SEND.errors_connection),
        ("setup", &SEND.errors_setup),
    ] {
        let _ = writeln!(
            out,
            "drip_smtp_errors_total{{class=\"{class}\"}} {}",
            c.load(Ordering::Relaxed)
        );
    }
}
