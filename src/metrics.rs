//! Process-wide counters for `/metrics`: send latency and SMTP errors by class. Gauges that
//! live in the database (queue depth, deliveries by status) are read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::mailer::SendError;

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
}

pub static SEND: SendMetrics = SendMetrics {
    buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
    count: AtomicU64::new(0),
    sum_micros: AtomicU64::new(0),
    errors_4xx: AtomicU64::new(0),
    errors_5xx: AtomicU64::new(0),
    errors_connection: AtomicU64::new(0),
};

/// 1 while this process cannot open a connection to the SMTP server (see `outbox::relay`).
static RELAY_DOWN: AtomicU64 = AtomicU64::new(0);

pub(crate) fn set_relay_down(down: bool) {
    RELAY_DOWN.store(u64::from(down), Ordering::Relaxed);
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
            _ => &SEND.errors_connection,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
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
        "# HELP drip_smtp_unreachable 1 while no connection to the SMTP server can be opened."
    );
    let _ = writeln!(out, "# TYPE drip_smtp_unreachable gauge");
    let _ = writeln!(
        out,
        "drip_smtp_unreachable {}",
        RELAY_DOWN.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# HELP drip_smtp_errors_total Failed sends by class.");
    let _ = writeln!(out, "# TYPE drip_smtp_errors_total counter");
    for (class, c) in [
        ("4xx", &SEND.errors_4xx),
        ("5xx", &SEND.errors_5xx),
        ("connection", &SEND.errors_connection),
    ] {
        let _ = writeln!(
            out,
            "drip_smtp_errors_total{{class=\"{class}\"}} {}",
            c.load(Ordering::Relaxed)
        );
    }
}
