//! Queries on `lessons` and `lesson_revisions`.

use anyhow::Context;
use sqlx::FromRow;

use super::{Db, Tx};
use crate::curriculum::LessonContent;
use crate::domain::{InvalidInput, LessonStatus, Phase, SendWindow};

/// A lesson with the content of its current revision.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lesson {
    pub id: i64,
    pub course_id: i64,
    pub slug: String,
    pub position: i64,
    pub status: LessonStatus,
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
    pub(crate) fn is_published(&self) -> bool {
        self.status == LessonStatus::Published
    }
}

#[derive(FromRow)]
struct LessonRow {
    id: i64,
    course_id: i64,
    slug: String,
    position: i64,
    #[sqlx(try_from = "String")]
    status: LessonStatus,
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
    pub preheader: Option<String>,
    pub wait_for_reply: i64,
    pub max_wait_days: Option<i64>,
    pub body: String,
    pub source: String,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

impl RevisionRow {
    /// The revision's content, parsed: a stored value no lesson could have is an error.
    pub fn content(&self) -> Result<LessonContent, InvalidInput> {
        let days = |field: &'static str, d: i64| {
            u32::try_from(d)
                .map_err(|_| InvalidInput::new(field, format!("stored {field} {d} is negative")))
        };
        Ok(LessonContent {
            title: self.title.clone(),
            subject: self.subject.clone(),
            phase: Phase::parse(&self.phase)?,
            after_days: days("after_days", self.after_days)?,
            send_window: self
                .send_window
                .as_deref()
                .map(SendWindow::parse)
                .transpose()?,
            prompt: self.prompt.clone(),
            preheader: self.preheader.clone(),
            wait_for_reply: self.wait_for_reply != 0,
            max_wait_days: self
                .max_wait_days
                .map(|d| days("max_wait_days", d))
                .transpose()?,
            body: self.body.clone(),
        })
    }
}

const REV_COLUMNS: &str = "r.revision, r.title, r.subject, r.phase, r.after_days, r.send_window, r.prompt, r.preheader, r.wait_for_reply, r.max_wait_days, r.body, r.source, r.author, r.note, r.created_at";

fn lesson_select() -> String {
    format!(
        "SELECT l.id, l.course_id, l.slug, l.position, l.status, l.current_revision, l.synced_revision, l.synced_hash, l.file_name, {REV_COLUMNS} \
         FROM lessons l JOIN lesson_revisions r ON r.lesson_id = l.id AND r.revision = l.current_revision"
    )
}

impl TryFrom<LessonRow> for Lesson {
    type Error = anyhow::Error;

    fn try_from(r: LessonRow) -> anyhow::Result<Lesson> {
        let content = r
            .rev
            .content()
            .with_context(|| format!("lesson {} revision {}", r.slug, r.current_revision))?;
        Ok(Lesson {
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
            content,
            source: r.rev.source,
        })
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
    rows.into_iter().map(Lesson::try_from).collect()
}

pub(crate) async fn list_in(tx: &mut Tx, course_id: i64) -> anyhow::Result<Vec<Lesson>> {
    let sql = format!(
        "{} WHERE l.course_id = $1 ORDER BY l.position, l.id",
        lesson_select()
    );
    let rows: Vec<LessonRow> = sqlx::query_as(&sql)
        .bind(course_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.into_iter().map(Lesson::try_from).collect()
}

pub async fn by_slug(db: &Db, course_id: i64, slug: &str) -> anyhow::Result<Option<Lesson>> {
    let sql = format!("{} WHERE l.course_id = $1 AND l.slug = $2", lesson_select());
    let row: Option<LessonRow> = sqlx::query_as(&sql)
        .bind(course_id)
        .bind(slug)
        .fetch_optional(db.pool())
        .await?;
    row.map(Lesson::try_from).transpose()
}

pub async fn by_id(db: &Db, lesson_id: i64) -> anyhow::Result<Option<Lesson>> {
    let sql = format!("{} WHERE l.id = $1", lesson_select());
    let row: Option<LessonRow> = sqlx::query_as(&sql)
        .bind(lesson_id)
        .fetch_optional(db.pool())
        .await?;
    row.map(Lesson::try_from).transpose()
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

/// A lesson to create, with its first revision.
pub struct NewLesson<'a> {
    pub course_id: i64,
    pub slug: &'a str,
    pub position: i64,
    pub status: LessonStatus,
    pub file_name: &'a str,
    pub content: &'a LessonContent,
    pub source: &'a str,
    pub author: &'a str,
}

pub async fn insert(tx: &mut Tx, new: &NewLesson<'_>, now: i64) -> anyhow::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO lessons (course_id, slug, position, status, current_revision, file_name) VALUES ($1, $2, $3, $4, 1, $5) RETURNING id",
    )
    .bind(new.course_id)
    .bind(new.slug)
    .bind(new.position)
    .bind(new.status.as_str())
    .bind(new.file_name)
    .fetch_one(&mut **tx)
    .await?;
    insert_revision(
        tx,
        id,
        1,
        new.content,
        new.source,
        new.author,
        "created",
        now,
    )
    .await?;
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
        "INSERT INTO lesson_revisions (lesson_id, revision, title, subject, phase, after_days, send_window, prompt, wait_for_reply, max_wait_days, body, source, author, note, created_at, preheader) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(lesson_id)
    .bind(revision)
    .bind(&c.title)
    .bind(&c.subject)
    .bind(c.phase.as_str())
    .bind(i64::from(c.after_days))
    .bind(c.send_window.as_ref().map(SendWindow::as_str))
    .bind(&c.prompt)
    .bind(i64::from(c.wait_for_reply))
    .bind(c.max_wait_days.map(i64::from))
    .bind(&c.body)
    .bind(source)
    .bind(author)
    .bind(note)
    .bind(now)
    .bind(c.preheader.as_deref())
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
pub(crate) async fn mark_synced(
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

pub(crate) async fn set_position(
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

/// A lesson's slug by id.
pub(crate) async fn slug_of(db: &Db, lesson_id: i64) -> anyhow::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT slug FROM lessons WHERE id = $1")
        .bind(lesson_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.0))
}
