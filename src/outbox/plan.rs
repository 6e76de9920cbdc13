//! The scheduler's pass: due enrollments become queued deliveries, and the enrollment moves
//! to that lesson in the same transaction.
//!
//! Only one pass plans at a time on PostgreSQL (a transaction-level advisory lock); the
//! due rows are also locked with SKIP LOCKED, and UNIQUE (enrollment_id, lesson_id) refuses
//! a second row for a lesson, so even two passes that did run together could not queue a
//! lesson twice. On SQLite the write transaction is exclusive.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::db::{self, deliveries::NewLesson, lessons::Lesson};
use crate::schedule::next_published;

/// What a planning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanReport {
    pub enqueued: u64,
    pub completed: u64,
    /// True when another process held the planning lock.
    pub skipped: bool,
}

/// An arbitrary constant naming drip's planning lock among PostgreSQL advisory locks. The
/// lock is taken per schema (its second key is a hash of `current_schema()`): advisory locks
/// are database-wide, and two drip instances in two schemas of one database (the test suite
/// runs each test in its own) are separate installations whose passes must not exclude
/// each other.
const PLAN_LOCK: i32 = 0x0d21_9001;

/// Plans every enrollment due at `now`, in batches.
pub async fn plan_due(app: &App, now: DateTime<Utc>) -> anyhow::Result<PlanReport> {
    let now_s = now.timestamp();
    let batch = i64::from(app.config.schedule.batch_size).max(1) * 10;
    let mut report = PlanReport::default();
    let mut lessons_by_course: HashMap<i64, Vec<Lesson>> = HashMap::new();
    loop {
        let mut tx = app.db.begin_write().await?;
        if !app.db.try_xact_lock(&mut tx, PLAN_LOCK).await? {
            report.skipped = true;
            return Ok(report);
        }
        let due = db::enrollments::lock_due(&app.db, &mut tx, now_s, batch).await?;
        if due.is_empty() {
            tx.commit().await?;
            return Ok(report);
        }
        let mut groups: HashMap<(i64, i64), Vec<NewLesson>> = HashMap::new();
        let mut completed = Vec::new();
        for row in &due {
            if let std::collections::hash_map::Entry::Vacant(e) =
                lessons_by_course.entry(row.course_id)
            {
                e.insert(db::lessons::list_in(&mut tx, row.course_id).await?);
            }
            match next_published(&lessons_by_course[&row.course_id], row.position) {
                Some(lesson) => groups
                    .entry((lesson.id, lesson.position))
                    .or_default()
                    .push(NewLesson {
                        subscriber_id: row.subscriber_id,
                        enrollment_id: row.id,
                        lesson_id: lesson.id,
                    }),
                None => completed.push(row.id),
            }
        }
        for ((lesson_id, position), rows) in &groups {
            let ids: Vec<i64> = rows.iter().map(|r| r.enrollment_id).collect();
            db::enrollments::advance(&mut tx, &ids, *position, now_s).await?;
            let queued = db::deliveries::enqueue_lessons(&mut tx, rows, now_s).await?;
            report.enqueued += queued.len() as u64;
            if queued.len() < ids.len() {
                // They already had this lesson (positions renumbered under them, say): due
                // again at once, so the next pass plans the lesson after it instead of
                // leaving them waiting for a send that will never come.
                let queued: std::collections::HashSet<i64> = queued.into_iter().collect();
                let missed: Vec<i64> = ids
                    .iter()
                    .copied()
                    .filter(|id| !queued.contains(id))
                    .collect();
                for id in db::deliveries::already_left(&mut tx, &missed, *lesson_id).await? {
                    db::enrollments::set_next_due(&mut tx, id, Some(now_s), now_s).await?;
                }
            }
        }
        db::enrollments::complete(&mut tx, &completed, now_s).await?;
        report.completed += completed.len() as u64;
        tx.commit().await?;
        if (due.len() as i64) < batch {
            return Ok(report);
        }
    }
}
