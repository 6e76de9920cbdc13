//! Queries on `enrollments`: where each subscriber is in a course and when their next
//! lesson is due.

use sqlx::FromRow;

use super::{Db, Tx, placeholders};
use crate::domain::{EnrollmentStatus, Pace, Timezone};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct EnrollmentRow {
    pub id: i64,
    pub subscriber_id: i64,
    pub course_id: i64,
    #[sqlx(try_from = "String")]
    pub status: EnrollmentStatus,
    pub position: i64,
    pub next_due_at: Option<i64>,
    pub waiting_reply: i64,
    pub last_sent_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub pace_days: Option<i64>,
    #[serde(skip)]
    pub pace_hour: Option<i64>,
}

impl EnrollmentRow {
    /// The subscriber's own pacing for this course, if they chose one. A stored pair that
    /// does not make a pace (a hand edit of the database) reads as none, with a warning.
    pub fn pace(&self) -> Option<Pace> {
        Pace::from_columns(self.pace_days, self.pace_hour).unwrap_or_else(|e| {
            tracing::warn!(enrollment = self.id, error = %e, "stored pacing ignored");
            None
        })
    }
}

const COLUMNS: &str = "id, subscriber_id, course_id, status, position, next_due_at, waiting_reply, last_sent_at, created_at, updated_at, pace_days, pace_hour";

/// Enrolls a subscriber; a second call for the same course changes nothing.
pub async fn create(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: i64,
    next_due_at: i64,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO enrollments (subscriber_id, course_id, status, position, next_due_at, created_at, updated_at) VALUES ($1, $2, 'active', 0, $3, $4, $4) ON CONFLICT (subscriber_id, course_id) DO NOTHING",
    )
    .bind(subscriber_id)
    .bind(course_id)
    .bind(next_due_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Rows per INSERT of [`create_many`]: two bound values each, well under SQLite's 32,766.
const CREATE_MANY_ROWS: usize = 5000;

/// Enrolls many subscribers at the course's first position: `(subscriber id, first lesson
/// due at)` pairs, one statement per [`CREATE_MANY_ROWS`]. An enrollment that exists is
/// left as it is.
pub(crate) async fn create_many(
    tx: &mut Tx,
    rows: &[(i64, i64)],
    course_id: i64,
    now: i64,
) -> anyhow::Result<()> {
    for chunk in rows.chunks(CREATE_MANY_ROWS) {
        let mut sql = String::with_capacity(200 + chunk.len() * 30);
        sql.push_str("INSERT INTO enrollments (subscriber_id, course_id, status, position, next_due_at, created_at, updated_at) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, $1, $2, 0, ${}, $3, $3)",
                i * 2 + 4,
                i * 2 + 5
            ));
        }
        sql.push_str(" ON CONFLICT (subscriber_id, course_id) DO NOTHING");
        let mut q = sqlx::query(&sql)
            .bind(course_id)
            .bind(EnrollmentStatus::Active.as_str())
            .bind(now);
        for (subscriber_id, due) in chunk {
            q = q.bind(*subscriber_id).bind(*due);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub async fn for_subscriber(db: &Db, subscriber_id: i64) -> anyhow::Result<Vec<EnrollmentRow>> {
    let sql = format!("SELECT {COLUMNS} FROM enrollments WHERE subscriber_id = $1 ORDER BY id");
    Ok(sqlx::query_as(&sql)
        .bind(subscriber_id)
        .fetch_all(db.pool())
        .await?)
}

pub(crate) async fn for_subscriber_in(
    tx: &mut Tx,
    subscriber_id: i64,
) -> anyhow::Result<Vec<EnrollmentRow>> {
    let sql = format!("SELECT {COLUMNS} FROM enrollments WHERE subscriber_id = $1 ORDER BY id");
    Ok(sqlx::query_as(&sql)
        .bind(subscriber_id)
        .fetch_all(&mut **tx)
        .await?)
}

pub(crate) async fn of_course_in(
    tx: &mut Tx,
    subscriber_id: i64,
    course_id: i64,
) -> anyhow::Result<Option<EnrollmentRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM enrollments WHERE subscriber_id = $1 AND course_id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(subscriber_id)
        .bind(course_id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// The pacing of those of these enrollments that have one.
pub(crate) async fn paces(
    db: &Db,
    ids: &[i64],
) -> anyhow::Result<std::collections::HashMap<i64, Pace>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, pace_days, pace_hour FROM enrollments WHERE pace_days IS NOT NULL AND id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (i64, Option<i64>, Option<i64>)>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for (id, days, hour) in q.fetch_all(db.pool()).await? {
            if let Ok(Some(p)) = Pace::from_columns(days, hour) {
                out.insert(id, p);
            }
        }
    }
    Ok(out)
}

/// The status of each of these enrollments (a broadcast's mail checks its reader is still in
/// its audience when it leaves).
pub(crate) async fn statuses(
    db: &Db,
    ids: &[i64],
) -> anyhow::Result<std::collections::HashMap<i64, EnrollmentStatus>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, status FROM enrollments WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for (id, status) in q.fetch_all(db.pool()).await? {
            out.insert(id, EnrollmentStatus::parse(&status)?);
        }
    }
    Ok(out)
}

