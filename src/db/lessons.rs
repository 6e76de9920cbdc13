//! Queries on `lessons` and `lesson_revisions`.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::curriculum::LessonContent;
use crate::domain::Phase;

/// A lesson with the content of its current revision.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lesson {
    pub id: i64,
    pub course_id: i64,
    pub slug: String,
    pub position: i64,
    pub status: String,
    pub revision: i64,
    pub synced_revision: Option<i64>,
    pub synced_hash: Option<String>,
    pub file_name: String,
    pub author: String,
    pub updated_at: i64,
    pub content: LessonContent,
    pub source: String,
}

impl Lesson {
    pub fn is_published(&self) -> bool {
        self.status == "published"
    }
}

#[derive(FromRow)]
struct LessonRow {
    id: i64,
    course_id: i64,
    slug: String,
    position: i64,
    status: String,
    current_revision: i64,
    synced_revision: Option<i64>,
    synced_hash: Option<String>,
    file_name: String,
    #[sqlx(flatten)]
    rev: RevisionRow,
}

/// One stored revision of a lesson.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct RevisionRow {
    pub revision: i64,
    pub title: String,
    pub subject: String,
    pub phase: String,
    pub after_days: i64,
    pub send_window: Option<String>,
    pub prompt: String,
    pub wait_for_reply: i64,
    pub max_wait_days: Option<i64>,
    pub body: String,
    pub source: String,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

impl RevisionRow {
    pub fn content(&self) -> LessonContent {
        LessonContent {
            title: self.title.clone(),
            subject: self.subject.clone(),
            // The CHECK constraint admits only the three phases.
            phase: Phase::parse(&self.phase).unwrap_or(Phase::Honesty),
            after_days: u32::try_from(self.after_days).unwrap_or(0),
            send_window: self.send_window.clone(),
            prompt: self.prompt.clone(),
            wait_for_reply: self.wait_for_reply != 0,
            max_wait_days: self.max_wait_days.and_then(|d| u32::try_from(d).ok()),
            body: self.body.clone(),
        }
    }
}

const REV_COLUMNS: &str = "r.revision, r.title, r.subject, r.phase, r.after_days, r.send_window, r.prompt, r.wait_for_reply, r.max_wait_days, r.body, r.source, r.author, r.note, r.created_at";

fn lesson_select() -> String {
    format!(
        "SELECT l.id, l.course_id, l.slug, l.position, l.status, l.current_revision, l.synced_revision, l.synced_hash, l.file_name, {REV_COLUMNS} \
         FROM lessons l JOIN lesson_revisions r ON r.lesson_id = l.id AND r.revision = l.current_revision"
    )
}

impl From<LessonRow> for Lesson {
    fn from(r: LessonRow) -> Lesson {
        Lesson {
            id: r.id,
            course_id: r.course_id,
            slug: r.slug,
            position: r.position,
            status: r.status,
            revision: r.current_revision,
            synced_revision: r.synced_revision,
            synced_hash: r.synced_hash,
            file_name: r.file_name,
            author: r.rev.author.clone(),
            updated_at: r.rev.created_at,
            content: r.rev.content(),
            source: r.rev.source,
        }
    }
}

/// Every lesson of a course, drafts included, in position order.
pub async fn list(db: &Db, course_id: i64) -> anyhow::Result<Vec<Lesson>> {
    let sql = format!(
        "{} WHERE l.course_id = $1 ORDER BY l.position, l.id",
        lesson_select()
    );
    let rows: Vec<LessonRow> = sqlx::query_as(&sql)
        .bind(course_id)
        .fetch_all(db.pool())
        .await?;
    Ok(rows.into_iter().map(Lesson::from).collect())
}

pub async fn list_in(tx: &mut Tx, course_id: i64) -> anyhow::Result<Vec<Lesson>> {
    let sql = format!(
        "{} WHERE l.course_id = $1 ORDER BY l.position, l.id",
        lesson_select()
    );
    let rows: Vec<LessonRow> = sqlx::query_as(&sql)
        .bind(course_id)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.into_iter().map(Lesson::from).collect())
}

