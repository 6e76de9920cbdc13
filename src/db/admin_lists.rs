//! The admin's lists: subscribers (search, filters, keyset pages) and the replies inbox.
//! Pages are keyset-paginated (`before` a key, never OFFSET) so the last page of 100,000
//! subscribers costs what the first does.

use sqlx::FromRow;

use super::Db;

/// A subscriber as listed, with where they are in the course.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub(crate) struct SubscriberItem {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub timezone: String,
    pub status: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub position: Option<i64>,
    pub next_due_at: Option<i64>,
    /// Their status in the course listed (None: not in it).
    pub enrollment_status: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SubscriberQuery {
    /// The course whose place and status are shown (None: the first of each person's).
    pub course_id: Option<i64>,
    /// The person's status (pending, unsubscribed, bounced, erased; active: confirmed).
    pub status: Option<String>,
    /// Their status in the course (active, paused, completed, stopped).
    pub enrollment_status: Option<String>,
    /// The start of the address or of the name, any case.
    pub search: Option<String>,
    /// The position of the last lesson queued (0: none yet).
    pub reached: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Newest first. The status filter walks the `(status, id)` index and the plain list the
/// primary key, both in id order, so a page stops after `limit` rows.
pub async fn subscribers(db: &Db, q: &SubscriberQuery) -> anyhow::Result<Vec<SubscriberItem>> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let on_course = match q.course_id {
        Some(_) => format!("e.course_id = {}", next()),
        None => "e.id = (SELECT MIN(id) FROM enrollments WHERE subscriber_id = s.id)".to_owned(),
    };
    let mut sql = format!(
        "SELECT s.id, s.email, s.name, s.timezone, s.status, s.created_at, s.confirmed_at, e.position, e.next_due_at, e.status AS enrollment_status \
         FROM subscribers s LEFT JOIN enrollments e ON e.subscriber_id = s.id AND {on_course} WHERE 1 = 1",
    );
    if q.enrollment_status.is_some() {
        sql += &format!(" AND e.status = {}", next());
    }
    if q.status.is_some() {
        sql += &format!(" AND s.status = {}", next());
    }
    if q.search.is_some() {
        let (a, b) = (next(), next());
        sql += &format!(" AND (s.email LIKE {a} OR LOWER(s.name) LIKE {b})");
    }
    if q.reached.is_some() {
        sql += &format!(" AND e.position = {}", next());
    }
    if q.before_id.is_some() {
        sql += &format!(" AND s.id < {}", next());
    }
    sql += &format!(" ORDER BY s.id DESC LIMIT {}", next());
    let mut query = sqlx::query_as::<_, SubscriberItem>(&sql);
    if let Some(c) = q.course_id {
        query = query.bind(c);
    }
    if let Some(s) = &q.enrollment_status {
        query = query.bind(s.clone());
    }
    if let Some(s) = &q.status {
        query = query.bind(s.clone());
    }
    if let Some(s) = &q.search {
        // LIKE wildcards typed by the admin are taken literally by dropping them.
        let pattern = format!("{}%", s.trim().to_lowercase().replace(['%', '_', '\\'], ""));
        query = query.bind(pattern.clone()).bind(pattern);
    }
    if let Some(r) = q.reached {
        query = query.bind(r);
    }
    if let Some(b) = q.before_id {
        query = query.bind(b);
    }
    Ok(query.bind(q.limit).fetch_all(db.pool()).await?)
}

/// A reply as the inbox shows it.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct InboxReply {
    pub id: i64,
    pub subscriber_id: Option<i64>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub lesson_id: Option<i64>,
    pub kind: String,
    pub command: Option<String>,
    pub from_addr: String,
    pub subject: String,
    pub text: Vec<u8>,
    pub has_raw: i64,
    pub flagged: i64,
    pub flag_reason: String,
    pub read_at: Option<i64>,
    pub received_at: i64,
    /// The author's answer this reply answers, and how many answers it has had.
    pub in_answer_to: Option<i64>,
    pub answers: i64,
}

/// Where a page of the inbox ends: flagged first, then newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InboxKey {
    pub flagged: i64,
    pub received_at: i64,
    pub id: i64,
}

