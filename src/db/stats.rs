//! Read-mostly queries for the admin's lesson pages and the statistics page: per-lesson
//! counts, the funnel, and the enrollments a schedule change affects.

use std::collections::HashMap;

use sqlx::FromRow;

use super::{Db, Tx};
use crate::domain::{DeliveryStatus, LessonStatus, Timezone};

/// Per lesson: (mails that left, subscribers who answered).
pub async fn lesson_counts(db: &Db) -> anyhow::Result<HashMap<i64, (i64, i64)>> {
    let sent: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT lesson_id, COUNT(*) FROM deliveries WHERE kind = 'lesson' AND lesson_id IS NOT NULL AND status IN ('sent', 'bounced') GROUP BY lesson_id",
    )
    .fetch_all(db.pool())
    .await?;
    // Stored answers, and the marks left by answers since deleted (retention, erasure).
    let answered: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT lesson_id, COUNT(DISTINCT subscriber_id) FROM ( \
           SELECT subscriber_id, lesson_id FROM replies WHERE kind = 'reply' AND lesson_id IS NOT NULL \
           UNION ALL SELECT subscriber_id, lesson_id FROM answered_lessons \
         ) answers GROUP BY lesson_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out: HashMap<i64, (i64, i64)> = HashMap::new();
    for (id, n) in sent {
        out.entry(id).or_default().0 = n;
    }
    for (id, n) in answered {
        out.entry(id).or_default().1 = n;
    }
    Ok(out)
}

/// The course-wide numbers of the funnel (lessons reached come from `lesson_counts`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Funnel {
    pub signed_up: i64,
    pub confirmed: i64,
    pub finished: i64,
    pub unsubscribed: i64,
    pub bounced: i64,
}

