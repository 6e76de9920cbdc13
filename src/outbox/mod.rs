//! The outbox: planning due lessons into deliveries, and sending them.

pub mod plan;
pub(crate) mod ratelimit;
pub mod relay;
pub mod send;

use chrono::{DateTime, Utc};

use crate::app::App;

pub use plan::{PlanReport, plan_due};
pub use send::{SendReport, send_due};

/// One tick: plan, then send, and again while that made more work due at `now` (an
/// `immediate` lesson after one just sent), up to a bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    pub enqueued: u64,
    /// Mails of broadcasts queued (one per reader).
    pub broadcast_mails: u64,
    pub completed: u64,
    /// Moved to a later day by `[schedule] max_lessons_per_day`.
    pub deferred: u64,
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    /// Handed back unsent: the SMTP server could not be reached.
    pub held: u64,
    /// Retention (see `crate::privacy`): raw messages and whole replies deleted.
    pub raw_removed: u64,
    pub replies_removed: u64,
}

pub async fn tick(app: &App, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
    let mut total = TickReport {
        broadcast_mails: crate::broadcasts::enqueue_due(app, now).await?,
        ..TickReport::default()
    };
    for _ in 0..50 {
        let plan = plan_due(app, now).await?;
        let send = send_due(app, now).await?;
        total.enqueued += plan.enqueued;
        total.completed += plan.completed;
        total.deferred += plan.deferred;
        total.sent += send.sent;
        total.retried += send.retried;
        total.failed += send.failed;
        total.held += send.held;
        if plan.enqueued == 0 && plan.completed == 0 && send.sent == 0 {
            break;
        }
    }
    // Housekeeping after the mail: a failing sweep is logged (and tried again within the
    // hour) but never fails the tick that sent.
    let sweep = app
        .sweeper
        .sweep_if_due(&app.db, &app.config.privacy, &app.shutdown, now);
    match sweep.await {
        Ok(Some(r)) => {
            total.raw_removed = r.raw_removed;
            total.replies_removed = r.replies_removed;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "retention sweep failed; trying again within the hour")
        }
    }
    Ok(total)
}