/// Sets or clears (None) the subscriber's own pacing.
pub(crate) async fn set_pace(
    tx: &mut Tx,
    id: i64,
    pace: Option<Pace>,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE enrollments SET pace_days = $1, pace_hour = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(pace.map(|p| i64::from(p.days())))
    .bind(pace.map(|p| i64::from(p.hour())))
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The completed enrollments of a course, with their people's time zones: who an evergreen
/// course's new lesson reaches.
pub(crate) async fn completed_in_course(
    tx: &mut Tx,
    course_id: i64,
) -> anyhow::Result<Vec<(EnrollmentRow, String)>> {
    let cols: Vec<String> = COLUMNS.split(", ").map(|c| format!("e.{c}")).collect();
    let sql = format!(
        "SELECT {}, s.timezone FROM enrollments e JOIN subscribers s ON s.id = e.subscriber_id WHERE e.course_id = $1 AND e.status = 'completed' AND s.status = 'active' ORDER BY e.id",
        cols.join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(course_id)
        .fetch_all(&mut **tx)
        .await?;
    use sqlx::Row;
    rows.into_iter()
        .map(|r| {
            let e = EnrollmentRow::from_row(&r)?;
            let tz: String = r.try_get("timezone")?;
            Ok((e, tz))
        })
        .collect()
}

pub async fn by_id(db: &Db, id: i64) -> anyhow::Result<Option<EnrollmentRow>> {
    let sql = format!("SELECT {COLUMNS} FROM enrollments WHERE id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// A page of enrollments with their people's addresses, newest first: of one course and in
/// one status when given, with an id below `before`.
pub async fn page(
    db: &Db,
    course_id: Option<i64>,
    status: Option<EnrollmentStatus>,
    subscriber_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> anyhow::Result<Vec<(EnrollmentRow, String)>> {
    let cols: Vec<String> = COLUMNS.split(", ").map(|c| format!("e.{c}")).collect();
    let mut sql = format!(
        "SELECT {}, s.email FROM enrollments e JOIN subscribers s ON s.id = e.subscriber_id WHERE 1 = 1",
        cols.join(", ")
    );
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if course_id.is_some() {
        sql += &format!(" AND e.course_id = {}", next());
    }
    if status.is_some() {
        sql += &format!(" AND e.status = {}", next());
    }
    if subscriber_id.is_some() {
        sql += &format!(" AND e.subscriber_id = {}", next());
    }
    if before.is_some() {
        sql += &format!(" AND e.id < {}", next());
    }
    sql += &format!(" ORDER BY e.id DESC LIMIT {}", next());
    let mut q = sqlx::query(&sql);
    if let Some(c) = course_id {
        q = q.bind(c);
    }
    if let Some(s) = status {
        q = q.bind(s.as_str());
    }
    if let Some(s) = subscriber_id {
        q = q.bind(s);
    }
    if let Some(b) = before {
        q = q.bind(b);
    }
    let rows = q.bind(limit).fetch_all(db.pool()).await?;
    use sqlx::Row;
    rows.into_iter()
        .map(|r| {
            let e = EnrollmentRow::from_row(&r)?;
            let email: String = r.try_get("email")?;
            Ok((e, email))
        })
        .collect()
}

pub(crate) async fn by_id_in(tx: &mut Tx, id: i64) -> anyhow::Result<Option<EnrollmentRow>> {
    let sql = format!("SELECT {COLUMNS} FROM enrollments WHERE id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// A due enrollment, as the scheduler sees it.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct Due {
    pub id: i64,
    pub subscriber_id: i64,
    pub course_id: i64,
    pub position: i64,
    #[sqlx(try_from = "String")]
    pub timezone: Timezone,
    pub pace_days: Option<i64>,
    pub pace_hour: Option<i64>,
    /// When this enrollment's last lesson left, and how many other courses the person is
    /// in: the daily limit looks up someone's recent lessons only when either can matter.
    pub last_sent_at: Option<i64>,
    pub others: i64,
}

impl Due {
    pub fn pace(&self) -> Option<Pace> {
        Pace::from_columns(self.pace_days, self.pace_hour).unwrap_or(None)
    }
}

/// The scheduler's due-enrollments statement (also shown by the throughput benchmark's
/// EXPLAIN): binds `now` and the limit.
pub fn lock_due_sql(db: &Db) -> String {
    format!(
        "SELECT e.id, e.subscriber_id, e.course_id, e.position, s.timezone, e.pace_days, e.pace_hour, e.last_sent_at, \
         (SELECT COUNT(*) FROM enrollments o WHERE o.subscriber_id = e.subscriber_id AND o.id <> e.id) AS others \
         FROM enrollments e JOIN subscribers s ON s.id = e.subscriber_id \
         WHERE e.status = 'active' AND e.next_due_at IS NOT NULL AND e.next_due_at <= $1 ORDER BY e.next_due_at LIMIT $2{}",
        db.skip_locked("e")
    )
}

/// Up to `limit` active enrollments due at `now`, oldest first, locked for this transaction
/// (rows another scheduler holds are skipped on PostgreSQL).
pub(crate) async fn lock_due(
    db: &Db,
    tx: &mut Tx,
    now: i64,
    limit: i64,
) -> anyhow::Result<Vec<Due>> {
    let sql = lock_due_sql(db);
    Ok(sqlx::query_as(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?)
}

/// Moves the given enrollments to `position` with nothing planned until that lesson is sent.
pub(crate) async fn advance(
    tx: &mut Tx,
    ids: &[i64],
    position: i64,
    now: i64,
) -> anyhow::Result<()> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE enrollments SET position = $1, next_due_at = NULL, waiting_reply = 0, updated_at = $2 WHERE id IN ({})",
            placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(position).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves every enrollment of the course at an old position to its new one, all at once (a
/// swap of two lessons is one move each way, never applied twice).
pub(crate) async fn move_positions(
    tx: &mut Tx,
    course_id: i64,
    moves: &[(i64, i64)],
    now: i64,
) -> anyhow::Result<()> {
    for chunk in moves.chunks(200) {
        let mut sql = String::from("UPDATE enrollments SET position = CASE position");
        for i in 0..chunk.len() {
            sql.push_str(&format!(" WHEN ${} THEN ${}", 3 + 2 * i, 4 + 2 * i));
        }
        sql.push_str(&format!(
            " ELSE position END, updated_at = $2 WHERE course_id = $1 AND position IN ({})",
            (0..chunk.len())
                .map(|i| format!("${}", 3 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let mut q = sqlx::query(&sql).bind(course_id).bind(now);
        for (from, to) in chunk {
            q = q.bind(*from).bind(*to);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Marks enrollments that have received every lesson as completed.
pub(crate) async fn complete(tx: &mut Tx, ids: &[i64], now: i64) -> anyhow::Result<()> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE enrollments SET status = 'completed', next_due_at = NULL, updated_at = $1 WHERE id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Plans the next lesson after the one at `position` was sent. Does nothing if the
/// enrollment has moved on (an admin moved it, or it was paused) since.
pub(crate) async fn plan_next(
    tx: &mut Tx,
    id: i64,
    position: i64,
    next_due_at: Option<i64>,
    waiting_reply: bool,
    sent_at: i64,
    now: i64,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE enrollments SET next_due_at = $1, waiting_reply = $2, last_sent_at = $3, updated_at = $4 WHERE id = $5 AND position = $6 AND status = 'active' AND next_due_at IS NULL",
    )
    .bind(next_due_at)
    .bind(i64::from(waiting_reply))
    .bind(sent_at)
    .bind(now)
    .bind(id)
    .bind(position)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`plan_next`] for many enrollments that sent the lesson at `position` and get the same
/// next due time: one statement for a whole batch of sends in one time zone.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn plan_next_many(
    tx: &mut Tx,
    ids: &[i64],
    position: i64,
    next_due_at: Option<i64>,
    waiting_reply: bool,
    sent_at: i64,
    now: i64,
) -> anyhow::Result<()> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE enrollments SET next_due_at = $1, waiting_reply = $2, last_sent_at = $3, updated_at = $4 WHERE position = $5 AND status = 'active' AND next_due_at IS NULL AND id IN ({})",
            placeholders(6, chunk.len())
        );
        let mut q = sqlx::query(&sql)
            .bind(next_due_at)
            .bind(i64::from(waiting_reply))
            .bind(sent_at)
            .bind(now)
            .bind(position);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Sets when the next lesson is due (a reply released a wait, an admin moved them).
pub(crate) async fn set_next_due(
    tx: &mut Tx,
    id: i64,
    next_due_at: Option<i64>,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE enrollments SET next_due_at = $1, waiting_reply = 0, updated_at = $2 WHERE id = $3",
    )
    .bind(next_due_at)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn set_status(
    tx: &mut Tx,
    id: i64,
    status: EnrollmentStatus,
    position: i64,
    next_due_at: Option<i64>,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE enrollments SET status = $1, position = $2, next_due_at = $3, waiting_reply = 0, updated_at = $4 WHERE id = $5")
        .bind(status.as_str())
        .bind(position)
        .bind(next_due_at)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The position of the last lesson that actually left (sent, failed or bounced) for an
/// enrollment: where a pause rolls back to when a queued lesson is withdrawn.
pub(crate) async fn last_delivered_position(
    tx: &mut Tx,
    enrollment_id: i64,
) -> anyhow::Result<i64> {
    let (pos,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(MAX(l.position), 0) FROM deliveries d JOIN lessons l ON l.id = d.lesson_id WHERE d.enrollment_id = $1 AND d.status <> 'queued'",
    )
    .bind(enrollment_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(pos)
}
