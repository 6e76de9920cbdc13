//! The outbox: planning due lessons into deliveries, and sending them.

pub mod plan;
pub mod ratelimit;
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
    pub completed: u64,
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
}

pub async fn tick(app: &App, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
    let mut total = TickReport::default();
    for _ in 0..50 {
        let plan = plan_due(app, now).await?;
        let send = send_due(app, now).await?;
        total.enqueued += plan.enqueued;
        total.completed += plan.completed;
        total.sent += send.sent;
        total.retried += send.retried;
        total.failed += send.failed;
        if plan.enqueued == 0 && plan.completed == 0 && send.sent == 0 {
            break;
        }
    }
    Ok(total)
}