pub async fn by_slug(db: &Db, course_id: i64, slug: &str) -> anyhow::Result<Option<Lesson>> {
    let sql = format!("{} WHERE l.course_id = $1 AND l.slug = $2", lesson_select());
    let row: Option<LessonRow> = sqlx::query_as(&sql)
        .bind(course_id)
        .bind(slug)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(Lesson::from))
}

/// A lesson at a given revision, for the sender (which records the revision it used).
pub async fn revision(db: &Db, lesson_id: i64, revision: i64) -> anyhow::Result<RevisionRow> {
    let sql = format!(
        "SELECT {REV_COLUMNS} FROM lesson_revisions r WHERE r.lesson_id = $1 AND r.revision = $2"
    );
    Ok(sqlx::query_as(&sql)
        .bind(lesson_id)
        .bind(revision)
        .fetch_one(db.pool())
        .await?)
}

pub async fn revisions(db: &Db, lesson_id: i64) -> anyhow::Result<Vec<RevisionRow>> {
    let sql = format!(
        "SELECT {REV_COLUMNS} FROM lesson_revisions r WHERE r.lesson_id = $1 ORDER BY r.revision DESC"
    );
    Ok(sqlx::query_as(&sql)
        .bind(lesson_id)
        .fetch_all(db.pool())
        .await?)
}

/// A new lesson with its first revision.
#[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
pub async fn insert(
    tx: &mut Tx,
    course_id: i64,
    slug: &str,
    position: i64,
    file_name: &str,
    content: &LessonContent,
    source: &str,
    author: &str,
    now: i64,
) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO lessons (course_id, slug, position, status, current_revision, file_name) VALUES ($1, $2, $3, 'published', 1, $4) RETURNING id",
    )
    .bind(course_id)
    .bind(slug)
    .bind(position)
    .bind(file_name)
    .fetch_one(&mut **tx)
    .await?;
    insert_revision(tx, id, 1, content, source, author, "created", now).await?;
    Ok(id)
}

/// Adds revision `revision` and makes it current.
#[allow(clippy::too_many_arguments)]
pub async fn insert_revision(
    tx: &mut Tx,
    lesson_id: i64,
    revision: i64,
    c: &LessonContent,
    source: &str,
    author: &str,
    note: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO lesson_revisions (lesson_id, revision, title, subject, phase, after_days, send_window, prompt, wait_for_reply, max_wait_days, body, source, author, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(lesson_id)
    .bind(revision)
    .bind(&c.title)
    .bind(&c.subject)
    .bind(c.phase.as_str())
    .bind(i64::from(c.after_days))
    .bind(c.send_window.as_deref())
    .bind(&c.prompt)
    .bind(i64::from(c.wait_for_reply))
    .bind(c.max_wait_days.map(i64::from))
    .bind(&c.body)
    .bind(source)
    .bind(author)
    .bind(note)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE lessons SET current_revision = $1 WHERE id = $2")
        .bind(revision)
        .bind(lesson_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records that revision `revision` matches the file whose hash is `hash`.
pub async fn mark_synced(
    tx: &mut Tx,
    lesson_id: i64,
    revision: i64,
    hash: &str,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE lessons SET synced_revision = $1, synced_hash = $2 WHERE id = $3")
        .bind(revision)
        .bind(hash)
        .bind(lesson_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_position(
    tx: &mut Tx,
    lesson_id: i64,
    position: i64,
    file_name: &str,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE lessons SET position = $1, file_name = $2 WHERE id = $3")
        .bind(position)
        .bind(file_name)
        .bind(lesson_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_status(db: &Db, lesson_id: i64, status: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE lessons SET status = $1 WHERE id = $2")
        .bind(status)
        .bind(lesson_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A lesson's slug by id.
pub async fn slug_of(db: &Db, lesson_id: i64) -> anyhow::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT slug FROM lessons WHERE id = $1")
        .bind(lesson_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.0))
}
