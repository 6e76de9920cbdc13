//! The webhook sender: claim pending deliveries with a lease, post each with a timeout,
//! record what came of it in a short transaction. No transaction is open while a request
//! is in flight, and the sender runs as a task of its own in `drip serve` and `drip worker`
//! (`send_loop`), so a slow or dead endpoint holds up nothing but its own deliveries.
//!
//! A 2xx answer delivers. Anything else (another status, a refused connection, no answer
//! within `[webhooks] timeout_seconds`) is retried with exponential backoff and jitter, the
//! same body with the same event id, until `[webhooks] retry_hours` after the event; the
//! attempt after that fails the delivery for good, kept with its last answer for the admin
//! page. Once an endpoint has failed in a pass, its other deliveries in that pass wait with
//! it instead of each spending a timeout.
//!
//! At-least-once: a crash between the receiver's 2xx and the record leaves the row pending;
//! its lease runs out and it is posted again, with the same id for the receiver to fold.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::Rng;

use super::http::{self, Answer, Post};
use crate::app::App;
use crate::db::{self, webhooks::ClaimedPost, webhooks::Recorded};
use crate::domain::WebhookUrl;

/// What a webhook pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendReport {
    pub delivered: u64,
    pub retried: u64,
    /// Given up: past the retry window.
    pub failed: u64,
    /// Not attempted: their endpoint had just failed in this pass.
    pub held: u64,
    /// Old events with nothing left to deliver, deleted (`[webhooks] keep_days`).
    pub pruned: u64,
}

/// Delay before the attempt after `attempts` failed ones: 30 seconds doubling up to two
/// hours, with jitter (0.5x to 1.5x) so that a receiver coming back is not hit by every
/// retry at once. About twenty attempts fit in the 24 hours.
pub(crate) fn backoff_seconds(attempts: i64) -> i64 {
    let base = 30i64
        .saturating_mul(1 << attempts.clamp(1, 20).saturating_sub(1))
        .min(2 * 3600);
    let jitter: f64 = rand::thread_rng().gen_range(0.5..1.5);
    ((base as f64) * jitter) as i64
}

/// What to record after an attempt that was answered with `answer` at `now`.
fn decide(answer: &Answer, attempts: i64, created_at: i64, now: i64, window: i64) -> Recorded {
    let (code, error) = match answer {
        Answer::Status(s) if (200..300).contains(s) => {
            return Recorded::Delivered {
                code: i64::from(*s),
            };
        }
        Answer::Status(s) => (Some(i64::from(*s)), format!("answered HTTP {s}")),
        Answer::None(e) => (None, e.chars().take(500).collect()),
    };
    let give_up_at = created_at + window;
    if now >= give_up_at {
        let error = format!(
            "gave up after {attempts} attempts over {} h: {error}",
            (now - created_at) / 3600
        );
        return Recorded::Failed { code, error };
    }
    // The last retry falls at the end of the window, not after it.
    let retry_at = (now + backoff_seconds(attempts)).min(give_up_at);
    Recorded::Retry {
        code,
        error,
        retry_at,
    }
}

/// Posts everything due at `now`, batch after batch, until nothing is claimable; then
/// deletes events older than `[webhooks] keep_days` that have nothing left to deliver.
pub async fn send_due(app: &App, now: DateTime<Utc>) -> anyhow::Result<SendReport> {
    let cfg = &app.config.webhooks;
    let timeout = Duration::from_secs(cfg.timeout_seconds);
    let concurrency = cfg.concurrency.max(1) as usize;
    let batch = (concurrency * 4) as i64;
    // A batch is at most four rounds of requests, each cut at the timeout.
    let lease = 4 * cfg.timeout_seconds as i64 + 60;
    let started = Instant::now();
    let failing: Mutex<HashMap<i64, i64>> = Mutex::default();
    let mut report = SendReport::default();
    loop {
        if app.is_stopping() {
            break;
        }
        let claimed = db::webhooks::claim(
            &app.db,
            now.timestamp(),
            &app.worker_id,
            lease + started.elapsed().as_secs() as i64,
            batch,
        )
        .await?;
        let n = claimed.len() as i64;
        let outcomes: Vec<Tally> = futures::stream::iter(claimed)
            .map(|c| attempt(app, c, now, timeout, &failing))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for t in outcomes {
            match t {
                Tally::Delivered => report.delivered += 1,
                Tally::Retried => report.retried += 1,
                Tally::Failed => report.failed += 1,
                Tally::Held => report.held += 1,
                Tally::Lost => {}
            }
        }
        if n < batch {
            break;
        }
    }
    let before = now.timestamp() - cfg.keep_days * 86_400;
    loop {
        let pruned = db::webhooks::prune(&app.db, before, 1000).await?;
        report.pruned += pruned;
        if pruned < 1000 || app.is_stopping() {
            break;
        }
    }
    Ok(report)
}

enum Tally {
    Delivered,
    Retried,
    Failed,
    Held,
    /// Not recorded: the lease was lost, or the database failed (logged; the lease expires
    /// and the row comes back).
    Lost,
}

