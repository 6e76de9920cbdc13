//! Retention: replies are kept only as long as `[privacy]` says. After `raw_retention_days`
//! a reply's raw message (headers, the quoted lesson, every address on it) is deleted and the
//! extracted text stays; after `reply_retention_days` the whole reply goes, leaving only the
//! anonymous mark that its lesson was answered, so the statistics do not change.
//!
//! The sweep runs from `outbox::tick`: on every `drip tick`, and at most once an hour from the
//! long-running tick loop of `drip serve` and `drip worker`.

pub mod reseal;

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config;
use crate::db::{self, Db};

/// Rows per statement. Each batch is its own short write transaction, so a large backlog
/// (retention switched on for the first time, say) never holds SQLite's one writer for long:
/// the sender's transactions get in between batches.
pub const BATCH: i64 = 1000;

/// The long-running loop ticks every few seconds; retention only needs to run now and then.
pub(crate) const EVERY_SECONDS: i64 = 3600;

/// [`Sweeper::last`] before the first sweep of a process.
const NEVER: i64 = i64::MIN;

const DAY: i64 = 86_400;

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Replies whose raw message was deleted (their text stays).
    pub raw_removed: u64,
    /// Replies deleted whole.
    pub replies_removed: u64,
}

impl RetentionReport {
    pub fn is_empty(&self) -> bool {
        self.raw_removed == 0 && self.replies_removed == 0
    }
}

/// The retention clock of one process: when it last swept, so that the long-running tick
/// loop sweeps at most every [`EVERY_SECONDS`]. A new process (every `drip tick`) sweeps on
/// its first pass.
#[derive(Debug)]
pub(crate) struct Sweeper {
    /// Unix seconds on the tick's clock, or [`NEVER`].
    last: AtomicI64,
}

impl Default for Sweeper {
    fn default() -> Self {
        Sweeper {
            last: AtomicI64::new(NEVER),
        }
    }
}

impl Sweeper {
    /// Sweeps unless this process already swept less than [`EVERY_SECONDS`] before `now`.
    /// The interval is read on the caller's clock (`drip tick --now` moves it like
    /// everything else); a clock that went backwards sweeps again rather than waiting for
    /// it to catch up.
    pub(crate) async fn sweep_if_due(
        &self,
        db: &Db,
        policy: &config::Privacy,
        stop: &CancellationToken,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<RetentionReport>> {
        let now_s = now.timestamp();
        let last = self.last.load(Ordering::SeqCst);
        if last != NEVER && (last..last + EVERY_SECONDS).contains(&now_s) {
            return Ok(None);
        }
        // Taken before sweeping: a failing sweep is tried again in an hour, not at every tick.
        if self
            .last
            .compare_exchange(last, now_s, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Ok(None);
        }
        sweep(db, policy, stop, now).await.map(Some)
    }
}

/// Applies `policy` as of `now`, in batches of [`BATCH`] rows, until done or until `stop`
/// is cancelled (between batches: each batch is committed whole).
pub async fn sweep(
    db: &Db,
    policy: &config::Privacy,
    stop: &CancellationToken,
    now: DateTime<Utc>,
) -> anyhow::Result<RetentionReport> {
    sweep_in_batches(db, policy, stop, now, BATCH).await
}

/// [`sweep`] with another batch size (tests use a small one to see the batches add up).
pub async fn sweep_in_batches(
    db: &Db,
    policy: &config::Privacy,
    stop: &CancellationToken,
    now: DateTime<Utc>,
    batch: i64,
) -> anyhow::Result<RetentionReport> {
    let now_s = now.timestamp();
    let batch = batch.max(1);
    let mut report = RetentionReport::default();
    // Whole replies first: no point in stripping the raw message of a reply about to go.
    if policy.reply_retention_days > 0 {
        let cutoff = now_s - policy.reply_retention_days * DAY;
        while !stop.is_cancelled() {
            let mut tx = db.begin_write().await?;
            let ids = db::replies::lock_received_before(db, &mut tx, cutoff, batch).await?;
            report.replies_removed +=
                db::replies::delete_keeping_answer_marks(&mut tx, &ids).await?;
            tx.commit().await?;
            if (ids.len() as i64) < batch {
                break;
            }
        }
    }
    if policy.raw_retention_days > 0 {
        let cutoff = now_s - policy.raw_retention_days * DAY;
        while !stop.is_cancelled() {
            let mut tx = db.begin_write().await?;
            let n = db::replies::drop_raw_received_before(&mut tx, cutoff, batch).await?;
            tx.commit().await?;
            report.raw_removed += n;
            if (n as i64) < batch {
                break;
            }
        }
    }
    if !report.is_empty() {
        // Counts and the policy only: the event log keeps no trace of whose words went.
        let mut tx = db.begin_write().await?;
        db::events::log(
            &mut tx,
            None,
            "system",
            "retention",
            &json!({
                "raw_removed": report.raw_removed,
                "replies_removed": report.replies_removed,
                "raw_retention_days": policy.raw_retention_days,
                "reply_retention_days": policy.reply_retention_days,
            }),
            now_s,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            raw_removed = report.raw_removed,
            replies_removed = report.replies_removed,
            "retention sweep"
        );
    }
    Ok(report)
}