impl InboxKey {
    pub fn parse(s: &str) -> Option<InboxKey> {
        let mut it = s.split('.').map(str::parse::<i64>);
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(Ok(flagged)), Some(Ok(received_at)), Some(Ok(id)), None) => Some(InboxKey {
                flagged,
                received_at,
                id,
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for InboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.flagged, self.received_at, self.id)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct InboxQuery {
    /// Replies to the lessons of this course only.
    pub course_id: Option<i64>,
    pub lesson_id: Option<i64>,
    pub subscriber_id: Option<i64>,
    /// None: every kind.
    pub kind: Option<String>,
    pub flagged_only: bool,
    pub unread_only: bool,
    pub after: Option<InboxKey>,
    pub limit: i64,
}

pub async fn inbox(db: &Db, q: &InboxQuery) -> anyhow::Result<Vec<InboxReply>> {
    let mut sql = String::from(
        "SELECT r.id, r.subscriber_id, s.email, s.name, r.lesson_id, r.kind, r.command, r.from_addr, r.subject, r.text, \
         CASE WHEN r.raw IS NULL THEN 0 ELSE 1 END AS has_raw, r.flagged, r.flag_reason, r.read_at, r.received_at, \
         r.in_answer_to, (SELECT COUNT(*) FROM answers a WHERE a.reply_id = r.id) AS answers \
         FROM replies r LEFT JOIN subscribers s ON s.id = r.subscriber_id WHERE 1 = 1",
    );
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if q.course_id.is_some() {
        // A reply to a lesson of the course, or to another mail of it (a broadcast).
        let (lessons, mails) = (next(), next());
        sql += &format!(
            " AND (r.lesson_id IN (SELECT id FROM lessons WHERE course_id = {lessons}) \
             OR (r.lesson_id IS NULL AND EXISTS (SELECT 1 FROM deliveries d WHERE d.id = r.delivery_id AND d.course_id = {mails})))"
        );
    }
    if q.lesson_id.is_some() {
        sql += &format!(" AND r.lesson_id = {}", next());
    }
    if q.subscriber_id.is_some() {
        sql += &format!(" AND r.subscriber_id = {}", next());
    }
    if q.kind.is_some() {
        sql += &format!(" AND r.kind = {}", next());
    }
    if q.flagged_only {
        sql += " AND r.flagged = 1";
    }
    if q.unread_only {
        sql += " AND r.read_at IS NULL";
    }
    if q.after.is_some() {
        let (f1, f2, t1, t2, i) = (next(), next(), next(), next(), next());
        sql += &format!(
            " AND (r.flagged < {f1} OR (r.flagged = {f2} AND (r.received_at < {t1} OR (r.received_at = {t2} AND r.id < {i}))))"
        );
    }
    sql += &format!(
        " ORDER BY r.flagged DESC, r.received_at DESC, r.id DESC LIMIT {}",
        next()
    );
    let mut query = sqlx::query_as::<_, InboxReply>(&sql);
    if let Some(c) = q.course_id {
        query = query.bind(c).bind(c);
    }
    if let Some(l) = q.lesson_id {
        query = query.bind(l);
    }
    if let Some(s) = q.subscriber_id {
        query = query.bind(s);
    }
    if let Some(k) = &q.kind {
        query = query.bind(k.clone());
    }
    if let Some(k) = q.after {
        query = query
            .bind(k.flagged)
            .bind(k.flagged)
            .bind(k.received_at)
            .bind(k.received_at)
            .bind(k.id);
    }
    Ok(query.bind(q.limit).fetch_all(db.pool()).await?)
}

/// A reply's raw message (as stored: sealed) and its subscriber.
pub async fn raw(db: &Db, id: i64) -> anyhow::Result<Option<(Option<i64>, Option<Vec<u8>>)>> {
    Ok(
        sqlx::query_as("SELECT subscriber_id, raw FROM replies WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

pub(crate) async fn set_read(db: &Db, id: i64, read_at: Option<i64>) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE replies SET read_at = $1 WHERE id = $2")
        .bind(read_at)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn set_flagged(db: &Db, id: i64, flagged: bool) -> anyhow::Result<bool> {
    let done = sqlx::query("UPDATE replies SET flagged = $1 WHERE id = $2")
        .bind(i64::from(flagged))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes one `reply_viewed` event per reply an admin was shown, in one transaction.
pub(crate) async fn log_views(
    db: &Db,
    admin: &str,
    replies: &[(i64, Option<i64>)],
    what: &str,
    now: i64,
) -> anyhow::Result<()> {
    if replies.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    for (id, subscriber) in replies {
        super::events::log(
            &mut tx,
            *subscriber,
            admin,
            "reply_viewed",
            &serde_json::json!({"reply": id, "view": what}),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
