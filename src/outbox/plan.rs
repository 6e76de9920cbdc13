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
use crate::db::{self, courses::CourseRow, deliveries::NewLesson, lessons::Lesson};
use crate::domain::Timezone;
use crate::schedule::{DailyLimit, Syllabus, next_published};

/// How far back the daily limit looks for a person's other lessons: more than any local
/// day can reach (UTC-12 to UTC+14).
const LIMIT_LOOKBACK_SECONDS: i64 = 2 * 86_400;

/// Whether a lesson that left at `sent` is on `now`'s local day (or later) in `tz`: the
/// only days the daily limit counts for a lesson planned now.
fn sent_today(sent: Option<i64>, now: DateTime<Utc>, tz: Timezone) -> bool {
    let day = |t: DateTime<Utc>| t.with_timezone(&tz.tz()).date_naive();
    sent.and_then(|t| DateTime::from_timestamp(t, 0))
        .is_some_and(|t| day(t) >= day(now))
}

/// What a planning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanReport {
    pub enqueued: u64,
    pub completed: u64,
    /// Moved to a later day by the daily limit.
    pub deferred: u64,
    /// True when another process held the planning lock.
    pub skipped: bool,
}

/// An arbitrary constant naming drip's planning lock among PostgreSQL advisory locks. The
/// lock is taken per schema (its second key is a hash of `current_schema()`): advisory locks
/// are database-wide, and two drip instances in two schemas of one database (the test suite
/// runs each test in its own) are separate installations whose passes must not exclude
/// each other.
const PLAN_LOCK: i32 = 0x0d21_9001;

/// Plans every enrollment due at `now`, in batches. A lesson that would break the daily
/// limit (`[schedule] max_lessons_per_day`, across all of a person's courses) is not queued:
/// the enrollment is due again at the lesson's window on the next day with room.
pub async fn plan_due(app: &App, now: DateTime<Utc>) -> anyhow::Result<PlanReport> {
    let now_s = now.timestamp();
    let batch = i64::from(app.config.schedule.batch_size).max(1) * 10;
    let limit = DailyLimit::new(app.config.schedule.max_lessons_per_day);
    let mut report = PlanReport::default();
    let mut courses: HashMap<i64, (CourseRow, Vec<Lesson>)> = HashMap::new();
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
        let mut taken: HashMap<i64, Vec<DateTime<Utc>>> = HashMap::new();
        if !limit.is_unlimited() {
            let since = now_s - LIMIT_LOOKBACK_SECONDS;
            // A person in this one course whose last lesson left on an earlier local day
            // has no lesson that counts today or later: a due enrollment has none queued
            // (planning it left it not due until that mail was sent). Only the others are
            // looked up, so the daily pass of a one-course instance reads no deliveries.
            // (On PostgreSQL that lookup ran as a scan of every delivery while the table's
            // statistics still said it was empty, as after a first big import: 126 s for
            // 100,000 due.)
            let people: Vec<i64> = due
                .iter()
                .filter(|d| d.others > 0 || sent_today(d.last_sent_at, now, d.timezone))
                .map(|d| d.subscriber_id)
                .collect();
            for (subscriber, at) in db::deliveries::lesson_times(&mut tx, &people, since).await? {
                if let Some(at) = DateTime::from_timestamp(at, 0) {
                    taken.entry(subscriber).or_default().push(at);
                }
            }
        }
        let mut groups: HashMap<(i64, i64), Vec<NewLesson>> = HashMap::new();
        let mut completed = Vec::new();
        let mut deferred = Vec::new();
        for row in &due {
            if let std::collections::hash_map::Entry::Vacant(e) = courses.entry(row.course_id) {
                let course = db::courses::by_id_in(&mut tx, row.course_id).await?;
                let lessons = db::lessons::list_in(&mut tx, row.course_id).await?;
                e.insert((course, lessons));
            }
            let (course, lessons) = &courses[&row.course_id];
            let Some(lesson) = next_published(lessons, row.position) else {
                completed.push(row.id);
                continue;
            };
            if !limit.is_unlimited() {
                let syllabus =
                    Syllabus::new(lessons, &course.send_window, &course.phases).paced(row.pace());
                let times = taken.entry(row.subscriber_id).or_default();
                let at = limit.place(now, syllabus.window_of(lesson), row.timezone.tz(), times);
                if at > now {
                    deferred.push((row.id, at.timestamp()));
                    continue;
                }
                times.push(now);
            }
            groups
                .entry((lesson.id, lesson.position))
                .or_default()
                .push(NewLesson {
                    subscriber_id: row.subscriber_id,
                    enrollment_id: row.id,
                    lesson_id: lesson.id,
                    course_id: row.course_id,
                });
        }
        for (id, at) in &deferred {
            db::enrollments::set_next_due(&mut tx, *id, Some(*at), now_s).await?;
        }
        report.deferred += deferred.len() as u64;
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
        crate::webhooks::events::enrollments_completed(&mut tx, &completed, now).await?;
        report.completed += completed.len() as u64;
        tx.commit().await?;
        if (due.len() as i64) < batch {
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_lesson_of_the_same_local_day_can_count() {
        let paris = Timezone::parse("Europe/Paris").unwrap();
        let now = at("2026-12-07T06:30:00Z"); // 07:30 in Paris
        let t = |s: &str| Some(at(s).timestamp());
        // 23:30 UTC the day before is 00:30 in Paris on the same day: it counts.
        assert!(sent_today(t("2026-12-06T23:30:00Z"), now, paris));
        // 22:30 UTC the day before is 23:30 in Paris the day before: it does not.
        assert!(!sent_today(t("2026-12-06T22:30:00Z"), now, paris));
        assert!(!sent_today(None, now, paris));
    }
}