pub(crate) async fn funnel(db: &Db, course_id: i64) -> anyhow::Result<Funnel> {
    let (signed_up, confirmed): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN confirmed_at IS NOT NULL THEN 1 ELSE 0 END), 0) FROM subscribers",
    )
    .fetch_one(db.pool())
    .await?;
    let (finished,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM enrollments WHERE course_id = $1 AND status = 'completed'",
    )
    .bind(course_id)
    .fetch_one(db.pool())
    .await?;
    let by_status = super::subscribers::count_by_status(db).await?;
    let status = |s: &str| {
        by_status
            .iter()
            .find(|(k, _)| k == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    Ok(Funnel {
        signed_up,
        confirmed,
        finished,
        unsubscribed: status("unsubscribed"),
        bounced: status("bounced"),
    })
}

/// An active enrollment whose next lesson is the one being changed.
#[derive(Debug, Clone, FromRow)]
pub struct Waiting {
    pub id: i64,
    pub subscriber_id: i64,
    pub position: i64,
    pub next_due_at: Option<i64>,
    pub waiting_reply: i64,
    pub last_sent_at: Option<i64>,
    pub created_at: i64,
    #[sqlx(try_from = "String")]
    pub timezone: Timezone,
    pub pace_days: Option<i64>,
    pub pace_hour: Option<i64>,
}

impl Waiting {
    pub fn pace(&self) -> Option<crate::domain::Pace> {
        crate::domain::Pace::from_columns(self.pace_days, self.pace_hour).unwrap_or(None)
    }
}

/// Active enrollments of a course positioned in `[from, to)`: with `from` the position of
/// the published lesson before a lesson and `to` its own, those whose next lesson it is.
pub(crate) async fn waiting_between(
    db: &Db,
    course_id: i64,
    from: i64,
    to: i64,
) -> anyhow::Result<Vec<Waiting>> {
    Ok(sqlx::query_as(
        "SELECT e.id, e.subscriber_id, e.position, e.next_due_at, e.waiting_reply, e.last_sent_at, e.created_at, s.timezone, e.pace_days, e.pace_hour \
         FROM enrollments e JOIN subscribers s ON s.id = e.subscriber_id \
         WHERE e.course_id = $1 AND e.status = 'active' AND e.position >= $2 AND e.position < $3 ORDER BY e.id",
    )
    .bind(course_id)
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?)
}

/// Moves a planned enrollment's next due time, unless it changed meanwhile (a send or a
/// reply got there first).
pub(crate) async fn reschedule(
    tx: &mut Tx,
    id: i64,
    was: i64,
    next_due_at: i64,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE enrollments SET next_due_at = $1, updated_at = $2 WHERE id = $3 AND next_due_at = $4 AND status = 'active'",
    )
    .bind(next_due_at)
    .bind(now)
    .bind(id)
    .bind(was)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn max_position(tx: &mut Tx, course_id: i64) -> anyhow::Result<i64> {
    let (n,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(position) FROM lessons WHERE course_id = $1")
            .bind(course_id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(n.unwrap_or(0))
}

/// Publishes or unpublishes a lesson inside a transaction.
pub(crate) async fn set_lesson_status(
    tx: &mut Tx,
    lesson_id: i64,
    status: LessonStatus,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE lessons SET status = $1 WHERE id = $2")
        .bind(status.as_str())
        .bind(lesson_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A lesson's current revision number, read inside the transaction that will add the next.
pub async fn current_revision(tx: &mut Tx, lesson_id: i64) -> anyhow::Result<i64> {
    let (rev,): (i64,) = sqlx::query_as("SELECT current_revision FROM lessons WHERE id = $1")
        .bind(lesson_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(rev)
}

/// One lesson mail of an enrollment, for moving a subscriber.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct EnrollmentDelivery {
    pub id: i64,
    pub lesson_id: i64,
    pub position: i64,
    pub slug: String,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
}

pub(crate) async fn enrollment_deliveries(
    tx: &mut Tx,
    enrollment_id: i64,
) -> anyhow::Result<Vec<EnrollmentDelivery>> {
    Ok(sqlx::query_as(
        "SELECT d.id, d.lesson_id, l.position, l.slug, d.status FROM deliveries d JOIN lessons l ON l.id = d.lesson_id \
         WHERE d.enrollment_id = $1 AND d.kind = 'lesson' ORDER BY l.position",
    )
    .bind(enrollment_id)
    .fetch_all(&mut **tx)
    .await?)
}

pub(crate) async fn delete_delivery(tx: &mut Tx, id: i64) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM deliveries WHERE id = $1 AND status IN ('queued', 'failed')")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// After swapping the lessons at positions `a < b`: an enrollment that had the lesson at `a`
/// (position `a`) now has it at `b`; one moved between them, heading for the lesson that was
/// at `b`, now heads for it at `a`.
pub(crate) async fn remap_positions(
    tx: &mut Tx,
    course_id: i64,
    a: i64,
    b: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE enrollments SET position = CASE WHEN position = $1 THEN $2 ELSE $3 END \
         WHERE course_id = $4 AND position >= $5 AND position < $6",
    )
    .bind(a)
    .bind(b)
    .bind(a - 1)
    .bind(course_id)
    .bind(a)
    .bind(b)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Per course: published lessons, people taking it (active or paused), and completed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CourseCounts {
    pub lessons: i64,
    pub enrolled: i64,
    pub completed: i64,
}

pub(crate) async fn course_counts(db: &Db) -> anyhow::Result<HashMap<i64, CourseCounts>> {
    let mut out: HashMap<i64, CourseCounts> = HashMap::new();
    let lessons: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT course_id, COUNT(*) FROM lessons WHERE status = 'published' GROUP BY course_id",
    )
    .fetch_all(db.pool())
    .await?;
    for (course, n) in lessons {
        out.entry(course).or_default().lessons = n;
    }
    let people: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT course_id, status, COUNT(*) FROM enrollments GROUP BY course_id, status",
    )
    .fetch_all(db.pool())
    .await?;
    for (course, status, n) in people {
        let c = out.entry(course).or_default();
        match status.as_str() {
            "active" | "paused" => c.enrolled += n,
            "completed" => c.completed += n,
            _ => {}
        }
    }
    Ok(out)
}
