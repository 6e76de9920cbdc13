//! Queries on `courses`.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::curriculum::CourseFile;
use crate::domain::{Language, Phases, SendWindow};

/// A course as last synced from its folder. The window and the phases are parsed when the
/// row is read: a stored value that does not parse is an error, not a default.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct CourseRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub from_name: String,
    #[sqlx(try_from = "String")]
    pub send_window: SendWindow,
    #[sqlx(try_from = "String")]
    pub phases: Phases,
    pub footer: String,
    /// The language of drip's own words for this course.
    #[sqlx(try_from = "String")]
    pub language: Language,
    pub source: String,
    pub updated_at: i64,
    pub evergreen: i64,
    /// The sender's address; empty: `[mail] from`'s.
    pub from_address: String,
    /// When its folder was found missing from lessons/ (its lessons were unpublished then).
    pub removed_at: Option<i64>,
}

impl CourseRow {
    pub fn is_evergreen(&self) -> bool {
        self.evergreen != 0
    }
}

const COLUMNS: &str = "id, slug, title, description, from_name, send_window, phases, footer, source, updated_at, evergreen, from_address, removed_at, language";

/// Every course, in the order of their slugs.
pub async fn list(db: &Db) -> anyhow::Result<Vec<CourseRow>> {
    let sql = format!("SELECT {COLUMNS} FROM courses ORDER BY slug");
    Ok(sqlx::query_as(&sql).fetch_all(db.pool()).await?)
}

/// Marks a course whose folder is gone: it stays, with its lessons unpublished.
pub(crate) async fn mark_removed(tx: &mut Tx, id: i64, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE courses SET removed_at = $1 WHERE id = $2 AND removed_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE lessons SET status = 'draft' WHERE course_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn by_slug(db: &Db, slug: &str) -> anyhow::Result<Option<CourseRow>> {
    let sql = format!("SELECT {COLUMNS} FROM courses WHERE slug = $1");
    Ok(sqlx::query_as(&sql)
        .bind(slug)
        .fetch_optional(db.pool())
        .await?)
}

pub async fn by_id(db: &Db, id: i64) -> anyhow::Result<CourseRow> {
    let sql = format!("SELECT {COLUMNS} FROM courses WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_one(db.pool()).await?)
}

pub(crate) async fn by_id_in(tx: &mut Tx, id: i64) -> anyhow::Result<CourseRow> {
    let sql = format!("SELECT {COLUMNS} FROM courses WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_one(&mut **tx).await?)
}

/// Inserts or updates the course from its file; returns its id.
pub(crate) async fn upsert(tx: &mut Tx, course: &CourseFile, now: i64) -> anyhow::Result<i64> {
    let phases = serde_json::to_string(&course.phases)?;
    let from_address = course.from_address.as_ref().map_or("", |a| a.as_str());
    let existing: Option<(i64,)> = sqlx::query_as("SELECT id FROM courses WHERE slug = $1")
        .bind(course.slug.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    if let Some((id,)) = existing {
        // A folder that comes back after it was found missing: its files are lessons again.
        sqlx::query("UPDATE lessons SET status = 'published' WHERE course_id = $1 AND EXISTS (SELECT 1 FROM courses WHERE id = $1 AND removed_at IS NOT NULL)")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "UPDATE courses SET title = $1, description = $2, from_name = $3, send_window = $4, phases = $5, source = $6, updated_at = $7, footer = $9, evergreen = $10, from_address = $11, removed_at = NULL, language = $12 WHERE id = $8",
        )
        .bind(&course.title)
        .bind(&course.description)
        .bind(&course.from)
        .bind(course.send_window.as_str())
        .bind(&phases)
        .bind(&course.source)
        .bind(now)
        .bind(id)
        .bind(&course.footer)
        .bind(i64::from(course.evergreen))
        .bind(from_address)
        .bind(course.language.as_str())
        .execute(&mut **tx)
        .await?;
        return Ok(id);
    }
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO courses (slug, title, description, from_name, send_window, phases, source, updated_at, footer, evergreen, from_address, language) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(course.slug.as_str())
    .bind(&course.title)
    .bind(&course.description)
    .bind(&course.from)
    .bind(course.send_window.as_str())
    .bind(&phases)
    .bind(&course.source)
    .bind(now)
    .bind(&course.footer)
    .bind(i64::from(course.evergreen))
    .bind(from_address)
    .bind(course.language.as_str())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}