async fn attempt(
    app: &App,
    c: ClaimedPost,
    now: DateTime<Utc>,
    timeout: Duration,
    failing: &Mutex<HashMap<i64, i64>>,
) -> Tally {
    let now_s = now.timestamp();
    let held_until = if app.is_stopping() {
        Some(now_s)
    } else {
        failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&c.webhook_id)
            .copied()
    };
    if let Some(until) = held_until {
        return match db::webhooks::hold(&app.db, &[c.id], &app.worker_id, until).await {
            Ok(()) => Tally::Held,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), delivery = c.id, "handing a webhook delivery back failed; its lease will expire");
                Tally::Lost
            }
        };
    }
    let answer = match (app.vault.open(&c.sealed_secret), WebhookUrl::parse(&c.url)) {
        (Ok(secret), Ok(url)) => {
            // The signature's time is the real clock, whatever clock the pass runs on:
            // receivers compare it with their own to refuse replays.
            let signature = http::signature(&secret, Utc::now().timestamp(), &c.payload);
            let kind = serde_json::from_str::<serde_json::Value>(&c.payload)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let post = Post {
                url: &url,
                body: &c.payload,
                signature: &signature,
                event_id: &c.event_id,
                event_type: &kind,
            };
            http::send(&post, timeout).await
        }
        (Err(e), _) => Answer::None(format!(
            "the endpoint's secret opens with none of the configured data keys ({e}); add the key it was sealed with to security.previous_data_keys"
        )),
        (_, Err(e)) => Answer::None(format!("the stored URL is not usable: {e}")),
    };
    let window = app.config.webhooks.retry_hours * 3600;
    let outcome = decide(&answer, c.attempts, c.created_at, now_s, window);
    let tally = match &outcome {
        Recorded::Delivered { .. } => Tally::Delivered,
        Recorded::Retry {
            code,
            error,
            retry_at,
        } => {
            tracing::warn!(webhook = c.webhook_id, event = %c.event_id, attempts = c.attempts, ?code, %error, retry_at, "webhook not delivered, will retry");
            failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(c.webhook_id)
                .or_insert(*retry_at);
            Tally::Retried
        }
        Recorded::Failed { code, error } => {
            tracing::error!(webhook = c.webhook_id, event = %c.event_id, ?code, %error, "webhook delivery failed for good");
            failing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(c.webhook_id)
                .or_insert(now_s + backoff_seconds(1));
            Tally::Failed
        }
    };
    match db::webhooks::record(&app.db, c.id, &app.worker_id, &outcome, now_s).await {
        Ok(true) => tally,
        Ok(false) => {
            tracing::warn!(
                delivery = c.id,
                "a webhook delivery's lease ran out before its answer was recorded; the worker holding it now records it"
            );
            Tally::Lost
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), delivery = c.id, "recording a webhook attempt failed; it will be posted again when its lease expires");
            Tally::Lost
        }
    }
}

/// `drip serve` and `drip worker`: a webhook pass every `[schedule] tick_seconds` until
/// [`App::shutdown`]; a failing pass is logged and tried again at the next interval.
pub async fn send_loop(app: App) {
    let interval = Duration::from_secs(app.config.schedule.tick_seconds);
    loop {
        match send_due(&app, Utc::now()).await {
            Ok(r) if r.delivered + r.retried + r.failed > 0 => tracing::info!(
                delivered = r.delivered,
                retried = r.retried,
                failed = r.failed,
                held = r.held,
                "webhooks"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "webhook pass failed; retrying at the next interval")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = app.shutdown.cancelled() => {}
        }
        if app.is_stopping() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_to_two_hours_with_jitter() {
        for _ in 0..100 {
            let first = backoff_seconds(1);
            assert!((15..=45).contains(&first), "{first}");
            let fifth = backoff_seconds(5);
            assert!((240..=720).contains(&fifth), "{fifth}");
            let late = backoff_seconds(40);
            assert!((3600..=10_800).contains(&late), "{late}");
        }
    }

    #[test]
    fn a_2xx_delivers_anything_else_retries_within_the_window_then_fails() {
        let day = 86_400;
        assert_eq!(
            decide(&Answer::Status(204), 1, 0, 10, day),
            Recorded::Delivered { code: 204 }
        );
        match decide(&Answer::Status(500), 1, 0, 10, day) {
            Recorded::Retry {
                code: Some(500),
                retry_at,
                ..
            } => assert!((25..=55).contains(&retry_at), "{retry_at}"),
            other => panic!("{other:?}"),
        }
        // A 3xx is not followed: it is not a 2xx.
        assert!(matches!(
            decide(&Answer::Status(301), 1, 0, 10, day),
            Recorded::Retry { .. }
        ));
        // Near the end, the last retry is at the end of the window...
        match decide(&Answer::None("timeout".into()), 15, 0, day - 60, day) {
            Recorded::Retry {
                code: None,
                retry_at,
                ..
            } => assert_eq!(retry_at, day),
            other => panic!("{other:?}"),
        }
        // ...and failing then is for good, saying why.
        match decide(
            &Answer::None("no answer within 10 s".into()),
            16,
            0,
            day,
            day,
        ) {
            Recorded::Failed { code: None, error } => {
                assert!(
                    error.contains("gave up after 16 attempts over 24 h"),
                    "{error}"
                );
                assert!(error.contains("no answer within 10 s"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }
}
