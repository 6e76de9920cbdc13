//! Who a schedule change reaches: the active enrollments whose next lesson is the one being
//! changed (or moved), and when they would now receive it, worked out by the same
//! [`Syllabus`] the scheduler uses. Shown before a change is saved and applied with it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{DailyLimit, Syllabus};
use crate::db::lessons::Lesson;
pub use crate::db::stats::Waiting;
use crate::domain::Timezone;

/// How an impact is worked out and shown: the daily limit the planner applies, and the time
/// zone the dates are shown in.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub limit: DailyLimit,
    pub shown_in: Timezone,
}

impl View {
    pub fn of(config: &crate::config::Config) -> View {
        View {
            limit: DailyLimit::new(config.schedule.max_lessons_per_day),
            shown_in: config.default_timezone(),
        }
    }
}

/// One planned enrollment whose due time moves.
#[derive(Debug, Clone)]
pub struct Change {
    pub enrollment_id: i64,
    pub was: i64,
    pub due: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Impact {
    /// Active subscribers whose next lesson this is.
    pub total: usize,
    /// Of those, how many have a due time planned (the others wait for a send or a reply
    /// and are planned with the new settings when that happens).
    pub planned: usize,
    /// How many of the planned ones get a different time.
    pub moved: usize,
    pub overdue: usize,
    pub first: Option<String>,
    pub last: Option<String>,
    /// (local date, how many), the first two weeks.
    pub days: Vec<(String, usize)>,
    #[serde(skip)]
    pub changes: Vec<Change>,
}

/// The positions `[from, to)` of the enrollments whose next lesson is `lesson`: from the
/// published lesson before it (0 if none) up to its own position.
pub fn reach(lessons: &[Lesson], lesson: &Lesson) -> Option<(i64, i64)> {
    if !lesson.is_published() {
        return None;
    }
    let from = lessons
        .iter()
        .filter(|l| l.is_published() && l.position < lesson.position)
        .map(|l| l.position)
        .max()
        .unwrap_or(0);
    Some((from, lesson.position))
}

/// When `row`'s next lesson falls due under `syllabus`; None when it is not planned by time
/// (waiting for a reply with no limit).
fn due_for(syllabus: &Syllabus<'_>, row: &Waiting) -> Option<i64> {
    row.next_due_at?;
    syllabus.next_after(row.position)?;
    match (syllabus.at(row.position), row.last_sent_at) {
        (Some(prev), Some(sent)) => {
            if prev.content.wait_for_reply && row.waiting_reply == 0 {
                // A reply released it, at a moment the schedule does not replay.
                return None;
            }
            let sent = DateTime::from_timestamp(sent, 0)?;
            syllabus
                .after_send(prev, sent, row.timezone)
                .due
                .map(|d| d.timestamp())
        }
        _ => {
            let base = DateTime::from_timestamp(row.last_sent_at.unwrap_or(row.created_at), 0)?;
            syllabus
                .replan(row.position, base, base, row.timezone)
                .map(|d| d.timestamp())
        }
    }
}

/// Where the daily limit puts a lesson due at `due` (Unix seconds) for `row`.
fn place(
    syllabus: &Syllabus<'_>,
    row: &Waiting,
    due: i64,
    limit: DailyLimit,
    taken: &HashMap<i64, Vec<DateTime<Utc>>>,
) -> i64 {
    let (Some(at), Some(next)) = (
        DateTime::from_timestamp(due, 0),
        syllabus.next_after(row.position),
    ) else {
        return due;
    };
    let theirs = taken.get(&row.subscriber_id).map_or(&[][..], Vec::as_slice);
    limit
        .place(at, syllabus.window_of(next), row.timezone.tz(), theirs)
        .timestamp()
}

/// What changing the lessons to `syllabus` does to `rows` (every enrollment whose next
/// lesson changes time), at `now`, with dates shown in `shown_in`. Each row follows its own
/// pacing, and the daily limit places each lesson as the planner will, given `taken`: the
/// times of each person's other lessons (by subscriber).
pub(crate) fn compute(
    syllabus: &Syllabus<'_>,
    rows: &[Waiting],
    limit: DailyLimit,
    taken: &HashMap<i64, Vec<DateTime<Utc>>>,
    now: i64,
    shown_in: Timezone,
) -> Impact {
    let tz = shown_in.tz();
    let mut impact = Impact {
        total: rows.len(),
        ..Impact::default()
    };
    let mut days: BTreeMap<String, usize> = BTreeMap::new();
    let mut times = Vec::new();
    for row in rows {
        let Some(was) = row.next_due_at else { continue };
        impact.planned += 1;
        let paced = syllabus.clone().paced(row.pace());
        let due = match due_for(&paced, row) {
            Some(due) => place(&paced, row, due, limit, taken),
            None => was,
        };
        if due != was {
            impact.moved += 1;
            impact.changes.push(Change {
                enrollment_id: row.id,
                was,
                due,
            });
        }
        if due <= now {
            impact.overdue += 1;
        }
        let shown = due.max(now);
        times.push(shown);
        if let Some(t) = DateTime::<Utc>::from_timestamp(shown, 0) {
            *days
                .entry(t.with_timezone(&tz).format("%Y-%m-%d %a").to_string())
                .or_default() += 1;
        }
    }
    let format = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
            .unwrap_or_default()
    };
    impact.first = times.iter().min().map(|t| format(*t));
    impact.last = times.iter().max().map(|t| format(*t));
    impact.days = days.into_iter().take(14).collect();
    impact
}
