//! Who a schedule change reaches: the active subscribers whose next lesson is the one being
//! changed (or moved), and when they will now receive it, recomputed with the scheduler's
//! own functions. Shown before the change is saved; applied in the same transaction as it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::App;
use crate::db::{self, Tx, courses::CourseRow, lessons::Lesson, stats::Waiting};
use crate::domain::Timezone;
use crate::outbox::plan::{due_after_send, next_lesson};
use crate::schedule;

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

/// The position of the published lesson before `lesson` in `lessons` (0 if none): an
/// enrollment at a position in `[that, lesson.position)` gets `lesson` next.
fn previous_published(lessons: &[Lesson], lesson: &Lesson) -> i64 {
    lessons
        .iter()
        .filter(|l| l.is_published() && l.position < lesson.position)
        .map(|l| l.position)
        .max()
        .unwrap_or(0)
}

/// When `row`'s next lesson falls due under `lessons`; None when it is not planned by time
/// (waiting for a send, or a reply released it at a moment we do not replay).
fn due_for(lessons: &[Lesson], course: &CourseRow, row: &Waiting) -> Option<i64> {
    row.next_due_at?;
    let next = next_lesson(lessons, row.position)?;
    let tz = Timezone::parse(&row.timezone).unwrap_or(Timezone::UTC);
    let previous = lessons.iter().find(|l| l.position == row.position);
    match (previous, row.last_sent_at) {
        (Some(prev), Some(sent)) => {
            if prev.content.wait_for_reply && row.waiting_reply == 0 {
                return None;
            }
            let sent = DateTime::from_timestamp(sent, 0)?;
            due_after_send(lessons, &course.send_window, prev, tz, sent).0
        }
        _ => {
            let base = DateTime::from_timestamp(row.last_sent_at.unwrap_or(row.created_at), 0)?;
            let window = next.content.window(&course.send_window);
            Some(schedule::due_after(&window, next.content.after_days, base, tz.tz()).timestamp())
        }
    }
}

/// What changing the lessons to `lessons` does to the enrollments at positions
/// `[from, to)`, which must be every enrollment whose next lesson changes time.
pub async fn between(
    app: &App,
    course: &CourseRow,
    lessons: &[Lesson],
    from: i64,
    to: i64,
) -> anyhow::Result<Impact> {
    let rows = db::stats::waiting_between(&app.db, course.id, from, to).await?;
    let now = Utc::now().timestamp();
    let tz: chrono_tz::Tz = app
        .config
        .schedule
        .default_timezone
        .parse()
        .unwrap_or(chrono_tz::UTC);
    let mut impact = Impact {
        total: rows.len(),
        ..Impact::default()
    };
    let mut days: BTreeMap<String, usize> = BTreeMap::new();
    let mut times = Vec::new();
    for row in &rows {
        let Some(was) = row.next_due_at else { continue };
        impact.planned += 1;
        let due = due_for(lessons, course, row).unwrap_or(was);
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
        if let Some(t) = DateTime::from_timestamp(shown, 0) {
            *days
                .entry(t.with_timezone(&tz).format("%Y-%m-%d %a").to_string())
                .or_default() += 1;
        }
    }
    impact.first = times.iter().min().map(|t| super::format_time(*t, tz));
    impact.last = times.iter().max().map(|t| super::format_time(*t, tz));
    impact.days = days.into_iter().take(14).collect();
    Ok(impact)
}

/// The impact of `lessons` on those whose next lesson is `lesson_id` in it.
pub async fn for_lesson(
    app: &App,
    course: &CourseRow,
    lessons: &[Lesson],
    lesson_id: i64,
) -> anyhow::Result<Impact> {
    let Some(lesson) = lessons.iter().find(|l| l.id == lesson_id) else {
        return Ok(Impact::default());
    };
    if !lesson.is_published() {
        return Ok(Impact::default());
    }
    let from = previous_published(lessons, lesson);
    between(app, course, lessons, from, lesson.position).await
}

/// Moves the planned due times; a row that changed meanwhile keeps its new plan.
pub async fn apply(tx: &mut Tx, impact: &Impact, now: i64) -> anyhow::Result<usize> {
    let mut moved = 0;
    for c in &impact.changes {
        if db::stats::reschedule(tx, c.enrollment_id, c.was, c.due, now).await? {
            moved += 1;
        }
    }
    Ok(moved)
}
